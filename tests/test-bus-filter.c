/* test-bus-filter.c: hb_bus_filter_decodes() says "GDBus decodes this"
 * only of messages GDBus does decode, and says it of ordinary ones; what
 * hb_bus_header_read() and the fast Beat path's hb_fast_beat_read_call()
 * read from the bytes is what GDBus decodes
 *
 * The bus filter skips g_dbus_message_new_from_blob() for the messages
 * hb_bus_filter_decodes() accepts, so one it accepts wrongly would reach
 * GDBus undecodable and cut the daemon from the bus. Every check here
 * compares the walker with GDBus itself on the same bytes: crafted
 * messages at and past GDBus's depth limits, and a few hundred thousand
 * mutations of ordinary ones (a fixed seed).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include <gio/gunixfdlist.h>

#include "bus-invariant.h"

static guint8 *
blob_of (GDBusMessage           *message,
         GDBusMessageByteOrder   order,
         gsize                  *len)
{
  g_autoptr(GError) error = NULL;
  guint8 *blob;

  g_dbus_message_set_serial (message, 7);
  g_dbus_message_set_byte_order (message, order);
  blob = g_dbus_message_to_blob (message, len, G_DBUS_CAPABILITY_FLAGS_NONE, &error);
  g_assert_no_error (error);
  return blob;
}

static GDBusMessage *
beat_call (GVariant *metadata)
{
  GDBusMessage *message = g_dbus_message_new_method_call ("org.heartbeat.Monitor1", "/org/heartbeat/Monitor1",
                                                          "org.heartbeat.Monitor1", "Beat");

  g_dbus_message_set_sender (message, ":1.42");
  g_dbus_message_set_body (message, g_variant_new ("(s@a{sv})", "agent-1", metadata));
  return message;
}

/* Ordinary messages, of each type and both byte orders. */
static GPtrArray *
ordinary_messages (void)
{
  GPtrArray *messages = g_ptr_array_new_with_free_func (g_object_unref);
  GDBusMessage *call, *message;
  g_autoptr(GError) error = NULL;

  g_ptr_array_add (messages, beat_call (g_variant_new_parsed ("@a{sv} {}")));
  g_ptr_array_add (messages, beat_call (g_variant_new_parsed ("{'status': <'running'>}")));
  g_ptr_array_add (messages, beat_call (g_variant_new_parsed (
      "{'status': <'running: 3 of 4 jobs, é'>, 'progress': <@d 0.5>, 'count': <@x -3>,"
      " 'flags': <[true, false]>, 'bytes': <b'abc'>, 'words': <['a', 'b']>,"
      " 'path': <objectpath '/a/b'>, 'sig': <signature 'a{sv}'>, 'nested': <<<@q 7>>>,"
      " 'empty': <@a(sv) []>, 'dict': <{'k': <@u 1>}>, 'tuple': <(@y 1, @n 2, 'x')>,"
      " 'deep-array': <@aaaai []>, 'h': <@h 0>}")));
  call = g_dbus_message_new_method_call (NULL, "/org/freedesktop/DBus", "org.freedesktop.DBus.Peer", "Ping");
  g_dbus_message_set_serial (call, 3);
  g_ptr_array_add (messages, call);
  message = g_dbus_message_new_method_reply (call);
  g_dbus_message_set_body (message, g_variant_new_parsed ("(@a{sv} {'a': <1>}, [@ay [], [@y 2]])"));
  g_ptr_array_add (messages, message);
  message = g_dbus_message_new_method_error_literal (call, "org.heartbeat.Monitor1.Error.NotFound", "No agent “x”");
  g_ptr_array_add (messages, message);
  message = g_dbus_message_new_signal ("/org/freedesktop/DBus", "org.freedesktop.DBus", "NameOwnerChanged");
  g_dbus_message_set_body (message, g_variant_new ("(sss)", "org.heartbeat.Monitor1", "", ":1.3"));
  g_ptr_array_add (messages, message);
  message = g_dbus_message_new_method_call (NULL, "/org/heartbeat/Monitor1", NULL, "GetStatus");
  g_dbus_message_set_header (message, 200, g_variant_new_parsed ("<[<(1, 'a')>]>"));   /* an unknown field */
  g_ptr_array_add (messages, message);
  return messages;
}

