/* heartbeat-client.c: a client of heartbeatd (org.heartbeat.Monitor1)
 *
 * A thin wrapper over a GDBusProxy: typed calls, the daemon's named errors
 * as a GError domain, and the daemon's signals as GObject signals. hbctl
 * is built on it; a C program that wants to beat can use it as well.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "heartbeat-client.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <unistd.h>

#define CALL_TIMEOUT_MS 25000

static const GDBusErrorEntry error_entries[] = {
  { HEARTBEAT_CLIENT_ERROR_NOT_FOUND,        "org.heartbeat.Monitor1.Error.NotFound" },
  { HEARTBEAT_CLIENT_ERROR_EXISTS,           "org.heartbeat.Monitor1.Error.Exists" },
  { HEARTBEAT_CLIENT_ERROR_INVALID_ARGUMENT, "org.heartbeat.Monitor1.Error.InvalidArgument" },
  { HEARTBEAT_CLIENT_ERROR_ACCESS_DENIED,    "org.heartbeat.Monitor1.Error.AccessDenied" },
  { HEARTBEAT_CLIENT_ERROR_QUOTA_EXCEEDED,   "org.heartbeat.Monitor1.Error.QuotaExceeded" },
};

/**
 * heartbeat_client_error_quark:
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

struct _HeartbeatClient {
  GObject     parent_instance;
  GDBusProxy *proxy;
};

enum {
  SIGNAL_AGENT_REGISTERED,
  SIGNAL_AGENT_UNREGISTERED,
  SIGNAL_AGENT_STALE,
  SIGNAL_AGENT_TIMED_OUT,
  SIGNAL_AGENT_RECOVERED,
  SIGNAL_AGENT_STATE_CHANGED,
  SIGNAL_DAEMON_VANISHED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (HeartbeatClient, heartbeat_client, G_TYPE_OBJECT)

/* Errors meaning "nobody answers at that name" (and the bus cannot start
 * anyone) become NO_DAEMON, and only those: the bus refusing the call
 * (org.freedesktop.DBus.Error.AccessDenied from its policy, a failed
 * activation, …) stays a G_DBUS_ERROR. Every remote error loses GDBus's
 * "GDBus.Error:name: " prefix. */
static gboolean
translate_error (HeartbeatClient *self,
                 GError         **error)
{
  if (error == NULL || *error == NULL)
    return FALSE;

  if (g_dbus_error_is_remote_error (*error))
    {
      g_autofree char *name = g_dbus_error_get_remote_error (*error);

      if (g_strcmp0 (name, "org.freedesktop.DBus.Error.ServiceUnknown") == 0 ||
          g_strcmp0 (name, "org.freedesktop.DBus.Error.NameHasNoOwner") == 0)
        {
          g_clear_error (error);
          g_set_error_literal (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NO_DAEMON,
                               "heartbeatd is not running");
          return FALSE;
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
  return FALSE;
}

static GVariant *
call (HeartbeatClient *self,
      const char      *method,
      GVariant        *parameters,
      GError         **error)
{
  GVariant *reply;

  /* Calls go to the well-known name, so a daemon that restarted since we
   * connected is found again, and one the bus can activate is started. */
  reply = g_dbus_connection_call_sync (g_dbus_proxy_get_connection (self->proxy),
                                       HEARTBEAT_CLIENT_BUS_NAME, HEARTBEAT_CLIENT_OBJECT_PATH,
                                       HEARTBEAT_CLIENT_INTERFACE, method, parameters, NULL,
                                       G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, NULL, error);
  if (reply == NULL)
    translate_error (self, error);
  return reply;
}

static GVariant *
dict_or_empty (GVariant *dict)
{
  return dict ? dict : g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0);
}

/**
 * heartbeat_client_register:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @options: (nullable) (transfer floating): an `a{sv}` of Register options
 *   (`task-id`, `stale-after-usec`, `timeout-after-usec`, `pid`,
 *   `bind-to-caller`, `metadata`), or %NULL
 * @error: return location for a #GError
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
  reply = call (client, "Register", g_variant_new ("(s@a{sv})", id, dict_or_empty (options)), error);
  return reply != NULL;
}

/**
 * heartbeat_client_beat:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @details: (nullable) (transfer floating): an `a{sv}` of Beat details
 *   (`status`, `progress`, `metadata`), or %NULL
 * @error: return location for a #GError
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
  reply = call (client, "Beat", g_variant_new ("(s@a{sv})", id, dict_or_empty (details)), error);
  return reply != NULL;
}

static void
on_beat_reply (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);

  if (reply == NULL)
    {
      translate_error (g_task_get_source_object (task), &error);
      g_task_return_error (task, error);
    }
  else
    g_task_return_boolean (task, TRUE);
}

/**
 * heartbeat_client_beat_async:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @details: (nullable) (transfer floating): as for heartbeat_client_beat()
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the daemon answered
 * @user_data: data for @callback
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
  GTask *task;

  g_return_if_fail (HEARTBEAT_IS_CLIENT (client));

  task = g_task_new (client, cancellable, callback, user_data);
  g_dbus_connection_call (g_dbus_proxy_get_connection (client->proxy),
                          HEARTBEAT_CLIENT_BUS_NAME, HEARTBEAT_CLIENT_OBJECT_PATH,
                          HEARTBEAT_CLIENT_INTERFACE, "Beat",
                          g_variant_new ("(s@a{sv})", id, dict_or_empty (details)), NULL,
                          G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, cancellable, on_beat_reply, task);
}

/**
 * heartbeat_client_beat_finish:
 * @client: a #HeartbeatClient
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Returns: %TRUE if the beat was taken
 */
gboolean
heartbeat_client_beat_finish (HeartbeatClient *client,
                              GAsyncResult    *result,
                              GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, client), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * heartbeat_client_mark_idle:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @error: return location for a #GError
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
  reply = call (client, "MarkIdle", g_variant_new ("(s)", id), error);
  return reply != NULL;
}

