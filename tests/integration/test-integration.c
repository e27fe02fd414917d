/* test-integration.c: heartbeatd on a private bus, seen from outside
 *
 * Every test starts its own dbus-daemon and heartbeatd (hb-harness.c),
 * talks to org.heartbeat.Monitor1 as root through GDBus and as uid 65534
 * through `setpriv … gdbus call`, and asserts on replies, D-Bus signals,
 * sd_notify messages and exit statuses. Deadlines are observed by waiting
 * for the signals that announce them, with a bounded timeout, never by
 * sleeping. Each test is its own meson test (tests/integration/meson.build).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include <glib/gstdio.h>

#include "hb-harness.h"

typedef struct {
  HbHarness *h;
} Fixture;

static void
fixture_setup (Fixture      *f,
               gconstpointer data)
{
  f->h = hb_harness_new ();
}

static void
fixture_teardown (Fixture      *f,
                  gconstpointer data)
{
  g_clear_pointer (&f->h, hb_harness_free);
}

/* The keys every agent dictionary carries, with their types (the XML's
 * list). */
static const struct {
  const char *key;
  const char *type;
} agent_keys[] = {
  { "id", "s" },
  { "task-id", "s" },
  { "state", "s" },
  { "status", "s" },
  { "owner-uid", "u" },
  { "pid", "u" },
  { "started-at-usec", "t" },
  { "last-activity-at-usec", "t" },
  { "running-usec", "t" },
  { "idle-usec", "t" },
  { "beats", "t" },
  { "stale-after-usec", "t" },
  { "timeout-after-usec", "t" },
  { "metadata", "a{sv}" },
  { "declared", "b" },
  { "bound-to", "s" },
};

static const char *const all_states[] = {
  "healthy", "stale", "timed-out", "error", "gone", "no-heartbeat", "paused", NULL
};

/* The durations and times that move between two reads of an agent. */
static const char *const moving_keys[] = {
  "started-at-usec", "last-activity-at-usec", "running-usec", "idle-usec",
  "uptime-24h", NULL
};

/* Those, and what a restart changes: its history gets the restored state
 * at the restore. */
static const char *const restored_moving_keys[] = {
  "started-at-usec", "last-activity-at-usec", "running-usec", "idle-usec",
  "uptime-24h", "state-since-usec", NULL
};

/* Allowed slack when comparing the test's clock with the daemon's. */
#define CLOCK_SLACK_USEC 2000
/* How late AgentStale and AgentTimedOut come is a product figure, measured
 * by bench/dbus-bench (punctuality) and bench/monitor-bench, not bounded
 * here: a loaded machine delays the test's reading as much as the signal.
 * These tests check that a signal is never early, and comes in the order
 * and with the values the deadline gives it. Likewise "gone at once" is
 * shown by gone coming from healthy, long before any stale threshold. */

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static void
assert_agent_shape (GVariant *agent)
{
  g_assert_true (g_variant_is_of_type (agent, G_VARIANT_TYPE_VARDICT));
  for (guint i = 0; i < G_N_ELEMENTS (agent_keys); i++)
    {
      g_autoptr(GVariant) value = hb_dict_value (agent, agent_keys[i].key, agent_keys[i].type);
    }
}

static GVariant *
dict1 (const char *key,
       GVariant   *value)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_variant_builder_add (&builder, "{sv}", key, value);
  return g_variant_builder_end (&builder);
}

static GVariant *
empty_dict (void)
{
  return g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0);
}

static void
register_agent (HbHarness  *h,
                const char *id,
                GVariant   *options)
{
  g_autoptr(GVariant) reply = hb_call_ok (h, NULL, "Register",
                                          g_variant_new ("(s@a{sv})", id, options ? options : empty_dict ()),
                                          "()");
}

static void
beat_agent (HbHarness  *h,
            const char *id,
            GVariant   *details)
{
  g_autoptr(GVariant) reply = hb_call_ok (h, NULL, "Beat",
                                          g_variant_new ("(s@a{sv})", id, details ? details : empty_dict ()),
                                          "()");
}

static void
call_id (HbHarness  *h,
         const char *method,
         const char *id)
{
  g_autoptr(GVariant) reply = hb_call_ok (h, NULL, method, g_variant_new ("(s)", id), "()");
}

static GVariant *
list_agents (HbHarness *h)
{
  g_autoptr(GVariant) reply = hb_call_ok (h, NULL, "ListAgents", NULL, "(aa{sv})");
  GVariant *agents = NULL;

  g_variant_get (reply, "(@aa{sv})", &agents);
  return agents;
}

static GVariant *
get_status (HbHarness *h)
{
  g_autoptr(GVariant) reply = hb_call_ok (h, NULL, "GetStatus", NULL, "(a{sv})");
  GVariant *status = NULL;

  g_variant_get (reply, "(@a{sv})", &status);
  return status;
}

static GVariant *
find_agent (GVariant   *agents,
            const char *id)
{
  for (gsize i = 0; i < g_variant_n_children (agents); i++)
    {
      g_autoptr(GVariant) agent = g_variant_get_child_value (agents, i);

      if (g_strcmp0 (hb_dict_string (agent, "id"), id) == 0)
        return g_steal_pointer (&agent);
    }
  return NULL;
}

static guint64
property_uint64 (HbHarness  *h,
                 const char *name)
{
  g_autoptr(GVariant) value = hb_harness_get_property (h, name);

  g_assert_true (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64));
  return g_variant_get_uint64 (value);
}

static guint32
property_uint32 (HbHarness  *h,
                 const char *name)
{
  g_autoptr(GVariant) value = hb_harness_get_property (h, name);

  g_assert_true (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32));
  return g_variant_get_uint32 (value);
}

/* The string argument @n of a recorded signal. */
static const char *
signal_string (const HbSignal *sig,
               gsize           n)
{
  const char *value = NULL;
  g_autoptr(GVariant) child = g_variant_get_child_value (sig->parameters, n);

  g_assert_true (g_variant_is_of_type (child, G_VARIANT_TYPE_STRING));
  g_variant_get_child (sig->parameters, n, "&s", &value);
  return value;
}

static guint64
signal_uint64 (const HbSignal *sig,
               gsize           n)
{
  g_autoptr(GVariant) child = g_variant_get_child_value (sig->parameters, n);

  g_assert_true (g_variant_is_of_type (child, G_VARIANT_TYPE_UINT64));
  return g_variant_get_uint64 (child);
}

static GVariant *
signal_dict (const HbSignal *sig,
             gsize           n)
{
  GVariant *child = g_variant_get_child_value (sig->parameters, n);

  g_assert_true (g_variant_is_of_type (child, G_VARIANT_TYPE_VARDICT));
  return child;
}

/* Index of a recorded signal, to check the order of two of them. */
static guint
signal_index (HbHarness      *h,
              const HbSignal *sig)
{
  guint index = 0;

  g_mutex_lock (&h->lock);
  g_assert_true (g_ptr_array_find (h->signals, sig, &index));
  g_mutex_unlock (&h->lock);
  return index;
}

static gboolean
require_nobody_tools (void)
{
  g_autofree char *setpriv = g_find_program_in_path ("setpriv");
  g_autofree char *gdbus = g_find_program_in_path ("gdbus");

  if (setpriv == NULL || gdbus == NULL)
    {
      g_test_skip ("setpriv or gdbus is not installed; cannot act as uid 65534");
      return FALSE;
    }
  return TRUE;
}

/* A call as uid 65534 that must succeed. */
static void
nobody_ok (HbHarness  *h,
           const char *method,
           const char *id,
           const char *dict)
{
  g_autofree char *err = NULL;
  int status = hb_harness_nobody_call (h, &err, method, id, dict, NULL);

  if (status != 0)
    g_test_message ("uid 65534 %s(%s): %s", method, id, err);
  g_assert_cmpint (status, ==, 0);
}

/* A call as uid 65534 that must fail with @error_name. */
static void
nobody_error (HbHarness  *h,
              const char *method,
              const char *id,
              const char *dict,
              const char *error_name)
{
  g_autofree char *err = NULL;
  g_autofree char *expected = strchr (error_name, '.') ? g_strdup (error_name)
                                                       : g_strconcat (HB_ERROR_PREFIX, error_name, NULL);
  int status = hb_harness_nobody_call (h, &err, method, id, dict, NULL);

  g_assert_cmpint (status, !=, 0);
  g_assert_nonnull (err);
  if (strstr (err, expected) == NULL)
    g_test_message ("expected %s in: %s", expected, err);
  g_assert_nonnull (strstr (err, expected));
}

/* ------------------------------------------------------------------ */
/* Methods                                                             */

static void
test_register_and_get_agent (Fixture      *f,
                             gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) agent = NULL;
  g_autoptr(GVariant) plain = NULL;
  g_autoptr(GVariant) restarted = NULL;
  g_autoptr(GVariant) metadata = NULL;
  g_autoptr(GVariant) expected_metadata = NULL;
  g_autoptr(GVariant) empty = NULL;
  const HbSignal *sig;
  guint cursor;
  gint64 before, after, now;

  if (!hb_harness_start_default (h))
    return;

  cursor = hb_harness_signal_cursor (h);
  before = g_get_real_time ();
  register_agent (h, "job-1",
                  g_variant_new_parsed ("{'task-id': <'nightly backup'>,"
                                        " 'stale-after-usec': <uint64 7000000>,"
                                        " 'timeout-after-usec': <uint64 900000000>,"
                                        " 'metadata': <{'host': <'db1'>, 'attempt': <int32 2>}>}"));
  after = g_get_real_time ();
  sig = hb_wait_signal (h, &cursor, "AgentRegistered", "job-1", "nightly backup", NULL);
  g_assert_nonnull (sig);

  agent = hb_harness_get_agent (h, "job-1");
  now = g_get_real_time ();
  assert_agent_shape (agent);
  g_assert_cmpstr (hb_dict_string (agent, "id"), ==, "job-1");
  g_assert_cmpstr (hb_dict_string (agent, "task-id"), ==, "nightly backup");
  g_assert_cmpstr (hb_dict_string (agent, "state"), ==, "healthy");
  g_assert_cmpstr (hb_dict_string (agent, "status"), ==, "running");
  g_assert_cmpuint (hb_dict_uint32 (agent, "owner-uid"), ==, 0);
  g_assert_cmpuint (hb_dict_uint32 (agent, "pid"), ==, 0);
  g_assert_cmpint ((gint64) hb_dict_uint64 (agent, "started-at-usec"), >=, before - CLOCK_SLACK_USEC);
  g_assert_cmpint ((gint64) hb_dict_uint64 (agent, "started-at-usec"), <=, after + CLOCK_SLACK_USEC);
  g_assert_cmpuint (hb_dict_uint64 (agent, "last-activity-at-usec"), ==,
                    hb_dict_uint64 (agent, "started-at-usec"));
  g_assert_cmpint ((gint64) hb_dict_uint64 (agent, "running-usec"), <=, now - before + CLOCK_SLACK_USEC);
  g_assert_cmpint ((gint64) hb_dict_uint64 (agent, "idle-usec"), <=, now - before + CLOCK_SLACK_USEC);
  g_assert_cmpuint (hb_dict_uint64 (agent, "beats"), ==, 0);
  g_assert_cmpuint (hb_dict_uint64 (agent, "stale-after-usec"), ==, 7000000);
  g_assert_cmpuint (hb_dict_uint64 (agent, "timeout-after-usec"), ==, 900000000);
  metadata = hb_dict_value (agent, "metadata", "a{sv}");
  expected_metadata = g_variant_ref_sink (g_variant_new_parsed ("{'host': <'db1'>, 'attempt': <int32 2>}"));
  hb_assert_dict_equal (expected_metadata, metadata, NULL);
  g_assert_false (hb_dict_boolean (agent, "declared"));
  g_assert_cmpstr (hb_dict_string (agent, "bound-to"), ==, "");

  /* no options: the monitor's thresholds, empty task and metadata */
  register_agent (h, "job-2", NULL);
  plain = hb_harness_get_agent (h, "job-2");
  assert_agent_shape (plain);
  g_assert_cmpstr (hb_dict_string (plain, "task-id"), ==, "");
  g_assert_cmpuint (hb_dict_uint64 (plain, "stale-after-usec"), ==, HB_DEFAULT_STALE_USEC);
  g_assert_cmpuint (hb_dict_uint64 (plain, "timeout-after-usec"), ==, HB_DEFAULT_TIMEOUT_USEC);
  empty = hb_dict_value (plain, "metadata", "a{sv}");
  g_assert_cmpuint (g_variant_n_children (empty), ==, 0);
  sig = hb_wait_signal (h, &cursor, "AgentRegistered", "job-2", "", NULL);
  g_assert_nonnull (sig);

  /* registering it again restarts it: no beats, the new options, the
   * defaults for options not given, AgentRegistered again */
  beat_agent (h, "job-1", NULL);
  register_agent (h, "job-1", g_variant_new_parsed ("{'task-id': <'second run'>}"));
  sig = hb_wait_signal (h, &cursor, "AgentRegistered", "job-1", "second run", NULL);
  g_assert_nonnull (sig);
  restarted = hb_harness_get_agent (h, "job-1");
  g_assert_cmpuint (hb_dict_uint64 (restarted, "beats"), ==, 0);
  g_assert_cmpstr (hb_dict_string (restarted, "task-id"), ==, "second run");
  g_assert_cmpuint (hb_dict_uint64 (restarted, "stale-after-usec"), ==, HB_DEFAULT_STALE_USEC);
  g_assert_cmpuint (hb_dict_uint64 (restarted, "timeout-after-usec"), ==, HB_DEFAULT_TIMEOUT_USEC);
  g_assert_cmpuint (hb_dict_uint64 (restarted, "started-at-usec"), >=,
                    hb_dict_uint64 (agent, "started-at-usec"));
  g_assert_cmpuint (property_uint32 (h, "AgentCount"), ==, 2);
}

static void
test_beat_mark_idle_unregister (Fixture      *f,
                                gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) first = NULL;
  g_autoptr(GVariant) second = NULL;
  g_autoptr(GVariant) third = NULL;
  g_autoptr(GVariant) idle = NULL;
  g_autoptr(GVariant) errored = NULL;
  g_autoptr(GVariant) healthy = NULL;
  g_autoptr(GVariant) metadata = NULL;
  g_autoptr(GVariant) expected = NULL;
  const HbSignal *changed, *other;
  guint cursor;

  if (!hb_harness_start_default (h))
    return;

  register_agent (h, "worker", g_variant_new_parsed ("{'metadata': <{'host': <'db1'>}>}"));
  first = hb_harness_get_agent (h, "worker");

  /* a beat with every detail */
  beat_agent (h, "worker", g_variant_new_parsed ("{'status': <'compressing'>, 'progress': <0.5>,"
                                                 " 'metadata': <{'files': <uint32 10>}>}"));
  second = hb_harness_get_agent (h, "worker");
  g_assert_cmpuint (hb_dict_uint64 (second, "beats"), ==, 1);
  g_assert_cmpstr (hb_dict_string (second, "status"), ==, "compressing");
  g_assert_cmpstr (hb_dict_string (second, "state"), ==, "healthy");
  g_assert_cmpuint (hb_dict_uint64 (second, "last-activity-at-usec"), >=,
                    hb_dict_uint64 (first, "last-activity-at-usec"));
  /* a beat does not start a new run (wall-clock conversions may differ
   * by a microsecond between replies) */
  g_assert_cmpint (ABS ((gint64) hb_dict_uint64 (second, "started-at-usec") -
                        (gint64) hb_dict_uint64 (first, "started-at-usec")), <=, CLOCK_SLACK_USEC);
  metadata = hb_dict_value (second, "metadata", "a{sv}");
  expected = g_variant_ref_sink (g_variant_new_parsed ("{'host': <'db1'>, 'files': <uint32 10>, 'progress': <0.5>}"));
  hb_assert_dict_equal (expected, metadata, NULL);
  g_clear_pointer (&metadata, g_variant_unref);
  g_clear_pointer (&expected, g_variant_unref);

  /* metadata is merged key by key; progress stays */
  beat_agent (h, "worker", g_variant_new_parsed ("{'metadata': <{'files': <uint32 11>}>}"));
  third = hb_harness_get_agent (h, "worker");
  g_assert_cmpuint (hb_dict_uint64 (third, "beats"), ==, 2);
  g_assert_cmpstr (hb_dict_string (third, "status"), ==, "running");
  metadata = hb_dict_value (third, "metadata", "a{sv}");
  expected = g_variant_ref_sink (g_variant_new_parsed ("{'host': <'db1'>, 'files': <uint32 11>, 'progress': <0.5>}"));
  hb_assert_dict_equal (expected, metadata, NULL);

  /* status error: state error, and back */
  cursor = hb_harness_signal_cursor (h);
  beat_agent (h, "worker", g_variant_new_parsed ("{'status': <'error'>}"));
  changed = hb_wait_signal (h, &cursor, "AgentStateChanged", "worker", "healthy", "error");
  g_assert_nonnull (changed);
  errored = hb_harness_get_agent (h, "worker");
  g_assert_cmpstr (hb_dict_string (errored, "state"), ==, "error");
  g_assert_cmpstr (hb_dict_string (errored, "status"), ==, "error");
  beat_agent (h, "worker", NULL);
  changed = hb_wait_signal (h, &cursor, "AgentStateChanged", "worker", "error", "healthy");
  g_assert_nonnull (changed);
  healthy = hb_harness_get_agent (h, "worker");
  g_assert_cmpstr (hb_dict_string (healthy, "state"), ==, "healthy");
  g_assert_cmpstr (hb_dict_string (healthy, "status"), ==, "running");

  /* MarkIdle */
  call_id (h, "MarkIdle", "worker");
  idle = hb_harness_get_agent (h, "worker");
  g_assert_cmpstr (hb_dict_string (idle, "status"), ==, "idle");
  g_assert_cmpstr (hb_dict_string (idle, "state"), ==, "healthy");
  g_assert_cmpuint (hb_dict_uint64 (idle, "last-activity-at-usec"), >=,
                    hb_dict_uint64 (healthy, "last-activity-at-usec"));

  /* Unregister */
  cursor = hb_harness_signal_cursor (h);
  call_id (h, "Unregister", "worker");
  other = hb_wait_signal (h, &cursor, "AgentUnregistered", "worker", "unregistered", NULL);
  g_assert_nonnull (other);
  hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "worker"), "NotFound");
  g_assert_cmpuint (property_uint32 (h, "AgentCount"), ==, 0);
}

