/* hb-bus-filter.c: a message bus connection that never hands GDBus a
 * message it cannot decode
 *
 * dbus-daemon forwards some messages GDBus refuses to decode (a body that
 * nests variants deeper than GDBus allows, for one), and GDBus closes a
 * connection on the first such message it reads (gdbusprivate.c). Any
 * client could thus cut heartbeatd from the bus, again and again.
 *
 * hb_bus_filter_connect_sync() opens the bus socket itself
 * (g_dbus_address_get_stream_sync()), authenticates with EXTERNAL as GDBus
 * would (the credentials byte, then "AUTH EXTERNAL <uid>"; the bus reads
 * the peer's credentials from the socket, SO_PEERCRED on Linux), and gives
 * GDBus a GIOStream whose input side frames each D-Bus message
 * (g_dbus_message_bytes_needed()), tries g_dbus_message_new_from_blob() on
 * it, and passes every message that decodes through byte for byte. A
 * message that does not decode is dropped with a rate-limited warning that
 * names its sender. Output goes to the socket unchanged (through a stream
 * of its own: GDBus writes to the socket directly when it sees a
 * GSocketOutputStream).
 *
 * What GDBus loses by not having the GSocketConnection: passing unix file
 * descriptors (heartbeatd receives and sends none) and the peer's
 * credentials (heartbeatd never asks for the bus's). An address that is
 * not a unix socket, or a bus that does not accept EXTERNAL at once,
 * gives G_IO_ERROR_NOT_SUPPORTED: the caller then connects the usual way.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-bus-filter.h"

#include <gio/gunixconnection.h>
#include <string.h>
#include <unistd.h>

/* The D-Bus specification's maximum message size (2^27). */
#define MAX_MESSAGE_SIZE  (128 * 1024 * 1024)
/* What one read from the socket asks for. */
#define READ_CHUNK        (64 * 1024)
/* At most one warning about dropped messages in this many seconds. */
#define DROP_LOG_SECONDS  10
/* How long the bus may take to answer the authentication. */
#define AUTH_TIMEOUT_SECONDS 25
#define AUTH_LINE_MAX     512

/* ------------------------------------------------------------------ */
/* Dropped messages                                                    */

G_LOCK_DEFINE_STATIC (dropped);
static guint64 dropped_unlogged;
static gint64  dropped_logged_at;   /* monotonic µs; 0: never */

static guint32
read_u32 (const guint8 *p,
          gboolean      big_endian)
{
  guint32 v;

  memcpy (&v, p, sizeof v);
  return big_endian ? GUINT32_FROM_BE (v) : GUINT32_FROM_LE (v);
}

/* The SENDER header field of the message in @blob, if it can be read and
 * is a bus name, else NULL. Reads only the header fields (basic types),
 * each bounded by @len. */
static char *
read_sender (const guint8 *blob,
             gsize         len)
{
  gboolean big_endian;
  gsize end, off = 16;

  if (len < 16 || (blob[0] != 'l' && blob[0] != 'B'))
    return NULL;
  big_endian = blob[0] == 'B';
  end = 16 + (gsize) read_u32 (blob + 12, big_endian);
  if (end > len)
    return NULL;
  while (off < end)
    {
      guint8 code;
      gsize size;

      off = (off + 7) & ~(gsize) 7;
      /* code, signature length (1), type, NUL */
      if (off + 4 > end || blob[off + 1] != 1 || blob[off + 3] != '\0')
        return NULL;
      code = blob[off];
      switch (blob[off + 2])
        {
        case 'y':
          size = 1;
          break;
        case 'n': case 'q':
          size = 2;
          break;
        case 'b': case 'i': case 'u': case 'h':
          size = 4;
          break;
        case 'x': case 't': case 'd':
          size = 8;
          break;
        case 's': case 'o':
          {
            gsize str_len;

            off = ((off + 4) + 3) & ~(gsize) 3;
            if (off + 4 > end)
              return NULL;
            str_len = read_u32 (blob + off, big_endian);
            off += 4;
            if (str_len > end - off || end - off - str_len < 1)
              return NULL;
            if (code == 7)
              {
                g_autofree char *sender = g_strndup ((const char *) blob + off, str_len);

                return strlen (sender) == str_len && g_dbus_is_name (sender) ? g_steal_pointer (&sender) : NULL;
              }
            off += str_len + 1;
            continue;
          }
        case 'g':
          off += 4;
          if (off + 1 > end || (gsize) blob[off] + 2 > end - off)
            return NULL;
          off += (gsize) blob[off] + 2;
          continue;
        default:
          return NULL;
        }
      off = (off + 4 + size - 1) & ~(size - 1);
      if (size > end - off)
        return NULL;
      off += size;
    }
  return NULL;
}

