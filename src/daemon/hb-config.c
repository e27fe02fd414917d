/* hb-config.c: heartbeatd's configuration (GKeyFile with drop-ins)
 *
 * The main file, then the drop-ins FILE.d/NAME.conf in lexical order; a key set in a later
 * file overrides the same key set earlier. Every line of every file is
 * checked (syntax, unknown sections and keys, bad values), then the whole
 * (one action per alert, an events file the daemon can write), and every
 * problem is reported with its file and line, "FILE:LINE: message", so
 * that one run of `heartbeatd --check-config` lists them all. A
 * configuration with a problem is never applied, not even in part.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "hb-build-config.h"
#include "hb-resources.h"
#include "hb-calendar.h"
#include "hb-cron.h"
#include "hb-duration.h"
#include "hb-token.h"
#include "heartbeat-values.h"

/* a duration heartbeatd.conf accepts is a threshold the monitor takes */
G_STATIC_ASSERT (HB_DURATION_MAX == HEARTBEAT_THRESHOLD_MAX);

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
  KIND_FILE,           /* an absolute path, or credential:NAME */
  KIND_SECONDS,
  KIND_EVENTS,
  KIND_URL,
  KIND_URLS,
  KIND_UNIT,
  KIND_UNIT_OR_EMPTY,
  KIND_BACKOFF,
  KIND_COUNT,
  KIND_TZ,
  KIND_SCHEDULE,
  KIND_TAGS,
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
  { "http", "tokens-file", KIND_FILE },
  { "http", "ping-key-file", KIND_FILE },
  { "http", "tls-certificate", KIND_FILE },
  { "http", "tls-key", KIND_FILE },
  { "http", "tls-client-ca", KIND_FILE },
  { "http", "trusted-network", KIND_BOOLEAN },
  { AGENT_PREFIX, "task", KIND_TEXT },
  { AGENT_PREFIX, "stale-threshold", KIND_DURATION },
  { AGENT_PREFIX, "timeout-threshold", KIND_DURATION },
  { AGENT_PREFIX, "heartbeat-file", KIND_PATH },
  { AGENT_PREFIX, "timeout-seconds", KIND_SECONDS },
  { AGENT_PREFIX, "unit", KIND_UNIT },
  { AGENT_PREFIX, "schedule", KIND_SCHEDULE },
  { AGENT_PREFIX, "tz", KIND_TZ },
  { AGENT_PREFIX, "grace", KIND_DURATION },
  { AGENT_PREFIX, "tags", KIND_TAGS },
  { ALERT_PREFIX, "events", KIND_EVENTS },
  { ALERT_PREFIX, "agents", KIND_TEXT },
  { ALERT_PREFIX, "webhook", KIND_URL },
  { ALERT_PREFIX, "alertmanager", KIND_URLS },    /* one or more, whitespace or comma separated */
  { ALERT_PREFIX, "ca-file", KIND_FILE },
  { ALERT_PREFIX, "token-file", KIND_FILE },
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
  g_strfreev (alert->urls);
  g_free (alert->ca_file);
  g_clear_object (&alert->tls_database);
  g_free (alert->token_file);
  if (alert->token)
    memset (alert->token, 0, strlen (alert->token));
  g_free (alert->token);
  g_free (alert);
}

/* [alert:NAME] alertmanager= lists at most this many URLs. */
#define ALERT_URLS_MAX 16

/* The most a token-file= and a ca-file= may hold. */
#define ALERT_TOKEN_MAX_BYTES HB_TOKEN_MAX_BYTES
#define ALERT_CA_MAX_BYTES    (1024 * 1024)

/* An http or https URL with a host, as webhook= and alertmanager= take. */
static gboolean
check_alert_url (const char *value,
                 GError    **error)
{
  g_autoptr(GUri) uri = strlen (value) <= 4096 ? g_uri_parse (value, G_URI_FLAGS_NONE, NULL) : NULL;
  const char *why = NULL;

  if (uri == NULL)
    why = "not a URL";
  else if (strcmp (g_uri_get_scheme (uri), "http") != 0 && strcmp (g_uri_get_scheme (uri), "https") != 0)
    why = "its scheme is neither http nor https";
  else if (g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0')
    why = "it has no host";
  if (why == NULL)
    return TRUE;
  g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "“%s” is not an http(s) URL: %s",
               value, why);
  return FALSE;
}

/* alertmanager=: its URLs, split at whitespace and commas. */
static char **
split_alert_urls (const char *value)
{
  g_auto(GStrv) parts = g_strsplit_set (value, ", \t", -1);
  g_autoptr(GStrvBuilder) urls = g_strv_builder_new ();

  for (gsize i = 0; parts[i]; i++)
    if (*parts[i])
      g_strv_builder_add (urls, parts[i]);
  return g_strv_builder_end (urls);
}

/* A URL without its trailing slashes: the same Alertmanager either way. */
static char *
alert_url_base (const char *url)
{
  gsize n = strlen (url);

  while (n > 0 && url[n - 1] == '/')
    n--;
  return g_strndup (url, n);
}

