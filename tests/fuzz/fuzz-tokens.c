/* fuzz-tokens.c: libFuzzer target for the HTTP tokens file
 *
 * A tokens file that parses must grant each of its plain tokens at least
 * the scopes of its line (several lines may name one token: their scopes
 * add up), and grant nothing to a token it does not name. Inputs with a
 * "$" are left out: a crypt(3) hash costs what its settings say, and the
 * admin, not the fuzzer, chooses those.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "hb-http-private.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GHashTable) expected = NULL;
  HbHttpTokens *tokens;
  GHashTableIter iter;
  gpointer key, value;

  if (memchr (data, '$', size) != NULL)
    return 0;
  tokens = hb_http_tokens_parse ((const char *) data, size, NULL);
  if (tokens == NULL)
    return 0;

  /* what the file says, read here on its own terms */
  expected = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  text = g_strndup ((const char *) data, size);
  lines = g_strsplit (text, "\n", -1);
  for (gsize i = 0; lines[i]; i++)
    {
      g_auto(GStrv) fields = NULL;
      char *line = g_strstrip (lines[i]);
      const char *field[2] = { NULL, NULL };
      guint n = 0, scopes = 0;

      if (*line == '\0' || *line == '#')
        continue;
      fields = g_strsplit_set (line, " \t", -1);
      for (gsize f = 0; fields[f]; f++)
        if (*fields[f])
          {
            g_assert_cmpuint (n, <, 2);   /* more fields: refused */
            field[n++] = fields[f];
          }
      g_assert_cmpuint (n, >=, 1);
      if (n == 1)
        scopes = HB_HTTP_SCOPE_READ | HB_HTTP_SCOPE_WRITE | HB_HTTP_SCOPE_PING;
      else
        g_assert_true (hb_http_scopes_parse (field[0], &scopes, NULL));
      scopes |= GPOINTER_TO_UINT (g_hash_table_lookup (expected, field[n - 1]));
      g_hash_table_insert (expected, g_strdup (field[n - 1]), GUINT_TO_POINTER (scopes));
    }
  g_assert_cmpuint (g_hash_table_size (expected), >, 0);

  g_hash_table_iter_init (&iter, expected);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      g_autofree char *other = g_strconcat (key, "x", NULL);

      g_assert_cmpuint (hb_http_tokens_scopes (tokens, key), ==, GPOINTER_TO_UINT (value));
      if (!g_hash_table_contains (expected, other))
        g_assert_cmpuint (hb_http_tokens_scopes (tokens, other), ==, 0);
    }
  g_assert_cmpuint (hb_http_tokens_scopes (tokens, ""), ==, 0);
  hb_http_tokens_free (tokens);
  return 0;
}
