/* state-bench.c: what heartbeatd's persistence costs
 *
 * Starts heartbeatd itself (so it knows its pid and can time its start-up)
 * on a bus it is given, with a configuration of its own ([limits] off,
 * thresholds far away, no HTTP), and measures in three phases:
 *
 *   latency  Register and Unregister latency, one call at a time (each
 *            waits for its reply), with N agents already registered, for
 *            each N of --sizes; org.freedesktop.DBus.Peer.Ping to the
 *            daemon, timed the same way in the same run, is the reference
 *            (GDBus answers it in its worker thread: bus and transport
 *            alone). The N agents are registered beforehand with
 *            pipelined asynchronous calls (--in-flight).
 *   startup  with the largest N (--startup-size) in the store: SIGTERM,
 *            wait for the exit, start again on the same state directory
 *            and time spawn -> READY=1 on a NOTIFY_SOCKET the bench owns,
 *            and spawn -> GetStatus answering.
 *   writes   a fresh daemon and state directory, --agents agents beating
 *            at 1 Hz each, spread evenly over the second; after a warm-up,
 *            over --window seconds: bytes the daemon wrote (write_bytes of
 *            /proc/PID/io) per second, and fsync-type calls of all its
 *            threads per minute (strace attached for the window only).
 *
 *   state-bench --work-dir DIR [--daemon PATH] [OPTION…] ADDRESS
 *
 * ADDRESS is the bus the daemon is started on (its
 * DBUS_SESSION_BUS_ADDRESS). DIR holds the configuration, the state
 * directories, the notify socket and the daemon's logs. bench/state-bench.sh
 * makes both and runs this.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib-unix.h>
#include <glib/gstdio.h>

#define HB_NAME      "org.heartbeat.Monitor1"
#define HB_PATH      "/org/heartbeat/Monitor1"
#define HB_INTERFACE "org.heartbeat.Monitor1"

/* Generous: the JSON store takes seconds per call at large sizes. */
#define CALL_TIMEOUT_MS   (10 * 60 * 1000)
#define READY_TIMEOUT_S   600
#define STOP_TIMEOUT_S    600
#define TMPFS_MAGIC_VALUE 0x01021994
/* dbus-daemon's default max_replies_per_connection (tools/private-bus.sh
 * keeps it): more calls in flight are spread over more connections. */
#define REPLIES_PER_CONNECTION 128

#define BEFORE_TEXT \
  "before (JSON store, from issue 13): Register 1.2 ms @100, 9.4 ms @2,100, ~100 ms @6,500; " \
  "330 KB/s and 60 fsyncs/min with 1,000 agents at 1 Hz"
#define TARGETS_TEXT \
  "targets: Register p99 ≤ 5 ms at 100k and within 2x of its value at 100; ≤ 16 KB/s; " \
  "≤ 2 fsyncs/min; start-up ≤ 1 s with 100k"

/* The syscalls counted as syncs. */
static const char *const sync_calls[] = { "fsync", "fdatasync", "sync_file_range", "msync", "syncfs", "sync", NULL };
#define SYNC_TRACE "trace=fsync,fdatasync,sync_file_range,msync,syncfs,sync"

/* Not passed on to the daemon: it is not under a service manager here. */
static const char *const unset_variables[] = {
  "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
  "JOURNAL_STREAM", "STATE_DIRECTORY", NULL
};

typedef struct {
  /* options */
  char            *daemon_path;
  char            *work_dir;
  char            *address;
  char            *strace_path;
  GArray          *sizes;          /* guint, ascending */
  guint            calls;
  guint            in_flight;
  guint            beat_agents;
  guint            window_s;
  guint            warm_up_s;
  guint            startup_size;
  gboolean         progress;

  GDBusConnection *connection;
  GPtrArray       *connections;    /* for pipelining: [0] is connection */

  /* the notify socket, drained by its own thread so that sd_notify() in
   * the daemon never blocks on a full queue */
  char            *notify_path;
  int              notify_fd;
  int              notify_stop[2];
  GThread         *notify_thread;
  GMutex           notify_lock;
  gint64           ready_at;       /* monotonic µs of READY=1, 0 before */

  /* the running daemon */
  GSubprocess     *daemon;
  char            *daemon_pid_file;
  char            *daemon_log;
  pid_t            daemon_pid;
  gboolean         daemon_exited;
  int              daemon_status;
  guint            starts;

  /* the agents bench-0000000 … registered so far in the latency store */
  guint            registered;

  /* results kept for the summary */
  double           register_p99_smallest;
  double           register_p99_largest;
  guint            smallest_size;
  guint            largest_size;
  double           bytes_per_s;
  double           syncs_per_min;
  double           startup_ready_s;
  guint            startup_agents;
} Bench;

static pid_t bench_pid;

/* ---- small helpers ---- */

static char *
format_count (guint64 n)
{
  g_autofree char *digits = g_strdup_printf ("%" G_GUINT64_FORMAT, n);
  GString *out = g_string_new (NULL);
  size_t len = strlen (digits);

  for (size_t i = 0; i < len; i++)
    {
      if (i > 0 && (len - i) % 3 == 0)
        g_string_append_c (out, ',');
      g_string_append_c (out, digits[i]);
    }
  return g_string_free (out, FALSE);
}

static double
seconds_since (gint64 start)
{
  return (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC;
}

static int
compare_doubles (gconstpointer a,
                 gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

/* Nearest-rank percentile (P in 1 … 100) of a sorted array. */
static double
percentile (GArray *sorted,
            guint   p)
{
  guint rank = (guint) (((guint64) p * sorted->len + 99) / 100);

  if (rank < 1)
    rank = 1;
  if (rank > sorted->len)
    rank = sorted->len;
  return g_array_index (sorted, double, rank - 1);
}

/* A field of a "Key:   value" file such as /proc/PID/status or /proc/PID/io;
 * -1 if absent. */
static gint64
proc_field (pid_t       pid,
            const char *file,
            const char *key)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/%s", (int) pid, file);
  g_autofree char *contents = NULL;
  g_auto(GStrv) lines = NULL;
  size_t key_len = strlen (key);

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return -1;
  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    if (strncmp (lines[i], key, key_len) == 0 && lines[i][key_len] == ':')
      return g_ascii_strtoll (lines[i] + key_len + 1, NULL, 10);
  return -1;
}

static double
daemon_rss_mib (Bench *bench)
{
  gint64 kib = proc_field (bench->daemon_pid, "status", "VmRSS");

  return kib < 0 ? -1 : kib / 1024.0;
}

static gint64
file_size (const char *path)
{
  GStatBuf st;

  return g_stat (path, &st) == 0 ? (gint64) st.st_size : 0;
}

static GDBusConnection *
connect_bus (const char *address,
             GError    **error)
{
  if (g_strcmp0 (address, "session") == 0)
    return g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, error);
  if (g_strcmp0 (address, "system") == 0)
    return g_bus_get_sync (G_BUS_TYPE_SYSTEM, NULL, error);
  return g_dbus_connection_new_for_address_sync (address,
                                                 G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                 G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                 NULL, NULL, error);
}

