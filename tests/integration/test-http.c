/* test-http.c: the HTTP front of the real heartbeatd, with libsoup
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define _GNU_SOURCE   /* pipe2(), setresuid() */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <math.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "hb-harness.h"

typedef struct {
  HbHarness   *h;
  SoupSession *session;
  char        *base;
  char        *records;   /* $HB_HTTP_RECORDS: every answer, for the OpenAPI check */
} Fixture;

static void
clear_env (void)
{
  g_unsetenv ("HB_HTTP_REQUEST_TIMEOUT_MS");
  g_unsetenv ("HB_HTTP_IDLE_TIMEOUT_MS");
  g_unsetenv ("HB_HTTP_LISTEN_RETRY_MS");
  g_unsetenv ("HB_HTTP_MAX_CONNECTIONS");
  g_unsetenv ("HB_HTTP_MAX_CONNECTIONS_PER_PEER");
  g_unsetenv ("HB_HTTP_RESPONSE_BUDGET");
  g_unsetenv ("HB_HTTP_PAGE_BYTES");
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  clear_env ();
  f->h = hb_harness_new ();
  /* every answer and event is recorded, and checked against
   * data/openapi/heartbeatd.yaml at the end of the test */
  f->records = g_build_filename (f->h->tmpdir, "http-records.jsonl", NULL);
  g_setenv ("HB_HTTP_RECORDS", f->records, TRUE);
  f->session = soup_session_new_with_options ("timeout", 10, "max-conns", 200, "max-conns-per-host", 200, NULL);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->session);
  g_unsetenv ("HB_HTTP_RECORDS");
  hb_http_records_check (f->records);
  g_clear_pointer (&f->h, hb_harness_free);
  g_free (f->base);
  g_free (f->records);
  clear_env ();
}

/* Records the answer to @msg (@bytes: its body as read, NULL: not read)
 * for the OpenAPI check; a body that is not JSON is not kept. */
static void
record_message (SoupMessage *msg,
                GBytes      *bytes)
{
  const char *type = soup_message_headers_get_content_type (soup_message_get_response_headers (msg), NULL);
  gboolean json = g_strcmp0 (type, "application/json") == 0;
  gsize size = 0;
  const char *data = bytes && json ? g_bytes_get_data (bytes, &size) : NULL;

  hb_http_record_answer (soup_message_get_method (msg), g_uri_get_path (soup_message_get_uri (msg)),
                         soup_message_get_status (msg), type,
                         bytes && json ? (data ? data : "") : NULL, (gssize) size, NULL, NULL, 0);
}


/* Bus, @config (NULL: the default) and a daemon serving HTTP. */
static gboolean
start (Fixture *f, const char *config)
{
  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return FALSE;
  hb_harness_write_config (f->h, config ? config : hb_default_config);
  f->h->http_port = hb_free_port ();
  f->base = g_strdup_printf ("http://127.0.0.1:%u", f->h->http_port);
  hb_harness_start_daemon (f->h, 0);
  return TRUE;
}

typedef struct {
  guint       status;
  char       *body;
  JsonNode   *json;
  char       *content_type;
} Reply;

static void
reply_clear (Reply *r)
{
  g_clear_pointer (&r->body, g_free);
  g_clear_pointer (&r->json, json_node_unref);
  g_clear_pointer (&r->content_type, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Reply, reply_clear)

static void
request_full (Fixture    *f,
              const char *method,
              const char *path,
              const char *content_type,
              const char *body,
              gssize      length,
              const char *token,
              Reply      *r)
{
  g_autofree char *uri = g_strconcat (f->base, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new (method, uri);
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  const char *type;
  gsize size;

  g_assert_nonnull (msg);
  if (body)
    {
      g_autoptr(GBytes) request = g_bytes_new (body, length < 0 ? strlen (body) : (gsize) length);
      soup_message_set_request_body_from_bytes (msg, content_type, request);
    }
  if (token)
    {
      g_autofree char *header = g_strconcat ("Bearer ", token, NULL);
      soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", header);
    }
  bytes = soup_session_send_and_read (f->session, msg, NULL, &error);
  g_assert_no_error (error);
  r->status = soup_message_get_status (msg);
  r->body = g_strndup (g_bytes_get_data (bytes, &size), g_bytes_get_size (bytes));
  type = soup_message_headers_get_content_type (soup_message_get_response_headers (msg), NULL);
  r->content_type = g_strdup (type);
  hb_http_record_answer (method, path, r->status, type,
                         g_strcmp0 (type, "application/json") == 0 ? r->body : NULL, -1,
                         content_type, body, body ? (length < 0 ? (gssize) strlen (body) : length) : 0);
  if (g_strcmp0 (type, "application/json") == 0 && size > 0)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();

      json_parser_load_from_data (parser, r->body, -1, &error);
      g_assert_no_error (error);
      r->json = json_node_copy (json_parser_get_root (parser));
    }
  g_test_message ("%s %s → %u %s", method, path, r->status, r->body);
}

#define GET(f, path, r) request_full ((f), "GET", (path), NULL, NULL, 0, NULL, (r))
#define SEND(f, method, path, json, r) \
  request_full ((f), (method), (path), "application/json", (json), -1, NULL, (r))

static JsonObject *
object (Reply *r)
{
  g_assert_nonnull (r->json);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (r->json));
  return json_node_get_object (r->json);
}

/* Asserts the reply is our JSON error with @status. */
static void
assert_error (Reply *r, guint status, const char *part)
{
  JsonObject *error;

  g_assert_cmpuint (r->status, ==, status);
  error = json_object_get_object_member (object (r), "error");
  g_assert_nonnull (error);
  g_assert_cmpint (json_object_get_int_member (error, "code"), ==, status);
  g_assert_nonnull (strstr (json_object_get_string_member (error, "message"), part));
}

static void
register_dbus (HbHarness *h, const char *id, const char *options)
{
  g_variant_unref (hb_call_ok (h, NULL, "Register",
                               g_variant_new_parsed (options ? options : "(%s, @a{sv} {})", id), "()"));
}

/* ------------------------------------------------------------------ */

static void
test_seed_server_endpoints (Fixture *f, gconstpointer data)
{
  g_auto(Reply) r = { 0 };
  JsonObject *o, *heartbeat, *metadata;
  g_autoptr(GVariant) agent = NULL;

  if (!start (f, NULL))
    return;

  SEND (f, "POST", "/heartbeat", "{\"run_id\": \"PYT-DEMO\", \"progress_updates\": 3, \"tests_per_sec\": 0.9}", &r);
  g_assert_cmpuint (r.status, ==, 200);
  g_assert_true (json_object_get_boolean_member (object (&r), "registered"));
  agent = hb_harness_get_agent (f->h, "PYT-DEMO");
  g_assert_cmpuint (hb_dict_uint32 (agent, "owner-uid"), ==, 4294967294u);
  g_assert_cmpuint (hb_dict_uint64 (agent, "beats"), ==, 1);
  reply_clear (&r);

  SEND (f, "POST", "/heartbeat", "{\"run_id\": \"PYT-DEMO\", \"status\": \"error\"}", &r);
  g_assert_false (json_object_get_boolean_member (object (&r), "registered"));
  g_assert_cmpstr (json_object_get_string_member (object (&r), "state"), ==, "error");
  reply_clear (&r);

  GET (f, "/runs", &r);
  o = json_object_get_object_member (object (&r), "PYT-DEMO");
  g_assert_nonnull (o);
  g_assert_cmpstr (json_object_get_string_member (o, "state"), ==, "error");
  g_assert_true (json_object_has_member (o, "last_activity"));
  g_assert_true (json_object_has_member (o, "progress"));
  reply_clear (&r);

  GET (f, "/runs/PYT-DEMO", &r);
  g_assert_cmpstr (json_object_get_string_member (object (&r), "run_id"), ==, "PYT-DEMO");
  heartbeat = json_object_get_object_member (object (&r), "heartbeat");
  metadata = json_object_get_object_member (heartbeat, "metadata");
  g_assert_cmpint (json_object_get_int_member (metadata, "progress_updates"), ==, 3);
  g_assert_cmpfloat (json_object_get_double_member (metadata, "tests_per_sec"), ==, 0.9);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (object (&r), "summary"), "beats"), ==, 2);
  reply_clear (&r);

  GET (f, "/runs/nope", &r);
  assert_error (&r, 404, "nope");
  reply_clear (&r);

  GET (f, "/health", &r);
  g_assert_cmpstr (json_object_get_string_member (object (&r), "status"), ==, "ok");
  g_assert_cmpint (json_object_get_int_member (object (&r), "agents"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (object (&r), "states"), "error"), ==, 1);
}

/* 004's /api/heartbeat/status, field by field. */
static void
test_gateway_status_shape (Fixture *f, gconstpointer data)
{
  g_auto(Reply) r = { 0 };
  g_autoptr(GList) members = NULL;
  JsonObject *o, *monitor, *config, *agent;
  JsonArray *agents, *in_flight;
  g_autoptr(GDateTime) when = NULL;

  if (!start (f, NULL))
    return;
  register_dbus (f->h, "pm", "('pm', {'task-id': <'session_key'>})");
  register_dbus (f->h, "dev", NULL);

  GET (f, "/api/heartbeat/status", &r);
  g_assert_cmpuint (r.status, ==, 200);
  o = object (&r);
  members = json_object_get_members (o);
  g_assert_cmpuint (g_list_length (members), ==, 5);
  g_assert_true (json_object_get_boolean_member (o, "success"));
  g_assert_cmpstr (json_object_get_string_member (o, "status"), ==, "online");

  monitor = json_object_get_object_member (o, "monitor");
  g_assert_true (json_object_get_boolean_member (monitor, "running"));
  g_assert_cmpint (json_object_get_int_member (monitor, "agents_monitoring"), ==, 2);
  agents = json_object_get_array_member (monitor, "agents");
  g_assert_cmpuint (json_array_get_length (agents), ==, 2);
  g_assert_cmpstr (json_array_get_string_element (agents, 0), ==, "dev");
  g_assert_cmpstr (json_array_get_string_element (agents, 1), ==, "pm");
  config = json_object_get_object_member (monitor, "config");
  g_assert_cmpint (json_object_get_int_member (config, "check_interval_ms"), ==, HB_DEFAULT_CHECK_USEC / 1000);
  g_assert_cmpint (json_object_get_int_member (config, "stale_threshold_ms"), ==, HB_DEFAULT_STALE_USEC / 1000);
  g_assert_cmpint (json_object_get_int_member (config, "timeout_threshold_ms"), ==, HB_DEFAULT_TIMEOUT_USEC / 1000);

  in_flight = json_object_get_array_member (o, "in_flight_agents");
  g_assert_cmpuint (json_array_get_length (in_flight), ==, 2);
  agent = json_array_get_object_element (in_flight, 1);
  g_assert_cmpstr (json_object_get_string_member (agent, "agent_id"), ==, "pm");
  g_assert_cmpstr (json_object_get_string_member (agent, "task_id"), ==, "session_key");
  g_assert_cmpstr (json_object_get_string_member (agent, "status"), ==, "running");
  g_assert_cmpint (json_object_get_int_member (agent, "running_for_ms"), >=, 0);
  g_assert_cmpint (json_object_get_int_member (agent, "idle_for_ms"), >=, 0);
  g_assert_true (json_node_is_null (json_object_get_member (json_array_get_object_element (in_flight, 0), "task_id")));

  g_assert_true (g_str_has_suffix (json_object_get_string_member (o, "timestamp"), "Z"));
  when = g_date_time_new_from_iso8601 (json_object_get_string_member (o, "timestamp"), NULL);
  g_assert_nonnull (when);
}

static void
test_rest_agents (Fixture *f, gconstpointer data)
{
  g_auto(Reply) r = { 0 };
  JsonObject *o;

  if (!start (f, NULL))
    return;

  SEND (f, "PUT", "/v1/agents/web", "{\"task-id\": \"serve\", \"stale-after-usec\": 7000000, \"metadata\": {\"k\": \"v\"}}", &r);
  g_assert_cmpuint (r.status, ==, 201);
  g_assert_cmpstr (json_object_get_string_member (object (&r), "task-id"), ==, "serve");
  g_assert_cmpint (json_object_get_int_member (object (&r), "stale-after-usec"), ==, 7000000);
  reply_clear (&r);
  SEND (f, "PUT", "/v1/agents/web", "{\"task-id\": \"serve2\"}", &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);

  SEND (f, "POST", "/v1/agents/web/beat", "{\"status\": \"busy\", \"progress\": 0.25, \"metadata\": {\"n\": 2}}", &r);
  g_assert_cmpuint (r.status, ==, 200);
  o = object (&r);
  g_assert_cmpstr (json_object_get_string_member (o, "status"), ==, "busy");
  g_assert_cmpfloat (json_object_get_double_member (json_object_get_object_member (o, "metadata"), "progress"), ==, 0.25);
  reply_clear (&r);
  request_full (f, "POST", "/v1/agents/web/beat", NULL, NULL, 0, NULL, &r);   /* empty body: a plain beat */
  g_assert_cmpuint (r.status, ==, 200);
  g_assert_cmpstr (json_object_get_string_member (object (&r), "status"), ==, "running");
  reply_clear (&r);
  request_full (f, "POST", "/v1/agents/web/idle", NULL, NULL, 0, NULL, &r);
  g_assert_cmpstr (json_object_get_string_member (object (&r), "status"), ==, "idle");
  reply_clear (&r);

  GET (f, "/v1/agents", &r);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (object (&r), "agents")), ==, 1);
  reply_clear (&r);
  GET (f, "/v1/agents/web", &r);
  g_assert_cmpstr (json_object_get_string_member (object (&r), "id"), ==, "web");
  reply_clear (&r);

  request_full (f, "DELETE", "/v1/agents/web", NULL, NULL, 0, NULL, &r);
  g_assert_cmpuint (r.status, ==, 204);
  reply_clear (&r);
  GET (f, "/v1/agents/web", &r);
  assert_error (&r, 404, "web");
  hb_call_error (f->h, NULL, "GetAgent", g_variant_new ("(s)", "web"), "NotFound");
}

/* Each agent's state changes, over HTTP as over D-Bus. */
static void
test_history (Fixture *f, gconstpointer data)
{
  static const char *const expected[] = { "healthy", "error", "healthy" };
  g_auto(Reply) r = { 0 };
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) history = NULL;
  JsonArray *entries;
  gint64 before = g_get_real_time ();

  if (!start (f, NULL))
    return;
  SEND (f, "PUT", "/v1/agents/hist", "{}", &r);
  reply_clear (&r);
  SEND (f, "POST", "/v1/agents/hist/beat", "{\"status\": \"error\"}", &r);
  reply_clear (&r);
  SEND (f, "POST", "/v1/agents/hist/beat", "{}", &r);
  g_assert_cmpint (json_object_get_size (json_object_get_object_member (object (&r), "unit")), ==, 0);
  reply_clear (&r);
  SEND (f, "PUT", "/v1/agents/other", "{}", &r);
  reply_clear (&r);

  GET (f, "/v1/agents/hist/history", &r);
  g_assert_cmpuint (r.status, ==, 200);
  g_assert_cmpstr (json_object_get_string_member (object (&r), "id"), ==, "hist");
  entries = json_object_get_array_member (object (&r), "history");
  g_assert_cmpuint (json_array_get_length (entries), ==, G_N_ELEMENTS (expected));
  reply = hb_call_ok (f->h, NULL, "GetHistory", g_variant_new ("(s)", "hist"), "(a(ts))");
  history = g_variant_get_child_value (reply, 0);
  g_assert_cmpuint (g_variant_n_children (history), ==, G_N_ELEMENTS (expected));
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      JsonObject *e = json_array_get_object_element (entries, i);
      guint64 at;
      const char *state;

      g_variant_get_child (history, i, "(t&s)", &at, &state);
      g_assert_cmpstr (json_object_get_string_member (e, "state"), ==, expected[i]);
      g_assert_cmpstr (state, ==, expected[i]);
      g_assert_cmpint (json_object_get_int_member (e, "at-usec"), ==, (gint64) at);
      g_assert_cmpint ((gint64) at, >=, before);
      g_assert_cmpint ((gint64) at, <=, g_get_real_time ());
    }
  reply_clear (&r);

  GET (f, "/v1/history", &r);
  g_assert_cmpuint (r.status, ==, 200);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (json_object_get_object_member (object (&r), "agents"), "hist")),
                    ==, G_N_ELEMENTS (expected));
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (json_object_get_object_member (object (&r), "agents"), "other")),
                    ==, 1);
  reply_clear (&r);

  GET (f, "/v1/agents/nobody/history", &r);
  assert_error (&r, 404, "nobody");
  reply_clear (&r);
  hb_call_error (f->h, NULL, "GetHistory", g_variant_new ("(s)", "nobody"), "NotFound");
  hb_call_error (f->h, NULL, "GetHistory", g_variant_new ("(s)", "bad id"), "InvalidArgument");
}

static void
test_bad_requests (Fixture *f, gconstpointer data)
{
  g_auto(Reply) r = { 0 };
  g_autofree char *big = g_strnfill (70 * 1024, 'a');
  g_autoptr(GVariant) list = NULL;

  if (!start (f, NULL))
    return;
  register_dbus (f->h, "dbus-agent", NULL);

#define BAD(method, path, type, body, status, part) G_STMT_START { \
    request_full (f, method, path, type, body, -1, NULL, &r);        \
    assert_error (&r, status, part);                                 \
    reply_clear (&r);                                                \
  } G_STMT_END

  BAD ("POST", "/heartbeat", "application/json", "{bad", 400, "not valid JSON");
  BAD ("POST", "/heartbeat", "application/json", "[1]", 400, "JSON object");
  BAD ("POST", "/heartbeat", "application/json", "{}", 400, "run_id");
  BAD ("POST", "/heartbeat", "application/json", "{\"run_id\": 7}", 400, "string");
  BAD ("POST", "/heartbeat", "application/json", "{\"run_id\": \"bad id\"}", 400, "character");
  BAD ("POST", "/heartbeat", "application/json", "{\"run_id\": \"x\", \"v\": null}", 400, "cannot be kept");
  BAD ("POST", "/heartbeat", "text/plain", "{\"run_id\": \"x\"}", 415, "application/json");
  BAD ("POST", "/heartbeat", "application/json", big, 413, "larger");
  BAD ("PUT", "/v1/agents/x", "application/json", "{\"stale-after-usec\": -1}", 400, "positive");
  BAD ("PUT", "/v1/agents/x", "application/json", "{\"owner\": 1}", 400, "Unknown member");
  BAD ("POST", "/v1/agents/x/beat", "application/json", "{}", 404, "x");
  BAD ("POST", "/v1/agents/dbus-agent/beat", "application/json", "{}", 403, "uid 0");
  BAD ("DELETE", "/v1/agents/dbus-agent", NULL, NULL, 403, "uid 0");
  BAD ("DELETE", "/health", NULL, NULL, 405, "allowed");
  BAD ("GET", "/nowhere", NULL, NULL, 404, "/nowhere");
  BAD ("POST", "/event", "application/json", "{\"type\": \"bad type\"}", 400, "Event type");
#undef BAD

  /* none of it changed anything */
  list = hb_call_ok (f->h, NULL, "ListAgents", NULL, "(aa{sv})");
  g_assert_cmpuint (g_variant_n_children (g_variant_get_child_value (list, 0)), ==, 1);
}

/* The daemon on a session bus, with HTTP on a free loopback port and a
 * tokens file of @tokens_text (mode 0600). FALSE: skipped. */
static gboolean
start_with_tokens (Fixture    *f,
                   const char *tokens_text)
{
  g_autofree char *tokens = NULL;
  g_autofree char *config = NULL;
  g_autoptr(GError) error = NULL;

  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return FALSE;
  tokens = g_build_filename (f->h->tmpdir, "tokens", NULL);
  g_file_set_contents (tokens, tokens_text, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (tokens, 0600), ==, 0);
  config = g_strdup_printf ("%s\n[http]\ntokens-file=%s\n", hb_default_config, tokens);
  hb_harness_write_config (f->h, config);
  f->h->http_port = hb_free_port ();
  f->base = g_strdup_printf ("http://127.0.0.1:%u", f->h->http_port);
  hb_harness_start_daemon (f->h, 0);
  return TRUE;
}

static void
test_tokens (Fixture *f, gconstpointer data)
{
  g_auto(Reply) r = { 0 };

  if (!start_with_tokens (f, "# tokens\ns3cret\n"))
    return;
  register_dbus (f->h, "dbus-agent", NULL);

  request_full (f, "POST", "/heartbeat", "application/json", "{\"run_id\": \"a\"}", -1, NULL, &r);
  assert_error (&r, 401, "Bearer");
  reply_clear (&r);
  request_full (f, "POST", "/heartbeat", "application/json", "{\"run_id\": \"a\"}", -1, "wrong", &r);
  assert_error (&r, 401, "Bearer");
  reply_clear (&r);
  hb_call_error (f->h, NULL, "GetAgent", g_variant_new ("(s)", "a"), "NotFound");

  request_full (f, "POST", "/heartbeat", "application/json", "{\"run_id\": \"a\"}", -1, "s3cret", &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);
  /* a token may change any agent */
  request_full (f, "POST", "/v1/agents/dbus-agent/beat", NULL, NULL, 0, "s3cret", &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);
  /* reads need no token */
  GET (f, "/v1/agents", &r);
  g_assert_cmpuint (r.status, ==, 200);
}

static void
test_non_loopback_refused (Fixture *f, gconstpointer data)
{
  g_autofree char *config = NULL;
  HbChild *daemon;
  int status;

  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  config = g_strdup_printf ("%s\n[http]\naddress=0.0.0.0\n", hb_default_config);
  hb_harness_write_config (f->h, config);
  f->h->http_port = hb_free_port ();
  daemon = hb_harness_spawn_daemon (f->h, NULL, 0);
  status = hb_harness_wait_exit (f->h, daemon, HB_WAIT_MS);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 1);
}

/* ------------------------------------------------------------------ */
/* Server-Sent Events                                                  */

typedef struct {
  GInputStream *stream;
  GCancellable *cancellable;
  GString      *pending;   /* bytes not yet split into events */
  GPtrArray    *events;    /* "id event data" strings */
  char          buffer[4096];
  gboolean      closed;
} Sse;

static void
sse_free (Sse *s)
{
  /* the pending read ends cancelled and touches nothing of ours */
  g_cancellable_cancel (s->cancellable);
  g_clear_object (&s->cancellable);
  g_clear_object (&s->stream);
  g_string_free (s->pending, TRUE);
  g_ptr_array_unref (s->events);
  g_free (s);
}

/* Moves every complete "…\n\n" block of s->pending into s->events. */
static void
sse_split (Sse *s)
{
  char *end;

  while ((end = strstr (s->pending->str, "\n\n")) != NULL)
    {
      g_autofree char *block = g_strndup (s->pending->str, (gsize) (end - s->pending->str));
      g_auto(GStrv) lines = g_strsplit (block, "\n", -1);
      const char *id = NULL, *event = NULL, *data = NULL;

      for (gsize i = 0; lines[i]; i++)
        {
          if (g_str_has_prefix (lines[i], "id: "))
            id = lines[i] + 4;
          else if (g_str_has_prefix (lines[i], "event: "))
            event = lines[i] + 7;
          else if (g_str_has_prefix (lines[i], "data: "))
            data = lines[i] + 6;
        }
      if (event)
        {
          hb_http_record_event (event, data);
          g_ptr_array_add (s->events, g_strdup_printf ("%s %s %s", id, event, data));
        }
      g_string_erase (s->pending, 0, (end - s->pending->str) + 2);
    }
}

static void on_sse_read (GObject *source, GAsyncResult *result, gpointer user_data);

static void
sse_read (Sse *s)
{
  g_input_stream_read_async (s->stream, s->buffer, sizeof s->buffer, G_PRIORITY_DEFAULT, s->cancellable,
                             on_sse_read, s);
}

static void
on_sse_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Sse *s = user_data;
  g_autoptr(GError) error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (n <= 0)
    {
      s->closed = TRUE;
      return;
    }
  g_string_append_len (s->pending, s->buffer, n);
  sse_split (s);
  sse_read (s);
}

