/* punctuality.c: how late heartbeatd's AgentStale arrives, end to end
 *
 * Connects to a running heartbeatd's bus (it starts nothing), registers N
 * agents whose stale thresholds are spread over a window, never beats
 * them, and for each AgentStale it receives records two figures:
 *
 *   daemon lateness   the idle time the signal reports minus the agent's
 *                     stale threshold: how late the daemon's own deadline
 *                     source fired (its main loop's punctuality);
 *   arrival lateness  when this client received the signal minus the
 *                     agent's last activity plus its threshold (the wall
 *                     clock of the same machine): what a listener sees,
 *                     the bus's delivery included.
 *
 * The reference, measured in the same run on the same bus: the round trip
 * of org.freedesktop.DBus.Peer.Ping to the daemon, which GDBus answers in
 * its worker thread. Arrival lateness near one Ping means the deadline
 * itself costs nothing. The tests only check that no signal is early;
 * this is where "how late" is measured (README has the figures).
 *
 *   punctuality [--agents N] [--window-ms MS] [--pings N] ADDRESS
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>

#include <gio/gio.h>

#define HB_NAME      "org.heartbeat.Monitor1"
#define HB_PATH      "/org/heartbeat/Monitor1"
#define HB_INTERFACE "org.heartbeat.Monitor1"

typedef struct {
  GArray    *daemon_late;   /* gint64 µs */
  GArray    *arrival_late;  /* gint64 µs */
  guint      expected;
  GMainLoop *loop;
} Collector;

static void
on_stale (GDBusConnection *connection,
          const char      *sender,
          const char      *path,
          const char      *interface,
          const char      *signal,
          GVariant        *parameters,
          gpointer         user_data)
{
  Collector *c = user_data;
  gint64 received = g_get_real_time ();
  g_autoptr(GVariant) agent = NULL;
  const char *id;
  guint64 idle, stale_after = 0, last = 0;
  gint64 late;

  g_variant_get (parameters, "(&st@a{sv})", &id, &idle, &agent);
  if (!g_str_has_prefix (id, "punctual-") ||
      !g_variant_lookup (agent, "stale-after-usec", "t", &stale_after) ||
      !g_variant_lookup (agent, "last-activity-at-usec", "t", &last))
    return;
  late = (gint64) idle - (gint64) stale_after;
  g_array_append_val (c->daemon_late, late);
  late = received - (gint64) (last + stale_after);
  g_array_append_val (c->arrival_late, late);
  if (c->arrival_late->len == c->expected)
    g_main_loop_quit (c->loop);
}

static int
compare_gint64 (gconstpointer a,
                gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return x < y ? -1 : x > y;
}

static void
print_figures (const char *what,
               GArray     *values)
{
  gint64 *v = (gint64 *) (gpointer) values->data;

  g_array_sort (values, compare_gint64);
  g_print ("%-18s n=%u  p50 %8.3f ms  p99 %8.3f ms  max %8.3f ms\n", what, values->len,
           v[values->len / 2] / 1000.0, v[(gsize) values->len * 99 / 100] / 1000.0,
           v[values->len - 1] / 1000.0);
}

