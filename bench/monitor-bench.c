/* monitor-bench.c: how fast HeartbeatMonitor takes beats, how much memory
 * an agent costs, and how late it notices a deadline.
 *
 * Copyright 2026 The heartbeatd authors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Usage: monitor-bench [--quick]
 *
 * Prints, in one process:
 *   - beats/s at 1,000 and at 1,000,000 agents (ids beaten in random order)
 *     and their ratio; then at 1,000,000 agents beaten in turn, in the
 *     order they registered (the same work, with the memory prefetchable);
 *   - resident bytes per agent at 1,000,000 agents;
 *   - detection lateness (time the agent-stale signal ran minus the agent's
 *     deadline, monotonic clock) for 100,000 agents whose deadlines are
 *     spread over 10 s, on a real GMainLoop: p50, p99 and max in µs.
 *
 * --quick divides every size by 10 and the spread by 10 (for a smoke run).
 *
 * --metadata=N prints only beats/s of N beats with metadata at 1,000
 * agents, each built afresh as a front builds it from a request: the
 * same metadata every beat, one value changed every beat, and a new
 * progress every beat. Under callgrind, the difference between the
 * totals at N and 2N divided by 3N is the instructions of such a beat:
 *   valgrind --tool=callgrind build/bench/monitor-bench --metadata=20000
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heartbeat-monitor.h"

static gboolean quick;
static gint metadata_beats;

static GOptionEntry entries[] = {
  { "quick", 0, 0, G_OPTION_ARG_NONE, &quick, "Run at a tenth of the sizes (smoke test)", NULL },
  { "metadata", 0, 0, G_OPTION_ARG_INT, &metadata_beats, "Only beats with metadata, N of each kind", "N" },
  { NULL }
};

/* Resident set size in bytes, from /proc/self/statm. */
static gsize
rss_bytes (void)
{
  g_autofree char *contents = NULL;
  unsigned long size = 0, resident = 0;

  if (!g_file_get_contents ("/proc/self/statm", &contents, NULL, NULL) ||
      sscanf (contents, "%lu %lu", &size, &resident) != 2)
    return 0;
  return (gsize) resident * (gsize) sysconf (_SC_PAGESIZE);
}

static char **
make_ids (guint n)
{
  char **ids = g_new (char *, n + 1);

  for (guint i = 0; i < n; i++)
    ids[i] = g_strdup_printf ("agent-%07u", i);
  ids[n] = NULL;
  return ids;
}

/* Registers @n agents with thresholds far away (nothing fires). */
static HeartbeatMonitor *
monitor_with_agents (char **ids, guint n)
{
  HeartbeatMonitor *monitor = heartbeat_monitor_new ();
  HeartbeatAgentOptions options = { 0 };

  heartbeat_monitor_set_stale_threshold (monitor, (gint64) 3600 * G_USEC_PER_SEC);
  heartbeat_monitor_set_timeout_threshold (monitor, (gint64) 7200 * G_USEC_PER_SEC);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GError) error = NULL;
      if (heartbeat_monitor_register (monitor, ids[i], &options, &error) == NULL)
        g_error ("%s", error->message);
    }
  return monitor;
}

/* Beats @n_beats times, agents picked at random. The ids are laid out
 * beforehand, one after the other in the order they are beaten, the way a
 * front finds them in the messages it reads: the timing holds nothing but
 * the beats, and none of the caller's own cache misses. */
#define ID_SLOT 16

static double
beats_per_second (guint n_agents, guint n_beats, gboolean in_turn)
{
  g_auto(GStrv) ids = make_ids (n_agents);
  g_autoptr(HeartbeatMonitor) monitor = monitor_with_agents (ids, n_agents);
  g_autofree char *stream = g_malloc ((gsize) n_beats * ID_SLOT);
  GRand *rand = g_rand_new_with_seed (42);
  gint64 start, elapsed;

  for (guint i = 0; i < n_beats; i++)
    {
      guint agent = in_turn ? i % n_agents : (guint) g_rand_int_range (rand, 0, (gint32) n_agents);

      g_strlcpy (stream + (gsize) i * ID_SLOT, ids[agent], ID_SLOT);
    }
  g_rand_free (rand);

  start = g_get_monotonic_time ();
  for (guint i = 0; i < n_beats; i++)
    {
      const char *id = stream + (gsize) i * ID_SLOT;

      if (!heartbeat_monitor_beat (monitor, id, NULL, NULL))
        g_error ("beat %s failed", id);
    }
  elapsed = g_get_monotonic_time () - start;

  return (double) n_beats * G_USEC_PER_SEC / (double) MAX (elapsed, 1);
}

