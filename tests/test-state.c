/* test-state.c: heartbeatd's persistence of agents
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib/gstdio.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/resource.h>
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
  char             *path;       /* agents.json, as an older heartbeatd wrote it */
  char             *db_path;    /* agents.db */
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
  f->db_path = g_build_filename (f->dir, "agents.db", NULL);
  f->monitor = heartbeat_monitor_new ();
  f->state = hb_state_new (f->monitor, f->dir);
  if (data == NULL)   /* else the test loads it itself */
    {
      g_assert_true (hb_state_load (f->state, &error));
      g_assert_no_error (error);
    }
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
  g_free (f->db_path);
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
on_result (GObject *source, GAsyncResult *result, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* Waits (main loop, bounded) until what @monitor changed so far is saved. */
static gboolean
wait_saved (HeartbeatMonitor *monitor, GError **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  gint64 until = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  heartbeat_monitor_sync_async (monitor, NULL, on_result, &result);
  while (result == NULL)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, until);
      g_main_context_iteration (NULL, TRUE);
    }
  return heartbeat_monitor_sync_finish (monitor, result, error);
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
  /* its history, times and all; then the time between the two lives,
   * which nobody watched (see /state/unmonitored-gap) */
  {
    g_autoptr(GVariant) saved = g_variant_ref_sink (heartbeat_agent_get_history (heartbeat_monitor_lookup (f->monitor, "broken")));
    g_autoptr(GVariant) restored = g_variant_ref_sink (heartbeat_agent_get_history (b));
    g_autofree char *text = g_variant_print (restored, FALSE);
    const char *state;

    g_test_message ("%s", text);
    g_assert_cmpuint (g_variant_n_children (saved), ==, 2);
    g_assert_cmpuint (g_variant_n_children (restored), ==, 4);
    for (gsize i = 0; i < 2; i++)
      {
        g_autoptr(GVariant) x = g_variant_get_child_value (saved, i);
        g_autoptr(GVariant) y = g_variant_get_child_value (restored, i);

        g_assert_true (g_variant_equal (x, y));
      }
    g_assert_nonnull (strstr (text, "'healthy'"));
    g_variant_get_child (restored, 1, "(t&s)", NULL, &state);
    g_assert_cmpstr (state, ==, "error");
    g_variant_get_child (restored, 2, "(t&s)", NULL, &state);
    g_assert_cmpstr (state, ==, "unmonitored");
    g_variant_get_child (restored, 3, "(t&s)", NULL, &state);
    g_assert_cmpstr (state, ==, "error");
  }
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
on_saved_in_order (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GArray *order = user_data;
  g_autoptr(GError) error = NULL;
  guint n = order->len;

  g_assert_true (heartbeat_monitor_sync_finish (HEARTBEAT_MONITOR (source), result, &error));
  g_array_append_val (order, n);
}

/* Registrations share a commit, answered in order; beats are saved lazily
 * (here every second), and not at all while nothing beats. */
