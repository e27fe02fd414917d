/* hbctl-run.c: hbctl run --name ID -- COMMAND, a command as a monitored
 * agent
 *
 * Two ways, by what ID is. An agent declared in heartbeatd's
 * configuration (a job: GetAgent says declared) gets a run record: StartRun
 * before the command, beats while it runs, FinishRun with the result, the
 * exit status and the tail of its output after it, and it stays
 * registered. Any other id is registered for the command's run, beaten,
 * and unregistered when the command succeeds; when it fails it is left
 * with status "error", the exit status (and output tail) in its metadata
 * and, where the daemon records runs of any agent (StartRun, FinishRun),
 * a run record with the exit status and the tail of its output, which the
 * agent's reason ("exit status 3: disk full"), `status`, `check` and
 * `show` tell.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hb-duration.h"
#include "hb-tail.h"
#include "hbctl.h"
#include "hbctl-output.h"
#include "hbctl-transport.h"

/* One of the command's outputs (1, 2) that hbctl passes on, keeping its
 * tail: when hbctl's own is not a terminal (cron, a unit, a pipe). */
typedef struct {
  HbTail *tail;     /* shared by both */
  int     from;     /* the pipe's end; -1 once closed */
  int     to;       /* hbctl's 1 or 2; -1 once it refused (EPIPE) */
  guint   watch;
} Passed;

typedef struct {
  GMainLoop       *loop;
  HeartbeatClient *client;   /* NULL: the daemon was not reachable */
  const char      *id;
  GPid             child;
  int              wait_status;
  gboolean         exited;
  gboolean         warned;
  HbTail          *tail;     /* the last HB_TAIL_BYTES of what it wrote, if passed */
  Passed           passed[2];
  HbctlTransport  *job;      /* the agent's runs go here; NULL: none recorded */
  gboolean         adhoc;    /* registered for this run (not declared): unregistered if it succeeds */
} Run;

/* StartRun on an agent registered for this command: TRUE if the daemon
 * opened a run record. A daemon without runs (UnknownMethod) is not an
 * error: the failure is then told by the metadata only. */
static gboolean
start_adhoc_run (HeartbeatClient *client,
                 const char      *id)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;

  reply = g_dbus_connection_call_sync (heartbeat_client_get_connection (client),
                                       HEARTBEAT_CLIENT_BUS_NAME, HEARTBEAT_CLIENT_OBJECT_PATH,
                                       HEARTBEAT_CLIENT_INTERFACE, "StartRun", g_variant_new ("(s)", id),
                                       G_VARIANT_TYPE ("()"), G_DBUS_CALL_FLAGS_NONE, 25000, NULL, &error);
  if (reply == NULL && !g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD))
    {
      g_dbus_error_strip_remote_error (error);
      hbctl_print_error (_("warning: the run of \"%s\" is not recorded: %s"), id, error->message);
    }
  return reply != NULL;
}

/* Whether @id is a job: an agent the configuration declares. Anything
 * that goes wrong asking means no (Register then says what). */
static gboolean
is_declared_job (HeartbeatClient *client,
                 const char      *id)
{
  g_autoptr(GVariant) agent = heartbeat_client_get_agent (client, id, NULL);
  gboolean declared = FALSE;

  if (agent)
    g_variant_lookup (agent, "declared", "b", &declared);
  return declared;
}

/* FinishRun: how the job's run ended; a failure to say so is a warning
 * (the command's status stays hbctl's). */
static void
finish_job_run (Run        *run,
                gboolean    success,
                int         exit_status,
                const char *output)
{
  g_auto(GVariantDict) end = G_VARIANT_DICT_INIT (NULL);
  g_autoptr(GVariant) end_value = NULL;

  g_variant_dict_insert (&end, "success", "b", success);
  g_variant_dict_insert (&end, "exit-status", "i", (gint32) CLAMP (exit_status, 0, 255));
  if (output && *output)
    g_variant_dict_insert (&end, "output", "s", output);
  end_value = g_variant_ref_sink (g_variant_dict_end (&end));
  if (run->job->finish_run (run->job, run->id, end_value) != EXIT_OK)
    hbctl_print_error (_("warning: the run of \"%s\" was not recorded as finished"), run->id);
}

static void
passed_close (Passed *p)
{
  if (p->from >= 0)
    g_close (p->from, NULL);
  p->from = -1;
}

/* Reads what is there (at most 64 KiB), passes it on and keeps its tail.
 * Returns FALSE at the end of the output (or an error), closing it. */