static void
on_sent (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

static Sse *
sse_open (Fixture *f)
{
  g_autofree char *uri = g_strconcat (f->base, "/v1/events", NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", uri);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  Sse *s = g_new0 (Sse, 1);

  /* the stream is read asynchronously on the main context: open it so */
  soup_session_send_async (f->session, msg, G_PRIORITY_DEFAULT, NULL, on_sent, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  s->stream = soup_session_send_finish (f->session, result, &error);
  g_assert_no_error (error);
  record_message (msg, NULL);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  g_assert_cmpstr (soup_message_headers_get_content_type (soup_message_get_response_headers (msg), NULL),
                   ==, "text/event-stream");
  s->pending = g_string_new (NULL);
  s->cancellable = g_cancellable_new ();
  s->events = g_ptr_array_new_with_free_func (g_free);
  sse_read (s);
  return s;
}

static gboolean
on_timeout_flag (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Waits (bounded) until @s has an event containing @needle. */
static void
sse_wait (Sse *s, const char *needle)
{
  gboolean timed_out = FALSE;
  guint timeout = g_timeout_add (HB_WAIT_MS, on_timeout_flag, &timed_out);

  for (;;)
    {
      for (guint i = 0; i < s->events->len; i++)
        if (strstr (g_ptr_array_index (s->events, i), needle))
          goto found;
      if (timed_out)
        break;
      g_main_context_iteration (NULL, TRUE);
    }
  g_assert_not_reached ();
found:
  if (!timed_out)
    g_source_remove (timeout);
}

static void
test_events_ordered_for_every_client (Fixture *f, gconstpointer data)
{
  Sse *clients[3];
  g_auto(Reply) r = { 0 };

  if (!start (f, NULL))
    return;
  for (int i = 0; i < 3; i++)
    clients[i] = sse_open (f);

  /* each client is subscribed once it got the retry line; a POST /event
   * that every client sees marks the start */
  SEND (f, "POST", "/event", "{\"type\": \"mark\"}", &r);
  for (int i = 0; i < 3; i++)
    sse_wait (clients[i], " event {\"type\":\"mark\"");
  reply_clear (&r);

  SEND (f, "PUT", "/v1/agents/sse", "{\"stale-after-usec\": 200000}", &r);
  reply_clear (&r);
  SEND (f, "POST", "/v1/agents/sse/beat", "{}", &r);
  for (int i = 0; i < 3; i++)
    sse_wait (clients[i], " stale {\"id\":\"sse\"");
  reply_clear (&r);
  request_full (f, "DELETE", "/v1/agents/sse", NULL, NULL, 0, NULL, &r);
  for (int i = 0; i < 3; i++)
    sse_wait (clients[i], " unregistered {\"id\":\"sse\"");

  /* the same events, in the same order, with increasing ids */
  for (int i = 0; i < 3; i++)
    {
      GPtrArray *events = clients[i]->events;
      gint64 last_id = 0;

      g_assert_cmpuint (events->len, ==, clients[0]->events->len);
      for (guint e = 0; e < events->len; e++)
        {
          const char *text = g_ptr_array_index (events, e);
          gint64 id = g_ascii_strtoll (text, NULL, 10);
          const char *expected = g_ptr_array_index (clients[0]->events, e);

          g_assert_cmpint (id, >, last_id);
          last_id = id;
          /* same id and name; data differ only in their time-usec */
          g_assert_cmpint (strcspn (text, "{"), ==, strcspn (expected, "{"));
          g_assert_cmpint (strncmp (text, expected, strcspn (text, "{")), ==, 0);
        }
    }
  {
    const char *names[] = { "event", "registered", "beat", "state", "stale", "unregistered" };
    GPtrArray *events = clients[0]->events;
    guint at = 0;

    for (guint e = 0; e < events->len && at < G_N_ELEMENTS (names); e++)
      if (strstr (g_ptr_array_index (events, e), names[at]) == strchr (g_ptr_array_index (events, e), ' ') + 1)
        at++;
    g_assert_cmpuint (at, ==, G_N_ELEMENTS (names));
  }
  for (int i = 0; i < 3; i++)
    sse_free (clients[i]);
}

/* ------------------------------------------------------------------ */
/* Prometheus                                                          */

/* The value of the series @series ("name{labels}") in @body, or NULL */
static char *
metric (const char *body, const char *series)
{
  g_autofree char *needle = g_strconcat ("\n", series, " ", NULL);
  const char *at = strstr (body, needle);

  if (at == NULL)
    return NULL;
  at += strlen (needle);
  return g_strndup (at, strcspn (at, "\n"));
}

static void
assert_metric (const char *body, const char *series, const char *value)
{
  g_autofree char *found = metric (body, series);

  if (g_strcmp0 (found, value) != 0)
    g_test_message ("%s is %s, not %s", series, found ? found : "(missing)", value ? value : "(missing)");
  g_assert_cmpstr (found, ==, value);
}

/* How many series of @name the agent @id has */
static guint
n_series (const char *body, const char *name, const char *id)
{
  g_autofree char *needle = g_strdup_printf ("\n%s{agent=\"%s\"", name, id);
  guint n = 0;

  for (const char *at = strstr (body, needle); at; at = strstr (at + 1, needle))
    n++;
  return n;
}

static void
get_metrics (Fixture *f, Reply *r)
{
  reply_clear (r);
  GET (f, "/metrics", r);
  g_assert_cmpuint (r->status, ==, 200);
}

/* Waits (bounded) until GET /v1/agents/@id says @state */
static void
wait_state (Fixture *f, const char *id, const char *state)
{
  g_autofree char *path = g_strconcat ("/v1/agents/", id, NULL);
  gint64 until = g_get_monotonic_time () + HB_WAIT_MS * 1000;

  for (;;)
    {
      g_auto(Reply) r = { 0 };

      GET (f, path, &r);
      if (r.status == 200 && g_strcmp0 (json_object_get_string_member (object (&r), "state"), state) == 0)
        return;
      g_assert_cmpint (g_get_monotonic_time (), <, until);
      hb_harness_run_for (f->h, 50);
    }
}

/* Waits (bounded) until /metrics has @series at @value */
static void
wait_metric (Fixture *f, const char *series, const char *value)
{
  gint64 until = g_get_monotonic_time () + HB_WAIT_MS * 1000;

  for (;;)
    {
      g_auto(Reply) r = { 0 };
      g_autofree char *found = NULL;

      get_metrics (f, &r);
      found = metric (r.body, series);
      if (g_strcmp0 (found, value) == 0)
        return;
      g_assert_cmpint (g_get_monotonic_time (), <, until);
      hb_harness_run_for (f->h, 50);
    }
}

static const char *const all_states[] = { "healthy", "stale", "timed-out", "error", "gone", "no-heartbeat", "paused" };

/* Every state of @id as its own series, 1 for @state only */
static void
assert_state_series (const char *body, const char *id, const char *state)
{
  g_assert_cmpuint (n_series (body, "heartbeat_agent_state", id), ==, G_N_ELEMENTS (all_states));
  for (gsize s = 0; s < G_N_ELEMENTS (all_states); s++)
    {
      g_autofree char *series = g_strdup_printf ("heartbeat_agent_state{agent=\"%s\",state=\"%s\"}", id, all_states[s]);

      assert_metric (body, series, strcmp (all_states[s], state) == 0 ? "1" : "0");
    }
}

static void
promtool_check (Fixture *f, const char *promtool, const char *text)
{
  g_autofree char *path = g_build_filename (f->h->tmpdir, "metrics.txt", NULL);
  g_autofree char *command = NULL;
  g_autofree char *out = NULL, *err = NULL;
  g_autoptr(GError) error = NULL;
  int status;

  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  command = g_strdup_printf ("sh -c '\"%s\" check metrics < \"%s\"'", promtool, path);
  g_spawn_command_line_sync (command, &out, &err, &status, &error);
  g_assert_no_error (error);
  g_test_message ("promtool: %s%s", out, err);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);
}

/* The contract of issue 14: every state as its own 0/1 series, info,
 * last activity (none for a declared agent that never beat), thresholds,
 * idle flag, per-agent counters, build info with the host name; for
 * agents in every state; and promtool finds nothing to say. */
static void
test_metrics_pass_promtool (Fixture *f, gconstpointer data)
{
  static const char config[] =
    "[monitor]\ncheck-interval=100ms\nstale-threshold=5s\ntimeout-threshold=10min\n"
    "stale-warning-only-once=false\n"
    "\n[limits]\nagents-per-uid=20\n"
    "\n[agent:backup]\ntask=nightly backup\n";
  const char *sleep_argv[] = { "sleep", "600", NULL };
  g_autofree char *promtool = g_find_program_in_path ("promtool");
  g_autofree char *build_info = NULL;
  g_autofree char *runner_options = NULL;
  g_autofree char *seen = NULL;
  g_auto(Reply) r = { 0 };
  gint64 before = g_get_real_time () / G_USEC_PER_SEC;
  HbChild *sleeper;
  guint cursor;

  if (!start (f, config))
    return;

  register_dbus (f->h, "ok", NULL);
  reply_clear (&r);
  SEND (f, "POST", "/heartbeat", "{\"run_id\": \"broken\", \"status\": \"error\"}", &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);
  SEND (f, "PUT", "/v1/agents/slow", "{\"stale-after-usec\": 300000, \"task-id\": \"say \\\"hi\\\" \\\\ there\"}", &r);
  g_assert_cmpuint (r.status, ==, 201);
  reply_clear (&r);
  SEND (f, "PUT", "/v1/agents/resting", "{}", &r);
  g_assert_cmpuint (r.status, ==, 201);
  reply_clear (&r);
  request_full (f, "POST", "/v1/agents/resting/idle", NULL, NULL, 0, NULL, &r);
  g_assert_cmpuint (r.status, ==, 200);

  sleeper = hb_harness_spawn (f->h, sleep_argv);
  runner_options = g_strdup_printf ("('runner', {'pid': <uint32 %d>})", sleeper->pid);
  register_dbus (f->h, "runner", runner_options);
  cursor = hb_harness_signal_cursor (f->h);
  g_assert_cmpint (kill (sleeper->pid, SIGKILL), ==, 0);
  hb_wait_signal (f->h, &cursor, "AgentStateChanged", "runner", "healthy", "gone");
  hb_harness_wait_exit (f->h, sleeper, HB_WAIT_MS);

  cursor = hb_harness_signal_cursor (f->h);
  register_dbus (f->h, "long", "('long', {'timeout-after-usec': <uint64 400000>})");
  hb_wait_signal (f->h, &cursor, "AgentTimedOut", "long", NULL, NULL);
  wait_state (f, "slow", "stale");

  get_metrics (f, &r);
  g_assert_true (g_str_has_prefix (r.content_type, "text/plain"));
  assert_metric (r.body, "heartbeat_agents{state=\"error\"}", "1");
  assert_metric (r.body, "heartbeat_agents{state=\"no-heartbeat\"}", "1");
  assert_state_series (r.body, "ok", "healthy");
  assert_state_series (r.body, "broken", "error");
  assert_state_series (r.body, "slow", "stale");
  assert_state_series (r.body, "resting", "healthy");
  assert_state_series (r.body, "runner", "gone");
  assert_state_series (r.body, "backup", "no-heartbeat");
  /* listed until [monitor] retention passes */
  assert_state_series (r.body, "long", "timed-out");

  assert_metric (r.body, "heartbeat_agent_info{agent=\"ok\",task=\"\"}", "1");
  assert_metric (r.body, "heartbeat_agent_info{agent=\"backup\",task=\"nightly backup\"}", "1");
  assert_metric (r.body, "heartbeat_agent_info{agent=\"slow\",task=\"say \\\"hi\\\" \\\\ there\"}", "1");
  g_assert_cmpuint (n_series (r.body, "heartbeat_agent_info", "ok"), ==, 1);

  /* a real time for those that were active; none for the one that never beat */
  seen = metric (r.body, "heartbeat_agent_last_activity_timestamp_seconds{agent=\"ok\"}");
  g_assert_nonnull (seen);
  g_assert_cmpfloat (g_ascii_strtod (seen, NULL), >=, (double) before);
  g_assert_cmpfloat (g_ascii_strtod (seen, NULL), <=, (double) (g_get_real_time () / G_USEC_PER_SEC + 1));
  g_assert_cmpuint (n_series (r.body, "heartbeat_agent_last_activity_timestamp_seconds", "runner"), ==, 1);
  g_assert_cmpuint (n_series (r.body, "heartbeat_agent_last_activity_timestamp_seconds", "backup"), ==, 0);

  assert_metric (r.body, "heartbeat_agent_stale_threshold_seconds{agent=\"slow\"}", "0.3");
  assert_metric (r.body, "heartbeat_agent_stale_threshold_seconds{agent=\"ok\"}", "5");
  assert_metric (r.body, "heartbeat_agent_stale_threshold_seconds{agent=\"backup\"}", "5");
  assert_metric (r.body, "heartbeat_agent_timeout_threshold_seconds{agent=\"ok\"}", "600");
  assert_metric (r.body, "heartbeat_agent_timeout_threshold_seconds{agent=\"long\"}", "0.4");

  assert_metric (r.body, "heartbeat_agent_idle{agent=\"resting\"}", "1");
  assert_metric (r.body, "heartbeat_agent_idle{agent=\"ok\"}", "0");
  assert_metric (r.body, "heartbeat_agent_idle{agent=\"backup\"}", "0");

  assert_metric (r.body, "heartbeat_agent_beats_total{agent=\"broken\"}", "1");
  assert_metric (r.body, "heartbeat_agent_beats_total{agent=\"ok\"}", "0");
  assert_metric (r.body, "heartbeat_agent_beats_total{agent=\"backup\"}", "0");
  assert_metric (r.body, "heartbeat_agent_stale_total{agent=\"slow\"}", "1");
  assert_metric (r.body, "heartbeat_agent_stale_total{agent=\"ok\"}", "0");
  assert_metric (r.body, "heartbeat_agent_timeouts_total{agent=\"ok\"}", "0");
  assert_metric (r.body, "heartbeat_agent_timeouts_total{agent=\"runner\"}", "0");
  assert_metric (r.body, "heartbeat_agent_timeouts_total{agent=\"long\"}", "1");
  assert_metric (r.body, "heartbeat_agent_stale_total{agent=\"long\"}", "0");
  assert_metric (r.body, "heartbeat_agent_beats_total{agent=\"long\"}", "0");
  assert_metric (r.body, "heartbeat_timeouts_total", "1");

  build_info = g_strdup_printf ("heartbeat_build_info{version=\"%s\",hostname=\"%s\"}", g_getenv ("HB_VERSION"),
                                g_get_host_name ());
  assert_metric (r.body, build_info, "1");

  if (promtool)
    promtool_check (f, promtool, r.body);

  /* stale episodes, not warnings: warned again every check, one episode */
  {
    gint64 until = g_get_monotonic_time () + HB_WAIT_MS * 1000;

    for (;;)
      {
        g_autofree char *warnings = NULL;

        get_metrics (f, &r);
        warnings = metric (r.body, "heartbeat_stale_total");
        g_assert_nonnull (warnings);
        if (g_ascii_strtoull (warnings, NULL, 10) >= 3)
          break;
        g_assert_cmpint (g_get_monotonic_time (), <, until);
        hb_harness_run_for (f->h, 50);
      }
    assert_metric (r.body, "heartbeat_agent_stale_total{agent=\"slow\"}", "1");
  }
  reply_clear (&r);
  request_full (f, "POST", "/v1/agents/slow/beat", NULL, NULL, 0, NULL, &r);
  g_assert_cmpuint (r.status, ==, 200);
  wait_state (f, "slow", "stale");
  get_metrics (f, &r);
  assert_metric (r.body, "heartbeat_agent_stale_total{agent=\"slow\"}", "2");
  assert_metric (r.body, "heartbeat_agent_beats_total{agent=\"slow\"}", "1");

  /* the counters go with the agent */
  reply_clear (&r);
  request_full (f, "DELETE", "/v1/agents/slow", NULL, NULL, 0, NULL, &r);
  g_assert_cmpuint (r.status, ==, 204);
  reply_clear (&r);
  SEND (f, "PUT", "/v1/agents/slow", "{}", &r);
  g_assert_cmpuint (r.status, ==, 201);
  get_metrics (f, &r);
  assert_metric (r.body, "heartbeat_agent_stale_total{agent=\"slow\"}", "0");
  assert_metric (r.body, "heartbeat_agent_beats_total{agent=\"slow\"}", "0");

  if (promtool == NULL)
    g_test_skip ("promtool (Debian prometheus) is not installed: the text was not linted");
}

static void
test_dashboard_served (Fixture *f, gconstpointer data)
{
  g_auto(Reply) r = { 0 };

  if (!start (f, NULL))
    return;
  GET (f, "/", &r);
  g_assert_cmpuint (r.status, ==, 200);
  g_assert_true (g_str_has_prefix (r.content_type, "text/html"));
  g_assert_nonnull (strstr (r.body, "EventSource(\"/v1/events\")"));
  /* no external assets */
  g_assert_null (strstr (r.body, "http://"));
  g_assert_null (strstr (r.body, "https://"));
}

/* hbctl --url: status, beat and check over HTTP */
static int
hbctl_url (Fixture *f, char **out, const char *const *args)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  g_auto(GStrv) argv = NULL;
  g_autoptr(GError) error = NULL;
  int status;

  g_strv_builder_add_many (b, g_getenv ("HBCTL"), "--url", f->base, NULL);
  for (gsize i = 0; args[i]; i++)
    g_strv_builder_add (b, args[i]);
  argv = g_strv_builder_end (b);
  g_spawn_sync (NULL, argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, out, NULL, &status, &error);
  g_assert_no_error (error);
  g_test_message ("hbctl --url … %s → %d: %s", args[0], status, *out);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128;
}

static void
test_hbctl_url (Fixture *f, gconstpointer data)
{
  g_auto(Reply) r = { 0 };
  g_autoptr(GVariant) agent = NULL;
  g_autofree char *out = NULL;

  if (!start (f, NULL))
    return;
  SEND (f, "PUT", "/v1/agents/remote", "{}", &r);
  g_assert_cmpuint (r.status, ==, 201);

  g_assert_cmpint (hbctl_url (f, &out, (const char *const[]) { "beat", "remote", "--status", "copying", NULL }), ==, 0);
  agent = hb_harness_get_agent (f->h, "remote");
  g_assert_cmpstr (hb_dict_string (agent, "status"), ==, "copying");
  g_clear_pointer (&out, g_free);

  g_assert_cmpint (hbctl_url (f, &out, (const char *const[]) { "check", "remote", NULL }), ==, 0);
  g_assert_true (g_str_has_prefix (out, "HEARTBEAT OK - "));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (hbctl_url (f, &out, (const char *const[]) { "check", "nobody", NULL }), ==, 3);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (hbctl_url (f, &out, (const char *const[]) { "list", NULL }), ==, 2);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (hbctl_url (f, &out, (const char *const[]) { "status", NULL }), ==, 0);
  g_assert_nonnull (strstr (out, "remote "));
  g_assert_nonnull (strstr (out, "copying"));
  g_assert_nonnull (strstr (out, "1 agent: 1 healthy"));
  g_clear_pointer (&out, g_free);

  /* an agent of a D-Bus caller is not HTTP's to change */
  register_dbus (f->h, "dbus-agent", NULL);
  g_assert_cmpint (hbctl_url (f, &out, (const char *const[]) { "beat", "dbus-agent", NULL }), ==, 1);
}

/* Slow and stalled clients hold a connection each and nothing more: the
 * others are served at once. */
static void
test_slow_clients_bounded (Fixture *f, gconstpointer data)
{
  g_autoptr(GPtrArray) slow = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_auto(Reply) r = { 0 };
  gint64 began;

  /* all from this test's uid: the per-user cap is another test's */
  g_setenv ("HB_HTTP_MAX_CONNECTIONS_PER_PEER", "256", TRUE);
  if (!start (f, NULL))
    return;

  for (int i = 0; i < 200; i++)
    {
      g_autoptr(GError) error = NULL;
      GSocketConnection *c = g_socket_client_connect_to_host (client, "127.0.0.1", f->h->http_port, NULL, &error);
      GOutputStream *out;
      const char *partial = i % 2 ? "POST /heartbeat HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{\"run"
                                  : "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";

      g_assert_no_error (error);
      out = g_io_stream_get_output_stream (G_IO_STREAM (c));
      g_assert_true (g_output_stream_write_all (out, partial, strlen (partial), NULL, NULL, &error));
      g_ptr_array_add (slow, c);
    }
  /* and 20 event-stream clients that never read */
  for (int i = 0; i < 20; i++)
    {
      g_autoptr(GError) error = NULL;
      GSocketConnection *c = g_socket_client_connect_to_host (client, "127.0.0.1", f->h->http_port, NULL, &error);
      const char *request = "GET /v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n";

      g_assert_no_error (error);
      g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (c)),
                                                request, strlen (request), NULL, NULL, &error));
      g_ptr_array_add (slow, c);
    }

  began = g_get_monotonic_time ();
  SEND (f, "POST", "/heartbeat", "{\"run_id\": \"fast\"}", &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);
  GET (f, "/health", &r);
  g_assert_cmpuint (r.status, ==, 200);
  /* a server the slow clients held up would answer only once their
   * requests' 10 s deadline freed it: half of that is no wall-clock bound
   * a loaded machine reaches */
  g_assert_cmpint (g_get_monotonic_time () - began, <, 5 * G_USEC_PER_SEC);
  {
    g_autoptr(GVariant) agent = hb_harness_get_agent (f->h, "fast");
    g_assert_cmpuint (hb_dict_uint64 (agent, "beats"), ==, 1);
  }
}

/* ------------------------------------------------------------------ */
/* Regressions of the security report                                  */

/* The daemon's resident set, in KiB. */
static guint64
daemon_rss_kb (Fixture *f)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", f->h->daemon->pid);
  g_autofree char *text = NULL;
  const char *line;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  line = strstr (text, "\nVmRSS:");
  g_assert_nonnull (line);
  return g_ascii_strtoull (line + 7, NULL, 10);
}

/* Whether the daemon runs under AddressSanitizer, whose quarantine keeps
 * freed memory resident by design: a bound on its RSS then says nothing,
 * and is checked in the plain build only. */
static gboolean
daemon_is_sanitized (Fixture *f)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/maps", f->h->daemon->pid);
  g_autofree char *text = NULL;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  return strstr (text, "libasan") != NULL;
}

/* Asserts the daemon's RSS grew by less than @limit_kb since @before. */
static void
assert_rss_bounded (Fixture *f,
                    guint64  before,
                    guint64  after,
                    guint64  limit_kb)
{
  if (daemon_is_sanitized (f))
    {
      g_test_message ("under ASan: the RSS bound is checked in the plain build");
      return;
    }
  g_assert_cmpuint (after, <, before + limit_kb);
}

/* A raw connection to the daemon from @local (a loopback address, NULL:
 * any), with blocking reads that give up after 5 s. */
static GSocketConnection *
raw_connect (Fixture *f, const char *local)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GError) error = NULL;
  GSocketConnection *c;

  if (local)
    {
      g_autoptr(GSocketAddress) address = g_inet_socket_address_new_from_string (local, 0);
      g_socket_client_set_local_address (client, address);
    }
  c = g_socket_client_connect_to_host (client, "127.0.0.1", f->h->http_port, NULL, &error);
  g_assert_no_error (error);
  g_socket_set_timeout (g_socket_connection_get_socket (c), 5);
  return c;
}

static void
raw_write (GSocketConnection *c, const char *text)
{
  g_autoptr(GError) error = NULL;

  /* the request line, for the record of the answer */
  if (g_object_get_data (G_OBJECT (c), "hb-request-line") == NULL)
    g_object_set_data_full (G_OBJECT (c), "hb-request-line", g_strndup (text, strcspn (text, "\r\n")), g_free);

  g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (c)),
                                            text, strlen (text), NULL, NULL, &error));
  g_assert_no_error (error);
}

/* Reads an answer: its status (0 if none came), and its head and body
 * if asked for. Stops at the end of a Content-Length body, at EOF, or at
 * the end of the head with @head_only. */
static guint
raw_read_answer (GSocketConnection *c, gboolean head_only, char **out_head, char **out_body)
{
  GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (c));
  g_autoptr(GString) text = g_string_new (NULL);
  char buffer[4096];
  const char *end;
  gssize body_at = -1;   /* an offset: appending may move text->str */
  gssize want = -1;
  guint status = 0;

  for (;;)
    {
      gssize n;

      if (body_at < 0 && (end = strstr (text->str, "\r\n\r\n")) != NULL)
        {
          const char *length = strstr (text->str, "Content-Length: ");

          body_at = end + 4 - text->str;
          want = length && length < end ? (gssize) g_ascii_strtoll (length + 16, NULL, 10) : -1;
          if (head_only)
            break;
        }
      if (body_at >= 0 && want >= 0 && (gssize) text->len - body_at >= want)
        break;
      n = g_input_stream_read (in, buffer, sizeof buffer, NULL, NULL);
      if (n <= 0)
        break;
      g_string_append_len (text, buffer, n);
    }
  if (g_str_has_prefix (text->str, "HTTP/1."))
    status = (guint) g_ascii_strtoull (text->str + 9, NULL, 10);
  end = strstr (text->str, "\r\n\r\n");
  {
    const char *line = g_object_get_data (G_OBJECT (c), "hb-request-line");
    g_auto(GStrv) words = line ? g_strsplit (line, " ", 3) : NULL;

    if (status != 0 && words && words[0] && words[1])
      {
        g_autofree char *head = end ? g_strndup (text->str, (gsize) (end - text->str)) : g_strdup (text->str);
        g_autofree char *type = NULL;
        const char *at = strstr (head, "\r\nContent-Type: ");

        if (at)
          {
            at += strlen ("\r\nContent-Type: ");
            type = g_strndup (at, strcspn (at, ";\r\n"));
          }
        hb_http_record_answer (words[0], words[1], status, type,
                               g_strcmp0 (type, "application/json") == 0 && end && !head_only ? end + 4 : NULL, -1,
                               NULL, NULL, 0);
      }
  }
  if (out_head)
    *out_head = end ? g_strndup (text->str, (gsize) (end - text->str)) : g_strdup (text->str);
  if (out_body)
    *out_body = g_strdup (end ? end + 4 : "");
  g_test_message ("raw answer: %.200s", text->str);
  return status;
}

/* Whether the server closes @c within @ms (reads return EOF or an error). */
static gboolean
raw_closed_within (GSocketConnection *c, guint ms)
{
  GSocket *socket = g_socket_connection_get_socket (c);
  gint64 until = g_get_monotonic_time () + ms * 1000;
  char buffer[4096];

  while (g_get_monotonic_time () < until)
    {
      g_autoptr(GError) error = NULL;
      gssize n;

      if (!g_socket_condition_timed_wait (socket, G_IO_IN, until - g_get_monotonic_time (), NULL, &error))
        return FALSE;
      n = g_socket_receive (socket, buffer, sizeof buffer, NULL, &error);
      if (n <= 0)
        return TRUE;
    }
  return FALSE;
}

/* 1. Deeply nested JSON is refused before a parser recurses into it. */
static void
test_deep_json (Fixture *f, gconstpointer data)
{
  const char *const targets[][2] = { { "POST", "/heartbeat" }, { "POST", "/event" }, { "PUT", "/v1/agents/deep" } };
  GString *body = g_string_new ("{\"run_id\":\"d\",\"extra\":");
  g_auto(Reply) r = { 0 };

  if (!start (f, NULL))
    {
      g_string_free (body, TRUE);
      return;
    }
  /* 20000 levels crashed the daemon (stack overflow) when the body was
   * given to json-glib as it is; 32000 is as deep as 64 KiB allows */
  for (int i = 0; i < 32000; i++)
    g_string_append_c (body, '[');
  for (int i = 0; i < 32000; i++)
    g_string_append_c (body, ']');
  g_string_append_c (body, '}');

  for (gsize i = 0; i < G_N_ELEMENTS (targets); i++)
    {
      request_full (f, targets[i][0], targets[i][1], "application/json", body->str, (gssize) body->len, NULL, &r);
      assert_error (&r, 400, "JSON");
      reply_clear (&r);
      GET (f, "/health", &r);
      g_assert_cmpuint (r.status, ==, 200);
      reply_clear (&r);
    }
  g_string_free (body, TRUE);
  hb_call_error (f->h, NULL, "GetAgent", g_variant_new ("(s)", "d"), "NotFound");
  hb_call_error (f->h, NULL, "GetAgent", g_variant_new ("(s)", "deep"), "NotFound");
}

/* 2. null anywhere in metadata is refused, naming the member; nothing is
 * registered and D-Bus replies keep working. */
static void
test_null_member (Fixture *f, gconstpointer data)
{
  g_auto(Reply) r = { 0 };
  g_autoptr(GVariant) list = NULL;
  JsonObject *error;

  if (!start (f, NULL))
    return;
  SEND (f, "POST", "/heartbeat", "{\"run_id\":\"n2\",\"extra\":{\"y\":null}}", &r);
  assert_error (&r, 400, "“y”");
  error = json_object_get_object_member (object (&r), "error");
  g_assert_nonnull (strstr (json_object_get_string_member (error, "message"), "“extra”"));
  reply_clear (&r);
  SEND (f, "PUT", "/v1/agents/n3", "{\"metadata\": {\"a\": [1, null]}}", &r);
  assert_error (&r, 400, "“a”");
  reply_clear (&r);
  SEND (f, "POST", "/event", "{\"type\": \"t\", \"deep\": {\"z\": null}}", &r);
  assert_error (&r, 400, "“z”");
  reply_clear (&r);
  hb_call_error (f->h, NULL, "GetAgent", g_variant_new ("(s)", "n2"), "NotFound");
  hb_call_error (f->h, NULL, "GetAgent", g_variant_new ("(s)", "n3"), "NotFound");
  list = hb_call_ok (f->h, NULL, "ListAgents", NULL, "(aa{sv})");

  /* a top-level "progress": null or "status": null of a beat is no value */
  SEND (f, "PUT", "/v1/agents/n4", "{}", &r);
  g_assert_cmpuint (r.status, ==, 201);
  reply_clear (&r);
  SEND (f, "POST", "/v1/agents/n4/beat", "{\"progress\": null, \"status\": null}", &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);
  g_clear_pointer (&list, g_variant_unref);
  list = hb_call_ok (f->h, NULL, "ListAgents", NULL, "(aa{sv})");

  /* item 11: \u0000 used to cut an id short ("a\u0000b" registered "a") */
  SEND (f, "POST", "/heartbeat", "{\"run_id\":\"a\\u0000b\"}", &r);
  assert_error (&r, 400, "\\u0000");
  reply_clear (&r);
  SEND (f, "POST", "/v1/agents/n4/beat", "{\"status\": \"ok\\u0000error\"}", &r);
  assert_error (&r, 400, "\\u0000");
  reply_clear (&r);
  hb_call_error (f->h, NULL, "GetAgent", g_variant_new ("(s)", "a"), "NotFound");

  /* found by fuzz-http: json-glib's message for a bad \u escape quotes
   * bytes that are not UTF-8; the error must still be JSON */
  SEND (f, "POST", "/heartbeat", "{\"rund\":\"a\\u\\20010\"br}", &r);
  assert_error (&r, 400, "not valid JSON");
  reply_clear (&r);
}

/* 3. A Content-Length that wraps is refused with 413 at once, and what
 * follows it is not kept. */
static void
test_content_length (Fixture *f, gconstpointer data)
{
  g_autoptr(GSocketConnection) c = NULL;
  g_autofree char *head = NULL;
  g_autofree char *request = NULL;
  g_autofree char *chunk = g_strnfill (64 * 1024, 'a');
  GOutputStream *out;
  guint64 before, after;
  gint64 began;
  gsize sent = 0;
  guint status;

  if (!start (f, NULL))
    return;
  before = daemon_rss_kb (f);
  c = raw_connect (f, NULL);
  out = g_io_stream_get_output_stream (G_IO_STREAM (c));
  request = g_strdup_printf ("POST /heartbeat HTTP/1.1\r\nHost: localhost:%u\r\nContent-Type: application/json\r\n"
                             "Content-Length: 18446744073709551615\r\n\r\n", f->h->http_port);
  began = g_get_monotonic_time ();
  raw_write (c, request);
  /* 24 MB: kept, it would show in the daemon's RSS */
  while (sent < 24 * 1024 * 1024)
    {
      g_autoptr(GError) error = NULL;
      gsize n = 0;

      if (!g_output_stream_write_all (out, chunk, 64 * 1024, &n, NULL, &error))
        break;   /* the server may close after its answer */
      sent += n;
    }
  status = raw_read_answer (c, FALSE, &head, NULL);
  after = daemon_rss_kb (f);
  g_test_message ("sent %zu bytes; answered %u after %" G_GINT64_FORMAT " ms; RSS %" G_GUINT64_FORMAT
                  " kB → %" G_GUINT64_FORMAT " kB", sent, status, (g_get_monotonic_time () - began) / 1000,
                  before, after);
  g_assert_cmpuint (status, ==, 413);
  g_assert_cmpint (g_get_monotonic_time () - began, <, 3 * G_USEC_PER_SEC);
  assert_rss_bounded (f, before, after, 16 * 1024);

  /* a malformed or repeated Content-Length is no length */
  {
    const char *const bad[] = { "Content-Length: 1x\r\n", "Content-Length: 2\r\nContent-Length: 2\r\n",
                                "Content-Length: -1\r\n", "Content-Length: 99999999999999999999999\r\n" };

    for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
      {
        g_autoptr(GSocketConnection) b = raw_connect (f, NULL);
        g_autofree char *text = g_strdup_printf ("POST /heartbeat HTTP/1.1\r\nHost: localhost\r\n"
                                                 "Content-Type: application/json\r\n%s\r\n{}", bad[i]);

        raw_write (b, text);
        status = raw_read_answer (b, FALSE, NULL, NULL);
        g_assert_true (status == 400 || status == 413);
      }
  }
  /* and the daemon still answers */
  {
    g_auto(Reply) r = { 0 };

    GET (f, "/health", &r);
    g_assert_cmpuint (r.status, ==, 200);
  }
}

/* 3. With tokens, a write without one is refused before its body is sent. */
static void
test_token_before_body (Fixture *f, gconstpointer data)
{
  g_autoptr(GSocketConnection) c = NULL;
  g_autofree char *request = NULL;
  g_autofree char *head = NULL;

  if (!start_with_tokens (f, "s3cret\n"))
    return;

  c = raw_connect (f, NULL);
  request = g_strdup_printf ("POST /heartbeat HTTP/1.1\r\nHost: localhost:%u\r\nContent-Type: application/json\r\n"
                             "Content-Length: 60000\r\n\r\n", f->h->http_port);
  raw_write (c, request);   /* and no body */
  g_assert_cmpuint (raw_read_answer (c, FALSE, &head, NULL), ==, 401);
  g_assert_nonnull (strstr (head, "WWW-Authenticate: Bearer"));
}

/* 4. Event streams keep nothing of what they sent. */
static void
test_events_memory (Fixture *f, gconstpointer data)
{
  g_autofree char *payload = g_strnfill (1000, 'p');
  g_autofree char *event = NULL;
  g_autofree char *uri = NULL;
  Sse *clients[2];
  g_auto(Reply) r = { 0 };
  guint64 before, after;
  gboolean timed_out = FALSE;
  guint timeout;

  if (!start (f, NULL))
    return;
  for (int i = 0; i < 2; i++)
    clients[i] = sse_open (f);
  SEND (f, "POST", "/event", "{\"type\": \"mark\"}", &r);
  for (int i = 0; i < 2; i++)
    sse_wait (clients[i], " event {\"type\":\"mark\"");
  reply_clear (&r);
  before = daemon_rss_kb (f);

  event = g_strdup_printf ("{\"type\": \"bulk\", \"payload\": \"%s\"}", payload);
  uri = g_strconcat (f->base, "/event", NULL);
  for (int n = 0; n < 10000; n++)
    {
      g_autoptr(SoupMessage) msg = soup_message_new ("POST", uri);
      g_autoptr(GBytes) request = g_bytes_new_static (event, strlen (event));
      g_autoptr(GBytes) reply = NULL;

      /* on the connection of the last one: a new connection for each
       * POST (libsoup's default) would measure connection churn */
      soup_message_add_flags (msg, SOUP_MESSAGE_IDEMPOTENT);
      soup_message_set_request_body_from_bytes (msg, "application/json", request);
      reply = soup_session_send_and_read (f->session, msg, NULL, NULL);
      record_message (msg, reply);
      g_assert_cmpuint (soup_message_get_status (msg), ==, 202);
      reply_clear (&r);
      /* the clients keep reading */
      while (g_main_context_iteration (NULL, FALSE))
        ;
      if (n % 1000 == 999)
        for (int i = 0; i < 2; i++)
          g_ptr_array_set_size (clients[i]->events, 0);
    }
  SEND (f, "POST", "/event", "{\"type\": \"done\"}", &r);
  for (int i = 0; i < 2; i++)
    sse_wait (clients[i], " event {\"type\":\"done\"");
  reply_clear (&r);
  after = daemon_rss_kb (f);
  g_test_message ("2 event clients, 10000 events of 1 kB: RSS %" G_GUINT64_FORMAT " kB → %" G_GUINT64_FORMAT " kB",
                  before, after);
  assert_rss_bounded (f, before, after, 16 * 1024);

  GET (f, "/health", &r);
  g_assert_cmpint (json_object_get_int_member (object (&r), "event-clients"), ==, 2);
  reply_clear (&r);
  for (int i = 0; i < 2; i++)
    sse_free (clients[i]);
  /* the server notices the clients went away when it next writes to
   * them (an event, or the keep-alive comment every 15 s) */
  timeout = g_timeout_add (HB_WAIT_MS, on_timeout_flag, &timed_out);
  for (;;)
    {
      gint64 n;

      SEND (f, "POST", "/event", "{\"type\": \"ping\"}", &r);
      reply_clear (&r);
      GET (f, "/health", &r);
      n = json_object_get_int_member (object (&r), "event-clients");
      reply_clear (&r);
      if (n == 0)
        break;
      g_assert_false (timed_out);
      hb_harness_run_for (f->h, 50);
    }
  if (!timed_out)
    g_source_remove (timeout);
}

/* 5. A request whose headers do not come in time, and a connection idle
 * for too long, are closed. */
