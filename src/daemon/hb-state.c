/* hb-state.c: the persistence front (registrations survive restarts)
 *
 * The agents live in an SQLite database, STATE_DIR/agents.db, in WAL mode.
 * Three tables: `agents` holds what changes seldom (options and tags, state,
 * status, a pause (when, why, by whom), metadata and the history of state
 * changes as serialized GVariant bytes, which keep their types exactly),
 * `activity` what every beat changes (last activity, beat count), in rows
 * narrow enough that saving a thousand beating agents writes a few pages,
 * and `runs` jobs' run records, a row per record (an `a{sv}` of
 * heartbeat_agent_get_runs(), serialized) numbered per agent in order: an
 * agent keeps up to HEARTBEAT_RUNS_MAX records of up to
 * HEARTBEAT_RUN_OUTPUT_MAX bytes of output each, some 80 KiB, which neither
 * the agents row (rewritten with a beat's metadata) nor a run's end should
 * rewrite whole. An agent's records are looked at only when
 * HeartbeatMonitor::agent-run says one was added or changed (a run started,
 * ended, timed out or was missed), never for a beat, and only the records
 * that changed are written (the newest, and the oldest trimmed): we keep
 * the number and a hash of each record saved (SavedRuns). That change is
 * one the monitor notes as a caller's (start, end) or as a change of state
 * (missed, timed out), so it goes out at once like any other.
 * Times are wall-clock µs; thresholds of 0 mean "the monitor's", so a
 * reload still moves them.
 *
 * The monitor tells us of every change (HeartbeatStoreFuncs.changed), and
 * we keep the ids that changed, never the agents: a commit writes each
 * changed id as the monitor holds it *then* (a row, or no row if it is
 * gone), so however many times an agent changed, it is written once.
 *
 * When:
 *   - a caller's registration, unregistration or idle mark, and every
 *     change of state or status, goes out at once: the changed
 *     ids are cut into a batch, written in one transaction by a writer
 *     thread and fsynced (synchronous=FULL); what changes while that runs
 *     waits for the next batch, so concurrent callers share a commit. A
 *     front answers the caller once heartbeat_monitor_sync_async() says its
 *     change is durable (waiters complete in order);
 *   - beats are saved lazily: the activity of the agents that beat (and
 *     the metadata a beat brings: progress, counters) is written every
 *     sync interval (HbState:sync-interval, default 30 s),
 *     on reload and on a clean exit, without an fsync of its own. After a
 *     kill -9 an agent's last activity may be that much too old; restored
 *     after an unclean exit, a healthy agent is not judged stale before its
 *     threshold has passed from the restart (see
 *     HeartbeatAgentSnapshot.active_until_realtime);
 *   - that the daemon is alive (meta "alive-at", its wall clock): at the
 *     start, every minute (a small write of its own, without an fsync)
 *     and at a clean stop. The next start passes the last time the
 *     daemon was known alive as
 *     HeartbeatAgentSnapshot.unmonitored_since_realtime, so that each
 *     agent's history marks the time nobody watched as "unmonitored"
 *     (after a kill -9, from up to a minute before the death: see
 *     db_last_alive()). Those rows are written again in the background
 *     right after the start, BACKFILL_BATCH rows a transaction between the
 *     callers' changes (not with the start: 100,000 rows would triple the
 *     time to start).
 *
 * A batch that cannot be written (a full disk) is rolled back whole; the
 * callers' changes in it are taken back in memory to what the database
 * holds (heartbeat_monitor_revert()) and they get NotSaved; the other ids
 * stay pending and are retried every few seconds; the problem property is
 * set until a write succeeds. The writer never runs on the main thread,
 * except for the one blocking flush on the way out.
 *
 * A database that cannot be opened or read is moved aside
 * (agents.db.corrupt-TIMESTAMP) and the daemon starts empty; an
 * agents.json of an older heartbeatd is imported once and moved aside
 * (agents.json.imported). One daemon per directory: see hb_state_lock().
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-state.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "hb-json.h"

#define DB_FILE            "agents.db"
#define DB_SCHEMA          4          /* PRAGMA user_version */
#define JSON_FILE          "agents.json"
#define STATE_JSON_VERSION       1
/* The JSON file's own structure nests three levels; metadata is a string. */
#define STATE_JSON_MAX_DEPTH     8
#define LOCK_FILE          "lock"
#define RETRY_SECONDS      5
#define DEFAULT_SYNC_INTERVAL (30 * G_USEC_PER_SEC)
/* how often the daemon notes that it is alive (meta "alive-at") */
#define DEFAULT_ALIVE_INTERVAL (60 * G_USEC_PER_SEC)
/* rows written again after a start (their history has the gap), at most
 * this many a transaction, between the callers': each batch's rows are
 * serialized in the main thread, so a batch is kept short enough that
 * the calls waiting (and at a start, owning the bus name: READY=1) are
 * answered between two (1,000 rows of 128-entry histories held READY=1
 * past 15 s under valgrind) */
#define BACKFILL_BATCH     100

/* The writer's statements. */
enum {
  STMT_DELETE_AGENT,
  STMT_DELETE_ACTIVITY,
  STMT_SAVE_AGENT,
  STMT_SAVE_ACTIVITY,
  STMT_SET_META,
  STMT_SAVE_RUN,
  STMT_DELETE_RUN,
  STMT_DELETE_RUNS,
  N_STMTS
};

static const char *const stmt_sql[N_STMTS] = {
  [STMT_DELETE_AGENT] = "DELETE FROM agents WHERE id = ?1",
  [STMT_DELETE_ACTIVITY] = "DELETE FROM activity WHERE id = ?1",
  [STMT_SAVE_AGENT] = "INSERT OR REPLACE INTO agents (id, task_id, state, status, owner_uid, pid,"
                      " bound_to, declared, stale_after, timeout_after, started_at, metadata, history,"
                      " paused_at, paused_reason, paused_by, tags)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
  [STMT_SAVE_ACTIVITY] = "INSERT OR REPLACE INTO activity (id, last_activity_at, beats) VALUES (?1, ?2, ?3)",
  [STMT_SET_META] = "INSERT OR REPLACE INTO meta VALUES (?1, ?2)",
  [STMT_SAVE_RUN] = "INSERT OR REPLACE INTO runs (id, seq, record) VALUES (?1, ?2, ?3)",
  [STMT_DELETE_RUN] = "DELETE FROM runs WHERE id = ?1 AND seq = ?2",
  [STMT_DELETE_RUNS] = "DELETE FROM runs WHERE id = ?1",
};

/* What is pending for an id. */
enum {
  DIRTY_ACTIVITY = 1 << 0,   /* only its activity: saved lazily */
  DIRTY_FULL     = 1 << 1,   /* its row: saved at once */
  DIRTY_CALLER   = 1 << 2,   /* a caller waits: taken back if not saved */
  DIRTY_RUNS     = 1 << 3,   /* its run records changed: saved at once */
};

/* A record as saved: its number (its order among the agent's) and a hash
 * of its bytes. */
typedef struct {
  gint64  seq;
  guint64 hash;
} SavedRun;

/* An agent's records as saved, oldest first. */
typedef struct {
  GArray *runs;       /* SavedRun */
  gint64  next_seq;
} SavedRuns;

/* A record to write. */
typedef struct {
  gint64  seq;
  GBytes *bytes;
} RunRecord;

/* One agent as written or read: a row of both tables, or its absence. */
typedef struct {
  char     *id;
  gboolean  present;       /* FALSE: no such agent (delete it) */
  gboolean  full;          /* the agents row too, not only activity */
  guint     flags;         /* DIRTY_* it was cut with */
  char     *task_id;
  const char *state;       /* heartbeat_agent_state_to_string() */
  char     *status;
  char     *bound_to;
  gint64    owner_uid;
  gint64    pid;
  gboolean  declared;
  gint64    stale_after;
  gint64    timeout_after;
  gint64    started_at;
  gint64    last_activity_at;
  gint64    beats;
  GBytes   *metadata;
  GBytes   *history;       /* heartbeat_agent_get_history(), serialized */
  gint64    paused_at;     /* wall-clock µs, 0 if not paused */
  char     *paused_reason;
  gint64    paused_by;     /* uid */
  GBytes   *tags;          /* `as`, serialized, or NULL for none */
  /* to write: */
  gboolean  with_runs;     /* its records: @runs_reset, @run_deletes, @run_inserts */
  gboolean  runs_reset;    /* all its records are deleted first */
  GArray   *run_deletes;   /* gint64 seq */
  GPtrArray *run_inserts;  /* RunRecord */
  /* as read: */
  GVariant  *runs;         /* its records (aa{sv}), or NULL if none */
  gboolean   runs_damaged; /* a record could not be read: none are */
  SavedRuns *saved;        /* @runs as saved */
} Row;

/* A transaction for the writer thread. */
typedef struct {
  HbState   *state;        /* a reference */
  GPtrArray *rows;         /* Row */
  guint64    seq;          /* the last change it contains */
  gboolean   durable;      /* fsync at commit */
  gint64     synced_at;    /* wall clock of a full activity sync, or 0 */
  int        clean;        /* the meta "clean" flag to write, or -1 */
  gint64     alive_at;     /* wall clock to write as meta "alive-at", or 0 */
  GError    *error;
  GPtrArray *read_back;    /* on failure: Row of each caller's id, as saved */
  gboolean   wait;         /* the main thread waits on done */
  gboolean   done;
} Batch;

