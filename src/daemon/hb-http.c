/* hb-http.c: the HTTP front
 *
 * One SoupServer on the daemon's main loop translating requests into
 * HeartbeatMonitor calls and monitor signals into Server-Sent Events:
 *
 *   GET  /health, /runs, /runs/{id}; POST /heartbeat, /event
 *                                   the local server of 000 (compatible)
 *   GET  /api/heartbeat/status      the gateway endpoint of 004 (its shape)
 *   GET  /v1/agents, GET|PUT|DELETE /v1/agents/{id},
 *   POST /v1/agents/{id}/beat, /v1/agents/{id}/idle          REST
 *   GET  /v1/history, /v1/agents/{id}/history   state changes of the
 *                                   agents (in pages, gzip if the client
 *                                   accepts it), of one agent
 *   GET  /v1/events                 Server-Sent Events
 *   GET  /v1/host                   the daemon's machine: name, CPU, load,
 *                                   memory, disk of the state directory
 *   GET  /metrics                   Prometheus text exposition (gzip if
 *                                   the client accepts it)
 *   GET  /                          the dashboard (from the GResource)
 *
 * Agents created over HTTP belong to HB_HTTP_OWNER_UID. Without a tokens
 * file, HTTP may change only those; with one, every write needs a bearer
 * token, and a token may change any agent; HTTP may create at most
 * hb_http_set_quota() agents. Before a body is read, a foreign Host (when
 * serving loopback: DNS rebinding), a write without a token and a body of
 * unknown or too large size are refused and the connection closed; JSON
 * bodies go through hb_json_parse() and every value is checked before
 * anything changes. Connections that are slow to send a request, or idle,
 * are closed; event streams are bounded in number, per remote address and
 * in what they keep. A port in use is retried (HbHttp:listen-problem).
 * Every error is {"error": {"code", "message"}} and changes nothing.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-http.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "hb-agent-record.h"
#include "hb-host.h"
#include "hb-json.h"
#include "hb-resources.h"
#include "heartbeat-values.h"

#define DASHBOARD_RESOURCE  "/org/heartbeat/Monitor1/dashboard/index.html"
#define MAX_EVENT_CLIENTS   HB_HTTP_MAX_EVENT_STREAMS
#define MAX_EVENT_CLIENTS_PER_PEER HB_HTTP_MAX_EVENT_STREAMS_PER_PEER
#define EVENT_RETRY_AFTER   "5"
#define MAX_CLIENT_BACKLOG  HB_HTTP_EVENT_BACKLOG
#define KEEPALIVE_SECONDS   15
#define LINGER_MS           2000      /* reading what follows a refused request */
#define LINGER_BYTES        (4 * 1024 * 1024)
#define STATUS_TOO_MANY_REQUESTS 429

typedef struct {
  HbHttp            *http;
  SoupServerMessage *msg;
  char              *peer;      /* the remote address, as text */
  gsize              backlog;   /* appended, not yet written */
} EventClient;

/* A connection between requests or in the middle of reading one: when its
 * timer fires, it is shut down (libsoup then reads the end of it and
 * closes it as usual). The socket is watched, not held: libsoup closes a
 * connection by dropping its last reference, and a reference here kept
 * every connection a client had closed open (CLOSE-WAIT) until its timer
 * fired, an fd each. */
typedef struct {
  HbHttp  *http;
  GSocket *socket;     /* weak: the entry goes when the socket does */
  guint    timeout_id;
  guint    then_ms;    /* after the check for a closed socket: the idle timeout */
  GSource *eof_watch;  /* while idle: sees the client close it */
} Conn;

struct _HbHttp {
  GObject           parent_instance;
  HeartbeatMonitor *monitor;
  HbUnits          *units;      /* or NULL */
  char             *version;
  SoupServer       *server;
  guint16           port;
  GPtrArray        *tokens;     /* char *, or NULL: no tokens configured */
  GList            *clients;    /* EventClient */
  guint             n_clients;
  guint64           sequence;
  guint             keepalive_id;
  guint64           beats_total;
  guint64           stale_total;
  guint64           timeouts_total;
  guint64           recoveries_total;
  GHashTable       *agent_counts; /* id → AgentCounts, for agents that had any */
  char             *problem;    /* why the daemon is degraded, or NULL */
  guint             quota;      /* agents HB_HTTP_OWNER_UID may own; 0: no limit */

  /* listening */
  GInetAddress     *address;    /* what hb_http_listen() was given */
  guint16           wanted_port;
  gboolean          check_host; /* bound to loopback: refuse other Host headers */
  guint             retry_id;
  char             *listen_problem;

  /* timeouts, in ms */
  guint             request_timeout;
  guint             idle_timeout;
  guint             retry_interval;
  GHashTable       *conns;      /* GSocket * → Conn */

  /* what clients may hold (hb-http.h) */
  GHashTable       *live;       /* GSocket *: every open connection, weakly */
  guint             max_connections;
  guint             max_connections_per_peer;
  gsize             response_budget;
  gsize             responses_pending; /* bytes of large answers not written yet */
  gsize             page_bytes;
  gint64            cap_warned_at;     /* monotonic µs: the last warning of a cap */

  /* GET /v1/history: pages waiting to be built, one per main loop
   * iteration, below the priority of D-Bus calls (handle_history()) */
  GQueue            history_pages;     /* HistoryPage */
  guint             history_source;

  /* GET /v1/host */
  char             *state_directory; /* NULL: found from the open state database */
  GList            *host_waiters;    /* HostWaiter: paused until the CPU sample */
  guint             host_sample_id;
  gboolean          host_cpu_known;
  guint64           host_busy, host_total;  /* the first CPU sample */
};

/* An agent's episodes, for the per-agent counters of /metrics: kept from
 * the monitor's signals (O(1) each), forgotten when the agent is removed. */
typedef struct {
  guint64  stale;      /* stale episodes */
  guint64  timeouts;
  gboolean in_stale;   /* the current stale episode is counted */
} AgentCounts;

enum {
  PROP_0,
  PROP_LISTEN_PROBLEM,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (HbHttp, hb_http, G_TYPE_OBJECT)

/* ------------------------------------------------------------------ */
/* JSON text                                                           */

/* @value as the shortest decimal text that reads back as the same double
 * (json-glib writes every double with 17 significant digits, so 6.2 came
 * out as 6.2000000000000002). */
static void
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

static void
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
static void
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
static char *
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
static void
warn_cap (HbHttp     *self,
          const char *what)
{
  gint64 now = g_get_monotonic_time ();

  if (self->cap_warned_at != 0 && now - self->cap_warned_at < 60 * G_USEC_PER_SEC)
    return;
  self->cap_warned_at = now;
  g_message ("HTTP: %s", what);
}


static void
send_json (SoupServerMessage *msg,
           guint              status,
           JsonNode          *node)
{
  gsize length;
  char *text = json_to_data (node, &length);

  soup_server_message_set_status (msg, status, status == STATUS_TOO_MANY_REQUESTS ? "Too Many Requests" : NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, text, length);
}

/* {"error": {"code": @status, "message": @message}} as text */
static char *
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

static void
send_error (SoupServerMessage *msg,
            guint              status,
            const char        *format,
            ...) G_GNUC_PRINTF (3, 4);

static void
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
static void
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
static GQuark
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
static GQuark
stream_quark (void)
{
  return g_quark_from_static_string ("hb-http-stream");
}

static void
mark_caller_change (SoupServerMessage *msg)
{
  g_object_set_qdata (G_OBJECT (msg), caller_change_quark (), GINT_TO_POINTER (1));
}

/* ------------------------------------------------------------------ */
/* Agents as JSON                                                      */

static void
add_member_string (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, value ? value : "");
}

static void
add_member_int (JsonBuilder *b, const char *name, gint64 value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, value);
}

/* The D-Bus GetAgent record (hb_agent_record()) as JSON. */
static JsonNode *
agent_to_json (HbHttp         *self,
               HeartbeatAgent *agent)
{
  g_autoptr(GVariant) record = g_variant_ref_sink (hb_agent_record (self->monitor, self->units, agent));

  return hb_json_from_variant (record);
}

/* An agent's history (heartbeat_agent_get_history()) as a JSON array of
 * {"at-usec", "state"}, oldest first, appended to @out as text: no
 * JsonBuilder tree to build, walk and free per agent on the main loop. */
static void
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
static JsonNode *
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
static GVariant *
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

static gboolean
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

static gboolean
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

static gboolean
token_matches (const char *a,
               const char *b)
{
  gsize la = strlen (a), lb = strlen (b);
  guint8 diff = la != lb;

  /* constant time in the length of the presented token */
  for (gsize i = 0; i < la; i++)
    diff |= (guint8) (a[i] ^ b[i % MAX (lb, 1)]);
  return diff == 0;
}

/* Sends 401 and returns FALSE unless the request may write at all;
 * sets *privileged when a token grants changing any agent. */
