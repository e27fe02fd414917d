/* test-schedules.c: [agent:NAME] schedule= jobs in the running daemon
 *
 * The daemon runs under libfaketime (Debian's faketime package) with its
 * wall clock set a few seconds before a due time, so the real daemon
 * evaluates the real cron expression in a real time zone, on the night the
 * clocks change too, and the test waits (bounded) for its signals instead
 * of for a real 03:00. The monotonic clock is left alone
 * (FAKETIME_DONT_FAKE_MONOTONIC), as the daemon's deadlines run on it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include <glib/gstdio.h>

#include "hb-harness.h"

#define LIBFAKETIME "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"

typedef struct {
  HbHarness *h;
} Fixture;

static void
fixture_setup (Fixture      *f,
               gconstpointer data)
{
  f->h = hb_harness_new ();
}

static void
fixture_teardown (Fixture      *f,
                  gconstpointer data)
{
  g_clear_pointer (&f->h, hb_harness_free);
  g_unsetenv ("FAKETIME");
  g_unsetenv ("FAKETIME_DONT_FAKE_MONOTONIC");
  g_unsetenv ("FAKETIME_NO_CACHE");
  g_unsetenv ("LD_PRELOAD");
  g_unsetenv ("TZ");
}

static gboolean
file_has_line (HbHarness *h,
               gpointer   path)
{
  g_autofree char *text = NULL;

  return g_file_get_contents (path, &text, NULL, NULL) && strchr (text, '\n') != NULL;
}

/* UTC µs of a broken-down UTC time. */
static gint64
utc (int year, int month, int day, int hour, int minute, int second)
{
  g_autoptr(GDateTime) dt = g_date_time_new_utc (year, month, day, hour, minute, second);

  return g_date_time_to_unix (dt) * G_USEC_PER_SEC;
}

/* Starts the bus, then the daemon with @config and its wall clock at
 * @start (TZ=@tz). Returns FALSE (skipped) without libfaketime or under a
 * wrapper that would not pass LD_PRELOAD on. */