typedef struct {
  guint64 seq;
  GTask  *task;
} Waiter;

struct _HbState {
  GObject           parent_instance;

  HeartbeatMonitor *monitor;
  gulong            run_handler;   /* agent-run */
  char             *directory;
  char             *path;
  char             *json_path;
  char             *problem;
  sqlite3          *db;            /* the writer's, once loaded */
  sqlite3_stmt     *stmts[N_STMTS]; /* the writer's, prepared once */
  gint64            sync_interval;

  GHashTable       *urgent;        /* id → DIRTY_* flags */
  GHashTable       *lazy;          /* id → DIRTY_ACTIVITY, | DIRTY_FULL for metadata */
  GHashTable       *backfill;      /* ids whose row to write again, in the
                                    * background (a set) */
  GHashTable       *saved_runs;    /* id → SavedRuns, main thread */
  guint64           change_seq;    /* urgent changes notified so far */
  guint64           settled_seq;   /* changes whose batch has finished */
  GQueue            waiters;       /* Waiter, by seq */
  Batch            *in_flight;
  gboolean          full_next;     /* a full sync was asked while busy */
  guint             cut_id;
  guint             lazy_id;
  guint             retry_id;
  guint             alive_id;      /* every alive_interval: note that we are alive */
  gint64            alive_interval;
  gboolean          alive_due;     /* the next batch notes it */
  gboolean          loading;
  guint64           write_count;

  GMainContext     *context;
  GThread          *main_thread;   /* the thread of @context's loop */
  GThreadPool      *writer;        /* one thread: transactions in order */
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

static SavedRuns *
saved_runs_new (void)
{
  SavedRuns *saved = g_new0 (SavedRuns, 1);

  saved->runs = g_array_new (FALSE, FALSE, sizeof (SavedRun));
  saved->next_seq = 1;
  return saved;
}

static void
saved_runs_free (gpointer data)
{
  SavedRuns *saved = data;

  if (saved == NULL)
    return;
  g_array_unref (saved->runs);
  g_free (saved);
}

static SavedRuns *
saved_runs_copy (const SavedRuns *saved)
{
  SavedRuns *copy = g_new0 (SavedRuns, 1);

  copy->runs = g_array_copy (saved->runs);
  copy->next_seq = saved->next_seq;
  return copy;
}

static void
run_record_free (gpointer data)
{
  RunRecord *record = data;

  g_bytes_unref (record->bytes);
  g_free (record);
}

/* A record's identity among an agent's twenty: a 64-bit hash of its
 * bytes, eight at a time (FNV-1a's constants, a word per step, mixed as
 * MurmurHash3's finalizer does). */
static guint64
hash_bytes (gconstpointer data,
            gsize         size)
{
  const guint8 *p = data;
  guint64 hash = G_GUINT64_CONSTANT (14695981039346656037) ^ size;
  gsize i = 0;

  for (; i + 8 <= size; i += 8)
    {
      guint64 word;

      memcpy (&word, p + i, 8);
      hash = (hash ^ word) * G_GUINT64_CONSTANT (1099511628211);
      hash ^= hash >> 32;
    }
  for (; i < size; i++)
    hash = (hash ^ p[i]) * G_GUINT64_CONSTANT (1099511628211);
  hash ^= hash >> 33;
  hash *= G_GUINT64_CONSTANT (0xff51afd7ed558ccd);
  hash ^= hash >> 33;
  return hash;
}

static void
row_free (Row *row)
{
  g_free (row->id);
  g_free (row->task_id);
  g_free (row->status);
  g_free (row->bound_to);
  g_free (row->paused_reason);
  g_clear_pointer (&row->metadata, g_bytes_unref);
  g_clear_pointer (&row->history, g_bytes_unref);
  g_clear_pointer (&row->tags, g_bytes_unref);
  g_clear_pointer (&row->run_deletes, g_array_unref);
  g_clear_pointer (&row->run_inserts, g_ptr_array_unref);
  g_clear_pointer (&row->runs, g_variant_unref);
  saved_runs_free (row->saved);
  g_free (row);
}

static void
batch_free (Batch *batch)
{
  g_clear_object (&batch->state);
  g_clear_pointer (&batch->rows, g_ptr_array_unref);
  g_clear_pointer (&batch->read_back, g_ptr_array_unref);
  g_clear_error (&batch->error);
  g_free (batch);
}

/* ------------------------------------------------------------------ */
/* SQLite                                                              */

static gboolean
db_error (sqlite3    *db,
          int         rc,
          const char *what,
          GError    **error)
{
  int code = rc == SQLITE_FULL ? G_IO_ERROR_NO_SPACE
           : rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT ? G_IO_ERROR_INVALID_DATA
           : G_IO_ERROR_FAILED;

  g_set_error (error, G_IO_ERROR, code, "%s: %s", what,
               db ? sqlite3_errmsg (db) : sqlite3_errstr (rc));
  return FALSE;
}

static gboolean
db_exec (sqlite3    *db,
         const char *sql,
         GError    **error)
{
  int rc = sqlite3_exec (db, sql, NULL, NULL, NULL);

  return rc == SQLITE_OK || db_error (db, rc, sql, error);
}

static void
bind_text (sqlite3_stmt *stmt,
           int           column,
           const char   *text)
{
  if (text)
    sqlite3_bind_text (stmt, column, text, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null (stmt, column);
}

static const char *
column_text (sqlite3_stmt *stmt,
             int           column)
{
  return (const char *) sqlite3_column_text (stmt, column);
}

static gboolean
step_done (sqlite3      *db,
           sqlite3_stmt *stmt,
           const char   *what,
           GError      **error)
{
  int rc = sqlite3_step (stmt);

  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
  return rc == SQLITE_DONE || db_error (db, rc, what, error);
}

/* Schema 4: an agent's pause (wall-clock µs, 0 when not paused; the
 * reason; the uid that paused it) and its tags (`as`, serialized). */
#define PAUSE_TAGS_COLUMNS "paused_at INTEGER NOT NULL DEFAULT 0, paused_reason TEXT," \
                           " paused_by INTEGER NOT NULL DEFAULT 0, tags BLOB"

/* A rowid table: its rows can be large (WITHOUT ROWID is for small ones). */
#define RUNS_TABLE "CREATE TABLE runs (id TEXT NOT NULL, seq INTEGER NOT NULL, record BLOB NOT NULL," \
                   " PRIMARY KEY (id, seq));"

/* Opens (creating) the database and its tables. */
static sqlite3 *
db_open (const char *path,
         GError    **error)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  int rc, version = -1;

  rc = sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
  if (rc != SQLITE_OK)
    {
      db_error (db, rc, "Cannot open the database", error);
      sqlite3_close (db);
      return NULL;
    }
  sqlite3_extended_result_codes (db, 0);
  if (!db_exec (db, "PRAGMA journal_mode=WAL", error) ||
      !db_exec (db, "PRAGMA synchronous=FULL", error) ||
      !db_exec (db, "PRAGMA foreign_keys=OFF", error))
    goto fail;

  rc = sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &stmt, NULL);
  if (rc == SQLITE_OK && (rc = sqlite3_step (stmt)) == SQLITE_ROW)
    version = sqlite3_column_int (stmt, 0);
  sqlite3_finalize (stmt);
  if (version < 0)
    {
      db_error (db, rc, "Cannot read the schema version", error);
      goto fail;
    }
  if (version == 0)
    {
      if (!db_exec (db,
                    "BEGIN;"
                    "CREATE TABLE agents ("
                    "  id TEXT PRIMARY KEY NOT NULL,"
                    "  task_id TEXT, state TEXT NOT NULL, status TEXT,"
                    "  owner_uid INTEGER NOT NULL, pid INTEGER NOT NULL, bound_to TEXT,"
                    "  declared INTEGER NOT NULL, stale_after INTEGER NOT NULL,"
                    "  timeout_after INTEGER NOT NULL, started_at INTEGER NOT NULL,"
                    "  metadata BLOB, history BLOB,"
                    PAUSE_TAGS_COLUMNS ") WITHOUT ROWID;"
                    "CREATE TABLE activity ("
                    "  id TEXT PRIMARY KEY NOT NULL,"
                    "  last_activity_at INTEGER NOT NULL, beats INTEGER NOT NULL) WITHOUT ROWID;"
                    RUNS_TABLE
                    "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER) WITHOUT ROWID;"
                    "INSERT INTO meta VALUES ('clean', 1);"
                    "PRAGMA user_version=" G_STRINGIFY (DB_SCHEMA) ";"
                    "COMMIT;", error))
        goto fail;
    }
  else if (version < DB_SCHEMA)
    {
      /* 1 → 2: the agents' history of state changes;
       * 2 → 3: the jobs' run records;
       * 3 → 4: an agent's pause and tags (none: not paused, no tags) */
      if (!db_exec (db, "BEGIN", error) ||
          (version < 2 && !db_exec (db, "ALTER TABLE agents ADD COLUMN history BLOB", error)) ||
          (version < 3 && !db_exec (db, RUNS_TABLE, error)) ||
          (version < 4 && !db_exec (db,
                                    "ALTER TABLE agents ADD COLUMN paused_at INTEGER NOT NULL DEFAULT 0;"
                                    "ALTER TABLE agents ADD COLUMN paused_reason TEXT;"
                                    "ALTER TABLE agents ADD COLUMN paused_by INTEGER NOT NULL DEFAULT 0;"
                                    "ALTER TABLE agents ADD COLUMN tags BLOB;", error)) ||
          !db_exec (db,
                    "PRAGMA user_version=" G_STRINGIFY (DB_SCHEMA) ";"
                    "COMMIT;", error))
        {
          if (!sqlite3_get_autocommit (db))
            sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
          goto fail;
        }
    }
  else if (version != DB_SCHEMA)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "schema version %d, not %d", version, DB_SCHEMA);
      goto fail;
    }
  return db;

