/* heartbeat-client.h: a client of heartbeatd (org.heartbeat.Monitor1)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define HEARTBEAT_CLIENT_BUS_NAME    "org.heartbeat.Monitor1"
#define HEARTBEAT_CLIENT_OBJECT_PATH "/org/heartbeat/Monitor1"
#define HEARTBEAT_CLIENT_INTERFACE   "org.heartbeat.Monitor1"

/**
 * HeartbeatClientError:
 * @HEARTBEAT_CLIENT_ERROR_NOT_FOUND: no agent with that id
 *   (`org.heartbeat.Monitor1.Error.NotFound`)
 * @HEARTBEAT_CLIENT_ERROR_EXISTS: the id belongs to another uid
 * @HEARTBEAT_CLIENT_ERROR_INVALID_ARGUMENT: the daemon refused an argument
 * @HEARTBEAT_CLIENT_ERROR_ACCESS_DENIED: the caller may not change the agent
 * @HEARTBEAT_CLIENT_ERROR_QUOTA_EXCEEDED: the caller's uid has too many agents
 * @HEARTBEAT_CLIENT_ERROR_NO_DAEMON: heartbeatd is not on the bus, and the
 *   bus cannot start it (a client-side error: there is no D-Bus name for it)
 * @HEARTBEAT_CLIENT_ERROR_NO_BUS: the bus itself cannot be reached: connecting
 *   to it failed (refused, no such socket, authentication rejected) or the
 *   connection was closed (a client-side error)
 *
 * The daemon's named errors, mapped back from D-Bus.
 */
typedef enum {
  HEARTBEAT_CLIENT_ERROR_NOT_FOUND,
  HEARTBEAT_CLIENT_ERROR_EXISTS,
  HEARTBEAT_CLIENT_ERROR_INVALID_ARGUMENT,
  HEARTBEAT_CLIENT_ERROR_ACCESS_DENIED,
  HEARTBEAT_CLIENT_ERROR_QUOTA_EXCEEDED,
  HEARTBEAT_CLIENT_ERROR_NO_DAEMON,
  HEARTBEAT_CLIENT_ERROR_NO_BUS,
} HeartbeatClientError;

#define HEARTBEAT_CLIENT_ERROR (heartbeat_client_error_quark ())
GQuark heartbeat_client_error_quark (void);

#define HEARTBEAT_TYPE_CLIENT (heartbeat_client_get_type ())
G_DECLARE_FINAL_TYPE (HeartbeatClient, heartbeat_client, HEARTBEAT, CLIENT, GObject)

HeartbeatClient *heartbeat_client_new_sync     (GBusType          bus_type,
                                                GCancellable     *cancellable,
                                                GError          **error);
HeartbeatClient *heartbeat_client_new_for_connection_sync (GDBusConnection *connection,
                                                GCancellable     *cancellable,
                                                GError          **error);
GDBusConnection *heartbeat_client_get_connection (HeartbeatClient *client);
gboolean         heartbeat_client_is_connected (HeartbeatClient  *client);

gboolean         heartbeat_client_register     (HeartbeatClient  *client,
                                                const char       *id,
                                                GVariant         *options,
                                                GError          **error);
gboolean         heartbeat_client_beat         (HeartbeatClient  *client,
                                                const char       *id,
                                                GVariant         *details,
                                                GError          **error);
void             heartbeat_client_beat_async   (HeartbeatClient  *client,
                                                const char       *id,
                                                GVariant         *details,
                                                GCancellable     *cancellable,
                                                GAsyncReadyCallback callback,
                                                gpointer          user_data);
gboolean         heartbeat_client_beat_finish  (HeartbeatClient  *client,
                                                GAsyncResult     *result,
                                                GError          **error);
gboolean         heartbeat_client_mark_idle    (HeartbeatClient  *client,
                                                const char       *id,
                                                GError          **error);
gboolean         heartbeat_client_unregister   (HeartbeatClient  *client,
                                                const char       *id,
                                                GError          **error);
GVariant        *heartbeat_client_get_agent    (HeartbeatClient  *client,
                                                const char       *id,
                                                GError          **error);
GVariant        *heartbeat_client_list_agents  (HeartbeatClient  *client,
                                                GError          **error);
GVariant        *heartbeat_client_get_status   (HeartbeatClient  *client,
                                                GError          **error);

gboolean heartbeat_write_file   (const char *path,
                                 const char *process_key,
                                 gint32      pid,
                                 const char *status,
                                 gint64      iteration,
                                 GError    **error);
gboolean heartbeat_remove_file  (const char *path,
                                 GError    **error);

G_END_DECLS
