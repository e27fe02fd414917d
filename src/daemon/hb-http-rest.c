/* hb-http-rest.c: the REST endpoints, /health and the dashboard
 *
 *   GET  /v1/agents, GET|PUT|DELETE /v1/agents/{id},
 *   POST /v1/agents/{id}/beat, /v1/agents/{id}/idle,
 *        /v1/agents/{id}/pause, /v1/agents/{id}/resume
 *   GET  /v1/history (in pages, below the priority of D-Bus calls),
 *        /v1/agents/{id}/history
 *   GET  /v1/host                   the daemon's machine
 *   GET  /health                    (the shape of 000's)
 *   GET  /                          the dashboard (from the GResource)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-http-private.h"

#include <string.h>

#include "hb-host.h"
#include "hb-resources.h"
#include "heartbeat-values.h"

#define DASHBOARD_RESOURCE  "/org/heartbeat/Monitor1/dashboard/index.html"

/* ------------------------------------------------------------------ */
/* Writes                                                              */

/* The member @name of @object as a NULL-terminated vector of strings
 * (*@value NULL when absent or null): FALSE with a 400 sent when it is not
 * an array of strings, or has more than @max of them. */
static gboolean
get_optional_strv (SoupServerMessage *msg,
                   JsonObject        *object,
                   const char        *name,
                   guint              max,
                   GStrv             *value)
{
  JsonNode *node = json_object_get_member (object, name);
  g_autoptr(GPtrArray) strings = NULL;
  JsonArray *array;
  guint n;

  *value = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      send_error (msg, SOUP_STATUS_BAD_REQUEST, "“%s” must be an array of strings", name);
      return FALSE;
    }
  array = json_node_get_array (node);
  n = json_array_get_length (array);
  if (n > max)
    {
      send_error (msg, SOUP_STATUS_BAD_REQUEST, "“%s” may hold at most %u strings, not %u", name, max, n);
      return FALSE;
    }
  strings = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < n; i++)
    {
      JsonNode *element = json_array_get_element (array, i);

      if (!JSON_NODE_HOLDS_VALUE (element) || json_node_get_value_type (element) != G_TYPE_STRING)
        {
          send_error (msg, SOUP_STATUS_BAD_REQUEST, "“%s” must be an array of strings (element %u is not)",
                      name, i);
          return FALSE;
        }
      g_ptr_array_add (strings, g_strdup (json_node_get_string (element)));
    }
  g_ptr_array_add (strings, NULL);
  *value = (GStrv) g_ptr_array_free (g_steal_pointer (&strings), FALSE);
  return TRUE;
}

/* FALSE with a 400 sent if @object has a member not in @known (a
 * NULL-terminated list, which the message names). */
static gboolean
only_known_members (SoupServerMessage  *msg,
                    JsonObject         *object,
                    const char *const  *known)
{
  g_autoptr(GList) members = json_object_get_members (object);

  for (GList *l = members; l; l = l->next)
    if (!g_strv_contains (known, l->data))
      {
        g_autofree char *list = g_strjoinv (", ", (GStrv) known);

        send_error (msg, SOUP_STATUS_BAD_REQUEST, "Unknown member “%s” (known: %s)",
                    (const char *) l->data, *known ? list : "none");
        return FALSE;
      }
  return TRUE;
}

/* PUT /v1/agents/{id} */
void
handle_put_agent (HbHttp            *self,
                  SoupServerMessage *msg,
                  const char        *id,
                  gboolean           privileged)
{
  g_autoptr(GVariant) metadata = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(JsonNode) body = read_object (msg, TRUE);
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) tags = NULL;
  JsonObject *object = body ? json_node_get_object (body) : NULL;
  HeartbeatAgentOptions options = { 0 };
  HeartbeatAgent *agent;
  gboolean created;
  static const char *const known[] = { "task-id", "stale-after-usec", "timeout-after-usec", "metadata",
                                       "tags", NULL };

  if (object == NULL || !only_known_members (msg, object, known))
    return;
  if (!get_optional_string (msg, object, "task-id", &options.task_id) ||
      !get_optional_usec (msg, object, "stale-after-usec", &options.stale_after_usec) ||
      !get_optional_usec (msg, object, "timeout-after-usec", &options.timeout_after_usec) ||
      !get_optional_strv (msg, object, "tags", HEARTBEAT_TAGS_MAX, &tags))
    return;
  if (tags && !heartbeat_tags_validate ((const char *const *) tags, &error))
    {
      send_error (msg, SOUP_STATUS_BAD_REQUEST, "“tags”: %s", error->message);
      return;
    }
  options.tags = (const char *const *) tags;
  if (json_object_has_member (object, "metadata"))
    {
      JsonNode *m = json_object_get_member (object, "metadata");

      if (!JSON_NODE_HOLDS_OBJECT (m))
        {
          send_error (msg, SOUP_STATUS_BAD_REQUEST, "“metadata” must be an object");
          return;
        }
      metadata = read_metadata (msg, json_node_get_object (m), NULL, "“metadata”: ");
      if (metadata == NULL)
        return;
      options.metadata = metadata;
    }

  agent = upsert (self, msg, id, &options, privileged, TRUE, &created);
  if (agent == NULL)
    return;
  node = agent_to_json (self, agent);
  send_json (msg, created ? SOUP_STATUS_CREATED : SOUP_STATUS_OK, node);
}

