/* hb-http.c: the HTTP front: its object, set-up and routing
 *
 * One SoupServer on the daemon's main loop translating requests into
 * HeartbeatMonitor calls and monitor signals into Server-Sent Events:
 *
 *   GET  /health, /runs, /runs/{id}; POST /heartbeat, /event
 *                                   the local server of 000 (compatible)
 *   GET  /api/heartbeat/status      the gateway endpoint of 004 (its shape)
 *   GET  /v1/agents, GET|PUT|DELETE /v1/agents/{id},
 *   POST /v1/agents/{id}/beat, /v1/agents/{id}/idle          REST
 *   GET  /v1/agents/{id}/runs       a job's run records
 *   GET|HEAD|POST /ping/…           the ping URLs of Healthchecks.io
 *                                   (hb-http-jobs.c)
 *   GET  /v1/history, /v1/agents/{id}/history   state changes of the
 *                                   agents (in pages, gzip if the client
 *                                   accepts it), of one agent
 *   GET  /v1/events                 Server-Sent Events
 *   GET  /v1/host                   the daemon's machine: name, CPU, load,
 *                                   memory, disk of the state directory
 *   GET  /metrics                   Prometheus text exposition (gzip if
 *                                   the client accepts it)
 *   GET  /                          the dashboard (from the GResource)
 *
 * Agents created over HTTP belong to HB_HTTP_OWNER_UID. Without a tokens
 * file, HTTP may change only those; with one, every write needs a bearer
 * token, and a token may change any agent; HTTP may create at most
 * hb_http_set_quota() agents. Before a body is read, a foreign Host (when
 * serving loopback: DNS rebinding), a write without a token and a body of
 * unknown or too large size are refused and the connection closed; JSON
 * bodies go through hb_json_parse() and every value is checked before
 * anything changes. Connections that are slow to send a request, or idle,
 * are closed; event streams are bounded in number, per remote address and
 * in what they keep. A port in use is retried (HbHttp:listen-problem).
 * Every error is {"error": {"code", "message"}} and changes nothing.
 *
 * This file holds the object, its set-up (tokens, listening, retrying a
 * port in use) and the routing of requests to the endpoints, which live
 * one family per file: see hb-http-private.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-http-private.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <glib/gstdio.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

enum {
  PROP_0,
  PROP_LISTEN_PROBLEM,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (HbHttp, hb_http, G_TYPE_OBJECT)

/* ------------------------------------------------------------------ */
/* Routing                                                             */

/* Whether @method is one of @allowed ("GET" or "GET, PUT, DELETE") */
static gboolean
method_in (const char *method,
           const char *allowed)
{
  gsize length = strlen (method);

  for (const char *p = allowed; p != NULL; p = strchr (p, ','), p = p ? p + 2 : NULL)
    if (strncmp (p, method, length) == 0 && (p[length] == '\0' || p[length] == ','))
      return TRUE;
  return FALSE;
}

/* Whether the request's method is one of @allowed ("GET" or "GET, PUT,
 * DELETE"; HEAD is allowed wherever GET is); sends 405 if not. */
static gboolean
method_is (SoupServerMessage *msg,
           const char        *allowed)
{
  const char *method = soup_server_message_get_method (msg);
  g_autofree char *allow = NULL;

  if (method_in (method, allowed) || (strcmp (method, "HEAD") == 0 && method_in ("GET", allowed)))
    return TRUE;
  allow = g_str_has_prefix (allowed, "GET") ? g_strconcat ("GET, HEAD", allowed + 3, NULL) : g_strdup (allowed);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow", allow);
  send_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "%s is not allowed here (allowed: %s)", method, allow);
  return FALSE;
}

/* The endpoints with a fixed path; the ones with an id are below. */
static const struct {
  const char *path;
  const char *method;
  RouteFunc   handle;
} routes[] = {
  { "/", "GET", handle_dashboard },
  { "/health", "GET", handle_health },
  { "/runs", "GET", handle_runs },
  { "/heartbeat", "POST", handle_heartbeat },
  { "/event", "POST", handle_event },
  { "/api/heartbeat/status", "GET", handle_gateway_status },
  { "/metrics", "GET", handle_metrics },
  { "/v1/events", "GET", handle_events },
  { "/v1/agents", "GET", handle_agents },
  { "/v1/history", "GET", handle_history },
  { "/v1/host", "GET", handle_host },
  { "/v1/badge.svg", "GET", handle_badge },
};

