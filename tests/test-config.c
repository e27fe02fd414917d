/* test-config.c: heartbeatd's configuration files
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define _GNU_SOURCE   /* setresuid() */

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "hb-config.h"
#include "hb-duration.h"

typedef struct {
  char *dir;
  char *path;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  f->dir = g_dir_make_tmp ("hb-config-XXXXXX", &error);
  g_assert_no_error (error);
  f->path = g_build_filename (f->dir, "heartbeatd.conf", NULL);
}

static void
remove_tree (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      /* never through a symbolic link: a test links to /tmp */
      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  remove_tree (f->dir);
  g_free (f->dir);
  g_free (f->path);
}

static void
write_file (const char *path, const char *contents)
{
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
}

static void
write_dropin (Fixture *f, const char *name, const char *contents)
{
  g_autofree char *dir = g_strconcat (f->path, ".d", NULL);
  g_autofree char *path = g_build_filename (dir, name, NULL);

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  write_file (path, contents);
}

static void
test_duration_valid (void)
{
  static const struct { const char *text; gint64 usec; } cases[] = {
    { "90", 90 * G_USEC_PER_SEC },
    { "90s", 90 * G_USEC_PER_SEC },
    { "5min", 300 * G_USEC_PER_SEC },
    { "5m", 300 * G_USEC_PER_SEC },
    { "5 min", 300 * G_USEC_PER_SEC },
    { "1h30m", (gint64) 5400 * G_USEC_PER_SEC },
    { "1h 30m", (gint64) 5400 * G_USEC_PER_SEC },
    { "250ms", 250000 },
    { "1s500ms", 1500000 },
    { "2d", G_GINT64_CONSTANT (172800) * G_USEC_PER_SEC },
    { "7us", 7 },
    { "  30s  ", 30 * G_USEC_PER_SEC },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      gint64 usec = -1;

      g_test_message ("%s", cases[i].text);
      g_assert_true (hb_duration_parse (cases[i].text, &usec, &error));
      g_assert_no_error (error);
      g_assert_cmpint (usec, ==, cases[i].usec);
    }
}

