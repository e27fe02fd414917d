/* dbus-bench.c: how fast heartbeatd takes Beat calls over D-Bus
 *
 * Connects to a running heartbeatd's bus (it starts nothing), registers an
 * agent, then alternates rounds of pipelined asynchronous calls (64 in
 * flight by default) of org.heartbeat.Monitor1.Beat on that agent and of
 * org.freedesktop.DBus.Peer.Ping on the daemon's unique name. Ping is the
 * reference: GDBus answers it in its worker thread without touching the
 * daemon's main loop, so it is the bus and transport cost alone. The
 * figure that matters is Beat / Ping (target >= 0.9): the ratio of the
 * medians, and the median of the ratios of each Beat round to the Ping
 * round after it (steadier when the load of the machine changes).
 *
 *   dbus-bench [--calls N] [--in-flight N] [--rounds N] [--status] [--only KIND] ADDRESS
 *
 * ADDRESS is a bus address such as unix:path=/run/user/1000/bus, or
 * "session" / "system" for the well-known buses.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <unistd.h>

#include <gio/gio.h>

#define HB_NAME      "org.heartbeat.Monitor1"
#define HB_PATH      "/org/heartbeat/Monitor1"
#define HB_INTERFACE "org.heartbeat.Monitor1"

typedef struct {
  GDBusConnection *connection;
  const char      *destination;
  const char      *agent_id;
  gboolean         ping;
  gboolean         with_status;
  guint            total;
  guint            sent;
  guint            done;
  guint            failed;
  GError          *first_error;
  GMainLoop       *loop;
} Round;

static void issue (Round *round);

static void
on_reply (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Round *round = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);

  if (reply == NULL)
    {
      round->failed++;
      if (round->first_error == NULL)
        round->first_error = g_steal_pointer (&error);
    }
  round->done++;
  if (round->sent < round->total)
    issue (round);
  else if (round->done == round->total)
    g_main_loop_quit (round->loop);
}

static void
issue (Round *round)
{
  round->sent++;
  if (round->ping)
    {
      g_dbus_connection_call (round->connection, round->destination, HB_PATH,
                              "org.freedesktop.DBus.Peer", "Ping", NULL, NULL,
                              G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, NULL, on_reply, round);
    }
  else
    {
      g_auto(GVariantBuilder) details = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

      if (round->with_status)
        g_variant_builder_add (&details, "{sv}", "status", g_variant_new_string ("running"));
      g_dbus_connection_call (round->connection, round->destination, HB_PATH, HB_INTERFACE,
                              "Beat", g_variant_new ("(sa{sv})", round->agent_id, &details),
                              NULL, G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, NULL, on_reply, round);
    }
}

/* Returns calls per second, or a negative number on failure. */
static double
run_round (GDBusConnection *connection,
           const char      *destination,
           const char      *agent_id,
           gboolean         ping,
           gboolean         with_status,
           guint            total,
           guint            in_flight)
{
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  Round round = {
    .connection = connection, .destination = destination, .agent_id = agent_id,
    .ping = ping, .with_status = with_status, .total = total, .loop = loop,
  };
  gint64 start, elapsed;

  start = g_get_monotonic_time ();
  for (guint i = 0; i < MIN (in_flight, total); i++)
    issue (&round);
  g_main_loop_run (loop);
  elapsed = g_get_monotonic_time () - start;

  if (round.failed)
    {
      g_printerr ("dbus-bench: %u of %u %s calls failed, the first with: %s\n",
                  round.failed, total, ping ? "Ping" : "Beat", round.first_error->message);
      g_clear_error (&round.first_error);
      return -1;
    }
  return total / (elapsed / (double) G_USEC_PER_SEC);
}

static int
compare_doubles (gconstpointer a,
                 gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

static double
median (GArray *values)
{
  g_array_sort (values, compare_doubles);
  return g_array_index (values, double, values->len / 2);
}

static GDBusConnection *
connect_bus (const char *address,
             GError    **error)
{
  if (g_strcmp0 (address, "session") == 0)
    return g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, error);
  if (g_strcmp0 (address, "system") == 0)
    return g_bus_get_sync (G_BUS_TYPE_SYSTEM, NULL, error);
  return g_dbus_connection_new_for_address_sync (address,
                                                 G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                 G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                 NULL, NULL, error);
}

