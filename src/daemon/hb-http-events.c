/* hb-http-events.c: GET /v1/events, Server-Sent Events
 *
 * The monitor's signals become events broadcast to every stream; streams
 * are bounded in number (in all and per peer) and in what each may have
 * waiting, and kept alive with a comment every KEEPALIVE_SECONDS. The
 * handlers only broadcast: the counters of /metrics are the monitor's.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-http-private.h"

#include <string.h>

#include "hb-json.h"

#define MAX_EVENT_CLIENTS   HB_HTTP_MAX_EVENT_STREAMS
#define MAX_EVENT_CLIENTS_PER_PEER HB_HTTP_MAX_EVENT_STREAMS_PER_PEER
#define EVENT_RETRY_AFTER   "5"
#define MAX_CLIENT_BACKLOG  HB_HTTP_EVENT_BACKLOG
#define KEEPALIVE_SECONDS   15

typedef struct {
  HbHttp            *http;
  SoupServerMessage *msg;
  char              *peer;      /* the remote address, as text */
  gsize              backlog;   /* appended, not yet written */
} EventClient;

static void
client_send (EventClient *client,
             const char  *text)
{
  gsize length = strlen (text);

  if (client->backlog + length > MAX_CLIENT_BACKLOG)
    {
      /* too slow: end its stream (it may reconnect and re-read the list) */
      g_debug ("Ending the event stream of a client %zu bytes behind", client->backlog);
      soup_message_body_complete (soup_server_message_get_response_body (client->msg));
      soup_server_message_unpause (client->msg);
      return;
    }
  client->backlog += length;
  soup_message_body_append (soup_server_message_get_response_body (client->msg), SOUP_MEMORY_COPY, text, length);
  soup_server_message_unpause (client->msg);
}

static void
broadcast (HbHttp     *self,
           const char *event,
           JsonNode   *data)
{
  g_autofree char *json = NULL;
  g_autofree char *text = NULL;

  if (self->clients == NULL)
    return;
  json = json_to_data (data, NULL);
  text = g_strdup_printf ("id: %" G_GUINT64_FORMAT "\nevent: %s\ndata: %s\n\n", ++self->sequence, event, json);
  for (GList *l = self->clients; l; l = l->next)
    client_send (l->data, text);
}

/* An agent event: {"id", "time-usec", "agent", extra…} */
static void
broadcast_agent (HbHttp         *self,
                 const char     *event,
                 HeartbeatAgent *agent,
                 gboolean        removed,
                 const char     *key,
                 const char     *string_value,
                 const char     *key2,
                 const char     *string_value2,
                 const char     *usec_key,
                 gint64          usec)
{
  g_autoptr(JsonBuilder) b = NULL;
  g_autoptr(JsonNode) root = NULL;

  if (self->clients == NULL)
    return;
  b = json_builder_new ();
  json_builder_begin_object (b);
  add_member_string (b, "id", heartbeat_agent_get_id (agent));
  add_member_int (b, "time-usec", g_get_real_time ());
  json_builder_set_member_name (b, "agent");
  if (removed)
    json_builder_add_null_value (b);
  else
    json_builder_add_value (b, agent_to_json (self, agent));
  if (key)
    add_member_string (b, key, string_value);
  if (key2)
    add_member_string (b, key2, string_value2);
  if (usec_key)
    add_member_int (b, usec_key, usec);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  broadcast (self, event, root);
}

static void
on_registered (HeartbeatMonitor *monitor, HeartbeatAgent *agent, HbHttp *self)
{
  broadcast_agent (self, "registered", agent, FALSE, NULL, NULL, NULL, NULL, NULL, 0);
}

static void
on_unregistered (HeartbeatMonitor *monitor, HeartbeatAgent *agent,
                 HeartbeatUnregisterReason reason, HbHttp *self)
{
  broadcast_agent (self, "unregistered", agent, TRUE, "reason",
                   heartbeat_unregister_reason_to_string (reason), NULL, NULL, NULL, 0);
}

static void
on_stale (HeartbeatMonitor *monitor, HeartbeatAgent *agent, gint64 idle, HbHttp *self)
{
  broadcast_agent (self, "stale", agent, FALSE, NULL, NULL, NULL, NULL, "idle-usec", idle);
}

static void
on_timed_out (HeartbeatMonitor *monitor, HeartbeatAgent *agent, gint64 running, HbHttp *self)
{
  broadcast_agent (self, "timed-out", agent, FALSE, NULL, NULL, NULL, NULL, "running-usec", running);
}

static void
on_recovered (HeartbeatMonitor *monitor, HeartbeatAgent *agent, HbHttp *self)
{
  broadcast_agent (self, "recovered", agent, FALSE, NULL, NULL, NULL, NULL, NULL, 0);
}

static void
on_state_changed (HeartbeatMonitor *monitor, HeartbeatAgent *agent,
                  HeartbeatAgentState old_state, HeartbeatAgentState new_state, HbHttp *self)
{
  broadcast_agent (self, "state", agent, FALSE, "old-state", heartbeat_agent_state_to_string (old_state),
                   "new-state", heartbeat_agent_state_to_string (new_state), NULL, 0);
}

static void
on_beat (HeartbeatMonitor *monitor, HeartbeatAgent *agent, HbHttp *self)
{
  broadcast_agent (self, "beat", agent, FALSE, NULL, NULL, NULL, NULL, NULL, 0);
}

