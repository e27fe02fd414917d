/* test-faults.c: heartbeatd under faults it must survive
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <string.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>

#include "hb-harness.h"

typedef struct {
  HbHarness *h;
  char      *mount_point;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->h = hb_harness_new ();
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_pointer (&f->h, hb_harness_free);   /* the daemon first */
  if (f->mount_point)
    umount2 (f->mount_point, MNT_DETACH);
  g_free (f->mount_point);
}


static JsonObject *
health (SoupSession *session, guint16 port, JsonParser *parser)
{
  g_autofree char *uri = g_strdup_printf ("http://127.0.0.1:%u/health", port);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", uri);
  g_autoptr(GBytes) body = soup_session_send_and_read (session, msg, NULL, NULL);
  g_autoptr(GError) error = NULL;

  g_assert_nonnull (body);
  json_parser_load_from_data (parser, g_bytes_get_data (body, NULL), (gssize) g_bytes_get_size (body), &error);
  g_assert_no_error (error);
  return json_node_get_object (json_parser_get_root (parser));
}

static const char *
status_problem (HbHarness *h, GVariant **holder)
{
  *holder = hb_call_ok (h, NULL, "GetStatus", NULL, "(a{sv})");
  {
    g_autoptr(GVariant) dict = g_variant_get_child_value (*holder, 0);
    return hb_dict_string (dict, "problem");
  }
}

/* Waits for a STATUS= whose text contains (or, with @absent, lacks) @part. */
static void
wait_status_line (HbHarness *h, guint *cursor, const char *part, gboolean absent)
{
  for (;;)
    {
      const HbNotifyMessage *message = hb_wait_notify (h, cursor, "STATUS=");
      g_autofree char *value = NULL;

      hb_notify_message_get (message, "STATUS=", &value);
      if ((strstr (value, part) != NULL) != absent)
        return;
    }
}

/* The state directory fills up: the daemon keeps serving, says so in
 * /health, GetStatus and STATUS=, and writes again once it can. */
