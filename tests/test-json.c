/* test-json.c: hb_json_read_flat(), the reader of small flat bodies,
 * against json-glib behind hb_json_parse()
 *
 * What the flat reader reads, json-glib (after the checks of
 * hb_json_parse()) must read too, to the same members with the same
 * values in the same order, and hb_json_flat_to_vardict() must make the
 * metadata hb_json_object_to_vardict() makes. What it does not read is
 * left to json-glib, so it may refuse anything; the cases below say which
 * texts it must read (else the fast way of POST /heartbeat would never be
 * taken) and which it must leave (else it would decide on a text
 * json-glib refuses or reads otherwise).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <math.h>
#include <string.h>

#include "hb-json.h"
#include "heartbeat-monitor.h"

/* Reads @text of @length bytes with both; asserts they agree when the
 * flat reader reads it. Returns what hb_json_read_flat() returned. */
static gint
compare (const char *text,
         gsize       length)
{
  static const char *const skip[] = { "run_id", "status", NULL };
  HbJsonFlatMember members[HB_JSON_FLAT_MAX_MEMBERS];
  g_autofree char *copy = g_malloc (length + 1);
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) flat = NULL;
  g_autoptr(GVariant) parsed = NULL;
  JsonObject *object;
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;
  gint n, i = 0;

  memcpy (copy, text, length);
  copy[length] = 'X';   /* nothing past @length is read */
  n = hb_json_read_flat (copy, length, members, G_N_ELEMENTS (members));
  g_assert_cmpint (n, >=, -1);
  g_assert_cmpint (n, <=, HB_JSON_FLAT_MAX_MEMBERS);
  if (n < 0)
    return n;

  root = hb_json_parse (text, length, &error);
  if (root == NULL)
    g_error ("read flat, refused by json-glib (%s): %.*s", error->message, (int) length, text);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
  object = json_node_get_object (root);
  g_assert_cmpuint (json_object_get_size (object), ==, (guint) n);

  json_object_iter_init_ordered (&iter, object);
  while (json_object_iter_next_ordered (&iter, &name, &node))
    {
      const HbJsonFlatMember *m = &members[i++];

      g_assert_cmpstr (m->name, ==, name);
      g_assert_true (JSON_NODE_HOLDS_VALUE (node));
      switch (m->kind)
        {
        case HB_JSON_FLAT_STRING:
          g_assert_cmpuint (json_node_get_value_type (node), ==, G_TYPE_STRING);
          g_assert_cmpstr (m->string, ==, json_node_get_string (node));
          g_assert_cmpuint (m->length, ==, strlen (m->string));
          break;
        case HB_JSON_FLAT_INTEGER:
          g_assert_cmpuint (json_node_get_value_type (node), ==, G_TYPE_INT64);
          g_assert_cmpint (m->integer, ==, json_node_get_int (node));
          break;
        case HB_JSON_FLAT_DOUBLE:
          {
            double theirs = json_node_get_double (node);

            g_assert_cmpuint (json_node_get_value_type (node), ==, G_TYPE_DOUBLE);
            g_assert_true (isfinite (m->number));
            g_assert_cmpmem (&m->number, sizeof m->number, &theirs, sizeof theirs);
          }
          break;
        case HB_JSON_FLAT_BOOLEAN:
          g_assert_cmpuint (json_node_get_value_type (node), ==, G_TYPE_BOOLEAN);
          g_assert_cmpint (m->integer != 0, ==, json_node_get_boolean (node));
          break;
        default:
          g_assert_not_reached ();
        }
    }
  g_assert_cmpint (i, ==, n);

  /* the same metadata, key by key, with or without members left out */
  flat = hb_json_flat_to_vardict (members, (guint) n, skip);
  parsed = hb_json_object_to_vardict (object, skip, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (flat, parsed));
  g_clear_pointer (&flat, g_variant_unref);
  g_clear_pointer (&parsed, g_variant_unref);
  flat = hb_json_flat_to_vardict (members, (guint) n, NULL);
  parsed = hb_json_object_to_vardict (object, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (flat, parsed));
  return n;
}

