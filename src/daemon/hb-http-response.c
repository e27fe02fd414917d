/* hb-http-response.c: what every endpoint of the HTTP front answers with
 * and reads
 *
 * JSON text written directly (append_string(), json_append(): the
 * shortest doubles), answers (send_json(), send_error(), errors of the
 * monitor, gzip when accepted), the budget of large answers waiting for
 * their clients, request bodies (read_object(), read_metadata(), a beat
 * with read_beat()), who may write (bearer tokens, HTTP's own agents) and
 * upsert(), which registers an agent for HTTP within its quota.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-http-private.h"

#include <math.h>
#include <string.h>

#include "hb-agent-record.h"
#include "hb-json.h"
#include "heartbeat-values.h"

/* ------------------------------------------------------------------ */
/* JSON text                                                           */

/* @value as the shortest decimal text that reads back as the same double
 * (json-glib writes every double with 17 significant digits, so 6.2 came
 * out as 6.2000000000000002). */
void
append_double (GString *out,
               double   value)
{
  char buffer[G_ASCII_DTOSTR_BUF_SIZE];

  if (!isfinite (value))
    {
      g_string_append (out, "null");   /* JSON has no such number */
      return;
    }
  for (int digits = 1; digits <= 17; digits++)
    {
      char format[8];

      g_snprintf (format, sizeof format, "%%.%dg", digits);
      g_ascii_formatd (buffer, sizeof buffer, format, value);
      if (g_ascii_strtod (buffer, NULL) == value)
        break;
    }
  g_string_append (out, buffer);
}

void
append_string (GString    *out,
               const char *value)
{
  g_string_append_c (out, '"');
  for (const char *p = value ? value : ""; *p; p++)
    {
      guchar c = (guchar) *p;

      switch (c)
        {
        case '"':
          g_string_append (out, "\\\"");
          break;
        case '\\':
          g_string_append (out, "\\\\");
          break;
        case '\b':
          g_string_append (out, "\\b");
          break;
        case '\f':
          g_string_append (out, "\\f");
          break;
        case '\n':
          g_string_append (out, "\\n");
          break;
        case '\r':
          g_string_append (out, "\\r");
          break;
        case '\t':
          g_string_append (out, "\\t");
          break;
        default:
          if (c < 0x20 || c == 0x7f)
            g_string_append_printf (out, "\\u%04x", c);
          else
            g_string_append_c (out, (char) c);
          break;
        }
    }
  g_string_append_c (out, '"');
}

/* Appends @node (NULL: null) as compact JSON text, as
 * json_generator_to_data() writes it but for doubles, written as the
 * shortest text that reads back as the same number (0.1, not
 * 0.10000000000000001). */
void
json_append (GString  *out,
             JsonNode *node)
{
  if (node == NULL)
    {
      g_string_append (out, "null");
      return;
    }
  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_OBJECT:
      {
        JsonObjectIter iter;
        const char *name;
        JsonNode *member;
        gboolean first = TRUE;

        g_string_append_c (out, '{');
        json_object_iter_init_ordered (&iter, json_node_get_object (node));
        while (json_object_iter_next_ordered (&iter, &name, &member))
          {
            if (!first)
              g_string_append_c (out, ',');
            first = FALSE;
            append_string (out, name);
            g_string_append_c (out, ':');
            json_append (out, member);
          }
        g_string_append_c (out, '}');
      }
      break;
    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);
        guint n = json_array_get_length (array);

        g_string_append_c (out, '[');
        for (guint i = 0; i < n; i++)
          {
            if (i > 0)
              g_string_append_c (out, ',');
            json_append (out, json_array_get_element (array, i));
          }
        g_string_append_c (out, ']');
      }
      break;
    case JSON_NODE_VALUE:
      switch (json_node_get_value_type (node))
        {
        case G_TYPE_INT64:
          g_string_append_printf (out, "%" G_GINT64_FORMAT, json_node_get_int (node));
          break;
        case G_TYPE_DOUBLE:
          append_double (out, json_node_get_double (node));
          break;
        case G_TYPE_BOOLEAN:
          g_string_append (out, json_node_get_boolean (node) ? "true" : "false");
          break;
        case G_TYPE_STRING:
          append_string (out, json_node_get_string (node));
          break;
        default:
          g_string_append (out, "null");
          break;
        }
      break;
    case JSON_NODE_NULL:
    default:
      g_string_append (out, "null");
      break;
    }
}