fail:
  sqlite3_close (db);
  return NULL;
}

/* Writer thread: a prepared statement, reset. */
static sqlite3_stmt *
stmt (HbState *self,
      guint    which,
      GError **error)
{
  if (self->stmts[which] == NULL &&
      sqlite3_prepare_v3 (self->db, stmt_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
                          &self->stmts[which], NULL) != SQLITE_OK)
    {
      db_error (self->db, sqlite3_errcode (self->db), "Cannot prepare a statement", error);
      return NULL;
    }
  return self->stmts[which];
}

/* Writer thread: one row. */
static gboolean
db_write_row (HbState   *self,
              const Row *row,
              GError   **error)
{
  sqlite3 *db = self->db;
  sqlite3_stmt *s;

  if (!row->present)
    {
      static const guint deletes[] = { STMT_DELETE_AGENT, STMT_DELETE_ACTIVITY, STMT_DELETE_RUNS };

      for (gsize i = 0; i < G_N_ELEMENTS (deletes); i++)
        {
          guint which = deletes[i];

          if ((s = stmt (self, which, error)) == NULL)
            return FALSE;
          sqlite3_bind_text (s, 1, row->id, -1, SQLITE_STATIC);
          if (!step_done (db, s, "Cannot delete an agent", error))
            return FALSE;
        }
      return TRUE;
    }

  if (row->full)
    {
      if ((s = stmt (self, STMT_SAVE_AGENT, error)) == NULL)
        return FALSE;
      sqlite3_bind_text (s, 1, row->id, -1, SQLITE_STATIC);
      bind_text (s, 2, row->task_id);
      bind_text (s, 3, row->state);
      bind_text (s, 4, row->status);
      sqlite3_bind_int64 (s, 5, row->owner_uid);
      sqlite3_bind_int64 (s, 6, row->pid);
      bind_text (s, 7, row->bound_to);
      sqlite3_bind_int (s, 8, row->declared);
      sqlite3_bind_int64 (s, 9, row->stale_after);
      sqlite3_bind_int64 (s, 10, row->timeout_after);
      sqlite3_bind_int64 (s, 11, row->started_at);
      if (row->metadata)
        sqlite3_bind_blob (s, 12, g_bytes_get_data (row->metadata, NULL),
                           (int) g_bytes_get_size (row->metadata), SQLITE_STATIC);
      else
        sqlite3_bind_null (s, 12);
      if (row->history)
        sqlite3_bind_blob (s, 13, g_bytes_get_data (row->history, NULL),
                           (int) g_bytes_get_size (row->history), SQLITE_STATIC);
      else
        sqlite3_bind_null (s, 13);
      sqlite3_bind_int64 (s, 14, row->paused_at);
      bind_text (s, 15, row->paused_reason);
      sqlite3_bind_int64 (s, 16, row->paused_by);
      if (row->tags)
        sqlite3_bind_blob (s, 17, g_bytes_get_data (row->tags, NULL),
                           (int) g_bytes_get_size (row->tags), SQLITE_STATIC);
      else
        sqlite3_bind_null (s, 17);
      if (!step_done (db, s, "Cannot save an agent", error))
        return FALSE;
    }

  if (row->with_runs)
    {
      if (row->runs_reset)
        {
          if ((s = stmt (self, STMT_DELETE_RUNS, error)) == NULL)
            return FALSE;
          sqlite3_bind_text (s, 1, row->id, -1, SQLITE_STATIC);
          if (!step_done (db, s, "Cannot save an agent's runs", error))
            return FALSE;
        }
      for (guint i = 0; row->run_deletes && i < row->run_deletes->len; i++)
        {
          if ((s = stmt (self, STMT_DELETE_RUN, error)) == NULL)
            return FALSE;
          sqlite3_bind_text (s, 1, row->id, -1, SQLITE_STATIC);
          sqlite3_bind_int64 (s, 2, g_array_index (row->run_deletes, gint64, i));
          if (!step_done (db, s, "Cannot save an agent's runs", error))
            return FALSE;
        }
      for (guint i = 0; row->run_inserts && i < row->run_inserts->len; i++)
        {
          RunRecord *record = g_ptr_array_index (row->run_inserts, i);

          if ((s = stmt (self, STMT_SAVE_RUN, error)) == NULL)
            return FALSE;
          sqlite3_bind_text (s, 1, row->id, -1, SQLITE_STATIC);
          sqlite3_bind_int64 (s, 2, record->seq);
          sqlite3_bind_blob (s, 3, g_bytes_get_data (record->bytes, NULL),
                             (int) g_bytes_get_size (record->bytes), SQLITE_STATIC);
          if (!step_done (db, s, "Cannot save an agent's runs", error))
            return FALSE;
        }
    }

  if ((s = stmt (self, STMT_SAVE_ACTIVITY, error)) == NULL)
    return FALSE;
  sqlite3_bind_text (s, 1, row->id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (s, 2, row->last_activity_at);
  sqlite3_bind_int64 (s, 3, row->beats);
  return step_done (db, s, "Cannot save an agent's activity", error);
}

static gboolean
db_set_meta (HbState    *self,
             const char *key,
             gint64      value,
             GError    **error)
{
  sqlite3_stmt *s = stmt (self, STMT_SET_META, error);

  if (s == NULL)
    return FALSE;
  sqlite3_bind_text (s, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (s, 2, value);
  return step_done (self->db, s, "Cannot save the state's bookkeeping", error);
}

static gint64
db_get_meta (sqlite3    *db,
             const char *key,
             gint64      fallback)
{
  sqlite3_stmt *stmt;
  gint64 value = fallback;

  if (sqlite3_prepare_v2 (db, "SELECT value FROM meta WHERE key = ?1", -1, &stmt, NULL) != SQLITE_OK)
    return fallback;
  sqlite3_bind_text (stmt, 1, key, -1, SQLITE_STATIC);
  if (sqlite3_step (stmt) == SQLITE_ROW)
    value = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  return value;
}

#define SELECT_ROWS \
  "SELECT a.id, a.task_id, a.state, a.status, a.owner_uid, a.pid, a.bound_to, a.declared," \
  " a.stale_after, a.timeout_after, a.started_at, a.metadata," \
  " coalesce(v.last_activity_at, a.started_at), coalesce(v.beats, 0), a.history," \
  " a.paused_at, a.paused_reason, a.paused_by, a.tags" \
  " FROM agents a LEFT JOIN activity v ON v.id = a.id"
#define SELECT_RUNS "SELECT id, seq, record FROM runs"

static Row *
row_from_statement (sqlite3_stmt *stmt)
{
  Row *row = g_new0 (Row, 1);
  const void *blob;

  row->id = g_strdup (column_text (stmt, 0));
  row->present = TRUE;
  row->full = TRUE;
  row->task_id = g_strdup (column_text (stmt, 1));
  row->state = g_intern_string (column_text (stmt, 2));
  row->status = g_strdup (column_text (stmt, 3));
  row->owner_uid = sqlite3_column_int64 (stmt, 4);
  row->pid = sqlite3_column_int64 (stmt, 5);
  row->bound_to = g_strdup (column_text (stmt, 6));
  row->declared = sqlite3_column_int (stmt, 7) != 0;
  row->stale_after = sqlite3_column_int64 (stmt, 8);
  row->timeout_after = sqlite3_column_int64 (stmt, 9);
  row->started_at = sqlite3_column_int64 (stmt, 10);
  blob = sqlite3_column_blob (stmt, 11);
  if (blob || sqlite3_column_type (stmt, 11) == SQLITE_BLOB)
    row->metadata = g_bytes_new (blob, (gsize) sqlite3_column_bytes (stmt, 11));
  row->last_activity_at = sqlite3_column_int64 (stmt, 12);
  row->beats = sqlite3_column_int64 (stmt, 13);
  blob = sqlite3_column_blob (stmt, 14);
  if (blob || sqlite3_column_type (stmt, 14) == SQLITE_BLOB)
    row->history = g_bytes_new (blob, (gsize) sqlite3_column_bytes (stmt, 14));
  row->paused_at = sqlite3_column_int64 (stmt, 15);
  row->paused_reason = g_strdup (column_text (stmt, 16));
  row->paused_by = sqlite3_column_int64 (stmt, 17);
  blob = sqlite3_column_blob (stmt, 18);
  if (blob || sqlite3_column_type (stmt, 18) == SQLITE_BLOB)
    row->tags = g_bytes_new (blob, (gsize) sqlite3_column_bytes (stmt, 18));
  return row;
}

/* The records of @row, read (RunRecord, by seq): its runs, or that they
 * are damaged. */
static void
row_set_records (Row       *row,
                 GPtrArray *records)
{
  g_autofree GVariant **children = NULL;
  SavedRuns *saved;

  if (records == NULL || records->len == 0)
    return;
  children = g_new0 (GVariant *, records->len);
  saved = saved_runs_new ();
  for (guint i = 0; i < records->len; i++)
    {
      RunRecord *record = g_ptr_array_index (records, i);
      SavedRun run = { record->seq, hash_bytes (g_bytes_get_data (record->bytes, NULL),
                                                g_bytes_get_size (record->bytes)) };

      children[i] = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE_VARDICT, record->bytes, FALSE));
      if (!g_variant_is_normal_form (children[i]))
        row->runs_damaged = TRUE;
      g_array_append_val (saved->runs, run);
      saved->next_seq = MAX (saved->next_seq, record->seq + 1);
    }
  if (!row->runs_damaged)
    {
      row->runs = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE_VARDICT, children, records->len));
      row->saved = saved;
    }
  else
    saved_runs_free (saved);
  for (guint i = 0; i < records->len; i++)
    g_variant_unref (children[i]);
}

