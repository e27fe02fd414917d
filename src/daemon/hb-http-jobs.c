/* hb-http-jobs.c: jobs over HTTP: their runs and the ping URLs
 *
 *   GET /v1/agents/{id}/runs        the agent's run records, oldest first
 *                                   (heartbeat_agent_get_runs() as JSON)
 *   GET|HEAD|POST /ping/…           the ping URLs of Healthchecks.io, so
 *                                   that a crontab line that ends in
 *                                   `curl … https://hc-ping.com/ID` needs
 *                                   only its host name changed:
 *
 *     /ping/ID                  success: ends the open run, or records a
 *                               run known only by its end
 *     /ping/ID/start            a run starts
 *     /ping/ID/fail             failure (exit status unknown)
 *     /ping/ID/N                exit status N (0–255): 0 success, else failure
 *     /ping/ID/log              changes nothing: posted as a `ping-log` event
 *                               (Healthchecks: "does not affect the status")
 *     /ping/KEY/ID[/start|/fail|/log|/N]
 *                               the same with the ping key of
 *                               [http] ping-key-file= (the slug is the id)
 *
 * A POST body (at most HB_HTTP_PING_MAX_BODY bytes, refused with 413 before
 * it is read if larger) is the run's output: its record keeps the last
 * HEARTBEAT_RUN_OUTPUT_MAX bytes, made valid UTF-8. Only agents that exist
 * can be pinged (no agent is created: 404 "not found", as Healthchecks
 * answers for an unknown check); a URL of another shape is 400. The query
 * (Healthchecks' `rid`, `create`) is ignored. The answers are Healthchecks'
 * text: 200 "OK", 400 "invalid url format", 404 "not found"; a refusal of
 * authorization is the JSON error of every other write.
 *
 * Who may ping: with a tokens file, a request with a bearer token of scope
 * ping or write (any agent; hb-http-auth.c), or a ping-key URL (any agent; the key is good for nothing but
 * ping URLs). Without a tokens file (HTTP on loopback only), /ping/ID
 * needs nothing and may ping the agents declared in the configuration and
 * those created over HTTP, as for other writes; a ping-key URL still
 * needs the right key. Keys are compared in constant time. A ping a
 * browser sends for a web page (an `Origin` header, or `Sec-Fetch-Site`
 * other than `none` or `same-origin`) is refused (403): pings are GETs,
 * which any page could otherwise send to a loopback server.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-http-private.h"
#include "hb-config.h"
#include "hb-json.h"

#include <string.h>

#define PING_KEY_MIN 22
#define PING_KEY_MAX 256

/* ------------------------------------------------------------------ */
/* GET /v1/agents/{id}/runs                                            */

void
handle_agent_runs (HbHttp            *self,
                   SoupServerMessage *msg,
                   const char        *id)
{
  HeartbeatAgent *agent = heartbeat_monitor_lookup (self->monitor, id);
  g_autoptr(GVariant) runs = NULL;
  g_autoptr(JsonNode) node = NULL;

  if (agent == NULL)
    {
      send_error (msg, SOUP_STATUS_NOT_FOUND, "No agent with id “%s”", id);
      return;
    }
  runs = g_variant_ref_sink (heartbeat_agent_get_runs (agent));
  node = hb_json_from_variant (runs);
  send_json (msg, SOUP_STATUS_OK, node);
}

/* ------------------------------------------------------------------ */
/* The ping key                                                        */

static gboolean
is_url_safe (const char *text)
{
  for (const char *p = text; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_')
      return FALSE;
  return TRUE;
}

/**
 * hb_http_set_ping_key_file:
 * @http: a #HbHttp
 * @path: (nullable): a file holding one ping key (22 to 256 characters of
 *   `[A-Za-z0-9_-]`; `#` comment lines), readable by its owner only;
 *   %NULL for none
 * @error: return location for a #GError
 *
 * The key enables the ping URLs `/ping/KEY/ID…` and is good for nothing
 * else.
 *
 * Returns: %TRUE, or %FALSE with @error set (the old key is kept)
 */
gboolean
hb_http_set_ping_key_file (HbHttp     *http,
                           const char *path,
                           GError    **error)
{
  g_autofree char *contents = NULL;
  g_auto(GStrv) lines = NULL;
  const char *key = NULL;

  g_return_val_if_fail (HB_IS_HTTP (http), FALSE);

  if (path == NULL)
    {
      g_clear_pointer (&http->ping_key, g_free);
      return TRUE;
    }
  if (!hb_config_check_file (path, "a ping key file", 64 * 1024, error) ||
      !g_file_get_contents (path, &contents, NULL, error))
    return FALSE;

  lines = g_strsplit (contents, "\n", -1);
  for (gsize i = 0; lines[i]; i++)
    {
      char *line = g_strstrip (lines[i]);

      if (*line == '\0' || *line == '#')
        continue;
      if (key != NULL)
        {
          g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: more than one ping key", path);
          return FALSE;
        }
      key = line;
    }
  if (key == NULL)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: no ping key in the file", path);
      return FALSE;
    }
  if (strlen (key) < PING_KEY_MIN || strlen (key) > PING_KEY_MAX || !is_url_safe (key))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   "%s: a ping key is %d to %d characters of A-Z, a-z, 0-9, “-” and “_”",
                   path, PING_KEY_MIN, PING_KEY_MAX);
      return FALSE;
    }
  g_free (http->ping_key);
  http->ping_key = g_strdup (key);
  return TRUE;
}