static void
test_request_timeout (Fixture *f, gconstpointer data)
{
  g_autoptr(GSocketConnection) half = NULL;
  g_autoptr(GSocketConnection) idle = NULL;
  g_autofree char *request = NULL;
  gint64 began;

  g_setenv ("HB_HTTP_REQUEST_TIMEOUT_MS", "500", TRUE);
  g_setenv ("HB_HTTP_IDLE_TIMEOUT_MS", "800", TRUE);
  if (!start (f, NULL))
    return;

  /* (the times are taken before what starts the server's timers, so
   * that a slow test process cannot make them look shorter) */
  began = g_get_monotonic_time ();
  half = raw_connect (f, NULL);
  raw_write (half, "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ");
  g_assert_true (raw_closed_within (half, 4000));
  g_assert_cmpint (g_get_monotonic_time () - began, >=, 500 * 1000);

  /* a request answered, then nothing: closed after the idle timeout */
  idle = raw_connect (f, NULL);
  request = g_strdup_printf ("GET /health HTTP/1.1\r\nHost: localhost:%u\r\n\r\n", f->h->http_port);
  began = g_get_monotonic_time ();
  raw_write (idle, request);
  g_assert_cmpuint (raw_read_answer (idle, FALSE, NULL, NULL), ==, 200);
  g_assert_true (raw_closed_within (idle, 4000));
  g_assert_cmpint (g_get_monotonic_time () - began, >=, 800 * 1000);
}

/* 5. At most 8 event streams per local user (Retry-After), whatever
 * loopback address it uses. */
static void
test_events_client_limit (Fixture *f, gconstpointer data)
{
  GPtrArray *clients = g_ptr_array_new_with_free_func ((GDestroyNotify) sse_free);
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = NULL;
  g_autofree char *head = NULL;
  g_autofree char *body = NULL;
  g_autofree char *request = NULL;
  g_auto(Reply) r = { 0 };

  if (!start (f, NULL))
    return;
  for (int i = 0; i < 8; i++)
    g_ptr_array_add (clients, sse_open (f));
  SEND (f, "POST", "/event", "{\"type\": \"mark\"}", &r);
  for (guint i = 0; i < clients->len; i++)
    sse_wait (g_ptr_array_index (clients, i), "mark");
  reply_clear (&r);

  /* the ninth from 127.0.0.1 */
  uri = g_strconcat (f->base, "/v1/events", NULL);
  msg = soup_message_new ("GET", uri);
  bytes = soup_session_send_and_read (f->session, msg, NULL, &error);
  g_assert_no_error (error);
  record_message (msg, bytes);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 503);
  g_assert_cmpstr (soup_message_headers_get_one (soup_message_get_response_headers (msg), "Retry-After"), ==, "5");
  g_assert_nonnull (strstr (g_bytes_get_data (bytes, NULL), "from uid 0 (at most 8 per local user"));

  /* nor from another loopback address: the same user (issue 20; other
   * users, and the 64 in all, are in /http/events-per-uid) */
  request = g_strdup_printf ("GET /v1/events HTTP/1.1\r\nHost: localhost:%u\r\n\r\n", f->h->http_port);
  {
    g_autoptr(GSocketConnection) c = raw_connect (f, "127.0.0.9");

    raw_write (c, request);
    g_assert_cmpuint (raw_read_answer (c, FALSE, &head, &body), ==, 503);
    g_assert_nonnull (strstr (head, "Retry-After: 5"));
    g_assert_nonnull (strstr (body, "at most 8"));
  }
  g_ptr_array_unref (clients);
}

/* 5. DNS rebinding: a Host that is not this server is refused. */
static void
test_host_header (Fixture *f, gconstpointer data)
{
  g_autofree char *good = NULL;
  g_autofree char *bad_port = NULL;

  if (!start (f, NULL))
    return;
  good = g_strdup_printf ("localhost:%u", f->h->http_port);
  bad_port = g_strdup_printf ("127.0.0.1:%u", f->h->http_port == 1 ? 2 : f->h->http_port - 1);
  {
    const struct { const char *host; guint status; } cases[] = {
      { "evil.example", 421 }, { "evil.example:80", 421 }, { "127.0.0.1.evil.example", 421 },
      { bad_port, 421 }, { "localhost", 200 }, { good, 200 }, { "LOCALHOST", 200 }, { "127.0.0.1", 200 },
      { "[::1]", 200 }, { "[::1]:1", 421 }, { "localhost\r\nHost: evil.example", 421 },
    };

    for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
      {
        g_autoptr(GSocketConnection) c = raw_connect (f, NULL);
        g_autofree char *request = g_strdup_printf ("GET /health HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                                                    cases[i].host);
        g_autofree char *head = NULL;
        g_autofree char *body = NULL;

        raw_write (c, request);
        g_test_message ("Host: %s", cases[i].host);
        g_assert_cmpuint (raw_read_answer (c, FALSE, &head, &body), ==, cases[i].status);
        if (cases[i].status == 421)
          {
            g_assert_nonnull (strstr (head, "application/json"));
            g_assert_nonnull (strstr (body, "\"code\":421"));
          }
      }
  }
  /* no Host at all in HTTP/1.0 */
  {
    g_autoptr(GSocketConnection) c = raw_connect (f, NULL);

    raw_write (c, "GET /health HTTP/1.0\r\n\r\n");
    g_assert_cmpuint (raw_read_answer (c, FALSE, NULL, NULL), ==, 200);
  }
  /* a write with a foreign Host changes nothing */
  {
    g_autoptr(GSocketConnection) c = raw_connect (f, NULL);

    raw_write (c, "POST /heartbeat HTTP/1.1\r\nHost: evil.example\r\nContent-Type: application/json\r\n"
                  "Content-Length: 17\r\n\r\n{\"run_id\": \"ev\"}");
    g_assert_cmpuint (raw_read_answer (c, FALSE, NULL, NULL), ==, 421);
    hb_call_error (f->h, NULL, "GetAgent", g_variant_new ("(s)", "ev"), "NotFound");
  }
}

/* 6. A refused POST /heartbeat for a new id announces nothing. */
static void
test_refused_post_silent (Fixture *f, gconstpointer data)
{
  g_autofree char *big = g_strnfill (20000, 'b');
  g_autofree char *too_large = NULL;
  Sse *s;
  g_auto(Reply) r = { 0 };
  guint from;

  if (!start (f, NULL))
    return;
  s = sse_open (f);
  SEND (f, "POST", "/event", "{\"type\": \"mark\"}", &r);
  sse_wait (s, " event {\"type\":\"mark\"");
  reply_clear (&r);
  from = s->events->len;

  SEND (f, "POST", "/heartbeat", "{\"run_id\": \"new1\", \"x\": {\"y\": null}}", &r);
  assert_error (&r, 400, "“y”");
  reply_clear (&r);
  SEND (f, "POST", "/heartbeat", "{\"run_id\": \"new2\", \"status\": \"\"}", &r);
  assert_error (&r, 400, "status");
  reply_clear (&r);
  SEND (f, "POST", "/heartbeat", "{\"run_id\": \"new3\", \"status\": \"a\\u0001b\"}", &r);
  assert_error (&r, 400, "control");
  reply_clear (&r);
  too_large = g_strdup_printf ("{\"run_id\": \"new4\", \"big\": \"%s\"}", big);
  SEND (f, "POST", "/heartbeat", too_large, &r);
  g_assert_cmpuint (r.status, ==, 400);
  reply_clear (&r);

  SEND (f, "POST", "/event", "{\"type\": \"marker\"}", &r);
  sse_wait (s, " event {\"type\":\"marker\"");
  reply_clear (&r);
  /* the marker is the only event since the mark */
  for (guint i = from; i < s->events->len; i++)
    g_test_message ("event: %.100s", (const char *) g_ptr_array_index (s->events, i));
  g_assert_cmpuint (s->events->len, ==, from + 1);
  for (int i = 1; i <= 4; i++)
    {
      g_autofree char *id = g_strdup_printf ("new%d", i);
      hb_call_error (f->h, NULL, "GetAgent", g_variant_new ("(s)", id), "NotFound");
    }
  sse_free (s);
}

/* 7. HTTP creates at most [limits] agents-per-uid agents. */
static void
test_quota (Fixture *f, gconstpointer data)
{
  g_autofree char *config = g_strdup_printf ("%s", hb_default_config);
  g_auto(Reply) r = { 0 };
  char *at;

  /* the default test configuration, with agents-per-uid=2 */
  at = strstr (config, "agents-per-uid=");
  g_assert_nonnull (at);
  at[strlen ("agents-per-uid=")] = '2';
  if (!start (f, config))
    return;

  SEND (f, "PUT", "/v1/agents/q1", "{}", &r);
  g_assert_cmpuint (r.status, ==, 201);
  reply_clear (&r);
  SEND (f, "POST", "/heartbeat", "{\"run_id\": \"q2\"}", &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);
  SEND (f, "PUT", "/v1/agents/q3", "{}", &r);
  assert_error (&r, 429, "agents-per-uid");
  reply_clear (&r);
  SEND (f, "POST", "/heartbeat", "{\"run_id\": \"q3\"}", &r);
  assert_error (&r, 429, "agents-per-uid");
  reply_clear (&r);
  hb_call_error (f->h, NULL, "GetAgent", g_variant_new ("(s)", "q3"), "NotFound");

  /* the agents there may still be changed */
  SEND (f, "PUT", "/v1/agents/q1", "{\"task-id\": \"t\"}", &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);
  SEND (f, "POST", "/heartbeat", "{\"run_id\": \"q2\"}", &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);
  /* D-Bus callers are not counted against HTTP */
  register_dbus (f->h, "dbus-agent", NULL);
  request_full (f, "DELETE", "/v1/agents/q1", NULL, NULL, 0, NULL, &r);
  g_assert_cmpuint (r.status, ==, 204);
  reply_clear (&r);
  SEND (f, "PUT", "/v1/agents/q3", "{}", &r);
  g_assert_cmpuint (r.status, ==, 201);
}

/* 8. HEAD wherever GET is allowed. */
static void
test_head (Fixture *f, gconstpointer data)
{
  const char *const paths[] = { "/health", "/runs", "/v1/agents", "/v1/agents/h", "/runs/h", "/metrics",
                                "/api/heartbeat/status", "/", "/v1/host", "/v1/history", "/v1/agents/h/history" };
  g_auto(Reply) r = { 0 };

  if (!start (f, NULL))
    return;
  SEND (f, "PUT", "/v1/agents/h", "{}", &r);
  reply_clear (&r);
  for (gsize i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_autofree char *uri = g_strconcat (f->base, paths[i], NULL);
      g_autoptr(SoupMessage) msg = soup_message_new ("HEAD", uri);
      g_autoptr(GBytes) bytes = NULL;
      g_autoptr(GError) error = NULL;

      bytes = soup_session_send_and_read (f->session, msg, NULL, &error);
      g_assert_no_error (error);
      record_message (msg, bytes);
      g_test_message ("HEAD %s → %u", paths[i], soup_message_get_status (msg));
      g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
      g_assert_cmpuint (g_bytes_get_size (bytes), ==, 0);
      g_assert_nonnull (soup_message_headers_get_content_type (soup_message_get_response_headers (msg), NULL));
      if (strcmp (paths[i], "/health") == 0)
        {
          GET (f, paths[i], &r);
          g_assert_cmpint (soup_message_headers_get_content_length (soup_message_get_response_headers (msg)), ==,
                           (goffset) strlen (r.body));
          reply_clear (&r);
        }
    }
  {
    g_autoptr(GSocketConnection) c = raw_connect (f, NULL);
    g_autofree char *head = NULL;
    g_autofree char *body = NULL;
    g_autofree char *request = g_strdup_printf ("HEAD /v1/events HTTP/1.1\r\nHost: localhost:%u\r\n"
                                                "Connection: close\r\n\r\n", f->h->http_port);

    raw_write (c, request);
    g_assert_cmpuint (raw_read_answer (c, FALSE, &head, &body), ==, 200);
    g_assert_nonnull (strstr (head, "text/event-stream"));
    g_assert_cmpstr (body, ==, "");
  }
  {
    g_autofree char *uri = g_strconcat (f->base, "/health", NULL);
    g_autoptr(SoupMessage) msg = soup_message_new ("DELETE", uri);
    g_autoptr(GBytes) bytes = soup_session_send_and_read (f->session, msg, NULL, NULL);

    record_message (msg, bytes);
    g_assert_cmpuint (soup_message_get_status (msg), ==, 405);
    g_assert_cmpstr (soup_message_headers_get_one (soup_message_get_response_headers (msg), "Allow"), ==, "GET, HEAD");
  }
  {
    g_autofree char *uri = g_strconcat (f->base, "/heartbeat", NULL);
    g_autoptr(SoupMessage) msg = soup_message_new ("HEAD", uri);
    g_autoptr(GBytes) bytes = soup_session_send_and_read (f->session, msg, NULL, NULL);

    record_message (msg, bytes);
    g_assert_cmpuint (soup_message_get_status (msg), ==, 405);
    g_assert_cmpstr (soup_message_headers_get_one (soup_message_get_response_headers (msg), "Allow"), ==, "POST");
  }
  {
    g_autofree char *uri = g_strconcat (f->base, "/v1/agents/h", NULL);
    g_autoptr(SoupMessage) msg = soup_message_new ("POST", uri);
    g_autoptr(GBytes) bytes = soup_session_send_and_read (f->session, msg, NULL, NULL);

    record_message (msg, bytes);
    g_assert_cmpuint (soup_message_get_status (msg), ==, 405);
    g_assert_cmpstr (soup_message_headers_get_one (soup_message_get_response_headers (msg), "Allow"), ==,
                     "GET, HEAD, PUT, DELETE");
  }
}

/* 9. A port in use does not stop the daemon: D-Bus serves, and HTTP
 * starts once the port is free. */
static gboolean
health_answers (Fixture *f)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) c = g_socket_client_connect_to_host (client, "127.0.0.1", f->h->http_port, NULL, NULL);
  g_autofree char *request = NULL;

  if (c == NULL)
    return FALSE;
  g_socket_set_timeout (g_socket_connection_get_socket (c), 5);
  request = g_strdup_printf ("GET /health HTTP/1.1\r\nHost: localhost:%u\r\nConnection: close\r\n\r\n",
                             f->h->http_port);
  raw_write (c, request);
  return raw_read_answer (c, FALSE, NULL, NULL) == 200;
}

static void
test_port_in_use (Fixture *f, gconstpointer data)
{
  g_autoptr(GSocketListener) listener = g_socket_listener_new ();
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GSocketAddress) effective = NULL;
  g_autoptr(GVariant) status = NULL;
  g_autoptr(GError) error = NULL;
  gint64 until;

  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  g_setenv ("HB_HTTP_LISTEN_RETRY_MS", "200", TRUE);
  address = g_inet_socket_address_new_from_string ("127.0.0.1", 0);
  g_socket_listener_add_address (listener, address, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL,
                                 &effective, &error);
  g_assert_no_error (error);
  hb_harness_write_config (f->h, hb_default_config);
  f->h->http_port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
  f->base = g_strdup_printf ("http://127.0.0.1:%u", f->h->http_port);
  hb_harness_start_daemon (f->h, 0);

  /* D-Bus serves, and says it is degraded, and why */
  status = hb_call_ok (f->h, NULL, "GetStatus", NULL, "(a{sv})");
  g_assert_false (f->h->daemon->exited);
  {
    g_autoptr(GVariant) dict = g_variant_get_child_value (status, 0);
    g_assert_nonnull (strstr (hb_dict_string (dict, "problem"), "in use"));
  }
  g_clear_pointer (&status, g_variant_unref);

  g_socket_listener_close (listener);
  until = g_get_monotonic_time () + HB_WAIT_MS * 1000;
  while (!health_answers (f))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, until);
      hb_harness_run_for (f->h, 100);
    }
  status = hb_call_ok (f->h, NULL, "GetStatus", NULL, "(a{sv})");
  {
    g_autoptr(GVariant) dict = g_variant_get_child_value (status, 0);
    g_assert_cmpstr (hb_dict_string (dict, "problem"), ==, "");
  }
}

static guint
daemon_open_fds (Fixture *f)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/fd", f->h->daemon->pid);
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

/* Found while fuzzing: Debian 12's libsoup drops a connection its client
 * closed without closing the socket, so each such connection kept an fd
 * (CLOSE-WAIT) for good: 300 curl calls, 300 fds; a local client could use
 * them all up. The daemon now closes them itself. */
static void
test_closed_connections_release_fds (Fixture *f, gconstpointer data)
{
  g_autofree char *request = NULL;
  guint before, after = 0;
  gint64 until;

  if (!start (f, NULL))
    return;
  request = g_strdup_printf ("GET /health HTTP/1.1\r\nHost: localhost:%u\r\n\r\n", f->h->http_port);
  before = daemon_open_fds (f);
  for (guint i = 0; i < 200; i++)
    {
      g_autoptr(GSocketConnection) c = raw_connect (f, NULL);

      raw_write (c, request);
      g_assert_cmpuint (raw_read_answer (c, FALSE, NULL, NULL), ==, 200);
      g_io_stream_close (G_IO_STREAM (c), NULL, NULL);
    }
  until = g_get_monotonic_time () + HB_WAIT_MS * 1000;
  while ((after = daemon_open_fds (f)) > before + 20 && g_get_monotonic_time () < until)
    hb_harness_run_for (f->h, 50);
  g_test_message ("daemon fds: %u before, %u after 200 closed connections", before, after);
  g_assert_cmpuint (after, <=, before + 20);
  g_assert_true (health_answers (f));
}

/* Requests pipelined and then the end of the client's side (a shutdown
 * of its writing half, as `curl` and HTTP/1.1 clients that send their
 * last request do): every request is answered before the daemon closes.
 * (Once the second of two was lost.) */
static void
test_pipelined_then_end (Fixture *f, gconstpointer data)
{
  g_autoptr(GString) requests = g_string_new (NULL);
  g_autoptr(GString) answers = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  const char *body = "{\"run_id\": \"piped\", \"status\": \"working\"}";
  GInputStream *in;
  guint answered = 0;

  if (!start (f, NULL))
    return;
  for (guint n = 1; n <= 5; n++)
    {
      g_autoptr(GSocketConnection) c = raw_connect (f, NULL);
      const char *p;

      g_string_truncate (requests, 0);
      g_string_truncate (answers, 0);
      for (guint i = 0; i < n; i++)
        g_string_append_printf (requests,
                                "POST /heartbeat HTTP/1.1\r\nHost: localhost:%u\r\n"
                                "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                                f->h->http_port, strlen (body), body);
      g_socket_set_timeout (g_socket_connection_get_socket (c), 30);
      raw_write (c, requests->str);
      g_assert_true (g_socket_shutdown (g_socket_connection_get_socket (c), FALSE, TRUE, &error));
      g_assert_no_error (error);

      /* everything until the daemon closes (a hang fails at 30 s) */
      in = g_io_stream_get_input_stream (G_IO_STREAM (c));
      for (;;)
        {
          char buffer[4096];
          gssize got = g_input_stream_read (in, buffer, sizeof buffer, NULL, &error);

          g_assert_no_error (error);
          if (got == 0)
            break;
          g_string_append_len (answers, buffer, got);
        }
      answered = 0;
      for (p = answers->str; (p = strstr (p, "HTTP/1.1 200 ")) != NULL; p++)
        answered++;
      g_test_message ("%u pipelined then end: %u answered", n, answered);
      g_assert_cmpuint (answered, ==, n);
    }
}

/* ------------------------------------------------------------------ */
/* gzip                                                                */

/* GET /metrics on @session with @accept as Accept-Encoding (NULL: none):
 * the body as it came, and the Content-Encoding and Vary headers. */
static GBytes *
get_raw_metrics (Fixture     *f,
                 SoupSession *session,
                 const char  *method,
                 const char  *accept,
                 char       **encoding,
                 char       **vary,
                 goffset     *content_length)
{
  g_autofree char *uri = g_strconcat (f->base, "/metrics", NULL);
  g_autoptr(SoupMessage) msg = soup_message_new (method, uri);
  g_autoptr(GError) error = NULL;
  SoupMessageHeaders *headers;
  GBytes *bytes;

  if (accept)
    soup_message_headers_replace (soup_message_get_request_headers (msg), "Accept-Encoding", accept);
  bytes = soup_session_send_and_read (session, msg, NULL, &error);
  g_assert_no_error (error);
  record_message (msg, bytes);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  headers = soup_message_get_response_headers (msg);
  *encoding = g_strdup (soup_message_headers_get_one (headers, "Content-Encoding"));
  *vary = g_strdup (soup_message_headers_get_one (headers, "Vary"));
  if (content_length)
    *content_length = soup_message_headers_get_content_length (headers);
  g_test_message ("%s /metrics, Accept-Encoding: %s → %zu bytes, Content-Encoding: %s", method,
                  accept ? accept : "(none)", g_bytes_get_size (bytes), *encoding ? *encoding : "(none)");
  return bytes;
}

static GBytes *
gunzip (GBytes *bytes)
{
  g_autoptr(GZlibDecompressor) decompressor = g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP);
  g_autoptr(GInputStream) raw = g_memory_input_stream_new_from_bytes (bytes);
  g_autoptr(GInputStream) in = g_converter_input_stream_new (raw, G_CONVERTER (decompressor));
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
  g_autoptr(GError) error = NULL;

  g_output_stream_splice (out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET,
                          NULL, &error);
  g_assert_no_error (error);
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
}

static void
on_registered_async (GObject *source, GAsyncResult *result, gpointer user_data)
{
  guint *pending = user_data;
  g_autoptr(GError) error = NULL;
  GVariant *reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);

  g_assert_no_error (error);
  g_variant_unref (reply);
  (*pending)--;
}

/* The same exposition: the same lines, but for last-activity times, which
 * the daemon converts from its monotonic clock to wall-clock time at each
 * scrape (a microsecond of difference either way) */
static void
assert_same_metrics (GBytes *a, GBytes *b)
{
  g_autofree char *text_a = g_strndup (g_bytes_get_data (a, NULL), g_bytes_get_size (a));
  g_autofree char *text_b = g_strndup (g_bytes_get_data (b, NULL), g_bytes_get_size (b));
  /* not g_strsplit(): its strstr() is linear in what is left under ASan,
   * whose interceptor measures the whole string each time (split in lines,
   * 933 kB took 6 s there, and this test 47 s in all) */
  g_auto(GStrv) lines_a = g_strsplit_set (text_a, "\n", -1);
  g_auto(GStrv) lines_b = g_strsplit_set (text_b, "\n", -1);

  g_assert_cmpuint (g_strv_length (lines_a), ==, g_strv_length (lines_b));
  for (gsize i = 0; lines_a[i]; i++)
    {
      const char *space_a = strrchr (lines_a[i], ' ');
      const char *space_b = strrchr (lines_b[i], ' ');

      if (strcmp (lines_a[i], lines_b[i]) == 0)
        continue;
      g_assert_true (g_str_has_prefix (lines_a[i], "heartbeat_agent_last_activity_timestamp_seconds{"));
      g_assert_nonnull (space_a);
      g_assert_nonnull (space_b);
      g_assert_cmpint (space_a - lines_a[i], ==, space_b - lines_b[i]);
      g_assert_true (strncmp (lines_a[i], lines_b[i], (gsize) (space_a - lines_a[i])) == 0);
      g_assert_cmpfloat (fabs (g_ascii_strtod (space_a + 1, NULL) - g_ascii_strtod (space_b + 1, NULL)), <, 0.01);
    }
}

/* @n agents as a CI fleet has them: "build-runner-0001", task "job-1" */
static void
register_many (Fixture *f, guint n)
{
  guint pending = 0;

  for (guint i = 1; i <= n; i++)
    {
      g_autofree char *id = g_strdup_printf ("build-runner-%04u", i);
      g_autofree char *task = g_strdup_printf ("job-%u", i);
      GVariantDict options;

      g_variant_dict_init (&options, NULL);
      g_variant_dict_insert (&options, "task-id", "s", task);
      g_dbus_connection_call (f->h->client, HB_NAME, HB_PATH, HB_IFACE, "Register",
                              g_variant_new ("(s@a{sv})", id, g_variant_dict_end (&options)), NULL,
                              G_DBUS_CALL_FLAGS_NONE, 60000, NULL, on_registered_async, &pending);
      pending++;
      /* a bounded number in flight */
      while (pending >= 64)
        g_main_context_iteration (NULL, TRUE);
    }
  while (pending > 0)
    g_main_context_iteration (NULL, TRUE);
}

/* /metrics gzipped when Accept-Encoding allows it, the same text
 * otherwise; the sizes at 1,000 agents. */
static void
test_metrics_gzip (Fixture *f, gconstpointer data)
{
  static const char config[] =
    "[monitor]\ncheck-interval=1s\nstale-threshold=1h\ntimeout-threshold=1d\n";
  g_autoptr(SoupSession) raw = soup_session_new_with_options ("timeout", 30, NULL);
  g_autofree char *promtool = g_find_program_in_path ("promtool");
  g_autoptr(GBytes) plain = NULL, gzipped = NULL, unzipped = NULL, head = NULL;
  g_autofree char *encoding = NULL, *vary = NULL;
  goffset length = -1;
  g_auto(Reply) r = { 0 };
  const guint n = 1000;

  if (!start (f, config))
    return;
  /* no decoding on our side: the bytes as they come */
  soup_session_remove_feature_by_type (raw, SOUP_TYPE_CONTENT_DECODER);

  /* nobody yet: still valid text */
  get_metrics (f, &r);
  if (promtool)
    promtool_check (f, promtool, r.body);

  register_many (f, n);

  plain = get_raw_metrics (f, raw, "GET", NULL, &encoding, &vary, NULL);
  g_assert_null (encoding);
  g_assert_cmpstr (vary, ==, "Accept-Encoding");
  g_assert_true (g_str_has_prefix (g_bytes_get_data (plain, NULL), "# HELP "));
  g_clear_pointer (&encoding, g_free);
  g_clear_pointer (&vary, g_free);

  gzipped = get_raw_metrics (f, raw, "GET", "gzip", &encoding, &vary, NULL);
  g_assert_cmpstr (encoding, ==, "gzip");
  g_assert_cmpstr (vary, ==, "Accept-Encoding");
  g_assert_cmpuint (g_bytes_get_size (gzipped), >, 2);
  g_assert_cmpint (((const guint8 *) g_bytes_get_data (gzipped, NULL))[0], ==, 0x1f);
  g_assert_cmpint (((const guint8 *) g_bytes_get_data (gzipped, NULL))[1], ==, 0x8b);
  unzipped = gunzip (gzipped);
  assert_same_metrics (unzipped, plain);
  g_test_message ("/metrics at %u agents: %zu bytes, %zu gzipped (%.1f%%)", n, g_bytes_get_size (plain),
                  g_bytes_get_size (gzipped), 100.0 * (double) g_bytes_get_size (gzipped) / (double) g_bytes_get_size (plain));
  g_assert_cmpuint (g_bytes_get_size (gzipped) * 5, <, g_bytes_get_size (plain));
  g_clear_pointer (&encoding, g_free);
  g_clear_pointer (&vary, g_free);

  /* HEAD: the headers of the gzipped answer */
  head = get_raw_metrics (f, raw, "HEAD", "gzip", &encoding, &vary, &length);
  g_assert_cmpuint (g_bytes_get_size (head), ==, 0);
  g_assert_cmpstr (encoding, ==, "gzip");
  /* as long as GET's but for last-activity times, converted anew each time */
  g_assert_cmpint (length, >, (goffset) g_bytes_get_size (gzipped) * 99 / 100);
  g_assert_cmpint (length, <, (goffset) g_bytes_get_size (gzipped) * 101 / 100);
  g_clear_pointer (&encoding, g_free);
  g_clear_pointer (&vary, g_free);

  /* what Accept-Encoding allows */
  {
    const struct { const char *accept; const char *encoding; } cases[] = {
      { "gzip;q=0", NULL },
      { "identity", NULL },
      { "br", NULL },
      { "deflate, gzip;q=0.5", "gzip" },
      { "x-gzip", "gzip" },
      { "*", "gzip" },
      { "*, gzip;q=0", NULL },
      { "GZIP", "gzip" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
      {
        g_autoptr(GBytes) bytes = get_raw_metrics (f, raw, "GET", cases[i].accept, &encoding, &vary, NULL);

        g_assert_cmpstr (encoding, ==, cases[i].encoding);
        if (encoding == NULL)
          assert_same_metrics (bytes, plain);
        g_clear_pointer (&encoding, g_free);
        g_clear_pointer (&vary, g_free);
      }
  }

  /* libsoup's own client asks for gzip and decodes it */
  {
    g_autofree char *uri = g_strconcat (f->base, "/metrics", NULL);
    g_autoptr(SoupMessage) msg = soup_message_new ("GET", uri);
    g_autoptr(GBytes) bytes = NULL;
    g_autoptr(GError) error = NULL;

    bytes = soup_session_send_and_read (f->session, msg, NULL, &error);
    g_assert_no_error (error);
    record_message (msg, bytes);
    g_assert_cmpstr (soup_message_headers_get_one (soup_message_get_response_headers (msg), "Content-Encoding"),
                     ==, "gzip");
    assert_same_metrics (bytes, plain);
  }

  if (promtool)
    promtool_check (f, promtool, g_bytes_get_data (unzipped, NULL));
}

/* ------------------------------------------------------------------ */
/* The seeds' shapes with finished agents listed                       */

/* Timed-out and gone agents stay listed (issue 14), but 004's gateway
 * tracks only agents in flight; 000's /runs lists every run it knows. */
static void
test_gateway_leaves_finished_out (Fixture *f, gconstpointer data)
{
  const char *sleep_argv[] = { "sleep", "600", NULL };
  g_autofree char *runner_options = NULL;
  g_auto(Reply) r = { 0 };
  JsonObject *o, *monitor, *runs;
  JsonArray *ids, *in_flight, *agents;
  gboolean timed_out_listed = FALSE, gone_listed = FALSE;
  HbChild *sleeper;
  guint cursor;

  if (!start (f, NULL))
    return;
  register_dbus (f->h, "pm", "('pm', {'task-id': <'session_key'>})");
  register_dbus (f->h, "dev", NULL);

  sleeper = hb_harness_spawn (f->h, sleep_argv);
  runner_options = g_strdup_printf ("('runner', {'pid': <uint32 %d>})", sleeper->pid);
  register_dbus (f->h, "runner", runner_options);
  cursor = hb_harness_signal_cursor (f->h);
  g_assert_cmpint (kill (sleeper->pid, SIGKILL), ==, 0);
  hb_wait_signal (f->h, &cursor, "AgentStateChanged", "runner", "healthy", "gone");
  hb_harness_wait_exit (f->h, sleeper, HB_WAIT_MS);

  cursor = hb_harness_signal_cursor (f->h);
  register_dbus (f->h, "long", "('long', {'timeout-after-usec': <uint64 300000>})");
  hb_wait_signal (f->h, &cursor, "AgentTimedOut", "long", NULL, NULL);
  wait_metric (f, "heartbeat_timeouts_total", "1");

  GET (f, "/v1/agents", &r);
  agents = json_object_get_array_member (object (&r), "agents");
  for (guint i = 0; i < json_array_get_length (agents); i++)
    {
      JsonObject *agent = json_array_get_object_element (agents, i);

      if (strcmp (json_object_get_string_member (agent, "id"), "long") == 0)
        {
          g_assert_cmpstr (json_object_get_string_member (agent, "state"), ==, "timed-out");
          timed_out_listed = TRUE;
        }
      if (strcmp (json_object_get_string_member (agent, "id"), "runner") == 0)
        {
          g_assert_cmpstr (json_object_get_string_member (agent, "state"), ==, "gone");
          gone_listed = TRUE;
        }
    }
  /* both stay listed until [monitor] retention passes */
  g_assert_true (timed_out_listed);
  g_assert_true (gone_listed);
  g_assert_cmpuint (json_array_get_length (agents), ==, 4);
  reply_clear (&r);

  GET (f, "/api/heartbeat/status", &r);
  o = object (&r);
  g_assert_cmpuint (json_object_get_size (o), ==, 5);
  monitor = json_object_get_object_member (o, "monitor");
  g_assert_cmpint (json_object_get_int_member (monitor, "agents_monitoring"), ==, 2);
  ids = json_object_get_array_member (monitor, "agents");
  g_assert_cmpuint (json_array_get_length (ids), ==, 2);
  g_assert_cmpstr (json_array_get_string_element (ids, 0), ==, "dev");
  g_assert_cmpstr (json_array_get_string_element (ids, 1), ==, "pm");
  in_flight = json_object_get_array_member (o, "in_flight_agents");
  g_assert_cmpuint (json_array_get_length (in_flight), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (in_flight, 0), "agent_id"), ==, "dev");
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (in_flight, 1), "agent_id"), ==, "pm");
  reply_clear (&r);

  /* 000: every run known, with its state */
  GET (f, "/runs", &r);
  runs = object (&r);
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (runs, "runner"), "state"), ==, "gone");
  g_assert_cmpuint (json_object_get_size (runs), ==, 4);
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (runs, "long"), "state"), ==,
                   "timed-out");
  reply_clear (&r);
  GET (f, "/runs/runner", &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);
  GET (f, "/health", &r);
  g_assert_cmpint (json_object_get_int_member (object (&r), "agents"), ==, 4);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (object (&r), "states"), "gone"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (object (&r), "states"), "timed-out"),
                   ==, 1);
}

