/* hb-alerts.h: the alert front ([alert:NAME] → webhook, Alertmanager,
 * a program, a systemd unit restart: the one named, or with restart-unit=
 * empty the agent's own unit=)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "hb-config.h"
#include "hb-tail.h"
#include "hb-units.h"

G_BEGIN_DECLS

/* Deliveries waiting (sending or between retries) before new ones are
 * dropped. $HB_ALERTS_MAX_PENDING lowers it, for tests. */
#define HB_ALERTS_MAX_PENDING 1024

/* Drops are logged once, then summed up at most once per this interval.
 * $HB_ALERTS_DROP_SUMMARY_MS shortens it, for tests. */
#define HB_ALERTS_DROP_SUMMARY_USEC (10 * G_USEC_PER_SEC)

/* The most of an exec= program's output kept (its last bytes), and of an
 * agent's "output" metadata passed on (webhook "output", $HB_OUTPUT):
 * HB_TAIL_BYTES, as much as `hbctl run` keeps. */
#define HB_ALERTS_OUTPUT_TAIL HB_TAIL_BYTES

/* The most of a webhook's or Alertmanager's reply read (its first bytes,
 * for the log when the delivery failed). */
#define HB_ALERTS_REPLY_MAX 4096

/* alertmanager=URL: an alert is sent again this often while its agent
 * stays in its state (the client contract asks for 30 s to 3 min; 60 s is
 * Prometheus' own resend delay). $HB_ALERTMANAGER_RESEND_MS shortens it,
 * for tests. */
#define HB_ALERTMANAGER_RESEND_USEC (60 * G_USEC_PER_SEC)

/* ...each time with an endsAt this many resend intervals ahead, as
 * Prometheus does: a few posts may be lost before Alertmanager resolves
 * the alert on its own, and it does once heartbeatd is gone for good. */
#define HB_ALERTMANAGER_VALIDITY 4

#define HB_TYPE_ALERTS (hb_alerts_get_type ())
G_DECLARE_FINAL_TYPE (HbAlerts, hb_alerts, HB, ALERTS, GObject)

HbAlerts *hb_alerts_new        (HeartbeatMonitor *monitor,
                                GDBusConnection  *connection);
void      hb_alerts_set_connection (HbAlerts        *alerts,
                                    GDBusConnection *connection);
void      hb_alerts_set_units  (HbAlerts         *alerts,
                                HbUnits          *units);
void      hb_alerts_configure  (HbAlerts         *alerts,
                                GPtrArray        *config_alerts);
guint     hb_alerts_get_n_pending (HbAlerts      *alerts);

G_END_DECLS