/* Whether @presented is the ping key, in a time that depends on the
 * length of @presented only. */
static gboolean
is_ping_key (HbHttp     *self,
             const char *presented)
{
  const char *key = self->ping_key;
  gsize lp, lk;
  guint8 diff;

  if (key == NULL)
    return FALSE;
  lp = strlen (presented);
  lk = strlen (key);
  diff = lp != lk;
  for (gsize i = 0; i < lp; i++)
    diff |= (guint8) (presented[i] ^ key[i % lk]);
  return diff == 0;
}

/* ------------------------------------------------------------------ */
/* The ping URLs                                                       */

typedef enum {
  PING_SUCCESS,
  PING_START,
  PING_FAIL,
  PING_LOG,
  PING_EXIT,
} PingKind;

typedef enum {
  SIGNAL_NONE,       /* not a signal: a slug */
  SIGNAL_OK,
  SIGNAL_BAD,        /* digits, but no exit status */
} SignalParse;

static SignalParse
parse_signal (const char *text,
              PingKind   *kind,
              int        *exit_status)
{
  gsize length = strlen (text);
  int value = 0;

  *exit_status = -1;
  if (strcmp (text, "start") == 0)
    *kind = PING_START;
  else if (strcmp (text, "fail") == 0)
    *kind = PING_FAIL;
  else if (strcmp (text, "log") == 0)
    *kind = PING_LOG;
  else if (length > 0 && strspn (text, "0123456789") == length)
    {
      if (length > 3)
        return SIGNAL_BAD;
      for (const char *p = text; *p; p++)
        value = value * 10 + (*p - '0');
      if (value > 255)
        return SIGNAL_BAD;
      *kind = PING_EXIT;
      *exit_status = value;
    }
  else
    return SIGNAL_NONE;
  return SIGNAL_OK;
}

/* Whether @path names a ping URL: for hb-http-guards.c and hb-http.c */
gboolean
hb_http_is_ping_path (const char *path)
{
  return strncmp (path, "/ping/", 6) == 0;
}

/* Whether the ping URL @path uses the ping key: then it needs no token. */
gboolean
hb_http_ping_has_key (HbHttp     *self,
                      const char *path)
{
  g_autofree char *first = NULL;
  const char *start = path + 6, *end;

  if (!hb_http_is_ping_path (path) || self->ping_key == NULL)
    return FALSE;
  end = strchr (start, '/');
  if (end == NULL)
    return FALSE;
  first = g_strndup (start, (gsize) (end - start));
  return is_ping_key (self, first);
}

static void
send_text (SoupServerMessage *msg,
           guint              status,
           const char        *text)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "text/plain; charset=utf-8", SOUP_MEMORY_STATIC, text, strlen (text));
}

/* The tail of @data, at most HEARTBEAT_RUN_OUTPUT_MAX bytes from a
 * character's start, made valid UTF-8. */
static char *
output_tail (const char *data,
             gsize       length)
{
  gsize from = length > HEARTBEAT_RUN_OUTPUT_MAX ? length - HEARTBEAT_RUN_OUTPUT_MAX : 0;

  while (from < length && from > 0 && ((guchar) data[from] & 0xc0) == 0x80)
    from++;
  return g_utf8_make_valid (data + from, (gssize) (length - from));
}

/* /log: Healthchecks records it without changing the check; the
 * monitor keeps no such thing, so it is passed on as an event
 * (`ping-log` on /v1/events and in the event log) and changes nothing. */
static gboolean
post_log (HbHttp     *self,
          const char *id,
          const char *body,
          gsize       length,
          GError    **error)
{
  g_autofree char *output = output_tail (body ? body : "", body ? length : 0);
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "agent", g_variant_new_string (id));
  if (*output)
    g_variant_builder_add (&b, "{sv}", "output", g_variant_new_string (output));
  return heartbeat_monitor_post_event (self->monitor, "ping-log", g_variant_builder_end (&b), error);
}

/* Whether a browser sent @msg for a page of another origin */
static gboolean
from_web_page (SoupServerMessage *msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *site = soup_message_headers_get_one (headers, "Sec-Fetch-Site");

  if (soup_message_headers_get_one (headers, "Origin") != NULL)
    return TRUE;
  return site != NULL && g_ascii_strcasecmp (site, "none") != 0 && g_ascii_strcasecmp (site, "same-origin") != 0;
}

