/* heartbeat-client.c: a client of heartbeatd (org.heartbeat.Monitor1)
 *
 * A thin wrapper over the bus: typed calls (async first, with sync
 * variants), the daemon's named errors as a GError domain, the daemon's
 * signals as GObject signals, and whether the daemon is on the bus. hbctl
 * is built on it; so is HeartbeatKeepAlive, and applications in any
 * language with GObject Introspection.
 *
 * Every method call goes to the well-known name (not to the unique name
 * the daemon had when we connected), so a daemon that restarted since is
 * found again, and one the bus can activate is started.
 *
 * The bus itself may go away too (restarted, crashed). A client made for a
 * GBusType opens a connection of its own to the bus's address rather than
 * sharing g_bus_get()'s: that one is the application's, and GLib makes the
 * whole process exit when it closes (exit-on-close), which a library must
 * neither trigger nor switch off behind the application's back. Its own
 * connection does not exit on close; when it closes, the client says the
 * daemon vanished and connects again to the same address on the main
 * context, after 100 ms, then 200 ms, doubling up to 5 s between tries,
 * until the bus answers; then the name watcher reports the daemon as it
 * comes. A connection the caller gave (heartbeat_client_new_for_connection())
 * stays the caller's: the client only reports its closing.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "heartbeat-client.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#define CALL_TIMEOUT_MS 25000

/* reconnecting after the bus went away: the first try after the first
 * delay, each next one after twice the last delay, at most the last */
#define RECONNECT_FIRST_DELAY_MS 100
#define RECONNECT_MAX_DELAY_MS   5000

#define BUS_CONNECTION_FLAGS (G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | \
                              G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION)

static const GDBusErrorEntry error_entries[] = {
  { HEARTBEAT_CLIENT_ERROR_NOT_FOUND,        "org.heartbeat.Monitor1.Error.NotFound" },
  { HEARTBEAT_CLIENT_ERROR_EXISTS,           "org.heartbeat.Monitor1.Error.Exists" },
  { HEARTBEAT_CLIENT_ERROR_INVALID_ARGUMENT, "org.heartbeat.Monitor1.Error.InvalidArgument" },
  { HEARTBEAT_CLIENT_ERROR_ACCESS_DENIED,    "org.heartbeat.Monitor1.Error.AccessDenied" },
  { HEARTBEAT_CLIENT_ERROR_QUOTA_EXCEEDED,   "org.heartbeat.Monitor1.Error.QuotaExceeded" },
  { HEARTBEAT_CLIENT_ERROR_NOT_SAVED,        "org.heartbeat.Monitor1.Error.NotSaved" },
  { HEARTBEAT_CLIENT_ERROR_LIMITS_EXCEEDED,  "org.heartbeat.Monitor1.Error.LimitsExceeded" },
};

/**
 * heartbeat_client_error_quark:
 *
 * The error domain of #HeartbeatClientError, which %HEARTBEAT_CLIENT_ERROR
 * expands to. Registering it maps the daemon's D-Bus error names
 * (`org.heartbeat.Monitor1.Error.*`) to its codes.
 *
 * Returns: the #HEARTBEAT_CLIENT_ERROR quark, registered with GDBus so the
 *   daemon's errors arrive in it
 */
GQuark
heartbeat_client_error_quark (void)
{
  static gsize quark = 0;

  g_dbus_error_register_error_domain ("heartbeat-client-error-quark", &quark,
                                      error_entries, G_N_ELEMENTS (error_entries));
  return (GQuark) quark;
}

/**
 * HeartbeatClient:
 *
 * A connection to heartbeatd (`org.heartbeat.Monitor1`) on the system or
 * session bus. Signals are emitted in the thread-default main context of
 * the thread that created the client. A client made for a #GBusType
 * (heartbeat_client_new()) has a bus connection of its own, which never
 * makes the process exit, and connects again from that context when the
 * bus went away; one made on the caller's connection
 * (heartbeat_client_new_for_connection()) only reports its closing.
 */
struct _HeartbeatClient {
  GObject       parent_instance;
  GDBusProxy   *proxy;
  guint         watch_id;
  char         *daemon_owner;      /* unique name, or NULL */
  gboolean      daemon_running;
  gboolean      watch_reported;    /* the name watcher reported once */
  gboolean      interactive;       /* allow interactive authorization of changes */
  GMainContext *context;           /* where signals are emitted and reconnecting runs */
  gulong        closed_id;         /* "closed" of the proxy's connection */
  char         *address;           /* the bus to connect to again, or NULL: the
                                    * connection is the caller's */
  GSource      *reconnect_timer;   /* the next try, or NULL */
  GCancellable *reconnecting;      /* a try underway, or NULL */
  guint         reconnect_delay_ms;
};

enum {
  SIGNAL_AGENT_REGISTERED,
  SIGNAL_AGENT_UNREGISTERED,
  SIGNAL_AGENT_STALE,
  SIGNAL_AGENT_TIMED_OUT,
  SIGNAL_AGENT_RECOVERED,
  SIGNAL_AGENT_STATE_CHANGED,
  SIGNAL_DAEMON_VANISHED,
  SIGNAL_DAEMON_APPEARED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

enum {
  PROP_0,
  PROP_DAEMON_RUNNING,
  PROP_CONNECTION,
  PROP_INTERACTIVE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (HeartbeatClient, heartbeat_client, G_TYPE_OBJECT)

/* Errors meaning "nobody answers at that name" (and the bus cannot start
 * anyone) become NO_DAEMON, and only those: the bus refusing the call
 * (org.freedesktop.DBus.Error.AccessDenied from its policy, a failed
 * activation, …) stays a G_DBUS_ERROR. Every remote error loses GDBus's
 * "GDBus.Error:name: " prefix. */
static void
translate_error (GError **error)
{
  if (error == NULL || *error == NULL)
    return;

  if (g_dbus_error_is_remote_error (*error))
    {
      g_autofree char *name = g_dbus_error_get_remote_error (*error);

      if (g_strcmp0 (name, "org.freedesktop.DBus.Error.ServiceUnknown") == 0 ||
          g_strcmp0 (name, "org.freedesktop.DBus.Error.NameHasNoOwner") == 0)
        {
          g_clear_error (error);
          g_set_error_literal (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NO_DAEMON,
                               "heartbeatd is not running");
          return;
        }
      g_dbus_error_strip_remote_error (*error);
    }
  else if (g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_CLOSED))
    {
      /* the bus went away (or dropped us): not the same as no daemon */
      g_clear_error (error);
      g_set_error_literal (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NO_BUS,
                           "the bus connection is closed");
    }
}

static GVariant *
dict_or_empty (GVariant *dict)
{
  return dict ? dict : g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0);
}

/* ------------------------------------------------------------------ */
/* The one place that calls the daemon                                 */

/* The calls that change an agent are the ones the daemon may ask polkit
 * about; only they carry ALLOW_INTERACTIVE_AUTHORIZATION, and only when
 * the application asked for it (heartbeat_client_set_interactive()). */
static GDBusCallFlags
call_flags (HeartbeatClient *self,
            const char      *method)
{
  static const char *const changes[] = { "Register", "Beat", "MarkIdle", "Unregister", "Pause", "Resume" };

  if (!self->interactive)
    return G_DBUS_CALL_FLAGS_NONE;
  for (guint i = 0; i < G_N_ELEMENTS (changes); i++)
    if (strcmp (method, changes[i]) == 0)
      return G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION;
  return G_DBUS_CALL_FLAGS_NONE;
}

static GVariant *
call_sync (HeartbeatClient *self,
           const char      *method,
           GVariant        *parameters,
           const char      *reply_type,
           GCancellable    *cancellable,
           GError         **error)
{
  GVariant *reply;

  reply = g_dbus_connection_call_sync (g_dbus_proxy_get_connection (self->proxy),
                                       HEARTBEAT_CLIENT_BUS_NAME, HEARTBEAT_CLIENT_OBJECT_PATH,
                                       HEARTBEAT_CLIENT_INTERFACE, method, parameters,
                                       reply_type ? G_VARIANT_TYPE (reply_type) : NULL,
                                       call_flags (self, method), CALL_TIMEOUT_MS, cancellable, error);
  if (reply == NULL)
    translate_error (error);
  return reply;
}

static void
on_call_reply (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  GVariant *reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);

  if (reply == NULL)
    {
      translate_error (&error);
      g_task_return_error (task, error);
    }
  else
    g_task_return_pointer (task, reply, (GDestroyNotify) g_variant_unref);
}

static void
call_async (HeartbeatClient    *self,
            const char         *method,
            GVariant           *parameters,
            const char         *reply_type,
            GCancellable       *cancellable,
            GAsyncReadyCallback callback,
            gpointer            user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  /* the method names the task: its _finish checks it was given the right one */
  g_task_set_task_data (task, (gpointer) method, NULL);
  g_task_set_name (task, method);
  g_dbus_connection_call (g_dbus_proxy_get_connection (self->proxy),
                          HEARTBEAT_CLIENT_BUS_NAME, HEARTBEAT_CLIENT_OBJECT_PATH,
                          HEARTBEAT_CLIENT_INTERFACE, method, parameters,
                          reply_type ? G_VARIANT_TYPE (reply_type) : NULL,
                          call_flags (self, method), CALL_TIMEOUT_MS, cancellable, on_call_reply, task);
}

