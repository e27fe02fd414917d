/* hb-agent-record.c: the agent record every front sends
 *
 * One agent as the `a{sv}` of the D-Bus interface (GetAgent, ListAgents,
 * AgentStale, AgentTimedOut). The HTTP API sends the same record as JSON
 * (hb_json_from_variant()), so the two fronts cannot drift apart in keys,
 * clamping or clock reads, and `hbctl --url` reads back what D-Bus gives.
 *
 *   id, task-id, state, status, bound-to   s   ("" when not set)
 *   owner-uid, pid                         u   (pid 0 when none)
 *   started-at-usec, last-activity-at-usec t   wall-clock µs, ≥ 0
 *   running-usec, idle-usec                t   measured at @now, ≥ 0
 *   beats                                  t
 *   stale-after-usec, timeout-after-usec   t
 *   metadata                               a{sv}
 *   declared                               b
 *   unit                                   a{sv} (hb_units_describe(), or empty)
 *   next-due-usec, late-due-usec           t   wall-clock µs; 0: none, not late
 *   grace-usec                             t   0 without a schedule
 *   last-run                               a{sv} (see heartbeat_agent_get_runs(), or empty)
 *   reason                                 s   why the state is what it is, "" when healthy
 *                                              and obvious (hb_agent_record_reason_full())
 *   severity                               u   heartbeat_agent_state_get_severity()
 *   state-since-usec                       t   wall-clock µs of the last state change
 *   tags                                   as  sorted
 *   paused-at-usec                         t   wall-clock µs; 0: not paused
 *   paused-reason                          s   "" when none
 *   paused-by-uid                          u   who paused it (0 when not paused)
 *   uptime-24h                             d   the healthy fraction of the monitored time
 *                                              of the last 24 h, 0–1; -1: none monitored
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-agent-record.h"

#include <string.h>

/* uptime-24h: over the last day */
#define UPTIME_SPAN_USEC (G_GINT64_CONSTANT (24) * 3600 * G_USEC_PER_SEC)

static guint64
nonnegative (gint64 value)
{
  return value < 0 ? 0 : (guint64) value;
}

static GVariant *
empty_dict (void)
{
  return g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0);
}

/* ------------------------------------------------------------------ */
/* Why the state is what it is                                         */

/* A duration as people read it: "5min", "1h 30min", "45s", "1s 500ms",
 * "250ms". */
static void
append_duration (GString *out,
                 gint64   usec)
{
  gint64 seconds = usec / G_USEC_PER_SEC;
  const struct { gint64 size; const char *unit; } units[] = {
    { 24 * 3600, "d" }, { 3600, "h" }, { 60, "min" }, { 1, "s" },
  };
  gboolean any = FALSE;

  if (usec < G_USEC_PER_SEC)
    {
      g_string_append_printf (out, "%" G_GINT64_FORMAT "ms", MAX (usec, 0) / 1000);
      return;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (units); i++)
    {
      gint64 n = seconds / units[i].size;

      if (n == 0)
        continue;
      g_string_append_printf (out, "%s%" G_GINT64_FORMAT "%s", any ? " " : "", n, units[i].unit);
      seconds -= n * units[i].size;
      any = TRUE;
    }
  /* a threshold of 1.5 s is not "1s" */
  if (usec % G_USEC_PER_SEC >= 1000)
    g_string_append_printf (out, " %" G_GINT64_FORMAT "ms", (usec % G_USEC_PER_SEC) / 1000);
}

/* The last line of @text with something in it (trailing blanks
 * dropped), or NULL. */
static char *
last_line (const char *text)
{
  const char *end = text + strlen (text);

  while (end > text)
    {
      const char *start = end;

      while (start > text && start[-1] != '\n')
        start--;
      {
        g_autofree char *line = g_strstrip (g_strndup (start, end - start));

        if (*line)
          return g_steal_pointer (&line);
      }
      end = start > text ? start - 1 : text;
    }
  return NULL;
}