/* ------------------------------------------------------------------ */
/* GET /v1/host                                                        */

static void
assert_host (JsonObject *host, const char *state_dir)
{
  JsonNode *cpu = json_object_get_member (host, "cpu-percent");
  JsonArray *load;
  gint64 now = g_get_real_time ();

  g_assert_cmpstr (json_object_get_string_member (host, "hostname"), ==, g_get_host_name ());
  g_assert_nonnull (cpu);
  if (!JSON_NODE_HOLDS_NULL (cpu))
    {
      g_assert_cmpfloat (json_node_get_double (cpu), >=, 0);
      g_assert_cmpfloat (json_node_get_double (cpu), <=, 100);
    }
  g_assert_cmpint (json_object_get_int_member (host, "cpus"), ==, g_get_num_processors ());
  load = json_object_get_array_member (host, "load-average");
  g_assert_cmpuint (json_array_get_length (load), ==, 3);
  g_assert_cmpfloat (json_array_get_double_element (load, 0), >=, 0);
  g_assert_cmpint (json_object_get_int_member (host, "memory-total-bytes"), >, 0);
  g_assert_cmpint (json_object_get_int_member (host, "memory-used-bytes"), >, 0);
  g_assert_cmpint (json_object_get_int_member (host, "memory-used-bytes"), <=,
                   json_object_get_int_member (host, "memory-total-bytes"));
  g_assert_cmpstr (json_object_get_string_member (host, "disk-path"), ==, state_dir);
  g_assert_cmpint (json_object_get_int_member (host, "disk-total-bytes"), >, 0);
  g_assert_cmpint (json_object_get_int_member (host, "disk-used-bytes"), <=,
                   json_object_get_int_member (host, "disk-total-bytes"));
  g_assert_cmpint (json_object_get_int_member (host, "time-usec"), <=, now);
  g_assert_cmpint (json_object_get_int_member (host, "time-usec"), >, now - 10 * G_USEC_PER_SEC);
}

static void
on_host_answered (GObject *source, GAsyncResult *result, gpointer user_data)
{
  guint *pending = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);

  g_assert_no_error (error);
  record_message (soup_session_get_async_result_message (SOUP_SESSION (source), result), bytes);
  g_assert_true (g_strstr_len (g_bytes_get_data (bytes, NULL), (gssize) g_bytes_get_size (bytes), "\"hostname\""));
  (*pending)--;
}

static void
test_host_summary (Fixture *f, gconstpointer data)
{
  g_auto(Reply) r = { 0 };
  g_autofree char *uri = NULL;
  gint64 began;
  guint pending = 0;

  if (!start (f, NULL))
    return;
  began = g_get_monotonic_time ();
  GET (f, "/v1/host", &r);
  g_assert_cmpuint (r.status, ==, 200);
  /* CPU use is measured over a tenth of a second, without blocking */
  g_assert_cmpint (g_get_monotonic_time () - began, >=, 90000);
  assert_host (object (&r), f->h->state_dir);
  reply_clear (&r);

  /* several at once share one sample */
  uri = g_strconcat (f->base, "/v1/host", NULL);
  for (int i = 0; i < 5; i++)
    {
      g_autoptr(SoupMessage) msg = soup_message_new ("GET", uri);

      soup_session_send_and_read_async (f->session, msg, G_PRIORITY_DEFAULT, NULL, on_host_answered, &pending);
      pending++;
    }
  /* and the daemon answers others meanwhile */
  GET (f, "/health", &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);
  while (pending > 0)
    g_main_context_iteration (NULL, TRUE);

  /* HEAD, and no other method */
  {
    g_autoptr(SoupMessage) msg = soup_message_new ("HEAD", uri);
    g_autoptr(GBytes) bytes = soup_session_send_and_read (f->session, msg, NULL, NULL);

    record_message (msg, bytes);
    g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
    g_assert_cmpuint (g_bytes_get_size (bytes), ==, 0);
    g_assert_cmpstr (soup_message_headers_get_content_type (soup_message_get_response_headers (msg), NULL), ==,
                     "application/json");
  }
  SEND (f, "POST", "/v1/host", "{}", &r);
  assert_error (&r, 405, "POST");
  reply_clear (&r);

  /* a client that goes away while the sample is taken */
  for (int i = 0; i < 3; i++)
    {
      g_autoptr(GSocketConnection) c = raw_connect (f, NULL);
      g_autofree char *request = g_strdup_printf ("GET /v1/host HTTP/1.1\r\nHost: localhost:%u\r\n\r\n",
                                                  f->h->http_port);

      raw_write (c, request);
      g_io_stream_close (G_IO_STREAM (c), NULL, NULL);
    }
  hb_harness_run_for (f->h, 300);
  g_assert_false (f->h->daemon->exited);
  GET (f, "/v1/host", &r);
  g_assert_cmpuint (r.status, ==, 200);
}

/* hbctl --url status shows the daemon's machine: here a daemon in a UTS
 * namespace of its own, with a host name of its own. */
static void
test_hbctl_url_remote_host (Fixture *f, gconstpointer data)
{
  g_autofree char *unshare = g_find_program_in_path ("unshare");
  g_autofree char *script = NULL;
  g_autofree char *wrapper = NULL;
  g_autofree char *saved = g_strdup (g_getenv ("HB_DAEMON_WRAPPER"));
  g_autofree char *out = NULL;
  g_autofree char *build_info = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_auto(Reply) r = { 0 };
  JsonObject *host;

  if (getuid () != 0 || unshare == NULL)
    {
      g_test_skip ("needs root and unshare(1) for a daemon with a host name of its own");
      return;
    }
  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  script = g_build_filename (f->h->tmpdir, "other-host.sh", NULL);
  g_file_set_contents (script, "#!/bin/sh\nhostname hb-elsewhere || exit 1\nexec \"$@\"\n", -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (script, 0755), ==, 0);
  wrapper = g_strdup_printf ("%s --uts %s %s", unshare, script, saved ? saved : "");
  g_setenv ("HB_DAEMON_WRAPPER", wrapper, TRUE);
  hb_harness_write_config (f->h, hb_default_config);
  f->h->http_port = hb_free_port ();
  f->base = g_strdup_printf ("http://127.0.0.1:%u", f->h->http_port);
  hb_harness_start_daemon (f->h, 0);
  if (saved)
    g_setenv ("HB_DAEMON_WRAPPER", saved, TRUE);
  else
    g_unsetenv ("HB_DAEMON_WRAPPER");
  register_dbus (f->h, "far", NULL);

  g_assert_cmpint (hbctl_url (f, &out, (const char *const[]) { "status", NULL }), ==, 0);
  g_assert_nonnull (strstr (out, "1 agent: 1 healthy"));
  g_assert_nonnull (strstr (out, " · host hb-elsewhere · cpu "));
  g_assert_nonnull (strstr (out, " · mem "));
  g_assert_nonnull (strstr (out, " · disk "));
  g_assert_nonnull (strstr (out, " · load "));
  g_clear_pointer (&out, g_free);

  g_assert_cmpint (hbctl_url (f, &out, (const char *const[]) { "status", "--json", NULL }), ==, 0);
  json_parser_load_from_data (parser, out, -1, &error);
  g_assert_no_error (error);
  host = json_object_get_object_member (json_node_get_object (json_parser_get_root (parser)), "host");
  g_assert_cmpstr (json_object_get_string_member (host, "hostname"), ==, "hb-elsewhere");
  g_assert_cmpstr (json_object_get_string_member (host, "disk-path"), ==, f->h->state_dir);

  get_metrics (f, &r);
  build_info = g_strdup_printf ("heartbeat_build_info{version=\"%s\",hostname=\"hb-elsewhere\"}",
                                g_getenv ("HB_VERSION"));
  assert_metric (r.body, build_info, "1");
}

/* ------------------------------------------------------------------ */
/* The OpenAPI document: the answers no other case provokes            */

/* Every documented error of every operation that a test can provoke,
 * so that each is checked against data/openapi/heartbeatd.yaml (see
 * fixture_teardown()), and the events no other case waits for. */
static void
test_openapi_answers (Fixture *f, gconstpointer data)
{
  static const char *const operations[][2] = {
    { "GET", "/" }, { "HEAD", "/" }, { "GET", "/health" }, { "HEAD", "/health" }, { "GET", "/runs" },
    { "HEAD", "/runs" }, { "GET", "/runs/x" }, { "HEAD", "/runs/x" }, { "POST", "/heartbeat" }, { "POST", "/event" },
    { "GET", "/api/heartbeat/status" }, { "HEAD", "/api/heartbeat/status" }, { "GET", "/metrics" },
    { "HEAD", "/metrics" }, { "GET", "/v1/events" }, { "HEAD", "/v1/events" }, { "GET", "/v1/agents" },
    { "HEAD", "/v1/agents" }, { "GET", "/v1/agents/x" }, { "HEAD", "/v1/agents/x" }, { "PUT", "/v1/agents/x" },
    { "DELETE", "/v1/agents/x" }, { "POST", "/v1/agents/x/beat" }, { "POST", "/v1/agents/x/idle" },
    { "GET", "/v1/host" }, { "HEAD", "/v1/host" },
  };
  static const char *const writes[][2] = {
    { "POST", "/heartbeat" }, { "POST", "/event" }, { "PUT", "/v1/agents/mine" }, { "DELETE", "/v1/agents/mine" },
    { "POST", "/v1/agents/mine/beat" }, { "POST", "/v1/agents/mine/idle" },
  };
  g_autofree char *big = g_strnfill (70 * 1024, 'a');
  g_auto(Reply) r = { 0 };
  Sse *s;

  if (!start (f, NULL))
    return;
  register_dbus (f->h, "dbus-agent", NULL);
  SEND (f, "PUT", "/v1/agents/mine", "{}", &r);
  g_assert_cmpuint (r.status, ==, 201);
  reply_clear (&r);

  /* 421 for every operation, refused before anything else */
  for (gsize i = 0; i < G_N_ELEMENTS (operations); i++)
    {
      g_autoptr(GSocketConnection) c = raw_connect (f, NULL);
      g_autofree char *request = g_strdup_printf ("%s %s HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
                                                  operations[i][0], operations[i][1]);

      raw_write (c, request);
      g_assert_cmpuint (raw_read_answer (c, FALSE, NULL, NULL), ==, 421);
    }
  /* 411 and 413 for every write */
  for (gsize i = 0; i < G_N_ELEMENTS (writes); i++)
    {
      g_autoptr(GSocketConnection) c = raw_connect (f, NULL);
      g_autofree char *request = g_strdup_printf ("%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                                                  "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                                                  writes[i][0], writes[i][1]);

      raw_write (c, request);
      g_assert_cmpuint (raw_read_answer (c, FALSE, NULL, NULL), ==, 411);
      request_full (f, writes[i][0], writes[i][1], "application/json", big, -1, NULL, &r);
      assert_error (&r, 413, "larger");
      reply_clear (&r);
    }
  /* 415 wherever a body is read */
  request_full (f, "POST", "/event", "text/plain", "{\"type\": \"t\"}", -1, NULL, &r);
  assert_error (&r, 415, "application/json");
  reply_clear (&r);
  request_full (f, "PUT", "/v1/agents/mine", "text/plain", "{}", -1, NULL, &r);
  assert_error (&r, 415, "application/json");
  reply_clear (&r);
  request_full (f, "POST", "/v1/agents/mine/beat", "text/plain", "{}", -1, NULL, &r);
  assert_error (&r, 415, "application/json");
  reply_clear (&r);

  /* 403: not HTTP's agent */
  SEND (f, "POST", "/heartbeat", "{\"run_id\": \"dbus-agent\"}", &r);
  assert_error (&r, 403, "uid 0");
  reply_clear (&r);
  SEND (f, "PUT", "/v1/agents/dbus-agent", "{}", &r);
  assert_error (&r, 403, "uid 0");
  reply_clear (&r);
  request_full (f, "POST", "/v1/agents/dbus-agent/idle", NULL, NULL, 0, NULL, &r);
  assert_error (&r, 403, "uid 0");
  reply_clear (&r);

  /* 404 and 400: no such agent, no such id */
  request_full (f, "DELETE", "/v1/agents/nobody", NULL, NULL, 0, NULL, &r);
  assert_error (&r, 404, "nobody");
  reply_clear (&r);
  request_full (f, "POST", "/v1/agents/nobody/idle", NULL, NULL, 0, NULL, &r);
  assert_error (&r, 404, "nobody");
  reply_clear (&r);
  request_full (f, "DELETE", "/v1/agents/a!b", NULL, NULL, 0, NULL, &r);
  assert_error (&r, 400, "character");
  reply_clear (&r);
  request_full (f, "POST", "/v1/agents/a!b/idle", NULL, NULL, 0, NULL, &r);
  assert_error (&r, 400, "character");
  reply_clear (&r);
  request_full (f, "HEAD", "/runs/nobody", NULL, NULL, 0, NULL, &r);
  g_assert_cmpuint (r.status, ==, 404);
  reply_clear (&r);
  request_full (f, "HEAD", "/v1/agents/nobody", NULL, NULL, 0, NULL, &r);
  g_assert_cmpuint (r.status, ==, 404);
  reply_clear (&r);

  /* the events of a stale agent that recovers, and of one that times out */
  s = sse_open (f);
  SEND (f, "POST", "/event", "{\"type\": \"mark\", \"n\": 1, \"list\": [1.5, \"two\", {\"three\": true}]}", &r);
  sse_wait (s, " event {\"type\":\"mark\"");
  reply_clear (&r);
  SEND (f, "PUT", "/v1/agents/slow", "{\"stale-after-usec\": 200000}", &r);
  sse_wait (s, " stale {\"id\":\"slow\"");
  reply_clear (&r);
  SEND (f, "POST", "/v1/agents/slow/beat", "{\"status\": \"back\", \"progress\": 3}", &r);
  sse_wait (s, " recovered {\"id\":\"slow\"");
  reply_clear (&r);
  SEND (f, "PUT", "/v1/agents/short", "{\"timeout-after-usec\": 300000, \"task-id\": \"brief\"}", &r);
  sse_wait (s, " timed-out {\"id\":\"short\"");
  reply_clear (&r);
  sse_free (s);
}

/* 401 for every write without a token */
static void
test_openapi_answers_tokens (Fixture *f, gconstpointer data)
{
  static const char *const writes[][2] = {
    { "POST", "/heartbeat" }, { "POST", "/event" }, { "PUT", "/v1/agents/x" }, { "DELETE", "/v1/agents/x" },
    { "POST", "/v1/agents/x/beat" }, { "POST", "/v1/agents/x/idle" }, { "POST", "/health" },
  };
  g_auto(Reply) r = { 0 };

  if (!start_with_tokens (f, "s3cret\n"))
    return;
  for (gsize i = 0; i < G_N_ELEMENTS (writes); i++)
    {
      request_full (f, writes[i][0], writes[i][1], "application/json", "{}", -1, NULL, &r);
      assert_error (&r, 401, "Bearer");
      reply_clear (&r);
    }
  /* with one: a method not allowed is 405 */
  request_full (f, "POST", "/health", "application/json", "{}", -1, "s3cret", &r);
  assert_error (&r, 405, "allowed");
}

/* ------------------------------------------------------------------ */
/* Issue 20, 1.7: the text of answers                                  */

/* A 400 for JSON that does not parse says where, in words, not with
 * json-glib's "<data>:1:2:" */
static void
test_json_error_text (Fixture *f, gconstpointer data)
{
  g_auto(Reply) r = { 0 };
  const char *message;

  if (!start (f, NULL))
    return;
  SEND (f, "POST", "/heartbeat", "{\"run_id\": \"x\",\n  bad}", &r);
  assert_error (&r, 400, "The body is not valid JSON: line 1, column ");
  message = json_object_get_string_member (json_object_get_object_member (object (&r), "error"), "message");
  g_assert_nonnull (strstr (message, "unexpected character"));
  g_assert_null (strstr (message, "<data>"));
  g_assert_null (strstr (message, "Parse error"));
}

/* The longest run of digits after a '.' in @text */
static gsize
longest_fraction (const char *text)
{
  gsize longest = 0;

  for (const char *p = strchr (text, '.'); p; p = strchr (p + 1, '.'))
    if (g_ascii_isdigit (p[1]) && p > text && g_ascii_isdigit (p[-1]))
      longest = MAX (longest, strspn (p + 1, "0123456789"));
  return longest;
}

/* Numbers are written as short as they read back: 0.9, not
 * 0.90000000000000002; /v1/host's figures are rounded (1.7) */
static void
test_clean_numbers (Fixture *f, gconstpointer data)
{
  g_auto(Reply) r = { 0 };

  if (!start (f, NULL))
    return;
  SEND (f, "POST", "/heartbeat", "{\"run_id\": \"n\", \"tests_per_sec\": 0.9, \"ratio\": 6.2, \"progress\": 0.1}", &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);
  GET (f, "/runs/n", &r);
  g_assert_nonnull (strstr (r.body, "\"tests_per_sec\":0.9,"));
  g_assert_nonnull (strstr (r.body, "\"ratio\":6.2"));
  reply_clear (&r);
  GET (f, "/runs", &r);
  g_assert_nonnull (strstr (r.body, "\"progress\":0.1}"));
  reply_clear (&r);
  GET (f, "/v1/host", &r);
  g_assert_cmpuint (r.status, ==, 200);
  g_assert_cmpuint (longest_fraction (r.body), <=, 2);
}

/* ------------------------------------------------------------------ */
/* Issue 20: what clients may hold                                     */

/* @n agents "big-0001"… with about @metadata_bytes of metadata each,
 * registered over D-Bus (so the HTTP quota is not in the way). */
static void
register_big (Fixture *f, guint n, gsize metadata_bytes)
{
  g_autofree char *filler = g_strnfill (metadata_bytes, 'm');
  guint pending = 0;

  for (guint i = 1; i <= n; i++)
    {
      g_autofree char *id = g_strdup_printf ("big-%04u", i);
      GVariantDict options, metadata;

      g_variant_dict_init (&metadata, NULL);
      g_variant_dict_insert (&metadata, "filler", "s", filler);
      g_variant_dict_init (&options, NULL);
      g_variant_dict_insert_value (&options, "metadata", g_variant_dict_end (&metadata));
      g_dbus_connection_call (f->h->client, HB_NAME, HB_PATH, HB_IFACE, "Register",
                              g_variant_new ("(s@a{sv})", id, g_variant_dict_end (&options)), NULL,
                              G_DBUS_CALL_FLAGS_NONE, 60000, NULL, on_registered_async, &pending);
      pending++;
      while (pending >= 64)
        g_main_context_iteration (NULL, TRUE);
    }
  while (pending > 0)
    g_main_context_iteration (NULL, TRUE);
}

/* A raw connection whose client takes in at most 4 kB at a time: what the
 * server writes stays in the server. */
static GSocketConnection *
raw_connect_small_window (Fixture *f)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, f->h->http_port);

  g_assert_no_error (error);
  g_assert_true (g_socket_set_option (socket, SOL_SOCKET, SO_RCVBUF, 4096, &error));
  g_assert_true (g_socket_connect (socket, address, NULL, &error));
  g_assert_no_error (error);
  g_socket_set_timeout (socket, 5);
  return g_socket_connection_factory_create_connection (socket);
}

typedef struct {
  Fixture *f;
  const char *path;
  guint status;
} GetCheck;



static gboolean
get_answers (HbHarness *h, gpointer data)
{
  GetCheck *check = data;
  g_auto(Reply) r = { 0 };

  GET (check->f, check->path, &r);
  return r.status == check->status;
}

/* 2.2: clients that ask for large answers and never read them hold no
 * more than the response budget, and the others get 503 meanwhile (small
 * answers are always given); what they held is released when they go. */
static void
test_readers_that_never_read (Fixture *f, gconstpointer data)
{
  static const char config[] = "[monitor]\ncheck-interval=1s\nstale-threshold=1h\ntimeout-threshold=1d\n";
  g_autoptr(GPtrArray) stalled = g_ptr_array_new_with_free_func (g_object_unref);
  g_autofree char *request = NULL;
  g_auto(Reply) r = { 0 };
  guint64 before, after;
  GetCheck check = { f, "/v1/agents?limit=1000", 200 };
  const guint n = 20;

  g_setenv ("HB_HTTP_RESPONSE_BUDGET", "4194304", TRUE);   /* 4 MiB */
  /* answers larger than what the kernel takes in on loopback (its send
   * buffer grows to 4 MiB there): pages of 16 MiB */
  g_setenv ("HB_HTTP_PAGE_BYTES", "16777216", TRUE);
  if (!start (f, config))
    return;
  /* 600 agents of 15 kB: 9 MB of JSON in one page */
  register_big (f, 600, 15000);
  GET (f, "/v1/agents?limit=1000", &r);
  g_assert_cmpuint (r.status, ==, 200);
  g_assert_cmpuint (strlen (r.body), >, 9000 * 1000);
  reply_clear (&r);
  before = daemon_rss_kb (f);

  request = g_strdup_printf ("GET /v1/agents?limit=1000 HTTP/1.1\r\nHost: localhost:%u\r\n\r\n", f->h->http_port);
  for (guint i = 0; i < n; i++)
    {
      GSocketConnection *c = raw_connect_small_window (f);

      raw_write (c, request);
      g_ptr_array_add (stalled, c);
    }
  /* the daemon answers requests in turn: /health answered after all of
   * them were sent means that all were handled */
  GET (f, "/health", &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);
  after = daemon_rss_kb (f);
  g_test_message ("%u clients that never read answers of 9 MB: RSS %" G_GUINT64_FORMAT " kB → %" G_GUINT64_FORMAT " kB",
                  n, before, after);
  /* one answer (alone, it may pass the budget), the pages built and
   * refused (malloc keeps some of what they took), the connections'
   * buffers; without the budget: 20 × 9 MB */
  assert_rss_bounded (f, before, after, 64 * 1024);

  /* meanwhile a large answer is refused, a small one is not */
  GET (f, "/v1/agents?limit=1000", &r);
  assert_error (&r, 503, "try again later");
  reply_clear (&r);
  GET (f, "/v1/agents/big-0001", &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);

  /* they go: what they held is released */
  g_ptr_array_set_size (stalled, 0);
  hb_harness_wait_until (f->h, get_answers, &check);
}

/* 2.2: a client that stops reading its answer loses its connection after
 * the sockets' timeout (here 1 s without progress), and the answer it
 * held is released. */
static void
test_stalled_reader_times_out (Fixture *f, gconstpointer data)
{
  static const char config[] = "[monitor]\ncheck-interval=1s\nstale-threshold=1h\ntimeout-threshold=1d\n";
  g_autoptr(GSocketConnection) stalled = NULL;
  g_autofree char *request = NULL;
  g_auto(Reply) r = { 0 };
  GetCheck check = { f, "/v1/agents?limit=1000", 200 };
  GInputStream *in;
  char buffer[65536];
  gsize got = 0;
  gssize n;

  g_setenv ("HB_HTTP_IDLE_TIMEOUT_MS", "1000", TRUE);
  g_setenv ("HB_HTTP_RESPONSE_BUDGET", "1", TRUE);   /* one large answer at a time */
  g_setenv ("HB_HTTP_PAGE_BYTES", "16777216", TRUE);  /* more than the kernel takes in */
  if (!start (f, config))
    return;
  register_big (f, 600, 15000);
  GET (f, "/v1/agents?limit=1000", &r);
  g_assert_cmpuint (r.status, ==, 200);
  g_test_message ("the answer: %zu bytes", strlen (r.body));

  stalled = raw_connect_small_window (f);
  request = g_strdup_printf ("GET /v1/agents?limit=1000 HTTP/1.1\r\nHost: localhost:%u\r\n\r\n", f->h->http_port);
  raw_write (stalled, request);
  /* its answer is dropped after 1 s without progress: a large answer is
   * given again (the budget allows one at a time) */
  hb_harness_wait_until (f->h, get_answers, &check);

  /* and its connection was closed: what the kernel had taken of the
   * answer comes, then the end, well short of the whole answer */
  in = g_io_stream_get_input_stream (G_IO_STREAM (stalled));
  while ((n = g_input_stream_read (in, buffer, sizeof buffer, NULL, NULL)) > 0)
    got += (gsize) n;
  g_test_message ("the stalled client read %zu bytes, then %s", got, n == 0 ? "the end" : "an error");
  g_assert_cmpint (n, ==, 0);
  g_assert_cmpuint (got, <, strlen (r.body));
}

static gboolean
health_answers_check (HbHarness *h, gpointer data)
{
  return health_answers (data);
}

/* 2.2, 2.5: at most HB_HTTP_MAX_CONNECTIONS connections; one more is
 * answered 503 and closed at once, and there is room again once some
 * are closed. */
static void
test_connection_cap (Fixture *f, gconstpointer data)
{
  g_autoptr(GPtrArray) held = g_ptr_array_new_with_free_func (g_object_unref);
  g_autofree char *request = NULL;
  g_autofree char *head = NULL;
  g_autofree char *body = NULL;

  g_setenv ("HB_HTTP_MAX_CONNECTIONS", "20", TRUE);
  if (!start (f, NULL))
    return;
  request = g_strdup_printf ("GET /health HTTP/1.1\r\nHost: localhost:%u\r\n\r\n", f->h->http_port);
  for (guint i = 0; i < 20; i++)
    {
      GSocketConnection *c = raw_connect (f, NULL);

      /* each answered, then kept alive */
      raw_write (c, request);
      g_assert_cmpuint (raw_read_answer (c, FALSE, NULL, NULL), ==, 200);
      g_ptr_array_add (held, c);
    }
  {
    g_autoptr(GSocketConnection) c = raw_connect (f, NULL);

    raw_write (c, request);
    g_assert_cmpuint (raw_read_answer (c, FALSE, &head, &body), ==, 503);
    g_assert_nonnull (strstr (head, "Retry-After: 1"));
    g_assert_nonnull (strstr (body, "Too many HTTP connections"));
    g_assert_true (raw_closed_within (c, HB_WAIT_MS));
  }
  /* two of them go: two new ones are served */
  g_ptr_array_remove_range (held, 0, 2);
  hb_harness_wait_until (f->h, health_answers_check, f);
}

/* Writes a byte of the body every 100 ms until the server closes the
 * connection, or 5 s; returns whether it did. */
static gboolean
trickle_until_closed (GSocketConnection *c)
{
  GSocket *socket = g_socket_connection_get_socket (c);
  gint64 until = g_get_monotonic_time () + HB_WAIT_MS * 1000;
  char buffer[4096];

  while (g_get_monotonic_time () < until)
    {
      g_autoptr(GError) error = NULL;

      if (g_socket_send (socket, "x", 1, NULL, &error) < 0)
        return TRUE;
      if (g_socket_condition_timed_wait (socket, G_IO_IN, 100 * 1000, NULL, NULL))
        {
          gssize n = g_socket_receive (socket, buffer, sizeof buffer, NULL, NULL);

          if (n <= 0)
            return TRUE;
        }
    }
  return FALSE;
}

/* 2.5: a body that trickles is cut off by the request's deadline (headers
 * and body), and the daemon's fds come back. */