/* The reply (a tuple), or NULL with @error set. */
static GVariant *
call_finish (HeartbeatClient *self,
             GAsyncResult    *result,
             const char      *method,
             GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_strcmp0 (g_task_get_task_data (G_TASK (result)), method) == 0, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static GVariant *
first_child (GVariant *reply)
{
  GVariant *child;

  if (reply == NULL)
    return NULL;
  child = g_variant_get_child_value (reply, 0);
  g_variant_unref (reply);
  return child;
}

static HeartbeatAgentInfo *
agent_info_from_dict (GVariant *dict)
{
  HeartbeatAgentInfo *info;

  if (dict == NULL)
    return NULL;
  info = heartbeat_agent_info_new (dict);
  g_variant_unref (dict);
  return info;
}

/* ------------------------------------------------------------------ */
/* Option dictionaries                                                 */

/**
 * heartbeat_register_options_new:
 * @task_id: (nullable): what the agent works on, or %NULL
 * @stale_after_usec: its stale threshold in microseconds, or 0 for the
 *   daemon's default
 * @timeout_after_usec: its timeout threshold in microseconds, or 0 for the
 *   daemon's default
 * @pid: the process behind it (it becomes `gone` when that exits), or 0
 * @bind_to_caller: bind it to this client's bus connection (it becomes
 *   `gone` when the connection goes away)
 * @metadata: (nullable): caller data, an `a{sv}`, or %NULL
 *
 * Builds the options of org.heartbeat.Monitor1.Register, leaving out the
 * ones that keep their defaults, for heartbeat_client_register() and
 * friends.
 *
 * Returns: (transfer floating): an `a{sv}`, floating like the result of
 *   g_variant_new(): passing it to heartbeat_client_register() consumes it
 */
GVariant *
heartbeat_register_options_new (const char *task_id,
                                guint64     stale_after_usec,
                                guint64     timeout_after_usec,
                                guint32     pid,
                                gboolean    bind_to_caller,
                                GVariant   *metadata)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_return_val_if_fail (metadata == NULL || g_variant_is_of_type (metadata, G_VARIANT_TYPE_VARDICT), NULL);

  if (task_id != NULL && *task_id != '\0')
    g_variant_builder_add (&builder, "{sv}", "task-id", g_variant_new_string (task_id));
  if (stale_after_usec > 0)
    g_variant_builder_add (&builder, "{sv}", "stale-after-usec", g_variant_new_uint64 (stale_after_usec));
  if (timeout_after_usec > 0)
    g_variant_builder_add (&builder, "{sv}", "timeout-after-usec", g_variant_new_uint64 (timeout_after_usec));
  if (pid > 0)
    g_variant_builder_add (&builder, "{sv}", "pid", g_variant_new_uint32 (pid));
  if (bind_to_caller)
    g_variant_builder_add (&builder, "{sv}", "bind-to-caller", g_variant_new_boolean (TRUE));
  if (metadata != NULL)
    g_variant_builder_add (&builder, "{sv}", "metadata", metadata);
  return g_variant_builder_end (&builder);
}

/**
 * heartbeat_beat_details_new:
 * @status: (nullable): the status (`running`, `idle`, `error` or free
 *   text), or %NULL for `running`
 * @progress: how far along the agent is, or NaN (C `NAN`, Python
 *   `float("nan")`, JavaScript `NaN`) for none
 * @metadata: (nullable): metadata to merge, an `a{sv}`, or %NULL
 *
 * Builds the details of org.heartbeat.Monitor1.Beat.
 *
 * Returns: (transfer floating): an `a{sv}`, floating like the result of
 *   g_variant_new(): passing it to heartbeat_client_beat() consumes it
 */
GVariant *
heartbeat_beat_details_new (const char *status,
                            double      progress,
                            GVariant   *metadata)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_return_val_if_fail (metadata == NULL || g_variant_is_of_type (metadata, G_VARIANT_TYPE_VARDICT), NULL);

  if (status != NULL)
    g_variant_builder_add (&builder, "{sv}", "status", g_variant_new_string (status));
  if (!isnan (progress))
    g_variant_builder_add (&builder, "{sv}", "progress", g_variant_new_double (progress));
  if (metadata != NULL)
    g_variant_builder_add (&builder, "{sv}", "metadata", metadata);
  return g_variant_builder_end (&builder);
}

/* ------------------------------------------------------------------ */
/* Register                                                            */

/**
 * heartbeat_client_register:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @options: (nullable): an `a{sv}` of Register options
 *   (`task-id`, `stale-after-usec`, `timeout-after-usec`, `pid`,
 *   `bind-to-caller`, `metadata`; see heartbeat_register_options_new()),
 *   or %NULL. A floating reference is consumed.
 * @error: return location for a #GError
 *
 * Registers (or restarts in place) the agent @id, blocking.
 *
 * Returns: %TRUE if the agent is registered
 */
gboolean
heartbeat_client_register (HeartbeatClient *client,
                           const char      *id,
                           GVariant        *options,
                           GError         **error)
{
  g_autoptr(GVariant) reply = NULL;

  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), FALSE);
  g_return_val_if_fail (id != NULL, FALSE);
  reply = call_sync (client, "Register", g_variant_new ("(s@a{sv})", id, dict_or_empty (options)),
                     "()", NULL, error);
  return reply != NULL;
}

/**
 * heartbeat_client_register_async:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @options: (nullable): as for heartbeat_client_register()
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the daemon answered
 * @user_data: (closure): data for @callback
 *
 * Registers (or restarts in place) the agent @id.
 */
void
heartbeat_client_register_async (HeartbeatClient    *client,
                                 const char         *id,
                                 GVariant           *options,
                                 GCancellable       *cancellable,
                                 GAsyncReadyCallback callback,
                                 gpointer            user_data)
{
  g_return_if_fail (HEARTBEAT_IS_CLIENT (client));
  g_return_if_fail (id != NULL);
  call_async (client, "Register", g_variant_new ("(s@a{sv})", id, dict_or_empty (options)), "()",
              cancellable, callback, user_data);
}

/**
 * heartbeat_client_register_finish:
 * @client: a #HeartbeatClient
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes an operation started with heartbeat_client_register_async().
 * It fails as heartbeat_client_register() does (for instance
 * %HEARTBEAT_CLIENT_ERROR_EXISTS when another uid owns the id).
 *
 * Returns: %TRUE if the agent is registered
 */
gboolean
heartbeat_client_register_finish (HeartbeatClient *client,
                                  GAsyncResult    *result,
                                  GError         **error)
{
  g_autoptr(GVariant) reply = call_finish (client, result, "Register", error);

  return reply != NULL;
}

/**
 * heartbeat_client_register_full:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @task_id: (nullable): what the agent works on
 * @stale_after_usec: its stale threshold, or 0 for the default
 * @timeout_after_usec: its timeout threshold, or 0 for the default
 * @pid: the process behind it, or 0
 * @bind_to_caller: bind it to this client's connection
 * @metadata: (nullable): caller data, an `a{sv}`
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * heartbeat_client_register() with every option as an argument (see
 * heartbeat_register_options_new()), blocking.
 *
 * Returns: %TRUE if the agent is registered
 */
gboolean
heartbeat_client_register_full (HeartbeatClient *client,
                                const char      *id,
                                const char      *task_id,
                                guint64          stale_after_usec,
                                guint64          timeout_after_usec,
                                guint32          pid,
                                gboolean         bind_to_caller,
                                GVariant        *metadata,
                                GCancellable    *cancellable,
                                GError         **error)
{
  GVariant *options;
  g_autoptr(GVariant) reply = NULL;

  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), FALSE);
  g_return_val_if_fail (id != NULL, FALSE);
  options = heartbeat_register_options_new (task_id, stale_after_usec, timeout_after_usec,
                                            pid, bind_to_caller, metadata);
  reply = call_sync (client, "Register", g_variant_new ("(s@a{sv})", id, options),
                     "()", cancellable, error);
  return reply != NULL;
}

/* ------------------------------------------------------------------ */
/* Beat                                                                */

/**
 * heartbeat_client_beat:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @details: (nullable): an `a{sv}` of Beat details
 *   (`status`, `progress`, `metadata`; see heartbeat_beat_details_new()),
 *   or %NULL. A floating reference is consumed.
 * @error: return location for a #GError
 *
 * Reports activity of the agent @id (org.heartbeat.Monitor1.Beat),
 * blocking: its stale deadline starts over and its state follows the
 * status in @details (`healthy` again, or `error`). Fails with
 * %HEARTBEAT_CLIENT_ERROR_NOT_FOUND if heartbeatd does not know @id, so
 * register it first.
 *
 * Returns: %TRUE if the beat was taken
 */
gboolean
heartbeat_client_beat (HeartbeatClient *client,
                       const char      *id,
                       GVariant        *details,
                       GError         **error)
{
  g_autoptr(GVariant) reply = NULL;

  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), FALSE);
  g_return_val_if_fail (id != NULL, FALSE);
  reply = call_sync (client, "Beat", g_variant_new ("(s@a{sv})", id, dict_or_empty (details)),
                     "()", NULL, error);
  return reply != NULL;
}

/**
 * heartbeat_client_beat_full:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @status: (nullable): the status, or %NULL for `running`
 * @progress: how far along, or NaN for none
 * @metadata: (nullable): metadata to merge, an `a{sv}`
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * heartbeat_client_beat() with the details as arguments, blocking.
 *
 * Returns: %TRUE if the beat was taken
 */
gboolean
heartbeat_client_beat_full (HeartbeatClient *client,
                            const char      *id,
                            const char      *status,
                            double           progress,
                            GVariant        *metadata,
                            GCancellable    *cancellable,
                            GError         **error)
{
  GVariant *details;
  g_autoptr(GVariant) reply = NULL;

  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), FALSE);
  g_return_val_if_fail (id != NULL, FALSE);
  details = heartbeat_beat_details_new (status, progress, metadata);
  reply = call_sync (client, "Beat", g_variant_new ("(s@a{sv})", id, details), "()",
                     cancellable, error);
  return reply != NULL;
}

/**
 * heartbeat_client_beat_async:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @details: (nullable): as for heartbeat_client_beat()
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the daemon answered
 * @user_data: (closure): data for @callback
 *
 * heartbeat_client_beat() without blocking.
 */
void
heartbeat_client_beat_async (HeartbeatClient    *client,
                             const char         *id,
                             GVariant           *details,
                             GCancellable       *cancellable,
                             GAsyncReadyCallback callback,
                             gpointer            user_data)
{
  g_return_if_fail (HEARTBEAT_IS_CLIENT (client));
  g_return_if_fail (id != NULL);
  call_async (client, "Beat", g_variant_new ("(s@a{sv})", id, dict_or_empty (details)), "()",
              cancellable, callback, user_data);
}