/* @node as text (json_append()), and its length */
char *
json_to_data (JsonNode *node,
              gsize    *length)
{
  GString *out = g_string_new (NULL);

  json_append (out, node);
  if (length)
    *length = out->len;
  return g_string_free (out, FALSE);
}

/* ------------------------------------------------------------------ */
/* Responses                                                           */

/* Says once a minute at most that a cap was reached. */
void
warn_cap (HbHttp     *self,
          const char *what)
{
  gint64 now = g_get_monotonic_time ();

  if (self->cap_warned_at != 0 && now - self->cap_warned_at < 60 * G_USEC_PER_SEC)
    return;
  self->cap_warned_at = now;
  g_message ("HTTP: %s", what);
}

void
send_json (SoupServerMessage *msg,
           guint              status,
           JsonNode          *node)
{
  gsize length;
  char *text = json_to_data (node, &length);

  soup_server_message_set_status (msg, status, status == STATUS_TOO_MANY_REQUESTS ? "Too Many Requests" : NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, text, length);
}

/* @out (taken), JSON text written by hand, as the answer */
void
send_json_text (SoupServerMessage *msg,
                guint              status,
                GString           *out)
{
  gsize length = out->len;

  soup_server_message_set_status (msg, status, status == STATUS_TOO_MANY_REQUESTS ? "Too Many Requests" : NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, g_string_free (out, FALSE), length);
}

/* {"error": {"code": @status, "message": @message}} as text */
char *
error_text (guint       status,
            const char *message,
            gsize      *length)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "error");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "code");
  json_builder_add_int_value (b, status);
  json_builder_set_member_name (b, "message");
  json_builder_add_string_value (b, message);
  json_builder_end_object (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  return json_to_data (root, length);
}

void
send_error (SoupServerMessage *msg,
            guint              status,
            const char        *format,
            ...) G_GNUC_PRINTF (3, 4);

void
send_error (SoupServerMessage *msg,
            guint              status,
            const char        *format,
            ...)
{
  g_autofree char *message = NULL;
  char *text;
  gsize length;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  text = error_text (status, message, &length);
  soup_server_message_set_status (msg, status, status == STATUS_TOO_MANY_REQUESTS ? "Too Many Requests" : NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, text, length);
}

/* The monitor's errors, in HTTP. */
void
send_monitor_error (SoupServerMessage *msg,
                    const GError      *error)
{
  if (g_error_matches (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_NOT_FOUND))
    send_error (msg, SOUP_STATUS_NOT_FOUND, "%s", error->message);
  else if (g_error_matches (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_QUOTA_EXCEEDED))
    send_error (msg, STATUS_TOO_MANY_REQUESTS, "%s", error->message);
  else if (g_error_matches (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_NOT_SAVED))
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Retry-After", "5");
      send_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
                  "The change could not be saved, so it was not made: %s", error->message);
    }
  else
    send_error (msg, SOUP_STATUS_BAD_REQUEST, "%s", error->message);
}

/* Set on a request that registered, deleted or marked idle an agent: a
 * caller's change, which the store takes back if it cannot save it. */
GQuark
caller_change_quark (void)
{
  return g_quark_from_static_string ("hb-http-caller-change");
}

/* The size of a large answer counted in responses_pending */
static GQuark
answer_size_quark (void)
{
  return g_quark_from_static_string ("hb-http-answer-size");
}

/* Set on an event stream */
GQuark
stream_quark (void)
{
  return g_quark_from_static_string ("hb-http-stream");
}

void
mark_caller_change (SoupServerMessage *msg)
{
  g_object_set_qdata (G_OBJECT (msg), caller_change_quark (), GINT_TO_POINTER (1));
}

/* ------------------------------------------------------------------ */
/* Agents as JSON                                                      */

void
add_member_string (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, value ? value : "");
}

void
add_member_int (JsonBuilder *b, const char *name, gint64 value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, value);
}

/* The D-Bus GetAgent record (hb_agent_record_at()) as JSON, at @now with
 * @realtime_offset, as a page of agents reads both clocks once. */
JsonNode *
agent_to_json_at (HbHttp         *self,
                  HeartbeatAgent *agent,
                  gint64          now,
                  gint64          realtime_offset)
{
  g_autoptr(GVariant) record = g_variant_ref_sink (hb_agent_record_at (agent, self->units, now, realtime_offset));

  return hb_json_from_variant (record);
}

