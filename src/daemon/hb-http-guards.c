/* hb-http-guards.c: what the HTTP front refuses before it serves
 *
 * Before a body is read: a foreign Host (when serving loopback: DNS
 * rebinding), a write without a token, a body of unknown or too large
 * size (the answer is written on the stolen connection, which is then
 * closed). Connections: at most so many in all and per peer (a local uid
 * or a remote address), a socket timeout, a request that must arrive
 * within request_timeout and an idle connection closed after
 * idle_timeout.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-http-private.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <string.h>

#define LINGER_MS           2000      /* reading what follows a refused request */
#define LINGER_BYTES        (4 * 1024 * 1024)

/* A connection between requests or in the middle of reading one: when its
 * timer fires, it is shut down (libsoup then reads the end of it and
 * closes it as usual). The socket is watched, not held: libsoup closes a
 * connection by dropping its last reference, and a reference here kept
 * every connection a client had closed open (CLOSE-WAIT) until its timer
 * fired, an fd each. */
typedef struct {
  HbHttp  *http;
  GSocket *socket;     /* weak: the entry goes when the socket does */
  guint    timeout_id;
  guint    then_ms;    /* after the check for a closed socket: the idle timeout */
  GSource *eof_watch;  /* while idle: sees the client close it */
} Conn;

/* ------------------------------------------------------------------ */
/* Before a body is read                                               */

/* A request refused before its body is read: libsoup would read the body
 * (all of it, whatever its announced length) before sending any answer,
 * so the connection is taken from it, the answer written, the sending
 * side shut, and what the client still sends read and dropped for at most
 * LINGER_MS (so that it sees the answer, not a reset), then closed. */
typedef struct {
  GIOStream    *stream;
  GSocket      *socket;
  GCancellable *cancellable;
  char         *response;
  gsize         length;
  gsize         drained;
  guint         timeout_id;
  char          buffer[16384];
} Refusal;

static void
refusal_free (Refusal *r)
{
  g_clear_handle_id (&r->timeout_id, g_source_remove);
  g_io_stream_close (r->stream, NULL, NULL);
  g_object_unref (r->stream);
  g_clear_object (&r->socket);
  g_object_unref (r->cancellable);
  g_free (r->response);
  g_free (r);
}

static gboolean
on_refusal_timeout (gpointer user_data)
{
  Refusal *r = user_data;

  r->timeout_id = 0;
  g_cancellable_cancel (r->cancellable);   /* the pending operation ends and frees it */
  return G_SOURCE_REMOVE;
}

static void
on_refusal_drained (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Refusal *r = user_data;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, NULL);

  if (n <= 0 || (r->drained += (gsize) n) > LINGER_BYTES)
    {
      refusal_free (r);
      return;
    }
  g_input_stream_read_async (G_INPUT_STREAM (source), r->buffer, sizeof r->buffer, G_PRIORITY_LOW,
                             r->cancellable, on_refusal_drained, r);
}

static void
on_refusal_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Refusal *r = user_data;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, NULL) ||
      r->socket == NULL || !g_socket_shutdown (r->socket, FALSE, TRUE, NULL))
    {
      refusal_free (r);
      return;
    }
  g_input_stream_read_async (g_io_stream_get_input_stream (r->stream), r->buffer, sizeof r->buffer,
                             G_PRIORITY_LOW, r->cancellable, on_refusal_drained, r);
}

static void conn_forget (HbHttp *self, GSocket *socket);

static void
refuse_early (HbHttp            *self,
              SoupServerMessage *msg,
              guint              status,
              const char        *header,
              const char        *header_value,
              const char        *format,
              ...) G_GNUC_PRINTF (6, 7);

