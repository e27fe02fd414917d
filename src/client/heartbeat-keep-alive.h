/* heartbeat-keep-alive.h: keep one agent alive from an application
 *
 * Part of libheartbeat-1 (pkg-config heartbeat-1); include <heartbeat.h>.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "heartbeat-client.h"

G_BEGIN_DECLS

/**
 * HeartbeatKeepAliveClass:
 * @parent_class: the #GObjectClass it derives from
 *
 * The class of #HeartbeatKeepAlive. The type is final: it adds no virtual
 * methods and cannot be subclassed.
 */
#define HEARTBEAT_TYPE_KEEP_ALIVE (heartbeat_keep_alive_get_type ())
G_DECLARE_FINAL_TYPE (HeartbeatKeepAlive, heartbeat_keep_alive, HEARTBEAT, KEEP_ALIVE, GObject)

HeartbeatKeepAlive *heartbeat_keep_alive_new        (HeartbeatClient    *client,
                                                     const char         *id,
                                                     GVariant           *options,
                                                     GCancellable       *cancellable,
                                                     GError            **error);
void                heartbeat_keep_alive_new_async  (HeartbeatClient    *client,
                                                     const char         *id,
                                                     GVariant           *options,
                                                     GCancellable       *cancellable,
                                                     GAsyncReadyCallback callback,
                                                     gpointer            user_data);
HeartbeatKeepAlive *heartbeat_keep_alive_new_finish (GAsyncResult       *result,
                                                     GError            **error);
HeartbeatClient    *heartbeat_keep_alive_get_client (HeartbeatKeepAlive *keep_alive);
const char         *heartbeat_keep_alive_get_id     (HeartbeatKeepAlive *keep_alive);
const char         *heartbeat_keep_alive_get_status (HeartbeatKeepAlive *keep_alive);
void                heartbeat_keep_alive_set_status (HeartbeatKeepAlive *keep_alive,
                                                     const char         *status);
void                heartbeat_keep_alive_beat       (HeartbeatKeepAlive *keep_alive);
void                heartbeat_keep_alive_update     (HeartbeatKeepAlive *keep_alive,
                                                     double              progress,
                                                     GVariant           *metadata);
void                heartbeat_keep_alive_mark_idle  (HeartbeatKeepAlive *keep_alive);
gboolean            heartbeat_keep_alive_unregister (HeartbeatKeepAlive *keep_alive,
                                                     GError            **error);
guint64             heartbeat_keep_alive_get_interval_usec (HeartbeatKeepAlive *keep_alive);
guint               heartbeat_keep_alive_get_registrations (HeartbeatKeepAlive *keep_alive);
gboolean            heartbeat_keep_alive_get_registered    (HeartbeatKeepAlive *keep_alive);

G_END_DECLS