static void
test_group_commit_and_lazy_beats (Fixture *f, gconstpointer data)
{
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(GArray) order = g_array_new (FALSE, FALSE, sizeof (guint));
  HeartbeatBeatDetails with_progress = { .has_progress = TRUE, .progress = 0.5 };
  g_autoptr(HbState) state2 = NULL;
  g_autoptr(HeartbeatMonitor) monitor2 = NULL;
  g_autoptr(GError) error = NULL;
  guint64 count;
  gulong handler;
  guint timeout;

  /* one registration: one commit, done when sync says so */
  count = hb_state_get_write_count (f->state);
  register_agent (f->monitor, "a", NULL);
  g_assert_true (wait_saved (f->monitor, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (hb_state_get_write_count (f->state), ==, count + 1);

  /* ten callers at once: at most two commits (the one each cut makes),
   * their answers in the order of the calls */
  count = hb_state_get_write_count (f->state);
  for (guint i = 0; i < 10; i++)
    {
      g_autofree char *id = g_strdup_printf ("group-%u", i);

      register_agent (f->monitor, id, NULL);
      heartbeat_monitor_sync_async (f->monitor, NULL, on_saved_in_order, order);
    }
  while (order->len < 10)
    g_main_context_iteration (NULL, TRUE);
  for (guint i = 0; i < 10; i++)
    g_assert_cmpuint (g_array_index (order, guint, i), ==, i);
  g_assert_cmpuint (hb_state_get_write_count (f->state), <=, count + 2);
  g_assert_cmpuint (hb_state_get_write_count (f->state), >, count);

  /* a hundred beats, the last with progress: nothing to wait for,
   * nothing written yet */
  count = hb_state_get_write_count (f->state);
  for (int i = 0; i < 99; i++)
    g_assert_true (heartbeat_monitor_beat (f->monitor, "a", NULL, &error));
  g_assert_true (heartbeat_monitor_beat (f->monitor, "a", &with_progress, &error));
  g_assert_true (wait_saved (f->monitor, &error));
  g_assert_cmpuint (hb_state_get_write_count (f->state), ==, count);

  /* then one lazy write at the sync interval */
  hb_state_set_sync_interval (f->state, G_USEC_PER_SEC);
  handler = g_signal_connect (f->state, "notify::write-count", G_CALLBACK (on_write_count), loop);
  timeout = g_timeout_add_seconds (10, on_timeout, NULL);
  g_main_loop_run (loop);
  g_source_remove (timeout);
  g_signal_handler_disconnect (f->state, handler);
  g_assert_cmpuint (hb_state_get_write_count (f->state), ==, count + 1);

  /* an idle mark is saved at once, with what it changed */
  g_assert_true (heartbeat_monitor_mark_idle (f->monitor, "a", &error));
  g_assert_true (wait_saved (f->monitor, &error));
  g_assert_cmpuint (hb_state_get_write_count (f->state), ==, count + 2);

  /* a second life sees it all, without a flush (as after kill -9) */
  monitor2 = reload (f, &state2);
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (monitor2), ==, 11);
  g_assert_cmpuint (heartbeat_agent_get_beats (heartbeat_monitor_lookup (monitor2, "a")), ==, 100);
  {
    double progress = 0;

    g_assert_true (g_variant_lookup (heartbeat_agent_get_metadata (heartbeat_monitor_lookup (monitor2, "a")),
                                     "progress", "d", &progress));
    g_assert_cmpfloat (progress, ==, 0.5);
  }
  g_assert_cmpstr (heartbeat_agent_get_status (heartbeat_monitor_lookup (monitor2, "a")), ==, "idle");
}

static gint64 fake_now;

static gint64
fake_clock (gpointer user_data)
{
  return fake_now;
}

/* After an unclean exit (no flush: beats since the last lazy sync are
 * lost), a healthy agent whose threshold is shorter than the sync interval
 * is not stale at once: it gets its threshold from the restart. After a
 * clean one, it is judged by its saved activity. */
static void
test_no_false_stale_after_crash (Fixture *f, gconstpointer data)
{
  HeartbeatAgentOptions options = { .stale_after_usec = 10 * G_USEC_PER_SEC };
  g_autoptr(GError) error = NULL;
  HeartbeatAgent *agent;

  register_agent (f->monitor, "short", &options);
  g_assert_true (wait_saved (f->monitor, &error));

  for (guint life = 0; life < 2; life++)
    {
      g_autoptr(HeartbeatMonitor) monitor = heartbeat_monitor_new ();
      g_autoptr(HbState) state = hb_state_new (monitor, f->dir);
      guint stale = 0;

      /* the saved activity is 60 s old */
      fake_now = 1000 * G_USEC_PER_SEC;
      heartbeat_monitor_set_clock (monitor, fake_clock, NULL);
      {
        sqlite3 *db = NULL;

        g_assert_cmpint (sqlite3_open (f->db_path, &db), ==, SQLITE_OK);
        g_assert_cmpint (sqlite3_exec (db, life == 0 ? "UPDATE meta SET value = 0 WHERE key = 'clean'"
                                                     : "UPDATE meta SET value = 1 WHERE key = 'clean'",
                                       NULL, NULL, NULL), ==, SQLITE_OK);
        g_autofree char *sql = g_strdup_printf ("UPDATE activity SET last_activity_at = %" G_GINT64_FORMAT,
                                                g_get_real_time () - 60 * G_USEC_PER_SEC);
        g_assert_cmpint (sqlite3_exec (db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
        sqlite3_close (db);
      }
      g_assert_true (hb_state_load (state, &error));
      agent = heartbeat_monitor_lookup (monitor, "short");
      g_assert_nonnull (agent);
      g_assert_cmpint (heartbeat_agent_get_idle_usec (agent, fake_now), >=, 60 * G_USEC_PER_SEC);
      g_signal_connect_swapped (monitor, "agent-stale", G_CALLBACK (g_atomic_int_inc), &stale);

      heartbeat_monitor_run_checks (monitor, fake_now);
      if (life == 0)
        {
          g_assert_cmpuint (stale, ==, 0);
          fake_now += 9 * G_USEC_PER_SEC;
          heartbeat_monitor_run_checks (monitor, fake_now);
          g_assert_cmpuint (stale, ==, 0);
          fake_now += 1 * G_USEC_PER_SEC + 1000;   /* (the wall clock moved a little since) */
          heartbeat_monitor_run_checks (monitor, fake_now);
        }
      g_assert_cmpuint (stale, ==, 1);
      g_clear_object (&state);
    }
}

/* An agent that went quiet while the daemon was down is judged by the
 * wall clock: stale at once after the restart (here imported from the
 * agents.json of an older heartbeatd, exact and saved on a clean exit). */
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
count_with_prefix (Fixture *f, const char *prefix)
{
  g_autoptr(GDir) dir = g_dir_open (f->dir, 0, NULL);
  const char *name;
  guint n = 0;

  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_prefix (name, prefix))
      n++;
  return n;
}

#define count_aside(f) count_with_prefix ((f), "agents.json.corrupt-")

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

/* A database that is not one, or is corrupt, is moved aside whole; the
 * daemon starts empty on a new one, which works. */
static void
test_corrupt_database_moved_aside (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *garbage = g_strnfill (8192, 'x');

  g_assert_true (g_file_set_contents (f->db_path, garbage, -1, &error));
  g_assert_true (hb_state_load (f->state, &error));
  g_assert_no_error (error);
  assert_warnings ((const char *[]) { "*agents.db is unreadable*moved it to*", NULL });
  g_assert_cmpuint (count_with_prefix (f, "agents.db.corrupt-"), ==, 1);
  register_agent (f->monitor, "after", NULL);
  g_assert_true (wait_saved (f->monitor, &error));
  g_assert_no_error (error);
}

/* The agents.json of an older heartbeatd is imported once, then renamed. */
static void
test_json_imported_once (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HbState) state2 = NULL;
  g_autoptr(HeartbeatMonitor) monitor2 = NULL;
  g_autofree char *imported = g_strconcat (f->path, ".imported", NULL);
  gint64 now = g_get_real_time ();
  g_autofree char *contents = g_strdup_printf (
    "{\"version\": 1, \"agents\": ["
    " {\"id\": \"old\", \"task-id\": \"nightly\", \"state\": \"healthy\", \"owner-uid\": 1000, \"pid\": 0,"
    "  \"beats\": 7, \"stale-after-usec\": 0, \"timeout-after-usec\": 0,"
    "  \"started-at\": %" G_GINT64_FORMAT ", \"last-activity-at\": %" G_GINT64_FORMAT ","
    "  \"metadata\": \"{'host': <'db1'>}\"}]}", now, now);

  g_assert_true (g_file_set_contents (f->path, contents, -1, &error));
  g_assert_true (hb_state_load (f->state, &error));
  g_assert_no_error (error);
  g_assert_nonnull (heartbeat_monitor_lookup (f->monitor, "old"));
  g_assert_false (g_file_test (f->path, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (imported, G_FILE_TEST_EXISTS));

  monitor2 = reload (f, &state2);
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (monitor2), ==, 1);
  g_assert_cmpstr (heartbeat_agent_get_task_id (heartbeat_monitor_lookup (monitor2, "old")), ==, "nightly");
  g_assert_cmpuint (heartbeat_agent_get_beats (heartbeat_monitor_lookup (monitor2, "old")), ==, 7);
  g_unlink (imported);
}

/* Times are saved as "now minus how long ago". One that comes out before
 * the epoch (the wall clock was set back, or reads 1970 on a board
 * without a battery) is saved as the epoch, and the agent still loads. */
static void
test_time_before_epoch (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HbState) state2 = NULL;
  g_autoptr(HeartbeatMonitor) monitor2 = NULL;
  HeartbeatAgent *agent;

  fake_now = 1000 * G_USEC_PER_SEC;
  heartbeat_monitor_set_clock (f->monitor, fake_clock, NULL);
  register_agent (f->monitor, "ancient", NULL);
  g_assert_true (wait_saved (f->monitor, &error));

  /* the monitor's clock says it began an hour before the epoch */
  fake_now += g_get_real_time () + G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC;
  g_assert_cmpint (heartbeat_monitor_to_realtime (f->monitor, 1000 * G_USEC_PER_SEC), <, 0);
  g_assert_true (heartbeat_monitor_mark_idle (f->monitor, "ancient", &error));
  g_assert_no_error (error);
  g_assert_true (wait_saved (f->monitor, &error));

  monitor2 = reload (f, &state2);
  agent = heartbeat_monitor_lookup (monitor2, "ancient");
  g_assert_nonnull (agent);
  g_assert_cmpstr (heartbeat_agent_get_status (agent), ==, "idle");
  g_assert_cmpint (heartbeat_monitor_to_realtime (monitor2, heartbeat_agent_get_started_at (agent)), <=, 1000);
}

/* A database of schema 1 (before histories) is upgraded in place: its
 * agents stay, each with a history that starts at the upgrade. */
