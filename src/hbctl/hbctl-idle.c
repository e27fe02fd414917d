/* hbctl-idle.c: hbctl idle ID and hbctl unregister ID, one call on one
 * agent (or, for unregister --file PATH, the removal of its heartbeat
 * file)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "hbctl.h"
#include "hbctl-output.h"

typedef gboolean (*IdCall) (HeartbeatClient *client, const char *id, GError **error);

static int
simple_id_command (int         argc,
                   char      **argv,
                   const char *summary,
                   IdCall      call)
{
  g_autoptr(GOptionContext) context = g_option_context_new (_("ID"));
  g_autoptr(HeartbeatClient) client = NULL;
  g_autoptr(GError) error = NULL;
  int status = EXIT_OK;

  g_option_context_set_summary (context, summary);
  if (!hbctl_parse_command (context, &argc, &argv, &status) || !hbctl_want_args (argc, 1, _("ID"), &status))
    return status;
  client = hbctl_connect_client (&status);
  if (client == NULL)
    return status;
  if (!call (client, argv[1], &error))
    return hbctl_report (client, argv[1], error);
  return EXIT_OK;
}

int
hbctl_idle (int argc, char **argv)
{
  return simple_id_command (argc, argv, _("Mark an agent idle: no deadlines until it beats again."),
                            heartbeat_client_mark_idle);
}

int
hbctl_unregister (int argc, char **argv)
{
  g_autofree char *file = NULL;
  g_autoptr(GError) error = NULL;
  int status = EXIT_OK;

  /* --file PATH: remove a heartbeat file (a clean shutdown), no daemon */
  if (argc == 3 && strcmp (argv[1], "--file") == 0)
    file = g_strdup (argv[2]);
  else if (argc == 2 && g_str_has_prefix (argv[1], "--file="))
    file = g_strdup (argv[1] + strlen ("--file="));
  if (file)
    {
      if (!heartbeat_remove_file (file, &error))
        {
          hbctl_print_error ("%s", error->message);
          return EXIT_REFUSED;
        }
      return status;
    }
  return simple_id_command (argc, argv, _("Unregister an agent (or, with --file PATH, remove its heartbeat file)."),
                            heartbeat_client_unregister);
}