/**
 * heartbeat_client_beat_finish:
 * @client: a #HeartbeatClient
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes an operation started with heartbeat_client_beat_async(). It
 * fails as heartbeat_client_beat() does.
 *
 * Returns: %TRUE if the beat was taken
 */
gboolean
heartbeat_client_beat_finish (HeartbeatClient *client,
                              GAsyncResult    *result,
                              GError         **error)
{
  g_autoptr(GVariant) reply = call_finish (client, result, "Beat", error);

  return reply != NULL;
}

/* ------------------------------------------------------------------ */
/* MarkIdle, Unregister                                                */

/**
 * heartbeat_client_mark_idle:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @error: return location for a #GError
 *
 * Says the agent has nothing to do: no deadlines until its next beat.
 *
 * Returns: %TRUE on success
 */
gboolean
heartbeat_client_mark_idle (HeartbeatClient *client,
                            const char      *id,
                            GError         **error)
{
  g_autoptr(GVariant) reply = NULL;

  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), FALSE);
  g_return_val_if_fail (id != NULL, FALSE);
  reply = call_sync (client, "MarkIdle", g_variant_new ("(s)", id), "()", NULL, error);
  return reply != NULL;
}

/**
 * heartbeat_client_mark_idle_async:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the daemon answered
 * @user_data: (closure): data for @callback
 *
 * heartbeat_client_mark_idle() without blocking.
 */
void
heartbeat_client_mark_idle_async (HeartbeatClient    *client,
                                  const char         *id,
                                  GCancellable       *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer            user_data)
{
  g_return_if_fail (HEARTBEAT_IS_CLIENT (client));
  g_return_if_fail (id != NULL);
  call_async (client, "MarkIdle", g_variant_new ("(s)", id), "()",
              cancellable, callback, user_data);
}

/**
 * heartbeat_client_mark_idle_finish:
 * @client: a #HeartbeatClient
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes an operation started with heartbeat_client_mark_idle_async().
 * It fails as heartbeat_client_mark_idle() does.
 *
 * Returns: %TRUE on success
 */
gboolean
heartbeat_client_mark_idle_finish (HeartbeatClient *client,
                                   GAsyncResult    *result,
                                   GError         **error)
{
  g_autoptr(GVariant) reply = call_finish (client, result, "MarkIdle", error);

  return reply != NULL;
}

/**
 * heartbeat_client_unregister:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @error: return location for a #GError
 *
 * Stops monitoring the agent.
 *
 * Returns: %TRUE on success
 */
gboolean
heartbeat_client_unregister (HeartbeatClient *client,
                             const char      *id,
                             GError         **error)
{
  g_autoptr(GVariant) reply = NULL;

  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), FALSE);
  g_return_val_if_fail (id != NULL, FALSE);
  reply = call_sync (client, "Unregister", g_variant_new ("(s)", id), "()", NULL, error);
  return reply != NULL;
}

/**
 * heartbeat_client_unregister_async:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the daemon answered
 * @user_data: (closure): data for @callback
 *
 * heartbeat_client_unregister() without blocking.
 */
void
heartbeat_client_unregister_async (HeartbeatClient    *client,
                                   const char         *id,
                                   GCancellable       *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer            user_data)
{
  g_return_if_fail (HEARTBEAT_IS_CLIENT (client));
  g_return_if_fail (id != NULL);
  call_async (client, "Unregister", g_variant_new ("(s)", id), "()",
              cancellable, callback, user_data);
}

/**
 * heartbeat_client_unregister_finish:
 * @client: a #HeartbeatClient
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes an operation started with heartbeat_client_unregister_async().
 * It fails as heartbeat_client_unregister() does.
 *
 * Returns: %TRUE on success
 */
gboolean
heartbeat_client_unregister_finish (HeartbeatClient *client,
                                    GAsyncResult    *result,
                                    GError         **error)
{
  g_autoptr(GVariant) reply = call_finish (client, result, "Unregister", error);

  return reply != NULL;
}

/* ------------------------------------------------------------------ */
/* Pause, Resume                                                       */

/**
 * heartbeat_client_pause:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @reason: (nullable): why, for whoever looks (maintenance, a ticket), or
 *   %NULL
 * @error: return location for a #GError
 *
 * Pauses the agent (org.heartbeat.Monitor1.Pause): its state becomes
 * `paused`, it is not judged (no stale, timed-out or late, no alert, no
 * restart) until heartbeat_client_resume(); its beats, runs and status are
 * still recorded. Pausing a paused agent updates the reason. Only the
 * agent's owner, root or a caller polkit allows may pause it
 * (%HEARTBEAT_CLIENT_ERROR_ACCESS_DENIED otherwise).
 *
 * Returns: %TRUE on success
 */
gboolean
heartbeat_client_pause (HeartbeatClient *client,
                        const char      *id,
                        const char      *reason,
                        GError         **error)
{
  g_auto(GVariantDict) options = G_VARIANT_DICT_INIT (NULL);
  g_autoptr(GVariant) reply = NULL;

  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), FALSE);
  g_return_val_if_fail (id != NULL, FALSE);
  if (reason != NULL)
    g_variant_dict_insert (&options, "reason", "s", reason);
  reply = call_sync (client, "Pause", g_variant_new ("(s@a{sv})", id, g_variant_dict_end (&options)), "()",
                     NULL, error);
  return reply != NULL;
}

/**
 * heartbeat_client_resume:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @error: return location for a #GError
 *
 * Ends the pause of the agent (org.heartbeat.Monitor1.Resume): it is
 * judged afresh from what is known of it, every threshold counted from
 * now. Resuming an agent that is not paused does nothing. Authorized as
 * heartbeat_client_pause().
 *
 * Returns: %TRUE on success
 */
gboolean
heartbeat_client_resume (HeartbeatClient *client,
                         const char      *id,
                         GError         **error)
{
  g_autoptr(GVariant) reply = NULL;

  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), FALSE);
  g_return_val_if_fail (id != NULL, FALSE);
  reply = call_sync (client, "Resume", g_variant_new ("(s)", id), "()", NULL, error);
  return reply != NULL;
}

/* ------------------------------------------------------------------ */
/* GetAgent                                                            */

/**
 * heartbeat_client_get_agent:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @error: return location for a #GError
 *
 * Describes one agent as its raw dictionary (org.heartbeat.Monitor1.GetAgent),
 * blocking; heartbeat_client_get_agent_info() wraps the same reply in typed
 * getters. Fails with %HEARTBEAT_CLIENT_ERROR_NOT_FOUND if there is no
 * agent @id.
 *
 * Returns: (transfer full) (nullable): the agent, an `a{sv}` (see
 *   org.heartbeat.Monitor1.GetAgent), or %NULL with @error set
 */
GVariant *
heartbeat_client_get_agent (HeartbeatClient *client,
                            const char      *id,
                            GError         **error)
{
  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), NULL);
  g_return_val_if_fail (id != NULL, NULL);
  return first_child (call_sync (client, "GetAgent", g_variant_new ("(s)", id), "(a{sv})", NULL, error));
}

/**
 * heartbeat_client_get_agent_info:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Describes one agent (org.heartbeat.Monitor1.GetAgent), blocking: a
 * snapshot that does not follow later changes. Fails with
 * %HEARTBEAT_CLIENT_ERROR_NOT_FOUND if there is no agent @id.
 *
 * Returns: (transfer full): the agent, or %NULL with @error set
 */
HeartbeatAgentInfo *
heartbeat_client_get_agent_info (HeartbeatClient *client,
                                 const char      *id,
                                 GCancellable    *cancellable,
                                 GError         **error)
{
  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), NULL);
  g_return_val_if_fail (id != NULL, NULL);
  return agent_info_from_dict (first_child (call_sync (client, "GetAgent", g_variant_new ("(s)", id),
                                                       "(a{sv})", cancellable, error)));
}

/**
 * heartbeat_client_get_agent_info_async:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the daemon answered
 * @user_data: (closure): data for @callback
 *
 * Describes one agent.
 */
void
heartbeat_client_get_agent_info_async (HeartbeatClient    *client,
                                       const char         *id,
                                       GCancellable       *cancellable,
                                       GAsyncReadyCallback callback,
                                       gpointer            user_data)
{
  g_return_if_fail (HEARTBEAT_IS_CLIENT (client));
  g_return_if_fail (id != NULL);
  call_async (client, "GetAgent", g_variant_new ("(s)", id), "(a{sv})",
              cancellable, callback, user_data);
}

/**
 * heartbeat_client_get_agent_info_finish:
 * @client: a #HeartbeatClient
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes an operation started with heartbeat_client_get_agent_info_async().
 * It fails as heartbeat_client_get_agent_info() does.
 *
 * Returns: (transfer full): the agent, or %NULL with @error set
 */
HeartbeatAgentInfo *
heartbeat_client_get_agent_info_finish (HeartbeatClient *client,
                                        GAsyncResult    *result,
                                        GError         **error)
{
  return agent_info_from_dict (first_child (call_finish (client, result,
                                                         "GetAgent", error)));
}

/* ------------------------------------------------------------------ */
/* Listing the agents, a page at a time                                */

/*
 * One reply cannot carry every agent (each may have 16 KiB of metadata,
 * and a bus drops a message over its limit), so the daemon lists them in
 * pages (ListAgentsPage, each under 8 MiB) and the client asks for page
 * after page until `next` is empty. A daemon from before ListAgentsPage
 * answers UnknownMethod to the first page: the client then asks it for
 * ListAgents, as it did before.
 */

typedef struct {
  GPtrArray *agents;   /* GVariant a{sv}, every agent listed so far */
  char      *after;    /* the id the next page starts after */
  gboolean   first;    /* no page came yet */
} Listing;

