/* heartbeat-monitor.c: the model and scheduler of heartbeatd
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "heartbeat-monitor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "heartbeat-agent-private.h"
#include "heartbeat-deadlines.h"
#include "heartbeat-enums.h"
#include "heartbeat-runs.h"
#include "heartbeat-values-private.h"

/**
 * SECTION:heartbeat-monitor
 * @title: HeartbeatMonitor
 * @short_description: agents, their activity, and the deadlines that judge them
 *
 * A #HeartbeatMonitor holds the agents callers register, records their
 * beats, and tells when one goes quiet (#HeartbeatMonitor::agent-stale) or
 * runs too long (#HeartbeatMonitor::agent-timed-out).
 *
 * It does not poll. Every agent has one pending deadline, kept in a binary
 * heap, and one #GSource is armed for the earliest of them. A beat only
 * stores a timestamp: the agent's heap entry may then be earlier than its
 * real deadline, and when it comes due the monitor recomputes the deadline
 * and either signals or re-queues the agent. So beats are O(1), expiries
 * O(log n), and the process sleeps while nothing is due.
 *
 * The same logic runs with an explicit clock through
 * heartbeat_monitor_run_checks(), which is how tests drive it.
 *
 * The monitor is not thread-safe: use it from the thread that runs the
 * #GMainContext it was created in, where its signals are emitted.
 */

/* How many due agents one dispatch of the deadline source handles before
 * it lets the main loop run other sources (the watchdog, D-Bus calls). */
#define DISPATCH_BATCH 4096

/* Monotonic times start near zero at boot, and a time before boot (the
 * last activity of an agent restored after a reboot, the timestamp of an
 * old heartbeat file) is negative: a real time. So neither "no deadline"
 * nor "now" may be spelt as a negative number. */
#define NO_DEADLINE  HEARTBEAT_NO_DEADLINE
#define ACTIVITY_NOW G_MININT64

#define DEFAULT_CHECK_INTERVAL    (30 * G_USEC_PER_SEC)
#define DEFAULT_STALE_THRESHOLD   (5 * 60 * G_USEC_PER_SEC)
#define DEFAULT_TIMEOUT_THRESHOLD (G_GINT64_CONSTANT (30) * 60 * G_USEC_PER_SEC)
#define DEFAULT_RETENTION         (G_GINT64_CONSTANT (24) * 60 * 60 * G_USEC_PER_SEC)

struct _HeartbeatMonitor {
  GObject             parent_instance;

  GHashTable         *agents;      /* agent->id → HeartbeatAgent, owned */
  HeartbeatDeadlines  deadlines;
  GHashTable         *owned;       /* uid → number of agents */
  guint               state_counts[HEARTBEAT_AGENT_N_STATES];

  GMainContext       *context;
  GSource            *source;      /* the deadline source, while running */
  gint64              armed_at;    /* its ready time, or -1 */

  HeartbeatClockFunc  clock;
  gpointer            clock_data;
  HeartbeatClockFunc  real_clock;  /* wall clock; NULL: g_get_real_time() */
  gpointer            real_clock_data;

  gint64              check_interval;
  gint64              stale_threshold;
  gint64              timeout_threshold;
  gboolean            stale_warning_only_once;
  guint               max_agents;  /* 0: no limit */
  gint64              retention;   /* timed-out and gone agents stay listed; 0: until told */

  HeartbeatStoreFuncs store;
  gpointer            store_data;
  GDestroyNotify      store_destroy;
  guint               quiet;       /* restoring or reverting: the store knows */

  /* what the signals told, since the monitor was made */
  guint64             beats_total;      /* agent-beat */
  guint64             stale_total;      /* agent-stale, every warning */
  guint64             timeouts_total;   /* agent-timed-out */
  guint64             recoveries_total; /* agent-recovered */
};

G_DEFINE_FINAL_TYPE (HeartbeatMonitor, heartbeat_monitor, G_TYPE_OBJECT)

G_DEFINE_QUARK (heartbeat-error-quark, heartbeat_error)

enum {
  PROP_0,
  PROP_CHECK_INTERVAL,
  PROP_STALE_THRESHOLD,
  PROP_TIMEOUT_THRESHOLD,
  PROP_STALE_WARNING_ONLY_ONCE,
  PROP_RUNNING,
  PROP_MAX_AGENTS,
  PROP_RETENTION,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum {
  SIGNAL_AGENT_REGISTERED,
  SIGNAL_AGENT_UNREGISTERED,
  SIGNAL_AGENT_STALE,
  SIGNAL_AGENT_TIMED_OUT,
  SIGNAL_AGENT_RECOVERED,
  SIGNAL_AGENT_STATE_CHANGED,
  SIGNAL_AGENT_BEAT,
  SIGNAL_EVENT_POSTED,
  SIGNAL_AGENT_RUN,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/* ------------------------------------------------------------------ */
/* Validation                                                          */

/**
 * heartbeat_id_is_valid:
 * @id: (nullable): a candidate agent id
 * @error: return location for a #GError
 *
 * Checks an id the way every monitor call does: 1 to
 * %HEARTBEAT_ID_MAX_LENGTH characters of `[A-Za-z0-9._:@-]`, other than `.` and `..`
 * (which are path segments in URLs and file names).
 *
 * Returns: %TRUE if @id is valid; otherwise %FALSE with
 *   %HEARTBEAT_ERROR_INVALID_ARGUMENT set
 */
gboolean
heartbeat_id_is_valid (const char *id,
                       GError    **error)
{
  gsize offset = 0;

  switch (hb_name_check (id, HEARTBEAT_ID_MAX_LENGTH, &offset))
    {
    case HB_NAME_OK:
      return TRUE;
    case HB_NAME_EMPTY:
      g_set_error_literal (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                           "Agent id is empty");
      return FALSE;
    case HB_NAME_DOTS:
      g_set_error_literal (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                           "Agent id must not be “.” or “..”");
      return FALSE;
    case HB_NAME_TOO_LONG:
      g_set_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                   "Agent id is longer than %d characters", HEARTBEAT_ID_MAX_LENGTH);
      return FALSE;
    case HB_NAME_BAD_CHARACTER:
    default:
      g_set_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                   "Agent id has a character outside [A-Za-z0-9._:@-] at offset %" G_GSIZE_FORMAT,
                   offset);
      return FALSE;
    }
}

static gboolean
threshold_is_valid (gint64      usec,
                    const char *what,
                    GError    **error)
{
  if (usec >= 0 && usec <= HEARTBEAT_THRESHOLD_MAX)
    return TRUE;

  g_set_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
               "%s must be between 0 and %" G_GINT64_FORMAT " µs", what,
               (gint64) HEARTBEAT_THRESHOLD_MAX);
  return FALSE;
}

static gboolean
options_are_valid (const HeartbeatAgentOptions *options,
                   GError                     **error)
{
  if (options == NULL)
    return TRUE;

  if (!heartbeat_text_is_valid (options->task_id, HEARTBEAT_TASK_ID_MAX_LENGTH, "Task id", error) ||
      !threshold_is_valid (options->stale_after_usec, "Stale threshold", error) ||
      !threshold_is_valid (options->timeout_after_usec, "Timeout threshold", error) ||
      !heartbeat_metadata_is_valid (options->metadata, error) ||
      !heartbeat_text_is_valid (options->bound_to, HEARTBEAT_TASK_ID_MAX_LENGTH, "Binding", error) ||
      !heartbeat_tags_validate (options->tags, error))
    return FALSE;

  if (options->pid < 0)
    {
      g_set_error_literal (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                           "Process id must not be negative");
      return FALSE;
    }
  return TRUE;
}

/* Whether @a and @b hold the same value, as g_variant_equal() would say,
 * but without serializing them: a value built in tree form (from JSON, by
 * a merge) is walked as it is. Both passed the metadata gate, so the
 * recursion is bounded by %HEARTBEAT_METADATA_MAX_DEPTH. Doubles are
 * compared bit for bit, as their serialized bytes would be. */
static gboolean
values_equal (GVariant *a,
              GVariant *b)
{
  if (a == b)
    return TRUE;
  if (!g_variant_type_equal (g_variant_get_type (a), g_variant_get_type (b)))
    return FALSE;

  switch (g_variant_classify (a))
    {
    case G_VARIANT_CLASS_BOOLEAN:
      return g_variant_get_boolean (a) == g_variant_get_boolean (b);
    case G_VARIANT_CLASS_BYTE:
      return g_variant_get_byte (a) == g_variant_get_byte (b);
    case G_VARIANT_CLASS_INT16:
      return g_variant_get_int16 (a) == g_variant_get_int16 (b);
    case G_VARIANT_CLASS_UINT16:
      return g_variant_get_uint16 (a) == g_variant_get_uint16 (b);
    case G_VARIANT_CLASS_INT32:
      return g_variant_get_int32 (a) == g_variant_get_int32 (b);
    case G_VARIANT_CLASS_UINT32:
      return g_variant_get_uint32 (a) == g_variant_get_uint32 (b);
    case G_VARIANT_CLASS_HANDLE:
      return g_variant_get_handle (a) == g_variant_get_handle (b);
    case G_VARIANT_CLASS_INT64:
      return g_variant_get_int64 (a) == g_variant_get_int64 (b);
    case G_VARIANT_CLASS_UINT64:
      return g_variant_get_uint64 (a) == g_variant_get_uint64 (b);
    case G_VARIANT_CLASS_DOUBLE:
      {
        double x = g_variant_get_double (a), y = g_variant_get_double (b);

        return memcmp (&x, &y, sizeof x) == 0;
      }
    case G_VARIANT_CLASS_STRING:
    case G_VARIANT_CLASS_OBJECT_PATH:
    case G_VARIANT_CLASS_SIGNATURE:
      return strcmp (g_variant_get_string (a, NULL), g_variant_get_string (b, NULL)) == 0;
    case G_VARIANT_CLASS_VARIANT:
    case G_VARIANT_CLASS_MAYBE:
    case G_VARIANT_CLASS_ARRAY:
    case G_VARIANT_CLASS_TUPLE:
    case G_VARIANT_CLASS_DICT_ENTRY:
    default:
      {
        gsize n = g_variant_n_children (a);

        if (n != g_variant_n_children (b))
          return FALSE;
        for (gsize i = 0; i < n; i++)
          {
            g_autoptr(GVariant) x = g_variant_get_child_value (a, i);
            g_autoptr(GVariant) y = g_variant_get_child_value (b, i);

            if (!values_equal (x, y))
              return FALSE;
          }
        return TRUE;
      }
    }
}

/* One entry of a metadata dictionary, for merge_metadata(). */
typedef struct {
  GVariant   *entry;   /* the {sv}, owned */
  GVariant   *key;     /* its key, owned */
  const char *name;    /* the key's text */
  gsize       order;   /* its place in the dictionary it came from */
} MetadataEntry;

/* How many entries merge_metadata() sorts without allocating */
#define MERGE_STACK_ENTRIES 16

static void
metadata_entry_clear (MetadataEntry *e)
{
  g_variant_unref (e->key);
  g_variant_unref (e->entry);
}

static int
metadata_entry_compare (gconstpointer a,
                        gconstpointer b)
{
  const MetadataEntry *x = a, *y = b;
  int c = strcmp (x->name, y->name);

  if (c != 0)
    return c;
  return x->order < y->order ? -1 : x->order > y->order;
}

/* Fills @out[offset…] with @dict's entries; returns how many. */
static gsize
metadata_entries (GVariant      *dict,
                  MetadataEntry *out,
                  gsize          offset)
{
  gsize n = dict ? g_variant_n_children (dict) : 0;

  for (gsize i = 0; i < n; i++)
    {
      MetadataEntry *e = &out[offset + i];

      e->entry = g_variant_get_child_value (dict, i);
      e->key = g_variant_get_child_value (e->entry, 0);
      e->name = g_variant_get_string (e->key, NULL);
      e->order = offset + i;
    }
  return n;
}

/* Sorts @entries by key, the last of equal keys winning as in a
 * #GVariantDict; returns how many are left (the others are cleared).
 * Returns at once if they were sorted and unique already. */
static gsize
metadata_entries_sort (MetadataEntry *entries,
                       gsize          n)
{
  gsize kept = 0;
  gboolean sorted = TRUE;

  for (gsize i = 1; i < n && sorted; i++)
    sorted = strcmp (entries[i - 1].name, entries[i].name) < 0;
  if (sorted)
    return n;

  /* stable by construction: equal keys are ordered by where they were */
  qsort (entries, n, sizeof *entries, metadata_entry_compare);
  for (gsize i = 0; i < n; i++)
    {
      if (i + 1 < n && strcmp (entries[i].name, entries[i + 1].name) == 0)
        {
          metadata_entry_clear (&entries[i]);
          continue;
        }
      entries[kept++] = entries[i];
    }
  return kept;
}

/* Merges @details into the agent's metadata @old, key by key, as a
 * #GVariantDict would (a key of the beat replaces the agent's, `progress`
 * from @details wins over one in its metadata, the last of duplicate keys
 * wins), and sets *@merged to the result, its keys in sorted order, or to
 * %NULL if that would be @old itself (no key new, no value different, and
 * @old sorted and without duplicates already): the common beat that
 * repeats what it said allocates nothing. Returns %FALSE with @error set
 * if the result would be too large.
 *
 * @details' metadata passed the gate, @beat_text long as JSON text, and
 * @old, @old_text long at most (G_MAXUINT16 if unknown), so every value of
 * the result did, at the same depth: if the two lengths together show the
 * result is short enough, only its serialized size is left to check, and
 * *@merged_text is set to that bound, not to a length walked. */
static gboolean
merge_metadata (GVariant                   *old,
                gsize                       old_text,
                const HeartbeatBeatDetails *details,
                gsize                       beat_text,
                GVariant                  **merged_out,
                gsize                      *merged_text,
                GError                    **error)
{
  MetadataEntry stack[MERGE_STACK_ENTRIES];
  GVariant *stack_children[MERGE_STACK_ENTRIES];
  g_autofree MetadataEntry *heap = NULL;
  g_autofree GVariant **heap_children = NULL;
  GVariant **children;
  MetadataEntry *entries;
  gsize n_old, n_new, n_old_kept, n_new_kept, n_total, i, j, n_out = 0;
  gboolean old_canonical, differs = FALSE;
  g_autoptr(GVariant) merged = NULL;

  *merged_out = NULL;
  n_old = old ? g_variant_n_children (old) : 0;
  n_new = (details->metadata ? g_variant_n_children (details->metadata) : 0) +
          (details->has_progress ? 1 : 0);
  n_total = n_old + n_new;
  entries = n_total <= MERGE_STACK_ENTRIES ? stack : (heap = g_new (MetadataEntry, n_total));
  children = n_total <= MERGE_STACK_ENTRIES ? stack_children : (heap_children = g_new (GVariant *, n_total));

  metadata_entries (old, entries, 0);
  metadata_entries (details->metadata, entries, n_old);
  if (details->has_progress)
    {
      MetadataEntry *e = &entries[n_total - 1];

      e->entry = g_variant_ref_sink (g_variant_new_dict_entry (g_variant_new_string ("progress"),
                                                               g_variant_new_variant (g_variant_new_double (details->progress))));
      e->key = g_variant_get_child_value (e->entry, 0);
      e->name = "progress";
      e->order = n_total - 1;
    }

  n_old_kept = metadata_entries_sort (entries, n_old);
  old_canonical = n_old_kept == n_old;
  n_new_kept = metadata_entries_sort (entries + n_old, n_new);

  /* walk both in key order: each new key replaces or joins the old ones */
  for (i = 0, j = 0; i < n_old_kept || j < n_new_kept;)
    {
      MetadataEntry *o = i < n_old_kept ? &entries[i] : NULL;
      MetadataEntry *b = j < n_new_kept ? &entries[n_old + j] : NULL;
      int c = o == NULL ? 1 : b == NULL ? -1 : strcmp (o->name, b->name);

      if (c < 0)
        {
          children[n_out++] = o->entry;
          i++;
          continue;
        }
      if (c == 0)
        {
          g_autoptr(GVariant) x = g_variant_get_child_value (o->entry, 1);
          g_autoptr(GVariant) y = g_variant_get_child_value (b->entry, 1);

          if (!values_equal (x, y))
            differs = TRUE;
          i++;
        }
      else
        {
          differs = TRUE;
        }
      children[n_out++] = b->entry;
      j++;
    }

  if (old == NULL || differs || !old_canonical)
    merged = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("{sv}"), children, n_out));
  for (i = 0; i < n_old_kept; i++)
    metadata_entry_clear (&entries[i]);
  for (j = 0; j < n_new_kept; j++)
    metadata_entry_clear (&entries[n_old + j]);

  if (merged != NULL)
    {
      /* each entry of the result is one of @old's, @details' or the
       * progress: its JSON text is no longer than theirs together */
      gsize bound = old_text + beat_text + 2 + (details->has_progress ? HEARTBEAT_PROGRESS_TEXT : 0);

      if (bound <= HEARTBEAT_METADATA_MAX_SIZE && g_variant_get_size (merged) <= HEARTBEAT_METADATA_MAX_SIZE)
        *merged_text = bound;
      else if (!heartbeat_metadata_check (merged, merged_text, error))
        return FALSE;
    }
  *merged_out = g_steal_pointer (&merged);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Bookkeeping                                                         */

