/* hb-notify.c: the systemd front
 *
 * Translates the monitor's state into sd_notify(3) messages for the service
 * manager: READY=1 once the bus name is owned, STATUS= kept current
 * ("12 agents, 1 stale"), WATCHDOG=1 from the main loop at half the
 * watchdog interval, RELOADING=1 around a reload and STOPPING=1 on exit.
 * Uses heartbeat_monitor_get_state_counts() and the monitor's
 * agent-registered, agent-unregistered and agent-state-changed signals.
 * Without $NOTIFY_SOCKET every call is a cheap no-op.
 *
 * Never blocks: libsystemd's sd_notify() sends on a blocking socket, so a
 * service manager that does not read its socket (stuck, or the queue full)
 * would stop the main loop and with it every answer. The protocol is one
 * datagram per message (sd_notify(3), "Notes"), sent here without
 * waiting: a STATUS= or WATCHDOG=1 that does not fit is dropped (the next
 * one says the same, newer), and READY=1, RELOADING=1 and STOPPING=1 wait
 * in order and are sent again every HB_NOTIFY_RETRY_MS until they fit.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-notify.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#define HB_NOTIFY_RETRY_MS 100

struct _HbNotify {
  GObject            parent_instance;
  HeartbeatMonitor  *monitor;
  char              *problem;
  char              *last_status;
  guint              status_idle_id;
  guint              watchdog_id;
  gboolean           ready;

  /* $NOTIFY_SOCKET, when a path or an abstract name; else sd_notify() */
  int                fd;
  struct sockaddr_un address;
  socklen_t          address_length;
  GQueue            *waiting;     /* messages that must arrive, oldest first */
  guint              retry_id;
};

G_DEFINE_FINAL_TYPE (HbNotify, hb_notify, G_TYPE_OBJECT)

/* One datagram, without waiting; FALSE if it did not fit (or failed). */
static gboolean
try_send (HbNotify   *self,
          const char *message)
{
  gssize n;

  if (self->fd < 0)
    {
      /* a form of $NOTIFY_SOCKET this file does not speak (or none) */
      sd_notify (0, message);
      return TRUE;
    }
  do
    n = sendto (self->fd, message, strlen (message), MSG_DONTWAIT | MSG_NOSIGNAL,
                (const struct sockaddr *) &self->address, self->address_length);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno != EAGAIN && errno != ENOBUFS)
    g_debug ("Cannot notify the service manager: %s", g_strerror (errno));
  return n >= 0;
}

static void queue_status (HbNotify *self);

static gboolean
on_retry (gpointer user_data)
{
  HbNotify *self = user_data;
  char *message;

  while ((message = g_queue_peek_head (self->waiting)) != NULL && try_send (self, message))
    g_free (g_queue_pop_head (self->waiting));
  if (!g_queue_is_empty (self->waiting))
    return G_SOURCE_CONTINUE;
  self->retry_id = 0;
  queue_status (self);   /* a STATUS= that was dropped meanwhile */
  return G_SOURCE_REMOVE;
}

/* Sends @message now if it fits. One that @must arrive waits its turn
 * otherwise; another is dropped (FALSE). */
static gboolean
notify_send (HbNotify   *self,
             const char *message,
             gboolean    must)
{
  gboolean sent = FALSE;

  if (g_queue_is_empty (self->waiting))
    sent = try_send (self, message);
  if (!sent && must)
    g_queue_push_tail (self->waiting, g_strdup (message));
  if (!sent && self->retry_id == 0)
    self->retry_id = g_timeout_add (HB_NOTIFY_RETRY_MS, on_retry, self);
  return sent || must;
}

static char *
format_status (HbNotify *self)
{
  guint counts[HEARTBEAT_AGENT_N_STATES];
  GString *status = g_string_new (NULL);
  guint n = heartbeat_monitor_get_n_agents (self->monitor);

  heartbeat_monitor_get_state_counts (self->monitor, counts);
  g_string_append_printf (status, "%u %s, %u stale", n, n == 1 ? "agent" : "agents",
                          counts[HEARTBEAT_AGENT_STATE_STALE]);
  for (int s = 0; s < HEARTBEAT_AGENT_N_STATES; s++)
    {
      if (s == HEARTBEAT_AGENT_STATE_HEALTHY || s == HEARTBEAT_AGENT_STATE_STALE || counts[s] == 0)
        continue;
      g_string_append_printf (status, ", %u %s", counts[s], heartbeat_agent_state_to_string (s));
    }
  if (self->problem)
    g_string_append_printf (status, "; %s", self->problem);
  return g_string_free (status, FALSE);
}

static void
send_status (HbNotify *self)
{
  g_autofree char *status = format_status (self);
  g_autofree char *message = NULL;

  if (g_strcmp0 (status, self->last_status) == 0)
    return;
  message = g_strdup_printf ("STATUS=%s", status);
  if (!notify_send (self, message, FALSE))
    return;   /* sent again once the socket takes it (on_retry) */
  g_free (self->last_status);
  self->last_status = g_steal_pointer (&status);
}

static gboolean
status_idle_cb (gpointer user_data)
{
  HbNotify *self = user_data;

  self->status_idle_id = 0;
  send_status (self);
  return G_SOURCE_REMOVE;
}

/* Many changes in one main loop iteration make one STATUS= message. */
static void
queue_status (HbNotify *self)
{
  if (self->status_idle_id == 0 && self->ready)
    self->status_idle_id = g_idle_add (status_idle_cb, self);
}

static void
on_agents_changed (HbNotify *self)
{
  queue_status (self);
}

