/* hb-agent-record.c: the agent record every front sends
 *
 * One agent as the `a{sv}` of the D-Bus interface (GetAgent, ListAgents,
 * AgentStale, AgentTimedOut). The HTTP API sends the same record as JSON
 * (hb_json_from_variant()), so the two fronts cannot drift apart in keys,
 * clamping or clock reads, and `hbctl --url` reads back what D-Bus gives.
 *
 *   id, task-id, state, status, bound-to   s   ("" when not set)
 *   owner-uid, pid                         u   (pid 0 when none)
 *   started-at-usec, last-activity-at-usec t   wall-clock µs, ≥ 0
 *   running-usec, idle-usec                t   measured at @now, ≥ 0
 *   beats                                  t
 *   stale-after-usec, timeout-after-usec   t
 *   metadata                               a{sv}
 *   declared                               b
 *   unit                                   a{sv} (hb_units_describe(), or empty)
 *   next-due-usec, late-due-usec           t   wall-clock µs; 0: none, not late
 *   grace-usec                             t   0 without a schedule
 *   last-run                               a{sv} (see heartbeat_agent_get_runs(), or empty)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-agent-record.h"

static guint64
nonnegative (gint64 value)
{
  return value < 0 ? 0 : (guint64) value;
}

static GVariant *
empty_dict (void)
{
  return g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0);
}

/**
 * hb_agent_record_at:
 * @agent: an agent
 * @units: (nullable): the systemd units behind declared agents
 * @now: the monitor's time (heartbeat_monitor_get_time())
 * @realtime_offset: what turns a monitor time into wall-clock time
 *   (heartbeat_monitor_to_realtime (monitor, 0))
 *
 * The record of @agent at @now. A reply that describes several agents
 * reads the two clocks once, so all its agents are described at the same
 * instant.
 *
 * Returns: (transfer floating): the `a{sv}` record, every key present
 */
GVariant *
hb_agent_record_at (HeartbeatAgent *agent,
                    HbUnits        *units,
                    gint64          now,
                    gint64          realtime_offset)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  const char *task_id = heartbeat_agent_get_task_id (agent);
  const char *status = heartbeat_agent_get_status (agent);
  const char *bound_to = heartbeat_agent_get_bound_to (agent);
  GVariant *metadata = heartbeat_agent_get_metadata (agent);
  GVariant *last_run;

  g_return_val_if_fail (agent != NULL, NULL);
  g_return_val_if_fail (units == NULL || HB_IS_UNITS (units), NULL);

  g_variant_builder_add (&builder, "{sv}", "id",
                         g_variant_new_string (heartbeat_agent_get_id (agent)));
  g_variant_builder_add (&builder, "{sv}", "task-id",
                         g_variant_new_string (task_id ? task_id : ""));
  g_variant_builder_add (&builder, "{sv}", "state",
                         g_variant_new_string (heartbeat_agent_state_to_string (heartbeat_agent_get_state (agent))));
  g_variant_builder_add (&builder, "{sv}", "status",
                         g_variant_new_string (status ? status : ""));
  g_variant_builder_add (&builder, "{sv}", "owner-uid",
                         g_variant_new_uint32 (heartbeat_agent_get_owner_uid (agent)));
  g_variant_builder_add (&builder, "{sv}", "pid",
                         g_variant_new_uint32 ((guint32) MAX (0, heartbeat_agent_get_pid (agent))));
  g_variant_builder_add (&builder, "{sv}", "started-at-usec",
                         g_variant_new_uint64 (nonnegative (realtime_offset + heartbeat_agent_get_started_at (agent))));
  g_variant_builder_add (&builder, "{sv}", "last-activity-at-usec",
                         g_variant_new_uint64 (nonnegative (realtime_offset + heartbeat_agent_get_last_activity_at (agent))));
  g_variant_builder_add (&builder, "{sv}", "running-usec",
                         g_variant_new_uint64 (nonnegative (heartbeat_agent_get_running_usec (agent, now))));
  g_variant_builder_add (&builder, "{sv}", "idle-usec",
                         g_variant_new_uint64 (nonnegative (heartbeat_agent_get_idle_usec (agent, now))));
  g_variant_builder_add (&builder, "{sv}", "beats",
                         g_variant_new_uint64 (heartbeat_agent_get_beats (agent)));
  g_variant_builder_add (&builder, "{sv}", "stale-after-usec",
                         g_variant_new_uint64 (nonnegative (heartbeat_agent_get_stale_after (agent))));
  g_variant_builder_add (&builder, "{sv}", "timeout-after-usec",
                         g_variant_new_uint64 (nonnegative (heartbeat_agent_get_timeout_after (agent))));
  g_variant_builder_add (&builder, "{sv}", "metadata", metadata ? metadata : empty_dict ());
  g_variant_builder_add (&builder, "{sv}", "declared",
                         g_variant_new_boolean (heartbeat_agent_is_declared (agent)));
  g_variant_builder_add (&builder, "{sv}", "bound-to",
                         g_variant_new_string (bound_to ? bound_to : ""));
  g_variant_builder_add (&builder, "{sv}", "unit",
                         units ? hb_units_describe (units, heartbeat_agent_get_id (agent)) : empty_dict ());
  g_variant_builder_add (&builder, "{sv}", "next-due-usec",
                         g_variant_new_uint64 (nonnegative (heartbeat_agent_get_next_due (agent))));
  g_variant_builder_add (&builder, "{sv}", "late-due-usec",
                         g_variant_new_uint64 (nonnegative (heartbeat_agent_get_late_due (agent))));
  g_variant_builder_add (&builder, "{sv}", "grace-usec",
                         g_variant_new_uint64 (nonnegative (heartbeat_agent_get_grace (agent))));
  last_run = heartbeat_agent_get_last_run (agent);
  g_variant_builder_add (&builder, "{sv}", "last-run", last_run ? last_run : empty_dict ());
  return g_variant_builder_end (&builder);
}

/**
 * hb_agent_record:
 * @monitor: the monitor that keeps @agent
 * @units: (nullable): the systemd units behind declared agents
 * @agent: an agent
 *
 * hb_agent_record_at() with both clocks read now.
 *
 * Returns: (transfer floating): the `a{sv}` record
 */
GVariant *
hb_agent_record (HeartbeatMonitor *monitor,
                 HbUnits          *units,
                 HeartbeatAgent   *agent)
{
  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), NULL);

  return hb_agent_record_at (agent, units, heartbeat_monitor_get_time (monitor),
                             heartbeat_monitor_to_realtime (monitor, 0));
}