static void
test_body_deadline (Fixture *f, gconstpointer data)
{
  g_autoptr(GPtrArray) slow = g_ptr_array_new_with_free_func (g_object_unref);
  guint fds_before, fds_after = 0;
  gint64 began, until;

  g_setenv ("HB_HTTP_REQUEST_TIMEOUT_MS", "1000", TRUE);
  if (!start (f, NULL))
    return;
  fds_before = daemon_open_fds (f);
  began = g_get_monotonic_time ();
  for (guint i = 0; i < 20; i++)
    {
      GSocketConnection *c = raw_connect (f, NULL);

      raw_write (c, "POST /heartbeat HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    "Content-Length: 60000\r\n\r\n{\"run_id\": \"slow\", \"pad\": \"");
      g_ptr_array_add (slow, c);
    }
  for (guint i = 0; i < slow->len; i++)
    g_assert_true (trickle_until_closed (g_ptr_array_index (slow, i)));
  g_assert_cmpint (g_get_monotonic_time () - began, >=, 1000 * 1000);
  g_ptr_array_set_size (slow, 0);

  until = g_get_monotonic_time () + HB_WAIT_MS * 1000;
  while ((fds_after = daemon_open_fds (f)) > fds_before + 2 && g_get_monotonic_time () < until)
    hb_harness_run_for (f->h, 50);
  g_test_message ("daemon fds: %u before, %u after 20 trickling bodies", fds_before, fds_after);
  g_assert_cmpuint (fds_after, <=, fds_before + 2);
  hb_call_error (f->h, NULL, "GetAgent", g_variant_new ("(s)", "slow"), "NotFound");
  g_assert_true (health_answers (f));
}

/* ------------------------------------------------------------------ */
/* GET /v1/agents in pages                                             */

/* The ids of a page, and its Link header (NULL if none) */
static GPtrArray *
get_page (Fixture *f, const char *path, char **link)
{
  g_autofree char *uri = g_strconcat (f->base, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", uri);
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  GPtrArray *ids = g_ptr_array_new_with_free_func (g_free);
  JsonArray *agents;

  bytes = soup_session_send_and_read (f->session, msg, NULL, &error);
  g_assert_no_error (error);
  record_message (msg, bytes);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  json_parser_load_from_data (parser, g_bytes_get_data (bytes, NULL), (gssize) g_bytes_get_size (bytes), &error);
  g_assert_no_error (error);
  agents = json_object_get_array_member (json_node_get_object (json_parser_get_root (parser)), "agents");
  for (guint i = 0; i < json_array_get_length (agents); i++)
    g_ptr_array_add (ids, g_strdup (json_object_get_string_member (json_array_get_object_element (agents, i), "id")));
  *link = g_strdup (soup_message_headers_get_one (soup_message_get_response_headers (msg), "Link"));
  g_test_message ("GET %s → %u agents, Link: %s", path, ids->len, *link ? *link : "(none)");
  return ids;
}

/* "</v1/agents?after=X&limit=N>; rel=\"next\"" → "/v1/agents?after=X&limit=N" */
static char *
next_path (const char *link)
{
  const char *end;

  g_assert_nonnull (link);
  g_assert_true (g_str_has_prefix (link, "</v1/agents?after="));
  g_assert_true (g_str_has_suffix (link, ">; rel=\"next\""));
  end = strchr (link, '>');
  return g_strndup (link + 1, (gsize) (end - link - 1));
}

static void
test_agents_pages (Fixture *f, gconstpointer data)
{
  static const char config[] = "[monitor]\ncheck-interval=1s\nstale-threshold=1h\ntimeout-threshold=1d\n";
  static const char *const ids[] = { "a@b:c", "build-runner-0001", "build-runner-0002", "build-runner-0003",
                                     "build-runner-0004", "build-runner-0005", "build-runner-0006",
                                     "build-runner-0007" };
  g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *link = NULL;
  g_autofree char *path = g_strdup ("/v1/agents?limit=3");
  g_auto(Reply) r = { 0 };
  guint pages = 0;

  if (!start (f, config))
    return;
  register_many (f, 7);
  register_dbus (f->h, "a@b:c", NULL);

  /* without parameters: all of them (fewer than a page), in id order, no Link */
  {
    g_autoptr(GPtrArray) page = get_page (f, "/v1/agents", &link);

    g_assert_cmpuint (page->len, ==, G_N_ELEMENTS (ids));
    for (guint i = 0; i < page->len; i++)
      g_assert_cmpstr (g_ptr_array_index (page, i), ==, ids[i]);
    g_assert_null (link);
  }

  /* by 3, following Link: 3, 3, 2, each Link exactly when more follow */
  for (;;)
    {
      g_autoptr(GPtrArray) page = get_page (f, path, &link);

      pages++;
      for (guint i = 0; i < page->len; i++)
        g_ptr_array_add (all, g_strdup (g_ptr_array_index (page, i)));
      if (link == NULL)
        break;
      g_assert_cmpuint (page->len, ==, 3);
      g_free (path);
      path = next_path (link);
      g_assert_true (g_str_has_suffix (path, "&limit=3"));
      g_clear_pointer (&link, g_free);
    }
  g_assert_cmpuint (pages, ==, 3);
  g_assert_cmpuint (all->len, ==, G_N_ELEMENTS (ids));
  for (guint i = 0; i < all->len; i++)
    g_assert_cmpstr (g_ptr_array_index (all, i), ==, ids[i]);

  /* an id with reserved characters is percent-encoded in Link */
  {
    g_ptr_array_unref (get_page (f, "/v1/agents?limit=1", &link));
    g_assert_cmpstr (link, ==, "</v1/agents?after=a%40b%3Ac&limit=1>; rel=\"next\"");
    g_clear_pointer (&link, g_free);
  }
  /* after an id that is not there: from the next one; after the last: none */
  {
    g_autoptr(GPtrArray) page = get_page (f, "/v1/agents?after=build-runner-0003x", &link);

    g_assert_cmpuint (page->len, ==, 4);
    g_assert_cmpstr (g_ptr_array_index (page, 0), ==, "build-runner-0004");
    g_assert_null (link);
  }
  {
    g_autoptr(GPtrArray) page = get_page (f, "/v1/agents?after=build-runner-0007&limit=1000", &link);

    g_assert_cmpuint (page->len, ==, 0);
    g_assert_null (link);
  }

  /* bad parameters: 400, and nothing changed */
  {
    const char *const bad[] = { "limit=0", "limit=1001", "limit=abc", "limit=-1", "limit=", "limit=+5",
                                "limit=99999999999999999999", "after=", "after=..", "after=a%2Fb", "after=%C3%A9" };

    for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
      {
        g_autofree char *p = g_strconcat ("/v1/agents?", bad[i], NULL);

        GET (f, p, &r);
        assert_error (&r, 400, strstr (bad[i], "limit") ? "“limit”" : "“after”");
        reply_clear (&r);
      }
  }
  GET (f, "/health", &r);
  g_assert_cmpint (json_object_get_int_member (object (&r), "agents"), ==, G_N_ELEMENTS (ids));
}

/* A page stops at HB_HTTP_PAGE_BYTES (1 MiB) of JSON before its limit */
static void
test_agents_page_bytes (Fixture *f, gconstpointer data)
{
  static const char config[] = "[monitor]\ncheck-interval=1s\nstale-threshold=1h\ntimeout-threshold=1d\n";
  g_autoptr(GPtrArray) first = NULL;
  g_autoptr(GPtrArray) second = NULL;
  g_autofree char *link = NULL;
  g_autofree char *path = NULL;

  if (!start (f, config))
    return;
  register_big (f, 100, 15000);   /* 1.5 MB of JSON */
  first = get_page (f, "/v1/agents?limit=1000", &link);
  g_assert_cmpuint (first->len, >, 60);
  g_assert_cmpuint (first->len, <, 100);
  path = next_path (link);
  g_clear_pointer (&link, g_free);
  second = get_page (f, path, &link);
  g_assert_null (link);
  g_assert_cmpuint (first->len + second->len, ==, 100);
  g_assert_cmpstr (g_ptr_array_index (second, 0), >, g_ptr_array_index (first, first->len - 1));
}

/* ------------------------------------------------------------------ */
/* GET /v1/history in pages                                            */

static const char history_config[] =
  "[monitor]\ncheck-interval=1s\nstale-threshold=1h\ntimeout-threshold=1d\n"
  "[limits]\nagents-per-uid=4096\n";

/* @n agents hp-NN on D-Bus; agent i changes state 2 × (i % 4) times (a
 * beat with status "error", then one without), so that its history holds
 * 1 + 2 × (i % 4) entries. The calls are made round by round, each round's
 * at once, the main loop running (it reads the daemon's notifications).
 * A beat is acknowledged before the main loop applies it: GetStatus at
 * the end applies the ones acknowledged before it. */
static void
register_flapping (Fixture *f, guint n)
{
  guint pending = 0;

  for (guint round = 0; round <= 6; round++)
    {
      for (guint i = 0; i < n; i++)
        {
          g_autofree char *id = g_strdup_printf ("hp-%02u", i);
          GVariant *parameters;

          if (round == 0)
            parameters = g_variant_new_parsed ("(%s, @a{sv} {})", id);
          else if (round <= 2 * (i % 4))
            parameters = round % 2 ? g_variant_new_parsed ("(%s, {'status': <'error'>})", id)
                                   : g_variant_new_parsed ("(%s, @a{sv} {})", id);
          else
            continue;
          g_dbus_connection_call (f->h->client, HB_NAME, HB_PATH, HB_IFACE, round == 0 ? "Register" : "Beat",
                                  parameters, NULL, G_DBUS_CALL_FLAGS_NONE, 60000, NULL,
                                  on_registered_async, &pending);
          pending++;
        }
      while (pending > 0)
        g_main_context_iteration (NULL, TRUE);
    }
  g_variant_unref (hb_call_ok (f->h, NULL, "GetStatus", NULL, "(a{sv})"));
}

/* "</v1/history?after=X&limit=N>; rel=\"next\"" → "/v1/history?after=X&limit=N" */
static char *
history_next_path (const char *link)
{
  const char *end;

  g_assert_nonnull (link);
  g_assert_true (g_str_has_prefix (link, "</v1/history?after="));
  g_assert_true (g_str_has_suffix (link, ">; rel=\"next\""));
  end = strchr (link, '>');
  return g_strndup (link + 1, (gsize) (end - link - 1));
}

/* One answer of GET /v1/history (through @session, NULL: the fixture's,
 * which decodes gzip), with Accept-Encoding: @accept unless NULL */
typedef struct {
  GBytes     *body;       /* as the session gave it */
  JsonNode   *root;       /* NULL if the body was not read as JSON */
  char       *link;
  char       *encoding;
  char       *vary;
} HistoryPage;

static void
history_page_clear (HistoryPage *p)
{
  g_clear_pointer (&p->body, g_bytes_unref);
  g_clear_pointer (&p->root, json_node_unref);
  g_clear_pointer (&p->link, g_free);
  g_clear_pointer (&p->encoding, g_free);
  g_clear_pointer (&p->vary, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (HistoryPage, history_page_clear)

/* The "agents" object of a page of JSON text */
static JsonObject *
history_agents (JsonNode *root)
{
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
  g_assert_cmpuint (json_object_get_size (json_node_get_object (root)), ==, 1);
  return json_object_get_object_member (json_node_get_object (root), "agents");
}

static void
get_history_page (Fixture     *f,
                  SoupSession *session,
                  const char  *path,
                  const char  *accept,
                  HistoryPage *p)
{
  g_autofree char *uri = g_strconcat (f->base, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", uri);
  g_autoptr(GError) error = NULL;
  SoupMessageHeaders *headers;
  gboolean decoded = session == NULL;

  if (accept)
    soup_message_headers_replace (soup_message_get_request_headers (msg), "Accept-Encoding", accept);
  p->body = soup_session_send_and_read (session ? session : f->session, msg, NULL, &error);
  g_assert_no_error (error);
  headers = soup_message_get_response_headers (msg);
  p->encoding = g_strdup (soup_message_headers_get_one (headers, "Content-Encoding"));
  p->vary = g_strdup (soup_message_headers_get_one (headers, "Vary"));
  p->link = g_strdup (soup_message_headers_get_one (headers, "Link"));
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  g_assert_cmpstr (soup_message_headers_get_content_type (headers, NULL), ==, "application/json");
  if (decoded || p->encoding == NULL)
    {
      record_message (msg, p->body);
      p->root = json_from_string (g_bytes_get_data (p->body, NULL), &error);
      g_assert_no_error (error);
      g_assert_nonnull (p->root);
    }
  g_test_message ("GET %s → %zu bytes, Content-Encoding: %s, Link: %s", path, g_bytes_get_size (p->body),
                  p->encoding ? p->encoding : "(none)", p->link ? p->link : "(none)");
}

/* What a walk through GET /v1/history saw */
typedef struct {
  GPtrArray  *ids;        /* in the order given */
  GHashTable *histories;  /* id → its history as JSON text */
  GArray     *sizes;      /* gsize: each page's length */
  GArray     *counts;     /* guint: the agents of each page */
} HistoryWalk;

static void
history_walk_clear (HistoryWalk *w)
{
  g_clear_pointer (&w->ids, g_ptr_array_unref);
  g_clear_pointer (&w->histories, g_hash_table_unref);
  g_clear_pointer (&w->sizes, g_array_unref);
  g_clear_pointer (&w->counts, g_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (HistoryWalk, history_walk_clear)

/* Reads GET @path and every page its Link names after it, to the end:
 * each id once, in order across the pages; a Link on every page but the
 * last, which names the same limit as @path. */
static void
walk_history (Fixture *f, const char *path, HistoryWalk *w)
{
  g_autofree char *next = g_strdup (path);
  const char *limit = strstr (path, "limit=");

  w->ids = g_ptr_array_new_with_free_func (g_free);
  w->histories = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  w->sizes = g_array_new (FALSE, FALSE, sizeof (gsize));
  w->counts = g_array_new (FALSE, FALSE, sizeof (guint));
  while (next)
    {
      g_auto(HistoryPage) p = { 0 };
      JsonObjectIter iter;
      const char *id;
      JsonNode *history;
      gsize size;
      guint count = 0;

      get_history_page (f, NULL, next, NULL, &p);
      size = g_bytes_get_size (p.body);
      g_array_append_val (w->sizes, size);
      json_object_iter_init_ordered (&iter, history_agents (p.root));
      while (json_object_iter_next_ordered (&iter, &id, &history))
        {
          g_assert_true (JSON_NODE_HOLDS_ARRAY (history));
          if (w->ids->len > 0)
            g_assert_cmpstr (id, >, g_ptr_array_index (w->ids, w->ids->len - 1));
          g_ptr_array_add (w->ids, g_strdup (id));
          g_hash_table_insert (w->histories, g_strdup (id), json_to_string (history, FALSE));
          count++;
        }
      g_array_append_val (w->counts, count);
      g_clear_pointer (&next, g_free);
      if (p.link)
        {
          next = history_next_path (p.link);
          g_assert_cmpuint (count, >, 0);
          if (limit)
            {
              g_autofree char *same = g_strconcat ("&", limit, NULL);

              g_assert_true (g_str_has_suffix (next, same));
            }
        }
    }
}

/* Each history of @w is the agent's GET /v1/agents/ID/history */
static void
assert_histories_as_each_agent (Fixture *f, HistoryWalk *w)
{
  for (guint i = 0; i < w->ids->len; i++)
    {
      const char *id = g_ptr_array_index (w->ids, i);
      g_autofree char *path = g_strdup_printf ("/v1/agents/%s/history", id);
      g_autofree char *one = NULL;
      g_auto(Reply) r = { 0 };

      GET (f, path, &r);
      g_assert_cmpuint (r.status, ==, 200);
      one = json_to_string (json_object_get_member (object (&r), "history"), FALSE);
      g_assert_cmpstr (g_hash_table_lookup (w->histories, id), ==, one);
    }
}

/* GET /v1/history in pages of at most HB_HTTP_PAGE_BYTES (here 1 KiB) or
 * ?limit= agents, by id, each agent's whole history exactly once, as GET
 * /v1/agents/ID/history gives it; bad parameters are a 400. */
static void
test_history_pages (Fixture *f, gconstpointer data)
{
  const gsize budget = 1024;
  const guint n = 30;
  g_auto(HistoryWalk) all = { 0 };
  g_auto(HistoryWalk) by4 = { 0 };
  g_auto(Reply) r = { 0 };
  gsize total = 0;

  g_setenv ("HB_HTTP_PAGE_BYTES", "1024", TRUE);
  if (!start (f, history_config))
    return;
  register_flapping (f, n);

  /* by bytes: every page within the budget, and no smaller than it must
   * be: a page ends only where the next agent's history would not fit,
   * so two pages in a row hold more than the budget */
  walk_history (f, "/v1/history", &all);
  g_assert_cmpuint (all.ids->len, ==, n);
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *id = g_strdup_printf ("hp-%02u", i);
      g_autoptr(JsonNode) history = json_from_string (g_hash_table_lookup (all.histories, id), NULL);

      g_assert_cmpstr (g_ptr_array_index (all.ids, i), ==, id);
      g_assert_cmpuint (json_array_get_length (json_node_get_array (history)), ==, 1 + 2 * (i % 4));
    }
  for (guint i = 0; i < all.sizes->len; i++)
    {
      gsize size = g_array_index (all.sizes, gsize, i);

      total += size;
      g_assert_cmpuint (size, <=, budget);
      if (i + 1 < all.sizes->len)
        g_assert_cmpuint (size + g_array_index (all.sizes, gsize, i + 1), >, budget);
    }
  g_test_message ("%u agents' histories: %zu bytes in %u pages of at most %zu", n, total, all.sizes->len, budget);
  g_assert_cmpuint (all.sizes->len, >=, total / budget + 1);
  assert_histories_as_each_agent (f, &all);

  /* by ?limit=: at most that many agents a page, the same histories */
  walk_history (f, "/v1/history?limit=4", &by4);
  g_assert_cmpuint (by4.ids->len, ==, n);
  for (guint i = 0; i < by4.counts->len; i++)
    {
      g_assert_cmpuint (g_array_index (by4.counts, guint, i), <=, 4);
      g_assert_cmpuint (g_array_index (by4.sizes, gsize, i), <=, budget);
    }
  for (guint i = 0; i < n; i++)
    g_assert_cmpstr (g_hash_table_lookup (by4.histories, g_ptr_array_index (all.ids, i)), ==,
                     g_hash_table_lookup (all.histories, g_ptr_array_index (all.ids, i)));

  /* an id with reserved characters is percent-encoded in Link; after the
   * last id: an empty page, no Link */
  register_dbus (f->h, "a@b:c", NULL);
  {
    g_auto(HistoryPage) p = { 0 };

    get_history_page (f, NULL, "/v1/history?limit=1", NULL, &p);
    g_assert_cmpstr (p.link, ==, "</v1/history?after=a%40b%3Ac&limit=1>; rel=\"next\"");
    g_assert_true (json_object_has_member (history_agents (p.root), "a@b:c"));
  }
  {
    g_auto(HistoryPage) p = { 0 };

    get_history_page (f, NULL, "/v1/history?after=hp-29", NULL, &p);
    g_assert_null (p.link);
    g_assert_cmpuint (json_object_get_size (history_agents (p.root)), ==, 0);
  }

  /* bad parameters: 400, and nothing changed */
  {
    const char *const bad[] = { "limit=0", "limit=1001", "limit=abc", "limit=-1", "limit=", "limit=+5",
                                "limit=99999999999999999999", "after=", "after=..", "after=a%2Fb", "after=%C3%A9" };

    for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
      {
        g_autofree char *p = g_strconcat ("/v1/history?", bad[i], NULL);

        GET (f, p, &r);
        assert_error (&r, 400, strstr (bad[i], "limit") ? "“limit”" : "“after”");
        reply_clear (&r);
      }
  }
  GET (f, "/health", &r);
  g_assert_cmpint (json_object_get_int_member (object (&r), "agents"), ==, n + 1);
}

/* GET /v1/history gzipped when Accept-Encoding allows it: the same JSON,
 * the same Link, with Vary: Accept-Encoding either way */
static void
test_history_gzip (Fixture *f, gconstpointer data)
{
  g_autoptr(SoupSession) raw = soup_session_new_with_options ("timeout", 30, NULL);
  static const char *const paths[] = { "/v1/history", "/v1/history?limit=7", "/v1/history?after=hp-10&limit=3" };

  if (!start (f, history_config))
    return;
  /* no decoding on our side: the bytes as they come */
  soup_session_remove_feature_by_type (raw, SOUP_TYPE_CONTENT_DECODER);
  register_flapping (f, 30);

  for (gsize i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_auto(HistoryPage) plain = { 0 };
      g_auto(HistoryPage) gzipped = { 0 };
      g_autoptr(GBytes) unzipped = NULL;
      const guint8 *magic;

      get_history_page (f, raw, paths[i], NULL, &plain);
      g_assert_null (plain.encoding);
      g_assert_cmpstr (plain.vary, ==, "Accept-Encoding");
      get_history_page (f, raw, paths[i], "gzip", &gzipped);
      g_assert_cmpstr (gzipped.encoding, ==, "gzip");
      g_assert_cmpstr (gzipped.vary, ==, "Accept-Encoding");
      g_assert_cmpstr (gzipped.link, ==, plain.link);
      g_assert_cmpuint (g_bytes_get_size (gzipped.body), >, 2);
      magic = g_bytes_get_data (gzipped.body, NULL);
      g_assert_cmpint (magic[0], ==, 0x1f);
      g_assert_cmpint (magic[1], ==, 0x8b);
      unzipped = gunzip (gzipped.body);
      g_assert_true (g_bytes_equal (unzipped, plain.body));
      /* compressed: by a half at least (a page of three agents' timestamps,
       * spread by a slow daemon, as under valgrind, gives about 3:1) */
      g_assert_cmpuint (g_bytes_get_size (gzipped.body) * 2, <, g_bytes_get_size (plain.body));
    }
  /* refused: not gzipped */
  {
    g_auto(HistoryPage) p = { 0 };

    get_history_page (f, raw, "/v1/history", "gzip;q=0, identity", &p);
    g_assert_null (p.encoding);
    g_assert_nonnull (p.root);
  }
}

/* 2,000 agents × 128 state changes, their histories written into the
 * store while the daemon is stopped (128 flaps each on D-Bus would take a
 * minute), then read back: GetHistory says 128. */
static void
seed_big_histories (Fixture *f, guint n)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("a(ts)"));
  g_autoptr(GVariant) history = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) entries = NULL;
  g_autofree char *db_path = g_build_filename (f->h->state_dir, "agents.db", NULL);
  guint64 now = (guint64) g_get_real_time ();
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  int status;

  register_many (f, n);
  hb_harness_signal_daemon (f->h, SIGTERM);
  status = hb_harness_wait_exit (f->h, f->h->daemon, HB_WAIT_MS);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);

  /* error, healthy, error, … healthy (the state they are in), a second apart */
  for (guint k = 0; k < 128; k++)
    g_variant_builder_add (&builder, "(ts)", now - (128 - k) * G_USEC_PER_SEC, k % 2 ? "healthy" : "error");
  history = g_variant_ref_sink (g_variant_builder_end (&builder));
  g_assert_cmpint (sqlite3_open (db_path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "UPDATE agents SET history = ?1", -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_bind_blob (stmt, 1, g_variant_get_data (history), (int) g_variant_get_size (history),
                                      SQLITE_TRANSIENT), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_DONE);
  g_assert_cmpint (sqlite3_changes (db), ==, (int) n);
  sqlite3_finalize (stmt);
  g_assert_cmpint (sqlite3_close (db), ==, SQLITE_OK);

  hb_harness_start_daemon (f->h, 0);
  reply = hb_call_ok (f->h, NULL, "GetHistory", g_variant_new ("(s)", "build-runner-0001"), "(a(ts))");
  entries = g_variant_get_child_value (reply, 0);
  g_assert_cmpuint (g_variant_n_children (entries), ==, 128);
}

static guint64
daemon_status_kb (Fixture *f, const char *key)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", f->h->daemon->pid);
  g_autofree char *text = NULL;
  g_autofree char *field = g_strdup_printf ("\n%s:", key);
  const char *line;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  line = strstr (text, field);
  g_assert_nonnull (line);
  return g_ascii_strtoull (line + strlen (field), NULL, 10);
}

/* One of several clients reading the whole of GET /v1/history at once
 * (plain JSON); one of them (@parse) reads each page's JSON */
typedef struct {
  Fixture     *f;
  SoupSession *session;
  gboolean     parse;
  SoupMessage *msg;        /* the page under way */
  char        *path;       /* its path */
  char        *last;       /* the last id seen */
  guint        agents;
  guint        not_full;   /* agents whose history is not 128 entries */
  guint        pages;
  gsize        largest;
  gsize        total;
  guint        status;     /* other than 200, or 0 */
  gboolean     done;
} BigWalk;

static void big_walk_next (BigWalk *w);

static void
on_big_walk_page (GObject *source, GAsyncResult *result, gpointer user_data)
{
  BigWalk *w = user_data;
  g_autoptr(SoupMessage) msg = g_steal_pointer (&w->msg);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
  g_autoptr(JsonNode) root = NULL;
  const char *link;
  JsonObjectIter iter;
  const char *id;
  JsonNode *history;

  g_assert_no_error (error);
  record_message (msg, bytes);
  w->pages++;
  w->total += g_bytes_get_size (bytes);
  w->largest = MAX (w->largest, g_bytes_get_size (bytes));
  if (soup_message_get_status (msg) != 200)
    {
      w->status = soup_message_get_status (msg);   /* asserted once every walk ended */
      w->done = TRUE;
      return;
    }
  if (w->parse)
    {
      root = json_from_string (g_bytes_get_data (bytes, NULL), &error);
      g_assert_no_error (error);
      json_object_iter_init_ordered (&iter, history_agents (root));
    }
  while (root && json_object_iter_next_ordered (&iter, &id, &history))
    {
      if (w->last)
        g_assert_cmpstr (id, >, w->last);
      g_free (w->last);
      w->last = g_strdup (id);
      w->agents++;
      w->not_full += json_array_get_length (json_node_get_array (history)) != 128;
    }
  link = soup_message_headers_get_one (soup_message_get_response_headers (msg), "Link");
  g_clear_pointer (&w->path, g_free);
  if (link == NULL)
    {
      w->done = TRUE;
      return;
    }
  w->path = history_next_path (link);
  big_walk_next (w);
}

static void
big_walk_next (BigWalk *w)
{
  g_autofree char *uri = g_strconcat (w->f->base, w->path, NULL);

  w->msg = soup_message_new ("GET", uri);
  soup_session_send_and_read_async (w->session, w->msg, G_PRIORITY_DEFAULT, NULL, on_big_walk_page, w);
}

/* Whether the walks read another page (or all ended) since last asked:
 * each page is waited for with the harness's bound, not the whole walk */
#define BIG_WALKS 2

typedef struct {
  BigWalk *walks;
  guint    pages;
  gboolean done;
} BigProgress;

static gboolean
big_walks_moved (HbHarness *h, gpointer data)
{
  BigProgress *progress = data;
  guint pages = 0;

  progress->done = TRUE;
  for (guint i = 0; i < BIG_WALKS; i++)
    {
      pages += progress->walks[i].pages;
      progress->done &= progress->walks[i].done;
    }
  if (!progress->done && pages == progress->pages)
    return FALSE;
  progress->pages = pages;
  return TRUE;
}

/* Issue 25, 5: 2,000 agents × 128 state changes (11.8 MB of JSON) read
 * whole by clients at once used to be one answer of 11.8 MB each, built
 * on the main loop in 1.4–2 s (D-Bus waited), held whole until read: the
 * daemon went from 22 to 214 MB with four. Now: pages of at most
 * HB_HTTP_HISTORY_PAGE_BYTES (256 KiB), and the daemon's peak RSS (VmHWM)
 * grows by less than 16 MiB while two clients read every agent's full
 * history at once (bench/history.sh runs four, in a loop, and measures
 * how long D-Bus waits meanwhile; a test asserts no time). */
static void
test_history_big (Fixture *f, gconstpointer data)
{
  const guint n = 2000;
  const gsize budget = 256 * 1024;
  g_autoptr(SoupSession) plain = soup_session_new_with_options ("timeout", 60, NULL);
  BigWalk walks[BIG_WALKS] = { { 0 } };
  BigProgress progress = { walks, 0, FALSE };
  guint64 before, after;
  g_auto(Reply) r = { 0 };

  if (!start (f, history_config))
    return;
  /* the JSON as it is, the largest answers (and no time spent on gzip) */
  soup_session_remove_feature_by_type (plain, SOUP_TYPE_CONTENT_DECODER);
  seed_big_histories (f, n);
  GET (f, "/health", &r);
  g_assert_cmpint (json_object_get_int_member (object (&r), "agents"), ==, n);
  before = daemon_status_kb (f, "VmHWM");

  for (guint i = 0; i < G_N_ELEMENTS (walks); i++)
    {
      walks[i].f = f;
      walks[i].session = plain;
      walks[i].parse = i == 0;
      walks[i].path = g_strdup ("/v1/history");
      big_walk_next (&walks[i]);
    }
  while (!progress.done)
    hb_harness_wait_until (f->h, big_walks_moved, &progress);
  after = daemon_status_kb (f, "VmHWM");
  g_test_message ("%u clients read GET /v1/history whole at %u agents × 128: %zu bytes in %u pages each, "
                  "the largest %zu; VmHWM %" G_GUINT64_FORMAT " kB → %" G_GUINT64_FORMAT " kB",
                  BIG_WALKS, n, walks[0].total, walks[0].pages, walks[0].largest, before, after);
  for (guint i = 0; i < G_N_ELEMENTS (walks); i++)
    {
      g_assert_cmpuint (walks[i].largest, <=, budget);
      g_assert_cmpuint (walks[i].status, ==, 0);
      g_assert_cmpuint (walks[i].pages, ==, walks[0].pages);
      g_assert_cmpuint (walks[i].total, ==, walks[0].total);
      g_assert_cmpuint (walks[i].pages, >, walks[i].total / budget);
      g_free (walks[i].last);
    }
  g_assert_cmpuint (walks[0].agents, ==, n);
  g_assert_cmpuint (walks[0].not_full, ==, 0);
  assert_rss_bounded (f, before, after, 16 * 1024);

  /* clients that go before their page is built or sent: the others are
   * answered as before */
  {
    g_autofree char *request = g_strdup_printf ("GET /v1/history HTTP/1.1\r\nHost: localhost:%u\r\n\r\n",
                                                f->h->http_port);

    for (guint i = 0; i < 16; i++)
      {
        g_autoptr(GSocketConnection) c = raw_connect (f, NULL);

        raw_write (c, request);
      }
  }
  reply_clear (&r);
  GET (f, "/v1/history?limit=3", &r);
  g_assert_cmpuint (r.status, ==, 200);
  g_assert_cmpuint (json_object_get_size (history_agents (r.json)), ==, 3);
  reply_clear (&r);
  GET (f, "/health", &r);
  g_assert_cmpuint (r.status, ==, 200);
}

/* ------------------------------------------------------------------ */
/* Event streams per local user                                        */

/* @n event streams opened as @uid from @local in a child process, kept
 * open until streams_release() kills it; the statuses they got in
 * @statuses. Only system calls in the child (it was forked from a
 * threaded process). */
typedef struct {
  pid_t pid;
} Streams;

static Streams
streams_open (Fixture *f, uid_t uid, const char *local, guint n, guint *statuses)
{
  g_autofree char *request = g_strdup_printf ("GET /v1/events HTTP/1.1\r\nHost: localhost:%u\r\n\r\n",
                                              f->h->http_port);
  struct sockaddr_in server = { 0 }, client = { 0 };
  int report[2];
  Streams s;

  server.sin_family = AF_INET;
  server.sin_port = htons (f->h->http_port);
  server.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  client.sin_family = AF_INET;
  g_assert_cmpint (inet_pton (AF_INET, local, &client.sin_addr), ==, 1);
  g_assert_cmpint (pipe2 (report, O_CLOEXEC), ==, 0);

  s.pid = fork ();
  g_assert_cmpint (s.pid, >=, 0);
  if (s.pid == 0)
    {
      struct timeval tv = { 5, 0 };

      prctl (PR_SET_PDEATHSIG, SIGKILL);
      close (report[0]);
      if (setresgid (uid, uid, uid) != 0 || setresuid (uid, uid, uid) != 0)
        _exit (2);
      for (guint i = 0; i < n; i++)
        {
          int fd = socket (AF_INET, SOCK_STREAM, 0);
          char head[512];
          gssize got = 0, k;
          guint status = 0;

          setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
          if (fd < 0 || bind (fd, (struct sockaddr *) &client, sizeof client) != 0 ||
              connect (fd, (struct sockaddr *) &server, sizeof server) != 0 ||
              write (fd, request, strlen (request)) != (gssize) strlen (request))
            _exit (3);
          /* the status line is enough */
          while (got < 12 && (k = read (fd, head + got, sizeof head - (gsize) got)) > 0)
            got += k;
          if (got >= 12)
            status = (guint) ((head[9] - '0') * 100 + (head[10] - '0') * 10 + (head[11] - '0'));
          if (write (report[1], &status, sizeof status) != sizeof status)
            _exit (4);
        }
      for (;;)
        pause ();   /* until streams_release() */
    }
  close (report[1]);
  for (guint i = 0; i < n; i++)
    {
      struct pollfd pfd = { report[0], POLLIN, 0 };

      g_assert_cmpint (poll (&pfd, 1, HB_WAIT_MS), ==, 1);
      g_assert_cmpint (read (report[0], &statuses[i], sizeof statuses[i]), ==, sizeof statuses[i]);
    }
  close (report[0]);
  return s;
}

static void
streams_release (Streams *s)
{
  int status;

  g_assert_cmpint (kill (s->pid, SIGKILL), ==, 0);
  g_assert_cmpint (waitpid (s->pid, &status, 0), ==, s->pid);
  /* it had not died of anything else before */
  g_assert_true (WIFSIGNALED (status));
  g_assert_cmpint (WTERMSIG (status), ==, SIGKILL);
}

/* 2.6: eight streams of one local user (whatever 127.x address it uses)
 * do not lock another user's dashboard out; 64 in all. */
/* @uid takes @n streams from 127.0.0.1, each answered 200, the most it
 * may hold: one more, even from 127.0.0.2, is answered 503. */
static Streams
streams_fill (Fixture *f, uid_t uid, guint n)
{
  g_autofree guint *statuses = g_new0 (guint, n);
  Streams held, again;
  guint extra;

  held = streams_open (f, uid, "127.0.0.1", n, statuses);
  for (guint i = 0; i < n; i++)
    g_assert_cmpuint (statuses[i], ==, 200);
  again = streams_open (f, uid, "127.0.0.2", 1, &extra);
  g_assert_cmpuint (extra, ==, 503);
  streams_release (&again);
  return held;
}

static void
test_events_per_uid (Fixture *f, gconstpointer data)
{
  Streams nobody, others[6], last;
  guint statuses[8];
  Sse *mine;
  g_autoptr(GSocketConnection) c = NULL;
  g_autofree char *request = NULL;
  g_autofree char *head = NULL;
  g_autofree char *body = NULL;

  if (geteuid () != 0)
    {
      g_test_skip ("opening streams as other users needs root");
      return;
    }
  if (!start (f, NULL))
    return;
  /* uid 65534 takes its eight, from 127.0.0.1; no ninth from .2 either */
  nobody = streams_fill (f, HB_NOBODY_UID, 8);

  /* root's dashboard, from 127.0.0.1 too, connects */
  mine = sse_open (f);
  request = g_strdup_printf ("GET /v1/events HTTP/1.1\r\nHost: localhost:%u\r\n\r\n", f->h->http_port);
  c = raw_connect (f, "127.0.0.3");
  raw_write (c, request);
  g_assert_cmpuint (raw_read_answer (c, TRUE, NULL, NULL), ==, 200);

  /* six more users of eight each: 2 + 8 + 48 = 58; then 6 of a seventh */
  for (guint u = 0; u < G_N_ELEMENTS (others); u++)
    {
      others[u] = streams_open (f, 2000 + u, "127.0.0.1", 8, statuses);
      for (guint i = 0; i < 8; i++)
        g_assert_cmpuint (statuses[i], ==, 200);
    }
  last = streams_open (f, 3000, "127.0.0.1", 7, statuses);
  for (guint i = 0; i < 6; i++)
    g_assert_cmpuint (statuses[i], ==, 200);
  /* the 65th: the global cap */
  g_assert_cmpuint (statuses[6], ==, 503);
  {
    g_autoptr(GSocketConnection) extra = raw_connect (f, NULL);

    raw_write (extra, request);
    g_assert_cmpuint (raw_read_answer (extra, FALSE, &head, &body), ==, 503);
    g_assert_nonnull (strstr (head, "Retry-After: 5"));
    g_assert_nonnull (strstr (body, "at most 64"));
  }

  streams_release (&last);
  for (guint u = 0; u < G_N_ELEMENTS (others); u++)
    streams_release (&others[u]);
  streams_release (&nobody);
  sse_free (mine);
}

/* One local user may hold HB_HTTP_MAX_CONNECTIONS_PER_PEER connections
 * (5 here, of 20), told by the uid that owns the client's socket: uid
 * 65534 holds its five (event streams, from 127.0.0.1), a sixth of its,
 * from 127.0.0.2, is answered 503 and closed, and root's requests on the
 * same loopback still get answers. */
static void
test_connections_per_user (Fixture *f, gconstpointer data)
{
  Streams nobody;
  g_autofree char *request = NULL;

  if (geteuid () != 0)
    {
      g_test_skip ("opening connections as another user needs root");
      return;
    }
  g_setenv ("HB_HTTP_MAX_CONNECTIONS", "20", TRUE);
  g_setenv ("HB_HTTP_MAX_CONNECTIONS_PER_PEER", "5", TRUE);
  if (!start (f, NULL))
    return;
  nobody = streams_fill (f, HB_NOBODY_UID, 5);

  request = g_strdup_printf ("GET /health HTTP/1.1\r\nHost: localhost:%u\r\n\r\n", f->h->http_port);
  for (guint i = 0; i < 6; i++)
    {
      g_autoptr(GSocketConnection) mine = raw_connect (f, i % 2 ? "127.0.0.1" : "127.0.0.2");

      raw_write (mine, request);
      g_assert_cmpuint (raw_read_answer (mine, FALSE, NULL, NULL), ==, 200);
    }
  streams_release (&nobody);
}

/* ------------------------------------------------------------------ */
/* Jobs: runs and the ping URLs (issue 22)                             */

/* Declared jobs to ping, and a plain agent registered over D-Bus */
static const char jobs_config[] =
  "[monitor]\ncheck-interval=200ms\nstale-threshold=5s\ntimeout-threshold=10min\n"
  "\n[limits]\nagents-per-uid=3\n"
  "\n[agent:backup]\ntask=nightly backup\n"
  "\n[agent:sync]\n"
  "\n[agent:hourly]\nschedule=0 * * * *\ngrace=5min\n";

/* GET /v1/agents/@id/runs: asserted 200, the array (owned by @r) */
static JsonArray *
get_runs (Fixture *f, const char *id, Reply *r)
{
  g_autofree char *path = g_strdup_printf ("/v1/agents/%s/runs", id);

  reply_clear (r);
  GET (f, path, r);
  g_assert_cmpuint (r->status, ==, 200);
  g_assert_nonnull (r->json);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (r->json));
  return json_node_get_array (r->json);
}

/* The newest run record of @id, asserted to exist (owned by @r) */
static JsonObject *
last_run (Fixture *f, const char *id, Reply *r)
{
  JsonArray *runs = get_runs (f, id, r);

  g_assert_cmpuint (json_array_get_length (runs), >, 0);
  return json_array_get_object_element (runs, json_array_get_length (runs) - 1);
}

static guint
n_runs (Fixture *f, const char *id)
{
  g_auto(Reply) r = { 0 };

  return json_array_get_length (get_runs (f, id, &r));
}

static char *
agent_state (Fixture *f, const char *id)
{
  g_autofree char *path = g_strconcat ("/v1/agents/", id, NULL);
  g_auto(Reply) r = { 0 };

  GET (f, path, &r);
  g_assert_cmpuint (r.status, ==, 200);
  return g_strdup (json_object_get_string_member (object (&r), "state"));
}

/* A ping: @method on @path with @body (NULL: none), asserted @status; a
 * 200 says "OK" as text (no body for HEAD). */
static void
ping (Fixture *f, const char *method, const char *path, const char *body, const char *token, guint status)
{
  g_auto(Reply) r = { 0 };

  request_full (f, method, path, body ? "text/plain" : NULL, body, -1, token, &r);
  g_assert_cmpuint (r.status, ==, status);
  if (status == 200)
    {
      g_assert_cmpstr (r.body ? r.body : "", ==, strcmp (method, "HEAD") == 0 ? "" : "OK");
      if (strcmp (method, "HEAD") != 0)
        g_assert_true (g_str_has_prefix (r.content_type, "text/plain"));
    }
  else if (status == 404 && strcmp (method, "HEAD") != 0)
    g_assert_cmpstr (r.body, ==, "not found");
  else if (status == 400 && strcmp (method, "HEAD") != 0)
    g_assert_cmpstr (r.body, ==, "invalid url format");
}

static void
test_agent_runs (Fixture *f, gconstpointer data)
{
  g_auto(Reply) r = { 0 };
  JsonObject *run;

  if (!start (f, jobs_config))
    return;
  GET (f, "/v1/agents/nope/runs", &r);
  assert_error (&r, 404, "nope");
  reply_clear (&r);
  request_full (f, "HEAD", "/v1/agents/nope/runs", NULL, NULL, 0, NULL, &r);
  g_assert_cmpuint (r.status, ==, 404);
  /* a declared agent that never ran: none */
  g_assert_cmpuint (n_runs (f, "backup"), ==, 0);

  ping (f, "GET", "/ping/backup/start", NULL, NULL, 200);
  ping (f, "POST", "/ping/backup/0", "done\n", NULL, 200);
  run = last_run (f, "backup", &r);
  g_assert_cmpstr (json_object_get_string_member (run, "result"), ==, "success");
  g_assert_cmpint (json_object_get_int_member (run, "exit-status"), ==, 0);
  g_assert_cmpstr (json_object_get_string_member (run, "output"), ==, "done\n");
  g_assert_cmpuint (json_array_get_length (get_runs (f, "backup", &r)), ==, 1);
  reply_clear (&r);
  request_full (f, "HEAD", "/v1/agents/backup/runs", NULL, NULL, 0, NULL, &r);
  g_assert_cmpuint (r.status, ==, 200);
  g_assert_cmpstr (r.body ? r.body : "", ==, "");
}

/* Every ping form, with GET, HEAD and POST: the run records and states
 * they make, and nothing changed by /log. */
static void
test_ping_forms (Fixture *f, gconstpointer data)
{
  const char *const methods[] = { "GET", "HEAD", "POST" };
  g_auto(Reply) r = { 0 };
  JsonObject *run;
  Sse *s;

  if (!start (f, jobs_config))
    return;
  s = sse_open (f);

  for (gsize m = 0; m < G_N_ELEMENTS (methods); m++)
    {
      const char *method = methods[m];
      const char *body = strcmp (method, "POST") == 0 ? "some output" : NULL;
      guint before;
      g_autofree char *state = NULL;

      g_test_message ("-- %s", method);
      /* a single ping: a run known only by its end */
      before = n_runs (f, "backup");
      ping (f, method, "/ping/backup", body, NULL, 200);
      g_assert_cmpuint (n_runs (f, "backup"), ==, MIN (before + 1, 20));
      run = last_run (f, "backup", &r);
      g_assert_cmpstr (json_object_get_string_member (run, "result"), ==, "success");
      g_assert_false (json_object_has_member (run, "started-usec"));
      g_assert_false (json_object_has_member (run, "exit-status"));
      g_assert_true (json_object_has_member (run, "ended-usec"));
      g_assert_cmpstr (body ? json_object_get_string_member (run, "output") : NULL, ==, body);
      state = agent_state (f, "backup");
      g_assert_cmpstr (state, ==, "healthy");
      g_clear_pointer (&state, g_free);

      /* /start, then /fail: a failure with a duration, state error */
      ping (f, method, "/ping/backup/start", body, NULL, 200);
      run = last_run (f, "backup", &r);
      g_assert_cmpstr (json_object_get_string_member (run, "result"), ==, "running");
      g_assert_true (json_object_has_member (run, "started-usec"));
      ping (f, method, "/ping/backup/fail", body, NULL, 200);
      run = last_run (f, "backup", &r);
      g_assert_cmpstr (json_object_get_string_member (run, "result"), ==, "failure");
      g_assert_true (json_object_has_member (run, "duration-usec"));
      g_assert_cmpint (json_object_get_int_member (run, "duration-usec"), ==,
                       json_object_get_int_member (run, "ended-usec") - json_object_get_int_member (run, "started-usec"));
      g_assert_false (json_object_has_member (run, "exit-status"));
      state = agent_state (f, "backup");
      g_assert_cmpstr (state, ==, "error");
      g_clear_pointer (&state, g_free);

      /* an exit status: 0 is success, any other a failure with it */
      ping (f, method, "/ping/backup/0", body, NULL, 200);
      run = last_run (f, "backup", &r);
      g_assert_cmpstr (json_object_get_string_member (run, "result"), ==, "success");
      g_assert_cmpint (json_object_get_int_member (run, "exit-status"), ==, 0);
      state = agent_state (f, "backup");
      g_assert_cmpstr (state, ==, "healthy");
      g_clear_pointer (&state, g_free);
      ping (f, method, "/ping/backup/255", body, NULL, 200);
      run = last_run (f, "backup", &r);
      g_assert_cmpstr (json_object_get_string_member (run, "result"), ==, "failure");
      g_assert_cmpint (json_object_get_int_member (run, "exit-status"), ==, 255);
      state = agent_state (f, "backup");
      g_assert_cmpstr (state, ==, "error");
      g_clear_pointer (&state, g_free);

      /* /log changes nothing, and is passed on as an event */
      before = n_runs (f, "backup");
      ping (f, method, "/ping/backup/log", body ? "a log line" : NULL, NULL, 200);
      g_assert_cmpuint (n_runs (f, "backup"), ==, before);
      state = agent_state (f, "backup");
      g_assert_cmpstr (state, ==, "error");
      run = last_run (f, "backup", &r);
      g_assert_cmpint (json_object_get_int_member (run, "exit-status"), ==, 255);
    }
  sse_wait (s, "\"type\":\"ping-log\"");
  sse_wait (s, "\"output\":\"a log line\"");

  /* malformed URLs: 400, nothing changed */
  {
    const char *const bad[] = { "/ping/", "/ping//start", "/ping/backup/", "/ping/backup/256", "/ping/backup/1000",
                                "/ping/backup/start/extra", "/ping/a/b/c/d" };
    guint before = n_runs (f, "backup");

    for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
      for (gsize m = 0; m < G_N_ELEMENTS (methods); m++)
        ping (f, methods[m], bad[i], NULL, NULL, 400);
    g_assert_cmpuint (n_runs (f, "backup"), ==, before);
  }
  /* another method: 405 */
  reply_clear (&r);
  request_full (f, "PUT", "/ping/backup", NULL, NULL, 0, NULL, &r);
  assert_error (&r, 405, "PUT");
  /* the query (Healthchecks' rid) is ignored */
  ping (f, "GET", "/ping/sync/start?rid=4f0e7c26-90b2-4a8c-8c07-f1f3c6e5a6f1", NULL, NULL, 200);
  ping (f, "GET", "/ping/sync?rid=4f0e7c26-90b2-4a8c-8c07-f1f3c6e5a6f1", NULL, NULL, 200);
  run = last_run (f, "sync", &r);
  g_assert_cmpstr (json_object_get_string_member (run, "result"), ==, "success");
  g_assert_true (json_object_has_member (run, "duration-usec"));
  sse_free (s);
}

/* An unknown id is 404 "not found" and nothing is created. */
static void
test_ping_unknown (Fixture *f, gconstpointer data)
{
  const char *const paths[] = { "/ping/nope", "/ping/nope/start", "/ping/nope/fail", "/ping/nope/log", "/ping/nope/3",
                                "/ping/nope?create=1" };
  const char *const methods[] = { "GET", "HEAD", "POST" };
  g_autoptr(GVariant) list = NULL;

  if (!start (f, jobs_config))
    return;
  for (gsize i = 0; i < G_N_ELEMENTS (paths); i++)
    for (gsize m = 0; m < G_N_ELEMENTS (methods); m++)
      ping (f, methods[m], paths[i], strcmp (methods[m], "POST") == 0 ? "x" : NULL, NULL, 404);
  hb_call_error (f->h, NULL, "GetAgent", g_variant_new ("(s)", "nope"), "NotFound");
  list = hb_call_ok (f->h, NULL, "ListAgents", NULL, "(aa{sv})");
  g_assert_cmpuint (g_variant_n_children (g_variant_get_child_value (list, 0)), ==, 3);
}

/* Without tokens (loopback), a ping may change declared agents and those
 * HTTP created, not an agent another uid registered over D-Bus. */
static void
test_ping_owners (Fixture *f, gconstpointer data)
{
  g_auto(Reply) r = { 0 };

  if (!start (f, jobs_config))
    return;
  register_dbus (f->h, "dbus-agent", NULL);
  SEND (f, "PUT", "/v1/agents/mine", "{}", &r);
  g_assert_cmpuint (r.status, ==, 201);
  reply_clear (&r);

  ping (f, "GET", "/ping/backup", NULL, NULL, 200);
  ping (f, "GET", "/ping/mine/start", NULL, NULL, 200);
  ping (f, "GET", "/ping/mine", NULL, NULL, 200);
  g_assert_cmpuint (n_runs (f, "mine"), ==, 1);
  request_full (f, "GET", "/ping/dbus-agent", NULL, NULL, 0, NULL, &r);
  assert_error (&r, 403, "dbus-agent");
  g_assert_cmpuint (n_runs (f, "dbus-agent"), ==, 0);
}

/* The body is the run's output: its tail, valid UTF-8; over the bound, 413
 * before it is read, and nothing changed. */
static void
test_ping_body (Fixture *f, gconstpointer data)
{
  GString *body = g_string_new (NULL);
  g_autofree char *expected = NULL;
  g_autoptr(GSocketConnection) c = NULL;
  g_autofree char *request = NULL;
  g_auto(Reply) r = { 0 };
  JsonObject *run;
  const char *output;
  guint before;

  if (!start (f, jobs_config))
    return;
  /* 10000 bytes: lines, then "é" across the cut, an invalid byte, the end */
  while (body->len < 10000 - 64)
    g_string_append_printf (body, "line %05u of the job's output\n", (guint) body->len);
  g_string_append (body, "\xff" "caf\xc3\xa9 done\n");
  request_full (f, "POST", "/ping/backup/0", "text/plain", body->str, (gssize) body->len, NULL, &r);
  g_assert_cmpuint (r.status, ==, 200);
  run = last_run (f, "backup", &r);
  output = json_object_get_string_member (run, "output");
  g_assert_true (g_utf8_validate (output, -1, NULL));
  g_assert_cmpuint (strlen (output), <=, 4096);
  g_assert_cmpuint (strlen (output), >=, 4000);
  g_assert_true (g_str_has_suffix (output, "\xef\xbf\xbd" "caf\xc3\xa9 done\n"));   /* U+FFFD for \xff */
  g_assert_null (strstr (output, "line 00000 "));

  /* a body of 100000 bytes is taken; one more byte is not (413, before
   * the body is sent, and nothing changed) */
  g_string_set_size (body, 0);
  while (body->len < 100000)
    g_string_append_c (body, 'a' + (char) (body->len % 26));
  g_string_set_size (body, 100000);
  reply_clear (&r);
  request_full (f, "POST", "/ping/backup/fail", "text/plain", body->str, (gssize) body->len, NULL, &r);
  g_assert_cmpuint (r.status, ==, 200);
  before = n_runs (f, "backup");
  c = raw_connect (f, NULL);
  request = g_strdup_printf ("POST /ping/backup HTTP/1.1\r\nHost: localhost:%u\r\nContent-Type: text/plain\r\n"
                             "Content-Length: 100001\r\n\r\n", f->h->http_port);
  raw_write (c, request);
  g_assert_cmpuint (raw_read_answer (c, FALSE, NULL, NULL), ==, 413);
  g_assert_cmpuint (n_runs (f, "backup"), ==, before);
  run = last_run (f, "backup", &r);
  g_assert_cmpstr (json_object_get_string_member (run, "result"), ==, "failure");
  g_string_free (body, TRUE);
}

/* /start, then /ping: a run with a start, an end and a duration; the
 * agent runs in between. No waiting: the duration may be 0. */
static void
test_ping_start_then_success (Fixture *f, gconstpointer data)
{
  g_auto(Reply) r = { 0 };
  g_autofree char *state = NULL;
  JsonObject *run;
  gint64 before = g_get_real_time ();

  if (!start (f, jobs_config))
    return;
  ping (f, "POST", "/ping/backup/start", NULL, NULL, 200);
  GET (f, "/v1/agents/backup", &r);
  g_assert_cmpstr (json_object_get_string_member (object (&r), "status"), ==, "running");
  ping (f, "GET", "/ping/backup", NULL, NULL, 200);
  g_assert_cmpuint (n_runs (f, "backup"), ==, 1);
  run = last_run (f, "backup", &r);
  g_assert_cmpstr (json_object_get_string_member (run, "result"), ==, "success");
  g_assert_cmpint (json_object_get_int_member (run, "started-usec"), >=, before);
  g_assert_cmpint (json_object_get_int_member (run, "ended-usec"), >=, json_object_get_int_member (run, "started-usec"));
  g_assert_cmpint (json_object_get_int_member (run, "duration-usec"), ==,
                   json_object_get_int_member (run, "ended-usec") - json_object_get_int_member (run, "started-usec"));
  reply_clear (&r);
  GET (f, "/v1/agents/backup", &r);
  g_assert_cmpstr (json_object_get_string_member (object (&r), "status"), ==, "idle");
  state = g_strdup (json_object_get_string_member (object (&r), "state"));
  g_assert_cmpstr (state, ==, "healthy");
}

/* The daemon with a tokens file (token s3cret) and a ping key file of
 * @key, both mode 0600, and the jobs of jobs_config. */
static gboolean
start_with_ping_key (Fixture *f, const char *key)
{
  g_autofree char *tokens = g_build_filename (f->h->tmpdir, "tokens", NULL);
  g_autofree char *key_file = g_build_filename (f->h->tmpdir, "ping-key", NULL);
  g_autofree char *key_text = g_strdup_printf ("# the ping key\n%s\n", key);
  g_autofree char *config = NULL;
  g_autoptr(GError) error = NULL;

  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return FALSE;
  g_file_set_contents (tokens, "s3cret\n", -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (tokens, 0600), ==, 0);
  g_file_set_contents (key_file, key_text, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (key_file, 0600), ==, 0);
  config = g_strdup_printf ("%s\n[http]\ntokens-file=%s\nping-key-file=%s\n", jobs_config, tokens, key_file);
  hb_harness_write_config (f->h, config);
  f->h->http_port = hb_free_port ();
  f->base = g_strdup_printf ("http://127.0.0.1:%u", f->h->http_port);
  hb_harness_start_daemon (f->h, 0);
  return TRUE;
}

#define PING_KEY "k3y-Of_22-characters-or-more"

/* With tokens, a ping needs a token or the ping key; the key works on
 * every ping form and on nothing else; another key is refused. */
static void
test_ping_key (Fixture *f, gconstpointer data)
{
  const char *const methods[] = { "GET", "HEAD", "POST" };
  g_autoptr(GSocketConnection) c = NULL;
  g_autofree char *request = NULL;
  g_autofree char *head = NULL;
  g_autofree char *state = NULL;
  g_auto(Reply) r = { 0 };
  JsonObject *run;

  if (!start_with_ping_key (f, PING_KEY))
    return;

  for (gsize m = 0; m < G_N_ELEMENTS (methods); m++)
    {
      const char *body = strcmp (methods[m], "POST") == 0 ? "out" : NULL;
      guint before = n_runs (f, "backup");

      ping (f, methods[m], "/ping/" PING_KEY "/backup/start", body, NULL, 200);
      ping (f, methods[m], "/ping/" PING_KEY "/backup", body, NULL, 200);
      ping (f, methods[m], "/ping/" PING_KEY "/backup/fail", body, NULL, 200);
      ping (f, methods[m], "/ping/" PING_KEY "/backup/7", body, NULL, 200);
      run = last_run (f, "backup", &r);
      g_assert_cmpint (json_object_get_int_member (run, "exit-status"), ==, 7);
      ping (f, methods[m], "/ping/" PING_KEY "/backup/log", body, NULL, 200);
      g_assert_cmpuint (n_runs (f, "backup"), ==, before + 3);
      ping (f, methods[m], "/ping/" PING_KEY "/nope", body, NULL, 404);
      ping (f, methods[m], "/ping/" PING_KEY "/backup/256", body, NULL, 400);
    }
  state = agent_state (f, "backup");
  g_assert_cmpstr (state, ==, "error");

  /* /ping/ID needs a token now */
  {
    guint before = n_runs (f, "sync");

    for (gsize m = 0; m < G_N_ELEMENTS (methods); m++)
      {
        reply_clear (&r);
        request_full (f, methods[m], "/ping/sync", NULL, NULL, 0, NULL, &r);
        g_assert_cmpuint (r.status, ==, 401);
        reply_clear (&r);
        request_full (f, methods[m], "/ping/sync", NULL, NULL, 0, PING_KEY, &r);
        g_assert_cmpuint (r.status, ==, 401);
      }
    g_assert_cmpuint (n_runs (f, "sync"), ==, before);
    ping (f, "GET", "/ping/sync/start", NULL, "s3cret", 200);
    ping (f, "POST", "/ping/sync/0", "ok", "s3cret", 200);
    g_assert_cmpuint (n_runs (f, "sync"), ==, before + 1);
  }

  /* another key, or a key one character off, is refused: 401 */
  {
    const char *const wrong[] = { "/ping/k3y-Of_22-characters-or-morf/backup",
                                  "/ping/k3y-Of_22-characters-or-more-/backup/start",
                                  "/ping/wrong/backup/fail", "/ping/k3y-Of_22-characters-or-mor/backup/0",
                                  "/ping/" PING_KEY "x/backup/log" };
    guint before = n_runs (f, "backup");

    for (gsize i = 0; i < G_N_ELEMENTS (wrong); i++)
      for (gsize m = 0; m < G_N_ELEMENTS (methods); m++)
        {
          reply_clear (&r);
          request_full (f, methods[m], wrong[i], NULL, NULL, 0, NULL, &r);
          g_assert_cmpuint (r.status, ==, 401);
        }
    g_assert_cmpuint (n_runs (f, "backup"), ==, before);
  }

  /* the key is no token: every other write is refused with it */
  {
    const char *const writes[][3] = {
      { "POST", "/heartbeat", "{\"run_id\": \"k\"}" }, { "POST", "/event", "{\"type\": \"k\"}" },
      { "PUT", "/v1/agents/k", "{}" }, { "DELETE", "/v1/agents/backup", NULL },
      { "POST", "/v1/agents/backup/beat", "{}" }, { "POST", "/v1/agents/backup/idle", NULL },
    };

    for (gsize i = 0; i < G_N_ELEMENTS (writes); i++)
      {
        reply_clear (&r);
        request_full (f, writes[i][0], writes[i][1], writes[i][2] ? "application/json" : NULL, writes[i][2], -1,
                      PING_KEY, &r);
        assert_error (&r, 401, "Bearer");
      }
    hb_call_error (f->h, NULL, "GetAgent", g_variant_new ("(s)", "k"), "NotFound");
    g_variant_unref (hb_call_ok (f->h, NULL, "GetAgent", g_variant_new ("(s)", "backup"), "(a{sv})"));
  }

  /* a POST with the key in its URL is read; one without a key or token is
   * refused before its body */
  c = raw_connect (f, NULL);
  request = g_strdup_printf ("POST /ping/sync HTTP/1.1\r\nHost: localhost:%u\r\nContent-Type: text/plain\r\n"
                             "Content-Length: 60000\r\n\r\n", f->h->http_port);
  raw_write (c, request);   /* and no body */
  g_assert_cmpuint (raw_read_answer (c, FALSE, &head, NULL), ==, 401);
  g_assert_nonnull (strstr (head, "WWW-Authenticate: Bearer"));
}

/* A ping key file the daemon refuses: too short, or readable by others */
static void
test_ping_key_refused (Fixture *f, gconstpointer data)
{
  const char *const keys[] = { "short", "has spaces in it, 22 chars+", NULL };

  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      g_autofree char *key_file = g_build_filename (f->h->tmpdir, "ping-key", NULL);
      g_autofree char *config = NULL;
      g_autoptr(GError) error = NULL;
      HbChild *daemon;
      int status;

      if (i == 0 && !hb_harness_start_bus (f->h, HB_BUS_SESSION))
        return;
      g_file_set_contents (key_file, keys[i] ? keys[i] : PING_KEY, -1, &error);
      g_assert_no_error (error);
      g_assert_cmpint (g_chmod (key_file, keys[i] ? 0600 : 0644), ==, 0);
      config = g_strdup_printf ("%s\n[http]\nping-key-file=%s\n", jobs_config, key_file);
      hb_harness_write_config (f->h, config);
      f->h->http_port = hb_free_port ();
      daemon = hb_harness_spawn_daemon (f->h, NULL, 0);
      status = hb_harness_wait_exit (f->h, daemon, HB_WAIT_MS);
      g_assert_true (WIFEXITED (status));
      g_assert_cmpint (WEXITSTATUS (status), ==, 1);
    }
}