static inline gint64
monitor_now (HeartbeatMonitor *self)
{
  return self->clock ? self->clock (self->clock_data) : g_get_monotonic_time ();
}

static inline gint64
monitor_real_now (HeartbeatMonitor *self)
{
  return self->real_clock ? self->real_clock (self->real_clock_data) : g_get_real_time ();
}

static HeartbeatAgent *
lookup_or_error (HeartbeatMonitor *self,
                 const char       *id,
                 GError          **error)
{
  HeartbeatAgent *agent;

  if (!heartbeat_id_is_valid (id, error))
    return NULL;

  agent = g_hash_table_lookup (self->agents, id);
  if (agent == NULL)
    g_set_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_NOT_FOUND,
                 "No agent with id “%s”", id);
  return agent;
}

static void
owned_add (HeartbeatMonitor *self,
           guint32           uid,
           int               delta)
{
  gpointer key = GUINT_TO_POINTER (uid);
  guint count = GPOINTER_TO_UINT (g_hash_table_lookup (self->owned, key));

  count += delta;
  if (count == 0)
    g_hash_table_remove (self->owned, key);
  else
    g_hash_table_insert (self->owned, key, GUINT_TO_POINTER (count));
}

/* Changes the state and its counters; the caller emits the signal once the
 * agent is consistent again. Returns the old state. */
/* Tells the store (see heartbeat_monitor_set_store()) what changed. */
static void
note_change (HeartbeatMonitor *self,
             const char       *id,
             HeartbeatChange   change)
{
  if (self->store.changed && self->quiet == 0)
    self->store.changed (self, id, change, self->store_data);
}

static HeartbeatAgentState
set_state (HeartbeatMonitor   *self,
           HeartbeatAgent     *agent,
           HeartbeatAgentState state)
{
  HeartbeatAgentState old = agent->state;

  /* A paused agent is not judged: the state it would be in is only held,
   * for heartbeat_monitor_resume(). */
  if (G_UNLIKELY (agent->extra != NULL && agent->extra->paused_at != 0) &&
      state != HEARTBEAT_AGENT_STATE_PAUSED)
    {
      agent->extra->held_state = state;
      return old;
    }

  self->state_counts[old]--;
  self->state_counts[state]++;
  agent->state = state;
  if (old != state)
    {
      heartbeat_agent_record_state (agent, heartbeat_monitor_to_realtime (self, monitor_now (self)));
      note_change (self, agent->id, HEARTBEAT_CHANGE_STATE);
    }
  return old;
}

static void
emit_state_changed (HeartbeatMonitor   *self,
                    HeartbeatAgent     *agent,
                    HeartbeatAgentState old)
{
  if (old == agent->state)
    return;
  /* the stale episode is over (see heartbeat_agent_get_stale_episodes()) */
  if (old == HEARTBEAT_AGENT_STATE_STALE)
    agent->in_stale_episode = FALSE;
  g_signal_emit (self, signals[SIGNAL_AGENT_STATE_CHANGED], 0, agent, old, agent->state);
}

/* The one place each of these signals is emitted from, and counted (see
 * heartbeat_monitor_get_beats_total() and the others). */
static void
emit_beat (HeartbeatMonitor *self,
           HeartbeatAgent   *agent)
{
  self->beats_total++;
  g_signal_emit (self, signals[SIGNAL_AGENT_BEAT], 0, agent);
}

static void
emit_stale (HeartbeatMonitor *self,
            HeartbeatAgent   *agent,
            gint64            idle)
{
  /* every warning, also the repeated ones of one episode (without
   * stale-warning-only-once); the episode once */
  self->stale_total++;
  if (!agent->in_stale_episode)
    {
      agent->stale_episodes++;
      agent->in_stale_episode = TRUE;
    }
  g_signal_emit (self, signals[SIGNAL_AGENT_STALE], 0, agent, idle);
}

static void
emit_timed_out (HeartbeatMonitor *self,
                HeartbeatAgent   *agent,
                gint64            running)
{
  self->timeouts_total++;
  agent->timeouts++;
  g_signal_emit (self, signals[SIGNAL_AGENT_TIMED_OUT], 0, agent, running);
}

static void
emit_recovered (HeartbeatMonitor *self,
                HeartbeatAgent   *agent)
{
  self->recoveries_total++;
  g_signal_emit (self, signals[SIGNAL_AGENT_RECOVERED], 0, agent);
}

/* The state the agent is judged to be in: under a pause, the one held. */
static inline HeartbeatAgentState
judged_state (const HeartbeatAgent *agent)
{
  if (G_UNLIKELY (agent->state == HEARTBEAT_AGENT_STATE_PAUSED))
    return agent->extra->held_state;
  return agent->state;
}

static const HeartbeatAgentOptions no_options = { 0 };

/* The one rule of which work has a run timeout: work that ends (a
 * registered run, a job) gets the monitor's threshold; a service, meant to
 * run until stopped, gets none (0) unless it has one of its own. */
static inline gint64
default_timeout (HeartbeatMonitor *self,
                 gboolean          service)
{
  return service ? 0 : self->timeout_threshold;
}

/* When the agent's run times out, or NO_DEADLINE if it has no run timeout. */
static inline gint64
timeout_at (const HeartbeatAgent *agent)
{
  gint64 from = agent->started_at;

  /* a run that went on through a pause is timed from the resume */
  if (G_UNLIKELY (agent->extra != NULL))
    from = MAX (from, agent->extra->resumed_at);
  return agent->timeout_after ? from + agent->timeout_after : NO_DEADLINE;
}

/* Gives the agent @tags (checked already); returns whether they changed. */
static gboolean
apply_tags (HeartbeatAgent     *agent,
            const char * const *tags)
{
  g_auto(GStrv) before = g_strdupv ((char **) heartbeat_agent_get_tags (agent));

  heartbeat_agent_set_tags (agent, tags);
  return !g_strv_equal ((const char *const *) before, heartbeat_agent_get_tags (agent));
}

/* The part of @options a declaration owns: the task, the thresholds and
 * whether the agent is a service. Returns whether that changed the agent. */
static gboolean
apply_task_and_thresholds (HeartbeatMonitor            *self,
                           HeartbeatAgent              *agent,
                           const HeartbeatAgentOptions *options)
{
  gboolean service = options->service || options->bound_to != NULL;
  gint64 stale_after = options->stale_after_usec ? options->stale_after_usec : self->stale_threshold;
  gint64 timeout_after = options->timeout_after_usec ? options->timeout_after_usec
                                                     : default_timeout (self, service);

  if (g_strcmp0 (agent->task_id, options->task_id) == 0 &&
      agent->stale_is_default == (options->stale_after_usec == 0) && agent->stale_after == stale_after &&
      agent->timeout_is_default == (options->timeout_after_usec == 0) && agent->timeout_after == timeout_after &&
      agent->service == service)
    return FALSE;
  heartbeat_agent_set_task_id (agent, options->task_id);
  agent->stale_is_default = options->stale_after_usec == 0;
  agent->stale_after = stale_after;
  agent->timeout_is_default = options->timeout_after_usec == 0;
  agent->timeout_after = timeout_after;
  agent->service = service;
  return TRUE;
}

static void
apply_options (HeartbeatMonitor            *self,
               HeartbeatAgent              *agent,
               const HeartbeatAgentOptions *options)
{
  if (options == NULL)
    options = &no_options;

  apply_task_and_thresholds (self, agent, options);
  apply_tags (agent, options->tags);
  agent->pid = options->pid;
  heartbeat_agent_set_bound_to (agent, options->bound_to);
  heartbeat_agent_take_metadata (agent, options->metadata);
  {
    gsize text;

    /* checked already (options_are_valid()): a cached answer */
    agent->metadata_text = heartbeat_metadata_check (options->metadata, &text, NULL) ? (guint16) text
                                                                                      : G_MAXUINT16;
  }

  if (agent->owner_uid != options->owner_uid)
    {
      if (agent->registered)
        {
          owned_add (self, agent->owner_uid, -1);
          owned_add (self, options->owner_uid, +1);
        }
      agent->owner_uid = options->owner_uid;
    }
}

/* ------------------------------------------------------------------ */
/* Scheduling                                                          */

/* When the agent must next be looked at, or NO_DEADLINE if nothing can
 * happen to it without a call from outside. */
/* Since when a healthy agent counts as quiet: its last activity, or, if
 * it was restored from a store that may have missed its last beats, the
 * moment until which it may have been active (mark_at; see
 * HeartbeatAgentSnapshot.active_until_realtime). Registration and any
 * activity set mark_at to G_MININT64, so it counts only until then. */
static inline gint64
quiet_since (const HeartbeatAgent *agent)
{
  if (agent->state == HEARTBEAT_AGENT_STATE_HEALTHY)
    return MAX (agent->last_activity_at, agent->mark_at);
  return agent->last_activity_at;
}

/* When a job's next run is late (its due time plus the grace passed and no
 * run started), monotonic µs, or NO_DEADLINE. A job is judged so while it
 * is healthy, stale or in error and no run is in progress. */
static gint64
late_at (HeartbeatMonitor     *self,
         const HeartbeatAgent *agent)
{
  const HeartbeatJob *job = agent->job;
  gint64 now, late;

  if (job == NULL || job->due_func == NULL || job->due == 0 || job->current != NULL)
    return NO_DEADLINE;
  if (agent->state != HEARTBEAT_AGENT_STATE_HEALTHY && agent->state != HEARTBEAT_AGENT_STATE_STALE &&
      agent->state != HEARTBEAT_AGENT_STATE_ERROR)
    return NO_DEADLINE;
  /* due_next() keeps due times below DUE_MAX, so this cannot overflow */
  now = monitor_now (self);
  late = now + (job->due + job->grace - monitor_real_now (self));
  return late;
}

/* A job's run in progress is judged by its run timeout alone (did it
 * finish in time), not by the stale threshold: a job need not beat while
 * it runs, as a cron job between its start and end pings does not. */
static inline gboolean
job_is_running (const HeartbeatAgent *agent)
{
  return agent->job != NULL && ((const HeartbeatJob *) agent->job)->current != NULL;
}

static gint64
judged_deadline (HeartbeatMonitor     *self,
                 const HeartbeatAgent *agent)
{
  gint64 run_ends;

  switch ((HeartbeatAgentState) agent->state)
    {
    case HEARTBEAT_AGENT_STATE_NO_HEARTBEAT:
    case HEARTBEAT_AGENT_STATE_PAUSED:
      return NO_DEADLINE;
    case HEARTBEAT_AGENT_STATE_TIMED_OUT:
    case HEARTBEAT_AGENT_STATE_GONE:
      /* listed as it ended until the retention passes */
      return agent->declared || self->retention == 0 ? NO_DEADLINE : agent->mark_at + self->retention;
    case HEARTBEAT_AGENT_STATE_HEALTHY:
    case HEARTBEAT_AGENT_STATE_STALE:
    case HEARTBEAT_AGENT_STATE_ERROR:
    default:
      break;
    }

  if (agent->idle)
    return NO_DEADLINE;

  run_ends = timeout_at (agent);
  if (agent->state == HEARTBEAT_AGENT_STATE_ERROR || job_is_running (agent))
    return run_ends;
  if (agent->state == HEARTBEAT_AGENT_STATE_STALE)
    return self->stale_warning_only_once ? run_ends
                                         : MIN (run_ends, agent->mark_at + self->check_interval);
  return MIN (run_ends, quiet_since (agent) + agent->stale_after);
}

static gint64
compute_deadline (HeartbeatMonitor     *self,
                  const HeartbeatAgent *agent)
{
  gint64 deadline = judged_deadline (self, agent);

  return agent->job ? MIN (deadline, late_at (self, agent)) : deadline;
}

static void
rearm (HeartbeatMonitor *self)
{
  HeartbeatAgent *top;
  gint64 ready_time;

  if (self->source == NULL)
    return;

  /* -1 is GLib's "never"; a deadline before boot is due at once */
  top = heartbeat_deadlines_peek (&self->deadlines);
  ready_time = top ? MAX (top->deadline, 0) : -1;
  if (ready_time != self->armed_at)
    {
      self->armed_at = ready_time;
      g_source_set_ready_time (self->source, ready_time);
    }
}

static void
schedule (HeartbeatMonitor *self,
          HeartbeatAgent   *agent)
{
  gint64 deadline = compute_deadline (self, agent);

  if (deadline == NO_DEADLINE)
    {
      heartbeat_deadlines_remove (&self->deadlines, agent);
    }
  else
    {
      agent->deadline = deadline;
      if (agent->heap_index == HEARTBEAT_HEAP_NONE)
        heartbeat_deadlines_push (&self->deadlines, agent);
      else
        heartbeat_deadlines_update (&self->deadlines, agent);
    }
  rearm (self);
}

/* Every deadline after the monitor's thresholds changed. */
static void
reschedule_all (HeartbeatMonitor *self)
{
  GHashTableIter iter;
  HeartbeatAgent *agent;

  g_hash_table_iter_init (&iter, self->agents);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &agent))
    {
      gint64 deadline;

      if (agent->stale_is_default)
        agent->stale_after = self->stale_threshold;
      if (agent->timeout_is_default)
        agent->timeout_after = default_timeout (self, agent->service);

      deadline = compute_deadline (self, agent);
      if (deadline != NO_DEADLINE)
        {
          agent->deadline = deadline;
          if (agent->heap_index == HEARTBEAT_HEAP_NONE)
            heartbeat_deadlines_push (&self->deadlines, agent);
        }
      else
        {
          heartbeat_deadlines_remove (&self->deadlines, agent);
        }
    }
  heartbeat_deadlines_heapify (&self->deadlines);
  rearm (self);
}