typedef enum {
  METADATA_SAME,
  METADATA_CHANGED,
  METADATA_PROGRESS,
} MetadataKind;

/* Beats the agents of @monitor in turn @n_beats times with metadata of
 * @kind, built for each beat in tree form as a front builds it from JSON. */
/* not inlined: callgrind --dump-after=metadata_beats_per_second counts each
 * kind apart */
static G_GNUC_NO_INLINE double
metadata_beats_per_second (HeartbeatMonitor *monitor,
                           char            **ids,
                           guint             n_agents,
                           guint             n_beats,
                           MetadataKind      kind)
{
  gint64 start = g_get_monotonic_time (), elapsed;

  for (guint i = 0; i < n_beats; i++)
    {
      g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
      g_autoptr(GVariant) metadata = NULL;
      g_autoptr(GError) error = NULL;
      HeartbeatBeatDetails details = { .status = "running" };

      g_variant_builder_add (&builder, "{sv}", "tests_per_sec",
                             g_variant_new_double (kind == METADATA_CHANGED ? (double) i : 0.9));
      metadata = g_variant_ref_sink (g_variant_builder_end (&builder));
      details.metadata = metadata;
      if (kind == METADATA_PROGRESS)
        {
          details.has_progress = TRUE;
          details.progress = (double) i / n_beats;
        }
      if (!heartbeat_monitor_beat (monitor, ids[i % n_agents], &details, &error))
        g_error ("%s", error->message);
    }
  elapsed = g_get_monotonic_time () - start;
  return (double) n_beats * G_USEC_PER_SEC / (double) MAX (elapsed, 1);
}

/* 1,000 agents registered with two keys of metadata, serialized as a
 * stored value is, then beaten with metadata of each kind */
static void
measure_metadata (guint n_beats)
{
  static const char *const names[] = { "the same metadata", "a changed value", "a new progress" };
  const guint n_agents = 1000;
  g_auto(GStrv) ids = make_ids (n_agents);
  g_autoptr(HeartbeatMonitor) monitor = heartbeat_monitor_new ();

  heartbeat_monitor_set_stale_threshold (monitor, (gint64) 3600 * G_USEC_PER_SEC);
  heartbeat_monitor_set_timeout_threshold (monitor, (gint64) 7200 * G_USEC_PER_SEC);
  for (guint i = 0; i < n_agents; i++)
    {
      g_autoptr(GVariant) metadata = g_variant_ref_sink (g_variant_new_parsed (
        "{'host': <'build-7'>, 'tests_per_sec': <0.9>}"));
      HeartbeatAgentOptions options = { .metadata = metadata };
      g_autoptr(GError) error = NULL;

      (void) g_variant_get_data (metadata);
      if (heartbeat_monitor_register (monitor, ids[i], &options, &error) == NULL)
        g_error ("%s", error->message);
    }
  for (MetadataKind kind = METADATA_SAME; kind <= METADATA_PROGRESS; kind++)
    printf ("beats/s with %-18s %12.0f\n", names[kind],
            metadata_beats_per_second (monitor, ids, n_agents, n_beats, kind));
}

static double
bytes_per_agent (guint n_agents)
{
  g_auto(GStrv) ids = make_ids (n_agents);
  g_autoptr(HeartbeatMonitor) monitor = NULL;
  gsize before, after;

  /* The ids the caller holds are not the monitor's memory: allocate them
   * first, measure around the registrations only. */
  before = rss_bytes ();
  monitor = monitor_with_agents (ids, n_agents);
  after = rss_bytes ();

  g_assert_cmpuint (heartbeat_monitor_get_n_agents (monitor), ==, n_agents);
  return (double) (after - before) / n_agents;
}

typedef struct {
  GMainLoop *loop;
  gint64    *lateness;
  guint      n_seen;
  guint      n_expected;
} Lateness;

