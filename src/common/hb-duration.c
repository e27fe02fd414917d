/* hb-duration.c: durations as people write them (heartbeatd.conf, hbctl)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-duration.h"

#include <errno.h>
#include <string.h>

/**
 * hb_duration_parse:
 * @text: a duration such as `90`, `90s`, `5min`, `1h30m` or `250ms`
 * @usec: (out): the duration in µs
 * @error: return location for a #GError (%G_IO_ERROR_INVALID_ARGUMENT)
 *
 * A number alone is seconds. Units: `us`, `ms`, `s`, `m` or `min`, `h`,
 * `d`; parts add up. The result is positive and at most
 * %HB_DURATION_MAX.
 *
 * Returns: %TRUE on success
 */
gboolean
hb_duration_parse (const char *text,
                          gint64     *usec,
                          GError    **error)
{
  static const struct { const char *unit; gint64 usec; } units[] = {
    /* longest first, so "min" is not read as "m" followed by "in" */
    { "min", 60 * G_USEC_PER_SEC },
    { "ms", 1000 },
    { "us", 1 },
    { "s", G_USEC_PER_SEC },
    { "m", 60 * G_USEC_PER_SEC },
    { "h", G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC },
    { "d", G_GINT64_CONSTANT (86400) * G_USEC_PER_SEC },
  };
  const char *p = text;
  gint64 total = 0;
  gboolean first = TRUE;

  if (text == NULL)
    goto invalid;
  while (*p == ' ')
    p++;
  if (*p == '\0')
    goto invalid;

  while (*p)
    {
      guint64 number;
      gint64 scale = -1;
      char *end;

      if (!g_ascii_isdigit (*p))
        goto invalid;
      errno = 0;
      number = g_ascii_strtoull (p, &end, 10);
      if (errno != 0)
        goto invalid;
      p = end;
      while (*p == ' ')
        p++;

      if (*p == '\0' && first)
        scale = G_USEC_PER_SEC;   /* a bare number: seconds */
      else
        {
          for (gsize i = 0; i < G_N_ELEMENTS (units); i++)
            if (g_str_has_prefix (p, units[i].unit))
              {
                scale = units[i].usec;
                p += strlen (units[i].unit);
                break;
              }
        }
      if (scale < 0)
        goto invalid;
      if (number > (guint64) HB_DURATION_MAX / (guint64) scale ||
          total + (gint64) number * scale > HB_DURATION_MAX)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "Duration “%s” is too long", text);
          return FALSE;
        }
      total += (gint64) number * scale;
      first = FALSE;
      while (*p == ' ')
        p++;
    }

  if (total <= 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "Duration “%s” must be more than zero", text);
      return FALSE;
    }
  *usec = total;
  return TRUE;

invalid:
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
               "“%s” is not a duration (examples: 90, 90s, 5min, 1h30m, 250ms)",
               text ? text : "");
  return FALSE;
}

/**
 * hb_duration_format:
 * @usec: a duration in µs (negative is taken as 0)
 *
 * A short human form with at most two units: `250ms`, `3s`, `4m12s`,
 * `1h02m`, `2d03h`.
 *
 * Returns: (transfer full): the text
 */
char *
hb_duration_format (gint64 usec)
{
  gint64 s;

  if (usec < 0)
    usec = 0;
  if (usec < G_USEC_PER_SEC)
    return g_strdup_printf ("%" G_GINT64_FORMAT "ms", usec / 1000);
  s = usec / G_USEC_PER_SEC;
  if (s < 60)
    return g_strdup_printf ("%" G_GINT64_FORMAT "s", s);
  if (s < 3600)
    return g_strdup_printf ("%" G_GINT64_FORMAT "m%02" G_GINT64_FORMAT "s", s / 60, s % 60);
  if (s < 86400)
    return g_strdup_printf ("%" G_GINT64_FORMAT "h%02" G_GINT64_FORMAT "m", s / 3600, (s % 3600) / 60);
  return g_strdup_printf ("%" G_GINT64_FORMAT "d%02" G_GINT64_FORMAT "h", s / 86400, (s % 86400) / 3600);
}
