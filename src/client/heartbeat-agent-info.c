/* heartbeat-agent-info.c: one agent as heartbeatd describes it
 *
 * A read-only view of an agent dictionary (org.heartbeat.Monitor1.GetAgent,
 * ListAgents, AgentStale, AgentTimedOut): every documented key as a typed
 * property. The dictionary itself stays reachable for keys added later.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "heartbeat-agent-info.h"

/**
 * HeartbeatAgentInfo:
 *
 * One agent as heartbeatd described it at the time of a reply or signal:
 * a snapshot, it does not change afterwards. Times are wall-clock
 * microseconds since the Unix epoch, durations microseconds.
 */
struct _HeartbeatAgentInfo {
  GObject   parent_instance;
  GVariant *dict;   /* a{sv}, never NULL */
  GVariant *unit;   /* its `unit` a{sv}, never NULL: empty if not unit-backed */
};

enum {
  PROP_0,
  PROP_VARIANT,
  PROP_ID,
  PROP_TASK_ID,
  PROP_STATE,
  PROP_STATUS,
  PROP_OWNER_UID,
  PROP_PID,
  PROP_STARTED_AT,
  PROP_LAST_ACTIVITY_AT,
  PROP_RUNNING_USEC,
  PROP_IDLE_USEC,
  PROP_BEATS,
  PROP_STALE_AFTER,
  PROP_TIMEOUT_AFTER,
  PROP_METADATA,
  PROP_DECLARED,
  PROP_BOUND_TO,
  PROP_UNIT,
  PROP_UNIT_NAME,
  PROP_UNIT_ACTIVE_STATE,
  PROP_UNIT_SUB_STATE,
  PROP_UNIT_MAIN_PID,
  PROP_UNIT_ACTIVE_SINCE,
  PROP_UNIT_RESULT,
  PROP_UNIT_N_RESTARTS,
  PROP_UNIT_HEARTBEATD_RESTARTS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (HeartbeatAgentInfo, heartbeat_agent_info, G_TYPE_OBJECT)

/* A string of @dict (the agent's, or its unit's), "" if missing. */
static const char *
dict_string (GVariant   *dict,
             const char *key)
{
  const char *value = NULL;

  if (!g_variant_lookup (dict, key, "&s", &value))
    return "";
  return value;
}

static const char *
lookup_string (HeartbeatAgentInfo *self,
               const char         *key)
{
  return dict_string (self->dict, key);
}

static guint64
lookup_uint64 (HeartbeatAgentInfo *self,
               const char         *key)
{
  guint64 value = 0;

  if (!g_variant_lookup (self->dict, key, "t", &value))
    return 0;
  return value;
}

static guint32
lookup_uint32 (HeartbeatAgentInfo *self,
               const char         *key)
{
  guint32 value = 0;

  if (!g_variant_lookup (self->dict, key, "u", &value))
    return 0;
  return value;
}

static GVariant *
empty_dict (void)
{
  return g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0));
}

static const char *
unit_string (HeartbeatAgentInfo *self,
             const char         *key)
{
  return dict_string (self->unit, key);
}

/* A number of the unit dictionary, whatever integer type it came as (the
 * daemon sends t, u and i; the same dictionary read back from the HTTP
 * API's JSON holds x). Negative values and other types read as missing. */
static gboolean
unit_number (HeartbeatAgentInfo *self,
             const char         *key,
             gint64              min,
             gint64              max,
             gint64             *out)
{
  g_autoptr(GVariant) value = g_variant_lookup_value (self->unit, key, NULL);
  gint64 n;

  if (value == NULL)
    return FALSE;
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64))
    {
      guint64 u = g_variant_get_uint64 (value);

      if (u > (guint64) G_MAXINT64)
        return FALSE;
      n = (gint64) u;
    }
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT64))
    n = g_variant_get_int64 (value);
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
    n = g_variant_get_uint32 (value);
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT32))
    n = g_variant_get_int32 (value);
  else
    return FALSE;
  if (n < min || n > max)
    return FALSE;
  *out = n;
  return TRUE;
}

