/* fuzz-invariant.h: what every fuzz target asserts of what was accepted
 *
 * A value the monitor keeps is later sent out on every front. So whatever
 * the monitor accepted must
 *
 *  - travel in a D-Bus message, wrapped as deeply as the deepest reply
 *    wraps metadata (ListAgents: a tuple of an array of a{sv}, a variant),
 *    and come back from the wire equal (g_dbus_message_to_blob, then
 *    g_dbus_message_new_from_blob);
 *  - be written as JSON (hb_json_from_variant) and read back
 *    (hb_json_parse, hb_json_to_variant) to a value that is written as the
 *    same JSON text.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "hb-json.h"
#include "heartbeat-monitor.h"

static inline char *
hb_fuzz_json_text (GVariant *value)
{
  g_autoptr(JsonNode) node = hb_json_from_variant (value);

  return json_to_string (node, FALSE);
}

static inline void
hb_fuzz_assert_round_trips (const char *id,
                            GVariant   *metadata)
{
  g_autoptr(GDBusMessage) message = g_dbus_message_new_method_call (":1.1", "/a", "a.b", "c");
  g_autoptr(GDBusMessage) back = NULL;
  g_autoptr(GVariant) body = NULL;
  g_autoptr(GVariant) read_back = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree guchar *blob = NULL;
  g_autofree char *text = NULL;
  g_autofree char *text_again = NULL;
  gsize length;

  g_assert_true (heartbeat_metadata_is_valid (metadata, NULL));

  /* D-Bus */
  body = g_variant_ref_sink (g_variant_new_parsed ("([{'id': <%s>, 'metadata': <%@a{sv}>}],)", id, metadata));
  g_dbus_message_set_body (message, body);
  blob = g_dbus_message_to_blob (message, &length, G_DBUS_CAPABILITY_FLAGS_NONE, &error);
  g_assert_no_error (error);
  back = g_dbus_message_new_from_blob (blob, length, G_DBUS_CAPABILITY_FLAGS_NONE, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (g_dbus_message_get_body (back), body));

  /* JSON */
  text = hb_fuzz_json_text (metadata);
  node = hb_json_parse (text, strlen (text), &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (node));
  read_back = hb_json_to_variant (node, &error);
  g_assert_no_error (error);
  text_again = hb_fuzz_json_text (read_back);
  g_assert_cmpstr (text, ==, text_again);
}

/* Every agent the monitor holds. */
static inline void
hb_fuzz_assert_monitor_round_trips (HeartbeatMonitor *monitor)
{
  g_autoptr(GPtrArray) agents = heartbeat_monitor_list_agents (monitor);

  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);
      GVariant *metadata = heartbeat_agent_get_metadata (agent);

      if (metadata)
        hb_fuzz_assert_round_trips (heartbeat_agent_get_id (agent), metadata);
    }
}
