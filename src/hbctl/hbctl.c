/* hbctl.c: the command-line client of heartbeatd
 *
 * Every command is one function: it parses its own options, asks the
 * daemon through a transport (hbctl-transport.h: D-Bus, or the HTTP API
 * at --url), and prints for a person (a table, colour on a terminal) or
 * for a program (--json). Errors are sentences, and the exit status says
 * what kind of failure it was (see usage_text()).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hb-duration.h"
#include "hb-tail.h"
#include "hbctl.h"
#include "hbctl-output.h"
#include "hbctl-table.h"
#include "hbctl-transport.h"

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

/* ------------------------------------------------------------------ */
/* Options shared by commands                                         */

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

/* ------------------------------------------------------------------ */
/* status                                                             */

enum {
  COL_AGENT,
  COL_STATE,
  COL_PID,
  COL_RUNNING,
  COL_SEEN,
  COL_CPU,
  COL_MEM,
  COL_STATUS,   /* status and task: free text, last */
  N_COLUMNS
};

/* The process behind the agent: its unit's main process when it has a
 * unit, else the one it was registered with; 0 if none. */
static guint32
agent_pid (HeartbeatAgentInfo *info)
{
  if (heartbeat_agent_info_has_unit (info))
    return heartbeat_agent_info_get_unit_main_pid (info);
  /* read as hbctl_dict_uint32() does: over HTTP the number is an int64 */
  return hbctl_dict_uint32 (heartbeat_agent_info_get_variant (info), "pid");
}

/* How long the agent has been running: since its unit became active when
 * it has a unit ("-" while the unit is not active), else its current
 * run. */
static char *
running_text (HeartbeatAgentInfo *info)
{
  if (heartbeat_agent_info_has_unit (info))
    {
      guint64 since = heartbeat_agent_info_get_unit_active_since (info);

      if (since == 0)
        return g_strdup ("-");
      return hb_duration_format (g_get_real_time () - (gint64) MIN (since, (guint64) G_MAXINT64));
    }
  return hb_duration_format ((gint64) MIN (hbctl_dict_uint64 (heartbeat_agent_info_get_variant (info), "running-usec"),
                                                  (guint64) G_MAXINT64));
}

/* The machine heartbeatd runs on: this one over D-Bus (hbctl-dbus.c), the
 * daemon's over HTTP (GET /v1/host). The JSON keys are the daemon's. */
typedef struct {
  char    *hostname;        /* NULL: unknown */
  double   cpu_percent;     /* -1: unknown */
  double   load1;           /* -1: unknown */
  guint64  mem_used, mem_total;
  guint64  disk_used, disk_total;
} Host;

