/* hb-liveness.c: notices at once when an agent's process or bus peer ends
 *
 * Translates two outside worlds into heartbeat_monitor_mark_gone(): the
 * kernel's process table (an HbProcessWatch per agent with a pid: a pidfd,
 * readable when the process exits; a one-second poll where pidfd_open(2)
 * is missing) and the message bus (HbCallers::peer-vanished, from the
 * daemon's one NameOwnerChanged subscription; an agent bound to a unique
 * name is gone when that name leaves the bus).
 *
 * Monitor calls: heartbeat_monitor_mark_gone() (from the default handler
 * of HbLiveness::gone, so a front can act first),
 * heartbeat_monitor_list_agents(). Monitor signals: agent-registered (a
 * new or restarted agent is watched by its pid and bound-to name, whichever
 * front registered it), agent-unregistered (its watches are dropped).
 * Agents restored from the state file emit no signal; hb_liveness_rebind()
 * watches them, and marks gone at once those whose process or peer went
 * away while the daemon was down.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-liveness.h"
#include "hb-process-watch.h"

typedef struct {
  HbLiveness     *self;      /* unowned; the watch dies with it */
  char           *id;
  gint32          pid;       /* 0: not watching a process */
  HbProcessWatch *process;   /* NULL when not watching a process */
  char           *name;      /* the unique bus name, or NULL */
} Watch;

struct _HbLiveness {
  GObject           parent_instance;
  HeartbeatMonitor *monitor;
  GDBusConnection  *connection;
  HbCallers        *callers;
  GHashTable       *watches;  /* id → Watch, owned */
  GHashTable       *names;    /* unique name → GHashTable set of Watch * */
  GHashTable       *name_checks; /* unique name → GCancellable of its NameHasOwner */
  gulong            peer_vanished_id;
  gulong            registered_id;
  gulong            unregistered_id;
};

G_DEFINE_FINAL_TYPE (HbLiveness, hb_liveness, G_TYPE_OBJECT)

enum {
  SIGNAL_GONE,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/* ------------------------------------------------------------------ */
/* Watches                                                             */

static void
watch_clear_pid (Watch *watch)
{
  g_clear_pointer (&watch->process, hb_process_watch_free);
  watch->pid = 0;
}

/* Stops watching @name for anyone (its check in flight is cancelled). */
static void
drop_name (HbLiveness *self,
           const char *name)
{
  g_hash_table_remove (self->name_checks, name);
  g_hash_table_remove (self->names, name);
}

static void
watch_clear_name (Watch *watch)
{
  if (watch->name)
    {
      GHashTable *set = g_hash_table_lookup (watch->self->names, watch->name);

      if (set)
        {
          g_hash_table_remove (set, watch);
          if (g_hash_table_size (set) == 0)
            drop_name (watch->self, watch->name);
        }
      g_clear_pointer (&watch->name, g_free);
    }
}

static void
watch_free (Watch *watch)
{
  watch_clear_pid (watch);
  watch_clear_name (watch);
  g_free (watch->id);
  g_free (watch);
}

/* Drops a watch that watches nothing any more. */
static void
watch_drop_if_empty (Watch *watch)
{
  if (watch->pid == 0 && watch->name == NULL)
    g_hash_table_remove (watch->self->watches, watch->id);
}

static Watch *
watch_get (HbLiveness *self,
           const char *id)
{
  Watch *watch = g_hash_table_lookup (self->watches, id);

  if (watch)
    return watch;

  watch = g_new0 (Watch, 1);
  watch->self = self;
  watch->id = g_strdup (id);
  g_hash_table_insert (self->watches, watch->id, watch);
  return watch;
}

static void
mark_gone (HbLiveness *self,
           const char *id,
           const char *why)
{
  g_debug ("Agent “%s” is gone: %s", id, why);
  g_signal_emit (self, signals[SIGNAL_GONE], 0, id, why);
}

static void
hb_liveness_real_gone (HbLiveness *self,
                       const char *id,
                       const char *why)
{
  g_autoptr(GError) error = NULL;

  if (!heartbeat_monitor_mark_gone (self->monitor, id, &error))
    g_debug ("Could not mark agent “%s” gone: %s", id, error->message);
}

/* ------------------------------------------------------------------ */
/* Processes                                                           */

/**
 * hb_liveness_check_pid:
 * @pid: a process id, as a caller gave it
 * @error: return location for a #GError
 *
 * Checks that @pid names a running process (a zombie counts: it is
 * noticed as gone as soon as it is watched), so a registration with a
 * wrong pid fails instead of being gone at once.
 *
 * Returns: %TRUE, or %FALSE with %HEARTBEAT_ERROR_INVALID_ARGUMENT set
 */
gboolean
hb_liveness_check_pid (guint32  pid,
                       GError **error)
{
  if (pid == 0 || pid > G_MAXINT32)
    {
      g_set_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                   "%u is not a process id", pid);
      return FALSE;
    }
  if (!hb_process_exists ((gint32) pid))
    {
      g_set_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                   "No process with pid %u is running", pid);
      return FALSE;
    }
  return TRUE;
}