/* Without tokens, a ping key still enables the key URLs (and /ping/ID
 * needs nothing); the key file is read again on SIGHUP, and a file the
 * daemon refuses then keeps the key it had. */
static void
test_ping_key_reload (Fixture *f, gconstpointer data)
{
  g_autofree char *key_file = g_build_filename (f->h->tmpdir, "ping-key", NULL);
  g_autofree char *config = g_strdup_printf ("%s\n[http]\nping-key-file=%s\n", jobs_config, key_file);
  const char *new_key = "a-new-key-of-22-characters";
  g_autofree char *old_url = g_strdup_printf ("/ping/%s/backup", PING_KEY);
  g_autofree char *new_url = g_strdup_printf ("/ping/%s/backup", new_key);
  g_autoptr(GError) error = NULL;
  g_auto(Reply) r = { 0 };
  gint64 until;

  g_file_set_contents (key_file, PING_KEY "\n", -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (key_file, 0600), ==, 0);
  if (!start (f, config))
    return;
  ping (f, "GET", "/ping/backup", NULL, NULL, 200);
  ping (f, "GET", old_url, NULL, NULL, 200);
  request_full (f, "GET", new_url, NULL, NULL, 0, NULL, &r);
  assert_error (&r, 401, "ping key");
  g_assert_cmpuint (n_runs (f, "backup"), ==, 2);

  /* a new key, read on SIGHUP: the old one is refused from then on */
  g_file_set_contents (key_file, new_key, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (key_file, 0600), ==, 0);
  hb_harness_signal_daemon (f->h, SIGHUP);
  until = g_get_monotonic_time () + HB_WAIT_MS * 1000;
  for (;;)
    {
      reply_clear (&r);
      request_full (f, "GET", new_url, NULL, NULL, 0, NULL, &r);
      if (r.status == 200)
        break;
      g_assert_cmpuint (r.status, ==, 401);
      g_assert_cmpint (g_get_monotonic_time (), <, until);
      hb_harness_run_for (f->h, 50);
    }
  reply_clear (&r);
  request_full (f, "GET", old_url, NULL, NULL, 0, NULL, &r);
  assert_error (&r, 401, "ping key");

  /* a key file made readable by others: refused, the key stays; the
   * reload is seen done when a declared agent it adds appears */
  g_assert_cmpint (g_chmod (key_file, 0644), ==, 0);
  g_free (config);
  config = g_strdup_printf ("%s\n[agent:later]\n[http]\nping-key-file=%s\n", jobs_config, key_file);
  hb_harness_write_config (f->h, config);
  hb_harness_signal_daemon (f->h, SIGHUP);
  until = g_get_monotonic_time () + HB_WAIT_MS * 1000;
  for (;;)
    {
      reply_clear (&r);
      GET (f, "/v1/agents/later", &r);
      if (r.status == 200)
        break;
      g_assert_cmpint (g_get_monotonic_time (), <, until);
      hb_harness_run_for (f->h, 50);
    }
  ping (f, "GET", new_url, NULL, NULL, 200);
}