static gboolean
start_at (Fixture    *f,
          const char *config,
          const char *start,
          const char *tz)
{
  g_autofree char *faketime = g_strdup_printf ("@%s", start);
  const char *asan = g_getenv ("ASAN_OPTIONS");
  g_autofree char *asan_options = NULL;

  if (!g_file_test (LIBFAKETIME, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("libfaketime is missing (apt-get install faketime)");
      return FALSE;
    }
  if (g_getenv ("HB_DAEMON_WRAPPER") && *g_getenv ("HB_DAEMON_WRAPPER"))
    {
      g_test_skip ("the daemon runs under a wrapper");
      return FALSE;
    }
  if (f->h->bus_address == NULL && !hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return FALSE;
  hb_harness_write_config (f->h, config);

  /* for the daemon only: the bus already runs */
  g_setenv ("FAKETIME", faketime, TRUE);
  g_setenv ("FAKETIME_DONT_FAKE_MONOTONIC", "1", TRUE);
  g_setenv ("FAKETIME_NO_CACHE", "1", TRUE);
  g_setenv ("LD_PRELOAD", LIBFAKETIME, TRUE);
  g_setenv ("TZ", tz, TRUE);
  /* a sanitized daemon: libfaketime comes before the ASan runtime */
  asan_options = g_strdup_printf ("%s%sverify_asan_link_order=0", asan ? asan : "", asan && *asan ? ":" : "");
  g_setenv ("ASAN_OPTIONS", asan_options, TRUE);
  hb_harness_start_daemon (f->h, 0);
  g_unsetenv ("LD_PRELOAD");
  g_unsetenv ("FAKETIME");
  if (asan)
    g_setenv ("ASAN_OPTIONS", asan, TRUE);
  else
    g_unsetenv ("ASAN_OPTIONS");
  return TRUE;
}

/* The job @id is due at @due; it goes stale (AgentStale) when that passes
 * without a run, names @due as the run it missed and @next as its next. */
static void
assert_goes_late (HbHarness  *h,
                  const char *id,
                  gint64      due,
                  gint64      next)
{
  g_autoptr(GVariant) before = hb_harness_get_agent (h, id);
  g_autoptr(GVariant) after = NULL;
  guint cursor = hb_harness_signal_cursor (h);

  g_assert_cmpuint (hb_dict_uint64 (before, "next-due-usec"), ==, (guint64) due);
  g_assert_cmpuint (hb_dict_uint64 (before, "late-due-usec"), ==, 0);
  g_assert_nonnull (hb_wait_signal (h, &cursor, "AgentStale", id, NULL, NULL));
  after = hb_harness_get_agent (h, id);
  g_assert_cmpstr (hb_dict_string (after, "state"), ==, "stale");
  g_assert_cmpuint (hb_dict_uint64 (after, "late-due-usec"), ==, (guint64) due);
  g_assert_cmpuint (hb_dict_uint64 (after, "next-due-usec"), ==, (guint64) next);
}

/* A daily 03:00 job not run by 03:00 + grace: the agent leaves healthy
 * with AgentStale, names the due time it missed, shows tomorrow's, and
 * keeps a missed run record. */
static void
test_late_at_due_plus_grace (Fixture      *f,
                             gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) before = NULL;
  g_autoptr(GVariant) after = NULL;
  g_autoptr(GVariant) last_run = NULL;
  gint64 due = utc (2026, 12, 7, 3, 0, 0);
  const char *result = NULL;
  gint64 missed_due = 0;

  g_autofree char *script = NULL;
  g_autofree char *seen = NULL;
  g_autofree char *config = NULL;
  g_autofree char *said = NULL;

  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return;
  /* an [alert:NAME] exec= program says what it was told */
  script = g_build_filename (h->tmpdir, "alert.sh", NULL);
  seen = g_build_filename (h->tmpdir, "alert.out", NULL);
  {
    g_autofree char *text = g_strdup_printf ("#!/bin/sh\necho \"$HB_EVENT $HB_AGENT $HB_DUE\" >> %s\n", seen);

    g_assert_true (g_file_set_contents (script, text, -1, NULL));
    g_assert_cmpint (g_chmod (script, 0755), ==, 0);
  }
  config = g_strdup_printf ("[monitor]\nstale-threshold=1h\n"
                            "[agent:nightly]\nschedule=0 3 * * *\ntz=UTC\ngrace=2s\n"
                            "[alert:late]\nevents=stale\nexec=%s\n", script);
  h->http_port = hb_free_port ();
  if (!start_at (f, config, "2026-12-07 02:59:57", "UTC"))
    return;

  before = hb_harness_get_agent (h, "nightly");
  g_assert_cmpstr (hb_dict_string (before, "state"), ==, "healthy");
  g_assert_cmpstr (hb_dict_string (before, "status"), ==, "idle");
  g_assert_cmpuint (hb_dict_uint64 (before, "grace-usec"), ==, G_GUINT64_CONSTANT (2) * G_USEC_PER_SEC);
  assert_goes_late (h, "nightly", due, due + G_GINT64_CONSTANT (24) * 3600 * G_USEC_PER_SEC);
  after = hb_harness_get_agent (h, "nightly");
  last_run = hb_dict_value (after, "last-run", "a{sv}");
  g_assert_true (g_variant_lookup (last_run, "result", "&s", &result));
  g_assert_cmpstr (result, ==, "missed");
  g_assert_true (g_variant_lookup (last_run, "due-usec", "x", &missed_due));
  g_assert_cmpint (missed_due, ==, due);

  /* the alert names the due time it missed */
  hb_harness_wait_until (h, file_has_line, seen);
  g_assert_true (g_file_get_contents (seen, &said, NULL, NULL));
  g_assert_cmpstr (said, ==, "stale nightly 2026-12-07T03:00:00Z\n");

  /* the crontab's curl line, as README has it, brings it back */
  {
    g_autofree char *url = g_strdup_printf ("http://127.0.0.1:%u/ping/nightly", h->http_port);
    const char *argv[] = { "curl", "-fsS", "-m", "10", "--retry", "5", "-o", "/dev/null", url, NULL };
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) back = NULL;
    guint cursor = hb_harness_signal_cursor (h);
    int status = -1;

    if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status, &error))
      {
        g_test_skip ("curl is missing");
        return;
      }
    g_assert_true (g_spawn_check_wait_status (status, NULL));
    g_assert_nonnull (hb_wait_signal (h, &cursor, "AgentRecovered", "nightly", NULL, NULL));
    back = hb_harness_get_agent (h, "nightly");
    g_assert_cmpstr (hb_dict_string (back, "state"), ==, "healthy");
    g_assert_cmpuint (hb_dict_uint64 (back, "late-due-usec"), ==, 0);
  }
}

/* A 02:30 job in Europe/Berlin on 2026-03-29, when the clocks go from
 * 02:00 CET to 03:00 CEST: cron runs it right after the change, 03:00
 * CEST (01:00 UTC), and the daemon says that is when it is due. */
static void
test_dst_gap (Fixture      *f,
              gconstpointer data)
{
  HbHarness *h = f->h;

  /* 01:59:58 CET = 00:59:58 UTC */
  if (!start_at (f,
                 "[monitor]\nstale-threshold=1h\n"
                 "[agent:backup]\nschedule=30 2 * * *\ntz=Europe/Berlin\ngrace=1s\n",
                 "2026-03-29 00:59:58", "UTC"))
    return;

  /* the next night has no gap: 02:30 CEST = 00:30 UTC */
  assert_goes_late (h, "backup", utc (2026, 3, 29, 1, 0, 0), utc (2026, 3, 30, 0, 30, 0));
}

