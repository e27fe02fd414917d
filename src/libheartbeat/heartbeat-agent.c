/* heartbeat-agent.c: one monitored agent, as callers see it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "heartbeat-agent-private.h"
#include "heartbeat-enums.h"
#include "heartbeat-runs.h"

#include <stdlib.h>
#include <string.h>

/* Statuses every agent shares; anything else is copied. The monitor sets
 * "waiting" (declared, has not run yet) and "stopped" (gone) itself. */
static const char *const known_statuses[] = { "running", "idle", "error", "waiting", "stopped" };

/* Registered by hand: G_DEFINE_BOXED_TYPE's transparent-union trick trips
 * -Wpedantic. */
GType
heartbeat_agent_get_type (void)
{
  static gsize type;

  if (g_once_init_enter (&type))
    {
      GType id = g_boxed_type_register_static (g_intern_static_string ("HeartbeatAgent"),
                                               (GBoxedCopyFunc) heartbeat_agent_ref,
                                               (GBoxedFreeFunc) heartbeat_agent_unref);
      g_once_init_leave (&type, id);
    }
  return type;
}

HeartbeatAgent *
heartbeat_agent_new (const char *id)
{
  size_t id_len = strlen (id);
  HeartbeatAgent *agent = g_malloc0 (sizeof (HeartbeatAgent) + id_len + 1);

  agent->ref_count = 1;
  agent->heap_index = G_MAXUINT32;
  agent->status = known_statuses[0];
  agent->stale_is_default = TRUE;
  agent->timeout_is_default = TRUE;
  memcpy (agent->id, id, id_len + 1);

  return agent;
}

/**
 * heartbeat_agent_ref:
 * @agent: a #HeartbeatAgent
 *
 * Takes a reference, to keep @agent readable after it is unregistered.
 *
 * Returns: (transfer full): @agent
 */
HeartbeatAgent *
heartbeat_agent_ref (HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, NULL);

  agent->ref_count++;
  return agent;
}

/**
 * heartbeat_agent_unref:
 * @agent: (transfer full): a #HeartbeatAgent
 *
 * Drops a reference taken with heartbeat_agent_ref().
 */
void
heartbeat_agent_unref (HeartbeatAgent *agent)
{
  g_return_if_fail (agent != NULL);
  g_return_if_fail (agent->ref_count > 0);

  if (--agent->ref_count > 0)
    return;

  if (agent->status_owned)
    g_free ((char *) agent->status);
  g_free (agent->task_id);
  g_free (agent->bound_to);
  g_clear_pointer (&agent->metadata, g_variant_unref);
  g_free (agent->history);
  heartbeat_job_free (agent->job);
  if (agent->extra)
    {
      g_strfreev (agent->extra->tags);
      g_free (agent->extra->paused_reason);
      g_free (agent->extra);
    }
  g_free (agent);
}

void
heartbeat_agent_set_status (HeartbeatAgent *agent,
                            const char     *status)
{
  if (status == NULL)
    status = known_statuses[0];
  if (g_strcmp0 (agent->status, status) == 0)
    return;

  if (agent->status_owned)
    g_free ((char *) agent->status);
  agent->status_owned = FALSE;

  for (guint i = 0; i < G_N_ELEMENTS (known_statuses); i++)
    {
      if (strcmp (status, known_statuses[i]) == 0)
        {
          agent->status = known_statuses[i];
          return;
        }
    }
  agent->status = g_strdup (status);
  agent->status_owned = TRUE;
}

void
heartbeat_agent_set_task_id (HeartbeatAgent *agent,
                             const char     *task_id)
{
  if (task_id != NULL && *task_id == '\0')
    task_id = NULL;
  if (g_strcmp0 (agent->task_id, task_id) == 0)
    return;
  g_free (agent->task_id);
  agent->task_id = g_strdup (task_id);
}

void
heartbeat_agent_set_bound_to (HeartbeatAgent *agent,
                              const char     *bound_to)
{
  if (g_strcmp0 (agent->bound_to, bound_to) == 0)
    return;
  g_free (agent->bound_to);
  agent->bound_to = g_strdup (bound_to);
}