static void
test_duration_invalid (void)
{
  static const char *cases[] = {
    "", "   ", "s", "abc", "5x", "-5", "+5", "0", "0s", "1h30", "1.5s", "5 m i n",
    "99999999999999999999", "1000000d", "5min!", "1hh",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      gint64 usec = 42;

      g_test_message ("“%s”", cases[i]);
      g_assert_false (hb_duration_parse (cases[i], &usec, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
      g_assert_cmpint (usec, ==, 42);
    }
}

/* The built-in configuration is data/heartbeatd.conf, and says what the
 * documentation says the defaults are. */
static void
test_builtin_default_matches_file (void)
{
  g_autoptr(HbConfig) builtin = hb_config_new_default ();
  g_autofree char *path = g_build_filename (g_getenv ("HB_SOURCE_ROOT"), "data", "heartbeatd.conf", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(HbConfig) file = hb_config_load (path, &error);

  g_assert_no_error (error);
  g_assert_cmpint (builtin->check_interval_usec, ==, 30 * G_USEC_PER_SEC);
  g_assert_cmpint (builtin->stale_threshold_usec, ==, 5 * 60 * G_USEC_PER_SEC);
  g_assert_cmpint (builtin->timeout_threshold_usec, ==, (gint64) 30 * 60 * G_USEC_PER_SEC);
  g_assert_true (builtin->stale_warning_only_once);
  g_assert_cmpuint (builtin->agents_per_uid, ==, 1024);
  g_assert_cmpuint (builtin->agents->len, ==, 0);

  g_assert_cmpint (file->check_interval_usec, ==, builtin->check_interval_usec);
  g_assert_cmpint (file->stale_threshold_usec, ==, builtin->stale_threshold_usec);
  g_assert_cmpint (file->timeout_threshold_usec, ==, builtin->timeout_threshold_usec);
  g_assert_cmpint (file->stale_warning_only_once, ==, builtin->stale_warning_only_once);
  g_assert_cmpuint (file->agents_per_uid, ==, builtin->agents_per_uid);
}

static void
test_dropins_override_in_order (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HbConfig) config = NULL;

  write_file (f->path, "[monitor]\nstale-threshold=5min\ncheck-interval=30s\n[limits]\nagents-per-uid=10\n");
  write_dropin (f, "20-later.conf", "[monitor]\nstale-threshold=20s\n");
  write_dropin (f, "10-first.conf", "[monitor]\nstale-threshold=10s\ntimeout-threshold=1h\n");
  write_dropin (f, "30-ignored.conf.disabled", "[monitor]\nstale-threshold=99s\n");

  config = hb_config_load (f->path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (config->stale_threshold_usec, ==, 20 * G_USEC_PER_SEC);
  g_assert_cmpint (config->timeout_threshold_usec, ==, (gint64) 3600 * G_USEC_PER_SEC);
  g_assert_cmpint (config->check_interval_usec, ==, 30 * G_USEC_PER_SEC);
  g_assert_cmpuint (config->agents_per_uid, ==, 10);
  g_assert_cmpuint (config->files->len, ==, 3);
  g_assert_true (g_str_has_suffix (g_ptr_array_index (config->files, 1), "10-first.conf"));
  g_assert_true (g_str_has_suffix (g_ptr_array_index (config->files, 2), "20-later.conf"));
}

static void
test_declared_agents (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HbConfig) config = NULL;
  const HbConfigAgent *backup, *bare;

  write_file (f->path,
              "[agent:backup]\ntask=nightly backup\nstale-threshold=15min\ntimeout-threshold=4h\n"
              "[agent:bare]\n"
              "[agent:writer]\nheartbeat-file=/run/writer/heartbeat.json\ntimeout-seconds=120\n");
  write_dropin (f, "50-backup.conf", "[agent:backup]\nstale-threshold=20min\n");

  config = hb_config_load (f->path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (config->agents->len, ==, 3);
  backup = g_ptr_array_index (config->agents, 0);
  bare = g_ptr_array_index (config->agents, 1);
  g_assert_cmpstr (backup->id, ==, "backup");
  g_assert_cmpstr (backup->task_id, ==, "nightly backup");
  g_assert_cmpint (backup->stale_after_usec, ==, 20 * 60 * G_USEC_PER_SEC);
  g_assert_cmpint (backup->timeout_after_usec, ==, (gint64) 4 * 3600 * G_USEC_PER_SEC);
  g_assert_cmpstr (((HbConfigAgent *) g_ptr_array_index (config->agents, 2))->heartbeat_file, ==,
                   "/run/writer/heartbeat.json");
  g_assert_cmpint (((HbConfigAgent *) g_ptr_array_index (config->agents, 2))->file_timeout_usec, ==,
                   120 * G_USEC_PER_SEC);
  g_assert_null (backup->heartbeat_file);
  g_assert_cmpstr (bare->id, ==, "bare");
  g_assert_null (bare->task_id);
  g_assert_cmpint (bare->stale_after_usec, ==, 0);
}

static void
test_errors_name_the_file (Fixture *f, gconstpointer data)
{
  static const struct { const char *contents; const char *message_part; } cases[] = {
    { "[monitor]\nstale-treshold=5min\n", "unknown key “stale-treshold” in [monitor]" },
    { "[monitr]\n", "unknown section [monitr]" },
    { "[monitor]\nstale-threshold=soon\n", "[monitor] stale-threshold" },
    { "[monitor]\nstale-warning-only-once=yes\n", "not true or false" },
    { "[limits]\nagents-per-uid=-1\n", "[limits] agents-per-uid" },
    { "[http]\nport=70000\n", "[http] port" },
    { "[agent:bad id]\n", "[agent:bad id]" },
    { "[agent:x]\nowner=1\n", "unknown key “owner”" },
    { "[agent:x]\nheartbeat-file=relative.json\n", "not an absolute path" },
    { "[alert:a]\nevents=stale\n", "exactly one of" },
    { "[alert:a]\nwebhook=http://x/\nexec=/bin/true\n", "exactly one of" },
    { "[alert:a]\nevents=stale,late\nwebhook=http://x/\n", "“late” is not an event" },
    { "[alert:a]\nwebhook=ftp://x/\n", "not an http(s) URL" },
    { "[alert:a]\nrestart-unit=../x\n", "not a unit name" },
    { "[alert:a]\nexec=/bin/true\nbackoff=random\n", "fixed or exponential" },
    { "[log]\nevents-file=relative.log\n", "not an absolute path" },
    /* found by fuzz-config: accepted, then refused by the monitor */
    { "[agent:x]\ntask=a\x01b\n", "control character" },
    { "[agent:x]\ntask=a\xc2\x89" "b\n", "control character" },   /* U+0089, found by fuzz-config */
    { "[agent:x]\ntimeout-seconds=0\n", "[agent:x] timeout-seconds" },
    /* unit= : systemd's unit name syntax */
    { "[agent:x]\nunit=worker\n", "[agent:x] unit: “worker” is not a unit name" },
    { "[agent:x]\nunit=\n", "[agent:x] unit: “” is not a unit name" },
    { "[agent:x]\nunit=../x.service\n", "not a unit name" },
    { "[agent:x]\nunit=my worker.service\n", "not a unit name" },
    { "[agent:x]\nunit=worker.servic\n", "not a unit name" },
    { "[agent:x]\nunit=getty@.service\n", "not a unit name" },
    { "[agent:x]\nunit=.service\n", "not a unit name" },
    /* schedule=, tz=, grace= */
    { "[agent:x]\nschedule=0 3 * *\n", "[agent:x] schedule" },
    { "[agent:x]\nschedule=61 * * * *\n", "[agent:x] schedule" },
    { "[agent:x]\nschedule=@reboot\n", "[agent:x] schedule" },
    { "[agent:x]\nschedule=every full moon\n", "neither a cron expression (" },
    { "[agent:x]\nschedule=--help\n", "nor a systemd calendar expression (" },
    { "[agent:x]\nschedule=@daily\ntz=Mars/Olympus\n", "“Mars/Olympus” is not a time zone" },
    { "[agent:x]\ntz=UTC\n", "tz= without schedule=" },
    { "[agent:x]\nschedule=@daily\nunit=backup.service\n", "has schedule= and unit=" },
    { "[agent:x]\nschedule=@daily\ngrace=soon\n", "[agent:x] grace" },
    /* tags= : heartbeat_tags_validate() */
    { "[agent:x]\ntags=prod,a/b\n", "[agent:x] tags: " },
    { "[agent:x]\ntags=prod;eu\n", "[agent:x] tags: " },
    { "[http]\nping-key-file=key\n", "not an absolute path" },
    { "[http]\ntls-certificate=/etc/heartbeat/tls.pem\n", "needs both tls-certificate= and tls-key=" },
    { "[http]\ntls-key=/etc/heartbeat/tls.key\n", "needs both tls-certificate= and tls-key=" },
    { "[http]\ntls-client-ca=/etc/heartbeat/ca.pem\n", "client certificates are asked for over TLS only" },
    { "[http]\ntls-key=credential:a/b\ntls-certificate=/c\n", "without “/”" },
    { "[http]\ntls-key=credential:\ntls-certificate=/c\n", "without “/”" },
    { "[http]\ntrusted-network=yes\n", "not true or false" },
    /* only restart-unit= may be empty */
    { "[alert:a]\nwebhook=\n", "not an http(s) URL" },
    { "[alert:a]\nrestart-unit=\nexec=/bin/true\n", "exactly one of" },
    { "not a key file\n", "" },
  };

  write_file (f->path, "[monitor]\nstale-threshold=1min\n");
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(HbConfig) config = NULL;

      g_test_message ("%s", cases[i].contents);
      write_dropin (f, "90-bad.conf", cases[i].contents);
      config = hb_config_load (f->path, &error);
      g_assert_null (config);
      g_assert_nonnull (error);
      g_assert_nonnull (strstr (error->message, "90-bad.conf"));
      g_assert_nonnull (strstr (error->message, cases[i].message_part));
    }
}

static void
test_schedules (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HbConfig) config = NULL;
  const HbConfigAgent *nightly, *plain;

  write_file (f->path,
              "[agent:nightly]\nschedule= 30 2 * * mon-fri \ntz=Europe/Berlin\ngrace=15min\n"
              "[agent:plain]\n"
              "[agent:weekdays]\nschedule=Mon..Fri *-*-* 03:00:00\n"
              "[http]\nping-key-file=/etc/heartbeat/ping-key\n");
  config = hb_config_load (f->path, &error);
  g_assert_no_error (error);
  nightly = g_ptr_array_index (config->agents, 0);
  plain = g_ptr_array_index (config->agents, 1);
  g_assert_cmpstr (nightly->schedule, ==, "30 2 * * mon-fri");
  g_assert_cmpstr (nightly->tz, ==, "Europe/Berlin");
  g_assert_cmpint (nightly->grace_usec, ==, 15 * 60 * G_USEC_PER_SEC);
  g_assert_null (plain->schedule);
  g_assert_null (plain->tz);
  g_assert_cmpint (plain->grace_usec, ==, 0);
  g_assert_cmpstr (config->http_ping_key_file, ==, "/etc/heartbeat/ping-key");
  /* systemd's calendar syntax, read by systemd (skipped where it is not) */
  if (g_file_test ("/usr/bin/systemd-analyze", G_FILE_TEST_IS_EXECUTABLE))
    g_assert_cmpstr (((HbConfigAgent *) g_ptr_array_index (config->agents, 2))->schedule, ==,
                     "Mon..Fri *-*-* 03:00:00");
}

static void
test_alerts_and_log (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HbConfig) config = NULL;
  const HbConfigAlert *hook, *restart;

  write_file (f->path,
              "[alert:hook]\nevents=stale, error\nagents=web-*\nwebhook=https://example.org/hook\n"
              "retries=5\nretry-interval=2s\nbackoff=exponential\n"
              "[alert:restart]\nrestart-unit=worker.service\n"
              "[log]\nevents-file=/var/log/heartbeat/events.jsonl\nretention=30\n");
  config = hb_config_load (f->path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (config->alerts->len, ==, 2);
  hook = g_ptr_array_index (config->alerts, 0);
  restart = g_ptr_array_index (config->alerts, 1);
  g_assert_cmpstr (hook->name, ==, "hook");
  g_assert_cmpuint (g_strv_length (hook->events), ==, 2);
  g_assert_true (g_strv_contains ((const char *const *) hook->events, "error"));
  g_assert_cmpstr (hook->agents, ==, "web-*");
  g_assert_cmpint (hook->action, ==, HB_ALERT_WEBHOOK);
  g_assert_cmpuint (hook->retries, ==, 5);
  g_assert_cmpint (hook->retry_interval_usec, ==, 2 * G_USEC_PER_SEC);
  g_assert_true (hook->exponential);
  g_assert_cmpint (hook->timeout_usec, ==, 10 * G_USEC_PER_SEC);
  /* defaults: the events that mean trouble, every agent, 003's retries */
  g_assert_cmpint (restart->action, ==, HB_ALERT_RESTART_UNIT);
  g_assert_cmpstr (restart->target, ==, "worker.service");
  g_assert_cmpuint (g_strv_length (restart->events), ==, 4);
  g_assert_cmpstr (restart->agents, ==, "*");
  g_assert_cmpuint (restart->retries, ==, 3);
  g_assert_cmpint (restart->retry_interval_usec, ==, 5 * G_USEC_PER_SEC);
  g_assert_cmpint (restart->cooldown_usec, ==, 5 * 60 * G_USEC_PER_SEC);
  g_assert_cmpstr (config->events_file, ==, "/var/log/heartbeat/events.jsonl");
  g_assert_cmpuint (config->events_retention, ==, 30);
}

static void
test_unit_names (void)
{
  static const char *const valid[] = {
    "worker.service", "getty@tty1.service", "dev-sda1.swap", "sys-fs-fuse-connections.mount",
    "system-getty.slice", "backup.timer", "sshd.socket", "multi-user.target", "session-2.scope",
    "foo\\x2dbar.service", "a:b_c.path", "-.mount",
  };
  static const char *const invalid[] = {
    "", "worker", "worker.", ".service", "worker.servic", "worker.service.d", "a/b.service",
    "wörker.service", "my worker.service", "getty@.service", "worker.service\n",
  };
  g_autoptr(GString) name = g_string_new (NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (valid); i++)
    {
      g_autoptr(GError) error = NULL;

      g_test_message ("%s", valid[i]);
      g_assert_true (hb_config_check_unit_name (valid[i], &error));
      g_assert_no_error (error);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (invalid); i++)
    {
      g_autoptr(GError) error = NULL;

      g_test_message ("%s", invalid[i]);
      g_assert_false (hb_config_check_unit_name (invalid[i], &error));
      g_assert_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE);
    }

  /* 255 bytes is systemd's limit (UNIT_NAME_MAX - 1) */
  while (name->len < 255 - strlen (".service"))
    g_string_append_c (name, 'a');
  g_string_append (name, ".service");
  g_assert_cmpuint (name->len, ==, 255);
  g_assert_true (hb_config_check_unit_name (name->str, NULL));
  g_string_insert_c (name, 0, 'a');
  g_assert_false (hb_config_check_unit_name (name->str, NULL));
}