/* A record of a SELECT_RUNS statement, at its row. */
static RunRecord *
record_from_statement (sqlite3_stmt *stmt)
{
  RunRecord *record = g_new0 (RunRecord, 1);

  record->seq = sqlite3_column_int64 (stmt, 1);
  record->bytes = g_bytes_new (sqlite3_column_blob (stmt, 2), (gsize) sqlite3_column_bytes (stmt, 2));
  return record;
}

/* The row of @id as saved (present or not), or NULL if it cannot be read. */
static Row *
db_read_row (sqlite3    *db,
             const char *id)
{
  sqlite3_stmt *stmt;
  Row *row = NULL;
  int rc;

  if (sqlite3_prepare_v2 (db, SELECT_ROWS " WHERE a.id = ?1", -1, &stmt, NULL) != SQLITE_OK)
    return NULL;
  sqlite3_bind_text (stmt, 1, id, -1, SQLITE_STATIC);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW && column_text (stmt, 0) != NULL)
    row = row_from_statement (stmt);
  else if (rc == SQLITE_DONE)
    {
      row = g_new0 (Row, 1);
      row->id = g_strdup (id);
    }
  sqlite3_finalize (stmt);

  if (row != NULL && row->present)
    {
      g_autoptr(GPtrArray) records = g_ptr_array_new_with_free_func (run_record_free);

      if (sqlite3_prepare_v2 (db, SELECT_RUNS " WHERE id = ?1 ORDER BY seq", -1, &stmt, NULL) != SQLITE_OK)
        {
          row_free (row);
          return NULL;
        }
      sqlite3_bind_text (stmt, 1, id, -1, SQLITE_STATIC);
      while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
        g_ptr_array_add (records, record_from_statement (stmt));
      sqlite3_finalize (stmt);
      if (rc != SQLITE_DONE)
        {
          row_free (row);
          return NULL;
        }
      row_set_records (row, records);
    }
  return row;
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */

static gboolean on_batch_done (gpointer data);

/* Writer thread: one transaction. On failure, the callers' rows as the
 * database still holds them, for the main thread to take their changes
 * back. */
static void
batch_run (gpointer data,
           gpointer user_data)
{
  Batch *batch = data;
  HbState *self = user_data;
  sqlite3 *db = self->db;
  gboolean ok;

  ok = db_exec (db, batch->durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", &batch->error) &&
       db_exec (db, "BEGIN IMMEDIATE", &batch->error);
  for (guint i = 0; ok && i < batch->rows->len; i++)
    ok = db_write_row (self, g_ptr_array_index (batch->rows, i), &batch->error);
  if (ok && batch->synced_at != 0)
    ok = db_set_meta (self, "synced-at", batch->synced_at, &batch->error);
  if (ok && batch->clean >= 0)
    ok = db_set_meta (self, "clean", batch->clean, &batch->error);
  if (ok && batch->alive_at != 0)
    ok = db_set_meta (self, "alive-at", batch->alive_at, &batch->error);
  if (ok)
    ok = db_exec (db, "COMMIT", &batch->error);

  if (!ok)
    {
      if (!sqlite3_get_autocommit (db))
        sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
      batch->read_back = g_ptr_array_new_with_free_func ((GDestroyNotify) row_free);
      for (guint i = 0; i < batch->rows->len; i++)
        {
          Row *row = g_ptr_array_index (batch->rows, i);
          Row *saved;

          if (!(row->flags & DIRTY_CALLER))
            continue;
          saved = db_read_row (db, row->id);
          if (saved)
            g_ptr_array_add (batch->read_back, saved);
          else
            g_warning ("Cannot read back agent “%s” to take its change back", row->id);
        }
    }

  if (batch->wait)
    {
      g_mutex_lock (&self->writer_lock);
      batch->done = TRUE;
      g_cond_broadcast (&self->writer_cond);
      g_mutex_unlock (&self->writer_lock);
    }
  else
    {
      /* Always from the main thread's loop: g_main_context_invoke() would
       * run it here, in the writer, whenever the main thread does not
       * hold its context at that moment (before the loop runs, or between
       * two iterations), racing with it (a waiter queued meanwhile is
       * never completed). */
      GSource *source = g_idle_source_new ();

      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, on_batch_done, batch, NULL);
      g_source_set_static_name (source, "[heartbeat] state batch done");
      g_source_attach (source, self->context);
      g_source_unref (source);
    }
}

/* A monitor time as the wall-clock time to save. "Now minus how long ago"
 * moves a time by the µs between reading the two clocks, and a clock set
 * back can take it before the epoch: a negative time would make the row
 * unreadable at the next start. */
static gint64
saved_realtime (HbState *self,
                gint64   monotonic)
{
  gint64 realtime = heartbeat_monitor_to_realtime (self->monitor, monotonic);

  return MAX (realtime, 0);
}

/* Main thread: which of @agent's records to write to make the saved ones
 * what it holds, by their hashes; what is saved then, as far as we know
 * (a batch that fails forgets it: see batch_finish()). Only the newest
 * record changes, and the oldest are trimmed: the records kept keep their
 * numbers, a new or changed one takes the next, and so does every record
 * after it, so that the numbers stay in order. */
static void
row_diff_runs (HbState        *self,
               Row            *row,
               HeartbeatAgent *agent)
{
  g_autoptr(GVariant) runs = g_variant_ref_sink (heartbeat_agent_get_runs (agent));
  gsize n = g_variant_n_children (runs);
  SavedRuns *old = g_hash_table_lookup (self->saved_runs, row->id);
  SavedRuns *now = saved_runs_new ();
  gboolean inserting = old == NULL;
  guint p = 0;

  row->with_runs = TRUE;
  row->runs_reset = old == NULL;
  row->run_deletes = g_array_new (FALSE, FALSE, sizeof (gint64));
  row->run_inserts = g_ptr_array_new_with_free_func (run_record_free);
  if (old)
    now->next_seq = old->next_seq;
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (runs, i);
      SavedRun run = { 0, hash_bytes (g_variant_get_data (child), g_variant_get_size (child)) };

      if (!inserting)
        {
          guint j = p;

          while (j < old->runs->len && g_array_index (old->runs, SavedRun, j).hash != run.hash)
            j++;
          if (j < old->runs->len)
            {
              /* kept; those before it were trimmed */
              for (; p < j; p++)
                g_array_append_val (row->run_deletes, g_array_index (old->runs, SavedRun, p).seq);
              run.seq = g_array_index (old->runs, SavedRun, j).seq;
              p = j + 1;
            }
          else
            inserting = TRUE;
        }
      if (inserting)
        {
          RunRecord *record = g_new0 (RunRecord, 1);

          record->seq = run.seq = now->next_seq++;
          record->bytes = g_variant_get_data_as_bytes (child);
          g_ptr_array_add (row->run_inserts, record);
        }
      g_array_append_val (now->runs, run);
    }
  for (; old && p < old->runs->len; p++)
    g_array_append_val (row->run_deletes, g_array_index (old->runs, SavedRun, p).seq);

  if (n > 0)
    g_hash_table_replace (self->saved_runs, g_strdup (row->id), now);
  else
    {
      g_hash_table_remove (self->saved_runs, row->id);
      saved_runs_free (now);
    }
}

/* The agent @id as it is now: a row to write, or its absence. */
static Row *
row_from_agent (HbState    *self,
                const char *id,
                guint       flags)
{
  HeartbeatAgent *agent = heartbeat_monitor_lookup (self->monitor, id);
  Row *row = g_new0 (Row, 1);
  GVariant *metadata;

  row->id = g_strdup (id);
  row->flags = flags;
  if (agent == NULL)
    {
      g_hash_table_remove (self->saved_runs, id);
      return row;
    }

  row->present = TRUE;
  row->full = (flags & DIRTY_FULL) != 0;
  row->last_activity_at = saved_realtime (self, heartbeat_agent_get_last_activity_at (agent));
  row->beats = (gint64) MIN (heartbeat_agent_get_beats (agent), (guint64) G_MAXINT64);
  if (flags & DIRTY_RUNS)
    row_diff_runs (self, row, agent);
  if (!row->full)
    return row;

  row->task_id = g_strdup (heartbeat_agent_get_task_id (agent));
  row->state = heartbeat_agent_state_to_string (heartbeat_agent_get_state (agent));
  row->status = g_strdup (heartbeat_agent_get_status (agent));
  row->bound_to = g_strdup (heartbeat_agent_get_bound_to (agent));
  row->owner_uid = heartbeat_agent_get_owner_uid (agent);
  row->pid = heartbeat_agent_get_pid (agent);
  row->declared = heartbeat_agent_is_declared (agent);
  row->stale_after = heartbeat_agent_get_own_stale_after (agent);
  row->timeout_after = heartbeat_agent_get_own_timeout_after (agent);
  row->started_at = saved_realtime (self, heartbeat_agent_get_started_at (agent));
  metadata = heartbeat_agent_get_metadata (agent);
  if (metadata)
    row->metadata = g_variant_get_data_as_bytes (metadata);
  {
    g_autoptr(GVariant) history = g_variant_ref_sink (heartbeat_agent_get_history (agent));

    row->history = g_variant_get_data_as_bytes (history);
  }
  row->paused_at = heartbeat_agent_get_paused_at (agent);
  row->paused_reason = g_strdup (heartbeat_agent_get_paused_reason (agent));
  row->paused_by = heartbeat_agent_get_paused_by (agent);
  {
    const char *const *tags = heartbeat_agent_get_tags (agent);

    if (tags != NULL && tags[0] != NULL)
      {
        g_autoptr(GVariant) value = g_variant_ref_sink (g_variant_new_strv (tags, -1));

        row->tags = g_variant_get_data_as_bytes (value);
      }
  }
  return row;
}

