/* hbctl-register.c: hbctl register ID, an agent the caller's uid owns
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hbctl.h"
#include "hbctl-output.h"

int
hbctl_register (int argc, char **argv)
{
  g_autofree char *task = NULL, *stale_text = NULL, *timeout_text = NULL, *pid_text = NULL;
  g_auto(GStrv) sets = NULL, tag_args = NULL;
  int pid = 0;
  GOptionEntry entries[] = {
    { "task", 0, 0, G_OPTION_ARG_STRING, &task, N_("What the agent works on"), N_("TASK") },
    { "stale", 0, 0, G_OPTION_ARG_STRING, &stale_text, N_("Stale after this long without activity"), N_("DURATION") },
    { "timeout", 0, 0, G_OPTION_ARG_STRING, &timeout_text, N_("Time out after running this long"), N_("DURATION") },
    { "pid", 0, 0, G_OPTION_ARG_STRING, &pid_text, N_("The agent is gone when this process exits"), N_("PID") },
    { "set", 0, 0, G_OPTION_ARG_STRING_ARRAY, &sets, N_("Metadata (repeatable)"), N_("KEY=VALUE") },
    { "tag", 0, 0, G_OPTION_ARG_STRING_ARRAY, &tag_args, N_("A tag to group and filter by (repeatable, or comma-separated)"), N_("TAG") },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new (_("ID"));
  g_autoptr(HeartbeatClient) client = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  GVariant *metadata;
  gint64 stale = 0, timeout = 0;
  int status = EXIT_OK;

  g_option_context_set_summary (context, _("Register an agent; the caller's uid owns it."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!hbctl_parse_command (context, &argc, &argv, &status) || !hbctl_want_args (argc, 1, _("ID"), &status))
    return status;
  if (!hbctl_parse_duration_arg ("--stale", stale_text, &stale) ||
      !hbctl_parse_duration_arg ("--timeout", timeout_text, &timeout) ||
      !hbctl_parse_pid_arg (pid_text, &pid))
    return EXIT_USAGE;
  metadata = hbctl_parse_set (sets, &error);
  if (metadata == NULL)
    {
      hbctl_print_error ("%s", error->message);
      return EXIT_USAGE;
    }

  if (task)
    g_variant_builder_add (&options, "{sv}", "task-id", g_variant_new_string (task));
  if (stale)
    g_variant_builder_add (&options, "{sv}", "stale-after-usec", g_variant_new_uint64 ((guint64) stale));
  if (timeout)
    g_variant_builder_add (&options, "{sv}", "timeout-after-usec", g_variant_new_uint64 ((guint64) timeout));
  if (pid)
    g_variant_builder_add (&options, "{sv}", "pid", g_variant_new_uint32 ((guint32) pid));
  if (tag_args)
    {
      /* "a,b" and --tag a --tag b alike; the daemon checks them */
      g_autoptr(GStrvBuilder) tags = g_strv_builder_new ();
      g_auto(GStrv) list = NULL;

      for (gsize i = 0; tag_args[i]; i++)
        {
          g_auto(GStrv) words = g_strsplit (tag_args[i], ",", -1);

          for (gsize k = 0; words[k]; k++)
            if (*g_strstrip (words[k]))
              g_strv_builder_add (tags, words[k]);
        }
      list = g_strv_builder_end (tags);
      g_variant_builder_add (&options, "{sv}", "tags", g_variant_new_strv ((const char *const *) list, -1));
    }
  if (sets)
    g_variant_builder_add (&options, "{sv}", "metadata", metadata);
  else
    g_variant_unref (g_variant_ref_sink (metadata));

  client = hbctl_connect_client (&status);
  if (client == NULL)
    return status;
  if (!heartbeat_client_register (client, argv[1], g_variant_builder_end (&options), &error))
    return hbctl_report (client, argv[1], error);
  return EXIT_OK;
}