/* POST …/pause: the body's reason (optional), as the monitor takes it.
 * FALSE with a 400 sent if the body is not {} or {"reason": "…"}. */
static gboolean
read_pause (SoupServerMessage *msg,
            char             **reason)
{
  static const char *const known[] = { "reason", NULL };
  g_autoptr(JsonNode) body = read_object (msg, TRUE);
  g_autoptr(GError) error = NULL;
  JsonObject *object = body ? json_node_get_object (body) : NULL;
  const char *text = NULL;

  *reason = NULL;
  if (object == NULL || !only_known_members (msg, object, known) ||
      !get_optional_string (msg, object, "reason", &text))
    return FALSE;
  if (text && *text == '\0')
    text = NULL;     /* empty: none */
  if (!heartbeat_text_is_valid (text, HEARTBEAT_PAUSE_REASON_MAX_LENGTH, "“reason”", &error))
    {
      send_error (msg, SOUP_STATUS_BAD_REQUEST, "%s", error->message);
      return FALSE;
    }
  *reason = g_strdup (text);
  return TRUE;
}

/* DELETE /v1/agents/{id}, POST …/beat, …/idle, …/pause, …/resume */
void
handle_agent_change (HbHttp            *self,
                     SoupServerMessage *msg,
                     const char        *id,
                     const char        *action,
                     gboolean           privileged)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = NULL;
  HeartbeatAgent *agent;

  if (!heartbeat_id_is_valid (id, &error))
    {
      send_error (msg, SOUP_STATUS_BAD_REQUEST, "%s", error->message);
      return;
    }
  agent = heartbeat_monitor_lookup (self->monitor, id);
  if (agent == NULL)
    {
      send_error (msg, SOUP_STATUS_NOT_FOUND, "No agent with id “%s”", id);
      return;
    }
  if (!may_change (msg, agent, privileged))
    return;

  if (strcmp (action, "delete") == 0)
    {
      if (!heartbeat_monitor_unregister (self->monitor, id, &error))
        {
          send_monitor_error (msg, error);
          return;
        }
      mark_caller_change (msg);
      soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
      return;
    }
  if (strcmp (action, "idle") == 0)
    {
      if (!heartbeat_monitor_mark_idle (self->monitor, id, &error))
        {
          send_monitor_error (msg, error);
          return;
        }
      mark_caller_change (msg);
    }
  else if (strcmp (action, "pause") == 0)
    {
      g_autofree char *reason = NULL;

      if (!read_pause (msg, &reason))
        return;
      if (!heartbeat_monitor_pause (self->monitor, id, reason, (guint32) HB_HTTP_OWNER_UID, &error))
        {
          send_monitor_error (msg, error);
          return;
        }
      mark_caller_change (msg);
    }
  else if (strcmp (action, "resume") == 0)
    {
      static const char *const none[] = { NULL };
      g_autoptr(JsonNode) body = read_object (msg, TRUE);

      if (body == NULL || !only_known_members (msg, json_node_get_object (body), none))
        return;
      if (!heartbeat_monitor_resume (self->monitor, id, &error))
        {
          send_monitor_error (msg, error);
          return;
        }
      mark_caller_change (msg);
    }
  else
    {
      g_autoptr(JsonNode) body = read_object (msg, TRUE);
      g_auto(Beat) beat = { { 0 } };

      if (body == NULL || !read_beat (msg, json_node_get_object (body), NULL, FALSE, &beat))
        return;
      if (!heartbeat_monitor_beat (self->monitor, id, &beat.details, &error))
        {
          send_monitor_error (msg, error);
          return;
        }
    }
  agent = heartbeat_monitor_lookup (self->monitor, id);
  node = agent_to_json (self, agent);
  send_json (msg, SOUP_STATUS_OK, node);
}

