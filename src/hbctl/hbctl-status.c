/* hbctl-status.c: hbctl status, the agents and a summary
 *
 * The table, problems first (the record's severity, most urgent first,
 * then the id), with why each state is what it is next to it, fitted to
 * the terminal by hbctl-table; filtered by --failed, --state= and --tag=;
 * the counts of each state, the host heartbeatd runs on, and the
 * daemon's own line; or all of it as JSON.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <json-glib/json-glib.h>
#include <string.h>

#include "hb-duration.h"
#include "hb-name.h"
#include "hbctl.h"
#include "hbctl-output.h"
#include "hbctl-table.h"
#include "hbctl-transport.h"

enum {
  COL_AGENT,
  COL_STATE,
  COL_REASON,   /* the record's reason: free text */
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
  char *running;

  if (heartbeat_agent_info_has_unit (info))
    {
      guint64 since = heartbeat_agent_info_get_unit_active_since (info);

      if (since == 0)
        return g_strdup ("-");
      return hb_duration_format (g_get_real_time () - (gint64) MIN (since, (guint64) G_MAXINT64));
    }
  running = hbctl_agent_running (heartbeat_agent_info_get_variant (info));
  return running ? running : g_strdup ("-");
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
  cells[COL_REASON] = hbctl_agent_reason (agent);
  if (*cells[COL_REASON] == '\0')
    cells[COL_REASON] = (g_free (cells[COL_REASON]), g_strdup ("-"));
  cells[COL_PID] = pid ? g_strdup_printf ("%u", pid) : g_strdup ("-");
  cells[COL_RUNNING] = running_text (info);
  cells[COL_SEEN] = hbctl_last_seen (agent);
  cells[COL_CPU] = hbctl_unit_cpu_text (info);
  cells[COL_MEM] = hbctl_unit_memory_text (info);
  /* "status · task": cut from the end, the task goes first */
  {
    g_autofree char *shown_status = hbctl_printable_line (agent_status);
    g_autofree char *shown_task = hbctl_printable_line (task);

    cells[COL_STATUS] = *shown_task ? g_strdup_printf ("%s · %s", *shown_status ? shown_status : "-", shown_task)
                                    : g_strdup (*shown_status ? shown_status : "-");
  }
  cells[N_COLUMNS] = g_strdup (state);   /* for the colour */
  return cells;
}

/* How the table fits a terminal: the free text (status/task, the agent
 * id, then the reason; ties go to the status/task) down to 20 columns;
 * the MEM and CPU columns; the free text down to its minimum (12 for an
 * id, 10 for the reason, 8 for the status); then PID and RUNNING, whose
 * room goes back to the reason first. AGENT, STATE, REASON, LAST SEEN and
 * STATUS/TASK always stay. */
static const guint shrinkable[] = { COL_STATUS, COL_AGENT, COL_REASON };
static const guint droppable_first[] = { COL_MEM, COL_CPU };
static const guint droppable_last[] = { COL_PID, COL_RUNNING };
static const HbctlTableFit status_fit = {
  shrinkable, G_N_ELEMENTS (shrinkable), 20,
  droppable_first, G_N_ELEMENTS (droppable_first),
  droppable_last, G_N_ELEMENTS (droppable_last),
};

/* A row of the table with what it is sorted by */
typedef struct {
  char  **cells;
  guint   severity;
} Row;

static void
row_free (gpointer data)
{
  Row *row = data;

  g_strfreev (row->cells);
  g_free (row);
}

/* Problems first: the most severe first, then by id */
static int
row_compare (gconstpointer a,
             gconstpointer b)
{
  const Row *x = *(const Row *const *) a;
  const Row *y = *(const Row *const *) b;

  if (x->severity != y->severity)
    return x->severity > y->severity ? -1 : 1;
  return strcmp (x->cells[COL_AGENT], y->cells[COL_AGENT]);
}

/* Which agents are listed: --failed, --state=, --tag= */
typedef struct {
  gboolean   failed;   /* severity >= 2: not healthy and not paused */
  GStrv      states;   /* any of them; NULL: any state */
  GStrv      tags;     /* any of them; NULL: any tag, or none */
} Filter;

/* A tag as the daemon takes one (heartbeat_tags_validate()) */
static gboolean
tag_is_valid (const char *tag)
{
  return hb_name_check (tag, HB_NAME_TAG_MAX_LENGTH, NULL) == HB_NAME_OK;
}

/* The words of a list of options (--state=a,b --state c) as one vector,
 * empty items left out */
static GStrv
split_list (char **values)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();

  for (gsize i = 0; values && values[i]; i++)
    {
      g_auto(GStrv) words = g_strsplit (values[i], ",", -1);

      for (gsize k = 0; words[k]; k++)
        if (*g_strstrip (words[k]))
          g_strv_builder_add (b, words[k]);
    }
  return g_strv_builder_end (b);
}

/* The states, for an error and for --state=help */
static char *
known_states_text (void)
{
  return g_strjoinv (", ", (char **) hbctl_known_states ());
}

