/* heartbeat-keep-alive.c: keep one agent alive from an application
 *
 * The whole life of an application's agent in three lines:
 *
 *   client = heartbeat_client_new_sync (G_BUS_TYPE_SESSION, NULL, &error);
 *   keep_alive = heartbeat_keep_alive_new (client, "my-app", NULL, NULL, &error);
 *   …
 *   g_object_unref (keep_alive);   // unregisters
 *
 * It registers bound to the caller (so the agent is `gone` at once if the
 * application dies), beats on the thread-default main context of its
 * creator at a third of the agent's effective stale threshold, registers
 * again whenever heartbeatd (re)appears on the bus or forgets the agent,
 * and reports `error`, `idle` or any status it is told.
 *
 * When heartbeatd or the bus goes away, the agent is lost with it (its
 * binding to our connection is gone even if the daemon keeps it): the
 * keep-alive says so once — `registered` becomes FALSE, notified, and one
 * "failed" tells why (NO_DAEMON, or NO_BUS) — stops beating, and waits for
 * "daemon-appeared", which the client emits when heartbeatd is back (after
 * connecting to the bus again, with its own backoff, if the bus went: see
 * heartbeat-client.c). It has no retry loop of its own: one registration
 * per return of the daemon, so a long outage costs no more reports than a
 * short one.
 *
 * The seed gateway's pattern maps one to one: register →
 * heartbeat_keep_alive_new(), update_activity → heartbeat_keep_alive_beat()
 * (or heartbeat_keep_alive_update() with progress/metadata), mark_idle →
 * heartbeat_keep_alive_mark_idle(), unregister →
 * heartbeat_keep_alive_unregister() (or dropping the last reference).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "heartbeat-keep-alive.h"

#include <math.h>

/* a beat per third of the stale threshold: two may be lost or late */
#define BEATS_PER_STALE_PERIOD 3
#define MIN_INTERVAL_USEC      (10 * G_TIME_SPAN_MILLISECOND)

/**
 * HeartbeatKeepAlive:
 *
 * Keeps one agent registered and beating for as long as it lives; see
 * heartbeat_keep_alive_new().
 */
struct _HeartbeatKeepAlive {
  GObject          parent_instance;
  HeartbeatClient *client;
  char            *id;
  GVariant        *options;       /* a{sv}, with bind-to-caller */
  char            *status;        /* what each beat reports */
  GMainContext    *context;       /* where the timer runs */
  GSource         *timer;
  GCancellable    *cancellable;   /* cancelled on dispose */
  guint64          interval_usec;
  guint            registrations;
  gboolean         registered;
  gboolean         registering;
  gulong           appeared_id;
  gulong           vanished_id;
};

enum {
  PROP_0,
  PROP_CLIENT,
  PROP_ID,
  PROP_STATUS,
  PROP_INTERVAL_USEC,
  PROP_REGISTRATIONS,
  PROP_REGISTERED,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum {
  SIGNAL_REGISTERED,
  SIGNAL_FAILED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (HeartbeatKeepAlive, heartbeat_keep_alive, G_TYPE_OBJECT)

static void send_beat (HeartbeatKeepAlive *self, GVariant *details);
static void start_registering (HeartbeatKeepAlive *self);

static void
fail (HeartbeatKeepAlive *self,
      const GError       *error)
{
  g_debug ("keep-alive %s: %s", self->id, error->message);
  g_signal_emit (self, signals[SIGNAL_FAILED], 0, error);
}

static gboolean
lost_with_daemon (const GError *error)
{
  return g_error_matches (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NO_DAEMON) ||
         g_error_matches (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NO_BUS);
}

/* The agent is gone with heartbeatd or the bus: say so once (registered
 * becomes FALSE, and one "failed"), and beat no more until
 * "daemon-appeared" registers it again. Whatever else fails meanwhile for
 * the same reason (a beat or a registration underway) says nothing more. */
static void
lose (HeartbeatKeepAlive *self,
      const GError       *error)
{
  if (!self->registered)
    {
      g_debug ("keep-alive %s: %s", self->id, error->message);
      return;
    }
  self->registered = FALSE;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_REGISTERED]);
  fail (self, error);
}

