/* hbctl-output.c: how hbctl says things
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib/gi18n.h>
#include <pwd.h>
#include <string.h>

#include "hb-duration.h"
#include "hbctl.h"
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

/* The states hbctl knows, most urgent last: their severity is their
 * index (heartbeat_agent_state_get_severity() in the daemon, whose
 * agent record says it as `severity`; this table is for a daemon that
 * does not). */
static const char *const known_states[] = {
  "healthy", "paused", "no-heartbeat", "stale", "error", "gone", "timed-out", NULL
};

const char *const *
hbctl_known_states (void)
{
  return known_states;
}

/* A state's severity: 0 healthy, 1 paused, 2 no-heartbeat, 3 stale,
 * 4 error, 5 gone, 6 timed-out; an unknown state counts as a problem (2). */
guint
hbctl_state_severity (const char *state)
{
  for (guint i = 0; known_states[i]; i++)
    if (g_strcmp0 (state, known_states[i]) == 0)
      return i;
  return 2;
}

/* The agent's severity: its record's `severity`, or its state's */
guint
hbctl_agent_severity (GVariant *agent)
{
  g_autoptr(GVariant) value = g_variant_lookup_value (agent, "severity", NULL);

  if (value)
    return hbctl_dict_uint32 (agent, "severity");
  return hbctl_state_severity (hbctl_dict_string (agent, "state"));
}

const char *
hbctl_state_color (const char *state)
{
  if (strcmp (state, "healthy") == 0)
    return "\033[32m";
  if (strcmp (state, "paused") == 0)
    return "\033[36m";
  if (strcmp (state, "stale") == 0 || strcmp (state, "no-heartbeat") == 0)
    return "\033[33m";
  if (strcmp (state, "error") == 0 || strcmp (state, "timed-out") == 0 || strcmp (state, "gone") == 0)
    return "\033[1;31m";
  return "\033[90m";
}

const char *
hbctl_state_symbol (const char *state)
{
  if (strcmp (state, "healthy") == 0)
    return "●";
  if (strcmp (state, "paused") == 0)
    return "‖";
  if (strcmp (state, "stale") == 0)
    return "◐";
  if (strcmp (state, "error") == 0 || strcmp (state, "timed-out") == 0)
    return "✖";
  return "○";
}

/* @text in the colour of @state when hbctl colours (newly allocated) */
char *
hbctl_colored (const char *state,
               const char *text)
{
  if (!opt.color)
    return g_strdup (text);
  return g_strdup_printf ("%s%s\033[0m", hbctl_state_color (state), text);
}

/* Text from an agent (its status, reason, metadata: anyone's words) as
 * one line a terminal shows as text: control characters become "?" (no
 * escape sequences reach whoever reads), line ends and tabs a space. */
char *
hbctl_printable_line (const char *text)
{
  GString *out = g_string_new (NULL);

  if (text == NULL || !g_utf8_validate (text, -1, NULL))
    return g_string_free (out, FALSE);
  for (const char *p = text; *p; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (c == '\n' || c == '\r' || c == '\t')
        g_string_append_c (out, ' ');
      else if (c < 0x20 || (c >= 0x7f && c < 0xa0))
        g_string_append_c (out, '?');
      else
        g_string_append_unichar (out, c);
    }
  return g_string_free (out, FALSE);
}

/* The agent's record's `reason` (why its state is what it is), one
 * printable line; "" when it has none (healthy and obvious, or an older
 * daemon). */
char *
hbctl_agent_reason (GVariant *agent)
{
  return hbctl_printable_line (hbctl_dict_string (agent, "reason"));
}

/* A number under @key whatever its numeric type, or @fallback */
double
hbctl_dict_double (GVariant   *dict,
                   const char *key,
                   double      fallback)
{
  g_autoptr(GVariant) value = g_variant_lookup_value (dict, key, NULL);

  if (value == NULL)
    return fallback;
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_DOUBLE))
    return g_variant_get_double (value);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT64))
    return (double) g_variant_get_int64 (value);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64))
    return (double) g_variant_get_uint64 (value);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT32))
    return g_variant_get_int32 (value);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
    return g_variant_get_uint32 (value);
  return fallback;
}

/* A metadata value as a person reads it: a string as it is (one line: a
 * text of several lines by its last non-empty one and how many there
 * are), a number plain, a boolean as true or false, a list of strings
 * joined by ", ", anything else as JSON; never GVariant text. Over HTTP
 * a value comes wrapped in a variant (av, a{sv}): it is unwrapped. */