void
heartbeat_agent_take_metadata (HeartbeatAgent *agent,
                               GVariant       *metadata)
{
  g_clear_pointer (&agent->metadata, g_variant_unref);
  agent->metadata = metadata ? g_variant_ref_sink (metadata) : NULL;
}

/**
 * heartbeat_agent_get_id:
 * @agent: a #HeartbeatAgent
 *
 * Returns: the agent's id, unique within its monitor
 */
const char *
heartbeat_agent_get_id (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, NULL);
  return agent->id;
}

/**
 * heartbeat_agent_get_task_id:
 * @agent: a #HeartbeatAgent
 *
 * Returns: (nullable): what the agent said it works on, or %NULL
 */
const char *
heartbeat_agent_get_task_id (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, NULL);
  return agent->task_id;
}

/**
 * heartbeat_agent_get_state:
 * @agent: a #HeartbeatAgent
 *
 * Returns: the monitor's judgment of the agent
 */
HeartbeatAgentState
heartbeat_agent_get_state (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, HEARTBEAT_AGENT_STATE_HEALTHY);
  return agent->state;
}

/**
 * heartbeat_agent_get_status:
 * @agent: a #HeartbeatAgent
 *
 * The status the agent last reported: free text, of which `running` (the
 * default of a beat), `idle` and `error` are understood by the monitor.
 *
 * Returns: the reported status
 */
const char *
heartbeat_agent_get_status (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, NULL);
  return agent->status;
}

/**
 * heartbeat_agent_get_owner_uid:
 * @agent: a #HeartbeatAgent
 *
 * Returns: the uid the agent belongs to
 */
guint32
heartbeat_agent_get_owner_uid (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, 0);
  return agent->owner_uid;
}

/**
 * heartbeat_agent_get_pid:
 * @agent: a #HeartbeatAgent
 *
 * Returns: the process behind the agent, or 0 if none was given
 */
gint32
heartbeat_agent_get_pid (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, 0);
  return agent->pid;
}

/**
 * heartbeat_agent_get_started_at:
 * @agent: a #HeartbeatAgent
 *
 * When the agent's current run started: its registration, its first beat
 * after being declared, or its first beat after being idle. Use
 * heartbeat_monitor_to_realtime() for a wall-clock time.
 *
 * Returns: monotonic µs, in the monitor's clock
 */
gint64
heartbeat_agent_get_started_at (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, 0);
  return agent->started_at;
}

/**
 * heartbeat_agent_get_last_activity_at:
 * @agent: a #HeartbeatAgent
 *
 * When the agent last beat, was marked idle, or was registered.
 *
 * Returns: monotonic µs, in the monitor's clock
 */
gint64
heartbeat_agent_get_last_activity_at (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, 0);
  return agent->last_activity_at;
}

/**
 * heartbeat_agent_get_beats:
 * @agent: a #HeartbeatAgent
 *
 * Returns: how many beats the agent sent since it was registered
 */
guint64
heartbeat_agent_get_beats (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, 0);
  return agent->beats;
}

/**
 * heartbeat_agent_get_stale_episodes:
 * @agent: a #HeartbeatAgent
 *
 * How many times the agent went stale. An episode is counted at its first
 * #HeartbeatMonitor::agent-stale, however often it is warned about again,
 * and ends when the agent's state changes from
 * %HEARTBEAT_AGENT_STATE_STALE to another; registering the agent again
 * ends it too, but keeps the count. The count starts at 0 when the agent
 * is added (an agent put back by heartbeat_monitor_restore() included) and
 * goes with it when it is unregistered.
 *
 * Returns: the number of stale episodes
 */
guint64
heartbeat_agent_get_stale_episodes (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, 0);
  return agent->stale_episodes;
}

/**
 * heartbeat_agent_get_timeouts:
 * @agent: a #HeartbeatAgent
 *
 * How many times the agent timed out: one for every
 * #HeartbeatMonitor::agent-timed-out about it. Counted, as
 * heartbeat_agent_get_stale_episodes() is, from when the agent was added.
 *
 * Returns: the number of timeouts
 */
