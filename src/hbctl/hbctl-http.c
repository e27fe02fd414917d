/* hbctl-http.c: heartbeatd's HTTP API at --url, as a transport
 *
 * A small HTTP client that answers the calls of hbctl-transport.h with
 * the D-Bus types: the JSON of GET /v1/agents (every page), GET
 * /v1/agents/ID[/history|/runs], GET /health and /api/heartbeat/status,
 * GET /v1/host, and POST /v1/agents/ID/beat|pause|resume, turned into aa{sv}, a{sv} and
 * a(ts). Runs are not started or finished over HTTP by hbctl (`run` is a
 * D-Bus verb; scripts elsewhere have the ping URLs).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <string.h>

#include "hb-json-text.h"
#include "hb-token.h"
#include "hbctl.h"
#include "hbctl-output.h"
#include "hbctl-transport.h"

/* What hbctl takes from the server at --url, which it trusts no more than
 * heartbeatd trusts its clients: every answer is read up to a bound and
 * checked as text (hb_json_parse(): UTF-8, nesting, NUL) before it is
 * parsed, and a listing follows at most so many pages. */
#define ANSWER_MAX_BYTES   ((gsize) 16 * 1024 * 1024)    /* one answer (a page of heartbeatd's: ~1 MiB) */
#define LISTING_MAX_BYTES  ((gsize) 64 * 1024 * 1024)    /* all the pages of one listing */
#define LISTING_MAX_PAGES  1000
#define LISTING_MAX_AGENTS 500000                        /* what memory holds: ~1 GB for a table */
#define LINK_MAX_LENGTH    2048

/* What hbctl_http_prepare() made of the options: one session for every
 * call of this hbctl (the pages of a listing go over the same
 * connection), verifying the server against --cacert or the system's
 * trust store; the token; the client certificate. */
static struct {
  SoupSession     *session;
  char            *token;
  char            *token_source;       /* where it came from, for messages */
  GTlsCertificate *client_certificate;
  char            *challenge;          /* the last answer's WWW-Authenticate, or NULL */
} http;

static SoupSession *
http_session (void)
{
  if (http.session == NULL)
    http.session = soup_session_new_with_options ("timeout", 25, NULL);
  return http.session;
}

/* The first line of @path, white space stripped; NULL with *problem set
 * if it cannot be read, is longer than HB_TOKEN_MAX_BYTES or is empty.
 * Reads no further than that line (a FIFO, /dev/stdin). */
static char *
read_token_file (const char  *path,
                 char       **problem)
{
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autoptr(GError) error = NULL;
  g_autoptr(GFileInputStream) stream = g_file_read (file, NULL, &error);
  g_autoptr(GString) line = g_string_new (NULL);
  char buffer[512];

  if (stream == NULL)
    {
      /* TRANSLATORS: --token-file FILE: the file, then why */
      *problem = g_strdup_printf (_("cannot read the token file %s: %s"), path, error->message);
      return NULL;
    }
  for (;;)
    {
      gssize n = g_input_stream_read (G_INPUT_STREAM (stream), buffer, sizeof buffer, NULL, &error);
      const char *newline;

      if (n < 0)
        {
          *problem = g_strdup_printf (_("cannot read the token file %s: %s"), path, error->message);
          return NULL;
        }
      newline = memchr (buffer, '\n', (gsize) n);
      g_string_append_len (line, buffer, newline ? newline - buffer : n);
      if (line->len > HB_TOKEN_MAX_BYTES)
        {
          /* TRANSLATORS: the file, then a number of bytes */
          *problem = g_strdup_printf (_("the token file %s does not begin with a token (its first line is longer "
                                        "than %u bytes)"), path, HB_TOKEN_MAX_BYTES);
          return NULL;
        }
      if (n == 0 || newline)
        break;
    }
  g_strstrip (line->str);
  if (line->str[0] == '\0')
    {
      *problem = g_strdup_printf (_("the token file %s holds no token (its first line is empty)"), path);
      return NULL;
    }
  return g_strdup (line->str);
}

/* The token, from the first source given: --token, --token-file,
 * $HBCTL_TOKEN (set and not empty); NULL with nothing in *problem if
 * there is none. */
static char *
find_token (char **problem)
{
  const char *from_env = g_getenv ("HBCTL_TOKEN");
  g_autofree char *token = NULL;
  g_autofree char *source = NULL;

  if (opt.token)
    {
      token = g_strdup (opt.token);
      source = g_strdup ("--token");
    }
  else if (opt.token_file)
    {
      token = read_token_file (opt.token_file, problem);
      if (token == NULL)
        return NULL;
      source = g_strdup_printf ("--token-file %s", opt.token_file);
    }
  else if (from_env && *from_env)
    {
      token = g_strdup (from_env);
      source = g_strdup ("$HBCTL_TOKEN");
    }
  else
    return NULL;

  http.token_source = g_strdup (source);
  if (!hb_token_is_valid (token))
    {
      /* TRANSLATORS: where the token came from (--token, --token-file FILE or $HBCTL_TOKEN), then a number of bytes */
      *problem = g_strdup_printf (_("the token of %s is not one: a token is 1 to %u printable ASCII characters, "
                                    "without spaces"), source, HB_TOKEN_MAX_BYTES);
      return NULL;
    }
  return g_steal_pointer (&token);
}