static void
test_list_agents_and_get_status (Fixture      *f,
                                 gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) agents = NULL;
  g_autoptr(GVariant) status = NULL;
  g_autoptr(GVariant) states = NULL;
  g_autoptr(GVariant) ids = NULL;
  g_autoptr(GVariant) status2 = NULL;
  g_autoptr(GVariant) states2 = NULL;
  g_autofree const char **id_list = NULL;
  const char *expected_ids[] = { "a-job", "b-job", "c-job" };
  const char *version = g_getenv ("HB_VERSION");
  guint32 count;

  if (!hb_harness_start_default (h))
    return;

  /* empty first */
  agents = list_agents (h);
  g_assert_cmpuint (g_variant_n_children (agents), ==, 0);
  g_clear_pointer (&agents, g_variant_unref);

  register_agent (h, "b-job", NULL);
  register_agent (h, "c-job", NULL);
  register_agent (h, "a-job", g_variant_new_parsed ("{'task-id': <'first'>}"));

  agents = list_agents (h);
  g_assert_cmpuint (g_variant_n_children (agents), ==, 3);
  for (gsize i = 0; i < 3; i++)
    {
      g_autoptr(GVariant) agent = g_variant_get_child_value (agents, i);
      g_autoptr(GVariant) single = NULL;

      assert_agent_shape (agent);
      /* sorted by id */
      g_assert_cmpstr (hb_dict_string (agent, "id"), ==, expected_ids[i]);
      single = hb_harness_get_agent (h, expected_ids[i]);
      hb_assert_dict_equal (single, agent, moving_keys);
    }

  status = get_status (h);
  g_assert_true (hb_dict_boolean (status, "running"));
  g_assert_cmpuint (hb_dict_uint32 (status, "agent-count"), ==, 3);
  ids = hb_dict_value (status, "agents", "as");
  id_list = g_variant_get_strv (ids, NULL);
  g_assert_cmpuint (g_strv_length ((char **) id_list), ==, 3);
  for (guint i = 0; i < 3; i++)
    g_assert_cmpstr (id_list[i], ==, expected_ids[i]);
  g_assert_cmpuint (hb_dict_uint64 (status, "check-interval-usec"), ==, HB_DEFAULT_CHECK_USEC);
  g_assert_cmpuint (hb_dict_uint64 (status, "stale-threshold-usec"), ==, HB_DEFAULT_STALE_USEC);
  g_assert_cmpuint (hb_dict_uint64 (status, "timeout-threshold-usec"), ==, HB_DEFAULT_TIMEOUT_USEC);
  g_assert_true (hb_dict_boolean (status, "stale-warning-only-once"));
  g_assert_nonnull (version);
  g_assert_cmpstr (hb_dict_string (status, "version"), ==, version);
  states = hb_dict_value (status, "states", "a{su}");
  for (guint i = 0; all_states[i]; i++)
    {
      g_assert_true (g_variant_lookup (states, all_states[i], "u", &count));
      g_assert_cmpuint (count, ==, strcmp (all_states[i], "healthy") == 0 ? 3 : 0);
    }

  /* the counts follow the states */
  beat_agent (h, "c-job", g_variant_new_parsed ("{'status': <'error'>}"));
  status2 = get_status (h);
  states2 = hb_dict_value (status2, "states", "a{su}");
  g_assert_true (g_variant_lookup (states2, "healthy", "u", &count));
  g_assert_cmpuint (count, ==, 2);
  g_assert_true (g_variant_lookup (states2, "error", "u", &count));
  g_assert_cmpuint (count, ==, 1);
}

static void
test_declared_agent_from_config (Fixture      *f,
                                 gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) agent = NULL;
  g_autoptr(GVariant) beaten = NULL;
  g_autofree char *config = NULL;
  guint cursor;

  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return;
  config = g_strconcat (hb_default_config,
                        "\n[agent:backup]\n"
                        "task=nightly backup of /srv\n"
                        "stale-threshold=15min\n"
                        "timeout-threshold=4h\n", NULL);
  hb_harness_write_config (h, config);
  hb_harness_start_daemon (h, 0);

  agent = hb_harness_get_agent (h, "backup");
  assert_agent_shape (agent);
  g_assert_true (hb_dict_boolean (agent, "declared"));
  g_assert_cmpstr (hb_dict_string (agent, "state"), ==, "no-heartbeat");
  g_assert_cmpstr (hb_dict_string (agent, "task-id"), ==, "nightly backup of /srv");
  g_assert_cmpuint (hb_dict_uint64 (agent, "stale-after-usec"), ==, G_GUINT64_CONSTANT (900000000));
  g_assert_cmpuint (hb_dict_uint64 (agent, "timeout-after-usec"), ==, G_GUINT64_CONSTANT (14400000000));
  g_assert_cmpuint (hb_dict_uint64 (agent, "beats"), ==, 0);

  /* its first beat makes it healthy */
  cursor = hb_harness_signal_cursor (h);
  beat_agent (h, "backup", NULL);
  g_assert_nonnull (hb_wait_signal (h, &cursor, "AgentStateChanged", "backup", "no-heartbeat", "healthy"));
  beaten = hb_harness_get_agent (h, "backup");
  g_assert_cmpstr (hb_dict_string (beaten, "state"), ==, "healthy");
  g_assert_cmpuint (hb_dict_uint64 (beaten, "beats"), ==, 1);
  g_assert_true (hb_dict_boolean (beaten, "declared"));

  /* The section edited, heartbeatd restarted: the saved agent keeps its
   * run and takes the section's task and thresholds */
  hb_harness_stop_child (h, h->daemon);
  g_clear_pointer (&config, g_free);
  config = g_strconcat (hb_default_config,
                        "\n[agent:backup]\n"
                        "task=weekly backup of /srv\n"
                        "stale-threshold=20min\n"
                        "\n[agent:spare]\n", NULL);
  hb_harness_write_config (h, config);
  hb_harness_start_daemon (h, 0);
  g_clear_pointer (&agent, g_variant_unref);
  agent = hb_harness_get_agent (h, "backup");
  g_assert_cmpstr (hb_dict_string (agent, "state"), ==, "healthy");
  g_assert_cmpuint (hb_dict_uint64 (agent, "beats"), ==, 1);
  g_assert_cmpstr (hb_dict_string (agent, "task-id"), ==, "weekly backup of /srv");
  g_assert_cmpuint (hb_dict_uint64 (agent, "stale-after-usec"), ==, G_GUINT64_CONSTANT (1200000000));
  g_assert_cmpuint (hb_dict_uint64 (agent, "timeout-after-usec"), ==, HB_DEFAULT_TIMEOUT_USEC);
  g_assert_cmpuint (property_uint32 (h, "AgentCount"), ==, 2);

  /* Both sections removed and reloaded: backup, which beat, goes on as an
   * ordinary agent; spare, which never beat, is unregistered */
  hb_harness_write_config (h, hb_default_config);
  cursor = hb_harness_signal_cursor (h);
  hb_harness_signal_daemon (h, SIGHUP);
  g_assert_nonnull (hb_wait_signal (h, &cursor, "AgentUnregistered", "spare", "unregistered", NULL));
  g_clear_pointer (&agent, g_variant_unref);
  agent = hb_harness_get_agent (h, "backup");
  g_assert_false (hb_dict_boolean (agent, "declared"));
  g_assert_cmpstr (hb_dict_string (agent, "state"), ==, "healthy");
  g_assert_cmpuint (property_uint32 (h, "AgentCount"), ==, 1);
}

/* ------------------------------------------------------------------ */
/* Errors                                                              */

static void
test_error_not_found (Fixture      *f,
                      gconstpointer data)
{
  HbHarness *h = f->h;

  if (!hb_harness_start_default (h))
    return;

  hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "never-registered"), "NotFound");
  hb_call_error (h, NULL, "Beat", g_variant_new ("(s@a{sv})", "never-registered", empty_dict ()), "NotFound");
  hb_call_error (h, NULL, "Beat", g_variant_new_parsed ("('never-registered', {'status': <'running'>})"), "NotFound");
  hb_call_error (h, NULL, "MarkIdle", g_variant_new ("(s)", "never-registered"), "NotFound");
  hb_call_error (h, NULL, "Unregister", g_variant_new ("(s)", "never-registered"), "NotFound");

  /* gone after Unregister */
  register_agent (h, "short-lived", NULL);
  call_id (h, "Unregister", "short-lived");
  hb_call_error (h, NULL, "Unregister", g_variant_new ("(s)", "short-lived"), "NotFound");
  hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "short-lived"), "NotFound");
}

static void
test_error_invalid_argument (Fixture      *f,
                             gconstpointer data)
{
  HbHarness *h = f->h;
  g_autofree char *id128 = g_strnfill (128, 'a');
  g_autofree char *id129 = g_strnfill (129, 'a');
  g_autofree char *huge = g_strnfill (17 * 1024, 'x');
  g_autofree char *long_task = g_strnfill (257, 't');
  g_autofree char *long_status = g_strnfill (65, 's');
  const char *bad_ids[] = { "", "bad id", "slash/id", "bang!", "ünïcode", "tab\tid", id129 };
  g_autoptr(GVariant) agent128 = NULL;
  g_autoptr(GVariant) after = NULL;
  g_autoptr(GVariant) metadata = NULL;

  if (!hb_harness_start_default (h))
    return;

  /* ids */
  for (guint i = 0; i < G_N_ELEMENTS (bad_ids); i++)
    {
      hb_call_error (h, NULL, "Register", g_variant_new ("(s@a{sv})", bad_ids[i], empty_dict ()),
                     "InvalidArgument");
      hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", bad_ids[i]), "InvalidArgument");
    }
  register_agent (h, id128, NULL);
  agent128 = hb_harness_get_agent (h, id128);
  g_assert_cmpstr (hb_dict_string (agent128, "id"), ==, id128);
  register_agent (h, "Az09._:@-", NULL);

  /* options: unknown key, wrong types, out of range, too large */
  hb_call_error (h, NULL, "Register", g_variant_new_parsed ("('opt', {'stale-after': <uint64 1000000>})"),
                 "InvalidArgument");
  hb_call_error (h, NULL, "Register", g_variant_new_parsed ("('opt', {'stale-after-usec': <int32 5>})"),
                 "InvalidArgument");
  hb_call_error (h, NULL, "Register", g_variant_new_parsed ("('opt', {'timeout-after-usec': <'1h'>})"),
                 "InvalidArgument");
  hb_call_error (h, NULL, "Register", g_variant_new_parsed ("('opt', {'task-id': <uint32 7>})"),
                 "InvalidArgument");
  hb_call_error (h, NULL, "Register", g_variant_new_parsed ("('opt', {'bind-to-caller': <'yes'>})"),
                 "InvalidArgument");
  hb_call_error (h, NULL, "Register", g_variant_new_parsed ("('opt', {'pid': <int64 1>})"),
                 "InvalidArgument");
  hb_call_error (h, NULL, "Register", g_variant_new_parsed ("('opt', {'pid': <uint32 0>})"),
                 "InvalidArgument");
  hb_call_error (h, NULL, "Register", g_variant_new_parsed ("('opt', {'metadata': <'not a dict'>})"),
                 "InvalidArgument");
  hb_call_error (h, NULL, "Register",
                 g_variant_new ("(s@a{sv})", "opt", dict1 ("task-id", g_variant_new_string (long_task))),
                 "InvalidArgument");
  hb_call_error (h, NULL, "Register",
                 g_variant_new ("(s@a{sv})", "opt",
                                dict1 ("metadata", dict1 ("blob", g_variant_new_string (huge)))),
                 "InvalidArgument");
  /* a failed call changes nothing */
  hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "opt"), "NotFound");

  /* details of Beat */
  register_agent (h, "beater", g_variant_new_parsed ("{'metadata': <{'k': <'v'>}>}"));
  hb_call_error (h, NULL, "Beat", g_variant_new_parsed ("('beater', {'colour': <'red'>})"),
                 "InvalidArgument");
  hb_call_error (h, NULL, "Beat", g_variant_new_parsed ("('beater', {'progress': <'half'>})"),
                 "InvalidArgument");
  hb_call_error (h, NULL, "Beat", g_variant_new_parsed ("('beater', {'status': <uint32 1>})"),
                 "InvalidArgument");
  hb_call_error (h, NULL, "Beat",
                 g_variant_new ("(s@a{sv})", "beater", dict1 ("status", g_variant_new_string (long_status))),
                 "InvalidArgument");
  hb_call_error (h, NULL, "Beat", g_variant_new_parsed ("('beater', {'status': <'two\\nlines'>})"),
                 "InvalidArgument");
  hb_call_error (h, NULL, "Beat",
                 g_variant_new ("(s@a{sv})", "beater",
                                dict1 ("metadata", dict1 ("blob", g_variant_new_string (huge)))),
                 "InvalidArgument");
  hb_call_error (h, NULL, "Beat", g_variant_new_parsed ("('bad id', @a{sv} {})"), "InvalidArgument");
  hb_call_error (h, NULL, "MarkIdle", g_variant_new ("(s)", "bad id"), "InvalidArgument");
  hb_call_error (h, NULL, "Unregister", g_variant_new ("(s)", id129), "InvalidArgument");

  after = hb_harness_get_agent (h, "beater");
  g_assert_cmpuint (hb_dict_uint64 (after, "beats"), ==, 0);
  g_assert_cmpstr (hb_dict_string (after, "status"), ==, "running");
  metadata = hb_dict_value (after, "metadata", "a{sv}");
  g_assert_cmpuint (g_variant_n_children (metadata), ==, 1);
}

static void
test_error_exists_across_uids (Fixture      *f,
                               gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) root_owned = NULL;
  g_autoptr(GVariant) nobody_owned = NULL;
  g_autoptr(GVariant) taken_over = NULL;

  if (!require_nobody_tools () || !hb_harness_start_default (h))
    return;

  register_agent (h, "root-owned", NULL);
  nobody_error (h, "Register", "root-owned", "{}", "Exists");
  root_owned = hb_harness_get_agent (h, "root-owned");
  g_assert_cmpuint (hb_dict_uint32 (root_owned, "owner-uid"), ==, 0);

  nobody_ok (h, "Register", "nobody-owned", "{}");
  nobody_owned = hb_harness_get_agent (h, "nobody-owned");
  g_assert_cmpuint (hb_dict_uint32 (nobody_owned, "owner-uid"), ==, HB_NOBODY_UID);
  /* not even root takes an agent over by registering it again */
  hb_call_error (h, NULL, "Register", g_variant_new ("(s@a{sv})", "nobody-owned", empty_dict ()), "Exists");
  /* but root may unregister it, and then register it */
  call_id (h, "Unregister", "nobody-owned");
  register_agent (h, "nobody-owned", NULL);
  taken_over = hb_harness_get_agent (h, "nobody-owned");
  g_assert_cmpuint (hb_dict_uint32 (taken_over, "owner-uid"), ==, 0);
}

