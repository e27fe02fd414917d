/* test-hbctl.c: the real hbctl against the real heartbeatd on a private bus
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

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

/* ------------------------------------------------------------------ */
/* Running hbctl                                                       */

typedef struct {
  int   status;   /* exit status, or 128 + signal */
  char *out;
  char *err;
} Result;

static void
result_clear (Result *r)
{
  g_clear_pointer (&r->out, g_free);
  g_clear_pointer (&r->err, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Result, result_clear)

static GSubprocessLauncher *
launcher (HbHarness *h, GSubprocessFlags flags, const char *const *extra_env)
{
  GSubprocessLauncher *l = g_subprocess_launcher_new (flags);
  g_autofree char *address = g_strdup (h->bus_address);

  g_subprocess_launcher_set_environ (l, NULL);
  g_subprocess_launcher_setenv (l, "PATH", "/usr/local/bin:/usr/bin:/bin", TRUE);
  g_subprocess_launcher_setenv (l, "LC_ALL", "C.UTF-8", TRUE);
  g_subprocess_launcher_setenv (l, "HOME", "/", TRUE);
  g_subprocess_launcher_setenv (l, "DBUS_SESSION_BUS_ADDRESS", address ? address : "unix:path=/nonexistent", TRUE);
  for (gsize i = 0; extra_env && extra_env[i]; i += 2)
    g_subprocess_launcher_setenv (l, extra_env[i], extra_env[i + 1], TRUE);
  return l;
}

/* argv for hbctl: [setpriv … as nobody] hbctl --session ARGS */
static GStrv
hbctl_argv (gboolean as_nobody, const char *const *args)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();

  if (as_nobody)
    {
      g_autofree char *setpriv = g_find_program_in_path ("setpriv");
      g_strv_builder_add_many (b, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", NULL);
    }
  g_strv_builder_add_many (b, g_getenv ("HBCTL"), "--session", NULL);
  for (gsize i = 0; args[i]; i++)
    g_strv_builder_add (b, args[i]);
  return g_strv_builder_end (b);
}

static int
wait_status_to_code (GSubprocess *p)
{
  if (g_subprocess_get_if_exited (p))
    return g_subprocess_get_exit_status (p);
  return 128 + g_subprocess_get_term_sig (p);
}

static void
run_full (HbHarness *h, gboolean as_nobody, const char *const *env, const char *const *args, Result *r)
{
  g_autoptr(GSubprocessLauncher) l = launcher (h, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, env);
  g_auto(GStrv) argv = hbctl_argv (as_nobody, args);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) p = g_subprocess_launcher_spawnv (l, (const char *const *) argv, &error);
  g_autofree char *cmd = g_strjoinv (" ", argv);

  g_assert_no_error (error);
  /* hbctl's own calls are bounded (25 s); the test's bound is meson's */
  g_subprocess_communicate_utf8 (p, NULL, NULL, &r->out, &r->err, &error);
  g_assert_no_error (error);
  r->status = wait_status_to_code (p);
  /* (not the output of thousands of agents: the log stays readable) */
  if (strlen (r->out) + strlen (r->err) < 64 * 1024)
    g_test_message ("%s → %d\n%s%s", cmd, r->status, r->out, r->err);
  else
    g_test_message ("%s → %d (%zu bytes of output, %zu of errors)", cmd, r->status, strlen (r->out), strlen (r->err));
}

#define hbctl(h, r, ...) run_full ((h), FALSE, NULL, (const char *const[]) { __VA_ARGS__, NULL }, (r))
#define hbctl_env(h, env, r, ...) run_full ((h), FALSE, (env), (const char *const[]) { __VA_ARGS__, NULL }, (r))
#define hbctl_nobody(h, r, ...) run_full ((h), TRUE, NULL, (const char *const[]) { __VA_ARGS__, NULL }, (r))

/* Runs hbctl and asserts exit 0. */
static void
hbctl_ok_impl (HbHarness *h, const char *const *args)
{
  g_auto(Result) r = { 0 };

  run_full (h, FALSE, NULL, args, &r);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
}
#define hbctl_ok(h, ...) hbctl_ok_impl ((h), (const char *const[]) { __VA_ARGS__, NULL })

static JsonNode *
parse_json (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  return json_node_copy (json_parser_get_root (parser));
}

static GVariant *
agent (HbHarness *h, const char *id)
{
  return hb_harness_get_agent (h, id);
}

static gboolean
require_nobody (void)
{
  g_autofree char *setpriv = g_find_program_in_path ("setpriv");

  if (setpriv == NULL)
    {
      g_test_skip ("setpriv is not installed");
      return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Output                                                              */

static void
test_status_piped (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_auto(Result) r = { 0 };
  g_auto(GStrv) lines = NULL;

  if (!hb_harness_start_default (h))
    return;
  hbctl_ok (h, "register", "backup", "--task", "nightly backup");
  hbctl_ok (h, "register", "web");
  hbctl_ok (h, "beat", "web", "--status", "error");

  hbctl (h, &r, "status");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_null (strchr (r.out, '\033'));
  lines = g_strsplit (r.out, "\n", -1);
  for (const char *const *column = (const char *const[]) { "AGENT", "STATE", "PID", "RUNNING", "LAST SEEN",
                                                          "CPU", "MEM", "STATUS/TASK", NULL };
       *column; column++)
    g_assert_nonnull (strstr (lines[0], *column));
  /* problems first */
  g_assert_true (g_str_has_prefix (lines[1], "web "));
  g_assert_nonnull (strstr (lines[1], "error"));
  g_assert_true (g_str_has_prefix (lines[2], "backup "));
  g_assert_nonnull (strstr (lines[2], "healthy"));
  g_assert_nonnull (strstr (lines[2], "nightly backup"));
  g_assert_cmpstr (lines[3], ==, "");
  g_assert_true (g_str_has_prefix (lines[4], "2 agents: 1 healthy, 0 paused, 0 stale, 1 error, 0 timed-out, 0 gone, 0 no-heartbeat"));
  g_assert_nonnull (strstr (lines[4], "cpu "));
  g_assert_nonnull (strstr (lines[4], "mem "));
  g_assert_nonnull (strstr (lines[4], "disk "));
  /* over D-Bus the daemon runs here: this machine's name */
  {
    g_autofree char *host = g_strdup_printf (" · host %s · cpu ", g_get_host_name ());
    g_assert_nonnull (strstr (lines[4], host));
  }
  g_assert_nonnull (strstr (lines[4], " · load "));
  /* the daemon's own line: its version and uptime (GetStatus started-at-usec) */
  {
    g_autofree char *daemon = g_strdup_printf ("heartbeatd %s up ", g_getenv ("HB_VERSION"));

    g_assert_true (g_str_has_prefix (lines[5], daemon));
    g_assert_nonnull (strstr (lines[5], " (since "));
    g_assert_cmpstr (lines[6], ==, "");
    g_assert_null (lines[7]);
  }
  /* no declared agent: no heading for the others */
  g_assert_null (strstr (r.out, "Additional agents"));

  /* no command is status; --no-legend drops header and summary */
  result_clear (&r);
  hbctl (h, &r, "--no-legend");
  g_clear_pointer (&lines, g_strfreev);
  lines = g_strsplit (r.out, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 3);
  g_assert_true (g_str_has_prefix (lines[0], "web "));
}

static void
test_json_shapes (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_auto(Result) r = { 0 };
  g_autoptr(JsonNode) root = NULL;
  JsonObject *object, *metadata;
  JsonArray *agents;

  if (!hb_harness_start_default (h))
    return;
  hbctl_ok (h, "register", "a1", "--task", "t", "--set", "host=db1", "--set", "n=3", "--set", "ok=true");
  hbctl_ok (h, "register", "a2");

  hbctl (h, &r, "list", "--json");
  g_assert_cmpint (r.status, ==, 0);
  root = parse_json (r.out);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (root));
  agents = json_node_get_array (root);
  g_assert_cmpuint (json_array_get_length (agents), ==, 2);
  object = json_array_get_object_element (agents, 0);
  g_assert_cmpstr (json_object_get_string_member (object, "id"), ==, "a1");
  g_assert_cmpstr (json_object_get_string_member (object, "task-id"), ==, "t");
  g_assert_cmpstr (json_object_get_string_member (object, "state"), ==, "healthy");
  g_assert_cmpint (json_object_get_int_member (object, "owner-uid"), ==, 0);
  g_assert_cmpint (json_object_get_int_member (object, "stale-after-usec"), ==, HB_DEFAULT_STALE_USEC);
  g_assert_false (json_object_get_boolean_member (object, "declared"));
  metadata = json_object_get_object_member (object, "metadata");
  g_assert_nonnull (metadata);
  g_assert_cmpstr (json_object_get_string_member (metadata, "host"), ==, "db1");
  g_assert_cmpint (json_object_get_int_member (metadata, "n"), ==, 3);
  g_assert_true (json_object_get_boolean_member (metadata, "ok"));
  g_clear_pointer (&root, json_node_unref);

  result_clear (&r);
  hbctl (h, &r, "show", "a2", "--json");
  root = parse_json (r.out);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
  object = json_node_get_object (root);
  for (const char *const *key = (const char *const[]) { "id", "task-id", "state", "status", "owner-uid", "pid",
                                                        "started-at-usec", "last-activity-at-usec", "running-usec",
                                                        "idle-usec", "beats", "stale-after-usec",
                                                        "timeout-after-usec", "metadata", "declared",
                                                        "bound-to", NULL };
       *key; key++)
    g_assert_true (json_object_has_member (object, *key));
  g_assert_cmpstr (json_object_get_string_member (object, "id"), ==, "a2");
  g_clear_pointer (&root, json_node_unref);

  result_clear (&r);
  hbctl (h, &r, "status", "--json");
  root = parse_json (r.out);
  object = json_node_get_object (root);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (object, "status"), "agent-count"), ==, 2);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (object, "agents")), ==, 2);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (object, "host"),
                                               "memory-total-bytes"), >, 0);
  /* the keys of the daemon's GET /v1/host; the disk here is that of / */
  {
    JsonObject *host = json_object_get_object_member (object, "host");

    g_assert_cmpstr (json_object_get_string_member (host, "hostname"), ==, g_get_host_name ());
    g_assert_cmpstr (json_object_get_string_member (host, "disk-path"), ==, "/");
    g_assert_cmpint (json_object_get_int_member (host, "disk-total-bytes"), >, 0);
    g_assert_cmpint (json_object_get_int_member (host, "cpus"), ==, g_get_num_processors ());
    g_assert_cmpuint (json_array_get_length (json_object_get_array_member (host, "load-average")), ==, 3);
    g_assert_true (json_object_has_member (host, "cpu-percent"));
  }
}

static void
test_register_beat_idle_unregister (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) a = NULL;
  g_autoptr(GVariant) metadata = NULL;
  g_auto(Result) r = { 0 };
  const char *status = NULL;
  double progress = 0;

  if (!hb_harness_start_default (h))
    return;

  hbctl_ok (h, "register", "job", "--task", "copy", "--stale", "1h30m", "--timeout", "2d",
            "--pid", "1", "--set", "host=db1");
  a = agent (h, "job");
  g_assert_cmpstr (hb_dict_string (a, "task-id"), ==, "copy");
  g_assert_cmpuint (hb_dict_uint64 (a, "stale-after-usec"), ==, G_GUINT64_CONSTANT (5400) * G_USEC_PER_SEC);
  g_assert_cmpuint (hb_dict_uint64 (a, "timeout-after-usec"), ==, G_GUINT64_CONSTANT (172800) * G_USEC_PER_SEC);
  g_assert_cmpuint (hb_dict_uint32 (a, "pid"), ==, 1);
  g_clear_pointer (&a, g_variant_unref);

  hbctl_ok (h, "register", "short", "--stale", "90");
  a = agent (h, "short");
  g_assert_cmpuint (hb_dict_uint64 (a, "stale-after-usec"), ==, 90 * G_USEC_PER_SEC);
  g_clear_pointer (&a, g_variant_unref);
  hbctl_ok (h, "register", "shorter", "--stale", "250ms");
  a = agent (h, "shorter");
  g_assert_cmpuint (hb_dict_uint64 (a, "stale-after-usec"), ==, 250000);
  g_clear_pointer (&a, g_variant_unref);

  hbctl_ok (h, "beat", "job", "--status", "copying", "--progress", "0.5", "--set", "files=12");
  a = agent (h, "job");
  g_assert_cmpstr (hb_dict_string (a, "status"), ==, "copying");
  g_assert_cmpuint (hb_dict_uint64 (a, "beats"), ==, 1);
  metadata = hb_dict_value (a, "metadata", "a{sv}");
  g_assert_true (g_variant_lookup (metadata, "progress", "d", &progress));
  g_assert_cmpfloat (progress, ==, 0.5);
  g_assert_true (g_variant_lookup (metadata, "host", "&s", &status));
  g_clear_pointer (&a, g_variant_unref);

  hbctl_ok (h, "idle", "job");
  a = agent (h, "job");
  g_assert_cmpstr (hb_dict_string (a, "status"), ==, "idle");
  g_clear_pointer (&a, g_variant_unref);

  hbctl_ok (h, "unregister", "job");
  hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "job"), "NotFound");

  /* a bad duration is a usage error and changes nothing */
  hbctl (h, &r, "register", "x", "--stale", "5x");
  g_assert_cmpint (r.status, ==, 2);
  g_assert_cmpstr (r.err, ==, "hbctl: \"5x\" is not a duration (examples: 90, 90s, 5m, 1h30m, 250ms)\n");
  hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "x"), "NotFound");
  result_clear (&r);
  hbctl (h, &r, "frobnicate");
  g_assert_cmpint (r.status, ==, 2);
  result_clear (&r);
  hbctl (h, &r, "beat");
  g_assert_cmpint (r.status, ==, 2);
}

/* ------------------------------------------------------------------ */
/* run                                                                 */

static void
test_run_exit_codes (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) a = NULL;
  g_autoptr(GVariant) metadata = NULL;
  g_auto(Result) r = { 0 };
  gint32 exit_status = 0;
  guint cursor;

  if (!hb_harness_start_default (h))
    return;

  cursor = hb_harness_signal_cursor (h);
  hbctl (h, &r, "run", "--name", "ok-job", "--interval", "1s", "--", "sh", "-c", "exit 0");
  g_assert_cmpint (r.status, ==, 0);
  hb_wait_signal (h, &cursor, "AgentRegistered", "ok-job", NULL, NULL);
  hb_wait_signal (h, &cursor, "AgentUnregistered", "ok-job", "unregistered", NULL);
  hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "ok-job"), "NotFound");

  result_clear (&r);
  hbctl (h, &r, "run", "--name", "bad-job", "--interval", "1s", "--", "sh", "-c", "exit 1");
  g_assert_cmpint (r.status, ==, 1);
  a = agent (h, "bad-job");
  g_assert_cmpstr (hb_dict_string (a, "state"), ==, "error");
  g_assert_cmpstr (hb_dict_string (a, "status"), ==, "error");
  metadata = hb_dict_value (a, "metadata", "a{sv}");
  g_assert_true (g_variant_lookup (metadata, "exit-status", "i", &exit_status));
  g_assert_cmpint (exit_status, ==, 1);
  g_clear_pointer (&a, g_variant_unref);
  g_clear_pointer (&metadata, g_variant_unref);

  result_clear (&r);
  hbctl (h, &r, "run", "--name", "killed-job", "--interval", "1s", "--", "sh", "-c", "kill -9 $$");
  g_assert_cmpint (r.status, ==, 137);
  a = agent (h, "killed-job");
  metadata = hb_dict_value (a, "metadata", "a{sv}");
  g_assert_true (g_variant_lookup (metadata, "exit-status", "i", &exit_status));
  g_assert_cmpint (exit_status, ==, 137);
}

/* hbctl run with its output not a terminal (here: the test's pipes)
 * passes the command's output on whole and keeps its last 4 KiB in the
 * failure's metadata "output"; what the command left in the background,
 * holding the pipe, does not keep hbctl waiting. */
static void
test_run_keeps_output_tail (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) a = NULL;
  g_autoptr(GVariant) metadata = NULL;
  g_auto(Result) r = { 0 }, ok = { 0 };
  g_autofree char *pid_file = g_build_filename (h->tmpdir, "background.pid", NULL);
  g_autofree char *script = g_strdup_printf ("head -c 100000 /dev/zero | tr '\\0' y; echo; echo last words; "
                                             "echo on stderr >&2; sleep 900 & echo $! > '%s'; exit 4",
                                             pid_file);
  g_autofree char *pid_text = NULL;
  const char *output = NULL;
  gint32 exit_status = 0;

  if (!hb_harness_start_default (h))
    return;

  hbctl (h, &r, "run", "--name", "chatty", "--interval", "1s", "--", "sh", "-c", script);
  /* the background sleep is still there: hbctl did not wait for it */
  g_assert_true (g_file_get_contents (pid_file, &pid_text, NULL, NULL));
  g_assert_cmpint (kill ((pid_t) g_ascii_strtoll (pid_text, NULL, 10), 0), ==, 0);
  kill ((pid_t) g_ascii_strtoll (pid_text, NULL, 10), SIGKILL);
  g_assert_cmpint (r.status, ==, 4);
  g_assert_cmpuint (strlen (r.out), ==, 100000 + strlen ("\nlast words\n"));
  g_assert_true (g_str_has_suffix (r.out, "yyy\nlast words\n"));
  g_assert_cmpstr (r.err, ==, "on stderr\n");

  a = agent (h, "chatty");
  metadata = hb_dict_value (a, "metadata", "a{sv}");
  g_assert_true (g_variant_lookup (metadata, "exit-status", "i", &exit_status));
  g_assert_cmpint (exit_status, ==, 4);
  g_assert_true (g_variant_lookup (metadata, "output", "&s", &output));
  g_assert_cmpuint (strlen (output), ==, 4096);
  g_assert_nonnull (strstr (output, "yyy\nlast words\n"));
  g_assert_nonnull (strstr (output, "on stderr\n"));

  /* a success keeps nothing: the agent is unregistered as before */
  hbctl (h, &ok, "run", "--name", "quiet", "--interval", "1s", "--", "sh", "-c", "echo fine");
  g_assert_cmpint (ok.status, ==, 0);
  g_assert_cmpstr (ok.out, ==, "fine\n");
  hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "quiet"), "NotFound");
}

static void
on_exited (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *(gboolean *) user_data = TRUE;
}

static gboolean
on_flag_timeout (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Waits, bounded, for @p to exit; returns its code. */
static int
wait_exit (GSubprocess *p)
{
  gboolean exited = FALSE, timed_out = FALSE;
  guint timeout = g_timeout_add (HB_WAIT_MS, on_flag_timeout, &timed_out);

  g_subprocess_wait_async (p, NULL, on_exited, &exited);
  while (!exited && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (timeout);
  g_assert_false (timed_out);
  return wait_status_to_code (p);
}

static void
test_run_forwards_sigterm (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GSubprocessLauncher) l = NULL;
  g_autoptr(GSubprocess) p = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) a = NULL;
  g_auto(GStrv) argv = NULL;
  guint cursor;

  if (!hb_harness_start_default (h))
    return;

  g_autofree char *ready = g_build_filename (h->tmpdir, "looper-ready", NULL);
  g_autofree char *script = g_strdup_printf ("trap 'exit 42' TERM; touch '%s'; while :; do sleep 0.05; done", ready);
  gboolean timed_out = FALSE;
  guint timeout;

  cursor = hb_harness_signal_cursor (h);
  l = launcher (h, G_SUBPROCESS_FLAGS_NONE, NULL);
  argv = hbctl_argv (FALSE, (const char *const[]) {
    "run", "--name", "looper", "--interval", "1s", "--", "sh", "-c", script, NULL });
  p = g_subprocess_launcher_spawnv (l, (const char *const *) argv, &error);
  g_assert_no_error (error);

  /* visible in the daemon while the command runs */
  hb_wait_signal (h, &cursor, "AgentRegistered", "looper", NULL, NULL);
  a = agent (h, "looper");
  g_assert_cmpstr (hb_dict_string (a, "state"), ==, "healthy");

  /* the command has its trap in place once it created the file */
  timeout = g_timeout_add (HB_WAIT_MS, on_flag_timeout, &timed_out);
  while (!timed_out && !g_file_test (ready, G_FILE_TEST_EXISTS))
    {
      g_usleep (10000);   /* a file has no event to wait on; bounded */
      g_main_context_iteration (NULL, FALSE);
    }
  if (!timed_out)
    g_source_remove (timeout);
  g_assert_false (timed_out);

  g_subprocess_send_signal (p, SIGTERM);
  g_assert_cmpint (wait_exit (p), ==, 42);
}

/* ------------------------------------------------------------------ */
/* check                                                               */

static void
expect_check (HbHarness *h, const char *id, int code, const char *prefix)
{
  g_auto(Result) r = { 0 };

  hbctl (h, &r, "check", id);
  g_assert_cmpint (r.status, ==, code);
  g_assert_true (g_str_has_prefix (r.out, prefix));
  g_assert_cmpuint (strlen (r.out), >, strlen (prefix));
  /* one line */
  g_assert_true (strchr (r.out, '\n') == r.out + strlen (r.out) - 1);
}

static void
test_check_statuses (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autofree char *config = g_strconcat (hb_default_config, "\n[agent:declared]\n", NULL);
  guint cursor;

  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return;
  hb_harness_write_config (h, config);
  hb_harness_start_daemon (h, 0);

  hbctl_ok (h, "register", "fine");
  expect_check (h, "fine", 0, "HEARTBEAT OK - ");
  hbctl_ok (h, "register", "resting");
  hbctl_ok (h, "idle", "resting");
  expect_check (h, "resting", 0, "HEARTBEAT OK - ");

  cursor = hb_harness_signal_cursor (h);
  hbctl_ok (h, "register", "quiet", "--stale", "200ms");
  hb_wait_signal (h, &cursor, "AgentStale", "quiet", NULL, NULL);
  expect_check (h, "quiet", 1, "HEARTBEAT WARNING - ");

  hbctl_ok (h, "register", "broken");
  hbctl_ok (h, "beat", "broken", "--status", "error");
  expect_check (h, "broken", 2, "HEARTBEAT CRITICAL - ");
  expect_check (h, "declared", 2, "HEARTBEAT CRITICAL - ");

  expect_check (h, "nobody-knows", 3, "HEARTBEAT UNKNOWN - ");
  hb_harness_stop_child (h, h->daemon);
  expect_check (h, "fine", 3, "HEARTBEAT UNKNOWN - ");
}

/* ------------------------------------------------------------------ */
/* watch                                                               */

