/* test-state.c: heartbeatd's persistence of agents
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include <gio/gio.h>

#include "hb-state.h"

/* The daemon logs with g_log_structured(), which g_test_expect_message()
 * does not see: warnings are captured here and checked by the tests. */
static GPtrArray *warnings;

static GLogWriterOutput
capture_writer (GLogLevelFlags   level,
                const GLogField *fields,
                gsize            n_fields,
                gpointer         user_data)
{
  if (level & (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR))
    {
      for (gsize i = 0; i < n_fields; i++)
        if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
          g_ptr_array_add (warnings, g_strdup (fields[i].value));
      if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR))
        return g_log_writer_default (level, fields, n_fields, user_data);
      return G_LOG_WRITER_HANDLED;
    }
  return g_log_writer_default (level, fields, n_fields, user_data);
}

/* Asserts that the warnings since the last call match @patterns, in order. */
static void
assert_warnings (const char * const *patterns)
{
  gsize n = 0;

  for (; patterns[n]; n++)
    {
      g_assert_cmpuint (n, <, warnings->len);
      g_test_message ("warning: %s", (char *) warnings->pdata[n]);
      g_assert_true (g_pattern_match_simple (patterns[n], warnings->pdata[n]));
    }
  g_assert_cmpuint (warnings->len, ==, n);
  g_ptr_array_set_size (warnings, 0);
}

typedef struct {
  char             *dir;
  char             *path;
  HeartbeatMonitor *monitor;
  HbState          *state;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  f->dir = g_dir_make_tmp ("hb-state-XXXXXX", &error);
  g_assert_no_error (error);
  f->path = g_build_filename (f->dir, "agents.json", NULL);
  f->monitor = heartbeat_monitor_new ();
  f->state = hb_state_new (f->monitor, f->dir);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_autoptr(GDir) dir = g_dir_open (f->dir, 0, NULL);
  const char *name;

  g_clear_object (&f->state);
  g_clear_object (&f->monitor);
  assert_warnings ((const char *[]) { NULL });
  while (dir && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (f->dir, name, NULL);
      g_unlink (child);
    }
  g_rmdir (f->dir);
  g_free (f->dir);
  g_free (f->path);
}

/* A second daemon life: a new monitor and state on the same directory. */
static HeartbeatMonitor *
reload (Fixture *f, HbState **state_out)
{
  HeartbeatMonitor *monitor = heartbeat_monitor_new ();
  HbState *state = hb_state_new (monitor, f->dir);
  g_autoptr(GError) error = NULL;

  g_assert_true (hb_state_load (state, &error));
  g_assert_no_error (error);
  *state_out = state;
  return monitor;
}

static void
register_agent (HeartbeatMonitor *monitor, const char *id, const HeartbeatAgentOptions *options)
{
  g_autoptr(GError) error = NULL;

  g_assert_nonnull (heartbeat_monitor_register (monitor, id, options, &error));
  g_assert_no_error (error);
}

