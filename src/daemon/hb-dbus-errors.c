/* hb-dbus-errors.c: the named errors of org.heartbeat.Monitor1
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-dbus-errors.h"

static const GDBusErrorEntry hb_dbus_error_entries[] = {
  { HB_DBUS_ERROR_NOT_FOUND,        HB_DBUS_ERROR_PREFIX "NotFound" },
  { HB_DBUS_ERROR_EXISTS,           HB_DBUS_ERROR_PREFIX "Exists" },
  { HB_DBUS_ERROR_INVALID_ARGUMENT, HB_DBUS_ERROR_PREFIX "InvalidArgument" },
  { HB_DBUS_ERROR_ACCESS_DENIED,    HB_DBUS_ERROR_PREFIX "AccessDenied" },
  { HB_DBUS_ERROR_QUOTA_EXCEEDED,   HB_DBUS_ERROR_PREFIX "QuotaExceeded" },
  { HB_DBUS_ERROR_NOT_SAVED,        HB_DBUS_ERROR_PREFIX "NotSaved" },
  { HB_DBUS_ERROR_LIMITS_EXCEEDED,  HB_DBUS_ERROR_PREFIX "LimitsExceeded" },
};

G_STATIC_ASSERT (G_N_ELEMENTS (hb_dbus_error_entries) == HB_DBUS_ERROR_LIMITS_EXCEEDED + 1);

/**
 * hb_dbus_error_quark:
 *
 * The error domain of the D-Bus front, registered with GDBus so a
 * #GError in it goes out as its org.heartbeat.Monitor1.Error.* name.
 *
 * Returns: the #HB_DBUS_ERROR quark
 */
GQuark
hb_dbus_error_quark (void)
{
  static gsize quark = 0;

  g_dbus_error_register_error_domain ("hb-dbus-error-quark", &quark,
                                      hb_dbus_error_entries,
                                      G_N_ELEMENTS (hb_dbus_error_entries));
  return (GQuark) quark;
}
