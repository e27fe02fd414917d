/* hb-config.c: heartbeatd's configuration (GKeyFile with drop-ins)
 *
 * The main file, then the drop-ins FILE.d/NAME.conf in lexical order; a key set in a later
 * file overrides the same key set earlier. Every file is checked on its
 * own (unknown sections and keys, bad values), so an error names the file
 * it is in, and a configuration with an error is never half applied.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-config.h"

#include <string.h>

#include "hb-resources.h"
#include "heartbeat-duration.h"

#define DEFAULT_RESOURCE "/org/heartbeat/Monitor1/heartbeatd.conf"
#define AGENT_PREFIX     "agent:"
#define ALERT_PREFIX     "alert:"

typedef enum {
  KIND_DURATION,
  KIND_BOOLEAN,
  KIND_UINT,
  KIND_PORT,
  KIND_TEXT,
  KIND_PATH,
  KIND_SECONDS,
  KIND_EVENTS,
  KIND_URL,
  KIND_UNIT,
  KIND_UNIT_OR_EMPTY,
  KIND_BACKOFF,
  KIND_COUNT,
} KeyKind;

typedef struct {
  const char *group;   /* "agent:" matches every [agent:NAME] */
  const char *key;
  KeyKind     kind;
} KeySpec;

static const KeySpec keys[] = {
  { "monitor", "check-interval", KIND_DURATION },
  { "monitor", "stale-threshold", KIND_DURATION },
  { "monitor", "timeout-threshold", KIND_DURATION },
  { "monitor", "stale-warning-only-once", KIND_BOOLEAN },
  { "monitor", "retention", KIND_DURATION },
  { "limits", "agents-per-uid", KIND_UINT },
  { "limits", "max-agents", KIND_UINT },
  { "state", "sync-interval", KIND_DURATION },
  { "http", "enabled", KIND_BOOLEAN },
  { "http", "address", KIND_TEXT },
  { "http", "port", KIND_PORT },
  { "http", "tokens-file", KIND_PATH },
  { AGENT_PREFIX, "task", KIND_TEXT },
  { AGENT_PREFIX, "stale-threshold", KIND_DURATION },
  { AGENT_PREFIX, "timeout-threshold", KIND_DURATION },
  { AGENT_PREFIX, "heartbeat-file", KIND_PATH },
  { AGENT_PREFIX, "timeout-seconds", KIND_SECONDS },
  { AGENT_PREFIX, "unit", KIND_UNIT },
  { ALERT_PREFIX, "events", KIND_EVENTS },
  { ALERT_PREFIX, "agents", KIND_TEXT },
  { ALERT_PREFIX, "webhook", KIND_URL },
  { ALERT_PREFIX, "alertmanager", KIND_URL },
  { ALERT_PREFIX, "exec", KIND_PATH },
  { ALERT_PREFIX, "restart-unit", KIND_UNIT_OR_EMPTY },   /* empty: the agent's own unit= */
  { ALERT_PREFIX, "retries", KIND_COUNT },
  { ALERT_PREFIX, "retry-interval", KIND_DURATION },
  { ALERT_PREFIX, "timeout", KIND_DURATION },
  { ALERT_PREFIX, "backoff", KIND_BACKOFF },
  { ALERT_PREFIX, "cooldown", KIND_DURATION },
  { "log", "events-file", KIND_PATH },
  { "log", "retention", KIND_COUNT },
};

/* The events an [alert:NAME] may choose. */
static const char *const alert_events[] = { "stale", "timed-out", "recovered", "gone", "error", NULL };

static const char *
group_prefix (const char *group)
{
  if (g_str_has_prefix (group, AGENT_PREFIX))
    return AGENT_PREFIX;
  if (g_str_has_prefix (group, ALERT_PREFIX))
    return ALERT_PREFIX;
  return NULL;
}

static void
config_alert_free (HbConfigAlert *alert)
{
  g_free (alert->name);
  g_strfreev (alert->events);
  g_free (alert->agents);
  g_free (alert->target);
  g_free (alert);
}

static void
config_agent_free (HbConfigAgent *agent)
{
  g_free (agent->id);
  g_free (agent->task_id);
  g_free (agent->heartbeat_file);
  g_free (agent->unit);
  g_free (agent);
}

/**
 * hb_config_free:
 * @config: (transfer full): a configuration
 */
