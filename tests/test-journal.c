/* test-journal.c: heartbeatd's structured log entries
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "hb-journal.h"

/* One captured entry: the fields the journal would get. */
typedef struct {
  GLogLevelFlags level;
  char          *message_id;
  char          *agent_id;
  char          *priority;
  char          *message;
} Entry;

static GArray *entries;

static void
entry_clear (Entry *e)
{
  g_free (e->message_id);
  g_free (e->agent_id);
  g_free (e->priority);
  g_free (e->message);
}

static char *
field_string (const GLogField *field)
{
  return field->length < 0 ? g_strdup (field->value) : g_strndup (field->value, (gsize) field->length);
}

static GLogWriterOutput
capture_writer (GLogLevelFlags   level,
                const GLogField *fields,
                gsize            n_fields,
                gpointer         user_data)
{
  Entry e = { level, NULL, NULL, NULL, NULL };

  for (gsize i = 0; i < n_fields; i++)
    {
      if (strcmp (fields[i].key, "MESSAGE_ID") == 0)
        e.message_id = field_string (&fields[i]);
      else if (strcmp (fields[i].key, "AGENT_ID") == 0)
        e.agent_id = field_string (&fields[i]);
      else if (strcmp (fields[i].key, "PRIORITY") == 0)
        e.priority = field_string (&fields[i]);
      else if (strcmp (fields[i].key, "MESSAGE") == 0)
        e.message = field_string (&fields[i]);
    }
  g_array_append_val (entries, e);
  return G_LOG_WRITER_HANDLED;
}

static gint64 fake_now;

static gint64
fake_clock (gpointer user_data)
{
  return fake_now;
}

/* Asserts the next entry, then drops everything before it. */
static const Entry *
expect (guint *cursor, const char *agent_id, const char *priority)
{
  const Entry *e;

  g_assert_cmpuint (*cursor, <, entries->len);
  e = &g_array_index (entries, Entry, *cursor);
  g_test_message ("%s %s %s", e->message_id, e->priority, e->message);
  g_assert_cmpstr (e->agent_id, ==, agent_id);
  g_assert_cmpstr (e->priority, ==, priority);
  g_assert_nonnull (e->message_id);
  g_assert_cmpuint (strlen (e->message_id), ==, 32);
  g_assert_nonnull (strstr (e->message, agent_id));
  (*cursor)++;
  return e;
}

static void
test_events_are_structured (void)
{
  g_autoptr(HeartbeatMonitor) monitor = heartbeat_monitor_new ();
  g_autoptr(GHashTable) ids = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GError) error = NULL;
  HeartbeatAgentOptions options = { .task_id = "nightly", .stale_after_usec = 10, .timeout_after_usec = 100 };
  guint cursor = 0;
  const Entry *e;

  fake_now = 1000;
  heartbeat_monitor_set_clock (monitor, fake_clock, NULL);
  hb_journal_attach (monitor);

  g_assert_nonnull (heartbeat_monitor_register (monitor, "backup", &options, &error));
  e = expect (&cursor, "backup", "6");
  g_hash_table_add (ids, e->message_id);
  g_assert_nonnull (strstr (e->message, "nightly"));

  /* beats are silent */
  for (int i = 0; i < 10; i++)
    g_assert_true (heartbeat_monitor_beat (monitor, "backup", NULL, &error));
  g_assert_cmpuint (entries->len, ==, cursor);

  fake_now += 10;
  heartbeat_monitor_run_checks (monitor, fake_now);
  /* the state change, then the stale warning (a journal warning) */
  while (cursor < entries->len && g_strcmp0 (g_array_index (entries, Entry, cursor).priority, "4") != 0)
    g_hash_table_add (ids, expect (&cursor, "backup", g_array_index (entries, Entry, cursor).priority)->message_id);
  e = expect (&cursor, "backup", "4");
  g_hash_table_add (ids, e->message_id);

  g_assert_true (heartbeat_monitor_beat (monitor, "backup", NULL, &error));
  while (cursor < entries->len)
    g_hash_table_add (ids, expect (&cursor, "backup", g_array_index (entries, Entry, cursor).priority)->message_id);

  fake_now += 100;
  heartbeat_monitor_run_checks (monitor, fake_now);
  g_assert_cmpint (heartbeat_agent_get_state (heartbeat_monitor_lookup (monitor, "backup")), ==,
                   HEARTBEAT_AGENT_STATE_TIMED_OUT);
  g_assert_true (heartbeat_monitor_unregister (monitor, "backup", &error));
  g_assert_cmpuint (cursor, <, entries->len);
  while (cursor < entries->len)
    g_hash_table_add (ids, expect (&cursor, "backup", g_array_index (entries, Entry, cursor).priority)->message_id);

  g_assert_nonnull (heartbeat_monitor_register (monitor, "other", NULL, &error));
  g_assert_true (heartbeat_monitor_unregister (monitor, "other", &error));
  while (cursor < entries->len)
    g_hash_table_add (ids, expect (&cursor, "other", "6")->message_id);

  /* registered, state change, stale, recovered, timed out, unregistered:
   * six kinds, six distinct MESSAGE_IDs */
  g_assert_cmpuint (g_hash_table_size (ids), ==, 6);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  entries = g_array_new (FALSE, TRUE, sizeof (Entry));
  g_array_set_clear_func (entries, (GDestroyNotify) entry_clear);
  g_log_set_writer_func (capture_writer, NULL, NULL);

  g_test_add_func ("/journal/events-are-structured", test_events_are_structured);

  return g_test_run ();
}