static void
test_schema1_upgraded (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) history = NULL;
  g_autoptr(HbState) state2 = NULL;
  g_autoptr(HeartbeatMonitor) monitor2 = NULL;
  sqlite3 *db = NULL;
  const char *state;

  g_assert_cmpint (sqlite3_open (f->db_path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db,
                                 "CREATE TABLE agents (id TEXT PRIMARY KEY NOT NULL,"
                                 "  task_id TEXT, state TEXT NOT NULL, status TEXT,"
                                 "  owner_uid INTEGER NOT NULL, pid INTEGER NOT NULL, bound_to TEXT,"
                                 "  declared INTEGER NOT NULL, stale_after INTEGER NOT NULL,"
                                 "  timeout_after INTEGER NOT NULL, started_at INTEGER NOT NULL,"
                                 "  metadata BLOB) WITHOUT ROWID;"
                                 "CREATE TABLE activity (id TEXT PRIMARY KEY NOT NULL,"
                                 "  last_activity_at INTEGER NOT NULL, beats INTEGER NOT NULL) WITHOUT ROWID;"
                                 "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER) WITHOUT ROWID;"
                                 "INSERT INTO meta VALUES ('clean', 1);"
                                 "INSERT INTO agents (id, task_id, state, owner_uid, pid, declared, stale_after,"
                                 " timeout_after, started_at) VALUES ('old', 'nightly', 'error', 0, 0, 0, 0, 0, 1);"
                                 "PRAGMA user_version=1;",
                                 NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  g_assert_true (hb_state_load (f->state, &error));
  g_assert_no_error (error);
  g_assert_nonnull (heartbeat_monitor_lookup (f->monitor, "old"));
  history = g_variant_ref_sink (heartbeat_agent_get_history (heartbeat_monitor_lookup (f->monitor, "old")));
  g_assert_cmpuint (g_variant_n_children (history), ==, 1);
  g_variant_get_child (history, 0, "(t&s)", NULL, &state);
  g_assert_cmpstr (state, ==, "error");
  g_assert_true (heartbeat_monitor_mark_gone (f->monitor, "old", &error));
  g_assert_true (hb_state_flush (f->state, &error));
  g_assert_no_error (error);

  monitor2 = reload (f, &state2);
  g_clear_pointer (&history, g_variant_unref);
  history = g_variant_ref_sink (heartbeat_agent_get_history (heartbeat_monitor_lookup (monitor2, "old")));
  /* error, gone, then the restart: unmonitored, gone */
  g_assert_cmpuint (g_variant_n_children (history), ==, 4);
  g_variant_get_child (history, 1, "(t&s)", NULL, &state);
  g_assert_cmpstr (state, ==, "gone");
}

/* A row that does not make an agent is skipped, the others restored. */
static void
test_bad_row_skipped (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HbState) state2 = NULL;
  g_autoptr(HeartbeatMonitor) monitor2 = NULL;
  sqlite3 *db = NULL;

  register_agent (f->monitor, "good", NULL);
  register_agent (f->monitor, "bad-state", NULL);
  register_agent (f->monitor, "bad-meta", NULL);
  g_assert_true (wait_saved (f->monitor, &error));
  g_assert_cmpint (sqlite3_open (f->db_path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "UPDATE agents SET state = 'bogus' WHERE id = 'bad-state';"
                                     "UPDATE agents SET metadata = x'0102' WHERE id = 'bad-meta';"
                                     "INSERT INTO agents (id, state, owner_uid, pid, declared, stale_after,"
                                     " timeout_after, started_at) VALUES ('bad id', 'healthy', 0, 0, 0, 0, 0, 1);",
                                 NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  monitor2 = reload (f, &state2);
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (monitor2), ==, 1);
  g_assert_nonnull (heartbeat_monitor_lookup (monitor2, "good"));
  g_assert_cmpuint (warnings->len, ==, 3);
  g_ptr_array_set_size (warnings, 0);
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
on_unregistered (HeartbeatMonitor *monitor, HeartbeatAgent *agent, int reason, gpointer user_data)
{
  g_string_append_printf (user_data, "%s ", heartbeat_agent_get_id (agent));
}

/* Writes that fail (here: a file size limit, as a full disk would) leave
 * the daemon serving: a caller's change that cannot be saved is taken
 * back and answered NotSaved, the problem is reported, and the next write
 * that succeeds clears it. */
static void
test_write_failure_is_a_problem (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) unregistered = g_string_new (NULL);
  g_autofree char *wal = g_strconcat (f->db_path, "-wal", NULL);
  struct rlimit saved, tiny;
  GStatBuf st;
  guint notified = 0;

  register_agent (f->monitor, "kept", NULL);
  g_assert_true (wait_saved (f->monitor, &error));
  g_signal_connect (f->state, "notify::problem", G_CALLBACK (on_problem), &notified);
  g_signal_connect (f->monitor, "agent-unregistered", G_CALLBACK (on_unregistered), unregistered);

  /* no file may grow any more */
  g_assert_cmpint (g_stat (wal, &st), ==, 0);
  signal (SIGXFSZ, SIG_IGN);
  g_assert_cmpint (getrlimit (RLIMIT_FSIZE, &saved), ==, 0);
  tiny = saved;
  tiny.rlim_cur = (rlim_t) st.st_size;
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &tiny), ==, 0);

  register_agent (f->monitor, "lost", NULL);
  g_assert_false (wait_saved (f->monitor, &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_NOT_SAVED);
  g_clear_error (&error);
  g_assert_null (heartbeat_monitor_lookup (f->monitor, "lost"));
  g_assert_cmpstr (unregistered->str, ==, "lost ");
  g_assert_nonnull (hb_state_get_problem (f->state));
  g_assert_nonnull (strstr (hb_state_get_problem (f->state), f->db_path));
  g_assert_cmpuint (notified, ==, 1);

  /* an unregistration likewise: the agent is back */
  g_assert_true (heartbeat_monitor_unregister (f->monitor, "kept", &error));
  g_assert_false (wait_saved (f->monitor, &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_NOT_SAVED);
  g_clear_error (&error);
  g_assert_nonnull (heartbeat_monitor_lookup (f->monitor, "kept"));

  /* room again: the next write succeeds and the problem is gone */
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &saved), ==, 0);
  signal (SIGXFSZ, SIG_DFL);
  register_agent (f->monitor, "after", NULL);
  g_assert_true (wait_saved (f->monitor, &error));
  g_assert_no_error (error);
  g_assert_null (hb_state_get_problem (f->state));
  g_assert_cmpuint (notified, ==, 2);
  assert_warnings ((const char *[]) { NULL });
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

  for (guint i = 0; i < 600; i++)
    {
      g_autofree char *id = g_strdup_printf ("agent-%u", i);
      register_agent (f->monitor, id, &options);
    }
  g_assert_true (hb_state_flush (f->state, &error));   /* one transaction */
  g_assert_no_error (error);

  monitor2 = reload (f, &state2);
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (monitor2), ==, 600);
  g_assert_true (g_variant_equal (heartbeat_agent_get_metadata (heartbeat_monitor_lookup (monitor2, "agent-599")),
                                  metadata));
}

/* --- jobs' run records --- */

#define MIN_US  (G_GINT64_CONSTANT (60) * G_USEC_PER_SEC)
#define HOUR_US (60 * MIN_US)

/* The monitor's two clocks, moved by the test: the wall clock is
 * clock_r0 + (clock_now - clock_t0). */
static gint64 clock_t0, clock_r0, clock_now;

static gint64
test_mono_clock (gpointer user_data)
{
  return clock_now;
}

static gint64
test_real_clock (gpointer user_data)
{
  return clock_r0 + (clock_now - clock_t0);
}

/* Due every hour from clock_r0. */
static gint64
runs_hourly (gint64 after, gpointer user_data)
{
  gint64 from = MAX (after, clock_r0);

  return clock_r0 + ((from - clock_r0) / HOUR_US + 1) * HOUR_US;
}

/* The test's clocks on @monitor, the wall clock two hours behind the real
 * one (so that what is restored later is in the past). */
static void
runs_clocks (HeartbeatMonitor *monitor)
{
  clock_t0 = clock_now = 1000 * G_USEC_PER_SEC;
  clock_r0 = g_get_real_time () - 2 * HOUR_US;
  heartbeat_monitor_set_clock (monitor, test_mono_clock, NULL);
  heartbeat_monitor_set_realtime_clock (monitor, test_real_clock, NULL);
}

static void
runs_advance (HeartbeatMonitor *monitor, gint64 usec)
{
  clock_now += usec;
  heartbeat_monitor_run_checks (monitor, clock_now);
}

static void
finish_run (HeartbeatMonitor *monitor, const char *id, gboolean success, int exit_status, const char *output)
{
  HeartbeatRunEnd end = { .success = success, .exit_status = exit_status, .output = output, .output_length = -1 };
  g_autoptr(GError) error = NULL;

  g_assert_true (heartbeat_monitor_finish_run (monitor, id, &end, &error));
  g_assert_no_error (error);
}

static GVariant *
runs_of (HeartbeatMonitor *monitor, const char *id)
{
  HeartbeatAgent *agent = heartbeat_monitor_lookup (monitor, id);

  g_assert_nonnull (agent);
  return g_variant_ref_sink (heartbeat_agent_get_runs (agent));
}

static void
assert_same_runs (HeartbeatMonitor *monitor, HeartbeatMonitor *other, const char *id)
{
  g_autoptr(GVariant) a = runs_of (monitor, id);
  g_autoptr(GVariant) b = runs_of (other, id);

  if (!g_variant_equal (a, b))
    {
      g_autofree char *ta = g_variant_print (a, FALSE);
      g_autofree char *tb = g_variant_print (b, FALSE);

      g_test_message ("saved %s\nrestored %s", ta, tb);
    }
  g_assert_true (g_variant_equal (a, b));
}

/* The result of the @i-th record (from the oldest) of @runs. */
static const char *
run_result (GVariant *runs, gsize i)
{
  g_autoptr(GVariant) run = g_variant_get_child_value (runs, i);
  const char *result = NULL;

  g_assert_true (g_variant_lookup (run, "result", "&s", &result));
  return g_intern_string (result);
}

