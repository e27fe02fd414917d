/* hb-units.c: agents backed by a systemd unit ([agent:NAME] unit=)
 *
 * Translates systemd's D-Bus API (org.freedesktop.systemd1 on the daemon's
 * own bus connection: the system manager on the system bus, systemd --user
 * on a session bus) into the monitor's judgment of the agents declared
 * with unit=. For each such unit: Manager.LoadUnit for its object path,
 * one PropertiesChanged subscription on that path (sent by the manager
 * once someone called Manager.Subscribe, which this does once per
 * appearance of the manager), and one GetAll of org.freedesktop.systemd1.Unit
 * and of the unit type's interface (…Service, …Socket, …) to start from.
 * After that it only listens: nothing polls. Manager.Reloading (a
 * daemon-reload) reads every unit again; when org.freedesktop.systemd1
 * leaves the bus every unit is "unknown" until it comes back, and then
 * everything is subscribed and read again. Every call is asynchronous.
 *
 * Judgment, as unit state changes:
 *   active, reloading      the agent runs. When the unit (re)enters active
 *                          (a new ActiveEnterTimestamp or InvocationID) the
 *                          agent starts a new run:
 *                          heartbeat_monitor_mark_started() at that moment.
 *                          The program must then beat within its stale
 *                          threshold, or the agent goes stale: it hangs.
 *                          When a unit is first seen (daemon start, reload)
 *                          its current run only counts as new if the agent
 *                          is gone or has never beaten, or if the unit
 *                          became active after the agent's last activity,
 *                          so a restart of heartbeatd loses no staleness.
 *   inactive, failed       heartbeat_monitor_mark_gone(); but an agent that
 *                          has not run yet (no-heartbeat) stays waiting
 *                          while its unit is inactive: declared before its
 *                          unit was started is not gone
 * Type=                  heartbeat_monitor_set_service(): a Type=oneshot
 *                          unit is a job, whose run has the run timeout;
 *                          any other unit is a service, which has none
 *                          unless its section sets timeout-threshold=
 *   activating, deactivating  no change
 *   MainPID                watched (HbProcessWatch: a pidfd): the
 *                          agent is gone the moment the main process exits,
 *                          also when a Restart= makes the unit "activating"
 *                          rather than inactive.
 *
 * A service that a timer starts (TriggeredBy names X.timer) is judged
 * apart, as a job on the timer's schedule whose runs are records (see
 * "Timers" and unit_judge_job() below): the timer is followed too, the
 * monitor gets the timer's elapses as due times
 * (heartbeat_monitor_set_schedule(), heartbeat_monitor_reschedule()), and
 * each run of the service is heartbeat_monitor_start_run() and
 * heartbeat_monitor_finish_run() with its Result, exit status and
 * timestamps; a failed run makes the agent `error`, a run not started by
 * its due time plus the grace is missed (the agent stale), one past the run
 * timeout (a oneshot's) timed out. Between runs the agent is healthy and
 * idle. A oneshot with no timer is judged as above: mark_started() while it
 * runs, which its beats must follow within the stale threshold, idle when
 * it ends well, gone when it fails.
 * CPU time and memory (CPUUsageNSec, MemoryCurrent) are not sent in
 * PropertiesChanged, so hb_units_describe() reads them from the unit's
 * cgroup when asked: /sys/fs/cgroup/CONTROLGROUP/cpu.stat (usage_usec) and
 * …/memory.current, the very files systemd reports them from.
 *
 * Recognising a unit's processes (hb_units_check_caller_async()): the
 * caller's pid from org.freedesktop.DBus.GetConnectionUnixProcessID, then
 * the "0::/path" line of /proc/PID/cgroup: the caller belongs to the unit
 * when that path is the unit's ControlGroup or below it (a delegated
 * sub-cgroup). Where /proc/PID is hidden (heartbeatd.service has
 * ProtectProc=invisible, so processes of other users are) or there is no
 * unified cgroup hierarchy, systemd is asked instead
 * (Manager.GetUnitByPID), which answers from the same cgroup membership.
 * Caveat: a pid is only a name. If the caller exits and its pid is reused
 * by a process of the unit between the bus daemon's answer and the cgroup
 * lookup, that caller passes; the window is a few milliseconds and needs a
 * process of the unit to be created with exactly that pid, but a pidfd
 * (GetConnectionCredentials' ProcessFD) would close it where the bus
 * offers one.
 *
 * Monitor calls: heartbeat_monitor_mark_started(), heartbeat_monitor_mark_gone(),
 * heartbeat_monitor_set_service(), heartbeat_monitor_mark_idle(),
 * heartbeat_monitor_set_schedule(), heartbeat_monitor_reschedule(),
 * heartbeat_monitor_start_run(), heartbeat_monitor_finish_run(),
 * heartbeat_monitor_lookup(), heartbeat_monitor_to_realtime(),
 * heartbeat_monitor_get_realtime(). Monitor signals: none.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-units.h"
#include "hb-process-watch.h"

#include <string.h>

#define SYSTEMD_NAME      "org.freedesktop.systemd1"
#define SYSTEMD_PATH      "/org/freedesktop/systemd1"
#define MANAGER_IFACE     "org.freedesktop.systemd1.Manager"
#define UNIT_IFACE        "org.freedesktop.systemd1.Unit"
#define PROPERTIES_IFACE  "org.freedesktop.DBus.Properties"
#define SERVICE_IFACE     "org.freedesktop.systemd1.Service"
#define TIMER_IFACE       "org.freedesktop.systemd1.Timer"
#define CGROUP_ROOT       "/sys/fs/cgroup"
#define CALL_TIMEOUT_MS   25000
#define DUE_KEPT          4       /* due times a timer's schedule remembers */
#define CLD_EXITED_CODE   1       /* ExecMainCode of a process that exited (CLD_EXITED) */
#define INVOCATION_SLACK  G_USEC_PER_SEC  /* see unit_judge_job() */

/* A timer-driven service's job: what its timer announced, for the
 * monitor's HeartbeatDueFunc (the next elapses, wall clock, ascending:
 * those due already and the next one), and which of its runs the monitor
 * was told of. Shared by the monitor (the schedule's data) and HbUnits,
 * which keeps it across a reload, so that a due time announced before is
 * still judged and a run is not told twice. */
typedef struct {
  gint64    due[DUE_KEPT];
  guint     n_due;
  gboolean  scheduled;   /* given to the monitor (heartbeat_monitor_set_schedule()) */
  char     *run_open;    /* the InvocationID whose run was started */
  char     *run_closed;  /* the InvocationID whose run was finished */
} Job;

typedef struct {
  HbUnits      *self;          /* unowned; NULL once forgotten */
  char         *agent_id;
  char         *name;
  const char   *type_iface;    /* org.freedesktop.systemd1.Service, …; NULL for a target */
  char         *path;          /* the unit's object path, once LoadUnit answered */
  guint         props_id;      /* PropertiesChanged subscription on path */
  GCancellable *cancellable;   /* the calls for this unit on this connection */
  gboolean      warned;        /* "not found" said once */
  gboolean      known;         /* the Unit interface was read since subscribing */
  gboolean      judged;        /* judged once since hb_units_follow() */
  gboolean      running;       /* last judged active */
  gboolean      have_run;
  guint64       run_enter;     /* the run counted last: ActiveEnterTimestamp… */
  char         *run_invocation; /* …and InvocationID */
  /* the properties, as systemd last said */
  char         *load_state;
  char         *active_state;
  char         *sub_state;
  guint64       active_enter;
  guint64       inactive_exit; /* InactiveExitTimestamp: a oneshot's start */
  char         *invocation;
  char         *service_type; /* Service.Type: simple, oneshot, … */
  guint32       main_pid;
  char         *control_group;
  char         *result;
  gint32        exec_code;     /* ExecMainCode: 0 while no main process exited */
  gint32        exec_status;
  guint32       n_restarts;
  guint64       exec_start;    /* ExecMainStartTimestamp */
  guint64       exec_exit;     /* ExecMainExitTimestamp */
  /* the main process watch */
  guint32       watched_pid;
  HbProcessWatch *process;
  /* the timer that starts it (TriggeredBy), see "Timers" below */
  gint64        grace_usec;    /* the agent's grace= , 0 for the default */
  char         *timer_name;    /* NULL: no timer triggers it */
  char         *timer_path;
  guint         timer_props_id;
  GCancellable *timer_cancellable;
  gboolean      timer_known;   /* the Timer interface was read */
  guint64       timer_next_realtime;   /* NextElapseUSecRealtime (0 or infinity: none) */
  guint64       timer_next_monotonic;  /* NextElapseUSecMonotonic (0 or infinity: none) */
  guint64       timer_last_trigger;    /* LastTriggerUSec */
  guint64       timer_random_delay;    /* RandomizedDelayUSec */
  guint64       timer_accuracy;        /* AccuracyUSec */
  gint64        timer_next;            /* the next elapse on the wall clock, 0 if none */
  gboolean      triggers_known;        /* TriggeredBy was read since subscribing */
  Job          *job;           /* while a timer triggers it (also in HbUnits.timers) */
} Unit;

