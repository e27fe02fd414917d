/* heartbeat-monitor.h: the model and scheduler of heartbeatd
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "heartbeat-agent.h"
#include "heartbeat-values.h"

G_BEGIN_DECLS

/**
 * HEARTBEAT_ID_MAX_LENGTH:
 *
 * The longest agent id, in bytes. Ids are 1 to this many characters of
 * `[A-Za-z0-9._:@-]`, so they are safe in file names, D-Bus strings, URLs
 * and Prometheus label values without escaping.
 */
#define HEARTBEAT_ID_MAX_LENGTH HB_NAME_ID_MAX_LENGTH

/**
 * HEARTBEAT_TASK_ID_MAX_LENGTH:
 *
 * The longest task id, in bytes (valid UTF-8, no control characters).
 */
#define HEARTBEAT_TASK_ID_MAX_LENGTH 256

/**
 * HEARTBEAT_STATUS_MAX_LENGTH:
 *
 * The longest reported status, in bytes (valid UTF-8, no control characters).
 */
#define HEARTBEAT_STATUS_MAX_LENGTH 64

/**
 * HEARTBEAT_THRESHOLD_MAX:
 *
 * The largest threshold or interval accepted, in µs (about 100 years), so
 * that deadlines never overflow.
 */
#define HEARTBEAT_THRESHOLD_MAX (G_GINT64_CONSTANT (100) * 366 * 24 * 3600 * G_USEC_PER_SEC)

/**
 * HEARTBEAT_NO_DEADLINE:
 *
 * What heartbeat_monitor_get_next_deadline() returns when no agent has a
 * deadline. Monotonic times start near zero at boot, so a time before
 * boot (an agent restored after a reboot) is negative, and no negative
 * number can mean "none".
 */
#define HEARTBEAT_NO_DEADLINE G_MAXINT64

/**
 * HEARTBEAT_ERROR:
 *
 * Error domain of #HeartbeatMonitor. Errors in this domain are from the
 * #HeartbeatError enumeration.
 */
#define HEARTBEAT_ERROR (heartbeat_error_quark ())
GQuark heartbeat_error_quark (void);

/**
 * HeartbeatError:
 * @HEARTBEAT_ERROR_INVALID_ARGUMENT: an id, status, task id, threshold or
 *   metadata dictionary is malformed or too large. Nothing was changed.
 * @HEARTBEAT_ERROR_NOT_FOUND: no agent has that id. Nothing was changed.
 * @HEARTBEAT_ERROR_QUOTA_EXCEEDED: the monitor holds its
 *   #HeartbeatMonitor:max-agents. Nothing was changed.
 * @HEARTBEAT_ERROR_NOT_SAVED: the store (see heartbeat_monitor_set_store())
 *   could not make a caller's change durable, so it was taken back: the
 *   agent is as the store last saved it.
 *
 * Errors returned for bad input. Programmer errors (a %NULL monitor) are
 * guarded by g_return_val_if_fail() instead.
 */
typedef enum {
  HEARTBEAT_ERROR_INVALID_ARGUMENT,
  HEARTBEAT_ERROR_NOT_FOUND,
  HEARTBEAT_ERROR_QUOTA_EXCEEDED,
  HEARTBEAT_ERROR_NOT_SAVED,
} HeartbeatError;

/**
 * HeartbeatUnregisterReason:
 * @HEARTBEAT_UNREGISTER_REASON_UNREGISTERED: a caller unregistered it.
 * @HEARTBEAT_UNREGISTER_REASON_TIMED_OUT: it ran longer than its timeout
 *   threshold and the monitor removed it.
 * @HEARTBEAT_UNREGISTER_REASON_GONE: it was gone (its process or bus peer
 *   went away) for a whole stale threshold and the monitor removed it.
 *
 * Why #HeartbeatMonitor::agent-unregistered was emitted.
 */
typedef enum {
  HEARTBEAT_UNREGISTER_REASON_UNREGISTERED,
  HEARTBEAT_UNREGISTER_REASON_TIMED_OUT,
  HEARTBEAT_UNREGISTER_REASON_GONE,
} HeartbeatUnregisterReason;

const char *heartbeat_unregister_reason_to_string (HeartbeatUnregisterReason reason);