guint64
heartbeat_agent_get_timeouts (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, 0);
  return agent->timeouts;
}

/**
 * heartbeat_agent_get_stale_after:
 * @agent: a #HeartbeatAgent
 *
 * Returns: the agent's effective stale threshold in µs: its own, or the
 *   monitor's if it has none
 */
gint64
heartbeat_agent_get_stale_after (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, 0);
  return agent->stale_after;
}

/**
 * heartbeat_agent_get_timeout_after:
 * @agent: a #HeartbeatAgent
 *
 * Returns: the agent's effective run timeout in µs: its own, or else the
 *   monitor's #HeartbeatMonitor:timeout-threshold, or 0 if it has none (a
 *   service without a timeout of its own, see heartbeat_agent_is_service())
 */
gint64
heartbeat_agent_get_timeout_after (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, 0);
  return agent->timeout_after;
}

/**
 * heartbeat_agent_get_own_stale_after:
 * @agent: a #HeartbeatAgent
 *
 * The stale threshold the agent was registered with, as opposed to the
 * effective one (heartbeat_agent_get_stale_after()): what a front persists,
 * so that an agent that follows the monitor's threshold keeps following it.
 *
 * Returns: the agent's own stale threshold in µs, or 0 if it has none
 */
gint64
heartbeat_agent_get_own_stale_after (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, 0);
  return agent->stale_is_default ? 0 : agent->stale_after;
}

/**
 * heartbeat_agent_get_own_timeout_after:
 * @agent: a #HeartbeatAgent
 *
 * Like heartbeat_agent_get_own_stale_after(), for the timeout threshold.
 *
 * Returns: the agent's own timeout threshold in µs, or 0 if it has none
 */
gint64
heartbeat_agent_get_own_timeout_after (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, 0);
  return agent->timeout_is_default ? 0 : agent->timeout_after;
}

/**
 * heartbeat_agent_get_bound_to:
 * @agent: a #HeartbeatAgent
 *
 * What the agent's liveness is bound to, as the front that registered it
 * names it: a D-Bus unique name for `bind-to-caller` agents.
 *
 * Returns: (nullable): the binding, or %NULL
 */
const char *
heartbeat_agent_get_bound_to (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, NULL);
  return agent->bound_to;
}

/**
 * heartbeat_agent_get_metadata:
 * @agent: a #HeartbeatAgent
 *
 * The caller data of the agent: what it gave at registration, merged key
 * by key with what each beat carried, and `progress` if a beat reported it.
 *
 * Returns: (transfer none) (nullable): an `a{sv}` dictionary, or %NULL
 */
GVariant *
heartbeat_agent_get_metadata (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, NULL);
  return agent->metadata;
}

/**
 * heartbeat_agent_get_progress:
 * @agent: a #HeartbeatAgent
 * @progress: (out) (optional): where to store the progress
 *
 * Returns: %TRUE if the agent reported progress
 */
gboolean
heartbeat_agent_get_progress (const HeartbeatAgent *agent,
                              double               *progress)
{
  double value;

  g_return_val_if_fail (agent != NULL, FALSE);

  if (agent->metadata == NULL ||
      !g_variant_lookup (agent->metadata, "progress", "d", &value))
    return FALSE;
  if (progress)
    *progress = value;
  return TRUE;
}

/**
 * heartbeat_agent_is_declared:
 * @agent: a #HeartbeatAgent
 *
 * Declared agents (from configuration) are expected to exist: the monitor
 * never removes them on its own; a timed-out or gone one stays listed so
 * until it beats again.
 *
 * Returns: %TRUE if the agent was declared with heartbeat_monitor_declare()
 */
gboolean
heartbeat_agent_is_declared (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, FALSE);
  return agent->declared;
}

/**
 * heartbeat_agent_is_service:
 * @agent: a #HeartbeatAgent
 *
 * A service is meant to run until it is stopped (a systemd service, a
 * program that writes a heartbeat file, an application bound to its bus
 * name); other agents are work that ends (a registered run, a job). Only
 * work that ends gets the monitor's #HeartbeatMonitor:timeout-threshold:
 * a service has a run timeout only if it was given one of its own, so a
 * healthy, beating service is never reported timed out.
 *
 * Returns: %TRUE if the agent is a service
 */