/* ------------------------------------------------------------------ */
/* Adding and removing                                                 */

static void
insert_agent (HeartbeatMonitor *self,
              HeartbeatAgent   *agent)
{
  g_hash_table_insert (self->agents, agent->id, agent);
  agent->registered = TRUE;
  self->state_counts[agent->state]++;
  owned_add (self, agent->owner_uid, +1);
}

/* Takes @agent out of the table without a word; returns the table's
 * reference. */
static HeartbeatAgent *
detach_agent (HeartbeatMonitor *self,
              HeartbeatAgent   *agent)
{
  g_hash_table_steal (self->agents, agent->id);
  heartbeat_deadlines_remove (&self->deadlines, agent);
  self->state_counts[agent->state]--;
  owned_add (self, agent->owner_uid, -1);
  agent->registered = FALSE;
  agent->generation++;
  rearm (self);
  return agent;
}

static void
remove_agent (HeartbeatMonitor         *self,
              HeartbeatAgent           *agent,
              HeartbeatUnregisterReason reason)
{
  g_autoptr(HeartbeatAgent) owned G_GNUC_UNUSED = detach_agent (self, agent);

  note_change (self, agent->id, HEARTBEAT_CHANGE_STATE);
  g_signal_emit (self, signals[SIGNAL_AGENT_UNREGISTERED], 0, agent, reason);
}

static HeartbeatAgent *
add_agent (HeartbeatMonitor            *self,
           const char                  *id,
           const HeartbeatAgentOptions *options,
           HeartbeatAgentState          state,
           gint64                       now)
{
  HeartbeatAgent *agent = heartbeat_agent_new (id);

  apply_options (self, agent, options);
  agent->state = state;
  agent->started_at = now;
  agent->last_activity_at = now;
  agent->mark_at = G_MININT64;
  heartbeat_agent_record_state (agent, heartbeat_monitor_to_realtime (self, now));
  insert_agent (self, agent);
  note_change (self, agent->id, HEARTBEAT_CHANGE_STATE);
  return agent;
}

/* ------------------------------------------------------------------ */
/* Jobs: due times and runs                                            */

/* Due times stay below this (year 2255), so sums with a grace and a clock
 * cannot overflow. */
#define DUE_MAX (G_MAXINT64 / 8)

static HeartbeatJob *
agent_job (HeartbeatAgent *agent)
{
  if (agent->job == NULL)
    agent->job = heartbeat_job_new ();
  return agent->job;
}

/* The schedule's first due time after @after, or 0. */
static gint64
due_next (HeartbeatJob *job,
          gint64        after)
{
  gint64 due;

  if (job->due_func == NULL)
    return 0;
  due = job->due_func (after, job->due_data);
  return due > after && due < DUE_MAX ? due : 0;
}

static void
emit_run (HeartbeatMonitor   *self,
          HeartbeatAgent     *agent,
          const HeartbeatRun *run)
{
  g_autoptr(GVariant) record = g_variant_ref_sink (heartbeat_run_to_variant (run));

  g_signal_emit (self, signals[SIGNAL_AGENT_RUN], 0, agent, record);
}

/* A run that starts at @at (wall-clock) answers the due time if it comes
 * no earlier than a grace before it: the job's next due time moves on. A
 * run while the job is late answers the due time it missed, late. */
static void
answer_due (HeartbeatJob *job,
            HeartbeatRun *run,
            gint64        at)
{
  if (job->due != 0 && at >= job->due - job->grace)
    {
      run->due = job->due;
      run->late = at > job->due + job->grace;
      job->answered = MAX (job->due, at);
      job->due = due_next (job, job->answered);
    }
  else if (job->late_due != 0)
    {
      run->due = job->late_due;
      run->late = TRUE;
    }
  job->late_due = 0;
}

static void
miss_run (HeartbeatMonitor *self,
          HeartbeatAgent   *agent,
          gint64            now)
{
  HeartbeatJob *job = agent->job;
  HeartbeatRun *run = heartbeat_job_add_run (job, monitor_real_now (self));
  guint32 generation = agent->generation;
  HeartbeatAgentState old;

  run->due = job->due;
  run->result = HEARTBEAT_RUN_RESULT_MISSED;
  job->answered = job->due;
  if (job->late_due == 0)
    job->late_due = job->due;
  job->due = due_next (job, job->due);
  note_change (self, agent->id, HEARTBEAT_CHANGE_STATE);

  g_autoptr(HeartbeatAgent) hold G_GNUC_UNUSED = heartbeat_agent_ref (agent);
  if (agent->state != HEARTBEAT_AGENT_STATE_HEALTHY)
    {
      /* stale or in error already: the record says it, no second warning */
      schedule (self, agent);
      emit_run (self, agent, run);
      return;
    }
  old = set_state (self, agent, HEARTBEAT_AGENT_STATE_STALE);
  agent->mark_at = now;
  schedule (self, agent);
  emit_run (self, agent, run);
  if (agent->generation != generation)
    return;
  emit_state_changed (self, agent, old);
  if (agent->generation == generation && agent->state == HEARTBEAT_AGENT_STATE_STALE)
    emit_stale (self, agent, now - agent->last_activity_at);
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */

static void
time_out (HeartbeatMonitor *self,
          HeartbeatAgent   *agent,
          gint64            now)
{
  guint32 generation = agent->generation;
  gint64 running = now - agent->started_at;
  HeartbeatAgentState old;

  /* It stays listed, timed out, until it beats, registers again or is
   * unregistered, or (unless declared) the retention passes. */
  old = set_state (self, agent, HEARTBEAT_AGENT_STATE_TIMED_OUT);
  agent->mark_at = now;
  agent->idle = FALSE;
  if (agent->job && ((HeartbeatJob *) agent->job)->current)
    {
      HeartbeatRun *run = ((HeartbeatJob *) agent->job)->current;

      run->result = HEARTBEAT_RUN_RESULT_TIMED_OUT;
      emit_run (self, agent, run);
    }
  schedule (self, agent);
  emit_state_changed (self, agent, old);
  if (agent->generation != generation || agent->state != HEARTBEAT_AGENT_STATE_TIMED_OUT)
    return;

  emit_timed_out (self, agent, running);
}

/* Looks at an agent whose heap entry came due. Its real deadline may be
 * later (it beat since); then it is only re-queued. */
static void
check_agent (HeartbeatMonitor *self,
             HeartbeatAgent   *agent,
             gint64            now)
{
  guint32 generation = agent->generation;
  gint64 popped = agent->deadline;
  gint64 due;
  HeartbeatAgentState old;

  if (agent->state == HEARTBEAT_AGENT_STATE_GONE || agent->state == HEARTBEAT_AGENT_STATE_TIMED_OUT)
    {
      if (compute_deadline (self, agent) <= now)
        remove_agent (self, agent, agent->state == HEARTBEAT_AGENT_STATE_GONE ? HEARTBEAT_UNREGISTER_REASON_GONE
                                                                              : HEARTBEAT_UNREGISTER_REASON_TIMED_OUT);
      else
        schedule (self, agent);
      return;
    }

  /* The key the agent was queued under may be older than its real deadline
   * (a beat does not touch the queue). Put it back under the real one, so
   * that when several deadlines are due in one run the signals still come
   * in deadline order. */
  due = compute_deadline (self, agent);
  if (due != NO_DEADLINE && due > popped)
    {
      agent->deadline = due;
      heartbeat_deadlines_push (&self->deadlines, agent);
      return;
    }

  if (agent->job && late_at (self, agent) <= now)
    {
      miss_run (self, agent, now);
      return;
    }

  if (!agent->idle && now >= timeout_at (agent))
    {
      gint64 run_ends = timeout_at (agent);

      /* Stale and timeout both due in this run: the timeout wins, with no
       * stale warning, but only at its own place in deadline order. */
      if (run_ends > popped)
        {
          agent->deadline = run_ends;
          heartbeat_deadlines_push (&self->deadlines, agent);
          return;
        }
      time_out (self, agent, now);
      return;
    }

  if (agent->idle ||
      agent->state == HEARTBEAT_AGENT_STATE_ERROR ||
      job_is_running (agent) ||
      now < quiet_since (agent) + agent->stale_after)
    {
      schedule (self, agent);
      return;
    }

  if (agent->state != HEARTBEAT_AGENT_STATE_STALE)
    {
      old = set_state (self, agent, HEARTBEAT_AGENT_STATE_STALE);
      agent->mark_at = now;
      schedule (self, agent);
      emit_state_changed (self, agent, old);
    }
  else if (!self->stale_warning_only_once && now >= agent->mark_at + self->check_interval)
    {
      agent->mark_at = now;
      schedule (self, agent);
    }
  else
    {
      schedule (self, agent);
      return;
    }

  if (agent->generation == generation && agent->state == HEARTBEAT_AGENT_STATE_STALE)
    emit_stale (self, agent, now - agent->last_activity_at);
}

/* Handles agents due at or before @now, in deadline order, at most @limit of
 * them. Returns FALSE if it stopped at the limit. */
static gboolean
run_checks (HeartbeatMonitor *self,
            gint64            now,
            guint             limit)
{
  HeartbeatAgent *top;
  guint handled = 0;

  while ((top = heartbeat_deadlines_peek (&self->deadlines)) != NULL &&
         top->deadline <= now)
    {
      g_autoptr(HeartbeatAgent) agent = heartbeat_agent_ref (top);

      if (handled++ == limit)
        return FALSE;
      heartbeat_deadlines_remove (&self->deadlines, agent);
      check_agent (self, agent, now);
    }
  rearm (self);
  return TRUE;
}

/**
 * heartbeat_monitor_run_checks:
 * @monitor: a #HeartbeatMonitor
 * @now: the time to judge by: monotonic µs, in the monitor's clock
 *
 * Handles every agent whose deadline is at or before @now, in deadline
 * order, emitting #HeartbeatMonitor::agent-stale,
 * #HeartbeatMonitor::agent-timed-out and the state changes they bring. This
 * is the logic the deadline source runs when the monitor is started; call
 * it directly to drive the monitor with an explicit clock. Signal handlers
 * may call back into the monitor.
 */
void
heartbeat_monitor_run_checks (HeartbeatMonitor *monitor,
                              gint64            now)
{
  g_return_if_fail (HEARTBEAT_IS_MONITOR (monitor));

  run_checks (monitor, now, G_MAXUINT);
}

/**
 * heartbeat_monitor_get_next_deadline:
 * @monitor: a #HeartbeatMonitor
 *
 * The earliest moment the monitor has something to look at. A beat does
 * not move it (the agent is re-queued when its old deadline comes), so it
 * can be earlier than the next signal, never later.
 *
 * Returns: monotonic µs (negative for a moment before boot), or
 *   %HEARTBEAT_NO_DEADLINE if no agent has a deadline
 */
gint64
heartbeat_monitor_get_next_deadline (HeartbeatMonitor *monitor)
{
  HeartbeatAgent *top;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), HEARTBEAT_NO_DEADLINE);

  top = heartbeat_deadlines_peek (&monitor->deadlines);
  return top ? top->deadline : HEARTBEAT_NO_DEADLINE;
}

static gboolean
deadline_source_dispatch (GSource    *source,
                          GSourceFunc callback,
                          gpointer    user_data)
{
  HeartbeatMonitor *self = user_data;

  if (!run_checks (self, monitor_now (self), DISPATCH_BATCH))
    {
      /* More is due: run again on the next iteration, after other sources. */
      self->armed_at = 0;
      g_source_set_ready_time (source, 0);
    }
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs deadline_source_funcs = {
  .dispatch = deadline_source_dispatch,
};

/* ------------------------------------------------------------------ */
/* Public API: life cycle                                              */

/**
 * heartbeat_monitor_new:
 *
 * Creates a monitor with the default thresholds. It emits its signals and
 * arms its deadline source in the thread-default #GMainContext of the
 * caller.
 *
 * Returns: (transfer full): a new #HeartbeatMonitor
 */
HeartbeatMonitor *
heartbeat_monitor_new (void)
{
  return g_object_new (HEARTBEAT_TYPE_MONITOR, NULL);
}

/**
 * heartbeat_monitor_get_default:
 *
 * The process-wide monitor, created on first use: the counterpart of the
 * `init_heartbeat_monitor()` / `get_heartbeat_monitor()` globals of the
 * Python monitor. It is never freed. Call it from the main thread.
 *
 * Returns: (transfer none): the default #HeartbeatMonitor
 */
HeartbeatMonitor *
heartbeat_monitor_get_default (void)
{
  static HeartbeatMonitor *default_monitor;

  if (g_once_init_enter (&default_monitor))
    g_once_init_leave (&default_monitor, heartbeat_monitor_new ());
  return default_monitor;
}

/**
 * heartbeat_monitor_start:
 * @monitor: a #HeartbeatMonitor
 *
 * Arms the deadline source, so signals fire on their own as deadlines come
 * due; anything already due is handled on the next main loop iteration.
 * Does nothing if the monitor is running.
 */
void
heartbeat_monitor_start (HeartbeatMonitor *monitor)
{
  g_return_if_fail (HEARTBEAT_IS_MONITOR (monitor));

  if (monitor->source != NULL)
    return;

  monitor->source = g_source_new (&deadline_source_funcs, sizeof (GSource));
  g_source_set_name (monitor->source, "HeartbeatMonitor deadlines");
  g_source_set_priority (monitor->source, G_PRIORITY_HIGH);
  g_source_set_callback (monitor->source, NULL, monitor, NULL);
  monitor->armed_at = -1;
  g_source_attach (monitor->source, monitor->context);
  rearm (monitor);

  g_object_notify_by_pspec (G_OBJECT (monitor), properties[PROP_RUNNING]);
}

/**
 * heartbeat_monitor_stop:
 * @monitor: a #HeartbeatMonitor
 *
 * Disarms the deadline source. Agents and their activity are kept; checks
 * only run through heartbeat_monitor_run_checks() until the next
 * heartbeat_monitor_start().
 */
void
heartbeat_monitor_stop (HeartbeatMonitor *monitor)
{
  g_return_if_fail (HEARTBEAT_IS_MONITOR (monitor));

  if (monitor->source == NULL)
    return;

  g_source_destroy (monitor->source);
  g_clear_pointer (&monitor->source, g_source_unref);
  monitor->armed_at = -1;

  g_object_notify_by_pspec (G_OBJECT (monitor), properties[PROP_RUNNING]);
}

/**
 * heartbeat_monitor_get_running:
 * @monitor: a #HeartbeatMonitor
 *
 * Returns: %TRUE between heartbeat_monitor_start() and heartbeat_monitor_stop()
 */
gboolean
heartbeat_monitor_get_running (HeartbeatMonitor *monitor)
{
  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), FALSE);
  return monitor->source != NULL;
}

/* ------------------------------------------------------------------ */
/* Public API: agents                                                  */

/* A handler of agent-registered may have unregistered the agent it was
 * told about; then there is no agent to return. */
static HeartbeatAgent *
still_registered (HeartbeatAgent *agent,
                  const char     *id,
                  GError        **error)
{
  if (agent->registered)
    return agent;
  g_set_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_NOT_FOUND,
               "Agent “%s” was unregistered while it was being registered", id);
  return NULL;
}