static void
refuse_early (HbHttp            *self,
              SoupServerMessage *msg,
              guint              status,
              const char        *header,
              const char        *header_value,
              const char        *format,
              ...)
{
  g_autofree char *message = NULL;
  g_autofree char *body = NULL;
  g_autofree char *date = NULL;
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  GSocket *socket = soup_server_message_get_socket (msg);
  GString *response = g_string_new (NULL);
  gsize length;
  Refusal *r;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  body = error_text (status, message, &length);
  date = soup_date_time_to_string (now, SOUP_DATE_HTTP);

  g_string_append_printf (response, "HTTP/1.%c %u %s\r\n",
                          soup_server_message_get_http_version (msg) == SOUP_HTTP_1_0 ? '0' : '1', status,
                          status == STATUS_TOO_MANY_REQUESTS ? "Too Many Requests" : soup_status_get_phrase (status));
  g_string_append_printf (response, "Date: %s\r\nServer: heartbeatd\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\nConnection: close\r\n", date, length);
  if (header)
    g_string_append_printf (response, "%s: %s\r\n", header, header_value);
  g_string_append (response, "\r\n");
  if (strcmp (soup_server_message_get_method (msg), "HEAD") != 0)
    g_string_append_len (response, body, (gssize) length);

  r = g_new0 (Refusal, 1);
  r->socket = socket ? g_object_ref (socket) : NULL;
  r->cancellable = g_cancellable_new ();
  r->length = response->len;
  r->response = g_string_free (response, FALSE);
  if (socket)
    conn_forget (self, socket);
  /* @msg is not to be touched after this */
  r->stream = soup_server_message_steal_connection (msg);
  if (r->stream == NULL)
    {
      g_clear_object (&r->socket);
      g_object_unref (r->cancellable);
      g_free (r->response);
      g_free (r);
      return;
    }
  r->timeout_id = g_timeout_add (LINGER_MS, on_refusal_timeout, r);
  g_output_stream_write_all_async (g_io_stream_get_output_stream (r->stream), r->response, r->length,
                                   G_PRIORITY_DEFAULT, r->cancellable, on_refusal_written, r);
}

/* The value of the single Content-Length header, strictly: digits only,
 * no overflow, one value. Returns FALSE if it is malformed; *present says
 * whether there is one. */
static gboolean
get_content_length (SoupMessageHeaders *headers,
                    gboolean           *present,
                    guint64            *value)
{
  SoupMessageHeadersIter iter;
  const char *name, *text;
  guint n = 0;

  *present = FALSE;
  *value = 0;
  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &text))
    {
      if (g_ascii_strcasecmp (name, "Content-Length") != 0)
        continue;
      if (++n > 1 || *text == '\0')
        return FALSE;
      *present = TRUE;
      for (const char *p = text; *p; p++)
        {
          if (!g_ascii_isdigit (*p) || *value > (G_MAXUINT64 - (guint64) (*p - '0')) / 10)
            return FALSE;
          *value = *value * 10 + (guint64) (*p - '0');
        }
    }
  return TRUE;
}

/* Whether @host (a Host header) names this server: localhost, 127.0.0.1,
 * [::1] or the bound address, with our port or none. */
static gboolean
host_is_ours (HbHttp     *self,
              const char *host)
{
  g_autofree char *name = NULL;
  g_autoptr(GInetAddress) address = NULL;
  const char *port = NULL;

  if (host[0] == '[')
    {
      const char *end = strchr (host, ']');

      if (end == NULL)
        return FALSE;
      name = g_strndup (host + 1, (gsize) (end - host - 1));
      if (end[1] == ':')
        port = end + 2;
      else if (end[1] != '\0')
        return FALSE;
      address = g_inet_address_new_from_string (name);
      if (address == NULL || g_inet_address_get_family (address) != G_SOCKET_FAMILY_IPV6)
        return FALSE;
    }
  else
    {
      const char *colon = strchr (host, ':');

      name = colon ? g_strndup (host, (gsize) (colon - host)) : g_strdup (host);
      port = colon ? colon + 1 : NULL;
      if (g_ascii_strcasecmp (name, "localhost") != 0)
        {
          address = g_inet_address_new_from_string (name);
          if (address == NULL || g_inet_address_get_family (address) != G_SOCKET_FAMILY_IPV4)
            return FALSE;
        }
    }
  if (port)
    {
      guint64 number;

      if (!g_ascii_string_to_unsigned (port, 10, 1, 65535, &number, NULL) || number != self->port)
        return FALSE;
    }
  if (address == NULL)
    return TRUE;   /* localhost */
  if (self->address && g_inet_address_equal (address, self->address))
    return TRUE;
  {
    g_autoptr(GInetAddress) v4 = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
    g_autoptr(GInetAddress) v6 = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV6);

    return g_inet_address_equal (address, v4) || g_inet_address_equal (address, v6);
  }
}

