/* hb-callers.c: who the callers on the bus are, and when they leave
 *
 * One object per bus connection follows the peers that call the daemon:
 * it holds the connection's one subscription to the bus's
 * NameOwnerChanged, learns a caller's uid from the bus
 * (GetConnectionUnixUser) and keeps it per unique name until that name
 * leaves the bus, and says when a unique name leaves ("peer-vanished").
 * fwupd's FuClientList is the shape.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-callers.h"

/**
 * HbCallers:
 *
 * The callers of one bus connection: their uids, learnt once per unique
 * name and cached until the name leaves the bus, and the signal
 * #HbCallers::peer-vanished when a unique name leaves.
 *
 * A unique name is never reused by the bus, so a cached uid stays true
 * for as long as the name exists; the cache holds one entry per caller
 * that is still on the bus and has asked for something that needed it.
 */

typedef struct {
  HbCallersUidFunc func;
  gpointer         user_data;
} Waiter;

struct _HbCallers {
  GObject          parent_instance;

  GDBusConnection *connection;
  guint            name_owner_changed_id;

  GMutex           lock;     /* guards uids: hb_callers_lookup_uid() may run in any thread */
  GHashTable      *uids;     /* unique name → uid */
  GHashTable      *lookups;  /* unique name → GArray of Waiter, while the bus is asked */
};

enum {
  SIGNAL_PEER_VANISHED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (HbCallers, hb_callers, G_TYPE_OBJECT)

/* One GetConnectionUnixUser on its way. It holds the object: the waiters
 * get their answer even if everyone else has let go meanwhile. */
typedef struct {
  HbCallers *self;
  char      *unique_name;
} Lookup;

static void
lookup_free (Lookup *lookup)
{
  g_object_unref (lookup->self);
  g_free (lookup->unique_name);
  g_free (lookup);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Lookup, lookup_free)

static void
on_unix_user (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(Lookup) lookup = user_data;
  HbCallers *self = lookup->self;
  const char *unique_name = lookup->unique_name;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) waiters = NULL;
  g_autofree char *key = NULL;
  guint32 uid = 0;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (!g_hash_table_steal_extended (self->lookups, unique_name, (gpointer *) &key,
                                    (gpointer *) &waiters))
    return;

  if (reply)
    {
      g_variant_get (reply, "(u)", &uid);
      /* The peer cannot have left yet: its NameOwnerChanged comes after
       * this reply, and drops the entry again. */
      g_mutex_lock (&self->lock);
      g_hash_table_insert (self->uids, g_strdup (unique_name), GUINT_TO_POINTER (uid));
      g_mutex_unlock (&self->lock);
      g_debug ("Bus peer %s is uid %u", unique_name, uid);
    }
  else
    {
      g_dbus_error_strip_remote_error (error);
      g_debug ("Could not learn the uid of %s: %s", unique_name, error->message);
    }

  for (guint i = 0; i < waiters->len; i++)
    {
      Waiter *waiter = &g_array_index (waiters, Waiter, i);

      waiter->func (unique_name, uid, error, waiter->user_data);
    }
}

static void
on_name_owner_changed (GDBusConnection *connection,
                       const char      *sender_name,
                       const char      *object_path,
                       const char      *interface_name,
                       const char      *signal_name,
                       GVariant        *parameters,
                       gpointer         user_data)
{
  HbCallers *self = user_data;
  const char *name, *old_owner, *new_owner;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sss)")))
    return;
  g_variant_get (parameters, "(&s&s&s)", &name, &old_owner, &new_owner);
  if (name[0] != ':' || new_owner[0] != '\0')
    return;

  g_mutex_lock (&self->lock);
  g_hash_table_remove (self->uids, name);
  g_mutex_unlock (&self->lock);
  g_signal_emit (self, signals[SIGNAL_PEER_VANISHED], 0, name);
}

static void
hb_callers_dispose (GObject *object)
{
  HbCallers *self = HB_CALLERS (object);

  if (self->connection && self->name_owner_changed_id)
    {
      g_dbus_connection_signal_unsubscribe (self->connection, self->name_owner_changed_id);
      self->name_owner_changed_id = 0;
    }
  g_clear_object (&self->connection);

  G_OBJECT_CLASS (hb_callers_parent_class)->dispose (object);
}

static void
hb_callers_finalize (GObject *object)
{
  HbCallers *self = HB_CALLERS (object);

  /* every lookup holds a reference, so none is left here */
  g_hash_table_unref (self->lookups);
  g_hash_table_unref (self->uids);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (hb_callers_parent_class)->finalize (object);
}

static void
hb_callers_class_init (HbCallersClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = hb_callers_dispose;
  object_class->finalize = hb_callers_finalize;

  /**
   * HbCallers::peer-vanished:
   * @callers: the #HbCallers
   * @unique_name: the unique bus name (":1.42") that left the bus
   *
   * A unique name left the bus (NameOwnerChanged with an empty new
   * owner): the peer closed its connection or was disconnected. Emitted
   * on the thread-default main context of hb_callers_new() for every
   * unique name that leaves, cached or not, after its uid was dropped
   * from the cache. Well-known names are not reported.
   */
  signals[SIGNAL_PEER_VANISHED] =
    g_signal_new ("peer-vanished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
hb_callers_init (HbCallers *self)
{
  g_mutex_init (&self->lock);
  self->uids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->lookups = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) g_array_unref);
}

