/* test-tail.c: HbTail keeps the last bytes of endless output, in bounded memory
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "hb-tail.h"

static void
test_short_output_whole (void)
{
  g_autoptr(HbTail) tail = hb_tail_new (16);
  g_autofree char *text = NULL;

  hb_tail_append (tail, "abc", 3);
  hb_tail_append (tail, "def\n", 4);
  text = hb_tail_get_text (tail);
  g_assert_cmpstr (text, ==, "abcdef\n");
  g_assert_cmpuint (hb_tail_get_total (tail), ==, 7);
  g_assert_cmpuint (hb_tail_get_dropped (tail), ==, 0);
}

/* Appending byte by byte, in chunks and at once gives the same tail: the
 * last @max bytes of everything, whatever the chunking. */
static void
test_any_chunking (void)
{
  GString *all = g_string_new (NULL);
  gsize sizes[] = { 1, 3, 7, 15, 16, 17, 40, 1000 };

  for (guint i = 0; i < 3000; i++)
    g_string_append_c (all, (char) ('a' + (i * 7) % 26));
  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    {
      g_autoptr(HbTail) tail = hb_tail_new (16);
      g_autofree char *text = NULL;

      for (gsize at = 0; at < all->len; at += sizes[s])
        hb_tail_append (tail, all->str + at, MIN (sizes[s], all->len - at));
      text = hb_tail_get_text (tail);
      g_assert_cmpstr (text, ==, all->str + all->len - 16);
      g_assert_cmpuint (hb_tail_get_total (tail), ==, all->len);
      g_assert_cmpuint (hb_tail_get_dropped (tail), ==, all->len - 16);
    }
  g_string_free (all, TRUE);
}

/* A cut in the middle of a character starts at the next one; a NUL or
 * bytes that are not UTF-8 are shown, not trusted. */
static void
test_utf8_boundaries (void)
{
  g_autoptr(HbTail) tail = hb_tail_new (5);
  g_autofree char *text = NULL, *nul = NULL, *cut = NULL, *bad = NULL;
  g_autoptr(HbTail) with_nul = hb_tail_new (8);

  hb_tail_append (tail, "x\xc3\xa9\xc3\xa9\xc3\xa9", 7);   /* xééé: 5 bytes keep ½éé */
  text = hb_tail_get_text (tail);
  g_assert_cmpstr (text, ==, "\xc3\xa9\xc3\xa9");
  g_assert_true (g_utf8_validate (text, -1, NULL));

  hb_tail_append (with_nul, "a\0b", 3);
  nul = hb_tail_get_text (with_nul);
  g_assert_cmpuint (strlen (nul), >, 2);
  g_assert_true (g_utf8_validate (nul, -1, NULL));
  g_assert_true (g_str_has_prefix (nul, "a") && g_str_has_suffix (nul, "b"));

  cut = hb_utf8_tail ("x\xc3\xa9y", 3);
  g_assert_cmpstr (cut, ==, "\xc3\xa9y");
  g_clear_pointer (&cut, g_free);
  cut = hb_utf8_tail ("x\xc3\xa9y", 2);
  g_assert_cmpstr (cut, ==, "y");
  bad = hb_utf8_tail ("ab\xff", 10);
  g_assert_true (g_utf8_validate (bad, -1, NULL));
  g_assert_true (g_str_has_prefix (bad, "ab"));
}

/* A megabyte at a time, 64 MiB in all: memory stays at the tail's size. */
static void
test_endless_output_bounded (void)
{
  g_autoptr(HbTail) tail = hb_tail_new (HB_TAIL_BYTES);
  g_autofree char *chunk = g_malloc (1 << 20);
  g_autofree char *text = NULL;

  memset (chunk, 'y', 1 << 20);
  chunk[(1 << 20) - 1] = '\n';
  for (guint i = 0; i < 64; i++)
    hb_tail_append (tail, chunk, 1 << 20);
  text = hb_tail_get_text (tail);
  g_assert_cmpuint (strlen (text), ==, HB_TAIL_BYTES);
  g_assert_true (g_str_has_suffix (text, "y\n"));
  g_assert_cmpuint (hb_tail_get_dropped (tail), ==, ((guint64) 64 << 20) - HB_TAIL_BYTES);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/tail/short-output-whole", test_short_output_whole);
  g_test_add_func ("/tail/any-chunking", test_any_chunking);
  g_test_add_func ("/tail/utf8-boundaries", test_utf8_boundaries);
  g_test_add_func ("/tail/endless-output-bounded", test_endless_output_bounded);
  return g_test_run ();
}