static gboolean
check_alert_urls (const char *value,
                  GError    **error)
{
  g_auto(GStrv) urls = split_alert_urls (value);
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  guint n = g_strv_length (urls);

  if (n == 0)
    {
      g_set_error_literal (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "No URL listed");
      return FALSE;
    }
  if (n > ALERT_URLS_MAX)
    {
      g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "%u URLs listed; at most %u",
                   n, ALERT_URLS_MAX);
      return FALSE;
    }
  for (guint i = 0; i < n; i++)
    {
      if (!check_alert_url (urls[i], error))
        return FALSE;
      if (!g_hash_table_add (seen, alert_url_base (urls[i])))
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, "“%s” is listed twice", urls[i]);
          return FALSE;
        }
    }
  return TRUE;
}

/**
 * hb_config_check_file:
 * @path: a file the configuration names
 * @secret: (nullable): what it is if it holds a secret ("a tokens file"):
 *   then it must be readable by its owner only; %NULL if others may read it
 * @max: its largest size, in bytes
 * @error: return location for a #GError
 *
 * Whether @path is a regular file (not a FIFO, which would block the
 * reader) of at most @max bytes, readable by its owner only if @secret:
 * the one check of every file whose name the configuration gives.
 *
 * Returns: %TRUE, or %FALSE with @error set (#G_FILE_ERROR)
 */
gboolean
hb_config_check_file (const char *path,
                      const char *secret,
                      goffset     max,
                      GError    **error)
{
  GStatBuf st;

  if (g_stat (path, &st) != 0)
    {
      int saved = errno;

      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved), "%s: %s", path, g_strerror (saved));
      return FALSE;
    }
  if (!S_ISREG (st.st_mode))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: not a regular file", path);
      return FALSE;
    }
  if (st.st_size > max)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: larger than %" G_GOFFSET_FORMAT " bytes",
                   path, max);
      return FALSE;
    }
  if (secret && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_PERM,
                   "%s: %s must be readable by its owner only (chmod 600)", path, secret);
      return FALSE;
    }
  return TRUE;
}

/* ca-file=: a PEM bundle of at least one certificate. */
static GTlsDatabase *
load_alert_ca (const char *path,
               GError    **error)
{
  g_autolist(GTlsCertificate) certificates = NULL;
  g_autoptr(GError) local = NULL;
  GTlsDatabase *database;

  if (!hb_config_check_file (path, NULL, ALERT_CA_MAX_BYTES, error))
    return NULL;
  certificates = g_tls_certificate_list_new_from_file (path, &local);
  if (local == NULL && certificates == NULL)
    g_set_error_literal (&local, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE, "no PEM certificate in it");
  if (local != NULL)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: %s", path, local->message);
      return NULL;
    }
  database = g_tls_file_database_new (path, &local);
  if (database == NULL)
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: %s", path, local->message);
  return database;
}

/* token-file=: one token, printable ASCII without spaces (a header value). */
static char *
load_alert_token (const char *path,
                  GError    **error)
{
  g_autofree char *contents = NULL;
  gsize length = 0;
  char *token;

  if (!hb_config_check_file (path, "a token file", ALERT_TOKEN_MAX_BYTES, error) ||
      !g_file_get_contents (path, &contents, &length, error))
    return NULL;
  token = memchr (contents, '\0', length) ? NULL : g_strstrip (contents);
  if (token == NULL || !hb_token_is_valid (token))
    {
      memset (contents, 0, length);
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   "%s: a token file holds one token: printable ASCII, no space, on one line", path);
      return NULL;
    }
  token = g_strdup (token);
  memset (contents, 0, length);
  return token;
}

static void
config_agent_free (HbConfigAgent *agent)
{
  g_free (agent->id);
  g_free (agent->task_id);
  g_free (agent->heartbeat_file);
  g_free (agent->unit);
  g_free (agent->schedule);
  g_strfreev (agent->tags);
  g_free (agent->tz);
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
  g_free (config->http_ping_key_file);
  g_free (config->http_tls_certificate);
  g_free (config->http_tls_key);
  g_free (config->http_tls_client_ca);
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

/* tags= as a list: separated by commas and/or spaces; empty: none. */
static char **
split_tags (const char *value)
{
  g_auto(GStrv) parts = g_strsplit_set (value, ", \t", -1);
  g_autoptr(GStrvBuilder) tags = g_strv_builder_new ();

  for (gsize i = 0; parts[i]; i++)
    if (*parts[i] != '\0')
      g_strv_builder_add (tags, parts[i]);
  return g_strv_builder_end (tags);
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
      return hb_duration_parse (value, &usec, error);
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
    case KIND_FILE:
      {
        g_autofree char *path = hb_config_resolve_file (value, error);

        return path != NULL;
      }
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
      return check_alert_url (value, error);
    case KIND_URLS:
      return check_alert_urls (value, error);
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
    case KIND_TZ:
      {
        GTimeZone *tz = strlen (value) <= 255 ? g_time_zone_new_identifier (value) : NULL;

        if (tz == NULL)
          {
            g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                         "“%s” is not a time zone such as Europe/Berlin or UTC", value);
            return FALSE;
          }
        g_time_zone_unref (tz);
        return TRUE;
      }
    case KIND_TAGS:
      {
        g_auto(GStrv) tags = split_tags (value);

        /* the monitor's rule, which every front applies */
        return heartbeat_tags_validate ((const char *const *) tags, error);
      }
    case KIND_SCHEDULE:
      {
        g_autoptr(GError) cron_error = NULL;
        g_autoptr(GError) calendar_error = NULL;
        g_autoptr(HbCron) cron = hb_cron_parse (value, &cron_error);

        /* a cron expression, else one systemd reads (see hb-calendar.c) */
        if (cron != NULL || hb_calendar_next (value, NULL, g_get_real_time (), &calendar_error) != 0)
          return TRUE;
        g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                     "“%s” is neither a cron expression (%s) nor a systemd calendar expression (%s)",
                     value, cron_error->message, calendar_error->message);
        return FALSE;
      }
    case KIND_TEXT:
    default:
      switch (heartbeat_text_check (value, strlen (value), HEARTBEAT_TASK_ID_MAX_LENGTH))
        {
        case HEARTBEAT_TEXT_OK:
          return TRUE;
        case HEARTBEAT_TEXT_CONTROL:
          g_set_error_literal (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                               "The value contains a control character");
          return FALSE;
        case HEARTBEAT_TEXT_BAD_LENGTH:
        case HEARTBEAT_TEXT_BAD_UTF8:
        default:
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                       "The value must be 1 to %d bytes of UTF-8", HEARTBEAT_TASK_ID_MAX_LENGTH);
          return FALSE;
        }
    }
}