static void
test_unit_backed_agents (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HbConfig) config = NULL;
  const HbConfigAgent *web, *getty, *plain;
  const HbConfigAlert *own, *named;

  write_file (f->path,
              "[agent:web]\nunit=web.service\nstale-threshold=1min\n"
              "[agent:getty]\nunit = getty@tty1.service \n"
              "[agent:plain]\n"
              "[alert:own]\nevents=stale\nagents=web\nrestart-unit=\n"
              "[alert:named]\nrestart-unit=other.service\n");
  write_dropin (f, "50-web.conf", "[agent:web]\nunit=web2.service\n");
  config = hb_config_load (f->path, &error);
  g_assert_no_error (error);

  g_assert_cmpuint (config->agents->len, ==, 3);
  web = g_ptr_array_index (config->agents, 0);
  getty = g_ptr_array_index (config->agents, 1);
  plain = g_ptr_array_index (config->agents, 2);
  g_assert_cmpstr (web->unit, ==, "web2.service");   /* the drop-in's */
  g_assert_cmpint (web->stale_after_usec, ==, 60 * G_USEC_PER_SEC);
  g_assert_cmpstr (getty->unit, ==, "getty@tty1.service");
  g_assert_null (plain->unit);

  /* restart-unit= empty: the agent's own unit, decided when an alert fires */
  g_assert_cmpuint (config->alerts->len, ==, 2);
  own = g_ptr_array_index (config->alerts, 0);
  named = g_ptr_array_index (config->alerts, 1);
  g_assert_cmpint (own->action, ==, HB_ALERT_RESTART_UNIT);
  g_assert_cmpstr (own->target, ==, "");
  g_assert_cmpstr (own->agents, ==, "web");
  g_assert_cmpint (own->cooldown_usec, ==, 5 * 60 * G_USEC_PER_SEC);
  g_assert_cmpint (named->action, ==, HB_ALERT_RESTART_UNIT);
  g_assert_cmpstr (named->target, ==, "other.service");
}

static void
test_missing_file (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HbConfig) config = hb_config_load (f->path, &error);

  g_assert_null (config);
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_assert_nonnull (strstr (error->message, f->path));
}

static void
test_apply (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HbConfig) config = NULL;
  g_autoptr(HbConfig) reloaded = NULL;
  g_autoptr(HeartbeatMonitor) monitor = heartbeat_monitor_new ();
  HeartbeatAgent *agent;

  write_file (f->path,
              "[monitor]\ncheck-interval=2s\nstale-threshold=10s\ntimeout-threshold=1min\n"
              "stale-warning-only-once=false\n"
              "[agent:backup]\ntask=nightly\nstale-threshold=3s\n");
  config = hb_config_load (f->path, &error);
  g_assert_no_error (error);
  hb_config_apply (config, monitor, 1000);

  g_assert_cmpint (heartbeat_monitor_get_check_interval (monitor), ==, 2 * G_USEC_PER_SEC);
  g_assert_cmpint (heartbeat_monitor_get_stale_threshold (monitor), ==, 10 * G_USEC_PER_SEC);
  g_assert_cmpint (heartbeat_monitor_get_timeout_threshold (monitor), ==, 60 * G_USEC_PER_SEC);
  g_assert_false (heartbeat_monitor_get_stale_warning_only_once (monitor));

  agent = heartbeat_monitor_lookup (monitor, "backup");
  g_assert_nonnull (agent);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_NO_HEARTBEAT);
  g_assert_cmpstr (heartbeat_agent_get_task_id (agent), ==, "nightly");
  g_assert_cmpint (heartbeat_agent_get_stale_after (agent), ==, 3 * G_USEC_PER_SEC);
  g_assert_true (heartbeat_agent_is_declared (agent));
  g_assert_cmpuint (heartbeat_agent_get_owner_uid (agent), ==, 1000);

  /* A reload keeps the agent and its run (it beat meanwhile), and gives it
   * what its section says now: no task, the new default threshold */
  g_assert_true (heartbeat_monitor_beat (monitor, "backup", NULL, &error));
  g_assert_no_error (error);
  write_file (f->path, "[monitor]\nstale-threshold=20s\n[agent:backup]\n[agent:spare]\n");
  reloaded = hb_config_load (f->path, &error);
  g_assert_no_error (error);
  hb_config_apply (reloaded, monitor, 1000);
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (monitor), ==, 2);
  g_assert_true (heartbeat_monitor_lookup (monitor, "backup") == agent);
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_HEALTHY);
  g_assert_cmpuint (heartbeat_agent_get_beats (agent), ==, 1);
  g_assert_null (heartbeat_agent_get_task_id (agent));
  g_assert_cmpint (heartbeat_monitor_get_stale_threshold (monitor), ==, 20 * G_USEC_PER_SEC);
  g_assert_cmpint (heartbeat_agent_get_stale_after (agent), ==, 20 * G_USEC_PER_SEC);

  /* Sections removed: the agent that beat goes on undeclared, the one that
   * never did is gone from the list */
  write_file (f->path, "[monitor]\nstale-threshold=20s\n");
  g_clear_pointer (&reloaded, hb_config_free);
  reloaded = hb_config_load (f->path, &error);
  g_assert_no_error (error);
  hb_config_apply (reloaded, monitor, 1000);
  g_assert_cmpuint (heartbeat_monitor_get_n_agents (monitor), ==, 1);
  g_assert_true (heartbeat_monitor_lookup (monitor, "backup") == agent);
  g_assert_false (heartbeat_agent_is_declared (agent));
  g_assert_cmpint (heartbeat_agent_get_state (agent), ==, HEARTBEAT_AGENT_STATE_HEALTHY);
  g_assert_null (heartbeat_monitor_lookup (monitor, "spare"));
}

