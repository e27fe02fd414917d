/* hb-json.c: JSON from outside, parsed within bounds, and metadata as JSON
 *
 * Every JSON text heartbeatd takes from outside (HTTP bodies, heartbeat
 * files) is first checked as text by hb_json_check(): nesting depth
 * bounded before a parser recurses into it, no NUL byte, no `\u0000`
 * escape, which json-glib would keep inside a C string and so silently cut
 * an id or a status short, and no escape JSON does not define (json-glib
 * turns `\200` into a byte that is not UTF-8).
 *
 * Metadata travels between JSON and GVariant with one fixed mapping, used
 * in both directions so that a value read back is the value written:
 *
 *   JSON            GVariant
 *   true/false      b
 *   integer         x         (y n q i u t are written as integers)
 *   other number    d         (finite only)
 *   string          s         (o and g are written as strings)
 *   array           av        (any other array or tuple is written as one)
 *   object          a{sv}     (any a{s*} is written as one)
 *   null            refused   (see heartbeat_metadata_is_valid())
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <math.h>
#include <string.h>

#include "hb-json.h"

static gboolean
invalid (GError    **error,
         const char *format,
         ...) G_GNUC_PRINTF (2, 3);

static gboolean
invalid (GError    **error,
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
        return invalid (error, "contains a NUL byte at offset %" G_GSIZE_FORMAT, i);
      if (in_string)
        {
          if (high_surrogate && c != '\\')
            return invalid (error, "a string has half a surrogate pair at offset %" G_GSIZE_FORMAT, i);
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
                return invalid (error, "a string has an escape JSON does not define at offset %" G_GSIZE_FORMAT, at);
              if (data[i] != 'u')
                {
                  if (high_surrogate)
                    return invalid (error, "a string has half a surrogate pair at offset %" G_GSIZE_FORMAT, at);
                  continue;
                }
              for (guint k = 1; k <= 4; k++)
                {
                  if (i + k >= length || !g_ascii_isxdigit (data[i + k]))
                    return invalid (error, "a string has a \\u escape without four hex digits at offset %" G_GSIZE_FORMAT, at);
                  unit = unit << 4 | (guint) g_ascii_xdigit_value (data[i + k]);
                }
              i += 4;
              if (unit == 0)
                return invalid (error, "a string contains \\u0000 at offset %" G_GSIZE_FORMAT, at);
              if ((unit >= 0xDC00 && unit <= 0xDFFF) != high_surrogate)
                return invalid (error, "a string has half a surrogate pair at offset %" G_GSIZE_FORMAT, at);
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
            return invalid (error, "nested deeper than %u levels", max_depth);
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
      invalid (error, "not UTF-8");
      return NULL;
    }
  if (!hb_json_check (data, length, HB_JSON_MAX_DEPTH, error))
    return NULL;
  if (!json_parser_load_from_data (parser, data, (gssize) length, &local))
    {
      /* json-glib quotes the offending bytes, which need not be UTF-8:
       * a message must be, to go out in a JSON error */
      g_autofree char *message = g_utf8_make_valid (local->message, -1);

      invalid (error, "%s", message);
      return NULL;
    }
  root = json_parser_steal_root (parser);
  if (root == NULL)
    invalid (error, "empty");
  return root;
}

/**
 * hb_json_to_variant:
 * @node: a JSON value
 * @error: return location for a #GError
 *
 * The metadata value for @node, by the mapping at the top of hb-json.c.
 *
 * Returns: (transfer full): a floating-free #GVariant, or %NULL with
 *   @error set for null or a number that is not finite
 */
GVariant *
hb_json_to_variant (JsonNode *node,
                    GError  **error)
{
  switch (JSON_NODE_TYPE (node))
    {
    case JSON_NODE_NULL:
      invalid (error, "null cannot be kept");
      return NULL;

    case JSON_NODE_VALUE:
      switch (json_node_get_value_type (node))
        {
        case G_TYPE_BOOLEAN:
          return g_variant_ref_sink (g_variant_new_boolean (json_node_get_boolean (node)));
        case G_TYPE_INT64:
          return g_variant_ref_sink (g_variant_new_int64 (json_node_get_int (node)));
        case G_TYPE_DOUBLE:
          if (!isfinite (json_node_get_double (node)))
            {
              invalid (error, "a number out of range cannot be kept");
              return NULL;
            }
          return g_variant_ref_sink (g_variant_new_double (json_node_get_double (node)));
        case G_TYPE_STRING:
          /* hb_json_check() keeps out what would make it otherwise; this
           * holds for a node that was built some other way */
          if (!g_utf8_validate (json_node_get_string (node), -1, NULL))
            {
              invalid (error, "a string that is not UTF-8 cannot be kept");
              return NULL;
            }
          return g_variant_ref_sink (g_variant_new_string (json_node_get_string (node)));
        default:
          invalid (error, "a value of an unknown kind cannot be kept");
          return NULL;
        }

    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);
        guint n = json_array_get_length (array);
        g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("av"));

        for (guint i = 0; i < n; i++)
          {
            g_autoptr(GVariant) child = hb_json_to_variant (json_array_get_element (array, i), error);

            if (child == NULL)
              return NULL;
            g_variant_builder_add (&builder, "v", child);
          }
        return g_variant_ref_sink (g_variant_builder_end (&builder));
      }

    case JSON_NODE_OBJECT:
      return hb_json_object_to_vardict (json_node_get_object (node), NULL, error);

    default:
      invalid (error, "a value of an unknown kind cannot be kept");
      return NULL;
    }
}

