/* test-runs.c: jobs on a schedule in HeartbeatMonitor, driven by explicit
 * clocks (monotonic and wall-clock), no main loop, no sleeping
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "heartbeat-monitor.h"

#define MIN_US   (G_GINT64_CONSTANT (60) * G_USEC_PER_SEC)
#define HOUR_US  (60 * MIN_US)
#define T0       (G_GINT64_CONSTANT (1000) * G_USEC_PER_SEC)
/* 2026-12-07 00:00:00 UTC */
#define R0       (G_GINT64_CONSTANT (1796601600) * G_USEC_PER_SEC)
#define GRACE    (5 * MIN_US)

typedef struct {
  HeartbeatMonitor *monitor;
  gint64            now;        /* monotonic; the wall clock is R0 + (now - T0) */
  guint             stale, recovered, timed_out, runs;
  GPtrArray        *run_records; /* a{sv} of every agent-run */
} Fixture;

/* Records run_at() handed out, freed at teardown. */
static GPtrArray *handed_out;

static gint64
mono_clock (gpointer data)
{
  return ((Fixture *) data)->now;
}

static gint64
real_clock (gpointer data)
{
  return R0 + (((Fixture *) data)->now - T0);
}

static void
on_stale (HeartbeatMonitor *m, HeartbeatAgent *a, gint64 idle, Fixture *f)
{
  f->stale++;
}

static void
on_recovered (HeartbeatMonitor *m, HeartbeatAgent *a, Fixture *f)
{
  f->recovered++;
}

static void
on_timed_out (HeartbeatMonitor *m, HeartbeatAgent *a, gint64 running, Fixture *f)
{
  f->timed_out++;
}

static void
on_run (HeartbeatMonitor *m, HeartbeatAgent *a, GVariant *run, Fixture *f)
{
  f->runs++;
  g_ptr_array_add (f->run_records, g_variant_ref (run));
}

static void
setup (Fixture *f, gconstpointer data)
{
  f->now = T0;
  f->monitor = heartbeat_monitor_new ();
  f->run_records = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  handed_out = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  heartbeat_monitor_set_clock (f->monitor, mono_clock, f);
  heartbeat_monitor_set_realtime_clock (f->monitor, real_clock, f);
  g_signal_connect (f->monitor, "agent-stale", G_CALLBACK (on_stale), f);
  g_signal_connect (f->monitor, "agent-recovered", G_CALLBACK (on_recovered), f);
  g_signal_connect (f->monitor, "agent-timed-out", G_CALLBACK (on_timed_out), f);
  g_signal_connect (f->monitor, "agent-run", G_CALLBACK (on_run), f);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  g_object_add_weak_pointer (G_OBJECT (f->monitor), (gpointer *) &f->monitor);
  g_object_unref (f->monitor);
  g_assert_null (f->monitor);
  g_ptr_array_unref (f->run_records);
  g_clear_pointer (&handed_out, g_ptr_array_unref);
}

/* Due every hour on the hour, from R0. */
static gint64
hourly (gint64 after, gpointer data)
{
  gint64 from = after < R0 ? R0 : after;

  return R0 + ((from - R0) / HOUR_US + 1) * HOUR_US;
}

static guint destroyed;

static void
count_destroy (gpointer data)
{
  destroyed++;
}

static void
advance_to (Fixture *f, gint64 realtime)
{
  f->now = T0 + (realtime - R0);
  heartbeat_monitor_run_checks (f->monitor, f->now);
}

static HeartbeatAgent *
declare_job (Fixture *f, const char *id)
{
  HeartbeatAgentOptions options = { .timeout_after_usec = 30 * MIN_US };
  g_autoptr(GError) error = NULL;
  HeartbeatAgent *agent = heartbeat_monitor_declare (f->monitor, id, &options, &error);

  g_assert_no_error (error);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_NO_HEARTBEAT);
  g_assert_true (heartbeat_monitor_set_schedule (f->monitor, id, hourly, NULL, count_destroy, GRACE, &error));
  g_assert_no_error (error);
  return agent;
}

/* The record @i of the agent's runs (negative: from the end); (transfer
 * none), it lives until the test ends. */
