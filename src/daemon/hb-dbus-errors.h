/* hb-dbus-errors.h: the named errors of org.heartbeat.Monitor1
 *
 * Apart from the D-Bus front so that what answers for it (hb-authority)
 * needs only its errors, not the front.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define HB_DBUS_ERROR_PREFIX "org.heartbeat.Monitor1.Error."

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

G_END_DECLS