/* tags= : split at commas and spaces, checked by the monitor's rule (a
 * bad tag is a problem with its file and line), given to the agent at
 * start and at every reload. */
/* [http] TLS: paths as given, credential:NAME from $CREDENTIALS_DIRECTORY,
 * and a credential without that directory refused with the way to set it */
static void
test_http_tls (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HbConfig) config = NULL;
  g_autoptr(HbConfig) refused = NULL;
  g_autofree char *saved = g_strdup (g_getenv ("CREDENTIALS_DIRECTORY"));

  write_file (f->path, "[http]\ntls-certificate=/etc/heartbeat/tls.pem\ntls-key=credential:tls.key\n"
                       "tls-client-ca=/etc/heartbeat/clients.pem\ntokens-file=credential:tokens\n");
  g_setenv ("CREDENTIALS_DIRECTORY", "/run/credentials/heartbeatd.service", TRUE);
  config = hb_config_load (f->path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (config->http_tls_certificate, ==, "/etc/heartbeat/tls.pem");
  g_assert_cmpstr (config->http_tls_key, ==, "/run/credentials/heartbeatd.service/tls.key");
  g_assert_cmpstr (config->http_tls_client_ca, ==, "/etc/heartbeat/clients.pem");
  g_assert_cmpstr (config->http_tokens_file, ==, "/run/credentials/heartbeatd.service/tokens");
  g_assert_false (config->http_trusted_network);

  g_unsetenv ("CREDENTIALS_DIRECTORY");
  refused = hb_config_load (f->path, &error);
  g_assert_null (refused);
  g_assert_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE);
  g_assert_nonnull (strstr (error->message, "LoadCredential=tls.key:PATH"));
  g_assert_nonnull (strstr (error->message, "LoadCredential=tokens:PATH"));
  if (saved)
    g_setenv ("CREDENTIALS_DIRECTORY", saved, TRUE);
}

/* A CA certificate for ca-file= (self-signed, valid until 2126). */
static const char alert_ca_pem[] =
  "-----BEGIN CERTIFICATE-----\n"
  "MIIBkDCCATWgAwIBAgIUZdkEoBNJtEhFBUdg34RoE3L0OoswCgYIKoZIzj0EAwIw\n"
  "HDEaMBgGA1UEAwwRaGIgdGVzdC1jb25maWcgQ0EwIBcNMjYxMjA3MTkxMzE2WhgP\n"
  "MjEyNjExMTMxOTEzMTZaMBwxGjAYBgNVBAMMEWhiIHRlc3QtY29uZmlnIENBMFkw\n"
  "EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEzyKklGo+bmKbjAWzN2QDFzVapbJJZWW/\n"
  "17iwpFciKioIDpltKohPmgCHBJILeNWwcMCiR2cxM40mDqNB/lFPzaNTMFEwHQYD\n"
  "VR0OBBYEFEffGAy/IjTGSapfhr0JBfTm/R3jMB8GA1UdIwQYMBaAFEffGAy/IjTG\n"
  "Sapfhr0JBfTm/R3jMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIh\n"
  "AMOvJeXSEUK4AWJMQtD4N6tagSW3Xa72XauJwgJAp9WGAiEA+wWTWE7pnmCGJe0q\n"
  "/viuqBINgaOTHgDBPNh7gWlaCvw=\n"
  "-----END CERTIFICATE-----\n";

/* Asserts @problems are exactly @expected (prefixes, in order). */
static void
assert_problems (GPtrArray *problems, const char *const *expected)
{
  guint n = g_strv_length ((char **) expected);

  for (guint i = 0; i < problems->len; i++)
    g_test_message ("%s", (const char *) g_ptr_array_index (problems, i));
  g_assert_cmpuint (problems->len, ==, n);
  for (guint i = 0; i < n; i++)
    g_assert_true (g_str_has_prefix (g_ptr_array_index (problems, i), expected[i]));
}

/* alertmanager= takes several URLs, webhook= one, each an http(s) URL
 * with a host; ca-file= and token-file= (a path or credential:NAME) are
 * read at load, and whatever is wrong with them is a problem at their
 * line, the configuration refused. */