static guint64
unit_uint64 (HeartbeatAgentInfo *self,
             const char         *key,
             gboolean           *present)
{
  g_autoptr(GVariant) value = g_variant_lookup_value (self->unit, key, NULL);
  gint64 n = 0;

  /* the full range of t, which unit_number() cannot hold */
  if (value && g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64))
    {
      if (present)
        *present = TRUE;
      return g_variant_get_uint64 (value);
    }
  if (unit_number (self, key, 0, G_MAXINT64, &n))
    {
      if (present)
        *present = TRUE;
      return (guint64) n;
    }
  if (present)
    *present = FALSE;
  return 0;
}

/**
 * heartbeat_agent_info_new:
 * @dict: an agent dictionary, an `a{sv}`
 *
 * Wraps an agent dictionary as org.heartbeat.Monitor1 sends it (for
 * instance the @agent argument of #HeartbeatClient::agent-stale). Keys that
 * are missing or of another type read as empty.
 *
 * Returns: (transfer full): the agent
 */
HeartbeatAgentInfo *
heartbeat_agent_info_new (GVariant *dict)
{
  g_return_val_if_fail (dict != NULL, NULL);
  g_return_val_if_fail (g_variant_is_of_type (dict, G_VARIANT_TYPE_VARDICT), NULL);

  return g_object_new (HEARTBEAT_TYPE_AGENT_INFO, "variant", dict, NULL);
}

/**
 * heartbeat_agent_info_get_variant:
 * @info: a #HeartbeatAgentInfo
 *
 * The whole agent dictionary the info wraps, for keys this version of the
 * library has no getter for. It is owned by @info and lives as long as it.
 *
 * Returns: (transfer none): the agent dictionary, an `a{sv}`
 */
GVariant *
heartbeat_agent_info_get_variant (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), NULL);
  return info->dict;
}

/**
 * heartbeat_agent_info_get_id:
 * @info: a #HeartbeatAgentInfo
 *
 * The id the agent was registered (or declared) under, the one every
 * #HeartbeatClient call about it takes. "" if the dictionary has none.
 *
 * Returns: the agent's id
 */
const char *
heartbeat_agent_info_get_id (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), NULL);
  return lookup_string (info, "id");
}

/**
 * heartbeat_agent_info_get_task_id:
 * @info: a #HeartbeatAgentInfo
 *
 * The free-text task id the agent registered with (the `task-id` option
 * of Register): what it works on. "" if it gave none.
 *
 * Returns: what it works on, or ""
 */
const char *
heartbeat_agent_info_get_task_id (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), NULL);
  return lookup_string (info, "task-id");
}

/**
 * heartbeat_agent_info_get_state:
 * @info: a #HeartbeatAgentInfo
 *
 * The agent's state, which heartbeatd derives from its beats, thresholds
 * and process; callers never set it. "" if the dictionary has none.
 *
 * Returns: the monitor's judgment: `healthy`, `stale`, `timed-out`,
 *   `error`, `gone` or `no-heartbeat`, or `paused` when someone paused it
 *   (heartbeat_client_pause()) and it is not judged (treat others like
 *   `error`)
 */
const char *
heartbeat_agent_info_get_state (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), NULL);
  return lookup_string (info, "state");
}

/**
 * heartbeat_agent_info_get_status:
 * @info: a #HeartbeatAgentInfo
 *
 * The free-text status the agent gave in its last beat (`running`, `idle`
 * and `error` are understood; `error` makes its state `error`). "" if it
 * never reported one.
 *
 * Returns: the status it last reported
 */
const char *
heartbeat_agent_info_get_status (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), NULL);
  return lookup_string (info, "status");
}

/**
 * heartbeat_agent_info_get_owner_uid:
 * @info: a #HeartbeatAgentInfo
 *
 * The uid the agent belongs to: only it, root or a caller polkit allows
 * may beat, idle or unregister the agent. 0 if the dictionary has none.
 *
 * Returns: the uid that registered it
 */
guint32
heartbeat_agent_info_get_owner_uid (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), 0);
  return lookup_uint32 (info, "owner-uid");
}

/**
 * heartbeat_agent_info_get_pid:
 * @info: a #HeartbeatAgentInfo
 *
 * The process the agent is bound to (the `pid` option of Register): when
 * it exits, the agent becomes `gone`. 0 if it is bound to none.
 *
 * Returns: the process it is bound to, or 0
 */
guint32
heartbeat_agent_info_get_pid (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), 0);
  return lookup_uint32 (info, "pid");
}

