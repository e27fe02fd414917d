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
 * (g_dbus_message_bytes_needed()), judges whether GDBus decodes it, and
 * passes every message that decodes through byte for byte. A message that
 * does not decode is dropped with a rate-limited warning that names its
 * sender. Judging is cheap for ordinary messages: hb_bus_filter_decodes()
 * walks the bytes as GDBus's parser would, building nothing, and proves
 * them decodable; only a message it cannot prove (deep nesting, odd header
 * fields, bad bytes) is decoded with g_dbus_message_new_from_blob() to
 * decide. Output goes to the socket unchanged (through a stream
 * of its own: GDBus writes to the socket directly when it sees a
 * GSocketOutputStream).
 *
 * The input also offers each message, in order and only once GDBus has
 * handled the ones before it, to a claim (hb_bus_filter_set_claim()):
 * the fast Beat path answers certain Beats from their bytes there, and
 * GDBus never decodes them. hb_bus_header_read() and HbBusReader read
 * those bytes as GDBus would.
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
      HbBusHeader header;
      const char *sender = NULL;

      if (hb_bus_header_read (blob, len, &header) && header.sender && g_dbus_is_name (header.sender))
        sender = header.sender;

      g_warning ("Dropped %" G_GUINT64_FORMAT " D-Bus %s that GDBus cannot decode "
                 "(the last one %" G_GSIZE_FORMAT " bytes from %s: %s); "
                 "at most one such line every %d s",
                 unlogged, unlogged == 1 ? "message" : "messages", len,
                 sender ? sender : "an unknown sender", error->message, DROP_LOG_SECONDS);
    }
}

/* ------------------------------------------------------------------ */
/* Proving that GDBus decodes a message, without decoding it            */

/* Decoding every message with g_dbus_message_new_from_blob() only to
 * throw the result away cost about 92k instructions per Beat, more than
 * the rest of the call. hb_bus_filter_decodes() reads the same bytes the
 * way GDBus 2.74's parse_value_from_blob() and
 * g_dbus_message_new_from_blob() do, builds nothing, and answers TRUE only
 * after every check GDBus makes on the way has passed. Anything else
 * (FALSE) is "not proven": the caller then decodes the message for real,
 * so a FALSE costs time, never a message. The proof does not lean on
 * dbus-daemon's own validation at all: it holds for any bytes.
 *
 * What GDBus refuses (gio/gdbusmessage.c, 2.74.6), and where it is
 * checked here:
 *
 * - fewer than 16 bytes, an endianness byte other than 'l' or 'B', a
 *   major protocol version other than 1: decodes();
 * - reading past the end: a byte, an integer, a string and its NUL, an
 *   array's bytes (have(); an alignment may go past the end, as GDBus's
 *   ensure_input_padding() does, and the next read then fails);
 * - a string without its NUL, or not UTF-8 up to its first NUL
 *   (read_string() validates with g_utf8_validate (str, -1)): wire_string();
 * - an object path g_variant_is_object_path() refuses, a signature
 *   g_variant_is_signature() refuses: walk();
 * - an array longer than 2<<26 bytes; an array of fixed-size elements
 *   (y n q i u h x t d; not b) whose length is not a multiple of their
 *   size, or at the last level of depth; an element that reads no byte
 *   (an assertion in GDBus): walk();
 * - an empty tuple: walk();
 * - a variant whose signature is not one single complete type
 *   (g_variant_is_signature() and g_variant_type_string_is_valid()), or
 *   whose type is as deep as or deeper than the depth left
 *   ("Value nested too deeply": the depth of a variant's type counts
 *   from the depth the variant is at): walk(), type_depth();
 * - any value at depth 0: a message's headers are read as a{yv} with a
 *   depth of 64 + 1 + 2, its body as a tuple with 64 + 1 + 1; each level of
 *   container (array, dict entry, tuple, variant) takes one: walk();
 * - a SIGNATURE field that is not of type g, a non-empty signature with
 *   an empty body, a body without a signature, a body signature that is
 *   not a signature or whose "(...)" is not a valid type: decodes();
 * - validate_headers(): type 0; a method call without PATH or MEMBER; a
 *   return without REPLY_SERIAL; an error without ERROR_NAME or
 *   REPLY_SERIAL; a signal without PATH, INTERFACE or MEMBER, or on the
 *   reserved path or interface org.freedesktop.DBus.Local: decodes().
 *
 * Not checked by GDBus and so not here: padding bytes, booleans other
 * than 0 and 1, where the header array ends (GDBus reads elements while it
 * is not past its length, from before the alignment), trailing bytes.
 *
 * Later GLib versions refuse more, and a message this proves decodable
 * must stay decodable for them too, so decodes() also wants what they
 * check in validate_headers() (2.80 on): no field 0; each known field
 * (1 to 9) once and of its type (o s s s u s s g u); INTERFACE, MEMBER and
 * ERROR_NAME valid names; PATH and INTERFACE not the reserved Local ones,
 * whatever the message type. And it takes only the four known message
 * types. A message outside all this is left to the full decode.
 *
 * walk() recurses once per level of container, and each level takes one
 * from a depth that starts at 67 at most: the recursion is bounded, by
 * GDBus's own limit. Every array element reads at least one byte, so the
 * work is bounded by the message's length (times the length of a type,
 * at most 255). */

