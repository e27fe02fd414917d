/* hb-event-log.c: the event log front
 *
 * One JSON object per line for every monitor event (registered,
 * unregistered, stale, timed-out, recovered, state, and events posted with
 * POST /event), the JSONL logs of 000_7adf5494a8465984.txt and
 * 003_31ee32263f03983b.txt:
 *
 *   {"time": "2026-11-25T04:02:12.123456Z", "event": "stale",
 *    "agent": "backup", "state": "stale", "idle-usec": 300000000}
 *
 * The file is rotated at the first event of a new day (UTC): FILE becomes
 * FILE.YYYY-MM-DD and the oldest beyond `retention` are deleted. A write
 * that fails is logged once and retried with the next event.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-event-log.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

struct _HbEventLog {
  GObject           parent_instance;
  HeartbeatMonitor *monitor;
  char             *path;
  guint             retention;
  FILE             *file;
  char             *day;       /* YYYY-MM-DD of what the file holds */
  gboolean          failing;
  HbEventLogClock   clock;
  gpointer          clock_data;
};

G_DEFINE_FINAL_TYPE (HbEventLog, hb_event_log, G_TYPE_OBJECT)

static gint64
log_now (HbEventLog *self)
{
  return self->clock ? self->clock (self->clock_data) : g_get_real_time ();
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

/* Deletes FILE.YYYY-MM-DD beyond the newest @retention. */
static void
prune (HbEventLog *self)
{
  g_autofree char *dir_name = g_path_get_dirname (self->path);
  g_autofree char *base = g_path_get_basename (self->path);
  g_autofree char *prefix = g_strconcat (base, ".", NULL);
  g_autoptr(GDir) dir = g_dir_open (dir_name, 0, NULL);
  g_autoptr(GPtrArray) old = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  while (dir && (name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_prefix (name, prefix) && strlen (name) == strlen (prefix) + 10)
      g_ptr_array_add (old, g_strdup (name));
  g_ptr_array_sort (old, compare_names);
  for (guint i = 0; old->len > self->retention && i < old->len - self->retention; i++)
    {
      g_autofree char *path = g_build_filename (dir_name, g_ptr_array_index (old, i), NULL);
      g_unlink (path);
    }
}

static gboolean
open_for (HbEventLog *self,
          const char *day,
          GError    **error)
{
  GStatBuf st;

  if (self->file && g_strcmp0 (self->day, day) == 0)
    return TRUE;
  if (self->file)
    {
      fclose (self->file);
      self->file = NULL;
    }

  /* The file on disk belongs to another day: rotate it. The day of a file
   * we did not write ourselves is its modification day. */
  if (g_stat (self->path, &st) == 0)
    {
      g_autofree char *file_day = self->day ? g_strdup (self->day) : NULL;

      if (file_day == NULL)
        {
          g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc (st.st_mtime);
          file_day = g_date_time_format (t, "%Y-%m-%d");
        }
      if (strcmp (file_day, day) != 0)
        {
          g_autofree char *rotated = g_strdup_printf ("%s.%s", self->path, file_day);

          if (g_rename (self->path, rotated) != 0)
            g_warning ("Cannot rotate %s: %s", self->path, g_strerror (errno));
          prune (self);
        }
    }

  self->file = g_fopen (self->path, "a");
  if (self->file == NULL)
    {
      int saved = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved), "%s: %s", self->path, g_strerror (saved));
      return FALSE;
    }
  g_free (self->day);
  self->day = g_strdup (day);
  return TRUE;
}

/**
 * hb_event_log_write:
 * @log: a #HbEventLog
 * @event: the event's name
 * @agent: (nullable): the agent it is about
 * @extra: (nullable): an `a{sv}` of more members
 * @error: return location for a #GError
 *
 * Appends one line (rotating first if the day changed).
 *
 * Returns: %TRUE on success
 */
gboolean
hb_event_log_write (HbEventLog     *log,
                    const char     *event,
                    HeartbeatAgent *agent,
                    GVariant       *extra,
                    GError        **error)
{
  g_autoptr(GVariant) held = extra ? g_variant_ref_sink (extra) : NULL;
  gint64 now = log_now (log);
  g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc (now / G_USEC_PER_SEC);
  g_autoptr(GDateTime) precise = g_date_time_add (t, now % G_USEC_PER_SEC);
  g_autofree char *day = g_date_time_format (precise, "%Y-%m-%d");
  g_autofree char *time = g_date_time_format (precise, "%Y-%m-%dT%H:%M:%S.%fZ");
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *line = NULL;

  g_return_val_if_fail (HB_IS_EVENT_LOG (log), FALSE);

  if (!open_for (log, day, error))
    return FALSE;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "time");
  json_builder_add_string_value (b, time);
  json_builder_set_member_name (b, "event");
  json_builder_add_string_value (b, event);
  if (agent)
    {
      json_builder_set_member_name (b, "agent");
      json_builder_add_string_value (b, heartbeat_agent_get_id (agent));
      json_builder_set_member_name (b, "state");
      json_builder_add_string_value (b, heartbeat_agent_state_to_string (heartbeat_agent_get_state (agent)));
    }
  if (held)
    {
      GVariantIter iter;
      const char *key;
      GVariant *value;

      g_variant_iter_init (&iter, held);
      while (g_variant_iter_loop (&iter, "{&sv}", &key, &value))
        {
          json_builder_set_member_name (b, key);
          json_builder_add_value (b, json_gvariant_serialize (value));
        }
    }
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (generator, root);
  line = json_generator_to_data (generator, NULL);

  if (fprintf (log->file, "%s\n", line) < 0 || fflush (log->file) != 0)
    {
      int saved = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved), "%s: %s", log->path, g_strerror (saved));
      fclose (log->file);
      log->file = NULL;
      return FALSE;
    }
  return TRUE;
}