static GVariant *
run_at (HeartbeatAgent *agent, int i)
{
  g_autoptr(GVariant) runs = g_variant_ref_sink (heartbeat_agent_get_runs (agent));
  gsize n = g_variant_n_children (runs);
  GVariant *run;

  g_assert_cmpint (i < 0 ? (gssize) n + i : i, >=, 0);
  g_assert_cmpint (i < 0 ? (gssize) n + i : i, <, (gssize) n);
  run = g_variant_get_child_value (runs, i < 0 ? n + i : (gsize) i);
  g_ptr_array_add (handed_out, run);
  return run;
}

static gint64
run_time (GVariant *run, const char *key)
{
  gint64 v = 0;

  if (!g_variant_lookup (run, key, "x", &v))
    return 0;
  return v;
}

static const char *
run_result (GVariant *run)
{
  const char *r = NULL;

  g_assert_true (g_variant_lookup (run, "result", "&s", &r));
  return r;
}

static gsize
n_runs (HeartbeatAgent *agent)
{
  g_autoptr(GVariant) runs = g_variant_ref_sink (heartbeat_agent_get_runs (agent));

  return g_variant_n_children (runs);
}

/* A job that is not run is late at its due time plus the grace, not a
 * microsecond before; each further missed due time is recorded without a
 * second warning; a run ends the episode. */
static void
test_late_then_recovered (Fixture *f, gconstpointer data)
{
  HeartbeatAgent *agent = declare_job (f, "backup");
  GVariant *r1, *r2, *r3;

  /* declared with a schedule: healthy and idle, waiting for 01:00 */
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_HEALTHY);
  g_assert_true (heartbeat_agent_is_idle (agent));
  g_assert_true (heartbeat_agent_has_schedule (agent));
  g_assert_cmpint (heartbeat_agent_get_next_due (agent), ==, R0 + HOUR_US);
  g_assert_cmpint (heartbeat_agent_get_grace (agent), ==, GRACE);
  g_assert_cmpint (heartbeat_monitor_get_next_deadline (f->monitor), ==, T0 + HOUR_US + GRACE);

  advance_to (f, R0 + HOUR_US + GRACE - 1);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_HEALTHY);
  g_assert_cmpuint (f->stale, ==, 0);

  advance_to (f, R0 + HOUR_US + GRACE);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_STALE);
  g_assert_cmpuint (f->stale, ==, 1);
  g_assert_cmpint (heartbeat_agent_get_late_due (agent), ==, R0 + HOUR_US);
  g_assert_cmpint (heartbeat_agent_get_next_due (agent), ==, R0 + 2 * HOUR_US);
  r1 = run_at (agent, -1);
  g_assert_cmpstr (run_result (r1), ==, "missed");
  g_assert_cmpint (run_time (r1, "due-usec"), ==, R0 + HOUR_US);
  g_assert_cmpint (run_time (r1, "started-usec"), ==, 0);

  /* 02:00 missed too: a record, no second warning */
  advance_to (f, R0 + 2 * HOUR_US + GRACE);
  g_assert_cmpuint (f->stale, ==, 1);
  g_assert_cmpuint (n_runs (agent), ==, 2);
  g_assert_cmpint (heartbeat_agent_get_late_due (agent), ==, R0 + HOUR_US);

  /* it runs at 02:30: late, the episode ends */
  advance_to (f, R0 + 2 * HOUR_US + 30 * MIN_US);
  g_assert_true (heartbeat_monitor_start_run (f->monitor, "backup", 0, NULL));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_HEALTHY);
  g_assert_cmpuint (f->recovered, ==, 1);
  g_assert_cmpint (heartbeat_agent_get_late_due (agent), ==, 0);
  g_assert_false (heartbeat_agent_is_idle (agent));
  g_assert_cmpstr (heartbeat_agent_get_status (agent), ==, "running");
  r2 = run_at (agent, -1);
  g_assert_cmpstr (run_result (r2), ==, "running");
  {
    gboolean late = FALSE;

    g_assert_true (g_variant_lookup (r2, "late", "b", &late));
    g_assert_true (late);
  }

  /* it ends at 02:40 well: idle, healthy, 10 minutes recorded */
  advance_to (f, R0 + 2 * HOUR_US + 40 * MIN_US);
  {
    HeartbeatRunEnd end = { .success = TRUE, .exit_status = 0, .output = "done\n", .output_length = -1 };

    g_assert_true (heartbeat_monitor_finish_run (f->monitor, "backup", &end, NULL));
  }
  r3 = run_at (agent, -1);
  g_assert_cmpstr (run_result (r3), ==, "success");
  g_assert_cmpint (run_time (r3, "duration-usec"), ==, 10 * MIN_US);
  g_assert_cmpint (run_time (r3, "ended-usec"), ==, R0 + 2 * HOUR_US + 40 * MIN_US);
  g_assert_true (heartbeat_agent_is_idle (agent));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_HEALTHY);
  g_assert_cmpint (heartbeat_agent_get_next_due (agent), ==, R0 + 3 * HOUR_US);
  /* started, ended, and the two missed */
  g_assert_cmpuint (f->runs, ==, 4);
}

