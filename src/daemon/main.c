/* main.c: heartbeatd, the heartbeat monitor service
 *
 * Wires the fronts to one HeartbeatMonitor: configuration, persistence,
 * the D-Bus service, systemd notification, the journal, and the systemd
 * units that back agents declared with unit= (HbUnits, followed on the
 * daemon's own bus connection: the system manager on the system bus,
 * systemd --user on a session bus where it runs). Owns the bus
 * name, handles SIGHUP (reload) and SIGTERM/SIGINT (clean exit 0).
 *
 * The bus connection can be lost while the bus itself stays: the bus
 * drops a peer it judges misbehaving (a reply over its size limit).
 * Messages GDBus cannot decode, on which it would close the connection,
 * never reach it (hb-bus-filter.c drops them). The monitor (every agent)
 * lives outside the connection, so heartbeatd then connects again,
 * exports the service and owns the name again, queued behind the lost
 * connection while the bus still holds the name for it (for at most
 * NAME_RELEASE_SECONDS); clients see the name's owner change. Only when
 * the bus cannot be reached for BUS_RECONNECT_SECONDS does heartbeatd
 * exit non-zero, so systemd restarts it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib-unix.h>
#include <errno.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hb-build-config.h"
#include "hb-config.h"
#include "hb-alerts.h"
#include "hb-bus-filter.h"
#include "hb-dbus-service.h"
#include "hb-event-log.h"
#include "hb-files.h"
#include "hb-http.h"
#include "hb-host.h"
#include "hb-journal.h"
#include "hb-notify.h"
#include "hb-state.h"
#include "hb-schedules.h"
#include "hb-units.h"
#include "heartbeat-monitor.h"

/* How long the bus may be unreachable before heartbeatd gives up. */
#define BUS_RECONNECT_SECONDS 3
/* How long the bus may hold the name for a lost connection of ours. */
#define NAME_RELEASE_SECONDS 10

typedef struct {
  GMainLoop        *loop;
  int               exit_status;
  GBusType          bus_type;
  char             *config_path;   /* NULL: the embedded default */
  HbConfigLoadFlags config_flags;  /* how config_path is read (load_flags()) */
  char             *state_dir;
  HbConfig         *config;
  HeartbeatMonitor *monitor;
  HbState          *state;
  HbFiles          *files;
  HbHttp           *http;
  HbAlerts         *alerts;
  HbUnits          *units;
  HbSchedules      *schedules;
  HbEventLog       *event_log;
  int               http_port;     /* --http-port, or -1 for the configuration's */
  HbNotify         *notify;
  GDBusConnection  *connection;
  HbDBusService    *service;
  guint             name_id;
  gboolean          name_acquired;
  gulong            closed_id;
  guint             reconnect_id;
  guint             reconnect_delay_ms;
  gint64            disconnected_at;   /* monotonic µs, while reconnecting */
  gboolean          reowning;          /* the name was served on a lost connection */
  guint             name_wait_id;      /* queued for the name behind that connection */
} Daemon;

static void on_problem (GObject *source, GParamSpec *pspec, Daemon *daemon);

static void
daemon_quit (Daemon *daemon,
             int     status)
{
  if (status != 0)
    daemon->exit_status = status;
  g_main_loop_quit (daemon->loop);
}

/* How the daemon and --check-config read the configuration: the system
 * file may be missing (the built-in defaults, with its drop-ins), --config
 * FILE may not; the system service's rules on the system bus; an events
 * file this process can write. */
static HbConfigLoadFlags
load_flags (GBusType bus_type,
            gboolean explicit_path)
{
  HbConfigLoadFlags flags = HB_CONFIG_LOAD_CHECK_WRITABLE;

  if (!explicit_path)
    flags |= HB_CONFIG_LOAD_MAIN_OPTIONAL;
  if (bus_type == G_BUS_TYPE_SYSTEM)
    flags |= HB_CONFIG_LOAD_SYSTEM;
  return flags;
}

/* The configuration: --config FILE and its drop-ins; else, on the system
 * bus, SYSCONFDIR/heartbeat/heartbeatd.conf (the built-in defaults when it
 * does not exist) and its drop-ins; else the built-in defaults (no root, no
 * files needed). */
