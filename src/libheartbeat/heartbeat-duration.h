/* heartbeat-duration.h: durations as people write them
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "heartbeat-monitor.h"

G_BEGIN_DECLS

gboolean  heartbeat_duration_parse  (const char *text,
                                     gint64     *usec,
                                     GError    **error);
char     *heartbeat_duration_format (gint64      usec);

G_END_DECLS
