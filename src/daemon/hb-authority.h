/* hb-authority.h: who may change an agent (owner, root, or polkit)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/**
 * HB_AUTHORITY_ACTION_MANAGE:
 *
 * The polkit action a caller needs to change an agent that belongs to
 * another uid (see data/org.heartbeat.monitor1.policy.in).
 */
#define HB_AUTHORITY_ACTION_MANAGE "org.heartbeat.monitor1.manage"

#define HB_TYPE_AUTHORITY (hb_authority_get_type ())
G_DECLARE_FINAL_TYPE (HbAuthority, hb_authority, HB, AUTHORITY, GObject)

HbAuthority *hb_authority_new                  (GDBusConnection      *connection);

gboolean     hb_authority_allows_without_asking (guint32               caller_uid,
                                                 guint32               owner_uid);

void         hb_authority_check_async          (HbAuthority          *authority,
                                                const char           *sender,
                                                gboolean              interactive,
                                                guint32               caller_uid,
                                                guint32               owner_uid,
                                                GCancellable         *cancellable,
                                                GAsyncReadyCallback   callback,
                                                gpointer              user_data);
gboolean     hb_authority_check_finish         (HbAuthority          *authority,
                                                GAsyncResult         *result,
                                                GError              **error);

G_END_DECLS
