/* hb-units.h: agents backed by a systemd unit ([agent:NAME] unit=)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "heartbeat-monitor.h"

G_BEGIN_DECLS

#define HB_TYPE_UNITS (hb_units_get_type ())
G_DECLARE_FINAL_TYPE (HbUnits, hb_units, HB, UNITS, GObject)

HbUnits    *hb_units_new                 (HeartbeatMonitor    *monitor,
                                          GDBusConnection     *connection);
void        hb_units_set_connection      (HbUnits             *units,
                                          GDBusConnection     *connection);
void        hb_units_follow              (HbUnits             *units,
                                          const char          *agent_id,
                                          const char          *unit_name,
                                          gint64               grace_usec);
void        hb_units_forget_all          (HbUnits             *units);
const char *hb_units_get_unit_name       (HbUnits             *units,
                                          const char          *agent_id);
GVariant   *hb_units_describe            (HbUnits             *units,
                                          const char          *agent_id);
void        hb_units_note_restarted      (HbUnits             *units,
                                          const char          *unit_name);
void        hb_units_check_caller_async  (HbUnits             *units,
                                          const char          *agent_id,
                                          const char          *sender,
                                          GCancellable        *cancellable,
                                          GAsyncReadyCallback  callback,
                                          gpointer             user_data);
gboolean    hb_units_check_caller_finish (HbUnits             *units,
                                          GAsyncResult        *result,
                                          GError             **error);

G_END_DECLS
