/* http-minimal.c: the least a libsoup-3 server can do for POST /heartbeat
 * and GET /health
 *
 * The reference of bench/http-bench.sh: same stack (SoupServer on a
 * GMainLoop), same request, same JSON parsing of the body and a JSON
 * reply, and no monitor behind it. heartbeatd's figure divided by this
 * one is what its own work costs. GET /health answers a fixed JSON object
 * of the size of heartbeatd's.
 *
 *   http-minimal PORT
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <stdlib.h>

static void
on_request (SoupServer *server, SoupServerMessage *msg, const char *path,
            GHashTable *query, gpointer user_data)
{
  g_autoptr(GBytes) body = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  g_autoptr(JsonParser) parser = json_parser_new ();
  static const char reply[] = "{\"ok\":true,\"run_id\":\"x\",\"state\":\"healthy\",\"registered\":false}";

  if (!json_parser_load_from_data (parser, g_bytes_get_data (body, NULL), (gssize) g_bytes_get_size (body), NULL))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_BAD_REQUEST, NULL);
      return;
    }
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_STATIC, reply, sizeof reply - 1);
}

static void
on_health (SoupServer *server, SoupServerMessage *msg, const char *path,
           GHashTable *query, gpointer user_data)
{
  static const char reply[] = "{\"status\":\"ok\",\"problem\":null,\"running\":true,\"agents\":1,"
                              "\"states\":{\"healthy\":1,\"stale\":0,\"timed-out\":0,\"idle\":0,"
                              "\"no-heartbeat\":0,\"gone\":0},\"version\":\"0.1.0\","
                              "\"started-at-usec\":1700000000000000,\"event-clients\":0}";

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_STATIC, reply, sizeof reply - 1);
}

int
main (int argc, char **argv)
{
  g_autoptr(SoupServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);

  if (argc != 2)
    {
      g_printerr ("usage: http-minimal PORT\n");
      return 2;
    }
  server = soup_server_new ("server-header", "http-minimal", NULL);
  soup_server_add_handler (server, "/heartbeat", on_request, NULL, NULL);
  soup_server_add_handler (server, "/health", on_health, NULL, NULL);
  if (!soup_server_listen_local (server, (guint) atoi (argv[1]), SOUP_SERVER_LISTEN_IPV4_ONLY, &error))
    {
      g_printerr ("http-minimal: %s\n", error->message);
      return 1;
    }
  g_main_loop_run (loop);
  return 0;
}