static void
note_dropped (const guint8 *blob,
              gsize         len,
              const GError *error)
{
  gint64 now = g_get_monotonic_time ();
  guint64 unlogged = 0;
  gboolean log = FALSE;

  G_LOCK (dropped);
  dropped_unlogged++;
  if (dropped_logged_at == 0 || now - dropped_logged_at >= DROP_LOG_SECONDS * G_USEC_PER_SEC)
    {
      log = TRUE;
      unlogged = dropped_unlogged;
      dropped_unlogged = 0;
      dropped_logged_at = now;
    }
  G_UNLOCK (dropped);

  if (log)
    {
      g_autofree char *sender = read_sender (blob, len);

      g_warning ("Dropped %" G_GUINT64_FORMAT " D-Bus %s that GDBus cannot decode "
                 "(the last one %" G_GSIZE_FORMAT " bytes from %s: %s); "
                 "at most one such line every %d s",
                 unlogged, unlogged == 1 ? "message" : "messages", len,
                 sender ? sender : "an unknown sender", error->message, DROP_LOG_SECONDS);
    }
}

/* ------------------------------------------------------------------ */
/* HbBusInput: the socket's input, whole decodable messages only        */

#define HB_TYPE_BUS_INPUT (hb_bus_input_get_type ())
G_DECLARE_FINAL_TYPE (HbBusInput, hb_bus_input, HB, BUS_INPUT, GInputStream)

struct _HbBusInput {
  GInputStream  parent_instance;
  GInputStream *base;     /* the socket's; pollable */
  /* what was read from the bus: [pos, judged) are whole messages that
   * decode, for GDBus; [judged, len) is not a whole message yet */
  GByteArray   *buffer;
  gsize         pos;
  gsize         judged;
  gboolean      eof;
  GError       *failure;  /* the input cannot be framed: the bus is broken */
};

static void hb_bus_input_pollable_init (GPollableInputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (HbBusInput, hb_bus_input, G_TYPE_INPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                      hb_bus_input_pollable_init))

/* Judges the whole messages after self->judged: keeps those that decode,
 * drops the others. */
static void
judge (HbBusInput *self)
{
  while (self->failure == NULL && self->buffer->len - self->judged >= 16)
    {
      guint8 *start = self->buffer->data + self->judged;
      gsize available = self->buffer->len - self->judged;
      g_autoptr(GError) error = NULL;
      g_autoptr(GDBusMessage) message = NULL;
      gssize needed = g_dbus_message_bytes_needed (start, 16, &error);

      if (needed < 16 || needed > MAX_MESSAGE_SIZE)
        {
          self->failure = g_error_new (G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                       "The bus sent a message that cannot be framed: %s",
                                       error ? error->message : "bad size");
          return;
        }
      if (available < (gsize) needed)
        return;
      message = g_dbus_message_new_from_blob (start, (gsize) needed, G_DBUS_CAPABILITY_FLAGS_NONE, &error);
      if (message)
        {
          self->judged += (gsize) needed;
          continue;
        }
      note_dropped (start, (gsize) needed, error);
      g_byte_array_remove_range (self->buffer, (guint) self->judged, (guint) needed);
    }
}

static gssize
pull (HbBusInput    *self,
      void          *buffer,
      gsize          count,
      gboolean       blocking,
      GCancellable  *cancellable,
      GError       **error)
{
  for (;;)
    {
      guint old_len;
      gssize n;

      if (self->judged > self->pos)
        {
          gsize give = MIN (count, self->judged - self->pos);

          memcpy (buffer, self->buffer->data + self->pos, give);
          self->pos += give;
          return (gssize) give;
        }
      if (self->failure)
        {
          g_propagate_error (error, g_error_copy (self->failure));
          return -1;
        }
      if (self->eof)
        return 0;   /* a partial message at the end: GDBus sees the end */

      /* what GDBus took goes; what is not judged yet stays */
      if (self->pos > 0)
        {
          g_byte_array_remove_range (self->buffer, 0, (guint) self->pos);
          self->judged -= self->pos;
          self->pos = 0;
        }
      old_len = self->buffer->len;
      g_byte_array_set_size (self->buffer, old_len + READ_CHUNK);
      n = g_pollable_stream_read (self->base, self->buffer->data + old_len, READ_CHUNK,
                                  blocking, cancellable, error);
      g_byte_array_set_size (self->buffer, old_len + (guint) MAX (n, 0));
      if (n < 0)
        return -1;
      if (n == 0)
        self->eof = TRUE;
      else
        judge (self);
    }
}