static void
log_event (HbEventLog *self, const char *event, HeartbeatAgent *agent, GVariant *extra)
{
  g_autoptr(GError) error = NULL;

  if (hb_event_log_write (self, event, agent, extra, &error))
    {
      self->failing = FALSE;
      return;
    }
  if (!self->failing)
    g_warning ("Cannot write the event log: %s", error->message);
  self->failing = TRUE;
}

static GVariant *
one (const char *key, GVariant *value)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", key, value);
  return g_variant_builder_end (&b);
}

static void
on_registered (HeartbeatMonitor *m, HeartbeatAgent *agent, HbEventLog *self)
{
  log_event (self, "registered", agent, NULL);
}

static void
on_unregistered (HeartbeatMonitor *m, HeartbeatAgent *agent, HeartbeatUnregisterReason reason, HbEventLog *self)
{
  log_event (self, "unregistered", agent, one ("reason", g_variant_new_string (heartbeat_unregister_reason_to_string (reason))));
}

static void
on_stale (HeartbeatMonitor *m, HeartbeatAgent *agent, gint64 idle, HbEventLog *self)
{
  log_event (self, "stale", agent, one ("idle-usec", g_variant_new_int64 (idle)));
}

static void
on_timed_out (HeartbeatMonitor *m, HeartbeatAgent *agent, gint64 running, HbEventLog *self)
{
  log_event (self, "timed-out", agent, one ("running-usec", g_variant_new_int64 (running)));
}

static void
on_recovered (HeartbeatMonitor *m, HeartbeatAgent *agent, HbEventLog *self)
{
  log_event (self, "recovered", agent, NULL);
}

static void
on_state_changed (HeartbeatMonitor *m, HeartbeatAgent *agent, HeartbeatAgentState old_state,
                  HeartbeatAgentState new_state, HbEventLog *self)
{
  log_event (self, "state", agent, one ("old-state", g_variant_new_string (heartbeat_agent_state_to_string (old_state))));
}

static void
on_event_posted (HeartbeatMonitor *m, const char *type, GVariant *data, HbEventLog *self)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "type", g_variant_new_string (type));
  g_variant_builder_add (&b, "{sv}", "data", data);
  log_event (self, "event", NULL, g_variant_builder_end (&b));
}

void
hb_event_log_set_clock (HbEventLog      *log,
                        HbEventLogClock  clock,
                        gpointer         user_data)
{
  g_return_if_fail (HB_IS_EVENT_LOG (log));
  log->clock = clock;
  log->clock_data = user_data;
}

/**
 * hb_event_log_new:
 * @monitor: the monitor whose events are logged
 * @path: the log file (created if missing)
 * @retention: how many rotated files to keep
 *
 * Returns: (transfer full): a new #HbEventLog
 */
HbEventLog *
hb_event_log_new (HeartbeatMonitor *monitor,
                  const char       *path,
                  guint             retention)
{
  HbEventLog *self = g_object_new (HB_TYPE_EVENT_LOG, NULL);

  self->monitor = g_object_ref (monitor);
  self->path = g_strdup (path);
  self->retention = retention;
  g_signal_connect_object (monitor, "agent-registered", G_CALLBACK (on_registered), self, 0);
  g_signal_connect_object (monitor, "agent-unregistered", G_CALLBACK (on_unregistered), self, 0);
  g_signal_connect_object (monitor, "agent-stale", G_CALLBACK (on_stale), self, 0);
  g_signal_connect_object (monitor, "agent-timed-out", G_CALLBACK (on_timed_out), self, 0);
  g_signal_connect_object (monitor, "agent-recovered", G_CALLBACK (on_recovered), self, 0);
  g_signal_connect_object (monitor, "agent-state-changed", G_CALLBACK (on_state_changed), self, 0);
  g_signal_connect_object (monitor, "event-posted", G_CALLBACK (on_event_posted), self, 0);
  return self;
}

static void
hb_event_log_dispose (GObject *object)
{
  HbEventLog *self = HB_EVENT_LOG (object);

  if (self->monitor)
    g_signal_handlers_disconnect_by_data (self->monitor, self);
  g_clear_object (&self->monitor);
  G_OBJECT_CLASS (hb_event_log_parent_class)->dispose (object);
}

static void
hb_event_log_finalize (GObject *object)
{
  HbEventLog *self = HB_EVENT_LOG (object);

  if (self->file)
    fclose (self->file);
  g_free (self->path);
  g_free (self->day);
  G_OBJECT_CLASS (hb_event_log_parent_class)->finalize (object);
}

static void
hb_event_log_class_init (HbEventLogClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = hb_event_log_dispose;
  object_class->finalize = hb_event_log_finalize;
}

static void
hb_event_log_init (HbEventLog *self)
{
}
