/* hb-dbus-service.h: the D-Bus front, org.heartbeat.Monitor1
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "heartbeat-monitor.h"
#include "hb-callers.h"
#include "hb-dbus-errors.h"
#include "hb-liveness.h"
#include "hb-units.h"

G_BEGIN_DECLS

#define HB_DBUS_NAME        "org.heartbeat.Monitor1"
#define HB_DBUS_PATH        "/org/heartbeat/Monitor1"
#define HB_DBUS_INTERFACE   "org.heartbeat.Monitor1"

/**
 * HB_DBUS_DEFAULT_QUOTA:
 *
 * How many agents one uid may own unless hb_dbus_service_set_quota() says
 * otherwise (`agents-per-uid` in heartbeatd.conf).
 */
#define HB_DBUS_DEFAULT_QUOTA 1024

/**
 * HB_DBUS_REPLY_MAX_BYTES:
 *
 * The largest reply the service sends, header included, as the D-Bus
 * marshalling counts it: 16 MiB, half the system bus's default
 * `max_message_size` (32 MiB), since a bus disconnects a peer that sends
 * a larger message. ListAgents fails with LimitsExceeded rather than send
 * more, and GetStatus shortens its `agents` list to fit. Tests lower it
 * with the environment variable `HB_DBUS_REPLY_MAX_BYTES` (bytes, read
 * once at start; not for production use).
 */
#define HB_DBUS_REPLY_MAX_BYTES (16u * 1024 * 1024)

/**
 * HB_DBUS_PAGE_MAX_BYTES:
 *
 * The byte budget of one ListAgentsPage reply: 8 MiB. A page stops before
 * the agent that would take it over the budget (its first agent is always
 * sent: one agent is at most about 60 KiB). Tests lower it with the
 * environment variable `HB_DBUS_PAGE_MAX_BYTES` (bytes, read once at
 * start; not for production use).
 */
#define HB_DBUS_PAGE_MAX_BYTES (8u * 1024 * 1024)

#define HB_TYPE_DBUS_SERVICE (hb_dbus_service_get_type ())
G_DECLARE_FINAL_TYPE (HbDBusService, hb_dbus_service, HB, DBUS_SERVICE, GObject)

HbDBusService *hb_dbus_service_new            (HeartbeatMonitor *monitor,
                                               GDBusConnection  *connection,
                                               const char       *version);
gboolean       hb_dbus_service_export         (HbDBusService    *service,
                                               GError          **error);
void           hb_dbus_service_unexport       (HbDBusService    *service);
void           hb_dbus_service_set_quota      (HbDBusService    *service,
                                               guint             agents_per_uid);
guint          hb_dbus_service_get_quota      (HbDBusService    *service);
void           hb_dbus_service_rebind         (HbDBusService    *service);
void           hb_dbus_service_set_problem    (HbDBusService    *service,
                                               const char       *problem);
void           hb_dbus_service_set_units      (HbDBusService    *service,
                                               HbUnits          *units);
HbLiveness    *hb_dbus_service_get_liveness   (HbDBusService    *service);
HbCallers     *hb_dbus_service_get_callers    (HbDBusService    *service);
void           hb_dbus_service_set_fast_beat  (HbDBusService    *service,
                                               gboolean          enabled);

G_END_DECLS