static void
test_ordinary_messages (void)
{
  g_autoptr(GPtrArray) messages = ordinary_messages ();

  for (guint i = 0; i < messages->len; i++)
    for (guint order = 0; order < 2; order++)
      {
        gsize len;
        g_autofree guint8 *blob =
            blob_of (messages->pdata[i], order ? G_DBUS_MESSAGE_BYTE_ORDER_BIG_ENDIAN
                                               : G_DBUS_MESSAGE_BYTE_ORDER_LITTLE_ENDIAN, &len);

        g_assert_true (gdbus_decodes (blob, len));
        if (!walker_decodes (blob, len))
          g_error ("the walker does not prove message %u (%s) decodable", i, order ? "B" : "l");
        g_assert_true (header_agrees (blob, len));
      }
}

/* @n variants around @inner (taken) */
static GVariant *
wrap (GVariant *inner,
      guint     n)
{
  for (guint i = 0; i < n; i++)
    inner = g_variant_new_variant (inner);
  return inner;
}

static GVariant *
empty_nested_array (guint arrays)
{
  g_autofree char *type = g_strnfill (arrays, 'a');
  g_autofree char *full = g_strconcat (type, "i", NULL);

  return g_variant_new_array (g_variant_type_element (G_VARIANT_TYPE (full)), NULL, 0);
}

/* Both say the same, at each depth around GDBus's limits: variants in the
 * body, in Beat's metadata, in an unknown header field, around values and
 * around empty arrays whose type nests deep. The walker is exact there. */
static void
test_depth_limits (void)
{
  guint accepted = 0, refused = 0;

  /* arrays: 0 for an int, 1 for a byte array (fixed-size elements), 2 for
   * an array of tuples, more for an empty array whose type nests that many */
  for (guint arrays = 0; arrays <= 32; arrays += arrays < 2 ? 1 : 6)
    for (guint n = 1; n <= 70; n++)
      for (guint where = 0; where < 3; where++)
        {
          g_autoptr(GDBusMessage) message = NULL;
          GVariant *inner = arrays == 0 ? g_variant_new_int32 (1)
                          : arrays == 1 ? g_variant_new_bytestring ("ab")
                          : arrays == 2 ? g_variant_new_parsed ("[(1, 'a'), (2, 'b')]")
                          : empty_nested_array (arrays);
          GVariant *value = wrap (inner, n);
          g_autofree guint8 *blob = NULL;
          gsize len;
          gboolean gdbus, walker;

          if (where == 0)
            {
              message = g_dbus_message_new_method_call (NULL, "/a", "a.b", "Beat");
              g_dbus_message_set_body (message, g_variant_new_tuple (&value, 1));
            }
          else if (where == 1)
            {
              g_autoptr(GVariantDict) dict = g_variant_dict_new (NULL);

              g_variant_dict_insert_value (dict, "k", value);
              message = beat_call (g_variant_dict_end (dict));
            }
          else
            {
              message = g_dbus_message_new_method_call (NULL, "/a", "a.b", "Beat");
              g_dbus_message_set_header (message, 100, value);
            }
          blob = blob_of (message, G_DBUS_MESSAGE_BYTE_ORDER_LITTLE_ENDIAN, &len);
          gdbus = gdbus_decodes (blob, len);
          walker = walker_decodes (blob, len);
          if (walker != gdbus)
            g_error ("%u variants around %u arrays (place %u): GDBus %s, the walker %s",
                     n, arrays, where, gdbus ? "decodes" : "refuses", walker ? "decodes" : "refuses");
          if (gdbus)
            accepted++;
          else
            refused++;
        }
  /* both sides of the limit were seen */
  g_assert_cmpuint (accepted, >, 100);
  g_assert_cmpuint (refused, >, 100);
}

/* Non-empty arrays nested in the body's own signature, around a byte array
 * or an int: past 32 a bus refuses them, but the walker stays exact up to
 * and past GDBus's limit (a fixed-size array at the last level of depth). */
static void
test_array_depth (void)
{
  guint accepted = 0, refused = 0;

  for (guint inner = 0; inner < 2; inner++)
    for (guint arrays = 56; arrays <= 68; arrays++)
      {
        g_autoptr(GDBusMessage) message = g_dbus_message_new_method_call (NULL, "/a", "a.b", "Beat");
        GVariant *value = inner ? g_variant_new_bytestring ("ab") : g_variant_new_int32 (1);
        g_autofree guint8 *blob = NULL;
        gsize len;
        gboolean gdbus;

        for (guint i = 0; i < arrays; i++)
          value = g_variant_new_array (NULL, &value, 1);
        g_dbus_message_set_body (message, g_variant_new_tuple (&value, 1));
        blob = blob_of (message, G_DBUS_MESSAGE_BYTE_ORDER_LITTLE_ENDIAN, &len);
        gdbus = gdbus_decodes (blob, len);
        g_assert_cmpint (walker_decodes (blob, len), ==, gdbus);
        if (gdbus)
          accepted++;
        else
          refused++;
      }
  g_assert_cmpuint (accepted, >, 0);
  g_assert_cmpuint (refused, >, 0);
}