static void
test_alerts_https (Fixture *f, gconstpointer data)
{
  g_autofree char *saved = g_strdup (g_getenv ("CREDENTIALS_DIRECTORY"));
  g_autofree char *ca = g_build_filename (f->dir, "ca.pem", NULL);
  g_autofree char *token = g_build_filename (f->dir, "token", NULL);
  g_autofree char *open_token = g_build_filename (f->dir, "open-token", NULL);
  g_autofree char *two_tokens = g_build_filename (f->dir, "two-tokens", NULL);
  g_autofree char *not_pem = g_build_filename (f->dir, "not.pem", NULL);
  g_autofree char *text = NULL;
  g_autofree char *many = NULL;
  g_autoptr(GString) urls = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(HbConfig) config = NULL;
  g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  const HbConfigAlert *alert;

  write_file (ca, alert_ca_pem);
  write_file (token, "  hb-token.1\n");
  g_assert_cmpint (g_chmod (token, 0600), ==, 0);
  write_file (open_token, "hb-token.1\n");
  g_assert_cmpint (g_chmod (open_token, 0644), ==, 0);
  write_file (two_tokens, "hb-token.1 hb-token.2\n");
  g_assert_cmpint (g_chmod (two_tokens, 0600), ==, 0);
  write_file (not_pem, "not a certificate\n");

  text = g_strdup_printf ("[alert:am]\nalertmanager=https://am1.example:9093, http://am2.example:9093/\t"
                          "https://[::1]:9093\nca-file=%s\ntoken-file=%s\n"
                          "[alert:hook]\nwebhook=https://hooks.example/x\n", ca, token);
  write_file (f->path, text);
  config = hb_config_load (f->path, &error);
  g_assert_no_error (error);
  alert = g_ptr_array_index (config->alerts, 0);
  g_assert_cmpint (alert->action, ==, HB_ALERT_ALERTMANAGER);
  g_assert_cmpuint (g_strv_length (alert->urls), ==, 3);
  g_assert_cmpstr (alert->urls[0], ==, "https://am1.example:9093");
  g_assert_cmpstr (alert->urls[1], ==, "http://am2.example:9093/");
  g_assert_cmpstr (alert->urls[2], ==, "https://[::1]:9093");
  g_assert_cmpstr (alert->ca_file, ==, ca);
  g_assert_nonnull (alert->tls_database);
  g_assert_cmpstr (alert->token, ==, "hb-token.1");
  alert = g_ptr_array_index (config->alerts, 1);
  g_assert_cmpint (alert->action, ==, HB_ALERT_WEBHOOK);
  g_assert_cmpuint (g_strv_length (alert->urls), ==, 1);
  g_assert_cmpstr (alert->urls[0], ==, "https://hooks.example/x");
  g_assert_null (alert->ca_file);
  g_assert_null (alert->tls_database);
  g_assert_null (alert->token);
  g_clear_pointer (&config, hb_config_free);

  /* credential:NAME: the file systemd passes */
  g_setenv ("CREDENTIALS_DIRECTORY", f->dir, TRUE);
  write_file (f->path, "[alert:am]\nalertmanager=https://am.example\nca-file=credential:ca.pem\n"
                       "token-file=credential:token\n");
  config = hb_config_load (f->path, &error);
  g_assert_no_error (error);
  alert = g_ptr_array_index (config->alerts, 0);
  g_assert_cmpstr (alert->ca_file, ==, ca);
  g_assert_nonnull (alert->tls_database);
  g_assert_cmpstr (alert->token, ==, "hb-token.1");
  g_clear_pointer (&config, hb_config_free);
  g_unsetenv ("CREDENTIALS_DIRECTORY");

  /* the values */
  for (guint i = 0; i < 17; i++)
    g_string_append_printf (urls, "http://am%u.example ", i);
  many = g_strdup_printf ("[alert:a]\n"
                          "alertmanager=https://ok.example, ftp://am.example\n"      /* 2 */
                          "[alert:b]\n"
                          "alertmanager=http://am.example/ http://am.example\n"      /* 4 */
                          "[alert:c]\n"
                          "webhook=https:///no-host\n"                               /* 6 */
                          "[alert:d]\n"
                          "exec=/bin/true\n"
                          "token-file=%s\n"                                          /* 9 */
                          "[alert:e]\n"
                          "alertmanager=,\n"                                         /* 11 */
                          "[alert:f]\n"
                          "alertmanager=%s\n"                                        /* 13 */
                          "[alert:g]\n"
                          "webhook=https://ok.example\n"
                          "ca-file=credential:ca.pem\n"                              /* 16 */
                          "[alert:h]\n"
                          "webhook=https://ok.example\n"
                          "ca-file=%s\n",                                            /* 19 */
                          token, urls->str, not_pem);
  write_file (f->path, many);
  config = hb_config_load_full (f->path, HB_CONFIG_LOAD_NONE, problems, &error);
  g_assert_null (config);
  g_clear_error (&error);
  {
    g_autofree char *p2 = g_strdup_printf ("%s:2: [alert:a] alertmanager: “ftp://am.example” is not an http(s) URL: "
                                           "its scheme is neither http nor https", f->path);
    g_autofree char *p4 = g_strdup_printf ("%s:4: [alert:b] alertmanager: “http://am.example” is listed twice", f->path);
    g_autofree char *p6 = g_strdup_printf ("%s:6: [alert:c] webhook: “https:///no-host” is not an http(s) URL: "
                                           "it has no host", f->path);
    g_autofree char *p11 = g_strdup_printf ("%s:11: [alert:e] alertmanager: No URL listed", f->path);
    g_autofree char *p13 = g_strdup_printf ("%s:13: [alert:f] alertmanager: 17 URLs listed; at most 16", f->path);
    g_autofree char *p16 = g_strdup_printf ("%s:16: [alert:g] ca-file: “credential:ca.pem” needs $CREDENTIALS_DIRECTORY",
                                            f->path);
    g_autofree char *p9 = g_strdup_printf ("%s:9: [alert:d] token-file= goes with webhook= or alertmanager=", f->path);
    /* a section whose action is refused has none */
    g_autofree char *p1 = g_strdup_printf ("%s:1: [alert:a] needs exactly one of", f->path);
    g_autofree char *p3 = g_strdup_printf ("%s:3: [alert:b] needs exactly one of", f->path);
    g_autofree char *p5 = g_strdup_printf ("%s:5: [alert:c] needs exactly one of", f->path);
    g_autofree char *p10 = g_strdup_printf ("%s:10: [alert:e] needs exactly one of", f->path);
    g_autofree char *p12 = g_strdup_printf ("%s:12: [alert:f] needs exactly one of", f->path);
    /* a file is read whatever else is wrong: one check lists everything */
    g_autofree char *p19 = g_strdup_printf ("%s:19: [alert:h] ca-file: %s: no PEM certificate in it", f->path, not_pem);
    const char *const expected[] = { p2, p4, p6, p11, p13, p16, p1, p3, p5, p9, p10, p12, p19, NULL };

    assert_problems (problems, expected);
  }
  g_ptr_array_set_size (problems, 0);

  /* the files */
  text = (g_free (text), g_strdup_printf ("[alert:a]\nwebhook=https://ok.example\n"
                                          "ca-file=%s\n"                 /* 3 */
                                          "token-file=%s\n"              /* 4 */
                                          "[alert:b]\nalertmanager=https://ok.example\n"
                                          "token-file=%s\n"              /* 7 */
                                          "ca-file=%s/missing.pem\n",    /* 8 */
                                          not_pem, open_token, two_tokens, f->dir));
  write_file (f->path, text);
  config = hb_config_load_full (f->path, HB_CONFIG_LOAD_NONE, problems, &error);
  g_assert_null (config);
  g_assert_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE);
  {
    g_autofree char *p3 = g_strdup_printf ("%s:3: [alert:a] ca-file: %s: ", f->path, not_pem);
    g_autofree char *p4 = g_strdup_printf ("%s:4: [alert:a] token-file: %s: a token file must be readable by its "
                                           "owner only (chmod 600)", f->path, open_token);
    g_autofree char *p8 = g_strdup_printf ("%s:8: [alert:b] ca-file: %s/missing.pem: ", f->path, f->dir);
    g_autofree char *p7 = g_strdup_printf ("%s:7: [alert:b] token-file: %s: a token file holds one token",
                                           f->path, two_tokens);
    const char *const expected[] = { p3, p4, p8, p7, NULL };

    assert_problems (problems, expected);
  }
  if (saved)
    g_setenv ("CREDENTIALS_DIRECTORY", saved, TRUE);
}