typedef struct {
  GString  *text;
  gboolean  done;
} Reader;

static void on_line (GObject *source, GAsyncResult *result, gpointer user_data);

static void
read_next (GDataInputStream *in, Reader *reader)
{
  g_data_input_stream_read_line_async (in, G_PRIORITY_DEFAULT, NULL, on_line, reader);
}

static void
on_line (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Reader *reader = user_data;
  g_autofree char *line = g_data_input_stream_read_line_finish (G_DATA_INPUT_STREAM (source), result, NULL, NULL);

  if (line == NULL)
    {
      reader->done = TRUE;
      return;
    }
  g_string_append_printf (reader->text, "%s\n", line);
  read_next (G_DATA_INPUT_STREAM (source), reader);
}

/* Runs `hbctl watch ARGS`, registers @id with a short stale threshold, and
 * waits (bounded) until the output holds @needle. Returns the output. */
static char *
watch_until (HbHarness *h, const char *mode, const char *id, const char *needle)
{
  g_autoptr(GSubprocessLauncher) l = launcher (h, G_SUBPROCESS_FLAGS_STDOUT_PIPE, NULL);
  g_auto(GStrv) argv = hbctl_argv (FALSE, (const char *const[]) { "watch", *mode ? mode : NULL, NULL });
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) p = NULL;
  g_autoptr(GDataInputStream) in = NULL;
  Reader reader = { g_string_new (NULL), FALSE };
  gboolean timed_out = FALSE;
  guint timeout;

  p = g_subprocess_launcher_spawnv (l, (const char *const *) argv, &error);
  g_assert_no_error (error);
  in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (p));
  read_next (in, &reader);

  /* watch has subscribed once it prints a probe's registration: register
   * probes until one shows (bounded), then the agent under test */
  timeout = g_timeout_add (HB_WAIT_MS, on_flag_timeout, &timed_out);
  for (guint probe = 0; !timed_out && !reader.done && strstr (reader.text->str, "probe-") == NULL; probe++)
    {
      g_autofree char *probe_id = g_strdup_printf ("probe-%u", probe);
      gint64 until = g_get_monotonic_time () + G_USEC_PER_SEC / 5;

      hbctl_ok (h, "register", probe_id);
      while (!timed_out && !reader.done && strstr (reader.text->str, "probe-") == NULL &&
             g_get_monotonic_time () < until)
        g_main_context_iteration (NULL, FALSE) || (g_usleep (1000), TRUE);
    }
  g_assert_false (timed_out);
  hbctl_ok (h, "register", id, "--stale", "500ms");

  while (!timed_out && !reader.done && strstr (reader.text->str, needle) == NULL)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (timeout);
  g_test_message ("watch %s: %s", mode, reader.text->str);
  g_assert_false (timed_out);
  g_assert_nonnull (strstr (reader.text->str, needle));

  g_subprocess_send_signal (p, SIGTERM);
  g_assert_cmpint (wait_exit (p), ==, 0);
  while (!reader.done)
    g_main_context_iteration (NULL, TRUE);
  return g_string_free (reader.text, FALSE);
}

static void
test_watch_prints_stale (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autofree char *text = NULL;
  g_autofree char *json = NULL;
  g_auto(GStrv) lines = NULL;
  gboolean found = FALSE;

  if (!hb_harness_start_default (h))
    return;

  text = watch_until (h, "", "watched", " watched  idle ");
  g_assert_nonnull (strstr (text, "  stale "));
  g_assert_nonnull (strstr (text, "  registered "));

  json = watch_until (h, "--json", "watched-json", "\"event\":\"stale\"");
  lines = g_strsplit (json, "\n", -1);
  for (gsize i = 0; lines[i] && *lines[i]; i++)
    {
      g_autoptr(JsonNode) node = parse_json (lines[i]);
      JsonObject *object = json_node_get_object (node);

      g_assert_true (json_object_has_member (object, "time"));
      g_assert_true (json_object_has_member (object, "id"));
      /* a change of state says why */
      if (g_strcmp0 (json_object_get_string_member (object, "event"), "state") == 0 &&
          g_strcmp0 (json_object_get_string_member (object, "new-state"), "stale") == 0)
        g_assert_true (g_str_has_prefix (json_object_get_string_member (object, "reason"),
                                         "no activity for more than "));
      if (g_strcmp0 (json_object_get_string_member (object, "event"), "stale") == 0 &&
          g_strcmp0 (json_object_get_string_member (object, "id"), "watched-json") == 0)
        {
          g_assert_cmpint (json_object_get_int_member (object, "idle-usec"), >=, 500000);
          found = TRUE;
        }
    }
  g_assert_true (found);
}

/* ------------------------------------------------------------------ */
/* Errors                                                              */

static void
test_error_messages (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_auto(Result) r = { 0 };

  if (!require_nobody () || !hb_harness_start_default (h))
    return;

  hbctl (h, &r, "beat", "ghost");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_cmpstr (r.err, ==, "hbctl: there is no agent \"ghost\"\n");

  hbctl_ok (h, "register", "roots");
  result_clear (&r);
  hbctl_nobody (h, &r, "beat", "roots");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "agent \"roots\" belongs to uid 0 (root); only its owner, root, "
                                   "or a user allowed by polkit may change it"));
  result_clear (&r);
  hbctl_nobody (h, &r, "register", "roots");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "agent \"roots\" is already registered by uid 0"));

  /* nobody may run its own */
  result_clear (&r);
  hbctl_nobody (h, &r, "register", "mine");
  g_assert_cmpint (r.status, ==, 0);

  hb_harness_stop_child (h, h->daemon);
  result_clear (&r);
  hbctl (h, &r, "list");
  g_assert_cmpint (r.status, ==, 3);
  g_assert_nonnull (strstr (r.err, "hbctl: heartbeatd is not running on the session bus"));
}


/* ------------------------------------------------------------------ */
/* Numeric options, ids after "--"                                     */

/* Every numeric option refuses what is not a number of its kind as a
 * usage error (exit 2), and nothing reaches the daemon. */
static void
test_numeric_options (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) before = NULL;
  g_autofree char *file = NULL;

  if (!hb_harness_start_default (h))
    return;
  hbctl_ok (h, "register", "job");
  hbctl_ok (h, "beat", "job", "--progress", "0.25");
  before = agent (h, "job");

  for (const char *const *value = (const char *const[]) { "nan", "inf", "-inf", "abc", "", "1e999", "0.5x", NULL };
       *value; value++)
    {
      g_auto(Result) r = { 0 };
      g_autoptr(GVariant) after = NULL;
      g_autoptr(GVariant) metadata = NULL;
      double progress = 0;

      hbctl (h, &r, "beat", "job", "--progress", *value);
      g_assert_cmpint (r.status, ==, 2);
      g_assert_cmpstr (r.out, ==, "");
      g_assert_nonnull (strstr (r.err, "is not a number (--progress takes a finite number"));
      after = agent (h, "job");
      g_assert_cmpuint (hb_dict_uint64 (after, "beats"), ==, hb_dict_uint64 (before, "beats"));
      metadata = hb_dict_value (after, "metadata", "a{sv}");
      g_assert_true (g_variant_lookup (metadata, "progress", "d", &progress));
      g_assert_cmpfloat (progress, ==, 0.25);
    }

  /* --pid: a process id, 1 or more; 0 was taken as "none" */
  for (const char *const *value = (const char *const[]) { "0", "-1", "abc", "1.5", "99999999999", NULL };
       *value; value++)
    {
      g_auto(Result) r = { 0 };

      hbctl (h, &r, "register", "pidded", "--pid", *value);
      g_assert_cmpint (r.status, ==, 2);
      g_assert_nonnull (strstr (r.err, "is not a process id"));
      hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "pidded"), "NotFound");
    }

  /* beat --file --pid alike; and --iteration stays an integer */
  file = g_build_filename (h->tmpdir, "beat.json", NULL);
  for (const char *const *arg = (const char *const[]) { "--pid", "0", "--pid", "nan", "--iteration", "abc",
                                                        "--iteration", "inf", NULL };
       *arg; arg += 2)
    {
      g_auto(Result) r = { 0 };

      hbctl (h, &r, "beat", "--file", file, "--key", "k", arg[0], arg[1]);
      g_assert_cmpint (r.status, ==, 2);
      g_assert_false (g_file_test (file, G_FILE_TEST_EXISTS));
    }

  /* durations */
  for (const char *const *value = (const char *const[]) { "nan", "inf", "abc", "-5", "0", NULL }; *value; value++)
    {
      g_auto(Result) r = { 0 };

      hbctl (h, &r, "register", "timed", "--stale", *value);
      g_assert_cmpint (r.status, ==, 2);
      hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "timed"), "NotFound");
      result_clear (&r);
      hbctl (h, &r, "run", "--name", "timed", "--interval", *value, "--", "true");
      g_assert_cmpint (r.status, ==, 2);
      hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "timed"), "NotFound");
    }
}

/* An id that begins with "-" works after "--", for every command. */
static void
test_dash_id (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_auto(Result) r = { 0 };
  g_autoptr(GVariant) a = NULL;
  g_autoptr(JsonNode) root = NULL;

  if (!hb_harness_start_default (h))
    return;

  hbctl_ok (h, "register", "--task", "t", "--", "-x");
  a = agent (h, "-x");
  g_assert_cmpstr (hb_dict_string (a, "task-id"), ==, "t");
  g_clear_pointer (&a, g_variant_unref);

  hbctl_ok (h, "beat", "--status", "copying", "--", "-x");
  a = agent (h, "-x");
  g_assert_cmpstr (hb_dict_string (a, "status"), ==, "copying");
  g_assert_cmpuint (hb_dict_uint64 (a, "beats"), ==, 1);
  g_clear_pointer (&a, g_variant_unref);

  hbctl_ok (h, "beat", "--", "-x");
  a = agent (h, "-x");
  g_assert_cmpuint (hb_dict_uint64 (a, "beats"), ==, 2);
  g_clear_pointer (&a, g_variant_unref);

  result_clear (&r);
  hbctl (h, &r, "show", "--json", "--", "-x");
  g_assert_cmpint (r.status, ==, 0);
  root = parse_json (r.out);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (root), "id"), ==, "-x");

  /* after "--" nothing is an option */
  result_clear (&r);
  hbctl (h, &r, "show", "--", "-x", "--json");
  g_assert_cmpint (r.status, ==, 2);

  result_clear (&r);
  hbctl (h, &r, "check", "--", "-x");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_true (g_str_has_prefix (r.out, "HEARTBEAT OK - -x is "));

  hbctl_ok (h, "idle", "--", "-x");
  a = agent (h, "-x");
  g_assert_cmpstr (hb_dict_string (a, "status"), ==, "idle");
  g_clear_pointer (&a, g_variant_unref);

  /* "--file" after "--" is an id, not the option */
  result_clear (&r);
  hbctl (h, &r, "unregister", "--", "--file");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_cmpstr (r.err, ==, "hbctl: there is no agent \"--file\"\n");

  hbctl_ok (h, "unregister", "--", "-x");
  hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "-x"), "NotFound");

  /* without "--" it is an unknown option, and the message says what to do */
  result_clear (&r);
  hbctl (h, &r, "register", "-x");
  g_assert_cmpint (r.status, ==, 2);
  g_assert_nonnull (strstr (r.err, "goes after \"--\""));
  hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "-x"), "NotFound");

  /* run's "--" still separates the command */
  hbctl_ok (h, "run", "--name", "runner", "--interval", "1", "--", "sh", "-c", "exit 0");
}

/* ------------------------------------------------------------------ */
/* --url status --json                                                 */

static void
test_url_status_json (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_auto(Result) r = { 0 };
  g_auto(Result) d = { 0 };
  g_autofree char *url = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(JsonNode) dbus_root = NULL;
  JsonObject *status, *dbus_status;
  g_autoptr(GList) keys = NULL;

  h->http_port = hb_free_port ();
  if (!hb_harness_start_default (h))
    return;
  url = g_strdup_printf ("http://127.0.0.1:%u", h->http_port);
  hbctl_ok (h, "register", "a1");
  hbctl_ok (h, "register", "a2");
  hbctl_ok (h, "beat", "a2", "--status", "error");
  /* timed out, still listed: in GetStatus's agents, not in 004's gateway */
  {
    guint cursor = hb_harness_signal_cursor (h);

    hbctl_ok (h, "register", "a3", "--timeout", "300ms");
    hb_wait_signal (h, &cursor, "AgentTimedOut", "a3", NULL, NULL);
  }

  hbctl (h, &r, "--url", url, "status", "--json");
  g_assert_cmpint (r.status, ==, 0);
  root = parse_json (r.out);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_object_get_member (json_node_get_object (root), "status")));
  status = json_object_get_object_member (json_node_get_object (root), "status");
  g_assert_true (json_object_get_boolean_member (status, "running"));
  g_assert_cmpint (json_object_get_int_member (status, "agent-count"), ==, 3);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (status, "agents")), ==, 3);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (status, "states"), "error"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (status, "states"), "timed-out"), ==, 1);
  /* the daemon's machine, from GET /v1/host: the disk of its state directory */
  {
    JsonObject *host = json_object_get_object_member (json_node_get_object (root), "host");

    g_assert_nonnull (host);
    g_assert_cmpstr (json_object_get_string_member (host, "hostname"), ==, g_get_host_name ());
    g_assert_cmpstr (json_object_get_string_member (host, "disk-path"), ==, h->state_dir);
  }
  g_assert_cmpint (json_object_get_int_member (status, "stale-threshold-usec"), ==, HB_DEFAULT_STALE_USEC);
  g_assert_cmpint (json_object_get_int_member (status, "check-interval-usec"), ==, HB_DEFAULT_CHECK_USEC);
  g_assert_cmpstr (json_object_get_string_member (status, "problem"), ==, "");
  g_assert_cmpstr (json_object_get_string_member (status, "version"), ==, g_getenv ("HB_VERSION"));

  /* the same shape as over D-Bus, less what HTTP does not tell */
  hbctl (h, &d, "status", "--json");
  dbus_root = parse_json (d.out);
  dbus_status = json_object_get_object_member (json_node_get_object (dbus_root), "status");
  keys = json_object_get_members (dbus_status);
  for (GList *k = keys; k; k = k->next)
    if (strcmp (k->data, "stale-warning-only-once") != 0)
      {
        JsonNode *over_http = json_object_get_member (status, k->data);

        g_test_message ("status key %s", (const char *) k->data);
        g_assert_nonnull (over_http);
        g_assert_true (json_node_equal (over_http, json_object_get_member (dbus_status, k->data)));
      }
  g_assert_cmpuint (json_object_get_size (status), ==, json_object_get_size (dbus_status) - 1);
}

/* ------------------------------------------------------------------ */
/* A long id in the table                                              */

/* Display width, every character one column (the table here is ASCII and
 * "…"). */
static glong
columns_of (const char *line)
{
  return g_utf8_strlen (line, -1);
}

static void
test_long_id_table (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  const char *const eighty[] = { "COLUMNS", "80", NULL };
  g_autoptr(GString) id = g_string_new ("build-ab");
  g_auto(Result) r = { 0 };
  g_auto(GStrv) lines = NULL;
  g_autofree char *short_line = NULL;
  gboolean found = FALSE;

  if (!hb_harness_start_default (h))
    return;
  while (id->len < 128 - strlen ("xyz-12"))
    g_string_append_c (id, 'a' + (char) (id->len % 26));
  g_string_append (id, "xyz-12");
  g_assert_cmpuint (id->len, ==, 128);
  hbctl_ok (h, "register", id->str, "--task", "a task with a rather long description, longer than the screen is wide");
  hbctl_ok (h, "register", "web");

  hbctl_env (h, eighty, &r, "status");
  g_assert_cmpint (r.status, ==, 0);
  lines = g_strsplit (r.out, "\n", -1);
  for (gsize i = 0; lines[i]; i++)
    {
      g_test_message ("%ld: %s", columns_of (lines[i]), lines[i]);
      if (lines[i][0] == '\0' || strstr (lines[i], " agents: ") != NULL)
        continue;   /* the blank line and the summary */
      g_assert_cmpint (columns_of (lines[i]), <=, 80);
      if (g_str_has_prefix (lines[i], "build-ab"))
        {
          const char *ellipsis = strstr (lines[i], "…");
          g_autofree char *head = NULL;
          g_autofree char *tail = NULL;

          found = TRUE;
          /* its start and its end around the ellipsis; its state visible */
          g_assert_nonnull (ellipsis);
          head = g_strndup (lines[i], (gsize) (ellipsis - lines[i]));
          tail = g_strndup (ellipsis + strlen ("…"), strcspn (ellipsis + strlen ("…"), " "));
          g_assert_cmpuint (strlen (head), >=, 6);
          g_assert_cmpuint (strlen (tail), >=, 3);
          g_assert_true (g_str_has_prefix (id->str, head));
          g_assert_true (g_str_has_suffix (id->str, tail));
          g_assert_null (strstr (lines[i], id->str));
          g_assert_nonnull (strstr (lines[i], "healthy"));
          g_assert_nonnull (strstr (lines[i], "ago"));
        }
    }
  g_assert_true (found);
  g_assert_true (g_str_has_prefix (lines[0], "AGENT "));
  g_assert_nonnull (strstr (lines[0], "LAST SEEN"));

  /* --full, or piped without $COLUMNS: whole */
  result_clear (&r);
  hbctl_env (h, eighty, &r, "status", "--full");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, id->str));
  g_assert_null (strstr (r.out, "…"));
  result_clear (&r);
  hbctl (h, &r, "status");
  g_assert_nonnull (strstr (r.out, id->str));
  g_assert_nonnull (strstr (r.out, "longer than the screen is wide"));

  /* list prints ids one per line, whole */
  result_clear (&r);
  hbctl_env (h, eighty, &r, "list");
  short_line = g_strdup_printf ("%s\n", id->str);
  g_assert_true (g_str_has_prefix (r.out, short_line));
}

/* ------------------------------------------------------------------ */
/* A declared agent that never beat                                    */

/* Its last activity is the daemon's start, which says nothing: "never". */
static void
test_never_beat (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autofree char *config = g_strconcat (hb_default_config, "\n[agent:backup]\ntask=nightly backup\n", NULL);
  g_auto(Result) r = { 0 };
  g_auto(GStrv) lines = NULL;

  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return;
  hb_harness_write_config (h, config);
  hb_harness_start_daemon (h, 0);

  hbctl (h, &r, "status");
  g_assert_cmpint (r.status, ==, 0);
  lines = g_strsplit (r.out, "\n", -1);
  g_assert_true (g_str_has_prefix (lines[1], "backup "));
  g_assert_nonnull (strstr (lines[1], "no-heartbeat"));
  g_assert_nonnull (strstr (lines[1], "  never  "));
  result_clear (&r);
  hbctl (h, &r, "show", "backup");
  g_assert_nonnull (strstr (r.out, "Last seen:     never\n"));
  result_clear (&r);
  hbctl (h, &r, "check", "backup");
  g_assert_cmpint (r.status, ==, 2);
  g_assert_cmpstr (r.out, ==, "HEARTBEAT CRITICAL - backup is no-heartbeat: never beat (last seen never)\n");

  /* once it beat, it was seen */
  hbctl_ok (h, "beat", "backup");
  result_clear (&r);
  hbctl (h, &r, "status");
  g_assert_null (strstr (r.out, "never"));
  g_assert_nonnull (strstr (r.out, " ago  "));
}

/* ------------------------------------------------------------------ */
/* Declared agents first; the columns of the process table             */

/* The text of @line under the column headed @name in @header (both ASCII
 * up to there), up to the next double space: a cell. */
static char *
cell_under (const char *header, const char *line, const char *name)
{
  const char *at = strstr (header, name);
  gsize offset;

  g_assert_nonnull (at);
  offset = (gsize) (at - header);
  g_assert_cmpuint (strlen (line), >, offset);
  {
    const char *start = line + offset;
    const char *end = strstr (start, "  ");

    return end ? g_strndup (start, (gsize) (end - start)) : g_strdup (start);
  }
}

/* Checks the table of `status` with two declared agents that never beat
 * (no-heartbeat) and two healthy others: problems first, then by id, with
 * no heading between declared and not (the order is the severity's); no
 * unit behind any, so CPU and MEM are "-". */
static void
check_declared_first (const char *out, const char *version)
{
  g_auto(GStrv) lines = g_strsplit (out, "\n", -1);
  g_autofree char *daemon = g_strdup_printf ("heartbeatd %s up ", version);

  g_assert_cmpuint (g_strv_length (lines), ==, 9);
  g_assert_true (g_str_has_prefix (lines[0], "AGENT "));
  g_assert_true (g_str_has_prefix (lines[1], "mm-declared "));
  g_assert_true (g_str_has_prefix (lines[2], "zz-declared "));
  g_assert_true (g_str_has_prefix (lines[3], "aa-extra "));
  g_assert_true (g_str_has_prefix (lines[4], "bb-extra "));
  g_assert_cmpstr (lines[5], ==, "");
  g_assert_true (g_str_has_prefix (lines[6], "4 agents: 2 healthy, 0 paused, 0 stale, 0 error, 0 timed-out, 0 gone, 2 no-heartbeat"));
  g_assert_true (g_str_has_prefix (lines[7], daemon));
  g_assert_null (strstr (out, "Additional agents"));
  for (int i = 1; i <= 4; i++)
    {
      g_autofree char *cpu = NULL, *mem = NULL, *pid = NULL, *text = NULL, *state = NULL;

      cpu = cell_under (lines[0], lines[i], "CPU");
      mem = cell_under (lines[0], lines[i], "MEM");
      pid = cell_under (lines[0], lines[i], "PID");
      text = cell_under (lines[0], lines[i], "STATUS/TASK");
      state = cell_under (lines[0], lines[i], "STATE");
      g_assert_cmpstr (state, ==, i <= 2 ? "no-heartbeat" : "healthy");
      g_assert_cmpstr (cpu, ==, "-");
      g_assert_cmpstr (mem, ==, "-");
      g_assert_cmpstr (pid, ==, i == 4 ? "1" : "-");
      /* declared, never beaten: waiting for its first run */
      if (i == 2)
        g_assert_cmpstr (text, ==, "waiting · declared work");
      if (i == 3)
        g_assert_cmpstr (text, ==, "copying · extra work");
    }
}

