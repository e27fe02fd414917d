/* test-bus-restart.c: an application using HeartbeatKeepAlive outlives
 * its bus, and its agent is registered and healthy again once the bus and
 * heartbeatd are back at the same address
 *
 * The application is keep-alive-app, a separate process (the library it
 * was once built on had GLib kill it when the bus went: exit-on-close),
 * started by PID with the harness bus as its session bus. It writes what
 * the library tells it to a file, read here. The harness cannot start a
 * bus twice at one address, so the second bus is a dbus-daemon of this
 * file's own, listening at the first one's socket (unix:path=…), started
 * by PID through the harness, which stops it with the rest.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gio/gio.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client-test-config.h"
#include "hb-harness.h"

#define AGENT_ID "bus-ka"

/* ---- the application's events ---- */

typedef struct {
  HbChild    *app;
  const char *path;
  const char *line;   /* waited for: a line equal to it, or starting with it
                       * if it ends in a space */
} AppWait;

static char **
app_events (const char *path)
{
  g_autofree char *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return g_new0 (char *, 1);
  return g_strsplit (text, "\n", -1);
}

static gboolean
line_matches (const char *line,
              const char *wanted)
{
  if (g_str_has_suffix (wanted, " "))
    return g_str_has_prefix (line, wanted);
  return g_str_equal (line, wanted);
}

static guint
app_count (const char *path,
           const char *wanted)
{
  g_auto(GStrv) lines = app_events (path);
  guint n = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    if (line_matches (lines[i], wanted))
      n++;
  return n;
}

/* The rest of the first line matching @wanted (a prefix ending in a
 * space), or NULL. */
static char *
app_find (const char *path,
          const char *wanted)
{
  g_auto(GStrv) lines = app_events (path);

  for (guint i = 0; lines[i] != NULL; i++)
    if (line_matches (lines[i], wanted))
      return g_strdup (lines[i] + strlen (wanted));
  return NULL;
}

static void
dump_app (const char *path)
{
  g_autofree char *text = NULL;

  if (g_file_get_contents (path, &text, NULL, NULL))
    g_test_message ("the application's events:\n%s", text);
}

static gboolean
check_app_line (HbHarness *h,
                gpointer   data)
{
  AppWait *wait = data;

  return wait->app->exited || app_count (wait->path, wait->line) > 0;
}

/* Waits (bounded) until the application wrote @line, and asserts it is
 * still running. */
static void
wait_app_line (HbHarness  *h,
               HbChild    *app,
               const char *path,
               const char *line)
{
  AppWait wait = { app, path, line };

  hb_harness_wait_until (h, check_app_line, &wait);
  if (app->exited)
    {
      dump_app (path);
      g_test_message ("the application exited (wait status 0x%x%s) while we waited for \"%s\"",
                      app->wait_status,
                      WIFSIGNALED (app->wait_status) && WTERMSIG (app->wait_status) == SIGTERM
                        ? ": killed by SIGTERM" : "",
                      line);
    }
  g_assert_false (app->exited);
}

/* The CPU time @pid has used so far (user and system), in clock ticks:
 * fields 14 and 15 of /proc/PID/stat, after the command's parentheses. */
static guint64
cpu_ticks (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", pid);
  g_autofree char *text = NULL;
  g_auto(GStrv) fields = NULL;
  const char *rest;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  rest = strrchr (text, ')');
  g_assert_nonnull (rest);
  /* rest + 2 is field 3 (the state) */
  fields = g_strsplit (rest + 2, " ", -1);
  g_assert_cmpuint (g_strv_length (fields), >, 13);
  return g_ascii_strtoull (fields[11], NULL, 10) + g_ascii_strtoull (fields[12], NULL, 10);
}

/* ---- the agent as the daemon sees it ---- */

typedef struct {
  GDBusConnection *connection;
  const char      *bound_to;   /* or NULL: anyone */
  guint64          min_beats;
} AgentWait;