static gssize
hb_bus_input_read (GInputStream  *stream,
                   void          *buffer,
                   gsize          count,
                   GCancellable  *cancellable,
                   GError       **error)
{
  return pull (HB_BUS_INPUT (stream), buffer, count, TRUE, cancellable, error);
}

static gboolean
hb_bus_input_close (GInputStream  *stream,
                    GCancellable  *cancellable,
                    GError       **error)
{
  return TRUE;   /* the socket is closed with the HbBusStream */
}

static gboolean
has_something (HbBusInput *self)
{
  return self->judged > self->pos || self->failure || self->eof;
}

static gboolean
hb_bus_input_can_poll (GPollableInputStream *stream)
{
  return g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (HB_BUS_INPUT (stream)->base));
}

static gboolean
hb_bus_input_is_readable (GPollableInputStream *stream)
{
  HbBusInput *self = HB_BUS_INPUT (stream);

  return has_something (self) || g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (self->base));
}

static GSource *
hb_bus_input_create_source (GPollableInputStream *stream,
                            GCancellable         *cancellable)
{
  HbBusInput *self = HB_BUS_INPUT (stream);
  g_autoptr(GSource) child = has_something (self)
      ? g_timeout_source_new (0)
      : g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (self->base), NULL);

  return g_pollable_source_new_full (stream, child, cancellable);
}

static gssize
hb_bus_input_read_nonblocking (GPollableInputStream  *stream,
                               void                  *buffer,
                               gsize                  count,
                               GError               **error)
{
  return pull (HB_BUS_INPUT (stream), buffer, count, FALSE, NULL, error);
}

static void
hb_bus_input_finalize (GObject *object)
{
  HbBusInput *self = HB_BUS_INPUT (object);

  g_clear_object (&self->base);
  g_byte_array_unref (self->buffer);
  g_clear_error (&self->failure);
  G_OBJECT_CLASS (hb_bus_input_parent_class)->finalize (object);
}

static void
hb_bus_input_class_init (HbBusInputClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = hb_bus_input_finalize;
  stream_class->read_fn = hb_bus_input_read;
  stream_class->close_fn = hb_bus_input_close;
}

static void
hb_bus_input_pollable_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = hb_bus_input_can_poll;
  iface->is_readable = hb_bus_input_is_readable;
  iface->create_source = hb_bus_input_create_source;
  iface->read_nonblocking = hb_bus_input_read_nonblocking;
}

static void
hb_bus_input_init (HbBusInput *self)
{
  self->buffer = g_byte_array_sized_new (READ_CHUNK);
}

/* ------------------------------------------------------------------ */
/* HbBusOutput: the socket's output, as it is                           */

/* Not the socket's GSocketOutputStream itself: GDBus writes with
 * g_socket_send_message() on the socket of its GSocketConnection when it
 * sees one, and the stream it is given here is not one. */
#define HB_TYPE_BUS_OUTPUT (hb_bus_output_get_type ())
G_DECLARE_FINAL_TYPE (HbBusOutput, hb_bus_output, HB, BUS_OUTPUT, GOutputStream)

struct _HbBusOutput {
  GOutputStream  parent_instance;
  GOutputStream *base;   /* the socket's; pollable */
};

static void hb_bus_output_pollable_init (GPollableOutputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (HbBusOutput, hb_bus_output, G_TYPE_OUTPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_OUTPUT_STREAM,
                                                      hb_bus_output_pollable_init))

static gssize
hb_bus_output_write (GOutputStream  *stream,
                     const void     *buffer,
                     gsize           count,
                     GCancellable   *cancellable,
                     GError        **error)
{
  return g_output_stream_write (HB_BUS_OUTPUT (stream)->base, buffer, count, cancellable, error);
}

static gboolean
hb_bus_output_flush (GOutputStream  *stream,
                     GCancellable   *cancellable,
                     GError        **error)
{
  return g_output_stream_flush (HB_BUS_OUTPUT (stream)->base, cancellable, error);
}

static gboolean
hb_bus_output_close (GOutputStream  *stream,
                     GCancellable   *cancellable,
                     GError        **error)
{
  return TRUE;   /* the socket is closed with the HbBusStream */
}

static gboolean
hb_bus_output_can_poll (GPollableOutputStream *stream)
{
  return g_pollable_output_stream_can_poll (G_POLLABLE_OUTPUT_STREAM (HB_BUS_OUTPUT (stream)->base));
}