/* A job's records (a missed one, a success with output in several scripts,
 * a failure with its exit status, one running) are saved at once, each
 * with the change that made it (no flush: as after kill -9), and come
 * back whole; the agent's lateness and its run in progress with them. */
static void
test_runs_round_trip (Fixture *f, gconstpointer data)
{
  /* 2-, 3- and 4-byte characters, and a newline */
  static const char output[] = "sauvegardé ✓ 完了 🎉\nΔ=0";
  HeartbeatAgentOptions options = { .timeout_after_usec = HOUR_US };
  g_autoptr(GString) long_output = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) runs = NULL;
  HeartbeatAgent *agent;

  runs_clocks (f->monitor);
  g_assert_nonnull (heartbeat_monitor_declare (f->monitor, "nightly", &options, &error));
  g_assert_no_error (error);
  g_assert_true (heartbeat_monitor_set_schedule (f->monitor, "nightly", runs_hourly, NULL, NULL,
                                                 5 * 60 * G_USEC_PER_SEC, &error));
  g_assert_no_error (error);
  g_assert_true (wait_saved (f->monitor, &error));

  /* the first due time passes without a run: a missed record, saved with
   * the change of state it makes */
  runs_advance (f->monitor, HOUR_US + 6 * 60 * G_USEC_PER_SEC);
  agent = heartbeat_monitor_lookup (f->monitor, "nightly");
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_STALE);
  g_assert_true (wait_saved (f->monitor, &error));
  g_assert_no_error (error);
  {
    g_autoptr(HbState) state2 = NULL;
    g_autoptr(HeartbeatMonitor) monitor2 = reload (f, &state2);

    runs = runs_of (monitor2, "nightly");
    g_assert_cmpuint (g_variant_n_children (runs), ==, 1);
    g_assert_true (run_result (runs, 0) == g_intern_static_string ("missed"));
    assert_same_runs (f->monitor, monitor2, "nightly");
    g_assert_cmpint (heartbeat_agent_get_late_due (heartbeat_monitor_lookup (monitor2, "nightly")), ==,
                     clock_r0 + HOUR_US);
    g_clear_pointer (&runs, g_variant_unref);
  }

  /* a late run with output, a failure, and output past the bound */
  g_assert_true (heartbeat_monitor_start_run (f->monitor, "nightly", 0, &error));
  runs_advance (f->monitor, 90 * G_USEC_PER_SEC);
  finish_run (f->monitor, "nightly", TRUE, 0, output);
  /* (1 h 7 min 30 s) to the next due time and a little: on time */
  runs_advance (f->monitor, 53 * MIN_US);
  g_assert_true (heartbeat_monitor_start_run (f->monitor, "nightly", 0, &error));
  runs_advance (f->monitor, G_USEC_PER_SEC);
  for (guint i = 0; g_utf8_strlen (long_output->str, -1) < 2 * HEARTBEAT_RUN_OUTPUT_MAX; i++)
    g_string_append (long_output, "é🎉x");
  finish_run (f->monitor, "nightly", FALSE, 3, long_output->str);
  /* and one still running, on time too */
  runs_advance (f->monitor, HOUR_US - G_USEC_PER_SEC);
  g_assert_true (heartbeat_monitor_start_run (f->monitor, "nightly", 0, &error));
  g_assert_no_error (error);
  g_assert_true (wait_saved (f->monitor, &error));
  g_assert_no_error (error);

  {
    g_autoptr(HbState) state2 = NULL;
    g_autoptr(HeartbeatMonitor) monitor2 = reload (f, &state2);
    g_autoptr(GVariant) run = NULL;
    const char *text = NULL;
    gint32 exit_status = -1;
    HeartbeatAgent *b;

    assert_same_runs (f->monitor, monitor2, "nightly");
    runs = runs_of (monitor2, "nightly");
    g_assert_cmpuint (g_variant_n_children (runs), ==, 4);
    g_assert_true (run_result (runs, 0) == g_intern_static_string ("missed"));
    g_assert_true (run_result (runs, 1) == g_intern_static_string ("success"));
    g_assert_true (run_result (runs, 2) == g_intern_static_string ("failure"));
    g_assert_true (run_result (runs, 3) == g_intern_static_string ("running"));
    run = g_variant_get_child_value (runs, 1);
    g_assert_true (g_variant_lookup (run, "output", "&s", &text));
    g_assert_cmpstr (text, ==, output);
    g_clear_pointer (&run, g_variant_unref);
    run = g_variant_get_child_value (runs, 2);
    g_assert_true (g_variant_lookup (run, "exit-status", "i", &exit_status));
    g_assert_cmpint (exit_status, ==, 3);
    g_assert_true (g_variant_lookup (run, "output", "&s", &text));
    g_assert_cmpuint (strlen (text), <=, HEARTBEAT_RUN_OUTPUT_MAX);
    g_assert_true (g_utf8_validate (text, -1, NULL));
    g_assert_true (g_str_has_suffix (long_output->str, text));

    /* the run in progress is one: it can be finished */
    b = heartbeat_monitor_lookup (monitor2, "nightly");
    g_assert_cmpstr (heartbeat_agent_get_status (b), ==, "running");
    finish_run (monitor2, "nightly", TRUE, 0, NULL);
    g_clear_pointer (&runs, g_variant_unref);
    runs = runs_of (monitor2, "nightly");
    g_assert_cmpuint (g_variant_n_children (runs), ==, 4);
    g_assert_true (run_result (runs, 3) == g_intern_static_string ("success"));
    g_assert_true (hb_state_flush (state2, &error));
    g_assert_no_error (error);
  }

  /* after a clean exit too; and unregistered, its records go with it */
  {
    g_autoptr(HbState) state3 = NULL;
    g_autoptr(HeartbeatMonitor) monitor3 = reload (f, &state3);
    g_autoptr(GVariant) again = runs_of (monitor3, "nightly");
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;

    g_assert_true (g_variant_equal (runs, again));
    g_assert_true (heartbeat_monitor_unregister (monitor3, "nightly", &error));
    g_assert_no_error (error);
    g_assert_true (hb_state_flush (state3, &error));
    g_assert_cmpint (sqlite3_open (f->db_path, &db), ==, SQLITE_OK);
    g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT count(*) FROM runs", -1, &stmt, NULL), ==, SQLITE_OK);
    g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
    g_assert_cmpint (sqlite3_column_int (stmt, 0), ==, 0);
    sqlite3_finalize (stmt);
    sqlite3_close (db);
  }
}

/* A database of schema 2 (before run records) is upgraded in place: its
 * agents stay, with their history, and then keep runs. */