/* GDBus's depth for a message's header fields and its body
 * (G_DBUS_MAX_TYPE_DEPTH + 2, G_DBUS_MAX_TYPE_DEPTH + 1) */
#define GDBUS_MAX_TYPE_DEPTH (64 + 1)
#define HEADER_DEPTH         (GDBUS_MAX_TYPE_DEPTH + 2)
#define BODY_DEPTH           (GDBUS_MAX_TYPE_DEPTH + 1)
/* parse_value_from_blob(): the longest array it reads */
#define GDBUS_MAX_ARRAY      (2u << 26)

static inline gboolean
have (const HbBusReader *w,
      gsize              n)
{
  return w->pos <= w->len && w->len - w->pos >= n;
}

static inline void
align (HbBusReader *w,
       gsize        n)
{
  w->pos = (w->pos + n - 1) & ~(n - 1);
}

static inline gboolean
wire_u32 (HbBusReader *w,
          guint32     *v)
{
  align (w, 4);
  if (!have (w, 4))
    return FALSE;
  *v = read_u32 (w->data + w->pos, w->big_endian);
  w->pos += 4;
  return TRUE;
}

/* GDBus's read_string(): @len bytes, a NUL, UTF-8 up to the first NUL */
static const char *
wire_string (HbBusReader *w,
             gsize        len)
{
  const char *str;

  if (!have (w, len) || w->len - w->pos - len < 1 || w->data[w->pos + len] != '\0')
    return NULL;
  str = (const char *) w->data + w->pos;
  w->pos += len + 1;
  return g_utf8_validate (str, -1, NULL) ? str : NULL;
}

/* a string (s, o) or a signature (g), at its alignment */
static const char *
wire_text (HbBusReader *w,
           char         type)
{
  guint32 len;

  if (type == 'g')
    {
      if (!have (w, 1))
        return NULL;
      len = w->data[w->pos++];
    }
  else if (!wire_u32 (w, &len))
    return NULL;
  return wire_string (w, len);
}

static guint
fixed_size (char type)   /* GDBus's get_type_fixed_size(): not b */
{
  switch (type)
    {
    case 'y':
      return 1;
    case 'n': case 'q':
      return 2;
    case 'i': case 'u': case 'h':
      return 4;
    case 'x': case 't': case 'd':
      return 8;
    default:
      return 0;
    }
}

/* What parse_value_from_blob (just_align = TRUE) aligns to, for the
 * element type of an empty array that is not of fixed size. */