static void
test_error_access_denied (Fixture      *f,
                          gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) root_job = NULL;
  g_autoptr(GVariant) nobody_job = NULL;

  if (!require_nobody_tools () || !hb_harness_start_default (h))
    return;

  register_agent (h, "root-job", NULL);
  nobody_error (h, "Beat", "root-job", "{}", "AccessDenied");
  nobody_error (h, "Beat", "root-job", "{'status': <'running'>}", "AccessDenied");
  nobody_error (h, "MarkIdle", "root-job", NULL, "AccessDenied");
  nobody_error (h, "Unregister", "root-job", NULL, "AccessDenied");
  /* anyone may read */
  nobody_ok (h, "GetAgent", "root-job", NULL);
  root_job = hb_harness_get_agent (h, "root-job");
  g_assert_cmpuint (hb_dict_uint64 (root_job, "beats"), ==, 0);
  g_assert_cmpstr (hb_dict_string (root_job, "status"), ==, "running");

  /* its own agent, and root on anyone's */
  nobody_ok (h, "Register", "nobody-job", "{}");
  nobody_ok (h, "Beat", "nobody-job", "{}");
  beat_agent (h, "nobody-job", NULL);
  nobody_job = hb_harness_get_agent (h, "nobody-job");
  g_assert_cmpuint (hb_dict_uint64 (nobody_job, "beats"), ==, 2);
  g_assert_cmpuint (hb_dict_uint32 (nobody_job, "owner-uid"), ==, HB_NOBODY_UID);
  nobody_ok (h, "Unregister", "nobody-job", NULL);
  hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "nobody-job"), "NotFound");
}

static void
test_error_quota_exceeded (Fixture      *f,
                           gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) agents = NULL;
  guint owned = 0;

  if (!require_nobody_tools () || !hb_harness_start_default (h))
    return;

  /* agents-per-uid=3 */
  nobody_ok (h, "Register", "q1", "{}");
  nobody_ok (h, "Register", "q2", "{}");
  nobody_ok (h, "Register", "q3", "{}");
  nobody_error (h, "Register", "q4", "{}", "QuotaExceeded");
  hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "q4"), "NotFound");

  /* the others are unaffected */
  agents = list_agents (h);
  for (gsize i = 0; i < g_variant_n_children (agents); i++)
    {
      g_autoptr(GVariant) agent = g_variant_get_child_value (agents, i);

      if (hb_dict_uint32 (agent, "owner-uid") == HB_NOBODY_UID)
        {
          owned++;
          g_assert_cmpstr (hb_dict_string (agent, "state"), ==, "healthy");
        }
    }
  g_assert_cmpuint (owned, ==, 3);
  nobody_ok (h, "Beat", "q1", "{}");

  /* restarting an agent it owns is not a new one */
  nobody_ok (h, "Register", "q2", "{}");
  /* freeing one makes room */
  nobody_ok (h, "Unregister", "q3", NULL);
  nobody_ok (h, "Register", "q4", "{}");

  /* root is exempt */
  for (guint i = 0; i < HB_DEFAULT_QUOTA + 2; i++)
    {
      g_autofree char *id = g_strdup_printf ("root-%u", i);

      register_agent (h, id, NULL);
    }
  g_assert_cmpuint (property_uint32 (h, "AgentCount"), ==, 3 + HB_DEFAULT_QUOTA + 2);
}

/* ------------------------------------------------------------------ */
/* Properties                                                          */

static void
test_properties_match_config (Fixture      *f,
                              gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) version = NULL;
  g_autoptr(GVariant) once = NULL;
  g_autoptr(GVariant) all = NULL;
  g_autoptr(GVariant) props = NULL;
  g_autoptr(GError) error = NULL;

  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return;
  hb_harness_write_config (h,
                           "[monitor]\n"
                           "check-interval=1500ms\n"
                           "stale-threshold=1min\n"
                           "timeout-threshold=1h30m\n"
                           "stale-warning-only-once=false\n");
  hb_harness_start_daemon (h, 0);

  version = hb_harness_get_property (h, "Version");
  g_assert_cmpstr (g_variant_get_string (version, NULL), ==, g_getenv ("HB_VERSION"));
  g_assert_cmpuint (property_uint32 (h, "AgentCount"), ==, 0);
  g_assert_cmpuint (property_uint64 (h, "StaleThresholdUSec"), ==, G_GUINT64_CONSTANT (60000000));
  g_assert_cmpuint (property_uint64 (h, "TimeoutThresholdUSec"), ==, G_GUINT64_CONSTANT (5400000000));
  g_assert_cmpuint (property_uint64 (h, "CheckIntervalUSec"), ==, G_GUINT64_CONSTANT (1500000));
  once = hb_harness_get_property (h, "StaleWarningOnlyOnce");
  g_assert_true (g_variant_is_of_type (once, G_VARIANT_TYPE_BOOLEAN));
  g_assert_false (g_variant_get_boolean (once));

  /* GetAll: exactly the six */
  all = g_dbus_connection_call_sync (h->client, HB_NAME, HB_PATH, "org.freedesktop.DBus.Properties",
                                     "GetAll", g_variant_new ("(s)", HB_IFACE), G_VARIANT_TYPE ("(a{sv})"),
                                     G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (all, "(@a{sv})", &props);
  g_assert_cmpuint (g_variant_n_children (props), ==, 6);
  g_assert_cmpuint (hb_dict_uint64 (props, "StaleThresholdUSec"), ==, G_GUINT64_CONSTANT (60000000));
  g_assert_false (hb_dict_boolean (props, "StaleWarningOnlyOnce"));

  /* read-only */
  {
    g_autoptr(GVariant) reply = NULL;

    reply = g_dbus_connection_call_sync (h->client, HB_NAME, HB_PATH, "org.freedesktop.DBus.Properties",
                                         "Set", g_variant_new ("(ssv)", HB_IFACE, "StaleThresholdUSec",
                                                               g_variant_new_uint64 (1)),
                                         NULL, G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
    g_assert_null (reply);
    g_assert_nonnull (error);
    g_clear_error (&error);
    g_assert_cmpuint (property_uint64 (h, "StaleThresholdUSec"), ==, G_GUINT64_CONSTANT (60000000));
  }
}

static void
test_properties_agent_count_announced (Fixture      *f,
                                       gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) one = NULL;
  g_autoptr(GVariant) two = NULL;
  g_autoptr(GVariant) back = NULL;
  guint cursor;

  if (!hb_harness_start_default (h))
    return;

  cursor = hb_harness_signal_cursor (h);
  register_agent (h, "counted-1", NULL);
  one = hb_wait_property (h, &cursor, "AgentCount");
  g_assert_true (g_variant_is_of_type (one, G_VARIANT_TYPE_UINT32));
  g_assert_cmpuint (g_variant_get_uint32 (one), ==, 1);

  register_agent (h, "counted-2", NULL);
  two = hb_wait_property (h, &cursor, "AgentCount");
  g_assert_cmpuint (g_variant_get_uint32 (two), ==, 2);

  call_id (h, "Unregister", "counted-1");
  back = hb_wait_property (h, &cursor, "AgentCount");
  g_assert_cmpuint (g_variant_get_uint32 (back), ==, 1);
  g_assert_cmpuint (property_uint32 (h, "AgentCount"), ==, 1);
}

/* ------------------------------------------------------------------ */
/* Deadlines                                                           */

static void
test_stale_on_time (Fixture      *f,
                    gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) agent = NULL;
  g_autoptr(GVariant) stale_dict = NULL;
  g_autoptr(GVariant) after = NULL;
  const HbSignal *changed, *stale;
  guint cursor, from;
  gint64 last_activity, lateness;

  if (!hb_harness_start_default (h))
    return;

  cursor = from = hb_harness_signal_cursor (h);
  register_agent (h, "quick", g_variant_new_parsed ("{'stale-after-usec': <uint64 150000>}"));
  agent = hb_harness_get_agent (h, "quick");
  g_assert_cmpuint (hb_dict_uint64 (agent, "stale-after-usec"), ==, 150000);
  last_activity = (gint64) hb_dict_uint64 (agent, "last-activity-at-usec");

  changed = hb_wait_signal (h, &cursor, "AgentStateChanged", "quick", "healthy", "stale");
  cursor = from;
  stale = hb_wait_signal (h, &cursor, "AgentStale", "quick", NULL, NULL);
  g_assert_cmpuint (signal_index (h, changed), <, signal_index (h, stale));

  lateness = stale->realtime - (last_activity + 150000);
  g_test_message ("AgentStale arrived %.3f ms after the deadline", lateness / 1000.0);
  g_assert_cmpint (lateness, >=, -CLOCK_SLACK_USEC);

  /* the idle time it reports is the threshold's, measured when it fired:
   * never less, and never more than had passed when the test read it */
  g_assert_cmpuint (signal_uint64 (stale, 1), >=, 150000);
  g_assert_cmpint ((gint64) signal_uint64 (stale, 1), <=, stale->realtime - last_activity + CLOCK_SLACK_USEC);
  stale_dict = signal_dict (stale, 2);
  assert_agent_shape (stale_dict);
  g_assert_cmpstr (hb_dict_string (stale_dict, "id"), ==, "quick");
  g_assert_cmpstr (hb_dict_string (stale_dict, "state"), ==, "stale");
  /* the signal's record says why, as GetAgent does */
  g_assert_cmpstr (hb_dict_string (stale_dict, "reason"), ==, "no activity for more than 150ms");
  g_assert_cmpuint (hb_dict_uint32 (stale_dict, "severity"), ==, 3);

  after = hb_harness_get_agent (h, "quick");
  g_assert_cmpstr (hb_dict_string (after, "state"), ==, "stale");
  g_assert_cmpuint (hb_dict_uint64 (after, "idle-usec"), >=, 150000);
}

static void
test_recovered_after_beat (Fixture      *f,
                           gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) agent = NULL;
  g_autoptr(GVariant) recovered_agent = NULL;
  const HbSignal *changed, *recovered, *again;
  guint cursor, from;
  gint64 last_activity, lateness;

  if (!hb_harness_start_default (h))
    return;

  cursor = hb_harness_signal_cursor (h);
  register_agent (h, "flaky", g_variant_new_parsed ("{'stale-after-usec': <uint64 150000>}"));
  g_assert_nonnull (hb_wait_signal (h, &cursor, "AgentStale", "flaky", NULL, NULL));

  from = cursor;
  beat_agent (h, "flaky", NULL);
  changed = hb_wait_signal (h, &cursor, "AgentStateChanged", "flaky", "stale", "healthy");
  cursor = from;
  recovered = hb_wait_signal (h, &cursor, "AgentRecovered", "flaky", NULL, NULL);
  g_assert_cmpuint (signal_index (h, changed), <, signal_index (h, recovered));
  recovered_agent = hb_harness_get_agent (h, "flaky");
  g_assert_cmpstr (hb_dict_string (recovered_agent, "state"), ==, "healthy");
  g_assert_cmpuint (hb_dict_uint64 (recovered_agent, "beats"), ==, 1);

  /* a new episode, warned again, on time from the beat */
  last_activity = (gint64) hb_dict_uint64 (recovered_agent, "last-activity-at-usec");
  cursor = from;
  again = hb_wait_signal (h, &cursor, "AgentStale", "flaky", NULL, NULL);
  lateness = again->realtime - (last_activity + 150000);
  g_test_message ("second AgentStale arrived %.3f ms after the deadline", lateness / 1000.0);
  g_assert_cmpint (lateness, >=, -CLOCK_SLACK_USEC);
}

static void
test_timeout_on_time (Fixture      *f,
                      gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) agent = NULL;
  g_autoptr(GVariant) timed_out_dict = NULL;
  const HbSignal *changed, *timed_out, *unregistered;
  guint cursor, from;
  gint64 started_at, timed_out_at, lateness;

  /* timed-out agents stay listed for the retention, 2 s here: long enough
   * for the test to read the agent while it is listed, on a loaded machine */
  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return;
  hb_harness_write_config (h, "[monitor]\ncheck-interval=200ms\nstale-threshold=5s\nretention=2s\n");
  hb_harness_start_daemon (h, 0);

  cursor = from = hb_harness_signal_cursor (h);
  register_agent (h, "long", g_variant_new_parsed ("{'timeout-after-usec': <uint64 400000>,"
                                                   " 'task-id': <'forever'>}"));
  agent = hb_harness_get_agent (h, "long");
  g_assert_cmpuint (hb_dict_uint64 (agent, "timeout-after-usec"), ==, 400000);
  started_at = (gint64) hb_dict_uint64 (agent, "started-at-usec");

  changed = hb_wait_signal (h, &cursor, "AgentStateChanged", "long", "healthy", "timed-out");
  cursor = from;
  timed_out = hb_wait_signal (h, &cursor, "AgentTimedOut", "long", NULL, NULL);
  g_assert_cmpuint (signal_index (h, changed), <, signal_index (h, timed_out));

  /* listed, timed out, until the retention passes */
  {
    g_autoptr(GVariant) listed = hb_harness_get_agent (h, "long");

    g_assert_cmpstr (hb_dict_string (listed, "state"), ==, "timed-out");
    g_assert_cmpstr (hb_dict_string (listed, "reason"), ==, "running longer than 400ms");
    g_assert_cmpuint (hb_dict_uint32 (listed, "severity"), ==, 6);
    g_assert_cmpuint (property_uint32 (h, "AgentCount"), ==, 1);
  }
  unregistered = hb_wait_signal (h, &cursor, "AgentUnregistered", "long", "timed-out", NULL);
  g_assert_cmpuint (signal_index (h, timed_out), <, signal_index (h, unregistered));
  /* from the moment the daemon timed it out (its start plus the run it
   * reports), not from when this process read AgentTimedOut: a test
   * process that reads that signal late must not make the removal look
   * early */
  timed_out_at = started_at + (gint64) signal_uint64 (timed_out, 1);
  g_test_message ("removed %.3f ms after it timed out (retention 2 s)",
                  (unregistered->realtime - timed_out_at) / 1000.0);
  g_assert_cmpint (unregistered->realtime - timed_out_at, >=, 2000000 - CLOCK_SLACK_USEC);

  lateness = timed_out->realtime - (started_at + 400000);
  g_test_message ("AgentTimedOut arrived %.3f ms after the deadline", lateness / 1000.0);
  g_assert_cmpint (lateness, >=, -CLOCK_SLACK_USEC);

  g_assert_cmpuint (signal_uint64 (timed_out, 1), >=, 400000);
  g_assert_cmpint ((gint64) signal_uint64 (timed_out, 1), <=, timed_out->realtime - started_at + CLOCK_SLACK_USEC);
  timed_out_dict = signal_dict (timed_out, 2);
  assert_agent_shape (timed_out_dict);
  g_assert_cmpstr (hb_dict_string (timed_out_dict, "id"), ==, "long");
  g_assert_cmpstr (hb_dict_string (timed_out_dict, "task-id"), ==, "forever");

  /* removed */
  hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "long"), "NotFound");
  g_assert_cmpuint (property_uint32 (h, "AgentCount"), ==, 0);
}

/* ------------------------------------------------------------------ */
/* Liveness                                                            */

static void
test_bind_to_caller (Fixture      *f,
                     gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GDBusConnection) peer = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) bound = NULL;
  g_autoptr(GVariant) gone = NULL;
  g_autoptr(GVariant) unbound = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *unique = NULL;
  const HbSignal *changed;
  guint cursor;
  gint64 closed_at;

  if (!hb_harness_start_default (h))
    return;

  peer = hb_harness_connect (h);
  unique = g_strdup (g_dbus_connection_get_unique_name (peer));
  reply = hb_call_ok (h, peer, "Register",
                      g_variant_new_parsed ("('bound', {'bind-to-caller': <true>})"), "()");
  g_clear_pointer (&reply, g_variant_unref);
  reply = hb_call_ok (h, peer, "Register", g_variant_new_parsed ("('unbound', @a{sv} {})"), "()");

  bound = hb_harness_get_agent (h, "bound");
  g_assert_cmpstr (hb_dict_string (bound, "bound-to"), ==, unique);
  g_assert_cmpstr (hb_dict_string (bound, "state"), ==, "healthy");

  cursor = hb_harness_signal_cursor (h);
  closed_at = g_get_real_time ();
  g_dbus_connection_close_sync (peer, NULL, &error);
  g_assert_no_error (error);

  changed = hb_wait_signal (h, &cursor, "AgentStateChanged", "bound", NULL, "gone");
  g_test_message ("gone %.3f ms after the peer closed", (changed->realtime - closed_at) / 1000.0);
  g_assert_cmpstr (signal_string (changed, 1), ==, "healthy");

  gone = hb_harness_get_agent (h, "bound");
  g_assert_cmpstr (hb_dict_string (gone, "state"), ==, "gone");
  {
    g_autofree char *reason = g_strdup_printf ("bus name %s left the bus", unique);

    g_assert_cmpstr (hb_dict_string (gone, "reason"), ==, reason);
    g_assert_cmpuint (hb_dict_uint32 (gone, "severity"), ==, 5);
  }
  /* only the bound one */
  unbound = hb_harness_get_agent (h, "unbound");
  g_assert_cmpstr (hb_dict_string (unbound, "state"), ==, "healthy");
}