static gboolean
hb_bus_output_is_writable (GPollableOutputStream *stream)
{
  return g_pollable_output_stream_is_writable (G_POLLABLE_OUTPUT_STREAM (HB_BUS_OUTPUT (stream)->base));
}

static GSource *
hb_bus_output_create_source (GPollableOutputStream *stream,
                             GCancellable          *cancellable)
{
  g_autoptr(GSource) child =
      g_pollable_output_stream_create_source (G_POLLABLE_OUTPUT_STREAM (HB_BUS_OUTPUT (stream)->base), NULL);

  return g_pollable_source_new_full (stream, child, cancellable);
}

static gssize
hb_bus_output_write_nonblocking (GPollableOutputStream  *stream,
                                 const void             *buffer,
                                 gsize                   count,
                                 GError                **error)
{
  return g_pollable_output_stream_write_nonblocking (G_POLLABLE_OUTPUT_STREAM (HB_BUS_OUTPUT (stream)->base),
                                                     buffer, count, NULL, error);
}

static void
hb_bus_output_finalize (GObject *object)
{
  g_clear_object (&HB_BUS_OUTPUT (object)->base);
  G_OBJECT_CLASS (hb_bus_output_parent_class)->finalize (object);
}

static void
hb_bus_output_class_init (HbBusOutputClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GOutputStreamClass *stream_class = G_OUTPUT_STREAM_CLASS (klass);

  object_class->finalize = hb_bus_output_finalize;
  stream_class->write_fn = hb_bus_output_write;
  stream_class->flush = hb_bus_output_flush;
  stream_class->close_fn = hb_bus_output_close;
}

static void
hb_bus_output_pollable_init (GPollableOutputStreamInterface *iface)
{
  iface->can_poll = hb_bus_output_can_poll;
  iface->is_writable = hb_bus_output_is_writable;
  iface->create_source = hb_bus_output_create_source;
  iface->write_nonblocking = hb_bus_output_write_nonblocking;
}

static void
hb_bus_output_init (HbBusOutput *self)
{
}

/* ------------------------------------------------------------------ */
/* HbBusStream: the socket connection, its input filtered               */

#define HB_TYPE_BUS_STREAM (hb_bus_stream_get_type ())
G_DECLARE_FINAL_TYPE (HbBusStream, hb_bus_stream, HB, BUS_STREAM, GIOStream)

struct _HbBusStream {
  GIOStream      parent_instance;
  GIOStream     *base;
  GInputStream  *input;
  GOutputStream *output;
};

G_DEFINE_FINAL_TYPE (HbBusStream, hb_bus_stream, G_TYPE_IO_STREAM)

static GInputStream *
hb_bus_stream_get_input_stream (GIOStream *stream)
{
  return HB_BUS_STREAM (stream)->input;
}

static GOutputStream *
hb_bus_stream_get_output_stream (GIOStream *stream)
{
  return HB_BUS_STREAM (stream)->output;
}

static gboolean
hb_bus_stream_close (GIOStream     *stream,
                     GCancellable  *cancellable,
                     GError       **error)
{
  HbBusStream *self = HB_BUS_STREAM (stream);

  g_input_stream_close (self->input, NULL, NULL);
  g_output_stream_close (self->output, NULL, NULL);
  return g_io_stream_close (self->base, cancellable, error);
}

static void
hb_bus_stream_finalize (GObject *object)
{
  HbBusStream *self = HB_BUS_STREAM (object);

  g_clear_object (&self->input);
  g_clear_object (&self->output);
  g_clear_object (&self->base);
  G_OBJECT_CLASS (hb_bus_stream_parent_class)->finalize (object);
}

static void
hb_bus_stream_class_init (HbBusStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GIOStreamClass *stream_class = G_IO_STREAM_CLASS (klass);

  object_class->finalize = hb_bus_stream_finalize;
  stream_class->get_input_stream = hb_bus_stream_get_input_stream;
  stream_class->get_output_stream = hb_bus_stream_get_output_stream;
  stream_class->close_fn = hb_bus_stream_close;
}

static void
hb_bus_stream_init (HbBusStream *self)
{
}

static GIOStream *
hb_bus_stream_new (GIOStream *base)
{
  HbBusStream *self = g_object_new (HB_TYPE_BUS_STREAM, NULL);
  HbBusInput *input = g_object_new (HB_TYPE_BUS_INPUT, NULL);
  HbBusOutput *output = g_object_new (HB_TYPE_BUS_OUTPUT, NULL);

  input->base = g_object_ref (g_io_stream_get_input_stream (base));
  output->base = g_object_ref (g_io_stream_get_output_stream (base));
  self->base = g_object_ref (base);
  self->input = G_INPUT_STREAM (input);
  self->output = G_OUTPUT_STREAM (output);
  return G_IO_STREAM (self);
}