/* test-faults' undecodable call: 40 variants around an empty array of
 * 32 arrays; dbus-daemon forwards it, GDBus refuses it */
static void
test_undecodable_call (void)
{
  g_autoptr(GDBusMessage) message = g_dbus_message_new_method_call ("org.heartbeat.Monitor1", "/org/heartbeat/Monitor1",
                                                                    "org.heartbeat.Monitor1", "Beat");
  GVariant *value = wrap (empty_nested_array (32), 40);
  g_autofree guint8 *blob = NULL;
  gsize len;

  g_dbus_message_set_body (message, g_variant_new_tuple (&value, 1));
  blob = blob_of (message, G_DBUS_MESSAGE_BYTE_ORDER_LITTLE_ENDIAN, &len);
  g_assert_false (gdbus_decodes (blob, len));
  g_assert_false (walker_decodes (blob, len));
}

/* Crafted header fields and bodies, each next to GDBus's verdict. */
static void
test_crafted (void)
{
  struct {
    const char *what;
    guint       code;
  } cases[] = {
    { "field 0", 0 },
    { "PATH as a string", 1 },
    { "MEMBER as an int", 3 },
    { "REPLY_SERIAL as a string", 5 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GDBusMessage) message = g_dbus_message_new_method_call (NULL, "/a", "a.b", "Beat");
      g_autofree guint8 *blob = NULL;
      gsize len;

      switch (cases[i].code)
        {
        case 0:
          g_dbus_message_set_header (message, 0, g_variant_new_string ("x"));
          break;
        case 1:
          g_dbus_message_set_header (message, G_DBUS_MESSAGE_HEADER_FIELD_PATH, g_variant_new_string ("/a"));
          break;
        case 3:
          g_dbus_message_set_header (message, G_DBUS_MESSAGE_HEADER_FIELD_MEMBER, g_variant_new_int32 (3));
          break;
        case 5:
          g_dbus_message_set_header (message, G_DBUS_MESSAGE_HEADER_FIELD_REPLY_SERIAL, g_variant_new_string ("5"));
          break;
        }
      blob = blob_of (message, G_DBUS_MESSAGE_BYTE_ORDER_LITTLE_ENDIAN, &len);
      /* later GLib refuses all of these; the walker leaves them to GDBus */
      g_test_message ("%s: GDBus %s", cases[i].what, gdbus_decodes (blob, len) ? "decodes" : "refuses");
      g_assert_false (walker_decodes (blob, len));
    }
}

/* Every prefix of an ordinary message, and neither the walker nor the
 * header reader reads past it (ASan); the walker accepts nothing GDBus
 * refuses. */
static void
test_truncated (void)
{
  g_autoptr(GPtrArray) messages = ordinary_messages ();

  for (guint i = 0; i < messages->len; i++)
    {
      gsize len;
      g_autofree guint8 *blob = blob_of (messages->pdata[i], G_DBUS_MESSAGE_BYTE_ORDER_LITTLE_ENDIAN, &len);

      for (gsize cut = 0; cut < len; cut++)
        {
          walker_decodes (blob, cut);
          header_agrees (blob, cut);
        }
    }
}

/* Random mutations of ordinary messages (1 to 4 bytes, favouring the
 * bytes that matter: lengths, signatures, type codes, UTF-8): whatever
 * the walker accepts, GDBus decodes; where the header reader and GDBus
 * both read one, they read the same. */
