/* hb-files.c: the heartbeat-file front (agents that write a JSON file)
 *
 * Programs that cannot speak D-Bus write a small JSON file now and then
 * (the HeartbeatWriter format of 001_2d60be7041a00626.txt). For each
 * configured file heartbeatd keeps a GFileMonitor (inotify: no polling)
 * and, on every change, reads the file and tells the monitor what it
 * means for the declared agent behind it:
 *
 *   file missing or corrupt,
 *   or not a regular file         → no-heartbeat  (NO_HEARTBEAT)
 *   pid not alive                 → gone          (STALE_PID)
 *   status other than "running"   → error         (ERROR_STATUS)
 *   otherwise                     → a beat at the file's timestamp
 *
 * "Timestamp older than the timeout" (TIMED_OUT) needs no code here: the
 * beat is dated by the file, the agent's stale threshold is the file's
 * timeout, so the monitor's own deadline makes it stale at the right
 * moment. The writer's pid is watched (HbProcessWatch: a pidfd), so its
 * death is seen at once, not at the next write. A bad file is reported
 * with the reason, once per reason, and never trusted: whatever is at the
 * path (a FIFO, a device, a huge file) is neither waited on nor read
 * beyond HB_HEARTBEAT_FILE_MAX_SIZE, and no message quotes its content.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-files.h"
#include "hb-json.h"
#include "hb-process-watch.h"
#include "heartbeat-values.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* The file format                                                     */

void
hb_heartbeat_file_clear (HbHeartbeatFile *file)
{
  g_clear_pointer (&file->process_key, g_free);
  g_clear_pointer (&file->status, g_free);
}

