/* hb-alerts.h: the alert front ([alert:NAME] → webhook, Alertmanager,
 * a program, a systemd unit restart)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "hb-config.h"

G_BEGIN_DECLS

/* Deliveries waiting (sending or between retries) before new ones are
 * dropped. */
#define HB_ALERTS_MAX_PENDING 1024

#define HB_TYPE_ALERTS (hb_alerts_get_type ())
G_DECLARE_FINAL_TYPE (HbAlerts, hb_alerts, HB, ALERTS, GObject)

HbAlerts *hb_alerts_new        (HeartbeatMonitor *monitor,
                                GDBusConnection  *connection);
void      hb_alerts_set_connection (HbAlerts        *alerts,
                                    GDBusConnection *connection);
void      hb_alerts_configure  (HbAlerts         *alerts,
                                GPtrArray        *config_alerts);
guint     hb_alerts_get_n_pending (HbAlerts      *alerts);

G_END_DECLS