/**
 * hb_json_object_to_vardict:
 * @object: a JSON object
 * @skip: (nullable): member names to leave out, %NULL-terminated
 * @error: return location for a #GError
 *
 * Every member of @object not in @skip, as an `a{sv}`, in the order of
 * the text.
 *
 * Returns: (transfer full): the dictionary, or %NULL with @error naming
 *   the member whose value cannot be kept
 */
GVariant *
hb_json_object_to_vardict (JsonObject        *object,
                           const char *const *skip,
                           GError           **error)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autoptr(GList) members = json_object_get_members (object);

  for (GList *l = members; l; l = l->next)
    {
      const char *name = l->data;
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GError) local = NULL;

      if (skip && g_strv_contains (skip, name))
        continue;
      if (!g_utf8_validate (name, -1, NULL))
        {
          invalid (error, "a member name that is not UTF-8 cannot be kept");
          return NULL;
        }
      value = hb_json_to_variant (json_object_get_member (object, name), &local);
      if (value == NULL)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "The value of “%s”: %s",
                       name, local->message);
          return NULL;
        }
      g_variant_builder_add (&builder, "{sv}", name, value);
    }
  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

static gboolean
is_string_dict (const GVariantType *type)
{
  return g_variant_type_is_array (type) &&
         g_variant_type_is_dict_entry (g_variant_type_element (type)) &&
         g_variant_type_equal (g_variant_type_key (g_variant_type_element (type)), G_VARIANT_TYPE_STRING);
}

/**
 * hb_json_from_variant:
 * @value: a value that passed heartbeat_metadata_is_valid() (or a part of one)
 *
 * @value as JSON, by the mapping at the top of hb-json.c.
 *
 * Returns: (transfer full): a new #JsonNode
 */
JsonNode *
hb_json_from_variant (GVariant *value)
{
  JsonNode *node;

  switch (g_variant_classify (value))
    {
    case G_VARIANT_CLASS_BOOLEAN:
      return json_node_init_boolean (json_node_alloc (), g_variant_get_boolean (value));
    case G_VARIANT_CLASS_BYTE:
      return json_node_init_int (json_node_alloc (), g_variant_get_byte (value));
    case G_VARIANT_CLASS_INT16:
      return json_node_init_int (json_node_alloc (), g_variant_get_int16 (value));
    case G_VARIANT_CLASS_UINT16:
      return json_node_init_int (json_node_alloc (), g_variant_get_uint16 (value));
    case G_VARIANT_CLASS_INT32:
      return json_node_init_int (json_node_alloc (), g_variant_get_int32 (value));
    case G_VARIANT_CLASS_UINT32:
      return json_node_init_int (json_node_alloc (), g_variant_get_uint32 (value));
    case G_VARIANT_CLASS_INT64:
      return json_node_init_int (json_node_alloc (), g_variant_get_int64 (value));
    case G_VARIANT_CLASS_UINT64:
      return json_node_init_int (json_node_alloc (), (gint64) MIN (g_variant_get_uint64 (value), (guint64) G_MAXINT64));
    case G_VARIANT_CLASS_HANDLE:
      return json_node_init_int (json_node_alloc (), g_variant_get_handle (value));
    case G_VARIANT_CLASS_DOUBLE:
      return json_node_init_double (json_node_alloc (), g_variant_get_double (value));
    case G_VARIANT_CLASS_STRING:
    case G_VARIANT_CLASS_OBJECT_PATH:
    case G_VARIANT_CLASS_SIGNATURE:
      return json_node_init_string (json_node_alloc (), g_variant_get_string (value, NULL));
    case G_VARIANT_CLASS_VARIANT:
      {
        g_autoptr(GVariant) child = g_variant_get_variant (value);
        return hb_json_from_variant (child);
      }
    case G_VARIANT_CLASS_MAYBE:
      {
        g_autoptr(GVariant) child = g_variant_get_maybe (value);
        return child ? hb_json_from_variant (child) : json_node_init_null (json_node_alloc ());
      }
    case G_VARIANT_CLASS_ARRAY:
      if (is_string_dict (g_variant_get_type (value)))
        {
          JsonObject *object = json_object_new ();
          GVariantIter iter;
          const char *key;
          GVariant *child;

          g_variant_iter_init (&iter, value);
          while (g_variant_iter_loop (&iter, "{&s@*}", &key, &child))
            json_object_set_member (object, key, hb_json_from_variant (child));
          node = json_node_init_object (json_node_alloc (), object);
          json_object_unref (object);
          return node;
        }
      G_GNUC_FALLTHROUGH;
    case G_VARIANT_CLASS_TUPLE:
    case G_VARIANT_CLASS_DICT_ENTRY:
    default:
      {
        JsonArray *array = json_array_new ();
        gsize n = g_variant_n_children (value);

        for (gsize i = 0; i < n; i++)
          {
            g_autoptr(GVariant) child = g_variant_get_child_value (value, i);
            json_array_add_element (array, hb_json_from_variant (child));
          }
        node = json_node_init_array (json_node_alloc (), array);
        json_array_unref (array);
        return node;
      }
    }
}