static gboolean
bad (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
bad (GError **error, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  g_propagate_error (error, g_error_new_valist (G_IO_ERROR, G_IO_ERROR_INVALID_DATA, format, args));
  va_end (args);
  return FALSE;
}

static const char *
string_member (JsonObject *object, const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

static gboolean
int_member (JsonObject *object, const char *name, gint64 *value)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  *value = json_node_get_int (node);
  return TRUE;
}

/* Where json-glib gave up, asked while it still knows: its own message
 * quotes the offending token, i.e. file content, which is never echoed. */
typedef struct {
  guint line;
  guint column;
} ParsePosition;

static void
on_parse_error (JsonParser *parser, gpointer error, gpointer user_data)
{
  ParsePosition *position = user_data;

  position->line = json_parser_get_current_line (parser);
  position->column = json_parser_get_current_pos (parser);
}

/**
 * hb_heartbeat_file_parse:
 * @data: the file's contents
 * @length: their length
 * @file: (out caller-allocates): the parsed file; clear it with
 *   hb_heartbeat_file_clear()
 * @error: return location for a #GError
 *
 * Reads a heartbeat file: an object with `process_key` (string), `pid`
 * (positive integer), `timestamp` (ISO 8601 with a time zone), `status`
 * (string) and, optionally, `iteration` (integer).
 *
 * Returns: %TRUE, or %FALSE with @error saying what is wrong (never
 *   quoting @data)
 */
gboolean
hb_heartbeat_file_parse (const char      *data,
                         gsize            length,
                         HbHeartbeatFile *file,
                         GError         **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GDateTime) timestamp = NULL;
  ParsePosition position = { 0 };
  const char *key, *status, *stamp;
  JsonObject *object;
  gint64 pid, iteration = 0;

  memset (file, 0, sizeof *file);
  if (length > HB_HEARTBEAT_FILE_MAX_SIZE)
    return bad (error, "larger than %d bytes", HB_HEARTBEAT_FILE_MAX_SIZE);
  if (!g_utf8_validate_len (data, length, NULL))
    return bad (error, "not UTF-8");
  if (!hb_json_check (data, length, HB_JSON_MAX_DEPTH, NULL))
    return bad (error, "not JSON (a NUL, or nested too deeply)");
  g_signal_connect (parser, "error", G_CALLBACK (on_parse_error), &position);
  if (!json_parser_load_from_data (parser, data, (gssize) length, NULL))
    {
      /* Never json-glib's message: it quotes the file. */
      if (position.line > 0)
        return bad (error, "not JSON (line %u, column %u)", position.line, position.column);
      return bad (error, "not JSON");
    }
  if (json_parser_get_root (parser) == NULL || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    return bad (error, "not a JSON object");
  object = json_node_get_object (json_parser_get_root (parser));

  key = string_member (object, "process_key");
  status = string_member (object, "status");
  stamp = string_member (object, "timestamp");
  if (key == NULL || *key == '\0' || strlen (key) > HEARTBEAT_ID_MAX_LENGTH)
    return bad (error, "no valid \"process_key\"");
  if (!int_member (object, "pid", &pid) || pid <= 0 || pid > G_MAXINT32)
    return bad (error, "no valid \"pid\"");
  /* a control character would let a file write its own lines into the log */
  if (status == NULL ||
      heartbeat_text_check (status, strlen (status), HEARTBEAT_STATUS_MAX_LENGTH) != HEARTBEAT_TEXT_OK)
    return bad (error, "no valid \"status\"");
  if (stamp == NULL || (timestamp = g_date_time_new_from_iso8601 (stamp, NULL)) == NULL)
    return bad (error, "no valid \"timestamp\" (ISO 8601 with a time zone)");
  if (json_object_has_member (object, "iteration") && !int_member (object, "iteration", &iteration))
    return bad (error, "\"iteration\" is not an integer");

  file->process_key = g_strdup (key);
  file->pid = (gint32) pid;
  file->timestamp_usec = g_date_time_to_unix (timestamp) * G_USEC_PER_SEC +
                         g_date_time_get_microsecond (timestamp);
  file->status = g_strdup (status);
  file->iteration = iteration;
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Watching                                                            */

typedef struct {
  HbFiles      *owner;
  char         *agent_id;
  char         *path;
  GFileMonitor *monitor;
  char         *last_problem;   /* reported once per reason */
  gint64        last_timestamp;
  gint64        last_iteration;
  gint32        pid;
  HbProcessWatch *process;      /* the writer's pid, while it runs */
} Watched;

struct _HbFiles {
  GObject           parent_instance;
  HeartbeatMonitor *monitor;
  GPtrArray        *watched;   /* Watched */
};

G_DEFINE_FINAL_TYPE (HbFiles, hb_files, G_TYPE_OBJECT)

static void
watched_clear_pid (Watched *w)
{
  g_clear_pointer (&w->process, hb_process_watch_free);
  w->pid = 0;
}

static void
watched_free (Watched *w)
{
  watched_clear_pid (w);
  if (w->monitor)
    {
      g_signal_handlers_disconnect_by_data (w->monitor, w);
      g_file_monitor_cancel (w->monitor);
      g_object_unref (w->monitor);
    }
  g_free (w->agent_id);
  g_free (w->path);
  g_free (w->last_problem);
  g_free (w);
}

/* Reports a problem once until it changes; NULL: all is well again. */
static void
set_problem (Watched *w, const char *problem)
{
  if (g_strcmp0 (w->last_problem, problem) == 0)
    return;
  if (problem)
    g_warning ("Heartbeat file %s of agent “%s”: %s", w->path, w->agent_id, problem);
  g_free (w->last_problem);
  w->last_problem = g_strdup (problem);
}

static void
mark_gone (Watched *w)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *problem = g_strdup_printf ("process %d is not running", w->pid);

  set_problem (w, problem);
  if (!heartbeat_monitor_mark_gone (w->owner->monitor, w->agent_id, &error))
    g_warning ("Agent “%s”: %s", w->agent_id, error->message);
}

static void
on_pid_exit (gint32 pid, HbProcessEnd end, gpointer user_data)
{
  Watched *w = user_data;

  /* mark_gone() names w->pid: cleared after */
  mark_gone (w);
  g_clear_pointer (&w->process, hb_process_watch_free);
  w->pid = 0;
}

/* Returns FALSE if @pid is not running. */
static gboolean
watch_pid (Watched *w, gint32 pid)
{
  if (w->pid == pid && w->process)
    return TRUE;
  watched_clear_pid (w);

  if (!hb_process_exists (pid))
    return FALSE;
  w->pid = pid;
  w->process = hb_process_watch_new (pid, "[heartbeatd] heartbeat-file pid", on_pid_exit, w);
  return TRUE;
}

static gboolean
io_failed (GError **error, int saved_errno, const char *what)
{
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
               "cannot %s: %s", what, g_strerror (saved_errno));
  return FALSE;
}