/* A run on time answers its due time, also a little early; a run long
 * before is a run of its own; a failure is an error with its exit status
 * until the next run. */
static void
test_on_time_early_and_failed (Fixture *f, gconstpointer data)
{
  HeartbeatAgent *agent = declare_job (f, "report");
  HeartbeatRunEnd fail = { .success = FALSE, .exit_status = 3 };
  HeartbeatRunEnd ok = { .success = TRUE, .exit_status = 0 };
  GVariant *early, *extra, *failed;

  /* 00:20, unscheduled: 01:00 is still due */
  advance_to (f, R0 + 20 * MIN_US);
  g_assert_true (heartbeat_monitor_start_run (f->monitor, "report", 0, NULL));
  g_assert_true (heartbeat_monitor_finish_run (f->monitor, "report", &ok, NULL));
  extra = run_at (agent, -1);
  g_assert_cmpint (run_time (extra, "due-usec"), ==, 0);
  g_assert_cmpint (heartbeat_agent_get_next_due (agent), ==, R0 + HOUR_US);

  /* 00:58, within the grace before 01:00: the 01:00 run */
  advance_to (f, R0 + 58 * MIN_US);
  g_assert_true (heartbeat_monitor_start_run (f->monitor, "report", 0, NULL));
  early = run_at (agent, -1);
  g_assert_cmpint (run_time (early, "due-usec"), ==, R0 + HOUR_US);
  g_assert_false (g_variant_lookup (early, "late", "b", NULL));
  g_assert_cmpint (heartbeat_agent_get_next_due (agent), ==, R0 + 2 * HOUR_US);

  /* it fails at 01:10 with status 3 */
  advance_to (f, R0 + HOUR_US + 10 * MIN_US);
  g_assert_cmpuint (f->stale, ==, 0);
  g_assert_true (heartbeat_monitor_finish_run (f->monitor, "report", &fail, NULL));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_ERROR);
  g_assert_cmpstr (heartbeat_agent_get_status (agent), ==, "error");
  failed = run_at (agent, -1);
  g_assert_cmpstr (run_result (failed), ==, "failure");
  {
    gint32 status = -1;

    g_assert_true (g_variant_lookup (failed, "exit-status", "i", &status));
    g_assert_cmpint (status, ==, 3);
  }

  /* 02:00 missed while in error: recorded, still error, no stale warning */
  advance_to (f, R0 + 2 * HOUR_US + GRACE);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_ERROR);
  g_assert_cmpstr (run_result (run_at (agent, -1)), ==, "missed");
  g_assert_cmpuint (f->stale, ==, 0);

  /* a ping with no start (a single success) is a run of its own and
   * brings it back */
  g_assert_true (heartbeat_monitor_finish_run (f->monitor, "report", &ok, NULL));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_HEALTHY);
  g_assert_cmpstr (run_result (run_at (agent, -1)), ==, "success");

  /* bad input changes nothing */
  {
    HeartbeatRunEnd bad = { .success = FALSE, .exit_status = 256 };
    g_autoptr(GError) error = NULL;
    gsize before = n_runs (agent);

    g_assert_false (heartbeat_monitor_finish_run (f->monitor, "report", &bad, &error));
    g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT);
    g_assert_cmpuint (n_runs (agent), ==, before);
    g_clear_error (&error);
    g_assert_false (heartbeat_monitor_start_run (f->monitor, "nobody", 0, &error));
    g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_NOT_FOUND);
    g_clear_error (&error);
    g_assert_false (heartbeat_monitor_set_schedule (f->monitor, "report", hourly, NULL, NULL, -1, &error));
    g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT);
    g_assert_cmpint (heartbeat_agent_get_grace (agent), ==, GRACE);
  }
}

/* A run past its timeout is timed out; its record says so when it ends;
 * a due time passing while it runs is not missed. */