/* ---- the notify socket ---- */

static gboolean
has_line (const char *text,
          const char *line)
{
  size_t len = strlen (line);

  for (const char *p = text; p != NULL; p = strchr (p, '\n') ? strchr (p, '\n') + 1 : NULL)
    if (strncmp (p, line, len) == 0 && (p[len] == '\n' || p[len] == '\0'))
      return TRUE;
  return FALSE;
}

static gpointer
notify_thread_run (gpointer data)
{
  Bench *bench = data;
  struct pollfd fds[2] = {
    { .fd = bench->notify_fd, .events = POLLIN },
    { .fd = bench->notify_stop[0], .events = POLLIN },
  };
  char buffer[4097];

  for (;;)
    {
      ssize_t n;

      if (poll (fds, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      if (fds[1].revents)
        break;
      while ((n = recv (bench->notify_fd, buffer, sizeof buffer - 1, MSG_DONTWAIT)) >= 0)
        {
          gint64 now = g_get_monotonic_time ();

          buffer[n] = '\0';
          if (has_line (buffer, "READY=1"))
            {
              g_mutex_lock (&bench->notify_lock);
              if (bench->ready_at == 0)
                bench->ready_at = now;
              g_mutex_unlock (&bench->notify_lock);
              g_main_context_wakeup (NULL);
            }
        }
    }
  return NULL;
}

static gboolean
notify_open (Bench   *bench,
             GError **error)
{
  struct sockaddr_un address = { .sun_family = AF_UNIX };
  int size = 1 << 20;

  bench->notify_path = g_build_filename (bench->work_dir, "notify", NULL);
  if (strlen (bench->notify_path) >= sizeof address.sun_path)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FILENAME_TOO_LONG,
                   "%s is too long for a socket path; use a shorter --work-dir", bench->notify_path);
      return FALSE;
    }
  strcpy (address.sun_path, bench->notify_path);
  g_unlink (bench->notify_path);
  bench->notify_fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (bench->notify_fd < 0 ||
      bind (bench->notify_fd, (struct sockaddr *) &address, sizeof address) < 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "cannot make the notify socket %s: %s", bench->notify_path, g_strerror (saved));
      return FALSE;
    }
  if (!g_unix_open_pipe (bench->notify_stop, FD_CLOEXEC, error))
    return FALSE;
  setsockopt (bench->notify_fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  bench->notify_thread = g_thread_new ("notify", notify_thread_run, bench);
  return TRUE;
}

static void
notify_close (Bench *bench)
{
  if (bench->notify_thread)
    {
      if (write (bench->notify_stop[1], "x", 1) < 0)
        g_printerr ("state-bench: cannot stop the notify thread: %s\n", g_strerror (errno));
      g_thread_join (g_steal_pointer (&bench->notify_thread));
    }
  if (bench->notify_fd >= 0)
    close (bench->notify_fd);
  for (guint i = 0; i < 2; i++)
    if (bench->notify_stop[i] >= 0)
      close (bench->notify_stop[i]);
  if (bench->notify_path)
    g_unlink (bench->notify_path);
}

static gint64
ready_at (Bench *bench)
{
  gint64 at;

  g_mutex_lock (&bench->notify_lock);
  at = bench->ready_at;
  g_mutex_unlock (&bench->notify_lock);
  return at;
}

/* ---- the daemon ---- */

/* The daemon and strace get SIGTERM when the bench dies, however it dies. */
static void
child_setup (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
  if (getppid () != bench_pid)
    raise (SIGTERM);
}

static void
on_daemon_exit (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Bench *bench = user_data;
  GSubprocess *process = G_SUBPROCESS (source);

  g_subprocess_wait_finish (process, result, NULL);
  if (process != bench->daemon)
    return;
  bench->daemon_exited = TRUE;
  bench->daemon_status = g_subprocess_get_status (process);
}

static gboolean
tick (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

/* Iterates the main context until *flag is set or the deadline (monotonic
 * µs) passes; TRUE if the flag was set. */
static gboolean
iterate_until (gboolean *flag,
               gint64    deadline)
{
  guint tick_id = g_timeout_add (50, tick, NULL);

  while (!*flag && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (tick_id);
  return *flag;
}

static void
print_daemon_log (Bench *bench)
{
  g_autofree char *log = NULL;

  if (bench->daemon_log && g_file_get_contents (bench->daemon_log, &log, NULL, NULL))
    {
      size_t len = strlen (log);
      g_printerr ("state-bench: the end of %s:\n%s\n", bench->daemon_log,
                  len > 4000 ? log + len - 4000 : log);
    }
}

/* Spawns heartbeatd on STATE_DIR and waits for READY=1, then GetStatus.
 * Returns the seconds from spawn to READY=1 (and to GetStatus answering in
 * *status_s, the agent count it reports in *agents), or < 0. */
static double
daemon_start (Bench      *bench,
              const char *state_name,
              double     *status_s,
              guint      *agents,
              GError    **error)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_autofree char *state_dir = g_build_filename (bench->work_dir, state_name, NULL);
  g_autofree char *config = g_build_filename (bench->work_dir, "heartbeatd.conf", NULL);
  g_autofree char *log_name = NULL;
  g_autofree char *pid_text = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) status = NULL;
  const char *argv[] = {
    bench->daemon_path, "--session", "--config", config, "--state-dir", state_dir,
    "--http-port", "0", NULL
  };
  gint64 start, ready, answered;
  guint32 count = 0;

  g_assert (bench->daemon == NULL);
  bench->starts++;
  log_name = g_strdup_printf ("daemon-%u.log", bench->starts);
  g_free (bench->daemon_log);
  bench->daemon_log = g_build_filename (bench->work_dir, log_name, NULL);

  g_subprocess_launcher_set_stdout_file_path (launcher, bench->daemon_log);
  g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", bench->address, TRUE);
  g_subprocess_launcher_setenv (launcher, "NOTIFY_SOCKET", bench->notify_path, TRUE);
  g_subprocess_launcher_setenv (launcher, "G_MESSAGES_DEBUG", "", TRUE);
  for (guint i = 0; unset_variables[i]; i++)
    g_subprocess_launcher_unsetenv (launcher, unset_variables[i]);
  g_subprocess_launcher_set_child_setup (launcher, child_setup, NULL, NULL);

  g_mutex_lock (&bench->notify_lock);
  bench->ready_at = 0;
  g_mutex_unlock (&bench->notify_lock);
  bench->daemon_exited = FALSE;

  start = g_get_monotonic_time ();
  bench->daemon = g_subprocess_launcher_spawnv (launcher, argv, error);
  if (bench->daemon == NULL)
    return -1;
  bench->daemon_pid = (pid_t) g_ascii_strtoll (g_subprocess_get_identifier (bench->daemon), NULL, 10);
  g_subprocess_wait_async (bench->daemon, NULL, on_daemon_exit, bench);
  /* for bench/state-bench.sh's trap */
  pid_text = g_strdup_printf ("%d\n", (int) bench->daemon_pid);
  g_file_set_contents (bench->daemon_pid_file, pid_text, -1, NULL);

  {
    gint64 deadline = start + (gint64) READY_TIMEOUT_S * G_USEC_PER_SEC;
    guint tick_id = g_timeout_add (50, tick, NULL);

    while (ready_at (bench) == 0 && !bench->daemon_exited && g_get_monotonic_time () < deadline)
      g_main_context_iteration (NULL, TRUE);
    g_source_remove (tick_id);
  }
  ready = ready_at (bench);
  if (ready == 0)
    {
      if (bench->daemon_exited)
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                     "heartbeatd exited (wait status %d) before READY=1", bench->daemon_status);
      else
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                     "heartbeatd sent no READY=1 within %d s", READY_TIMEOUT_S);
      print_daemon_log (bench);
      if (bench->daemon_exited)
        {
          /* nothing left for daemon_stop() to do */
          g_clear_object (&bench->daemon);
          g_unlink (bench->daemon_pid_file);
          bench->daemon_pid = 0;
        }
      return -1;
    }

  reply = g_dbus_connection_call_sync (bench->connection, HB_NAME, HB_PATH, HB_INTERFACE, "GetStatus",
                                       NULL, G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NO_AUTO_START,
                                       CALL_TIMEOUT_MS, NULL, error);
  answered = g_get_monotonic_time ();
  if (reply == NULL)
    {
      g_prefix_error (error, "GetStatus after READY=1: ");
      return -1;
    }
  status = g_variant_get_child_value (reply, 0);
  g_variant_lookup (status, "agent-count", "u", &count);
  if (status_s)
    *status_s = (answered - start) / (double) G_USEC_PER_SEC;
  if (agents)
    *agents = count;
  return (ready - start) / (double) G_USEC_PER_SEC;
}