/* --cacert: a database of the certificates in @path only (at least one) */
static GTlsDatabase *
load_ca_file (const char  *path,
              char       **problem)
{
  g_autoptr(GError) error = NULL;
  GList *certificates = g_tls_certificate_list_new_from_file (path, &error);
  g_autofree char *absolute = NULL;
  GTlsDatabase *database;

  if (error)
    {
      /* TRANSLATORS: --cacert FILE: the file, then why */
      *problem = g_strdup_printf (_("cannot read the CA certificates of --cacert %s: %s"), path, error->message);
      return NULL;
    }
  if (certificates == NULL)
    {
      *problem = g_strdup_printf (_("cannot read the CA certificates of --cacert %s: %s"), path,
                                  _("there is no PEM certificate in it"));
      return NULL;
    }
  g_list_free_full (certificates, g_object_unref);
  /* (glib-networking wants it absolute) */
  absolute = g_canonicalize_filename (path, NULL);
  database = g_tls_file_database_new (absolute, &error);
  if (database == NULL)
    *problem = g_strdup_printf (_("cannot read the CA certificates of --cacert %s: %s"), path, error->message);
  return database;
}

gboolean
hbctl_http_prepare (char **problem)
{
  g_autoptr(GUri) uri = g_uri_parse (opt.url, G_URI_FLAGS_NONE, NULL);
  const char *scheme = uri ? g_uri_get_scheme (uri) : NULL;
  gboolean https = scheme && g_ascii_strcasecmp (scheme, "https") == 0;
  SoupSession *session;

  /* (a URL that is not one is said by the first call, as before) */
  if (!https && (opt.cacert || opt.cert || opt.key))
    {
      /* TRANSLATORS: the URL */
      *problem = g_strdup_printf (_("--cacert, --cert and --key need an https:// URL, not %s"), opt.url);
      return FALSE;
    }
  if (opt.key && !opt.cert)
    {
      *problem = g_strdup (_("--key FILE goes with --cert FILE"));
      return FALSE;
    }

  http.token = find_token (problem);
  if (http.token == NULL && *problem)
    return FALSE;

  session = http_session ();
  if (opt.cacert)
    {
      g_autoptr(GTlsDatabase) database = load_ca_file (opt.cacert, problem);

      if (database == NULL)
        return FALSE;
      soup_session_set_tls_database (session, database);
    }
  if (opt.cert)
    {
      g_autoptr(GError) error = NULL;

      http.client_certificate = g_tls_certificate_new_from_files (opt.cert, opt.key ? opt.key : opt.cert, &error);
      if (http.client_certificate == NULL)
        {
          /* TRANSLATORS: the certificate's file, the key's, then why */
          *problem = g_strdup_printf (_("cannot read the client certificate %s with the key %s: %s"),
                                      opt.cert, opt.key ? opt.key : opt.cert, error->message);
          return FALSE;
        }
    }
  return TRUE;
}

/* What the server's certificate failed, in words: @errors as
 * SoupMessage::accept-certificate saw them. */
static char *
certificate_problem (GTlsCertificateFlags  errors,
                     const char           *host)
{
  g_autoptr(GPtrArray) why = g_ptr_array_new_with_free_func (g_free);

  if (errors & G_TLS_CERTIFICATE_UNKNOWN_CA)
    {
      if (opt.cacert)
        /* TRANSLATORS: the --cacert file */
        g_ptr_array_add (why, g_strdup_printf (_("it is not trusted (not signed by a CA of %s)"), opt.cacert));
      else
        g_ptr_array_add (why, g_strdup (_("it is not trusted (not signed by a CA of the system's trust store; "
                                          "see --cacert)")));
    }
  if (errors & G_TLS_CERTIFICATE_BAD_IDENTITY)
    /* TRANSLATORS: the host of the URL */
    g_ptr_array_add (why, g_strdup_printf (_("it does not match the host name %s"), host));
  if (errors & G_TLS_CERTIFICATE_EXPIRED)
    g_ptr_array_add (why, g_strdup (_("it has expired")));
  if (errors & G_TLS_CERTIFICATE_NOT_ACTIVATED)
    g_ptr_array_add (why, g_strdup (_("it is not valid yet (is the clock right?)")));
  if (errors & G_TLS_CERTIFICATE_REVOKED)
    g_ptr_array_add (why, g_strdup (_("it has been revoked")));
  if (errors & G_TLS_CERTIFICATE_INSECURE)
    g_ptr_array_add (why, g_strdup (_("its algorithm is insecure")));
  if (why->len == 0)
    g_ptr_array_add (why, g_strdup (_("it cannot be verified")));
  g_ptr_array_add (why, NULL);
  return g_strjoinv ("; ", (char **) why->pdata);
}

/* SoupMessage::accept-certificate: the certificate failed verification;
 * what it failed is kept, and it is refused. */
static gboolean
on_accept_certificate (SoupMessage          *msg,
                       GTlsCertificate      *certificate,
                       GTlsCertificateFlags  errors,
                       gpointer              user_data)
{
  GTlsCertificateFlags *seen = user_data;

  *seen |= errors;
  return FALSE;
}

/* The words and exit status for @error, which soup_session_send() gave
 * for @msg: a certificate hbctl refused or a TLS handshake that failed
 * (EXIT_REFUSED), else heartbeatd not reached (EXIT_NO_DAEMON). */
