/* hbctl-resume.c: hbctl resume ID, the end of a pause
 *
 * The daemon's Resume (D-Bus) or POST /v1/agents/ID/resume (--url): the
 * agent is judged afresh from what is known of it, every threshold
 * counted from now. Resuming an agent that is not paused does nothing.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hbctl.h"
#include "hbctl-output.h"
#include "hbctl-transport.h"

int
hbctl_resume (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new (_("ID"));
  g_autoptr(HbctlTransport) transport = NULL;
  int status = EXIT_OK;

  g_option_context_set_summary (context,
    _("Resume a paused agent: it is judged afresh from what is known of it, every\n"
      "threshold counted from now."));
  if (!hbctl_parse_command (context, &argc, &argv, &status) || !hbctl_want_args (argc, 1, _("ID"), &status))
    return status;
  transport = hbctl_transport_new ();
  return transport->resume (transport, argv[1]);
}