/**
 * HeartbeatAgentOptions:
 * @task_id: (nullable): what the agent is working on, or %NULL
 * @stale_after_usec: the agent's stale threshold in µs, or 0 for the
 *   monitor's #HeartbeatMonitor:stale-threshold
 * @timeout_after_usec: the agent's run timeout in µs, or 0 for the default:
 *   the monitor's #HeartbeatMonitor:timeout-threshold, or none for a
 *   @service
 * @owner_uid: the uid the agent belongs to; the monitor only counts it (see
 *   heartbeat_monitor_count_owned_by()), fronts decide who may change it
 * @pid: the process behind the agent, or 0; the monitor only records it
 * @metadata: (nullable): an `a{sv}` dictionary of caller data, or %NULL
 * @bound_to: (nullable): what the agent's liveness is bound to, as a front
 *   names it (a D-Bus unique name such as `:1.42`), or %NULL; the monitor
 *   only records it, the front marks the agent gone when it goes away
 * @service: the agent is a service, meant to run until it is stopped (a
 *   systemd service, a program writing a heartbeat file), not work that
 *   ends: it has no run timeout unless @timeout_after_usec gives it one.
 *   An agent with @bound_to is always a service: it lives as long as its
 *   bus peer. See heartbeat_monitor_set_service().
 * @tags: (nullable) (array zero-terminated=1): tags that group the agent for
 *   people and filters (heartbeat_tags_validate()), or %NULL for none
 *
 * How to register an agent. Zero-initialise it (`{ 0 }`) and set what you
 * need; every field has a meaningful zero.
 */
typedef struct {
  const char *task_id;
  gint64      stale_after_usec;
  gint64      timeout_after_usec;
  guint32     owner_uid;
  gint32      pid;
  GVariant   *metadata;
  const char *bound_to;
  gboolean    service;
  const char *const *tags;
} HeartbeatAgentOptions;

/**
 * HeartbeatBeatDetails:
 * @status: (nullable): the status the agent reports; %NULL means `running`.
 *   `error` puts the agent in %HEARTBEAT_AGENT_STATE_ERROR, `idle` is the
 *   same as heartbeat_monitor_mark_idle().
 * @has_progress: whether @progress is set
 * @progress: how far along the agent is (any finite number; stored in the
 *   metadata under `progress`)
 * @metadata: (nullable): an `a{sv}` dictionary merged into the agent's
 *   metadata, key by key (the last of duplicate keys wins, and @progress
 *   over a `progress` key); the merged dictionary has its keys in sorted
 *   order, and a beat that adds no key and changes no value leaves the
 *   agent's dictionary as it is (heartbeat_agent_get_metadata() returns
 *   the same value)
 *
 * What a beat carries besides the fact of activity.
 */
typedef struct {
  const char *status;
  gboolean    has_progress;
  double      progress;
  GVariant   *metadata;
} HeartbeatBeatDetails;

/**
 * HeartbeatAgentSnapshot:
 * @state: the state the agent was in; %HEARTBEAT_AGENT_STATE_STALE keeps the
 *   stale episode (no second warning); a timed-out or gone agent stays so,
 *   its #HeartbeatMonitor:retention counted from the restore
 * @status: (nullable): the last reported status
 * @beats: how many beats it had
 * @started_at_realtime: when it was registered (or left idle), wall-clock µs
 * @last_activity_at_realtime: its last activity, wall-clock µs
 * @declared: whether it was declared with heartbeat_monitor_declare()
 * @active_until_realtime: the latest moment the agent may have been active
 *   without @last_activity_at_realtime saying so (a store that saves beats
 *   lazily and was not shut down cleanly), wall-clock µs; 0 if the snapshot
 *   is exact. A healthy agent is not judged stale before its threshold has
 *   passed from there, while its idle time still counts from its last
 *   known activity.
 * @history: (nullable): the agent's history as heartbeat_agent_get_history()
 *   gave it (`a(ts)`), or %NULL to start a new one at the restore
 * @runs: (nullable): the agent's run records as heartbeat_agent_get_runs()
 *   gave them (`aa{sv}`), or %NULL for none
 * @unmonitored_since_realtime: when nobody started watching the agent (the
 *   daemon's last sign of life before it went down), wall-clock µs, or 0:
 *   the history then marks the time from there to the restore
 *   `unmonitored`
 * @paused_at_realtime: when the agent was paused (heartbeat_monitor_pause()),
 *   wall-clock µs, or 0 if it was not; a paused agent is restored paused,
 *   with @state saying nothing more (give %HEARTBEAT_AGENT_STATE_PAUSED):
 *   the state under the pause is judged from its status when it is resumed
 * @paused_reason: (nullable): the pause's reason
 * @paused_by_uid: who paused it
 *
 * An agent as persisted by a front, for heartbeat_monitor_restore(). Times
 * are wall-clock, so an agent that went quiet while the daemon was down is
 * judged by how long ago that really was.
 */
