/* test-client-script.c: runs a Python or GJS test of libheartbeat-1
 * against the built heartbeatd on a private bus
 *
 * The script gets the bus in DBUS_SESSION_BUS_ADDRESS (and asks the bus
 * for the daemon's pid). It may kill the daemon: this runner starts a new one (same state directory)
 * each time the old one exits, the way systemd's Restart= would, and says
 * so by writing the new pid to stderr. The script's exit status is the
 * verdict; its output goes to stderr (the TAP stream is this runner's).
 * A missing interpreter (or PyGObject) is a TAP skip.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gio/gio.h>
#include <sys/wait.h>

#include "client-test-config.h"
#include "hb-harness.h"

#define SCRIPT_TIMEOUT_MS 60000

static gboolean
on_timeout (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static void
run_script (const char        *name,
            const char *const *argv,
            guint              min_restarts)
{
  g_autoptr(HbHarness) h = hb_harness_new ();
  gboolean timed_out = FALSE;
  guint timeout_id;
  guint restarts = 0;
  HbChild *script;

  if (!hb_harness_start_bus (h, HB_BUS_SESSION))
    return;
  hb_harness_write_config (h, client_test_config);
  hb_harness_start_daemon (h, 0);

  script = hb_harness_spawn (h, argv);

  timeout_id = g_timeout_add (SCRIPT_TIMEOUT_MS, on_timeout, &timed_out);
  while (!script->exited && !timed_out)
    {
      g_main_context_iteration (NULL, TRUE);
      if (h->daemon->exited && !script->exited)
        {
          g_test_message ("heartbeatd[%d] exited; starting another", h->daemon->pid);
          hb_harness_start_daemon (h, 0);
          restarts++;
        }
    }
  if (!timed_out)
    g_source_remove (timeout_id);
  if (timed_out)
    {
      hb_harness_stop_child (h, script);
      g_error ("%s did not finish within %u ms", name, SCRIPT_TIMEOUT_MS);
    }
  g_test_message ("%s exited with status 0x%x after %u daemon restart(s)", name,
                  script->wait_status, restarts);
  g_assert_true (WIFEXITED (script->wait_status));
  if (WEXITSTATUS (script->wait_status) == 77)
    {
      g_test_skip ("the script skipped itself (see its output)");
      return;
    }
  g_assert_cmpint (WEXITSTATUS (script->wait_status), ==, 0);
  g_assert_cmpuint (restarts, >=, min_restarts);
}

static void
test_python (void)
{
  const char *python = "/usr/bin/python3";
  g_autofree char *script = g_test_build_filename (G_TEST_DIST, "test-client.py", NULL);
  const char *argv[] = { python, script, NULL };
  g_autofree char *err = NULL;
  int status = 0;

  if (!g_file_test (python, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("/usr/bin/python3 is missing");
      return;
    }
  /* PyGObject is python3-gi */
  {
    const char *check[] = { python, "-c", "import gi", NULL };

    if (!g_spawn_sync (NULL, (char **) check, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, &err, &status, NULL) ||
        !g_spawn_check_wait_status (status, NULL))
      {
        g_test_skip ("PyGObject (python3-gi) is missing");
        return;
      }
  }
  run_script ("test-client.py", argv, 1);
}

static void
test_gjs (void)
{
  g_autofree char *gjs = g_find_program_in_path ("gjs");
  g_autofree char *script = g_test_build_filename (G_TEST_DIST, "test-client.js", NULL);
  const char *argv[] = { NULL, "-m", script, NULL };

  if (gjs == NULL)
    {
      g_test_skip ("gjs is missing (Debian package gjs; tools/deps.sh test installs it)");
      return;
    }
  argv[0] = gjs;
  run_script ("test-client.js", argv, 1);
}

/* $HB_CLIENT_COMMAND (split at spaces) against a daemon: check-installed.sh
 * runs the examples built against the installed library with it. */
static void
test_command (void)
{
  const char *command = g_getenv ("HB_CLIENT_COMMAND");
  g_auto(GStrv) argv = NULL;

  if (command == NULL || *command == '\0')
    {
      g_test_skip ("$HB_CLIENT_COMMAND is not set");
      return;
    }
  argv = g_strsplit (command, " ", -1);
  run_script (argv[0], (const char *const *) argv, 0);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/client/python", test_python);
  g_test_add_func ("/client/gjs", test_gjs);
  g_test_add_func ("/client/command", test_command);
  return g_test_run ();
}
