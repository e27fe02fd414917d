/* test-agent-record.c: the reason every front and alert gives
 * (hb_agent_record_reason()), and the keys of issue 24 in the record,
 * on a monitor driven by explicit clocks
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "hb-agent-record.h"
#include "heartbeat-monitor.h"

typedef struct {
  HeartbeatMonitor *monitor;
  gint64            now;        /* monotonic µs */
  gint64            real_now;   /* wall clock µs */
} Fixture;

static gint64
monotonic (gpointer user_data)
{
  return ((Fixture *) user_data)->now;
}

static gint64
realtime (gpointer user_data)
{
  return ((Fixture *) user_data)->real_now;
}

static void
advance (Fixture *f, gint64 usec)
{
  f->now += usec;
  f->real_now += usec;
  heartbeat_monitor_run_checks (f->monitor, f->now);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->now = G_GINT64_CONSTANT (1000) * G_USEC_PER_SEC;
  f->real_now = G_GINT64_CONSTANT (1700000000) * G_USEC_PER_SEC;
  f->monitor = heartbeat_monitor_new ();
  heartbeat_monitor_set_clock (f->monitor, monotonic, f);
  heartbeat_monitor_set_realtime_clock (f->monitor, realtime, f);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->monitor);
}

static HeartbeatAgent *
add (Fixture *f, const char *id, const HeartbeatAgentOptions *options)
{
  g_autoptr(GError) error = NULL;
  HeartbeatAgentOptions defaults = { .stale_after_usec = G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC };
  HeartbeatAgent *agent = heartbeat_monitor_register (f->monitor, id, options ? options : &defaults, &error);

  g_assert_no_error (error);
  g_assert_nonnull (agent);
  return agent;
}

/* Beats @id with @status and @metadata (a GVariant text, or NULL). */
static void
beat (Fixture *f, const char *id, const char *status, const char *metadata)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) m = metadata ? g_variant_ref_sink (g_variant_new_parsed (metadata)) : NULL;
  HeartbeatBeatDetails details = { .status = status, .metadata = m };

  g_assert_true (heartbeat_monitor_beat (f->monitor, id, &details, &error));
  g_assert_no_error (error);
}

static void
assert_reason (Fixture *f, const char *id, const char *expected)
{
  g_autofree char *reason = hb_agent_record_reason (heartbeat_monitor_lookup (f->monitor, id));

  g_assert_cmpstr (reason, ==, expected);
}

static void
test_healthy (Fixture *f, gconstpointer data)
{
  add (f, "a", NULL);
  assert_reason (f, "a", "waiting for its first beat");
  beat (f, "a", NULL, NULL);
  assert_reason (f, "a", "");
}

static void
test_stale_and_timed_out (Fixture *f, gconstpointer data)
{
  HeartbeatAgentOptions quiet = { .stale_after_usec = 5 * 60 * G_USEC_PER_SEC };
  HeartbeatAgentOptions longer = { .stale_after_usec = G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC,
                                   .timeout_after_usec = 90 * G_USEC_PER_SEC };
  HeartbeatAgentOptions brief = { .stale_after_usec = 1500 * 1000 };
  HeartbeatAgentOptions odd = { .stale_after_usec = G_GINT64_CONSTANT (93784) * G_USEC_PER_SEC,
                                .timeout_after_usec = G_GINT64_CONSTANT (864000) * G_USEC_PER_SEC };

  add (f, "quiet", &quiet);
  add (f, "long", &longer);
  add (f, "odd", &odd);
  add (f, "brief", &brief);
  advance (f, 6 * 60 * G_USEC_PER_SEC);
  /* a threshold of 1.5 s is not "1s" */
  assert_reason (f, "brief", "no activity for more than 1s 500ms");
  g_assert_cmpint (heartbeat_agent_get_state (heartbeat_monitor_lookup (f->monitor, "quiet")), ==,
                   HEARTBEAT_AGENT_STATE_STALE);
  assert_reason (f, "quiet", "no activity for more than 5min");
  g_assert_cmpint (heartbeat_agent_get_state (heartbeat_monitor_lookup (f->monitor, "long")), ==,
                   HEARTBEAT_AGENT_STATE_TIMED_OUT);
  assert_reason (f, "long", "running longer than 1min 30s");
  advance (f, G_GINT64_CONSTANT (93784) * G_USEC_PER_SEC);
  assert_reason (f, "odd", "no activity for more than 1d 2h 3min 4s");
}