static char *
send_problem (SoupMessage          *msg,
              const GError         *error,
              GTlsCertificateFlags  certificate_errors,
              int                  *exit_status)
{
  *exit_status = EXIT_REFUSED;
  if (certificate_errors != 0 ||
      (g_error_matches (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE) && opt.cert == NULL))
    {
      g_autofree char *why = certificate_problem (certificate_errors,
                                                  g_uri_get_host (soup_message_get_uri (msg)));

      /* TRANSLATORS: the URL, then why (e.g. "it is not trusted (…)") */
      return g_strdup_printf (_("refusing the certificate of %s: %s"), opt.url, why);
    }
  if (g_error_matches (error, G_TLS_ERROR, G_TLS_ERROR_CERTIFICATE_REQUIRED))
    /* TRANSLATORS: the URL */
    return g_strdup_printf (_("%s asks for a client certificate: give --cert FILE and --key FILE"), opt.url);
  if (g_error_matches (error, G_TLS_ERROR, G_TLS_ERROR_UNAVAILABLE))
    /* TRANSLATORS: the URL, then why */
    return g_strdup_printf (_("cannot speak TLS with %s: %s (is glib-networking installed?)"), opt.url,
                            error->message);
  if (error->domain == G_TLS_ERROR && opt.cert)
    /* TRANSLATORS: the URL, why, then the --cert file */
    return g_strdup_printf (_("the TLS handshake with %s failed: %s (is the client certificate %s one it takes?)"),
                            opt.url, error->message, opt.cert);
  if (error->domain == G_TLS_ERROR)
    /* TRANSLATORS: the URL, then why */
    return g_strdup_printf (_("the TLS handshake with %s failed: %s (does it speak TLS? does it want a client "
                              "certificate, --cert FILE --key FILE?)"), opt.url, error->message);
  /* a server that wants a client certificate and does not take the
   * one given may, in TLS 1.3, hang up only after the handshake */
  if (opt.cert && (error->domain == SOUP_SESSION_ERROR ||
                   g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED) ||
                   g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE) ||
                   g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT) ||
                   g_error_matches (error, G_IO_ERROR, G_IO_ERROR_FAILED)))
    /* TRANSLATORS: the URL, why, then the --cert file */
    return g_strdup_printf (_("%s hung up: %s (is the client certificate %s one it takes?)"),
                            opt.url, error->message, opt.cert);
  *exit_status = EXIT_NO_DAEMON;
  /* TRANSLATORS: the URL, then why (e.g. "Connection refused") */
  return g_strdup_printf (_("cannot reach %s: %s"), opt.url, error->message);
}

/* Prints @message, or hands it over in *failure if that is not NULL. */
static void
fail_with (char  *message,
           char **failure)
{
  if (failure)
    *failure = message;
  else
    {
      hbctl_print_error ("%s", message);
      g_free (message);
    }
}

/* The body of @msg's answer from @stream, at most @max_bytes; NULL with
 * *too_large set if it is larger (said before reading when Content-Length
 * tells), or with @error set if it cannot be read. */
static GBytes *
read_answer (SoupMessage  *msg,
             GInputStream *stream,
             gsize         max_bytes,
             gboolean     *too_large,
             GError      **error)
{
  g_autoptr(GByteArray) body = g_byte_array_new ();
  SoupMessageHeaders *headers = soup_message_get_response_headers (msg);
  guint8 buffer[65536];

  *too_large = FALSE;
  if (soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CONTENT_LENGTH &&
      (guint64) soup_message_headers_get_content_length (headers) > max_bytes)
    {
      *too_large = TRUE;
      return NULL;
    }
  for (;;)
    {
      gssize n = g_input_stream_read (stream, buffer, sizeof buffer, NULL, error);

      if (n < 0)
        return NULL;
      if (n == 0)
        break;
      if ((gsize) n > max_bytes - body->len)
        {
          *too_large = TRUE;
          return NULL;
        }
      g_byte_array_append (body, buffer, (guint) n);
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&body));
}

/* Calls the HTTP API; returns the parsed JSON reply (or a JSON null for an
 * empty one) and the status in *status, or NULL with *exit_status set when
 * the daemon cannot be reached (EXIT_NO_DAEMON) or answers with what hbctl
 * does not take (larger than @max_bytes, not JSON, nested too deeply:
 * EXIT_REFUSED): the message is printed, or returned in *failure if that
 * is not NULL. *link gets the answer's Link header (NULL if none) and
 * *size its size, if they are not NULL. */