static void
test_schema2_upgraded (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HbState) state2 = NULL;
  g_autoptr(HeartbeatMonitor) monitor2 = NULL;
  g_autoptr(GVariant) history = g_variant_ref_sink (g_variant_new_parsed ("[(uint64 5, 'healthy'), (uint64 7, 'error')]"));
  g_autoptr(GVariant) runs = NULL;
  g_autofree char *hex = NULL;
  g_autofree char *sql = NULL;
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  gsize size;
  const guint8 *bytes = g_variant_get_data (history);

  size = g_variant_get_size (history);
  hex = g_malloc0 (2 * size + 1);
  for (gsize i = 0; i < size; i++)
    g_snprintf (hex + 2 * i, 3, "%02x", bytes[i]);
  sql = g_strdup_printf ("CREATE TABLE agents (id TEXT PRIMARY KEY NOT NULL,"
                         "  task_id TEXT, state TEXT NOT NULL, status TEXT,"
                         "  owner_uid INTEGER NOT NULL, pid INTEGER NOT NULL, bound_to TEXT,"
                         "  declared INTEGER NOT NULL, stale_after INTEGER NOT NULL,"
                         "  timeout_after INTEGER NOT NULL, started_at INTEGER NOT NULL,"
                         "  metadata BLOB, history BLOB) WITHOUT ROWID;"
                         "CREATE TABLE activity (id TEXT PRIMARY KEY NOT NULL,"
                         "  last_activity_at INTEGER NOT NULL, beats INTEGER NOT NULL) WITHOUT ROWID;"
                         "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER) WITHOUT ROWID;"
                         "INSERT INTO meta VALUES ('clean', 1);"
                         "INSERT INTO agents (id, task_id, state, owner_uid, pid, declared, stale_after,"
                         " timeout_after, started_at, history) VALUES ('old', 'nightly', 'error', 0, 0, 1, 0, 0, 1, x'%s');"
                         "PRAGMA user_version=2;", hex);
  g_assert_cmpint (sqlite3_open (f->db_path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  g_assert_true (hb_state_load (f->state, &error));
  g_assert_no_error (error);
  {
    g_autoptr(GVariant) restored = g_variant_ref_sink (heartbeat_agent_get_history (heartbeat_monitor_lookup (f->monitor, "old")));

    g_assert_cmpuint (g_variant_n_children (restored), ==, 2);
    g_assert_cmpstr (heartbeat_agent_get_task_id (heartbeat_monitor_lookup (f->monitor, "old")), ==, "nightly");
  }
  g_assert_cmpint (sqlite3_open (f->db_path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  g_assert_cmpint (sqlite3_column_int (stmt, 0), ==, 4);
  sqlite3_finalize (stmt);
  sqlite3_close (db);

  finish_run (f->monitor, "old", FALSE, 2, "disk full");
  g_assert_true (wait_saved (f->monitor, &error));
  g_assert_no_error (error);
  monitor2 = reload (f, &state2);
  assert_same_runs (f->monitor, monitor2, "old");
  runs = runs_of (monitor2, "old");
  g_assert_cmpuint (g_variant_n_children (runs), ==, 1);
  g_assert_true (run_result (runs, 0) == g_intern_static_string ("failure"));
}

/* Run records that are damaged, or that the monitor refuses, are lost
 * with a warning; their agents are kept, and the records are deleted. */
static void
test_bad_runs_dropped (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) refused = g_variant_ref_sink (g_variant_new_parsed ("{'result': <'exploded'>}"));
  g_autofree char *hex = NULL;
  g_autofree char *sql = NULL;
  const guint8 *bytes = g_variant_get_data (refused);
  gsize size = g_variant_get_size (refused);
  sqlite3 *db = NULL;

  for (guint i = 0; i < 3; i++)
    {
      static const char *const ids[] = { "good", "garbled", "refused" };
      HeartbeatAgentOptions options = { .task_id = ids[i] };

      register_agent (f->monitor, ids[i], &options);
      finish_run (f->monitor, ids[i], TRUE, 0, "fine");
    }
  g_assert_true (wait_saved (f->monitor, &error));

  hex = g_malloc0 (2 * size + 1);
  for (gsize i = 0; i < size; i++)
    g_snprintf (hex + 2 * i, 3, "%02x", bytes[i]);
  sql = g_strdup_printf ("UPDATE runs SET record = x'01020304ff' WHERE id = 'garbled';"
                         "UPDATE runs SET record = x'%s' WHERE id = 'refused';", hex);
  g_assert_cmpint (sqlite3_open (f->db_path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  for (guint life = 0; life < 2; life++)
    {
      g_autoptr(HbState) state2 = NULL;
      g_autoptr(HeartbeatMonitor) monitor2 = reload (f, &state2);
      g_autoptr(GVariant) garbled = NULL;
      g_autoptr(GVariant) refused_runs = NULL;

      /* the second life finds them deleted: no warning */
      if (life == 0)
        assert_warnings ((const char *[]) { "*“garbled”*run records are damaged; dropped",
                                            "*“refused”*run records cannot be restored*; dropped", NULL });
      else
        assert_warnings ((const char *[]) { NULL });
      g_assert_cmpuint (heartbeat_monitor_get_n_agents (monitor2), ==, 3);
      assert_same_runs (f->monitor, monitor2, "good");
      garbled = runs_of (monitor2, "garbled");
      refused_runs = runs_of (monitor2, "refused");
      g_assert_cmpuint (g_variant_n_children (garbled), ==, 0);
      g_assert_cmpuint (g_variant_n_children (refused_runs), ==, 0);
      g_assert_cmpstr (heartbeat_agent_get_task_id (heartbeat_monitor_lookup (monitor2, "garbled")), ==, "garbled");
      g_assert_cmpstr (heartbeat_agent_get_task_id (heartbeat_monitor_lookup (monitor2, "refused")), ==, "refused");
      g_assert_true (hb_state_flush (state2, &error));
      g_assert_no_error (error);
    }
}

/* A run whose record cannot be saved is taken back with the caller's
 * NotSaved: the records are those saved, none if none were. */
static void
test_run_not_saved_taken_back (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) saved = NULL;
  g_autoptr(GVariant) now = NULL;
  g_autofree char *wal = g_strconcat (f->db_path, "-wal", NULL);
  struct rlimit limit, tiny;
  GStatBuf st;

  register_agent (f->monitor, "job", NULL);
  register_agent (f->monitor, "fresh", NULL);
  finish_run (f->monitor, "job", TRUE, 0, "one");
  g_assert_true (wait_saved (f->monitor, &error));
  saved = runs_of (f->monitor, "job");

  g_assert_cmpint (g_stat (wal, &st), ==, 0);
  signal (SIGXFSZ, SIG_IGN);
  g_assert_cmpint (getrlimit (RLIMIT_FSIZE, &limit), ==, 0);
  tiny = limit;
  tiny.rlim_cur = (rlim_t) st.st_size;
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &tiny), ==, 0);

  g_assert_true (heartbeat_monitor_start_run (f->monitor, "job", 0, &error));
  finish_run (f->monitor, "fresh", FALSE, 1, "two");
  g_assert_false (wait_saved (f->monitor, &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_NOT_SAVED);
  g_clear_error (&error);
  now = runs_of (f->monitor, "job");
  g_assert_true (g_variant_equal (saved, now));
  g_clear_pointer (&now, g_variant_unref);
  now = runs_of (f->monitor, "fresh");
  g_assert_cmpuint (g_variant_n_children (now), ==, 0);

  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &limit), ==, 0);
  signal (SIGXFSZ, SIG_DFL);
  g_assert_true (wait_saved (f->monitor, &error));
  g_assert_no_error (error);

  /* room again: the next runs are saved whole */
  finish_run (f->monitor, "job", TRUE, 0, "three");
  finish_run (f->monitor, "fresh", TRUE, 0, "four");
  g_assert_true (wait_saved (f->monitor, &error));
  g_assert_no_error (error);
  {
    g_autoptr(HbState) state2 = NULL;
    g_autoptr(HeartbeatMonitor) monitor2 = reload (f, &state2);

    assert_same_runs (f->monitor, monitor2, "job");
    assert_same_runs (f->monitor, monitor2, "fresh");
    g_clear_pointer (&now, g_variant_unref);
    now = runs_of (monitor2, "job");
    g_assert_cmpuint (g_variant_n_children (now), ==, 2);
  }
}

