/* test-monitor.c: unit tests of HeartbeatMonitor and HeartbeatAgent
 *
 * Every test drives time explicitly: the fixture installs a fake monotonic
 * clock (Fixture.now) and calls heartbeat_monitor_run_checks() at chosen
 * moments. Signal emissions are recorded and compared as whole sequences.
 * The only test that uses the real clock waits on a signal with a bounded
 * main loop, never sleeps.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <math.h>
#include <string.h>

#include <gio/gio.h>

#include "heartbeat-monitor.h"
#include "heartbeat-enums.h"

#define SECONDS(s) ((gint64) (s) * G_USEC_PER_SEC)
#define MINUTES(m) (SECONDS (m) * 60)
#define HOURS(h)   (MINUTES (h) * 60)

/* Fake time starts well away from zero, so that "0" is never mistaken for
 * a time that was set. */
#define T0 SECONDS (1000)

/* ------------------------------------------------------------------ */
/* Recorder */

typedef enum {
  EV_REGISTERED,
  EV_UNREGISTERED,
  EV_STALE,
  EV_TIMED_OUT,
  EV_RECOVERED,
  EV_STATE_CHANGED,
} EventKind;

typedef struct {
  EventKind           kind;
  char               *id;
  gint64              now;       /* the fixture's time when emitted */
  gint64              usec;      /* idle_usec / running_usec */
  HeartbeatAgentState old_state;
  HeartbeatAgentState new_state;
  HeartbeatUnregisterReason reason;
  HeartbeatAgentState state;     /* the agent's state during the emission */
} Event;

/* What a test expects: the same fields, minus the bookkeeping. */
typedef struct {
  EventKind           kind;
  const char         *id;
  gint64              usec;
  HeartbeatAgentState old_state;
  HeartbeatAgentState new_state;
  HeartbeatUnregisterReason reason;
} Expected;

#define REGISTERED(i)        { .kind = EV_REGISTERED, .id = (i) }
#define UNREGISTERED(i, r)   { .kind = EV_UNREGISTERED, .id = (i), .reason = HEARTBEAT_UNREGISTER_REASON_##r }
#define STALE(i, u)          { .kind = EV_STALE, .id = (i), .usec = (u) }
#define TIMED_OUT(i, u)      { .kind = EV_TIMED_OUT, .id = (i), .usec = (u) }
#define RECOVERED(i)         { .kind = EV_RECOVERED, .id = (i) }
#define STATE(i, o, n)       { .kind = EV_STATE_CHANGED, .id = (i), \
                               .old_state = HEARTBEAT_AGENT_STATE_##o, \
                               .new_state = HEARTBEAT_AGENT_STATE_##n }

typedef struct {
  GMainContext     *context;
  HeartbeatMonitor *monitor;
  gint64            now;
  gboolean          use_real_clock;
  GArray           *events;      /* of Event */
  guint             seen;        /* events already checked by expect_events() */
  guint             notify_running;
} Fixture;

/* Local names, so that a broken heartbeat_agent_state_to_string() does not
 * garble every failure message. */
static const char *
state_name (HeartbeatAgentState state)
{
  static const char *const names[] = {
    "healthy", "stale", "timed-out", "error", "gone", "no-heartbeat", "paused",
  };

  if ((guint) state < G_N_ELEMENTS (names))
    return names[state];
  return "?";
}

static const char *
reason_name (HeartbeatUnregisterReason reason)
{
  static const char *const names[] = { "unregistered", "timed-out", "gone" };

  if ((guint) reason < G_N_ELEMENTS (names))
    return names[reason];
  return "?";
}

static void
append_event_string (GString                  *out,
                     EventKind                 kind,
                     const char               *id,
                     gint64                    usec,
                     HeartbeatAgentState       old_state,
                     HeartbeatAgentState       new_state,
                     HeartbeatUnregisterReason reason)
{
  if (out->len > 0)
    g_string_append (out, "\n");
  switch (kind)
    {
    case EV_REGISTERED:
      g_string_append_printf (out, "registered(%s)", id);
      break;
    case EV_UNREGISTERED:
      g_string_append_printf (out, "unregistered(%s, %s)", id, reason_name (reason));
      break;
    case EV_STALE:
      g_string_append_printf (out, "stale(%s, %" G_GINT64_FORMAT ")", id, usec);
      break;
    case EV_TIMED_OUT:
      g_string_append_printf (out, "timed-out(%s, %" G_GINT64_FORMAT ")", id, usec);
      break;
    case EV_RECOVERED:
      g_string_append_printf (out, "recovered(%s)", id);
      break;
    case EV_STATE_CHANGED:
      g_string_append_printf (out, "state(%s, %s -> %s)", id,
                              state_name (old_state), state_name (new_state));
      break;
    default:
      g_assert_not_reached ();
    }
}

static void
event_clear (gpointer data)
{
  Event *event = data;

  g_free (event->id);
}

static Event *
record (Fixture        *f,
        EventKind       kind,
        HeartbeatAgent *agent)
{
  Event event = { 0 };

  event.kind = kind;
  event.id = g_strdup (heartbeat_agent_get_id (agent));
  event.now = f->now;
  event.state = heartbeat_agent_get_state (agent);
  g_array_append_val (f->events, event);
  return &g_array_index (f->events, Event, f->events->len - 1);
}

static void
on_registered (HeartbeatMonitor *monitor,
               HeartbeatAgent   *agent,
               gpointer          user_data)
{
  record (user_data, EV_REGISTERED, agent);
}

static void
on_unregistered (HeartbeatMonitor         *monitor,
                 HeartbeatAgent           *agent,
                 HeartbeatUnregisterReason reason,
                 gpointer                  user_data)
{
  record (user_data, EV_UNREGISTERED, agent)->reason = reason;
}

static void
on_stale (HeartbeatMonitor *monitor,
          HeartbeatAgent   *agent,
          gint64            idle_usec,
          gpointer          user_data)
{
  record (user_data, EV_STALE, agent)->usec = idle_usec;
}

static void
on_timed_out (HeartbeatMonitor *monitor,
              HeartbeatAgent   *agent,
              gint64            running_usec,
              gpointer          user_data)
{
  record (user_data, EV_TIMED_OUT, agent)->usec = running_usec;
}

static void
on_recovered (HeartbeatMonitor *monitor,
              HeartbeatAgent   *agent,
              gpointer          user_data)
{
  record (user_data, EV_RECOVERED, agent);
}

static void
on_state_changed (HeartbeatMonitor   *monitor,
                  HeartbeatAgent     *agent,
                  HeartbeatAgentState old_state,
                  HeartbeatAgentState new_state,
                  gpointer            user_data)
{
  Event *event = record (user_data, EV_STATE_CHANGED, agent);

  event->old_state = old_state;
  event->new_state = new_state;
}

static void
on_notify_running (GObject    *object,
                   GParamSpec *pspec,
                   gpointer    user_data)
{
  Fixture *f = user_data;

  f->notify_running++;
}

static void
connect_recorder (Fixture          *f,
                  HeartbeatMonitor *monitor)
{
  g_signal_connect (monitor, "agent-registered", G_CALLBACK (on_registered), f);
  g_signal_connect (monitor, "agent-unregistered", G_CALLBACK (on_unregistered), f);
  g_signal_connect (monitor, "agent-stale", G_CALLBACK (on_stale), f);
  g_signal_connect (monitor, "agent-timed-out", G_CALLBACK (on_timed_out), f);
  g_signal_connect (monitor, "agent-recovered", G_CALLBACK (on_recovered), f);
  g_signal_connect (monitor, "agent-state-changed", G_CALLBACK (on_state_changed), f);
  g_signal_connect (monitor, "notify::running", G_CALLBACK (on_notify_running), f);
}

/* Asserts that the events recorded since the last call are exactly
 * @expected, in order, all emitted at the fixture's current time. */
static void
expect_events_full (Fixture        *f,
                    gboolean        fatal,
                    const Expected *expected,
                    gsize           n_expected,
                    const char     *where)
{
  g_autoptr(GString) want = g_string_new (NULL);
  g_autoptr(GString) got = g_string_new (NULL);

  for (gsize i = 0; i < n_expected; i++)
    append_event_string (want, expected[i].kind, expected[i].id, expected[i].usec,
                         expected[i].old_state, expected[i].new_state,
                         expected[i].reason);
  for (guint i = f->seen; i < f->events->len; i++)
    {
      const Event *e = &g_array_index (f->events, Event, i);

      append_event_string (got, e->kind, e->id, e->usec,
                           e->old_state, e->new_state, e->reason);
    }

  if (!g_str_equal (want->str, got->str))
    {
      if (fatal)
        g_error ("%s: unexpected signal emissions\n--- expected:\n%s\n--- got:\n%s",
                 where, want->str, got->str);
      /* One line, for TAP. */
      g_string_replace (want, "\n", "; ", 0);
      g_string_replace (got, "\n", "; ", 0);
      g_test_fail_printf ("%s: unexpected signal emissions: expected [%s], got [%s]",
                          where, want->str, got->str);
      f->seen = f->events->len;
      return;
    }

  for (guint i = f->seen; i < f->events->len; i++)
    g_assert_cmpint (g_array_index (f->events, Event, i).now, ==, f->now);

  f->seen = f->events->len;
}

#define expect_events(f, ...) G_STMT_START {                            \
    const Expected expected_[] = { __VA_ARGS__ };                       \
    expect_events_full ((f), TRUE, expected_, G_N_ELEMENTS (expected_), G_STRLOC); \
  } G_STMT_END

/* For a last assertion: the test is marked failed and the others still run. */
#define expect_events_nonfatal(f, ...) G_STMT_START {                   \
    const Expected expected_[] = { __VA_ARGS__ };                       \
    expect_events_full ((f), FALSE, expected_, G_N_ELEMENTS (expected_), G_STRLOC); \
  } G_STMT_END

#define expect_no_events(f) expect_events_full ((f), TRUE, NULL, 0, G_STRLOC)

/* ------------------------------------------------------------------ */
/* Fixture */

static gint64
fake_clock (gpointer user_data)
{
  Fixture *f = user_data;

  return f->use_real_clock ? g_get_monotonic_time () : f->now;
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  f->context = g_main_context_new ();
  g_main_context_push_thread_default (f->context);

  f->now = T0;
  f->events = g_array_new (FALSE, TRUE, sizeof (Event));
  g_array_set_clear_func (f->events, event_clear);

  f->monitor = heartbeat_monitor_new ();
  g_assert_true (HEARTBEAT_IS_MONITOR (f->monitor));
  heartbeat_monitor_set_clock (f->monitor, fake_clock, f);
  connect_recorder (f, f->monitor);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  if (heartbeat_monitor_get_running (f->monitor))
    heartbeat_monitor_stop (f->monitor);

  /* Nothing (a source, an agent, a closure) may keep the monitor alive. */
  g_object_add_weak_pointer (G_OBJECT (f->monitor), (gpointer *) &f->monitor);
  g_object_unref (f->monitor);
  g_assert_null (f->monitor);

  g_array_unref (f->events);
  g_main_context_pop_thread_default (f->context);
  g_main_context_unref (f->context);
}

#define ADD_TEST(path, func) \
  g_test_add ((path), Fixture, NULL, fixture_setup, (func), fixture_teardown)

/* ------------------------------------------------------------------ */
/* Helpers */

static void
advance_to (Fixture *f,
            gint64   t)
{
  g_assert_cmpint (t, >=, f->now);
  f->now = t;
  g_assert_cmpint (heartbeat_monitor_get_time (f->monitor), ==, t);
}

static void
check_at (Fixture *f,
          gint64   t)
{
  advance_to (f, t);
  heartbeat_monitor_run_checks (f->monitor, t);
}

static HeartbeatAgent *
register_with (Fixture                     *f,
               const char                  *id,
               const HeartbeatAgentOptions *options)
{
  g_autoptr(GError) error = NULL;
  HeartbeatAgent *agent;

  agent = heartbeat_monitor_register (f->monitor, id, options, &error);
  g_assert_no_error (error);
  g_assert_nonnull (agent);
  g_assert_true (heartbeat_monitor_lookup (f->monitor, id) == agent);
  return agent;
}

static HeartbeatAgent *
register_agent (Fixture    *f,
                const char *id,
                gint64      stale_after,
                gint64      timeout_after)
{
  HeartbeatAgentOptions options = { 0 };

  options.stale_after_usec = stale_after;
  options.timeout_after_usec = timeout_after;
  return register_with (f, id, &options);
}

static HeartbeatAgent *
declare_agent (Fixture    *f,
               const char *id,
               gint64      stale_after,
               gint64      timeout_after)
{
  g_autoptr(GError) error = NULL;
  HeartbeatAgentOptions options = { 0 };
  HeartbeatAgent *agent;

  options.stale_after_usec = stale_after;
  options.timeout_after_usec = timeout_after;
  agent = heartbeat_monitor_declare (f->monitor, id, &options, &error);
  g_assert_no_error (error);
  g_assert_nonnull (agent);
  g_assert_true (heartbeat_monitor_lookup (f->monitor, id) == agent);
  return agent;
}

static void
beat_status (Fixture    *f,
             const char *id,
             const char *status)
{
  g_autoptr(GError) error = NULL;
  HeartbeatBeatDetails details = { 0 };

  details.status = status;
  g_assert_true (heartbeat_monitor_beat (f->monitor, id, &details, &error));
  g_assert_no_error (error);
}

static void
beat (Fixture    *f,
      const char *id)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (heartbeat_monitor_beat (f->monitor, id, NULL, &error));
  g_assert_no_error (error);
}

static void
mark_idle (Fixture    *f,
           const char *id)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (heartbeat_monitor_mark_idle (f->monitor, id, &error));
  g_assert_no_error (error);
}

static void
mark_gone (Fixture    *f,
           const char *id)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (heartbeat_monitor_mark_gone (f->monitor, id, &error));
  g_assert_no_error (error);
}

static void
unregister (Fixture    *f,
            const char *id)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (heartbeat_monitor_unregister (f->monitor, id, &error));
  g_assert_no_error (error);
}

static HeartbeatAgentState
state_of (Fixture    *f,
          const char *id)
{
  HeartbeatAgent *agent = heartbeat_monitor_lookup (f->monitor, id);

  g_assert_nonnull (agent);
  return heartbeat_agent_get_state (agent);
}

/* A new (non-floating) a{sv} from key, value pairs, NULL-terminated; the
 * values may be floating. */
static GVariant *
dict_new (const char *first_key,
          ...)
{
  GVariantDict dict;
  va_list args;

  g_variant_dict_init (&dict, NULL);
  va_start (args, first_key);
  for (const char *key = first_key; key != NULL; key = va_arg (args, const char *))
    g_variant_dict_insert_value (&dict, key, va_arg (args, GVariant *));
  va_end (args);

  return g_variant_ref_sink (g_variant_dict_end (&dict));
}

/* The timeout g_main_context_query() computes for @context: -1 when no
 * source wants a wakeup. */
static gint
context_timeout (GMainContext *context)
{
  GPollFD fds[16];
  gint priority = 0;
  gint timeout = -2;

  g_assert_true (g_main_context_acquire (context));
  g_main_context_prepare (context, &priority);
  g_main_context_query (context, priority, &timeout, fds, G_N_ELEMENTS (fds));
  g_main_context_release (context);
  g_assert_cmpint (timeout, >=, -1);
  return timeout;
}

/* ------------------------------------------------------------------ */
/* Defaults and properties */

static void
test_properties_defaults (Fixture       *f,
                          gconstpointer  data)
{
  gint64 check_interval = 0, stale = 0, timeout = 0;
  gboolean only_once = FALSE, running = TRUE;
  GParamSpec *pspec;

  g_object_get (f->monitor,
                "check-interval", &check_interval,
                "stale-threshold", &stale,
                "timeout-threshold", &timeout,
                "stale-warning-only-once", &only_once,
                "running", &running,
                NULL);
  g_assert_cmpint (check_interval, ==, SECONDS (30));
  g_assert_cmpint (stale, ==, MINUTES (5));
  g_assert_cmpint (timeout, ==, MINUTES (30));
  g_assert_true (only_once);
  g_assert_false (running);

  g_assert_cmpint (heartbeat_monitor_get_check_interval (f->monitor), ==, SECONDS (30));
  g_assert_cmpint (heartbeat_monitor_get_stale_threshold (f->monitor), ==, MINUTES (5));
  g_assert_cmpint (heartbeat_monitor_get_timeout_threshold (f->monitor), ==, MINUTES (30));
  g_assert_true (heartbeat_monitor_get_stale_warning_only_once (f->monitor));
  g_assert_false (heartbeat_monitor_get_running (f->monitor));
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (f->monitor), ==, 0);
  g_assert_cmpint (heartbeat_monitor_get_next_deadline (f->monitor), ==, HEARTBEAT_NO_DEADLINE);

  pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (f->monitor), "running");
  g_assert_nonnull (pspec);
  g_assert_true (G_PARAM_SPEC_VALUE_TYPE (pspec) == G_TYPE_BOOLEAN);
  g_assert_true (pspec->flags & G_PARAM_READABLE);
  g_assert_false (pspec->flags & G_PARAM_WRITABLE);

  for (guint i = 0; i < 3; i++)
    {
      const char *names[] = { "check-interval", "stale-threshold", "timeout-threshold" };

      pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (f->monitor), names[i]);
      g_assert_nonnull (pspec);
      g_assert_true (G_PARAM_SPEC_VALUE_TYPE (pspec) == G_TYPE_INT64);
      g_assert_true (pspec->flags & G_PARAM_WRITABLE);
    }
  pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (f->monitor), "stale-warning-only-once");
  g_assert_nonnull (pspec);
  g_assert_true (G_PARAM_SPEC_VALUE_TYPE (pspec) == G_TYPE_BOOLEAN);

  /* Properties and accessors are the same values. */
  g_object_set (f->monitor,
                "check-interval", (gint64) SECONDS (7),
                "stale-threshold", (gint64) SECONDS (70),
                "timeout-threshold", (gint64) SECONDS (700),
                "stale-warning-only-once", FALSE,
                NULL);
  g_assert_cmpint (heartbeat_monitor_get_check_interval (f->monitor), ==, SECONDS (7));
  g_assert_cmpint (heartbeat_monitor_get_stale_threshold (f->monitor), ==, SECONDS (70));
  g_assert_cmpint (heartbeat_monitor_get_timeout_threshold (f->monitor), ==, SECONDS (700));
  g_assert_false (heartbeat_monitor_get_stale_warning_only_once (f->monitor));

  heartbeat_monitor_set_check_interval (f->monitor, SECONDS (8));
  heartbeat_monitor_set_stale_threshold (f->monitor, SECONDS (80));
  heartbeat_monitor_set_timeout_threshold (f->monitor, SECONDS (800));
  heartbeat_monitor_set_stale_warning_only_once (f->monitor, TRUE);
  g_object_get (f->monitor,
                "check-interval", &check_interval,
                "stale-threshold", &stale,
                "timeout-threshold", &timeout,
                "stale-warning-only-once", &only_once,
                NULL);
  g_assert_cmpint (check_interval, ==, SECONDS (8));
  g_assert_cmpint (stale, ==, SECONDS (80));
  g_assert_cmpint (timeout, ==, SECONDS (800));
  g_assert_true (only_once);
  expect_no_events (f);
}

static void
test_clock_is_used (Fixture       *f,
                    gconstpointer  data)
{
  g_assert_cmpint (heartbeat_monitor_get_time (f->monitor), ==, T0);
  f->now = T0 + 12345;
  g_assert_cmpint (heartbeat_monitor_get_time (f->monitor), ==, T0 + 12345);
}

/* ------------------------------------------------------------------ */
/* Registration */

static void
test_register_creates_healthy_agent (Fixture       *f,
                                     gconstpointer  data)
{
  g_autoptr(GVariant) metadata = dict_new ("host", g_variant_new_string ("build-7"), NULL);
  HeartbeatAgentOptions options = { 0 };
  HeartbeatAgent *agent, *plain;
  const char *host = NULL;

  options.task_id = "compile libfoo";
  options.owner_uid = 1000;
  options.pid = 4242;
  options.metadata = metadata;
  options.bound_to = ":1.42";

  advance_to (f, T0 + SECONDS (3));
  agent = register_with (f, "builder-1", &options);
  expect_events (f, REGISTERED ("builder-1"));

  g_assert_cmpstr (heartbeat_agent_get_id (agent), ==, "builder-1");
  g_assert_cmpstr (heartbeat_agent_get_task_id (agent), ==, "compile libfoo");
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_HEALTHY);
  g_assert_cmpstr (heartbeat_agent_get_status (agent), ==, "running");
  g_assert_cmpuint (heartbeat_agent_get_owner_uid (agent), ==, 1000);
  g_assert_cmpint (heartbeat_agent_get_pid (agent), ==, 4242);
  g_assert_cmpstr (heartbeat_agent_get_bound_to (agent), ==, ":1.42");
  g_assert_cmpuint (heartbeat_agent_get_beats (agent), ==, 0);
  g_assert_cmpint (heartbeat_agent_get_started_at (agent), ==, T0 + SECONDS (3));
  g_assert_cmpint (heartbeat_agent_get_last_activity_at (agent), ==, T0 + SECONDS (3));
  g_assert_cmpint (heartbeat_agent_get_stale_after (agent), ==, MINUTES (5));
  /* bound to its bus peer: a service, which has no run timeout */
  g_assert_true (heartbeat_agent_is_service (agent));
  g_assert_cmpint (heartbeat_agent_get_timeout_after (agent), ==, 0);
  g_assert_false (heartbeat_agent_is_idle (agent));
  g_assert_false (heartbeat_agent_is_declared (agent));
  g_assert_false (heartbeat_agent_get_progress (agent, NULL));
  g_assert_nonnull (heartbeat_agent_get_metadata (agent));
  g_assert_true (g_variant_is_of_type (heartbeat_agent_get_metadata (agent), G_VARIANT_TYPE_VARDICT));
  g_assert_true (g_variant_lookup (heartbeat_agent_get_metadata (agent), "host", "&s", &host));
  g_assert_cmpstr (host, ==, "build-7");

  g_assert_cmpuint (heartbeat_monitor_get_n_agents (f->monitor), ==, 1);
  g_assert_cmpint (heartbeat_monitor_get_next_deadline (f->monitor), ==, T0 + SECONDS (3) + MINUTES (5));
  g_assert_null (heartbeat_monitor_lookup (f->monitor, "builder-2"));

  /* NULL options: every default, no task, nobody's. */
  plain = register_with (f, "plain", NULL);
  expect_events (f, REGISTERED ("plain"));
  g_assert_null (heartbeat_agent_get_task_id (plain));
  g_assert_null (heartbeat_agent_get_bound_to (plain));
  g_assert_cmpuint (heartbeat_agent_get_owner_uid (plain), ==, 0);
  g_assert_cmpint (heartbeat_agent_get_pid (plain), ==, 0);
  g_assert_cmpint (heartbeat_agent_get_stale_after (plain), ==, MINUTES (5));
  g_assert_cmpint (heartbeat_agent_get_timeout_after (plain), ==, MINUTES (30));
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (f->monitor), ==, 2);
}