static JsonNode *
remote_call_full (const char *method,
                  const char *path,
                  JsonNode   *body,
                  gsize       max_bytes,
                  guint      *status,
                  int        *exit_status,
                  char      **failure,
                  char      **link,
                  gsize      *size)
{
  g_autofree char *base = g_str_has_suffix (opt.url, "/") ? g_strndup (opt.url, strlen (opt.url) - 1)
                                                          : g_strdup (opt.url);
  g_autofree char *uri = g_strconcat (base, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new (method, uri);
  g_autoptr(GInputStream) stream = NULL;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;
  GTlsCertificateFlags certificate_errors = 0;
  const char *link_header;
  JsonNode *root;
  gboolean too_large;
  gsize length;

  if (msg == NULL)
    {
      fail_with (g_strdup_printf (_("\"%s\" is not a URL (e.g. http://127.0.0.1:8765)"), opt.url), failure);
      *exit_status = EXIT_USAGE;
      return NULL;
    }
  if (body)
    {
      g_autoptr(JsonGenerator) generator = json_generator_new ();
      g_autofree char *text = NULL;
      g_autoptr(GBytes) bytes = NULL;

      json_generator_set_root (generator, body);
      text = json_generator_to_data (generator, &length);
      bytes = g_bytes_new_take (g_steal_pointer (&text), length);
      soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
    }
  /* the token goes to the server at --url only: never where a redirect
   * would lead (a 3xx is an answer like any other) */
  soup_message_add_flags (msg, SOUP_MESSAGE_NO_REDIRECT);
  if (http.token)
    {
      g_autofree char *header = g_strconcat ("Bearer ", http.token, NULL);
      soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", header);
    }
  if (http.client_certificate)
    soup_message_set_tls_client_certificate (msg, http.client_certificate);
  g_signal_connect (msg, "accept-certificate", G_CALLBACK (on_accept_certificate), &certificate_errors);

  stream = soup_session_send (http_session (), msg, NULL, &error);
  if (stream == NULL)
    {
      fail_with (send_problem (msg, error, certificate_errors, exit_status), failure);
      return NULL;
    }
  *status = soup_message_get_status (msg);
  g_free (http.challenge);
  http.challenge = g_strdup (soup_message_headers_get_one (soup_message_get_response_headers (msg),
                                                           "WWW-Authenticate"));
  reply = read_answer (msg, stream, max_bytes, &too_large, &error);
  if (reply == NULL && too_large)
    {
      /* TRANSLATORS: the URL, the HTTP status, then a number of MiB */
      fail_with (g_strdup_printf (_("%s answered %u with more than %u MiB, more than hbctl reads "
                                    "(is it heartbeatd's HTTP API?)"), opt.url, *status,
                                  (guint) (max_bytes / (1024 * 1024))), failure);
      *exit_status = EXIT_REFUSED;
      return NULL;
    }
  if (reply == NULL)
    {
      fail_with (g_strdup_printf (_("cannot reach %s: %s"), opt.url, error->message), failure);
      *exit_status = EXIT_NO_DAEMON;
      return NULL;
    }
  if (size)
    *size = g_bytes_get_size (reply);
  if (g_bytes_get_size (reply) == 0)
    root = json_node_new (JSON_NODE_NULL);
  else if ((root = hb_json_parse (g_bytes_get_data (reply, NULL), g_bytes_get_size (reply), &error)) == NULL)
    {
      /* TRANSLATORS: the URL, the HTTP status, then what is wrong with the answer */
      fail_with (g_strdup_printf (_("%s answered %u with something that is not JSON hbctl takes: %s "
                                    "(is it heartbeatd's HTTP API?)"), opt.url, *status, error->message), failure);
      *exit_status = EXIT_REFUSED;
      return NULL;
    }
  link_header = soup_message_headers_get_list (soup_message_get_response_headers (msg), "Link");
  if (link)
    *link = g_strdup (link_header);
  return root;
}

static JsonNode *
remote_call (const char *method,
             const char *path,
             JsonNode   *body,
             guint      *status,
             int        *exit_status,
             char      **failure)
{
  return remote_call_full (method, path, body, ANSWER_MAX_BYTES, status, exit_status, failure, NULL, NULL);
}

/* For a 401 or 403 with a Bearer challenge (RFC 6750): what it means for
 * the token sent, as " (…)" to follow the server's message @text (NULL:
 * none); "" if nothing. */
static char *
auth_hint (guint       status,
           const char *text)
{
  g_autoptr(GHashTable) params = NULL;
  const char *error, *scope;

  if ((status != SOUP_STATUS_UNAUTHORIZED && status != SOUP_STATUS_FORBIDDEN) || http.challenge == NULL ||
      g_ascii_strncasecmp (http.challenge, "Bearer", 6) != 0)
    return g_strdup ("");
  params = soup_header_parse_param_list (http.challenge + 6);
  error = g_hash_table_lookup (params, "error");
  scope = g_hash_table_lookup (params, "scope");
  /* (heartbeatd's message names the scope already) */
  if (g_strcmp0 (error, "insufficient_scope") == 0 && scope && http.token && (text == NULL || !strstr (text, scope)))
    /* TRANSLATORS: the scope the server wants (read, write, ping) */
    return g_strdup_printf (_(" (the token has no scope \"%s\")"), scope);
  if (g_strcmp0 (error, "invalid_token") == 0 && http.token)
    /* TRANSLATORS: where the token came from (--token, --token-file FILE, $HBCTL_TOKEN) */
    return g_strdup_printf (_(" (it does not know the token of %s)"), http.token_source);
  if (status == SOUP_STATUS_UNAUTHORIZED && http.token == NULL)
    return g_strdup (_(" (it wants a token: --token-file FILE or $HBCTL_TOKEN)"));
  return g_strdup ("");
}

/* The message of an HTTP API error reply, printed; returns the exit status. */
static int
remote_error (JsonNode *reply, guint status)
{
  JsonNode *error = JSON_NODE_HOLDS_OBJECT (reply) ? json_object_get_member (json_node_get_object (reply), "error")
                                                   : NULL;
  JsonNode *message = error && JSON_NODE_HOLDS_OBJECT (error)
                      ? json_object_get_member (json_node_get_object (error), "message") : NULL;
  const char *text = message && JSON_NODE_HOLDS_VALUE (message) && json_node_get_value_type (message) == G_TYPE_STRING
                     ? json_node_get_string (message) : NULL;
  g_autofree char *hint = auth_hint (status, text);

  hbctl_print_error ("%u: %s%s", status, text ? text : soup_status_get_phrase (status), hint);
  return EXIT_REFUSED;
}

/* A JSON value of an answer as the "v" json_gvariant_deserialize() makes
 * of it (b, x, d, s, av, a{sv}; null as an empty mv), in time linear in
 * its size: json-glib's own builds arrays with g_list_append(), which kept
 * hbctl busy for minutes on 300,000 agents. Depth is bounded by
 * hb_json_parse(). Floating. */
static GVariant *variant_from_json (JsonNode *node);

static GVariant *
vardict_from_json (JsonObject *object)
{
  g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autoptr(GList) members = json_object_get_members (object);

  for (GList *l = members; l; l = l->next)
    g_variant_builder_add (&b, "{sv}", (const char *) l->data,
                           variant_from_json (json_object_get_member (object, l->data)));
  return g_variant_builder_end (&b);
}

static GVariant *
variant_from_json (JsonNode *node)
{
  switch (JSON_NODE_TYPE (node))
    {
    case JSON_NODE_OBJECT:
      return vardict_from_json (json_node_get_object (node));
    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);
        guint n = json_array_get_length (array);
        g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("av"));

        for (guint i = 0; i < n; i++)
          g_variant_builder_add (&b, "v", variant_from_json (json_array_get_element (array, i)));
        return g_variant_builder_end (&b);
      }
    case JSON_NODE_VALUE:
      switch (json_node_get_value_type (node))
        {
        case G_TYPE_BOOLEAN:
          return g_variant_new_boolean (json_node_get_boolean (node));
        case G_TYPE_INT64:
          return g_variant_new_int64 (json_node_get_int (node));
        case G_TYPE_DOUBLE:
          return g_variant_new_double (json_node_get_double (node));
        case G_TYPE_STRING:
          /* UTF-8 and without NUL: hb_json_parse() */
          return g_variant_new_string (json_node_get_string (node));
        default:
          break;
        }
      G_GNUC_FALLTHROUGH;
    case JSON_NODE_NULL:
    default:
      return g_variant_new_maybe (G_VARIANT_TYPE_VARIANT, NULL);
    }
}