/* The number of records the store holds for @id. */
static gsize
saved_run_count (Fixture *f, const char *id)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  gsize n = 0;

  g_assert_cmpint (sqlite3_open (f->db_path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT count(*) FROM runs WHERE id = ?1", -1, &stmt, NULL), ==, SQLITE_OK);
  sqlite3_bind_text (stmt, 1, id, -1, SQLITE_STATIC);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  n = (gsize) sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  return n;
}

/* Records that passed HEARTBEAT_RUNS_MAX_AGE while the daemon was down are
 * trimmed at the restore, in the store too (the newest stays). */
static void
test_runs_trimmed_by_age (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  runs_clocks (f->monitor);
  clock_r0 = g_get_real_time () - HEARTBEAT_RUNS_MAX_AGE - 2 * 24 * HOUR_US;
  register_agent (f->monitor, "monthly", NULL);
  finish_run (f->monitor, "monthly", TRUE, 0, "old");
  runs_advance (f->monitor, 24 * HOUR_US);
  finish_run (f->monitor, "monthly", TRUE, 0, "newer, old too");
  runs_advance (f->monitor, 24 * HOUR_US);
  finish_run (f->monitor, "monthly", TRUE, 0, "newest, 31 days old");
  g_assert_true (wait_saved (f->monitor, &error));
  g_assert_cmpuint (saved_run_count (f, "monthly"), ==, 3);

  for (guint life = 0; life < 2; life++)
    {
      g_autoptr(HbState) state2 = NULL;
      g_autoptr(HeartbeatMonitor) monitor2 = reload (f, &state2);
      g_autoptr(GVariant) runs = runs_of (monitor2, "monthly");
      g_autoptr(GVariant) run = NULL;
      const char *output = NULL;

      g_assert_cmpuint (g_variant_n_children (runs), ==, 1);
      run = g_variant_get_child_value (runs, 0);
      g_assert_true (g_variant_lookup (run, "output", "&s", &output));
      g_assert_cmpstr (output, ==, "newest, 31 days old");
      /* written at the load, without a change: as after kill -9 */
      g_assert_cmpuint (saved_run_count (f, "monthly"), ==, 1);
    }
}

/* The lowest and highest record numbers the store holds for @id. */
static void
saved_run_seqs (Fixture *f, const char *id, gint64 *min, gint64 *max)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;

  g_assert_cmpint (sqlite3_open (f->db_path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT min(seq), max(seq) FROM runs WHERE id = ?1", -1, &stmt, NULL), ==, SQLITE_OK);
  sqlite3_bind_text (stmt, 1, id, -1, SQLITE_STATIC);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  *min = sqlite3_column_int64 (stmt, 0);
  *max = sqlite3_column_int64 (stmt, 1);
  sqlite3_finalize (stmt);
  sqlite3_close (db);
}

/* A run's start, its end and a trim write only the records that changed:
 * the others keep their rows (their numbers), before and after a restart;
 * the records come back in order. */
static void
test_runs_written_incrementally (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  gint64 min = 0, max = 0;

  register_agent (f->monitor, "job", NULL);
  for (guint i = 0; i < HEARTBEAT_RUNS_MAX + 5; i++)
    {
      g_autofree char *output = g_strdup_printf ("run %u ✓", i);

      finish_run (f->monitor, "job", TRUE, 0, output);
      g_assert_true (wait_saved (f->monitor, &error));
    }
  g_assert_cmpuint (saved_run_count (f, "job"), ==, HEARTBEAT_RUNS_MAX);
  saved_run_seqs (f, "job", &min, &max);
  g_assert_cmpint (min, ==, 6);
  g_assert_cmpint (max, ==, 25);

  /* a start adds a record (the oldest goes); its end replaces it */
  g_assert_true (heartbeat_monitor_start_run (f->monitor, "job", 0, &error));
  g_assert_true (wait_saved (f->monitor, &error));
  saved_run_seqs (f, "job", &min, &max);
  g_assert_cmpint (min, ==, 7);
  g_assert_cmpint (max, ==, 26);
  finish_run (f->monitor, "job", FALSE, 2, "the end");
  g_assert_true (wait_saved (f->monitor, &error));
  saved_run_seqs (f, "job", &min, &max);
  g_assert_cmpint (min, ==, 7);
  g_assert_cmpint (max, ==, 27);
  g_assert_cmpuint (saved_run_count (f, "job"), ==, HEARTBEAT_RUNS_MAX);

  /* a second life knows what is saved: the same again */
  {
    g_autoptr(HbState) state2 = NULL;
    g_autoptr(HeartbeatMonitor) monitor2 = reload (f, &state2);
    g_autoptr(HbState) state3 = NULL;
    g_autoptr(HeartbeatMonitor) monitor3 = NULL;

    assert_same_runs (f->monitor, monitor2, "job");
    finish_run (monitor2, "job", TRUE, 0, "after the restart");
    g_assert_true (wait_saved (monitor2, &error));
    saved_run_seqs (f, "job", &min, &max);
    g_assert_cmpint (min, ==, 8);
    g_assert_cmpint (max, ==, 28);
    monitor3 = reload (f, &state3);
    assert_same_runs (monitor2, monitor3, "job");
  }
}


/* --- the time nobody watched, pauses and tags (schema 4) --- */

static gint64
gap_realtime (void)
{
  return test_real_clock (NULL);
}

/* A daemon's life on the test's clocks: a monitor and its state on the
 * fixture's directory, loaded. */
static HeartbeatMonitor *
gap_life (Fixture *f, HbState **state_out)
{
  HeartbeatMonitor *monitor = heartbeat_monitor_new ();
  g_autoptr(GError) error = NULL;

  heartbeat_monitor_set_clock (monitor, test_mono_clock, NULL);
  heartbeat_monitor_set_realtime_clock (monitor, test_real_clock, NULL);
  *state_out = hb_state_new (monitor, f->dir);
  g_assert_true (hb_state_load (*state_out, &error));
  g_assert_no_error (error);
  return monitor;
}

static gint64
meta_value (Fixture *f, const char *key)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  gint64 value = -1;

  g_assert_cmpint (sqlite3_open (f->db_path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT value FROM meta WHERE key = ?1", -1, &stmt, NULL), ==, SQLITE_OK);
  sqlite3_bind_text (stmt, 1, key, -1, SQLITE_STATIC);
  if (sqlite3_step (stmt) == SQLITE_ROW)
    value = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  return value;
}

/* How many entries the saved history of @id has. */
static gsize
saved_history_length (Fixture *f, const char *id)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  gsize n = 0;

  g_assert_cmpint (sqlite3_open (f->db_path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT history FROM agents WHERE id = ?1", -1, &stmt, NULL), ==, SQLITE_OK);
  sqlite3_bind_text (stmt, 1, id, -1, SQLITE_STATIC);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  {
    g_autoptr(GBytes) bytes = g_bytes_new (sqlite3_column_blob (stmt, 0), (gsize) sqlite3_column_bytes (stmt, 0));
    g_autoptr(GVariant) history = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE ("a(ts)"), bytes, FALSE));

    n = g_variant_n_children (history);
  }
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  return n;
}

/* The last @n entries of @id's history, printed: "[(T, 'state'), …]"
 * with T in seconds after clock_r0. */
static char *
history_tail (HeartbeatMonitor *monitor, const char *id, gsize n)
{
  g_autoptr(GVariant) history = g_variant_ref_sink (heartbeat_agent_get_history (heartbeat_monitor_lookup (monitor, id)));
  gsize total = g_variant_n_children (history);
  GString *out = g_string_new ("[");
  g_autofree char *text = g_variant_print (history, FALSE);

  g_test_message ("%s: %s (r0 %" G_GINT64_FORMAT ")", id, text, clock_r0);
  g_assert_cmpuint (total, >=, n);
  for (gsize i = total - n; i < total; i++)
    {
      guint64 at;
      const char *state;

      g_variant_get_child (history, i, "(t&s)", &at, &state);
      g_string_append_printf (out, "%s(%" G_GINT64_FORMAT ", '%s')", i > total - n ? ", " : "",
                              ((gint64) at - clock_r0) / G_USEC_PER_SEC, state);
    }
  g_string_append_c (out, ']');
  return g_string_free (out, FALSE);
}

/* A restart marks the time nobody watched "unmonitored" in every agent's
 * history, from the last time the daemon was known alive: after a kill -9
 * its last note (at its start, then every alive interval) or the newest
 * activity it saved; after a clean stop, the stop. */
static void
test_unmonitored_gap (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  HeartbeatAgentOptions options = { .stale_after_usec = 2 * HOUR_US, .timeout_after_usec = 10 * HOUR_US };
  HbState *state = NULL;
  HeartbeatMonitor *monitor;
  g_autofree char *tail = NULL;
  gint64 until;

  clock_t0 = clock_now = 1000 * G_USEC_PER_SEC;
  clock_r0 = g_get_real_time () - 10 * HOUR_US;

  /* life 1, at r0: "a" registered at +10 s, beats at +20 s (not saved
   * yet: beats are lazy), then kill -9 at +40 s (no flush) */
  monitor = gap_life (f, &state);
  g_assert_cmpint (meta_value (f, "alive-at"), ==, clock_r0);
  clock_now += 10 * G_USEC_PER_SEC;
  register_agent (monitor, "a", &options);
  g_assert_true (wait_saved (monitor, &error));
  clock_now += 10 * G_USEC_PER_SEC;
  g_assert_true (heartbeat_monitor_beat (monitor, "a", NULL, &error));
  clock_now += 20 * G_USEC_PER_SEC;
  g_clear_object (&state);
  g_clear_object (&monitor);

  /* life 2, at +600 s: unmonitored from the registration, the last time
   * the database knew the daemon alive */
  clock_now = clock_t0 + 600 * G_USEC_PER_SEC;
  monitor = gap_life (f, &state);
  tail = history_tail (monitor, "a", 3);
  g_assert_cmpstr (tail, ==, "[(10, 'healthy'), (10, 'unmonitored'), (600, 'healthy')]");
  g_clear_pointer (&tail, g_free);
  g_assert_cmpint (meta_value (f, "alive-at"), ==, gap_realtime ());

  /* the start did not write the agents again (that would make a large
   * state slow to start): their rows are written in the background */
  g_assert_cmpuint (saved_history_length (f, "a"), ==, 1);

  /* it notes that it is alive every interval (here a second), without a
   * change of any agent; the rows are written again meanwhile; then
   * kill -9 */
  clock_now += 30 * G_USEC_PER_SEC;
  hb_state_set_alive_interval (state, G_USEC_PER_SEC);
  until = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (meta_value (f, "alive-at") != clock_r0 + 630 * G_USEC_PER_SEC)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, until);
      g_main_context_iteration (NULL, TRUE);
    }
  g_assert_cmpuint (saved_history_length (f, "a"), ==, 3);
  g_clear_object (&state);
  g_clear_object (&monitor);

  /* life 3, at +700 s: unmonitored from that note; then a clean stop at
   * +760 s */
  clock_now = clock_t0 + 700 * G_USEC_PER_SEC;
  monitor = gap_life (f, &state);
  tail = history_tail (monitor, "a", 2);
  g_assert_cmpstr (tail, ==, "[(630, 'unmonitored'), (700, 'healthy')]");
  g_clear_pointer (&tail, g_free);
  clock_now += 60 * G_USEC_PER_SEC;
  g_assert_true (hb_state_flush (state, &error));
  g_assert_no_error (error);
  g_assert_cmpint (meta_value (f, "alive-at"), ==, clock_r0 + 760 * G_USEC_PER_SEC);
  g_clear_object (&state);
  g_clear_object (&monitor);

  /* life 4, at +2000 s: unmonitored from the clean stop; each gap was
   * saved with the start that found it */
  clock_now = clock_t0 + 2000 * G_USEC_PER_SEC;
  monitor = gap_life (f, &state);
  tail = history_tail (monitor, "a", 7);
  g_assert_cmpstr (tail, ==, "[(10, 'healthy'), (10, 'unmonitored'), (600, 'healthy'), (630, 'unmonitored'),"
                             " (700, 'healthy'), (760, 'unmonitored'), (2000, 'healthy')]");
  g_clear_pointer (&tail, g_free);
  g_assert_true (hb_state_flush (state, &error));
  g_clear_object (&state);
  g_clear_object (&monitor);

  /* life 5, the wall clock set back before that stop: since when nobody
   * watched is not known, nothing is marked */
  clock_now = clock_t0 + 1500 * G_USEC_PER_SEC;
  monitor = gap_life (f, &state);
  tail = history_tail (monitor, "a", 2);
  g_assert_cmpstr (tail, ==, "[(760, 'unmonitored'), (2000, 'healthy')]");
  g_clear_object (&state);
  g_clear_object (&monitor);
}

