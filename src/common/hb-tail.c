/* hb-tail.c: the last bytes of a program's output, bounded
 *
 * A program may write without end (`yes`); what is worth showing is how
 * its output ended. An HbTail keeps the last @max bytes of everything
 * appended and counts the rest, in memory bounded by 2 × @max whatever
 * comes: the buffer grows to twice the tail, then drops its older half
 * at once, so each byte is moved at most once (amortized O(1)).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-tail.h"

#include <string.h>

struct _HbTail {
  GByteArray *bytes;
  gsize       max;
  guint64     total;
};

/**
 * hb_tail_new:
 * @max: how many of the last bytes to keep, at least 1
 *
 * Returns: (transfer full): an empty tail
 */
HbTail *
hb_tail_new (gsize max)
{
  HbTail *tail = g_new0 (HbTail, 1);

  tail->max = MAX (max, 1);
  tail->bytes = g_byte_array_sized_new ((guint) MIN (2 * tail->max, 65536));
  return tail;
}

void
hb_tail_free (HbTail *tail)
{
  if (tail == NULL)
    return;
  g_byte_array_unref (tail->bytes);
  g_free (tail);
}

/**
 * hb_tail_append:
 * @tail: a #HbTail
 * @data: (array length=length): bytes, any
 * @length: how many
 *
 * Adds @data at the end; only the last @max bytes of all are kept.
 */
void
hb_tail_append (HbTail     *tail,
                const void *data,
                gsize       length)
{
  const guint8 *p = data;

  tail->total += length;
  if (length >= tail->max)
    {
      /* only the end of @data can be part of the tail */
      g_byte_array_set_size (tail->bytes, 0);
      g_byte_array_append (tail->bytes, p + length - tail->max, (guint) tail->max);
      return;
    }
  if (tail->bytes->len + length > 2 * tail->max)
    g_byte_array_remove_range (tail->bytes, 0, (guint) (tail->bytes->len - (tail->max - length)));
  g_byte_array_append (tail->bytes, p, (guint) length);
}

/**
 * hb_tail_get_total:
 * @tail: a #HbTail
 *
 * Returns: how many bytes were appended in all
 */
guint64
hb_tail_get_total (const HbTail *tail)
{
  return tail->total;
}

/**
 * hb_tail_get_dropped:
 * @tail: a #HbTail
 *
 * Returns: how many bytes came before those hb_tail_get_text() shows
 */
guint64
hb_tail_get_dropped (const HbTail *tail)
{
  return tail->total - MIN (tail->total, (guint64) tail->max);
}

/**
 * hb_utf8_tail:
 * @text: bytes, meant to be UTF-8
 * @max: at most this many bytes of it
 *
 * Returns: (transfer full): the end of @text, at most @max bytes, starting
 *   at a character boundary; valid UTF-8 (anything invalid is replaced
 *   with U+FFFD, which may make the result a few bytes longer) without NUL
 */
char *
hb_utf8_tail (const char *text,
              gsize       max)
{
  gsize length = strlen (text);
  const char *start = text + length - MIN (length, max);

  /* skip continuation bytes: the tail starts with a whole character */
  while (start > text && start < text + length && ((guchar) *start & 0xC0) == 0x80)
    start++;
  return g_utf8_make_valid (start, (gssize) (text + length - start));
}

/**
 * hb_tail_get_text:
 * @tail: a #HbTail
 *
 * Returns: (transfer full): the last bytes appended, at most @max, from a
 *   character boundary, as valid UTF-8 (see hb_utf8_tail()); a NUL
 *   in the output ends nothing: it becomes U+FFFD
 */
char *
hb_tail_get_text (const HbTail *tail)
{
  gsize n = MIN (tail->bytes->len, tail->max);
  const char *start = (const char *) tail->bytes->data + tail->bytes->len - n;
  g_autofree char *copy = g_malloc (n + 1);
  gsize i;

  /* a NUL would cut the text short: show it as invalid */
  for (i = 0; i < n; i++)
    copy[i] = start[i] != '\0' ? start[i] : '\xff';
  copy[n] = '\0';
  /* whole characters only: after a cut, skip the rest of the one cut */
  for (i = 0; tail->total > n && i < n && ((guchar) copy[i] & 0xC0) == 0x80; i++)
    ;
  return g_utf8_make_valid (copy + i, (gssize) (n - i));
}