static void
test_state_disk_full (Fixture *f, gconstpointer data)
{
  g_autoptr(SoupSession) session = soup_session_new_with_options ("timeout", 5, NULL);
  g_autofree char *filler = NULL;
  g_autofree char *state_file = NULL;
  g_autofree char *saved = NULL;
  g_autofree char *block = g_malloc0 (4096);
  g_autoptr(GVariant) holder = NULL;
  g_autoptr(GVariant) reply = NULL;
  JsonObject *o;
  guint cursor;
  FILE *fill;

  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  f->mount_point = g_build_filename (f->h->tmpdir, "tiny", NULL);
  g_assert_cmpint (g_mkdir (f->mount_point, 0700), ==, 0);
  if (mount ("hb-test", f->mount_point, "tmpfs", 0, "size=256k,mode=0700") != 0)
    {
      g_test_skip_printf ("cannot mount a tmpfs (%s): not root?", g_strerror (errno));
      g_clear_pointer (&f->mount_point, g_free);
      return;
    }
  g_free (f->h->state_dir);
  f->h->state_dir = g_build_filename (f->mount_point, "state", NULL);
  state_file = g_build_filename (f->h->state_dir, "agents.db", NULL);
  hb_harness_write_config (f->h, hb_default_config);
  f->h->http_port = hb_free_port ();
  hb_harness_start_daemon (f->h, 0);

  reply = hb_call_ok (f->h, NULL, "Register", g_variant_new_parsed ("('before', @a{sv} {})"), "()");
  g_clear_pointer (&reply, g_variant_unref);
  g_assert_true (g_file_test (state_file, G_FILE_TEST_EXISTS));

  /* fill the disk */
  filler = g_build_filename (f->mount_point, "filler", NULL);
  fill = g_fopen (filler, "w");
  g_assert_nonnull (fill);
  while (fwrite (block, 1, 4096, fill) == 4096 && fflush (fill) == 0)
    ;
  fclose (fill);

  /* a registration cannot be saved, so it is refused and not kept (an
   * acknowledged one would be lost at the next kill -9); an
   * unregistration likewise; the problem is reported everywhere */
  cursor = hb_harness_notify_cursor (f->h);
  hb_call_error (f->h, NULL, "Register", g_variant_new_parsed ("('during', {'task-id': <%s>})",
                                                               "a task long enough to need a few more bytes on disk"),
                 "NotSaved");
  hb_call_error (f->h, NULL, "GetAgent", g_variant_new ("(s)", "during"), "NotFound");
  hb_call_error (f->h, NULL, "Unregister", g_variant_new ("(s)", "before"), "NotSaved");
  hb_call_error (f->h, NULL, "MarkIdle", g_variant_new ("(s)", "before"), "NotSaved");
  wait_status_line (f->h, &cursor, "Cannot save", FALSE);
  g_assert_nonnull (strstr (status_problem (f->h, &holder), "Cannot save the agents"));
  g_clear_pointer (&holder, g_variant_unref);
  {
    g_autoptr(JsonParser) parser = json_parser_new ();
    o = health (session, f->h->http_port, parser);
    g_assert_cmpstr (json_object_get_string_member (o, "status"), ==, "degraded");
    g_assert_nonnull (strstr (json_object_get_string_member (o, "problem"), "Cannot save"));
  }
  /* and it keeps serving */
  reply = hb_call_ok (f->h, NULL, "GetAgent", g_variant_new ("(s)", "before"), "(a{sv})");
  g_clear_pointer (&reply, g_variant_unref);
  reply = hb_call_ok (f->h, NULL, "Beat", g_variant_new_parsed ("('before', @a{sv} {})"), "()");
  g_clear_pointer (&reply, g_variant_unref);

  /* room again: the next write succeeds and the problem is gone */
  g_assert_cmpint (g_unlink (filler), ==, 0);
  reply = hb_call_ok (f->h, NULL, "Register", g_variant_new_parsed ("('after', @a{sv} {})"), "()");
  g_clear_pointer (&reply, g_variant_unref);
  wait_status_line (f->h, &cursor, "Cannot save", TRUE);
  g_assert_cmpstr (status_problem (f->h, &holder), ==, "");
  {
    g_autoptr(JsonParser) parser = json_parser_new ();
    o = health (session, f->h->http_port, parser);
    g_assert_cmpstr (json_object_get_string_member (o, "status"), ==, "ok");
  }
  saved = hb_harness_saved_agents (f->h);
  g_assert_cmpstr (saved, ==, "after before");

  /* killed at once: everything acknowledged is back, nothing else */
  hb_harness_signal_daemon (f->h, SIGKILL);
  hb_harness_wait_exit (f->h, f->h->daemon, HB_WAIT_MS);
  hb_harness_start_daemon (f->h, 0);
  reply = hb_call_ok (f->h, NULL, "GetAgent", g_variant_new ("(s)", "before"), "(a{sv})");
  g_clear_pointer (&reply, g_variant_unref);
  reply = hb_call_ok (f->h, NULL, "GetAgent", g_variant_new ("(s)", "after"), "(a{sv})");
  g_clear_pointer (&reply, g_variant_unref);
  hb_call_error (f->h, NULL, "GetAgent", g_variant_new ("(s)", "during"), "NotFound");
}

/* A method call to the daemon that dbus-daemon (1.14) forwards and GDBus
 * (2.74) cannot decode ("Value nested too deeply"): 40 variants around an
 * empty array whose type nests 32 arrays. dbus-daemon judges the nesting
 * of the values (the empty array has none) and each signature alone (32
 * arrays are allowed); GDBus adds the depth of a variant's type to the
 * depth it is at, over its limit of 64. GDBus closes the connection that
 * receives such a message. */
static GDBusMessage *
undecodable_call (void)
{
  GDBusMessage *message = g_dbus_message_new_method_call (HB_NAME, HB_PATH, HB_IFACE, "Beat");
  g_autofree char *type = g_strdup_printf ("%s%s", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "i");   /* 32 arrays */
  GVariant *value = g_variant_new_array (g_variant_type_element (G_VARIANT_TYPE (type)), NULL, 0);

  for (guint i = 0; i < 40; i++)
    value = g_variant_new_variant (value);
  g_dbus_message_set_body (message, g_variant_new_tuple (&value, 1));
  g_dbus_message_set_flags (message, G_DBUS_MESSAGE_FLAGS_NO_REPLY_EXPECTED);
  return message;
}