/* SIGTERM, then waits for the exit (SIGKILL after STOP_TIMEOUT_S).
 * Returns the seconds it took, or < 0 if it did not exit 0. */
static double
daemon_stop (Bench *bench)
{
  gint64 start = g_get_monotonic_time ();
  double took;
  gboolean clean;

  if (bench->daemon == NULL)
    return 0;
  if (!bench->daemon_exited)
    g_subprocess_send_signal (bench->daemon, SIGTERM);
  if (!iterate_until (&bench->daemon_exited, start + (gint64) STOP_TIMEOUT_S * G_USEC_PER_SEC))
    {
      g_printerr ("state-bench: heartbeatd did not exit within %d s of SIGTERM; killing it\n", STOP_TIMEOUT_S);
      g_subprocess_force_exit (bench->daemon);
      iterate_until (&bench->daemon_exited, G_MAXINT64);
    }
  took = seconds_since (start);
  clean = WIFEXITED (bench->daemon_status) && WEXITSTATUS (bench->daemon_status) == 0;
  if (!clean)
    {
      g_printerr ("state-bench: heartbeatd ended with wait status %d\n", bench->daemon_status);
      print_daemon_log (bench);
    }
  g_clear_object (&bench->daemon);
  g_unlink (bench->daemon_pid_file);
  bench->daemon_pid = 0;
  return clean ? took : -1;
}

static gboolean
write_config (Bench   *bench,
              GError **error)
{
  g_autofree char *path = g_build_filename (bench->work_dir, "heartbeatd.conf", NULL);
  /* no quota, no limit, no deadline falls due during the bench, no HTTP */
  const char *text =
    "# written by state-bench\n"
    "[monitor]\n"
    "stale-threshold=1000h\n"
    "timeout-threshold=1000h\n"
    "[limits]\n"
    "agents-per-uid=0\n"
    "max-agents=0\n"
    "[http]\n"
    "enabled=false\n";

  return g_file_set_contents (path, text, -1, error);
}

/* ---- pipelined registration ---- */

typedef struct {
  Bench      *bench;
  const char *prefix;
  guint       next;
  guint       end;
  guint       outstanding;
  guint       done;
  guint       report_every;
  GError     *error;
  GMainLoop  *loop;
} Filler;

static void fill_issue (Filler          *filler,
                        GDBusConnection *connection);

static void
on_fill_reply (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Filler *filler = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);

  filler->outstanding--;
  filler->done++;
  if (reply == NULL && filler->error == NULL)
    filler->error = g_steal_pointer (&error);
  if (filler->report_every && filler->done % filler->report_every == 0)
    g_printerr ("state-bench: ... %u registered\n", filler->done);
  if (filler->error == NULL && filler->next < filler->end)
    fill_issue (filler, G_DBUS_CONNECTION (source));
  else if (filler->outstanding == 0)
    g_main_loop_quit (filler->loop);
}

static void
fill_issue (Filler          *filler,
            GDBusConnection *connection)
{
  g_autofree char *id = g_strdup_printf ("%s%07u", filler->prefix, filler->next++);

  filler->outstanding++;
  g_dbus_connection_call (connection, HB_NAME, HB_PATH, HB_INTERFACE, "Register",
                          g_variant_new_parsed ("(%s, {'task-id': <'state-bench'>})", id),
                          G_VARIANT_TYPE_UNIT, G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS,
                          NULL, on_fill_reply, filler);
}

/* Makes sure there are connections enough for COUNT calls in flight. */
static gboolean
ensure_connections (Bench   *bench,
                    guint    count,
                    GError **error)
{
  while (bench->connections->len * REPLIES_PER_CONNECTION < count)
    {
      GDBusConnection *extra = connect_bus (bench->address, error);

      if (extra == NULL)
        return FALSE;
      g_ptr_array_add (bench->connections, extra);
    }
  return TRUE;
}

/* Registers PREFIX0000FROM … PREFIX(TO - 1), --in-flight at a time, at
 * most REPLIES_PER_CONNECTION of them on each connection (a reply's
 * connection sends the next call). Returns the rate (calls/s), or < 0. */
static double
fill (Bench      *bench,
      const char *prefix,
      guint       from,
      guint       to,
      GError    **error)
{
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  Filler filler = { .bench = bench, .prefix = prefix, .next = from, .end = to, .loop = loop };
  gint64 start = g_get_monotonic_time ();

  if (to <= from)
    return 0;
  if (to - from >= 20000)
    filler.report_every = 10000;
  if (!ensure_connections (bench, bench->in_flight, error))
    return -1;
  for (guint i = 0; i < bench->in_flight && filler.next < filler.end; i++)
    fill_issue (&filler, g_ptr_array_index (bench->connections, i / REPLIES_PER_CONNECTION));
  g_main_loop_run (loop);
  if (filler.error)
    {
      g_propagate_prefixed_error (error, filler.error, "pipelined Register failed: ");
      return -1;
    }
  return (to - from) / MAX (seconds_since (start), 1e-6);
}

