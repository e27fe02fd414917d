/* test-alerts.c: [alert:NAME] actions and [log] of the real heartbeatd
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <glib/gstdio.h>
#include <signal.h>
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
  g_variant_unref (hb_call_ok (h, NULL, "Register",
                               g_variant_new_parsed ("(%s, {'stale-after-usec': <uint64 200000>,"
                                                     " 'task-id': <'t'>})", id), "()"));
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
  contents = g_strdup_printf ("#!/bin/sh\nenv | grep -E '^(HB_|NOTIFY_SOCKET=)' | sort > '%s.tmp' && mv '%s.tmp' '%s'\necho alerted\n",
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
  g_assert_nonnull (strstr (contents, "HB_REASON=no activity for more than 200ms\n"));
  /* the daemon's own (the harness gives the daemon one), not the program's */
  g_assert_null (strstr (contents, "NOTIFY_SOCKET="));
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

/* A session bus with python-dbusmock's systemd on it, whose RestartUnit
 * (the template has none) answers with a job and is recorded for
 * restart_calls(). FALSE, the test skipped, without python3 or
 * dbus-daemon. */
static gboolean
start_systemd_mock (Fixture *f)
{
  const char *python = "/usr/bin/python3";
  const char *argv[] = { python, "-m", "dbusmock", "--session", "--template", "systemd", NULL };
  g_autoptr(GVariant) added = NULL;
  g_autoptr(GError) error = NULL;

  if (!g_file_test (python, G_FILE_TEST_IS_EXECUTABLE) || !hb_harness_start_bus (f->h, HB_BUS_SESSION))
    {
      g_test_skip ("no /usr/bin/python3 or dbus-daemon");
      return FALSE;
    }
  hb_harness_spawn (f->h, argv);
  hb_harness_wait_name_owned (f->h, "org.freedesktop.systemd1");
  added = g_dbus_connection_call_sync (f->h->client, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.DBus.Mock", "AddMethod",
                                       g_variant_new ("(sssss)", "org.freedesktop.systemd1.Manager", "RestartUnit",
                                                      "ss", "o", "ret = '/org/freedesktop/systemd1/job/1'"),
                                       NULL, G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);
  g_assert_no_error (error);
  return TRUE;
}