static gboolean
passed_read (Passed *p)
{
  char buffer[65536];
  gssize n;

  do
    n = read (p->from, buffer, sizeof buffer);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN)
    return TRUE;
  if (n <= 0)
    {
      passed_close (p);
      return FALSE;
    }
  hb_tail_append (p->tail, buffer, (gsize) n);
  for (gssize done = 0; p->to >= 0 && done < n;)
    {
      gssize w = write (p->to, buffer + done, (gsize) (n - done));

      if (w > 0)
        done += w;
      else if (w < 0 && errno != EINTR)
        p->to = -1;   /* our reader left (EPIPE): keep only the tail */
    }
  return TRUE;
}

static gboolean
on_passed (int fd, GIOCondition condition, gpointer user_data)
{
  Passed *p = user_data;

  if (passed_read (p))
    return G_SOURCE_CONTINUE;
  p->watch = 0;
  return G_SOURCE_REMOVE;
}

/* After the command exited: what it wrote is in the pipe; read it and
 * close. Whatever it left running in the background does not hold hbctl
 * (it gets EPIPE should it write later). */
static void
passed_finish (Passed *p)
{
  int pending = 0;

  g_clear_handle_id (&p->watch, g_source_remove);
  /* until the pipe is empty, not until its end: the end never comes
   * while something in the background holds it open (and what keeps
   * writing is not waited for: one pipe's worth, a few times over) */
  for (guint i = 0; i < 16 && p->from >= 0 && ioctl (p->from, FIONREAD, &pending) == 0 && pending > 0; i++)
    if (!passed_read (p))
      break;
  passed_close (p);
}

/* In the command (between fork and exec): hbctl ignores SIGPIPE to see
 * EPIPE; the command gets the default back. */
static void
reset_sigpipe (gpointer user_data)
{
  signal (SIGPIPE, SIG_DFL);
}

static void
on_run_beat (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Run *run = user_data;
  g_autoptr(GError) error = NULL;

  if (!heartbeat_client_beat_finish (HEARTBEAT_CLIENT (source), result, &error) && !run->warned)
    {
      hbctl_print_error (_("warning: cannot beat \"%s\": %s"), run->id, error->message);
      run->warned = TRUE;
    }
}

static gboolean
on_run_tick (gpointer user_data)
{
  Run *run = user_data;

  heartbeat_client_beat_async (run->client, run->id, NULL, NULL, on_run_beat, run);
  return G_SOURCE_CONTINUE;
}

static void
on_child_exit (GPid pid, int wait_status, gpointer user_data)
{
  Run *run = user_data;

  run->wait_status = wait_status;
  run->exited = TRUE;
  g_spawn_close_pid (pid);
  g_main_loop_quit (run->loop);
}

typedef struct {
  Run *run;
  int  signum;
} Forward;

static gboolean
on_forward_signal (gpointer user_data)
{
  Forward *f = user_data;

  if (f->run->child > 0 && !f->run->exited)
    kill (f->run->child, f->signum);
  return G_SOURCE_CONTINUE;
}