/**
 * heartbeat_client_unregister:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @error: return location for a #GError
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
  reply = call (client, "Unregister", g_variant_new ("(s)", id), error);
  return reply != NULL;
}

static GVariant *
call_for_child (HeartbeatClient *client,
                const char      *method,
                GVariant        *parameters,
                GError         **error)
{
  g_autoptr(GVariant) reply = call (client, method, parameters, error);

  return reply ? g_variant_get_child_value (reply, 0) : NULL;
}

/**
 * heartbeat_client_get_agent:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @error: return location for a #GError
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
  return call_for_child (client, "GetAgent", g_variant_new ("(s)", id), error);
}

/**
 * heartbeat_client_list_agents:
 * @client: a #HeartbeatClient
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): every agent, an `aa{sv}` sorted by
 *   id, or %NULL with @error set
 */
GVariant *
heartbeat_client_list_agents (HeartbeatClient *client,
                              GError         **error)
{
  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), NULL);
  return call_for_child (client, "ListAgents", NULL, error);
}

/**
 * heartbeat_client_get_status:
 * @client: a #HeartbeatClient
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the daemon's status, an `a{sv}`, or
 *   %NULL with @error set
 */
GVariant *
heartbeat_client_get_status (HeartbeatClient *client,
                             GError         **error)
{
  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), NULL);
  return call_for_child (client, "GetStatus", NULL, error);
}

/**
 * heartbeat_client_get_connection:
 * @client: a #HeartbeatClient
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
 * Returns: whether heartbeatd owns its name on the bus right now
 */
