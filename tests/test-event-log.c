/* test-event-log.c: the event log rotates daily and keeps `retention` files
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "hb-event-log.h"

static gint64 fake_now;

static gint64
fake_clock (gpointer user_data)
{
  return fake_now;
}

static gint64
at (const char *iso8601)
{
  g_autoptr(GDateTime) t = g_date_time_new_from_iso8601 (iso8601, NULL);

  return g_date_time_to_unix (t) * G_USEC_PER_SEC;
}

static guint
count_lines (const char *path)
{
  g_autofree char *contents = NULL;
  guint n = 0;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return 0;
  for (const char *p = contents; *p; p++)
    n += *p == '\n';
  return n;
}

static void
test_rotation_and_retention (void)
{
  g_autofree char *dir = g_dir_make_tmp ("hb-event-log-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "events.jsonl", NULL);
  g_autoptr(HeartbeatMonitor) monitor = heartbeat_monitor_new ();
  g_autoptr(HbEventLog) log = hb_event_log_new (monitor, path, 2);
  g_autoptr(GError) error = NULL;
  const char *days[] = { "2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23" };
  g_autofree char *contents = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GDir) listing = NULL;
  const char *name;

  hb_event_log_set_clock (log, fake_clock, NULL);
  for (gsize d = 0; d < G_N_ELEMENTS (days); d++)
    {
      g_autofree char *morning = g_strdup_printf ("%sT08:00:00Z", days[d]);
      g_autofree char *night = g_strdup_printf ("%sT23:59:59Z", days[d]);

      fake_now = at (morning);
      g_assert_true (heartbeat_monitor_post_event (monitor, "tick", NULL, &error));
      fake_now = at (night);
      g_assert_nonnull (heartbeat_monitor_register (monitor, days[d], NULL, &error));
      g_assert_no_error (error);
    }

  /* the current day in the file, two older days kept, the oldest gone */
  g_assert_cmpuint (count_lines (path), ==, 2);
  for (gsize d = 0; d < 3; d++)
    {
      g_autofree char *rotated = g_strdup_printf ("%s.%s", path, days[d]);

      g_assert_cmpint (g_file_test (rotated, G_FILE_TEST_EXISTS), ==, d >= 1);
      if (d >= 1)
        g_assert_cmpuint (count_lines (rotated), ==, 2);
    }

  /* every line is a JSON object with its time */
  g_file_get_contents (path, &contents, NULL, &error);
  {
    g_auto(GStrv) lines = g_strsplit (contents, "\n", -1);
    JsonObject *o;

    json_parser_load_from_data (parser, lines[0], -1, &error);
    g_assert_no_error (error);
    o = json_node_get_object (json_parser_get_root (parser));
    g_assert_cmpstr (json_object_get_string_member (o, "event"), ==, "event");
    g_assert_cmpstr (json_object_get_string_member (o, "type"), ==, "tick");
    g_assert_true (g_str_has_prefix (json_object_get_string_member (o, "time"), "2026-11-23T08:00:00"));
    json_parser_load_from_data (parser, lines[1], -1, &error);
    o = json_node_get_object (json_parser_get_root (parser));
    g_assert_cmpstr (json_object_get_string_member (o, "event"), ==, "registered");
    g_assert_cmpstr (json_object_get_string_member (o, "agent"), ==, "2026-11-23");
  }

  g_clear_object (&log);
  listing = g_dir_open (dir, 0, NULL);
  while ((name = g_dir_read_name (listing)) != NULL)
    {
      g_autofree char *child = g_build_filename (dir, name, NULL);
      g_unlink (child);
    }
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/event-log/rotation-and-retention", test_rotation_and_retention);
  return g_test_run ();
}