/* The most one configuration file may hold. */
#define FILE_MAX_BYTES (1024 * 1024)

/* What the files read so far say, and what is wrong with them. */
typedef struct {
  GKeyFile   *merged;      /* every valid key, a later file's over an earlier one's */
  GPtrArray  *agent_ids;   /* char *: [agent:NAME] sections, in order of their first header */
  GPtrArray  *alerts;      /* char *: [alert:NAME] section names, the same way */
  GPtrArray  *files;       /* char *: every file read */
  GHashTable *where;       /* "GROUP" -> "FILE:LINE" of its first header,
                            * "GROUP\nKEY" -> "FILE:LINE" of its last setting */
  GPtrArray  *problems;    /* char *: "FILE:LINE: message", in the order found */
} Loader;

static void
loader_init (Loader *loader)
{
  loader->merged = g_key_file_new ();
  loader->agent_ids = g_ptr_array_new_with_free_func (g_free);
  loader->alerts = g_ptr_array_new_with_free_func (g_free);
  loader->files = g_ptr_array_new_with_free_func (g_free);
  loader->where = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  loader->problems = g_ptr_array_new_with_free_func (g_free);
}

static void
loader_clear (Loader *loader)
{
  g_key_file_unref (loader->merged);
  g_ptr_array_unref (loader->agent_ids);
  g_ptr_array_unref (loader->alerts);
  g_ptr_array_unref (loader->files);
  g_hash_table_unref (loader->where);
  g_ptr_array_unref (loader->problems);
}

/* Adds "WHERE: message"; WHERE is "FILE:LINE", or "FILE" for the file as a whole. */
static void problem (Loader *loader, const char *where, const char *format, ...) G_GNUC_PRINTF (3, 4);

static void
problem (Loader     *loader,
         const char *where,
         const char *format,
         ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_ptr_array_add (loader->problems, g_strdup_printf ("%s: %s", where, message));
}

/* Valid UTF-8 as a message quotes it: at most 64 characters, control
 * characters as "?". */
static char *
quoted (const char *text)
{
  glong length = g_utf8_strlen (text, -1);
  g_autofree char *cut = g_utf8_substring (text, 0, MIN (length, 64));
  GString *out = g_string_new (NULL);

  for (const char *p = cut; *p; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (g_unichar_iscntrl (c))
        g_string_append_c (out, '?');
      else
        g_string_append_unichar (out, c);
    }
  if (length > 64)
    g_string_append (out, "…");
  return g_string_free (out, FALSE);
}