void
hb_config_free (HbConfig *config)
{
  if (config == NULL)
    return;
  g_ptr_array_unref (config->agents);
  g_ptr_array_unref (config->alerts);
  g_ptr_array_unref (config->files);
  g_free (config->events_file);
  g_free (config->http_address);
  g_free (config->http_tokens_file);
  g_free (config);
}

static const KeySpec *
find_key (const char *group,
          const char *key)
{
  const char *prefix = group_prefix (group);

  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      gboolean group_matches = prefix ? strcmp (keys[i].group, prefix) == 0
                                      : strcmp (keys[i].group, group) == 0;

      if (group_matches && strcmp (keys[i].key, key) == 0)
        return &keys[i];
    }
  return NULL;
}

static gboolean
group_is_known (const char *group)
{
  if (group_prefix (group))
    return TRUE;
  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    if (strcmp (keys[i].group, group) == 0)
      return TRUE;
  return FALSE;
}

/* The unit types systemd has, as unit name suffixes. */
static const char *const unit_suffixes[] = {
  ".service", ".socket", ".device", ".mount", ".automount", ".swap", ".target",
  ".path", ".timer", ".slice", ".scope", NULL
};

/**
 * hb_config_check_unit_name:
 * @name: a unit name, as unit= or restart-unit= give it
 * @error: return location for a #GError
 *
 * Checks systemd's unit name syntax: at most 255 bytes of
 * `[A-Za-z0-9:_.\\@-]` (escapes and template instances included) ending in
 * a unit type suffix such as `.service`, with a name before it (a bare
 * template, foo@.service, runs nothing and is refused).
 *
 * Returns: %TRUE, or %FALSE with @error set (%G_KEY_FILE_ERROR_INVALID_VALUE)
 */
gboolean
hb_config_check_unit_name (const char *name,
                           GError    **error)
{
  gboolean suffix = FALSE;
  gsize length = strlen (name);

  /* a name before the suffix, and not a template's bare "foo@" */
  for (gsize i = 0; unit_suffixes[i]; i++)
    if (g_str_has_suffix (name, unit_suffixes[i]) && length > strlen (unit_suffixes[i]) &&
        name[length - strlen (unit_suffixes[i]) - 1] != '@')
      suffix = TRUE;
  if (length > 255 || !suffix ||
      strspn (name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:_.\\@-") != length)
    {
      g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                   "“%s” is not a unit name such as foo.service (at most 255 of A-Z a-z 0-9 : _ . \\ @ -, "
                   "ending in .service, .socket, .timer, .target, …)", name);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_value (const KeySpec *spec,
             const char    *value,
             GError       **error)
{
  gint64 usec;
  guint64 number;

  switch (spec->kind)
    {
    case KIND_DURATION:
      return heartbeat_duration_parse (value, &usec, error);
    case KIND_BOOLEAN:
      if (strcmp (value, "true") == 0 || strcmp (value, "false") == 0)
        return TRUE;
      g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                   "“%s” is not true or false", value);
      return FALSE;
    case KIND_UINT:
      if (!g_ascii_string_to_unsigned (value, 10, 0, G_MAXINT32, &number, error))
        return FALSE;
      return TRUE;
    case KIND_PORT:
      if (!g_ascii_string_to_unsigned (value, 10, 1, 65535, &number, error))
        return FALSE;
      return TRUE;
    case KIND_PATH:
      if (!g_path_is_absolute (value) || strlen (value) > 4096)
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                       "“%s” is not an absolute path", value);
          return FALSE;
        }
      return TRUE;
    case KIND_SECONDS:
      return g_ascii_string_to_unsigned (value, 10, 1, HEARTBEAT_THRESHOLD_MAX / G_USEC_PER_SEC,
                                         &number, error);
    case KIND_EVENTS:
      {
        g_auto(GStrv) events = g_strsplit_set (value, ",; ", -1);
        guint n = 0;

        for (gsize i = 0; events[i]; i++)
          {
            if (*events[i] == '\0')
              continue;
            if (!g_strv_contains (alert_events, events[i]))
              {
                g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                             "“%s” is not an event (stale, timed-out, recovered, gone, error)", events[i]);
                return FALSE;
              }
            n++;
          }
        if (n == 0)
          {
            g_set_error_literal (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "No event listed");
            return FALSE;
          }
        return TRUE;
      }
    case KIND_URL:
      if ((!g_str_has_prefix (value, "http://") && !g_str_has_prefix (value, "https://")) ||
          !g_uri_is_valid (value, G_URI_FLAGS_NONE, NULL))
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "“%s” is not an http(s) URL", value);
          return FALSE;
        }
      return TRUE;
    case KIND_UNIT_OR_EMPTY:
      if (*value == '\0')
        return TRUE;
      G_GNUC_FALLTHROUGH;
    case KIND_UNIT:
      return hb_config_check_unit_name (value, error);
    case KIND_BACKOFF:
      if (strcmp (value, "fixed") == 0 || strcmp (value, "exponential") == 0)
        return TRUE;
      g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                   "“%s” is not fixed or exponential", value);
      return FALSE;
    case KIND_COUNT:
      return g_ascii_string_to_unsigned (value, 10, 1, 1000, &number, error);
    case KIND_TEXT:
    default:
      if (*value == '\0' || strlen (value) > HEARTBEAT_TASK_ID_MAX_LENGTH ||
          !g_utf8_validate (value, -1, NULL))
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                       "The value must be 1 to %d bytes of UTF-8", HEARTBEAT_TASK_ID_MAX_LENGTH);
          return FALSE;
        }
      /* the monitor's rule for text: no C0 or C1 control character */
      for (const char *p = value; *p; p = g_utf8_next_char (p))
        if (g_unichar_iscntrl (g_utf8_get_char (p)))
          {
            g_set_error_literal (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                                 "The value contains a control character");
            return FALSE;
          }
      return TRUE;
    }
}