static void
test_register_again_restarts_in_place (Fixture       *f,
                                       gconstpointer  data)
{
  HeartbeatAgentOptions options = { 0 };
  HeartbeatAgent *agent, *again;

  options.task_id = "t1";
  options.owner_uid = 1000;
  options.stale_after_usec = SECONDS (10);
  options.timeout_after_usec = HOURS (1);
  agent = register_with (f, "job", &options);
  expect_events (f, REGISTERED ("job"));

  advance_to (f, T0 + SECONDS (1));
  beat (f, "job");
  advance_to (f, T0 + SECONDS (2));
  beat (f, "job");
  g_assert_cmpuint (heartbeat_agent_get_beats (agent), ==, 2);

  /* Healthy: re-registering only says registered. */
  advance_to (f, T0 + SECONDS (5));
  options.task_id = "t2";
  options.owner_uid = 1001;
  options.stale_after_usec = SECONDS (20);
  options.timeout_after_usec = HOURS (2);
  again = register_with (f, "job", &options);
  expect_events (f, REGISTERED ("job"));
  g_assert_true (again == agent);
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (f->monitor), ==, 1);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_HEALTHY);
  g_assert_cmpstr (heartbeat_agent_get_status (agent), ==, "running");
  g_assert_cmpint (heartbeat_agent_get_started_at (agent), ==, T0 + SECONDS (5));
  g_assert_cmpint (heartbeat_agent_get_last_activity_at (agent), ==, T0 + SECONDS (5));
  g_assert_cmpstr (heartbeat_agent_get_task_id (agent), ==, "t2");
  g_assert_cmpuint (heartbeat_agent_get_owner_uid (agent), ==, 1001);
  g_assert_cmpint (heartbeat_agent_get_stale_after (agent), ==, SECONDS (20));
  g_assert_cmpint (heartbeat_agent_get_timeout_after (agent), ==, HOURS (2));
  g_assert_cmpuint (heartbeat_monitor_count_owned_by (f->monitor, 1000), ==, 0);
  g_assert_cmpuint (heartbeat_monitor_count_owned_by (f->monitor, 1001), ==, 1);

  /* The old stale deadline (T0 + 12 s) is gone, the new one counts. */
  check_at (f, T0 + SECONDS (25) - 1);
  expect_no_events (f);
  check_at (f, T0 + SECONDS (25));
  expect_events (f, STATE ("job", HEALTHY, STALE), STALE ("job", SECONDS (20)));
}

static void
test_stale_reset_on_reregistration (Fixture       *f,
                                    gconstpointer  data)
{
  HeartbeatAgent *agent;

  agent = register_agent (f, "job", SECONDS (10), HOURS (1));
  expect_events (f, REGISTERED ("job"));

  check_at (f, T0 + SECONDS (10));
  expect_events (f, STATE ("job", HEALTHY, STALE), STALE ("job", SECONDS (10)));
  check_at (f, T0 + SECONDS (30));
  expect_no_events (f);

  /* Re-registering a stale agent ends its episode... */
  advance_to (f, T0 + SECONDS (31));
  g_assert_true (register_agent (f, "job", SECONDS (10), HOURS (1)) == agent);
  expect_events (f, STATE ("job", STALE, HEALTHY), REGISTERED ("job"));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_HEALTHY);
  g_assert_cmpint (heartbeat_agent_get_started_at (agent), ==, T0 + SECONDS (31));

  /* ...so the next quiet period warns again. */
  check_at (f, T0 + SECONDS (41) - 1);
  expect_no_events (f);
  check_at (f, T0 + SECONDS (41));
  expect_events (f, STATE ("job", HEALTHY, STALE), STALE ("job", SECONDS (10)));
  check_at (f, T0 + SECONDS (59));
  expect_no_events (f);
}

/* ------------------------------------------------------------------ */
/* Beats */

static void
test_beat_updates_activity (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(GVariant) initial = dict_new ("owner", g_variant_new_string ("me"),
                                          "n", g_variant_new_int32 (1),
                                          NULL);
  g_autoptr(GVariant) more = dict_new ("n", g_variant_new_int32 (2),
                                       "extra", g_variant_new_boolean (TRUE),
                                       NULL);
  HeartbeatAgentOptions options = { 0 };
  HeartbeatBeatDetails details = { 0 };
  g_autoptr(GError) error = NULL;
  HeartbeatAgent *agent;
  GVariant *metadata;
  const char *owner = NULL;
  gint32 n = 0;
  gboolean extra = FALSE;
  double progress = -1;

  options.metadata = initial;
  agent = register_with (f, "job", &options);
  expect_events (f, REGISTERED ("job"));

  advance_to (f, T0 + SECONDS (10));
  beat (f, "job");
  g_assert_cmpuint (heartbeat_agent_get_beats (agent), ==, 1);
  g_assert_cmpint (heartbeat_agent_get_last_activity_at (agent), ==, T0 + SECONDS (10));
  g_assert_cmpint (heartbeat_agent_get_started_at (agent), ==, T0);
  g_assert_cmpstr (heartbeat_agent_get_status (agent), ==, "running");
  g_assert_cmpint (heartbeat_agent_get_idle_usec (agent, T0 + SECONDS (15)), ==, SECONDS (5));
  g_assert_cmpint (heartbeat_agent_get_running_usec (agent, T0 + SECONDS (15)), ==, SECONDS (15));

  advance_to (f, T0 + SECONDS (30));
  details.status = "compiling";
  details.has_progress = TRUE;
  details.progress = 0.25;
  details.metadata = more;
  g_assert_true (heartbeat_monitor_beat (f->monitor, "job", &details, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (heartbeat_agent_get_beats (agent), ==, 2);
  g_assert_cmpint (heartbeat_agent_get_last_activity_at (agent), ==, T0 + SECONDS (30));
  g_assert_cmpstr (heartbeat_agent_get_status (agent), ==, "compiling");
  g_assert_true (heartbeat_agent_get_progress (agent, &progress));
  g_assert_cmpfloat (progress, ==, 0.25);

  /* Merged key by key: kept, replaced, added, and the progress. */
  metadata = heartbeat_agent_get_metadata (agent);
  g_assert_nonnull (metadata);
  g_assert_true (g_variant_is_of_type (metadata, G_VARIANT_TYPE_VARDICT));
  g_assert_true (g_variant_lookup (metadata, "owner", "&s", &owner));
  g_assert_cmpstr (owner, ==, "me");
  g_assert_true (g_variant_lookup (metadata, "n", "i", &n));
  g_assert_cmpint (n, ==, 2);
  g_assert_true (g_variant_lookup (metadata, "extra", "b", &extra));
  g_assert_true (extra);
  progress = -1;
  g_assert_true (g_variant_lookup (metadata, "progress", "d", &progress));
  g_assert_cmpfloat (progress, ==, 0.25);
  g_assert_cmpuint (g_variant_n_children (metadata), ==, 4);

  /* Any finite progress is fine, negative too. */
  advance_to (f, T0 + SECONDS (35));
  details = (HeartbeatBeatDetails) { 0 };
  details.has_progress = TRUE;
  details.progress = -3.5;
  g_assert_true (heartbeat_monitor_beat (f->monitor, "job", &details, &error));
  g_assert_no_error (error);
  g_assert_true (heartbeat_agent_get_progress (agent, &progress));
  g_assert_cmpfloat (progress, ==, -3.5);

  /* No status means running again. */
  g_assert_cmpstr (heartbeat_agent_get_status (agent), ==, "running");
  advance_to (f, T0 + SECONDS (40));
  beat_status (f, "job", "linking");
  g_assert_cmpstr (heartbeat_agent_get_status (agent), ==, "linking");
  beat (f, "job");
  g_assert_cmpstr (heartbeat_agent_get_status (agent), ==, "running");
  g_assert_cmpuint (heartbeat_agent_get_beats (agent), ==, 5);
  expect_no_events (f);

  /* The beat moved the stale deadline. */
  check_at (f, T0 + SECONDS (40) + MINUTES (5) - 1);
  expect_no_events (f);
  check_at (f, T0 + SECONDS (40) + MINUTES (5));
  expect_events (f, STATE ("job", HEALTHY, STALE), STALE ("job", MINUTES (5)));
}

static void
test_beat_recovers_stale_agent (Fixture       *f,
                                gconstpointer  data)
{
  HeartbeatAgent *agent = register_agent (f, "job", 0, 0);

  expect_events (f, REGISTERED ("job"));
  check_at (f, T0 + MINUTES (5));
  expect_events (f, STATE ("job", HEALTHY, STALE), STALE ("job", MINUTES (5)));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_STALE);

  advance_to (f, T0 + MINUTES (6));
  beat (f, "job");
  expect_events (f, STATE ("job", STALE, HEALTHY), RECOVERED ("job"));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_HEALTHY);

  /* A healthy beat recovers nothing. */
  beat (f, "job");
  expect_no_events (f);

  /* A new quiet period is a new episode, with a new warning. */
  check_at (f, T0 + MINUTES (11) - 1);
  expect_no_events (f);
  check_at (f, T0 + MINUTES (11));
  expect_events (f, STATE ("job", HEALTHY, STALE), STALE ("job", MINUTES (5)));

  advance_to (f, T0 + MINUTES (12));
  beat (f, "job");
  expect_events (f, STATE ("job", STALE, HEALTHY), RECOVERED ("job"));
}

static void
test_beat_error_status (Fixture       *f,
                        gconstpointer  data)
{
  HeartbeatAgent *agent = register_agent (f, "job", 0, 0);

  expect_events (f, REGISTERED ("job"));

  advance_to (f, T0 + MINUTES (1));
  beat_status (f, "job", "error");
  expect_events (f, STATE ("job", HEALTHY, ERROR));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_ERROR);
  g_assert_cmpstr (heartbeat_agent_get_status (agent), ==, "error");

  /* Another error beat changes nothing. */
  beat_status (f, "job", "error");
  expect_no_events (f);

  /* An agent in error is not warned about being quiet... */
  check_at (f, T0 + MINUTES (6));
  expect_no_events (f);
  check_at (f, T0 + MINUTES (7));
  expect_no_events (f);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_ERROR);

  /* ...a normal beat makes it healthy, without a recovery... */
  beat (f, "job");
  expect_events (f, STATE ("job", ERROR, HEALTHY));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_HEALTHY);

  /* ...and it still times out. */
  advance_to (f, T0 + MINUTES (8));
  beat_status (f, "job", "error");
  expect_events (f, STATE ("job", HEALTHY, ERROR));
  check_at (f, T0 + MINUTES (30) - 1);
  expect_no_events (f);
  check_at (f, T0 + MINUTES (30));
  expect_events (f,
                 STATE ("job", ERROR, TIMED_OUT),
                 TIMED_OUT ("job", MINUTES (30)));
  g_assert_cmpint (state_of (f, "job"), ==, HEARTBEAT_AGENT_STATE_TIMED_OUT);   /* still listed */
}

/* ------------------------------------------------------------------ */
/* Idle */

static void
test_idle_has_no_deadlines (Fixture       *f,
                            gconstpointer  data)
{
  HeartbeatAgent *agent = register_agent (f, "job", 0, 0);

  expect_events (f, REGISTERED ("job"));

  advance_to (f, T0 + MINUTES (1));
  mark_idle (f, "job");
  expect_no_events (f);
  g_assert_true (heartbeat_agent_is_idle (agent));
  g_assert_cmpstr (heartbeat_agent_get_status (agent), ==, "idle");
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_HEALTHY);
  g_assert_cmpint (heartbeat_agent_get_last_activity_at (agent), ==, T0 + MINUTES (1));
  g_assert_cmpint (heartbeat_monitor_get_next_deadline (f->monitor), ==, HEARTBEAT_NO_DEADLINE);

  /* Far past both thresholds: nothing. */
  check_at (f, T0 + HOURS (10));
  expect_no_events (f);
  g_assert_true (heartbeat_monitor_lookup (f->monitor, "job") == agent);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_HEALTHY);

  /* The next beat starts a new run, with deadlines again. */
  beat (f, "job");
  expect_no_events (f);
  g_assert_false (heartbeat_agent_is_idle (agent));
  g_assert_cmpstr (heartbeat_agent_get_status (agent), ==, "running");
  g_assert_cmpint (heartbeat_agent_get_started_at (agent), ==, T0 + HOURS (10));
  g_assert_cmpint (heartbeat_agent_get_running_usec (agent, T0 + HOURS (10) + 7), ==, 7);
  g_assert_cmpint (heartbeat_monitor_get_next_deadline (f->monitor), !=, HEARTBEAT_NO_DEADLINE);

  check_at (f, T0 + HOURS (10) + MINUTES (5) - 1);
  expect_no_events (f);
  check_at (f, T0 + HOURS (10) + MINUTES (5));
  expect_events (f, STATE ("job", HEALTHY, STALE), STALE ("job", MINUTES (5)));

  /* A beat with status idle is mark_idle(): it ends the episode too. */
  advance_to (f, T0 + HOURS (10) + MINUTES (6));
  beat_status (f, "job", "idle");
  expect_events (f, STATE ("job", STALE, HEALTHY), RECOVERED ("job"));
  g_assert_true (heartbeat_agent_is_idle (agent));
  g_assert_cmpstr (heartbeat_agent_get_status (agent), ==, "idle");
  g_assert_cmpint (heartbeat_monitor_get_next_deadline (f->monitor), ==, HEARTBEAT_NO_DEADLINE);
  check_at (f, T0 + HOURS (20));
  expect_no_events (f);

  /* And the run after that times out from its own start. */
  beat (f, "job");
  advance_to (f, T0 + HOURS (20) + MINUTES (4));
  beat (f, "job");
  advance_to (f, T0 + HOURS (20) + MINUTES (8));
  beat (f, "job");
  advance_to (f, T0 + HOURS (20) + MINUTES (12));
  beat (f, "job");
  advance_to (f, T0 + HOURS (20) + MINUTES (16));
  beat (f, "job");
  advance_to (f, T0 + HOURS (20) + MINUTES (20));
  beat (f, "job");
  advance_to (f, T0 + HOURS (20) + MINUTES (24));
  beat (f, "job");
  advance_to (f, T0 + HOURS (20) + MINUTES (28));
  beat (f, "job");
  check_at (f, T0 + HOURS (20) + MINUTES (30) - 1);
  expect_no_events (f);
  check_at (f, T0 + HOURS (20) + MINUTES (30));
  expect_events (f,
                 STATE ("job", HEALTHY, TIMED_OUT),
                 TIMED_OUT ("job", MINUTES (30)));
}

static void
test_idle_recovers_stale_agent (Fixture       *f,
                                gconstpointer  data)
{
  HeartbeatAgent *agent = register_agent (f, "job", SECONDS (10), 0);

  expect_events (f, REGISTERED ("job"));
  check_at (f, T0 + SECONDS (10));
  expect_events (f, STATE ("job", HEALTHY, STALE), STALE ("job", SECONDS (10)));

  advance_to (f, T0 + SECONDS (12));
  mark_idle (f, "job");
  expect_events (f, STATE ("job", STALE, HEALTHY), RECOVERED ("job"));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_HEALTHY);
  g_assert_true (heartbeat_agent_is_idle (agent));
  g_assert_cmpint (heartbeat_agent_get_last_activity_at (agent), ==, T0 + SECONDS (12));
}

/* ------------------------------------------------------------------ */
/* Stale */

static void
test_stale_after_default_threshold (Fixture       *f,
                                    gconstpointer  data)
{
  HeartbeatAgent *agent = register_agent (f, "job", 0, 0);

  expect_events (f, REGISTERED ("job"));
  g_assert_cmpint (heartbeat_monitor_get_next_deadline (f->monitor), ==, T0 + MINUTES (5));

  check_at (f, T0 + MINUTES (1));
  expect_no_events (f);
  check_at (f, T0 + MINUTES (5) - 1);
  expect_no_events (f);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_HEALTHY);

  /* At the deadline is on time. */
  check_at (f, T0 + MINUTES (5));
  expect_events (f, STATE ("job", HEALTHY, STALE), STALE ("job", MINUTES (5)));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_STALE);
  g_assert_cmpint (heartbeat_agent_get_idle_usec (agent, f->now), ==, MINUTES (5));

  /* The state was already stale while agent-stale ran. */
  g_assert_cmpint (g_array_index (f->events, Event, f->events->len - 1).state, ==,
                   HEARTBEAT_AGENT_STATE_STALE);
  g_assert_true (heartbeat_monitor_lookup (f->monitor, "job") == agent);
}

static void
test_stale_fires_once_per_episode (Fixture       *f,
                                   gconstpointer  data)
{
  register_agent (f, "job", 0, 0);
  expect_events (f, REGISTERED ("job"));

  check_at (f, T0 + MINUTES (5));
  expect_events (f, STATE ("job", HEALTHY, STALE), STALE ("job", MINUTES (5)));

  for (gint64 t = MINUTES (5) + SECONDS (30); t < MINUTES (30); t += SECONDS (30))
    {
      check_at (f, T0 + t);
      expect_no_events (f);
    }
  g_assert_cmpint (state_of (f, "job"), ==, HEARTBEAT_AGENT_STATE_STALE);

  /* A stale agent still times out, from stale. */
  check_at (f, T0 + MINUTES (30));
  expect_events (f,
                 STATE ("job", STALE, TIMED_OUT),
                 TIMED_OUT ("job", MINUTES (30)));
}

static void
test_stale_repeats_every_check_interval (Fixture       *f,
                                         gconstpointer  data)
{
  heartbeat_monitor_set_stale_warning_only_once (f->monitor, FALSE);
  register_agent (f, "job", 0, 0);
  expect_events (f, REGISTERED ("job"));

  check_at (f, T0 + MINUTES (5) - 1);
  expect_no_events (f);
  check_at (f, T0 + MINUTES (5));
  expect_events (f, STATE ("job", HEALTHY, STALE), STALE ("job", MINUTES (5)));

  /* Again every check-interval (30 s), without a new state change. */
  check_at (f, T0 + MINUTES (5) + SECONDS (30) - 1);
  expect_no_events (f);
  check_at (f, T0 + MINUTES (5) + SECONDS (30));
  expect_events (f, STALE ("job", MINUTES (5) + SECONDS (30)));
  check_at (f, T0 + MINUTES (6) - 1);
  expect_no_events (f);
  check_at (f, T0 + MINUTES (6));
  expect_events (f, STALE ("job", MINUTES (6)));

  /* A new check-interval applies to the next warning. */
  g_object_set (f->monitor, "check-interval", (gint64) SECONDS (10), NULL);
  check_at (f, T0 + MINUTES (6) + SECONDS (10) - 1);
  expect_no_events (f);
  check_at (f, T0 + MINUTES (6) + SECONDS (10));
  expect_events (f, STALE ("job", MINUTES (6) + SECONDS (10)));

  /* A beat ends the episode: no more warnings until the next one. */
  advance_to (f, T0 + MINUTES (7));
  beat (f, "job");
  expect_events (f, STATE ("job", STALE, HEALTHY), RECOVERED ("job"));
  check_at (f, T0 + MINUTES (12) - 1);
  expect_no_events (f);
  check_at (f, T0 + MINUTES (12));
  expect_events (f, STATE ("job", HEALTHY, STALE), STALE ("job", MINUTES (5)));
  check_at (f, T0 + MINUTES (12) + SECONDS (10));
  expect_events (f, STALE ("job", MINUTES (5) + SECONDS (10)));
}

static void
test_stale_many_agents_different_idle_times (Fixture       *f,
                                             gconstpointer  data)
{
  /* Names sort differently from the deadlines; last beats at T0 + offset,
   * judged at T0 + 10 min. */
  const char *agents[] = {
    "a-idle-9min", "b-idle-1min", "c-idle-5min", "d-idle-6min", "e-idle-just-under-5min",
  };
  guint counts[HEARTBEAT_AGENT_N_STATES] = { 0 };

  for (guint i = 0; i < G_N_ELEMENTS (agents); i++)
    register_agent (f, agents[i], 0, 0);
  g_assert_cmpuint (f->events->len, ==, G_N_ELEMENTS (agents));
  f->seen = f->events->len;

  /* Beats in time order. */
  advance_to (f, T0 + MINUTES (1));
  beat (f, "a-idle-9min");
  advance_to (f, T0 + MINUTES (4));
  beat (f, "d-idle-6min");
  advance_to (f, T0 + MINUTES (5));
  beat (f, "c-idle-5min");
  advance_to (f, T0 + MINUTES (5) + 1);
  beat (f, "e-idle-just-under-5min");
  advance_to (f, T0 + MINUTES (9));
  beat (f, "b-idle-1min");
  expect_no_events (f);

  check_at (f, T0 + MINUTES (10));
  /* In deadline order: 9 min idle, then 6, then exactly 5. */
  expect_events (f,
                 STATE ("a-idle-9min", HEALTHY, STALE), STALE ("a-idle-9min", MINUTES (9)),
                 STATE ("d-idle-6min", HEALTHY, STALE), STALE ("d-idle-6min", MINUTES (6)),
                 STATE ("c-idle-5min", HEALTHY, STALE), STALE ("c-idle-5min", MINUTES (5)));

  g_assert_cmpint (state_of (f, "b-idle-1min"), ==, HEARTBEAT_AGENT_STATE_HEALTHY);
  g_assert_cmpint (state_of (f, "e-idle-just-under-5min"), ==, HEARTBEAT_AGENT_STATE_HEALTHY);
  heartbeat_monitor_get_state_counts (f->monitor, counts);
  g_assert_cmpuint (counts[HEARTBEAT_AGENT_STATE_HEALTHY], ==, 2);
  g_assert_cmpuint (counts[HEARTBEAT_AGENT_STATE_STALE], ==, 3);
  g_assert_cmpuint (counts[HEARTBEAT_AGENT_STATE_ERROR], ==, 0);

  /* One µs later the last one goes too. */
  check_at (f, T0 + MINUTES (10) + 1);
  expect_events (f,
                 STATE ("e-idle-just-under-5min", HEALTHY, STALE),
                 STALE ("e-idle-just-under-5min", MINUTES (5)));
}

/* ------------------------------------------------------------------ */
/* Timeout */

static void
test_timeout_after_default_threshold (Fixture       *f,
                                      gconstpointer  data)
{
  HeartbeatAgent *agent = register_agent (f, "job", 0, 0);
  g_autoptr(HeartbeatAgent) kept = heartbeat_agent_ref (agent);

  expect_events (f, REGISTERED ("job"));

  /* Beating keeps it from going stale, not from timing out. */
  for (gint64 t = MINUTES (4); t < MINUTES (30); t += MINUTES (4))
    {
      check_at (f, T0 + t);
      beat (f, "job");
    }
  check_at (f, T0 + MINUTES (30) - 1);
  expect_no_events (f);
  g_assert_cmpuint (heartbeat_agent_get_beats (agent), ==, 7);

  check_at (f, T0 + MINUTES (30));
  expect_events (f,
                 STATE ("job", HEALTHY, TIMED_OUT),
                 TIMED_OUT ("job", MINUTES (30)));
  /* listed as timed out until the retention (a day) passes */
  g_assert_cmpint (state_of (f, "job"), ==, HEARTBEAT_AGENT_STATE_TIMED_OUT);
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (f->monitor), ==, 1);
  g_assert_cmpint (heartbeat_monitor_get_next_deadline (f->monitor), ==, T0 + MINUTES (30) + HOURS (24));
  check_at (f, T0 + HOURS (5));
  expect_no_events (f);
  check_at (f, T0 + MINUTES (30) + HOURS (24));
  expect_events (f, UNREGISTERED ("job", TIMED_OUT));
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (f->monitor), ==, 0);
  g_assert_cmpint (heartbeat_monitor_get_next_deadline (f->monitor), ==, HEARTBEAT_NO_DEADLINE);

  /* A kept reference keeps the last values. */
  g_assert_cmpstr (heartbeat_agent_get_id (kept), ==, "job");
  g_assert_cmpuint (heartbeat_agent_get_beats (kept), ==, 7);
  g_assert_cmpint (heartbeat_agent_get_started_at (kept), ==, T0);
}