static gboolean
may_write (HbHttp            *self,
           SoupServerMessage *msg,
           gboolean          *privileged)
{
  const char *header;

  *privileged = FALSE;
  if (self->tokens == NULL)
    return TRUE;

  header = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Authorization");
  if (header && g_ascii_strncasecmp (header, "Bearer ", 7) == 0)
    for (guint i = 0; i < self->tokens->len; i++)
      if (token_matches (header + 7, g_ptr_array_index (self->tokens, i)))
        {
          *privileged = TRUE;
          return TRUE;
        }

  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "WWW-Authenticate", "Bearer realm=\"heartbeatd\"");
  send_error (msg, SOUP_STATUS_UNAUTHORIZED, "Writes need “Authorization: Bearer <token>” with a configured token");
  return FALSE;
}

/* Sends 403 and returns FALSE if HTTP may not change @agent. */
static gboolean
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
static HeartbeatAgent *
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

/* A beat read from a request body, every part of it checked. */
typedef struct {
  HeartbeatBeatDetails details;
  GVariant            *metadata;
} Beat;

static void
beat_clear (Beat *beat)
{
  g_clear_pointer (&beat->metadata, g_variant_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Beat, beat_clear)

/* Reads and checks everything of a beat before anything is changed; sends
 * 400 and returns FALSE if any of it is wrong. */
static gboolean
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

/* POST /heartbeat: {"run_id": …, "status"?: …, anything else → metadata}.
 * Everything is checked before a new agent is registered, so a refused
 * request announces nothing. */
static void
handle_heartbeat (HbHttp            *self,
                  SoupServerMessage *msg,
                  gboolean           privileged)
{
  static const char *const skip[] = { "run_id", "status", NULL };
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(JsonNode) body = read_object (msg, FALSE);
  g_autoptr(GError) error = NULL;
  g_auto(Beat) beat = { { 0 } };
  JsonObject *object = body ? json_node_get_object (body) : NULL;
  HeartbeatAgentOptions options = { 0 };
  const char *run_id = NULL;
  HeartbeatAgent *agent;
  gboolean created;

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

  agent = heartbeat_monitor_lookup (self->monitor, run_id);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "ok");
  json_builder_add_boolean_value (b, TRUE);
  add_member_string (b, "run_id", run_id);
  add_member_string (b, "state", heartbeat_agent_state_to_string (heartbeat_agent_get_state (agent)));
  json_builder_set_member_name (b, "registered");
  json_builder_add_boolean_value (b, created);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  send_json (msg, SOUP_STATUS_OK, root);
}

/* POST /event: any object; "type" (or "event") names it. */
static void
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

/* PUT /v1/agents/{id} */
static void
handle_put_agent (HbHttp            *self,
                  SoupServerMessage *msg,
                  const char        *id,
                  gboolean           privileged)
{
  g_autoptr(GVariant) metadata = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(JsonNode) body = read_object (msg, TRUE);
  JsonObject *object = body ? json_node_get_object (body) : NULL;
  HeartbeatAgentOptions options = { 0 };
  HeartbeatAgent *agent;
  gboolean created;
  static const char *const known[] = { "task-id", "stale-after-usec", "timeout-after-usec", "metadata", NULL };
  g_autoptr(GList) members = NULL;

  if (object == NULL)
    return;
  members = json_object_get_members (object);
  for (GList *l = members; l; l = l->next)
    if (!g_strv_contains (known, l->data))
      {
        send_error (msg, SOUP_STATUS_BAD_REQUEST, "Unknown member “%s” (known: task-id, stale-after-usec, "
                    "timeout-after-usec, metadata)", (const char *) l->data);
        return;
      }
  if (!get_optional_string (msg, object, "task-id", &options.task_id) ||
      !get_optional_usec (msg, object, "stale-after-usec", &options.stale_after_usec) ||
      !get_optional_usec (msg, object, "timeout-after-usec", &options.timeout_after_usec))
    return;
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

/* DELETE /v1/agents/{id}, POST …/beat, POST …/idle */
static void
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
static void
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

  if (!read_page_query (msg, params, &limit, &after))
    return;
  agents = agents_after (self, after, &i);

  /* written agent by agent: no tree of the whole page is built */
  out = g_string_new ("{\"agents\":[");
  for (; i < agents->len && n < limit && (n == 0 || out->len < self->page_bytes); i++, n++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);
      g_autoptr(JsonNode) node = agent_to_json (self, agent);

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

static void     respond_compressible (SoupServerMessage *msg,
                                      const char        *content_type,
                                      GString           *out);
static void     account_answer       (HbHttp            *self,
                                      SoupServerMessage *msg);

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
static void
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
static void
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

static char *
iso8601 (gint64 realtime_usec)
{
  g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc (realtime_usec / G_USEC_PER_SEC);
  g_autoptr(GDateTime) precise = t ? g_date_time_add (t, realtime_usec % G_USEC_PER_SEC) : NULL;

  return precise ? g_date_time_format (precise, "%Y-%m-%dT%H:%M:%S.%fZ") : g_strdup ("");
}

static void
handle_health (HbHttp            *self,
               SoupServerMessage *msg,
               gboolean           privileged)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  guint counts[HEARTBEAT_AGENT_N_STATES] = { 0 };

  heartbeat_monitor_get_state_counts (self->monitor, counts);
  json_builder_begin_object (b);
  add_member_string (b, "status", !heartbeat_monitor_get_running (self->monitor) ? "stopped"
                                  : self->problem ? "degraded" : "ok");
  json_builder_set_member_name (b, "problem");
  if (self->problem)
    json_builder_add_string_value (b, self->problem);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "running");
  json_builder_add_boolean_value (b, heartbeat_monitor_get_running (self->monitor));
  add_member_int (b, "agents", heartbeat_monitor_get_n_agents (self->monitor));
  json_builder_set_member_name (b, "states");
  json_builder_begin_object (b);
  for (guint s = 0; s < HEARTBEAT_AGENT_N_STATES; s++)
    add_member_int (b, heartbeat_agent_state_to_string (s), counts[s]);
  json_builder_end_object (b);
  add_member_string (b, "version", self->version);
  add_member_int (b, "started-at-usec", hb_host_process_started_at ());
  add_member_int (b, "event-clients", self->n_clients);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  send_json (msg, SOUP_STATUS_OK, root);
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
static void
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

/* GET /runs: id → {state, status, last_activity, progress} */
static void
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
static void
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
static void
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

/* ------------------------------------------------------------------ */
/* Prometheus                                                          */

static void
append_label (GString *out, const char *value)
{
  for (const char *p = value; *p; p++)
    {
      if (*p == '\\' || *p == '"')
        g_string_append_c (out, '\\');
      if (*p == '\n')
        g_string_append (out, "\\n");
      else
        g_string_append_c (out, *p);
    }
}

/* @usec as exact decimal seconds: 300, 0.4, 1700000000.123456 */
static void
append_seconds (GString *out, gint64 usec)
{
  guint64 magnitude = usec < 0 ? (guint64) -(usec + 1) + 1 : (guint64) usec;
  guint64 fraction = magnitude % G_USEC_PER_SEC;

  g_string_append_printf (out, "%s%" G_GUINT64_FORMAT, usec < 0 ? "-" : "", magnitude / G_USEC_PER_SEC);
  if (fraction)
    {
      char digits[8];
      int end = 6;

      g_snprintf (digits, sizeof digits, "%06" G_GUINT64_FORMAT, fraction);
      while (end > 0 && digits[end - 1] == '0')
        end--;
      g_string_append_c (out, '.');
      g_string_append_len (out, digits, end);
    }
}