/* An agent of an answer (a JSON object) as the D-Bus a{sv}, or NULL. */
static GVariant *
agent_from_json (JsonNode *node)
{
  return JSON_NODE_HOLDS_OBJECT (node) ? g_variant_ref_sink (vardict_from_json (json_node_get_object (node))) : NULL;
}

/* The target of the rel="next" link of a Link header (RFC 8288), NULL if
 * there is none; FALSE if the header cannot be read. */
static gboolean
link_next (const char *header,
           char      **next)
{
  const char *p = header;

  *next = NULL;
  for (;;)
    {
      g_autofree char *target = NULL;
      gboolean is_next = FALSE;
      const char *end;

      while (*p == ' ' || *p == '\t' || *p == ',')
        p++;
      if (*p == '\0')
        return TRUE;
      if (*p != '<' || (end = strchr (p + 1, '>')) == NULL)
        return FALSE;
      target = g_strndup (p + 1, (gsize) (end - p - 1));
      p = end + 1;
      /* its parameters, up to the next link */
      while (*p != '\0' && *p != ',')
        {
          g_autofree char *name = NULL, *value = NULL;
          const char *start;

          while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
          start = p;
          while (*p != '\0' && *p != '=' && *p != ';' && *p != ',')
            p++;
          name = g_strstrip (g_strndup (start, (gsize) (p - start)));
          if (*p == '=')
            {
              p++;
              while (*p == ' ' || *p == '\t')
                p++;
              if (*p == '"')
                {
                  const char *close = strchr (p + 1, '"');

                  if (close == NULL)
                    return FALSE;
                  value = g_strndup (p + 1, (gsize) (close - p - 1));
                  p = close + 1;
                }
              else
                {
                  start = p;
                  while (*p != '\0' && *p != ';' && *p != ',')
                    p++;
                  value = g_strstrip (g_strndup (start, (gsize) (p - start)));
                }
            }
          if (value && g_ascii_strcasecmp (name, "rel") == 0)
            {
              g_auto(GStrv) rels = g_strsplit (value, " ", -1);

              for (gsize i = 0; rels[i]; i++)
                is_next |= g_ascii_strcasecmp (rels[i], "next") == 0;
            }
        }
      if (is_next)
        {
          *next = g_steal_pointer (&target);
          return TRUE;
        }
    }
}

/* Whether hbctl follows @target, a next page of GET /v1/agents: a path on
 * the same server (no scheme, no host), GET /v1/agents with a query, in
 * printable ASCII and not long. */
static gboolean
is_agents_page (const char *target)
{
  gsize length = strlen (target);

  if (length > LINK_MAX_LENGTH || !g_str_has_prefix (target, "/v1/agents?"))
    return FALSE;
  for (gsize i = 0; i < length; i++)
    if (target[i] <= ' ' || target[i] > '~' || target[i] == '#' || target[i] == '\\')
      return FALSE;
  return TRUE;
}

static void
print_not_a_listing (void)
{
  /* TRANSLATORS: the URL */
  hbctl_print_error (_("%s answered GET /v1/agents without a list of agents (is it heartbeatd's HTTP API?)"), opt.url);
}

static void
print_too_many (void)
{
  /* TRANSLATORS: the URL, a number of agents, of pages, then of MiB */
  hbctl_print_error (_("%s lists more agents than hbctl reads (at most %u agents, %u pages and %u MiB)"), opt.url,
               LISTING_MAX_AGENTS, LISTING_MAX_PAGES, (guint) (LISTING_MAX_BYTES / (1024 * 1024)));
}

/* The agents from GET /v1/agents as the D-Bus aa{sv}, or NULL. The
 * daemon answers a page at a time, with a Link header rel="next" exactly
 * when more follow: they are followed, on the same server only, at most
 * LISTING_MAX_PAGES pages, LISTING_MAX_BYTES and LISTING_MAX_AGENTS in
 * all, never a page twice. */