/* A key file value's escapes, as GKeyFile reads them: \s \n \t \r \\ */
static char *
unescape (const char *value,
          GError    **error)
{
  g_autoptr(GString) out = g_string_new (NULL);

  for (const char *p = value; *p; p++)
    {
      if (*p != '\\')
        {
          g_string_append_c (out, *p);
          continue;
        }
      switch (*++p)
        {
        case 's': g_string_append_c (out, ' '); break;
        case 'n': g_string_append_c (out, '\n'); break;
        case 't': g_string_append_c (out, '\t'); break;
        case 'r': g_string_append_c (out, '\r'); break;
        case '\\': g_string_append_c (out, '\\'); break;
        default:
          g_set_error_literal (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                               *p ? "Invalid escape sequence (a backslash may only start \\s \\n \\t \\r \\\\)"
                                  : "The value ends with a lone backslash");
          return NULL;
        }
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* A [section] header at WHERE: returns whether its keys are to be read. */
static gboolean
scan_group (Loader     *loader,
            const char *where,
            const char *group)
{
  if (*group == '\0' || strpbrk (group, "[]") || heartbeat_text_check (group, strlen (group), G_MAXSIZE) == HEARTBEAT_TEXT_CONTROL)
    {
      g_autofree char *q = quoted (group);

      problem (loader, where, "[%s] is not a section name", q);
      return FALSE;
    }
  if (!group_is_known (group))
    {
      problem (loader, where, "unknown section [%s]", group);
      return FALSE;
    }
  if (g_str_has_prefix (group, AGENT_PREFIX))
    {
      const char *id = group + strlen (AGENT_PREFIX);
      g_autoptr(GError) local = NULL;

      if (!heartbeat_id_is_valid (id, &local))
        {
          problem (loader, where, "[%s]: %s", group, local->message);
          return FALSE;
        }
      /* The section declares the agent even with no keys. */
      if (!g_ptr_array_find_with_equal_func (loader->agent_ids, id, g_str_equal, NULL))
        g_ptr_array_add (loader->agent_ids, g_strdup (id));
    }
  if (g_str_has_prefix (group, ALERT_PREFIX))
    {
      if (group[strlen (ALERT_PREFIX)] == '\0')
        {
          problem (loader, where, "[%s] needs a name: [alert:NAME]", group);
          return FALSE;
        }
      if (!g_ptr_array_find_with_equal_func (loader->alerts, group, g_str_equal, NULL))
        g_ptr_array_add (loader->alerts, g_strdup (group));
    }
  if (!g_hash_table_contains (loader->where, group))
    g_hash_table_insert (loader->where, g_strdup (group), g_strdup (where));
  return TRUE;
}

/* KEY=RAW in GROUP at WHERE: checked, and set over what earlier lines set. */
static void
scan_key (Loader     *loader,
          const char *where,
          const char *group,
          const char *key,
          const char *raw)
{
  const KeySpec *spec = find_key (group, key);
  g_autofree char *value = NULL;
  g_autoptr(GError) local = NULL;

  if (spec == NULL)
    {
      g_autofree char *q = quoted (key);

      problem (loader, where, "unknown key “%s” in [%s]", q, group);
      return;
    }
  value = unescape (raw, &local);
  if (value == NULL || !check_value (spec, g_strstrip (value), &local))
    {
      problem (loader, where, "[%s] %s: %s", group, key, local->message);
      return;
    }
  g_key_file_set_string (loader->merged, group, key, value);
  g_hash_table_replace (loader->where, g_strconcat (group, "\n", key, NULL), g_strdup (where));
}

/* Reads one file's text, line by line, into @loader: every line that is
 * not a comment, a [section] header or a key=value line of a known
 * section and key with a valid value is a problem, with its line. The keys
 * of a section whose header is refused are not checked. */
static void
scan_file (Loader     *loader,
           const char *name,
           const char *data,
           gsize       length)
{
  const char *p = data, *end = data + length;
  g_autofree char *group = NULL;   /* NULL: before the first header, or after a refused one */
  gboolean refused = FALSE;
  guint number = 0;

  g_ptr_array_add (loader->files, g_strdup (name));
  while (p < end)
    {
      const char *eol = memchr (p, '\n', (gsize) (end - p));
      gsize size = (gsize) ((eol ? eol : end) - p);
      g_autofree char *line = g_strndup (p, size);
      g_autofree char *where = g_strdup_printf ("%s:%u", name, ++number);
      char *equals;

      p = eol ? eol + 1 : end;
      if (strlen (line) != size)
        {
          problem (loader, where, "the line contains a NUL byte");
          continue;
        }
      g_strstrip (line);
      if (*line == '\0' || *line == '#')
        continue;
      if (!g_utf8_validate (line, -1, NULL))
        {
          problem (loader, where, "the line is not valid UTF-8");
          continue;
        }
      if (*line == '[')
        {
          gsize n = strlen (line);

          g_clear_pointer (&group, g_free);
          refused = TRUE;
          if (n < 2 || line[n - 1] != ']')
            {
              g_autofree char *q = quoted (line);

              problem (loader, where, "“%s” is not a [section] header", q);
              continue;
            }
          line[n - 1] = '\0';
          if (scan_group (loader, where, line + 1))
            {
              group = g_strdup (line + 1);
              refused = FALSE;
            }
          continue;
        }
      equals = strchr (line, '=');
      if (equals == NULL)
        {
          g_autofree char *q = quoted (line);

          problem (loader, where, "“%s” is not a [section] header, a key=value line or a # comment", q);
          continue;
        }
      if (refused)
        continue;
      *equals = '\0';
      g_strchomp (line);
      if (group == NULL)
        {
          g_autofree char *q = quoted (line);

          problem (loader, where, "%s= comes before any [section]", q);
          continue;
        }
      scan_key (loader, where, group, line, equals + 1);
    }
}

/* Reads the file @path into @loader. A file that cannot be read is a
 * problem; with @error, it is that error instead (the main file). */
static gboolean
read_file (Loader     *loader,
           const char *path,
           GError    **error)
{
  g_autofree char *data = NULL;
  gsize length;
  GStatBuf st;
  g_autoptr(GError) local = NULL;

  if (g_stat (path, &st) == 0 && (!S_ISREG (st.st_mode) || st.st_size > FILE_MAX_BYTES))
    g_set_error (&local, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s",
                 S_ISREG (st.st_mode) ? "larger than 1 MiB" : "not a regular file");
  else
    g_file_get_contents (path, &data, &length, &local);
  if (local == NULL)
    {
      scan_file (loader, path, data, length);
      return TRUE;
    }
  if (error)
    g_set_error (error, local->domain, local->code, "%s: %s", path, local->message);
  else
    problem (loader, path, "%s", local->message);
  return FALSE;
}

static gint64
get_duration (GKeyFile   *merged,
              const char *group,
              const char *key,
              gint64      fallback)
{
  g_autofree char *value = g_key_file_get_string (merged, group, key, NULL);
  gint64 usec;

  if (value == NULL || !hb_duration_parse (g_strstrip (value), &usec, NULL))
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

/* A KIND_FILE value, already checked, as a path; NULL if not set. */
static char *
get_file (GKeyFile   *merged,
          const char *group,
          const char *key)
{
  g_autofree char *value = g_key_file_get_string (merged, group, key, NULL);

  return value ? hb_config_resolve_file (g_strstrip (value), NULL) : NULL;
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
  config->http_tokens_file = get_file (merged, "http", "tokens-file");
  config->http_ping_key_file = get_file (merged, "http", "ping-key-file");
  config->http_tls_certificate = get_file (merged, "http", "tls-certificate");
  config->http_tls_key = get_file (merged, "http", "tls-key");
  config->http_tls_client_ca = get_file (merged, "http", "tls-client-ca");
  config->http_trusted_network = get_boolean (merged, "http", "trusted-network", FALSE);
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
      agent->schedule = g_key_file_get_string (merged, group, "schedule", NULL);
      if (agent->schedule)
        g_strstrip (agent->schedule);
      agent->tz = g_key_file_get_string (merged, group, "tz", NULL);
      if (agent->tz)
        g_strstrip (agent->tz);
      agent->grace_usec = get_duration (merged, group, "grace", 0);
      {
        g_autofree char *tags = g_key_file_get_string (merged, group, "tags", NULL);

        if (tags)
          agent->tags = split_tags (tags);
      }
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
        if (alert->action == HB_ALERT_WEBHOOK)
          alert->urls = g_strdupv ((char *[]) { alert->target, NULL });
        else if (alert->action == HB_ALERT_ALERTMANAGER)
          alert->urls = split_alert_urls (alert->target);
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

/* What no single key shows: a job has one schedule (a unit's timer, or
 * schedule=), and tz= says how to read schedule=. */
static void
check_schedules (Loader *loader)
{
  for (guint i = 0; i < loader->agent_ids->len; i++)
    {
      g_autofree char *group = g_strconcat (AGENT_PREFIX, (const char *) g_ptr_array_index (loader->agent_ids, i), NULL);
      g_autofree char *schedule_at = g_strconcat (group, "\nschedule", NULL);
      g_autofree char *tz_at = g_strconcat (group, "\ntz", NULL);
      gboolean schedule = g_key_file_has_key (loader->merged, group, "schedule", NULL);

      if (schedule && g_key_file_has_key (loader->merged, group, "unit", NULL))
        problem (loader, g_hash_table_lookup (loader->where, schedule_at),
                 "[%s] has schedule= and unit=: a unit's schedule is its timer's; give one of them", group);
      if (!schedule && g_key_file_has_key (loader->merged, group, "tz", NULL))
        problem (loader, g_hash_table_lookup (loader->where, tz_at),
                 "[%s] has tz= without schedule=: tz= is the time zone of schedule=", group);
    }
}

/* What no single key shows: each alert has exactly one action, and
 * ca-file= and token-file= go with an HTTP one. */
static void
check_alerts (Loader *loader)
{
  static const char *const actions[] = { "webhook", "alertmanager", "exec", "restart-unit" };
  static const char *const http_keys[] = { "ca-file", "token-file" };

  for (guint i = 0; i < loader->alerts->len; i++)
    {
      const char *group = g_ptr_array_index (loader->alerts, i);
      g_autoptr(GString) found = g_string_new (NULL);
      const char *last = NULL;
      guint n = 0;

      for (gsize a = 0; a < G_N_ELEMENTS (actions); a++)
        if (g_key_file_has_key (loader->merged, group, actions[a], NULL))
          {
            g_autofree char *key = g_strconcat (group, "\n", actions[a], NULL);

            last = g_hash_table_lookup (loader->where, key);
            g_string_append_printf (found, "%s%s= (%s)", n ? " and " : "", actions[a], last);
            n++;
          }
      if (n == 0)
        problem (loader, g_hash_table_lookup (loader->where, group),
                 "[%s] needs exactly one of webhook=, alertmanager=, exec=, restart-unit=", group);
      else if (n > 1)
        problem (loader, last, "[%s] needs exactly one of webhook=, alertmanager=, exec=, restart-unit=; it has %s",
                 group, found->str);
      else if (!g_key_file_has_key (loader->merged, group, "webhook", NULL) &&
               !g_key_file_has_key (loader->merged, group, "alertmanager", NULL))
        for (gsize k = 0; k < G_N_ELEMENTS (http_keys); k++)
          if (g_key_file_has_key (loader->merged, group, http_keys[k], NULL))
            {
              g_autofree char *key = g_strconcat (group, "\n", http_keys[k], NULL);

              problem (loader, g_hash_table_lookup (loader->where, key),
                       "[%s] %s= goes with webhook= or alertmanager=", group, http_keys[k]);
            }
    }
}

/* What no single key shows: a certificate needs its key, and a client
 * CA needs both. */
static void
check_http (Loader *loader)
{
  gboolean certificate = g_key_file_has_key (loader->merged, "http", "tls-certificate", NULL);
  gboolean key = g_key_file_has_key (loader->merged, "http", "tls-key", NULL);

  if (certificate != key)
    problem (loader, g_hash_table_lookup (loader->where, certificate ? "http\ntls-certificate" : "http\ntls-key"),
             "[http] needs both tls-certificate= and tls-key=, or neither");
  else if (!certificate && g_key_file_has_key (loader->merged, "http", "tls-client-ca", NULL))
    problem (loader, g_hash_table_lookup (loader->where, "http\ntls-client-ca"),
             "[http] tls-client-ca= needs tls-certificate= and tls-key=: client certificates are asked "
             "for over TLS only");
}

/**
 * hb_config_resolve_file:
 * @value: a file as the configuration gives it: an absolute path, or
 *   `credential:NAME` for the file NAME in `$CREDENTIALS_DIRECTORY` (what
 *   systemd's `LoadCredential=NAME:PATH` passes to the service, so a key
 *   may stay readable by root only)
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the path, or %NULL with @error set
 *   (%G_KEY_FILE_ERROR_INVALID_VALUE)
 */
char *
hb_config_resolve_file (const char *value,
                        GError    **error)
{
  const char *name, *directory;

  g_return_val_if_fail (value != NULL, NULL);

  if (!g_str_has_prefix (value, "credential:"))
    {
      if (!g_path_is_absolute (value) || strlen (value) > 4096)
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                       "“%s” is not an absolute path (nor credential:NAME)", value);
          return NULL;
        }
      return g_strdup (value);
    }
  name = value + strlen ("credential:");
  if (*name == '\0' || strchr (name, '/') != NULL || strcmp (name, ".") == 0 || strcmp (name, "..") == 0 ||
      strlen (name) > 255)
    {
      g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                   "“%s”: a credential's name is 1 to 255 characters without “/”", value);
      return NULL;
    }
  directory = g_getenv ("CREDENTIALS_DIRECTORY");
  if (directory == NULL || !g_path_is_absolute (directory))
    {
      g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                   "“%s” needs $CREDENTIALS_DIRECTORY, which systemd sets for a service with "
                   "LoadCredential=%s:PATH", value, name);
      return NULL;
    }
  return g_build_filename (directory, name, NULL);
}