static Listing *
listing_new (void)
{
  Listing *listing = g_new0 (Listing, 1);

  listing->agents = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  listing->after = g_strdup ("");
  listing->first = TRUE;
  return listing;
}

static void
listing_free (Listing *listing)
{
  g_ptr_array_unref (listing->agents);
  g_free (listing->after);
  g_free (listing);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Listing, listing_free)

static GVariant *
listing_page_parameters (Listing *listing)
{
  g_auto(GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  if (listing->after[0] != '\0')
    g_variant_builder_add (&options, "{sv}", "after", g_variant_new_string (listing->after));
  return g_variant_new ("(@a{sv})", g_variant_builder_end (&options));
}

static void
listing_take_agents (Listing  *listing,
                     GVariant *agents)
{
  GVariantIter iter;
  GVariant *agent;

  g_variant_iter_init (&iter, agents);
  while ((agent = g_variant_iter_next_value (&iter)))
    g_ptr_array_add (listing->agents, agent);
}

/* Takes a ListAgentsPage reply (consumed): sets *@done at the end of the
 * list. A daemon whose pages do not move forward is an error, not a loop. */
static gboolean
listing_take_page (Listing   *listing,
                   GVariant  *reply,
                   gboolean  *done,
                   GError   **error)
{
  g_autoptr(GVariant) owned = reply;
  g_autoptr(GVariant) agents = NULL;
  const char *next = NULL;

  g_variant_get (owned, "(@aa{sv}&s)", &agents, &next);
  listing->first = FALSE;
  listing_take_agents (listing, agents);
  *done = next[0] == '\0';
  if (*done)
    return TRUE;
  if (strcmp (next, listing->after) <= 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "heartbeatd's list of agents went back from “%s” to “%s”", listing->after, next);
      return FALSE;
    }
  g_free (listing->after);
  listing->after = g_strdup (next);
  return TRUE;
}

/* Whether @error says the daemon has no ListAgentsPage (one from before
 * it), which only the first page can tell. */
static gboolean
listing_falls_back (Listing      *listing,
                    const GError *error)
{
  return listing->first && g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD);
}

static GVariant *
listing_to_variant (Listing *listing)
{
  return g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE_VARDICT,
                                                  (GVariant **) listing->agents->pdata,
                                                  listing->agents->len));
}

static GPtrArray *
listing_to_infos (Listing *listing)
{
  GPtrArray *infos = g_ptr_array_new_full (listing->agents->len, g_object_unref);

  for (guint i = 0; i < listing->agents->len; i++)
    g_ptr_array_add (infos, heartbeat_agent_info_new (listing->agents->pdata[i]));
  return infos;
}

static Listing *
list_sync (HeartbeatClient *self,
           GCancellable    *cancellable,
           GError         **error)
{
  g_autoptr(Listing) listing = listing_new ();
  gboolean done = FALSE;

  while (!done)
    {
      g_autoptr(GError) local_error = NULL;
      GVariant *reply = call_sync (self, "ListAgentsPage", listing_page_parameters (listing),
                                   "(aa{sv}s)", cancellable, &local_error);

      if (reply == NULL && listing_falls_back (listing, local_error))
        {
          g_autoptr(GVariant) agents = first_child (call_sync (self, "ListAgents", NULL, "(aa{sv})",
                                                               cancellable, error));

          if (agents == NULL)
            return NULL;
          listing_take_agents (listing, agents);
          break;
        }
      if (reply == NULL)
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return NULL;
        }
      if (!listing_take_page (listing, reply, &done, error))
        return NULL;
    }
  return g_steal_pointer (&listing);
}

/* the source tag of a listing's task */
static int list_source_tag;

static void list_next_page (GTask *task);

static void
on_list_agents_reply (GObject      *source,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Listing *listing = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  g_autoptr(GVariant) agents = NULL;

  if (reply == NULL)
    {
      translate_error (&error);
      g_task_return_error (task, error);
      return;
    }
  agents = g_variant_get_child_value (reply, 0);
  listing_take_agents (listing, agents);
  g_task_return_pointer (task, listing_to_infos (listing), (GDestroyNotify) g_ptr_array_unref);
}

static void
on_list_page_reply (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Listing *listing = g_task_get_task_data (task);
  GError *error = NULL;
  GVariant *reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  gboolean done = FALSE;

  if (reply == NULL)
    {
      translate_error (&error);
      if (listing_falls_back (listing, error))
        {
          GCancellable *cancellable = g_task_get_cancellable (task);

          g_clear_error (&error);
          g_dbus_connection_call (G_DBUS_CONNECTION (source),
                                  HEARTBEAT_CLIENT_BUS_NAME, HEARTBEAT_CLIENT_OBJECT_PATH,
                                  HEARTBEAT_CLIENT_INTERFACE, "ListAgents", NULL,
                                  G_VARIANT_TYPE ("(aa{sv})"), G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS,
                                  cancellable, on_list_agents_reply, g_steal_pointer (&task));
          return;
        }
      g_task_return_error (task, error);
      return;
    }
  if (!listing_take_page (listing, reply, &done, &error))
    g_task_return_error (task, error);
  else if (done)
    g_task_return_pointer (task, listing_to_infos (listing), (GDestroyNotify) g_ptr_array_unref);
  else
    list_next_page (g_steal_pointer (&task));
}

/* Asks for the next page; takes @task. */
static void
list_next_page (GTask *task)
{
  HeartbeatClient *self = g_task_get_source_object (task);
  Listing *listing = g_task_get_task_data (task);

  g_dbus_connection_call (g_dbus_proxy_get_connection (self->proxy),
                          HEARTBEAT_CLIENT_BUS_NAME, HEARTBEAT_CLIENT_OBJECT_PATH,
                          HEARTBEAT_CLIENT_INTERFACE, "ListAgentsPage", listing_page_parameters (listing),
                          G_VARIANT_TYPE ("(aa{sv}s)"), G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS,
                          g_task_get_cancellable (task), on_list_page_reply, task);
}

/**
 * heartbeat_client_list_agents:
 * @client: a #HeartbeatClient
 * @error: return location for a #GError
 *
 * Describes every agent. The list is asked for a page at a time
 * (org.heartbeat.Monitor1.ListAgentsPage, each page under 8 MiB), so it
 * works however many agents there are, where a single ListAgents reply
 * could be too large for the bus; a daemon without ListAgentsPage is
 * asked for ListAgents. An agent registered or removed while the pages
 * are read may or may not be listed; every other agent is listed once.
 *
 * Returns: (transfer full) (nullable): every agent, an `aa{sv}` sorted by
 *   id, or %NULL with @error set
 */
GVariant *
heartbeat_client_list_agents (HeartbeatClient *client,
                              GError         **error)
{
  g_autoptr(Listing) listing = NULL;

  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), NULL);
  listing = list_sync (client, NULL, error);
  return listing ? listing_to_variant (listing) : NULL;
}

/**
 * heartbeat_client_list_agent_infos:
 * @client: a #HeartbeatClient
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Describes every agent, a page at a time like
 * heartbeat_client_list_agents().
 *
 * Returns: (transfer container) (element-type HeartbeatAgentInfo): every agent
 *   (the array frees its elements),
 *   sorted by id, or %NULL with @error set
 */
GPtrArray *
heartbeat_client_list_agent_infos (HeartbeatClient *client,
                                   GCancellable    *cancellable,
                                   GError         **error)
{
  g_autoptr(Listing) listing = NULL;

  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), NULL);
  listing = list_sync (client, cancellable, error);
  return listing ? listing_to_infos (listing) : NULL;
}

/**
 * heartbeat_client_list_agent_infos_async:
 * @client: a #HeartbeatClient
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when every page came
 * @user_data: (closure): data for @callback
 *
 * Describes every agent, a page at a time like
 * heartbeat_client_list_agents().
 */
void
heartbeat_client_list_agent_infos_async (HeartbeatClient    *client,
                                         GCancellable       *cancellable,
                                         GAsyncReadyCallback callback,
                                         gpointer            user_data)
{
  GTask *task;

  g_return_if_fail (HEARTBEAT_IS_CLIENT (client));
  task = g_task_new (client, cancellable, callback, user_data);
  g_task_set_source_tag (task, &list_source_tag);
  g_task_set_name (task, "ListAgentsPage");
  g_task_set_task_data (task, listing_new (), (GDestroyNotify) listing_free);
  list_next_page (task);
}

/**
 * heartbeat_client_list_agent_infos_finish:
 * @client: a #HeartbeatClient
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes an operation started with
 * heartbeat_client_list_agent_infos_async(), once every page has come.
 *
 * Returns: (transfer container) (element-type HeartbeatAgentInfo): every agent
 *   (the array frees its elements),
 *   sorted by id, or %NULL with @error set
 */
GPtrArray *
heartbeat_client_list_agent_infos_finish (HeartbeatClient *client,
                                          GAsyncResult    *result,
                                          GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, client), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == &list_source_tag, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ------------------------------------------------------------------ */
/* GetStatus, GetHistory                                               */

/**
 * heartbeat_client_get_status:
 * @client: a #HeartbeatClient
 * @error: return location for a #GError
 *
 * Describes heartbeatd as a whole (org.heartbeat.Monitor1.GetStatus),
 * blocking: its version and start time, its default thresholds, how many
 * agents it holds in each state, their ids, and any `problem` it has.
 *
 * Returns: (transfer full) (nullable): the daemon's status, an `a{sv}` (see
 *   org.heartbeat.Monitor1.GetStatus), or %NULL with @error set
 */
GVariant *
heartbeat_client_get_status (HeartbeatClient *client,
                             GError         **error)
{
  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), NULL);
  return first_child (call_sync (client, "GetStatus", NULL, "(a{sv})", NULL, error));
}

/**
 * heartbeat_client_get_status_async:
 * @client: a #HeartbeatClient
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the daemon answered
 * @user_data: (closure): data for @callback
 *
 * Describes the daemon as a whole.
 */