static void
test_run_times_out (Fixture *f, gconstpointer data)
{
  HeartbeatAgent *agent = declare_job (f, "long");
  HeartbeatRunEnd ok = { .success = TRUE, .exit_status = 0 };

  advance_to (f, R0 + HOUR_US);
  g_assert_true (heartbeat_monitor_start_run (f->monitor, "long", 0, NULL));
  advance_to (f, R0 + HOUR_US + 30 * MIN_US - 1);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_HEALTHY);
  advance_to (f, R0 + HOUR_US + 30 * MIN_US);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_TIMED_OUT);
  g_assert_cmpuint (f->timed_out, ==, 1);
  g_assert_cmpstr (run_result (run_at (agent, -1)), ==, "timed-out");

  /* 02:00 passes while it still runs: not missed */
  advance_to (f, R0 + 2 * HOUR_US + 2 * GRACE);
  g_assert_cmpstr (run_result (run_at (agent, -1)), ==, "timed-out");
  g_assert_cmpuint (n_runs (agent), ==, 1);

  g_assert_true (heartbeat_monitor_finish_run (f->monitor, "long", &ok, NULL));
  g_assert_cmpstr (run_result (run_at (agent, -1)), ==, "timed-out");
  g_assert_cmpint (run_time (run_at (agent, -1), "duration-usec"), ==, HOUR_US + 2 * GRACE);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_HEALTHY);
  g_assert_cmpint (heartbeat_agent_get_next_due (agent), ==, R0 + 3 * HOUR_US);
}

/* Records are bounded in number and output; output is kept valid UTF-8. */
static void
test_bounds (Fixture *f, gconstpointer data)
{
  HeartbeatAgent *agent = declare_job (f, "often");
  g_autoptr(GString) out = g_string_new (NULL);
  GVariant *last;
  const char *text = NULL;

  for (int i = 0; i < 25; i++)
    {
      HeartbeatRunEnd ok = { .success = TRUE, .exit_status = 0 };

      f->now += MIN_US;
      g_assert_true (heartbeat_monitor_finish_run (f->monitor, "often", &ok, NULL));
    }
  g_assert_cmpuint (n_runs (agent), ==, HEARTBEAT_RUNS_MAX);

  g_string_append (out, "\xff\xfe invalid start");
  for (int i = 0; i < 3000; i++)
    g_string_append (out, "é.");
  g_string_append_len (out, "end\0with nul", 12);
  {
    HeartbeatRunEnd fail = { .success = FALSE, .exit_status = 1, .output = out->str, .output_length = (gssize) out->len };

    g_assert_true (heartbeat_monitor_finish_run (f->monitor, "often", &fail, NULL));
  }
  last = run_at (agent, -1);
  g_assert_true (g_variant_lookup (last, "output", "&s", &text));
  g_assert_cmpuint (strlen (text), <=, HEARTBEAT_RUN_OUTPUT_MAX);
  g_assert_cmpuint (strlen (text), >=, HEARTBEAT_RUN_OUTPUT_MAX - 3);
  g_assert_true (g_utf8_validate (text, -1, NULL));
  g_assert_true (g_str_has_suffix (text, "end\xef\xbf\xbdwith nul"));
  g_assert_null (strstr (text, "invalid start"));
}

/* Runs survive a restore; a due time missed while the daemon was down is
 * found at once; a restore refuses bad records and changes nothing. */