static void
test_restart_unit_with_cooldown (Fixture *f, gconstpointer data)
{
  guint tick, cursor;

  if (!start_systemd_mock (f))
    return;

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
/* alertmanager=: Alertmanager's client contract                       */

/* $HB_ALERTMANAGER_RESEND_MS in the tests that shorten the resend interval */
#define RESEND_MS 300

static void
set_resend_ms (guint ms)
{
  if (ms == 0)
    {
      g_unsetenv ("HB_ALERTMANAGER_RESEND_MS");
    }
  else
    {
      g_autofree char *text = g_strdup_printf ("%u", ms);

      g_setenv ("HB_ALERTMANAGER_RESEND_MS", text, TRUE);
    }
}

static gint64
parse_time (const char *text)
{
  g_autoptr(GDateTime) t = text ? g_date_time_new_from_iso8601 (text, NULL) : NULL;

  g_assert_nonnull (t);
  return g_date_time_to_unix (t) * G_USEC_PER_SEC + g_date_time_get_microsecond (t);
}

static gint64
time_member (JsonObject *alert, const char *name)
{
  return parse_time (json_object_get_string_member_with_default (alert, name, NULL));
}

static const char *
label (JsonObject *alert, const char *name)
{
  return json_object_get_string_member_with_default (json_object_get_object_member (alert, "labels"), name, "");
}

/* Asserts @alert's labels are exactly those the shipped Prometheus rules
 * give it, so that Alertmanager deduplicates the two paths. */
static void
assert_labels (JsonObject *alert, const char *alertname, const char *agent, const char *severity)
{
  JsonObject *labels = json_object_get_object_member (alert, "labels");

  g_assert_nonnull (labels);
  g_assert_cmpuint (json_object_get_size (labels), ==, 4);
  g_assert_cmpstr (label (alert, "alertname"), ==, alertname);
  g_assert_cmpstr (label (alert, "agent"), ==, agent);
  g_assert_cmpstr (label (alert, "hostname"), ==, g_get_host_name ());
  g_assert_cmpstr (label (alert, "severity"), ==, severity);
}

static void
beat (HbHarness *h, const char *id, const char *status)
{
  g_autoptr(GVariant) reply = NULL;

  if (status)
    reply = hb_call_ok (h, NULL, "Beat", g_variant_new_parsed ("(%s, {'status': <%s>})", id, status), "()");
  else
    reply = hb_call_ok (h, NULL, "Beat", g_variant_new_parsed ("(%s, @a{sv} {})", id), "()");
}

static void
unregister (HbHarness *h, const char *id)
{
  g_variant_unref (hb_call_ok (h, NULL, "Unregister", g_variant_new ("(s)", id), "()"));
}

/* ---- a libsoup receiver standing in for Alertmanager --------------- */

typedef struct {
  gint64     realtime;   /* g_get_real_time () on receipt */
  gint64     monotonic;
  JsonNode  *alerts;     /* the posted array */
  char      *authorization; /* its Authorization header, or NULL */
} Post;

typedef struct {
  GPtrArray *posts;          /* Post */
  guint      fail_first;     /* answer 500 to this many posts first */
  guint      delay_ms;       /* answer each post this late */
  guint      in_flight;
  guint      max_in_flight;
} AmReceiver;

static void
post_free (Post *p)
{
  json_node_unref (p->alerts);
  g_free (p->authorization);
  g_free (p);
}

static gboolean
on_receiver_answer (gpointer user_data)
{
  SoupServerMessage *msg = user_data;
  AmReceiver *r = g_object_get_data (G_OBJECT (msg), "receiver");

  r->in_flight--;
  soup_server_message_unpause (msg);
  g_object_unref (msg);
  return G_SOURCE_REMOVE;
}

static void
on_receiver_post (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                  gpointer user_data)
{
  AmReceiver *r = user_data;
  g_autoptr(GBytes) body = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  Post *p = g_new0 (Post, 1);

  p->realtime = g_get_real_time ();
  p->monotonic = g_get_monotonic_time ();
  g_assert_cmpstr (soup_server_message_get_method (msg), ==, "POST");
  json_parser_load_from_data (parser, g_bytes_get_data (body, NULL), (gssize) g_bytes_get_size (body), &error);
  g_assert_no_error (error);
  p->alerts = json_node_ref (json_parser_get_root (parser));
  g_assert_true (JSON_NODE_HOLDS_ARRAY (p->alerts));
  p->authorization =
    g_strdup (soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Authorization"));
  g_ptr_array_add (r->posts, p);

  soup_server_message_set_status (msg, r->posts->len <= r->fail_first ? 500 : 200, NULL);
  if (r->delay_ms)
    {
      r->in_flight++;
      r->max_in_flight = MAX (r->max_in_flight, r->in_flight);
      g_object_set_data (G_OBJECT (msg), "receiver", r);
      soup_server_message_pause (msg);
      g_timeout_add (r->delay_ms, on_receiver_answer, g_object_ref (msg));
    }
}

static SoupServer *
start_receiver (AmReceiver *r, guint16 *port)
{
  SoupServer *server = soup_server_new (NULL, NULL);
  g_autoptr(GError) error = NULL;

  r->posts = g_ptr_array_new_with_free_func ((GDestroyNotify) post_free);
  *port = hb_free_port ();
  soup_server_add_handler (server, "/api/v2/alerts", on_receiver_post, r, NULL);
  soup_server_listen_local (server, *port, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
  g_assert_no_error (error);
  return server;
}

static Post *
post_at (AmReceiver *r, guint i)
{
  return g_ptr_array_index (r->posts, i);
}

static guint
post_n_alerts (Post *p)
{
  return json_array_get_length (json_node_get_array (p->alerts));
}

static JsonObject *
post_alert (Post *p, guint i)
{
  return json_array_get_object_element (json_node_get_array (p->alerts), i);
}

/* Whether the last post says its (only) alert ended. */
static gboolean
last_post_resolved (AmReceiver *r)
{
  Post *p;

  if (r->posts->len == 0)
    return FALSE;
  p = post_at (r, r->posts->len - 1);
  return post_n_alerts (p) == 1 && time_member (post_alert (p, 0), "endsAt") <= p->realtime;
}

/* Re-sent every resend interval while the agent stays stale, each time
 * with an endsAt ahead and the same startsAt; retried on failure as
 * retries= and retry-interval= say; resolved once, then quiet. */
static void
test_alertmanager_resends_with_ends_at (Fixture *f, gconstpointer data)
{
  AmReceiver r = { .fail_first = 1 };
  g_autoptr(SoupServer) server = NULL;
  g_autofree char *config = NULL;
  gint64 starts_at = 0, last_ends = 0;
  guint16 port;
  guint n;

  set_resend_ms (RESEND_MS);
  server = start_receiver (&r, &port);
  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  /* a trailing slash is the same Alertmanager */
  config = g_strdup_printf ("\n[alert:am]\nevents=stale\nalertmanager=http://127.0.0.1:%u/\n"
                            "retry-interval=200ms\ntimeout=2s\n", port);
  start_with (f, config);

  register_stale_soon (f->h, "r");
  WAIT_UNTIL (r.posts->len >= 6);

  /* the first attempt failed: the retry comes retry-interval later */
  g_assert_cmpint (post_at (&r, 1)->monotonic - post_at (&r, 0)->monotonic, >=, 200000);
  for (guint i = 0; i < 6; i++)
    {
      Post *p = post_at (&r, i);
      JsonObject *alert;
      gint64 ends;

      g_assert_cmpuint (post_n_alerts (p), ==, 1);
      alert = post_alert (p, 0);
      assert_labels (alert, "HeartbeatAgentStale", "r", "warning");
      g_assert_nonnull (json_object_get_string_member_with_default (
                          json_object_get_object_member (alert, "annotations"), "summary", NULL));
      if (starts_at == 0)
        starts_at = time_member (alert, "startsAt");
      g_assert_cmpint (time_member (alert, "startsAt"), ==, starts_at);
      g_assert_cmpint (starts_at, <=, p->realtime);
      /* valid for a few resend intervals ahead */
      ends = time_member (alert, "endsAt");
      g_assert_cmpint (ends, >, p->realtime + 2 * RESEND_MS * 1000);
      g_assert_cmpint (ends, >=, last_ends);
      last_ends = ends;
      if (i >= 2)
        g_assert_cmpint (p->monotonic - post_at (&r, i - 1)->monotonic, >=, (RESEND_MS - 50) * 1000);
    }
  g_assert_cmpint (starts_at, !=, 0);

  /* recovered (a beat that marks it idle, so it stays healthy): told
   * once, with endsAt now, and no more after */
  beat (f->h, "r", "idle");
  WAIT_UNTIL (last_post_resolved (&r));
  {
    Post *p = post_at (&r, r.posts->len - 1);

    assert_labels (post_alert (p, 0), "HeartbeatAgentStale", "r", "warning");
    g_assert_cmpint (time_member (post_alert (p, 0), "startsAt"), ==, starts_at);
  }
  n = r.posts->len;
  hb_harness_run_for (f->h, 3 * RESEND_MS);
  g_assert_cmpuint (r.posts->len, ==, n);
  g_ptr_array_unref (r.posts);
}

/* One post in flight per agent: what changes meanwhile follows it, in
 * order, in one post (the latest state wins); a change to another alerting
 * state resolves the old alert and fires the new one. */
static void
test_alertmanager_resolve_never_overtakes (Fixture *f, gconstpointer data)
{
  AmReceiver r = { .delay_ms = 500 };
  g_autoptr(SoupServer) server = NULL;
  g_autofree char *config = NULL;
  JsonObject *a;
  guint16 port;
  gint64 starts_at;

  set_resend_ms (0);
  server = start_receiver (&r, &port);
  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  config = g_strdup_printf ("\n[alert:am]\nevents=stale,error\nalertmanager=http://127.0.0.1:%u\n", port);
  start_with (f, config);

  register_stale_soon (f->h, "flap");
  WAIT_UNTIL (r.posts->len >= 1);
  /* while the firing post is held: recovered, then an error */
  beat (f->h, "flap", NULL);
  beat (f->h, "flap", "error");
  WAIT_UNTIL (r.posts->len >= 2);
  /* an answer to the first post came before the second post */
  g_assert_cmpint (post_at (&r, 1)->monotonic - post_at (&r, 0)->monotonic, >=, 500000);

  g_assert_cmpuint (post_n_alerts (post_at (&r, 0)), ==, 1);
  a = post_alert (post_at (&r, 0), 0);
  assert_labels (a, "HeartbeatAgentStale", "flap", "warning");
  g_assert_cmpint (time_member (a, "endsAt"), >, post_at (&r, 0)->realtime);
  starts_at = time_member (a, "startsAt");

  g_assert_cmpuint (post_n_alerts (post_at (&r, 1)), ==, 2);
  a = post_alert (post_at (&r, 1), 0);
  assert_labels (a, "HeartbeatAgentStale", "flap", "warning");
  g_assert_cmpint (time_member (a, "startsAt"), ==, starts_at);
  g_assert_cmpint (time_member (a, "endsAt"), <=, post_at (&r, 1)->realtime);
  g_assert_cmpint (time_member (a, "endsAt"), >=, starts_at);
  a = post_alert (post_at (&r, 1), 1);
  assert_labels (a, "HeartbeatAgentError", "flap", "critical");
  g_assert_cmpint (time_member (a, "endsAt"), >, post_at (&r, 1)->realtime);

  /* healthy again (and idle, so it stays so) while that post is held: the
   * error ends after it */
  beat (f->h, "flap", "idle");
  WAIT_UNTIL (r.posts->len >= 3);
  g_assert_cmpuint (post_n_alerts (post_at (&r, 2)), ==, 1);
  a = post_alert (post_at (&r, 2), 0);
  assert_labels (a, "HeartbeatAgentError", "flap", "critical");
  g_assert_cmpint (time_member (a, "endsAt"), <=, post_at (&r, 2)->realtime);

  hb_harness_run_for (f->h, 700);
  g_assert_cmpuint (r.posts->len, ==, 3);
  g_assert_cmpuint (r.max_in_flight, ==, 1);
  g_ptr_array_unref (r.posts);
}

/* A restarted daemon tells Alertmanager again about the stale agents it
 * restores; a reload that drops the alertmanager= section resolves what it
 * had told. */
static void
test_alertmanager_restart_and_reload (Fixture *f, gconstpointer data)
{
  AmReceiver r = { 0 };
  g_autoptr(SoupServer) server = NULL;
  g_autofree char *config = NULL;
  guint16 port;
  guint n;

  set_resend_ms (0);
  server = start_receiver (&r, &port);
  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  config = g_strdup_printf ("\n[alert:am]\nalertmanager=http://127.0.0.1:%u\n", port);
  start_with (f, config);
  register_stale_soon (f->h, "kept");
  WAIT_UNTIL (r.posts->len >= 1);
  assert_labels (post_alert (post_at (&r, 0), 0), "HeartbeatAgentStale", "kept", "warning");

  /* stopped: nothing resolved (the alert ends at its endsAt unless the
   * daemon comes back); started again: told again at once */
  hb_harness_stop_child (f->h, f->h->daemon);
  g_assert_cmpuint (r.posts->len, ==, 1);
  g_assert_false (last_post_resolved (&r));
  hb_harness_start_daemon (f->h, 0);
  WAIT_UNTIL (r.posts->len >= 2);
  g_assert_cmpuint (post_n_alerts (post_at (&r, 1)), ==, 1);
  assert_labels (post_alert (post_at (&r, 1), 0), "HeartbeatAgentStale", "kept", "warning");
  g_assert_false (last_post_resolved (&r));

  /* reloaded without the section: resolved */
  hb_harness_write_config (f->h, hb_default_config);
  hb_harness_signal_daemon (f->h, SIGHUP);
  WAIT_UNTIL (last_post_resolved (&r));
  assert_labels (post_alert (post_at (&r, r.posts->len - 1), 0), "HeartbeatAgentStale", "kept", "warning");
  n = r.posts->len;
  hb_harness_run_for (f->h, 300);
  g_assert_cmpuint (r.posts->len, ==, n);
  g_ptr_array_unref (r.posts);
}

/* ---- a real Alertmanager -------------------------------------------- */

typedef struct {
  SoupSession *session;
  char        *base;
} Alertmanager;

static void
alertmanager_clear (Alertmanager *am)
{
  g_clear_object (&am->session);
  g_clear_pointer (&am->base, g_free);
}

static JsonNode *
alertmanager_get (Alertmanager *am, const char *path)
{
  g_autofree char *uri = g_strconcat (am->base, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", uri);
  g_autoptr(GBytes) body = soup_session_send_and_read (am->session, msg, NULL, NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();

  if (body == NULL || soup_message_get_status (msg) != 200 ||
      !json_parser_load_from_data (parser, g_bytes_get_data (body, NULL), (gssize) g_bytes_get_size (body), NULL))
    return NULL;
  return json_node_ref (json_parser_get_root (parser));
}

/* Alertmanager's active alert @alertname (NULL: any) for @agent, or NULL. */
static JsonObject *
alertmanager_active (Alertmanager *am, const char *alertname, const char *agent)
{
  g_autoptr(JsonNode) root = alertmanager_get (am, "/api/v2/alerts");
  JsonArray *alerts = root && JSON_NODE_HOLDS_ARRAY (root) ? json_node_get_array (root) : NULL;

  for (guint i = 0; alerts && i < json_array_get_length (alerts); i++)
    {
      JsonObject *a = json_array_get_object_element (alerts, i);
      JsonObject *status = json_object_get_object_member (a, "status");

      if ((alertname == NULL || g_strcmp0 (label (a, "alertname"), alertname) == 0) &&
          g_strcmp0 (label (a, "agent"), agent) == 0 &&
          g_strcmp0 (json_object_get_string_member_with_default (status, "state", ""), "active") == 0)
        return json_object_ref (a);
    }
  return NULL;
}

static gboolean
has_active_alert (Alertmanager *am, const char *alertname, const char *agent)
{
  g_autoptr(JsonObject) a = alertmanager_active (am, alertname, agent);

  return a != NULL;
}

/* alertmanager_alerts_received_total{status=@status}, -1 if unknown */
static gint64
alertmanager_received (Alertmanager *am, const char *status)
{
  g_autofree char *uri = g_strconcat (am->base, "/metrics", NULL);
  g_autofree char *prefix = g_strdup_printf ("alertmanager_alerts_received_total{status=\"%s\"", status);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", uri);
  g_autoptr(GBytes) body = soup_session_send_and_read (am->session, msg, NULL, NULL);
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  gint64 total = -1;

  if (body == NULL || soup_message_get_status (msg) != 200)
    return -1;
  text = g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], prefix))
      {
        const char *value = strrchr (lines[i], ' ');

        total = MAX (total, 0) + (gint64) g_ascii_strtod (value + 1, NULL);
      }
  return total;
}

static gboolean
alertmanager_ready (Alertmanager *am)
{
  g_autoptr(JsonNode) root = alertmanager_get (am, "/api/v2/alerts");

  return root != NULL;
}

/* Starts Debian's prometheus-alertmanager on a free port. FALSE (the test
 * skipped) if it is not installed or there is no bus. */
static gboolean
start_alertmanager (Fixture *f, Alertmanager *am)
{
  const char *binary = "/usr/bin/prometheus-alertmanager";
  g_autofree char *am_config = NULL, *storage = NULL, *config_arg = NULL, *storage_arg = NULL;
  g_autofree char *listen_arg = NULL;
  g_autoptr(GError) error = NULL;
  guint16 port = hb_free_port ();
  guint tick;

  if (!g_file_test (binary, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("prometheus-alertmanager is not installed");
      return FALSE;
    }
  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return FALSE;

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
  am->session = soup_session_new_with_options ("timeout", 5, NULL);
  am->base = g_strdup_printf ("http://127.0.0.1:%u", port);
  tick = g_timeout_add (50, on_poll_tick, NULL);
  WAIT_UNTIL (alertmanager_ready (am));
  g_source_remove (tick);
  return TRUE;
}

static void
test_alertmanager_fires_and_resolves (Fixture *f, gconstpointer data)
{
  Alertmanager am = { 0 };
  g_autoptr(JsonObject) first = NULL, later = NULL;
  g_autofree char *config = NULL;
  guint tick;

  set_resend_ms (RESEND_MS);
  if (!start_alertmanager (f, &am))
    return;
  config = g_strdup_printf ("\n[alert:am]\nevents=stale\nalertmanager=%s\n", am.base);
  start_with (f, config);
  tick = g_timeout_add (50, on_poll_tick, NULL);

  register_stale_soon (f->h, "batch");
  WAIT_UNTIL (has_active_alert (&am, "HeartbeatAgentStale", "batch"));
  first = alertmanager_active (&am, "HeartbeatAgentStale", "batch");
  g_assert_nonnull (first);
  assert_labels (first, "HeartbeatAgentStale", "batch", "warning");
  g_assert_cmpint (time_member (first, "endsAt"), >, g_get_real_time ());

  /* past the first endsAt it is still active: it was sent again */
  hb_harness_run_for (f->h, 6 * RESEND_MS);
  g_assert_cmpint (g_get_real_time (), >, time_member (first, "endsAt"));
  later = alertmanager_active (&am, "HeartbeatAgentStale", "batch");
  g_assert_nonnull (later);
  assert_labels (later, "HeartbeatAgentStale", "batch", "warning");
  g_assert_cmpint (time_member (later, "startsAt"), ==, time_member (first, "startsAt"));
  g_assert_cmpint (time_member (later, "endsAt"), >, g_get_real_time ());

  /* a beat: recovered, and Alertmanager is told the alert ended */
  beat (f->h, "batch", NULL);
  WAIT_UNTIL (!has_active_alert (&am, NULL, "batch"));

  /* unregistered while stale: resolved too */
  register_stale_soon (f->h, "leaving");
  WAIT_UNTIL (has_active_alert (&am, "HeartbeatAgentStale", "leaving"));
  unregister (f->h, "leaving");
  WAIT_UNTIL (!has_active_alert (&am, NULL, "leaving"));
  g_source_remove (tick);
  alertmanager_clear (&am);
}

/* A job whose last run failed raises HeartbeatJobFailed, as the shipped
 * rule does (not HeartbeatAgentError), so Alertmanager deduplicates the
 * two paths; a run that ends well resolves it. */
static void
test_alertmanager_job_failed (Fixture *f, gconstpointer data)
{
  Alertmanager am = { 0 };
  g_autoptr(JsonObject) firing = NULL;
  g_autofree char *config = NULL;
  guint tick;

  set_resend_ms (RESEND_MS);
  if (!start_alertmanager (f, &am))
    return;
  config = g_strdup_printf ("\n[alert:am]\nevents=error\nalertmanager=%s\n", am.base);
  start_with (f, config);
  tick = g_timeout_add (50, on_poll_tick, NULL);

  register_stale_soon (f->h, "backup");
  g_variant_unref (hb_call_ok (f->h, NULL, "StartRun", g_variant_new ("(s)", "backup"), "()"));
  g_variant_unref (hb_call_ok (f->h, NULL, "FinishRun",
                               g_variant_new_parsed ("('backup', {'success': <false>, 'exit-status': <3>})"), "()"));
  WAIT_UNTIL (has_active_alert (&am, "HeartbeatJobFailed", "backup"));
  firing = alertmanager_active (&am, "HeartbeatJobFailed", "backup");
  assert_labels (firing, "HeartbeatJobFailed", "backup", "critical");
  g_assert_false (has_active_alert (&am, "HeartbeatAgentError", "backup"));

  g_variant_unref (hb_call_ok (f->h, NULL, "FinishRun",
                               g_variant_new_parsed ("('backup', {'success': <true>})"), "()"));
  WAIT_UNTIL (!has_active_alert (&am, NULL, "backup"));
  g_source_remove (tick);
  alertmanager_clear (&am);
}

/* stale and at once healthy again, ten times: the resolve never
 * overtakes its firing post, so Alertmanager ends with nothing active
 * (the firing posts' endsAt are a few minutes ahead: nothing would end
 * them sooner) */
static void
test_alertmanager_quick_flap_resolved (Fixture *f, gconstpointer data)
{
  Alertmanager am = { 0 };
  g_autofree char *config = NULL;
  gint64 firing0, resolved0;
  guint tick;

  set_resend_ms (0);
  if (!start_alertmanager (f, &am))
    return;
  config = g_strdup_printf ("\n[alert:am]\nevents=stale\nalertmanager=%s\n", am.base);
  start_with (f, config);
  tick = g_timeout_add (20, on_poll_tick, NULL);
  /* one request each: MAX() would ask twice */
  firing0 = alertmanager_received (&am, "firing");
  firing0 = MAX (firing0, 0);
  resolved0 = alertmanager_received (&am, "resolved");
  resolved0 = MAX (resolved0, 0);

  for (guint round = 1; round <= 10; round++)
    {
      guint cursor = hb_harness_signal_cursor (f->h);

      register_stale_soon (f->h, "flap");
      hb_wait_signal (f->h, &cursor, "AgentStale", "flap", NULL, NULL);
      beat (f->h, "flap", "idle");     /* healthy, and stays so */
      WAIT_UNTIL (alertmanager_received (&am, "firing") >= firing0 + round &&
                  alertmanager_received (&am, "resolved") >= resolved0 + round);
      g_assert_cmpint (alertmanager_received (&am, "firing"), ==, firing0 + round);
      g_assert_false (has_active_alert (&am, NULL, "flap"));
    }
  hb_harness_run_for (f->h, 300);
  g_assert_false (has_active_alert (&am, NULL, "flap"));
  g_source_remove (tick);
  alertmanager_clear (&am);
}

/* A timed-out agent stays listed as timed-out, and its alert keeps firing
 * (re-sent past every endsAt) until it is unregistered. */
static void
test_alertmanager_timed_out_keeps_firing (Fixture *f, gconstpointer data)
{
  Alertmanager am = { 0 };
  g_autoptr(JsonObject) first = NULL, later = NULL;
  g_autoptr(GVariant) reply = NULL, agent = NULL;
  g_autofree char *config = NULL;
  guint tick, cursor;

  set_resend_ms (RESEND_MS);
  if (!start_alertmanager (f, &am))
    return;
  config = g_strdup_printf ("\n[alert:am]\nevents=timed-out\nalertmanager=%s\n", am.base);
  start_with (f, config);
  tick = g_timeout_add (50, on_poll_tick, NULL);

  cursor = hb_harness_signal_cursor (f->h);
  reply = hb_call_ok (f->h, NULL, "Register",
                      g_variant_new_parsed ("('slow', {'timeout-after-usec': <uint64 300000>})"), "()");
  hb_wait_signal (f->h, &cursor, "AgentTimedOut", "slow", NULL, NULL);
  WAIT_UNTIL (has_active_alert (&am, "HeartbeatAgentTimedOut", "slow"));
  first = alertmanager_active (&am, "HeartbeatAgentTimedOut", "slow");
  g_assert_nonnull (first);
  assert_labels (first, "HeartbeatAgentTimedOut", "slow", "critical");

  hb_harness_run_for (f->h, 6 * RESEND_MS);
  g_assert_cmpint (g_get_real_time (), >, time_member (first, "endsAt"));
  agent = hb_harness_get_agent (f->h, "slow");
  g_assert_cmpstr (hb_dict_string (agent, "state"), ==, "timed-out");
  later = alertmanager_active (&am, "HeartbeatAgentTimedOut", "slow");
  g_assert_nonnull (later);
  g_assert_cmpint (time_member (later, "endsAt"), >, g_get_real_time ());

  unregister (f->h, "slow");
  WAIT_UNTIL (!has_active_alert (&am, NULL, "slow"));
  g_source_remove (tick);
  alertmanager_clear (&am);
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

/* ------------------------------------------------------------------ */
/* What a careless program or receiver must not cost (issue 25)        */

/* The daemon's log: a wrapper in front of it ($HB_DAEMON_WRAPPER, see
 * hb-harness.c) sends its stdout and stderr, where GLib writes outside the
 * journal, to a file. Starts the daemon with @extra_config and
 * $HB_ALERTS_MAX_PENDING at @max_pending (0: unset); returns the file. */
static char *
start_logged (Fixture *f, const char *extra_config, guint max_pending)
{
  g_autofree char *log = g_build_filename (f->h->tmpdir, "daemon.log", NULL);
  g_autofree char *wrapper = g_build_filename (f->h->tmpdir, "log-wrapper.sh", NULL);
  g_autofree char *script = g_strdup_printf ("#!/bin/sh\nexec \"$@\" >>'%s' 2>&1\n", log);
  g_autofree char *old = g_strdup (g_getenv ("HB_DAEMON_WRAPPER"));
  g_autofree char *words = NULL;
  g_autoptr(GError) error = NULL;

  g_file_set_contents (wrapper, script, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (wrapper, 0755), ==, 0);
  words = old && *old ? g_strconcat (wrapper, " ", old, NULL) : g_strdup (wrapper);
  g_setenv ("HB_DAEMON_WRAPPER", words, TRUE);
  if (max_pending)
    {
      g_autofree char *text = g_strdup_printf ("%u", max_pending);

      g_setenv ("HB_ALERTS_MAX_PENDING", text, TRUE);
    }
  start_with (f, extra_config);
  g_unsetenv ("HB_ALERTS_MAX_PENDING");
  if (old)
    g_setenv ("HB_DAEMON_WRAPPER", old, TRUE);
  else
    g_unsetenv ("HB_DAEMON_WRAPPER");
  return g_steal_pointer (&log);
}

static char *
read_text (const char *path)
{
  char *contents = NULL;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return g_strdup ("");
  return contents;
}

static guint
count_substrings (const char *text, const char *needle)
{
  guint n = 0;

  for (const char *p = strstr (text, needle); p; p = strstr (p + strlen (needle), needle))
    n++;
  return n;
}

static gboolean
log_contains (const char *path, const char *needle)
{
  g_autofree char *text = read_text (path);

  return strstr (text, needle) != NULL;
}

static guint
log_count (const char *path, const char *needle)
{
  g_autofree char *text = read_text (path);

  return count_substrings (text, needle);
}

/* A field of /proc/PID/status, in kB (VmHWM: the peak resident size). */
static guint64
proc_status_kb (GPid pid, const char *field)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", (int) pid);
  g_autofree char *text = read_text (path);
  const char *line = strstr (text, field);

  g_assert_nonnull (line);
  return g_ascii_strtoull (line + strlen (field), NULL, 10);
}

/* The fds @pid holds: all, or only pipes (what a program's output takes). */
static guint
count_fds (GPid pid, gboolean pipes)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/fd", (int) pid);
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)))
    {
      g_autofree char *fd = g_build_filename (path, name, NULL);
      g_autofree char *target = g_file_read_link (fd, NULL);

      if (!pipes || (target && g_str_has_prefix (target, "pipe:")))
        n++;
    }
  return n;
}

