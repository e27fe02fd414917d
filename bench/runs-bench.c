/* runs-bench.c: what jobs' run records cost in memory and on disk
 *
 * In one process, a HeartbeatMonitor and heartbeatd's store (HbState) on a
 * state directory of its own, as the daemon has them:
 *
 *   1. --agents agents are registered, each with --runs runs (a start and
 *      an end) of --output bytes of output each (by default 10,000 agents
 *      with 20 runs of 4,096 bytes: the most an agent keeps). The
 *      process's VmRSS (/proc/self/status) before and after, per agent.
 *   2. Everything is written (hb_state_flush()), the WAL checkpointed
 *      (TRUNCATE): the size of agents.db and agents.db-wal, per agent.
 *   3. Every agent beats with progress (its metadata changes, so its agents
 *      row is rewritten at the next sync) and the store syncs: the bytes
 *      the process wrote for it (write_bytes of /proc/self/io) per agent,
 *      which stay far below a run record's size if the records are not
 *      written with beats. The same for one more run of every agent, for
 *      comparison (its records are written).
 *   4. A second life: a new monitor and store load the directory; the time
 *      it takes and the VmRSS it adds, per agent; the records compared.
 *
 *   runs-bench [--agents N] [--runs N] [--output BYTES] [--dir DIR]
 *
 * The state directory is made in DIR (default $TMPDIR, else /var/tmp: on
 * tmpfs write_bytes counts nothing) and removed at the end.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "hb-state.h"

/* A field of a /proc/self file ("VmRSS:", "write_bytes:"), in its unit
 * (kB for VmRSS, bytes for write_bytes), or -1. */
static gint64
proc_field (const char *file,
            const char *field)
{
  g_autofree char *contents = NULL;
  const char *at;

  if (!g_file_get_contents (file, &contents, NULL, NULL))
    return -1;
  at = strstr (contents, field);
  if (at == NULL)
    return -1;
  return g_ascii_strtoll (at + strlen (field), NULL, 10);
}

static gint64
rss_kib (void)
{
  return proc_field ("/proc/self/status", "VmRSS:");
}

static gint64
written_bytes (void)
{
  return proc_field ("/proc/self/io", "write_bytes:");
}

static gint64
file_size (const char *dir,
           const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  GStatBuf st;

  return g_stat (path, &st) == 0 ? (gint64) st.st_size : 0;
}

static void
checkpoint (const char *dir)
{
  g_autofree char *path = g_build_filename (dir, "agents.db", NULL);
  sqlite3 *db = NULL;
  int rc;

  if (sqlite3_open (path, &db) != SQLITE_OK)
    g_error ("Cannot open %s: %s", path, sqlite3_errmsg (db));
  rc = sqlite3_exec (db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    g_error ("Cannot checkpoint %s: %s", path, sqlite3_errmsg (db));
  sqlite3_close (db);
}

static void
sync_now (HbState *state)
{
  g_autoptr(GError) error = NULL;

  if (!hb_state_flush (state, &error))
    g_error ("Cannot write the state: %s", error->message);
}

/* One run of @id, @output_size bytes of output (text that varies). */
static void
one_run (HeartbeatMonitor *monitor,
         const char       *id,
         guint             run,
         GString          *output,
         gsize             output_size)
{
  HeartbeatRunEnd end = { 0 };
  g_autoptr(GError) error = NULL;

  g_string_truncate (output, 0);
  while (output->len < output_size)
    g_string_append_printf (output, "%s run %u: line %" G_GSIZE_FORMAT " of the output, ✓\n",
                            id, run, output->len);
  g_string_truncate (output, output_size);
  /* a cut character would be replaced: keep it ASCII at the end */
  while (output->len > 0 && !g_utf8_validate (output->str, (gssize) output->len, NULL))
    g_string_truncate (output, output->len - 1);
  end.success = run % 5 != 4;
  end.exit_status = end.success ? 0 : 1;
  end.output = output->str;
  end.output_length = (gssize) output->len;
  if (!heartbeat_monitor_start_run (monitor, id, 0, &error) ||
      !heartbeat_monitor_finish_run (monitor, id, &end, &error))
    g_error ("A run of %s: %s", id, error->message);
}

/* The second life: loads @dir, says what it cost. */
static int
load_only (const char *dir)
{
  g_autoptr(HeartbeatMonitor) monitor = heartbeat_monitor_new ();
  g_autoptr(HbState) state = hb_state_new (monitor, dir);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) agents = NULL;
  gint64 rss0, rss1, t0, t1;
  guint64 records = 0;

  rss0 = rss_kib ();
  t0 = g_get_monotonic_time ();
  if (!hb_state_load (state, &error))
    g_error ("%s", error->message);
  t1 = g_get_monotonic_time ();
  rss1 = rss_kib ();
  agents = heartbeat_monitor_list_agents (monitor);
  for (guint i = 0; i < agents->len; i++)
    {
      g_autoptr(GVariant) runs = g_variant_ref_sink (heartbeat_agent_get_runs (g_ptr_array_index (agents, i)));

      records += g_variant_n_children (runs);
    }
  printf ("restart (a new process): %u agents with %" G_GUINT64_FORMAT " run records loaded in %.2f s;"
          " VmRSS %.1f MiB before, %.1f MiB after = %.1f KiB per agent\n",
          agents->len, records, (t1 - t0) / 1e6, rss0 / 1024.0, rss1 / 1024.0,
          agents->len ? (double) (rss1 - rss0) / agents->len : 0.0);
  return agents->len > 0 ? 0 : 1;
}

