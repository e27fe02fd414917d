/* hb-cron.h: cron expressions and when they are due
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The longest expression accepted, in bytes. */
#define HB_CRON_MAX_LENGTH 256

/* How far hb_cron_next() and hb_cron_prev() look: five years, with their
 * leap days (1827 days). */
#define HB_CRON_HORIZON_USEC (G_GINT64_CONSTANT (1827) * 24 * 3600 * G_USEC_PER_SEC)

typedef struct _HbCron HbCron;

HbCron  *hb_cron_parse     (const char    *expression,
                            GError       **error);
void     hb_cron_free      (HbCron        *cron);
char    *hb_cron_to_string (const HbCron  *cron);
gint64   hb_cron_next      (const HbCron  *cron,
                            GTimeZone     *tz,
                            gint64         after_realtime_usec);
gint64   hb_cron_prev      (const HbCron  *cron,
                            GTimeZone     *tz,
                            gint64         before_realtime_usec);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (HbCron, hb_cron_free)

G_END_DECLS
