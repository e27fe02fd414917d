/* hb-calendar.c: systemd calendar expressions, evaluated by systemd
 *
 * `schedule=` takes a systemd calendar expression (`Mon..Fri 03:00`,
 * `daily`, `*-*-01 04:00:00`) where it is not a cron expression. heartbeatd
 * writes no second calendar parser for them: it asks systemd's own,
 * `systemd-analyze calendar --base-time=@T`, in UTC, for the first elapse
 * after T. A time zone (`tz=`) is given to systemd as the expression's
 * last word, as OnCalendar= takes it. The answer is only read, never
 * trusted to be well-formed: anything but a time after T is an error.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-calendar.h"

#include <stdio.h>
#include <string.h>

#include <gio/gio.h>

/* The longest expression passed on (as hb-cron.h's). */
#define EXPRESSION_MAX 256

/* What an expression may hold: systemd's calendar syntax and time zone
 * names (no option can start it: it is passed after "--"). */
static gboolean
expression_is_plausible (const char *text)
{
  gsize n = strlen (text);

  if (n == 0 || n > EXPRESSION_MAX)
    return FALSE;
  for (const char *p = text; *p; p++)
    if (!g_ascii_isalnum (*p) && strchr (" ,.:*~/+-_@", *p) == NULL)
      return FALSE;
  return TRUE;
}

/**
 * hb_calendar_next:
 * @expression: a systemd calendar expression
 * @tz: (nullable): a time zone name, or %NULL for the machine's (or the one
 *   the expression names)
 * @after_realtime: wall-clock µs
 * @error: return location for a #GError
 *
 * Asks systemd-analyze for the first elapse of @expression after
 * @after_realtime.
 *
 * Returns: wall-clock µs, or 0 with @error set if systemd refuses the
 *   expression, knows no next elapse, or cannot be asked
 */
gint64
hb_calendar_next (const char *expression,
                  const char *tz,
                  gint64      after_realtime,
                  GError    **error)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autofree char *full = NULL;
  g_autofree char *base = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  const char *line;
  int year, month, day, hour, minute, second;
  char weekday[4];
  g_autoptr(GDateTime) when = NULL;
  gint64 next;

  if (!expression_is_plausible (expression) || (tz && !expression_is_plausible (tz)))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "not a calendar expression (at most 256 of A-Z a-z 0-9 space , . : * ~ / + - _ @)");
      return 0;
    }
  full = tz ? g_strconcat (expression, " ", tz, NULL) : g_strdup (expression);
  base = g_strdup_printf ("--base-time=@%" G_GINT64_FORMAT, after_realtime / G_USEC_PER_SEC);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_setenv (launcher, "TZ", "UTC", TRUE);
  g_subprocess_launcher_setenv (launcher, "LC_ALL", "C", TRUE);
  g_subprocess_launcher_setenv (launcher, "SYSTEMD_COLORS", "0", TRUE);
  process = g_subprocess_launcher_spawn (launcher, error, "systemd-analyze", "calendar", "--iterations=1",
                                         base, "--", full, NULL);
  if (process == NULL || !g_subprocess_communicate_utf8 (process, NULL, NULL, &out, &err, error))
    return 0;
  if (!g_subprocess_get_successful (process))
    {
      g_strstrip (err);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "systemd does not read it as a calendar "
                   "expression (%s)", *err ? err : "systemd-analyze failed");
      return 0;
    }
  line = out ? strstr (out, "Next elapse: ") : NULL;
  if (line == NULL ||
      sscanf (line, "Next elapse: %3s %d-%d-%d %d:%d:%d UTC", weekday, &year, &month, &day, &hour, &minute,
              &second) != 7 ||
      (when = g_date_time_new_utc (year, month, day, hour, minute, second)) == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "systemd knows no next elapse for it");
      return 0;
    }
  next = g_date_time_to_unix (when) * G_USEC_PER_SEC;
  if (next <= after_realtime)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "systemd-analyze answered a time in the past");
      return 0;
    }
  return next;
}