/**
 * heartbeat_monitor_register:
 * @monitor: a #HeartbeatMonitor
 * @id: the agent's id
 * @options: (nullable): task, thresholds, owner, pid and metadata, or %NULL
 *   for none
 * @error: return location for a #GError
 *
 * Starts tracking an agent: it is healthy, running, and its stale and
 * timeout deadlines count from now. Registering an id that exists restarts
 * it in place with the new options: a fresh start time, no beats, the stale
 * episode ended. Emits #HeartbeatMonitor::agent-state-changed if that
 * changes its state, then #HeartbeatMonitor::agent-registered.
 *
 * Returns: (transfer none): the agent, or %NULL with @error set (and nothing
 *   changed) if the id or an option is invalid
 */
HeartbeatAgent *
heartbeat_monitor_register (HeartbeatMonitor            *monitor,
                            const char                  *id,
                            const HeartbeatAgentOptions *options,
                            GError                     **error)
{
  HeartbeatAgent *agent;
  g_autoptr(HeartbeatAgent) hold = NULL;
  HeartbeatAgentState old = HEARTBEAT_AGENT_STATE_HEALTHY;
  guint32 generation;
  gint64 now;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), NULL);

  if (!heartbeat_id_is_valid (id, error) || !options_are_valid (options, error))
    return NULL;

  now = monitor_now (monitor);
  agent = g_hash_table_lookup (monitor->agents, id);
  if (agent == NULL)
    {
      if (monitor->max_agents != 0 && g_hash_table_size (monitor->agents) >= monitor->max_agents)
        {
          g_set_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_QUOTA_EXCEEDED,
                       "The monitor holds its maximum of %u agents", monitor->max_agents);
          return NULL;
        }
      agent = add_agent (monitor, id, options, HEARTBEAT_AGENT_STATE_HEALTHY, now);
      schedule (monitor, agent);
    }
  else
    {
      agent->generation++;
      apply_options (monitor, agent, options);
      agent->started_at = now;
      agent->last_activity_at = now;
      agent->mark_at = G_MININT64;
      agent->beats = 0;
      agent->idle = FALSE;
      heartbeat_agent_set_status (agent, NULL);
      old = set_state (monitor, agent, HEARTBEAT_AGENT_STATE_HEALTHY);
      schedule (monitor, agent);
    }
  note_change (monitor, id, HEARTBEAT_CHANGE_CALLER);

  hold = heartbeat_agent_ref (agent);
  generation = agent->generation;
  emit_state_changed (monitor, agent, old);
  if (agent->generation == generation)
    g_signal_emit (monitor, signals[SIGNAL_AGENT_REGISTERED], 0, agent);
  return still_registered (agent, id, error);
}

/**
 * heartbeat_monitor_declare:
 * @monitor: a #HeartbeatMonitor
 * @id: the agent's id
 * @options: (nullable): task, thresholds, owner, pid and metadata, or %NULL
 * @error: return location for a #GError
 *
 * Declares an agent that is expected to exist, as a configuration does. A
 * new agent starts in %HEARTBEAT_AGENT_STATE_NO_HEARTBEAT, with the status
 * `waiting` and no deadlines; its first beat starts its first run. The monitor never
 * removes a declared agent on its own. Declaring an id that exists marks
 * it declared and gives it the task and thresholds of @options (the
 * declaration has the last word on those, at every reload); its owner,
 * state, activity and metadata stay.
 * Emits #HeartbeatMonitor::agent-registered for a new agent.
 *
 * Returns: (transfer none): the agent, or %NULL with @error set
 */
HeartbeatAgent *
heartbeat_monitor_declare (HeartbeatMonitor            *monitor,
                           const char                  *id,
                           const HeartbeatAgentOptions *options,
                           GError                     **error)
{
  HeartbeatAgent *agent;
  g_autoptr(HeartbeatAgent) hold = NULL;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), NULL);

  if (!heartbeat_id_is_valid (id, error) || !options_are_valid (options, error))
    return NULL;

  agent = g_hash_table_lookup (monitor->agents, id);
  if (agent != NULL)
    {
      gboolean changed = apply_task_and_thresholds (monitor, agent, options ? options : &no_options);

      changed = apply_tags (agent, options ? options->tags : NULL) || changed;

      if (changed || !agent->declared)
        {
          agent->declared = TRUE;
          schedule (monitor, agent);
          note_change (monitor, id, HEARTBEAT_CHANGE_STATE);
        }
      return agent;
    }

  agent = add_agent (monitor, id, options, HEARTBEAT_AGENT_STATE_NO_HEARTBEAT,
                     monitor_now (monitor));
  agent->declared = TRUE;
  heartbeat_agent_set_status (agent, "waiting");
  schedule (monitor, agent);
  hold = heartbeat_agent_ref (agent);
  g_signal_emit (monitor, signals[SIGNAL_AGENT_REGISTERED], 0, agent);
  return still_registered (agent, id, error);
}

/**
 * heartbeat_monitor_undeclare:
 * @monitor: a #HeartbeatMonitor
 * @id: the agent's id
 *
 * Takes a declaration back, as a configuration that no longer names the
 * agent does. An agent that has not beaten since it was declared
 * (%HEARTBEAT_AGENT_STATE_NO_HEARTBEAT) is removed with
 * %HEARTBEAT_UNREGISTER_REASON_UNREGISTERED; any other becomes an ordinary
 * agent, which keeps its state and is removed, as a registered one is, when
 * it times out or its retention ends.
 *
 * Returns: %TRUE if @id was a declared agent
 */
gboolean
heartbeat_monitor_undeclare (HeartbeatMonitor *monitor,
                             const char       *id)
{
  HeartbeatAgent *agent;
  g_autoptr(HeartbeatAgent) hold = NULL;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), FALSE);
  g_return_val_if_fail (id != NULL, FALSE);

  agent = g_hash_table_lookup (monitor->agents, id);
  if (agent == NULL || !agent->declared)
    return FALSE;

  hold = heartbeat_agent_ref (agent);
  agent->declared = FALSE;
  if (agent->state == HEARTBEAT_AGENT_STATE_NO_HEARTBEAT)
    {
      remove_agent (monitor, agent, HEARTBEAT_UNREGISTER_REASON_UNREGISTERED);
      return TRUE;
    }
  schedule (monitor, agent);
  note_change (monitor, id, HEARTBEAT_CHANGE_STATE);
  return TRUE;
}

static gint64
to_monotonic (gint64 realtime,
              gint64 now,
              gint64 real_now)
{
  return now - MAX (0, real_now - realtime);
}

static HeartbeatAgent *
restore_agent (HeartbeatMonitor             *self,
               const char                   *id,
               const HeartbeatAgentOptions  *options,
               const HeartbeatAgentSnapshot *snapshot,
               GError                      **error)
{
  HeartbeatAgent *agent;
  HeartbeatAgentState state;
  gint64 now, real_now, paused_at = 0;
  g_autoptr(HeartbeatJob) runs = NULL;
  g_autoptr(HeartbeatJob) job = NULL;

  if (!heartbeat_id_is_valid (id, error) || !options_are_valid (options, error) ||
      !heartbeat_text_is_valid (snapshot->status, HEARTBEAT_STATUS_MAX_LENGTH, "Status", error) ||
      !heartbeat_text_is_valid (snapshot->paused_reason, HEARTBEAT_PAUSE_REASON_MAX_LENGTH, "Reason", error))
    return NULL;
  if ((guint) snapshot->state >= HEARTBEAT_AGENT_N_STATES)
    {
      g_set_error_literal (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                           "Unknown agent state");
      return NULL;
    }

  if (snapshot->runs != NULL)
    {
      runs = heartbeat_job_new ();
      if (!heartbeat_job_set_runs (runs, snapshot->runs, monitor_real_now (self), error))
        return NULL;
    }

  agent = g_hash_table_lookup (self->agents, id);
  if (agent != NULL)
    {
      /* the schedule is the front's, not the snapshot's: it stays */
      job = g_steal_pointer (&agent->job);
      remove_agent (self, agent, HEARTBEAT_UNREGISTER_REASON_UNREGISTERED);
    }

  state = snapshot->state;
  if (state == HEARTBEAT_AGENT_STATE_NO_HEARTBEAT && !snapshot->declared)
    state = HEARTBEAT_AGENT_STATE_HEALTHY;
  if (state == HEARTBEAT_AGENT_STATE_PAUSED || snapshot->paused_at_realtime != 0)
    {
      paused_at = snapshot->paused_at_realtime > 0 ? snapshot->paused_at_realtime : monitor_real_now (self);
      /* what it is under the pause, as its status says */
      if (g_strcmp0 (snapshot->status, "error") == 0)
        state = HEARTBEAT_AGENT_STATE_ERROR;
      else if (g_strcmp0 (snapshot->status, "stopped") == 0)
        state = HEARTBEAT_AGENT_STATE_GONE;
      else if (snapshot->declared && g_strcmp0 (snapshot->status, "waiting") == 0)
        state = HEARTBEAT_AGENT_STATE_NO_HEARTBEAT;
      else
        state = HEARTBEAT_AGENT_STATE_HEALTHY;
    }

  now = monitor_now (self);
  real_now = monitor_real_now (self);
  agent = add_agent (self, id, options, paused_at ? HEARTBEAT_AGENT_STATE_PAUSED : state, now);
  agent->declared = snapshot->declared;
  if (paused_at)
    {
      HeartbeatAgentExtra *extra = heartbeat_agent_get_extra (agent);

      extra->paused_at = paused_at;
      extra->paused_reason = g_strdup (snapshot->paused_reason);
      extra->paused_by = snapshot->paused_by_uid;
      extra->held_state = state;
    }
  agent->beats = snapshot->beats;
  agent->started_at = to_monotonic (snapshot->started_at_realtime, now, real_now);
  agent->last_activity_at = to_monotonic (snapshot->last_activity_at_realtime, now, real_now);
  /* stale: its episode goes on, warned now; gone: since now; healthy: quiet
   * since its last activity, or since it may have been active */
  if (state != HEARTBEAT_AGENT_STATE_HEALTHY)
    agent->mark_at = now;
  else if (snapshot->active_until_realtime != 0)
    agent->mark_at = to_monotonic (snapshot->active_until_realtime, now, real_now);
  heartbeat_agent_set_status (agent, snapshot->status);
  agent->idle = g_strcmp0 (agent->status, "idle") == 0;
  /* the saved timeline, the time nobody watched, then now if it did not
   * end in this state */
  if (snapshot->history)
    {
      heartbeat_agent_set_history (agent, snapshot->history);
      if (snapshot->unmonitored_since_realtime > 0 && snapshot->unmonitored_since_realtime < real_now)
        heartbeat_agent_record_unmonitored (agent, snapshot->unmonitored_since_realtime);
      heartbeat_agent_record_state (agent, real_now);
    }
  agent->job = g_steal_pointer (&job);
  if (runs != NULL)
    {
      HeartbeatJob *j = agent_job (agent);

      /* the saved records; due times up to their last are answered */
      g_ptr_array_unref (j->runs);
      j->runs = g_ptr_array_ref (runs->runs);
      j->current = runs->current;
      j->answered = heartbeat_job_last_answered (j, real_now);
      for (guint i = j->runs->len; i > 0; i--)
        {
          HeartbeatRun *run = g_ptr_array_index (j->runs, i - 1);

          /* a missed run with no run after it: still late */
          if (run->result != HEARTBEAT_RUN_RESULT_MISSED)
            break;
          j->late_due = run->due;
        }
      j->due = due_next (j, j->answered);
    }
  schedule (self, agent);
  return agent;
}

/**
 * heartbeat_monitor_restore:
 * @monitor: a #HeartbeatMonitor
 * @id: the agent's id
 * @options: (nullable): task, thresholds, owner, pid and metadata
 * @snapshot: what the agent's activity was, in wall-clock time
 * @error: return location for a #GError
 *
 * Puts back an agent a front persisted, converting its wall-clock times to
 * the monitor's clock so deadlines count from when things really happened:
 * an agent that went quiet while the daemon was down is due at once. A
 * stale agent stays in its episode (no second warning). Emits no
 * registration signal; an existing agent with the same id is first
 * unregistered.
 *
 * Returns: (transfer none): the agent, or %NULL with @error set
 */
HeartbeatAgent *
heartbeat_monitor_restore (HeartbeatMonitor             *monitor,
                           const char                   *id,
                           const HeartbeatAgentOptions  *options,
                           const HeartbeatAgentSnapshot *snapshot,
                           GError                      **error)
{
  HeartbeatAgent *agent;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), NULL);
  g_return_val_if_fail (snapshot != NULL, NULL);

  monitor->quiet++;
  agent = restore_agent (monitor, id, options, snapshot, error);
  monitor->quiet--;
  return agent;
}

/**
 * heartbeat_monitor_revert:
 * @monitor: a #HeartbeatMonitor
 * @id: the agent's id
 * @options: (nullable): as for heartbeat_monitor_restore()
 * @snapshot: (nullable): the agent as the store holds it, or %NULL if the
 *   store does not hold it
 * @error: return location for a #GError
 *
 * Takes back a caller's change the store could not make durable (see
 * #HeartbeatStoreFuncs): the agent becomes what the store holds. With
 * @snapshot, it is restored as by heartbeat_monitor_restore() and announced
 * with #HeartbeatMonitor::agent-registered; without, it is removed with
 * %HEARTBEAT_UNREGISTER_REASON_UNREGISTERED (a declared agent, which the
 * configuration brings back, is left as it is). The store is not told.
 *
 * Returns: (transfer none) (nullable): the agent as it is now, or %NULL
 *   (with @error set only if @snapshot was invalid)
 */
HeartbeatAgent *
heartbeat_monitor_revert (HeartbeatMonitor             *monitor,
                          const char                   *id,
                          const HeartbeatAgentOptions  *options,
                          const HeartbeatAgentSnapshot *snapshot,
                          GError                      **error)
{
  HeartbeatAgent *agent;
  g_autoptr(HeartbeatAgent) hold = NULL;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), NULL);
  g_return_val_if_fail (id != NULL, NULL);

  monitor->quiet++;
  if (snapshot == NULL)
    {
      agent = g_hash_table_lookup (monitor->agents, id);
      if (agent != NULL && !agent->declared)
        {
          remove_agent (monitor, agent, HEARTBEAT_UNREGISTER_REASON_UNREGISTERED);
          agent = NULL;
        }
      monitor->quiet--;
      return agent;
    }
  agent = restore_agent (monitor, id, options, snapshot, error);
  monitor->quiet--;
  if (agent == NULL)
    return NULL;
  hold = heartbeat_agent_ref (agent);
  g_signal_emit (monitor, signals[SIGNAL_AGENT_REGISTERED], 0, agent);
  return still_registered (agent, id, NULL);
}