static void
on_event_posted (HeartbeatMonitor *monitor, const char *type, GVariant *data, HbHttp *self)
{
  g_autoptr(JsonBuilder) b = NULL;
  g_autoptr(JsonNode) root = NULL;

  if (self->clients == NULL)
    return;
  b = json_builder_new ();
  json_builder_begin_object (b);
  add_member_string (b, "type", type);
  add_member_int (b, "time-usec", g_get_real_time ());
  json_builder_set_member_name (b, "data");
  json_builder_add_value (b, hb_json_from_variant (data));
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  broadcast (self, "event", root);
}

/* The monitor's signals are watched only while a stream is open: a beat
 * with nobody to tell costs no handler (an emission with one costs every
 * beat a closure call). */
static void
watch_monitor (HbHttp *self)
{
  HeartbeatMonitor *monitor = self->monitor;

  g_signal_connect (monitor, "agent-registered", G_CALLBACK (on_registered), self);
  g_signal_connect (monitor, "agent-unregistered", G_CALLBACK (on_unregistered), self);
  g_signal_connect (monitor, "agent-stale", G_CALLBACK (on_stale), self);
  g_signal_connect (monitor, "agent-timed-out", G_CALLBACK (on_timed_out), self);
  g_signal_connect (monitor, "agent-recovered", G_CALLBACK (on_recovered), self);
  g_signal_connect (monitor, "agent-state-changed", G_CALLBACK (on_state_changed), self);
  g_signal_connect (monitor, "agent-beat", G_CALLBACK (on_beat), self);
  g_signal_connect (monitor, "event-posted", G_CALLBACK (on_event_posted), self);
}

static void
on_client_wrote (SoupServerMessage *msg, guint size, EventClient *client)
{
  client->backlog -= MIN (client->backlog, size);
}

static void
on_client_finished (SoupServerMessage *msg, EventClient *client)
{
  HbHttp *self = client->http;

  g_signal_handlers_disconnect_by_data (msg, client);
  self->clients = g_list_remove (self->clients, client);
  self->n_clients--;
  /* an idle daemon does not wake up, nor a beat call a handler, for nobody */
  if (self->n_clients == 0)
    {
      g_clear_handle_id (&self->keepalive_id, g_source_remove);
      g_signal_handlers_disconnect_by_data (self->monitor, self);
    }
  g_object_unref (client->msg);
  g_free (client->peer);
  g_free (client);
}

static gboolean
on_keepalive (gpointer user_data)
{
  HbHttp *self = user_data;

  for (GList *l = self->clients; l; l = l->next)
    client_send (l->data, ": keep-alive\n\n");
  return G_SOURCE_CONTINUE;
}

/* Whose stream @msg opens: the peer its connection was counted for. */
static char *
event_peer (HbHttp            *self,
            SoupServerMessage *msg)
{
  GSocket *socket = soup_server_message_get_socket (msg);
  const char *peer = socket ? hb_http_conn_peer (self, socket) : NULL;

  return peer ? g_strdup (peer) : socket ? socket_peer (socket) : g_strdup ("an unknown address");
}

/* GET /v1/events. At most MAX_EVENT_CLIENTS streams, and at most
 * MAX_EVENT_CLIENTS_PER_PEER for one peer (event_peer(): a local uid, or
 * a remote address), so that one local user's streams do not lock out
 * another's dashboard. */
void
handle_events (HbHttp            *self,
               SoupServerMessage *msg,
               gboolean           privileged)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  g_autofree char *peer = event_peer (self, msg);
  EventClient *client;
  guint from_peer = 0;

  for (GList *l = self->clients; l; l = l->next)
    if (g_strcmp0 (((EventClient *) l->data)->peer, peer) == 0)
      from_peer++;
  if (self->n_clients >= MAX_EVENT_CLIENTS || from_peer >= MAX_EVENT_CLIENTS_PER_PEER)
    {
      soup_message_headers_replace (headers, "Retry-After", EVENT_RETRY_AFTER);
      if (self->n_clients >= MAX_EVENT_CLIENTS)
        send_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "Too many event clients (at most %d)", MAX_EVENT_CLIENTS);
      else
        send_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
                    "Too many event clients from %s (at most %d per local user, or per address)",
                    peer, MAX_EVENT_CLIENTS_PER_PEER);
      return;
    }
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_set_content_type (headers, "text/event-stream", NULL);
  soup_message_headers_replace (headers, "Cache-Control", "no-cache");
  if (strcmp (soup_server_message_get_method (msg), "HEAD") == 0)
    return;   /* the headers of a stream, and no stream */
  soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
  /* what was written is dropped, not kept for the whole life of the stream */
  soup_message_body_set_accumulate (soup_server_message_get_response_body (msg), FALSE);
  g_object_set_qdata (G_OBJECT (msg), stream_quark (), GINT_TO_POINTER (1));

  client = g_new0 (EventClient, 1);
  client->http = self;
  client->msg = g_object_ref (msg);
  client->peer = g_steal_pointer (&peer);
  self->clients = g_list_append (self->clients, client);
  if (self->n_clients++ == 0)
    watch_monitor (self);
  if (self->keepalive_id == 0)
    self->keepalive_id = g_timeout_add_seconds (KEEPALIVE_SECONDS, on_keepalive, self);
  g_signal_connect (msg, "wrote-body-data", G_CALLBACK (on_client_wrote), client);
  g_signal_connect (msg, "finished", G_CALLBACK (on_client_finished), client);
  client_send (client, "retry: 2000\n\n");
}

/* Ends every stream. */
void
hb_http_events_dispose (HbHttp *self)
{
  g_clear_handle_id (&self->keepalive_id, g_source_remove);
  while (self->clients)
    {
      EventClient *client = self->clients->data;

      soup_message_body_complete (soup_server_message_get_response_body (client->msg));
      on_client_finished (client->msg, client);
    }
}