/* The same, measured now. */
JsonNode *
agent_to_json (HbHttp         *self,
               HeartbeatAgent *agent)
{
  return agent_to_json_at (self, agent, heartbeat_monitor_get_time (self->monitor),
                           heartbeat_monitor_to_realtime (self->monitor, 0));
}

/* An agent's history (heartbeat_agent_get_history()) as a JSON array of
 * {"at-usec", "state"}, oldest first, appended to @out as text: no
 * JsonBuilder tree to build, walk and free per agent on the main loop. */
void
append_history (GString        *out,
                HeartbeatAgent *agent)
{
  g_autoptr(GVariant) history = g_variant_ref_sink (heartbeat_agent_get_history (agent));
  GVariantIter iter;
  guint64 at;
  const char *state;
  gboolean first = TRUE;

  g_string_append_c (out, '[');
  g_variant_iter_init (&iter, history);
  while (g_variant_iter_next (&iter, "(t&s)", &at, &state))
    {
      if (!first)
        g_string_append_c (out, ',');
      first = FALSE;
      g_string_append_printf (out, "{\"at-usec\":%" G_GINT64_FORMAT ",\"state\":",
                              (gint64) MIN (at, (guint64) G_MAXINT64));
      append_string (out, state);
      g_string_append_c (out, '}');
    }
  g_string_append_c (out, ']');
}

/* ------------------------------------------------------------------ */
/* Gzip                                                                */

/* Whether the request's Accept-Encoding allows gzip: "gzip" or "x-gzip"
 * with a q above 0, or "*" without gzip refused. */
static gboolean
accepts_gzip (SoupServerMessage *msg)
{
  const char *header = soup_message_headers_get_list (soup_server_message_get_request_headers (msg),
                                                      "Accept-Encoding");
  GSList *acceptable, *unacceptable = NULL;
  gboolean gzip = FALSE, any = FALSE, refused = FALSE;

  if (header == NULL)
    return FALSE;
  acceptable = soup_header_parse_quality_list (header, &unacceptable);
  for (GSList *l = acceptable; l; l = l->next)
    {
      gzip |= g_ascii_strcasecmp (l->data, "gzip") == 0 || g_ascii_strcasecmp (l->data, "x-gzip") == 0;
      any |= strcmp (l->data, "*") == 0;
    }
  for (GSList *l = unacceptable; l; l = l->next)
    refused |= g_ascii_strcasecmp (l->data, "gzip") == 0 || g_ascii_strcasecmp (l->data, "x-gzip") == 0;
  soup_header_free_list (acceptable);
  soup_header_free_list (unacceptable);
  return gzip || (any && !refused);
}

/* @length bytes at @data, gzipped; NULL if zlib failed. Level 1: at
 * 1,000 agents, 933 KB become 55 KB in about 4 ms on the main loop (the
 * default level, 6: 49 KB in about 10 ms). */
static GBytes *
gzip_bytes (const char *data,
            gsize       length)
{
  g_autoptr(GZlibCompressor) compressor = g_zlib_compressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP, 1);
  g_autoptr(GOutputStream) memory = g_memory_output_stream_new_resizable ();
  g_autoptr(GOutputStream) gzip = g_converter_output_stream_new (memory, G_CONVERTER (compressor));
  g_autoptr(GError) error = NULL;

  if (!g_output_stream_write_all (gzip, data, length, NULL, NULL, &error) ||
      !g_output_stream_close (gzip, NULL, &error))   /* closes @memory too */
    {
      g_warning ("Cannot compress an answer: %s", error->message);
      return NULL;
    }
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (memory));
}

/* A 200 with @out (taken) as its body, gzipped if the client accepts it
 * (Vary: Accept-Encoding either way): /metrics and /v1/history pages. */
void
respond_compressible (SoupServerMessage *msg,
                      const char        *content_type,
                      GString           *out)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  g_autoptr(GBytes) compressed = NULL;
  gsize length;

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_replace (headers, "Vary", "Accept-Encoding");
  if (accepts_gzip (msg) && (compressed = gzip_bytes (out->str, out->len)) != NULL)
    {
      gpointer data = g_bytes_unref_to_data (g_steal_pointer (&compressed), &length);

      g_string_free (out, TRUE);
      soup_message_headers_replace (headers, "Content-Encoding", "gzip");
      soup_server_message_set_response (msg, content_type, SOUP_MEMORY_TAKE, data, length);
      return;
    }
  length = out->len;
  soup_server_message_set_response (msg, content_type, SOUP_MEMORY_TAKE, g_string_free (out, FALSE), length);
}