static void
host_clear (Host *host)
{
  g_clear_pointer (&host->hostname, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Host, host_clear)



static guint64
member_bytes (JsonObject *object, const char *name)
{
  return (guint64) MAX (hbctl_json_double (object, name, 0), 0);
}

/* *host from the JSON of GET /v1/host (or of the D-Bus transport's
 * reading of this machine) */
static void
host_from_json (JsonNode *node,
                Host     *host)
{
  JsonObject *object = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  JsonNode *name = object ? json_object_get_member (object, "hostname") : NULL;
  JsonNode *load = object ? json_object_get_member (object, "load-average") : NULL;

  host->hostname = name && JSON_NODE_HOLDS_VALUE (name) && json_node_get_value_type (name) == G_TYPE_STRING
                   ? g_strdup (json_node_get_string (name)) : NULL;
  host->cpu_percent = object ? hbctl_json_double (object, "cpu-percent", -1) : -1;
  host->load1 = -1;
  if (load && JSON_NODE_HOLDS_ARRAY (load) && json_array_get_length (json_node_get_array (load)) > 0)
    {
      JsonNode *first = json_array_get_element (json_node_get_array (load), 0);
      GType type = JSON_NODE_HOLDS_VALUE (first) ? json_node_get_value_type (first) : G_TYPE_INVALID;

      if (type == G_TYPE_INT64 || type == G_TYPE_DOUBLE)
        host->load1 = json_node_get_double (first);
    }
  host->mem_used = object ? member_bytes (object, "memory-used-bytes") : 0;
  host->mem_total = object ? member_bytes (object, "memory-total-bytes") : 0;
  host->disk_used = object ? member_bytes (object, "disk-used-bytes") : 0;
  host->disk_total = object ? member_bytes (object, "disk-total-bytes") : 0;
}

static char *
gib (guint64 bytes)
{
  return g_strdup_printf ("%.1f", (double) bytes / (1024.0 * 1024.0 * 1024.0));
}

/* " · host NAME · cpu 12% · mem 1.2/7.8 GiB · disk 20/98 GiB · load 0.52" */
static void
append_host (GString    *summary,
             const Host *host)
{
  g_autofree char *mem_used = gib (host->mem_used), *mem_total = gib (host->mem_total);
  g_autofree char *disk_used = gib (host->disk_used), *disk_total = gib (host->disk_total);
  g_autofree char *cpu = host->cpu_percent >= 0 ? g_strdup_printf ("%.0f%%", host->cpu_percent) : g_strdup ("?");

  /* TRANSLATORS: the name of the machine heartbeatd runs on, after the agent counts */
  g_string_append_printf (summary, _(" · host %s"), host->hostname ? host->hostname : "?");
  /* TRANSLATORS: the host's load after the agent counts */
  g_string_append_printf (summary, _(" · cpu %s · mem %s/%s GiB · disk %s/%s GiB"),
                          cpu, mem_used, mem_total, disk_used, disk_total);
  if (host->load1 >= 0)
    {
      g_autofree char *load = g_strdup_printf ("%.2f", host->load1);

      /* TRANSLATORS: the 1-minute load average, e.g. "0.52" */
      g_string_append_printf (summary, _(" · load %s"), load);
    }
}

/* The daemon's own line under the summary: its version and how long it
 * has been up, from GetStatus (or GET /health) `started-at-usec`. Nothing
 * from a daemon that does not tell when it started. */
static void
print_daemon_line (guint64     started_at,
                   const char *version)
{
  g_autoptr(GDateTime) t = NULL;
  g_autofree char *up = NULL, *since = NULL;

  if (started_at == 0)
    return;
  up = hb_duration_format (g_get_real_time () - (gint64) MIN (started_at, (guint64) G_MAXINT64));
  t = g_date_time_new_from_unix_local ((gint64) (started_at / G_USEC_PER_SEC));
  since = t ? g_date_time_format (t, "%Y-%m-%d %H:%M:%S %Z") : g_strdup ("?");
  if (version && *version)
    /* TRANSLATORS: the daemon's version, how long it has been running, and since when */
    g_print (_("heartbeatd %s up %s (since %s)\n"), version, up, since);
  else
    /* TRANSLATORS: how long the daemon has been running, and since when */
    g_print (_("heartbeatd up %s (since %s)\n"), up, since);
}

/* The cells of one row of the status table (N_COLUMNS, then the state
 * for the colour, then NULL). */
static char **
status_row (GVariant *agent)
{
  g_autoptr(HeartbeatAgentInfo) info = heartbeat_agent_info_new (agent);
  const char *state = heartbeat_agent_info_get_state (info);
  const char *agent_status = heartbeat_agent_info_get_status (info);
  const char *task = heartbeat_agent_info_get_task_id (info);
  guint32 pid = agent_pid (info);
  char **cells = g_new0 (char *, N_COLUMNS + 2);

  cells[COL_AGENT] = g_strdup (heartbeat_agent_info_get_id (info));
  cells[COL_STATE] = opt.color ? g_strdup_printf ("%s %s", hbctl_state_symbol (state), state) : g_strdup (state);
  cells[COL_PID] = pid ? g_strdup_printf ("%u", pid) : g_strdup ("-");
  cells[COL_RUNNING] = running_text (info);
  cells[COL_SEEN] = hbctl_last_seen (agent);
  cells[COL_CPU] = hbctl_unit_cpu_text (info);
  cells[COL_MEM] = hbctl_unit_memory_text (info);
  /* "status · task": cut from the end, the task goes first */
  cells[COL_STATUS] = *task ? g_strdup_printf ("%s · %s", *agent_status ? agent_status : "-", task)
                            : g_strdup (*agent_status ? agent_status : "-");
  cells[N_COLUMNS] = g_strdup (state);   /* for the colour */
  return cells;
}

/* How the table fits a terminal: the free text (status/task, then the
 * agent id; ties go to the status/task) down to 20 columns; the MEM and
 * CPU columns; the free text down to its minimum (12 for an id, 11 for
 * the status); then PID and RUNNING. AGENT, STATE, LAST SEEN and
 * STATUS/TASK always stay. */
static const guint shrinkable[] = { COL_STATUS, COL_AGENT };
static const guint droppable_first[] = { COL_MEM, COL_CPU };
static const guint droppable_last[] = { COL_PID, COL_RUNNING };
static const HbctlTableFit status_fit = {
  shrinkable, G_N_ELEMENTS (shrinkable), 20,
  droppable_first, G_N_ELEMENTS (droppable_first),
  droppable_last, G_N_ELEMENTS (droppable_last),
};

int
hbctl_status (int argc, char **argv)
{
  gboolean json = FALSE, full = FALSE;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, N_("Print JSON"), NULL },
    { "full", 0, 0, G_OPTION_ARG_NONE, &full, N_("Never shorten or leave out anything to fit the terminal"), NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(HbctlTransport) transport = NULL;
  g_auto(HbctlOverview) overview = { NULL, NULL, NULL, 0, NULL };
  static const char *state_order[] = { "healthy", "stale", "error", "timed-out", "gone", "no-heartbeat" };
  const char *headers[N_COLUMNS] = {
    _("AGENT"), _("STATE"), _("PID"), _("RUNNING"), _("LAST SEEN"), _("CPU"), _("MEM"), _("STATUS/TASK")
  };
  g_autoptr(HbctlTable) table = NULL;
  glong columns = 0;
  g_autoptr(GPtrArray) rows = NULL;
  GPtrArray *others;
  guint32 state_counts[G_N_ELEMENTS (state_order)] = { 0 };
  guint n_declared = 0;
  GString *summary;
  g_auto(Host) host = { NULL, -1, -1, 0, 0, 0, 0 };
  HbctlOverviewFlags flags = 0;
  int exit_status = EXIT_OK;
  gsize n;

  g_option_context_set_summary (context, _("Show every agent, the declared ones first, and a summary of the host."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!hbctl_parse_command (context, &argc, &argv, &exit_status) || !hbctl_want_args (argc, 0, NULL, &exit_status))
    return exit_status;

  if (json)
    flags |= HBCTL_OVERVIEW_STATUS;
  if (json || opt.legend)
    flags |= HBCTL_OVERVIEW_HOST;
  if (!json && opt.legend)
    flags |= HBCTL_OVERVIEW_DAEMON;
  transport = hbctl_transport_new ();
  if (!transport->overview (transport, flags, &overview, &exit_status))
    return exit_status;
  if (overview.host)
    host_from_json (overview.host, &host);

  if (json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "status");
      json_builder_add_value (b, json_gvariant_serialize (overview.status));
      json_builder_set_member_name (b, "host");
      if (overview.host)
        json_builder_add_value (b, g_steal_pointer (&overview.host));
      else
        json_builder_add_null_value (b);   /* a daemon without GET /v1/host */
      json_builder_set_member_name (b, "agents");
      json_builder_add_value (b, json_gvariant_serialize (overview.agents));
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      hbctl_print_json (root);
      return EXIT_OK;
    }

  n = g_variant_n_children (overview.agents);
  rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  table = hbctl_table_new (headers, N_COLUMNS);
  hbctl_table_set_minimum (table, COL_AGENT, 12);   /* room for "build-ab…z-12" */
  hbctl_table_set_minimum (table, COL_STATUS, 8);
  /* the declared agents first, then the others; each in the daemon's
   * order (by id) */
  /* one pass over the agents (each g_variant_get_child_value() and
   * lookup costs; 300,000 agents are a lot of them): the rows, the
   * declared ones apart, and the count of each state */
  others = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) agent = g_variant_get_child_value (overview.agents, i);
      gboolean declared = FALSE;
      char **cells;

      g_variant_lookup (agent, "declared", "b", &declared);
      n_declared += declared;
      cells = status_row (agent);
      hbctl_table_widen (table, cells);
      for (gsize s = 0; s < G_N_ELEMENTS (state_order); s++)
        if (strcmp (cells[N_COLUMNS], state_order[s]) == 0)
          state_counts[s]++;
      g_ptr_array_add (declared ? rows : others, cells);
    }
  g_ptr_array_extend_and_steal (rows, g_steal_pointer (&others));

  if (!full)
    columns = hbctl_output_columns ();
  if (columns > 0)
    {
      hbctl_table_fit (table, &status_fit, columns);
      for (guint i = 0; i < rows->len; i++)
        {
          char **cells = g_ptr_array_index (rows, i);
          char *id = hbctl_cut_middle (cells[COL_AGENT], hbctl_table_get_width (table, COL_AGENT));
          char *text = hbctl_cut (cells[COL_STATUS], hbctl_table_get_width (table, COL_STATUS));

          g_free (cells[COL_AGENT]);
          cells[COL_AGENT] = id;
          g_free (cells[COL_STATUS]);
          cells[COL_STATUS] = text;
        }
    }

  if (opt.legend)
    hbctl_table_print_header (table);
  for (guint i = 0; i < rows->len; i++)
    {
      char **cells = g_ptr_array_index (rows, i);

      /* the agents the configuration does not declare, under a heading
       * when declared ones came first */
      if (i == n_declared && n_declared > 0 && opt.legend)
        {
          g_autofree char *heading = hbctl_cut (_("Additional agents (not declared):"),
                                                columns > 0 ? columns : G_MAXLONG);

          g_print ("\n%s\n", heading);
        }
      hbctl_table_print_row (table, cells, COL_STATE, opt.color ? hbctl_state_color (cells[N_COLUMNS]) : NULL);
    }

  if (!opt.legend)
    return EXIT_OK;

  summary = g_string_new (NULL);
  g_string_append_printf (summary, g_dngettext (GETTEXT_PACKAGE, "%zu agent:", "%zu agents:", n), n);
  /* counted from the list, the same over D-Bus and HTTP */
  for (gsize s = 0; s < G_N_ELEMENTS (state_order); s++)
    g_string_append_printf (summary, "%s %u %s", s ? "," : "", state_counts[s], state_order[s]);
  if (overview.host)
    append_host (summary, &host);
  g_print ("\n%s\n", summary->str);
  g_string_free (summary, TRUE);
  print_daemon_line (overview.started_at, overview.version);
  return EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* list                                                               */

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