/* Reads --state= and --tag= into @filter; FALSE (said, *status set) if
 * one names an unknown state or is not a tag; TRUE with *status
 * EXIT_OK and nothing else to do after --state=help. */
static gboolean
filter_init (Filter   *filter,
             char    **states,
             char    **tags,
             gboolean *listed_help,
             int      *status)
{
  *listed_help = FALSE;
  if (states)
    {
      filter->states = split_list (states);
      for (gsize i = 0; filter->states[i]; i++)
        {
          const char *state = filter->states[i];
          gboolean known = g_strv_contains (hbctl_known_states (), state);

          if (strcmp (state, "help") == 0)
            {
              for (const char *const *k = hbctl_known_states (); *k; k++)
                g_print ("%s\n", *k);
              *listed_help = TRUE;
              return TRUE;
            }
          if (!known)
            {
              g_autofree char *valid = known_states_text ();

              /* TRANSLATORS: a state given to --state=, then the list of states */
              hbctl_print_error (_("unknown state \"%s\" (the states are: %s)"), state, valid);
              *status = EXIT_USAGE;
              return FALSE;
            }
        }
      if (filter->states[0] == NULL)
        {
          g_autofree char *valid = known_states_text ();

          hbctl_print_error (_("--state takes one or more states, separated by commas: %s"), valid);
          *status = EXIT_USAGE;
          return FALSE;
        }
    }
  if (tags)
    {
      filter->tags = split_list (tags);
      for (gsize i = 0; filter->tags[i]; i++)
        if (!tag_is_valid (filter->tags[i]))
          {
            g_autofree char *shown = hbctl_printable_line (filter->tags[i]);

            /* TRANSLATORS: what was given to --tag= */
            hbctl_print_error (_("\"%s\" is not a tag (1 to 64 characters of A-Z a-z 0-9 . _ : @ -, not . or ..)"), shown);
            *status = EXIT_USAGE;
            return FALSE;
          }
      if (filter->tags[0] == NULL)
        {
          hbctl_print_error (_("--tag takes a tag"));
          *status = EXIT_USAGE;
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
filter_is_set (const Filter *filter)
{
  return filter->failed || filter->states || filter->tags;
}

/* Whether @agent is listed */
static gboolean
filter_accepts (const Filter *filter,
                GVariant     *agent,
                guint         severity)
{
  if (filter->failed && severity < 2)
    return FALSE;
  if (filter->states && !g_strv_contains ((const char *const *) filter->states, hbctl_dict_string (agent, "state")))
    return FALSE;
  if (filter->tags)
    {
      g_autoptr(GVariant) tags = g_variant_lookup_value (agent, "tags", NULL);
      gboolean found = FALSE;

      /* as over D-Bus; over HTTP an array arrives as av */
      for (gsize i = 0; tags && !found && i < g_variant_n_children (tags) &&
                        (g_variant_is_of_type (tags, G_VARIANT_TYPE_STRING_ARRAY) ||
                         g_variant_is_of_type (tags, G_VARIANT_TYPE ("av"))); i++)
        {
          g_autoptr(GVariant) tag = g_variant_get_child_value (tags, i);

          if (g_variant_is_of_type (tag, G_VARIANT_TYPE_VARIANT))
            {
              g_autoptr(GVariant) inner = g_variant_get_variant (tag);

              found = g_variant_is_of_type (inner, G_VARIANT_TYPE_STRING) &&
                      g_strv_contains ((const char *const *) filter->tags, g_variant_get_string (inner, NULL));
            }
          else
            found = g_strv_contains ((const char *const *) filter->tags, g_variant_get_string (tag, NULL));
        }
      if (!found)
        return FALSE;
    }
  return TRUE;
}

static void
filter_clear (Filter *filter)
{
  g_clear_pointer (&filter->states, g_strfreev);
  g_clear_pointer (&filter->tags, g_strfreev);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Filter, filter_clear)

/* The listed agents of @agents (aa{sv}), as the same type */
static GVariant *
filter_agents (const Filter *filter,
               GVariant     *agents)
{
  g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("aa{sv}"));
  gsize n = g_variant_n_children (agents);

  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) agent = g_variant_get_child_value (agents, i);

      if (filter_accepts (filter, agent, hbctl_agent_severity (agent)))
        g_variant_builder_add_value (&b, agent);
    }
  return g_variant_ref_sink (g_variant_builder_end (&b));
}