static void
on_stale (HeartbeatMonitor *monitor,
          HeartbeatAgent   *agent,
          gint64            idle_usec,
          gpointer          user_data)
{
  Lateness *l = user_data;
  gint64 now = g_get_monotonic_time ();
  gint64 deadline = heartbeat_agent_get_last_activity_at (agent) +
                    heartbeat_agent_get_stale_after (agent);

  if (now < deadline)
    g_error ("%s went stale %" G_GINT64_FORMAT " µs early",
             heartbeat_agent_get_id (agent), deadline - now);
  if (l->n_seen < l->n_expected)
    l->lateness[l->n_seen] = now - deadline;
  if (++l->n_seen == l->n_expected)
    g_main_loop_quit (l->loop);
}

static int
compare_gint64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return (x > y) - (x < y);
}

static gboolean
on_give_up (gpointer user_data)
{
  g_error ("lateness run did not finish in time");
  return G_SOURCE_REMOVE;
}

static void
measure_lateness (guint n_agents, gint64 spread_usec,
                  gint64 *p50, gint64 *p99, gint64 *max)
{
  g_auto(GStrv) ids = make_ids (n_agents);
  g_autoptr(HeartbeatMonitor) monitor = heartbeat_monitor_new ();
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autofree gint64 *lateness = g_new0 (gint64, n_agents);
  Lateness l = { loop, lateness, 0, n_agents };
  GRand *rand = g_rand_new_with_seed (7);
  guint give_up;

  heartbeat_monitor_set_timeout_threshold (monitor, (gint64) 3600 * G_USEC_PER_SEC);
  g_signal_connect (monitor, "agent-stale", G_CALLBACK (on_stale), &l);

  /* Registering 100,000 agents takes a while; start the clock of the
   * spread after it, so the first deadline is still in the future. */
  for (guint i = 0; i < n_agents; i++)
    {
      HeartbeatAgentOptions options = { 0 };
      g_autoptr(GError) error = NULL;

      options.stale_after_usec = G_USEC_PER_SEC / 2 + g_rand_int_range (rand, 0, (gint32) spread_usec);
      if (heartbeat_monitor_register (monitor, ids[i], &options, &error) == NULL)
        g_error ("%s", error->message);
    }
  g_rand_free (rand);

  heartbeat_monitor_start (monitor);
  give_up = g_timeout_add_seconds ((guint) (spread_usec / G_USEC_PER_SEC) + 30, on_give_up, NULL);
  g_main_loop_run (loop);
  g_source_remove (give_up);
  heartbeat_monitor_stop (monitor);

  qsort (lateness, n_agents, sizeof (gint64), compare_gint64);
  *p50 = lateness[n_agents / 2];
  *p99 = lateness[(gsize) n_agents * 99 / 100];
  *max = lateness[n_agents - 1];
}

int
main (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- benchmark HeartbeatMonitor");
  g_autoptr(GError) error = NULL;
  guint scale, small, large, beats, late_agents;
  gint64 spread, p50, p99, max;
  double small_rate, large_rate, turn_rate, per_agent;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("monitor-bench: %s\n", error->message);
      return 2;
    }

  if (metadata_beats > 0)
    {
      measure_metadata ((guint) metadata_beats);
      return 0;
    }

  scale = quick ? 10 : 1;
  small = 1000;
  large = 1000000 / scale;
  beats = 4000000 / scale;
  late_agents = 100000 / scale;
  spread = 10 * G_USEC_PER_SEC / scale;

  /* Memory first, while the heap is fresh. */
  per_agent = bytes_per_agent (large);
  small_rate = beats_per_second (small, beats, FALSE);
  large_rate = beats_per_second (large, beats, FALSE);
  turn_rate = beats_per_second (large, beats, TRUE);
  measure_lateness (late_agents, spread, &p50, &p99, &max);

  printf ("beats/s at %u agents:        %12.0f\n", small, small_rate);
  printf ("beats/s at %u agents:     %12.0f  (%.2f x the %u-agent rate)\n",
          large, large_rate, large_rate / small_rate, small);
  printf ("beats/s at %u agents, in turn: %8.0f  (%.2f x)\n",
          large, turn_rate, turn_rate / small_rate);
  printf ("RSS bytes per agent at %u:  %8.0f\n", large, per_agent);
  printf ("lateness, %u agents over %.0f s: p50 %" G_GINT64_FORMAT " us, p99 %"
          G_GINT64_FORMAT " us, max %" G_GINT64_FORMAT " us\n",
          late_agents, (double) spread / G_USEC_PER_SEC, p50, p99, max);
  return 0;
}
