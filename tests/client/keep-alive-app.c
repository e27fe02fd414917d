/* keep-alive-app.c: an application that keeps one agent alive with
 * libheartbeat-1 the way the README's example does (a client for the
 * session bus, GLib's defaults everywhere), and writes what the library
 * tells it to a file, one line per event, for test-bus-restart.c.
 *
 *   keep-alive-app EVENTS-FILE AGENT-ID
 *
 * Lines: "ready NAME" (registered; NAME is the client's unique name on the
 * bus), "connection NAME" (the client connected again), "vanished",
 * "appeared", "registered N" (the keep-alive's signal; N registrations so
 * far), "registered-property TRUE|FALSE" (notify::registered), "failed
 * CODE MESSAGE" (CODE of HEARTBEAT_CLIENT_ERROR, or -1 for another domain),
 * "try MESSAGE" (a failed try to connect to the bus again) and "exiting". It exits 0 on SIGUSR1 after dropping the keep-alive, 1
 * if it could not register. SIGTERM keeps its default action, so a
 * library that has GLib raise it when the bus goes (exit-on-close) kills
 * the application, as it would a real one.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <heartbeat.h>

#include <glib-unix.h>
#include <stdio.h>

static FILE *events;

static void
event (const char *format,
       ...) G_GNUC_PRINTF (1, 2);

static void
event (const char *format,
       ...)
{
  va_list args;

  va_start (args, format);
  vfprintf (events, format, args);
  va_end (args);
  fputc ('\n', events);
  fflush (events);
}

/* The library's failed tries to connect again (its debug messages) as
 * "try" lines, which the test counts; every message goes on to GLib's
 * writer. */
static GLogWriterOutput
log_writer (GLogLevelFlags   log_level,
            const GLogField *fields,
            gsize            n_fields,
            gpointer         user_data)
{
  const char *domain = NULL, *message = NULL;

  for (gsize i = 0; i < n_fields; i++)
    if (fields[i].length < 0 && g_str_equal (fields[i].key, "GLIB_DOMAIN"))
      domain = fields[i].value;
    else if (fields[i].length < 0 && g_str_equal (fields[i].key, "MESSAGE"))
      message = fields[i].value;
  if (g_strcmp0 (domain, "heartbeat-client") == 0 && message != NULL &&
      g_str_has_prefix (message, "reconnecting to the bus"))
    event ("try %s", message);
  return g_log_writer_default (log_level, fields, n_fields, user_data);
}

static void
on_connection (HeartbeatClient *client,
               GParamSpec      *pspec,
               gpointer         data)
{
  event ("connection %s", g_dbus_connection_get_unique_name (heartbeat_client_get_connection (client)));
}

static void
on_vanished (HeartbeatClient *client,
             gpointer         data)
{
  event ("vanished");
}

static void
on_appeared (HeartbeatClient *client,
             gpointer         data)
{
  event ("appeared");
}

static void
on_registered (HeartbeatKeepAlive *keep_alive,
               gpointer            data)
{
  event ("registered %u", heartbeat_keep_alive_get_registrations (keep_alive));
}

static void
on_registered_notify (HeartbeatKeepAlive *keep_alive,
                      GParamSpec         *pspec,
                      gpointer            data)
{
  event ("registered-property %s", heartbeat_keep_alive_get_registered (keep_alive) ? "TRUE" : "FALSE");
}

static void
on_failed (HeartbeatKeepAlive *keep_alive,
           const GError       *error,
           gpointer            data)
{
  event ("failed %d %s", error->domain == HEARTBEAT_CLIENT_ERROR ? error->code : -1, error->message);
}

static gboolean
on_sigusr1 (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(HeartbeatClient) client = NULL;
  g_autoptr(HeartbeatKeepAlive) keep_alive = NULL;

  if (argc != 3)
    {
      g_printerr ("usage: keep-alive-app EVENTS-FILE AGENT-ID\n");
      return 2;
    }
  events = fopen (argv[1], "a");
  if (events == NULL)
    {
      g_printerr ("keep-alive-app: cannot open %s\n", argv[1]);
      return 2;
    }

  g_log_set_writer_func (log_writer, NULL, NULL);
  loop = g_main_loop_new (NULL, FALSE);
  client = heartbeat_client_new_sync (G_BUS_TYPE_SESSION, NULL, &error);
  /* beats every 200 ms: a library that failed on every beat would show */
  if (client != NULL)
    keep_alive = heartbeat_keep_alive_new (client, argv[2],
                                           heartbeat_register_options_new ("serve", 600000, 0, 0, FALSE, NULL),
                                           NULL, &error);
  if (keep_alive == NULL)
    {
      event ("error %s", error->message);
      fclose (events);
      return 1;
    }
  g_signal_connect (client, "notify::connection", G_CALLBACK (on_connection), NULL);
  g_signal_connect (client, "daemon-vanished", G_CALLBACK (on_vanished), NULL);
  g_signal_connect (client, "daemon-appeared", G_CALLBACK (on_appeared), NULL);
  g_signal_connect (keep_alive, "registered", G_CALLBACK (on_registered), NULL);
  g_signal_connect (keep_alive, "notify::registered", G_CALLBACK (on_registered_notify), NULL);
  g_signal_connect (keep_alive, "failed", G_CALLBACK (on_failed), NULL);
  event ("ready %s", g_dbus_connection_get_unique_name (heartbeat_client_get_connection (client)));

  g_unix_signal_add (SIGUSR1, on_sigusr1, loop);
  g_main_loop_run (loop);

  g_clear_object (&keep_alive);
  g_clear_object (&client);
  event ("exiting");
  fclose (events);
  return 0;
}