static void
append_family (GString *out, const char *name, const char *type, const char *help)
{
  g_string_append_printf (out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* "NAME{agent="ID"": the caller closes the labels */
static void
append_agent_series (GString *out, const char *name, HeartbeatAgent *agent)
{
  g_string_append (out, name);
  g_string_append (out, "{agent=\"");
  append_label (out, heartbeat_agent_get_id (agent));
  g_string_append_c (out, '"');
}

/* A declared agent that never beat has no last activity (the monitor
 * counts its quiet time from the daemon's start). */
static gboolean
never_beat (HeartbeatAgent *agent)
{
  return heartbeat_agent_is_declared (agent) && heartbeat_agent_get_beats (agent) == 0 &&
         heartbeat_agent_get_state (agent) == HEARTBEAT_AGENT_STATE_NO_HEARTBEAT;
}

/* The exposition, as the contract of issue 14 has it: per agent, every
 * state as its own 0/1 series (6), info with the task, the last activity
 * (none for a declared agent that never beat), both thresholds, the idle
 * flag and three counters: at most 14 series per agent. */
static GString *
metrics_text (HbHttp *self)
{
  g_autoptr(GPtrArray) agents = heartbeat_monitor_list_agents (self->monitor);
  guint counts[HEARTBEAT_AGENT_N_STATES] = { 0 };
  GString *out = g_string_sized_new (2048 + (gsize) agents->len * 1024);
  /* monitor time to wall clock, once for the whole scrape */
  gint64 realtime_offset = heartbeat_monitor_to_realtime (self->monitor, 0);

  heartbeat_monitor_get_state_counts (self->monitor, counts);
  append_family (out, "heartbeat_agents", "gauge", "Agents by state.");
  for (guint s = 0; s < HEARTBEAT_AGENT_N_STATES; s++)
    g_string_append_printf (out, "heartbeat_agents{state=\"%s\"} %u\n", heartbeat_agent_state_to_string (s), counts[s]);

  append_family (out, "heartbeat_agent_state", "gauge",
                 "The state of each agent: 1 for its current state, 0 for the others.");
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);
      HeartbeatAgentState state = heartbeat_agent_get_state (agent);

      for (guint s = 0; s < HEARTBEAT_AGENT_N_STATES; s++)
        {
          append_agent_series (out, "heartbeat_agent_state", agent);
          g_string_append_printf (out, ",state=\"%s\"} %d\n", heartbeat_agent_state_to_string (s), s == (guint) state);
        }
    }

  append_family (out, "heartbeat_agent_info", "gauge", "Each agent, with its task (empty if none); always 1.");
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);
      const char *task = heartbeat_agent_get_task_id (agent);

      append_agent_series (out, "heartbeat_agent_info", agent);
      g_string_append (out, ",task=\"");
      append_label (out, task ? task : "");
      g_string_append (out, "\"} 1\n");
    }

  append_family (out, "heartbeat_agent_last_activity_timestamp_seconds", "gauge",
                 "When each agent was last active (a beat, its registration or an idle mark); "
                 "none for a declared agent that never beat.");
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);

      if (never_beat (agent))
        continue;
      append_agent_series (out, "heartbeat_agent_last_activity_timestamp_seconds", agent);
      g_string_append (out, "} ");
      append_seconds (out, realtime_offset + heartbeat_agent_get_last_activity_at (agent));
      g_string_append_c (out, '\n');
    }

  append_family (out, "heartbeat_agent_stale_threshold_seconds", "gauge",
                 "How long each agent may be quiet before it is stale.");
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);

      append_agent_series (out, "heartbeat_agent_stale_threshold_seconds", agent);
      g_string_append (out, "} ");
      append_seconds (out, heartbeat_agent_get_stale_after (agent));
      g_string_append_c (out, '\n');
    }

  append_family (out, "heartbeat_agent_timeout_threshold_seconds", "gauge",
                 "How long each agent's run may last before it times out.");
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);

      append_agent_series (out, "heartbeat_agent_timeout_threshold_seconds", agent);
      g_string_append (out, "} ");
      append_seconds (out, heartbeat_agent_get_timeout_after (agent));
      g_string_append_c (out, '\n');
    }

  append_family (out, "heartbeat_agent_idle", "gauge", "Whether each agent is marked idle (1) or not (0).");
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);

      append_agent_series (out, "heartbeat_agent_idle", agent);
      g_string_append_printf (out, "} %d\n", heartbeat_agent_is_idle (agent) ? 1 : 0);
    }

  append_family (out, "heartbeat_agent_beats_total", "counter",
                 "Beats of each agent since it was registered.");
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);

      append_agent_series (out, "heartbeat_agent_beats_total", agent);
      g_string_append_printf (out, "} %" G_GUINT64_FORMAT "\n", heartbeat_agent_get_beats (agent));
    }

  append_family (out, "heartbeat_agent_stale_total", "counter",
                 "Stale episodes of each agent since the daemon started.");
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);
      AgentCounts *c = g_hash_table_lookup (self->agent_counts, heartbeat_agent_get_id (agent));

      append_agent_series (out, "heartbeat_agent_stale_total", agent);
      g_string_append_printf (out, "} %" G_GUINT64_FORMAT "\n", c ? c->stale : 0);
    }

  append_family (out, "heartbeat_agent_timeouts_total", "counter",
                 "Timeouts of each agent since the daemon started.");
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);
      AgentCounts *c = g_hash_table_lookup (self->agent_counts, heartbeat_agent_get_id (agent));

      append_agent_series (out, "heartbeat_agent_timeouts_total", agent);
      g_string_append_printf (out, "} %" G_GUINT64_FORMAT "\n", c ? c->timeouts : 0);
    }

  g_string_append_printf (out,
                          "# HELP heartbeat_beats_total Beats received since the daemon started.\n"
                          "# TYPE heartbeat_beats_total counter\nheartbeat_beats_total %" G_GUINT64_FORMAT "\n"
                          "# HELP heartbeat_stale_total Stale warnings since the daemon started.\n"
                          "# TYPE heartbeat_stale_total counter\nheartbeat_stale_total %" G_GUINT64_FORMAT "\n"
                          "# HELP heartbeat_timeouts_total Agents timed out since the daemon started.\n"
                          "# TYPE heartbeat_timeouts_total counter\nheartbeat_timeouts_total %" G_GUINT64_FORMAT "\n"
                          "# HELP heartbeat_recoveries_total Recoveries from stale since the daemon started.\n"
                          "# TYPE heartbeat_recoveries_total counter\nheartbeat_recoveries_total %" G_GUINT64_FORMAT "\n",
                          self->beats_total, self->stale_total, self->timeouts_total, self->recoveries_total);
  append_family (out, "heartbeat_build_info", "gauge",
                 "The version of heartbeatd and the name of its machine; always 1.");
  g_string_append (out, "heartbeat_build_info{version=\"");
  append_label (out, self->version);
  g_string_append (out, "\",hostname=\"");
  append_label (out, g_get_host_name ());
  g_string_append (out, "\"} 1\n");
  return out;
}

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
static void
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

static void
handle_metrics (HbHttp            *self,
                SoupServerMessage *msg,
                gboolean           privileged)
{
  respond_compressible (msg, "text/plain; version=0.0.4; charset=utf-8", metrics_text (self));
}

/* ------------------------------------------------------------------ */
/* Server-Sent Events                                                  */

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

/* @agent's counts, created on its first episode */
static AgentCounts *
agent_counts (HbHttp         *self,
              HeartbeatAgent *agent)
{
  const char *id = heartbeat_agent_get_id (agent);
  AgentCounts *counts = g_hash_table_lookup (self->agent_counts, id);

  if (counts == NULL)
    {
      counts = g_new0 (AgentCounts, 1);
      g_hash_table_insert (self->agent_counts, g_strdup (id), counts);
    }
  return counts;
}

static void
on_unregistered (HeartbeatMonitor *monitor, HeartbeatAgent *agent,
                 HeartbeatUnregisterReason reason, HbHttp *self)
{
  g_hash_table_remove (self->agent_counts, heartbeat_agent_get_id (agent));
  broadcast_agent (self, "unregistered", agent, TRUE, "reason",
                   heartbeat_unregister_reason_to_string (reason), NULL, NULL, NULL, 0);
}

static void
on_stale (HeartbeatMonitor *monitor, HeartbeatAgent *agent, gint64 idle, HbHttp *self)
{
  AgentCounts *counts = agent_counts (self, agent);

  /* warned again and again in one episode without stale-warning-only-once */
  self->stale_total++;
  if (!counts->in_stale)
    {
      counts->stale++;
      counts->in_stale = TRUE;
    }
  broadcast_agent (self, "stale", agent, FALSE, NULL, NULL, NULL, NULL, "idle-usec", idle);
}

static void
on_timed_out (HeartbeatMonitor *monitor, HeartbeatAgent *agent, gint64 running, HbHttp *self)
{
  self->timeouts_total++;
  agent_counts (self, agent)->timeouts++;
  broadcast_agent (self, "timed-out", agent, FALSE, NULL, NULL, NULL, NULL, "running-usec", running);
}

static void
on_recovered (HeartbeatMonitor *monitor, HeartbeatAgent *agent, HbHttp *self)
{
  self->recoveries_total++;
  broadcast_agent (self, "recovered", agent, FALSE, NULL, NULL, NULL, NULL, NULL, 0);
}

static void
on_state_changed (HeartbeatMonitor *monitor, HeartbeatAgent *agent,
                  HeartbeatAgentState old_state, HeartbeatAgentState new_state, HbHttp *self)
{
  if (old_state == HEARTBEAT_AGENT_STATE_STALE && new_state != HEARTBEAT_AGENT_STATE_STALE)
    {
      AgentCounts *counts = g_hash_table_lookup (self->agent_counts, heartbeat_agent_get_id (agent));

      if (counts)
        counts->in_stale = FALSE;   /* the episode is over */
    }
  broadcast_agent (self, "state", agent, FALSE, "old-state", heartbeat_agent_state_to_string (old_state),
                   "new-state", heartbeat_agent_state_to_string (new_state), NULL, 0);
}