/* ---- phase 1: latency ---- */

typedef enum {
  KIND_PING,
  KIND_REGISTER,
  KIND_UNREGISTER,
} CallKind;

static gboolean
call_once (Bench      *bench,
           CallKind    kind,
           const char *id,
           GError    **error)
{
  g_autoptr(GVariant) reply = NULL;

  switch (kind)
    {
    case KIND_PING:
      reply = g_dbus_connection_call_sync (bench->connection, HB_NAME, HB_PATH, "org.freedesktop.DBus.Peer",
                                           "Ping", NULL, G_VARIANT_TYPE_UNIT, G_DBUS_CALL_FLAGS_NO_AUTO_START,
                                           CALL_TIMEOUT_MS, NULL, error);
      break;
    case KIND_REGISTER:
      reply = g_dbus_connection_call_sync (bench->connection, HB_NAME, HB_PATH, HB_INTERFACE, "Register",
                                           g_variant_new_parsed ("(%s, {'task-id': <'state-bench'>})", id),
                                           G_VARIANT_TYPE_UNIT, G_DBUS_CALL_FLAGS_NO_AUTO_START,
                                           CALL_TIMEOUT_MS, NULL, error);
      break;
    case KIND_UNREGISTER:
      reply = g_dbus_connection_call_sync (bench->connection, HB_NAME, HB_PATH, HB_INTERFACE, "Unregister",
                                           g_variant_new ("(s)", id), G_VARIANT_TYPE_UNIT,
                                           G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS, NULL, error);
      break;
    default:
      g_assert_not_reached ();
    }
  return reply != NULL;
}

/* Times COUNT calls one at a time; the ids are PREFIX000000 … Returns
 * the sorted latencies in ms, or NULL. */
static GArray *
time_calls (Bench      *bench,
            CallKind    kind,
            const char *prefix,
            guint       count,
            GError    **error)
{
  g_autoptr(GArray) ms = g_array_sized_new (FALSE, FALSE, sizeof (double), count);

  for (guint i = 0; i < count; i++)
    {
      g_autofree char *id = prefix ? g_strdup_printf ("%s%06u", prefix, i) : NULL;
      gint64 start = g_get_monotonic_time ();
      double took;

      if (!call_once (bench, kind, id, error))
        {
          g_prefix_error (error, "%s %s: ", kind == KIND_PING ? "Ping" :
                          kind == KIND_REGISTER ? "Register" : "Unregister", id ? id : "");
          return NULL;
        }
      took = (g_get_monotonic_time () - start) / 1000.0;
      g_array_append_val (ms, took);
    }
  g_array_sort (ms, compare_doubles);
  return g_steal_pointer (&ms);
}

static void
print_latency (const char *label,
               GArray     *ms,
               GArray     *ping)
{
  double p50 = percentile (ms, 50), p99 = percentile (ms, 99);

  g_print ("  %-11s p50 %8.3f ms  p99 %8.3f ms  max %8.3f ms", label, p50, p99, percentile (ms, 100));
  if (ping)
    g_print ("   = %.1fx / %.1fx Ping", p50 / percentile (ping, 50), p99 / percentile (ping, 99));
  g_print ("\n");
}

static gboolean
phase_latency (Bench   *bench,
               GError **error)
{
  g_print ("\n== Register/Unregister latency: one call at a time over D-Bus, %u calls of each, "
           "reference Peer.Ping to the daemon ==\n", bench->calls);
  printf ("(before: Register 1.2 ms @100, 9.4 ms @2,100, ~100 ms @6,500; "
          "target: p99 ≤ 5 ms @100,000 and within 2x of p99 @100)\n");

  for (guint s = 0; s < bench->sizes->len; s++)
    {
      guint size = g_array_index (bench->sizes, guint, s);
      g_autofree char *size_text = format_count (size);
      g_autofree char *prefix = g_strdup_printf ("fresh-%u-", size);
      g_autofree char *warm_prefix = g_strdup_printf ("warm-%u-", size);
      g_autoptr(GArray) ping = NULL;
      g_autoptr(GArray) reg = NULL;
      g_autoptr(GArray) unreg = NULL;
      g_autoptr(GArray) warm = NULL;
      gint64 start = g_get_monotonic_time ();
      double rate;

      g_print ("agents %s: ", size_text);
      rate = fill (bench, "bench-", bench->registered, size, error);
      if (rate < 0)
        return FALSE;
      if (size > bench->registered)
        g_print ("%u pre-registered in %.1f s (%.0f calls/s, %u in flight); ",
                 size - bench->registered, seconds_since (start), rate, bench->in_flight);
      bench->registered = MAX (bench->registered, size);
      g_print ("daemon RSS %.1f MiB\n", daemon_rss_mib (bench));

      /* warm up both paths (allocator, caches, page faults); not counted */
      if (!(warm = time_calls (bench, KIND_PING, NULL, 50, error)))
        return FALSE;
      g_clear_pointer (&warm, g_array_unref);
      if (!(warm = time_calls (bench, KIND_REGISTER, warm_prefix, 10, error)))
        return FALSE;
      g_clear_pointer (&warm, g_array_unref);
      if (!(warm = time_calls (bench, KIND_UNREGISTER, warm_prefix, 10, error)))
        return FALSE;

      if (!(ping = time_calls (bench, KIND_PING, NULL, bench->calls, error)) ||
          !(reg = time_calls (bench, KIND_REGISTER, prefix, bench->calls, error)) ||
          !(unreg = time_calls (bench, KIND_UNREGISTER, prefix, bench->calls, error)))
        return FALSE;

      print_latency ("Register", reg, ping);
      print_latency ("Unregister", unreg, ping);
      print_latency ("Peer.Ping", ping, NULL);

      if (s == 0)
        {
          bench->smallest_size = size;
          bench->register_p99_smallest = percentile (reg, 99);
        }
      bench->largest_size = size;
      bench->register_p99_largest = percentile (reg, 99);
    }
  return TRUE;
}

/* ---- phase 3: start-up ---- */

static gboolean
phase_startup (Bench   *bench,
               GError **error)
{
  g_autofree char *size_text = NULL;
  double stop_s, ready_s, status_s = 0;
  guint agents = 0;
  guint size = MAX (bench->startup_size, bench->registered);

  size_text = format_count (size);
  g_print ("\n== start-up with %s agents in the store ==\n", size_text);
  printf ("(target: ≤ 1 s with 100,000)\n");
  if (bench->registered < size)
    {
      gint64 start = g_get_monotonic_time ();
      double rate = fill (bench, "bench-", bench->registered, size, error);

      if (rate < 0)
        return FALSE;
      g_print ("%u pre-registered in %.1f s (%.0f calls/s, %u in flight)\n",
               size - bench->registered, seconds_since (start), rate, bench->in_flight);
      bench->registered = size;
    }
  g_print ("daemon RSS before the restart: %.1f MiB\n", daemon_rss_mib (bench));

  stop_s = daemon_stop (bench);
  if (stop_s < 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "heartbeatd did not exit 0 on SIGTERM");
      return FALSE;
    }
  g_print ("stop: SIGTERM to exit %.3f s\n", stop_s);

  ready_s = daemon_start (bench, "state-main", &status_s, &agents, error);
  if (ready_s < 0)
    return FALSE;
  g_print ("start-up: spawn to READY=1 %.3f s, to GetStatus answering %.3f s "
           "(it reports %u agents; daemon RSS %.1f MiB)\n",
           ready_s, status_s, agents, daemon_rss_mib (bench));
  if (agents != size)
    g_print ("WARNING: %u agents were registered before the restart, %u after\n", size, agents);
  bench->startup_ready_s = ready_s;
  bench->startup_agents = size;
  return TRUE;
}

