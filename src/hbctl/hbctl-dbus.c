/* hbctl-dbus.c: heartbeatd on the bus
 *
 * The words for what went wrong between hbctl and heartbeatd on D-Bus
 * (not running, no bus, refused, …) with their exit statuses, shared by
 * every verb; and the D-Bus transport (hbctl-transport.h) over
 * HeartbeatClient, connected at its first call.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <unistd.h>

#include "hb-host.h"
#include "hbctl.h"
#include "hbctl-output.h"
#include "hbctl-transport.h"

const char *
hbctl_bus_name (void)
{
  return opt.bus_type == G_BUS_TYPE_SYSTEM ? _("system bus") : _("session bus");
}

static guint32
owner_of (HeartbeatClient *client,
          const char      *id)
{
  g_autoptr(GVariant) agent = heartbeat_client_get_agent (client, id, NULL);
  guint32 uid = G_MAXUINT32;

  if (agent)
    g_variant_lookup (agent, "owner-uid", "u", &uid);
  return uid;
}

/* Whether this hbctl is the one in the build tree (not an installed
 * copy): only then does a hint name the build tree's tools/run.sh. */
static gboolean
running_from_build_tree (void)
{
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *built = g_build_filename (HB_BUILD_DIR, "hbctl", NULL);

  return self != NULL && strcmp (self, built) == 0;
}

/* How an admin starts heartbeatd on the bus hbctl uses; @reason (why the
 * bus could not start it, or NULL) may call for more. */
static char *
start_hint (const char *reason)
{
  if (opt.bus_type == G_BUS_TYPE_SYSTEM)
    return g_strdup (reason && strstr (reason, "masked")
                     ? "systemctl unmask heartbeatd && systemctl start heartbeatd"
                     : "systemctl start heartbeatd");
  if (running_from_build_tree ())
    return g_strdup_printf ("bash %s", HB_SOURCE_ROOT "/tools/run.sh");
  return g_strdup (HB_LIBEXECDIR "/heartbeatd --session");
}

/* "heartbeatd is not running …", with why the bus could not start it
 * (@reason: GLib's "Error calling StartServiceByName for NAME: " and a
 * final full stop taken off) if it tried, and what to do. */
static char *
not_running (const char *reason)
{
  g_autofree char *why = NULL;
  g_autofree char *hint = NULL;
  const char *after_name;

  if (reason == NULL)
    {
      hint = start_hint (NULL);
      /* TRANSLATORS: %s is "system bus" or "session bus", then a command */
      return g_strdup_printf (_("heartbeatd is not running on the %s. Start it with: %s"), hbctl_bus_name (), hint);
    }
  after_name = strstr (reason, HEARTBEAT_CLIENT_BUS_NAME ": ");
  why = g_strdup (after_name ? after_name + strlen (HEARTBEAT_CLIENT_BUS_NAME ": ") : reason);
  g_strstrip (why);
  if (g_str_has_suffix (why, "."))
    why[strlen (why) - 1] = '\0';
  hint = start_hint (why);
  /* TRANSLATORS: %s is "system bus" or "session bus", then why the bus
   * could not start heartbeatd (its own words), then a command */
  return g_strdup_printf (_("heartbeatd is not running on the %s and could not be started: %s. Start it with: %s"),
                          hbctl_bus_name (), why, hint);
}

/* What went wrong between hbctl and heartbeatd, if it was the bus and not
 * heartbeatd: a sentence and the exit status, or NULL. "Not running" is
 * said only when the bus says nobody owns the name (and it cannot start
 * anyone) or that starting it failed; a bus that cannot be reached, or
 * refuses the call, says so. */
