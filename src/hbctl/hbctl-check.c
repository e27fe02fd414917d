/* hbctl-check.c: hbctl check ID, one line and a monitoring-plugin exit
 * status
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "hbctl.h"
#include "hbctl-output.h"
#include "hbctl-transport.h"

int
hbctl_check (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new (_("ID"));
  g_autoptr(HbctlTransport) transport = NULL;
  g_autoptr(GVariant) agent = NULL;
  g_autofree char *problem = NULL, *seen = NULL, *reason = NULL, *what = NULL;
  const char *state, *agent_status;
  int status = EXIT_OK;

  g_option_context_set_summary (context,
    _("One line, the state and why, and the monitoring-plugin exit status: 0 healthy,\n"
      "idle or paused, 1 stale, 2 error, gone, timed out or never beat, 3 unknown agent\n"
      "or no daemon."));
  if (!hbctl_parse_command (context, &argc, &argv, &status))
    return 3;
  if (!hbctl_want_args (argc, 1, _("ID"), &status))
    return 3;

  transport = hbctl_transport_new ();
  agent = transport->check_agent (transport, argv[1], &problem);
  if (agent == NULL)
    {
      g_print ("HEARTBEAT UNKNOWN - %s\n", problem);
      return 3;
    }

  state = hbctl_dict_string (agent, "state");
  agent_status = hbctl_dict_string (agent, "status");
  seen = hbctl_last_seen (agent);
  reason = hbctl_agent_reason (agent);
  /* "|" starts a plugin's performance data: not in the text */
  g_strdelimit (reason, "|", '/');
  /* "error: exit status 3: disk full"; the state alone when the reason
   * says nothing more (healthy, or a pause without a reason) */
  if (strcmp (state, "healthy") == 0 && strcmp (agent_status, "idle") == 0)
    what = g_strdup ("idle");
  else if (*reason && strcmp (reason, state) != 0)
    what = g_strdup_printf ("%s: %s", state, reason);
  else
    what = g_strdup (state);

  if (strcmp (state, "healthy") == 0 || strcmp (state, "paused") == 0)
    {
      g_print ("HEARTBEAT OK - ");
      /* TRANSLATORS: agent id, state (with its reason), and e.g. "3s ago" */
      g_print (_("%s is %s (last seen %s)"), argv[1], what, seen);
      g_print ("\n");
      return 0;
    }
  if (strcmp (state, "stale") == 0)
    {
      g_print ("HEARTBEAT WARNING - ");
      g_print (_("%s is %s (last seen %s)"), argv[1], what, seen);
      g_print ("\n");
      return 1;
    }
  g_print ("HEARTBEAT CRITICAL - ");
  g_print (_("%s is %s (last seen %s)"), argv[1], what, seen);
  g_print ("\n");
  return 2;
}
