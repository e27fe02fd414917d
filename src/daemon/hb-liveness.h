/* hb-liveness.h: notices at once when an agent's process or bus peer ends
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "hb-callers.h"
#include "heartbeat-monitor.h"

G_BEGIN_DECLS

#define HB_TYPE_LIVENESS (hb_liveness_get_type ())
G_DECLARE_FINAL_TYPE (HbLiveness, hb_liveness, HB, LIVENESS, GObject)

HbLiveness *hb_liveness_new          (HeartbeatMonitor *monitor,
                                      GDBusConnection  *connection,
                                      HbCallers        *callers);

gboolean    hb_liveness_check_pid    (guint32           pid,
                                      GError          **error);

void        hb_liveness_watch_pid    (HbLiveness       *liveness,
                                      const char       *id,
                                      gint32            pid);
void        hb_liveness_watch_name   (HbLiveness       *liveness,
                                      const char       *id,
                                      const char       *name);
void        hb_liveness_watch_agent  (HbLiveness       *liveness,
                                      HeartbeatAgent   *agent);
void        hb_liveness_forget       (HbLiveness       *liveness,
                                      const char       *id);
void        hb_liveness_rebind       (HbLiveness       *liveness);

guint       hb_liveness_get_n_watched (HbLiveness      *liveness);

G_END_DECLS
