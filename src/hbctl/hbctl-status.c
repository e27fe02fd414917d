/* hbctl-status.c: hbctl status, every agent and a summary
 *
 * The table (declared agents first), fitted to the terminal by
 * hbctl-table; the counts of each state, the host heartbeatd runs on,
 * and the daemon's own line; or all of it as JSON.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <json-glib/json-glib.h>
#include <string.h>

#include "hb-duration.h"
#include "hbctl.h"
#include "hbctl-output.h"
#include "hbctl-table.h"
#include "hbctl-transport.h"

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
