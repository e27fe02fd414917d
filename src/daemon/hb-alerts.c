/* hb-alerts.c: the alert front
 *
 * Each [alert:NAME] section picks events (stale, timed-out, recovered,
 * gone, error) of agents matching a glob, and one action:
 *
 *   webhook=URL        POST a JSON event; `retries` attempts (default 3),
 *                      `retry-interval` apart (5 s, doubling with
 *                      backoff=exponential), `timeout` each (10 s): the
 *                      numbers of 003_31ee32263f03983b.txt
 *   alertmanager=URL   POST to URL/api/v2/alerts, labels agent, state,
 *                      host; the alert is resolved (endsAt) when the agent
 *                      recovers or is unregistered
 *   exec=PROGRAM       run it with HB_AGENT, HB_EVENT, HB_STATE, HB_STATUS,
 *                      HB_TASK, HB_HOST in its environment, killed after
 *                      `timeout`; its output goes to the journal
 *   restart-unit=UNIT  org.freedesktop.systemd1.Manager.RestartUnit on the
 *                      daemon's bus, at most once per `cooldown` (5 min)
 *
 * Everything is asynchronous on the main loop; at most
 * HB_ALERTS_MAX_PENDING deliveries wait, newer ones are dropped with a
 * warning. Failures are logged with their reason; nothing blocks the
 * monitor.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-alerts.h"

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <string.h>

struct _HbAlerts {
  GObject           parent_instance;
  HeartbeatMonitor *monitor;
  GDBusConnection  *connection;
  SoupSession      *session;
  GPtrArray        *alerts;        /* HbConfigAlert, from the configuration */
  GHashTable       *firing;        /* "alert\nagent" → JsonNode labels, for Alertmanager */
  GHashTable       *last_restart;  /* "alert\nunit" → gint64 monotonic */
  char             *host;
  guint             pending;
  GCancellable     *cancellable;
};

G_DEFINE_FINAL_TYPE (HbAlerts, hb_alerts, G_TYPE_OBJECT)

/* What happened, as an action sees it. */
typedef struct {
  const char *event;     /* stale, timed-out, recovered, gone, error, unregistered */
  const char *agent;
  const char *state;
  const char *status;
  const char *task;
  const char *usec_key;  /* idle-usec, running-usec, or NULL */
  gint64      usec;
} Event;

/* ------------------------------------------------------------------ */
/* HTTP deliveries (webhook, Alertmanager)                             */

typedef struct {
  HbAlerts            *self;      /* a reference */
  const HbConfigAlert *alert;     /* kept alive by self->alerts' reference */
  GPtrArray           *alerts;    /* that reference */
  char                *url;
  GBytes              *body;
  guint                attempt;
  GCancellable        *cancellable;
  guint                timeout_id;
} Delivery;

static void delivery_send (Delivery *d);

static void
delivery_free (Delivery *d)
{
  d->self->pending--;
  g_clear_handle_id (&d->timeout_id, g_source_remove);
  g_clear_object (&d->cancellable);
  g_ptr_array_unref (d->alerts);
  g_bytes_unref (d->body);
  g_free (d->url);
  g_object_unref (d->self);
  g_free (d);
}

static gboolean
on_delivery_retry (gpointer user_data)
{
  delivery_send (user_data);
  return G_SOURCE_REMOVE;
}

static gboolean
on_delivery_timeout (gpointer user_data)
{
  Delivery *d = user_data;

  d->timeout_id = 0;
  g_cancellable_cancel (d->cancellable);
  return G_SOURCE_REMOVE;
}

static void
on_delivered (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Delivery *d = user_data;
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (source), result);
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *why = NULL;
  guint status;

  reply = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
  g_clear_handle_id (&d->timeout_id, g_source_remove);
  status = msg ? soup_message_get_status (msg) : 0;
  if (reply != NULL && status >= 200 && status < 300)
    {
      g_debug ("[alert:%s] delivered to %s (attempt %u)", d->alert->name, d->url, d->attempt);
      delivery_free (d);
      return;
    }
  if (g_cancellable_is_cancelled (d->self->cancellable))
    {
      delivery_free (d);
      return;
    }

  why = error ? g_strdup (error->message) : g_strdup_printf ("HTTP %u", status);
  if (d->attempt < d->alert->retries)
    {
      gint64 delay = d->alert->retry_interval_usec;

      if (d->alert->exponential)
        delay <<= MIN (d->attempt - 1, 20u);
      g_message ("[alert:%s] %s failed (%s), attempt %u of %u; again in %.1f s", d->alert->name,
                 d->url, why, d->attempt, d->alert->retries, (double) delay / G_USEC_PER_SEC);
      g_timeout_add ((guint) MAX (delay / 1000, 1), on_delivery_retry, d);
      return;
    }
  g_warning ("[alert:%s] giving up on %s after %u attempts: %s", d->alert->name, d->url, d->attempt, why);
  delivery_free (d);
}

