/* heartbeat-client.h: a client of heartbeatd (org.heartbeat.Monitor1)
 *
 * Part of libheartbeat-1 (pkg-config heartbeat-1); include <heartbeat.h>.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "heartbeat-agent-info.h"

G_BEGIN_DECLS

/**
 * HEARTBEAT_CLIENT_BUS_NAME:
 *
 * The well-known bus name heartbeatd owns, on the system bus (or a session
 * bus for per-user use). #HeartbeatClient calls it, not the daemon's unique
 * name, so a restarted daemon is found again.
 */
#define HEARTBEAT_CLIENT_BUS_NAME    "org.heartbeat.Monitor1"
/**
 * HEARTBEAT_CLIENT_OBJECT_PATH:
 *
 * The object path of heartbeatd's one object, for callers that talk to it
 * over D-Bus directly.
 */
#define HEARTBEAT_CLIENT_OBJECT_PATH "/org/heartbeat/Monitor1"
/**
 * HEARTBEAT_CLIENT_INTERFACE:
 *
 * The D-Bus interface of heartbeatd's methods, properties and signals; its
 * errors are named `org.heartbeat.Monitor1.Error.*`.
 */
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
 * @HEARTBEAT_CLIENT_ERROR_NOT_SAVED: the daemon could not write the change
 *   to disk, so it did not make it (`org.heartbeat.Monitor1.Error.NotSaved`)
 * @HEARTBEAT_CLIENT_ERROR_LIMITS_EXCEEDED: the reply would have been larger
 *   than one D-Bus message may be, so the daemon did not send it
 *   (`org.heartbeat.Monitor1.Error.LimitsExceeded`; the library lists
 *   agents a page at a time, so it only meets it in calls made directly)
 *
 * The daemon's named errors, mapped back from D-Bus, and the client's own.
 */
typedef enum {
  HEARTBEAT_CLIENT_ERROR_NOT_FOUND,
  HEARTBEAT_CLIENT_ERROR_EXISTS,
  HEARTBEAT_CLIENT_ERROR_INVALID_ARGUMENT,
  HEARTBEAT_CLIENT_ERROR_ACCESS_DENIED,
  HEARTBEAT_CLIENT_ERROR_QUOTA_EXCEEDED,
  HEARTBEAT_CLIENT_ERROR_NO_DAEMON,
  HEARTBEAT_CLIENT_ERROR_NO_BUS,
  HEARTBEAT_CLIENT_ERROR_NOT_SAVED,
  HEARTBEAT_CLIENT_ERROR_LIMITS_EXCEEDED,
} HeartbeatClientError;

#define HEARTBEAT_CLIENT_ERROR (heartbeat_client_error_quark ())
GQuark heartbeat_client_error_quark (void);

/**
 * HeartbeatClientClass:
 * @parent_class: the #GObjectClass it derives from
 *
 * The class of #HeartbeatClient. The type is final: it adds no virtual
 * methods and cannot be subclassed.
 */
#define HEARTBEAT_TYPE_CLIENT (heartbeat_client_get_type ())
G_DECLARE_FINAL_TYPE (HeartbeatClient, heartbeat_client, HEARTBEAT, CLIENT, GObject)

/* ---- connecting ---- */
void             heartbeat_client_new          (GBusType            bus_type,
                                                GCancellable       *cancellable,
                                                GAsyncReadyCallback callback,
                                                gpointer            user_data);
HeartbeatClient *heartbeat_client_new_finish   (GAsyncResult       *result,
                                                GError            **error);
HeartbeatClient *heartbeat_client_new_sync     (GBusType            bus_type,
                                                GCancellable       *cancellable,
                                                GError            **error);
void             heartbeat_client_new_for_connection (GDBusConnection    *connection,
                                                GCancellable       *cancellable,
                                                GAsyncReadyCallback callback,
                                                gpointer            user_data);
HeartbeatClient *heartbeat_client_new_for_connection_finish (GAsyncResult *result,
                                                GError            **error);
HeartbeatClient *heartbeat_client_new_for_connection_sync (GDBusConnection *connection,
                                                GCancellable       *cancellable,
                                                GError            **error);
GDBusConnection *heartbeat_client_get_connection (HeartbeatClient  *client);
gboolean         heartbeat_client_is_connected (HeartbeatClient    *client);
gboolean         heartbeat_client_get_daemon_running (HeartbeatClient *client);
void             heartbeat_client_set_interactive (HeartbeatClient *client,
                                                gboolean            interactive);
gboolean         heartbeat_client_get_interactive (HeartbeatClient *client);

/* ---- option dictionaries ---- */
GVariant        *heartbeat_register_options_new (const char        *task_id,
                                                guint64             stale_after_usec,
                                                guint64             timeout_after_usec,
                                                guint32             pid,
                                                gboolean            bind_to_caller,
                                                GVariant           *metadata);
GVariant        *heartbeat_beat_details_new    (const char         *status,
                                                double              progress,
                                                GVariant           *metadata);

/* ---- Register ---- */
gboolean         heartbeat_client_register     (HeartbeatClient    *client,
                                                const char         *id,
                                                GVariant           *options,
                                                GError            **error);
void             heartbeat_client_register_async (HeartbeatClient  *client,
                                                const char         *id,
                                                GVariant           *options,
                                                GCancellable       *cancellable,
                                                GAsyncReadyCallback callback,
                                                gpointer            user_data);
gboolean         heartbeat_client_register_finish (HeartbeatClient *client,
                                                GAsyncResult       *result,
                                                GError            **error);
