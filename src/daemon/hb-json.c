/* hb-json.c: JSON from outside, parsed within bounds, and metadata as JSON
 *
 * Every JSON text heartbeatd takes from outside (HTTP bodies, heartbeat
 * files) is first checked as text by hb_json_check() (in
 * src/common/hb-json-text.c, which hbctl shares for the answers it reads).
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
      hb_json_invalid (error, "null cannot be kept");
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
              hb_json_invalid (error, "a number out of range cannot be kept");
              return NULL;
            }
          return g_variant_ref_sink (g_variant_new_double (json_node_get_double (node)));
        case G_TYPE_STRING:
          /* hb_json_check() keeps out what would make it otherwise; this
           * holds for a node that was built some other way */
          if (!g_utf8_validate (json_node_get_string (node), -1, NULL))
            {
              hb_json_invalid (error, "a string that is not UTF-8 cannot be kept");
              return NULL;
            }
          return g_variant_ref_sink (g_variant_new_string (json_node_get_string (node)));
        default:
          hb_json_invalid (error, "a value of an unknown kind cannot be kept");
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
            g_variant_builder_add_value (&builder, g_variant_new_variant (child));
          }
        return g_variant_ref_sink (g_variant_builder_end (&builder));
      }

    case JSON_NODE_OBJECT:
      return hb_json_object_to_vardict (json_node_get_object (node), NULL, error);

    default:
      hb_json_invalid (error, "a value of an unknown kind cannot be kept");
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
  /* the entries, then the array at once: not a GVariantBuilder, nor
   * g_variant_builder_add (…, "{sv}", …), which parses its format string
   * per member (together some 7,000 instructions of a POST /heartbeat) */
  g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  JsonObjectIter iter;
  const char *name;
  JsonNode *member;

  json_object_iter_init_ordered (&iter, object);
  while (json_object_iter_next_ordered (&iter, &name, &member))
    {
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GError) local = NULL;

      if (skip && g_strv_contains (skip, name))
        continue;
      if (!g_utf8_validate (name, -1, NULL))
        {
          hb_json_invalid (error, "a member name that is not UTF-8 cannot be kept");
          return NULL;
        }
      value = hb_json_to_variant (member, &local);
      if (value == NULL)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "The value of “%s”: %s",
                       name, local->message);
          return NULL;
        }
      g_ptr_array_add (entries, g_variant_ref_sink (g_variant_new_dict_entry (g_variant_new_string (name),
                                                                              g_variant_new_variant (value))));
    }
  return g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("{sv}"), (GVariant **) entries->pdata,
                                                  entries->len));
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

/* ------------------------------------------------------------------ */
/* Flat objects, read without json-glib                                */

/* JSON's white space, which json-glib's scanner skips too */
static inline char *
skip_space (char *p,
            char *end)
{
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    p++;
  return p;
}

/* A string whose opening quote is at @p: no escape, no byte below 0x20
 * nor 0x7f, valid UTF-8. Its closing quote becomes its nul; returns what
 * follows it, or NULL if the string is not one of these. */
static char *
read_flat_string (char        *p,
                  char        *end,
                  const char **string,
                  gsize       *length)
{
  char *start = ++p;
  gboolean ascii = TRUE;

  for (; p < end; p++)
    {
      guchar c = (guchar) *p;

      if (c == '"')
        {
          *length = (gsize) (p - start);
          if (!ascii && !g_utf8_validate_len (start, *length, NULL))
            return NULL;
          *p = '\0';
          *string = start;
          return p + 1;
        }
      if (c < 0x20 || c == '\\' || c == 0x7f)
        return NULL;
      if (c >= 0x80)
        ascii = FALSE;
    }
  return NULL;
}

/* The longest number read: 10^23 at most, finite, and an integer of at
 * most 18 digits fits a gint64 */
#define FLAT_NUMBER_MAX 24

/* A number at @p, as JSON writes one but without an exponent:
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?, at most FLAT_NUMBER_MAX bytes and 18
 * digits for an integer. Returns what follows it, or NULL. */
