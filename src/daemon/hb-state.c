/* hb-state.c: the persistence front (registrations survive restarts)
 *
 * One JSON file, STATE_DIR/agents.json, always replaced whole and
 * atomically (write a temporary file, fsync, rename), so a crash at any
 * moment leaves the old file or the new one, never a mix:
 *
 *   { "version": 1, "saved-at": <wall-clock µs>,
 *     "agents": [ { "id": "backup", "task-id": "nightly", "state": "healthy",
 *                   "status": "running", "owner-uid": 1000, "pid": 0,
 *                   "bound-to": null, "declared": false, "beats": 12,
 *                   "stale-after-usec": 0, "timeout-after-usec": 0,
 *                   "started-at": <wall-clock µs>,
 *                   "last-activity-at": <wall-clock µs>,
 *                   "metadata": "{'host': <'db1'>}" }, … ] }
 *
 * Thresholds of 0 mean "the monitor's", so a reload still moves them.
 * Metadata is the GVariant text format, which keeps its types exactly.
 *
 * When: a registration or an unregistration by a caller is written before
 * it counts, through the monitor's commit function: if the write fails the
 * monitor takes the change back and the caller gets NotSaved, so nothing
 * acknowledged is ever lost to a full disk and a kill -9. An idle mark is
 * refused the same way while the directory cannot be written. Beats, and
 * changes the deadlines bring, are batched: at most one write a second. A
 * write that fails sets the problem property (the daemon puts it in its
 * systemd STATUS, /health and GetStatus) and is retried every few seconds.
 *
 * Nothing limits the size of the file read back: what the fronts accept is
 * bounded ([limits] max-agents, agents-per-uid and 16 KiB of metadata an
 * agent), so the loader never drops a readable agent for size. Its nesting
 * is checked as text before parsing. One daemon per directory: see
 * hb_state_lock().
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-state.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "hb-json.h"

#define STATE_VERSION      1
#define STATE_FILE         "agents.json"
#define BATCH_MS           1000
#define RETRY_SECONDS      5
#define LOCK_FILE          "lock"
/* The file's own structure nests three levels; metadata is a string. */
#define STATE_MAX_DEPTH    8

struct _HbState {
  GObject           parent_instance;

  HeartbeatMonitor *monitor;
  char             *directory;
  char             *path;
  char             *problem;
  guint             batch_id;      /* a batched write is pending */
  guint             retry_id;      /* a failed write will be retried */
  gboolean          loading;       /* restoring: the monitor's signals are ours */
  guint64           write_count;
  GMainContext     *context;       /* where asynchronous writes report */
  GThreadPool      *writer;        /* one thread: writes in order */
  GMutex            writer_lock;
  GCond             writer_cond;
  int               lock_fd;       /* holds the directory's lock, or -1 */
};

enum {
  PROP_0,
  PROP_PROBLEM,
  PROP_WRITE_COUNT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (HbState, hb_state, G_TYPE_OBJECT)

static void
set_problem (HbState    *self,
             const char *problem)
{
  if (g_strcmp0 (self->problem, problem) == 0)
    return;
  g_free (self->problem);
  self->problem = g_strdup (problem);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PROBLEM]);
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */

static void
add_agent (JsonBuilder      *builder,
           HeartbeatMonitor *monitor,
           HeartbeatAgent   *agent)
{
  GVariant *metadata = heartbeat_agent_get_metadata (agent);
  const char *task_id = heartbeat_agent_get_task_id (agent);
  const char *bound_to = heartbeat_agent_get_bound_to (agent);
  const char *status = heartbeat_agent_get_status (agent);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "id");
  json_builder_add_string_value (builder, heartbeat_agent_get_id (agent));
  json_builder_set_member_name (builder, "task-id");
  if (task_id)
    json_builder_add_string_value (builder, task_id);
  else
    json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "state");
  json_builder_add_string_value (builder, heartbeat_agent_state_to_string (heartbeat_agent_get_state (agent)));
  json_builder_set_member_name (builder, "status");
  if (status)
    json_builder_add_string_value (builder, status);
  else
    json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "owner-uid");
  json_builder_add_int_value (builder, heartbeat_agent_get_owner_uid (agent));
  json_builder_set_member_name (builder, "pid");
  json_builder_add_int_value (builder, heartbeat_agent_get_pid (agent));
  json_builder_set_member_name (builder, "bound-to");
  if (bound_to)
    json_builder_add_string_value (builder, bound_to);
  else
    json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "declared");
  json_builder_add_boolean_value (builder, heartbeat_agent_is_declared (agent));
  json_builder_set_member_name (builder, "beats");
  json_builder_add_int_value (builder, (gint64) MIN (heartbeat_agent_get_beats (agent), (guint64) G_MAXINT64));
  json_builder_set_member_name (builder, "stale-after-usec");
  json_builder_add_int_value (builder, heartbeat_agent_get_own_stale_after (agent));
  json_builder_set_member_name (builder, "timeout-after-usec");
  json_builder_add_int_value (builder, heartbeat_agent_get_own_timeout_after (agent));
  json_builder_set_member_name (builder, "started-at");
  json_builder_add_int_value (builder, heartbeat_monitor_to_realtime (monitor, heartbeat_agent_get_started_at (agent)));
  json_builder_set_member_name (builder, "last-activity-at");
  json_builder_add_int_value (builder, heartbeat_monitor_to_realtime (monitor, heartbeat_agent_get_last_activity_at (agent)));
  json_builder_set_member_name (builder, "metadata");
  if (metadata)
    {
      g_autofree char *text = g_variant_print (metadata, TRUE);
      json_builder_add_string_value (builder, text);
    }
  else
    json_builder_add_null_value (builder);
  json_builder_end_object (builder);
}