static void
delivery_send (Delivery *d)
{
  g_autoptr(SoupMessage) msg = soup_message_new ("POST", d->url);

  d->attempt++;
  g_clear_object (&d->cancellable);
  d->cancellable = g_cancellable_new ();
  g_signal_connect_object (d->self->cancellable, "cancelled", G_CALLBACK (g_cancellable_cancel),
                           d->cancellable, G_CONNECT_SWAPPED);
  soup_message_set_request_body_from_bytes (msg, "application/json", d->body);
  d->timeout_id = g_timeout_add ((guint) MAX (d->alert->timeout_usec / 1000, 1), on_delivery_timeout, d);
  soup_session_send_and_read_async (d->self->session, msg, G_PRIORITY_DEFAULT, d->cancellable, on_delivered, d);
}

static void
deliver (HbAlerts            *self,
         const HbConfigAlert *alert,
         const char          *url,
         JsonNode            *body)
{
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  Delivery *d;
  gsize length;
  char *text;

  if (self->pending >= HB_ALERTS_MAX_PENDING)
    {
      g_warning ("[alert:%s] %u deliveries already waiting; dropping this one", alert->name, self->pending);
      return;
    }
  json_generator_set_root (generator, body);
  text = json_generator_to_data (generator, &length);

  d = g_new0 (Delivery, 1);
  d->self = g_object_ref (self);
  d->alerts = g_ptr_array_ref (self->alerts);
  d->alert = alert;
  d->url = g_strdup (url);
  d->body = g_bytes_new_take (text, length);
  self->pending++;
  delivery_send (d);
}

static char *
now_iso8601 (void)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();

  return g_date_time_format (now, "%Y-%m-%dT%H:%M:%S.%fZ");
}

static void
add_string (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, value ? value : "");
}

static void
run_webhook (HbAlerts *self, const HbConfigAlert *alert, const Event *e)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *time = now_iso8601 ();

  json_builder_begin_object (b);
  add_string (b, "alert", alert->name);
  add_string (b, "event", e->event);
  add_string (b, "agent", e->agent);
  add_string (b, "state", e->state);
  add_string (b, "status", e->status);
  add_string (b, "task-id", e->task);
  add_string (b, "host", self->host);
  add_string (b, "time", time);
  if (e->usec_key)
    {
      json_builder_set_member_name (b, e->usec_key);
      json_builder_add_int_value (b, e->usec);
    }
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  deliver (self, alert, alert->target, root);
}

static const char *
alertname_for (const char *event)
{
  if (strcmp (event, "stale") == 0)
    return "HeartbeatAgentStale";
  if (strcmp (event, "timed-out") == 0)
    return "HeartbeatAgentTimedOut";
  if (strcmp (event, "gone") == 0)
    return "HeartbeatAgentGone";
  return "HeartbeatAgentError";
}

static void
post_alertmanager (HbAlerts *self, const HbConfigAlert *alert, JsonNode *labels,
                   const char *summary, gboolean resolve)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *time = now_iso8601 ();
  g_autofree char *base = g_str_has_suffix (alert->target, "/") ? g_strndup (alert->target, strlen (alert->target) - 1)
                                                                : g_strdup (alert->target);
  g_autofree char *url = g_strconcat (base, "/api/v2/alerts", NULL);

  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "labels");
  json_builder_add_value (b, json_node_copy (labels));
  json_builder_set_member_name (b, "annotations");
  json_builder_begin_object (b);
  add_string (b, "summary", summary);
  json_builder_end_object (b);
  add_string (b, resolve ? "endsAt" : "startsAt", time);
  json_builder_end_object (b);
  json_builder_end_array (b);
  root = json_builder_get_root (b);
  deliver (self, alert, url, root);
}