/**
 * heartbeat_agent_info_get_started_at:
 * @info: a #HeartbeatAgentInfo
 *
 * When the agent's current run started (its registration, or the first
 * beat after it was idle or timed out), in microseconds since the Unix
 * epoch. 0 if the dictionary has none.
 *
 * Returns: when its current run started, wall-clock microseconds
 */
guint64
heartbeat_agent_info_get_started_at (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), 0);
  return lookup_uint64 (info, "started-at-usec");
}

/**
 * heartbeat_agent_info_get_last_activity_at:
 * @info: a #HeartbeatAgentInfo
 *
 * When the agent last registered, beat or marked itself idle, in
 * microseconds since the Unix epoch. 0 if the dictionary has none.
 *
 * Returns: its last activity, wall-clock microseconds
 */
guint64
heartbeat_agent_info_get_last_activity_at (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), 0);
  return lookup_uint64 (info, "last-activity-at-usec");
}

/**
 * heartbeat_agent_info_get_running_usec:
 * @info: a #HeartbeatAgentInfo
 *
 * How long the agent's current run had lasted when heartbeatd described
 * it; the run times out when this passes the timeout threshold. 0 if the
 * dictionary has none.
 *
 * Returns: how long its current run had lasted, in microseconds
 */
guint64
heartbeat_agent_info_get_running_usec (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), 0);
  return lookup_uint64 (info, "running-usec");
}

/**
 * heartbeat_agent_info_get_idle_usec:
 * @info: a #HeartbeatAgentInfo
 *
 * How long the agent had gone without activity when heartbeatd described
 * it; it becomes `stale` when this passes the stale threshold. 0 if the
 * dictionary has none.
 *
 * Returns: how long it had been quiet, in microseconds
 */
guint64
heartbeat_agent_info_get_idle_usec (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), 0);
  return lookup_uint64 (info, "idle-usec");
}

/**
 * heartbeat_agent_info_get_beats:
 * @info: a #HeartbeatAgentInfo
 *
 * The agent's beat counter, which registering again resets; marking
 * itself idle does not count as a beat. 0 if the dictionary has none.
 *
 * Returns: how many beats it sent since it was (re)registered
 */
guint64
heartbeat_agent_info_get_beats (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), 0);
  return lookup_uint64 (info, "beats");
}

/**
 * heartbeat_agent_info_get_stale_after:
 * @info: a #HeartbeatAgentInfo
 *
 * The agent's stale threshold: its own (the `stale-after-usec` option of
 * Register, or its declaration), or else the monitor's default. 0 if the
 * dictionary has none.
 *
 * Returns: its effective stale threshold, in microseconds
 */
guint64
heartbeat_agent_info_get_stale_after (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), 0);
  return lookup_uint64 (info, "stale-after-usec");
}

/**
 * heartbeat_agent_info_get_timeout_after:
 * @info: a #HeartbeatAgentInfo
 *
 * The agent's run timeout: its own (the `timeout-after-usec` option of
 * Register, or its declaration), or else the monitor's default. 0 if it
 * has none, as a service without a timeout of its own has not.
 *
 * Returns: its effective timeout threshold, in microseconds
 */
guint64
heartbeat_agent_info_get_timeout_after (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), 0);
  return lookup_uint64 (info, "timeout-after-usec");
}

/**
 * heartbeat_agent_info_get_metadata:
 * @info: a #HeartbeatAgentInfo
 *
 * The small dictionary the agent attached to its registration and beats
 * (progress, counters, any additional data), as a new reference the
 * caller unrefs.
 *
 * Returns: (transfer full): its metadata, an `a{sv}` (empty if none; a
 *   beat's progress is under `progress`)
 */
GVariant *
heartbeat_agent_info_get_metadata (HeartbeatAgentInfo *info)
{
  GVariant *metadata;

  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), NULL);
  metadata = g_variant_lookup_value (info->dict, "metadata", G_VARIANT_TYPE_VARDICT);
  if (metadata == NULL)
    metadata = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0));
  return metadata;
}

/**
 * heartbeat_agent_info_get_declared:
 * @info: a #HeartbeatAgentInfo
 *
 * Whether heartbeatd's configuration declares the agent, so that it is
 * listed (as `no-heartbeat`) before it ever beats, rather than a Register
 * call alone creating it. %FALSE if the dictionary does not say.
 *
 * Returns: whether heartbeatd's configuration declares it
 */