/* Reads a heartbeat file without trusting what is at @path: a symlink is
 * followed, but only a regular file is read (never a FIFO, which would
 * block, nor a device, which may never end), only after its size is
 * checked, and never more than HB_HEARTBEAT_FILE_MAX_SIZE bytes (it may
 * grow meanwhile). A missing file is G_FILE_ERROR_NOENT. Returns the
 * contents, NUL-terminated, or NULL with @error set; no message quotes
 * the file. */
static char *
read_heartbeat_file (const char *path, gsize *length, GError **error)
{
  g_autofree char *contents = NULL;
  struct stat st;
  gsize total = 0;
  int fd;

  /* Refuse what is plainly not a file before opening it: open(2) alone
   * has effects on some devices. The fstat() below is what counts. */
  if (stat (path, &st) < 0)
    {
      io_failed (error, errno, "read");
      return NULL;
    }
  if (!S_ISREG (st.st_mode))
    {
      bad (error, "not a regular file");
      return NULL;
    }

  fd = open (path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    {
      io_failed (error, errno, "open");
      return NULL;
    }
  if (fstat (fd, &st) < 0)
    {
      io_failed (error, errno, "read");
      goto out;
    }
  if (!S_ISREG (st.st_mode))
    {
      bad (error, "not a regular file");
      goto out;
    }
  if (st.st_size > HB_HEARTBEAT_FILE_MAX_SIZE)
    {
      bad (error, "larger than %d bytes", HB_HEARTBEAT_FILE_MAX_SIZE);
      goto out;
    }

  /* One byte more than allowed tells a file that grew since fstat(). */
  contents = g_malloc (HB_HEARTBEAT_FILE_MAX_SIZE + 2);
  while (total <= HB_HEARTBEAT_FILE_MAX_SIZE)
    {
      gssize n = read (fd, contents + total, HB_HEARTBEAT_FILE_MAX_SIZE + 1 - total);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          io_failed (error, errno, "read");
          g_clear_pointer (&contents, g_free);
          goto out;
        }
      if (n == 0)
        break;
      total += (gsize) n;
    }
  if (total > HB_HEARTBEAT_FILE_MAX_SIZE)
    {
      bad (error, "larger than %d bytes", HB_HEARTBEAT_FILE_MAX_SIZE);
      g_clear_pointer (&contents, g_free);
      goto out;
    }
  contents[total] = '\0';
  *length = total;

out:
  close (fd);
  return g_steal_pointer (&contents);
}

static void
read_file (Watched *w)
{
  HeartbeatMonitor *monitor = w->owner->monitor;
  g_auto(HbHeartbeatFile) file = { 0 };
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  g_autofree char *problem = NULL;
  gsize length = 0;

  contents = read_heartbeat_file (w->path, &length, &error);
  if (contents == NULL ||
      !hb_heartbeat_file_parse (contents, length, &file, &error))
    {
      problem = g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT)
                ? g_strdup ("missing") : g_strdup (error->message);
      watched_clear_pid (w);
      w->last_timestamp = 0;
      set_problem (w, problem);
      g_clear_error (&error);
      if (!heartbeat_monitor_mark_no_heartbeat (monitor, w->agent_id, &error))
        g_warning ("Agent “%s”: %s", w->agent_id, error->message);
      return;
    }

  /* The same write seen twice (inotify reports a write in several
   * steps): nothing new. */
  if (file.timestamp_usec == w->last_timestamp && file.iteration == w->last_iteration &&
      w->last_problem == NULL)
    return;
  w->last_timestamp = file.timestamp_usec;
  w->last_iteration = file.iteration;

  if (!watch_pid (w, file.pid))
    {
      w->pid = file.pid;
      mark_gone (w);
      return;
    }

  {
    g_auto(GVariantBuilder) metadata = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
    gboolean running = strcmp (file.status, "running") == 0;
    HeartbeatBeatDetails details = { 0 };

    g_variant_builder_add (&metadata, "{sv}", "process-key", g_variant_new_string (file.process_key));
    g_variant_builder_add (&metadata, "{sv}", "pid", g_variant_new_int32 (file.pid));
    g_variant_builder_add (&metadata, "{sv}", "iteration", g_variant_new_int64 (file.iteration));
    g_variant_builder_add (&metadata, "{sv}", "file-status", g_variant_new_string (file.status));
    details.status = running ? "running" : "error";
    details.metadata = g_variant_ref_sink (g_variant_builder_end (&metadata));

    if (running)
      set_problem (w, NULL);
    else
      {
        problem = g_strdup_printf ("status is “%s”, not “running”", file.status);
        set_problem (w, problem);
      }
    if (!heartbeat_monitor_beat_at (monitor, w->agent_id, &details, file.timestamp_usec, &error))
      g_warning ("Agent “%s”: %s", w->agent_id, error->message);
    g_variant_unref (details.metadata);
  }
}