struct _HbUnits {
  GObject           parent_instance;
  HeartbeatMonitor *monitor;
  GDBusConnection  *connection;     /* nullable */
  guint             name_watch_id;
  char             *systemd_owner;  /* unique name of the manager, NULL while absent */
  gboolean          systemd_absent; /* the name watch said so */
  gboolean          warned_absent;
  guint             reloading_id;
  GCancellable     *cancellable;    /* calls on this connection */
  GHashTable       *units;          /* agent id → Unit */
  GHashTable       *restarted;      /* unit name → guint: restarts heartbeatd made */
  GHashTable       *jobs;           /* agent id → Job of the timer-driven units */
  GHashTable       *old_jobs;       /* those of the units before hb_units_forget_all() */
};

G_DEFINE_FINAL_TYPE (HbUnits, hb_units, G_TYPE_OBJECT)

static void unit_start (Unit *unit);
static void unit_judge (Unit *unit);
static void unit_follow_timer (Unit *unit);
static void unit_stop_timer (Unit *unit);
static void unit_update_schedule (Unit *unit);
static void unit_read_timer (Unit *unit);
static gint64 unit_timer_next (Unit *unit);

/* ------------------------------------------------------------------ */
/* Units                                                               */

static const char *
type_interface (const char *name)
{
  static const struct { const char *suffix; const char *iface; } types[] = {
    { ".service", "org.freedesktop.systemd1.Service" },
    { ".socket", "org.freedesktop.systemd1.Socket" },
    { ".mount", "org.freedesktop.systemd1.Mount" },
    { ".automount", "org.freedesktop.systemd1.Automount" },
    { ".swap", "org.freedesktop.systemd1.Swap" },
    { ".scope", "org.freedesktop.systemd1.Scope" },
    { ".slice", "org.freedesktop.systemd1.Slice" },
    { ".timer", "org.freedesktop.systemd1.Timer" },
    { ".path", "org.freedesktop.systemd1.Path" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (types); i++)
    if (g_str_has_suffix (name, types[i].suffix))
      return types[i].iface;
  return NULL;   /* .target, .device: the Unit interface says it all */
}

static void
job_clear (Job *job)
{
  g_free (job->run_open);
  g_free (job->run_closed);
}

static void
job_unref (gpointer job)
{
  g_rc_box_release_full (job, (GDestroyNotify) job_clear);
}

static Job *
job_ref (Job *job)
{
  return g_rc_box_acquire (job);
}

static void
unit_clear_pid_watch (Unit *unit)
{
  g_clear_pointer (&unit->process, hb_process_watch_free);
}

static void
unit_clear (Unit *unit)
{
  unit_clear_pid_watch (unit);
  g_clear_object (&unit->cancellable);
  g_free (unit->agent_id);
  g_free (unit->name);
  g_free (unit->path);
  g_free (unit->run_invocation);
  g_free (unit->load_state);
  g_free (unit->active_state);
  g_free (unit->sub_state);
  g_free (unit->invocation);
  g_free (unit->control_group);
  g_free (unit->result);
  g_free (unit->service_type);
  g_clear_object (&unit->timer_cancellable);
  g_free (unit->timer_name);
  g_free (unit->timer_path);
  g_clear_pointer (&unit->job, job_unref);
}

static Unit *
unit_ref (Unit *unit)
{
  return g_rc_box_acquire (unit);
}

static void
unit_unref (Unit *unit)
{
  g_rc_box_release_full (unit, (GDestroyNotify) unit_clear);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Unit, unit_unref)

/* What describe() says while systemd has not answered. */
static void
unit_set_unknown (Unit *unit)
{
  unit->known = FALSE;
  g_free (unit->active_state);
  unit->active_state = g_strdup ("unknown");
  g_clear_pointer (&unit->sub_state, g_free);
  g_clear_pointer (&unit->load_state, g_free);
}

/* Drops what ties the unit to the current connection or manager. */
static void
unit_stop_bus (Unit *unit)
{
  HbUnits *self = unit->self;

  g_cancellable_cancel (unit->cancellable);
  g_clear_object (&unit->cancellable);
  unit->cancellable = g_cancellable_new ();
  if (unit->props_id && self && self->connection)
    g_dbus_connection_signal_unsubscribe (self->connection, unit->props_id);
  unit->props_id = 0;
  g_clear_pointer (&unit->path, g_free);
  unit_stop_timer (unit);
  unit_set_unknown (unit);
}

static Unit *
unit_new (HbUnits    *self,
          const char *agent_id,
          const char *name)
{
  Unit *unit = g_rc_box_new0 (Unit);

  unit->self = self;
  unit->agent_id = g_strdup (agent_id);
  unit->name = g_strdup (name);
  unit->type_iface = type_interface (name);
  unit->cancellable = g_cancellable_new ();
  unit->timer_cancellable = g_cancellable_new ();
  unit_set_unknown (unit);
  return unit;
}

/* Called when the hash table drops it: forgotten. Callbacks under way keep
 * their own reference and see self == NULL. */
static void
unit_forget (Unit *unit)
{
  unit_stop_bus (unit);
  unit_clear_pid_watch (unit);
  unit->self = NULL;
  unit_unref (unit);
}

/* ------------------------------------------------------------------ */
/* Properties                                                          */

static void
take_string (char      **field,
             GVariant   *dict,
             const char *key)
{
  g_autoptr(GVariant) value = g_variant_lookup_value (dict, key, G_VARIANT_TYPE_STRING);

  if (value)
    {
      g_free (*field);
      *field = g_variant_dup_string (value, NULL);
    }
}

/* InvocationID is 16 bytes (ay); kept as hex, "" when there is none. */
static void
take_invocation (Unit     *unit,
                 GVariant *dict)
{
  g_autoptr(GVariant) value = g_variant_lookup_value (dict, "InvocationID", G_VARIANT_TYPE_BYTESTRING);
  g_autoptr(GString) hex = NULL;
  const guint8 *bytes;
  gsize n;

  if (value == NULL)
    return;
  bytes = g_variant_get_fixed_array (value, &n, 1);
  hex = g_string_sized_new (2 * n);
  for (gsize i = 0; i < n; i++)
    g_string_append_printf (hex, "%02x", bytes[i]);
  g_free (unit->invocation);
  unit->invocation = g_string_free (g_steal_pointer (&hex), FALSE);
}

/* TriggeredBy: the first timer in it is the unit's (a service has one
 * timer at most, Unit= of a timer being one unit). A new timer is
 * followed; none (once read) leaves the unit without a schedule. */
static void
take_triggers (Unit     *unit,
               GVariant *dict)
{
  g_autofree const char **triggers = NULL;
  const char *timer = NULL;

  if (!g_variant_lookup (dict, "TriggeredBy", "^a&s", &triggers))
    return;
  /* only a service's timer gives it a schedule */
  if (g_strcmp0 (unit->type_iface, SERVICE_IFACE) == 0)
    for (gsize i = 0; triggers[i] && timer == NULL; i++)
      if (g_str_has_suffix (triggers[i], ".timer"))
        timer = triggers[i];
  if (g_strcmp0 (timer, unit->timer_name) != 0)
    {
      unit_stop_timer (unit);
      unit->timer_name = g_strdup (timer);
      unit_follow_timer (unit);
    }
  unit->triggers_known = TRUE;
}

/* Takes the properties of @iface from a{sv} @dict (one that is absent, or
 * of another type, leaves its field as it was). */
static void
unit_apply (Unit       *unit,
            const char *iface,
            GVariant   *dict)
{
  if (strcmp (iface, UNIT_IFACE) == 0)
    {
      take_string (&unit->load_state, dict, "LoadState");
      take_string (&unit->active_state, dict, "ActiveState");
      take_string (&unit->sub_state, dict, "SubState");
      g_variant_lookup (dict, "ActiveEnterTimestamp", "t", &unit->active_enter);
      g_variant_lookup (dict, "InactiveExitTimestamp", "t", &unit->inactive_exit);
      take_invocation (unit, dict);
      take_triggers (unit, dict);
    }
  else if (strcmp (iface, TIMER_IFACE) == 0)
    {
      guint64 realtime = unit->timer_next_realtime, monotonic = unit->timer_next_monotonic;

      g_variant_lookup (dict, "NextElapseUSecRealtime", "t", &unit->timer_next_realtime);
      g_variant_lookup (dict, "NextElapseUSecMonotonic", "t", &unit->timer_next_monotonic);
      g_variant_lookup (dict, "LastTriggerUSec", "t", &unit->timer_last_trigger);
      g_variant_lookup (dict, "RandomizedDelayUSec", "t", &unit->timer_random_delay);
      g_variant_lookup (dict, "AccuracyUSec", "t", &unit->timer_accuracy);
      /* on the wall clock once per announcement: converting a monotonic
       * elapse again would move it by the clocks' jitter */
      if (realtime != unit->timer_next_realtime || monotonic != unit->timer_next_monotonic)
        unit->timer_next = unit_timer_next (unit);
    }
  else
    {
      g_variant_lookup (dict, "MainPID", "u", &unit->main_pid);
      take_string (&unit->service_type, dict, "Type");
      take_string (&unit->control_group, dict, "ControlGroup");
      take_string (&unit->result, dict, "Result");
      g_variant_lookup (dict, "ExecMainCode", "i", &unit->exec_code);
      g_variant_lookup (dict, "ExecMainStatus", "i", &unit->exec_status);
      g_variant_lookup (dict, "NRestarts", "u", &unit->n_restarts);
      g_variant_lookup (dict, "ExecMainStartTimestamp", "t", &unit->exec_start);
      g_variant_lookup (dict, "ExecMainExitTimestamp", "t", &unit->exec_exit);
    }
}

static gboolean
unit_is_found (Unit *unit)
{
  return unit->known && g_strcmp0 (unit->load_state, "not-found") != 0;
}

static void
on_get_all (GObject      *source,
            GAsyncResult *result,
            Unit         *unit,
            const char   *iface)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  g_autoptr(GVariant) dict = NULL;

  if (unit->self == NULL || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (reply == NULL)
    {
      g_debug ("Cannot read %s of unit %s: %s", iface, unit->name, error->message);
      return;
    }
  dict = g_variant_get_child_value (reply, 0);
  unit_apply (unit, iface, dict);
  if (strcmp (iface, UNIT_IFACE) == 0)
    {
      unit->known = TRUE;
      if (!unit_is_found (unit))
        {
          if (!unit->warned)
            g_warning ("Unit %s of agent “%s” is not found; its state is unknown",
                       unit->name, unit->agent_id);
          unit->warned = TRUE;
          return;
        }
      unit->warned = FALSE;
    }
  unit_update_schedule (unit);
  unit_judge (unit);
}

static void
on_get_all_unit (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(Unit) unit = user_data;

  on_get_all (source, result, unit, UNIT_IFACE);
}

static void
on_get_all_type (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(Unit) unit = user_data;

  on_get_all (source, result, unit, unit->type_iface);
}

/* GetAll of one interface; the answer is applied and judged. */
static void
unit_read (Unit       *unit,
           const char *iface)
{
  HbUnits *self = unit->self;

  if (self == NULL || self->connection == NULL || unit->path == NULL || iface == NULL)
    return;
  g_dbus_connection_call (self->connection, SYSTEMD_NAME, unit->path, PROPERTIES_IFACE, "GetAll",
                          g_variant_new ("(s)", iface), G_VARIANT_TYPE ("(a{sv})"),
                          G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS, unit->cancellable,
                          strcmp (iface, UNIT_IFACE) == 0 ? on_get_all_unit : on_get_all_type,
                          unit_ref (unit));
}

static void
on_properties_changed (GDBusConnection *connection,
                       const char      *sender,
                       const char      *path,
                       const char      *interface,
                       const char      *signal,
                       GVariant        *parameters,
                       gpointer         user_data)
{
  Unit *unit = user_data;
  const char *iface;
  g_autoptr(GVariant) changed = NULL;
  g_autofree const char **invalidated = NULL;
  g_autofree char *old_active = NULL;
  gboolean reread;

  if (unit->self == NULL || !g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sa{sv}as)")))
    return;
  g_variant_get (parameters, "(&s@a{sv}^a&s)", &iface, &changed, &invalidated);
  if (strcmp (iface, UNIT_IFACE) != 0 && g_strcmp0 (iface, unit->type_iface) != 0)
    return;
  /* before the first GetAll answered, that answer brings it all */
  if (!unit->known)
    return;

  old_active = g_strdup (unit->active_state);
  unit_apply (unit, iface, changed);
  reread = invalidated && invalidated[0];
  if (reread)
    unit_read (unit, iface);
  /* the main pid and control group may change with the state without being
   * sent; read them with it (the answer comes after this signal's siblings).
   * TriggeredBy is never sent: a timer loaded after the service was read
   * (started, not enabled) is learnt when the service changes state, by
   * the read of the properties a change invalidates (systemd 252 sends
   * some with every change of state), or else by this one */
  if (strcmp (iface, UNIT_IFACE) == 0 && g_strcmp0 (old_active, unit->active_state) != 0)
    {
      if (g_strcmp0 (unit->load_state, "not-found") == 0 ||
          (!reread && unit->timer_name == NULL && g_strcmp0 (unit->type_iface, SERVICE_IFACE) == 0))
        unit_read (unit, UNIT_IFACE);
      unit_read (unit, unit->type_iface);
    }
  if (unit_is_found (unit))
    {
      unit_update_schedule (unit);
      unit_judge (unit);
    }
}

static void
unit_unref_closure (gpointer data)
{
  unit_unref (data);
}

static void
on_loaded (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(Unit) unit = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  HbUnits *self = unit->self;
  const char *path;

  if (self == NULL || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (reply == NULL)
    {
      if (!unit->warned)
        g_warning ("Cannot follow unit %s of agent “%s”: %s", unit->name, unit->agent_id,
                   error->message);
      unit->warned = TRUE;
      return;
    }
  g_variant_get (reply, "(&o)", &path);
  if (g_strcmp0 (path, unit->path) != 0 || unit->props_id == 0)
    {
      if (unit->props_id)
        g_dbus_connection_signal_unsubscribe (self->connection, unit->props_id);
      g_free (unit->path);
      unit->path = g_strdup (path);
      unit->props_id =
        g_dbus_connection_signal_subscribe (self->connection, self->systemd_owner, PROPERTIES_IFACE,
                                            "PropertiesChanged", unit->path, NULL,
                                            G_DBUS_SIGNAL_FLAGS_NONE, on_properties_changed,
                                            unit_ref (unit), unit_unref_closure);
    }
  unit_read (unit, UNIT_IFACE);
  unit_read (unit, unit->type_iface);
  /* after a daemon-reload: the timer's constant properties may be new */
  unit_read_timer (unit);
}

/* Finds the unit's object path (loading the unit if systemd had not),
 * subscribes to its changes and reads it. Again after a daemon-reload. */
static void
unit_start (Unit *unit)
{
  HbUnits *self = unit->self;

  if (self == NULL || self->connection == NULL || self->systemd_owner == NULL)
    return;
  g_dbus_connection_call (self->connection, SYSTEMD_NAME, SYSTEMD_PATH, MANAGER_IFACE, "LoadUnit",
                          g_variant_new ("(s)", unit->name), G_VARIANT_TYPE ("(o)"),
                          G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS, unit->cancellable,
                          on_loaded, unit_ref (unit));
}

/* ------------------------------------------------------------------ */
/* Timers                                                              */
/*
 * A service that a timer starts (its TriggeredBy names X.timer) is a job
 * on a schedule: the timer is followed like the unit (LoadUnit, one
 * PropertiesChanged subscription, one GetAll of org.freedesktop.systemd1.Timer)
 * and the monitor gets a schedule (heartbeat_monitor_set_schedule()) whose
 * due times are the timer's elapses: NextElapseUSecRealtime, or
 * NextElapseUSecMonotonic on the wall clock for a monotonic timer (the
 * sooner of the two when both are set), as systemd announces them. Each
 * change is heartbeat_monitor_reschedule(). An elapse stays due once it
 * was announced: a timer stopped (its next elapse becomes infinity), or
 * one that will not elapse again, still owes the run it announced, so the
 * monitor says it was missed; only an elapse still in the future that
 * systemd moves (a daemon-reload, a clock change) is forgotten. The
 * grace is the agent's grace= (0: HEARTBEAT_GRACE_DEFAULT) plus the
 * timer's RandomizedDelayUSec and AccuracyUSec (how much later than the
 * elapse systemd may start the run). Its runs are told from the service's
 * own properties, see unit_judge_job().
 */

static gint64
job_due_next (gint64   after_realtime,
              gpointer user_data)
{
  const Job *job = user_data;

  for (guint i = 0; i < job->n_due; i++)
    if (job->due[i] > after_realtime)
      return job->due[i];
  return 0;
}

/* Takes an elapse systemd announced (0: none). Returns whether the due
 * times changed. */
static gboolean
job_announce (Job    *job,
              gint64  next,
              gint64  now)
{
  gint64 kept[DUE_KEPT + 1];
  guint n = 0, skip;
  gboolean have = FALSE;

  if (next == 0)
    return FALSE;
  for (guint i = 0; i < job->n_due; i++)
    {
      if (job->due[i] == next)
        have = TRUE;
      /* the elapses that came stay; those still ahead were moved */
      if (job->due[i] <= now || job->due[i] == next)
        kept[n++] = job->due[i];
    }
  if (!have)
    {
      guint at = n;

      while (at > 0 && kept[at - 1] > next)
        {
          kept[at] = kept[at - 1];
          at--;
        }
      kept[at] = next;
      n++;
    }
  /* the oldest go first */
  skip = n > DUE_KEPT ? n - DUE_KEPT : 0;
  n -= skip;
  if (n == job->n_due && memcmp (job->due, kept + skip, n * sizeof (gint64)) == 0)
    return FALSE;
  memcpy (job->due, kept + skip, n * sizeof (gint64));
  job->n_due = n;
  return TRUE;
}

/* systemd's µs, 0 and infinity (UINT64_MAX) meaning none, as gint64 */
static gint64
usec_or_zero (guint64 usec)
{
  return usec < (guint64) G_MAXINT64 ? (gint64) usec : 0;
}

/* The timer's next elapse on the wall clock, 0 if none. */
static gint64
unit_timer_next (Unit *unit)
{
  gint64 realtime = usec_or_zero (unit->timer_next_realtime);
  gint64 monotonic = usec_or_zero (unit->timer_next_monotonic);

  if (monotonic != 0 && unit->self)
    {
      monotonic = heartbeat_monitor_to_realtime (unit->self->monitor, monotonic);
      if (realtime == 0 || monotonic < realtime)
        realtime = monotonic;
    }
  return MAX (realtime, 0);
}

static void
unit_drop_job (Unit *unit)
{
  HbUnits *self = unit->self;
  g_autoptr(GError) error = NULL;

  if (unit->job == NULL)
    return;
  if (self && unit->job->scheduled && heartbeat_monitor_lookup (self->monitor, unit->agent_id) &&
      !heartbeat_monitor_set_schedule (self->monitor, unit->agent_id, NULL, NULL, NULL, 0, &error))
    g_debug ("Cannot take the schedule of agent “%s” away: %s", unit->agent_id, error->message);
  unit->job->scheduled = FALSE;
  if (self && g_hash_table_lookup (self->jobs, unit->agent_id) == unit->job)
    g_hash_table_remove (self->jobs, unit->agent_id);
  g_clear_pointer (&unit->job, job_unref);
}

/* The unit's job and the monitor's schedule, as the timer says now. */
static void
unit_update_schedule (Unit *unit)
{
  HbUnits *self = unit->self;
  g_autoptr(GError) error = NULL;
  HeartbeatAgent *agent;
  gboolean changed;
  gint64 grace;

  if (self == NULL)
    return;
  if (unit->timer_name == NULL)
    {
      /* no timer triggers it (any more) */
      if (unit->triggers_known)
        unit_drop_job (unit);
      return;
    }
  if (unit->job == NULL)
    {
      Job *job = g_hash_table_lookup (self->old_jobs, unit->agent_id);

      if (job == NULL)
        job = g_hash_table_lookup (self->jobs, unit->agent_id);
      unit->job = job ? job_ref (job) : g_rc_box_new0 (Job);
      g_hash_table_replace (self->jobs, g_strdup (unit->agent_id), job_ref (unit->job));
    }
  if (!unit->timer_known)
    return;

  changed = job_announce (unit->job, unit->timer_next, heartbeat_monitor_get_realtime (self->monitor));
  grace = (unit->grace_usec > 0 ? unit->grace_usec : HEARTBEAT_GRACE_DEFAULT) +
          MIN (usec_or_zero (unit->timer_random_delay), HEARTBEAT_THRESHOLD_MAX) +
          MIN (usec_or_zero (unit->timer_accuracy), HEARTBEAT_THRESHOLD_MAX);
  grace = MIN (grace, HEARTBEAT_THRESHOLD_MAX);

  agent = heartbeat_monitor_lookup (self->monitor, unit->agent_id);
  if (agent == NULL)
    return;
  if (!unit->job->scheduled || !heartbeat_agent_has_schedule (agent) ||
      heartbeat_agent_get_grace (agent) != grace)
    {
      g_debug ("Agent “%s” follows %s (next elapse %" G_GINT64_FORMAT ", grace %" G_GINT64_FORMAT " µs)",
               unit->agent_id, unit->timer_name, unit->timer_next, grace);
      if (heartbeat_monitor_set_schedule (self->monitor, unit->agent_id, job_due_next, job_ref (unit->job),
                                          job_unref, grace, &error))
        unit->job->scheduled = TRUE;
      else
        {
          job_unref (unit->job);
          g_message ("Cannot give agent “%s” the schedule of %s: %s", unit->agent_id, unit->timer_name,
                     error->message);
        }
    }
  else if (changed && !heartbeat_monitor_reschedule (self->monitor, unit->agent_id, &error))
    g_debug ("Cannot reschedule agent “%s”: %s", unit->agent_id, error->message);
}

/* Stops following the timer (the schedule stays with the monitor). */
static void
unit_stop_timer (Unit *unit)
{
  HbUnits *self = unit->self;

  g_cancellable_cancel (unit->timer_cancellable);
  g_clear_object (&unit->timer_cancellable);
  unit->timer_cancellable = g_cancellable_new ();
  if (unit->timer_props_id && self && self->connection)
    g_dbus_connection_signal_unsubscribe (self->connection, unit->timer_props_id);
  unit->timer_props_id = 0;
  g_clear_pointer (&unit->timer_name, g_free);
  g_clear_pointer (&unit->timer_path, g_free);
  unit->timer_known = FALSE;
  unit->triggers_known = FALSE;
  unit->timer_next_realtime = unit->timer_next_monotonic = 0;
  unit->timer_last_trigger = unit->timer_random_delay = unit->timer_accuracy = 0;
  unit->timer_next = 0;
}

static void
on_timer_get_all (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(Unit) unit = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  g_autoptr(GVariant) dict = NULL;

  if (unit->self == NULL || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (reply == NULL)
    {
      g_debug ("Cannot read timer %s of unit %s: %s", unit->timer_name, unit->name, error->message);
      return;
    }
  dict = g_variant_get_child_value (reply, 0);
  unit_apply (unit, TIMER_IFACE, dict);
  unit->timer_known = TRUE;
  unit_update_schedule (unit);
}

static void
unit_read_timer (Unit *unit)
{
  HbUnits *self = unit->self;

  if (self == NULL || self->connection == NULL || unit->timer_path == NULL)
    return;
  g_dbus_connection_call (self->connection, SYSTEMD_NAME, unit->timer_path, PROPERTIES_IFACE, "GetAll",
                          g_variant_new ("(s)", TIMER_IFACE), G_VARIANT_TYPE ("(a{sv})"),
                          G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS, unit->timer_cancellable,
                          on_timer_get_all, unit_ref (unit));
}

static void
on_timer_properties_changed (GDBusConnection *connection,
                             const char      *sender,
                             const char      *path,
                             const char      *interface,
                             const char      *signal,
                             GVariant        *parameters,
                             gpointer         user_data)
{
  Unit *unit = user_data;
  const char *iface;
  g_autoptr(GVariant) changed = NULL;
  g_autofree const char **invalidated = NULL;

  if (unit->self == NULL || !g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sa{sv}as)")))
    return;
  g_variant_get (parameters, "(&s@a{sv}^a&s)", &iface, &changed, &invalidated);
  /* before the first GetAll answered, that answer brings it all */
  if (strcmp (iface, TIMER_IFACE) != 0 || !unit->timer_known)
    return;
  unit_apply (unit, TIMER_IFACE, changed);
  if (invalidated && invalidated[0])
    unit_read_timer (unit);
  unit_update_schedule (unit);
}

static void
on_timer_loaded (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(Unit) unit = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  HbUnits *self = unit->self;
  const char *path;

  if (self == NULL || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (reply == NULL)
    {
      g_message ("Cannot follow timer %s of unit %s (agent “%s”): %s", unit->timer_name, unit->name,
                 unit->agent_id, error->message);
      return;
    }
  g_variant_get (reply, "(&o)", &path);
  if (unit->timer_props_id)
    g_dbus_connection_signal_unsubscribe (self->connection, unit->timer_props_id);
  g_free (unit->timer_path);
  unit->timer_path = g_strdup (path);
  unit->timer_props_id =
    g_dbus_connection_signal_subscribe (self->connection, self->systemd_owner, PROPERTIES_IFACE,
                                        "PropertiesChanged", unit->timer_path, TIMER_IFACE,
                                        G_DBUS_SIGNAL_FLAGS_NONE, on_timer_properties_changed,
                                        unit_ref (unit), unit_unref_closure);
  unit_read_timer (unit);
}

/* Follows unit->timer_name (set), from LoadUnit on. */
static void
unit_follow_timer (Unit *unit)
{
  HbUnits *self = unit->self;

  if (unit->timer_name == NULL || self == NULL || self->connection == NULL || self->systemd_owner == NULL)
    return;
  g_dbus_connection_call (self->connection, SYSTEMD_NAME, SYSTEMD_PATH, MANAGER_IFACE, "LoadUnit",
                          g_variant_new ("(s)", unit->timer_name), G_VARIANT_TYPE ("(o)"),
                          G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS, unit->timer_cancellable,
                          on_timer_loaded, unit_ref (unit));
}

/* ------------------------------------------------------------------ */
/* Judgment                                                            */

static void
on_main_pid_exited (gint32       pid,
                    HbProcessEnd end,
                    gpointer     user_data)
{
  Unit *unit = user_data;
  g_autoptr(GError) error = NULL;

  g_debug ("Main process %u of unit %s (agent “%s”) exited", unit->watched_pid, unit->name,
           unit->agent_id);
  unit_clear_pid_watch (unit);
  if (unit->self && !heartbeat_monitor_mark_gone (unit->self->monitor, unit->agent_id, &error))
    g_debug ("Cannot mark agent “%s” gone: %s", unit->agent_id, error->message);
}

/* Watches MainPID (only the unit-backed agents, so a few). */
static void
unit_watch_main_pid (Unit *unit)
{
  if (unit->main_pid == unit->watched_pid)
    return;
  unit->watched_pid = unit->main_pid;
  unit_clear_pid_watch (unit);
  if (unit->main_pid == 0 || unit->main_pid > G_MAXINT32)
    return;
  unit->process = hb_process_watch_new ((gint32) unit->main_pid, "[heartbeatd] unit main pid",
                                        on_main_pid_exited, unit);
}

/* Whether the unit is a Type=oneshot service: one that runs its job while
 * "activating" and is done when it leaves that state. */
static gboolean
unit_is_oneshot (Unit *unit)
{
  return g_strcmp0 (unit->service_type, "oneshot") == 0;
}

/* Whether the agent's last run record is the unit's run that started at
 * @started or ended at @ended (a reload or restart of heartbeatd sees the
 * unit again: its run is not told twice), and if @running, whether that
 * record is still open. */
static gboolean
last_run_is (HeartbeatAgent *agent,
             gint64          started,
             gint64          ended,
             gboolean        running)
{
  g_autoptr(GVariant) run = heartbeat_agent_get_last_run (agent);
  const char *result = NULL;
  gint64 value;

  if (run == NULL)
    return FALSE;
  g_variant_ref_sink (run);
  if (!g_variant_lookup (run, "result", "&s", &result) || (g_strcmp0 (result, "running") == 0) != running)
    return FALSE;
  if (started != 0 && g_variant_lookup (run, "started-usec", "x", &value) && value == started)
    return TRUE;
  return ended != 0 && g_variant_lookup (run, "ended-usec", "x", &value) && value == ended;
}

/* A timer-driven service's run, from its own properties: it starts when
 * the unit starts its work (a oneshot activating its ExecStart=, another
 * service active), at ExecMainStartTimestamp; it ends when the unit is
 * done (inactive or failed, or a oneshot active with RemainAfterExit=):
 * a success if its Result is `success`, with ExecMainStatus as the exit
 * status when the main process exited (ExecMainCode CLD_EXITED; one that
 * a signal ended has none), at ExecMainExitTimestamp. A run is one
 * InvocationID: told once, whatever else changes meanwhile; a run seen
 * only ended (too short for its start to be seen) is recorded from its
 * end. Timestamps older than the invocation (InactiveExitTimestamp)
 * belong to an earlier run and are not used; but systemd takes the main
 * process's start time before the unit leaves inactive (a moment earlier,
 * the fork between them), so a start up to INVOCATION_SLACK before it
 * counts as this invocation's. */
static void
unit_judge_job (Unit           *unit,
                HeartbeatAgent *agent,
                gboolean        runs,
                gboolean        ended)
{
  HbUnits *self = unit->self;
  Job *job = unit->job;
  g_autoptr(GError) error = NULL;
  const char *invocation = unit->invocation ? unit->invocation : "";
  gint64 since = usec_or_zero (unit->inactive_exit);
  gint64 started = usec_or_zero (unit->exec_start);
  gint64 exited = usec_or_zero (unit->exec_exit);

  /* this invocation's, or none */
  if (started < since - INVOCATION_SLACK)
    started = 0;
  if (exited < since || exited < started)
    exited = 0;

  if (runs)
    {
      if (g_strcmp0 (job->run_open, invocation) == 0)
        return;
      g_free (job->run_open);
      job->run_open = g_strdup (invocation);
      /* heartbeatd restarted or reloaded while it ran: the record is open */
      if (!unit->judged && last_run_is (agent, started ? started : since, 0, TRUE))
        return;
      g_debug ("Unit %s of agent “%s” started a run", unit->name, unit->agent_id);
      if (!heartbeat_monitor_start_run (self->monitor, unit->agent_id, started ? started : since, &error))
        g_message ("Cannot start a run of agent “%s”: %s", unit->agent_id, error->message);
    }
  else if (ended)
    {
      HeartbeatRunEnd end = { 0, };

      if (*invocation == '\0' || g_strcmp0 (job->run_closed, invocation) == 0)
        return;
      /* a run of this invocation: seen starting, or its main process ran,
       * or its start failed */
      if (g_strcmp0 (job->run_open, invocation) != 0 && exited == 0 &&
          g_strcmp0 (unit->result, "success") == 0)
        return;
      g_free (job->run_closed);
      job->run_closed = g_strdup (invocation);
      if (!unit->judged && last_run_is (agent, started, exited, FALSE))
        return;
      end.started_realtime = started;
      end.ended_realtime = exited;
      end.success = g_strcmp0 (unit->result, "success") == 0;
      end.exit_status = exited && unit->exec_code == CLD_EXITED_CODE &&
                        unit->exec_status >= 0 && unit->exec_status <= 255 ? unit->exec_status : -1;
      g_debug ("Unit %s of agent “%s” ended a run: %s, exit status %d", unit->name, unit->agent_id,
               unit->result, end.exit_status);
      if (!heartbeat_monitor_finish_run (self->monitor, unit->agent_id, &end, &error))
        g_message ("Cannot finish the run of agent “%s”: %s", unit->agent_id, error->message);
    }
}

static void
unit_judge (Unit *unit)
{
  HbUnits *self = unit->self;
  HeartbeatAgent *agent;
  g_autoptr(GError) error = NULL;
  const char *state, *sub;
  gboolean oneshot, runs, done, down;
  gint64 enter;
  guint64 enter_stamp;

  if (self == NULL || !unit_is_found (unit) || unit->active_state == NULL)
    return;
  /* a service is judged once its Type is known: a oneshot is judged apart */
  if (g_strcmp0 (unit->type_iface, "org.freedesktop.systemd1.Service") == 0 && unit->service_type == NULL)
    return;
  agent = heartbeat_monitor_lookup (self->monitor, unit->agent_id);
  if (agent == NULL)
    return;

  state = unit->active_state;
  sub = unit->sub_state ? unit->sub_state : "";
  oneshot = unit_is_oneshot (unit);
  /* a oneshot's run is a job, which the run timeout is for; any other
   * unit is a service, meant to run until stopped */
  if (!heartbeat_monitor_set_service (self->monitor, unit->agent_id, !oneshot, &error))
    return;
  if (unit->job != NULL)
    {
      /* a timer starts it: a job whose runs are records */
      runs = oneshot ? strcmp (state, "activating") == 0 && strcmp (sub, "start") == 0
                     : strcmp (state, "active") == 0 || strcmp (state, "reloading") == 0;
      done = strcmp (state, "inactive") == 0 || strcmp (state, "failed") == 0 ||
             (oneshot && strcmp (state, "active") == 0);
      unit_judge_job (unit, agent, runs, done);
      /* its runs end with its state, not with its main process */
      unit_clear_pid_watch (unit);
      unit->watched_pid = 0;
      unit->running = runs;
      if (runs || done)
        unit->judged = TRUE;
      return;
    }
  if (oneshot)
    {
      /* its job runs while it is activating (start); it is done when it
       * ends well (inactive, or active (exited) with RemainAfterExit=) */
      runs = strcmp (state, "activating") == 0 && strcmp (sub, "start") == 0;
      done = strcmp (state, "active") == 0 ||
             (strcmp (state, "inactive") == 0 && g_strcmp0 (unit->result, "success") == 0);
      down = !done && (strcmp (state, "inactive") == 0 || strcmp (state, "failed") == 0);
      enter_stamp = unit->inactive_exit;
    }
  else
    {
      runs = strcmp (state, "active") == 0 || strcmp (state, "reloading") == 0;
      done = FALSE;
      down = strcmp (state, "inactive") == 0 || strcmp (state, "failed") == 0;
      enter_stamp = unit->active_enter;
    }
  enter = enter_stamp ? (gint64) enter_stamp : g_get_real_time ();

  if (runs)
    {
      gboolean new_run = !unit->have_run || unit->run_enter != enter_stamp ||
                         g_strcmp0 (unit->run_invocation, unit->invocation) != 0;

      if (new_run)
        {
          gboolean start = TRUE;

          if (!unit->judged)
            {
              HeartbeatAgentState agent_state = heartbeat_agent_get_state (agent);
              gint64 last = heartbeat_monitor_to_realtime (self->monitor,
                                                           heartbeat_agent_get_last_activity_at (agent));

              start = agent_state == HEARTBEAT_AGENT_STATE_GONE ||
                      agent_state == HEARTBEAT_AGENT_STATE_NO_HEARTBEAT ||
                      heartbeat_agent_is_idle (agent) ||
                      enter > last;
            }
          unit->have_run = TRUE;
          unit->run_enter = enter_stamp;
          g_free (unit->run_invocation);
          unit->run_invocation = g_strdup (unit->invocation);
          if (start)
            {
              g_debug ("Unit %s of agent “%s” started a run", unit->name, unit->agent_id);
              if (!heartbeat_monitor_mark_started (self->monitor, unit->agent_id, enter, &error))
                g_message ("Cannot start a new run of agent “%s”: %s", unit->agent_id, error->message);
            }
        }
      unit->running = TRUE;
    }
  else if (done)
    {
      /* a oneshot job that finished: nothing to do until its next start */
      if ((!unit->judged || unit->running) && !heartbeat_agent_is_idle (agent))
        {
          g_debug ("Unit %s of agent “%s” finished its job", unit->name, unit->agent_id);
          if (!heartbeat_monitor_mark_idle (self->monitor, unit->agent_id, &error))
            g_message ("Cannot mark agent “%s” idle: %s", unit->agent_id, error->message);
        }
      unit->running = FALSE;
    }
  else if (down && strcmp (state, "inactive") == 0 &&
           heartbeat_agent_get_state (agent) == HEARTBEAT_AGENT_STATE_NO_HEARTBEAT)
    {
      /* declared and not started yet (declare, reload, then start): the
       * agent waits for its first run; nothing went away */
      unit->running = FALSE;
    }
  else if (down)
    {
      if (!unit->judged || unit->running)
        {
          g_debug ("Unit %s of agent “%s” is %s", unit->name, unit->agent_id, unit->active_state);
          if (!heartbeat_monitor_mark_gone (self->monitor, unit->agent_id, &error))
            g_message ("Cannot mark agent “%s” gone: %s", unit->agent_id, error->message);
        }
      unit->running = FALSE;
    }
  /* activating, deactivating: the state the agent has stays */
  if (runs || done || down)
    unit->judged = TRUE;
  /* a oneshot's main process ends with its job, which is no news */
  if (!oneshot)
    unit_watch_main_pid (unit);
}

/* ------------------------------------------------------------------ */
/* The manager                                                         */

static void
on_subscribed (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);

  if (reply == NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_debug ("systemd Subscribe: %s", error->message);
}

static void
on_reloading (GDBusConnection *connection,
              const char      *sender,
              const char      *path,
              const char      *interface,
              const char      *signal,
              GVariant        *parameters,
              gpointer         user_data)
{
  HbUnits *self = user_data;
  gboolean reloading;
  GHashTableIter iter;
  Unit *unit;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(b)")))
    return;
  g_variant_get (parameters, "(b)", &reloading);
  if (reloading)
    return;
  /* a daemon-reload: units may have been added, removed or changed */
  g_hash_table_iter_init (&iter, self->units);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &unit))
    unit_start (unit);
}

static void
stop_manager (HbUnits *self)
{
  GHashTableIter iter;
  Unit *unit;

  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  if (self->reloading_id && self->connection)
    g_dbus_connection_signal_unsubscribe (self->connection, self->reloading_id);
  self->reloading_id = 0;
  g_clear_pointer (&self->systemd_owner, g_free);
  g_hash_table_iter_init (&iter, self->units);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &unit))
    unit_stop_bus (unit);
}