gboolean
heartbeat_agent_info_get_declared (HeartbeatAgentInfo *info)
{
  gboolean value = FALSE;

  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), FALSE);
  if (!g_variant_lookup (info->dict, "declared", "b", &value))
    return FALSE;
  return value;
}

/**
 * heartbeat_agent_info_get_bound_to:
 * @info: a #HeartbeatAgentInfo
 *
 * The bus peer the agent is bound to (the `bind-to-caller` option of
 * Register): when that peer leaves the bus, the agent becomes `gone`.
 *
 * Returns: the unique bus name it is bound to, or ""
 */
const char *
heartbeat_agent_info_get_bound_to (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), NULL);
  return lookup_string (info, "bound-to");
}

/**
 * heartbeat_agent_info_get_unit:
 * @info: a #HeartbeatAgentInfo
 *
 * The systemd unit behind the agent, as heartbeatd last saw it: the
 * agent dictionary's `unit`, empty for an agent that is not unit-backed
 * (one whose `[agent:NAME]` section has no `unit=`). Its keys are `name`,
 * `active-state`, `sub-state`, `main-pid`, `active-since-usec`,
 * `cpu-usec`, `memory-bytes`, `result`, `exit-status` and `n-restarts`;
 * the heartbeat_agent_info_get_unit_*() getters read them one by one.
 *
 * Returns: (transfer full): an `a{sv}`, empty if the agent has no unit
 */
GVariant *
heartbeat_agent_info_get_unit (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), NULL);
  return g_variant_ref (info->unit);
}

/**
 * heartbeat_agent_info_has_unit:
 * @info: a #HeartbeatAgentInfo
 *
 * Whether the agent is unit-backed, that is whether its unit dictionary
 * names a unit; the other heartbeat_agent_info_get_unit_*() getters read
 * "", 0 or unknown when it is not.
 *
 * Returns: whether a systemd unit is behind the agent (`unit=` in its
 *   declaration)
 */
gboolean
heartbeat_agent_info_has_unit (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), FALSE);
  return *unit_string (info, "name") != '\0';
}

/**
 * heartbeat_agent_info_get_unit_name:
 * @info: a #HeartbeatAgentInfo
 *
 * The systemd unit behind the agent, as its declaration's `unit=` names
 * it.
 *
 * Returns: the unit's name (`foo.service`), or "" if the agent has none
 */
const char *
heartbeat_agent_info_get_unit_name (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), NULL);
  return unit_string (info, "name");
}

/**
 * heartbeat_agent_info_get_unit_active_state:
 * @info: a #HeartbeatAgentInfo
 *
 * Whether the agent's unit runs, starts, stops or failed, as systemd last
 * told heartbeatd. It is not the agent's own state, which
 * heartbeat_agent_info_get_state() returns.
 *
 * Returns: the unit's systemd ActiveState (`active`, `inactive`, `failed`,
 *   `activating`, `deactivating`, `reloading`), `unknown` while systemd
 *   has not answered, or "" if the agent has no unit
 */
const char *
heartbeat_agent_info_get_unit_active_state (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), NULL);
  return unit_string (info, "active-state");
}

/**
 * heartbeat_agent_info_get_unit_sub_state:
 * @info: a #HeartbeatAgentInfo
 *
 * The finer, unit-type-specific state of the agent's unit, as systemd
 * last told heartbeatd. "" if the agent has no unit or systemd has not
 * answered.
 *
 * Returns: the unit's SubState (`running`, `dead`, `exited`, ...), or ""
 */
const char *
heartbeat_agent_info_get_unit_sub_state (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), NULL);
  return unit_string (info, "sub-state");
}

/**
 * heartbeat_agent_info_get_unit_main_pid:
 * @info: a #HeartbeatAgentInfo
 *
 * The main process of the agent's unit, as systemd last told heartbeatd.
 * A missing or out-of-range value reads as 0.
 *
 * Returns: the unit's MainPID, or 0 if it has none (or the agent no unit)
 */
guint32
heartbeat_agent_info_get_unit_main_pid (HeartbeatAgentInfo *info)
{
  gint64 n = 0;

  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), 0);
  return unit_number (info, "main-pid", 0, G_MAXUINT32, &n) ? (guint32) n : 0;
}