/* An agent's pause (when, why, by whom) and its tags are saved at once
 * and come back after a kill -9 (no flush): still paused, still silent;
 * a resume is saved the same way. */
static void
test_pause_and_tags_round_trip (Fixture *f, gconstpointer data)
{
  const char *tags[] = { "team:ops", "prod", "db.1", NULL };
  HeartbeatAgentOptions options = {
    .stale_after_usec = 10 * G_USEC_PER_SEC, .timeout_after_usec = 10 * HOUR_US, .owner_uid = 1000, .tags = tags,
  };
  HeartbeatAgentOptions plain = { .stale_after_usec = 10 * G_USEC_PER_SEC, .timeout_after_usec = 10 * HOUR_US };
  g_autoptr(GError) error = NULL;
  HbState *state = NULL;
  HeartbeatMonitor *monitor;
  HeartbeatAgent *agent;
  gint64 paused_at;
  guint stale = 0;

  clock_t0 = clock_now = 1000 * G_USEC_PER_SEC;
  clock_r0 = g_get_real_time () - 10 * HOUR_US;

  monitor = gap_life (f, &state);
  register_agent (monitor, "db", &options);
  register_agent (monitor, "plain", &plain);
  clock_now += 5 * G_USEC_PER_SEC;
  g_assert_true (heartbeat_monitor_pause (monitor, "db", "disk swap, ticket 4711", 1000, &error));
  g_assert_no_error (error);
  paused_at = gap_realtime ();
  g_assert_true (wait_saved (monitor, &error));
  g_assert_no_error (error);
  g_clear_object (&state);
  g_clear_object (&monitor);

  /* an hour later, far past their stale threshold (a kill -9: each
   * gets its threshold from the restart) */
  clock_now += HOUR_US;
  monitor = gap_life (f, &state);
  g_signal_connect_swapped (monitor, "agent-stale", G_CALLBACK (g_atomic_int_inc), &stale);
  agent = heartbeat_monitor_lookup (monitor, "db");
  g_assert_nonnull (agent);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_PAUSED);
  g_assert_cmpint (heartbeat_agent_get_paused_at (agent), ==, paused_at);
  g_assert_cmpstr (heartbeat_agent_get_paused_reason (agent), ==, "disk swap, ticket 4711");
  g_assert_cmpuint (heartbeat_agent_get_paused_by (agent), ==, 1000);
  g_assert_cmpstrv (heartbeat_agent_get_tags (agent), ((const char *[]) { "db.1", "prod", "team:ops", NULL }));
  agent = heartbeat_monitor_lookup (monitor, "plain");
  g_assert_cmpint (heartbeat_agent_get_paused_at (agent), ==, 0);
  g_assert_cmpstrv (heartbeat_agent_get_tags (agent), ((const char *[]) { NULL }));
  /* past both thresholds from the restart */
  heartbeat_monitor_run_checks (monitor, clock_now + 20 * G_USEC_PER_SEC);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_STALE);
  g_assert_cmpint (heartbeat_agent_get_state (heartbeat_monitor_lookup (monitor, "db")), ==,
                   HEARTBEAT_AGENT_STATE_PAUSED);
  g_assert_cmpuint (stale, ==, 1);   /* "plain" only */

  /* resumed: saved at once, and so it stays after the next kill -9 */
  g_assert_true (heartbeat_monitor_resume (monitor, "db", &error));
  g_assert_no_error (error);
  g_assert_true (wait_saved (monitor, &error));
  g_clear_object (&state);
  g_clear_object (&monitor);
  monitor = gap_life (f, &state);
  agent = heartbeat_monitor_lookup (monitor, "db");
  g_assert_cmpint (heartbeat_agent_get_state (agent), !=, HEARTBEAT_AGENT_STATE_PAUSED);
  g_assert_cmpint (heartbeat_agent_get_paused_at (agent), ==, 0);
  g_assert_null (heartbeat_agent_get_paused_reason (agent));
  g_assert_cmpstrv (heartbeat_agent_get_tags (agent), ((const char *[]) { "db.1", "prod", "team:ops", NULL }));
  g_clear_object (&state);
  g_clear_object (&monitor);
}