gboolean         heartbeat_client_register_full (HeartbeatClient   *client,
                                                const char         *id,
                                                const char         *task_id,
                                                guint64             stale_after_usec,
                                                guint64             timeout_after_usec,
                                                guint32             pid,
                                                gboolean            bind_to_caller,
                                                GVariant           *metadata,
                                                GCancellable       *cancellable,
                                                GError            **error);

/* ---- Beat ---- */
gboolean         heartbeat_client_beat         (HeartbeatClient    *client,
                                                const char         *id,
                                                GVariant           *details,
                                                GError            **error);
void             heartbeat_client_beat_async   (HeartbeatClient    *client,
                                                const char         *id,
                                                GVariant           *details,
                                                GCancellable       *cancellable,
                                                GAsyncReadyCallback callback,
                                                gpointer            user_data);
gboolean         heartbeat_client_beat_finish  (HeartbeatClient    *client,
                                                GAsyncResult       *result,
                                                GError            **error);
gboolean         heartbeat_client_beat_full    (HeartbeatClient    *client,
                                                const char         *id,
                                                const char         *status,
                                                double              progress,
                                                GVariant           *metadata,
                                                GCancellable       *cancellable,
                                                GError            **error);

/* ---- MarkIdle ---- */
gboolean         heartbeat_client_mark_idle    (HeartbeatClient    *client,
                                                const char         *id,
                                                GError            **error);
void             heartbeat_client_mark_idle_async (HeartbeatClient *client,
                                                const char         *id,
                                                GCancellable       *cancellable,
                                                GAsyncReadyCallback callback,
                                                gpointer            user_data);
gboolean         heartbeat_client_mark_idle_finish (HeartbeatClient *client,
                                                GAsyncResult       *result,
                                                GError            **error);

/* ---- Unregister ---- */
gboolean         heartbeat_client_unregister   (HeartbeatClient    *client,
                                                const char         *id,
                                                GError            **error);
void             heartbeat_client_unregister_async (HeartbeatClient *client,
                                                const char         *id,
                                                GCancellable       *cancellable,
                                                GAsyncReadyCallback callback,
                                                gpointer            user_data);
gboolean         heartbeat_client_unregister_finish (HeartbeatClient *client,
                                                GAsyncResult       *result,
                                                GError            **error);

/* ---- Pause, Resume ---- */
gboolean         heartbeat_client_pause        (HeartbeatClient    *client,
                                                const char         *id,
                                                const char         *reason,
                                                GError            **error);
gboolean         heartbeat_client_resume       (HeartbeatClient    *client,
                                                const char         *id,
                                                GError            **error);

/* ---- GetAgent ---- */
GVariant        *heartbeat_client_get_agent    (HeartbeatClient    *client,
                                                const char         *id,
                                                GError            **error);
HeartbeatAgentInfo *heartbeat_client_get_agent_info (HeartbeatClient *client,
                                                const char         *id,
                                                GCancellable       *cancellable,
                                                GError            **error);
void             heartbeat_client_get_agent_info_async (HeartbeatClient *client,
                                                const char         *id,
                                                GCancellable       *cancellable,
                                                GAsyncReadyCallback callback,
                                                gpointer            user_data);
HeartbeatAgentInfo *heartbeat_client_get_agent_info_finish (HeartbeatClient *client,
                                                GAsyncResult       *result,
                                                GError            **error);

/* ---- ListAgents ---- */
GVariant        *heartbeat_client_list_agents  (HeartbeatClient    *client,
                                                GError            **error);
GPtrArray       *heartbeat_client_list_agent_infos (HeartbeatClient *client,
                                                GCancellable       *cancellable,
                                                GError            **error);
void             heartbeat_client_list_agent_infos_async (HeartbeatClient *client,
                                                GCancellable       *cancellable,
                                                GAsyncReadyCallback callback,
                                                gpointer            user_data);
GPtrArray       *heartbeat_client_list_agent_infos_finish (HeartbeatClient *client,
                                                GAsyncResult       *result,
                                                GError            **error);

/* ---- GetStatus ---- */
GVariant        *heartbeat_client_get_status   (HeartbeatClient    *client,
                                                GError            **error);
void             heartbeat_client_get_status_async (HeartbeatClient *client,
                                                GCancellable       *cancellable,
                                                GAsyncReadyCallback callback,
                                                gpointer            user_data);
GVariant        *heartbeat_client_get_status_finish (HeartbeatClient *client,
                                                GAsyncResult       *result,
                                                GError            **error);

/* ---- GetHistory ---- */
GVariant        *heartbeat_client_get_history  (HeartbeatClient    *client,
                                                const char         *id,
                                                GCancellable       *cancellable,
                                                GError            **error);
void             heartbeat_client_get_history_async (HeartbeatClient *client,
                                                const char         *id,
                                                GCancellable       *cancellable,
                                                GAsyncReadyCallback callback,
                                                gpointer            user_data);
GVariant        *heartbeat_client_get_history_finish (HeartbeatClient *client,
                                                GAsyncResult       *result,
                                                GError            **error);

/* ---- heartbeat files, for programs that cannot speak D-Bus ---- */
gboolean heartbeat_write_file   (const char *path,
                                 const char *process_key,
                                 gint32      pid,
                                 const char *status,
                                 gint64      iteration,
                                 GError    **error);
gboolean heartbeat_remove_file  (const char *path,
                                 GError    **error);

G_END_DECLS