/* Checks one file against the known sections and keys, and copies it over
 * @merged. @name is what messages call the file. */
static gboolean
merge_file (GKeyFile   *merged,
            GPtrArray  *agent_ids,
            GKeyFile   *file,
            const char *name,
            GError    **error)
{
  g_auto(GStrv) groups = g_key_file_get_groups (file, NULL);

  for (gsize g = 0; groups[g]; g++)
    {
      const char *group = groups[g];
      g_auto(GStrv) names = NULL;

      if (!group_is_known (group))
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
                       "%s: unknown section [%s]", name, group);
          return FALSE;
        }
      if (g_str_has_prefix (group, AGENT_PREFIX))
        {
          g_autoptr(GError) local = NULL;

          if (!heartbeat_id_is_valid (group + strlen (AGENT_PREFIX), &local))
            {
              g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                           "%s: [%s]: %s", name, group, local->message);
              return FALSE;
            }
          /* The section declares the agent even with no keys. */
          if (!g_ptr_array_find_with_equal_func (agent_ids, group + strlen (AGENT_PREFIX),
                                                 g_str_equal, NULL))
            g_ptr_array_add (agent_ids, g_strdup (group + strlen (AGENT_PREFIX)));
        }

      names = g_key_file_get_keys (file, group, NULL, NULL);
      for (gsize k = 0; names && names[k]; k++)
        {
          const KeySpec *spec = find_key (group, names[k]);
          g_autofree char *value = NULL;
          g_autoptr(GError) local = NULL;

          if (spec == NULL)
            {
              g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
                           "%s: unknown key “%s” in [%s]", name, names[k], group);
              return FALSE;
            }
          value = g_key_file_get_string (file, group, names[k], &local);
          if (value == NULL || !check_value (spec, g_strstrip (value), &local))
            {
              g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                           "%s: [%s] %s: %s", name, group, names[k], local->message);
              return FALSE;
            }
          g_key_file_set_string (merged, group, names[k], value);
        }
    }
  return TRUE;
}

static gint64
get_duration (GKeyFile   *merged,
              const char *group,
              const char *key,
              gint64      fallback)
{
  g_autofree char *value = g_key_file_get_string (merged, group, key, NULL);
  gint64 usec;

  if (value == NULL || !heartbeat_duration_parse (g_strstrip (value), &usec, NULL))
    return fallback;
  return usec;
}

static gboolean
get_boolean (GKeyFile   *merged,
             const char *group,
             const char *key,
             gboolean    fallback)
{
  g_autofree char *value = g_key_file_get_string (merged, group, key, NULL);

  return value ? strcmp (g_strstrip (value), "true") == 0 : fallback;
}

static guint64
get_uint (GKeyFile   *merged,
          const char *group,
          const char *key,
          guint64     fallback)
{
  g_autofree char *value = g_key_file_get_string (merged, group, key, NULL);
  guint64 number;

  if (value == NULL || !g_ascii_string_to_unsigned (g_strstrip (value), 10, 0, G_MAXUINT32, &number, NULL))
    return fallback;
  return number;
}