static gboolean
check_agent_healthy (HbHarness *h,
                     gpointer   data)
{
  AgentWait *wait = data;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) agent = NULL;
  const char *state = NULL, *bound_to = NULL;
  guint64 beats = 0;

  reply = g_dbus_connection_call_sync (wait->connection, HB_NAME, HB_PATH, HB_IFACE, "GetAgent",
                                       g_variant_new ("(s)", AGENT_ID), G_VARIANT_TYPE ("(a{sv})"),
                                       G_DBUS_CALL_FLAGS_NO_AUTO_START, HB_WAIT_MS, NULL, NULL);
  if (reply == NULL)
    return FALSE;   /* no daemon yet, or no agent yet */
  agent = g_variant_get_child_value (reply, 0);
  g_variant_lookup (agent, "state", "&s", &state);
  g_variant_lookup (agent, "bound-to", "&s", &bound_to);
  g_variant_lookup (agent, "beats", "t", &beats);
  return g_strcmp0 (state, "healthy") == 0 && beats >= wait->min_beats &&
         (wait->bound_to == NULL || g_strcmp0 (bound_to, wait->bound_to) == 0);
}

/* ---- a bus at the address of the one that went ---- */

/* "unix:path=P" of the harness bus's address (which names its guid too:
 * the new bus has another one). */
static char *
socket_address (const char *bus_address)
{
  const char *path = strstr (bus_address, "path=");
  g_autofree char *value = NULL;

  g_assert_true (g_str_has_prefix (bus_address, "unix:"));
  g_assert_nonnull (path);
  path += strlen ("path=");
  value = g_strndup (path, strcspn (path, ",;"));
  return g_strdup_printf ("unix:path=%s", value);
}

typedef struct {
  HbChild         *bus;
  const char      *address;
  GDBusConnection *connection;
} BusWait;

static gboolean
check_bus_answers (HbHarness *h,
                   gpointer   data)
{
  BusWait *wait = data;

  if (wait->bus->exited)
    return TRUE;
  /* refused (or no socket yet) until the bus listens */
  wait->connection = g_dbus_connection_new_for_address_sync (wait->address,
                                                             G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                             G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                             NULL, NULL, NULL);
  return wait->connection != NULL;
}

/* Starts a dbus-daemon at @address, and returns a connection to it once
 * it answers. */
static GDBusConnection *
start_bus_at (HbHarness  *h,
              const char *address)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dbus_daemon = g_find_program_in_path ("dbus-daemon");
  g_autofree char *config_path = g_build_filename (h->tmpdir, "bus-again.conf", NULL);
  g_autofree char *config_arg = g_strdup_printf ("--config-file=%s", config_path);
  g_autofree char *listen = g_markup_escape_text (address, -1);
  g_autofree char *config = NULL;
  const char *argv[] = { dbus_daemon, config_arg, "--nofork", NULL };
  BusWait wait = { NULL, address, NULL };

  g_assert_nonnull (dbus_daemon);
  /* the harness's session bus, at @address */
  config = g_strdup_printf ("<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                            " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                            "<busconfig>\n"
                            "  <type>session</type>\n"
                            "  <listen>%s</listen>\n"
                            "  <auth>EXTERNAL</auth>\n"
                            "  <policy context=\"default\">\n"
                            "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
                            "    <allow eavesdrop=\"true\"/>\n"
                            "    <allow own=\"*\"/>\n"
                            "    <allow user=\"*\"/>\n"
                            "  </policy>\n"
                            "</busconfig>\n", listen);
  g_file_set_contents (config_path, config, -1, &error);
  g_assert_no_error (error);
  wait.bus = hb_harness_spawn (h, argv);
  hb_harness_wait_until (h, check_bus_answers, &wait);
  g_assert_false (wait.bus->exited);
  g_test_message ("dbus-daemon (pid %d) listens at %s again", wait.bus->pid, address);
  return wait.connection;
}

/* ---- the test ---- */

