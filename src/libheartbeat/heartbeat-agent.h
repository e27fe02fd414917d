/* heartbeat-agent.h: one monitored agent, as callers see it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/**
 * HeartbeatAgentState:
 * @HEARTBEAT_AGENT_STATE_HEALTHY: activity within the stale threshold and a
 *   reported status other than `error`.
 * @HEARTBEAT_AGENT_STATE_STALE: no activity for longer than the stale
 *   threshold. The next beat ends the stale episode.
 * @HEARTBEAT_AGENT_STATE_TIMED_OUT: running (since registration, or since
 *   leaving idle) for longer than the timeout threshold. It stays listed so
 *   until it beats (a new run), registers again or is unregistered, or
 *   until #HeartbeatMonitor:retention passes (a declared agent stays).
 * @HEARTBEAT_AGENT_STATE_ERROR: the agent reported the status `error`.
 * @HEARTBEAT_AGENT_STATE_GONE: the process or bus peer behind the agent went
 *   away; a front detected it and said so with heartbeat_monitor_mark_gone().
 * @HEARTBEAT_AGENT_STATE_NO_HEARTBEAT: declared with
 *   heartbeat_monitor_declare() but never beat since.
 * @HEARTBEAT_AGENT_STATE_PAUSED: not judged, on purpose: someone paused it
 *   with heartbeat_monitor_pause() (maintenance) and has not resumed it.
 *   Its activity is still recorded, but no threshold, timeout or due time
 *   is armed, so it raises nothing.
 *
 * The monitor's judgment of an agent. It is derived from the agent's
 * activity and reported status, never set directly by callers (a pause is
 * a decision not to judge); the nicks (`healthy`, `stale`, `timed-out`,
 * `error`, `gone`, `no-heartbeat`, `paused`) are the names every front
 * uses. heartbeat_agent_state_get_severity() orders them by urgency.
 */
typedef enum {
  HEARTBEAT_AGENT_STATE_HEALTHY,
  HEARTBEAT_AGENT_STATE_STALE,
  HEARTBEAT_AGENT_STATE_TIMED_OUT,
  HEARTBEAT_AGENT_STATE_ERROR,
  HEARTBEAT_AGENT_STATE_GONE,
  HEARTBEAT_AGENT_STATE_NO_HEARTBEAT,
  HEARTBEAT_AGENT_STATE_PAUSED,
} HeartbeatAgentState;

/**
 * HEARTBEAT_AGENT_N_STATES:
 *
 * The number of #HeartbeatAgentState values, for arrays indexed by state.
 */
#define HEARTBEAT_AGENT_N_STATES (HEARTBEAT_AGENT_STATE_PAUSED + 1)

/**
 * HeartbeatRunResult:
 * @HEARTBEAT_RUN_RESULT_RUNNING: the run started and has not ended.
 * @HEARTBEAT_RUN_RESULT_SUCCESS: it ended well (exit status 0, or a success
 *   signal).
 * @HEARTBEAT_RUN_RESULT_FAILURE: it ended with a failure (a non-zero exit
 *   status, a failure signal, a unit's failed result).
 * @HEARTBEAT_RUN_RESULT_TIMED_OUT: it ran past the agent's run timeout;
 *   the record keeps this result when it ends later.
 * @HEARTBEAT_RUN_RESULT_MISSED: it was due and did not start within the
 *   grace: a record with a due time and no start.
 *
 * How a job's run went; the nicks (`running`, `success`, `failure`,
 * `timed-out`, `missed`) are the names every front uses.
 */
typedef enum {
  HEARTBEAT_RUN_RESULT_RUNNING,
  HEARTBEAT_RUN_RESULT_SUCCESS,
  HEARTBEAT_RUN_RESULT_FAILURE,
  HEARTBEAT_RUN_RESULT_TIMED_OUT,
  HEARTBEAT_RUN_RESULT_MISSED,
} HeartbeatRunResult;

/**
 * HEARTBEAT_RUNS_MAX:
 *
 * The most run records an agent keeps (see heartbeat_agent_get_runs()).
 */
#define HEARTBEAT_RUNS_MAX 20

/**
 * HEARTBEAT_RUNS_MAX_AGE:
 *
 * How long, in µs, a run record is kept once a newer one exists (31 days).
 */
#define HEARTBEAT_RUNS_MAX_AGE (G_GINT64_CONSTANT (31) * 24 * 3600 * G_USEC_PER_SEC)

/**
 * HEARTBEAT_RUN_OUTPUT_MAX:
 *
 * The most bytes of a run's output its record keeps: the tail.
 */
#define HEARTBEAT_RUN_OUTPUT_MAX 4096

/**
 * HEARTBEAT_GRACE_DEFAULT:
 *
 * How long, in µs, a scheduled run may start after its due time before it
 * is late, unless the schedule says otherwise (10 minutes).
 */
#define HEARTBEAT_GRACE_DEFAULT (G_GINT64_CONSTANT (10) * 60 * G_USEC_PER_SEC)

/**
 * HEARTBEAT_HISTORY_MAX_ENTRIES:
 *
 * The most state changes an agent's history keeps (see
 * heartbeat_agent_get_history()).
 */
