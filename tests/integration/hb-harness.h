/* hb-harness.h: a private bus, a heartbeatd under test, and what they say
 *
 * The integration tests run the built heartbeatd (path in $HEARTBEATD)
 * against a private dbus-daemon started from a generated configuration,
 * with $NOTIFY_SOCKET pointing at a datagram socket the test owns. Every
 * process the harness starts is known by its PID, stopped by it in
 * hb_harness_free(), and killed by the kernel (PR_SET_PDEATHSIG) should the
 * test process die on a failed assertion before its teardown runs.
 *
 * Nothing here sleeps: every wait runs the main loop until what it waits
 * for has happened (a D-Bus signal, a notify message, a child's exit), and
 * fails the test when a bounded timeout fires first.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define HB_NAME         "org.heartbeat.Monitor1"
#define HB_PATH         "/org/heartbeat/Monitor1"
#define HB_IFACE        "org.heartbeat.Monitor1"
#define HB_ERROR_PREFIX "org.heartbeat.Monitor1.Error."
#define HB_MANAGE_ACTION "org.heartbeat.monitor1.manage"

#define HB_NOBODY_UID   65534

/* How long any single wait may take before the test fails. Generous (a
 * loaded CI, an ASan build, stress-ng beside it): the
 * waits end as soon as their event happens, so this only bounds failures. */
#define HB_WAIT_MS      15000

typedef enum {
  HB_BUS_SESSION,   /* permissive, like the brief's session bus */
  HB_BUS_SYSTEM,    /* Debian's system.conf rules plus the repo's bus policy */
} HbBusKind;

/* A process the harness started. */
typedef struct {
  char    *name;       /* for messages */
  GPid     pid;
  gboolean exited;
  int      wait_status;
  guint    watch_id;
} HbChild;

/* A D-Bus signal as the client connection's worker thread received it. */
typedef struct {
  char     *sender;
  char     *path;
  char     *interface;
  char     *member;
  GVariant *parameters;
  gint64    realtime;   /* g_get_real_time () on receipt */
  gint64    monotonic;
} HbSignal;

/* One sd_notify datagram. */
typedef struct {
  char  *text;
  gint64 realtime;
  gint64 monotonic;
} HbNotifyMessage;

typedef struct {
  char            *tmpdir;
  char            *state_dir;
  char            *config_path;

  /* the bus */
  HbBusKind        bus_kind;
  char            *bus_extra_config; /* appended to the bus's <busconfig>, or NULL */
  HbChild         *bus;
  char            *bus_address;
  GDBusConnection *client;        /* root, the test process */
  guint            filter_id;
  GMutex           lock;
  GPtrArray       *signals;       /* HbSignal, under lock */

  /* sd_notify */
  char            *notify_path;
  GSocket         *notify_socket;
  GSource         *notify_source;
  GPtrArray       *notify;        /* HbNotifyMessage */

  /* the daemon under test (the latest one started) */
  HbChild         *daemon;
  guint            ready_index;   /* the READY=1 message of its start */
  guint32          ready_owner_pid; /* pid owning HB_NAME when READY=1 arrived */

  /* --http-port of the daemons it starts: 0 (no HTTP) unless a test sets it */
  guint16          http_port;

  /* the rest: polkit mock, sleeps, older daemons */
  GPtrArray       *children;      /* HbChild, all of them, owned */
} HbHarness;

typedef gboolean (*HbCheck) (HbHarness *h, gpointer data);

HbHarness  *hb_harness_new               (void);
void        hb_harness_free              (HbHarness  *h);

/* Returns FALSE (test skipped) if dbus-daemon is missing. */
gboolean    hb_harness_start_bus         (HbHarness  *h,
                                          HbBusKind   kind);
void        hb_harness_stop_bus          (HbHarness  *h);

/* The default test configuration (short thresholds, agents-per-uid=3). */
extern const char hb_default_config[];
#define HB_DEFAULT_STALE_USEC      G_GUINT64_CONSTANT (5000000)
#define HB_DEFAULT_TIMEOUT_USEC    G_GUINT64_CONSTANT (600000000)
#define HB_DEFAULT_CHECK_USEC      G_GUINT64_CONSTANT (200000)
#define HB_DEFAULT_QUOTA           3

void        hb_harness_write_config      (HbHarness  *h,
                                          const char *text);

/* Spawns heartbeatd on the harness bus (--session or --system), with
 * @watchdog_usec in $WATCHDOG_USEC if non-zero. Does not wait. */
HbChild    *hb_harness_spawn_daemon      (HbHarness  *h,
                                          const char *state_dir,
                                          guint64     watchdog_usec);
/* Spawns it and waits for READY=1; records who owned HB_NAME then. */
void        hb_harness_start_daemon      (HbHarness  *h,
                                          guint64     watchdog_usec);