static void
on_beat (HeartbeatMonitor *monitor, HeartbeatAgent *agent, HbHttp *self)
{
  self->beats_total++;
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
  /* an idle daemon does not wake up for nobody */
  if (self->n_clients == 0)
    g_clear_handle_id (&self->keepalive_id, g_source_remove);
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

/* The uid that owns the client's end of a loopback connection, asked of
 * the kernel with one exact sock_diag lookup (NETLINK_SOCK_DIAG,
 * SOCK_DIAG_BY_FAMILY without NLM_F_DUMP: a hash lookup, as ss(8) does
 * for one socket): the TCP socket whose local address is our remote one
 * and whose remote address is our local one. /proc/net/tcp would tell the
 * same, but the kernel writes it by walking its whole table of
 * connections, some 5 ms here: too much for every new connection. In a
 * user namespace (PrivateUsers=) a uid it does not map reads as the
 * overflow uid. */
static gboolean
loopback_peer_uid (GSocketAddress *local,
                   GSocketAddress *remote,
                   guint          *uid)
{
  struct {
    struct nlmsghdr         header;
    struct inet_diag_req_v2 request;
  } query = { 0 };
  union {
    struct nlmsghdr header;
    char            bytes[8192];
  } answer;
  struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
  GInetAddress *theirs, *ours;
  const struct nlmsghdr *h;
  gsize size;
  gssize got;
  int fd;

  if (!G_IS_INET_SOCKET_ADDRESS (local) || !G_IS_INET_SOCKET_ADDRESS (remote))
    return FALSE;
  theirs = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote));
  ours = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (local));
  size = g_inet_address_get_native_size (theirs);
  if (!g_inet_address_get_is_loopback (theirs) || size != g_inet_address_get_native_size (ours) ||
      size > sizeof query.request.id.idiag_src)
    return FALSE;

  query.header.nlmsg_len = sizeof query;
  query.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  query.header.nlmsg_flags = NLM_F_REQUEST;
  query.request.sdiag_family = g_inet_address_get_family (theirs) == G_SOCKET_FAMILY_IPV6 ? AF_INET6 : AF_INET;
  query.request.sdiag_protocol = IPPROTO_TCP;
  query.request.idiag_states = ~0U;
  /* the client's socket: its source is our remote end */
  query.request.id.idiag_sport = htons (g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (remote)));
  query.request.id.idiag_dport = htons (g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local)));
  memcpy (query.request.id.idiag_src, g_inet_address_to_bytes (theirs), size);
  memcpy (query.request.id.idiag_dst, g_inet_address_to_bytes (ours), size);
  query.request.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  query.request.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

  fd = socket (AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0)
    return FALSE;
  if (sendto (fd, &query, sizeof query, 0, (struct sockaddr *) &kernel, sizeof kernel) != (gssize) sizeof query)
    {
      close (fd);
      return FALSE;
    }
  do
    got = recv (fd, answer.bytes, sizeof answer.bytes, 0);
  while (got < 0 && errno == EINTR);
  close (fd);
  if (got < 0)
    return FALSE;
  /* one message: the socket (or NLMSG_ERROR, ENOENT, if it has gone) */
  h = &answer.header;
  if ((gsize) got < NLMSG_LENGTH (sizeof (struct inet_diag_msg)) || h->nlmsg_len > (gsize) got ||
      h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH (sizeof (struct inet_diag_msg)))
    return FALSE;
  *uid = ((const struct inet_diag_msg *) NLMSG_DATA (h))->idiag_uid;
  return TRUE;
}

/* Who is at the other end of @socket, for the per-peer limits of
 * connections and event streams: on loopback every local process has the
 * same address (and any 127.0.0.0/8 one), so the uid of the client's
 * socket, when it can be found; else the address. */
static char *
socket_peer (GSocket *socket)
{
  g_autoptr(GSocketAddress) local = g_socket_get_local_address (socket, NULL);
  g_autoptr(GSocketAddress) remote = g_socket_get_remote_address (socket, NULL);
  guint uid;

  if (local && remote && loopback_peer_uid (local, remote, &uid))
    return g_strdup_printf ("uid %u", uid);
  if (G_IS_INET_SOCKET_ADDRESS (remote))
    return g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)));
  return g_strdup ("an unknown address");
}

/* Whose stream @msg opens: the peer its connection was counted for. */
static char *
event_peer (HbHttp            *self,
            SoupServerMessage *msg)
{
  GSocket *socket = soup_server_message_get_socket (msg);
  const char *peer = socket ? g_hash_table_lookup (self->live, socket) : NULL;

  return peer ? g_strdup (peer) : socket ? socket_peer (socket) : g_strdup ("an unknown address");
}

/* GET /v1/events. At most MAX_EVENT_CLIENTS streams, and at most
 * MAX_EVENT_CLIENTS_PER_PEER for one peer (event_peer(): a local uid, or
 * a remote address), so that one local user's streams do not lock out
 * another's dashboard. */
static void
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
  self->n_clients++;
  if (self->keepalive_id == 0)
    self->keepalive_id = g_timeout_add_seconds (KEEPALIVE_SECONDS, on_keepalive, self);
  g_signal_connect (msg, "wrote-body-data", G_CALLBACK (on_client_wrote), client);
  g_signal_connect (msg, "finished", G_CALLBACK (on_client_finished), client);
  client_send (client, "retry: 2000\n\n");
}

/* ------------------------------------------------------------------ */
/* Routing                                                             */

static void
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

/* Whether the request's method is one of @allowed ("GET" or "GET, PUT,
 * DELETE"; HEAD is allowed wherever GET is); sends 405 if not. */
static gboolean
method_is (SoupServerMessage *msg,
           const char        *allowed)
{
  const char *method = soup_server_message_get_method (msg);
  g_auto(GStrv) methods = g_strsplit (allowed, ", ", -1);
  g_autofree char *allow = NULL;

  if (g_strv_contains ((const char *const *) methods, method) ||
      (strcmp (method, "HEAD") == 0 && g_strv_contains ((const char *const *) methods, "GET")))
    return TRUE;
  allow = g_str_has_prefix (allowed, "GET") ? g_strconcat ("GET, HEAD", allowed + 3, NULL) : g_strdup (allowed);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow", allow);
  send_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "%s is not allowed here (allowed: %s)", method, allow);
  return FALSE;
}

typedef void (*RouteFunc) (HbHttp *self, SoupServerMessage *msg, gboolean privileged);

/* The endpoints with a fixed path; the ones with an id are below. */
static const struct {
  const char *path;
  const char *method;
  RouteFunc   handle;
} routes[] = {
  { "/", "GET", handle_dashboard },
  { "/health", "GET", handle_health },
  { "/runs", "GET", handle_runs },
  { "/heartbeat", "POST", handle_heartbeat },
  { "/event", "POST", handle_event },
  { "/api/heartbeat/status", "GET", handle_gateway_status },
  { "/metrics", "GET", handle_metrics },
  { "/v1/events", "GET", handle_events },
  { "/v1/agents", "GET", handle_agents },
  { "/v1/history", "GET", handle_history },
  { "/v1/host", "GET", handle_host },
};

static void
route (HbHttp            *self,
       SoupServerMessage *msg,
       const char        *path,
       gboolean           privileged)
{
  const char *method = soup_server_message_get_method (msg);
  g_auto(GStrv) parts = NULL;
  guint n;

  for (gsize i = 0; i < G_N_ELEMENTS (routes); i++)
    if (strcmp (path, routes[i].path) == 0)
      {
        if (method_is (msg, routes[i].method))
          routes[i].handle (self, msg, privileged);
        return;
      }

  /* /runs/{id}, /v1/agents/{id}, /v1/agents/{id}/beat|idle */
  parts = g_strsplit (path + 1, "/", -1);
  n = g_strv_length (parts);
  if (n == 2 && strcmp (parts[0], "runs") == 0)
    {
      if (method_is (msg, "GET"))
        handle_run (self, msg, parts[1]);
      return;
    }
  if (n >= 3 && strcmp (parts[0], "v1") == 0 && strcmp (parts[1], "agents") == 0 && *parts[2])
    {
      const char *id = parts[2];

      if (n == 3)
        {
          if (!method_is (msg, "GET, PUT, DELETE"))
            return;
          if (strcmp (method, "PUT") == 0)
            handle_put_agent (self, msg, id, privileged);
          else if (strcmp (method, "DELETE") == 0)
            handle_agent_change (self, msg, id, "delete", privileged);
          else
            {
              HeartbeatAgent *agent = heartbeat_monitor_lookup (self->monitor, id);
              g_autoptr(JsonNode) node = agent ? agent_to_json (self, agent) : NULL;

              if (node)
                send_json (msg, SOUP_STATUS_OK, node);
              else
                send_error (msg, SOUP_STATUS_NOT_FOUND, "No agent with id “%s”", id);
            }
          return;
        }
      if (n == 4 && (strcmp (parts[3], "beat") == 0 || strcmp (parts[3], "idle") == 0))
        {
          if (method_is (msg, "POST"))
            handle_agent_change (self, msg, id, parts[3], privileged);
          return;
        }
      if (n == 4 && strcmp (parts[3], "history") == 0)
        {
          if (method_is (msg, "GET"))
            handle_agent_history (self, msg, id);
          return;
        }
    }
  send_error (msg, SOUP_STATUS_NOT_FOUND, "No such endpoint: %s", path);
}

/* A request that changed something, answered once it is saved. */
typedef struct {
  SoupServerMessage *msg;
  gulong             finished_id;
  gboolean           finished;   /* the client went away meanwhile */
} HeldAnswer;

static void
on_held_finished (SoupServerMessage *msg,
                  HeldAnswer        *held)
{
  held->finished = TRUE;
}