/**
 * heartbeat_agent_info_get_unit_active_since:
 * @info: a #HeartbeatAgentInfo
 *
 * When the agent's unit last entered the active state, as systemd last
 * told heartbeatd: a restart of the unit moves it later.
 *
 * Returns: when the unit last became active (its ActiveEnterTimestamp),
 *   wall-clock microseconds; 0 if it is not active (or the agent has no
 *   unit)
 */
guint64
heartbeat_agent_info_get_unit_active_since (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), 0);
  return unit_uint64 (info, "active-since-usec", NULL);
}

/**
 * heartbeat_agent_info_get_unit_cpu_usec:
 * @info: a #HeartbeatAgentInfo
 * @out_usec: (out) (optional): the CPU time, in microseconds
 *
 * The CPU time the unit's control group has used (systemd's
 * CPUUsageNSec). Unknown when the agent has no unit, or when systemd
 * does not account for it (CPUAccounting off): 0 is a real value, so
 * whether it is known is the return value, not a special number.
 *
 * Returns: %TRUE and @out_usec set if the CPU time is known; %FALSE (and
 *   @out_usec 0) if not
 */
gboolean
heartbeat_agent_info_get_unit_cpu_usec (HeartbeatAgentInfo *info,
                                        guint64            *out_usec)
{
  gboolean present = FALSE;
  guint64 value;

  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), FALSE);
  value = unit_uint64 (info, "cpu-usec", &present);
  if (out_usec)
    *out_usec = value;
  return present;
}

/**
 * heartbeat_agent_info_get_unit_memory_bytes:
 * @info: a #HeartbeatAgentInfo
 * @out_bytes: (out) (optional): the memory, in bytes
 *
 * The memory the unit's control group uses (systemd's MemoryCurrent).
 * Unknown as heartbeat_agent_info_get_unit_cpu_usec() is.
 *
 * Returns: %TRUE and @out_bytes set if it is known; %FALSE (and
 *   @out_bytes 0) if not
 */
gboolean
heartbeat_agent_info_get_unit_memory_bytes (HeartbeatAgentInfo *info,
                                            guint64            *out_bytes)
{
  gboolean present = FALSE;
  guint64 value;

  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), FALSE);
  value = unit_uint64 (info, "memory-bytes", &present);
  if (out_bytes)
    *out_bytes = value;
  return present;
}

/**
 * heartbeat_agent_info_get_unit_result:
 * @info: a #HeartbeatAgentInfo
 *
 * How the agent's unit last ended, as systemd last told heartbeatd: the
 * reason a failed unit failed. "" if the agent has no unit or systemd has
 * not answered.
 *
 * Returns: the unit's Result (`success`, `exit-code`, `signal`,
 *   `core-dump`, `timeout`, ...), or ""
 */
const char *
heartbeat_agent_info_get_unit_result (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), NULL);
  return unit_string (info, "result");
}

/**
 * heartbeat_agent_info_get_unit_exit_status:
 * @info: a #HeartbeatAgentInfo
 * @out_status: (out) (optional): the exit status
 *
 * The exit status of the unit's last main process that exited
 * (ExecMainStatus).
 *
 * Returns: %TRUE and @out_status set if one exited; %FALSE (and
 *   @out_status 0) if none did, or the agent has no unit
 */
gboolean
heartbeat_agent_info_get_unit_exit_status (HeartbeatAgentInfo *info,
                                           gint32             *out_status)
{
  gint64 n = 0;
  gboolean present;

  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), FALSE);
  present = unit_number (info, "exit-status", G_MININT32, G_MAXINT32, &n);
  if (out_status)
    *out_status = present ? (gint32) n : 0;
  return present;
}

/**
 * heartbeat_agent_info_get_unit_n_restarts:
 * @info: a #HeartbeatAgentInfo
 *
 * systemd counts only the restarts it makes itself (Restart=); those an
 * alert of heartbeatd asked for are heartbeat_agent_info_get_unit_heartbeatd_restarts().
 *
 * Returns: how many times systemd restarted the unit (NRestarts), or 0
 */
guint32
heartbeat_agent_info_get_unit_n_restarts (HeartbeatAgentInfo *info)
{
  gint64 n = 0;

  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), 0);
  return unit_number (info, "n-restarts", 0, G_MAXUINT32, &n) ? (guint32) n : 0;
}