static void
test_error (Fixture *f, gconstpointer data)
{
  add (f, "e", NULL);

  /* the metadata's reason, error, message: the first that is a string */
  beat (f, "e", "error", "{'reason': <'disk full'>, 'error': <'E'>, 'message': <'M'>}");
  assert_reason (f, "e", "disk full");
  g_assert_cmpint (heartbeat_agent_get_state (heartbeat_monitor_lookup (f->monitor, "e")), ==,
                   HEARTBEAT_AGENT_STATE_ERROR);
  add (f, "e2", NULL);
  beat (f, "e2", "error", "{'reason': <int32 5>, 'error': <''>, 'message': <'the message'>}");
  assert_reason (f, "e2", "the message");

  /* one line: breaks and tabs are one space; trailing blanks go */
  add (f, "e3", NULL);
  beat (f, "e3", "error", "{'reason': <'line one\\nline two\\r\\n\\tend \\n'>}");
  assert_reason (f, "e3", "line one line two end");

  /* none: hbctl run's exit status and output in the metadata, else the status */
  add (f, "e4", NULL);
  beat (f, "e4", "error", "{'exit-status': <int64 3>, 'output': <'copying\\nrsync: disk full\\n\\n  \\n'>}");
  assert_reason (f, "e4", "exit status 3: rsync: disk full");
  add (f, "e5", NULL);
  beat (f, "e5", "error", NULL);
  assert_reason (f, "e5", "error");
}

/* At most HB_AGENT_REASON_MAX bytes, cut at a character */
static void
test_error_cut (Fixture *f, gconstpointer data)
{
  g_autoptr(GString) two = g_string_new (NULL);
  g_autoptr(GString) three = g_string_new (NULL);
  g_autofree char *m2 = NULL, *m3 = NULL, *r2 = NULL, *r3 = NULL;

  for (guint i = 0; i < 150; i++)
    g_string_append (two, "é");        /* 2 bytes */
  for (guint i = 0; i < 100; i++)
    g_string_append (three, "€");      /* 3 bytes */
  m2 = g_strdup_printf ("{'reason': <'%s'>}", two->str);
  m3 = g_strdup_printf ("{'reason': <'%s'>}", three->str);
  add (f, "cut2", NULL);
  add (f, "cut3", NULL);
  beat (f, "cut2", "error", m2);
  beat (f, "cut3", "error", m3);
  r2 = hb_agent_record_reason (heartbeat_monitor_lookup (f->monitor, "cut2"));
  r3 = hb_agent_record_reason (heartbeat_monitor_lookup (f->monitor, "cut3"));
  g_assert_cmpuint (strlen (r2), ==, 256);
  g_assert_cmpuint (strlen (r3), ==, 255);
  g_assert_true (g_utf8_validate (r2, -1, NULL));
  g_assert_true (g_utf8_validate (r3, -1, NULL));
  g_assert_cmpuint (g_utf8_strlen (r2, -1), ==, 128);
  g_assert_cmpuint (g_utf8_strlen (r3, -1), ==, 85);
}

static void
test_runs (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  HeartbeatRunEnd failed = { .success = FALSE, .exit_status = 2, .output = "step 1\nstep 2: no space left\n",
                             .output_length = -1 };
  HeartbeatRunEnd signalled = { .success = FALSE, .exit_status = -1, .output = "killed\n", .output_length = -1 };
  HeartbeatRunEnd good = { .success = TRUE, .exit_status = 0, .output_length = -1 };

  add (f, "job", NULL);
  g_assert_true (heartbeat_monitor_start_run (f->monitor, "job", 0, &error));
  g_assert_true (heartbeat_monitor_finish_run (f->monitor, "job", &failed, &error));
  g_assert_no_error (error);
  assert_reason (f, "job", "exit status 2: step 2: no space left");

  add (f, "sig", NULL);
  g_assert_true (heartbeat_monitor_finish_run (f->monitor, "sig", &signalled, &error));
  g_assert_no_error (error);
  assert_reason (f, "sig", "last run: failure: killed");

  /* runs, no beat: nothing to wait for */
  add (f, "fine", NULL);
  g_assert_true (heartbeat_monitor_finish_run (f->monitor, "fine", &good, &error));
  g_assert_no_error (error);
  assert_reason (f, "fine", "");
}

