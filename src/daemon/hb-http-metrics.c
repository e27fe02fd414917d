/* hb-http-metrics.c: GET /metrics, the Prometheus text exposition
 *
 * Per agent: its state (one 0/1 series per state), info with its task,
 * its last activity, both thresholds, the idle flag and three counters;
 * the totals since the daemon started; the build. Gzipped when the
 * client accepts it. A function of the monitor: every counter is the
 * monitor's (heartbeat_monitor_get_beats_total() and the others,
 * heartbeat_agent_get_stale_episodes(), heartbeat_agent_get_timeouts()).
 * Jobs (agents with runs or a schedule) add their last run's result,
 * duration and exit status, their next due time, whether they are late
 * and since which due time.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-http-private.h"

#include <string.h>

static void
append_label (GString *out, const char *value)
{
  for (const char *p = value; *p; p++)
    {
      if (*p == '\\' || *p == '"')
        g_string_append_c (out, '\\');
      if (*p == '\n')
        g_string_append (out, "\\n");
      else
        g_string_append_c (out, *p);
    }
}

/* @usec as exact decimal seconds: 300, 0.4, 1700000000.123456 */
static void
append_seconds (GString *out, gint64 usec)
{
  guint64 magnitude = usec < 0 ? (guint64) -(usec + 1) + 1 : (guint64) usec;
  guint64 fraction = magnitude % G_USEC_PER_SEC;

  g_string_append_printf (out, "%s%" G_GUINT64_FORMAT, usec < 0 ? "-" : "", magnitude / G_USEC_PER_SEC);
  if (fraction)
    {
      char digits[8];
      int end = 6;

      g_snprintf (digits, sizeof digits, "%06" G_GUINT64_FORMAT, fraction);
      while (end > 0 && digits[end - 1] == '0')
        end--;
      g_string_append_c (out, '.');
      g_string_append_len (out, digits, end);
    }
}

static void
append_family (GString *out, const char *name, const char *type, const char *help)
{
  g_string_append_printf (out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* "NAME{agent="ID"": the caller closes the labels */
static void
append_agent_series (GString *out, const char *name, HeartbeatAgent *agent)
{
  g_string_append (out, name);
  g_string_append (out, "{agent=\"");
  append_label (out, heartbeat_agent_get_id (agent));
  g_string_append_c (out, '"');
}

/* A declared agent that never beat has no last activity (the monitor
 * counts its quiet time from the daemon's start). */
static gboolean
never_beat (HeartbeatAgent *agent)
{
  return heartbeat_agent_is_declared (agent) && heartbeat_agent_get_beats (agent) == 0 &&
         heartbeat_agent_get_state (agent) == HEARTBEAT_AGENT_STATE_NO_HEARTBEAT;
}

/* The per-agent counters, each a family of one series per agent. */
static const struct {
  const char *name;
  const char *help;
  guint64   (*get) (const HeartbeatAgent *agent);
} agent_counters[] = {
  { "heartbeat_agent_beats_total", "Beats of each agent since it was registered.",
    heartbeat_agent_get_beats },
  { "heartbeat_agent_stale_total", "Stale episodes of each agent since the daemon started.",
    heartbeat_agent_get_stale_episodes },
  { "heartbeat_agent_timeouts_total", "Timeouts of each agent since the daemon started.",
    heartbeat_agent_get_timeouts },
};

static void
variant_unref0 (gpointer value)
{
  if (value)
    g_variant_unref (value);
}

/* Whether the agent is a job: it has a schedule or a run record */
static gboolean
is_job (HeartbeatAgent *agent,
        GVariant       *last_run)
{
  return last_run != NULL || heartbeat_agent_has_schedule (agent);
}

/* The jobs' families (issue 22), for agents with runs or a schedule: the
 * last run's result (one 0/1 series per result, as the state, so that a
 * rule matches result="failure" == 1 and no series comes and goes with
 * each run), duration and exit status (when known), the next due time
 * (when there is one), whether the job is late, and while it is, the due
 * time it missed (what an alert names). */
static void
append_job_families (GString   *out,
                     GPtrArray *agents)
{
  g_autoptr(GPtrArray) last_runs = g_ptr_array_new_full (agents->len, variant_unref0);
  static const HeartbeatRunResult results[] = {
    HEARTBEAT_RUN_RESULT_RUNNING, HEARTBEAT_RUN_RESULT_SUCCESS, HEARTBEAT_RUN_RESULT_FAILURE,
    HEARTBEAT_RUN_RESULT_TIMED_OUT, HEARTBEAT_RUN_RESULT_MISSED,
  };

  for (guint i = 0; i < agents->len; i++)
    {
      GVariant *last = heartbeat_agent_get_last_run (g_ptr_array_index (agents, i));

      g_ptr_array_add (last_runs, last ? g_variant_ref_sink (last) : NULL);
    }

  append_family (out, "heartbeat_agent_last_run_result", "gauge",
                 "The result of each job's last run: 1 for its result, 0 for the others.");
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);
      GVariant *last = g_ptr_array_index (last_runs, i);
      const char *result = NULL;

      if (last == NULL || !g_variant_lookup (last, "result", "&s", &result))
        continue;
      for (gsize r = 0; r < G_N_ELEMENTS (results); r++)
        {
          const char *nick = heartbeat_run_result_to_string (results[r]);

          append_agent_series (out, "heartbeat_agent_last_run_result", agent);
          g_string_append_printf (out, ",result=\"%s\"} %d\n", nick, strcmp (nick, result) == 0);
        }
    }

  append_family (out, "heartbeat_agent_last_run_duration_seconds", "gauge",
                 "How long each job's last run took, from its start to its end; none while it runs "
                 "or when its start is unknown.");
  for (guint i = 0; i < agents->len; i++)
    {
      GVariant *last = g_ptr_array_index (last_runs, i);
      gint64 duration;

      if (last == NULL || !g_variant_lookup (last, "duration-usec", "x", &duration))
        continue;
      append_agent_series (out, "heartbeat_agent_last_run_duration_seconds", g_ptr_array_index (agents, i));
      g_string_append (out, "} ");
      append_seconds (out, duration);
      g_string_append_c (out, '\n');
    }

  append_family (out, "heartbeat_agent_last_run_exit_status", "gauge",
                 "The exit status (0-255) of each job's last run, when known.");
  for (guint i = 0; i < agents->len; i++)
    {
      GVariant *last = g_ptr_array_index (last_runs, i);
      gint32 status;

      if (last == NULL || !g_variant_lookup (last, "exit-status", "i", &status))
        continue;
      append_agent_series (out, "heartbeat_agent_last_run_exit_status", g_ptr_array_index (agents, i));
      g_string_append_printf (out, "} %d\n", status);
    }

  append_family (out, "heartbeat_agent_next_due_timestamp_seconds", "gauge",
                 "When each job's next run is due to start; none without a schedule.");
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);
      gint64 due = heartbeat_agent_get_next_due (agent);

      if (due == 0)
        continue;
      append_agent_series (out, "heartbeat_agent_next_due_timestamp_seconds", agent);
      g_string_append (out, "} ");
      append_seconds (out, due);
      g_string_append_c (out, '\n');
    }

  append_family (out, "heartbeat_agent_late", "gauge",
                 "Whether each job is late (1): a run was due and did not start within the grace, "
                 "and none has started since.");
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);

      if (!is_job (agent, g_ptr_array_index (last_runs, i)))
        continue;
      append_agent_series (out, "heartbeat_agent_late", agent);
      g_string_append_printf (out, "} %d\n", heartbeat_agent_get_late_due (agent) != 0);
    }

  append_family (out, "heartbeat_agent_late_due_timestamp_seconds", "gauge",
                 "When the first run a late job missed was due; only while it is late.");
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);
      gint64 due = heartbeat_agent_get_late_due (agent);

      if (due == 0)
        continue;
      append_agent_series (out, "heartbeat_agent_late_due_timestamp_seconds", agent);
      g_string_append (out, "} ");
      append_seconds (out, due);
      g_string_append_c (out, '\n');
    }
}