/* A ping a browser sends for another site's page is refused (403) and
 * changes nothing; one typed in the address bar is not. */
static void
test_ping_from_web_page (Fixture *f, gconstpointer data)
{
  const char *const refused[][2] = {
    { "Sec-Fetch-Site", "cross-site" }, { "Sec-Fetch-Site", "same-site" }, { "Origin", "http://evil.example" },
    { "Origin", "null" },
  };
  const char *const methods[] = { "GET", "HEAD", "POST" };

  if (!start (f, jobs_config))
    return;
  for (gsize i = 0; i < G_N_ELEMENTS (refused); i++)
    for (gsize m = 0; m < G_N_ELEMENTS (methods); m++)
      {
        g_autofree char *uri = g_strconcat (f->base, "/ping/backup/fail", NULL);
        g_autoptr(SoupMessage) msg = soup_message_new (methods[m], uri);
        g_autoptr(GBytes) bytes = NULL;
        g_autoptr(GError) error = NULL;

        soup_message_headers_replace (soup_message_get_request_headers (msg), refused[i][0], refused[i][1]);
        bytes = soup_session_send_and_read (f->session, msg, NULL, &error);
        g_assert_no_error (error);
        record_message (msg, bytes);
        g_assert_cmpuint (soup_message_get_status (msg), ==, 403);
      }
  g_assert_cmpuint (n_runs (f, "backup"), ==, 0);
  {
    g_autofree char *uri = g_strconcat (f->base, "/ping/backup/fail", NULL);
    g_autoptr(SoupMessage) msg = soup_message_new ("GET", uri);
    g_autoptr(GBytes) bytes = NULL;
    g_autoptr(GError) error = NULL;

    soup_message_headers_replace (soup_message_get_request_headers (msg), "Sec-Fetch-Site", "none");
    bytes = soup_session_send_and_read (f->session, msg, NULL, &error);
    g_assert_no_error (error);
    record_message (msg, bytes);
    g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  }
  g_assert_cmpuint (n_runs (f, "backup"), ==, 1);
}

/* The crontab line of the README, with the real curl: success; and with
 * the output and exit status of a command, as Healthchecks' docs show. */
static void
test_ping_curl (Fixture *f, gconstpointer data)
{
  g_autofree char *curl = g_find_program_in_path ("curl");
  g_autofree char *url = NULL;
  g_autofree char *script = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(Reply) r = { 0 };
  JsonObject *run;
  int status;

  if (curl == NULL)
    {
      g_test_skip ("curl (Debian curl) is not installed");
      return;
    }
  if (!start (f, jobs_config))
    return;
  url = g_strdup_printf ("%s/ping/backup", f->base);
  {
    const char *argv[] = { curl, "-fsS", "-m", "10", "--retry", "5", "-o", "/dev/null", url, NULL };

    g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL, &status, &error);
    g_assert_no_error (error);
    g_assert_true (g_spawn_check_wait_status (status, NULL));
  }
  run = last_run (f, "backup", &r);
  g_assert_cmpstr (json_object_get_string_member (run, "result"), ==, "success");

  /* m=$(command 2>&1); curl … --data-raw "$m" …/ping/ID/$? */
  script = g_strdup_printf ("m=$( (echo 'disk full'; exit 4) 2>&1); "
                            "curl -fsS -m 10 --retry 5 --data-raw \"$m\" %s/$?", url);
  {
    const char *argv[] = { "/bin/sh", "-c", script, NULL };
    g_autofree char *out = NULL;

    g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL, &status, &error);
    g_assert_no_error (error);
    g_assert_true (g_spawn_check_wait_status (status, NULL));
    g_assert_cmpstr (out, ==, "OK");
  }
  run = last_run (f, "backup", &r);
  g_assert_cmpstr (json_object_get_string_member (run, "result"), ==, "failure");
  g_assert_cmpint (json_object_get_int_member (run, "exit-status"), ==, 4);
  g_assert_cmpstr (json_object_get_string_member (run, "output"), ==, "disk full");

  /* an unknown id: curl -f fails (22: HTTP error) */
  {
    g_autofree char *unknown = g_strdup_printf ("%s/ping/nope", f->base);
    const char *argv[] = { curl, "-fsS", "-m", "10", "--retry", "5", "-o", "/dev/null", unknown, NULL };

    g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL, NULL, &status, &error);
    g_assert_no_error (error);
    g_assert_true (WIFEXITED (status));
    g_assert_cmpint (WEXITSTATUS (status), ==, 22);
  }
}

/* /metrics: the last run's result, duration and exit status, the next due
 * time and whether late, for jobs only; and promtool finds nothing to say. */
static void
test_ping_metrics (Fixture *f, gconstpointer data)
{
  const char *const results[] = { "running", "success", "failure", "timed-out", "missed" };
  g_autofree char *promtool = g_find_program_in_path ("promtool");
  g_autofree char *due = NULL;
  g_autofree char *duration = NULL;
  g_auto(Reply) r = { 0 };
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  gint64 next;

  if (!start (f, jobs_config))
    return;
  register_dbus (f->h, "plain", NULL);
  ping (f, "GET", "/ping/backup/start", NULL, NULL, 200);
  ping (f, "GET", "/ping/backup/3", NULL, NULL, 200);
  ping (f, "GET", "/ping/sync/start", NULL, NULL, 200);

  get_metrics (f, &r);
  for (gsize i = 0; i < G_N_ELEMENTS (results); i++)
    {
      g_autofree char *backup = g_strdup_printf ("heartbeat_agent_last_run_result{agent=\"backup\",result=\"%s\"}",
                                                 results[i]);
      g_autofree char *sync = g_strdup_printf ("heartbeat_agent_last_run_result{agent=\"sync\",result=\"%s\"}",
                                               results[i]);

      assert_metric (r.body, backup, strcmp (results[i], "failure") == 0 ? "1" : "0");
      assert_metric (r.body, sync, strcmp (results[i], "running") == 0 ? "1" : "0");
    }
  assert_metric (r.body, "heartbeat_agent_last_run_exit_status{agent=\"backup\"}", "3");
  duration = metric (r.body, "heartbeat_agent_last_run_duration_seconds{agent=\"backup\"}");
  g_assert_nonnull (duration);
  g_assert_cmpfloat (g_ascii_strtod (duration, NULL), >=, 0);
  /* sync runs: no duration, no exit status yet */
  assert_metric (r.body, "heartbeat_agent_last_run_duration_seconds{agent=\"sync\"}", NULL);
  assert_metric (r.body, "heartbeat_agent_last_run_exit_status{agent=\"sync\"}", NULL);
  assert_metric (r.body, "heartbeat_agent_late{agent=\"backup\"}", "0");
  assert_metric (r.body, "heartbeat_agent_late{agent=\"hourly\"}", "0");
  assert_metric (r.body, "heartbeat_agent_late_due_timestamp_seconds{agent=\"hourly\"}", NULL);
  /* hourly: a schedule and no run yet; due at the next full hour */
  due = metric (r.body, "heartbeat_agent_next_due_timestamp_seconds{agent=\"hourly\"}");
  g_assert_nonnull (due);
  next = g_ascii_strtoll (due, NULL, 10);
  g_assert_cmpint (next % 3600, ==, 0);
  g_assert_cmpint (next, >, now);
  g_assert_cmpint (next, <=, now + 3600 + 60);
  g_assert_cmpuint (n_series (r.body, "heartbeat_agent_last_run_result", "hourly"), ==, 0);
  assert_metric (r.body, "heartbeat_agent_next_due_timestamp_seconds{agent=\"backup\"}", NULL);
  /* not a job: none of it */
  g_assert_cmpuint (n_series (r.body, "heartbeat_agent_last_run_result", "plain"), ==, 0);
  g_assert_cmpuint (n_series (r.body, "heartbeat_agent_late", "plain"), ==, 0);
  g_assert_cmpuint (n_series (r.body, "heartbeat_agent_last_run_exit_status", "plain"), ==, 0);
  if (promtool)
    promtool_check (f, promtool, r.body);
  else
    g_test_skip ("promtool (Debian prometheus) is not installed: the text was not linted");
}

/* ------------------------------------------------------------------ */
/* Issue 21: the short way of a beat                                   */

/* GET /runs/@id: its metadata as text, its status and its beats */
static void
run_of (Fixture     *f,
        const char  *id,
        char       **metadata,
        char       **status,
        gint64      *beats)
{
  g_autofree char *path = g_strconcat ("/runs/", id, NULL);
  g_auto(Reply) r = { 0 };
  JsonObject *heartbeat;

  GET (f, path, &r);
  g_assert_cmpuint (r.status, ==, 200);
  heartbeat = json_object_get_object_member (object (&r), "heartbeat");
  *metadata = json_to_string (json_object_get_member (heartbeat, "metadata"), FALSE);
  *status = g_strdup (json_object_get_string_member (heartbeat, "status"));
  *beats = json_object_get_int_member (json_object_get_object_member (object (&r), "summary"), "beats");
}

/* A beat of an agent that exists, in a small flat body, is read without
 * json-glib (hb_json_read_flat()); every body the whole way refuses is
 * refused still, in the same words, whatever the short way does of it,
 * and changes nothing. The messages are those of the daemon before the
 * short way. */
static void
test_beat_refusals (Fixture *f, gconstpointer data)
{
  static const struct {
    const char *type;
    const char *body;
    guint       status;
    const char *message;
  } cases[] = {
    /* the body */
    { "text/plain", "{\"run_id\":\"f\"}", 415, "The body must be application/json" },
    { "application/json", "", 400, "The body is not valid JSON: empty" },
    { "application/json", "[\"f\"]", 400, "The body must be a JSON object" },
    { "application/json", "{\"run_id\":\"f\"", 400, "The body is not valid JSON: line 1, column 13: invalid string constant \"f\", expected valid string constant" },
    { "application/json", "{\"run_id\":\"f\",}", 400, "The body is not valid JSON: line 1, column 14: unexpected character `,', expected character `]'" },
    { "application/json", "{\"run_id\":\"f\"} x", 400, "The body is not valid JSON: line 1, column 16: unexpected identifier `x', expected end of file" },
    { "application/json", "{\"run_id\":\"f\",\"a\":\"\xff\"}", 400, "The body is not valid JSON: not UTF-8" },
    { "application/json", "{\"run_id\":\"f\",\"a\":\"\\u0000\"}", 400, "The body is not valid JSON: a string contains \\u0000 at offset 19" },
    { "application/json", "{\"run_id\":\"f\",\"a\":\"\\ud800\"}", 400, "The body is not valid JSON: a string has half a surrogate pair at offset 25" },
    { "application/json", "{\"run_id\":\"f\",\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}", 400, "The body is not valid JSON: nested deeper than 32 levels" },
    /* run_id */
    { "application/json", "{\"status\":\"running\"}", 400, "“run_id” is missing" },
    { "application/json", "{\"run_id\":7}", 400, "“run_id” must be a string" },
    { "application/json", "{\"run_id\":[\"f\"]}", 400, "“run_id” must be a string" },
    { "application/json", "{\"run_id\":\"f g\"}", 400, "Agent id has a character outside [A-Za-z0-9._:@-] at offset 1" },
    { "application/json", "{\"run_id\":\"dbus-owned\"}", 403, "Agent “dbus-owned” belongs to uid " },
    /* status */
    { "application/json", "{\"run_id\":\"f\",\"status\":7}", 400, "“status” must be a string" },
    { "application/json", "{\"run_id\":\"f\",\"status\":true}", 400, "“status” must be a string" },
    { "application/json", "{\"run_id\":\"f\",\"status\":\"\"}", 400, "“status” must be 1 to 64 bytes of UTF-8" },
    { "application/json", "{\"run_id\":\"f\",\"status\":\"sssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss\"}", 400, "“status” must be 1 to 64 bytes of UTF-8" },
    { "application/json", "{\"run_id\":\"f\",\"status\":\"a\\u0001b\"}", 400, "“status” contains a control character" },
    { "application/json", "{\"run_id\":\"f\",\"status\":\"a\x01" "b\"}", 400, "“status” contains a control character" },
    { "application/json", "{\"run_id\":\"f\",\"status\":\"a\xc2\x85" "b\"}", 400, "“status” contains a control character" },
    /* metadata */
    { "application/json", "{\"run_id\":\"f\",\"v\":null}", 400, "The value of “v”: null cannot be kept" },
    { "application/json", "{\"run_id\":\"f\",\"v\":[1,null]}", 400, "The value of “v”: null cannot be kept" },
    { "application/json", "{\"run_id\":\"f\",\"v\":{\"w\":null}}", 400, "The value of “v”: The value of “w”: null cannot be kept" },
    { "application/json", "{\"run_id\":\"f\",\"v\":1e999}", 400, "The value of “v”: a number out of range cannot be kept" },
    /* what the agent holds already and the beat's own metadata, together too large */
    { "application/json", "{\"run_id\":\"big\",\"more\":\"mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm\"}",
      400, "Metadata: larger than 16384 bytes" },
  };
  g_autofree char *filler = g_strnfill (16000, 'b');
  g_autofree char *big = g_strdup_printf ("{\"run_id\":\"big\",\"filler\":\"%s\"}", filler);
  g_autofree char *metadata = NULL, *status = NULL, *big_metadata = NULL, *big_status = NULL;
  g_auto(Reply) r = { 0 };
  gint64 beats, big_beats;

  if (!start (f, NULL))
    return;
  register_dbus (f->h, "dbus-owned", NULL);
  SEND (f, "POST", "/heartbeat", big, &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);
  SEND (f, "POST", "/heartbeat", "{\"run_id\":\"f\",\"status\":\"running\",\"n\":1,\"s\":\"x\"}", &r);
  g_assert_cmpuint (r.status, ==, 200);
  g_assert_true (json_object_get_boolean_member (object (&r), "registered"));
  reply_clear (&r);
  /* this one takes the short way */
  SEND (f, "POST", "/heartbeat", "{\"run_id\":\"f\",\"status\":\"running\",\"n\":1,\"s\":\"x\"}", &r);
  g_assert_cmpuint (r.status, ==, 200);
  g_assert_cmpstr (r.body, ==, "{\"ok\":true,\"run_id\":\"f\",\"state\":\"healthy\",\"registered\":false}");
  reply_clear (&r);
  run_of (f, "f", &metadata, &status, &beats);
  g_assert_cmpstr (metadata, ==, "{\"n\":1,\"s\":\"x\"}");
  g_assert_cmpint (beats, ==, 2);
  run_of (f, "big", &big_metadata, &big_status, &big_beats);

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *after = NULL, *after_status = NULL;
      JsonObject *error;
      gint64 after_beats;

      request_full (f, "POST", "/heartbeat", cases[i].type, cases[i].body, -1, NULL, &r);
      g_assert_cmpuint (r.status, ==, cases[i].status);
      error = json_object_get_object_member (object (&r), "error");
      g_assert_nonnull (error);
      if (cases[i].status == 403)
        g_assert_true (g_str_has_prefix (json_object_get_string_member (error, "message"), cases[i].message));
      else
        g_assert_cmpstr (json_object_get_string_member (error, "message"), ==, cases[i].message);
      reply_clear (&r);

      run_of (f, "f", &after, &after_status, &after_beats);
      g_assert_cmpstr (after, ==, metadata);
      g_assert_cmpstr (after_status, ==, status);
      g_assert_cmpint (after_beats, ==, beats);
      g_clear_pointer (&after, g_free);
      g_clear_pointer (&after_status, g_free);
      run_of (f, "big", &after, &after_status, &after_beats);
      g_assert_cmpstr (after, ==, big_metadata);
      g_assert_cmpint (after_beats, ==, big_beats);
    }
  g_variant_unref (hb_harness_get_agent (f->h, "dbus-owned"));
}

/* What the short way of a beat keeps is what the whole way keeps: the
 * same bodies, one beating an agent the short way, the other an agent
 * whose id it spells with an escape (which the short way leaves to
 * json-glib); and bodies it does not read still beat. */
static void
test_beat_short_way_same (Fixture *f, gconstpointer data)
{
  static const char *const beats[] = {
    "\"status\":\"running\",\"tests_per_sec\":0.9,\"n\":3,\"neg\":-17,\"zero\":-0.0,\"on\":true,\"off\":false,"
    "\"s\":\"h\xc3\xa9llo\",\"empty\":\"\",\"progress\":0.25",
    "\"n\":4,\"big\":123456789012345678,\"frac\":12345678901234567.25",
    "\"status\":\"idle\",\"n\":5",
    "\"status\":\"error\",\"s\":\"again\"",
    "\"status\":\"running\"",
    "\"z\":1,\"a\":2",
  };
  g_auto(Reply) r = { 0 };

  if (!start (f, NULL))
    return;
  SEND (f, "POST", "/heartbeat", "{\"run_id\":\"short\"}", &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);
  SEND (f, "POST", "/heartbeat", "{\"run_id\":\"whole\"}", &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);

  for (gsize i = 0; i < G_N_ELEMENTS (beats); i++)
    {
      g_autofree char *a = g_strdup_printf ("{\"run_id\":\"short\",%s}", beats[i]);
      g_autofree char *b = g_strdup_printf ("{\"run_id\":\"\\u0077hole\",%s}", beats[i]);
      g_autofree char *a_metadata = NULL, *a_status = NULL, *b_metadata = NULL, *b_status = NULL;
      g_autofree char *a_state = NULL;
      gint64 a_beats, b_beats;

      SEND (f, "POST", "/heartbeat", a, &r);
      g_assert_cmpuint (r.status, ==, 200);
      g_assert_cmpstr (json_object_get_string_member (object (&r), "run_id"), ==, "short");
      g_assert_false (json_object_get_boolean_member (object (&r), "registered"));
      a_state = g_strdup (json_object_get_string_member (object (&r), "state"));
      reply_clear (&r);
      SEND (f, "POST", "/heartbeat", b, &r);
      g_assert_cmpuint (r.status, ==, 200);
      g_assert_cmpstr (json_object_get_string_member (object (&r), "run_id"), ==, "whole");
      g_assert_cmpstr (json_object_get_string_member (object (&r), "state"), ==, a_state);
      reply_clear (&r);

      run_of (f, "short", &a_metadata, &a_status, &a_beats);
      run_of (f, "whole", &b_metadata, &b_status, &b_beats);
      g_assert_cmpstr (a_metadata, ==, b_metadata);
      g_assert_cmpstr (a_status, ==, b_status);
      g_assert_cmpint (a_beats, ==, b_beats);
      g_assert_cmpint (a_beats, ==, (gint64) i + 2);
    }

  /* bodies the short way leaves are still beats */
  SEND (f, "POST", "/heartbeat", "{\"run_id\":\"short\",\"note\":\"a\\nb\",\"deep\":{\"x\":[1]},\"e\":1e3}", &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);
  GET (f, "/runs/short", &r);
  {
    JsonObject *metadata = json_object_get_object_member (json_object_get_object_member (object (&r), "heartbeat"),
                                                          "metadata");

    g_assert_cmpstr (json_object_get_string_member (metadata, "note"), ==, "a\nb");
    g_assert_cmpfloat (json_object_get_double_member (metadata, "e"), ==, 1000.0);
    g_assert_true (JSON_NODE_HOLDS_ARRAY (json_object_get_member (json_object_get_object_member (metadata, "deep"), "x")));
  }
}

/* ------------------------------------------------------------------ */
/* Pause, resume, tags (issue 24)                                      */

static const char *
member_string (Reply *r, const char *name)
{
  return json_object_get_string_member (object (r), name);
}

static void
test_pause_resume (Fixture *f, gconstpointer data)
{
  g_auto(Reply) r = { 0 };
  g_autoptr(GVariant) reply = NULL, agent = NULL;
  g_autofree char *long_reason = g_strnfill (257, 'x');
  g_autofree char *long_body = g_strdup_printf ("{\"reason\": \"%s\"}", long_reason);
  g_autofree char *max_body = NULL;
  JsonArray *tags;

  if (!start (f, NULL))
    return;
  register_dbus (f->h, "dbus-agent", NULL);

  /* tags at registration: sorted, without duplicates */
  SEND (f, "PUT", "/v1/agents/web", "{\"tags\": [\"web\", \"prod\", \"web\"]}", &r);
  g_assert_cmpuint (r.status, ==, 201);
  tags = json_object_get_array_member (object (&r), "tags");
  g_assert_cmpuint (json_array_get_length (tags), ==, 2);
  g_assert_cmpstr (json_array_get_string_element (tags, 0), ==, "prod");
  g_assert_cmpstr (json_array_get_string_element (tags, 1), ==, "web");
  g_assert_cmpstr (member_string (&r, "state"), ==, "healthy");
  g_assert_cmpint (json_object_get_int_member (object (&r), "severity"), ==, 0);
  g_assert_cmpstr (member_string (&r, "reason"), ==, "waiting for its first beat");
  g_assert_cmpint (json_object_get_int_member (object (&r), "paused-at-usec"), ==, 0);
  reply_clear (&r);

#define BAD(method, path, type, body, status, part) G_STMT_START { \
    request_full (f, method, path, type, body, -1, NULL, &r);        \
    assert_error (&r, status, part);                                 \
    reply_clear (&r);                                                \
  } G_STMT_END

  /* bad tags: refused, nothing registered */
  BAD ("PUT", "/v1/agents/tagged", "application/json", "{\"tags\": \"web\"}", 400, "array of strings");
  BAD ("PUT", "/v1/agents/tagged", "application/json", "{\"tags\": [\"ok\", 7]}", 400, "array of strings");
  BAD ("PUT", "/v1/agents/tagged", "application/json", "{\"tags\": [\"not ok\"]}", 400, "tag");
  BAD ("PUT", "/v1/agents/tagged", "application/json", "{\"tags\": [\"\"]}", 400, "tag");
  BAD ("PUT", "/v1/agents/tagged", "application/json",
       "{\"tags\": [\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"]}",
       400, "at most 16");
  GET (f, "/v1/agents/tagged", &r);
  assert_error (&r, 404, "tagged");
  reply_clear (&r);

  /* paused, with a reason: the record says so, over D-Bus too */
  SEND (f, "POST", "/v1/agents/web/pause", "{\"reason\": \"deploy <v2> & co\"}", &r);
  g_assert_cmpuint (r.status, ==, 200);
  g_assert_cmpstr (member_string (&r, "state"), ==, "paused");
  g_assert_cmpstr (member_string (&r, "reason"), ==, "deploy <v2> & co");
  g_assert_cmpstr (member_string (&r, "paused-reason"), ==, "deploy <v2> & co");
  g_assert_cmpint (json_object_get_int_member (object (&r), "paused-by-uid"), ==, 4294967294);
  g_assert_cmpint (json_object_get_int_member (object (&r), "severity"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (object (&r), "paused-at-usec"), >, 0);
  reply_clear (&r);
  reply = hb_call_ok (f->h, NULL, "GetAgent", g_variant_new ("(s)", "web"), "(a{sv})");
  agent = g_variant_get_child_value (reply, 0);
  g_assert_cmpstr (hb_dict_string (agent, "state"), ==, "paused");
  g_assert_cmpstr (hb_dict_string (agent, "paused-reason"), ==, "deploy <v2> & co");

  /* refusals change nothing */
  BAD ("POST", "/v1/agents/nope/pause", "application/json", "{}", 404, "nope");
  BAD ("POST", "/v1/agents/nope/resume", NULL, NULL, 404, "nope");
  BAD ("POST", "/v1/agents/web/pause", "application/json", "{bad", 400, "not valid JSON");
  BAD ("POST", "/v1/agents/web/pause", "application/json", "[\"x\"]", 400, "JSON object");
  BAD ("POST", "/v1/agents/web/pause", "application/json", "{\"reason\": 5}", 400, "must be a string");
  BAD ("POST", "/v1/agents/web/pause", "application/json", "{\"reason\": [\"x\"]}", 400, "must be a string");
  BAD ("POST", "/v1/agents/web/pause", "application/json", long_body, 400, "256");
  BAD ("POST", "/v1/agents/web/pause", "application/json", "{\"reason\": \"a\\nb\"}", 400, "control character");
  BAD ("POST", "/v1/agents/web/pause", "application/json", "{\"why\": \"x\"}", 400, "Unknown member");
  BAD ("POST", "/v1/agents/web/pause", "text/plain", "{}", 415, "application/json");
  BAD ("POST", "/v1/agents/web/resume", "application/json", "{\"now\": true}", 400, "Unknown member");
  BAD ("GET", "/v1/agents/web/pause", NULL, NULL, 405, "allowed");
  BAD ("POST", "/v1/agents/dbus-agent/pause", "application/json", "{}", 403, "uid 0");
  BAD ("POST", "/v1/agents/dbus-agent/resume", NULL, NULL, 403, "uid 0");
  GET (f, "/v1/agents/web", &r);
  g_assert_cmpstr (member_string (&r, "state"), ==, "paused");
  g_assert_cmpstr (member_string (&r, "paused-reason"), ==, "deploy <v2> & co");
  reply_clear (&r);
  GET (f, "/v1/agents/dbus-agent", &r);
  g_assert_cmpstr (member_string (&r, "state"), ==, "healthy");
  reply_clear (&r);

  /* the longest reason is kept whole; an empty body pauses without one */
  max_body = g_strdup_printf ("{\"reason\": \"%.*s\"}", 256, long_reason);
  SEND (f, "POST", "/v1/agents/web/pause", max_body, &r);
  g_assert_cmpuint (r.status, ==, 200);
  g_assert_cmpuint (strlen (member_string (&r, "paused-reason")), ==, 256);
  reply_clear (&r);
  request_full (f, "POST", "/v1/agents/web/pause", NULL, NULL, 0, NULL, &r);
  g_assert_cmpuint (r.status, ==, 200);
  g_assert_cmpstr (member_string (&r, "reason"), ==, "paused");
  g_assert_cmpstr (member_string (&r, "paused-reason"), ==, "");
  reply_clear (&r);

  /* resumed */
  request_full (f, "POST", "/v1/agents/web/resume", NULL, NULL, 0, NULL, &r);
  g_assert_cmpuint (r.status, ==, 200);
  g_assert_cmpstr (member_string (&r, "state"), ==, "healthy");
  g_assert_cmpint (json_object_get_int_member (object (&r), "paused-at-usec"), ==, 0);
  reply_clear (&r);
  SEND (f, "POST", "/v1/agents/web/resume", "{}", &r);   /* not paused: fine, nothing changes */
  g_assert_cmpuint (r.status, ==, 200);
  g_assert_cmpstr (member_string (&r, "state"), ==, "healthy");
  reply_clear (&r);

  /* the reason of an error: the exit status and its output's last line */
  SEND (f, "POST", "/v1/agents/web/beat",
        "{\"status\": \"error\", \"metadata\": {\"exit-status\": 3, \"output\": \"copying\\nrsync: disk full\\n\\n\"}}", &r);
  g_assert_cmpuint (r.status, ==, 200);
  g_assert_cmpstr (member_string (&r, "state"), ==, "error");
  g_assert_cmpstr (member_string (&r, "reason"), ==, "exit status 3: rsync: disk full");
  g_assert_cmpint (json_object_get_int_member (object (&r), "severity"), ==, 4);
  reply_clear (&r);
#undef BAD
}

/* ------------------------------------------------------------------ */
/* Badges                                                              */

typedef struct {
  guint  status;
  char  *type;
  char  *cache_control;
  char  *body;
} Badge;

static void
badge_clear (Badge *b)
{
  g_clear_pointer (&b->type, g_free);
  g_clear_pointer (&b->cache_control, g_free);
  g_clear_pointer (&b->body, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Badge, badge_clear)

static void
get_badge (Fixture *f, const char *method, const char *path_and_query, Badge *b)
{
  g_autofree char *uri = g_strconcat (f->base, path_and_query, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new (method, uri);
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  SoupMessageHeaders *headers;

  badge_clear (b);
  bytes = soup_session_send_and_read (f->session, msg, NULL, &error);
  g_assert_no_error (error);
  headers = soup_message_get_response_headers (msg);
  b->status = soup_message_get_status (msg);
  b->type = g_strdup (soup_message_headers_get_content_type (headers, NULL));
  b->cache_control = g_strdup (soup_message_headers_get_one (headers, "Cache-Control"));
  b->body = g_bytes_get_size (bytes) ? g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes))
                                     : g_strdup ("");
  record_message (msg, bytes);
  g_test_message ("%s %s → %u %s", method, path_and_query, b->status, b->body);
}

/* The texts of an SVG badge's <text> elements, which must parse */
static void
on_badge_text (GMarkupParseContext *context, const char *text, gsize length, gpointer user_data, GError **error)
{
  if (g_strcmp0 (g_markup_parse_context_get_element (context), "text") == 0)
    g_string_append_printf (user_data, "[%.*s]", (int) length, text);
}

static char *
badge_texts (const char *svg)
{
  static const GMarkupParser parser = { .text = on_badge_text };
  GString *texts = g_string_new (NULL);
  g_autoptr(GMarkupParseContext) context = g_markup_parse_context_new (&parser, 0, texts, NULL);
  g_autoptr(GError) error = NULL;

  g_assert_true (g_markup_parse_context_parse (context, svg, -1, &error) &&
                 g_markup_parse_context_end_parse (context, &error));
  g_assert_no_error (error);
  return g_string_free (texts, FALSE);
}