/* ------------------------------------------------------------------ */
/* Reads                                                               */

/* The ?limit=N&after=ID of a listing given in pages (GET /v1/agents,
 * /v1/history), from @params (the decoded query, or NULL): N from 1 to
 * HB_HTTP_AGENTS_PAGE_MAX (HB_HTTP_AGENTS_PAGE_DEFAULT without one), ID
 * a valid agent id or NULL. FALSE with a 400 sent if either is wrong. */
static gboolean
read_page_query (SoupServerMessage *msg,
                 GHashTable        *params,
                 guint64           *limit,
                 const char       **after)
{
  const char *limit_text = params ? g_hash_table_lookup (params, "limit") : NULL;
  g_autoptr(GError) error = NULL;

  *limit = HB_HTTP_AGENTS_PAGE_DEFAULT;
  *after = params ? g_hash_table_lookup (params, "after") : NULL;
  if (limit_text && !g_ascii_string_to_unsigned (limit_text, 10, 1, HB_HTTP_AGENTS_PAGE_MAX, limit, NULL))
    {
      send_error (msg, SOUP_STATUS_BAD_REQUEST, "“limit” must be a whole number from 1 to %d, not “%s”",
                  HB_HTTP_AGENTS_PAGE_MAX, limit_text);
      return FALSE;
    }
  if (*after && !heartbeat_id_is_valid (*after, &error))
    {
      send_error (msg, SOUP_STATUS_BAD_REQUEST, "“after” must be an agent id: %s", error->message);
      return FALSE;
    }
  return TRUE;
}

/* Every agent, by id (strcmp order: heartbeat_monitor_list_agents()
 * sorts them); *@first: the index of the first one after @after (every
 * one if NULL), found by bisection. */
static GPtrArray *
agents_after (HbHttp     *self,
              const char *after,
              guint      *first)
{
  GPtrArray *agents = heartbeat_monitor_list_agents (self->monitor);
  guint lo = 0, hi = agents->len;

  while (after && lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;

      if (strcmp (heartbeat_agent_get_id (g_ptr_array_index (agents, mid)), after) <= 0)
        lo = mid + 1;
      else
        hi = mid;
    }
  *first = lo;
  return agents;
}

/* `Link: <@path?after=@last&limit=@limit>; rel="next"`, @last
 * percent-encoded */
static void
set_next_link (SoupServerMessage *msg,
               const char        *path,
               const char        *last,
               guint64            limit)
{
  g_autofree char *escaped = g_uri_escape_string (last, NULL, FALSE);
  g_autofree char *link = g_strdup_printf ("<%s?after=%s&limit=%" G_GUINT64_FORMAT ">; rel=\"next\"",
                                           path, escaped, limit);

  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Link", link);
}

/* GET /v1/agents[?limit=N][&after=ID]: a page of the agents, by id
 * (strcmp order), those after ID if given: at most N of them (default
 * HB_HTTP_AGENTS_PAGE_DEFAULT, at most HB_HTTP_AGENTS_PAGE_MAX), and no
 * more once the page holds HB_HTTP_PAGE_BYTES of JSON. When more follow,
 * `Link: </v1/agents?after=LAST&limit=N>; rel="next"` (LAST percent-encoded)
 * says where the next page starts; without a Link the list is complete. */
void
handle_agents (HbHttp            *self,
               SoupServerMessage *msg,
               gboolean           privileged)
{
  const char *query = g_uri_get_query (soup_server_message_get_uri (msg));
  g_autoptr(GHashTable) params = query ? soup_form_decode (query) : NULL;
  g_autoptr(GPtrArray) agents = NULL;
  const char *after;
  GString *out;
  const char *last = NULL;
  guint64 limit;
  guint i, n = 0;
  gsize length;
  gint64 now, realtime_offset;

  if (!read_page_query (msg, params, &limit, &after))
    return;
  agents = agents_after (self, after, &i);
  /* the agents of one page described at one instant, as D-Bus's ListAgents */
  now = heartbeat_monitor_get_time (self->monitor);
  realtime_offset = heartbeat_monitor_to_realtime (self->monitor, 0);

  /* written agent by agent: no tree of the whole page is built */
  out = g_string_new ("{\"agents\":[");
  for (; i < agents->len && n < limit && (n == 0 || out->len < self->page_bytes); i++, n++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);
      g_autoptr(JsonNode) node = agent_to_json_at (self, agent, now, realtime_offset);

      if (n > 0)
        g_string_append_c (out, ',');
      json_append (out, node);
      last = heartbeat_agent_get_id (agent);
    }
  g_string_append (out, "]}");

  if (i < agents->len && last != NULL)
    set_next_link (msg, "/v1/agents", last, limit);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  length = out->len;
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, g_string_free (out, FALSE), length);
}

