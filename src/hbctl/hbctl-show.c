/* hbctl-show.c: hbctl show ID, one agent
 *
 * Its lines, its unit's if it has one, its schedule and runs if it is a
 * job (next due time, lateness, the last runs and the output of the
 * newest failed one), and its timeline: a strip for the last hour and one
 * for the last day, and its latest changes of state.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <json-glib/json-glib.h>
#include <string.h>

#include "hb-duration.h"
#include "hbctl.h"
#include "hbctl-output.h"
#include "hbctl-table.h"
#include "hbctl-transport.h"

/* How bad a state is, for a cell of the strip that saw several: the worst
 * shows, so that a short stale spell in a long healthy hour is seen. */
static int
state_severity (const char *state)
{
  if (state == NULL || strcmp (state, "unmonitored") == 0)
    return 0;   /* not monitored then (the daemon was down) */
  if (strcmp (state, "paused") == 0)
    return 1;
  if (strcmp (state, "healthy") == 0)
    return 2;
  if (strcmp (state, "gone") == 0 || strcmp (state, "no-heartbeat") == 0)
    return 3;
  if (strcmp (state, "stale") == 0)
    return 4;
  return 5;   /* error, timed-out, and any state this hbctl does not know */
}

/* One character per state for the strip: its shape tells the state
 * without colour; colour (the table's) adds to it. */
static const char *
strip_glyph (const char *state)
{
  switch (state_severity (state))
    {
    case 0: return "·";
    case 1: return "‖";
    case 2: return "█";
    case 3: return "_";
    case 4: return "▄";
    default: return "×";
    }
}

/* The entries of an a(ts) history, oldest first. */
typedef struct {
  gint64      at;
  const char *state;   /* in the history variant */
} Change;

static GArray *
history_changes (GVariant *history)
{
  GArray *changes = g_array_new (FALSE, FALSE, sizeof (Change));
  GVariantIter iter;
  guint64 at;
  const char *state;

  g_variant_iter_init (&iter, history);
  while (g_variant_iter_next (&iter, "(t&s)", &at, &state))
    {
      Change change = { (gint64) MIN (at, (guint64) G_MAXINT64), state };

      g_array_append_val (changes, change);
    }
  return changes;
}

/* A strip of @cells characters for the @span µs up to @now: each cell
 * shows the worst state the agent was in during its share of the span. */
static char *
history_strip (GArray *changes,
               gint64  now,
               gint64  span,
               guint   cells)
{
  GString *strip = g_string_new (NULL);
  const char *colour = NULL;

  for (guint cell = 0; cell < cells; cell++)
    {
      gint64 from = now - span + (gint64) ((double) span * cell / cells);
      gint64 to = now - span + (gint64) ((double) span * (cell + 1) / cells);
      const char *worst = NULL;

      for (guint i = 0; i < changes->len; i++)
        {
          const Change *c = &g_array_index (changes, Change, i);
          gint64 until = i + 1 < changes->len ? g_array_index (changes, Change, i + 1).at : now;

          /* the state held over [c->at, until); does it meet [from, to)? */
          if (c->at < to && until > from && until > c->at &&
              state_severity (c->state) > state_severity (worst))
            worst = c->state;
          /* the latest state counts in the cell it was entered in, even
           * at "now" */
          else if (i + 1 == changes->len && c->at >= from && c->at < to &&
                   state_severity (c->state) > state_severity (worst))
            worst = c->state;
        }
      if (opt.color)
        {
          const char *wanted = worst ? hbctl_state_color (worst) : "\033[90m";

          if (colour != wanted)
            g_string_append (strip, wanted);
          colour = wanted;
        }
      g_string_append (strip, strip_glyph (worst));
    }
  if (opt.color)
    g_string_append (strip, "\033[0m");
  return g_string_free (strip, FALSE);
}

/* A point in time for the list of changes: the time of day, with the
 * date when @with_date. */