/* An SVG badge "@label | @value" (each text twice: its shadow) in @color */
static void
assert_badge (Badge *b, const char *label, const char *value, const char *color)
{
  g_autofree char *texts = NULL;
  g_autofree char *expected = g_strdup_printf ("[%s][%s][%s][%s]", label, label, value, value);
  g_autofree char *fill = g_strdup_printf ("fill=\"%s\"", color);

  g_assert_cmpuint (b->status, ==, 200);
  g_assert_cmpstr (b->type, ==, "image/svg+xml");
  g_assert_cmpstr (b->cache_control, ==, "no-cache");
  g_assert_true (g_str_has_prefix (b->body, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
  texts = badge_texts (b->body);
  g_assert_cmpstr (texts, ==, expected);
  g_assert_nonnull (strstr (b->body, fill));
}

static void
test_badge (Fixture *f, gconstpointer data)
{
  g_auto(Reply) r = { 0 };
  g_auto(Badge) b = { 0 };

  if (!start (f, NULL))
    return;

  get_badge (f, "GET", "/v1/badge.svg", &b);
  assert_badge (&b, "heartbeat", "no agents", "#9f9f9f");

  SEND (f, "PUT", "/v1/agents/api", "{\"tags\": [\"team-a\"]}", &r);
  reply_clear (&r);
  SEND (f, "PUT", "/v1/agents/batch", "{\"tags\": [\"team-b\"]}", &r);
  reply_clear (&r);
  get_badge (f, "GET", "/v1/agents/api/badge.svg", &b);
  assert_badge (&b, "heartbeat", "healthy", "#4c1");
  get_badge (f, "GET", "/v1/badge.svg", &b);
  assert_badge (&b, "heartbeat", "healthy", "#4c1");

  /* the worst state wins; a tag picks its agents */
  SEND (f, "POST", "/v1/agents/batch/beat", "{\"status\": \"error\"}", &r);
  reply_clear (&r);
  get_badge (f, "GET", "/v1/agents/batch/badge.svg", &b);
  assert_badge (&b, "heartbeat", "error", "#e05d44");
  get_badge (f, "GET", "/v1/badge.svg", &b);
  assert_badge (&b, "heartbeat", "error", "#e05d44");
  get_badge (f, "GET", "/v1/badge.svg?tag=team-a", &b);
  assert_badge (&b, "heartbeat", "healthy", "#4c1");
  get_badge (f, "GET", "/v1/badge.svg?tag=team-c", &b);
  assert_badge (&b, "heartbeat", "no agents", "#9f9f9f");
  request_full (f, "POST", "/v1/agents/batch/pause", NULL, NULL, 0, NULL, &r);
  reply_clear (&r);
  get_badge (f, "GET", "/v1/badge.svg?tag=team-b", &b);
  assert_badge (&b, "heartbeat", "paused", "#9f9f9f");
  get_badge (f, "GET", "/v1/badge.svg", &b);
  assert_badge (&b, "heartbeat", "paused", "#9f9f9f");

  /* the label is text: escaped, never markup */
  get_badge (f, "GET", "/v1/agents/api/badge.svg?label=%3Cscript%3Ea%26b%22", &b);
  assert_badge (&b, "<script>a&b\"", "healthy", "#4c1");
  g_assert_null (strstr (b.body, "<script>"));
  g_assert_nonnull (strstr (b.body, "&lt;script&gt;a&amp;b&quot;"));
  get_badge (f, "GET", "/v1/badge.svg?label=nightly%20jobs&tag=team-a", &b);
  assert_badge (&b, "nightly jobs", "healthy", "#4c1");

  /* HEAD: the headers only */
  get_badge (f, "HEAD", "/v1/agents/api/badge.svg", &b);
  g_assert_cmpuint (b.status, ==, 200);
  g_assert_cmpstr (b.type, ==, "image/svg+xml");
  g_assert_cmpstr (b.body, ==, "");

  /* refusals */
  get_badge (f, "GET", "/v1/agents/nope/badge.svg", &b);
  g_assert_cmpuint (b.status, ==, 404);
  get_badge (f, "GET", "/v1/badge.svg?tag=not%20a%20tag", &b);
  g_assert_cmpuint (b.status, ==, 400);
  get_badge (f, "GET", "/v1/badge.svg?state=error", &b);
  g_assert_cmpuint (b.status, ==, 400);
  get_badge (f, "GET", "/v1/agents/api/badge.svg?tag=team-a", &b);
  g_assert_cmpuint (b.status, ==, 400);
  get_badge (f, "GET", "/v1/agents/api/badge.svg?label=", &b);
  g_assert_cmpuint (b.status, ==, 400);
  get_badge (f, "GET", "/v1/agents/api/badge.svg?label=a%0Ab", &b);
  g_assert_cmpuint (b.status, ==, 400);
  request_full (f, "POST", "/v1/badge.svg", NULL, NULL, 0, NULL, &r);
  assert_error (&r, 405, "allowed");
}

/* ------------------------------------------------------------------ */
/* Issue 23: TLS and tokens with scopes                                */

#define NET_ADDRESS "192.0.2.1"   /* TEST-NET-1, only inside the test's namespace */
#define READ_TOKEN  "read-0123456789abcdef"
#define WRITE_TOKEN "write-0123456789abcdef"
#define PING_TOKEN  "ping-0123456789abcdef"
#define HASHED_TOKEN "hashed-0123456789abcdef"

/* Moves this process into a network namespace of its own where
 * NET_ADDRESS exists on lo: an address other than loopback that nothing
 * outside the test sees. FALSE (skipped) if that is not allowed. */
static gboolean
enter_test_network (void)
{
  const char *up[] = { "ip", "link", "set", "lo", "up", NULL };
  const char *add[] = { "ip", "addr", "add", NET_ADDRESS "/32", "dev", "lo", NULL };
  g_autoptr(GError) error = NULL;
  int status;

  if (geteuid () != 0 || unshare (CLONE_NEWNET) != 0)
    {
      g_test_skip ("needs root for a network namespace");
      return FALSE;
    }
  g_spawn_sync (NULL, (char **) up, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_spawn_sync (NULL, (char **) add, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  return TRUE;
}

/* The test CA (tests/tls/make-test-ca.sh) in the harness's directory */
static char *
make_test_ca (Fixture *f)
{
  g_autofree char *script = g_build_filename (g_getenv ("HB_SOURCE_ROOT"), "tests", "tls", "make-test-ca.sh", NULL);
  char *dir = g_build_filename (f->h->tmpdir, "ca", NULL);
  const char *argv[] = { "sh", script, dir, NET_ADDRESS, NULL };
  g_autoptr(GError) error = NULL;
  int status;

  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  return dir;
}

static char *
ca_file (Fixture *f, const char *name)
{
  return g_build_filename (f->h->tmpdir, "ca", name, NULL);
}

/* A session that trusts the PEM CAs of @ca_name only */
static SoupSession *
session_trusting (Fixture *f, const char *ca_name)
{
  g_autofree char *path = ca_file (f, ca_name);
  g_autoptr(GError) error = NULL;
  g_autoptr(GTlsDatabase) database = g_tls_file_database_new (path, &error);
  SoupSession *session;

  g_assert_no_error (error);
  session = soup_session_new_with_options ("timeout", 10, "tls-database", database, NULL);
  return session;
}

/* The tokens file: a read, a write, a ping token, and a write token kept
 * as its sha512-crypt hash (openssl passwd -6, with a fixed salt) */
static char *
write_scoped_tokens (Fixture *f)
{
  const char *argv[] = { "openssl", "passwd", "-6", "-salt", "hbtestsalt", HASHED_TOKEN, NULL };
  g_autofree char *hash = NULL;
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;
  char *path = g_build_filename (f->h->tmpdir, "tokens", NULL);
  int status;

  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &hash, NULL, &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_strstrip (hash);
  g_assert_true (g_str_has_prefix (hash, "$6$hbtestsalt$"));
  text = g_strdup_printf ("# scopes token\nread %s\nwrite %s\nping %s\nread,write %s\n",
                          READ_TOKEN, WRITE_TOKEN, PING_TOKEN, hash);
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (path, 0600), ==, 0);
  return path;
}

/* The daemon serving HTTPS on @address with the test CA's server
 * certificate, the scoped tokens and @extra ([http] keys); f->session
 * trusts the test CA. FALSE: skipped. */
static gboolean
start_tls (Fixture *f, const char *address, const char *extra)
{
  g_autofree char *dir = NULL;
  g_autofree char *tokens = NULL;
  g_autofree char *config = NULL;

  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return FALSE;
  dir = make_test_ca (f);
  tokens = write_scoped_tokens (f);
  config = g_strdup_printf ("%s\n[http]\naddress=%s\ntokens-file=%s\ntls-certificate=%s/server.pem\n"
                            "tls-key=%s/server-key.pem\n%s", hb_default_config, address, tokens, dir, dir,
                            extra ? extra : "");
  hb_harness_write_config (f->h, config);
  f->h->http_port = hb_free_port ();
  f->base = g_strdup_printf ("https://%s:%u", address, f->h->http_port);
  g_clear_object (&f->session);
  f->session = session_trusting (f, "ca.pem");
  hb_harness_start_daemon (f->h, 0);
  return TRUE;
}

/* GET @url with @session; the status, or 0 with @error set if no answer */
static guint
try_get (SoupSession      *session,
         const char       *url,
         GTlsCertificate **peer,
         GError          **error)
{
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", url);
  g_autoptr(GBytes) bytes = soup_session_send_and_read (session, msg, NULL, error);

  if (bytes == NULL)
    return 0;
  if (peer)
    *peer = g_object_ref (soup_message_get_tls_peer_certificate (msg));
  return soup_message_get_status (msg);
}

static GTlsCertificate *
load_certificate (Fixture *f, const char *name)
{
  g_autofree char *path = ca_file (f, name);
  g_autoptr(GError) error = NULL;
  GTlsCertificate *certificate = g_tls_certificate_new_from_file (path, &error);

  g_assert_no_error (error);
  return certificate;
}

/* HTTPS on loopback: the CA's certificate is served and verified, plain
 * HTTP on the port and a client of another CA get no answer */
static void
test_tls (Fixture *f, gconstpointer data)
{
  g_autoptr(GTlsCertificate) peer = NULL;
  g_autoptr(GTlsCertificate) server = NULL;
  g_autoptr(SoupSession) rogue = NULL;
  g_autoptr(SoupSession) plain = soup_session_new_with_options ("timeout", 10, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  g_autofree char *plain_url = NULL;
  g_auto(Reply) r = { 0 };

  if (!start_tls (f, "127.0.0.1", NULL))
    return;
  url = g_strconcat (f->base, "/health", NULL);
  g_assert_cmpuint (try_get (f->session, url, &peer, &error), ==, 200);
  g_assert_no_error (error);
  server = load_certificate (f, "server.pem");
  g_assert_true (g_tls_certificate_is_same (peer, server));

  /* loopback: reads need no token, as before; writes need write */
  GET (f, "/v1/agents", &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);
  request_full (f, "PUT", "/v1/agents/a", "application/json", "{}", -1, READ_TOKEN, &r);
  assert_error (&r, 403, "scope write");
  reply_clear (&r);
  request_full (f, "PUT", "/v1/agents/a", "application/json", "{}", -1, WRITE_TOKEN, &r);
  g_assert_cmpuint (r.status, ==, 201);
  reply_clear (&r);

  /* a certificate of another CA: not trusted */
  rogue = session_trusting (f, "rogue-ca.pem");
  g_assert_cmpuint (try_get (rogue, url, NULL, &error), ==, 0);
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  g_clear_error (&error);
  /* plain HTTP to the TLS port: no answer */
  plain_url = g_strdup_printf ("http://127.0.0.1:%u/health", f->h->http_port);
  g_assert_cmpuint (try_get (plain, plain_url, NULL, &error), ==, 0);
  g_assert_nonnull (error);
}

/* A certificate replaced on disk and reloaded (SIGHUP) is what the next
 * connection gets; the daemon is the same process, and one that fails to
 * load keeps the old */
/* Copies the test CA's file @from over its file @to */
static void
copy_ca_file (Fixture *f, const char *from, const char *to)
{
  g_autofree char *from_path = ca_file (f, from);
  g_autofree char *to_path = ca_file (f, to);
  g_autofree char *contents = NULL;
  g_autoptr(GError) error = NULL;
  gsize length;

  g_file_get_contents (from_path, &contents, &length, &error);
  g_assert_no_error (error);
  g_file_set_contents (to_path, contents, (gssize) length, &error);
  g_assert_no_error (error);
}

/* A reload (SIGHUP, until READY=1), then the certificate a new connection
 * to @url gets */
static GTlsCertificate *
reload_and_connect (Fixture *f, const char *url)
{
  g_autoptr(GError) error = NULL;
  GTlsCertificate *served = NULL;
  guint cursor = hb_harness_notify_cursor (f->h);

  hb_harness_signal_daemon (f->h, SIGHUP);
  hb_wait_notify (f->h, &cursor, "RELOADING=1");
  hb_wait_notify (f->h, &cursor, "READY=1");
  g_clear_object (&f->session);
  f->session = session_trusting (f, "ca.pem");
  g_assert_cmpuint (try_get (f->session, url, &served, &error), ==, 200);
  g_assert_no_error (error);
  return served;
}

static void
test_tls_reload (Fixture *f, gconstpointer data)
{
  g_autoptr(GTlsCertificate) before = NULL;
  g_autoptr(GTlsCertificate) after = NULL;
  g_autoptr(GTlsCertificate) kept = NULL;
  g_autoptr(GTlsCertificate) mismatched = NULL;
  g_autoptr(GTlsCertificate) server2 = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  g_autofree char *cert_path = NULL;
  GPid pid;

  if (!start_tls (f, "127.0.0.1", NULL))
    return;
  pid = f->h->daemon->pid;
  url = g_strconcat (f->base, "/health", NULL);
  g_assert_cmpuint (try_get (f->session, url, &before, &error), ==, 200);
  server2 = load_certificate (f, "server2.pem");

  /* the renewal: new files in place, then a reload; a new connection
   * gets the new certificate, from the same daemon */
  copy_ca_file (f, "server-key.pem", "server-key.pem.orig");
  copy_ca_file (f, "server2.pem", "server.pem");
  copy_ca_file (f, "server2-key.pem", "server-key.pem");
  after = reload_and_connect (f, url);
  g_assert_true (g_tls_certificate_is_same (after, server2));
  g_assert_false (g_tls_certificate_is_same (after, before));
  g_assert_cmpint (f->h->daemon->pid, ==, pid);
  g_assert_false (f->h->daemon->exited);

  /* a broken certificate file: the old one is kept */
  cert_path = ca_file (f, "server.pem");
  g_file_set_contents (cert_path, "not a certificate\n", -1, &error);
  g_assert_no_error (error);
  kept = reload_and_connect (f, url);
  g_assert_true (g_tls_certificate_is_same (kept, server2));

  /* a key that is not the certificate's (the old one): both load, but no
   * handshake would work; the old pair is kept, and works */
  copy_ca_file (f, "server2.pem", "server.pem");
  copy_ca_file (f, "server-key.pem.orig", "server-key.pem");
  mismatched = reload_and_connect (f, url);
  g_assert_true (g_tls_certificate_is_same (mismatched, server2));
}

static void
run_tls_connections (Fixture *f, guint n)
{
  g_autofree char *script = g_build_filename (g_getenv ("HB_SOURCE_ROOT"), "tests", "tls", "hb-tls-connections.py", NULL);
  g_autofree char *ca = ca_file (f, "ca.pem");
  g_autofree char *port = g_strdup_printf ("%u", f->h->http_port);
  g_autofree char *count = g_strdup_printf ("%u", n);
  const char *argv[] = { "/usr/bin/python3", script, port, ca, count, NULL };
  g_autoptr(GError) error = NULL;
  int status;

  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL, &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
}

/* Kept-alive connections their clients end (with a TLS close_notify or
 * without) are freed: Debian's libsoup 3.2.3 kept each for good, some
 * 25 KB over TLS (75 MB for these 3000); what grows now is the heap's
 * noise. RSS says nothing under ASan (its quarantine keeps freed memory). */
static void
test_tls_closed_connections_freed (Fixture *f, gconstpointer data)
{
  guint64 before, after;

  if (!start_tls (f, "127.0.0.1", NULL))
    return;
  if (daemon_is_sanitized (f))
    {
      g_test_skip ("RSS under AddressSanitizer keeps what is freed");
      return;
    }
  run_tls_connections (f, 300);   /* the heap settles */
  before = daemon_rss_kb (f);
  run_tls_connections (f, 3000);
  after = daemon_rss_kb (f);
  g_test_message ("RSS %" G_GUINT64_FORMAT " kB before, %" G_GUINT64_FORMAT " kB after 3000 connections",
                  before, after);
  g_assert_cmpuint (after, <, before + 15 * 1024);
  g_assert_false (f->h->daemon->exited);
}

/* tls-client-ca=: a client without a certificate of that CA gets no answer */
static void
test_tls_client_certificate (Fixture *f, gconstpointer data)
{
  g_autofree char *ca = NULL;
  g_autofree char *extra = NULL;
  g_autofree char *url = NULL;
  g_autofree char *client_path = NULL;
  g_autofree char *client_key = NULL;
  g_autoptr(GTlsCertificate) client = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;

  /* the CA is made by start_tls(); its path is known before */
  ca = g_build_filename (f->h->tmpdir, "ca", "ca.pem", NULL);
  extra = g_strdup_printf ("tls-client-ca=%s\n", ca);
  if (!start_tls (f, "127.0.0.1", extra))
    return;
  url = g_strconcat (f->base, "/health", NULL);
  g_assert_cmpuint (try_get (f->session, url, NULL, &error), ==, 0);
  g_assert_nonnull (error);
  g_clear_error (&error);

  /* a certificate of another CA: no answer either */
  {
    g_autofree char *rogue_path = ca_file (f, "rogue.pem");
    g_autofree char *rogue_key = ca_file (f, "rogue-key.pem");
    g_autoptr(GTlsCertificate) rogue = g_tls_certificate_new_from_files (rogue_path, rogue_key, &error);
    g_autoptr(SoupMessage) refused = soup_message_new ("GET", url);
    g_autoptr(GBytes) nothing = NULL;

    g_assert_no_error (error);
    soup_message_set_tls_client_certificate (refused, rogue);
    nothing = soup_session_send_and_read (f->session, refused, NULL, &error);
    g_assert_null (nothing);
    g_assert_nonnull (error);
    g_clear_error (&error);
  }

  client_path = ca_file (f, "client.pem");
  client_key = ca_file (f, "client-key.pem");
  client = g_tls_certificate_new_from_files (client_path, client_key, &error);
  g_assert_no_error (error);
  g_clear_object (&f->session);
  f->session = session_trusting (f, "ca.pem");
  msg = soup_message_new ("GET", url);
  soup_message_set_tls_client_certificate (msg, client);
  bytes = soup_session_send_and_read (f->session, msg, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
}

/* Off loopback, plain HTTP is refused at start unless the network is
 * said to be trusted */
static void
test_tls_plain_off_loopback (Fixture *f, gconstpointer data)
{
  g_autofree char *tokens = NULL;
  g_autofree char *config = NULL;
  g_auto(Reply) r = { 0 };
  HbChild *daemon;
  int status;

  if (!enter_test_network () || !hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  tokens = write_scoped_tokens (f);
  config = g_strdup_printf ("%s\n[http]\naddress=" NET_ADDRESS "\ntokens-file=%s\n", hb_default_config, tokens);
  hb_harness_write_config (f->h, config);
  f->h->http_port = hb_free_port ();
  daemon = hb_harness_spawn_daemon (f->h, NULL, 0);
  status = hb_harness_wait_exit (f->h, daemon, HB_WAIT_MS);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 1);

  g_free (config);
  config = g_strdup_printf ("%s\n[http]\naddress=" NET_ADDRESS "\ntokens-file=%s\ntrusted-network=true\n",
                            hb_default_config, tokens);
  hb_harness_write_config (f->h, config);
  f->base = g_strdup_printf ("http://" NET_ADDRESS ":%u", f->h->http_port);
  hb_harness_start_daemon (f->h, 0);
  /* served, and still every read needs a token */
  GET (f, "/v1/agents", &r);
  assert_error (&r, 401, "scope read");
  reply_clear (&r);
  request_full (f, "GET", "/v1/agents", NULL, NULL, 0, READ_TOKEN, &r);
  g_assert_cmpuint (r.status, ==, 200);
}

static guint64
auth_failures (Fixture *f, const char *reason)
{
  g_auto(Reply) r = { 0 };
  g_autofree char *series = g_strdup_printf ("heartbeat_http_auth_failures_total{reason=\"%s\"}", reason);
  g_autofree char *value = NULL;

  request_full (f, "GET", "/metrics", NULL, NULL, 0, READ_TOKEN, &r);
  g_assert_cmpuint (r.status, ==, 200);
  value = metric (r.body, series);
  g_assert_nonnull (value);
  return g_ascii_strtoull (value, NULL, 10);
}

static void
assert_authenticate_header (Fixture *f, const char *method, const char *path, const char *token,
                            guint status, const char *header)
{
  g_autofree char *uri = g_strconcat (f->base, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new (method, uri);
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;

  if (token)
    {
      g_autofree char *value = g_strconcat ("Bearer ", token, NULL);
      soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", value);
    }
  if (strcmp (method, "GET") != 0)
    {
      g_autoptr(GBytes) body = g_bytes_new_static ("{}", 2);
      soup_message_set_request_body_from_bytes (msg, "application/json", body);
    }
  bytes = soup_session_send_and_read (f->session, msg, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (soup_message_get_status (msg), ==, status);
  g_assert_cmpstr (soup_message_headers_get_one (soup_message_get_response_headers (msg), "WWW-Authenticate"), ==,
                   header);
}

/* Off loopback over TLS: every request but GET /health needs a token of
 * the right scope; refusals say why and are counted */
static void
test_scopes (Fixture *f, gconstpointer data)
{
  g_auto(Reply) r = { 0 };

  if (!enter_test_network () || !start_tls (f, NET_ADDRESS, NULL))
    return;
  GET (f, "/health", &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);

  assert_authenticate_header (f, "GET", "/metrics", NULL, 401, "Bearer realm=\"heartbeatd\"");
  assert_authenticate_header (f, "GET", "/v1/agents", "wrong-0123456789abcdef", 401,
                              "Bearer realm=\"heartbeatd\", error=\"invalid_token\"");
  assert_authenticate_header (f, "PUT", "/v1/agents/a", READ_TOKEN, 403,
                              "Bearer realm=\"heartbeatd\", error=\"insufficient_scope\", scope=\"write\"");
  assert_authenticate_header (f, "GET", "/v1/agents", PING_TOKEN, 403,
                              "Bearer realm=\"heartbeatd\", error=\"insufficient_scope\", scope=\"read\"");
  g_assert_cmpuint (auth_failures (f, "missing"), ==, 1);
  g_assert_cmpuint (auth_failures (f, "invalid"), ==, 1);
  g_assert_cmpuint (auth_failures (f, "scope"), ==, 2);
  g_assert_cmpuint (auth_failures (f, "rate-limited"), ==, 0);

  /* every read needs read: the dashboard, events, badges too */
  GET (f, "/", &r);
  g_assert_cmpuint (r.status, ==, 401);
  reply_clear (&r);
  request_full (f, "GET", "/", NULL, NULL, 0, READ_TOKEN, &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);

  /* nothing was changed by the refused write */
  request_full (f, "GET", "/v1/agents/a", NULL, NULL, 0, READ_TOKEN, &r);
  g_assert_cmpuint (r.status, ==, 404);
  reply_clear (&r);
  /* write may write, and read */
  request_full (f, "PUT", "/v1/agents/a", "application/json", "{}", -1, WRITE_TOKEN, &r);
  g_assert_cmpuint (r.status, ==, 201);
  reply_clear (&r);
  request_full (f, "GET", "/v1/agents/a", NULL, NULL, 0, WRITE_TOKEN, &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);
  /* the hashed token, twice (the second from the cache of verified hashes) */
  for (int i = 0; i < 2; i++)
    {
      request_full (f, "POST", "/v1/agents/a/beat", NULL, NULL, 0, HASHED_TOKEN, &r);
      g_assert_cmpuint (r.status, ==, 200);
      reply_clear (&r);
    }
  /* ping: the ping URLs only */
  request_full (f, "GET", "/ping/a", NULL, NULL, 0, PING_TOKEN, &r);
  g_assert_cmpuint (r.status, ==, 200);
  reply_clear (&r);
  request_full (f, "POST", "/v1/agents/a/beat", NULL, NULL, 0, PING_TOKEN, &r);
  assert_error (&r, 403, "scope write");
  reply_clear (&r);
  request_full (f, "GET", "/ping/a", NULL, NULL, 0, READ_TOKEN, &r);
  assert_error (&r, 403, "scope ping");
  reply_clear (&r);
  g_assert_cmpuint (auth_failures (f, "scope"), ==, 4);
}

/* More than 10 wrong tokens from one address in a minute: its tokens are
 * not checked (429, even the right one) for the rest of the minute */
static void
test_scopes_rate_limit (Fixture *f, gconstpointer data)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = NULL;
  g_autofree char *invalid = NULL;
  g_autofree char *limited = NULL;
  g_auto(Reply) r = { 0 };
  const char *retry_after;
  guint64 seconds;

  if (!start_tls (f, "127.0.0.1", NULL))
    return;
  for (int i = 0; i < 10; i++)
    {
      request_full (f, "POST", "/v1/agents/a/beat", NULL, NULL, 0, "wrong-0123456789abcdef", &r);
      assert_error (&r, 401, "not one of the configured tokens");
      reply_clear (&r);
    }
  request_full (f, "POST", "/v1/agents/a/beat", NULL, NULL, 0, WRITE_TOKEN, &r);
  assert_error (&r, 429, "Too many wrong tokens");
  reply_clear (&r);

  uri = g_strconcat (f->base, "/v1/agents/a/beat", NULL);
  msg = soup_message_new ("POST", uri);
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", "Bearer " HASHED_TOKEN);
  bytes = soup_session_send_and_read (f->session, msg, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 429);
  retry_after = soup_message_headers_get_one (soup_message_get_response_headers (msg), "Retry-After");
  g_assert_nonnull (retry_after);
  g_assert_true (g_ascii_string_to_unsigned (retry_after, 10, 1, 60, &seconds, NULL));

  /* reads on loopback need no token, and see the count */
  GET (f, "/metrics", &r);
  g_assert_cmpuint (r.status, ==, 200);
  invalid = metric (r.body, "heartbeat_http_auth_failures_total{reason=\"invalid\"}");
  limited = metric (r.body, "heartbeat_http_auth_failures_total{reason=\"rate-limited\"}");
  g_assert_cmpstr (invalid, ==, "10");
  g_assert_cmpstr (limited, ==, "2");
}

/* A tokens file with an unknown scope, or a "$" secret that is no hash,
 * is refused at start with its line */
static void
test_scopes_bad_file (Fixture *f, gconstpointer data)
{
  static const char *const files[] = {
    "read 0123456789abcdef0123\nadmin 0123456789abcdef0124\n",
    "read $notahash\n",
    "read a b\n",
    "# nothing\n",
  };

  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *tokens = g_build_filename (f->h->tmpdir, "tokens", NULL);
      g_autofree char *config = NULL;
      g_autoptr(GError) error = NULL;
      HbChild *daemon;
      int status;

      g_file_set_contents (tokens, files[i], -1, &error);
      g_assert_no_error (error);
      g_assert_cmpint (g_chmod (tokens, 0600), ==, 0);
      config = g_strdup_printf ("%s\n[http]\ntokens-file=%s\n", hb_default_config, tokens);
      hb_harness_write_config (f->h, config);
      f->h->http_port = hb_free_port ();
      daemon = hb_harness_spawn_daemon (f->h, NULL, 0);
      status = hb_harness_wait_exit (f->h, daemon, HB_WAIT_MS);
      g_assert_true (WIFEXITED (status));
      g_assert_cmpint (WEXITSTATUS (status), ==, 1);

      /* and --check-config, which a reload runs first, says so */
      {
        const char *argv[] = { g_getenv ("HEARTBEATD"), "--session", "--check-config", "-c", f->h->config_path, NULL };
        g_autofree char *err = NULL;

        g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &err, &status, &error);
        g_assert_no_error (error);
        g_assert_true (WIFEXITED (status));
        g_assert_cmpint (WEXITSTATUS (status), ==, 1);
        g_assert_nonnull (strstr (err, tokens));
      }
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add ("/http/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("seed-server-endpoints", test_seed_server_endpoints);
  ADD ("gateway-status-shape", test_gateway_status_shape);
  ADD ("rest-agents", test_rest_agents);
  ADD ("history", test_history);
  ADD ("bad-requests", test_bad_requests);
  ADD ("tokens", test_tokens);
  /* issue 23 */
  ADD ("tls", test_tls);
  ADD ("tls/reload", test_tls_reload);
  ADD ("tls/client-certificate", test_tls_client_certificate);
  ADD ("tls/plain-off-loopback", test_tls_plain_off_loopback);
  ADD ("tls/closed-connections-freed", test_tls_closed_connections_freed);
  ADD ("scopes", test_scopes);
  ADD ("scopes/rate-limit", test_scopes_rate_limit);
  ADD ("scopes/bad-file", test_scopes_bad_file);
  ADD ("non-loopback-refused", test_non_loopback_refused);
  ADD ("events-ordered-for-every-client", test_events_ordered_for_every_client);
  ADD ("events-client-limit", test_events_client_limit);
  ADD ("metrics-pass-promtool", test_metrics_pass_promtool);
  ADD ("dashboard-served", test_dashboard_served);
  ADD ("hbctl-url", test_hbctl_url);
  ADD ("slow-clients-bounded", test_slow_clients_bounded);
  /* the regressions of the security report, under the cases meson runs */
  ADD ("bad-requests/deep-json", test_deep_json);
  ADD ("bad-requests/null-member", test_null_member);
  ADD ("bad-requests/content-length", test_content_length);
  ADD ("bad-requests/head", test_head);
  ADD ("bad-requests/quota", test_quota);
  ADD ("tokens/before-body", test_token_before_body);
  ADD ("events-ordered-for-every-client/refused-post-silent", test_refused_post_silent);
  ADD ("events-client-limit/memory", test_events_memory);
  ADD ("slow-clients-bounded/request-timeout", test_request_timeout);
  ADD ("slow-clients-bounded/closed-connections-release-fds", test_closed_connections_release_fds);
  ADD ("slow-clients-bounded/pipelined-then-end", test_pipelined_then_end);
  ADD ("non-loopback-refused/host-header", test_host_header);
  ADD ("non-loopback-refused/port-in-use", test_port_in_use);
  /* issue 14 */
  ADD ("metrics-gzip", test_metrics_gzip);
  ADD ("gateway-status-shape/finished-left-out", test_gateway_leaves_finished_out);
  ADD ("host-summary", test_host_summary);
  ADD ("hbctl-url/remote-host", test_hbctl_url_remote_host);
  /* issue 15: the answers no other case provokes, against the OpenAPI document */
  ADD ("openapi-answers", test_openapi_answers);
  ADD ("openapi-answers/tokens", test_openapi_answers_tokens);
  /* issue 20 */
  ADD ("connections-bounded/readers-that-never-read", test_readers_that_never_read);
  ADD ("connections-bounded/stalled-reader-times-out", test_stalled_reader_times_out);
  ADD ("connections-bounded/cap", test_connection_cap);
  ADD ("connections-bounded/per-user", test_connections_per_user);
  ADD ("connections-bounded/body-deadline", test_body_deadline);
  ADD ("agents-pages", test_agents_pages);
  ADD ("agents-pages/bytes", test_agents_page_bytes);
  /* issue 25 */
  ADD ("history/pages", test_history_pages);
  ADD ("history/gzip", test_history_gzip);
  ADD ("history/big", test_history_big);
  ADD ("events-per-uid", test_events_per_uid);
  ADD ("bad-requests/json-error-text", test_json_error_text);
  ADD ("host-summary/clean-numbers", test_clean_numbers);
  /* issue 21 */
  ADD ("bad-requests/beat-refusals", test_beat_refusals);
  ADD ("seed-server-endpoints/beat-short-way", test_beat_short_way_same);
  /* issue 22 */
  ADD ("jobs/runs", test_agent_runs);
  ADD ("jobs/ping-forms", test_ping_forms);
  ADD ("jobs/ping-unknown", test_ping_unknown);
  ADD ("jobs/ping-owners", test_ping_owners);
  ADD ("jobs/ping-body", test_ping_body);
  ADD ("jobs/ping-start-then-success", test_ping_start_then_success);
  ADD ("jobs/ping-key", test_ping_key);
  ADD ("jobs/ping-key-refused", test_ping_key_refused);
  ADD ("jobs/ping-key-reload", test_ping_key_reload);
  ADD ("jobs/ping-from-web-page", test_ping_from_web_page);
  ADD ("jobs/ping-curl", test_ping_curl);
  ADD ("jobs/metrics", test_ping_metrics);
  ADD ("pause-resume", test_pause_resume);
  ADD ("badge", test_badge);

  return g_test_run ();
}
