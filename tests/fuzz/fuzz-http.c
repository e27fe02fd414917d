/* fuzz-http.c: libFuzzer target for the HTTP front's request bodies
 *
 * An in-process HbHttp on a loopback port and a libsoup client on the same
 * main context. The first byte of an input picks the endpoint, the rest is
 * the JSON body. Whatever the body, the answer is never a 5xx, and an
 * error is a JSON object.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <string.h>

#include "fuzz-invariant.h"
#include "hb-http.h"

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