static void
pid_gone (Watch      *watch,
          const char *why)
{
  HbLiveness *self = watch->self;
  g_autofree char *id = g_strdup (watch->id);
  g_autoptr(HbLiveness) hold G_GNUC_UNUSED = g_object_ref (self);

  /* Drop the watch first: marking gone runs signal handlers that may
   * unregister the agent, which frees the watch. */
  watch_clear_pid (watch);
  watch_drop_if_empty (watch);
  mark_gone (self, id, why);
}

static void
on_process_end (gint32       pid,
                HbProcessEnd end,
                gpointer     user_data)
{
  g_autofree char *why = NULL;

  if (end == HB_PROCESS_END_NOT_FOUND)
    why = g_strdup_printf ("process %d no longer exists", pid);
  else
    why = g_strdup_printf ("process %d exited", pid);
  pid_gone (user_data, why);
}

/**
 * hb_liveness_watch_pid:
 * @liveness: a #HbLiveness
 * @id: an agent id
 * @pid: the agent's process
 *
 * Marks the agent gone as soon as @pid exits, replacing any process watch
 * the agent had. If @pid does not exist any more, the agent is marked gone
 * from the main loop right after (never from inside this call, so that
 * whoever registers the agent finishes first).
 */
void
hb_liveness_watch_pid (HbLiveness *liveness,
                       const char *id,
                       gint32      pid)
{
  Watch *watch;

  g_return_if_fail (HB_IS_LIVENESS (liveness));
  g_return_if_fail (id != NULL);
  g_return_if_fail (pid > 0);

  watch = watch_get (liveness, id);
  watch_clear_pid (watch);
  watch->pid = pid;
  watch->process = hb_process_watch_new (pid, "[heartbeatd] liveness pid", on_process_end, watch);
  g_debug ("Watching process %d of agent “%s”", pid, id);
}

/* ------------------------------------------------------------------ */
/* Bus peers                                                           */

static void
names_gone (HbLiveness *self,
            const char *name)
{
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(HbLiveness) hold G_GNUC_UNUSED = g_object_ref (self);
  g_autofree char *name_copy = g_strdup (name); /* @name may be a key we drop */
  GHashTable *set;
  GHashTableIter iter;
  Watch *watch;

  set = g_hash_table_lookup (self->names, name);
  if (set == NULL)
    return;

  /* Collect, then drop the name watches, then mark gone: the monitor's
   * signal handlers may unregister agents and so free watches. */
  g_hash_table_iter_init (&iter, set);
  while (g_hash_table_iter_next (&iter, (gpointer *) &watch, NULL))
    g_ptr_array_add (ids, g_strdup (watch->id));
  for (guint i = 0; i < ids->len; i++)
    {
      watch = g_hash_table_lookup (self->watches, ids->pdata[i]);
      if (watch)
        {
          watch_clear_name (watch);
          watch_drop_if_empty (watch);
        }
    }
  drop_name (self, name_copy);

  for (guint i = 0; i < ids->len; i++)
    {
      g_autofree char *why = g_strdup_printf ("its bus peer %s left the bus", name_copy);
      mark_gone (self, ids->pdata[i], why);
    }
}

static void
on_peer_vanished (HbCallers  *callers,
                  const char *unique_name,
                  HbLiveness *self)
{
  names_gone (self, unique_name);
}

typedef struct {
  HbLiveness   *self;
  char         *name;
  GCancellable *cancellable;
} NameCheck;

static void
name_check_free (NameCheck *check)
{
  g_object_unref (check->self);
  g_free (check->name);
  g_object_unref (check->cancellable);
  g_free (check);
}

static void
on_name_has_owner (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  NameCheck *check = user_data;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  gboolean has_owner = TRUE;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_debug ("NameHasOwner(%s) failed: %s", check->name, error->message);
      name_check_free (check);
      return;
    }
  g_variant_get (reply, "(b)", &has_owner);

  /* still this check's name (not dropped and watched anew since) */
  if (g_hash_table_lookup (check->self->name_checks, check->name) == check->cancellable)
    {
      g_hash_table_remove (check->self->name_checks, check->name);
      if (!has_owner)
        names_gone (check->self, check->name);
    }
  name_check_free (check);
}

