/* hbctl-output.c: how hbctl says things
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib/gi18n.h>
#include <pwd.h>
#include <string.h>

#include "hb-duration.h"
#include "hbctl-output.h"

void
hbctl_print_error (const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_printerr ("hbctl: %s\n", message);
}

char *
hbctl_user_name (guint32 uid)
{
  struct passwd *pw = getpwuid (uid);

  return g_strdup (pw ? pw->pw_name : "?");
}


const char *
hbctl_dict_string (GVariant *dict, const char *key)
{
  const char *value = NULL;

  if (!g_variant_lookup (dict, key, "&s", &value))
    return "";
  return value;
}

/* A number under @key whatever its type: the daemon's dictionaries use
 * t and u, the same objects read back from HTTP JSON use x and d. */
guint64
hbctl_dict_uint64 (GVariant *dict, const char *key)
{
  g_autoptr(GVariant) value = g_variant_lookup_value (dict, key, NULL);

  if (value == NULL)
    return 0;
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64))
    return g_variant_get_uint64 (value);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT64))
    return (guint64) MAX (g_variant_get_int64 (value), 0);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
    return g_variant_get_uint32 (value);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT32))
    return (guint64) MAX (g_variant_get_int32 (value), 0);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_DOUBLE))
    return (guint64) MAX (g_variant_get_double (value), 0);
  return 0;
}

guint32
hbctl_dict_uint32 (GVariant *dict, const char *key)
{
  return (guint32) MIN (hbctl_dict_uint64 (dict, key), G_MAXUINT32);
}

void
hbctl_print_json (JsonNode *node)
{
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autofree char *text = NULL;

  json_generator_set_root (generator, node);
  json_generator_set_pretty (generator, TRUE);
  text = json_generator_to_data (generator, NULL);
  g_print ("%s\n", text);
}

/* A number member of a JSON object (an integer or a double), or
 * @fallback if it is missing or not a number */
double
hbctl_json_double (JsonObject *object, const char *name, double fallback)
{
  JsonNode *node = json_object_get_member (object, name);
  GType type = node && JSON_NODE_HOLDS_VALUE (node) ? json_node_get_value_type (node) : G_TYPE_INVALID;

  return type == G_TYPE_INT64 || type == G_TYPE_DOUBLE ? json_node_get_double (node) : fallback;
}

const char *
hbctl_state_color (const char *state)
{
  if (strcmp (state, "healthy") == 0)
    return "\033[32m";
  if (strcmp (state, "stale") == 0)
    return "\033[33m";
  if (strcmp (state, "error") == 0 || strcmp (state, "timed-out") == 0)
    return "\033[31m";
  return "\033[90m";
}

const char *
hbctl_state_symbol (const char *state)
{
  if (strcmp (state, "healthy") == 0)
    return "●";
  if (strcmp (state, "stale") == 0)
    return "◐";
  if (strcmp (state, "error") == 0 || strcmp (state, "timed-out") == 0)
    return "✖";
  return "○";
}

char *
hbctl_ago (guint64 then_usec)
{
  g_autofree char *d = hb_duration_format (g_get_real_time () - (gint64) then_usec);

  /* TRANSLATORS: a duration in the past, e.g. "3s ago" */
  return g_strdup_printf (_("%s ago"), d);
}

/* A declared agent that never beat: its last activity is the daemon's
 * start, which says nothing; it is shown as "never". */
gboolean
hbctl_never_beat (GVariant *agent)
{
  gboolean declared = FALSE;

  g_variant_lookup (agent, "declared", "b", &declared);
  return declared && hbctl_dict_uint64 (agent, "beats") == 0 && strcmp (hbctl_dict_string (agent, "state"), "no-heartbeat") == 0;
}

/* How long ago @agent was last active, or "never" */
char *
hbctl_last_seen (GVariant *agent)
{
  /* TRANSLATORS: the last activity of a declared agent that never beat */
  return hbctl_never_beat (agent) ? g_strdup (_("never")) : hbctl_ago (hbctl_dict_uint64 (agent, "last-activity-at-usec"));
}

/* A size as systemctl prints one: 512B, 1.5K, 12.3M, 1.2G (powers of
 * 1024). */
char *
hbctl_format_bytes (guint64 bytes)
{
  static const char units[] = "KMGTPE";
  double value = (double) bytes;
  int unit = -1;

  if (bytes < 1024)
    return g_strdup_printf ("%" G_GUINT64_FORMAT "B", bytes);
  while (value >= 1024 && unit < (int) sizeof units - 2)
    {
      value /= 1024;
      unit++;
    }
  /* one decimal below 100, none above: 9.8M, 12.3M, 123M */
  return value < 100 ? g_strdup_printf ("%.1f%c", value, units[unit])
                    : g_strdup_printf ("%.0f%c", value, units[unit]);
}

/* The agent's unit's CPU time and memory as table cells: "-" when not
 * known (no unit, or systemd does not account for it). */
char *
hbctl_unit_cpu_text (HeartbeatAgentInfo *info)
{
  guint64 usec = 0;

  if (!heartbeat_agent_info_get_unit_cpu_usec (info, &usec))
    return g_strdup ("-");
  return hb_duration_format ((gint64) MIN (usec, (guint64) G_MAXINT64));
}

char *
hbctl_unit_memory_text (HeartbeatAgentInfo *info)
{
  guint64 bytes = 0;

  if (!heartbeat_agent_info_get_unit_memory_bytes (info, &bytes))
    return g_strdup ("-");
  return hbctl_format_bytes (bytes);
}

/* A point in time, local, and how long ago */
char *
hbctl_format_time (guint64 realtime_usec)
{
  g_autoptr(GDateTime) t = g_date_time_new_from_unix_local ((gint64) (realtime_usec / G_USEC_PER_SEC));
  g_autofree char *when = t ? g_date_time_format (t, "%Y-%m-%d %H:%M:%S %Z") : g_strdup ("?");
  g_autofree char *since = hbctl_ago (realtime_usec);

  return g_strdup_printf ("%s (%s)", when, since);
}