static gboolean
on_timer (gpointer user_data)
{
  HeartbeatKeepAlive *self = user_data;

  if (self->registered && !self->registering)
    send_beat (self, NULL);
  return G_SOURCE_CONTINUE;
}

static void
schedule (HeartbeatKeepAlive *self,
          guint64             stale_after_usec)
{
  guint64 interval = stale_after_usec / BEATS_PER_STALE_PERIOD;

  interval = MAX (interval, MIN_INTERVAL_USEC);
  if (self->timer != NULL && interval == self->interval_usec)
    return;
  if (self->timer != NULL)
    {
      g_source_destroy (self->timer);
      g_clear_pointer (&self->timer, g_source_unref);
    }
  self->interval_usec = interval;
  self->timer = g_timeout_source_new ((guint) MIN (interval / 1000, G_MAXUINT));
  g_source_set_callback (self->timer, on_timer, self, NULL);
  g_source_set_static_name (self->timer, "[heartbeat] keep-alive");
  g_source_attach (self->timer, self->context);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_INTERVAL_USEC]);
}

/* Registered: count it, tell, report a status other than the default, and
 * learn the agent's stale threshold for the timer. */
static void
registered (HeartbeatKeepAlive *self,
            HeartbeatAgentInfo *info)
{
  self->registered = TRUE;
  self->registrations++;
  if (info != NULL)
    schedule (self, heartbeat_agent_info_get_stale_after (info));
  if (g_strcmp0 (self->status, "running") != 0)
    send_beat (self, NULL);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_REGISTERED]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_REGISTRATIONS]);
  g_signal_emit (self, signals[SIGNAL_REGISTERED], 0);
}

static void
on_agent_info (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HeartbeatAgentInfo) info =
    heartbeat_client_get_agent_info_finish (HEARTBEAT_CLIENT (source), result, &error);
  HeartbeatKeepAlive *self;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;   /* disposed: self is gone */
  self = user_data;
  self->registering = FALSE;
  if (info == NULL)
    fail (self, error);
  registered (self, info);
}

static void
on_register (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  HeartbeatKeepAlive *self;

  if (!heartbeat_client_register_finish (HEARTBEAT_CLIENT (source), result, &error) &&
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  self = user_data;
  if (error != NULL)
    {
      self->registering = FALSE;
      if (lost_with_daemon (error))
        {
          lose (self, error);
          return;
        }
      if (self->registered)
        {
          self->registered = FALSE;
          g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_REGISTERED]);
        }
      fail (self, error);
      return;
    }
  heartbeat_client_get_agent_info_async (self->client, self->id, self->cancellable,
                                         on_agent_info, self);
}

static void
start_registering (HeartbeatKeepAlive *self)
{
  if (self->registering)
    return;
  self->registering = TRUE;
  heartbeat_client_register_async (self->client, self->id, self->options, self->cancellable,
                                   on_register, self);
}

static void
on_beat (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  HeartbeatKeepAlive *self;

  if (heartbeat_client_beat_finish (HEARTBEAT_CLIENT (source), result, &error) ||
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  self = user_data;
  if (!self->registered)
    return;   /* unregistered meanwhile */
  if (g_error_matches (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NOT_FOUND))
    {
      /* the daemon forgot it (removed, or a state lost in a restart) */
      start_registering (self);
      return;
    }
  if (lost_with_daemon (error))
    {
      /* no daemon, or no bus: "daemon-appeared" will register again */
      lose (self, error);
      return;
    }
  fail (self, error);
}

/* Adds the entries of @dict (an a{sv}, may be NULL) but @except to
 * @builder. */
static void
add_entries_except (GVariantBuilder *builder,
                    GVariant        *dict,
                    const char      *except)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  if (dict == NULL)
    return;
  g_variant_iter_init (&iter, dict);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      if (g_strcmp0 (key, except) != 0)
        g_variant_builder_add (builder, "{sv}", key, value);
      g_variant_unref (value);
    }
}

/* Beats with the current status, plus @details (floating or not: a
 * reference is taken and dropped; may be NULL). */