/* ------------------------------------------------------------------ */
/* Large answers                                                       */

static void
on_answer_finished (SoupServerMessage *msg,
                    HbHttp            *self)
{
  gsize size = GPOINTER_TO_SIZE (g_object_steal_qdata (G_OBJECT (msg), answer_size_quark ()));

  self->responses_pending -= MIN (size, self->responses_pending);
}

/* Whether the answers waiting for their clients took the whole budget
 * and @path is one whose answer grows with the agents: it is then refused
 * before it is built (building it, only to refuse it, would take the
 * memory it is refused to spare). */
gboolean
budget_spent (HbHttp     *self,
              const char *path)
{
  static const char *const listings[] = { "/v1/agents", "/v1/history", "/runs", "/api/heartbeat/status", "/metrics", NULL };

  return self->responses_pending >= self->response_budget && g_strv_contains (listings, path);
}

void
refuse_answer (HbHttp            *self,
               SoupServerMessage *msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

  warn_cap (self, "large answers wait for clients that do not read them; others are refused (503) meanwhile");
  soup_message_headers_remove (headers, "Content-Encoding");
  soup_message_headers_remove (headers, "Link");
  soup_message_headers_replace (headers, "Retry-After", "1");
  send_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
              "Too many large answers wait for their clients to read them (%zu bytes; at most %zu); try again later",
              self->responses_pending, self->response_budget);
}

/* An answer to a read larger than HB_HTTP_SMALL_RESPONSE waits in memory
 * until its client has read it: all of them together stay within the
 * response budget (one is always allowed), else 503 with Retry-After.
 * Smaller answers, and those to writes (one agent each), are bounded by
 * the connections. */
void
account_answer (HbHttp            *self,
                SoupServerMessage *msg)
{
  gsize size;

  if (soup_server_message_get_status (msg) == 0 || g_object_get_qdata (G_OBJECT (msg), stream_quark ()))
    return;   /* answered later (GET /v1/host, small), or a stream (bounded on its own) */
  size = (gsize) soup_server_message_get_response_body (msg)->length;
  if (size <= HB_HTTP_SMALL_RESPONSE)
    return;
  if (self->responses_pending > 0 && self->responses_pending + size > self->response_budget)
    {
      refuse_answer (self, msg);
      return;
    }
  self->responses_pending += size;
  g_object_set_qdata (G_OBJECT (msg), answer_size_quark (), GSIZE_TO_POINTER (size));
  g_signal_connect_object (msg, "finished", G_CALLBACK (on_answer_finished), self, 0);
}

/* ------------------------------------------------------------------ */
/* Request bodies                                                      */

/* json-glib's message about a text it could not parse, for a client:
 * "<data>:1:10: Parse error: unexpected character" names json-glib's own
 * input, not anything the client sent; it becomes "line 1, column 10:
 * unexpected character". */
static char *
parse_error_text (const char *message)
{
  const char *rest = message;
  guint64 line = 0, column = 0;
  char *end;

  if (g_str_has_prefix (rest, "<data>:"))
    {
      line = g_ascii_strtoull (rest + 7, &end, 10);
      if (*end == ':')
        column = g_ascii_strtoull (end + 1, &end, 10);
      if (line > 0 && column > 0 && g_str_has_prefix (end, ": "))
        rest = end + 2;
      else
        line = 0;
    }
  if (g_str_has_prefix (rest, "Parse error: "))
    rest += strlen ("Parse error: ");
  if (line > 0)
    return g_strdup_printf ("line %" G_GUINT64_FORMAT ", column %" G_GUINT64_FORMAT ": %s", line, column, rest);
  return g_strdup (rest);
}

/* The request's JSON object (a node holding it, owned by the caller), or
 * NULL with an error sent. An empty body is an empty object when
 * @empty_ok. The text is checked (UTF-8, nesting depth, NUL) before it is
 * parsed: see hb_json_parse(). */