static char *
change_time (gint64 at, gboolean with_date)
{
  g_autoptr(GDateTime) t = g_date_time_new_from_unix_local (at / G_USEC_PER_SEC);

  if (t == NULL)
    return g_strdup ("?");
  return g_date_time_format (t, with_date ? "%Y-%m-%d %H:%M:%S" : "%H:%M:%S");
}

static gboolean
is_today (gint64 at)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  g_autoptr(GDateTime) t = g_date_time_new_from_unix_local (at / G_USEC_PER_SEC);

  return t && g_date_time_get_year (t) == g_date_time_get_year (now) &&
         g_date_time_get_day_of_year (t) == g_date_time_get_day_of_year (now);
}

/* The timeline of `show`: a strip for the last hour and one for the last
 * day, a legend, and the last @n_changes changes with how long each
 * state lasted. */
static void
print_timeline (GVariant *history,
                guint     n_changes,
                glong     columns)
{
  static const char label_indent[] = "               ";   /* under "History:      " */
  g_autoptr(GArray) changes = history_changes (history);
  gint64 now = g_get_real_time ();
  /* 1 min a character for the hour, 30 min for the day, narrower when the
   * terminal is: the labels take 15 + 11 columns */
  guint room = columns > 0 ? (guint) CLAMP (columns - 26, 12, 60) : 60;
  guint hour_cells = MIN (60, room), day_cells = MIN (48, room);
  g_autofree char *hour = NULL, *day = NULL;
  gboolean with_date = FALSE;
  guint first;

  if (changes->len == 0)
    {
      g_print ("%-14s %s\n", _("History:"), _("none kept"));
      return;
    }
  hour = history_strip (changes, now, G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC, hour_cells);
  day = history_strip (changes, now, G_GINT64_CONSTANT (86400) * G_USEC_PER_SEC, day_cells);
  /* TRANSLATORS: a label of 10 columns before the strip of the last hour */
  g_print ("%-14s %-10s %s\n", _("History:"), _("last hour"), hour);
  /* TRANSLATORS: a label of 10 columns before the strip of the last day */
  g_print ("%s%-10s %s\n", label_indent, _("last day"), day);
  /* the legend, when it fits on one line */
  if (opt.legend)
    {
      /* TRANSLATORS: the legend of the strips; keep the characters */
      const char *legend = _("█ healthy  ‖ paused  ▄ stale  × error, timed-out  _ gone, no-heartbeat  · not monitored");

      if (columns <= 0 || (glong) strlen (label_indent) + hbctl_text_width (legend) <= columns)
        g_print ("%s%s\n", label_indent, legend);
    }

  if (n_changes == 0)
    return;
  first = changes->len > n_changes ? changes->len - n_changes : 0;
  for (guint i = first; i < changes->len; i++)
    with_date |= !is_today (g_array_index (changes, Change, i).at);
  for (guint i = first; i < changes->len; i++)
    {
      const Change *c = &g_array_index (changes, Change, i);
      gboolean last = i + 1 == changes->len;
      gint64 until = last ? now : g_array_index (changes, Change, i + 1).at;
      g_autofree char *when = change_time (c->at, with_date);
      g_autofree char *lasted = hb_duration_format (until - c->at);
      g_autofree char *state = g_strdup_printf ("%-12s", c->state);
      g_autofree char *coloured = opt.color ? g_strdup_printf ("%s%s\033[0m", hbctl_state_color (c->state), state)
                                            : g_strdup (state);

      g_print ("%-14s %s  %s  ", i == first ? _("Changes:") : "", when, coloured);
      if (last)
        /* TRANSLATORS: how long the agent has been in its current state */
        g_print (_("(for %s, until now)"), lasted);
      else
        /* TRANSLATORS: how long the agent was in that state */
        g_print (_("(for %s)"), lasted);
      g_print ("\n");
    }
  if (first > 0 && opt.legend)
    {
      g_print ("%s", label_indent);
      /* TRANSLATORS: %u earlier changes are not listed */
      g_print (g_dngettext (GETTEXT_PACKAGE, "(%u earlier change; --changes N lists more)",
                            "(%u earlier changes; --changes N lists more)", first), first);
      g_print ("\n");
    }
}