static gboolean
on_give_up (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) connection = NULL;
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(GArray) pings = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autofree char *owner = NULL;
  gint agents = 200, window_ms = 2000, n_pings = 200;
  Collector c = { 0 };
  GOptionEntry entries[] = {
    { "agents", 0, 0, G_OPTION_ARG_INT, &agents, "Agents to let go stale (200)", "N" },
    { "window-ms", 0, 0, G_OPTION_ARG_INT, &window_ms, "Spread their thresholds over this (2000)", "MS" },
    { "pings", 0, 0, G_OPTION_ARG_INT, &n_pings, "Peer.Ping round trips for the reference (200)", "N" },
    { NULL }
  };
  guint subscription;

  context = g_option_context_new ("ADDRESS — how late heartbeatd's AgentStale arrives");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || argc != 2 ||
      agents < 1 || window_ms < 100 || n_pings < 1)
    {
      g_printerr ("%s\n", error ? error->message : "usage: punctuality [OPTION…] ADDRESS");
      return 2;
    }
  connection = g_dbus_connection_new_for_address_sync (argv[1],
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, &error);
  if (connection == NULL)
    {
      g_printerr ("punctuality: %s\n", error->message);
      return 1;
    }

  /* the reference: Peer.Ping round trips to the daemon's unique name */
  {
    g_autoptr(GVariant) reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus",
        "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetNameOwner", g_variant_new ("(s)", HB_NAME),
        G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);

    if (reply == NULL)
      {
        g_printerr ("punctuality: is heartbeatd running? %s\n", error->message);
        return 1;
      }
    g_variant_get (reply, "(s)", &owner);
  }
  for (gint i = 0; i < n_pings; i++)
    {
      gint64 start = g_get_monotonic_time (), rtt;
      g_autoptr(GVariant) reply = g_dbus_connection_call_sync (connection, owner, HB_PATH,
          "org.freedesktop.DBus.Peer", "Ping", NULL, NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);

      if (reply == NULL)
        {
          g_printerr ("punctuality: Ping: %s\n", error->message);
          return 1;
        }
      rtt = g_get_monotonic_time () - start;
      g_array_append_val (pings, rtt);
    }

  loop = g_main_loop_new (NULL, FALSE);
  c.daemon_late = g_array_new (FALSE, FALSE, sizeof (gint64));
  c.arrival_late = g_array_new (FALSE, FALSE, sizeof (gint64));
  c.expected = (guint) agents;
  c.loop = loop;
  subscription = g_dbus_connection_signal_subscribe (connection, owner, HB_INTERFACE, "AgentStale", HB_PATH,
                                                     NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_stale, &c, NULL);
  for (gint i = 0; i < agents; i++)
    {
      g_autofree char *id = g_strdup_printf ("punctual-%d", i);
      /* the first deadline 1 s away: every Register is answered before
       * any comes due, so the signals find this client's loop running */
      guint64 threshold = G_USEC_PER_SEC + (guint64) window_ms * 1000 * (guint64) i / (guint64) agents;
      g_autoptr(GVariant) reply = g_dbus_connection_call_sync (connection, HB_NAME, HB_PATH, HB_INTERFACE,
          "Register", g_variant_new_parsed ("(%s, {'stale-after-usec': <%t>})", id, threshold),
          NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);

      if (reply == NULL)
        {
          g_printerr ("punctuality: Register: %s\n", error->message);
          return 1;
        }
    }
  g_timeout_add_seconds ((guint) window_ms / 1000 + 30, on_give_up, loop);
  g_main_loop_run (loop);
  g_dbus_connection_signal_unsubscribe (connection, subscription);

  for (gint i = 0; i < agents; i++)
    {
      g_autofree char *id = g_strdup_printf ("punctual-%d", i);
      GVariant *reply = g_dbus_connection_call_sync (connection, HB_NAME, HB_PATH, HB_INTERFACE,
          "Unregister", g_variant_new ("(s)", id), NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);

      g_clear_pointer (&reply, g_variant_unref);
    }

  if (c.arrival_late->len == 0)
    {
      g_printerr ("punctuality: no AgentStale arrived\n");
      return 1;
    }
  g_print ("%d agents, stale thresholds spread over %d ms; %u AgentStale received\n",
           agents, window_ms, c.arrival_late->len);
  print_figures ("Peer.Ping rtt", pings);
  print_figures ("daemon lateness", c.daemon_late);
  print_figures ("arrival lateness", c.arrival_late);
  {
    gint64 ping_p50 = g_array_index (pings, gint64, pings->len / 2);
    gint64 arrival_p50 = g_array_index (c.arrival_late, gint64, c.arrival_late->len / 2);

    g_print ("arrival lateness p50 / Ping rtt p50: %.2f\n", (double) arrival_p50 / (double) MAX (ping_p50, 1));
  }
  {
    gboolean all = c.arrival_late->len == (guint) agents;

    g_array_unref (c.daemon_late);
    g_array_unref (c.arrival_late);
    return all ? 0 : 1;
  }
}