static void
warn_absent (HbUnits *self)
{
  if (self->warned_absent || g_hash_table_size (self->units) == 0)
    return;
  g_warning ("systemd (%s) is not on the bus; the unit state of %u agents is unknown until it is",
             SYSTEMD_NAME, g_hash_table_size (self->units));
  self->warned_absent = TRUE;
}

static void
on_systemd_appeared (GDBusConnection *connection,
                     const char      *name,
                     const char      *name_owner,
                     gpointer         user_data)
{
  HbUnits *self = user_data;
  GHashTableIter iter;
  Unit *unit;

  stop_manager (self);
  self->systemd_owner = g_strdup (name_owner);
  self->systemd_absent = FALSE;
  if (self->warned_absent)
    g_message ("systemd is on the bus again; following %u units", g_hash_table_size (self->units));
  self->warned_absent = FALSE;

  g_dbus_connection_call (connection, SYSTEMD_NAME, SYSTEMD_PATH, MANAGER_IFACE, "Subscribe",
                          NULL, NULL, G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS,
                          self->cancellable, on_subscribed, NULL);
  self->reloading_id =
    g_dbus_connection_signal_subscribe (connection, name_owner, MANAGER_IFACE, "Reloading",
                                        SYSTEMD_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                        on_reloading, self, NULL);
  g_hash_table_iter_init (&iter, self->units);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &unit))
    unit_start (unit);
}