static char *
read_flat_number (char             *p,
                  char             *end,
                  HbJsonFlatMember *member)
{
  char *start = p;
  gboolean negative = FALSE;
  gint64 value = 0;
  guint digits = 0;

  if (*p == '-')
    {
      negative = TRUE;
      p++;
    }
  if (p >= end || !g_ascii_isdigit (*p))
    return NULL;
  if (*p == '0')
    {
      p++;
      digits = 1;
    }
  else
    for (; p < end && g_ascii_isdigit (*p); p++, digits++)
      {
        if (digits >= 18)
          return NULL;
        value = value * 10 + (*p - '0');
      }
  if (p < end && *p == '.')
    {
      char buffer[FLAT_NUMBER_MAX + 1];
      char *last;

      p++;
      if (p >= end || !g_ascii_isdigit (*p))
        return NULL;
      while (p < end && g_ascii_isdigit (*p))
        p++;
      if (p - start > FLAT_NUMBER_MAX)
        return NULL;
      memcpy (buffer, start, (gsize) (p - start));
      buffer[p - start] = '\0';
      member->kind = HB_JSON_FLAT_DOUBLE;
      member->number = g_ascii_strtod (buffer, &last);
      if (*last != '\0' || !isfinite (member->number))
        return NULL;
      return p;
    }
  member->kind = HB_JSON_FLAT_INTEGER;
  member->integer = negative ? -value : value;
  return p;
}

/**
 * hb_json_read_flat:
 * @text: (inout): a JSON text, written over: the closing quote of each
 *   string becomes its nul
 * @length: its length in bytes
 * @members: (out caller-allocates): where the members go
 * @max_members: how many @members holds
 *
 * Reads a JSON text that is one flat object, the usual body of a beat,
 * in one pass and without json-glib, or says that it is not one it reads.
 * It reads only what json-glib reads too, to the same values, and takes
 * nothing json-glib or the checks before it (hb_json_parse()) refuse:
 *
 *  - an object, white space around its tokens, nothing before or after;
 *  - at most @max_members members with distinct, non-empty names;
 *  - values: strings, true, false, and numbers
 *    `-?(0|[1-9][0-9]*)(\.[0-9]+)?` of at most 24 bytes (an integer of at
 *    most 18 digits);
 *  - strings (names too) without escapes, without bytes below 0x20 or
 *    0x7f, of valid UTF-8.
 *
 * Anything else (null, arrays, nested objects, escapes, exponents,
 * duplicate names, anything json-glib would refuse or read otherwise)
 * returns -1, and the text is to be read with hb_json_parse(), which
 * accepts or refuses it as before. tests/test-json.c compares the two.
 *
 * Returns: the number of members, or -1 if @text is not read here
 */
gint
hb_json_read_flat (char             *text,
                   gsize             length,
                   HbJsonFlatMember *members,
                   guint             max_members)
{
  char *end = text + length;
  char *p = skip_space (text, end);
  guint n = 0;

  if (p >= end || *p != '{')
    return -1;
  p = skip_space (p + 1, end);
  if (p < end && *p == '}')
    return skip_space (p + 1, end) == end ? 0 : -1;

  for (;;)
    {
      HbJsonFlatMember *member;
      gsize name_length;

      if (n >= max_members || p >= end || *p != '"')
        return -1;
      member = &members[n];
      memset (member, 0, sizeof *member);
      p = read_flat_string (p, end, &member->name, &name_length);
      if (p == NULL || name_length == 0)
        return -1;
      for (guint i = 0; i < n; i++)
        if (strcmp (members[i].name, member->name) == 0)
          return -1;
      p = skip_space (p, end);
      if (p >= end || *p != ':')
        return -1;
      p = skip_space (p + 1, end);
      if (p >= end)
        return -1;

      switch (*p)
        {
        case '"':
          member->kind = HB_JSON_FLAT_STRING;
          p = read_flat_string (p, end, &member->string, &member->length);
          break;
        case 't':
          member->kind = HB_JSON_FLAT_BOOLEAN;
          member->integer = 1;
          p = end - p >= 4 && memcmp (p, "true", 4) == 0 ? p + 4 : NULL;
          break;
        case 'f':
          member->kind = HB_JSON_FLAT_BOOLEAN;
          p = end - p >= 5 && memcmp (p, "false", 5) == 0 ? p + 5 : NULL;
          break;
        default:
          p = read_flat_number (p, end, member);
          break;
        }
      if (p == NULL)
        return -1;
      n++;

      /* a value ends at white space, a comma or the brace: "truex",
       * "1e5" and "0x1" are not read here */
      p = skip_space (p, end);
      if (p >= end)
        return -1;
      if (*p == '}')
        return skip_space (p + 1, end) == end ? (gint) n : -1;
      if (*p != ',')
        return -1;
      p = skip_space (p + 1, end);
    }
}

/**
 * hb_json_flat_to_vardict:
 * @members: members read by hb_json_read_flat()
 * @n_members: how many
 * @skip: (nullable): member names to leave out, %NULL-terminated
 *
 * The members not in @skip as hb_json_object_to_vardict() makes them of
 * the same text read by json-glib: an `a{sv}` in the order of the text,
 * strings as `s`, integers as `x`, other numbers as `d`, booleans as `b`.
 *
 * Returns: (transfer full): the dictionary
 */
