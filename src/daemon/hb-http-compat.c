/* hb-http-compat.c: the endpoints of the seeds, in their shapes
 *
 *   POST /heartbeat, POST /event, GET /runs, GET /runs/{id}
 *                                   the local server of 000
 *   GET  /api/heartbeat/status      the gateway endpoint of 004
 *
 * (GET /health, also 000's, is in hb-http-rest.c.)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-http-private.h"

#include <string.h>

/* POST /heartbeat: {"run_id": …, "status"?: …, anything else → metadata}.
 * Everything is checked before a new agent is registered, so a refused
 * request announces nothing. */
void
handle_heartbeat (HbHttp            *self,
                  SoupServerMessage *msg,
                  gboolean           privileged)
{
  static const char *const skip[] = { "run_id", "status", NULL };
  g_autoptr(JsonNode) body = read_object (msg, FALSE);
  g_autoptr(GError) error = NULL;
  g_auto(Beat) beat = { { 0 } };
  JsonObject *object = body ? json_node_get_object (body) : NULL;
  HeartbeatAgentOptions options = { 0 };
  const char *run_id = NULL;
  HeartbeatAgent *agent;
  gboolean created;
  GString *reply;

  if (object == NULL || !get_optional_string (msg, object, "run_id", &run_id))
    return;
  if (run_id == NULL)
    {
      send_error (msg, SOUP_STATUS_BAD_REQUEST, "“run_id” is missing");
      return;
    }
  if (!read_beat (msg, object, skip, TRUE, &beat))
    return;

  /* a new agent starts with the metadata; its first beat sets the status */
  if (g_variant_n_children (beat.metadata) > 0)
    options.metadata = beat.metadata;
  agent = upsert (self, msg, run_id, &options, privileged, FALSE, &created);
  if (agent == NULL)
    return;
  if (created)
    beat.details.metadata = NULL;
  if (!heartbeat_monitor_beat (self->monitor, run_id, &beat.details, &error))
    {
      /* not expected (it was all checked): take back a registration of ours */
      if (created)
        heartbeat_monitor_unregister (self->monitor, run_id, NULL);
      send_monitor_error (msg, error);
      return;
    }

  /* {"ok", "run_id", "state", "registered"}, written as text: a
   * JsonBuilder tree cost a beat a tenth of its time */
  agent = heartbeat_monitor_lookup (self->monitor, run_id);
  reply = g_string_sized_new (128);
  g_string_append (reply, "{\"ok\":true,\"run_id\":");
  append_string (reply, run_id);
  g_string_append (reply, ",\"state\":");
  append_string (reply, heartbeat_agent_state_to_string (heartbeat_agent_get_state (agent)));
  g_string_append (reply, created ? ",\"registered\":true}" : ",\"registered\":false}");
  send_json_text (msg, SOUP_STATUS_OK, reply);
}

/* POST /event: any object; "type" (or "event") names it. */
void
handle_event (HbHttp            *self,
              SoupServerMessage *msg,
              gboolean           privileged)
{
  g_autoptr(GVariant) data = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(JsonNode) body = read_object (msg, FALSE);
  JsonObject *object = body ? json_node_get_object (body) : NULL;
  const char *type = NULL;

  if (object == NULL || !get_optional_string (msg, object, "type", &type))
    return;
  if (type == NULL && !get_optional_string (msg, object, "event", &type))
    return;
  data = read_metadata (msg, object, NULL, NULL);
  if (data == NULL)
    return;
  if (!heartbeat_monitor_post_event (self->monitor, type ? type : "event", data, &error))
    {
      send_monitor_error (msg, error);
      return;
    }
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "ok");
  json_builder_add_boolean_value (b, TRUE);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  send_json (msg, SOUP_STATUS_ACCEPTED, root);
}

static char *
iso8601 (gint64 realtime_usec)
{
  g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc (realtime_usec / G_USEC_PER_SEC);
  g_autoptr(GDateTime) precise = t ? g_date_time_add (t, realtime_usec % G_USEC_PER_SEC) : NULL;

  return precise ? g_date_time_format (precise, "%Y-%m-%dT%H:%M:%S.%fZ") : g_strdup ("");
}

/* GET /runs: id → {state, status, last_activity, progress} */
void
handle_runs (HbHttp            *self,
             SoupServerMessage *msg,
             gboolean           privileged)
{
  g_autoptr(GPtrArray) agents = heartbeat_monitor_list_agents (self->monitor);
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (b);
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);
      g_autofree char *last = iso8601 (heartbeat_monitor_to_realtime (self->monitor,
                                                                      heartbeat_agent_get_last_activity_at (agent)));
      double progress;

      json_builder_set_member_name (b, heartbeat_agent_get_id (agent));
      json_builder_begin_object (b);
      add_member_string (b, "state", heartbeat_agent_state_to_string (heartbeat_agent_get_state (agent)));
      add_member_string (b, "status", heartbeat_agent_get_status (agent));
      add_member_string (b, "last_activity", last);
      json_builder_set_member_name (b, "progress");
      if (heartbeat_agent_get_progress (agent, &progress))
        json_builder_add_double_value (b, progress);
      else
        json_builder_add_null_value (b);
      json_builder_end_object (b);
    }
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  send_json (msg, SOUP_STATUS_OK, root);
}