static void
test_declared_first (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autofree char *config = g_strconcat (hb_default_config,
                                         "\n[agent:zz-declared]\ntask=declared work\n"
                                         "\n[agent:mm-declared]\n", NULL);
  g_autofree char *url = NULL;
  g_auto(Result) r = { 0 };
  g_autoptr(JsonNode) root = NULL;
  JsonObject *object;
  JsonArray *agents;

  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return;
  h->http_port = hb_free_port ();
  hb_harness_write_config (h, config);
  hb_harness_start_daemon (h, 0);
  url = g_strdup_printf ("http://127.0.0.1:%u", h->http_port);

  hbctl_ok (h, "register", "bb-extra", "--pid", "1");
  hbctl_ok (h, "register", "aa-extra", "--task", "extra work");
  hbctl_ok (h, "beat", "aa-extra", "--status", "copying");

  hbctl (h, &r, "status");
  g_assert_cmpint (r.status, ==, 0);
  check_declared_first (r.out, g_getenv ("HB_VERSION"));

  /* the same over HTTP (/v1/agents, and /health for the uptime) */
  result_clear (&r);
  hbctl (h, &r, "--url", url, "status");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  check_declared_first (r.out, g_getenv ("HB_VERSION"));

  /* without the legend: the rows alone, in the same order */
  result_clear (&r);
  hbctl (h, &r, "--no-legend", "status");
  {
    g_auto(GStrv) lines = g_strsplit (r.out, "\n", -1);

    g_assert_cmpuint (g_strv_length (lines), ==, 5);
    g_assert_true (g_str_has_prefix (lines[0], "mm-declared "));
    g_assert_true (g_str_has_prefix (lines[1], "zz-declared "));
    g_assert_true (g_str_has_prefix (lines[2], "aa-extra "));
    g_assert_true (g_str_has_prefix (lines[3], "bb-extra "));
    /* --no-legend: no summary either */
    g_assert_null (strstr (r.out, " agents: "));
  }

  /* --json as before (the daemon's order), with the new keys */
  result_clear (&r);
  hbctl (h, &r, "status", "--json");
  root = parse_json (r.out);
  object = json_node_get_object (root);
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (object, "status"), "started-at-usec"),
                   >, 0);
  agents = json_object_get_array_member (object, "agents");
  g_assert_cmpuint (json_array_get_length (agents), ==, 4);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (agents, 0), "id"), ==, "aa-extra");
  for (guint i = 0; i < 4; i++)
    {
      JsonObject *agent = json_array_get_object_element (agents, i);

      g_assert_true (json_object_has_member (agent, "unit"));
      g_assert_cmpuint (json_object_get_size (json_object_get_object_member (agent, "unit")), ==, 0);
    }
}

/* Narrow terminals: the free text is cut with "…", then MEM and CPU go,
 * then PID and RUNNING; --full keeps everything whole. */
static void
test_narrow_columns (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  const char *const sixty[] = { "COLUMNS", "60", NULL };
  const char *const narrow[] = { "COLUMNS", "45", NULL };
  const char *long_status = "copying the whole archive to the backup host";
  g_auto(Result) r = { 0 };
  g_auto(GStrv) lines = NULL;

  if (!hb_harness_start_default (h))
    return;
  hbctl_ok (h, "register", "web", "--task", "nightly archive of /srv");
  hbctl_ok (h, "beat", "web", "--status", long_status);

  hbctl_env (h, sixty, &r, "status");
  g_assert_cmpint (r.status, ==, 0);
  lines = g_strsplit (r.out, "\n", -1);
  g_assert_true (g_str_has_prefix (lines[0], "AGENT "));
  for (gsize i = 0; i < 2; i++)
    g_assert_cmpint (columns_of (lines[i]), <=, 60);
  g_assert_null (strstr (lines[0], "MEM"));
  g_assert_null (strstr (lines[0], "CPU"));
  for (const char *const *column = (const char *const[]) { "STATE", "PID", "RUNNING", "LAST SEEN", "STATUS/TASK", NULL };
       *column; column++)
    g_assert_nonnull (strstr (lines[0], *column));
  g_assert_true (g_str_has_prefix (lines[1], "web "));
  g_assert_true (g_str_has_suffix (lines[1], "…"));
  g_assert_nonnull (strstr (lines[1], "copying the"));
  g_assert_nonnull (strstr (lines[1], " ago  "));
  g_clear_pointer (&lines, g_strfreev);

  result_clear (&r);
  hbctl_env (h, narrow, &r, "status");
  lines = g_strsplit (r.out, "\n", -1);
  for (gsize i = 0; i < 2; i++)
    g_assert_cmpint (columns_of (lines[i]), <=, 45);
  g_assert_null (strstr (lines[0], "PID"));
  g_assert_null (strstr (lines[0], "RUNNING"));
  for (const char *const *column = (const char *const[]) { "AGENT", "STATE", "LAST SEEN", "STATUS/TASK", NULL };
       *column; column++)
    g_assert_nonnull (strstr (lines[0], *column));
  g_assert_nonnull (strstr (lines[1], "healthy"));
  g_assert_nonnull (strstr (lines[1], "…"));
  g_clear_pointer (&lines, g_strfreev);

  /* --full: every column, every value whole */
  result_clear (&r);
  hbctl_env (h, narrow, &r, "status", "--full");
  lines = g_strsplit (r.out, "\n", -1);
  for (const char *const *column = (const char *const[]) { "PID", "RUNNING", "CPU", "MEM", NULL }; *column; column++)
    g_assert_nonnull (strstr (lines[0], *column));
  g_assert_null (strstr (r.out, "…"));
  g_assert_true (g_str_has_suffix (lines[1], "copying the whole archive to the backup host · nightly archive of /srv"));
}

/* `show`: after the agent, its timeline from GetHistory (over --url from
 * GET /v1/agents/ID/history) once it went stale and recovered. */
static void
test_show_timeline (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autofree char *url = NULL;
  g_auto(Result) r = { 0 };
  g_auto(GStrv) lines = NULL;
  g_autofree char *hour = NULL, *day = NULL;
  const char *states[] = { "healthy", "stale", "healthy" };
  guint cursor, n = 0;
  gsize i;

  h->http_port = hb_free_port ();
  if (!hb_harness_start_default (h))
    return;
  url = g_strdup_printf ("http://127.0.0.1:%u", h->http_port);

  cursor = hb_harness_signal_cursor (h);
  hbctl_ok (h, "register", "flaky", "--stale", "300ms");
  hb_wait_signal (h, &cursor, "AgentStale", "flaky", NULL, NULL);
  /* registered again with an hour to go, it recovers and cannot go stale
   * again while the test reads it, however slow a loaded machine is */
  hbctl_ok (h, "register", "flaky", "--stale", "1h");
  hb_wait_signal (h, &cursor, "AgentStateChanged", "flaky", "stale", "healthy");

  hbctl (h, &r, "show", "flaky");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  g_assert_null (strstr (r.out, "Unit:"));   /* no unit behind it */
  lines = g_strsplit (r.out, "\n", -1);
  for (i = 0; lines[i] && !g_str_has_prefix (lines[i], "History:"); i++)
    ;
  g_assert_nonnull (lines[i]);
  /* the strips: nothing known before its registration, and the stale
   * spell (the worst of the last minute) at their right end */
  g_assert_true (g_str_has_prefix (lines[i], "History:       last hour  "));
  hour = g_strdup (lines[i] + strlen ("History:       last hour  "));
  g_assert_cmpint (g_utf8_strlen (hour, -1), ==, 60);
  g_assert_true (g_str_has_suffix (hour, "·▄"));
  g_assert_true (g_str_has_prefix (lines[i + 1], "               last day   "));
  day = g_strdup (lines[i + 1] + strlen ("               last day   "));
  g_assert_cmpint (g_utf8_strlen (day, -1), ==, 48);
  g_assert_true (g_str_has_suffix (day, "·▄"));
  g_assert_null (strstr (hour, "×"));
  g_assert_true (g_str_has_prefix (lines[i + 2], "               █ healthy  ‖ paused  ▄ stale  × error"));
  /* the changes: registered healthy, stale, healthy until now */
  g_assert_true (g_str_has_prefix (lines[i + 3], "Changes:       "));
  for (gsize k = i + 3; lines[k] && *lines[k]; k++, n++)
    {
      g_test_message ("change: %s", lines[k]);
      g_assert_cmpuint (n, <, 3);
      /* "HH:MM:SS  state         (for 1s)" after the label */
      g_assert_cmpint (lines[k][15 + 2], ==, ':');
      g_assert_true (g_str_has_prefix (lines[k] + 15 + 8 + 2, states[n]));
      g_assert_nonnull (strstr (lines[k], n == 2 ? ", until now)" : ")"));
      g_assert_nonnull (strstr (lines[k], "(for "));
    }
  g_assert_cmpuint (n, ==, 3);

  /* --changes 1: the latest, and a word about the others */
  result_clear (&r);
  hbctl (h, &r, "show", "flaky", "--changes", "1");
  g_assert_nonnull (strstr (r.out, "\nChanges:       "));
  g_assert_nonnull (strstr (r.out, "healthy       (for "));
  g_assert_null (strstr (r.out, "stale       "));
  g_assert_nonnull (strstr (r.out, "(2 earlier changes; --changes N lists more)\n"));
  result_clear (&r);
  hbctl (h, &r, "show", "flaky", "--changes", "0");
  g_assert_nonnull (strstr (r.out, "History:"));
  g_assert_null (strstr (r.out, "Changes:"));

  /* over HTTP: the same strips */
  result_clear (&r);
  hbctl (h, &r, "--url", url, "show", "flaky");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  g_assert_true (g_str_has_prefix (r.out, "Agent:         flaky\n"));
  {
    g_autofree char *strip = g_strdup_printf ("History:       last hour  %s\n               last day   %s\n", hour, day);

    g_assert_nonnull (strstr (r.out, strip));
  }
  g_assert_nonnull (strstr (r.out, ", until now)\n"));
  result_clear (&r);
  hbctl (h, &r, "--url", url, "show", "ghost");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_cmpstr (r.err, ==, "hbctl: there is no agent \"ghost\"\n");

  /* --json: the agent object, its (empty) unit included */
  result_clear (&r);
  hbctl (h, &r, "show", "flaky", "--json");
  {
    g_autoptr(JsonNode) root = parse_json (r.out);

    g_assert_true (json_object_has_member (json_node_get_object (root), "unit"));
    g_assert_false (json_object_has_member (json_node_get_object (root), "history"));
  }
}

/* ---- A unit-backed agent, from a stand-in for the HTTP API ---- */

/* Unit-backed agents need systemd (tests/system covers them with the real
 * daemon); here a canned HTTP API answers hbctl --url instead, with the
 * `unit` object of the contract. */
typedef struct {
  GHashTable       *bodies;     /* path (with its query) -> JSON text; read-only once serving */
  GSocketListener  *listener;
  GCancellable     *stop;
  GHashTable       *links;      /* path -> Link header, or NULL */
  const char       *flood_path; /* answered with JSON that never ends, or NULL */
  gboolean          flood_declared; /* ... announced with a Content-Length of 1 GiB */
  gboolean          endless;    /* /v1/agents?after=N answers a page linking to N + 1 */
  gint64            flooded;    /* the most bytes of one flood written; read after canned_stop() */
} Canned;

/* The bound of a flood: hbctl must hang up long before. */
#define FLOOD_MAX_BYTES ((gint64) 256 * 1024 * 1024)

/* Writes JSON that never ends (an array of numbers) on @out until the
 * client hangs up or FLOOD_MAX_BYTES are written. */
static void
canned_flood (Canned *canned, GOutputStream *out)
{
  g_autofree char *block = NULL;
  gsize size = 64 * 1024;
  gint64 written = 0;

  block = g_malloc (size);
  for (gsize i = 0; i < size; i += 2)
    memcpy (block + i, "1,", 2);
  if (!g_output_stream_write_all (out, "[", 1, NULL, NULL, NULL))
    return;
  while (written < FLOOD_MAX_BYTES && g_output_stream_write_all (out, block, size, NULL, NULL, NULL))
    {
      written += (gint64) size;
      canned->flooded = MAX (canned->flooded, written);
    }
}

/* Answers one request on @connection from the canned bodies (404 for
 * other paths), then closes it. */
static void
canned_answer (Canned *canned, GSocketConnection *connection)
{
  g_autoptr(GDataInputStream) in = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (connection)));
  GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (connection));
  g_autofree char *request = NULL;
  g_auto(GStrv) parts = NULL;
  const char *body = NULL;
  const char *link = NULL;
  g_autofree char *endless_body = NULL;
  g_autofree char *endless_link = NULL;
  g_autofree char *link_line = NULL;
  g_autofree char *answer = NULL;

  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (in), FALSE);
  request = g_data_input_stream_read_line (in, NULL, NULL, NULL);
  parts = request ? g_strsplit (request, " ", 3) : NULL;
  if (parts && g_strv_length (parts) >= 2)
    {
      body = g_hash_table_lookup (canned->bodies, parts[1]);
      link = canned->links ? g_hash_table_lookup (canned->links, parts[1]) : NULL;
      if (canned->endless && g_str_has_prefix (parts[1], "/v1/agents?after="))
        {
          guint64 n = g_ascii_strtoull (parts[1] + strlen ("/v1/agents?after="), NULL, 10);

          endless_body = g_strdup_printf ("{\"agents\": [{\"id\": \"a%" G_GUINT64_FORMAT "\", \"state\": \"healthy\"}]}", n);
          endless_link = g_strdup_printf ("</v1/agents?after=%" G_GUINT64_FORMAT ">; rel=\"next\"", n + 1);
          body = endless_body;
          link = endless_link;
        }
    }
  /* the headers, up to the empty line */
  for (;;)
    {
      g_autofree char *line = g_data_input_stream_read_line (in, NULL, NULL, NULL);

      if (line == NULL || *g_strstrip (line) == '\0')
        break;
    }
  if (canned->flood_path && parts && g_strv_length (parts) >= 2 && strcmp (parts[1], canned->flood_path) == 0)
    {
      answer = g_strdup_printf ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%s"
                                "Connection: close\r\n\r\n",
                                canned->flood_declared ? "Content-Length: 1073741824\r\n" : "");
      if (g_output_stream_write_all (out, answer, strlen (answer), NULL, NULL, NULL))
        canned_flood (canned, out);
      g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
      return;
    }
  link_line = link ? g_strdup_printf ("Link: %s\r\n", link) : g_strdup ("");
  answer = g_strdup_printf ("HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s"
                            "Connection: close\r\n\r\n",
                            body ? "200 OK" : "404 Not Found",
                            strlen (body ? body : "{}"), link_line);
  if (g_output_stream_write_all (out, answer, strlen (answer), NULL, NULL, NULL))
    g_output_stream_write_all (out, body ? body : "{}", strlen (body ? body : "{}"), NULL, NULL, NULL);
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
}

/* The server's thread: accepts until @stop is cancelled (hbctl runs
 * while the test's thread waits for it). */
static gpointer
canned_serve (gpointer data)
{
  Canned *canned = data;

  for (;;)
    {
      g_autoptr(GSocketConnection) connection = g_socket_listener_accept (canned->listener, NULL, canned->stop, NULL);

      if (connection == NULL)
        return NULL;
      canned_answer (canned, connection);
    }
}

/* Starts serving @canned (its bodies and listener set) on a loopback
 * port; returns the URL. Stop with canned_stop(). */
static char *
canned_start (Canned *canned, GThread **server)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) effective = NULL;

  canned->listener = g_socket_listener_new ();
  canned->stop = g_cancellable_new ();
  g_socket_listener_add_address (canned->listener, address, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                 NULL, &effective, &error);
  g_assert_no_error (error);
  *server = g_thread_new ("canned-http", canned_serve, canned);
  return g_strdup_printf ("http://127.0.0.1:%u", g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective)));
}

static void
canned_stop (Canned *canned, GThread *server)
{
  g_cancellable_cancel (canned->stop);
  g_thread_join (server);
  g_clear_object (&canned->listener);
  g_clear_object (&canned->stop);
}

static void
test_unit_columns (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  gint64 now = g_get_real_time ();
  gint64 second = G_USEC_PER_SEC;
  g_autoptr(GHashTable) bodies = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  g_autoptr(GSocketListener) listener = g_socket_listener_new ();
  g_autoptr(GCancellable) stop = g_cancellable_new ();
  Canned canned = { bodies, listener, stop, NULL, NULL, FALSE, FALSE, 0 };
  GThread *server;
  g_autoptr(GError) error = NULL;
  g_autofree char *agent = NULL, *url = NULL;
  g_auto(Result) r = { 0 };
  g_auto(GStrv) lines = NULL;
  guint16 port;

  agent = g_strdup_printf (
    "{\"id\": \"copy\", \"task-id\": \"\", \"state\": \"healthy\", \"status\": \"copying\", \"owner-uid\": 0,"
    " \"pid\": 0, \"started-at-usec\": %" G_GINT64_FORMAT ", \"last-activity-at-usec\": %" G_GINT64_FORMAT ","
    " \"running-usec\": 1000, \"idle-usec\": 2000000, \"beats\": 12, \"stale-after-usec\": 60000000,"
    " \"timeout-after-usec\": 600000000, \"metadata\": {}, \"declared\": true, \"bound-to\": \"\","
    " \"unit\": {\"name\": \"copy.service\", \"active-state\": \"active\", \"sub-state\": \"running\","
    "          \"main-pid\": 4242, \"active-since-usec\": %" G_GINT64_FORMAT ", \"cpu-usec\": 65400000,"
    "          \"memory-bytes\": 12900000, \"result\": \"exit-code\", \"exit-status\": 3, \"n-restarts\": 2}}",
    now - 3723 * second, now - 2 * second, now - 3723 * second);
  g_hash_table_insert (bodies, "/v1/agents", g_strdup_printf ("{\"agents\": [%s]}", agent));
  g_hash_table_insert (bodies, "/v1/agents/copy", g_strdup (agent));
  g_hash_table_insert (bodies, "/health", g_strdup_printf ("{\"status\": \"ok\", \"version\": \"9.9\", \"started-at-usec\": %"
                                                           G_GINT64_FORMAT "}", now - 3 * 86400 * second));
  /* gone for 2 min from 39.5 min ago, stale for 1 min from 9.5 min ago,
   * then error for 2 min, healthy since (off the minutes, so that the
   * moment hbctl runs does not move them into other cells) */
  g_hash_table_insert (bodies, "/v1/agents/copy/history", g_strdup_printf (
    "{\"id\": \"copy\", \"history\": [{\"at-usec\": %" G_GINT64_FORMAT ", \"state\": \"healthy\"},"
    " {\"at-usec\": %" G_GINT64_FORMAT ", \"state\": \"gone\"}, {\"at-usec\": %" G_GINT64_FORMAT ", \"state\": \"healthy\"},"
    " {\"at-usec\": %" G_GINT64_FORMAT ", \"state\": \"stale\"}, {\"at-usec\": %" G_GINT64_FORMAT ", \"state\": \"error\"},"
    " {\"at-usec\": %" G_GINT64_FORMAT ", \"state\": \"healthy\"}]}",
    now - 26 * 3600 * second, now - 2370 * second, now - 2250 * second, now - 570 * second,
    now - 510 * second, now - 390 * second));

  port = g_socket_listener_add_any_inet_port (listener, NULL, &error);
  g_assert_no_error (error);
  server = g_thread_new ("canned-http", canned_serve, &canned);
  url = g_strdup_printf ("http://127.0.0.1:%u", port);

  hbctl (h, &r, "--url", url, "status");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  lines = g_strsplit (r.out, "\n", -1);
  /* its unit's main PID, the time since the unit became active, its CPU
   * time and memory */
  {
    const char *const expected[][2] = {
      { "AGENT", "copy" }, { "STATE", "healthy" }, { "PID", "4242" }, { "RUNNING", "1h02m" },
      { "LAST SEEN", "2s ago" }, { "CPU", "1m05s" }, { "MEM", "12.3M" }, { "STATUS/TASK", "copying" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS (expected); i++)
      {
        g_autofree char *cell = cell_under (lines[0], lines[1], expected[i][0]);

        g_assert_cmpstr (cell, ==, expected[i][1]);
      }
  }
  g_assert_nonnull (strstr (r.out, "\nheartbeatd 9.9 up 3d00h (since "));
  g_clear_pointer (&lines, g_strfreev);

  result_clear (&r);
  hbctl (h, &r, "--url", url, "show", "copy", "--changes", "3");
  g_assert_cmpint (r.status, ==, 0);
  for (const char *const *expected = (const char *const[]) {
         "\nUnit:          copy.service\n",
         "\nUnit state:    active (running) since ",
         "\nMain PID:      4242\n",
         "\nCPU:           1m05s\n",
         "\nMemory:        12.3M\n",
         "\nResult:        exit-code (exit status 3)\n",
         "\nRestarts:      2\n",
         "  stale         (for 1m00s)\n",
         "  error         (for 2m00s)\n",
         "  healthy       (for 6m30s, until now)\n",
         "(3 earlier changes; --changes N lists more)\n",
         NULL };
       *expected; expected++)
    {
      g_test_message ("expecting %s", *expected);
      g_assert_nonnull (strstr (r.out, *expected));
    }
  lines = g_strsplit (r.out, "\n", -1);
  for (gsize i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], "History:       last hour  "))
      {
        const char *hour = lines[i] + strlen ("History:       last hour  ");
        const char *day = lines[i + 1] + strlen ("               last day   ");

        /* a minute a character, the worst state of each: gone in the
         * minutes from -40 to -37, stale from -10, error from -9 to -6 */
        g_test_message ("hour: %s", hour);
        g_test_message ("day: %s", day);
        g_assert_cmpint (g_utf8_strlen (hour, -1), ==, 60);
        g_assert_true (g_str_has_prefix (hour, "████████████████████___█"));
        g_assert_true (g_str_has_suffix (hour, "█▄×××██████"));
        /* half an hour a character: healthy all day, then the worst */
        g_assert_true (g_str_has_prefix (day, "████████████████████"));
        g_assert_true (g_str_has_suffix (day, "_×"));
      }

  g_cancellable_cancel (stop);
  g_thread_join (server);
}

/* ------------------------------------------------------------------ */
/* A bus or URL that cannot be reached is not "not running"            */

/* ---- Jobs: hbctl run --name on a declared agent, and show ---- */

static GVariant *
get_runs (HbHarness *h, const char *id)
{
  g_autoptr(GVariant) reply = hb_call_ok (h, NULL, "GetRuns", g_variant_new ("(s)", id), "(aa{sv})");
  GVariant *runs = NULL;

  g_variant_get (reply, "(@aa{sv})", &runs);
  return runs;
}

/* The newest run of @id */
static GVariant *
last_run (HbHarness *h, const char *id, gsize expected_runs)
{
  g_autoptr(GVariant) runs = get_runs (h, id);

  g_assert_cmpuint (g_variant_n_children (runs), ==, expected_runs);
  return g_variant_get_child_value (runs, expected_runs - 1);
}

