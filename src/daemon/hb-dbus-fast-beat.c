/* hb-dbus-fast-beat.c: certain Beat calls answered in GDBus's worker thread
 *
 * GDBus reads messages in a worker thread and hops to the main context
 * for every call on a registered object; that hop (a wake-up of the main
 * thread, and another of the worker to send the reply) costs more than
 * the beat itself, and decoding the message into GVariants costs about
 * as much again. The bus connection's input (hb-bus-filter.c) therefore
 * offers each message here before GDBus reads it (claim_beat(), in the
 * worker thread), and a Beat is taken, answered and queued at once, read
 * from its bytes (hb_fast_beat_read_call()), when everything about it is
 * certain:
 *
 *  - it is the interface's Beat on the service's path with the signature
 *    the interface gives it, a valid id, and no detail other than one
 *    valid `status`;
 *  - the sender's uid is cached (HbCallers) and the agent is known to
 *    belong to it (or the sender is root), so the authorization needs no
 *    round trip;
 *  - the sender has no state-changing call still on the normal path, so
 *    its calls take effect in the order it sent them (a message is offered
 *    only once GDBus has handled every one before it, so the message
 *    filter here has counted them).
 *
 * The beat is then queued and applied on the main context in batches,
 * within about DRAIN_INTERVAL_USEC (1 ms), and always before any call on
 * the normal path is handled (the front calls hb_fast_beat_drain() first),
 * so a GetAgent or Unregister sent after a Beat sees it. Anything else,
 * including every error, goes on to GDBus and the normal path. What a
 * caller could notice: the activity is stamped when the batch is applied
 * (up to about 1 ms late), and a Beat acknowledged in the same millisecond
 * as the agent's stale or timeout deadline may lose that race (a stale
 * warning followed by a recovery, or a timed-out agent whose last beat is
 * dropped); on the normal path the same race exists, only narrower. On a
 * connection not made by hb_bus_filter_connect_sync() (a bus that is not
 * a unix socket) every Beat takes the normal path.
 *
 * Which calls change state, and so are counted per sender while they are
 * on the normal path, is the front's to say (its dispatch table); their
 * signatures come from the interface description, since GDBus refuses a
 * call of another signature before the front sees it (and it would never
 * be uncounted).
 *
 * What both threads see lives here, under one lock; the main thread is
 * the only writer of owners. It is reference-counted because a filter may
 * run once more after g_dbus_connection_remove_filter(), and the claim
 * holds a reference too.
 *
 * With it off (hb_fast_beat_set_enabled(), or HB_DBUS_FAST_BEAT=0 read by
 * the front), every call takes the normal path; the integration suite
 * runs both ways.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "hb-authority.h"
#include "hb-bus-filter.h"
#include "hb-dbus-fast-beat.h"
#include "heartbeat-values.h"

/* The method this answers; it must be one of the changing ones, and of
 * this signature (hb_fast_beat_read_call() reads it). */
#define BEAT_METHOD    "Beat"
#define BEAT_SIGNATURE "sa{sv}"

#define DRAIN_INTERVAL_USEC 1000

#define COUNTED_KEY "hb-dbus-counted"

typedef struct {
  char *id;
  char *status;
} QueuedBeat;

/* A state-changing method, and the signature GDBus dispatches. */
typedef struct {
  char *member;
  char *signature;
} Change;

struct _HbFastBeat {
  GMutex            lock;
  HeartbeatMonitor *monitor;    /* used on the main context only */
  HbCallers        *callers;    /* its uid cache may be read from any thread */
  gboolean          enabled;    /* atomic */
  GHashTable       *owners;     /* agent id → owner uid (mirror of the monitor) */
  GHashTable       *pending;    /* unique name → state-changing calls on the normal path */
  GArray           *queue;      /* QueuedBeat, from the worker */
  gboolean          armed;      /* the source will drain the queue */
  GSource          *source;     /* drains the queue on the main context */

  /* set once by the first hb_fast_beat_start(), read by the filter */
  char             *path;
  char             *interface;
  GArray           *changes;    /* Change */

  /* main context */
  GDBusConnection  *connection;
  guint             filter_id;
  gulong            vanished_id;
  gulong            registered_id;
  gulong            unregistered_id;
};