static HbConfig *
load_config (Daemon  *daemon,
             GError **error)
{
  if (daemon->config_path)
    return hb_config_load_full (daemon->config_path, daemon->config_flags, NULL, error);
  return hb_config_new_default ();
}

static char *
default_config_path (GBusType bus_type)
{
  if (bus_type == G_BUS_TYPE_SYSTEM)
    return g_build_filename (HB_SYSCONFDIR, "heartbeat", "heartbeatd.conf", NULL);
  return NULL;
}

static char *
default_state_dir (GBusType bus_type)
{
  const char *systemd_dir = g_getenv ("STATE_DIRECTORY");

  /* systemd's StateDirectory=; the first if there are several */
  if (systemd_dir && *systemd_dir)
    {
      g_auto(GStrv) dirs = g_strsplit (systemd_dir, ":", 2);
      return g_strdup (dirs[0]);
    }
  if (bus_type == G_BUS_TYPE_SYSTEM)
    return g_build_filename (HB_LOCALSTATEDIR, "lib", "heartbeat", NULL);
  return g_build_filename (g_get_user_state_dir (), "heartbeat", NULL);
}

/* (Re)starts watching the heartbeat files of the configured agents. */
static void
watch_files (Daemon *daemon)
{
  hb_files_clear (daemon->files);
  for (guint i = 0; i < daemon->config->agents->len; i++)
    {
      const HbConfigAgent *agent = g_ptr_array_index (daemon->config->agents, i);
      g_autoptr(GError) error = NULL;

      if (agent->heartbeat_file &&
          !hb_files_watch (daemon->files, agent->id, agent->heartbeat_file, &error))
        g_warning ("Cannot watch the heartbeat file of agent “%s”: %s", agent->id, error->message);
    }
}

/* (Re)follows the units of the configured agents with unit=. */
static void
follow_units (Daemon *daemon)
{
  hb_units_forget_all (daemon->units);
  for (guint i = 0; i < daemon->config->agents->len; i++)
    {
      const HbConfigAgent *agent = g_ptr_array_index (daemon->config->agents, i);

      if (agent->unit)
        hb_units_follow (daemon->units, agent->id, agent->unit, agent->grace_usec);
    }
}

/* The event log, as configured ([log] events-file=): recreated when the
 * configuration changes it. */
static void
configure_event_log (Daemon *daemon)
{
  g_clear_object (&daemon->event_log);
  if (daemon->config->events_file)
    daemon->event_log = hb_event_log_new (daemon->monitor, daemon->config->events_file,
                                          daemon->config->events_retention);
}

/* The HTTP front, as configured ([http], or --http-port N; 0 is off).
 * Failing to serve what is configured is a start-up error. */
static gboolean
start_http (Daemon  *daemon,
            GError **error)
{
  const HbConfig *config = daemon->config;
  int port = daemon->http_port >= 0 ? daemon->http_port : (config->http_enabled ? config->http_port : 0);

  if (port == 0)
    return TRUE;
  daemon->http = hb_http_new (daemon->monitor, HB_VERSION);
  hb_http_set_quota (daemon->http, config->agents_per_uid);
  hb_http_set_units (daemon->http, daemon->units);
  hb_http_set_state_directory (daemon->http, daemon->state_dir);
  /* a port in use is not fatal: HbHttp warns, says so in its
   * listen-problem and tries again until it is free */
  hb_http_set_trusted_network (daemon->http, config->http_trusted_network);
  if (!hb_http_set_tokens_file (daemon->http, config->http_tokens_file, error) ||
      !hb_http_set_ping_key_file (daemon->http, config->http_ping_key_file, error) ||
      !hb_http_set_tls (daemon->http, config->http_tls_certificate, config->http_tls_key,
                        config->http_tls_client_ca, error) ||
      !hb_http_listen (daemon->http, config->http_address, (guint16) port, error))
    return FALSE;
  g_signal_connect (daemon->http, "notify::listen-problem", G_CALLBACK (on_problem), daemon);
  if (hb_http_get_listen_problem (daemon->http) == NULL)
    g_message ("Serving HTTP on %s://%s:%u/%s", hb_http_get_scheme (daemon->http), config->http_address,
               hb_http_get_port (daemon->http), config->http_tls_client_ca ? " (client certificates required)" : "");
  return TRUE;
}