static guint
alignment (char type)
{
  switch (type)
    {
    case 'a': case 'b': case 's': case 'o':
      return 4;
    case '(': case '{':
      return 8;
    default:   /* g, v */
      return 1;
    }
}

/* Past the single complete type at @type, which GLib has validated. */
static const char *
skip_type (const char *type)
{
  guint open = 0;

  for (;;)
    {
      char c = *type++;

      if (c == '(' || c == '{')
        open++;
      else if (c == ')' || c == '}')
        open--;
      if (open == 0 && c != 'a')
        return type;
    }
}

/* g_variant_type_string_get_depth_() of the single complete type @type,
 * which GLib has validated: the most containers around one basic type,
 * plus one. 0 for a type holding an empty tuple (not proven). Iterative:
 * @type is at most 255 bytes. */
static guint
type_depth (const char *type)
{
  char open[256];
  guint n = 0, depth = 0;

  for (const char *p = type; *p != '\0'; p++)
    {
      if (*p == 'a' || *p == '(' || *p == '{')
        {
          if (n == sizeof open)
            return 0;
          open[n++] = *p;
          continue;
        }
      if (*p == ')' || *p == '}')
        {
          if (p[-1] == '(' || n == 0)
            return 0;
          n--;
        }
      else
        depth = MAX (depth, n + 1);
      /* the arrays this value completes */
      while (n > 0 && open[n - 1] == 'a')
        n--;
    }
  return depth;
}

/* A variant's signature, as GDBus wants it: one single complete type. */
static gboolean
variant_type_ok (const char *sig)
{
  return g_variant_is_signature (sig) && g_variant_type_string_is_valid (sig);
}

/* parse_value_from_blob (just_align = FALSE) of the value of the single
 * complete type at *@type (validated by GLib) with @max_depth left: TRUE if
 * it would succeed. Moves *@type past the type. */
static gboolean
walk (HbBusReader  *w,
      const char  **type,
      guint         max_depth)
{
  const char *t = *type;

  if (max_depth == 0)
    return FALSE;
  switch (*t)
    {
    case 'y': case 'b': case 'n': case 'q': case 'i': case 'u':
    case 'h': case 'x': case 't': case 'd':
      {
        gsize size = *t == 'b' ? 4 : fixed_size (*t);

        align (w, size);
        if (!have (w, size))
          return FALSE;
        w->pos += size;
        *type = t + 1;
        return TRUE;
      }

    case 's': case 'o': case 'g':
      {
        const char *text = wire_text (w, *t);

        if (text == NULL ||
            (*t == 'o' && !g_variant_is_object_path (text)) ||
            (*t == 'g' && !g_variant_is_signature (text)))
          return FALSE;
        *type = t + 1;
        return TRUE;
      }

    case 'a':
      {
        const char *element = t + 1;
        guint32 len;
        guint size = fixed_size (*element);

        if (!wire_u32 (w, &len) || len > GDBUS_MAX_ARRAY)
          return FALSE;
        if (size != 0)
          {
            if (len % size != 0 || max_depth == 1)
              return FALSE;
            align (w, size);
            if (!have (w, len))
              return FALSE;
            w->pos += len;
          }
        else if (len == 0)
          {
            /* GDBus aligns for the element, unless no depth is left */
            if (max_depth - 1 > 0)
              align (w, alignment (*element));
          }
        else
          {
            gsize target = w->pos + len;

            while (w->pos < target)
              {
                gsize before = w->pos;
                const char *e = element;

                if (!walk (w, &e, max_depth - 1) || w->pos <= before)
                  return FALSE;
              }
          }
        *type = skip_type (element);
        return TRUE;
      }

    case '(': case '{':
      {
        char close = *t == '(' ? ')' : '}';

        align (w, 8);
        t++;
        if (*t == close)
          return FALSE;   /* an empty tuple */
        while (*t != close)
          if (!walk (w, &t, max_depth - 1))
            return FALSE;
        *type = t + 1;
        return TRUE;
      }

    case 'v':
      {
        const char *sig, *s;
        guint depth;

        if (!have (w, 1))
          return FALSE;
        sig = wire_string (w, w->data[w->pos++]);
        if (sig == NULL || !variant_type_ok (sig))
          return FALSE;
        depth = type_depth (sig);
        if (depth == 0 || max_depth <= depth)
          return FALSE;
        s = sig;
        if (!walk (w, &s, max_depth - 1) || *s != '\0')
          return FALSE;
        *type = t + 1;
        return TRUE;
      }

    default:
      return FALSE;
    }
}