/* Whether @pid has ended (gone, or a zombie its new parent has yet to
 * reap). */
static gboolean
process_ended (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *stat = NULL;
  const char *paren;

  if (kill (pid, 0) < 0 && errno == ESRCH)
    return TRUE;
  stat = read_text (path);
  paren = strrchr (stat, ')');
  return paren == NULL || g_str_has_prefix (paren, ") Z") || g_str_has_prefix (paren, ") X");
}

static char *
write_script (Fixture *f, const char *name, const char *text)
{
  g_autofree char *path = g_build_filename (f->h->tmpdir, name, NULL);
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (path, 0755), ==, 0);
  return g_steal_pointer (&path);
}

/* The pids the forking scripts wrote (files "NAME.PID" in @dir). */
static GArray *
read_pids (const char *dir, const char *prefix)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  GArray *pids = g_array_new (FALSE, FALSE, sizeof (GPid));
  const char *name;

  g_assert_nonnull (d);
  while ((name = g_dir_read_name (d)))
    if (g_str_has_prefix (name, prefix) && !g_str_has_suffix (name, ".tmp"))
      {
        g_autofree char *path = g_build_filename (dir, name, NULL);
        g_autofree char *text = read_text (path);
        GPid pid = (GPid) g_ascii_strtoll (text, NULL, 10);

        g_assert_cmpint (pid, >, 1);
        g_array_append_val (pids, pid);
      }
  return pids;
}