/* The retention is a property: changed, it applies to agents that ended
 * already; 0 keeps them until told. A beat starts a new run. */
static void
test_timeout_retention (Fixture       *f,
                        gconstpointer  data)
{
  register_agent (f, "kept", SECONDS (10), SECONDS (20));
  register_agent (f, "back", SECONDS (10), SECONDS (20));
  expect_events (f, REGISTERED ("kept"), REGISTERED ("back"));
  heartbeat_monitor_set_retention (f->monitor, 0);
  g_assert_cmpint (heartbeat_monitor_get_retention (f->monitor), ==, 0);

  check_at (f, T0 + SECONDS (20));
  expect_events (f, STATE ("kept", HEALTHY, TIMED_OUT), TIMED_OUT ("kept", SECONDS (20)),
                 STATE ("back", HEALTHY, TIMED_OUT), TIMED_OUT ("back", SECONDS (20)));
  check_at (f, T0 + HOURS (48));
  expect_no_events (f);
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (f->monitor), ==, 2);

  /* a beat: a new run, healthy, its deadlines from now */
  beat (f, "back");
  expect_events (f, STATE ("back", TIMED_OUT, HEALTHY));
  g_assert_cmpint (heartbeat_agent_get_started_at (heartbeat_monitor_lookup (f->monitor, "back")), ==,
                   T0 + HOURS (48));

  /* a retention again: judged from when it timed out, so due at once */
  g_object_set (f->monitor, "retention", HOURS (1), NULL);
  check_at (f, T0 + HOURS (48) + 1);
  expect_events (f, UNREGISTERED ("kept", TIMED_OUT));
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (f->monitor), ==, 1);
}

static void
test_timeout_wins_over_stale (Fixture       *f,
                              gconstpointer  data)
{
  register_agent (f, "job", SECONDS (10), SECONDS (20));
  register_agent (f, "tie", SECONDS (21), SECONDS (21));
  register_agent (f, "stale-later", SECONDS (30), SECONDS (22));
  expect_events (f, REGISTERED ("job"), REGISTERED ("tie"), REGISTERED ("stale-later"));

  /* Both deadlines passed in one check: only the timeout is reported,
   * in timeout order (20 s, 21 s, 22 s). */
  check_at (f, T0 + SECONDS (25));
  expect_events (f,
                 STATE ("job", HEALTHY, TIMED_OUT),
                 TIMED_OUT ("job", SECONDS (25)),
                 STATE ("tie", HEALTHY, TIMED_OUT),
                 TIMED_OUT ("tie", SECONDS (25)),
                 STATE ("stale-later", HEALTHY, TIMED_OUT),
                 TIMED_OUT ("stale-later", SECONDS (25)));
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (f->monitor), ==, 3);   /* listed, timed out */

  /* Checked exactly when stale and timeout coincide: timeout only. */
  register_agent (f, "same", SECONDS (20), SECONDS (20));
  expect_events (f, REGISTERED ("same"));
  check_at (f, T0 + SECONDS (45));
  expect_events (f,
                 STATE ("same", HEALTHY, TIMED_OUT),
                 TIMED_OUT ("same", SECONDS (20)));
}

static void
test_timeout_wins_keeps_deadline_order (Fixture       *f,
                                        gconstpointer  data)
{
  register_agent (f, "early-stale", SECONDS (5), SECONDS (20));
  register_agent (f, "other", SECONDS (15), HOURS (1));
  expect_events (f, REGISTERED ("early-stale"), REGISTERED ("other"));

  /* Due in this check: other's stale deadline (15 s), then early-stale's
   * timeout (20 s); early-stale's own stale deadline (5 s) is not reported
   * because its timeout wins, so it does not put it first. */
  check_at (f, T0 + SECONDS (25));
  expect_events_nonfatal (f,
                          STATE ("other", HEALTHY, STALE),
                          STALE ("other", SECONDS (25)),
                          STATE ("early-stale", HEALTHY, TIMED_OUT),
                          TIMED_OUT ("early-stale", SECONDS (25)));
}

/* ------------------------------------------------------------------ */
/* Thresholds */

static void
test_thresholds_per_agent_override_defaults (Fixture       *f,
                                             gconstpointer  data)
{
  HeartbeatAgent *fast, *plain;

  fast = register_agent (f, "fast", SECONDS (10), SECONDS (50));
  plain = register_agent (f, "plain", 0, 0);
  expect_events (f, REGISTERED ("fast"), REGISTERED ("plain"));
  g_assert_cmpint (heartbeat_agent_get_stale_after (fast), ==, SECONDS (10));
  g_assert_cmpint (heartbeat_agent_get_timeout_after (fast), ==, SECONDS (50));
  g_assert_cmpint (heartbeat_agent_get_stale_after (plain), ==, MINUTES (5));
  g_assert_cmpint (heartbeat_agent_get_timeout_after (plain), ==, MINUTES (30));

  /* The monitor's defaults move; the override stays. */
  heartbeat_monitor_set_stale_threshold (f->monitor, MINUTES (1));
  heartbeat_monitor_set_timeout_threshold (f->monitor, MINUTES (2));
  g_assert_cmpint (heartbeat_agent_get_stale_after (fast), ==, SECONDS (10));
  g_assert_cmpint (heartbeat_agent_get_timeout_after (fast), ==, SECONDS (50));
  g_assert_cmpint (heartbeat_agent_get_stale_after (plain), ==, MINUTES (1));
  g_assert_cmpint (heartbeat_agent_get_timeout_after (plain), ==, MINUTES (2));
  g_assert_cmpint (heartbeat_monitor_get_next_deadline (f->monitor), ==, T0 + SECONDS (10));

  check_at (f, T0 + SECONDS (10) - 1);
  expect_no_events (f);
  check_at (f, T0 + SECONDS (10));
  expect_events (f, STATE ("fast", HEALTHY, STALE), STALE ("fast", SECONDS (10)));
  check_at (f, T0 + SECONDS (50) - 1);
  expect_no_events (f);
  check_at (f, T0 + SECONDS (50));
  expect_events (f,
                 STATE ("fast", STALE, TIMED_OUT),
                 TIMED_OUT ("fast", SECONDS (50)));
  check_at (f, T0 + MINUTES (1) - 1);
  expect_no_events (f);
  check_at (f, T0 + MINUTES (1));
  expect_events (f, STATE ("plain", HEALTHY, STALE), STALE ("plain", MINUTES (1)));
  check_at (f, T0 + MINUTES (2));
  expect_events (f,
                 STATE ("plain", STALE, TIMED_OUT),
                 TIMED_OUT ("plain", MINUTES (2)));
}

static void
test_thresholds_default_change_reschedules (Fixture       *f,
                                            gconstpointer  data)
{
  HeartbeatAgent *uses_default, *own, *raised;

  uses_default = register_agent (f, "uses-default", 0, 0);
  own = register_agent (f, "own", MINUTES (5), MINUTES (30));
  expect_events (f, REGISTERED ("uses-default"), REGISTERED ("own"));

  /* Lowered below how long it has been quiet: due at once. */
  advance_to (f, T0 + MINUTES (3));
  heartbeat_monitor_set_stale_threshold (f->monitor, MINUTES (2));
  expect_no_events (f);
  g_assert_cmpint (heartbeat_agent_get_stale_after (uses_default), ==, MINUTES (2));
  g_assert_cmpint (heartbeat_agent_get_stale_after (own), ==, MINUTES (5));
  g_assert_cmpint (heartbeat_monitor_get_next_deadline (f->monitor), ==, T0 + MINUTES (2));
  check_at (f, T0 + MINUTES (3));
  expect_events (f,
                 STATE ("uses-default", HEALTHY, STALE),
                 STALE ("uses-default", MINUTES (3)));

  /* The property works the same way, for the timeout. */
  g_object_set (f->monitor, "timeout-threshold", (gint64) MINUTES (10), NULL);
  g_assert_cmpint (heartbeat_agent_get_timeout_after (uses_default), ==, MINUTES (10));
  g_assert_cmpint (heartbeat_agent_get_timeout_after (own), ==, MINUTES (30));
  check_at (f, T0 + MINUTES (5) - 1);
  expect_no_events (f);
  check_at (f, T0 + MINUTES (5));
  expect_events (f, STATE ("own", HEALTHY, STALE), STALE ("own", MINUTES (5)));
  check_at (f, T0 + MINUTES (10) - 1);
  expect_no_events (f);
  check_at (f, T0 + MINUTES (10));
  expect_events (f,
                 STATE ("uses-default", STALE, TIMED_OUT),
                 TIMED_OUT ("uses-default", MINUTES (10)));

  /* Raised: a deadline moves later. */
  raised = register_agent (f, "raised", 0, 0);
  expect_events (f, REGISTERED ("raised"));
  g_assert_cmpint (heartbeat_agent_get_stale_after (raised), ==, MINUTES (2));
  g_object_set (f->monitor, "stale-threshold", (gint64) HOURS (1), NULL);
  g_assert_cmpint (heartbeat_agent_get_stale_after (raised), ==, HOURS (1));
  check_at (f, T0 + MINUTES (12));
  expect_no_events (f);
  check_at (f, T0 + MINUTES (20) - 1);
  expect_no_events (f);
  check_at (f, T0 + MINUTES (20));
  expect_events (f,
                 STATE ("raised", HEALTHY, TIMED_OUT),
                 TIMED_OUT ("raised", MINUTES (10)));
  check_at (f, T0 + MINUTES (30));
  expect_events (f,
                 STATE ("own", STALE, TIMED_OUT),
                 TIMED_OUT ("own", MINUTES (30)));
}

/* ------------------------------------------------------------------ */
/* Declared and gone */

static void
test_declared_no_heartbeat_until_first_beat (Fixture       *f,
                                             gconstpointer  data)
{
  HeartbeatAgent *agent;

  agent = declare_agent (f, "svc", SECONDS (10), SECONDS (20));
  expect_events (f, REGISTERED ("svc"));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_NO_HEARTBEAT);
  g_assert_true (heartbeat_agent_is_declared (agent));
  g_assert_cmpint (heartbeat_monitor_get_next_deadline (f->monitor), ==, HEARTBEAT_NO_DEADLINE);
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (f->monitor), ==, 1);

  check_at (f, T0 + HOURS (1));
  expect_no_events (f);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_NO_HEARTBEAT);

  beat (f, "svc");
  expect_events (f, STATE ("svc", NO_HEARTBEAT, HEALTHY));
  g_assert_cmpint (heartbeat_agent_get_started_at (agent), ==, T0 + HOURS (1));
  g_assert_cmpint (heartbeat_agent_get_last_activity_at (agent), ==, T0 + HOURS (1));
  g_assert_cmpuint (heartbeat_agent_get_beats (agent), ==, 1);

  check_at (f, T0 + HOURS (1) + SECONDS (10));
  expect_events (f, STATE ("svc", HEALTHY, STALE), STALE ("svc", SECONDS (10)));

  /* Timed out, but declared: timed out until it beats, never removed. */
  check_at (f, T0 + HOURS (1) + SECONDS (20) - 1);
  expect_no_events (f);
  check_at (f, T0 + HOURS (1) + SECONDS (20));
  expect_events (f,
                 STATE ("svc", STALE, TIMED_OUT),
                 TIMED_OUT ("svc", SECONDS (20)));
  g_assert_true (heartbeat_monitor_lookup (f->monitor, "svc") == agent);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_TIMED_OUT);
  g_assert_true (heartbeat_agent_is_declared (agent));
  g_assert_cmpint (heartbeat_monitor_get_next_deadline (f->monitor), ==, HEARTBEAT_NO_DEADLINE);

  check_at (f, T0 + HOURS (5));   /* (retention does not apply to it) */
  expect_no_events (f);

  /* It can come back (a new run), and be unregistered like any agent. */
  beat (f, "svc");
  expect_events (f, STATE ("svc", TIMED_OUT, HEALTHY));
  g_assert_cmpint (heartbeat_agent_get_started_at (agent), ==, T0 + HOURS (5));
  unregister (f, "svc");
  expect_events (f, UNREGISTERED ("svc", UNREGISTERED));
  g_assert_null (heartbeat_monitor_lookup (f->monitor, "svc"));
}

/* Which work has a run timeout: a service (declared with .service, or
 * bound to its bus peer) never times out on the monitor's threshold, however
 * long it runs and beats; only a timeout of its own applies. Told it is a
 * job after all (a Type=oneshot unit), it gets the threshold, counted from
 * its run's start. Declared agents wait with the status "waiting"; a gone
 * one says "stopped". */
