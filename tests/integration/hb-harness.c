/* hb-harness.c: a private bus, a heartbeatd under test, and what they say
 *
 * See hb-harness.h. Processes are started with g_spawn_async_with_pipes_and_fds
 * (PID kept, reaped by a child watch), stopped by PID. D-Bus signals are
 * recorded by a filter on the client connection, i.e. in GDBus's worker
 * thread the moment they are read from the socket, so arrival times do not
 * depend on what the test's main loop was doing. sd_notify datagrams are
 * read from a socket the harness binds.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-harness.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gunixsocketaddress.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <sqlite3.h>

const char hb_default_config[] =
  "# heartbeatd.conf written by the integration tests\n"
  "[monitor]\n"
  "check-interval=200ms\n"
  "stale-threshold=5s\n"
  "timeout-threshold=10min\n"
  "stale-warning-only-once=true\n"
  "\n"
  "[limits]\n"
  "agents-per-uid=3\n";

/* ------------------------------------------------------------------ */
/* Small things                                                        */

static void
hb_signal_free (gpointer data)
{
  HbSignal *sig = data;

  g_free (sig->sender);
  g_free (sig->path);
  g_free (sig->interface);
  g_free (sig->member);
  g_clear_pointer (&sig->parameters, g_variant_unref);
  g_free (sig);
}

static void
hb_notify_message_free (gpointer data)
{
  HbNotifyMessage *message = data;

  g_free (message->text);
  g_free (message);
}

static void
hb_child_free (gpointer data)
{
  HbChild *child = data;

  g_clear_handle_id (&child->watch_id, g_source_remove);
  g_free (child->name);
  g_free (child);
}

static void
fail_at (const char *file,
         int         line,
         const char *func,
         const char *message)
{
  g_assertion_message (G_LOG_DOMAIN, file, line, func, message);
}

static void
rm_rf (const char *path)
{
  GStatBuf st;

  if (g_lstat (path, &st) != 0)
    return;
  if (S_ISDIR (st.st_mode))
    {
      g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
      const char *name;

      while (dir && (name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);

          rm_rf (child);
        }
      g_rmdir (path);
    }
  else
    {
      g_unlink (path);
    }
}

/* In the child, before exec: die with the test process, so a failed
 * assertion (which aborts before the teardown) leaves nothing running. */