/* The unit behind a unit-backed agent, after the agent's own lines. */
static void
print_unit (HeartbeatAgentInfo *info)
{
  const char *active = heartbeat_agent_info_get_unit_active_state (info);
  const char *sub = heartbeat_agent_info_get_unit_sub_state (info);
  const char *result = heartbeat_agent_info_get_unit_result (info);
  guint64 since = heartbeat_agent_info_get_unit_active_since (info);
  guint32 main_pid = heartbeat_agent_info_get_unit_main_pid (info);
  g_autofree char *cpu = hbctl_unit_cpu_text (info), *memory = hbctl_unit_memory_text (info);
  g_autoptr(GString) state = g_string_new (*active ? active : "-");
  gint32 exit_status = 0;

  if (*sub)
    g_string_append_printf (state, " (%s)", sub);
  if (since)
    {
      g_autofree char *when = hbctl_format_time (since);

      /* TRANSLATORS: after the unit's state: since when it is active */
      g_string_append_printf (state, _(" since %s"), when);
    }
  g_print ("%-14s %s\n", _("Unit:"), heartbeat_agent_info_get_unit_name (info));
  if (opt.color && *active)
    {
      const char *colour = strcmp (active, "active") == 0 || strcmp (active, "reloading") == 0 ? "\033[32m"
                           : strcmp (active, "failed") == 0 ? "\033[31m" : "\033[90m";

      g_print ("%-14s %s%s\033[0m\n", _("Unit state:"), colour, state->str);
    }
  else
    g_print ("%-14s %s\n", _("Unit state:"), state->str);
  if (main_pid)
    g_print ("%-14s %u\n", _("Main PID:"), main_pid);
  else
    g_print ("%-14s -\n", _("Main PID:"));
  g_print ("%-14s %s\n", _("CPU:"), cpu);
  g_print ("%-14s %s\n", _("Memory:"), memory);
  if (heartbeat_agent_info_get_unit_exit_status (info, &exit_status))
    /* TRANSLATORS: the unit's result (e.g. exit-code), then its main process's exit status */
    g_print ("%-14s %s (%s %d)\n", _("Result:"), *result ? result : "-", _("exit status"), exit_status);
  else
    g_print ("%-14s %s\n", _("Result:"), *result ? result : "-");
  {
    guint32 by_systemd = heartbeat_agent_info_get_unit_n_restarts (info);
    guint32 by_alerts = heartbeat_agent_info_get_unit_heartbeatd_restarts (info);

    if (by_alerts)
      /* TRANSLATORS: all restarts of the unit, then how many of them an alert of heartbeatd made */
      g_print ("%-14s %u (%u %s)\n", _("Restarts:"), by_systemd + by_alerts, by_alerts, _("by heartbeatd"));
    else
      g_print ("%-14s %u\n", _("Restarts:"), by_systemd);
  }
}

/* ---- A job: its schedule and runs ---- */

/* How many runs `show` lists, newest first, and how many lines of the
 * newest failed run's output it prints */
#define SHOW_RUNS_MAX          10
#define SHOW_OUTPUT_LINES_MAX  5

/* A point in time as systemctl prints a timer's: "Tue 2026-12-08
 * 03:00:00 CET", local time */
static char *
job_time (gint64 realtime_usec)
{
  g_autoptr(GDateTime) t = g_date_time_new_from_unix_local (realtime_usec / G_USEC_PER_SEC);

  return t ? g_date_time_format (t, "%a %Y-%m-%d %H:%M:%S %Z") : g_strdup ("?");
}

/* "in 13h" or "3m02s ago", from now */
static char *
job_relative (gint64 realtime_usec)
{
  gint64 now = g_get_real_time ();
  g_autofree char *d = hb_duration_format (realtime_usec >= now ? realtime_usec - now : now - realtime_usec);

  /* TRANSLATORS: a duration in the future, e.g. "in 13h" */
  return realtime_usec >= now ? g_strdup_printf (_("in %s"), d) : g_strdup_printf (_("%s ago"), d);
}