/* The integer @key of the dictionary @dict, of any integer type (metadata
 * from JSON holds int64, from D-Bus what the caller sent). */
static gboolean
lookup_integer (GVariant   *dict,
                const char *key,
                gint64     *out)
{
  g_autoptr(GVariant) value = g_variant_lookup_value (dict, key, NULL);

  if (value == NULL)
    return FALSE;
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT32))
    *out = g_variant_get_int32 (value);
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT64))
    *out = g_variant_get_int64 (value);
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
    *out = g_variant_get_uint32 (value);
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64))
    *out = (gint64) MIN (g_variant_get_uint64 (value), (guint64) G_MAXINT64);
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT16))
    *out = g_variant_get_int16 (value);
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT16))
    *out = g_variant_get_uint16 (value);
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_BYTE))
    *out = g_variant_get_byte (value);
  else
    return FALSE;
  return TRUE;
}

/* "exit status N" and ": " and the last line of @output (nullable). */
static void
append_exit (GString    *out,
             gint64      exit_status,
             const char *output)
{
  g_autofree char *line = output ? last_line (output) : NULL;

  g_string_append_printf (out, "exit status %" G_GINT64_FORMAT, exit_status);
  if (line)
    g_string_append_printf (out, ": %s", line);
}

static void
append_error_reason (GString        *out,
                     HeartbeatAgent *agent)
{
  static const char *const keys[] = { "reason", "error", "message" };
  GVariant *metadata = heartbeat_agent_get_metadata (agent);
  g_autoptr(GVariant) last_run = heartbeat_agent_get_last_run (agent);
  const char *text, *output = NULL, *result = NULL;
  gint64 exit_status;

  if (metadata && g_variant_is_of_type (metadata, G_VARIANT_TYPE_VARDICT))
    for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
      if (g_variant_lookup (metadata, keys[i], "&s", &text) && *text)
        {
          g_string_append (out, text);
          return;
        }

  /* a job's last run, as the run record says */
  if (last_run)
    {
      g_variant_ref_sink (last_run);
      if (!g_variant_lookup (last_run, "output", "&s", &output))
        output = NULL;
      if (lookup_integer (last_run, "exit-status", &exit_status))
        {
          append_exit (out, exit_status, output);
          return;
        }
      if (g_variant_lookup (last_run, "result", "&s", &result) && strcmp (result, "success") != 0 &&
          strcmp (result, "running") != 0)
        {
          g_autofree char *line = output ? last_line (output) : NULL;

          g_string_append_printf (out, "last run: %s", result);
          if (line)
            g_string_append_printf (out, ": %s", line);
          return;
        }
    }

  /* hbctl run without a job: exit-status and output in its metadata */
  if (metadata && g_variant_is_of_type (metadata, G_VARIANT_TYPE_VARDICT) &&
      lookup_integer (metadata, "exit-status", &exit_status))
    {
      if (!g_variant_lookup (metadata, "output", "&s", &output))
        output = NULL;
      append_exit (out, exit_status, output);
      return;
    }

  text = heartbeat_agent_get_status (agent);
  g_string_append (out, text && *text ? text : "error");
}

/* Makes @text one line of at most HB_AGENT_REASON_MAX bytes of valid
 * UTF-8, cut at a character. */
static char *
one_line (const char *text)
{
  g_autofree char *valid = g_utf8_make_valid (text, -1);
  GString *out = g_string_sized_new (strlen (valid));
  gboolean blank = FALSE;

  for (const char *p = valid; *p; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (g_unichar_iscntrl (c) || c == 0x2028 || c == 0x2029)
        {
          /* a line break or tab: one space */
          if (!blank && out->len > 0)
            g_string_append_c (out, ' ');
          blank = TRUE;
          continue;
        }
      if (out->len + (g_utf8_next_char (p) - p) > HB_AGENT_REASON_MAX)
        break;
      g_string_append_len (out, p, g_utf8_next_char (p) - p);
      blank = c == ' ';
    }
  while (out->len > 0 && out->str[out->len - 1] == ' ')
    g_string_truncate (out, out->len - 1);
  return g_string_free (out, FALSE);
}