static void
test_service_has_no_default_timeout (Fixture       *f,
                                     gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  HeartbeatAgentOptions service = { .stale_after_usec = SECONDS (5), .service = TRUE };
  HeartbeatAgentOptions own = { .stale_after_usec = SECONDS (5), .timeout_after_usec = MINUTES (40), .service = TRUE };
  HeartbeatAgentOptions bound = { .stale_after_usec = SECONDS (5), .bound_to = ":1.42" };
  HeartbeatAgent *svc, *timed, *app;

  g_object_set (f->monitor, "timeout-threshold", MINUTES (30), NULL);
  svc = heartbeat_monitor_declare (f->monitor, "svc", &service, &error);
  g_assert_no_error (error);
  timed = heartbeat_monitor_declare (f->monitor, "timed", &own, &error);
  g_assert_no_error (error);
  app = register_with (f, "app", &bound);
  expect_events (f, REGISTERED ("svc"), REGISTERED ("timed"), REGISTERED ("app"));
  g_assert_true (heartbeat_agent_is_service (svc));
  g_assert_true (heartbeat_agent_is_service (app));
  g_assert_cmpint (heartbeat_agent_get_timeout_after (svc), ==, 0);
  g_assert_cmpint (heartbeat_agent_get_own_timeout_after (svc), ==, 0);
  g_assert_cmpint (heartbeat_agent_get_timeout_after (timed), ==, MINUTES (40));
  g_assert_cmpstr (heartbeat_agent_get_status (svc), ==, "waiting");

  beat (f, "svc");
  beat (f, "timed");
  expect_events (f, STATE ("svc", NO_HEARTBEAT, HEALTHY), STATE ("timed", NO_HEARTBEAT, HEALTHY));
  g_assert_cmpstr (heartbeat_agent_get_status (svc), ==, "running");

  /* two hours of beats every 4 s: the default threshold never fires */
  for (gint64 t = SECONDS (4); t <= HOURS (2); t += SECONDS (4))
    {
      check_at (f, T0 + t);
      beat (f, "svc");
      beat (f, "app");
      if (t < MINUTES (40))
        beat (f, "timed");
      else if (t == MINUTES (40))
        expect_events (f, STATE ("timed", HEALTHY, TIMED_OUT), TIMED_OUT ("timed", MINUTES (40)));
      else
        expect_no_events (f);
    }
  g_assert_cmpint (heartbeat_agent_get_state (svc), ==, HEARTBEAT_AGENT_STATE_HEALTHY);
  g_assert_cmpint (heartbeat_agent_get_state (app), ==, HEARTBEAT_AGENT_STATE_HEALTHY);
  g_assert_cmpint (heartbeat_agent_get_state (timed), ==, HEARTBEAT_AGENT_STATE_TIMED_OUT);

  /* a new monitor threshold does not reach a service either */
  g_object_set (f->monitor, "timeout-threshold", SECONDS (10), NULL);
  g_assert_cmpint (heartbeat_agent_get_timeout_after (svc), ==, 0);
  check_at (f, T0 + HOURS (2) + SECONDS (4));
  beat (f, "svc");
  beat (f, "app");
  expect_no_events (f);

  /* a job after all: the threshold counts from its run's start */
  g_assert_true (heartbeat_monitor_set_service (f->monitor, "svc", FALSE, &error));
  g_assert_no_error (error);
  g_assert_false (heartbeat_agent_is_service (svc));
  g_assert_cmpint (heartbeat_agent_get_timeout_after (svc), ==, SECONDS (10));
  check_at (f, T0 + HOURS (2) + SECONDS (5));
  expect_events (f, STATE ("svc", HEALTHY, TIMED_OUT), TIMED_OUT ("svc", HOURS (2) + SECONDS (5)));
  g_assert_false (heartbeat_monitor_set_service (f->monitor, "nobody", TRUE, &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_NOT_FOUND);

  /* the declaration has the last word: declared again, a service again */
  g_assert_nonnull (heartbeat_monitor_declare (f->monitor, "svc", &service, NULL));
  g_assert_true (heartbeat_agent_is_service (svc));
  g_assert_cmpint (heartbeat_agent_get_timeout_after (svc), ==, 0);

  mark_gone (f, "app");
  expect_events (f, STATE ("app", HEALTHY, GONE));
  g_assert_cmpstr (heartbeat_agent_get_status (app), ==, "stopped");
}

/* Activity learnt of late (a heartbeat file's timestamp) counts from when
 * it happened: the agent goes stale at that moment plus its threshold,
 * even though it was queued for later. */
static void
test_beat_at_past_activity (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  HeartbeatAgent *agent;
  gint64 last, slack = SECONDS (1) / 10;
  guint n;

  agent = register_agent (f, "file", SECONDS (10), HOURS (1));
  expect_events (f, REGISTERED ("file"));

  advance_to (f, T0 + SECONDS (1));
  g_assert_true (heartbeat_monitor_beat_at (f->monitor, "file", NULL,
                                            g_get_real_time () - SECONDS (8), &error));
  g_assert_no_error (error);
  last = heartbeat_agent_get_last_activity_at (agent);
  g_assert_cmpint (last, <=, T0 - SECONDS (7));
  g_assert_cmpint (last, >=, T0 - SECONDS (7) - slack);
  g_assert_cmpint (heartbeat_monitor_get_next_deadline (f->monitor), ==, last + SECONDS (10));

  check_at (f, last + SECONDS (10) - 1);
  expect_no_events (f);
  n = f->events->len;
  check_at (f, last + SECONDS (10));
  g_assert_cmpuint (f->events->len, ==, n + 2);
  expect_events (f, STATE ("file", HEALTHY, STALE), STALE ("file", SECONDS (10)));

  /* A timestamp from the future counts as now. */
  advance_to (f, T0 + SECONDS (20));
  g_assert_true (heartbeat_monitor_beat_at (f->monitor, "file", NULL,
                                            g_get_real_time () + HOURS (1), &error));
  g_assert_cmpint (heartbeat_agent_get_last_activity_at (agent), ==, T0 + SECONDS (20));
  expect_events (f, STATE ("file", STALE, HEALTHY), RECOVERED ("file"));

  g_assert_false (heartbeat_monitor_beat_at (f->monitor, "nobody", NULL, 0, &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_NOT_FOUND);
}

static void
test_mark_no_heartbeat (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  HeartbeatAgent *agent;

  agent = declare_agent (f, "svc", SECONDS (10), SECONDS (100));
  register_agent (f, "plain", 0, 0);
  expect_events (f, REGISTERED ("svc"), REGISTERED ("plain"));

  /* already there: nothing happens */
  g_assert_true (heartbeat_monitor_mark_no_heartbeat (f->monitor, "svc", &error));
  expect_no_events (f);

  beat (f, "svc");
  expect_events (f, STATE ("svc", NO_HEARTBEAT, HEALTHY));
  g_assert_true (heartbeat_monitor_mark_no_heartbeat (f->monitor, "svc", &error));
  g_assert_no_error (error);
  expect_events (f, STATE ("svc", HEALTHY, NO_HEARTBEAT));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_NO_HEARTBEAT);

  /* no deadline of its own any more: only the plain agent times out */
  check_at (f, T0 + HOURS (2));
  expect_events (f, STATE ("plain", HEALTHY, TIMED_OUT), TIMED_OUT ("plain", HOURS (2)));

  g_assert_nonnull (register_agent (f, "plain", 0, 0));   /* still listed, timed out */
  expect_events (f, STATE ("plain", TIMED_OUT, HEALTHY), REGISTERED ("plain"));
  g_assert_false (heartbeat_monitor_mark_no_heartbeat (f->monitor, "plain", &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (heartbeat_monitor_mark_no_heartbeat (f->monitor, "nobody", &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_NOT_FOUND);
  expect_no_events (f);
}

static void
on_event_posted (HeartbeatMonitor *monitor, const char *type, GVariant *data, gpointer user_data)
{
  GPtrArray *seen = user_data;
  g_autofree char *text = g_variant_print (data, FALSE);

  g_ptr_array_add (seen, g_strdup_printf ("%s %s", type, text));
}

static void
test_post_event (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_autofree char *big = g_strnfill (HEARTBEAT_METADATA_MAX_SIZE, 'x');

  g_signal_connect (f->monitor, "event-posted", G_CALLBACK (on_event_posted), seen);
  g_assert_true (heartbeat_monitor_post_event (f->monitor, "deploy",
                                               g_variant_new_parsed ("{'version': <'1.2'>}"), &error));
  g_assert_no_error (error);
  g_assert_true (heartbeat_monitor_post_event (f->monitor, "ping", NULL, &error));
  g_assert_cmpuint (seen->len, ==, 2);

  g_assert_false (heartbeat_monitor_post_event (f->monitor, "bad type", NULL, &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (heartbeat_monitor_post_event (f->monitor, "x", g_variant_new_string ("not a dict"), &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (heartbeat_monitor_post_event (f->monitor, "x",
                                                g_variant_new_parsed ("{'big': <%s>}", big), &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT);
  g_assert_cmpuint (seen->len, ==, 2);
  expect_no_events (f);
  g_signal_handlers_disconnect_by_data (f->monitor, seen);
}

static void
test_gone_removed_after_retention (Fixture       *f,
                                         gconstpointer  data)
{
  HeartbeatAgent *agent = register_agent (f, "worker", SECONDS (10), SECONDS (15));

  expect_events (f, REGISTERED ("worker"));
  advance_to (f, T0 + SECONDS (5));
  beat (f, "worker");
  advance_to (f, T0 + SECONDS (8));
  mark_gone (f, "worker");
  expect_events (f, STATE ("worker", HEALTHY, GONE));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_GONE);

  /* Neither stale (at 15 s) nor timed out (at 15 s) while gone. */
  check_at (f, T0 + SECONDS (15));
  expect_no_events (f);
  check_at (f, T0 + SECONDS (18));
  expect_no_events (f);
  g_assert_true (heartbeat_monitor_lookup (f->monitor, "worker") == agent);

  /* listed, gone, until the retention (a day) passes */
  check_at (f, T0 + SECONDS (8) + HOURS (24) - 1);
  expect_no_events (f);
  g_assert_true (heartbeat_monitor_lookup (f->monitor, "worker") == agent);
  check_at (f, T0 + SECONDS (8) + HOURS (24));
  expect_events (f, UNREGISTERED ("worker", GONE));
  g_assert_null (heartbeat_monitor_lookup (f->monitor, "worker"));
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (f->monitor), ==, 0);
}

static void
test_gone_declared_stays (Fixture       *f,
                          gconstpointer  data)
{
  HeartbeatAgent *agent = declare_agent (f, "svc", SECONDS (10), SECONDS (15));

  expect_events (f, REGISTERED ("svc"));
  advance_to (f, T0 + SECONDS (1));
  beat (f, "svc");
  expect_events (f, STATE ("svc", NO_HEARTBEAT, HEALTHY));
  advance_to (f, T0 + SECONDS (2));
  mark_gone (f, "svc");
  expect_events (f, STATE ("svc", HEALTHY, GONE));

  check_at (f, T0 + HOURS (1));
  expect_no_events (f);
  g_assert_true (heartbeat_monitor_lookup (f->monitor, "svc") == agent);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_GONE);
}

/* A declaration taken back: the agent that never beat is unregistered at
 * once; one that is gone is listed until the retention (a day) ends, as a
 * registered one would be. Declared again, an existing agent takes the
 * declaration's thresholds. */
static void
test_undeclare (Fixture       *f,
                gconstpointer  data)
{
  HeartbeatAgent *agent = declare_agent (f, "svc", SECONDS (10), SECONDS (15));

  declare_agent (f, "never", 0, 0);
  expect_events (f, REGISTERED ("svc"), REGISTERED ("never"));
  g_assert_true (heartbeat_monitor_undeclare (f->monitor, "never"));
  expect_events (f, UNREGISTERED ("never", UNREGISTERED));
  g_assert_false (heartbeat_monitor_undeclare (f->monitor, "never"));

  /* declared again with other thresholds: the same agent takes them */
  g_assert_true (declare_agent (f, "svc", SECONDS (20), 0) == agent);
  expect_no_events (f);
  g_assert_cmpint (heartbeat_agent_get_stale_after (agent), ==, SECONDS (20));
  g_assert_cmpint (heartbeat_agent_get_timeout_after (agent), ==, heartbeat_monitor_get_timeout_threshold (f->monitor));

  advance_to (f, T0 + SECONDS (1));
  beat (f, "svc");
  expect_events (f, STATE ("svc", NO_HEARTBEAT, HEALTHY));
  advance_to (f, T0 + SECONDS (2));
  mark_gone (f, "svc");
  expect_events (f, STATE ("svc", HEALTHY, GONE));
  g_assert_true (heartbeat_monitor_undeclare (f->monitor, "svc"));
  g_assert_false (heartbeat_agent_is_declared (agent));
  expect_no_events (f);
  g_assert_cmpint (heartbeat_monitor_get_next_deadline (f->monitor), ==, T0 + SECONDS (2) + HOURS (24));
  check_at (f, T0 + SECONDS (2) + HOURS (24));
  expect_events (f, UNREGISTERED ("svc", GONE));
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (f->monitor), ==, 0);
}

static void
test_gone_beat_revives (Fixture       *f,
                        gconstpointer  data)
{
  HeartbeatAgent *agent = register_agent (f, "worker", SECONDS (10), HOURS (1));

  expect_events (f, REGISTERED ("worker"));
  mark_gone (f, "worker");
  expect_events (f, STATE ("worker", HEALTHY, GONE));

  advance_to (f, T0 + SECONDS (5));
  beat (f, "worker");
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_HEALTHY);
  g_assert_cmpuint (f->events->len, >, f->seen);
  g_assert_cmpint (g_array_index (f->events, Event, f->seen).kind, ==, EV_STATE_CHANGED);
  g_assert_cmpint (g_array_index (f->events, Event, f->seen).old_state, ==, HEARTBEAT_AGENT_STATE_GONE);
  g_assert_cmpint (g_array_index (f->events, Event, f->seen).new_state, ==, HEARTBEAT_AGENT_STATE_HEALTHY);
  for (guint i = f->seen; i < f->events->len; i++)
    g_assert_cmpint (g_array_index (f->events, Event, i).kind, !=, EV_UNREGISTERED);
  f->seen = f->events->len;

  /* Not removed when the gone period would have ended... */
  check_at (f, T0 + SECONDS (10));
  expect_no_events (f);
  g_assert_true (heartbeat_monitor_lookup (f->monitor, "worker") == agent);

  /* ...and watched again like any healthy agent. */
  check_at (f, T0 + SECONDS (15) - 1);
  expect_no_events (f);
  check_at (f, T0 + SECONDS (15));
  expect_events (f, STATE ("worker", HEALTHY, STALE), STALE ("worker", SECONDS (10)));
}


/* ------------------------------------------------------------------ */
/* History and unit starts */

/* The states of @agent's history, as "a b c". */
static char *
history_states (HeartbeatAgent *agent)
{
  g_autoptr(GVariant) history = g_variant_ref_sink (heartbeat_agent_get_history (agent));
  g_autoptr(GString) out = g_string_new (NULL);
  GVariantIter iter;
  guint64 at, last = 0;
  const char *state;

  g_variant_iter_init (&iter, history);
  while (g_variant_iter_next (&iter, "(t&s)", &at, &state))
    {
      g_assert_cmpuint (at, >=, last);
      last = at;
      g_string_append_printf (out, "%s%s", out->len ? " " : "", state);
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static void
test_history_records_changes (Fixture       *f,
                              gconstpointer  data)
{
  gint64 before = g_get_real_time ();
  HeartbeatAgent *agent = declare_agent (f, "svc", SECONDS (10), HOURS (1));
  g_autoptr(GError) error = NULL;
  g_autofree char *states = NULL;
  g_autoptr(GVariant) history = NULL;
  guint64 first_at;

  advance_to (f, T0 + SECONDS (1));
  beat (f, "svc");
  beat (f, "svc");               /* no change, no entry */
  check_at (f, T0 + SECONDS (11));
  beat (f, "svc");
  mark_gone (f, "svc");
  g_assert_true (heartbeat_monitor_mark_started (f->monitor, "svc", g_get_real_time (), &error));
  g_assert_no_error (error);
  states = history_states (agent);
  g_assert_cmpstr (states, ==, "no-heartbeat healthy stale healthy gone healthy");

  history = g_variant_ref_sink (heartbeat_agent_get_history (agent));
  g_variant_get_child (history, 0, "(t&s)", &first_at, NULL);
  g_assert_cmpuint (first_at, >=, (guint64) before);
  g_assert_cmpuint (first_at, <=, (guint64) g_get_real_time ());
}

static void
test_history_bounded (Fixture       *f,
                      gconstpointer  data)
{
  HeartbeatAgent *agent = register_agent (f, "flappy", SECONDS (10), HOURS (1));
  g_autoptr(GVariant) history = NULL;
  const char *state;

  for (int i = 0; i < 3 * HEARTBEAT_HISTORY_MAX_ENTRIES; i++)
    {
      mark_gone (f, "flappy");
      beat (f, "flappy");
    }
  mark_gone (f, "flappy");
  history = g_variant_ref_sink (heartbeat_agent_get_history (agent));
  g_assert_cmpuint (g_variant_n_children (history), ==, HEARTBEAT_HISTORY_MAX_ENTRIES);
  g_variant_get_child (history, HEARTBEAT_HISTORY_MAX_ENTRIES - 1, "(t&s)", NULL, &state);
  g_assert_cmpstr (state, ==, "gone");
  g_variant_get_child (history, HEARTBEAT_HISTORY_MAX_ENTRIES - 2, "(t&s)", NULL, &state);
  g_assert_cmpstr (state, ==, "healthy");
}

static void
test_history_restored_and_aged (Fixture       *f,
                                gconstpointer  data)
{
  gint64 real_now = g_get_real_time ();
  g_autoptr(GVariant) saved = g_variant_ref_sink (g_variant_new_parsed (
    "[(%t, 'healthy'), (%t, 'stale'), (%t, 'no-such-state'), (%t, 'healthy')]",
    (guint64) (real_now - HOURS (72)), (guint64) (real_now - HOURS (48)),
    (guint64) (real_now - HOURS (30)), (guint64) (real_now - HOURS (1))));
  HeartbeatAgentSnapshot snapshot = {
    .state = HEARTBEAT_AGENT_STATE_HEALTHY,
    .started_at_realtime = real_now - HOURS (1),
    .last_activity_at_realtime = real_now,
    .history = saved,
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) history = NULL;
  g_autofree char *states = NULL;
  HeartbeatAgent *agent;
  guint64 at;

  agent = heartbeat_monitor_restore (f->monitor, "worker", NULL, &snapshot, &error);
  g_assert_no_error (error);
  /* the unknown state is skipped, nothing is added for the same state,
   * and of what is older than a day only the newest is kept: the state
   * the day began in */
  states = history_states (agent);
  g_assert_cmpstr (states, ==, "stale healthy");

  /* a change adds to it */
  mark_gone (f, "worker");
  history = g_variant_ref_sink (heartbeat_agent_get_history (agent));
  g_assert_cmpuint (g_variant_n_children (history), ==, 3);
  g_variant_get_child (history, 0, "(t&s)", &at, NULL);
  g_assert_cmpuint (at, ==, (guint64) (real_now - HOURS (48)));
  g_clear_pointer (&states, g_free);
  states = history_states (agent);
  g_assert_cmpstr (states, ==, "stale healthy gone");
}

static void
test_started_is_a_new_run (Fixture       *f,
                           gconstpointer  data)
{
  HeartbeatAgent *agent = declare_agent (f, "svc", SECONDS (10), HOURS (1));
  g_autoptr(GError) error = NULL;

  expect_events (f, REGISTERED ("svc"));
  advance_to (f, T0 + SECONDS (1));
  beat (f, "svc");
  beat (f, "svc");
  expect_events (f, STATE ("svc", NO_HEARTBEAT, HEALTHY));
  advance_to (f, T0 + SECONDS (3));
  mark_gone (f, "svc");
  expect_events (f, STATE ("svc", HEALTHY, GONE));

  /* systemd says the unit became active 2 s ago */
  advance_to (f, T0 + SECONDS (20));
  g_assert_true (heartbeat_monitor_mark_started (f->monitor, "svc",
                                                 g_get_real_time () - SECONDS (2), &error));
  g_assert_no_error (error);
  expect_events (f, STATE ("svc", GONE, HEALTHY));
  g_assert_cmpuint (heartbeat_agent_get_beats (agent), ==, 2);   /* not a beat */
  g_assert_cmpstr (heartbeat_agent_get_status (agent), ==, "running");
  g_assert_cmpint (heartbeat_agent_get_running_usec (agent, f->now), >=, SECONDS (2) - SECONDS (1) / 10);
  g_assert_cmpint (heartbeat_agent_get_running_usec (agent, f->now), <=, SECONDS (2) + SECONDS (1) / 10);

  /* it never beats: stale 10 s after the start (the hung case) */
  check_at (f, T0 + SECONDS (27));
  expect_no_events (f);
  check_at (f, T0 + SECONDS (29));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_STALE);

  g_assert_false (heartbeat_monitor_mark_started (f->monitor, "nobody", g_get_real_time (), &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_NOT_FOUND);
}

/* A job that finished is idle (no deadlines); its next start has them
 * again: quiet for its threshold, it is stale. */
static void
test_started_after_idle (Fixture       *f,
                         gconstpointer  data)
{
  HeartbeatAgent *agent = declare_agent (f, "job", SECONDS (3), HOURS (1));
  g_autoptr(GError) error = NULL;

  g_assert_true (heartbeat_monitor_mark_idle (f->monitor, "job", &error));
  g_assert_true (heartbeat_agent_is_idle (agent));
  check_at (f, T0 + HOURS (2));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_HEALTHY);

  g_assert_true (heartbeat_monitor_mark_started (f->monitor, "job", g_get_real_time (), &error));
  g_assert_no_error (error);
  g_assert_false (heartbeat_agent_is_idle (agent));
  g_assert_cmpstr (heartbeat_agent_get_status (agent), ==, "running");
  /* due a threshold after the start: the start was read from the wall
   * clock just before, so it may be a few µs earlier */
  g_assert_cmpint (heartbeat_monitor_get_next_deadline (f->monitor), <=, T0 + HOURS (2) + SECONDS (3));
  g_assert_cmpint (heartbeat_monitor_get_next_deadline (f->monitor), >, T0 + HOURS (2) + SECONDS (3) - SECONDS (1) / 10);
  check_at (f, T0 + HOURS (2) + SECONDS (3));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_STALE);
}

/* ------------------------------------------------------------------ */
/* Unregister, listing, status */

static void
test_unregister_removes_agent (Fixture       *f,
                               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HeartbeatAgent) kept = NULL;
  HeartbeatAgentOptions options = { 0 };

  options.owner_uid = 1000;
  kept = heartbeat_agent_ref (register_with (f, "a", &options));
  register_with (f, "b", &options);
  expect_events (f, REGISTERED ("a"), REGISTERED ("b"));
  g_assert_cmpuint (heartbeat_monitor_count_owned_by (f->monitor, 1000), ==, 2);

  advance_to (f, T0 + SECONDS (1));
  beat (f, "a");
  unregister (f, "a");
  expect_events (f, UNREGISTERED ("a", UNREGISTERED));
  g_assert_null (heartbeat_monitor_lookup (f->monitor, "a"));
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (f->monitor), ==, 1);
  g_assert_cmpuint (heartbeat_monitor_count_owned_by (f->monitor, 1000), ==, 1);
  g_assert_cmpstr (heartbeat_agent_get_id (kept), ==, "a");
  g_assert_cmpuint (heartbeat_agent_get_beats (kept), ==, 1);

  g_assert_false (heartbeat_monitor_unregister (f->monitor, "a", &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_NOT_FOUND);
  expect_no_events (f);
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (f->monitor), ==, 1);

  /* Its deadlines went with it. */
  check_at (f, T0 + MINUTES (5));
  expect_events (f, STATE ("b", HEALTHY, STALE), STALE ("b", MINUTES (5)));
  check_at (f, T0 + HOURS (1));
  expect_events (f,
                 STATE ("b", STALE, TIMED_OUT),
                 TIMED_OUT ("b", HOURS (1)));
}

/* The counters /metrics exports, kept by the monitor where it emits the
 * signals they count. */
typedef struct {
  guint beat, stale, timed_out, recovered;
} SignalCounts;

static void
count_beat (HeartbeatMonitor *monitor, HeartbeatAgent *agent, SignalCounts *c)
{
  c->beat++;
  /* counted before the handlers hear of it */
  g_assert_cmpuint (heartbeat_monitor_get_beats_total (monitor), ==, c->beat);
}

static void
count_stale (HeartbeatMonitor *monitor, HeartbeatAgent *agent, gint64 idle, SignalCounts *c)
{
  c->stale++;
  g_assert_cmpuint (heartbeat_monitor_get_stale_total (monitor), ==, c->stale);
}

static void
count_timed_out (HeartbeatMonitor *monitor, HeartbeatAgent *agent, gint64 running, SignalCounts *c)
{
  c->timed_out++;
  g_assert_cmpuint (heartbeat_monitor_get_timeouts_total (monitor), ==, c->timed_out);
}

static void
count_recovered (HeartbeatMonitor *monitor, HeartbeatAgent *agent, SignalCounts *c)
{
  c->recovered++;
  g_assert_cmpuint (heartbeat_monitor_get_recoveries_total (monitor), ==, c->recovered);
}

static void
assert_totals (Fixture            *f,
               const SignalCounts *c,
               guint64             beats,
               guint64             stale,
               guint64             timeouts,
               guint64             recoveries)
{
  g_assert_cmpuint (c->beat, ==, beats);
  g_assert_cmpuint (c->stale, ==, stale);
  g_assert_cmpuint (c->timed_out, ==, timeouts);
  g_assert_cmpuint (c->recovered, ==, recoveries);
  g_assert_cmpuint (heartbeat_monitor_get_beats_total (f->monitor), ==, beats);
  g_assert_cmpuint (heartbeat_monitor_get_stale_total (f->monitor), ==, stale);
  g_assert_cmpuint (heartbeat_monitor_get_timeouts_total (f->monitor), ==, timeouts);
  g_assert_cmpuint (heartbeat_monitor_get_recoveries_total (f->monitor), ==, recoveries);
}

static void
assert_agent_counts (Fixture    *f,
                     const char *id,
                     guint64     stale_episodes,
                     guint64     timeouts)
{
  HeartbeatAgent *agent = heartbeat_monitor_lookup (f->monitor, id);

  g_assert_nonnull (agent);
  g_assert_cmpuint (heartbeat_agent_get_stale_episodes (agent), ==, stale_episodes);
  g_assert_cmpuint (heartbeat_agent_get_timeouts (agent), ==, timeouts);
}

static void
test_counters_totals_and_episodes (Fixture       *f,
                                   gconstpointer  data)
{
  SignalCounts c = { 0 };
  g_autoptr(HeartbeatAgent) old_job = NULL;

  g_signal_connect (f->monitor, "agent-beat", G_CALLBACK (count_beat), &c);
  g_signal_connect (f->monitor, "agent-stale", G_CALLBACK (count_stale), &c);
  g_signal_connect (f->monitor, "agent-timed-out", G_CALLBACK (count_timed_out), &c);
  g_signal_connect (f->monitor, "agent-recovered", G_CALLBACK (count_recovered), &c);
  heartbeat_monitor_set_stale_warning_only_once (f->monitor, FALSE);

  register_agent (f, "job", 0, 0);
  register_agent (f, "other", 0, HOURS (10));
  expect_events (f, REGISTERED ("job"), REGISTERED ("other"));
  assert_totals (f, &c, 0, 0, 0, 0);
  assert_agent_counts (f, "job", 0, 0);

  /* every beat signal, a healthy agent's and an idle one's too */
  advance_to (f, T0 + SECONDS (10));
  beat (f, "job");
  beat (f, "other");
  mark_idle (f, "other");
  assert_totals (f, &c, 3, 0, 0, 0);

  /* every stale warning; the episode once */
  check_at (f, T0 + SECONDS (10) + MINUTES (5));
  expect_events (f, STATE ("job", HEALTHY, STALE), STALE ("job", MINUTES (5)));
  assert_totals (f, &c, 3, 1, 0, 0);
  assert_agent_counts (f, "job", 1, 0);
  check_at (f, T0 + SECONDS (40) + MINUTES (5));
  expect_events (f, STALE ("job", MINUTES (5) + SECONDS (30)));
  check_at (f, T0 + SECONDS (70) + MINUTES (5));
  expect_events (f, STALE ("job", MINUTES (5) + SECONDS (60)));
  assert_totals (f, &c, 3, 3, 0, 0);
  assert_agent_counts (f, "job", 1, 0);
  assert_agent_counts (f, "other", 0, 0);

  /* a recovery ends the episode; the next one counts */
  advance_to (f, T0 + MINUTES (7));
  beat (f, "job");
  expect_events (f, STATE ("job", STALE, HEALTHY), RECOVERED ("job"));
  assert_totals (f, &c, 4, 3, 0, 1);
  check_at (f, T0 + MINUTES (12));
  expect_events (f, STATE ("job", HEALTHY, STALE), STALE ("job", MINUTES (5)));
  assert_totals (f, &c, 4, 4, 0, 1);
  assert_agent_counts (f, "job", 2, 0);

  /* registering again ends the episode and keeps the counts */
  register_agent (f, "job", 0, 0);
  expect_events (f, STATE ("job", STALE, HEALTHY), REGISTERED ("job"));
  assert_totals (f, &c, 4, 4, 0, 1);
  assert_agent_counts (f, "job", 2, 0);
  check_at (f, T0 + MINUTES (17));
  expect_events (f, STATE ("job", HEALTHY, STALE), STALE ("job", MINUTES (5)));
  assert_totals (f, &c, 4, 5, 0, 1);
  assert_agent_counts (f, "job", 3, 0);

  /* a timeout ends the episode and counts; so does the next */
  check_at (f, T0 + MINUTES (42));
  expect_events (f, STATE ("job", STALE, TIMED_OUT), TIMED_OUT ("job", MINUTES (30)));
  assert_totals (f, &c, 4, 5, 1, 1);
  assert_agent_counts (f, "job", 3, 1);
  advance_to (f, T0 + MINUTES (43));
  beat (f, "job");
  expect_events (f, STATE ("job", TIMED_OUT, HEALTHY));
  assert_totals (f, &c, 5, 5, 1, 1);
  check_at (f, T0 + MINUTES (48));
  expect_events (f, STATE ("job", HEALTHY, STALE), STALE ("job", MINUTES (5)));
  check_at (f, T0 + MINUTES (73));
  expect_events (f, STATE ("job", STALE, TIMED_OUT), TIMED_OUT ("job", MINUTES (30)));
  assert_totals (f, &c, 5, 6, 2, 1);
  assert_agent_counts (f, "job", 4, 2);
  assert_agent_counts (f, "other", 0, 0);

  /* unregistered, its counts go with it; the totals stay */
  old_job = heartbeat_agent_ref (heartbeat_monitor_lookup (f->monitor, "job"));
  unregister (f, "job");
  expect_events (f, UNREGISTERED ("job", UNREGISTERED));
  register_agent (f, "job", 0, 0);
  expect_events (f, REGISTERED ("job"));
  assert_agent_counts (f, "job", 0, 0);
  g_assert_cmpuint (heartbeat_agent_get_stale_episodes (old_job), ==, 4);
  g_assert_cmpuint (heartbeat_agent_get_timeouts (old_job), ==, 2);
  assert_totals (f, &c, 5, 6, 2, 1);
}

static void
test_list_sorted_with_counts (Fixture       *f,
                              gconstpointer  data)
{
  const char *ids[] = { "charlie", "Alpha", "bravo", "alpha", "0-first" };
  const char *sorted[] = { "0-first", "Alpha", "alpha", "bravo", "charlie", "delta" };
  g_autoptr(GPtrArray) empty = heartbeat_monitor_list_agents (f->monitor);
  g_autoptr(GPtrArray) list = NULL;
  guint counts[HEARTBEAT_AGENT_N_STATES] = { 0 };

  g_assert_nonnull (empty);
  g_assert_cmpuint (empty->len, ==, 0);

  for (guint i = 0; i < G_N_ELEMENTS (ids); i++)
    {
      HeartbeatAgentOptions options = { 0 };

      options.owner_uid = i < 3 ? 1000 : 0;
      options.stale_after_usec = i == 1 ? SECONDS (1) : 0;
      register_with (f, ids[i], &options);
    }
  beat_status (f, "bravo", "error");
  declare_agent (f, "delta", 0, 0);
  mark_gone (f, "charlie");
  check_at (f, T0 + SECONDS (1));   /* Alpha goes stale */

  list = heartbeat_monitor_list_agents (f->monitor);
  g_assert_cmpuint (list->len, ==, G_N_ELEMENTS (sorted));
  for (guint i = 0; i < list->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (list, i);

      g_assert_cmpstr (heartbeat_agent_get_id (agent), ==, sorted[i]);
      g_assert_true (heartbeat_monitor_lookup (f->monitor, sorted[i]) == agent);
    }

  heartbeat_monitor_get_state_counts (f->monitor, counts);
  g_assert_cmpuint (counts[HEARTBEAT_AGENT_STATE_HEALTHY], ==, 2);
  g_assert_cmpuint (counts[HEARTBEAT_AGENT_STATE_STALE], ==, 1);
  g_assert_cmpuint (counts[HEARTBEAT_AGENT_STATE_TIMED_OUT], ==, 0);
  g_assert_cmpuint (counts[HEARTBEAT_AGENT_STATE_ERROR], ==, 1);
  g_assert_cmpuint (counts[HEARTBEAT_AGENT_STATE_GONE], ==, 1);
  g_assert_cmpuint (counts[HEARTBEAT_AGENT_STATE_NO_HEARTBEAT], ==, 1);
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (f->monitor), ==, 6);

  g_assert_cmpuint (heartbeat_monitor_count_owned_by (f->monitor, 1000), ==, 3);
  g_assert_cmpuint (heartbeat_monitor_count_owned_by (f->monitor, 0), ==, 3);
  g_assert_cmpuint (heartbeat_monitor_count_owned_by (f->monitor, 42), ==, 0);

  /* The list holds references: its agents outlive their removal. */
  unregister (f, "0-first");
  unregister (f, "charlie");
  g_assert_cmpstr (heartbeat_agent_get_id (g_ptr_array_index (list, 0)), ==, "0-first");
  g_assert_cmpstr (heartbeat_agent_get_id (g_ptr_array_index (list, 4)), ==, "charlie");
  g_assert_cmpuint (heartbeat_monitor_count_owned_by (f->monitor, 1000), ==, 2);
  g_assert_cmpuint (heartbeat_monitor_count_owned_by (f->monitor, 0), ==, 2);
  heartbeat_monitor_get_state_counts (f->monitor, counts);
  g_assert_cmpuint (counts[HEARTBEAT_AGENT_STATE_GONE], ==, 0);
  g_assert_cmpuint (counts[HEARTBEAT_AGENT_STATE_HEALTHY], ==, 1);
}

static guint32
status_uint (GVariant   *status,
             const char *key)
{
  g_autoptr(GVariant) value = g_variant_lookup_value (status, key, G_VARIANT_TYPE_UINT32);

  g_assert_nonnull (value);
  return g_variant_get_uint32 (value);
}

static gint64
status_int64 (GVariant   *status,
              const char *key)
{
  g_autoptr(GVariant) value = g_variant_lookup_value (status, key, G_VARIANT_TYPE_INT64);

  g_assert_nonnull (value);
  return g_variant_get_int64 (value);
}

static gboolean
status_boolean (GVariant   *status,
                const char *key)
{
  g_autoptr(GVariant) value = g_variant_lookup_value (status, key, G_VARIANT_TYPE_BOOLEAN);

  g_assert_nonnull (value);
  return g_variant_get_boolean (value);
}

static void
test_status_reports_everything (Fixture       *f,
                                gconstpointer  data)
{
  static const char *const nicks[] = {
    "healthy", "stale", "timed-out", "error", "gone", "no-heartbeat", "paused",
  };
  g_autoptr(GVariant) status = NULL;
  g_autoptr(GVariant) agents = NULL;
  g_autoptr(GVariant) states = NULL;
  g_autofree const char **ids = NULL;
  gsize n_ids = 0;

  status = g_variant_ref_sink (heartbeat_monitor_get_status (f->monitor));
  g_assert_true (g_variant_is_of_type (status, G_VARIANT_TYPE_VARDICT));
  g_assert_false (status_boolean (status, "running"));
  g_assert_cmpuint (status_uint (status, "agent-count"), ==, 0);
  g_clear_pointer (&status, g_variant_unref);

  register_agent (f, "b", SECONDS (10), 0);
  register_agent (f, "a", 0, 0);
  check_at (f, T0 + SECONDS (10));
  heartbeat_monitor_set_check_interval (f->monitor, SECONDS (15));
  heartbeat_monitor_set_stale_warning_only_once (f->monitor, FALSE);
  heartbeat_monitor_start (f->monitor);

  status = g_variant_ref_sink (heartbeat_monitor_get_status (f->monitor));
  g_assert_true (g_variant_is_of_type (status, G_VARIANT_TYPE_VARDICT));
  g_assert_true (status_boolean (status, "running"));
  g_assert_cmpuint (status_uint (status, "agent-count"), ==, 2);
  g_assert_cmpint (status_int64 (status, "check-interval-usec"), ==, SECONDS (15));
  g_assert_cmpint (status_int64 (status, "stale-threshold-usec"), ==, MINUTES (5));
  g_assert_cmpint (status_int64 (status, "timeout-threshold-usec"), ==, MINUTES (30));
  g_assert_false (status_boolean (status, "stale-warning-only-once"));

  agents = g_variant_lookup_value (status, "agents", G_VARIANT_TYPE_STRING_ARRAY);
  g_assert_nonnull (agents);
  ids = g_variant_get_strv (agents, &n_ids);
  g_assert_cmpuint (n_ids, ==, 2);
  g_assert_cmpstr (ids[0], ==, "a");
  g_assert_cmpstr (ids[1], ==, "b");

  states = g_variant_lookup_value (status, "states", G_VARIANT_TYPE ("a{su}"));
  g_assert_nonnull (states);
  g_assert_cmpuint (g_variant_n_children (states), ==, G_N_ELEMENTS (nicks));
  for (guint i = 0; i < G_N_ELEMENTS (nicks); i++)
    {
      guint32 count = G_MAXUINT32;

      g_assert_true (g_variant_lookup (states, nicks[i], "u", &count));
      g_assert_cmpuint (count, ==, i == HEARTBEAT_AGENT_STATE_HEALTHY ? 1 :
                                   i == HEARTBEAT_AGENT_STATE_STALE ? 1 : 0);
    }

  heartbeat_monitor_stop (f->monitor);
}

/* ------------------------------------------------------------------ */
/* Re-entrancy */

static void
unregister_in_stale_handler (HeartbeatMonitor *monitor,
                             HeartbeatAgent   *agent,
                             gint64            idle_usec,
                             gpointer          user_data)
{
  Fixture *f = user_data;

  if (g_str_equal (heartbeat_agent_get_id (agent), "a"))
    {
      /* Itself, one due later in this same check, and a new one. */
      unregister (f, "a");
      unregister (f, "b");
      register_agent (f, "d", SECONDS (1), 0);
    }
}

static void
test_signals_unregister_from_stale_handler (Fixture       *f,
                                            gconstpointer  data)
{
  register_agent (f, "a", SECONDS (10), 0);
  register_agent (f, "b", SECONDS (11), 0);
  register_agent (f, "c", SECONDS (12), 0);
  expect_events (f, REGISTERED ("a"), REGISTERED ("b"), REGISTERED ("c"));
  g_signal_connect (f->monitor, "agent-stale", G_CALLBACK (unregister_in_stale_handler), f);

  check_at (f, T0 + SECONDS (30));
  expect_events (f,
                 STATE ("a", HEALTHY, STALE),
                 STALE ("a", SECONDS (30)),
                 UNREGISTERED ("a", UNREGISTERED),
                 UNREGISTERED ("b", UNREGISTERED),
                 REGISTERED ("d"),
                 STATE ("c", HEALTHY, STALE),
                 STALE ("c", SECONDS (30)));
  g_assert_null (heartbeat_monitor_lookup (f->monitor, "a"));
  g_assert_null (heartbeat_monitor_lookup (f->monitor, "b"));
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (f->monitor), ==, 2);

  /* The agent registered from the handler counts from then. */
  g_assert_cmpint (heartbeat_agent_get_started_at (heartbeat_monitor_lookup (f->monitor, "d")),
                   ==, T0 + SECONDS (30));
  check_at (f, T0 + SECONDS (31) - 1);
  expect_no_events (f);
  check_at (f, T0 + SECONDS (31));
  expect_events (f, STATE ("d", HEALTHY, STALE), STALE ("d", SECONDS (1)));

  check_at (f, T0 + HOURS (1));
  expect_events (f,
                 STATE ("c", STALE, TIMED_OUT),
                 TIMED_OUT ("c", HOURS (1)),
                 STATE ("d", STALE, TIMED_OUT),
                 TIMED_OUT ("d", HOURS (1) - SECONDS (30)));
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (f->monitor), ==, 2);   /* listed, timed out */
}