/* Before a body is read: refuse a foreign Host, a write without a token
 * (when tokens are configured), and a body too large or of unknown size,
 * without reading the body. */
void
on_request_headers (SoupServer        *server,
                    SoupServerMessage *msg,
                    const char        *path,
                    GHashTable        *query,
                    gpointer           user_data)
{
  HbHttp *self = user_data;
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *method = soup_server_message_get_method (msg);
  /* several Host headers come as one list, which names no host */
  const char *host = soup_message_headers_get_list (headers, "Host");
  gboolean privileged, present;
  guint64 length;

  if (self->check_host &&
      (host ? !host_is_ours (self, host) : soup_server_message_get_http_version (msg) != SOUP_HTTP_1_0))
    {
      refuse_early (self, msg, SOUP_STATUS_MISDIRECTED_REQUEST, NULL, NULL,
                    "This server answers requests for localhost only (Host: localhost:%u), not for “%s”",
                    self->port, host ? host : "");
      return;
    }
  if (strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0 && self->tokens && !may_write (self, msg, &privileged))
    {
      refuse_early (self, msg, SOUP_STATUS_UNAUTHORIZED, "WWW-Authenticate", "Bearer realm=\"heartbeatd\"",
                    "Writes need “Authorization: Bearer <token>” with a configured token");
      return;
    }
  if (soup_message_headers_get_one (headers, "Transfer-Encoding") != NULL)
    {
      refuse_early (self, msg, SOUP_STATUS_LENGTH_REQUIRED, NULL, NULL,
                    "A body needs a Content-Length of at most %d bytes", HB_HTTP_MAX_BODY);
      return;
    }
  if (!get_content_length (headers, &present, &length))
    {
      refuse_early (self, msg, SOUP_STATUS_BAD_REQUEST, NULL, NULL,
                    "The Content-Length must be one decimal number");
      return;
    }
  if (length > HB_HTTP_MAX_BODY)
    {
      refuse_early (self, msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, NULL, NULL,
                    "The body is larger than %d bytes", HB_HTTP_MAX_BODY);
      return;
    }
  switch (soup_message_headers_get_encoding (headers))
    {
    case SOUP_ENCODING_CONTENT_LENGTH:
    case SOUP_ENCODING_NONE:
      break;
    case SOUP_ENCODING_UNRECOGNIZED:
    case SOUP_ENCODING_EOF:
    case SOUP_ENCODING_CHUNKED:
    case SOUP_ENCODING_BYTERANGES:
    default:
      refuse_early (self, msg, SOUP_STATUS_LENGTH_REQUIRED, NULL, NULL,
                    "A body needs a Content-Length of at most %d bytes", HB_HTTP_MAX_BODY);
      break;
    }
}

/* ------------------------------------------------------------------ */
/* Timeouts                                                            */

static void on_conn_socket_gone (gpointer data, GObject *where_the_socket_was);

static void
conn_unwatch (Conn *conn)
{
  if (conn->eof_watch)
    {
      g_source_destroy (conn->eof_watch);
      g_clear_pointer (&conn->eof_watch, g_source_unref);
    }
}

static void
conn_free (gpointer data)
{
  Conn *conn = data;

  g_clear_handle_id (&conn->timeout_id, g_source_remove);
  conn_unwatch (conn);
  if (conn->socket)
    g_object_weak_unref (G_OBJECT (conn->socket), on_conn_socket_gone, conn);
  g_free (conn);
}

static void
on_conn_socket_gone (gpointer  data,
                     GObject  *where_the_socket_was)
{
  Conn *conn = data;

  conn->socket = NULL;
  g_hash_table_remove (conn->http->conns, where_the_socket_was);
}

static void
conn_forget (HbHttp  *self,
             GSocket *socket)
{
  g_hash_table_remove (self->conns, socket);
}

/* An idle connection became readable: the next request (libsoup reads it)
 * or the end of the stream. Debian 12's libsoup 3.2 drops a connection the
 * client closed without closing its socket, so every such connection kept
 * an fd (CLOSE-WAIT) for the daemon's lifetime: a local client could use
 * them all up. The end of the stream is seen here and the socket closed. */