/* The known header fields (1 to 9) and their types. */
static const char header_types[] = { 0, 'o', 's', 's', 's', 'u', 's', 's', 'g', 'u' };

/**
 * hb_bus_filter_decodes:
 * @blob: one whole D-Bus message
 * @len: its length, g_dbus_message_bytes_needed()
 *
 * Whether g_dbus_message_new_from_blob() surely decodes @blob, without
 * decoding it (see above).
 *
 * Returns: %TRUE if it does; %FALSE if that is not proven (it may)
 */
gboolean
hb_bus_filter_decodes (const guint8 *blob,
                       gsize         len)
{
  HbBusReader w = { blob, len, 12, FALSE };
  const char *fields[G_N_ELEMENTS (header_types)] = { NULL, };
  guint32 array_len, body_len;
  guint8 type;

  if (len < 16 || (blob[0] != 'l' && blob[0] != 'B') || blob[3] != 1)
    return FALSE;
  w.big_endian = blob[0] == 'B';
  type = blob[1];
  body_len = read_u32 (blob + 4, w.big_endian);

  /* the header fields: a{yv} at HEADER_DEPTH, its entries at one less,
   * their bytes and variants at two less */
  if (!wire_u32 (&w, &array_len) || array_len > GDBUS_MAX_ARRAY)
    return FALSE;
  if (array_len == 0)
    align (&w, 8);
  else
    {
      gsize target = w.pos + array_len;

      while (w.pos < target)
        {
          gsize before = w.pos;
          guint8 code;
          const char *sig, *value;

          align (&w, 8);
          if (!have (&w, 2))
            return FALSE;
          code = w.data[w.pos++];
          sig = wire_string (&w, w.data[w.pos++]);
          if (sig == NULL || code == 0)
            return FALSE;
          if (code < G_N_ELEMENTS (header_types))
            {
              /* once, of its type (a valid signature, of depth 1); the
               * value is a string, an object path, a signature or a u */
              if (fields[code] != NULL || sig[0] != header_types[code] || sig[1] != '\0')
                return FALSE;
              if (sig[0] == 'u')
                {
                  guint32 u;

                  if (!wire_u32 (&w, &u))
                    return FALSE;
                  value = "";
                }
              else
                {
                  value = wire_text (&w, sig[0]);
                  if (value == NULL ||
                      (sig[0] == 'o' && !g_variant_is_object_path (value)) ||
                      (sig[0] == 'g' && !g_variant_is_signature (value)))
                    return FALSE;
                }
              fields[code] = value;
            }
          else
            {
              guint depth;
              const char *s = sig;

              if (!variant_type_ok (sig) || (depth = type_depth (sig)) == 0 || HEADER_DEPTH - 2 <= depth ||
                  !walk (&w, &s, HEADER_DEPTH - 3) || *s != '\0')
                return FALSE;
            }
          if (w.pos <= before)
            return FALSE;
        }
    }

  /* validate_headers(), with what later versions add */
  if ((fields[G_DBUS_MESSAGE_HEADER_FIELD_PATH] &&
       strcmp (fields[G_DBUS_MESSAGE_HEADER_FIELD_PATH], "/org/freedesktop/DBus/Local") == 0) ||
      (fields[G_DBUS_MESSAGE_HEADER_FIELD_INTERFACE] &&
       (!g_dbus_is_interface_name (fields[G_DBUS_MESSAGE_HEADER_FIELD_INTERFACE]) ||
        strcmp (fields[G_DBUS_MESSAGE_HEADER_FIELD_INTERFACE], "org.freedesktop.DBus.Local") == 0)) ||
      (fields[G_DBUS_MESSAGE_HEADER_FIELD_MEMBER] &&
       !g_dbus_is_member_name (fields[G_DBUS_MESSAGE_HEADER_FIELD_MEMBER])) ||
      (fields[G_DBUS_MESSAGE_HEADER_FIELD_ERROR_NAME] &&
       !g_dbus_is_error_name (fields[G_DBUS_MESSAGE_HEADER_FIELD_ERROR_NAME])))
    return FALSE;
  switch (type)
    {
    case G_DBUS_MESSAGE_TYPE_METHOD_CALL:
      if (!fields[G_DBUS_MESSAGE_HEADER_FIELD_PATH] || !fields[G_DBUS_MESSAGE_HEADER_FIELD_MEMBER])
        return FALSE;
      break;
    case G_DBUS_MESSAGE_TYPE_METHOD_RETURN:
      if (!fields[G_DBUS_MESSAGE_HEADER_FIELD_REPLY_SERIAL])
        return FALSE;
      break;
    case G_DBUS_MESSAGE_TYPE_ERROR:
      if (!fields[G_DBUS_MESSAGE_HEADER_FIELD_ERROR_NAME] || !fields[G_DBUS_MESSAGE_HEADER_FIELD_REPLY_SERIAL])
        return FALSE;
      break;
    case G_DBUS_MESSAGE_TYPE_SIGNAL:
      if (!fields[G_DBUS_MESSAGE_HEADER_FIELD_PATH] || !fields[G_DBUS_MESSAGE_HEADER_FIELD_INTERFACE] ||
          !fields[G_DBUS_MESSAGE_HEADER_FIELD_MEMBER])
        return FALSE;
      break;
    default:
      return FALSE;
    }

  /* the body: a tuple of the signature's types at BODY_DEPTH */
  {
    const char *signature = fields[G_DBUS_MESSAGE_HEADER_FIELD_SIGNATURE];
    char tuple[256 + 2];
    const char *t = tuple;
    gsize sig_len;

    if (signature == NULL || signature[0] == '\0')
      return signature != NULL || body_len == 0;
    if (body_len == 0)
      return FALSE;
    sig_len = strlen (signature);   /* < 256: its length is one byte */
    tuple[0] = '(';
    memcpy (tuple + 1, signature, sig_len);
    tuple[sig_len + 1] = ')';
    tuple[sig_len + 2] = '\0';
    return g_variant_type_string_is_valid (tuple) && walk (&w, &t, BODY_DEPTH) && *t == '\0';
  }
}