static void
child_setup (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static void
on_child_exited (GPid     pid,
                 gint     wait_status,
                 gpointer user_data)
{
  HbChild *child = user_data;

  child->exited = TRUE;
  child->wait_status = wait_status;
  child->watch_id = 0;
  g_spawn_close_pid (pid);
  g_main_context_wakeup (NULL);
}

static HbChild *
spawn_child (HbHarness          *h,
             const char         *name,
             const char *const  *argv,
             const char *const  *envp,
             const int          *source_fds,
             const int          *target_fds,
             gsize               n_fds)
{
  g_autoptr(GError) error = NULL;
  HbChild *child = g_new0 (HbChild, 1);
  /* The children's stdout goes to stderr: the test's stdout is TAP, and a
   * line a child prints there (dbusmock logs every call) breaks it. A copy
   * of fd 2, because GLib marks the stdout_fd it is given close-on-exec
   * in the child, which would leave a child given fd 2 itself no stderr. */
  int stdout_fd = dup (STDERR_FILENO);
  gboolean ok;

  child->name = g_strdup (name);
  ok = g_spawn_async_with_pipes_and_fds (NULL, argv, envp,
                                         G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH,
                                         child_setup, NULL,
                                         -1, stdout_fd, -1,
                                         source_fds, target_fds, n_fds,
                                         &child->pid, NULL, NULL, NULL, &error);
  if (stdout_fd >= 0)
    close (stdout_fd);
  if (!ok)
    {
      g_autofree char *cmd = g_strjoinv (" ", (char **) argv);

      g_test_message ("Could not start %s (%s): %s", name, cmd, error->message);
      g_free (child->name);
      g_free (child);
      g_assert_no_error (error);
      return NULL;
    }
  child->watch_id = g_child_watch_add (child->pid, on_child_exited, child);
  g_ptr_array_add (h->children, child);
  return child;
}

static char *
describe_wait_status (int wait_status)
{
  if (WIFEXITED (wait_status))
    return g_strdup_printf ("exit status %d", WEXITSTATUS (wait_status));
  if (WIFSIGNALED (wait_status))
    return g_strdup_printf ("signal %d (%s)", WTERMSIG (wait_status), g_strsignal (WTERMSIG (wait_status)));
  return g_strdup_printf ("wait status 0x%x", wait_status);
}

/* ------------------------------------------------------------------ */
/* Waiting                                                             */

typedef enum {
  WAIT_OK,
  WAIT_TIMED_OUT,
  WAIT_DAEMON_EXITED,
} WaitResult;

static gboolean
on_wait_timeout (gpointer user_data)
{
  gboolean *timed_out = user_data;

  *timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

/* Iterates the main context until @check says yes, the bounded timeout
 * fires, or (unless @daemon_may_exit) the daemon under test exits. Every
 * wait only bounds a failure; under $HB_DAEMON_WRAPPER (valgrind, which
 * runs the daemon 20 to 50 times slower: tools/valgrind.sh) it is four
 * times as long. */
static WaitResult
wait_for (HbHarness *h,
          guint      timeout_ms,
          HbCheck    check,
          gpointer   data,
          gboolean   daemon_may_exit)
{
  gboolean timed_out = FALSE;
  guint timeout_id = g_timeout_add (g_getenv ("HB_DAEMON_WRAPPER") ? timeout_ms * 4 : timeout_ms,
                                    on_wait_timeout, &timed_out);
  WaitResult result;

  for (;;)
    {
      if (check (h, data))
        {
          result = WAIT_OK;
          break;
        }
      if (timed_out)
        {
          result = WAIT_TIMED_OUT;
          break;
        }
      if (!daemon_may_exit && h->daemon && h->daemon->exited)
        {
          /* what it said just before exiting may still be queued */
          while (g_main_context_iteration (NULL, FALSE))
            ;
          result = check (h, data) ? WAIT_OK : WAIT_DAEMON_EXITED;
          break;
        }
      g_main_context_iteration (NULL, TRUE);
    }
  if (!timed_out)
    g_source_remove (timeout_id);
  return result;
}

static gboolean
on_poll_tick (gpointer user_data)
{
  return G_SOURCE_CONTINUE;   /* only wakes the loop up */
}

/* Waits (bounded by HB_WAIT_MS) until @check says yes, asking it again at
 * least every 20 ms: for conditions no event announces. Fails the test on
 * timeout. The daemon may exit meanwhile (the check decides). */
void
hb_harness_wait_until (HbHarness *h,
                       HbCheck    check,
                       gpointer   data)
{
  guint tick = g_timeout_add (20, on_poll_tick, NULL);
  WaitResult result = wait_for (h, HB_WAIT_MS, check, data, TRUE);

  g_source_remove (tick);
  if (result != WAIT_OK)
    fail_at (__FILE__, __LINE__, G_STRFUNC, "timed out waiting for a condition");
}

static void
dump_history (HbHarness *h)
{
  gint64 origin = 0;

  g_mutex_lock (&h->lock);
  for (guint i = 0; i < h->signals->len; i++)
    {
      HbSignal *s = h->signals->pdata[i];
      g_autofree char *args = g_variant_print (s->parameters, FALSE);

      if (origin == 0)
        origin = s->monotonic;
      g_test_message ("  signal #%u +%.1f ms %s.%s %s", i, (s->monotonic - origin) / 1000.0,
                      s->interface, s->member, args);
    }
  g_mutex_unlock (&h->lock);
  for (guint i = 0; i < h->notify->len; i++)
    {
      HbNotifyMessage *m = h->notify->pdata[i];
      g_autofree char *text = g_strescape (m->text, NULL);

      g_test_message ("  notify #%u %s", i, text);
    }
}

static void
fail_wait (HbHarness  *h,
           WaitResult  result,
           const char *what,
           guint       timeout_ms,
           const char *file,
           int         line,
           const char *func)
{
  g_autofree char *message = NULL;

  dump_history (h);
  if (result == WAIT_DAEMON_EXITED)
    {
      g_autofree char *how = describe_wait_status (h->daemon->wait_status);

      message = g_strdup_printf ("heartbeatd exited (%s) while waiting for %s", how, what);
    }
  else
    {
      message = g_strdup_printf ("timed out after %u ms waiting for %s", timeout_ms, what);
    }
  fail_at (file, line, func, message);
}

void
hb_harness_run_for (HbHarness *h,
                    guint      ms)
{
  gboolean done = FALSE;

  g_timeout_add (ms, on_wait_timeout, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
}

/* ------------------------------------------------------------------ */
/* Harness                                                             */

HbHarness *
hb_harness_new (void)
{
  g_autoptr(GError) error = NULL;
  HbHarness *h = g_new0 (HbHarness, 1);

  h->tmpdir = g_dir_make_tmp ("hb-it-XXXXXX", &error);
  g_assert_no_error (error);
  /* uid 65534 must reach the bus socket inside */
  g_assert_cmpint (g_chmod (h->tmpdir, 0755), ==, 0);
  /* removed by hb_harness_free(); kept for a look when a test aborts */
  g_test_message ("working directory %s", h->tmpdir);
  h->state_dir = g_build_filename (h->tmpdir, "state", NULL);
  g_assert_cmpint (g_mkdir (h->state_dir, 0700), ==, 0);
  h->config_path = g_build_filename (h->tmpdir, "heartbeatd.conf", NULL);
  g_mutex_init (&h->lock);
  h->signals = g_ptr_array_new_with_free_func (hb_signal_free);
  h->notify = g_ptr_array_new_with_free_func (hb_notify_message_free);
  h->children = g_ptr_array_new_with_free_func (hb_child_free);
  return h;
}

static void
stop_notify (HbHarness *h)
{
  if (h->notify_source)
    {
      g_source_destroy (h->notify_source);
      g_clear_pointer (&h->notify_source, g_source_unref);
    }
  if (h->notify_socket)
    g_socket_close (h->notify_socket, NULL);
  g_clear_object (&h->notify_socket);
}

void
hb_harness_free (HbHarness *h)
{
  if (h == NULL)
    return;

  /* the daemons first (they would exit 1 when the bus goes), then every
   * other child, then the bus */
  for (guint i = 0; i < h->children->len; i++)
    {
      HbChild *child = h->children->pdata[i];

      if (child != h->bus && g_str_has_prefix (child->name, "heartbeatd"))
        hb_harness_stop_child (h, child);
    }
  for (guint i = 0; i < h->children->len; i++)
    {
      HbChild *child = h->children->pdata[i];

      if (child != h->bus)
        hb_harness_stop_child (h, child);
    }
  hb_harness_stop_bus (h);
  stop_notify (h);

  g_ptr_array_unref (h->children);
  g_ptr_array_unref (h->signals);
  g_ptr_array_unref (h->notify);
  g_mutex_clear (&h->lock);
  rm_rf (h->tmpdir);
  g_free (h->tmpdir);
  g_free (h->state_dir);
  g_free (h->config_path);
  g_free (h->notify_path);
  g_free (h->bus_address);
  g_free (h->bus_extra_config);
  g_free (h);
}

/* ------------------------------------------------------------------ */
/* The bus                                                             */

static char *
bus_config (HbHarness  *h,
            HbBusKind   kind,
            const char *socket_dir)
{
  g_autofree char *dir = g_markup_escape_text (socket_dir, -1);
  GString *xml = g_string_new (NULL);

  g_string_append (xml,
                   "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                   " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                   "<busconfig>\n");
  if (kind == HB_BUS_SESSION)
    {
      g_string_append_printf (xml,
                              "  <type>session</type>\n"
                              "  <listen>unix:dir=%s</listen>\n"
                              "  <auth>EXTERNAL</auth>\n"
                              "  <policy context=\"default\">\n"
                              "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
                              "    <allow eavesdrop=\"true\"/>\n"
                              "    <allow own=\"*\"/>\n"
                              "    <allow user=\"*\"/>\n"
                              "  </policy>\n", dir);
    }
  else
    {
      const char *source_root = g_getenv ("HB_SOURCE_ROOT");
      g_autofree char *policy = NULL;
      g_autofree char *escaped = NULL;

      g_assert_nonnull (source_root);
      policy = g_build_filename (source_root, "data", "org.heartbeat.Monitor1.conf", NULL);
      g_assert_true (g_file_test (policy, G_FILE_TEST_IS_REGULAR));
      escaped = g_markup_escape_text (policy, -1);

      /* /usr/share/dbus-1/system.conf of Debian 12, without what needs a
       * real system (user, fork, pidfile, syslog, servicehelper), and
       * with the repo's policy where system.d/ would supply it */
      g_string_append_printf (xml,
                              "  <type>system</type>\n"
                              "  <listen>unix:dir=%s</listen>\n"
                              "  <auth>EXTERNAL</auth>\n"
                              "  <policy context=\"default\">\n"
                              "    <allow user=\"*\"/>\n"
                              "    <deny own=\"*\"/>\n"
                              "    <deny send_type=\"method_call\"/>\n"
                              "    <allow send_type=\"signal\"/>\n"
                              "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
                              "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
                              "    <allow receive_type=\"method_call\"/>\n"
                              "    <allow receive_type=\"method_return\"/>\n"
                              "    <allow receive_type=\"error\"/>\n"
                              "    <allow receive_type=\"signal\"/>\n"
                              "    <allow send_destination=\"org.freedesktop.DBus\"\n"
                              "           send_interface=\"org.freedesktop.DBus\"/>\n"
                              "    <allow send_destination=\"org.freedesktop.DBus\"\n"
                              "           send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
                              "    <allow send_destination=\"org.freedesktop.DBus\"\n"
                              "           send_interface=\"org.freedesktop.DBus.Properties\"/>\n"
                              "    <deny send_destination=\"org.freedesktop.DBus\"\n"
                              "          send_interface=\"org.freedesktop.DBus\"\n"
                              "          send_member=\"UpdateActivationEnvironment\"/>\n"
                              "    <deny send_destination=\"org.freedesktop.DBus\"\n"
                              "          send_interface=\"org.freedesktop.DBus.Debug.Stats\"/>\n"
                              "  </policy>\n"
                              "  <policy user=\"root\">\n"
                              "    <allow send_destination=\"org.freedesktop.DBus\"\n"
                              "           send_interface=\"org.freedesktop.DBus.Monitoring\"/>\n"
                              "  </policy>\n"
                              "  <include>%s</include>\n", dir, escaped);
    }
  if (h->bus_extra_config)
    g_string_append (xml, h->bus_extra_config);
  g_string_append (xml, "</busconfig>\n");
  return g_string_free (xml, FALSE);
}

typedef struct {
  GString *line;
  gboolean done;   /* newline or EOF seen */
} AddressReader;

static gboolean
on_address_readable (int          fd,
                     GIOCondition condition,
                     gpointer     user_data)
{
  AddressReader *reader = user_data;
  char buffer[512];
  gssize n = read (fd, buffer, sizeof buffer);

  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return G_SOURCE_CONTINUE;
  if (n <= 0)
    {
      reader->done = TRUE;
      return G_SOURCE_REMOVE;
    }
  g_string_append_len (reader->line, buffer, n);
  if (memchr (buffer, '\n', n))
    {
      reader->done = TRUE;
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
check_address_read (HbHarness *h,
                    gpointer   data)
{
  AddressReader *reader = data;

  return reader->done || h->bus->exited;
}

static GDBusMessage *
client_filter (GDBusConnection *connection,
               GDBusMessage    *message,
               gboolean         incoming,
               gpointer         user_data)
{
  HbHarness *h = user_data;
  HbSignal *sig;
  GVariant *body;

  if (!incoming || g_dbus_message_get_message_type (message) != G_DBUS_MESSAGE_TYPE_SIGNAL)
    return message;

  sig = g_new0 (HbSignal, 1);
  sig->realtime = g_get_real_time ();
  sig->monotonic = g_get_monotonic_time ();
  sig->sender = g_strdup (g_dbus_message_get_sender (message));
  sig->path = g_strdup (g_dbus_message_get_path (message));
  sig->interface = g_strdup (g_dbus_message_get_interface (message));
  sig->member = g_strdup (g_dbus_message_get_member (message));
  body = g_dbus_message_get_body (message);
  sig->parameters = body ? g_variant_ref (body) : g_variant_ref_sink (g_variant_new ("()"));

  g_mutex_lock (&h->lock);
  g_ptr_array_add (h->signals, sig);
  g_mutex_unlock (&h->lock);
  g_main_context_wakeup (NULL);
  return message;
}

static void
add_match (GDBusConnection *connection,
           const char      *rule)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "AddMatch",
                                       g_variant_new ("(s)", rule), NULL,
                                       G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
  g_assert_no_error (error);
}

static gboolean
on_notify_readable (GSocket     *socket,
                    GIOCondition condition,
                    gpointer     user_data)
{
  HbHarness *h = user_data;

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      char buffer[4096];
      gssize n = g_socket_receive (socket, buffer, sizeof buffer - 1, NULL, &error);
      HbNotifyMessage *message;

      if (n < 0)
        {
          if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            g_test_message ("Reading the notify socket: %s", error->message);
          break;
        }
      buffer[n] = '\0';
      message = g_new0 (HbNotifyMessage, 1);
      message->text = g_strdup (buffer);
      message->realtime = g_get_real_time ();
      message->monotonic = g_get_monotonic_time ();
      g_ptr_array_add (h->notify, message);
    }
  return G_SOURCE_CONTINUE;
}

static void
start_notify (HbHarness *h)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketAddress) address = NULL;

  h->notify_path = g_build_filename (h->tmpdir, "notify", NULL);
  h->notify_socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_DATAGRAM,
                                   G_SOCKET_PROTOCOL_DEFAULT, &error);
  g_assert_no_error (error);
  address = g_unix_socket_address_new (h->notify_path);
  g_socket_bind (h->notify_socket, address, FALSE, &error);
  g_assert_no_error (error);
  g_socket_set_blocking (h->notify_socket, FALSE);
  h->notify_source = g_socket_create_source (h->notify_socket, G_IO_IN, NULL);
  g_source_set_callback (h->notify_source, G_SOURCE_FUNC (on_notify_readable), h, NULL);
  g_source_attach (h->notify_source, NULL);
}

