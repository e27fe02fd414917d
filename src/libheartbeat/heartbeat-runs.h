/* heartbeat-runs.h: a job's schedule and its run records, as the monitor
 * keeps them with an agent
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "heartbeat-monitor.h"

G_BEGIN_DECLS

/* One run. Times are wall-clock µs (a record is about what happened in the
 * world, kept across restarts); 0 means "not known" or "not yet". */
typedef struct {
  gint64  due;          /* the due time it answered, or 0 (an unscheduled run) */
  gint64  started;      /* 0: it never started (missed) */
  gint64  ended;        /* 0: still running */
  gint32  exit_status;  /* -1: none reported */
  guint8  result;       /* HeartbeatRunResult */
  gboolean late;        /* started after its due time plus the grace */
  char   *output;       /* the tail of its output (valid UTF-8), or NULL */
} HeartbeatRun;

/* An agent's schedule and runs: allocated only for agents that have either. */
typedef struct {
  HeartbeatDueFunc due_func;    /* NULL: no schedule */
  gpointer         due_data;
  GDestroyNotify   due_destroy;
  gint64           grace;       /* µs a run may start after its due time */
  gint64           due;         /* the next due time, wall-clock µs, or 0 */
  gint64           answered;    /* due times up to here are answered (run or miss) */
  gint64           late_due;    /* the missed due time of a late episode, or 0 */
  HeartbeatRun    *current;     /* the run in progress (the last of @runs), or NULL */
  GPtrArray       *runs;        /* HeartbeatRun, oldest first */
} HeartbeatJob;

HeartbeatJob *heartbeat_job_new            (void);
void          heartbeat_job_free           (HeartbeatJob *job);
void          heartbeat_job_clear_schedule (HeartbeatJob *job);
HeartbeatRun *heartbeat_job_add_run        (HeartbeatJob *job,
                                            gint64        now_realtime);
void          heartbeat_run_set_output     (HeartbeatRun *run,
                                            const char   *output,
                                            gssize        length);
gint64        heartbeat_job_last_answered  (const HeartbeatJob *job,
                                            gint64              now_realtime);
GVariant     *heartbeat_run_to_variant     (const HeartbeatRun *run);
GVariant     *heartbeat_job_runs_to_variant (const HeartbeatJob *job);
gboolean      heartbeat_job_set_runs       (HeartbeatJob *job,
                                            GVariant     *runs,
                                            gint64        now_realtime,
                                            GError      **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (HeartbeatJob, heartbeat_job_free)

G_END_DECLS