static void
test_round_trip (Fixture *f, gconstpointer data)
{
  g_autoptr(GVariant) metadata = g_variant_ref_sink (g_variant_new_parsed (
    "{'host': <'db1'>, 'attempt': <int32 2>, 'ratio': <0.25>, 'tags': <['a', 'b']>,"
    " 'nested': <{'deep': <true>}>, 'big': <uint64 9223372036854775807>}"));
  HeartbeatAgentOptions full = {
    .task_id = "backup /srv", .stale_after_usec = 7 * G_USEC_PER_SEC,
    .timeout_after_usec = 600 * G_USEC_PER_SEC, .owner_uid = 1000, .pid = 1,
    .metadata = metadata, .bound_to = ":1.42",
  };
  HeartbeatBeatDetails error_details = { .status = "error" };
  g_autoptr(HbState) state2 = NULL;
  g_autoptr(HeartbeatMonitor) monitor2 = NULL;
  g_autoptr(GError) error = NULL;
  HeartbeatAgent *a, *b;

  register_agent (f->monitor, "full", &full);
  register_agent (f->monitor, "plain", NULL);
  register_agent (f->monitor, "broken", NULL);
  g_assert_true (heartbeat_monitor_beat (f->monitor, "broken", &error_details, &error));
  register_agent (f->monitor, "resting", NULL);
  g_assert_true (heartbeat_monitor_mark_idle (f->monitor, "resting", &error));
  g_assert_nonnull (heartbeat_monitor_declare (f->monitor, "expected", NULL, &error));
  g_assert_no_error (error);
  g_assert_true (hb_state_flush (f->state, &error));
  g_assert_no_error (error);

  monitor2 = reload (f, &state2);
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (monitor2), ==, 5);

  a = heartbeat_monitor_lookup (f->monitor, "full");
  b = heartbeat_monitor_lookup (monitor2, "full");
  g_assert_nonnull (b);
  g_assert_cmpstr (heartbeat_agent_get_task_id (b), ==, "backup /srv");
  g_assert_cmpint (heartbeat_agent_get_own_stale_after (b), ==, 7 * G_USEC_PER_SEC);
  g_assert_cmpint (heartbeat_agent_get_own_timeout_after (b), ==, 600 * G_USEC_PER_SEC);
  g_assert_cmpuint (heartbeat_agent_get_owner_uid (b), ==, 1000);
  g_assert_cmpint (heartbeat_agent_get_pid (b), ==, 1);
  g_assert_cmpstr (heartbeat_agent_get_bound_to (b), ==, ":1.42");
  g_assert_true (g_variant_equal (heartbeat_agent_get_metadata (b), metadata));
  g_assert_cmpint (ABS (heartbeat_monitor_to_realtime (f->monitor, heartbeat_agent_get_started_at (a)) -
                        heartbeat_monitor_to_realtime (monitor2, heartbeat_agent_get_started_at (b))), <=, 1000);

  /* an agent following the monitor's thresholds keeps following them */
  b = heartbeat_monitor_lookup (monitor2, "plain");
  g_assert_cmpint (heartbeat_agent_get_own_stale_after (b), ==, 0);
  heartbeat_monitor_set_stale_threshold (monitor2, 11 * G_USEC_PER_SEC);
  g_assert_cmpint (heartbeat_agent_get_stale_after (b), ==, 11 * G_USEC_PER_SEC);

  b = heartbeat_monitor_lookup (monitor2, "broken");
  g_assert_cmpint (heartbeat_agent_get_state (b), ==, HEARTBEAT_AGENT_STATE_ERROR);
  g_assert_cmpstr (heartbeat_agent_get_status (b), ==, "error");
  g_assert_cmpuint (heartbeat_agent_get_beats (b), ==, 1);

  b = heartbeat_monitor_lookup (monitor2, "resting");
  g_assert_cmpstr (heartbeat_agent_get_status (b), ==, "idle");

  b = heartbeat_monitor_lookup (monitor2, "expected");
  g_assert_cmpint (heartbeat_agent_get_state (b), ==, HEARTBEAT_AGENT_STATE_NO_HEARTBEAT);
  g_assert_true (heartbeat_agent_is_declared (b));
}

static void
on_write_count (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  g_main_loop_quit (user_data);
}

static gboolean
on_timeout (gpointer user_data)
{
  g_assert_not_reached ();
  return G_SOURCE_REMOVE;
}

static void
test_write_through_and_batching (Fixture *f, gconstpointer data)
{
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  guint64 count;
  gulong handler;
  guint timeout;

  /* register and unregister: on disk before the call returns */
  count = hb_state_get_write_count (f->state);
  register_agent (f->monitor, "a", NULL);
  g_assert_cmpuint (hb_state_get_write_count (f->state), ==, count + 1);
  g_file_get_contents (f->path, &contents, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (contents, "\"a\""));
  register_agent (f->monitor, "b", NULL);
  g_assert_true (heartbeat_monitor_unregister (f->monitor, "b", &error));
  g_assert_cmpuint (hb_state_get_write_count (f->state), ==, count + 3);

  /* a hundred beats: no write now, one write later; MarkIdle first makes
   * sure the state can be written (one write), its mark rides with the
   * batch */
  count = hb_state_get_write_count (f->state);
  for (int i = 0; i < 100; i++)
    g_assert_true (heartbeat_monitor_beat (f->monitor, "a", NULL, &error));
  g_assert_cmpuint (hb_state_get_write_count (f->state), ==, count);
  g_assert_true (heartbeat_monitor_mark_idle (f->monitor, "a", &error));
  g_assert_cmpuint (hb_state_get_write_count (f->state), ==, count + 1);
  count++;

  handler = g_signal_connect (f->state, "notify::write-count", G_CALLBACK (on_write_count), loop);
  timeout = g_timeout_add_seconds (10, on_timeout, NULL);
  g_main_loop_run (loop);
  g_source_remove (timeout);
  g_signal_handler_disconnect (f->state, handler);
  g_assert_cmpuint (hb_state_get_write_count (f->state), ==, count + 1);

  g_clear_pointer (&contents, g_free);
  g_file_get_contents (f->path, &contents, NULL, &error);
  g_assert_nonnull (strstr (contents, "\"beats\" : 100"));
  g_assert_nonnull (strstr (contents, "\"status\" : \"idle\""));
}