static Batch *
batch_new (HbState *self)
{
  Batch *batch = g_new0 (Batch, 1);

  batch->state = g_object_ref (self);
  batch->rows = g_ptr_array_new_with_free_func ((GDestroyNotify) row_free);
  batch->clean = -1;
  return batch;
}

/* Main thread: the pending ids, as the monitor holds them now. Only the
 * urgent ones, unless @all (a lazy sync, a reload, the exit); and up to
 * @backfill_max of the rows to write again in the background. */
static Batch *
cut (HbState  *self,
     gboolean  all,
     guint     backfill_max)
{
  Batch *batch = batch_new (self);
  g_autoptr(GHashTable) urgent = g_steal_pointer (&self->urgent);
  GHashTableIter iter;
  gpointer key, value;

  self->urgent = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_hash_table_iter_init (&iter, urgent);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      guint flags = GPOINTER_TO_UINT (value);

      g_hash_table_remove (self->lazy, key);   /* its row has its activity */
      if (g_hash_table_remove (self->backfill, key))
        flags |= DIRTY_FULL;
      g_ptr_array_add (batch->rows, row_from_agent (self, key, flags));
    }
  batch->durable = batch->rows->len > 0;
  if (all)
    {
      g_autoptr(GHashTable) lazy = g_steal_pointer (&self->lazy);

      self->lazy = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      g_hash_table_iter_init (&iter, lazy);
      while (g_hash_table_iter_next (&iter, &key, &value))
        {
          guint flags = GPOINTER_TO_UINT (value);

          if (g_hash_table_remove (self->backfill, key))
            flags |= DIRTY_FULL;
          g_ptr_array_add (batch->rows, row_from_agent (self, key, flags));
        }
      batch->synced_at = heartbeat_monitor_get_realtime (self->monitor);
      g_clear_handle_id (&self->lazy_id, g_source_remove);
    }
  /* rows written again in the background: a share of them in each
   * transaction, without an fsync of their own */
  {
    guint n = 0;

    g_hash_table_iter_init (&iter, self->backfill);
    while (n < backfill_max && g_hash_table_iter_next (&iter, &key, NULL))
      {
        g_ptr_array_add (batch->rows, row_from_agent (self, key, DIRTY_FULL));
        g_hash_table_iter_remove (&iter);
        n++;
      }
  }
  if (self->alive_due)
    {
      batch->alive_at = heartbeat_monitor_get_realtime (self->monitor);
      self->alive_due = FALSE;
    }
  batch->seq = self->change_seq;
  return batch;
}

static void
complete_waiters (HbState      *self,
                  guint64       seq,
                  const GError *error)
{
  Waiter *waiter;

  self->settled_seq = MAX (self->settled_seq, seq);
  while ((waiter = g_queue_peek_head (&self->waiters)) != NULL && waiter->seq <= seq)
    {
      g_queue_pop_head (&self->waiters);
      if (error)
        g_task_return_new_error (waiter->task, HEARTBEAT_ERROR, HEARTBEAT_ERROR_NOT_SAVED,
                                 "The change could not be saved, so it was taken back: %s",
                                 error->message);
      else
        g_task_return_boolean (waiter->task, TRUE);
      g_object_unref (waiter->task);
      g_free (waiter);
    }
}

static void mark (HbState *self, const char *id, guint flags, gboolean lazy);
static gboolean on_retry (gpointer user_data);
static void start_batch (HbState *self, gboolean all);

/* A row read back as HeartbeatAgentOptions and a snapshot. */
static gboolean restore_row (HbState *self, const Row *row, gint64 active_until,
                             gint64 unmonitored_since, gboolean revert, GError **error);

/* Main thread: what a finished transaction means. */
static gboolean
batch_finish (HbState *self,
              Batch   *batch,
              GError **error)
{
  if (batch->error == NULL)
    {
      self->write_count++;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_WRITE_COUNT]);
      g_clear_handle_id (&self->retry_id, g_source_remove);
      set_problem (self, NULL);
      complete_waiters (self, batch->seq, NULL);
      return TRUE;
    }

  {
    g_autofree char *problem = g_strdup_printf ("Cannot save the agents to %s: %s",
                                                self->path, batch->error->message);
    set_problem (self, problem);
  }

  /* that we are alive is noted by the next batch */
  if (batch->alive_at != 0)
    self->alive_due = TRUE;

  /* what we thought saved of their records is not known: written whole
   * next time (a caller's, taken back below, is known again) */
  for (guint i = 0; i < batch->rows->len; i++)
    {
      Row *row = g_ptr_array_index (batch->rows, i);

      if (row->with_runs)
        g_hash_table_remove (self->saved_runs, row->id);
    }

  /* the callers' changes go back to what is saved; the rest stays
   * pending, for the retry */
  for (guint i = 0; batch->read_back && i < batch->read_back->len; i++)
    {
      Row *saved = g_ptr_array_index (batch->read_back, i);
      g_autoptr(GError) local = NULL;

      if (!restore_row (self, saved, 0, 0, TRUE, &local))
        g_warning ("Cannot take back the change of agent “%s”: %s", saved->id, local->message);
    }
  for (guint i = 0; i < batch->rows->len; i++)
    {
      Row *row = g_ptr_array_index (batch->rows, i);

      if (!(row->flags & DIRTY_CALLER))
        mark (self, row->id, row->flags, (row->flags & DIRTY_ACTIVITY) != 0);
    }
  complete_waiters (self, batch->seq, batch->error);
  if (self->retry_id == 0)
    self->retry_id = g_timeout_add_seconds (RETRY_SECONDS, on_retry, self);
  if (error)
    *error = g_error_copy (batch->error);
  return FALSE;
}

/* Main thread, after an asynchronous batch. */
static gboolean
on_batch_done (gpointer data)
{
  Batch *batch = data;
  HbState *self = batch->state;
  gboolean ok;

  /* the store is the main thread's; only the transaction is the writer's */
  g_warn_if_fail (g_thread_self () == self->main_thread);
  if (self->in_flight == batch)
    self->in_flight = NULL;
  ok = batch_finish (self, batch, NULL);
  batch_free (batch);

  if (self->full_next)
    start_batch (self, TRUE);
  else if (ok && (g_hash_table_size (self->urgent) > 0 || self->alive_due ||
                  g_hash_table_size (self->backfill) > 0))
    start_batch (self, FALSE);
  return G_SOURCE_REMOVE;
}

static void
start_batch (HbState  *self,
             gboolean  all)
{
  Batch *batch;

  if (self->in_flight != NULL || self->db == NULL)
    {
      self->full_next |= all;
      return;
    }
  self->full_next = FALSE;
  batch = cut (self, all, BACKFILL_BATCH);
  if (batch->rows->len == 0 && batch->synced_at == 0 && batch->alive_at == 0)
    {
      complete_waiters (self, batch->seq, NULL);
      batch_free (batch);
      return;
    }
  self->in_flight = batch;
  g_thread_pool_push (self->writer, batch, NULL);
}

static gboolean
on_cut (gpointer user_data)
{
  HbState *self = user_data;

  self->cut_id = 0;
  start_batch (self, FALSE);
  return G_SOURCE_REMOVE;
}

static gboolean
on_lazy (gpointer user_data)
{
  HbState *self = user_data;

  self->lazy_id = 0;
  start_batch (self, TRUE);
  return G_SOURCE_REMOVE;
}

/* Every alive interval (a minute): the daemon notes that it is alive, in
 * a write of its own without an fsync (or in the batch after the one in
 * flight), so that the next start knows since when nobody watched (see
 * load_rows()). */
static gboolean
on_alive (gpointer user_data)
{
  HbState *self = user_data;

  self->alive_due = TRUE;
  start_batch (self, FALSE);
  return G_SOURCE_CONTINUE;
}

static void
arm_alive (HbState *self)
{
  g_clear_handle_id (&self->alive_id, g_source_remove);
  self->alive_id = g_timeout_add_seconds_full (G_PRIORITY_LOW,
                                               (guint) MAX (1, self->alive_interval / G_USEC_PER_SEC),
                                               on_alive, self, NULL);
}

static gboolean
on_retry (gpointer user_data)
{
  HbState *self = user_data;

  self->retry_id = 0;
  start_batch (self, TRUE);
  return G_SOURCE_REMOVE;
}