static void
run_alertmanager (HbAlerts *self, const HbConfigAlert *alert, const Event *e)
{
  g_autofree char *key = g_strconcat (alert->name, "\n", e->agent, NULL);

  if (strcmp (e->event, "recovered") == 0 || strcmp (e->event, "unregistered") == 0)
    {
      JsonNode *labels = g_hash_table_lookup (self->firing, key);
      g_autofree char *summary = g_strdup_printf ("%s is %s again", e->agent,
                                                  strcmp (e->event, "recovered") == 0 ? "healthy" : "unregistered");

      if (labels)
        {
          post_alertmanager (self, alert, labels, summary, TRUE);
          g_hash_table_remove (self->firing, key);
        }
      return;
    }

  {
    g_autoptr(JsonBuilder) b = json_builder_new ();
    g_autofree char *summary = g_strdup_printf ("%s is %s", e->agent, e->state);
    JsonNode *labels;

    json_builder_begin_object (b);
    add_string (b, "alertname", alertname_for (e->event));
    add_string (b, "agent", e->agent);
    add_string (b, "state", e->state);
    add_string (b, "host", self->host);
    json_builder_end_object (b);
    labels = json_builder_get_root (b);
    post_alertmanager (self, alert, labels, summary, FALSE);
    g_hash_table_replace (self->firing, g_steal_pointer (&key), labels);
  }
}

/* ------------------------------------------------------------------ */
/* exec                                                                */

typedef struct {
  HbAlerts *self;
  char     *name;
  char     *agent;
  guint     kill_id;
  GSubprocess *process;
} Run;

static void
run_free (Run *run)
{
  g_clear_handle_id (&run->kill_id, g_source_remove);
  g_clear_object (&run->process);
  run->self->pending--;
  g_object_unref (run->self);
  g_free (run->name);
  g_free (run->agent);
  g_free (run);
}

static gboolean
on_run_too_long (gpointer user_data)
{
  Run *run = user_data;

  run->kill_id = 0;
  g_warning ("[alert:%s] the program ran too long; killed", run->name);
  g_subprocess_force_exit (run->process);
  return G_SOURCE_REMOVE;
}

static void
on_run_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Run *run = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *output = NULL;

  if (!g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &output, NULL, &error))
    g_warning ("[alert:%s] %s", run->name, error->message);
  if (output && *output)
    {
      g_autofree char *message = g_strdup_printf ("[alert:%s] %s", run->name, g_strchomp (output));

      g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "MESSAGE", "%s", message,
                        "AGENT_ID", run->agent, NULL);
    }
  if (g_subprocess_get_if_exited (G_SUBPROCESS (source)) && g_subprocess_get_exit_status (G_SUBPROCESS (source)) != 0)
    g_warning ("[alert:%s] the program exited with status %d", run->name,
               g_subprocess_get_exit_status (G_SUBPROCESS (source)));
  run_free (run);
}

static void
run_exec (HbAlerts *self, const HbConfigAlert *alert, const Event *e)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                                                       G_SUBPROCESS_FLAGS_STDERR_MERGE |
                                                                       G_SUBPROCESS_FLAGS_STDIN_INHERIT);
  g_autoptr(GError) error = NULL;
  const char *argv[] = { alert->target, NULL };
  Run *run;

  if (self->pending >= HB_ALERTS_MAX_PENDING)
    {
      g_warning ("[alert:%s] %u actions already waiting; dropping this one", alert->name, self->pending);
      return;
    }
  g_subprocess_launcher_setenv (launcher, "HB_ALERT", alert->name, TRUE);
  g_subprocess_launcher_setenv (launcher, "HB_AGENT", e->agent, TRUE);
  g_subprocess_launcher_setenv (launcher, "HB_EVENT", e->event, TRUE);
  g_subprocess_launcher_setenv (launcher, "HB_STATE", e->state ? e->state : "", TRUE);
  g_subprocess_launcher_setenv (launcher, "HB_STATUS", e->status ? e->status : "", TRUE);
  g_subprocess_launcher_setenv (launcher, "HB_TASK", e->task ? e->task : "", TRUE);
  g_subprocess_launcher_setenv (launcher, "HB_HOST", self->host, TRUE);

  run = g_new0 (Run, 1);
  run->process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  if (run->process == NULL)
    {
      g_warning ("[alert:%s] cannot run %s: %s", alert->name, alert->target, error->message);
      g_free (run);
      return;
    }
  run->self = g_object_ref (self);
  run->name = g_strdup (alert->name);
  run->agent = g_strdup (e->agent);
  self->pending++;
  run->kill_id = g_timeout_add ((guint) MAX (alert->timeout_usec / 1000, 1), on_run_too_long, run);
  g_subprocess_communicate_utf8_async (run->process, NULL, NULL, on_run_done, run);
}