static void
route (HbHttp            *self,
       SoupServerMessage *msg,
       const char        *path,
       gboolean           privileged)
{
  const char *method = soup_server_message_get_method (msg);
  g_auto(GStrv) parts = NULL;
  guint n;

  for (gsize i = 0; i < G_N_ELEMENTS (routes); i++)
    if (strcmp (path, routes[i].path) == 0)
      {
        if (method_is (msg, routes[i].method))
          routes[i].handle (self, msg, privileged);
        return;
      }

  if (hb_http_is_ping_path (path))
    {
      handle_ping (self, msg, path);
      return;
    }

  /* /runs/{id}, /v1/agents/{id},
   * /v1/agents/{id}/beat|idle|pause|resume|history|runs|badge.svg */
  parts = g_strsplit (path + 1, "/", -1);
  n = g_strv_length (parts);
  if (n == 2 && strcmp (parts[0], "runs") == 0)
    {
      if (method_is (msg, "GET"))
        handle_run (self, msg, parts[1]);
      return;
    }
  if (n >= 3 && strcmp (parts[0], "v1") == 0 && strcmp (parts[1], "agents") == 0 && *parts[2])
    {
      const char *id = parts[2];

      if (n == 3)
        {
          if (!method_is (msg, "GET, PUT, DELETE"))
            return;
          if (strcmp (method, "PUT") == 0)
            handle_put_agent (self, msg, id, privileged);
          else if (strcmp (method, "DELETE") == 0)
            handle_agent_change (self, msg, id, "delete", privileged);
          else
            handle_get_agent (self, msg, id);
          return;
        }
      if (n == 4 && (strcmp (parts[3], "beat") == 0 || strcmp (parts[3], "idle") == 0 ||
                     strcmp (parts[3], "pause") == 0 || strcmp (parts[3], "resume") == 0))
        {
          if (method_is (msg, "POST"))
            handle_agent_change (self, msg, id, parts[3], privileged);
          return;
        }
      if (n == 4 && strcmp (parts[3], "history") == 0)
        {
          if (method_is (msg, "GET"))
            handle_agent_history (self, msg, id);
          return;
        }
      if (n == 4 && strcmp (parts[3], "runs") == 0)
        {
          if (method_is (msg, "GET"))
            handle_agent_runs (self, msg, id);
          return;
        }
      if (n == 4 && strcmp (parts[3], "badge.svg") == 0)
        {
          if (method_is (msg, "GET"))
            handle_agent_badge (self, msg, id);
          return;
        }
    }
  send_error (msg, SOUP_STATUS_NOT_FOUND, "No such endpoint: %s", path);
}

/* A request that changed something, answered once it is saved. */
typedef struct {
  SoupServerMessage *msg;
  gulong             finished_id;
  gboolean           finished;   /* the client went away meanwhile */
} HeldAnswer;

static void
on_held_finished (SoupServerMessage *msg,
                  HeldAnswer        *held)
{
  held->finished = TRUE;
}

static void
on_saved (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  HeldAnswer *held = user_data;
  g_autoptr(GError) error = NULL;

  if (!heartbeat_monitor_sync_finish (HEARTBEAT_MONITOR (source), result, &error) &&
      g_object_get_qdata (G_OBJECT (held->msg), caller_change_quark ()) != NULL &&
      !held->finished)
    send_monitor_error (held->msg, error);
  g_signal_handler_disconnect (held->msg, held->finished_id);
  if (!held->finished)
    soup_server_message_unpause (held->msg);
  g_object_unref (held->msg);
  g_free (held);
}