char *
hbctl_bus_problem (const GError *error,
             int          *exit_status)
{
  static const char prefix[] = "cannot connect to the bus: ";

  if (g_error_matches (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NO_DAEMON))
    {
      *exit_status = EXIT_NO_DAEMON;
      return not_running (NULL);
    }
  if (g_error_matches (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NO_BUS))
    {
      const char *reason = g_str_has_prefix (error->message, prefix) ? error->message + strlen (prefix)
                                                                     : error->message;

      *exit_status = EXIT_NO_DAEMON;
      /* TRANSLATORS: %s is "system bus" or "session bus", then the reason */
      return g_strdup_printf (_("cannot connect to the %s: %s"), hbctl_bus_name (), reason);
    }
  if (error->domain == G_DBUS_ERROR)
    switch (error->code)
      {
      case G_DBUS_ERROR_ACCESS_DENIED:
      case G_DBUS_ERROR_AUTH_FAILED:
      case G_DBUS_ERROR_LIMITS_EXCEEDED:
        *exit_status = EXIT_REFUSED;
        /* TRANSLATORS: %s is "system bus" or "session bus", then the bus's message */
        return g_strdup_printf (_("the %s refused the request: %s"), hbctl_bus_name (), error->message);
      case G_DBUS_ERROR_SPAWN_EXEC_FAILED:
      case G_DBUS_ERROR_SPAWN_FORK_FAILED:
      case G_DBUS_ERROR_SPAWN_CHILD_EXITED:
      case G_DBUS_ERROR_SPAWN_CHILD_SIGNALED:
      case G_DBUS_ERROR_SPAWN_FAILED:
      case G_DBUS_ERROR_SPAWN_SETUP_FAILED:
      case G_DBUS_ERROR_SPAWN_CONFIG_INVALID:
      case G_DBUS_ERROR_SPAWN_SERVICE_INVALID:
      case G_DBUS_ERROR_SPAWN_SERVICE_NOT_FOUND:
      case G_DBUS_ERROR_SPAWN_PERMISSIONS_INVALID:
      case G_DBUS_ERROR_SPAWN_FILE_INVALID:
      case G_DBUS_ERROR_SPAWN_NO_MEMORY:
        *exit_status = EXIT_NO_DAEMON;
        return not_running (error->message);
      default:
        break;
      }
  return NULL;
}

/* What went wrong connecting to heartbeatd (the bus starting it if it can,
 * and a Ping): hbctl_bus_problem(), and otherwise heartbeatd could not be
 * started (a masked unit: org.freedesktop.systemd1.UnitMasked, a failed
 * unit, an activation that timed out, …) or does not answer. Never NULL;
 * *exit_status is EXIT_NO_DAEMON unless the bus refused the call. */
char *
hbctl_connect_problem (const GError *error,
                 int          *exit_status)
{
  char *problem = hbctl_bus_problem (error, exit_status);

  if (problem)
    return problem;
  *exit_status = EXIT_NO_DAEMON;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    /* TRANSLATORS: %s is "system bus" or "session bus", then the reason */
    return g_strdup_printf (_("heartbeatd does not answer on the %s: %s"), hbctl_bus_name (), error->message);
  return not_running (error->message);
}

/* Reports a failed call in words; returns the exit status. */
int
hbctl_report (HeartbeatClient *client,
        const char      *id,
        const GError    *error)
{
  g_autofree char *problem = NULL;
  int exit_status = EXIT_REFUSED;
  guint32 uid;

  problem = hbctl_bus_problem (error, &exit_status);
  if (problem)
    {
      hbctl_print_error ("%s", problem);
      return exit_status;
    }
  if (error->domain != HEARTBEAT_CLIENT_ERROR)
    {
      hbctl_print_error ("%s", error->message);
      return EXIT_REFUSED;
    }

  switch ((HeartbeatClientError) error->code)
    {
    case HEARTBEAT_CLIENT_ERROR_NO_DAEMON:
    case HEARTBEAT_CLIENT_ERROR_NO_BUS:
      g_assert_not_reached ();   /* hbctl_bus_problem() */
    case HEARTBEAT_CLIENT_ERROR_NOT_FOUND:
      hbctl_print_error (_("there is no agent \"%s\""), id);
      break;
    case HEARTBEAT_CLIENT_ERROR_ACCESS_DENIED:
      uid = client ? owner_of (client, id) : G_MAXUINT32;
      if (uid == G_MAXUINT32)
        hbctl_print_error ("%s", error->message);
      else
        {
          g_autofree char *name = hbctl_user_name (uid);
          hbctl_print_error (_("agent \"%s\" belongs to uid %u (%s); only its owner, root, or a user "
                         "allowed by polkit may change it"), id, uid, name);
        }
      break;
    case HEARTBEAT_CLIENT_ERROR_EXISTS:
      uid = client ? owner_of (client, id) : G_MAXUINT32;
      if (uid == G_MAXUINT32)
        hbctl_print_error ("%s", error->message);
      else
        hbctl_print_error (_("agent \"%s\" is already registered by uid %u"), id, uid);
      break;
    case HEARTBEAT_CLIENT_ERROR_INVALID_ARGUMENT:
    case HEARTBEAT_CLIENT_ERROR_QUOTA_EXCEEDED:
    default:
      hbctl_print_error ("%s", error->message);
      break;
    }
  return EXIT_REFUSED;
}

