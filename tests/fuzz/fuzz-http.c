/* fuzz-http.c: libFuzzer target for the HTTP front's request bodies
 *
 * An in-process HbHttp on a loopback port and a libsoup client on the same
 * main context. The first byte of an input picks the endpoint, the rest is
 * the JSON body. Whatever the body, the answer is never a 5xx, and an
 * error is a JSON object. An agent "fuzz" owned by HTTP is there before
 * each input, so that POST /heartbeat bodies naming it may take the short
 * way of a beat (hb_json_read_flat()); whatever that reader reads of a
 * body, json-glib reads alike.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <string.h>

#include "fuzz-invariant.h"
#include "hb-http.h"
#include "hb-json.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static HeartbeatMonitor *monitor;
static HbHttp *http;
static SoupSession *session;
static char *base;

static const struct { const char *method; const char *path; } endpoints[] = {
  { "POST", "/heartbeat" },
  { "POST", "/event" },
  { "PUT", "/v1/agents/fuzz" },
  { "POST", "/v1/agents/fuzz/beat" },
};

/* What hb_json_read_flat() reads of @data, hb_json_parse() reads alike:
 * the same members, in the same order, with the same values */
static void
assert_flat_agrees (const guint8 *data,
                    size_t        size)
{
  HbJsonFlatMember members[HB_JSON_FLAT_MAX_MEMBERS];
  g_autofree char *copy = g_malloc (size + 1);
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GVariant) flat = NULL;
  g_autoptr(GVariant) parsed = NULL;
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;
  gint n, i = 0;

  memcpy (copy, data, size);
  n = hb_json_read_flat (copy, size, members, G_N_ELEMENTS (members));
  if (n < 0)
    return;
  root = hb_json_parse ((const char *) data, size, NULL);
  g_assert_nonnull (root);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
  g_assert_cmpuint (json_object_get_size (json_node_get_object (root)), ==, (guint) n);
  json_object_iter_init_ordered (&iter, json_node_get_object (root));
  while (json_object_iter_next_ordered (&iter, &name, &node))
    {
      g_assert_cmpstr (members[i].name, ==, name);
      g_assert_true (JSON_NODE_HOLDS_VALUE (node));
      i++;
    }
  flat = hb_json_flat_to_vardict (members, (guint) n, NULL);
  parsed = hb_json_object_to_vardict (json_node_get_object (root), NULL, NULL);
  g_assert_nonnull (parsed);
  g_assert_true (g_variant_equal (flat, parsed));
}

static void
on_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static GLogWriterOutput
quiet (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR))
    return g_log_writer_default (level, fields, n_fields, user_data);
  return G_LOG_WRITER_HANDLED;
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autofree char *uri = NULL;
  guint status;

  if (http == NULL)
    {
      g_autoptr(GError) error = NULL;

      g_log_set_writer_func (quiet, NULL, NULL);
      monitor = heartbeat_monitor_new ();
      http = hb_http_new (monitor, "fuzz");
      g_assert_true (hb_http_listen (http, "127.0.0.1", 0, &error));
      base = g_strdup_printf ("http://127.0.0.1:%u", hb_http_get_port (http));
      session = soup_session_new ();
    }
  if (size == 0)
    return 0;
  assert_flat_agrees (data + 1, size - 1);
  if (heartbeat_monitor_lookup (monitor, "fuzz") == NULL)
    {
      HeartbeatAgentOptions options = { .owner_uid = (guint32) HB_HTTP_OWNER_UID };

      g_assert_nonnull (heartbeat_monitor_register (monitor, "fuzz", &options, NULL));
    }

  uri = g_strconcat (base, endpoints[data[0] % G_N_ELEMENTS (endpoints)].path, NULL);
  msg = soup_message_new (endpoints[data[0] % G_N_ELEMENTS (endpoints)].method, uri);
  body = g_bytes_new (data + 1, size - 1);
  soup_message_set_request_body_from_bytes (msg, "application/json", body);
  soup_session_send_and_read_async (session, msg, G_PRIORITY_DEFAULT, NULL, on_done, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  reply = soup_session_send_and_read_finish (session, result, NULL);
  g_assert_nonnull (reply);

  status = soup_message_get_status (msg);
  g_assert_cmpuint (status, >=, 200);
  g_assert_cmpuint (status, <, 500);
  if (status >= 400)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();

      g_assert_true (json_parser_load_from_data (parser, g_bytes_get_data (reply, NULL),
                                                 (gssize) g_bytes_get_size (reply), NULL));
      g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
    }
  /* what was accepted survives D-Bus and JSON */
  hb_fuzz_assert_monitor_round_trips (monitor);

  /* keep the monitor small: forget what the input registered */
  {
    g_autoptr(GPtrArray) agents = heartbeat_monitor_list_agents (monitor);

    for (guint i = 0; i < agents->len; i++)
      heartbeat_monitor_unregister (monitor, heartbeat_agent_get_id (g_ptr_array_index (agents, i)), NULL);
  }
  return 0;
}