static gint
compare_text (const char *text)
{
  return compare (text, strlen (text));
}

/* Texts the flat reader reads (the bodies of beats), with how many
 * members */
static void
test_read (void)
{
  static const struct { const char *text; gint n; } cases[] = {
    { "{\"run_id\": \"bench-0-1\", \"status\": \"running\", \"tests_per_sec\": 0.9}", 3 },
    { "{}", 0 },
    { " \t\r\n{ \t\r\n} \t\r\n", 0 },
    { "{\"a\":1}", 1 },
    { "{\"a\":-1,\"b\":0,\"c\":-0,\"d\":123456789012345678,\"e\":-123456789012345678}", 5 },
    { "{\"a\":0.5,\"b\":-0.0,\"c\":6.2,\"d\":0.1,\"e\":12345678901234567.25,\"f\":1.000000000000000000001}", 6 },
    { "{\"t\":true,\"f\":false}", 2 },
    { "{\"s\":\"\",\"u\":\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x92\x93\",\"k\xc3\xa9y\":\"v\"}", 3 },
    { "{\"s\":\"a/b 'c' {d} [e] :,\"}", 1 },
    { "{\"run_id\":\"x\",\"status\":\"idle\",\"progress\":0.25,\"step\":3,\"ok\":true,\"note\":\"n\"}", 6 },
    { "{ \"a\" : 1 , \"b\" : \"2\" }", 2 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_test_message ("%s", cases[i].text);
      g_assert_cmpint (compare_text (cases[i].text), ==, cases[i].n);
    }
}

/* Texts the flat reader leaves to json-glib: each is refused by the
 * checks or by json-glib, or read by json-glib in a way the flat reader
 * does not (escapes, null, nesting, duplicate names, numbers JSON writes
 * otherwise) */
static void
test_leave (void)
{
  static const char *const cases[] = {
    /* not one object */
    "", " ", "[1]", "1", "\"s\"", "null", "{", "}", "{}{}", "{} x", "{}}", "\xef\xbb\xbf{}",
    /* names */
    "{a:1}", "{'a':1}", "{\"\":1}", "{\"a\"1}", "{\"a\"::1}", "{\"a\":1,\"a\":2}", "{\"a\":1,}", "{,}",
    "{\"a\":1 \"b\":2}", "{\"a\":1;\"b\":2}", "{1:1}",
    /* values */
    "{\"a\":null}", "{\"a\":[]}", "{\"a\":{}}", "{\"a\":[1]}", "{\"a\":{\"b\":1}}", "{\"a\":}",
    "{\"a\":True}", "{\"a\":tru}", "{\"a\":truex}", "{\"a\":true1}", "{\"a\":fals}", "{\"a\":nul}",
    "{\"a\":'s'}", "{\"a\":s}",
    /* numbers */
    "{\"a\":01}", "{\"a\":00}", "{\"a\":-}", "{\"a\":--1}", "{\"a\":- 1}", "{\"a\":+1}", "{\"a\":.5}",
    "{\"a\":1.}", "{\"a\":1.e5}", "{\"a\":1e5}", "{\"a\":1E5}", "{\"a\":1.5e3}", "{\"a\":0x10}",
    "{\"a\":0b1}", "{\"a\":1234567890123456789}", "{\"a\":9223372036854775808}",
    "{\"a\":-9223372036854775809}", "{\"a\":123456789012345678901234.5}", "{\"a\":1.2.3}",
    "{\"a\":NaN}", "{\"a\":Infinity}", "{\"a\":-Infinity}", "{\"a\":1_000}",
    /* strings */
    "{\"a\":\"\\n\"}", "{\"a\":\"\\\"\"}", "{\"a\":\"\\u0041\"}", "{\"a\":\"\\u0000\"}", "{\"a\":\"\\x41\"}",
    "{\"a\":\"\\200\"}", "{\"a\":\"\\ud800\"}", "{\"a\\n\":1}", "{\"a\":\"tab\there\"}",
    "{\"a\":\"line\nbreak\"}", "{\"a\":\"del\x7f\"}", "{\"a\":\"unterminated}", "{\"a\":\"\xff\"}",
    "{\"a\":\"\xc3\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xc0\x80\"}", "{\"\xff\":1}",
    /* comments, which json-glib skips */
    "{/* c */\"a\":1}", "{\"a\":1// c\n}", "{\"a\":1}/* c */", "{\"a\":1}#",
    /* white space JSON does not have */
    "{\f\"a\":1}", "{\v\"a\":1}", "{\"a\":1}\f", "{\xc2\xa0\"a\":1}",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_test_message ("%s", cases[i]);
      g_assert_cmpint (compare_text (cases[i]), ==, -1);
    }
}

/* A NUL byte anywhere, and bounds: more members than given room for */
static void
test_leave_bounds (void)
{
  static const char with_nul[] = "{\"a\":\"x\0y\"}";
  static const char nul_after[] = "{\"a\":1}\0";
  HbJsonFlatMember members[2];
  char text[] = "{\"a\":1,\"b\":2,\"c\":3}";
  char fits[] = "{\"a\":1,\"b\":2}";
  GString *many = g_string_new ("{");

  g_assert_cmpint (compare (with_nul, sizeof with_nul - 1), ==, -1);
  g_assert_cmpint (compare (nul_after, sizeof nul_after - 1), ==, -1);
  g_assert_cmpint (hb_json_read_flat (text, strlen (text), members, G_N_ELEMENTS (members)), ==, -1);
  g_assert_cmpint (hb_json_read_flat (fits, strlen (fits), members, G_N_ELEMENTS (members)), ==, 2);

  for (guint i = 0; i <= HB_JSON_FLAT_MAX_MEMBERS; i++)
    g_string_append_printf (many, "%s\"m%u\":%u", i ? "," : "", i, i);
  g_string_append_c (many, '}');
  g_assert_cmpint (compare (many->str, many->len), ==, -1);
  g_string_free (many, TRUE);
}

/* Random texts near the ones read: pieces of flat objects, with a byte
 * changed, dropped or doubled now and then; whatever the flat reader
 * reads of them, json-glib must read alike. */
static void
test_random (void)
{
  static const char *const names[] = {
    "\"run_id\"", "\"status\"", "\"a\"", "\"tests_per_sec\"", "\"k\xc3\xa9\"", "\"\"", "\"a\"", "'a'", "a",
  };
  static const char *const values[] = {
    "\"x\"", "\"bench-1-2\"", "\"\"", "\"\xe2\x82\xac\"", "\"a\\\"b\"", "\"\\u0041\"", "0", "-0", "1", "-17",
    "123456789012345678", "1234567890123456789", "0.9", "-0.0", "6.2", "1e5", "1.5E-3", "01", "0x1", ".5",
    "true", "false", "null", "[]", "{}", "[1,2]", "{\"b\":1}", "tru", "NaN", "- 1",
  };
  static const char *const spaces[] = { "", " ", "\n", "\t", "\r\n", "\f", "/**/" };
  static const char bytes[] = "{}[]\",:.-+0123456789eExtrufalsn \\\t\n\x7f\x80\xc3\xa9\xff";
  guint read = 0, runs = g_test_thorough () ? 200000 : 20000;

  for (guint round = 0; round < runs; round++)
    {
      GString *text = g_string_new (NULL);
      guint n = (guint) g_test_rand_int_range (0, 5);

      g_string_append (text, spaces[g_test_rand_int_range (0, G_N_ELEMENTS (spaces))]);
      g_string_append_c (text, '{');
      for (guint i = 0; i < n; i++)
        {
          if (i > 0)
            g_string_append_c (text, ',');
          g_string_append (text, spaces[g_test_rand_int_range (0, G_N_ELEMENTS (spaces))]);
          g_string_append (text, names[g_test_rand_int_range (0, G_N_ELEMENTS (names))]);
          if (g_test_rand_int_range (0, 4) == 0)
            g_string_append_printf (text, "%u", i);   /* mostly distinct names */
          g_string_append (text, spaces[g_test_rand_int_range (0, G_N_ELEMENTS (spaces))]);
          g_string_append_c (text, ':');
          g_string_append (text, values[g_test_rand_int_range (0, G_N_ELEMENTS (values))]);
        }
      g_string_append_c (text, '}');
      g_string_append (text, spaces[g_test_rand_int_range (0, G_N_ELEMENTS (spaces))]);

      /* a name made distinct again, or a byte changed, dropped or doubled */
      switch (g_test_rand_int_range (0, 6))
        {
        case 0:
          if (text->len > 0)
            text->str[g_test_rand_int_range (0, (gint32) text->len)] = bytes[g_test_rand_int_range (0, sizeof bytes - 1)];
          break;
        case 1:
          if (text->len > 0)
            g_string_erase (text, g_test_rand_int_range (0, (gint32) text->len), 1);
          break;
        case 2:
          if (text->len > 0)
            {
              gsize at = (gsize) g_test_rand_int_range (0, (gint32) text->len);
              g_string_insert_c (text, (gssize) at, text->str[at]);
            }
          break;
        default:
          break;
        }
      if (compare (text->str, text->len) >= 0)
        read++;
      g_string_free (text, TRUE);
    }
  /* the generator does reach the reader */
  g_assert_cmpuint (read, >, runs / 20);
  g_test_message ("%u of %u random texts were read flat", read, runs);
}

/* @text read flat (it must be) into @members; returns how many */
static guint
read_flat (char             *text,
           HbJsonFlatMember *members)
{
  gint n = hb_json_read_flat (text, strlen (text), members, HB_JSON_FLAT_MAX_MEMBERS);

  g_assert_cmpint (n, >=, 0);
  return (guint) n;
}

/* hb_json_flat_in_vardict(), case by case */
static void
test_in_vardict (void)
{
  static const char *const skip[] = { "run_id", "status", NULL };
  static const struct { const char *body; const char *dict; gboolean held; } cases[] = {
    { "{\"run_id\":\"x\",\"tests_per_sec\":0.9}", "{'tests_per_sec': <0.9>}", TRUE },
    { "{\"run_id\":\"x\",\"status\":\"s\",\"a\":1,\"b\":true,\"c\":\"s\"}", "{'a': <int64 1>, 'b': <true>, 'c': <'s'>, 'd': <2.5>}", TRUE },
    { "{\"c\":\"s\",\"a\":1}", "{'a': <int64 1>, 'c': <'s'>}", TRUE },
    { "{\"run_id\":\"x\"}", "@a{sv} {}", TRUE },
    { "{\"run_id\":\"x\"}", "{'z': <1>}", TRUE },
    /* not held: a value, a type or a key differs, or the order is not a merge's */
    { "{\"a\":0.9}", "{'a': <0.90000000000000013>}", FALSE },
    { "{\"a\":0.0}", "{'a': <-0.0>}", FALSE },
    { "{\"a\":1}", "{'a': <1.0>}", FALSE },
    { "{\"a\":1}", "{'a': <1>}", FALSE },   /* an int32 */
    { "{\"a\":1}", "{'a': <uint64 1>}", FALSE },
    { "{\"a\":1.0}", "{'a': <int64 1>}", FALSE },
    { "{\"a\":true}", "{'a': <false>}", FALSE },
    { "{\"a\":\"s\"}", "{'a': <'t'>}", FALSE },
    { "{\"a\":\"s\"}", "{'a': <objectpath '/s'>}", FALSE },
    { "{\"a\":\"s\"}", "{'a': <['s']>}", FALSE },
    { "{\"a\":1}", "{'b': <int64 1>}", FALSE },
    { "{\"a\":1,\"b\":2}", "{'a': <int64 1>}", FALSE },
    { "{\"b\":2}", "{'a': <int64 1>}", FALSE },
    { "{\"a\":1}", "{'b': <int64 2>, 'a': <int64 1>}", FALSE },
    { "{\"a\":1}", "{'a': <int64 1>, 'a': <int64 1>}", FALSE },
    { "{\"run_id\":\"x\"}", "{'b': <1>, 'a': <1>}", FALSE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      HbJsonFlatMember members[HB_JSON_FLAT_MAX_MEMBERS];
      g_autofree char *text = g_strdup (cases[i].body);
      g_autoptr(GVariant) dict = g_variant_ref_sink (g_variant_new_parsed (cases[i].dict));
      guint n = read_flat (text, members);

      g_test_message ("%s in %s", cases[i].body, cases[i].dict);
      g_assert_cmpint (hb_json_flat_in_vardict (members, n, skip, dict), ==, cases[i].held);
      /* its serialized form says the same */
      {
        g_autoptr(GVariant) serialized = g_variant_new_from_data (G_VARIANT_TYPE_VARDICT,
                                                                  g_variant_get_data (dict), g_variant_get_size (dict),
                                                                  TRUE, NULL, NULL);
        g_variant_ref_sink (serialized);
        g_assert_cmpint (hb_json_flat_in_vardict (members, n, skip, serialized), ==, cases[i].held);
      }
      /* and so does a form that is not normal (a padding byte set after
       * the first key), which is read in its normal form */
      if (g_variant_n_children (dict) > 0)
        {
          g_autoptr(GVariant) first = g_variant_get_child_value (dict, 0);
          g_autoptr(GVariant) key = g_variant_get_child_value (first, 0);
          gsize pad = strlen (g_variant_get_string (key, NULL)) + 1;
          g_autoptr(GBytes) bytes = NULL;
          g_autoptr(GVariant) odd = NULL;
          guint8 *data;

          if (pad % 8 != 0)
            {
              data = g_memdup2 (g_variant_get_data (dict), g_variant_get_size (dict));
              data[pad] = 0xff;
              bytes = g_bytes_new_take (data, g_variant_get_size (dict));
              odd = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE_VARDICT, bytes, FALSE));
              g_assert_false (g_variant_is_normal_form (odd));
              g_assert_true (g_variant_equal (odd, dict));
              g_assert_cmpint (hb_json_flat_in_vardict (members, n, skip, odd), ==, cases[i].held);
            }
        }
    }
  {
    HbJsonFlatMember members[HB_JSON_FLAT_MAX_MEMBERS];
    char text[] = "{}";

    g_assert_false (hb_json_flat_in_vardict (members, read_flat (text, members), NULL, NULL));
  }
}