/* A run's number under @key, or -1 if it has none */
static gint64
run_number (GVariant   *run,
            const char *key)
{
  g_autoptr(GVariant) value = g_variant_lookup_value (run, key, NULL);

  return value ? (gint64) MIN (hbctl_dict_uint64 (run, key), (guint64) G_MAXINT64) : -1;
}

static const char *
run_result_color (const char *result)
{
  if (strcmp (result, "success") == 0)
    return "\033[32m";
  if (strcmp (result, "missed") == 0)
    return "\033[33m";
  if (strcmp (result, "running") == 0)
    return "";
  return "\033[31m";   /* failure, timed-out, and a result this hbctl does not know */
}

static gboolean
run_failed (const char *result)
{
  return strcmp (result, "success") != 0 && strcmp (result, "running") != 0 && strcmp (result, "missed") != 0;
}

/* The output of a job as lines a terminal shows as text: control
 * characters (but tabs) become "?", so a job cannot send escape sequences
 * to whoever reads `show`. */
static char *
printable (const char *text)
{
  GString *out = g_string_new (NULL);

  for (const char *p = text; *p; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if ((c < 0x20 && c != '\t' && c != '\n') || (c >= 0x7f && c < 0xa0))
        g_string_append_c (out, '?');
      else
        g_string_append_unichar (out, c);
    }
  return g_string_free (out, FALSE);
}

/* Its last @max lines (a final newline ends the last, it does not start
 * another), each indented as a value of `show` */
static void
print_output_tail (const char *output,
                   guint       max)
{
  static const char indent[] = "               ";   /* under "Output:        " */
  g_autofree char *text = printable (output);
  g_auto(GStrv) lines = NULL;
  guint n, first;

  if (g_str_has_suffix (text, "\n"))
    text[strlen (text) - 1] = '\0';
  lines = g_strsplit (text, "\n", -1);
  n = g_strv_length (lines);
  first = n > max ? n - max : 0;
  for (guint i = first; i < n; i++)
    g_print ("%s%s\n", indent, lines[i]);
}

/* The job's lines: its next due time, since when it is late, and its
 * last runs, newest first, with the output of the newest failed one. */