/**
 * hb_config_is_hidden_credential:
 * @path: a file, as hb_config_resolve_file() gives it
 *
 * Whether @path is one of the service's credentials that this process
 * may not read: so `heartbeatd --check-config` finds them when
 * heartbeatd.service's ExecReload= runs it, as systemd 252 sets
 * `$CREDENTIALS_DIRECTORY` there without letting the command read it
 * (systemd issue 35227). The daemon itself reads them; only a check
 * leaves them out (%HB_CONFIG_LOAD_CHECK_ONLY).
 *
 * Returns: %TRUE if it is such a file
 */
gboolean
hb_config_is_hidden_credential (const char *path)
{
  const char *credentials = g_getenv ("CREDENTIALS_DIRECTORY");
  g_autofree char *directory = NULL;

  if (path == NULL || credentials == NULL)
    return FALSE;
  directory = g_path_get_dirname (path);
  return strcmp (directory, credentials) == 0 && access (path, R_OK) != 0;
}

static gboolean
is_under (const char *path,
          const char *dir)
{
  gsize n = strlen (dir);

  return strncmp (path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Where heartbeatd.service cannot keep a file that others read. */
static const struct {
  const char *dir;
  const char *why;
} service_private_dirs[] = {
  { "/tmp", "heartbeatd.service has a /tmp of its own (PrivateTmp=yes): nobody else sees the file, "
            "and it is deleted when the service stops" },
  { "/var/tmp", "heartbeatd.service has a /var/tmp of its own (PrivateTmp=yes): nobody else sees the file, "
                "and it is deleted when the service stops" },
  { "/dev", "heartbeatd.service has a /dev of its own (PrivateDevices=yes)" },
  { "/home", "heartbeatd.service does not see /home (ProtectHome=yes)" },
  { "/root", "heartbeatd.service does not see /root (ProtectHome=yes)" },
  { "/run/user", "heartbeatd.service does not see /run/user (ProtectHome=yes)" },
};

/**
 * hb_config_check_events_file:
 * @path: an absolute path, as [log] events-file= gives it
 * @flags: %HB_CONFIG_LOAD_SYSTEM: refuse a directory the system service
 *   has a private copy of or does not see (/tmp, /var/tmp, /dev, /home,
 *   /root, /run/user); %HB_CONFIG_LOAD_CHECK_WRITABLE: refuse a file this
 *   process could not create or append to (its directory must exist)
 * @error: return location for a #GError
 *
 * Returns: %TRUE, or %FALSE with @error set (%G_KEY_FILE_ERROR_INVALID_VALUE)
 */
gboolean
hb_config_check_events_file (const char        *path,
                             HbConfigLoadFlags  flags,
                             GError           **error)
{
  g_autofree char *canonical = g_canonicalize_filename (path, "/");
  g_autofree char *dir = g_path_get_dirname (canonical);
  char *resolved = realpath (dir, NULL);
  g_autofree char *real_dir = g_strdup (resolved);

  free (resolved);
  if (flags & HB_CONFIG_LOAD_SYSTEM)
    for (gsize i = 0; i < G_N_ELEMENTS (service_private_dirs); i++)
      if (is_under (dir, service_private_dirs[i].dir) ||
          (real_dir && is_under (real_dir, service_private_dirs[i].dir)))
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                       "“%s” is in %s: %s; use a directory such as /var/log/heartbeat "
                       "(the service's LogsDirectory=)", path, service_private_dirs[i].dir,
                       service_private_dirs[i].why);
          return FALSE;
        }
  if (flags & HB_CONFIG_LOAD_CHECK_WRITABLE)
    {
      int saved;

      /* the service's LogsDirectory=, which systemd creates when it
       * starts the service: missing before its first start */
      if ((flags & HB_CONFIG_LOAD_SYSTEM) && !g_file_test (dir, G_FILE_TEST_EXISTS) &&
          strcmp (dir, HB_LOCALSTATEDIR "/log/heartbeat") == 0)
        return TRUE;
      if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                       "the directory %s does not exist (heartbeatd does not create it)", dir);
          return FALSE;
        }
      if (g_file_test (canonical, G_FILE_TEST_IS_DIR))
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                       "“%s” is a directory", path);
          return FALSE;
        }
      /* the directory too: the file is created there, and renamed there
       * every day */
      if (access (dir, W_OK | X_OK) != 0 ||
          (access (canonical, F_OK) == 0 && access (canonical, W_OK) != 0))
        {
          saved = errno;
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                       "heartbeatd (uid %u) may not write %s in %s: %s%s", (guint) getuid (),
                       canonical, dir, g_strerror (saved),
                       saved == EROFS ? " (under heartbeatd.service only its state directory and "
                                        "/var/log/heartbeat are writable)" : "");
          return FALSE;
        }
    }
  return TRUE;
}

