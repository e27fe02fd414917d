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
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (HeartbeatAgentInfo, heartbeat_agent_info, G_TYPE_OBJECT)

static const char *
lookup_string (HeartbeatAgentInfo *self,
               const char         *key)
{
  const char *value = NULL;

  if (!g_variant_lookup (self->dict, key, "&s", &value))
    return "";
  return value;
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
 * Returns: the monitor's judgment: `healthy`, `stale`, `timed-out`,
 *   `error`, `gone` or `no-heartbeat` (treat others like `error`)
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
 * Returns: the unique bus name it is bound to, or ""
 */
const char *
heartbeat_agent_info_get_bound_to (HeartbeatAgentInfo *info)
{
  g_return_val_if_fail (HEARTBEAT_IS_AGENT_INFO (info), NULL);
  return lookup_string (info, "bound-to");
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
        if (dict != NULL && g_variant_is_of_type (dict, G_VARIANT_TYPE_VARDICT))
          self->dict = g_variant_ref_sink (dict);
        else
          self->dict = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0));
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

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
heartbeat_agent_info_init (HeartbeatAgentInfo *self)
{
  self->dict = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0));
}
