/* hb-schedules.h: the cron schedules of [agent:NAME] schedule= jobs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "heartbeat-monitor.h"

G_BEGIN_DECLS

typedef struct _HbSchedules HbSchedules;

HbSchedules *hb_schedules_new   (HeartbeatMonitor *monitor);
void         hb_schedules_free  (HbSchedules      *schedules);
void         hb_schedules_apply (HbSchedules      *schedules,
                                 GPtrArray        *config_agents);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (HbSchedules, hb_schedules_free)

G_END_DECLS