static void
on_systemd_vanished (GDBusConnection *connection,
                     const char      *name,
                     gpointer         user_data)
{
  HbUnits *self = user_data;

  stop_manager (self);
  self->systemd_absent = TRUE;
  warn_absent (self);
}

/* ------------------------------------------------------------------ */
/* Public                                                              */

/**
 * hb_units_new:
 * @monitor: the monitor whose agents the units back
 * @connection: (nullable): the bus where org.freedesktop.systemd1 is
 *
 * Returns: (transfer full): a new #HbUnits following no unit yet
 */
HbUnits *
hb_units_new (HeartbeatMonitor *monitor,
              GDBusConnection  *connection)
{
  HbUnits *self;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), NULL);
  g_return_val_if_fail (connection == NULL || G_IS_DBUS_CONNECTION (connection), NULL);

  self = g_object_new (HB_TYPE_UNITS, NULL);
  self->monitor = g_object_ref (monitor);
  hb_units_set_connection (self, connection);
  return self;
}

/**
 * hb_units_set_connection:
 * @units: a #HbUnits
 * @connection: (nullable): the bus where org.freedesktop.systemd1 is
 *
 * Follows the units on @connection from now on (after a reconnection);
 * with %NULL every unit is "unknown" until a connection is set.
 */
void
hb_units_set_connection (HbUnits         *units,
                         GDBusConnection *connection)
{
  g_return_if_fail (HB_IS_UNITS (units));
  g_return_if_fail (connection == NULL || G_IS_DBUS_CONNECTION (connection));

  if (connection == units->connection)
    return;
  g_clear_handle_id (&units->name_watch_id, g_bus_unwatch_name);
  stop_manager (units);
  units->systemd_absent = FALSE;
  g_set_object (&units->connection, connection);
  if (connection)
    units->name_watch_id =
      g_bus_watch_name_on_connection (connection, SYSTEMD_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                      on_systemd_appeared, on_systemd_vanished, units, NULL);
}

