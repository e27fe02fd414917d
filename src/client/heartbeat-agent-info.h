/* heartbeat-agent-info.h: one agent as heartbeatd describes it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define HEARTBEAT_TYPE_AGENT_INFO (heartbeat_agent_info_get_type ())
G_DECLARE_FINAL_TYPE (HeartbeatAgentInfo, heartbeat_agent_info, HEARTBEAT, AGENT_INFO, GObject)

HeartbeatAgentInfo *heartbeat_agent_info_new               (GVariant           *dict);
GVariant           *heartbeat_agent_info_get_variant       (HeartbeatAgentInfo *info);
const char         *heartbeat_agent_info_get_id            (HeartbeatAgentInfo *info);
const char         *heartbeat_agent_info_get_task_id       (HeartbeatAgentInfo *info);
const char         *heartbeat_agent_info_get_state         (HeartbeatAgentInfo *info);
const char         *heartbeat_agent_info_get_status        (HeartbeatAgentInfo *info);
guint32             heartbeat_agent_info_get_owner_uid     (HeartbeatAgentInfo *info);
guint32             heartbeat_agent_info_get_pid           (HeartbeatAgentInfo *info);
guint64             heartbeat_agent_info_get_started_at    (HeartbeatAgentInfo *info);
guint64             heartbeat_agent_info_get_last_activity_at (HeartbeatAgentInfo *info);
guint64             heartbeat_agent_info_get_running_usec  (HeartbeatAgentInfo *info);
guint64             heartbeat_agent_info_get_idle_usec     (HeartbeatAgentInfo *info);
guint64             heartbeat_agent_info_get_beats         (HeartbeatAgentInfo *info);
guint64             heartbeat_agent_info_get_stale_after   (HeartbeatAgentInfo *info);
guint64             heartbeat_agent_info_get_timeout_after (HeartbeatAgentInfo *info);
GVariant           *heartbeat_agent_info_get_metadata      (HeartbeatAgentInfo *info);
gboolean            heartbeat_agent_info_get_declared      (HeartbeatAgentInfo *info);
const char         *heartbeat_agent_info_get_bound_to      (HeartbeatAgentInfo *info);

G_END_DECLS