/* A beat, a mark_idle, or an idle beat: the agent did something. */
static void
record_activity (HeartbeatMonitor *self,
                 HeartbeatAgent   *agent,
                 const char       *status,
                 GVariant         *metadata,
                 gsize             metadata_text,
                 gboolean          count_beat,
                 gint64            at)
{
  gboolean idle = g_strcmp0 (status, "idle") == 0;
  gboolean error = g_strcmp0 (status, "error") == 0;
  HeartbeatAgentState new_state = error ? HEARTBEAT_AGENT_STATE_ERROR : HEARTBEAT_AGENT_STATE_HEALTHY;
  HeartbeatAgentState old;
  gint64 now = monitor_now (self);
  guint32 generation;

  /* Activity from the past (a heartbeat file's timestamp) may bring the
   * agent's real deadline before the key it is queued under. */
  if (at == ACTIVITY_NOW || at > now)
    at = now;
  agent->last_activity_at = at;
  /* known activity: no longer quiet since a restore (see quiet_since()) */
  agent->mark_at = G_MININT64;
  if (count_beat)
    agent->beats++;
  /* a store saves activity lazily, a new status at once */
  if (g_strcmp0 (agent->status, status ? status : "running") != 0)
    note_change (self, agent->id, HEARTBEAT_CHANGE_STATE);
  else if (metadata)   /* a beat's merge gives none if nothing changed */
    note_change (self, agent->id, HEARTBEAT_CHANGE_METADATA);
  else
    note_change (self, agent->id, HEARTBEAT_CHANGE_ACTIVITY);
  heartbeat_agent_set_status (agent, status);
  if (metadata)
    {
      heartbeat_agent_take_metadata (agent, metadata);
      agent->metadata_text = (guint16) metadata_text;
    }

  /* The common case: a healthy agent beats again. Its heap entry stays; it
   * is re-queued when that entry comes due. */
  if (agent->state == new_state && new_state == HEARTBEAT_AGENT_STATE_HEALTHY &&
      !agent->idle && !idle)
    {
      if (at < now && compute_deadline (self, agent) < agent->deadline)
        schedule (self, agent);
      emit_beat (self, agent);
      return;
    }

  /* Leaving idle, the first beat of a declared agent, or a beat after a
   * timeout starts a new run. */
  if ((agent->idle && !idle) || judged_state (agent) == HEARTBEAT_AGENT_STATE_NO_HEARTBEAT ||
      judged_state (agent) == HEARTBEAT_AGENT_STATE_TIMED_OUT)
    agent->started_at = at;
  if (agent->idle != idle)
    note_change (self, agent->id, HEARTBEAT_CHANGE_STATE);
  agent->idle = idle;

  old = set_state (self, agent, new_state);
  schedule (self, agent);

  g_autoptr(HeartbeatAgent) hold G_GNUC_UNUSED = heartbeat_agent_ref (agent);
  generation = agent->generation;
  emit_state_changed (self, agent, old);
  /* a recovery is becoming healthy again: stale -> error is a change only */
  if (old == HEARTBEAT_AGENT_STATE_STALE && agent->state == HEARTBEAT_AGENT_STATE_HEALTHY &&
      agent->generation == generation)
    emit_recovered (self, agent);
  if (agent->generation == generation)
    emit_beat (self, agent);
}

static gboolean
beat_at (HeartbeatMonitor           *monitor,
         const char                 *id,
         const HeartbeatBeatDetails *details,
         gint64                      at,
         GError                    **error)
{
  HeartbeatAgent *agent;
  g_autoptr(GVariant) metadata = NULL;
  gsize beat_text = 0, merged_text = 0;

  agent = lookup_or_error (monitor, id, error);
  if (agent == NULL)
    return FALSE;

  if (details == NULL)
    {
      record_activity (monitor, agent, NULL, NULL, 0, TRUE, at);
      return TRUE;
    }

  if (!heartbeat_text_is_valid (details->status, HEARTBEAT_STATUS_MAX_LENGTH, "Status", error) ||
      !heartbeat_metadata_check (details->metadata, &beat_text, error))
    return FALSE;
  if (details->has_progress && !isfinite (details->progress))
    {
      g_set_error_literal (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                           "Progress must be a finite number");
      return FALSE;
    }
  /* NULL: the agent's metadata stays as it is */
  if ((details->metadata || details->has_progress) &&
      !merge_metadata (agent->metadata, agent->metadata_text, details, beat_text, &metadata, &merged_text, error))
    return FALSE;

  record_activity (monitor, agent, details->status, metadata, merged_text, TRUE, at);
  return TRUE;
}

/**
 * heartbeat_monitor_beat:
 * @monitor: a #HeartbeatMonitor
 * @id: the agent's id
 * @details: (nullable): status, progress and metadata, or %NULL for a plain
 *   beat
 * @error: return location for a #GError
 *
 * Records activity (update_activity of the Python monitor): the agent's
 * idle time starts again and its status becomes @details' status, or
 * `running`. The first beat after a stale episode emits
 * #HeartbeatMonitor::agent-state-changed and #HeartbeatMonitor::agent-recovered;
 * the status `error` makes the agent %HEARTBEAT_AGENT_STATE_ERROR; the
 * status `idle` is heartbeat_monitor_mark_idle(). A beat of a healthy agent
 * costs one hash lookup and no queue work.
 *
 * Returns: %TRUE, or %FALSE with @error set (and nothing changed) if the id
 *   is unknown or the details are invalid
 */
gboolean
heartbeat_monitor_beat (HeartbeatMonitor           *monitor,
                        const char                 *id,
                        const HeartbeatBeatDetails *details,
                        GError                    **error)
{
  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), FALSE);
  return beat_at (monitor, id, details, ACTIVITY_NOW, error);
}

/**
 * heartbeat_monitor_beat_at:
 * @monitor: a #HeartbeatMonitor
 * @id: the agent's id
 * @details: (nullable): as for heartbeat_monitor_beat()
 * @activity_realtime: when the activity happened, wall-clock µs; a moment
 *   in the future counts as now
 * @error: return location for a #GError
 *
 * heartbeat_monitor_beat() for activity that happened earlier and is
 * learnt of now, such as a heartbeat file's timestamp: the agent's idle
 * time counts from @activity_realtime, so activity older than the stale
 * threshold makes the agent stale at the next check.
 *
 * Returns: %TRUE, or %FALSE with @error set (and nothing changed)
 */
gboolean
heartbeat_monitor_beat_at (HeartbeatMonitor           *monitor,
                           const char                 *id,
                           const HeartbeatBeatDetails *details,
                           gint64                      activity_realtime,
                           GError                    **error)
{
  gint64 now;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), FALSE);

  now = monitor_now (monitor);
  return beat_at (monitor, id, details, to_monotonic (activity_realtime, now, monitor_real_now (monitor)), error);
}

/**
 * heartbeat_monitor_mark_no_heartbeat:
 * @monitor: a #HeartbeatMonitor
 * @id: the id of a declared agent
 * @error: return location for a #GError
 *
 * Returns a declared agent to %HEARTBEAT_AGENT_STATE_NO_HEARTBEAT, with no
 * deadlines, as when its heartbeat file disappears or cannot be read. Its
 * next beat starts a new run.
 *
 * Returns: %TRUE, or %FALSE with @error set if the id is unknown or the
 *   agent was not declared
 */
gboolean
heartbeat_monitor_mark_no_heartbeat (HeartbeatMonitor *monitor,
                                     const char       *id,
                                     GError          **error)
{
  HeartbeatAgent *agent;
  HeartbeatAgentState old;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), FALSE);

  agent = lookup_or_error (monitor, id, error);
  if (agent == NULL)
    return FALSE;
  if (!agent->declared)
    {
      g_set_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                   "Agent “%s” was not declared", id);
      return FALSE;
    }
  if (agent->state == HEARTBEAT_AGENT_STATE_NO_HEARTBEAT)
    return TRUE;

  old = set_state (monitor, agent, HEARTBEAT_AGENT_STATE_NO_HEARTBEAT);
  agent->idle = FALSE;
  heartbeat_agent_set_status (agent, "waiting");
  schedule (monitor, agent);
  emit_state_changed (monitor, agent, old);
  return TRUE;
}

/**
 * heartbeat_monitor_mark_idle:
 * @monitor: a #HeartbeatMonitor
 * @id: the agent's id
 * @error: return location for a #GError
 *
 * Marks the agent idle: it has nothing to do, so it is not expected to beat
 * and has no deadlines until its next beat, which starts a new run (the
 * running time counts from there). Ends a stale episode like a beat does.
 *
 * Returns: %TRUE, or %FALSE with @error set if the id is unknown
 */
gboolean
heartbeat_monitor_mark_idle (HeartbeatMonitor *monitor,
                             const char       *id,
                             GError          **error)
{
  HeartbeatAgent *agent;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), FALSE);

  agent = lookup_or_error (monitor, id, error);
  if (agent == NULL)
    return FALSE;

  note_change (monitor, id, HEARTBEAT_CHANGE_CALLER);
  record_activity (monitor, agent, "idle", NULL, 0, FALSE, ACTIVITY_NOW);
  return TRUE;
}

/**
 * heartbeat_monitor_mark_gone:
 * @monitor: a #HeartbeatMonitor
 * @id: the agent's id
 * @error: return location for a #GError
 *
 * Says the process or bus peer behind the agent went away, as a front
 * detects it (pidfd, NameOwnerChanged, a heartbeat file's pid). The agent
 * becomes %HEARTBEAT_AGENT_STATE_GONE at once and stays listed so until it
 * beats, registers again or is unregistered, or until
 * #HeartbeatMonitor:retention passes, when it is removed with the reason
 * %HEARTBEAT_UNREGISTER_REASON_GONE; a declared agent stays gone until it
 * beats again. Its status becomes `stopped`: nothing runs any more.
 *
 * Returns: %TRUE, or %FALSE with @error set if the id is unknown
 */
gboolean
heartbeat_monitor_mark_gone (HeartbeatMonitor *monitor,
                             const char       *id,
                             GError          **error)
{
  HeartbeatAgent *agent;
  HeartbeatAgentState old;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), FALSE);

  agent = lookup_or_error (monitor, id, error);
  if (agent == NULL)
    return FALSE;
  if (agent->state == HEARTBEAT_AGENT_STATE_GONE)
    return TRUE;

  old = set_state (monitor, agent, HEARTBEAT_AGENT_STATE_GONE);
  agent->mark_at = monitor_now (monitor);
  agent->idle = FALSE;
  heartbeat_agent_set_status (agent, "stopped");
  schedule (monitor, agent);
  emit_state_changed (monitor, agent, old);
  return TRUE;
}

/**
 * heartbeat_monitor_pause:
 * @monitor: a #HeartbeatMonitor
 * @id: the agent's id
 * @reason: (nullable): why, for the people who look (1 to
 *   %HEARTBEAT_PAUSE_REASON_MAX_LENGTH bytes of text), or %NULL
 * @by_uid: who paused it, as the front knows the caller
 * @error: return location for a #GError
 *
 * Stops judging the agent, as during maintenance: it becomes
 * %HEARTBEAT_AGENT_STATE_PAUSED until heartbeat_monitor_resume(). Its
 * beats, runs, status and metadata are still recorded, and a front may
 * still say it is gone, but no threshold, run timeout, due time or
 * retention is armed for it, so it raises no signal but
 * #HeartbeatMonitor::agent-state-changed and no alert or action follows.
 * Registering it again keeps the pause; unregistering it ends it. Pausing a
 * paused agent only replaces the reason and who paused it.
 *
 * Returns: %TRUE, or %FALSE with @error set if the id is unknown or the
 *   reason is not valid text (nothing changed)
 */
gboolean
heartbeat_monitor_pause (HeartbeatMonitor *monitor,
                         const char       *id,
                         const char       *reason,
                         guint32           by_uid,
                         GError          **error)
{
  HeartbeatAgent *agent;
  HeartbeatAgentExtra *extra;
  HeartbeatAgentState old;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), FALSE);

  if (!heartbeat_text_is_valid (reason, HEARTBEAT_PAUSE_REASON_MAX_LENGTH, "Reason", error))
    return FALSE;
  agent = lookup_or_error (monitor, id, error);
  if (agent == NULL)
    return FALSE;

  extra = heartbeat_agent_get_extra (agent);
  g_free (extra->paused_reason);
  extra->paused_reason = g_strdup (reason);
  extra->paused_by = by_uid;
  note_change (monitor, agent->id, HEARTBEAT_CHANGE_STATE);
  if (extra->paused_at != 0)
    return TRUE;

  extra->paused_at = MAX (monitor_real_now (monitor), 1);
  extra->held_state = agent->state;
  old = set_state (monitor, agent, HEARTBEAT_AGENT_STATE_PAUSED);
  schedule (monitor, agent);
  emit_state_changed (monitor, agent, old);
  return TRUE;
}

/**
 * heartbeat_monitor_resume:
 * @monitor: a #HeartbeatMonitor
 * @id: the agent's id
 * @error: return location for a #GError
 *
 * Judges a paused agent again (see heartbeat_monitor_pause()). Its state
 * is judged afresh from what it did while paused: in error if it last
 * reported `error` or a run failed, gone if a front said its process went
 * away, waiting for its first beat if it was declared and never beat, and
 * healthy otherwise. Every threshold and run timeout counts from the
 * resume, and a job's due times that passed while it was paused are not
 * missed, so resuming raises no alarm for the pause itself. Resuming an
 * agent that is not paused does nothing.
 *
 * Returns: %TRUE, or %FALSE with @error set if the id is unknown
 */
gboolean
heartbeat_monitor_resume (HeartbeatMonitor *monitor,
                          const char       *id,
                          GError          **error)
{
  HeartbeatAgent *agent;
  HeartbeatAgentExtra *extra;
  HeartbeatAgentState old, state;
  HeartbeatJob *job;
  gint64 now, real_now;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), FALSE);

  agent = lookup_or_error (monitor, id, error);
  if (agent == NULL)
    return FALSE;
  extra = agent->extra;
  if (extra == NULL || extra->paused_at == 0)
    return TRUE;

  now = monitor_now (monitor);
  real_now = monitor_real_now (monitor);
  extra->paused_at = 0;
  extra->paused_by = 0;
  g_clear_pointer (&extra->paused_reason, g_free);
  extra->resumed_at = now;
  switch ((HeartbeatAgentState) extra->held_state)
    {
    case HEARTBEAT_AGENT_STATE_ERROR:
    case HEARTBEAT_AGENT_STATE_GONE:
    case HEARTBEAT_AGENT_STATE_NO_HEARTBEAT:
      state = extra->held_state;
      break;
    case HEARTBEAT_AGENT_STATE_HEALTHY:
    case HEARTBEAT_AGENT_STATE_STALE:
    case HEARTBEAT_AGENT_STATE_TIMED_OUT:
    case HEARTBEAT_AGENT_STATE_PAUSED:
    default:
      state = HEARTBEAT_AGENT_STATE_HEALTHY;
      break;
    }
  /* quiet since the resume; a gone agent's retention counts from it */
  agent->mark_at = now;
  job = agent->job;
  if (job != NULL && job->due_func != NULL)
    {
      job->late_due = 0;
      if (job->due != 0 && job->due + job->grace <= real_now)
        {
          job->answered = MAX (job->answered, real_now - job->grace);
          job->due = due_next (job, job->answered);
        }
    }

  old = set_state (monitor, agent, state);
  note_change (monitor, agent->id, HEARTBEAT_CHANGE_STATE);
  schedule (monitor, agent);
  emit_state_changed (monitor, agent, old);
  return TRUE;
}

/**
 * heartbeat_monitor_mark_started:
 * @monitor: a #HeartbeatMonitor
 * @id: the agent's id
 * @started_realtime: when the process behind it started, wall-clock µs; a
 *   moment in the future counts as now
 * @error: return location for a #GError
 *
 * Says the process behind the agent (re)started at @started_realtime, as a
 * front learns it from a service manager: a new run. The agent is healthy
 * (or stale at once, if @started_realtime is longer ago than its stale
 * threshold), its status `running`, its run and its idle time counted from
 * @started_realtime. It is not a beat: the beat count stays, and the
 * process must beat within its stale threshold or the agent goes stale,
 * the way a process that started but hangs is told from one that runs.
 *
 * Returns: %TRUE, or %FALSE with @error set if the id is unknown
 */