/* Bus + default config + daemon. Returns FALSE if skipped. */
gboolean    hb_harness_start_default     (HbHarness  *h);

void        hb_harness_signal_daemon     (HbHarness  *h,
                                          int         signum);
/* Waits (bounded) for @child to exit; returns its wait status. */
int         hb_harness_wait_exit         (HbHarness  *h,
                                          HbChild    *child,
                                          guint       timeout_ms);
/* SIGTERM, bounded wait, then SIGKILL and a bounded wait. */
void        hb_harness_stop_child        (HbHarness  *h,
                                          HbChild    *child);

/* Starts @argv (NULL-terminated) with the harness bus as session bus. */
HbChild    *hb_harness_spawn             (HbHarness  *h,
                                          const char *const *argv);

/* Runs the main loop for @ms, as an observation window (never used to
 * wait for a deadline of the daemon). */
void        hb_harness_run_for           (HbHarness  *h,
                                          guint       ms);

/* Starts python-dbusmock's polkitd template on the harness bus (with
 * /usr/bin/python3) and waits until it owns org.freedesktop.PolicyKit1.
 * Returns NULL (test skipped) if python3-dbusmock is missing. */
HbChild    *hb_harness_start_polkit_mock (HbHarness  *h);

/* Waits (bounded) until @check says yes, asking again every 20 ms. */
void        hb_harness_wait_until        (HbHarness  *h,
                                          HbCheck     check,
                                          gpointer    data);

/* Waits (bounded) until @name has an owner on the bus. */
void        hb_harness_wait_name_owned   (HbHarness  *h,
                                          const char *name);

/* ---- D-Bus calls ---------------------------------------------------- */

/* Calls @method of HB_IFACE on @connection (NULL: the root client).
 * Returns the reply, or NULL with @error set. */
GVariant   *hb_harness_call              (HbHarness       *h,
                                          GDBusConnection *connection,
                                          const char      *method,
                                          GVariant        *parameters,
                                          const char      *reply_type,
                                          GError         **error);

GVariant   *hb_harness_call_ok_impl      (HbHarness       *h,
                                          GDBusConnection *connection,
                                          const char      *method,
                                          GVariant        *parameters,
                                          const char      *reply_type,
                                          const char      *file,
                                          int              line,
                                          const char      *func);
#define hb_call_ok(h, conn, method, params, reply_type) \
  hb_harness_call_ok_impl ((h), (conn), (method), (params), (reply_type), __FILE__, __LINE__, G_STRFUNC)

void        hb_harness_call_error_impl   (HbHarness       *h,
                                          GDBusConnection *connection,
                                          const char      *method,
                                          GVariant        *parameters,
                                          const char      *error_name,
                                          const char      *file,
                                          int              line,
                                          const char      *func);
/* Asserts the call fails with the remote error @error_name (a full name,
 * or a short one such as "NotFound" under HB_ERROR_PREFIX). */
#define hb_call_error(h, conn, method, params, error_name) \
  hb_harness_call_error_impl ((h), (conn), (method), (params), (error_name), __FILE__, __LINE__, G_STRFUNC)

/* The unique name that owns @name now, or NULL (newly allocated). */
char       *hb_harness_name_owner        (HbHarness  *h,
                                          const char *name);
/* GetAgent(id), asserted to succeed: the a{sv}. */
GVariant   *hb_harness_get_agent         (HbHarness  *h,
                                          const char *id);
char       *hb_harness_saved_agents     (HbHarness   *h);
/* A property of HB_IFACE, read with Properties.Get. */
GVariant   *hb_harness_get_property      (HbHarness  *h,
                                          const char *name);

/* A loopback TCP port nobody listens on right now (bind 0, read, close). */
guint16     hb_free_port                 (void);

/* A second, private connection to the harness bus (as root). */
GDBusConnection *hb_harness_connect      (HbHarness  *h);

/* Runs `setpriv --reuid=65534 … gdbus call --address ADDR …` with @args
 * after `call --address ADDR --timeout 10` (NULL-terminated); returns its
 * exit status, 0 for a successful call. Skips if setpriv or gdbus is
 * missing (returns -1 then). */
int         hb_harness_run_as_nobody     (HbHarness  *h,
                                          char      **out_stdout,
                                          char      **out_stderr,
                                          const char *const *args);
/* The common case: a method of HB_IFACE on HB_PATH at HB_NAME. */
int         hb_harness_nobody_call       (HbHarness  *h,
                                          char      **out_stderr,
                                          const char *method,
                                          ...) G_GNUC_NULL_TERMINATED;

/* ---- What happened -------------------------------------------------- */

/* The number of signals recorded so far: a cursor for the waits below. */
guint       hb_harness_signal_cursor     (HbHarness  *h);