/* ------------------------------------------------------------------ */
/* Reading a few values                                                */

/**
 * hb_bus_reader_align:
 * @reader: a cursor
 * @alignment: 1, 2, 4 or 8
 *
 * Moves @reader to the next multiple of @alignment, as GDBus does before a
 * value (it may go past the end; the next read then fails).
 */
void
hb_bus_reader_align (HbBusReader *reader,
                     gsize        alignment)
{
  align (reader, alignment);
}

/**
 * hb_bus_reader_u32:
 * @reader: a cursor
 * @value: (out): the value
 *
 * Reads a 32-bit unsigned integer at its alignment.
 *
 * Returns: %FALSE past the end
 */
gboolean
hb_bus_reader_u32 (HbBusReader *reader,
                   guint32     *value)
{
  return wire_u32 (reader, value);
}

/**
 * hb_bus_reader_text:
 * @reader: a cursor
 * @type: 's', 'o' or 'g'
 *
 * Reads a string, an object path or a signature at its alignment, as
 * GDBus's read_string() does: its length, its bytes and a NUL, UTF-8 up to
 * the first NUL. The value's own rules (an object path's, a signature's)
 * are not checked.
 *
 * Returns: (nullable): the text, in the message; %NULL if it is not there
 */
const char *
hb_bus_reader_text (HbBusReader *reader,
                    char         type)
{
  return wire_text (reader, type);
}

