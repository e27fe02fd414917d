/* hb-event-log.h: the event log front ([log] events-file=, JSON lines)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "heartbeat-monitor.h"

G_BEGIN_DECLS

/* Wall-clock time in µs, for tests that cross midnight. */
typedef gint64 (*HbEventLogClock) (gpointer user_data);

#define HB_TYPE_EVENT_LOG (hb_event_log_get_type ())
G_DECLARE_FINAL_TYPE (HbEventLog, hb_event_log, HB, EVENT_LOG, GObject)

HbEventLog *hb_event_log_new       (HeartbeatMonitor *monitor,
                                    const char       *path,
                                    guint             retention);
void        hb_event_log_set_clock (HbEventLog       *log,
                                    HbEventLogClock   clock,
                                    gpointer          user_data);
gboolean    hb_event_log_write     (HbEventLog       *log,
                                    const char       *event,
                                    HeartbeatAgent   *agent,
                                    GVariant         *extra,
                                    GError          **error);

G_END_DECLS