/**
 * hb_liveness_watch_name:
 * @liveness: a #HbLiveness
 * @id: an agent id
 * @name: a unique bus name, such as `:1.42`
 *
 * Marks the agent gone as soon as @name leaves the bus, replacing any name
 * the agent was bound to. The first watch of a name asks the bus whether
 * it is still there, so a peer that left before the watch began (while
 * the daemon was down) is noticed too.
 */
void
hb_liveness_watch_name (HbLiveness *liveness,
                        const char *id,
                        const char *name)
{
  Watch *watch;
  GHashTable *set;
  NameCheck *check;

  g_return_if_fail (HB_IS_LIVENESS (liveness));
  g_return_if_fail (id != NULL);
  g_return_if_fail (name != NULL && g_dbus_is_unique_name (name));

  watch = watch_get (liveness, id);
  watch_clear_name (watch);
  watch->name = g_strdup (name);

  g_debug ("Watching bus peer %s of agent “%s”", name, id);
  set = g_hash_table_lookup (liveness->names, name);
  if (set)
    {
      /* Already watched, so known to be on the bus: had it left, its
       * NameOwnerChanged would have dropped the set. */
      g_hash_table_add (set, watch);
      return;
    }
  set = g_hash_table_new (NULL, NULL);
  g_hash_table_insert (liveness->names, g_strdup (name), set);
  g_hash_table_add (set, watch);

  check = g_new0 (NameCheck, 1);
  check->self = g_object_ref (liveness);
  check->name = g_strdup (name);
  check->cancellable = g_cancellable_new ();
  g_hash_table_insert (liveness->name_checks, g_strdup (name), g_object_ref (check->cancellable));
  g_dbus_connection_call (liveness->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                          "org.freedesktop.DBus", "NameHasOwner", g_variant_new ("(s)", name),
                          G_VARIANT_TYPE ("(b)"), G_DBUS_CALL_FLAGS_NONE, -1,
                          check->cancellable, on_name_has_owner, check);
}

/* ------------------------------------------------------------------ */
/* Agents                                                              */

/**
 * hb_liveness_forget:
 * @liveness: a #HbLiveness
 * @id: an agent id
 *
 * Stops watching the agent's process and bus peer, if it had any.
 */
void
hb_liveness_forget (HbLiveness *liveness,
                    const char *id)
{
  g_return_if_fail (HB_IS_LIVENESS (liveness));
  g_return_if_fail (id != NULL);

  g_hash_table_remove (liveness->watches, id);
}

/**
 * hb_liveness_watch_agent:
 * @liveness: a #HbLiveness
 * @agent: a registered agent
 *
 * Replaces the agent's watches with what it is bound to now: its pid, and
 * its bound-to name when that is a unique bus name (other fronts may bind
 * agents to things this bus does not know). A gone agent is not watched.
 */
void
hb_liveness_watch_agent (HbLiveness     *liveness,
                         HeartbeatAgent *agent)
{
  const char *id, *bound_to;
  gint32 pid;

  g_return_if_fail (HB_IS_LIVENESS (liveness));
  g_return_if_fail (agent != NULL);

  id = heartbeat_agent_get_id (agent);
  hb_liveness_forget (liveness, id);
  if (heartbeat_agent_get_state (agent) == HEARTBEAT_AGENT_STATE_GONE)
    return;

  pid = heartbeat_agent_get_pid (agent);
  bound_to = heartbeat_agent_get_bound_to (agent);
  if (pid > 0)
    hb_liveness_watch_pid (liveness, id, pid);
  if (bound_to && g_dbus_is_unique_name (bound_to))
    hb_liveness_watch_name (liveness, id, bound_to);
}

/**
 * hb_liveness_rebind:
 * @liveness: a #HbLiveness
 *
 * Watches every agent the monitor has, as after a restart when agents come
 * back from the state file without a registration signal. Agents whose
 * process or bus peer is already gone are marked gone from the main loop
 * right after.
 */
void
hb_liveness_rebind (HbLiveness *liveness)
{
  g_autoptr(GPtrArray) agents = NULL;

  g_return_if_fail (HB_IS_LIVENESS (liveness));

  agents = heartbeat_monitor_list_agents (liveness->monitor);
  for (guint i = 0; i < agents->len; i++)
    hb_liveness_watch_agent (liveness, agents->pdata[i]);
  g_debug ("Rebound %u agents, %u watched", agents->len,
           g_hash_table_size (liveness->watches));
}