static void
beat_other_in_stale_handler (HeartbeatMonitor *monitor,
                             HeartbeatAgent   *agent,
                             gint64            idle_usec,
                             gpointer          user_data)
{
  Fixture *f = user_data;

  if (g_str_equal (heartbeat_agent_get_id (agent), "a"))
    beat (f, "b");
}

static void
test_signals_beat_from_stale_handler (Fixture       *f,
                                      gconstpointer  data)
{
  register_agent (f, "a", SECONDS (10), 0);
  register_agent (f, "b", SECONDS (11), 0);
  expect_events (f, REGISTERED ("a"), REGISTERED ("b"));
  g_signal_connect (f->monitor, "agent-stale", G_CALLBACK (beat_other_in_stale_handler), f);

  /* b was due in this check, but beat before its turn came. */
  check_at (f, T0 + SECONDS (20));
  expect_events (f, STATE ("a", HEALTHY, STALE), STALE ("a", SECONDS (20)));
  g_assert_cmpint (state_of (f, "b"), ==, HEARTBEAT_AGENT_STATE_HEALTHY);

  check_at (f, T0 + SECONDS (31) - 1);
  expect_no_events (f);
  check_at (f, T0 + SECONDS (31));
  expect_events (f, STATE ("b", HEALTHY, STALE), STALE ("b", SECONDS (11)));
}

/* ------------------------------------------------------------------ */
/* Main loop integration */

static void
test_source_no_wakeup_without_deadlines (Fixture       *f,
                                         gconstpointer  data)
{
  gint timeout;

  f->use_real_clock = TRUE;

  /* Not started: never a wakeup. */
  g_assert_cmpint (context_timeout (f->context), ==, -1);
  register_agent (f, "job", 0, 0);
  g_assert_cmpint (context_timeout (f->context), ==, -1);
  unregister (f, "job");

  heartbeat_monitor_start (f->monitor);
  g_assert_true (heartbeat_monitor_get_running (f->monitor));
  g_assert_cmpint (context_timeout (f->context), ==, -1);

  /* Only agents without deadlines: still none. */
  register_agent (f, "idle", 0, 0);
  mark_idle (f, "idle");
  declare_agent (f, "declared", 0, 0);
  g_assert_cmpint (heartbeat_monitor_get_next_deadline (f->monitor), ==, HEARTBEAT_NO_DEADLINE);
  g_assert_cmpint (context_timeout (f->context), ==, -1);

  /* A deadline: a finite wakeup, at most the stale threshold away. */
  register_agent (f, "job", 0, 0);
  timeout = context_timeout (f->context);
  g_assert_cmpint (timeout, >=, 0);
  g_assert_cmpint (timeout, <=, MINUTES (5) / 1000);

  /* Gone again: no wakeup. */
  unregister (f, "job");
  g_assert_cmpint (context_timeout (f->context), ==, -1);

  register_agent (f, "job", 0, 0);
  g_assert_cmpint (context_timeout (f->context), >=, 0);
  heartbeat_monitor_stop (f->monitor);
  g_assert_false (heartbeat_monitor_get_running (f->monitor));
  g_assert_cmpint (context_timeout (f->context), ==, -1);
  expect_events (f,
                 REGISTERED ("job"), UNREGISTERED ("job", UNREGISTERED),
                 REGISTERED ("idle"), REGISTERED ("declared"),
                 REGISTERED ("job"), UNREGISTERED ("job", UNREGISTERED),
                 REGISTERED ("job"));
}

typedef struct {
  GMainLoop *loop;
  gint64     stale_at;
  gint64     idle_usec;
  gboolean   expired;
} LoopData;

static void
quit_on_stale (HeartbeatMonitor *monitor,
               HeartbeatAgent   *agent,
               gint64            idle_usec,
               gpointer          user_data)
{
  LoopData *loop_data = user_data;

  loop_data->stale_at = g_get_monotonic_time ();
  loop_data->idle_usec = idle_usec;
  g_main_loop_quit (loop_data->loop);
}

static gboolean
loop_expired (gpointer user_data)
{
  LoopData *loop_data = user_data;

  loop_data->expired = TRUE;
  g_main_loop_quit (loop_data->loop);
  return G_SOURCE_REMOVE;
}

static void
test_start_stop_runs_checks_in_main_loop (Fixture       *f,
                                          gconstpointer  data)
{
  g_autoptr(GSource) guard = NULL;
  LoopData loop_data = { 0 };
  gboolean running = FALSE;
  gint64 registered_at;

  f->use_real_clock = TRUE;
  loop_data.loop = g_main_loop_new (f->context, FALSE);
  g_signal_connect (f->monitor, "agent-stale", G_CALLBACK (quit_on_stale), &loop_data);
  heartbeat_monitor_set_stale_threshold (f->monitor, 20 * 1000);

  g_assert_false (heartbeat_monitor_get_running (f->monitor));
  heartbeat_monitor_start (f->monitor);
  g_assert_true (heartbeat_monitor_get_running (f->monitor));
  g_object_get (f->monitor, "running", &running, NULL);
  g_assert_true (running);
  g_assert_cmpuint (f->notify_running, ==, 1);

  registered_at = g_get_monotonic_time ();
  register_agent (f, "job", 0, 0);

  guard = g_timeout_source_new (2000);
  g_source_set_callback (guard, loop_expired, &loop_data, NULL);
  g_source_attach (guard, f->context);
  g_main_loop_run (loop_data.loop);
  g_source_destroy (guard);

  g_assert_false (loop_data.expired);
  g_assert_cmpint (loop_data.idle_usec, >=, 20 * 1000);
  g_assert_cmpint (loop_data.stale_at - registered_at, >=, 20 * 1000);
  g_assert_cmpint (state_of (f, "job"), ==, HEARTBEAT_AGENT_STATE_STALE);

  heartbeat_monitor_stop (f->monitor);
  g_assert_false (heartbeat_monitor_get_running (f->monitor));
  g_object_get (f->monitor, "running", &running, NULL);
  g_assert_false (running);
  g_assert_cmpuint (f->notify_running, ==, 2);
  /* Stopped: nothing wakes the context for the pending timeout. */
  g_assert_cmpint (context_timeout (f->context), ==, -1);

  g_main_loop_unref (loop_data.loop);
}

static void
test_default_instance (void)
{
  HeartbeatMonitor *first = heartbeat_monitor_get_default ();
  HeartbeatMonitor *second = heartbeat_monitor_get_default ();

  g_assert_true (HEARTBEAT_IS_MONITOR (first));
  g_assert_true (first == second);
  g_assert_cmpint (heartbeat_monitor_get_stale_threshold (first), ==, MINUTES (5));
}

/* ------------------------------------------------------------------ */
/* Enums and ids */

static void
test_enums_round_trip (void)
{
  static const char *const state_nicks[] = {
    "healthy", "stale", "timed-out", "error", "gone", "no-heartbeat", "paused",
  };
  static const char *const reason_nicks[] = { "unregistered", "timed-out", "gone" };
  g_autoptr(GEnumClass) states = g_type_class_ref (HEARTBEAT_TYPE_AGENT_STATE);
  g_autoptr(GEnumClass) reasons = g_type_class_ref (HEARTBEAT_TYPE_UNREGISTER_REASON);
  HeartbeatAgentState state = HEARTBEAT_AGENT_STATE_ERROR;

  g_assert_cmpuint (G_N_ELEMENTS (state_nicks), ==, HEARTBEAT_AGENT_N_STATES);
  g_assert_cmpuint (states->n_values, ==, HEARTBEAT_AGENT_N_STATES);
  for (guint i = 0; i < HEARTBEAT_AGENT_N_STATES; i++)
    {
      g_assert_cmpstr (heartbeat_agent_state_to_string (i), ==, state_nicks[i]);
      g_assert_cmpstr (g_enum_get_value (states, i)->value_nick, ==, state_nicks[i]);
      g_assert_true (heartbeat_agent_state_from_string (state_nicks[i], &state));
      g_assert_cmpint (state, ==, i);
    }
  g_assert_cmpstr (heartbeat_agent_state_to_string (HEARTBEAT_AGENT_STATE_TIMED_OUT), ==, "timed-out");

  state = HEARTBEAT_AGENT_STATE_GONE;
  g_assert_false (heartbeat_agent_state_from_string ("bogus", &state));
  g_assert_false (heartbeat_agent_state_from_string ("", &state));
  g_assert_false (heartbeat_agent_state_from_string ("HEALTHY", &state));
  g_assert_cmpint (state, ==, HEARTBEAT_AGENT_STATE_GONE);

  g_assert_cmpuint (reasons->n_values, ==, G_N_ELEMENTS (reason_nicks));
  for (guint i = 0; i < G_N_ELEMENTS (reason_nicks); i++)
    {
      g_assert_cmpstr (heartbeat_unregister_reason_to_string (i), ==, reason_nicks[i]);
      g_assert_cmpstr (g_enum_get_value (reasons, i)->value_nick, ==, reason_nicks[i]);
    }
}

static void
test_id_validation (void)
{
  g_autofree char *max = g_strnfill (HEARTBEAT_ID_MAX_LENGTH, 'x');
  g_autofree char *too_long = g_strnfill (HEARTBEAT_ID_MAX_LENGTH + 1, 'x');
  const char *valid[] = { "a", "Az09._:@-", "job@host:42", max };
  const char *invalid[] = {
    NULL, "", too_long, "has space", "a/b", "\xc3\xa9", "a\nb", "tab\t", "semi;colon", ".", "..",
  };

  for (guint i = 0; i < G_N_ELEMENTS (valid); i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_true (heartbeat_id_is_valid (valid[i], &error));
      g_assert_no_error (error);
    }
  for (guint i = 0; i < G_N_ELEMENTS (invalid); i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_false (heartbeat_id_is_valid (invalid[i], &error));
      g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT);
      g_assert_false (heartbeat_id_is_valid (invalid[i], NULL));
    }
}

/* ------------------------------------------------------------------ */
/* Invalid input */

typedef struct {
  HeartbeatAgentState state;
  char               *status;
  char               *task_id;
  guint64             beats;
  gint64              started_at;
  gint64              last_activity_at;
  gint64              stale_after;
  gint64              timeout_after;
  char               *metadata;
  guint               n_agents;
  guint               n_events;
  gint64              next_deadline;
} Snapshot;

static void
snapshot_take (Fixture  *f,
               Snapshot *s)
{
  HeartbeatAgent *agent = heartbeat_monitor_lookup (f->monitor, "keep");
  GVariant *metadata;

  g_assert_nonnull (agent);
  s->state = heartbeat_agent_get_state (agent);
  s->status = g_strdup (heartbeat_agent_get_status (agent));
  s->task_id = g_strdup (heartbeat_agent_get_task_id (agent));
  s->beats = heartbeat_agent_get_beats (agent);
  s->started_at = heartbeat_agent_get_started_at (agent);
  s->last_activity_at = heartbeat_agent_get_last_activity_at (agent);
  s->stale_after = heartbeat_agent_get_stale_after (agent);
  s->timeout_after = heartbeat_agent_get_timeout_after (agent);
  metadata = heartbeat_agent_get_metadata (agent);
  s->metadata = metadata ? g_variant_print (metadata, TRUE) : NULL;
  s->n_agents = heartbeat_monitor_get_n_agents (f->monitor);
  s->n_events = f->events->len;
  s->next_deadline = heartbeat_monitor_get_next_deadline (f->monitor);
}

static void
snapshot_clear (Snapshot *s)
{
  g_free (s->status);
  g_free (s->task_id);
  g_free (s->metadata);
}

/* Asserts that a call failed with @code and left everything as it was. */
static void
assert_rejected (Fixture        *f,
                 const Snapshot *before,
                 gboolean        ok,
                 GError         *error,
                 gint            code,
                 const char     *what)
{
  Snapshot after = { 0 };

  if (ok || error == NULL)
    g_error ("%s: accepted, expected error code %d", what, code);
  if (!g_error_matches (error, HEARTBEAT_ERROR, code))
    g_error ("%s: got error %s:%d “%s”, expected code %d", what,
             g_quark_to_string (error->domain), error->code, error->message, code);

  snapshot_take (f, &after);
  g_assert_cmpint (after.state, ==, before->state);
  g_assert_cmpstr (after.status, ==, before->status);
  g_assert_cmpstr (after.task_id, ==, before->task_id);
  g_assert_cmpuint (after.beats, ==, before->beats);
  g_assert_cmpint (after.started_at, ==, before->started_at);
  g_assert_cmpint (after.last_activity_at, ==, before->last_activity_at);
  g_assert_cmpint (after.stale_after, ==, before->stale_after);
  g_assert_cmpint (after.timeout_after, ==, before->timeout_after);
  g_assert_cmpstr (after.metadata, ==, before->metadata);
  g_assert_cmpuint (after.n_agents, ==, before->n_agents);
  g_assert_cmpint (after.next_deadline, ==, before->next_deadline);
  if (after.n_events != before->n_events)
    g_error ("%s: rejected, but emitted %u signals", what, after.n_events - before->n_events);
  snapshot_clear (&after);
}

static void
try_register (Fixture                     *f,
              const Snapshot              *before,
              const char                  *id,
              const HeartbeatAgentOptions *options,
              const char                  *what)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) declare_error = NULL;
  HeartbeatAgent *agent;

  f->now += SECONDS (1);
  agent = heartbeat_monitor_register (f->monitor, id, options, &error);
  assert_rejected (f, before, agent != NULL, error, HEARTBEAT_ERROR_INVALID_ARGUMENT, what);
  agent = heartbeat_monitor_declare (f->monitor, id, options, &declare_error);
  assert_rejected (f, before, agent != NULL, declare_error, HEARTBEAT_ERROR_INVALID_ARGUMENT, what);
}

static void
try_beat (Fixture                    *f,
          const Snapshot             *before,
          const char                 *id,
          const HeartbeatBeatDetails *details,
          gint                        code,
          const char                 *what)
{
  g_autoptr(GError) error = NULL;
  gboolean ok;

  f->now += SECONDS (1);
  ok = heartbeat_monitor_beat (f->monitor, id, details, &error);
  assert_rejected (f, before, ok, error, code, what);
}