static void
test_pid_gone_on_exit (Fixture      *f,
                       gconstpointer data)
{
  HbHarness *h = f->h;
  const char *argv[] = { "sleep", "600", NULL };
  g_autoptr(GVariant) bound = NULL;
  g_autoptr(GVariant) gone = NULL;
  const HbSignal *changed;
  HbChild *sleeper;
  guint cursor;
  gint64 killed_at;

  if (!hb_harness_start_default (h))
    return;

  sleeper = hb_harness_spawn (h, argv);
  register_agent (h, "sleeper", dict1 ("pid", g_variant_new_uint32 ((guint32) sleeper->pid)));
  bound = hb_harness_get_agent (h, "sleeper");
  g_assert_cmpuint (hb_dict_uint32 (bound, "pid"), ==, (guint32) sleeper->pid);
  g_assert_cmpstr (hb_dict_string (bound, "state"), ==, "healthy");

  cursor = hb_harness_signal_cursor (h);
  killed_at = g_get_real_time ();
  g_assert_cmpint (kill (sleeper->pid, SIGKILL), ==, 0);
  changed = hb_wait_signal (h, &cursor, "AgentStateChanged", "sleeper", "healthy", "gone");
  g_test_message ("gone %.3f ms after the kill", (changed->realtime - killed_at) / 1000.0);
  hb_harness_wait_exit (h, sleeper, HB_WAIT_MS);

  gone = hb_harness_get_agent (h, "sleeper");
  g_assert_cmpstr (hb_dict_string (gone, "state"), ==, "gone");
  g_assert_cmpuint (hb_dict_uint32 (gone, "pid"), ==, (guint32) sleeper->pid);
  {
    g_autofree char *reason = g_strdup_printf ("pid %d exited", (int) sleeper->pid);

    g_assert_cmpstr (hb_dict_string (gone, "reason"), ==, reason);
  }
}

static void
test_pid_must_exist (Fixture      *f,
                     gconstpointer data)
{
  HbHarness *h = f->h;
  const char *argv[] = { "true", NULL };
  HbChild *done;
  int status;

  if (!hb_harness_start_default (h))
    return;

  /* a pid that just ended and has been reaped */
  done = hb_harness_spawn (h, argv);
  status = hb_harness_wait_exit (h, done, HB_WAIT_MS);
  g_assert_true (WIFEXITED (status));
  hb_call_error (h, NULL, "Register",
                 g_variant_new ("(s@a{sv})", "ghost", dict1 ("pid", g_variant_new_uint32 ((guint32) done->pid))),
                 "InvalidArgument");
  hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "ghost"), "NotFound");
}

/* ------------------------------------------------------------------ */
/* Reload                                                              */

static void
test_sighup_applies_new_thresholds (Fixture      *f,
                                    gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) stale = NULL;
  g_autoptr(GVariant) keeper = NULL;
  g_autoptr(GVariant) own = NULL;
  g_autofree char *monotonic = NULL;
  const HbNotifyMessage *reloading;
  guint notify_cursor, cursor;
  GPid pid;

  if (!hb_harness_start_default (h))
    return;

  register_agent (h, "keeper", NULL);
  register_agent (h, "own-threshold", g_variant_new_parsed ("{'stale-after-usec': <uint64 9000000>}"));
  pid = h->daemon->pid;

  hb_harness_write_config (h,
                           "[monitor]\n"
                           "check-interval=300ms\n"
                           "stale-threshold=7s\n"
                           "timeout-threshold=20min\n"
                           "[limits]\n"
                           "agents-per-uid=3\n");
  notify_cursor = hb_harness_notify_cursor (h);
  cursor = hb_harness_signal_cursor (h);
  hb_harness_signal_daemon (h, SIGHUP);

  reloading = hb_wait_notify (h, &notify_cursor, "RELOADING=1");
  /* systemd's Type=notify-reload wants the time with it */
  g_assert_nonnull (hb_notify_message_get (reloading, "MONOTONIC_USEC=", &monotonic));
  g_assert_nonnull (hb_wait_notify (h, &notify_cursor, "READY=1"));

  stale = hb_wait_property (h, &cursor, "StaleThresholdUSec");
  g_assert_cmpuint (g_variant_get_uint64 (stale), ==, G_GUINT64_CONSTANT (7000000));
  g_assert_cmpuint (property_uint64 (h, "StaleThresholdUSec"), ==, G_GUINT64_CONSTANT (7000000));
  g_assert_cmpuint (property_uint64 (h, "TimeoutThresholdUSec"), ==, G_GUINT64_CONSTANT (1200000000));
  g_assert_cmpuint (property_uint64 (h, "CheckIntervalUSec"), ==, G_GUINT64_CONSTANT (300000));

  /* the same process, the same agents; the new default applies to agents
   * without their own threshold */
  g_assert_false (h->daemon->exited);
  g_assert_cmpint (h->daemon->pid, ==, pid);
  g_assert_cmpuint (property_uint32 (h, "AgentCount"), ==, 2);
  keeper = hb_harness_get_agent (h, "keeper");
  g_assert_cmpuint (hb_dict_uint64 (keeper, "stale-after-usec"), ==, G_GUINT64_CONSTANT (7000000));
  own = hb_harness_get_agent (h, "own-threshold");
  g_assert_cmpuint (hb_dict_uint64 (own, "stale-after-usec"), ==, G_GUINT64_CONSTANT (9000000));
}

static void
test_sighup_bad_config_keeps_old (Fixture      *f,
                                  gconstpointer data)
{
  HbHarness *h = f->h;
  const char *bad_configs[] = {
    "[monitor\nstale-threshold=7s\n",        /* syntax error */
    "[monitor]\nstale-threshold=soon\n",     /* a bad duration */
  };
  guint notify_cursor;

  if (!hb_harness_start_default (h))
    return;

  register_agent (h, "keeper", NULL);
  for (guint i = 0; i < G_N_ELEMENTS (bad_configs); i++)
    {
      g_autoptr(GVariant) status = NULL;
      g_autoptr(GVariant) keeper = NULL;

      hb_harness_write_config (h, bad_configs[i]);
      notify_cursor = hb_harness_notify_cursor (h);
      hb_harness_signal_daemon (h, SIGHUP);
      g_assert_nonnull (hb_wait_notify (h, &notify_cursor, "RELOADING=1"));
      g_assert_nonnull (hb_wait_notify (h, &notify_cursor, "READY=1"));

      g_assert_false (h->daemon->exited);
      g_assert_cmpuint (property_uint64 (h, "StaleThresholdUSec"), ==, HB_DEFAULT_STALE_USEC);
      g_assert_cmpuint (property_uint64 (h, "CheckIntervalUSec"), ==, HB_DEFAULT_CHECK_USEC);
      status = get_status (h);
      g_assert_true (hb_dict_boolean (status, "running"));
      keeper = hb_harness_get_agent (h, "keeper");
      g_assert_cmpuint (hb_dict_uint64 (keeper, "stale-after-usec"), ==, HB_DEFAULT_STALE_USEC);
    }
}

/* ------------------------------------------------------------------ */
/* Restart                                                             */

static void
test_kill9_keeps_registrations (Fixture      *f,
                                gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) before = NULL;
  g_autoptr(GVariant) after = NULL;
  int status;

  if (!require_nobody_tools () || !hb_harness_start_default (h))
    return;

  register_agent (h, "job-a",
                  g_variant_new_parsed ("{'task-id': <'backup /srv'>,"
                                        " 'timeout-after-usec': <uint64 1200000000>,"
                                        " 'metadata': <{'host': <'db1'>, 'attempt': <int32 2>,"
                                        "               'ratio': <0.25>, 'tags': <['a', 'b']>}>}"));
  register_agent (h, "job-b", NULL);
  register_agent (h, "job-c",
                  g_variant_new_parsed ("{'task-id': <'ingest'>, 'stale-after-usec': <uint64 7000000>,"
                                        " 'metadata': <{'nested': <{'deep': <true>}>}>}"));
  nobody_ok (h, "Register", "job-n", "{'task-id': <'unprivileged'>}");
  before = list_agents (h);
  g_assert_cmpuint (g_variant_n_children (before), ==, 4);

  hb_harness_signal_daemon (h, SIGKILL);
  status = hb_harness_wait_exit (h, h->daemon, HB_WAIT_MS);
  g_assert_true (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);

  hb_harness_start_daemon (h, 0);
  after = list_agents (h);
  g_assert_cmpuint (g_variant_n_children (after), ==, 4);
  for (gsize i = 0; i < g_variant_n_children (before); i++)
    {
      g_autoptr(GVariant) old = g_variant_get_child_value (before, i);
      const char *id = hb_dict_string (old, "id");
      g_autoptr(GVariant) restored = find_agent (after, id);

      g_test_message ("comparing %s", id);
      g_assert_nonnull (restored);
      /* state-since-usec: the restore is a state change of its own */
      hb_assert_dict_equal (old, restored, restored_moving_keys);
      /* points in time are wall-clock and survive too */
      g_assert_cmpint (ABS ((gint64) hb_dict_uint64 (old, "started-at-usec") -
                            (gint64) hb_dict_uint64 (restored, "started-at-usec")), <=, 10000);
      g_assert_cmpint (ABS ((gint64) hb_dict_uint64 (old, "last-activity-at-usec") -
                            (gint64) hb_dict_uint64 (restored, "last-activity-at-usec")), <=, 10000);
    }
  g_assert_cmpuint (property_uint32 (h, "AgentCount"), ==, 4);
  /* ownership came back too: uid 65534 still may, root's agents it may not */
  nobody_ok (h, "Beat", "job-n", "{}");
  nobody_error (h, "Beat", "job-a", "{}", "AccessDenied");
}

/* Beats are saved lazily (every 30 s by default): after a kill -9 the
 * agent's saved activity is older than it really was. An agent beating
 * well within its 1 s threshold must not come back stale: it is healthy
 * after the restart (its idle time overstated), and its next beat keeps
 * it so, with no AgentStale on the way. */
static void
test_no_false_stale_after_kill9 (Fixture      *f,
                                 gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) agent = NULL;
  guint cursor;

  if (!hb_harness_start_default (h))
    return;

  register_agent (h, "busy", dict1 ("stale-after-usec", g_variant_new_uint64 (G_USEC_PER_SEC)));
  /* beating every 200 ms for 1.5 s: none of these beats is saved yet */
  for (guint i = 0; i < 8; i++)
    {
      beat_agent (h, "busy", NULL);
      hb_harness_run_for (h, 200);
    }
  beat_agent (h, "busy", NULL);
  hb_harness_signal_daemon (h, SIGKILL);
  hb_harness_wait_exit (h, h->daemon, HB_WAIT_MS);

  cursor = hb_harness_signal_cursor (h);
  hb_harness_start_daemon (h, 0);
  agent = hb_harness_get_agent (h, "busy");
  g_test_message ("after the restart: %s, idle %.3f s", hb_dict_string (agent, "state"),
                  hb_dict_uint64 (agent, "idle-usec") / 1e6);
  g_assert_cmpstr (hb_dict_string (agent, "state"), ==, "healthy");
  g_assert_cmpuint (hb_dict_uint64 (agent, "idle-usec"), >=, G_USEC_PER_SEC);
  beat_agent (h, "busy", NULL);
  /* the daemon sends its signals before the reply to a later call */
  g_assert_null (hb_harness_find_signal (h, cursor, "AgentStale", "busy", NULL, NULL, NULL));
  g_clear_pointer (&agent, g_variant_unref);
  agent = hb_harness_get_agent (h, "busy");
  g_assert_cmpstr (hb_dict_string (agent, "state"), ==, "healthy");
}

static void
test_overdue_agent_stale_after_restart (Fixture      *f,
                                        gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) agent = NULL;
  g_autoptr(GVariant) restored = NULL;
  const HbSignal *stale;
  const HbNotifyMessage *ready;
  guint cursor;
  gint64 last_activity, idle, expected_idle, downtime;
  const gint64 threshold = 300000;

  if (!hb_harness_start_default (h))
    return;

  register_agent (h, "overdue", dict1 ("stale-after-usec", g_variant_new_uint64 (threshold)));
  agent = hb_harness_get_agent (h, "overdue");
  last_activity = (gint64) hb_dict_uint64 (agent, "last-activity-at-usec");
  /* a clean stop: the state is exact (after a kill -9 the agent would get
   * its threshold from the restart, see no-false-stale-after-kill9) */
  hb_harness_signal_daemon (h, SIGTERM);
  hb_harness_wait_exit (h, h->daemon, HB_WAIT_MS);
  /* the first daemon died before the deadline */
  if (hb_harness_find_signal (h, 0, "AgentStale", "overdue", NULL, NULL, NULL))
    g_test_message ("the first heartbeatd saw the deadline before it was killed: too slow a machine");
  g_assert_null (hb_harness_find_signal (h, 0, "AgentStale", "overdue", NULL, NULL, NULL));

  /* The scenario is time passing while no daemon runs: let the agent's
   * deadline go by with heartbeatd down. (Not a wait for the daemon.) */
  downtime = last_activity + threshold + 50000 - g_get_real_time ();
  if (downtime > 0)
    hb_harness_run_for (h, (guint) (downtime / 1000) + 1);
  g_assert_cmpint (g_get_real_time (), >, last_activity + threshold);

  cursor = hb_harness_signal_cursor (h);
  hb_harness_start_daemon (h, 0);
  ready = h->notify->pdata[h->ready_index];
  stale = hb_wait_signal (h, &cursor, "AgentStale", "overdue", NULL, NULL);
  g_test_message ("AgentStale %.3f ms after READY=1", (stale->realtime - ready->realtime) / 1000.0);
  /* judged at once: by the daemon's own account (the idle time it
   * reported), before a whole threshold passed since it was ready */
  g_assert_cmpint ((gint64) signal_uint64 (stale, 1) - (ready->realtime - last_activity), <, threshold);

  /* judged by the wall clock, downtime included */
  idle = (gint64) signal_uint64 (stale, 1);
  expected_idle = stale->realtime - last_activity;
  g_test_message ("idle %.3f ms, expected about %.3f ms", idle / 1000.0, expected_idle / 1000.0);
  g_assert_cmpint (idle, >=, threshold);
  g_assert_cmpint (idle, <=, expected_idle + CLOCK_SLACK_USEC);

  restored = hb_harness_get_agent (h, "overdue");
  g_assert_cmpstr (hb_dict_string (restored, "state"), ==, "stale");
  g_assert_cmpint (ABS ((gint64) hb_dict_uint64 (restored, "last-activity-at-usec") - last_activity), <=, 10000);
}

/* ------------------------------------------------------------------ */
/* sd_notify and lifecycle                                             */

static void
test_ready_after_name_owned (Fixture      *f,
                             gconstpointer data)
{
  HbHarness *h = f->h;
  const HbNotifyMessage *ready;
  g_autofree char *status = NULL;

  if (!hb_harness_start_default (h))
    return;

  /* the name was owned, by this daemon, when READY=1 came */
  g_assert_cmpuint (h->ready_owner_pid, ==, (guint32) h->daemon->pid);
  ready = h->notify->pdata[h->ready_index];
  g_assert_nonnull (hb_notify_message_get (ready, "STATUS=", &status));
  g_assert_cmpstr (status, ==, "0 agents, 0 stale");
}

