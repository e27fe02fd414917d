/* bus-invariant.h: what hb-bus-filter and the fast Beat path read from a
 * message's bytes, held against GDBus's own decode of the same bytes
 *
 * Shared by test-bus-filter (crafted and mutated messages) and the
 * fuzz-bus-message target (any bytes). Each check works on an exact-size
 * copy, so a read past the end is an ASan error.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <string.h>

#include <gio/gio.h>

#include "hb-bus-filter.h"
#include "hb-dbus-fast-beat.h"
#include "heartbeat-values.h"

#define HB_PATH      "/org/heartbeat/Monitor1"
#define HB_INTERFACE "org.heartbeat.Monitor1"

/* GDBus's verdict on @blob */
static inline gboolean
gdbus_decodes (const guint8 *blob,
               gsize         len)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusMessage) message =
      g_dbus_message_new_from_blob ((guchar *) blob, len, G_DBUS_CAPABILITY_FLAGS_NONE, &error);

  return message != NULL;
}

/* The walker on an exact-size copy (a read past the end is an ASan
 * error); it may only accept what GDBus accepts. Returns its verdict. */
static inline gboolean
walker_decodes (const guint8 *blob,
                gsize         len)
{
  g_autofree guint8 *copy = g_memdup2 (blob, len);
  gboolean sure = hb_bus_filter_decodes (copy, len);

  if (sure && !gdbus_decodes (copy, len))
    {
      g_autoptr(GString) hex = g_string_new (NULL);

      for (gsize i = 0; i < len; i++)
        g_string_append_printf (hex, "%02x", copy[i]);
      g_error ("the walker accepts a message GDBus refuses: %s", hex->str);
    }
  return sure;
}

/* hb_bus_header_read() on an exact-size copy, against GDBus's decode of
 * the same bytes: where both read the message, they agree. Returns
 * whether the reader read it. */
static inline gboolean
header_agrees (const guint8 *blob,
               gsize         len)
{
  g_autofree guint8 *copy = g_memdup2 (blob, len);
  g_autoptr(GDBusMessage) message =
      len >= 16 ? g_dbus_message_new_from_blob (copy, len, G_DBUS_CAPABILITY_FLAGS_NONE, NULL) : NULL;
  HbBusHeader header;

  if (!hb_bus_header_read (copy, len, &header))
    return FALSE;
  if (message == NULL)
    return TRUE;
  g_assert_cmpint (header.type, ==, g_dbus_message_get_message_type (message));
  g_assert_cmpint (header.flags, ==, g_dbus_message_get_flags (message));
  g_assert_cmpuint (header.serial, ==, g_dbus_message_get_serial (message));
  g_assert_cmpstr (header.path, ==, g_dbus_message_get_path (message));
  g_assert_cmpstr (header.interface, ==, g_dbus_message_get_interface (message));
  g_assert_cmpstr (header.member, ==, g_dbus_message_get_member (message));
  g_assert_cmpstr (header.sender, ==, g_dbus_message_get_sender (message));
  g_assert_cmpstr (header.destination, ==, g_dbus_message_get_destination (message));
  /* GDBus gives "" for a message without one */
  g_assert_cmpstr (header.signature ? header.signature : "", ==, g_dbus_message_get_signature (message));
  g_assert_cmpuint (header.n_unix_fds, ==, g_dbus_message_get_num_unix_fds (message));
  return TRUE;
}

/* What the fast path took on a GVariant from GDBus before it read bytes:
 * the reference hb_fast_beat_read_call() is held to. */
static inline gboolean
reference_beat (GDBusMessage   *message,
                HbFastBeatCall *call)
{
  GVariant *body = g_dbus_message_get_body (message);
  g_autoptr(GVariant) details = NULL;
  g_autoptr(GVariant) value = NULL;
  const char *key;

  memset (call, 0, sizeof *call);
  if (g_dbus_message_get_message_type (message) != G_DBUS_MESSAGE_TYPE_METHOD_CALL ||
      g_dbus_message_get_num_unix_fds (message) != 0 ||
      g_dbus_message_get_sender (message) == NULL ||
      g_strcmp0 (g_dbus_message_get_path (message), HB_PATH) != 0 ||
      g_strcmp0 (g_dbus_message_get_interface (message), HB_INTERFACE) != 0 ||
      g_strcmp0 (g_dbus_message_get_member (message), "Beat") != 0 ||
      body == NULL || !g_variant_is_of_type (body, G_VARIANT_TYPE ("(sa{sv})")))
    return FALSE;
  g_variant_get (body, "(&s@a{sv})", &call->id, &details);
  if (!heartbeat_id_is_valid (call->id, NULL) || g_variant_n_children (details) > 1)
    return FALSE;
  if (g_variant_n_children (details) == 1)
    {
      g_variant_get_child (details, 0, "{&sv}", &key, &value);
      if (strcmp (key, "status") != 0 || !g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
        return FALSE;
      call->status = g_variant_get_string (value, NULL);
      if (heartbeat_text_check (call->status, strlen (call->status), HEARTBEAT_STATUS_MAX_LENGTH) != HEARTBEAT_TEXT_OK)
        return FALSE;
    }
  call->sender = g_dbus_message_get_sender (message);
  call->serial = g_dbus_message_get_serial (message);
  call->no_reply = (g_dbus_message_get_flags (message) & G_DBUS_MESSAGE_FLAGS_NO_REPLY_EXPECTED) != 0;
  return TRUE;
}

/* hb_fast_beat_read_call() on an exact-size copy of @blob: if it takes
 * the call, GDBus decodes the bytes and the reference takes the same
 * call. Returns whether it took it. */
static inline gboolean
fast_read_agrees (const guint8 *blob,
                  gsize         len)
{
  g_autofree guint8 *copy = g_memdup2 (blob, len);
  g_autoptr(GDBusMessage) message =
      len >= 16 ? g_dbus_message_new_from_blob (copy, len, G_DBUS_CAPABILITY_FLAGS_NONE, NULL) : NULL;
  HbFastBeatCall call, expected;

  if (!hb_fast_beat_read_call (copy, len, HB_PATH, HB_INTERFACE, &call))
    return FALSE;
  if (message == NULL)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GString) hex = g_string_new (NULL);

      g_dbus_message_new_from_blob (copy, len, G_DBUS_CAPABILITY_FLAGS_NONE, &error);
      for (gsize i = 0; i < len; i++)
        g_string_append_printf (hex, "%02x", copy[i]);
      g_error ("the fast path reads a Beat GDBus refuses (%s): %s", error->message, hex->str);
    }
  g_assert_true (reference_beat (message, &expected));
  g_assert_cmpstr (call.sender, ==, expected.sender);
  g_assert_cmpstr (call.id, ==, expected.id);
  g_assert_cmpstr (call.status, ==, expected.status);
  g_assert_cmpuint (call.serial, ==, expected.serial);
  g_assert_cmpint (call.no_reply, ==, expected.no_reply);
  return TRUE;
}
