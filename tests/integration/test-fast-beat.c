/* test-fast-beat.c: the fast Beat path on a private bus, in process
 *
 * The front (HbDBusService) serves a monitor on a connection made by
 * hb_bus_filter_connect_sync(), as heartbeatd does. A GDBus filter of the
 * test's own on that connection counts the Beat calls GDBus reads: a Beat
 * the fast path took from the bus connection's input is never among them.
 * So each case here says which path a Beat took, and that it took effect
 * or was refused as the normal path would.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-bus-filter.h"
#include "hb-dbus-service.h"
#include "hb-harness.h"

typedef struct {
  HbHarness        *h;
  GDBusConnection  *service_connection;
  HeartbeatMonitor *monitor;
  HbDBusService    *service;
  GDBusConnection  *client;
  const char       *destination;
  gint              beats_seen;  /* by GDBus, atomic */
} Fixture;

typedef struct {
  gboolean  done;
  GVariant *reply;
  GError   *error;
} Reply;

static GDBusMessage *
count_beats (GDBusConnection *connection,
             GDBusMessage    *message,
             gboolean         incoming,
             gpointer         user_data)
{
  Fixture *f = user_data;

  if (incoming && g_dbus_message_get_message_type (message) == G_DBUS_MESSAGE_TYPE_METHOD_CALL &&
      g_strcmp0 (g_dbus_message_get_member (message), "Beat") == 0)
    g_atomic_int_inc (&f->beats_seen);
  return message;
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->h = hb_harness_new ();
  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  f->service_connection = hb_bus_filter_connect_sync (f->h->bus_address, NULL, &error);
  g_assert_no_error (error);
  g_dbus_connection_add_filter (f->service_connection, count_beats, f, NULL);
  f->monitor = heartbeat_monitor_new ();
  f->service = hb_dbus_service_new (f->monitor, f->service_connection, "test");
  hb_dbus_service_export (f->service, &error);
  g_assert_no_error (error);
  hb_dbus_service_rebind (f->service);
  f->destination = g_dbus_connection_get_unique_name (f->service_connection);
  f->client = g_dbus_connection_new_for_address_sync (f->h->bus_address,
                                                      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                      G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                      NULL, NULL, &error);
  g_assert_no_error (error);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  if (f->client)
    g_dbus_connection_close_sync (f->client, NULL, NULL);
  g_clear_object (&f->client);
  if (f->service)
    hb_dbus_service_unexport (f->service);
  g_clear_object (&f->service);
  g_clear_object (&f->monitor);
  if (f->service_connection)
    g_dbus_connection_close_sync (f->service_connection, NULL, NULL);
  g_clear_object (&f->service_connection);
  g_clear_pointer (&f->h, hb_harness_free);
}

static void
on_reply (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Reply *reply = user_data;

  reply->reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &reply->error);
  reply->done = TRUE;
}

static gboolean
reply_done (HbHarness *h,
            gpointer   data)
{
  return ((Reply *) data)->done;
}

/* Sends a call to the front; the reply is waited for (bounded) with
 * wait_reply(), while the service's main context runs. */
static void
send_call (Fixture    *f,
           const char *method,
           GVariant   *parameters,
           Reply      *reply)
{
  g_dbus_connection_call (f->client, f->destination, HB_DBUS_PATH, HB_DBUS_INTERFACE, method, parameters,
                          NULL, G_DBUS_CALL_FLAGS_NO_AUTO_START, HB_WAIT_MS, NULL, on_reply, reply);
}

static void
wait_reply (Fixture *f,
            Reply   *reply)
{
  hb_harness_wait_until (f->h, reply_done, reply);
}

static void
reply_clear (Reply *reply)
{
  g_clear_pointer (&reply->reply, g_variant_unref);
  g_clear_error (&reply->error);
  reply->done = FALSE;
}

static void
call_ok (Fixture    *f,
         const char *method,
         GVariant   *parameters)
{
  Reply reply = { 0, };

  send_call (f, method, parameters, &reply);
  wait_reply (f, &reply);
  g_assert_no_error (reply.error);
  reply_clear (&reply);
}

static GVariant *
beat_parameters (const char *id,
                 const char *key,
                 GVariant   *value)
{
  g_auto(GVariantBuilder) details = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  if (key)
    g_variant_builder_add (&details, "{sv}", key, value);
  return g_variant_new ("(sa{sv})", id, &details);
}

/* The agent's status, read through the normal path (which applies every
 * acknowledged beat first). */
static char *
status_of (Fixture    *f,
           const char *id)
{
  Reply reply = { 0, };
  g_autoptr(GVariant) agent = NULL;
  char *status = NULL;

  send_call (f, "GetAgent", g_variant_new ("(s)", id), &reply);
  wait_reply (f, &reply);
  g_assert_no_error (reply.error);
  g_variant_get (reply.reply, "(@a{sv})", &agent);
  g_variant_lookup (agent, "status", "s", &status);
  reply_clear (&reply);
  return status;
}

static void
register_agent (Fixture    *f,
                const char *id)
{
  call_ok (f, "Register", g_variant_new_parsed ("(%s, @a{sv} {})", id));
}