gboolean
hb_harness_start_bus (HbHarness *h,
                      HbBusKind  kind)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dbus_daemon = g_find_program_in_path ("dbus-daemon");
  g_autofree char *socket_dir = NULL;
  g_autofree char *config = NULL;
  g_autofree char *config_path = NULL;
  g_autofree char *config_arg = NULL;
  AddressReader reader = { 0 };
  int pipe_fds[2];
  const int target_fds[] = { 3 };
  int source_fds[1];
  guint source_id;
  WaitResult result;

  if (dbus_daemon == NULL)
    {
      g_test_skip ("dbus-daemon is not installed");
      return FALSE;
    }
  g_assert_null (h->bus);

  h->bus_kind = kind;
  socket_dir = g_build_filename (h->tmpdir, "bus", NULL);
  g_assert_cmpint (g_mkdir (socket_dir, 0755), ==, 0);
  config = bus_config (h, kind, socket_dir);
  config_path = g_build_filename (h->tmpdir, "bus.conf", NULL);
  g_file_set_contents (config_path, config, -1, &error);
  g_assert_no_error (error);

  g_unix_open_pipe (pipe_fds, FD_CLOEXEC, &error);
  g_assert_no_error (error);
  source_fds[0] = pipe_fds[1];
  config_arg = g_strdup_printf ("--config-file=%s", config_path);
  {
    const char *argv[] = { dbus_daemon, config_arg, "--nofork", "--print-address=3", NULL };

    h->bus = spawn_child (h, "dbus-daemon", argv, NULL, source_fds, target_fds, 1);
  }
  close (pipe_fds[1]);

  reader.line = g_string_new (NULL);
  source_id = g_unix_fd_add (pipe_fds[0], G_IO_IN | G_IO_HUP | G_IO_ERR, on_address_readable, &reader);
  result = wait_for (h, HB_WAIT_MS, check_address_read, &reader, TRUE);
  if (!reader.done)
    g_source_remove (source_id);
  close (pipe_fds[0]);
  if (result != WAIT_OK || h->bus->exited || reader.line->len == 0)
    {
      g_test_message ("dbus-daemon config:\n%s", config);
      g_string_free (reader.line, TRUE);
      fail_at (__FILE__, __LINE__, G_STRFUNC, "dbus-daemon did not print its address");
      return FALSE;
    }
  h->bus_address = g_strstrip (g_string_free (reader.line, FALSE));
  g_test_message ("dbus-daemon (pid %d) listens at %s", h->bus->pid, h->bus_address);

  h->client = g_dbus_connection_new_for_address_sync (h->bus_address,
                                                      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                      G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                      NULL, NULL, &error);
  g_assert_no_error (error);
  h->filter_id = g_dbus_connection_add_filter (h->client, client_filter, h, NULL);
  add_match (h->client, "type='signal',path='" HB_PATH "'");
  add_match (h->client, "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged'");

  start_notify (h);
  return TRUE;
}

