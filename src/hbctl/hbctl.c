/* hbctl.c: the command-line client of heartbeatd
 *
 * Every verb is one function in its own file (hbctl-VERB.c): it parses
 * its own options, asks the daemon through a transport (hbctl-transport.h:
 * D-Bus, or the HTTP API at --url), and prints for a person (a table,
 * colour on a terminal) or for a program (--json). Errors are sentences,
 * and the exit status says what kind of failure it was (see
 * usage_text()). Here: the global options and the table of verbs.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <locale.h>
#include <string.h>
#include <unistd.h>

#include "hbctl.h"
#include "hbctl-output.h"

HbctlOptions opt = { G_BUS_TYPE_SYSTEM, TRUE, FALSE, NULL, NULL };

typedef int (*CommandFunc) (int argc, char **argv);

typedef struct {
  const char *name;
  CommandFunc func;
  gboolean    over_url;  /* offered with --url (by the HTTP transport) */
  const char *args;      /* for --help */
  const char *summary;   /* translatable */
} Command;

static const Command commands[] = {
  { "status", hbctl_status, TRUE, "[--failed] [--state=S[,S…]] [--tag=T] [--json] [--full]", N_("Show the agents, problems first, and a summary (the default)") },
  { "list", hbctl_list, FALSE, "[--json]", N_("List the agents' ids") },
  { "show", hbctl_show, TRUE, "ID [--json] [--changes N]", N_("Show one agent, its unit and its recent history") },
  { "register", hbctl_register, FALSE, "ID [--task T] [--stale DUR] [--timeout DUR] [--pid PID] [--set K=V…]", N_("Register an agent") },
  { "beat", hbctl_beat, TRUE, "ID [--status S] [--progress N] [--set K=V…] | --file PATH --key NAME", N_("Report activity") },
  { "idle", hbctl_idle, FALSE, "ID", N_("Mark an agent idle") },
  { "unregister", hbctl_unregister, FALSE, "ID | --file PATH", N_("Unregister an agent") },
  { "watch", hbctl_watch, FALSE, "[--json]", N_("Print events as they happen") },
  { "run", hbctl_run, FALSE, "--name ID [--interval DUR] [--stale DUR] [--timeout DUR] -- COMMAND…", N_("Run a command as a monitored agent") },
  { "check", hbctl_check, TRUE, "ID", N_("Check one agent, monitoring-plugin style") },
  { "pause", hbctl_pause, TRUE, "ID [--reason TEXT]", N_("Pause an agent: not judged, no alerts, no restarts (maintenance)") },
  { "resume", hbctl_resume, TRUE, "ID", N_("Resume a paused agent: judged afresh from now") },
};

static char *
usage_text (void)
{
  GString *text = g_string_new (NULL);

  g_string_append_printf (text, "%s\n  hbctl [--system|--session|--url URL [URL OPTIONS]] [--no-legend] [--no-color] COMMAND [ARG…]\n\n",
                          _("Usage:"));
  g_string_append_printf (text, "%s\n\n", _("The options before COMMAND may also follow it (before any \"--\")."));
  g_string_append_printf (text, "%s\n", _("Commands:"));
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    g_string_append_printf (text, "  %-11s %s\n  %-11s   %s\n", commands[i].name, commands[i].args,
                            "", _(commands[i].summary));
  g_string_append_printf (text, "\n%s\n", _("Options:"));
  g_string_append_printf (text, "  --system     %s\n", _("Talk to heartbeatd on the system bus (the default)"));
  g_string_append_printf (text, "  --session    %s\n", _("Talk to heartbeatd on the session bus"));
  g_string_append_printf (text, "  --no-legend  %s\n", _("Print no header or summary lines"));
  g_string_append_printf (text, "  --no-color   %s\n", _("Never colour the output (also: NO_COLOR=1; HBCTL_COLORS=1 forces colour)"));
  g_string_append_printf (text, "  --url URL    %s\n", _("Use heartbeatd's HTTP API at URL (status, show, beat, check, pause, resume)"));
  g_string_append_printf (text, "  --version    %s\n", _("Print the version"));
  g_string_append_printf (text, "  -h, --help   %s\n", _("Show this help; COMMAND --help shows a command's"));
  g_string_append_printf (text, "\n%s\n", _("With --url (the token is sent to that server only; the first one found is used):"));
  g_string_append_printf (text, "  --token-file FILE  %s\n", _("The bearer token: the first line of FILE"));
  g_string_append_printf (text, "  $HBCTL_TOKEN       %s\n", _("The bearer token, from the environment"));
  g_string_append_printf (text, "  --token T          %s\n", _("The bearer token (other users see it in ps: prefer the two above)"));
  g_string_append_printf (text, "\n%s\n", _("With an https:// URL (the server's certificate is verified, by the system's trust store\n"
                                          "unless --cacert is given):"));
  g_string_append_printf (text, "  --cacert FILE      %s\n", _("Trust only the CA certificates in FILE (PEM)"));
  g_string_append_printf (text, "  --cert FILE        %s\n", _("Present the client certificate in FILE (PEM)"));
  g_string_append_printf (text, "  --key FILE         %s\n", _("Its private key (PEM; default: in the --cert file)"));
  g_string_append_printf (text, "\n%s\n", _("Durations: 90 (seconds), 90s, 5m, 1h30m, 250ms, 2d."));
  g_string_append_printf (text, "%s\n", _("An ID that begins with \"-\" goes after \"--\": hbctl beat -- -x"));
  g_string_append_printf (text, "%s\n", _("status fits its table to $COLUMNS or the terminal, shortening long ids\n"
                                          "and statuses with \"…\" and leaving out MEM, CPU, PID and RUNNING if need\n"
                                          "be; piped without $COLUMNS, or with --full, it does not."));
  g_string_append_printf (text, "\n%s\n", _("Exit status:"));
  g_string_append_printf (text, "  0  %s\n", _("success"));
  g_string_append_printf (text, "  1  %s\n", _("the daemon or the bus refused the request (unknown agent, access denied, …),\n"
                                               "     or the URL answered with what hbctl does not take (too large, not JSON, …)"));
  g_string_append_printf (text, "  2  %s\n", _("usage error"));
  g_string_append_printf (text, "  3  %s\n", _("heartbeatd cannot be reached (not running and cannot be started, no bus,\n"
                                               "     or the URL does not answer)"));
  g_string_append_printf (text, "  %s\n", _("check exits 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; run exits with the command's status."));
  g_string_append_printf (text, "\n%s\n", _("See hbctl(1)."));
  return g_string_free (text, FALSE);
}

