/* test-callers.c: HbCallers on a private bus: uids learnt once per unique
 * name, in order, forgotten when the name leaves, and peer-vanished
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <unistd.h>

#include "hb-callers.h"
#include "hb-harness.h"

typedef struct {
  HbHarness       *h;
  GDBusConnection *service;  /* where HbCallers listens */
  HbCallers       *callers;
} Fixture;

static GDBusConnection *
connect_peer (Fixture *fixture)
{
  g_autoptr(GError) error = NULL;
  GDBusConnection *connection =
    g_dbus_connection_new_for_address_sync (fixture->h->bus_address,
                                            G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                            G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                            NULL, NULL, &error);

  g_assert_no_error (error);
  return connection;
}

/* Without dbus-daemon, the test is skipped and fixture->callers NULL. */
static void
fixture_set_up (Fixture       *fixture,
                gconstpointer  data)
{
  fixture->h = hb_harness_new ();
  if (!hb_harness_start_bus (fixture->h, HB_BUS_SESSION))
    return;
  fixture->service = connect_peer (fixture);
  fixture->callers = hb_callers_new (fixture->service);
}

static void
fixture_tear_down (Fixture       *fixture,
                   gconstpointer  data)
{
  g_clear_object (&fixture->callers);
  if (fixture->service)
    g_dbus_connection_close_sync (fixture->service, NULL, NULL);
  g_clear_object (&fixture->service);
  g_clear_pointer (&fixture->h, hb_harness_free);
}

/* Sends the service connection a round trip through the bus, so every
 * signal the bus sent it before is delivered afterwards. */