/* ------------------------------------------------------------------ */
/* Connecting                                                          */

/* One line of the authentication conversation, without its CR LF. Reads
 * a byte at a time: nothing after the line may be consumed. */
static char *
read_auth_line (GInputStream  *input,
                GCancellable  *cancellable,
                GError       **error)
{
  g_autoptr(GString) line = g_string_new (NULL);

  while (line->len < AUTH_LINE_MAX)
    {
      char c;
      gssize n = g_input_stream_read (input, &c, 1, cancellable, error);

      if (n < 0)
        return NULL;
      if (n == 0)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                               "The bus closed the connection while authenticating");
          return NULL;
        }
      g_string_append_c (line, c);
      if (g_str_has_suffix (line->str, "\r\n"))
        {
          g_string_truncate (line, line->len - 2);
          return g_string_free (g_steal_pointer (&line), FALSE);
        }
    }
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       "The bus answered the authentication with an overlong line");
  return NULL;
}

/* The client side of SASL EXTERNAL, as GDBus does it on a unix socket. A
 * bus that answers anything but OK gives G_IO_ERROR_NOT_SUPPORTED. */
static gboolean
authenticate (GUnixConnection  *connection,
              GCancellable     *cancellable,
              GError          **error)
{
  GSocket *socket = g_socket_connection_get_socket (G_SOCKET_CONNECTION (connection));
  GInputStream *input = g_io_stream_get_input_stream (G_IO_STREAM (connection));
  GOutputStream *output = g_io_stream_get_output_stream (G_IO_STREAM (connection));
  g_autofree char *uid = g_strdup_printf ("%u", (guint) geteuid ());
  g_autoptr(GString) request = g_string_new ("AUTH EXTERNAL ");
  g_autofree char *answer = NULL;
  gboolean ok;

  for (const char *c = uid; *c; c++)
    g_string_append_printf (request, "%02x", (guint) (guchar) *c);
  g_string_append (request, "\r\n");

  g_socket_set_timeout (socket, AUTH_TIMEOUT_SECONDS);
  /* the NUL byte, with SCM_CREDENTIALS where the platform sends them */
  ok = g_unix_connection_send_credentials (connection, cancellable, error) &&
       g_output_stream_write_all (output, request->str, request->len, NULL, cancellable, error) &&
       (answer = read_auth_line (input, cancellable, error)) != NULL;
  if (ok && !g_str_has_prefix (answer, "OK "))
    {
      /* REJECTED, or a conversation GDBus's own client may still hold */
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "The bus did not accept EXTERNAL authentication: “%s”", answer);
      ok = FALSE;
    }
  ok = ok && g_output_stream_write_all (output, "BEGIN\r\n", 7, NULL, cancellable, error);
  g_socket_set_timeout (socket, 0);
  return ok;
}

/* Connects to the message bus at @address, says Hello and returns the
 * connection (the caller owns the name, exports objects, etc.). Gives
 * G_IO_ERROR_NOT_SUPPORTED for an address that is not a unix socket and
 * for a bus that does not accept EXTERNAL authentication at once. */
GDBusConnection *
hb_bus_filter_connect_sync (const char    *address,
                            GCancellable  *cancellable,
                            GError       **error)
{
  g_autoptr(GIOStream) socket_stream = NULL;
  g_autoptr(GIOStream) filtered = NULL;

  socket_stream = g_dbus_address_get_stream_sync (address, NULL, cancellable, error);
  if (socket_stream == NULL)
    return NULL;
  if (!G_IS_UNIX_CONNECTION (socket_stream))
    {
      g_io_stream_close (socket_stream, NULL, NULL);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "The bus address “%s” is not a unix socket", address);
      return NULL;
    }
  if (!authenticate (G_UNIX_CONNECTION (socket_stream), cancellable, error))
    {
      g_io_stream_close (socket_stream, NULL, NULL);
      return NULL;
    }
  /* as GDBus does with its own sockets: its worker thread, shared by
   * every connection, must never block */
  g_socket_set_blocking (g_socket_connection_get_socket (G_SOCKET_CONNECTION (socket_stream)), FALSE);

  filtered = hb_bus_stream_new (socket_stream);
  return g_dbus_connection_new_sync (filtered, NULL, G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                     NULL, cancellable, error);
}
