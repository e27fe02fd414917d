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
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* POLLRDHUP */
#endif
#include "hb-http-private.h"

#include <errno.h>
#include <poll.h>
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

/* An open connection, from its first request until its socket goes.
 * The socket is watched, not held: libsoup closes a connection by
 * dropping its last reference, and a reference here kept every
 * connection a client had closed open (CLOSE-WAIT), an fd each. */
struct _Conn {
  HbHttp   *http;
  GSocket  *socket;     /* weak: the entry goes when the socket does */
  char     *peer;       /* who it is counted for (socket_peer()) */
  GSource  *source;     /* its timer and watch (ConnSource); NULL once stolen */
  GPollFD   pollfd;     /* the socket, for its client's end while idle */
  gint64    deadline;   /* monotonic µs: shut down then; 0: none */
  gint64    tick;       /* µs: the source fires at least this often while a deadline runs */
  gboolean  busy;       /* a request is read or answered */
  gboolean  watching;   /* pollfd is in the source */
  gboolean  armed;      /* the source has a ready time */
  gboolean  closing;    /* shut down: closed when the end comes back */
  gboolean  ended;      /* the client's end seen while idle: closed at the next turn */
  SoupServerMessage *last; /* while kept alive between requests: the last one (its bodies
                            * emptied), to take the connection from libsoup (conn_close()) */
  guint64   done_at;    /* HbHttp.quiet_turns when the last request was done */
  guint     refs_at_done; /* the socket's references then (libsoup_reads_socket()) */
};

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

static void conn_stop (Conn *conn);

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
  Conn *conn;
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
  if (socket && (conn = g_hash_table_lookup (self->conns, socket)) != NULL)
    conn_stop (conn);   /* counted until the socket goes */
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
      if (strlen (name) != strlen ("Content-Length") || g_ascii_strcasecmp (name, "Content-Length") != 0)
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

/* The Host headers a client names this server with, as they are most
 * often written: localhost, 127.0.0.1, [::1] and the bound address, each
 * with the port and without. host_is_ours() takes them without parsing
 * them; it parses any other. Made once the port is known. */
