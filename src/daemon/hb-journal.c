/* hb-journal.c: the logging front
 *
 * Translates monitor events into structured log entries: one MESSAGE_ID
 * per kind of event and AGENT_ID, so `journalctl MESSAGE_ID=…` or
 * `journalctl AGENT_ID=backup` filter them. Uses the monitor's
 * agent-registered, agent-unregistered, agent-stale, agent-timed-out,
 * agent-recovered and agent-state-changed signals. Beats are not logged.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-journal.h"

/* syslog(3) priorities, written as the journal's PRIORITY= field. */
#define PRIORITY_WARNING "4"
#define PRIORITY_NOTICE  "5"
#define PRIORITY_INFO    "6"

#define MESSAGE_ID_REGISTERED   "db0fbef2f0f4434e807f4a727d50a545"
#define MESSAGE_ID_UNREGISTERED "9b15c34c837e4bdf99d37589ad0f2595"
#define MESSAGE_ID_STALE        "6baa60bb30424206bc2b4338ae103131"
#define MESSAGE_ID_TIMED_OUT    "1ab44b0b6b4a4e01a5f59db563fe1693"
#define MESSAGE_ID_RECOVERED    "4a90c1d1b17d46db8dd2dd6bf2d495b5"
#define MESSAGE_ID_STATE        "d2daf05ce175472a9bed1a60d7dd1470"

/* Logged at G_LOG_LEVEL_MESSAGE, which GLib always writes and never makes
 * fatal; the journal priority is given explicitly, so a stale agent is a
 * warning in the journal without being a g_warning(). */
static void
log_event (const char     *priority,
           const char     *message_id,
           HeartbeatAgent *agent,
           const char     *format,
           ...) G_GNUC_PRINTF (4, 5);

static void
log_event (const char     *priority,
           const char     *message_id,
           HeartbeatAgent *agent,
           const char     *format,
           ...)
{
  g_autofree char *message = NULL;
  va_list args;
  const char *task = heartbeat_agent_get_task_id (agent);
  GLogField fields[] = {
    { "MESSAGE", NULL, -1 },
    { "PRIORITY", priority, -1 },
    { "MESSAGE_ID", message_id, -1 },
    { "AGENT_ID", heartbeat_agent_get_id (agent), -1 },
    { "GLIB_DOMAIN", G_LOG_DOMAIN, -1 },
    { "AGENT_TASK", task ? task : "", -1 },
  };

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  fields[0].value = message;

  g_log_structured_array (G_LOG_LEVEL_MESSAGE, fields, task ? G_N_ELEMENTS (fields) : G_N_ELEMENTS (fields) - 1);
}

static void
on_registered (HeartbeatMonitor *monitor,
               HeartbeatAgent   *agent)
{
  const char *task = heartbeat_agent_get_task_id (agent);

  log_event (PRIORITY_INFO, MESSAGE_ID_REGISTERED, agent,
             "Agent %s registered%s%s", heartbeat_agent_get_id (agent),
             task ? " for task " : "", task ? task : "");
}

static void
on_unregistered (HeartbeatMonitor         *monitor,
                 HeartbeatAgent           *agent,
                 HeartbeatUnregisterReason reason)
{
  log_event (PRIORITY_INFO, MESSAGE_ID_UNREGISTERED, agent,
             "Agent %s unregistered (%s)", heartbeat_agent_get_id (agent),
             heartbeat_unregister_reason_to_string (reason));
}

static void
on_stale (HeartbeatMonitor *monitor,
          HeartbeatAgent   *agent,
          gint64            idle_usec)
{
  log_event (PRIORITY_WARNING, MESSAGE_ID_STALE, agent,
             "Agent %s is stale: no activity for %.1f s", heartbeat_agent_get_id (agent),
             idle_usec / (double) G_USEC_PER_SEC);
}

static void
on_timed_out (HeartbeatMonitor *monitor,
              HeartbeatAgent   *agent,
              gint64            running_usec)
{
  log_event (PRIORITY_WARNING, MESSAGE_ID_TIMED_OUT, agent,
             "Agent %s timed out after running for %.1f s", heartbeat_agent_get_id (agent),
             running_usec / (double) G_USEC_PER_SEC);
}

static void
on_recovered (HeartbeatMonitor *monitor,
              HeartbeatAgent   *agent)
{
  log_event (PRIORITY_NOTICE, MESSAGE_ID_RECOVERED, agent,
             "Agent %s recovered", heartbeat_agent_get_id (agent));
}

static void
on_state_changed (HeartbeatMonitor   *monitor,
                  HeartbeatAgent     *agent,
                  HeartbeatAgentState old_state,
                  HeartbeatAgentState new_state)
{
  /* stale and timed-out have entries of their own */
  if (new_state == HEARTBEAT_AGENT_STATE_STALE || new_state == HEARTBEAT_AGENT_STATE_TIMED_OUT)
    return;
  log_event (new_state == HEARTBEAT_AGENT_STATE_HEALTHY ? PRIORITY_INFO : PRIORITY_NOTICE,
             MESSAGE_ID_STATE, agent, "Agent %s is now %s (was %s)",
             heartbeat_agent_get_id (agent), heartbeat_agent_state_to_string (new_state),
             heartbeat_agent_state_to_string (old_state));
}

/**
 * hb_journal_attach:
 * @monitor: the monitor whose events to log
 *
 * Logs every event of @monitor, except beats, for as long as it lives.
 */
void
hb_journal_attach (HeartbeatMonitor *monitor)
{
  g_signal_connect (monitor, "agent-registered", G_CALLBACK (on_registered), NULL);
  g_signal_connect (monitor, "agent-unregistered", G_CALLBACK (on_unregistered), NULL);
  g_signal_connect (monitor, "agent-stale", G_CALLBACK (on_stale), NULL);
  g_signal_connect (monitor, "agent-timed-out", G_CALLBACK (on_timed_out), NULL);
  g_signal_connect (monitor, "agent-recovered", G_CALLBACK (on_recovered), NULL);
  g_signal_connect (monitor, "agent-state-changed", G_CALLBACK (on_state_changed), NULL);
}