/* ------------------------------------------------------------------ */
/* show                                                               */

/* How bad a state is, for a cell of the strip that saw several: the worst
 * shows, so that a short stale spell in a long healthy hour is seen. */
static int
state_severity (const char *state)
{
  if (state == NULL)
    return 0;   /* not monitored then */
  if (strcmp (state, "healthy") == 0)
    return 1;
  if (strcmp (state, "gone") == 0 || strcmp (state, "no-heartbeat") == 0)
    return 2;
  if (strcmp (state, "stale") == 0)
    return 3;
  return 4;   /* error, timed-out, and any state this hbctl does not know */
}

/* One character per state for the strip: its shape tells the state
 * without colour; colour (the table's) adds to it. */
static const char *
strip_glyph (const char *state)
{
  switch (state_severity (state))
    {
    case 0: return "·";
    case 1: return "█";
    case 2: return "_";
    case 3: return "▄";
    default: return "×";
    }
}

/* The entries of an a(ts) history, oldest first. */
typedef struct {
  gint64      at;
  const char *state;   /* in the history variant */
} Change;

static GArray *
history_changes (GVariant *history)
{
  GArray *changes = g_array_new (FALSE, FALSE, sizeof (Change));
  GVariantIter iter;
  guint64 at;
  const char *state;

  g_variant_iter_init (&iter, history);
  while (g_variant_iter_next (&iter, "(t&s)", &at, &state))
    {
      Change change = { (gint64) MIN (at, (guint64) G_MAXINT64), state };

      g_array_append_val (changes, change);
    }
  return changes;
}

/* A strip of @cells characters for the @span µs up to @now: each cell
 * shows the worst state the agent was in during its share of the span. */
static char *
history_strip (GArray *changes,
               gint64  now,
               gint64  span,
               guint   cells)
{
  GString *strip = g_string_new (NULL);
  const char *colour = NULL;

  for (guint cell = 0; cell < cells; cell++)
    {
      gint64 from = now - span + (gint64) ((double) span * cell / cells);
      gint64 to = now - span + (gint64) ((double) span * (cell + 1) / cells);
      const char *worst = NULL;

      for (guint i = 0; i < changes->len; i++)
        {
          const Change *c = &g_array_index (changes, Change, i);
          gint64 until = i + 1 < changes->len ? g_array_index (changes, Change, i + 1).at : now;

          /* the state held over [c->at, until); does it meet [from, to)? */
          if (c->at < to && until > from && until > c->at &&
              state_severity (c->state) > state_severity (worst))
            worst = c->state;
          /* the latest state counts in the cell it was entered in, even
           * at "now" */
          else if (i + 1 == changes->len && c->at >= from && c->at < to &&
                   state_severity (c->state) > state_severity (worst))
            worst = c->state;
        }
      if (opt.color)
        {
          const char *wanted = worst ? hbctl_state_color (worst) : "\033[90m";

          if (colour != wanted)
            g_string_append (strip, wanted);
          colour = wanted;
        }
      g_string_append (strip, strip_glyph (worst));
    }
  if (opt.color)
    g_string_append (strip, "\033[0m");
  return g_string_free (strip, FALSE);
}

/* A point in time for the list of changes: the time of day, with the
 * date when @with_date. */
static char *
change_time (gint64 at, gboolean with_date)
{
  g_autoptr(GDateTime) t = g_date_time_new_from_unix_local (at / G_USEC_PER_SEC);

  if (t == NULL)
    return g_strdup ("?");
  return g_date_time_format (t, with_date ? "%Y-%m-%d %H:%M:%S" : "%H:%M:%S");
}

static gboolean
is_today (gint64 at)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  g_autoptr(GDateTime) t = g_date_time_new_from_unix_local (at / G_USEC_PER_SEC);

  return t && g_date_time_get_year (t) == g_date_time_get_year (now) &&
         g_date_time_get_day_of_year (t) == g_date_time_get_day_of_year (now);
}

/* The timeline of `show`: a strip for the last hour and one for the last
 * day, a legend, and the last @n_changes changes with how long each
 * state lasted. */