/* The global options that take a value (--url URL or --url=URL), and
 * where it goes */
typedef struct {
  const char *name;
  char      **value;
} ValueOption;

static const ValueOption value_options[] = {
  { "--url", &opt.url },
  { "--token", &opt.token },
  { "--token-file", &opt.token_file },
  { "--cacert", &opt.cacert },
  { "--cert", &opt.cert },
  { "--key", &opt.key },
};

/* Whether @argv[*i] is a global option (taking its value, argv[*i + 1],
 * too when it has one, and moving *i onto it); FALSE, with nothing
 * taken, if it is not one. --version and --help are not taken here, nor
 * the options in @except (NULL-terminated, may be NULL): a command's own
 * option of the same name. */
static gboolean
take_global_option (int                argc,
                    char             **argv,
                    int               *i,
                    const char *const *except)
{
  const char *arg = argv[*i];

  if (except && g_strv_contains (except, arg))
    return FALSE;
  if (strcmp (arg, "--system") == 0)
    opt.bus_type = G_BUS_TYPE_SYSTEM;
  else if (strcmp (arg, "--session") == 0)
    opt.bus_type = G_BUS_TYPE_SESSION;
  else if (strcmp (arg, "--no-legend") == 0)
    opt.legend = FALSE;
  else if (strcmp (arg, "--no-color") == 0 || strcmp (arg, "--no-colour") == 0)
    opt.color = FALSE;
  else
    {
      for (gsize k = 0; k < G_N_ELEMENTS (value_options); k++)
        {
          const char *name = value_options[k].name;
          gsize length = strlen (name);

          if (strcmp (arg, name) == 0 && *i + 1 < argc)
            {
              g_free (*value_options[k].value);
              *value_options[k].value = g_strdup (argv[++*i]);
              return TRUE;
            }
          if (strncmp (arg, name, length) == 0 && arg[length] == '=')
            {
              g_free (*value_options[k].value);
              *value_options[k].value = g_strdup (arg + length + 1);
              return TRUE;
            }
        }
      return FALSE;
    }
  return TRUE;
}

/* The options of `run` that take their value as the next argument: what
 * follows them is not the command. */
static gboolean
run_option_takes_value (const char *arg)
{
  static const char *const with_value[] = { "--name", "--interval", "--stale", "--timeout", "--task" };

  for (gsize i = 0; i < G_N_ELEMENTS (with_value); i++)
    if (strcmp (arg, with_value[i]) == 0)
      return TRUE;
  return FALSE;
}

/* The global options given after the command ("hbctl status --no-color"),
 * taken out of the command's arguments (argv[0] is the command), up to
 * "--" (after which everything is an argument: an id, or the command of
 * `run`), and for `run` up to its command's first word. Returns the new
 * argc. */
