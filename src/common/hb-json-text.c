/* hb-json-text.c: JSON from outside, checked as text and parsed within bounds
 *
 * Every JSON text heartbeatd and hbctl take from outside (HTTP bodies and
 * answers, heartbeat files) is first checked as text by hb_json_check():
 * nesting depth bounded before a parser recurses into it, no NUL byte, no
 * `\u0000` escape, which json-glib would keep inside a C string and so
 * silently cut an id or a status short, and no escape JSON does not define
 * (json-glib turns `\200` into a byte that is not UTF-8).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "hb-json-text.h"

/**
 * hb_json_invalid:
 * @error: return location for a #GError
 * @format: printf() format of the message
 *
 * Sets @error to %G_IO_ERROR_INVALID_DATA, the error of every JSON gate.
 *
 * Returns: %FALSE, so that a check can `return hb_json_invalid (...)`
 */
gboolean
hb_json_invalid (GError    **error,
                 const char *format,
                 ...)
{
  va_list args;

  va_start (args, format);
  g_propagate_error (error, g_error_new_valist (G_IO_ERROR, G_IO_ERROR_INVALID_DATA, format, args));
  va_end (args);
  return FALSE;
}

/**
 * hb_json_check:
 * @data: a JSON text
 * @length: its length in bytes
 * @max_depth: how deeply arrays and objects may nest
 * @error: return location for a #GError
 *
 * Checks @data as text, without parsing it: nesting depth, NUL bytes,
 * `\u0000` and escapes JSON does not define. Says nothing of the text's content in the error.
 *
 * Returns: %TRUE if @data may be given to a parser
 */
gboolean
hb_json_check (const char *data,
               gsize       length,
               guint       max_depth,
               GError    **error)
{
  gboolean in_string = FALSE;
  gboolean high_surrogate = FALSE;   /* the last escape was \uD800–\uDBFF */
  guint depth = 0;

  for (gsize i = 0; i < length; i++)
    {
      char c = data[i];

      if (c == '\0')
        return hb_json_invalid (error, "contains a NUL byte at offset %" G_GSIZE_FORMAT, i);
      if (in_string)
        {
          if (high_surrogate && c != '\\')
            return hb_json_invalid (error, "a string has half a surrogate pair at offset %" G_GSIZE_FORMAT, i);
          if (c == '"')
            in_string = FALSE;
          else if (c == '\\')
            {
              gsize at = i++;
              guint unit = 0;

              /* Only the escapes JSON defines, and only whole surrogate
               * pairs: json-glib's scanner also takes octal escapes
               * (`\\200`) and lone surrogates, and makes of them bytes
               * that are not UTF-8 inside a string it hands back as one. */
              if (i >= length || data[i] == '\0' || strchr ("\"\\/bfnrtu", data[i]) == NULL)
                return hb_json_invalid (error, "a string has an escape JSON does not define at offset %" G_GSIZE_FORMAT, at);
              if (data[i] != 'u')
                {
                  if (high_surrogate)
                    return hb_json_invalid (error, "a string has half a surrogate pair at offset %" G_GSIZE_FORMAT, at);
                  continue;
                }
              for (guint k = 1; k <= 4; k++)
                {
                  if (i + k >= length || !g_ascii_isxdigit (data[i + k]))
                    return hb_json_invalid (error, "a string has a \\u escape without four hex digits at offset %" G_GSIZE_FORMAT, at);
                  unit = unit << 4 | (guint) g_ascii_xdigit_value (data[i + k]);
                }
              i += 4;
              if (unit == 0)
                return hb_json_invalid (error, "a string contains \\u0000 at offset %" G_GSIZE_FORMAT, at);
              if ((unit >= 0xDC00 && unit <= 0xDFFF) != high_surrogate)
                return hb_json_invalid (error, "a string has half a surrogate pair at offset %" G_GSIZE_FORMAT, at);
              high_surrogate = unit >= 0xD800 && unit <= 0xDBFF;
              continue;
            }
          continue;
        }
      switch (c)
        {
        case '"':
          in_string = TRUE;
          break;
        case '[':
        case '{':
          if (++depth > max_depth)
            return hb_json_invalid (error, "nested deeper than %u levels", max_depth);
          break;
        case ']':
        case '}':
          if (depth > 0)
            depth--;
          break;
        default:
          break;
        }
    }
  return TRUE;
}

/**
 * hb_json_parse:
 * @data: a JSON text from outside
 * @length: its length in bytes
 * @error: return location for a #GError
 *
 * Parses @data after checking that it is UTF-8 and passes hb_json_check()
 * with %HB_JSON_MAX_DEPTH.
 *
 * Returns: (transfer full): the root node, or %NULL with @error set
 */
JsonNode *
hb_json_parse (const char *data,
               gsize       length,
               GError    **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable ();
  g_autoptr(GError) local = NULL;
  JsonNode *root;

  if (!g_utf8_validate_len (data, length, NULL))
    {
      hb_json_invalid (error, "not UTF-8");
      return NULL;
    }
  if (!hb_json_check (data, length, HB_JSON_MAX_DEPTH, error))
    return NULL;
  if (!json_parser_load_from_data (parser, data, (gssize) length, &local))
    {
      /* json-glib quotes the offending bytes, which need not be UTF-8:
       * a message must be, to go out in a JSON error */
      g_autofree char *message = g_utf8_make_valid (local->message, -1);

      hb_json_invalid (error, "%s", message);
      return NULL;
    }
  root = json_parser_steal_root (parser);
  if (root == NULL)
    hb_json_invalid (error, "empty");
  return root;
}
