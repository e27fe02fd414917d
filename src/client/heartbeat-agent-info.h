/* heartbeat-agent-info.h: one agent as heartbeatd describes it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/**
 * HeartbeatAgentInfoClass:
 * @parent_class: the #GObjectClass it derives from
 *
 * The class of #HeartbeatAgentInfo. The type is final: it adds no virtual
 * methods and cannot be subclassed.
 */
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

/* the systemd unit behind a unit-backed agent ([agent:NAME] unit=) */
GVariant           *heartbeat_agent_info_get_unit          (HeartbeatAgentInfo *info);
gboolean            heartbeat_agent_info_has_unit          (HeartbeatAgentInfo *info);
const char         *heartbeat_agent_info_get_unit_name     (HeartbeatAgentInfo *info);
const char         *heartbeat_agent_info_get_unit_active_state (HeartbeatAgentInfo *info);
const char         *heartbeat_agent_info_get_unit_sub_state (HeartbeatAgentInfo *info);
guint32             heartbeat_agent_info_get_unit_main_pid (HeartbeatAgentInfo *info);
guint64             heartbeat_agent_info_get_unit_active_since (HeartbeatAgentInfo *info);
gboolean            heartbeat_agent_info_get_unit_cpu_usec (HeartbeatAgentInfo *info,
                                                            guint64            *out_usec);
gboolean            heartbeat_agent_info_get_unit_memory_bytes (HeartbeatAgentInfo *info,
                                                            guint64            *out_bytes);
const char         *heartbeat_agent_info_get_unit_result   (HeartbeatAgentInfo *info);
gboolean            heartbeat_agent_info_get_unit_exit_status (HeartbeatAgentInfo *info,
                                                            gint32             *out_status);
guint32             heartbeat_agent_info_get_unit_n_restarts (HeartbeatAgentInfo *info);
guint32             heartbeat_agent_info_get_unit_heartbeatd_restarts (HeartbeatAgentInfo *info);

G_END_DECLS