/* --check-config under ExecReload= cannot see the service's credentials
 * (systemd issue 35227): a check leaves them out, the daemon does not */
static void
test_hidden_credentials (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HbConfig) checked = NULL;
  g_autoptr(HbConfig) refused = NULL;
  g_autofree char *saved = g_strdup (g_getenv ("CREDENTIALS_DIRECTORY"));
  g_autofree char *hidden = g_build_filename (f->dir, "credentials", NULL);

  write_file (f->path, "[alert:am]\nalertmanager=https://am.example.org:9093\nca-file=credential:am-ca.pem\n"
                       "token-file=credential:am-token\n");
  /* a directory this process cannot see, as under ExecReload= */
  g_setenv ("CREDENTIALS_DIRECTORY", hidden, TRUE);
  checked = hb_config_load_full (f->path, HB_CONFIG_LOAD_CHECK_ONLY, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (checked);
  refused = hb_config_load_full (f->path, HB_CONFIG_LOAD_NONE, NULL, &error);
  g_assert_null (refused);
  g_assert_nonnull (strstr (error->message, "ca-file"));
  g_assert_nonnull (strstr (error->message, "token-file"));
  {
    g_autofree char *inside = g_build_filename (hidden, "am-ca.pem", NULL);

    g_assert_true (hb_config_is_hidden_credential (inside));
  }
  g_assert_false (hb_config_is_hidden_credential (f->path));
  if (saved)
    g_setenv ("CREDENTIALS_DIRECTORY", saved, TRUE);
  else
    g_unsetenv ("CREDENTIALS_DIRECTORY");
}

static void
test_tags (Fixture *f, gconstpointer data)
{
  g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_autoptr(HbConfig) config = NULL;
  g_autoptr(HbConfig) reloaded = NULL;
  g_autoptr(HbConfig) bad = NULL;
  g_autoptr(HeartbeatMonitor) monitor = heartbeat_monitor_new ();
  g_autofree char *dropin = g_build_filename (f->dir, "heartbeatd.conf.d", "50-tags.conf", NULL);
  g_autofree char *long_tag = g_strnfill (65, 'x');
  g_autofree char *many = NULL;
  g_autofree char *contents = NULL;
  const HbConfigAgent *web, *plain, *empty;
  const char *const *tags;

  write_file (f->path,
              "[agent:web]\ntags= prod, eu-west  team:ops,,prod \n"
              "[agent:plain]\n"
              "[agent:empty]\ntags=\n"
              "[agent:db]\ntags=old\n");
  write_dropin (f, "50-tags.conf", "[agent:db]\ntags=storage@eu\tdb.1\n");
  config = hb_config_load (f->path, &error);
  g_assert_no_error (error);
  web = g_ptr_array_index (config->agents, 0);
  plain = g_ptr_array_index (config->agents, 1);
  empty = g_ptr_array_index (config->agents, 2);
  g_assert_cmpstrv (web->tags, ((const char *[]) { "prod", "eu-west", "team:ops", "prod", NULL }));
  g_assert_null (plain->tags);
  g_assert_cmpstrv (empty->tags, ((const char *[]) { NULL }));
  /* a drop-in sets the list anew */
  g_assert_cmpstrv (((HbConfigAgent *) g_ptr_array_index (config->agents, 3))->tags,
                    ((const char *[]) { "storage@eu", "db.1", NULL }));

  /* the agent has them, sorted, each once */
  hb_config_apply (config, monitor, 0);
  tags = heartbeat_agent_get_tags (heartbeat_monitor_lookup (monitor, "web"));
  g_assert_cmpstrv (tags, ((const char *[]) { "eu-west", "prod", "team:ops", NULL }));
  tags = heartbeat_agent_get_tags (heartbeat_monitor_lookup (monitor, "plain"));
  g_assert_cmpstrv (tags, ((const char *[]) { NULL }));
  tags = heartbeat_agent_get_tags (heartbeat_monitor_lookup (monitor, "db"));
  g_assert_cmpstrv (tags, ((const char *[]) { "db.1", "storage@eu", NULL }));

  /* a reload gives an agent that exists (and beat) its section's tags */
  g_assert_true (heartbeat_monitor_beat (monitor, "web", NULL, &error));
  g_assert_no_error (error);
  write_file (f->path, "[agent:web]\ntags=canary\n[agent:plain]\ntags=new\n");
  g_unlink (dropin);
  reloaded = hb_config_load (f->path, &error);
  g_assert_no_error (error);
  hb_config_apply (reloaded, monitor, 0);
  tags = heartbeat_agent_get_tags (heartbeat_monitor_lookup (monitor, "web"));
  g_assert_cmpstrv (tags, ((const char *[]) { "canary", NULL }));
  g_assert_cmpuint (heartbeat_agent_get_beats (heartbeat_monitor_lookup (monitor, "web")), ==, 1);
  tags = heartbeat_agent_get_tags (heartbeat_monitor_lookup (monitor, "plain"));
  g_assert_cmpstrv (tags, ((const char *[]) { "new", NULL }));

  /* bad tags: each a problem with its file and line, the good lines
   * around them fine */
  {
    GString *list = g_string_new (NULL);

    for (guint i = 0; i < 17; i++)
      g_string_append_printf (list, "%st%u", i ? "," : "", i);
    many = g_string_free (list, FALSE);
  }
  write_dropin (f, "50-tags.conf", "");
  contents = g_strdup_printf ("[agent:a]\n"
                              "tags=ok\n"            /* 2 */
                              "tags=ok,b/d\n"        /* 3 */
                              "[agent:b]\n"
                              "tags=%s\n"            /* 5: too long */
                              "tags=%s\n"            /* 6: too many */
                              "tags=ünï\n",          /* 7: not ASCII */
                              long_tag, many);
  write_file (f->path, contents);
  bad = hb_config_load_full (f->path, HB_CONFIG_LOAD_NONE, problems, &error);
  g_assert_null (bad);
  g_assert_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE);
  for (guint i = 0; i < problems->len; i++)
    g_test_message ("%s", (const char *) g_ptr_array_index (problems, i));
  g_assert_cmpuint (problems->len, ==, 4);
  for (guint i = 0; i < 4; i++)
    {
      static const guint lines[] = { 3, 5, 6, 7 };
      g_autofree char *prefix = g_strdup_printf ("%s:%u: [agent:%c] tags: ", f->path, lines[i], i ? 'b' : 'a');

      g_assert_true (g_str_has_prefix (g_ptr_array_index (problems, i), prefix));
    }
}

/* Every problem of every file, each with its file and line, in one run:
 * what heartbeatd --check-config prints. */