GVariant *
hb_json_flat_to_vardict (const HbJsonFlatMember *members,
                         guint                   n_members,
                         const char *const      *skip)
{
  GVariant *entries[HB_JSON_FLAT_MAX_MEMBERS];
  guint n = 0;

  g_return_val_if_fail (n_members <= HB_JSON_FLAT_MAX_MEMBERS, NULL);

  for (guint i = 0; i < n_members; i++)
    {
      const HbJsonFlatMember *m = &members[i];
      GVariant *value;

      if (skip && g_strv_contains (skip, m->name))
        continue;
      switch (m->kind)
        {
        case HB_JSON_FLAT_STRING:
          value = g_variant_new_string (m->string);
          break;
        case HB_JSON_FLAT_INTEGER:
          value = g_variant_new_int64 (m->integer);
          break;
        case HB_JSON_FLAT_DOUBLE:
          value = g_variant_new_double (m->number);
          break;
        case HB_JSON_FLAT_BOOLEAN:
        default:
          value = g_variant_new_boolean (m->integer != 0);
          break;
        }
      entries[n++] = g_variant_new_dict_entry (g_variant_new_string (m->name), g_variant_new_variant (value));
    }
  return g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("{sv}"), entries, n));
}

/* ------------------------------------------------------------------ */
/* hb_json_flat_in_vardict() on the dictionary's bytes                  */

/* A dictionary in normal form, read where its bytes are, as GVariant's
 * serialisation lays them out (gvariant-serialiser.c): an array of
 * variable-size elements is its elements, each aligned to 8 (the
 * alignment of {sv}), then one framing offset per element, the end of
 * each; a {sv} entry is its key ("name\0"), its value aligned to 8, and
 * one framing offset, the end of the key; a variant is its value, a nul
 * and the value's type. Offsets are 1, 2, 4 or 8 bytes, by the size of
 * their container, in host order. Building no GVariant per entry makes
 * the check of a beat's metadata a few hundred instructions. */
typedef struct {
  const guint8 *data;
  gsize         size;
} Bytes;

static gsize
offset_size (gsize size)
{
  return size <= G_MAXUINT8 ? 1 : size <= G_MAXUINT16 ? 2 : size <= G_MAXUINT32 ? 4 : 8;
}

static gsize
read_offset (const guint8 *at,
             gsize         size)
{
  guint8 b1;
  guint16 b2;
  guint32 b4;
  guint64 b8;

  switch (size)
    {
    case 1: memcpy (&b1, at, 1); return b1;
    case 2: memcpy (&b2, at, 2); return b2;
    case 4: memcpy (&b4, at, 4); return b4;
    default: memcpy (&b8, at, 8); return (gsize) b8;
    }
}

/* Entry @i of the array @array of @n, or FALSE if its offsets do not
 * fit (not expected of normal form) */
static gboolean
array_child (Bytes  array,
             gsize  n,
             gsize  i,
             Bytes *child)
{
  gsize osize = offset_size (array.size);
  const guint8 *offsets = array.data + array.size - n * osize;
  gsize start = i > 0 ? read_offset (offsets + (i - 1) * osize, osize) : 0;
  gsize end = read_offset (offsets + i * osize, osize);

  start += (-start) & 7;
  if (start > end || end > array.size - n * osize)
    return FALSE;
  child->data = array.data + start;
  child->size = end - start;
  return TRUE;
}

/* A {sv} entry's key (with its nul) and variant */
static gboolean
entry_split (Bytes  entry,
             Bytes *key,
             Bytes *variant)
{
  gsize osize, key_end, value_start;

  if (entry.size == 0)
    return FALSE;
  osize = offset_size (entry.size);
  if (entry.size < osize)
    return FALSE;
  key_end = read_offset (entry.data + entry.size - osize, osize);
  value_start = key_end + ((-key_end) & 7);
  if (key_end == 0 || value_start > entry.size - osize || entry.data[key_end - 1] != '\0')
    return FALSE;
  key->data = entry.data;
  key->size = key_end;
  variant->data = entry.data + value_start;
  variant->size = entry.size - osize - value_start;
  return TRUE;
}

/* Whether the variant @variant holds what @member does, as
 * hb_json_flat_to_vardict() would write it: the same type, an equal value
 * (a double bit for bit) */