static gint64 fake_now;

static gint64
fake_clock (gpointer user_data)
{
  return fake_now;
}

/* An agent that went quiet while the daemon was down is judged by the
 * wall clock: stale at once after the restart. */
static void
test_overdue_after_restart (Fixture *f, gconstpointer data)
{
  g_autofree char *contents = NULL;
  g_autoptr(HeartbeatMonitor) monitor = heartbeat_monitor_new ();
  g_autoptr(HbState) state = hb_state_new (monitor, f->dir);
  g_autoptr(GError) error = NULL;
  gint64 real_now = g_get_real_time ();
  guint stale = 0;
  HeartbeatAgent *agent;

  contents = g_strdup_printf (
    "{\"version\": 1, \"agents\": [{\"id\": \"quiet\", \"task-id\": null, \"state\": \"healthy\","
    " \"status\": \"running\", \"owner-uid\": 0, \"pid\": 0, \"bound-to\": null,"
    " \"declared\": false, \"beats\": 3, \"stale-after-usec\": 60000000,"
    " \"timeout-after-usec\": 7200000000, \"started-at\": %" G_GINT64_FORMAT ","
    " \"last-activity-at\": %" G_GINT64_FORMAT ", \"metadata\": null}]}",
    real_now - (gint64) 3600 * G_USEC_PER_SEC, real_now - 120 * G_USEC_PER_SEC);
  g_file_set_contents (f->path, contents, -1, &error);
  g_assert_no_error (error);

  fake_now = 1000 * G_USEC_PER_SEC;
  heartbeat_monitor_set_clock (monitor, fake_clock, NULL);
  g_assert_true (hb_state_load (state, &error));
  agent = heartbeat_monitor_lookup (monitor, "quiet");
  g_assert_nonnull (agent);
  g_assert_cmpint (heartbeat_agent_get_idle_usec (agent, fake_now), >=, 120 * G_USEC_PER_SEC);

  g_signal_connect_swapped (monitor, "agent-stale", G_CALLBACK (g_atomic_int_inc), &stale);
  heartbeat_monitor_run_checks (monitor, fake_now);
  g_assert_cmpuint (stale, ==, 1);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_STALE);
}

static guint
count_aside (Fixture *f)
{
  g_autoptr(GDir) dir = g_dir_open (f->dir, 0, NULL);
  const char *name;
  guint n = 0;

  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_prefix (name, "agents.json.corrupt-"))
      n++;
  return n;
}

static void
test_corrupt_moved_aside (Fixture *f, gconstpointer data)
{
  static const char *cases[] = {
    "{\"version\": 1, \"agents\": [",
    "[1, 2, 3]",
    "{\"version\": 99, \"agents\": []}",
    "{\"version\": 1}",
    "\x01\x02\xff",
    "",
    "   ",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(HeartbeatMonitor) monitor = heartbeat_monitor_new ();
      g_autoptr(HbState) state = hb_state_new (monitor, f->dir);
      g_autoptr(GError) error = NULL;

      g_test_message ("case %" G_GSIZE_FORMAT, i);
      g_file_set_contents (f->path, cases[i], -1, &error);
      g_assert_no_error (error);
      g_assert_true (hb_state_load (state, &error));
      assert_warnings ((const char *[]) { "*unreadable*moved it to*", NULL });
      g_assert_no_error (error);
      g_assert_cmpuint (heartbeat_monitor_get_n_agents (monitor), ==, 0);
      g_assert_false (g_file_test (f->path, G_FILE_TEST_EXISTS));
      /* names are per second; clear them so the next case is counted */
      g_assert_cmpuint (count_aside (f), ==, 1);
      fixture_teardown (f, NULL);
      fixture_setup (f, NULL);
    }
}