static char *
serialize (HbState *self,
           gsize   *length)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(GPtrArray) agents = heartbeat_monitor_list_agents (self->monitor);
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "version");
  json_builder_add_int_value (builder, STATE_VERSION);
  json_builder_set_member_name (builder, "saved-at");
  json_builder_add_int_value (builder, g_get_real_time ());
  json_builder_set_member_name (builder, "agents");
  json_builder_begin_array (builder);
  for (guint i = 0; i < agents->len; i++)
    add_agent (builder, self->monitor, g_ptr_array_index (agents, i));
  json_builder_end_array (builder);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  json_generator_set_pretty (generator, TRUE);
  return json_generator_to_data (generator, length);
}

static gboolean on_retry (gpointer user_data);

/* Writing happens in one writer thread, in the order the writes were
 * asked for: a batched write (beats) does not stall the main loop on
 * fsync, and a write-through (a registration) waits for everything
 * before it and itself. The snapshot is always taken on the main thread. */
typedef struct {
  HbState  *state;     /* a reference, for asynchronous jobs */
  char     *directory;
  char     *path;
  char     *data;
  gsize     length;
  GError   *error;
  gboolean  wait;      /* the main thread waits on done */
  gboolean  done;
} WriteJob;

static void
write_job_free (WriteJob *job)
{
  g_clear_object (&job->state);
  g_free (job->directory);
  g_free (job->path);
  g_free (job->data);
  g_clear_error (&job->error);
  g_free (job);
}

/* Main thread: what a finished write means. */
static gboolean
write_job_finish (HbState  *self,
                  WriteJob *job,
                  GError  **error)
{
  if (job->error != NULL)
    {
      g_autofree char *problem = g_strdup_printf ("Cannot save the agents to %s: %s",
                                                  self->path, job->error->message);
      set_problem (self, problem);
      if (self->retry_id == 0)
        self->retry_id = g_timeout_add_seconds (RETRY_SECONDS, on_retry, self);
      if (error)
        *error = g_error_copy (job->error);
      return FALSE;
    }

  self->write_count++;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_WRITE_COUNT]);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  set_problem (self, NULL);
  return TRUE;
}

static gboolean
on_write_done (gpointer user_data)
{
  WriteJob *job = user_data;

  write_job_finish (job->state, job, NULL);
  write_job_free (job);
  return G_SOURCE_REMOVE;
}

/* Writer thread. */
static void
write_job_run (gpointer data,
               gpointer user_data)
{
  WriteJob *job = data;
  HbState *self = user_data;

  if (g_mkdir_with_parents (job->directory, 0700) != 0)
    {
      int saved = errno;
      g_set_error (&job->error, G_FILE_ERROR, g_file_error_from_errno (saved),
                   "Cannot create %s: %s", job->directory, g_strerror (saved));
    }
  else
    g_file_set_contents_full (job->path, job->data, (gssize) job->length,
                              G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                              0600, &job->error);

  if (job->wait)
    {
      g_mutex_lock (&self->writer_lock);
      job->done = TRUE;
      g_cond_broadcast (&self->writer_cond);
      g_mutex_unlock (&self->writer_lock);
    }
  else
    g_main_context_invoke (self->context, on_write_done, job);
}