static void
test_mutations (void)
{
  g_autoptr(GPtrArray) messages = ordinary_messages ();
  g_autoptr(GRand) rand = g_rand_new_with_seed (20261207);
  const guint8 interesting[] = { 0, 1, 3, 4, 7, 8, 0x7f, 0x80, 0xc0, 0xed, 0xff, 'a', 'v', 's', 'o', 'g',
                                 '(', ')', '{', '}', 'y', 'i', 'u', 'b', 'x', 'd', '/', '.' };
  guint accepted = 0, tried = 0, read = 0;

  for (guint i = 0; i < messages->len; i++)
    for (guint order = 0; order < 2; order++)
      {
        gsize len;
        g_autofree guint8 *blob =
            blob_of (messages->pdata[i], order ? G_DBUS_MESSAGE_BYTE_ORDER_BIG_ENDIAN
                                               : G_DBUS_MESSAGE_BYTE_ORDER_LITTLE_ENDIAN, &len);
        g_autofree guint8 *copy = g_malloc (len);

        for (guint round = 0; round < 8000; round++)
          {
            guint changes = (guint) g_rand_int_range (rand, 1, 5);
            gssize needed;

            memcpy (copy, blob, len);
            for (guint c = 0; c < changes; c++)
              {
                gsize at = (gsize) g_rand_int_range (rand, 1, (gint32) len);   /* not the byte order */

                copy[at] = g_rand_boolean (rand) ? interesting[g_rand_int_range (rand, 0, sizeof interesting)]
                                                 : (guint8) g_rand_int_range (rand, 0, 256);
              }
            /* the filter only ever judges whole messages */
            needed = g_dbus_message_bytes_needed (copy, len, NULL);
            if (needed < 16 || (gsize) needed > len)
              continue;
            tried++;
            if (walker_decodes (copy, (gsize) needed))
              accepted++;
            read += header_agrees (copy, (gsize) needed);
          }
      }
  g_test_message ("%u mutated messages, %u proven decodable (and decoded by GDBus), %u headers read",
                  tried, accepted, read);
  g_assert_cmpuint (accepted, >, tried / 10);
  g_assert_cmpuint (read, >, tried / 10);
  g_assert_cmpuint (accepted, <, tried);
}

/* One of @n choices: one of the first @n_right (ways a Beat the fast
 * path takes may have it) unless @part is the one @vary names, then any. */
static const char *
choose (GRand              *rand,
        guint               vary,
        guint               part,
        const char * const *choices,
        gsize               n,
        gsize               n_right)
{
  return choices[g_rand_int_range (rand, 0, (gint32) (vary == part ? n : n_right))];
}

enum { PART_PATH, PART_INTERFACE, PART_MEMBER, PART_BODY, PART_ID, PART_DETAILS, PART_SENDER, PART_FDS, N_PARTS };

/* A random call near a Beat the fast path takes: at most one part (the
 * path, the interface, ... the file descriptors) drawn from every way a
 * caller could send it, right or wrong; the others right. */
static GDBusMessage *
random_beat_like (GRand *rand)
{
  static const char * const paths[] = { HB_PATH, "/org/heartbeat/Monitor1/x", "/" };
  static const char * const interfaces[] = { HB_INTERFACE, NULL, "org.heartbeat.Monitor2", "org.freedesktop.DBus.Peer" };
  static const char * const members[] = { "Beat", "Beats", "Register", "Ping" };
  static const char * const ids[] = { "agent-1", "a", "job.nightly_2", "", "-x", "a b", "a/b", "ä", "..",
      "a123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890"
      "12345678901234567890123456789012345678901234567890123456789012345678901234567890123456789" };
  static const char * const statuses[] = { "running", "ok", "ünïcödé", "", "line\nbreak", "tab\there", "\x7f" };
  static const char * const keys[] = { "status", "progress", "Status", "" };
  guint vary = (guint) g_rand_int_range (rand, 0, N_PARTS + 1);
  GDBusMessage *message = g_dbus_message_new_method_call (":1.1",
                                                          choose (rand, vary, PART_PATH, paths, G_N_ELEMENTS (paths), 1),
                                                          choose (rand, vary, PART_INTERFACE, interfaces, G_N_ELEMENTS (interfaces), 1),
                                                          choose (rand, vary, PART_MEMBER, members, G_N_ELEMENTS (members), 1));
  g_auto(GVariantBuilder) details = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  const char *id = choose (rand, vary, PART_ID, ids, G_N_ELEMENTS (ids), 3);
  guint n_details = (guint) g_rand_int_range (rand, 0, vary == PART_DETAILS ? 4 : 2);

  for (guint i = 0; i < n_details; i++)
    {
      const char *key = choose (rand, vary, PART_DETAILS, keys, G_N_ELEMENTS (keys), 1);
      guint kind = vary == PART_DETAILS ? (guint) g_rand_int_range (rand, 0, 4) : 2;

      if (kind == 0)
        g_variant_builder_add (&details, "{sv}", key, g_variant_new_int32 (3));
      else if (kind == 1)
        g_variant_builder_add (&details, "{sv}", key,
                               g_variant_new_take_string (g_strnfill ((gsize) g_rand_int_range (rand, 60, 1100), 'y')));
      else
        g_variant_builder_add (&details, "{sv}", key,
                               g_variant_new_string (choose (rand, vary, PART_DETAILS, statuses, G_N_ELEMENTS (statuses), 3)));
    }
  switch (vary == PART_BODY ? g_rand_int_range (rand, 0, 4) : 3)
    {
    case 0:
      g_dbus_message_set_body (message, g_variant_new ("(s)", id));
      break;
    case 1:
      g_dbus_message_set_body (message, g_variant_new ("(sa{sv}s)", id, &details, "more"));
      break;
    case 2:
      g_dbus_message_set_body (message, g_variant_new ("(sa{ss})", id, NULL));
      break;
    default:
      g_dbus_message_set_body (message, g_variant_new ("(sa{sv})", id, &details));
      break;
    }
  if (vary != PART_SENDER || g_rand_boolean (rand))
    g_dbus_message_set_sender (message, g_rand_boolean (rand) ? ":1.42" : ":1.7");
  if (vary == PART_FDS && g_rand_boolean (rand))
    {
      g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();

      g_assert_cmpint (g_unix_fd_list_append (fds, 0, NULL), ==, 0);
      g_dbus_message_set_unix_fd_list (message, fds);
    }
  if (g_rand_boolean (rand))
    g_dbus_message_set_flags (message, G_DBUS_MESSAGE_FLAGS_NO_REPLY_EXPECTED);
  return message;
}