/**
 * hb_agent_record_reason_full:
 * @agent: an agent
 * @units: (nullable): the systemd units behind declared agents, to name
 *   the unit of a `gone` agent
 *
 * Why @agent's state is what it is, in one line (the record's `reason`):
 *
 *  - error: its metadata's `reason` (or `error`, `message`) if a string;
 *    else the last run's "exit status N" and ": " and the last non-empty
 *    line of its output; else its status text
 *  - stale: "late: due at TIME not started" for a late job, else "no
 *    activity for more than THRESHOLD"
 *  - timed-out: "running longer than TIMEOUT"
 *  - gone: "bus name X left the bus", "pid N exited" or "unit U stopped"
 *  - no-heartbeat: "never beat", or that its heartbeat file is missing
 *    or unreadable once it has beaten
 *  - paused: the pause's reason, else "paused"
 *  - healthy: "waiting for its first beat" without a beat or a run,
 *    else ""
 *
 * At most %HB_AGENT_REASON_MAX bytes of valid UTF-8, cut at a character.
 *
 * Returns: (transfer full): the reason, "" when there is nothing to say
 */
char *
hb_agent_record_reason_full (HeartbeatAgent *agent,
                             HbUnits        *units)
{
  g_autoptr(GString) out = g_string_new (NULL);

  g_return_val_if_fail (agent != NULL, NULL);
  g_return_val_if_fail (units == NULL || HB_IS_UNITS (units), NULL);

  switch (heartbeat_agent_get_state (agent))
    {
    case HEARTBEAT_AGENT_STATE_ERROR:
      append_error_reason (out, agent);
      break;
    case HEARTBEAT_AGENT_STATE_STALE:
      {
        gint64 late_due = heartbeat_agent_get_late_due (agent);

        if (late_due > 0)
          {
            g_autoptr(GDateTime) due = g_date_time_new_from_unix_utc (late_due / G_USEC_PER_SEC);
            g_autofree char *text = due ? g_date_time_format (due, "%Y-%m-%dT%H:%M:%SZ") : NULL;

            g_string_append_printf (out, "late: due at %s not started", text ? text : "?");
          }
        else
          {
            g_string_append (out, "no activity for more than ");
            append_duration (out, heartbeat_agent_get_stale_after (agent));
          }
      }
      break;
    case HEARTBEAT_AGENT_STATE_TIMED_OUT:
      g_string_append (out, "running longer than ");
      append_duration (out, heartbeat_agent_get_timeout_after (agent));
      break;
    case HEARTBEAT_AGENT_STATE_GONE:
      {
        const char *bound_to = heartbeat_agent_get_bound_to (agent);
        const char *unit = units ? hb_units_get_unit_name (units, heartbeat_agent_get_id (agent)) : NULL;
        gint32 pid = heartbeat_agent_get_pid (agent);

        if (bound_to && *bound_to)
          g_string_append_printf (out, "bus name %s left the bus", bound_to);
        else if (pid > 0)
          g_string_append_printf (out, "pid %d exited", pid);
        else if (unit)
          g_string_append_printf (out, "unit %s stopped", unit);
        else
          g_string_append (out, "gone");
      }
      break;
    case HEARTBEAT_AGENT_STATE_NO_HEARTBEAT:
      g_string_append (out, heartbeat_agent_get_beats (agent) == 0
                            ? "never beat" : "its heartbeat file is missing or unreadable");
      break;
    case HEARTBEAT_AGENT_STATE_PAUSED:
      {
        const char *reason = heartbeat_agent_get_paused_reason (agent);

        g_string_append (out, reason && *reason ? reason : "paused");
      }
      break;
    case HEARTBEAT_AGENT_STATE_HEALTHY:
    default:
      /* a job's runs are no beats, but say it is there */
      if (heartbeat_agent_get_beats (agent) == 0)
        {
          GVariant *last_run = heartbeat_agent_get_last_run (agent);   /* floating */

          if (last_run == NULL)
            g_string_append (out, "waiting for its first beat");
          else
            g_variant_unref (g_variant_ref_sink (last_run));
        }
      break;
    }
  return one_line (out->str);
}