/* ---- phase 2: writes under beats ---- */

typedef struct {
  GPtrArray       *connections;  /* agent i beats on connection i mod len */
  GPtrArray       *ids;
  gboolean         progress;
  GMainContext    *context;
  GMainLoop       *loop;
  gint64           start;        /* monotonic µs of beat 0 */
  guint64          next;         /* the next beat to send */
  gint             stopping;     /* atomic */
  /* atomic counters, read by the main thread */
  gint             in_flight;
  gint             max_in_flight;
  guint            sent;
  guint            answered;
  guint            failed;
  GMutex           lock;
  char            *first_error;
} Beater;

static void
on_beat_reply (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Beater *beater = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);

  if (reply == NULL)
    {
      g_atomic_int_inc (&beater->failed);
      g_mutex_lock (&beater->lock);
      if (beater->first_error == NULL)
        beater->first_error = g_strdup (error->message);
      g_mutex_unlock (&beater->lock);
    }
  else
    g_atomic_int_inc (&beater->answered);
  g_atomic_int_add (&beater->in_flight, -1);
}

/* Every few ms: sends the beats that fell due. Beat k is agent k mod N's,
 * due at start + k / N s, so each agent beats once a second and the beats
 * are spread evenly over the second. */
static gboolean
beater_tick (gpointer user_data)
{
  Beater *beater = user_data;
  guint n = beater->ids->len;
  gint64 now = g_get_monotonic_time ();

  if (g_atomic_int_get (&beater->stopping))
    {
      if (g_atomic_int_get (&beater->in_flight) == 0)
        g_main_loop_quit (beater->loop);
      return G_SOURCE_CONTINUE;
    }
  while (beater->start + (gint64) (beater->next * G_USEC_PER_SEC / n) <= now)
    {
      guint agent = (guint) (beater->next % n);
      const char *id = g_ptr_array_index (beater->ids, agent);
      GDBusConnection *connection = g_ptr_array_index (beater->connections, agent % beater->connections->len);
      g_auto(GVariantBuilder) details = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
      gint in_flight;

      if (beater->progress)
        g_variant_builder_add (&details, "{sv}", "progress",
                               g_variant_new_double ((double) (beater->next / n % 100)));
      in_flight = g_atomic_int_add (&beater->in_flight, 1) + 1;
      if (in_flight > g_atomic_int_get (&beater->max_in_flight))
        g_atomic_int_set (&beater->max_in_flight, in_flight);
      g_dbus_connection_call (connection, HB_NAME, HB_PATH, HB_INTERFACE, "Beat",
                              g_variant_new ("(sa{sv})", id, &details), G_VARIANT_TYPE_UNIT,
                              G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS, NULL,
                              on_beat_reply, beater);
      g_atomic_int_inc (&beater->sent);
      beater->next++;
    }
  return G_SOURCE_CONTINUE;
}

static gpointer
beater_run (gpointer data)
{
  Beater *beater = data;
  GSource *timer = g_timeout_source_new (4);

  g_main_context_push_thread_default (beater->context);
  g_source_set_callback (timer, beater_tick, beater, NULL);
  g_source_attach (timer, beater->context);
  beater->start = g_get_monotonic_time ();
  g_main_loop_run (beater->loop);
  g_source_destroy (timer);
  g_source_unref (timer);
  g_main_context_pop_thread_default (beater->context);
  return NULL;
}

typedef struct {
  gint64 write_bytes;
  gint64 cancelled;
  gint64 wchar;
  gint64 log_size;
  gint64 real;         /* wall-clock µs, for strace's timestamps */
  gint64 mono;
  guint  sent;
  guint  answered;
} Snapshot;

static void
snapshot (Bench    *bench,
          Beater   *beater,
          Snapshot *snap)
{
  snap->real = g_get_real_time ();
  snap->mono = g_get_monotonic_time ();
  snap->write_bytes = proc_field (bench->daemon_pid, "io", "write_bytes");
  snap->cancelled = proc_field (bench->daemon_pid, "io", "cancelled_write_bytes");
  snap->wchar = proc_field (bench->daemon_pid, "io", "wchar");
  snap->log_size = file_size (bench->daemon_log);
  snap->sent = g_atomic_int_get (&beater->sent);
  snap->answered = g_atomic_int_get (&beater->answered);
}

/* Sleeps SECONDS while the beater runs; FALSE if the daemon died. */
static gboolean
wait_seconds (Bench  *bench,
              double  seconds)
{
  gint64 end = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);
  gboolean never = FALSE;

  while (g_get_monotonic_time () < end && !bench->daemon_exited)
    iterate_until (&never, MIN (end, g_get_monotonic_time () + G_USEC_PER_SEC / 4));
  return !bench->daemon_exited;
}

/* strace on the daemon: started before the window, stopped after it. */
typedef struct {
  GSubprocess *process;
  char        *out_path;
  char        *err_path;
  gboolean     exited;
} Strace;

static void
on_strace_exit (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Strace *strace = user_data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  strace->exited = TRUE;
}

static gboolean
strace_start (Bench   *bench,
              Strace  *strace,
              GError **error)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autofree char *pid_text = g_strdup_printf ("%d", (int) bench->daemon_pid);
  const char *argv[] = {
    bench->strace_path, "-f", "-ttt", "-e", SYNC_TRACE, "-e", "signal=none",
    "-o", NULL, "-p", pid_text, NULL
  };
  gint64 deadline;

  strace->out_path = g_build_filename (bench->work_dir, "strace.out", NULL);
  strace->err_path = g_build_filename (bench->work_dir, "strace.err", NULL);
  argv[8] = strace->out_path;
  g_unlink (strace->out_path);
  g_subprocess_launcher_set_stderr_file_path (launcher, strace->err_path);
  g_subprocess_launcher_set_child_setup (launcher, child_setup, NULL, NULL);
  strace->process = g_subprocess_launcher_spawnv (launcher, argv, error);
  if (strace->process == NULL)
    return FALSE;
  g_subprocess_wait_async (strace->process, NULL, on_strace_exit, strace);

  /* attached once it says so (one line per thread) */
  deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (!strace->exited && g_get_monotonic_time () < deadline)
    {
      g_autofree char *err = NULL;

      if (g_file_get_contents (strace->err_path, &err, NULL, NULL) && strstr (err, " attached"))
        {
          /* let the other threads' attach lines come too */
          gboolean never = FALSE;

          iterate_until (&never, g_get_monotonic_time () + G_USEC_PER_SEC / 5);
          return TRUE;
        }
      {
        gboolean never = FALSE;

        iterate_until (&never, g_get_monotonic_time () + G_USEC_PER_SEC / 20);
      }
    }
  {
    g_autofree char *err = NULL;

    g_file_get_contents (strace->err_path, &err, NULL, NULL);
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "strace did not attach to %d: %s",
                 (int) bench->daemon_pid, err ? g_strstrip (err) : "(no message)");
  }
  if (!strace->exited)
    g_subprocess_send_signal (strace->process, SIGTERM);
  iterate_until (&strace->exited, g_get_monotonic_time () + 5 * G_USEC_PER_SEC);
  g_clear_object (&strace->process);
  return FALSE;
}