/**
 * hb_units_follow:
 * @units: a #HbUnits
 * @agent_id: a declared agent
 * @unit_name: its unit= , such as foo.service
 * @grace_usec: its grace= , how late a run its timer starts may start, µs;
 *   0 for %HEARTBEAT_GRACE_DEFAULT (the timer's random delay and accuracy
 *   come on top)
 *
 * Follows @unit_name for @agent_id (replacing a unit it had), and judges
 * the agent by it from the first answer on: a service that a timer starts
 * gets the timer's schedule, and its runs are records.
 */
void
hb_units_follow (HbUnits    *units,
                 const char *agent_id,
                 const char *unit_name,
                 gint64      grace_usec)
{
  Unit *unit;

  g_return_if_fail (HB_IS_UNITS (units));
  g_return_if_fail (agent_id != NULL && unit_name != NULL);

  unit = unit_new (units, agent_id, unit_name);
  unit->grace_usec = MAX (grace_usec, 0);
  g_hash_table_replace (units->units, unit->agent_id, unit);
  if (units->systemd_absent)
    warn_absent (units);
  unit_start (unit);
}

/**
 * hb_units_forget_all:
 * @units: a #HbUnits
 *
 * Stops following every unit (before a reload follows them again). The
 * agents keep their state and their run records; the schedules of
 * timer-driven units are taken away until their timers are read again
 * (what the timers announced is kept for that).
 */