/* What hb_json_flat_in_vardict() answers, told by GVariant's own
 * accessors: the keys strictly ascending, and every member not skipped
 * held under its name with the type and value hb_json_flat_to_vardict()
 * gives it */
static gboolean
in_vardict_reference (const HbJsonFlatMember *members,
                      guint                   n,
                      const char *const      *skip,
                      GVariant               *dict)
{
  g_autoptr(GVariant) made = hb_json_flat_to_vardict (members, n, skip);
  gsize n_dict = g_variant_n_children (dict);
  GVariantIter iter;
  const char *name;
  GVariant *value;

  for (gsize i = 1; i < n_dict; i++)
    {
      g_autoptr(GVariant) a = g_variant_get_child_value (dict, i - 1);
      g_autoptr(GVariant) b = g_variant_get_child_value (dict, i);
      g_autoptr(GVariant) ka = g_variant_get_child_value (a, 0);
      g_autoptr(GVariant) kb = g_variant_get_child_value (b, 0);

      if (strcmp (g_variant_get_string (ka, NULL), g_variant_get_string (kb, NULL)) >= 0)
        return FALSE;
    }
  g_variant_iter_init (&iter, made);
  while (g_variant_iter_loop (&iter, "{&sv}", &name, &value))
    {
      /* (of an a{sv}, the value inside the variant) */
      g_autoptr(GVariant) inner = g_variant_lookup_value (dict, name, NULL);

      if (inner == NULL || !g_variant_type_equal (g_variant_get_type (inner), g_variant_get_type (value)) ||
          g_variant_get_size (inner) != g_variant_get_size (value) ||
          memcmp (g_variant_get_data (inner), g_variant_get_data (value), g_variant_get_size (value)) != 0)
        return FALSE;
    }
  return TRUE;
}

