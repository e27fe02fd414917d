/* example.c: an application keeping itself alive with heartbeatd, built
 * against the installed libheartbeat-1 (pkg-config heartbeat-1) by
 * check-installed.sh and run against a daemon by test-client-script.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
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

  /* the three lines */
  client = heartbeat_client_new_sync (G_BUS_TYPE_SESSION, NULL, &error);
  if (client != NULL)
    keep_alive = heartbeat_keep_alive_new (client, "example-c", NULL, NULL, &error);
  if (keep_alive == NULL)
    {
      g_printerr ("example: %s\n", error->message);
      return 1;
    }

  /* … the application's work, with the main loop running … */
  g_timeout_add (300, quit, loop);
  g_main_loop_run (loop);

  info = heartbeat_client_get_agent_info (client, "example-c", NULL, &error);
  if (info == NULL || g_strcmp0 (heartbeat_agent_info_get_state (info), "healthy") != 0)
    {
      g_printerr ("example: not healthy: %s\n", error ? error->message : heartbeat_agent_info_get_state (info));
      return 1;
    }
  g_printerr ("example: %s is %s\n", heartbeat_agent_info_get_id (info), heartbeat_agent_info_get_state (info));
  return 0;   /* keep_alive is released here: unregistered */
}
