/* hb-state.h: the persistence front (registrations survive restarts)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "heartbeat-monitor.h"

G_BEGIN_DECLS

#define HB_TYPE_STATE (hb_state_get_type ())
G_DECLARE_FINAL_TYPE (HbState, hb_state, HB, STATE, GObject)

HbState    *hb_state_new          (HeartbeatMonitor *monitor,
                                   const char       *directory);
gboolean    hb_state_lock         (HbState          *state,
                                   GError          **error);
gboolean    hb_state_load         (HbState          *state,
                                   GError          **error);
gboolean    hb_state_flush        (HbState          *state,
                                   GError          **error);
void        hb_state_save_soon    (HbState          *state);
void        hb_state_set_sync_interval (HbState     *state,
                                        gint64       usec);
void        hb_state_set_alive_interval (HbState    *state,
                                         gint64      usec);
const char *hb_state_get_path     (HbState          *state);
const char *hb_state_get_problem  (HbState          *state);
guint64     hb_state_get_write_count (HbState        *state);

G_END_DECLS