gboolean
heartbeat_agent_is_service (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, FALSE);
  return agent->service;
}

/**
 * heartbeat_agent_is_idle:
 * @agent: a #HeartbeatAgent
 *
 * An idle agent said it has nothing to do: it has no deadlines until its
 * next beat, which starts a new run.
 *
 * Returns: %TRUE if the agent was marked idle and has not beat since
 */
gboolean
heartbeat_agent_is_idle (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, FALSE);
  return agent->idle;
}

/**
 * heartbeat_agent_get_idle_usec:
 * @agent: a #HeartbeatAgent
 * @now: monotonic µs, in the monitor's clock
 *
 * Returns: how long the agent has been quiet at @now, in µs (never negative)
 */
gint64
heartbeat_agent_get_idle_usec (const HeartbeatAgent *agent,
                               gint64                now)
{
  g_return_val_if_fail (agent != NULL, 0);
  return MAX (0, now - agent->last_activity_at);
}

/**
 * heartbeat_agent_get_running_usec:
 * @agent: a #HeartbeatAgent
 * @now: monotonic µs, in the monitor's clock
 *
 * Returns: how long the agent's current run has lasted at @now, in µs
 *   (never negative)
 */
gint64
heartbeat_agent_get_running_usec (const HeartbeatAgent *agent,
                                  gint64                now)
{
  g_return_val_if_fail (agent != NULL, 0);
  return MAX (0, now - agent->started_at);
}

/* ------------------------------------------------------------------ */
/* History                                                             */

/* The history's mark for "nobody was watching from here" (the daemon was
 * down): not a state, so not a #HeartbeatAgentState value. */
#define HISTORY_UNMONITORED (-1)

/* One state change: the wall-clock µs the agent entered @state. */
typedef struct {
  gint64 at;
  gint32 state;
} HistoryEntry;

/* Oldest first, grown by doubling up to HEARTBEAT_HISTORY_MAX_ENTRIES: an
 * agent that never changed state holds one entry in a 24-byte allocation
 * (malloc's smallest chunk): monitor-bench measures 32 bytes more RSS per
 * agent than without a history. */
struct _HeartbeatHistory {
  guint        len;
  guint        cap;
  HistoryEntry entries[];
};

static void
history_drop_first (struct _HeartbeatHistory *history,
                    guint                     n)
{
  history->len -= n;
  memmove (history->entries, history->entries + n, history->len * sizeof (HistoryEntry));
}

static void
history_append (HeartbeatAgent *agent,
                gint64          at,
                gint32          state)
{
  struct _HeartbeatHistory *history = agent->history;
  guint old;

  if (history && history->len > 0)
    {
      HistoryEntry *last = &history->entries[history->len - 1];

      if (last->state == state)
        return;
      /* a wall-clock step back must not reorder the timeline */
      at = MAX (at, last->at);
      /* keep the newest entry older than a day: the state the day began in */
      for (old = 0; old + 1 < history->len && history->entries[old + 1].at < at - HEARTBEAT_HISTORY_MAX_AGE; old++)
        ;
      if (history->len - old >= HEARTBEAT_HISTORY_MAX_ENTRIES)
        old = history->len - HEARTBEAT_HISTORY_MAX_ENTRIES + 1;
      if (old > 0)
        history_drop_first (history, old);
    }
  if (history == NULL || history->len == history->cap)
    {
      guint cap = history ? MIN (history->cap * 2, HEARTBEAT_HISTORY_MAX_ENTRIES) : 1;

      history = g_realloc (history, sizeof (struct _HeartbeatHistory) + cap * sizeof (HistoryEntry));
      if (agent->history == NULL)
        history->len = 0;
      history->cap = cap;
      agent->history = history;
    }
  history->entries[history->len].at = at;
  history->entries[history->len].state = state;
  history->len++;
}

/* Records that the agent entered its current state at @at_realtime (a no-op
 * if the history already ends in that state). */