/**
 * hb_callers_new:
 * @connection: a message bus connection
 *
 * Starts following the callers of @connection: subscribes to the bus's
 * NameOwnerChanged (the only subscription to it the daemon needs; others
 * connect to #HbCallers::peer-vanished). Signals and answers are
 * delivered on the thread-default main context of the caller.
 *
 * Returns: (transfer full): a new #HbCallers
 */
HbCallers *
hb_callers_new (GDBusConnection *connection)
{
  HbCallers *self;

  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), NULL);

  self = g_object_new (HB_TYPE_CALLERS, NULL);
  self->connection = g_object_ref (connection);
  self->name_owner_changed_id =
    g_dbus_connection_signal_subscribe (connection, "org.freedesktop.DBus",
                                        "org.freedesktop.DBus", "NameOwnerChanged",
                                        "/org/freedesktop/DBus", NULL,
                                        G_DBUS_SIGNAL_FLAGS_NONE,
                                        on_name_owner_changed, self, NULL);
  return self;
}

/**
 * hb_callers_lookup_uid:
 * @callers: a #HbCallers
 * @unique_name: a unique bus name
 * @uid: (out): where to put its uid
 *
 * Looks the uid of @unique_name up in the cache only, without asking the
 * bus. Safe to call from any thread (GDBus's worker thread included).
 *
 * Returns: %TRUE and @uid set if the uid is known, else %FALSE
 */
gboolean
hb_callers_lookup_uid (HbCallers  *callers,
                       const char *unique_name,
                       guint32    *uid)
{
  gpointer value;
  gboolean found;

  g_return_val_if_fail (HB_IS_CALLERS (callers), FALSE);
  g_return_val_if_fail (unique_name != NULL, FALSE);
  g_return_val_if_fail (uid != NULL, FALSE);

  g_mutex_lock (&callers->lock);
  found = g_hash_table_lookup_extended (callers->uids, unique_name, NULL, &value);
  g_mutex_unlock (&callers->lock);
  if (found)
    *uid = GPOINTER_TO_UINT (value);
  return found;
}

/**
 * hb_callers_resolve_uid:
 * @callers: a #HbCallers
 * @unique_name: the unique bus name of a caller
 * @func: (scope async): what receives the uid, or the error
 * @user_data: data for @func
 *
 * Tells @func the uid of @unique_name. If it is cached, @func runs at
 * once, before this returns. Otherwise the bus is asked
 * (GetConnectionUnixUser), once for all the requests about one name that
 * come in meanwhile, and @func runs when it answers, after those that
 * asked before it, in the order they asked: so a caller's calls keep
 * their order. A uid the bus gives is cached until the name leaves the
 * bus; an error (the name has already left, say) is passed to @func and
 * not cached. Main context of hb_callers_new() only.
 */
void
hb_callers_resolve_uid (HbCallers        *callers,
                        const char       *unique_name,
                        HbCallersUidFunc  func,
                        gpointer          user_data)
{
  Waiter waiter = { func, user_data };
  GArray *waiters;
  Lookup *lookup;
  guint32 uid;

  g_return_if_fail (HB_IS_CALLERS (callers));
  g_return_if_fail (unique_name != NULL);
  g_return_if_fail (func != NULL);

  if (hb_callers_lookup_uid (callers, unique_name, &uid))
    {
      func (unique_name, uid, NULL, user_data);
      return;
    }

  waiters = g_hash_table_lookup (callers->lookups, unique_name);
  if (waiters)
    {
      g_array_append_val (waiters, waiter);
      return;
    }

  waiters = g_array_new (FALSE, FALSE, sizeof (Waiter));
  g_array_append_val (waiters, waiter);
  g_hash_table_insert (callers->lookups, g_strdup (unique_name), waiters);

  lookup = g_new0 (Lookup, 1);
  lookup->self = g_object_ref (callers);
  lookup->unique_name = g_strdup (unique_name);
  g_dbus_connection_call (callers->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                          "org.freedesktop.DBus", "GetConnectionUnixUser",
                          g_variant_new ("(s)", unique_name), G_VARIANT_TYPE ("(u)"),
                          G_DBUS_CALL_FLAGS_NONE, -1, NULL, on_unix_user, lookup);
}

/**
 * hb_callers_get_n_cached:
 * @callers: a #HbCallers
 *
 * Returns: how many unique names have their uid cached (for tests)
 */
guint
hb_callers_get_n_cached (HbCallers *callers)
{
  guint n;

  g_return_val_if_fail (HB_IS_CALLERS (callers), 0);

  g_mutex_lock (&callers->lock);
  n = g_hash_table_size (callers->uids);
  g_mutex_unlock (&callers->lock);
  return n;
}