void
heartbeat_client_get_status_async (HeartbeatClient    *client,
                                   GCancellable       *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer            user_data)
{
  g_return_if_fail (HEARTBEAT_IS_CLIENT (client));
  call_async (client, "GetStatus", NULL, "(a{sv})",
              cancellable, callback, user_data);
}

/**
 * heartbeat_client_get_status_finish:
 * @client: a #HeartbeatClient
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes an operation started with heartbeat_client_get_status_async();
 * the dictionary is the one heartbeat_client_get_status() returns.
 *
 * Returns: (transfer full): the daemon's status, an `a{sv}`, or %NULL with
 *   @error set
 */
GVariant *
heartbeat_client_get_status_finish (HeartbeatClient *client,
                                    GAsyncResult    *result,
                                    GError         **error)
{
  return first_child (call_finish (client, result, "GetStatus", error));
}

/**
 * heartbeat_client_get_history:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * The agent's recent changes of state (org.heartbeat.Monitor1.GetHistory),
 * oldest first: an `a(ts)` of (wall-clock microseconds when the agent
 * entered the state, the state's name: `healthy`, `stale`, `timed-out`,
 * `error`, `gone`, `no-heartbeat` or `paused`, or `unmonitored` from where
 * nobody watched it: the daemon was down). The first entry is the agent's state
 * at its registration or declaration, or at the start of the day the
 * daemon keeps (at most 128 entries, at least the last 24 hours'); the
 * agent has been in the last entry's state since then.
 *
 * The result stays a #GVariant, which bindings unpack natively (in
 * Python `history.unpack()` is a list of `(at_usec, state)` tuples, in
 * GJS `history.deepUnpack()` an array of pairs).
 *
 * Returns: (transfer full) (nullable): the history, an `a(ts)`, or %NULL
 *   with @error set (%HEARTBEAT_CLIENT_ERROR_NOT_FOUND for an unknown id)
 */
GVariant *
heartbeat_client_get_history (HeartbeatClient *client,
                              const char      *id,
                              GCancellable    *cancellable,
                              GError         **error)
{
  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), NULL);
  g_return_val_if_fail (id != NULL, NULL);
  return first_child (call_sync (client, "GetHistory", g_variant_new ("(s)", id), "(a(ts))",
                                 cancellable, error));
}

/**
 * heartbeat_client_get_history_async:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the daemon answered
 * @user_data: (closure): data for @callback
 *
 * Asks for the agent's recent changes of state; see
 * heartbeat_client_get_history().
 */
void
heartbeat_client_get_history_async (HeartbeatClient    *client,
                                    const char         *id,
                                    GCancellable       *cancellable,
                                    GAsyncReadyCallback callback,
                                    gpointer            user_data)
{
  g_return_if_fail (HEARTBEAT_IS_CLIENT (client));
  g_return_if_fail (id != NULL);
  call_async (client, "GetHistory", g_variant_new ("(s)", id), "(a(ts))",
              cancellable, callback, user_data);
}

/**
 * heartbeat_client_get_history_finish:
 * @client: a #HeartbeatClient
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes an operation started with heartbeat_client_get_history_async();
 * the history is the one heartbeat_client_get_history() describes.
 *
 * Returns: (transfer full) (nullable): the history, an `a(ts)` oldest
 *   first, or %NULL with @error set
 */
GVariant *
heartbeat_client_get_history_finish (HeartbeatClient *client,
                                     GAsyncResult    *result,
                                     GError         **error)
{
  return first_child (call_finish (client, result, "GetHistory", error));
}

/* ------------------------------------------------------------------ */
/* The connection and the daemon on it                                 */

/**
 * heartbeat_client_get_connection:
 * @client: a #HeartbeatClient
 *
 * The bus connection the client calls heartbeatd on, for calls or
 * signals this library does not wrap. It is owned by @client. A client
 * made for a #GBusType gets a new one when it connected again after the
 * bus went away (#HeartbeatClient:connection is notified): ask again
 * rather than keep it.
 *
 * Returns: (transfer none): the bus connection
 */
GDBusConnection *
heartbeat_client_get_connection (HeartbeatClient *client)
{
  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), NULL);
  return g_dbus_proxy_get_connection (client->proxy);
}

/**
 * heartbeat_client_is_connected:
 * @client: a #HeartbeatClient
 *
 * Tells whether a call made now would reach a running heartbeatd. Unlike
 * heartbeat_client_get_daemon_running(), it does not wait for the name
 * watcher's report; a daemon the bus can activate but that is not running
 * yet reads as %FALSE.
 *
 * Returns: whether heartbeatd owns its name on the bus right now (asks
 *   the proxy, so it is right even before the main loop ran)
 */
gboolean
heartbeat_client_is_connected (HeartbeatClient *client)
{
  g_autofree char *owner = NULL;

  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), FALSE);
  if (g_dbus_connection_is_closed (g_dbus_proxy_get_connection (client->proxy)))
    return FALSE;   /* the proxy still remembers the owner it last saw */
  owner = g_dbus_proxy_get_name_owner (client->proxy);
  return owner != NULL;
}

/**
 * heartbeat_client_get_daemon_running:
 * @client: a #HeartbeatClient
 *
 * Whether heartbeatd owns its name on the bus, as the bus last reported
 * it; connect to `notify::daemon-running` (or to
 * #HeartbeatClient::daemon-appeared) to follow restarts.
 *
 * Returns: the #HeartbeatClient:daemon-running property
 */
gboolean
heartbeat_client_get_daemon_running (HeartbeatClient *client)
{
  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), FALSE);
  return client->daemon_running;
}

/**
 * heartbeat_client_set_interactive:
 * @client: a #HeartbeatClient
 * @interactive: whether the calls that change agents may wait for the
 *   user to authenticate
 *
 * Sets #HeartbeatClient:interactive. When it is %TRUE, the calls that
 * change an agent (register, beat, mark idle, unregister, sync or async)
 * carry the D-Bus flag ALLOW_INTERACTIVE_AUTHORIZATION
 * (%G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION): when the agent
 * belongs to another uid, heartbeatd then lets polkit ask the user for a
 * password (an authentication dialog or agent) instead of failing at once
 * with %HEARTBEAT_CLIENT_ERROR_ACCESS_DENIED. Such a call may take as long
 * as the user takes to answer, so set it only in an application with a
 * user in front of it, typically after a call failed with
 * %HEARTBEAT_CLIENT_ERROR_ACCESS_DENIED. Calls that only read never ask.
 * %FALSE by default.
 */
void
heartbeat_client_set_interactive (HeartbeatClient *client,
                                  gboolean         interactive)
{
  g_return_if_fail (HEARTBEAT_IS_CLIENT (client));

  interactive = !!interactive;
  if (client->interactive == interactive)
    return;
  client->interactive = interactive;
  g_object_notify_by_pspec (G_OBJECT (client), properties[PROP_INTERACTIVE]);
}

/**
 * heartbeat_client_get_interactive:
 * @client: a #HeartbeatClient
 *
 * Whether the calls that change an agent let polkit ask the user to
 * authenticate; %FALSE unless heartbeat_client_set_interactive() set it.
 *
 * Returns: the #HeartbeatClient:interactive property
 */
gboolean
heartbeat_client_get_interactive (HeartbeatClient *client)
{
  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), FALSE);
  return client->interactive;
}

static void
on_proxy_signal (GDBusProxy *proxy,
                 const char *sender,
                 const char *name,
                 GVariant   *parameters,
                 gpointer    user_data)
{
  HeartbeatClient *self = user_data;
  const char *id, *a, *b;
  guint64 usec;
  g_autoptr(GVariant) agent = NULL;

  if (g_strcmp0 (name, "AgentRegistered") == 0 &&
      g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(ss)")))
    {
      g_variant_get (parameters, "(&s&s)", &id, &a);
      g_signal_emit (self, signals[SIGNAL_AGENT_REGISTERED], 0, id, a);
    }
  else if (g_strcmp0 (name, "AgentUnregistered") == 0 &&
           g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(ss)")))
    {
      g_variant_get (parameters, "(&s&s)", &id, &a);
      g_signal_emit (self, signals[SIGNAL_AGENT_UNREGISTERED], 0, id, a);
    }
  else if (g_strcmp0 (name, "AgentStale") == 0 &&
           g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sta{sv})")))
    {
      g_autoptr(HeartbeatAgentInfo) info = NULL;

      g_variant_get (parameters, "(&st@a{sv})", &id, &usec, &agent);
      info = heartbeat_agent_info_new (agent);
      g_signal_emit (self, signals[SIGNAL_AGENT_STALE], 0, id, (gint64) usec, info);
    }
  else if (g_strcmp0 (name, "AgentTimedOut") == 0 &&
           g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sta{sv})")))
    {
      g_autoptr(HeartbeatAgentInfo) info = NULL;

      g_variant_get (parameters, "(&st@a{sv})", &id, &usec, &agent);
      info = heartbeat_agent_info_new (agent);
      g_signal_emit (self, signals[SIGNAL_AGENT_TIMED_OUT], 0, id, (gint64) usec, info);
    }
  else if (g_strcmp0 (name, "AgentRecovered") == 0 &&
           g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(s)")))
    {
      g_variant_get (parameters, "(&s)", &id);
      g_signal_emit (self, signals[SIGNAL_AGENT_RECOVERED], 0, id);
    }
  else if (g_strcmp0 (name, "AgentStateChanged") == 0 &&
           g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sss)")))
    {
      g_variant_get (parameters, "(&s&s&s)", &id, &a, &b);
      g_signal_emit (self, signals[SIGNAL_AGENT_STATE_CHANGED], 0, id, a, b);
    }
}

/* g_bus_watch_name semantics: the watcher's first report only states
 * what we knew from the ping (the daemon answered, so it runs), unless it
 * says otherwise; later reports are changes. A new owner is a new daemon
 * (restarted, or a second one took over): "daemon-appeared" again. */
static void
on_name_appeared (GDBusConnection *connection,
                  const char      *name,
                  const char      *name_owner,
                  gpointer         user_data)
{
  HeartbeatClient *self = user_data;
  gboolean first = !self->watch_reported;
  gboolean was_running = self->daemon_running;
  gboolean new_owner = g_strcmp0 (self->daemon_owner, name_owner) != 0;

  self->watch_reported = TRUE;
  g_free (self->daemon_owner);
  self->daemon_owner = g_strdup (name_owner);
  self->daemon_running = TRUE;
  /* the outage is over: the next one starts with short tries again (not
   * when the bus merely accepted us: one that drops us at once does not
   * get tries every 100 ms) */
  self->reconnect_delay_ms = 0;
  if (!was_running)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_DAEMON_RUNNING]);
  if (first && was_running)
    return;
  if (new_owner || !was_running)
    g_signal_emit (self, signals[SIGNAL_DAEMON_APPEARED], 0);
}

static void
on_name_vanished (GDBusConnection *connection,
                  const char      *name,
                  gpointer         user_data)
{
  HeartbeatClient *self = user_data;

  self->watch_reported = TRUE;
  g_clear_pointer (&self->daemon_owner, g_free);
  if (!self->daemon_running)
    return;
  self->daemon_running = FALSE;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_DAEMON_RUNNING]);
  g_signal_emit (self, signals[SIGNAL_DAEMON_VANISHED], 0);
}