/* test-faults --send-undecodable ADDRESS COUNT [INTERVAL_MS]: the attacker
 * of test_undecodable_flood, run as another uid (and the sender of
 * bench/hostile.py's dbus-garbage attack, HB_GARBAGE_SENDER). Sends COUNT
 * undecodable calls as fast as the bus takes them (or one every
 * INTERVAL_MS), then one GetStatus: its answer
 * comes after the daemon read them all (the bus keeps one sender's order).
 * Exits 0 if that call was answered. */
static int
send_undecodable (const char *address,
                  guint       count,
                  guint       interval_ms)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) connection = NULL;
  g_autoptr(GDBusMessage) message = undecodable_call ();
  g_autoptr(GVariant) reply = NULL;

  connection = g_dbus_connection_new_for_address_sync (address,
                                                       G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                       G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                       NULL, NULL, &error);
  if (connection == NULL)
    {
      g_printerr ("attacker: %s\n", error->message);
      return 2;
    }
  for (guint i = 0; i < count; i++)
    {
      g_autoptr(GDBusMessage) copy = g_dbus_message_copy (message, &error);

      if (copy == NULL ||
          !g_dbus_connection_send_message (connection, copy, G_DBUS_SEND_MESSAGE_FLAGS_NONE, NULL, &error))
        {
          g_printerr ("attacker: message %u: %s\n", i, error->message);
          return 2;
        }
      /* a bounded queue: the bus takes them as fast as it can */
      if ((interval_ms > 0 || i % 64 == 63) && !g_dbus_connection_flush_sync (connection, NULL, &error))
        {
          g_printerr ("attacker: %s\n", error->message);
          return 2;
        }
      if (interval_ms > 0)
        g_usleep (interval_ms * 1000);   /* the attacker's pace, not a test's wait */
    }
  reply = g_dbus_connection_call_sync (connection, HB_NAME, HB_PATH, HB_IFACE, "GetStatus", NULL,
                                       G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE,
                                       60000, NULL, &error);
  if (reply == NULL)
    {
      g_printerr ("attacker: GetStatus after %u messages: %s\n", count, error->message);
      return 1;
    }
  return 0;
}

static void
on_name_owner_changed (GDBusConnection *connection,
                       const char      *sender,
                       const char      *path,
                       const char      *interface,
                       const char      *signal,
                       GVariant        *parameters,
                       gpointer         user_data)
{
  guint *changes = user_data;

  g_test_message ("NameOwnerChanged%s", g_variant_print (parameters, FALSE));
  (*changes)++;
}

static int
compare_gint64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return x < y ? -1 : x > y;
}

/* Another uid floods the daemon with calls GDBus cannot decode while a
 * client makes ordinary calls: the daemon keeps its connection and its
 * name (its owner never changes), and every ordinary call is answered.
 * HB_FLOOD_COUNT sets the number of messages (default 3000); the latency
 * of GetStatus meanwhile is logged, not judged. */
