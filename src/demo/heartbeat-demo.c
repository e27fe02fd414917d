/* heartbeat-demo.c: a live demo of HeartbeatMonitor
 *
 * A few simulated agents beat, go quiet, recover, report an error and run
 * too long; every signal of the monitor is printed as it fires. Thresholds
 * are seconds instead of minutes so a person can watch it happen.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib-unix.h>
#include <stdio.h>

#include "heartbeat-monitor.h"

typedef struct {
  const char *id;
  const char *task;
  guint       beat_ms;    /* how often it beats */
  guint       quiet_from; /* seconds after start when it stops beating (0: never) */
  guint       quiet_to;   /* seconds after start when it beats again (0: never) */
  guint       error_at;   /* seconds after start when it reports an error (0: never) */
} DemoAgent;

static const DemoAgent demo_agents[] = {
  { "indexer", "reindex /srv", 700, 0, 0, 0 },
  { "backup", "nightly backup", 500, 3, 9, 0 },
  { "crawler", "crawl example.org", 900, 1, 0, 0 },
  { "reporter", "weekly report", 800, 0, 0, 6 },
};

static HeartbeatMonitor *monitor;
static gint64 demo_start;

static void
say (const char *what,
     const char *fmt,
     ...) G_GNUC_PRINTF (2, 3);

static void
say (const char *what,
     const char *fmt,
     ...)
{
  va_list args;
  double t = (g_get_monotonic_time () - demo_start) / (double) G_USEC_PER_SEC;

  printf ("%6.2fs  %-14s ", t, what);
  va_start (args, fmt);
  vprintf (fmt, args);
  va_end (args);
  putchar ('\n');
  fflush (stdout);
}

static gboolean
beat_cb (gpointer user_data)
{
  const DemoAgent *demo = user_data;
  double t = (g_get_monotonic_time () - demo_start) / (double) G_USEC_PER_SEC;
  HeartbeatBeatDetails details = { 0 };

  if (demo->quiet_from && t >= demo->quiet_from && (!demo->quiet_to || t < demo->quiet_to))
    return G_SOURCE_CONTINUE;
  if (heartbeat_monitor_lookup (monitor, demo->id) == NULL)
    return G_SOURCE_REMOVE;

  details.status = demo->error_at && t >= demo->error_at ? "error" : NULL;
  details.has_progress = TRUE;
  details.progress = MIN (100.0, t * 5);
  heartbeat_monitor_beat (monitor, demo->id, &details, NULL);
  return G_SOURCE_CONTINUE;
}

static void
on_registered (HeartbeatMonitor *m, HeartbeatAgent *agent, gpointer data)
{
  say ("registered", "%s (task: %s)", heartbeat_agent_get_id (agent),
       heartbeat_agent_get_task_id (agent));
}

static void
on_unregistered (HeartbeatMonitor *m, HeartbeatAgent *agent,
                 HeartbeatUnregisterReason reason, gpointer data)
{
  say ("unregistered", "%s (%s)", heartbeat_agent_get_id (agent),
       heartbeat_unregister_reason_to_string (reason));
}

static void
on_stale (HeartbeatMonitor *m, HeartbeatAgent *agent, gint64 idle, gpointer data)
{
  say ("STALE", "%s quiet for %.2fs", heartbeat_agent_get_id (agent),
       idle / (double) G_USEC_PER_SEC);
}

static void
on_timed_out (HeartbeatMonitor *m, HeartbeatAgent *agent, gint64 running, gpointer data)
{
  say ("TIMED OUT", "%s ran for %.2fs", heartbeat_agent_get_id (agent),
       running / (double) G_USEC_PER_SEC);
}

static void
on_recovered (HeartbeatMonitor *m, HeartbeatAgent *agent, gpointer data)
{
  say ("recovered", "%s", heartbeat_agent_get_id (agent));
}

static void
on_state_changed (HeartbeatMonitor *m, HeartbeatAgent *agent,
                  HeartbeatAgentState old_state, HeartbeatAgentState new_state,
                  gpointer data)
{
  say ("state", "%s: %s -> %s", heartbeat_agent_get_id (agent),
       heartbeat_agent_state_to_string (old_state),
       heartbeat_agent_state_to_string (new_state));
}

static gboolean
quit_cb (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

int
main (int argc, char **argv)
{
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  int duration = 20;
  GOptionEntry entries[] = {
    { "duration", 'd', 0, G_OPTION_ARG_INT, &duration, "Seconds to run (0: until interrupted)", "SECONDS" },
    { NULL }
  };

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context,
      "Live demo of HeartbeatMonitor: simulated agents beat, go quiet,\n"
      "recover, report an error and time out; every signal is printed.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }

  monitor = heartbeat_monitor_new ();
  g_object_set (monitor,
                "stale-threshold", (gint64) 2 * G_USEC_PER_SEC,
                "timeout-threshold", (gint64) 15 * G_USEC_PER_SEC,
                "check-interval", (gint64) 3 * G_USEC_PER_SEC,
                "stale-warning-only-once", FALSE,
                NULL);
  g_signal_connect (monitor, "agent-registered", G_CALLBACK (on_registered), NULL);
  g_signal_connect (monitor, "agent-unregistered", G_CALLBACK (on_unregistered), NULL);
  g_signal_connect (monitor, "agent-stale", G_CALLBACK (on_stale), NULL);
  g_signal_connect (monitor, "agent-timed-out", G_CALLBACK (on_timed_out), NULL);
  g_signal_connect (monitor, "agent-recovered", G_CALLBACK (on_recovered), NULL);
  g_signal_connect (monitor, "agent-state-changed", G_CALLBACK (on_state_changed), NULL);

  demo_start = g_get_monotonic_time ();
  say ("demo", "stale after 2s, timeout after 15s, stale warnings repeat every 3s");
  for (guint i = 0; i < G_N_ELEMENTS (demo_agents); i++)
    {
      HeartbeatAgentOptions options = { .task_id = demo_agents[i].task };

      heartbeat_monitor_register (monitor, demo_agents[i].id, &options, NULL);
      g_timeout_add (demo_agents[i].beat_ms, beat_cb, (gpointer) &demo_agents[i]);
    }
  heartbeat_monitor_start (monitor);

  g_unix_signal_add (SIGINT, quit_cb, loop);
  g_unix_signal_add (SIGTERM, quit_cb, loop);
  if (duration > 0)
    g_timeout_add_seconds (duration, quit_cb, loop);
  g_main_loop_run (loop);

  say ("demo", "done: %u agents left", heartbeat_monitor_get_n_agents (monitor));
  g_clear_object (&monitor);
  return 0;
}