/* Random Beat-like calls: the reader takes exactly what the reference
 * takes, the same call; mutations of their bytes: whatever it takes,
 * GDBus decodes and the reference takes the same. */
static void
test_fast_beat_read (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (20261208);
  guint taken = 0, mutated_taken = 0, mutated = 0;

  for (guint i = 0; i < 6000; i++)
    {
      g_autoptr(GDBusMessage) message = random_beat_like (rand);
      g_autoptr(GDBusMessage) decoded = NULL;
      GDBusMessageByteOrder order = g_rand_boolean (rand) ? G_DBUS_MESSAGE_BYTE_ORDER_BIG_ENDIAN
                                                          : G_DBUS_MESSAGE_BYTE_ORDER_LITTLE_ENDIAN;
      gsize len;
      g_autofree guint8 *blob = NULL;
      g_autofree guint8 *copy = NULL;
      HbFastBeatCall expected;
      gboolean took;
      g_autoptr(GError) error = NULL;

      g_dbus_message_set_serial (message, (guint32) g_rand_int_range (rand, 1, G_MAXINT32));
      g_dbus_message_set_byte_order (message, order);
      blob = g_dbus_message_to_blob (message, &len, G_DBUS_CAPABILITY_FLAGS_NONE, &error);
      g_assert_no_error (error);
      decoded = g_dbus_message_new_from_blob (blob, len, G_DBUS_CAPABILITY_FLAGS_NONE, NULL);
      g_assert_nonnull (decoded);

      took = fast_read_agrees (blob, len);
      g_assert_cmpint (took, ==, reference_beat (decoded, &expected));
      taken += took;

      copy = g_malloc (len);
      for (guint round = 0; round < 20; round++)
        {
          gssize needed;

          memcpy (copy, blob, len);
          for (guint c = (guint) g_rand_int_range (rand, 1, 4); c > 0; c--)
            copy[g_rand_int_range (rand, 1, (gint32) len)] = (guint8) g_rand_int_range (rand, 0, 256);
          needed = g_dbus_message_bytes_needed (copy, len, NULL);
          if (needed < 16 || (gsize) needed > len)
            continue;
          mutated++;
          mutated_taken += fast_read_agrees (copy, (gsize) needed);
        }
      for (gsize cut = 0; cut < len; cut += 3)
        g_assert_false (hb_fast_beat_read_call (blob, cut, HB_PATH, HB_INTERFACE, &expected) &&
                        !fast_read_agrees (blob, cut));
    }
  g_test_message ("6000 calls, %u taken; %u mutations, %u taken", taken, mutated, mutated_taken);
  g_assert_cmpuint (taken, >, 1000);
  g_assert_cmpuint (taken, <, 5000);
  g_assert_cmpuint (mutated_taken, >, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/bus-filter/ordinary-messages", test_ordinary_messages);
  g_test_add_func ("/bus-filter/depth-limits", test_depth_limits);
  g_test_add_func ("/bus-filter/array-depth", test_array_depth);
  g_test_add_func ("/bus-filter/undecodable-call", test_undecodable_call);
  g_test_add_func ("/bus-filter/crafted", test_crafted);
  g_test_add_func ("/bus-filter/truncated", test_truncated);
  g_test_add_func ("/bus-filter/mutations", test_mutations);
  g_test_add_func ("/bus-filter/fast-beat-read", test_fast_beat_read);
  return g_test_run ();
}