static void
queued_beat_clear (gpointer data)
{
  QueuedBeat *beat = data;

  g_free (beat->id);
  g_free (beat->status);
}

static void
change_clear (gpointer data)
{
  Change *change = data;

  g_free (change->member);
  g_free (change->signature);
}

static void
fast_beat_clear (gpointer data)
{
  HbFastBeat *fast = data;

  if (fast->source)
    {
      g_source_destroy (fast->source);
      g_source_unref (fast->source);
    }
  g_clear_pointer (&fast->changes, g_array_unref);
  g_free (fast->interface);
  g_free (fast->path);
  g_array_unref (fast->queue);
  g_hash_table_unref (fast->pending);
  g_hash_table_unref (fast->owners);
  g_object_unref (fast->callers);
  g_object_unref (fast->monitor);
  g_mutex_clear (&fast->lock);
}

static HbFastBeat *
fast_beat_ref (HbFastBeat *fast)
{
  return g_atomic_rc_box_acquire (fast);
}

static void
fast_beat_unref (HbFastBeat *fast)
{
  g_atomic_rc_box_release_full (fast, fast_beat_clear);
}

/* ------------------------------------------------------------------ */
/* Main context: applying the acknowledged beats                       */

/* Applies the beats the worker acknowledged, in order. Returns whether
 * there were any. */
static gboolean
drain (HbFastBeat *fast)
{
  g_autoptr(GArray) beats = NULL;

  g_mutex_lock (&fast->lock);
  if (fast->queue->len > 0)
    {
      beats = g_steal_pointer (&fast->queue);
      fast->queue = g_array_sized_new (FALSE, FALSE, sizeof (QueuedBeat), beats->len);
      g_array_set_clear_func (fast->queue, queued_beat_clear);
    }
  g_mutex_unlock (&fast->lock);

  if (beats == NULL)
    return FALSE;
  for (guint i = 0; i < beats->len; i++)
    {
      QueuedBeat *beat = &g_array_index (beats, QueuedBeat, i);
      HeartbeatBeatDetails details = { .status = beat->status };
      g_autoptr(GError) error = NULL;

      /* Only fails if the agent was removed since (a timeout won). */
      if (!heartbeat_monitor_beat (fast->monitor, beat->id, &details, &error))
        g_debug ("Acknowledged beat of “%s” not applied: %s", beat->id, error->message);
    }
  return TRUE;
}

/* While beats keep coming, the main context drains them every
 * DRAIN_INTERVAL_USEC on its own, so the worker does not wake it for each
 * one (a cross-thread wakeup costs more than the beat); after an interval
 * without beats it disarms, and the next beat arms it again. */