static void
on_saved (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  HeldAnswer *held = user_data;
  g_autoptr(GError) error = NULL;

  if (!heartbeat_monitor_sync_finish (HEARTBEAT_MONITOR (source), result, &error) &&
      g_object_get_qdata (G_OBJECT (held->msg), caller_change_quark ()) != NULL &&
      !held->finished)
    send_monitor_error (held->msg, error);
  g_signal_handler_disconnect (held->msg, held->finished_id);
  if (!held->finished)
    soup_server_message_unpause (held->msg);
  g_object_unref (held->msg);
  g_free (held);
}

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
static gboolean
budget_spent (HbHttp     *self,
              const char *path)
{
  static const char *const listings[] = { "/v1/agents", "/v1/history", "/runs", "/api/heartbeat/status", "/metrics", NULL };

  return self->responses_pending >= self->response_budget && g_strv_contains (listings, path);
}

static void
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
static void
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

static void
on_request (SoupServer        *server,
            SoupServerMessage *msg,
            const char        *path,
            GHashTable        *query,
            gpointer           user_data)
{
  HbHttp *self = user_data;
  const char *method = soup_server_message_get_method (msg);
  gboolean writing = strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0;
  gboolean privileged = FALSE;
  HeldAnswer *held;

  if (writing && !may_write (self, msg, &privileged))
    return;
  if (!writing && budget_spent (self, path))
    {
      refuse_answer (self, msg);
      return;
    }
  route (self, msg, path, privileged);
  /* a write's answer is one agent, and its change is made: never 503 */
  if (!writing)
    account_answer (self, msg);
  if (!writing || heartbeat_monitor_is_saved (self->monitor))
    return;

  /* Answered once what it changed is saved, in the order requests came
   * (see heartbeat_monitor_sync_async()); a registration, deletion or
   * idle mark the store could not save was taken back: 503. */
  held = g_new0 (HeldAnswer, 1);
  held->msg = g_object_ref (msg);
  held->finished_id = g_signal_connect (msg, "finished", G_CALLBACK (on_held_finished), held);
  soup_server_message_pause (msg);
  heartbeat_monitor_sync_async (self->monitor, NULL, on_saved, held);
}

/* ------------------------------------------------------------------ */
/* Before a body is read                                               */

/* A request refused before its body is read: libsoup would read the body
 * (all of it, whatever its announced length) before sending any answer,
 * so the connection is taken from it, the answer written, the sending
 * side shut, and what the client still sends read and dropped for at most
 * LINGER_MS (so that it sees the answer, not a reset), then closed. */
typedef struct {
  GIOStream    *stream;
  GSocket      *socket;
  GCancellable *cancellable;
  char         *response;
  gsize         length;
  gsize         drained;
  guint         timeout_id;
  char          buffer[16384];
} Refusal;

static void
refusal_free (Refusal *r)
{
  g_clear_handle_id (&r->timeout_id, g_source_remove);
  g_io_stream_close (r->stream, NULL, NULL);
  g_object_unref (r->stream);
  g_clear_object (&r->socket);
  g_object_unref (r->cancellable);
  g_free (r->response);
  g_free (r);
}

static gboolean
on_refusal_timeout (gpointer user_data)
{
  Refusal *r = user_data;

  r->timeout_id = 0;
  g_cancellable_cancel (r->cancellable);   /* the pending operation ends and frees it */
  return G_SOURCE_REMOVE;
}

static void
on_refusal_drained (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Refusal *r = user_data;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, NULL);

  if (n <= 0 || (r->drained += (gsize) n) > LINGER_BYTES)
    {
      refusal_free (r);
      return;
    }
  g_input_stream_read_async (G_INPUT_STREAM (source), r->buffer, sizeof r->buffer, G_PRIORITY_LOW,
                             r->cancellable, on_refusal_drained, r);
}

static void
on_refusal_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Refusal *r = user_data;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, NULL) ||
      r->socket == NULL || !g_socket_shutdown (r->socket, FALSE, TRUE, NULL))
    {
      refusal_free (r);
      return;
    }
  g_input_stream_read_async (g_io_stream_get_input_stream (r->stream), r->buffer, sizeof r->buffer,
                             G_PRIORITY_LOW, r->cancellable, on_refusal_drained, r);
}

static void conn_forget (HbHttp *self, GSocket *socket);

static void
refuse_early (HbHttp            *self,
              SoupServerMessage *msg,
              guint              status,
              const char        *header,
              const char        *header_value,
              const char        *format,
              ...) G_GNUC_PRINTF (6, 7);

static void
refuse_early (HbHttp            *self,
              SoupServerMessage *msg,
              guint              status,
              const char        *header,
              const char        *header_value,
              const char        *format,
              ...)
{
  g_autofree char *message = NULL;
  g_autofree char *body = NULL;
  g_autofree char *date = NULL;
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  GSocket *socket = soup_server_message_get_socket (msg);
  GString *response = g_string_new (NULL);
  gsize length;
  Refusal *r;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  body = error_text (status, message, &length);
  date = soup_date_time_to_string (now, SOUP_DATE_HTTP);

  g_string_append_printf (response, "HTTP/1.%c %u %s\r\n",
                          soup_server_message_get_http_version (msg) == SOUP_HTTP_1_0 ? '0' : '1', status,
                          status == STATUS_TOO_MANY_REQUESTS ? "Too Many Requests" : soup_status_get_phrase (status));
  g_string_append_printf (response, "Date: %s\r\nServer: heartbeatd\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\nConnection: close\r\n", date, length);
  if (header)
    g_string_append_printf (response, "%s: %s\r\n", header, header_value);
  g_string_append (response, "\r\n");
  if (strcmp (soup_server_message_get_method (msg), "HEAD") != 0)
    g_string_append_len (response, body, (gssize) length);

  r = g_new0 (Refusal, 1);
  r->socket = socket ? g_object_ref (socket) : NULL;
  r->cancellable = g_cancellable_new ();
  r->length = response->len;
  r->response = g_string_free (response, FALSE);
  if (socket)
    conn_forget (self, socket);
  /* @msg is not to be touched after this */
  r->stream = soup_server_message_steal_connection (msg);
  if (r->stream == NULL)
    {
      g_clear_object (&r->socket);
      g_object_unref (r->cancellable);
      g_free (r->response);
      g_free (r);
      return;
    }
  r->timeout_id = g_timeout_add (LINGER_MS, on_refusal_timeout, r);
  g_output_stream_write_all_async (g_io_stream_get_output_stream (r->stream), r->response, r->length,
                                   G_PRIORITY_DEFAULT, r->cancellable, on_refusal_written, r);
}

/* The value of the single Content-Length header, strictly: digits only,
 * no overflow, one value. Returns FALSE if it is malformed; *present says
 * whether there is one. */
static gboolean
get_content_length (SoupMessageHeaders *headers,
                    gboolean           *present,
                    guint64            *value)
{
  SoupMessageHeadersIter iter;
  const char *name, *text;
  guint n = 0;

  *present = FALSE;
  *value = 0;
  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &text))
    {
      if (g_ascii_strcasecmp (name, "Content-Length") != 0)
        continue;
      if (++n > 1 || *text == '\0')
        return FALSE;
      *present = TRUE;
      for (const char *p = text; *p; p++)
        {
          if (!g_ascii_isdigit (*p) || *value > (G_MAXUINT64 - (guint64) (*p - '0')) / 10)
            return FALSE;
          *value = *value * 10 + (guint64) (*p - '0');
        }
    }
  return TRUE;
}

/* Whether @host (a Host header) names this server: localhost, 127.0.0.1,
 * [::1] or the bound address, with our port or none. */
static gboolean
host_is_ours (HbHttp     *self,
              const char *host)
{
  g_autofree char *name = NULL;
  g_autoptr(GInetAddress) address = NULL;
  const char *port = NULL;

  if (host[0] == '[')
    {
      const char *end = strchr (host, ']');

      if (end == NULL)
        return FALSE;
      name = g_strndup (host + 1, (gsize) (end - host - 1));
      if (end[1] == ':')
        port = end + 2;
      else if (end[1] != '\0')
        return FALSE;
      address = g_inet_address_new_from_string (name);
      if (address == NULL || g_inet_address_get_family (address) != G_SOCKET_FAMILY_IPV6)
        return FALSE;
    }
  else
    {
      const char *colon = strchr (host, ':');

      name = colon ? g_strndup (host, (gsize) (colon - host)) : g_strdup (host);
      port = colon ? colon + 1 : NULL;
      if (g_ascii_strcasecmp (name, "localhost") != 0)
        {
          address = g_inet_address_new_from_string (name);
          if (address == NULL || g_inet_address_get_family (address) != G_SOCKET_FAMILY_IPV4)
            return FALSE;
        }
    }
  if (port)
    {
      guint64 number;

      if (!g_ascii_string_to_unsigned (port, 10, 1, 65535, &number, NULL) || number != self->port)
        return FALSE;
    }
  if (address == NULL)
    return TRUE;   /* localhost */
  if (self->address && g_inet_address_equal (address, self->address))
    return TRUE;
  {
    g_autoptr(GInetAddress) v4 = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
    g_autoptr(GInetAddress) v6 = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV6);

    return g_inet_address_equal (address, v4) || g_inet_address_equal (address, v6);
  }
}

/* Before a body is read: refuse a foreign Host, a write without a token
 * (when tokens are configured), and a body too large or of unknown size,
 * without reading the body. */
