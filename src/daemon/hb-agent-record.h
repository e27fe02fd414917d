/* hb-agent-record.h: the agent record every front sends
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "heartbeat-monitor.h"
#include "hb-units.h"

G_BEGIN_DECLS

/**
 * HB_AGENT_REASON_MAX:
 *
 * The most bytes of an agent's reason (see hb_agent_record_reason()).
 */
#define HB_AGENT_REASON_MAX 256

GVariant *hb_agent_record    (HeartbeatMonitor *monitor,
                              HbUnits          *units,
                              HeartbeatAgent   *agent);
GVariant *hb_agent_record_at (HeartbeatAgent   *agent,
                              HbUnits          *units,
                              gint64            now,
                              gint64            realtime_offset);
char     *hb_agent_record_reason      (HeartbeatAgent *agent);
char     *hb_agent_record_reason_full (HeartbeatAgent *agent,
                                       HbUnits        *units);

G_END_DECLS