static void
on_request (SoupServer        *server,
            SoupServerMessage *msg,
            const char        *path,
            GHashTable        *query,
            gpointer           user_data)
{
  HbHttp *self = user_data;
  const char *method = soup_server_message_get_method (msg);
  /* a ping writes whatever its method, and says who it is itself */
  gboolean ping = hb_http_is_ping_path (path);
  gboolean writing = ping || (strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0);
  gboolean privileged = FALSE;
  HeldAnswer *held;

  hb_http_request_read (self, msg);
  if (writing && !ping && !may_write (self, msg, &privileged))
    return;
  if (!writing && budget_spent (self, path))
    {
      refuse_answer (self, msg);
      return;
    }
  route (self, msg, path, privileged);
  /* a write's answer is one agent, and its change is made: never 503 */
  if (!writing)
    account_answer (self, msg);
  if (!writing || heartbeat_monitor_is_saved (self->monitor))
    return;

  /* Answered once what it changed is saved, in the order requests came
   * (see heartbeat_monitor_sync_async()); a registration, deletion or
   * idle mark the store could not save was taken back: 503. */
  held = g_new0 (HeldAnswer, 1);
  held->msg = g_object_ref (msg);
  held->finished_id = g_signal_connect (msg, "finished", G_CALLBACK (on_held_finished), held);
  soup_server_message_pause (msg);
  heartbeat_monitor_sync_async (self->monitor, NULL, on_saved, held);
}

/* ------------------------------------------------------------------ */
/* Set-up                                                              */

static gpointer
server_handshake (gpointer data)
{
  GError *error = NULL;

  g_tls_connection_handshake (G_TLS_CONNECTION (data), NULL, &error);
  return error;
}

static gboolean
accept_any_certificate (GTlsConnection       *connection,
                        GTlsCertificate      *certificate,
                        GTlsCertificateFlags  errors,
                        gpointer              user_data)
{
  return TRUE;
}

/* Whether a TLS handshake works with @certificate: a key that does not
 * belong to the certificate loads as well as one that does (GLib does not
 * compare them), and would fail every handshake after. One handshake over
 * a socket pair, the server side in a thread, each side giving up after
 * 5 s; at start and reload only. */
static gboolean
certificate_works (GTlsCertificate  *certificate,
                   GError          **error)
{
  g_autoptr(GSocket) server_socket = NULL;
  g_autoptr(GSocket) client_socket = NULL;
  g_autoptr(GSocketConnection) server_base = NULL;
  g_autoptr(GSocketConnection) client_base = NULL;
  g_autoptr(GIOStream) server = NULL;
  g_autoptr(GIOStream) client = NULL;
  g_autoptr(GError) server_error = NULL;
  g_autoptr(GError) client_error = NULL;
  GThread *thread;
  int fds[2];

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    {
      int saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "socketpair: %s", g_strerror (saved));
      return FALSE;
    }
  server_socket = g_socket_new_from_fd (fds[0], error);
  if (server_socket == NULL)
    {
      close (fds[0]);
      close (fds[1]);
      return FALSE;
    }
  client_socket = g_socket_new_from_fd (fds[1], error);
  if (client_socket == NULL)
    {
      close (fds[1]);
      return FALSE;
    }
  g_socket_set_timeout (server_socket, 5);
  g_socket_set_timeout (client_socket, 5);
  server_base = g_socket_connection_factory_create_connection (server_socket);
  client_base = g_socket_connection_factory_create_connection (client_socket);
  server = g_tls_server_connection_new (G_IO_STREAM (server_base), certificate, error);
  if (server == NULL)
    return FALSE;
  client = g_tls_client_connection_new (G_IO_STREAM (client_base), NULL, error);
  if (client == NULL)
    return FALSE;
  g_signal_connect (client, "accept-certificate", G_CALLBACK (accept_any_certificate), NULL);

  thread = g_thread_new ("hb-tls-check", server_handshake, server);
  if (!g_tls_connection_handshake (G_TLS_CONNECTION (client), NULL, &client_error))
    g_socket_shutdown (client_socket, TRUE, TRUE, NULL);   /* the server side stops waiting */
  server_error = g_thread_join (thread);
  if (client_error == NULL && server_error == NULL)
    return TRUE;
  g_set_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE,
               "a TLS handshake with this certificate and key fails (does the key belong to the certificate?): %s",
               (client_error ? client_error : server_error)->message);
  return FALSE;
}

/* [http] tls-certificate= and tls-key=, loaded and tried */
static GTlsCertificate *
load_certificate (const char  *certificate,
                  const char  *key,
                  GError     **error)
{
  g_autoptr(GTlsCertificate) loaded = g_tls_certificate_new_from_files (certificate, key, error);

  if (loaded == NULL || !certificate_works (loaded, error))
    {
      g_prefix_error (error, "[http] tls-certificate=%s, tls-key=%s: ", certificate, key);
      return NULL;
    }
  return g_steal_pointer (&loaded);
}