/* `hbctl run --name JOB` where the configuration declares JOB: a run
 * record each time (StartRun, FinishRun with the result, the exit status
 * and the output's tail), the command's exit status, and the agent stays
 * registered; `show` lists the runs. A name the configuration does not
 * declare is registered and unregistered as before. */
static void
test_run_declared_job (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  const char *const utc[] = { "TZ", "UTC", NULL };
  g_autofree char *config = NULL, *url = NULL;
  g_autoptr(GVariant) a = NULL;
  g_autoptr(GVariant) run = NULL;
  g_autoptr(GVariant) metadata = NULL;
  g_auto(Result) r = { 0 };
  const char *output = NULL;
  gint32 exit_status = -1;
  guint cursor;

  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return;
  h->http_port = hb_free_port ();
  config = g_strconcat (hb_default_config, "\n[agent:nightly]\ntask=nightly backup\n", NULL);
  hb_harness_write_config (h, config);
  hb_harness_start_daemon (h, 0);
  url = g_strdup_printf ("http://127.0.0.1:%u", h->http_port);

  /* a failure: exit status 3, its output passed on and recorded */
  cursor = hb_harness_signal_cursor (h);
  hbctl (h, &r, "run", "--name", "nightly", "--interval", "1s", "--", "sh", "-c", "echo hi; exit 3");
  g_assert_cmpint (r.status, ==, 3);
  g_assert_cmpstr (r.out, ==, "hi\n");
  g_assert_cmpstr (r.err, ==, "");
  a = agent (h, "nightly");
  g_assert_cmpstr (hb_dict_string (a, "state"), ==, "error");
  g_assert_cmpstr (hb_dict_string (a, "status"), ==, "error");
  g_assert_true (hb_dict_boolean (a, "declared"));
  g_assert_cmpstr (hb_dict_string (a, "task-id"), ==, "nightly backup");
  /* the run has it, not the metadata */
  metadata = hb_dict_value (a, "metadata", "a{sv}");
  g_assert_false (g_variant_lookup (metadata, "exit-status", "i", &exit_status));
  run = last_run (h, "nightly", 1);
  g_assert_cmpstr (hb_dict_string (run, "result"), ==, "failure");
  g_assert_true (g_variant_lookup (run, "exit-status", "i", &exit_status));
  g_assert_cmpint (exit_status, ==, 3);
  g_assert_true (g_variant_lookup (run, "output", "&s", &output));
  g_assert_cmpstr (output, ==, "hi\n");
  g_assert_true (g_variant_lookup (run, "duration-usec", "x", NULL));
  g_assert_null (hb_harness_find_signal (h, cursor, "AgentUnregistered", "nightly", NULL, NULL, NULL));
  g_clear_pointer (&a, g_variant_unref);
  g_clear_pointer (&run, g_variant_unref);
  g_clear_pointer (&metadata, g_variant_unref);

  /* a success: healthy and idle, still registered */
  result_clear (&r);
  hbctl (h, &r, "run", "--name", "nightly", "--interval", "1s", "--", "sh", "-c", "echo fine");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.out, ==, "fine\n");
  a = agent (h, "nightly");
  g_assert_cmpstr (hb_dict_string (a, "state"), ==, "healthy");
  g_assert_cmpstr (hb_dict_string (a, "status"), ==, "idle");
  run = last_run (h, "nightly", 2);
  g_assert_cmpstr (hb_dict_string (run, "result"), ==, "success");
  g_assert_true (g_variant_lookup (run, "exit-status", "i", &exit_status));
  g_assert_cmpint (exit_status, ==, 0);
  g_assert_true (g_variant_lookup (run, "output", "&s", &output));
  g_assert_cmpstr (output, ==, "fine\n");
  g_assert_null (hb_harness_find_signal (h, cursor, "AgentUnregistered", "nightly", NULL, NULL, NULL));
  g_clear_pointer (&a, g_variant_unref);
  g_clear_pointer (&run, g_variant_unref);

  /* the configuration sets a job's thresholds: options for them are said to be ignored */
  result_clear (&r);
  hbctl (h, &r, "run", "--name", "nightly", "--stale", "1h", "--", "true");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.err, "--stale, --timeout and --task are ignored"));
  a = agent (h, "nightly");
  g_assert_cmpuint (hb_dict_uint64 (a, "stale-after-usec"), ==, HB_DEFAULT_STALE_USEC);
  g_clear_pointer (&a, g_variant_unref);
  run = last_run (h, "nightly", 3);
  g_assert_cmpstr (hb_dict_string (run, "result"), ==, "success");
  g_clear_pointer (&run, g_variant_unref);

  /* show: the runs, newest first, and the failed one's output */
  result_clear (&r);
  hbctl_env (h, utc, &r, "show", "nightly");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  {
    g_auto(GStrv) lines = g_strsplit (r.out, "\n", -1);
    gsize i;

    for (i = 0; lines[i] && !g_str_has_prefix (lines[i], "Runs:"); i++)
      ;
    g_assert_nonnull (lines[i]);
    /* "Runs:          YYYY-MM-DD HH:MM:SS  DURATION  RESULT     exit N" */
    g_assert_cmpint (lines[i][15 + 4], ==, '-');
    g_assert_nonnull (strstr (lines[i], "  success    exit 0"));
    g_assert_true (g_str_has_prefix (lines[i + 1], "               "));
    g_assert_nonnull (strstr (lines[i + 1], "  success    exit 0"));
    g_assert_nonnull (strstr (lines[i + 2], "  failure    exit 3"));
    g_assert_true (g_str_has_prefix (lines[i + 3], "Output:        (the end of the failed run of "));
    g_assert_cmpstr (lines[i + 4], ==, "               hi");
    g_assert_true (g_str_has_prefix (lines[i + 5], "History:"));
  }

  /* over HTTP too (GET /v1/agents/ID/runs) */
  result_clear (&r);
  hbctl_env (h, utc, &r, "--url", url, "show", "nightly");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  g_assert_nonnull (strstr (r.out, "\nRuns:          "));
  g_assert_nonnull (strstr (r.out, "  success    exit 0\n               "));
  g_assert_nonnull (strstr (r.out, "  failure    exit 3\nOutput:        (the end of the failed run of "));
  g_assert_nonnull (strstr (r.out, "\n               hi\nHistory:"));

  /* not its owner: the run is refused before the command runs, and nothing is recorded */
  if (require_nobody ())
    {
      g_autoptr(GVariant) runs = NULL;

      result_clear (&r);
      hbctl_nobody (h, &r, "run", "--name", "nightly", "--", "sh", "-c", "echo never");
      g_assert_cmpint (r.status, ==, 1);
      g_assert_cmpstr (r.out, ==, "");
      g_assert_nonnull (strstr (r.err, "belongs to uid 0"));
      runs = get_runs (h, "nightly");
      g_assert_cmpuint (g_variant_n_children (runs), ==, 3);
    }

  /* a command that cannot be started: a failed run with exit status 127 */
  result_clear (&r);
  hbctl (h, &r, "run", "--name", "nightly", "--", "/nonexistent/backup");
  g_assert_cmpint (r.status, ==, 127);
  g_assert_nonnull (strstr (r.err, "cannot run /nonexistent/backup"));
  run = last_run (h, "nightly", 4);
  g_assert_cmpstr (hb_dict_string (run, "result"), ==, "failure");
  g_assert_true (g_variant_lookup (run, "exit-status", "i", &exit_status));
  g_assert_cmpint (exit_status, ==, 127);
  g_assert_true (g_variant_lookup (run, "output", "&s", &output));
  g_assert_true (g_str_has_prefix (output, "cannot run /nonexistent/backup: "));
  g_clear_pointer (&run, g_variant_unref);
  a = agent (h, "nightly");
  g_assert_cmpstr (hb_dict_string (a, "state"), ==, "error");
  g_clear_pointer (&a, g_variant_unref);

  /* a name the configuration does not declare: registered, then
   * unregistered on success, as always */
  result_clear (&r);
  cursor = hb_harness_signal_cursor (h);
  hbctl (h, &r, "run", "--name", "adhoc", "--interval", "1s", "--", "sh", "-c", "echo hi");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.out, ==, "hi\n");
  hb_wait_signal (h, &cursor, "AgentRegistered", "adhoc", NULL, NULL);
  hb_wait_signal (h, &cursor, "AgentUnregistered", "adhoc", "unregistered", NULL);
  hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "adhoc"), "NotFound");
}

/* `show` of a job, from a stand-in for the HTTP API: its next run and
 * since when it is late, in local time (here UTC); its last 10 runs,
 * newest first, with their durations, results, exit statuses and late
 * marks; and the last 5 lines of the newest failed run's output, with
 * its control characters made harmless. */
static void
test_show_job (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  const char *const utc[] = { "TZ", "UTC", NULL };
  gint64 now = g_get_real_time ();
  gint64 second = G_USEC_PER_SEC, hour = 3600 * second;
  /* off the hour, so that the moment hbctl runs does not change the hours */
  gint64 next = now + 13 * hour + 1800 * second;
  gint64 late = now - 2 * hour, grace = 600 * second;
  gint64 failed = now - 26 * hour;
  g_autoptr(GHashTable) bodies = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  Canned canned = { bodies, NULL, NULL, NULL, NULL, FALSE, FALSE, 0 };
  GThread *server;
  g_autofree char *agent_json = NULL, *url = NULL, *last = NULL;
  g_autoptr(GString) runs = g_string_new ("[");
  g_auto(Result) r = { 0 };
  g_auto(GStrv) lines = NULL;
  gsize i;

  /* 12 runs, oldest first: 9 successes a day apart (the 5th late), the
   * failure of yesterday with 7 lines of output, then a missed one */
  for (int k = 0; k < 10; k++)
    {
      gint64 started = failed - (10 - k) * 24 * hour + (k == 5 ? grace + 60 * second : 0);

      g_string_append_printf (runs, "%s{\"result\": \"success\", \"due-usec\": %" G_GINT64_FORMAT ", \"started-usec\": %"
                              G_GINT64_FORMAT ", \"ended-usec\": %" G_GINT64_FORMAT ", \"duration-usec\": %" G_GINT64_FORMAT
                              ", \"exit-status\": 0%s}",
                              k ? ", " : "", started, started, started + 62 * second, 62 * second,
                              k == 5 ? ", \"late\": true" : "");
    }
  g_string_append_printf (runs, ", {\"result\": \"failure\", \"started-usec\": %" G_GINT64_FORMAT ", \"ended-usec\": %"
                          G_GINT64_FORMAT ", \"duration-usec\": %" G_GINT64_FORMAT ", \"exit-status\": 3,"
                          " \"output\": \"one\\ntwo\\nthree\\nfour\\nfive\\n\\u001b[31msix\\nseven\\n\"}",
                          failed, failed + 5 * second, 5 * second);
  last = g_strdup_printf ("{\"result\": \"missed\", \"due-usec\": %" G_GINT64_FORMAT "}", late);
  g_string_append_printf (runs, ", %s]", last);

  agent_json = g_strdup_printf (
    "{\"id\": \"backup\", \"task-id\": \"\", \"state\": \"stale\", \"status\": \"idle\", \"owner-uid\": 0,"
    " \"pid\": 0, \"started-at-usec\": %" G_GINT64_FORMAT ", \"last-activity-at-usec\": %" G_GINT64_FORMAT ","
    " \"running-usec\": 0, \"idle-usec\": 2000000, \"beats\": 0, \"stale-after-usec\": 300000000,"
    " \"timeout-after-usec\": 600000000, \"metadata\": {}, \"declared\": true, \"bound-to\": \"\", \"unit\": {},"
    " \"next-due-usec\": %" G_GINT64_FORMAT ", \"late-due-usec\": %" G_GINT64_FORMAT ", \"grace-usec\": %" G_GINT64_FORMAT ","
    " \"last-run\": %s}",
    failed, failed + 5 * second, next, late, grace, last);
  g_hash_table_insert (bodies, "/v1/agents/backup", g_strdup (agent_json));
  g_hash_table_insert (bodies, "/v1/agents/backup/runs", g_string_free (g_steal_pointer (&runs), FALSE));
  g_hash_table_insert (bodies, "/v1/agents/backup/history", g_strdup ("{\"id\": \"backup\", \"history\": []}"));
  url = canned_start (&canned, &server);

  hbctl_env (h, utc, &r, "--url", url, "show", "backup");
  canned_stop (&canned, server);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  lines = g_strsplit (r.out, "\n", -1);
  for (i = 0; lines[i] && !g_str_has_prefix (lines[i], "Next run:"); i++)
    ;
  g_assert_nonnull (lines[i]);
  {
    g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc (next / G_USEC_PER_SEC);
    g_autofree char *when = g_date_time_format (t, "%a %Y-%m-%d %H:%M:%S UTC");
    g_autofree char *expected = g_strdup_printf ("Next run:      %s (in 13h", when);

    g_assert_true (g_str_has_prefix (lines[i], expected));
  }
  {
    g_autoptr(GDateTime) since = g_date_time_new_from_unix_utc ((late + grace) / G_USEC_PER_SEC);
    g_autoptr(GDateTime) due = g_date_time_new_from_unix_utc (late / G_USEC_PER_SEC);
    g_autofree char *since_text = g_date_time_format (since, "%a %Y-%m-%d %H:%M:%S UTC");
    g_autofree char *due_text = g_date_time_format (due, "%a %Y-%m-%d %H:%M:%S UTC");
    g_autofree char *expected = g_strdup_printf ("Late since:    %s (1h", since_text);
    g_autofree char *expected_due = g_strdup_printf ("; due %s)", due_text);

    g_assert_true (g_str_has_prefix (lines[i + 1], expected));
    g_assert_true (g_str_has_suffix (lines[i + 1], expected_due));
  }
  /* the runs, newest first: the missed one (at its due time), the
   * failure, then 8 of the 10 successes */
  {
    g_autoptr(GDateTime) due = g_date_time_new_from_unix_utc (late / G_USEC_PER_SEC);
    g_autofree char *due_text = g_date_time_format (due, "%Y-%m-%d %H:%M:%S");
    g_autofree char *expected = g_strdup_printf ("Runs:          %s  -      missed", due_text);

    g_assert_cmpstr (lines[i + 2], ==, expected);
  }
  {
    g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc (failed / G_USEC_PER_SEC);
    g_autofree char *text = g_date_time_format (t, "%Y-%m-%d %H:%M:%S");
    g_autofree char *expected = g_strdup_printf ("               %s  5s     failure    exit 3", text);

    g_assert_cmpstr (lines[i + 3], ==, expected);
  }
  for (gsize k = 0; k < 8; k++)
    {
      const char *line = lines[i + 4 + k];

      g_assert_true (g_str_has_prefix (line, "               "));
      /* the 5th success (from the oldest) is the 6th line from the newest */
      g_assert_true (g_str_has_suffix (line, k == 4 ? "  1m02s  success    exit 0  late" : "  1m02s  success    exit 0"));
    }
  g_assert_cmpstr (lines[i + 12], ==, "               (2 earlier runs)");
  g_assert_true (g_str_has_prefix (lines[i + 13], "Output:        (the end of the failed run of "));
  g_assert_cmpstr (lines[i + 14], ==, "               three");
  g_assert_cmpstr (lines[i + 15], ==, "               four");
  g_assert_cmpstr (lines[i + 16], ==, "               five");
  g_assert_cmpstr (lines[i + 17], ==, "               ?[31msix");
  g_assert_cmpstr (lines[i + 18], ==, "               seven");
  g_assert_true (g_str_has_prefix (lines[i + 19], "History:"));
  g_assert_null (strchr (r.out, '\033'));
}

/* `show` of a job with schedule= (the real daemon): its next run, as
 * next-due-usec says, in local time (here UTC); no runs yet. */
static void
test_show_schedule (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  const char *const utc[] = { "TZ", "UTC", NULL };
  g_autofree char *config = NULL, *expected = NULL, *when = NULL;
  g_autoptr(GVariant) a = NULL;
  g_autoptr(GDateTime) t = NULL;
  g_auto(Result) r = { 0 };
  guint64 next;

  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return;
  config = g_strconcat (hb_default_config, "\n[agent:hourly]\nschedule=@hourly\ntz=UTC\ngrace=5min\n", NULL);
  hb_harness_write_config (h, config);
  hb_harness_start_daemon (h, 0);

  a = agent (h, "hourly");
  next = hb_dict_uint64 (a, "next-due-usec");
  g_assert_cmpuint (next, >, 0);
  g_assert_cmpuint (next % (G_GUINT64_CONSTANT (3600) * G_USEC_PER_SEC), ==, 0);
  g_assert_cmpuint (hb_dict_uint64 (a, "grace-usec"), ==, G_GUINT64_CONSTANT (300000000));
  t = g_date_time_new_from_unix_utc ((gint64) (next / G_USEC_PER_SEC));
  when = g_date_time_format (t, "%a %Y-%m-%d %H:00:00 UTC");
  expected = g_strdup_printf ("\nNext run:      %s (in ", when);

  hbctl_env (h, utc, &r, "show", "hourly");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  g_assert_nonnull (strstr (r.out, expected));
  g_assert_null (strstr (r.out, "Late since:"));
  g_assert_nonnull (strstr (r.out, "\nRuns:          none yet\n"));
}

static void
test_unreachable (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autofree char *dead = g_build_filename (h->tmpdir, "dead-bus", NULL);
  g_autofree char *dead_address = g_strconcat ("unix:path=", dead, NULL);
  g_autofree char *url = g_strdup_printf ("http://127.0.0.1:%u", hb_free_port ());
  g_autofree char *reach = g_strdup_printf ("cannot reach %s: ", url);
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GError) error = NULL;
  const char *dead_env[] = { "DBUS_SESSION_BUS_ADDRESS", dead_address, NULL };
  g_auto(Result) r = { 0 };

  /* a socket that exists, where nobody listens: connection refused */
  socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0, &error);
  g_assert_no_error (error);
  address = g_unix_socket_address_new (dead);
  g_assert_true (g_socket_bind (socket, address, FALSE, &error));
  g_assert_true (g_socket_close (socket, &error));
  g_assert_true (g_file_test (dead, G_FILE_TEST_EXISTS));

  hbctl_env (h, dead_env, &r, "list");
  g_assert_cmpint (r.status, ==, 3);
  g_assert_true (g_str_has_prefix (r.err, "hbctl: cannot connect to the session bus: "));
  g_assert_nonnull (strstr (r.err, "refused"));
  g_assert_null (strstr (r.err, "not running"));
  result_clear (&r);
  hbctl_env (h, dead_env, &r, "check", "x");
  g_assert_cmpint (r.status, ==, 3);
  g_assert_true (g_str_has_prefix (r.out, "HEARTBEAT UNKNOWN - cannot connect to the session bus: "));
  g_assert_null (strstr (r.out, "not running"));

  /* a closed port */
  for (const char *const *command = (const char *const[]) { "status", "status --json", "beat", NULL }; *command;
       command++)
    {
      result_clear (&r);
      if (strcmp (*command, "status") == 0)
        hbctl (h, &r, "--url", url, "status");
      else if (strcmp (*command, "status --json") == 0)
        hbctl (h, &r, "--url", url, "status", "--json");
      else
        hbctl (h, &r, "--url", url, "beat", "x");
      g_assert_cmpstr (r.out, ==, "");
      g_assert_cmpint (r.status, ==, 3);
      g_assert_true (g_str_has_prefix (r.err, "hbctl: "));
      g_assert_nonnull (strstr (r.err, reach));
      g_assert_null (strstr (r.err, "not running"));
      g_assert_null (strstr (r.err, "does not answer"));
    }
  result_clear (&r);
  hbctl (h, &r, "--url", url, "check", "x");
  g_assert_cmpint (r.status, ==, 3);
  g_assert_true (g_str_has_prefix (r.out, "HEARTBEAT UNKNOWN - "));
  g_assert_nonnull (strstr (r.out, reach));
  g_assert_null (strstr (r.out, "not running"));
}

/* A bus whose policy refuses calls to heartbeatd, with heartbeatd on it:
 * the bus refused, heartbeatd is running. */
static void
test_bus_refuses (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autofree char *dbus_daemon = g_find_program_in_path ("dbus-daemon");
  g_autofree char *socket_path = g_build_filename (h->tmpdir, "deny-bus", NULL);
  g_autofree char *config_path = g_build_filename (h->tmpdir, "deny-bus.conf", NULL);
  g_autofree char *config_arg = g_strconcat ("--config-file=", config_path, NULL);
  g_autofree char *state_dir = g_build_filename (h->tmpdir, "deny-state", NULL);
  g_autofree char *config = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(Result) r = { 0 };
  gint64 deadline;

  if (dbus_daemon == NULL)
    {
      g_test_skip ("dbus-daemon is not installed");
      return;
    }
  config = g_strdup_printf ("<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                            " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                            "<busconfig>\n"
                            "  <type>session</type>\n"
                            "  <listen>unix:path=%s</listen>\n"
                            "  <auth>EXTERNAL</auth>\n"
                            "  <policy context=\"default\">\n"
                            "    <allow send_destination=\"*\"/>\n"
                            "    <allow receive_sender=\"*\"/>\n"
                            "    <allow own=\"*\"/>\n"
                            "    <deny send_destination=\"org.heartbeat.Monitor1\"/>\n"
                            "  </policy>\n"
                            "</busconfig>\n", socket_path);
  g_file_set_contents (config_path, config, -1, &error);
  g_assert_no_error (error);
  {
    const char *argv[] = { dbus_daemon, config_arg, "--nofork", "--nopidfile", NULL };
    hb_harness_spawn (h, argv);
  }
  deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  while (!g_file_test (socket_path, G_FILE_TEST_EXISTS) && g_get_monotonic_time () < deadline)
    g_usleep (20000);
  g_assert_true (g_file_test (socket_path, G_FILE_TEST_EXISTS));

  /* heartbeatd on it (hb_harness_spawn and hbctl use h->bus_address) */
  h->bus_address = g_strconcat ("unix:path=", socket_path, NULL);
  {
    const char *argv[] = { g_getenv ("HEARTBEATD"), "--session", "--state-dir", state_dir, "--http-port", "0", NULL };
    hb_harness_spawn (h, argv);
  }
  /* until it owns its name, the bus says nobody does */
  do
    {
      result_clear (&r);
      hbctl (h, &r, "list");
      if (r.status != 3)
        break;
      g_assert_nonnull (strstr (r.err, "heartbeatd is not running on the session bus"));
      g_usleep (50000);
    }
  while (g_get_monotonic_time () < deadline);

  g_assert_cmpint (r.status, ==, 1);
  g_assert_true (g_str_has_prefix (r.err, "hbctl: the session bus refused the request: "));
  g_assert_null (strstr (r.err, "not running"));
  result_clear (&r);
  hbctl (h, &r, "check", "x");
  g_assert_cmpint (r.status, ==, 3);
  g_assert_true (g_str_has_prefix (r.out, "HEARTBEAT UNKNOWN - the session bus refused the request: "));
}