/* Writes the agents: waiting for the disk when @wait, else in the
 * background (the outcome lands on the main loop). */
static gboolean
write_agents (HbState  *self,
              gboolean  wait,
              GError  **error)
{
  WriteJob *job = g_new0 (WriteJob, 1);
  gboolean ok = TRUE;

  g_clear_handle_id (&self->batch_id, g_source_remove);

  job->directory = g_strdup (self->directory);
  job->path = g_strdup (self->path);
  job->data = serialize (self, &job->length);
  job->wait = wait;
  if (!wait)
    job->state = g_object_ref (self);
  g_thread_pool_push (self->writer, job, NULL);
  if (!wait)
    return TRUE;

  g_mutex_lock (&self->writer_lock);
  while (!job->done)
    g_cond_wait (&self->writer_cond, &self->writer_lock);
  g_mutex_unlock (&self->writer_lock);
  ok = write_job_finish (self, job, error);
  write_job_free (job);
  return ok;
}

static gboolean
write_now (HbState *self,
           GError **error)
{
  return write_agents (self, TRUE, error);
}

static gboolean
on_retry (gpointer user_data)
{
  HbState *self = user_data;

  self->retry_id = 0;
  write_now (self, NULL);   /* re-arms itself on failure */
  return G_SOURCE_REMOVE;
}

static gboolean
on_batch (gpointer user_data)
{
  HbState *self = user_data;

  self->batch_id = 0;
  write_agents (self, FALSE, NULL);
  return G_SOURCE_REMOVE;
}

static void
write_soon (HbState *self)
{
  if (self->loading || self->batch_id != 0 || self->retry_id != 0)
    return;
  self->batch_id = g_timeout_add (BATCH_MS, on_batch, self);
}

/* The monitor's commit function: a registration, an unregistration or an
 * idle mark by a caller is on disk before it counts. */
static gboolean
commit (HeartbeatMonitor *monitor,
        gpointer          user_data,
        GError          **error)
{
  HbState *self = user_data;

  if (self->loading)
    return TRUE;
  return write_now (self, error);
}

static void
on_registered (HeartbeatMonitor *monitor,
               HeartbeatAgent   *agent,
               HbState          *self)
{
  /* heartbeat_monitor_register() committed already; a declared agent
   * comes from the configuration and rides with the next batch */
  write_soon (self);
}

static void
on_unregistered (HeartbeatMonitor         *monitor,
                 HeartbeatAgent           *agent,
                 HeartbeatUnregisterReason reason,
                 HbState                  *self)
{
  /* A caller's Unregister was committed before it was announced; removals
   * the deadlines bring (timed out, gone) ride with the next batch. */
  if (reason != HEARTBEAT_UNREGISTER_REASON_UNREGISTERED)
    write_soon (self);
}

static void
on_activity (HeartbeatMonitor *monitor,
             HeartbeatAgent   *agent,
             HbState          *self)
{
  write_soon (self);
}