typedef struct {
  HeartbeatAgentState state;
  const char         *status;
  guint64             beats;
  gint64              started_at_realtime;
  gint64              last_activity_at_realtime;
  gboolean            declared;
  gint64              active_until_realtime;
  GVariant           *history;
  GVariant           *runs;
  gint64              unmonitored_since_realtime;
  gint64              paused_at_realtime;
  const char         *paused_reason;
  guint32             paused_by_uid;
} HeartbeatAgentSnapshot;

/**
 * HeartbeatDueFunc:
 * @after_realtime: wall-clock µs
 * @user_data: the data given to heartbeat_monitor_set_schedule()
 *
 * A job's schedule, as a front knows it: a cron expression's next match, a
 * systemd timer's next elapse. It must not call into the monitor.
 *
 * Returns: the first due time strictly after @after_realtime, wall-clock
 *   µs, or 0 if the schedule knows none
 */
typedef gint64 (*HeartbeatDueFunc) (gint64   after_realtime,
                                    gpointer user_data);

/**
 * HeartbeatRunEnd:
 * @started_realtime: when the run started, wall-clock µs, for a run whose
 *   start the monitor was not told (a unit's run, a single ping); 0 if
 *   unknown or told already
 * @ended_realtime: when it ended, wall-clock µs; 0 means now
 * @success: whether it ended well
 * @exit_status: its exit status (0–255), or -1 if none is known
 * @output: (nullable): the end of its output; the record keeps the last
 *   %HEARTBEAT_RUN_OUTPUT_MAX bytes, made valid UTF-8
 * @output_length: the length of @output, or -1 if it is nul-terminated
 *
 * How a job's run ended, for heartbeat_monitor_finish_run(). Zero-initialise
 * it and set what you know.
 */
typedef struct {
  gint64      started_realtime;
  gint64      ended_realtime;
  gboolean    success;
  gint        exit_status;
  const char *output;
  gssize      output_length;
} HeartbeatRunEnd;

/**
 * HeartbeatClockFunc:
 * @user_data: the data given to heartbeat_monitor_set_clock()
 *
 * A monotonic clock in µs, for tests that drive the monitor with explicit
 * time.
 *
 * Returns: the current time in µs
 */
typedef gint64 (*HeartbeatClockFunc) (gpointer user_data);

/**
 * HeartbeatChange:
 * @HEARTBEAT_CHANGE_ACTIVITY: only the agent's last activity and beat count
 *   changed (a beat that changes nothing else)
 * @HEARTBEAT_CHANGE_METADATA: a beat changed its metadata too (progress,
 *   an iteration count): as much a part of the beat as its time
 * @HEARTBEAT_CHANGE_STATE: its state, status, metadata or options changed,
 *   or it was added or removed, by the monitor's judgment or a front
 * @HEARTBEAT_CHANGE_CALLER: a caller registered, unregistered or marked it
 *   idle: the caller is answered once heartbeat_monitor_sync_async() says
 *   the change is durable, and it is taken back if it cannot be made so
 *
 * What changed in an agent, for a store's #HeartbeatStoreFuncs.changed.
 */
typedef enum {
  HEARTBEAT_CHANGE_ACTIVITY,
  HEARTBEAT_CHANGE_METADATA,
  HEARTBEAT_CHANGE_STATE,
  HEARTBEAT_CHANGE_CALLER,
} HeartbeatChange;

typedef struct _HeartbeatMonitor HeartbeatMonitor;

/**
 * HeartbeatStoreFuncs:
 * @changed: the agent @id changed as @change says (it may have been
 *   removed); called on every change, so it must cost O(1)
 * @sync: completes @task (transfer full) with %TRUE once every change of
 *   kind %HEARTBEAT_CHANGE_STATE or %HEARTBEAT_CHANGE_CALLER notified so
 *   far is durable (a store may save activity and metadata lazily), or with an error (%HEARTBEAT_ERROR_NOT_SAVED) if the
 *   store could not make them so, after taking back the callers' changes
 *   with heartbeat_monitor_revert()
 * @is_saved: whether @sync would complete at once (nothing is pending but
 *   what the store saves lazily)
 *
 * How a persistence front follows the monitor: see
 * heartbeat_monitor_set_store().
 */
typedef struct {
  void (*changed) (HeartbeatMonitor *monitor,
                   const char       *id,
                   HeartbeatChange   change,
                   gpointer          user_data);
  void (*sync)    (HeartbeatMonitor *monitor,
                   GTask            *task,
                   gpointer          user_data);
  gboolean (*is_saved) (HeartbeatMonitor *monitor,
                        gpointer          user_data);
} HeartbeatStoreFuncs;