/* A page of GET /v1/history to build, its request paused meanwhile */
typedef struct {
  HbHttp            *http;
  SoupServerMessage *msg;
  char              *after;    /* or NULL */
  guint64            limit;
  gulong             finished_id;
} HistoryPage;

static void
history_page_free (HistoryPage *page)
{
  g_signal_handler_disconnect (page->msg, page->finished_id);
  g_object_unref (page->msg);
  g_free (page->after);
  g_free (page);
}

/* The page of the histories of at most @limit agents after @after (NULL:
 * from the first), as the answer to @msg: see handle_history(). */
static void
respond_history_page (HbHttp            *self,
                      SoupServerMessage *msg,
                      const char        *after,
                      guint64            limit)
{
  gsize budget = MIN (self->page_bytes, HB_HTTP_HISTORY_PAGE_BYTES);
  g_autoptr(GPtrArray) agents = NULL;
  const char *last = NULL;
  GString *out;
  guint i, n = 0;

  agents = agents_after (self, after, &i);
  out = g_string_sized_new (MIN (budget, HB_HTTP_SMALL_RESPONSE));
  g_string_append (out, "{\"agents\":{");
  for (; i < agents->len && n < limit; i++, n++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);
      gsize before = out->len;

      if (n > 0)
        g_string_append_c (out, ',');
      append_string (out, heartbeat_agent_get_id (agent));
      g_string_append_c (out, ':');
      append_history (out, agent);
      if (n > 0 && out->len + strlen ("}}") > budget)
        {
          g_string_truncate (out, before);   /* it starts the next page */
          break;
        }
      last = heartbeat_agent_get_id (agent);
    }
  g_string_append (out, "}}");

  if (i < agents->len && last != NULL)
    set_next_link (msg, "/v1/history", last, limit);
  respond_compressible (msg, "application/json", out);
}

/* Builds the first waiting page, answers its request; again at the next
 * iteration while pages wait. */
static gboolean
build_history_page (gpointer user_data)
{
  HbHttp *self = user_data;
  HistoryPage *page = g_queue_pop_head (&self->history_pages);
  g_autoptr(SoupServerMessage) msg = g_object_ref (page->msg);

  respond_history_page (self, msg, page->after, page->limit);
  history_page_free (page);
  account_answer (self, msg);   /* a 503 if the answers waiting took the budget */
  soup_server_message_unpause (msg);
  if (!g_queue_is_empty (&self->history_pages))
    return G_SOURCE_CONTINUE;
  self->history_source = 0;
  return G_SOURCE_REMOVE;
}

/* The client went away before its page was built */
static void
on_history_page_finished (SoupServerMessage *msg,
                          HistoryPage       *page)
{
  HbHttp *self = page->http;

  g_queue_remove (&self->history_pages, page);
  history_page_free (page);
  if (g_queue_is_empty (&self->history_pages))
    g_clear_handle_id (&self->history_source, g_source_remove);
}

/* GET /v1/history[?limit=N][&after=ID]: the histories of a page of the
 * agents, {"agents": {ID: [{"at-usec", "state"}, ...], ...}}, paged as GET
 * /v1/agents (the same ids in the same order, the same ?limit= and
 * ?after=, Link rel="next" while more follow), but by a smaller budget:
 * an agent whose history would take the page past
 * MIN (HB_HTTP_HISTORY_PAGE_BYTES, HB_HTTP_PAGE_BYTES) of JSON starts the
 * next page, unless it is the first (a page always moves on). Gzipped
 * when the client accepts it. A client that ignores Link gets the first
 * page, valid JSON of the same shape as before pages.
 *
 * Pages rather than one answer streamed in chunks: the whole answer at
 * 2,000 agents × 128 state changes is 11.8 MB, and was built on the main
 * loop in 1.4–2 s (D-Bus and every other request waited) and held whole
 * in memory per request. A full page is built in about 5 ms (GString, not
 * a JsonBuilder tree: see append_history()), held until its client has
 * read it within the response budget like any large answer
 * (account_answer()), and needs nothing kept between requests; a stream
 * would have to keep a snapshot of the agents and a cursor per client,
 * and be bounded on its own against clients that stop reading.
 *
 * The page is built later, from an idle source of G_PRIORITY_DEFAULT_IDLE,
 * one page per main loop iteration: D-Bus calls and other requests
 * (G_PRIORITY_DEFAULT) that arrive meanwhile go first, so that clients
 * reading histories in a loop delay them by one page at most, not by one
 * page per client. The queue holds at most one request per connection
 * (HB_HTTP_MAX_CONNECTIONS in all). */