void
hb_harness_stop_bus (HbHarness *h)
{
  if (h->client)
    {
      g_dbus_connection_close_sync (h->client, NULL, NULL);
      g_dbus_connection_remove_filter (h->client, h->filter_id);
      h->filter_id = 0;
      g_clear_object (&h->client);
    }
  if (h->bus)
    hb_harness_stop_child (h, h->bus);
}

/* ------------------------------------------------------------------ */
/* Processes                                                           */

static gboolean
check_child_exited (HbHarness *h,
                    gpointer   data)
{
  HbChild *child = data;

  return child->exited;
}

int
hb_harness_wait_exit (HbHarness *h,
                      HbChild   *child,
                      guint      timeout_ms)
{
  if (wait_for (h, timeout_ms, check_child_exited, child, TRUE) != WAIT_OK)
    {
      g_autofree char *message = g_strdup_printf ("%s (pid %d) did not exit within %u ms",
                                                  child->name, child->pid, timeout_ms);

      fail_at (__FILE__, __LINE__, G_STRFUNC, message);
    }
  return child->wait_status;
}

void
hb_harness_stop_child (HbHarness *h,
                       HbChild   *child)
{
  if (child == NULL || child->exited)
    return;
  kill (child->pid, SIGTERM);
  if (wait_for (h, HB_WAIT_MS, check_child_exited, child, TRUE) == WAIT_OK)
    return;
  g_test_message ("%s (pid %d) ignored SIGTERM; killing it", child->name, child->pid);
  kill (child->pid, SIGKILL);
  if (wait_for (h, HB_WAIT_MS, check_child_exited, child, TRUE) != WAIT_OK)
    g_test_message ("%s (pid %d) did not die", child->name, child->pid);
}

HbChild *
hb_harness_spawn (HbHarness         *h,
                  const char *const *argv)
{
  g_auto(GStrv) envp = g_get_environ ();

  if (h->bus_address)
    envp = g_environ_setenv (envp, "DBUS_SESSION_BUS_ADDRESS", h->bus_address, TRUE);
  return spawn_child (h, argv[0], argv, (const char *const *) envp, NULL, NULL, 0);
}

void
hb_harness_write_config (HbHarness  *h,
                         const char *text)
{
  g_autoptr(GError) error = NULL;

  g_file_set_contents (h->config_path, text, -1, &error);
  g_assert_no_error (error);
}

HbChild *
hb_harness_spawn_daemon (HbHarness  *h,
                         const char *state_dir,
                         guint64     watchdog_usec)
{
  const char *heartbeatd = g_getenv ("HEARTBEATD");
  g_auto(GStrv) envp = g_get_environ ();
  g_autofree char *xdg_state = g_build_filename (h->tmpdir, "xdg-state", NULL);
  g_autofree char *name = NULL;
  HbChild *child;

  if (heartbeatd == NULL || !g_file_test (heartbeatd, G_FILE_TEST_IS_EXECUTABLE))
    fail_at (__FILE__, __LINE__, G_STRFUNC,
             "$HEARTBEATD must name the built heartbeatd (meson test sets it)");
  g_assert_nonnull (h->bus_address);
  g_assert_true (g_file_test (h->config_path, G_FILE_TEST_IS_REGULAR));

  if (h->bus_kind == HB_BUS_SYSTEM)
    {
      envp = g_environ_setenv (envp, "DBUS_SYSTEM_BUS_ADDRESS", h->bus_address, TRUE);
      envp = g_environ_unsetenv (envp, "DBUS_SESSION_BUS_ADDRESS");
    }
  else
    {
      envp = g_environ_setenv (envp, "DBUS_SESSION_BUS_ADDRESS", h->bus_address, TRUE);
      envp = g_environ_unsetenv (envp, "DBUS_SYSTEM_BUS_ADDRESS");
    }
  envp = g_environ_setenv (envp, "NOTIFY_SOCKET", h->notify_path, TRUE);
  envp = g_environ_unsetenv (envp, "WATCHDOG_PID");
  if (watchdog_usec > 0)
    {
      g_autofree char *usec = g_strdup_printf ("%" G_GUINT64_FORMAT, watchdog_usec);

      envp = g_environ_setenv (envp, "WATCHDOG_USEC", usec, TRUE);
    }
  else
    {
      envp = g_environ_unsetenv (envp, "WATCHDOG_USEC");
    }
  envp = g_environ_unsetenv (envp, "STATE_DIRECTORY");
  envp = g_environ_setenv (envp, "XDG_STATE_HOME", xdg_state, TRUE);
  /* criticals are bugs; warnings are how it tells an admin about a bad
   * configuration, which some tests provoke on purpose */
  envp = g_environ_setenv (envp, "G_DEBUG", "fatal-criticals", TRUE);
  envp = g_environ_setenv (envp, "GSETTINGS_BACKEND", "memory", TRUE);
  envp = g_environ_setenv (envp, "GIO_USE_VFS", "local", TRUE);

  {
    /* several daemons may run at once: HTTP only where a test asks */
    g_autofree char *http_port = g_strdup_printf ("%u", h->http_port);
    const char *argv[] = {
      heartbeatd,
      h->bus_kind == HB_BUS_SYSTEM ? "--system" : "--session",
      "--config", h->config_path,
      "--state-dir", state_dir ? state_dir : h->state_dir,
      "--http-port", http_port,
      NULL
    };

    /* $HB_DAEMON_WRAPPER (e.g. "valgrind --log-file=…") runs in front of
     * the daemon: see tools/valgrind.sh */
    const char *wrapper = g_getenv ("HB_DAEMON_WRAPPER");
    g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
    g_auto(GStrv) wrapped = NULL;

    if (wrapper && *wrapper)
      {
        g_auto(GStrv) words = g_strsplit (wrapper, " ", -1);

        for (gsize i = 0; words[i]; i++)
          if (*words[i])
            g_strv_builder_add (builder, words[i]);
      }
    g_strv_builder_addv (builder, argv);
    wrapped = g_strv_builder_end (builder);
    child = spawn_child (h, "heartbeatd", (const char *const *) wrapped, (const char *const *) envp, NULL, NULL, 0);
  }
  name = g_strdup_printf ("heartbeatd[%d]", child->pid);
  g_free (child->name);
  child->name = g_steal_pointer (&name);
  h->daemon = child;
  return child;
}

char *
hb_harness_name_owner (HbHarness  *h,
                       const char *name)
{
  g_autoptr(GVariant) reply = g_dbus_connection_call_sync (h->client, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                                           "org.freedesktop.DBus", "GetNameOwner",
                                                           g_variant_new ("(s)", name), G_VARIANT_TYPE ("(s)"),
                                                           G_DBUS_CALL_FLAGS_NONE, HB_WAIT_MS, NULL, NULL);
  char *owner = NULL;

  if (reply)
    g_variant_get (reply, "(s)", &owner);
  return owner;
}