void
heartbeat_agent_record_state (HeartbeatAgent *agent,
                              gint64          at_realtime)
{
  history_append (agent, at_realtime, agent->state);
}

/* Records that from @at_realtime nobody watched the agent (the daemon was
 * down), until the next entry. */
void
heartbeat_agent_record_unmonitored (HeartbeatAgent *agent,
                                    gint64          at_realtime)
{
  history_append (agent, at_realtime, HISTORY_UNMONITORED);
}

static const char *
history_nick (gint32 state)
{
  return state == HISTORY_UNMONITORED ? "unmonitored" : heartbeat_agent_state_to_string (state);
}

/* Replaces the history with @history, an `a(ts)` as
 * heartbeat_agent_get_history() gives (a store's copy): entries with an
 * unknown state are skipped, times are put in order, the newest
 * HEARTBEAT_HISTORY_MAX_ENTRIES kept. Does not add the current state. */
void
heartbeat_agent_set_history (HeartbeatAgent *agent,
                             GVariant       *history)
{
  gsize n, first;

  g_clear_pointer (&agent->history, g_free);
  if (history == NULL || !g_variant_is_of_type (history, G_VARIANT_TYPE ("a(ts)")))
    return;
  n = g_variant_n_children (history);
  first = n > HEARTBEAT_HISTORY_MAX_ENTRIES ? n - HEARTBEAT_HISTORY_MAX_ENTRIES : 0;
  for (gsize i = first; i < n; i++)
    {
      guint64 at;
      const char *nick;
      HeartbeatAgentState state;

      g_variant_get_child (history, i, "(t&s)", &at, &nick);
      if (at > G_MAXINT64)
        continue;
      if (g_strcmp0 (nick, "unmonitored") == 0)
        history_append (agent, (gint64) at, HISTORY_UNMONITORED);
      else if (heartbeat_agent_state_from_string (nick, &state))
        history_append (agent, (gint64) at, state);
    }
}

/**
 * heartbeat_agent_get_history:
 * @agent: a #HeartbeatAgent
 *
 * The agent's recent state changes, oldest first: when it was registered
 * or declared, and each change since (at most
 * %HEARTBEAT_HISTORY_MAX_ENTRIES, and of the ones older than
 * %HEARTBEAT_HISTORY_MAX_AGE only the newest). Each entry is the wall-clock
 * µs at which the agent entered a state and that state's nick, or the
 * nick `unmonitored` where nobody watched it from that moment to the next
 * entry (the daemon was down; see
 * #HeartbeatAgentSnapshot.unmonitored_since_realtime); the last entry is
 * the current state. A store keeps it with the agent.
 *
 * Returns: (transfer floating): an `a(ts)` array
 */
GVariant *
heartbeat_agent_get_history (const HeartbeatAgent *agent)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("a(ts)"));

  g_return_val_if_fail (agent != NULL, NULL);

  if (agent->history)
    for (guint i = 0; i < agent->history->len; i++)
      g_variant_builder_add (&builder, "(ts)", (guint64) MAX (agent->history->entries[i].at, 0),
                             history_nick (agent->history->entries[i].state));
  return g_variant_builder_end (&builder);
}

/**
 * heartbeat_agent_state_to_string:
 * @state: a #HeartbeatAgentState
 *
 * Returns: the state's nick (`healthy`, `stale`, `timed-out`, `error`,
 *   `gone`, `no-heartbeat`, `paused`), the name every front uses
 */
const char *
heartbeat_agent_state_to_string (HeartbeatAgentState state)
{
  static GEnumClass *klass;
  GEnumValue *value;

  if (g_once_init_enter (&klass))
    g_once_init_leave (&klass, g_type_class_ref (HEARTBEAT_TYPE_AGENT_STATE));

  value = g_enum_get_value (klass, state);
  g_return_val_if_fail (value != NULL, "unknown");
  return value->value_nick;
}

/**
 * heartbeat_agent_state_from_string:
 * @nick: a state's nick
 * @state: (out): where to store the state
 *
 * Returns: %TRUE if @nick names a state
 */
