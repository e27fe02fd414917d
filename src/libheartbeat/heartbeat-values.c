/* heartbeat-values.c: the one gate for values from outside
 *
 * Metadata, beat details and event data reach the monitor from D-Bus,
 * HTTP (JSON), heartbeat files, the configuration and the state file.
 * Whatever the monitor keeps is later sent out on every front, so it must
 * be something each of them can carry, and carry back unchanged:
 *
 *  - a dictionary `a{sv}` at the top;
 *  - inside: booleans, integers (a `t` no larger than G_MAXINT64, since
 *    JSON readers take integers as signed 64-bit), finite doubles,
 *    strings (GVariant strings are UTF-8 without NUL), object paths and
 *    signatures (carried as strings), arrays, dictionaries with string
 *    keys, non-empty tuples and variants;
 *  - no maybe types (JSON would show null, D-Bus has none), no handles
 *    (meaningless outside one message), no empty tuple (D-Bus has none);
 *  - nested at most %HEARTBEAT_METADATA_MAX_DEPTH containers deep;
 *  - at most %HEARTBEAT_METADATA_MAX_SIZE bytes both as a serialized
 *    GVariant and as JSON text.
 *
 * The walk refuses a value at the first level past the limit, before it
 * looks any deeper and before anything asks GLib for the serialized size
 * (which recurses over the whole value), so no input can exhaust the stack.
 *
 * Text (a status, a task id, a binding, a configured value) has one rule,
 * heartbeat_text_check(): 1 to N bytes of UTF-8 without a C0 or C1
 * control character, so no front can write a line of its own into a log,
 * a terminal or a Prometheus label.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <math.h>
#include <string.h>

#include "heartbeat-monitor.h"
#include "heartbeat-values-private.h"

static gboolean
refuse (GError    **error,
        const char *format,
        ...) G_GNUC_PRINTF (2, 3);

static gboolean
refuse (GError    **error,
        const char *format,
        ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT, "Metadata: %s", message);
  return FALSE;
}

/* The length of @text as a JSON string, quotes included: an upper bound
 * (a control character may be written as \n in two bytes, not six). */
static gsize
json_string_length (const char *text)
{
  gsize length = 2;

  for (const guchar *p = (const guchar *) text; *p; p++)
    {
      if (*p == '"' || *p == '\\')
        length += 2;
      else if (*p < 0x20 || *p == 0x7f)
        length += 6;
      else
        length++;
    }
  return length;
}

/* Checks @value at nesting @depth (its own level) and adds its length as
 * JSON text to @text, stopping as soon as either bound is passed. */
static gboolean
value_is_valid (GVariant *value,
                guint     depth,
                gsize    *text,
                GError  **error)
{
  const GVariantType *type = g_variant_get_type (value);

  if (*text > HEARTBEAT_METADATA_MAX_SIZE)
    return refuse (error, "larger than %d bytes as JSON", HEARTBEAT_METADATA_MAX_SIZE);

  if (g_variant_type_is_basic (type))
    {
      switch (g_variant_classify (value))
        {
        case G_VARIANT_CLASS_BOOLEAN:
          *text += 5;
          return TRUE;
        case G_VARIANT_CLASS_BYTE:
        case G_VARIANT_CLASS_INT16:
        case G_VARIANT_CLASS_UINT16:
        case G_VARIANT_CLASS_INT32:
        case G_VARIANT_CLASS_UINT32:
        case G_VARIANT_CLASS_INT64:
          *text += 20;
          return TRUE;
        case G_VARIANT_CLASS_UINT64:
          if (g_variant_get_uint64 (value) > G_MAXINT64)
            return refuse (error, "an unsigned integer larger than %" G_GINT64_FORMAT, G_MAXINT64);
          *text += 20;
          return TRUE;
        case G_VARIANT_CLASS_DOUBLE:
          if (!isfinite (g_variant_get_double (value)))
            return refuse (error, "a number that is not finite");
          *text += 24;
          return TRUE;
        case G_VARIANT_CLASS_STRING:
        case G_VARIANT_CLASS_OBJECT_PATH:
        case G_VARIANT_CLASS_SIGNATURE:
          *text += json_string_length (g_variant_get_string (value, NULL));
          return TRUE;
        case G_VARIANT_CLASS_HANDLE:
          return refuse (error, "a file descriptor handle cannot be kept");
        default:
          return refuse (error, "type %s cannot be kept", g_variant_get_type_string (value));
        }
    }

  if (depth >= HEARTBEAT_METADATA_MAX_DEPTH)
    return refuse (error, "nested deeper than %d levels", HEARTBEAT_METADATA_MAX_DEPTH);

  switch (g_variant_classify (value))
    {
    case G_VARIANT_CLASS_VARIANT:
      {
        g_autoptr(GVariant) child = g_variant_get_variant (value);
        return value_is_valid (child, depth + 1, text, error);
      }

    case G_VARIANT_CLASS_MAYBE:
      return refuse (error, "a maybe value (null) cannot be kept");

    case G_VARIANT_CLASS_DICT_ENTRY:
      {
        g_autoptr(GVariant) key = g_variant_get_child_value (value, 0);
        g_autoptr(GVariant) child = g_variant_get_child_value (value, 1);

        if (!g_variant_is_of_type (key, G_VARIANT_TYPE_STRING))
          return refuse (error, "dictionary keys must be strings, not %s", g_variant_get_type_string (key));
        *text += json_string_length (g_variant_get_string (key, NULL)) + 1;
        return value_is_valid (child, depth + 1, text, error);
      }

    case G_VARIANT_CLASS_TUPLE:
      if (g_variant_n_children (value) == 0)
        return refuse (error, "an empty tuple cannot travel on D-Bus");
      G_GNUC_FALLTHROUGH;
    case G_VARIANT_CLASS_ARRAY:
      {
        gsize n = g_variant_n_children (value);

        *text += 2;
        for (gsize i = 0; i < n; i++)
          {
            g_autoptr(GVariant) child = g_variant_get_child_value (value, i);

            *text += 1;
            if (!value_is_valid (child, depth + 1, text, error))
              return FALSE;
          }
        return TRUE;
      }

    default:
      return refuse (error, "type %s cannot be kept", g_variant_get_type_string (value));
    }
}