void
handle_history (HbHttp            *self,
                SoupServerMessage *msg,
                gboolean           privileged)
{
  const char *query = g_uri_get_query (soup_server_message_get_uri (msg));
  g_autoptr(GHashTable) params = query ? soup_form_decode (query) : NULL;
  HistoryPage *page;
  const char *after;
  guint64 limit;

  if (!read_page_query (msg, params, &limit, &after))
    return;

  page = g_new0 (HistoryPage, 1);
  page->http = self;
  page->msg = g_object_ref (msg);
  page->after = g_strdup (after);
  page->limit = limit;
  page->finished_id = g_signal_connect (msg, "finished", G_CALLBACK (on_history_page_finished), page);
  soup_server_message_pause (msg);
  g_queue_push_tail (&self->history_pages, page);
  if (self->history_source == 0)
    self->history_source = g_idle_add_full (G_PRIORITY_DEFAULT_IDLE, build_history_page, self, NULL);
}

/* GET /v1/agents/{id}/history: {"id", "history"} */
void
handle_agent_history (HbHttp            *self,
                      SoupServerMessage *msg,
                      const char        *id)
{
  HeartbeatAgent *agent = heartbeat_monitor_lookup (self->monitor, id);
  GString *out;
  gsize length;

  if (agent == NULL)
    {
      send_error (msg, SOUP_STATUS_NOT_FOUND, "No agent with id “%s”", id);
      return;
    }
  out = g_string_new ("{\"id\":");
  append_string (out, heartbeat_agent_get_id (agent));
  g_string_append (out, ",\"history\":");
  append_history (out, agent);
  g_string_append_c (out, '}');
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  length = out->len;
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, g_string_free (out, FALSE), length);
}

void
handle_health (HbHttp            *self,
               SoupServerMessage *msg,
               gboolean           privileged)
{
  guint counts[HEARTBEAT_AGENT_N_STATES] = { 0 };
  gboolean running = heartbeat_monitor_get_running (self->monitor);
  GString *out = g_string_sized_new (256);

  /* written as text: probes poll it */
  heartbeat_monitor_get_state_counts (self->monitor, counts);
  g_string_append (out, "{\"status\":");
  append_string (out, !running ? "stopped" : self->problem ? "degraded" : "ok");
  g_string_append (out, ",\"problem\":");
  if (self->problem)
    append_string (out, self->problem);
  else
    g_string_append (out, "null");
  g_string_append_printf (out, ",\"running\":%s,\"agents\":%u,\"states\":{", running ? "true" : "false",
                          heartbeat_monitor_get_n_agents (self->monitor));
  for (guint s = 0; s < HEARTBEAT_AGENT_N_STATES; s++)
    {
      if (s > 0)
        g_string_append_c (out, ',');
      append_string (out, heartbeat_agent_state_to_string (s));
      g_string_append_printf (out, ":%u", counts[s]);
    }
  g_string_append (out, "},\"version\":");
  append_string (out, self->version);
  g_string_append_printf (out, ",\"started-at-usec\":%" G_GINT64_FORMAT ",\"event-clients\":%u}",
                          (gint64) hb_host_process_started_at (), self->n_clients);
  send_json_text (msg, SOUP_STATUS_OK, out);
}

/* ------------------------------------------------------------------ */
/* The host: GET /v1/host                                              */

/* The summary of the daemon's machine (hb-host.c), the CPU use from the
 * sample taken HB_HTTP_CPU_SAMPLE_MS ago to now, the disk that of the
 * state database (hb_http_set_state_directory()). */