static guint32
name_owner_pid (HbHarness  *h,
                const char *name)
{
  g_autofree char *unique = hb_harness_name_owner (h, name);
  g_autoptr(GVariant) pid = NULL;
  guint32 value = 0;

  if (unique == NULL)
    return 0;
  pid = g_dbus_connection_call_sync (h->client, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "GetConnectionUnixProcessID",
                                     g_variant_new ("(s)", unique), G_VARIANT_TYPE ("(u)"),
                                     G_DBUS_CALL_FLAGS_NONE, 10000, NULL, NULL);
  if (pid)
    g_variant_get (pid, "(u)", &value);
  return value;
}

void
hb_harness_start_daemon (HbHarness *h,
                         guint64    watchdog_usec)
{
  guint cursor = hb_harness_notify_cursor (h);

  hb_harness_spawn_daemon (h, NULL, watchdog_usec);
  hb_wait_notify (h, &cursor, "READY=1");
  /* right away, before anything else runs: who owns the name now */
  h->ready_owner_pid = name_owner_pid (h, HB_NAME);
  h->ready_index = cursor - 1;
}

gboolean
hb_harness_start_default (HbHarness *h)
{
  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return FALSE;
  hb_harness_write_config (h, hb_default_config);
  hb_harness_start_daemon (h, 0);
  return TRUE;
}

void
hb_harness_signal_daemon (HbHarness *h,
                          int        signum)
{
  g_assert_nonnull (h->daemon);
  g_assert_false (h->daemon->exited);
  g_assert_cmpint (kill (h->daemon->pid, signum), ==, 0);
}

typedef struct {
  const char *name;
  guint       cursor;
} NameWait;

static gboolean
check_name_owned (HbHarness *h,
                  gpointer   data)
{
  NameWait *wait = data;
  gboolean found = FALSE;

  g_mutex_lock (&h->lock);
  for (; wait->cursor < h->signals->len && !found; wait->cursor++)
    {
      HbSignal *s = h->signals->pdata[wait->cursor];
      const char *name, *new_owner;

      if (g_strcmp0 (s->member, "NameOwnerChanged") != 0 ||
          !g_variant_is_of_type (s->parameters, G_VARIANT_TYPE ("(sss)")))
        continue;
      g_variant_get (s->parameters, "(&s&s&s)", &name, NULL, &new_owner);
      found = strcmp (name, wait->name) == 0 && *new_owner != '\0';
    }
  g_mutex_unlock (&h->lock);
  return found;
}

void
hb_harness_wait_name_owned (HbHarness  *h,
                            const char *name)
{
  NameWait wait = { name, hb_harness_signal_cursor (h) };
  g_autoptr(GVariant) has = NULL;
  gboolean owned = FALSE;
  WaitResult result;

  has = g_dbus_connection_call_sync (h->client, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "NameHasOwner",
                                     g_variant_new ("(s)", name), G_VARIANT_TYPE ("(b)"),
                                     G_DBUS_CALL_FLAGS_NONE, 10000, NULL, NULL);
  if (has)
    g_variant_get (has, "(b)", &owned);
  if (owned)
    return;
  result = wait_for (h, HB_WAIT_MS, check_name_owned, &wait, TRUE);
  if (result != WAIT_OK)
    {
      g_autofree char *what = g_strdup_printf ("an owner of %s", name);

      fail_wait (h, result, what, HB_WAIT_MS, __FILE__, __LINE__, G_STRFUNC);
    }
}

HbChild *
hb_harness_start_polkit_mock (HbHarness *h)
{
  const char *python = "/usr/bin/python3";
  const char *probe[] = { python, "-c", "import dbusmock", NULL };
  const char *argv[] = { python, "-m", "dbusmock", "--session", "--template", "polkitd", NULL };
  g_autoptr(GError) error = NULL;
  int wait_status = 0;
  HbChild *mock;

  /* the first python3 on PATH may lack Debian's modules */
  if (!g_file_test (python, G_FILE_TEST_IS_EXECUTABLE) ||
      !g_spawn_sync (NULL, (char **) probe, NULL, G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                     NULL, NULL, NULL, NULL, &wait_status, &error) ||
      !g_spawn_check_wait_status (wait_status, NULL))
    {
      g_test_skip ("python3-dbusmock is not installed for /usr/bin/python3");
      return NULL;
    }
  mock = hb_harness_spawn (h, argv);
  g_free (mock->name);
  mock->name = g_strdup ("dbusmock polkitd");
  hb_harness_wait_name_owned (h, "org.freedesktop.PolicyKit1");
  return mock;
}

/* ------------------------------------------------------------------ */
/* Calls                                                               */

GVariant *
hb_harness_call (HbHarness       *h,
                 GDBusConnection *connection,
                 const char      *method,
                 GVariant        *parameters,
                 const char      *reply_type,
                 GError         **error)
{
  return g_dbus_connection_call_sync (connection ? connection : h->client,
                                      HB_NAME, HB_PATH, HB_IFACE, method, parameters,
                                      reply_type ? G_VARIANT_TYPE (reply_type) : NULL,
                                      G_DBUS_CALL_FLAGS_NO_AUTO_START, 10000, NULL, error);
}

GVariant *
hb_harness_call_ok_impl (HbHarness       *h,
                         GDBusConnection *connection,
                         const char      *method,
                         GVariant        *parameters,
                         const char      *reply_type,
                         const char      *file,
                         int              line,
                         const char      *func)
{
  g_autoptr(GError) error = NULL;
  GVariant *reply = hb_harness_call (h, connection, method, parameters, reply_type, &error);

  if (reply == NULL)
    {
      g_autofree char *remote = g_dbus_error_get_remote_error (error);
      g_autofree char *message = g_strdup_printf ("%s failed: %s (%s)", method, error->message,
                                                  remote ? remote : "local error");

      fail_at (file, line, func, message);
    }
  return reply;
}

void
hb_harness_call_error_impl (HbHarness       *h,
                            GDBusConnection *connection,
                            const char      *method,
                            GVariant        *parameters,
                            const char      *error_name,
                            const char      *file,
                            int              line,
                            const char      *func)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = hb_harness_call (h, connection, method, parameters, NULL, &error);
  g_autofree char *expected = strchr (error_name, '.') ? g_strdup (error_name)
                                                       : g_strconcat (HB_ERROR_PREFIX, error_name, NULL);
  g_autofree char *remote = NULL;
  g_autofree char *message = NULL;

  if (reply != NULL)
    {
      g_autofree char *printed = g_variant_print (reply, TRUE);

      message = g_strdup_printf ("%s succeeded with %s, expected the error %s", method, printed, expected);
      fail_at (file, line, func, message);
      return;
    }
  remote = g_dbus_error_get_remote_error (error);
  g_dbus_error_strip_remote_error (error);
  if (g_strcmp0 (remote, expected) != 0)
    {
      message = g_strdup_printf ("%s failed with %s (%s), expected %s", method,
                                 remote ? remote : "a local error", error->message, expected);
      fail_at (file, line, func, message);
      return;
    }
  /* the error message says what was wrong */
  if (error->message == NULL || *error->message == '\0')
    {
      message = g_strdup_printf ("%s failed with %s but an empty message", method, expected);
      fail_at (file, line, func, message);
      return;
    }
  g_test_message ("%s → %s: %s", method, remote, error->message);
}