/* The last value each thread found valid, held, and its length as JSON
 * text. A #GVariant never changes, and the reference kept stops its
 * address from being reused, so a value at that address is that valid
 * value: the check a front makes and the one the monitor makes again on
 * the same value cost one walk. */
typedef struct {
  GVariant *value;
  gsize     text;
} LastValid;

static void
last_valid_free (gpointer data)
{
  LastValid *last = data;

  g_variant_unref (last->value);
  g_free (last);
}

static GPrivate last_valid = G_PRIVATE_INIT (last_valid_free);

/* heartbeat_metadata_is_valid() that also sets *@text to the length of
 * @metadata as JSON text, as the gate counts it (an upper bound; 0 for
 * %NULL), so a merge can tell without a walk that its result is short
 * enough. */
gboolean
heartbeat_metadata_check (GVariant  *metadata,
                          gsize     *text,
                          GError   **error)
{
  LastValid *last = g_private_get (&last_valid);
  GVariant *previous;

  *text = 0;
  if (metadata == NULL)
    return TRUE;
  if (last != NULL && last->value == metadata)
    {
      *text = last->text;
      return TRUE;
    }

  if (!g_variant_is_of_type (metadata, G_VARIANT_TYPE_VARDICT))
    return refuse (error, "must be a dictionary of type a{sv}, not %s",
                   g_variant_get_type_string (metadata));
  if (!value_is_valid (metadata, 0, text, error))
    return FALSE;
  if (*text > HEARTBEAT_METADATA_MAX_SIZE || g_variant_get_size (metadata) > HEARTBEAT_METADATA_MAX_SIZE)
    return refuse (error, "larger than %d bytes", HEARTBEAT_METADATA_MAX_SIZE);

  if (last == NULL)
    {
      last = g_new0 (LastValid, 1);
      g_private_set (&last_valid, last);
    }
  previous = last->value;
  last->value = g_variant_ref (metadata);
  last->text = *text;
  g_clear_pointer (&previous, g_variant_unref);
  return TRUE;
}

/**
 * heartbeat_metadata_is_valid:
 * @metadata: (nullable): a candidate metadata dictionary
 * @error: return location for a #GError
 *
 * The one check every value from outside passes before the monitor keeps
 * it: an agent's metadata, a beat's metadata (after merging) and an
 * event's data. See the top of heartbeat-values.c for what it accepts;
 * in short, what both D-Bus and JSON carry, and read back unchanged,
 * nested at most %HEARTBEAT_METADATA_MAX_DEPTH levels and at most
 * %HEARTBEAT_METADATA_MAX_SIZE bytes in either form. %NULL is valid (no
 * metadata).
 *
 * The last value found valid in the calling thread is remembered (and a
 * reference to it held), so a value checked again, as the monitor checks
 * what a front checked already, costs nothing the second time.
 *
 * Returns: %TRUE if @metadata may be kept; otherwise %FALSE with
 *   %HEARTBEAT_ERROR_INVALID_ARGUMENT set
 */