static void
on_state_changed (HeartbeatMonitor   *monitor,
                  HeartbeatAgent     *agent,
                  HeartbeatAgentState old_state,
                  HeartbeatAgentState new_state,
                  HbState            *self)
{
  write_soon (self);
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */

static const char *
member_string (JsonObject *object,
               const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || JSON_NODE_TYPE (node) != JSON_NODE_VALUE ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

static gboolean
member_int (JsonObject *object,
            const char *name,
            gint64      min,
            gint64      max,
            gint64     *value)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || JSON_NODE_TYPE (node) != JSON_NODE_VALUE ||
      json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  *value = json_node_get_int (node);
  return *value >= min && *value <= max;
}

/* Whether GVariant text nests at most @max_depth levels, looked at before
 * g_variant_parse() recurses into it. */
static gboolean
variant_text_depth_ok (const char *text,
                       guint       max_depth)
{
  guint depth = 0;
  char quote = 0;

  for (const char *p = text; *p; p++)
    {
      if (quote)
        {
          if (*p == '\\' && p[1])
            p++;
          else if (*p == quote)
            quote = 0;
        }
      else if (*p == '\'' || *p == '"')
        quote = *p;
      else if (strchr ("[({<", *p) && ++depth > max_depth)
        return FALSE;
      else if (strchr ("])}>", *p) && depth > 0)
        depth--;
    }
  return TRUE;
}

static gboolean
restore_agent (HbState    *self,
               JsonObject *object,
               GError    **error)
{
  HeartbeatAgentOptions options = { 0 };
  HeartbeatAgentSnapshot snapshot = { 0 };
  g_autoptr(GVariant) metadata = NULL;
  const char *id = member_string (object, "id");
  const char *state = member_string (object, "state");
  const char *metadata_text = member_string (object, "metadata");
  gint64 owner_uid, pid, beats, stale, timeout, started, last;
  HeartbeatAgentState agent_state;
  JsonNode *declared;

  if (id == NULL || state == NULL ||
      !heartbeat_agent_state_from_string (state, &agent_state) ||
      !member_int (object, "owner-uid", 0, G_MAXUINT32, &owner_uid) ||
      !member_int (object, "pid", 0, G_MAXINT32, &pid) ||
      !member_int (object, "beats", 0, G_MAXINT64, &beats) ||
      !member_int (object, "stale-after-usec", 0, HEARTBEAT_THRESHOLD_MAX, &stale) ||
      !member_int (object, "timeout-after-usec", 0, HEARTBEAT_THRESHOLD_MAX, &timeout) ||
      !member_int (object, "started-at", 0, G_MAXINT64, &started) ||
      !member_int (object, "last-activity-at", 0, G_MAXINT64, &last))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "agent “%s”: a field is missing or out of range", id ? id : "?");
      return FALSE;
    }

  if (metadata_text && !variant_text_depth_ok (metadata_text, 2 * HEARTBEAT_METADATA_MAX_DEPTH))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "agent “%s”: metadata nested too deeply", id);
      return FALSE;
    }
  if (metadata_text)
    {
      metadata = g_variant_parse (G_VARIANT_TYPE_VARDICT, metadata_text, NULL, NULL, error);
      if (metadata == NULL)
        {
          g_prefix_error (error, "agent “%s”: metadata: ", id);
          return FALSE;
        }
    }

  declared = json_object_get_member (object, "declared");
  options.task_id = member_string (object, "task-id");
  options.stale_after_usec = stale;
  options.timeout_after_usec = timeout;
  options.owner_uid = (guint32) owner_uid;
  options.pid = (gint32) pid;
  options.metadata = metadata;
  options.bound_to = member_string (object, "bound-to");
  snapshot.state = agent_state;
  snapshot.status = member_string (object, "status");
  snapshot.beats = (guint64) beats;
  snapshot.started_at_realtime = started;
  snapshot.last_activity_at_realtime = last;
  snapshot.declared = declared && JSON_NODE_HOLDS_VALUE (declared) && json_node_get_boolean (declared);

  if (heartbeat_monitor_restore (self->monitor, id, &options, &snapshot, error) == NULL)
    {
      g_prefix_error (error, "agent “%s”: ", id);
      return FALSE;
    }
  return TRUE;
}

/* A file we cannot read is kept for a human, under a name that says so. */
static void
move_aside (HbState    *self,
            const char *why)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *stamp = g_date_time_format (now, "%Y%m%dT%H%M%SZ");
  g_autofree char *aside = g_strdup_printf ("%s.corrupt-%s", self->path, stamp);

  if (g_rename (self->path, aside) == 0)
    g_warning ("The state file %s is unreadable (%s); moved it to %s and started empty",
               self->path, why, aside);
  else
    g_warning ("The state file %s is unreadable (%s) and could not be moved aside: %s",
               self->path, why, g_strerror (errno));
}

/**
 * hb_state_lock:
 * @state: a #HbState
 * @error: return location for a #GError
 *
 * Takes the state directory for this process, creating it if needed: a
 * second daemon on the same directory would overwrite the first one's
 * agents. The lock is an flock(2) on `STATE_DIR/lock`, which the kernel
 * drops when the holder dies, even by SIGKILL; the file names the
 * holder's pid for the error message. It is held until @state is freed.
 *
 * Returns: %TRUE, or %FALSE with @error set (%G_IO_ERROR_BUSY if another
 *   process holds the lock)
 */