static void
print_timeline (GVariant *history,
                guint     n_changes,
                glong     columns)
{
  static const char label_indent[] = "               ";   /* under "History:      " */
  g_autoptr(GArray) changes = history_changes (history);
  gint64 now = g_get_real_time ();
  /* 1 min a character for the hour, 30 min for the day, narrower when the
   * terminal is: the labels take 15 + 11 columns */
  guint room = columns > 0 ? (guint) CLAMP (columns - 26, 12, 60) : 60;
  guint hour_cells = MIN (60, room), day_cells = MIN (48, room);
  g_autofree char *hour = NULL, *day = NULL;
  gboolean with_date = FALSE;
  guint first;

  if (changes->len == 0)
    {
      g_print ("%-14s %s\n", _("History:"), _("none kept"));
      return;
    }
  hour = history_strip (changes, now, G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC, hour_cells);
  day = history_strip (changes, now, G_GINT64_CONSTANT (86400) * G_USEC_PER_SEC, day_cells);
  /* TRANSLATORS: a label of 10 columns before the strip of the last hour */
  g_print ("%-14s %-10s %s\n", _("History:"), _("last hour"), hour);
  /* TRANSLATORS: a label of 10 columns before the strip of the last day */
  g_print ("%s%-10s %s\n", label_indent, _("last day"), day);
  /* the legend, when it fits on one line */
  if (opt.legend)
    {
      /* TRANSLATORS: the legend of the strips; keep the characters */
      const char *legend = _("█ healthy  ▄ stale  × error, timed-out  _ gone, no-heartbeat  · not monitored");

      if (columns <= 0 || (glong) strlen (label_indent) + hbctl_text_width (legend) <= columns)
        g_print ("%s%s\n", label_indent, legend);
    }

  if (n_changes == 0)
    return;
  first = changes->len > n_changes ? changes->len - n_changes : 0;
  for (guint i = first; i < changes->len; i++)
    with_date |= !is_today (g_array_index (changes, Change, i).at);
  for (guint i = first; i < changes->len; i++)
    {
      const Change *c = &g_array_index (changes, Change, i);
      gboolean last = i + 1 == changes->len;
      gint64 until = last ? now : g_array_index (changes, Change, i + 1).at;
      g_autofree char *when = change_time (c->at, with_date);
      g_autofree char *lasted = hb_duration_format (until - c->at);
      g_autofree char *state = g_strdup_printf ("%-12s", c->state);
      g_autofree char *coloured = opt.color ? g_strdup_printf ("%s%s\033[0m", hbctl_state_color (c->state), state)
                                            : g_strdup (state);

      g_print ("%-14s %s  %s  ", i == first ? _("Changes:") : "", when, coloured);
      if (last)
        /* TRANSLATORS: how long the agent has been in its current state */
        g_print (_("(for %s, until now)"), lasted);
      else
        /* TRANSLATORS: how long the agent was in that state */
        g_print (_("(for %s)"), lasted);
      g_print ("\n");
    }
  if (first > 0 && opt.legend)
    {
      g_print ("%s", label_indent);
      /* TRANSLATORS: %u earlier changes are not listed */
      g_print (g_dngettext (GETTEXT_PACKAGE, "(%u earlier change; --changes N lists more)",
                            "(%u earlier changes; --changes N lists more)", first), first);
      g_print ("\n");
    }
}

/* The unit behind a unit-backed agent, after the agent's own lines. */
static void
print_unit (HeartbeatAgentInfo *info)
{
  const char *active = heartbeat_agent_info_get_unit_active_state (info);
  const char *sub = heartbeat_agent_info_get_unit_sub_state (info);
  const char *result = heartbeat_agent_info_get_unit_result (info);
  guint64 since = heartbeat_agent_info_get_unit_active_since (info);
  guint32 main_pid = heartbeat_agent_info_get_unit_main_pid (info);
  g_autofree char *cpu = hbctl_unit_cpu_text (info), *memory = hbctl_unit_memory_text (info);
  g_autoptr(GString) state = g_string_new (*active ? active : "-");
  gint32 exit_status = 0;

  if (*sub)
    g_string_append_printf (state, " (%s)", sub);
  if (since)
    {
      g_autofree char *when = hbctl_format_time (since);

      /* TRANSLATORS: after the unit's state: since when it is active */
      g_string_append_printf (state, _(" since %s"), when);
    }
  g_print ("%-14s %s\n", _("Unit:"), heartbeat_agent_info_get_unit_name (info));
  if (opt.color && *active)
    {
      const char *colour = strcmp (active, "active") == 0 || strcmp (active, "reloading") == 0 ? "\033[32m"
                           : strcmp (active, "failed") == 0 ? "\033[31m" : "\033[90m";

      g_print ("%-14s %s%s\033[0m\n", _("Unit state:"), colour, state->str);
    }
  else
    g_print ("%-14s %s\n", _("Unit state:"), state->str);
  if (main_pid)
    g_print ("%-14s %u\n", _("Main PID:"), main_pid);
  else
    g_print ("%-14s -\n", _("Main PID:"));
  g_print ("%-14s %s\n", _("CPU:"), cpu);
  g_print ("%-14s %s\n", _("Memory:"), memory);
  if (heartbeat_agent_info_get_unit_exit_status (info, &exit_status))
    /* TRANSLATORS: the unit's result (e.g. exit-code), then its main process's exit status */
    g_print ("%-14s %s (%s %d)\n", _("Result:"), *result ? result : "-", _("exit status"), exit_status);
  else
    g_print ("%-14s %s\n", _("Result:"), *result ? result : "-");
  {
    guint32 by_systemd = heartbeat_agent_info_get_unit_n_restarts (info);
    guint32 by_alerts = heartbeat_agent_info_get_unit_heartbeatd_restarts (info);

    if (by_alerts)
      /* TRANSLATORS: all restarts of the unit, then how many of them an alert of heartbeatd made */
      g_print ("%-14s %u (%u %s)\n", _("Restarts:"), by_systemd + by_alerts, by_alerts, _("by heartbeatd"));
    else
      g_print ("%-14s %u\n", _("Restarts:"), by_systemd);
  }
}