static void
test_undecodable_flood (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  const char *count_env = g_getenv ("HB_FLOOD_COUNT");
  guint count = count_env ? (guint) g_ascii_strtoull (count_env, NULL, 10) : 3000;
  g_autofree char *setpriv = g_find_program_in_path ("setpriv");
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *count_arg = g_strdup_printf ("%u", count);
  g_autofree char *owner_before = NULL;
  g_autofree char *owner_after = NULL;
  g_autoptr(GDBusConnection) other = NULL;
  g_autoptr(GArray) latencies = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GVariant) reply = NULL;
  guint changes = 0, calls = 0, subscription;
  HbChild *attacker;

  if (setpriv == NULL || self == NULL)
    {
      g_test_skip ("setpriv is not installed, or /proc/self/exe cannot be read");
      return;
    }
  if (!hb_harness_start_bus (h, HB_BUS_SYSTEM))
    return;
  hb_harness_write_config (h, hb_default_config);
  hb_harness_start_daemon (h, 0);
  reply = hb_call_ok (h, NULL, "Register", g_variant_new_parsed ("('A', @a{sv} {})"), "()");
  g_clear_pointer (&reply, g_variant_unref);

  subscription = g_dbus_connection_signal_subscribe (h->client, "org.freedesktop.DBus", "org.freedesktop.DBus",
                                                     "NameOwnerChanged", "/org/freedesktop/DBus", HB_NAME,
                                                     G_DBUS_SIGNAL_FLAGS_NONE, on_name_owner_changed,
                                                     &changes, NULL);
  owner_before = hb_harness_name_owner (h, HB_NAME);
  g_assert_nonnull (owner_before);
  other = hb_harness_connect (h);

  {
    const char *argv[] = { setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                           self, "--send-undecodable", h->bus_address, count_arg, NULL };

    attacker = hb_harness_spawn (h, argv);
  }
  /* ordinary calls, from two connections, for as long as the attack
   * lasts (it ends: a bounded count, then one call of its own) */
  while (!attacker->exited)
    {
      gint64 start = g_get_monotonic_time (), latency;

      reply = hb_call_ok (h, other, "GetStatus", NULL, "(a{sv})");
      latency = g_get_monotonic_time () - start;
      g_array_append_val (latencies, latency);
      g_clear_pointer (&reply, g_variant_unref);
      reply = hb_call_ok (h, NULL, "Beat", g_variant_new_parsed ("('A', @a{sv} {})"), "()");
      g_clear_pointer (&reply, g_variant_unref);
      calls += 2;
      while (g_main_context_iteration (NULL, FALSE))
        ;
    }
  g_assert_true (WIFEXITED (attacker->wait_status));
  g_assert_cmpint (WEXITSTATUS (attacker->wait_status), ==, 0);   /* it was answered after its flood */

  /* a round trip, then whatever signals came before its answer */
  owner_after = hb_harness_name_owner (h, HB_NAME);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_dbus_connection_signal_unsubscribe (h->client, subscription);
  g_assert_false (h->daemon->exited);
  g_assert_cmpstr (owner_after, ==, owner_before);
  g_assert_cmpuint (changes, ==, 0);
  g_variant_unref (hb_harness_get_agent (h, "A"));

  g_array_sort (latencies, compare_gint64);
  g_test_message ("%u undecodable messages from uid 65534; %u ordinary calls meanwhile, all answered; "
                  "GetStatus latency: median %" G_GINT64_FORMAT " us, p99 %" G_GINT64_FORMAT " us, "
                  "max %" G_GINT64_FORMAT " us",
                  count, calls,
                  latencies->len ? g_array_index (latencies, gint64, latencies->len / 2) : 0,
                  latencies->len ? g_array_index (latencies, gint64, latencies->len * 99 / 100) : 0,
                  latencies->len ? g_array_index (latencies, gint64, latencies->len - 1) : 0);
}

/* @n variants around an empty array whose type nests @arrays arrays */
static GVariant *
nested_variants (guint n,
                 guint arrays)
{
  g_autofree char *prefix = g_strnfill (arrays, 'a');
  g_autofree char *type = g_strconcat (prefix, "i", NULL);
  GVariant *value = g_variant_new_array (g_variant_type_element (G_VARIANT_TYPE (type)), NULL, 0);

  for (guint i = 0; i < n; i++)
    value = g_variant_new_variant (value);
  return value;
}

/* A call to the daemon, without a reply. */
static void
send_no_reply (GDBusConnection *connection,
               GDBusMessage    *message)
{
  g_autoptr(GError) error = NULL;

  g_dbus_message_set_flags (message, G_DBUS_MESSAGE_FLAGS_NO_REPLY_EXPECTED);
  g_assert_true (g_dbus_connection_send_message (connection, message, G_DBUS_SEND_MESSAGE_FLAGS_NONE,
                                                 NULL, &error));
  g_assert_no_error (error);
}

/* Where a variant can nest deeper than GDBus decodes, in a message
 * dbus-daemon forwards: in the body (undecodable_call), in a variant of
 * Beat's a{sv} metadata, in a header field the bus does not know. The bus
 * filter proves every ordinary message decodable without decoding it
 * (hb_bus_filter_decodes()) and decodes the others itself: each of these
 * is dropped there, so the daemon keeps its connection and its name, and
 * the sender's next call is answered (the bus keeps one sender's order).
 * A Beat whose metadata nests variants within GDBus's limits is decoded
 * and answered. The metadata case fails if the filter trusts its walker
 * past GDBus's depth limit. */
