/* fuzz-state.c: libFuzzer target for the state file loader
 *
 * Whatever the file holds, loading it never fails to start the daemon,
 * and whatever it restores can be written back. Each agent restored gets
 * a run whose output is the input itself (any bytes: the record keeps
 * their valid UTF-8 tail), so that run records go through the store too:
 * they are read back equal.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib/gstdio.h>
#include <string.h>

#include "fuzz-invariant.h"
#include "hb-state.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static char *directory;

static GLogWriterOutput
quiet (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  /* Warnings about bad files are the expected answer here. */
  if (level & (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG))
    return G_LOG_WRITER_HANDLED;
  return g_log_writer_default (level, fields, n_fields, user_data);
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_autofree char *path = NULL;
  g_autoptr(HeartbeatMonitor) monitor = NULL;
  g_autoptr(HbState) state = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) dir = NULL;
  const char *name;

  if (directory == NULL)
    {
      directory = g_dir_make_tmp ("hb-fuzz-state-XXXXXX", NULL);
      g_log_set_writer_func (quiet, NULL, NULL);
    }
  path = g_build_filename (directory, "agents.json", NULL);
  g_assert_true (g_file_set_contents (path, (const char *) data, (gssize) size, NULL));

  monitor = heartbeat_monitor_new ();
  state = hb_state_new (monitor, directory);
  g_assert_true (hb_state_load (state, &error));
  hb_fuzz_assert_monitor_round_trips (monitor);
  {
    g_autoptr(GPtrArray) agents = heartbeat_monitor_list_agents (monitor);
    HeartbeatRunEnd end = { .output = (const char *) data, .output_length = (gssize) size,
                            .exit_status = (gint) (size % 256), .success = size % 2 == 0 };

    for (guint i = 0; i < agents->len; i++)
      g_assert_true (heartbeat_monitor_finish_run (monitor, heartbeat_agent_get_id (g_ptr_array_index (agents, i)),
                                                   &end, &error));
  }
  g_assert_true (hb_state_flush (state, &error));

  /* what was written is read back whole */
  {
    g_autoptr(HeartbeatMonitor) again = heartbeat_monitor_new ();
    g_autoptr(HbState) state_again = hb_state_new (again, directory);
    g_autoptr(GPtrArray) agents = heartbeat_monitor_list_agents (monitor);

    g_assert_true (hb_state_load (state_again, &error));
    g_assert_cmpuint (heartbeat_monitor_get_n_agents (again), ==, agents->len);
    for (guint i = 0; i < agents->len; i++)
      {
        HeartbeatAgent *agent = g_ptr_array_index (agents, i);
        HeartbeatAgent *other = heartbeat_monitor_lookup (again, heartbeat_agent_get_id (agent));
        GVariant *m1, *m2;

        g_assert_nonnull (other);
        m1 = heartbeat_agent_get_metadata (agent);
        m2 = heartbeat_agent_get_metadata (other);
        g_assert_true ((m1 == NULL) == (m2 == NULL));
        g_assert_true (m1 == NULL || g_variant_equal (m1, m2));
        g_assert_cmpstr (heartbeat_agent_get_task_id (agent), ==, heartbeat_agent_get_task_id (other));
        g_assert_cmpstr (heartbeat_agent_get_status (agent), ==, heartbeat_agent_get_status (other));
        {
          g_autoptr(GVariant) r1 = g_variant_ref_sink (heartbeat_agent_get_runs (agent));
          g_autoptr(GVariant) r2 = g_variant_ref_sink (heartbeat_agent_get_runs (other));

          g_assert_cmpuint (g_variant_n_children (r1), ==, 1);
          g_assert_true (g_variant_equal (r1, r2));
        }
      }
  }

  /* clean up: the file, and any file moved aside */
  dir = g_dir_open (directory, 0, NULL);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (directory, name, NULL);
      g_unlink (child);
    }
  return 0;
}