static void
test_gone_paused_never (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  HeartbeatAgentOptions with_pid = { .pid = 4242 };
  HeartbeatAgentOptions bound = { .bound_to = ":1.42" };

  add (f, "p", &with_pid);
  add (f, "b", &bound);
  add (f, "x", NULL);
  for (guint i = 0; i < 3; i++)
    g_assert_true (heartbeat_monitor_mark_gone (f->monitor, (const char *[]) { "p", "b", "x" }[i], &error));
  assert_reason (f, "p", "pid 4242 exited");
  assert_reason (f, "b", "bus name :1.42 left the bus");
  assert_reason (f, "x", "gone");

  add (f, "maint", NULL);
  g_assert_true (heartbeat_monitor_pause (f->monitor, "maint", "db migration", 0, &error));
  assert_reason (f, "maint", "db migration");
  g_assert_true (heartbeat_monitor_pause (f->monitor, "maint", NULL, 0, &error));
  assert_reason (f, "maint", "paused");

  g_assert_nonnull (heartbeat_monitor_declare (f->monitor, "declared", NULL, &error));
  g_assert_no_error (error);
  assert_reason (f, "declared", "never beat");
}

/* The record's keys of issue 24 */
static void
test_record_keys (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  const char *tags[] = { "web", "db", NULL };
  HeartbeatAgentOptions options = { .stale_after_usec = G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC, .tags = tags };
  g_autoptr(GVariant) record = NULL;
  g_autofree const char **strv = NULL;
  const char *text;
  guint32 u;
  guint64 t;
  double d;

  add (f, "k", &options);
  advance (f, G_USEC_PER_SEC);
  g_assert_true (heartbeat_monitor_pause (f->monitor, "k", "upgrade", 1000, &error));
  record = g_variant_ref_sink (hb_agent_record (f->monitor, NULL, heartbeat_monitor_lookup (f->monitor, "k")));
  g_assert_true (g_variant_lookup (record, "reason", "&s", &text));
  g_assert_cmpstr (text, ==, "upgrade");
  g_assert_true (g_variant_lookup (record, "severity", "u", &u));
  g_assert_cmpuint (u, ==, 1);
  g_assert_true (g_variant_lookup (record, "state-since-usec", "t", &t));
  g_assert_cmpuint (t, ==, (guint64) f->real_now);
  g_assert_true (g_variant_lookup (record, "paused-at-usec", "t", &t));
  g_assert_cmpuint (t, ==, (guint64) f->real_now);
  g_assert_true (g_variant_lookup (record, "paused-reason", "&s", &text));
  g_assert_cmpstr (text, ==, "upgrade");
  g_assert_true (g_variant_lookup (record, "paused-by-uid", "u", &u));
  g_assert_cmpuint (u, ==, 1000);
  g_assert_true (g_variant_lookup (record, "tags", "^a&s", &strv));
  g_assert_cmpuint (g_strv_length ((GStrv) strv), ==, 2);
  g_assert_cmpstr (strv[0], ==, "db");
  g_assert_cmpstr (strv[1], ==, "web");
  /* healthy for its first second, then paused: all its monitored time */
  g_assert_true (g_variant_lookup (record, "uptime-24h", "d", &d));
  g_assert_cmpfloat (d, ==, 1.0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add ("/agent-record/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("reason/healthy", test_healthy);
  ADD ("reason/stale-and-timed-out", test_stale_and_timed_out);
  ADD ("reason/error", test_error);
  ADD ("reason/error-cut", test_error_cut);
  ADD ("reason/runs", test_runs);
  ADD ("reason/gone-paused-never", test_gone_paused_never);
  ADD ("keys", test_record_keys);

  return g_test_run ();
}