gboolean
hb_state_lock (HbState *state,
               GError **error)
{
  HbState *self = state;
  g_autofree char *path = NULL;
  g_autofree char *pid = NULL;
  int fd;

  g_return_val_if_fail (HB_IS_STATE (state), FALSE);

  if (self->lock_fd >= 0)
    return TRUE;
  if (g_mkdir_with_parents (self->directory, 0700) != 0)
    {
      int saved = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
                   "Cannot create the state directory %s: %s", self->directory, g_strerror (saved));
      return FALSE;
    }
  path = g_build_filename (self->directory, LOCK_FILE, NULL);
  fd = g_open (path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    {
      int saved = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
                   "Cannot open %s: %s", path, g_strerror (saved));
      return FALSE;
    }
  if (flock (fd, LOCK_EX | LOCK_NB) != 0)
    {
      int saved = errno;
      char holder[32] = "";
      ssize_t n = pread (fd, holder, sizeof holder - 1, 0);

      holder[MAX (n, 0)] = '\0';
      g_strchomp (holder);
      close (fd);
      if (saved == EWOULDBLOCK)
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY,
                     "Another heartbeatd%s%s%s uses the state directory %s",
                     *holder ? " (pid " : "", holder, *holder ? ")" : "", self->directory);
      else
        g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
                     "Cannot lock %s: %s", path, g_strerror (saved));
      return FALSE;
    }
  pid = g_strdup_printf ("%d\n", (int) getpid ());
  if (ftruncate (fd, 0) != 0 || pwrite (fd, pid, strlen (pid), 0) < 0)
    g_debug ("Could not write the pid to %s: %s", path, g_strerror (errno));
  self->lock_fd = fd;
  return TRUE;
}

/**
 * hb_state_load:
 * @state: a #HbState
 * @error: return location for a #GError
 *
 * Restores the agents saved in the state directory. A missing file is a
 * first start; an unreadable or corrupt one is moved aside
 * (`agents.json.corrupt-TIMESTAMP`) and the daemon starts empty; a single
 * bad agent entry is skipped with a warning.
 *
 * Returns: %TRUE, or %FALSE with @error set if the directory is unusable
 */
gboolean
hb_state_load (HbState *state,
               GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) local = NULL;
  g_autofree char *contents = NULL;
  JsonObject *root;
  JsonArray *agents;
  gint64 version;
  gsize length;
  guint restored = 0;

  g_return_val_if_fail (HB_IS_STATE (state), FALSE);

  if (g_mkdir_with_parents (state->directory, 0700) != 0)
    {
      int saved = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
                   "Cannot create the state directory %s: %s", state->directory, g_strerror (saved));
      return FALSE;
    }

  if (!g_file_get_contents (state->path, &contents, &length, &local))
    {
      if (g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return TRUE;
      g_propagate_prefixed_error (error, g_steal_pointer (&local), "Cannot read %s: ", state->path);
      return FALSE;
    }

  /* No size limit: the file is ours, and what the fronts accept is
   * bounded ([limits], HEARTBEAT_METADATA_MAX_SIZE), so it always fits. */
  if (!hb_json_check (contents, length, STATE_MAX_DEPTH, &local) ||
      !json_parser_load_from_data (parser, contents, (gssize) length, &local))
    {
      move_aside (state, local->message);
      return TRUE;
    }
  if (json_parser_get_root (parser) == NULL || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      move_aside (state, "not a JSON object");
      return TRUE;
    }
  root = json_node_get_object (json_parser_get_root (parser));
  if (!member_int (root, "version", 0, G_MAXINT64, &version) || version != STATE_VERSION)
    {
      move_aside (state, "unknown version");
      return TRUE;
    }
  if (!json_object_has_member (root, "agents") ||
      !JSON_NODE_HOLDS_ARRAY (json_object_get_member (root, "agents")))
    {
      move_aside (state, "no agents array");
      return TRUE;
    }

  agents = json_object_get_array_member (root, "agents");
  state->loading = TRUE;
  for (guint i = 0; i < json_array_get_length (agents); i++)
    {
      JsonNode *node = json_array_get_element (agents, i);
      g_autoptr(GError) agent_error = NULL;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        g_warning ("%s: entry %u is not an object; skipped", state->path, i);
      else if (!restore_agent (state, json_node_get_object (node), &agent_error))
        g_warning ("%s: %s; skipped", state->path, agent_error->message);
      else
        restored++;
    }
  state->loading = FALSE;

  g_debug ("Restored %u agents from %s", restored, state->path);
  return TRUE;
}

/**
 * hb_state_flush:
 * @state: a #HbState
 * @error: return location for a #GError
 *
 * Writes the agents now, whatever is pending (on the way out).
 *
 * Returns: %TRUE on success
 */
gboolean
hb_state_flush (HbState *state,
                GError **error)
{
  g_return_val_if_fail (HB_IS_STATE (state), FALSE);
  return write_now (state, error);
}

/**
 * hb_state_get_path:
 * @state: a #HbState
 *
 * Returns: the state file's path
 */