void
hb_units_forget_all (HbUnits *units)
{
  GHashTableIter iter;
  const char *id;
  Job *job;

  g_return_if_fail (HB_IS_UNITS (units));
  g_hash_table_iter_init (&iter, units->jobs);
  while (g_hash_table_iter_next (&iter, (gpointer *) &id, (gpointer *) &job))
    {
      if (job->scheduled && heartbeat_monitor_lookup (units->monitor, id))
        heartbeat_monitor_set_schedule (units->monitor, id, NULL, NULL, NULL, 0, NULL);
      job->scheduled = FALSE;
    }
  g_hash_table_remove_all (units->units);
  g_hash_table_unref (units->old_jobs);
  units->old_jobs = g_steal_pointer (&units->jobs);
  units->jobs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, job_unref);
}

/**
 * hb_units_get_unit_name:
 * @units: a #HbUnits
 * @agent_id: an agent id
 *
 * Returns: (nullable): the unit backing @agent_id, or %NULL if none does
 */
const char *
hb_units_get_unit_name (HbUnits    *units,
                        const char *agent_id)
{
  Unit *unit;

  g_return_val_if_fail (HB_IS_UNITS (units), NULL);
  unit = agent_id ? g_hash_table_lookup (units->units, agent_id) : NULL;
  return unit ? unit->name : NULL;
}