int
hbctl_show (int argc, char **argv)
{
  gboolean json = FALSE;
  int n_changes = 5;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, N_("Print JSON"), NULL },
    { "changes", 0, 0, G_OPTION_ARG_INT, &n_changes, N_("List this many of the latest changes of state (default 5)"), N_("N") },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new (_("ID"));
  g_autoptr(HbctlTransport) transport = NULL;
  g_autoptr(GVariant) agent = NULL;
  g_autoptr(GVariant) metadata = NULL;
  g_autoptr(GVariant) history = NULL;
  g_autoptr(HeartbeatAgentInfo) info = NULL;
  g_autofree char *owner = NULL, *metadata_text = NULL, *started = NULL, *seen = NULL;
  g_autofree char *running = NULL, *stale = NULL, *timeout = NULL;
  gboolean declared = FALSE;
  guint32 uid, pid;
  int status = EXIT_OK;

  g_option_context_set_summary (context, _("Show one agent, its unit if it has one, and its recent history."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!hbctl_parse_command (context, &argc, &argv, &status) || !hbctl_want_args (argc, 1, _("ID"), &status))
    return status;
  if (n_changes < 0)
    {
      hbctl_print_error (_("--changes takes a number from 0 up"));
      return EXIT_USAGE;
    }
  transport = hbctl_transport_new ();
  agent = transport->get_agent (transport, argv[1], &status);
  if (agent == NULL)
    return status;

  if (json)
    {
      g_autoptr(JsonNode) node = json_gvariant_serialize (agent);
      hbctl_print_json (node);
      return EXIT_OK;
    }

  info = heartbeat_agent_info_new (agent);
  uid = hbctl_dict_uint32 (agent, "owner-uid");
  pid = hbctl_dict_uint32 (agent, "pid");
  owner = hbctl_user_name (uid);
  metadata = g_variant_lookup_value (agent, "metadata", G_VARIANT_TYPE_VARDICT);
  metadata_text = metadata ? g_variant_print (metadata, FALSE) : g_strdup ("{}");
  started = hbctl_format_time (hbctl_dict_uint64 (agent, "started-at-usec"));
  seen = hbctl_never_beat (agent) ? g_strdup (_("never")) : hbctl_format_time (hbctl_dict_uint64 (agent, "last-activity-at-usec"));
  running = hb_duration_format ((gint64) hbctl_dict_uint64 (agent, "running-usec"));
  stale = hb_duration_format ((gint64) hbctl_dict_uint64 (agent, "stale-after-usec"));
  /* 0: no run timeout, a service (heartbeat_agent_is_service()) */
  timeout = hbctl_dict_uint64 (agent, "timeout-after-usec")
              ? hb_duration_format ((gint64) hbctl_dict_uint64 (agent, "timeout-after-usec"))
              : g_strdup (_("none (a service)"));
  g_variant_lookup (agent, "declared", "b", &declared);

  g_print ("%-14s %s\n", _("Agent:"), hbctl_dict_string (agent, "id"));
  g_print ("%-14s %s\n", _("State:"), hbctl_dict_string (agent, "state"));
  g_print ("%-14s %s\n", _("Status:"), hbctl_dict_string (agent, "status"));
  g_print ("%-14s %s\n", _("Task:"), *hbctl_dict_string (agent, "task-id") ? hbctl_dict_string (agent, "task-id") : "-");
  g_print ("%-14s %u (%s)\n", _("Owner:"), uid, owner);
  if (pid)
    g_print ("%-14s %u\n", _("PID:"), pid);
  else
    g_print ("%-14s -\n", _("PID:"));
  g_print ("%-14s %s\n", _("Bound to:"), *hbctl_dict_string (agent, "bound-to") ? hbctl_dict_string (agent, "bound-to") : "-");
  g_print ("%-14s %s\n", _("Started:"), started);
  g_print ("%-14s %s\n", _("Last seen:"), seen);
  g_print ("%-14s %s\n", _("Running:"), running);
  g_print ("%-14s %" G_GUINT64_FORMAT "\n", _("Beats:"), hbctl_dict_uint64 (agent, "beats"));
  g_print ("%-14s %s\n", _("Stale after:"), stale);
  g_print ("%-14s %s\n", _("Timeout after:"), timeout);
  g_print ("%-14s %s\n", _("Declared:"), declared ? _("yes") : _("no"));
  g_print ("%-14s %s\n", _("Metadata:"), metadata_text);
  if (heartbeat_agent_info_has_unit (info))
    print_unit (info);

  /* the timeline; a daemon that keeps no history (an older one) gets
   * none, and a note */
  history = transport->get_history (transport, argv[1]);
  if (history)
    print_timeline (history, (guint) n_changes, hbctl_output_columns ());
  return EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* register, beat, idle, unregister                                   */

int
hbctl_register (int argc, char **argv)
{
  g_autofree char *task = NULL, *stale_text = NULL, *timeout_text = NULL, *pid_text = NULL;
  g_auto(GStrv) sets = NULL;
  int pid = 0;
  GOptionEntry entries[] = {
    { "task", 0, 0, G_OPTION_ARG_STRING, &task, N_("What the agent works on"), N_("TASK") },
    { "stale", 0, 0, G_OPTION_ARG_STRING, &stale_text, N_("Stale after this long without activity"), N_("DURATION") },
    { "timeout", 0, 0, G_OPTION_ARG_STRING, &timeout_text, N_("Time out after running this long"), N_("DURATION") },
    { "pid", 0, 0, G_OPTION_ARG_STRING, &pid_text, N_("The agent is gone when this process exits"), N_("PID") },
    { "set", 0, 0, G_OPTION_ARG_STRING_ARRAY, &sets, N_("Metadata (repeatable)"), N_("KEY=VALUE") },
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
    { "status", 0, 0, G_OPTION_ARG_STRING, &status_text, N_("The status to hbctl_report (error and idle mean something)"), N_("STATUS") },
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

/* ------------------------------------------------------------------ */
/* watch                                                              */

typedef struct {
  GMainLoop *loop;
  gboolean   json;
  int        status;
} Watch;

static void
emit_event (Watch      *w,
            const char *event,
            const char *id,
            const char *detail,
            JsonBuilder *extra)   /* an open object builder, or NULL */
{
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *stamp = g_date_time_format (now, "%Y-%m-%dT%H:%M:%S.%fZ");

  /* %f is µs; keep milliseconds */
  if (strlen (stamp) > 24)
    {
      stamp[23] = 'Z';
      stamp[24] = '\0';
    }

  if (w->json)
    {
      g_autoptr(JsonBuilder) b = extra ? g_object_ref (extra) : json_builder_new ();
      g_autoptr(JsonGenerator) generator = json_generator_new ();
      g_autoptr(JsonNode) root = NULL;
      g_autofree char *text = NULL;

      if (extra == NULL)
        json_builder_begin_object (b);
      json_builder_set_member_name (b, "time");
      json_builder_add_string_value (b, stamp);
      json_builder_set_member_name (b, "event");
      json_builder_add_string_value (b, event);
      json_builder_set_member_name (b, "id");
      json_builder_add_string_value (b, id);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      json_generator_set_root (generator, root);
      text = json_generator_to_data (generator, NULL);
      g_print ("%s\n", text);
    }
  else
    g_print ("%s  %-12s  %s  %s\n", stamp, event, id, detail);
  fflush (stdout);
}

/* An event with one extra string member. */
static void
emit_text_event (Watch      *w,
                 const char *event,
                 const char *id,
                 const char *key,
                 const char *value,
                 const char *detail)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, key);
  json_builder_add_string_value (b, value);
  emit_event (w, event, id, detail, b);
}

/* An event with one extra duration member; @label is translated text
 * with one %s for the duration. */
static void
emit_duration_event (Watch      *w,
                     const char *event,
                     const char *id,
                     const char *key,
                     gint64      usec,
                     const char *label)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree char *d = hb_duration_format (usec);
  g_autofree char *detail = g_strdup_printf (label, d);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, key);
  json_builder_add_int_value (b, usec);
  emit_event (w, event, id, detail, b);
}