int
hbctl_status (int argc, char **argv)
{
  gboolean json = FALSE, full = FALSE, failed = FALSE, listed_help = FALSE;
  g_auto(GStrv) state_args = NULL, tag_args = NULL;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, N_("Print JSON"), NULL },
    { "full", 0, 0, G_OPTION_ARG_NONE, &full, N_("Never shorten or leave out anything to fit the terminal"), NULL },
    { "failed", 0, 0, G_OPTION_ARG_NONE, &failed, N_("List only the agents with a problem (not healthy and not paused)"), NULL },
    { "state", 0, 0, G_OPTION_ARG_STRING_ARRAY, &state_args, N_("List only the agents in these states (\"help\" lists them)"), N_("STATE[,STATE…]") },
    { "tag", 0, 0, G_OPTION_ARG_STRING_ARRAY, &tag_args, N_("List only the agents with this tag (or any of several)"), N_("TAG[,TAG…]") },
    { NULL }
  };
  g_auto(Filter) filter = { FALSE, NULL, NULL };
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(HbctlTransport) transport = NULL;
  g_auto(HbctlOverview) overview = { NULL, NULL, NULL, 0, NULL };
  static const char *state_order[] = { "healthy", "paused", "stale", "error", "timed-out", "gone", "no-heartbeat" };
  const char *headers[N_COLUMNS] = {
    _("AGENT"), _("STATE"), _("REASON"), _("PID"), _("RUNNING"), _("LAST SEEN"), _("CPU"), _("MEM"), _("STATUS/TASK")
  };
  g_autoptr(HbctlTable) table = NULL;
  glong columns = 0;
  g_autoptr(GPtrArray) rows = NULL;
  gboolean any_reason = FALSE;
  guint32 state_counts[G_N_ELEMENTS (state_order)] = { 0 };
  GString *summary;
  g_auto(Host) host = { NULL, -1, -1, 0, 0, 0, 0 };
  HbctlOverviewFlags flags = 0;
  int exit_status = EXIT_OK;
  gsize n;

  g_option_context_set_summary (context, _("Show the agents, problems first (the most severe, then by id), why each is in\n"
                                            "its state, and a summary of the host."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!hbctl_parse_command (context, &argc, &argv, &exit_status) || !hbctl_want_args (argc, 0, NULL, &exit_status))
    return exit_status;
  filter.failed = failed;
  if (!filter_init (&filter, state_args, tag_args, &listed_help, &exit_status))
    return exit_status;
  if (listed_help)
    return EXIT_OK;

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
      if (filter_is_set (&filter))
        {
          g_autoptr(GVariant) listed = filter_agents (&filter, overview.agents);

          json_builder_add_value (b, json_gvariant_serialize (listed));
        }
      else
        json_builder_add_value (b, json_gvariant_serialize (overview.agents));
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      hbctl_print_json (root);
      return EXIT_OK;
    }

  n = g_variant_n_children (overview.agents);
  rows = g_ptr_array_new_with_free_func (row_free);
  table = hbctl_table_new (headers, N_COLUMNS);
  hbctl_table_set_minimum (table, COL_AGENT, 12);   /* room for "build-ab…z-12" */
  hbctl_table_set_minimum (table, COL_REASON, 10);
  hbctl_table_set_minimum (table, COL_STATUS, 8);
  /* one pass over the agents (each g_variant_get_child_value() and
   * lookup costs; 300,000 agents are a lot of them): the rows of the
   * listed ones, and the count of each state of all */
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) agent = g_variant_get_child_value (overview.agents, i);
      const char *state = hbctl_dict_string (agent, "state");
      guint severity = hbctl_agent_severity (agent);
      Row *row;

      for (gsize s = 0; s < G_N_ELEMENTS (state_order); s++)
        if (strcmp (state, state_order[s]) == 0)
          state_counts[s]++;
      if (!filter_accepts (&filter, agent, severity))
        continue;
      row = g_new0 (Row, 1);
      row->cells = status_row (agent);
      row->severity = severity;
      any_reason |= strcmp (row->cells[COL_REASON], "-") != 0;
      hbctl_table_widen (table, row->cells);
      g_ptr_array_add (rows, row);
    }
  /* problems first */
  g_ptr_array_sort (rows, row_compare);
  /* no column of "-" when no listed agent has a reason (all healthy) */
  if (!any_reason)
    hbctl_table_hide_column (table, COL_REASON);

  if (!full)
    columns = hbctl_output_columns ();
  if (columns > 0)
    {
      hbctl_table_fit (table, &status_fit, columns);
      for (guint i = 0; i < rows->len; i++)
        {
          char **cells = ((Row *) g_ptr_array_index (rows, i))->cells;
          char *id = hbctl_cut_middle (cells[COL_AGENT], hbctl_table_get_width (table, COL_AGENT));
          char *reason = hbctl_cut (cells[COL_REASON], hbctl_table_get_width (table, COL_REASON));
          char *text = hbctl_cut (cells[COL_STATUS], hbctl_table_get_width (table, COL_STATUS));

          g_free (cells[COL_AGENT]);
          cells[COL_AGENT] = id;
          g_free (cells[COL_REASON]);
          cells[COL_REASON] = reason;
          g_free (cells[COL_STATUS]);
          cells[COL_STATUS] = text;
        }
    }

  if (opt.legend)
    hbctl_table_print_header (table);
  for (guint i = 0; i < rows->len; i++)
    {
      char **cells = ((Row *) g_ptr_array_index (rows, i))->cells;

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
  if (filter_is_set (&filter))
    /* TRANSLATORS: how many agents --failed, --state= or --tag= listed, of how many */
    g_print (g_dngettext (GETTEXT_PACKAGE, "%u of %zu agent listed\n", "%u of %zu agents listed\n", n), rows->len, n);
  g_string_free (summary, TRUE);
  print_daemon_line (overview.started_at, overview.version);
  return EXIT_OK;
}