static void
on_changed (GFileMonitor     *file_monitor,
            GFile            *file,
            GFile            *other,
            GFileMonitorEvent event,
            gpointer          user_data)
{
  switch (event)
    {
    case G_FILE_MONITOR_EVENT_CHANGES_DONE_HINT:
    case G_FILE_MONITOR_EVENT_CREATED:
    case G_FILE_MONITOR_EVENT_DELETED:
    case G_FILE_MONITOR_EVENT_MOVED_IN:
    case G_FILE_MONITOR_EVENT_MOVED_OUT:
    case G_FILE_MONITOR_EVENT_RENAMED:
    case G_FILE_MONITOR_EVENT_CHANGED:
      read_file (user_data);
      break;
    case G_FILE_MONITOR_EVENT_ATTRIBUTE_CHANGED:
    case G_FILE_MONITOR_EVENT_PRE_UNMOUNT:
    case G_FILE_MONITOR_EVENT_UNMOUNTED:
    case G_FILE_MONITOR_EVENT_MOVED:
    default:
      break;
    }
}

/**
 * hb_files_watch:
 * @files: a #HbFiles
 * @agent_id: a declared agent
 * @path: its heartbeat file (absolute)
 * @error: return location for a #GError
 *
 * Starts watching @path for @agent_id and reads it at once.
 *
 * Returns: %TRUE, or %FALSE with @error set
 */
gboolean
hb_files_watch (HbFiles    *files,
                const char *agent_id,
                const char *path,
                GError    **error)
{
  g_autoptr(GFile) file = NULL;
  Watched *w;

  g_return_val_if_fail (HB_IS_FILES (files), FALSE);

  if (!g_path_is_absolute (path))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "heartbeat-file “%s” is not an absolute path", path);
      return FALSE;
    }
  if (heartbeat_monitor_lookup (files->monitor, agent_id) == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no agent “%s”", agent_id);
      return FALSE;
    }

  file = g_file_new_for_path (path);
  w = g_new0 (Watched, 1);
  w->owner = files;
  w->agent_id = g_strdup (agent_id);
  w->path = g_strdup (path);
  w->monitor = g_file_monitor_file (file, G_FILE_MONITOR_WATCH_MOVES, NULL, error);
  if (w->monitor == NULL)
    {
      watched_free (w);
      return FALSE;
    }
  g_signal_connect (w->monitor, "changed", G_CALLBACK (on_changed), w);
  g_ptr_array_add (files->watched, w);
  read_file (w);
  return TRUE;
}

/**
 * hb_files_clear:
 * @files: a #HbFiles
 *
 * Stops watching every file (before a reload watches them again).
 */
void
hb_files_clear (HbFiles *files)
{
  g_return_if_fail (HB_IS_FILES (files));
  g_ptr_array_set_size (files->watched, 0);
}

guint
hb_files_get_n_watched (HbFiles *files)
{
  g_return_val_if_fail (HB_IS_FILES (files), 0);
  return files->watched->len;
}

/**
 * hb_files_new:
 * @monitor: the monitor whose declared agents the files stand for
 *
 * Returns: (transfer full): a new #HbFiles
 */
HbFiles *
hb_files_new (HeartbeatMonitor *monitor)
{
  HbFiles *self = g_object_new (HB_TYPE_FILES, NULL);

  self->monitor = g_object_ref (monitor);
  return self;
}

static void
hb_files_finalize (GObject *object)
{
  HbFiles *self = HB_FILES (object);

  g_ptr_array_unref (self->watched);
  g_clear_object (&self->monitor);
  G_OBJECT_CLASS (hb_files_parent_class)->finalize (object);
}

static void
hb_files_class_init (HbFilesClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = hb_files_finalize;
}

static void
hb_files_init (HbFiles *self)
{
  self->watched = g_ptr_array_new_with_free_func ((GDestroyNotify) watched_free);
}