/* Stops strace and counts the sync calls made in [from, to] (wall-clock
 * µs), per kind into COUNTS (indexed like sync_calls); returns the total,
 * or -1. */
static gint64
strace_finish (Strace  *strace,
               gint64   from,
               gint64   to,
               guint   *counts,
               guint   *threads,
               GError **error)
{
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_auto(GStrv) lines = NULL;
  gint64 total = 0;

  if (!strace->exited)
    g_subprocess_send_signal (strace->process, SIGINT);
  if (!iterate_until (&strace->exited, g_get_monotonic_time () + 10 * G_USEC_PER_SEC))
    {
      g_subprocess_force_exit (strace->process);
      iterate_until (&strace->exited, G_MAXINT64);
    }
  g_clear_object (&strace->process);

  if (!g_file_get_contents (strace->out_path, &out, NULL, error))
    return -1;
  if (g_file_get_contents (strace->err_path, &err, NULL, NULL))
    {
      g_auto(GStrv) err_lines = g_strsplit (err, "\n", -1);

      /* "Process 12 attached with 4 threads", or one line per thread */
      for (guint i = 0; err_lines[i]; i++)
        {
          const char *with = strstr (err_lines[i], " attached with ");

          if (with)
            *threads += (guint) g_ascii_strtoull (with + strlen (" attached with "), NULL, 10);
          else if (strstr (err_lines[i], " attached"))
            (*threads)++;
        }
    }

  /* lines: [PID ]SECONDS.MICROS name(args…) = result, or … <unfinished ...>
   * then [PID ]SECONDS.MICROS <... name resumed> …, counted once */
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    {
      char *rest = lines[i];
      char *end;
      double when;
      gint64 usec;
      size_t name_len;

      if (strcspn (rest, ". ") < strlen (rest) && rest[strcspn (rest, ". ")] == ' ')
        {
          g_ascii_strtoull (rest, &end, 10);      /* the pid */
          if (end == rest)
            continue;
          rest = end + 1;
        }
      when = g_ascii_strtod (rest, &end);
      if (end == rest || *end != ' ')
        continue;
      rest = end + 1;
      usec = (gint64) (when * G_USEC_PER_SEC + 0.5);
      if (usec < from || usec > to || rest[0] == '<')
        continue;
      name_len = strcspn (rest, "(");
      if (rest[name_len] != '(')
        continue;
      for (guint k = 0; sync_calls[k]; k++)
        if (strlen (sync_calls[k]) == name_len && strncmp (rest, sync_calls[k], name_len) == 0)
          {
            counts[k]++;
            total++;
          }
    }
  return total;
}

static gboolean
phase_writes (Bench   *bench,
              GError **error)
{
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  Beater beater = { 0 };
  Strace strace = { 0 };
  Snapshot before = { 0 }, after = { 0 };
  GThread *thread;
  double ready_s, window_s, rate;
  gint64 start;
  gboolean ok = FALSE;
  gint64 syncs = -1;
  guint counts[G_N_ELEMENTS (sync_calls)] = { 0 };
  guint threads = 0;
  struct statfs fs;
  g_autofree char *state_dir = g_build_filename (bench->work_dir, "state-writes", NULL);
  g_autofree char *agents_text = format_count (bench->beat_agents);

  g_print ("\n== writes: %s agents beating at 1 Hz each (spread evenly over the second), "
           "%u s window after %u s warm-up ==\n", agents_text, bench->window_s, bench->warm_up_s);
  printf ("(before: 330 KB/s and 60 fsyncs/min with 1,000 agents; target: ≤ 16 KB/s, ≤ 2 fsyncs/min)\n");
  if (bench->window_s < 90)
    g_print ("NOTE: the window, %u s, covers fewer than 3 lazy-sync intervals of 30 s; "
             "the default window is 120 s\n", bench->window_s);

  ready_s = daemon_start (bench, "state-writes", NULL, NULL, error);
  if (ready_s < 0)
    return FALSE;
  if (statfs (state_dir, &fs) == 0 && (unsigned long) fs.f_type == TMPFS_MAGIC_VALUE)
    g_print ("WARNING: %s is on tmpfs: write_bytes stays 0 there; run with TMPDIR on a disk\n", state_dir);

  start = g_get_monotonic_time ();
  rate = fill (bench, "beat-", 0, bench->beat_agents, error);
  if (rate < 0)
    return FALSE;
  g_print ("%s agents registered in %.1f s; daemon RSS after registering them: %.1f MiB\n",
           agents_text, seconds_since (start), daemon_rss_mib (bench));

  for (guint i = 0; i < bench->beat_agents; i++)
    g_ptr_array_add (ids, g_strdup_printf ("beat-%07u", i));
  /* so that a stall of up to a second fails no beat for want of
   * connections (each agent has one beat in flight at most then) */
  if (!ensure_connections (bench, bench->beat_agents, error))
    return FALSE;
  beater.connections = bench->connections;
  beater.ids = ids;
  beater.progress = bench->progress;
  beater.context = g_main_context_new ();
  beater.loop = g_main_loop_new (beater.context, FALSE);
  g_mutex_init (&beater.lock);
  thread = g_thread_new ("beater", beater_run, &beater);

  if (!wait_seconds (bench, bench->warm_up_s))
    goto out;

  if (bench->strace_path && !strace_start (bench, &strace, error))
    goto out;
  snapshot (bench, &beater, &before);
  if (!wait_seconds (bench, bench->window_s))
    goto out;
  snapshot (bench, &beater, &after);
  if (strace.process)
    {
      syncs = strace_finish (&strace, before.real, after.real, counts, &threads, error);
      if (syncs < 0)
        goto out;
    }
  ok = TRUE;

out:
  if (strace.process)
    strace_finish (&strace, 0, 0, counts, &threads, NULL);
  g_free (strace.out_path);
  g_free (strace.err_path);
  g_atomic_int_set (&beater.stopping, 1);
  g_thread_join (thread);
  g_main_loop_unref (beater.loop);
  g_main_context_unref (beater.context);
  if (!ok)
    {
      if (error && *error == NULL)
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "heartbeatd exited during the write phase");
      g_free (beater.first_error);
      g_mutex_clear (&beater.lock);
      return FALSE;
    }

  window_s = (after.mono - before.mono) / (double) G_USEC_PER_SEC;
  {
    guint sent = after.sent - before.sent, answered = after.answered - before.answered;
    gint64 written = after.write_bytes - before.write_bytes;
    gint64 log_bytes = after.log_size - before.log_size;

    g_print ("window: %.1f s; beats sent %u (%.1f/s), answered %u, failed %u in all, most in flight %d\n",
             window_s, sent, sent / window_s, answered, g_atomic_int_get (&beater.failed),
             g_atomic_int_get (&beater.max_in_flight));
    if (beater.first_error)
      g_print ("WARNING: a beat failed: %s\n", beater.first_error);
    bench->bytes_per_s = written / window_s;
    g_print ("written: %" G_GINT64_FORMAT " bytes = %.0f B/s = %.1f KiB/s (delta of write_bytes in /proc/%d/io)\n",
             written, bench->bytes_per_s, bench->bytes_per_s / 1024, (int) bench->daemon_pid);
    g_print ("  of which its log (stderr) grew %" G_GINT64_FORMAT " bytes; cancelled_write_bytes %"
             G_GINT64_FORMAT "; wchar %.1f KiB/s (includes its D-Bus socket writes)\n",
             log_bytes, after.cancelled - before.cancelled,
             (after.wchar - before.wchar) / window_s / 1024);
  }
  if (syncs >= 0)
    {
      g_autoptr(GString) kinds = g_string_new (NULL);

      for (guint k = 0; sync_calls[k]; k++)
        if (counts[k])
          g_string_append_printf (kinds, "%s%s %u", kinds->len ? ", " : "", sync_calls[k], counts[k]);
      bench->syncs_per_min = syncs / window_s * 60;
      g_print ("syncs: %" G_GINT64_FORMAT " in %.1f s = %.1f per minute (%s; strace -f on %u threads; "
               "counted: %s)\n",
               syncs, window_s, bench->syncs_per_min, kinds->len ? kinds->str : "none", threads,
               "fsync fdatasync sync_file_range msync syncfs sync");
    }
  else
    {
      bench->syncs_per_min = -1;
      g_print ("syncs: not measured (no strace; install the Debian package strace or pass --strace)\n");
    }
  g_free (beater.first_error);
  g_mutex_clear (&beater.lock);
  return TRUE;
}