static void
on_registered (HeartbeatClient *client, const char *id, const char *task, Watch *w)
{
  g_autofree char *detail = *task ? g_strdup_printf (_("task %s"), task) : g_strdup ("");

  emit_text_event (w, "registered", id, "task-id", task, detail);
}

static void
on_unregistered (HeartbeatClient *client, const char *id, const char *reason, Watch *w)
{
  g_autofree char *detail = g_strdup_printf (_("reason %s"), reason);

  emit_text_event (w, "unregistered", id, "reason", reason, detail);
}

static void
on_stale (HeartbeatClient *client, const char *id, gint64 idle, HeartbeatAgentInfo *agent, Watch *w)
{
  /* TRANSLATORS: %s is a duration */
  emit_duration_event (w, "stale", id, "idle-usec", idle, _("idle %s"));
}

static void
on_timed_out (HeartbeatClient *client, const char *id, gint64 running, HeartbeatAgentInfo *agent, Watch *w)
{
  /* TRANSLATORS: %s is a duration */
  emit_duration_event (w, "timed-out", id, "running-usec", running, _("running %s"));
}

static void
on_recovered (HeartbeatClient *client, const char *id, Watch *w)
{
  emit_event (w, "recovered", id, "", NULL);
}

static void
on_state_changed (HeartbeatClient *client, const char *id, const char *old_state,
                  const char *new_state, Watch *w)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree char *detail = g_strdup_printf ("%s -> %s", old_state, new_state);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "old-state");
  json_builder_add_string_value (b, old_state);
  json_builder_set_member_name (b, "new-state");
  json_builder_add_string_value (b, new_state);
  emit_event (w, "state", id, detail, b);
}

static void
on_vanished (HeartbeatClient *client, Watch *w)
{
  hbctl_print_error (_("heartbeatd left the %s"), hbctl_bus_name ());
  w->status = EXIT_NO_DAEMON;
  g_main_loop_quit (w->loop);
}

static gboolean
on_quit_signal (gpointer user_data)
{
  Watch *w = user_data;

  g_main_loop_quit (w->loop);
  return G_SOURCE_CONTINUE;
}

int
hbctl_watch (int argc, char **argv)
{
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, N_("Print one JSON object per event"), NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(HeartbeatClient) client = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  Watch w = { NULL, FALSE, EXIT_OK };
  int status = EXIT_OK;
  guint sigint, sigterm;

  g_option_context_set_summary (context, _("Print every event as it happens, until interrupted."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!hbctl_parse_command (context, &argc, &argv, &status) || !hbctl_want_args (argc, 0, NULL, &status))
    return status;
  client = hbctl_connect_client (&status);
  if (client == NULL)
    return status;

  loop = g_main_loop_new (NULL, FALSE);
  w.loop = loop;
  w.json = json;
  g_signal_connect (client, "agent-registered", G_CALLBACK (on_registered), &w);
  g_signal_connect (client, "agent-unregistered", G_CALLBACK (on_unregistered), &w);
  g_signal_connect (client, "agent-stale", G_CALLBACK (on_stale), &w);
  g_signal_connect (client, "agent-timed-out", G_CALLBACK (on_timed_out), &w);
  g_signal_connect (client, "agent-recovered", G_CALLBACK (on_recovered), &w);
  g_signal_connect (client, "agent-state-changed", G_CALLBACK (on_state_changed), &w);
  g_signal_connect (client, "daemon-vanished", G_CALLBACK (on_vanished), &w);
  sigint = g_unix_signal_add (SIGINT, on_quit_signal, &w);
  sigterm = g_unix_signal_add (SIGTERM, on_quit_signal, &w);
  g_main_loop_run (loop);
  g_source_remove (sigint);
  g_source_remove (sigterm);
  g_signal_handlers_disconnect_by_data (client, &w);
  return w.status;
}

/* ------------------------------------------------------------------ */
/* run                                                                */

/* One of the command's outputs (1, 2) that hbctl passes on, keeping its
 * tail: when hbctl's own is not a terminal (cron, a unit, a pipe). */
typedef struct {
  HbTail *tail;     /* shared by both */
  int     from;     /* the pipe's end; -1 once closed */
  int     to;       /* hbctl's 1 or 2; -1 once it refused (EPIPE) */
  guint   watch;
} Passed;

typedef struct {
  GMainLoop       *loop;
  HeartbeatClient *client;   /* NULL: the daemon was not reachable */
  const char      *id;
  GPid             child;
  int              wait_status;
  gboolean         exited;
  gboolean         warned;
  HbTail          *tail;     /* the last HB_TAIL_BYTES of what it wrote, if passed */
  Passed           passed[2];
} Run;

static void
passed_close (Passed *p)
{
  if (p->from >= 0)
    g_close (p->from, NULL);
  p->from = -1;
}

/* Reads what is there (at most 64 KiB), passes it on and keeps its tail.
 * Returns FALSE at the end of the output (or an error), closing it. */
static gboolean
passed_read (Passed *p)
{
  char buffer[65536];
  gssize n;

  do
    n = read (p->from, buffer, sizeof buffer);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN)
    return TRUE;
  if (n <= 0)
    {
      passed_close (p);
      return FALSE;
    }
  hb_tail_append (p->tail, buffer, (gsize) n);
  for (gssize done = 0; p->to >= 0 && done < n;)
    {
      gssize w = write (p->to, buffer + done, (gsize) (n - done));

      if (w > 0)
        done += w;
      else if (w < 0 && errno != EINTR)
        p->to = -1;   /* our reader left (EPIPE): keep only the tail */
    }
  return TRUE;
}

