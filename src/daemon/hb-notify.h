/* hb-notify.h: the systemd front (sd_notify: READY, STATUS, WATCHDOG)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "heartbeat-monitor.h"

G_BEGIN_DECLS

#define HB_TYPE_NOTIFY (hb_notify_get_type ())
G_DECLARE_FINAL_TYPE (HbNotify, hb_notify, HB, NOTIFY, GObject)

HbNotify *hb_notify_new        (HeartbeatMonitor *monitor);
void      hb_notify_ready      (HbNotify         *notify);
void      hb_notify_reloading  (HbNotify         *notify);
void      hb_notify_stopping   (HbNotify         *notify);
void      hb_notify_set_problem (HbNotify        *notify,
                                 const char      *problem);

G_END_DECLS