/* Random members against random dictionaries, of every size of framing
 * offset (1, 2 and 4 bytes: a long string value makes a large one), in
 * order or not, tree-form and serialized: the same answer as the
 * reference */
static void
test_in_vardict_random (void)
{
  static const char *const skip[] = { "run_id", "status", NULL };
  static const char *const names[] = { "a", "bb", "c", "status", "tests_per_sec", "z234567", "z2345678" };
  static const char *const values[] = { "1", "-7", "0.9", "-0.0", "true", "false", "\"s\"", "\"\"", "\"t\"" };
  static const char *const dict_values[] = { "<int64 1>", "<int64 -7>", "<0.9>", "<-0.0>", "<true>", "<false>",
                                             "<'s'>", "<''>", "<'t'>", "<1>", "<objectpath '/s'>", "<['s']>",
                                             "<{'a': <1>}>", "<uint64 1>", "<byte 1>" };
  guint held = 0, runs = 20000;

  for (guint round = 0; round < runs; round++)
    {
      HbJsonFlatMember members[HB_JSON_FLAT_MAX_MEMBERS];
      g_autoptr(GString) text = g_string_new ("{");
      g_autoptr(GString) dict_text = g_string_new ("@a{sv} {");
      g_autoptr(GVariant) dict = NULL;
      g_autoptr(GVariant) serialized = NULL;
      guint n, first = 1;
      gint size_class = g_test_rand_int_range (0, 3);
      gboolean expected;

      for (guint i = 0; i < G_N_ELEMENTS (names); i++)
        if (g_test_rand_int_range (0, 3) == 0)
          {
            g_string_append_printf (text, "%s\"%s\":%s", first ? "" : ",", names[i],
                                    values[g_test_rand_int_range (0, G_N_ELEMENTS (values))]);
            first = 0;
          }
      g_string_append_c (text, '}');
      n = read_flat (text->str, members);

      /* mostly in order, sometimes not; mostly the members' values */
      first = 1;
      for (guint k = 0; k < G_N_ELEMENTS (names); k++)
        {
          guint i = g_test_rand_int_range (0, 8) == 0 ? (guint) g_test_rand_int_range (0, G_N_ELEMENTS (names)) : k;
          const char *value = NULL;

          if (g_test_rand_int_range (0, 3) == 0)
            continue;
          for (guint m = 0; m < n; m++)
            if (strcmp (members[m].name, names[i]) == 0 && g_test_rand_int_range (0, 4) != 0)
              value = members[m].kind == HB_JSON_FLAT_STRING ? (members[m].length ? "<'s'>" : "<''>")
                      : members[m].kind == HB_JSON_FLAT_BOOLEAN ? (members[m].integer ? "<true>" : "<false>")
                      : members[m].kind == HB_JSON_FLAT_INTEGER ? (members[m].integer == 1 ? "<int64 1>" : "<int64 -7>")
                      : members[m].number == 0.9 ? "<0.9>" : "<-0.0>";
          if (value == NULL)
            value = dict_values[g_test_rand_int_range (0, G_N_ELEMENTS (dict_values))];
          g_string_append_printf (dict_text, "%s'%s': %s", first ? "" : ", ", names[i], value);
          first = 0;
        }
      /* a filler that makes the framing offsets 2 or 4 bytes wide */
      if (size_class > 0)
        {
          gsize length = size_class == 1 ? 300 : 70000;
          g_autofree char *filler = g_strnfill (length, 'f');

          g_string_append_printf (dict_text, "%s'zz': <'%s'>", first ? "" : ", ", filler);
        }
      g_string_append_c (dict_text, '}');
      dict = g_variant_ref_sink (g_variant_new_parsed (dict_text->str));
      serialized = g_variant_ref_sink (g_variant_new_from_data (G_VARIANT_TYPE_VARDICT, g_variant_get_data (dict),
                                                                g_variant_get_size (dict), TRUE, NULL, NULL));
      expected = in_vardict_reference (members, n, skip, dict);
      if (hb_json_flat_in_vardict (members, n, skip, dict) != expected ||
          hb_json_flat_in_vardict (members, n, skip, serialized) != expected)
        g_error ("%s in %.200s: expected %d", text->str, dict_text->str, expected);
      held += expected;
    }
  /* both answers come up often */
  g_assert_cmpuint (held, >, runs / 20);
  g_assert_cmpuint (held, <, runs - runs / 20);
}