gboolean
heartbeat_monitor_mark_started (HeartbeatMonitor *monitor,
                                const char       *id,
                                gint64            started_realtime,
                                GError          **error)
{
  HeartbeatAgent *agent;
  gint64 now, at;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), FALSE);

  agent = lookup_or_error (monitor, id, error);
  if (agent == NULL)
    return FALSE;

  now = monitor_now (monitor);
  at = to_monotonic (started_realtime, now, monitor_real_now (monitor));
  agent->started_at = at;
  /* leaving idle, if it was, is record_activity()'s to do: it schedules */
  record_activity (monitor, agent, NULL, NULL, 0, FALSE, at);
  return TRUE;
}

/**
 * heartbeat_monitor_set_service:
 * @monitor: a #HeartbeatMonitor
 * @id: the agent's id
 * @service: whether the agent is a service (see heartbeat_agent_is_service())
 * @error: return location for a #GError
 *
 * Says what kind of work the agent is, when a front learns it after the
 * agent was declared or registered: a systemd unit turns out to be a
 * `Type=oneshot` job (work that ends, so it gets the monitor's run
 * timeout) or a service (none, unless the agent has a timeout of its own).
 * A run in progress keeps its start; only its timeout changes.
 *
 * Returns: %TRUE, or %FALSE with @error set if the id is unknown
 */
gboolean
heartbeat_monitor_set_service (HeartbeatMonitor *monitor,
                               const char       *id,
                               gboolean          service,
                               GError          **error)
{
  HeartbeatAgent *agent;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), FALSE);

  agent = lookup_or_error (monitor, id, error);
  if (agent == NULL)
    return FALSE;
  service = !!service;
  if (agent->service == (guint) service)
    return TRUE;
  agent->service = service;
  if (agent->timeout_is_default)
    agent->timeout_after = default_timeout (monitor, service);
  schedule (monitor, agent);
  return TRUE;
}

/**
 * heartbeat_monitor_unregister:
 * @monitor: a #HeartbeatMonitor
 * @id: the agent's id
 * @error: return location for a #GError
 *
 * Stops tracking the agent and emits #HeartbeatMonitor::agent-unregistered
 * with %HEARTBEAT_UNREGISTER_REASON_UNREGISTERED.
 *
 * Returns: %TRUE, or %FALSE with @error set if the id is unknown
 */
gboolean
heartbeat_monitor_unregister (HeartbeatMonitor *monitor,
                              const char       *id,
                              GError          **error)
{
  HeartbeatAgent *agent;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), FALSE);

  agent = lookup_or_error (monitor, id, error);
  if (agent == NULL)
    return FALSE;

  detach_agent (monitor, agent);
  note_change (monitor, id, HEARTBEAT_CHANGE_CALLER);
  g_signal_emit (monitor, signals[SIGNAL_AGENT_UNREGISTERED], 0, agent,
                 HEARTBEAT_UNREGISTER_REASON_UNREGISTERED);
  heartbeat_agent_unref (agent);
  return TRUE;
}

/**
 * heartbeat_monitor_set_schedule:
 * @monitor: a #HeartbeatMonitor
 * @id: the agent's id
 * @due_func: (nullable): the job's schedule, or %NULL to take it away
 * @user_data: data for @due_func
 * @destroy: (nullable): frees @user_data when the schedule is replaced or
 *   the agent goes
 * @grace_usec: how long a run may start after its due time, µs; 0 for
 *   %HEARTBEAT_GRACE_DEFAULT
 * @error: return location for a #GError
 *
 * Makes the agent a job on a schedule: the monitor asks @due_func for each
 * next due time and judges it. A run that has not started (see
 * heartbeat_monitor_start_run(), heartbeat_monitor_finish_run()) by its due
 * time plus the grace is late: a %HEARTBEAT_RUN_RESULT_MISSED record is
 * added, and a healthy agent becomes %HEARTBEAT_AGENT_STATE_STALE with
 * #HeartbeatMonitor::agent-stale, until a run starts (which ends the
 * episode like a beat). Between runs the agent is healthy and idle; a
 * declared agent that never beat becomes so at once. Due times already
 * answered by its run records (a restored agent) are not asked for again;
 * without records, the schedule counts from now.
 *
 * Returns: %TRUE, or %FALSE with @error set (and nothing changed, @destroy
 *   not called) if the id is unknown or the grace out of range
 */
gboolean
heartbeat_monitor_set_schedule (HeartbeatMonitor *monitor,
                                const char       *id,
                                HeartbeatDueFunc  due_func,
                                gpointer          user_data,
                                GDestroyNotify    destroy,
                                gint64            grace_usec,
                                GError          **error)
{
  HeartbeatAgent *agent;
  HeartbeatJob *job;
  HeartbeatAgentState old;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), FALSE);

  if (grace_usec < 0 || grace_usec > HEARTBEAT_THRESHOLD_MAX)
    {
      g_set_error_literal (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                           "The grace must be from 0 to 100 years");
      return FALSE;
    }
  agent = lookup_or_error (monitor, id, error);
  if (agent == NULL)
    return FALSE;

  job = agent_job (agent);
  heartbeat_job_clear_schedule (job);
  job->due_func = due_func;
  job->due_data = user_data;
  job->due_destroy = destroy;
  job->grace = grace_usec ? grace_usec : HEARTBEAT_GRACE_DEFAULT;
  if (due_func != NULL)
    {
      if (job->answered == 0)
        job->answered = heartbeat_job_last_answered (job, monitor_real_now (monitor));
      job->due = due_next (job, job->answered);
    }
  note_change (monitor, id, HEARTBEAT_CHANGE_STATE);

  if (due_func == NULL || judged_state (agent) != HEARTBEAT_AGENT_STATE_NO_HEARTBEAT)
    {
      schedule (monitor, agent);
      return TRUE;
    }
  /* a job that never ran waits, healthy and idle, for its first due time */
  old = set_state (monitor, agent, HEARTBEAT_AGENT_STATE_HEALTHY);
  agent->idle = TRUE;
  heartbeat_agent_set_status (agent, "idle");
  schedule (monitor, agent);
  emit_state_changed (monitor, agent, old);
  return TRUE;
}

/**
 * heartbeat_monitor_reschedule:
 * @monitor: a #HeartbeatMonitor
 * @id: the agent's id
 * @error: return location for a #GError
 *
 * Asks the agent's schedule again for its next due time, when what the
 * #HeartbeatDueFunc answers has changed (a systemd timer's next elapse
 * moved). A schedule that stops knowing a due time it gave before (a timer
 * that was stopped) should keep answering it: a stopped timer's run is
 * missed, and that is what the monitor is there to say.
 *
 * Returns: %TRUE, or %FALSE with @error set if the id is unknown
 */
gboolean
heartbeat_monitor_reschedule (HeartbeatMonitor *monitor,
                              const char       *id,
                              GError          **error)
{
  HeartbeatAgent *agent;
  HeartbeatJob *job;
  gint64 due;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), FALSE);

  agent = lookup_or_error (monitor, id, error);
  if (agent == NULL)
    return FALSE;
  job = agent->job;
  if (job == NULL || job->due_func == NULL)
    return TRUE;
  due = due_next (job, job->answered);
  if (due != job->due)
    {
      job->due = due;
      note_change (monitor, id, HEARTBEAT_CHANGE_STATE);
      schedule (monitor, agent);
    }
  return TRUE;
}

/**
 * heartbeat_monitor_start_run:
 * @monitor: a #HeartbeatMonitor
 * @id: the agent's id
 * @started_realtime: when the run started, wall-clock µs; 0 or a moment
 *   in the future means now
 * @error: return location for a #GError
 *
 * Says a run of the job @id started: a %HEARTBEAT_RUN_RESULT_RUNNING
 * record, the agent healthy and `running` (a late or stale episode ends,
 * with #HeartbeatMonitor::agent-recovered), its run timeout counted from
 * @started_realtime. If the job has a schedule, the run answers its next
 * due time when it starts no earlier than a grace before it (so a run a
 * little early is not a second run), and is marked late if it starts
 * after the grace. A run in progress that never said how it ended stays
 * recorded as running.
 *
 * Returns: %TRUE, or %FALSE with @error set (and nothing changed) if the
 *   id is unknown
 */
gboolean
heartbeat_monitor_start_run (HeartbeatMonitor *monitor,
                             const char       *id,
                             gint64            started_realtime,
                             GError          **error)
{
  HeartbeatAgent *agent;
  HeartbeatJob *job;
  HeartbeatRun *run;
  gint64 now, real_now, at;
  guint32 generation;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), FALSE);

  agent = lookup_or_error (monitor, id, error);
  if (agent == NULL)
    return FALSE;

  now = monitor_now (monitor);
  real_now = monitor_real_now (monitor);
  at = started_realtime > 0 && started_realtime < real_now ? started_realtime : real_now;
  job = agent_job (agent);
  run = heartbeat_job_add_run (job, real_now);
  run->started = at;
  run->result = HEARTBEAT_RUN_RESULT_RUNNING;
  answer_due (job, run, at);
  job->current = run;
  note_change (monitor, id, HEARTBEAT_CHANGE_CALLER);

  g_autoptr(HeartbeatAgent) hold G_GNUC_UNUSED = heartbeat_agent_ref (agent);
  generation = agent->generation;
  emit_run (monitor, agent, run);
  if (agent->generation != generation)
    return TRUE;
  agent->started_at = to_monotonic (at, now, real_now);
  /* idle to running: record_activity() starts the run at @at */
  record_activity (monitor, agent, NULL, NULL, 0, FALSE, agent->started_at);
  if (agent->generation == generation)
    schedule (monitor, agent);
  return TRUE;
}

/**
 * heartbeat_monitor_finish_run:
 * @monitor: a #HeartbeatMonitor
 * @id: the agent's id
 * @end: how the run ended
 * @error: return location for a #GError
 *
 * Says a run of the job @id ended: its record gets the end, the result
 * (a run that timed out keeps %HEARTBEAT_RUN_RESULT_TIMED_OUT), the exit
 * status and the tail of the output. A run the monitor was not told had
 * started is recorded from @end alone (answering the job's due time as
 * heartbeat_monitor_start_run() would). A success leaves the agent healthy
 * and idle until its next run; a failure makes it
 * %HEARTBEAT_AGENT_STATE_ERROR, status `error`, until a run starts.
 *
 * Returns: %TRUE, or %FALSE with @error set (and nothing changed) if the
 *   id is unknown or @end is invalid
 */
gboolean
heartbeat_monitor_finish_run (HeartbeatMonitor      *monitor,
                              const char            *id,
                              const HeartbeatRunEnd *end,
                              GError               **error)
{
  HeartbeatAgent *agent;
  HeartbeatJob *job;
  HeartbeatRun *run;
  gint64 real_now, ended;
  guint32 generation;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), FALSE);
  g_return_val_if_fail (end != NULL, FALSE);

  if (end->exit_status < -1 || end->exit_status > 255)
    {
      g_set_error_literal (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                           "An exit status must be from 0 to 255");
      return FALSE;
    }
  agent = lookup_or_error (monitor, id, error);
  if (agent == NULL)
    return FALSE;

  real_now = monitor_real_now (monitor);
  ended = end->ended_realtime > 0 && end->ended_realtime < real_now ? end->ended_realtime : real_now;
  job = agent_job (agent);
  run = job->current;
  if (run == NULL)
    {
      gint64 started = end->started_realtime > 0 && end->started_realtime <= ended ? end->started_realtime : 0;

      run = heartbeat_job_add_run (job, real_now);
      run->started = started;
      answer_due (job, run, started ? started : ended);
    }
  job->current = NULL;
  run->ended = MAX (ended, run->started);
  if (run->result != HEARTBEAT_RUN_RESULT_TIMED_OUT)
    run->result = end->success ? HEARTBEAT_RUN_RESULT_SUCCESS : HEARTBEAT_RUN_RESULT_FAILURE;
  run->exit_status = end->exit_status;
  heartbeat_run_set_output (run, end->output, end->output_length);
  /* a due time that passed while it ran was not missed */
  if (job->due != 0 && job->due <= run->ended)
    {
      job->answered = MAX (job->answered, run->ended);
      job->due = due_next (job, job->answered);
    }
  note_change (monitor, id, HEARTBEAT_CHANGE_CALLER);

  g_autoptr(HeartbeatAgent) hold G_GNUC_UNUSED = heartbeat_agent_ref (agent);
  generation = agent->generation;
  emit_run (monitor, agent, run);
  if (agent->generation != generation)
    return TRUE;
  record_activity (monitor, agent, end->success ? "idle" : "error", NULL, 0, FALSE, ACTIVITY_NOW);
  if (agent->generation == generation)
    {
      /* between runs either way: a failed job does not time out */
      agent->idle = TRUE;
      schedule (monitor, agent);
    }
  return TRUE;
}

/**
 * heartbeat_monitor_lookup:
 * @monitor: a #HeartbeatMonitor
 * @id: an agent id (need not be valid)
 *
 * Returns: (transfer none) (nullable): the agent, or %NULL
 */
HeartbeatAgent *
heartbeat_monitor_lookup (HeartbeatMonitor *monitor,
                          const char       *id)
{
  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), NULL);

  if (id == NULL)
    return NULL;
  return g_hash_table_lookup (monitor->agents, id);
}

static int
compare_agent_ids (gconstpointer a,
                   gconstpointer b)
{
  const HeartbeatAgent *agent_a = *(HeartbeatAgent *const *) a;
  const HeartbeatAgent *agent_b = *(HeartbeatAgent *const *) b;

  return strcmp (agent_a->id, agent_b->id);
}

/**
 * heartbeat_monitor_list_agents:
 * @monitor: a #HeartbeatMonitor
 *
 * Every registered agent (get_in_flight_agents of the Python monitor).
 *
 * Returns: (transfer container) (element-type HeartbeatAgent): the agents,
 *   sorted by id, each with a reference the array drops when freed
 */
GPtrArray *
heartbeat_monitor_list_agents (HeartbeatMonitor *monitor)
{
  GPtrArray *agents;
  GHashTableIter iter;
  HeartbeatAgent *agent;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), NULL);

  agents = g_ptr_array_new_full (g_hash_table_size (monitor->agents),
                                 (GDestroyNotify) heartbeat_agent_unref);
  g_hash_table_iter_init (&iter, monitor->agents);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &agent))
    g_ptr_array_add (agents, heartbeat_agent_ref (agent));
  g_ptr_array_sort (agents, compare_agent_ids);
  return agents;
}

/**
 * heartbeat_monitor_post_event:
 * @monitor: a #HeartbeatMonitor
 * @type: the kind of event: 1 to 64 characters of `[A-Za-z0-9._:@-]`
 * @data: (nullable): an `a{sv}` of details, at most
 *   %HEARTBEAT_METADATA_MAX_SIZE bytes serialized
 * @error: return location for a #GError
 *
 * Passes a free-form event on to whoever listens
 * (#HeartbeatMonitor::event-posted). The monitor keeps nothing of it.
 *
 * Returns: %TRUE, or %FALSE with @error set if @type or @data is invalid
 */
gboolean
heartbeat_monitor_post_event (HeartbeatMonitor *monitor,
                              const char       *type,
                              GVariant         *data,
                              GError          **error)
{
  g_autoptr(GVariant) held = NULL;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), FALSE);

  held = data ? g_variant_ref_sink (data)
              : g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0));
  if (type == NULL || strlen (type) > 64 || !heartbeat_id_is_valid (type, NULL))
    {
      g_set_error_literal (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                           "Event type must be 1 to 64 characters of [A-Za-z0-9._:@-]");
      return FALSE;
    }
  if (!heartbeat_metadata_is_valid (held, error))
    return FALSE;

  g_signal_emit (monitor, signals[SIGNAL_EVENT_POSTED], 0, type, held);
  return TRUE;
}