/* [http] tls-client-ca= */
static GTlsDatabase *
load_client_ca (const char  *client_ca,
                GError     **error)
{
  GTlsDatabase *database = g_tls_file_database_new (client_ca, error);

  if (database == NULL)
    g_prefix_error (error, "[http] tls-client-ca=%s: ", client_ca);
  return database;
}

/**
 * hb_http_set_tls:
 * @http: a #HbHttp
 * @certificate: (nullable): a PEM certificate file (its chain may follow),
 *   or %NULL for plain HTTP
 * @key: (nullable): the PEM private key file, with @certificate
 * @client_ca: (nullable): a PEM file of the CAs whose client certificates
 *   are accepted; then every client must present one
 * @error: return location for a #GError
 *
 * Before hb_http_listen(): whether HTTP speaks TLS. Once listening, this
 * replaces the certificate, key and client CAs (a renewed certificate):
 * the next connection gets them, open ones keep theirs. Turning TLS on or
 * off needs a new listening socket, a restart.
 *
 * Returns: %TRUE, or %FALSE with @error set (nothing changed)
 */
gboolean
hb_http_set_tls (HbHttp     *http,
                 const char *certificate,
                 const char *key,
                 const char *client_ca,
                 GError    **error)
{
  g_autoptr(GTlsCertificate) tls_certificate = NULL;
  g_autoptr(GTlsDatabase) database = NULL;

  g_return_val_if_fail (HB_IS_HTTP (http), FALSE);
  g_return_val_if_fail ((certificate == NULL) == (key == NULL), FALSE);

  if (certificate && (tls_certificate = load_certificate (certificate, key, error)) == NULL)
    return FALSE;
  if (client_ca && certificate && (database = load_client_ca (client_ca, error)) == NULL)
    return FALSE;
  if (http->address && (certificate != NULL) != http->listening_tls)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "turning TLS %s needs a restart of heartbeatd", certificate ? "on" : "off");
      return FALSE;
    }
  g_set_object (&http->tls_certificate, tls_certificate);
  g_set_object (&http->tls_client_ca, database);
  if (tls_certificate)
    {
      soup_server_set_tls_certificate (http->server, tls_certificate);
      soup_server_set_tls_database (http->server, database);
      soup_server_set_tls_auth_mode (http->server, database ? G_TLS_AUTHENTICATION_REQUIRED
                                                            : G_TLS_AUTHENTICATION_NONE);
    }
  return TRUE;
}

/**
 * hb_http_check_files:
 * @tokens_file: (nullable): [http] tokens-file=
 * @certificate: (nullable): [http] tls-certificate=
 * @key: (nullable): [http] tls-key=
 * @client_ca: (nullable): [http] tls-client-ca=
 * @error: return location for a #GError
 *
 * Reads the files as hb_http_set_tokens_file() and hb_http_set_tls()
 * would, and keeps nothing: for heartbeatd --check-config, which the
 * unit's ExecReload= runs first, so that `systemctl reload` fails on a
 * certificate or tokens file the daemon would not take.
 *
 * Returns: %TRUE, or %FALSE with @error set
 */
gboolean
hb_http_check_files (const char *tokens_file,
                     const char *certificate,
                     const char *key,
                     const char *client_ca,
                     GError    **error)
{
  g_autoptr(GTlsCertificate) tls_certificate = NULL;
  g_autoptr(GTlsDatabase) database = NULL;
  HbHttpTokens *tokens;

  if (tokens_file)
    {
      if ((tokens = hb_http_tokens_load (tokens_file, error)) == NULL)
        return FALSE;
      hb_http_tokens_free (tokens);
    }
  if (certificate && key && (tls_certificate = load_certificate (certificate, key, error)) == NULL)
    return FALSE;
  if (client_ca && (database = load_client_ca (client_ca, error)) == NULL)
    return FALSE;
  return TRUE;
}

/**
 * hb_http_set_trusted_network:
 * @http: a #HbHttp
 * @trusted: whether plain HTTP may be served on an address other than
 *   loopback ([http] trusted-network=): then tokens and everything the
 *   API says cross the network in clear text
 *
 * Before hb_http_listen().
 */
void
hb_http_set_trusted_network (HbHttp   *http,
                             gboolean  trusted)
{
  g_return_if_fail (HB_IS_HTTP (http));

  http->trusted_network = trusted;
}

/**
 * hb_http_get_scheme:
 * @http: a #HbHttp
 *
 * Returns: "https" or "http", what the port speaks (or will)
 */