static gboolean
on_passed (int fd, GIOCondition condition, gpointer user_data)
{
  Passed *p = user_data;

  if (passed_read (p))
    return G_SOURCE_CONTINUE;
  p->watch = 0;
  return G_SOURCE_REMOVE;
}

/* After the command exited: what it wrote is in the pipe; read it and
 * close. Whatever it left running in the background does not hold hbctl
 * (it gets EPIPE should it write later). */
static void
passed_finish (Passed *p)
{
  int pending = 0;

  g_clear_handle_id (&p->watch, g_source_remove);
  /* until the pipe is empty, not until its end: the end never comes
   * while something in the background holds it open (and what keeps
   * writing is not waited for: one pipe's worth, a few times over) */
  for (guint i = 0; i < 16 && p->from >= 0 && ioctl (p->from, FIONREAD, &pending) == 0 && pending > 0; i++)
    if (!passed_read (p))
      break;
  passed_close (p);
}

/* In the command (between fork and exec): hbctl ignores SIGPIPE to see
 * EPIPE; the command gets the default back. */
static void
reset_sigpipe (gpointer user_data)
{
  signal (SIGPIPE, SIG_DFL);
}

static void
on_run_beat (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Run *run = user_data;
  g_autoptr(GError) error = NULL;

  if (!heartbeat_client_beat_finish (HEARTBEAT_CLIENT (source), result, &error) && !run->warned)
    {
      hbctl_print_error (_("warning: cannot beat \"%s\": %s"), run->id, error->message);
      run->warned = TRUE;
    }
}

static gboolean
on_run_tick (gpointer user_data)
{
  Run *run = user_data;

  heartbeat_client_beat_async (run->client, run->id, NULL, NULL, on_run_beat, run);
  return G_SOURCE_CONTINUE;
}

static void
on_child_exit (GPid pid, int wait_status, gpointer user_data)
{
  Run *run = user_data;

  run->wait_status = wait_status;
  run->exited = TRUE;
  g_spawn_close_pid (pid);
  g_main_loop_quit (run->loop);
}

typedef struct {
  Run *run;
  int  signum;
} Forward;

static gboolean
on_forward_signal (gpointer user_data)
{
  Forward *f = user_data;

  if (f->run->child > 0 && !f->run->exited)
    kill (f->run->child, f->signum);
  return G_SOURCE_CONTINUE;
}