/* What an [alert:NAME]'s ca-file= and token-file= hold. */
typedef struct {
  char         *ca_file;
  GTlsDatabase *tls_database;
  char         *token_file;
  char         *token;
} AlertFiles;

static void
alert_files_free (AlertFiles *files)
{
  g_free (files->ca_file);
  g_clear_object (&files->tls_database);
  g_free (files->token_file);
  if (files->token)
    memset (files->token, 0, strlen (files->token));
  g_free (files->token);
  g_free (files);
}

/* Reads the ca-file= and token-file= of every section with an HTTP action,
 * whatever else is wrong, so that one check lists every problem: each
 * file that cannot be read is a problem at its key's line. Returns
 * "alert:NAME" → AlertFiles. */
static GHashTable *
read_alert_files (Loader            *loader,
                  HbConfigLoadFlags  flags)
{
  GHashTable *all = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) alert_files_free);

  for (guint i = 0; i < loader->alerts->len; i++)
    {
      const char *group = g_ptr_array_index (loader->alerts, i);
      g_autofree char *ca = g_key_file_get_string (loader->merged, group, "ca-file", NULL);
      g_autofree char *token = g_key_file_get_string (loader->merged, group, "token-file", NULL);
      AlertFiles *files;
      g_autoptr(GError) local = NULL;

      if (!g_key_file_has_key (loader->merged, group, "webhook", NULL) &&
          !g_key_file_has_key (loader->merged, group, "alertmanager", NULL))
        continue;   /* check_alerts() says what is wrong */
      files = g_new0 (AlertFiles, 1);
      g_hash_table_insert (all, g_strdup (group), files);
      if (ca)
        {
          g_autofree char *key = g_strconcat (group, "\nca-file", NULL);

          files->ca_file = hb_config_resolve_file (g_strstrip (ca), &local);
          if (files->ca_file && !((flags & HB_CONFIG_LOAD_CHECK_ONLY) && hb_config_is_hidden_credential (files->ca_file)))
            files->tls_database = load_alert_ca (files->ca_file, &local);
          if (local)
            problem (loader, g_hash_table_lookup (loader->where, key), "[%s] ca-file: %s", group, local->message);
          g_clear_error (&local);
        }
      if (token)
        {
          g_autofree char *key = g_strconcat (group, "\ntoken-file", NULL);

          files->token_file = hb_config_resolve_file (g_strstrip (token), &local);
          if (files->token_file &&
              !((flags & HB_CONFIG_LOAD_CHECK_ONLY) && hb_config_is_hidden_credential (files->token_file)))
            files->token = load_alert_token (files->token_file, &local);
          if (local)
            problem (loader, g_hash_table_lookup (loader->where, key), "[%s] token-file: %s", group, local->message);
        }
    }
  return all;
}

