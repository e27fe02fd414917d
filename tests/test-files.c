/* test-files.c: heartbeat files, each state of 001_2d60be7041a00626.txt
 * produced from a real file
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hb-files.h"
#include "hb-process-watch.h"
#include "heartbeat-client.h"

/* a bound that only turns a hang into a failure: never waited out when
 * all is well, so generous enough for a loaded machine */
#define WAIT_MS 30000

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

/* JSON's own escapes are read as JSON reads them; json-glib's octal
 * escapes and half surrogate pairs, which it turns into bytes that are not
 * UTF-8, are refused (found by fuzz-http: such a string reached
 * g_variant_new_string()). */
static void
test_parse_escapes (void)
{
  static const struct { const char *escaped; const char *status; } good[] = {
    { "a\\\\b\\\"c\\/", "a\\b\"c/" },
    { "\\u00e9t\\u00E9", "\u00e9t\u00e9" },
    { "\\ud83d\\ude00", "\U0001F600" },
  };
  static const char *bad[] = {
    "ok\\200", "\\x41", "\\q", "\\u12", "\\u12G4", "\\udc00x", "x\\ud800", "\\ud800\\n",
    "\\ud800\\u0041", "\\udc00\\ud800", "\\u0000",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autofree char *text = g_strdup_printf ("{\"process_key\": \"k\", \"pid\": 1, \"timestamp\": "
                                               "\"2026-02-05T06:17:29Z\", \"status\": \"%s\"}", good[i].escaped);
      g_auto(HbHeartbeatFile) file = { 0 };
      g_autoptr(GError) error = NULL;

      g_test_message ("%s", text);
      g_assert_true (hb_heartbeat_file_parse (text, strlen (text), &file, &error));
      g_assert_no_error (error);
      g_assert_cmpstr (file.status, ==, good[i].status);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *text = g_strdup_printf ("{\"process_key\": \"k\", \"pid\": 1, \"timestamp\": "
                                               "\"2026-02-05T06:17:29Z\", \"status\": \"%s\"}", bad[i]);
      g_auto(HbHeartbeatFile) file = { 0 };
      g_autoptr(GError) error = NULL;

      g_test_message ("%s", text);
      g_assert_false (hb_heartbeat_file_parse (text, strlen (text), &file, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
      g_assert_null (file.status);
    }
}

/* A parse error says where, never what: json-glib's own message quotes
 * the offending token, i.e. whatever file the path points at. */
#define MARKER "Xyzzy7qMarker"

static void
test_parse_error_hides_content (void)
{
  static const char *cases[] = {
    MARKER " is not JSON",
    "{\"process_key\":\n  " MARKER "}",
    "{\"" MARKER "\" 1}",
    ("\"" MARKER), /* clang: one element, not a missing comma */
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_auto(HbHeartbeatFile) file = { 0 };
      g_autoptr(GError) error = NULL;

      g_assert_false (hb_heartbeat_file_parse (cases[i], strlen (cases[i]), &file, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
      g_test_message ("%s", error->message);
      g_assert_true (g_str_has_prefix (error->message, "not JSON"));
      g_assert_null (strstr (error->message, MARKER));
      g_assert_null (strstr (error->message, "Xyzzy"));
    }

  {
    g_auto(HbHeartbeatFile) file = { 0 };
    g_autoptr(GError) error = NULL;

    g_assert_false (hb_heartbeat_file_parse (cases[1], strlen (cases[1]), &file, &error));
    /* where the scanner stopped: just after the token */
    g_assert_true (g_str_has_prefix (error->message, "not JSON (line 2, column "));
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

/* Every warning logged, one a line: what the daemon would put in the
 * journal about a bad file. */
static GString *logged;

/* Warnings about bad files are expected here; they must not abort. */
static GLogWriterOutput
quiet_writer (GLogLevelFlags   level,
              const GLogField *fields,
              gsize            n_fields,
              gpointer         user_data)
{
  if (level & G_LOG_LEVEL_WARNING)
    {
      for (gsize i = 0; i < n_fields; i++)
        if (strcmp (fields[i].key, "MESSAGE") == 0)
          {
            if (fields[i].length < 0)
              g_string_append (logged, fields[i].value);
            else
              g_string_append_len (logged, fields[i].value, fields[i].length);
            g_string_append_c (logged, '\n');
          }
      return G_LOG_WRITER_HANDLED;
    }
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
  g_string_truncate (logged, 0);
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

/* Without pidfd_open() the writer's pid is polled: a writer that dies
 * while nothing is written still makes its agent gone, and so does one
 * that was dead (a zombie, still found by kill()) when it wrote. */
static void
test_writer_exit_without_pidfd (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  GPid child;
  int status;

  hb_process_watch_set_force_poll (TRUE);
  g_assert_true (hb_files_watch (f->files, "worker", f->path, &error));
  g_assert_no_error (error);

  child = spawn_sleeper ();
  write_heartbeat (f, child, 0, "running", 1);
  wait_for_state (f, HEARTBEAT_AGENT_STATE_HEALTHY);
  kill (child, SIGKILL);
  wait_for_state (f, HEARTBEAT_AGENT_STATE_GONE);
  g_assert_nonnull (strstr (logged->str, "is not running"));

  /* a zombie writer */
  write_heartbeat (f, getpid (), 0, "running", 2);
  wait_for_state (f, HEARTBEAT_AGENT_STATE_HEALTHY);
  write_heartbeat (f, child, 0, "running", 3);
  wait_for_state (f, HEARTBEAT_AGENT_STATE_GONE);
  g_assert_cmpint (waitpid (child, &status, 0), ==, child);
  hb_process_watch_set_force_poll (FALSE);
}

/* ------------------------------------------------------------------ */
/* Hostile files: whatever is at the path, the main loop goes on, memory
 * stays flat and nothing of the file reaches the log. */

/* A read that blocks the main loop cannot be caught by a main-loop
 * timeout: an alarm turns a hang into a failure. */
static void
on_alarm (int signum)
{
  static const char message[] = "Bail out! a heartbeat-file read blocked the main loop\n";

  (void) !write (STDOUT_FILENO, message, sizeof message - 1);
  _exit (1);
}

static void
hang_guard_start (void)
{
  signal (SIGALRM, on_alarm);
  alarm (10);
}

static void
hang_guard_stop (void)
{
  alarm (0);
  signal (SIGALRM, SIG_DFL);
}

/* Resident set, now, from /proc/self/statm. */
static gsize
rss_bytes (void)
{
  g_autofree char *statm = NULL;
  unsigned long size = 0, resident = 0;

  g_assert_true (g_file_get_contents ("/proc/self/statm", &statm, NULL, NULL));
  g_assert_cmpint (sscanf (statm, "%lu %lu", &size, &resident), ==, 2);
  return (gsize) resident * (gsize) sysconf (_SC_PAGESIZE);
}

/* Peak resident set (VmHWM), which also sees memory taken and given back
 * within the read; 0 if the kernel does not say. */
static gsize
peak_rss_bytes (void)
{
  g_autofree char *status = NULL;
  const char *line;
  unsigned long kib = 0;

  g_assert_true (g_file_get_contents ("/proc/self/status", &status, NULL, NULL));
  line = strstr (status, "\nVmHWM:");
  if (line == NULL || sscanf (line, "\nVmHWM: %lu kB", &kib) != 1)
    return 0;
  return (gsize) kib * 1024;
}

#define RSS_GROWTH_MAX (16 * 1024 * 1024)

/* So that a regression that reads without bound fails (its allocation
 * does) instead of eating the machine: the address space may grow by
 * 256 MiB at most while the guard is on. */
typedef struct {
  struct rlimit saved;
  gboolean      set;
} MemoryGuard;

static void
memory_guard_start (MemoryGuard *guard)
{
  g_autofree char *statm = NULL;
  unsigned long size = 0;
  struct rlimit limit;

  guard->set = FALSE;
  g_assert_cmpint (getrlimit (RLIMIT_AS, &guard->saved), ==, 0);
  g_assert_true (g_file_get_contents ("/proc/self/statm", &statm, NULL, NULL));
  g_assert_cmpint (sscanf (statm, "%lu", &size), ==, 1);
  limit.rlim_cur = (rlim_t) size * (rlim_t) sysconf (_SC_PAGESIZE) + 256 * 1024 * 1024;
  limit.rlim_max = guard->saved.rlim_max;
  if (guard->saved.rlim_cur != RLIM_INFINITY && guard->saved.rlim_cur <= limit.rlim_cur)
    return;
  guard->set = setrlimit (RLIMIT_AS, &limit) == 0;
}

static void
memory_guard_stop (MemoryGuard *guard)
{
  if (guard->set)
    g_assert_cmpint (setrlimit (RLIMIT_AS, &guard->saved), ==, 0);
}

/* Watches the worker's file, which is hostile, and checks that it was
 * refused promptly, without memory growth, as @reason. */
static void
watch_hostile (Fixture *f, const char *reason)
{
  g_autoptr(GError) error = NULL;
  MemoryGuard guard;
  gsize rss_before, peak_before;
  gint64 start, elapsed;

  rss_before = rss_bytes ();
  peak_before = peak_rss_bytes ();
  memory_guard_start (&guard);
  hang_guard_start ();
  start = g_get_monotonic_time ();

  g_assert_true (hb_files_watch (f->files, "worker", f->path, &error));

  elapsed = g_get_monotonic_time () - start;
  hang_guard_stop ();
  memory_guard_stop (&guard);
  g_assert_no_error (error);

  g_test_message ("refused in %" G_GINT64_FORMAT " us; logged: %s", elapsed, logged->str);
  g_assert_cmpint (elapsed, <, G_USEC_PER_SEC);
  g_assert_cmpuint (rss_bytes (), <, rss_before + RSS_GROWTH_MAX);
  g_assert_cmpuint (peak_rss_bytes (), <, MAX (peak_before, rss_before) + RSS_GROWTH_MAX);
  g_assert_cmpint (state (f), ==, HEARTBEAT_AGENT_STATE_NO_HEARTBEAT);
  g_assert_nonnull (strstr (logged->str, reason));
}

/* A FIFO where the file should be: open(2) would wait for a writer. */
static void
test_hostile_fifo (Fixture *f, gconstpointer data)
{
  g_autofree char *fifo = g_build_filename (f->dir, "fifo.tmp", NULL);

  /* at start-up */
  g_assert_cmpint (mkfifo (f->path, 0600), ==, 0);
  watch_hostile (f, "not a regular file");

  /* and in place of a good file, seen through inotify */
  g_assert_cmpint (g_unlink (f->path), ==, 0);
  write_heartbeat (f, getpid (), 0, "running", 1);
  wait_for_state (f, HEARTBEAT_AGENT_STATE_HEALTHY);
  g_string_truncate (logged, 0);
  g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
  hang_guard_start ();
  g_assert_cmpint (g_rename (fifo, f->path), ==, 0);
  wait_for_state (f, HEARTBEAT_AGENT_STATE_NO_HEARTBEAT);
  hang_guard_stop ();
  g_assert_nonnull (strstr (logged->str, "not a regular file"));
}

/* A symlink to a device that never ends. */
static void
test_hostile_dev_zero (Fixture *f, gconstpointer data)
{
  if (!g_file_test ("/dev/zero", G_FILE_TEST_EXISTS))
    {
      g_test_skip ("no /dev/zero");
      return;
    }
  g_assert_cmpint (symlink ("/dev/zero", f->path), ==, 0);
  watch_hostile (f, "not a regular file");
}

/* A huge regular file (sparse: it takes no disk) is refused by its size,
 * without reading it. */
static void
test_hostile_huge (Fixture *f, gconstpointer data)
{
  int fd = open (f->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (ftruncate (fd, (off_t) 1 << 30), ==, 0);
  close (fd);
  watch_hostile (f, "larger than");
}

/* Nothing of a file that is not a heartbeat reaches the log. */
static void
test_hostile_not_json (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  g_file_set_contents (f->path, MARKER " root:x:0:0:root:/root:/bin/bash\n", -1, &error);
  g_assert_no_error (error);
  watch_hostile (f, "not JSON");
  g_assert_null (strstr (logged->str, MARKER));
  g_assert_null (strstr (logged->str, "root"));
}

/* A symlink to a regular file is a legitimate heartbeat file. */
static void
test_symlink_to_file (Fixture *f, gconstpointer data)
{
  g_autofree char *real = g_build_filename (f->dir, "real.json", NULL);
  g_autofree char *text = NULL;
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *stamp = g_date_time_format_iso8601 (now);
  g_autoptr(GError) error = NULL;

  text = g_strdup_printf ("{\"process_key\": \"worker\", \"pid\": %d, \"timestamp\": \"%s\","
                          " \"status\": \"running\", \"iteration\": 7}", getpid (), stamp);
  g_file_set_contents (real, text, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (symlink ("real.json", f->path), ==, 0);

  g_assert_true (hb_files_watch (f->files, "worker", f->path, &error));
  g_assert_no_error (error);
  wait_for_state (f, HEARTBEAT_AGENT_STATE_HEALTHY);
  g_assert_cmpstr (logged->str, ==, "");

  g_clear_object (&f->files);   /* before the file goes */
  g_unlink (real);
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
  logged = g_string_new (NULL);
  g_log_set_writer_func (quiet_writer, NULL, NULL);

  g_test_add_func ("/files/parse/valid", test_parse_valid);
  g_test_add_func ("/files/parse/invalid", test_parse_invalid);
  g_test_add_func ("/files/parse/escapes", test_parse_escapes);
  g_test_add_func ("/files/parse/error-hides-content", test_parse_error_hides_content);
  g_test_add_func ("/files/writer-round-trip", test_writer_round_trip);
  g_test_add ("/files/states-from-real-files", Fixture, NULL, fixture_setup, test_states_from_real_files, fixture_teardown);
  g_test_add ("/files/writer-exit-without-pidfd", Fixture, NULL, fixture_setup, test_writer_exit_without_pidfd, fixture_teardown);
  g_test_add ("/files/hostile/fifo", Fixture, NULL, fixture_setup, test_hostile_fifo, fixture_teardown);
  g_test_add ("/files/hostile/dev-zero", Fixture, NULL, fixture_setup, test_hostile_dev_zero, fixture_teardown);
  g_test_add ("/files/hostile/huge", Fixture, NULL, fixture_setup, test_hostile_huge, fixture_teardown);
  g_test_add ("/files/hostile/not-json", Fixture, NULL, fixture_setup, test_hostile_not_json, fixture_teardown);
  g_test_add ("/files/symlink-to-file", Fixture, NULL, fixture_setup, test_symlink_to_file, fixture_teardown);
  g_test_add ("/files/watch-rejects", Fixture, NULL, fixture_setup, test_watch_rejects, fixture_teardown);
  return g_test_run ();
}