gboolean
heartbeat_metadata_is_valid (GVariant *metadata,
                             GError  **error)
{
  gsize text;

  return heartbeat_metadata_check (metadata, &text, error);
}

/**
 * heartbeat_text_check:
 * @text: the text; need not be nul-terminated
 * @length: its length in bytes
 * @max_length: the most bytes allowed
 *
 * The rule for every text the monitor keeps: 1 to @max_length bytes of
 * valid UTF-8 with no C0 or C1 control character (g_unichar_iscntrl()).
 * Fronts that answer in their own words call this; others call
 * heartbeat_text_is_valid().
 *
 * Returns: %HEARTBEAT_TEXT_OK, or the first problem found, checked in the
 *   order length, encoding, characters
 */
HeartbeatTextProblem
heartbeat_text_check (const char *text,
                      gsize       length,
                      gsize       max_length)
{
  const char *end = text + length;

  if (length == 0 || length > max_length)
    return HEARTBEAT_TEXT_BAD_LENGTH;
  if (!g_utf8_validate_len (text, length, NULL))
    return HEARTBEAT_TEXT_BAD_UTF8;
  for (const char *p = text; p < end; p = g_utf8_next_char (p))
    if (g_unichar_iscntrl (g_utf8_get_char (p)))
      return HEARTBEAT_TEXT_CONTROL;
  return HEARTBEAT_TEXT_OK;
}

/**
 * heartbeat_text_is_valid:
 * @text: (nullable): a nul-terminated text, or %NULL for "not given"
 * @max_length: the most bytes allowed
 * @what: what the text is, as the message starts ("Status", "Task id")
 * @error: return location for a %HEARTBEAT_ERROR_INVALID_ARGUMENT
 *
 * heartbeat_text_check() with the monitor's messages: "Status must be 1 to
 * 64 bytes long", "Status is not valid UTF-8", "Status contains a control
 * character".
 *
 * Returns: %TRUE if @text is %NULL or may be kept
 */
gboolean
heartbeat_text_is_valid (const char *text,
                         gsize       max_length,
                         const char *what,
                         GError    **error)
{
  if (text == NULL)
    return TRUE;
  switch (heartbeat_text_check (text, strlen (text), max_length))
    {
    case HEARTBEAT_TEXT_OK:
      return TRUE;
    case HEARTBEAT_TEXT_BAD_LENGTH:
      g_set_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                   "%s must be 1 to %zu bytes long", what, (size_t) max_length);
      return FALSE;
    case HEARTBEAT_TEXT_BAD_UTF8:
      g_set_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                   "%s is not valid UTF-8", what);
      return FALSE;
    case HEARTBEAT_TEXT_CONTROL:
    default:
      g_set_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                   "%s contains a control character", what);
      return FALSE;
    }
}

/**
 * heartbeat_tags_validate:
 * @tags: (nullable) (array zero-terminated=1): tags, or %NULL for none
 * @error: return location for a %HEARTBEAT_ERROR_INVALID_ARGUMENT
 *
 * The rule for an agent's tags, which group agents for people and
 * filters: at most %HEARTBEAT_TAGS_MAX of them, each 1 to
 * %HEARTBEAT_TAG_MAX_LENGTH characters of `[A-Za-z0-9._:@-]`, as an id
 * (heartbeat_id_is_valid()), other than `.` and `..`. Duplicates
 * are allowed here; the monitor keeps each tag once.
 *
 * Returns: %TRUE if @tags may be kept
 */
gboolean
heartbeat_tags_validate (const char *const *tags,
                         GError           **error)
{
  guint n = 0;

  if (tags == NULL)
    return TRUE;
  for (; tags[n] != NULL; n++)
    {
      const char *tag = tags[n];
      gsize length = strlen (tag);

      if (n >= HEARTBEAT_TAGS_MAX)
        {
          g_set_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                       "An agent may have at most %d tags", HEARTBEAT_TAGS_MAX);
          return FALSE;
        }
      if (length == 0 || length > HEARTBEAT_TAG_MAX_LENGTH)
        {
          g_set_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                       "A tag must be 1 to %d characters long", HEARTBEAT_TAG_MAX_LENGTH);
          return FALSE;
        }
      /* the characters of an id (and not "." or "..") */
      if (!heartbeat_id_is_valid (tag, NULL))
        {
          g_set_error_literal (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                               "A tag may only contain letters, digits and ._:@- (and is not . or ..)");
          return FALSE;
        }
    }
  return TRUE;
}