static GVariant *
remote_agents (int *exit_status)
{
  g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("aa{sv}"));
  g_autoptr(GHashTable) visited = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree char *path = g_strdup ("/v1/agents");
  gsize total = 0;
  guint pages = 0, n_agents = 0;

  while (path)
    {
      guint status = 0;
      gsize size = 0;
      g_autofree char *link = NULL;
      g_autofree char *next = NULL;
      g_autoptr(JsonNode) reply = NULL;
      JsonNode *agents;
      JsonArray *array;

      if (pages == LISTING_MAX_PAGES)
        {
          print_too_many ();
          *exit_status = EXIT_REFUSED;
          return NULL;
        }
      pages++;
      g_hash_table_add (visited, g_strdup (path));
      reply = remote_call_full ("GET", path, NULL, ANSWER_MAX_BYTES, &status, exit_status, NULL, &link, &size);
      if (reply == NULL)
        return NULL;
      total += size;
      if (total > LISTING_MAX_BYTES)
        {
          print_too_many ();
          *exit_status = EXIT_REFUSED;
          return NULL;
        }
      if (status != SOUP_STATUS_OK)
        {
          *exit_status = remote_error (reply, status);
          return NULL;
        }
      if (!JSON_NODE_HOLDS_OBJECT (reply) ||
          (agents = json_object_get_member (json_node_get_object (reply), "agents")) == NULL ||
          !JSON_NODE_HOLDS_ARRAY (agents))
        {
          print_not_a_listing ();
          *exit_status = EXIT_REFUSED;
          return NULL;
        }
      array = json_node_get_array (agents);
      if (json_array_get_length (array) > LISTING_MAX_AGENTS - n_agents)
        {
          print_too_many ();
          *exit_status = EXIT_REFUSED;
          return NULL;
        }
      n_agents += json_array_get_length (array);
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          g_autoptr(GVariant) agent = agent_from_json (json_array_get_element (array, i));

          if (agent == NULL)
            {
              print_not_a_listing ();
              *exit_status = EXIT_REFUSED;
              return NULL;
            }
          g_variant_builder_add_value (&b, agent);
        }

      g_clear_pointer (&path, g_free);
      if (link && !link_next (link, &next))
        {
          /* TRANSLATORS: the URL; "Link" is the name of an HTTP header */
          hbctl_print_error (_("%s answered with a Link header hbctl cannot read"), opt.url);
          *exit_status = EXIT_REFUSED;
          return NULL;
        }
      if (next && (!is_agents_page (next) || g_hash_table_contains (visited, next)))
        {
          g_autofree char *shown = g_utf8_make_valid (next, (gssize) MIN (strlen (next), 200));
          g_autofree char *escaped = g_strescape (shown, NULL);

          /* TRANSLATORS: the URL, then the link it sent */
          hbctl_print_error (_("%s links to a next page hbctl does not follow: \"%s\" (only a page of "
                         "/v1/agents on the same server, never one already read)"), opt.url, escaped);
          *exit_status = EXIT_REFUSED;
          return NULL;
        }
      path = g_steal_pointer (&next);
    }
  return g_variant_ref_sink (g_variant_builder_end (&b));
}

/* GET @path, which must answer 200 with an object; NULL (printed, with
 * *exit_status set) if not. */
static JsonObject *
remote_object (const char *path,
               int        *exit_status)
{
  guint status = 0;
  g_autoptr(JsonNode) reply = remote_call ("GET", path, NULL, &status, exit_status, NULL);

  if (reply == NULL)
    return NULL;
  if (status != SOUP_STATUS_OK || !JSON_NODE_HOLDS_OBJECT (reply))
    {
      *exit_status = remote_error (reply, status);
      return NULL;
    }
  return json_object_ref (json_node_get_object (reply));
}

static void
copy_member (JsonBuilder *b,
             const char  *name,
             JsonObject  *from,
             const char  *from_name)
{
  JsonNode *node = from ? json_object_get_member (from, from_name) : NULL;

  if (node == NULL)
    return;
  json_builder_set_member_name (b, name);
  json_builder_add_value (b, json_node_copy (node));
}

/* A milliseconds member as microseconds, under @name */
static void
copy_ms_as_usec (JsonBuilder *b,
                 const char  *name,
                 JsonObject  *from,
                 const char  *from_name)
{
  if (from == NULL || !json_object_has_member (from, from_name))
    return;
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, json_object_get_int_member (from, from_name) * 1000);
}

/* The daemon's GetStatus, as `status --json` prints it over D-Bus, made
 * from GET /health (running, agent-count, states, version, problem), the
 * ids of @agents (GET /v1/agents: every agent, as GetStatus lists them;
 * 004's gateway leaves timed-out and gone ones out) and GET
 * /api/heartbeat/status (the thresholds, which HTTP gives in
 * milliseconds). stale-warning-only-once is not in the HTTP API and is
 * left out (see hbctl(1)). NULL (printed) if the daemon does not answer. */