HeartbeatClient *
hbctl_connect_client (int *status)
{
  g_autoptr(GError) error = NULL;
  HeartbeatClient *client = heartbeat_client_new_sync (opt.bus_type, NULL, &error);

  if (client == NULL)
    {
      g_autofree char *problem = hbctl_connect_problem (error, status);

      hbctl_print_error ("%s", problem);
    }
  return client;
}

/* ------------------------------------------------------------------ */
/* The transport                                                       */

typedef struct {
  HbctlTransport   parent;
  HeartbeatClient *client;
} DBusTransport;

/* The client, connected at the first call (a failure printed, with
 * *exit_status set) */
static HeartbeatClient *
dbus_client (DBusTransport *self,
             int           *exit_status)
{
  if (self->client == NULL)
    self->client = hbctl_connect_client (exit_status);
  return self->client;
}

/* This machine, as GET /v1/host gives the daemon's (the disk is that of
 * /, the state directory being the daemon's to know): over D-Bus,
 * heartbeatd runs here. CPU use is a difference: two samples a tenth of
 * a second apart. */
static JsonNode *
read_local_host (void)
{
  guint64 busy1, total1, busy2, total2;
  double cpu = -1;

  if (hb_host_read_cpu (&busy1, &total1))
    {
      g_usleep (G_USEC_PER_SEC / 10);
      if (hb_host_read_cpu (&busy2, &total2))
        cpu = hb_host_cpu_percent (busy1, total1, busy2, total2);
    }
  return hb_host_to_json (cpu, "/");
}

/* GetStatus (always: it tells the daemon's line) and ListAgents */
static gboolean
dbus_overview (HbctlTransport     *transport,
               HbctlOverviewFlags  flags,
               HbctlOverview      *overview,
               int                *exit_status)
{
  DBusTransport *self = (DBusTransport *) transport;
  HeartbeatClient *client = dbus_client (self, exit_status);
  g_autoptr(GError) error = NULL;

  if (client == NULL)
    return FALSE;
  overview->status = heartbeat_client_get_status (client, &error);
  overview->agents = overview->status ? heartbeat_client_list_agents (client, &error) : NULL;
  if (overview->agents == NULL)
    {
      *exit_status = hbctl_report (client, NULL, error);
      return FALSE;
    }
  overview->started_at = hbctl_dict_uint64 (overview->status, "started-at-usec");
  overview->version = g_strdup (hbctl_dict_string (overview->status, "version"));
  if (flags & HBCTL_OVERVIEW_HOST)
    overview->host = read_local_host ();
  return TRUE;
}

static GVariant *
dbus_list_agents (HbctlTransport *transport,
                  int            *exit_status)
{
  DBusTransport *self = (DBusTransport *) transport;
  HeartbeatClient *client = dbus_client (self, exit_status);
  g_autoptr(GError) error = NULL;
  GVariant *agents;

  if (client == NULL)
    return NULL;
  agents = heartbeat_client_list_agents (client, &error);
  if (agents == NULL)
    *exit_status = hbctl_report (client, NULL, error);
  return agents;
}