/* The ids saved in the daemon's database (agents.db in its state
 * directory), sorted and separated by spaces: what a restart brings back.
 * Read as another reader of the WAL database, while the daemon runs. */
char *
hb_harness_saved_agents (HbHarness *h)
{
  g_autofree char *path = g_build_filename (h->state_dir, "agents.db", NULL);
  g_autoptr(GString) ids = g_string_new (NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  sqlite3_busy_timeout (db, HB_WAIT_MS);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT id FROM agents ORDER BY id", -1, &stmt, NULL), ==, SQLITE_OK);
  while (sqlite3_step (stmt) == SQLITE_ROW)
    g_string_append_printf (ids, "%s%s", ids->len ? " " : "", sqlite3_column_text (stmt, 0));
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  return g_string_free (g_steal_pointer (&ids), FALSE);
}

GVariant *
hb_harness_get_agent (HbHarness  *h,
                      const char *id)
{
  g_autoptr(GVariant) reply = hb_call_ok (h, NULL, "GetAgent", g_variant_new ("(s)", id), "(a{sv})");
  GVariant *agent = NULL;

  g_variant_get (reply, "(@a{sv})", &agent);
  return agent;
}

GVariant *
hb_harness_get_property (HbHarness  *h,
                         const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  GVariant *value = NULL;

  reply = g_dbus_connection_call_sync (h->client, HB_NAME, HB_PATH,
                                       "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", HB_IFACE, name), G_VARIANT_TYPE ("(v)"),
                                       G_DBUS_CALL_FLAGS_NO_AUTO_START, 10000, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(v)", &value);
  return value;
}

GDBusConnection *
hb_harness_connect (HbHarness *h)
{
  g_autoptr(GError) error = NULL;
  GDBusConnection *connection;

  connection = g_dbus_connection_new_for_address_sync (h->bus_address,
                                                       G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                       G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                       NULL, NULL, &error);
  g_assert_no_error (error);
  return connection;
}

int
hb_harness_run_as_nobody (HbHarness          *h,
                          char              **out_stdout,
                          char              **out_stderr,
                          const char *const  *args)
{
  g_autofree char *setpriv = g_find_program_in_path ("setpriv");
  g_autofree char *gdbus = g_find_program_in_path ("gdbus");
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) argv = NULL;
  g_autofree char *child_stdout = NULL;
  g_autofree char *child_stderr = NULL;
  g_autofree char *cmd = NULL;
  const char *envp[] = { "PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C", "HOME=/", NULL };
  int wait_status = 0;

  if (setpriv == NULL || gdbus == NULL)
    {
      g_test_skip ("setpriv or gdbus is not installed");
      return -1;
    }

  g_strv_builder_add_many (builder, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                           gdbus, "call", "--address", h->bus_address, "--timeout", "10", NULL);
  for (guint i = 0; args[i]; i++)
    g_strv_builder_add (builder, args[i]);
  argv = g_strv_builder_end (builder);
  cmd = g_strjoinv (" ", argv);

  /* gdbus call is bounded by its own --timeout */
  g_spawn_sync (NULL, argv, (char **) envp, G_SPAWN_DEFAULT, child_setup, NULL,
                &child_stdout, &child_stderr, &wait_status, &error);
  g_assert_no_error (error);
  g_test_message ("uid 65534: %s → %s%s", cmd,
                  WIFEXITED (wait_status) && WEXITSTATUS (wait_status) == 0 ? child_stdout : "failed: ",
                  WIFEXITED (wait_status) && WEXITSTATUS (wait_status) == 0 ? "" : child_stderr);
  if (out_stdout)
    *out_stdout = g_steal_pointer (&child_stdout);
  if (out_stderr)
    *out_stderr = g_steal_pointer (&child_stderr);
  if (!WIFEXITED (wait_status))
    return 128 + (WIFSIGNALED (wait_status) ? WTERMSIG (wait_status) : 0);
  return WEXITSTATUS (wait_status);
}

int
hb_harness_nobody_call (HbHarness  *h,
                        char      **out_stderr,
                        const char *method,
                        ...)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_autofree char *full_method = g_strconcat (HB_IFACE ".", method, NULL);
  g_auto(GStrv) args = NULL;
  const char *arg;
  va_list ap;

  g_strv_builder_add_many (builder, "--dest", HB_NAME, "--object-path", HB_PATH,
                           "--method", full_method, NULL);
  va_start (ap, method);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_strv_builder_add (builder, arg);
  va_end (ap);
  args = g_strv_builder_end (builder);
  return hb_harness_run_as_nobody (h, NULL, out_stderr, (const char *const *) args);
}

/* ------------------------------------------------------------------ */
/* Signals                                                             */

guint
hb_harness_signal_cursor (HbHarness *h)
{
  guint len;

  g_mutex_lock (&h->lock);
  len = h->signals->len;
  g_mutex_unlock (&h->lock);
  return len;
}

static gboolean
string_arg_matches (GVariant   *parameters,
                    gsize       index,
                    const char *expected)
{
  g_autoptr(GVariant) child = NULL;

  if (expected == NULL)
    return TRUE;
  if (index >= g_variant_n_children (parameters))
    return FALSE;
  child = g_variant_get_child_value (parameters, index);
  return g_variant_is_of_type (child, G_VARIANT_TYPE_STRING) &&
         strcmp (g_variant_get_string (child, NULL), expected) == 0;
}

const HbSignal *
hb_harness_find_signal (HbHarness  *h,
                        guint       from,
                        const char *member,
                        const char *arg0,
                        const char *arg1,
                        const char *arg2,
                        guint      *out_index)
{
  const HbSignal *found = NULL;

  g_mutex_lock (&h->lock);
  for (guint i = from; i < h->signals->len; i++)
    {
      HbSignal *s = h->signals->pdata[i];

      if (g_strcmp0 (s->member, member) == 0 &&
          string_arg_matches (s->parameters, 0, arg0) &&
          string_arg_matches (s->parameters, 1, arg1) &&
          string_arg_matches (s->parameters, 2, arg2))
        {
          found = s;
          if (out_index)
            *out_index = i;
          break;
        }
    }
  g_mutex_unlock (&h->lock);
  return found;
}

typedef struct {
  guint           from;
  const char     *member;
  const char     *args[3];
  const HbSignal *found;
  guint           index;
} SignalWait;

static gboolean
check_signal (HbHarness *h,
              gpointer   data)
{
  SignalWait *wait = data;

  wait->found = hb_harness_find_signal (h, wait->from, wait->member,
                                        wait->args[0], wait->args[1], wait->args[2], &wait->index);
  return wait->found != NULL;
}

