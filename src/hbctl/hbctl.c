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
  { "status", hbctl_status, TRUE, "[--json] [--full]", N_("Show every agent, declared ones first, and a summary (the default)") },
  { "list", hbctl_list, FALSE, "[--json]", N_("List the agents' ids") },
  { "show", hbctl_show, TRUE, "ID [--json] [--changes N]", N_("Show one agent, its unit and its recent history") },
  { "register", hbctl_register, FALSE, "ID [--task T] [--stale DUR] [--timeout DUR] [--pid PID] [--set K=V…]", N_("Register an agent") },
  { "beat", hbctl_beat, TRUE, "ID [--status S] [--progress N] [--set K=V…] | --file PATH --key NAME", N_("Report activity") },
  { "idle", hbctl_idle, FALSE, "ID", N_("Mark an agent idle") },
  { "unregister", hbctl_unregister, FALSE, "ID | --file PATH", N_("Unregister an agent") },
  { "watch", hbctl_watch, FALSE, "[--json]", N_("Print events as they happen") },
  { "run", hbctl_run, FALSE, "--name ID [--interval DUR] [--stale DUR] [--timeout DUR] -- COMMAND…", N_("Run a command as a monitored agent") },
  { "check", hbctl_check, TRUE, "ID", N_("Check one agent, monitoring-plugin style") },
};

static char *
usage_text (void)
{
  GString *text = g_string_new (NULL);

  g_string_append_printf (text, "%s\n  hbctl [--system|--session|--url URL [--token T]] [--no-legend] [--no-color] COMMAND [ARG…]\n\n",
                          _("Usage:"));
  g_string_append_printf (text, "%s\n", _("Commands:"));
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    g_string_append_printf (text, "  %-11s %s\n  %-11s   %s\n", commands[i].name, commands[i].args,
                            "", _(commands[i].summary));
  g_string_append_printf (text, "\n%s\n", _("Options:"));
  g_string_append_printf (text, "  --system     %s\n", _("Talk to heartbeatd on the system bus (the default)"));
  g_string_append_printf (text, "  --session    %s\n", _("Talk to heartbeatd on the session bus"));
  g_string_append_printf (text, "  --no-legend  %s\n", _("Print no header or summary lines"));
  g_string_append_printf (text, "  --no-color   %s\n", _("Never colour the output (also: NO_COLOR=1)"));
  g_string_append_printf (text, "  --url URL    %s\n", _("Use heartbeatd's HTTP API at URL (status, show, beat and check)"));
  g_string_append_printf (text, "  --token T    %s\n", _("With --url: the bearer token for writes"));
  g_string_append_printf (text, "  --version    %s\n", _("Print the version"));
  g_string_append_printf (text, "  -h, --help   %s\n", _("Show this help; COMMAND --help shows a command's"));
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

/* Whether @command is offered with --url (an unknown one is not) */
static gboolean
over_url (const char *command)
{
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (commands[i].name, command) == 0)
      return commands[i].over_url;
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

  opt.color = isatty (STDOUT_FILENO) && g_getenv ("NO_COLOR") == NULL;

  for (; first < argc && argv[first][0] == '-'; first++)
    {
      const char *arg = argv[first];

      if (strcmp (arg, "--system") == 0)
        opt.bus_type = G_BUS_TYPE_SYSTEM;
      else if (strcmp (arg, "--session") == 0)
        opt.bus_type = G_BUS_TYPE_SESSION;
      else if (strcmp (arg, "--no-legend") == 0)
        opt.legend = FALSE;
      else if (strcmp (arg, "--no-color") == 0 || strcmp (arg, "--no-colour") == 0)
        opt.color = FALSE;
      else if ((strcmp (arg, "--url") == 0 || strcmp (arg, "--token") == 0) && first + 1 < argc)
        {
          char **target = strcmp (arg, "--url") == 0 ? &opt.url : &opt.token;

          g_free (*target);
          *target = g_strdup (argv[++first]);
        }
      else if (g_str_has_prefix (arg, "--url="))
        opt.url = (g_free (opt.url), g_strdup (arg + strlen ("--url=")));
      else if (g_str_has_prefix (arg, "--token="))
        opt.token = (g_free (opt.token), g_strdup (arg + strlen ("--token=")));
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
      int status = hbctl_status (1, status_argv);

      hbctl_args_clear ();
      return status;
    }

  if (opt.url && !over_url (command))
    {
      hbctl_print_error (_("%s is not available with --url (status, show, beat and check are)"), command);
      return EXIT_USAGE;
    }

  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (commands[i].name, command) == 0)
      {
        g_autofree char *prgname = g_strdup_printf ("hbctl %s", command);
        int status;

        g_set_prgname (prgname);
        status = commands[i].func (argc - first, argv + first);
        hbctl_args_clear ();
        return status;
      }

  hbctl_print_error (_("unknown command \"%s\" (see hbctl --help)"), command);
  return EXIT_USAGE;
}