static void
test_bad_entry_skipped (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 now = g_get_real_time ();
  g_autofree char *contents = g_strdup_printf (
    "{\"version\": 1, \"agents\": ["
    " {\"id\": \"good\", \"state\": \"healthy\", \"owner-uid\": 0, \"pid\": 0, \"beats\": 0,"
    "  \"stale-after-usec\": 0, \"timeout-after-usec\": 0, \"started-at\": %" G_GINT64_FORMAT ","
    "  \"last-activity-at\": %" G_GINT64_FORMAT "},"
    " {\"id\": \"bad id\", \"state\": \"healthy\", \"owner-uid\": 0, \"pid\": 0, \"beats\": 0,"
    "  \"stale-after-usec\": 0, \"timeout-after-usec\": 0, \"started-at\": 1, \"last-activity-at\": 1},"
    " {\"id\": \"no-state\", \"owner-uid\": 0},"
    " {\"id\": \"bad-meta\", \"state\": \"healthy\", \"owner-uid\": 0, \"pid\": 0, \"beats\": 0,"
    "  \"stale-after-usec\": 0, \"timeout-after-usec\": 0, \"started-at\": 1, \"last-activity-at\": 1,"
    "  \"metadata\": \"{'unterminated\"},"
    " 42]}", now, now);

  g_file_set_contents (f->path, contents, -1, &error);
  g_assert_no_error (error);
  g_assert_true (hb_state_load (f->state, &error));
  assert_warnings ((const char *[]) { "*bad id*skipped", "*no-state*skipped",
                                      "*bad-meta*skipped", "*entry 4 is not an object*", NULL });
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (f->monitor), ==, 1);
  g_assert_nonnull (heartbeat_monitor_lookup (f->monitor, "good"));
}

static void
on_problem (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  guint *n = user_data;
  (*n)++;
}

