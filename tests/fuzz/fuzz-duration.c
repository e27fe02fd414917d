/* fuzz-duration.c: libFuzzer target for duration parsing
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-duration.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_autofree char *text = g_strndup ((const char *) data, size);
  gint64 usec = -1;

  if (hb_duration_parse (text, &usec, NULL))
    {
      g_autofree char *again = hb_duration_format (usec);

      g_assert_cmpint (usec, >, 0);
      g_assert_cmpint (usec, <=, HB_DURATION_MAX);
      g_assert_nonnull (again);
    }
  return 0;
}
