/* hbctl-pause.c: hbctl pause ID [--reason TEXT], an agent not judged for
 * a while (maintenance)
 *
 * The daemon's Pause (D-Bus) or POST /v1/agents/ID/pause (--url): the
 * agent is `paused` until `hbctl resume ID`, with no stale, timed-out or
 * late judgment, no alert and no restart; its beats and runs are still
 * recorded. Pausing a paused agent updates the reason.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "hbctl.h"
#include "hbctl-output.h"
#include "hbctl-transport.h"

/* What the daemon takes as a pause reason, at most (the agent record's
 * reason is one line of at most 256 bytes): longer is refused here, with
 * nothing sent. */
#define PAUSE_REASON_MAX_BYTES 256

int
hbctl_pause (int argc, char **argv)
{
  g_autofree char *reason = NULL;
  GOptionEntry entries[] = {
    { "reason", 0, 0, G_OPTION_ARG_STRING, &reason, N_("Why (shown with the state, e.g. \"disk swap, ticket 42\")"), N_("TEXT") },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new (_("ID"));
  g_autoptr(HbctlTransport) transport = NULL;
  int status = EXIT_OK;

  g_option_context_set_summary (context,
    _("Pause an agent for maintenance: it is not judged (never stale, timed out or late),\n"
      "raises no alert and is not restarted until \"hbctl resume ID\"; its beats and runs\n"
      "are still recorded. Only its owner, root or a user polkit allows may pause it."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!hbctl_parse_command (context, &argc, &argv, &status) || !hbctl_want_args (argc, 1, _("ID"), &status))
    return status;
  if (reason && (!g_utf8_validate (reason, -1, NULL) || strlen (reason) > PAUSE_REASON_MAX_BYTES))
    {
      hbctl_print_error (_("--reason takes one text of at most %u bytes (UTF-8)"), PAUSE_REASON_MAX_BYTES);
      return EXIT_USAGE;
    }
  transport = hbctl_transport_new ();
  return transport->pause (transport, argv[1], reason);
}