static void
test_invalid_input_rejected (Fixture       *f,
                             gconstpointer  data)
{
  g_autofree char *id_max = g_strnfill (HEARTBEAT_ID_MAX_LENGTH, 'i');
  g_autofree char *id_too_long = g_strnfill (HEARTBEAT_ID_MAX_LENGTH + 1, 'i');
  g_autofree char *status_max = g_strnfill (HEARTBEAT_STATUS_MAX_LENGTH, 's');
  g_autofree char *status_too_long = g_strnfill (HEARTBEAT_STATUS_MAX_LENGTH + 1, 's');
  g_autofree char *task_max = g_strnfill (HEARTBEAT_TASK_ID_MAX_LENGTH, 't');
  g_autofree char *task_too_long = g_strnfill (HEARTBEAT_TASK_ID_MAX_LENGTH + 1, 't');
  g_autofree char *big_string = g_strnfill (HEARTBEAT_METADATA_MAX_SIZE + 1, 'm');
  g_autofree char *half_string = g_strnfill (HEARTBEAT_METADATA_MAX_SIZE / 2 + 100, 'h');
  g_autoptr(GVariant) keep_metadata = dict_new ("half", g_variant_new_string (half_string), NULL);
  g_autoptr(GVariant) other_half = dict_new ("other", g_variant_new_string (half_string), NULL);
  g_autoptr(GVariant) same_half = dict_new ("half", g_variant_new_string (half_string), NULL);
  g_autoptr(GVariant) too_big = dict_new ("blob", g_variant_new_string (big_string), NULL);
  g_autoptr(GVariant) not_dict = g_variant_ref_sink (g_variant_new_string ("not a dict"));
  g_autoptr(GVariant) wrong_dict = NULL;
  const char *bad_ids[] = {
    NULL, "", id_too_long, "has space", "a/b", "\xc3\xa9", "a\nb",
  };
  const struct {
    const char *status;
    const char *what;
  } bad_statuses[] = {
    { status_too_long, "status too long" },
    { "\xff\xfe", "status not UTF-8" },
    { "caf\xc3", "status truncated UTF-8" },
    { "two\nlines", "status with a control character" },
  };
  const double bad_progress[] = { NAN, INFINITY, -INFINITY };
  const gint64 bad_thresholds[] = { -1, G_MININT64, HEARTBEAT_THRESHOLD_MAX + 1, G_MAXINT64 };
  HeartbeatAgentOptions options = { 0 };
  HeartbeatBeatDetails details = { 0 };
  Snapshot before = { 0 };
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a{ss}"));
  g_variant_builder_add (&builder, "{ss}", "key", "value");
  wrong_dict = g_variant_ref_sink (g_variant_builder_end (&builder));

  /* An agent that must survive all of it untouched. */
  options.task_id = "keep-task";
  options.stale_after_usec = MINUTES (10);
  options.metadata = keep_metadata;
  register_with (f, "keep", &options);
  advance_to (f, T0 + SECONDS (1));
  beat_status (f, "keep", "working");
  f->seen = f->events->len;
  snapshot_take (f, &before);

  /* Ids */
  for (guint i = 0; i < G_N_ELEMENTS (bad_ids); i++)
    {
      g_autofree char *what = g_strdup_printf ("register id #%u", i);

      try_register (f, &before, bad_ids[i], NULL, what);
    }

  /* Options, for a new id and for the existing one */
  for (guint pass = 0; pass < 2; pass++)
    {
      const char *id = pass == 0 ? "new-agent" : "keep";

      for (guint i = 0; i < G_N_ELEMENTS (bad_thresholds); i++)
        {
          options = (HeartbeatAgentOptions) { 0 };
          options.stale_after_usec = bad_thresholds[i];
          try_register (f, &before, id, &options, "bad stale threshold");
          options = (HeartbeatAgentOptions) { 0 };
          options.timeout_after_usec = bad_thresholds[i];
          try_register (f, &before, id, &options, "bad timeout threshold");
        }
      options = (HeartbeatAgentOptions) { 0 };
      options.task_id = task_too_long;
      try_register (f, &before, id, &options, "task id too long");
      options.task_id = "\xff";
      try_register (f, &before, id, &options, "task id not UTF-8");
      options = (HeartbeatAgentOptions) { 0 };
      options.metadata = not_dict;
      try_register (f, &before, id, &options, "metadata not a dict");
      options.metadata = wrong_dict;
      try_register (f, &before, id, &options, "metadata a{ss}");
      options.metadata = too_big;
      try_register (f, &before, id, &options, "metadata too big");
    }

  /* Beats */
  for (guint i = 0; i < G_N_ELEMENTS (bad_statuses); i++)
    {
      details = (HeartbeatBeatDetails) { 0 };
      details.status = bad_statuses[i].status;
      try_beat (f, &before, "keep", &details, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                bad_statuses[i].what);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad_progress); i++)
    {
      details = (HeartbeatBeatDetails) { 0 };
      details.has_progress = TRUE;
      details.progress = bad_progress[i];
      try_beat (f, &before, "keep", &details, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                "non-finite progress");
    }
  details = (HeartbeatBeatDetails) { 0 };
  details.metadata = not_dict;
  try_beat (f, &before, "keep", &details, HEARTBEAT_ERROR_INVALID_ARGUMENT, "beat metadata not a dict");
  details.metadata = wrong_dict;
  try_beat (f, &before, "keep", &details, HEARTBEAT_ERROR_INVALID_ARGUMENT, "beat metadata a{ss}");
  details.metadata = too_big;
  try_beat (f, &before, "keep", &details, HEARTBEAT_ERROR_INVALID_ARGUMENT, "beat metadata too big");
  details.metadata = other_half;
  try_beat (f, &before, "keep", &details, HEARTBEAT_ERROR_INVALID_ARGUMENT, "merged metadata too big");
  details = (HeartbeatBeatDetails) { 0 };
  details.status = "fine";
  details.metadata = other_half;
  try_beat (f, &before, "keep", &details, HEARTBEAT_ERROR_INVALID_ARGUMENT,
            "merged metadata too big, valid status");

  /* Unknown ids */
  try_beat (f, &before, "nobody", NULL, HEARTBEAT_ERROR_NOT_FOUND, "beat unknown");
  {
    g_autoptr(GError) idle_error = NULL;
    g_autoptr(GError) gone_error = NULL;
    g_autoptr(GError) unregister_error = NULL;
    gboolean ok;

    ok = heartbeat_monitor_mark_idle (f->monitor, "nobody", &idle_error);
    assert_rejected (f, &before, ok, idle_error, HEARTBEAT_ERROR_NOT_FOUND, "mark_idle unknown");
    ok = heartbeat_monitor_mark_gone (f->monitor, "nobody", &gone_error);
    assert_rejected (f, &before, ok, gone_error, HEARTBEAT_ERROR_NOT_FOUND, "mark_gone unknown");
    ok = heartbeat_monitor_unregister (f->monitor, "nobody", &unregister_error);
    assert_rejected (f, &before, ok, unregister_error, HEARTBEAT_ERROR_NOT_FOUND, "unregister unknown");
  }
  g_assert_null (heartbeat_monitor_lookup (f->monitor, "new-agent"));
  g_assert_null (heartbeat_monitor_lookup (f->monitor, "nobody"));
  snapshot_clear (&before);
  expect_no_events (f);

  /* The limits themselves are accepted. */
  f->now += SECONDS (1);
  options = (HeartbeatAgentOptions) { 0 };
  options.task_id = task_max;
  options.stale_after_usec = HEARTBEAT_THRESHOLD_MAX;
  options.timeout_after_usec = HEARTBEAT_THRESHOLD_MAX;
  register_with (f, id_max, &options);
  register_with (f, "Az09._:@-", NULL);
  expect_events (f, REGISTERED (id_max), REGISTERED ("Az09._:@-"));
  g_assert_cmpint (heartbeat_agent_get_stale_after (heartbeat_monitor_lookup (f->monitor, id_max)),
                   ==, HEARTBEAT_THRESHOLD_MAX);
  g_assert_cmpstr (heartbeat_agent_get_task_id (heartbeat_monitor_lookup (f->monitor, id_max)),
                   ==, task_max);
  beat_status (f, id_max, status_max);
  g_assert_cmpstr (heartbeat_agent_get_status (heartbeat_monitor_lookup (f->monitor, id_max)),
                   ==, status_max);

  /* Replacing a key is not growing: the same half again fits. */
  details = (HeartbeatBeatDetails) { 0 };
  details.metadata = same_half;
  g_assert_true (heartbeat_monitor_beat (f->monitor, "keep", &details, NULL));
  g_assert_cmpuint (heartbeat_agent_get_beats (heartbeat_monitor_lookup (f->monitor, "keep")), ==, 2);
  expect_no_events (f);
}

/* ------------------------------------------------------------------ */
/* Many agents with random thresholds */

#define STRESS_N_AGENTS 10000

typedef struct {
  gint64 registered_at;
  gint64 stale_deadline;
  gint64 timeout_deadline;
  gboolean warned;
  gboolean removed;
} StressAgent;

static guint
stress_index (const char *id)
{
  guint64 index = 0;

  g_assert_true (g_ascii_string_to_unsigned (id + 1, 10, 0, STRESS_N_AGENTS - 1, &index, NULL));
  return index;
}

/* The first check at or after @t. */
static gint64
first_check_from (GArray *checks,
                  gint64  t)
{
  guint lo = 0, hi = checks->len;

  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;

      if (g_array_index (checks, gint64, mid) < t)
        lo = mid + 1;
      else
        hi = mid;
    }
  g_assert_cmpuint (lo, <, checks->len);
  return g_array_index (checks, gint64, lo);
}

static void
test_stress_random_thresholds (Fixture       *f,
                               gconstpointer  data)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (0x4862);
  g_autofree StressAgent *agents = g_new0 (StressAgent, STRESS_N_AGENTS);
  g_autoptr(GArray) checks = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autofree guint *steps = g_new0 (guint, STRESS_N_AGENTS);
  guint n_stale_first = 0, n_stale_expected = 0, n_timeout_only = 0, iterations = 0;
  gint64 last_deadline = G_MININT64;
  guint n_out_of_order = 0, n_out_of_order_by_agent = 0;
  gint64 last_key = G_MININT64;
  g_autoptr(GString) first_out_of_order = g_string_new (NULL);
  g_autoptr(GString) last_description = g_string_new (NULL);

  /* timed-out agents stay listed (no retention): each ends timed out */
  heartbeat_monitor_set_retention (f->monitor, 0);

  /* Registration: ties in time (100 agents per 100 ms), thresholds in whole
   * seconds half of the time (more ties), a few on the defaults. */
  for (guint i = 0; i < STRESS_N_AGENTS; i++)
    {
      HeartbeatAgentOptions options = { 0 };
      char id[16];
      gint64 stale, timeout;
      HeartbeatAgent *agent;

      g_snprintf (id, sizeof id, "s%05u", i);
      advance_to (f, T0 + (gint64) (i / 100) * 100 * 1000);

      stale = SECONDS (g_rand_int_range (rand, 1, 601));
      if (g_rand_boolean (rand))
        stale += g_rand_int_range (rand, 0, G_USEC_PER_SEC);
      if (g_rand_int_range (rand, 0, 10) == 0)
        timeout = SECONDS (g_rand_int_range (rand, 1, (int) (stale / G_USEC_PER_SEC) + 1));
      else
        timeout = stale + SECONDS (g_rand_int_range (rand, 1, 1201));
      if (g_rand_int_range (rand, 0, 20) == 0)
        {
          options.stale_after_usec = 0;
          options.timeout_after_usec = 0;
          stale = MINUTES (5);
          timeout = MINUTES (30);
        }
      else
        {
          options.stale_after_usec = stale;
          options.timeout_after_usec = timeout;
        }
      if (stale < timeout)
        n_stale_first++;

      agent = heartbeat_monitor_register (f->monitor, id, &options, NULL);
      g_assert_nonnull (agent);
      g_assert_cmpint (heartbeat_agent_get_stale_after (agent), ==, stale);
      g_assert_cmpint (heartbeat_agent_get_timeout_after (agent), ==, timeout);
      agents[i].registered_at = f->now;
      agents[i].stale_deadline = f->now + stale;
      agents[i].timeout_deadline = f->now + timeout;
    }
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (f->monitor), ==, STRESS_N_AGENTS);
  /* Most go stale before they time out, some do not. */
  g_assert_cmpuint (n_stale_first, >, STRESS_N_AGENTS / 2);
  g_assert_cmpuint (n_stale_first, <, STRESS_N_AGENTS);
  g_array_set_size (f->events, 0);
  f->seen = 0;

  /* Checks at increasing random times until every agent is done. */
  for (;;)
    {
      gint64 next = heartbeat_monitor_get_next_deadline (f->monitor);
      gint64 expected_next = HEARTBEAT_NO_DEADLINE;
      guint first_new;

      for (guint i = 0; i < STRESS_N_AGENTS; i++)
        {
          gint64 d;

          if (agents[i].removed)
            continue;
          d = agents[i].warned ? agents[i].timeout_deadline
                               : MIN (agents[i].stale_deadline, agents[i].timeout_deadline);
          if (d < expected_next)
            expected_next = d;
        }
      g_assert_cmpint (next, ==, expected_next);
      if (next == HEARTBEAT_NO_DEADLINE)
        break;
      g_assert_cmpuint (++iterations, <, 100000);

      /* One µs early: nothing. (Only the first check, right after the
       * registrations, finds deadlines already in the past.) */
      if (next > f->now)
        {
          check_at (f, next - 1);
          g_array_append_val (checks, f->now);
          g_assert_cmpuint (f->events->len, ==, f->seen);
        }
      else
        g_assert_cmpuint (checks->len, ==, 0);

      first_new = f->events->len;
      if (g_rand_int_range (rand, 0, 10) < 4)
        check_at (f, MAX (next, f->now));
      else
        check_at (f, MAX (next, f->now) + g_rand_int_range (rand, 1, SECONDS (30)));
      g_array_append_val (checks, f->now);
      g_assert_cmpuint (f->events->len, >, first_new);

      for (guint i = first_new; i < f->events->len; i++)
        {
          const Event *e = &g_array_index (f->events, Event, i);
          StressAgent *agent = &agents[stress_index (e->id)];

          if (e->kind == EV_STALE)
            agent->warned = TRUE;
          else if (e->kind == EV_TIMED_OUT)
            agent->removed = TRUE;   /* done: listed, timed out */
        }
      f->seen = f->events->len;
    }
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (f->monitor), ==, STRESS_N_AGENTS);

  /* Every emission: expected, at the first check at or after its
   * deadline (never early, never late), in deadline order. */
  for (guint i = 0; i < f->events->len; i++)
    {
      const Event *e = &g_array_index (f->events, Event, i);
      guint index = stress_index (e->id);
      const StressAgent *agent = &agents[index];
      gboolean stale_expected =
        agent->stale_deadline < agent->timeout_deadline &&
        first_check_from (checks, agent->stale_deadline) < agent->timeout_deadline;
      HeartbeatAgentState before_timeout =
        stale_expected ? HEARTBEAT_AGENT_STATE_STALE : HEARTBEAT_AGENT_STATE_HEALTHY;
      guint step = steps[index]++;
      gint64 deadline;

      if (!stale_expected)
        step += 2;   /* no stale steps */

      switch (step)
        {
        case 0:
          g_assert_cmpint (e->kind, ==, EV_STATE_CHANGED);
          g_assert_cmpint (e->old_state, ==, HEARTBEAT_AGENT_STATE_HEALTHY);
          g_assert_cmpint (e->new_state, ==, HEARTBEAT_AGENT_STATE_STALE);
          deadline = agent->stale_deadline;
          break;
        case 1:
          g_assert_cmpint (e->kind, ==, EV_STALE);
          g_assert_cmpint (e->usec, ==, e->now - agent->registered_at);
          deadline = agent->stale_deadline;
          break;
        case 2:
          g_assert_cmpint (e->kind, ==, EV_STATE_CHANGED);
          g_assert_cmpint (e->old_state, ==, before_timeout);
          g_assert_cmpint (e->new_state, ==, HEARTBEAT_AGENT_STATE_TIMED_OUT);
          deadline = agent->timeout_deadline;
          break;
        case 3:
          g_assert_cmpint (e->kind, ==, EV_TIMED_OUT);
          g_assert_cmpint (e->usec, ==, e->now - agent->registered_at);
          deadline = agent->timeout_deadline;
          break;
        default:
          g_error ("agent %s: unexpected extra emission", e->id);
        }

      g_assert_cmpint (e->now, >=, deadline);
      g_assert_cmpint (e->now, ==, first_check_from (checks, deadline));
      if (deadline < last_deadline)
        {
          if (n_out_of_order++ == 0)
            {
              char previous[64];

              append_event_string (first_out_of_order, e->kind, e->id, e->usec,
                                   e->old_state, e->new_state, e->reason);
              g_snprintf (previous, sizeof previous, " (deadline %" G_GINT64_FORMAT
                          ") after ", deadline);
              g_string_append (first_out_of_order, previous);
              g_string_append (first_out_of_order, last_description->str);
              g_string_append_printf (first_out_of_order, " (deadline %" G_GINT64_FORMAT
                                      "), both emitted by the check at %" G_GINT64_FORMAT,
                                      last_deadline, e->now);
            }
        }
      last_deadline = deadline;

      /* The same, keyed by the agent's earliest deadline that was due (its
       * suppressed stale deadline when timeout won): tells a reader whether
       * that is the only cause of disorder. */
      {
        gint64 key = stale_expected ? deadline : MIN (agent->stale_deadline, deadline);

        if (key < last_key)
          n_out_of_order_by_agent++;
        last_key = key;
      }
      g_string_truncate (last_description, 0);
      append_event_string (last_description, e->kind, e->id, e->usec,
                           e->old_state, e->new_state, e->reason);
    }

  for (guint i = 0; i < STRESS_N_AGENTS; i++)
    {
      const StressAgent *agent = &agents[i];
      gboolean stale_expected =
        agent->stale_deadline < agent->timeout_deadline &&
        first_check_from (checks, agent->stale_deadline) < agent->timeout_deadline;

      g_assert_cmpuint (steps[i], ==, stale_expected ? 4 : 2);
      if (stale_expected)
        n_stale_expected++;
      else
        n_timeout_only++;
    }
  /* The run covered both paths, and timeout-wins within one check. */
  g_assert_cmpuint (n_stale_expected, >, STRESS_N_AGENTS / 2);
  g_assert_cmpuint (n_timeout_only, >, 0);
  g_test_message ("%u checks, %u agents warned then timed out, %u timed out only",
                  checks->len, n_stale_expected, n_timeout_only);

  /* Across the whole run, emissions follow the deadlines they are about. */
  if (n_out_of_order > 0)
    g_test_fail_printf ("%u emissions out of deadline order; the first: %s. (Ordered by each "
             "agent's earliest due deadline instead, %u would be out of order.)",
             n_out_of_order, first_out_of_order->str, n_out_of_order_by_agent);
}

/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* The gate for values from outside                                    */

/* @depth containers: a{sv} holding a{sv} holding … (three levels each). */
static GVariant *
nested_dicts (guint n)
{
  GVariant *value = g_variant_new_int32 (1);

  for (guint i = 0; i < n; i++)
    {
      GVariantBuilder builder;

      g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&builder, "{sv}", "k", value);
      value = g_variant_builder_end (&builder);
    }
  return g_variant_ref_sink (value);
}

/* Whatever passes the gate travels in a D-Bus-sized message: the deepest
 * dictionary accepted, wrapped as ListAgents wraps it (a tuple, an array
 * of a{sv}, a variant), still nests under D-Bus's limit of 64. */
static void
test_metadata_gate (void)
{
  g_autofree char *controls = g_strnfill (HEARTBEAT_METADATA_MAX_SIZE / 4, '\x01');
  g_autofree char *plain = g_strnfill (HEARTBEAT_METADATA_MAX_SIZE / 2, 'p');
  const char *refused[] = {
    "{'m': <@ms nothing>}",
    "{'m': <@ms 'x'>}",
    "{'h': <handle 3>}",
    "{'t': <uint64 9223372036854775808>}",
    "{'d': <@a{is} {1: 'one'}>}",
    "{'e': <()>}",
    "{'arr': <[@mi nothing]>}",
  };
  const char *accepted[] = {
    "{'t': <uint64 9223372036854775807>, 'y': <byte 1>, 'o': <objectpath '/a'>, 'g': <signature 's'>}",
    "{'tuple': <(1, 'a', [true])>, 'strings': <{'a': 'b'}>, 'list': <[<1>, <'x'>]>}",
  };
  guint deepest = 0;

  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autoptr(GVariant) value = g_variant_ref_sink (g_variant_new_parsed (refused[i]));
      g_autoptr(GError) error = NULL;

      g_test_message ("refused: %s", refused[i]);
      g_assert_false (heartbeat_metadata_is_valid (value, &error));
      g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT);
    }
  for (guint i = 0; i < G_N_ELEMENTS (accepted); i++)
    {
      g_autoptr(GVariant) value = g_variant_ref_sink (g_variant_new_parsed (accepted[i]));
      g_autoptr(GError) error = NULL;

      g_assert_true (heartbeat_metadata_is_valid (value, &error));
      g_assert_no_error (error);
    }

  /* checked again (the last valid value is remembered): the same answers */
  {
    g_autoptr(GVariant) good = g_variant_ref_sink (g_variant_new_parsed (accepted[0]));
    g_autoptr(GVariant) bad = g_variant_ref_sink (g_variant_new_parsed (refused[0]));

    for (guint i = 0; i < 2; i++)
      {
        g_autoptr(GError) error = NULL;

        g_assert_true (heartbeat_metadata_is_valid (good, NULL));
        g_assert_true (heartbeat_metadata_is_valid (good, NULL));
        g_assert_false (heartbeat_metadata_is_valid (bad, &error));
        g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT);
        g_assert_false (heartbeat_metadata_is_valid (bad, NULL));
      }
  }

  /* NaN and infinity have no JSON form */
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(GVariant) value = g_variant_ref_sink (g_variant_new_parsed (
        "{'d': <%d>}", i ? INFINITY : NAN));
      g_assert_false (heartbeat_metadata_is_valid (value, NULL));
    }

  /* the size is that of the larger form: a control character is six bytes
   * of JSON, so 4096 of them are over the limit, 8192 plain bytes are not */
  {
    g_autoptr(GVariant) small_but_wide = g_variant_ref_sink (g_variant_new_parsed ("{'c': <%s>}", controls));
    g_autoptr(GVariant) plain_value = g_variant_ref_sink (g_variant_new_parsed ("{'p': <%s>}", plain));

    g_assert_cmpuint (g_variant_get_size (small_but_wide), <, HEARTBEAT_METADATA_MAX_SIZE);
    g_assert_false (heartbeat_metadata_is_valid (small_but_wide, NULL));
    g_assert_true (heartbeat_metadata_is_valid (plain_value, NULL));
  }

  /* depth: refused from some nesting on, and a value nested 20,000 levels
   * is refused without walking it (no stack overflow) */
  for (guint n = 1; n < 40; n++)
    {
      g_autoptr(GVariant) value = nested_dicts (n);

      if (!heartbeat_metadata_is_valid (value, NULL))
        break;
      deepest = n;
    }
  g_assert_cmpuint (deepest, >=, 4);
  g_assert_cmpuint (deepest, <, 40);
  {
    g_autoptr(GVariant) deep = nested_dicts (deepest);
    g_autoptr(GVariant) too_deep = nested_dicts (deepest + 1);
    g_autoptr(GVariant) wrapped = NULL;
    g_autoptr(GDBusMessage) message = g_dbus_message_new_method_call (":1.1", "/a", "a.b", "c");
    g_autoptr(GDBusMessage) back = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree guchar *blob = NULL;
    gsize length;
    GVariant *value = g_variant_new_int32 (0);

    g_assert_false (heartbeat_metadata_is_valid (too_deep, &error));
    g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);

    for (guint i = 0; i < 20000; i++)
      value = g_variant_new_array (NULL, &value, 1);
    value = g_variant_ref_sink (g_variant_new_parsed ("{'deep': %v}", value));
    g_assert_false (heartbeat_metadata_is_valid (value, NULL));
    g_variant_unref (value);

    wrapped = g_variant_ref_sink (g_variant_new_parsed ("([{'metadata': <%@a{sv}>}],)", deep));
    g_dbus_message_set_body (message, wrapped);
    blob = g_dbus_message_to_blob (message, &length, G_DBUS_CAPABILITY_FLAGS_NONE, &error);
    g_assert_no_error (error);
    back = g_dbus_message_new_from_blob (blob, length, G_DBUS_CAPABILITY_FLAGS_NONE, &error);
    g_assert_no_error (error);
    g_assert_true (g_variant_equal (g_dbus_message_get_body (back), wrapped));
  }
}