const HbSignal *
hb_harness_wait_signal_impl (HbHarness  *h,
                             guint      *cursor,
                             const char *member,
                             const char *arg0,
                             const char *arg1,
                             const char *arg2,
                             guint       timeout_ms,
                             const char *file,
                             int         line,
                             const char *func)
{
  SignalWait wait = { *cursor, member, { arg0, arg1, arg2 }, NULL, 0 };
  WaitResult result = wait_for (h, timeout_ms, check_signal, &wait, FALSE);

  if (result != WAIT_OK)
    {
      g_autofree char *what = g_strdup_printf ("the signal %s(%s, %s, %s)", member,
                                               arg0 ? arg0 : "*", arg1 ? arg1 : "*", arg2 ? arg2 : "*");

      fail_wait (h, result, what, timeout_ms, file, line, func);
      return NULL;
    }
  *cursor = wait.index + 1;
  return wait.found;
}

typedef struct {
  guint       from;
  const char *property;
  GVariant   *value;
  guint       index;
} PropertyWait;

static gboolean
check_property (HbHarness *h,
                gpointer   data)
{
  PropertyWait *wait = data;
  guint index;

  while (hb_harness_find_signal (h, wait->from, "PropertiesChanged", HB_IFACE, NULL, NULL, &index))
    {
      HbSignal *s;
      g_autoptr(GVariant) changed = NULL;

      g_mutex_lock (&h->lock);
      s = h->signals->pdata[index];
      changed = g_variant_get_child_value (s->parameters, 1);
      g_mutex_unlock (&h->lock);
      wait->from = index + 1;
      wait->value = g_variant_lookup_value (changed, wait->property, NULL);
      if (wait->value)
        {
          wait->index = index;
          return TRUE;
        }
    }
  return FALSE;
}

GVariant *
hb_harness_wait_property_impl (HbHarness  *h,
                               guint      *cursor,
                               const char *property,
                               const char *file,
                               int         line,
                               const char *func)
{
  PropertyWait wait = { *cursor, property, NULL, 0 };
  WaitResult result = wait_for (h, HB_WAIT_MS, check_property, &wait, FALSE);

  if (result != WAIT_OK)
    {
      g_autofree char *what = g_strdup_printf ("PropertiesChanged of %s", property);

      fail_wait (h, result, what, HB_WAIT_MS, file, line, func);
      return NULL;
    }
  *cursor = wait.index + 1;
  return wait.value;
}

/* ------------------------------------------------------------------ */
/* sd_notify                                                           */

guint
hb_harness_notify_cursor (HbHarness *h)
{
  return h->notify->len;
}

void
hb_harness_read_notify (HbHarness *h,
                        gboolean   read)
{
  g_assert_nonnull (h->notify_socket);
  if (!read && h->notify_source)
    {
      g_source_destroy (h->notify_source);
      g_clear_pointer (&h->notify_source, g_source_unref);
    }
  else if (read && h->notify_source == NULL)
    {
      h->notify_source = g_socket_create_source (h->notify_socket, G_IO_IN, NULL);
      g_source_set_callback (h->notify_source, G_SOURCE_FUNC (on_notify_readable), h, NULL);
      g_source_attach (h->notify_source, NULL);
    }
}

static gboolean
message_has_line (const HbNotifyMessage *message,
                  const char            *line)
{
  g_auto(GStrv) lines = g_strsplit (message->text, "\n", -1);
  gboolean prefix = g_str_has_suffix (line, "=");

  for (guint i = 0; lines[i]; i++)
    if (prefix ? g_str_has_prefix (lines[i], line) : strcmp (lines[i], line) == 0)
      return TRUE;
  return FALSE;
}

typedef struct {
  guint       from;
  const char *line;
  guint       index;
} NotifyWait;

static gboolean
check_notify (HbHarness *h,
              gpointer   data)
{
  NotifyWait *wait = data;

  for (guint i = wait->from; i < h->notify->len; i++)
    {
      if (message_has_line (h->notify->pdata[i], wait->line))
        {
          wait->index = i;
          return TRUE;
        }
    }
  return FALSE;
}

const HbNotifyMessage *
hb_harness_wait_notify_impl (HbHarness  *h,
                             guint      *cursor,
                             const char *line,
                             const char *file,
                             int         line_no,
                             const char *func)
{
  NotifyWait wait = { *cursor, line, 0 };
  WaitResult result = wait_for (h, HB_WAIT_MS, check_notify, &wait, FALSE);

  if (result != WAIT_OK)
    {
      g_autofree char *what = g_strdup_printf ("the notify message %s", line);

      fail_wait (h, result, what, HB_WAIT_MS, file, line_no, func);
      return NULL;
    }
  *cursor = wait.index + 1;
  return h->notify->pdata[wait.index];
}

const char *
hb_notify_message_get (const HbNotifyMessage *message,
                       const char            *prefix,
                       char                 **value)
{
  g_auto(GStrv) lines = g_strsplit (message->text, "\n", -1);

  *value = NULL;
  for (guint i = 0; lines[i]; i++)
    {
      if (g_str_has_prefix (lines[i], prefix))
        {
          *value = g_strdup (lines[i] + strlen (prefix));
          break;
        }
    }
  return *value;
}

/* ------------------------------------------------------------------ */
/* Dictionaries                                                        */

GVariant *
hb_dict_value (GVariant   *dict,
               const char *key,
               const char *type)
{
  GVariant *value;

  g_assert_true (g_variant_is_of_type (dict, G_VARIANT_TYPE_VARDICT));
  value = g_variant_lookup_value (dict, key, NULL);
  if (value == NULL)
    {
      g_autofree char *printed = g_variant_print (dict, TRUE);

      g_test_message ("no key “%s” in %s", key, printed);
    }
  g_assert_nonnull (value);
  if (!g_variant_is_of_type (value, G_VARIANT_TYPE (type)))
    g_test_message ("“%s” is of type %s, not %s", key, g_variant_get_type_string (value), type);
  g_assert_true (g_variant_is_of_type (value, G_VARIANT_TYPE (type)));
  return value;
}

const char *
hb_dict_string (GVariant   *dict,
                const char *key)
{
  g_autoptr(GVariant) value = hb_dict_value (dict, key, "s");
  const char *string = NULL;

  /* the string lives as long as @dict */
  g_variant_lookup (dict, key, "&s", &string);
  return string;
}

guint64
hb_dict_uint64 (GVariant   *dict,
                const char *key)
{
  g_autoptr(GVariant) value = hb_dict_value (dict, key, "t");

  return g_variant_get_uint64 (value);
}

guint32
hb_dict_uint32 (GVariant   *dict,
                const char *key)
{
  g_autoptr(GVariant) value = hb_dict_value (dict, key, "u");

  return g_variant_get_uint32 (value);
}

gboolean
hb_dict_boolean (GVariant   *dict,
                 const char *key)
{
  g_autoptr(GVariant) value = hb_dict_value (dict, key, "b");

  return g_variant_get_boolean (value);
}

