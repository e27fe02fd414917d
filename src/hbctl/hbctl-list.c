/* hbctl-list.c: hbctl list, the agents' ids
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <json-glib/json-glib.h>

#include "hbctl.h"
#include "hbctl-output.h"
#include "hbctl-transport.h"

int
hbctl_list (int argc, char **argv)
{
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, N_("Print JSON"), NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(HbctlTransport) transport = NULL;
  g_autoptr(GVariant) agents = NULL;
  int status = EXIT_OK;

  g_option_context_set_summary (context, _("List the agents' ids, one per line."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!hbctl_parse_command (context, &argc, &argv, &status) || !hbctl_want_args (argc, 0, NULL, &status))
    return status;
  transport = hbctl_transport_new ();
  agents = transport->list_agents (transport, &status);
  if (agents == NULL)
    return status;

  if (json)
    {
      g_autoptr(JsonNode) node = json_gvariant_serialize (agents);
      hbctl_print_json (node);
      return EXIT_OK;
    }
  for (gsize i = 0; i < g_variant_n_children (agents); i++)
    {
      g_autoptr(GVariant) agent = g_variant_get_child_value (agents, i);
      g_print ("%s\n", hbctl_dict_string (agent, "id"));
    }
  return EXIT_OK;
}