/* A number from a cgroup file: the value of line @key, or with @key NULL
 * the file's only number. */
static gboolean
read_cgroup_number (const char *control_group,
                    const char *file,
                    const char *key,
                    guint64    *number)
{
  g_autofree char *path = NULL;
  g_autofree char *contents = NULL;
  g_auto(GStrv) lines = NULL;
  gsize n;

  if (control_group == NULL || *control_group != '/' || strstr (control_group, "/../"))
    return FALSE;
  path = g_build_filename (CGROUP_ROOT, control_group, file, NULL);
  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return FALSE;
  if (key == NULL)
    return g_ascii_string_to_unsigned (g_strstrip (contents), 10, 0, G_MAXUINT64, number, NULL);
  n = strlen (key);
  lines = g_strsplit (contents, "\n", -1);
  for (gsize i = 0; lines[i]; i++)
    if (strncmp (lines[i], key, n) == 0 && lines[i][n] == ' ')
      return g_ascii_string_to_unsigned (g_strstrip (lines[i] + n + 1), 10, 0, G_MAXUINT64,
                                         number, NULL);
  return FALSE;
}

/**
 * hb_units_describe:
 * @units: a #HbUnits
 * @agent_id: an agent id
 *
 * The unit of @agent_id as the fronts show it: name, active-state,
 * sub-state, main-pid, active-since-usec, cpu-usec and memory-bytes (absent
 * when the cgroup cannot be read), result, exit-status (absent when no main
 * process exited yet), n-restarts (systemd's NRestarts: its own restarts,
 * by Restart=) and heartbeatd-restarts (those an alert's restart-unit= made
 * since heartbeatd started, see hb_units_note_restarted()); for a service
 * a timer starts, timer (its name), next-elapse-usec (its next elapse on
 * the wall clock, absent when none) and last-trigger-usec (when it last
 * elapsed, absent when never).
 *
 * Returns: (transfer floating): an a{sv}, empty when @agent_id has no unit
 */
GVariant *
hb_units_describe (HbUnits    *units,
                   const char *agent_id)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  Unit *unit;
  gboolean found, active;
  guint64 number;

  g_return_val_if_fail (HB_IS_UNITS (units), NULL);

  unit = agent_id ? g_hash_table_lookup (units->units, agent_id) : NULL;
  if (unit == NULL)
    return g_variant_builder_end (&builder);

  found = unit_is_found (unit);
  active = found && (g_strcmp0 (unit->active_state, "active") == 0 ||
                     g_strcmp0 (unit->active_state, "reloading") == 0);
  g_variant_builder_add (&builder, "{sv}", "name", g_variant_new_string (unit->name));
  g_variant_builder_add (&builder, "{sv}", "active-state",
                         g_variant_new_string (found && unit->active_state ? unit->active_state : "unknown"));
  g_variant_builder_add (&builder, "{sv}", "sub-state",
                         g_variant_new_string (found && unit->sub_state ? unit->sub_state : ""));
  g_variant_builder_add (&builder, "{sv}", "main-pid", g_variant_new_uint32 (found ? unit->main_pid : 0));
  g_variant_builder_add (&builder, "{sv}", "active-since-usec",
                         g_variant_new_uint64 (active ? unit->active_enter : 0));
  if (found && unit->control_group && *unit->control_group)
    {
      if (read_cgroup_number (unit->control_group, "cpu.stat", "usage_usec", &number))
        g_variant_builder_add (&builder, "{sv}", "cpu-usec", g_variant_new_uint64 (number));
      if (read_cgroup_number (unit->control_group, "memory.current", NULL, &number))
        g_variant_builder_add (&builder, "{sv}", "memory-bytes", g_variant_new_uint64 (number));
    }
  g_variant_builder_add (&builder, "{sv}", "result",
                         g_variant_new_string (found && unit->result ? unit->result : ""));
  if (found && unit->exec_code != 0)
    g_variant_builder_add (&builder, "{sv}", "exit-status", g_variant_new_int32 (unit->exec_status));
  g_variant_builder_add (&builder, "{sv}", "n-restarts", g_variant_new_uint32 (found ? unit->n_restarts : 0));
  g_variant_builder_add (&builder, "{sv}", "heartbeatd-restarts",
                         g_variant_new_uint32 (GPOINTER_TO_UINT (g_hash_table_lookup (units->restarted, unit->name))));
  if (unit->timer_name)
    {
      g_variant_builder_add (&builder, "{sv}", "timer", g_variant_new_string (unit->timer_name));
      if (unit->timer_known && unit->timer_next > 0)
        g_variant_builder_add (&builder, "{sv}", "next-elapse-usec", g_variant_new_uint64 ((guint64) unit->timer_next));
      if (unit->timer_known && usec_or_zero (unit->timer_last_trigger) > 0)
        g_variant_builder_add (&builder, "{sv}", "last-trigger-usec",
                               g_variant_new_uint64 (unit->timer_last_trigger));
    }
  return g_variant_builder_end (&builder);
}