/* ------------------------------------------------------------------ */
/* A server at --url that is not heartbeatd, or not a friendly one     */

/* hbctl --url URL ARGS… (the session bus is not used) */
#define hbctl_url(h, r, url, ...) hbctl ((h), (r), "--url", (url), __VA_ARGS__)

/* JSON nested 200,000 deep, an answer that never ends (announced as 1 GiB
 * or not announced at all): hbctl checks the text before it parses it
 * and reads at most 16 MiB, and says so. */
static void
test_url_hostile (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GHashTable) bodies = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  Canned canned = { bodies, NULL, NULL, NULL, "/v1/agents/big", FALSE, FALSE, 0 };
  g_autofree char *deep = g_strnfill (200000, '[');
  g_autofree char *url = NULL;
  GThread *server;
  g_auto(Result) r = { 0 };

  /* json-glib's parser recurses once a level: this took hbctl down */
  g_hash_table_insert (bodies, "/v1/agents", g_strdup_printf ("{\"agents\": %s", deep));
  g_hash_table_insert (bodies, "/v1/agents/deep", g_strdup (deep));
  g_hash_table_insert (bodies, "/health", g_strdup ("{\"status\": \"ok\"}"));
  url = canned_start (&canned, &server);

  for (const char *const *command = (const char *const[]) { "status", "status --json", "show", NULL }; *command;
       command++)
    {
      result_clear (&r);
      if (strcmp (*command, "status") == 0)
        hbctl_url (h, &r, url, "status");
      else if (strcmp (*command, "status --json") == 0)
        hbctl_url (h, &r, url, "status", "--json");
      else
        hbctl_url (h, &r, url, "show", "deep");
      g_assert_cmpint (r.status, ==, 1);
      g_assert_cmpstr (r.out, ==, "");
      g_assert_true (g_str_has_prefix (r.err, "hbctl: "));
      g_assert_nonnull (strstr (r.err, " answered 200 with something that is not JSON hbctl takes: "
                                       "nested deeper than 32 levels"));
    }
  result_clear (&r);
  hbctl_url (h, &r, url, "check", "deep");
  g_assert_cmpint (r.status, ==, 3);
  g_assert_true (g_str_has_prefix (r.out, "HEARTBEAT UNKNOWN - "));
  g_assert_nonnull (strstr (r.out, "nested deeper than 32 levels"));

  /* 1 GiB announced: refused before reading; not announced: read up to
   * the bound, then hbctl hangs up */
  for (int declared = 0; declared < 2; declared++)
    {
      canned.flood_declared = declared;
      result_clear (&r);
      hbctl_url (h, &r, url, "show", "big");
      g_assert_cmpint (r.status, ==, 1);
      g_assert_cmpstr (r.out, ==, "");
      g_assert_nonnull (strstr (r.err, " answered 200 with more than 16 MiB, more than hbctl reads"));
      result_clear (&r);
      hbctl_url (h, &r, url, "check", "big");
      g_assert_cmpint (r.status, ==, 3);
      g_assert_true (g_str_has_prefix (r.out, "HEARTBEAT UNKNOWN - "));
      g_assert_nonnull (strstr (r.out, " answered 200 with more than 16 MiB"));
    }
  canned_stop (&canned, server);
  g_test_message ("the longest flood: %" G_GINT64_FORMAT " bytes", canned.flooded);
  g_assert_cmpint (canned.flooded, <, FLOOD_MAX_BYTES);
}

/* @text split at each newline, like g_strsplit (text, "\n", -1), in
 * linear time under AddressSanitizer too (its strstr() measures the whole
 * remaining string at each call, which made g_strsplit() of 50,000 lines
 * take half a minute). */
static GStrv
split_lines (const char *text)
{
  GPtrArray *lines = g_ptr_array_new ();
  const char *end = text + strlen (text);

  for (;;)
    {
      const char *newline = memchr (text, '\n', (gsize) (end - text));

      if (newline == NULL)
        {
          g_ptr_array_add (lines, g_strdup (text));
          g_ptr_array_add (lines, NULL);
          return (GStrv) g_ptr_array_free (lines, FALSE);
        }
      g_ptr_array_add (lines, g_strndup (text, (gsize) (newline - text)));
      text = newline + 1;
    }
}

/* A large valid answer: 50,000 agents, the first with an array of
 * 500,000 numbers in its metadata (3 MB in all). hbctl lists and checks
 * them in time linear in their size: json_gvariant_deserialize(), which
 * it used, appends each element of an array to a list, and took minutes
 * (more than 3 for 300,000 agents). The test's bound is meson's timeout;
 * the figures are in the log. */
static void
test_url_many_agents (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GHashTable) bodies = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  Canned canned = { bodies, NULL, NULL, NULL, NULL, FALSE, FALSE, 0 };
  GString *samples = g_string_new ("[0");
  GString *list = g_string_new ("{\"agents\": [");
  const guint n = 50000;
  g_autofree char *first = NULL;
  g_autofree char *url = NULL;
  g_auto(GStrv) lines = NULL;
  GThread *server;
  g_auto(Result) r = { 0 };
  gint64 start;

  for (guint i = 1; i < 500000; i++)
    g_string_append (samples, ",0");
  g_string_append (samples, "]");
  first = g_strdup_printf ("{\"id\": \"agent-000000\", \"state\": \"healthy\", \"last-activity-at-usec\": %"
                           G_GINT64_FORMAT ", \"metadata\": {\"samples\": %s}}", g_get_real_time (), samples->str);
  g_string_free (samples, TRUE);
  g_string_append (list, first);
  for (guint i = 1; i < n; i++)
    g_string_append_printf (list, ", {\"id\": \"agent-%06u\", \"state\": \"%s\"}", i, i % 3 == 2 ? "stale" : "healthy");
  g_string_append (list, "]}");
  g_test_message ("GET /v1/agents: %zu bytes", list->len);
  g_hash_table_insert (bodies, "/v1/agents", g_string_free (list, FALSE));
  g_hash_table_insert (bodies, "/v1/agents/agent-000000", g_steal_pointer (&first));
  g_hash_table_insert (bodies, "/health", g_strdup ("{\"status\": \"ok\"}"));
  url = canned_start (&canned, &server);

  start = g_get_monotonic_time ();
  hbctl_url (h, &r, url, "status");
  g_test_message ("status: %.1f s", (g_get_monotonic_time () - start) / 1e6);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  /* the header, a line an agent, "", the summary */
  lines = split_lines (r.out);
  g_assert_cmpuint (g_strv_length (lines), >=, n + 3);
  g_assert_true (g_str_has_prefix (lines[0], "AGENT "));
  /* problems first: the stale ones (every third from agent-000002), then
   * the healthy ones, each by id */
  g_assert_true (g_str_has_prefix (lines[1], "agent-000002 "));
  g_assert_true (g_str_has_prefix (lines[16666], "agent-049997 "));
  g_assert_true (g_str_has_prefix (lines[16667], "agent-000000 "));
  g_assert_true (g_str_has_prefix (lines[n], "agent-049999 "));
  g_assert_cmpstr (lines[n + 1], ==, "");
  g_assert_true (g_str_has_prefix (lines[n + 2], "50000 agents: 33334 healthy, 0 paused, 16666 stale, 0 error, "));

  result_clear (&r);
  start = g_get_monotonic_time ();
  hbctl_url (h, &r, url, "check", "agent-000000");
  g_test_message ("check: %.1f s", (g_get_monotonic_time () - start) / 1e6);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_true (g_str_has_prefix (r.out, "HEARTBEAT OK - agent-000000 is healthy (last seen "));
  canned_stop (&canned, server);
}

/* GET /v1/agents a page at a time: hbctl follows rel="next" on the same
 * server, to pages of /v1/agents it has not read, at most 1000 of them. */
static void
test_url_pages (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GHashTable) bodies = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  g_autoptr(GHashTable) links = g_hash_table_new (g_str_hash, g_str_equal);
  Canned canned = { bodies, NULL, NULL, links, NULL, FALSE, FALSE, 0 };
  g_autofree char *url = NULL;
  g_autoptr(JsonNode) root = NULL;
  GThread *server;
  g_auto(Result) r = { 0 };
  JsonArray *agents;

#define AGENT(id) "{\"id\": \"" id "\", \"state\": \"healthy\", \"last-activity-at-usec\": 0}"
  g_hash_table_insert (bodies, "/v1/agents", g_strdup ("{\"agents\": [" AGENT ("a1") ", " AGENT ("a2") "]}"));
  g_hash_table_insert (bodies, "/v1/agents?after=a2&limit=2",
                       g_strdup ("{\"agents\": [" AGENT ("a3") ", " AGENT ("a4") "]}"));
  g_hash_table_insert (bodies, "/v1/agents?after=a4&limit=2", g_strdup ("{\"agents\": [" AGENT ("a5") "]}"));
#undef AGENT
  g_hash_table_insert (bodies, "/health", g_strdup ("{\"status\": \"ok\", \"running\": true, \"agents\": 5}"));
  g_hash_table_insert (bodies, "/api/heartbeat/status", g_strdup ("{\"monitor\": {}}"));
  g_hash_table_insert (links, "/v1/agents", "</v1/agents?after=a2&limit=2>; rel=\"next\"");
  g_hash_table_insert (links, "/v1/agents?after=a2&limit=2", "</v1/agents?after=a4&limit=2>; rel=\"next\"");
  url = canned_start (&canned, &server);

  hbctl_url (h, &r, url, "--no-legend", "status");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  {
    g_auto(GStrv) lines = g_strsplit (r.out, "\n", -1);
    const char *ids[] = { "a1 ", "a2 ", "a3 ", "a4 ", "a5 " };

    g_assert_cmpuint (g_strv_length (lines), ==, 6);
    for (gsize i = 0; i < G_N_ELEMENTS (ids); i++)
      g_assert_true (g_str_has_prefix (lines[i], ids[i]));
  }
  result_clear (&r);
  hbctl_url (h, &r, url, "status", "--json");
  g_assert_cmpint (r.status, ==, 0);
  root = parse_json (r.out);
  agents = json_object_get_array_member (json_node_get_object (root), "agents");
  g_assert_cmpuint (json_array_get_length (agents), ==, 5);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (agents, 4), "id"), ==, "a5");
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (
    json_object_get_object_member (json_node_get_object (root), "status"), "agents")), ==, 5);

  /* a link that is not next, and one among others, in either form */
  g_hash_table_insert (links, "/v1/agents", "</v1/agents?after=a0>; rel=\"prev\"");
  result_clear (&r);
  hbctl_url (h, &r, url, "--no-legend", "status");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_true (g_str_has_prefix (r.out, "a1 "));
  g_assert_null (strstr (r.out, "a3"));
  g_hash_table_insert (links, "/v1/agents", "</v1/agents?after=a0>; rel=\"prev\", </v1/agents?after=a2&limit=2>; rel=next");
  result_clear (&r);
  hbctl_url (h, &r, url, "--no-legend", "status");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "\na5 "));

  /* links hbctl does not follow: elsewhere, not /v1/agents, a page read already */
  for (const char *const *link = (const char *const[]) {
         "<http://127.0.0.1:1/v1/agents?after=a2>; rel=\"next\"",
         "<//example.com/v1/agents?after=a2>; rel=\"next\"",
         "</v1/agentsX?after=a2>; rel=\"next\"",
         "</v1/agents?after=a2 &limit=2>; rel=\"next\"",
         "</v1/agents?after=a2&limit=2>; rel=\"next\"",   /* ... which links to itself */
         NULL };
       *link; link++)
    {
      g_hash_table_insert (links, "/v1/agents", (gpointer) *link);
      g_hash_table_insert (links, "/v1/agents?after=a2&limit=2", "</v1/agents?after=a2&limit=2>; rel=\"next\"");
      result_clear (&r);
      hbctl_url (h, &r, url, "--no-legend", "status");
      g_assert_cmpint (r.status, ==, 1);
      g_assert_cmpstr (r.out, ==, "");
      g_assert_nonnull (strstr (r.err, " links to a next page hbctl does not follow: "));
    }
  g_hash_table_insert (links, "/v1/agents", "/v1/agents?after=a2; rel=next");
  result_clear (&r);
  hbctl_url (h, &r, url, "--no-legend", "status");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, " answered with a Link header hbctl cannot read"));

  /* pages without end */
  canned.endless = TRUE;
  g_hash_table_insert (links, "/v1/agents", "</v1/agents?after=0>; rel=\"next\"");
  result_clear (&r);
  hbctl_url (h, &r, url, "--no-legend", "status");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_cmpstr (r.out, ==, "");
  g_assert_nonnull (strstr (r.err, " lists more agents than hbctl reads (at most 500000 agents, 1000 pages and 64 MiB)"));
  canned_stop (&canned, server);
}

/* ------------------------------------------------------------------ */
/* heartbeatd not running, and the bus cannot start it                 */

/* A bus with a service directory of the test's, and @service (the
 * activation file of HB_NAME, or NULL for none) in it. */
static void
write_activation_file (HbHarness *h, const char *dir, const char *service)
{
  g_autofree char *path = g_build_filename (dir, HB_NAME ".service", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  if (service)
    {
      g_autofree char *text = g_strdup_printf ("[D-BUS Service]\nName=" HB_NAME "\n%s\n", service);

      g_file_set_contents (path, text, -1, &error);
      g_assert_no_error (error);
    }
  else
    g_unlink (path);
  /* the bus reads its service files again before it answers */
  reply = g_dbus_connection_call_sync (h->client, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "ReloadConfig", NULL, NULL,
                                       G_DBUS_CALL_FLAGS_NONE, HB_WAIT_MS, NULL, &error);
  g_assert_no_error (error);
}

static void
assert_not_running (HbHarness *h, const char *expected, gboolean started)
{
  g_auto(Result) r = { 0 };

  for (const char *const *command = (const char *const[]) { "status", "list", "beat", "show", "register", NULL };
       *command; command++)
    {
      result_clear (&r);
      if (strcmp (*command, "status") == 0 || strcmp (*command, "list") == 0)
        hbctl (h, &r, *command);
      else
        hbctl (h, &r, *command, "x");
      g_assert_cmpint (r.status, ==, 3);
      g_assert_cmpstr (r.out, ==, "");
      g_assert_true (g_str_has_prefix (r.err, expected));
      g_assert_true (g_str_has_suffix (r.err, "\n"));
      g_assert_true (strchr (r.err, '\n') == r.err + strlen (r.err) - 1);   /* one line */
      g_assert_null (strstr (r.err, "StartServiceByName"));
      g_assert_null (strstr (r.err, "GDBus.Error"));
      g_assert_nonnull (strstr (r.err, ". Start it with: bash "));
      g_assert_true (g_str_has_suffix (r.err, "/tools/run.sh\n"));
      g_assert_true (started == (strstr (r.err, "could not be started: ") != NULL));
    }
  result_clear (&r);
  hbctl (h, &r, "check", "x");
  g_assert_cmpint (r.status, ==, 3);
  g_assert_true (g_str_has_prefix (r.out, "HEARTBEAT UNKNOWN - "));
  g_assert_true (g_str_has_prefix (r.out + strlen ("HEARTBEAT UNKNOWN - "), expected + strlen ("hbctl: ")));
}

static void
test_no_daemon (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autofree char *services = g_build_filename (h->tmpdir, "services", NULL);
  g_autofree char *copy = g_build_filename (h->tmpdir, "hbctl", NULL);
  g_autofree char *contents = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(Result) r = { 0 };
  gsize length;

  g_assert_cmpint (g_mkdir_with_parents (services, 0755), ==, 0);
  /* the activation of a service that never shows up times out soon */
  h->bus_extra_config = g_strdup_printf ("  <servicedir>%s</servicedir>\n"
                                         "  <limit name=\"service_start_timeout\">300</limit>\n", services);
  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return;

  /* no activation file: nothing can start it */
  assert_not_running (h, "hbctl: heartbeatd is not running on the session bus. Start it with: ", FALSE);

  /* the one the bus runs fails */
  write_activation_file (h, services, "Exec=/bin/false");
  assert_not_running (h, "hbctl: heartbeatd is not running on the session bus and could not be started: ", TRUE);

  /* the one the bus runs never takes the name: the activation times out
   * (an error GDBus has no code for, as systemd's UnitMasked) */
  write_activation_file (h, services, "Exec=/bin/sleep 5");
  assert_not_running (h, "hbctl: heartbeatd is not running on the session bus and could not be started: ", TRUE);

  /* an installed hbctl (not the build tree's) does not point to tools/run.sh */
  write_activation_file (h, services, NULL);
  g_file_get_contents (g_getenv ("HBCTL"), &contents, &length, &error);
  g_assert_no_error (error);
  g_file_set_contents_full (copy, contents, (gssize) length, G_FILE_SET_CONTENTS_NONE, 0755, &error);
  g_assert_no_error (error);
  {
    const char *argv[] = { copy, "--session", "status", NULL };
    g_autoptr(GSubprocessLauncher) l = launcher (h, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, NULL);
    g_autoptr(GSubprocess) p = g_subprocess_launcher_spawnv (l, argv, &error);

    g_assert_no_error (error);
    g_subprocess_communicate_utf8 (p, NULL, NULL, &r.out, &r.err, &error);
    g_assert_no_error (error);
    g_test_message ("installed: %s", r.err);
    g_assert_cmpint (wait_status_to_code (p), ==, 3);
    g_assert_true (g_str_has_prefix (r.err, "hbctl: heartbeatd is not running on the session bus. Start it with: /"));
    g_assert_true (g_str_has_suffix (r.err, "/heartbeatd --session\n"));
    g_assert_null (strstr (r.err, "run.sh"));
  }
}

/* ------------------------------------------------------------------ */
/* Translation                                                         */

static void
test_german (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  const char *localedir = g_getenv ("HB_LOCALEDIR");
  g_autofree char *mo = localedir ? g_build_filename (localedir, "de", "LC_MESSAGES", "heartbeat.mo", NULL) : NULL;
  const char *german[] = { "LANGUAGE", "de", "HB_LOCALEDIR", localedir, NULL };
  g_auto(Result) en = { 0 };
  g_auto(Result) de = { 0 };

  if (mo == NULL || !g_file_test (mo, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("no German catalog in the build tree");
      return;
    }
  if (!hb_harness_start_default (h))
    return;

  hbctl (h, &en, "beat", "ghost");
  run_full (h, FALSE, german, (const char *const[]) { "beat", "ghost", NULL }, &de);
  g_assert_cmpint (de.status, ==, 1);
  g_assert_cmpstr (en.err, ==, "hbctl: there is no agent \"ghost\"\n");
  g_assert_cmpstr (de.err, !=, en.err);
  g_assert_nonnull (strstr (de.err, "ghost"));
  g_assert_nonnull (strstr (de.err, "Agent"));
}


/* ------------------------------------------------------------------ */
/* On call: problems first, filters, reasons, honest states, colour    */

/* The agents' ids in the rows of `status` output (the first word of each
 * line up to the blank line; the header left out when @header) */
static GStrv
listed_ids (const char *out, gboolean header)
{
  g_auto(GStrv) lines = g_strsplit (out, "\n", -1);
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();

  for (gsize i = header ? 1 : 0; lines[i] && *lines[i]; i++)
    {
      g_autofree char *id = g_strndup (lines[i], strcspn (lines[i], " "));

      g_strv_builder_add (b, id);
    }
  return g_strv_builder_end (b);
}

static void
assert_ids (const char *out, gboolean header, const char *const *expected)
{
  g_auto(GStrv) ids = listed_ids (out, header);
  g_autofree char *got = g_strjoinv (" ", ids);
  g_autofree char *wanted = g_strjoinv (" ", (char **) expected);

  g_assert_cmpstr (got, ==, wanted);
}

/* --failed lists exactly the agents with a problem (severity >= 2: not
 * healthy, not paused), the most severe first; --state= filters by state
 * and refuses one it does not know, saying the valid ones. With the real
 * daemon, one agent in each state it can be brought to here. */
static void
test_status_failed (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autofree char *config = g_strconcat (hb_default_config, "\n[agent:e-declared]\n", NULL);
  const char *sleep_argv[] = { "sleep", "600", NULL };
  g_autofree char *pid = NULL;
  g_auto(Result) r = { 0 };
  HbChild *sleeper;
  guint cursor;

  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return;
  hb_harness_write_config (h, config);
  hb_harness_start_daemon (h, 0);
  cursor = hb_harness_signal_cursor (h);

  /* (an hour to go stale: however slow a loaded machine is) */
  hbctl_ok (h, "register", "a-fine", "--stale", "1h");
  hbctl_ok (h, "register", "b-broken", "--stale", "1h");
  hbctl_ok (h, "beat", "b-broken", "--status", "error");
  hbctl_ok (h, "register", "c-quiet", "--stale", "200ms");
  sleeper = hb_harness_spawn (h, sleep_argv);
  pid = g_strdup_printf ("%d", (int) sleeper->pid);
  hbctl_ok (h, "register", "d-exited", "--pid", pid);
  hbctl_ok (h, "register", "f-slow", "--timeout", "300ms", "--stale", "1h");
  g_assert_cmpint (kill (sleeper->pid, SIGKILL), ==, 0);
  hb_wait_signal (h, &cursor, "AgentStateChanged", "d-exited", "healthy", "gone");
  hb_harness_wait_exit (h, sleeper, HB_WAIT_MS);
  hb_wait_signal (h, &cursor, "AgentStale", "c-quiet", NULL, NULL);
  hb_wait_signal (h, &cursor, "AgentTimedOut", "f-slow", NULL, NULL);

  /* every agent, problems first: timed-out, gone, error, stale,
   * no-heartbeat, then the healthy one */
  hbctl (h, &r, "status");
  g_assert_cmpint (r.status, ==, 0);
  assert_ids (r.out, TRUE, (const char *const[]) { "f-slow", "d-exited", "b-broken", "c-quiet", "e-declared",
                                                   "a-fine", NULL });
  g_assert_nonnull (strstr (r.out, "6 agents: 1 healthy, 0 paused, 1 stale, 1 error, 1 timed-out, 1 gone, 1 no-heartbeat"));

  /* --failed: exactly the five with a problem, in the same order */
  result_clear (&r);
  hbctl (h, &r, "status", "--failed");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  assert_ids (r.out, TRUE, (const char *const[]) { "f-slow", "d-exited", "b-broken", "c-quiet", "e-declared", NULL });
  g_assert_nonnull (strstr (r.out, "\n5 of 6 agents listed\n"));

  /* --state=, one or several, repeated or with commas */
  result_clear (&r);
  hbctl (h, &r, "--no-legend", "status", "--state=stale,healthy");
  assert_ids (r.out, FALSE, (const char *const[]) { "c-quiet", "a-fine", NULL });
  result_clear (&r);
  hbctl (h, &r, "--no-legend", "status", "--state", "gone", "--state=error");
  assert_ids (r.out, FALSE, (const char *const[]) { "d-exited", "b-broken", NULL });
  /* nothing of the gone one runs: no running clock (RUNNING "-") */
  g_assert_true (g_regex_match_simple ("^d-exited +gone +pid [0-9]+ exited +[0-9]+ +- ", r.out,
                                       G_REGEX_MULTILINE, 0));
  /* a state nobody is in: no rows, and no failure */
  result_clear (&r);
  hbctl (h, &r, "--no-legend", "status", "--state=paused");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.out, ==, "");
  /* --failed and --state= together: both hold */
  result_clear (&r);
  hbctl (h, &r, "--no-legend", "status", "--failed", "--state=healthy,gone");
  assert_ids (r.out, FALSE, (const char *const[]) { "d-exited", NULL });

  /* an unknown state is refused, with the valid ones */
  result_clear (&r);
  hbctl (h, &r, "status", "--state=running");
  g_assert_cmpint (r.status, ==, 2);
  g_assert_cmpstr (r.out, ==, "");
  g_assert_cmpstr (r.err, ==, "hbctl: unknown state \"running\" (the states are: healthy, paused, no-heartbeat, "
                              "stale, error, gone, timed-out)\n");
  result_clear (&r);
  hbctl (h, &r, "status", "--state=stale,", "--state=Healthy");
  g_assert_cmpint (r.status, ==, 2);
  g_assert_nonnull (strstr (r.err, "unknown state \"Healthy\""));
  result_clear (&r);
  hbctl (h, &r, "status", "--state=help");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.out, ==, "healthy\npaused\nno-heartbeat\nstale\nerror\ngone\ntimed-out\n");

  /* show, honest: the gone one since when and why, no running clock; the
   * one that never beat waits for its first beat */
  result_clear (&r);
  hbctl (h, &r, "show", "d-exited");
  {
    g_autofree char *why = g_strdup_printf (" (pid %s exited)\n", pid);
    g_autofree char *pid_line = g_strdup_printf ("\nPID:           %s (exited)\n", pid);

    g_assert_nonnull (strstr (r.out, "\nState:         gone since "));
    g_assert_nonnull (strstr (r.out, why));
    g_assert_nonnull (strstr (r.out, pid_line));
    /* not "running" */
    g_assert_null (strstr (r.out, "\nStatus:        running\n"));
    g_assert_null (strstr (r.out, "Running:"));
  }
  result_clear (&r);
  hbctl (h, &r, "show", "a-fine");
  g_assert_nonnull (strstr (r.out, "\nState:         healthy since "));
  g_assert_nonnull (strstr (r.out, "\nLast seen:     waiting for its first beat\n"));
  g_assert_nonnull (strstr (r.out, "\nBeats:         none yet\n"));

  /* --json: the listed agents only */
  result_clear (&r);
  hbctl (h, &r, "status", "--json", "--failed");
  {
    g_autoptr(JsonNode) root = parse_json (r.out);
    JsonArray *agents = json_object_get_array_member (json_node_get_object (root), "agents");

    g_assert_cmpuint (json_array_get_length (agents), ==, 5);
    for (guint i = 0; i < 5; i++)
      g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (agents, i), "state"), !=,
                       "healthy");
  }
}

