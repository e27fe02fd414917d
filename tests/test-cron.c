/* test-cron.c: cron expressions and their due times (hb-cron.c)
 *
 * The expected times in the tables are derived by hand from crontab(5)
 * and Debian's cron(8) (the paragraph on daylight saving time is quoted
 * at the top of hb-cron.c). 2026: Jan 1 is a Thursday; Europe/Berlin goes
 * 02:00 CET -> 03:00 CEST on Sunday March 29 and 03:00 CEST -> 02:00 CET
 * on Sunday October 25; America/New_York goes 02:00 EST -> 03:00 EDT on
 * Sunday March 8 and 02:00 EDT -> 01:00 EST on Sunday November 1.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-cron.h"

#include <string.h>

static gint64
usec_of (const char *iso8601)
{
  g_autoptr(GDateTime) dt = g_date_time_new_from_iso8601 (iso8601, NULL);

  g_assert_nonnull (dt);
  return g_date_time_to_unix (dt) * G_USEC_PER_SEC + g_date_time_get_microsecond (dt);
}

static char *
format_usec (gint64      usec,
             GTimeZone  *tz)
{
  g_autoptr(GDateTime) utc = NULL;
  g_autoptr(GDateTime) local = NULL;

  if (usec == 0)
    return g_strdup ("(none)");
  utc = g_date_time_new_from_unix_utc (usec / G_USEC_PER_SEC);
  local = g_date_time_to_timezone (utc, tz);
  return g_date_time_format (local, "%Y-%m-%dT%H:%M:%S%:z (%a)");
}

static void
assert_time (gint64      got,
             gint64      expected,
             GTimeZone  *tz,
             const char *what)
{
  if (got != expected)
    {
      g_autofree char *g = format_usec (got, tz);
      g_autofree char *e = format_usec (expected, tz);

      g_error ("%s: got %s, expected %s", what, g, e);
    }
}

typedef struct {
  const char *expression;
  const char *tz;
  const char *after;
  const char *next;   /* NULL: none within the horizon */
} NextCase;