static gboolean
on_conn_readable (GSocket      *socket,
                  GIOCondition  condition,
                  gpointer      user_data)
{
  Conn *conn = user_data;
  HbHttp *self = conn->http;
  char byte;
  gssize n;

  /* Never wait here: libsoup watches the same socket and may have taken
   * what woke us up (a GSocket peek would block on a blocking socket). */
  n = recv (g_socket_get_fd (socket), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0)
    {
      /* a request: libsoup's; request-started arms its timer */
      g_clear_pointer (&conn->eof_watch, g_source_unref);
      return G_SOURCE_REMOVE;
    }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return G_SOURCE_CONTINUE;

  g_debug ("An idle HTTP connection was closed by its client");
  g_clear_pointer (&conn->eof_watch, g_source_unref);
  g_socket_close (socket, NULL);
  g_hash_table_remove (self->conns, socket);
  return G_SOURCE_REMOVE;
}

static gboolean
on_conn_timeout (gpointer user_data)
{
  Conn *conn = user_data;
  HbHttp *self = conn->http;

  conn->timeout_id = 0;
  if (!g_socket_is_closed (conn->socket) && conn->then_ms)
    {
      /* still open after its request: wait for the next one, or for the
       * client to close it */
      conn->timeout_id = g_timeout_add (conn->then_ms, on_conn_timeout, conn);
      conn->then_ms = 0;
      if (conn->eof_watch == NULL)
        {
          conn->eof_watch = g_socket_create_source (conn->socket, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
          g_source_set_callback (conn->eof_watch, (GSourceFunc) G_CALLBACK (on_conn_readable), conn, NULL);
          g_source_attach (conn->eof_watch, g_main_context_get_thread_default ());
        }
      return G_SOURCE_REMOVE;
    }
  if (!g_socket_is_closed (conn->socket))
    {
      g_debug ("Closing an HTTP connection that was too slow or idle for too long");
      /* the client sees the end at once; the fd is closed below when the
       * end comes back, whether libsoup closes it or not */
      g_socket_shutdown (conn->socket, TRUE, TRUE, NULL);
      conn_unwatch (conn);
      conn->eof_watch = g_socket_create_source (conn->socket, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
      g_source_set_callback (conn->eof_watch, (GSourceFunc) G_CALLBACK (on_conn_readable), conn, NULL);
      g_source_attach (conn->eof_watch, g_main_context_get_thread_default ());
      return G_SOURCE_REMOVE;
    }
  g_hash_table_remove (self->conns, conn->socket);
  return G_SOURCE_REMOVE;
}

/* (Re)starts the timer of @socket's connection: shut down in @ms, or,
 * with @then_ms, forgotten if it is closed by then and else shut down
 * @then_ms later. */
static void
conn_arm (HbHttp  *self,
          GSocket *socket,
          guint    ms,
          guint    then_ms)
{
  Conn *conn = g_hash_table_lookup (self->conns, socket);

  if (conn == NULL)
    {
      conn = g_new0 (Conn, 1);
      conn->http = self;
      conn->socket = socket;
      g_object_weak_ref (G_OBJECT (socket), on_conn_socket_gone, conn);
      g_hash_table_insert (self->conns, socket, conn);
    }
  g_clear_handle_id (&conn->timeout_id, g_source_remove);
  conn_unwatch (conn);
  conn->then_ms = then_ms;
  conn->timeout_id = g_timeout_add (ms, on_conn_timeout, conn);
}

static void
on_got_body (SoupServerMessage *msg,
             HbHttp            *self)
{
  GSocket *socket = soup_server_message_get_socket (msg);

  /* the whole request is in: the handler answers (a stream has no
   * timeout; an answer the client does not read is ended by the socket's
   * timeout, see on_request_started()) */
  if (socket)
    conn_forget (self, socket);
}

static void
on_live_socket_gone (gpointer  data,
                     GObject  *where_the_socket_was)
{
  HbHttp *self = data;

  g_hash_table_remove (self->live, where_the_socket_was);
}

/* The connections open now, and in *@from_peer those of @peer: sockets
 * closed meanwhile (libsoup may keep a closed one referenced) are
 * forgotten. */
static guint
count_connections (HbHttp     *self,
                   const char *peer,
                   guint      *from_peer)
{
  GHashTableIter iter;
  gpointer socket, owner;

  *from_peer = 0;
  g_hash_table_iter_init (&iter, self->live);
  while (g_hash_table_iter_next (&iter, &socket, &owner))
    if (g_socket_is_closed (socket))
      {
        g_object_weak_unref (socket, on_live_socket_gone, self);
        g_hash_table_iter_remove (&iter);
      }
    else if (strcmp (owner, peer) == 0)
      (*from_peer)++;
  return g_hash_table_size (self->live);
}

/* A connection over the cap: a short 503 if the socket takes it at once
 * (it is new, its send buffer empty), then closed before libsoup reads
 * anything from it. */
static void
refuse_connection (GSocket    *socket,
                   const char *message)
{
  g_autofree char *body = NULL;
  g_autofree char *response = NULL;
  gsize length;

  body = error_text (SOUP_STATUS_SERVICE_UNAVAILABLE, message, &length);
  response = g_strdup_printf ("HTTP/1.1 503 Service Unavailable\r\nServer: heartbeatd\r\n"
                              "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                              "Retry-After: 1\r\nConnection: close\r\n\r\n%s", length, body);
  g_socket_send_with_blocking (socket, response, strlen (response), FALSE, NULL, NULL);
  g_socket_shutdown (socket, FALSE, TRUE, NULL);
  g_socket_close (socket, NULL);
}

/* A request's first byte, or, the first on a connection, the connection:
 * a connection over HB_HTTP_MAX_CONNECTIONS is closed at once; a new one
 * gets the socket timeout (a read or a write that waits longer fails, and
 * libsoup closes the connection: a client that stops reading its answer
 * loses it, and the memory it held); the headers and the body must arrive
 * within request_timeout. */
void
on_request_started (SoupServer        *server,
                    SoupServerMessage *msg,
                    HbHttp            *self)
{
  GSocket *socket = soup_server_message_get_socket (msg);

  if (socket == NULL)
    return;
  if (!g_hash_table_contains (self->live, socket))
    {
      g_autofree char *peer = socket_peer (socket);
      guint from_peer = 0;

      /* (under the smaller cap, neither can be reached: no count) */
      if (g_hash_table_size (self->live) >= MIN (self->max_connections, self->max_connections_per_peer))
        {
          g_autofree char *message = NULL;

          if (count_connections (self, peer, &from_peer) >= self->max_connections)
            message = g_strdup_printf ("Too many HTTP connections are open (at most %u); try again later",
                                       self->max_connections);
          else if (from_peer >= self->max_connections_per_peer)
            message = g_strdup_printf ("Too many HTTP connections are open from %s (at most %u from one "
                                       "user or address); try again later", peer, self->max_connections_per_peer);
          if (message)
            {
              warn_cap (self, "too many connections, in all or from one peer; new ones are closed at once "
                              "(see HB_HTTP_MAX_CONNECTIONS)");
              /* before libsoup reads: its first read fails, and it drops
               * the connection */
              refuse_connection (socket, message);
              return;
            }
        }
      g_hash_table_insert (self->live, socket, g_steal_pointer (&peer));
      g_object_weak_ref (G_OBJECT (socket), on_live_socket_gone, self);
      g_socket_set_timeout (socket, MAX (1, (self->idle_timeout + 999) / 1000));
    }
  conn_arm (self, socket, self->request_timeout, 0);
  g_signal_connect_object (msg, "got-body", G_CALLBACK (on_got_body), self, 0);
}

/* After a request: a connection kept alive may wait idle_timeout for the
 * next (checked once the main loop had a turn, when libsoup closed the
 * connections it does not keep). */
void
on_request_done (SoupServer        *server,
                 SoupServerMessage *msg,
                 HbHttp            *self)
{
  GSocket *socket = soup_server_message_get_socket (msg);

  if (socket && !g_socket_is_closed (socket))
    conn_arm (self, socket, 0, self->idle_timeout);
}

/* ------------------------------------------------------------------ */
/* Who is at the other end                                             */

/* The uid that owns the client's end of a loopback connection, asked of
 * the kernel with one exact sock_diag lookup (NETLINK_SOCK_DIAG,
 * SOCK_DIAG_BY_FAMILY without NLM_F_DUMP: a hash lookup, as ss(8) does
 * for one socket): the TCP socket whose local address is our remote one
 * and whose remote address is our local one. /proc/net/tcp would tell the
 * same, but the kernel writes it by walking its whole table of
 * connections, some 5 ms here: too much for every new connection. In a
 * user namespace (PrivateUsers=) a uid it does not map reads as the
 * overflow uid. */
static gboolean
loopback_peer_uid (GSocketAddress *local,
                   GSocketAddress *remote,
                   guint          *uid)
{
  struct {
    struct nlmsghdr         header;
    struct inet_diag_req_v2 request;
  } query = { 0 };
  union {
    struct nlmsghdr header;
    char            bytes[8192];
  } answer;
  struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
  GInetAddress *theirs, *ours;
  const struct nlmsghdr *h;
  gsize size;
  gssize got;
  int fd;

  if (!G_IS_INET_SOCKET_ADDRESS (local) || !G_IS_INET_SOCKET_ADDRESS (remote))
    return FALSE;
  theirs = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote));
  ours = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (local));
  size = g_inet_address_get_native_size (theirs);
  if (!g_inet_address_get_is_loopback (theirs) || size != g_inet_address_get_native_size (ours) ||
      size > sizeof query.request.id.idiag_src)
    return FALSE;

  query.header.nlmsg_len = sizeof query;
  query.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  query.header.nlmsg_flags = NLM_F_REQUEST;
  query.request.sdiag_family = g_inet_address_get_family (theirs) == G_SOCKET_FAMILY_IPV6 ? AF_INET6 : AF_INET;
  query.request.sdiag_protocol = IPPROTO_TCP;
  query.request.idiag_states = ~0U;
  /* the client's socket: its source is our remote end */
  query.request.id.idiag_sport = htons (g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (remote)));
  query.request.id.idiag_dport = htons (g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local)));
  memcpy (query.request.id.idiag_src, g_inet_address_to_bytes (theirs), size);
  memcpy (query.request.id.idiag_dst, g_inet_address_to_bytes (ours), size);
  query.request.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  query.request.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

  fd = socket (AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0)
    return FALSE;
  if (sendto (fd, &query, sizeof query, 0, (struct sockaddr *) &kernel, sizeof kernel) != (gssize) sizeof query)
    {
      close (fd);
      return FALSE;
    }
  do
    got = recv (fd, answer.bytes, sizeof answer.bytes, 0);
  while (got < 0 && errno == EINTR);
  close (fd);
  if (got < 0)
    return FALSE;
  /* one message: the socket (or NLMSG_ERROR, ENOENT, if it has gone) */
  h = &answer.header;
  if ((gsize) got < NLMSG_LENGTH (sizeof (struct inet_diag_msg)) || h->nlmsg_len > (gsize) got ||
      h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH (sizeof (struct inet_diag_msg)))
    return FALSE;
  *uid = ((const struct inet_diag_msg *) NLMSG_DATA (h))->idiag_uid;
  return TRUE;
}