static JsonNode *
host_json (HbHttp *self)
{
  guint64 busy, total;
  double cpu = -1;

  if (self->host_cpu_known && hb_host_read_cpu (&busy, &total))
    cpu = hb_host_cpu_percent (self->host_busy, self->host_total, busy, total);
  return hb_host_to_json (cpu, self->state_directory ? self->state_directory : "/");
}

/* A request waiting for the CPU sample. Every request that comes while one
 * is taken waits for the same one. */
typedef struct {
  SoupServerMessage *msg;
  gulong             finished_id;
} HostWaiter;

static void
host_waiter_free (HostWaiter *waiter)
{
  g_signal_handler_disconnect (waiter->msg, waiter->finished_id);
  g_object_unref (waiter->msg);
  g_free (waiter);
}

/* The client went away meanwhile */
static void
on_host_waiter_finished (SoupServerMessage *msg,
                         HbHttp            *self)
{
  for (GList *l = self->host_waiters; l; l = l->next)
    {
      HostWaiter *waiter = l->data;

      if (waiter->msg == msg)
        {
          self->host_waiters = g_list_delete_link (self->host_waiters, l);
          host_waiter_free (waiter);
          return;
        }
    }
}

static gboolean
on_host_sampled (gpointer user_data)
{
  HbHttp *self = user_data;
  g_autoptr(JsonNode) node = host_json (self);
  GList *waiters = g_steal_pointer (&self->host_waiters);

  self->host_sample_id = 0;
  for (GList *l = waiters; l; l = l->next)
    {
      HostWaiter *waiter = l->data;

      send_json (waiter->msg, SOUP_STATUS_OK, node);
      soup_server_message_unpause (waiter->msg);
      host_waiter_free (waiter);
    }
  g_list_free (waiters);
  return G_SOURCE_REMOVE;
}

/* GET /v1/host. Not a part of /health, which keeps the shape of 000's
 * and answers at once (probes poll it); CPU use is a difference of two
 * samples, so this answers HB_HTTP_CPU_SAMPLE_MS later, without blocking
 * the daemon meanwhile. */
void
handle_host (HbHttp            *self,
             SoupServerMessage *msg,
             gboolean           privileged)
{
  HostWaiter *waiter;

  if (self->host_sample_id == 0)
    {
      self->host_cpu_known = hb_host_read_cpu (&self->host_busy, &self->host_total);
      self->host_sample_id = g_timeout_add (HB_HTTP_CPU_SAMPLE_MS, on_host_sampled, self);
    }
  waiter = g_new0 (HostWaiter, 1);
  waiter->msg = g_object_ref (msg);
  waiter->finished_id = g_signal_connect (msg, "finished", G_CALLBACK (on_host_waiter_finished), self);
  self->host_waiters = g_list_append (self->host_waiters, waiter);
  soup_server_message_pause (msg);
}

/* ------------------------------------------------------------------ */
/* The dashboard                                                       */

void
handle_dashboard (HbHttp            *self,
                  SoupServerMessage *msg,
                  gboolean           privileged)
{
  g_autoptr(GBytes) page = g_resource_lookup_data (hb_get_resource (), DASHBOARD_RESOURCE, 0, NULL);
  gsize length;
  const char *data;

  if (page == NULL)
    {
      send_error (msg, SOUP_STATUS_NOT_FOUND, "No dashboard in this build");
      return;
    }
  data = g_bytes_get_data (page, &length);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "text/html; charset=utf-8", SOUP_MEMORY_COPY, data, length);
}

/* GET /v1/agents/{id} */
void
handle_get_agent (HbHttp            *self,
                  SoupServerMessage *msg,
                  const char        *id)
{
  HeartbeatAgent *agent = heartbeat_monitor_lookup (self->monitor, id);
  g_autoptr(JsonNode) node = agent ? agent_to_json (self, agent) : NULL;

  if (node)
    send_json (msg, SOUP_STATUS_OK, node);
  else
    send_error (msg, SOUP_STATUS_NOT_FOUND, "No agent with id “%s”", id);
}

/* Drops the requests still waiting for a history page or the CPU sample. */
void
hb_http_rest_dispose (HbHttp *self)
{
  g_clear_handle_id (&self->host_sample_id, g_source_remove);
  g_list_free_full (g_steal_pointer (&self->host_waiters), (GDestroyNotify) host_waiter_free);
  g_clear_handle_id (&self->history_source, g_source_remove);
  g_queue_clear_full (&self->history_pages, (GDestroyNotify) history_page_free);
}
