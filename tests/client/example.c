/* example.c: keep an application alive with heartbeatd.
 * cc example.c $(pkg-config --cflags --libs heartbeat-1)
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include <heartbeat.h>

static gboolean
quit (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

int
main (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(HeartbeatClient) client = NULL;
  g_autoptr(HeartbeatKeepAlive) keep_alive = NULL;
  g_autoptr(HeartbeatAgentInfo) info = NULL;

  client = heartbeat_client_new_sync (G_BUS_TYPE_SESSION, NULL, &error);
  if (client != NULL)
    keep_alive = heartbeat_keep_alive_new (client, "example-c", NULL, NULL, &error);
  if (keep_alive == NULL)
    {
      g_printerr ("example: %s\n", error->message);
      return 1;
    }

  /* the application's work; the keep-alive beats from the main loop */
  g_timeout_add (300, quit, loop);
  g_main_loop_run (loop);

  info = heartbeat_client_get_agent_info (client, "example-c", NULL, NULL);
  return info != NULL && g_str_equal (heartbeat_agent_info_get_state (info), "healthy") ? 0 : 1;
}