static void
test_status_counts_agents (Fixture      *f,
                           gconstpointer data)
{
  HbHarness *h = f->h;
  guint notify_cursor, cursor;

  if (!hb_harness_start_default (h))
    return;

  notify_cursor = h->ready_index + 1;
  cursor = hb_harness_signal_cursor (h);
  register_agent (h, "st", dict1 ("stale-after-usec", g_variant_new_uint64 (150000)));
  g_assert_nonnull (hb_wait_notify (h, &notify_cursor, "STATUS=1 agent, 0 stale"));
  g_assert_nonnull (hb_wait_signal (h, &cursor, "AgentStale", "st", NULL, NULL));
  g_assert_nonnull (hb_wait_notify (h, &notify_cursor, "STATUS=1 agent, 1 stale"));
  register_agent (h, "st2", NULL);
  g_assert_nonnull (hb_wait_notify (h, &notify_cursor, "STATUS=2 agents, 1 stale"));
  beat_agent (h, "st2", g_variant_new_parsed ("{'status': <'error'>}"));
  g_assert_nonnull (hb_wait_notify (h, &notify_cursor, "STATUS=2 agents, 1 stale, 1 error"));
  call_id (h, "Unregister", "st");
  call_id (h, "Unregister", "st2");
  g_assert_nonnull (hb_wait_notify (h, &notify_cursor, "STATUS=0 agents, 0 stale"));
}

/* A service manager that does not read its socket (stuck, or its queue
 * full) does not stop the daemon: answers go on, a STATUS= that did not
 * fit is dropped for a newer one, and RELOADING=1 and READY=1 arrive, in
 * order, once it reads again. (libsystemd's sd_notify() blocks there.) */
static void
test_notify_never_blocks (Fixture      *f,
                          gconstpointer data)
{
  static const char config[] =
    "[monitor]\ncheck-interval=200ms\nstale-threshold=1h\n[limits]\nagents-per-uid=1000\n";
  HbHarness *h = f->h;
  g_autoptr(GVariant) status = NULL;
  g_autofree char *text = NULL;
  const HbNotifyMessage *ready;
  guint notify_cursor, queued;

  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return;
  hb_harness_write_config (h, config);
  hb_harness_start_daemon (h, 0);

  hb_harness_read_notify (h, FALSE);
  notify_cursor = hb_harness_notify_cursor (h);
  /* each registration changes STATUS=: 600 datagrams, far more than the
   * socket queues (net.unix.max_dgram_qlen: 10 by default, 512 with
   * systemd's sysctl.d) */
  for (guint i = 0; i < 600; i++)
    {
      g_autofree char *id = g_strdup_printf ("n%03u", i);

      register_agent (h, id, NULL);
    }
  hb_harness_signal_daemon (h, SIGHUP);
  status = hb_call_ok (h, NULL, "GetStatus", NULL, "(a{sv})");
  g_assert_false (h->daemon->exited);
  queued = hb_harness_notify_cursor (h);
  g_assert_cmpuint (queued, ==, notify_cursor);   /* none read yet */

  hb_harness_read_notify (h, TRUE);
  g_assert_nonnull (hb_wait_notify (h, &notify_cursor, "RELOADING=1"));
  ready = hb_wait_notify (h, &notify_cursor, "READY=1");
  g_assert_nonnull (hb_notify_message_get (ready, "STATUS=", &text));
  g_assert_cmpstr (text, ==, "600 agents, 0 stale");
}

static int
compare_int64 (gconstpointer a,
               gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return x < y ? -1 : x > y;
}

static void
test_watchdog_cadence (Fixture      *f,
                       gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GArray) pings = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GArray) intervals = g_array_new (FALSE, FALSE, sizeof (gint64));
  guint first;
  gint64 window_start, window_end, median, longest = 0;

  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return;
  hb_harness_write_config (h, hb_default_config);
  hb_harness_start_daemon (h, 200000);

  /* a bounded observation window */
  first = hb_harness_notify_cursor (h);
  window_start = g_get_monotonic_time ();
  hb_harness_run_for (h, 1000);
  window_end = g_get_monotonic_time ();

  for (guint i = first; i < h->notify->len; i++)
    {
      HbNotifyMessage *m = h->notify->pdata[i];

      if (strcmp (m->text, "WATCHDOG=1") == 0 && m->monotonic >= window_start && m->monotonic <= window_end)
        g_array_append_val (pings, m->monotonic);
    }
  g_test_message ("%u WATCHDOG=1 in %.1f ms", pings->len, (window_end - window_start) / 1000.0);
  g_assert_cmpuint (pings->len, >=, 7);
  g_assert_cmpuint (pings->len, <=, 13);

  for (guint i = 1; i < pings->len; i++)
    {
      gint64 interval = g_array_index (pings, gint64, i) - g_array_index (pings, gint64, i - 1);

      g_array_append_val (intervals, interval);
      longest = MAX (longest, interval);
    }
  g_array_sort (intervals, compare_int64);
  median = g_array_index (intervals, gint64, intervals->len / 2);
  g_test_message ("median interval %.1f ms, longest %.1f ms", median / 1000.0, longest / 1000.0);
  g_assert_cmpint (median, >=, 80000);
  g_assert_cmpint (median, <=, 120000);
  /* never as long as the watchdog interval itself */
  g_assert_cmpint (longest, <, 200000);
  g_assert_false (h->daemon->exited);
}

static void
test_sigterm_stopping_exit_0 (Fixture      *f,
                              gconstpointer data)
{
  HbHarness *h = f->h;
  g_autofree char *saved = NULL;
  guint notify_cursor;
  int status;

  if (!hb_harness_start_default (h))
    return;

  register_agent (h, "persist-me", NULL);
  notify_cursor = hb_harness_notify_cursor (h);
  hb_harness_signal_daemon (h, SIGTERM);
  g_assert_nonnull (hb_wait_notify (h, &notify_cursor, "STOPPING=1"));
  status = hb_harness_wait_exit (h, h->daemon, HB_WAIT_MS);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);

  /* it saved its state on the way out */
  saved = hb_harness_saved_agents (h);
  g_assert_cmpstr (saved, ==, "persist-me");
}

static void
test_exit_1_when_bus_goes_away (Fixture      *f,
                                gconstpointer data)
{
  HbHarness *h = f->h;
  int status;

  if (!hb_harness_start_default (h))
    return;

  hb_harness_stop_child (h, h->bus);
  status = hb_harness_wait_exit (h, h->daemon, HB_WAIT_MS);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 1);
}

static void
test_second_instance_exits_1 (Fixture      *f,
                              gconstpointer data)
{
  HbHarness *h = f->h;
  g_autofree char *other_state = NULL;
  g_autoptr(GVariant) status_reply = NULL;
  HbChild *first, *second;
  int status;

  if (!hb_harness_start_default (h))
    return;

  first = h->daemon;
  other_state = g_build_filename (h->tmpdir, "state-2", NULL);
  g_assert_cmpint (g_mkdir (other_state, 0700), ==, 0);
  second = hb_harness_spawn_daemon (h, other_state, 0);
  h->daemon = first;
  status = hb_harness_wait_exit (h, second, HB_WAIT_MS);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 1);

  /* the first one still serves */
  g_assert_false (first->exited);
  status_reply = get_status (h);
  g_assert_true (hb_dict_boolean (status_reply, "running"));
}

/* ------------------------------------------------------------------ */
/* polkit and the system bus policy                                    */

static void
test_polkit_manage_action (Fixture      *f,
                           gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) before = NULL;
  g_autoptr(GVariant) after = NULL;
  g_autoptr(GError) error = NULL;

  if (!require_nobody_tools () || !hb_harness_start_default (h))
    return;

  register_agent (h, "A", NULL);

  /* no polkit on the bus: denied */
  nobody_error (h, "Beat", "A", "{}", "AccessDenied");

  /* polkit, action not allowed: denied */
  if (hb_harness_start_polkit_mock (h) == NULL)
    return;
  nobody_error (h, "Beat", "A", "{}", "AccessDenied");
  nobody_error (h, "Pause", "A", "{}", "AccessDenied");
  before = hb_harness_get_agent (h, "A");
  g_assert_cmpuint (hb_dict_uint64 (before, "beats"), ==, 0);

  /* allowed: the beat goes through, the agent stays root's */
  reply = g_dbus_connection_call_sync (h->client, "org.freedesktop.PolicyKit1",
                                       "/org/freedesktop/PolicyKit1/Authority",
                                       "org.freedesktop.DBus.Mock", "SetAllowed",
                                       g_variant_new_parsed ("([%s],)", HB_MANAGE_ACTION),
                                       NULL, G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
  g_assert_no_error (error);
  nobody_ok (h, "Beat", "A", "{}");
  after = hb_harness_get_agent (h, "A");
  g_assert_cmpuint (hb_dict_uint64 (after, "beats"), ==, 1);
  g_assert_cmpuint (hb_dict_uint32 (after, "owner-uid"), ==, 0);
  nobody_ok (h, "MarkIdle", "A", NULL);
  /* and pause and resume it, the pause said to be theirs */
  nobody_ok (h, "Pause", "A", "{'reason': <'polkit said yes'>}");
  {
    g_autoptr(GVariant) paused = hb_harness_get_agent (h, "A");

    g_assert_cmpstr (hb_dict_string (paused, "state"), ==, "paused");
    g_assert_cmpuint (hb_dict_uint32 (paused, "paused-by-uid"), ==, HB_NOBODY_UID);
    g_assert_cmpuint (hb_dict_uint32 (paused, "owner-uid"), ==, 0);
  }
  nobody_ok (h, "Resume", "A", NULL);
}

static void
test_system_bus_policy (Fixture      *f,
                        gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) nobody_job = NULL;
  g_autoptr(GVariant) root_job = NULL;
  g_autofree char *err = NULL;
  const char *request_name[] = {
    "--dest", "org.freedesktop.DBus", "--object-path", "/org/freedesktop/DBus",
    "--method", "org.freedesktop.DBus.RequestName", HB_NAME, "4", NULL
  };
  const char *get_version[] = {
    "--dest", HB_NAME, "--object-path", HB_PATH,
    "--method", "org.freedesktop.DBus.Properties.Get", HB_IFACE, "Version", NULL
  };
  int status;

  if (!require_nobody_tools () || !hb_harness_start_bus (h, HB_BUS_SYSTEM))
    return;
  hb_harness_write_config (h, hb_default_config);
  hb_harness_start_daemon (h, 0);
  g_assert_cmpuint (h->ready_owner_pid, ==, (guint32) h->daemon->pid);

  register_agent (h, "root-job", NULL);

  /* uid 65534 may use the interface, on its own agents */
  nobody_ok (h, "Register", "nobody-job", "{}");
  nobody_ok (h, "Beat", "nobody-job", "{}");
  nobody_ok (h, "GetAgent", "root-job", NULL);
  status = hb_harness_run_as_nobody (h, NULL, NULL, get_version);
  g_assert_cmpint (status, ==, 0);
  nobody_error (h, "Beat", "root-job", "{}", "AccessDenied");

  nobody_job = hb_harness_get_agent (h, "nobody-job");
  g_assert_cmpuint (hb_dict_uint32 (nobody_job, "owner-uid"), ==, HB_NOBODY_UID);
  g_assert_cmpuint (hb_dict_uint64 (nobody_job, "beats"), ==, 1);
  root_job = hb_harness_get_agent (h, "root-job");
  g_assert_cmpuint (hb_dict_uint64 (root_job, "beats"), ==, 0);

  /* but may not own the name */
  status = hb_harness_run_as_nobody (h, NULL, &err, request_name);
  g_assert_cmpint (status, !=, 0);
  g_assert_nonnull (strstr (err, "org.freedesktop.DBus.Error.AccessDenied"));
  g_assert_false (h->daemon->exited);
}

/* ------------------------------------------------------------------ */
/* Introspection                                                       */

static void
assert_args_equal (GDBusArgInfo **expected,
                   GDBusArgInfo **actual,
                   const char    *what)
{
  guint n_expected = 0, n_actual = 0;

  while (expected && expected[n_expected])
    n_expected++;
  while (actual && actual[n_actual])
    n_actual++;
  if (n_expected != n_actual)
    g_test_message ("%s: %u arguments in the file, %u served", what, n_expected, n_actual);
  g_assert_cmpuint (n_expected, ==, n_actual);
  for (guint i = 0; i < n_expected; i++)
    {
      if (strcmp (expected[i]->signature, actual[i]->signature) != 0)
        g_test_message ("%s: argument %u is %s in the file, %s served", what, i,
                        expected[i]->signature, actual[i]->signature);
      g_assert_cmpstr (expected[i]->signature, ==, actual[i]->signature);
    }
}

static void
test_introspection_matches_xml (Fixture      *f,
                                gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GDBusNodeInfo) served_node = NULL;
  g_autoptr(GDBusNodeInfo) file_node = NULL;
  g_autofree char *path = NULL;
  g_autofree char *file_xml = NULL;
  GDBusInterfaceInfo *served, *file;
  const char *served_xml;
  guint n;

  if (!hb_harness_start_default (h))
    return;

  reply = g_dbus_connection_call_sync (h->client, HB_NAME, HB_PATH,
                                       "org.freedesktop.DBus.Introspectable", "Introspect", NULL,
                                       G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(&s)", &served_xml);
  served_node = g_dbus_node_info_new_for_xml (served_xml, &error);
  g_assert_no_error (error);

  g_assert_nonnull (g_getenv ("HB_SOURCE_ROOT"));
  path = g_build_filename (g_getenv ("HB_SOURCE_ROOT"), "dbus", "org.heartbeat.Monitor1.xml", NULL);
  g_file_get_contents (path, &file_xml, NULL, &error);
  g_assert_no_error (error);
  file_node = g_dbus_node_info_new_for_xml (file_xml, &error);
  g_assert_no_error (error);

  served = g_dbus_node_info_lookup_interface (served_node, HB_IFACE);
  file = g_dbus_node_info_lookup_interface (file_node, HB_IFACE);
  g_assert_nonnull (served);
  g_assert_nonnull (file);
  g_assert_nonnull (g_dbus_node_info_lookup_interface (served_node, "org.freedesktop.DBus.Properties"));

  /* methods */
  for (n = 0; file->methods && file->methods[n]; n++)
    {
      GDBusMethodInfo *m = file->methods[n];
      GDBusMethodInfo *s = g_dbus_interface_info_lookup_method (served, m->name);
      g_autofree char *in = g_strdup_printf ("%s in", m->name);
      g_autofree char *out = g_strdup_printf ("%s out", m->name);

      if (s == NULL)
        g_test_message ("method %s is not served", m->name);
      g_assert_nonnull (s);
      assert_args_equal (m->in_args, s->in_args, in);
      assert_args_equal (m->out_args, s->out_args, out);
    }
  g_assert_cmpuint (n, ==, 14);
  for (guint i = 0; served->methods && served->methods[i]; i++)
    g_assert_nonnull (g_dbus_interface_info_lookup_method (file, served->methods[i]->name));

  /* signals */
  for (n = 0; file->signals && file->signals[n]; n++)
    {
      GDBusSignalInfo *sf = file->signals[n];
      GDBusSignalInfo *ss = g_dbus_interface_info_lookup_signal (served, sf->name);

      if (ss == NULL)
        g_test_message ("signal %s is not served", sf->name);
      g_assert_nonnull (ss);
      assert_args_equal (sf->args, ss->args, sf->name);
    }
  g_assert_cmpuint (n, ==, 6);
  for (guint i = 0; served->signals && served->signals[i]; i++)
    g_assert_nonnull (g_dbus_interface_info_lookup_signal (file, served->signals[i]->name));

  /* properties */
  for (n = 0; file->properties && file->properties[n]; n++)
    {
      GDBusPropertyInfo *pf = file->properties[n];
      GDBusPropertyInfo *ps = g_dbus_interface_info_lookup_property (served, pf->name);

      if (ps == NULL)
        g_test_message ("property %s is not served", pf->name);
      g_assert_nonnull (ps);
      g_assert_cmpstr (pf->signature, ==, ps->signature);
      g_assert_cmpint (pf->flags, ==, ps->flags);
    }
  g_assert_cmpuint (n, ==, 6);
  for (guint i = 0; served->properties && served->properties[i]; i++)
    g_assert_nonnull (g_dbus_interface_info_lookup_property (file, served->properties[i]->name));
}

/* ------------------------------------------------------------------ */

