/* hbctl-args.c: a verb's options and arguments
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <math.h>
#include <string.h>

#include "hb-duration.h"
#include "hbctl.h"
#include "hbctl-output.h"

gboolean
hbctl_parse_duration_arg (const char *option,
                    const char *value,
                    gint64     *usec)
{
  if (value == NULL)
    return TRUE;
  if (!hb_duration_parse (value, usec, NULL))
    {
      hbctl_print_error (_("\"%s\" is not a duration (examples: 90, 90s, 5m, 1h30m, 250ms)"), value);
      return FALSE;
    }
  return TRUE;
}

/* KEY=VALUE pairs into an a{sv}: VALUE is GVariant text if it parses
 * (42, true, 'x', [1, 2]), else a plain string. */
GVariant *
hbctl_parse_set (char   **pairs,
           GError **error)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  for (gsize i = 0; pairs && pairs[i]; i++)
    {
      const char *eq = strchr (pairs[i], '=');
      g_autofree char *key = NULL;
      GVariant *value;

      if (eq == NULL || eq == pairs[i])
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       _("\"%s\" is not KEY=VALUE"), pairs[i]);
          return NULL;
        }
      key = g_strndup (pairs[i], (gsize) (eq - pairs[i]));
      value = g_variant_parse (NULL, eq + 1, NULL, NULL, NULL);
      if (value == NULL)
        value = g_variant_new_string (eq + 1);
      g_variant_builder_add (&builder, "{sv}", key, value);
    }
  return g_variant_builder_end (&builder);
}

/* A --progress value: a finite number. NaN and infinities are refused
 * here, as a usage error, rather than sent (GOption's double parser takes
 * "nan" and "inf"). */
gboolean
hbctl_parse_progress_arg (const char *value,
                    gboolean   *has_progress,
                    double     *progress)
{
  char *end = NULL;
  double number;

  if (value == NULL)
    return TRUE;
  number = g_ascii_strtod (value, &end);
  if (*value == '\0' || end == value || *end != '\0' || !isfinite (number))
    {
      hbctl_print_error (_("\"%s\" is not a number (--progress takes a finite number, e.g. 0.5 or 42)"), value);
      return FALSE;
    }
  *has_progress = TRUE;
  *progress = number;
  return TRUE;
}

/* A --pid value: a process id, 1 or more. */
gboolean
hbctl_parse_pid_arg (const char *value,
               int        *pid)
{
  guint64 number;

  if (value == NULL)
    return TRUE;
  if (!g_ascii_string_to_unsigned (value, 10, 1, G_MAXINT32, &number, NULL))
    {
      hbctl_print_error (_("\"%s\" is not a process id (--pid takes a number from 1 up)"), value);
      return FALSE;
    }
  *pid = (int) number;
  return TRUE;
}

/* The argv arrays hbctl_parse_command() made, freed at exit of main(). */
static char **command_argv;

/* Parses a command's options; prints its own usage errors.
 *
 * Everything after the first "--" is an argument, never an option, so an
 * agent id that begins with "-" can be given ("hbctl beat -- -x"). GOption
 * would stop at "--" as well, but it leaves the "--" in argv in some cases
 * and not in others; so only what comes before it is given to GOption, and
 * what comes after is appended to the arguments it leaves. */
gboolean
hbctl_parse_command (GOptionContext *context,
               int            *argc,
               char         ***argv,
               int            *status)
{
  g_autoptr(GError) error = NULL;
  int separator = 0;
  int n_options;
  char **options;

  for (int i = 1; i < *argc; i++)
    if (strcmp ((*argv)[i], "--") == 0)
      {
        separator = i;
        break;
      }
  n_options = separator ? separator : *argc;
  options = g_new0 (char *, *argc + 1);
  memcpy (options, *argv, sizeof (char *) * (gsize) n_options);

  g_option_context_set_help_enabled (context, TRUE);
  if (!g_option_context_parse (context, &n_options, &options, &error))
    {
      if (g_error_matches (error, G_OPTION_ERROR, G_OPTION_ERROR_UNKNOWN_OPTION))
        /* TRANSLATORS: after GLib's "Unknown option -x" */
        hbctl_print_error (_("%s (an ID that begins with \"-\" goes after \"--\")"), error->message);
      else
        hbctl_print_error ("%s", error->message);
      g_free (options);
      *status = EXIT_USAGE;
      return FALSE;
    }
  if (separator)
    for (int i = separator + 1; i < *argc; i++)
      options[n_options++] = (*argv)[i];
  options[n_options] = NULL;
  g_free (command_argv);
  command_argv = options;
  *argc = n_options;
  *argv = options;
  return TRUE;
}

gboolean
hbctl_want_args (int         argc,
           int         wanted,
           const char *what,
           int        *status)
{
  /* argv[0] is the command */
  if (argc - 1 == wanted)
    return TRUE;
  if (argc - 1 < wanted)
    hbctl_print_error (_("missing argument: %s"), what);
  else
    hbctl_print_error (_("too many arguments"));
  *status = EXIT_USAGE;
  return FALSE;
}

/* Frees what hbctl_parse_command() kept, at the end of main() */
void
hbctl_args_clear (void)
{
  g_clear_pointer (&command_argv, g_free);
}