/**
 * heartbeat_monitor_get_n_agents:
 * @monitor: a #HeartbeatMonitor
 *
 * Returns: how many agents are registered
 */
guint
heartbeat_monitor_get_n_agents (HeartbeatMonitor *monitor)
{
  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), 0);
  return g_hash_table_size (monitor->agents);
}

/**
 * heartbeat_monitor_get_state_counts:
 * @monitor: a #HeartbeatMonitor
 * @counts: (out caller-allocates) (array fixed-size=6): how many agents are
 *   in each #HeartbeatAgentState
 *
 * Counts are kept as states change, so this is O(1): fronts use it for
 * summaries (`12 agents, 1 stale`) and metrics.
 */
void
heartbeat_monitor_get_state_counts (HeartbeatMonitor *monitor,
                                    guint             counts[HEARTBEAT_AGENT_N_STATES])
{
  g_return_if_fail (HEARTBEAT_IS_MONITOR (monitor));
  memcpy (counts, monitor->state_counts, sizeof monitor->state_counts);
}

/**
 * heartbeat_monitor_count_owned_by:
 * @monitor: a #HeartbeatMonitor
 * @uid: a uid
 *
 * How many agents belong to @uid, for per-user quotas.
 *
 * Returns: the number of agents whose owner is @uid
 */
guint
heartbeat_monitor_count_owned_by (HeartbeatMonitor *monitor,
                                  guint32           uid)
{
  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), 0);
  return GPOINTER_TO_UINT (g_hash_table_lookup (monitor->owned, GUINT_TO_POINTER (uid)));
}

/**
 * heartbeat_monitor_get_beats_total:
 * @monitor: a #HeartbeatMonitor
 *
 * How many times @monitor emitted #HeartbeatMonitor::agent-beat since it
 * was made, for all agents, those since unregistered included. O(1), as
 * are the other totals: fronts export them as metrics.
 *
 * Returns: the number of beats
 */
guint64
heartbeat_monitor_get_beats_total (HeartbeatMonitor *monitor)
{
  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), 0);
  return monitor->beats_total;
}

/**
 * heartbeat_monitor_get_stale_total:
 * @monitor: a #HeartbeatMonitor
 *
 * How many times @monitor emitted #HeartbeatMonitor::agent-stale since it
 * was made: every warning, also the repeated ones of one stale episode
 * when #HeartbeatMonitor:stale-warning-only-once is off (see
 * heartbeat_agent_get_stale_episodes() for the episodes).
 *
 * Returns: the number of stale warnings
 */
guint64
heartbeat_monitor_get_stale_total (HeartbeatMonitor *monitor)
{
  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), 0);
  return monitor->stale_total;
}

/**
 * heartbeat_monitor_get_timeouts_total:
 * @monitor: a #HeartbeatMonitor
 *
 * How many times @monitor emitted #HeartbeatMonitor::agent-timed-out
 * since it was made.
 *
 * Returns: the number of timeouts
 */
guint64
heartbeat_monitor_get_timeouts_total (HeartbeatMonitor *monitor)
{
  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), 0);
  return monitor->timeouts_total;
}

/**
 * heartbeat_monitor_get_recoveries_total:
 * @monitor: a #HeartbeatMonitor
 *
 * How many times @monitor emitted #HeartbeatMonitor::agent-recovered
 * since it was made.
 *
 * Returns: the number of recoveries from stale
 */
guint64
heartbeat_monitor_get_recoveries_total (HeartbeatMonitor *monitor)
{
  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), 0);
  return monitor->recoveries_total;
}

/**
 * heartbeat_monitor_get_status:
 * @monitor: a #HeartbeatMonitor
 *
 * The monitor's status (get_status of the Python monitor) as an `a{sv}`
 * dictionary: `running` b, `agent-count` u, `agents` as (sorted ids),
 * `check-interval-usec` x, `stale-threshold-usec` x,
 * `timeout-threshold-usec` x, `stale-warning-only-once` b, and `states`
 * a{su} with the number of agents in each state.
 *
 * Returns: (transfer floating): the status
 */
GVariant *
heartbeat_monitor_get_status (HeartbeatMonitor *monitor)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_auto(GVariantBuilder) ids = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_STRING_ARRAY);
  g_auto(GVariantBuilder) states = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("a{su}"));
  g_autoptr(GPtrArray) agents = NULL;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), NULL);

  agents = heartbeat_monitor_list_agents (monitor);
  for (guint i = 0; i < agents->len; i++)
    g_variant_builder_add (&ids, "s", ((HeartbeatAgent *) agents->pdata[i])->id);
  for (int s = 0; s < HEARTBEAT_AGENT_N_STATES; s++)
    g_variant_builder_add (&states, "{su}", heartbeat_agent_state_to_string (s),
                           monitor->state_counts[s]);

  g_variant_builder_add (&builder, "{sv}", "running", g_variant_new_boolean (monitor->source != NULL));
  g_variant_builder_add (&builder, "{sv}", "agent-count", g_variant_new_uint32 (agents->len));
  g_variant_builder_add (&builder, "{sv}", "agents", g_variant_builder_end (&ids));
  g_variant_builder_add (&builder, "{sv}", "check-interval-usec", g_variant_new_int64 (monitor->check_interval));
  g_variant_builder_add (&builder, "{sv}", "stale-threshold-usec", g_variant_new_int64 (monitor->stale_threshold));
  g_variant_builder_add (&builder, "{sv}", "timeout-threshold-usec", g_variant_new_int64 (monitor->timeout_threshold));
  g_variant_builder_add (&builder, "{sv}", "stale-warning-only-once",
                         g_variant_new_boolean (monitor->stale_warning_only_once));
  g_variant_builder_add (&builder, "{sv}", "states", g_variant_builder_end (&states));
  return g_variant_builder_end (&builder);
}

/* ------------------------------------------------------------------ */
/* Public API: time and configuration                                  */

/**
 * heartbeat_monitor_set_clock:
 * @monitor: a #HeartbeatMonitor
 * @clock: (nullable) (scope notified): a monotonic clock in µs, or %NULL
 *   for g_get_monotonic_time()
 * @user_data: data for @clock
 *
 * Replaces the clock that registrations, beats and the deadline source
 * read, so tests can move time by hand and drive checks with
 * heartbeat_monitor_run_checks(). Set it before registering agents.
 */
void
heartbeat_monitor_set_clock (HeartbeatMonitor  *monitor,
                             HeartbeatClockFunc clock,
                             gpointer           user_data)
{
  g_return_if_fail (HEARTBEAT_IS_MONITOR (monitor));

  monitor->clock = clock;
  monitor->clock_data = user_data;
}

/**
 * heartbeat_monitor_get_time:
 * @monitor: a #HeartbeatMonitor
 *
 * Returns: the current time of the monitor's clock, monotonic µs
 */
gint64
heartbeat_monitor_get_time (HeartbeatMonitor *monitor)
{
  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), 0);
  return monitor_now (monitor);
}

/**
 * heartbeat_monitor_set_realtime_clock:
 * @monitor: a #HeartbeatMonitor
 * @clock: (nullable): a wall clock in µs since the epoch, or %NULL for
 *   g_get_real_time()
 * @user_data: data for @clock
 *
 * Replaces the wall clock the monitor converts times and judges due times
 * by, so tests can set the date (a night the clocks change) as
 * heartbeat_monitor_set_clock() sets the monotonic time.
 */
void
heartbeat_monitor_set_realtime_clock (HeartbeatMonitor  *monitor,
                                      HeartbeatClockFunc clock,
                                      gpointer           user_data)
{
  g_return_if_fail (HEARTBEAT_IS_MONITOR (monitor));

  monitor->real_clock = clock;
  monitor->real_clock_data = user_data;
}

/**
 * heartbeat_monitor_get_realtime:
 * @monitor: a #HeartbeatMonitor
 *
 * Returns: the current time of the monitor's wall clock, µs since the epoch
 */
gint64
heartbeat_monitor_get_realtime (HeartbeatMonitor *monitor)
{
  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), 0);
  return monitor_real_now (monitor);
}

/**
 * heartbeat_monitor_to_realtime:
 * @monitor: a #HeartbeatMonitor
 * @monotonic: a time of the monitor's clock, such as an agent's last
 *   activity
 *
 * Converts a monitor time to wall-clock µs since the epoch, as "now minus
 * how long ago", so a wall-clock step changes no judgement.
 *
 * Returns: wall-clock µs
 */
gint64
heartbeat_monitor_to_realtime (HeartbeatMonitor *monitor,
                               gint64            monotonic)
{
  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), 0);
  return monitor_real_now (monitor) - (monitor_now (monitor) - monotonic);
}

#define DEFINE_THRESHOLD_ACCESSORS(name, field, prop)                      \
  gint64                                                                 \
  heartbeat_monitor_get_##name (HeartbeatMonitor *monitor)               \
  {                                                                      \
    g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), 0);            \
    return monitor->field;                                               \
  }                                                                      \
  void                                                                   \
  heartbeat_monitor_set_##name (HeartbeatMonitor *monitor,               \
                                gint64            usec)                  \
  {                                                                      \
    g_return_if_fail (HEARTBEAT_IS_MONITOR (monitor));                   \
    g_return_if_fail (usec > 0 && usec <= HEARTBEAT_THRESHOLD_MAX);      \
    if (monitor->field == usec)                                          \
      return;                                                            \
    monitor->field = usec;                                               \
    reschedule_all (monitor);                                            \
    g_object_notify_by_pspec (G_OBJECT (monitor), properties[prop]);     \
  }

/**
 * heartbeat_monitor_get_check_interval:
 * @monitor: a #HeartbeatMonitor
 *
 * Returns: the #HeartbeatMonitor:check-interval in µs
 */
/**
 * heartbeat_monitor_set_check_interval:
 * @monitor: a #HeartbeatMonitor
 * @usec: the new interval, 1 µs to %HEARTBEAT_THRESHOLD_MAX
 *
 * Sets #HeartbeatMonitor:check-interval.
 */
DEFINE_THRESHOLD_ACCESSORS (check_interval, check_interval, PROP_CHECK_INTERVAL)

/**
 * heartbeat_monitor_get_stale_threshold:
 * @monitor: a #HeartbeatMonitor
 *
 * Returns: the #HeartbeatMonitor:stale-threshold in µs
 */
/**
 * heartbeat_monitor_set_stale_threshold:
 * @monitor: a #HeartbeatMonitor
 * @usec: the new threshold, 1 µs to %HEARTBEAT_THRESHOLD_MAX
 *
 * Sets #HeartbeatMonitor:stale-threshold; agents without their own threshold
 * are rescheduled at once.
 */
DEFINE_THRESHOLD_ACCESSORS (stale_threshold, stale_threshold, PROP_STALE_THRESHOLD)

/**
 * heartbeat_monitor_get_timeout_threshold:
 * @monitor: a #HeartbeatMonitor
 *
 * Returns: the #HeartbeatMonitor:timeout-threshold in µs
 */
/**
 * heartbeat_monitor_set_timeout_threshold:
 * @monitor: a #HeartbeatMonitor
 * @usec: the new threshold, 1 µs to %HEARTBEAT_THRESHOLD_MAX
 *
 * Sets #HeartbeatMonitor:timeout-threshold; agents without their own
 * threshold are rescheduled at once.
 */
DEFINE_THRESHOLD_ACCESSORS (timeout_threshold, timeout_threshold, PROP_TIMEOUT_THRESHOLD)

/**
 * heartbeat_monitor_get_max_agents:
 * @monitor: a #HeartbeatMonitor
 *
 * Returns: #HeartbeatMonitor:max-agents
 */
guint
heartbeat_monitor_get_max_agents (HeartbeatMonitor *monitor)
{
  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), 0);
  return monitor->max_agents;
}

/**
 * heartbeat_monitor_get_retention:
 * @monitor: a #HeartbeatMonitor
 *
 * Returns: the #HeartbeatMonitor:retention, in µs
 */
gint64
heartbeat_monitor_get_retention (HeartbeatMonitor *monitor)
{
  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), 0);
  return monitor->retention;
}

/**
 * heartbeat_monitor_set_retention:
 * @monitor: a #HeartbeatMonitor
 * @usec: how long a timed-out or gone agent stays listed, in µs; 0 for
 *   until it is unregistered, registers again or beats
 *
 * Sets #HeartbeatMonitor:retention. Agents that ended already are judged
 * by the new value.
 */
void
heartbeat_monitor_set_retention (HeartbeatMonitor *monitor,
                                 gint64            usec)
{
  GHashTableIter iter;
  gpointer value;

  g_return_if_fail (HEARTBEAT_IS_MONITOR (monitor));
  g_return_if_fail (usec >= 0 && usec <= HEARTBEAT_THRESHOLD_MAX);

  if (monitor->retention == usec)
    return;
  monitor->retention = usec;
  /* only the agents that ended have a deadline from it */
  g_hash_table_iter_init (&iter, monitor->agents);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      HeartbeatAgent *agent = value;

      if (agent->state == HEARTBEAT_AGENT_STATE_TIMED_OUT || agent->state == HEARTBEAT_AGENT_STATE_GONE)
        schedule (monitor, agent);
    }
  g_object_notify_by_pspec (G_OBJECT (monitor), properties[PROP_RETENTION]);
}

/**
 * heartbeat_monitor_set_max_agents:
 * @monitor: a #HeartbeatMonitor
 * @max_agents: the most agents to hold, or 0 for no limit
 *
 * Sets #HeartbeatMonitor:max-agents.
 */
void
heartbeat_monitor_set_max_agents (HeartbeatMonitor *monitor,
                                  guint             max_agents)
{
  g_return_if_fail (HEARTBEAT_IS_MONITOR (monitor));

  if (monitor->max_agents == max_agents)
    return;
  monitor->max_agents = max_agents;
  g_object_notify_by_pspec (G_OBJECT (monitor), properties[PROP_MAX_AGENTS]);
}

/**
 * heartbeat_monitor_set_store:
 * @monitor: a #HeartbeatMonitor
 * @funcs: (nullable): how the store follows the monitor, or %NULL for none
 * @user_data: data for @funcs
 * @destroy: (nullable): frees @user_data when the store is replaced
 *
 * Lets a persistence front follow every change: @funcs->changed is told
 * of each one as it is made, with its kind (#HeartbeatChange), so the
 * store can save activity lazily and the rest at once; @funcs->sync backs
 * heartbeat_monitor_sync_async(), which a front calls before it answers a
 * caller. Restoring (heartbeat_monitor_restore()) and reverting
 * (heartbeat_monitor_revert()) are not told.
 */
void
heartbeat_monitor_set_store (HeartbeatMonitor          *monitor,
                             const HeartbeatStoreFuncs *funcs,
                             gpointer                   user_data,
                             GDestroyNotify             destroy)
{
  static const HeartbeatStoreFuncs none = { 0 };

  g_return_if_fail (HEARTBEAT_IS_MONITOR (monitor));

  if (monitor->store_destroy)
    monitor->store_destroy (monitor->store_data);
  monitor->store = funcs ? *funcs : none;
  monitor->store_data = user_data;
  monitor->store_destroy = destroy;
}