static void on_connection_closed (GDBusConnection *connection,
                                  gboolean         remote_peer_vanished,
                                  GError          *error,
                                  gpointer         user_data);
static void connection_lost (HeartbeatClient *self);

/* Follows the daemon's signals and name, and the closing of the
 * connection, on the proxy's connection: signals in the client's context.
 * A connection that closed before we listened is lost now. */
static void
follow (HeartbeatClient *self)
{
  GDBusConnection *connection = g_dbus_proxy_get_connection (self->proxy);

  g_main_context_push_thread_default (self->context);
  g_signal_connect_object (self->proxy, "g-signal", G_CALLBACK (on_proxy_signal), self, 0);
  self->closed_id = g_signal_connect (connection, "closed", G_CALLBACK (on_connection_closed), self);
  self->watch_id = g_bus_watch_name_on_connection (connection, HEARTBEAT_CLIENT_BUS_NAME,
                                                   G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                   on_name_appeared, on_name_vanished,
                                                   self, NULL);
  g_main_context_pop_thread_default (self->context);
  if (g_dbus_connection_is_closed (connection))
    connection_lost (self);
}

/* Stops following the proxy's connection: follow() undone (the proxy's
 * "g-signal" handler goes with the proxy). */
static void
unfollow (HeartbeatClient *self)
{
  if (self->closed_id != 0 && self->proxy != NULL)
    {
      g_signal_handler_disconnect (g_dbus_proxy_get_connection (self->proxy), self->closed_id);
      self->closed_id = 0;
    }
  if (self->watch_id != 0)
    {
      g_bus_unwatch_name (self->watch_id);
      self->watch_id = 0;
    }
}

/* The daemon answered the ping: follow its signals and its name. */
static void
client_start (HeartbeatClient *self)
{
  self->daemon_running = TRUE;
  self->daemon_owner = g_dbus_proxy_get_name_owner (self->proxy);
  follow (self);
}

/* @address without its `guid=` keys. A bus started again at the same
 * place has a new guid, and GDBus refuses a server whose guid is not the
 * one the address names; keys and values never hold a raw ',' or ';'
 * (D-Bus escapes them). */
static char *
address_without_guid (const char *address)
{
  g_auto(GStrv) entries = g_strsplit (address, ";", -1);
  GString *out = g_string_new (NULL);

  for (guint i = 0; entries[i] != NULL; i++)
    {
      const char *colon = strchr (entries[i], ':');
      g_auto(GStrv) keys = NULL;
      gboolean first = TRUE;

      if (*entries[i] == '\0')
        continue;
      if (out->len > 0)
        g_string_append_c (out, ';');
      if (colon == NULL)
        {
          g_string_append (out, entries[i]);
          continue;
        }
      g_string_append_len (out, entries[i], colon + 1 - entries[i]);
      keys = g_strsplit (colon + 1, ",", -1);
      for (guint j = 0; keys[j] != NULL; j++)
        {
          if (*keys[j] == '\0' || g_str_has_prefix (keys[j], "guid="))
            continue;
          if (!first)
            g_string_append_c (out, ',');
          g_string_append (out, keys[j]);
          first = FALSE;
        }
    }
  return g_string_free (out, FALSE);
}

static void schedule_reconnect (HeartbeatClient *self);

static void
on_reconnect_ping (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);

  if (reply == NULL)
    g_debug ("heartbeatd does not answer on the new bus connection yet: %s", error->message);
}

static void
on_reconnect_proxy (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  GDBusProxy *proxy = g_dbus_proxy_new_finish (result, &error);
  HeartbeatClient *self;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;   /* disposed: self is gone */
  self = user_data;
  g_clear_object (&self->reconnecting);
  if (proxy == NULL)
    {
      g_debug ("reconnecting to the bus: %s", error->message);
      schedule_reconnect (self);
      return;
    }

  /* the new connection replaces the dead one */
  unfollow (self);
  g_clear_object (&self->proxy);
  self->proxy = proxy;
  g_debug ("connected to the bus again as %s",
           g_dbus_connection_get_unique_name (g_dbus_proxy_get_connection (proxy)));
  follow (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CONNECTION]);

  /* starts heartbeatd if the bus can activate it, as the constructors do;
   * the name watcher says when it is there */
  g_dbus_connection_call (g_dbus_proxy_get_connection (proxy), HEARTBEAT_CLIENT_BUS_NAME,
                          HEARTBEAT_CLIENT_OBJECT_PATH, "org.freedesktop.DBus.Peer",
                          "Ping", NULL, NULL, G_DBUS_CALL_FLAGS_NONE,
                          CALL_TIMEOUT_MS, NULL, on_reconnect_ping, NULL);
}

static void
on_reconnect_connection (GObject      *source,
                         GAsyncResult *result,
                         gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) connection = g_dbus_connection_new_for_address_finish (result, &error);
  HeartbeatClient *self;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;   /* disposed: self is gone */
  self = user_data;
  if (connection == NULL)
    {
      g_debug ("reconnecting to the bus at %s: %s", self->address, error->message);
      g_clear_object (&self->reconnecting);
      schedule_reconnect (self);
      return;
    }
  g_main_context_push_thread_default (self->context);
  g_dbus_proxy_new (connection, G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES, NULL,
                    HEARTBEAT_CLIENT_BUS_NAME, HEARTBEAT_CLIENT_OBJECT_PATH,
                    HEARTBEAT_CLIENT_INTERFACE, self->reconnecting,
                    on_reconnect_proxy, self);
  g_main_context_pop_thread_default (self->context);
}

static gboolean
on_reconnect_timer (gpointer user_data)
{
  HeartbeatClient *self = user_data;

  g_clear_pointer (&self->reconnect_timer, g_source_unref);
  self->reconnecting = g_cancellable_new ();
  g_main_context_push_thread_default (self->context);
  g_dbus_connection_new_for_address (self->address, BUS_CONNECTION_FLAGS, NULL,
                                     self->reconnecting, on_reconnect_connection, self);
  g_main_context_pop_thread_default (self->context);
  return G_SOURCE_REMOVE;
}

/* The next try to connect to the bus again, after a delay that doubles
 * from one try to the next (a timeout on the client's context, nothing in
 * between), unless one is already due or underway. */
static void
schedule_reconnect (HeartbeatClient *self)
{
  if (self->reconnect_timer != NULL || self->reconnecting != NULL)
    return;
  if (self->reconnect_delay_ms == 0)
    self->reconnect_delay_ms = RECONNECT_FIRST_DELAY_MS;
  else
    self->reconnect_delay_ms = MIN (self->reconnect_delay_ms * 2, RECONNECT_MAX_DELAY_MS);
  self->reconnect_timer = g_timeout_source_new (self->reconnect_delay_ms);
  g_source_set_callback (self->reconnect_timer, on_reconnect_timer, self, NULL);
  g_source_set_static_name (self->reconnect_timer, "[heartbeat] reconnect");
  g_source_attach (self->reconnect_timer, self->context);
}

/* The connection closed (the bus went away, or dropped us): the daemon is
 * gone as far as we can tell; stop following it there, and connect again
 * if the connection is ours. Runs at most once per connection. */
static void
connection_lost (HeartbeatClient *self)
{
  g_object_ref (self);   /* through the handlers below */
  unfollow (self);
  g_clear_pointer (&self->daemon_owner, g_free);
  if (self->address != NULL)
    schedule_reconnect (self);
  if (self->daemon_running)
    {
      self->daemon_running = FALSE;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_DAEMON_RUNNING]);
      g_signal_emit (self, signals[SIGNAL_DAEMON_VANISHED], 0);
    }
  g_object_unref (self);
}

static void
on_connection_closed (GDBusConnection *connection,
                      gboolean         remote_peer_vanished,
                      GError          *error,
                      gpointer         user_data)
{
  HeartbeatClient *self = user_data;

  g_debug ("the bus connection closed: %s", error ? error->message : "closed here");
  connection_lost (self);
}

/* A client, not yet started; @address (or NULL) is where to connect
 * again should its connection close; signals in @context (NULL: the
 * thread-default one). */
static HeartbeatClient *
client_new (const char   *address,
            GMainContext *context)
{
  HeartbeatClient *self;

  (void) heartbeat_client_error_quark ();
  self = g_object_new (HEARTBEAT_TYPE_CLIENT, NULL);
  if (context != NULL)
    {
      g_main_context_unref (self->context);
      self->context = g_main_context_ref (context);
    }
  self->address = address ? address_without_guid (address) : NULL;
  return self;
}

/* Pings the daemon on @connection (starting it if the bus can), and starts
 * following it. */
