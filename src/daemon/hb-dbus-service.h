/* hb-dbus-service.h: the D-Bus front, org.heartbeat.Monitor1
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "heartbeat-monitor.h"
#include "hb-liveness.h"
#include "hb-units.h"

G_BEGIN_DECLS

#define HB_DBUS_NAME        "org.heartbeat.Monitor1"
#define HB_DBUS_PATH        "/org/heartbeat/Monitor1"
#define HB_DBUS_INTERFACE   "org.heartbeat.Monitor1"
#define HB_DBUS_ERROR_PREFIX "org.heartbeat.Monitor1.Error."

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

/**
 * HbDBusError:
 * @HB_DBUS_ERROR_NOT_FOUND: no agent has that id
 *   (`org.heartbeat.Monitor1.Error.NotFound`).
 * @HB_DBUS_ERROR_EXISTS: the id is registered by another uid, which a
 *   caller must not take over by registering it again
 *   (`org.heartbeat.Monitor1.Error.Exists`).
 * @HB_DBUS_ERROR_INVALID_ARGUMENT: an id, option, detail, status,
 *   threshold or metadata dictionary is malformed, unknown, of the wrong
 *   type or too large (`org.heartbeat.Monitor1.Error.InvalidArgument`).
 * @HB_DBUS_ERROR_ACCESS_DENIED: the agent belongs to another uid and the
 *   caller is neither root nor authorized by polkit
 *   (`org.heartbeat.Monitor1.Error.AccessDenied`).
 * @HB_DBUS_ERROR_QUOTA_EXCEEDED: the caller's uid owns as many agents as
 *   it may, so one process cannot exhaust the daemon's memory
 *   (`org.heartbeat.Monitor1.Error.QuotaExceeded`); also when the daemon
 *   holds its `[limits] max-agents`.
 * @HB_DBUS_ERROR_NOT_SAVED: the change could not be written to the state
 *   directory (a full or read-only disk), so it was not made
 *   (`org.heartbeat.Monitor1.Error.NotSaved`).
 * @HB_DBUS_ERROR_LIMITS_EXCEEDED: the reply would be larger than a D-Bus
 *   message may be (%HB_DBUS_REPLY_MAX_BYTES), so it was not sent: the
 *   caller lists the agents with ListAgentsPage instead
 *   (`org.heartbeat.Monitor1.Error.LimitsExceeded`).
 *
 * Named errors of the interface, org.heartbeat.Monitor1.Error.*. The
 * domain is registered with g_dbus_error_register_error_domain(), so
 * clients linking this code get these codes back from a remote error.
 */
typedef enum {
  HB_DBUS_ERROR_NOT_FOUND,
  HB_DBUS_ERROR_EXISTS,
  HB_DBUS_ERROR_INVALID_ARGUMENT,
  HB_DBUS_ERROR_ACCESS_DENIED,
  HB_DBUS_ERROR_QUOTA_EXCEEDED,
  HB_DBUS_ERROR_NOT_SAVED,
  HB_DBUS_ERROR_LIMITS_EXCEEDED,
} HbDBusError;

#define HB_DBUS_ERROR (hb_dbus_error_quark ())
GQuark hb_dbus_error_quark (void);

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
void           hb_dbus_service_set_fast_beat  (HbDBusService    *service,
                                               gboolean          enabled);

GVariant      *hb_dbus_service_describe_agent (HbDBusService    *service,
                                               HeartbeatAgent   *agent);

G_END_DECLS
