/* hb-schedules.c: the cron schedules of [agent:NAME] schedule= jobs
 *
 * Each job declared with `schedule=` (a cron expression, hb-cron.c, or else
 * a systemd calendar expression, hb-calendar.c) and `tz=` (default: the
 * machine's time zone) gets a HeartbeatDueFunc that answers the
 * expression's next match; the monitor does the judging (a
 * run not started by its due time plus `grace=` is late). A reload gives
 * every job its schedule again: the monitor keeps what its runs answered,
 * so an unchanged schedule changes nothing, and takes the schedule away
 * from a job whose `schedule=` is gone. Timer-driven units get theirs from
 * hb-units.c; the configuration refuses a job with both.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-schedules.h"

#include "hb-calendar.h"
#include "hb-config.h"
#include "hb-cron.h"

struct _HbSchedules {
  HeartbeatMonitor *monitor;
  GHashTable       *ids;    /* the jobs this file gave a schedule */
};

typedef struct {
  HbCron    *cron;       /* or NULL: */
  char      *calendar;   /* a systemd calendar expression */
  GTimeZone *tz;
  char      *tz_name;    /* tz=, or NULL */
} Schedule;

static void
schedule_free (gpointer data)
{
  Schedule *schedule = data;

  hb_cron_free (schedule->cron);
  g_free (schedule->calendar);
  g_time_zone_unref (schedule->tz);
  g_free (schedule->tz_name);
  g_free (schedule);
}

static gint64
schedule_next (gint64   after_realtime,
               gpointer user_data)
{
  Schedule *schedule = user_data;
  g_autoptr(GError) error = NULL;
  gint64 next;

  if (schedule->cron)
    return hb_cron_next (schedule->cron, schedule->tz, after_realtime);
  next = hb_calendar_next (schedule->calendar, schedule->tz_name, after_realtime, &error);
  if (next == 0 && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
    g_warning ("Cannot tell when “%s” is next due: %s", schedule->calendar, error->message);
  return next;
}

HbSchedules *
hb_schedules_new (HeartbeatMonitor *monitor)
{
  HbSchedules *self = g_new0 (HbSchedules, 1);

  self->monitor = g_object_ref (monitor);
  self->ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return self;
}

void
hb_schedules_free (HbSchedules *self)
{
  if (self == NULL)
    return;
  g_hash_table_unref (self->ids);
  g_object_unref (self->monitor);
  g_free (self);
}

/* Gives each configured job its schedule (the configuration was checked:
 * the expression and the time zone are valid), and takes it away from the
 * jobs this file scheduled before that have none now. */
void
hb_schedules_apply (HbSchedules *self,
                    GPtrArray   *config_agents)
{
  g_autoptr(GHashTable) now = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GHashTableIter iter;
  const char *id;

  for (guint i = 0; i < config_agents->len; i++)
    {
      const HbConfigAgent *agent = g_ptr_array_index (config_agents, i);
      g_autoptr(GError) error = NULL;
      Schedule *schedule;
      HbCron *cron;
      GTimeZone *tz;

      if (agent->schedule == NULL)
        continue;
      /* checked by the configuration: a cron expression, else systemd's */
      cron = hb_cron_parse (agent->schedule, NULL);
      tz = agent->tz ? g_time_zone_new_identifier (agent->tz) : g_time_zone_new_local ();
      if (tz == NULL)
        {
          g_warning ("Agent “%s” has no schedule: unknown time zone", agent->id);
          hb_cron_free (cron);
          continue;
        }
      schedule = g_new0 (Schedule, 1);
      schedule->cron = cron;
      schedule->calendar = cron ? NULL : g_strdup (agent->schedule);
      schedule->tz = tz;
      schedule->tz_name = g_strdup (agent->tz);
      if (!heartbeat_monitor_set_schedule (self->monitor, agent->id, schedule_next, schedule, schedule_free,
                                           agent->grace_usec, &error))
        {
          g_warning ("Agent “%s” has no schedule: %s", agent->id, error->message);
          schedule_free (schedule);
          continue;
        }
      g_hash_table_add (now, g_strdup (agent->id));
    }

  g_hash_table_iter_init (&iter, self->ids);
  while (g_hash_table_iter_next (&iter, (gpointer *) &id, NULL))
    if (!g_hash_table_contains (now, id) && heartbeat_monitor_lookup (self->monitor, id) != NULL)
      heartbeat_monitor_set_schedule (self->monitor, id, NULL, NULL, NULL, 0, NULL);
  g_hash_table_unref (self->ids);
  self->ids = g_steal_pointer (&now);
}