static HeartbeatClient *
client_new_sync (GDBusConnection *connection,
                 const char      *address,
                 GCancellable    *cancellable,
                 GError         **error)
{
  g_autoptr(HeartbeatClient) self = client_new (address, NULL);
  g_autoptr(GError) local = NULL;
  g_autoptr(GVariant) ping = NULL;

  self->proxy = g_dbus_proxy_new_sync (connection,
                                       G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES,
                                       NULL, HEARTBEAT_CLIENT_BUS_NAME,
                                       HEARTBEAT_CLIENT_OBJECT_PATH,
                                       HEARTBEAT_CLIENT_INTERFACE, cancellable, error);
  if (self->proxy == NULL)
    return NULL;

  /* Starts the daemon if the bus can activate it; says so if nobody is
   * there. */
  ping = g_dbus_connection_call_sync (connection, HEARTBEAT_CLIENT_BUS_NAME,
                                      HEARTBEAT_CLIENT_OBJECT_PATH, "org.freedesktop.DBus.Peer",
                                      "Ping", NULL, NULL, G_DBUS_CALL_FLAGS_NONE,
                                      CALL_TIMEOUT_MS, cancellable, &local);
  if (ping == NULL)
    {
      translate_error (&local);
      g_propagate_error (error, g_steal_pointer (&local));
      return NULL;
    }

  client_start (self);
  return g_steal_pointer (&self);
}

/**
 * heartbeat_client_new_for_connection_sync:
 * @connection: a bus connection
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Makes a client of heartbeatd on a connection the caller already has (a
 * private bus, a test bus), blocking until heartbeatd answers a ping,
 * which starts it if the bus can activate it.
 *
 * The connection stays the caller's, and so does its
 * #GDBusConnection:exit-on-close: the client never changes it. If it is
 * %TRUE (as on the connection g_bus_get() shares), the process exits when
 * the bus goes away. If it is %FALSE, the client reports the closing
 * (#HeartbeatClient::daemon-vanished; calls fail with
 * %HEARTBEAT_CLIENT_ERROR_NO_BUS) but cannot connect again, since it does
 * not know where the connection led: make a new client on a new
 * connection then, or use heartbeat_client_new(), whose client connects
 * again by itself.
 *
 * Returns: (transfer full): a client, or %NULL with @error set
 *   (%HEARTBEAT_CLIENT_ERROR_NO_DAEMON when heartbeatd is not on the bus)
 */
HeartbeatClient *
heartbeat_client_new_for_connection_sync (GDBusConnection *connection,
                                          GCancellable    *cancellable,
                                          GError         **error)
{
  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), NULL);
  return client_new_sync (connection, NULL, cancellable, error);
}

static void
on_ping_reply (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  HeartbeatClient *self = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);

  if (reply == NULL)
    {
      translate_error (&error);
      g_task_return_error (task, error);
      return;
    }
  client_start (self);
  g_task_return_pointer (task, g_object_ref (self), g_object_unref);
}

static void
on_proxy_ready (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  HeartbeatClient *self = g_task_get_task_data (task);
  GCancellable *cancellable;
  GError *error = NULL;

  self->proxy = g_dbus_proxy_new_finish (result, &error);
  if (self->proxy == NULL)
    {
      translate_error (&error);
      g_task_return_error (task, error);
      return;
    }
  cancellable = g_task_get_cancellable (task);
  g_dbus_connection_call (g_dbus_proxy_get_connection (self->proxy), HEARTBEAT_CLIENT_BUS_NAME,
                          HEARTBEAT_CLIENT_OBJECT_PATH, "org.freedesktop.DBus.Peer",
                          "Ping", NULL, NULL, G_DBUS_CALL_FLAGS_NONE,
                          CALL_TIMEOUT_MS, cancellable, on_ping_reply,
                          g_steal_pointer (&task));
}

static void
start_for_connection (GTask           *task,
                      GDBusConnection *connection,
                      const char      *address)
{
  g_task_set_task_data (task, client_new (address, g_task_get_context (task)),
                        g_object_unref);
  g_main_context_push_thread_default (g_task_get_context (task));
  g_dbus_proxy_new (connection, G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES, NULL,
                    HEARTBEAT_CLIENT_BUS_NAME, HEARTBEAT_CLIENT_OBJECT_PATH,
                    HEARTBEAT_CLIENT_INTERFACE, g_task_get_cancellable (task),
                    on_proxy_ready, task);
  g_main_context_pop_thread_default (g_task_get_context (task));
}

/**
 * heartbeat_client_new_for_connection:
 * @connection: a bus connection
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the client is ready
 * @user_data: (closure): data for @callback
 *
 * Makes a client of heartbeatd on @connection, and checks that heartbeatd
 * answers (starting it if the bus can). Finish with
 * heartbeat_client_new_for_connection_finish(). The connection stays the
 * caller's, as with heartbeat_client_new_for_connection_sync(): the client
 * reports its closing but does not connect again.
 */
void
heartbeat_client_new_for_connection (GDBusConnection    *connection,
                                     GCancellable       *cancellable,
                                     GAsyncReadyCallback callback,
                                     gpointer            user_data)
{
  GTask *task;

  g_return_if_fail (G_IS_DBUS_CONNECTION (connection));
  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_name (task, "heartbeat_client_new_for_connection");
  start_for_connection (task, connection, NULL);
}

/**
 * heartbeat_client_new_for_connection_finish:
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes an operation started with heartbeat_client_new_for_connection():
 * heartbeatd answered on that connection.
 *
 * Returns: (transfer full): a client, or %NULL with @error set
 *   (%HEARTBEAT_CLIENT_ERROR_NO_DAEMON when heartbeatd is not on the bus)
 */
HeartbeatClient *
heartbeat_client_new_for_connection_finish (GAsyncResult *result,
                                            GError      **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* Sets @error to NO_BUS from @cause, the error of finding or connecting to
 * the bus. */
static void
set_no_bus_error (GError      **error,
                  GError       *cause)
{
  /* No bus (or one that refuses us) says nothing about heartbeatd. */
  if (g_dbus_error_is_remote_error (cause))
    g_dbus_error_strip_remote_error (cause);
  g_set_error (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NO_BUS,
               "cannot connect to the bus: %s", cause->message);
}

static void
on_bus_connected (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  GTask *task = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) connection = g_dbus_connection_new_for_address_finish (result, &error);
  GError *no_bus = NULL;

  if (connection == NULL)
    {
      set_no_bus_error (&no_bus, error);
      g_task_return_error (task, no_bus);
      g_object_unref (task);
      return;
    }
  start_for_connection (task, connection, g_object_get_data (G_OBJECT (task), "address"));
}

static void
on_bus_address (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  GTask *task = user_data;
  g_autoptr(GError) error = NULL;
  char *address = g_task_propagate_pointer (G_TASK (result), &error);
  GError *no_bus = NULL;

  if (address == NULL)
    {
      set_no_bus_error (&no_bus, error);
      g_task_return_error (task, no_bus);
      g_object_unref (task);
      return;
    }
  g_object_set_data_full (G_OBJECT (task), "address", address, g_free);
  g_main_context_push_thread_default (g_task_get_context (task));
  g_dbus_connection_new_for_address (address, BUS_CONNECTION_FLAGS, NULL,
                                     g_task_get_cancellable (task), on_bus_connected, task);
  g_main_context_pop_thread_default (g_task_get_context (task));
}

/* In a worker thread, as g_bus_get() does it: finding the session bus may
 * mean running dbus-launch. */
static void
find_bus_address (GTask        *task,
                  gpointer      source_object,
                  gpointer      task_data,
                  GCancellable *cancellable)
{
  GError *error = NULL;
  char *address = g_dbus_address_get_for_bus_sync (GPOINTER_TO_INT (task_data), cancellable, &error);

  if (address == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, address, g_free);
}

/**
 * heartbeat_client_new:
 * @bus_type: %G_BUS_TYPE_SYSTEM or %G_BUS_TYPE_SESSION
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the client is ready
 * @user_data: (closure): data for @callback
 *
 * Connects to heartbeatd on @bus_type. Finish with
 * heartbeat_client_new_finish().
 *
 * The client opens a connection of its own to that bus, not the one
 * g_bus_get() shares with the rest of the application: it leaves that
 * connection's #GDBusConnection:exit-on-close alone (should the
 * application use it and want to outlive the bus, it sets it to %FALSE
 * itself), and its own connection never makes the process exit. When the
 * bus goes away, the client emits #HeartbeatClient::daemon-vanished (and
 * calls fail with %HEARTBEAT_CLIENT_ERROR_NO_BUS), then connects to the
 * bus's address again, after 100 ms, then after twice the last delay, up
 * to 5 s between tries, until it is back; the new connection is notified
 * as #HeartbeatClient:connection, and #HeartbeatClient::daemon-appeared
 * follows when heartbeatd is on the bus again (a #HeartbeatKeepAlive
 * registers its agent again then).
 */
void
heartbeat_client_new (GBusType            bus_type,
                      GCancellable       *cancellable,
                      GAsyncReadyCallback callback,
                      gpointer            user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  g_autoptr(GTask) lookup = NULL;

  g_task_set_name (task, "heartbeat_client_new");
  lookup = g_task_new (NULL, cancellable, on_bus_address, task);
  g_task_set_name (lookup, "heartbeat_client_new: bus address");
  g_task_set_task_data (lookup, GINT_TO_POINTER (bus_type), NULL);
  g_task_run_in_thread (lookup, find_bus_address);
}

/**
 * heartbeat_client_new_finish:
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes an operation started with heartbeat_client_new(): the client is
 * connected to the bus and heartbeatd answered its ping.
 *
 * Returns: (transfer full): a client, or %NULL with @error set
 *   (%HEARTBEAT_CLIENT_ERROR_NO_BUS when the bus cannot be reached,
 *   %HEARTBEAT_CLIENT_ERROR_NO_DAEMON when heartbeatd is not on it)
 */