/* The same filters over a stand-in for the HTTP API with the record's
 * keys (severity, reason, tags): all seven states, two tagged "db". */
static void
test_status_filters_url (Fixture *f, gconstpointer data)
{
  g_autoptr(GHashTable) bodies = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  Canned canned = { bodies, NULL, NULL, NULL, NULL, FALSE, FALSE, 0 };
  static const struct { const char *id, *state, *reason, *tags; guint severity; } agents[] = {
    { "alpha", "healthy", "", "[\"db\"]", 0 },
    { "bravo", "paused", "disk swap", "[]", 1 },
    { "charlie", "no-heartbeat", "never beat", "[]", 2 },
    { "delta", "stale", "no activity for more than 5m", "[\"db\", \"prod\"]", 3 },
    { "echo", "error", "exit status 3: disk full", "[]", 4 },
    { "foxtrot", "gone", "pid 17788 exited", "[]", 5 },
    { "golf", "timed-out", "running longer than 30m", "[]", 6 },
  };
  const char *const sixty[] = { "COLUMNS", "60", NULL };
  g_autoptr(GString) list = g_string_new ("{\"agents\": [");
  g_autofree char *url = NULL;
  g_auto(Result) r = { 0 };
  g_auto(GStrv) lines = NULL;
  GThread *server;

  for (gsize i = 0; i < G_N_ELEMENTS (agents); i++)
    g_string_append_printf (list, "%s{\"id\": \"%s\", \"state\": \"%s\", \"reason\": \"%s\", \"severity\": %u,"
                            " \"tags\": %s, \"status\": \"running\", \"task-id\": \"\", \"beats\": 1,"
                            " \"last-activity-at-usec\": %" G_GINT64_FORMAT "}",
                            i ? ", " : "", agents[i].id, agents[i].state, agents[i].reason, agents[i].severity,
                            agents[i].tags, g_get_real_time ());
  g_string_append (list, "]}");
  g_hash_table_insert (bodies, "/v1/agents", g_string_free (g_steal_pointer (&list), FALSE));
  url = canned_start (&canned, &server);

  /* problems first; the reason next to the state */
  hbctl (f->h, &r, "--url", url, "status");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  assert_ids (r.out, TRUE, (const char *const[]) { "golf", "foxtrot", "echo", "delta", "charlie", "bravo", "alpha",
                                                   NULL });
  lines = g_strsplit (r.out, "\n", -1);
  g_assert_true (g_str_has_prefix (lines[0], "AGENT    STATE         REASON                        PID  "));
  {
    g_autofree char *reason = cell_under (lines[0], lines[3], "REASON");
    g_autofree char *healthy = cell_under (lines[0], lines[7], "REASON");

    g_assert_cmpstr (reason, ==, "exit status 3: disk full");
    g_assert_cmpstr (healthy, ==, "-");
  }
  g_assert_nonnull (strstr (r.out, "7 agents: 1 healthy, 1 paused, 1 stale, 1 error, 1 timed-out, 1 gone, 1 no-heartbeat"));

  /* --failed: not the healthy one, not the paused one */
  result_clear (&r);
  hbctl (f->h, &r, "--url", url, "--no-legend", "status", "--failed");
  assert_ids (r.out, FALSE, (const char *const[]) { "golf", "foxtrot", "echo", "delta", "charlie", NULL });
  /* --tag: the agents with it */
  result_clear (&r);
  hbctl (f->h, &r, "--url", url, "--no-legend", "status", "--tag=db");
  assert_ids (r.out, FALSE, (const char *const[]) { "delta", "alpha", NULL });
  result_clear (&r);
  hbctl (f->h, &r, "--url", url, "--no-legend", "status", "--tag=prod", "--failed");
  assert_ids (r.out, FALSE, (const char *const[]) { "delta", NULL });
  result_clear (&r);
  hbctl (f->h, &r, "--url", url, "status", "--tag=no such");
  g_assert_cmpint (r.status, ==, 2);
  g_assert_nonnull (strstr (r.err, "\"no such\" is not a tag"));
  /* the daemon's rule (src/common/hb-name.h): not a path segment either */
  result_clear (&r);
  hbctl (f->h, &r, "--url", url, "status", "--tag=..");
  g_assert_cmpint (r.status, ==, 2);
  g_assert_nonnull (strstr (r.err, "\"..\" is not a tag"));
  /* narrow: the reason is cut with "…", never left out */
  result_clear (&r);
  hbctl_env (f->h, sixty, &r, "--url", url, "status");
  g_clear_pointer (&lines, g_strfreev);
  lines = g_strsplit (r.out, "\n", -1);
  g_assert_nonnull (strstr (lines[0], "REASON"));
  for (gsize i = 0; i < 8; i++)
    g_assert_cmpint (columns_of (lines[i]), <=, 60);
  g_assert_nonnull (strstr (lines[1], "running lon"));
  canned_stop (&canned, server);
}

/* Global options after the command, for every verb; "--" still ends
 * the options (an id, or run's command, that looks like one). */
static void
test_options_after (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autofree char *url = NULL;
  g_auto(Result) r = { 0 };

  h->http_port = hb_free_port ();
  if (!hb_harness_start_default (h))
    return;
  url = g_strdup_printf ("http://127.0.0.1:%u", h->http_port);
  hbctl_ok (h, "register", "web", "--no-color");
  hbctl_ok (h, "beat", "web", "--no-colour", "--session");
  hbctl_ok (h, "idle", "web", "--no-color");

  /* the case of the issue: refused with a hint about ids before */
  hbctl (h, &r, "status", "--no-color");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  g_assert_true (g_str_has_prefix (r.out, "AGENT "));
  result_clear (&r);
  hbctl (h, &r, "status", "--no-legend", "--failed", "--no-color");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.out, ==, "");
  result_clear (&r);
  hbctl (h, &r, "status", "--no-legend");
  g_assert_true (g_str_has_prefix (r.out, "web "));
  /* --url after the command: the HTTP API is asked */
  result_clear (&r);
  hbctl (h, &r, "show", "web", "--url", url);
  g_assert_cmpint (r.status, ==, 0);
  g_assert_true (g_str_has_prefix (r.out, "Agent:         web\n"));
  result_clear (&r);
  hbctl (h, &r, "check", "web", "--url=http://127.0.0.1:1");
  g_assert_cmpint (r.status, ==, 3);
  g_assert_true (g_str_has_prefix (r.out, "HEARTBEAT UNKNOWN - cannot reach http://127.0.0.1:1"));
  result_clear (&r);
  hbctl (h, &r, "list", "--url", url);
  g_assert_cmpint (r.status, ==, 2);
  g_assert_cmpstr (r.err, ==, "hbctl: list is not available with --url (status, show, beat, check, pause and "
                              "resume are)\n");
  result_clear (&r);
  hbctl (h, &r, "list", "--json", "--no-legend");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "\"web\""));
  /* an unknown option is still refused */
  result_clear (&r);
  hbctl (h, &r, "status", "--no-such");
  g_assert_cmpint (r.status, ==, 2);

  /* after "--": an argument, not an option */
  hbctl_ok (h, "register", "--no-color", "--", "--no-legend");
  result_clear (&r);
  hbctl (h, &r, "list");
  g_assert_nonnull (strstr (r.out, "--no-legend\n"));
  result_clear (&r);
  hbctl (h, &r, "run", "--no-color", "--name", "echoer", "--interval", "1s", "--", "sh", "-c", "echo \"$1\"", "sh",
         "--no-color");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.out, ==, "--no-color\n");
}

/* Runs hbctl ARGS on a terminal (script(1) gives it one) with @env; the
 * output, or NULL (test skipped) without script(1). */
static char *
run_on_tty (HbHarness *h, const char *const *env, const char *const *args)
{
  g_autofree char *script = g_find_program_in_path ("script");
  g_auto(GStrv) argv = hbctl_argv (FALSE, args);
  g_autoptr(GString) command = g_string_new (NULL);
  g_autoptr(GSubprocessLauncher) l = NULL;
  g_autoptr(GSubprocess) p = NULL;
  g_autoptr(GError) error = NULL;
  char *out = NULL;

  if (script == NULL)
    {
      g_test_skip ("script(1) is not installed");
      return NULL;
    }
  for (gsize i = 0; argv[i]; i++)
    {
      g_autofree char *quoted = g_shell_quote (argv[i]);

      g_string_append_printf (command, "%s%s", i ? " " : "", quoted);
    }
  l = launcher (h, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDIN_PIPE, env);
  p = g_subprocess_launcher_spawn (l, &error, script, "-q", "-e", "-c", command->str, "/dev/null", NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (p, "", NULL, &out, NULL, &error);
  g_assert_no_error (error);
  g_test_message ("on a tty: %s → %d\n%s", command->str, wait_status_to_code (p), out);
  g_assert_cmpint (wait_status_to_code (p), ==, 0);
  return out;
}

/* Colour on a terminal only (isatty, TERM not dumb), as systemctl: never
 * piped, never with NO_COLOR or --no-color (before or after the command);
 * HBCTL_COLORS=1 forces it, HBCTL_COLORS=0 forbids it. */
static void
test_colour (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  const char *const xterm[] = { "TERM", "xterm", NULL };
  const char *const dumb[] = { "TERM", "dumb", NULL };
  const char *const no_color[] = { "TERM", "xterm", "NO_COLOR", "1", NULL };
  const char *const forbid[] = { "TERM", "xterm", "HBCTL_COLORS", "0", NULL };
  const char *const force[] = { "HBCTL_COLORS", "1", NULL };
  g_autofree char *show = NULL, *status = NULL, *text = NULL;
  g_auto(Result) r = { 0 };

  if (!hb_harness_start_default (h))
    return;
  hbctl_ok (h, "register", "web", "--stale", "1h");
  hbctl_ok (h, "register", "broken", "--stale", "1h");
  hbctl_ok (h, "beat", "broken", "--status", "error");

  show = run_on_tty (h, xterm, (const char *const[]) { "show", "web", NULL });
  if (show == NULL)
    return;
  g_assert_nonnull (strstr (show, "State:         \033[32mhealthy\033[0m"));
  status = run_on_tty (h, xterm, (const char *const[]) { "status", NULL });
  g_assert_nonnull (strstr (status, "\033[32m● healthy\033[0m"));
  g_assert_nonnull (strstr (status, "\033[1;31m✖ error\033[0m"));
  /* not with TERM=dumb, NO_COLOR, --no-color (either side), HBCTL_COLORS=0 */
  text = run_on_tty (h, dumb, (const char *const[]) { "show", "web", NULL });
  g_assert_null (strchr (text, '\033'));
  g_clear_pointer (&text, g_free);
  text = run_on_tty (h, no_color, (const char *const[]) { "status", NULL });
  g_assert_null (strchr (text, '\033'));
  g_clear_pointer (&text, g_free);
  text = run_on_tty (h, xterm, (const char *const[]) { "show", "web", "--no-color", NULL });
  g_assert_null (strchr (text, '\033'));
  g_assert_nonnull (strstr (text, "State:         healthy"));
  g_clear_pointer (&text, g_free);
  text = run_on_tty (h, xterm, (const char *const[]) { "--no-color", "status", NULL });
  g_assert_null (strchr (text, '\033'));
  g_clear_pointer (&text, g_free);
  text = run_on_tty (h, forbid, (const char *const[]) { "status", NULL });
  g_assert_null (strchr (text, '\033'));

  /* piped: never, even with TERM set; HBCTL_COLORS=1 forces it */
  hbctl_env (h, xterm, &r, "show", "web");
  g_assert_null (strchr (r.out, '\033'));
  result_clear (&r);
  hbctl_env (h, force, &r, "show", "web");
  g_assert_nonnull (strstr (r.out, "\033[32mhealthy\033[0m"));
}

/* `show` says what is so: a gone agent since when and why, without a
 * running clock or "running" as its status; one that never beat waits for
 * its first beat; an idle one runs nothing; a paused one since when, by
 * whom and why; tags, uptime over 24 h; metadata as "key: value" lines.
 * From a stand-in for the HTTP API with the record's keys. */
static void
test_show_honest (Fixture *f, gconstpointer data)
{
  const char *const utc[] = { "TZ", "UTC", NULL };
  g_autoptr(GHashTable) bodies = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  Canned canned = { bodies, NULL, NULL, NULL, NULL, FALSE, FALSE, 0 };
  gint64 now = g_get_real_time ();
  /* a whole second, today (or just past midnight: the date is then said) */
  gint64 since = (now - 90 * G_USEC_PER_SEC) / G_USEC_PER_SEC * G_USEC_PER_SEC;
  g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc (since / G_USEC_PER_SEC);
  g_autoptr(GDateTime) today = g_date_time_new_now_utc ();
  g_autofree char *clock = g_date_time_get_day_of_year (t) == g_date_time_get_day_of_year (today)
                           ? g_date_time_format (t, "%H:%M:%S") : g_date_time_format (t, "%Y-%m-%d %H:%M:%S");
  g_autofree char *url = NULL, *expected = NULL;
  g_auto(Result) r = { 0 };
  GThread *server;

#define AGENT_JSON(id, state, extra) \
  g_strdup_printf ("{\"id\": \"" id "\", \"state\": \"" state "\", \"task-id\": \"\", \"owner-uid\": 0," \
                   " \"started-at-usec\": %" G_GINT64_FORMAT ", \"last-activity-at-usec\": %" G_GINT64_FORMAT "," \
                   " \"stale-after-usec\": 300000000, \"timeout-after-usec\": 0, \"declared\": false," \
                   " \"bound-to\": \"\", \"state-since-usec\": %" G_GINT64_FORMAT ", " extra "}", \
                   since - 600 * G_USEC_PER_SEC, since, since)
  g_hash_table_insert (bodies, "/v1/agents/worker", AGENT_JSON ("worker", "gone",
    "\"status\": \"running\", \"reason\": \"pid 17788 exited\", \"pid\": 17788, \"beats\": 5,"
    " \"running-usec\": 61000000, \"tags\": [\"db\", \"prod\"], \"uptime-24h\": 0.25,"
    " \"metadata\": {\"reason\": \"disk full\", \"count\": 3, \"ratio\": 0.5, \"ok\": true, \"hosts\": [\"a\", \"b\"],"
    " \"nested\": {\"k\": 1}, \"log\": \"first\\nsecond\\nthird\\n\", \"evil\": \"\\u001b[2Jx\"}"));
  g_hash_table_insert (bodies, "/v1/agents/fresh", AGENT_JSON ("fresh", "healthy",
    "\"status\": \"running\", \"reason\": \"waiting for its first beat\", \"pid\": 0, \"beats\": 0,"
    " \"running-usec\": 5000000, \"tags\": [], \"uptime-24h\": -1, \"metadata\": {}"));
  g_hash_table_insert (bodies, "/v1/agents/resting", AGENT_JSON ("resting", "healthy",
    "\"status\": \"idle\", \"reason\": \"\", \"pid\": 0, \"beats\": 4, \"running-usec\": 0, \"metadata\": {}"));
  g_hash_table_insert (bodies, "/v1/agents/held", AGENT_JSON ("held", "paused",
    "\"status\": \"running\", \"reason\": \"disk swap\", \"pid\": 0, \"beats\": 4, \"running-usec\": 0,"
    " \"paused-reason\": \"disk swap\", \"paused-by-uid\": 0, \"metadata\": {},"
    " \"paused-at-usec\": 0, \"severity\": 1"));
  /* a job whose last run succeeded and said something: its last words */
  g_hash_table_insert (bodies, "/v1/agents/tidy", AGENT_JSON ("tidy", "healthy",
    "\"status\": \"idle\", \"reason\": \"\", \"pid\": 0, \"beats\": 0, \"running-usec\": 0, \"metadata\": {},"
    " \"last-run\": {\"result\": \"success\", \"exit-status\": 0, \"output\": \"one\\nall 42 files copied\\n\"}"));
  g_hash_table_insert (bodies, "/v1/agents/tidy/runs", g_strdup_printf (
    "[{\"result\": \"failure\", \"exit-status\": 3, \"started-usec\": %" G_GINT64_FORMAT ", \"output\": \"bad\\n\"},"
    " {\"result\": \"success\", \"exit-status\": 0, \"started-usec\": %" G_GINT64_FORMAT ","
    " \"output\": \"one\\nall 42 files copied\\n\"}]", since - G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC, since));
#undef AGENT_JSON
  for (const char *const *id = (const char *const[]) { "worker", "fresh", "resting", "held", "tidy", NULL }; *id; id++)
    {
      g_autofree char *path = g_strdup_printf ("/v1/agents/%s/history", *id);

      g_hash_table_insert (bodies, (gpointer) g_intern_string (path), g_strdup ("{\"history\": []}"));
    }
  url = canned_start (&canned, &server);

  hbctl_env (f->h, utc, &r, "--url", url, "show", "worker");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  expected = g_strdup_printf ("\nState:         gone since %s (pid 17788 exited)\n", clock);
  g_assert_nonnull (strstr (r.out, expected));
  g_assert_nonnull (strstr (r.out, "\nStatus:        running (the last it reported)\n"));
  g_assert_nonnull (strstr (r.out, "\nPID:           17788 (exited)\n"));
  g_assert_null (strstr (r.out, "Running:"));
  g_assert_nonnull (strstr (r.out, "\nTags:          db, prod\n"));
  g_assert_nonnull (strstr (r.out, "\nUptime (24h):  25.0%\n"));
  /* metadata: sorted "key: value" lines, never GVariant text */
  g_assert_nonnull (strstr (r.out, "\nMetadata:      count: 3\n"
                                   "               evil: ?[2Jx\n"
                                   "               hosts: a, b\n"
                                   "               log: …third (3 lines)\n"
                                   "               nested: {\"k\":1}\n"
                                   "               ok: true\n"
                                   "               ratio: 0.5\n"
                                   "               reason: disk full\n"));
  g_assert_null (strstr (r.out, "<"));
  g_assert_null (strstr (r.out, "{'"));
  g_assert_null (strchr (r.out, '\033'));

  result_clear (&r);
  hbctl_env (f->h, utc, &r, "--url", url, "show", "fresh");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "\nLast seen:     waiting for its first beat\n"));
  g_assert_nonnull (strstr (r.out, "\nBeats:         none yet\n"));
  g_assert_nonnull (strstr (r.out, " (waiting for its first beat)\n"));
  g_assert_null (strstr (r.out, "Running:"));
  g_assert_null (strstr (r.out, " ago\nRunning"));
  g_assert_nonnull (strstr (r.out, "\nUptime (24h):  unknown\n"));
  g_assert_nonnull (strstr (r.out, "\nTags:          -\n"));
  g_assert_nonnull (strstr (r.out, "\nMetadata:      -\n"));

  result_clear (&r);
  hbctl_env (f->h, utc, &r, "--url", url, "show", "resting");
  g_assert_nonnull (strstr (r.out, "\nRunning:       nothing (idle)\n"));

  result_clear (&r);
  hbctl_env (f->h, utc, &r, "--url", url, "show", "held");
  g_clear_pointer (&expected, g_free);
  expected = g_strdup_printf ("\nState:         paused since %s by uid 0 (root): disk swap\n", clock);
  g_assert_nonnull (strstr (r.out, expected));
  g_assert_null (strstr (r.out, "Running:"));

  /* the newest run's output, a success's too (not the older failure's) */
  result_clear (&r);
  hbctl_env (f->h, utc, &r, "--url", url, "show", "tidy");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "\nOutput:        (the end of the run of "));
  g_assert_nonnull (strstr (r.out, ")\n               one\n               all 42 files copied\n"));
  g_assert_null (strstr (r.out, "bad"));
  g_assert_null (strstr (r.out, "Beats:"));
  g_assert_nonnull (strstr (r.out, "\nRunning:       nothing (idle)\n"));
  canned_stop (&canned, server);
}