char *
hbctl_format_value (GVariant *value)
{
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_VARIANT))
    {
      g_autoptr(GVariant) inner = g_variant_get_variant (value);

      return hbctl_format_value (inner);
    }
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
    {
      const char *text = g_variant_get_string (value, NULL);

      if (strchr (text, '\n'))
        {
          g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
          guint n = g_strv_length (lines), shown = 0;
          const char *last = "";

          for (guint i = 0; i < n; i++)
            if (*g_strstrip (lines[i]))
              {
                last = lines[i];
                shown++;
              }
          if (shown > 1)
            {
              g_autofree char *line = hbctl_printable_line (last);

              /* TRANSLATORS: a metadata text of several lines: its last line, then how many */
              return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "…%s (%u line)", "…%s (%u lines)", shown),
                                      line, shown);
            }
          return hbctl_printable_line (last);
        }
      return hbctl_printable_line (text);
    }
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_BOOLEAN))
    return g_strdup (g_variant_get_boolean (value) ? "true" : "false");
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_DOUBLE))
    {
      char buffer[G_ASCII_DTOSTR_BUF_SIZE];

      return g_strdup (g_ascii_formatd (buffer, sizeof buffer, "%.15g", g_variant_get_double (value)));
    }
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT16) || g_variant_is_of_type (value, G_VARIANT_TYPE_INT32) ||
      g_variant_is_of_type (value, G_VARIANT_TYPE_INT64))
    {
      gint64 n = g_variant_is_of_type (value, G_VARIANT_TYPE_INT16) ? g_variant_get_int16 (value)
                 : g_variant_is_of_type (value, G_VARIANT_TYPE_INT32) ? g_variant_get_int32 (value)
                 : g_variant_get_int64 (value);

      return g_strdup_printf ("%" G_GINT64_FORMAT, n);
    }
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_BYTE) || g_variant_is_of_type (value, G_VARIANT_TYPE_UINT16) ||
      g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32) || g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64))
    {
      guint64 n = g_variant_is_of_type (value, G_VARIANT_TYPE_BYTE) ? g_variant_get_byte (value)
                  : g_variant_is_of_type (value, G_VARIANT_TYPE_UINT16) ? g_variant_get_uint16 (value)
                  : g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32) ? g_variant_get_uint32 (value)
                  : g_variant_get_uint64 (value);

      return g_strdup_printf ("%" G_GUINT64_FORMAT, n);
    }
  /* a list of strings read from JSON (av) reads as one of D-Bus (as) */
  if (g_variant_is_of_type (value, G_VARIANT_TYPE ("av")))
    {
      g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
      gsize n = g_variant_n_children (value);
      gboolean strings = TRUE;

      for (gsize i = 0; i < n && strings; i++)
        {
          g_autoptr(GVariant) child = g_variant_get_child_value (value, i);
          g_autoptr(GVariant) inner = g_variant_get_variant (child);

          strings = g_variant_is_of_type (inner, G_VARIANT_TYPE_STRING);
          if (strings)
            g_strv_builder_add (b, g_variant_get_string (inner, NULL));
        }
      if (strings)
        {
          g_auto(GStrv) list = g_strv_builder_end (b);
          g_autofree char *joined = g_strjoinv (", ", list);

          return hbctl_printable_line (joined);
        }
    }
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING_ARRAY))
    {
      g_autofree const char **strings = g_variant_get_strv (value, NULL);
      g_autofree char *joined = g_strjoinv (", ", (char **) strings);

      return hbctl_printable_line (joined);
    }
  {
    g_autoptr(JsonNode) node = json_gvariant_serialize (value);
    g_autofree char *json = json_to_string (node, FALSE);

    return hbctl_printable_line (json);
  }
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

/* Whether @agent is a job: it has a schedule or runs, and counts runs,
 * not beats */
gboolean
hbctl_agent_is_job (GVariant *agent)
{
  g_autoptr(GVariant) last_run = g_variant_lookup_value (agent, "last-run", G_VARIANT_TYPE_VARDICT);

  return hbctl_dict_uint64 (agent, "next-due-usec") || hbctl_dict_uint64 (agent, "grace-usec") ||
         hbctl_dict_uint64 (agent, "late-due-usec") || (last_run && g_variant_n_children (last_run) > 0);
}

/* Whether @agent was registered and waits for its first beat */
gboolean
hbctl_agent_waiting (GVariant *agent)
{
  const char *state = hbctl_dict_string (agent, "state");

  return strcmp (state, "gone") != 0 && strcmp (state, "paused") != 0 && hbctl_dict_uint64 (agent, "beats") == 0 &&
         !hbctl_agent_is_job (agent) && !hbctl_never_beat (agent);
}

/* How long @agent's current work has run, or NULL when nothing runs: it
 * is gone, paused or idle, waits for its first beat, never started, or is
 * a job whose last run ended */
char *
hbctl_agent_running (GVariant *agent)
{
  const char *state = hbctl_dict_string (agent, "state");

  g_autoptr(GVariant) last_run = g_variant_lookup_value (agent, "last-run", G_VARIANT_TYPE_VARDICT);
  const char *result = NULL;

  if (strcmp (state, "gone") == 0 || strcmp (state, "paused") == 0 || strcmp (state, "no-heartbeat") == 0 ||
      strcmp (hbctl_dict_string (agent, "status"), "idle") == 0 || hbctl_agent_waiting (agent))
    return NULL;
  /* a job between runs (its last one ended, even in failure) runs nothing */
  if (last_run && g_variant_lookup (last_run, "result", "&s", &result) && strcmp (result, "running") != 0)
    return NULL;
  return hb_duration_format ((gint64) MIN (hbctl_dict_uint64 (agent, "running-usec"), (guint64) G_MAXINT64));
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