/* Reads the merged, already checked key file into a configuration. */
static HbConfig *
config_from_key_file (GKeyFile  *merged,
                      GPtrArray *agent_ids,
                      GPtrArray *files)
{
  HbConfig *config = g_new0 (HbConfig, 1);

  config->check_interval_usec = get_duration (merged, "monitor", "check-interval", 30 * G_USEC_PER_SEC);
  config->stale_threshold_usec = get_duration (merged, "monitor", "stale-threshold", 5 * 60 * G_USEC_PER_SEC);
  config->timeout_threshold_usec = get_duration (merged, "monitor", "timeout-threshold", (gint64) 30 * 60 * G_USEC_PER_SEC);
  config->stale_warning_only_once = get_boolean (merged, "monitor", "stale-warning-only-once", TRUE);
  config->agents_per_uid = (guint) get_uint (merged, "limits", "agents-per-uid", 1024);
  config->max_agents = (guint) get_uint (merged, "limits", "max-agents", 100000);
  config->retention_usec = get_duration (merged, "monitor", "retention", (gint64) 24 * 60 * 60 * G_USEC_PER_SEC);
  config->sync_interval_usec = MAX (G_USEC_PER_SEC, get_duration (merged, "state", "sync-interval", 30 * G_USEC_PER_SEC));
  config->http_enabled = get_boolean (merged, "http", "enabled", TRUE);
  config->http_tokens_file = g_key_file_get_string (merged, "http", "tokens-file", NULL);
  if (config->http_tokens_file)
    g_strstrip (config->http_tokens_file);
  config->http_address = g_key_file_get_string (merged, "http", "address", NULL);
  if (config->http_address == NULL)
    config->http_address = g_strdup ("127.0.0.1");
  g_strstrip (config->http_address);
  config->http_port = (guint16) get_uint (merged, "http", "port", 8765);

  config->agents = g_ptr_array_new_with_free_func ((GDestroyNotify) config_agent_free);
  for (guint i = 0; i < agent_ids->len; i++)
    {
      const char *id = g_ptr_array_index (agent_ids, i);
      g_autofree char *group = g_strconcat (AGENT_PREFIX, id, NULL);
      HbConfigAgent *agent = g_new0 (HbConfigAgent, 1);

      agent->id = g_strdup (id);
      agent->task_id = g_key_file_get_string (merged, group, "task", NULL);
      if (agent->task_id)
        g_strstrip (agent->task_id);
      agent->stale_after_usec = get_duration (merged, group, "stale-threshold", 0);
      agent->timeout_after_usec = get_duration (merged, group, "timeout-threshold", 0);
      agent->heartbeat_file = g_key_file_get_string (merged, group, "heartbeat-file", NULL);
      if (agent->heartbeat_file)
        g_strstrip (agent->heartbeat_file);
      agent->file_timeout_usec = (gint64) get_uint (merged, group, "timeout-seconds", 0) * G_USEC_PER_SEC;
      agent->unit = g_key_file_get_string (merged, group, "unit", NULL);
      if (agent->unit)
        g_strstrip (agent->unit);
      g_ptr_array_add (config->agents, agent);
    }

  config->alerts = g_ptr_array_new_with_free_func ((GDestroyNotify) config_alert_free);
  {
    g_auto(GStrv) groups = g_key_file_get_groups (merged, NULL);
    static const struct { const char *key; HbAlertAction action; } actions[] = {
      { "webhook", HB_ALERT_WEBHOOK }, { "alertmanager", HB_ALERT_ALERTMANAGER },
      { "exec", HB_ALERT_EXEC }, { "restart-unit", HB_ALERT_RESTART_UNIT },
    };

    for (gsize g = 0; groups[g]; g++)
      {
        HbConfigAlert *alert;
        g_autofree char *events = NULL;
        g_autofree char *backoff = NULL;
        g_autoptr(GStrvBuilder) list = g_strv_builder_new ();
        g_auto(GStrv) parts = NULL;

        if (!g_str_has_prefix (groups[g], ALERT_PREFIX))
          continue;
        alert = g_new0 (HbConfigAlert, 1);
        alert->name = g_strdup (groups[g] + strlen (ALERT_PREFIX));
        events = g_key_file_get_string (merged, groups[g], "events", NULL);
        parts = g_strsplit_set (events ? events : "stale,timed-out,gone,error", ",; ", -1);
        for (gsize i = 0; parts[i]; i++)
          if (*parts[i])
            g_strv_builder_add (list, parts[i]);
        alert->events = g_strv_builder_end (list);
        alert->agents = g_key_file_get_string (merged, groups[g], "agents", NULL);
        if (alert->agents == NULL)
          alert->agents = g_strdup ("*");
        g_strstrip (alert->agents);
        alert->action = (HbAlertAction) -1;
        for (gsize a = 0; a < G_N_ELEMENTS (actions); a++)
          {
            char *target = g_key_file_get_string (merged, groups[g], actions[a].key, NULL);

            if (target == NULL)
              continue;
            if (alert->target)
              {
                g_free (target);
                alert->action = (HbAlertAction) -2;   /* two actions: refused below */
                break;
              }
            alert->target = g_strstrip (target);
            alert->action = actions[a].action;
          }
        alert->retries = (guint) get_uint (merged, groups[g], "retries", 3);
        alert->retry_interval_usec = get_duration (merged, groups[g], "retry-interval", 5 * G_USEC_PER_SEC);
        alert->timeout_usec = get_duration (merged, groups[g], "timeout", 10 * G_USEC_PER_SEC);
        alert->cooldown_usec = get_duration (merged, groups[g], "cooldown", 5 * 60 * G_USEC_PER_SEC);
        backoff = g_key_file_get_string (merged, groups[g], "backoff", NULL);
        alert->exponential = backoff && strcmp (g_strstrip (backoff), "exponential") == 0;
        g_ptr_array_add (config->alerts, alert);
      }
  }
  config->events_file = g_key_file_get_string (merged, "log", "events-file", NULL);
  if (config->events_file)
    g_strstrip (config->events_file);
  config->events_retention = (guint) get_uint (merged, "log", "retention", 7);

  config->files = g_ptr_array_ref (files);
  return config;
}