void
hb_http_set_host_names (HbHttp *self)
{
  g_autofree char *bound = self->address ? g_inet_address_to_string (self->address) : NULL;
  gboolean v6 = self->address && g_inet_address_get_family (self->address) == G_SOCKET_FAMILY_IPV6;
  GPtrArray *names = g_ptr_array_new ();

  g_ptr_array_add (names, g_strdup ("localhost"));
  g_ptr_array_add (names, g_strdup ("127.0.0.1"));
  g_ptr_array_add (names, g_strdup ("[::1]"));
  g_ptr_array_add (names, g_strdup_printf ("localhost:%u", self->port));
  g_ptr_array_add (names, g_strdup_printf ("127.0.0.1:%u", self->port));
  g_ptr_array_add (names, g_strdup_printf ("[::1]:%u", self->port));
  if (bound)
    {
      g_ptr_array_add (names, v6 ? g_strdup_printf ("[%s]", bound) : g_strdup (bound));
      g_ptr_array_add (names, g_strdup_printf (v6 ? "[%s]:%u" : "%s:%u", bound, self->port));
    }
  g_ptr_array_add (names, NULL);
  g_strfreev (self->host_names);
  self->host_names = (GStrv) g_ptr_array_free (names, FALSE);
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
  gsize length = strlen (host);

  /* the usual spellings, without a GInetAddress per request */
  for (guint i = 0; self->host_names && self->host_names[i]; i++)
    if (strlen (self->host_names[i]) == length && g_ascii_strcasecmp (host, self->host_names[i]) == 0)
      return TRUE;

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

/* Before a body is read: refuse a foreign Host, a request without the
 * token it needs (hb_http_needed_scope()), and a body too large or of
 * unknown size, without reading the body. */
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
  HbHttpAuthResult result;
  gboolean present;
  guint64 length;
  guint needed;

  if (self->check_host &&
      (host ? !host_is_ours (self, host) : soup_server_message_get_http_version (msg) != SOUP_HTTP_1_0))
    {
      refuse_early (self, msg, SOUP_STATUS_MISDIRECTED_REQUEST, NULL, NULL,
                    "This server answers requests for localhost only (Host: localhost:%u), not for “%s”",
                    self->port, host ? host : "");
      return;
    }
  needed = hb_http_needed_scope (self, method, path);
  if (needed != 0 && (result = hb_http_authenticate (self, msg, needed)) != HB_HTTP_AUTH_OK)
    {
      g_autofree char *value = NULL;
      g_autofree char *message = NULL;
      const char *header;
      guint status;

      message = hb_http_auth_refusal (self, msg, result, needed, &status, &header, &value);
      refuse_early (self, msg, status, header, value, "%s", message);
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
  if (length > HB_HTTP_MAX_BODY && (length > HB_HTTP_PING_MAX_BODY || !hb_http_is_ping_path (path)))
    {
      refuse_early (self, msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, NULL, NULL, "The body is larger than %d bytes",
                    hb_http_is_ping_path (path) ? HB_HTTP_PING_MAX_BODY : HB_HTTP_MAX_BODY);
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
/* Connections and their timeouts                                      */

/* One GSource per connection, for its whole life, that serves as both its
 * timer and its watch (see Conn). Nothing is created, connected or
 * allocated per request: a request moves the connection's deadline, a
 * number. The source is not re-armed then either (g_source_set_ready_time()
 * wakes the main context up, a system call): while a deadline runs, it
 * fires min (request_timeout, idle_timeout) (conn->tick) after it last
 * did at the latest, so never after a deadline a request sets, and sets
 * itself again then, from its own dispatch. */
typedef struct {
  GSource  source;
  Conn    *conn;
} ConnSource;

static void conn_free (gpointer data);

/* The socket is gone (libsoup dropped it): so is its entry. */
static void
on_conn_socket_gone (gpointer  data,
                     GObject  *where_the_socket_was)
{
  Conn *conn = data;

  conn->socket = NULL;
  g_hash_table_remove (conn->http->conns, where_the_socket_was);
}

/* Stops the timer and the watch of @conn; its entry stays (it is counted
 * among the open connections) until its socket goes. */
static void
conn_stop (Conn *conn)
{
  if (conn->source)
    {
      g_source_destroy (conn->source);
      g_clear_pointer (&conn->source, g_source_unref);
    }
}

static void
conn_free (gpointer data)
{
  Conn *conn = data;

  conn_stop (conn);
  if (conn->socket)
    g_object_weak_unref (G_OBJECT (conn->socket), on_conn_socket_gone, conn);
  g_clear_object (&conn->last);
  g_free (conn->peer);
  g_free (conn);
}

/* Whether libsoup's read of @conn's next request still waits on the
 * socket: its source holds one reference to the GSocket more than there
 * were when the last request was done (libsoup creates that source right
 * after request-finished, and destroys it when the read runs). A read
 * that has ended (at the client's end, or timed out) holds none, and
 * neither does one waiting on requests libsoup already holds in its
 * buffer; taking the connection then would crash libsoup 3.2.3, or drop
 * those requests. The reference count is GObject's, read as GLib's own
 * g_object_unref() does; this is a guard over a workaround of one
 * libsoup version, not an API. */
static gboolean
libsoup_reads_socket (Conn *conn)
{
  return (guint) g_atomic_int_get ((gint *) &G_OBJECT (conn->socket)->ref_count) == conn->refs_at_done + 1;
}

/* Whether @conn may be taken from libsoup, which waits for its next
 * request: only between requests (libsoup reads nothing of it before this
 * source, older than libsoup's, sees what arrives: over TLS it is
 * watched for input too, see idle_events()). Over plain HTTP also only
 * once a main loop turn with nothing else to do came since the last
 * request (quiet_turns): libsoup's source is ready while it holds
 * requests the client pipelined, and would have run first; a client that
 * pipelines and then shuts its side down gets every answer. Over TLS such
 * a client, one that ends its TLS session with requests unanswered, loses
 * them: the server may close a connection between any two answers, and
 * waiting for a quiet turn there let most connections go unfreed. And
 * only while libsoup_reads_socket(). */
static gboolean
conn_is_waiting (Conn *conn)
{
  return conn->last != NULL && (conn->http->listening_tls || conn->http->quiet_turns > conn->done_at) &&
         libsoup_reads_socket (conn);
}

/* Closes @conn's socket (libsoup then finds it closed) and forgets it.
 *
 * Between two requests of a kept-alive connection, Debian 12's libsoup
 * 3.2 waits for the next one with nobody to tell when that read fails:
 * a connection its client ended there stayed in the server's list for
 * good, about 2 KB each, some 25 KB over TLS (its GnuTLS session), so
 * that anyone who may connect could grow the daemon a connection at a
 * time (fixed upstream, libsoup d20c6601). It is taken from libsoup
 * instead, through the last request's message, while libsoup waits
 * (conn_is_waiting(); its reading it then would leave nothing to take,
 * and libsoup 3.2.3 crashes if asked to): libsoup drops it, and it is
 * freed. */
static void
conn_close (Conn *conn)
{
  GSocket *socket = conn->socket;
  g_autoptr(SoupServerMessage) last = conn_is_waiting (conn) ? g_steal_pointer (&conn->last) : NULL;
  GIOStream *stream = last ? soup_server_message_steal_connection (last) : NULL;

  g_socket_close (socket, NULL);
  g_hash_table_remove (conn->http->conns, socket);   /* frees @conn */
  g_clear_object (&stream);
}

/* What an idle connection's socket holds when the client ends a TLS
 * session: one record of at most 31 bytes (a close_notify alert: TLS 1.3
 * sends it as application data, 5 + 19 bytes; TLS 1.2 with AES-GCM as an
 * alert, 5 + 26), which no HTTP request fits in. */
static gboolean
is_tls_goodbye (const guint8 *data,
                gssize        n)
{
  return n >= 5 && n <= 31 && (data[0] == 21 || data[0] == 23) && data[1] == 3 &&
         5 + ((data[3] << 8) | data[4]) == n;
}

/* A main loop turn with nothing of higher priority to do: every
 * connection idle since before it is waiting (conn_is_waiting()). */
static gboolean
on_quiet_turn (gpointer user_data)
{
  HbHttp *self = user_data;

  self->quiet_turns++;
  self->quiet_id = 0;
  return G_SOURCE_REMOVE;
}

/* Whether libsoup keeps @msg's connection for a next request (its own
 * rule, which it does not export) */
static gboolean
kept_alive (SoupServerMessage *msg)
{
  SoupMessageHeaders *request = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *response = soup_server_message_get_response_headers (msg);

  if (soup_message_headers_header_contains (response, "Connection", "close"))
    return FALSE;
  if (soup_server_message_get_http_version (msg) == SOUP_HTTP_1_0)
    return soup_message_headers_header_contains (request, "Connection", "Keep-Alive");
  return !soup_message_headers_header_contains (request, "Connection", "close");
}

/* Watches the socket (again) for what @events says. */
static void
conn_watch (Conn   *conn,
            gushort events)
{
  conn->pollfd.events = events;
  if (!conn->watching)
    {
      g_source_add_poll (conn->source, &conn->pollfd);
      conn->watching = TRUE;
    }
}

static void
conn_unwatch (Conn *conn)
{
  if (conn->watching)
    {
      g_source_remove_poll (conn->source, &conn->pollfd);
      conn->watching = FALSE;
    }
}

/* The socket said something (while the connection is idle: the client
 * closed it, or sent a request and closed its end), or the deadline came.
 *
 * Between requests the socket is watched for POLLRDHUP only, which a
 * request does not raise: a client that closes an idle connection is seen
 * at once. Debian 12's libsoup 3.2 drops a connection the client closed
 * without closing its socket, so every such connection kept an fd
 * (CLOSE-WAIT) for the daemon's lifetime: a local client could use them
 * all up. The socket is closed here, at the turn after the end was seen:
 * requests the client sent before its end (pipelined) may wait in
 * libsoup's buffer, not in the socket, and libsoup starts the next of
 * them in the turn it finished the last (its source is ready then, as
 * ours is); a request started meanwhile (on_request_started()) keeps the
 * connection, which is watched again after it. */
static gboolean
conn_dispatch (GSource     *source,
               GSourceFunc  callback,
               gpointer     user_data)
{
  Conn *conn = ((ConnSource *) source)->conn;
  gushort revents = conn->pollfd.revents;
  gint64 now = g_source_get_time (source);

  conn->pollfd.revents = 0;
  if (g_socket_is_closed (conn->socket))
    {
      /* libsoup closed it and still holds it */
      g_hash_table_remove (conn->http->conns, conn->socket);
      return G_SOURCE_REMOVE;
    }
  if (revents != 0 && conn->closing)
    {
      /* the end came back from a connection shut down below */
      conn_close (conn);
      return G_SOURCE_REMOVE;
    }
  if (conn->ended && !conn->busy)
    {
      g_debug ("An idle HTTP connection was closed by its client");
      conn_close (conn);
      return G_SOURCE_REMOVE;
    }
  if (revents != 0 && conn->busy)
    conn_unwatch (conn);   /* libsoup's, while it reads or answers; watched again after */
  else if (revents != 0)
    {
      guint8 bytes[32];
      gssize n;
      gboolean end;

      /* Never wait here: libsoup watches the same socket and may have
       * taken what woke us up (a GSocket peek would block on a blocking
       * socket). */
      n = recv (g_socket_get_fd (conn->socket), bytes, sizeof bytes, MSG_PEEK | MSG_DONTWAIT);
      end = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) ||
            (n > 0 && conn->http->listening_tls && is_tls_goodbye (bytes, n));
      if (end && conn_is_waiting (conn))
        {
          /* before libsoup reads it (this source is older than libsoup's,
           * and dispatched first) */
          g_debug ("An idle HTTP connection was closed by its client");
          conn_close (conn);
          return G_SOURCE_REMOVE;
        }
      if (n > 0 && !end)
        {
          conn_unwatch (conn);   /* a last request: libsoup's; watched again after it */
          g_clear_object (&conn->last);   /* libsoup reads now: no longer to be taken */
        }
      else if (end)
        {
          conn_unwatch (conn);
          g_clear_object (&conn->last);
          conn->ended = TRUE;   /* closed at the next turn, unless libsoup starts a request */
        }
    }

  if (conn->deadline != 0 && now >= conn->deadline)
    {
      if (conn_is_waiting (conn))
        {
          /* idle for too long: taken from libsoup now, while it has read
           * nothing (the socket timeout set in on_request_started() is as
           * long, and may wake libsoup's read in this same turn, after
           * this source) */
          g_debug ("Closing an HTTP connection that was idle for too long");
          conn_close (conn);
          return G_SOURCE_REMOVE;
        }
      g_debug ("Closing an HTTP connection that was too slow or idle for too long");
      /* never taken from libsoup once shut down: libsoup may read the end
       * (or time out) before this source sees it come back, and libsoup
       * 3.2.3 crashes if asked for a connection it has ended a read of */
      g_clear_object (&conn->last);
      /* the client sees the end at once; the fd is closed above when the
       * end comes back, whether libsoup closes it or not */
      g_socket_shutdown (conn->socket, TRUE, TRUE, NULL);
      conn->deadline = 0;
      conn->closing = TRUE;
      conn_watch (conn, G_IO_IN | G_IO_HUP | G_IO_ERR);
    }
  /* next time: the next turn if the client ended; the deadline, or sooner
   * (a request may come meanwhile and set an earlier one); without a
   * deadline, not before one is set */
  conn->armed = conn->ended || conn->deadline != 0;
  g_source_set_ready_time (source, conn->ended ? now : conn->armed ? MIN (conn->deadline, now + conn->tick) : -1);
  return G_SOURCE_CONTINUE;
}

static gboolean
conn_check (GSource *source)
{
  return ((ConnSource *) source)->conn->pollfd.revents != 0;
}

/* What an idle connection is watched for: its client's end (POLLRDHUP,
 * which a request does not raise); over TLS also what arrives, as the end
 * of a TLS session comes first as data (is_tls_goodbye()) */
static gushort
idle_events (HbHttp *self)
{
  return self->listening_tls ? G_IO_IN | POLLRDHUP : POLLRDHUP;
}

static GSourceFuncs conn_source_funcs = {
  .check = conn_check,
  .dispatch = conn_dispatch,
};

/* Sets @conn's deadline @ms from now (0: none), arming its timer only if
 * it was not (see ConnSource). */
static void
conn_set_deadline (Conn *conn,
                   guint ms)
{
  gint64 now;

  if (conn->source == NULL || conn->closing)
    return;
  if (ms == 0)
    {
      conn->deadline = 0;
      return;
    }
  now = g_source_get_time (conn->source);
  conn->deadline = now + (gint64) ms * 1000;
  if (!conn->armed)
    {
      conn->armed = TRUE;
      g_source_set_ready_time (conn->source, MIN (conn->deadline, now + conn->tick));
    }
}

/* The entry of a new connection, its source attached: watched for the
 * client's end (POLLRDHUP, see conn_dispatch()), no deadline yet. */
static Conn *
conn_new (HbHttp  *self,
          GSocket *socket,
          char    *peer)
{
  Conn *conn = g_new0 (Conn, 1);

  conn->http = self;
  conn->socket = socket;
  conn->peer = peer;
  conn->tick = (gint64) MIN (self->request_timeout, self->idle_timeout) * 1000;
  conn->pollfd.fd = g_socket_get_fd (socket);
  conn->source = g_source_new (&conn_source_funcs, sizeof (ConnSource));
  ((ConnSource *) conn->source)->conn = conn;
  g_source_set_static_name (conn->source, "hb-http connection");
  /* its dispatch does not run the main loop: no need to take its fd out
   * of the poll while it runs (and put it back, two wake-ups) */
  g_source_set_can_recurse (conn->source, TRUE);
  conn_watch (conn, idle_events (self));
  g_source_attach (conn->source, g_main_context_get_thread_default ());
  g_object_weak_ref (G_OBJECT (socket), on_conn_socket_gone, conn);
  g_hash_table_insert (self->conns, socket, conn);
  return conn;
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
  Conn *conn;

  *from_peer = 0;
  g_hash_table_iter_init (&iter, self->conns);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &conn))
    if (g_socket_is_closed (conn->socket))
      g_hash_table_iter_remove (&iter);
    else if (strcmp (conn->peer, peer) == 0)
      (*from_peer)++;
  return g_hash_table_size (self->conns);
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

/* [http] tls-client-ca=: the TLS backend asks about every client
 * certificate, also one that its database (the client CAs) verified; only
 * such a one, without an error, is taken. */
static gboolean
on_accept_certificate (SoupServerMessage    *msg,
                       GTlsCertificate      *certificate,
                       GTlsCertificateFlags  errors,
                       gpointer              user_data)
{
  return errors == 0;
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
  Conn *conn;

  if (socket == NULL)
    return;
  conn = g_hash_table_lookup (self->conns, socket);
  if (conn == NULL)
    {
      g_autofree char *peer = socket_peer (socket);
      guint from_peer = 0;

      /* (under the smaller cap, neither can be reached: no count) */
      if (g_hash_table_size (self->conns) >= MIN (self->max_connections, self->max_connections_per_peer))
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
      conn = conn_new (self, socket, g_steal_pointer (&peer));
      g_socket_set_timeout (socket, MAX (1, (self->idle_timeout + 999) / 1000));
      if (self->tls_client_ca)
        g_signal_connect (msg, "accept-certificate", G_CALLBACK (on_accept_certificate), NULL);
    }
  conn->busy = TRUE;
  conn->ended = FALSE;   /* a request libsoup had read before the end */
  g_clear_object (&conn->last);
  conn_set_deadline (conn, self->request_timeout);
}

/* The whole request is in (on_request() calls this first): the handler
 * answers (a stream has no timeout; an answer the client does not read is
 * ended by the socket's timeout, see on_request_started()). Not a
 * handler of SoupServer::request-read: a signal with a handler costs
 * every request its emission. */
void
hb_http_request_read (HbHttp            *self,
                      SoupServerMessage *msg)
{
  GSocket *socket = soup_server_message_get_socket (msg);
  Conn *conn = socket ? g_hash_table_lookup (self->conns, socket) : NULL;

  if (conn)
    conn_set_deadline (conn, 0);
}

/* After a request: a connection kept alive may wait idle_timeout for the
 * next, watched for its client's end meanwhile; one libsoup closes goes
 * (when its socket does, or when its source finds it closed). */
void
on_request_done (SoupServer        *server,
                 SoupServerMessage *msg,
                 HbHttp            *self)
{
  GSocket *socket = soup_server_message_get_socket (msg);
  Conn *conn = socket ? g_hash_table_lookup (self->conns, socket) : NULL;

  if (conn == NULL)
    return;
  if (g_socket_is_closed (socket))
    {
      g_hash_table_remove (self->conns, socket);
      return;
    }
  conn->busy = FALSE;
  conn->ended = FALSE;   /* seen again, if it is there, once watched again */
  if (conn->source == NULL || conn->closing)
    return;
  if (kept_alive (msg))
    {
      g_set_object (&conn->last, msg);
      soup_message_body_truncate (soup_server_message_get_request_body (msg));
      soup_message_body_truncate (soup_server_message_get_response_body (msg));
      conn->done_at = self->quiet_turns;
      conn->refs_at_done = (guint) g_atomic_int_get ((gint *) &G_OBJECT (socket)->ref_count);
      if (self->quiet_id == 0)
        self->quiet_id = g_idle_add_full (G_PRIORITY_LOW, on_quiet_turn, self, NULL);
    }
  if (!conn->watching)
    conn_watch (conn, idle_events (self));
  conn_set_deadline (conn, self->idle_timeout);
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
}

/* Forgets every connection (the server is gone). */
void
hb_http_guards_dispose (HbHttp *self)
{
  g_clear_handle_id (&self->quiet_id, g_source_remove);
  g_hash_table_remove_all (self->conns);
}

/* Who @socket's connection was counted for, or NULL. */
const char *
hb_http_conn_peer (HbHttp  *self,
                   GSocket *socket)
{
  Conn *conn = g_hash_table_lookup (self->conns, socket);

  return conn ? conn->peer : NULL;
}