static gboolean
drain_dispatch (GSource    *source,
                GSourceFunc callback,
                gpointer    user_data)
{
  HbFastBeat *fast = user_data;

  if (drain (fast))
    {
      g_source_set_ready_time (source, g_source_get_time (source) + DRAIN_INTERVAL_USEC);
      return G_SOURCE_CONTINUE;
    }

  g_mutex_lock (&fast->lock);
  if (fast->queue->len == 0)
    {
      fast->armed = FALSE;
      g_source_set_ready_time (source, -1);
    }
  else
    {
      g_source_set_ready_time (source, 0); /* queued meanwhile */
    }
  g_mutex_unlock (&fast->lock);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs drain_funcs = {
  .dispatch = drain_dispatch,
};

/* ------------------------------------------------------------------ */
/* Main context: what the worker may know                              */

/* HbCallers::peer-vanished: its uid is gone from the cache already. */
static void
on_peer_vanished (HbCallers  *callers,
                  const char *unique_name,
                  HbFastBeat *fast)
{
  g_mutex_lock (&fast->lock);
  g_hash_table_remove (fast->pending, unique_name);
  g_mutex_unlock (&fast->lock);
}

static void
on_agent_registered (HeartbeatMonitor *monitor,
                     HeartbeatAgent   *agent,
                     HbFastBeat       *fast)
{
  g_mutex_lock (&fast->lock);
  g_hash_table_insert (fast->owners, g_strdup (heartbeat_agent_get_id (agent)),
                       GUINT_TO_POINTER (heartbeat_agent_get_owner_uid (agent)));
  g_mutex_unlock (&fast->lock);
}

static void
on_agent_unregistered (HeartbeatMonitor         *monitor,
                       HeartbeatAgent           *agent,
                       HeartbeatUnregisterReason reason,
                       HbFastBeat               *fast)
{
  g_mutex_lock (&fast->lock);
  g_hash_table_remove (fast->owners, heartbeat_agent_get_id (agent));
  g_mutex_unlock (&fast->lock);
}

/* ------------------------------------------------------------------ */
/* Worker thread                                                       */

/**
 * hb_fast_beat_read_call:
 * @message: one whole D-Bus message, as the bus sent it
 * @size: its size
 * @object_path: the service's object path
 * @interface: the service's interface
 * @call: (out caller-allocates): the call, pointing into @message
 *
 * Whether @message is a call of @interface's Beat (signature `sa{sv}`) on
 * @object_path, from a sender, with a valid id and no detail other than
 * one valid `status`, and no file descriptors: a Beat the fast path may
 * answer from what it says. Read from the bytes as GDBus would decode
 * them (hb_bus_header_read()); whatever is unusual is not such a Beat.
 *
 * Returns: %TRUE if it is one
 */
gboolean
hb_fast_beat_read_call (const guint8   *message,
                        gsize           size,
                        const char     *object_path,
                        const char     *interface,
                        HbFastBeatCall *call)
{
  HbBusHeader header;
  HbBusReader *body = &header.body;
  const char *key, *type;
  guint32 details_size;
  gsize details_end;

  memset (call, 0, sizeof *call);
  if (!hb_bus_header_read (message, size, &header) ||
      header.type != G_DBUS_MESSAGE_TYPE_METHOD_CALL || header.n_unix_fds != 0 ||
      header.sender == NULL || header.path == NULL || header.interface == NULL || header.member == NULL ||
      strcmp (header.member, BEAT_METHOD) != 0 || strcmp (header.path, object_path) != 0 ||
      strcmp (header.interface, interface) != 0 || g_strcmp0 (header.signature, BEAT_SIGNATURE) != 0)
    return FALSE;

  /* (s a{sv}): the id, then the details, at most one */
  call->id = hb_bus_reader_text (body, 's');
  if (call->id == NULL || !heartbeat_id_is_valid (call->id, NULL) || !hb_bus_reader_u32 (body, &details_size))
    return FALSE;
  hb_bus_reader_align (body, 8);   /* the first dict entry */
  details_end = body->pos + details_size;
  if (details_size > 0)
    {
      key = hb_bus_reader_text (body, 's');
      type = hb_bus_reader_text (body, 'g');
      if (key == NULL || type == NULL || strcmp (key, "status") != 0 || strcmp (type, "s") != 0 ||
          (call->status = hb_bus_reader_text (body, 's')) == NULL || body->pos < details_end ||
          heartbeat_text_check (call->status, strlen (call->status),
                                HEARTBEAT_STATUS_MAX_LENGTH) != HEARTBEAT_TEXT_OK)
        return FALSE;
    }
  call->sender = header.sender;
  call->serial = header.serial;
  call->no_reply = (header.flags & G_DBUS_MESSAGE_FLAGS_NO_REPLY_EXPECTED) != 0;
  return TRUE;
}

/* The claim on the bus connection's input (hb_bus_filter_set_claim()), in
 * GDBus's worker thread: takes a certain Beat (see above) before GDBus
 * decodes it, answers it and queues it. Returns TRUE if it did. */
static gboolean
claim_beat (const guint8 *message,
            gsize         size,
            gpointer      user_data)
{
  HbFastBeat *fast = user_data;
  HbFastBeatCall call;
  gboolean queued = FALSE, arm = FALSE;
  guint32 uid;
  gpointer owner;

  if (!g_atomic_int_get (&fast->enabled) ||
      !hb_fast_beat_read_call (message, size, fast->path, fast->interface, &call) ||
      !hb_callers_lookup_uid (fast->callers, call.sender, &uid))
    return FALSE;

  g_mutex_lock (&fast->lock);
  if (!g_hash_table_contains (fast->pending, call.sender) &&
      g_hash_table_lookup_extended (fast->owners, call.id, NULL, &owner) &&
      hb_authority_allows_without_asking (uid, GPOINTER_TO_UINT (owner)))
    {
      QueuedBeat beat = { g_strdup (call.id), g_strdup (call.status) };

      g_array_append_val (fast->queue, beat);
      queued = TRUE;
      arm = !fast->armed;
      fast->armed = TRUE;
    }
  g_mutex_unlock (&fast->lock);

  if (!queued)
    return FALSE;
  if (arm)
    g_source_set_ready_time (fast->source, 0);

  if (!call.no_reply)
    {
      /* what g_dbus_message_new_method_reply() makes of the call */
      g_autoptr(GDBusMessage) reply = g_dbus_message_new ();

      g_dbus_message_set_message_type (reply, G_DBUS_MESSAGE_TYPE_METHOD_RETURN);
      g_dbus_message_set_flags (reply, G_DBUS_MESSAGE_FLAGS_NO_REPLY_EXPECTED);
      g_dbus_message_set_reply_serial (reply, call.serial);
      g_dbus_message_set_destination (reply, call.sender);
      g_dbus_connection_send_message (fast->connection, reply, G_DBUS_SEND_MESSAGE_FLAGS_NONE, NULL, NULL);
    }
  return TRUE;
}

/* Sees every message GDBus reads, in its worker thread (the Beats
 * claim_beat() took never get here), and counts the state-changing calls
 * that go the normal path, so that a sender's later Beat does not
 * overtake them. */
static GDBusMessage *
filter_message (GDBusConnection *connection,
                GDBusMessage    *message,
                gboolean         incoming,
                gpointer         user_data)
{
  HbFastBeat *fast = user_data;
  const char *path, *interface, *member, *sender, *signature;
  const Change *change = NULL;

  if (!incoming || g_dbus_message_get_message_type (message) != G_DBUS_MESSAGE_TYPE_METHOD_CALL)
    return message;
  path = g_dbus_message_get_path (message);
  member = g_dbus_message_get_member (message);
  sender = g_dbus_message_get_sender (message);
  interface = g_dbus_message_get_interface (message);
  if (path == NULL || strcmp (path, fast->path) != 0 || member == NULL || sender == NULL ||
      (interface && strcmp (interface, fast->interface) != 0))
    return message;

  for (guint i = 0; i < fast->changes->len; i++)
    if (strcmp (member, g_array_index (fast->changes, Change, i).member) == 0)
      {
        change = &g_array_index (fast->changes, Change, i);
        break;
      }
  signature = g_dbus_message_get_signature (message);
  /* not a change, or one GDBus rejects with InvalidArgs before it acts */
  if (change == NULL || strcmp (signature ? signature : "", change->signature) != 0)
    return message;

  g_mutex_lock (&fast->lock);
  g_hash_table_insert (fast->pending, g_strdup (sender),
                       GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (fast->pending, sender)) + 1));
  g_mutex_unlock (&fast->lock);
  g_object_set_data (G_OBJECT (message), COUNTED_KEY, GINT_TO_POINTER (TRUE));
  return message;
}