int
hbctl_run (int argc, char **argv)
{
  g_autofree char *name = NULL, *interval_text = NULL, *stale_text = NULL;
  g_autofree char *timeout_text = NULL, *task = NULL;
  GOptionEntry entries[] = {
    { "name", 0, 0, G_OPTION_ARG_STRING, &name, N_("The agent's id (required)"), N_("ID") },
    { "interval", 0, 0, G_OPTION_ARG_STRING, &interval_text, N_("Beat this often (default 10s)"), N_("DURATION") },
    { "stale", 0, 0, G_OPTION_ARG_STRING, &stale_text, N_("Stale after this long without a beat"), N_("DURATION") },
    { "timeout", 0, 0, G_OPTION_ARG_STRING, &timeout_text, N_("Time out after running this long"), N_("DURATION") },
    { "task", 0, 0, G_OPTION_ARG_STRING, &task, N_("What the command works on"), N_("TASK") },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new (_("-- COMMAND [ARG…]"));
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_auto(GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  gint64 interval = 10 * G_USEC_PER_SEC, stale = 0, timeout = 0, effective_stale = 0;
  Run run = { 0 };
  Forward forwards[3] = { { &run, SIGINT }, { &run, SIGTERM }, { &run, SIGHUP } };
  guint sources[3], tick = 0;
  int status = EXIT_OK, code;
  gboolean spawned = TRUE;

  g_option_context_set_summary (context,
    _("Run COMMAND as agent ID: register, beat while it runs, unregister when it succeeds.\n"
      "If it fails, the agent stays with status \"error\" and the exit status in its\n"
      "metadata, with the last 4 KiB of its output where hbctl's is not a terminal\n"
      "(COMMAND's output then passes through hbctl). SIGINT, SIGTERM and SIGHUP are\n"
      "passed on to COMMAND; hbctl exits with COMMAND's status (128+N if signal N\n"
      "killed it)."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  g_option_context_set_strict_posix (context, FALSE);
  if (!hbctl_parse_command (context, &argc, &argv, &status))
    return status;
  if (name == NULL)
    {
      hbctl_print_error (_("run needs --name ID"));
      return EXIT_USAGE;
    }
  /* Everything after "--" is the command to run (GOption leaves the "--"
   * in place when an option follows it). */
  if (argc >= 2 && strcmp (argv[1], "--") == 0)
    {
      argv[1] = argv[0];
      argv++;
      argc--;
    }
  if (argc < 2)
    {
      hbctl_print_error (_("missing argument: %s"), _("COMMAND"));
      return EXIT_USAGE;
    }
  if (!hbctl_parse_duration_arg ("--interval", interval_text, &interval) ||
      !hbctl_parse_duration_arg ("--stale", stale_text, &stale) ||
      !hbctl_parse_duration_arg ("--timeout", timeout_text, &timeout))
    return EXIT_USAGE;

  /* Take the signals now: one that arrives while registering is handed to
   * the command as soon as it runs, instead of killing hbctl. */
  for (int i = 0; i < 3; i++)
    sources[i] = g_unix_signal_add (forwards[i].signum, on_forward_signal, &forwards[i]);

  run.id = name;
  run.client = heartbeat_client_new_sync (opt.bus_type, NULL, &error);
  if (run.client == NULL)
    {
      int ignored;
      g_autofree char *problem = hbctl_connect_problem (error, &ignored);

      hbctl_print_error (_("warning: %s; running the command unmonitored"), problem);
      g_clear_error (&error);
    }
  else
    {
      effective_stale = stale;
      if (effective_stale == 0)
        {
          g_autoptr(GVariant) daemon_status = heartbeat_client_get_status (run.client, NULL);
          guint64 value = 0;

          if (daemon_status && g_variant_lookup (daemon_status, "stale-threshold-usec", "t", &value))
            effective_stale = (gint64) value;
        }
      if (effective_stale > 0 && interval >= effective_stale)
        {
          g_autofree char *i = hb_duration_format (interval);
          g_autofree char *s = hb_duration_format (effective_stale);

          hbctl_print_error (_("--interval %s must be shorter than the stale threshold %s"), i, s);
          g_clear_object (&run.client);
          for (int k = 0; k < 3; k++)
            g_source_remove (sources[k]);
          return EXIT_USAGE;
        }

      if (task)
        g_variant_builder_add (&options, "{sv}", "task-id", g_variant_new_string (task));
      if (stale)
        g_variant_builder_add (&options, "{sv}", "stale-after-usec", g_variant_new_uint64 ((guint64) stale));
      if (timeout)
        g_variant_builder_add (&options, "{sv}", "timeout-after-usec", g_variant_new_uint64 ((guint64) timeout));
      if (!heartbeat_client_register (run.client, name, g_variant_builder_end (&options), &error))
        {
          status = hbctl_report (run.client, name, error);
          g_clear_object (&run.client);
          for (int k = 0; k < 3; k++)
            g_source_remove (sources[k]);
          return status;
        }
    }

  /* Where hbctl's output is not a terminal (cron, a unit, a pipe), the
   * command's goes through hbctl, which keeps its tail for a failure's
   * report; on a terminal it is left alone (the person sees it, and the
   * command still sees a terminal). */
  {
    gboolean pass[2] = { !isatty (STDOUT_FILENO), !isatty (STDERR_FILENO) };

    if (run.client && (pass[0] || pass[1]))
      {
        run.tail = hb_tail_new (HB_TAIL_BYTES);
        signal (SIGPIPE, SIG_IGN);
      }
    for (int k = 0; k < 2; k++)
      run.passed[k] = (Passed) { run.tail, -1, k + 1, 0 };
    if (!g_spawn_async_with_pipes_and_fds (NULL, (const char *const *) argv + 1, NULL,
                                           G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                                           G_SPAWN_CHILD_INHERITS_STDIN,
                                           run.tail ? reset_sigpipe : NULL, NULL, -1, -1, -1, NULL, NULL, 0,
                                           &run.child, NULL,
                                           run.tail && pass[0] ? &run.passed[0].from : NULL,
                                           run.tail && pass[1] ? &run.passed[1].from : NULL,
                                           &error))
      spawned = FALSE;
  }
  if (!spawned)
    {
      hbctl_print_error (_("cannot run %s: %s"), argv[1], error->message);
      if (run.client)
        {
          g_autoptr(GVariant) details = g_variant_ref_sink (g_variant_new_parsed (
            "{'status': <'error'>, 'metadata': <{'exit-status': <int32 127>}>}"));
          heartbeat_client_beat (run.client, name, details, NULL);
        }
      g_clear_object (&run.client);
      for (int k = 0; k < 3; k++)
        g_source_remove (sources[k]);
      return 127;
    }

  loop = g_main_loop_new (NULL, FALSE);
  run.loop = loop;
  g_child_watch_add (run.child, on_child_exit, &run);
  for (int k = 0; k < 2; k++)
    if (run.passed[k].from >= 0)
      {
        g_unix_set_fd_nonblocking (run.passed[k].from, TRUE, NULL);
        run.passed[k].watch = g_unix_fd_add (run.passed[k].from, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                             on_passed, &run.passed[k]);
      }
  if (run.client)
    tick = g_timeout_add ((guint) MAX (interval / 1000, 1), on_run_tick, &run);
  g_main_loop_run (loop);
  for (int i = 0; i < 3; i++)
    g_source_remove (sources[i]);
  if (tick)
    g_source_remove (tick);
  for (int k = 0; k < 2; k++)
    passed_finish (&run.passed[k]);

  if (WIFEXITED (run.wait_status))
    code = WEXITSTATUS (run.wait_status);
  else if (WIFSIGNALED (run.wait_status))
    code = 128 + WTERMSIG (run.wait_status);
  else
    code = 1;

  if (run.client)
    {
      if (code == 0)
        {
          if (!heartbeat_client_unregister (run.client, name, &error))
            {
              hbctl_print_error (_("warning: cannot unregister \"%s\": %s"), name, error->message);
              g_clear_error (&error);
            }
        }
      else
        {
          g_auto(GVariantDict) metadata = G_VARIANT_DICT_INIT (NULL);
          g_autoptr(GVariant) details = NULL;
          g_autofree char *output = run.tail ? hb_tail_get_text (run.tail) : NULL;

          g_variant_dict_insert (&metadata, "exit-status", "i", (gint32) code);
          if (output && *output)
            g_variant_dict_insert (&metadata, "output", "s", output);
          {
            g_auto(GVariantDict) d = G_VARIANT_DICT_INIT (NULL);

            g_variant_dict_insert (&d, "status", "s", "error");
            g_variant_dict_insert_value (&d, "metadata", g_variant_dict_end (&metadata));
            details = g_variant_ref_sink (g_variant_dict_end (&d));
          }

          if (!heartbeat_client_beat (run.client, name, details, &error))
            {
              hbctl_print_error (_("warning: cannot report the failure of \"%s\": %s"), name, error->message);
              g_clear_error (&error);
            }
        }
    }
  g_clear_object (&run.client);
  g_clear_pointer (&run.tail, hb_tail_free);
  return code;
}

/* ------------------------------------------------------------------ */
/* check                                                              */

int
hbctl_check (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new (_("ID"));
  g_autoptr(HbctlTransport) transport = NULL;
  g_autoptr(GVariant) agent = NULL;
  g_autofree char *problem = NULL, *seen = NULL;
  const char *state, *agent_status;
  int status = EXIT_OK;

  g_option_context_set_summary (context,
    _("One line and the monitoring-plugin exit status: 0 healthy or idle, 1 stale,\n"
      "2 error, gone, timed out or never beat, 3 unknown agent or no daemon."));
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

  if (strcmp (state, "healthy") == 0)
    {
      g_print ("HEARTBEAT OK - ");
      /* TRANSLATORS: agent id, state, and e.g. "3s ago" */
      g_print (_("%s is %s (last seen %s)"), argv[1], strcmp (agent_status, "idle") == 0 ? "idle" : state, seen);
      g_print ("\n");
      return 0;
    }
  if (strcmp (state, "stale") == 0)
    {
      g_print ("HEARTBEAT WARNING - ");
      g_print (_("%s is %s (last seen %s)"), argv[1], state, seen);
      g_print ("\n");
      return 1;
    }
  g_print ("HEARTBEAT CRITICAL - ");
  g_print (_("%s is %s (last seen %s)"), argv[1], state, seen);
  g_print ("\n");
  return 2;
}

/* ------------------------------------------------------------------ */
/* main                                                               */

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