static void
test_every_problem_with_line (Fixture *f, gconstpointer data)
{
  g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_autoptr(HbConfig) config = NULL;
  g_autofree char *dropin_a = g_build_filename (f->dir, "heartbeatd.conf.d", "50-a.conf", NULL);
  g_autofree char *dropin_b = g_build_filename (f->dir, "heartbeatd.conf.d", "60-b.conf", NULL);
  g_autoptr(GPtrArray) expected = g_ptr_array_new_with_free_func (g_free);

  write_file (f->path,
              "# the main file\n"
              "[monitor]\n"
              "stale-treshold=5min\n"            /* 3 */
              "check-interval=soon\n"            /* 4 */
              "\n"
              "[http]\n"
              "port=70000\n");                   /* 7 */
  write_dropin (f, "50-a.conf",
                "[monitr]\n"                     /* 1 */
                "ignored=because the section is unknown\n"
                "[alert:a]\n"                    /* 3: no action */
                "events=stale\n"
                "just words\n");                 /* 5 */
  write_dropin (f, "60-b.conf",
                "[alert:b]\n"
                "webhook=http://example.org/\n"  /* 2 */
                "exec=/bin/true\n"               /* 3: a second action */
                "[agent:ok]\n"
                "stale-threshold=1min\n");
  g_ptr_array_add (expected, g_strdup_printf ("%s:3: unknown key “stale-treshold” in [monitor]", f->path));
  g_ptr_array_add (expected, g_strdup_printf ("%s:4: [monitor] check-interval: ", f->path));
  g_ptr_array_add (expected, g_strdup_printf ("%s:7: [http] port: ", f->path));
  g_ptr_array_add (expected, g_strdup_printf ("%s:1: unknown section [monitr]", dropin_a));
  g_ptr_array_add (expected, g_strdup_printf ("%s:5: “just words” is not a [section] header", dropin_a));
  g_ptr_array_add (expected, g_strdup_printf ("%s:3: [alert:a] needs exactly one of", dropin_a));
  g_ptr_array_add (expected, g_strdup_printf ("%s:3: [alert:b] needs exactly one of webhook=, alertmanager=, exec=, "
                                 "restart-unit=; it has webhook= (%s:2) and exec= (%s:3)",
                                 dropin_b, dropin_b, dropin_b));

  config = hb_config_load_full (f->path, HB_CONFIG_LOAD_NONE, problems, &error);
  g_assert_null (config);
  g_assert_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE);
  for (guint i = 0; i < problems->len; i++)
    g_test_message ("%s", (const char *) g_ptr_array_index (problems, i));
  g_assert_cmpuint (problems->len, ==, 7);
  for (guint i = 0; i < 7; i++)
    {
      const char *got = g_ptr_array_index (problems, i);

      g_assert_true (g_str_has_prefix (got, g_ptr_array_index (expected, i)));
      /* the error has them all, one a line */
      g_assert_nonnull (strstr (error->message, got));
    }
  {
    g_auto(GStrv) lines = g_strsplit (error->message, "\n", -1);

    g_assert_cmpuint (g_strv_length (lines), ==, 7);
  }

  /* the same files fixed: no problem, and the valid agent is there */
  write_file (f->path, "[monitor]\nstale-threshold=5min\n");
  write_dropin (f, "50-a.conf", "[alert:a]\nevents=stale\nexec=/bin/true\n");
  write_dropin (f, "60-b.conf", "[alert:b]\nwebhook=http://example.org/\n[agent:ok]\n");
  g_clear_error (&error);
  g_ptr_array_set_size (problems, 0);
  config = hb_config_load_full (f->path, HB_CONFIG_LOAD_NONE, problems, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (problems->len, ==, 0);
  g_assert_cmpuint (config->alerts->len, ==, 2);
  g_assert_cmpuint (config->agents->len, ==, 1);
}

/* Lines that are no key file syntax, each reported with its line; the
 * good lines around them are still checked. */