/* `show` of an agent with metadata from the real daemon: "key: value"
 * lines whatever their type. */
static void
test_show_metadata (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_auto(Result) r = { 0 };

  if (!hb_harness_start_default (h))
    return;
  hbctl_ok (h, "register", "web", "--set", "count=3", "--set", "note=disk nearly full", "--set", "ok=true",
            "--set", "ratio=0.25", "--set", "quoted='x'");
  hbctl (h, &r, "show", "web");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "\nMetadata:      count: 3\n"
                                   "               note: disk nearly full\n"
                                   "               ok: true\n"
                                   "               quoted: x\n"
                                   "               ratio: 0.25\n"));
  g_assert_null (strstr (r.out, "<"));
}


/* `check` says why after the state: the metadata's reason of an error
 * ("|" made "/": a plugin's text ends there), the stale threshold, a
 * pause's reason (OK); `status` shows it in its REASON column. */
static void
test_check_reason (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_auto(Result) r = { 0 };
  guint cursor;

  if (!hb_harness_start_default (h))
    return;
  cursor = hb_harness_signal_cursor (h);
  hbctl_ok (h, "register", "broken", "--stale", "1h");
  hbctl_ok (h, "beat", "broken", "--status", "error", "--set", "reason=disk full");
  hbctl_ok (h, "register", "piped", "--stale", "1h");
  hbctl_ok (h, "beat", "piped", "--status", "error", "--set", "reason=a|b");
  hbctl_ok (h, "register", "quiet", "--stale", "200ms");
  hbctl_ok (h, "register", "held", "--stale", "1h");
  hbctl_ok (h, "pause", "held", "--reason", "disk swap");
  hb_wait_signal (h, &cursor, "AgentStale", "quiet", NULL, NULL);

  hbctl (h, &r, "check", "broken");
  g_assert_cmpint (r.status, ==, 2);
  g_assert_true (g_str_has_prefix (r.out, "HEARTBEAT CRITICAL - broken is error: disk full (last seen "));
  result_clear (&r);
  hbctl (h, &r, "check", "piped");
  g_assert_true (g_str_has_prefix (r.out, "HEARTBEAT CRITICAL - piped is error: a/b (last seen "));
  g_assert_null (strchr (r.out, '|'));
  result_clear (&r);
  hbctl (h, &r, "check", "quiet");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_true (g_str_has_prefix (r.out, "HEARTBEAT WARNING - quiet is stale: no activity for more than "));
  result_clear (&r);
  hbctl (h, &r, "check", "held");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_true (g_str_has_prefix (r.out, "HEARTBEAT OK - held is paused: disk swap (last seen "));

  result_clear (&r);
  hbctl (h, &r, "status");
  {
    g_auto(GStrv) lines = g_strsplit (r.out, "\n", -1);
    g_autofree char *reason = NULL;

    /* problems first: error (broken, piped), stale (quiet), paused (held) */
    assert_ids (r.out, TRUE, (const char *const[]) { "broken", "piped", "quiet", "held", NULL });
    reason = cell_under (lines[0], lines[1], "REASON");
    g_assert_cmpstr (reason, ==, "disk full");
    g_clear_pointer (&reason, g_free);
    reason = cell_under (lines[0], lines[4], "REASON");
    g_assert_cmpstr (reason, ==, "disk swap");
  }
}

/* A running `hbctl watch` (text), read line by line */
typedef struct {
  GSubprocess      *p;
  GDataInputStream *in;
  Reader            reader;
  gsize             seen;   /* the output up to here was matched already */
} Watcher;

static void
watcher_start (HbHarness *h, Watcher *w)
{
  g_autoptr(GSubprocessLauncher) l = launcher (h, G_SUBPROCESS_FLAGS_STDOUT_PIPE, NULL);
  g_auto(GStrv) argv = hbctl_argv (FALSE, (const char *const[]) { "watch", NULL });
  g_autoptr(GError) error = NULL;
  gboolean timed_out = FALSE;
  guint timeout;

  w->p = g_subprocess_launcher_spawnv (l, (const char *const *) argv, &error);
  g_assert_no_error (error);
  w->in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (w->p));
  w->reader = (Reader) { g_string_new (NULL), FALSE };
  read_next (w->in, &w->reader);
  /* subscribed once it prints a probe's registration */
  timeout = g_timeout_add (HB_WAIT_MS, on_flag_timeout, &timed_out);
  for (guint probe = 0; !timed_out && !w->reader.done && strstr (w->reader.text->str, "probe-") == NULL; probe++)
    {
      g_autofree char *probe_id = g_strdup_printf ("probe-%u", probe);
      gint64 until = g_get_monotonic_time () + G_USEC_PER_SEC / 5;

      hbctl_ok (h, "register", probe_id);
      while (!timed_out && !w->reader.done && strstr (w->reader.text->str, "probe-") == NULL &&
             g_get_monotonic_time () < until)
        g_main_context_iteration (NULL, FALSE) || (g_usleep (1000), TRUE);
    }
  g_assert_false (timed_out);
  g_source_remove (timeout);
}

/* Waits (bounded) until the output after what was matched before holds
 * @needle */
static void
watcher_wait (Watcher *w, const char *needle)
{
  gboolean timed_out = FALSE;
  guint timeout = g_timeout_add (HB_WAIT_MS, on_flag_timeout, &timed_out);
  const char *found = NULL;

  while (!timed_out && !w->reader.done && (found = strstr (w->reader.text->str + w->seen, needle)) == NULL)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (timeout);
  g_test_message ("watch, waiting for \"%s\": %s", needle, w->reader.text->str + w->seen);
  g_assert_nonnull (found);
  w->seen = (gsize) (found - w->reader.text->str) + strlen (needle);
}

static char *
watcher_stop (Watcher *w)
{
  g_subprocess_send_signal (w->p, SIGTERM);
  g_assert_cmpint (wait_exit (w->p), ==, 0);
  while (!w->reader.done)
    g_main_context_iteration (NULL, TRUE);
  g_clear_object (&w->in);
  g_clear_object (&w->p);
  return g_string_free (w->reader.text, FALSE);
}

/* `watch` prints each change of state with why, and "recovered" only for
 * a change to healthy: stale -> error is no recovery. */
static void
test_watch_reason (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  Watcher w = { 0 };
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  guint recovered = 0;

  if (!hb_harness_start_default (h))
    return;
  watcher_start (h, &w);
  hbctl_ok (h, "register", "w", "--stale", "300ms");
  watcher_wait (&w, "  w  healthy -> stale (no activity for more than ");
  hbctl_ok (h, "beat", "w", "--status", "error", "--set", "reason=disk full");
  watcher_wait (&w, "  w  stale -> error (disk full)\n");
  /* what follows the change is printed before the next event: a marker's */
  hbctl_ok (h, "register", "marker-1");
  watcher_wait (&w, "  marker-1  ");
  g_assert_null (strstr (w.reader.text->str, "  recovered     w  "));
  /* back to healthy from error: a change, not the end of a stale spell */
  hbctl_ok (h, "beat", "w", "--status", "running", "--set", "reason=''");
  watcher_wait (&w, "  w  error -> healthy\n");
  /* stale again, then a beat: that is a recovery, and said once */
  watcher_wait (&w, "  w  healthy -> stale (no activity for more than ");
  hbctl_ok (h, "beat", "w");
  watcher_wait (&w, "  w  stale -> healthy\n");
  watcher_wait (&w, "  recovered     w  ");
  text = watcher_stop (&w);
  lines = g_strsplit (text, "\n", -1);
  for (gsize i = 0; lines[i]; i++)
    recovered += strstr (lines[i], "  recovered     w  ") != NULL;
  g_assert_cmpuint (recovered, ==, 1);
  g_assert_null (strchr (text, '\033'));
}

/* One request to the daemon's HTTP API; returns the status */
static guint
http_request (guint16 port, const char *method, const char *path, const char *body)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnection) connection = g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, &error);
  g_autoptr(GDataInputStream) in = NULL;
  g_autofree char *request = NULL, *status_line = NULL;
  guint status = 0;

  g_assert_no_error (error);
  request = g_strdup_printf ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                             method, path, strlen (body), body);
  g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (connection)),
                                            request, strlen (request), NULL, NULL, &error));
  g_assert_no_error (error);
  in = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (connection)));
  status_line = g_data_input_stream_read_line (in, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (status_line);
  sscanf (status_line, "HTTP/1.%*d %u", &status);
  return status;
}

/* pause and resume, over D-Bus and HTTP: the state, the reason and who
 * paused it everywhere; not a problem for --failed; the owner only. */
static void
test_pause_resume (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) a = NULL;
  g_autofree char *url = NULL;
  g_auto(Result) r = { 0 };
  guint cursor;

  if (!require_nobody ())
    return;
  h->http_port = hb_free_port ();
  if (!hb_harness_start_default (h))
    return;
  url = g_strdup_printf ("http://127.0.0.1:%u", h->http_port);
  cursor = hb_harness_signal_cursor (h);
  hbctl_ok (h, "register", "db", "--stale", "1h");
  hbctl_ok (h, "register", "broken", "--stale", "1h");
  hbctl_ok (h, "beat", "broken", "--status", "error");

  hbctl_ok (h, "pause", "db", "--reason", "disk swap");
  hb_wait_signal (h, &cursor, "AgentStateChanged", "db", "healthy", "paused");
  a = agent (h, "db");
  g_assert_cmpstr (hb_dict_string (a, "state"), ==, "paused");
  g_assert_cmpstr (hb_dict_string (a, "paused-reason"), ==, "disk swap");

  hbctl (h, &r, "show", "db");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_nonnull (strstr (r.out, "\nState:         paused since "));
  g_assert_nonnull (strstr (r.out, " by uid 0 (root): disk swap\n"));
  g_assert_null (strstr (r.out, "Running:"));
  /* not a problem; listed as paused */
  result_clear (&r);
  hbctl (h, &r, "--no-legend", "status", "--failed");
  assert_ids (r.out, FALSE, (const char *const[]) { "broken", NULL });
  result_clear (&r);
  hbctl (h, &r, "--no-legend", "status", "--state=paused");
  assert_ids (r.out, FALSE, (const char *const[]) { "db", NULL });
  g_assert_nonnull (strstr (r.out, "  disk swap  "));

  /* someone else may not; nothing changes */
  result_clear (&r);
  hbctl_nobody (h, &r, "resume", "db");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_nonnull (strstr (r.err, "agent \"db\" belongs to uid 0 (root)"));
  result_clear (&r);
  hbctl (h, &r, "pause", "nobody-knows");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_cmpstr (r.err, ==, "hbctl: there is no agent \"nobody-knows\"\n");

  hbctl_ok (h, "resume", "db");
  hb_wait_signal (h, &cursor, "AgentStateChanged", "db", "paused", "healthy");
  result_clear (&r);
  hbctl (h, &r, "show", "db");
  g_assert_nonnull (strstr (r.out, "\nState:         healthy"));

  /* over HTTP: an agent HTTP owns (POST /heartbeat), paused with a reason
   * in the body, and resumed; one a D-Bus caller owns is refused */
  g_assert_cmpuint (http_request (h->http_port, "POST", "/heartbeat", "{\"run_id\": \"remote\"}"), ==, 200);
  result_clear (&r);
  hbctl (h, &r, "pause", "remote", "--url", url, "--reason", "via http");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  hb_wait_signal (h, &cursor, "AgentStateChanged", "remote", NULL, "paused");
  result_clear (&r);
  hbctl (h, &r, "show", "remote");
  g_assert_nonnull (strstr (r.out, " by an HTTP client: via http\n"));
  result_clear (&r);
  hbctl (h, &r, "--url", url, "resume", "remote");
  g_assert_cmpint (r.status, ==, 0);
  hb_wait_signal (h, &cursor, "AgentStateChanged", "remote", "paused", NULL);
  result_clear (&r);
  hbctl (h, &r, "--url", url, "pause", "db");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_true (g_str_has_prefix (r.err, "hbctl: 403: "));
  g_clear_pointer (&a, g_variant_unref);
  a = agent (h, "db");
  g_assert_cmpstr (hb_dict_string (a, "state"), ==, "healthy");

  /* a reason too long is refused before anything is sent */
  {
    g_autofree char *long_reason = g_strnfill (257, 'x');

    result_clear (&r);
    hbctl (h, &r, "pause", "db", "--reason", long_reason);
    g_assert_cmpint (r.status, ==, 2);
    g_clear_pointer (&a, g_variant_unref);
    a = agent (h, "db");
    g_assert_cmpstr (hb_dict_string (a, "state"), ==, "healthy");
  }
}

/* `hbctl run` of an id the configuration does not declare: a failure is
 * recorded as a run (exit status, the end of its output), which the
 * reason, check, status and show tell. */
static void
test_run_recorded (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_autoptr(GVariant) run = NULL;
  g_autoptr(GVariant) a = NULL;
  g_auto(Result) r = { 0 };
  const char *output = NULL;
  gint32 exit_status = -1;

  if (!hb_harness_start_default (h))
    return;
  hbctl (h, &r, "run", "--name", "adhoc", "--interval", "1s", "--", "sh", "-c",
         "echo working; echo 'disk full' >&2; exit 3");
  g_assert_cmpint (r.status, ==, 3);
  run = last_run (h, "adhoc", 1);
  g_assert_cmpstr (hb_dict_string (run, "result"), ==, "failure");
  g_assert_true (g_variant_lookup (run, "exit-status", "i", &exit_status));
  g_assert_cmpint (exit_status, ==, 3);
  g_assert_true (g_variant_lookup (run, "output", "&s", &output));
  g_assert_nonnull (strstr (output, "working\n"));
  g_assert_nonnull (strstr (output, "disk full\n"));
  a = agent (h, "adhoc");
  g_assert_cmpstr (hb_dict_string (a, "state"), ==, "error");
  g_assert_cmpstr (hb_dict_string (a, "reason"), ==, "exit status 3: disk full");

  result_clear (&r);
  hbctl (h, &r, "check", "adhoc");
  g_assert_cmpint (r.status, ==, 2);
  g_assert_true (g_str_has_prefix (r.out, "HEARTBEAT CRITICAL - adhoc is error: exit status 3: disk full (last seen "));
  result_clear (&r);
  hbctl (h, &r, "show", "adhoc");
  g_assert_nonnull (strstr (r.out, " (exit status 3: disk full)\n"));
  g_assert_nonnull (strstr (r.out, "  failure    exit 3\n"));
  g_assert_nonnull (strstr (r.out, "\nOutput:        (the end of the failed run of "));
  g_assert_nonnull (strstr (r.out, "\n               disk full\n"));
  /* its run ended: nothing runs, no running clock */
  g_assert_null (strstr (r.out, "\nRunning:"));
  result_clear (&r);
  hbctl (h, &r, "--no-legend", "status", "--failed");
  g_assert_nonnull (strstr (r.out, "  exit status 3: disk full  "));
  g_assert_true (g_regex_match_simple ("^adhoc +error +exit status 3: disk full +- +- ", r.out, G_REGEX_MULTILINE, 0));

  /* a success is unregistered as before */
  hbctl_ok (h, "run", "--name", "adhoc", "--interval", "1s", "--", "true");
  hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "adhoc"), "NotFound");
}


/* Tags with the real daemon: register --tag, status --tag=, show */
static void
test_status_tags (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_auto(Result) r = { 0 };

  if (!hb_harness_start_default (h))
    return;
  hbctl_ok (h, "register", "a-db", "--tag", "prod,db", "--stale", "1h");
  hbctl_ok (h, "register", "b-db", "--tag", "db", "--stale", "1h");
  hbctl_ok (h, "register", "c-none", "--stale", "1h");
  hbctl (h, &r, "--no-legend", "status", "--tag=db");
  assert_ids (r.out, FALSE, (const char *const[]) { "a-db", "b-db", NULL });
  result_clear (&r);
  hbctl (h, &r, "--no-legend", "status", "--tag", "prod", "--tag", "nothing");
  assert_ids (r.out, FALSE, (const char *const[]) { "a-db", NULL });
  result_clear (&r);
  hbctl (h, &r, "show", "a-db");
  g_assert_nonnull (strstr (r.out, "\nTags:          db, prod\n"));
  result_clear (&r);
  hbctl (h, &r, "show", "c-none");
  g_assert_nonnull (strstr (r.out, "\nTags:          -\n"));
  /* the daemon refuses a tag of another shape, and nothing changes */
  result_clear (&r);
  hbctl (h, &r, "register", "d-bad", "--tag", "no spaces");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_cmpstr (r.out, ==, "");
  hb_call_error (h, NULL, "GetAgent", g_variant_new ("(s)", "d-bad"), "NotFound");
}

/* ------------------------------------------------------------------ */
/* --url with a token and over HTTPS                                   */

/* Debian's faketime package: hbctl's clock moved, to see a certificate
 * expired or not valid yet */
#define LIBFAKETIME "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"

#define WRITE_TOKEN "w-9f2c4d1e8a7b6c5d"
#define READ_TOKEN  "r-3b5a6c7d8e9f0a1b"

/* Writes @text into @name in the harness's directory (mode @mode);
 * returns its path. */
static char *
write_test_file (HbHarness *h, const char *name, const char *text, int mode)
{
  g_autofree char *path = g_build_filename (h->tmpdir, name, NULL);
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (path, mode), ==, 0);
  return g_steal_pointer (&path);
}

/* A test CA (tests/tls/make-test-ca.sh) in the harness's directory;
 * returns the directory, or NULL (test skipped) without openssl. */
static char *
make_test_ca (HbHarness *h)
{
  g_autofree char *openssl = g_find_program_in_path ("openssl");
  g_autofree char *script = g_build_filename (g_getenv ("HB_SOURCE_ROOT"), "tests", "tls", "make-test-ca.sh", NULL);
  g_autofree char *dir = g_build_filename (h->tmpdir, "ca", NULL);
  const char *argv[] = { "/bin/sh", script, dir, NULL };
  g_autoptr(GError) error = NULL;
  g_autofree char *err = NULL;
  int wait_status = 0;

  if (openssl == NULL)
    {
      g_test_skip ("openssl is not installed");
      return NULL;
    }
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &err, &wait_status, &error);
  g_assert_no_error (error);
  g_test_message ("make-test-ca.sh: %s", err);
  g_assert_true (g_spawn_check_wait_status (wait_status, NULL));
  return g_steal_pointer (&dir);
}

/* The daemon on 127.0.0.1 (a free port) with the tokens file @tokens and,
 * when @ca_dir is not NULL, TLS with its server.pem (and client.pem's CA
 * for client certificates when @client_ca); returns its URL. FALSE
 * (skipped) without a bus. */
static char *
start_url_daemon (HbHarness *h, const char *tokens, const char *ca_dir, gboolean client_ca)
{
  g_autofree char *tokens_path = write_test_file (h, "tokens", tokens, 0600);
  g_autoptr(GString) config = g_string_new (hb_default_config);

  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return NULL;
  g_string_append_printf (config, "\n[http]\naddress=127.0.0.1\ntokens-file=%s\n", tokens_path);
  if (ca_dir)
    g_string_append_printf (config, "tls-certificate=%s/server.pem\ntls-key=%s/server-key.pem\n", ca_dir, ca_dir);
  if (ca_dir && client_ca)
    g_string_append_printf (config, "tls-client-ca=%s/ca.pem\n", ca_dir);
  hb_harness_write_config (h, config->str);
  h->http_port = hb_free_port ();
  hb_harness_start_daemon (h, 0);
  return g_strdup_printf ("%s://127.0.0.1:%u", ca_dir ? "https" : "http", h->http_port);
}

/* The status of agent @id, as the daemon says over D-Bus */
static char *
agent_status (HbHarness *h, const char *id)
{
  g_autoptr(GVariant) a = agent (h, id);

  return g_strdup (hb_dict_string (a, "status"));
}

/* A server that answers every request with @answer (a status line and
 * headers, without the empty line) and keeps what it was sent: the
 * request lines and headers, in order. */
typedef struct {
  GSocketListener *listener;
  GCancellable    *stop;
  GThread         *thread;
  const char      *answer;
  GMutex           lock;
  GString         *requests;   /* under lock */
} Recorder;

static gpointer
recorder_serve (gpointer data)
{
  Recorder *rec = data;

  for (;;)
    {
      g_autoptr(GSocketConnection) c = g_socket_listener_accept (rec->listener, NULL, rec->stop, NULL);
      g_autoptr(GDataInputStream) in = NULL;
      g_autofree char *answer = NULL;
      gsize length = 0;

      if (c == NULL)
        return NULL;
      in = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (c)));
      g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (in), FALSE);
      for (;;)
        {
          g_autofree char *line = g_data_input_stream_read_line (in, NULL, NULL, NULL);

          if (line == NULL || *g_strstrip (line) == '\0')
            break;
          if (g_ascii_strncasecmp (line, "Content-Length:", 15) == 0)
            length = (gsize) g_ascii_strtoull (line + 15, NULL, 10);
          g_mutex_lock (&rec->lock);
          g_string_append_printf (rec->requests, "%s\n", line);
          g_mutex_unlock (&rec->lock);
        }
      /* the body, unread (bounded: hbctl's are small) */
      if (length > 0 && length < 65536)
        {
          g_autofree char *body = g_malloc (length);
          g_input_stream_read_all (G_INPUT_STREAM (in), body, length, NULL, NULL, NULL);
        }
      answer = g_strdup_printf ("%s\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                                "Connection: close\r\n\r\n{}", rec->answer);
      g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (c)), answer, strlen (answer),
                                 NULL, NULL, NULL);
      g_io_stream_close (G_IO_STREAM (c), NULL, NULL);
    }
}