#define HEARTBEAT_HISTORY_MAX_ENTRIES 128

/**
 * HEARTBEAT_HISTORY_MAX_AGE:
 *
 * How long, in µs, an agent's history keeps a state change (24 h): when a
 * change is recorded, the entries older than this are dropped, except the
 * newest of them, which says what state the last day began in.
 */
#define HEARTBEAT_HISTORY_MAX_AGE (G_GINT64_CONSTANT (24) * 3600 * G_USEC_PER_SEC)

/**
 * HeartbeatAgent:
 *
 * A registered agent. A reference-counted, read-only view for callers: the
 * monitor updates it in place while it is registered, and a reference
 * kept after unregistration keeps the last values. Only the monitor's
 * thread may read it.
 */
typedef struct _HeartbeatAgent HeartbeatAgent;

#define HEARTBEAT_TYPE_AGENT (heartbeat_agent_get_type ())
GType heartbeat_agent_get_type (void) G_GNUC_CONST;

HeartbeatAgent      *heartbeat_agent_ref                 (HeartbeatAgent *agent);
void                 heartbeat_agent_unref               (HeartbeatAgent *agent);

const char          *heartbeat_agent_get_id              (const HeartbeatAgent *agent);
const char          *heartbeat_agent_get_task_id         (const HeartbeatAgent *agent);
HeartbeatAgentState  heartbeat_agent_get_state           (const HeartbeatAgent *agent);
const char          *heartbeat_agent_get_status          (const HeartbeatAgent *agent);
guint32              heartbeat_agent_get_owner_uid       (const HeartbeatAgent *agent);
gint32               heartbeat_agent_get_pid             (const HeartbeatAgent *agent);
gint64               heartbeat_agent_get_started_at      (const HeartbeatAgent *agent);
gint64               heartbeat_agent_get_last_activity_at (const HeartbeatAgent *agent);
guint64              heartbeat_agent_get_beats           (const HeartbeatAgent *agent);
guint64              heartbeat_agent_get_stale_episodes  (const HeartbeatAgent *agent);
guint64              heartbeat_agent_get_timeouts        (const HeartbeatAgent *agent);
gint64               heartbeat_agent_get_stale_after     (const HeartbeatAgent *agent);
gint64               heartbeat_agent_get_timeout_after   (const HeartbeatAgent *agent);
gint64               heartbeat_agent_get_own_stale_after (const HeartbeatAgent *agent);
gint64               heartbeat_agent_get_own_timeout_after (const HeartbeatAgent *agent);
const char          *heartbeat_agent_get_bound_to        (const HeartbeatAgent *agent);
GVariant            *heartbeat_agent_get_metadata        (const HeartbeatAgent *agent);
gboolean             heartbeat_agent_get_progress        (const HeartbeatAgent *agent,
                                                          double               *progress);
gboolean             heartbeat_agent_is_declared         (const HeartbeatAgent *agent);
gboolean             heartbeat_agent_is_service          (const HeartbeatAgent *agent);
gboolean             heartbeat_agent_is_idle             (const HeartbeatAgent *agent);
gint64               heartbeat_agent_get_idle_usec       (const HeartbeatAgent *agent,
                                                          gint64                now);
gint64               heartbeat_agent_get_running_usec    (const HeartbeatAgent *agent,
                                                          gint64                now);
GVariant            *heartbeat_agent_get_history         (const HeartbeatAgent *agent);
gboolean             heartbeat_agent_has_schedule        (const HeartbeatAgent *agent);
gint64               heartbeat_agent_get_next_due        (const HeartbeatAgent *agent);
gint64               heartbeat_agent_get_grace           (const HeartbeatAgent *agent);
gint64               heartbeat_agent_get_late_due        (const HeartbeatAgent *agent);
GVariant            *heartbeat_agent_get_runs            (const HeartbeatAgent *agent);
GVariant            *heartbeat_agent_get_last_run        (const HeartbeatAgent *agent);
const char * const  *heartbeat_agent_get_tags            (const HeartbeatAgent *agent);
gint64               heartbeat_agent_get_paused_at       (const HeartbeatAgent *agent);
const char          *heartbeat_agent_get_paused_reason   (const HeartbeatAgent *agent);
guint32              heartbeat_agent_get_paused_by       (const HeartbeatAgent *agent);
gint64               heartbeat_agent_get_state_since     (const HeartbeatAgent *agent);
double               heartbeat_agent_get_uptime          (const HeartbeatAgent *agent,
                                                          gint64                now_realtime,
                                                          gint64                span_usec);

const char          *heartbeat_agent_state_to_string     (HeartbeatAgentState  state);
gboolean             heartbeat_agent_state_from_string   (const char          *nick,
                                                          HeartbeatAgentState *state);
guint                heartbeat_agent_state_get_severity  (HeartbeatAgentState  state);
const char          *heartbeat_run_result_to_string      (HeartbeatRunResult   result);
gboolean             heartbeat_run_result_from_string    (const char          *nick,
                                                          HeartbeatRunResult  *result);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (HeartbeatAgent, heartbeat_agent_unref)

G_END_DECLS