static JsonNode *
remote_status (GVariant *agents,
               int      *exit_status)
{
  g_autoptr(JsonObject) health = remote_object ("/health", exit_status);
  g_autoptr(JsonObject) gateway = health ? remote_object ("/api/heartbeat/status", exit_status) : NULL;
  g_autoptr(JsonBuilder) b = json_builder_new ();
  JsonObject *monitor, *config;
  JsonNode *problem;

  if (gateway == NULL)
    return NULL;
  monitor = json_object_get_object_member (gateway, "monitor");
  config = monitor && json_object_has_member (monitor, "config") ? json_object_get_object_member (monitor, "config")
                                                                 : NULL;
  json_builder_begin_object (b);
  copy_member (b, "running", health, "running");
  copy_member (b, "agent-count", health, "agents");
  json_builder_set_member_name (b, "agents");
  json_builder_begin_array (b);
  for (gsize i = 0; i < g_variant_n_children (agents); i++)
    {
      g_autoptr(GVariant) agent = g_variant_get_child_value (agents, i);
      json_builder_add_string_value (b, hbctl_dict_string (agent, "id"));
    }
  json_builder_end_array (b);
  copy_ms_as_usec (b, "check-interval-usec", config, "check_interval_ms");
  copy_ms_as_usec (b, "stale-threshold-usec", config, "stale_threshold_ms");
  copy_ms_as_usec (b, "timeout-threshold-usec", config, "timeout_threshold_ms");
  copy_member (b, "states", health, "states");
  copy_member (b, "version", health, "version");
  copy_member (b, "started-at-usec", health, "started-at-usec");
  /* D-Bus says "" for no problem; HTTP says null */
  problem = json_object_get_member (health, "problem");
  json_builder_set_member_name (b, "problem");
  json_builder_add_string_value (b, problem && JSON_NODE_HOLDS_VALUE (problem) ? json_node_get_string (problem) : "");
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

/* GET /v1/host: the summary of the daemon's machine, or NULL if it has
 * none (a daemon older than the endpoint: 404); *exit_status set and the
 * failure printed if the daemon cannot be reached. */
static JsonNode *
remote_host (gboolean *reached,
             int      *exit_status)
{
  guint status = 0;
  g_autoptr(JsonNode) reply = remote_call ("GET", "/v1/host", NULL, &status, exit_status, NULL);

  *reached = reply != NULL;
  if (reply == NULL || status != SOUP_STATUS_OK || !JSON_NODE_HOLDS_OBJECT (reply))
    return NULL;
  return g_steal_pointer (&reply);
}

/* GET /v1/agents/{id}[/history] as a GVariant of @type (a{sv}, or a(ts)
 * made from the history's objects); NULL with *exit_status set (and the
 * failure printed) if not. */
static GVariant *
remote_agent_get (const char *id,
                  gboolean    history,
                  int        *exit_status)
{
  g_autofree char *escaped = g_uri_escape_string (id, NULL, FALSE);
  g_autofree char *path = g_strconcat ("/v1/agents/", escaped, history ? "/history" : "", NULL);
  g_autoptr(JsonNode) reply = NULL;
  g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("a(ts)"));
  JsonNode *entries;
  guint status = 0;

  reply = remote_call ("GET", path, NULL, &status, exit_status, NULL);
  if (reply == NULL)
    return NULL;
  if (status == SOUP_STATUS_NOT_FOUND && !history)
    {
      hbctl_print_error (_("there is no agent \"%s\""), id);
      *exit_status = EXIT_REFUSED;
      return NULL;
    }
  if (status != SOUP_STATUS_OK || !JSON_NODE_HOLDS_OBJECT (reply))
    {
      *exit_status = remote_error (reply, status);
      return NULL;
    }
  if (!history)
    return agent_from_json (reply);

  entries = json_object_get_member (json_node_get_object (reply), "history");
  if (entries && JSON_NODE_HOLDS_ARRAY (entries))
    for (guint i = 0; i < json_array_get_length (json_node_get_array (entries)); i++)
      {
        JsonNode *node = json_array_get_element (json_node_get_array (entries), i);
        JsonObject *entry = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
        JsonNode *state = entry ? json_object_get_member (entry, "state") : NULL;
        double at = entry ? hbctl_json_double (entry, "at-usec", -1) : -1;

        if (at < 0 || state == NULL || !JSON_NODE_HOLDS_VALUE (state) ||
            json_node_get_value_type (state) != G_TYPE_STRING)
          continue;
        g_variant_builder_add (&b, "(ts)", (guint64) at, json_node_get_string (state));
      }
  return g_variant_ref_sink (g_variant_builder_end (&b));
}

/* ------------------------------------------------------------------ */
/* The transport                                                       */

static gboolean
http_overview (HbctlTransport     *self,
               HbctlOverviewFlags  flags,
               HbctlOverview      *overview,
               int                *exit_status)
{
  overview->agents = remote_agents (exit_status);
  if (overview->agents == NULL)
    return FALSE;
  if (flags & HBCTL_OVERVIEW_STATUS)
    {
      g_autoptr(JsonNode) status = remote_status (overview->agents, exit_status);

      if (status == NULL)
        return FALSE;
      overview->status = agent_from_json (status);
    }
  /* the daemon's machine, not this one */
  if (flags & HBCTL_OVERVIEW_HOST)
    {
      gboolean reached;

      overview->host = remote_host (&reached, exit_status);
      if (!reached)
        return FALSE;
    }
  /* the daemon's start and version, for its line under the summary:
   * from GET /health, and nothing said if it does not answer */
  if (flags & HBCTL_OVERVIEW_DAEMON)
    {
      guint http_status = 0;
      int ignored;
      g_autofree char *failure = NULL;
      g_autoptr(JsonNode) reply = remote_call ("GET", "/health", NULL, &http_status, &ignored, &failure);

      if (reply && JSON_NODE_HOLDS_OBJECT (reply))
        {
          JsonObject *health = json_node_get_object (reply);

          overview->started_at = (guint64) MAX (hbctl_json_double (health, "started-at-usec", 0), 0);
          if (json_object_has_member (health, "version") &&
              JSON_NODE_HOLDS_VALUE (json_object_get_member (health, "version")))
            overview->version = g_strdup (json_object_get_string_member (health, "version"));
        }
    }
  return TRUE;
}

static GVariant *
http_list_agents (HbctlTransport *self,
                  int            *exit_status)
{
  return remote_agents (exit_status);
}

static GVariant *
http_get_agent (HbctlTransport *self,
                const char     *id,
                int            *exit_status)
{
  return remote_agent_get (id, FALSE, exit_status);
}

static GVariant *
http_get_history (HbctlTransport *self,
                  const char     *id)
{
  int ignored = EXIT_OK;

  return remote_agent_get (id, TRUE, &ignored);
}

/* GET /v1/agents/ID/runs: an array of run objects, oldest first, as
 * aa{sv}; NULL without a word if the daemon has no such endpoint (an
 * older one: 404, the agent having been found already), else NULL with
 * what went wrong printed. */