void
hb_assert_dict_equal (GVariant           *expected,
                      GVariant           *actual,
                      const char *const  *ignore)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;
  guint n_expected = 0, n_actual = 0;

  g_variant_iter_init (&iter, expected);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_autoptr(GVariant) owned = value;
      g_autoptr(GVariant) other = NULL;

      if (ignore && g_strv_contains (ignore, key))
        continue;
      n_expected++;
      other = g_variant_lookup_value (actual, key, NULL);
      if (other == NULL || !g_variant_equal (value, other))
        {
          g_autofree char *a = g_variant_print (value, TRUE);
          g_autofree char *b = other ? g_variant_print (other, TRUE) : g_strdup ("(missing)");

          g_test_message ("key “%s”: expected %s, got %s", key, a, b);
        }
      if (other && g_variant_is_of_type (value, G_VARIANT_TYPE_VARDICT) &&
          g_variant_is_of_type (other, G_VARIANT_TYPE_VARDICT))
        hb_assert_dict_equal (value, other, NULL);  /* order-insensitive */
      else
        g_assert_true (other != NULL && g_variant_equal (value, other));
    }

  g_variant_iter_init (&iter, actual);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_autoptr(GVariant) owned = value;

      if (ignore && g_strv_contains (ignore, key))
        continue;
      n_actual++;
    }
  g_assert_cmpuint (n_actual, ==, n_expected);
}

guint16
hb_free_port (void)
{
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, 0, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (g_socket_bind (socket, any, TRUE, &error));
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

/* ------------------------------------------------------------------ */
/* HTTP answers against the OpenAPI document                           */

/* @text (@length bytes, -1: NUL-ended) as a JSON string, or null. Bytes
 * that are not UTF-8 go through as they are: the validator says so. */
static void
append_json_string (GString    *out,
                    const char *text,
                    gssize      length)
{
  gsize n;

  if (text == NULL)
    {
      g_string_append (out, "null");
      return;
    }
  n = length < 0 ? strlen (text) : (gsize) length;
  g_string_append_c (out, '"');
  for (gsize i = 0; i < n; i++)
    {
      guchar c = (guchar) text[i];

      if (c == '"' || c == '\\')
        g_string_append_printf (out, "\\%c", c);
      else if (c < 0x20 || c == 0x7f)
        g_string_append_printf (out, "\\u%04x", c);
      else
        g_string_append_c (out, (char) c);
    }
  g_string_append_c (out, '"');
}

static void
record_line (GString *line,
             gboolean is_event,
             const char *event)
{
  static GHashTable *seen;       /* lines written */
  static GHashTable *events;     /* event name → how many written */
  const char *path = g_getenv ("HB_HTTP_RECORDS");
  FILE *file;

  if (path == NULL || *path == '\0')
    return;
  if (seen == NULL)
    {
      seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      events = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
    }
  /* a new file (the next test case) starts afresh */
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_hash_table_remove_all (seen);
      g_hash_table_remove_all (events);
    }
  if (g_hash_table_contains (seen, line->str))
    return;
  if (is_event)
    {
      guint n = GPOINTER_TO_UINT (g_hash_table_lookup (events, event));

      if (n >= 500)
        return;
      g_hash_table_insert (events, g_strdup (event), GUINT_TO_POINTER (n + 1));
    }
  g_hash_table_add (seen, g_strdup (line->str));
  file = g_fopen (path, "a");
  g_assert_nonnull (file);
  fprintf (file, "%s\n", line->str);
  g_assert_cmpint (fclose (file), ==, 0);
}

void
hb_http_record_answer (const char *method,
                       const char *path,
                       guint       status,
                       const char *content_type,
                       const char *body,
                       gssize      body_length,
                       const char *request_content_type,
                       const char *request_body,
                       gssize      request_length)
{
  g_autoptr(GString) line = NULL;

  if (g_getenv ("HB_HTTP_RECORDS") == NULL)
    return;
  line = g_string_new ("{\"kind\": \"http\", \"method\": ");
  append_json_string (line, method, -1);
  g_string_append (line, ", \"path\": ");
  append_json_string (line, path, -1);
  g_string_append_printf (line, ", \"status\": %u, \"content_type\": ", status);
  append_json_string (line, content_type, -1);
  g_string_append (line, ", \"body\": ");
  append_json_string (line, body, body_length);
  g_string_append (line, ", \"request_content_type\": ");
  append_json_string (line, request_content_type, -1);
  g_string_append (line, ", \"request_body\": ");
  append_json_string (line, request_body, request_length);
  g_string_append (line, "}");
  record_line (line, FALSE, NULL);
}

void
hb_http_record_event (const char *event,
                      const char *data)
{
  g_autoptr(GString) line = NULL;

  if (g_getenv ("HB_HTTP_RECORDS") == NULL)
    return;
  line = g_string_new ("{\"kind\": \"event\", \"event\": ");
  append_json_string (line, event, -1);
  g_string_append (line, ", \"data\": ");
  append_json_string (line, data, -1);
  g_string_append (line, "}");
  record_line (line, TRUE, event ? event : "");
}

void
hb_http_records_check (const char *path)
{
  const char *root = g_getenv ("HB_SOURCE_ROOT");
  const char *python = g_getenv ("HB_PYTHON3");
  g_autofree char *found = NULL;
  g_autofree char *script = NULL;
  g_autofree char *document = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autoptr(GError) error = NULL;
  int status = 0;

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return;
  g_assert_nonnull (root);
  /* kept for validate-records.py --coverage */
  if (g_getenv ("HB_HTTP_RECORDS_DIR") && g_test_get_path ())
    {
      g_autofree char *name = g_strdelimit (g_strconcat (g_test_get_path () + 1, ".jsonl", NULL), "/", '_');
      g_autofree char *kept = g_build_filename (g_getenv ("HB_HTTP_RECORDS_DIR"), name, NULL);
      g_autofree char *contents = NULL;
      gsize length;

      g_mkdir_with_parents (g_getenv ("HB_HTTP_RECORDS_DIR"), 0755);
      if (g_file_get_contents (path, &contents, &length, NULL))
        g_file_set_contents (kept, contents, (gssize) length, NULL);
    }
  /* Debian's, with python3-jsonschema and python3-yaml, before any other */
  if ((python == NULL || *python == '\0') && g_file_test ("/usr/bin/python3", G_FILE_TEST_IS_EXECUTABLE))
    python = "/usr/bin/python3";
  if (python == NULL || *python == '\0')
    python = found = g_find_program_in_path ("python3");
  if (python == NULL)
    g_error ("python3 is needed to check the HTTP answers against the OpenAPI document");
  script = g_build_filename (root, "tests", "openapi", "validate-records.py", NULL);
  document = g_build_filename (root, "data", "openapi", "heartbeatd.yaml", NULL);
  {
    const char *argv[] = { python, script, "--document", document, path, NULL };

    g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error);
  }
  g_assert_no_error (error);
  g_test_message ("OpenAPI check of the HTTP answers: %s%s", out, err);
  if (!g_spawn_check_wait_status (status, NULL))
    {
      g_printerr ("%s%s", out, err);
      g_error ("HTTP answers do not match %s (see above)", document);
    }
}
