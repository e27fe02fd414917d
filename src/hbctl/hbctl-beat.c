/* hbctl-beat.c: hbctl beat ID, activity of an agent; or, with --file,
 * its heartbeat file (no daemon)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <unistd.h>

#include "hbctl.h"
#include "hbctl-output.h"
#include "hbctl-transport.h"

int
hbctl_beat (int argc, char **argv)
{
  g_autofree char *status_text = NULL, *file = NULL, *key = NULL;
  g_autofree char *progress_text = NULL, *pid_text = NULL;
  g_auto(GStrv) sets = NULL;
  gboolean has_progress = FALSE;
  double progress = 0;
  gint64 iteration = 0;
  int file_pid = 0;
  GOptionEntry entries[] = {
    { "status", 0, 0, G_OPTION_ARG_STRING, &status_text, N_("The status to report (error and idle mean something)"), N_("STATUS") },
    { "file", 0, 0, G_OPTION_ARG_FILENAME, &file, N_("Write a heartbeat file instead of calling the daemon"), N_("PATH") },
    { "key", 0, 0, G_OPTION_ARG_STRING, &key, N_("With --file: the process key written in it"), N_("NAME") },
    { "iteration", 0, 0, G_OPTION_ARG_INT64, &iteration, N_("With --file: the iteration written in it"), N_("N") },
    { "pid", 0, 0, G_OPTION_ARG_STRING, &pid_text, N_("With --file: the process to watch (default: the one that runs hbctl)"), N_("PID") },
    { "progress", 0, 0, G_OPTION_ARG_STRING, &progress_text, N_("How far along the agent is"), N_("NUMBER") },
    { "set", 0, 0, G_OPTION_ARG_STRING_ARRAY, &sets, N_("Metadata (repeatable)"), N_("KEY=VALUE") },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new (_("ID"));
  g_autoptr(HbctlTransport) transport = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GVariantBuilder) details = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autoptr(GVariant) details_value = NULL;
  GVariant *metadata;
  int status = EXIT_OK;

  g_option_context_set_summary (context, _("Report activity of an agent; with --file PATH --key NAME,\n"
                                          "write its heartbeat file instead (no daemon needed)."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!hbctl_parse_command (context, &argc, &argv, &status))
    return status;
  if (!hbctl_parse_progress_arg (progress_text, &has_progress, &progress) ||
      !hbctl_parse_pid_arg (pid_text, &file_pid))
    return EXIT_USAGE;
  if (file)
    {
      g_autoptr(GError) file_error = NULL;

      if (key == NULL)
        {
          hbctl_print_error (_("--file needs --key NAME"));
          return EXIT_USAGE;
        }
      if (!hbctl_want_args (argc, 0, NULL, &status))
        return status;
      /* The writer is the script that runs hbctl, not hbctl itself. */
      if (file_pid <= 0)
        file_pid = (int) getppid ();
      if (!heartbeat_write_file (file, key, file_pid, status_text, iteration, &file_error))
        {
          hbctl_print_error ("%s", file_error->message);
          return EXIT_REFUSED;
        }
      return EXIT_OK;
    }
  if (key && opt.url)
    {
      /* hbctl beat ID --url URL --key FILE: beat's --key, not the client's */
      hbctl_print_error (_("--key after beat goes with --file PATH; the private key of --cert goes before "
                           "the command: hbctl --url URL --cert FILE --key FILE beat ID"));
      return EXIT_USAGE;
    }
  if (key || pid_text || iteration)
    {
      hbctl_print_error (_("--key, --iteration and --pid go with --file PATH"));
      return EXIT_USAGE;
    }
  if (!hbctl_want_args (argc, 1, _("ID"), &status))
    return status;
  metadata = hbctl_parse_set (sets, &error);
  if (metadata == NULL)
    {
      hbctl_print_error ("%s", error->message);
      return EXIT_USAGE;
    }
  if (status_text)
    g_variant_builder_add (&details, "{sv}", "status", g_variant_new_string (status_text));
  if (has_progress)
    g_variant_builder_add (&details, "{sv}", "progress", g_variant_new_double (progress));
  if (sets)
    g_variant_builder_add (&details, "{sv}", "metadata", metadata);
  else
    g_variant_unref (g_variant_ref_sink (metadata));

  details_value = g_variant_ref_sink (g_variant_builder_end (&details));
  transport = hbctl_transport_new ();
  return transport->beat (transport, argv[1], details_value);
}