#define ADD(path, func) \
  g_test_add ("/integration/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

/* ------------------------------------------------------------------ */
/* Hostile input and a lost connection                                 */

/* Metadata the D-Bus front would accept but could not send back (a maybe
 * type, nesting deeper than a reply may carry) is refused, and the agents
 * stay listable for everyone. */
static void
test_hostile_metadata_refused (Fixture      *f,
                               gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) agents = NULL;
  g_autoptr(GVariant) kept = NULL;
  GVariant *deep = g_variant_new_int32 (1);

  if (!hb_harness_start_default (h))
    return;

  /* (D-Bus cannot carry a maybe type at all; HTTP could make one, see
   * test-http.c) */
  register_agent (h, "kept", g_variant_new_parsed ("{'metadata': <{'k': <'v'>}>}"));
  hb_call_error (h, NULL, "Register",
                 g_variant_new_parsed ("('m', {'metadata': <{'h': <uint64 18446744073709551615>}>})"),
                 "InvalidArgument");
  hb_call_error (h, NULL, "Beat",
                 g_variant_new_parsed ("('kept', {'metadata': <{'e': <@a{is} {1: 'x'}>}>})"), "InvalidArgument");
  for (guint i = 0; i < 10; i++)
    deep = g_variant_new_parsed ("{'k': %v}", g_variant_new_variant (deep));
  hb_call_error (h, NULL, "Register",
                 g_variant_new_parsed ("('deep', {'metadata': <%@a{sv}>})", deep), "InvalidArgument");

  reply = hb_call_ok (h, NULL, "ListAgents", NULL, "(aa{sv})");
  agents = g_variant_get_child_value (reply, 0);
  g_assert_cmpuint (g_variant_n_children (agents), ==, 1);
  kept = find_agent (agents, "kept");
  g_assert_nonnull (kept);
}

/* Sends @body to the daemon's name as a call of @member, without waiting
 * for an answer (it may never come). */
static void
send_raw_call (HbHarness  *h,
               const char *member,
               GVariant   *body)
{
  g_autoptr(GDBusConnection) connection = hb_harness_connect (h);   /* the bus may drop it */
  g_autoptr(GDBusMessage) message = g_dbus_message_new_method_call (HB_NAME, HB_PATH, HB_IFACE, member);
  g_autoptr(GError) error = NULL;

  g_dbus_message_set_body (message, body);
  g_dbus_connection_send_message (connection, message, G_DBUS_SEND_MESSAGE_FLAGS_NONE, NULL, &error);
  g_assert_no_error (error);
  g_dbus_connection_flush_sync (connection, NULL, NULL);
}

static GVariant *
nested_variants (guint n)
{
  GVariant *value = g_variant_new_int32 (1);

  for (guint i = 0; i < n; i++)
    value = g_variant_new_variant (value);
  return value;
}

/* Calls whose bodies nest variants 31 to 64 deep, to a known and an
 * unknown member, on the system-bus policy: the service answers or
 * refuses each and keeps serving, under the same unique name. */
static void
test_hostile_nested_variants (Fixture      *f,
                              gconstpointer data)
{
  HbHarness *h = f->h;
  g_autofree char *owner_before = NULL;
  g_autofree char *owner_after = NULL;
  g_autoptr(GVariant) status = NULL;
  const guint depths[] = { 31, 32, 33, 63, 64 };

  if (!hb_harness_start_bus (h, HB_BUS_SYSTEM))
    return;
  hb_harness_write_config (h, hb_default_config);
  hb_harness_start_daemon (h, 0);
  register_agent (h, "A", NULL);
  owner_before = hb_harness_name_owner (h, HB_NAME);
  g_assert_nonnull (owner_before);

  for (guint i = 0; i < G_N_ELEMENTS (depths); i++)
    {
      send_raw_call (h, "NoSuchMember", g_variant_new_tuple ((GVariant *[]) { nested_variants (depths[i]) }, 1));
      send_raw_call (h, "Beat", g_variant_new_parsed ("('A', {'metadata': %v})", nested_variants (depths[i])));
      send_raw_call (h, "Register", g_variant_new_parsed ("('B', {'metadata': <{'k': %v}>})",
                                                          nested_variants (depths[i])));
    }

  status = get_status (h);
  g_assert_true (hb_dict_boolean (status, "running"));
  g_assert_false (h->daemon->exited);
  owner_after = hb_harness_name_owner (h, HB_NAME);
  g_assert_cmpstr (owner_before, ==, owner_after);
  g_variant_unref (hb_harness_get_agent (h, "A"));
  hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "B"), "NotFound");
}

typedef struct {
  char *old_owner;
} OwnerWait;

static gboolean
owner_changed (HbHarness *h, gpointer data)
{
  OwnerWait *wait = data;
  g_autofree char *owner = hb_harness_name_owner (h, HB_NAME);

  return owner != NULL && g_strcmp0 (owner, wait->old_owner) != 0;
}

/* The bus drops heartbeatd's connection while the bus itself stays (here:
 * a reply larger than this bus's max_message_size, which dbus-daemon
 * answers by disconnecting the sender; GDBus does the same on a message
 * it cannot decode). heartbeatd connects again, owns its name again and
 * keeps every agent. */
static void
test_reconnects_when_the_bus_drops_it (Fixture      *f,
                                       gconstpointer data)
{
  HbHarness *h = f->h;
  g_autofree char *padding = g_strnfill (12000, 'p');
  g_autoptr(GVariant) agent = NULL;

  h->bus_extra_config = g_strdup ("  <limit name=\"max_message_size\">32768</limit>\n");
  if (!hb_harness_start_default (h))
    return;

  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *id = g_strdup_printf ("big-%u", i);
      register_agent (h, id, g_variant_new_parsed ("{'metadata': <{'padding': <%s>}>}", padding));
    }
  /* three times: each new connection serves as the first did (the
   * second once found the method table of the first's freed interface) */
  for (guint round = 0; round < 3; round++)
    {
      g_autoptr(GVariant) reply = NULL;
      g_autoptr(GError) error = NULL;
      OwnerWait wait = { 0 };

      wait.old_owner = hb_harness_name_owner (h, HB_NAME);
      g_assert_nonnull (wait.old_owner);

      /* about 36 KiB of agents: the reply is over the bus's limit */
      reply = hb_harness_call (h, NULL, "ListAgents", NULL, "(aa{sv})", &error);
      g_assert_null (reply);
      g_assert_nonnull (error);
      g_test_message ("ListAgents: %s", error->message);

      hb_harness_wait_until (h, owner_changed, &wait);
      g_assert_false (h->daemon->exited);
      for (guint i = 0; i < 3; i++)
        {
          g_autofree char *id = g_strdup_printf ("big-%u", i);
          g_autoptr(GVariant) one = hb_harness_get_agent (h, id);
          g_autoptr(GVariant) metadata = g_variant_lookup_value (one, "metadata", G_VARIANT_TYPE_VARDICT);
          g_autoptr(GVariant) value = g_variant_lookup_value (metadata, "padding", G_VARIANT_TYPE_STRING);

          g_assert_cmpstr (g_variant_get_string (value, NULL), ==, padding);
        }
      g_free (wait.old_owner);
    }
  register_agent (h, "after", NULL);
  agent = hb_harness_get_agent (h, "after");
}

/* A second heartbeatd on the same state directory refuses to start, and
 * says who holds it, before it touches the bus or the agents. */
static void
test_state_directory_locked (Fixture      *f,
                             gconstpointer data)
{
  HbHarness *h = f->h;
  g_autofree char *pid = NULL;
  g_autofree char *err = NULL;
  g_autofree char *saved = NULL;
  int wait_status = 0;
  const char *argv[] = {
    g_getenv ("HEARTBEATD"), "--session", "--config", NULL, "--state-dir", NULL, "--http-port", "0", NULL,
  };
  const char *envp[] = { "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/bus", NULL };

  if (!hb_harness_start_default (h))
    return;
  register_agent (h, "mine", NULL);

  argv[3] = h->config_path;
  argv[5] = h->state_dir;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, (char **) envp, G_SPAWN_STDOUT_TO_DEV_NULL,
                               NULL, NULL, NULL, &err, &wait_status, NULL));
  g_test_message ("second heartbeatd: %s", err);
  g_assert_true (WIFEXITED (wait_status));
  g_assert_cmpint (WEXITSTATUS (wait_status), ==, 1);
  pid = g_strdup_printf ("(pid %d)", h->daemon->pid);
  g_assert_nonnull (strstr (err, "Another heartbeatd"));
  g_assert_nonnull (strstr (err, pid));

  /* and the first one's agents are untouched */
  saved = hb_harness_saved_agents (h);
  g_assert_cmpstr (saved, ==, "mine");
  g_variant_unref (hb_harness_get_agent (h, "mine"));
}

/* heartbeatd --may-restart-unit UNIT, which the shipped polkit rule asks
 * before it lets user heartbeat restart a unit: yes only for a unit the
 * configuration names in a restart-unit= alert. */
static void
test_may_restart_unit (Fixture      *f,
                       gconstpointer data)
{
  HbHarness *h = f->h;
  const char *units[] = { "worker.service", "other.service", "worker", "" };
  const int expected[] = { 0, 1, 1, 1 };

  g_free (h->config_path);
  h->config_path = g_build_filename (h->tmpdir, "restart.conf", NULL);
  g_assert_true (g_file_set_contents (h->config_path,
                                      "[alert:restart]\nevents=stale\nagents=w*\nrestart-unit=worker.service\n"
                                      "[alert:hook]\nevents=stale\nwebhook=http://127.0.0.1:9/\n", -1, NULL));
  for (guint i = 0; i < G_N_ELEMENTS (units); i++)
    {
      const char *argv[] = { g_getenv ("HEARTBEATD"), "--config", h->config_path,
                             "--may-restart-unit", units[i], NULL };
      int wait_status = 0;

      g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL,
                                   NULL, NULL, NULL, NULL, &wait_status, NULL));
      g_assert_true (WIFEXITED (wait_status));
      g_assert_cmpint (WEXITSTATUS (wait_status), ==, expected[i]);
    }
}

/* ------------------------------------------------------------------ */
/* Replies the bus carries                                             */

/* A bus that carries at most 64 KiB per message, a daemon told (through
 * the environment variables it reads for tests) to send at most 48 KiB
 * in one reply and 16 KiB in one page, and 40 agents of about 3 KiB each:
 * the whole list (about 130 KiB) is more than the bus carries. */
#define PAGED_BUS_LIMIT   65536
#define PAGED_REPLY_CAP   49152
#define PAGED_PAGE_BUDGET 16384
#define PAGED_AGENTS      40

static const char paged_config[] =
  "[monitor]\n"
  "stale-threshold=5min\n"
  "timeout-threshold=10min\n"
  "\n"
  "[limits]\n"
  "agents-per-uid=100\n";

/* Starts the bus with @bus_limit and the daemon with the reply caps (0:
 * the daemon's default). */
static gboolean
start_with_caps (HbHarness *h,
                 guint      bus_limit,
                 guint      reply_cap,
                 guint      page_budget)
{
  g_autofree char *reply_text = g_strdup_printf ("%u", reply_cap);
  g_autofree char *page_text = g_strdup_printf ("%u", page_budget);

  h->bus_extra_config = g_strdup_printf ("  <limit name=\"max_message_size\">%u</limit>\n", bus_limit);
  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return FALSE;
  hb_harness_write_config (h, paged_config);
  if (reply_cap)
    g_setenv ("HB_DBUS_REPLY_MAX_BYTES", reply_text, TRUE);
  if (page_budget)
    g_setenv ("HB_DBUS_PAGE_MAX_BYTES", page_text, TRUE);
  hb_harness_start_daemon (h, 0);
  g_unsetenv ("HB_DBUS_REPLY_MAX_BYTES");
  g_unsetenv ("HB_DBUS_PAGE_MAX_BYTES");
  return TRUE;
}

/* ListAgentsPage(@options), asserted to succeed; *@size is the size of
 * the reply message as the bus carried it. */
