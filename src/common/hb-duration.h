/* hb-duration.h: durations as people write them (heartbeatd.conf, hbctl)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The longest duration: 100 years (of 366 days), as long as the monitor's
 * thresholds may be (HEARTBEAT_THRESHOLD_MAX; hb-config.c asserts they
 * are the same). */
#define HB_DURATION_MAX (G_GINT64_CONSTANT (100) * 366 * 24 * 3600 * G_USEC_PER_SEC)

gboolean  hb_duration_parse  (const char *text,
                                     gint64     *usec,
                                     GError    **error);
char     *hb_duration_format (gint64      usec);

G_END_DECLS