static void
on_request_headers (SoupServer        *server,
                    SoupServerMessage *msg,
                    const char        *path,
                    GHashTable        *query,
                    gpointer           user_data)
{
  HbHttp *self = user_data;
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *method = soup_server_message_get_method (msg);
  /* several Host headers come as one list, which names no host */
  const char *host = soup_message_headers_get_list (headers, "Host");
  gboolean privileged, present;
  guint64 length;

  if (self->check_host &&
      (host ? !host_is_ours (self, host) : soup_server_message_get_http_version (msg) != SOUP_HTTP_1_0))
    {
      refuse_early (self, msg, SOUP_STATUS_MISDIRECTED_REQUEST, NULL, NULL,
                    "This server answers requests for localhost only (Host: localhost:%u), not for “%s”",
                    self->port, host ? host : "");
      return;
    }
  if (strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0 && self->tokens && !may_write (self, msg, &privileged))
    {
      refuse_early (self, msg, SOUP_STATUS_UNAUTHORIZED, "WWW-Authenticate", "Bearer realm=\"heartbeatd\"",
                    "Writes need “Authorization: Bearer <token>” with a configured token");
      return;
    }
  if (soup_message_headers_get_one (headers, "Transfer-Encoding") != NULL)
    {
      refuse_early (self, msg, SOUP_STATUS_LENGTH_REQUIRED, NULL, NULL,
                    "A body needs a Content-Length of at most %d bytes", HB_HTTP_MAX_BODY);
      return;
    }
  if (!get_content_length (headers, &present, &length))
    {
      refuse_early (self, msg, SOUP_STATUS_BAD_REQUEST, NULL, NULL,
                    "The Content-Length must be one decimal number");
      return;
    }
  if (length > HB_HTTP_MAX_BODY)
    {
      refuse_early (self, msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, NULL, NULL,
                    "The body is larger than %d bytes", HB_HTTP_MAX_BODY);
      return;
    }
  switch (soup_message_headers_get_encoding (headers))
    {
    case SOUP_ENCODING_CONTENT_LENGTH:
    case SOUP_ENCODING_NONE:
      break;
    case SOUP_ENCODING_UNRECOGNIZED:
    case SOUP_ENCODING_EOF:
    case SOUP_ENCODING_CHUNKED:
    case SOUP_ENCODING_BYTERANGES:
    default:
      refuse_early (self, msg, SOUP_STATUS_LENGTH_REQUIRED, NULL, NULL,
                    "A body needs a Content-Length of at most %d bytes", HB_HTTP_MAX_BODY);
      break;
    }
}

/* ------------------------------------------------------------------ */
/* Timeouts                                                            */

static void on_conn_socket_gone (gpointer data, GObject *where_the_socket_was);

static void
conn_unwatch (Conn *conn)
{
  if (conn->eof_watch)
    {
      g_source_destroy (conn->eof_watch);
      g_clear_pointer (&conn->eof_watch, g_source_unref);
    }
}

static void
conn_free (gpointer data)
{
  Conn *conn = data;

  g_clear_handle_id (&conn->timeout_id, g_source_remove);
  conn_unwatch (conn);
  if (conn->socket)
    g_object_weak_unref (G_OBJECT (conn->socket), on_conn_socket_gone, conn);
  g_free (conn);
}

static void
on_conn_socket_gone (gpointer  data,
                     GObject  *where_the_socket_was)
{
  Conn *conn = data;

  conn->socket = NULL;
  g_hash_table_remove (conn->http->conns, where_the_socket_was);
}

static void
conn_forget (HbHttp  *self,
             GSocket *socket)
{
  g_hash_table_remove (self->conns, socket);
}

/* An idle connection became readable: the next request (libsoup reads it)
 * or the end of the stream. Debian 12's libsoup 3.2 drops a connection the
 * client closed without closing its socket, so every such connection kept
 * an fd (CLOSE-WAIT) for the daemon's lifetime: a local client could use
 * them all up. The end of the stream is seen here and the socket closed. */
static gboolean
on_conn_readable (GSocket      *socket,
                  GIOCondition  condition,
                  gpointer      user_data)
{
  Conn *conn = user_data;
  HbHttp *self = conn->http;
  char byte;
  gssize n;

  /* Never wait here: libsoup watches the same socket and may have taken
   * what woke us up (a GSocket peek would block on a blocking socket). */
  n = recv (g_socket_get_fd (socket), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0)
    {
      /* a request: libsoup's; request-started arms its timer */
      g_clear_pointer (&conn->eof_watch, g_source_unref);
      return G_SOURCE_REMOVE;
    }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return G_SOURCE_CONTINUE;

  g_debug ("An idle HTTP connection was closed by its client");
  g_clear_pointer (&conn->eof_watch, g_source_unref);
  g_socket_close (socket, NULL);
  g_hash_table_remove (self->conns, socket);
  return G_SOURCE_REMOVE;
}

