/* heartbeat-agent-private.h: the agent record the monitor owns
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "heartbeat-agent.h"

G_BEGIN_DECLS

/* Not in the deadline heap. */
#define HEARTBEAT_HEAP_NONE G_MAXUINT32

/* What few agents carry, allocated only for them: tags and a pause. */
typedef struct {
  char   **tags;          /* sorted, each once; NULL for none */
  char    *paused_reason;
  gint64   paused_at;     /* wall-clock µs; 0 when not paused */
  gint64   resumed_at;    /* monotonic µs of the last resume, or G_MININT64:
                           * thresholds count from there */
  guint32  paused_by;
  guint8   held_state;    /* while paused: the state judged underneath */
} HeartbeatAgentExtra;

/*
 * One agent. The layout is kept small on purpose (the monitor is meant to
 * hold a million of these in about 200 bytes each): times are monotonic µs
 * only (wall-clock times are derived when reported), the status is a
 * static string unless a caller reported an unusual one, and the id lives
 * inline at the end, so an agent is one allocation.
 */
struct _HeartbeatAgent {
  gint     ref_count;
  guint32  heap_index;     /* position in the deadline heap, or HEARTBEAT_HEAP_NONE */
  guint32  generation;     /* bumped on re-registration and removal, to detect
                            * re-entrancy from signal handlers */
  guint8   state;          /* HeartbeatAgentState */
  guint    registered : 1; /* still in the monitor's table */
  guint    declared : 1;
  guint    idle : 1;
  guint    status_owned : 1;
  guint    stale_is_default : 1;
  guint    timeout_is_default : 1;
  guint    service : 1;        /* meant to run until stopped: no default run timeout */
  guint    in_stale_episode : 1; /* its current stale episode is counted */
  guint16  metadata_text;  /* at least the length of @metadata as JSON text
                            * (see heartbeat_metadata_check()), at most
                            * HEARTBEAT_METADATA_MAX_SIZE, or G_MAXUINT16 */
  guint32  owner_uid;
  gint32   pid;
  guint64  beats;
  guint64  stale_episodes; /* since it was registered (or restored) */
  guint64  timeouts;
  gint64   stale_after;
  gint64   timeout_after;  /* the run timeout, or 0 for none */
  gint64   started_at;
  gint64   last_activity_at;
  gint64   mark_at;        /* last stale warning, or the moment it went gone */
  gint64   deadline;       /* the heap key: when to look at this agent next */
  char    *task_id;
  char    *bound_to;
  const char *status;
  GVariant *metadata;
  struct _HeartbeatHistory *history; /* state changes, or NULL before the first */
  gpointer  job;           /* HeartbeatJob (heartbeat-runs.h): a schedule or runs, or NULL */
  HeartbeatAgentExtra *extra; /* tags and a pause, or NULL */
  char     id[];
};

HeartbeatAgent *heartbeat_agent_new            (const char     *id);
void            heartbeat_agent_set_status     (HeartbeatAgent *agent,
                                                const char     *status);
void            heartbeat_agent_set_task_id    (HeartbeatAgent *agent,
                                                const char     *task_id);
void            heartbeat_agent_set_bound_to   (HeartbeatAgent *agent,
                                                const char     *bound_to);
void            heartbeat_agent_take_metadata  (HeartbeatAgent *agent,
                                                GVariant       *metadata);
void            heartbeat_agent_record_state   (HeartbeatAgent *agent,
                                                gint64          at_realtime);
void            heartbeat_agent_set_history    (HeartbeatAgent *agent,
                                                GVariant       *history);
void            heartbeat_agent_record_unmonitored (HeartbeatAgent *agent,
                                                    gint64          at_realtime);
HeartbeatAgentExtra *heartbeat_agent_get_extra (HeartbeatAgent *agent);
void            heartbeat_agent_set_tags       (HeartbeatAgent     *agent,
                                                const char * const *tags);

G_END_DECLS