/* ---- main ---- */

static gboolean
parse_sizes (const char *text,
             GArray     *sizes,
             GError    **error)
{
  g_auto(GStrv) parts = g_strsplit (text, ",", -1);

  for (guint i = 0; parts[i]; i++)
    {
      guint64 n;
      guint size;

      if (!g_ascii_string_to_unsigned (g_strstrip (parts[i]), 10, 1, 10000000, &n, error))
        {
          g_prefix_error (error, "--sizes: ");
          return FALSE;
        }
      size = (guint) n;
      g_array_append_val (sizes, size);
    }
  if (sizes->len == 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--sizes is empty");
      return FALSE;
    }
  return TRUE;
}

static int
compare_guints (gconstpointer a,
                gconstpointer b)
{
  guint x = *(const guint *) a, y = *(const guint *) b;

  return (x > y) - (x < y);
}

/* Raw UTF-8 (g_print() would turn ≤ into ? in the C locale). */
static void
print_references (void)
{
  fputs (BEFORE_TEXT "\n" TARGETS_TEXT "\n", stdout);
}

static const char *
verdict (gboolean met)
{
  return met ? "met" : "NOT met";
}

static void
print_summary (Bench   *bench,
               gboolean latency,
               gboolean writes,
               gboolean startup)
{
  g_print ("\n== summary ==\n");
  print_references ();
  if (latency)
    {
      g_autofree char *small = format_count (bench->smallest_size);
      g_autofree char *large = format_count (bench->largest_size);
      double ratio = bench->register_p99_largest / bench->register_p99_smallest;

      g_print ("now: Register p99 %.3f ms @%s, %.3f ms @%s (%.2fx)\n",
               bench->register_p99_smallest, small, bench->register_p99_largest, large, ratio);
      if (bench->largest_size >= 100000)
        printf ("  Register p99 ≤ 5 ms @%s: %s; within 2x of @%s: %s\n",
                large, verdict (bench->register_p99_largest <= 5.0), small, verdict (ratio <= 2.0));
      else
        g_print ("  (the Register targets are at 100,000 agents: this run stopped at %s)\n", large);
    }
  if (writes)
    {
      g_print ("now: %.0f B/s = %.1f KiB/s", bench->bytes_per_s, bench->bytes_per_s / 1024);
      if (bench->syncs_per_min >= 0)
        g_print (" and %.1f syncs/min", bench->syncs_per_min);
      g_print (" with %u agents at 1 Hz (window %u s)\n", bench->beat_agents, bench->window_s);
      printf ("  ≤ 16 KB/s (16,384 B/s): %s", verdict (bench->bytes_per_s <= 16384));
      if (bench->syncs_per_min >= 0)
        printf ("; ≤ 2 fsyncs/min: %s", verdict (bench->syncs_per_min <= 2.0));
      if (bench->beat_agents != 1000)
        printf (" (the targets are for 1,000 agents)");
      printf ("\n");
    }
  if (startup)
    {
      g_autofree char *agents = format_count (bench->startup_agents);

      g_print ("now: start-up (spawn to READY=1) %.3f s with %s agents\n", bench->startup_ready_s, agents);
      if (bench->startup_agents >= 100000)
        printf ("  start-up ≤ 1 s with 100k: %s\n", verdict (bench->startup_ready_s <= 1.0));
      else
        g_print ("  (the start-up target is at 100,000 agents: this run had %s)\n", agents);
    }
}