static void
arm_lazy (HbState *self)
{
  if (self->lazy_id == 0 && !self->loading)
    self->lazy_id = g_timeout_add_seconds_full (G_PRIORITY_LOW,
                                                (guint) MAX (1, self->sync_interval / G_USEC_PER_SEC),
                                                on_lazy, self, NULL);
}

/* Adds @flags to what @table has pending for @id. O(1). */
static void
add_flags (GHashTable *table,
           const char *id,
           guint       flags)
{
  gpointer old;

  if (g_hash_table_lookup_extended (table, id, NULL, &old))
    {
      if ((GPOINTER_TO_UINT (old) | flags) != GPOINTER_TO_UINT (old))
        g_hash_table_replace (table, g_strdup (id), GUINT_TO_POINTER (GPOINTER_TO_UINT (old) | flags));
    }
  else
    g_hash_table_insert (table, g_strdup (id), GUINT_TO_POINTER (flags));
}

/* Records that @id has something pending: at once, or (@lazy) with the
 * next sync of the activity. */
static void
mark (HbState    *self,
      const char *id,
      guint       flags,
      gboolean    lazy)
{
  if (!lazy)
    {
      add_flags (self->urgent, id, flags);
      return;
    }
  add_flags (self->lazy, id, flags);
  arm_lazy (self);
}

/* HeartbeatStoreFuncs.changed */
static void
on_changed (HeartbeatMonitor *monitor,
            const char       *id,
            HeartbeatChange   change,
            gpointer          user_data)
{
  HbState *self = user_data;

  if (self->loading)
    return;
  switch (change)
    {
    case HEARTBEAT_CHANGE_ACTIVITY:
      mark (self, id, DIRTY_ACTIVITY, TRUE);
      return;
    case HEARTBEAT_CHANGE_METADATA:
      mark (self, id, DIRTY_ACTIVITY | DIRTY_FULL, TRUE);
      return;
    case HEARTBEAT_CHANGE_CALLER:
      mark (self, id, DIRTY_FULL | DIRTY_CALLER, FALSE);
      break;
    case HEARTBEAT_CHANGE_STATE:
    default:
      mark (self, id, DIRTY_FULL, FALSE);
      break;
    }
  self->change_seq++;
  if (self->cut_id == 0 && self->in_flight == NULL)
    self->cut_id = g_idle_add (on_cut, self);
}

/* HeartbeatMonitor::agent-run: a record was added or changed. The monitor
 * notes the same change (CALLER or STATE) before or after, which counts it
 * for HeartbeatStoreFuncs.sync; this only says to write the records too. */
static void
on_agent_run (HeartbeatMonitor *monitor,
              HeartbeatAgent   *agent,
              GVariant         *record,
              gpointer          user_data)
{
  HbState *self = user_data;

  if (self->loading)
    return;
  mark (self, heartbeat_agent_get_id (agent), DIRTY_RUNS, FALSE);
  if (self->cut_id == 0 && self->in_flight == NULL)
    self->cut_id = g_idle_add (on_cut, self);
}

/* HeartbeatStoreFuncs.sync */
static void
on_sync (HeartbeatMonitor *monitor,
         GTask            *task,
         gpointer          user_data)
{
  HbState *self = user_data;
  Waiter *waiter;

  if (self->settled_seq >= self->change_seq)
    {
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
      return;
    }
  waiter = g_new (Waiter, 1);
  waiter->seq = self->change_seq;
  waiter->task = task;
  g_queue_push_tail (&self->waiters, waiter);
}

/* HeartbeatStoreFuncs.is_saved */
static gboolean
on_is_saved (HeartbeatMonitor *monitor,
             gpointer          user_data)
{
  HbState *self = user_data;

  return self->settled_seq >= self->change_seq;
}

static const HeartbeatStoreFuncs store_funcs = {
  .changed = on_changed,
  .sync = on_sync,
  .is_saved = on_is_saved,
};

/* ------------------------------------------------------------------ */
/* Reading                                                             */

static gboolean
restore_snapshot (HbState                      *self,
                  const char                   *id,
                  const HeartbeatAgentOptions  *options,
                  const HeartbeatAgentSnapshot *snapshot,
                  gboolean                      revert,
                  GError                      **error)
{
  GError *local = NULL;

  if (revert)
    heartbeat_monitor_revert (self->monitor, id, options, snapshot, &local);
  else
    heartbeat_monitor_restore (self->monitor, id, options, snapshot, &local);
  if (local != NULL)
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  return TRUE;
}

/* The wall-clock time a record speaks for, as the monitor trims by it: its
 * end, else its due time or start. */
static gint64
run_time (GVariant *record)
{
  gint64 ended = 0, due = 0, started = 0;

  if (g_variant_lookup (record, "ended-usec", "x", &ended) && ended > 0)
    return ended;
  g_variant_lookup (record, "due-usec", "x", &due);
  g_variant_lookup (record, "started-usec", "x", &started);
  return MAX (due, started);
}

/* Whether the restore trimmed some of @runs (more than
 * HEARTBEAT_RUNS_MAX, or an oldest record older than
 * HEARTBEAT_RUNS_MAX_AGE with a newer one), so that the store keeps only
 * what the agent does. Looks at the oldest record only. */
static gboolean
runs_over_bounds (GVariant *runs,
                  gint64    now_realtime)
{
  gsize n = g_variant_n_children (runs);
  g_autoptr(GVariant) oldest = NULL;

  if (n > HEARTBEAT_RUNS_MAX)
    return TRUE;
  if (n < 2)
    return FALSE;
  oldest = g_variant_get_child_value (runs, 0);
  return now_realtime - run_time (oldest) > HEARTBEAT_RUNS_MAX_AGE;
}

/* @row's tags, if they can be kept: a damaged or refused list is lost
 * (with a warning, and written again without it), not the agent. */
static char **
row_tags (HbState   *self,
          const Row *row,
          gboolean  *lost)
{
  g_autoptr(GVariant) value = NULL;
  g_auto(GStrv) tags = NULL;
  g_autoptr(GError) local = NULL;

  *lost = FALSE;
  if (row->tags == NULL)
    return NULL;
  value = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE_STRING_ARRAY, row->tags, FALSE));
  if (!g_variant_is_normal_form (value))
    g_set_error_literal (&local, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "they are malformed");
  else
    {
      tags = g_variant_dup_strv (value, NULL);
      heartbeat_tags_validate ((const char *const *) tags, &local);
    }
  if (local != NULL)
    {
      g_warning ("%s: agent “%s”: its tags cannot be restored (%s); dropped",
                 self->path, row->id, local->message);
      *lost = TRUE;
      return NULL;
    }
  return g_steal_pointer (&tags);
}

static gboolean
restore_row (HbState    *self,
             const Row  *row,
             gint64      active_until,
             gint64      unmonitored_since,
             gboolean    revert,
             GError    **error)
{
  HeartbeatAgentOptions options = { 0 };
  HeartbeatAgentSnapshot snapshot = { 0 };
  g_autoptr(GVariant) metadata = NULL;
  g_autoptr(GVariant) history = NULL;
  g_autoptr(GVariant) runs = NULL;
  g_autoptr(GError) local = NULL;
  g_auto(GStrv) tags = NULL;
  gboolean runs_lost = FALSE;
  gboolean tags_lost = FALSE;

  if (!row->present)
    {
      heartbeat_monitor_revert (self->monitor, row->id, NULL, NULL, NULL);
      return TRUE;
    }
  if (row->state == NULL || !heartbeat_agent_state_from_string (row->state, &snapshot.state) ||
      row->owner_uid < 0 || row->owner_uid > G_MAXUINT32 ||
      row->pid < 0 || row->pid > G_MAXINT32 || row->beats < 0 ||
      row->stale_after < 0 || row->stale_after > HEARTBEAT_THRESHOLD_MAX ||
      row->timeout_after < 0 || row->timeout_after > HEARTBEAT_THRESHOLD_MAX ||
      row->started_at < 0 || row->last_activity_at < 0 ||
      row->paused_at < 0 || row->paused_by < 0 || row->paused_by > G_MAXUINT32)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "a field is out of range");
      return FALSE;
    }
  if (row->metadata)
    {
      metadata = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE_VARDICT, row->metadata, FALSE));
      if (!g_variant_is_normal_form (metadata))
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "its metadata is malformed");
          return FALSE;
        }
    }
  /* a damaged history is only lost, the agent kept */
  if (row->history)
    {
      history = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE ("a(ts)"), row->history, FALSE));
      if (!g_variant_is_normal_form (history))
        g_clear_pointer (&history, g_variant_unref);
    }
  /* and so are damaged runs, said */
  if (row->runs_damaged)
    {
      g_warning ("%s: agent “%s”: its run records are damaged; dropped", self->path, row->id);
      runs_lost = TRUE;
    }
  else if (row->runs)
    runs = g_variant_ref (row->runs);
  tags = row_tags (self, row, &tags_lost);

  options.task_id = row->task_id;
  options.stale_after_usec = row->stale_after;
  options.timeout_after_usec = row->timeout_after;
  options.owner_uid = (guint32) row->owner_uid;
  options.pid = (gint32) row->pid;
  options.metadata = metadata;
  options.bound_to = row->bound_to;
  options.tags = (const char *const *) tags;
  snapshot.status = row->status;
  snapshot.beats = (guint64) row->beats;
  snapshot.started_at_realtime = row->started_at;
  snapshot.last_activity_at_realtime = row->last_activity_at;
  snapshot.declared = row->declared;
  snapshot.active_until_realtime = active_until;
  snapshot.unmonitored_since_realtime = unmonitored_since;
  snapshot.paused_at_realtime = row->paused_at;
  snapshot.paused_reason = row->paused_reason;
  snapshot.paused_by_uid = (guint32) row->paused_by;
  snapshot.history = history;
  snapshot.runs = runs;
  /* taking a change back: no records saved means none (NULL would keep
   * those held, the unsaved run among them) */
  if (revert && runs == NULL)
    snapshot.runs = runs = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE_VARDICT, NULL, 0));

  if (!restore_snapshot (self, row->id, &options, &snapshot, revert, &local) && runs != NULL)
    {
      g_autoptr(GError) runs_error = g_steal_pointer (&local);

      /* records the monitor refuses (a newer daemon's, a damaged one
       * that is well-formed) are lost, not the agent; if the agent
       * itself is refused, that is what is said */
      g_clear_pointer (&runs, g_variant_unref);
      if (revert)
        runs = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE_VARDICT, NULL, 0));
      snapshot.runs = runs;
      if (restore_snapshot (self, row->id, &options, &snapshot, revert, &local))
        {
          g_warning ("%s: agent “%s”: its run records cannot be restored (%s); dropped",
                     self->path, row->id, runs_error->message);
          runs_lost = TRUE;
        }
    }
  if (local != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  /* what is saved of its records, then what is saved is what is held:
   * the records that were dropped go, and so do those the restore trimmed */
  if (!runs_lost && row->saved != NULL)
    g_hash_table_replace (self->saved_runs, g_strdup (row->id), saved_runs_copy (row->saved));
  else
    g_hash_table_remove (self->saved_runs, row->id);
  if (runs_lost)
    mark (self, row->id, DIRTY_FULL | DIRTY_RUNS, FALSE);
  else if (row->runs != NULL && !revert &&
           runs_over_bounds (row->runs, heartbeat_monitor_get_realtime (self->monitor)))
    mark (self, row->id, DIRTY_RUNS, FALSE);
  /* tags dropped: the row is written again without them */
  if (tags_lost)
    mark (self, row->id, DIRTY_FULL, FALSE);
  return TRUE;
}