/**
 * hb_bus_header_read:
 * @blob: one whole D-Bus message, or any bytes
 * @len: their length
 * @header: (out caller-allocates): what was found
 *
 * Reads the fixed part and the header fields of @blob as GDBus 2.74 does,
 * every read bounded by @len; the body is left to the caller
 * (@header->body); unknown fields are skipped, as GDBus ignores them.
 * Stricter than GDBus where that is simpler: a known field twice or of
 * another type is not read.
 *
 * Returns: %TRUE if every header field was read
 */
gboolean
hb_bus_header_read (const guint8 *blob,
                    gsize         len,
                    HbBusHeader  *header)
{
  HbBusReader r = { blob, len, 12, FALSE };
  const char *strings[G_N_ELEMENTS (header_types)] = { NULL, };
  gboolean seen[G_N_ELEMENTS (header_types)] = { FALSE, };
  guint32 array_len;
  gsize end;

  memset (header, 0, sizeof *header);
  if (len < 16 || (blob[0] != 'l' && blob[0] != 'B') || blob[3] != 1)
    return FALSE;
  r.big_endian = blob[0] == 'B';
  if (!wire_u32 (&r, &array_len) || array_len > len - 16)
    return FALSE;
  end = 16 + (gsize) array_len;
  while (r.pos < end)
    {
      guint8 code;
      const char *sig;

      align (&r, 8);
      if (!have (&r, 2))
        return FALSE;
      code = r.data[r.pos++];
      sig = wire_string (&r, r.data[r.pos++]);
      if (sig == NULL)
        return FALSE;
      if (code == 0 || code >= G_N_ELEMENTS (header_types))
        {
          const char *s = sig;

          /* walk() wants a valid type; its recursion is bounded by the depth */
          if (!variant_type_ok (sig) || !walk (&r, &s, HEADER_DEPTH - 3) || *s != '\0')
            return FALSE;
          continue;
        }
      if (seen[code] || sig[0] != header_types[code] || sig[1] != '\0')
        return FALSE;
      seen[code] = TRUE;
      if (sig[0] == 'u')
        {
          guint32 number;

          if (!wire_u32 (&r, &number))
            return FALSE;
          if (code == G_DBUS_MESSAGE_HEADER_FIELD_NUM_UNIX_FDS)
            header->n_unix_fds = number;
        }
      else if ((strings[code] = wire_text (&r, sig[0])) == NULL)
        {
          return FALSE;
        }
    }

  /* what g_dbus_message_new_from_blob() refuses of the body's length */
  if ((strings[G_DBUS_MESSAGE_HEADER_FIELD_SIGNATURE] && strings[G_DBUS_MESSAGE_HEADER_FIELD_SIGNATURE][0] != '\0')
      != (read_u32 (blob + 4, r.big_endian) != 0))
    return FALSE;

  header->type = blob[1];
  header->flags = blob[2];
  header->serial = read_u32 (blob + 8, r.big_endian);
  header->path = strings[G_DBUS_MESSAGE_HEADER_FIELD_PATH];
  header->interface = strings[G_DBUS_MESSAGE_HEADER_FIELD_INTERFACE];
  header->member = strings[G_DBUS_MESSAGE_HEADER_FIELD_MEMBER];
  header->sender = strings[G_DBUS_MESSAGE_HEADER_FIELD_SENDER];
  header->destination = strings[G_DBUS_MESSAGE_HEADER_FIELD_DESTINATION];
  header->signature = strings[G_DBUS_MESSAGE_HEADER_FIELD_SIGNATURE];
  align (&r, 8);
  header->body = r;
  return TRUE;
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
  gsize         message_end;  /* of the message GDBus is reading; pos at its start */
  gboolean      eof;
  GError       *failure;  /* the input cannot be framed: the bus is broken */

  /* hb_bus_filter_set_claim(); the lock is held while the claim runs */
  GMutex          claim_lock;
  HbBusClaimFunc  claim;
  gpointer        claim_data;
  GDestroyNotify  claim_destroy;
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
      if (hb_bus_filter_decodes (start, (gsize) needed))
        {
          self->judged += (gsize) needed;
          continue;
        }
      /* not proven: the real decode judges */
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

/* The message at pos, judged and not yet read by GDBus, is offered to
 * the claim. GDBus reads the next message only after it has handled the
 * one before (gdbusprivate.c: _g_dbus_worker_do_read_cb() delivers it,
 * then reads again), and GDBus reads a message at a time (its header,
 * then the rest), so every message before this one has gone through
 * GDBus's filters by now. Returns TRUE if the claim took it. */
static gboolean
offer (HbBusInput *self)
{
  const guint8 *start = self->buffer->data + self->pos;
  gsize size = (gsize) g_dbus_message_bytes_needed ((guchar *) start, 16, NULL);
  gboolean taken = FALSE;

  g_mutex_lock (&self->claim_lock);
  if (self->claim)
    taken = self->claim (start, size, self->claim_data);
  g_mutex_unlock (&self->claim_lock);
  if (taken)
    self->pos += size;
  self->message_end = self->pos + (taken ? 0 : size);
  return taken;
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

      if (self->judged > self->pos && self->pos == self->message_end && offer (self))
        continue;
      if (self->judged > self->pos)
        {
          gsize give = MIN (count, self->message_end - self->pos);

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
          self->message_end -= self->pos;
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
  if (self->claim_destroy)
    self->claim_destroy (self->claim_data);
  g_mutex_clear (&self->claim_lock);
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
  g_mutex_init (&self->claim_lock);
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

/**
 * hb_bus_filter_set_claim:
 * @connection: a connection hb_bus_filter_connect_sync() made
 * @func: (nullable): sees each message before GDBus does, and may take it
 * @user_data: for @func
 * @destroy: (nullable): frees @user_data when @func is replaced or the
 *   connection's stream is finalized
 *
 * Sets (or with %NULL clears) the claim of @connection's input: each
 * message GDBus would read is offered to @func first, in GDBus's worker
 * thread, in the order the bus sent them, and only when GDBus has handled
 * every message before it (so its filters have seen them). A message
 * @func takes is gone: replying to it is @func's task. When this returns,
 * the claim it replaced is not running and will not run again.
 *
 * Returns: %FALSE, and sets nothing, if @connection does not read through
 *   the filter (it was made another way)
 */
gboolean
hb_bus_filter_set_claim (GDBusConnection *connection,
                         HbBusClaimFunc   func,
                         gpointer         user_data,
                         GDestroyNotify   destroy)
{
  GIOStream *stream;
  HbBusInput *input;
  gpointer old_data;
  GDestroyNotify old_destroy;

  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), FALSE);

  stream = g_dbus_connection_get_stream (connection);
  if (!HB_IS_BUS_STREAM (stream))
    return FALSE;
  input = HB_BUS_INPUT (HB_BUS_STREAM (stream)->input);
  g_mutex_lock (&input->claim_lock);
  old_data = input->claim_data;
  old_destroy = input->claim_destroy;
  input->claim = func;
  input->claim_data = user_data;
  input->claim_destroy = destroy;
  g_mutex_unlock (&input->claim_lock);
  if (old_destroy)
    old_destroy (old_data);
  return TRUE;
}
