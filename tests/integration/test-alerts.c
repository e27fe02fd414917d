/* test-alerts.c: [alert:NAME] actions and [log] of the real heartbeatd
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <string.h>

#include "hb-harness.h"

typedef struct {
  HbHarness *h;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->h = hb_harness_new ();
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_pointer (&f->h, hb_harness_free);
}


static gboolean
on_timeout_flag (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs the main loop until @done (*flag or check) or a bounded timeout. */
#define WAIT_UNTIL(cond) G_STMT_START {                                         \
    gboolean timed_out_ = FALSE;                                                \
    guint timeout_ = g_timeout_add (HB_WAIT_MS * 2, on_timeout_flag, &timed_out_); \
    while (!(cond) && !timed_out_)                                              \
      g_main_context_iteration (NULL, TRUE);                                    \
    if (!timed_out_)                                                            \
      g_source_remove (timeout_);                                               \
    g_assert_true (cond);                                                       \
  } G_STMT_END

/* Polls a condition that has no event to wait on (a file, another
 * server's state): every 20 ms, bounded. */
static gboolean
on_poll_tick (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

static void
start_with (Fixture *f, const char *extra_config)
{
  g_autofree char *config = g_strconcat (hb_default_config, extra_config, NULL);

  hb_harness_write_config (f->h, config);
  hb_harness_start_daemon (f->h, 0);
}

static void
register_stale_soon (HbHarness *h, const char *id)
{
  g_autoptr(GVariant) reply = hb_call_ok (h, NULL, "Register",
                                          g_variant_new_parsed ("(%s, {'stale-after-usec': <uint64 200000>,"
                                                                " 'task-id': <'t'>})", id), "()");
}

/* ------------------------------------------------------------------ */
/* webhook                                                             */

typedef struct {
  GPtrArray *bodies;
  GArray    *times;
} Receiver;

static void
on_hook (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  Receiver *r = user_data;
  g_autoptr(GBytes) body = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  gint64 now = g_get_monotonic_time ();

  g_ptr_array_add (r->bodies, g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body)));
  g_array_append_val (r->times, now);
  /* the first two attempts fail */
  soup_server_message_set_status (msg, r->bodies->len <= 2 ? 500 : 200, NULL);
}