static void
test_write_failure_is_a_problem (Fixture *f, gconstpointer data)
{
  g_autofree char *blocker = g_build_filename (f->dir, "blocker", NULL);
  g_autofree char *inner = g_build_filename (blocker, "state", NULL);
  g_autoptr(HeartbeatMonitor) monitor = heartbeat_monitor_new ();
  g_autoptr(HbState) state = NULL;
  g_autoptr(GError) error = NULL;
  guint notified = 0;

  /* a regular file where the state directory should be: even root
   * cannot write there */
  g_file_set_contents (blocker, "", 0, &error);
  g_assert_no_error (error);
  state = hb_state_new (monitor, inner);
  g_signal_connect (state, "notify::problem", G_CALLBACK (on_problem), &notified);

  /* a registration that cannot be saved is refused, and not kept */
  g_assert_null (heartbeat_monitor_register (monitor, "a", NULL, &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_NOT_SAVED);
  g_assert_nonnull (strstr (error->message, inner));
  g_clear_error (&error);
  g_assert_null (heartbeat_monitor_lookup (monitor, "a"));
  g_assert_nonnull (hb_state_get_problem (state));
  g_assert_nonnull (strstr (hb_state_get_problem (state), inner));
  g_assert_cmpuint (notified, ==, 1);
  g_assert_cmpuint (hb_state_get_write_count (state), ==, 0);
  g_assert_false (hb_state_flush (state, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);

  /* fixed: the next write clears the problem */
  g_unlink (blocker);
  register_agent (monitor, "a", NULL);
  g_assert_null (hb_state_get_problem (state));
  g_assert_cmpuint (notified, ==, 2);
  g_assert_cmpuint (hb_state_get_write_count (state), ==, 1);

  g_clear_object (&state);
  g_autofree char *file = g_build_filename (inner, "agents.json", NULL);
  g_unlink (file);
  g_rmdir (inner);
  g_rmdir (blocker);
}

/* One daemon per state directory: a second lock is refused, naming the
 * holder, until the first is let go. */
static void
test_lock (Fixture *f, gconstpointer data)
{
  g_autoptr(HeartbeatMonitor) monitor = heartbeat_monitor_new ();
  g_autoptr(HbState) second = hb_state_new (monitor, f->dir);
  g_autoptr(HbState) third = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *pid = g_strdup_printf ("(pid %d)", (int) getpid ());

  g_assert_true (hb_state_lock (f->state, &error));
  g_assert_no_error (error);
  g_assert_true (hb_state_lock (f->state, &error));   /* again: still ours */

  g_assert_false (hb_state_lock (second, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_BUSY);
  g_assert_nonnull (strstr (error->message, pid));
  g_assert_nonnull (strstr (error->message, f->dir));
  g_clear_error (&error);

  g_clear_object (&f->state);
  third = hb_state_new (monitor, f->dir);
  g_assert_true (hb_state_lock (third, &error));
  g_assert_no_error (error);
}

/* A state file nested deeper than ours ever is, or metadata text nested
 * deeper than the gate allows, is refused without recursing into it. */
static void
test_deeply_nested (Fixture *f, gconstpointer data)
{
  g_autoptr(GString) text = g_string_new ("{\"version\": 1, \"agents\": [");
  g_autoptr(GString) meta = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(HbState) state2 = NULL;
  g_autoptr(HeartbeatMonitor) monitor2 = NULL;

  for (int i = 0; i < 20000; i++)
    g_string_append_c (text, '[');
  for (int i = 0; i < 20000; i++)
    g_string_append_c (text, ']');
  g_string_append (text, "]}");
  g_assert_true (g_file_set_contents (f->path, text->str, -1, &error));
  monitor2 = reload (f, &state2);
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (monitor2), ==, 0);
  assert_warnings ((const char *[]) { "*unreadable (nested deeper than 8 levels)*moved it to*", NULL });
  g_clear_object (&state2);
  g_clear_object (&monitor2);

  /* metadata text 20,000 levels deep: that agent is skipped, not the rest */
  g_string_append (meta, "{'k': ");
  for (int i = 0; i < 20000; i++)
    g_string_append_c (meta, '<');
  g_string_append (meta, "1");
  for (int i = 0; i < 20000; i++)
    g_string_append_c (meta, '>');
  g_string_append (meta, "}");
  g_string_printf (text,
    "{\"version\": 1, \"agents\": ["
    "{\"id\": \"deep\", \"state\": \"healthy\", \"owner-uid\": 0, \"pid\": 0, \"beats\": 0,"
    " \"stale-after-usec\": 0, \"timeout-after-usec\": 0, \"started-at\": 1, \"last-activity-at\": 1,"
    " \"metadata\": \"%s\"},"
    "{\"id\": \"fine\", \"state\": \"healthy\", \"owner-uid\": 0, \"pid\": 0, \"beats\": 0,"
    " \"stale-after-usec\": 0, \"timeout-after-usec\": 0, \"started-at\": 1, \"last-activity-at\": 1,"
    " \"metadata\": \"{'k': <1>}\"}]}", meta->str);
  g_assert_true (g_file_set_contents (f->path, text->str, -1, &error));
  monitor2 = reload (f, &state2);
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (monitor2), ==, 1);
  g_assert_nonnull (heartbeat_monitor_lookup (monitor2, "fine"));
  assert_warnings ((const char *[]) { "*agent ?deep?: metadata nested too deeply; skipped", NULL });
}

/* No size limit on reading back what was written: 600 agents with the
 * largest metadata each (over 10 MB) all come back. */
static void
test_large_state_restored (Fixture *f, gconstpointer data)
{
  g_autofree char *big = g_strnfill (HEARTBEAT_METADATA_MAX_SIZE - 64, 'm');
  g_autoptr(GVariant) metadata = g_variant_ref_sink (g_variant_new_parsed ("{'big': <%s>}", big));
  HeartbeatAgentOptions options = { .metadata = metadata };
  g_autoptr(HbState) state2 = NULL;
  g_autoptr(HeartbeatMonitor) monitor2 = NULL;
  g_autoptr(GError) error = NULL;

  g_clear_object (&f->state);   /* no write per registration */
  for (guint i = 0; i < 600; i++)
    {
      g_autofree char *id = g_strdup_printf ("agent-%u", i);
      register_agent (f->monitor, id, &options);
    }
  f->state = hb_state_new (f->monitor, f->dir);
  g_assert_true (hb_state_flush (f->state, &error));
  g_assert_no_error (error);

  monitor2 = reload (f, &state2);
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (monitor2), ==, 600);
  g_assert_true (g_variant_equal (heartbeat_agent_get_metadata (heartbeat_monitor_lookup (monitor2, "agent-599")),
                                  metadata));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  warnings = g_ptr_array_new_with_free_func (g_free);
  g_log_set_writer_func (capture_writer, NULL, NULL);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/state/round-trip", test_round_trip);
  ADD ("/state/write-through-and-batching", test_write_through_and_batching);
  ADD ("/state/overdue-after-restart", test_overdue_after_restart);
  ADD ("/state/corrupt-moved-aside", test_corrupt_moved_aside);
  ADD ("/state/bad-entry-skipped", test_bad_entry_skipped);
  ADD ("/state/write-failure-is-a-problem", test_write_failure_is_a_problem);
  ADD ("/state/lock", test_lock);
  ADD ("/state/deeply-nested", test_deeply_nested);
  ADD ("/state/large-state-restored", test_large_state_restored);

  return g_test_run ();
}