/**
 * hb_agent_record_reason:
 * @agent: an agent
 *
 * hb_agent_record_reason_full() without units: a unit-backed `gone`
 * agent is said to be "gone" unless it had a pid or a bus name.
 *
 * Returns: (transfer full): the reason, "" when there is nothing to say
 */
char *
hb_agent_record_reason (HeartbeatAgent *agent)
{
  return hb_agent_record_reason_full (agent, NULL);
}

/* ------------------------------------------------------------------ */
/* The record                                                          */

/**
 * hb_agent_record_at:
 * @agent: an agent
 * @units: (nullable): the systemd units behind declared agents
 * @now: the monitor's time (heartbeat_monitor_get_time())
 * @realtime_offset: what turns a monitor time into wall-clock time
 *   (heartbeat_monitor_to_realtime (monitor, 0))
 *
 * The record of @agent at @now. A reply that describes several agents
 * reads the two clocks once, so all its agents are described at the same
 * instant.
 *
 * Returns: (transfer floating): the `a{sv}` record, every key present
 */
GVariant *
hb_agent_record_at (HeartbeatAgent *agent,
                    HbUnits        *units,
                    gint64          now,
                    gint64          realtime_offset)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  const char *task_id = heartbeat_agent_get_task_id (agent);
  const char *status = heartbeat_agent_get_status (agent);
  const char *bound_to = heartbeat_agent_get_bound_to (agent);
  GVariant *metadata = heartbeat_agent_get_metadata (agent);
  const char *paused_reason = heartbeat_agent_get_paused_reason (agent);
  HeartbeatAgentState state = heartbeat_agent_get_state (agent);
  GVariant *last_run;
  double uptime;

  g_return_val_if_fail (agent != NULL, NULL);
  g_return_val_if_fail (units == NULL || HB_IS_UNITS (units), NULL);

  g_variant_builder_add (&builder, "{sv}", "id",
                         g_variant_new_string (heartbeat_agent_get_id (agent)));
  g_variant_builder_add (&builder, "{sv}", "task-id",
                         g_variant_new_string (task_id ? task_id : ""));
  g_variant_builder_add (&builder, "{sv}", "state",
                         g_variant_new_string (heartbeat_agent_state_to_string (state)));
  g_variant_builder_add (&builder, "{sv}", "status",
                         g_variant_new_string (status ? status : ""));
  g_variant_builder_add (&builder, "{sv}", "owner-uid",
                         g_variant_new_uint32 (heartbeat_agent_get_owner_uid (agent)));
  g_variant_builder_add (&builder, "{sv}", "pid",
                         g_variant_new_uint32 ((guint32) MAX (0, heartbeat_agent_get_pid (agent))));
  g_variant_builder_add (&builder, "{sv}", "started-at-usec",
                         g_variant_new_uint64 (nonnegative (realtime_offset + heartbeat_agent_get_started_at (agent))));
  g_variant_builder_add (&builder, "{sv}", "last-activity-at-usec",
                         g_variant_new_uint64 (nonnegative (realtime_offset + heartbeat_agent_get_last_activity_at (agent))));
  g_variant_builder_add (&builder, "{sv}", "running-usec",
                         g_variant_new_uint64 (nonnegative (heartbeat_agent_get_running_usec (agent, now))));
  g_variant_builder_add (&builder, "{sv}", "idle-usec",
                         g_variant_new_uint64 (nonnegative (heartbeat_agent_get_idle_usec (agent, now))));
  g_variant_builder_add (&builder, "{sv}", "beats",
                         g_variant_new_uint64 (heartbeat_agent_get_beats (agent)));
  g_variant_builder_add (&builder, "{sv}", "stale-after-usec",
                         g_variant_new_uint64 (nonnegative (heartbeat_agent_get_stale_after (agent))));
  g_variant_builder_add (&builder, "{sv}", "timeout-after-usec",
                         g_variant_new_uint64 (nonnegative (heartbeat_agent_get_timeout_after (agent))));
  g_variant_builder_add (&builder, "{sv}", "metadata", metadata ? metadata : empty_dict ());
  g_variant_builder_add (&builder, "{sv}", "declared",
                         g_variant_new_boolean (heartbeat_agent_is_declared (agent)));
  g_variant_builder_add (&builder, "{sv}", "bound-to",
                         g_variant_new_string (bound_to ? bound_to : ""));
  g_variant_builder_add (&builder, "{sv}", "unit",
                         units ? hb_units_describe (units, heartbeat_agent_get_id (agent)) : empty_dict ());
  g_variant_builder_add (&builder, "{sv}", "next-due-usec",
                         g_variant_new_uint64 (nonnegative (heartbeat_agent_get_next_due (agent))));
  g_variant_builder_add (&builder, "{sv}", "late-due-usec",
                         g_variant_new_uint64 (nonnegative (heartbeat_agent_get_late_due (agent))));
  g_variant_builder_add (&builder, "{sv}", "grace-usec",
                         g_variant_new_uint64 (nonnegative (heartbeat_agent_get_grace (agent))));
  last_run = heartbeat_agent_get_last_run (agent);
  g_variant_builder_add (&builder, "{sv}", "last-run", last_run ? last_run : empty_dict ());
  g_variant_builder_add (&builder, "{sv}", "reason",
                         g_variant_new_take_string (hb_agent_record_reason_full (agent, units)));
  g_variant_builder_add (&builder, "{sv}", "severity",
                         g_variant_new_uint32 ((guint32) heartbeat_agent_state_get_severity (state)));
  g_variant_builder_add (&builder, "{sv}", "state-since-usec",
                         g_variant_new_uint64 (nonnegative (heartbeat_agent_get_state_since (agent))));
  g_variant_builder_add (&builder, "{sv}", "tags",
                         g_variant_new_strv (heartbeat_agent_get_tags (agent), -1));
  g_variant_builder_add (&builder, "{sv}", "paused-at-usec",
                         g_variant_new_uint64 (nonnegative (heartbeat_agent_get_paused_at (agent))));
  g_variant_builder_add (&builder, "{sv}", "paused-reason",
                         g_variant_new_string (paused_reason ? paused_reason : ""));
  g_variant_builder_add (&builder, "{sv}", "paused-by-uid",
                         g_variant_new_uint32 (heartbeat_agent_get_paused_by (agent)));
  uptime = heartbeat_agent_get_uptime (agent, realtime_offset + now, UPTIME_SPAN_USEC);
  g_variant_builder_add (&builder, "{sv}", "uptime-24h",
                         g_variant_new_double (uptime < 0 ? -1.0 : CLAMP (uptime, 0.0, 1.0)));
  return g_variant_builder_end (&builder);
}

/**
 * hb_agent_record:
 * @monitor: the monitor that keeps @agent
 * @units: (nullable): the systemd units behind declared agents
 * @agent: an agent
 *
 * hb_agent_record_at() with both clocks read now.
 *
 * Returns: (transfer floating): the `a{sv}` record
 */
GVariant *
hb_agent_record (HeartbeatMonitor *monitor,
                 HbUnits          *units,
                 HeartbeatAgent   *agent)
{
  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), NULL);

  return hb_agent_record_at (agent, units, heartbeat_monitor_get_time (monitor),
                             heartbeat_monitor_to_realtime (monitor, 0));
}