static guint
count_pid_files (const char *dir, const char *prefix)
{
  g_autoptr(GArray) pids = read_pids (dir, prefix);

  return pids->len;
}

static gboolean
all_ended (GArray *pids)
{
  for (guint i = 0; i < pids->len; i++)
    if (!process_ended (g_array_index (pids, GPid, i)))
      return FALSE;
  return TRUE;
}

static void
kill_all (GArray *pids)
{
  for (guint i = 0; i < pids->len; i++)
    kill (g_array_index (pids, GPid, i), SIGKILL);
}

typedef struct {
  guint  requests;
  char  *last_body;
} Counter;

static void
on_count (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  Counter *c = user_data;
  g_autoptr(GBytes) body = soup_message_body_flatten (soup_server_message_get_request_body (msg));

  c->requests++;
  g_free (c->last_body);
  c->last_body = g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
  soup_server_message_set_status (msg, 200, NULL);
}

static SoupServer *
start_server (guint16 *port)
{
  SoupServer *server = soup_server_new (NULL, NULL);
  g_autoptr(GError) error = NULL;

  *port = hb_free_port ();
  soup_server_listen_local (server, *port, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
  g_assert_no_error (error);
  return server;
}

/* 30 programs that leave a child behind (15 exit at once, 15 hang until
 * their timeout): no fd and no process is left once they ended, and the
 * pending slots they took are free again, so a webhook still arrives. */
static void
test_exec_forks_leave_nothing (Fixture *f, gconstpointer data)
{
  g_autoptr(SoupServer) server = NULL;
  g_autoptr(GString) config = g_string_new ("");
  g_autoptr(GArray) children = NULL, parents = NULL;
  g_autofree char *dir = NULL, *exits = NULL, *hangs = NULL, *text = NULL, *log = NULL;
  Counter hook = { 0 };
  guint16 port;
  guint tick, baseline, cursor;

  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  server = start_server (&port);
  soup_server_add_handler (server, "/hook", on_count, &hook, NULL);
  dir = g_build_filename (f->h->tmpdir, "pids", NULL);
  g_assert_cmpint (g_mkdir (dir, 0755), ==, 0);
  /* the child's pid is written once it runs; then the script ends... */
  text = g_strdup_printf ("#!/bin/sh\nsleep 900 &\necho $! > \"%s/child.$$.tmp\" && mv \"%s/child.$$.tmp\" \"%s/child.$$\"\n"
                          "echo forked\nexit 0\n", dir, dir, dir);
  exits = write_script (f, "fork-exit.sh", text);
  g_free (text);
  /* ...or waits for it, until its timeout kills it */
  text = g_strdup_printf ("#!/bin/sh\nsleep 900 &\necho $$ > \"%s/parent.$$\"\n"
                          "echo $! > \"%s/child.$$.tmp\" && mv \"%s/child.$$.tmp\" \"%s/child.$$\"\nwait\n",
                          dir, dir, dir, dir);
  hangs = write_script (f, "fork-hang.sh", text);
  for (guint i = 0; i < 30; i++)
    g_string_append_printf (config, "\n[alert:fork-%u]\nevents=stale\nagents=fork\nexec=%s\ntimeout=1s\n",
                            i, i % 2 ? hangs : exits);
  g_string_append_printf (config, "\n[alert:hook]\nevents=stale\nagents=hook\nwebhook=http://127.0.0.1:%u/hook\n"
                          "timeout=5s\n", port);
  /* 30 slots: before the fix, the programs kept all of them */
  log = start_logged (f, config->str, 30);

  /* the daemon's fds once it serves calls */
  cursor = hb_harness_signal_cursor (f->h);
  g_variant_unref (hb_call_ok (f->h, NULL, "Register", g_variant_new_parsed ("('warm-up', @a{sv} {})"), "()"));
  hb_wait_signal (f->h, &cursor, "AgentRegistered", "warm-up", NULL, NULL);
  baseline = count_fds (f->h->daemon->pid, TRUE);
  g_test_message ("daemon fds before: %u, %u of them pipes", count_fds (f->h->daemon->pid, FALSE), baseline);

  register_stale_soon (f->h, "fork");
  tick = g_timeout_add (20, on_poll_tick, NULL);
  WAIT_UNTIL (count_pid_files (dir, "child.") == 30);
  children = read_pids (dir, "child.");
  parents = read_pids (dir, "parent.");
  g_assert_cmpuint (parents->len, ==, 15);
  WAIT_UNTIL (all_ended (children) && all_ended (parents) && count_fds (f->h->daemon->pid, TRUE) <= baseline);
  g_test_message ("daemon fds after: %u, %u of them pipes", count_fds (f->h->daemon->pid, FALSE),
                  count_fds (f->h->daemon->pid, TRUE));
  /* the hanging ones were killed at their timeout, and said so */
  WAIT_UNTIL (log_count (log, "ran too long") >= 15);
  g_assert_cmpuint (log_count (log, "ran too long"), ==, 15);

  register_stale_soon (f->h, "hook");
  WAIT_UNTIL (hook.requests >= 1);
  g_assert_nonnull (strstr (hook.last_body, "\"agent\":\"hook\""));
  g_source_remove (tick);
  kill_all (children);    /* should the test have failed: nothing stays */
  g_free (hook.last_body);
}

/* `exec yes` for 2 s: memory stays bounded, the log holds a tail of about
 * 4 KiB, and GetStatus is answered meanwhile. */
static void
test_exec_spew_bounded (Fixture *f, gconstpointer data)
{
  g_autofree char *script = NULL, *config = NULL, *log = NULL, *text = NULL;
  g_auto(GStrv) lines = NULL;
  gint64 deadline, max_latency = 0;
  guint calls = 0, n_y = 0, tick;
  guint64 hwm_kb;

  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  script = write_script (f, "spew.sh", "#!/bin/sh\necho starting\nexec yes\n");
  config = g_strdup_printf ("\n[alert:spew]\nevents=stale\nagents=spew\nexec=%s\ntimeout=2s\n", script);
  log = start_logged (f, config, 0);

  register_stale_soon (f->h, "spew");
  /* GetStatus every 10 ms or so, until the program's end is logged */
  tick = g_timeout_add (10, on_poll_tick, NULL);
  deadline = g_get_monotonic_time () + 2 * HB_WAIT_MS * (gint64) 1000;
  while (!log_contains (log, "[alert:spew] the program ran too long") && g_get_monotonic_time () < deadline)
    {
      gint64 start = g_get_monotonic_time ();

      g_variant_unref (hb_call_ok (f->h, NULL, "GetStatus", NULL, "(a{sv})"));
      max_latency = MAX (max_latency, g_get_monotonic_time () - start);
      calls++;
      g_main_context_iteration (NULL, TRUE);
    }
  g_source_remove (tick);
  g_assert_true (log_contains (log, "[alert:spew] the program ran too long"));
  hwm_kb = proc_status_kb (f->h->daemon->pid, "VmHWM:");
  g_test_message ("GetStatus: %u calls while the program ran, the slowest took %.1f ms; daemon VmHWM %"
                  G_GUINT64_FORMAT " kB", calls, (double) max_latency / 1000, hwm_kb);
  g_assert_cmpuint (calls, >, 0);
  g_assert_cmpuint (hwm_kb, <, 100 * 1024);

  /* one message with the tail: "y" lines of at most 4 KiB, and how much
   * came before them */
  text = read_text (log);
  g_assert_cmpuint (strlen (text), <, 16 * 1024);
  g_assert_cmpuint (count_substrings (text, "bytes of output before this"), ==, 1);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    if (strcmp (lines[i], "y") == 0)
      n_y++;
  g_assert_cmpuint (n_y, >, 1000);
  g_assert_cmpuint (n_y, <=, 2048);
  /* the warning carries the last line */
  g_assert_nonnull (strstr (text, "killed it and its process group: y"));
}

/* ---- webhook replies -------------------------------------------------- */

typedef struct {
  guint   requests;
  guint64 written;
  gboolean finished;
} Endless;

static char endless_chunk[65536];

static void
on_endless_wrote_chunk (SoupServerMessage *msg, gpointer user_data)
{
  soup_message_body_append (soup_server_message_get_response_body (msg), SOUP_MEMORY_STATIC,
                            endless_chunk, sizeof endless_chunk);
}

static void
on_endless_wrote_data (SoupServerMessage *msg, guint size, gpointer user_data)
{
  ((Endless *) user_data)->written += size;
}

static void
on_endless_finished (SoupServerMessage *msg, gpointer user_data)
{
  ((Endless *) user_data)->finished = TRUE;
}

static void
on_endless (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  Endless *e = user_data;
  SoupMessageBody *body = soup_server_message_get_response_body (msg);

  e->requests++;
  soup_server_message_set_status (msg, 200, NULL);
  soup_message_headers_set_encoding (soup_server_message_get_response_headers (msg), SOUP_ENCODING_CHUNKED);
  soup_message_body_set_accumulate (body, FALSE);
  soup_message_body_append (body, SOUP_MEMORY_STATIC, endless_chunk, sizeof endless_chunk);
  g_signal_connect (msg, "wrote-chunk", G_CALLBACK (on_endless_wrote_chunk), e);
  g_signal_connect (msg, "wrote-body-data", G_CALLBACK (on_endless_wrote_data), e);
  g_signal_connect (msg, "finished", G_CALLBACK (on_endless_finished), e);
}

/* A receiver that answers 200 and then a body without end: delivered, the
 * body not read (the connection closed), memory bounded. */
static void
test_webhook_endless_reply (Fixture *f, gconstpointer data)
{
  g_autoptr(SoupServer) server = NULL;
  g_autofree char *config = NULL, *log = NULL;
  Endless e = { 0 };
  guint64 hwm_kb;
  guint16 port;

  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  memset (endless_chunk, 'x', sizeof endless_chunk);
  server = start_server (&port);
  soup_server_add_handler (server, "/hook", on_endless, &e, NULL);
  config = g_strdup_printf ("\n[alert:hook]\nevents=stale\nwebhook=http://127.0.0.1:%u/hook\n"
                            "retry-interval=200ms\ntimeout=2s\n", port);
  log = start_logged (f, config, 0);

  register_stale_soon (f->h, "endless");
  WAIT_UNTIL (e.finished);
  hwm_kb = proc_status_kb (f->h->daemon->pid, "VmHWM:");
  g_test_message ("the receiver wrote %" G_GUINT64_FORMAT " bytes before the daemon closed; daemon VmHWM %"
                  G_GUINT64_FORMAT " kB", e.written, hwm_kb);
  g_assert_cmpuint (e.written, <, 64 * 1024 * 1024);
  g_assert_cmpuint (hwm_kb, <, 100 * 1024);
  /* delivered (2xx): no second attempt, nothing logged as failed */
  hb_harness_run_for (f->h, 500);
  g_assert_cmpuint (e.requests, ==, 1);
  g_assert_false (log_contains (log, "[alert:hook] http"));
  g_assert_false (log_contains (log, "giving up"));
}

typedef struct {
  guint  hook_posts;
  guint  other_requests;
  char  *other_method;
  guint16 port;
} Redirect;

static void
on_redirecting (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  Redirect *r = user_data;
  g_autofree char *to = g_strdup_printf ("http://127.0.0.1:%u/other", r->port);

  g_assert_cmpstr (soup_server_message_get_method (msg), ==, "POST");
  r->hook_posts++;
  soup_server_message_set_redirect (msg, 302, to);
}

static void
on_redirected_to (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  Redirect *r = user_data;

  r->other_requests++;
  g_free (r->other_method);
  r->other_method = g_strdup (soup_server_message_get_method (msg));
  soup_server_message_set_status (msg, 200, NULL);
}

/* A 302 is a failed attempt, logged with its status and Location, retried;
 * the other path never sees a request (libsoup would send it a GET). For a
 * webhook, or an Alertmanager (@data non-NULL). */
static void
test_redirect_not_followed (Fixture *f, gconstpointer data)
{
  gboolean am = data != NULL;
  g_autoptr(SoupServer) server = NULL;
  g_autofree char *config = NULL, *log = NULL, *text = NULL, *location = NULL;
  Redirect r = { 0 };
  guint tick;

  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  server = start_server (&r.port);
  soup_server_add_handler (server, am ? "/api/v2/alerts" : "/hook", on_redirecting, &r, NULL);
  soup_server_add_handler (server, "/other", on_redirected_to, &r, NULL);
  if (am)
    config = g_strdup_printf ("\n[alert:hook]\nevents=stale\nalertmanager=http://127.0.0.1:%u\n"
                              "retries=2\nretry-interval=100ms\ntimeout=2s\n", r.port);
  else
    config = g_strdup_printf ("\n[alert:hook]\nevents=stale\nwebhook=http://127.0.0.1:%u/hook\n"
                              "retries=2\nretry-interval=100ms\ntimeout=2s\n", r.port);
  log = start_logged (f, config, 0);

  register_stale_soon (f->h, "moved");
  tick = g_timeout_add (20, on_poll_tick, NULL);
  WAIT_UNTIL (log_contains (log, "[alert:hook] giving up") || r.other_requests > 0);
  g_source_remove (tick);
  g_test_message ("/other: %u requests (%s)", r.other_requests, r.other_method ? r.other_method : "none");
  g_assert_cmpuint (r.other_requests, ==, 0);
  g_assert_cmpuint (r.hook_posts, ==, 2);
  text = read_text (log);
  location = g_strdup_printf ("Location: http://127.0.0.1:%u/other", r.port);
  g_assert_nonnull (strstr (text, "HTTP 302"));
  g_assert_nonnull (strstr (text, location));
  g_assert_nonnull (strstr (text, "after 2 attempts"));
  g_free (r.other_method);
}

/* ---- drops ------------------------------------------------------------ */

static void
on_hang (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  (*(guint *) user_data)++;
  soup_server_message_pause (msg);     /* never answered */
}

/* The deliveries the summaries of @text say were dropped, and (in
 * *@n_lines) how many summaries said so. */
static guint
summed_drops (const char *text, guint *n_lines)
{
  static const char needle[] = "dropped ";
  guint total = 0;

  *n_lines = 0;
  for (const char *p = strstr (text, needle); p; p = strstr (p + 1, needle))
    {
      char *end;
      guint64 n = g_ascii_strtoull (p + strlen (needle), &end, 10);

      if (end != p + strlen (needle) && g_str_has_prefix (end, " more deliveries in the last "))
        {
          total += (guint) n;
          (*n_lines)++;
        }
    }
  return total;
}

/* With every slot taken, 118 drops: one line for the first, then the
 * rest summed up, at most once per interval ($HB_ALERTS_DROP_SUMMARY_MS,
 * here 2 s rather than 10), not a line each. (The drops come within a
 * moment, so one summary says all; on a machine slow enough to spread
 * them over more than an interval, two or three may.) */
static void
test_drops_summarized (Fixture *f, gconstpointer data)
{
  g_autoptr(SoupServer) server = NULL;
  g_autoptr(GString) config = g_string_new ("");
  g_autofree char *log = NULL, *text = NULL;
  guint hanging = 0, tick, lines = 0;
  guint16 port;

  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  server = start_server (&port);
  soup_server_add_handler (server, "/hang", on_hang, &hanging, NULL);
  for (guint i = 0; i < 40; i++)
    g_string_append_printf (config, "\n[alert:hang-%u]\nevents=stale\nwebhook=http://127.0.0.1:%u/hang\n"
                            "retries=1\ntimeout=1min\n", i, port);
  g_setenv ("HB_ALERTS_DROP_SUMMARY_MS", "2000", TRUE);
  log = start_logged (f, config->str, 2);
  g_unsetenv ("HB_ALERTS_DROP_SUMMARY_MS");

  /* 3 agents × 40 sections: 2 deliveries hang, 118 are dropped */
  register_stale_soon (f->h, "drop-1");
  register_stale_soon (f->h, "drop-2");
  register_stale_soon (f->h, "drop-3");
  tick = g_timeout_add (20, on_poll_tick, NULL);
  WAIT_UNTIL ((g_free (text), text = read_text (log), summed_drops (text, &lines) == 117));
  g_source_remove (tick);
  g_test_message ("%s", text);
  g_assert_cmpuint (hanging, ==, 2);
  g_assert_cmpuint (count_substrings (text, "already waiting; dropping this one"), ==, 1);
  g_assert_cmpuint (lines, >=, 1);
  g_assert_cmpuint (lines, <=, 3);
  g_assert_nonnull (strstr (text, "more deliveries in the last 2 s"));
}

/* ---- the agent's output ----------------------------------------------- */

/* An agent whose metadata holds "output": its last 4 KiB, cut at a
 * character, are the webhook's "output" and the program's $HB_OUTPUT; an
 * agent without one has neither. */
static void
test_output_tail (Fixture *f, gconstpointer data)
{
  g_autoptr(SoupServer) server = NULL;
  g_autoptr(GString) output = g_string_new ("");
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *config = NULL, *script = NULL, *text = NULL, *expected = NULL, *got = NULL, *log = NULL;
  g_autofree char *out_file = NULL, *none_file = NULL;
  Receiver r = { g_ptr_array_new_with_free_func (g_free), g_array_new (FALSE, FALSE, sizeof (gint64)) };
  JsonObject *o;
  gsize start;
  guint16 port;
  guint tick;

  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  server = start_server (&port);
  soup_server_add_handler (server, "/hook", on_hook, &r, NULL);
  out_file = g_build_filename (f->h->tmpdir, "HB_OUTPUT.out", NULL);
  none_file = g_build_filename (f->h->tmpdir, "HB_OUTPUT.none", NULL);
  text = g_strdup_printf ("#!/bin/sh\nf='%s/HB_OUTPUT.'$HB_AGENT\n"
                          "if [ \"${HB_OUTPUT+set}\" = set ]; then printf '%%s' \"$HB_OUTPUT\"; else printf unset; fi"
                          " > \"$f.tmp\" && mv \"$f.tmp\" \"$f\"\n"
                          "echo \"no space left for $HB_AGENT\" >&2\nexit 3\n", f->h->tmpdir);
  script = write_script (f, "output.sh", text);
  config = g_strdup_printf ("\n[alert:hook]\nevents=stale\nwebhook=http://127.0.0.1:%u/hook\nretry-interval=200ms\n"
                            "\n[alert:run]\nevents=stale\nexec=%s\n", port, script);
  log = start_logged (f, config, 0);

  /* 10,200 bytes of "€" (3 bytes each) after a first line: the last 4096
   * begin inside a character, which is left out */
  g_string_append (output, "first line\n");
  for (guint i = 0; i < 3400; i++)
    g_string_append (output, "\xe2\x82\xac");
  g_string_append (output, "\nexit status 2\n");
  start = output->len - 4096;
  while ((output->str[start] & 0xC0) == 0x80)
    start++;
  expected = g_strdup (output->str + start);
  g_assert_cmpuint (strlen (expected), ==, 4095);
  g_assert_true (g_utf8_validate (expected, -1, NULL));

  g_variant_unref (hb_call_ok (f->h, NULL, "Register",
                               g_variant_new_parsed ("('out', {'stale-after-usec': <uint64 200000>,"
                                                     " 'metadata': <{'output': <%s>}>})", output->str), "()"));
  register_stale_soon (f->h, "none");
  tick = g_timeout_add (20, on_poll_tick, NULL);
  WAIT_UNTIL (r.bodies->len >= 2 && g_file_test (out_file, G_FILE_TEST_EXISTS) &&
              g_file_test (none_file, G_FILE_TEST_EXISTS));
  g_source_remove (tick);

  for (guint i = 0; i < 2; i++)
    {
      json_parser_load_from_data (parser, g_ptr_array_index (r.bodies, i), -1, &error);
      g_assert_no_error (error);
      o = json_node_get_object (json_parser_get_root (parser));
      if (g_strcmp0 (json_object_get_string_member (o, "agent"), "out") == 0)
        g_assert_cmpstr (json_object_get_string_member_with_default (o, "output", NULL), ==, expected);
      else
        g_assert_false (json_object_has_member (o, "output"));
    }
  got = read_text (out_file);
  g_assert_cmpstr (got, ==, expected);
  g_free (got);
  got = read_text (none_file);
  g_assert_cmpstr (got, ==, "unset");
  /* a failing program's warning says why, with its last line */
  tick = g_timeout_add (20, on_poll_tick, NULL);
  WAIT_UNTIL (log_contains (log, "[alert:run] the program exited with status 3: no space left for out") &&
              log_contains (log, "[alert:run] the program exited with status 3: no space left for none"));
  g_source_remove (tick);
  g_ptr_array_unref (r.bodies);
  g_array_unref (r.times);
}

/* ------------------------------------------------------------------ */
/* The reason in every payload; paused agents (issue 24)               */

static void
on_hook_ok (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer user_data)
{
  GPtrArray *bodies = user_data;
  g_autoptr(GBytes) body = soup_message_body_flatten (soup_server_message_get_request_body (msg));

  g_ptr_array_add (bodies, g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body)));
  soup_server_message_set_status (msg, 200, NULL);
}