static const NextCase next_cases[] = {
  /* every field form */
  { "* * * * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z" },
  { "* * * * *", "UTC", "2026-01-01T00:00:30Z", "2026-01-01T00:01:00Z" },
  { "* * * * *", "UTC", "2026-01-01T00:00:59.999999Z", "2026-01-01T00:01:00Z" },
  { "*/5 * * * *", "UTC", "2026-01-01T00:07:00Z", "2026-01-01T00:10:00Z" },
  { "5 * * * *", "UTC", "2026-01-01T00:05:00Z", "2026-01-01T01:05:00Z" },
  { "5 * * * *", "UTC", "2026-01-01T00:04:59Z", "2026-01-01T00:05:00Z" },
  { "1-10/2 * * * *", "UTC", "2026-01-01T00:09:00Z", "2026-01-01T01:01:00Z" },
  { "1-10/2 * * * *", "UTC", "2026-01-01T00:03:00Z", "2026-01-01T00:05:00Z" },
  { "5/15 * * * *", "UTC", "2026-01-01T00:35:00Z", "2026-01-01T00:50:00Z" },
  { "5/15 * * * *", "UTC", "2026-01-01T00:50:00Z", "2026-01-01T01:05:00Z" },
  { "0,30 9-17 * * *", "UTC", "2026-01-01T17:30:00Z", "2026-01-02T09:00:00Z" },
  { "0,30 9-17 * * *", "UTC", "2026-01-01T09:00:00Z", "2026-01-01T09:30:00Z" },
  { "15 */6 * * *", "UTC", "2026-01-01T06:15:00Z", "2026-01-01T12:15:00Z" },
  { "0 0 1 */3 *", "UTC", "2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z" },
  { "0 0 1 6-8/2 *", "UTC", "2026-06-01T00:00:00Z", "2026-08-01T00:00:00Z" },
  /* names, any case; 0 and 7 are Sunday */
  { "0 0 1 jan *", "UTC", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z" },
  { "0 0 1 JAN *", "UTC", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z" },
  { "0 0 1 jun-Aug/2 *", "UTC", "2026-06-01T00:00:00Z", "2026-08-01T00:00:00Z" },
  { "0 12 * * mon-fri", "UTC", "2026-01-02T12:00:00Z", "2026-01-05T12:00:00Z" },
  { "0 12 * * 7", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T12:00:00Z" },
  { "0 12 * * 0", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T12:00:00Z" },
  { "0 12 * * Sun", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T12:00:00Z" },
  { "0 12 * * 5-7", "UTC", "2026-01-02T12:00:00Z", "2026-01-03T12:00:00Z" },
  { "0 12 * * 5-7", "UTC", "2026-01-03T12:00:00Z", "2026-01-04T12:00:00Z" },
  { "0 12 * * fri/7", "UTC", "2026-01-02T12:00:00Z", "2026-01-09T12:00:00Z" },
  /* day of month OR day of week when neither is starred */
  { "0 0 13 * 5", "UTC", "2026-04-10T00:00:00Z", "2026-04-13T00:00:00Z" },
  { "0 0 13 * 5", "UTC", "2026-04-13T00:00:00Z", "2026-04-17T00:00:00Z" },
  { "0 0 13 * 5", "UTC", "2026-04-03T00:00:00Z", "2026-04-10T00:00:00Z" },
  /* ... AND when one is starred, "*\/2" too */
  { "0 0 */2 * 5", "UTC", "2026-04-03T00:00:00Z", "2026-04-17T00:00:00Z" },
  { "0 0 */2 * 5", "UTC", "2026-04-17T00:00:00Z", "2026-05-01T00:00:00Z" },
  { "0 0 13 * *", "UTC", "2026-04-10T00:00:00Z", "2026-04-13T00:00:00Z" },
  { "0 0 * * 5", "UTC", "2026-04-10T00:00:00Z", "2026-04-17T00:00:00Z" },
  { "0 0 13 * */7", "UTC", "2026-04-01T00:00:00Z", "2026-09-13T00:00:00Z" },
  { "0 0 13 * */7", "UTC", "2026-09-13T00:00:00Z", "2026-12-13T00:00:00Z" },
  /* the 31st skips 30-day months and February */
  { "0 0 31 * *", "UTC", "2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z" },
  { "0 0 31 * *", "UTC", "2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z" },
  /* February 29 */
  { "0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", "2028-02-29T00:00:00Z" },
  { "0 0 29 2 *", "UTC", "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z" },
  { "0 0 29 feb *", "UTC", "2027-12-31T00:00:00Z", "2028-02-29T00:00:00Z" },
  /* never */
  { "0 0 30 2 *", "UTC", "2026-01-01T00:00:00Z", NULL },
  { "0 0 31 4,6,9,11 *", "UTC", "2026-01-01T00:00:00Z", NULL },
  /* @ forms */
  { "@yearly", "UTC", "2026-06-15T10:00:00Z", "2027-01-01T00:00:00Z" },
  { "@annually", "UTC", "2026-06-15T10:00:00Z", "2027-01-01T00:00:00Z" },
  { "@monthly", "UTC", "2026-01-31T12:00:00Z", "2026-02-01T00:00:00Z" },
  { "@weekly", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z" },
  { "@daily", "UTC", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z" },
  { "@midnight", "UTC", "2026-01-01T23:59:59Z", "2026-01-02T00:00:00Z" },
  { "@hourly", "UTC", "2026-01-01T00:59:59Z", "2026-01-01T01:00:00Z" },
  /* a year boundary */
  { "59 23 31 12 *", "UTC", "2026-12-31T23:59:00Z", "2027-12-31T23:59:00Z" },
  { "0 0 1 1 *", "UTC", "2026-12-31T23:59:59.999999Z", "2027-01-01T00:00:00Z" },
  { "*/10 * * * *", "UTC", "2026-12-31T23:55:00Z", "2027-01-01T00:00:00Z" },
  /* a time zone without changes of offset */
  { "30 2 * * *", "Asia/Tokyo", "2026-03-29T00:00:00+09:00", "2026-03-29T02:30:00+09:00" },

  /* Berlin, 2026-03-29, 02:00 CET -> 03:00 CEST. A job at a fixed time in
   * the skipped hour runs right after the change, once. */
  { "30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00+01:00", "2026-03-29T03:00:00+02:00" },
  { "30 2 * * *", "Europe/Berlin", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00" },
  { "0 2 * * *", "Europe/Berlin", "2026-03-29T01:59:00+01:00", "2026-03-29T03:00:00+02:00" },
  { "0,30 2 * * *", "Europe/Berlin", "2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00" },
  { "30 3 * * *", "Europe/Berlin", "2026-03-29T01:00:00+01:00", "2026-03-29T03:30:00+02:00" },
  /* ... a job with a wildcard follows the new time: none in the gap */
  { "*/15 * * * *", "Europe/Berlin", "2026-03-29T01:45:00+01:00", "2026-03-29T03:00:00+02:00" },
  { "30 * * * *", "Europe/Berlin", "2026-03-29T01:30:00+01:00", "2026-03-29T03:30:00+02:00" },
  { "* 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00+01:00", "2026-03-30T02:00:00+02:00" },
  /* Berlin, 2026-10-25, 03:00 CEST -> 02:00 CET: 02:00-03:00 twice. A
   * fixed-time job runs at the first 02:30 only. */
  { "30 2 * * *", "Europe/Berlin", "2026-10-25T00:00:00+02:00", "2026-10-25T02:30:00+02:00" },
  { "30 2 * * *", "Europe/Berlin", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00" },
  { "30 2 * * *", "Europe/Berlin", "2026-10-25T02:10:00+01:00", "2026-10-26T02:30:00+01:00" },
  /* ... a wildcard job runs in both */
  { "*/15 * * * *", "Europe/Berlin", "2026-10-25T02:45:00+02:00", "2026-10-25T02:00:00+01:00" },
  { "*/15 * * * *", "Europe/Berlin", "2026-10-25T02:00:00+01:00", "2026-10-25T02:15:00+01:00" },
  { "30 * * * *", "Europe/Berlin", "2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00" },

  /* New York, 2026-03-08, 02:00 EST -> 03:00 EDT */
  { "30 2 * * *", "America/New_York", "2026-03-08T00:00:00-05:00", "2026-03-08T03:00:00-04:00" },
  { "30 2 * * *", "America/New_York", "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00" },
  { "*/15 * * * *", "America/New_York", "2026-03-08T01:45:00-05:00", "2026-03-08T03:00:00-04:00" },
  /* New York, 2026-11-01, 02:00 EDT -> 01:00 EST: 01:00-02:00 twice */
  { "30 1 * * *", "America/New_York", "2026-11-01T00:00:00-04:00", "2026-11-01T01:30:00-04:00" },
  { "30 1 * * *", "America/New_York", "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00" },
  { "30 2 * * *", "America/New_York", "2026-11-01T00:00:00-04:00", "2026-11-01T02:30:00-05:00" },
  { "*/30 * * * *", "America/New_York", "2026-11-01T01:30:00-04:00", "2026-11-01T01:00:00-05:00" },
  { "*/30 * * * *", "America/New_York", "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00" },
  { "*/30 * * * *", "America/New_York", "2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00" },

  /* Samoa skipped 2011-12-30 (-10:00 -> +14:00): a change of more than 3
   * hours is a correction, a fixed-time job in it is not run */
  { "30 12 * * *", "Pacific/Apia", "2011-12-29T13:00:00-10:00", "2011-12-31T12:30:00+14:00" },
  { "0 0 30 * *", "Pacific/Apia", "2011-12-29T13:00:00-10:00", "2012-01-30T00:00:00+14:00" },
};

typedef struct {
  const char *expression;
  const char *tz;
  const char *before;
  const char *prev;   /* NULL: none within the horizon */
} PrevCase;

static const PrevCase prev_cases[] = {
  { "* * * * *", "UTC", "2026-01-01T00:00:30Z", "2026-01-01T00:00:00Z" },
  { "5/15 * * * *", "UTC", "2026-01-01T01:04:59Z", "2026-01-01T00:50:00Z" },
  { "@yearly", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z" },
  { "@yearly", "UTC", "2025-12-31T23:59:59.999999Z", "2025-01-01T00:00:00Z" },
  { "0 0 31 * *", "UTC", "2026-05-30T00:00:00Z", "2026-03-31T00:00:00Z" },
  { "0 0 29 2 *", "UTC", "2026-06-01T00:00:00Z", "2024-02-29T00:00:00Z" },
  { "0 0 30 2 *", "UTC", "2026-06-01T00:00:00Z", NULL },
  { "0 0 13 * 5", "UTC", "2026-04-16T00:00:00Z", "2026-04-13T00:00:00Z" },
  { "0 0 */2 * 5", "UTC", "2026-04-16T00:00:00Z", "2026-04-03T00:00:00Z" },
  { "0 12 * * 7", "UTC", "2026-01-10T00:00:00Z", "2026-01-04T12:00:00Z" },
  { "*/10 * * * *", "UTC", "2027-01-01T00:09:59Z", "2027-01-01T00:00:00Z" },
  { "59 23 31 12 *", "UTC", "2027-01-01T00:00:00Z", "2026-12-31T23:59:00Z" },
  { "30 2 * * *", "Europe/Berlin", "2026-03-29T12:00:00+02:00", "2026-03-29T03:00:00+02:00" },
  { "30 2 * * *", "Europe/Berlin", "2026-10-25T12:00:00+01:00", "2026-10-25T02:30:00+02:00" },
  { "*/15 * * * *", "Europe/Berlin", "2026-03-29T03:10:00+02:00", "2026-03-29T03:00:00+02:00" },
  { "*/15 * * * *", "Europe/Berlin", "2026-03-29T02:59:59+02:00", "2026-03-29T01:45:00+01:00" },
  { "*/15 * * * *", "Europe/Berlin", "2026-10-25T02:10:00+01:00", "2026-10-25T02:00:00+01:00" },
  { "*/15 * * * *", "Europe/Berlin", "2026-10-25T01:59:59+01:00", "2026-10-25T02:45:00+02:00" },
  { "30 1 * * *", "America/New_York", "2026-11-01T12:00:00-05:00", "2026-11-01T01:30:00-04:00" },
  { "30 2 * * *", "America/New_York", "2026-03-08T12:00:00-04:00", "2026-03-08T03:00:00-04:00" },
  { "*/30 * * * *", "America/New_York", "2026-11-01T01:59:59-05:00", "2026-11-01T01:30:00-05:00" },
};

static void
test_next_table (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (next_cases); i++)
    {
      const NextCase *c = &next_cases[i];
      g_autoptr(GError) error = NULL;
      g_autoptr(HbCron) cron = hb_cron_parse (c->expression, &error);
      g_autoptr(GTimeZone) tz = g_time_zone_new_identifier (c->tz);
      g_autofree char *what = g_strdup_printf ("next(“%s”, %s, %s)", c->expression, c->tz, c->after);
      gint64 after = usec_of (c->after);
      gint64 expected = c->next != NULL ? usec_of (c->next) : 0;
      gint64 next, prev;

      g_assert_no_error (error);
      g_assert_nonnull (tz);
      next = hb_cron_next (cron, tz, after);
      assert_time (next, expected, tz, what);
      if (next == 0)
        continue;

      /* the same due times backwards: next is due, and nothing is due
       * between after (excluded) and next */
      assert_time (hb_cron_prev (cron, tz, next), next, tz, "prev(next)");
      prev = hb_cron_prev (cron, tz, next - 1);
      g_assert_cmpint (prev, <=, after);
      if (prev != 0)
        assert_time (hb_cron_next (cron, tz, prev), next, tz, "next(prev(next - 1))");
    }
}

static void
test_prev_table (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (prev_cases); i++)
    {
      const PrevCase *c = &prev_cases[i];
      g_autoptr(GError) error = NULL;
      g_autoptr(HbCron) cron = hb_cron_parse (c->expression, &error);
      g_autoptr(GTimeZone) tz = g_time_zone_new_identifier (c->tz);
      g_autofree char *what = g_strdup_printf ("prev(“%s”, %s, %s)", c->expression, c->tz, c->before);
      gint64 before = usec_of (c->before);
      gint64 expected = c->prev != NULL ? usec_of (c->prev) : 0;
      gint64 prev;

      g_assert_no_error (error);
      g_assert_nonnull (tz);
      prev = hb_cron_prev (cron, tz, before);
      assert_time (prev, expected, tz, what);
      if (prev == 0)
        continue;
      /* the next one after it is after before */
      g_assert_cmpint (hb_cron_next (cron, tz, prev), >, before);
    }
}

static void
test_horizon (void)
{
  g_autoptr(HbCron) cron = hb_cron_parse ("0 0 29 2 *", NULL);
  g_autoptr(GTimeZone) utc = g_time_zone_new_utc ();

  /* 2096-02-29, then 2104-02-29 (2100 is not a leap year): more than five
   * years apart */
  assert_time (hb_cron_next (cron, utc, usec_of ("2096-01-01T00:00:00Z")),
               usec_of ("2096-02-29T00:00:00Z"), utc, "2096");
  assert_time (hb_cron_next (cron, utc, usec_of ("2096-02-29T00:00:00Z")), 0, utc, "after 2096");
  assert_time (hb_cron_prev (cron, utc, usec_of ("2104-03-01T00:00:00Z")),
               usec_of ("2104-02-29T00:00:00Z"), utc, "2104");
  assert_time (hb_cron_prev (cron, utc, usec_of ("2104-02-28T00:00:00Z")), 0, utc, "before 2104");

  /* times far from now are not looked at */
  g_assert_cmpint (hb_cron_next (cron, utc, G_MAXINT64), ==, 0);
  g_assert_cmpint (hb_cron_next (cron, utc, G_MININT64), ==, 0);
  g_assert_cmpint (hb_cron_prev (cron, utc, G_MAXINT64), ==, 0);
  g_assert_cmpint (hb_cron_prev (cron, utc, G_MININT64), ==, 0);
}

typedef struct {
  const char *expression;
  const char *message;   /* a part of the message */
} ErrorCase;

static const ErrorCase error_cases[] = {
  { "", "is empty" },
  { "  \t ", "is empty" },
  { "* * * *", "has 5 fields (minute hour day-of-month month day-of-week), not 4" },
  { "0 * * * * *", "not 6 (seconds and years are not supported)" },
  { "60 * * * *", "minute field: 60 is out of range 0–59" },
  { "* 24 * * *", "hour field: 24 is out of range 0–23" },
  { "* * 0 * *", "day-of-month field: 0 is out of range 1–31" },
  { "* * 32 * *", "day-of-month field: 32 is out of range 1–31" },
  { "* * * 13 *", "month field: 13 is out of range 1–12" },
  { "* * * 0 *", "month field: 0 is out of range 1–12" },
  { "* * * * 8", "day-of-week field: 8 is out of range 0–7" },
  { "* * 1-99999999999 * *", "day-of-month field: 9999 is out of range 1–31" },
  { "5-1 * * * *", "minute field: range “5-1” is reversed" },
  { "0 0 * * fri-mon", "day-of-week field: range “fri-mon” is reversed" },
  { "*/0 * * * *", "minute field: “*/0”: step 0" },
  { "* 1-5/0 * * *", "hour field: “1-5/0”: step 0" },
  { "*/61 * * * *", "minute field: “*/61”: step 61 is larger than the range 0–59" },
  { "*/ * * * *", "minute field: “*/”: a step is a number" },
  { "1,,2 * * * *", "minute field: empty item" },
  { "1, * * * *", "minute field: empty item" },
  { "* * ,1 * *", "day-of-month field: empty item" },
  { "a * * * *", "minute field: “a” is not a number" },
  { "* * * foo *", "month field: “foo” is not a number or a month name (jan–dec)" },
  { "* * * * monday", "day-of-week field: “monday” is not a number or a day name (sun–sat)" },
  { "* * * * 1-fri2", "day-of-week field: “1-fri2”" },
  { "1-2-3 * * * *", "minute field: “1-2-3” is not an item" },
  { "*-5 * * * *", "minute field: “*-5” is not an item" },
  { "* * * jan *-1", "day-of-week field" },
  { "mon * * * *", "minute field: “mon” is not a number" },
  { "@reboot", "@reboot has no due time" },
  { "@REBOOT", "@reboot has no due time" },
  { "@fortnightly", "unknown form “@fortnightly”" },
  { "@daily 0", "unknown form" },
  { "0\n0 * * * *", "printable ASCII: byte 0x0a at offset 1" },
  { "0 0 * * * \xc3\xa9", "printable ASCII: byte 0xc3 at offset 10" },
};

static void
test_errors (void)
{
  g_autofree char *long_text = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (error_cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(HbCron) cron = hb_cron_parse (error_cases[i].expression, &error);

      g_assert_null (cron);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
      if (strstr (error->message, error_cases[i].message) == NULL)
        g_error ("“%s”: message “%s” does not say “%s”",
                 error_cases[i].expression, error->message, error_cases[i].message);
    }

  /* 256 bytes are accepted, 257 not */
  long_text = g_strnfill (HB_CRON_MAX_LENGTH, ' ');
  memcpy (long_text, "0 0 * * *", 9);
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(HbCron) cron = hb_cron_parse (long_text, &error);
    g_autofree char *longer = g_strconcat (long_text, " ", NULL);
    g_autoptr(HbCron) refused = NULL;

    g_assert_no_error (error);
    g_assert_nonnull (cron);
    refused = hb_cron_parse (longer, &error);
    g_assert_null (refused);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "at most 256 bytes"));
  }
}

static void
test_to_string (void)
{
  static const struct {
    const char *expression;
    const char *canonical;
  } cases[] = {
    { "@daily", "0 0 * * *" },
    { "@midnight", "0 0 * * *" },
    { "@hourly", "0 * * * *" },
    { "@weekly", "0 0 * * 0" },
    { "@monthly", "0 0 1 * *" },
    { "@YEARLY", "0 0 1 1 *" },
    { "  0   0\t* * *  ", "0 0 * * *" },
    { "05 00 01 01 *", "5 0 1 1 *" },
    { "0 12 * JAN,mar-MAY sun,7", "0 12 * 1,3-5 0" },
    { "5/15 */1 1-31/2 * 1-5", "5/15 * 1/2 * 1-5" },
    { "0-59/15 0-23/1 1-30/2 * 1-7", "0/15 0/1 1-29/2 * 1-7" },
    { "30,10,20,10 * * * *", "10,20,30 * * * *" },
    { "0 0 1,*/2 * *", "0 0 1,*/2 * *" },
    { "0 0 */2,1 * *", "0 0 */2,1 * *" },
    { "7-7 5-5 3-3/4 jan-jan/5 7", "7 5 3 1 0" },
    { "0 0 * * 0-7", "0 0 * * 0-7" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(HbCron) cron = hb_cron_parse (cases[i].expression, &error);
      g_autofree char *text = NULL;
      g_autoptr(HbCron) again = NULL;
      g_autofree char *text_again = NULL;

      g_assert_no_error (error);
      text = hb_cron_to_string (cron);
      g_assert_cmpstr (text, ==, cases[i].canonical);
      again = hb_cron_parse (text, &error);
      g_assert_no_error (error);
      text_again = hb_cron_to_string (again);
      g_assert_cmpstr (text_again, ==, text);
    }
}

/* ---- random expressions against the test's own reading of them ---- */

typedef struct {
  int      min;
  int      max;
} Range;

static const Range ranges[5] = { { 0, 59 }, { 0, 23 }, { 1, 31 }, { 1, 12 }, { 0, 7 } };
static const char *const months[] = { "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec" };
static const char *const days[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };

typedef struct {
  guint64  bits[5];
  gboolean star[5];
} Model;

static void
append_value (GString *s,
              GRand   *rand,
              guint    field,
              int      v)
{
  if (field == 3 && g_rand_int_range (rand, 0, 3) == 0)
    g_string_append (s, months[v - 1]);
  else if (field == 4 && v < 7 && g_rand_int_range (rand, 0, 3) == 0)
    g_string_append (s, days[v]);
  else
    g_string_append_printf (s, "%d", v);
}

static char *
random_expression (GRand *rand,
                   Model *model)
{
  GString *s = g_string_new (NULL);

  memset (model, 0, sizeof *model);
  for (guint f = 0; f < 5; f++)
    {
      int n = g_rand_int_range (rand, 1, 4);
      int min = ranges[f].min, max = ranges[f].max;

      if (f > 0)
        g_string_append_c (s, ' ');
      for (int i = 0; i < n; i++)
        {
          int kind = g_rand_int_range (rand, 0, 6);
          int lo, hi, step = 1;

          if (i > 0)
            g_string_append_c (s, ',');
          /* mostly single values and short lists, so that days are rare */
          if (f >= 2 && i == 0 && g_rand_int_range (rand, 0, 2) == 0)
            kind = 0;
          switch (kind)
            {
            case 0: /* * */
            case 1: /* *\/S */
              lo = min;
              hi = max;
              if (kind == 1)
                {
                  step = g_rand_int_range (rand, 1, max - min + 2);
                  g_string_append_printf (s, "*/%d", step);
                }
              else
                g_string_append_c (s, '*');
              if (i == 0)
                model->star[f] = TRUE;
              break;
            case 2: /* N */
              lo = hi = g_rand_int_range (rand, min, max + 1);
              append_value (s, rand, f, lo);
              break;
            case 3: /* N-M */
            case 4: /* N-M/S */
              lo = g_rand_int_range (rand, min, max + 1);
              hi = g_rand_int_range (rand, lo, max + 1);
              append_value (s, rand, f, lo);
              g_string_append_c (s, '-');
              append_value (s, rand, f, hi);
              if (kind == 4)
                {
                  step = g_rand_int_range (rand, 1, max - min + 2);
                  g_string_append_printf (s, "/%d", step);
                }
              break;
            default: /* N/S, N-max/S */
              lo = g_rand_int_range (rand, min, max + 1);
              hi = max;
              step = g_rand_int_range (rand, 1, max - min + 2);
              append_value (s, rand, f, lo);
              g_string_append_printf (s, "/%d", step);
              break;
            }
          for (int v = lo; v <= hi; v += step)
            model->bits[f] |= G_GUINT64_CONSTANT (1) << (f == 4 ? v % 7 : v);
        }
    }
  return g_string_free (s, FALSE);
}

static gboolean
model_matches (const Model *m,
               GDateTime   *local)
{
  int dom = g_date_time_get_day_of_month (local);
  int dow = g_date_time_get_day_of_week (local) % 7;
  gboolean dom_ok = (m->bits[2] >> dom) & 1;
  gboolean dow_ok = (m->bits[4] >> dow) & 1;
  gboolean day_ok = (m->star[2] || m->star[4]) ? (dom_ok && dow_ok) : (dom_ok || dow_ok);

  return ((m->bits[0] >> g_date_time_get_minute (local)) & 1) &&
         ((m->bits[1] >> g_date_time_get_hour (local)) & 1) &&
         ((m->bits[3] >> g_date_time_get_month (local)) & 1) &&
         day_ok;
}

static GDateTime *
local_at (GTimeZone *tz,
          gint64     sec)
{
  g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc (sec);

  return g_date_time_to_timezone (utc, tz);
}

/* Is the instant @sec due, by the test's own reading of cron(8): each
 * minute whose local time matches, except the second pass of a repeated
 * local time for a fixed-time job; and, for a fixed-time job, the instant
 * the clock jumps forwards over a matching local time. Changes are of
 * one hour in the zones used here. */
static gboolean
model_due (const Model *m,
           GTimeZone   *tz,
           gint64       sec)
{
  gboolean fixed = !m->star[0] && !m->star[1];
  g_autoptr(GDateTime) now = local_at (tz, sec);
  g_autoptr(GDateTime) hour_ago = local_at (tz, sec - 3600);
  g_autoptr(GDateTime) second_ago = local_at (tz, sec - 1);
  gint64 offset = g_date_time_get_utc_offset (now) / G_USEC_PER_SEC;
  gint64 offset_before = g_date_time_get_utc_offset (second_ago) / G_USEC_PER_SEC;

  if (model_matches (m, now))
    {
      if (!fixed)
        return TRUE;
      /* the same local time an hour ago: this is its second pass */
      if (g_date_time_get_hour (hour_ago) == g_date_time_get_hour (now) &&
          g_date_time_get_minute (hour_ago) == g_date_time_get_minute (now) &&
          g_date_time_get_day_of_month (hour_ago) == g_date_time_get_day_of_month (now))
        return FALSE;
      return TRUE;
    }
  if (fixed && offset > offset_before)
    {
      /* the local times skipped, as they would have been read before */
      for (gint64 s = sec; s < sec + (offset - offset_before); s += 60)
        {
          g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc (s + offset_before);

          if (model_matches (m, utc))
            return TRUE;
        }
    }
  return FALSE;
}

static void
test_invariants (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (20261207);
  /* the first day after each start is checked minute by minute */
  static const struct {
    const char *zone;
    const char *start;
  } runs[] = {
    { "UTC", "2026-12-31T12:00:00Z" },
    { "Europe/Berlin", "2026-03-28T22:00:00Z" },
    { "Europe/Berlin", "2026-10-24T22:00:00Z" },
    { "Europe/Berlin", "2026-12-31T12:00:00Z" },
    { "America/New_York", "2026-03-08T00:00:00Z" },
    { "America/New_York", "2026-11-01T00:00:00Z" },
  };
  GTimeZone *zones[G_N_ELEMENTS (runs)];
  guint compared = 0;

  for (guint r = 0; r < G_N_ELEMENTS (runs); r++)
    {
      zones[r] = g_time_zone_new_identifier (runs[r].zone);
      g_assert_nonnull (zones[r]);
    }
  for (guint e = 0; e < 150; e++)
    {
      Model model;
      g_autofree char *expression = random_expression (rand, &model);
      g_autoptr(GError) error = NULL;
      g_autoptr(HbCron) cron = hb_cron_parse (expression, &error);
      g_autofree char *text = NULL;
      g_autoptr(HbCron) again = NULL;
      g_autofree char *text_again = NULL;

      g_assert_no_error (error);
      text = hb_cron_to_string (cron);
      g_assert_cmpuint (strlen (text), <=, strlen (expression));
      again = hb_cron_parse (text, &error);
      g_assert_no_error (error);
      text_again = hb_cron_to_string (again);
      g_assert_cmpstr (text_again, ==, text);

      for (guint z = 0; z < G_N_ELEMENTS (runs); z++)
        {
          gint64 start = usec_of (runs[z].start);
          gint64 t = start;
          gint64 window_end = start + G_GINT64_CONSTANT (24) * 3600 * G_USEC_PER_SEC;
          gint64 brute = start / G_USEC_PER_SEC;

          for (guint i = 0; i < 48; i++)
            {
              gint64 next = hb_cron_next (again, zones[z], t);

              if (next == 0)
                {
                  /* then none in the first day either */
                  for (brute = (brute / 60 + 1) * 60; brute * G_USEC_PER_SEC < window_end; brute += 60)
                    g_assert_false (model_due (&model, zones[z], brute));
                  break;
                }
              g_assert_cmpint (next, >, t);
              g_assert_cmpint (next % G_USEC_PER_SEC, ==, 0);
              if (!model_due (&model, zones[z], next / G_USEC_PER_SEC))
                g_error ("“%s” in %s: %" G_GINT64_FORMAT " is not due",
                         expression, runs[z].zone, next);
              assert_time (hb_cron_prev (again, zones[z], next), next, zones[z], expression);
              assert_time (hb_cron_prev (again, zones[z], next - 1), i == 0 ? hb_cron_prev (again, zones[z], start) : t,
                           zones[z], expression);

              /* nothing due between, by the model, minute by minute, in
               * the first day */
              for (brute = (brute / 60 + 1) * 60; brute * G_USEC_PER_SEC < MIN (next, window_end); brute += 60)
                if (model_due (&model, zones[z], brute))
                  g_error ("“%s” in %s: %" G_GINT64_FORMAT " is due before %" G_GINT64_FORMAT,
                           expression, runs[z].zone, brute, next / G_USEC_PER_SEC);
              brute = next / G_USEC_PER_SEC;
              compared++;
              t = next;
              if (next >= window_end)
                break;
            }
        }
    }
  g_test_message ("%u due times checked against the model", compared);
  g_assert_cmpuint (compared, >, 1000);
  for (guint r = 0; r < G_N_ELEMENTS (runs); r++)
    g_time_zone_unref (zones[r]);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/cron/next", test_next_table);
  g_test_add_func ("/cron/prev", test_prev_table);
  g_test_add_func ("/cron/horizon", test_horizon);
  g_test_add_func ("/cron/errors", test_errors);
  g_test_add_func ("/cron/to-string", test_to_string);
  g_test_add_func ("/cron/invariants", test_invariants);

  return g_test_run ();
}