const char *
hb_http_get_scheme (HbHttp *http)
{
  g_return_val_if_fail (HB_IS_HTTP (http), NULL);

  return http->tls_certificate ? "https" : "http";
}

static gboolean
address_is_loopback (GInetAddress *address)
{
  return g_inet_address_get_is_loopback (address);
}

static void
set_listen_problem (HbHttp     *self,
                    const char *problem)
{
  if (g_strcmp0 (self->listen_problem, problem) == 0)
    return;
  g_free (self->listen_problem);
  self->listen_problem = g_strdup (problem);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LISTEN_PROBLEM]);
}

static gboolean
try_listen (HbHttp  *self,
            GError **error)
{
  g_autoptr(GSocketAddress) socket_address = g_inet_socket_address_new (self->address, self->wanted_port);
  GSList *uris;

  if (!soup_server_listen (self->server, socket_address, self->tls_certificate ? SOUP_SERVER_LISTEN_HTTPS : 0, error))
    return FALSE;
  self->listening_tls = self->tls_certificate != NULL;
  uris = soup_server_get_uris (self->server);
  if (uris)
    self->port = (guint16) g_uri_get_port (uris->data);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  hb_http_set_host_names (self);
  return TRUE;
}

static gboolean
on_listen_retry (gpointer user_data)
{
  HbHttp *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *address = g_inet_address_to_string (self->address);

  if (!try_listen (self, &error))
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE))
        {
          g_autofree char *problem = g_strdup_printf ("Cannot serve HTTP on %s port %u: %s; retrying",
                                                      address, self->wanted_port, error->message);
          if (g_strcmp0 (problem, self->listen_problem) != 0)
            g_warning ("%s", problem);
          set_listen_problem (self, problem);
        }
      return G_SOURCE_CONTINUE;
    }
  self->retry_id = 0;
  g_message ("Serving HTTP on %s://%s%s%s:%u/ (the port is free now)", hb_http_get_scheme (self),
             g_inet_address_get_family (self->address) == G_SOCKET_FAMILY_IPV6 ? "[" : "", address,
             g_inet_address_get_family (self->address) == G_SOCKET_FAMILY_IPV6 ? "]" : "", self->port);
  set_listen_problem (self, NULL);
  return G_SOURCE_REMOVE;
}

/**
 * hb_http_listen:
 * @http: a #HbHttp
 * @address: an IP address to listen on
 * @port: the port, or 0 for any free one (see hb_http_get_port())
 * @error: return location for a #GError
 *
 * Listening on an address other than loopback needs tokens, and TLS
 * (hb_http_set_tls()) unless the network is trusted
 * (hb_http_set_trusted_network()); every request there but /health then
 * needs a token (hb-http-auth.c). If the port is
 * in use, this is not an error: #HbHttp:listen-problem says so and the
 * port is tried again every 5 s (`$HB_HTTP_LISTEN_RETRY_MS`, for tests)
 * until it is free.
 *
 * Returns: %TRUE (listening, or waiting for the port), or %FALSE with
 *   @error set
 */
gboolean
hb_http_listen (HbHttp     *http,
                const char *address,
                guint16     port,
                GError    **error)
{
  g_autoptr(GInetAddress) inet = g_inet_address_new_from_string (address);
  g_autoptr(GError) local = NULL;

  g_return_val_if_fail (HB_IS_HTTP (http), FALSE);

  if (inet == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "“%s” is not an IP address", address);
      return FALSE;
    }
  if (!address_is_loopback (inet) && http->tokens == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   "refusing to serve HTTP on %s without a tokens file ([http] tokens-file=)", address);
      return FALSE;
    }
  if (!address_is_loopback (inet) && http->tls_certificate == NULL && !http->trusted_network)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   "refusing to serve plain HTTP on %s, where tokens and answers would cross the network in "
                   "clear text: set [http] tls-certificate= and tls-key=, or trusted-network=true", address);
      return FALSE;
    }
  http->reads_need_token = !address_is_loopback (inet);

  g_set_object (&http->address, inet);
  http->wanted_port = port;
  /* DNS rebinding: a page of another site may reach a loopback server,
   * but says its own name in Host */
  http->check_host = address_is_loopback (inet);
  if (try_listen (http, &local))
    return TRUE;
  if (port != 0 && g_error_matches (local, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE))
    {
      g_autofree char *problem = NULL;

      problem = g_strdup_printf ("HTTP port %s%s%s:%u is in use; retrying",
                                 g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6 ? "[" : "", address,
                                 g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6 ? "]" : "", port);
      g_warning ("%s every %u ms", problem, http->retry_interval);
      set_listen_problem (http, problem);
      if (http->retry_id == 0)
        http->retry_id = g_timeout_add (http->retry_interval, on_listen_retry, http);
      return TRUE;
    }
  g_propagate_prefixed_error (error, g_steal_pointer (&local), "cannot listen on %s port %u: ", address, port);
  return FALSE;
}