/* A job whose run failed with exit status 3: its reason (the status and
 * the last line of its output) in $HB_REASON, the webhook's "reason" and
 * the Alertmanager annotation "reason" and description. */
static void
test_reason_in_payloads (Fixture *f, gconstpointer data)
{
  const char *expected = "exit status 3: rsync: disk full";
  AmReceiver am = { 0 };
  g_autoptr(SoupServer) am_server = NULL;
  g_autoptr(SoupServer) hook = soup_server_new (NULL, NULL);
  g_autoptr(GPtrArray) bodies = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *script = NULL, *out = NULL, *contents = NULL, *config = NULL, *line = NULL;
  g_autofree char *description_end = NULL;
  guint16 am_port, hook_port = hb_free_port ();
  JsonObject *o, *alert, *annotations;
  const char *description;
  guint tick;

  set_resend_ms (0);
  am_server = start_receiver (&am, &am_port);
  soup_server_add_handler (hook, "/hook", on_hook_ok, bodies, NULL);
  g_assert_true (soup_server_listen_local (hook, hook_port, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  g_assert_no_error (error);
  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    {
      g_ptr_array_unref (am.posts);
      return;
    }
  script = g_build_filename (f->h->tmpdir, "alert.sh", NULL);
  out = g_build_filename (f->h->tmpdir, "alert.env", NULL);
  contents = g_strdup_printf ("#!/bin/sh\nenv | grep -E '^HB_' | sort > '%s.tmp' && mv '%s.tmp' '%s'\n", out, out, out);
  g_file_set_contents (script, contents, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (script, 0755), ==, 0);
  config = g_strdup_printf ("\n[alert:run]\nevents=error\nexec=%s\n"
                            "\n[alert:hook]\nevents=error\nwebhook=http://127.0.0.1:%u/hook\n"
                            "\n[alert:am]\nevents=error\nalertmanager=http://127.0.0.1:%u\n",
                            script, hook_port, am_port);
  start_with (f, config);

  g_variant_unref (hb_call_ok (f->h, NULL, "Register", g_variant_new_parsed ("('backup', @a{sv} {})"), "()"));
  g_variant_unref (hb_call_ok (f->h, NULL, "StartRun", g_variant_new ("(s)", "backup"), "()"));
  g_variant_unref (hb_call_ok (f->h, NULL, "FinishRun",
                               g_variant_new_parsed ("('backup', {'success': <false>, 'exit-status': <3>,"
                                                     " 'output': <'copying\\nrsync: disk full\\n'>})"), "()"));
  tick = g_timeout_add (20, on_poll_tick, NULL);
  WAIT_UNTIL (g_file_test (out, G_FILE_TEST_EXISTS) && bodies->len >= 1 && am.posts->len >= 1);
  g_source_remove (tick);

  /* exec= */
  g_clear_pointer (&contents, g_free);
  g_file_get_contents (out, &contents, NULL, &error);
  g_assert_no_error (error);
  line = g_strdup_printf ("HB_REASON=%s\n", expected);
  g_assert_nonnull (strstr (contents, line));
  g_assert_nonnull (strstr (contents, "HB_EVENT=error\n"));

  /* webhook= */
  json_parser_load_from_data (parser, g_ptr_array_index (bodies, 0), -1, &error);
  g_assert_no_error (error);
  o = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (o, "event"), ==, "error");
  g_assert_cmpstr (json_object_get_string_member (o, "reason"), ==, expected);

  /* alertmanager= */
  alert = post_alert (post_at (&am, 0), 0);
  assert_labels (alert, "HeartbeatJobFailed", "backup", "critical");
  annotations = json_object_get_object_member (alert, "annotations");
  g_assert_cmpstr (json_object_get_string_member (annotations, "reason"), ==, expected);
  description = json_object_get_string_member (annotations, "description");
  description_end = g_strdup_printf ("Reason: %s", expected);
  g_assert_true (g_str_has_suffix (description, description_end));
  g_ptr_array_unref (am.posts);
}

/* A paused agent raises nothing, restarts included: not when its stale
 * threshold passes, not when it reports an error. A later agent's
 * restart shows the daemon got that far: the daemon's calls to systemd
 * reach it in order. */
static void
test_paused_runs_nothing (Fixture *f, gconstpointer data)
{
  g_autoptr(GVariant) reply = NULL, agent = NULL;
  guint tick, cursor;

  if (!start_systemd_mock (f))
    return;

  start_with (f, "\n[alert:quiet]\nevents=stale,error,gone,timed-out\nagents=quiet\nrestart-unit=quiet.service\n"
                 "cooldown=1h\n"
                 "\n[alert:loud]\nevents=stale\nagents=loud\nrestart-unit=loud.service\ncooldown=1h\n");
  cursor = hb_harness_signal_cursor (f->h);

  /* paused before any deadline can pass, then registered again (by its
   * owner: the pause stays) with a short threshold, and an error */
  g_variant_unref (hb_call_ok (f->h, NULL, "Register",
                               g_variant_new_parsed ("('quiet', {'stale-after-usec': <uint64 3600000000>})"), "()"));
  g_variant_unref (hb_call_ok (f->h, NULL, "Pause",
                               g_variant_new_parsed ("('quiet', {'reason': <'maintenance'>})"), "()"));
  register_stale_soon (f->h, "quiet");
  beat (f->h, "quiet", "error");
  reply = hb_call_ok (f->h, NULL, "GetAgent", g_variant_new ("(s)", "quiet"), "(a{sv})");
  agent = g_variant_get_child_value (reply, 0);
  g_assert_cmpstr (hb_dict_string (agent, "state"), ==, "paused");

  /* later, and not paused: stale, restarted */
  register_stale_soon (f->h, "loud");
  hb_wait_signal (f->h, &cursor, "AgentStale", "loud", NULL, NULL);
  tick = g_timeout_add (20, on_poll_tick, NULL);
  WAIT_UNTIL (restart_calls (f->h, "loud.service") == 1);
  g_source_remove (tick);
  g_assert_cmpuint (restart_calls (f->h, "quiet.service"), ==, 0);
  g_assert_null (hb_harness_find_signal (f->h, 0, "AgentStale", "quiet", NULL, NULL, NULL));
}

/* Pausing resolves what Alertmanager holds for the agent (a stale agent,
 * and a job whose last run failed, which the state alone does not say),
 * and nothing fires while it is paused; resumed, it is judged again. */
static void
test_pause_resolves_alertmanager (Fixture *f, gconstpointer data)
{
  AmReceiver r = { 0 };
  g_autoptr(SoupServer) server = NULL;
  g_autofree char *config = NULL;
  guint16 port;
  guint n;

  set_resend_ms (0);
  server = start_receiver (&r, &port);
  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    {
      g_ptr_array_unref (r.posts);
      return;
    }
  config = g_strdup_printf ("\n[alert:am]\nalertmanager=http://127.0.0.1:%u\n", port);
  start_with (f, config);

  /* stale, firing; paused: resolved */
  register_stale_soon (f->h, "batch");
  WAIT_UNTIL (r.posts->len >= 1);
  assert_labels (post_alert (post_at (&r, 0), 0), "HeartbeatAgentStale", "batch", "warning");
  g_assert_false (last_post_resolved (&r));
  g_variant_unref (hb_call_ok (f->h, NULL, "Pause", g_variant_new_parsed ("('batch', @a{sv} {})"), "()"));
  WAIT_UNTIL (last_post_resolved (&r));
  assert_labels (post_alert (post_at (&r, r.posts->len - 1), 0), "HeartbeatAgentStale", "batch", "warning");

  /* a failed job, firing; paused: resolved, though its last run still failed */
  g_variant_unref (hb_call_ok (f->h, NULL, "Register", g_variant_new_parsed ("('backup', @a{sv} {})"), "()"));
  g_variant_unref (hb_call_ok (f->h, NULL, "FinishRun",
                               g_variant_new_parsed ("('backup', {'success': <false>, 'exit-status': <2>})"), "()"));
  n = r.posts->len;
  WAIT_UNTIL (r.posts->len > n);
  assert_labels (post_alert (post_at (&r, n), 0), "HeartbeatJobFailed", "backup", "critical");
  g_assert_false (last_post_resolved (&r));
  g_variant_unref (hb_call_ok (f->h, NULL, "Pause", g_variant_new_parsed ("('backup', @a{sv} {})"), "()"));
  WAIT_UNTIL (last_post_resolved (&r));
  assert_labels (post_alert (post_at (&r, r.posts->len - 1), 0), "HeartbeatJobFailed", "backup", "critical");

  /* resumed: judged afresh, so the failed job fires again */
  n = r.posts->len;
  g_variant_unref (hb_call_ok (f->h, NULL, "Resume", g_variant_new ("(s)", "backup"), "()"));
  WAIT_UNTIL (r.posts->len > n);
  assert_labels (post_alert (post_at (&r, n), 0), "HeartbeatJobFailed", "backup", "critical");
  g_assert_false (last_post_resolved (&r));
  g_ptr_array_unref (r.posts);
}

/* ------------------------------------------------------------------ */
/* https (issue 23): ca-file=, token-file=, several Alertmanagers      */

/* The test CA of tests/tls/make-test-ca.sh, made in the harness's
 * directory; NULL (the test skipped) without openssl or python3. */
static char *
make_test_ca (Fixture *f)
{
  const char *root = g_getenv ("HB_SOURCE_ROOT");
  g_autofree char *script = NULL;
  g_autofree char *openssl = g_find_program_in_path ("openssl");
  char *dir = g_build_filename (f->h->tmpdir, "tls", NULL);
  g_autoptr(GError) error = NULL;
  int status = -1;

  if (openssl == NULL || !g_file_test ("/usr/bin/python3", G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("no openssl to make the test CA, or no /usr/bin/python3 for the TLS relay");
      g_free (dir);
      return NULL;
    }
  g_assert_nonnull (root);
  script = g_build_filename (root, "tests", "tls", "make-test-ca.sh", NULL);
  {
    const char *argv[] = { "/bin/sh", script, dir, NULL };

    g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL, &status, &error);
  }
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  return dir;
}

/* https in front of a plain server of the test: a relay in
 * /usr/bin/python3 (its ssl module) with the test CA's server certificate
 * for localhost and 127.0.0.1, forwarding each POST (its path, headers
 * and body) to the plain port and the status back. The test process
 * itself never makes a TLS handshake: gnutls's thread-local storage,
 * dlopen()ed with glib-networking, crashes LeakSanitizer's tracer at exit
 * under ASan (GCC 12). */
static const char tls_relay_py[] =
  "import http.client, http.server, ssl, sys\n"
  "cert, key, port, target, ready = sys.argv[1:6]\n"
  "class Relay(http.server.BaseHTTPRequestHandler):\n"
  "    protocol_version = 'HTTP/1.1'\n"
  "    def setup(self):\n"
  "        self.request.do_handshake()\n"
  "        super().setup()\n"
  "    def do_POST(self):\n"
  "        body = self.rfile.read(int(self.headers.get('Content-Length', '0')))\n"
  "        headers = {k: v for k, v in self.headers.items()\n"
  "                   if k.lower() not in ('host', 'connection', 'content-length')}\n"
  "        upstream = http.client.HTTPConnection('127.0.0.1', int(target), timeout=300)\n"
  "        upstream.request('POST', self.path, body, headers)\n"
  "        reply = upstream.getresponse()\n"
  "        data = reply.read()\n"
  "        upstream.close()\n"
  "        self.send_response(reply.status)\n"
  "        self.send_header('Content-Length', str(len(data)))\n"
  "        self.end_headers()\n"
  "        self.wfile.write(data)\n"
  "    def log_message(self, format, *args):\n"
  "        pass\n"
  "class Server(http.server.ThreadingHTTPServer):\n"
  "    def handle_error(self, request, address):\n"
  "        sys.stderr.write('tls-relay %s: %s\\n' % (port, sys.exc_info()[1]))\n"
  "context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
  "context.load_cert_chain(cert, key)\n"
  "server = Server(('127.0.0.1', int(port)), Relay)\n"
  "server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)\n"
  "open(ready, 'w').close()\n"
  "server.serve_forever()\n";

/* Starts the relay: https on @port to http on @target; waits (bounded)
 * until it listens. Stopped by PID with the harness. */
static HbChild *
start_tls_relay (Fixture *f, const char *dir, guint16 port, guint16 target)
{
  g_autofree char *script = g_build_filename (f->h->tmpdir, "tls-relay.py", NULL);
  g_autofree char *cert = g_build_filename (dir, "server.pem", NULL);
  g_autofree char *key = g_build_filename (dir, "server-key.pem", NULL);
  g_autofree char *port_text = g_strdup_printf ("%u", port);
  g_autofree char *target_text = g_strdup_printf ("%u", target);
  g_autofree char *ready = g_strdup_printf ("%s/tls-relay-%u.ready", f->h->tmpdir, port);
  const char *argv[] = { "/usr/bin/python3", script, cert, key, port_text, target_text, ready, NULL };
  g_autoptr(GError) error = NULL;
  HbChild *child;
  guint tick;

  g_file_set_contents (script, tls_relay_py, -1, &error);
  g_assert_no_error (error);
  child = hb_harness_spawn (f->h, argv);
  tick = g_timeout_add (20, on_poll_tick, NULL);
  WAIT_UNTIL (g_file_test (ready, G_FILE_TEST_EXISTS) || child->exited);
  g_source_remove (tick);
  g_assert_false (child->exited);
  return child;
}

typedef struct {
  guint  n;
  char  *authorization;   /* of the last request, or NULL */
  char  *body;            /* of the last request */
} Hook;

static void
on_hook_request (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
               gpointer user_data)
{
  Hook *k = user_data;
  g_autoptr(GBytes) body = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  const char *authorization =
    soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Authorization");

  k->n++;
  g_free (k->authorization);
  k->authorization = g_strdup (authorization);
  g_free (k->body);
  k->body = g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
  soup_server_message_set_status (msg, 200, NULL);
}

static void
write_private (const char *path, const char *text)
{
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (path, 0600), ==, 0);
}