static gboolean
watchdog_cb (gpointer user_data)
{
  notify_send (user_data, "WATCHDOG=1", FALSE);
  return G_SOURCE_CONTINUE;
}

/**
 * hb_notify_new:
 * @monitor: the monitor whose state STATUS= reports
 *
 * Starts pinging the watchdog if the service manager asked for it
 * (sd_watchdog_enabled()), at half its interval, from the main loop, so a
 * hung loop gets the service restarted.
 *
 * Returns: (transfer full): a new #HbNotify
 */
HbNotify *
hb_notify_new (HeartbeatMonitor *monitor)
{
  HbNotify *self = g_object_new (HB_TYPE_NOTIFY, NULL);
  guint64 watchdog_usec = 0;

  self->monitor = g_object_ref (monitor);
  g_signal_connect_swapped (monitor, "agent-registered", G_CALLBACK (on_agents_changed), self);
  g_signal_connect_swapped (monitor, "agent-unregistered", G_CALLBACK (on_agents_changed), self);
  g_signal_connect_swapped (monitor, "agent-state-changed", G_CALLBACK (on_agents_changed), self);

  if (sd_watchdog_enabled (0, &watchdog_usec) > 0 && watchdog_usec > 0)
    {
      guint interval_ms = MAX (1, watchdog_usec / 2 / 1000);

      g_debug ("Pinging the watchdog every %u ms", interval_ms);
      self->watchdog_id = g_timeout_add_full (G_PRIORITY_HIGH, interval_ms, watchdog_cb, self, NULL);
      g_source_set_name_by_id (self->watchdog_id, "[heartbeatd] watchdog");
    }
  return self;
}

/**
 * hb_notify_ready:
 * @notify: a #HbNotify
 *
 * Tells the service manager the daemon is ready (its bus name is owned),
 * or ready again after a reload, with the current STATUS=.
 */
void
hb_notify_ready (HbNotify *notify)
{
  g_autofree char *status = format_status (notify);
  g_autofree char *message = g_strdup_printf ("READY=1\nSTATUS=%s", status);

  notify_send (notify, message, TRUE);
  g_free (notify->last_status);
  notify->last_status = g_steal_pointer (&status);
  notify->ready = TRUE;
}

/**
 * hb_notify_reloading:
 * @notify: a #HbNotify
 *
 * Tells the service manager a reload started; hb_notify_ready() ends it.
 */
void
hb_notify_reloading (HbNotify *notify)
{
  g_autofree char *message = g_strdup_printf ("RELOADING=1\nMONOTONIC_USEC=%" G_GINT64_FORMAT,
                                              g_get_monotonic_time ());

  notify_send (notify, message, TRUE);
}

/**
 * hb_notify_stopping:
 * @notify: a #HbNotify
 *
 * Tells the service manager the daemon is shutting down.
 */
void
hb_notify_stopping (HbNotify *notify)
{
  notify->ready = FALSE;
  g_clear_handle_id (&notify->status_idle_id, g_source_remove);
  notify_send (notify, "STOPPING=1", TRUE);
}

/**
 * hb_notify_set_problem:
 * @notify: a #HbNotify
 * @problem: (nullable): what is wrong (e.g. the state cannot be saved), or
 *   %NULL once it is resolved
 *
 * Appends @problem to STATUS= so `systemctl status` shows it.
 */
void
hb_notify_set_problem (HbNotify   *notify,
                       const char *problem)
{
  if (g_strcmp0 (notify->problem, problem) == 0)
    return;
  g_free (notify->problem);
  notify->problem = g_strdup (problem);
  queue_status (notify);
}

static void
hb_notify_dispose (GObject *object)
{
  HbNotify *self = HB_NOTIFY (object);

  g_clear_handle_id (&self->status_idle_id, g_source_remove);
  g_clear_handle_id (&self->watchdog_id, g_source_remove);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  if (self->monitor)
    g_signal_handlers_disconnect_by_data (self->monitor, self);
  g_clear_object (&self->monitor);

  G_OBJECT_CLASS (hb_notify_parent_class)->dispose (object);
}

static void
hb_notify_finalize (GObject *object)
{
  HbNotify *self = HB_NOTIFY (object);

  g_free (self->problem);
  g_free (self->last_status);
  g_queue_free_full (self->waiting, g_free);
  if (self->fd >= 0)
    g_close (self->fd, NULL);

  G_OBJECT_CLASS (hb_notify_parent_class)->finalize (object);
}

static void
hb_notify_class_init (HbNotifyClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = hb_notify_dispose;
  object_class->finalize = hb_notify_finalize;
}

static void
hb_notify_init (HbNotify *self)
{
  const char *path = g_getenv ("NOTIFY_SOCKET");
  gsize length = path ? strlen (path) : 0;

  self->waiting = g_queue_new ();
  self->fd = -1;
  /* a path, or an abstract name (@…); anything else goes to sd_notify() */
  if (length < 2 || length >= sizeof self->address.sun_path || (path[0] != '/' && path[0] != '@'))
    return;
  self->address.sun_family = AF_UNIX;
  memcpy (self->address.sun_path, path, length);
  if (path[0] == '@')
    {
      self->address.sun_path[0] = '\0';
      self->address_length = (socklen_t) (offsetof (struct sockaddr_un, sun_path) + length);
    }
  else
    self->address_length = (socklen_t) (offsetof (struct sockaddr_un, sun_path) + length + 1);
  self->fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (self->fd < 0)
    g_debug ("Cannot make a socket to notify the service manager: %s", g_strerror (errno));
}