/* ------------------------------------------------------------------ */
/* API                                                                 */

/**
 * hb_fast_beat_new:
 * @monitor: the monitor the beats go to
 * @callers: where the callers' uids are cached
 *
 * Creates the fast Beat path, enabled but not filtering yet (see
 * hb_fast_beat_start()). Its source, which applies the acknowledged
 * beats, is attached to the global-default main context.
 *
 * Returns: (transfer full): the fast path, for hb_fast_beat_free()
 */
HbFastBeat *
hb_fast_beat_new (HeartbeatMonitor *monitor,
                  HbCallers        *callers)
{
  HbFastBeat *fast;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), NULL);
  g_return_val_if_fail (HB_IS_CALLERS (callers), NULL);

  fast = g_atomic_rc_box_new0 (HbFastBeat);
  g_mutex_init (&fast->lock);
  fast->monitor = g_object_ref (monitor);
  fast->callers = g_object_ref (callers);
  fast->enabled = TRUE;
  fast->owners = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  fast->pending = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  fast->queue = g_array_new (FALSE, FALSE, sizeof (QueuedBeat));
  g_array_set_clear_func (fast->queue, queued_beat_clear);

  fast->source = g_source_new (&drain_funcs, sizeof (GSource));
  g_source_set_static_name (fast->source, "[heartbeatd] acknowledged beats");
  g_source_set_priority (fast->source, G_PRIORITY_DEFAULT);
  /* the source only reads the queue; the HbFastBeat outlives it
   * (hb_fast_beat_free() destroys it before dropping its reference) */
  g_source_set_callback (fast->source, NULL, fast, NULL);
  g_source_attach (fast->source, NULL);

  fast->vanished_id = g_signal_connect (callers, "peer-vanished", G_CALLBACK (on_peer_vanished), fast);
  return fast;
}