static int
take_global_options_after (int    argc,
                           char **argv)
{
  gboolean is_run = strcmp (argv[0], "run") == 0;
  /* beat --file PATH --key NAME: the key of beat's, not the client's */
  static const char *const beat_own[] = { "--key", NULL };
  const char *const *except = strcmp (argv[0], "beat") == 0 ? beat_own : NULL;
  int kept = 1;
  int i = 1;

  for (; i < argc; i++)
    {
      const char *arg = argv[i];

      if (strcmp (arg, "--") == 0)
        break;
      if (is_run && arg[0] != '-' && !run_option_takes_value (argv[i - 1]))
        break;
      if (arg[0] == '-' && take_global_option (argc, argv, &i, except))
        continue;
      argv[kept++] = argv[i];
    }
  for (; i < argc; i++)
    argv[kept++] = argv[i];
  argv[kept] = NULL;
  return kept;
}

/* Whether hbctl colours its output: on a terminal (as systemctl: standard
 * output a tty and TERM not "dumb"), unless NO_COLOR is set (not empty);
 * HBCTL_COLORS=1 or 0 forces it either way (for a pager: hbctl watch |
 * less -R). --no-color, read later, always wins. */
static gboolean
want_color (void)
{
  const char *force = g_getenv ("HBCTL_COLORS");
  const char *no_color = g_getenv ("NO_COLOR");
  const char *term = g_getenv ("TERM");

  if (no_color && *no_color)
    return FALSE;
  if (force && *force)
    return strcmp (force, "1") == 0 || g_ascii_strcasecmp (force, "true") == 0 ||
           g_ascii_strcasecmp (force, "yes") == 0 || g_ascii_strcasecmp (force, "always") == 0;
  return isatty (STDOUT_FILENO) && g_strcmp0 (term, "dumb") != 0;
}

/* With --url, before the command runs: the token and the TLS settings
 * read and checked (hbctl_http_prepare()), so that a bad one is a usage
 * error with nothing sent; not for a command's --help. @argv is the
 * command's (argv[0] the command). */
static gboolean
prepare_url (int    argc,
             char **argv,
             int   *status)
{
  g_autofree char *problem = NULL;

  if (opt.url == NULL)
    return TRUE;
  for (int i = 1; i < argc && strcmp (argv[i], "--") != 0; i++)
    if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0)
      return TRUE;
  if (hbctl_http_prepare (&problem))
    return TRUE;
  /* check speaks as a monitoring plugin: UNKNOWN */
  if (strcmp (argv[0], "check") == 0)
    {
      g_print ("HEARTBEAT UNKNOWN - %s\n", problem);
      *status = 3;
    }
  else
    {
      hbctl_print_error ("%s", problem);
      *status = EXIT_USAGE;
    }
  return FALSE;
}

int
main (int    argc,
      char **argv)
{
  const char *localedir = g_getenv ("HB_LOCALEDIR");
  const char *command = "status";
  int first = 1;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, localedir && *localedir ? localedir : HB_LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  opt.color = want_color ();

  for (; first < argc && argv[first][0] == '-'; first++)
    {
      const char *arg = argv[first];

      if (take_global_option (argc, argv, &first, NULL))
        continue;
      else if (strcmp (arg, "--version") == 0)
        {
          g_print ("hbctl %s\n", HB_VERSION);
          return EXIT_OK;
        }
      else if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0)
        {
          g_autofree char *usage = usage_text ();
          g_print ("%s", usage);
          return EXIT_OK;
        }
      else
        {
          hbctl_print_error (_("unknown option %s (see hbctl --help)"), arg);
          return EXIT_USAGE;
        }
    }

  if (first < argc)
    command = argv[first];
  else
    {
      /* No command: status, with a fake argv of its own. */
      static char *status_argv[] = { "status", NULL };
      int status = EXIT_OK;

      if (!prepare_url (1, status_argv, &status))
        return status;
      status = hbctl_status (1, status_argv);
      hbctl_args_clear ();
      return status;
    }

  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (commands[i].name, command) == 0)
      {
        g_autofree char *prgname = g_strdup_printf ("hbctl %s", command);
        int n_args = take_global_options_after (argc - first, argv + first);
        int status = EXIT_OK;

        if (opt.url && !commands[i].over_url)
          {
            hbctl_print_error (_("%s is not available with --url (status, show, beat, check, pause and resume are)"),
                               command);
            return EXIT_USAGE;
          }
        if (!prepare_url (n_args, argv + first, &status))
          return status;
        g_set_prgname (prgname);
        status = commands[i].func (n_args, argv + first);
        hbctl_args_clear ();
        return status;
      }

  hbctl_print_error (_("unknown command \"%s\" (see hbctl --help)"), command);
  return EXIT_USAGE;
}
