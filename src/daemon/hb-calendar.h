/* hb-calendar.h: systemd calendar expressions, evaluated by systemd
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gint64 hb_calendar_next (const char *expression,
                         const char *tz,
                         gint64      after_realtime,
                         GError    **error);

G_END_DECLS