/**
 * hb_fast_beat_start:
 * @fast: the fast path
 * @connection: the connection the service is exported on
 * @object_path: the service's object path
 * @interface: the service's interface
 * @changing: (array zero-terminated=1): the methods of @interface that
 *   change an agent (the front's dispatch table says which); Beat is one
 *
 * Starts answering Beats on @connection: mirrors the agents' owners, adds
 * the message filter that counts the changing calls GDBus reads (which the
 * front reports with hb_fast_beat_call_begin() and
 * hb_fast_beat_call_end()), and then the claim on the connection's input
 * that answers certain Beats (none if @connection was not made by
 * hb_bus_filter_connect_sync()). The first call fixes @object_path,
 * @interface and @changing for the lifetime of @fast.
 */
void
hb_fast_beat_start (HbFastBeat         *fast,
                    GDBusConnection    *connection,
                    const char         *object_path,
                    GDBusInterfaceInfo *interface,
                    const char * const *changing)
{
  g_return_if_fail (fast != NULL);
  g_return_if_fail (G_IS_DBUS_CONNECTION (connection));
  g_return_if_fail (fast->filter_id == 0);

  if (fast->changes == NULL)
    {
      gboolean has_beat = FALSE;

      fast->path = g_strdup (object_path);
      fast->interface = g_strdup (interface->name);
      fast->changes = g_array_new (FALSE, FALSE, sizeof (Change));
      g_array_set_clear_func (fast->changes, change_clear);
      for (guint i = 0; changing[i]; i++)
        {
          GDBusMethodInfo *method = g_dbus_interface_info_lookup_method (interface, changing[i]);
          GString *signature = g_string_new (NULL);
          Change change;

          g_assert (method != NULL);
          for (guint j = 0; method->in_args && method->in_args[j]; j++)
            g_string_append (signature, method->in_args[j]->signature);
          change.member = g_strdup (changing[i]);
          change.signature = g_string_free (signature, FALSE);
          g_array_append_val (fast->changes, change);
          if (strcmp (changing[i], BEAT_METHOD) == 0)
            {
              g_assert (strcmp (change.signature, BEAT_SIGNATURE) == 0);
              has_beat = TRUE;
            }
        }
      g_assert (has_beat);
    }

  fast->connection = g_object_ref (connection);
  hb_fast_beat_mirror_owners (fast);
  fast->registered_id = g_signal_connect (fast->monitor, "agent-registered",
                                          G_CALLBACK (on_agent_registered), fast);
  fast->unregistered_id = g_signal_connect (fast->monitor, "agent-unregistered",
                                            G_CALLBACK (on_agent_unregistered), fast);
  fast->filter_id = g_dbus_connection_add_filter (connection, filter_message, fast_beat_ref (fast),
                                                  (GDestroyNotify) fast_beat_unref);
  /* after the filter, which must count every changing call the claim
   * could overtake */
  if (!hb_bus_filter_set_claim (connection, claim_beat, fast_beat_ref (fast),
                                (GDestroyNotify) fast_beat_unref))
    {
      g_debug ("The bus connection does not read through hb-bus-filter: every Beat takes the normal path");
      fast_beat_unref (fast);
    }
}

/**
 * hb_fast_beat_stop:
 * @fast: the fast path
 *
 * Removes the claim and the filter: from now on every call takes the
 * normal path.
 * Beats already acknowledged are applied by the next
 * hb_fast_beat_drain() or on their own.
 */
