/* fuzz-cron.c: libFuzzer target for cron expressions
 *
 * Whatever parses has a canonical form that parses back to the same
 * canonical form and is no longer than the input; its due times, by
 * hb_cron_next() and hb_cron_prev() in a zone with daylight saving time,
 * come back, are strictly increasing and agree with each other.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-cron.h"

#include <string.h>

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  static GTimeZone *tz = NULL;
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_autoptr(HbCron) cron = NULL;
  g_autoptr(HbCron) again = NULL;
  g_autofree char *canonical = NULL;
  g_autofree char *canonical_again = NULL;
  /* 2026-03-29T00:00:00Z, a few hours before Berlin's clock goes forwards */
  gint64 t = G_GINT64_CONSTANT (1774742400) * G_USEC_PER_SEC;

  if (tz == NULL)
    tz = g_time_zone_new_identifier ("Europe/Berlin");
  g_assert_nonnull (tz);

  cron = hb_cron_parse (text, NULL);
  if (cron == NULL)
    return 0;
  canonical = hb_cron_to_string (cron);
  g_assert_cmpuint (strlen (canonical), <=, MAX (strlen (text), 9));
  again = hb_cron_parse (canonical, NULL);
  g_assert_nonnull (again);
  canonical_again = hb_cron_to_string (again);
  g_assert_cmpstr (canonical_again, ==, canonical);

  for (guint i = 0; i < 4; i++)
    {
      gint64 next = hb_cron_next (cron, tz, t);

      if (next == 0)
        break;
      g_assert_cmpint (next, >, t);
      g_assert_cmpint (hb_cron_prev (cron, tz, next), ==, next);
      /* nothing due between t and next */
      g_assert_cmpint (hb_cron_prev (cron, tz, next - 1), <=, t);
      t = next;
    }
  return 0;
}