static void
test_undecodable_kinds (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GDBusConnection) other = NULL;
  g_autofree char *owner_before = NULL;
  g_autoptr(GVariant) reply = NULL;

  if (!hb_harness_start_bus (h, HB_BUS_SYSTEM))
    return;
  hb_harness_write_config (h, hb_default_config);
  hb_harness_start_daemon (h, 0);
  reply = hb_call_ok (h, NULL, "Register", g_variant_new_parsed ("('A', @a{sv} {})"), "()");
  g_clear_pointer (&reply, g_variant_unref);
  owner_before = hb_harness_name_owner (h, HB_NAME);
  g_assert_nonnull (owner_before);
  other = hb_harness_connect (h);

  for (guint kind = 0; kind < 4; kind++)
    {
      g_autoptr(GDBusMessage) message = NULL;
      g_autofree char *owner_after = NULL;
      g_autoptr(GError) error = NULL;

      switch (kind)
        {
        case 0:   /* in the body */
          message = undecodable_call ();
          break;
        case 1:   /* in Beat's metadata */
          {
            g_autoptr(GVariantDict) dict = g_variant_dict_new (NULL);

            g_variant_dict_insert_value (dict, "deep", nested_variants (40, 32));
            message = g_dbus_message_new_method_call (HB_NAME, HB_PATH, HB_IFACE, "Beat");
            g_dbus_message_set_body (message, g_variant_new ("(s@a{sv})", "A", g_variant_dict_end (dict)));
          }
          break;
        case 2:   /* in an unknown header field of an ordinary Beat */
          message = g_dbus_message_new_method_call (HB_NAME, HB_PATH, HB_IFACE, "Beat");
          g_dbus_message_set_body (message, g_variant_new_parsed ("('A', @a{sv} {})"));
          g_dbus_message_set_header (message, 100, nested_variants (40, 32));
          break;
        case 3:   /* nested, and decodable: it is decoded and answered */
          {
            g_autoptr(GVariantDict) dict = g_variant_dict_new (NULL);

            g_variant_dict_insert_value (dict, "deep", nested_variants (20, 8));
            reply = g_dbus_connection_call_sync (other, HB_NAME, HB_PATH, HB_IFACE, "Beat",
                                                 g_variant_new ("(s@a{sv})", "A", g_variant_dict_end (dict)),
                                                 NULL, G_DBUS_CALL_FLAGS_NONE, HB_WAIT_MS, NULL, &error);
            /* an answer, whichever: not a timeout, not a lost connection */
            g_assert_true (reply != NULL || g_dbus_error_is_remote_error (error));
            g_test_message ("Beat with 20 variants in its metadata: %s", reply ? "accepted" : error->message);
            g_clear_pointer (&reply, g_variant_unref);
          }
          break;
        }
      if (message)
        send_no_reply (other, message);
      /* answered after the daemon read the message */
      reply = hb_call_ok (h, other, "GetStatus", NULL, "(a{sv})");
      g_clear_pointer (&reply, g_variant_unref);
      owner_after = hb_harness_name_owner (h, HB_NAME);
      g_assert_cmpstr (owner_after, ==, owner_before);
      g_assert_false (h->daemon->exited);
    }
  reply = hb_call_ok (h, NULL, "Beat", g_variant_new_parsed ("('A', @a{sv} {})"), "()");
}

static GVariant *
bus_call (GDBusConnection *connection,
          const char      *method,
          GVariant        *parameters,
          const char      *reply_type)
{
  g_autoptr(GError) error = NULL;
  GVariant *reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                                 "org.freedesktop.DBus", method, parameters,
                                                 G_VARIANT_TYPE (reply_type), G_DBUS_CALL_FLAGS_NONE,
                                                 HB_WAIT_MS, NULL, &error);

  g_assert_no_error (error);
  return reply;
}

typedef struct {
  const char *squatter;   /* unique name of the connection that holds the name */
  const char *old_owner;  /* the daemon's lost connection */
} Reown;

/* The daemon exited, or it waits in the name's queue behind the squatter. */
static gboolean
daemon_queued (HbHarness *h, gpointer data)
{
  Reown *reown = data;
  g_autoptr(GVariant) reply = NULL;
  g_autofree const char **owners = NULL;

  if (h->daemon->exited)
    return TRUE;
  reply = bus_call (h->client, "ListQueuedOwners", g_variant_new ("(s)", HB_NAME), "(as)");
  g_variant_get (reply, "(^a&s)", &owners);
  return g_strv_length ((char **) owners) == 2 && g_strcmp0 (owners[0], reown->squatter) == 0 &&
         g_strcmp0 (owners[1], reown->old_owner) != 0;
}

