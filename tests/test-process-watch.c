/* test-process-watch.c: HbProcessWatch, with a pidfd and with the poll
 * fallback, on real child processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hb-process-watch.h"

/* A bound for a wait that should end within a second; it only turns a
 * hang into a failure, it is never waited out when all is well. */
#define WAIT_BOUND_SECONDS 45

typedef struct {
  guint            calls;
  gint32           pid;
  HbProcessEnd     end;
  HbProcessWatch **free_on_call;  /* frees its watch from the callback */
} Ended;

static void
on_end (gint32       pid,
        HbProcessEnd end,
        gpointer     user_data)
{
  Ended *ended = user_data;

  ended->calls++;
  ended->pid = pid;
  ended->end = end;
  if (ended->free_on_call)
    g_clear_pointer (ended->free_on_call, hb_process_watch_free);
}

static gboolean
on_bound (gpointer user_data)
{
  gboolean *timed_out = user_data;

  *timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs the main loop until @ended was called, or fails after the bound. */
static void
wait_for_call (Ended *ended)
{
  gboolean timed_out = FALSE;
  guint bound = g_timeout_add_seconds (WAIT_BOUND_SECONDS, on_bound, &timed_out);

  while (ended->calls == 0 && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (bound);
  g_assert_false (timed_out);
}

/* Dispatches what is ready now, without blocking (a source that stays
 * ready is not let to spin: the assertions after a drain tell). */
static void
drain (void)
{
  for (guint i = 0; i < 1000 && g_main_context_iteration (NULL, FALSE); i++)
    ;
}

static GPid
spawn_sleeper (void)
{
  const char *argv[] = { "sleep", "600", NULL };
  g_autoptr(GError) error = NULL;
  GPid pid;

  g_spawn_async (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                 NULL, NULL, &pid, &error);
  g_assert_no_error (error);
  return pid;
}

static void
reap (GPid pid)
{
  int status;

  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
}

/* A pid that named a child a moment ago and, reaped, names nothing now. */
static GPid
spawn_and_reap (void)
{
  GPid pid = spawn_sleeper ();

  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  reap (pid);
  return pid;
}

static void
setup_mode (gconstpointer data)
{
  hb_process_watch_set_force_poll (GPOINTER_TO_INT (data));
}

static void
test_exists (gconstpointer data)
{
  GPid child;

  g_assert_true (hb_process_exists (getpid ()));
  g_assert_true (hb_process_exists (1));   /* exists, whether or not ours to signal */
  g_assert_false (hb_process_exists (0));
  g_assert_false (hb_process_exists (-1));

  /* a zombie still exists; a reaped child does not */
  child = spawn_sleeper ();
  g_assert_true (hb_process_exists (child));
  g_assert_cmpint (kill (child, SIGKILL), ==, 0);
  g_assert_cmpint (waitid (P_PID, (id_t) child, NULL, WEXITED | WNOWAIT), ==, 0);
  g_assert_true (hb_process_exists (child));
  reap (child);
  g_assert_false (hb_process_exists (child));
}

/* The callback comes once, from the main loop, when the child exits. */
static void
test_exit (gconstpointer data)
{
  g_autoptr(HbProcessWatch) watch = NULL;
  Ended ended = { 0 };
  GPid child;

  setup_mode (data);
  child = spawn_sleeper ();
  watch = hb_process_watch_new (child, NULL, on_end, &ended);
  g_assert_cmpint (hb_process_watch_get_pid (watch), ==, child);
  drain ();
  g_assert_cmpuint (ended.calls, ==, 0);

  /* not reaped: a zombie has exited too */
  g_assert_cmpint (kill (child, SIGKILL), ==, 0);
  wait_for_call (&ended);
  g_assert_cmpuint (ended.calls, ==, 1);
  g_assert_cmpint (ended.pid, ==, child);
  g_assert_cmpint (ended.end, ==, HB_PROCESS_END_EXITED);

  reap (child);
  drain ();
  g_assert_cmpuint (ended.calls, ==, 1);
}

/* A freed watch never calls back; a second watch of the same process,
 * which does, tells when the first would have. */
static void
test_cancel (gconstpointer data)
{
  g_autoptr(HbProcessWatch) control = NULL;
  HbProcessWatch *cancelled;
  Ended cancelled_ended = { 0 }, control_ended = { 0 };
  GPid child;

  setup_mode (data);
  child = spawn_sleeper ();
  cancelled = hb_process_watch_new (child, NULL, on_end, &cancelled_ended);
  control = hb_process_watch_new (child, NULL, on_end, &control_ended);
  hb_process_watch_free (cancelled);
  hb_process_watch_free (NULL);

  g_assert_cmpint (kill (child, SIGKILL), ==, 0);
  wait_for_call (&control_ended);
  drain ();
  g_assert_cmpuint (control_ended.calls, ==, 1);
  g_assert_cmpuint (cancelled_ended.calls, ==, 0);
  reap (child);
}

/* No such process: said from the main loop right after, not from inside
 * hb_process_watch_new(). */
static void
test_not_found (gconstpointer data)
{
  g_autoptr(HbProcessWatch) watch = NULL;
  Ended ended = { 0 };
  GPid gone;

  setup_mode (data);
  gone = spawn_and_reap ();
  g_assert_false (hb_process_exists (gone));
  watch = hb_process_watch_new (gone, NULL, on_end, &ended);
  g_assert_cmpuint (ended.calls, ==, 0);
  wait_for_call (&ended);
  drain ();
  g_assert_cmpuint (ended.calls, ==, 1);
  g_assert_cmpint (ended.pid, ==, gone);
  g_assert_cmpint (ended.end, ==, HB_PROCESS_END_NOT_FOUND);
}

/* The callback may free its own watch (hb-liveness does). */
static void
test_free_in_callback (gconstpointer data)
{
  HbProcessWatch *watch;
  Ended ended = { 0 };
  GPid child;

  setup_mode (data);
  child = spawn_sleeper ();
  watch = hb_process_watch_new (child, NULL, on_end, &ended);
  ended.free_on_call = &watch;
  g_assert_cmpint (kill (child, SIGKILL), ==, 0);
  wait_for_call (&ended);
  g_assert_null (watch);
  reap (child);
  drain ();
  g_assert_cmpuint (ended.calls, ==, 1);
}

int
main (int argc, char **argv)
{
  static const struct {
    const char *name;
    gboolean    poll;
  } modes[] = {
    { "pidfd", FALSE },
    { "poll", TRUE },
  };

  g_test_init (&argc, &argv, NULL);

  g_test_add_data_func ("/process-watch/exists", NULL, test_exists);
  for (gsize i = 0; i < G_N_ELEMENTS (modes); i++)
    {
      gconstpointer data = GINT_TO_POINTER (modes[i].poll);
      g_autofree char *exit_path = g_strdup_printf ("/process-watch/%s/exit", modes[i].name);
      g_autofree char *cancel_path = g_strdup_printf ("/process-watch/%s/cancel", modes[i].name);
      g_autofree char *not_found_path = g_strdup_printf ("/process-watch/%s/not-found", modes[i].name);
      g_autofree char *free_path = g_strdup_printf ("/process-watch/%s/free-in-callback", modes[i].name);

      g_test_add_data_func (exit_path, data, test_exit);
      g_test_add_data_func (cancel_path, data, test_cancel);
      g_test_add_data_func (not_found_path, data, test_not_found);
      g_test_add_data_func (free_path, data, test_free_in_callback);
    }
  return g_test_run ();
}