/* Waits for the first signal at or after *cursor named @member whose
 * string arguments 0..2 equal @arg0..@arg2 (NULL matches anything), and
 * moves *cursor past it. The returned signal is owned by the harness. */
const HbSignal *hb_harness_wait_signal_impl (HbHarness  *h,
                                             guint      *cursor,
                                             const char *member,
                                             const char *arg0,
                                             const char *arg1,
                                             const char *arg2,
                                             guint       timeout_ms,
                                             const char *file,
                                             int         line,
                                             const char *func);
#define hb_wait_signal(h, cursor, member, arg0, arg1, arg2) \
  hb_harness_wait_signal_impl ((h), (cursor), (member), (arg0), (arg1), (arg2), HB_WAIT_MS, \
                               __FILE__, __LINE__, G_STRFUNC)

/* Like hb_harness_wait_signal_impl() without waiting: the first recorded
 * match at or after @from, or NULL. */
const HbSignal *hb_harness_find_signal   (HbHarness  *h,
                                          guint       from,
                                          const char *member,
                                          const char *arg0,
                                          const char *arg1,
                                          const char *arg2,
                                          guint      *out_index);

/* Waits for PropertiesChanged of HB_IFACE carrying @property; returns its
 * new value (full reference). */
GVariant   *hb_harness_wait_property_impl (HbHarness  *h,
                                           guint      *cursor,
                                           const char *property,
                                           const char *file,
                                           int         line,
                                           const char *func);
#define hb_wait_property(h, cursor, property) \
  hb_harness_wait_property_impl ((h), (cursor), (property), __FILE__, __LINE__, G_STRFUNC)

guint       hb_harness_notify_cursor     (HbHarness  *h);
/* Stops (FALSE) or resumes (TRUE) reading the notify socket, as a service
 * manager that does not keep up; the daemon's datagrams queue up meanwhile. */
void        hb_harness_read_notify       (HbHarness  *h,
                                          gboolean    read);
/* Waits for the first notify message at or after *cursor with a line
 * equal to @line (or starting with it, if @line ends in '='), and moves
 * *cursor past it. */
const HbNotifyMessage *hb_harness_wait_notify_impl (HbHarness  *h,
                                                    guint      *cursor,
                                                    const char *line,
                                                    const char *file,
                                                    int         line_no,
                                                    const char *func);
#define hb_wait_notify(h, cursor, line) \
  hb_harness_wait_notify_impl ((h), (cursor), (line), __FILE__, __LINE__, G_STRFUNC)
/* The value of the line starting with @prefix in @message, or NULL. */
const char *hb_notify_message_get        (const HbNotifyMessage *message,
                                          const char            *prefix,
                                          char                 **value);

/* ---- Dictionaries --------------------------------------------------- */

const char *hb_dict_string               (GVariant   *dict,
                                          const char *key);
guint64     hb_dict_uint64               (GVariant   *dict,
                                          const char *key);
guint32     hb_dict_uint32               (GVariant   *dict,
                                          const char *key);
gboolean    hb_dict_boolean              (GVariant   *dict,
                                          const char *key);
/* The value under @key, asserted present with type @type (full ref). */
GVariant   *hb_dict_value                (GVariant   *dict,
                                          const char *key,
                                          const char *type);
/* Asserts two a{sv} hold the same keys and values, in any order, ignoring
 * the keys in @ignore (NULL-terminated, may be NULL). */
void        hb_assert_dict_equal         (GVariant   *expected,
                                          GVariant   *actual,
                                          const char *const *ignore);

/* ---- HTTP answers against the OpenAPI document ------------------------ */

/* While $HB_HTTP_RECORDS names a file, each call appends one JSON line to
 * it: an HTTP answer (@body NULL: not read; @body_length -1: NUL-ended)
 * with the request body that led to it, or an event of a /v1/events
 * stream. Exact repeats are written once, and at most 500 events of one
 * name. tests/openapi/validate-records.py checks them against
 * data/openapi/heartbeatd.yaml (hb_http_records_check()). */
void        hb_http_record_answer        (const char *method,
                                          const char *path,
                                          guint       status,
                                          const char *content_type,
                                          const char *body,
                                          gssize      body_length,
                                          const char *request_content_type,
                                          const char *request_body,
                                          gssize      request_length);
void        hb_http_record_event         (const char *event,
                                          const char *data);
/* Validates the records in @path (if it exists) with $HB_PYTHON3 (else
 * /usr/bin/python3, else python3) and asserts that every one matches the
 * document. With $HB_HTTP_RECORDS_DIR, a copy is kept there, named after
 * the test case. */
void        hb_http_records_check        (const char *path);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (HbHarness, hb_harness_free)

G_END_DECLS