/**
 * hb_units_note_restarted:
 * @units: a #HbUnits
 * @unit_name: a unit that heartbeatd had systemd restart
 *
 * Counts a restart an alert made (restart-unit=). systemd's NRestarts
 * counts only its own (Restart=), so without this a unit heartbeatd
 * restarted would show no restart at all. The count lasts as long as the
 * daemon, across reloads.
 */
void
hb_units_note_restarted (HbUnits    *units,
                         const char *unit_name)
{
  guint n;

  g_return_if_fail (HB_IS_UNITS (units));
  g_return_if_fail (unit_name != NULL);

  n = GPOINTER_TO_UINT (g_hash_table_lookup (units->restarted, unit_name));
  g_hash_table_replace (units->restarted, g_strdup (unit_name), GUINT_TO_POINTER (MIN (n, G_MAXUINT32 - 1) + 1));
}

/* ------------------------------------------------------------------ */
/* Callers                                                             */

/* The unified hierarchy's path of @pid ("0::/path"), or NULL. */
static char *
read_proc_cgroup (guint32 pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/cgroup", pid);
  g_autofree char *contents = NULL;
  g_auto(GStrv) lines = NULL;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return NULL;
  lines = g_strsplit (contents, "\n", -1);
  for (gsize i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], "0::/"))
      return g_strdup (lines[i] + 3);
  return NULL;
}

static gboolean
cgroup_is_within (const char *cgroup,
                  const char *unit_cgroup)
{
  gsize n = strlen (unit_cgroup);

  if (n == 0)
    return FALSE;
  return strcmp (cgroup, unit_cgroup) == 0 ||
         (strncmp (cgroup, unit_cgroup, n) == 0 && cgroup[n] == '/');
}

/* the source tag of its GTasks (ISO C has no function pointer as void *) */
static char check_caller_tag;

typedef struct {
  Unit    *unit;
  guint32  pid;
} CallerCheck;

static void
caller_check_free (CallerCheck *check)
{
  unit_unref (check->unit);
  g_free (check);
}

static void
on_unit_by_pid (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  CallerCheck *check = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  const char *path;

  if (reply == NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                               "Process %u is not in unit %s: %s", check->pid, check->unit->name,
                               error->message);
      return;
    }
  g_variant_get (reply, "(&o)", &path);
  if (check->unit->path && strcmp (path, check->unit->path) == 0)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                             "Process %u is not in unit %s", check->pid, check->unit->name);
}

static void
on_caller_pid (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  CallerCheck *check = g_task_get_task_data (task);
  HbUnits *self = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  g_autofree char *cgroup = NULL;

  if (reply == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_variant_get (reply, "(u)", &check->pid);
  cgroup = read_proc_cgroup (check->pid);
  if (cgroup && check->unit->control_group && *check->unit->control_group)
    {
      if (cgroup_is_within (cgroup, check->unit->control_group))
        g_task_return_boolean (task, TRUE);
      else
        g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                                 "Process %u (cgroup %s) is not in unit %s (%s)", check->pid,
                                 cgroup, check->unit->name, check->unit->control_group);
      return;
    }
  /* /proc/PID hidden (ProtectProc=invisible), no unified hierarchy, or the
   * unit's cgroup not known yet: systemd knows */
  if (self->connection == NULL || self->systemd_owner == NULL || check->unit->path == NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                               "Cannot tell whether process %u is in unit %s", check->pid,
                               check->unit->name);
      return;
    }
  g_debug ("Asking systemd which unit process %u is in", check->pid);
  g_dbus_connection_call (self->connection, SYSTEMD_NAME, SYSTEMD_PATH, MANAGER_IFACE, "GetUnitByPID",
                          g_variant_new ("(u)", check->pid), G_VARIANT_TYPE ("(o)"),
                          G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS,
                          g_task_get_cancellable (task), on_unit_by_pid, g_object_ref (task));
}

/**
 * hb_units_check_caller_async:
 * @units: a #HbUnits
 * @agent_id: the agent the caller acts for
 * @sender: the caller's unique bus name
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the answer
 * @user_data: for @callback
 *
 * Finds out whether the process behind @sender runs in the unit of
 * @agent_id (its cgroup or one below it). See the top of this file for
 * how, and for the pid-reuse caveat.
 */
void
hb_units_check_caller_async (HbUnits             *units,
                             const char          *agent_id,
                             const char          *sender,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  CallerCheck *check;
  Unit *unit;

  g_return_if_fail (HB_IS_UNITS (units));

  task = g_task_new (units, cancellable, callback, user_data);
  g_task_set_source_tag (task, &check_caller_tag);
  unit = agent_id ? g_hash_table_lookup (units->units, agent_id) : NULL;
  if (unit == NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                               "Agent “%s” is not backed by a unit", agent_id ? agent_id : "");
      return;
    }
  if (units->connection == NULL || sender == NULL || !g_dbus_is_unique_name (sender))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                               "No bus caller to check against unit %s", unit->name);
      return;
    }
  check = g_new0 (CallerCheck, 1);
  check->unit = unit_ref (unit);
  g_task_set_task_data (task, check, (GDestroyNotify) caller_check_free);
  g_dbus_connection_call (units->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                          "org.freedesktop.DBus", "GetConnectionUnixProcessID",
                          g_variant_new ("(s)", sender), G_VARIANT_TYPE ("(u)"),
                          G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, cancellable,
                          on_caller_pid, g_steal_pointer (&task));
}

/**
 * hb_units_check_caller_finish:
 * @units: a #HbUnits
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE if the caller's process is in the agent's unit; %FALSE
 *   with @error set otherwise (%G_IO_ERROR_NOT_FOUND: the agent has no
 *   unit; %G_IO_ERROR_PERMISSION_DENIED: the caller is not in it, or that
 *   cannot be told; or the bus daemon's error)
 */
gboolean
hb_units_check_caller_finish (HbUnits       *units,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, units), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == &check_caller_tag, FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ------------------------------------------------------------------ */
/* Object                                                              */

static void
hb_units_dispose (GObject *object)
{
  HbUnits *self = HB_UNITS (object);

  g_clear_handle_id (&self->name_watch_id, g_bus_unwatch_name);
  if (self->units)
    {
      stop_manager (self);
      g_hash_table_remove_all (self->units);
    }
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->connection);
  g_clear_object (&self->monitor);
  G_OBJECT_CLASS (hb_units_parent_class)->dispose (object);
}

static void
hb_units_finalize (GObject *object)
{
  HbUnits *self = HB_UNITS (object);

  g_clear_pointer (&self->units, g_hash_table_unref);
  g_clear_pointer (&self->restarted, g_hash_table_unref);
  g_clear_pointer (&self->jobs, g_hash_table_unref);
  g_clear_pointer (&self->old_jobs, g_hash_table_unref);
  g_clear_object (&self->cancellable);
  g_free (self->systemd_owner);
  G_OBJECT_CLASS (hb_units_parent_class)->finalize (object);
}

static void
hb_units_class_init (HbUnitsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = hb_units_dispose;
  object_class->finalize = hb_units_finalize;
}

static void
hb_units_init (HbUnits *self)
{
  self->units = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) unit_forget);
  self->restarted = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->jobs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, job_unref);
  self->old_jobs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, job_unref);
  self->cancellable = g_cancellable_new ();
}
