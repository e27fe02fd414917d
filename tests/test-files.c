/* test-files.c: heartbeat files, each state of 001_2d60be7041a00626.txt
 * produced from a real file
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hb-files.h"
#include "heartbeat-client.h"

#define WAIT_MS 5000

static void
test_parse_valid (void)
{
  g_auto(HbHeartbeatFile) file = { 0 };
  g_autoptr(GError) error = NULL;
  const char *text = "{\"process_key\": \"my_server\", \"pid\": 12345,"
                     " \"timestamp\": \"2026-02-05T06:17:29.601049+00:00\","
                     " \"status\": \"running\", \"iteration\": 42}";

  g_assert_true (hb_heartbeat_file_parse (text, strlen (text), &file, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (file.process_key, ==, "my_server");
  g_assert_cmpint (file.pid, ==, 12345);
  g_assert_cmpint (file.timestamp_usec, ==, G_GINT64_CONSTANT (1770272249601049));
  g_assert_cmpstr (file.status, ==, "running");
  g_assert_cmpint (file.iteration, ==, 42);
}

static void
test_parse_invalid (void)
{
  static const char *cases[] = {
    "",
    "not json",
    "[1, 2]",
    "{\"pid\": 1, \"timestamp\": \"2026-02-05T06:17:29Z\", \"status\": \"running\"}",
    "{\"process_key\": \"k\", \"pid\": -4, \"timestamp\": \"2026-02-05T06:17:29Z\", \"status\": \"running\"}",
    "{\"process_key\": \"k\", \"pid\": \"12\", \"timestamp\": \"2026-02-05T06:17:29Z\", \"status\": \"running\"}",
    "{\"process_key\": \"k\", \"pid\": 12, \"timestamp\": \"yesterday\", \"status\": \"running\"}",
    "{\"process_key\": \"k\", \"pid\": 12, \"timestamp\": \"2026-02-05T06:17:29\", \"status\": \"running\"}",
    "{\"process_key\": \"k\", \"pid\": 12, \"timestamp\": \"2026-02-05T06:17:29Z\"}",
    "{\"process_key\": \"k\", \"pid\": 12, \"timestamp\": \"2026-02-05T06:17:29Z\", \"status\": \"\"}",
    "{\"process_key\": \"k\", \"pid\": 12, \"timestamp\": \"2026-02-05T06:17:29Z\", \"status\": \"running\", \"iteration\": 1.5}",
    "{\"process_key\": \"k\", \"pid\": 99999999999, \"timestamp\": \"2026-02-05T06:17:29Z\", \"status\": \"running\"}",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_auto(HbHeartbeatFile) file = { 0 };
      g_autoptr(GError) error = NULL;

      g_test_message ("%s", cases[i]);
      g_assert_false (hb_heartbeat_file_parse (cases[i], strlen (cases[i]), &file, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
      g_assert_null (file.process_key);
    }

  {
    g_autofree char *big = g_strnfill (HB_HEARTBEAT_FILE_MAX_SIZE + 1, ' ');
    g_auto(HbHeartbeatFile) file = { 0 };
    g_autoptr(GError) error = NULL;

    g_assert_false (hb_heartbeat_file_parse (big, strlen (big), &file, &error));
    g_assert_nonnull (strstr (error->message, "larger"));
  }
}

/* What the client library writes, the daemon reads. */
static void
test_writer_round_trip (void)
{
  g_autofree char *dir = g_dir_make_tmp ("hb-writer-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "w.json", NULL);
  g_autofree char *contents = NULL;
  g_auto(HbHeartbeatFile) file = { 0 };
  g_autoptr(GError) error = NULL;
  gint64 before = g_get_real_time ();
  gsize length;

  g_assert_true (heartbeat_write_file (path, "wörker \"1\"", 0, "error", 9, &error));
  g_assert_no_error (error);
  g_assert_true (g_file_get_contents (path, &contents, &length, &error));
  g_assert_true (hb_heartbeat_file_parse (contents, length, &file, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (file.process_key, ==, "wörker \"1\"");
  g_assert_cmpint (file.pid, ==, getpid ());
  g_assert_cmpstr (file.status, ==, "error");
  g_assert_cmpint (file.iteration, ==, 9);
  g_assert_cmpint (file.timestamp_usec, >=, before);
  g_assert_cmpint (file.timestamp_usec, <=, g_get_real_time ());

  g_assert_true (heartbeat_remove_file (path, &error));
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  g_assert_true (heartbeat_remove_file (path, &error));   /* already gone: fine */
  g_rmdir (dir);
}

/* ------------------------------------------------------------------ */

typedef struct {
  char             *dir;
  char             *path;
  HeartbeatMonitor *monitor;
  HbFiles          *files;
  GMainLoop        *loop;
  HeartbeatAgentState waiting_for;
  gboolean          timed_out;
} Fixture;

/* Warnings about bad files are expected here; they must not abort. */
static GLogWriterOutput
quiet_writer (GLogLevelFlags   level,
              const GLogField *fields,
              gsize            n_fields,
              gpointer         user_data)
{
  if (level & G_LOG_LEVEL_WARNING)
    return G_LOG_WRITER_HANDLED;
  return g_log_writer_default (level, fields, n_fields, user_data);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  HeartbeatAgentOptions options = { .stale_after_usec = 10 * G_USEC_PER_SEC,
                                    .timeout_after_usec = HEARTBEAT_THRESHOLD_MAX };

  f->dir = g_dir_make_tmp ("hb-files-XXXXXX", &error);
  g_assert_no_error (error);
  f->path = g_build_filename (f->dir, "worker.json", NULL);
  f->monitor = heartbeat_monitor_new ();
  g_assert_nonnull (heartbeat_monitor_declare (f->monitor, "worker", &options, &error));
  heartbeat_monitor_start (f->monitor);
  f->files = hb_files_new (f->monitor);
  f->loop = g_main_loop_new (NULL, FALSE);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->files);
  heartbeat_monitor_stop (f->monitor);
  g_clear_object (&f->monitor);
  g_main_loop_unref (f->loop);
  g_unlink (f->path);
  g_rmdir (f->dir);
  g_free (f->path);
  g_free (f->dir);
}

static void
on_state_changed (HeartbeatMonitor *monitor, HeartbeatAgent *agent,
                  HeartbeatAgentState old_state, HeartbeatAgentState new_state, Fixture *f)
{
  if (new_state == f->waiting_for)
    g_main_loop_quit (f->loop);
}

static gboolean
on_wait_timeout (gpointer user_data)
{
  Fixture *f = user_data;

  f->timed_out = TRUE;
  g_main_loop_quit (f->loop);
  return G_SOURCE_REMOVE;
}

static HeartbeatAgentState
state (Fixture *f)
{
  return heartbeat_agent_get_state (heartbeat_monitor_lookup (f->monitor, "worker"));
}

/* Waits, bounded, until the worker is in @wanted. */
static void
wait_for_state (Fixture *f, HeartbeatAgentState wanted)
{
  gulong handler;
  guint timeout;

  if (state (f) == wanted)
    return;
  f->waiting_for = wanted;
  f->timed_out = FALSE;
  handler = g_signal_connect (f->monitor, "agent-state-changed", G_CALLBACK (on_state_changed), f);
  timeout = g_timeout_add (WAIT_MS, on_wait_timeout, f);
  g_main_loop_run (f->loop);
  g_signal_handler_disconnect (f->monitor, handler);
  if (!f->timed_out)
    g_source_remove (timeout);
  g_assert_false (f->timed_out);
  g_assert_cmpint (state (f), ==, wanted);
}

/* Writes the file the way HeartbeatWriter does: atomically. */
static void
write_heartbeat (Fixture *f, gint32 pid, gint64 age_usec, const char *status, gint64 iteration)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autoptr(GDateTime) then = g_date_time_add (now, -age_usec);
  g_autofree char *stamp = g_date_time_format_iso8601 (then);
  g_autofree char *text = g_strdup_printf ("{\"process_key\": \"worker\", \"pid\": %d, \"timestamp\": \"%s\","
                                           " \"status\": \"%s\", \"iteration\": %" G_GINT64_FORMAT "}",
                                           pid, stamp, status, iteration);
  g_autoptr(GError) error = NULL;

  g_file_set_contents (f->path, text, -1, &error);
  g_assert_no_error (error);
}

static GPid
spawn_sleeper (void)
{
  const char *argv[] = { "sleep", "60", NULL };
  g_autoptr(GError) error = NULL;
  GPid pid;

  g_spawn_async (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                 NULL, NULL, &pid, &error);
  g_assert_no_error (error);
  return pid;
}

static void
test_states_from_real_files (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  GPid child;
  int status;

  /* NO_HEARTBEAT: no file yet */
  g_assert_true (hb_files_watch (f->files, "worker", f->path, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (hb_files_get_n_watched (f->files), ==, 1);
  g_assert_cmpint (state (f), ==, HEARTBEAT_AGENT_STATE_NO_HEARTBEAT);

  /* HEALTHY */
  write_heartbeat (f, getpid (), 0, "running", 1);
  wait_for_state (f, HEARTBEAT_AGENT_STATE_HEALTHY);
  {
    GVariant *metadata = heartbeat_agent_get_metadata (heartbeat_monitor_lookup (f->monitor, "worker"));
    gint64 iteration = 0;

    g_assert_true (g_variant_lookup (metadata, "iteration", "x", &iteration));
    g_assert_cmpint (iteration, ==, 1);
  }

  /* TIMED_OUT: a timestamp older than the timeout (10 s) is stale at once */
  write_heartbeat (f, getpid (), 60 * G_USEC_PER_SEC, "running", 2);
  wait_for_state (f, HEARTBEAT_AGENT_STATE_STALE);

  /* ERROR_STATUS */
  write_heartbeat (f, getpid (), 0, "error", 3);
  wait_for_state (f, HEARTBEAT_AGENT_STATE_ERROR);

  /* NO_HEARTBEAT: corrupt, then back, then missing */
  g_file_set_contents (f->path, "{\"process_key\": ", -1, &error);
  g_assert_no_error (error);
  wait_for_state (f, HEARTBEAT_AGENT_STATE_NO_HEARTBEAT);
  write_heartbeat (f, getpid (), 0, "running", 4);
  wait_for_state (f, HEARTBEAT_AGENT_STATE_HEALTHY);
  g_assert_cmpint (g_unlink (f->path), ==, 0);
  wait_for_state (f, HEARTBEAT_AGENT_STATE_NO_HEARTBEAT);

  /* STALE_PID: a writer that is no longer running */
  child = spawn_sleeper ();
  kill (child, SIGKILL);
  g_assert_cmpint (waitpid (child, &status, 0), ==, child);
  write_heartbeat (f, child, 0, "running", 5);
  wait_for_state (f, HEARTBEAT_AGENT_STATE_GONE);

  /* ... and one that dies while we watch: gone at once, not at the next write */
  child = spawn_sleeper ();
  write_heartbeat (f, child, 0, "running", 6);
  wait_for_state (f, HEARTBEAT_AGENT_STATE_HEALTHY);
  kill (child, SIGKILL);
  wait_for_state (f, HEARTBEAT_AGENT_STATE_GONE);
  g_assert_cmpint (waitpid (child, &status, 0), ==, child);
}

static void
test_watch_rejects (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  g_assert_false (hb_files_watch (f->files, "worker", "relative.json", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (hb_files_watch (f->files, "nobody", f->path, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_cmpuint (hb_files_get_n_watched (f->files), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_log_set_writer_func (quiet_writer, NULL, NULL);

  g_test_add_func ("/files/parse/valid", test_parse_valid);
  g_test_add_func ("/files/parse/invalid", test_parse_invalid);
  g_test_add_func ("/files/writer-round-trip", test_writer_round_trip);
  g_test_add ("/files/states-from-real-files", Fixture, NULL, fixture_setup, test_states_from_real_files, fixture_teardown);
  g_test_add ("/files/watch-rejects", Fixture, NULL, fixture_setup, test_watch_rejects, fixture_teardown);
  return g_test_run ();
}