/* A database of schema 3 (before pauses and tags) is upgraded in place:
 * its agents stay, not paused and without tags, and then keep both. */
static void
test_schema3_upgraded (Fixture *f, gconstpointer data)
{
  const char *tags[] = { "nightly", NULL };
  HeartbeatAgentOptions options = { .tags = tags };
  g_autoptr(GError) error = NULL;
  g_autoptr(HbState) state2 = NULL;
  g_autoptr(HeartbeatMonitor) monitor2 = NULL;
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  HeartbeatAgent *agent;

  g_assert_cmpint (sqlite3_open (f->db_path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db,
                                 "CREATE TABLE agents (id TEXT PRIMARY KEY NOT NULL,"
                                 "  task_id TEXT, state TEXT NOT NULL, status TEXT,"
                                 "  owner_uid INTEGER NOT NULL, pid INTEGER NOT NULL, bound_to TEXT,"
                                 "  declared INTEGER NOT NULL, stale_after INTEGER NOT NULL,"
                                 "  timeout_after INTEGER NOT NULL, started_at INTEGER NOT NULL,"
                                 "  metadata BLOB, history BLOB) WITHOUT ROWID;"
                                 "CREATE TABLE activity (id TEXT PRIMARY KEY NOT NULL,"
                                 "  last_activity_at INTEGER NOT NULL, beats INTEGER NOT NULL) WITHOUT ROWID;"
                                 "CREATE TABLE runs (id TEXT NOT NULL, seq INTEGER NOT NULL, record BLOB NOT NULL,"
                                 "  PRIMARY KEY (id, seq));"
                                 "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER) WITHOUT ROWID;"
                                 "INSERT INTO meta VALUES ('clean', 1);"
                                 "INSERT INTO agents (id, task_id, state, status, owner_uid, pid, declared, stale_after,"
                                 " timeout_after, started_at) VALUES ('old', 'nightly', 'error', 'error', 0, 0, 0, 0, 0, 1);"
                                 "PRAGMA user_version=3;",
                                 NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  g_assert_true (hb_state_load (f->state, &error));
  g_assert_no_error (error);
  agent = heartbeat_monitor_lookup (f->monitor, "old");
  g_assert_nonnull (agent);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_ERROR);
  g_assert_cmpint (heartbeat_agent_get_paused_at (agent), ==, 0);
  g_assert_cmpstrv (heartbeat_agent_get_tags (agent), ((const char *[]) { NULL }));
  g_assert_cmpint (sqlite3_open (f->db_path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  g_assert_cmpint (sqlite3_column_int (stmt, 0), ==, 4);
  sqlite3_finalize (stmt);
  sqlite3_close (db);

  /* then it keeps a pause and tags */
  register_agent (f->monitor, "old", &options);
  g_assert_true (heartbeat_monitor_pause (f->monitor, "old", NULL, 0, &error));
  g_assert_true (wait_saved (f->monitor, &error));
  g_assert_no_error (error);
  monitor2 = reload (f, &state2);
  agent = heartbeat_monitor_lookup (monitor2, "old");
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_PAUSED);
  g_assert_cmpint (heartbeat_agent_get_paused_at (agent), >, 0);
  g_assert_null (heartbeat_agent_get_paused_reason (agent));
  g_assert_cmpstrv (heartbeat_agent_get_tags (agent), ((const char *[]) { "nightly", NULL }));
}

/* Saved tags that are damaged, or that the monitor refuses, are lost with
 * a warning (and written again without them); their agent is kept. */
static void
test_bad_tags_dropped (Fixture *f, gconstpointer data)
{
  g_autoptr(GVariant) refused = g_variant_ref_sink (g_variant_new_parsed ("['ok', 'no/slash']"));
  g_autofree char *hex = NULL;
  g_autofree char *sql = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(HbState) state2 = NULL;
  g_autoptr(HeartbeatMonitor) monitor2 = NULL;
  g_autoptr(HbState) state3 = NULL;
  g_autoptr(HeartbeatMonitor) monitor3 = NULL;
  const guint8 *bytes = g_variant_get_data (refused);
  gsize size = g_variant_get_size (refused);
  sqlite3 *db = NULL;

  register_agent (f->monitor, "refused", NULL);
  register_agent (f->monitor, "damaged", NULL);
  g_assert_true (wait_saved (f->monitor, &error));
  hex = g_malloc0 (2 * size + 1);
  for (gsize i = 0; i < size; i++)
    g_snprintf (hex + 2 * i, 3, "%02x", bytes[i]);
  sql = g_strdup_printf ("UPDATE agents SET tags = x'%s' WHERE id = 'refused';"
                         "UPDATE agents SET tags = x'6f6b' WHERE id = 'damaged';", hex);
  g_assert_cmpint (sqlite3_open (f->db_path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  monitor2 = reload (f, &state2);
  assert_warnings ((const char *[]) { "*agent “damaged”: its tags cannot be restored (they are malformed); dropped",
                                      "*agent “refused”: its tags cannot be restored (*); dropped", NULL });
  g_assert_cmpstrv (heartbeat_agent_get_tags (heartbeat_monitor_lookup (monitor2, "refused")),
                    ((const char *[]) { NULL }));
  g_assert_cmpstrv (heartbeat_agent_get_tags (heartbeat_monitor_lookup (monitor2, "damaged")),
                    ((const char *[]) { NULL }));
  g_assert_true (wait_saved (monitor2, &error));
  g_assert_no_error (error);

  /* written again without them: no second warning */
  monitor3 = reload (f, &state3);
  assert_warnings ((const char *[]) { NULL });
  g_assert_nonnull (heartbeat_monitor_lookup (monitor3, "refused"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  warnings = g_ptr_array_new_with_free_func (g_free);
  g_log_set_writer_func (capture_writer, NULL, NULL);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
/* the test loads the state itself */
#define ADD_UNLOADED(path, func) g_test_add (path, Fixture, "unloaded", fixture_setup, func, fixture_teardown)
  ADD ("/state/round-trip", test_round_trip);
  ADD ("/state/group-commit-and-lazy-beats", test_group_commit_and_lazy_beats);
  ADD ("/state/no-false-stale-after-crash", test_no_false_stale_after_crash);
  ADD ("/state/overdue-after-restart", test_overdue_after_restart);
  ADD ("/state/corrupt-json-moved-aside", test_corrupt_moved_aside);
  ADD_UNLOADED ("/state/corrupt-database-moved-aside", test_corrupt_database_moved_aside);
  ADD_UNLOADED ("/state/json-imported-once", test_json_imported_once);
  ADD_UNLOADED ("/state/bad-json-entry-skipped", test_bad_entry_skipped);
  ADD_UNLOADED ("/state/schema-1-upgraded", test_schema1_upgraded);
  ADD ("/state/time-before-epoch", test_time_before_epoch);
  ADD ("/state/bad-row-skipped", test_bad_row_skipped);
  ADD ("/state/write-failure-is-a-problem", test_write_failure_is_a_problem);
  ADD ("/state/lock", test_lock);
  ADD ("/state/deeply-nested", test_deeply_nested);
  ADD ("/state/large-state-restored", test_large_state_restored);
  ADD ("/state/runs-round-trip", test_runs_round_trip);
  ADD_UNLOADED ("/state/schema-2-upgraded", test_schema2_upgraded);
  ADD ("/state/bad-runs-dropped", test_bad_runs_dropped);
  ADD ("/state/run-not-saved-taken-back", test_run_not_saved_taken_back);
  ADD ("/state/runs-trimmed-by-age", test_runs_trimmed_by_age);
  ADD ("/state/runs-written-incrementally", test_runs_written_incrementally);
  ADD_UNLOADED ("/state/unmonitored-gap", test_unmonitored_gap);
  ADD_UNLOADED ("/state/pause-and-tags-round-trip", test_pause_and_tags_round_trip);
  ADD_UNLOADED ("/state/schema-3-upgraded", test_schema3_upgraded);
  ADD ("/state/bad-tags-dropped", test_bad_tags_dropped);

  return g_test_run ();
}