/* Gives each alert of @config what read_alert_files() read for it. */
static void
take_alert_files (HbConfig   *config,
                  GHashTable *all)
{
  for (guint i = 0; i < config->alerts->len; i++)
    {
      HbConfigAlert *alert = g_ptr_array_index (config->alerts, i);
      g_autofree char *group = g_strconcat (ALERT_PREFIX, alert->name, NULL);
      AlertFiles *files = g_hash_table_lookup (all, group);

      if (files == NULL)
        continue;
      alert->ca_file = g_steal_pointer (&files->ca_file);
      alert->tls_database = g_steal_pointer (&files->tls_database);
      alert->token_file = g_steal_pointer (&files->token_file);
      alert->token = g_steal_pointer (&files->token);
    }
}

/* What the files say, checked as a whole: a configuration, or NULL with
 * every problem in @problems (if not NULL) and all of them in @error. */
static HbConfig *
finish (Loader            *loader,
        HbConfigLoadFlags  flags,
        GPtrArray         *problems,
        GError           **error)
{
  g_autofree char *events_file = g_key_file_get_string (loader->merged, "log", "events-file", NULL);
  g_autoptr(GHashTable) alert_files = NULL;
  HbConfig *config;

  check_alerts (loader);
  check_schedules (loader);
  check_http (loader);
  if (events_file)
    {
      g_autoptr(GError) local = NULL;

      if (!hb_config_check_events_file (g_strstrip (events_file), flags, &local))
        problem (loader, g_hash_table_lookup (loader->where, "log\nevents-file"),
                 "[log] events-file: %s", local->message);
    }

  alert_files = read_alert_files (loader, flags);
  if (loader->problems->len == 0)
    {
      config = config_from_key_file (loader->merged, loader->agent_ids, loader->files);
      take_alert_files (config, alert_files);
      return config;
    }

  for (guint i = 0; problems && i < loader->problems->len; i++)
    g_ptr_array_add (problems, g_strdup (g_ptr_array_index (loader->problems, i)));
  g_ptr_array_add (loader->problems, NULL);
  {
    g_autofree char *all = g_strjoinv ("\n", (char **) loader->problems->pdata);

    g_set_error_literal (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, all);
  }
  g_ptr_array_remove_index (loader->problems, loader->problems->len - 1);
  return NULL;
}