static GVariant *
list_page (HbHarness *h,
           GVariant  *options,
           gsize     *size)
{
  g_autoptr(GDBusMessage) call = g_dbus_message_new_method_call (HB_NAME, HB_PATH, HB_IFACE, "ListAgentsPage");
  g_autoptr(GDBusMessage) reply = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree guchar *blob = NULL;
  GVariant *body;

  g_dbus_message_set_body (call, g_variant_new ("(@a{sv})", options));
  reply = g_dbus_connection_send_message_with_reply_sync (h->client, call, G_DBUS_SEND_MESSAGE_FLAGS_NONE,
                                                          HB_WAIT_MS, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (g_dbus_message_to_gerror (reply, &error));
  body = g_dbus_message_get_body (reply);
  g_assert_true (g_variant_is_of_type (body, G_VARIANT_TYPE ("(aa{sv}s)")));
  blob = g_dbus_message_to_blob (reply, size, G_DBUS_CAPABILITY_FLAGS_NONE, &error);
  g_assert_no_error (error);
  return g_variant_ref (body);
}

/* Reads the sd_notify messages that came (each registration sends a
 * STATUS=): the harness reads them on the main context, which sync calls
 * do not run, and heartbeatd blocks once the socket's queue is full. */
static void
drain_notify (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static char *
paged_id (guint i)
{
  return g_strdup_printf ("paged-%03u", i);
}

static void
register_paged_agents (HbHarness *h,
                       guint      n,
                       gsize      padding_size)
{
  g_autofree char *padding = g_strnfill (padding_size, 'p');

  /* registered out of order: the pages are in id order all the same */
  for (guint k = 0; k < n; k++)
    {
      g_autofree char *id = paged_id ((k * 7) % n);

      register_agent (h, id, g_variant_new_parsed ("{'metadata': <{'padding': <%s>}>}", padding));
      drain_notify ();
    }
}

/* ListAgents would be larger than the bus carries: it fails with
 * LimitsExceeded, and the daemon keeps its connection and its name (a bus
 * drops a peer that sends more than its limit; before ListAgentsPage
 * that happened on every ListAgents). ListAgentsPage lists every agent
 * exactly once, in order, each page under its budget; bad options are
 * refused. */
static void
test_list_agents_larger_than_the_bus (Fixture      *f,
                                      gconstpointer data)
{
  HbHarness *h = f->h;
  g_autofree char *owner = NULL;
  g_autofree char *owner_after = NULL;
  g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *after = g_strdup ("");
  guint pages = 0;

  if (!start_with_caps (h, PAGED_BUS_LIMIT, PAGED_REPLY_CAP, PAGED_PAGE_BUDGET))
    return;
  register_paged_agents (h, PAGED_AGENTS, 3000);
  owner = hb_harness_name_owner (h, HB_NAME);
  g_assert_nonnull (owner);

  hb_call_error (h, NULL, "ListAgents", NULL, "LimitsExceeded");
  /* still connected, still the owner of its name, still answering */
  owner_after = hb_harness_name_owner (h, HB_NAME);
  g_assert_cmpstr (owner_after, ==, owner);
  g_variant_unref (hb_harness_get_agent (h, "paged-000"));
  g_assert_false (h->daemon->exited);
  /* GetStatus lists every id (they fit), and says nothing is left out */
  {
    g_autoptr(GVariant) status = get_status (h);
    g_autoptr(GVariant) ids = hb_dict_value (status, "agents", "as");
    gboolean truncated = FALSE;

    g_assert_cmpuint (g_variant_n_children (ids), ==, PAGED_AGENTS);
    g_assert_false (g_variant_lookup (status, "agents-truncated", "b", &truncated));
  }

  /* every agent once, in order, in pages under the budget */
  do
    {
      g_autoptr(GVariant) page = NULL;
      g_autoptr(GVariant) agents = NULL;
      const char *next = NULL;
      gsize size = 0;

      page = list_page (h, after[0] ? dict1 ("after", g_variant_new_string (after)) : empty_dict (), &size);
      g_variant_get (page, "(@aa{sv}&s)", &agents, &next);
      g_test_message ("page %u: %" G_GSIZE_FORMAT " agents, %" G_GSIZE_FORMAT " bytes, next “%s”",
                      pages, g_variant_n_children (agents), size, next);
      g_assert_cmpuint (size, <=, PAGED_PAGE_BUDGET);
      g_assert_cmpuint (g_variant_n_children (agents), >=, 1);
      for (gsize i = 0; i < g_variant_n_children (agents); i++)
        {
          g_autoptr(GVariant) agent = g_variant_get_child_value (agents, i);
          g_autofree char *expected = paged_id (seen->len);

          assert_agent_shape (agent);
          g_assert_cmpstr (hb_dict_string (agent, "id"), ==, expected);
          g_ptr_array_add (seen, g_strdup (expected));
        }
      if (next[0] != '\0')
        g_assert_cmpstr (next, ==, seen->pdata[seen->len - 1]);
      g_free (after);
      after = g_strdup (next);
      pages++;
    }
  while (after[0] != '\0' && pages <= PAGED_AGENTS);
  g_assert_cmpuint (seen->len, ==, PAGED_AGENTS);
  g_assert_cmpuint (pages, >, 1);

  /* limit, and an `after` that names no agent */
  {
    g_auto(GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
    g_autoptr(GVariant) page = NULL;
    g_autoptr(GVariant) agents = NULL;
    g_autoptr(GVariant) first = NULL;
    const char *next = NULL;
    gsize size = 0;

    g_variant_builder_add (&options, "{sv}", "after", g_variant_new_string ("paged-004a"));
    g_variant_builder_add (&options, "{sv}", "limit", g_variant_new_uint32 (2));
    page = list_page (h, g_variant_builder_end (&options), &size);
    g_variant_get (page, "(@aa{sv}&s)", &agents, &next);
    g_assert_cmpuint (g_variant_n_children (agents), ==, 2);
    first = g_variant_get_child_value (agents, 0);
    g_assert_cmpstr (hb_dict_string (first, "id"), ==, "paged-005");
    g_assert_cmpstr (next, ==, "paged-006");
  }
  /* past the end: an empty page that ends the list */
  {
    g_autoptr(GVariant) page = NULL;
    g_autoptr(GVariant) agents = NULL;
    const char *next = NULL;
    gsize size = 0;

    page = list_page (h, dict1 ("after", g_variant_new_string ("zzz")), &size);
    g_variant_get (page, "(@aa{sv}&s)", &agents, &next);
    g_assert_cmpuint (g_variant_n_children (agents), ==, 0);
    g_assert_cmpstr (next, ==, "");
  }

  /* bad options */
  hb_call_error (h, NULL, "ListAgentsPage", g_variant_new ("(@a{sv})", dict1 ("limit", g_variant_new_uint32 (0))),
                 "InvalidArgument");
  hb_call_error (h, NULL, "ListAgentsPage", g_variant_new ("(@a{sv})", dict1 ("limit", g_variant_new_int32 (5))),
                 "InvalidArgument");
  hb_call_error (h, NULL, "ListAgentsPage", g_variant_new ("(@a{sv})", dict1 ("after", g_variant_new_uint32 (5))),
                 "InvalidArgument");
  hb_call_error (h, NULL, "ListAgentsPage", g_variant_new ("(@a{sv})", dict1 ("after", g_variant_new_string ("bad id!"))),
                 "InvalidArgument");
  hb_call_error (h, NULL, "ListAgentsPage", g_variant_new ("(@a{sv})", dict1 ("offset", g_variant_new_uint32 (5))),
                 "InvalidArgument");

  g_clear_pointer (&owner_after, g_free);
  owner_after = hb_harness_name_owner (h, HB_NAME);
  g_assert_cmpstr (owner_after, ==, owner);
}

/* A page always holds one agent, even one larger than the page budget
 * (the budget is well over the largest agent in production), so the
 * listing always moves forward. */
static void
test_list_agents_page_holds_one_agent (Fixture      *f,
                                       gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) page = NULL;
  g_autoptr(GVariant) agents = NULL;
  const char *next = NULL;
  gsize size = 0;

  /* a 2 KiB budget, agents of 3 KiB: one a page */
  if (!start_with_caps (h, PAGED_BUS_LIMIT, PAGED_REPLY_CAP, 2048))
    return;
  register_paged_agents (h, 3, 3000);
  page = list_page (h, empty_dict (), &size);
  g_variant_get (page, "(@aa{sv}&s)", &agents, &next);
  g_assert_cmpuint (g_variant_n_children (agents), ==, 1);
  g_assert_cmpstr (next, ==, "paged-000");
}

/* GetStatus lists every agent's id: when they would take the reply past
 * the cap it lists the first ones and says so, rather than fail or be
 * dropped by the bus. */
static void
test_get_status_ids_bounded (Fixture      *f,
                             gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) status = NULL;
  g_autoptr(GVariant) ids = NULL;
  g_autofree char *tail = g_strnfill (100, 'x');

  if (!start_with_caps (h, PAGED_BUS_LIMIT, 4096, 0))
    return;
  /* 40 ids of 110 bytes: about 4.6 KiB of ids, over a 4 KiB cap */
  for (guint i = 0; i < PAGED_AGENTS; i++)
    {
      g_autofree char *id = g_strdup_printf ("%03u-%s", i, tail);

      register_agent (h, id, NULL);
      drain_notify ();
    }
  status = get_status (h);
  g_assert_cmpuint (hb_dict_uint32 (status, "agent-count"), ==, PAGED_AGENTS);
  g_assert_true (hb_dict_boolean (status, "agents-truncated"));
  ids = hb_dict_value (status, "agents", "as");
  g_assert_cmpuint (g_variant_n_children (ids), <, PAGED_AGENTS);
  g_assert_cmpuint (g_variant_n_children (ids), >, 0);
  for (gsize i = 0; i < g_variant_n_children (ids); i++)
    {
      g_autofree char *expected = g_strdup_printf ("%03" G_GSIZE_FORMAT "-%s", i, tail);
      const char *id = NULL;

      g_variant_get_child (ids, i, "&s", &id);
      g_assert_cmpstr (id, ==, expected);
    }
  hb_call_error (h, NULL, "ListAgents", NULL, "LimitsExceeded");
}

/* ------------------------------------------------------------------ */
/* Runs of a job                                                       */

static GVariant *
get_runs (HbHarness  *h,
          const char *id)
{
  g_autoptr(GVariant) reply = hb_call_ok (h, NULL, "GetRuns", g_variant_new ("(s)", id), "(aa{sv})");
  GVariant *runs = NULL;

  g_variant_get (reply, "(@aa{sv})", &runs);
  return runs;
}

static void
finish_run (HbHarness  *h,
            const char *id,
            GVariant   *end)
{
  g_autoptr(GVariant) reply = hb_call_ok (h, NULL, "FinishRun",
                                          g_variant_new ("(s@a{sv})", id, end ? end : empty_dict ()),
                                          "()");
}

static gint64
run_int64 (GVariant   *run,
           const char *key)
{
  gint64 value = -1;

  g_assert_true (g_variant_lookup (run, key, "x", &value));
  return value;
}

/* StartRun and FinishRun on a declared agent: a run record each, the
 * agent healthy and running, then error (a failure) or healthy and idle
 * (a success), always registered; GetRuns lists them oldest first and
 * the newest is the agent's last-run. */
static void
test_runs_start_finish (Fixture      *f,
                        gconstpointer data)
{
  HbHarness *h = f->h;
  g_autofree char *config = NULL;
  g_autoptr(GVariant) runs = NULL;
  g_autoptr(GVariant) run = NULL;
  g_autoptr(GVariant) agent = NULL;
  g_autoptr(GVariant) last_run = NULL;
  const char *output = NULL;
  gint32 exit_status = -1;
  gint64 before, after;
  guint cursor;

  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return;
  config = g_strconcat (hb_default_config, "\n[agent:nightly]\ntask=nightly backup\n", NULL);
  hb_harness_write_config (h, config);
  hb_harness_start_daemon (h, 0);

  runs = get_runs (h, "nightly");
  g_assert_cmpuint (g_variant_n_children (runs), ==, 0);
  agent = hb_harness_get_agent (h, "nightly");
  last_run = hb_dict_value (agent, "last-run", "a{sv}");
  g_assert_cmpuint (g_variant_n_children (last_run), ==, 0);
  g_assert_cmpstr (hb_dict_string (agent, "reason"), ==, "never beat");
  g_clear_pointer (&agent, g_variant_unref);
  g_clear_pointer (&last_run, g_variant_unref);
  g_clear_pointer (&runs, g_variant_unref);

  /* a run starts: running, the agent healthy and running */
  cursor = hb_harness_signal_cursor (h);
  before = g_get_real_time ();
  call_id (h, "StartRun", "nightly");
  after = g_get_real_time ();
  hb_wait_signal (h, &cursor, "AgentStateChanged", "nightly", "no-heartbeat", "healthy");
  runs = get_runs (h, "nightly");
  g_assert_cmpuint (g_variant_n_children (runs), ==, 1);
  run = g_variant_get_child_value (runs, 0);
  g_assert_cmpstr (hb_dict_string (run, "result"), ==, "running");
  g_assert_cmpint (run_int64 (run, "started-usec"), >=, before - CLOCK_SLACK_USEC);
  g_assert_cmpint (run_int64 (run, "started-usec"), <=, after + CLOCK_SLACK_USEC);
  g_assert_false (g_variant_lookup (run, "ended-usec", "x", NULL));
  agent = hb_harness_get_agent (h, "nightly");
  g_assert_cmpstr (hb_dict_string (agent, "state"), ==, "healthy");
  g_assert_cmpstr (hb_dict_string (agent, "status"), ==, "running");
  g_clear_pointer (&agent, g_variant_unref);
  g_clear_pointer (&run, g_variant_unref);
  g_clear_pointer (&runs, g_variant_unref);

  /* it fails with exit status 3: error, still registered */
  finish_run (h, "nightly", g_variant_new_parsed ("{'success': <false>, 'exit-status': <int32 3>, 'output': <'hi\n'>}"));
  hb_wait_signal (h, &cursor, "AgentStateChanged", "nightly", "healthy", "error");
  runs = get_runs (h, "nightly");
  g_assert_cmpuint (g_variant_n_children (runs), ==, 1);
  run = g_variant_get_child_value (runs, 0);
  g_assert_cmpstr (hb_dict_string (run, "result"), ==, "failure");
  g_assert_true (g_variant_lookup (run, "exit-status", "i", &exit_status));
  g_assert_cmpint (exit_status, ==, 3);
  g_assert_true (g_variant_lookup (run, "output", "&s", &output));
  g_assert_cmpstr (output, ==, "hi\n");
  g_assert_cmpint (run_int64 (run, "ended-usec"), >=, run_int64 (run, "started-usec"));
  g_assert_cmpint (run_int64 (run, "duration-usec"), ==, run_int64 (run, "ended-usec") - run_int64 (run, "started-usec"));
  agent = hb_harness_get_agent (h, "nightly");
  g_assert_cmpstr (hb_dict_string (agent, "state"), ==, "error");
  g_assert_cmpstr (hb_dict_string (agent, "status"), ==, "error");
  g_assert_true (hb_dict_boolean (agent, "declared"));
  g_assert_cmpstr (hb_dict_string (agent, "reason"), ==, "exit status 3: hi");
  last_run = hb_dict_value (agent, "last-run", "a{sv}");
  g_assert_true (g_variant_equal (last_run, run));
  g_clear_pointer (&agent, g_variant_unref);
  g_clear_pointer (&last_run, g_variant_unref);
  g_clear_pointer (&run, g_variant_unref);
  g_clear_pointer (&runs, g_variant_unref);

  /* the next one succeeds (success from exit status 0): healthy and idle */
  call_id (h, "StartRun", "nightly");
  hb_wait_signal (h, &cursor, "AgentStateChanged", "nightly", "error", "healthy");
  finish_run (h, "nightly", dict1 ("exit-status", g_variant_new_int32 (0)));
  runs = get_runs (h, "nightly");
  g_assert_cmpuint (g_variant_n_children (runs), ==, 2);
  run = g_variant_get_child_value (runs, 1);
  g_assert_cmpstr (hb_dict_string (run, "result"), ==, "success");
  g_assert_true (g_variant_lookup (run, "exit-status", "i", &exit_status));
  g_assert_cmpint (exit_status, ==, 0);
  g_assert_false (g_variant_lookup (run, "output", "&s", &output));
  g_clear_pointer (&run, g_variant_unref);
  run = g_variant_get_child_value (runs, 0);
  g_assert_cmpstr (hb_dict_string (run, "result"), ==, "failure");
  agent = hb_harness_get_agent (h, "nightly");
  g_assert_cmpstr (hb_dict_string (agent, "state"), ==, "healthy");
  g_assert_cmpstr (hb_dict_string (agent, "status"), ==, "idle");
  /* runs, no beat: nothing to wait for */
  g_assert_cmpstr (hb_dict_string (agent, "reason"), ==, "");
  g_clear_pointer (&agent, g_variant_unref);
  g_clear_pointer (&run, g_variant_unref);
  g_clear_pointer (&runs, g_variant_unref);

  /* a run known only by its end: a record without a start */
  finish_run (h, "nightly", NULL);
  runs = get_runs (h, "nightly");
  g_assert_cmpuint (g_variant_n_children (runs), ==, 3);
  run = g_variant_get_child_value (runs, 2);
  g_assert_cmpstr (hb_dict_string (run, "result"), ==, "success");
  g_assert_false (g_variant_lookup (run, "started-usec", "x", NULL));
  g_assert_false (g_variant_lookup (run, "exit-status", "i", NULL));
  g_assert_true (g_variant_lookup (run, "ended-usec", "x", NULL));

}

/* Every refusal of GetRuns, StartRun and FinishRun is a named error and
 * changes nothing: an unknown or malformed id, an end dictionary with an
 * unknown key, a key of the wrong type, an exit status out of range,
 * output over 64 KiB, and another uid's agent. */
static void
test_runs_refused (Fixture      *f,
                   gconstpointer data)
{
  HbHarness *h = f->h;
  g_autofree char *config = NULL;
  g_autofree char *too_long = g_strnfill (64 * 1024 + 1, 'x');
  g_autofree char *longest = g_strnfill (64 * 1024, 'y');
  g_autoptr(GVariant) runs = NULL;
  g_autoptr(GVariant) agent = NULL;
  const char *const moving[] = { "started-at-usec", "last-activity-at-usec", "running-usec", "idle-usec",
                                 "uptime-24h", NULL };
  const char *bad_ends[] = {
    "{'success': <'yes'>}",
    "{'exit-status': <uint32 3>}",
    "{'exit-status': <int32 256>}",
    "{'exit-status': <int32 -1>}",
    "{'output': <int32 1>}",
    "{'colour': <'red'>}",
    "{'success': <true>, 'started-usec': <int64 1>}",
  };

  if (!require_nobody_tools () || !hb_harness_start_bus (h, HB_BUS_SESSION))
    return;
  config = g_strconcat (hb_default_config, "\n[agent:nightly]\n", NULL);
  hb_harness_write_config (h, config);
  hb_harness_start_daemon (h, 0);

  /* one failed run to keep */
  call_id (h, "StartRun", "nightly");
  finish_run (h, "nightly", dict1 ("exit-status", g_variant_new_int32 (2)));
  runs = get_runs (h, "nightly");
  agent = hb_harness_get_agent (h, "nightly");
  g_assert_cmpuint (g_variant_n_children (runs), ==, 1);

  hb_call_error (h, NULL, "GetRuns", g_variant_new ("(s)", "ghost"), "NotFound");
  hb_call_error (h, NULL, "GetRuns", g_variant_new ("(s)", "bad id!"), "InvalidArgument");
  hb_call_error (h, NULL, "StartRun", g_variant_new ("(s)", "ghost"), "NotFound");
  hb_call_error (h, NULL, "StartRun", g_variant_new ("(s)", ""), "InvalidArgument");
  hb_call_error (h, NULL, "FinishRun", g_variant_new ("(s@a{sv})", "ghost", empty_dict ()), "NotFound");
  hb_call_error (h, NULL, "FinishRun", g_variant_new ("(s@a{sv})", "bad id!", empty_dict ()), "InvalidArgument");
  for (gsize i = 0; i < G_N_ELEMENTS (bad_ends); i++)
    hb_call_error (h, NULL, "FinishRun",
                   g_variant_new ("(s@a{sv})", "nightly", g_variant_new_parsed (bad_ends[i])),
                   "InvalidArgument");
  hb_call_error (h, NULL, "FinishRun",
                 g_variant_new ("(s@a{sv})", "nightly", dict1 ("output", g_variant_new_string (too_long))),
                 "InvalidArgument");
  /* the wrong signature never reaches the daemon's code */
  hb_call_error (h, NULL, "FinishRun", g_variant_new ("(s)", "nightly"),
                 "org.freedesktop.DBus.Error.InvalidArgs");

  /* uid 65534 may read the runs of root's agent, not start or finish them */
  nobody_ok (h, "GetRuns", "nightly", NULL);
  nobody_error (h, "StartRun", "nightly", NULL, "AccessDenied");
  nobody_error (h, "FinishRun", "nightly", "{'exit-status': <0>}", "AccessDenied");
  nobody_error (h, "StartRun", "ghost", NULL, "NotFound");

  {
    g_autoptr(GVariant) runs_after = get_runs (h, "nightly");
    g_autoptr(GVariant) agent_after = hb_harness_get_agent (h, "nightly");

    g_assert_true (g_variant_equal (runs_after, runs));
    hb_assert_dict_equal (agent, agent_after, moving);
    g_assert_cmpstr (hb_dict_string (agent_after, "state"), ==, "error");
  }

  /* uid 65534 runs its own agent */
  nobody_ok (h, "Register", "own", "{}");
  nobody_ok (h, "StartRun", "own", NULL);
  nobody_ok (h, "FinishRun", "own", "{'exit-status': <0>}");
  {
    g_autoptr(GVariant) own = get_runs (h, "own");
    g_autoptr(GVariant) run = g_variant_get_child_value (own, 0);

    g_assert_cmpuint (g_variant_n_children (own), ==, 1);
    g_assert_cmpstr (hb_dict_string (run, "result"), ==, "success");
  }

  /* 64 KiB of output is taken; the record keeps its last 4096 bytes */
  finish_run (h, "nightly", dict1 ("output", g_variant_new_string (longest)));
  {
    g_autoptr(GVariant) runs_after = get_runs (h, "nightly");
    g_autoptr(GVariant) run = g_variant_get_child_value (runs_after, 1);
    const char *output = NULL;

    g_assert_cmpuint (g_variant_n_children (runs_after), ==, 2);
    g_assert_true (g_variant_lookup (run, "output", "&s", &output));
    g_assert_cmpuint (strlen (output), ==, 4096);
    g_assert_cmpint (output[0], ==, 'y');
  }
}

static void
on_reply_counted (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  guint *replies = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);

  g_assert_no_error (error);
  (*replies)++;
}