/* Who is at the other end of @socket, for the per-peer limits of
 * connections and event streams: on loopback every local process has the
 * same address (and any 127.0.0.0/8 one), so the uid of the client's
 * socket, when it can be found; else the address. */
char *
socket_peer (GSocket *socket)
{
  g_autoptr(GSocketAddress) local = g_socket_get_local_address (socket, NULL);
  g_autoptr(GSocketAddress) remote = g_socket_get_remote_address (socket, NULL);
  guint uid;

  if (local && remote && loopback_peer_uid (local, remote, &uid))
    return g_strdup_printf ("uid %u", uid);
  if (G_IS_INET_SOCKET_ADDRESS (remote))
    return g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)));
  return g_strdup ("an unknown address");
}

/* ------------------------------------------------------------------ */
/* Set-up                                                              */

void
hb_http_guards_init (HbHttp *self)
{
  self->conns = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, conn_free);
  self->live = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);  /* GSocket → its peer */
}

/* Forgets every connection (the server is gone). */
void
hb_http_guards_dispose (HbHttp *self)
{
  GHashTableIter iter;
  gpointer socket;

  g_hash_table_remove_all (self->conns);
  g_hash_table_iter_init (&iter, self->live);
  while (g_hash_table_iter_next (&iter, &socket, NULL))
    {
      g_object_weak_unref (socket, on_live_socket_gone, self);
      g_hash_table_iter_remove (&iter);
    }
}