static void
test_bus_restart (void)
{
  g_autoptr(HbHarness) h = hb_harness_new ();
  g_autoptr(GDBusConnection) connection = NULL;
  g_autofree char *app_path = g_test_build_filename (G_TEST_BUILT, "keep-alive-app", NULL);
  g_autofree char *events = NULL;
  g_autofree char *address = NULL;
  g_autofree char *first_name = NULL;
  g_autofree char *second_name = NULL;
  AgentWait agent = { NULL, NULL, 2 };
  HbChild *app;
  guint cursor;
  guint64 ticks;
  guint tries;

  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return;
  hb_harness_write_config (h, client_test_config);
  hb_harness_start_daemon (h, 0);
  events = g_build_filename (h->tmpdir, "app-events", NULL);
  address = socket_address (h->bus_address);

  /* the application registers and beats */
  {
    const char *argv[] = { app_path, events, AGENT_ID, NULL };

    app = hb_harness_spawn (h, argv);
  }
  wait_app_line (h, app, events, "ready ");
  first_name = app_find (events, "ready ");
  agent.connection = h->client;
  agent.bound_to = first_name;
  hb_harness_wait_until (h, check_agent_healthy, &agent);

  /* the bus goes away, and heartbeatd with it */
  hb_harness_stop_bus (h);
  hb_harness_stop_child (h, h->daemon);
  wait_app_line (h, app, events, "registered-property FALSE");
  wait_app_line (h, app, events, "vanished");

  /* an outage: the application lives on, and says so once (an
   * observation window, not a deadline: the library tries to connect
   * again meanwhile, and must neither spin nor report every try) */
  ticks = cpu_ticks (app->pid);
  tries = app_count (events, "try ");
  hb_harness_run_for (h, 1500);
  ticks = cpu_ticks (app->pid) - ticks;
  tries = app_count (events, "try ") - tries;
  g_test_message ("the application tried to connect again %u times during the outage's 1.5 s", tries);
  /* 100 ms, then 200, 400, 800: at most 4 tries in 1.5 s (and one more,
   * should the window begin just before one) */
  g_assert_cmpuint (tries, <=, 5);
  g_test_message ("the application used %" G_GUINT64_FORMAT " ms of CPU time during the outage's 1.5 s",
                  ticks * 1000 / (guint64) sysconf (_SC_CLK_TCK));
  /* waiting between tries, not spinning: a few tries cost a few ms; a
   * loop would take what the CPU gives it */
  g_assert_cmpuint (ticks * 1000 / (guint64) sysconf (_SC_CLK_TCK), <, 300);
  g_assert_false (app->exited);
  g_assert_cmpuint (app_count (events, "registered-property FALSE"), ==, 1);
  g_assert_cmpuint (app_count (events, "vanished"), ==, 1);
  g_assert_cmpuint (app_count (events, "appeared"), ==, 0);
  g_assert_cmpuint (app_count (events, "connection "), ==, 0);

  /* the bus comes back at the same address, then heartbeatd; the harness
   * starts daemons on h->bus_address, which named the old bus's guid */
  connection = start_bus_at (h, address);
  g_free (h->bus_address);
  h->bus_address = g_strdup (address);
  cursor = hb_harness_notify_cursor (h);
  hb_harness_spawn_daemon (h, NULL, 0);
  hb_wait_notify (h, &cursor, "READY=1");

  /* the application connected again, and registered its agent again */
  wait_app_line (h, app, events, "registered 2");
  wait_app_line (h, app, events, "connection ");
  /* (a unique name of the new bus: it may read the same as the first) */
  second_name = app_find (events, "connection ");
  agent.connection = connection;
  agent.bound_to = second_name;
  hb_harness_wait_until (h, check_agent_healthy, &agent);
  g_assert_false (app->exited);

  dump_app (events);
  g_assert_cmpuint (app_count (events, "registered-property FALSE"), ==, 1);
  g_assert_cmpuint (app_count (events, "registered-property TRUE"), ==, 1);
  g_assert_cmpuint (app_count (events, "vanished"), ==, 1);
  g_assert_cmpuint (app_count (events, "appeared"), ==, 1);
  g_assert_cmpuint (app_count (events, "connection "), ==, 1);
  /* it did try while the bus was away (its first try is due 100 ms after
   * the loss, and the bus was away for 1.5 s at least) */
  g_assert_cmpuint (app_count (events, "try "), >=, 1);
  /* the outage, reported once: heartbeatd left (when the bus dropped it
   * before us) or the bus went away (HEARTBEAT_CLIENT_ERROR_NO_DAEMON, 5,
   * or HEARTBEAT_CLIENT_ERROR_NO_BUS, 6) */
  g_assert_cmpuint (app_count (events, "failed "), ==, 1);
  g_assert_cmpuint (app_count (events, "failed 5 ") + app_count (events, "failed 6 "), ==, 1);

  /* it ends cleanly when told to */
  g_assert_cmpint (kill (app->pid, SIGUSR1), ==, 0);
  g_assert_true (WIFEXITED (hb_harness_wait_exit (h, app, HB_WAIT_MS)));
  g_assert_cmpint (WEXITSTATUS (app->wait_status), ==, 0);
  g_assert_cmpuint (app_count (events, "exiting"), ==, 1);
  g_dbus_connection_close_sync (connection, NULL, NULL);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/client/bus-restart", test_bus_restart);
  return g_test_run ();
}