static gboolean
variant_bytes_equal (const HbJsonFlatMember *member,
                     Bytes                   variant)
{
  static const char types[] = { [HB_JSON_FLAT_STRING] = 's', [HB_JSON_FLAT_INTEGER] = 'x',
                                [HB_JSON_FLAT_DOUBLE] = 'd', [HB_JSON_FLAT_BOOLEAN] = 'b' };
  gsize value_size;

  /* value, nul, a one-character type */
  if (variant.size < 2 || variant.data[variant.size - 2] != '\0' ||
      (guint) member->kind >= G_N_ELEMENTS (types) || variant.data[variant.size - 1] != types[member->kind])
    return FALSE;
  value_size = variant.size - 2;
  switch (member->kind)
    {
    case HB_JSON_FLAT_STRING:
      return value_size == member->length + 1 && memcmp (variant.data, member->string, value_size) == 0;
    case HB_JSON_FLAT_INTEGER:
      return value_size == 8 && memcmp (variant.data, &member->integer, 8) == 0;
    case HB_JSON_FLAT_DOUBLE:
      return value_size == 8 && memcmp (variant.data, &member->number, 8) == 0;
    case HB_JSON_FLAT_BOOLEAN:
    default:
      return value_size == 1 && variant.data[0] == (member->integer != 0);
    }
}

/* hb_json_flat_in_vardict() of a dictionary in normal form, with @sorted
 * its @n members by name: the same answer, from the bytes */
static gboolean
in_vardict_bytes (const HbJsonFlatMember *const *sorted,
                  guint                          n,
                  GVariant                      *dict)
{
  Bytes array = { g_variant_get_data (dict), g_variant_get_size (dict) };
  const char *previous = NULL;
  gsize n_dict = 0, osize, last_end;
  guint j = 0;

  if (array.size > 0)
    {
      osize = offset_size (array.size);
      if (array.size < osize)
        return FALSE;
      last_end = read_offset (array.data + array.size - osize, osize);
      if (last_end > array.size || (array.size - last_end) % osize != 0)
        return FALSE;
      n_dict = (array.size - last_end) / osize;
    }
  for (gsize i = 0; i < n_dict; i++)
    {
      Bytes entry, key, variant;
      const char *name;
      int c;

      if (!array_child (array, n_dict, i, &entry) || !entry_split (entry, &key, &variant))
        return FALSE;
      name = (const char *) key.data;
      if (previous && strcmp (previous, name) >= 0)
        return FALSE;
      if (j < n && (c = strcmp (sorted[j]->name, name)) <= 0)
        {
          if (c < 0 || !variant_bytes_equal (sorted[j], variant))
            return FALSE;
          j++;
        }
      previous = name;
    }
  return j == n;
}

/**
 * hb_json_flat_in_vardict:
 * @members: members read by hb_json_read_flat()
 * @n_members: how many
 * @skip: (nullable): member names to leave out, %NULL-terminated
 * @dict: (nullable): an `a{sv}`
 *
 * Whether @dict has its keys in strictly ascending order (strcmp()) and
 * holds every member of @members not in @skip, under its name, with the
 * value hb_json_flat_to_vardict() would give it (the same type, an equal
 * value, a double bit for bit). Then a merge of those members into @dict
 * key by key, as heartbeat_monitor_beat() merges a beat's metadata, leaves
 * @dict as it is. %FALSE for a %NULL @dict.
 *
 * Returns: %TRUE if @dict holds the members already
 */
gboolean
hb_json_flat_in_vardict (const HbJsonFlatMember *members,
                         guint                   n_members,
                         const char *const      *skip,
                         GVariant               *dict)
{
  const HbJsonFlatMember *sorted[HB_JSON_FLAT_MAX_MEMBERS];
  guint n = 0;

  g_return_val_if_fail (n_members <= HB_JSON_FLAT_MAX_MEMBERS, FALSE);

  if (dict == NULL || !g_variant_is_of_type (dict, G_VARIANT_TYPE_VARDICT))
    return FALSE;

  /* the members by name (the reader took no name twice) */
  for (guint i = 0; i < n_members; i++)
    {
      guint k;

      if (skip && g_strv_contains (skip, members[i].name))
        continue;
      for (k = n; k > 0 && strcmp (sorted[k - 1]->name, members[i].name) > 0; k--)
        sorted[k] = sorted[k - 1];
      sorted[k] = &members[i];
      n++;
    }

  /* from its bytes, in its normal form (which a dictionary the monitor
   * built, or GLib checked once, has already: no copy then) */
  if (!g_variant_is_normal_form (dict))
    {
      g_autoptr(GVariant) normal = g_variant_get_normal_form (dict);

      return in_vardict_bytes (sorted, n, normal);
    }
  return in_vardict_bytes (sorted, n, dict);
}