static void
print_job (GVariant *agent,
           GVariant *runs)
{
  gint64 next_due = (gint64) MIN (hbctl_dict_uint64 (agent, "next-due-usec"), (guint64) G_MAXINT64);
  gint64 late_due = (gint64) MIN (hbctl_dict_uint64 (agent, "late-due-usec"), (guint64) G_MAXINT64);
  gint64 grace = (gint64) MIN (hbctl_dict_uint64 (agent, "grace-usec"), (guint64) G_MAXINT64);
  gsize n_runs = runs ? g_variant_n_children (runs) : 0;
  gsize shown = MIN (n_runs, SHOW_RUNS_MAX);
  g_autoptr(GPtrArray) durations = g_ptr_array_new_with_free_func (g_free);
  gint64 now = g_get_real_time ();
  glong duration_width = 0;
  gboolean with_output = FALSE;

  if (next_due > 0)
    {
      g_autofree char *when = job_time (next_due), *relative = job_relative (next_due);

      g_print ("%-14s %s (%s)\n", _("Next run:"), when, relative);
    }
  else if (grace > 0)
    /* TRANSLATORS: a job whose schedule knows no next time */
    g_print ("%-14s %s\n", _("Next run:"), _("none scheduled"));
  if (late_due > 0)
    {
      g_autofree char *since = job_time (late_due + grace), *relative = job_relative (late_due + grace);
      g_autofree char *due = job_time (late_due);
      /* TRANSLATORS: since when a job is late, how long ago, and when its run was due */
      g_autofree char *text = g_strdup_printf (_("%s (%s; due %s)"), since, relative, due);

      if (opt.color)
        g_print ("%-14s %s%s\033[0m\n", _("Late since:"), hbctl_state_color ("stale"), text);
      else
        g_print ("%-14s %s\n", _("Late since:"), text);
    }
  if (n_runs == 0)
    {
      if (runs)
        g_print ("%-14s %s\n", _("Runs:"), _("none yet"));
      return;
    }

  /* the duration column as wide as its widest cell */
  for (gsize k = 0; k < shown; k++)
    {
      g_autoptr(GVariant) run = g_variant_get_child_value (runs, n_runs - 1 - k);
      const char *result = hbctl_dict_string (run, "result");
      gint64 duration = run_number (run, "duration-usec");
      gint64 started = run_number (run, "started-usec");
      char *text;

      if (duration >= 0)
        text = hb_duration_format (duration);
      else if (strcmp (result, "running") == 0 && started > 0)
        text = hb_duration_format (now - started);
      else
        text = g_strdup ("-");
      duration_width = MAX (duration_width, hbctl_text_width (text));
      g_ptr_array_add (durations, text);
    }

  for (gsize k = 0; k < shown; k++)
    {
      g_autoptr(GVariant) run = g_variant_get_child_value (runs, n_runs - 1 - k);
      const char *result = hbctl_dict_string (run, "result");
      gint64 started = run_number (run, "started-usec");
      gint64 when = started > 0 ? started : run_number (run, "due-usec");
      gint64 exit_status = run_number (run, "exit-status");
      gboolean late = FALSE;
      g_autofree char *time = NULL, *result_cell = NULL, *exit_cell = NULL, *line = NULL;
      const char *duration = g_ptr_array_index (durations, k);

      if (when <= 0)
        when = run_number (run, "ended-usec");
      g_variant_lookup (run, "late", "b", &late);
      time = change_time (when, TRUE);
      result_cell = g_strdup_printf ("%-9s", *result ? result : "?");
      if (opt.color && *run_result_color (result))
        {
          char *coloured = g_strdup_printf ("%s%s\033[0m", run_result_color (result), result_cell);

          g_free (result_cell);
          result_cell = coloured;
        }
      /* TRANSLATORS: a run's exit status in the list of runs */
      exit_cell = exit_status >= 0 ? g_strdup_printf (_("exit %d"), (int) exit_status) : g_strdup ("");
      line = g_strdup_printf ("%-14s %s  %s%*s  %s  %s%s%s", k == 0 ? _("Runs:") : "", time,
                              duration, (int) (duration_width - hbctl_text_width (duration)), "",
                              result_cell, exit_cell,
                              late && *exit_cell ? "  " : "",
                              /* TRANSLATORS: the mark of a run that started after its due time plus the grace */
                              late ? _("late") : "");
      /* no blanks at the end of a line (a result without exit status) */
      g_print ("%s\n", g_strchomp (line));
    }
  if (n_runs > shown && opt.legend)
    {
      g_print ("%-14s ", "");
      /* TRANSLATORS: %u earlier runs are not listed */
      g_print (g_dngettext (GETTEXT_PACKAGE, "(%u earlier run)", "(%u earlier runs)", (guint) (n_runs - shown)),
               (guint) (n_runs - shown));
      g_print ("\n");
    }

  /* the last words: of the newest run if it said any (as systemctl
   * status shows the journal's last lines), else of the newest failed
   * run */
  for (gsize k = 0; k < n_runs && !with_output; k++)
    {
      g_autoptr(GVariant) run = g_variant_get_child_value (runs, n_runs - 1 - k);
      const char *result = hbctl_dict_string (run, "result");
      const char *output = hbctl_dict_string (run, "output");
      gboolean failed = run_failed (result);
      gint64 when;
      g_autofree char *time = NULL;

      if (!failed && (k > 0 || *output == '\0'))
        continue;
      with_output = TRUE;   /* one run only, with or without output */
      if (*output == '\0')
        break;
      when = run_number (run, "started-usec") > 0 ? run_number (run, "started-usec") : run_number (run, "ended-usec");
      time = change_time (when, TRUE);
      g_print ("%-14s ", _("Output:"));
      if (failed)
        /* TRANSLATORS: before the last lines of the output of the failed run that started at %s */
        g_print (_("(the end of the failed run of %s)"), time);
      else
        /* TRANSLATORS: before the last lines of the output of the newest run, which started at %s */
        g_print (_("(the end of the run of %s)"), time);
      g_print ("\n");
      print_output_tail (output, SHOW_OUTPUT_LINES_MAX);
    }
}