static gboolean
on_conn_timeout (gpointer user_data)
{
  Conn *conn = user_data;
  HbHttp *self = conn->http;

  conn->timeout_id = 0;
  if (!g_socket_is_closed (conn->socket) && conn->then_ms)
    {
      /* still open after its request: wait for the next one, or for the
       * client to close it */
      conn->timeout_id = g_timeout_add (conn->then_ms, on_conn_timeout, conn);
      conn->then_ms = 0;
      if (conn->eof_watch == NULL)
        {
          conn->eof_watch = g_socket_create_source (conn->socket, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
          g_source_set_callback (conn->eof_watch, (GSourceFunc) G_CALLBACK (on_conn_readable), conn, NULL);
          g_source_attach (conn->eof_watch, g_main_context_get_thread_default ());
        }
      return G_SOURCE_REMOVE;
    }
  if (!g_socket_is_closed (conn->socket))
    {
      g_debug ("Closing an HTTP connection that was too slow or idle for too long");
      /* the client sees the end at once; the fd is closed below when the
       * end comes back, whether libsoup closes it or not */
      g_socket_shutdown (conn->socket, TRUE, TRUE, NULL);
      conn_unwatch (conn);
      conn->eof_watch = g_socket_create_source (conn->socket, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
      g_source_set_callback (conn->eof_watch, (GSourceFunc) G_CALLBACK (on_conn_readable), conn, NULL);
      g_source_attach (conn->eof_watch, g_main_context_get_thread_default ());
      return G_SOURCE_REMOVE;
    }
  g_hash_table_remove (self->conns, conn->socket);
  return G_SOURCE_REMOVE;
}

/* (Re)starts the timer of @socket's connection: shut down in @ms, or,
 * with @then_ms, forgotten if it is closed by then and else shut down
 * @then_ms later. */
static void
conn_arm (HbHttp  *self,
          GSocket *socket,
          guint    ms,
          guint    then_ms)
{
  Conn *conn = g_hash_table_lookup (self->conns, socket);

  if (conn == NULL)
    {
      conn = g_new0 (Conn, 1);
      conn->http = self;
      conn->socket = socket;
      g_object_weak_ref (G_OBJECT (socket), on_conn_socket_gone, conn);
      g_hash_table_insert (self->conns, socket, conn);
    }
  g_clear_handle_id (&conn->timeout_id, g_source_remove);
  conn_unwatch (conn);
  conn->then_ms = then_ms;
  conn->timeout_id = g_timeout_add (ms, on_conn_timeout, conn);
}

static void
on_got_body (SoupServerMessage *msg,
             HbHttp            *self)
{
  GSocket *socket = soup_server_message_get_socket (msg);

  /* the whole request is in: the handler answers (a stream has no
   * timeout; an answer the client does not read is ended by the socket's
   * timeout, see on_request_started()) */
  if (socket)
    conn_forget (self, socket);
}

static void
on_live_socket_gone (gpointer  data,
                     GObject  *where_the_socket_was)
{
  HbHttp *self = data;

  g_hash_table_remove (self->live, where_the_socket_was);
}

/* The connections open now, and in *@from_peer those of @peer: sockets
 * closed meanwhile (libsoup may keep a closed one referenced) are
 * forgotten. */
static guint
count_connections (HbHttp     *self,
                   const char *peer,
                   guint      *from_peer)
{
  GHashTableIter iter;
  gpointer socket, owner;

  *from_peer = 0;
  g_hash_table_iter_init (&iter, self->live);
  while (g_hash_table_iter_next (&iter, &socket, &owner))
    if (g_socket_is_closed (socket))
      {
        g_object_weak_unref (socket, on_live_socket_gone, self);
        g_hash_table_iter_remove (&iter);
      }
    else if (strcmp (owner, peer) == 0)
      (*from_peer)++;
  return g_hash_table_size (self->live);
}

/* A connection over the cap: a short 503 if the socket takes it at once
 * (it is new, its send buffer empty), then closed before libsoup reads
 * anything from it. */
static void
refuse_connection (GSocket    *socket,
                   const char *message)
{
  g_autofree char *body = NULL;
  g_autofree char *response = NULL;
  gsize length;

  body = error_text (SOUP_STATUS_SERVICE_UNAVAILABLE, message, &length);
  response = g_strdup_printf ("HTTP/1.1 503 Service Unavailable\r\nServer: heartbeatd\r\n"
                              "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                              "Retry-After: 1\r\nConnection: close\r\n\r\n%s", length, body);
  g_socket_send_with_blocking (socket, response, strlen (response), FALSE, NULL, NULL);
  g_socket_shutdown (socket, FALSE, TRUE, NULL);
  g_socket_close (socket, NULL);
}

/* A request's first byte, or, the first on a connection, the connection:
 * a connection over HB_HTTP_MAX_CONNECTIONS is closed at once; a new one
 * gets the socket timeout (a read or a write that waits longer fails, and
 * libsoup closes the connection: a client that stops reading its answer
 * loses it, and the memory it held); the headers and the body must arrive
 * within request_timeout. */
static void
on_request_started (SoupServer        *server,
                    SoupServerMessage *msg,
                    HbHttp            *self)
{
  GSocket *socket = soup_server_message_get_socket (msg);

  if (socket == NULL)
    return;
  if (!g_hash_table_contains (self->live, socket))
    {
      g_autofree char *peer = socket_peer (socket);
      guint from_peer = 0;

      /* (under the smaller cap, neither can be reached: no count) */
      if (g_hash_table_size (self->live) >= MIN (self->max_connections, self->max_connections_per_peer))
        {
          g_autofree char *message = NULL;

          if (count_connections (self, peer, &from_peer) >= self->max_connections)
            message = g_strdup_printf ("Too many HTTP connections are open (at most %u); try again later",
                                       self->max_connections);
          else if (from_peer >= self->max_connections_per_peer)
            message = g_strdup_printf ("Too many HTTP connections are open from %s (at most %u from one "
                                       "user or address); try again later", peer, self->max_connections_per_peer);
          if (message)
            {
              warn_cap (self, "too many connections, in all or from one peer; new ones are closed at once "
                              "(see HB_HTTP_MAX_CONNECTIONS)");
              /* before libsoup reads: its first read fails, and it drops
               * the connection */
              refuse_connection (socket, message);
              return;
            }
        }
      g_hash_table_insert (self->live, socket, g_steal_pointer (&peer));
      g_object_weak_ref (G_OBJECT (socket), on_live_socket_gone, self);
      g_socket_set_timeout (socket, MAX (1, (self->idle_timeout + 999) / 1000));
    }
  conn_arm (self, socket, self->request_timeout, 0);
  g_signal_connect_object (msg, "got-body", G_CALLBACK (on_got_body), self, 0);
}

/* After a request: a connection kept alive may wait idle_timeout for the
 * next (checked once the main loop had a turn, when libsoup closed the
 * connections it does not keep). */
static void
on_request_done (SoupServer        *server,
                 SoupServerMessage *msg,
                 HbHttp            *self)
{
  GSocket *socket = soup_server_message_get_socket (msg);

  if (socket && !g_socket_is_closed (socket))
    conn_arm (self, socket, 0, self->idle_timeout);
}

/* ------------------------------------------------------------------ */
/* Set-up                                                              */

/**
 * hb_http_set_tokens_file:
 * @http: a #HbHttp
 * @path: (nullable): a file of bearer tokens, one per line (`#` comments),
 *   readable by its owner only; %NULL for none
 * @error: return location for a #GError
 *
 * Returns: %TRUE, or %FALSE with @error set (the old tokens are kept)
 */
gboolean
hb_http_set_tokens_file (HbHttp     *http,
                         const char *path,
                         GError    **error)
{
  g_autofree char *contents = NULL;
  g_auto(GStrv) lines = NULL;
  GPtrArray *tokens;
  GStatBuf st;

  g_return_val_if_fail (HB_IS_HTTP (http), FALSE);

  if (path == NULL)
    {
      g_clear_pointer (&http->tokens, g_ptr_array_unref);
      return TRUE;
    }
  if (g_stat (path, &st) != 0)
    {
      int saved = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved), "%s: %s", path, g_strerror (saved));
      return FALSE;
    }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_PERM,
                   "%s: a tokens file must be readable by its owner only (chmod 600)", path);
      return FALSE;
    }
  if (!g_file_get_contents (path, &contents, NULL, error))
    return FALSE;

  tokens = g_ptr_array_new_with_free_func (g_free);
  lines = g_strsplit (contents, "\n", -1);
  for (gsize i = 0; lines[i]; i++)
    {
      char *line = g_strstrip (lines[i]);

      if (*line && *line != '#')
        g_ptr_array_add (tokens, g_strdup (line));
    }
  if (tokens->len == 0)
    {
      g_ptr_array_unref (tokens);
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: no token in the tokens file", path);
      return FALSE;
    }
  g_clear_pointer (&http->tokens, g_ptr_array_unref);
  http->tokens = tokens;
  return TRUE;
}

static gboolean
address_is_loopback (GInetAddress *address)
{
  return g_inet_address_get_is_loopback (address);
}

static void
set_listen_problem (HbHttp     *self,
                    const char *problem)
{
  if (g_strcmp0 (self->listen_problem, problem) == 0)
    return;
  g_free (self->listen_problem);
  self->listen_problem = g_strdup (problem);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LISTEN_PROBLEM]);
}

static gboolean
try_listen (HbHttp  *self,
            GError **error)
{
  g_autoptr(GSocketAddress) socket_address = g_inet_socket_address_new (self->address, self->wanted_port);
  GSList *uris;

  if (!soup_server_listen (self->server, socket_address, 0, error))
    return FALSE;
  uris = soup_server_get_uris (self->server);
  if (uris)
    self->port = (guint16) g_uri_get_port (uris->data);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  return TRUE;
}

static gboolean
on_listen_retry (gpointer user_data)
{
  HbHttp *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *address = g_inet_address_to_string (self->address);

  if (!try_listen (self, &error))
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE))
        {
          g_autofree char *problem = g_strdup_printf ("Cannot serve HTTP on %s port %u: %s; retrying",
                                                      address, self->wanted_port, error->message);
          if (g_strcmp0 (problem, self->listen_problem) != 0)
            g_warning ("%s", problem);
          set_listen_problem (self, problem);
        }
      return G_SOURCE_CONTINUE;
    }
  self->retry_id = 0;
  g_message ("Serving HTTP on http://%s%s%s:%u/ (the port is free now)",
             g_inet_address_get_family (self->address) == G_SOCKET_FAMILY_IPV6 ? "[" : "", address,
             g_inet_address_get_family (self->address) == G_SOCKET_FAMILY_IPV6 ? "]" : "", self->port);
  set_listen_problem (self, NULL);
  return G_SOURCE_REMOVE;
}

/**
 * hb_http_listen:
 * @http: a #HbHttp
 * @address: an IP address to listen on
 * @port: the port, or 0 for any free one (see hb_http_get_port())
 * @error: return location for a #GError
 *
 * Listening on an address other than loopback needs tokens. If the port is
 * in use, this is not an error: #HbHttp:listen-problem says so and the
 * port is tried again every 5 s (`$HB_HTTP_LISTEN_RETRY_MS`, for tests)
 * until it is free.
 *
 * Returns: %TRUE (listening, or waiting for the port), or %FALSE with
 *   @error set
 */
gboolean
hb_http_listen (HbHttp     *http,
                const char *address,
                guint16     port,
                GError    **error)
{
  g_autoptr(GInetAddress) inet = g_inet_address_new_from_string (address);
  g_autoptr(GError) local = NULL;

  g_return_val_if_fail (HB_IS_HTTP (http), FALSE);

  if (inet == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "“%s” is not an IP address", address);
      return FALSE;
    }
  if (!address_is_loopback (inet) && http->tokens == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   "refusing to serve HTTP on %s without a tokens file ([http] tokens-file=)", address);
      return FALSE;
    }

  g_set_object (&http->address, inet);
  http->wanted_port = port;
  /* DNS rebinding: a page of another site may reach a loopback server,
   * but says its own name in Host */
  http->check_host = address_is_loopback (inet);
  if (try_listen (http, &local))
    return TRUE;
  if (port != 0 && g_error_matches (local, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE))
    {
      g_autofree char *problem = NULL;

      problem = g_strdup_printf ("HTTP port %s%s%s:%u is in use; retrying",
                                 g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6 ? "[" : "", address,
                                 g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6 ? "]" : "", port);
      g_warning ("%s every %u ms", problem, http->retry_interval);
      set_listen_problem (http, problem);
      if (http->retry_id == 0)
        http->retry_id = g_timeout_add (http->retry_interval, on_listen_retry, http);
      return TRUE;
    }
  g_propagate_prefixed_error (error, g_steal_pointer (&local), "cannot listen on %s port %u: ", address, port);
  return FALSE;
}

/**
 * hb_http_get_listen_problem:
 * @http: a #HbHttp
 *
 * Why HTTP is not served although it should be (its port is in use), or
 * %NULL. Notified as #HbHttp:listen-problem.
 *
 * Returns: (nullable): the problem
 */
const char *
hb_http_get_listen_problem (HbHttp *http)
{
  g_return_val_if_fail (HB_IS_HTTP (http), NULL);
  return http->listen_problem;
}