static void
test_restore (Fixture *f, gconstpointer data)
{
  HeartbeatAgent *agent = declare_job (f, "nightly");
  HeartbeatRunEnd ok = { .success = TRUE, .exit_status = 0, .output = "ok", .output_length = -1 };
  g_autoptr(GVariant) saved = NULL;
  g_autoptr(GVariant) bad = NULL;
  HeartbeatAgentSnapshot snapshot = { .state = HEARTBEAT_AGENT_STATE_HEALTHY, .status = "idle", .declared = TRUE };
  HeartbeatAgentOptions options = { .timeout_after_usec = 30 * MIN_US };
  g_autoptr(GError) error = NULL;

  advance_to (f, R0 + HOUR_US);
  g_assert_true (heartbeat_monitor_start_run (f->monitor, "nightly", 0, NULL));
  advance_to (f, R0 + HOUR_US + MIN_US);
  g_assert_true (heartbeat_monitor_finish_run (f->monitor, "nightly", &ok, NULL));
  saved = g_variant_ref_sink (heartbeat_agent_get_runs (agent));

  /* the daemon is down from 01:01 to 04:30: 02:00, 03:00 and 04:00 passed */
  f->now = T0 + 4 * HOUR_US + 30 * MIN_US;
  snapshot.started_at_realtime = R0 + HOUR_US;
  snapshot.last_activity_at_realtime = R0 + HOUR_US + MIN_US;
  snapshot.runs = saved;

  /* a bad record: refused, the agent as it was */
  bad = g_variant_ref_sink (g_variant_new_parsed ("[{'result': <'sideways'>}]"));
  snapshot.runs = bad;
  g_assert_null (heartbeat_monitor_restore (f->monitor, "nightly", &options, &snapshot, &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_true (heartbeat_monitor_lookup (f->monitor, "nightly") == agent);

  snapshot.runs = saved;
  agent = heartbeat_monitor_restore (f->monitor, "nightly", &options, &snapshot, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (n_runs (agent), ==, 1);
  {
    GVariant *run = run_at (agent, 0);
    const char *output = NULL;

    g_assert_cmpstr (run_result (run), ==, "success");
    g_assert_true (g_variant_lookup (run, "output", "&s", &output));
    g_assert_cmpstr (output, ==, "ok");
  }
  /* the schedule is the front's and stayed; 02:00 is the next due time */
  g_assert_true (heartbeat_agent_has_schedule (agent));
  g_assert_cmpint (heartbeat_agent_get_next_due (agent), ==, R0 + 2 * HOUR_US);
  heartbeat_monitor_run_checks (f->monitor, f->now);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_STALE);
  g_assert_cmpint (heartbeat_agent_get_late_due (agent), ==, R0 + 2 * HOUR_US);
  g_assert_cmpuint (f->stale, ==, 1);

  /* taking the schedule away frees its data once */
  destroyed = 0;
  g_assert_true (heartbeat_monitor_set_schedule (f->monitor, "nightly", NULL, NULL, NULL, 0, NULL));
  g_assert_cmpuint (destroyed, ==, 1);
  g_assert_false (heartbeat_agent_has_schedule (agent));
  g_assert_cmpint (heartbeat_agent_get_next_due (agent), ==, 0);
}

/* A paused job misses nothing: no due time passed while it was paused is
 * late, and its next is judged from the resume; a run while paused is
 * recorded, and its failure is the job's state when resumed. */
static void
test_paused_job (Fixture *f, gconstpointer data)
{
  HeartbeatAgent *agent = declare_job (f, "backup");
  HeartbeatRunEnd failed = { .success = FALSE, .exit_status = 3, .output = "disk full\n", .output_length = -1 };

  advance_to (f, R0 + 30 * MIN_US);
  g_assert_true (heartbeat_monitor_pause (f->monitor, "backup", "new disk", 0, NULL));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_PAUSED);

  /* 01:00, 02:00, 03:00 pass: nothing missed */
  advance_to (f, R0 + 3 * HOUR_US + 30 * MIN_US);
  g_assert_cmpuint (f->stale, ==, 0);
  g_assert_cmpuint (n_runs (agent), ==, 0);

  /* run by hand while paused, and failed: recorded, still paused */
  g_assert_true (heartbeat_monitor_start_run (f->monitor, "backup", 0, NULL));
  g_assert_true (heartbeat_monitor_finish_run (f->monitor, "backup", &failed, NULL));
  g_assert_cmpuint (n_runs (agent), ==, 1);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_PAUSED);

  g_assert_true (heartbeat_monitor_resume (f->monitor, "backup", NULL));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_ERROR);
  g_assert_cmpint (heartbeat_agent_get_next_due (agent), ==, R0 + 4 * HOUR_US);
  g_assert_cmpint (heartbeat_agent_get_late_due (agent), ==, 0);
  advance_to (f, R0 + 4 * HOUR_US + GRACE - 1);
  g_assert_cmpuint (n_runs (agent), ==, 1);
  /* 04:00 not run after the resume: that one is missed */
  advance_to (f, R0 + 4 * HOUR_US + GRACE);
  g_assert_cmpuint (n_runs (agent), ==, 2);
  g_assert_cmpstr (run_result (run_at (agent, -1)), ==, "missed");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add ((path), Fixture, NULL, setup, (func), teardown)
  ADD ("/runs/late-then-recovered", test_late_then_recovered);
  ADD ("/runs/on-time-early-and-failed", test_on_time_early_and_failed);
  ADD ("/runs/run-times-out", test_run_times_out);
  ADD ("/runs/bounds", test_bounds);
  ADD ("/runs/restore", test_restore);
  ADD ("/runs/paused-job", test_paused_job);

  return g_test_run ();
}