JsonNode *
read_object (SoupServerMessage *msg,
             gboolean           empty_ok)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  g_autoptr(GBytes) bytes = soup_message_body_flatten (body);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) root = NULL;
  const char *content_type;
  gsize length;
  const char *data = g_bytes_get_data (bytes, &length);

  if (length > HB_HTTP_MAX_BODY)
    {
      send_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "The body is larger than %d bytes", HB_HTTP_MAX_BODY);
      return NULL;
    }
  if (length == 0 && empty_ok)
    {
      g_autoptr(JsonObject) empty = json_object_new ();   /* the node takes its own reference */

      return json_node_init_object (json_node_alloc (), empty);
    }
  content_type = soup_message_headers_get_content_type (headers, NULL);
  if (content_type == NULL || g_ascii_strcasecmp (content_type, "application/json") != 0)
    {
      send_error (msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE, "The body must be application/json");
      return NULL;
    }
  root = hb_json_parse (data != NULL ? data : "", length, &error);
  if (root == NULL)
    {
      g_autofree char *why = parse_error_text (error->message);

      send_error (msg, SOUP_STATUS_BAD_REQUEST, "The body is not valid JSON: %s", why);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      send_error (msg, SOUP_STATUS_BAD_REQUEST, "The body must be a JSON object");
      return NULL;
    }
  return g_steal_pointer (&root);
}

/* Every member of @object not in @skip, as metadata (an a{sv} that passes
 * heartbeat_metadata_is_valid()); NULL with a 400 sent that names the
 * member at fault. @what prefixes the message ("“metadata”: "). */
GVariant *
read_metadata (SoupServerMessage *msg,
               JsonObject        *object,
               const char *const *skip,
               const char        *what)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) metadata = hb_json_object_to_vardict (object, skip, &error);

  if (metadata == NULL || !heartbeat_metadata_is_valid (metadata, &error))
    {
      send_error (msg, SOUP_STATUS_BAD_REQUEST, "%s%s", what ? what : "", error->message);
      return NULL;
    }
  return g_steal_pointer (&metadata);
}

gboolean
get_optional_string (SoupServerMessage *msg,
                     JsonObject        *object,
                     const char        *name,
                     const char       **value)
{
  JsonNode *node = json_object_get_member (object, name);

  *value = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      send_error (msg, SOUP_STATUS_BAD_REQUEST, "“%s” must be a string", name);
      return FALSE;
    }
  *value = json_node_get_string (node);
  return TRUE;
}

gboolean
get_optional_usec (SoupServerMessage *msg,
                   JsonObject        *object,
                   const char        *name,
                   gint64            *value)
{
  JsonNode *node = json_object_get_member (object, name);

  *value = 0;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64 ||
      json_node_get_int (node) <= 0)
    {
      send_error (msg, SOUP_STATUS_BAD_REQUEST, "“%s” must be a positive integer (µs)", name);
      return FALSE;
    }
  *value = json_node_get_int (node);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Who may write                                                       */

/* Sends 401 or 403 and returns FALSE unless the request may write at
 * all; sets *privileged when its token grants changing any agent. What
 * a request needs was decided before its body was read (hb-http-guards.c,
 * hb_http_needed_scope()): this only reads the grant. */
gboolean
may_write (HbHttp            *self,
           SoupServerMessage *msg,
           gboolean          *privileged)
{
  *privileged = FALSE;
  if (self->tokens == NULL)
    return TRUE;
  if (hb_http_granted (msg) & HB_HTTP_SCOPE_WRITE)
    {
      *privileged = TRUE;
      return TRUE;
    }
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "WWW-Authenticate", "Bearer realm=\"heartbeatd\"");
  send_error (msg, SOUP_STATUS_UNAUTHORIZED, "Writes need “Authorization: Bearer <token>” with a token of scope write");
  return FALSE;
}

/* Sends 403 and returns FALSE if HTTP may not change @agent. */
gboolean
may_change (SoupServerMessage *msg,
            HeartbeatAgent    *agent,
            gboolean           privileged)
{
  if (privileged || heartbeat_agent_get_owner_uid (agent) == HB_HTTP_OWNER_UID)
    return TRUE;
  send_error (msg, SOUP_STATUS_FORBIDDEN,
              "Agent “%s” belongs to uid %u; without a token HTTP may change only agents created over HTTP",
              heartbeat_agent_get_id (agent), heartbeat_agent_get_owner_uid (agent));
  return FALSE;
}

/* ------------------------------------------------------------------ */
/* Writes                                                              */

/* Registers @id for HTTP if it is new (within the quota), else checks
 * HTTP may change it; with @re_register, registers it again then. */