int
main (int    argc,
      char **argv)
{
  int calls = 30000, in_flight = 64, rounds = 5;
  gboolean with_status = FALSE;
  g_autofree char *only = NULL;
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) connection = NULL;
  g_autoptr(GVariant) owner = NULL;
  g_autoptr(GArray) beat_rates = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) ping_rates = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) pair_ratios = g_array_new (FALSE, FALSE, sizeof (double));
  g_autofree char *agent_id = NULL;
  const char *destination;
  double beat, ping;
  const GOptionEntry entries[] = {
    { "calls", 'n', 0, G_OPTION_ARG_INT, &calls, "Calls per round and kind (default 30000)", "N" },
    { "in-flight", 'j', 0, G_OPTION_ARG_INT, &in_flight, "Calls in flight (default 64)", "N" },
    { "rounds", 'r', 0, G_OPTION_ARG_INT, &rounds, "Rounds of each kind, alternating; the median counts (default 5)", "N" },
    { "status", 0, 0, G_OPTION_ARG_NONE, &with_status, "Send a status detail with every beat", NULL },
    { "only", 0, 0, G_OPTION_ARG_STRING, &only, "Run only beat or only ping rounds (for profiling)", "KIND" },
    { NULL }
  };

  context = g_option_context_new ("ADDRESS");
  g_option_context_set_summary (context,
      "Measures pipelined Beat calls to a running heartbeatd against Peer.Ping\n"
      "on the same connection. ADDRESS is a D-Bus address, or session/system.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("dbus-bench: %s\n", error->message);
      return 2;
    }
  if (argc != 2 || calls < 1 || in_flight < 1 || rounds < 1 ||
      (only && g_strcmp0 (only, "beat") != 0 && g_strcmp0 (only, "ping") != 0))
    {
      g_printerr ("usage: dbus-bench [--calls N] [--in-flight N] [--rounds N] ADDRESS\n");
      return 2;
    }

  connection = connect_bus (argv[1], &error);
  if (connection == NULL)
    {
      g_printerr ("dbus-bench: cannot connect to %s: %s\n", argv[1], error->message);
      return 1;
    }

  owner = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "GetNameOwner",
                                       g_variant_new ("(s)", HB_NAME), G_VARIANT_TYPE ("(s)"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  if (owner == NULL)
    {
      g_printerr ("dbus-bench: heartbeatd is not on this bus: %s\n", error->message);
      return 1;
    }
  g_variant_get (owner, "(&s)", &destination);

  agent_id = g_strdup_printf ("dbus-bench-%d", (int) getpid ());
  if (!g_dbus_connection_call_sync (connection, destination, HB_PATH, HB_INTERFACE, "Register",
                                    g_variant_new_parsed ("(%s, {'task-id': <'dbus-bench'>})", agent_id),
                                    NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error))
    {
      g_printerr ("dbus-bench: cannot register %s: %s\n", agent_id, error->message);
      return 1;
    }

  /* warm up both paths (uid cache, allocator, page faults) */
  if (run_round (connection, destination, agent_id, FALSE, with_status, MIN (calls, 2000), in_flight) < 0 ||
      run_round (connection, destination, agent_id, TRUE, FALSE, MIN (calls, 2000), in_flight) < 0)
    return 1;

  for (int i = 0; i < rounds; i++)
    {
      double rate = 0;

      if (g_strcmp0 (only, "ping") != 0)
        rate = run_round (connection, destination, agent_id, FALSE, with_status, calls, in_flight);
      if (rate < 0)
        return 1;
      g_array_append_val (beat_rates, rate);
      rate = 0;
      if (g_strcmp0 (only, "beat") != 0)
        rate = run_round (connection, destination, agent_id, TRUE, FALSE, calls, in_flight);
      if (rate < 0)
        return 1;
      g_array_append_val (ping_rates, rate);
      if (rate > 0 && g_array_index (beat_rates, double, beat_rates->len - 1) > 0)
        {
          double ratio = g_array_index (beat_rates, double, beat_rates->len - 1) / rate;

          g_array_append_val (pair_ratios, ratio);
        }
    }
  beat = median (beat_rates);
  ping = median (ping_rates);

  g_dbus_connection_call_sync (connection, destination, HB_PATH, HB_INTERFACE, "Unregister",
                               g_variant_new ("(s)", agent_id), NULL, G_DBUS_CALL_FLAGS_NONE,
                               -1, NULL, NULL);

  g_print ("dbus-beat-rate %.0f calls/s (reference peer-ping-rate %.0f calls/s, %d in flight, median of %d x %d)\n",
           beat, ping, in_flight, rounds, calls);
  g_print ("dbus-peer-ping-rate %.0f calls/s\n", ping);
  if (beat > 0 && ping > 0)
    g_print ("dbus-beat-vs-ping %.3f ratio (target >= 0.900)\n", beat / ping);
  /* each Beat round against the Ping round right after it, which ran
   * under nearly the same load: steadier on a shared machine */
  if (pair_ratios->len > 0)
    g_print ("dbus-beat-vs-ping-paired %.3f ratio (median of %u round pairs)\n",
             median (pair_ratios), pair_ratios->len);
  return 0;
}