/* What no single key shows: each alert has exactly one action. */
static HbConfig *
checked (HbConfig *config,
         GError  **error)
{
  for (guint i = 0; config && i < config->alerts->len; i++)
    {
      const HbConfigAlert *alert = g_ptr_array_index (config->alerts, i);

      if ((int) alert->action < 0)
        {
          g_autofree char *files = NULL;

          g_ptr_array_add (config->files, NULL);
          files = g_strjoinv (", ", (char **) config->files->pdata);
          g_ptr_array_remove_index (config->files, config->files->len - 1);
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                       "[alert:%s] needs exactly one of webhook=, alertmanager=, exec=, restart-unit= (read from %s)",
                       alert->name, files);
          hb_config_free (config);
          return NULL;
        }
    }
  return config;
}

static int
compare_paths (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static gboolean
load_into (GKeyFile   *merged,
           GPtrArray  *agent_ids,
           const char *path,
           GPtrArray  *files,
           GError    **error)
{
  g_autoptr(GKeyFile) file = g_key_file_new ();
  g_autoptr(GError) local = NULL;

  if (!g_key_file_load_from_file (file, path, G_KEY_FILE_NONE, &local))
    {
      g_set_error (error, local->domain, local->code, "%s: %s", path, local->message);
      return FALSE;
    }
  if (!merge_file (merged, agent_ids, file, path, error))
    return FALSE;
  g_ptr_array_add (files, g_strdup (path));
  return TRUE;
}

/**
 * hb_config_load:
 * @path: the main configuration file
 * @error: return location for a #GError
 *
 * Reads @path, then every `*.conf` in the directory `@path.d`, in lexical
 * order of their names (a missing directory is fine; a missing @path is
 * not).
 *
 * Returns: (transfer full): the configuration, or %NULL with @error set
 */
HbConfig *
hb_config_load (const char *path,
                GError    **error)
{
  g_autoptr(GKeyFile) merged = g_key_file_new ();
  g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) agent_ids = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *dropin_dir = g_strconcat (path, ".d", NULL);
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GPtrArray) dropins = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  if (!load_into (merged, agent_ids, path, files, error))
    return NULL;

  dir = g_dir_open (dropin_dir, 0, NULL);
  while (dir && (name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_suffix (name, ".conf") && name[0] != '.')
      g_ptr_array_add (dropins, g_build_filename (dropin_dir, name, NULL));
  g_ptr_array_sort (dropins, compare_paths);

  for (guint i = 0; i < dropins->len; i++)
    if (!load_into (merged, agent_ids, g_ptr_array_index (dropins, i), files, error))
      return NULL;

  return checked (config_from_key_file (merged, agent_ids, files), error);
}