/* ------------------------------------------------------------------ */
/* restart-unit                                                        */

static void
on_restarted (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autofree char *what = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);

  if (reply == NULL)
    g_warning ("%s failed: %s", what, error->message);
  else
    g_message ("%s: done", what);
}

static void
run_restart (HbAlerts *self, const HbConfigAlert *alert, const Event *e)
{
  g_autofree char *key = g_strconcat (alert->name, "\n", alert->target, NULL);
  gint64 now = g_get_monotonic_time ();
  gpointer last;

  if (self->connection == NULL)
    return;
  if (g_hash_table_lookup_extended (self->last_restart, key, NULL, &last) &&
      now - *(gint64 *) last < alert->cooldown_usec)
    {
      g_message ("[alert:%s] not restarting %s again within its cooldown", alert->name, alert->target);
      return;
    }
  g_hash_table_replace (self->last_restart, g_strdup (key), g_memdup2 (&now, sizeof now));
  g_dbus_connection_call (self->connection, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                          "org.freedesktop.systemd1.Manager", "RestartUnit",
                          g_variant_new ("(ss)", alert->target, "replace"), G_VARIANT_TYPE ("(o)"),
                          G_DBUS_CALL_FLAGS_NONE, (int) MAX (alert->timeout_usec / 1000, 1), NULL,
                          on_restarted,
                          g_strdup_printf ("[alert:%s] restarting %s for agent %s", alert->name,
                                           alert->target, e->agent));
}

/* ------------------------------------------------------------------ */
/* From the monitor                                                    */

static void
dispatch (HbAlerts *self, const Event *e)
{
  for (guint i = 0; self->alerts && i < self->alerts->len; i++)
    {
      const HbConfigAlert *alert = g_ptr_array_index (self->alerts, i);
      gboolean wanted = g_strv_contains ((const char *const *) alert->events, e->event);

      /* Alertmanager also hears the end of what it was told */
      if (alert->action == HB_ALERT_ALERTMANAGER && strcmp (e->event, "unregistered") == 0)
        wanted = TRUE;
      if (alert->action == HB_ALERT_ALERTMANAGER && strcmp (e->event, "recovered") == 0)
        wanted = TRUE;
      if (!wanted || !g_pattern_match_simple (alert->agents, e->agent))
        continue;

      switch (alert->action)
        {
        case HB_ALERT_WEBHOOK:
          run_webhook (self, alert, e);
          break;
        case HB_ALERT_ALERTMANAGER:
          run_alertmanager (self, alert, e);
          break;
        case HB_ALERT_EXEC:
          run_exec (self, alert, e);
          break;
        case HB_ALERT_RESTART_UNIT:
        default:
          run_restart (self, alert, e);
          break;
        }
    }
}

static void
dispatch_agent (HbAlerts *self, const char *event, HeartbeatAgent *agent,
                const char *usec_key, gint64 usec)
{
  Event e = {
    .event = event,
    .agent = heartbeat_agent_get_id (agent),
    .state = heartbeat_agent_state_to_string (heartbeat_agent_get_state (agent)),
    .status = heartbeat_agent_get_status (agent),
    .task = heartbeat_agent_get_task_id (agent),
    .usec_key = usec_key,
    .usec = usec,
  };

  dispatch (self, &e);
}

static void
on_stale (HeartbeatMonitor *m, HeartbeatAgent *agent, gint64 idle, HbAlerts *self)
{
  dispatch_agent (self, "stale", agent, "idle-usec", idle);
}

static void
on_timed_out (HeartbeatMonitor *m, HeartbeatAgent *agent, gint64 running, HbAlerts *self)
{
  dispatch_agent (self, "timed-out", agent, "running-usec", running);
}

static void
on_recovered (HeartbeatMonitor *m, HeartbeatAgent *agent, HbAlerts *self)
{
  dispatch_agent (self, "recovered", agent, NULL, 0);
}