void
hb_fast_beat_stop (HbFastBeat *fast)
{
  g_return_if_fail (fast != NULL);

  if (fast->filter_id == 0)
    return;
  hb_bus_filter_set_claim (fast->connection, NULL, NULL, NULL);
  g_dbus_connection_remove_filter (fast->connection, fast->filter_id);
  fast->filter_id = 0;
  g_clear_signal_handler (&fast->registered_id, fast->monitor);
  g_clear_signal_handler (&fast->unregistered_id, fast->monitor);
  g_clear_object (&fast->connection);
}

/**
 * hb_fast_beat_free:
 * @fast: (transfer full): the fast path
 *
 * Stops it, and applies the beats acknowledged but not applied yet.
 */
void
hb_fast_beat_free (HbFastBeat *fast)
{
  if (fast == NULL)
    return;
  hb_fast_beat_stop (fast);
  g_clear_signal_handler (&fast->vanished_id, fast->callers);
  g_atomic_int_set (&fast->enabled, FALSE);
  drain (fast);
  g_source_destroy (fast->source);
  fast_beat_unref (fast);
}

/**
 * hb_fast_beat_set_enabled:
 * @fast: the fast path
 * @enabled: whether certain Beats are answered in the worker thread
 *
 * With it off, the filter still counts changing calls (harmless) but
 * the claim takes no Beat.
 */
void
hb_fast_beat_set_enabled (HbFastBeat *fast,
                          gboolean    enabled)
{
  g_return_if_fail (fast != NULL);
  g_atomic_int_set (&fast->enabled, !!enabled);
}

/**
 * hb_fast_beat_mirror_owners:
 * @fast: the fast path
 *
 * Takes the owners of every agent from the monitor again: agents that
 * came without a registration signal (restored from the state file) get
 * in too.
 */
void
hb_fast_beat_mirror_owners (HbFastBeat *fast)
{
  g_autoptr(GPtrArray) agents = NULL;

  g_return_if_fail (fast != NULL);

  agents = heartbeat_monitor_list_agents (fast->monitor);
  g_mutex_lock (&fast->lock);
  g_hash_table_remove_all (fast->owners);
  for (guint i = 0; i < agents->len; i++)
    g_hash_table_insert (fast->owners, g_strdup (heartbeat_agent_get_id (agents->pdata[i])),
                         GUINT_TO_POINTER (heartbeat_agent_get_owner_uid (agents->pdata[i])));
  g_mutex_unlock (&fast->lock);
}

/**
 * hb_fast_beat_drain:
 * @fast: the fast path
 *
 * Applies the beats acknowledged so far. The front calls it before it
 * handles any call or property read, and before an agent is marked gone,
 * so that what a caller sent earlier takes effect first.
 */
void
hb_fast_beat_drain (HbFastBeat *fast)
{
  g_return_if_fail (fast != NULL);
  drain (fast);
}

/**
 * hb_fast_beat_call_begin:
 * @fast: the fast path
 * @invocation: a call of a changing method, as the front received it
 *
 * Returns: whether the filter counted @invocation as a changing call of
 *   its sender still on the normal path; if so, the front calls
 *   hb_fast_beat_call_end() when it is over (answered or failed)
 */
gboolean
hb_fast_beat_call_begin (HbFastBeat            *fast,
                         GDBusMethodInvocation *invocation)
{
  g_return_val_if_fail (fast != NULL, FALSE);
  return g_object_get_data (G_OBJECT (g_dbus_method_invocation_get_message (invocation)),
                            COUNTED_KEY) != NULL;
}

/**
 * hb_fast_beat_call_end:
 * @fast: the fast path
 * @invocation: a call hb_fast_beat_call_begin() said was counted
 *
 * The call is over: the sender's later Beats may take the fast path
 * again once none of its changing calls is left.
 */
void
hb_fast_beat_call_end (HbFastBeat            *fast,
                       GDBusMethodInvocation *invocation)
{
  const char *sender = g_dbus_method_invocation_get_sender (invocation);
  gpointer count;

  g_return_if_fail (fast != NULL);

  g_mutex_lock (&fast->lock);
  count = g_hash_table_lookup (fast->pending, sender);
  if (GPOINTER_TO_UINT (count) > 1)
    g_hash_table_insert (fast->pending, g_strdup (sender),
                         GUINT_TO_POINTER (GPOINTER_TO_UINT (count) - 1));
  else
    g_hash_table_remove (fast->pending, sender);
  g_mutex_unlock (&fast->lock);
}