/**
 * hb_http_get_listen_problem:
 * @http: a #HbHttp
 *
 * Why HTTP is not served although it should be (its port is in use), or
 * %NULL. Notified as #HbHttp:listen-problem.
 *
 * Returns: (nullable): the problem
 */
const char *
hb_http_get_listen_problem (HbHttp *http)
{
  g_return_val_if_fail (HB_IS_HTTP (http), NULL);
  return http->listen_problem;
}

/**
 * hb_http_set_quota:
 * @http: a #HbHttp
 * @agents_per_uid: how many agents HTTP may create ([limits]
 *   agents-per-uid, applied to %HB_HTTP_OWNER_UID); 0 for no limit
 *
 * A new agent beyond it is refused with 429. Agents already there stay.
 */
void
hb_http_set_quota (HbHttp *http,
                   guint   agents_per_uid)
{
  g_return_if_fail (HB_IS_HTTP (http));
  http->quota = agents_per_uid;
}

/**
 * hb_http_set_units:
 * @http: a #HbHttp
 * @units: (nullable): the systemd units behind declared agents, or %NULL
 *
 * Lets the agents' JSON carry their `unit`.
 */
void
hb_http_set_units (HbHttp  *http,
                   HbUnits *units)
{
  g_return_if_fail (HB_IS_HTTP (http));
  g_return_if_fail (units == NULL || HB_IS_UNITS (units));
  g_set_object (&http->units, units);
}

/**
 * hb_http_set_problem:
 * @http: a #HbHttp
 * @problem: (nullable): why the daemon is degraded, or %NULL
 *
 * /health then says `"status": "degraded"` and gives the problem.
 */
void
hb_http_set_problem (HbHttp     *http,
                     const char *problem)
{
  g_return_if_fail (HB_IS_HTTP (http));
  g_free (http->problem);
  http->problem = g_strdup (problem);
}

/**
 * hb_http_set_state_directory:
 * @http: a #HbHttp
 * @directory: (nullable): the daemon's state directory
 *
 * GET /v1/host gives the disk space of its file system. Without it (or
 * with %NULL), the directory of the state database the daemon holds open
 * is used, else `/`.
 */
void
hb_http_set_state_directory (HbHttp     *http,
                             const char *directory)
{
  g_return_if_fail (HB_IS_HTTP (http));
  g_free (http->state_directory);
  http->state_directory = g_strdup (directory);
}

guint16
hb_http_get_port (HbHttp *http)
{
  g_return_val_if_fail (HB_IS_HTTP (http), 0);
  return http->port;
}

guint
hb_http_get_n_event_clients (HbHttp *http)
{
  g_return_val_if_fail (HB_IS_HTTP (http), 0);
  return http->n_clients;
}

/* A timeout or a bound from the environment (for tests), else @fallback. */
static guint
timeout_from_env (const char *name,
                  guint       fallback)
{
  const char *text = g_getenv (name);
  guint64 value;

  if (text && g_ascii_string_to_unsigned (text, 10, 1, G_MAXUINT32, &value, NULL))
    return (guint) value;
  return fallback;
}

/**
 * hb_http_new:
 * @monitor: the monitor to serve
 * @version: the daemon's version, for /health and /metrics
 *
 * Returns: (transfer full): a new #HbHttp, not listening yet
 */