/* Every way in goes through the gate, and a refusal changes nothing. */
static void
test_metadata_gate_entry_points (Fixture       *f,
                                 gconstpointer  data)
{
  g_autoptr(GVariant) maybe = g_variant_ref_sink (g_variant_new_parsed ("{'y': <@mv nothing>}"));
  HeartbeatAgentOptions options = { .metadata = maybe };
  HeartbeatBeatDetails details = { .metadata = maybe };
  g_autoptr(GError) error = NULL;

  g_assert_null (heartbeat_monitor_register (f->monitor, "a", &options, &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_null (heartbeat_monitor_declare (f->monitor, "a", &options, &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (heartbeat_monitor_post_event (f->monitor, "e", maybe, &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  expect_no_events (f);

  g_assert_nonnull (heartbeat_monitor_register (f->monitor, "a", NULL, &error));
  expect_events (f, REGISTERED ("a"));
  g_assert_false (heartbeat_monitor_beat (f->monitor, "a", &details, &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT);
  g_assert_null (heartbeat_agent_get_metadata (heartbeat_monitor_lookup (f->monitor, "a")));
  g_assert_cmpuint (heartbeat_agent_get_beats (heartbeat_monitor_lookup (f->monitor, "a")), ==, 0);
  expect_no_events (f);
}

static void
test_max_agents (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  heartbeat_monitor_set_max_agents (f->monitor, 2);
  g_assert_cmpuint (heartbeat_monitor_get_max_agents (f->monitor), ==, 2);
  g_assert_nonnull (heartbeat_monitor_register (f->monitor, "a", NULL, &error));
  g_assert_nonnull (heartbeat_monitor_register (f->monitor, "b", NULL, &error));
  expect_events (f, REGISTERED ("a"), REGISTERED ("b"));

  g_assert_null (heartbeat_monitor_register (f->monitor, "c", NULL, &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_QUOTA_EXCEEDED);
  g_clear_error (&error);
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (f->monitor), ==, 2);
  expect_no_events (f);

  /* re-registering one that exists is no new agent */
  g_assert_nonnull (heartbeat_monitor_register (f->monitor, "a", NULL, &error));
  expect_events (f, REGISTERED ("a"));
}

static void
drain_events (Fixture *f)
{
  f->seen = f->events->len;
}

static void
on_result (GObject *source, GAsyncResult *result, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

typedef struct {
  GString *changes;   /* "id:kind " for each change told */
  guint    syncs;
} StoreProbe;

static void
probe_changed (HeartbeatMonitor *monitor,
               const char       *id,
               HeartbeatChange   change,
               gpointer          user_data)
{
  StoreProbe *probe = user_data;
  static const char *const kinds[] = { "activity", "metadata", "state", "caller" };

  g_string_append_printf (probe->changes, "%s:%s ", id, kinds[change]);
}

static void
probe_sync (HeartbeatMonitor *monitor,
            GTask            *task,
            gpointer          user_data)
{
  StoreProbe *probe = user_data;

  probe->syncs++;
  g_task_return_new_error (task, HEARTBEAT_ERROR, HEARTBEAT_ERROR_NOT_SAVED, "probe");
  g_object_unref (task);
}

/* Returns what the probe was told since the last call. */
static char *
probe_take (StoreProbe *probe)
{
  char *text = g_strdup (g_strchomp (probe->changes->str));

  g_string_truncate (probe->changes, 0);
  return text;
}

#define assert_told(probe, expected) \
  G_STMT_START { g_autofree char *told_ = probe_take (probe); \
                 g_assert_cmpstr (told_, ==, (expected)); } G_STMT_END

static void
on_synced (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GError **error = user_data;

  g_assert_false (heartbeat_monitor_sync_finish (HEARTBEAT_MONITOR (source), result, error));
}

/* beats @id with @status, @metadata (text, or NULL) and @progress (NAN for
 * none); returns the agent's metadata printed and what the store was told */
static void
beat_metadata (Fixture    *f,
               StoreProbe *probe,
               const char *id,
               const char *metadata,
               double      progress,
               const char *expected,
               const char *told)
{
  g_autoptr(GVariant) value = metadata ? g_variant_ref_sink (g_variant_new_parsed (metadata)) : NULL;
  HeartbeatBeatDetails details = { .metadata = value };
  g_autoptr(GError) error = NULL;
  g_autofree char *printed = NULL;

  if (!isnan (progress))
    {
      details.has_progress = TRUE;
      details.progress = progress;
    }
  g_assert_true (heartbeat_monitor_beat (f->monitor, id, &details, &error));
  g_assert_no_error (error);
  printed = g_variant_print (heartbeat_agent_get_metadata (heartbeat_monitor_lookup (f->monitor, id)), TRUE);
  g_assert_cmpstr (printed, ==, expected);
  assert_told (probe, told);
}

/* A beat's metadata is merged key by key, as a GVariantDict would (the
 * beat's value wins, its progress over a "progress" key, the last of equal
 * keys), into a dictionary sorted by key; a beat that changes nothing
 * leaves the agent's dictionary as it is: the same value, and the store
 * is told of activity only. */
static void
test_metadata_merge (Fixture       *f,
                     gconstpointer  data)
{
  StoreProbe probe = { .changes = g_string_new (NULL) };
  static const HeartbeatStoreFuncs funcs = { .changed = probe_changed, .sync = probe_sync };
  g_autoptr(GVariant) initial = g_variant_ref_sink (g_variant_new_parsed (
    "@a{sv} [{'b', <1>}, {'a', <'x'>}, {'b', <2>}]"));
  HeartbeatAgentOptions options = { .metadata = initial };
  HeartbeatBeatDetails empty = { 0 };
  g_autoptr(GError) error = NULL;
  HeartbeatAgent *agent;
  GVariant *kept;

  heartbeat_monitor_set_store (f->monitor, &funcs, &probe, NULL);
  agent = register_with (f, "job", &options);
  expect_events (f, REGISTERED ("job"));
  g_assert_true (heartbeat_agent_get_metadata (agent) == initial);   /* as registered */
  g_free (probe_take (&probe));

  /* nothing new, but the registered dictionary had a key twice */
  beat_metadata (f, &probe, "job", "{'a': <'x'>}", NAN, "{'a': <'x'>, 'b': <2>}", "job:metadata");
  kept = heartbeat_agent_get_metadata (agent);
  beat_metadata (f, &probe, "job", "{'a': <'x'>}", NAN, "{'a': <'x'>, 'b': <2>}", "job:activity");
  beat_metadata (f, &probe, "job", "@a{sv} {}", NAN, "{'a': <'x'>, 'b': <2>}", "job:activity");
  g_assert_true (heartbeat_agent_get_metadata (agent) == kept);
  g_assert_true (heartbeat_monitor_beat (f->monitor, "job", &empty, &error));
  g_assert_no_error (error);
  assert_told (&probe, "job:activity");
  g_assert_true (heartbeat_agent_get_metadata (agent) == kept);

  /* added, replaced (the last of two), progress over "progress" */
  beat_metadata (f, &probe, "job", "{'progress': <'no'>, 'c': <[1, 2]>, 'c': <[3]>}", 0.5,
                 "{'a': <'x'>, 'b': <2>, 'c': <[3]>, 'progress': <0.5>}", "job:metadata");
  kept = heartbeat_agent_get_metadata (agent);
  beat_metadata (f, &probe, "job", "{'c': <[3]>}", 0.5,
                 "{'a': <'x'>, 'b': <2>, 'c': <[3]>, 'progress': <0.5>}", "job:activity");
  beat_metadata (f, &probe, "job", NULL, 0.5,
                 "{'a': <'x'>, 'b': <2>, 'c': <[3]>, 'progress': <0.5>}", "job:activity");
  g_assert_true (heartbeat_agent_get_metadata (agent) == kept);

  /* a value differs by its type or its bits, as g_variant_equal() says */
  beat_metadata (f, &probe, "job", "{'b': <int64 2>}", NAN,
                 "{'a': <'x'>, 'b': <int64 2>, 'c': <[3]>, 'progress': <0.5>}", "job:metadata");
  beat_metadata (f, &probe, "job", "{'c': <[3, 4]>}", 0.0,
                 "{'a': <'x'>, 'b': <int64 2>, 'c': <[3, 4]>, 'progress': <0.0>}", "job:metadata");
  beat_metadata (f, &probe, "job", NULL, -0.0,
                 "{'a': <'x'>, 'b': <int64 2>, 'c': <[3, 4]>, 'progress': <-0.0>}", "job:metadata");
  beat_metadata (f, &probe, "job", "{'c': <[3, 4]>, 'a': <'x'>}", -0.0,
                 "{'a': <'x'>, 'b': <int64 2>, 'c': <[3, 4]>, 'progress': <-0.0>}", "job:activity");

  /* more keys than merge_metadata() sorts on the stack, in reverse order
   * and twice: the same as a GVariantDict, sorted */
  {
    g_auto(GVariantBuilder) old = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
    g_auto(GVariantBuilder) beat = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
    g_autoptr(GVariant) old_value = NULL;
    g_autoptr(GVariant) beat_value = NULL;
    g_auto(GVariantDict) expected = G_VARIANT_DICT_INIT (NULL);
    HeartbeatAgentOptions many = { 0 };
    HeartbeatBeatDetails details = { 0 };
    GVariant *merged;
    const char *previous = "";

    for (int i = 39; i >= 0; i--)
      {
        g_autofree char *key = g_strdup_printf ("k%02d", i);

        g_variant_builder_add (&old, "{sv}", key, g_variant_new_int32 (i));
        g_variant_dict_insert (&expected, key, "i", i);
      }
    for (int i = 0; i < 60; i++)
      {
        g_autofree char *key = g_strdup_printf ("k%02d", (i * 7) % 50);

        g_variant_builder_add (&beat, "{sv}", key, g_variant_new_int32 (1000 + i));
        g_variant_dict_insert (&expected, key, "i", 1000 + i);
      }
    old_value = g_variant_ref_sink (g_variant_builder_end (&old));
    beat_value = g_variant_ref_sink (g_variant_builder_end (&beat));
    many.metadata = old_value;
    register_with (f, "many", &many);
    expect_events (f, REGISTERED ("many"));
    details.metadata = beat_value;
    g_assert_true (heartbeat_monitor_beat (f->monitor, "many", &details, &error));
    g_assert_no_error (error);
    merged = heartbeat_agent_get_metadata (heartbeat_monitor_lookup (f->monitor, "many"));
    g_assert_cmpuint (g_variant_n_children (merged), ==, 50);
    for (gsize i = 0; i < 50; i++)
      {
        const char *key;
        g_autoptr(GVariant) value = NULL;
        g_autoptr(GVariant) want = NULL;

        g_variant_get_child (merged, i, "{&sv}", &key, &value);
        g_assert_cmpstr (previous, <, key);
        previous = key;
        want = g_variant_dict_lookup_value (&expected, key, NULL);
        g_assert_nonnull (want);
        g_assert_true (g_variant_equal (value, want));
      }
    g_free (probe_take (&probe));
  }

  /* the merge knows, without a walk, that a result is short enough only
   * while the lengths of what it merged add up to no more than the limit;
   * past that, it measures: a value of more than half the limit replaced
   * by another, and many progress beats after it, are kept */
  {
    g_autofree char *h = g_strnfill (HEARTBEAT_METADATA_MAX_SIZE / 2 + 100, 'h');
    g_autofree char *g = g_strnfill (HEARTBEAT_METADATA_MAX_SIZE / 2 + 100, 'g');
    g_autoptr(GVariant) first = dict_new ("half", g_variant_new_string (h), NULL);
    g_autoptr(GVariant) second = dict_new ("half", g_variant_new_string (g), NULL);
    g_autofree char *wide = g_strnfill (1500, '\x01');
    g_autoptr(GVariant) third = dict_new ("wide", g_variant_new_string (wide), NULL);
    HeartbeatAgentOptions big = { .metadata = first };
    HeartbeatBeatDetails details = { .metadata = second };
    HeartbeatAgent *half;
    const char *text = NULL;

    half = register_with (f, "half", &big);
    expect_events (f, REGISTERED ("half"));
    g_assert_true (heartbeat_monitor_beat (f->monitor, "half", &details, &error));
    g_assert_no_error (error);
    details.metadata = NULL;
    details.has_progress = TRUE;
    for (guint i = 0; i < 1000; i++)
      {
        double progress = -1;

        details.progress = i;
        g_assert_true (heartbeat_monitor_beat (f->monitor, "half", &details, &error));
        g_assert_no_error (error);
        g_assert_true (heartbeat_agent_get_progress (half, &progress));
        g_assert_cmpfloat (progress, ==, i);
      }
    g_assert_true (g_variant_lookup (heartbeat_agent_get_metadata (half), "half", "&s", &text));
    g_assert_cmpstr (text, ==, g);
    /* and what is too long is still refused, nothing changed: here as
     * JSON text only (a control character is six bytes of it) */
    details.metadata = third;
    g_assert_false (heartbeat_monitor_beat (f->monitor, "half", &details, &error));
    g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);
    g_assert_cmpuint (g_variant_n_children (heartbeat_agent_get_metadata (half)), ==, 2);
    g_free (probe_take (&probe));
  }

  /* an agent without metadata gets the beat's, even none */
  register_agent (f, "bare", 0, 0);
  expect_events (f, REGISTERED ("bare"));
  g_free (probe_take (&probe));
  g_assert_null (heartbeat_agent_get_metadata (heartbeat_monitor_lookup (f->monitor, "bare")));
  beat_metadata (f, &probe, "bare", "@a{sv} {}", NAN, "@a{sv} {}", "bare:metadata");
  beat_metadata (f, &probe, "bare", "@a{sv} {}", NAN, "@a{sv} {}", "bare:activity");
  expect_no_events (f);

  heartbeat_monitor_set_store (f->monitor, NULL, NULL, NULL);
  g_string_free (probe.changes, TRUE);
}

/* A store is told of every change with its kind, and nothing of restoring
 * and reverting; sync goes to it. */
static void
test_store_told_of_changes (Fixture       *f,
                            gconstpointer  data)
{
  StoreProbe probe = { .changes = g_string_new (NULL) };
  static const HeartbeatStoreFuncs funcs = { .changed = probe_changed, .sync = probe_sync };
  HeartbeatBeatDetails copying = { .status = "copying" };
  g_autoptr(GVariant) metadata = g_variant_ref_sink (g_variant_new_parsed ("{'k': <'v'>}"));
  HeartbeatBeatDetails with_metadata = { .status = "copying", .metadata = metadata };
  g_autoptr(GError) error = NULL;

  heartbeat_monitor_set_store (f->monitor, &funcs, &probe, NULL);

  register_agent (f, "a", SECONDS (7), HOURS (1));
  expect_events (f, REGISTERED ("a"));
  assert_told (&probe, "a:state a:caller");
  g_assert_true (heartbeat_monitor_beat (f->monitor, "a", NULL, &error));
  assert_told (&probe, "a:activity");
  g_assert_true (heartbeat_monitor_beat (f->monitor, "a", NULL, &error));
  assert_told (&probe, "a:activity");
  g_assert_true (heartbeat_monitor_beat (f->monitor, "a", &copying, &error));
  assert_told (&probe, "a:state");   /* a new status */
  g_assert_true (heartbeat_monitor_beat (f->monitor, "a", &copying, &error));
  assert_told (&probe, "a:activity");
  g_assert_true (heartbeat_monitor_beat (f->monitor, "a", &with_metadata, &error));
  assert_told (&probe, "a:metadata");   /* new metadata */
  g_assert_true (heartbeat_monitor_beat (f->monitor, "a", &with_metadata, &error));
  assert_told (&probe, "a:activity");   /* the same again */
  expect_no_events (f);

  f->now += SECONDS (7);
  heartbeat_monitor_run_checks (f->monitor, f->now);
  expect_events (f, STATE ("a", HEALTHY, STALE), STALE ("a", SECONDS (7)));
  assert_told (&probe, "a:state");
  g_assert_true (heartbeat_monitor_mark_idle (f->monitor, "a", &error));
  g_assert_no_error (error);
  {
    g_autofree char *told = probe_take (&probe);
    g_assert_true (g_str_has_prefix (told, "a:caller "));
  }
  g_assert_true (heartbeat_monitor_unregister (f->monitor, "a", &error));
  assert_told (&probe, "a:caller");
  drain_events (f);

  /* sync goes to the store */
  heartbeat_monitor_sync_async (f->monitor, NULL, on_synced, &error);
  while (error == NULL)
    g_main_context_iteration (g_main_context_get_thread_default (), TRUE);
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_NOT_SAVED);
  g_clear_error (&error);
  g_assert_cmpuint (probe.syncs, ==, 1);

  /* taking a change back: announced, but the store is not told */
  register_agent (f, "b", SECONDS (7), HOURS (1));
  g_free (probe_take (&probe));
  drain_events (f);
  g_assert_null (heartbeat_monitor_revert (f->monitor, "b", NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_null (heartbeat_monitor_lookup (f->monitor, "b"));
  expect_events (f, UNREGISTERED ("b", UNREGISTERED));
  assert_told (&probe, "");
  {
    HeartbeatAgentOptions options = { .task_id = "saved", .stale_after_usec = SECONDS (7) };
    HeartbeatAgentSnapshot snapshot = {
      .state = HEARTBEAT_AGENT_STATE_HEALTHY,
      .started_at_realtime = g_get_real_time (),
      .last_activity_at_realtime = g_get_real_time (),
      .beats = 4,
    };
    HeartbeatAgent *agent = heartbeat_monitor_revert (f->monitor, "b", &options, &snapshot, &error);

    g_assert_no_error (error);
    g_assert_nonnull (agent);
    g_assert_cmpstr (heartbeat_agent_get_task_id (agent), ==, "saved");
    g_assert_cmpuint (heartbeat_agent_get_beats (agent), ==, 4);
    expect_events (f, REGISTERED ("b"));
    assert_told (&probe, "");
  }

  heartbeat_monitor_set_store (f->monitor, NULL, NULL, NULL);
  g_string_free (probe.changes, TRUE);

  /* without a store, sync succeeds at once */
  {
    gboolean done = FALSE;
    g_autoptr(GAsyncResult) result = NULL;

    heartbeat_monitor_sync_async (f->monitor, NULL, on_result, &result);
    while (result == NULL)
      g_main_context_iteration (g_main_context_get_thread_default (), TRUE);
    done = heartbeat_monitor_sync_finish (f->monitor, result, &error);
    g_assert_no_error (error);
    g_assert_true (done);
  }
}

/* Restored from a store that may have missed beats (a kill -9 between two
 * lazy syncs): a healthy agent is not stale before its threshold has
 * passed from when it may last have been active, although its idle time
 * counts from its last known activity; with an exact snapshot it is
 * judged at once. */
static void
test_restore_active_until (Fixture       *f,
                           gconstpointer  data)
{
  gint64 real_now = g_get_real_time ();
  HeartbeatAgentOptions options = { .stale_after_usec = SECONDS (10), .timeout_after_usec = HOURS (2) };
  HeartbeatAgentSnapshot snapshot = {
    .state = HEARTBEAT_AGENT_STATE_HEALTHY,
    .started_at_realtime = real_now - MINUTES (5),
    .last_activity_at_realtime = real_now - SECONDS (25),
    .active_until_realtime = real_now,
  };
  HeartbeatAgentSnapshot exact = snapshot;
  g_autoptr(GError) error = NULL;
  HeartbeatAgent *agent;

  exact.active_until_realtime = 0;
  agent = heartbeat_monitor_restore (f->monitor, "crashed", &options, &snapshot, &error);
  g_assert_no_error (error);
  g_assert_nonnull (heartbeat_monitor_restore (f->monitor, "exact", &options, &exact, &error));
  g_assert_cmpint (heartbeat_agent_get_idle_usec (agent, f->now), >=, SECONDS (25));

  heartbeat_monitor_run_checks (f->monitor, f->now);
  /* (its idle time is 25 s and the few µs the wall clock moved since) */
  g_assert_cmpint (heartbeat_agent_get_state (heartbeat_monitor_lookup (f->monitor, "exact")), ==,
                   HEARTBEAT_AGENT_STATE_STALE);
  drain_events (f);
  f->now += SECONDS (9);
  heartbeat_monitor_run_checks (f->monitor, f->now);
  expect_no_events (f);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_HEALTHY);

  /* a beat now counts as usual */
  g_assert_true (heartbeat_monitor_beat (f->monitor, "crashed", NULL, &error));
  expect_no_events (f);
  f->now += SECONDS (9);
  heartbeat_monitor_run_checks (f->monitor, f->now);
  expect_no_events (f);
  f->now += SECONDS (1);
  heartbeat_monitor_run_checks (f->monitor, f->now);
  expect_events (f, STATE ("crashed", HEALTHY, STALE), STALE ("crashed", SECONDS (10)));

  /* and without one, the threshold from the restore */
  g_assert_nonnull (heartbeat_monitor_restore (f->monitor, "quiet", &options, &snapshot, &error));
  f->now += SECONDS (9);
  heartbeat_monitor_run_checks (f->monitor, f->now);
  expect_no_events (f);
  f->now += SECONDS (1);
  heartbeat_monitor_run_checks (f->monitor, f->now);
  {
    HeartbeatAgent *quiet = heartbeat_monitor_lookup (f->monitor, "quiet");

    g_assert_cmpint (heartbeat_agent_get_state (quiet), ==, HEARTBEAT_AGENT_STATE_STALE);
    drain_events (f);
  }
}

/* ------------------------------------------------------------------ */
/* Just booted: the monotonic clock starts near zero                   */

/* A heartbeat file written an hour ago, read a minute after boot: its
 * activity is an hour old (a negative monotonic time), not "now". */
static void
test_boot_old_activity_is_old (Fixture       *f,
                               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  HeartbeatAgent *agent;

  f->now = SECONDS (60);
  agent = register_agent (f, "file", MINUTES (5), HOURS (2));
  expect_events (f, REGISTERED ("file"));

  g_assert_true (heartbeat_monitor_beat_at (f->monitor, "file", NULL,
                                            g_get_real_time () - HOURS (1), &error));
  g_assert_no_error (error);
  g_assert_cmpint (heartbeat_agent_get_last_activity_at (agent), <, 0);
  g_assert_cmpint (heartbeat_agent_get_idle_usec (agent, f->now), >=, HOURS (1));
  g_assert_cmpint (heartbeat_monitor_get_next_deadline (f->monitor), <, 0);

  /* due at once */
  check_at (f, f->now);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_STALE);
  f->seen = f->events->len;
}

/* Restores @id as the state would after a reboot: stale after 5 min,
 * timed out after 2 h, started @started_ago and last active @active_ago
 * (wall clock) before now. */
static void
restore_at_boot (Fixture    *f,
                 const char *id,
                 gint64      started_ago,
                 gint64      active_ago)
{
  gint64 real_now = g_get_real_time ();
  HeartbeatAgentOptions options = { .stale_after_usec = MINUTES (5), .timeout_after_usec = HOURS (2) };
  HeartbeatAgentSnapshot snapshot = {
    .state = HEARTBEAT_AGENT_STATE_HEALTHY,
    .started_at_realtime = real_now - started_ago,
    .last_activity_at_realtime = real_now - active_ago,
  };
  g_autoptr(GError) error = NULL;

  g_assert_nonnull (heartbeat_monitor_restore (f->monitor, id, &options, &snapshot, &error));
  g_assert_no_error (error);
}

/* Agents restored from the state a minute after a reboot: one that went
 * quiet an hour ago is stale at once, one that started three hours ago
 * times out at once, and one that beat ten seconds before the restore
 * is healthy until its threshold. */
static void
test_boot_restored_agents_judged (Fixture       *f,
                                  gconstpointer  data)
{
  f->now = SECONDS (60);
  restore_at_boot (f, "quiet", HOURS (1), HOURS (1));
  restore_at_boot (f, "long", HOURS (3), SECONDS (10));
  restore_at_boot (f, "fresh", SECONDS (10), SECONDS (10));
  g_assert_cmpint (heartbeat_monitor_get_next_deadline (f->monitor), <, 0);

  check_at (f, f->now);
  g_assert_cmpint (heartbeat_agent_get_state (heartbeat_monitor_lookup (f->monitor, "quiet")), ==,
                   HEARTBEAT_AGENT_STATE_STALE);
  g_assert_cmpint (heartbeat_agent_get_state (heartbeat_monitor_lookup (f->monitor, "long")), ==,
                   HEARTBEAT_AGENT_STATE_TIMED_OUT);
  g_assert_cmpint (heartbeat_agent_get_state (heartbeat_monitor_lookup (f->monitor, "fresh")), ==,
                   HEARTBEAT_AGENT_STATE_HEALTHY);
  f->seen = f->events->len;

  /* "fresh" goes stale 5 min after its last beat, not before */
  check_at (f, SECONDS (60) + MINUTES (5) - SECONDS (10) - SECONDS (1));
  g_assert_cmpint (heartbeat_agent_get_state (heartbeat_monitor_lookup (f->monitor, "fresh")), ==,
                   HEARTBEAT_AGENT_STATE_HEALTHY);
  check_at (f, SECONDS (60) + MINUTES (5));
  g_assert_cmpint (heartbeat_agent_get_state (heartbeat_monitor_lookup (f->monitor, "fresh")), ==,
                   HEARTBEAT_AGENT_STATE_STALE);
  f->seen = f->events->len;
}

/* The deadline source on a just-booted clock: a deadline before boot is
 * dispatched at once, not taken for GLib's "never". */
static void
test_boot_deadline_source_fires (Fixture       *f,
                                 gconstpointer  data)
{
  gint64 give_up;

  f->now = SECONDS (60);
  restore_at_boot (f, "quiet", HOURS (1), HOURS (1));
  heartbeat_monitor_start (f->monitor);
  give_up = g_get_monotonic_time () + SECONDS (5);
  while (heartbeat_agent_get_state (heartbeat_monitor_lookup (f->monitor, "quiet")) != HEARTBEAT_AGENT_STATE_STALE &&
         g_get_monotonic_time () < give_up)
    g_main_context_iteration (f->context, TRUE);
  g_assert_cmpint (heartbeat_agent_get_state (heartbeat_monitor_lookup (f->monitor, "quiet")), ==,
                   HEARTBEAT_AGENT_STATE_STALE);
  f->seen = f->events->len;
}


/* ------------------------------------------------------------------ */
/* Pause, tags, severity, uptime                                       */

static void
pause_agent (Fixture    *f,
             const char *id,
             const char *reason)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (heartbeat_monitor_pause (f->monitor, id, reason, 1000, &error));
  g_assert_no_error (error);
}

static void
resume_agent (Fixture    *f,
              const char *id)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (heartbeat_monitor_resume (f->monitor, id, &error));
  g_assert_no_error (error);
}

static void
test_pause_silences_until_resumed (Fixture       *f,
                                   gconstpointer  data)
{
  HeartbeatAgent *agent = register_agent (f, "job", 0, MINUTES (30));
  g_autoptr(GError) error = NULL;
  g_autofree char *too_long = g_strnfill (HEARTBEAT_PAUSE_REASON_MAX_LENGTH + 1, 'x');

  expect_events (f, REGISTERED ("job"));
  advance_to (f, T0 + MINUTES (1));

  /* a bad reason or an unknown id changes nothing */
  g_assert_false (heartbeat_monitor_pause (f->monitor, "job", too_long, 0, &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (heartbeat_monitor_pause (f->monitor, "nobody", NULL, 0, &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_cmpint (heartbeat_agent_get_paused_at (agent), ==, 0);
  expect_no_events (f);

  pause_agent (f, "job", "disk swap");
  expect_events (f, STATE ("job", HEALTHY, PAUSED));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_PAUSED);
  g_assert_cmpint (heartbeat_agent_get_paused_at (agent), >, 0);
  g_assert_cmpstr (heartbeat_agent_get_paused_reason (agent), ==, "disk swap");
  g_assert_cmpuint (heartbeat_agent_get_paused_by (agent), ==, 1000);
  g_assert_cmpint (heartbeat_monitor_get_next_deadline (f->monitor), ==, G_MAXINT64);

  /* neither quiet past its threshold nor running past its timeout says
   * anything, nor does a beat or a second pause */
  check_at (f, T0 + HOURS (2));
  expect_no_events (f);
  beat (f, "job");
  pause_agent (f, "job", "still swapping");
  expect_no_events (f);
  g_assert_cmpstr (heartbeat_agent_get_paused_reason (agent), ==, "still swapping");
  g_assert_cmpuint (heartbeat_agent_get_beats (agent), ==, 1);

  /* resumed: judged afresh, every clock from the resume */
  advance_to (f, T0 + HOURS (3));
  resume_agent (f, "job");
  expect_events (f, STATE ("job", PAUSED, HEALTHY));
  g_assert_cmpint (heartbeat_agent_get_paused_at (agent), ==, 0);
  g_assert_null (heartbeat_agent_get_paused_reason (agent));
  resume_agent (f, "job");
  expect_no_events (f);
  check_at (f, T0 + HOURS (3) + MINUTES (5) - 1);
  expect_no_events (f);
  check_at (f, T0 + HOURS (3) + MINUTES (5));
  expect_events (f, STATE ("job", HEALTHY, STALE), STALE ("job", HOURS (3) + MINUTES (5) - HOURS (2)));
  /* the run timeout counts from the resume, not from the registration */
  advance_to (f, T0 + HOURS (3) + MINUTES (6));
  beat (f, "job");
  expect_events (f, STATE ("job", STALE, HEALTHY), RECOVERED ("job"));
  for (gint64 t = T0 + HOURS (3) + MINUTES (10); t < T0 + HOURS (3) + MINUTES (30); t += MINUTES (4))
    {
      advance_to (f, t);
      beat (f, "job");
    }
  check_at (f, T0 + HOURS (3) + MINUTES (30) - 1);
  expect_no_events (f);
  check_at (f, T0 + HOURS (3) + MINUTES (30));
  expect_events (f, STATE ("job", HEALTHY, TIMED_OUT), TIMED_OUT ("job", HOURS (3) + MINUTES (30)));
}

static void
test_pause_holds_what_happened (Fixture       *f,
                                gconstpointer  data)
{
  HeartbeatAgent *agent = register_agent (f, "job", 0, 0);

  expect_events (f, REGISTERED ("job"));
  check_at (f, T0 + MINUTES (5));
  expect_events (f, STATE ("job", HEALTHY, STALE), STALE ("job", MINUTES (5)));

  /* paused while stale: resumed healthy, its quiet time from the resume */
  pause_agent (f, "job", NULL);
  expect_events (f, STATE ("job", STALE, PAUSED));
  g_assert_null (heartbeat_agent_get_paused_reason (agent));
  advance_to (f, T0 + MINUTES (20));
  resume_agent (f, "job");
  expect_events (f, STATE ("job", PAUSED, HEALTHY));

  /* an error reported while paused is its state when resumed */
  pause_agent (f, "job", NULL);
  beat_status (f, "job", "error");
  expect_events (f, STATE ("job", HEALTHY, PAUSED));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_PAUSED);
  resume_agent (f, "job");
  expect_events (f, STATE ("job", PAUSED, ERROR));

  /* and so is its process going away, though nothing is said at the time */
  beat (f, "job");
  expect_events (f, STATE ("job", ERROR, HEALTHY));
  pause_agent (f, "job", NULL);
  mark_gone (f, "job");
  expect_events (f, STATE ("job", HEALTHY, PAUSED));
  resume_agent (f, "job");
  expect_events (f, STATE ("job", PAUSED, GONE));

  /* registering again keeps the pause; unregistering ends it */
  pause_agent (f, "job", "maintenance");
  register_agent (f, "job", 0, 0);
  expect_events (f, STATE ("job", GONE, PAUSED), REGISTERED ("job"));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_PAUSED);
  g_assert_cmpstr (heartbeat_agent_get_paused_reason (agent), ==, "maintenance");
}

static void
test_stale_to_error_is_no_recovery (Fixture       *f,
                                    gconstpointer  data)
{
  register_agent (f, "job", 0, 0);
  expect_events (f, REGISTERED ("job"));
  check_at (f, T0 + MINUTES (5));
  expect_events (f, STATE ("job", HEALTHY, STALE), STALE ("job", MINUTES (5)));
  beat_status (f, "job", "error");
  expect_events (f, STATE ("job", STALE, ERROR));
}

static void
test_tags_kept_sorted_once (Fixture       *f,
                            gconstpointer  data)
{
  static const char *const tags[] = { "web", "db", "web", "eu-1:a@b.c", NULL };
  static const char *const bad[] = { "ok", "not ok", NULL };
  const char *too_many[HEARTBEAT_TAGS_MAX + 2];
  char names[HEARTBEAT_TAGS_MAX + 1][8];
  HeartbeatAgentOptions options = { .tags = tags };
  g_autoptr(GError) error = NULL;
  const char *const *kept;
  HeartbeatAgent *agent;

  agent = heartbeat_monitor_register (f->monitor, "a", &options, &error);
  g_assert_no_error (error);
  kept = heartbeat_agent_get_tags (agent);
  g_assert_cmpuint (g_strv_length ((char **) kept), ==, 3);
  g_assert_cmpstr (kept[0], ==, "db");
  g_assert_cmpstr (kept[1], ==, "eu-1:a@b.c");
  g_assert_cmpstr (kept[2], ==, "web");

  /* a bad tag, or too many, and nothing is registered */
  options.tags = bad;
  g_assert_null (heartbeat_monitor_register (f->monitor, "b", &options, &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  for (guint i = 0; i <= HEARTBEAT_TAGS_MAX; i++)
    {
      g_snprintf (names[i], sizeof names[i], "t%u", i);
      too_many[i] = names[i];
    }
  too_many[HEARTBEAT_TAGS_MAX + 1] = NULL;
  options.tags = too_many;
  g_assert_null (heartbeat_monitor_register (f->monitor, "b", &options, &error));
  g_assert_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_null (heartbeat_monitor_lookup (f->monitor, "b"));

  /* registering again without tags clears them */
  options.tags = NULL;
  agent = heartbeat_monitor_register (f->monitor, "a", &options, &error);
  g_assert_no_error (error);
  g_assert_null (heartbeat_agent_get_tags (agent)[0]);
}

static void
test_severity_order (void)
{
  static const HeartbeatAgentState order[] = {
    HEARTBEAT_AGENT_STATE_HEALTHY, HEARTBEAT_AGENT_STATE_PAUSED, HEARTBEAT_AGENT_STATE_NO_HEARTBEAT,
    HEARTBEAT_AGENT_STATE_STALE, HEARTBEAT_AGENT_STATE_ERROR, HEARTBEAT_AGENT_STATE_GONE,
    HEARTBEAT_AGENT_STATE_TIMED_OUT,
  };

  G_STATIC_ASSERT (G_N_ELEMENTS (order) == HEARTBEAT_AGENT_N_STATES);
  for (guint i = 0; i < G_N_ELEMENTS (order); i++)
    g_assert_cmpuint (heartbeat_agent_state_get_severity (order[i]), ==, i);
}

static void
test_uptime_and_unmonitored (Fixture       *f,
                             gconstpointer  data)
{
  gint64 real_now = g_get_real_time ();
  gint64 base = real_now - HOURS (10);
  g_autoptr(GVariant) saved = g_variant_ref_sink (g_variant_new_parsed (
    "[(%t, 'healthy'), (%t, 'stale'), (%t, 'paused'), (%t, 'healthy')]",
    (guint64) base, (guint64) (base + HOURS (1)), (guint64) (base + HOURS (2)),
    (guint64) (base + HOURS (3))));
  HeartbeatAgentSnapshot snapshot = {
    .state = HEARTBEAT_AGENT_STATE_HEALTHY,
    .started_at_realtime = base,
    .last_activity_at_realtime = base + HOURS (4),
    .history = saved,
    .unmonitored_since_realtime = base + HOURS (4),
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) history = NULL;
  g_autofree char *states = NULL;
  HeartbeatAgent *agent;
  guint64 at;
  const char *nick;

  agent = heartbeat_monitor_restore (f->monitor, "worker", NULL, &snapshot, &error);
  g_assert_no_error (error);
  states = history_states (agent);
  g_assert_cmpstr (states, ==, "healthy stale paused healthy unmonitored healthy");
  history = g_variant_ref_sink (heartbeat_agent_get_history (agent));
  g_variant_get_child (history, 4, "(t&s)", &at, &nick);
  g_assert_cmpuint (at, ==, (guint64) (base + HOURS (4)));
  /* healthy before and after the gap: healthy since before it */
  g_assert_cmpint (heartbeat_agent_get_state_since (agent), ==, base + HOURS (3));

  /* at base + 5 h, over 5 h: 1 h healthy, 1 h stale, (1 h paused), 1 h
   * healthy, (1 h unmonitored): 2 of 3 */
  g_assert_cmpfloat_with_epsilon (heartbeat_agent_get_uptime (agent, base + HOURS (5), HOURS (5)), 2.0 / 3.0, 1e-9);
  /* over the last 30 min of the stale hour only */
  g_assert_cmpfloat_with_epsilon (heartbeat_agent_get_uptime (agent, base + HOURS (2), MINUTES (30)), 0.0, 1e-9);
  /* nothing watched: unknown */
  g_assert_cmpfloat (heartbeat_agent_get_uptime (agent, base - HOURS (1), HOURS (1)), ==, -1);
  g_assert_cmpfloat (heartbeat_agent_get_uptime (agent, base + HOURS (5), MINUTES (30)), ==, -1);
}

static void
test_pause_restored (Fixture       *f,
                     gconstpointer  data)
{
  gint64 real_now = g_get_real_time ();
  HeartbeatAgentSnapshot snapshot = {
    .state = HEARTBEAT_AGENT_STATE_PAUSED,
    .status = "error",
    .started_at_realtime = real_now - HOURS (2),
    .last_activity_at_realtime = real_now - HOURS (2),
    .paused_at_realtime = real_now - HOURS (1),
    .paused_reason = "upgrade",
    .paused_by_uid = 1000,
  };
  g_autoptr(GError) error = NULL;
  HeartbeatAgent *agent;

  agent = heartbeat_monitor_restore (f->monitor, "worker", NULL, &snapshot, &error);
  g_assert_no_error (error);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_PAUSED);
  g_assert_cmpint (heartbeat_agent_get_paused_at (agent), ==, real_now - HOURS (1));
  g_assert_cmpstr (heartbeat_agent_get_paused_reason (agent), ==, "upgrade");
  g_assert_cmpuint (heartbeat_agent_get_paused_by (agent), ==, 1000);
  check_at (f, T0 + HOURS (5));
  expect_no_events (f);
  resume_agent (f, "worker");
  expect_events (f, STATE ("worker", PAUSED, ERROR));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  ADD_TEST ("/monitor/properties/defaults-and-accessors", test_properties_defaults);
  ADD_TEST ("/monitor/clock/fake-clock-is-used", test_clock_is_used);

  ADD_TEST ("/monitor/register/creates-healthy-agent", test_register_creates_healthy_agent);
  ADD_TEST ("/monitor/register/again-restarts-in-place", test_register_again_restarts_in_place);
  ADD_TEST ("/monitor/stale/reset-on-reregistration", test_stale_reset_on_reregistration);

  ADD_TEST ("/monitor/beat/updates-activity-status-progress-metadata", test_beat_updates_activity);
  ADD_TEST ("/monitor/beat/recovers-stale-agent-then-warns-again", test_beat_recovers_stale_agent);
  ADD_TEST ("/monitor/beat/error-status-no-stale-but-times-out", test_beat_error_status);

  ADD_TEST ("/monitor/idle/has-no-deadlines-until-next-beat", test_idle_has_no_deadlines);
  ADD_TEST ("/monitor/idle/recovers-stale-agent", test_idle_recovers_stale_agent);

  ADD_TEST ("/monitor/stale/fires-after-default-threshold", test_stale_after_default_threshold);
  ADD_TEST ("/monitor/stale/fires-once-per-episode", test_stale_fires_once_per_episode);
  ADD_TEST ("/monitor/stale/repeats-every-check-interval", test_stale_repeats_every_check_interval);
  ADD_TEST ("/monitor/stale/many-agents-different-idle-times", test_stale_many_agents_different_idle_times);

  ADD_TEST ("/monitor/timeout/fires-after-default-threshold", test_timeout_after_default_threshold);
  ADD_TEST ("/monitor/timeout/wins-over-stale-in-same-check", test_timeout_wins_over_stale);

  ADD_TEST ("/monitor/thresholds/per-agent-override-defaults", test_thresholds_per_agent_override_defaults);
  ADD_TEST ("/monitor/thresholds/default-change-reschedules-agents", test_thresholds_default_change_reschedules);

  ADD_TEST ("/monitor/declared/no-heartbeat-until-first-beat-and-after-timeout",
            test_declared_no_heartbeat_until_first_beat);
  ADD_TEST ("/monitor/timeout/retention", test_timeout_retention);
  ADD_TEST ("/monitor/timeout/not-for-a-service", test_service_has_no_default_timeout);
  ADD_TEST ("/monitor/gone/removed-after-retention", test_gone_removed_after_retention);
  ADD_TEST ("/monitor/gone/declared-agent-stays", test_gone_declared_stays);
  ADD_TEST ("/monitor/declared/undeclare", test_undeclare);
  ADD_TEST ("/monitor/gone/beat-revives", test_gone_beat_revives);
  ADD_TEST ("/monitor/history/records-changes", test_history_records_changes);
  ADD_TEST ("/monitor/history/bounded", test_history_bounded);
  ADD_TEST ("/monitor/history/restored-and-aged", test_history_restored_and_aged);
  ADD_TEST ("/monitor/started/new-run", test_started_is_a_new_run);
  ADD_TEST ("/monitor/started/after-idle", test_started_after_idle);

  ADD_TEST ("/monitor/unregister/removes-agent-and-deadlines", test_unregister_removes_agent);
  ADD_TEST ("/monitor/counters/totals-and-episodes", test_counters_totals_and_episodes);
  ADD_TEST ("/monitor/list/sorted-by-id-with-counts", test_list_sorted_with_counts);
  ADD_TEST ("/monitor/status/reports-everything", test_status_reports_everything);

  ADD_TEST ("/monitor/signals/unregister-from-stale-handler", test_signals_unregister_from_stale_handler);
  ADD_TEST ("/monitor/signals/beat-from-stale-handler", test_signals_beat_from_stale_handler);

  ADD_TEST ("/monitor/source/no-wakeup-without-deadlines", test_source_no_wakeup_without_deadlines);
  ADD_TEST ("/monitor/source/start-stop-runs-checks-in-main-loop", test_start_stop_runs_checks_in_main_loop);
  g_test_add_func ("/monitor/default/same-instance", test_default_instance);

  g_test_add_func ("/monitor/enums/round-trip", test_enums_round_trip);
  g_test_add_func ("/monitor/id/validation", test_id_validation);
  ADD_TEST ("/monitor/invalid/rejected-and-nothing-changed", test_invalid_input_rejected);
  g_test_add_func ("/monitor/gate/metadata", test_metadata_gate);
  ADD_TEST ("/monitor/gate/every-entry-point", test_metadata_gate_entry_points);
  ADD_TEST ("/monitor/limits/max-agents", test_max_agents);
  ADD_TEST ("/monitor/durability/store-told-of-changes", test_store_told_of_changes);
  ADD_TEST ("/monitor/metadata/merge", test_metadata_merge);
  ADD_TEST ("/monitor/durability/restore-active-until", test_restore_active_until);

  ADD_TEST ("/monitor/timeout/wins-over-stale-keeps-deadline-order", test_timeout_wins_keeps_deadline_order);
  ADD_TEST ("/monitor/beat-at/past-activity", test_beat_at_past_activity);
  ADD_TEST ("/monitor/boot/old-activity-is-old", test_boot_old_activity_is_old);
  ADD_TEST ("/monitor/boot/restored-agents-judged", test_boot_restored_agents_judged);
  ADD_TEST ("/monitor/boot/deadline-source-fires", test_boot_deadline_source_fires);
  ADD_TEST ("/monitor/declared/mark-no-heartbeat", test_mark_no_heartbeat);
  ADD_TEST ("/monitor/post-event", test_post_event);
  ADD_TEST ("/monitor/stress/ten-thousand-agents-random-thresholds", test_stress_random_thresholds);

  ADD_TEST ("/monitor/pause/silences-until-resumed", test_pause_silences_until_resumed);
  ADD_TEST ("/monitor/pause/holds-what-happened", test_pause_holds_what_happened);
  ADD_TEST ("/monitor/pause/restored", test_pause_restored);
  ADD_TEST ("/monitor/recovered/not-for-stale-to-error", test_stale_to_error_is_no_recovery);
  ADD_TEST ("/monitor/tags/kept-sorted-once", test_tags_kept_sorted_once);
  g_test_add_func ("/monitor/severity/order", test_severity_order);
  ADD_TEST ("/monitor/history/uptime-and-unmonitored", test_uptime_and_unmonitored);

  return g_test_run ();
}