static void
test_syntax_problems (Fixture *f, gconstpointer data)
{
  static const struct { const char *line; const char *message; } cases[] = {
    { "stale-threshold=1min", "stale-threshold= comes before any [section]" },
    { "[monitor", "“[monitor” is not a [section] header" },
    { "[monitor] # a comment", "is not a [section] header" },
    { "[]", "[] is not a section name" },
    { "[agent:bad id]", "[agent:bad id]: " },
    { "[alert:]", "[alert:] needs a name" },
    { "no equals sign", "is not a [section] header, a key=value line or a # comment" },
    { "[log]\nevents-file=/var/log/a\\qb", "Invalid escape sequence" },
    { "[log]\nevents-file=/var/log/a\\", "lone backslash" },
    { "[log]\nevents-file=/var/log/\xff", "not valid UTF-8" },
    { "[agent:x]\ntask=a\\tb", "control character" },
    { "[agent:x]\ntask=a\x01" "b", "control character" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
      g_autoptr(GError) error = NULL;
      g_autoptr(HbConfig) config = NULL;
      g_autofree char *contents = g_strdup_printf ("# line 1\n\n%s\n[monitor]\nstale-treshold=1\n", cases[i].line);
      g_auto(GStrv) split = g_strsplit (cases[i].line, "\n", -1);
      guint lines = 2 + g_strv_length (split);
      g_autofree char *first = g_strdup_printf ("%s:%u: ", f->path, lines);
      g_autofree char *second = g_strdup_printf ("%s:%u: unknown key “stale-treshold” in [monitor]", f->path, lines + 2);

      g_autofree char *shown = g_strescape (cases[i].line, NULL);

      g_test_message ("%s", shown);
      write_file (f->path, contents);
      config = hb_config_load_full (f->path, HB_CONFIG_LOAD_NONE, problems, &error);
      g_assert_null (config);
      for (guint p = 0; p < problems->len; p++)
        g_test_message ("  %s", (const char *) g_ptr_array_index (problems, p));
      g_assert_cmpuint (problems->len, ==, 2);
      g_assert_true (g_str_has_prefix (g_ptr_array_index (problems, 0), first));
      g_assert_nonnull (strstr (g_ptr_array_index (problems, 0), cases[i].message));
      g_assert_cmpstr (g_ptr_array_index (problems, 1), ==, second);
    }

  /* a NUL byte, from memory (the fuzz target's way in) */
  {
    static const char text[] = "[monitor]\nstale-threshold=1\0min\n[monitr]\n";
    g_autoptr(GError) error = NULL;
    g_autoptr(HbConfig) config = hb_config_load_from_data (text, sizeof text - 1, "mem", &error);

    g_assert_null (config);
    g_assert_cmpstr (error->message, ==, "mem:2: the line contains a NUL byte\nmem:3: unknown section [monitr]");
  }
}

/* [log] events-file=: where the system service cannot keep it, and where
 * this process may not write it. */
static void
test_events_file_rules (Fixture *f, gconstpointer data)
{
  static const char *const private_paths[] = {
    "/tmp/events.jsonl", "/var/tmp/heartbeat/events.jsonl", "/tmp/../tmp/x.jsonl",
    "/var/log/../../tmp/x.jsonl", "/home/admin/events.jsonl", "/dev/shm/events.jsonl",
  };
  g_autofree char *link = g_build_filename (f->dir, "to-tmp", NULL);
  g_autofree char *through_link = g_build_filename (link, "events.jsonl", NULL);
  g_autofree char *logs = g_build_filename (f->dir, "logs", NULL);
  g_autofree char *in_logs = g_build_filename (logs, "events.jsonl", NULL);
  g_autofree char *missing = g_build_filename (f->dir, "missing", "events.jsonl", NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (private_paths); i++)
    {
      g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
      g_autoptr(GError) error = NULL;
      g_autoptr(HbConfig) config = NULL;
      g_autofree char *contents = g_strdup_printf ("[monitor]\n\n[log]\nevents-file=%s\n", private_paths[i]);
      g_autofree char *expected = g_strdup_printf ("%s:4: [log] events-file: “%s” is in /", f->path, private_paths[i]);

      g_test_message ("%s", private_paths[i]);
      write_file (f->path, contents);
      /* the system service's rules refuse it, with the reason */
      config = hb_config_load_full (f->path, HB_CONFIG_LOAD_SYSTEM, problems, &error);
      g_assert_null (config);
      g_assert_cmpuint (problems->len, ==, 1);
      g_assert_true (g_str_has_prefix (g_ptr_array_index (problems, 0), expected));
      g_assert_nonnull (strstr (error->message, "heartbeatd.service"));
      /* a user's heartbeatd has the real /tmp */
      g_clear_error (&error);
      config = hb_config_load_full (f->path, HB_CONFIG_LOAD_NONE, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (config->events_file, ==, private_paths[i]);
    }

  /* a directory that resolves into /tmp */
  g_assert_cmpint (symlink ("/tmp", link), ==, 0);
  {
    g_autoptr(GError) error = NULL;

    gboolean ok = hb_config_check_events_file (through_link, HB_CONFIG_LOAD_SYSTEM, &error);

    g_assert_cmpint (g_unlink (link), ==, 0);
    g_assert_false (ok);
    g_assert_nonnull (strstr (error->message, "is in /tmp"));
  }

  /* writable: the directory must exist, and this process write there */
  g_assert_cmpint (g_mkdir (logs, 0755), ==, 0);
  g_assert_true (hb_config_check_events_file (in_logs, HB_CONFIG_LOAD_CHECK_WRITABLE, NULL));
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(HbConfig) config = NULL;
    g_autofree char *contents = g_strdup_printf ("[log]\nevents-file=%s\n", missing);

    write_file (f->path, contents);
    config = hb_config_load_full (f->path, HB_CONFIG_LOAD_CHECK_WRITABLE, NULL, &error);
    g_assert_null (config);
    g_assert_nonnull (strstr (error->message, ":2: [log] events-file: the directory"));
    g_assert_nonnull (strstr (error->message, "does not exist"));
    g_clear_error (&error);
    g_assert_false (hb_config_check_events_file (logs, HB_CONFIG_LOAD_CHECK_WRITABLE, &error));
    g_assert_nonnull (strstr (error->message, "is a directory"));
  }

  /* a directory this process may not write in: as uid 65534 when run as
   * root (root may write anywhere but on a read-only mount) */
  g_assert_cmpint (g_chmod (f->dir, 0755), ==, 0);
  g_assert_cmpint (g_chmod (logs, 0555), ==, 0);
  {
    g_autoptr(GError) error = NULL;
    gboolean root = geteuid () == 0;
    gboolean ok;

    /* the real uid: access(2) checks that one */
    if (root)
      g_assert_cmpint (setresuid (65534, 65534, 0), ==, 0);
    ok = hb_config_check_events_file (in_logs, HB_CONFIG_LOAD_CHECK_WRITABLE, &error);
    if (root)
      g_assert_cmpint (setresuid (0, 0, 0), ==, 0);
    g_assert_false (ok);
    g_assert_nonnull (strstr (error->message, "may not write"));
    g_assert_nonnull (strstr (error->message, "Permission denied"));
  }
  g_assert_cmpint (g_chmod (logs, 0755), ==, 0);
}

/* The system file may be missing: the built-in defaults, and its drop-ins
 * still read. Without the flag, a missing file is an error. */
static void
test_main_file_optional (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HbConfig) config = NULL;

  write_dropin (f, "50-backup.conf", "[monitor]\nstale-threshold=10min\n[agent:backup]\n");
  config = hb_config_load_full (f->path, HB_CONFIG_LOAD_MAIN_OPTIONAL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (config->files->len, ==, 2);
  g_assert_cmpstr (g_ptr_array_index (config->files, 0), ==, HB_CONFIG_BUILTIN_NAME);
  g_assert_cmpint (config->stale_threshold_usec, ==, 10 * 60 * G_USEC_PER_SEC);
  g_assert_cmpint (config->timeout_threshold_usec, ==, (gint64) 30 * 60 * G_USEC_PER_SEC);
  g_assert_cmpuint (config->agents->len, ==, 1);
  g_clear_pointer (&config, hb_config_free);

  config = hb_config_load_full (f->path, HB_CONFIG_LOAD_NONE, NULL, &error);
  g_assert_null (config);
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/config/duration/valid", test_duration_valid);
  g_test_add_func ("/config/duration/invalid", test_duration_invalid);
  g_test_add_func ("/config/builtin-default-matches-file", test_builtin_default_matches_file);
  g_test_add ("/config/dropins-override-in-order", Fixture, NULL, fixture_setup, test_dropins_override_in_order, fixture_teardown);
  g_test_add ("/config/declared-agents", Fixture, NULL, fixture_setup, test_declared_agents, fixture_teardown);
  g_test_add ("/config/errors-name-the-file", Fixture, NULL, fixture_setup, test_errors_name_the_file, fixture_teardown);
  g_test_add ("/config/alerts-and-log", Fixture, NULL, fixture_setup, test_alerts_and_log, fixture_teardown);
  g_test_add ("/config/schedules", Fixture, NULL, fixture_setup, test_schedules, fixture_teardown);
  g_test_add_func ("/config/unit-names", test_unit_names);
  g_test_add ("/config/unit-backed-agents", Fixture, NULL, fixture_setup, test_unit_backed_agents, fixture_teardown);
  g_test_add ("/config/missing-file", Fixture, NULL, fixture_setup, test_missing_file, fixture_teardown);
  g_test_add ("/config/apply", Fixture, NULL, fixture_setup, test_apply, fixture_teardown);
  g_test_add ("/config/tags", Fixture, NULL, fixture_setup, test_tags, fixture_teardown);
  g_test_add ("/config/http-tls", Fixture, NULL, fixture_setup, test_http_tls, fixture_teardown);
  g_test_add ("/config/hidden-credentials", Fixture, NULL, fixture_setup, test_hidden_credentials, fixture_teardown);
  g_test_add ("/config/alerts-https", Fixture, NULL, fixture_setup, test_alerts_https, fixture_teardown);
  g_test_add ("/config/check/every-problem-with-line", Fixture, NULL, fixture_setup, test_every_problem_with_line, fixture_teardown);
  g_test_add ("/config/check/syntax-problems", Fixture, NULL, fixture_setup, test_syntax_problems, fixture_teardown);
  g_test_add ("/config/check/events-file-rules", Fixture, NULL, fixture_setup, test_events_file_rules, fixture_teardown);
  g_test_add ("/config/main-file-optional", Fixture, NULL, fixture_setup, test_main_file_optional, fixture_teardown);

  return g_test_run ();
}
