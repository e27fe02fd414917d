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

#include "hb-json.h"
#include "heartbeat-values.h"

static const char *const heartbeat_skip[] = { "run_id", "status", NULL };

/* Appends @text of @length bytes at @p; returns what follows it */
static inline char *
put (char       *p,
     const char *text,
     gsize       length)
{
  memcpy (p, text, length);
  return p + length;
}

#define PUT_LITERAL(p, literal) put ((p), (literal), sizeof (literal) - 1)

/* The answer to a beat, {"ok", "run_id", "state", "registered"}, written
 * as text: a JsonBuilder tree cost a beat a tenth of its time. */
static void
send_beat_answer (SoupServerMessage *msg,
                  const char        *run_id,
                  HeartbeatAgent    *agent,
                  gboolean           created)
{
  GString *reply = g_string_sized_new (128);

  g_string_append (reply, "{\"ok\":true,\"run_id\":");
  append_string (reply, run_id);
  g_string_append (reply, ",\"state\":");
  append_string (reply, heartbeat_agent_state_to_string (heartbeat_agent_get_state (agent)));
  g_string_append (reply, created ? ",\"registered\":true}" : ",\"registered\":false}");
  send_json_text (msg, SOUP_STATUS_OK, reply);
}

/* POST /heartbeat of an agent HTTP may beat, in a small flat body (the
 * usual beat): the body is read once, without json-glib
 * (hb_json_read_flat()), and the beat made from it. Answers and returns
 * TRUE only for a beat the monitor took; anything else (a body it does
 * not read, an unknown agent, a value the monitor refuses) returns FALSE
 * with nothing sent and nothing changed, and handle_heartbeat() then
 * reads the request as it reads any, refusing it in its own words. */
static gboolean
beat_known_agent (HbHttp            *self,
                  SoupServerMessage *msg,
                  gboolean           privileged)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  const char *content_type;
  HbJsonFlatMember members[HB_JSON_FLAT_MAX_MEMBERS];
  char text[HB_JSON_FLAT_MAX_TEXT];
  const HbJsonFlatMember *run_id = NULL, *status = NULL;
  HeartbeatBeatDetails details = { 0 };
  g_autoptr(GVariant) metadata = NULL;
  g_autoptr(GBytes) bytes = NULL;
  HeartbeatAgent *agent;
  const char *state;
  char *answer, *p;
  gsize length;
  gint n;

  /* (a body longer than it was refused before it was read) */
  if (body->length < 0 || (gsize) body->length > sizeof text)
    return FALSE;
  content_type = soup_message_headers_get_content_type (soup_server_message_get_request_headers (msg), NULL);
  if (content_type == NULL || g_ascii_strcasecmp (content_type, "application/json") != 0)
    return FALSE;
  bytes = soup_message_body_flatten (body);
  length = g_bytes_get_size (bytes);
  if (length > sizeof text)
    return FALSE;
  if (length > 0)
    memcpy (text, g_bytes_get_data (bytes, NULL), length);
  n = hb_json_read_flat (text, length, members, G_N_ELEMENTS (members));
  for (gint i = 0; i < n; i++)
    {
      if (strcmp (members[i].name, "run_id") == 0)
        run_id = &members[i];
      else if (strcmp (members[i].name, "status") == 0)
        status = &members[i];
    }
  if (run_id == NULL || run_id->kind != HB_JSON_FLAT_STRING ||
      (status != NULL && (status->kind != HB_JSON_FLAT_STRING ||
                          heartbeat_text_check (status->string, status->length,
                                                HEARTBEAT_STATUS_MAX_LENGTH) != HEARTBEAT_TEXT_OK)))
    return FALSE;

  /* upsert()'s checks of an agent that exists: a valid id (an agent
   * found has one), HTTP may change it */
  agent = heartbeat_monitor_lookup (self->monitor, run_id->string);
  if (agent == NULL ||
      (!privileged && heartbeat_agent_get_owner_uid (agent) != HB_HTTP_OWNER_UID))
    return FALSE;

  /* A beat that repeats what the agent's metadata holds, in the order a
   * merge leaves it, gives none: the monitor's merge would leave the
   * metadata as it is (it keeps the same value), and neither the
   * dictionary nor its check nor the merge is made. Else the metadata is
   * checked once, by the monitor (it is valid by construction: what the
   * reader takes is small and has no null). A beat the monitor refuses
   * changes nothing. */
  if (!hb_json_flat_in_vardict (members, (guint) n, heartbeat_skip, heartbeat_agent_get_metadata (agent)))
    metadata = hb_json_flat_to_vardict (members, (guint) n, heartbeat_skip);
  details.status = status ? status->string : NULL;
  details.metadata = metadata;
  if (!heartbeat_monitor_beat (self->monitor, run_id->string, &details, NULL))
    return FALSE;

  /* send_beat_answer()'s answer, without a GString; the agent is looked
   * up again, as there (a handler of the beat may have dropped it) */
  agent = heartbeat_monitor_lookup (self->monitor, run_id->string);
  state = heartbeat_agent_state_to_string (agent ? heartbeat_agent_get_state (agent) : HEARTBEAT_AGENT_STATE_GONE);
  answer = g_malloc (64 + run_id->length + strlen (state));
  p = PUT_LITERAL (answer, "{\"ok\":true,\"run_id\":\"");
  /* an id is [A-Za-z0-9._:@-], a state a nick: nothing to escape */
  p = put (p, run_id->string, run_id->length);
  p = PUT_LITERAL (p, "\",\"state\":\"");
  p = put (p, state, strlen (state));
  p = PUT_LITERAL (p, "\",\"registered\":false}");
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, answer, (gsize) (p - answer));
  return TRUE;
}

/* POST /heartbeat: {"run_id": …, "status"?: …, anything else → metadata}.
 * Everything is checked before a new agent is registered, so a refused
 * request announces nothing. A beat of an agent that exists, in a flat
 * body, takes a shorter way (beat_known_agent()) to the same end. */
void
handle_heartbeat (HbHttp            *self,
                  SoupServerMessage *msg,
                  gboolean           privileged)
{
  g_autoptr(JsonNode) body = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(Beat) beat = { { 0 } };
  JsonObject *object;
  HeartbeatAgentOptions options = { 0 };
  const char *run_id = NULL;
  HeartbeatAgent *agent;
  gboolean created;

  if (beat_known_agent (self, msg, privileged))
    return;
  body = read_object (msg, FALSE);
  object = body ? json_node_get_object (body) : NULL;
  if (object == NULL || !get_optional_string (msg, object, "run_id", &run_id))
    return;
  if (run_id == NULL)
    {
      send_error (msg, SOUP_STATUS_BAD_REQUEST, "“run_id” is missing");
      return;
    }
  if (!read_beat (msg, object, heartbeat_skip, TRUE, &beat))
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

  agent = heartbeat_monitor_lookup (self->monitor, run_id);
  send_beat_answer (msg, run_id, agent, created);
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

