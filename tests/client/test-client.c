/* test-client.c: libheartbeat-1 (HeartbeatClient, HeartbeatAgentInfo,
 * HeartbeatKeepAlive) against the built heartbeatd on a private bus
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <heartbeat.h>

#include <math.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client-test-config.h"
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

static gboolean
start (Fixture *f)
{
  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return FALSE;
  hb_harness_write_config (f->h, client_test_config);
  hb_harness_start_daemon (f->h, 0);
  return TRUE;
}

/* ---- waiting without sleeping ---- */

static gboolean
on_timeout (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static void
on_result (GObject      *source,
           GAsyncResult *result,
           gpointer      data)
{
  *(GAsyncResult **) data = g_object_ref (result);
  g_main_context_wakeup (NULL);
}

static GAsyncResult *
wait_result (GAsyncResult **slot)
{
  gboolean timed_out = FALSE;
  guint id = g_timeout_add (HB_WAIT_MS, on_timeout, &timed_out);

  while (*slot == NULL && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (id);
  g_assert_nonnull (*slot);
  return *slot;
}

static HeartbeatClient *
connect_client (Fixture *f)
{
  g_autoptr(GDBusConnection) connection = hb_harness_connect (f->h);
  g_autoptr(GError) error = NULL;
  HeartbeatClient *client = heartbeat_client_new_for_connection_sync (connection, NULL, &error);

  g_assert_no_error (error);
  g_assert_true (heartbeat_client_get_daemon_running (client));
  return client;
}

/* ---- recording the client's signals ---- */

typedef struct {
  GPtrArray *events;   /* "signal id arg…" strings */
  guint      vanished;
  guint      appeared;
} Recorder;

static void
record (Recorder *r, char *event)
{
  g_test_message ("signal: %s", event);
  g_ptr_array_add (r->events, event);
}

static void
on_registered (HeartbeatClient *c, const char *id, const char *task, Recorder *r)
{
  record (r, g_strdup_printf ("registered %s %s", id, task));
}

static void
on_unregistered (HeartbeatClient *c, const char *id, const char *reason, Recorder *r)
{
  record (r, g_strdup_printf ("unregistered %s %s", id, reason));
}

static void
on_stale (HeartbeatClient *c, const char *id, gint64 idle, HeartbeatAgentInfo *info, Recorder *r)
{
  g_assert_cmpint (idle, >, 0);
  g_assert_cmpstr (heartbeat_agent_info_get_id (info), ==, id);
  record (r, g_strdup_printf ("stale %s %s", id, heartbeat_agent_info_get_state (info)));
}

static void
on_timed_out (HeartbeatClient *c, const char *id, gint64 running, HeartbeatAgentInfo *info, Recorder *r)
{
  g_assert_cmpint (running, >, 0);
  record (r, g_strdup_printf ("timed-out %s %s", id, heartbeat_agent_info_get_id (info)));
}

static void
on_recovered (HeartbeatClient *c, const char *id, Recorder *r)
{
  record (r, g_strdup_printf ("recovered %s", id));
}

static void
on_state_changed (HeartbeatClient *c, const char *id, const char *from, const char *to, Recorder *r)
{
  record (r, g_strdup_printf ("state %s %s %s", id, from, to));
}

static void
on_vanished (HeartbeatClient *c, Recorder *r)
{
  r->vanished++;
  record (r, g_strdup ("daemon-vanished"));
}

static void
on_appeared (HeartbeatClient *c, Recorder *r)
{
  r->appeared++;
  record (r, g_strdup ("daemon-appeared"));
}

static void
recorder_init (Recorder *r, HeartbeatClient *client)
{
  r->events = g_ptr_array_new_with_free_func (g_free);
  r->vanished = r->appeared = 0;
  g_signal_connect (client, "agent-registered", G_CALLBACK (on_registered), r);
  g_signal_connect (client, "agent-unregistered", G_CALLBACK (on_unregistered), r);
  g_signal_connect (client, "agent-stale", G_CALLBACK (on_stale), r);
  g_signal_connect (client, "agent-timed-out", G_CALLBACK (on_timed_out), r);
  g_signal_connect (client, "agent-recovered", G_CALLBACK (on_recovered), r);
  g_signal_connect (client, "agent-state-changed", G_CALLBACK (on_state_changed), r);
  g_signal_connect (client, "daemon-vanished", G_CALLBACK (on_vanished), r);
  g_signal_connect (client, "daemon-appeared", G_CALLBACK (on_appeared), r);
}

static gboolean
recorder_has (Recorder *r, const char *event)
{
  for (guint i = 0; i < r->events->len; i++)
    if (g_strcmp0 (r->events->pdata[i], event) == 0)
      return TRUE;
  return FALSE;
}

static void
wait_event (Recorder *r, const char *event)
{
  gboolean timed_out = FALSE;
  guint id = g_timeout_add (HB_WAIT_MS, on_timeout, &timed_out);

  while (!recorder_has (r, event) && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (id);
  if (!recorder_has (r, event))
    g_error ("no signal \"%s\" within %u ms", event, HB_WAIT_MS);
}

static void
kill_and_restart (Fixture *f)
{
  int status;

  hb_harness_signal_daemon (f->h, SIGKILL);
  status = hb_harness_wait_exit (f->h, f->h->daemon, HB_WAIT_MS);
  g_assert_true (WIFSIGNALED (status));
  hb_harness_start_daemon (f->h, 0);
}

/* ---- the tests ---- */

/* Every call, async: connect, register with every option, beat with every
 * detail, mark idle, get, list, status, unregister; errors mapped. */
static void
test_async_calls (Fixture *f, gconstpointer data)
{
  g_autoptr(GDBusConnection) connection = NULL;
  g_autoptr(HeartbeatClient) client = NULL;
  g_autoptr(HeartbeatAgentInfo) info = NULL;
  g_autoptr(GPtrArray) infos = NULL;
  g_autoptr(GVariant) status = NULL;
  g_autoptr(GVariant) metadata = NULL;
  GVariant *options;   /* floating: the call consumes it */
  g_autoptr(GError) error = NULL;
  GAsyncResult *result = NULL;
  double progress = 0;
  const char *host = NULL;
  guint32 count = 0;
  gboolean found = FALSE;

  if (!start (f))
    return;
  connection = hb_harness_connect (f->h);

  heartbeat_client_new_for_connection (connection, NULL, on_result, &result);
  client = heartbeat_client_new_for_connection_finish (wait_result (&result), &error);
  g_clear_object (&result);
  g_assert_no_error (error);
  g_assert_true (heartbeat_client_get_daemon_running (client));
  g_assert_true (heartbeat_client_is_connected (client));
  g_assert_true (heartbeat_client_get_connection (client) == connection);

  options = heartbeat_register_options_new ("backup /srv", 4000000, 900000000, (guint32) getpid (), TRUE,
                                            g_variant_new_parsed ("{'host': <'db1'>}"));
  heartbeat_client_register_async (client, "c-async", options, NULL, on_result, &result);
  g_assert_true (heartbeat_client_register_finish (client, wait_result (&result), &error));
  g_clear_object (&result);
  g_assert_no_error (error);

  heartbeat_client_get_agent_info_async (client, "c-async", NULL, on_result, &result);
  info = heartbeat_client_get_agent_info_finish (client, wait_result (&result), &error);
  g_clear_object (&result);
  g_assert_no_error (error);
  g_assert_cmpstr (heartbeat_agent_info_get_id (info), ==, "c-async");
  g_assert_cmpstr (heartbeat_agent_info_get_task_id (info), ==, "backup /srv");
  g_assert_cmpstr (heartbeat_agent_info_get_state (info), ==, "healthy");
  g_assert_cmpstr (heartbeat_agent_info_get_status (info), ==, "running");
  g_assert_cmpuint (heartbeat_agent_info_get_owner_uid (info), ==, getuid ());
  g_assert_cmpuint (heartbeat_agent_info_get_pid (info), ==, (guint) getpid ());
  g_assert_cmpuint (heartbeat_agent_info_get_stale_after (info), ==, 4000000);
  g_assert_cmpuint (heartbeat_agent_info_get_timeout_after (info), ==, 900000000);
  g_assert_cmpuint (heartbeat_agent_info_get_beats (info), ==, 0);
  g_assert_cmpuint (heartbeat_agent_info_get_started_at (info), >, 0);
  g_assert_cmpuint (heartbeat_agent_info_get_last_activity_at (info), >=,
                    heartbeat_agent_info_get_started_at (info));
  g_assert_cmpstr (heartbeat_agent_info_get_bound_to (info), ==,
                   g_dbus_connection_get_unique_name (connection));
  g_assert_false (heartbeat_agent_info_get_declared (info));
  metadata = heartbeat_agent_info_get_metadata (info);
  g_assert_true (g_variant_lookup (metadata, "host", "&s", &host));
  g_assert_cmpstr (host, ==, "db1");
  {
    /* the same through GObject properties */
    g_autofree char *task = NULL;
    guint64 stale = 0;

    g_object_get (info, "task-id", &task, "stale-after", &stale, NULL);
    g_assert_cmpstr (task, ==, "backup /srv");
    g_assert_cmpuint (stale, ==, 4000000);
  }
  g_clear_object (&info);
  g_clear_pointer (&metadata, g_variant_unref);

  heartbeat_client_beat_async (client, "c-async",
                               heartbeat_beat_details_new ("copying", 0.5,
                                                           g_variant_new_parsed ("{'files': <int32 7>}")),
                               NULL, on_result, &result);
  g_assert_true (heartbeat_client_beat_finish (client, wait_result (&result), &error));
  g_clear_object (&result);
  g_assert_no_error (error);
  info = heartbeat_client_get_agent_info (client, "c-async", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (heartbeat_agent_info_get_beats (info), ==, 1);
  g_assert_cmpstr (heartbeat_agent_info_get_status (info), ==, "copying");
  metadata = heartbeat_agent_info_get_metadata (info);
  g_assert_true (g_variant_lookup (metadata, "progress", "d", &progress));
  g_assert_cmpfloat (progress, ==, 0.5);
  g_clear_object (&info);

  heartbeat_client_mark_idle_async (client, "c-async", NULL, on_result, &result);
  g_assert_true (heartbeat_client_mark_idle_finish (client, wait_result (&result), &error));
  g_clear_object (&result);
  g_assert_no_error (error);

  heartbeat_client_list_agent_infos_async (client, NULL, on_result, &result);
  infos = heartbeat_client_list_agent_infos_finish (client, wait_result (&result), &error);
  g_clear_object (&result);
  g_assert_no_error (error);
  for (guint i = 0; i < infos->len; i++)
    if (g_strcmp0 (heartbeat_agent_info_get_id (infos->pdata[i]), "c-async") == 0)
      {
        found = TRUE;
        g_assert_cmpstr (heartbeat_agent_info_get_status (infos->pdata[i]), ==, "idle");
      }
  g_assert_true (found);

  heartbeat_client_get_status_async (client, NULL, on_result, &result);
  status = heartbeat_client_get_status_finish (client, wait_result (&result), &error);
  g_clear_object (&result);
  g_assert_no_error (error);
  g_assert_true (g_variant_lookup (status, "agent-count", "u", &count));
  g_assert_cmpuint (count, ==, infos->len);

  heartbeat_client_unregister_async (client, "c-async", NULL, on_result, &result);
  g_assert_true (heartbeat_client_unregister_finish (client, wait_result (&result), &error));
  g_clear_object (&result);
  g_assert_no_error (error);

  heartbeat_client_get_agent_info_async (client, "c-async", NULL, on_result, &result);
  info = heartbeat_client_get_agent_info_finish (client, wait_result (&result), &error);
  g_clear_object (&result);
  g_assert_null (info);
  g_assert_error (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NOT_FOUND);
  g_assert_false (g_dbus_error_is_remote_error (error));
}

/* The blocking variants, the convenience ones, and the errors. */
static void
test_sync_calls (Fixture *f, gconstpointer data)
{
  g_autoptr(HeartbeatClient) client = NULL;
  g_autoptr(HeartbeatAgentInfo) info = NULL;
  g_autoptr(GPtrArray) infos = NULL;
  g_autoptr(GVariant) agent = NULL;
  g_autoptr(GVariant) agents = NULL;
  g_autoptr(GVariant) status = NULL;
  g_autoptr(GError) error = NULL;

  if (!start (f))
    return;
  client = connect_client (f);

  g_assert_true (heartbeat_client_register_full (client, "c-sync", "task", 0, 0, 0, FALSE, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (heartbeat_client_register (client, "c-sync-2", NULL, &error));
  g_assert_no_error (error);
  g_assert_true (heartbeat_client_beat_full (client, "c-sync", "error", NAN, NULL, NULL, &error));
  g_assert_no_error (error);
  info = heartbeat_client_get_agent_info (client, "c-sync", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (heartbeat_agent_info_get_state (info), ==, "error");
  g_assert_cmpuint (heartbeat_agent_info_get_stale_after (info), ==, 5000000);   /* the default */
  g_assert_true (heartbeat_client_beat (client, "c-sync", NULL, &error));
  g_assert_no_error (error);
  g_assert_true (heartbeat_client_mark_idle (client, "c-sync", &error));
  g_assert_no_error (error);

  agent = heartbeat_client_get_agent (client, "c-sync", &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_is_of_type (agent, G_VARIANT_TYPE_VARDICT));
  agents = heartbeat_client_list_agents (client, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (agents), ==, 2);
  infos = heartbeat_client_list_agent_infos (client, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (infos->len, ==, 2);
  g_assert_cmpstr (heartbeat_agent_info_get_id (infos->pdata[0]), ==, "c-sync");
  g_assert_cmpstr (heartbeat_agent_info_get_status (infos->pdata[0]), ==, "idle");
  status = heartbeat_client_get_status (client, &error);
  g_assert_no_error (error);
  {
    const char *version = NULL;

    g_assert_true (g_variant_lookup (status, "version", "&s", &version));
    g_assert_cmpstr (version, !=, "");
  }

  g_assert_false (heartbeat_client_register (client, "bad id!", NULL, &error));
  g_assert_error (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (heartbeat_client_register (client, "c-x", g_variant_new_parsed ("{'no-such-option': <1>}"), &error));
  g_assert_error (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (heartbeat_client_beat (client, "nobody-here", NULL, &error));
  g_assert_error (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NOT_FOUND);
  g_clear_error (&error);

  {
    /* the daemon's NotSaved (a full disk: tests/integration faults) maps too */
    g_autoptr(GError) not_saved =
      g_dbus_error_new_for_dbus_error ("org.heartbeat.Monitor1.Error.NotSaved", "disk full");

    g_assert_error (not_saved, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NOT_SAVED);
  }

  g_assert_true (heartbeat_client_unregister (client, "c-sync", &error));
  g_assert_no_error (error);
  g_assert_true (heartbeat_client_unregister (client, "c-sync-2", &error));
  g_assert_no_error (error);
  g_assert_false (heartbeat_client_unregister (client, "c-sync", &error));
  g_assert_error (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* no daemon */
  hb_harness_signal_daemon (f->h, SIGTERM);
  hb_harness_wait_exit (f->h, f->h->daemon, HB_WAIT_MS);
  g_assert_false (heartbeat_client_beat (client, "c-sync", NULL, &error));
  g_assert_error (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NO_DAEMON);
}

/* heartbeat_client_new() on the session bus, async. */
static void
test_new_for_bus_type (Fixture *f, gconstpointer data)
{
  g_autoptr(HeartbeatClient) client = NULL;
  g_autoptr(HeartbeatClient) sync_client = NULL;
  g_autoptr(GError) error = NULL;
  GAsyncResult *result = NULL;

  if (!start (f))
    return;
  g_setenv ("DBUS_SESSION_BUS_ADDRESS", f->h->bus_address, TRUE);
  heartbeat_client_new (G_BUS_TYPE_SESSION, NULL, on_result, &result);
  client = heartbeat_client_new_finish (wait_result (&result), &error);
  g_clear_object (&result);
  g_assert_no_error (error);
  g_assert_true (HEARTBEAT_IS_CLIENT (client));
  sync_client = heartbeat_client_new_sync (G_BUS_TYPE_SESSION, NULL, &error);
  g_assert_no_error (error);

  /* each has a bus connection of its own, which never exits the process
   * when it closes; g_bus_get()'s, the application's, keeps GLib's
   * default (exit-on-close) */
  {
    g_autoptr(GDBusConnection) shared = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);

    g_assert_no_error (error);
    g_assert_true (heartbeat_client_get_connection (client) != heartbeat_client_get_connection (sync_client));
    g_assert_true (heartbeat_client_get_connection (client) != shared);
    g_assert_true (heartbeat_client_get_connection (sync_client) != shared);
    g_assert_false (g_dbus_connection_get_exit_on_close (heartbeat_client_get_connection (client)));
    g_assert_false (g_dbus_connection_get_exit_on_close (heartbeat_client_get_connection (sync_client)));
    g_assert_true (g_dbus_connection_get_exit_on_close (shared));
    /* the test's own: it must outlive the harness's bus */
    g_dbus_connection_set_exit_on_close (shared, FALSE);
    g_dbus_connection_close_sync (shared, NULL, NULL);
  }

  hb_harness_signal_daemon (f->h, SIGTERM);
  hb_harness_wait_exit (f->h, f->h->daemon, HB_WAIT_MS);
  g_clear_object (&sync_client);
  heartbeat_client_new (G_BUS_TYPE_SESSION, NULL, on_result, &result);
  g_assert_null (heartbeat_client_new_finish (wait_result (&result), &error));
  g_clear_object (&result);
  g_assert_error (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NO_DAEMON);
  g_clear_error (&error);

  /* no bus there: NO_BUS, both ways */
  {
    g_autofree char *nowhere = g_strdup_printf ("unix:path=%s/nobody-listens", f->h->tmpdir);

    g_setenv ("DBUS_SESSION_BUS_ADDRESS", nowhere, TRUE);
    g_assert_null (heartbeat_client_new_sync (G_BUS_TYPE_SESSION, NULL, &error));
    g_assert_error (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NO_BUS);
    g_clear_error (&error);
    heartbeat_client_new (G_BUS_TYPE_SESSION, NULL, on_result, &result);
    g_assert_null (heartbeat_client_new_finish (wait_result (&result), &error));
    g_clear_object (&result);
    g_assert_error (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NO_BUS);
  }
}

/* Every signal: registered, state-changed, stale, recovered, timed-out,
 * unregistered; and the daemon vanishing and appearing. */
static void
test_signals (Fixture *f, gconstpointer data)
{
  g_autoptr(HeartbeatClient) client = NULL;
  g_autoptr(GError) error = NULL;
  Recorder r;
  gboolean running = TRUE;

  if (!start (f))
    return;
  client = connect_client (f);
  recorder_init (&r, client);

  g_assert_true (heartbeat_client_register_full (client, "c-stale", "t1", 300000, 0, 0, FALSE, NULL, NULL, &error));
  g_assert_no_error (error);
  wait_event (&r, "registered c-stale t1");
  wait_event (&r, "state c-stale healthy stale");
  wait_event (&r, "stale c-stale stale");
  g_assert_true (heartbeat_client_beat (client, "c-stale", NULL, &error));
  g_assert_no_error (error);
  wait_event (&r, "state c-stale stale healthy");
  wait_event (&r, "recovered c-stale");

  g_assert_true (heartbeat_client_register_full (client, "c-timeout", NULL, 60000000, 300000, 0, FALSE, NULL, NULL, &error));
  g_assert_no_error (error);
  wait_event (&r, "state c-timeout healthy timed-out");
  wait_event (&r, "timed-out c-timeout c-timeout");

  g_assert_true (heartbeat_client_unregister (client, "c-stale", &error));
  g_assert_no_error (error);
  wait_event (&r, "unregistered c-stale unregistered");

  hb_harness_signal_daemon (f->h, SIGKILL);
  hb_harness_wait_exit (f->h, f->h->daemon, HB_WAIT_MS);
  wait_event (&r, "daemon-vanished");
  g_object_get (client, "daemon-running", &running, NULL);
  g_assert_false (running);
  g_assert_cmpuint (r.appeared, ==, 0);
  hb_harness_start_daemon (f->h, 0);
  wait_event (&r, "daemon-appeared");
  g_assert_true (heartbeat_client_get_daemon_running (client));
  g_assert_cmpuint (r.vanished, ==, 1);
  g_assert_cmpuint (r.appeared, ==, 1);
  /* and signals of the new daemon arrive */
  g_assert_true (heartbeat_client_register (client, "c-after", NULL, &error));
  g_assert_no_error (error);
  wait_event (&r, "registered c-after ");
  g_ptr_array_unref (r.events);
}

static void
on_ka_registered (HeartbeatKeepAlive *ka, guint *count)
{
  (*count)++;
}

typedef struct {
  HeartbeatClient *client;
  const char      *id;
  guint64          min_beats;
} BeatsWait;

static gboolean
check_healthy_with_beats (HbHarness *h, gpointer data)
{
  BeatsWait *wait = data;
  g_autoptr(HeartbeatAgentInfo) info = heartbeat_client_get_agent_info (wait->client, wait->id, NULL, NULL);

  return info != NULL && g_strcmp0 (heartbeat_agent_info_get_state (info), "healthy") == 0 &&
         heartbeat_agent_info_get_beats (info) >= wait->min_beats;
}

/* The keep-alive: beats at a third of the stale threshold (no stale),
 * reports error and idle, registers again after a restart, unregisters
 * when disposed. */
static void
test_keep_alive (Fixture *f, gconstpointer data)
{
  g_autoptr(HeartbeatClient) client = NULL;
  g_autoptr(HeartbeatClient) watcher = NULL;
  g_autoptr(HeartbeatKeepAlive) ka = NULL;
  g_autoptr(HeartbeatAgentInfo) info = NULL;
  g_autoptr(GError) error = NULL;
  Recorder r;
  guint registered = 0;
  gint64 until;

  if (!start (f))
    return;
  client = connect_client (f);
  watcher = connect_client (f);
  recorder_init (&r, watcher);

  /* 1.5 s: a beat every 500 ms; a stall of the test process for a whole
   * second (an ASan build beside stress-ng) still leaves it healthy */
  ka = heartbeat_keep_alive_new (client, "c-ka",
                                 heartbeat_register_options_new ("serve", 1500000, 0, 0, FALSE, NULL),
                                 NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (ka, "registered", G_CALLBACK (on_ka_registered), &registered);
  g_assert_cmpuint (heartbeat_keep_alive_get_interval_usec (ka), ==, 500000);
  g_assert_cmpuint (heartbeat_keep_alive_get_registrations (ka), ==, 1);
  g_assert_true (heartbeat_keep_alive_get_registered (ka));
  g_assert_cmpstr (heartbeat_keep_alive_get_id (ka), ==, "c-ka");
  g_assert_true (heartbeat_keep_alive_get_client (ka) == client);

  info = heartbeat_client_get_agent_info (client, "c-ka", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (heartbeat_agent_info_get_bound_to (info), ==,
                   g_dbus_connection_get_unique_name (heartbeat_client_get_connection (client)));
  g_clear_object (&info);

  /* three stale periods: beats, and never stale */
  until = g_get_monotonic_time () + 4500000;
  while (g_get_monotonic_time () < until)
    hb_harness_run_for (f->h, 100);
  g_assert_false (recorder_has (&r, "stale c-ka stale"));
  info = heartbeat_client_get_agent_info (client, "c-ka", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (heartbeat_agent_info_get_beats (info), >=, 6);
  g_assert_cmpstr (heartbeat_agent_info_get_state (info), ==, "healthy");
  g_clear_object (&info);

  heartbeat_keep_alive_set_status (ka, "error");
  wait_event (&r, "state c-ka healthy error");
  heartbeat_keep_alive_mark_idle (ka);
  g_assert_cmpstr (heartbeat_keep_alive_get_status (ka), ==, "idle");
  wait_event (&r, "state c-ka error healthy");
  heartbeat_keep_alive_update (ka, 42.0, NULL);
  g_assert_cmpstr (heartbeat_keep_alive_get_status (ka), ==, "running");
  hb_harness_run_for (f->h, 300);
  info = heartbeat_client_get_agent_info (client, "c-ka", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (heartbeat_agent_info_get_status (info), ==, "running");
  g_clear_object (&info);

  /* a restart: registered again, and healthy */
  kill_and_restart (f);
  wait_event (&r, "daemon-appeared");
  while (registered < 1)
    hb_harness_run_for (f->h, 50);
  g_assert_cmpuint (heartbeat_keep_alive_get_registrations (ka), ==, 2);
  wait_event (&r, "registered c-ka serve");
  {
    BeatsWait wait = { client, "c-ka", 2 };

    hb_harness_wait_until (f->h, check_healthy_with_beats, &wait);
  }
  g_assert_false (recorder_has (&r, "stale c-ka stale"));

  /* disposed: unregistered */
  g_clear_object (&ka);
  wait_event (&r, "unregistered c-ka unregistered");

  /* the async constructor, and unregistering explicitly */
  {
    GAsyncResult *result = NULL;

    heartbeat_keep_alive_new_async (client, "c-ka-async", NULL, NULL, on_result, &result);
    ka = heartbeat_keep_alive_new_finish (wait_result (&result), &error);
    g_clear_object (&result);
    g_assert_no_error (error);
    g_assert_cmpuint (heartbeat_keep_alive_get_registrations (ka), ==, 1);
    g_assert_cmpuint (heartbeat_keep_alive_get_interval_usec (ka), ==, 5000000 / 3);
    wait_event (&r, "registered c-ka-async ");
    g_assert_true (heartbeat_keep_alive_unregister (ka, &error));
    g_assert_no_error (error);
    g_assert_false (heartbeat_keep_alive_get_registered (ka));
    wait_event (&r, "unregistered c-ka-async unregistered");
    g_clear_object (&ka);

    /* a refused registration fails the constructor */
    heartbeat_keep_alive_new_async (client, "bad id!", NULL, NULL, on_result, &result);
    g_assert_null (heartbeat_keep_alive_new_finish (wait_result (&result), &error));
    g_clear_object (&result);
    g_assert_error (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_INVALID_ARGUMENT);
  }
  g_ptr_array_unref (r.events);
}

typedef struct {
  guint failed;
  guint registered_false;
  int   last_code;
} KeepAliveLog;

static void
on_ka_failed (HeartbeatKeepAlive *ka, const GError *error, KeepAliveLog *log)
{
  g_test_message ("keep-alive failed: %s", error->message);
  log->failed++;
  log->last_code = error->domain == HEARTBEAT_CLIENT_ERROR ? error->code : -1;
}

static void
on_ka_registered_notify (HeartbeatKeepAlive *ka, GParamSpec *pspec, KeepAliveLog *log)
{
  if (!heartbeat_keep_alive_get_registered (ka))
    log->registered_false++;
}

/* A connection the application gave the client, closed: the client says
 * the daemon is gone and calls fail with NO_BUS; the keep-alive says it
 * is not registered and fails once, however many beats come due; neither
 * tries to reach the daemon again on that connection (it is the
 * application's). */
static void
test_keep_alive_closed_connection (Fixture *f, gconstpointer data)
{
  g_autoptr(GDBusConnection) connection = NULL;
  g_autoptr(HeartbeatClient) client = NULL;
  g_autoptr(HeartbeatKeepAlive) ka = NULL;
  g_autoptr(GError) error = NULL;
  KeepAliveLog log = { 0, 0, 0 };
  Recorder r;

  if (!start (f))
    return;
  connection = hb_harness_connect (f->h);
  g_assert_false (g_dbus_connection_get_exit_on_close (connection));
  client = heartbeat_client_new_for_connection_sync (connection, NULL, &error);
  g_assert_no_error (error);
  recorder_init (&r, client);
  /* a beat every 10 ms */
  ka = heartbeat_keep_alive_new (client, "c-ka-closed",
                                 heartbeat_register_options_new (NULL, 30000, 0, 0, FALSE, NULL),
                                 NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (heartbeat_keep_alive_get_interval_usec (ka), ==, 10000);
  g_signal_connect (ka, "failed", G_CALLBACK (on_ka_failed), &log);
  g_signal_connect (ka, "notify::registered", G_CALLBACK (on_ka_registered_notify), &log);
  g_assert_true (heartbeat_client_is_connected (client));

  g_dbus_connection_close_sync (connection, NULL, &error);
  g_assert_no_error (error);
  wait_event (&r, "daemon-vanished");
  g_assert_false (heartbeat_keep_alive_get_registered (ka));
  g_assert_false (heartbeat_client_get_daemon_running (client));
  g_assert_false (heartbeat_client_is_connected (client));

  /* 100 beats' worth: an observation window, not a deadline */
  hb_harness_run_for (f->h, 1000);
  g_assert_cmpuint (log.registered_false, ==, 1);
  g_assert_cmpuint (log.failed, ==, 1);
  g_assert_cmpint (log.last_code, ==, HEARTBEAT_CLIENT_ERROR_NO_BUS);
  g_assert_cmpuint (r.vanished, ==, 1);
  g_assert_cmpuint (r.appeared, ==, 0);
  g_assert_true (heartbeat_client_get_connection (client) == connection);
  g_assert_false (heartbeat_client_beat (client, "c-ka-closed", NULL, &error));
  g_assert_error (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NO_BUS);
  g_clear_error (&error);

  /* disposing it neither blocks nor calls */
  g_clear_object (&ka);
  g_ptr_array_unref (r.events);
}

/* The unit getters over dictionaries made here: a unit-backed agent, one
 * whose CPU and memory systemd does not account for, the same dictionary
 * as read back from the HTTP API's JSON (int64 numbers), and an agent
 * without a unit. No daemon needed. */
static void
test_agent_info_unit (Fixture *f, gconstpointer data)
{
  g_autoptr(HeartbeatAgentInfo) full = NULL, partial = NULL, from_json = NULL, none = NULL;
  g_autoptr(GVariant) unit = NULL;
  guint64 cpu = 1, memory = 1;
  gint32 exit_status = 1;
  guint n_restarts = 0;
  g_autofree char *name = NULL;

  full = heartbeat_agent_info_new (g_variant_new_parsed (
    "{'id': <'web'>, 'state': <'healthy'>, 'pid': <uint32 0>, 'declared': <true>,"
    " 'unit': <{'name': <'web.service'>, 'active-state': <'active'>, 'sub-state': <'running'>,"
    "           'main-pid': <uint32 4242>, 'active-since-usec': <uint64 1764496000000000>,"
    "           'cpu-usec': <uint64 0>, 'memory-bytes': <uint64 12900000>, 'result': <'success'>,"
    "           'exit-status': <int32 -1>, 'n-restarts': <uint32 3>}>}"));
  g_assert_true (heartbeat_agent_info_has_unit (full));
  g_assert_cmpstr (heartbeat_agent_info_get_unit_name (full), ==, "web.service");
  g_assert_cmpstr (heartbeat_agent_info_get_unit_active_state (full), ==, "active");
  g_assert_cmpstr (heartbeat_agent_info_get_unit_sub_state (full), ==, "running");
  g_assert_cmpuint (heartbeat_agent_info_get_unit_main_pid (full), ==, 4242);
  g_assert_cmpuint (heartbeat_agent_info_get_pid (full), ==, 0);   /* the agent's own, untouched */
  g_assert_cmpuint (heartbeat_agent_info_get_unit_active_since (full), ==, G_GUINT64_CONSTANT (1764496000000000));
  /* 0 is a real CPU time: known */
  g_assert_true (heartbeat_agent_info_get_unit_cpu_usec (full, &cpu));
  g_assert_cmpuint (cpu, ==, 0);
  g_assert_true (heartbeat_agent_info_get_unit_memory_bytes (full, &memory));
  g_assert_cmpuint (memory, ==, 12900000);
  g_assert_true (heartbeat_agent_info_get_unit_memory_bytes (full, NULL));
  g_assert_cmpstr (heartbeat_agent_info_get_unit_result (full), ==, "success");
  g_assert_true (heartbeat_agent_info_get_unit_exit_status (full, &exit_status));
  g_assert_cmpint (exit_status, ==, -1);
  g_assert_cmpuint (heartbeat_agent_info_get_unit_n_restarts (full), ==, 3);
  unit = heartbeat_agent_info_get_unit (full);
  g_assert_true (g_variant_is_of_type (unit, G_VARIANT_TYPE_VARDICT));
  g_assert_cmpuint (g_variant_n_children (unit), ==, 10);
  g_object_get (full, "unit-name", &name, "unit-n-restarts", &n_restarts, NULL);
  g_assert_cmpstr (name, ==, "web.service");
  g_assert_cmpuint (n_restarts, ==, 3);
  g_clear_pointer (&unit, g_variant_unref);

  /* systemd not reachable yet: no CPU, memory or exit status */
  partial = heartbeat_agent_info_new (g_variant_new_parsed (
    "{'id': <'web'>, 'unit': <{'name': <'web.service'>, 'active-state': <'unknown'>,"
    "                         'main-pid': <uint32 0>, 'active-since-usec': <uint64 0>}>}"));
  g_assert_true (heartbeat_agent_info_has_unit (partial));
  g_assert_cmpstr (heartbeat_agent_info_get_unit_active_state (partial), ==, "unknown");
  g_assert_false (heartbeat_agent_info_get_unit_cpu_usec (partial, &cpu));
  g_assert_cmpuint (cpu, ==, 0);
  g_assert_false (heartbeat_agent_info_get_unit_memory_bytes (partial, &memory));
  g_assert_cmpuint (memory, ==, 0);
  g_assert_false (heartbeat_agent_info_get_unit_exit_status (partial, &exit_status));
  g_assert_cmpint (exit_status, ==, 0);
  g_assert_cmpstr (heartbeat_agent_info_get_unit_sub_state (partial), ==, "");
  g_assert_cmpstr (heartbeat_agent_info_get_unit_result (partial), ==, "");

  /* numbers as JSON gives them (int64); a negative one is not a size */
  from_json = heartbeat_agent_info_new (g_variant_new_parsed (
    "{'id': <'web'>, 'unit': <{'name': <'web.service'>, 'main-pid': <int64 17>,"
    "                         'cpu-usec': <int64 2500000>, 'memory-bytes': <int64 -5>,"
    "                         'exit-status': <int64 3>, 'n-restarts': <int64 1>}>}"));
  g_assert_cmpuint (heartbeat_agent_info_get_unit_main_pid (from_json), ==, 17);
  g_assert_true (heartbeat_agent_info_get_unit_cpu_usec (from_json, &cpu));
  g_assert_cmpuint (cpu, ==, 2500000);
  g_assert_false (heartbeat_agent_info_get_unit_memory_bytes (from_json, &memory));
  g_assert_true (heartbeat_agent_info_get_unit_exit_status (from_json, &exit_status));
  g_assert_cmpint (exit_status, ==, 3);
  g_assert_cmpuint (heartbeat_agent_info_get_unit_n_restarts (from_json), ==, 1);

  /* no unit: the contract's empty dictionary, and an older daemon's none */
  for (int i = 0; i < 2; i++)
    {
      none = heartbeat_agent_info_new (i == 0 ? g_variant_new_parsed ("{'id': <'x'>, 'unit': <@a{sv} {}>}")
                                              : g_variant_new_parsed ("{'id': <'x'>}"));
      g_assert_false (heartbeat_agent_info_has_unit (none));
      g_assert_cmpstr (heartbeat_agent_info_get_unit_name (none), ==, "");
      g_assert_cmpstr (heartbeat_agent_info_get_unit_active_state (none), ==, "");
      g_assert_cmpuint (heartbeat_agent_info_get_unit_main_pid (none), ==, 0);
      g_assert_cmpuint (heartbeat_agent_info_get_unit_active_since (none), ==, 0);
      g_assert_false (heartbeat_agent_info_get_unit_cpu_usec (none, NULL));
      unit = heartbeat_agent_info_get_unit (none);
      g_assert_cmpuint (g_variant_n_children (unit), ==, 0);
      g_clear_pointer (&unit, g_variant_unref);
      g_clear_object (&none);
    }
}

/* An agent's history, sync and async: its registration, a stale spell
 * and the recovery, oldest first; NotFound for an unknown id. The agents
 * of this daemon have no unit: their `unit` is empty. */
static void
test_history (Fixture *f, gconstpointer data)
{
  g_autoptr(HeartbeatClient) client = NULL;
  g_autoptr(HeartbeatAgentInfo) info = NULL;
  g_autoptr(GVariant) history = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  Recorder r;
  gint64 before = g_get_real_time ();
  guint64 at, previous = 0;
  const char *state;

  if (!start (f))
    return;
  client = connect_client (f);
  recorder_init (&r, client);

  g_assert_true (heartbeat_client_register_full (client, "c-hist", NULL, 300000, 0, 0, FALSE, NULL, NULL, &error));
  g_assert_no_error (error);
  info = heartbeat_client_get_agent_info (client, "c-hist", NULL, &error);
  g_assert_no_error (error);
  g_assert_false (heartbeat_agent_info_has_unit (info));
  g_assert_false (heartbeat_agent_info_get_unit_cpu_usec (info, NULL));

  history = heartbeat_client_get_history (client, "c-hist", NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_is_of_type (history, G_VARIANT_TYPE ("a(ts)")));
  g_assert_cmpuint (g_variant_n_children (history), ==, 1);
  g_variant_get_child (history, 0, "(t&s)", &at, &state);
  g_assert_cmpstr (state, ==, "healthy");
  g_assert_cmpuint (at, >=, (guint64) before - G_USEC_PER_SEC);
  g_assert_cmpuint (at, <=, (guint64) g_get_real_time ());
  g_clear_pointer (&history, g_variant_unref);

  wait_event (&r, "stale c-hist stale");
  g_assert_true (heartbeat_client_beat (client, "c-hist", NULL, &error));
  g_assert_no_error (error);
  wait_event (&r, "recovered c-hist");

  heartbeat_client_get_history_async (client, "c-hist", NULL, on_result, &result);
  history = heartbeat_client_get_history_finish (client, wait_result (&result), &error);
  g_assert_no_error (error);
  g_clear_object (&result);
  g_assert_cmpuint (g_variant_n_children (history), ==, 3);
  for (gsize i = 0; i < 3; i++)
    {
      static const char *const expected[] = { "healthy", "stale", "healthy" };

      g_variant_get_child (history, i, "(t&s)", &at, &state);
      g_assert_cmpstr (state, ==, expected[i]);
      g_assert_cmpuint (at, >=, previous);
      previous = at;
    }

  g_assert_null (heartbeat_client_get_history (client, "nobody-here", NULL, &error));
  g_assert_error (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NOT_FOUND);
  g_clear_error (&error);
  heartbeat_client_get_history_async (client, "nobody-here", NULL, on_result, &result);
  g_assert_null (heartbeat_client_get_history_finish (client, wait_result (&result), &error));
  g_assert_error (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_NOT_FOUND);
  g_signal_handlers_disconnect_by_data (client, &r);
  g_ptr_array_unref (r.events);
}

/* ---- listing page by page, and interactive authorization ---- */

/* What the client sent, seen by a filter on its connection (which runs
 * in GDBus's worker thread). */
typedef struct {
  GMutex     lock;
  GPtrArray *calls;   /* "Member" or "Member interactive" */
} Sent;

static GDBusMessage *
record_sent (GDBusConnection *connection,
             GDBusMessage    *message,
             gboolean         incoming,
             gpointer         data)
{
  Sent *sent = data;

  if (!incoming && g_dbus_message_get_message_type (message) == G_DBUS_MESSAGE_TYPE_METHOD_CALL &&
      g_strcmp0 (g_dbus_message_get_interface (message), HEARTBEAT_CLIENT_INTERFACE) == 0)
    {
      gboolean interactive =
        (g_dbus_message_get_flags (message) & G_DBUS_MESSAGE_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION) != 0;

      g_mutex_lock (&sent->lock);
      g_ptr_array_add (sent->calls, g_strdup_printf ("%s%s", g_dbus_message_get_member (message),
                                                     interactive ? " interactive" : ""));
      g_mutex_unlock (&sent->lock);
    }
  return message;
}

static guint
sent_count (Sent       *sent,
            const char *call)
{
  guint n = 0;

  g_mutex_lock (&sent->lock);
  for (guint i = 0; i < sent->calls->len; i++)
    n += g_strcmp0 (sent->calls->pdata[i], call) == 0;
  g_mutex_unlock (&sent->lock);
  return n;
}

static void
sent_clear (Sent *sent)
{
  g_mutex_lock (&sent->lock);
  g_ptr_array_set_size (sent->calls, 0);
  g_mutex_unlock (&sent->lock);
}

#define PAGED_AGENTS 20

static void
assert_paged_ids (GVariant *agents)
{
  g_assert_cmpuint (g_variant_n_children (agents), ==, PAGED_AGENTS);
  for (gsize i = 0; i < PAGED_AGENTS; i++)
    {
      g_autoptr(GVariant) agent = g_variant_get_child_value (agents, i);
      g_autofree char *expected = g_strdup_printf ("paged-%02" G_GSIZE_FORMAT, i);
      const char *id = NULL;

      g_assert_true (g_variant_lookup (agent, "id", "&s", &id));
      g_assert_cmpstr (id, ==, expected);
    }
}

static void
assert_paged_infos (GPtrArray *infos)
{
  g_assert_cmpuint (infos->len, ==, PAGED_AGENTS);
  for (guint i = 0; i < PAGED_AGENTS; i++)
    {
      g_autofree char *expected = g_strdup_printf ("paged-%02u", i);

      g_assert_cmpstr (heartbeat_agent_info_get_id (infos->pdata[i]), ==, expected);
    }
}

/* heartbeat_client_list_agents() and friends return every agent, once
 * and in order, across several pages, where one ListAgents reply would
 * be too large: the daemon is told (through the environment variables it
 * reads for tests) to send at most 8 KiB in one reply and 4 KiB in a
 * page, and 20 agents of about 2 KiB each are more than either. */
static void
test_list_agents_paged (Fixture *f, gconstpointer data)
{
  g_autoptr(HeartbeatClient) client = NULL;
  g_autoptr(GVariant) agents = NULL;
  g_autoptr(GVariant) direct = NULL;
  g_autoptr(GPtrArray) infos = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *padding = g_strnfill (1500, 'p');
  GAsyncResult *result = NULL;
  Sent sent = { 0 };
  guint filter_id;

  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  hb_harness_write_config (f->h, client_test_config);
  g_setenv ("HB_DBUS_REPLY_MAX_BYTES", "8192", TRUE);
  g_setenv ("HB_DBUS_PAGE_MAX_BYTES", "4096", TRUE);
  hb_harness_start_daemon (f->h, 0);
  g_unsetenv ("HB_DBUS_REPLY_MAX_BYTES");
  g_unsetenv ("HB_DBUS_PAGE_MAX_BYTES");
  client = connect_client (f);
  g_mutex_init (&sent.lock);
  sent.calls = g_ptr_array_new_with_free_func (g_free);
  filter_id = g_dbus_connection_add_filter (heartbeat_client_get_connection (client), record_sent, &sent, NULL);

  for (guint k = 0; k < PAGED_AGENTS; k++)
    {
      g_autofree char *id = g_strdup_printf ("paged-%02u", (k * 7) % PAGED_AGENTS);

      g_assert_true (heartbeat_client_register (client, id,
                                                g_variant_new_parsed ("{'metadata': <{'padding': <%s>}>}", padding),
                                                &error));
      g_assert_no_error (error);
      /* read the STATUS= each registration sends: the harness reads them
       * on the main context, and heartbeatd blocks on a full socket */
      while (g_main_context_iteration (NULL, FALSE))
        ;
    }

  /* one ListAgents is too large for the daemon to send */
  direct = g_dbus_connection_call_sync (heartbeat_client_get_connection (client), HEARTBEAT_CLIENT_BUS_NAME,
                                        HEARTBEAT_CLIENT_OBJECT_PATH, HEARTBEAT_CLIENT_INTERFACE, "ListAgents",
                                        NULL, NULL, G_DBUS_CALL_FLAGS_NONE, HB_WAIT_MS, NULL, &error);
  g_assert_null (direct);
  g_assert_error (error, HEARTBEAT_CLIENT_ERROR, HEARTBEAT_CLIENT_ERROR_LIMITS_EXCEEDED);
  g_clear_error (&error);

  /* the library reads it page by page */
  sent_clear (&sent);
  agents = heartbeat_client_list_agents (client, &error);
  g_assert_no_error (error);
  assert_paged_ids (agents);
  g_test_message ("%u pages", sent_count (&sent, "ListAgentsPage"));
  g_assert_cmpuint (sent_count (&sent, "ListAgentsPage"), >=, 5);
  g_assert_cmpuint (sent_count (&sent, "ListAgents"), ==, 0);

  infos = heartbeat_client_list_agent_infos (client, NULL, &error);
  g_assert_no_error (error);
  assert_paged_infos (infos);
  g_clear_pointer (&infos, g_ptr_array_unref);

  sent_clear (&sent);
  heartbeat_client_list_agent_infos_async (client, NULL, on_result, &result);
  infos = heartbeat_client_list_agent_infos_finish (client, wait_result (&result), &error);
  g_clear_object (&result);
  g_assert_no_error (error);
  assert_paged_infos (infos);
  g_assert_cmpuint (sent_count (&sent, "ListAgentsPage"), >=, 5);

  g_dbus_connection_remove_filter (heartbeat_client_get_connection (client), filter_id);
  g_ptr_array_unref (sent.calls);
  g_mutex_clear (&sent.lock);
}

/* A daemon from before ListAgentsPage (here: a stand-in that has only
 * ListAgents): the library falls back to ListAgents. */
static const char old_interface_xml[] =
  "<node><interface name='org.heartbeat.Monitor1'>"
  "<method name='ListAgents'><arg name='agents' direction='out' type='aa{sv}'/></method>"
  "</interface></node>";

static void
old_daemon_call (GDBusConnection       *connection,
                 const char            *sender,
                 const char            *path,
                 const char            *interface,
                 const char            *method,
                 GVariant              *parameters,
                 GDBusMethodInvocation *invocation,
                 gpointer               data)
{
  g_dbus_method_invocation_return_value (invocation,
                                         g_variant_new_parsed ("([{'id': <'old-a'>}, {'id': <'old-b'>}],)"));
}

static GVariant *listed;

static gpointer
list_agents_thread (gpointer data)
{
  g_autoptr(GError) error = NULL;
  GVariant *agents = heartbeat_client_list_agents (data, &error);

  g_assert_no_error (error);
  g_atomic_pointer_set (&listed, agents);
  g_main_context_wakeup (NULL);
  return agents;
}

static void
test_list_agents_old_daemon (Fixture *f, gconstpointer data)
{
  static const GDBusInterfaceVTable vtable = { old_daemon_call, NULL, NULL, { 0 } };
  g_autoptr(GDBusConnection) service = NULL;
  g_autoptr(GDBusNodeInfo) node = NULL;
  g_autoptr(GVariant) owned = NULL;
  g_autoptr(HeartbeatClient) client = NULL;
  g_autoptr(GVariant) agents = NULL;
  g_autoptr(GPtrArray) infos = NULL;
  g_autoptr(GError) error = NULL;
  GAsyncResult *result = NULL;
  guint registration;

  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  service = hb_harness_connect (f->h);
  node = g_dbus_node_info_new_for_xml (old_interface_xml, &error);
  g_assert_no_error (error);
  registration = g_dbus_connection_register_object (service, HEARTBEAT_CLIENT_OBJECT_PATH, node->interfaces[0],
                                                    &vtable, NULL, NULL, &error);
  g_assert_no_error (error);
  owned = g_dbus_connection_call_sync (service, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "RequestName",
                                       g_variant_new ("(su)", HEARTBEAT_CLIENT_BUS_NAME, 4u),
                                       G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, HB_WAIT_MS, NULL, &error);
  g_assert_no_error (error);
  client = connect_client (f);

  /* the stand-in answers on this thread's main context: the sync call
   * runs in another thread while this one serves */
  {
    GThread *thread = g_thread_new ("list-agents", list_agents_thread, client);
    gboolean timed_out = FALSE;
    guint id = g_timeout_add (HB_WAIT_MS, on_timeout, &timed_out);

    while (g_atomic_pointer_get (&listed) == NULL && !timed_out)
      g_main_context_iteration (NULL, TRUE);
    if (!timed_out)
      g_source_remove (id);
    agents = g_thread_join (thread);
    g_assert_nonnull (agents);
    g_assert_cmpuint (g_variant_n_children (agents), ==, 2);
  }

  heartbeat_client_list_agent_infos_async (client, NULL, on_result, &result);
  infos = heartbeat_client_list_agent_infos_finish (client, wait_result (&result), &error);
  g_clear_object (&result);
  g_assert_no_error (error);
  g_assert_cmpuint (infos->len, ==, 2);
  g_assert_cmpstr (heartbeat_agent_info_get_id (infos->pdata[1]), ==, "old-b");

  g_dbus_connection_unregister_object (service, registration);
}

static void
on_notify (GObject *object, GParamSpec *pspec, guint *count)
{
  (*count)++;
}

/* heartbeat_client_set_interactive() puts ALLOW_INTERACTIVE_AUTHORIZATION
 * on the calls that change agents (the ones the daemon may ask polkit
 * about), and only on those; without it, no call carries the flag. */
static void
test_interactive (Fixture *f, gconstpointer data)
{
  g_autoptr(HeartbeatClient) client = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) agent = NULL;
  GAsyncResult *result = NULL;
  Sent sent = { 0 };
  guint notified = 0;
  gboolean property = FALSE;
  guint filter_id;

  if (!start (f))
    return;
  client = connect_client (f);
  g_mutex_init (&sent.lock);
  sent.calls = g_ptr_array_new_with_free_func (g_free);
  filter_id = g_dbus_connection_add_filter (heartbeat_client_get_connection (client), record_sent, &sent, NULL);

  g_assert_false (heartbeat_client_get_interactive (client));
  g_assert_true (heartbeat_client_register (client, "c-int", NULL, &error));
  g_assert_no_error (error);
  g_assert_true (heartbeat_client_beat (client, "c-int", NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (sent_count (&sent, "Register"), ==, 1);
  g_assert_cmpuint (sent_count (&sent, "Beat"), ==, 1);

  g_signal_connect (client, "notify::interactive", G_CALLBACK (on_notify), &notified);
  heartbeat_client_set_interactive (client, TRUE);
  g_assert_cmpuint (notified, ==, 1);
  g_object_get (client, "interactive", &property, NULL);
  g_assert_true (property);
  sent_clear (&sent);

  g_assert_true (heartbeat_client_register (client, "c-int", NULL, &error));
  g_assert_no_error (error);
  g_assert_true (heartbeat_client_beat (client, "c-int", NULL, &error));
  g_assert_no_error (error);
  heartbeat_client_beat_async (client, "c-int", NULL, NULL, on_result, &result);
  g_assert_true (heartbeat_client_beat_finish (client, wait_result (&result), &error));
  g_clear_object (&result);
  g_assert_no_error (error);
  g_assert_true (heartbeat_client_mark_idle (client, "c-int", &error));
  g_assert_no_error (error);
  agent = heartbeat_client_get_agent (client, "c-int", &error);
  g_assert_no_error (error);
  g_assert_true (heartbeat_client_unregister (client, "c-int", &error));
  g_assert_no_error (error);
  g_assert_cmpuint (sent_count (&sent, "Register interactive"), ==, 1);
  g_assert_cmpuint (sent_count (&sent, "Beat interactive"), ==, 2);
  g_assert_cmpuint (sent_count (&sent, "MarkIdle interactive"), ==, 1);
  g_assert_cmpuint (sent_count (&sent, "Unregister interactive"), ==, 1);
  /* reading never asks */
  g_assert_cmpuint (sent_count (&sent, "GetAgent"), ==, 1);

  g_object_set (client, "interactive", FALSE, NULL);
  g_assert_false (heartbeat_client_get_interactive (client));
  g_assert_cmpuint (notified, ==, 2);
  sent_clear (&sent);
  g_assert_true (heartbeat_client_register (client, "c-int", NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (sent_count (&sent, "Register"), ==, 1);

  g_dbus_connection_remove_filter (heartbeat_client_get_connection (client), filter_id);
  g_ptr_array_unref (sent.calls);
  g_mutex_clear (&sent.lock);
}

#define ADD(path, func) \
  g_test_add ("/client/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  ADD ("async-calls", test_async_calls);
  ADD ("sync-calls", test_sync_calls);
  ADD ("new-for-bus-type", test_new_for_bus_type);
  ADD ("signals", test_signals);
  ADD ("keep-alive", test_keep_alive);
  /* run by the meson tests of their parents (-p runs the children too) */
  ADD ("sync-calls/agent-info-unit", test_agent_info_unit);
  ADD ("async-calls/history", test_history);
  ADD ("sync-calls/list-agents-paged", test_list_agents_paged);
  ADD ("sync-calls/list-agents-old-daemon", test_list_agents_old_daemon);
  ADD ("sync-calls/interactive", test_interactive);
  ADD ("keep-alive/closed-connection", test_keep_alive_closed_connection);
  return g_test_run ();
}