/**
 * heartbeat_monitor_sync_async:
 * @monitor: a #HeartbeatMonitor
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when every change made so far, but for lazily saved
 *   activity, is durable
 * @user_data: data for @callback
 *
 * Waits for the store to save what changed so far (at once if there is no
 * store, or nothing to save). A front answers a caller's registration,
 * unregistration or idle mark only then, and in the order they came:
 * callbacks run in the order of the calls. Concurrent calls share one
 * commit.
 */
void
heartbeat_monitor_sync_async (HeartbeatMonitor   *monitor,
                              GCancellable       *cancellable,
                              GAsyncReadyCallback callback,
                              gpointer            user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (HEARTBEAT_IS_MONITOR (monitor));

  task = g_task_new (monitor, cancellable, callback, user_data);
  if (monitor->store.sync)
    monitor->store.sync (monitor, g_steal_pointer (&task), monitor->store_data);
  else
    g_task_return_boolean (task, TRUE);
}

/**
 * heartbeat_monitor_is_saved:
 * @monitor: a #HeartbeatMonitor
 *
 * Whether every change made so far is durable but what the store saves
 * lazily (activity): heartbeat_monitor_sync_async() would then complete
 * at once, and a front may answer without waiting for it.
 *
 * Returns: %TRUE if nothing is waiting to be saved
 */
gboolean
heartbeat_monitor_is_saved (HeartbeatMonitor *monitor)
{
  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), TRUE);

  return monitor->store.is_saved == NULL || monitor->store.is_saved (monitor, monitor->store_data);
}

/**
 * heartbeat_monitor_sync_finish:
 * @monitor: a #HeartbeatMonitor
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Returns: %TRUE, or %FALSE with @error set (%HEARTBEAT_ERROR_NOT_SAVED:
 *   the callers' changes since the last successful save were taken back)
 */
gboolean
heartbeat_monitor_sync_finish (HeartbeatMonitor *monitor,
                               GAsyncResult     *result,
                               GError          **error)
{
  g_return_val_if_fail (g_task_is_valid (result, monitor), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * heartbeat_monitor_get_stale_warning_only_once:
 * @monitor: a #HeartbeatMonitor
 *
 * Returns: the #HeartbeatMonitor:stale-warning-only-once setting
 */
gboolean
heartbeat_monitor_get_stale_warning_only_once (HeartbeatMonitor *monitor)
{
  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), TRUE);
  return monitor->stale_warning_only_once;
}

/**
 * heartbeat_monitor_set_stale_warning_only_once:
 * @monitor: a #HeartbeatMonitor
 * @only_once: whether to warn once per stale episode
 *
 * Sets #HeartbeatMonitor:stale-warning-only-once.
 */
void
heartbeat_monitor_set_stale_warning_only_once (HeartbeatMonitor *monitor,
                                               gboolean          only_once)
{
  g_return_if_fail (HEARTBEAT_IS_MONITOR (monitor));

  only_once = !!only_once;
  if (monitor->stale_warning_only_once == only_once)
    return;
  monitor->stale_warning_only_once = only_once;
  reschedule_all (monitor);
  g_object_notify_by_pspec (G_OBJECT (monitor), properties[PROP_STALE_WARNING_ONLY_ONCE]);
}

/**
 * heartbeat_unregister_reason_to_string:
 * @reason: a #HeartbeatUnregisterReason
 *
 * Returns: the reason's nick: `unregistered`, `timed-out` or `gone`
 */
const char *
heartbeat_unregister_reason_to_string (HeartbeatUnregisterReason reason)
{
  static GEnumClass *klass;
  GEnumValue *value;

  if (g_once_init_enter (&klass))
    g_once_init_leave (&klass, g_type_class_ref (HEARTBEAT_TYPE_UNREGISTER_REASON));

  value = g_enum_get_value (klass, reason);
  g_return_val_if_fail (value != NULL, "unknown");
  return value->value_nick;
}

/* ------------------------------------------------------------------ */
/* GObject                                                             */

static void
heartbeat_monitor_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  HeartbeatMonitor *self = HEARTBEAT_MONITOR (object);

  switch (prop_id)
    {
    case PROP_CHECK_INTERVAL:
      g_value_set_int64 (value, self->check_interval);
      break;
    case PROP_STALE_THRESHOLD:
      g_value_set_int64 (value, self->stale_threshold);
      break;
    case PROP_TIMEOUT_THRESHOLD:
      g_value_set_int64 (value, self->timeout_threshold);
      break;
    case PROP_STALE_WARNING_ONLY_ONCE:
      g_value_set_boolean (value, self->stale_warning_only_once);
      break;
    case PROP_RUNNING:
      g_value_set_boolean (value, self->source != NULL);
      break;
    case PROP_MAX_AGENTS:
      g_value_set_uint (value, self->max_agents);
      break;
    case PROP_RETENTION:
      g_value_set_int64 (value, self->retention);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
heartbeat_monitor_set_property (GObject      *object,
                                guint         prop_id,
                                const GValue *value,
                                GParamSpec   *pspec)
{
  HeartbeatMonitor *self = HEARTBEAT_MONITOR (object);

  switch (prop_id)
    {
    case PROP_CHECK_INTERVAL:
      heartbeat_monitor_set_check_interval (self, g_value_get_int64 (value));
      break;
    case PROP_STALE_THRESHOLD:
      heartbeat_monitor_set_stale_threshold (self, g_value_get_int64 (value));
      break;
    case PROP_TIMEOUT_THRESHOLD:
      heartbeat_monitor_set_timeout_threshold (self, g_value_get_int64 (value));
      break;
    case PROP_STALE_WARNING_ONLY_ONCE:
      heartbeat_monitor_set_stale_warning_only_once (self, g_value_get_boolean (value));
      break;
    case PROP_MAX_AGENTS:
      heartbeat_monitor_set_max_agents (self, g_value_get_uint (value));
      break;
    case PROP_RETENTION:
      heartbeat_monitor_set_retention (self, g_value_get_int64 (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
heartbeat_monitor_dispose (GObject *object)
{
  HeartbeatMonitor *self = HEARTBEAT_MONITOR (object);

  if (self->source)
    {
      g_source_destroy (self->source);
      g_clear_pointer (&self->source, g_source_unref);
    }
  heartbeat_monitor_set_store (self, NULL, NULL, NULL);

  G_OBJECT_CLASS (heartbeat_monitor_parent_class)->dispose (object);
}

static void
heartbeat_monitor_finalize (GObject *object)
{
  HeartbeatMonitor *self = HEARTBEAT_MONITOR (object);
  GHashTableIter iter;
  HeartbeatAgent *agent;

  heartbeat_deadlines_clear (&self->deadlines);
  g_hash_table_iter_init (&iter, self->agents);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &agent))
    agent->registered = FALSE;
  g_hash_table_unref (self->agents);
  g_hash_table_unref (self->owned);
  g_main_context_unref (self->context);

  G_OBJECT_CLASS (heartbeat_monitor_parent_class)->finalize (object);
}

static void
heartbeat_monitor_class_init (HeartbeatMonitorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GType agent_type = HEARTBEAT_TYPE_AGENT | G_SIGNAL_TYPE_STATIC_SCOPE;

  object_class->get_property = heartbeat_monitor_get_property;
  object_class->set_property = heartbeat_monitor_set_property;
  object_class->dispose = heartbeat_monitor_dispose;
  object_class->finalize = heartbeat_monitor_finalize;

  /**
   * HeartbeatMonitor:check-interval:
   *
   * How often, in µs, a stale agent is warned about again when
   * #HeartbeatMonitor:stale-warning-only-once is %FALSE. The monitor does
   * not poll, so this is not how often it looks at agents.
   */
  properties[PROP_CHECK_INTERVAL] =
    g_param_spec_int64 ("check-interval", NULL, NULL,
                        1, HEARTBEAT_THRESHOLD_MAX, DEFAULT_CHECK_INTERVAL,
                        G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * HeartbeatMonitor:stale-threshold:
   *
   * How long, in µs, an agent may be quiet before it is stale, unless it
   * has a threshold of its own. Five minutes by default.
   */
  properties[PROP_STALE_THRESHOLD] =
    g_param_spec_int64 ("stale-threshold", NULL, NULL,
                        1, HEARTBEAT_THRESHOLD_MAX, DEFAULT_STALE_THRESHOLD,
                        G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * HeartbeatMonitor:timeout-threshold:
   *
   * How long, in µs, an agent's run may last before it times out and is
   * removed, unless it has a threshold of its own. Thirty minutes by
   * default.
   */
  properties[PROP_TIMEOUT_THRESHOLD] =
    g_param_spec_int64 ("timeout-threshold", NULL, NULL,
                        1, HEARTBEAT_THRESHOLD_MAX, DEFAULT_TIMEOUT_THRESHOLD,
                        G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * HeartbeatMonitor:stale-warning-only-once:
   *
   * Whether #HeartbeatMonitor::agent-stale fires once per stale episode
   * (%TRUE, the default) or again every #HeartbeatMonitor:check-interval
   * while the agent stays stale.
   */
  properties[PROP_STALE_WARNING_ONLY_ONCE] =
    g_param_spec_boolean ("stale-warning-only-once", NULL, NULL, TRUE,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * HeartbeatMonitor:running:
   *
   * Whether the deadline source is armed (see heartbeat_monitor_start()).
   */
  properties[PROP_RUNNING] =
    g_param_spec_boolean ("running", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * HeartbeatMonitor:max-agents:
   *
   * The most agents the monitor holds at once; registering one more fails
   * with %HEARTBEAT_ERROR_QUOTA_EXCEEDED. 0 (the default) is no limit.
   * Declared and restored agents are not refused, so a smaller limit
   * never drops an agent that exists.
   */
  properties[PROP_MAX_AGENTS] =
    g_param_spec_uint ("max-agents", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * HeartbeatMonitor:retention:
   *
   * How long, in µs, an agent that timed out or went gone stays listed in
   * that state (so that status queries, metrics and alerts keep showing
   * it) before it is removed; 0 keeps it until it is unregistered,
   * registers again or beats. A declared agent is never removed. Default:
   * one day.
   */
  properties[PROP_RETENTION] =
    g_param_spec_int64 ("retention", NULL, NULL, 0, HEARTBEAT_THRESHOLD_MAX, DEFAULT_RETENTION,
                        G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * HeartbeatMonitor::agent-registered:
   * @monitor: the monitor
   * @agent: the agent
   *
   * An agent was registered, declared, or re-registered (restarted).
   */
  signals[SIGNAL_AGENT_REGISTERED] =
    g_signal_new ("agent-registered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, agent_type);

  /**
   * HeartbeatMonitor::agent-unregistered:
   * @monitor: the monitor
   * @agent: the agent, no longer registered
   * @reason: a #HeartbeatUnregisterReason
   *
   * An agent was removed: by a caller, on timeout, or after being gone.
   */
  signals[SIGNAL_AGENT_UNREGISTERED] =
    g_signal_new ("agent-unregistered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, agent_type,
                  HEARTBEAT_TYPE_UNREGISTER_REASON);

  /**
   * HeartbeatMonitor::agent-stale:
   * @monitor: the monitor
   * @agent: the agent
   * @idle_usec: how long it has been quiet, in µs
   *
   * An agent was quiet for its stale threshold: once per stale episode, or
   * every #HeartbeatMonitor:check-interval if warnings repeat. Preceded by
   * #HeartbeatMonitor::agent-state-changed when the episode starts.
   */
  signals[SIGNAL_AGENT_STALE] =
    g_signal_new ("agent-stale", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, agent_type, G_TYPE_INT64);

  /**
   * HeartbeatMonitor::agent-timed-out:
   * @monitor: the monitor
   * @agent: the agent
   * @running_usec: how long its run lasted, in µs
   *
   * An agent ran for its timeout threshold: it is now
   * %HEARTBEAT_AGENT_STATE_TIMED_OUT and stays listed so until it beats
   * (which starts a new run), registers again or is unregistered, or until
   * #HeartbeatMonitor:retention passes, when the monitor removes it
   * (#HeartbeatMonitor::agent-unregistered with
   * %HEARTBEAT_UNREGISTER_REASON_TIMED_OUT; a declared agent is kept).
   */
  signals[SIGNAL_AGENT_TIMED_OUT] =
    g_signal_new ("agent-timed-out", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, agent_type, G_TYPE_INT64);

  /**
   * HeartbeatMonitor::agent-recovered:
   * @monitor: the monitor
   * @agent: the agent
   *
   * A stale agent showed activity again: its stale episode is over.
   */
  signals[SIGNAL_AGENT_RECOVERED] =
    g_signal_new ("agent-recovered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, agent_type);

  /**
   * HeartbeatMonitor::agent-state-changed:
   * @monitor: the monitor
   * @agent: the agent
   * @old_state: the #HeartbeatAgentState it had
   * @new_state: the #HeartbeatAgentState it has now
   *
   * An agent's state changed. Emitted before the more specific signal
   * (#HeartbeatMonitor::agent-stale, #HeartbeatMonitor::agent-recovered, …)
   * of the same change.
   */
  signals[SIGNAL_AGENT_STATE_CHANGED] =
    g_signal_new ("agent-state-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 3, agent_type,
                  HEARTBEAT_TYPE_AGENT_STATE, HEARTBEAT_TYPE_AGENT_STATE);

  /**
   * HeartbeatMonitor::agent-beat:
   * @monitor: the monitor
   * @agent: the agent
   *
   * An agent beat or was marked idle (after the state changes this
   * caused). For fronts that batch work on activity, such as persistence;
   * with no handler connected it costs next to nothing.
   */
  signals[SIGNAL_AGENT_BEAT] =
    g_signal_new ("agent-beat", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST | G_SIGNAL_NO_RECURSE,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, agent_type);

  /**
   * HeartbeatMonitor::agent-run:
   * @monitor: the monitor
   * @agent: the job
   * @run: the run's record, an `a{sv}` as in heartbeat_agent_get_runs()
   *
   * A run record of @agent was added or changed: a run started, ended,
   * timed out, or was missed (due and not started within the grace).
   */
  signals[SIGNAL_AGENT_RUN] =
    g_signal_new ("agent-run", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, agent_type, G_TYPE_VARIANT);

  /**
   * HeartbeatMonitor::event-posted:
   * @monitor: the monitor
   * @type: what kind of event, as the poster named it
   * @data: an `a{sv}` of what the poster said
   *
   * A front posted an event that is not about an agent's state (the
   * seed's `POST /event`): see heartbeat_monitor_post_event(). Fronts that
   * log or stream events listen to it, so they need not know each other.
   */
  signals[SIGNAL_EVENT_POSTED] =
    g_signal_new ("event-posted", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2,
                  G_TYPE_STRING | G_SIGNAL_TYPE_STATIC_SCOPE, G_TYPE_VARIANT);
}

static void
heartbeat_monitor_init (HeartbeatMonitor *self)
{
  self->agents = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                        (GDestroyNotify) heartbeat_agent_unref);
  self->owned = g_hash_table_new (NULL, NULL);
  heartbeat_deadlines_init (&self->deadlines);
  self->context = g_main_context_ref_thread_default ();
  self->armed_at = -1;
  self->check_interval = DEFAULT_CHECK_INTERVAL;
  self->stale_threshold = DEFAULT_STALE_THRESHOLD;
  self->timeout_threshold = DEFAULT_TIMEOUT_THRESHOLD;
  self->retention = DEFAULT_RETENTION;
  self->stale_warning_only_once = TRUE;
}