int
hbctl_run (int argc, char **argv)
{
  g_autofree char *name = NULL, *interval_text = NULL, *stale_text = NULL;
  g_autofree char *timeout_text = NULL, *task = NULL;
  GOptionEntry entries[] = {
    { "name", 0, 0, G_OPTION_ARG_STRING, &name, N_("The agent's id (required)"), N_("ID") },
    { "interval", 0, 0, G_OPTION_ARG_STRING, &interval_text, N_("Beat this often (default 10s)"), N_("DURATION") },
    { "stale", 0, 0, G_OPTION_ARG_STRING, &stale_text, N_("Stale after this long without a beat"), N_("DURATION") },
    { "timeout", 0, 0, G_OPTION_ARG_STRING, &timeout_text, N_("Time out after running this long"), N_("DURATION") },
    { "task", 0, 0, G_OPTION_ARG_STRING, &task, N_("What the command works on"), N_("TASK") },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new (_("-- COMMAND [ARG…]"));
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_auto(GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  gint64 interval = 10 * G_USEC_PER_SEC, stale = 0, timeout = 0, effective_stale = 0;
  Run run = { 0 };
  Forward forwards[3] = { { &run, SIGINT }, { &run, SIGTERM }, { &run, SIGHUP } };
  guint sources[3], tick = 0;
  int status = EXIT_OK, code;
  gboolean spawned = TRUE;

  g_option_context_set_summary (context,
    _("Run COMMAND as agent ID: register, beat while it runs, unregister when it succeeds.\n"
      "If it fails, the agent stays with status \"error\", and its run is recorded with\n"
      "the exit status and the last 4 KiB of its output where hbctl's is not a terminal\n"
      "(COMMAND's output then passes through hbctl); the metadata says them too.\n"
      "If ID is declared in heartbeatd's configuration (a job), every run is recorded\n"
      "(start, end, result, exit status, output) and the agent stays registered.\n"
      "SIGINT, SIGTERM and SIGHUP are passed on to COMMAND; hbctl exits with COMMAND's\n"
      "status (128+N if signal N killed it)."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  g_option_context_set_strict_posix (context, FALSE);
  if (!hbctl_parse_command (context, &argc, &argv, &status))
    return status;
  if (name == NULL)
    {
      hbctl_print_error (_("run needs --name ID"));
      return EXIT_USAGE;
    }
  /* Everything after "--" is the command to run (GOption leaves the "--"
   * in place when an option follows it). */
  if (argc >= 2 && strcmp (argv[1], "--") == 0)
    {
      argv[1] = argv[0];
      argv++;
      argc--;
    }
  if (argc < 2)
    {
      hbctl_print_error (_("missing argument: %s"), _("COMMAND"));
      return EXIT_USAGE;
    }
  if (!hbctl_parse_duration_arg ("--interval", interval_text, &interval) ||
      !hbctl_parse_duration_arg ("--stale", stale_text, &stale) ||
      !hbctl_parse_duration_arg ("--timeout", timeout_text, &timeout))
    return EXIT_USAGE;

  /* Take the signals now: one that arrives while registering is handed to
   * the command as soon as it runs, instead of killing hbctl. */
  for (int i = 0; i < 3; i++)
    sources[i] = g_unix_signal_add (forwards[i].signum, on_forward_signal, &forwards[i]);

  run.id = name;
  run.client = heartbeat_client_new_sync (opt.bus_type, NULL, &error);
  if (run.client == NULL)
    {
      int ignored;
      g_autofree char *problem = hbctl_connect_problem (error, &ignored);

      hbctl_print_error (_("warning: %s; running the command unmonitored"), problem);
      g_clear_error (&error);
    }
  else if (is_declared_job (run.client, name))
    {
      /* the configuration says what the job is: its thresholds and task;
       * during a run only its timeout judges it, so --interval is free */
      if (stale || timeout || task)
        hbctl_print_error (_("warning: \"%s\" is declared in heartbeatd's configuration, which sets its "
                             "thresholds and task; --stale, --timeout and --task are ignored"), name);
      run.job = hbctl_dbus_transport_new_for_client (run.client);
      status = run.job->start_run (run.job, name);
      if (status != EXIT_OK)
        {
          g_clear_pointer (&run.job, hbctl_transport_free);
          g_clear_object (&run.client);
          for (int k = 0; k < 3; k++)
            g_source_remove (sources[k]);
          return status;
        }
    }
  else
    {
      effective_stale = stale;
      if (effective_stale == 0)
        {
          g_autoptr(GVariant) daemon_status = heartbeat_client_get_status (run.client, NULL);
          guint64 value = 0;

          if (daemon_status && g_variant_lookup (daemon_status, "stale-threshold-usec", "t", &value))
            effective_stale = (gint64) value;
        }
      if (effective_stale > 0 && interval >= effective_stale)
        {
          g_autofree char *i = hb_duration_format (interval);
          g_autofree char *s = hb_duration_format (effective_stale);

          hbctl_print_error (_("--interval %s must be shorter than the stale threshold %s"), i, s);
          g_clear_object (&run.client);
          for (int k = 0; k < 3; k++)
            g_source_remove (sources[k]);
          return EXIT_USAGE;
        }

      if (task)
        g_variant_builder_add (&options, "{sv}", "task-id", g_variant_new_string (task));
      if (stale)
        g_variant_builder_add (&options, "{sv}", "stale-after-usec", g_variant_new_uint64 ((guint64) stale));
      if (timeout)
        g_variant_builder_add (&options, "{sv}", "timeout-after-usec", g_variant_new_uint64 ((guint64) timeout));
      if (!heartbeat_client_register (run.client, name, g_variant_builder_end (&options), &error))
        {
          status = hbctl_report (run.client, name, error);
          g_clear_object (&run.client);
          for (int k = 0; k < 3; k++)
            g_source_remove (sources[k]);
          return status;
        }
      run.adhoc = TRUE;
      if (start_adhoc_run (run.client, name))
        run.job = hbctl_dbus_transport_new_for_client (run.client);
    }

  /* Where hbctl's output is not a terminal (cron, a unit, a pipe), the
   * command's goes through hbctl, which keeps its tail for a failure's
   * report; on a terminal it is left alone (the person sees it, and the
   * command still sees a terminal). */
  {
    gboolean pass[2] = { !isatty (STDOUT_FILENO), !isatty (STDERR_FILENO) };

    if (run.client && (pass[0] || pass[1]))
      {
        run.tail = hb_tail_new (HB_TAIL_BYTES);
        signal (SIGPIPE, SIG_IGN);
      }
    for (int k = 0; k < 2; k++)
      run.passed[k] = (Passed) { run.tail, -1, k + 1, 0 };
    if (!g_spawn_async_with_pipes_and_fds (NULL, (const char *const *) argv + 1, NULL,
                                           G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                                           G_SPAWN_CHILD_INHERITS_STDIN,
                                           run.tail ? reset_sigpipe : NULL, NULL, -1, -1, -1, NULL, NULL, 0,
                                           &run.child, NULL,
                                           run.tail && pass[0] ? &run.passed[0].from : NULL,
                                           run.tail && pass[1] ? &run.passed[1].from : NULL,
                                           &error))
      spawned = FALSE;
  }
  if (!spawned)
    {
      hbctl_print_error (_("cannot run %s: %s"), argv[1], error->message);
      if (run.client && run.adhoc)
        {
          g_autoptr(GVariant) details = g_variant_ref_sink (g_variant_new_parsed (
            "{'status': <'error'>, 'metadata': <{'exit-status': <int32 127>}>}"));
          heartbeat_client_beat (run.client, name, details, NULL);
        }
      if (run.job)
        {
          g_autofree char *why = g_strdup_printf (_("cannot run %s: %s"), argv[1], error->message);

          finish_job_run (&run, FALSE, 127, why);
        }
      g_clear_pointer (&run.job, hbctl_transport_free);
      g_clear_pointer (&run.tail, hb_tail_free);
      g_clear_object (&run.client);
      for (int k = 0; k < 3; k++)
        g_source_remove (sources[k]);
      return 127;
    }

  loop = g_main_loop_new (NULL, FALSE);
  run.loop = loop;
  g_child_watch_add (run.child, on_child_exit, &run);
  for (int k = 0; k < 2; k++)
    if (run.passed[k].from >= 0)
      {
        g_unix_set_fd_nonblocking (run.passed[k].from, TRUE, NULL);
        run.passed[k].watch = g_unix_fd_add (run.passed[k].from, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                             on_passed, &run.passed[k]);
      }
  if (run.client)
    tick = g_timeout_add ((guint) MAX (interval / 1000, 1), on_run_tick, &run);
  g_main_loop_run (loop);
  for (int i = 0; i < 3; i++)
    g_source_remove (sources[i]);
  if (tick)
    g_source_remove (tick);
  for (int k = 0; k < 2; k++)
    passed_finish (&run.passed[k]);

  if (WIFEXITED (run.wait_status))
    code = WEXITSTATUS (run.wait_status);
  else if (WIFSIGNALED (run.wait_status))
    code = 128 + WTERMSIG (run.wait_status);
  else
    code = 1;

  if (run.job && !run.adhoc)
    {
      g_autofree char *output = run.tail ? hb_tail_get_text (run.tail) : NULL;

      finish_job_run (&run, code == 0, code, output);
    }
  else if (run.client)
    {
      if (code == 0)
        {
          if (!heartbeat_client_unregister (run.client, name, &error))
            {
              hbctl_print_error (_("warning: cannot unregister \"%s\": %s"), name, error->message);
              g_clear_error (&error);
            }
        }
      else
        {
          g_auto(GVariantDict) metadata = G_VARIANT_DICT_INIT (NULL);
          g_autoptr(GVariant) details = NULL;
          g_autofree char *output = run.tail ? hb_tail_get_text (run.tail) : NULL;

          g_variant_dict_insert (&metadata, "exit-status", "i", (gint32) code);
          if (output && *output)
            g_variant_dict_insert (&metadata, "output", "s", output);
          {
            g_auto(GVariantDict) d = G_VARIANT_DICT_INIT (NULL);

            g_variant_dict_insert (&d, "status", "s", "error");
            g_variant_dict_insert_value (&d, "metadata", g_variant_dict_end (&metadata));
            details = g_variant_ref_sink (g_variant_dict_end (&d));
          }

          if (!heartbeat_client_beat (run.client, name, details, &error))
            {
              hbctl_print_error (_("warning: cannot report the failure of \"%s\": %s"), name, error->message);
              g_clear_error (&error);
            }
          /* and the run's record: its exit status and the end of its
           * output, which the agent's reason tells */
          if (run.job)
            finish_job_run (&run, FALSE, code, output);
        }
    }
  g_clear_pointer (&run.job, hbctl_transport_free);
  g_clear_object (&run.client);
  g_clear_pointer (&run.tail, hb_tail_free);
  return code;
}