gboolean
heartbeat_agent_state_from_string (const char          *nick,
                                   HeartbeatAgentState *state)
{
  for (int i = 0; i < HEARTBEAT_AGENT_N_STATES; i++)
    {
      if (g_strcmp0 (nick, heartbeat_agent_state_to_string (i)) == 0)
        {
          *state = i;
          return TRUE;
        }
    }
  return FALSE;
}

/**
 * heartbeat_agent_state_get_severity:
 * @state: a #HeartbeatAgentState
 *
 * The one order of urgency every front sorts by, most urgent highest:
 * `healthy` 0, `paused` 1, `no-heartbeat` 2, `stale` 3, `error` 4, `gone`
 * 5, `timed-out` 6. A state of severity 2 or more is a problem; a paused
 * agent is not one (someone decided not to judge it).
 *
 * Returns: the state's severity
 */
guint
heartbeat_agent_state_get_severity (HeartbeatAgentState state)
{
  static const guint8 severity[HEARTBEAT_AGENT_N_STATES] = {
    [HEARTBEAT_AGENT_STATE_HEALTHY] = 0,
    [HEARTBEAT_AGENT_STATE_PAUSED] = 1,
    [HEARTBEAT_AGENT_STATE_NO_HEARTBEAT] = 2,
    [HEARTBEAT_AGENT_STATE_STALE] = 3,
    [HEARTBEAT_AGENT_STATE_ERROR] = 4,
    [HEARTBEAT_AGENT_STATE_GONE] = 5,
    [HEARTBEAT_AGENT_STATE_TIMED_OUT] = 6,
  };

  g_return_val_if_fail ((guint) state < HEARTBEAT_AGENT_N_STATES, 4);
  return severity[state];
}

/**
 * heartbeat_agent_get_state_since:
 * @agent: a #HeartbeatAgent
 *
 * Returns: when the agent entered its current state, wall-clock µs (the
 *   newest entry of heartbeat_agent_get_history(), or, where it was in the
 *   same state before the daemon went down, that earlier entry), or 0 if
 *   unknown
 */
gint64
heartbeat_agent_get_state_since (const HeartbeatAgent *agent)
{
  const struct _HeartbeatHistory *history;
  guint i;

  g_return_val_if_fail (agent != NULL, 0);
  history = agent->history;
  if (history == NULL || history->len == 0)
    return 0;
  /* in the same state on both sides of a time nobody watched (the daemon
   * restarted): since the first of them */
  i = history->len - 1;
  while (i >= 2 && history->entries[i - 1].state == HISTORY_UNMONITORED &&
         history->entries[i - 2].state == history->entries[i].state)
    i -= 2;
  return MAX (history->entries[i].at, 0);
}

/**
 * heartbeat_agent_get_uptime:
 * @agent: a #HeartbeatAgent
 * @now_realtime: now, wall-clock µs
 * @span_usec: how far back to look, µs (positive)
 *
 * How much of the time it was watched in the last @span_usec the agent was
 * `healthy`, from its history (heartbeat_agent_get_history()). Time before
 * it was registered, time nobody watched it (`unmonitored`) and time it
 * was paused do not count either way.
 *
 * Returns: a fraction from 0 to 1, or -1 if no time in the span counts
 */
double
heartbeat_agent_get_uptime (const HeartbeatAgent *agent,
                            gint64                now_realtime,
                            gint64                span_usec)
{
  const struct _HeartbeatHistory *history;
  gint64 from, up = 0, watched = 0;

  g_return_val_if_fail (agent != NULL, -1);
  g_return_val_if_fail (span_usec > 0, -1);

  history = agent->history;
  if (history == NULL)
    return -1;
  from = now_realtime - span_usec;
  for (guint i = 0; i < history->len; i++)
    {
      gint32 state = history->entries[i].state;
      gint64 start = MAX (history->entries[i].at, from);
      gint64 end = i + 1 < history->len ? history->entries[i + 1].at : now_realtime;

      end = MIN (end, now_realtime);
      if (end <= start || state == HISTORY_UNMONITORED || state == HEARTBEAT_AGENT_STATE_PAUSED)
        continue;
      watched += end - start;
      if (state == HEARTBEAT_AGENT_STATE_HEALTHY)
        up += end - start;
    }
  return watched > 0 ? (double) up / (double) watched : -1;
}