/* Starts @rec answering @answer on a loopback port; returns the port. */
static guint16
recorder_start (Recorder *rec, const char *answer)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) effective = NULL;

  g_mutex_init (&rec->lock);
  rec->requests = g_string_new (NULL);
  rec->answer = answer;
  rec->listener = g_socket_listener_new ();
  rec->stop = g_cancellable_new ();
  g_socket_listener_add_address (rec->listener, address, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                 NULL, &effective, &error);
  g_assert_no_error (error);
  rec->thread = g_thread_new ("recorder", recorder_serve, rec);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
}

/* Stops it; returns what it was sent. */
static char *
recorder_stop (Recorder *rec)
{
  g_cancellable_cancel (rec->stop);
  g_thread_join (rec->thread);
  g_clear_object (&rec->listener);
  g_clear_object (&rec->stop);
  g_mutex_clear (&rec->lock);
  return g_string_free (g_steal_pointer (&rec->requests), FALSE);
}

/* The token of --url from --token, --token-file or $HBCTL_TOKEN, the first
 * given; a token file that cannot be read or holds none is a usage
 * error with nothing sent. Plain HTTP on loopback, where a write needs a
 * token of the tokens file. */
static void
test_url_token_sources (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_auto(Result) r = { 0 };
  g_autofree char *url = NULL, *good = NULL, *wrong = NULL, *empty = NULL, *long_file = NULL, *status = NULL;
  g_autofree char *missing = NULL, *long_line = NULL;
  const char *env_good[] = { "HBCTL_TOKEN", WRITE_TOKEN, NULL };
  const char *env_wrong[] = { "HBCTL_TOKEN", "not-the-token", NULL };

  /* one field: a read,write token, as before scopes */
  url = start_url_daemon (h, "# tokens\n" WRITE_TOKEN "\n", NULL, FALSE);
  if (url == NULL)
    return;
  hbctl_ok (h, "register", "web", "--stale", "1h");
  /* the first line, white space around it stripped */
  good = write_test_file (h, "good-token", "  " WRITE_TOKEN "  \nnot this line\n", 0600);
  wrong = write_test_file (h, "wrong-token", "not-the-token\n", 0600);
  empty = write_test_file (h, "empty-token", "   \n" WRITE_TOKEN "\n", 0600);
  long_line = g_strnfill (5000, 'x');
  long_file = write_test_file (h, "long-token", long_line, 0600);
  missing = g_build_filename (h->tmpdir, "no-such-file", NULL);

  /* no token: refused, and said so */
  hbctl (h, &r, "--url", url, "beat", "web", "--status", "none");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_true (g_str_has_prefix (r.err, "hbctl: 401: "));
  result_clear (&r);

  /* from a file, before or after the command */
  hbctl (h, &r, "--url", url, "--token-file", good, "beat", "web", "--status", "from-file");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  status = agent_status (h, "web");
  g_assert_cmpstr (status, ==, "from-file");
  g_clear_pointer (&status, g_free);
  result_clear (&r);
  hbctl (h, &r, "beat", "web", "--status", "file-after", "--url", url, "--token-file", good);
  g_assert_cmpint (r.status, ==, 0);
  status = agent_status (h, "web");
  g_assert_cmpstr (status, ==, "file-after");
  g_clear_pointer (&status, g_free);
  result_clear (&r);

  /* from the environment */
  hbctl_env (h, env_good, &r, "--url", url, "beat", "web", "--status", "from-env");
  g_assert_cmpint (r.status, ==, 0);
  status = agent_status (h, "web");
  g_assert_cmpstr (status, ==, "from-env");
  g_clear_pointer (&status, g_free);
  result_clear (&r);

  /* the first found wins: --token over --token-file over $HBCTL_TOKEN */
  hbctl_env (h, env_good, &r, "--url", url, "--token", "not-the-token", "beat", "web", "--status", "x");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_true (g_str_has_prefix (r.err, "hbctl: 401: "));
  result_clear (&r);
  hbctl_env (h, env_good, &r, "--url", url, "--token-file", wrong, "beat", "web", "--status", "x");
  g_assert_cmpint (r.status, ==, 1);
  result_clear (&r);
  hbctl_env (h, env_wrong, &r, "--url", url, "--token-file", good, "beat", "web", "--status", "file-first");
  g_assert_cmpint (r.status, ==, 0);
  result_clear (&r);
  hbctl_env (h, env_wrong, &r, "--url", url, "--token", WRITE_TOKEN, "--token-file", wrong,
             "beat", "web", "--status", "token-first");
  g_assert_cmpint (r.status, ==, 0);
  status = agent_status (h, "web");
  g_assert_cmpstr (status, ==, "token-first");
  g_clear_pointer (&status, g_free);
  result_clear (&r);

  /* a file that holds no token: a usage error, nothing sent */
  hbctl (h, &r, "--url", url, "--token-file", missing, "beat", "web", "--status", "x");
  g_assert_cmpint (r.status, ==, 2);
  g_assert_true (g_str_has_prefix (r.err, "hbctl: cannot read the token file "));
  g_assert_nonnull (strstr (r.err, "no-such-file"));
  result_clear (&r);
  hbctl (h, &r, "--url", url, "--token-file", empty, "beat", "web", "--status", "x");
  g_assert_cmpint (r.status, ==, 2);
  g_assert_nonnull (strstr (r.err, "holds no token (its first line is empty)"));
  result_clear (&r);
  hbctl (h, &r, "--url", url, "--token-file", long_file, "beat", "web", "--status", "x");
  g_assert_cmpint (r.status, ==, 2);
  g_assert_nonnull (strstr (r.err, "longer than 4096 bytes"));
  result_clear (&r);
  /* a token with a space or a line break would be another header */
  hbctl (h, &r, "--url", url, "--token", WRITE_TOKEN "\r\nX-Evil: 1", "beat", "web", "--status", "x");
  g_assert_cmpint (r.status, ==, 2);
  g_assert_nonnull (strstr (r.err, "the token of --token is not one"));
  result_clear (&r);
  /* check says UNKNOWN, as a plugin does */
  hbctl (h, &r, "--url", url, "--token-file", missing, "check", "web");
  g_assert_cmpint (r.status, ==, 3);
  g_assert_true (g_str_has_prefix (r.out, "HEARTBEAT UNKNOWN - cannot read the token file "));
  result_clear (&r);
  status = agent_status (h, "web");
  g_assert_cmpstr (status, ==, "token-first");

  /* TLS options want an https:// URL; --key wants --cert */
  hbctl (h, &r, "--url", url, "--cacert", good, "status");
  g_assert_cmpint (r.status, ==, 2);
  g_assert_nonnull (strstr (r.err, "need an https:// URL"));
  result_clear (&r);
  /* beat's own --key (of --file) stays beat's after the command */
  hbctl (h, &r, "--url", url, "beat", "web", "--key", good);
  g_assert_cmpint (r.status, ==, 2);
  g_assert_nonnull (strstr (r.err, "the private key of --cert goes before the command"));
}

/* The token goes to the --url server only: a redirect elsewhere is not
 * followed, and the server redirected to sees nothing. */
static void
test_url_token_not_redirected (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  Recorder elsewhere = { 0 };
  Recorder redirecting = { 0 };
  g_auto(Result) r = { 0 };
  g_autofree char *location = NULL, *url = NULL, *seen_there = NULL, *seen_here = NULL;
  const char *env[] = { "HBCTL_TOKEN", WRITE_TOKEN, NULL };
  guint16 port;

  port = recorder_start (&elsewhere, "HTTP/1.1 200 OK");
  location = g_strdup_printf ("HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:%u/v1/agents/web/beat", port);
  url = g_strdup_printf ("http://127.0.0.1:%u", recorder_start (&redirecting, location));

  hbctl_env (h, env, &r, "--url", url, "beat", "web", "--status", "x");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_true (g_str_has_prefix (r.err, "hbctl: 307: "));
  result_clear (&r);
  hbctl_env (h, env, &r, "--url", url, "status");
  g_assert_cmpint (r.status, ==, 1);

  seen_there = recorder_stop (&elsewhere);
  seen_here = recorder_stop (&redirecting);
  g_assert_nonnull (strstr (seen_here, "POST /v1/agents/web/beat HTTP/1.1\n"));
  g_assert_nonnull (strstr (seen_here, "Authorization: Bearer " WRITE_TOKEN "\n"));
  g_assert_cmpstr (seen_there, ==, "");
}

/* A TLS server at 127.0.0.2 with the test CA's server certificate (for
 * localhost, 127.0.0.1 and ::1): a handshake a client should refuse. */
typedef struct {
  GSocketListener *listener;
  GCancellable    *stop;
  GTlsCertificate *certificate;
} TlsStub;

static gpointer
tls_stub_serve (gpointer data)
{
  TlsStub *stub = data;

  for (;;)
    {
      g_autoptr(GSocketConnection) c = g_socket_listener_accept (stub->listener, NULL, stub->stop, NULL);
      g_autoptr(GIOStream) tls = NULL;

      if (c == NULL)
        return NULL;
      tls = g_tls_server_connection_new (G_IO_STREAM (c), stub->certificate, NULL);
      if (tls)
        g_tls_connection_handshake (G_TLS_CONNECTION (tls), stub->stop, NULL);
      g_io_stream_close (G_IO_STREAM (c), NULL, NULL);
    }
}

/* hbctl verifies an https --url: against --cacert, or the system's trust
 * store; a certificate it cannot trust is refused (exit 1) in words that
 * name the URL and why. Tokens and scopes over HTTPS. */
static void
test_url_tls (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_auto(Result) r = { 0 };
  g_autofree char *ca_dir = make_test_ca (h);
  g_autofree char *url = NULL, *ca = NULL, *rogue = NULL, *write_file = NULL, *read_file = NULL, *status = NULL;
  g_autofree char *expected = NULL;
  const char *env_write[] = { "HBCTL_TOKEN", WRITE_TOKEN, NULL };

  if (ca_dir == NULL)
    return;
  url = start_url_daemon (h, "read " READ_TOKEN "\nread,write " WRITE_TOKEN "\n", ca_dir, FALSE);
  if (url == NULL)
    return;
  ca = g_build_filename (ca_dir, "ca.pem", NULL);
  rogue = g_build_filename (ca_dir, "rogue-ca.pem", NULL);
  write_file = write_test_file (h, "write-token", WRITE_TOKEN "\n", 0600);
  read_file = write_test_file (h, "read-token", READ_TOKEN "\n", 0600);
  hbctl_ok (h, "register", "web", "--stale", "1h");

  /* verified by the test CA */
  hbctl (h, &r, "--url", url, "--cacert", ca, "--token-file", read_file, "status");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  g_assert_nonnull (strstr (r.out, "\nweb "));
  result_clear (&r);

  /* the system's trust store does not hold the test CA */
  hbctl (h, &r, "--url", url, "--token-file", read_file, "status");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_cmpstr (r.out, ==, "");
  expected = g_strdup_printf ("hbctl: refusing the certificate of %s: it is not trusted (not signed by a CA of "
                              "the system's trust store; see --cacert)\n", url);
  g_assert_cmpstr (r.err, ==, expected);
  g_clear_pointer (&expected, g_free);
  result_clear (&r);

  /* nor does another CA */
  hbctl (h, &r, "--url", url, "--cacert", rogue, "--token-file", write_file, "beat", "web", "--status", "rogue");
  g_assert_cmpint (r.status, ==, 1);
  expected = g_strdup_printf ("hbctl: refusing the certificate of %s: it is not trusted (not signed by a CA of %s)\n",
                              url, rogue);
  g_assert_cmpstr (r.err, ==, expected);
  g_clear_pointer (&expected, g_free);
  result_clear (&r);
  hbctl (h, &r, "--url", url, "--cacert", rogue, "check", "web");
  g_assert_cmpint (r.status, ==, 3);
  g_assert_true (g_str_has_prefix (r.out, "HEARTBEAT UNKNOWN - refusing the certificate of "));
  result_clear (&r);
  status = agent_status (h, "web");
  g_assert_cmpstr (status, ==, "running");
  g_clear_pointer (&status, g_free);

  /* the clock of hbctl three days on (the certificates last two) or one
   * day back, with libfaketime: expired, not valid yet */
  if (g_file_test (LIBFAKETIME, G_FILE_TEST_EXISTS))
    {
      const char *asan = g_getenv ("ASAN_OPTIONS");
      /* a sanitized hbctl: libfaketime comes before the ASan runtime */
      g_autofree char *asan_options = g_strdup_printf ("%s%sverify_asan_link_order=0", asan ? asan : "",
                                                       asan && *asan ? ":" : "");
      const char *later[] = { "LD_PRELOAD", LIBFAKETIME, "FAKETIME", "+3d", "FAKETIME_DONT_FAKE_MONOTONIC", "1",
                              "ASAN_OPTIONS", asan_options, NULL };
      const char *earlier[] = { "LD_PRELOAD", LIBFAKETIME, "FAKETIME", "-1d", "FAKETIME_DONT_FAKE_MONOTONIC", "1",
                                "ASAN_OPTIONS", asan_options, NULL };

      hbctl_env (h, later, &r, "--url", url, "--cacert", ca, "status");
      g_assert_cmpint (r.status, ==, 1);
      expected = g_strdup_printf ("hbctl: refusing the certificate of %s: it has expired\n", url);
      g_assert_cmpstr (r.err, ==, expected);
      g_clear_pointer (&expected, g_free);
      result_clear (&r);
      hbctl_env (h, earlier, &r, "--url", url, "--cacert", ca, "status");
      g_assert_cmpint (r.status, ==, 1);
      expected = g_strdup_printf ("hbctl: refusing the certificate of %s: it is not valid yet (is the clock right?)\n",
                                  url);
      g_assert_cmpstr (r.err, ==, expected);
      g_clear_pointer (&expected, g_free);
      result_clear (&r);
    }
  else
    g_test_message ("libfaketime is missing: an expired certificate is not tried");

  /* a write with a write token, from a file and from the environment */
  hbctl (h, &r, "--url", url, "--cacert", ca, "--token-file", write_file, "beat", "web", "--status", "tls-file");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  status = agent_status (h, "web");
  g_assert_cmpstr (status, ==, "tls-file");
  g_clear_pointer (&status, g_free);
  result_clear (&r);
  hbctl_env (h, env_write, &r, "beat", "web", "--status", "tls-env", "--url", url, "--cacert", ca);
  g_assert_cmpint (r.status, ==, 0);
  status = agent_status (h, "web");
  g_assert_cmpstr (status, ==, "tls-env");
  g_clear_pointer (&status, g_free);
  result_clear (&r);

  /* a read token may not write: refused with the scope named, nothing changes */
  hbctl (h, &r, "--url", url, "--cacert", ca, "--token-file", read_file, "beat", "web", "--status", "read-only");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_true (g_str_has_prefix (r.err, "hbctl: 403: "));
  g_assert_nonnull (strstr (r.err, "scope"));
  g_assert_nonnull (strstr (r.err, "write"));
  result_clear (&r);
  hbctl (h, &r, "--url", url, "--cacert", ca, "--token", "wrong-token", "pause", "web");
  g_assert_cmpint (r.status, ==, 1);
  g_assert_true (g_str_has_prefix (r.err, "hbctl: 401: "));
  g_assert_nonnull (strstr (r.err, "(it does not know the token of --token)"));
  result_clear (&r);
  status = agent_status (h, "web");
  g_assert_cmpstr (status, ==, "tls-env");
}

/* A certificate for other names than the URL's host is refused, even
 * when its CA is trusted. */
static void
test_url_tls_host_name (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_auto(Result) r = { 0 };
  g_autofree char *ca_dir = make_test_ca (h);
  g_autofree char *cert = NULL, *key = NULL, *ca = NULL, *url = NULL, *expected = NULL;
  g_autoptr(GInetAddress) other = g_inet_address_new_from_string ("127.0.0.2");
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (other, 0);
  g_autoptr(GSocketAddress) effective = NULL;
  g_autoptr(GError) error = NULL;
  TlsStub stub = { 0 };
  GThread *thread;

  if (ca_dir == NULL)
    return;
  cert = g_build_filename (ca_dir, "server.pem", NULL);
  key = g_build_filename (ca_dir, "server-key.pem", NULL);
  ca = g_build_filename (ca_dir, "ca.pem", NULL);
  stub.certificate = g_tls_certificate_new_from_files (cert, key, &error);
  if (stub.certificate == NULL && g_error_matches (error, G_TLS_ERROR, G_TLS_ERROR_UNAVAILABLE))
    {
      g_test_skip ("no TLS backend (glib-networking)");
      return;
    }
  g_assert_no_error (error);
  stub.listener = g_socket_listener_new ();
  stub.stop = g_cancellable_new ();
  if (!g_socket_listener_add_address (stub.listener, address, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                      NULL, &effective, &error))
    {
      g_test_skip_printf ("cannot listen on 127.0.0.2: %s", error->message);
      g_clear_object (&stub.listener);
      g_clear_object (&stub.stop);
      g_clear_object (&stub.certificate);
      return;
    }
  thread = g_thread_new ("tls-stub", tls_stub_serve, &stub);
  url = g_strdup_printf ("https://127.0.0.2:%u", g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective)));

  hbctl (h, &r, "--url", url, "--cacert", ca, "status");
  g_assert_cmpint (r.status, ==, 1);
  expected = g_strdup_printf ("hbctl: refusing the certificate of %s: it does not match the host name 127.0.0.2\n", url);
  g_assert_cmpstr (r.err, ==, expected);

  g_cancellable_cancel (stub.stop);
  g_thread_join (thread);
  g_clear_object (&stub.listener);
  g_clear_object (&stub.stop);
  g_clear_object (&stub.certificate);
}

/* [http] tls-client-ca=: hbctl presents --cert and --key */
static void
test_url_tls_client_certificate (Fixture *f, gconstpointer data)
{
  HbHarness *h = f->h;
  g_auto(Result) r = { 0 };
  g_autofree char *ca_dir = make_test_ca (h);
  g_autofree char *url = NULL, *ca = NULL, *cert = NULL, *key = NULL, *rogue = NULL, *rogue_key = NULL;
  g_autofree char *expected = NULL;

  if (ca_dir == NULL)
    return;
  url = start_url_daemon (h, "read " READ_TOKEN "\n", ca_dir, TRUE);
  if (url == NULL)
    return;
  ca = g_build_filename (ca_dir, "ca.pem", NULL);
  cert = g_build_filename (ca_dir, "client.pem", NULL);
  key = g_build_filename (ca_dir, "client-key.pem", NULL);
  rogue = g_build_filename (ca_dir, "rogue.pem", NULL);
  rogue_key = g_build_filename (ca_dir, "rogue-key.pem", NULL);
  hbctl_ok (h, "register", "web", "--stale", "1h");

  hbctl (h, &r, "--url", url, "--cacert", ca, "--cert", cert, "--key", key, "show", "web");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpstr (r.err, ==, "");
  result_clear (&r);
  /* none, or one of another CA: the handshake fails */
  hbctl (h, &r, "--url", url, "--cacert", ca, "show", "web");
  g_assert_cmpint (r.status, ==, 1);
  expected = g_strdup_printf ("hbctl: %s asks for a client certificate: give --cert FILE and --key FILE\n", url);
  g_assert_cmpstr (r.err, ==, expected);
  g_clear_pointer (&expected, g_free);
  result_clear (&r);
  hbctl (h, &r, "--url", url, "--cacert", ca, "--cert", rogue, "--key", rogue_key, "show", "web");
  g_assert_cmpint (r.status, ==, 1);
  expected = g_strdup_printf ("(is the client certificate %s one it takes?)\n", rogue);
  g_assert_true (g_str_has_suffix (r.err, expected));
  g_clear_pointer (&expected, g_free);
  result_clear (&r);
  /* a key that is not there: a usage error */
  hbctl (h, &r, "--url", url, "--cacert", ca, "--cert", cert, "show", "web");
  g_assert_cmpint (r.status, ==, 2);
  g_assert_true (g_str_has_prefix (r.err, "hbctl: cannot read the client certificate "));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add ("/hbctl/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("status-piped", test_status_piped);
  ADD ("json-shapes", test_json_shapes);
  ADD ("register-beat-idle-unregister", test_register_beat_idle_unregister);
  ADD ("run-exit-codes", test_run_exit_codes);
  ADD ("run-keeps-output-tail", test_run_keeps_output_tail);
  ADD ("run-forwards-sigterm", test_run_forwards_sigterm);
  ADD ("check-statuses", test_check_statuses);
  ADD ("watch-prints-stale", test_watch_prints_stale);
  ADD ("error-messages", test_error_messages);
  ADD ("german", test_german);
  /* Run by the meson tests of their parents ("-p /hbctl/status-piped" runs
   * /hbctl/status-piped/long-id-table as well). */
  ADD ("register-beat-idle-unregister/numeric-options", test_numeric_options);
  ADD ("register-beat-idle-unregister/dash-id", test_dash_id);
  ADD ("json-shapes/url-status", test_url_status_json);
  ADD ("status-piped/long-id-table", test_long_id_table);
  ADD ("status-piped/never-beat", test_never_beat);
  ADD ("status-piped/declared-first", test_declared_first);
  ADD ("status-piped/narrow-columns", test_narrow_columns);
  ADD ("status-piped/show-timeline", test_show_timeline);
  ADD ("status-piped/unit-columns", test_unit_columns);
  ADD ("status-piped/show-job", test_show_job);
  ADD ("status-piped/show-schedule", test_show_schedule);
  ADD ("run-exit-codes/declared-job", test_run_declared_job);
  ADD ("error-messages/unreachable", test_unreachable);
  ADD ("error-messages/bus-refuses", test_bus_refuses);
  ADD ("error-messages/no-daemon", test_no_daemon);
  ADD ("error-messages/url-hostile", test_url_hostile);
  ADD ("json-shapes/url-pages", test_url_pages);
  ADD ("url-many-agents", test_url_many_agents);
  ADD ("status-piped/failed", test_status_failed);
  ADD ("status-piped/filters-url", test_status_filters_url);
  ADD ("status-piped/show-honest", test_show_honest);
  ADD ("status-piped/show-metadata", test_show_metadata);
  ADD ("status-piped/tags", test_status_tags);
  ADD ("status-piped/colour", test_colour);
  ADD ("error-messages/options-after", test_options_after);
  ADD ("check-statuses/reason", test_check_reason);
  ADD ("watch-prints-stale/reason", test_watch_reason);
  ADD ("register-beat-idle-unregister/pause-resume", test_pause_resume);
  ADD ("run-exit-codes/run-recorded", test_run_recorded);
  ADD ("url-token-sources", test_url_token_sources);
  ADD ("url-token-sources/not-redirected", test_url_token_not_redirected);
  ADD ("url-tls", test_url_tls);
  ADD ("tls-host-name", test_url_tls_host_name);
  ADD ("url-tls/client-certificate", test_url_tls_client_certificate);

  return g_test_run ();
}