/**
 * hb_http_set_quota:
 * @http: a #HbHttp
 * @agents_per_uid: how many agents HTTP may create ([limits]
 *   agents-per-uid, applied to %HB_HTTP_OWNER_UID); 0 for no limit
 *
 * A new agent beyond it is refused with 429. Agents already there stay.
 */
void
hb_http_set_quota (HbHttp *http,
                   guint   agents_per_uid)
{
  g_return_if_fail (HB_IS_HTTP (http));
  http->quota = agents_per_uid;
}

/**
 * hb_http_set_units:
 * @http: a #HbHttp
 * @units: (nullable): the systemd units behind declared agents, or %NULL
 *
 * Lets the agents' JSON carry their `unit`.
 */
void
hb_http_set_units (HbHttp  *http,
                   HbUnits *units)
{
  g_return_if_fail (HB_IS_HTTP (http));
  g_return_if_fail (units == NULL || HB_IS_UNITS (units));
  g_set_object (&http->units, units);
}

/**
 * hb_http_set_problem:
 * @http: a #HbHttp
 * @problem: (nullable): why the daemon is degraded, or %NULL
 *
 * /health then says `"status": "degraded"` and gives the problem.
 */
void
hb_http_set_problem (HbHttp     *http,
                     const char *problem)
{
  g_return_if_fail (HB_IS_HTTP (http));
  g_free (http->problem);
  http->problem = g_strdup (problem);
}

/**
 * hb_http_set_state_directory:
 * @http: a #HbHttp
 * @directory: (nullable): the daemon's state directory
 *
 * GET /v1/host gives the disk space of its file system. Without it (or
 * with %NULL), the directory of the state database the daemon holds open
 * is used, else `/`.
 */
void
hb_http_set_state_directory (HbHttp     *http,
                             const char *directory)
{
  g_return_if_fail (HB_IS_HTTP (http));
  g_free (http->state_directory);
  http->state_directory = g_strdup (directory);
}

guint16
hb_http_get_port (HbHttp *http)
{
  g_return_val_if_fail (HB_IS_HTTP (http), 0);
  return http->port;
}

guint
hb_http_get_n_event_clients (HbHttp *http)
{
  g_return_val_if_fail (HB_IS_HTTP (http), 0);
  return http->n_clients;
}

/* A timeout or a bound from the environment (for tests), else @fallback. */
static guint
timeout_from_env (const char *name,
                  guint       fallback)
{
  const char *text = g_getenv (name);
  guint64 value;

  if (text && g_ascii_string_to_unsigned (text, 10, 1, G_MAXUINT32, &value, NULL))
    return (guint) value;
  return fallback;
}

/**
 * hb_http_new:
 * @monitor: the monitor to serve
 * @version: the daemon's version, for /health and /metrics
 *
 * Returns: (transfer full): a new #HbHttp, not listening yet
 */
HbHttp *
hb_http_new (HeartbeatMonitor *monitor,
             const char       *version)
{
  HbHttp *self = g_object_new (HB_TYPE_HTTP, NULL);

#ifdef __GLIBC__
  /* Large answers (pages of up to HB_HTTP_PAGE_BYTES, /metrics…) are
   * mapped and unmapped: with glibc's default, the threshold rises to the
   * size of the largest block freed, and blocks that large then come from
   * the heap, which keeps them once freed (the RSS a burst of large
   * answers took stayed). Fixing it keeps the RSS to what is in use. */
  mallopt (M_MMAP_THRESHOLD, 256 * 1024);
#endif
  self->monitor = g_object_ref (monitor);
  self->version = g_strdup (version);
  self->server = soup_server_new ("server-header", "heartbeatd", NULL);
  soup_server_add_early_handler (self->server, NULL, on_request_headers, self, NULL);
  soup_server_add_handler (self->server, NULL, on_request, self, NULL);
  g_signal_connect (self->server, "request-started", G_CALLBACK (on_request_started), self);
  g_signal_connect (self->server, "request-finished", G_CALLBACK (on_request_done), self);
  g_signal_connect (self->server, "request-aborted", G_CALLBACK (on_request_done), self);

  g_signal_connect_object (monitor, "agent-registered", G_CALLBACK (on_registered), self, 0);
  g_signal_connect_object (monitor, "agent-unregistered", G_CALLBACK (on_unregistered), self, 0);
  g_signal_connect_object (monitor, "agent-stale", G_CALLBACK (on_stale), self, 0);
  g_signal_connect_object (monitor, "agent-timed-out", G_CALLBACK (on_timed_out), self, 0);
  g_signal_connect_object (monitor, "agent-recovered", G_CALLBACK (on_recovered), self, 0);
  g_signal_connect_object (monitor, "agent-state-changed", G_CALLBACK (on_state_changed), self, 0);
  g_signal_connect_object (monitor, "agent-beat", G_CALLBACK (on_beat), self, 0);
  g_signal_connect_object (monitor, "event-posted", G_CALLBACK (on_event_posted), self, 0);
  return self;
}

static void
hb_http_dispose (GObject *object)
{
  HbHttp *self = HB_HTTP (object);

  g_clear_handle_id (&self->keepalive_id, g_source_remove);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  g_clear_handle_id (&self->host_sample_id, g_source_remove);
  g_list_free_full (g_steal_pointer (&self->host_waiters), (GDestroyNotify) host_waiter_free);
  g_clear_handle_id (&self->history_source, g_source_remove);
  g_queue_clear_full (&self->history_pages, (GDestroyNotify) history_page_free);
  while (self->clients)
    {
      EventClient *client = self->clients->data;

      soup_message_body_complete (soup_server_message_get_response_body (client->msg));
      on_client_finished (client->msg, client);
    }
  if (self->server)
    {
      g_signal_handlers_disconnect_by_data (self->server, self);
      soup_server_disconnect (self->server);
    }
  g_clear_object (&self->server);
  g_hash_table_remove_all (self->conns);
  {
    GHashTableIter iter;
    gpointer socket;

    g_hash_table_iter_init (&iter, self->live);
    while (g_hash_table_iter_next (&iter, &socket, NULL))
      {
        g_object_weak_unref (socket, on_live_socket_gone, self);
        g_hash_table_iter_remove (&iter);
      }
  }
  if (self->monitor)
    g_signal_handlers_disconnect_by_data (self->monitor, self);
  g_clear_object (&self->monitor);
  g_clear_object (&self->units);
  G_OBJECT_CLASS (hb_http_parent_class)->dispose (object);
}

static void
hb_http_finalize (GObject *object)
{
  HbHttp *self = HB_HTTP (object);

  g_clear_pointer (&self->tokens, g_ptr_array_unref);
  g_clear_pointer (&self->conns, g_hash_table_unref);
  g_clear_pointer (&self->live, g_hash_table_unref);
  g_clear_pointer (&self->agent_counts, g_hash_table_unref);
  g_clear_object (&self->address);
  g_free (self->state_directory);
  g_free (self->version);
  g_free (self->problem);
  g_free (self->listen_problem);
  G_OBJECT_CLASS (hb_http_parent_class)->finalize (object);
}

static void
hb_http_get_property (GObject    *object,
                      guint       prop_id,
                      GValue     *value,
                      GParamSpec *pspec)
{
  HbHttp *self = HB_HTTP (object);

  switch (prop_id)
    {
    case PROP_LISTEN_PROBLEM:
      g_value_set_string (value, self->listen_problem);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
hb_http_class_init (HbHttpClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = hb_http_dispose;
  object_class->finalize = hb_http_finalize;
  object_class->get_property = hb_http_get_property;

  /**
   * HbHttp:listen-problem:
   *
   * Why HTTP is not served although it should be, such as “HTTP port
   * 127.0.0.1:8765 is in use; retrying”, or %NULL.
   */
  properties[PROP_LISTEN_PROBLEM] =
    g_param_spec_string ("listen-problem", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
hb_http_init (HbHttp *self)
{
  self->quota = HB_HTTP_DEFAULT_QUOTA;
  self->conns = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, conn_free);
  self->live = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);  /* GSocket → its peer */
  self->agent_counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->request_timeout = timeout_from_env ("HB_HTTP_REQUEST_TIMEOUT_MS", HB_HTTP_REQUEST_TIMEOUT_MS);
  self->idle_timeout = timeout_from_env ("HB_HTTP_IDLE_TIMEOUT_MS", HB_HTTP_IDLE_TIMEOUT_MS);
  self->retry_interval = timeout_from_env ("HB_HTTP_LISTEN_RETRY_MS", HB_HTTP_LISTEN_RETRY_MS);
  self->max_connections = timeout_from_env ("HB_HTTP_MAX_CONNECTIONS", HB_HTTP_MAX_CONNECTIONS);
  self->max_connections_per_peer = timeout_from_env ("HB_HTTP_MAX_CONNECTIONS_PER_PEER",
                                                     HB_HTTP_MAX_CONNECTIONS_PER_PEER);
  self->response_budget = timeout_from_env ("HB_HTTP_RESPONSE_BUDGET", HB_HTTP_RESPONSE_BUDGET);
  self->page_bytes = timeout_from_env ("HB_HTTP_PAGE_BYTES", HB_HTTP_PAGE_BYTES);
}