/* ------------------------------------------------------------------ */
/* Tags and pause                                                      */

HeartbeatAgentExtra *
heartbeat_agent_get_extra (HeartbeatAgent *agent)
{
  if (agent->extra == NULL)
    {
      agent->extra = g_new0 (HeartbeatAgentExtra, 1);
      agent->extra->resumed_at = G_MININT64;
    }
  return agent->extra;
}

static int
compare_tags (gconstpointer a,
              gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Sets the agent's tags (checked already by heartbeat_tags_validate()),
 * sorted and each kept once; %NULL or none clears them. */
void
heartbeat_agent_set_tags (HeartbeatAgent     *agent,
                          const char * const *tags)
{
  char **copy;
  guint n, kept = 0;

  if ((tags == NULL || tags[0] == NULL) && (agent->extra == NULL || agent->extra->tags == NULL))
    return;
  copy = g_strdupv ((char **) tags);
  n = copy ? g_strv_length (copy) : 0;
  if (n > 1)
    qsort (copy, n, sizeof (char *), compare_tags);
  for (guint i = 0; i < n; i++)
    {
      if (kept > 0 && strcmp (copy[kept - 1], copy[i]) == 0)
        g_free (copy[i]);
      else
        copy[kept++] = copy[i];
    }
  if (copy)
    copy[kept] = NULL;
  if (kept == 0)
    g_clear_pointer (&copy, g_strfreev);

  g_strfreev (heartbeat_agent_get_extra (agent)->tags);
  agent->extra->tags = copy;
}

/**
 * heartbeat_agent_get_tags:
 * @agent: a #HeartbeatAgent
 *
 * The tags the agent was registered or declared with (see
 * #HeartbeatAgentOptions.tags), sorted, each once.
 *
 * Returns: (transfer none) (array zero-terminated=1): the tags, an empty
 *   vector if none
 */
const char * const *
heartbeat_agent_get_tags (const HeartbeatAgent *agent)
{
  static const char *const none[] = { NULL };

  g_return_val_if_fail (agent != NULL, none);
  return agent->extra && agent->extra->tags ? (const char *const *) agent->extra->tags : none;
}

/**
 * heartbeat_agent_get_paused_at:
 * @agent: a #HeartbeatAgent
 *
 * Returns: when the agent was paused (see heartbeat_monitor_pause()),
 *   wall-clock µs, or 0 if it is not paused
 */
gint64
heartbeat_agent_get_paused_at (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, 0);
  return agent->extra ? agent->extra->paused_at : 0;
}

/**
 * heartbeat_agent_get_paused_reason:
 * @agent: a #HeartbeatAgent
 *
 * Returns: (nullable): the reason given when the agent was paused, or
 *   %NULL if none was given or it is not paused
 */
const char *
heartbeat_agent_get_paused_reason (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, NULL);
  return agent->extra && agent->extra->paused_at ? agent->extra->paused_reason : NULL;
}

/**
 * heartbeat_agent_get_paused_by:
 * @agent: a #HeartbeatAgent
 *
 * Returns: the uid that paused the agent, as the front said; 0 if it is
 *   not paused
 */
guint32
heartbeat_agent_get_paused_by (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, 0);
  return agent->extra && agent->extra->paused_at ? agent->extra->paused_by : 0;
}

/* ------------------------------------------------------------------ */
/* Schedule and runs                                                   */

/**
 * heartbeat_agent_has_schedule:
 * @agent: a #HeartbeatAgent
 *
 * Returns: whether the agent is a job with a schedule (see
 *   heartbeat_monitor_set_schedule())
 */
gboolean
heartbeat_agent_has_schedule (const HeartbeatAgent *agent)
{
  const HeartbeatJob *job;

  g_return_val_if_fail (agent != NULL, FALSE);
  job = agent->job;
  return job != NULL && job->due_func != NULL;
}

/**
 * heartbeat_agent_get_next_due:
 * @agent: a #HeartbeatAgent
 *
 * Returns: when the agent's next run is due, wall-clock µs, or 0 if it has
 *   no schedule or its schedule knows no next run
 */