/**
 * heartbeat_agent_info_get_unit_heartbeatd_restarts:
 * @info: a #HeartbeatAgentInfo
 *
 * How many times heartbeatd had systemd restart the unit, for an alert's
 * `restart-unit=`, since heartbeatd started. systemd's own count
 * (heartbeat_agent_info_get_unit_n_restarts()) leaves these out.
 *
 * Returns: the restarts heartbeatd asked for, or 0
 */
guint32
heartbeat_agent_info_get_unit_heartbeatd_restarts (HeartbeatAgentInfo *info)
{
  gint64 n = 0;

  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), 0);
  return unit_number (info, "heartbeatd-restarts", 0, G_MAXUINT32, &n) ? (guint32) n : 0;
}

static void
heartbeat_agent_info_get_property (GObject    *object,
                                   guint       prop_id,
                                   GValue     *value,
                                   GParamSpec *pspec)
{
  HeartbeatAgentInfo *self = HEARTBEAT_AGENT_INFO (object);

  switch (prop_id)
    {
    case PROP_VARIANT:          g_value_set_variant (value, self->dict); break;
    case PROP_ID:               g_value_set_string (value, heartbeat_agent_info_get_id (self)); break;
    case PROP_TASK_ID:          g_value_set_string (value, heartbeat_agent_info_get_task_id (self)); break;
    case PROP_STATE:            g_value_set_string (value, heartbeat_agent_info_get_state (self)); break;
    case PROP_STATUS:           g_value_set_string (value, heartbeat_agent_info_get_status (self)); break;
    case PROP_OWNER_UID:        g_value_set_uint (value, heartbeat_agent_info_get_owner_uid (self)); break;
    case PROP_PID:              g_value_set_uint (value, heartbeat_agent_info_get_pid (self)); break;
    case PROP_STARTED_AT:       g_value_set_uint64 (value, heartbeat_agent_info_get_started_at (self)); break;
    case PROP_LAST_ACTIVITY_AT: g_value_set_uint64 (value, heartbeat_agent_info_get_last_activity_at (self)); break;
    case PROP_RUNNING_USEC:     g_value_set_uint64 (value, heartbeat_agent_info_get_running_usec (self)); break;
    case PROP_IDLE_USEC:        g_value_set_uint64 (value, heartbeat_agent_info_get_idle_usec (self)); break;
    case PROP_BEATS:            g_value_set_uint64 (value, heartbeat_agent_info_get_beats (self)); break;
    case PROP_STALE_AFTER:      g_value_set_uint64 (value, heartbeat_agent_info_get_stale_after (self)); break;
    case PROP_TIMEOUT_AFTER:    g_value_set_uint64 (value, heartbeat_agent_info_get_timeout_after (self)); break;
    case PROP_METADATA:         g_value_take_variant (value, heartbeat_agent_info_get_metadata (self)); break;
    case PROP_DECLARED:         g_value_set_boolean (value, heartbeat_agent_info_get_declared (self)); break;
    case PROP_BOUND_TO:         g_value_set_string (value, heartbeat_agent_info_get_bound_to (self)); break;
    case PROP_UNIT:             g_value_set_variant (value, self->unit); break;
    case PROP_UNIT_NAME:        g_value_set_string (value, heartbeat_agent_info_get_unit_name (self)); break;
    case PROP_UNIT_ACTIVE_STATE: g_value_set_string (value, heartbeat_agent_info_get_unit_active_state (self)); break;
    case PROP_UNIT_SUB_STATE:   g_value_set_string (value, heartbeat_agent_info_get_unit_sub_state (self)); break;
    case PROP_UNIT_MAIN_PID:    g_value_set_uint (value, heartbeat_agent_info_get_unit_main_pid (self)); break;
    case PROP_UNIT_ACTIVE_SINCE: g_value_set_uint64 (value, heartbeat_agent_info_get_unit_active_since (self)); break;
    case PROP_UNIT_RESULT:      g_value_set_string (value, heartbeat_agent_info_get_unit_result (self)); break;
    case PROP_UNIT_N_RESTARTS:  g_value_set_uint (value, heartbeat_agent_info_get_unit_n_restarts (self)); break;
    case PROP_UNIT_HEARTBEATD_RESTARTS:
      g_value_set_uint (value, heartbeat_agent_info_get_unit_heartbeatd_restarts (self));
      break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
heartbeat_agent_info_set_property (GObject      *object,
                                   guint         prop_id,
                                   const GValue *value,
                                   GParamSpec   *pspec)
{
  HeartbeatAgentInfo *self = HEARTBEAT_AGENT_INFO (object);

  switch (prop_id)
    {
    case PROP_VARIANT:
      {
        GVariant *dict = g_value_get_variant (value);

        g_clear_pointer (&self->dict, g_variant_unref);
        g_clear_pointer (&self->unit, g_variant_unref);
        if (dict != NULL && g_variant_is_of_type (dict, G_VARIANT_TYPE_VARDICT))
          self->dict = g_variant_ref_sink (dict);
        else
          self->dict = empty_dict ();
        self->unit = g_variant_lookup_value (self->dict, "unit", G_VARIANT_TYPE_VARDICT);
        if (self->unit == NULL)
          self->unit = empty_dict ();
      }
      break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
heartbeat_agent_info_finalize (GObject *object)
{
  HeartbeatAgentInfo *self = HEARTBEAT_AGENT_INFO (object);

  g_clear_pointer (&self->dict, g_variant_unref);
  g_clear_pointer (&self->unit, g_variant_unref);
  G_OBJECT_CLASS (heartbeat_agent_info_parent_class)->finalize (object);
}

#define RO (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)

static void
heartbeat_agent_info_class_init (HeartbeatAgentInfoClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = heartbeat_agent_info_get_property;
  object_class->set_property = heartbeat_agent_info_set_property;
  object_class->finalize = heartbeat_agent_info_finalize;

  /**
   * HeartbeatAgentInfo:variant:
   *
   * The agent dictionary, an `a{sv}`.
   */
  properties[PROP_VARIANT] =
    g_param_spec_variant ("variant", NULL, NULL, G_VARIANT_TYPE_VARDICT, NULL,
                          G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * HeartbeatAgentInfo:id:
   *
   * The agent's id.
   */
  properties[PROP_ID] = g_param_spec_string ("id", NULL, NULL, "", RO);
  /**
   * HeartbeatAgentInfo:task-id:
   *
   * What it works on, or "".
   */
  properties[PROP_TASK_ID] = g_param_spec_string ("task-id", NULL, NULL, "", RO);
  /**
   * HeartbeatAgentInfo:state:
   *
   * The monitor's judgment.
   */
  properties[PROP_STATE] = g_param_spec_string ("state", NULL, NULL, "", RO);
  /**
   * HeartbeatAgentInfo:status:
   *
   * The status it last reported.
   */
  properties[PROP_STATUS] = g_param_spec_string ("status", NULL, NULL, "", RO);
  /**
   * HeartbeatAgentInfo:owner-uid:
   *
   * The uid that registered it.
   */
  properties[PROP_OWNER_UID] = g_param_spec_uint ("owner-uid", NULL, NULL, 0, G_MAXUINT32, 0, RO);
  /**
   * HeartbeatAgentInfo:pid:
   *
   * The process it is bound to, or 0.
   */
  properties[PROP_PID] = g_param_spec_uint ("pid", NULL, NULL, 0, G_MAXUINT32, 0, RO);
  /**
   * HeartbeatAgentInfo:started-at:
   *
   * When its run started (wall-clock µs).
   */
  properties[PROP_STARTED_AT] = g_param_spec_uint64 ("started-at", NULL, NULL, 0, G_MAXUINT64, 0, RO);
  /**
   * HeartbeatAgentInfo:last-activity-at:
   *
   * Its last activity (wall-clock µs).
   */
  properties[PROP_LAST_ACTIVITY_AT] = g_param_spec_uint64 ("last-activity-at", NULL, NULL, 0, G_MAXUINT64, 0, RO);
  /**
   * HeartbeatAgentInfo:running-usec:
   *
   * How long its run had lasted (µs).
   */
  properties[PROP_RUNNING_USEC] = g_param_spec_uint64 ("running-usec", NULL, NULL, 0, G_MAXUINT64, 0, RO);
  /**
   * HeartbeatAgentInfo:idle-usec:
   *
   * How long it had been quiet (µs).
   */
  properties[PROP_IDLE_USEC] = g_param_spec_uint64 ("idle-usec", NULL, NULL, 0, G_MAXUINT64, 0, RO);
  /**
   * HeartbeatAgentInfo:beats:
   *
   * Beats since it was (re)registered.
   */
  properties[PROP_BEATS] = g_param_spec_uint64 ("beats", NULL, NULL, 0, G_MAXUINT64, 0, RO);
  /**
   * HeartbeatAgentInfo:stale-after:
   *
   * Its effective stale threshold (µs).
   */
  properties[PROP_STALE_AFTER] = g_param_spec_uint64 ("stale-after", NULL, NULL, 0, G_MAXUINT64, 0, RO);
  /**
   * HeartbeatAgentInfo:timeout-after:
   *
   * Its effective timeout threshold (µs).
   */
  properties[PROP_TIMEOUT_AFTER] = g_param_spec_uint64 ("timeout-after", NULL, NULL, 0, G_MAXUINT64, 0, RO);
  /**
   * HeartbeatAgentInfo:metadata:
   *
   * Its metadata, an `a{sv}`.
   */
  properties[PROP_METADATA] = g_param_spec_variant ("metadata", NULL, NULL, G_VARIANT_TYPE_VARDICT, NULL, RO);
  /**
   * HeartbeatAgentInfo:declared:
   *
   * Whether the configuration declares it.
   */
  properties[PROP_DECLARED] = g_param_spec_boolean ("declared", NULL, NULL, FALSE, RO);
  /**
   * HeartbeatAgentInfo:bound-to:
   *
   * The bus name it is bound to, or "".
   */
  properties[PROP_BOUND_TO] = g_param_spec_string ("bound-to", NULL, NULL, "", RO);
  /**
   * HeartbeatAgentInfo:unit:
   *
   * The systemd unit behind it, an `a{sv}` (empty if none).
   */
  properties[PROP_UNIT] = g_param_spec_variant ("unit", NULL, NULL, G_VARIANT_TYPE_VARDICT, NULL, RO);
  /**
   * HeartbeatAgentInfo:unit-name:
   *
   * The name of its unit, or "".
   */
  properties[PROP_UNIT_NAME] = g_param_spec_string ("unit-name", NULL, NULL, "", RO);
  /**
   * HeartbeatAgentInfo:unit-active-state:
   *
   * Its unit's ActiveState, or "".
   */
  properties[PROP_UNIT_ACTIVE_STATE] = g_param_spec_string ("unit-active-state", NULL, NULL, "", RO);
  /**
   * HeartbeatAgentInfo:unit-sub-state:
   *
   * Its unit's SubState, or "".
   */
  properties[PROP_UNIT_SUB_STATE] = g_param_spec_string ("unit-sub-state", NULL, NULL, "", RO);
  /**
   * HeartbeatAgentInfo:unit-main-pid:
   *
   * Its unit's MainPID, or 0.
   */
  properties[PROP_UNIT_MAIN_PID] = g_param_spec_uint ("unit-main-pid", NULL, NULL, 0, G_MAXUINT32, 0, RO);
  /**
   * HeartbeatAgentInfo:unit-active-since:
   *
   * When its unit became active (wall-clock µs), or 0.
   */
  properties[PROP_UNIT_ACTIVE_SINCE] = g_param_spec_uint64 ("unit-active-since", NULL, NULL, 0, G_MAXUINT64, 0, RO);
  /**
   * HeartbeatAgentInfo:unit-result:
   *
   * Its unit's Result, or "".
   */
  properties[PROP_UNIT_RESULT] = g_param_spec_string ("unit-result", NULL, NULL, "", RO);
  /**
   * HeartbeatAgentInfo:unit-n-restarts:
   *
   * How often systemd restarted its unit.
   */
  properties[PROP_UNIT_N_RESTARTS] = g_param_spec_uint ("unit-n-restarts", NULL, NULL, 0, G_MAXUINT32, 0, RO);
  /**
   * HeartbeatAgentInfo:unit-heartbeatd-restarts:
   *
   * How often heartbeatd had systemd restart its unit (restart-unit=).
   */
  properties[PROP_UNIT_HEARTBEATD_RESTARTS] = g_param_spec_uint ("unit-heartbeatd-restarts", NULL, NULL,
                                                                 0, G_MAXUINT32, 0, RO);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
heartbeat_agent_info_init (HeartbeatAgentInfo *self)
{
  self->dict = empty_dict ();
  self->unit = empty_dict ();
}