static void
test_webhook_retries (Fixture *f, gconstpointer data)
{
  g_autoptr(SoupServer) server = soup_server_new (NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *config = NULL;
  Receiver r = { g_ptr_array_new_with_free_func (g_free), g_array_new (FALSE, FALSE, sizeof (gint64)) };
  guint16 port = hb_free_port ();
  JsonObject *o;

  soup_server_add_handler (server, "/hook", on_hook, &r, NULL);
  g_assert_true (soup_server_listen_local (server, port, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  g_assert_no_error (error);
  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  config = g_strdup_printf ("\n[alert:hook]\nevents=stale\nagents=web-*\nwebhook=http://127.0.0.1:%u/hook\n"
                            "retry-interval=200ms\ntimeout=2s\n", port);
  start_with (f, config);

  register_stale_soon (f->h, "other");     /* not web-*: no alert */
  register_stale_soon (f->h, "web-1");
  WAIT_UNTIL (r.bodies->len >= 3);
  hb_harness_run_for (f->h, 500);         /* no fourth attempt after a success */
  g_assert_cmpuint (r.bodies->len, ==, 3);
  g_assert_cmpint (g_array_index (r.times, gint64, 1) - g_array_index (r.times, gint64, 0), >=, 200000);
  g_assert_cmpint (g_array_index (r.times, gint64, 2) - g_array_index (r.times, gint64, 1), >=, 200000);

  for (guint i = 0; i < 3; i++)
    {
      json_parser_load_from_data (parser, g_ptr_array_index (r.bodies, i), -1, &error);
      g_assert_no_error (error);
      o = json_node_get_object (json_parser_get_root (parser));
      g_assert_cmpstr (json_object_get_string_member (o, "event"), ==, "stale");
      g_assert_cmpstr (json_object_get_string_member (o, "agent"), ==, "web-1");
      g_assert_cmpstr (json_object_get_string_member (o, "state"), ==, "stale");
      g_assert_cmpstr (json_object_get_string_member (o, "task-id"), ==, "t");
      g_assert_cmpstr (json_object_get_string_member (o, "alert"), ==, "hook");
      g_assert_cmpint (json_object_get_int_member (o, "idle-usec"), >=, 200000);
      g_assert_true (json_object_has_member (o, "host"));
      g_assert_true (json_object_has_member (o, "time"));
    }
  g_ptr_array_unref (r.bodies);
  g_array_unref (r.times);
}

/* ------------------------------------------------------------------ */
/* exec                                                                */

static void
test_exec_environment (Fixture *f, gconstpointer data)
{
  g_autofree char *script = NULL, *out = NULL, *config = NULL, *contents = NULL;
  g_autoptr(GError) error = NULL;
  guint tick;

  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  script = g_build_filename (f->h->tmpdir, "alert.sh", NULL);
  out = g_build_filename (f->h->tmpdir, "alert.env", NULL);
  contents = g_strdup_printf ("#!/bin/sh\nenv | grep '^HB_' | sort > '%s.tmp' && mv '%s.tmp' '%s'\necho alerted\n",
                              out, out, out);
  g_file_set_contents (script, contents, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (script, 0755), ==, 0);
  config = g_strdup_printf ("\n[alert:run]\nevents=stale\nexec=%s\n", script);
  start_with (f, config);

  register_stale_soon (f->h, "job");
  tick = g_timeout_add (20, on_poll_tick, NULL);
  WAIT_UNTIL (g_file_test (out, G_FILE_TEST_EXISTS));
  g_source_remove (tick);

  g_clear_pointer (&contents, g_free);
  g_file_get_contents (out, &contents, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (contents, "HB_AGENT=job\n"));
  g_assert_nonnull (strstr (contents, "HB_EVENT=stale\n"));
  g_assert_nonnull (strstr (contents, "HB_STATE=stale\n"));
  g_assert_nonnull (strstr (contents, "HB_TASK=t\n"));
  g_assert_nonnull (strstr (contents, "HB_ALERT=run\n"));
  g_assert_nonnull (strstr (contents, "HB_HOST="));
}

/* ------------------------------------------------------------------ */
/* restart-unit, with python-dbusmock's systemd                        */

static guint
restart_calls (HbHarness *h, const char *unit)
{
  g_autoptr(GVariant) calls = NULL;
  g_autoptr(GVariantIter) iter = NULL;
  g_autoptr(GError) error = NULL;
  const char *method;
  GVariant *args;
  guint64 stamp;
  guint n = 0;

  calls = g_dbus_connection_call_sync (h->client, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.DBus.Mock", "GetCalls", NULL, G_VARIANT_TYPE ("(a(tsav))"),
                                       G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (calls, "(a(tsav))", &iter);
  while (g_variant_iter_loop (iter, "(t&s@av)", &stamp, &method, &args))
    if (strcmp (method, "RestartUnit") == 0)
      {
        g_autoptr(GVariant) first = g_variant_get_child_value (args, 0);
        g_autoptr(GVariant) name = g_variant_get_variant (first);

        if (g_strcmp0 (g_variant_get_string (name, NULL), unit) == 0)
          n++;
      }
  return n;
}

static void
test_restart_unit_with_cooldown (Fixture *f, gconstpointer data)
{
  const char *python = "/usr/bin/python3";
  const char *argv[] = { python, "-m", "dbusmock", "--session", "--template", "systemd", NULL };
  g_autoptr(GVariant) added = NULL;
  g_autoptr(GError) error = NULL;
  guint tick, cursor;

  if (!g_file_test (python, G_FILE_TEST_IS_EXECUTABLE) || !hb_harness_start_bus (f->h, HB_BUS_SESSION))
    {
      g_test_skip ("no /usr/bin/python3 or dbus-daemon");
      return;
    }
  hb_harness_spawn (f->h, argv);
  hb_harness_wait_name_owned (f->h, "org.freedesktop.systemd1");
  /* the template has no RestartUnit: add one that answers with a job */
  added = g_dbus_connection_call_sync (f->h->client, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.DBus.Mock", "AddMethod",
                                       g_variant_new ("(sssss)", "org.freedesktop.systemd1.Manager", "RestartUnit",
                                                      "ss", "o", "ret = '/org/freedesktop/systemd1/job/1'"),
                                       NULL, G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);
  g_assert_no_error (error);

  start_with (f, "\n[alert:restart]\nevents=stale\nrestart-unit=worker.service\ncooldown=1h\n");
  cursor = hb_harness_signal_cursor (f->h);
  register_stale_soon (f->h, "worker");
  tick = g_timeout_add (20, on_poll_tick, NULL);
  WAIT_UNTIL (restart_calls (f->h, "worker.service") == 1);
  g_source_remove (tick);

  /* a second stale episode within the cooldown restarts nothing */
  register_stale_soon (f->h, "worker");
  hb_wait_signal (f->h, &cursor, "AgentStale", "worker", NULL, NULL);
  hb_wait_signal (f->h, &cursor, "AgentStale", "worker", NULL, NULL);
  hb_harness_run_for (f->h, 300);
  g_assert_cmpuint (restart_calls (f->h, "worker.service"), ==, 1);
}

/* ------------------------------------------------------------------ */
/* A real Alertmanager                                                 */

static JsonArray *
alertmanager_alerts (SoupSession *session, const char *base, JsonParser *parser)
{
  g_autofree char *uri = g_strconcat (base, "/api/v2/alerts", NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", uri);
  g_autoptr(GBytes) body = soup_session_send_and_read (session, msg, NULL, NULL);

  if (body == NULL || soup_message_get_status (msg) != 200 ||
      !json_parser_load_from_data (parser, g_bytes_get_data (body, NULL), (gssize) g_bytes_get_size (body), NULL))
    return NULL;
  return json_node_get_array (json_parser_get_root (parser));
}

/* Whether Alertmanager holds an active alert for @agent. */
static gboolean
has_active_alert (SoupSession *session, const char *base, const char *agent)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonArray *alerts = alertmanager_alerts (session, base, parser);

  for (guint i = 0; alerts && i < json_array_get_length (alerts); i++)
    {
      JsonObject *a = json_array_get_object_element (alerts, i);
      JsonObject *labels = json_object_get_object_member (a, "labels");
      JsonObject *status = json_object_get_object_member (a, "status");

      if (g_strcmp0 (json_object_get_string_member_with_default (labels, "agent", ""), agent) == 0 &&
          g_strcmp0 (json_object_get_string_member_with_default (status, "state", ""), "active") == 0)
        return TRUE;
    }
  return FALSE;
}

static gboolean
alertmanager_ready (SoupSession *session, const char *base)
{
  g_autoptr(JsonParser) parser = json_parser_new ();

  return alertmanager_alerts (session, base, parser) != NULL;
}

static void
test_alertmanager_fires_and_resolves (Fixture *f, gconstpointer data)
{
  const char *binary = "/usr/bin/prometheus-alertmanager";
  g_autoptr(SoupSession) session = soup_session_new_with_options ("timeout", 5, NULL);
  g_autofree char *am_config = NULL, *storage = NULL, *config_arg = NULL, *storage_arg = NULL;
  g_autofree char *listen_arg = NULL, *base = NULL, *config = NULL;
  g_autoptr(GError) error = NULL;
  guint16 port = hb_free_port ();
  guint tick;

  if (!g_file_test (binary, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("prometheus-alertmanager is not installed");
      return;
    }
  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;

  am_config = g_build_filename (f->h->tmpdir, "alertmanager.yml", NULL);
  storage = g_build_filename (f->h->tmpdir, "alertmanager", NULL);
  g_file_set_contents (am_config, "route:\n  receiver: none\nreceivers:\n  - name: none\n", -1, &error);
  g_assert_no_error (error);
  config_arg = g_strconcat ("--config.file=", am_config, NULL);
  storage_arg = g_strconcat ("--storage.path=", storage, NULL);
  listen_arg = g_strdup_printf ("--web.listen-address=127.0.0.1:%u", port);
  {
    const char *argv[] = { binary, config_arg, storage_arg, listen_arg, "--cluster.listen-address=", NULL };
    hb_harness_spawn (f->h, argv);
  }
  base = g_strdup_printf ("http://127.0.0.1:%u", port);
  tick = g_timeout_add (50, on_poll_tick, NULL);
  WAIT_UNTIL (alertmanager_ready (session, base));

  config = g_strdup_printf ("\n[alert:am]\nevents=stale\nalertmanager=%s\n", base);
  start_with (f, config);
  register_stale_soon (f->h, "batch");
  WAIT_UNTIL (has_active_alert (session, base, "batch"));

  /* a beat: recovered, and Alertmanager is told the alert ended */
  {
    g_autoptr(GVariant) reply = hb_call_ok (f->h, NULL, "Beat",
                                            g_variant_new_parsed ("('batch', @a{sv} {})"), "()");
  }
  WAIT_UNTIL (!has_active_alert (session, base, "batch"));
  g_source_remove (tick);
}

/* ------------------------------------------------------------------ */
/* [log] events-file                                                   */

static void
test_event_log_lines (Fixture *f, gconstpointer data)
{
  g_autofree char *path = NULL, *config = NULL, *contents = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GError) error = NULL;
  gboolean saw_stale = FALSE, saw_registered = FALSE;
  guint cursor;

  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  path = g_build_filename (f->h->tmpdir, "events.jsonl", NULL);
  config = g_strdup_printf ("\n[log]\nevents-file=%s\nretention=3\n", path);
  start_with (f, config);

  cursor = hb_harness_signal_cursor (f->h);
  register_stale_soon (f->h, "logged");
  hb_wait_signal (f->h, &cursor, "AgentStale", "logged", NULL, NULL);

  g_file_get_contents (path, &contents, NULL, &error);
  g_assert_no_error (error);
  lines = g_strsplit (contents, "\n", -1);
  for (gsize i = 0; lines[i] && *lines[i]; i++)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();
      JsonObject *o;

      json_parser_load_from_data (parser, lines[i], -1, &error);
      g_assert_no_error (error);
      o = json_node_get_object (json_parser_get_root (parser));
      g_assert_true (json_object_has_member (o, "time"));
      saw_registered |= g_strcmp0 (json_object_get_string_member (o, "event"), "registered") == 0;
      if (g_strcmp0 (json_object_get_string_member (o, "event"), "stale") == 0)
        {
          g_assert_cmpstr (json_object_get_string_member (o, "agent"), ==, "logged");
          g_assert_cmpint (json_object_get_int_member (o, "idle-usec"), >=, 200000);
          saw_stale = TRUE;
        }
    }
  g_assert_true (saw_registered);
  g_assert_true (saw_stale);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add ("/alerts/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("webhook-retries", test_webhook_retries);
  ADD ("exec-environment", test_exec_environment);
  ADD ("restart-unit-with-cooldown", test_restart_unit_with_cooldown);
  ADD ("alertmanager-fires-and-resolves", test_alertmanager_fires_and_resolves);
  ADD ("event-log-lines", test_event_log_lines);

  return g_test_run ();
}