static GVariant *
dbus_get_agent (HbctlTransport *transport,
                const char     *id,
                int            *exit_status)
{
  DBusTransport *self = (DBusTransport *) transport;
  HeartbeatClient *client = dbus_client (self, exit_status);
  g_autoptr(GError) error = NULL;
  GVariant *agent;

  if (client == NULL)
    return NULL;
  agent = heartbeat_client_get_agent (client, id, &error);
  if (agent == NULL)
    *exit_status = hbctl_report (client, id, error);
  return agent;
}

static GVariant *
dbus_get_history (HbctlTransport *transport,
                  const char     *id)
{
  DBusTransport *self = (DBusTransport *) transport;
  int ignored = EXIT_OK;
  HeartbeatClient *client = dbus_client (self, &ignored);
  g_autoptr(GError) error = NULL;
  GVariant *history;

  if (client == NULL)
    return NULL;
  history = heartbeat_client_get_history (client, id, NULL, &error);
  if (history == NULL)
    hbctl_print_error (_("no history: %s"), error->message);
  return history;
}

static int
dbus_beat (HbctlTransport *transport,
           const char     *id,
           GVariant       *details)
{
  DBusTransport *self = (DBusTransport *) transport;
  int status = EXIT_OK;
  HeartbeatClient *client = dbus_client (self, &status);
  g_autoptr(GError) error = NULL;

  if (client == NULL)
    return status;
  if (!heartbeat_client_beat (client, id, details, &error))
    return hbctl_report (client, id, error);
  return EXIT_OK;
}

static GVariant *
dbus_check_agent (HbctlTransport  *transport,
                  const char      *id,
                  char           **problem)
{
  DBusTransport *self = (DBusTransport *) transport;
  g_autoptr(GError) error = NULL;
  GVariant *agent;
  int ignored;

  if (self->client == NULL)
    self->client = heartbeat_client_new_sync (opt.bus_type, NULL, &error);
  if (self->client == NULL)
    {
      *problem = hbctl_connect_problem (error, &ignored);
      return NULL;
    }
  agent = heartbeat_client_get_agent (self->client, id, &error);
  if (agent == NULL)
    {
      if (g_error_matches (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NOT_FOUND))
        *problem = g_strdup_printf (_("there is no agent \"%s\""), id);
      else
        {
          *problem = hbctl_bus_problem (error, &ignored);
          if (*problem == NULL)
            *problem = g_strdup (error->message);
        }
    }
  return agent;
}

/* A method the client library does not wrap (yet), on the client's
 * connection, with its errors in the library's terms (see
 * translate_error() in heartbeat-client.c): remote names of
 * org.heartbeat.Monitor1.Error become HEARTBEAT_CLIENT_ERROR codes (the
 * library registered them), without GDBus's prefix. */
static GVariant *
dbus_call (HeartbeatClient *client,
           const char      *method,
           GVariant        *parameters,
           const char      *reply_type,
           GError         **error)
{
  GVariant *reply;

  reply = g_dbus_connection_call_sync (heartbeat_client_get_connection (client),
                                       HEARTBEAT_CLIENT_BUS_NAME, HEARTBEAT_CLIENT_OBJECT_PATH,
                                       HEARTBEAT_CLIENT_INTERFACE, method, parameters,
                                       G_VARIANT_TYPE (reply_type), G_DBUS_CALL_FLAGS_NONE,
                                       25000, NULL, error);
  if (reply != NULL)
    return reply;
  if (g_dbus_error_is_remote_error (*error))
    {
      g_autofree char *name = g_dbus_error_get_remote_error (*error);

      if (g_strcmp0 (name, "org.freedesktop.DBus.Error.ServiceUnknown") == 0 ||
          g_strcmp0 (name, "org.freedesktop.DBus.Error.NameHasNoOwner") == 0)
        {
          g_clear_error (error);
          g_set_error_literal (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NO_DAEMON,
                               "heartbeatd is not running");
          return NULL;
        }
      g_dbus_error_strip_remote_error (*error);
    }
  else if (g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_CLOSED))
    {
      g_clear_error (error);
      g_set_error_literal (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NO_BUS,
                           "the bus connection is closed");
    }
  return NULL;
}