const char *
hb_state_get_path (HbState *state)
{
  g_return_val_if_fail (HB_IS_STATE (state), NULL);
  return state->path;
}

/**
 * hb_state_get_problem:
 * @state: a #HbState
 *
 * Returns: (nullable): why the last write failed, or %NULL if it did not
 */
const char *
hb_state_get_problem (HbState *state)
{
  g_return_val_if_fail (HB_IS_STATE (state), NULL);
  return state->problem;
}

/**
 * hb_state_get_write_count:
 * @state: a #HbState
 *
 * Returns: how many times the file was written (for tests)
 */
guint64
hb_state_get_write_count (HbState *state)
{
  g_return_val_if_fail (HB_IS_STATE (state), 0);
  return state->write_count;
}

/**
 * hb_state_new:
 * @monitor: the monitor to persist
 * @directory: the state directory (created if missing)
 *
 * Returns: (transfer full): a new #HbState, listening to @monitor
 */
HbState *
hb_state_new (HeartbeatMonitor *monitor,
              const char       *directory)
{
  HbState *self;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), NULL);
  g_return_val_if_fail (directory != NULL, NULL);

  self = g_object_new (HB_TYPE_STATE, NULL);
  self->monitor = g_object_ref (monitor);
  self->directory = g_strdup (directory);
  self->path = g_build_filename (directory, STATE_FILE, NULL);

  g_signal_connect_object (monitor, "agent-registered", G_CALLBACK (on_registered), self, 0);
  g_signal_connect_object (monitor, "agent-unregistered", G_CALLBACK (on_unregistered), self, 0);
  g_signal_connect_object (monitor, "agent-beat", G_CALLBACK (on_activity), self, 0);
  g_signal_connect_object (monitor, "agent-state-changed", G_CALLBACK (on_state_changed), self, 0);
  heartbeat_monitor_set_commit_func (monitor, commit, self, NULL);
  return self;
}

static void
hb_state_dispose (GObject *object)
{
  HbState *self = HB_STATE (object);

  g_clear_handle_id (&self->batch_id, g_source_remove);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  if (self->monitor)
    {
      g_signal_handlers_disconnect_by_data (self->monitor, self);
      heartbeat_monitor_set_commit_func (self->monitor, NULL, NULL, NULL);
    }
  g_clear_object (&self->monitor);

  G_OBJECT_CLASS (hb_state_parent_class)->dispose (object);
}

static void
hb_state_finalize (GObject *object)
{
  HbState *self = HB_STATE (object);

  /* no asynchronous job is left: each holds a reference */
  g_thread_pool_free (self->writer, FALSE, TRUE);
  g_mutex_clear (&self->writer_lock);
  g_cond_clear (&self->writer_cond);
  g_main_context_unref (self->context);
  g_free (self->directory);
  g_free (self->path);
  g_free (self->problem);
  if (self->lock_fd >= 0)
    close (self->lock_fd);

  G_OBJECT_CLASS (hb_state_parent_class)->finalize (object);
}

static void
hb_state_get_property (GObject    *object,
                       guint       prop_id,
                       GValue     *value,
                       GParamSpec *pspec)
{
  HbState *self = HB_STATE (object);

  switch (prop_id)
    {
    case PROP_PROBLEM:
      g_value_set_string (value, self->problem);
      break;
    case PROP_WRITE_COUNT:
      g_value_set_uint64 (value, self->write_count);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
hb_state_class_init (HbStateClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = hb_state_dispose;
  object_class->finalize = hb_state_finalize;
  object_class->get_property = hb_state_get_property;

  /**
   * HbState:problem:
   *
   * Why the agents cannot be saved (the last write failed; it is retried),
   * or %NULL when they are.
   */
  properties[PROP_PROBLEM] =
    g_param_spec_string ("problem", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * HbState:write-count:
   *
   * How many times the agents were written: a test waits for its
   * notification instead of sleeping.
   */
  properties[PROP_WRITE_COUNT] =
    g_param_spec_uint64 ("write-count", NULL, NULL, 0, G_MAXUINT64, 0,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
hb_state_init (HbState *self)
{
  self->context = g_main_context_ref_thread_default ();
  /* at most one thread, so writes keep their order; from GLib's shared
   * threads, so a state that is freed leaves no thread to tear down */
  self->writer = g_thread_pool_new (write_job_run, self, 1, FALSE, NULL);
  g_mutex_init (&self->writer_lock);
  g_cond_init (&self->writer_cond);
  self->lock_fd = -1;
}