/**
 * hb_config_new_default:
 *
 * The configuration built into the binary (data/heartbeatd.conf), for a
 * daemon that runs without any file of its own.
 *
 * Returns: (transfer full): the default configuration
 */
HbConfig *
hb_config_new_default (void)
{
  g_autoptr(GBytes) bytes = g_resource_lookup_data (hb_get_resource (), DEFAULT_RESOURCE, 0, NULL);
  g_autoptr(GError) error = NULL;
  gsize size;
  const char *data = g_bytes_get_data (bytes, &size);
  HbConfig *config = hb_config_load_from_data (data, size, "(built-in)", &error);

  if (config == NULL)
    g_error ("The built-in configuration is broken: %s", error->message);
  return config;
}

/**
 * hb_config_load_from_data:
 * @data: the text of one configuration file
 * @length: its length
 * @name: what messages call it
 * @error: return location for a #GError
 *
 * Like hb_config_load() for a single file held in memory (no drop-ins).
 *
 * Returns: (transfer full): the configuration, or %NULL with @error set
 */
HbConfig *
hb_config_load_from_data (const char *data,
                          gsize       length,
                          const char *name,
                          GError    **error)
{
  g_autoptr(GKeyFile) file = g_key_file_new ();
  g_autoptr(GKeyFile) merged = g_key_file_new ();
  g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) agent_ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) local = NULL;

  if (!g_key_file_load_from_data (file, data, length, G_KEY_FILE_NONE, &local))
    {
      g_set_error (error, local->domain, local->code, "%s: %s", name, local->message);
      return NULL;
    }
  if (!merge_file (merged, agent_ids, file, name, error))
    return NULL;
  g_ptr_array_add (files, g_strdup (name));
  return checked (config_from_key_file (merged, agent_ids, files), error);
}

/**
 * hb_config_apply:
 * @config: a configuration
 * @monitor: the monitor to configure
 * @owner_uid: the uid a newly declared agent belongs to: 0 for the
 *   system's heartbeatd, the user's for a user's heartbeatd on its session
 *   bus (so that the user may beat and unregister it)
 *
 * Sets the monitor's thresholds and declares the configured agents: an
 * agent that exists already is marked declared and takes its section's
 * task and thresholds, and a declared agent whose section is gone is
 * undeclared (heartbeat_monitor_undeclare()). Thresholds apply at once to
 * every agent that has no threshold of its own.
 */
void
hb_config_apply (const HbConfig   *config,
                 HeartbeatMonitor *monitor,
                 guint32           owner_uid)
{
  g_autoptr(GHashTable) named = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) agents = NULL;

  g_object_set (monitor,
                "check-interval", config->check_interval_usec,
                "stale-threshold", config->stale_threshold_usec,
                "timeout-threshold", config->timeout_threshold_usec,
                "stale-warning-only-once", config->stale_warning_only_once,
                "max-agents", config->max_agents,
                "retention", config->retention_usec,
                NULL);

  for (guint i = 0; i < config->agents->len; i++)
    {
      const HbConfigAgent *declared = g_ptr_array_index (config->agents, i);
      HeartbeatAgentOptions options = {
        .task_id = declared->task_id,
        .stale_after_usec = declared->stale_after_usec,
        .timeout_after_usec = declared->timeout_after_usec,
        .owner_uid = owner_uid,
        /* a unit (until hb-units finds a Type=oneshot job) and a program
         * writing a heartbeat file run until stopped: no run timeout
         * unless the section sets timeout-threshold= */
        .service = declared->unit != NULL || declared->heartbeat_file != NULL,
      };

      /* A heartbeat file's timeout is how old its timestamp may get: the
       * stale threshold. */
      if (declared->heartbeat_file && declared->file_timeout_usec)
        options.stale_after_usec = declared->file_timeout_usec;
      g_autoptr(GError) error = NULL;

      if (heartbeat_monitor_declare (monitor, declared->id, &options, &error) == NULL)
        g_warning ("Cannot declare agent “%s”: %s", declared->id, error->message);
      g_hash_table_add (named, declared->id);
    }

  /* a section removed since: its agent is declared no longer */
  agents = heartbeat_monitor_list_agents (monitor);
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);
      const char *id = heartbeat_agent_get_id (agent);

      if (heartbeat_agent_is_declared (agent) && !g_hash_table_contains (named, id) &&
          heartbeat_monitor_undeclare (monitor, id))
        g_message ("Agent %s is no longer declared", id);
    }
}