/* The last time the daemon that wrote @db is known to have been alive,
 * wall-clock µs, or 0 if it is not known: the latest of what it noted
 * (meta "alive-at": at its start, every minute, at a clean stop),
 * its last sync of the activity ("synced-at") and the newest activity it
 * saved (a registration, a change of state: written at once). After a
 * kill -9 it is at most a minute before the daemon died. */
static gint64
db_last_alive (sqlite3 *db)
{
  gint64 alive = MAX (db_get_meta (db, "alive-at", 0), db_get_meta (db, "synced-at", 0));
  sqlite3_stmt *stmt;

  if (sqlite3_prepare_v2 (db, "SELECT max(last_activity_at) FROM activity", -1, &stmt, NULL) == SQLITE_OK)
    {
      if (sqlite3_step (stmt) == SQLITE_ROW)
        alive = MAX (alive, sqlite3_column_int64 (stmt, 0));
      sqlite3_finalize (stmt);
    }
  return alive;
}

/* The agents in the database. FALSE if it cannot be read (corrupt). */
static gboolean
load_rows (HbState *self,
           guint   *restored,
           GError **error)
{
  sqlite3_stmt *stmt, *runs_stmt;
  gint64 now = heartbeat_monitor_get_realtime (self->monitor);
  gint64 alive = db_last_alive (self->db);
  gint64 active_until = 0;
  gint64 unmonitored_since = 0;
  int rc, runs_rc;

  /* After an unclean exit, beats since the last lazy sync were lost: a
   * healthy agent gets its threshold from now before it can go stale. */
  if (db_get_meta (self->db, "clean", 0) == 0)
    active_until = now;
  /* From the last time the daemon was known alive to now, nobody watched:
   * each agent's history says so (a clock set back since: not known) */
  if (alive > 0 && alive < now)
    unmonitored_since = alive;

  /* the agents and their records, both by id, read side by side */
  rc = sqlite3_prepare_v2 (self->db, SELECT_ROWS " ORDER BY a.id", -1, &stmt, NULL);
  if (rc != SQLITE_OK)
    return db_error (self->db, rc, "Cannot read the agents", error);
  rc = sqlite3_prepare_v2 (self->db, SELECT_RUNS " ORDER BY id, seq", -1, &runs_stmt, NULL);
  if (rc != SQLITE_OK)
    {
      sqlite3_finalize (stmt);
      return db_error (self->db, rc, "Cannot read the agents' runs", error);
    }
  runs_rc = sqlite3_step (runs_stmt);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      g_autoptr(GError) local = NULL;
      g_autoptr(GPtrArray) records = NULL;
      Row *row;

      if (column_text (stmt, 0) == NULL)
        continue;
      row = row_from_statement (stmt);
      /* (records of no agent are passed over) */
      for (; runs_rc == SQLITE_ROW; runs_rc = sqlite3_step (runs_stmt))
        {
          const char *id = column_text (runs_stmt, 0);
          int cmp = id ? strcmp (id, row->id) : -1;

          if (cmp > 0)
            break;
          if (cmp < 0)
            continue;
          if (records == NULL)
            records = g_ptr_array_new_with_free_func (run_record_free);
          g_ptr_array_add (records, record_from_statement (runs_stmt));
        }
      if (runs_rc != SQLITE_ROW && runs_rc != SQLITE_DONE)
        {
          row_free (row);
          break;
        }
      row_set_records (row, records);
      if (restore_row (self, row, active_until, unmonitored_since, FALSE, &local))
        {
          (*restored)++;
          /* its history has the gap now: saved in the background, in
           * the first seconds (written with the start, a large state
           * would double the time to start) */
          if (unmonitored_since != 0)
            g_hash_table_add (self->backfill, g_strdup (row->id));
        }
      else
        g_warning ("%s: agent “%s”: %s; skipped", self->path, row->id, local->message);
      row_free (row);
    }
  sqlite3_finalize (stmt);
  sqlite3_finalize (runs_stmt);
  if (runs_rc != SQLITE_ROW && runs_rc != SQLITE_DONE)
    return db_error (self->db, runs_rc, "Cannot read the agents' runs", error);
  if (rc != SQLITE_DONE)
    return db_error (self->db, rc, "Cannot read the agents", error);
  return TRUE;
}

/* A file we cannot read is kept for a human, under a name that says so. */
static void
move_aside (const char *path,
            const char *why)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *stamp = g_date_time_format (now, "%Y%m%dT%H%M%SZ");
  g_autofree char *aside = g_strdup_printf ("%s.corrupt-%s", path, stamp);

  if (g_rename (path, aside) == 0)
    g_warning ("The state file %s is unreadable (%s); moved it to %s and started empty",
               path, why, aside);
  else
    g_warning ("The state file %s is unreadable (%s) and could not be moved aside: %s",
               path, why, g_strerror (errno));
}

static void
move_db_aside (HbState    *self,
               const char *why)
{
  static const char *const suffixes[] = { "-wal", "-shm" };
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *stamp = g_date_time_format (now, "%Y%m%dT%H%M%SZ");

  move_aside (self->path, why);
  for (gsize i = 0; i < G_N_ELEMENTS (suffixes); i++)
    {
      g_autofree char *from = g_strconcat (self->path, suffixes[i], NULL);
      g_autofree char *to = g_strdup_printf ("%s.corrupt-%s%s", self->path, stamp, suffixes[i]);

      if (g_file_test (from, G_FILE_TEST_EXISTS))
        g_rename (from, to);
    }
}

/* --- agents.json, as heartbeatd 0.x wrote it, imported once --- */

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
restore_json_agent (HbState    *self,
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
  mark (self, id, DIRTY_FULL, FALSE);
  return TRUE;
}

/* Restores the agents of an agents.json; FALSE if there is none. */
static gboolean
import_json (HbState *self,
             guint   *imported)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) local = NULL;
  g_autofree char *contents = NULL;
  JsonObject *root;
  JsonArray *agents;
  gint64 version;
  gsize length;

  if (!g_file_get_contents (self->json_path, &contents, &length, &local))
    {
      if (!g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        g_warning ("Cannot read %s to import it: %s", self->json_path, local->message);
      return FALSE;
    }
  if (!hb_json_check (contents, length, STATE_JSON_MAX_DEPTH, &local) ||
      !json_parser_load_from_data (parser, contents, (gssize) length, &local))
    {
      move_aside (self->json_path, local->message);
      return FALSE;
    }
  if (json_parser_get_root (parser) == NULL || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      move_aside (self->json_path, "not a JSON object");
      return FALSE;
    }
  root = json_node_get_object (json_parser_get_root (parser));
  if (!member_int (root, "version", 0, G_MAXINT64, &version) || version != STATE_JSON_VERSION ||
      !json_object_has_member (root, "agents") ||
      !JSON_NODE_HOLDS_ARRAY (json_object_get_member (root, "agents")))
    {
      move_aside (self->json_path, "unknown version, or no agents array");
      return FALSE;
    }

  agents = json_object_get_array_member (root, "agents");
  for (guint i = 0; i < json_array_get_length (agents); i++)
    {
      JsonNode *node = json_array_get_element (agents, i);
      g_autoptr(GError) agent_error = NULL;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        g_warning ("%s: entry %u is not an object; skipped", self->json_path, i);
      else if (!restore_json_agent (self, json_node_get_object (node), &agent_error))
        g_warning ("%s: %s; skipped", self->json_path, agent_error->message);
      else
        (*imported)++;
    }
  return TRUE;
}