/* webhook= over https: delivered with ca-file= (the test CA) and the
 * token of token-file=; without ca-file= the system trust store does not
 * know the test CA: nothing reaches the server, and the log says which
 * alert, which URL and why, at each attempt. The untrusted section posts
 * after the trusted one was delivered, to the same server: its
 * connections resume the TLS session the trusted one left in
 * glib-networking's cache (one per process), whose certificate must not
 * count as verified for it. */
static void
test_webhook_https (Fixture *f, gconstpointer data)
{
  g_autofree char *dir = make_test_ca (f);
  g_autofree char *token = NULL, *config = NULL, *log = NULL, *failed = NULL, *gave_up = NULL;
  g_autoptr(SoupServer) server = soup_server_new (NULL, NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  Hook trusted = { 0 }, untrusted = { 0 };
  guint16 plain = hb_free_port (), port;
  JsonObject *o;
  guint tick;

  if (dir == NULL)
    return;
  soup_server_add_handler (server, "/trusted", on_hook_request, &trusted, NULL);
  soup_server_add_handler (server, "/untrusted", on_hook_request, &untrusted, NULL);
  soup_server_listen_local (server, plain, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
  g_assert_no_error (error);
  port = hb_free_port ();
  start_tls_relay (f, dir, port, plain);
  token = g_build_filename (f->h->tmpdir, "hook-token", NULL);
  write_private (token, "hb-alert-token.1\n");
  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  config = g_strdup_printf ("\n[alert:trusted]\nevents=stale\nagents=web\n"
                            "webhook=https://127.0.0.1:%u/trusted\n"
                            "ca-file=%s/ca.pem\ntoken-file=%s\nretry-interval=200ms\ntimeout=5s\n"
                            "\n[alert:untrusted]\nevents=stale\nagents=other\n"
                            "webhook=https://127.0.0.1:%u/untrusted\n"
                            "retries=2\nretry-interval=200ms\ntimeout=5s\n",
                            port, dir, token, port);
  log = start_logged (f, config, 0);

  register_stale_soon (f->h, "web");
  WAIT_UNTIL (trusted.n >= 1);
  g_assert_cmpstr (trusted.authorization, ==, "Bearer hb-alert-token.1");
  json_parser_load_from_data (parser, trusted.body, -1, &error);
  g_assert_no_error (error);
  o = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (o, "alert"), ==, "trusted");
  g_assert_cmpstr (json_object_get_string_member (o, "agent"), ==, "web");

  register_stale_soon (f->h, "other");
  failed = g_strdup_printf ("[alert:untrusted] https://127.0.0.1:%u/untrusted failed (the TLS certificate of "
                            "127.0.0.1 is not signed by a trusted CA (verified against the system trust store",
                            port);
  gave_up = g_strdup_printf ("[alert:untrusted] giving up on https://127.0.0.1:%u/untrusted after 2 attempts: "
                             "the TLS certificate of 127.0.0.1 is not signed by a trusted CA", port);
  tick = g_timeout_add (20, on_poll_tick, NULL);
  WAIT_UNTIL (log_contains (log, gave_up) || untrusted.n > 0);
  g_source_remove (tick);
  g_assert_cmpuint (untrusted.n, ==, 0);
  g_assert_cmpuint (log_count (log, failed), ==, 1);
  {
    g_autofree char *text = read_text (log);
    g_auto(GStrv) lines = g_strsplit (text, "\n", -1);

    for (gsize i = 0; lines[i]; i++)
      if (strstr (lines[i], "[alert:untrusted]"))
        g_test_message ("%s", lines[i]);
  }
  /* the trusted one once: no retry after its success */
  g_assert_cmpuint (trusted.n, ==, 1);
  g_free (trusted.authorization);
  g_free (trusted.body);
}

/* ca-file= is read again at each reload: a section trusting another CA
 * (the rogue one) refuses the server, logged with the file; a reload to a
 * file that is missing is refused whole (the old configuration kept);
 * one to the test CA delivers the next alert. */
static void
test_webhook_https_reload (Fixture *f, gconstpointer data)
{
  g_autofree char *dir = make_test_ca (f);
  g_autofree char *config = NULL, *log = NULL, *refused = NULL, *missing = NULL;
  g_autoptr(SoupServer) server = soup_server_new (NULL, NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  Hook hook = { 0 };
  guint16 plain = hb_free_port (), port;
  guint tick;

  if (dir == NULL)
    return;
  soup_server_add_handler (server, "/hook", on_hook_request, &hook, NULL);
  soup_server_listen_local (server, plain, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
  g_assert_no_error (error);
  port = hb_free_port ();
  start_tls_relay (f, dir, port, plain);
  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  config = g_strdup_printf ("\n[alert:hook]\nevents=stale\nwebhook=https://127.0.0.1:%u/hook\n"
                            "ca-file=%s/rogue-ca.pem\nretries=1\ntimeout=5s\n", port, dir);
  log = start_logged (f, config, 0);

  register_stale_soon (f->h, "a");
  refused = g_strdup_printf ("[alert:hook] giving up on https://127.0.0.1:%u/hook after 1 attempts: the TLS "
                             "certificate of 127.0.0.1 is not signed by a trusted CA (verified against "
                             "ca-file=%s/rogue-ca.pem)", port, dir);
  tick = g_timeout_add (20, on_poll_tick, NULL);
  WAIT_UNTIL (log_contains (log, refused) || hook.n > 0);
  g_assert_cmpuint (hook.n, ==, 0);

  g_free (config);
  config = g_strdup_printf ("%s\n[alert:hook]\nevents=stale\nwebhook=https://127.0.0.1:%u/hook\n"
                            "ca-file=%s/missing.pem\nretries=1\ntimeout=5s\n", hb_default_config, port, dir);
  hb_harness_write_config (f->h, config);
  hb_harness_signal_daemon (f->h, SIGHUP);
  missing = g_strdup_printf ("[alert:hook] ca-file: %s/missing.pem: No such file or directory", dir);
  WAIT_UNTIL (log_contains (log, "Reloading the configuration failed") && log_contains (log, missing));

  g_free (config);
  config = g_strdup_printf ("%s\n[alert:hook]\nevents=stale\nwebhook=https://127.0.0.1:%u/hook\n"
                            "ca-file=%s/ca.pem\nretries=1\ntimeout=5s\n", hb_default_config, port, dir);
  hb_harness_write_config (f->h, config);
  hb_harness_signal_daemon (f->h, SIGHUP);
  WAIT_UNTIL (log_contains (log, "Configuration reloaded"));
  g_source_remove (tick);

  register_stale_soon (f->h, "b");
  WAIT_UNTIL (hook.n >= 1);
  json_parser_load_from_data (parser, hook.body, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (json_parser_get_root (parser)), "agent"),
                   ==, "b");
  g_free (hook.authorization);
  g_free (hook.body);
}

/* alertmanager= with two https URLs (one with a trailing slash, comma
 * and space separated): each gets the firing alert and its resolve, with
 * token-file='s token. */
static void
test_alertmanager_several (Fixture *f, gconstpointer data)
{
  g_autofree char *dir = make_test_ca (f);
  g_autofree char *config = NULL, *token = NULL;
  g_autoptr(SoupServer) server1 = NULL;
  g_autoptr(SoupServer) server2 = NULL;
  AmReceiver r1 = { 0 }, r2 = { 0 };
  guint16 plain1, plain2, port1, port2;

  if (dir == NULL)
    return;
  set_resend_ms (0);
  server1 = start_receiver (&r1, &plain1);
  server2 = start_receiver (&r2, &plain2);
  port1 = hb_free_port ();
  start_tls_relay (f, dir, port1, plain1);
  port2 = hb_free_port ();
  start_tls_relay (f, dir, port2, plain2);
  token = g_build_filename (f->h->tmpdir, "am-token", NULL);
  write_private (token, "am-token.2\n");
  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    goto out;
  config = g_strdup_printf ("\n[alert:am]\nevents=stale\nalertmanager=https://127.0.0.1:%u, https://127.0.0.1:%u/\n"
                            "ca-file=%s/ca.pem\ntoken-file=%s\nretry-interval=200ms\ntimeout=5s\n",
                            port1, port2, dir, token);
  start_with (f, config);

  register_stale_soon (f->h, "r");
  WAIT_UNTIL (r1.posts->len >= 1 && r2.posts->len >= 1);
  assert_labels (post_alert (post_at (&r1, 0), 0), "HeartbeatAgentStale", "r", "warning");
  assert_labels (post_alert (post_at (&r2, 0), 0), "HeartbeatAgentStale", "r", "warning");
  g_assert_false (last_post_resolved (&r1));
  g_assert_false (last_post_resolved (&r2));
  /* the same alert: the same startsAt */
  g_assert_cmpint (time_member (post_alert (post_at (&r1, 0), 0), "startsAt"), ==,
                   time_member (post_alert (post_at (&r2, 0), 0), "startsAt"));

  beat (f->h, "r", "idle");
  WAIT_UNTIL (last_post_resolved (&r1) && last_post_resolved (&r2));
  assert_labels (post_alert (post_at (&r1, r1.posts->len - 1), 0), "HeartbeatAgentStale", "r", "warning");
  assert_labels (post_alert (post_at (&r2, r2.posts->len - 1), 0), "HeartbeatAgentStale", "r", "warning");
  g_assert_cmpuint (r1.posts->len, ==, 2);
  g_assert_cmpuint (r2.posts->len, ==, 2);
  for (guint i = 0; i < 2; i++)
    {
      g_assert_cmpstr (post_at (&r1, i)->authorization, ==, "Bearer am-token.2");
      g_assert_cmpstr (post_at (&r2, i)->authorization, ==, "Bearer am-token.2");
    }
out:
  g_ptr_array_unref (r1.posts);
  g_ptr_array_unref (r2.posts);
}

/* One Alertmanager of three that never answers, one down: the third is
 * told at once all the same (the hanging one's attempt lasts a minute);
 * the one down fails on its own, logged with its URL, and once it is
 * back it is told at the next resend; each is told of the resolve. */
static void
test_alertmanager_one_down (Fixture *f, gconstpointer data)
{
  g_autofree char *dir = make_test_ca (f);
  g_autofree char *config = NULL, *log = NULL, *gave_up = NULL;
  g_autoptr(SoupServer) hang = soup_server_new (NULL, NULL);
  g_autoptr(SoupServer) up_server = NULL;
  g_autoptr(SoupServer) down_server = NULL;
  g_autoptr(GError) error = NULL;
  AmReceiver up = { 0 }, down = { 0 };
  guint16 hang_port = hb_free_port (), up_plain, up_port, down_plain, down_port;
  guint hanging = 0;
  guint tick;

  if (dir == NULL)
    return;
  set_resend_ms (RESEND_MS);
  soup_server_add_handler (hang, "/api/v2/alerts", on_hang, &hanging, NULL);
  soup_server_listen_local (hang, hang_port, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
  g_assert_no_error (error);
  up_server = start_receiver (&up, &up_plain);
  up_port = hb_free_port ();
  start_tls_relay (f, dir, up_port, up_plain);
  down_server = start_receiver (&down, &down_plain);
  down_port = hb_free_port ();   /* nobody listens there, for now */
  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    goto out;
  config = g_strdup_printf ("\n[alert:am]\nevents=stale\n"
                            "alertmanager=http://127.0.0.1:%u https://127.0.0.1:%u https://127.0.0.1:%u\n"
                            "ca-file=%s/ca.pem\nretries=2\nretry-interval=200ms\ntimeout=60s\n",
                            hang_port, down_port, up_port, dir);
  log = start_logged (f, config, 0);

  register_stale_soon (f->h, "r");
  WAIT_UNTIL (up.posts->len >= 1);
  assert_labels (post_alert (post_at (&up, 0), 0), "HeartbeatAgentStale", "r", "warning");
  g_assert_false (last_post_resolved (&up));
  /* the first Alertmanager has it and has not answered */
  WAIT_UNTIL (hanging == 1);

  gave_up = g_strdup_printf ("[alert:am] giving up on https://127.0.0.1:%u for r after 2 attempts: ", down_port);
  tick = g_timeout_add (20, on_poll_tick, NULL);
  WAIT_UNTIL (log_contains (log, gave_up));
  g_source_remove (tick);

  /* back: told at the next resend, the alert still firing */
  start_tls_relay (f, dir, down_port, down_plain);
  WAIT_UNTIL (down.posts->len >= 1);
  assert_labels (post_alert (post_at (&down, 0), 0), "HeartbeatAgentStale", "r", "warning");
  g_assert_false (last_post_resolved (&down));
  g_assert_cmpint (time_member (post_alert (post_at (&down, 0), 0), "startsAt"), ==,
                   time_member (post_alert (post_at (&up, 0), 0), "startsAt"));

  beat (f->h, "r", "idle");
  WAIT_UNTIL (last_post_resolved (&up) && last_post_resolved (&down));
  g_assert_cmpuint (hanging, ==, 1);
out:
  g_ptr_array_unref (up.posts);
  g_ptr_array_unref (down.posts);
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
  ADD ("alertmanager-job-failed", test_alertmanager_job_failed);
  ADD ("alertmanager-resends-with-ends-at", test_alertmanager_resends_with_ends_at);
  ADD ("alertmanager-resolve-never-overtakes", test_alertmanager_resolve_never_overtakes);
  ADD ("alertmanager-restart-and-reload", test_alertmanager_restart_and_reload);
  ADD ("alertmanager-quick-flap-resolved", test_alertmanager_quick_flap_resolved);
  ADD ("alertmanager-timed-out-keeps-firing", test_alertmanager_timed_out_keeps_firing);
  ADD ("event-log-lines", test_event_log_lines);
  ADD ("exec-forks-leave-nothing", test_exec_forks_leave_nothing);
  ADD ("exec-spew-bounded", test_exec_spew_bounded);
  ADD ("webhook-endless-reply", test_webhook_endless_reply);
  ADD ("webhook-redirect-not-followed", test_redirect_not_followed);
  g_test_add ("/alerts/alertmanager-redirect-not-followed", Fixture, "am", fixture_setup,
              test_redirect_not_followed, fixture_teardown);
  ADD ("drops-summarized", test_drops_summarized);
  ADD ("output-tail", test_output_tail);
  ADD ("reason-in-payloads", test_reason_in_payloads);
  ADD ("paused-runs-nothing", test_paused_runs_nothing);
  ADD ("pause-resolves-alertmanager", test_pause_resolves_alertmanager);
  ADD ("webhook-https", test_webhook_https);
  ADD ("webhook-https-reload", test_webhook_https_reload);
  ADD ("alertmanager-several", test_alertmanager_several);
  ADD ("alertmanager-one-down", test_alertmanager_one_down);

  return g_test_run ();
}