static int
compare_paths (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static GBytes *
builtin_data (void)
{
  return g_resource_lookup_data (hb_get_resource (), DEFAULT_RESOURCE, 0, NULL);
}

/**
 * hb_config_load_full:
 * @path: the main configuration file
 * @flags: %HB_CONFIG_LOAD_MAIN_OPTIONAL: a missing @path is the built-in
 *   defaults (its drop-ins are still read); and the rules of
 *   hb_config_check_events_file()
 * @problems: (nullable) (element-type utf8): where to add every problem
 *   found, each "FILE:LINE: message" (or "FILE: message")
 * @error: return location for a #GError: all the problems, one a line; or
 *   the main file's error when it cannot be read
 *
 * Reads @path, then every `*.conf` in the directory `@path.d`, in lexical
 * order of their names (a missing directory is fine). Every line of every
 * file is checked, so that one run reports every problem.
 *
 * Returns: (transfer full): the configuration, or %NULL with @error set
 */
HbConfig *
hb_config_load_full (const char        *path,
                     HbConfigLoadFlags  flags,
                     GPtrArray         *problems,
                     GError           **error)
{
  Loader loader;
  g_autofree char *dropin_dir = g_strconcat (path, ".d", NULL);
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GPtrArray) dropins = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  HbConfig *config;

  loader_init (&loader);
  if ((flags & HB_CONFIG_LOAD_MAIN_OPTIONAL) &&
      !g_file_test (path, G_FILE_TEST_EXISTS) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
    {
      g_autoptr(GBytes) bytes = builtin_data ();
      gsize size;
      const char *data = g_bytes_get_data (bytes, &size);

      scan_file (&loader, HB_CONFIG_BUILTIN_NAME, data, size);
    }
  else if (!read_file (&loader, path, error))
    {
      if (problems && error && *error)
        g_ptr_array_add (problems, g_strdup ((*error)->message));
      loader_clear (&loader);
      return NULL;
    }

  dir = g_dir_open (dropin_dir, 0, NULL);
  while (dir && (name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_suffix (name, ".conf") && name[0] != '.')
      g_ptr_array_add (dropins, g_build_filename (dropin_dir, name, NULL));
  g_ptr_array_sort (dropins, compare_paths);
  for (guint i = 0; i < dropins->len; i++)
    read_file (&loader, g_ptr_array_index (dropins, i), NULL);

  config = finish (&loader, flags, problems, error);
  loader_clear (&loader);
  return config;
}

/**
 * hb_config_load:
 * @path: the main configuration file
 * @error: return location for a #GError
 *
 * hb_config_load_full() with no flags: a missing @path is an error.
 *
 * Returns: (transfer full): the configuration, or %NULL with @error set
 */
HbConfig *
hb_config_load (const char *path,
                GError    **error)
{
  return hb_config_load_full (path, HB_CONFIG_LOAD_NONE, NULL, error);
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
  g_autoptr(GBytes) bytes = builtin_data ();
  g_autoptr(GError) error = NULL;
  gsize size;
  const char *data = g_bytes_get_data (bytes, &size);
  HbConfig *config = hb_config_load_from_data (data, size, HB_CONFIG_BUILTIN_NAME, &error);

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
  Loader loader;
  HbConfig *config;

  loader_init (&loader);
  scan_file (&loader, name, data, length);
  config = finish (&loader, HB_CONFIG_LOAD_NONE, NULL, error);
  loader_clear (&loader);
  return config;
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
 * task, thresholds and tags, and a declared agent whose section is gone is
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
        .tags = (const char *const *) declared->tags,
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