/* GetRuns; a daemon older than it (UnknownMethod) has none to give */
static GVariant *
dbus_get_runs (HbctlTransport *transport,
               const char     *id)
{
  DBusTransport *self = (DBusTransport *) transport;
  int ignored = EXIT_OK;
  HeartbeatClient *client = dbus_client (self, &ignored);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  GVariant *runs = NULL;

  if (client == NULL)
    return NULL;
  reply = dbus_call (client, "GetRuns", g_variant_new ("(s)", id), "(aa{sv})", &error);
  if (reply == NULL)
    {
      if (!g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD))
        hbctl_print_error (_("no runs: %s"), error->message);
      return NULL;
    }
  g_variant_get (reply, "(@aa{sv})", &runs);
  return runs;
}

/* A call the client library does not wrap that changes agent @id and
 * answers nothing (StartRun, FinishRun); @parameters may be floating. */
static int
dbus_change (DBusTransport *self,
             const char    *id,
             const char    *method,
             GVariant      *parameters)
{
  g_autoptr(GVariant) held = g_variant_ref_sink (parameters);
  int status = EXIT_OK;
  HeartbeatClient *client = dbus_client (self, &status);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  if (client == NULL)
    return status;
  reply = dbus_call (client, method, held, "()", &error);
  if (reply == NULL)
    return hbctl_report (client, id, error);
  return EXIT_OK;
}

static int
dbus_start_run (HbctlTransport *transport,
                const char     *id)
{
  return dbus_change ((DBusTransport *) transport, id, "StartRun", g_variant_new ("(s)", id));
}

static int
dbus_finish_run (HbctlTransport *transport,
                 const char     *id,
                 GVariant       *end)
{
  return dbus_change ((DBusTransport *) transport, id, "FinishRun", g_variant_new ("(s@a{sv})", id, end));
}

static int
dbus_pause (HbctlTransport *transport,
            const char     *id,
            const char     *reason)
{
  DBusTransport *self = (DBusTransport *) transport;
  int status = EXIT_OK;
  HeartbeatClient *client = dbus_client (self, &status);
  g_autoptr(GError) error = NULL;

  if (client == NULL)
    return status;
  if (!heartbeat_client_pause (client, id, reason, &error))
    return hbctl_report (client, id, error);
  return EXIT_OK;
}

static int
dbus_resume (HbctlTransport *transport,
             const char     *id)
{
  DBusTransport *self = (DBusTransport *) transport;
  int status = EXIT_OK;
  HeartbeatClient *client = dbus_client (self, &status);
  g_autoptr(GError) error = NULL;

  if (client == NULL)
    return status;
  if (!heartbeat_client_resume (client, id, &error))
    return hbctl_report (client, id, error);
  return EXIT_OK;
}

static void
dbus_free (HbctlTransport *transport)
{
  DBusTransport *self = (DBusTransport *) transport;

  g_clear_object (&self->client);
  g_free (self);
}

HbctlTransport *
hbctl_dbus_transport_new (void)
{
  DBusTransport *self = g_new0 (DBusTransport, 1);

  self->parent.overview = dbus_overview;
  self->parent.list_agents = dbus_list_agents;
  self->parent.get_agent = dbus_get_agent;
  self->parent.get_history = dbus_get_history;
  self->parent.get_runs = dbus_get_runs;
  self->parent.beat = dbus_beat;
  self->parent.start_run = dbus_start_run;
  self->parent.finish_run = dbus_finish_run;
  self->parent.check_agent = dbus_check_agent;
  self->parent.pause = dbus_pause;
  self->parent.resume = dbus_resume;
  self->parent.free = dbus_free;
  return &self->parent;
}

HbctlTransport *
hbctl_dbus_transport_new_for_client (HeartbeatClient *client)
{
  HbctlTransport *transport = hbctl_dbus_transport_new ();

  ((DBusTransport *) transport)->client = g_object_ref (client);
  return transport;
}