gboolean
heartbeat_client_is_connected (HeartbeatClient *client)
{
  g_autofree char *owner = NULL;

  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), FALSE);
  owner = g_dbus_proxy_get_name_owner (client->proxy);
  return owner != NULL;
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
      g_variant_get (parameters, "(&st@a{sv})", &id, &usec, &agent);
      g_signal_emit (self, signals[SIGNAL_AGENT_STALE], 0, id, (gint64) usec, agent);
    }
  else if (g_strcmp0 (name, "AgentTimedOut") == 0 &&
           g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sta{sv})")))
    {
      g_variant_get (parameters, "(&st@a{sv})", &id, &usec, &agent);
      g_signal_emit (self, signals[SIGNAL_AGENT_TIMED_OUT], 0, id, (gint64) usec, agent);
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

static void
on_name_owner (GObject    *object,
               GParamSpec *pspec,
               gpointer    user_data)
{
  HeartbeatClient *self = user_data;

  if (!heartbeat_client_is_connected (self))
    g_signal_emit (self, signals[SIGNAL_DAEMON_VANISHED], 0);
}

/**
 * heartbeat_client_new_for_connection_sync:
 * @connection: a bus connection
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): a client, or %NULL with @error set
 *   (%HEARTBEAT_CLIENT_ERROR_NO_DAEMON when heartbeatd is not on the bus)
 */
HeartbeatClient *
heartbeat_client_new_for_connection_sync (GDBusConnection *connection,
                                          GCancellable    *cancellable,
                                          GError         **error)
{
  g_autoptr(HeartbeatClient) self = NULL;
  g_autoptr(GError) local = NULL;
  g_autoptr(GVariant) ping = NULL;

  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), NULL);

  (void) heartbeat_client_error_quark ();
  self = g_object_new (HEARTBEAT_TYPE_CLIENT, NULL);
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
      translate_error (self, &local);
      g_propagate_error (error, g_steal_pointer (&local));
      return NULL;
    }

  g_signal_connect_object (self->proxy, "g-signal", G_CALLBACK (on_proxy_signal), self, 0);
  g_signal_connect_object (self->proxy, "notify::g-name-owner", G_CALLBACK (on_name_owner), self, 0);
  return g_steal_pointer (&self);
}

/**
 * heartbeat_client_new_sync:
 * @bus_type: %G_BUS_TYPE_SYSTEM or %G_BUS_TYPE_SESSION
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Connects to heartbeatd on @bus_type.
 *
 * Returns: (transfer full) (nullable): a client, or %NULL with @error set
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

  connection = g_bus_get_sync (bus_type, cancellable, &local);
  if (connection == NULL)
    {
      /* No bus (or one that refuses us) says nothing about heartbeatd. */
      if (g_dbus_error_is_remote_error (local))
        g_dbus_error_strip_remote_error (local);
      g_set_error (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NO_BUS,
                   "cannot connect to the bus: %s", local->message);
      return NULL;
    }
  return heartbeat_client_new_for_connection_sync (connection, cancellable, error);
}

static void
heartbeat_client_dispose (GObject *object)
{
  HeartbeatClient *self = HEARTBEAT_CLIENT (object);

  g_clear_object (&self->proxy);
  G_OBJECT_CLASS (heartbeat_client_parent_class)->dispose (object);
}

static void
heartbeat_client_class_init (HeartbeatClientClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = heartbeat_client_dispose;

  /**
   * HeartbeatClient::agent-registered:
   * @client: the client
   * @id: the agent's id
   * @task_id: its task, or ""
   */
  signals[SIGNAL_AGENT_REGISTERED] =
    g_signal_new ("agent-registered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
  /**
   * HeartbeatClient::agent-unregistered:
   * @client: the client
   * @id: the agent's id
   * @reason: `unregistered`, `timed-out` or `gone`
   */
  signals[SIGNAL_AGENT_UNREGISTERED] =
    g_signal_new ("agent-unregistered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
  /**
   * HeartbeatClient::agent-stale:
   * @client: the client
   * @id: the agent's id
   * @idle_usec: how long it has been quiet
   * @agent: the agent, an `a{sv}`
   */
  signals[SIGNAL_AGENT_STALE] =
    g_signal_new ("agent-stale", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_INT64, G_TYPE_VARIANT);
  /**
   * HeartbeatClient::agent-timed-out:
   * @client: the client
   * @id: the agent's id
   * @running_usec: how long its run lasted
   * @agent: the agent, an `a{sv}`
   */
  signals[SIGNAL_AGENT_TIMED_OUT] =
    g_signal_new ("agent-timed-out", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_INT64, G_TYPE_VARIANT);
  /**
   * HeartbeatClient::agent-recovered:
   * @client: the client
   * @id: the agent's id
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
   */
  signals[SIGNAL_AGENT_STATE_CHANGED] =
    g_signal_new ("agent-state-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING);
  /**
   * HeartbeatClient::daemon-vanished:
   * @client: the client
   *
   * heartbeatd left the bus.
   */
  signals[SIGNAL_DAEMON_VANISHED] =
    g_signal_new ("daemon-vanished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
heartbeat_client_init (HeartbeatClient *self)
{
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