/* GET /runs/{id}: the heartbeat (the agent) and a summary */
void
handle_run (HbHttp            *self,
            SoupServerMessage *msg,
            const char        *id)
{
  HeartbeatAgent *agent = heartbeat_monitor_lookup (self->monitor, id);
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  gint64 now;

  if (agent == NULL)
    {
      send_error (msg, SOUP_STATUS_NOT_FOUND, "No run with id “%s”", id);
      return;
    }
  now = heartbeat_monitor_get_time (self->monitor);
  json_builder_begin_object (b);
  add_member_string (b, "run_id", id);
  json_builder_set_member_name (b, "heartbeat");
  json_builder_add_value (b, agent_to_json (self, agent));
  json_builder_set_member_name (b, "summary");
  json_builder_begin_object (b);
  add_member_string (b, "state", heartbeat_agent_state_to_string (heartbeat_agent_get_state (agent)));
  add_member_int (b, "beats", (gint64) MIN (heartbeat_agent_get_beats (agent), (guint64) G_MAXINT64));
  add_member_int (b, "running_ms", MAX (heartbeat_agent_get_running_usec (agent, now), 0) / 1000);
  add_member_int (b, "idle_ms", MAX (heartbeat_agent_get_idle_usec (agent, now), 0) / 1000);
  json_builder_end_object (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  send_json (msg, SOUP_STATUS_OK, root);
}

/* Whether 004's monitor would still track @agent: its in-flight list
 * dropped an agent that timed out (and knew no other end); timed-out and
 * gone agents now stay listed for a while (retention), but not there. */
static gboolean
is_in_flight (HeartbeatAgent *agent)
{
  HeartbeatAgentState state = heartbeat_agent_get_state (agent);

  return state != HEARTBEAT_AGENT_STATE_TIMED_OUT && state != HEARTBEAT_AGENT_STATE_GONE;
}

/* GET /api/heartbeat/status: exactly the shape of 004's gateway, whose
 * "monitor" (get_status()) and "in_flight_agents" (get_in_flight_agents())
 * both hold the agents it tracks: timed-out and gone ones are left out of
 * both (and of agents_monitoring). /runs, /runs/{id} and /health keep them:
 * 000's server lists every run it knows, with its state. */
void
handle_gateway_status (HbHttp            *self,
                       SoupServerMessage *msg,
                       gboolean           privileged)
{
  g_autoptr(GPtrArray) all = heartbeat_monitor_list_agents (self->monitor);
  g_autoptr(GPtrArray) agents = g_ptr_array_sized_new (all->len);   /* borrowed from @all */
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GDateTime) utc = g_date_time_new_now_utc ();
  g_autofree char *timestamp = g_date_time_format (utc, "%Y-%m-%dT%H:%M:%S.%fZ");
  gboolean running = heartbeat_monitor_get_running (self->monitor);
  gint64 now = heartbeat_monitor_get_time (self->monitor);

  for (guint i = 0; i < all->len; i++)
    if (is_in_flight (g_ptr_array_index (all, i)))
      g_ptr_array_add (agents, g_ptr_array_index (all, i));

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "success");
  json_builder_add_boolean_value (b, TRUE);
  add_member_string (b, "status", running ? "online" : "offline");
  json_builder_set_member_name (b, "monitor");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "running");
  json_builder_add_boolean_value (b, running);
  add_member_int (b, "agents_monitoring", agents->len);
  json_builder_set_member_name (b, "agents");
  json_builder_begin_array (b);
  for (guint i = 0; i < agents->len; i++)
    json_builder_add_string_value (b, heartbeat_agent_get_id (g_ptr_array_index (agents, i)));
  json_builder_end_array (b);
  json_builder_set_member_name (b, "config");
  json_builder_begin_object (b);
  add_member_int (b, "check_interval_ms", heartbeat_monitor_get_check_interval (self->monitor) / 1000);
  add_member_int (b, "stale_threshold_ms", heartbeat_monitor_get_stale_threshold (self->monitor) / 1000);
  add_member_int (b, "timeout_threshold_ms", heartbeat_monitor_get_timeout_threshold (self->monitor) / 1000);
  json_builder_end_object (b);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "in_flight_agents");
  json_builder_begin_array (b);
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);
      const char *task = heartbeat_agent_get_task_id (agent);

      json_builder_begin_object (b);
      add_member_string (b, "agent_id", heartbeat_agent_get_id (agent));
      json_builder_set_member_name (b, "task_id");
      if (task)
        json_builder_add_string_value (b, task);
      else
        json_builder_add_null_value (b);
      add_member_string (b, "status", heartbeat_agent_get_status (agent));
      add_member_int (b, "running_for_ms", MAX (heartbeat_agent_get_running_usec (agent, now), 0) / 1000);
      add_member_int (b, "idle_for_ms", MAX (heartbeat_agent_get_idle_usec (agent, now), 0) / 1000);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  /* the seed's isoformat() + "Z": microseconds, no offset */
  add_member_string (b, "timestamp", timestamp);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  send_json (msg, SOUP_STATUS_OK, root);
}