HeartbeatClient *
heartbeat_client_new_finish (GAsyncResult *result,
                             GError      **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * heartbeat_client_new_sync:
 * @bus_type: %G_BUS_TYPE_SYSTEM or %G_BUS_TYPE_SESSION
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Connects to heartbeatd on @bus_type, blocking. The client has a bus
 * connection of its own and connects again after the bus went away, as
 * heartbeat_client_new() describes.
 *
 * Returns: (transfer full): a client, or %NULL with @error set
 *   (%HEARTBEAT_CLIENT_ERROR_NO_BUS when the bus cannot be reached,
 *   %HEARTBEAT_CLIENT_ERROR_NO_DAEMON when heartbeatd is not on it)
 */
HeartbeatClient *
heartbeat_client_new_sync (GBusType      bus_type,
                           GCancellable *cancellable,
                           GError      **error)
{
  g_autoptr(GDBusConnection) connection = NULL;
  g_autoptr(GError) local = NULL;
  g_autofree char *address = NULL;

  address = g_dbus_address_get_for_bus_sync (bus_type, cancellable, &local);
  if (address != NULL)
    connection = g_dbus_connection_new_for_address_sync (address, BUS_CONNECTION_FLAGS, NULL,
                                                         cancellable, &local);
  if (connection == NULL)
    {
      set_no_bus_error (error, local);
      return NULL;
    }
  return client_new_sync (connection, address, cancellable, error);
}

static void
heartbeat_client_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  HeartbeatClient *self = HEARTBEAT_CLIENT (object);

  switch (prop_id)
    {
    case PROP_DAEMON_RUNNING:
      g_value_set_boolean (value, self->daemon_running);
      break;
    case PROP_CONNECTION:
      g_value_set_object (value, self->proxy ? g_dbus_proxy_get_connection (self->proxy) : NULL);
      break;
    case PROP_INTERACTIVE:
      g_value_set_boolean (value, self->interactive);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
heartbeat_client_set_property (GObject      *object,
                               guint         prop_id,
                               const GValue *value,
                               GParamSpec   *pspec)
{
  HeartbeatClient *self = HEARTBEAT_CLIENT (object);

  switch (prop_id)
    {
    case PROP_INTERACTIVE:
      heartbeat_client_set_interactive (self, g_value_get_boolean (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
heartbeat_client_dispose (GObject *object)
{
  HeartbeatClient *self = HEARTBEAT_CLIENT (object);

  if (self->reconnecting != NULL)
    {
      g_cancellable_cancel (self->reconnecting);
      g_clear_object (&self->reconnecting);
    }
  if (self->reconnect_timer != NULL)
    {
      g_source_destroy (self->reconnect_timer);
      g_clear_pointer (&self->reconnect_timer, g_source_unref);
    }
  unfollow (self);
  g_clear_object (&self->proxy);
  g_clear_pointer (&self->daemon_owner, g_free);
  G_OBJECT_CLASS (heartbeat_client_parent_class)->dispose (object);
}

static void
heartbeat_client_finalize (GObject *object)
{
  HeartbeatClient *self = HEARTBEAT_CLIENT (object);

  g_free (self->address);
  g_main_context_unref (self->context);
  G_OBJECT_CLASS (heartbeat_client_parent_class)->finalize (object);
}

static void
heartbeat_client_class_init (HeartbeatClientClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = heartbeat_client_dispose;
  object_class->finalize = heartbeat_client_finalize;
  object_class->get_property = heartbeat_client_get_property;
  object_class->set_property = heartbeat_client_set_property;

  /**
   * HeartbeatClient:daemon-running:
   *
   * Whether heartbeatd owns its name on the bus, as last reported by the
   * bus (g_bus_watch_name() semantics); changes are notified.
   */
  properties[PROP_DAEMON_RUNNING] =
    g_param_spec_boolean ("daemon-running", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * HeartbeatClient:connection:
   *
   * The bus connection. A client made for a #GBusType replaces it (and
   * notifies it) when it connected again after the bus went away; until
   * then it is the closed one.
   */
  properties[PROP_CONNECTION] =
    g_param_spec_object ("connection", NULL, NULL, G_TYPE_DBUS_CONNECTION,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * HeartbeatClient:interactive:
   *
   * Whether the calls that change an agent (register, beat, mark idle,
   * unregister) allow interactive authorization: with %TRUE, heartbeatd
   * may have polkit ask the user to authenticate before it changes an
   * agent of another uid, and the call waits for the answer; with %FALSE
   * (the default) such a call fails at once with
   * %HEARTBEAT_CLIENT_ERROR_ACCESS_DENIED. See
   * heartbeat_client_set_interactive().
   */
  properties[PROP_INTERACTIVE] =
    g_param_spec_boolean ("interactive", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * HeartbeatClient::agent-registered:
   * @client: the client
   * @id: the agent's id
   * @task_id: its task, or ""
   *
   * An agent was registered, restarted or declared.
   */
  signals[SIGNAL_AGENT_REGISTERED] =
    g_signal_new ("agent-registered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
  /**
   * HeartbeatClient::agent-unregistered:
   * @client: the client
   * @id: the agent's id
   * @reason: `unregistered`, `timed-out` or `gone`
   *
   * An agent was removed.
   */
  signals[SIGNAL_AGENT_UNREGISTERED] =
    g_signal_new ("agent-unregistered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
  /**
   * HeartbeatClient::agent-stale:
   * @client: the client
   * @id: the agent's id
   * @idle_usec: how long it has been quiet
   * @agent: the agent as it was then
   *
   * An agent had no activity for its stale threshold.
   */
  signals[SIGNAL_AGENT_STALE] =
    g_signal_new ("agent-stale", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_INT64, HEARTBEAT_TYPE_AGENT_INFO);
  /**
   * HeartbeatClient::agent-timed-out:
   * @client: the client
   * @id: the agent's id
   * @running_usec: how long its run lasted
   * @agent: the agent as it was then
   *
   * An agent ran for its timeout threshold.
   */
  signals[SIGNAL_AGENT_TIMED_OUT] =
    g_signal_new ("agent-timed-out", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_INT64, HEARTBEAT_TYPE_AGENT_INFO);
  /**
   * HeartbeatClient::agent-recovered:
   * @client: the client
   * @id: the agent's id
   *
   * A stale agent showed activity again.
   */
  signals[SIGNAL_AGENT_RECOVERED] =
    g_signal_new ("agent-recovered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
  /**
   * HeartbeatClient::agent-state-changed:
   * @client: the client
   * @id: the agent's id
   * @old_state: the state it left
   * @new_state: the state it is in
   *
   * The monitor's judgment of an agent changed.
   */
  signals[SIGNAL_AGENT_STATE_CHANGED] =
    g_signal_new ("agent-state-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING);
  /**
   * HeartbeatClient::daemon-vanished:
   * @client: the client
   *
   * heartbeatd left the bus (it stopped, crashed or is restarting), or
   * the bus itself went away (the bus connection closed; calls fail with
   * %HEARTBEAT_CLIENT_ERROR_NO_BUS until the client connected again, see
   * heartbeat_client_new()).
   */
  signals[SIGNAL_DAEMON_VANISHED] =
    g_signal_new ("daemon-vanished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  /**
   * HeartbeatClient::daemon-appeared:
   * @client: the client
   *
   * heartbeatd (re)appeared on the bus after the client was made: a new
   * daemon process, which may need agents registered again (see
   * #HeartbeatKeepAlive).
   */
  signals[SIGNAL_DAEMON_APPEARED] =
    g_signal_new ("daemon-appeared", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
heartbeat_client_init (HeartbeatClient *self)
{
  self->context = g_main_context_ref_thread_default ();
}

/* ------------------------------------------------------------------ */
/* Heartbeat files, for programs that cannot speak D-Bus               */

/**
 * heartbeat_write_file:
 * @path: the heartbeat file heartbeatd watches (`heartbeat-file=`)
 * @process_key: the writer's name
 * @pid: the process heartbeatd should watch, or 0 for this one
 * @status: (nullable): `running` (the default) or what went wrong
 * @iteration: a counter of the writer's choice
 * @error: return location for a #GError
 *
 * Writes a heartbeat file (the HeartbeatWriter format: `process_key`,
 * `pid`, `timestamp` (now), `status`, `iteration`)
 * atomically: heartbeatd never reads half a file.
 *
 * Returns: %TRUE on success
 */
gboolean
heartbeat_write_file (const char *path,
                      const char *process_key,
                      gint32      pid,
                      const char *status,
                      gint64      iteration,
                      GError    **error)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *stamp = g_date_time_format (now, "%Y-%m-%dT%H:%M:%S.%f+00:00");
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;
  gsize length;

  g_return_val_if_fail (path != NULL && process_key != NULL, FALSE);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "process_key");
  json_builder_add_string_value (builder, process_key);
  json_builder_set_member_name (builder, "pid");
  json_builder_add_int_value (builder, pid > 0 ? pid : getpid ());
  json_builder_set_member_name (builder, "timestamp");
  json_builder_add_string_value (builder, stamp);
  json_builder_set_member_name (builder, "status");
  json_builder_add_string_value (builder, status ? status : "running");
  json_builder_set_member_name (builder, "iteration");
  json_builder_add_int_value (builder, iteration);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  text = json_generator_to_data (generator, &length);

  return g_file_set_contents_full (path, text, (gssize) length, G_FILE_SET_CONTENTS_CONSISTENT,
                                   0644, error);
}

/**
 * heartbeat_remove_file:
 * @path: a heartbeat file
 * @error: return location for a #GError
 *
 * Removes the heartbeat file on a clean shutdown (a missing file is fine).
 *
 * Returns: %TRUE on success
 */
gboolean
heartbeat_remove_file (const char *path,
                       GError    **error)
{
  g_return_val_if_fail (path != NULL, FALSE);

  if (g_unlink (path) != 0 && errno != ENOENT)
    {
      int saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "Cannot remove %s: %s", path, g_strerror (saved));
      return FALSE;
    }
  return TRUE;
}