/* Whom the configuration's agents belong to: root on the system bus (the
 * daemon runs as its own user there), the user on a user's session bus. */
static guint32
declared_owner (Daemon *daemon)
{
  return daemon->bus_type == G_BUS_TYPE_SYSTEM ? 0 : (guint32) getuid ();
}

static gboolean
on_sighup (gpointer user_data)
{
  Daemon *daemon = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(HbConfig) config = NULL;

  hb_notify_reloading (daemon->notify);
  config = load_config (daemon, &error);
  if (config == NULL)
    {
      /* every problem, one a line, as heartbeatd --check-config lists them */
      g_warning ("Reloading the configuration failed, keeping the old one:\n%s", error->message);
    }
  else
    {
      hb_config_apply (config, daemon->monitor, declared_owner (daemon));
      hb_state_set_sync_interval (daemon->state, config->sync_interval_usec);
      if (daemon->service)
        hb_dbus_service_set_quota (daemon->service, config->agents_per_uid);
      if (daemon->http)
        hb_http_set_quota (daemon->http, config->agents_per_uid);
      hb_config_free (daemon->config);
      daemon->config = g_steal_pointer (&config);
      watch_files (daemon);
      follow_units (daemon);
      hb_schedules_apply (daemon->schedules, daemon->config->agents);
      configure_event_log (daemon);
      if (daemon->alerts)
        hb_alerts_configure (daemon->alerts, daemon->config->alerts);
      if (daemon->http)
        {
          g_autoptr(GError) http_error = NULL;

          if (!hb_http_set_tokens_file (daemon->http, daemon->config->http_tokens_file, &http_error))
            g_warning ("Keeping the old HTTP tokens: %s", http_error->message);
          g_clear_error (&http_error);
          if (!hb_http_set_ping_key_file (daemon->http, daemon->config->http_ping_key_file, &http_error))
            g_warning ("Keeping the old HTTP ping key: %s", http_error->message);
          g_clear_error (&http_error);
          /* a renewed certificate: served to the next connection */
          if (!hb_http_set_tls (daemon->http, daemon->config->http_tls_certificate, daemon->config->http_tls_key,
                                daemon->config->http_tls_client_ca, &http_error))
            g_warning ("Keeping the old TLS certificate: %s", http_error->message);
        }
      g_message ("Configuration reloaded");
    }
  hb_state_save_soon (daemon->state);
  hb_notify_ready (daemon->notify);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_sigterm (gpointer user_data)
{
  Daemon *daemon = user_data;

  g_message ("Stopping");
  hb_notify_stopping (daemon->notify);
  daemon_quit (daemon, 0);
  return G_SOURCE_CONTINUE;
}

static void
on_name_acquired (GDBusConnection *connection,
                  const char      *name,
                  gpointer         user_data)
{
  Daemon *daemon = user_data;

  daemon->name_acquired = TRUE;
  daemon->reowning = FALSE;
  g_clear_handle_id (&daemon->name_wait_id, g_source_remove);
  g_message ("Serving %s on the %s bus", name,
             daemon->bus_type == G_BUS_TYPE_SYSTEM ? "system" : "session");
  hb_notify_ready (daemon->notify);
}

static gboolean
on_name_wait_timeout (gpointer user_data)
{
  Daemon *daemon = user_data;

  daemon->name_wait_id = 0;
  g_printerr ("heartbeatd: cannot own %s again: it was not released in %d s "
              "(another heartbeatd owns it, or the bus kept it for the lost connection)\n",
              HB_DBUS_NAME, NAME_RELEASE_SECONDS);
  daemon_quit (daemon, EXIT_FAILURE);
  return G_SOURCE_REMOVE;
}

static void
on_name_lost (GDBusConnection *connection,
              const char      *name,
              gpointer         user_data)
{
  Daemon *daemon = user_data;

  /* a closed connection is handled by on_connection_closed() */
  if (connection == NULL || g_dbus_connection_is_closed (connection))
    return;
  /* queued behind our lost connection, which the bus has not let go of
   * yet: the name comes (on_name_acquired) once it has */
  if (!daemon->name_acquired && daemon->reowning)
    {
      if (daemon->name_wait_id == 0)
        {
          g_message ("Waiting for the bus to release %s from the lost connection", name);
          daemon->name_wait_id = g_timeout_add_seconds (NAME_RELEASE_SECONDS, on_name_wait_timeout, daemon);
        }
      return;
    }
  if (!daemon->name_acquired)
    g_printerr ("heartbeatd: cannot own %s: another heartbeatd runs, or the bus policy forbids it\n", name);
  else
    g_printerr ("heartbeatd: lost the name %s\n", name);
  daemon_quit (daemon, EXIT_FAILURE);
}

static void on_connection_closed (GDBusConnection *connection,
                                  gboolean         remote_peer_vanished,
                                  GError          *error,
                                  gpointer         user_data);

/* Connects to the bus, serves the interface on it and asks for the name.
 * The monitor and its agents are untouched: this runs at start-up and
 * again after the connection was lost. */
static gboolean
connect_bus (Daemon  *daemon,
             GError **error)
{
  g_autofree char *address = g_dbus_address_get_for_bus_sync (daemon->bus_type, NULL, error);
  g_autoptr(GError) filter_error = NULL;

  if (address == NULL)
    return FALSE;
  /* not g_bus_get_sync(): its shared connection is not replaced after it
   * closes, and nothing else in this process needs it. A connection of
   * our own on the bus socket, which drops the messages GDBus cannot
   * decode (GDBus would close the connection on each); the usual one on
   * a bus that is not a unix socket or refuses EXTERNAL. */
  daemon->connection = hb_bus_filter_connect_sync (address, NULL, &filter_error);
  if (daemon->connection == NULL && g_error_matches (filter_error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED))
    {
      g_message ("%s: connecting without dropping undecodable messages", filter_error->message);
      daemon->connection = g_dbus_connection_new_for_address_sync (address,
          G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
          NULL, NULL, error);
    }
  else if (daemon->connection == NULL)
    {
      g_propagate_error (error, g_steal_pointer (&filter_error));
    }
  if (daemon->connection == NULL)
    return FALSE;
  g_dbus_connection_set_exit_on_close (daemon->connection, FALSE);
  daemon->closed_id = g_signal_connect (daemon->connection, "closed",
                                        G_CALLBACK (on_connection_closed), daemon);

  /* restart-unit asks systemd on the bus the daemon serves on, and the
   * units are followed there */
  if (daemon->alerts)
    hb_alerts_set_connection (daemon->alerts, daemon->connection);
  hb_units_set_connection (daemon->units, daemon->connection);

  daemon->service = hb_dbus_service_new (daemon->monitor, daemon->connection, HB_VERSION);
  hb_dbus_service_set_quota (daemon->service, daemon->config->agents_per_uid);
  hb_dbus_service_set_units (daemon->service, daemon->units);
  if (!hb_dbus_service_export (daemon->service, error))
    {
      g_prefix_error (error, "cannot export %s: ", HB_DBUS_PATH);
      return FALSE;
    }
  hb_dbus_service_rebind (daemon->service);
  on_problem (NULL, NULL, daemon);   /* what the new front did not hear yet */

  daemon->name_acquired = FALSE;
  /* at start-up another owner means another heartbeatd: give up at once.
   * After a lost connection the bus may still hold the name for it (it
   * has not read the socket's end yet): queue, and on_name_lost waits */
  daemon->name_id = g_bus_own_name_on_connection (daemon->connection, HB_DBUS_NAME,
                                                  daemon->reowning ? G_BUS_NAME_OWNER_FLAGS_NONE
                                                                   : G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE,
                                                  on_name_acquired, on_name_lost,
                                                  daemon, NULL);
  return TRUE;
}

/* Lets go of the connection and everything that serves on it. */
static void
disconnect_bus (Daemon *daemon)
{
  g_clear_handle_id (&daemon->name_id, g_bus_unown_name);
  g_clear_handle_id (&daemon->name_wait_id, g_source_remove);
  g_clear_object (&daemon->service);
  if (daemon->units)
    hb_units_set_connection (daemon->units, NULL);
  if (daemon->connection)
    g_clear_signal_handler (&daemon->closed_id, daemon->connection);
  g_clear_object (&daemon->connection);
  daemon->name_acquired = FALSE;
}

static gboolean
on_reconnect (gpointer user_data)
{
  Daemon *daemon = user_data;
  g_autoptr(GError) error = NULL;

  daemon->reconnect_id = 0;
  if (connect_bus (daemon, &error))
    {
      g_message ("Connected to the bus again after %" G_GINT64_FORMAT " ms",
                 (g_get_monotonic_time () - daemon->disconnected_at) / 1000);
      daemon->disconnected_at = 0;
      return G_SOURCE_REMOVE;
    }
  disconnect_bus (daemon);
  if (g_get_monotonic_time () - daemon->disconnected_at > BUS_RECONNECT_SECONDS * G_USEC_PER_SEC)
    {
      g_printerr ("heartbeatd: the bus went away: %s\n", error->message);
      daemon_quit (daemon, EXIT_FAILURE);
      return G_SOURCE_REMOVE;
    }
  daemon->reconnect_delay_ms = MIN (daemon->reconnect_delay_ms * 2, 1000);
  daemon->reconnect_id = g_timeout_add (daemon->reconnect_delay_ms, on_reconnect, daemon);
  return G_SOURCE_REMOVE;
}

static void
on_connection_closed (GDBusConnection *connection,
                      gboolean         remote_peer_vanished,
                      GError          *error,
                      gpointer         user_data)
{
  Daemon *daemon = user_data;

  g_warning ("Lost the connection to the bus%s%s; connecting again",
             error ? ": " : "", error ? error->message : "");
  disconnect_bus (daemon);
  daemon->reowning = TRUE;
  hb_notify_set_problem (daemon->notify, "reconnecting to the bus");
  daemon->disconnected_at = g_get_monotonic_time ();
  daemon->reconnect_delay_ms = 50;
  if (daemon->reconnect_id == 0)
    daemon->reconnect_id = g_idle_add (on_reconnect, daemon);
}

/* The daemon's problem, as every front reports it (STATUS=, /health,
 * GetStatus): the state's (a write failed) first, else HTTP's (its port is
 * taken). Called when either changes, and to tell a new front. */
static void
on_problem (GObject    *source,
            GParamSpec *pspec,
            Daemon     *daemon)
{
  const char *problem = hb_state_get_problem (daemon->state);

  if (problem && pspec && source == G_OBJECT (daemon->state))
    g_warning ("%s", problem);
  if (problem == NULL && daemon->http)
    problem = hb_http_get_listen_problem (daemon->http);
  hb_notify_set_problem (daemon->notify, problem);
  if (daemon->http)
    hb_http_set_problem (daemon->http, problem);
  if (daemon->service)
    hb_dbus_service_set_problem (daemon->service, problem);
}

static int
run (Daemon *daemon)
{
  g_autoptr(GError) error = NULL;

  daemon->config = load_config (daemon, &error);
  if (daemon->config == NULL)
    {
      g_printerr ("heartbeatd: %s\n", error->message);
      return EXIT_FAILURE;
    }

  daemon->monitor = heartbeat_monitor_new ();
  hb_config_apply (daemon->config, daemon->monitor, declared_owner (daemon));

  daemon->state = hb_state_new (daemon->monitor, daemon->state_dir);
  hb_state_set_sync_interval (daemon->state, daemon->config->sync_interval_usec);
  if (!hb_state_lock (daemon->state, &error) || !hb_state_load (daemon->state, &error))
    {
      g_printerr ("heartbeatd: %s\n", error->message);
      return EXIT_FAILURE;
    }
  /* again, over what was restored: the configuration has the last word on
   * what it declares (task, thresholds), and what it no longer declares */
  hb_config_apply (daemon->config, daemon->monitor, declared_owner (daemon));

  daemon->notify = hb_notify_new (daemon->monitor);
  if (hb_state_get_problem (daemon->state))
    on_problem (NULL, NULL, daemon);
  g_signal_connect (daemon->state, "notify::problem", G_CALLBACK (on_problem), daemon);
  configure_event_log (daemon);
  daemon->files = hb_files_new (daemon->monitor);
  watch_files (daemon);
  /* after the state is loaded: a unit's first judgment compares its start
   * with the agent's last activity. It watches main processes itself (the
   * D-Bus front's liveness is replaced with every connection). */
  daemon->units = hb_units_new (daemon->monitor, NULL);
  follow_units (daemon);
  daemon->schedules = hb_schedules_new (daemon->monitor);
  hb_schedules_apply (daemon->schedules, daemon->config->agents);

  if (!start_http (daemon, &error))
    {
      g_printerr ("heartbeatd: %s\n", error->message);
      return EXIT_FAILURE;
    }
  hb_journal_attach (daemon->monitor);

  daemon->alerts = hb_alerts_new (daemon->monitor, NULL);
  hb_alerts_set_units (daemon->alerts, daemon->units);
  hb_alerts_configure (daemon->alerts, daemon->config->alerts);
  if (!connect_bus (daemon, &error))
    {
      g_printerr ("heartbeatd: cannot serve on the %s bus: %s\n",
                  daemon->bus_type == G_BUS_TYPE_SYSTEM ? "system" : "session", error->message);
      return EXIT_FAILURE;
    }

  heartbeat_monitor_start (daemon->monitor);

  g_unix_signal_add (SIGHUP, on_sighup, daemon);
  g_unix_signal_add (SIGTERM, on_sigterm, daemon);
  g_unix_signal_add (SIGINT, on_sigterm, daemon);

  g_main_loop_run (daemon->loop);

  if (!hb_state_flush (daemon->state, &error))
    g_warning ("Could not save the state on exit: %s", error->message);
  return daemon->exit_status;
}

static void
daemon_clear (Daemon *daemon)
{
  g_clear_handle_id (&daemon->reconnect_id, g_source_remove);
  disconnect_bus (daemon);
  g_clear_object (&daemon->http);
  g_clear_object (&daemon->alerts);
  g_clear_object (&daemon->units);
  g_clear_pointer (&daemon->schedules, hb_schedules_free);
  g_clear_object (&daemon->event_log);
  g_clear_object (&daemon->files);
  g_clear_object (&daemon->notify);
  g_clear_object (&daemon->state);
  if (daemon->monitor)
    heartbeat_monitor_stop (daemon->monitor);
  g_clear_object (&daemon->monitor);
  g_clear_pointer (&daemon->config, hb_config_free);
  g_clear_pointer (&daemon->loop, g_main_loop_unref);
  g_clear_pointer (&daemon->config_path, g_free);
  g_clear_pointer (&daemon->state_dir, g_free);
}

/* heartbeatd --may-restart-unit UNIT: whether the configuration names
 * UNIT in a restart-unit= alert (exit 0) or not (exit 1). An empty
 * restart-unit= names the unit= of every agent its agents= glob matches. The polkit rule
 * shipped in data/polkit/ asks this before it lets user heartbeat restart
 * a unit, so the daemon may restart what an admin configured and nothing
 * else. */
static int
may_restart_unit (const char        *config_path,
                  HbConfigLoadFlags  flags,
                  const char        *unit)
{
  g_autoptr(GError) error = NULL;
  /* polkitd asks, as its own user: the rules of the files, not whether it
   * could write the events file */
  g_autoptr(HbConfig) config = config_path
      ? hb_config_load_full (config_path, flags & HB_CONFIG_LOAD_MAIN_OPTIONAL, NULL, &error)
      : hb_config_new_default ();

  if (config == NULL)
    {
      g_printerr ("heartbeatd: %s\n", error->message);
      return EXIT_FAILURE;
    }
  for (guint i = 0; i < config->alerts->len; i++)
    {
      const HbConfigAlert *alert = g_ptr_array_index (config->alerts, i);

      if (alert->action != HB_ALERT_RESTART_UNIT)
        continue;
      if (g_strcmp0 (alert->target, unit) == 0)
        return EXIT_SUCCESS;
      if (alert->target && *alert->target == '\0')
        for (guint a = 0; a < config->agents->len; a++)
          {
            const HbConfigAgent *agent = g_ptr_array_index (config->agents, a);

            if (g_strcmp0 (agent->unit, unit) == 0 && g_pattern_match_simple (alert->agents, agent->id))
              return EXIT_SUCCESS;
          }
    }
  return EXIT_FAILURE;
}

/* A file of the configuration that --check-config can read as the daemon
 * would, or NULL: a credential it may not read is left out, with a note
 * (hb_config_is_hidden_credential()). */
static const char *
checkable (const char *path)
{
  if (hb_config_is_hidden_credential (path))
    {
      g_print ("(%s: not checked, this command may not read the service's credentials)\n", path);
      return NULL;
    }
  return path;
}

/* heartbeatd --check-config: reads the configuration as the daemon would
 * (same options, same rules) and reports every problem, "FILE:LINE:
 * message" on stderr, exit 1; or a short summary on stdout, exit 0. The
 * unit's ExecReload= runs it before it signals the daemon, so that
 * `systemctl reload` fails on a configuration the daemon would refuse. */
static int
check_config (const char        *config_path,
              HbConfigLoadFlags  flags)
{
  g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_autoptr(HbConfig) config = NULL;
  g_autofree char *files = NULL;

  if (config_path == NULL)
    {
      config = hb_config_new_default ();
      g_print ("heartbeatd: configuration OK: %s (--session without --config reads no file)\n",
               HB_CONFIG_BUILTIN_NAME);
      return EXIT_SUCCESS;
    }
  config = hb_config_load_full (config_path, flags, problems, &error);
  if (config == NULL)
    {
      for (guint i = 0; i < problems->len; i++)
        g_printerr ("%s\n", (const char *) g_ptr_array_index (problems, i));
      if (problems->len == 0)
        g_printerr ("%s\n", error->message);
      g_printerr ("heartbeatd: %u %s; the configuration is refused\n", MAX (problems->len, 1),
                  problems->len > 1 ? "errors" : "error");
      return EXIT_FAILURE;
    }

  if (config->http_enabled &&
      !hb_http_check_files (checkable (config->http_tokens_file), checkable (config->http_tls_certificate),
                            checkable (config->http_tls_key), checkable (config->http_tls_client_ca), &error))
    {
      g_printerr ("%s\nheartbeatd: 1 error; the configuration is refused\n", error->message);
      return EXIT_FAILURE;
    }

  g_ptr_array_add (config->files, NULL);
  files = g_strjoinv (", ", (char **) config->files->pdata);
  g_ptr_array_remove_index (config->files, config->files->len - 1);
  g_print ("heartbeatd: configuration OK: %s\n", files);
  g_print ("%u declared %s, %u %s, events file: %s, HTTP: %s\n",
           config->agents->len, config->agents->len == 1 ? "agent" : "agents",
           config->alerts->len, config->alerts->len == 1 ? "alert" : "alerts",
           config->events_file ? config->events_file : "none",
           config->http_enabled ? "on" : "off");
  if (config->events_file && (flags & HB_CONFIG_LOAD_SYSTEM) && geteuid () == 0)
    g_print ("(checked as root: heartbeatd.service, user heartbeat in its sandbox, checks again "
             "that it may write %s when it reloads or starts)\n", config->events_file);
  return EXIT_SUCCESS;
}

int
main (int    argc,
      char **argv)
{
  Daemon daemon = { 0 };
  gboolean system_bus = FALSE, session_bus = FALSE, version = FALSE, check = FALSE;
  g_autofree char *config_path = NULL;
  g_autofree char *state_dir = NULL;
  g_autofree char *restart_unit = NULL;
  int http_port = -1;
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  int status;
  const GOptionEntry entries[] = {
    { "system", 0, 0, G_OPTION_ARG_NONE, &system_bus, "Serve on the system bus (the default)", NULL },
    { "session", 0, 0, G_OPTION_ARG_NONE, &session_bus, "Serve on the session bus", NULL },
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
      "Configuration file; drop-ins are read from FILE.d/*.conf "
      "(default on the system bus: " HB_SYSCONFDIR "/heartbeat/heartbeatd.conf, or the built-in "
      "defaults where it does not exist, and its drop-ins; with --session: the built-in defaults)", "FILE" },
    { "check-config", 't', 0, G_OPTION_ARG_NONE, &check,
      "Check the configuration as the daemon would read it, report every error "
      "(FILE:LINE: message) and exit: 0 if it is valid, 1 if not", NULL },
    { "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir,
      "Where registrations are kept (default: $STATE_DIRECTORY, else "
      HB_LOCALSTATEDIR "/lib/heartbeat, or $XDG_STATE_HOME/heartbeat with --session)", "DIR" },
    { "http-port", 0, 0, G_OPTION_ARG_INT, &http_port,
      "Serve HTTP on this port of [http] address (default: [http] port, 8765; 0: no HTTP)", "PORT" },
    { "may-restart-unit", 0, 0, G_OPTION_ARG_STRING, &restart_unit,
      "Exit 0 if the configuration has a restart-unit= alert for UNIT, else 1 (for the polkit rule)",
      "UNIT" },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { NULL }
  };

  /* the start every front reports (GetStatus, /health): now */
  hb_host_process_started_at ();
  setlocale (LC_ALL, "");

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context,
      "heartbeatd tells which agents, jobs and services on this machine are alive,\n"
      "and says so the moment one goes quiet. It serves org.heartbeat.Monitor1 on D-Bus.");
  g_option_context_set_description (context,
      "Signals:\n"
      "  SIGHUP           reload the configuration; agents are kept\n"
      "  SIGTERM, SIGINT  save the state and exit 0\n"
      "\n"
      "Exit status: 0 after SIGTERM/SIGINT, 1 on a start-up error or when the bus stays\n"
      "unreachable for 3 s (a lost connection to a running bus is made again).\n"
      "With --check-config: 0 if the configuration is valid, 1 if not.\n"
      "See heartbeatd(8) and heartbeatd.conf(5).");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("heartbeatd: %s\nTry “heartbeatd --help”.\n", error->message);
      return 2;
    }
  if (version)
    {
      g_print ("heartbeatd %s\n", HB_VERSION);
      return 0;
    }
  if (system_bus && session_bus)
    {
      g_printerr ("heartbeatd: choose one of --system and --session\n");
      return 2;
    }
  if (http_port < -1 || http_port > 65535)
    {
      g_printerr ("heartbeatd: --http-port must be 0 to 65535\n");
      return 2;
    }
  if (argc > 1)
    {
      g_printerr ("heartbeatd: unexpected argument “%s”\n", argv[1]);
      return 2;
    }
  if (check && restart_unit)
    {
      g_printerr ("heartbeatd: choose one of --check-config and --may-restart-unit\n");
      return 2;
    }
  daemon.bus_type = session_bus ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM;
  daemon.config_flags = load_flags (daemon.bus_type, config_path != NULL);
  if (restart_unit || check)
    {
      g_autofree char *path = config_path ? g_strdup (config_path) : default_config_path (daemon.bus_type);

      if (check)
        return check_config (path, daemon.config_flags | HB_CONFIG_LOAD_CHECK_ONLY);
      return may_restart_unit (path, daemon.config_flags, restart_unit);
    }

  daemon.loop = g_main_loop_new (NULL, FALSE);
  daemon.http_port = http_port;
  daemon.config_path = config_path ? g_steal_pointer (&config_path)
                                   : default_config_path (daemon.bus_type);
  daemon.state_dir = state_dir ? g_steal_pointer (&state_dir)
                               : default_state_dir (daemon.bus_type);

  status = run (&daemon);
  daemon_clear (&daemon);
  return status;
}