static void
send_beat (HeartbeatKeepAlive *self,
           GVariant           *details)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autoptr(GVariant) owned = details ? g_variant_ref_sink (details) : NULL;

  add_entries_except (&builder, owned, "status");
  g_variant_builder_add (&builder, "{sv}", "status", g_variant_new_string (self->status));
  heartbeat_client_beat_async (self->client, self->id, g_variant_builder_end (&builder),
                               self->cancellable, on_beat, self);
}

static void
on_daemon_appeared (HeartbeatClient    *client,
                    HeartbeatKeepAlive *self)
{
  if (self->registered || self->registrations > 0)
    {
      /* a new daemon: it may have kept the agent (state directory) or not,
       * and its binding to our connection is gone either way */
      self->registering = FALSE;
      start_registering (self);
    }
}

static void
on_daemon_vanished (HeartbeatClient    *client,
                    HeartbeatKeepAlive *self)
{
  g_autoptr(GError) error = NULL;

  if (g_dbus_connection_is_closed (heartbeat_client_get_connection (client)))
    error = g_error_new_literal (HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NO_BUS,
                                 "the bus went away (the bus connection is closed)");
  else
    error = g_error_new_literal (HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NO_DAEMON,
                                 "heartbeatd left the bus");
  lose (self, error);
}

static GVariant *
options_bound_to_caller (GVariant *options)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  add_entries_except (&builder, options, "bind-to-caller");
  g_variant_builder_add (&builder, "{sv}", "bind-to-caller", g_variant_new_boolean (TRUE));
  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

/* The object, not yet registered; @options as for heartbeat_keep_alive_new(). */
static HeartbeatKeepAlive *
keep_alive_create (HeartbeatClient *client,
                   const char      *id,
                   GVariant        *options)
{
  HeartbeatKeepAlive *self;

  if (options != NULL)
    g_variant_ref_sink (options);
  self = g_object_new (HEARTBEAT_TYPE_KEEP_ALIVE, "client", client, "id", id, NULL);
  self->options = options_bound_to_caller (options);
  if (options != NULL)
    g_variant_unref (options);
  return self;
}

/* Registered: follow the daemon's restarts, and start beating. */
static void
keep_alive_start (HeartbeatKeepAlive *self,
                  HeartbeatAgentInfo *info)
{
  self->appeared_id = g_signal_connect (self->client, "daemon-appeared",
                                        G_CALLBACK (on_daemon_appeared), self);
  self->vanished_id = g_signal_connect (self->client, "daemon-vanished",
                                        G_CALLBACK (on_daemon_vanished), self);
  registered (self, info);
}

/**
 * heartbeat_keep_alive_new:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @options: (nullable): Register options, an `a{sv}` (see
 *   heartbeat_register_options_new()), or %NULL; `bind-to-caller` is
 *   always set. A floating reference is consumed.
 * @cancellable: (nullable): a #GCancellable for the registration
 * @error: return location for a #GError
 *
 * Registers @id bound to the caller (blocking), then keeps it alive from
 * the thread-default main context: it beats at a third of the agent's
 * stale threshold, registers again when heartbeatd reappears on the bus
 * (a restart) or forgets the agent, and unregisters it when the keep-alive
 * is disposed.
 *
 * When heartbeatd or the bus goes away, #HeartbeatKeepAlive:registered
 * becomes %FALSE (notified) and #HeartbeatKeepAlive::failed is emitted
 * once, with %HEARTBEAT_CLIENT_ERROR_NO_DAEMON or
 * %HEARTBEAT_CLIENT_ERROR_NO_BUS; it stops beating until heartbeatd is
 * back (#HeartbeatClient::daemon-appeared), then registers again
 * (#HeartbeatKeepAlive::registered). Across a lost bus that takes a
 * client that connects again by itself: one made with
 * heartbeat_client_new() or heartbeat_client_new_sync(), whose bus
 * connection never makes the process exit either. On a connection given
 * to heartbeat_client_new_for_connection(), the application decides: with
 * its #GDBusConnection:exit-on-close %TRUE (g_bus_get()'s default) the
 * process exits when the bus goes.
 *
 * Returns: (transfer full): the keep-alive, or %NULL with @error set if
 *   the first registration failed
 */