static gboolean
two_replies (HbHarness *h,
             gpointer   data)
{
  return *(guint *) data == 2;
}

/* StartRun changes state: a Beat a client sends right after it (which
 * the fast Beat path could answer at once) takes effect after it. Here
 * the Beat's status must win over StartRun's "running". */
static void
test_start_run_then_beat_in_order (Fixture      *f,
                                   gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GDBusConnection) connection = NULL;

  if (!hb_harness_start_default (h))
    return;
  connection = hb_harness_connect (h);
  /* the caller's uid is known, and its agent: a Beat may take the fast path */
  {
    g_autoptr(GVariant) reply = hb_call_ok (h, connection, "Register",
                                            g_variant_new ("(s@a{sv})", "ordered", empty_dict ()), "()");
  }
  for (guint round = 0; round < 20; round++)
    {
      g_autoptr(GVariant) agent = NULL;
      guint replies = 0;

      g_dbus_connection_call (connection, HB_NAME, HB_PATH, HB_IFACE, "StartRun",
                              g_variant_new ("(s)", "ordered"), G_VARIANT_TYPE ("()"),
                              G_DBUS_CALL_FLAGS_NO_AUTO_START, HB_WAIT_MS, NULL, on_reply_counted, &replies);
      g_dbus_connection_call (connection, HB_NAME, HB_PATH, HB_IFACE, "Beat",
                              g_variant_new ("(s@a{sv})", "ordered", dict1 ("status", g_variant_new_string ("working"))),
                              G_VARIANT_TYPE ("()"), G_DBUS_CALL_FLAGS_NO_AUTO_START, HB_WAIT_MS, NULL,
                              on_reply_counted, &replies);
      hb_harness_wait_until (h, two_replies, &replies);
      agent = hb_harness_get_agent (h, "ordered");
      g_assert_cmpstr (hb_dict_string (agent, "status"), ==, "working");
    }
}

/* ------------------------------------------------------------------ */
/* Pause, Resume, tags and the record's reason keys                    */

static void
assert_oncall_keys (GVariant *agent)
{
  static const struct { const char *key, *type; } keys[] = {
    { "reason", "s" }, { "severity", "u" }, { "state-since-usec", "t" }, { "tags", "as" },
    { "paused-at-usec", "t" }, { "paused-reason", "s" }, { "paused-by-uid", "u" }, { "uptime-24h", "d" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      g_autoptr(GVariant) value = hb_dict_value (agent, keys[i].key, keys[i].type);
    }
}

static double
dict_double (GVariant *dict, const char *key)
{
  g_autoptr(GVariant) value = hb_dict_value (dict, key, "d");

  return g_variant_get_double (value);
}

static void
pause_agent (HbHarness  *h,
             const char *id,
             GVariant   *options)
{
  g_autoptr(GVariant) reply = hb_call_ok (h, NULL, "Pause",
                                          g_variant_new ("(s@a{sv})", id, options ? options : empty_dict ()),
                                          "()");
}

static void
test_pause_resume (Fixture      *f,
                   gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) fresh = NULL, paused = NULL, again = NULL, resumed = NULL, failed = NULL;
  g_autoptr(GVariant) tags = NULL;
  g_autofree char *long_reason = g_strnfill (257, 'x');
  const char *const *strv;
  guint cursor;
  gint64 before, after;

  if (!hb_harness_start_default (h))
    return;

  /* tags: sorted, without duplicates; a bad one refused, nothing kept */
  register_agent (h, "maint", g_variant_new_parsed ("{'tags': <['db', 'backup', 'db']>}"));
  fresh = hb_harness_get_agent (h, "maint");
  assert_agent_shape (fresh);
  assert_oncall_keys (fresh);
  tags = hb_dict_value (fresh, "tags", "as");
  strv = g_variant_get_strv (tags, NULL);
  g_assert_cmpuint (g_strv_length ((GStrv) strv), ==, 2);
  g_assert_cmpstr (strv[0], ==, "backup");
  g_assert_cmpstr (strv[1], ==, "db");
  g_free ((gpointer) strv);
  hb_call_error (h, NULL, "Register", g_variant_new_parsed ("('badtags', {'tags': <['ok', 'not ok']>})"),
                 "InvalidArgument");
  hb_call_error (h, NULL, "Register", g_variant_new_parsed ("('badtags', {'tags': <'db'>})"), "InvalidArgument");
  hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "badtags"), "NotFound");

  /* registered, never beaten: healthy, and the reason says what it waits for */
  g_assert_cmpstr (hb_dict_string (fresh, "state"), ==, "healthy");
  g_assert_cmpuint (hb_dict_uint32 (fresh, "severity"), ==, 0);
  g_assert_cmpstr (hb_dict_string (fresh, "reason"), ==, "waiting for its first beat");
  g_assert_cmpuint (hb_dict_uint64 (fresh, "paused-at-usec"), ==, 0);
  g_assert_cmpstr (hb_dict_string (fresh, "paused-reason"), ==, "");
  g_assert_cmpuint (hb_dict_uint64 (fresh, "state-since-usec"), >, 0);
  g_assert_cmpfloat (dict_double (fresh, "uptime-24h"), >=, -1.0);
  g_assert_cmpfloat (dict_double (fresh, "uptime-24h"), <=, 1.0);
  beat_agent (h, "maint", NULL);
  {
    g_autoptr(GVariant) beaten = hb_harness_get_agent (h, "maint");

    g_assert_cmpstr (hb_dict_string (beaten, "reason"), ==, "");
  }

  /* paused: the state, its reason, when and by whom */
  cursor = hb_harness_signal_cursor (h);
  before = g_get_real_time ();
  pause_agent (h, "maint", g_variant_new_parsed ("{'reason': <'db migration'>}"));
  after = g_get_real_time ();
  g_assert_nonnull (hb_wait_signal (h, &cursor, "AgentStateChanged", "maint", "healthy", "paused"));
  paused = hb_harness_get_agent (h, "maint");
  g_assert_cmpstr (hb_dict_string (paused, "state"), ==, "paused");
  g_assert_cmpuint (hb_dict_uint32 (paused, "severity"), ==, 1);
  g_assert_cmpstr (hb_dict_string (paused, "reason"), ==, "db migration");
  g_assert_cmpstr (hb_dict_string (paused, "paused-reason"), ==, "db migration");
  g_assert_cmpuint (hb_dict_uint32 (paused, "paused-by-uid"), ==, 0);
  g_assert_cmpint ((gint64) hb_dict_uint64 (paused, "paused-at-usec"), >=, before - CLOCK_SLACK_USEC);
  g_assert_cmpint ((gint64) hb_dict_uint64 (paused, "paused-at-usec"), <=, after + CLOCK_SLACK_USEC);
  g_assert_cmpint ((gint64) hb_dict_uint64 (paused, "state-since-usec"), >=, before - CLOCK_SLACK_USEC);

  /* bad options change nothing */
  hb_call_error (h, NULL, "Pause", g_variant_new_parsed ("('maint', {'why': <'x'>})"), "InvalidArgument");
  hb_call_error (h, NULL, "Pause", g_variant_new_parsed ("('maint', {'reason': <42>})"), "InvalidArgument");
  hb_call_error (h, NULL, "Pause", g_variant_new_parsed ("('maint', {'reason': <'two\\nlines'>})"), "InvalidArgument");
  hb_call_error (h, NULL, "Pause", g_variant_new ("(s@a{sv})", "maint", dict1 ("reason", g_variant_new_string (long_reason))),
                 "InvalidArgument");
  hb_call_error (h, NULL, "Pause", g_variant_new ("(s@a{sv})", "nobody-here", empty_dict ()), "NotFound");
  hb_call_error (h, NULL, "Resume", g_variant_new ("(s)", "nobody-here"), "NotFound");
  hb_call_error (h, NULL, "Pause", g_variant_new ("(s@a{sv})", "bad id", empty_dict ()), "InvalidArgument");

  /* paused again: a new reason, the same time; without one: "paused" */
  pause_agent (h, "maint", g_variant_new_parsed ("{'reason': <'still migrating'>}"));
  again = hb_harness_get_agent (h, "maint");
  g_assert_cmpstr (hb_dict_string (again, "reason"), ==, "still migrating");
  g_assert_cmpuint (hb_dict_uint64 (again, "paused-at-usec"), ==, hb_dict_uint64 (paused, "paused-at-usec"));
  pause_agent (h, "maint", NULL);
  {
    g_autoptr(GVariant) bare = hb_harness_get_agent (h, "maint");

    g_assert_cmpstr (hb_dict_string (bare, "reason"), ==, "paused");
    g_assert_cmpstr (hb_dict_string (bare, "paused-reason"), ==, "");
  }

  /* resumed: judged afresh */
  call_id (h, "Resume", "maint");
  g_assert_nonnull (hb_wait_signal (h, &cursor, "AgentStateChanged", "maint", "paused", "healthy"));
  resumed = hb_harness_get_agent (h, "maint");
  g_assert_cmpstr (hb_dict_string (resumed, "state"), ==, "healthy");
  g_assert_cmpuint (hb_dict_uint64 (resumed, "paused-at-usec"), ==, 0);
  g_assert_cmpuint (hb_dict_uint32 (resumed, "severity"), ==, 0);
  call_id (h, "Resume", "maint");     /* not paused: nothing changes */

  /* an error says why: its metadata's reason */
  beat_agent (h, "maint", g_variant_new_parsed ("{'status': <'error'>, 'metadata': <{'reason': <'disk full'>}>}"));
  failed = hb_harness_get_agent (h, "maint");
  g_assert_cmpstr (hb_dict_string (failed, "state"), ==, "error");
  g_assert_cmpuint (hb_dict_uint32 (failed, "severity"), ==, 4);
  g_assert_cmpstr (hb_dict_string (failed, "reason"), ==, "disk full");
}

/* Pause and Resume of someone else's agent: the owner, root or polkit */
static void
test_pause_access_denied (Fixture      *f,
                          gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) root_job = NULL, nobody_job = NULL, by_root = NULL;

  if (!require_nobody_tools () || !hb_harness_start_default (h))
    return;

  register_agent (h, "root-job", NULL);
  nobody_error (h, "Pause", "root-job", "{}", "AccessDenied");
  nobody_error (h, "Pause", "root-job", "{'reason': <'mine now'>}", "AccessDenied");
  root_job = hb_harness_get_agent (h, "root-job");
  g_assert_cmpstr (hb_dict_string (root_job, "state"), ==, "healthy");
  g_assert_cmpuint (hb_dict_uint64 (root_job, "paused-at-usec"), ==, 0);
  pause_agent (h, "root-job", NULL);
  nobody_error (h, "Resume", "root-job", NULL, "AccessDenied");
  g_clear_pointer (&root_job, g_variant_unref);
  root_job = hb_harness_get_agent (h, "root-job");
  g_assert_cmpstr (hb_dict_string (root_job, "state"), ==, "paused");

  /* its own agent; and root on anyone's */
  nobody_ok (h, "Register", "nobody-job", "{}");
  nobody_ok (h, "Pause", "nobody-job", "{'reason': <'deploy'>}");
  nobody_job = hb_harness_get_agent (h, "nobody-job");
  g_assert_cmpstr (hb_dict_string (nobody_job, "state"), ==, "paused");
  g_assert_cmpuint (hb_dict_uint32 (nobody_job, "paused-by-uid"), ==, HB_NOBODY_UID);
  nobody_ok (h, "Resume", "nobody-job", NULL);
  pause_agent (h, "nobody-job", NULL);
  by_root = hb_harness_get_agent (h, "nobody-job");
  g_assert_cmpuint (hb_dict_uint32 (by_root, "paused-by-uid"), ==, 0);
  g_assert_cmpuint (hb_dict_uint32 (by_root, "owner-uid"), ==, HB_NOBODY_UID);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  ADD ("methods/register-and-get-agent", test_register_and_get_agent);
  ADD ("methods/beat-mark-idle-unregister", test_beat_mark_idle_unregister);
  ADD ("methods/list-agents-and-get-status", test_list_agents_and_get_status);
  ADD ("methods/declared-agent-from-config", test_declared_agent_from_config);
  /* run as part of the meson tests of the same name (-p takes a prefix) */
  ADD ("methods/declared-agent-from-config/runs", test_runs_start_finish);
  ADD ("errors/invalid-argument/runs-refused", test_runs_refused);
  ADD ("methods/beat-mark-idle-unregister/start-run-then-beat-in-order", test_start_run_then_beat_in_order);
  ADD ("errors/not-found", test_error_not_found);
  ADD ("errors/invalid-argument", test_error_invalid_argument);
  ADD ("errors/exists-across-uids", test_error_exists_across_uids);
  ADD ("errors/access-denied-for-other-uid", test_error_access_denied);
  ADD ("errors/quota-exceeded-per-uid", test_error_quota_exceeded);
  ADD ("methods/pause-resume", test_pause_resume);
  ADD ("errors/pause-access-denied-for-other-uid", test_pause_access_denied);
  ADD ("properties/match-config", test_properties_match_config);
  ADD ("properties/agent-count-announced", test_properties_agent_count_announced);
  ADD ("deadlines/stale-on-time", test_stale_on_time);
  ADD ("deadlines/recovered-after-beat", test_recovered_after_beat);
  ADD ("deadlines/timeout-on-time-and-removed", test_timeout_on_time);
  ADD ("liveness/bind-to-caller-gone-on-disconnect", test_bind_to_caller);
  ADD ("liveness/pid-gone-on-exit", test_pid_gone_on_exit);
  ADD ("liveness/pid-must-exist", test_pid_must_exist);
  ADD ("reload/sighup-applies-new-thresholds", test_sighup_applies_new_thresholds);
  ADD ("reload/sighup-bad-config-keeps-old", test_sighup_bad_config_keeps_old);
  ADD ("restart/kill9-keeps-registrations", test_kill9_keeps_registrations);
  ADD ("restart/overdue-agent-stale-after-restart", test_overdue_agent_stale_after_restart);
  ADD ("restart/no-false-stale-after-kill9", test_no_false_stale_after_kill9);
  ADD ("notify/ready-after-name-owned", test_ready_after_name_owned);
  ADD ("notify/status-counts-agents", test_status_counts_agents);
  ADD ("notify/watchdog-cadence", test_watchdog_cadence);
  ADD ("notify/never-blocks", test_notify_never_blocks);
  ADD ("notify/sigterm-stopping-exit-0", test_sigterm_stopping_exit_0);
  ADD ("lifecycle/exit-1-when-bus-goes-away", test_exit_1_when_bus_goes_away);
  ADD ("lifecycle/second-instance-exits-1", test_second_instance_exits_1);
  ADD ("lifecycle/reconnects-when-the-bus-drops-it", test_reconnects_when_the_bus_drops_it);
  ADD ("lifecycle/state-directory-locked", test_state_directory_locked);
  ADD ("alerts/may-restart-unit", test_may_restart_unit);
  ADD ("hostile/metadata-refused", test_hostile_metadata_refused);
  ADD ("hostile/nested-variants-on-system-policy", test_hostile_nested_variants);
  ADD ("polkit/manage-action-lets-other-uid-beat", test_polkit_manage_action);
  ADD ("system-bus/installed-policy", test_system_bus_policy);
  ADD ("introspection/matches-interface-xml", test_introspection_matches_xml);
  ADD ("limits/list-agents-larger-than-the-bus", test_list_agents_larger_than_the_bus);
  ADD ("limits/list-agents-page-holds-one-agent", test_list_agents_page_holds_one_agent);
  ADD ("limits/get-status-ids-bounded", test_get_status_ids_bounded);

  return g_test_run ();
}