/* The exposition, as the contract of issue 14 has it: per agent, every
 * state as its own 0/1 series (7: the HEARTBEAT_AGENT_N_STATES states,
 * paused among them), info with the task, the last activity (none for a
 * declared agent that never beat), both thresholds, the idle flag and
 * three counters: at most 15 series per agent. */
static GString *
metrics_text (HbHttp *self)
{
  g_autoptr(GPtrArray) agents = heartbeat_monitor_list_agents (self->monitor);
  guint counts[HEARTBEAT_AGENT_N_STATES] = { 0 };
  GString *out = g_string_sized_new (2048 + (gsize) agents->len * 1024);
  /* monitor time to wall clock, once for the whole scrape */
  gint64 realtime_offset = heartbeat_monitor_to_realtime (self->monitor, 0);

  heartbeat_monitor_get_state_counts (self->monitor, counts);
  append_family (out, "heartbeat_agents", "gauge", "Agents by state.");
  for (guint s = 0; s < HEARTBEAT_AGENT_N_STATES; s++)
    g_string_append_printf (out, "heartbeat_agents{state=\"%s\"} %u\n", heartbeat_agent_state_to_string (s), counts[s]);

  append_family (out, "heartbeat_agent_state", "gauge",
                 "The state of each agent: 1 for its current state, 0 for the others.");
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);
      HeartbeatAgentState state = heartbeat_agent_get_state (agent);

      for (guint s = 0; s < HEARTBEAT_AGENT_N_STATES; s++)
        {
          append_agent_series (out, "heartbeat_agent_state", agent);
          g_string_append_printf (out, ",state=\"%s\"} %d\n", heartbeat_agent_state_to_string (s), s == (guint) state);
        }
    }

  append_family (out, "heartbeat_agent_info", "gauge", "Each agent, with its task (empty if none); always 1.");
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);
      const char *task = heartbeat_agent_get_task_id (agent);

      append_agent_series (out, "heartbeat_agent_info", agent);
      g_string_append (out, ",task=\"");
      append_label (out, task ? task : "");
      g_string_append (out, "\"} 1\n");
    }

  append_family (out, "heartbeat_agent_last_activity_timestamp_seconds", "gauge",
                 "When each agent was last active (a beat, its registration or an idle mark); "
                 "none for a declared agent that never beat.");
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);

      if (never_beat (agent))
        continue;
      append_agent_series (out, "heartbeat_agent_last_activity_timestamp_seconds", agent);
      g_string_append (out, "} ");
      append_seconds (out, realtime_offset + heartbeat_agent_get_last_activity_at (agent));
      g_string_append_c (out, '\n');
    }

  append_family (out, "heartbeat_agent_stale_threshold_seconds", "gauge",
                 "How long each agent may be quiet before it is stale.");
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);

      append_agent_series (out, "heartbeat_agent_stale_threshold_seconds", agent);
      g_string_append (out, "} ");
      append_seconds (out, heartbeat_agent_get_stale_after (agent));
      g_string_append_c (out, '\n');
    }

  append_family (out, "heartbeat_agent_timeout_threshold_seconds", "gauge",
                 "How long each agent's run may last before it times out.");
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);

      append_agent_series (out, "heartbeat_agent_timeout_threshold_seconds", agent);
      g_string_append (out, "} ");
      append_seconds (out, heartbeat_agent_get_timeout_after (agent));
      g_string_append_c (out, '\n');
    }

  append_family (out, "heartbeat_agent_idle", "gauge", "Whether each agent is marked idle (1) or not (0).");
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);

      append_agent_series (out, "heartbeat_agent_idle", agent);
      g_string_append_printf (out, "} %d\n", heartbeat_agent_is_idle (agent) ? 1 : 0);
    }

  append_job_families (out, agents);

  for (gsize c = 0; c < G_N_ELEMENTS (agent_counters); c++)
    {
      append_family (out, agent_counters[c].name, "counter", agent_counters[c].help);
      for (guint i = 0; i < agents->len; i++)
        {
          HeartbeatAgent *agent = g_ptr_array_index (agents, i);

          append_agent_series (out, agent_counters[c].name, agent);
          g_string_append_printf (out, "} %" G_GUINT64_FORMAT "\n", agent_counters[c].get (agent));
        }
    }

  g_string_append_printf (out,
                          "# HELP heartbeat_beats_total Beats received since the daemon started.\n"
                          "# TYPE heartbeat_beats_total counter\nheartbeat_beats_total %" G_GUINT64_FORMAT "\n"
                          "# HELP heartbeat_stale_total Stale warnings since the daemon started.\n"
                          "# TYPE heartbeat_stale_total counter\nheartbeat_stale_total %" G_GUINT64_FORMAT "\n"
                          "# HELP heartbeat_timeouts_total Agents timed out since the daemon started.\n"
                          "# TYPE heartbeat_timeouts_total counter\nheartbeat_timeouts_total %" G_GUINT64_FORMAT "\n"
                          "# HELP heartbeat_recoveries_total Recoveries from stale since the daemon started.\n"
                          "# TYPE heartbeat_recoveries_total counter\nheartbeat_recoveries_total %" G_GUINT64_FORMAT "\n",
                          heartbeat_monitor_get_beats_total (self->monitor),
                          heartbeat_monitor_get_stale_total (self->monitor),
                          heartbeat_monitor_get_timeouts_total (self->monitor),
                          heartbeat_monitor_get_recoveries_total (self->monitor));
  append_family (out, "heartbeat_http_auth_failures_total", "counter",
                 "HTTP requests refused for their bearer token since the daemon started: missing, "
                 "invalid (no such token), scope (the token may not do this), rate-limited (too many "
                 "wrong tokens, not checked).");
  {
    static const char *const reasons[HB_HTTP_AUTH_N_RESULTS] = {
      [HB_HTTP_AUTH_MISSING] = "missing", [HB_HTTP_AUTH_INVALID] = "invalid",
      [HB_HTTP_AUTH_SCOPE] = "scope", [HB_HTTP_AUTH_RATE_LIMITED] = "rate-limited",
    };

    for (guint r = HB_HTTP_AUTH_MISSING; r < HB_HTTP_AUTH_N_RESULTS; r++)
      g_string_append_printf (out, "heartbeat_http_auth_failures_total{reason=\"%s\"} %" G_GUINT64_FORMAT "\n",
                              reasons[r], self->auth_failures[r]);
  }
  append_family (out, "heartbeat_build_info", "gauge",
                 "The version of heartbeatd and the name of its machine; always 1.");
  g_string_append (out, "heartbeat_build_info{version=\"");
  append_label (out, self->version);
  g_string_append (out, "\",hostname=\"");
  append_label (out, g_get_host_name ());
  g_string_append (out, "\"} 1\n");
  return out;
}

void
handle_metrics (HbHttp            *self,
                SoupServerMessage *msg,
                gboolean           privileged)
{
  respond_compressible (msg, "text/plain; version=0.0.4; charset=utf-8", metrics_text (self));
}