#define HEARTBEAT_TYPE_MONITOR (heartbeat_monitor_get_type ())
G_DECLARE_FINAL_TYPE (HeartbeatMonitor, heartbeat_monitor, HEARTBEAT, MONITOR, GObject)

HeartbeatMonitor *heartbeat_monitor_new               (void);
HeartbeatMonitor *heartbeat_monitor_get_default       (void);

void              heartbeat_monitor_start             (HeartbeatMonitor *monitor);
void              heartbeat_monitor_stop              (HeartbeatMonitor *monitor);
gboolean          heartbeat_monitor_get_running       (HeartbeatMonitor *monitor);

HeartbeatAgent   *heartbeat_monitor_register          (HeartbeatMonitor            *monitor,
                                                       const char                  *id,
                                                       const HeartbeatAgentOptions *options,
                                                       GError                     **error);
HeartbeatAgent   *heartbeat_monitor_declare           (HeartbeatMonitor            *monitor,
                                                       const char                  *id,
                                                       const HeartbeatAgentOptions *options,
                                                       GError                     **error);
gboolean          heartbeat_monitor_undeclare         (HeartbeatMonitor            *monitor,
                                                       const char                  *id);
HeartbeatAgent   *heartbeat_monitor_restore           (HeartbeatMonitor             *monitor,
                                                       const char                   *id,
                                                       const HeartbeatAgentOptions  *options,
                                                       const HeartbeatAgentSnapshot *snapshot,
                                                       GError                      **error);
gboolean          heartbeat_monitor_beat              (HeartbeatMonitor            *monitor,
                                                       const char                  *id,
                                                       const HeartbeatBeatDetails  *details,
                                                       GError                     **error);
gboolean          heartbeat_monitor_beat_at           (HeartbeatMonitor            *monitor,
                                                       const char                  *id,
                                                       const HeartbeatBeatDetails  *details,
                                                       gint64                       activity_realtime,
                                                       GError                     **error);
gboolean          heartbeat_monitor_mark_no_heartbeat (HeartbeatMonitor            *monitor,
                                                       const char                  *id,
                                                       GError                     **error);
gboolean          heartbeat_monitor_mark_idle         (HeartbeatMonitor            *monitor,
                                                       const char                  *id,
                                                       GError                     **error);
gboolean          heartbeat_monitor_mark_gone         (HeartbeatMonitor            *monitor,
                                                       const char                  *id,
                                                       GError                     **error);
gboolean          heartbeat_monitor_pause             (HeartbeatMonitor            *monitor,
                                                       const char                  *id,
                                                       const char                  *reason,
                                                       guint32                      by_uid,
                                                       GError                     **error);
gboolean          heartbeat_monitor_resume            (HeartbeatMonitor            *monitor,
                                                       const char                  *id,
                                                       GError                     **error);
gboolean          heartbeat_monitor_mark_started      (HeartbeatMonitor            *monitor,
                                                       const char                  *id,
                                                       gint64                       started_realtime,
                                                       GError                     **error);
gboolean          heartbeat_monitor_set_service       (HeartbeatMonitor            *monitor,
                                                       const char                  *id,
                                                       gboolean                     service,
                                                       GError                     **error);
gboolean          heartbeat_monitor_unregister        (HeartbeatMonitor            *monitor,
                                                       const char                  *id,
                                                       GError                     **error);

gboolean          heartbeat_monitor_set_schedule      (HeartbeatMonitor            *monitor,
                                                       const char                  *id,
                                                       HeartbeatDueFunc             due_func,
                                                       gpointer                     user_data,
                                                       GDestroyNotify               destroy,
                                                       gint64                       grace_usec,
                                                       GError                     **error);
gboolean          heartbeat_monitor_reschedule        (HeartbeatMonitor            *monitor,
                                                       const char                  *id,
                                                       GError                     **error);
gboolean          heartbeat_monitor_start_run         (HeartbeatMonitor            *monitor,
                                                       const char                  *id,
                                                       gint64                       started_realtime,
                                                       GError                     **error);
gboolean          heartbeat_monitor_finish_run        (HeartbeatMonitor            *monitor,
                                                       const char                  *id,
                                                       const HeartbeatRunEnd       *end,
                                                       GError                     **error);

HeartbeatAgent   *heartbeat_monitor_lookup            (HeartbeatMonitor            *monitor,
                                                       const char                  *id);