HeartbeatKeepAlive *
heartbeat_keep_alive_new (HeartbeatClient *client,
                          const char      *id,
                          GVariant        *options,
                          GCancellable    *cancellable,
                          GError         **error)
{
  g_autoptr(HeartbeatKeepAlive) self = NULL;
  g_autoptr(HeartbeatAgentInfo) info = NULL;

  g_return_val_if_fail (HEARTBEAT_IS_CLIENT (client), NULL);
  g_return_val_if_fail (id != NULL, NULL);
  g_return_val_if_fail (options == NULL || g_variant_is_of_type (options, G_VARIANT_TYPE_VARDICT), NULL);

  self = keep_alive_create (client, id, options);
  if (!heartbeat_client_register (client, id, g_variant_ref (self->options), error))
    return NULL;
  self->registered = TRUE;   /* from here on, disposing unregisters */
  info = heartbeat_client_get_agent_info (client, id, cancellable, error);
  if (info == NULL)
    return NULL;
  keep_alive_start (self, info);
  return g_steal_pointer (&self);
}

static void
on_new_agent_info (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  HeartbeatKeepAlive *self = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(HeartbeatAgentInfo) info =
    heartbeat_client_get_agent_info_finish (HEARTBEAT_CLIENT (source), result, &error);

  if (info == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  keep_alive_start (self, info);
  g_task_return_pointer (task, g_object_ref (self), g_object_unref);
}

static void
on_new_registered (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  HeartbeatKeepAlive *self = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);
  GError *error = NULL;

  if (!heartbeat_client_register_finish (HEARTBEAT_CLIENT (source), result, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  self->registered = TRUE;   /* from here on, disposing unregisters */
  heartbeat_client_get_agent_info_async (self->client, self->id, cancellable,
                                         on_new_agent_info, g_steal_pointer (&task));
}

/**
 * heartbeat_keep_alive_new_async:
 * @client: a #HeartbeatClient
 * @id: the agent's id
 * @options: (nullable): as for heartbeat_keep_alive_new()
 * @cancellable: (nullable): a #GCancellable for the registration
 * @callback: (scope async): called when the agent is registered
 * @user_data: (closure): data for @callback
 *
 * heartbeat_keep_alive_new() without blocking; the keep-alive beats on the
 * thread-default main context of the caller. Finish with
 * heartbeat_keep_alive_new_finish().
 */
void
heartbeat_keep_alive_new_async (HeartbeatClient    *client,
                                const char         *id,
                                GVariant           *options,
                                GCancellable       *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer            user_data)
{
  GTask *task;

  g_return_if_fail (HEARTBEAT_IS_CLIENT (client));
  g_return_if_fail (id != NULL);
  g_return_if_fail (options == NULL || g_variant_is_of_type (options, G_VARIANT_TYPE_VARDICT));

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_name (task, "heartbeat_keep_alive_new_async");
  g_task_set_task_data (task, keep_alive_create (client, id, options), g_object_unref);
  heartbeat_client_register_async (client, id, ((HeartbeatKeepAlive *) g_task_get_task_data (task))->options,
                                   cancellable, on_new_registered, task);
}

/**
 * heartbeat_keep_alive_new_finish:
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes an operation started with heartbeat_keep_alive_new_async(). On
 * success the keep-alive is registered and beating; it fails with the
 * errors of heartbeat_client_register().
 *
 * Returns: (transfer full): the keep-alive, or %NULL with @error set if
 *   the first registration failed
 */
HeartbeatKeepAlive *
heartbeat_keep_alive_new_finish (GAsyncResult *result,
                                 GError      **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * heartbeat_keep_alive_get_client:
 * @keep_alive: a #HeartbeatKeepAlive
 *
 * The client the keep-alive registers and beats through; it holds a
 * reference to it for as long as it lives.
 *
 * Returns: (transfer none): its client
 */
HeartbeatClient *
heartbeat_keep_alive_get_client (HeartbeatKeepAlive *keep_alive)
{
  g_return_val_if_fail (HEARTBEAT_IS_KEEP_ALIVE (keep_alive), NULL);
  return keep_alive->client;
}

/**
 * heartbeat_keep_alive_get_id:
 * @keep_alive: a #HeartbeatKeepAlive
 *
 * The id of the agent the keep-alive keeps registered, as given to
 * heartbeat_keep_alive_new().
 *
 * Returns: the agent's id
 */
const char *
heartbeat_keep_alive_get_id (HeartbeatKeepAlive *keep_alive)
{
  g_return_val_if_fail (HEARTBEAT_IS_KEEP_ALIVE (keep_alive), NULL);
  return keep_alive->id;
}

/**
 * heartbeat_keep_alive_get_status:
 * @keep_alive: a #HeartbeatKeepAlive
 *
 * The status the keep-alive sends with every beat: `running` until
 * heartbeat_keep_alive_set_status() or heartbeat_keep_alive_mark_idle()
 * changes it (heartbeat_keep_alive_update() turns `idle` back into
 * `running`).
 *
 * Returns: the status its beats report
 */
const char *
heartbeat_keep_alive_get_status (HeartbeatKeepAlive *keep_alive)
{
  g_return_val_if_fail (HEARTBEAT_IS_KEEP_ALIVE (keep_alive), NULL);
  return keep_alive->status;
}

/**
 * heartbeat_keep_alive_set_status:
 * @keep_alive: a #HeartbeatKeepAlive
 * @status: (nullable): `running` (or %NULL), `idle`, `error`, or free text
 *
 * Sets the status every beat reports from now on, and beats now. `error`
 * puts the agent in the `error` state; `idle` marks it idle (no deadlines
 * until it runs again).
 */
void
heartbeat_keep_alive_set_status (HeartbeatKeepAlive *keep_alive,
                                 const char         *status)
{
  g_return_if_fail (HEARTBEAT_IS_KEEP_ALIVE (keep_alive));

  if (status == NULL)
    status = "running";
  if (g_strcmp0 (keep_alive->status, status) != 0)
    {
      g_free (keep_alive->status);
      keep_alive->status = g_strdup (status);
      g_object_notify_by_pspec (G_OBJECT (keep_alive), properties[PROP_STATUS]);
    }
  if (keep_alive->registered)
    send_beat (keep_alive, NULL);
}

/**
 * heartbeat_keep_alive_beat:
 * @keep_alive: a #HeartbeatKeepAlive
 *
 * Reports activity now (the seed gateway's `update_activity`). An idle
 * agent runs again (status `running`).
 */
void
heartbeat_keep_alive_beat (HeartbeatKeepAlive *keep_alive)
{
  heartbeat_keep_alive_update (keep_alive, NAN, NULL);
}

/**
 * heartbeat_keep_alive_update:
 * @keep_alive: a #HeartbeatKeepAlive
 * @progress: how far along, or NaN for none
 * @metadata: (nullable): metadata to merge, an `a{sv}`, or %NULL
 *
 * Reports activity now, with progress and metadata. An idle agent runs
 * again (status `running`).
 */
void
heartbeat_keep_alive_update (HeartbeatKeepAlive *keep_alive,
                             double              progress,
                             GVariant           *metadata)
{
  g_return_if_fail (HEARTBEAT_IS_KEEP_ALIVE (keep_alive));

  if (g_strcmp0 (keep_alive->status, "idle") == 0)
    {
      g_free (keep_alive->status);
      keep_alive->status = g_strdup ("running");
      g_object_notify_by_pspec (G_OBJECT (keep_alive), properties[PROP_STATUS]);
    }
  if (keep_alive->registered)
    send_beat (keep_alive, heartbeat_beat_details_new (NULL, progress, metadata));
}

/**
 * heartbeat_keep_alive_mark_idle:
 * @keep_alive: a #HeartbeatKeepAlive
 *
 * Says the agent has nothing to do: the same as
 * heartbeat_keep_alive_set_status() with `idle`.
 */
void
heartbeat_keep_alive_mark_idle (HeartbeatKeepAlive *keep_alive)
{
  heartbeat_keep_alive_set_status (keep_alive, "idle");
}

static void
stop (HeartbeatKeepAlive *self)
{
  g_cancellable_cancel (self->cancellable);
  if (self->timer != NULL)
    {
      g_source_destroy (self->timer);
      g_clear_pointer (&self->timer, g_source_unref);
    }
  if (self->appeared_id != 0)
    {
      g_signal_handler_disconnect (self->client, self->appeared_id);
      self->appeared_id = 0;
    }
  if (self->vanished_id != 0)
    {
      g_signal_handler_disconnect (self->client, self->vanished_id);
      self->vanished_id = 0;
    }
}

/**
 * heartbeat_keep_alive_unregister:
 * @keep_alive: a #HeartbeatKeepAlive
 * @error: return location for a #GError
 *
 * Stops beating and unregisters the agent (blocking). Dropping the last
 * reference does the same, ignoring errors.
 *
 * Returns: %TRUE if the agent was unregistered (or was not registered)
 */
gboolean
heartbeat_keep_alive_unregister (HeartbeatKeepAlive *keep_alive,
                                 GError            **error)
{
  g_return_val_if_fail (HEARTBEAT_IS_KEEP_ALIVE (keep_alive), FALSE);

  stop (keep_alive);
  if (!keep_alive->registered)
    return TRUE;
  keep_alive->registered = FALSE;
  g_object_notify_by_pspec (G_OBJECT (keep_alive), properties[PROP_REGISTERED]);
  return heartbeat_client_unregister (keep_alive->client, keep_alive->id, error);
}

/**
 * heartbeat_keep_alive_get_interval_usec:
 * @keep_alive: a #HeartbeatKeepAlive
 *
 * How often the keep-alive beats: a third of the agent's effective stale
 * threshold, at least 10 ms, learnt again at every registration.
 *
 * Returns: the time between two beats, in microseconds
 */
guint64
heartbeat_keep_alive_get_interval_usec (HeartbeatKeepAlive *keep_alive)
{
  g_return_val_if_fail (HEARTBEAT_IS_KEEP_ALIVE (keep_alive), 0);
  return keep_alive->interval_usec;
}

/**
 * heartbeat_keep_alive_get_registrations:
 * @keep_alive: a #HeartbeatKeepAlive
 *
 * Counts the keep-alive's successful registrations: more than 1 means
 * heartbeatd restarted or forgot the agent and the keep-alive registered
 * it again.
 *
 * Returns: how many times it registered the agent (1, plus one per
 *   re-registration)
 */
guint
heartbeat_keep_alive_get_registrations (HeartbeatKeepAlive *keep_alive)
{
  g_return_val_if_fail (HEARTBEAT_IS_KEEP_ALIVE (keep_alive), 0);
  return keep_alive->registrations;
}

/**
 * heartbeat_keep_alive_get_registered:
 * @keep_alive: a #HeartbeatKeepAlive
 *
 * Whether the agent is registered, as far as the keep-alive knows: %FALSE
 * after heartbeat_keep_alive_unregister() (for good), after a failed
 * re-registration, and while heartbeatd or the bus is gone (until
 * heartbeatd appears again and a registration succeeds).
 *
 * Returns: whether the agent is registered, as far as it knows
 */
gboolean
heartbeat_keep_alive_get_registered (HeartbeatKeepAlive *keep_alive)
{
  g_return_val_if_fail (HEARTBEAT_IS_KEEP_ALIVE (keep_alive), FALSE);
  return keep_alive->registered;
}

static void
heartbeat_keep_alive_get_property (GObject    *object,
                                   guint       prop_id,
                                   GValue     *value,
                                   GParamSpec *pspec)
{
  HeartbeatKeepAlive *self = HEARTBEAT_KEEP_ALIVE (object);

  switch (prop_id)
    {
    case PROP_CLIENT:        g_value_set_object (value, self->client); break;
    case PROP_ID:            g_value_set_string (value, self->id); break;
    case PROP_STATUS:        g_value_set_string (value, self->status); break;
    case PROP_INTERVAL_USEC: g_value_set_uint64 (value, self->interval_usec); break;
    case PROP_REGISTRATIONS: g_value_set_uint (value, self->registrations); break;
    case PROP_REGISTERED:    g_value_set_boolean (value, self->registered); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
heartbeat_keep_alive_set_property (GObject      *object,
                                   guint         prop_id,
                                   const GValue *value,
                                   GParamSpec   *pspec)
{
  HeartbeatKeepAlive *self = HEARTBEAT_KEEP_ALIVE (object);

  switch (prop_id)
    {
    case PROP_CLIENT: self->client = g_value_dup_object (value); break;
    case PROP_ID:     self->id = g_value_dup_string (value); break;
    case PROP_STATUS: heartbeat_keep_alive_set_status (self, g_value_get_string (value)); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
heartbeat_keep_alive_dispose (GObject *object)
{
  HeartbeatKeepAlive *self = HEARTBEAT_KEEP_ALIVE (object);

  if (self->client != NULL)
    {
      g_autoptr(GError) error = NULL;

      if (self->registered && heartbeat_client_get_daemon_running (self->client) &&
          !heartbeat_keep_alive_unregister (self, &error))
        g_debug ("keep-alive %s: cannot unregister: %s", self->id, error->message);
      stop (self);
    }
  g_clear_object (&self->client);
  G_OBJECT_CLASS (heartbeat_keep_alive_parent_class)->dispose (object);
}

static void
heartbeat_keep_alive_finalize (GObject *object)
{
  HeartbeatKeepAlive *self = HEARTBEAT_KEEP_ALIVE (object);

  g_free (self->id);
  g_free (self->status);
  g_clear_pointer (&self->options, g_variant_unref);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_object (&self->cancellable);
  G_OBJECT_CLASS (heartbeat_keep_alive_parent_class)->finalize (object);
}

static void
heartbeat_keep_alive_class_init (HeartbeatKeepAliveClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = heartbeat_keep_alive_get_property;
  object_class->set_property = heartbeat_keep_alive_set_property;
  object_class->dispose = heartbeat_keep_alive_dispose;
  object_class->finalize = heartbeat_keep_alive_finalize;

  /**
   * HeartbeatKeepAlive:client:
   *
   * The client it calls heartbeatd with.
   */
  properties[PROP_CLIENT] =
    g_param_spec_object ("client", NULL, NULL, HEARTBEAT_TYPE_CLIENT,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * HeartbeatKeepAlive:id:
   *
   * The agent's id.
   */
  properties[PROP_ID] =
    g_param_spec_string ("id", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * HeartbeatKeepAlive:status:
   *
   * The status its beats report.
   */
  properties[PROP_STATUS] =
    g_param_spec_string ("status", NULL, NULL, "running",
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * HeartbeatKeepAlive:interval-usec:
   *
   * The time between two beats (µs).
   */
  properties[PROP_INTERVAL_USEC] =
    g_param_spec_uint64 ("interval-usec", NULL, NULL, 0, G_MAXUINT64, 0,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * HeartbeatKeepAlive:registrations:
   *
   * How many times it registered.
   */
  properties[PROP_REGISTRATIONS] =
    g_param_spec_uint ("registrations", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * HeartbeatKeepAlive:registered:
   *
   * Whether the agent is registered: %FALSE while heartbeatd or the bus
   * is gone, %TRUE again once it registered after their return.
   */
  properties[PROP_REGISTERED] =
    g_param_spec_boolean ("registered", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * HeartbeatKeepAlive::registered:
   * @keep_alive: the keep-alive
   *
   * The agent was registered: first by heartbeat_keep_alive_new() (before
   * anyone could connect), then again after each daemon restart and each
   * return of the bus.
   */
  signals[SIGNAL_REGISTERED] =
    g_signal_new ("registered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  /**
   * HeartbeatKeepAlive::failed:
   * @keep_alive: the keep-alive
   * @error: what went wrong
   *
   * A beat or a re-registration failed; it keeps trying. The loss of
   * heartbeatd or of the bus is reported once per outage (with
   * %HEARTBEAT_CLIENT_ERROR_NO_DAEMON or %HEARTBEAT_CLIENT_ERROR_NO_BUS),
   * not once per beat: #HeartbeatKeepAlive:registered is %FALSE until the
   * agent is registered again.
   */
  signals[SIGNAL_FAILED] =
    g_signal_new ("failed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);
}

static void
heartbeat_keep_alive_init (HeartbeatKeepAlive *self)
{
  self->status = g_strdup ("running");
  self->context = g_main_context_ref_thread_default ();
  self->cancellable = g_cancellable_new ();
}