HeartbeatAgent *
upsert (HbHttp                      *self,
        SoupServerMessage           *msg,
        const char                  *id,
        const HeartbeatAgentOptions *options,
        gboolean                     privileged,
        gboolean                     re_register,
        gboolean                    *created)
{
  g_autoptr(GError) error = NULL;
  HeartbeatAgent *agent;
  HeartbeatAgentOptions http_options = { 0 };

  if (!heartbeat_id_is_valid (id, &error))
    {
      send_error (msg, SOUP_STATUS_BAD_REQUEST, "%s", error->message);
      return NULL;
    }
  agent = heartbeat_monitor_lookup (self->monitor, id);
  *created = agent == NULL;
  if (agent && !may_change (msg, agent, privileged))
    return NULL;
  if (agent && !re_register)
    return agent;
  if (agent == NULL && self->quota != 0 &&
      heartbeat_monitor_count_owned_by (self->monitor, (guint32) HB_HTTP_OWNER_UID) >= self->quota)
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Retry-After", "60");
      send_error (msg, STATUS_TOO_MANY_REQUESTS,
                  "HTTP already created %u agents, the most it may ([limits] agents-per-uid); "
                  "delete some first", heartbeat_monitor_count_owned_by (self->monitor, (guint32) HB_HTTP_OWNER_UID));
      return NULL;
    }

  if (options)
    http_options = *options;
  http_options.owner_uid = agent ? heartbeat_agent_get_owner_uid (agent) : (guint32) HB_HTTP_OWNER_UID;
  agent = heartbeat_monitor_register (self->monitor, id, &http_options, &error);
  if (agent == NULL)
    send_monitor_error (msg, error);
  else
    mark_caller_change (msg);
  return agent;
}

/* A status as the monitor takes it (1 to HEARTBEAT_STATUS_MAX_LENGTH
 * bytes, no control character); sends 400 if not. */
static gboolean
status_is_valid (SoupServerMessage *msg,
                 const char        *status)
{
  if (status == NULL)
    return TRUE;
  switch (heartbeat_text_check (status, strlen (status), HEARTBEAT_STATUS_MAX_LENGTH))
    {
    case HEARTBEAT_TEXT_OK:
      return TRUE;
    case HEARTBEAT_TEXT_CONTROL:
      send_error (msg, SOUP_STATUS_BAD_REQUEST, "“status” contains a control character");
      return FALSE;
    case HEARTBEAT_TEXT_BAD_LENGTH:
    case HEARTBEAT_TEXT_BAD_UTF8:
    default:
      send_error (msg, SOUP_STATUS_BAD_REQUEST, "“status” must be 1 to %d bytes of UTF-8",
                  HEARTBEAT_STATUS_MAX_LENGTH);
      return FALSE;
    }
}

void
beat_clear (Beat *beat)
{
  g_clear_pointer (&beat->metadata, g_variant_unref);
}

/* Reads and checks everything of a beat before anything is changed; sends
 * 400 and returns FALSE if any of it is wrong. */
gboolean
read_beat (SoupServerMessage *msg,
           JsonObject        *object,
           const char *const *metadata_skip,
           gboolean           whole_object_is_metadata,
           Beat              *beat)
{
  JsonNode *progress = json_object_get_member (object, "progress");

  if (!get_optional_string (msg, object, "status", &beat->details.status) ||
      !status_is_valid (msg, beat->details.status))
    return FALSE;
  if (whole_object_is_metadata)
    {
      beat->metadata = read_metadata (msg, object, metadata_skip, NULL);
      if (beat->metadata == NULL)
        return FALSE;
    }
  else if (json_object_has_member (object, "metadata"))
    {
      JsonNode *node = json_object_get_member (object, "metadata");

      if (!JSON_NODE_HOLDS_OBJECT (node))
        {
          send_error (msg, SOUP_STATUS_BAD_REQUEST, "“metadata” must be an object");
          return FALSE;
        }
      beat->metadata = read_metadata (msg, json_node_get_object (node), NULL, "“metadata”: ");
      if (beat->metadata == NULL)
        return FALSE;
    }
  /* "progress": null is no progress, as before */
  if (!whole_object_is_metadata && progress && !JSON_NODE_HOLDS_NULL (progress))
    {
      GType type = JSON_NODE_HOLDS_VALUE (progress) ? json_node_get_value_type (progress) : G_TYPE_INVALID;

      if ((type != G_TYPE_INT64 && type != G_TYPE_DOUBLE) || !isfinite (json_node_get_double (progress)))
        {
          send_error (msg, SOUP_STATUS_BAD_REQUEST, "“progress” must be a finite number");
          return FALSE;
        }
      beat->details.has_progress = TRUE;
      beat->details.progress = json_node_get_double (progress);
    }
  beat->details.metadata = beat->metadata;
  return TRUE;
}