/**
 * hb_liveness_get_n_watched:
 * @liveness: a #HbLiveness
 *
 * Returns: how many agents have a process or bus peer watched
 */
guint
hb_liveness_get_n_watched (HbLiveness *liveness)
{
  g_return_val_if_fail (HB_IS_LIVENESS (liveness), 0);
  return g_hash_table_size (liveness->watches);
}

static void
on_agent_registered (HeartbeatMonitor *monitor,
                     HeartbeatAgent   *agent,
                     HbLiveness       *self)
{
  hb_liveness_watch_agent (self, agent);
}

static void
on_agent_unregistered (HeartbeatMonitor         *monitor,
                       HeartbeatAgent           *agent,
                       HeartbeatUnregisterReason reason,
                       HbLiveness               *self)
{
  hb_liveness_forget (self, heartbeat_agent_get_id (agent));
}

/* ------------------------------------------------------------------ */
/* Object                                                              */

static void
hb_liveness_dispose (GObject *object)
{
  HbLiveness *self = HB_LIVENESS (object);

  if (self->monitor)
    {
      g_clear_signal_handler (&self->registered_id, self->monitor);
      g_clear_signal_handler (&self->unregistered_id, self->monitor);
    }
  if (self->callers)
    g_clear_signal_handler (&self->peer_vanished_id, self->callers);
  if (self->watches)
    g_hash_table_remove_all (self->watches);
  g_clear_object (&self->monitor);
  g_clear_object (&self->connection);
  g_clear_object (&self->callers);

  G_OBJECT_CLASS (hb_liveness_parent_class)->dispose (object);
}

static void
hb_liveness_finalize (GObject *object)
{
  HbLiveness *self = HB_LIVENESS (object);

  g_hash_table_unref (self->watches);
  g_hash_table_unref (self->names);
  g_hash_table_unref (self->name_checks);

  G_OBJECT_CLASS (hb_liveness_parent_class)->finalize (object);
}

static void
hb_liveness_class_init (HbLivenessClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = hb_liveness_dispose;
  object_class->finalize = hb_liveness_finalize;

  /**
   * HbLiveness::gone:
   * @liveness: the #HbLiveness
   * @id: the agent whose process exited or whose bus peer left
   * @why: what happened, for messages
   *
   * The default handler marks the agent gone with
   * heartbeat_monitor_mark_gone(). Handlers connected normally run before
   * it, so a front can first apply what the agent did just before it went
   * (the D-Bus front applies beats it acknowledged but has not handed to
   * the monitor yet, so they do not bring a gone agent back).
   */
  signals[SIGNAL_GONE] =
    g_signal_new_class_handler ("gone", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                G_CALLBACK (hb_liveness_real_gone), NULL, NULL, NULL,
                                G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
}

static void
cancel_and_unref (gpointer cancellable)
{
  g_cancellable_cancel (cancellable);
  g_object_unref (cancellable);
}

static void
hb_liveness_init (HbLiveness *self)
{
  self->watches = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                         (GDestroyNotify) watch_free);
  self->name_checks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, cancel_and_unref);
  self->names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify) g_hash_table_unref);
}

/**
 * hb_liveness_new:
 * @monitor: the monitor whose agents are watched
 * @connection: the bus connection whose peers agents may be bound to
 * @callers: the callers on @connection, whose #HbCallers::peer-vanished
 *   tells when a peer leaves (the one NameOwnerChanged subscription)
 *
 * Starts following @monitor's registrations: every agent registered from
 * now on is watched by its pid and bound-to name. Call
 * hb_liveness_rebind() for agents that exist already.
 *
 * Returns: (transfer full): a new #HbLiveness
 */
HbLiveness *
hb_liveness_new (HeartbeatMonitor *monitor,
                 GDBusConnection  *connection,
                 HbCallers        *callers)
{
  HbLiveness *self;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), NULL);
  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), NULL);
  g_return_val_if_fail (HB_IS_CALLERS (callers), NULL);

  self = g_object_new (HB_TYPE_LIVENESS, NULL);
  self->monitor = g_object_ref (monitor);
  self->connection = g_object_ref (connection);
  self->callers = g_object_ref (callers);
  self->peer_vanished_id = g_signal_connect (callers, "peer-vanished",
                                             G_CALLBACK (on_peer_vanished), self);
  self->registered_id = g_signal_connect (monitor, "agent-registered",
                                          G_CALLBACK (on_agent_registered), self);
  self->unregistered_id = g_signal_connect (monitor, "agent-unregistered",
                                            G_CALLBACK (on_agent_unregistered), self);
  return self;
}
