/* hb-agent-record.h: the agent record every front sends
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "heartbeat-monitor.h"
#include "hb-units.h"

G_BEGIN_DECLS

GVariant *hb_agent_record    (HeartbeatMonitor *monitor,
                              HbUnits          *units,
                              HeartbeatAgent   *agent);
GVariant *hb_agent_record_at (HeartbeatAgent   *agent,
                              HbUnits          *units,
                              gint64            now,
                              gint64            realtime_offset);

G_END_DECLS