/* The daemon exited, or it owns the name on a new connection. */
static gboolean
daemon_owns_again (HbHarness *h, gpointer data)
{
  Reown *reown = data;
  g_autofree char *owner = hb_harness_name_owner (h, HB_NAME);

  return h->daemon->exited ||
         (owner && g_strcmp0 (owner, reown->squatter) != 0 && g_strcmp0 (owner, reown->old_owner) != 0);
}

/* The daemon loses its connection while the name it owned goes to
 * another connection before the daemon asks for it again, as when the bus
 * has not yet let go of the lost connection's name: the daemon waits in
 * the queue rather than exit, and serves again once the name is free.
 * (The bus drops the daemon for a reply larger than its
 * max_message_size: the introspection data, over 4 KiB.) */
static void
test_reown_after_lost_connection (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GDBusConnection) squatter = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *old_owner = NULL;
  guint32 result = 0;
  Reown reown = { 0 };

  h->bus_extra_config = g_strdup ("  <limit name=\"max_message_size\">4096</limit>\n");
  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return;
  hb_harness_write_config (h, hb_default_config);
  hb_harness_start_daemon (h, 0);
  reply = hb_call_ok (h, NULL, "Register", g_variant_new_parsed ("('A', @a{sv} {})"), "()");
  g_clear_pointer (&reply, g_variant_unref);
  old_owner = hb_harness_name_owner (h, HB_NAME);
  g_assert_nonnull (old_owner);

  /* next in the name's queue */
  squatter = hb_harness_connect (h);
  reply = bus_call (squatter, "RequestName", g_variant_new ("(su)", HB_NAME, 0), "(u)");
  g_variant_get (reply, "(u)", &result);
  g_clear_pointer (&reply, g_variant_unref);
  g_assert_cmpuint (result, ==, 2);   /* DBUS_REQUEST_NAME_REPLY_IN_QUEUE */

  reply = g_dbus_connection_call_sync (h->client, HB_NAME, HB_PATH, "org.freedesktop.DBus.Introspectable",
                                       "Introspect", NULL, G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE,
                                       HB_WAIT_MS, NULL, &error);
  g_assert_null (reply);
  g_test_message ("Introspect: %s", error->message);

  reown.squatter = g_dbus_connection_get_unique_name (squatter);
  reown.old_owner = old_owner;
  hb_harness_wait_until (h, daemon_queued, &reown);
  g_assert_false (h->daemon->exited);

  reply = bus_call (squatter, "ReleaseName", g_variant_new ("(s)", HB_NAME), "(u)");
  g_clear_pointer (&reply, g_variant_unref);
  hb_harness_wait_until (h, daemon_owns_again, &reown);
  g_assert_false (h->daemon->exited);
  g_variant_unref (hb_harness_get_agent (h, "A"));
  reply = hb_call_ok (h, NULL, "GetStatus", NULL, "(a{sv})");
}

int
main (int argc, char **argv)
{
  if ((argc == 4 || argc == 5) && g_strcmp0 (argv[1], "--send-undecodable") == 0)
    return send_undecodable (argv[2], (guint) g_ascii_strtoull (argv[3], NULL, 10),
                             argc == 5 ? (guint) g_ascii_strtoull (argv[4], NULL, 10) : 0);

  g_test_init (&argc, &argv, NULL);
  g_test_add ("/faults/state-disk-full", Fixture, NULL, fixture_setup, test_state_disk_full, fixture_teardown);
  g_test_add ("/faults/undecodable-flood", Fixture, NULL, fixture_setup, test_undecodable_flood, fixture_teardown);
  g_test_add ("/faults/undecodable-kinds", Fixture, NULL, fixture_setup, test_undecodable_kinds, fixture_teardown);
  g_test_add ("/faults/reown-after-lost-connection", Fixture, NULL, fixture_setup,
              test_reown_after_lost_connection, fixture_teardown);
  return g_test_run ();
}