static void
on_state_changed (HeartbeatMonitor *m, HeartbeatAgent *agent, HeartbeatAgentState old_state,
                  HeartbeatAgentState new_state, HbAlerts *self)
{
  if (new_state == HEARTBEAT_AGENT_STATE_GONE)
    dispatch_agent (self, "gone", agent, NULL, 0);
  else if (new_state == HEARTBEAT_AGENT_STATE_ERROR)
    dispatch_agent (self, "error", agent, NULL, 0);
  else if (new_state == HEARTBEAT_AGENT_STATE_HEALTHY &&
           (old_state == HEARTBEAT_AGENT_STATE_ERROR || old_state == HEARTBEAT_AGENT_STATE_GONE))
    dispatch_agent (self, "recovered", agent, NULL, 0);
}

static void
on_unregistered (HeartbeatMonitor *m, HeartbeatAgent *agent, HeartbeatUnregisterReason reason, HbAlerts *self)
{
  dispatch_agent (self, "unregistered", agent, NULL, 0);
}

/* ------------------------------------------------------------------ */

/**
 * hb_alerts_configure:
 * @alerts: a #HbAlerts
 * @config_alerts: (element-type HbConfigAlert): the configuration's alerts
 *
 * Uses these alerts from now on (a reload); deliveries under way finish
 * with the alerts they started with.
 */
void
hb_alerts_configure (HbAlerts  *alerts,
                     GPtrArray *config_alerts)
{
  g_return_if_fail (HB_IS_ALERTS (alerts));

  g_clear_pointer (&alerts->alerts, g_ptr_array_unref);
  alerts->alerts = g_ptr_array_ref (config_alerts);
}

guint
hb_alerts_get_n_pending (HbAlerts *alerts)
{
  g_return_val_if_fail (HB_IS_ALERTS (alerts), 0);
  return alerts->pending;
}

/**
 * hb_alerts_new:
 * @monitor: the monitor whose events raise alerts
 * @connection: (nullable): the bus to ask systemd on, for restart-unit
 *
 * Returns: (transfer full): a new #HbAlerts with no alerts configured
 */
HbAlerts *
hb_alerts_new (HeartbeatMonitor *monitor,
               GDBusConnection  *connection)
{
  HbAlerts *self = g_object_new (HB_TYPE_ALERTS, NULL);

  self->monitor = g_object_ref (monitor);
  self->connection = connection ? g_object_ref (connection) : NULL;
  g_signal_connect_object (monitor, "agent-stale", G_CALLBACK (on_stale), self, 0);
  g_signal_connect_object (monitor, "agent-timed-out", G_CALLBACK (on_timed_out), self, 0);
  g_signal_connect_object (monitor, "agent-recovered", G_CALLBACK (on_recovered), self, 0);
  g_signal_connect_object (monitor, "agent-state-changed", G_CALLBACK (on_state_changed), self, 0);
  g_signal_connect_object (monitor, "agent-unregistered", G_CALLBACK (on_unregistered), self, 0);
  return self;
}

/**
 * hb_alerts_set_connection:
 * @alerts: a #HbAlerts
 * @connection: (nullable): the bus to ask systemd on, for restart-unit
 *
 * Changes the bus restart-unit uses, as after a reconnection.
 */
void
hb_alerts_set_connection (HbAlerts        *alerts,
                          GDBusConnection *connection)
{
  g_return_if_fail (HB_IS_ALERTS (alerts));
  g_set_object (&alerts->connection, connection);
}

static void
hb_alerts_dispose (GObject *object)
{
  HbAlerts *self = HB_ALERTS (object);

  g_cancellable_cancel (self->cancellable);
  if (self->monitor)
    g_signal_handlers_disconnect_by_data (self->monitor, self);
  g_clear_object (&self->monitor);
  g_clear_object (&self->connection);
  G_OBJECT_CLASS (hb_alerts_parent_class)->dispose (object);
}

static void
hb_alerts_finalize (GObject *object)
{
  HbAlerts *self = HB_ALERTS (object);

  g_clear_object (&self->session);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->alerts, g_ptr_array_unref);
  g_hash_table_unref (self->firing);
  g_hash_table_unref (self->last_restart);
  g_free (self->host);
  G_OBJECT_CLASS (hb_alerts_parent_class)->finalize (object);
}

static void
hb_alerts_class_init (HbAlertsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = hb_alerts_dispose;
  object_class->finalize = hb_alerts_finalize;
}

static void
hb_alerts_init (HbAlerts *self)
{
  self->session = soup_session_new_with_options ("user-agent", "heartbeatd", NULL);
  self->cancellable = g_cancellable_new ();
  self->firing = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) json_node_unref);
  self->last_restart = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->host = g_strdup (g_get_host_name ());
}