GPtrArray        *heartbeat_monitor_list_agents       (HeartbeatMonitor            *monitor);
guint             heartbeat_monitor_get_n_agents      (HeartbeatMonitor            *monitor);
void              heartbeat_monitor_get_state_counts  (HeartbeatMonitor            *monitor,
                                                       guint                        counts[HEARTBEAT_AGENT_N_STATES]);
guint             heartbeat_monitor_count_owned_by    (HeartbeatMonitor            *monitor,
                                                       guint32                      uid);
guint64           heartbeat_monitor_get_beats_total   (HeartbeatMonitor            *monitor);
guint64           heartbeat_monitor_get_stale_total   (HeartbeatMonitor            *monitor);
guint64           heartbeat_monitor_get_timeouts_total (HeartbeatMonitor           *monitor);
guint64           heartbeat_monitor_get_recoveries_total (HeartbeatMonitor         *monitor);
GVariant         *heartbeat_monitor_get_status        (HeartbeatMonitor            *monitor);
gboolean          heartbeat_monitor_post_event        (HeartbeatMonitor            *monitor,
                                                       const char                  *type,
                                                       GVariant                    *data,
                                                       GError                     **error);

void              heartbeat_monitor_run_checks        (HeartbeatMonitor            *monitor,
                                                       gint64                       now);
gint64            heartbeat_monitor_get_next_deadline (HeartbeatMonitor            *monitor);

void              heartbeat_monitor_set_store         (HeartbeatMonitor            *monitor,
                                                       const HeartbeatStoreFuncs   *funcs,
                                                       gpointer                     user_data,
                                                       GDestroyNotify               destroy);
void              heartbeat_monitor_sync_async        (HeartbeatMonitor            *monitor,
                                                       GCancellable                *cancellable,
                                                       GAsyncReadyCallback          callback,
                                                       gpointer                     user_data);
gboolean          heartbeat_monitor_sync_finish       (HeartbeatMonitor            *monitor,
                                                       GAsyncResult                *result,
                                                       GError                     **error);
gboolean          heartbeat_monitor_is_saved          (HeartbeatMonitor            *monitor);
HeartbeatAgent   *heartbeat_monitor_revert            (HeartbeatMonitor             *monitor,
                                                       const char                   *id,
                                                       const HeartbeatAgentOptions  *options,
                                                       const HeartbeatAgentSnapshot *snapshot,
                                                       GError                      **error);

void              heartbeat_monitor_set_clock         (HeartbeatMonitor            *monitor,
                                                       HeartbeatClockFunc           clock,
                                                       gpointer                     user_data);
gint64            heartbeat_monitor_get_time          (HeartbeatMonitor            *monitor);
void              heartbeat_monitor_set_realtime_clock (HeartbeatMonitor           *monitor,
                                                        HeartbeatClockFunc          clock,
                                                        gpointer                    user_data);
gint64            heartbeat_monitor_get_realtime      (HeartbeatMonitor            *monitor);
gint64            heartbeat_monitor_to_realtime       (HeartbeatMonitor            *monitor,
                                                       gint64                       monotonic);

gint64            heartbeat_monitor_get_check_interval   (HeartbeatMonitor *monitor);
void              heartbeat_monitor_set_check_interval   (HeartbeatMonitor *monitor,
                                                          gint64            usec);
gint64            heartbeat_monitor_get_stale_threshold  (HeartbeatMonitor *monitor);
void              heartbeat_monitor_set_stale_threshold  (HeartbeatMonitor *monitor,
                                                          gint64            usec);
gint64            heartbeat_monitor_get_timeout_threshold (HeartbeatMonitor *monitor);
void              heartbeat_monitor_set_timeout_threshold (HeartbeatMonitor *monitor,
                                                           gint64            usec);
guint             heartbeat_monitor_get_max_agents    (HeartbeatMonitor *monitor);
gint64            heartbeat_monitor_get_retention     (HeartbeatMonitor *monitor);
void              heartbeat_monitor_set_retention     (HeartbeatMonitor *monitor,
                                                       gint64            usec);
void              heartbeat_monitor_set_max_agents    (HeartbeatMonitor *monitor,
                                                       guint             max_agents);
gboolean          heartbeat_monitor_get_stale_warning_only_once (HeartbeatMonitor *monitor);
void              heartbeat_monitor_set_stale_warning_only_once (HeartbeatMonitor *monitor,
                                                                 gboolean          only_once);

gboolean          heartbeat_id_is_valid               (const char *id,
                                                       GError    **error);

G_END_DECLS