/* ---- The agent's own lines ---- */

/* paused-by-uid of a pause made over HTTP (no uid) */
#define HTTP_CLIENT_UID ((guint32) 4294967294u)

/* A point in time for the State line: the time of day, with the date if
 * it is not today */
static char *
since_time (guint64 realtime_usec)
{
  gint64 at = (gint64) MIN (realtime_usec, (guint64) G_MAXINT64);

  return change_time (at, !is_today (at));
}

/* "error since 05:01:07 (exit status 3: disk full)", "gone since
 * 05:01:07 (pid 17788 exited)", "paused since 05:01:07 by uid 0 (root):
 * disk swap": the state word (coloured on a terminal), since when (the
 * record's state-since-usec, if the daemon says) and why (its reason). */
static char *
state_line (GVariant   *agent,
            const char *state)
{
  GString *line = g_string_new (NULL);
  guint64 since = hbctl_dict_uint64 (agent, "state-since-usec");
  g_autofree char *reason = hbctl_agent_reason (agent);
  g_autofree char *word = hbctl_colored (state, state);

  g_string_append (line, word);
  if (strcmp (state, "paused") == 0)
    {
      guint64 at = hbctl_dict_uint64 (agent, "paused-at-usec");
      guint32 by = hbctl_dict_uint32 (agent, "paused-by-uid");
      g_autofree char *paused_reason = hbctl_printable_line (hbctl_dict_string (agent, "paused-reason"));
      g_autofree char *name = hbctl_user_name (by);

      if (at == 0)
        at = since;
      if (at)
        {
          g_autofree char *when = since_time (at);

          /* TRANSLATORS: after the state: since when */
          g_string_append_printf (line, _(" since %s"), when);
        }
      if (by == HTTP_CLIENT_UID)
        /* TRANSLATORS: who paused the agent: a client of the HTTP API */
        g_string_append (line, _(" by an HTTP client"));
      else
        /* TRANSLATORS: who paused the agent: a uid and its user name */
        g_string_append_printf (line, _(" by uid %u (%s)"), by, name);
      if (*paused_reason)
        g_string_append_printf (line, ": %s", paused_reason);
      return g_string_free (line, FALSE);
    }
  if (since)
    {
      g_autofree char *when = since_time (since);

      g_string_append_printf (line, _(" since %s"), when);
    }
  if (*reason && strcmp (reason, state) != 0)
    g_string_append_printf (line, " (%s)", reason);
  return g_string_free (line, FALSE);
}

/* Tags: "a, b", or "-" */
static void
print_tags (GVariant *agent)
{
  g_autoptr(GVariant) tags = g_variant_lookup_value (agent, "tags", NULL);
  g_autofree char *text = tags && g_variant_n_children (tags) > 0 ? hbctl_format_value (tags) : g_strdup ("-");

  g_print ("%-14s %s\n", _("Tags:"), text);
}

/* The share of the last 24 hours the agent was healthy (of the time it
 * was monitored and not paused), if the daemon says */
static void
print_uptime (GVariant *agent)
{
  double uptime = hbctl_dict_double (agent, "uptime-24h", -2);

  if (uptime <= -2)
    return;   /* a daemon that does not say */
  if (uptime < 0)
    /* TRANSLATORS: the uptime of an agent not monitored at all in the last 24 hours */
    g_print ("%-14s %s\n", _("Uptime (24h):"), _("unknown"));
  else
    g_print ("%-14s %.1f%%\n", _("Uptime (24h):"), MIN (uptime, 1.0) * 100);
}