/* What hb_json_flat_in_vardict() says is held, a beat of the monitor
 * leaves as it is: random beats against random metadata, and the agent
 * keeps the very same dictionary after each beat said to be held */
static void
test_in_vardict_beat (void)
{
  static const char *const skip[] = { "run_id", "status", NULL };
  static const char *const names[] = { "a", "b", "c", "tests_per_sec" };
  static const char *const values[] = { "1", "2", "0.9", "-0.0", "0.0", "true", "false", "\"s\"", "\"t\"" };
  g_autoptr(HeartbeatMonitor) monitor = heartbeat_monitor_new ();
  guint held = 0, runs = 2000;

  for (guint round = 0; round < runs; round++)
    {
      HbJsonFlatMember members[HB_JSON_FLAT_MAX_MEMBERS];
      g_autoptr(GVariant) metadata = NULL;
      HeartbeatBeatDetails details = { 0 };
      HeartbeatAgentOptions options = { 0 };
      GVariant *before, *after;
      HeartbeatAgent *agent;
      GString *text = g_string_new ("{");
      guint n;
      gboolean in;

      /* a few members, distinct names */
      for (guint i = 0, first = 1; i < G_N_ELEMENTS (names); i++)
        if (g_test_rand_bit ())
          {
            g_string_append_printf (text, "%s\"%s\":%s", first ? "" : ",", names[i],
                                    values[g_test_rand_int_range (0, G_N_ELEMENTS (values))]);
            first = 0;
          }
      g_string_append_c (text, '}');
      n = read_flat (text->str, members);
      metadata = hb_json_flat_to_vardict (members, n, skip);

      /* an agent whose metadata came from a first beat (sorted, as a
       * merge leaves it), then a second beat */
      agent = heartbeat_monitor_register (monitor, "agent", &options, NULL);
      g_assert_nonnull (agent);
      details.metadata = metadata;
      g_assert_true (heartbeat_monitor_beat (monitor, "agent", &details, NULL));
      g_string_assign (text, "{");
      for (guint i = 0, first = 1; i < G_N_ELEMENTS (names); i++)
        if (g_test_rand_bit ())
          {
            g_string_append_printf (text, "%s\"%s\":%s", first ? "" : ",", names[i],
                                    values[g_test_rand_int_range (0, G_N_ELEMENTS (values))]);
            first = 0;
          }
      g_string_append_c (text, '}');
      n = read_flat (text->str, members);
      before = heartbeat_agent_get_metadata (agent);
      in = hb_json_flat_in_vardict (members, n, skip, before);
      g_clear_pointer (&metadata, g_variant_unref);
      metadata = hb_json_flat_to_vardict (members, n, skip);
      details.metadata = metadata;
      g_assert_true (heartbeat_monitor_beat (monitor, "agent", &details, NULL));
      after = heartbeat_agent_get_metadata (agent);
      /* held exactly when the beat left the dictionary as it was */
      g_assert_cmpint (in, ==, after == before);
      held += in;
      g_assert_true (heartbeat_monitor_unregister (monitor, "agent", NULL));
      g_string_free (text, TRUE);
    }
  g_assert_cmpuint (held, >, runs / 20);
  g_assert_cmpuint (held, <, runs);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/json/flat/read", test_read);
  g_test_add_func ("/json/flat/leave", test_leave);
  g_test_add_func ("/json/flat/leave-bounds", test_leave_bounds);
  g_test_add_func ("/json/flat/random", test_random);
  g_test_add_func ("/json/flat/in-vardict", test_in_vardict);
  g_test_add_func ("/json/flat/in-vardict-random", test_in_vardict_random);
  g_test_add_func ("/json/flat/in-vardict-beat", test_in_vardict_beat);
  return g_test_run ();
}