/* Main thread, blocking: one batch, waited for. */
static gboolean
run_batch_now (HbState *self,
               Batch   *batch,
               GError **error)
{
  gboolean ok;

  batch->wait = TRUE;
  g_thread_pool_push (self->writer, batch, NULL);
  g_mutex_lock (&self->writer_lock);
  while (!batch->done)
    g_cond_wait (&self->writer_cond, &self->writer_lock);
  g_mutex_unlock (&self->writer_lock);
  ok = batch_finish (self, batch, error);
  batch_free (batch);
  return ok;
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
 * Opens the database in the state directory and restores its agents. A
 * database that cannot be opened or read is moved aside
 * (`agents.db.corrupt-TIMESTAMP`) and the daemon starts empty; a single
 * bad row is skipped with a warning. An `agents.json` of an older
 * heartbeatd is imported, saved, and renamed `agents.json.imported`.
 * Marks the database in use: if the daemon does not exit through
 * hb_state_flush(), the next start knows beats may have been lost.
 *
 * Returns: %TRUE, or %FALSE with @error set if the directory is unusable
 */
gboolean
hb_state_load (HbState *state,
               GError **error)
{
  HbState *self = state;
  g_autoptr(GError) local = NULL;
  gboolean imported_json;
  guint restored = 0, imported = 0;
  Batch *batch;

  g_return_val_if_fail (HB_IS_STATE (state), FALSE);
  g_return_val_if_fail (self->db == NULL, FALSE);

  if (g_mkdir_with_parents (self->directory, 0700) != 0)
    {
      int saved = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
                   "Cannot create the state directory %s: %s", self->directory, g_strerror (saved));
      return FALSE;
    }

  self->loading = TRUE;
  self->db = db_open (self->path, &local);
  if (self->db != NULL && !load_rows (self, &restored, &local))
    g_clear_pointer (&self->db, sqlite3_close);
  if (self->db == NULL)
    {
      GPtrArray *agents = heartbeat_monitor_list_agents (self->monitor);

      /* nothing of a database we could not read is kept */
      for (guint i = 0; i < agents->len; i++)
        heartbeat_monitor_revert (self->monitor, heartbeat_agent_get_id (g_ptr_array_index (agents, i)),
                                  NULL, NULL, NULL);
      g_ptr_array_unref (agents);
      g_hash_table_remove_all (self->saved_runs);
      g_hash_table_remove_all (self->backfill);
      restored = 0;
      move_db_aside (self, local->message);
      g_clear_error (&local);
      self->db = db_open (self->path, &local);
      if (self->db == NULL)
        {
          self->loading = FALSE;
          g_propagate_prefixed_error (error, g_steal_pointer (&local), "Cannot create %s: ", self->path);
          return FALSE;
        }
    }
  self->loading = FALSE;

  imported_json = import_json (self, &imported);

  /* what was imported, and the mark that the database is in use, from
   * now on noted alive every minute */
  batch = cut (self, TRUE, 0);
  batch->clean = 0;
  batch->alive_at = heartbeat_monitor_get_realtime (self->monitor);
  batch->durable = TRUE;
  arm_alive (self);
  if (g_hash_table_size (self->backfill) > 0 && self->cut_id == 0)
    self->cut_id = g_idle_add (on_cut, self);
  if (!run_batch_now (self, batch, &local))
    {
      /* serving, degraded, retrying: as for any failed write */
      g_debug ("Could not mark %s in use: %s", self->path, local->message);
    }
  else if (imported_json)
    {
      g_autofree char *aside = g_strconcat (self->json_path, ".imported", NULL);

      if (g_rename (self->json_path, aside) == 0)
        g_message ("Imported %u agents from %s into %s; the file is now %s",
                   imported, self->json_path, self->path, aside);
    }

  g_debug ("Restored %u agents from %s", restored, self->path);
  return TRUE;
}

/**
 * hb_state_flush:
 * @state: a #HbState
 * @error: return location for a #GError
 *
 * Writes everything pending now, and waits for it (on the way out): the
 * next start then knows that nothing was lost, and since when nobody
 * watched the agents.
 *
 * Returns: %TRUE on success
 */
gboolean
hb_state_flush (HbState *state,
                GError **error)
{
  HbState *self = state;
  Batch *batch;

  g_return_val_if_fail (HB_IS_STATE (state), FALSE);

  if (self->db == NULL)
    return TRUE;
  /* the batch in flight first, with its waiters */
  while (self->in_flight != NULL)
    g_main_context_iteration (self->context, TRUE);
  batch = cut (self, TRUE, G_MAXUINT);
  batch->clean = 1;
  batch->alive_at = heartbeat_monitor_get_realtime (self->monitor);
  batch->durable = TRUE;
  return run_batch_now (self, batch, error);
}

/**
 * hb_state_save_soon:
 * @state: a #HbState
 *
 * Writes everything pending, activity included, without waiting (on
 * reload).
 */
void
hb_state_save_soon (HbState *state)
{
  g_return_if_fail (HB_IS_STATE (state));
  start_batch (state, TRUE);
}

/**
 * hb_state_set_sync_interval:
 * @state: a #HbState
 * @usec: how often the activity of agents that beat is saved, in µs
 *
 * Beats are saved this often, at most; a change of anything else at once.
 */
void
hb_state_set_sync_interval (HbState *state,
                            gint64   usec)
{
  g_return_if_fail (HB_IS_STATE (state));
  g_return_if_fail (usec > 0);

  if (state->sync_interval == usec)
    return;
  state->sync_interval = usec;
  if (state->lazy_id != 0)
    {
      g_clear_handle_id (&state->lazy_id, g_source_remove);
      arm_lazy (state);
    }
}

/**
 * hb_state_set_alive_interval:
 * @state: a #HbState
 * @usec: how often the daemon notes that it is alive, in µs (default: a
 *   minute); whole seconds, at least one
 *
 * After a kill -9, the next start marks the agents unmonitored from up to
 * this long before the daemon died (for tests: the default is right).
 */
void
hb_state_set_alive_interval (HbState *state,
                             gint64   usec)
{
  g_return_if_fail (HB_IS_STATE (state));
  g_return_if_fail (usec > 0);

  if (state->alive_interval == usec)
    return;
  state->alive_interval = usec;
  if (state->alive_id != 0)
    arm_alive (state);
}

/**
 * hb_state_get_path:
 * @state: a #HbState
 *
 * Returns: the database's path
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
 * Returns: how many transactions were committed (for tests)
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
 * Returns: (transfer full): a new #HbState, following @monitor
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
  self->path = g_build_filename (directory, DB_FILE, NULL);
  self->json_path = g_build_filename (directory, JSON_FILE, NULL);
  heartbeat_monitor_set_store (monitor, &store_funcs, self, NULL);
  self->run_handler = g_signal_connect (monitor, "agent-run", G_CALLBACK (on_agent_run), self);
  return self;
}

static void
hb_state_dispose (GObject *object)
{
  HbState *self = HB_STATE (object);

  g_clear_handle_id (&self->cut_id, g_source_remove);
  g_clear_handle_id (&self->lazy_id, g_source_remove);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  g_clear_handle_id (&self->alive_id, g_source_remove);
  if (self->monitor)
    {
      heartbeat_monitor_set_store (self->monitor, NULL, NULL, NULL);
      g_clear_signal_handler (&self->run_handler, self->monitor);
    }
  g_clear_object (&self->monitor);

  G_OBJECT_CLASS (hb_state_parent_class)->dispose (object);
}

static void
hb_state_finalize (GObject *object)
{
  HbState *self = HB_STATE (object);
  Waiter *waiter;

  /* no asynchronous batch is left: each holds a reference */
  g_thread_pool_free (self->writer, FALSE, TRUE);
  while ((waiter = g_queue_pop_head (&self->waiters)) != NULL)
    {
      g_task_return_new_error (waiter->task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "The store was closed");
      g_object_unref (waiter->task);
      g_free (waiter);
    }
  for (guint i = 0; i < N_STMTS; i++)
    g_clear_pointer (&self->stmts[i], sqlite3_finalize);
  g_clear_pointer (&self->db, sqlite3_close);
  g_hash_table_unref (self->urgent);
  g_hash_table_unref (self->lazy);
  g_hash_table_unref (self->backfill);
  g_hash_table_unref (self->saved_runs);
  g_mutex_clear (&self->writer_lock);
  g_cond_clear (&self->writer_cond);
  g_main_context_unref (self->context);
  g_free (self->directory);
  g_free (self->path);
  g_free (self->json_path);
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
   * How many transactions were committed: a test waits for its
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
  self->main_thread = g_thread_self ();
  self->sync_interval = DEFAULT_SYNC_INTERVAL;
  self->alive_interval = DEFAULT_ALIVE_INTERVAL;
  self->urgent = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->lazy = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->backfill = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->saved_runs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, saved_runs_free);
  g_queue_init (&self->waiters);
  /* at most one thread, so transactions keep their order; from GLib's
   * shared threads, so a state that is freed leaves no thread to tear down */
  self->writer = g_thread_pool_new (batch_run, self, 1, FALSE, NULL);
  g_mutex_init (&self->writer_lock);
  g_cond_init (&self->writer_cond);
  self->lock_fd = -1;
}