/* A Beat with at most a status, on the caller's own agent, once the front
 * knows the caller's uid: answered without GDBus reading it, and applied
 * before the next call is handled; with no reply expected too. */
static void
test_claimed (Fixture      *f,
              gconstpointer data)
{
  g_autoptr(GDBusMessage) message = NULL;
  g_autofree char *status = NULL, *status2 = NULL;
  g_autoptr(GError) error = NULL;

  if (f->client == NULL)
    return;
  register_agent (f, "claimed");
  g_assert_cmpint (g_atomic_int_get (&f->beats_seen), ==, 0);

  call_ok (f, "Beat", beat_parameters ("claimed", "status", g_variant_new_string ("one")));
  call_ok (f, "Beat", beat_parameters ("claimed", NULL, NULL));
  call_ok (f, "Beat", beat_parameters ("claimed", "status", g_variant_new_string ("one")));
  g_assert_cmpint (g_atomic_int_get (&f->beats_seen), ==, 0);
  status = status_of (f, "claimed");
  g_assert_cmpstr (status, ==, "one");

  message = g_dbus_message_new_method_call (f->destination, HB_DBUS_PATH, HB_DBUS_INTERFACE, "Beat");
  g_dbus_message_set_body (message, beat_parameters ("claimed", "status", g_variant_new_string ("two")));
  g_dbus_message_set_flags (message, G_DBUS_MESSAGE_FLAGS_NO_REPLY_EXPECTED);
  g_dbus_connection_send_message (f->client, message, G_DBUS_SEND_MESSAGE_FLAGS_NONE, NULL, &error);
  g_assert_no_error (error);
  status2 = status_of (f, "claimed");
  g_assert_cmpstr (status2, ==, "two");
  g_assert_cmpint (g_atomic_int_get (&f->beats_seen), ==, 0);
}

/* Every other Beat reaches GDBus and the normal path: another detail, an
 * unknown agent, a refused status, the path switched off. */
static void
test_normal_path (Fixture      *f,
                  gconstpointer data)
{
  g_autofree char *status = NULL;
  g_autofree char *long_status = g_strnfill (HEARTBEAT_STATUS_MAX_LENGTH + 1, 's');
  Reply reply = { 0, };

  if (f->client == NULL)
    return;
  register_agent (f, "normal");

  call_ok (f, "Beat", beat_parameters ("normal", "progress", g_variant_new_double (0.5)));
  g_assert_cmpint (g_atomic_int_get (&f->beats_seen), ==, 1);

  send_call (f, "Beat", beat_parameters ("nobody", NULL, NULL), &reply);
  wait_reply (f, &reply);
  g_assert_error (reply.error, HB_DBUS_ERROR, HB_DBUS_ERROR_NOT_FOUND);
  reply_clear (&reply);
  g_assert_cmpint (g_atomic_int_get (&f->beats_seen), ==, 2);

  send_call (f, "Beat", beat_parameters ("normal", "status", g_variant_new_string (long_status)), &reply);
  wait_reply (f, &reply);
  g_assert_error (reply.error, HB_DBUS_ERROR, HB_DBUS_ERROR_INVALID_ARGUMENT);
  reply_clear (&reply);
  g_assert_cmpint (g_atomic_int_get (&f->beats_seen), ==, 3);

  hb_dbus_service_set_fast_beat (f->service, FALSE);
  call_ok (f, "Beat", beat_parameters ("normal", "status", g_variant_new_string ("slow")));
  g_assert_cmpint (g_atomic_int_get (&f->beats_seen), ==, 4);
  status = status_of (f, "normal");
  g_assert_cmpstr (status, ==, "slow");
}

/* A Beat sent right behind an Unregister of its agent waits for it (the
 * Unregister is a changing call still on the normal path) and fails as
 * the normal path says, never acknowledged. */
static void
test_behind_unregister (Fixture      *f,
                        gconstpointer data)
{
  if (f->client == NULL)
    return;
  for (guint round = 0; round < 20; round++)
    {
      Reply unregistered = { 0, }, beat = { 0, };

      register_agent (f, "gone");
      send_call (f, "Unregister", g_variant_new ("(s)", "gone"), &unregistered);
      send_call (f, "Beat", beat_parameters ("gone", "status", g_variant_new_string ("late")), &beat);
      wait_reply (f, &unregistered);
      wait_reply (f, &beat);
      g_assert_no_error (unregistered.error);
      g_assert_error (beat.error, HB_DBUS_ERROR, HB_DBUS_ERROR_NOT_FOUND);
      reply_clear (&unregistered);
      reply_clear (&beat);
      g_assert_cmpint (g_atomic_int_get (&f->beats_seen), ==, round + 1);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/fast-beat/claimed", Fixture, NULL, fixture_set_up, test_claimed, fixture_tear_down);
  g_test_add ("/fast-beat/normal-path", Fixture, NULL, fixture_set_up, test_normal_path, fixture_tear_down);
  g_test_add ("/fast-beat/behind-unregister", Fixture, NULL, fixture_set_up, test_behind_unregister,
              fixture_tear_down);
  return g_test_run ();
}