/* A systemd calendar expression, evaluated by systemd-analyze, in the
 * time zone tz= names: Monday 03:00 in Berlin is 02:00 UTC in December. */
static void
test_calendar (Fixture      *f,
               gconstpointer data)
{
  HbHarness *h = f->h;

  if (!g_file_test ("/usr/bin/systemd-analyze", G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("systemd-analyze is missing");
      return;
    }
  if (!start_at (f,
                 "[monitor]\nstale-threshold=1h\n"
                 "[agent:weekdays]\nschedule=Mon..Fri 03:00\ntz=Europe/Berlin\ngrace=1s\n",
                 "2026-12-07 01:59:58", "UTC"))
    return;

  assert_goes_late (h, "weekdays", utc (2026, 12, 7, 2, 0, 0), utc (2026, 12, 8, 2, 0, 0));
}

/* A reload that takes schedule= away takes the schedule away; one that
 * changes it moves the due time; a bad one keeps the old. */
static void
test_reload (Fixture      *f,
             gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) agent = NULL;
  guint cursor;

  if (!start_at (f,
                 "[monitor]\nstale-threshold=1h\n"
                 "[agent:weekly]\nschedule=@weekly\ntz=UTC\n",
                 "2026-12-07 12:00:00", "UTC"))
    return;

  agent = hb_harness_get_agent (h, "weekly");
  /* @weekly: Sunday 00:00; 2026-12-07 is a Monday */
  g_assert_cmpuint (hb_dict_uint64 (agent, "next-due-usec"), ==, (guint64) utc (2026, 12, 13, 0, 0, 0));
  g_assert_cmpuint (hb_dict_uint64 (agent, "grace-usec"), ==, G_GUINT64_CONSTANT (600) * G_USEC_PER_SEC);

  hb_harness_write_config (h, "[monitor]\nstale-threshold=1h\n"
                              "[agent:weekly]\nschedule=0 0 1 jan,jul *\ntz=UTC\ngrace=1h\n");
  cursor = hb_harness_notify_cursor (h);
  hb_harness_signal_daemon (h, SIGHUP);
  g_assert_nonnull (hb_wait_notify (h, &cursor, "RELOADING=1"));
  g_assert_nonnull (hb_wait_notify (h, &cursor, "READY=1"));
  g_clear_pointer (&agent, g_variant_unref);
  agent = hb_harness_get_agent (h, "weekly");
  g_assert_cmpuint (hb_dict_uint64 (agent, "next-due-usec"), ==, (guint64) utc (2027, 1, 1, 0, 0, 0));
  g_assert_cmpuint (hb_dict_uint64 (agent, "grace-usec"), ==, G_GUINT64_CONSTANT (3600) * G_USEC_PER_SEC);

  /* a bad expression: refused, the old schedule stays */
  hb_harness_write_config (h, "[monitor]\nstale-threshold=1h\n"
                              "[agent:weekly]\nschedule=0 0 31 2 mon-\n");
  cursor = hb_harness_notify_cursor (h);
  hb_harness_signal_daemon (h, SIGHUP);
  g_assert_nonnull (hb_wait_notify (h, &cursor, "RELOADING=1"));
  g_assert_nonnull (hb_wait_notify (h, &cursor, "READY=1"));
  g_clear_pointer (&agent, g_variant_unref);
  agent = hb_harness_get_agent (h, "weekly");
  g_assert_cmpuint (hb_dict_uint64 (agent, "next-due-usec"), ==, (guint64) utc (2027, 1, 1, 0, 0, 0));

  /* gone from the configuration's agent: no schedule */
  hb_harness_write_config (h, "[monitor]\nstale-threshold=1h\n[agent:weekly]\n");
  cursor = hb_harness_notify_cursor (h);
  hb_harness_signal_daemon (h, SIGHUP);
  g_assert_nonnull (hb_wait_notify (h, &cursor, "RELOADING=1"));
  g_assert_nonnull (hb_wait_notify (h, &cursor, "READY=1"));
  g_clear_pointer (&agent, g_variant_unref);
  agent = hb_harness_get_agent (h, "weekly");
  g_assert_cmpuint (hb_dict_uint64 (agent, "next-due-usec"), ==, 0);
  g_assert_cmpuint (hb_dict_uint64 (agent, "grace-usec"), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/schedules/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("late-at-due-plus-grace", test_late_at_due_plus_grace);
  ADD ("dst-gap", test_dst_gap);
  ADD ("reload", test_reload);
  ADD ("calendar", test_calendar);

  return g_test_run ();
}