int
main (int    argc,
      char **argv)
{
  Bench bench = { .notify_fd = -1, .notify_stop = { -1, -1 }, .calls = 2000, .in_flight = 256,
                  .beat_agents = 1000, .window_s = 120, .warm_up_s = 10 };
  g_autofree char *sizes_text = NULL;
  g_autofree char *daemon_path = NULL;
  g_autofree char *work_dir = NULL;
  g_autofree char *strace_path = NULL;
  int calls = 2000, in_flight = 256, agents = 1000, window = 120, warm_up = 10, startup_size = 0;
  gboolean skip_latency = FALSE, skip_writes = FALSE, skip_startup = FALSE, no_strace = FALSE;
  gboolean progress = FALSE, ok = TRUE;
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) sizes = g_array_new (FALSE, FALSE, sizeof (guint));
  const GOptionEntry entries[] = {
    { "daemon", 0, 0, G_OPTION_ARG_FILENAME, &daemon_path, "heartbeatd to run (default build/src/daemon/heartbeatd)", "PATH" },
    { "work-dir", 'd', 0, G_OPTION_ARG_FILENAME, &work_dir, "Directory for the state, configuration, notify socket and logs (required)", "DIR" },
    { "sizes", 's', 0, G_OPTION_ARG_STRING, &sizes_text, "Agents registered beforehand, for the latency phase (default 100,10000,100000)", "N,N,..." },
    { "calls", 'n', 0, G_OPTION_ARG_INT, &calls, "Register calls, then Unregister calls, and Pings timed per size (default 2000)", "N" },
    { "in-flight", 'j', 0, G_OPTION_ARG_INT, &in_flight, "Register calls in flight while pre-registering (default 256)", "N" },
    { "agents", 'a', 0, G_OPTION_ARG_INT, &agents, "Agents beating at 1 Hz in the write phase (default 1000)", "N" },
    { "window", 'w', 0, G_OPTION_ARG_INT, &window, "Seconds measured in the write phase (default 120)", "S" },
    { "warm-up", 0, 0, G_OPTION_ARG_INT, &warm_up, "Seconds of beats before the window (default 10)", "S" },
    { "progress", 0, 0, G_OPTION_ARG_NONE, &progress, "Beats carry a progress detail (metadata changes every beat)", NULL },
    { "startup-size", 0, 0, G_OPTION_ARG_INT, &startup_size, "Agents in the store for the start-up phase (default: the largest of --sizes)", "N" },
    { "skip-latency", 0, 0, G_OPTION_ARG_NONE, &skip_latency, "Skip the Register/Unregister latency phase", NULL },
    { "skip-writes", 0, 0, G_OPTION_ARG_NONE, &skip_writes, "Skip the write phase (bytes and syncs under beats)", NULL },
    { "skip-startup", 0, 0, G_OPTION_ARG_NONE, &skip_startup, "Skip the start-up phase", NULL },
    { "strace", 0, 0, G_OPTION_ARG_FILENAME, &strace_path, "strace to count the daemon's syncs with (default: strace in PATH)", "PATH" },
    { "no-strace", 0, 0, G_OPTION_ARG_NONE, &no_strace, "Do not count syncs", NULL },
    { NULL }
  };

  setvbuf (stdout, NULL, _IOLBF, 0);
  bench_pid = getpid ();

  context = g_option_context_new ("ADDRESS");
  g_option_context_set_summary (context,
      "Measures heartbeatd's persistence: Register/Unregister latency by store size\n"
      "(against Peer.Ping), bytes written and syncs under 1 Hz beats, and start-up\n"
      "time with a full store. Starts and stops heartbeatd itself on the bus at\n"
      "ADDRESS (a D-Bus address; bench/state-bench.sh makes a private one).");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) ||
      !parse_sizes (sizes_text ? sizes_text : "100,10000,100000", sizes, &error))
    {
      g_printerr ("state-bench: %s\n", error->message);
      return 2;
    }
  if (argc != 2 || work_dir == NULL || calls < 1 || in_flight < 1 || agents < 1 ||
      window < 1 || warm_up < 0 || startup_size < 0)
    {
      g_printerr ("usage: state-bench --work-dir DIR [OPTION...] ADDRESS (see --help)\n");
      return 2;
    }
  g_array_sort (sizes, compare_guints);

  bench.daemon_path = daemon_path ? daemon_path : (char *) "build/src/daemon/heartbeatd";
  bench.work_dir = work_dir;
  bench.address = argv[1];
  bench.sizes = sizes;
  bench.calls = (guint) calls;
  bench.in_flight = (guint) in_flight;
  bench.beat_agents = (guint) agents;
  bench.window_s = (guint) window;
  bench.warm_up_s = (guint) warm_up;
  bench.progress = progress;
  bench.startup_size = startup_size ? (guint) startup_size : g_array_index (sizes, guint, sizes->len - 1);
  bench.daemon_pid_file = g_build_filename (work_dir, "daemon.pid", NULL);
  g_mutex_init (&bench.notify_lock);
  if (!no_strace)
    {
      bench.strace_path = strace_path ? g_strdup (strace_path) : g_find_program_in_path ("strace");
      if (bench.strace_path == NULL)
        g_printerr ("state-bench: strace not found: syncs will not be counted (Debian package strace)\n");
    }

  if (!g_file_test (bench.daemon_path, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_printerr ("state-bench: %s is not an executable; build first or pass --daemon\n", bench.daemon_path);
      return 2;
    }
  bench.connection = connect_bus (bench.address, &error);
  if (bench.connection == NULL)
    {
      g_printerr ("state-bench: cannot connect to %s: %s\n", bench.address, error->message);
      return 1;
    }
  bench.connections = g_ptr_array_new_with_free_func (g_object_unref);
  g_ptr_array_add (bench.connections, g_object_ref (bench.connection));
  if (!write_config (&bench, &error) || !notify_open (&bench, &error))
    {
      g_printerr ("state-bench: %s\n", error->message);
      notify_close (&bench);
      return 1;
    }

  g_print ("state-bench: %s on %s, work directory %s\n", bench.daemon_path, bench.address, bench.work_dir);
  print_references ();

  if (!skip_latency || !skip_startup)
    {
      double ready_s = daemon_start (&bench, "state-main", NULL, NULL, &error);

      ok = ready_s >= 0;
      if (ok)
        g_print ("heartbeatd started on an empty store: READY=1 after %.3f s (pid %d)\n",
                 ready_s, (int) bench.daemon_pid);
      if (ok && !skip_latency)
        ok = phase_latency (&bench, &error);
      if (ok && !skip_startup)
        ok = phase_startup (&bench, &error);
      if (daemon_stop (&bench) < 0 && ok)
        {
          ok = FALSE;
          g_set_error (&error, G_IO_ERROR, G_IO_ERROR_FAILED, "heartbeatd did not exit 0 on SIGTERM");
        }
    }
  if (ok && !skip_writes)
    {
      ok = phase_writes (&bench, &error);
      if (daemon_stop (&bench) < 0 && ok)
        {
          ok = FALSE;
          g_set_error (&error, G_IO_ERROR, G_IO_ERROR_FAILED, "heartbeatd did not exit 0 on SIGTERM");
        }
    }
  if (!ok)
    {
      g_printerr ("state-bench: %s\n", error ? error->message : "failed");
      daemon_stop (&bench);
    }
  else
    print_summary (&bench, !skip_latency, !skip_writes, !skip_startup);

  notify_close (&bench);
  g_ptr_array_unref (bench.connections);
  g_object_unref (bench.connection);
  g_free (bench.strace_path);
  g_free (bench.notify_path);
  g_free (bench.daemon_pid_file);
  g_free (bench.daemon_log);
  g_mutex_clear (&bench.notify_lock);
  return ok ? 0 : 1;
}
