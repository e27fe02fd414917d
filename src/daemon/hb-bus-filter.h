/* hb-bus-filter.h: a message bus connection that never hands GDBus a
 * message it cannot decode
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

GDBusConnection *hb_bus_filter_connect_sync (const char    *address,
                                             GCancellable  *cancellable,
                                             GError       **error);

gboolean         hb_bus_filter_decodes      (const guint8  *blob,
                                             gsize          len);

G_END_DECLS