HbHttp *
hb_http_new (HeartbeatMonitor *monitor,
             const char       *version)
{
  HbHttp *self = g_object_new (HB_TYPE_HTTP, NULL);

#ifdef __GLIBC__
  /* Large answers (pages of up to HB_HTTP_PAGE_BYTES, /metrics…) are
   * mapped and unmapped: with glibc's default, the threshold rises to the
   * size of the largest block freed, and blocks that large then come from
   * the heap, which keeps them once freed (the RSS a burst of large
   * answers took stayed). Fixing it keeps the RSS to what is in use. */
  mallopt (M_MMAP_THRESHOLD, 256 * 1024);
#endif
  self->monitor = g_object_ref (monitor);
  self->version = g_strdup (version);
  self->server = soup_server_new ("server-header", "heartbeatd", NULL);
  soup_server_add_early_handler (self->server, NULL, on_request_headers, self, NULL);
  soup_server_add_handler (self->server, NULL, on_request, self, NULL);
  g_signal_connect (self->server, "request-started", G_CALLBACK (on_request_started), self);
  g_signal_connect (self->server, "request-finished", G_CALLBACK (on_request_done), self);
  g_signal_connect (self->server, "request-aborted", G_CALLBACK (on_request_done), self);

  return self;
}

static void
hb_http_dispose (GObject *object)
{
  HbHttp *self = HB_HTTP (object);

  g_clear_handle_id (&self->retry_id, g_source_remove);
  hb_http_rest_dispose (self);
  hb_http_events_dispose (self);
  if (self->server)
    {
      g_signal_handlers_disconnect_by_data (self->server, self);
      soup_server_disconnect (self->server);
    }
  g_clear_object (&self->server);
  hb_http_guards_dispose (self);
  if (self->monitor)
    g_signal_handlers_disconnect_by_data (self->monitor, self);
  g_clear_object (&self->monitor);
  g_clear_object (&self->units);
  G_OBJECT_CLASS (hb_http_parent_class)->dispose (object);
}

static void
hb_http_finalize (GObject *object)
{
  HbHttp *self = HB_HTTP (object);

  g_clear_pointer (&self->tokens, hb_http_tokens_free);
  g_clear_object (&self->tls_certificate);
  g_clear_object (&self->tls_client_ca);
  g_free (self->ping_key);
  g_strfreev (self->host_names);
  g_clear_pointer (&self->conns, g_hash_table_unref);
  g_clear_object (&self->address);
  g_free (self->state_directory);
  g_free (self->version);
  g_free (self->problem);
  g_free (self->listen_problem);
  G_OBJECT_CLASS (hb_http_parent_class)->finalize (object);
}

static void
hb_http_get_property (GObject    *object,
                      guint       prop_id,
                      GValue     *value,
                      GParamSpec *pspec)
{
  HbHttp *self = HB_HTTP (object);

  switch (prop_id)
    {
    case PROP_LISTEN_PROBLEM:
      g_value_set_string (value, self->listen_problem);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
hb_http_class_init (HbHttpClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = hb_http_dispose;
  object_class->finalize = hb_http_finalize;
  object_class->get_property = hb_http_get_property;

  /**
   * HbHttp:listen-problem:
   *
   * Why HTTP is not served although it should be, such as “HTTP port
   * 127.0.0.1:8765 is in use; retrying”, or %NULL.
   */
  properties[PROP_LISTEN_PROBLEM] =
    g_param_spec_string ("listen-problem", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
hb_http_init (HbHttp *self)
{
  self->quota = HB_HTTP_DEFAULT_QUOTA;
  hb_http_guards_init (self);
  self->request_timeout = timeout_from_env ("HB_HTTP_REQUEST_TIMEOUT_MS", HB_HTTP_REQUEST_TIMEOUT_MS);
  self->idle_timeout = timeout_from_env ("HB_HTTP_IDLE_TIMEOUT_MS", HB_HTTP_IDLE_TIMEOUT_MS);
  self->retry_interval = timeout_from_env ("HB_HTTP_LISTEN_RETRY_MS", HB_HTTP_LISTEN_RETRY_MS);
  self->max_connections = timeout_from_env ("HB_HTTP_MAX_CONNECTIONS", HB_HTTP_MAX_CONNECTIONS);
  self->max_connections_per_peer = timeout_from_env ("HB_HTTP_MAX_CONNECTIONS_PER_PEER",
                                                     HB_HTTP_MAX_CONNECTIONS_PER_PEER);
  self->response_budget = timeout_from_env ("HB_HTTP_RESPONSE_BUDGET", HB_HTTP_RESPONSE_BUDGET);
  self->page_bytes = timeout_from_env ("HB_HTTP_PAGE_BYTES", HB_HTTP_PAGE_BYTES);
}