int
main (int    argc,
      char **argv)
{
  int agents = 10000, runs = HEARTBEAT_RUNS_MAX, output_size = HEARTBEAT_RUN_OUTPUT_MAX;
  g_autofree char *base = NULL;
  g_autofree char *load = NULL;
  gboolean keep = FALSE;
  g_autofree char *dir = NULL;
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) output = g_string_new (NULL);
  HeartbeatMonitor *monitor;
  HbState *state;
  gint64 rss0, rss1, rss2, w0, w1, w2, db, wal, t0, t1;
  gboolean failed = FALSE;
  GOptionEntry entries[] = {
    { "agents", 'a', 0, G_OPTION_ARG_INT, &agents, "Agents (default 10000)", "N" },
    { "runs", 'r', 0, G_OPTION_ARG_INT, &runs, "Runs per agent (default 20, the most kept)", "N" },
    { "output", 'o', 0, G_OPTION_ARG_INT, &output_size, "Bytes of output per run (default 4096, the most kept)", "BYTES" },
    { "dir", 'd', 0, G_OPTION_ARG_FILENAME, &base, "Where to make the state directory (default $TMPDIR or /var/tmp)", "DIR" },
    { "keep", 0, 0, G_OPTION_ARG_NONE, &keep, "Keep the state directory (for --load)", NULL },
    { "load", 0, 0, G_OPTION_ARG_FILENAME, &load, "Only load the state directory DIR (the second life)", "DIR" },
    { NULL }
  };

  context = g_option_context_new ("- what run records cost in memory and on disk");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  if (agents < 1 || runs < 0 || output_size < 0 || output_size > HEARTBEAT_RUN_OUTPUT_MAX)
    {
      g_printerr ("--agents must be positive, --runs not negative, --output from 0 to %d\n",
                  HEARTBEAT_RUN_OUTPUT_MAX);
      return 2;
    }
  if (load != NULL)
    return load_only (load);
  if (base == NULL)
    base = g_strdup (g_getenv ("TMPDIR") ? g_getenv ("TMPDIR") : "/var/tmp");
  {
    g_autofree char *template = g_build_filename (base, "hb-runs-bench-XXXXXX", NULL);

    dir = g_mkdtemp (template) ? g_steal_pointer (&template) : NULL;
    if (dir == NULL)
      g_error ("Cannot make a directory in %s", base);
  }

  printf ("runs-bench: %d agents, %d runs each of %d bytes of output, state in %s\n",
          agents, runs, output_size, dir);

  /* 1. memory */
  monitor = heartbeat_monitor_new ();
  state = hb_state_new (monitor, dir);
  if (!hb_state_load (state, &error))
    g_error ("%s", error->message);
  rss0 = rss_kib ();
  for (int i = 0; i < agents; i++)
    {
      g_autofree char *id = g_strdup_printf ("job-%05d", i);

      if (heartbeat_monitor_register (monitor, id, NULL, &error) == NULL)
        g_error ("%s", error->message);
    }
  rss1 = rss_kib ();
  for (int i = 0; i < agents; i++)
    {
      g_autofree char *id = g_strdup_printf ("job-%05d", i);

      for (int r = 0; r < runs; r++)
        one_run (monitor, id, (guint) r, output, (gsize) output_size);
    }
  rss2 = rss_kib ();
  printf ("memory: VmRSS %.1f MiB empty, %.1f MiB with the agents, %.1f MiB with their runs\n",
          rss0 / 1024.0, rss1 / 1024.0, rss2 / 1024.0);
  printf ("  per agent: %.1f KiB in all, of which %.1f KiB its runs (%d × %d bytes of output = %.1f KiB of text)\n",
          (double) (rss2 - rss0) / agents, (double) (rss2 - rss1) / agents,
          runs, output_size, (double) runs * output_size / 1024.0);

  /* 2. disk */
  t0 = g_get_monotonic_time ();
  sync_now (state);
  t1 = g_get_monotonic_time ();
  checkpoint (dir);
  db = file_size (dir, "agents.db");
  wal = file_size (dir, "agents.db-wal");
  printf ("disk: written in %.2f s; after a checkpoint agents.db %.1f MiB + agents.db-wal %.1f MiB"
          " = %.1f KiB per agent\n",
          (t1 - t0) / 1e6, db / 1048576.0, wal / 1048576.0, (double) (db + wal) / 1024.0 / agents);

  /* 3. what a sync of beats writes, and what one more run each writes */
  for (int i = 0; i < agents; i++)
    {
      g_autofree char *id = g_strdup_printf ("job-%05d", i);
      HeartbeatBeatDetails details = { .has_progress = TRUE, .progress = 0.5 };

      if (!heartbeat_monitor_beat (monitor, id, &details, &error))
        g_error ("%s", error->message);
    }
  w0 = written_bytes ();
  t0 = g_get_monotonic_time ();
  sync_now (state);
  t1 = g_get_monotonic_time ();
  w1 = written_bytes ();
  printf ("a sync after every agent beat with progress (its agents row rewritten): %.2f s, "
          "%.1f KiB written per agent\n",
          (t1 - t0) / 1e6, (double) (w1 - w0) / 1024.0 / agents);
  for (int i = 0; i < agents; i++)
    {
      g_autofree char *id = g_strdup_printf ("job-%05d", i);

      one_run (monitor, id, (guint) runs, output, (gsize) output_size);
    }
  t0 = g_get_monotonic_time ();
  sync_now (state);
  t1 = g_get_monotonic_time ();
  w2 = written_bytes ();
  printf ("a sync after one more run of every agent (its records rewritten): %.2f s, "
          "%.1f KiB written per agent\n",
          (t1 - t0) / 1e6, (double) (w2 - w1) / 1024.0 / agents);
  if (w0 < 0)
    printf ("  (no /proc/self/io: the bytes written are not known)\n");

  /* 4. a second life, in a process of its own (this one's allocator keeps
   * what it freed) */
  g_object_unref (state);
  g_object_unref (monitor);
  {
    const char *child_argv[] = { "/proc/self/exe", "--load", dir, NULL };
    g_autofree char *out = NULL;
    int status = 0;

    if (!g_spawn_sync (NULL, (char **) child_argv, NULL, G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL,
                       &out, NULL, &status, &error))
      g_error ("Cannot run the second life: %s", error->message);
    fputs (out, stdout);
    failed = !g_spawn_check_wait_status (status, NULL);
  }

  /* clean up */
  if (keep)
    printf ("kept %s\n", dir);
  else
  {
    g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name (d)) != NULL)
      {
        g_autofree char *child = g_build_filename (dir, name, NULL);
        g_unlink (child);
      }
    g_rmdir (dir);
  }
  return failed ? 1 : 0;
}