gint64
heartbeat_agent_get_next_due (const HeartbeatAgent *agent)
{
  const HeartbeatJob *job;

  g_return_val_if_fail (agent != NULL, 0);
  job = agent->job;
  return job && job->due_func ? job->due : 0;
}

/**
 * heartbeat_agent_get_grace:
 * @agent: a #HeartbeatAgent
 *
 * Returns: how long, in µs, a run may start after its due time, or 0 if the
 *   agent has no schedule
 */
gint64
heartbeat_agent_get_grace (const HeartbeatAgent *agent)
{
  const HeartbeatJob *job;

  g_return_val_if_fail (agent != NULL, 0);
  job = agent->job;
  return job && job->due_func ? job->grace : 0;
}

/**
 * heartbeat_agent_get_late_due:
 * @agent: a #HeartbeatAgent
 *
 * Returns: while the agent is late (a run was due and did not start within
 *   the grace, and none has started since), the due time of the first run
 *   it missed, wall-clock µs; else 0
 */
gint64
heartbeat_agent_get_late_due (const HeartbeatAgent *agent)
{
  const HeartbeatJob *job;

  g_return_val_if_fail (agent != NULL, 0);
  job = agent->job;
  return job ? job->late_due : 0;
}

/**
 * heartbeat_agent_get_runs:
 * @agent: a #HeartbeatAgent
 *
 * The agent's run records, oldest first (at most %HEARTBEAT_RUNS_MAX).
 * Each is an `a{sv}`: `result` (a #HeartbeatRunResult nick) always;
 * `due-usec`, `started-usec`, `ended-usec` (wall-clock µs, `x`), `duration-usec` (µs, `x`),
 * `exit-status` (`i`), `late` (`b`) and `output` (`s`, the tail of its
 * output) when known. A store keeps them with the agent.
 *
 * Returns: (transfer floating): an `aa{sv}` array, empty for an agent that
 *   never had a run
 */
GVariant *
heartbeat_agent_get_runs (const HeartbeatAgent *agent)
{
  g_return_val_if_fail (agent != NULL, NULL);
  return heartbeat_job_runs_to_variant (agent->job);
}

/**
 * heartbeat_agent_get_last_run:
 * @agent: a #HeartbeatAgent
 *
 * Returns: (transfer floating) (nullable): the newest of
 *   heartbeat_agent_get_runs(), or %NULL if there is none
 */
GVariant *
heartbeat_agent_get_last_run (const HeartbeatAgent *agent)
{
  const HeartbeatJob *job;

  g_return_val_if_fail (agent != NULL, NULL);
  job = agent->job;
  if (job == NULL || job->runs->len == 0)
    return NULL;
  return heartbeat_run_to_variant (g_ptr_array_index (job->runs, job->runs->len - 1));
}

/**
 * heartbeat_run_result_to_string:
 * @result: a #HeartbeatRunResult
 *
 * Returns: the result's nick (`running`, `success`, `failure`,
 *   `timed-out`, `missed`)
 */
const char *
heartbeat_run_result_to_string (HeartbeatRunResult result)
{
  static GEnumClass *klass;
  GEnumValue *value;

  if (g_once_init_enter (&klass))
    g_once_init_leave (&klass, g_type_class_ref (HEARTBEAT_TYPE_RUN_RESULT));

  value = g_enum_get_value (klass, result);
  g_return_val_if_fail (value != NULL, "unknown");
  return value->value_nick;
}

/**
 * heartbeat_run_result_from_string:
 * @nick: a result's nick
 * @result: (out): where to store the result
 *
 * Returns: %TRUE if @nick names a result
 */
gboolean
heartbeat_run_result_from_string (const char         *nick,
                                  HeartbeatRunResult *result)
{
  for (int i = 0; i <= HEARTBEAT_RUN_RESULT_MISSED; i++)
    {
      if (g_strcmp0 (nick, heartbeat_run_result_to_string (i)) == 0)
        {
          *result = i;
          return TRUE;
        }
    }
  return FALSE;
}