static void
sync_with_bus (Fixture *fixture)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply =
    g_dbus_connection_call_sync (fixture->service, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                 "org.freedesktop.DBus", "GetId", NULL, NULL,
                                 G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (reply);
  /* the signals came before the reply, and are dispatched in order */
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

typedef struct {
  GPtrArray *answers;  /* "tag:uid" or "tag:error" */
  guint      n;
  guint      wanted;
} Answers;

typedef struct {
  Answers    *answers;
  const char *tag;
} Asker;

static gboolean
has_answers (HbHarness *h,
             gpointer   data)
{
  return ((Answers *) data)->n >= ((Answers *) data)->wanted;
}

/* Waits (bounded) until @answers holds @n answers, and no more. */
static void
wait_answers (Fixture *fixture,
              Answers *answers,
              guint    n)
{
  answers->wanted = n;
  hb_harness_wait_until (fixture->h, has_answers, answers);
  g_assert_cmpuint (answers->n, ==, n);
}

static void
on_uid (const char   *unique_name,
        guint32       uid,
        const GError *error,
        gpointer      user_data)
{
  Asker *asker = user_data;

  g_ptr_array_add (asker->answers->answers,
                   error ? g_strdup_printf ("%s:error", asker->tag)
                         : g_strdup_printf ("%s:%u", asker->tag, uid));
  asker->answers->n++;
}

/* The bus tells the uid; the requests that came meanwhile are answered
 * in order; the next one is answered from the cache, at once. */
static void
test_resolve_in_order (Fixture       *fixture,
                       gconstpointer  data)
{
  g_autoptr(GDBusConnection) peer = NULL;
  const char *name;
  g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func (g_free);
  Answers answers = { list, 0, 0 };
  Asker first = { &answers, "first" }, second = { &answers, "second" }, third = { &answers, "third" };
  g_autofree char *first_expected = g_strdup_printf ("first:%u", (guint) getuid ());
  g_autofree char *second_expected = g_strdup_printf ("second:%u", (guint) getuid ());
  g_autofree char *third_expected = g_strdup_printf ("third:%u", (guint) getuid ());
  guint32 uid = 0;

  if (fixture->callers == NULL)
    return;
  peer = connect_peer (fixture);
  name = g_dbus_connection_get_unique_name (peer);
  g_assert_false (hb_callers_lookup_uid (fixture->callers, name, &uid));
  hb_callers_resolve_uid (fixture->callers, name, on_uid, &first);
  hb_callers_resolve_uid (fixture->callers, name, on_uid, &second);
  g_assert_cmpuint (answers.n, ==, 0);  /* the bus has not answered yet */

  wait_answers (fixture, &answers, 2);
  g_assert_cmpstr (list->pdata[0], ==, first_expected);
  g_assert_cmpstr (list->pdata[1], ==, second_expected);
  g_assert_true (hb_callers_lookup_uid (fixture->callers, name, &uid));
  g_assert_cmpuint (uid, ==, getuid ());
  g_assert_cmpuint (hb_callers_get_n_cached (fixture->callers), ==, 1);

  hb_callers_resolve_uid (fixture->callers, name, on_uid, &third);
  g_assert_cmpuint (answers.n, ==, 3);  /* from the cache, before returning */
  g_assert_cmpstr (list->pdata[2], ==, third_expected);
}

typedef struct {
  HbCallers *callers;
  GPtrArray *vanished;
  gboolean   cached_when_emitted;
} Vanished;

static void
on_peer_vanished (HbCallers  *callers,
                  const char *unique_name,
                  Vanished   *vanished)
{
  guint32 uid;

  g_ptr_array_add (vanished->vanished, g_strdup (unique_name));
  if (hb_callers_lookup_uid (callers, unique_name, &uid))
    vanished->cached_when_emitted = TRUE;
}

static gboolean
contains (GPtrArray  *names,
          const char *name)
{
  return g_ptr_array_find_with_equal_func (names, name, g_str_equal, NULL);
}

typedef struct {
  GPtrArray  *names;
  const char *name;
} Seen;

static gboolean
has_vanished (HbHarness *h,
              gpointer   data)
{
  Seen *seen = data;

  return contains (seen->names, seen->name);
}

/* A unique name that leaves is reported after its uid is dropped; a
 * well-known name that is released is not reported. */
static void
test_peer_vanished (Fixture       *fixture,
                    gconstpointer  data)
{
  g_autoptr(GDBusConnection) peer = NULL;
  g_autofree char *name = NULL;
  g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) answers_list = g_ptr_array_new_with_free_func (g_free);
  Answers answers = { answers_list, 0, 0 };
  Asker asker = { &answers, "peer" };
  Vanished vanished = { fixture->callers, list, FALSE };
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  guint32 uid;

  if (fixture->callers == NULL)
    return;
  peer = connect_peer (fixture);
  name = g_strdup (g_dbus_connection_get_unique_name (peer));
  g_signal_connect (fixture->callers, "peer-vanished", G_CALLBACK (on_peer_vanished), &vanished);

  hb_callers_resolve_uid (fixture->callers, name, on_uid, &asker);
  wait_answers (fixture, &answers, 1);
  g_assert_true (hb_callers_lookup_uid (fixture->callers, name, &uid));

  /* a well-known name comes and goes: no peer-vanished */
  reply = g_dbus_connection_call_sync (peer, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "RequestName",
                                       g_variant_new ("(su)", "org.heartbeat.TestCallers", 0),
                                       G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);
  reply = g_dbus_connection_call_sync (peer, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "ReleaseName",
                                       g_variant_new ("(s)", "org.heartbeat.TestCallers"),
                                       G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
  sync_with_bus (fixture);
  g_assert_cmpuint (list->len, ==, 0);
  g_assert_true (hb_callers_lookup_uid (fixture->callers, name, &uid));

  /* the peer leaves */
  g_dbus_connection_close_sync (peer, NULL, &error);
  g_assert_no_error (error);
  hb_harness_wait_until (fixture->h, has_vanished, &(Seen) { list, name });
  g_assert_false (vanished.cached_when_emitted);
  g_assert_false (hb_callers_lookup_uid (fixture->callers, name, &uid));
  g_assert_cmpuint (hb_callers_get_n_cached (fixture->callers), ==, 0);
  g_assert_false (contains (list, "org.heartbeat.TestCallers"));

  g_signal_handlers_disconnect_by_data (fixture->callers, &vanished);
}

/* A name that is not on the bus: an error, and nothing cached. */
static void
test_unknown_name (Fixture       *fixture,
                   gconstpointer  data)
{
  g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func (g_free);
  Answers answers = { list, 0, 0 };
  Asker asker = { &answers, "ghost" };
  guint32 uid;

  if (fixture->callers == NULL)
    return;
  hb_callers_resolve_uid (fixture->callers, ":1.999999", on_uid, &asker);
  wait_answers (fixture, &answers, 1);
  g_assert_cmpstr (list->pdata[0], ==, "ghost:error");
  g_assert_false (hb_callers_lookup_uid (fixture->callers, ":1.999999", &uid));
  g_assert_cmpuint (hb_callers_get_n_cached (fixture->callers), ==, 0);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/callers/resolve-in-order", Fixture, NULL,
              fixture_set_up, test_resolve_in_order, fixture_tear_down);
  g_test_add ("/callers/peer-vanished", Fixture, NULL,
              fixture_set_up, test_peer_vanished, fixture_tear_down);
  g_test_add ("/callers/unknown-name", Fixture, NULL,
              fixture_set_up, test_unknown_name, fixture_tear_down);
  return g_test_run ();
}