static GVariant *
http_get_runs (HbctlTransport *self,
               const char     *id)
{
  g_autofree char *escaped = g_uri_escape_string (id, NULL, FALSE);
  g_autofree char *path = g_strconcat ("/v1/agents/", escaped, "/runs", NULL);
  g_autoptr(JsonNode) reply = NULL;
  g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("aa{sv}"));
  JsonArray *array;
  guint status = 0;
  int ignored = EXIT_OK;

  reply = remote_call ("GET", path, NULL, &status, &ignored, NULL);
  if (reply == NULL || status == SOUP_STATUS_NOT_FOUND)
    return NULL;
  if (status != SOUP_STATUS_OK)
    {
      remote_error (reply, status);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_ARRAY (reply))
    {
      hbctl_print_error (_("%s answered GET /v1/agents/ID/runs without a list of runs (is it heartbeatd's HTTP API?)"),
                         opt.url);
      return NULL;
    }
  array = json_node_get_array (reply);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *node = json_array_get_element (array, i);

      if (JSON_NODE_HOLDS_OBJECT (node))
        g_variant_builder_add_value (&b, vardict_from_json (json_node_get_object (node)));
    }
  return g_variant_ref_sink (g_variant_builder_end (&b));
}

/* Runs are started and finished over D-Bus (hbctl run); over HTTP a
 * script has the ping URLs. Said, never silently dropped. */
static int
http_start_run (HbctlTransport *self,
                const char     *id)
{
  hbctl_print_error (_("starting a run is not supported over --url; use D-Bus (hbctl run) or the ping URLs"));
  return EXIT_USAGE;
}

static int
http_finish_run (HbctlTransport *self,
                 const char     *id,
                 GVariant       *end)
{
  hbctl_print_error (_("finishing a run is not supported over --url; use D-Bus (hbctl run) or the ping URLs"));
  return EXIT_USAGE;
}

/* POST /v1/agents/ID/beat with the details as its JSON body */
static int
http_beat (HbctlTransport *self,
           const char     *id,
           GVariant       *details)
{
  g_autoptr(JsonNode) body = json_gvariant_serialize (details);
  g_autoptr(JsonNode) reply = NULL;
  g_autofree char *escaped = g_uri_escape_string (id, NULL, FALSE);
  g_autofree char *path = g_strdup_printf ("/v1/agents/%s/beat", escaped);
  guint http_status = 0;
  int status = EXIT_OK;

  reply = remote_call ("POST", path, body, &http_status, &status, NULL);
  if (reply == NULL)
    return status;
  if (http_status != SOUP_STATUS_OK)
    return remote_error (reply, http_status);
  return EXIT_OK;
}

static GVariant *
http_check_agent (HbctlTransport  *self,
                  const char      *id,
                  char           **problem)
{
  g_autofree char *escaped = g_uri_escape_string (id, NULL, FALSE);
  g_autofree char *path = g_strconcat ("/v1/agents/", escaped, NULL);
  g_autoptr(JsonNode) reply = NULL;
  GVariant *agent = NULL;
  guint http_status = 0;
  int ignored;

  reply = remote_call ("GET", path, NULL, &http_status, &ignored, problem);
  if (reply == NULL)
    return NULL;
  if (http_status == SOUP_STATUS_OK)
    {
      agent = agent_from_json (reply);
      if (agent == NULL)
        *problem = g_strdup_printf (_("%s answered GET /v1/agents/ID without an agent (is it heartbeatd's HTTP API?)"),
                                    opt.url);
    }
  else if (http_status == SOUP_STATUS_NOT_FOUND)
    *problem = g_strdup_printf (_("there is no agent \"%s\""), id);
  else
    *problem = g_strdup_printf ("HTTP %u", http_status);
  return agent;
}

/* POST /v1/agents/ID/@verb (pause, resume) with @body (or none) */
static int
http_agent_post (const char *id,
                 const char *verb,
                 JsonNode   *body)
{
  g_autoptr(JsonNode) reply = NULL;
  g_autofree char *escaped = g_uri_escape_string (id, NULL, FALSE);
  g_autofree char *path = g_strdup_printf ("/v1/agents/%s/%s", escaped, verb);
  guint http_status = 0;
  int status = EXIT_OK;

  reply = remote_call ("POST", path, body, &http_status, &status, NULL);
  if (reply == NULL)
    return status;
  if (http_status == SOUP_STATUS_NOT_FOUND)
    {
      hbctl_print_error (_("there is no agent \"%s\""), id);
      return EXIT_REFUSED;
    }
  if (http_status != SOUP_STATUS_OK)
    return remote_error (reply, http_status);
  return EXIT_OK;
}

/* POST /v1/agents/ID/pause, with {"reason": …} when there is one */
static int
http_pause (HbctlTransport *self,
            const char     *id,
            const char     *reason)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) body = NULL;

  json_builder_begin_object (b);
  if (reason)
    {
      json_builder_set_member_name (b, "reason");
      json_builder_add_string_value (b, reason);
    }
  json_builder_end_object (b);
  body = json_builder_get_root (b);
  return http_agent_post (id, "pause", body);
}

static int
http_resume (HbctlTransport *self,
             const char     *id)
{
  return http_agent_post (id, "resume", NULL);
}

static void
http_free (HbctlTransport *self)
{
  g_free (self);
}

HbctlTransport *
hbctl_http_transport_new (void)
{
  HbctlTransport *self = g_new0 (HbctlTransport, 1);

  self->overview = http_overview;
  self->list_agents = http_list_agents;
  self->get_agent = http_get_agent;
  self->get_history = http_get_history;
  self->get_runs = http_get_runs;
  self->beat = http_beat;
  self->start_run = http_start_run;
  self->finish_run = http_finish_run;
  self->check_agent = http_check_agent;
  self->pause = http_pause;
  self->resume = http_resume;
  self->free = http_free;
  return self;
}