/* GET, HEAD or POST /ping/…: see the top of the file. */
void
handle_ping (HbHttp            *self,
             SoupServerMessage *msg,
             const char        *path)
{
  const char *method = soup_server_message_get_method (msg);
  g_auto(GStrv) parts = g_strsplit (path + 6, "/", -1);
  guint n = g_strv_length (parts);
  gboolean by_key = FALSE, privileged = FALSE;
  PingKind kind = PING_SUCCESS;
  int exit_status = -1;
  const char *id = NULL, *signal = NULL;
  const char *body = NULL;
  gsize body_length = 0;
  HeartbeatAgent *agent;
  g_autoptr(GError) error = NULL;
  gboolean done;

  if (strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0 && strcmp (method, "POST") != 0)
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow", "GET, HEAD, POST");
      send_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "%s is not allowed here (allowed: GET, HEAD, POST)", method);
      return;
    }
  for (guint i = 0; i < n; i++)
    if (*parts[i] == '\0')
      n = 0;   /* an empty segment: malformed */
  if (n == 0 || n > 3)
    {
      send_text (msg, SOUP_STATUS_BAD_REQUEST, "invalid url format");
      return;
    }

  /* /ping/KEY/ID[/signal] or /ping/ID[/signal] */
  if (n >= 2 && is_ping_key (self, parts[0]))
    {
      by_key = TRUE;
      id = parts[1];
      signal = n == 3 ? parts[2] : NULL;
    }
  else if (n == 1)
    id = parts[0];
  else
    {
      SignalParse last = parse_signal (parts[n - 1], &kind, &exit_status);

      if (last == SIGNAL_BAD || (n == 3 && last == SIGNAL_NONE))
        {
          send_text (msg, SOUP_STATUS_BAD_REQUEST, "invalid url format");
          return;
        }
      if (n == 3 || last == SIGNAL_NONE)
        {
          /* a ping-key URL with another key */
          send_error (msg, SOUP_STATUS_UNAUTHORIZED,
                      self->ping_key ? "This is not the ping key ([http] ping-key-file=)"
                                     : "Ping-key URLs need [http] ping-key-file=, and none is configured");
          return;
        }
      id = parts[0];
      signal = parts[1];
    }
  if (signal && parse_signal (signal, &kind, &exit_status) != SIGNAL_OK)
    {
      send_text (msg, SOUP_STATUS_BAD_REQUEST, "invalid url format");
      return;
    }

  /* A ping from a web page is refused: without tokens, any page a local
   * user opens could otherwise mark a job done or failed with an <img>
   * (a GET) or a form (a POST). Browsers say where a request comes from;
   * curl, wget and scripts say nothing of the kind, and a URL typed in
   * the address bar is Sec-Fetch-Site: none. */
  if (from_web_page (msg))
    {
      send_error (msg, SOUP_STATUS_FORBIDDEN, "A ping from a web page (Origin, or Sec-Fetch-Site other than "
                  "none or same-origin) is refused");
      return;
    }

  /* who may ping what: a key or a token any agent; without tokens
   * (loopback) the declared ones and those created over HTTP */
  if (by_key || (hb_http_granted (msg) & HB_HTTP_SCOPE_PING))
    privileged = TRUE;
  else if (self->tokens)
    {
      /* hb-http-guards.c refused it already (hb_http_needed_scope()) */
      send_error (msg, SOUP_STATUS_UNAUTHORIZED, "A ping needs the ping key or a token of scope ping");
      return;
    }
  agent = heartbeat_monitor_lookup (self->monitor, id);
  if (agent == NULL)
    {
      send_text (msg, SOUP_STATUS_NOT_FOUND, "not found");
      return;
    }
  if (!privileged && !heartbeat_agent_is_declared (agent) &&
      heartbeat_agent_get_owner_uid (agent) != HB_HTTP_OWNER_UID)
    {
      send_error (msg, SOUP_STATUS_FORBIDDEN,
                  "Agent “%s” belongs to uid %u; without a token a ping may change only declared agents "
                  "and those created over HTTP", id, heartbeat_agent_get_owner_uid (agent));
      return;
    }

  if (strcmp (method, "POST") == 0)
    {
      SoupMessageBody *request = soup_server_message_get_request_body (msg);

      body = request->data;
      body_length = (gsize) request->length;
      if (body_length > HB_HTTP_PING_MAX_BODY)
        {
          send_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "The body is larger than %d bytes",
                      HB_HTTP_PING_MAX_BODY);
          return;
        }
    }

  switch (kind)
    {
    case PING_START:
      done = heartbeat_monitor_start_run (self->monitor, id, 0, &error);
      break;
    case PING_LOG:
      done = post_log (self, id, body, body_length, &error);
      break;
    case PING_SUCCESS:
    case PING_FAIL:
    case PING_EXIT:
    default:
      {
        HeartbeatRunEnd end = { 0 };

        end.success = kind == PING_SUCCESS || (kind == PING_EXIT && exit_status == 0);
        end.exit_status = exit_status;
        end.output = body_length ? body : NULL;
        end.output_length = (gssize) body_length;
        done = heartbeat_monitor_finish_run (self->monitor, id, &end, &error);
      }
      break;
    }
  if (!done)
    {
      send_monitor_error (msg, error);
      return;
    }
  if (kind != PING_LOG)
    mark_caller_change (msg);
  send_text (msg, SOUP_STATUS_OK, "OK");
}
