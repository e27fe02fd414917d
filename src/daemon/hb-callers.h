/* hb-callers.h: who the callers on the bus are, and when they leave
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define HB_TYPE_CALLERS (hb_callers_get_type ())
G_DECLARE_FINAL_TYPE (HbCallers, hb_callers, HB, CALLERS, GObject)

/**
 * HbCallersUidFunc:
 * @unique_name: the caller's unique bus name
 * @uid: its uid, when @error is %NULL
 * @error: (nullable): why the bus could not tell, or %NULL
 * @user_data: what was given to hb_callers_resolve_uid()
 *
 * Receives the answer of hb_callers_resolve_uid().
 */
typedef void (*HbCallersUidFunc) (const char   *unique_name,
                                  guint32       uid,
                                  const GError *error,
                                  gpointer      user_data);

HbCallers *hb_callers_new          (GDBusConnection  *connection);

gboolean   hb_callers_lookup_uid   (HbCallers        *callers,
                                    const char       *unique_name,
                                    guint32          *uid);
void       hb_callers_resolve_uid  (HbCallers        *callers,
                                    const char       *unique_name,
                                    HbCallersUidFunc  func,
                                    gpointer          user_data);
guint      hb_callers_get_n_cached (HbCallers        *callers);

G_END_DECLS