static int
compare_lines (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* Metadata as "key: value" lines, sorted by key (strings as they are,
 * numbers plain; see hbctl_format_value()) */
static void
print_metadata (GVariant *agent)
{
  g_autoptr(GVariant) metadata = g_variant_lookup_value (agent, "metadata", G_VARIANT_TYPE_VARDICT);
  g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);
  GVariantIter iter;
  const char *key;
  GVariant *value;

  if (metadata)
    {
      g_variant_iter_init (&iter, metadata);
      while (g_variant_iter_loop (&iter, "{&sv}", &key, &value))
        {
          g_autofree char *shown_key = hbctl_printable_line (key);
          g_autofree char *shown = hbctl_format_value (value);

          g_ptr_array_add (lines, g_strdup_printf ("%s: %s", shown_key, shown));
        }
    }
  if (lines->len == 0)
    {
      g_print ("%-14s %s\n", _("Metadata:"), "-");
      return;
    }
  g_ptr_array_sort (lines, compare_lines);
  for (guint i = 0; i < lines->len; i++)
    g_print ("%-14s %s\n", i == 0 ? _("Metadata:") : "", (const char *) g_ptr_array_index (lines, i));
}

int
hbctl_show (int argc, char **argv)
{
  gboolean json = FALSE;
  int n_changes = 5;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, N_("Print JSON"), NULL },
    { "changes", 0, 0, G_OPTION_ARG_INT, &n_changes, N_("List this many of the latest changes of state (default 5)"), N_("N") },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new (_("ID"));
  g_autoptr(HbctlTransport) transport = NULL;
  g_autoptr(GVariant) agent = NULL;
  g_autoptr(GVariant) history = NULL;
  g_autoptr(GVariant) runs = NULL;
  g_autoptr(GVariant) last_run = NULL;
  g_autoptr(HeartbeatAgentInfo) info = NULL;
  g_autofree char *owner = NULL, *started = NULL;
  g_autofree char *stale = NULL, *timeout = NULL;
  const char *state, *agent_status;
  gboolean declared = FALSE, is_job, gone, idle, waiting;
  g_autofree char *running = NULL;
  guint64 beats;
  guint32 uid, pid;
  int status = EXIT_OK;

  g_option_context_set_summary (context, _("Show one agent, its unit if it has one, and its recent history."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!hbctl_parse_command (context, &argc, &argv, &status) || !hbctl_want_args (argc, 1, _("ID"), &status))
    return status;
  if (n_changes < 0)
    {
      hbctl_print_error (_("--changes takes a number from 0 up"));
      return EXIT_USAGE;
    }
  transport = hbctl_transport_new ();
  agent = transport->get_agent (transport, argv[1], &status);
  if (agent == NULL)
    return status;

  if (json)
    {
      g_autoptr(JsonNode) node = json_gvariant_serialize (agent);
      hbctl_print_json (node);
      return EXIT_OK;
    }

  info = heartbeat_agent_info_new (agent);
  state = hbctl_dict_string (agent, "state");
  agent_status = hbctl_dict_string (agent, "status");
  beats = hbctl_dict_uint64 (agent, "beats");
  uid = hbctl_dict_uint32 (agent, "owner-uid");
  pid = hbctl_dict_uint32 (agent, "pid");
  owner = hbctl_user_name (uid);
  started = hbctl_format_time (hbctl_dict_uint64 (agent, "started-at-usec"));
  stale = hb_duration_format ((gint64) MIN (hbctl_dict_uint64 (agent, "stale-after-usec"), (guint64) G_MAXINT64));
  /* 0: no run timeout, a service (heartbeat_agent_is_service()) */
  timeout = hbctl_dict_uint64 (agent, "timeout-after-usec")
              ? hb_duration_format ((gint64) MIN (hbctl_dict_uint64 (agent, "timeout-after-usec"), (guint64) G_MAXINT64))
              : g_strdup (_("none (a service)"));
  g_variant_lookup (agent, "declared", "b", &declared);
  last_run = g_variant_lookup_value (agent, "last-run", G_VARIANT_TYPE_VARDICT);
  is_job = hbctl_agent_is_job (agent);
  gone = strcmp (state, "gone") == 0;
  idle = strcmp (agent_status, "idle") == 0;
  waiting = hbctl_agent_waiting (agent);
  running = hbctl_agent_running (agent);

  g_print ("%-14s %s\n", _("Agent:"), hbctl_dict_string (agent, "id"));
  {
    g_autofree char *line = state_line (agent, state);

    g_print ("%-14s %s\n", _("State:"), line);
  }
  /* what the agent last said of itself; a gone agent that said
   * "running" does not run (a daemon that marks it "stopped" says so
   * itself) */
  {
    g_autofree char *shown = hbctl_printable_line (agent_status);

    if (gone && strcmp (shown, "running") == 0)
      {
        /* TRANSLATORS: the status a gone agent reported last, e.g. "running" */
        g_autofree char *last = g_strdup_printf (_("%s (the last it reported)"), shown);

        g_print ("%-14s %s\n", _("Status:"), last);
      }
    else
      g_print ("%-14s %s\n", _("Status:"), *shown ? shown : "-");
  }
  {
    g_autofree char *task = hbctl_printable_line (hbctl_dict_string (agent, "task-id"));

    g_print ("%-14s %s\n", _("Task:"), *task ? task : "-");
  }
  print_tags (agent);
  g_print ("%-14s %u (%s)\n", _("Owner:"), uid, owner);
  if (pid && gone)
    /* TRANSLATORS: the process id of a gone agent, whose process exited */
    g_print ("%-14s %u (%s)\n", _("PID:"), pid, _("exited"));
  else if (pid)
    g_print ("%-14s %u\n", _("PID:"), pid);
  else
    g_print ("%-14s -\n", _("PID:"));
  g_print ("%-14s %s\n", _("Bound to:"), *hbctl_dict_string (agent, "bound-to") ? hbctl_dict_string (agent, "bound-to") : "-");
  g_print ("%-14s %s\n", _("Started:"), started);
  if (hbctl_never_beat (agent))
    g_print ("%-14s %s\n", _("Last seen:"), _("never"));
  else if (waiting)
    /* TRANSLATORS: an agent registered that never beat yet */
    g_print ("%-14s %s\n", _("Last seen:"), _("waiting for its first beat"));
  else
    {
      g_autofree char *seen = hbctl_format_time (hbctl_dict_uint64 (agent, "last-activity-at-usec"));

      g_print ("%-14s %s\n", _("Last seen:"), seen);
    }
  /* how long its current work runs, when something runs */
  if (running != NULL)
    g_print ("%-14s %s\n", _("Running:"), running);
  else if (idle && !gone)
    /* TRANSLATORS: after "Running:", an agent with nothing to do */
    g_print ("%-14s %s\n", _("Running:"), _("nothing (idle)"));
  /* a job counts runs, not beats: its beats only when it has some */
  if (beats > 0 || !is_job)
    {
      if (beats == 0)
        g_print ("%-14s %s\n", _("Beats:"), _("none yet"));
      else
        g_print ("%-14s %" G_GUINT64_FORMAT "\n", _("Beats:"), beats);
    }
  print_uptime (agent);
  g_print ("%-14s %s\n", _("Stale after:"), stale);
  g_print ("%-14s %s\n", _("Timeout after:"), timeout);
  g_print ("%-14s %s\n", _("Declared:"), declared ? _("yes") : _("no"));
  print_metadata (agent);
  if (heartbeat_agent_info_has_unit (info))
    print_unit (info);

  /* a job: its schedule and its runs (the last one from the agent if the
   * daemon lists none) */
  if (is_job)
    {
      runs = transport->get_runs (transport, argv[1]);
      if (runs == NULL && last_run && g_variant_n_children (last_run) > 0)
        runs = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE_VARDICT, &last_run, 1));
      print_job (agent, runs);
    }

  /* the timeline; a daemon that keeps no history (an older one) gets
   * none, and a note */
  history = transport->get_history (transport, argv[1]);
  if (history)
    print_timeline (history, (guint) n_changes, hbctl_output_columns ());
  return EXIT_OK;
}
