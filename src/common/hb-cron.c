/* hb-cron.c: cron expressions and when they are due
 *
 * An expression is what a crontab line has before its command, as
 * crontab(5) of Vixie cron (Debian's cron, cronie) reads it: five fields
 * (minute, hour, day of month, month, day of week), each a list of items
 * `*`, `N` or `N-M`, optionally followed by a step `/S` (`N/S` is
 * `N-max/S`, as cronie reads it); month names jan–dec and day names
 * sun–sat in any case; 0 and 7 both Sunday; `@yearly`, `@annually`,
 * `@monthly`, `@weekly`, `@daily`, `@midnight` and `@hourly`.
 *
 * The day rule is Vixie cron's: a field is "starred" when it begins with
 * `*` (so `*` and `*\/2` are, `1,*` is not). If the day-of-month or the
 * day-of-week field is starred, a day is due when both fields match; if
 * neither is, a day is due when either matches ("0 0 13 * 5" is every 13th
 * and every Friday; "0 0 *\/2 * 5" is every odd day that is a Friday).
 *
 * Daylight saving time, as Debian's cron(8) documents it:
 *
 *   Special considerations exist when the clock is changed by less than 3
 *   hours, for example at the beginning and end of daylight savings time.
 *   If the time has moved forwards, those jobs which would have run in the
 *   time that was skipped will be run soon after the change. Conversely,
 *   if the time has moved backwards by less than 3 hours, those jobs that
 *   fall into the repeated time will not be re-run.
 *
 *   Only jobs that run at a particular time (not specified as @hourly, nor
 *   with '*' in the hour or minute specifier) are affected. Jobs which are
 *   specified with wildcards are run based on the new time immediately.
 *
 *   Clock changes of more than 3 hours are considered to be corrections to
 *   the clock, and the new time is used immediately.
 *
 * Here: a job is "at a fixed time" when neither its minute nor its hour
 * field is starred (Vixie cron's MIN_STAR and HR_STAR; @hourly is
 * "0 * * * *"; as there, only the first character counts: a minute field
 * "5,*\/10" or "0-59" is not starred). For such a job, a local time that
 * a change of offset of less than 3 hours skips is due at the instant of
 * the change (02:30 on the night the clock goes 02:00 → 03:00 is due at
 * 03:00, new time), and a local time that such a change repeats is due
 * once, at its first occurrence. A job with a starred minute or hour
 * field, or any change of 3 hours or more, follows the local clock: no due
 * time in a skipped interval, each occurrence in a repeated one.
 *
 * The search skips by fields (the next matching month, then day, hour and
 * minute) in local calendar time, and maps each matching local time to
 * instants with the time zone's intervals (GTimeZone); it looks at most
 * HB_CRON_HORIZON_USEC ahead (or back) and its loops are bounded.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-cron.h"

#include <string.h>

enum {
  FIELD_MINUTE,
  FIELD_HOUR,
  FIELD_DOM,
  FIELD_MONTH,
  FIELD_DOW,
  N_FIELDS
};

/* at most one item per two bytes of the longest expression */
#define MAX_ITEMS (HB_CRON_MAX_LENGTH / 2 + 1)

/* A change of offset this large or larger is a correction (cron(8)). */
#define SHIFT_LIMIT (3 * 3600)

/* Offsets differ from a local time by less than this (real ones are
 * within -16 h and +16 h, local mean times included). */
#define OFFSET_WINDOW (G_GINT64_CONSTANT (48) * 3600)

#define HORIZON_SEC (HB_CRON_HORIZON_USEC / G_USEC_PER_SEC)

/* Instants outside of years 1..9000 are not looked at. */
#define MIN_SEC (G_GINT64_CONSTANT (-62135596800) + 2 * HORIZON_SEC)
#define MAX_SEC (G_GINT64_CONSTANT (221845392000) - 2 * HORIZON_SEC)

typedef struct {
  guint8   lo;
  guint8   last;    /* the last value of the item, lo when single */
  guint8   step;    /* 1 when single */
  gboolean star;
} CronItem;

typedef struct {
  guint64  bits;    /* bit v: value v matches (day of week folded to 0-6) */
  gboolean star;    /* the field begins with '*' */
  guint    n_items;
  CronItem items[MAX_ITEMS];
} CronField;

struct _HbCron {
  CronField fields[N_FIELDS];
};

typedef struct {
  const char        *name;
  guint              min;
  guint              max;
  const char *const *names;   /* NULL-terminated, names[i] is value i + name_base */
  guint              name_base;
} FieldSpec;

static const char *const month_names[] = {
  "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec", NULL
};
static const char *const day_names[] = {
  "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL
};

static const FieldSpec field_specs[N_FIELDS] = {
  { "minute", 0, 59, NULL, 0 },
  { "hour", 0, 23, NULL, 0 },
  { "day-of-month", 1, 31, NULL, 0 },
  { "month", 1, 12, month_names, 1 },
  { "day-of-week", 0, 7, day_names, 0 },
};

static const struct {
  const char *name;
  const char *fields;
} at_forms[] = {
  { "@yearly", "0 0 1 1 *" },
  { "@annually", "0 0 1 1 *" },
  { "@monthly", "0 0 1 * *" },
  { "@weekly", "0 0 * * 0" },
  { "@daily", "0 0 * * *" },
  { "@midnight", "0 0 * * *" },
  { "@hourly", "0 * * * *" },
};

static gboolean G_GNUC_PRINTF (3, 4)
field_error (GError    **error,
             guint       field,
             const char *format,
             ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
               "%s field: %s", field_specs[field].name, message);
  return FALSE;
}

static guint
item_last (guint lo,
           guint hi,
           guint step)
{
  return lo + ((hi - lo) / step) * step;
}

/* A number or (in month and day-of-week) a name, from *p up to a '-',
 * '/' or ',' or the end of the item; G_MAXUINT when neither. */
static guint
parse_value (const FieldSpec *spec,
             const char     **p,
             const char      *end)
{
  const char *s = *p;
  guint value = 0;

  if (s < end && g_ascii_isdigit (*s))
    {
      while (s < end && g_ascii_isdigit (*s))
        {
          value = value * 10 + (guint) (*s - '0');
          if (value > 9999)
            value = 9999; /* out of range anyway, and no overflow */
          s++;
        }
      *p = s;
      return value;
    }
  if (spec->names != NULL && end - s >= 3)
    {
      for (guint i = 0; spec->names[i] != NULL; i++)
        if (g_ascii_strncasecmp (s, spec->names[i], 3) == 0 &&
            (end - s == 3 || s[3] == '-' || s[3] == '/'))
          {
            *p = s + 3;
            return i + spec->name_base;
          }
    }
  return G_MAXUINT;
}

static gboolean
parse_item (guint       field,
            const char *item,
            const char *end,
            CronItem   *out,
            GError    **error)
{
  const FieldSpec *spec = &field_specs[field];
  g_autofree char *text = g_strndup (item, (gsize) (end - item));
  const char *p = item;
  guint lo, hi, step = 1;
  gboolean star = FALSE;
  gboolean open = FALSE;

  if (p == end)
    return field_error (error, field, "empty item");
  if (*p == '*')
    {
      star = TRUE;
      lo = spec->min;
      hi = field == FIELD_DOW ? 6 : spec->max;
      p++;
    }
  else
    {
      lo = parse_value (spec, &p, end);
      if (lo == G_MAXUINT)
        return field_error (error, field, "“%s” is not a number%s", text,
                            spec->names == NULL ? "" :
                            field == FIELD_MONTH ? " or a month name (jan–dec)" :
                            " or a day name (sun–sat)");
      if (lo < spec->min || lo > spec->max)
        return field_error (error, field, "%u is out of range %u–%u", lo, spec->min, spec->max);
      hi = lo;
      if (p < end && *p == '-')
        {
          p++;
          hi = parse_value (spec, &p, end);
          if (hi == G_MAXUINT)
            return field_error (error, field, "“%s”: the end of the range is not a value", text);
          if (hi < spec->min || hi > spec->max)
            return field_error (error, field, "%u is out of range %u–%u", hi, spec->min, spec->max);
          if (hi < lo)
            return field_error (error, field, "range “%s” is reversed", text);
        }
      else
        open = TRUE;
    }
  if (p < end && *p == '/')
    {
      const char *digits = ++p;

      step = 0;
      while (p < end && g_ascii_isdigit (*p))
        {
          step = MIN (step * 10 + (guint) (*p - '0'), 9999);
          p++;
        }
      if (p == digits || p != end)
        return field_error (error, field, "“%s”: a step is a number", text);
      if (step == 0)
        return field_error (error, field, "“%s”: step 0", text);
      if (step > spec->max - spec->min + 1)
        return field_error (error, field, "“%s”: step %u is larger than the range %u–%u",
                            text, step, spec->min, spec->max);
      if (open)
        hi = spec->max;  /* N/S is N-max/S */
    }
  if (p != end)
    return field_error (error, field, "“%s” is not an item (*, N, N-M, each with an optional /STEP)", text);

  out->star = star;
  if (star)
    {
      out->lo = (guint8) lo;
      out->last = (guint8) item_last (lo, hi, step);
      out->step = (guint8) step;
      return TRUE;
    }
  hi = item_last (lo, hi, step);
  if (hi == lo)
    step = 1;
  if (field == FIELD_DOW && lo == 7 && hi == 7)
    lo = hi = 0;
  out->lo = (guint8) lo;
  out->last = (guint8) hi;
  out->step = (guint8) step;
  return TRUE;
}

static int
compare_items (gconstpointer a,
               gconstpointer b,
               gpointer      user_data)
{
  const CronItem *x = a;
  const CronItem *y = b;
  gboolean stars_first = GPOINTER_TO_INT (user_data);

  if (x->star != y->star)
    return (x->star == stars_first) ? -1 : 1;
  if (x->lo != y->lo)
    return x->lo < y->lo ? -1 : 1;
  if (x->last != y->last)
    return x->last < y->last ? -1 : 1;
  if (x->step != y->step)
    return x->step < y->step ? -1 : 1;
  return 0;
}

static gboolean
parse_field (guint       field,
             const char *start,
             const char *end,
             CronField  *out,
             GError    **error)
{
  const char *p = start;
  guint n = 0;

  out->star = (*start == '*');
  out->bits = 0;
  for (;;)
    {
      const char *comma = memchr (p, ',', (gsize) (end - p));
      const char *item_end = comma != NULL ? comma : end;
      CronItem item;

      if (!parse_item (field, p, item_end, &item, error))
        return FALSE;
      g_assert (n < MAX_ITEMS);
      out->items[n++] = item;
      for (guint v = item.lo; v <= item.last; v += item.step)
        out->bits |= G_GUINT64_CONSTANT (1) << (field == FIELD_DOW ? v % 7 : v);
      if (comma == NULL)
        break;
      p = comma + 1;
    }

  /* the canonical order: the starred items first if the field begins
   * with one, last otherwise, so that it still does (or does not) */
  for (guint i = 1; i < n; i++)
    for (guint j = i; j > 0 && compare_items (&out->items[j - 1], &out->items[j],
                                               GINT_TO_POINTER (out->star)) > 0; j--)
      {
        CronItem swap = out->items[j];

        out->items[j] = out->items[j - 1];
        out->items[j - 1] = swap;
      }
  out->n_items = 0;
  for (guint i = 0; i < n; i++)
    if (out->n_items == 0 ||
        compare_items (&out->items[out->n_items - 1], &out->items[i], GINT_TO_POINTER (out->star)) != 0)
      out->items[out->n_items++] = out->items[i];
  return TRUE;
}

static gboolean
parse_fields (HbCron     *cron,
              const char *text,
              GError    **error)
{
  const char *starts[N_FIELDS];
  const char *ends[N_FIELDS];
  const char *p = text;
  guint n = 0;

  for (;;)
    {
      const char *start;

      while (*p == ' ' || *p == '\t')
        p++;
      if (*p == '\0')
        break;
      start = p;
      while (*p != '\0' && *p != ' ' && *p != '\t')
        p++;
      if (n < N_FIELDS)
        {
          starts[n] = start;
          ends[n] = p;
        }
      n++;
    }
  if (n != N_FIELDS)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "a cron expression has 5 fields (minute hour day-of-month month day-of-week), not %u%s",
                   n, n > N_FIELDS ? " (seconds and years are not supported)" : "");
      return FALSE;
    }
  for (guint i = 0; i < N_FIELDS; i++)
    if (!parse_field (i, starts[i], ends[i], &cron->fields[i], error))
      return FALSE;
  return TRUE;
}

/**
 * hb_cron_parse:
 * @expression: a cron expression: five fields or an `@` form
 * @error: return location for a #GError, or %NULL
 *
 * Reads @expression as crontab(5) does (see the top of hb-cron.c).
 * Refused, with %G_IO_ERROR_INVALID_ARGUMENT and a message naming the
 * field: more than %HB_CRON_MAX_LENGTH bytes, bytes other than printable
 * ASCII, spaces and tabs, other than five fields (six-field forms with
 * seconds), values out of range, reversed ranges, step 0 or larger than
 * the field's range, empty items, `@reboot` (it has no due time) and
 * unknown `@` forms.
 *
 * Returns: (transfer full) (nullable): the expression, or %NULL with
 *   @error set
 */
HbCron *
hb_cron_parse (const char *expression,
               GError    **error)
{
  g_autoptr(HbCron) cron = NULL;
  g_autofree char *text = NULL;
  gsize length;

  g_return_val_if_fail (expression != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  length = strnlen (expression, HB_CRON_MAX_LENGTH + 1);
  if (length > HB_CRON_MAX_LENGTH)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "a cron expression is at most %u bytes long", HB_CRON_MAX_LENGTH);
      return NULL;
    }
  for (gsize i = 0; i < length; i++)
    {
      guchar c = (guchar) expression[i];

      if (c != ' ' && c != '\t' && (c < 0x21 || c > 0x7e))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "a cron expression is printable ASCII: byte 0x%02x at offset %" G_GSIZE_FORMAT,
                       c, i);
          return NULL;
        }
    }
  text = g_strstrip (g_strdup (expression));
  if (*text == '\0')
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "a cron expression is empty");
      return NULL;
    }

  cron = g_new0 (HbCron, 1);
  if (*text == '@')
    {
      if (g_ascii_strcasecmp (text, "@reboot") == 0)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                               "@reboot has no due time; give a time-based schedule");
          return NULL;
        }
      for (guint i = 0; i < G_N_ELEMENTS (at_forms); i++)
        if (g_ascii_strcasecmp (text, at_forms[i].name) == 0)
          {
            if (!parse_fields (cron, at_forms[i].fields, error))
              g_assert_not_reached ();
            return g_steal_pointer (&cron);
          }
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "unknown form “%s”: expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly",
                   text);
      return NULL;
    }
  if (!parse_fields (cron, text, error))
    return NULL;
  return g_steal_pointer (&cron);
}

/**
 * hb_cron_free:
 * @cron: (nullable): an expression
 */
void
hb_cron_free (HbCron *cron)
{
  g_free (cron);
}

static void
append_item (GString        *out,
             guint           field,
             const CronItem *item)
{
  guint max = field_specs[field].max;
  char ranged[32];
  char open[32];

  if (item->star)
    {
      if (item->step == 1)
        g_string_append_c (out, '*');
      else
        g_string_append_printf (out, "*/%u", item->step);
      return;
    }
  if (item->lo == item->last)
    {
      g_string_append_printf (out, "%u", item->lo);
      return;
    }
  /* the shorter of N-M/S (or N-M) and N/S, which is N-max/S */
  if (item->step == 1)
    g_snprintf (ranged, sizeof ranged, "%u-%u", item->lo, item->last);
  else
    g_snprintf (ranged, sizeof ranged, "%u-%u/%u", item->lo, item->last, item->step);
  g_snprintf (open, sizeof open, "%u/%u", item->lo, item->step);
  if (item_last (item->lo, max, item->step) == item->last && strlen (open) < strlen (ranged))
    g_string_append (out, open);
  else
    g_string_append (out, ranged);
}

/**
 * hb_cron_to_string:
 * @cron: an expression
 *
 * The canonical form of @cron, for logs: five fields separated by one
 * space, numbers for names, 0 for Sunday, each field's items normalized
 * (`N-M/S` ends on its last value or is written `N/S` when shorter),
 * sorted and without duplicates, a field that began with `*` still does
 * and one that did not still does not; `@` forms are written as their
 * five fields (`@daily` is "0 0 * * *"). It is never longer than the
 * expression it was parsed from (or 9 bytes for an `@` form), and
 * hb_cron_parse() reads it back to the same expression.
 *
 * Returns: (transfer full): the canonical form
 */
char *
hb_cron_to_string (const HbCron *cron)
{
  GString *out;

  g_return_val_if_fail (cron != NULL, NULL);

  out = g_string_new (NULL);
  for (guint f = 0; f < N_FIELDS; f++)
    {
      if (f > 0)
        g_string_append_c (out, ' ');
      for (guint i = 0; i < cron->fields[f].n_items; i++)
        {
          if (i > 0)
            g_string_append_c (out, ',');
          append_item (out, f, &cron->fields[f].items[i]);
        }
    }
  return g_string_free (out, FALSE);
}

/* ---- calendar arithmetic, proleptic Gregorian, no time zone ---- */

typedef struct {
  gint64 year;
  gint   month;   /* 1-12 */
  gint   day;     /* 1-31; may run past the month while searching */
  gint   hour;    /* 0-23; may be 24 or -1 while searching */
  gint   minute;  /* 0-59; may be 60 or -1 while searching */
} Civil;

static gint64
floor_div (gint64 a,
           gint64 b)
{
  gint64 q = a / b;

  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* days since 1970-01-01 (H. Hinnant's days_from_civil) */
static gint64
days_from_civil (gint64 y,
                 gint   m,
                 gint   d)
{
  gint64 era, yoe, doy, doe;

  y -= m <= 2;
  era = floor_div (y, 400);
  yoe = y - era * 400;
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static Civil
civil_from_seconds (gint64 sec)
{
  gint64 days = floor_div (sec, 86400);
  gint64 rest = sec - days * 86400;
  gint64 z = days + 719468;
  gint64 era = floor_div (z, 146097);
  gint64 doe = z - era * 146097;
  gint64 yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  gint64 doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  gint64 mp = (5 * doy + 2) / 153;
  Civil c;

  c.day = (gint) (doy - (153 * mp + 2) / 5 + 1);
  c.month = (gint) (mp < 10 ? mp + 3 : mp - 9);
  c.year = yoe + era * 400 + (c.month <= 2);
  c.hour = (gint) (rest / 3600);
  c.minute = (gint) (rest % 3600 / 60);
  return c;
}

static gint64
civil_to_seconds (const Civil *c)
{
  return days_from_civil (c->year, c->month, c->day) * 86400 + c->hour * 3600 + c->minute * 60;
}

static gint
days_in_month (gint64 year,
               gint   month)
{
  static const gint days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
  gboolean leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

  return month == 2 && leap ? 29 : days[month - 1];
}

static gboolean
has (const CronField *field,
     gint             value)
{
  return value >= 0 && value < 64 && (field->bits >> value) & 1;
}

/* the first value >= from in the field, or -1 */
static gint
next_bit (const CronField *field,
          gint             from)
{
  for (gint v = MAX (from, 0); v < 64; v++)
    if (has (field, v))
      return v;
  return -1;
}

/* the last value <= from in the field, or -1 */
static gint
prev_bit (const CronField *field,
          gint             from)
{
  for (gint v = MIN (from, 63); v >= 0; v--)
    if (has (field, v))
      return v;
  return -1;
}

static gboolean
day_matches (const HbCron *cron,
             const Civil  *c)
{
  const CronField *dom = &cron->fields[FIELD_DOM];
  const CronField *dow = &cron->fields[FIELD_DOW];
  /* 1970-01-01 was a Thursday */
  gint weekday = (gint) ((days_from_civil (c->year, c->month, c->day) % 7 + 7 + 4) % 7);
  gboolean dom_ok = has (dom, c->day);
  gboolean dow_ok = has (dow, weekday);

  if (dom->star || dow->star)
    return dom_ok && dow_ok;
  return dom_ok || dow_ok;
}

/* Moves @c to the first matching local time at or after it, in years up
 * to @max_year. The loop does at most a few steps per day. */
static gboolean
civil_next_match (const HbCron *cron,
                  Civil        *c,
                  gint64        max_year)
{
  const CronField *months = &cron->fields[FIELD_MONTH];
  const CronField *hours = &cron->fields[FIELD_HOUR];
  const CronField *minutes = &cron->fields[FIELD_MINUTE];

  for (guint i = 0; i < 100000; i++)
    {
      gint v;

      if (c->year > max_year)
        return FALSE;
      if (!has (months, c->month))
        {
          v = next_bit (months, c->month);
          if (v < 0)
            {
              c->year++;
              v = next_bit (months, 1);
            }
          c->month = v;
          c->day = 1;
          c->hour = 0;
          c->minute = 0;
          continue;
        }
      if (c->day > days_in_month (c->year, c->month))
        {
          if (++c->month > 12)
            {
              c->month = 1;
              c->year++;
            }
          c->day = 1;
          c->hour = 0;
          c->minute = 0;
          continue;
        }
      if (!day_matches (cron, c))
        {
          c->day++;
          c->hour = 0;
          c->minute = 0;
          continue;
        }
      if (!has (hours, c->hour))
        {
          v = next_bit (hours, c->hour);
          if (v < 0 || v > 23)
            {
              c->day++;
              c->hour = 0;
            }
          else
            c->hour = v;
          c->minute = 0;
          continue;
        }
      if (!has (minutes, c->minute))
        {
          v = next_bit (minutes, c->minute);
          if (v < 0 || v > 59)
            {
              c->hour++;
              c->minute = 0;
            }
          else
            c->minute = v;
          continue;
        }
      return TRUE;
    }
  return FALSE;
}

/* Moves @c to the last matching local time at or before it, in years
 * from @min_year. */
static gboolean
civil_prev_match (const HbCron *cron,
                  Civil        *c,
                  gint64        min_year)
{
  const CronField *months = &cron->fields[FIELD_MONTH];
  const CronField *hours = &cron->fields[FIELD_HOUR];
  const CronField *minutes = &cron->fields[FIELD_MINUTE];

  for (guint i = 0; i < 100000; i++)
    {
      gint v;

      if (c->year < min_year)
        return FALSE;
      if (!has (months, c->month))
        {
          v = prev_bit (months, c->month);
          if (v < 1)
            {
              c->year--;
              v = prev_bit (months, 12);
            }
          c->month = v;
          c->day = days_in_month (c->year, c->month);
          c->hour = 23;
          c->minute = 59;
          continue;
        }
      if (c->day < 1)
        {
          if (--c->month < 1)
            {
              c->month = 12;
              c->year--;
            }
          c->day = days_in_month (c->year, c->month);
          c->hour = 23;
          c->minute = 59;
          continue;
        }
      if (!day_matches (cron, c))
        {
          c->day--;
          c->hour = 23;
          c->minute = 59;
          continue;
        }
      if (!has (hours, c->hour))
        {
          v = prev_bit (hours, MIN (c->hour, 23));
          if (v < 0)
            {
              c->day--;
              c->hour = 23;
            }
          else
            c->hour = v;
          c->minute = 59;
          continue;
        }
      if (!has (minutes, c->minute))
        {
          v = prev_bit (minutes, MIN (c->minute, 59));
          if (v < 0)
            {
              if (--c->hour < 0)
                {
                  c->day--;
                  c->hour = 23;
                }
              c->minute = 59;
            }
          else
            c->minute = v;
          continue;
        }
      return TRUE;
    }
  return FALSE;
}

/* ---- local times to instants ---- */

static gint
interval_at (GTimeZone *tz,
             gint64     sec)
{
  return g_time_zone_find_interval (tz, G_TIME_TYPE_UNIVERSAL, sec);
}

/* The smallest and largest offsets of the intervals between @from and @to. */
static void
offset_range (GTimeZone *tz,
              gint64     from,
              gint64     to,
              gint64    *min,
              gint64    *max)
{
  gint first = interval_at (tz, from);
  gint last = interval_at (tz, to);

  *min = *max = g_time_zone_get_offset (tz, first);
  for (gint k = first + 1; k <= last; k++)
    {
      gint64 o = g_time_zone_get_offset (tz, k);

      *min = MIN (*min, o);
      *max = MAX (*max, o);
    }
}

static gboolean
fixed_time (const HbCron *cron)
{
  return !cron->fields[FIELD_MINUTE].star && !cron->fields[FIELD_HOUR].star;
}

/* The instants (seconds, ascending) at which the matching local time @c
 * (seconds, as if UTC) is due, following cron(8) on changes of offset;
 * at most 4. */
static guint
civil_instants (const HbCron *cron,
                GTimeZone    *tz,
                gint64        c,
                gint64        out[4])
{
  gint lo = interval_at (tz, c - OFFSET_WINDOW);
  gint hi = interval_at (tz, c + OFFSET_WINDOW);
  gboolean fixed = fixed_time (cron);
  gint64 first_offset = 0;
  guint n = 0;

  for (gint k = lo; k <= hi && n < 4; k++)
    {
      gint64 o = g_time_zone_get_offset (tz, k);
      gint64 t = c - o;

      if (interval_at (tz, t) != k)
        continue;
      /* repeated by a change of less than 3 h: due at the first only */
      if (n > 0 && fixed && first_offset - o < SHIFT_LIMIT)
        continue;
      if (n == 0)
        first_offset = o;
      out[n++] = t;
    }
  if (n > 0 || !fixed)
    return n;

  /* skipped: due at the change when it is less than 3 h forwards */
  for (gint k = lo; k < hi; k++)
    {
      gint64 before = g_time_zone_get_offset (tz, k);
      gint64 after = g_time_zone_get_offset (tz, k + 1);
      gint64 t_lo = c - after;
      gint64 t_hi = c - before;

      if (after <= before || after - before >= SHIFT_LIMIT)
        continue;
      if (interval_at (tz, t_lo) > k || interval_at (tz, t_hi) < k + 1)
        continue;
      /* the first second of interval k + 1, in (t_lo, t_hi] */
      while (t_hi - t_lo > 1)
        {
          gint64 mid = t_lo + (t_hi - t_lo) / 2;

          if (interval_at (tz, mid) >= k + 1)
            t_hi = mid;
          else
            t_lo = mid;
        }
      out[0] = t_hi;
      return 1;
    }
  return 0;
}

/**
 * hb_cron_next:
 * @cron: an expression
 * @tz: the time zone its fields are read in
 * @after_realtime_usec: wall-clock time, µs since the epoch
 *
 * The first due time of @cron strictly after @after_realtime_usec, with
 * the daylight saving rules of cron(8) (see the top of hb-cron.c). Due
 * times are whole seconds (whole minutes in zones whose offsets are).
 *
 * Returns: the due time, µs since the epoch, or 0 if there is none in
 *   the following %HB_CRON_HORIZON_USEC (as for "0 0 30 2 *"), or
 *   @after_realtime_usec is not within years 11 to 8990
 */
gint64
hb_cron_next (const HbCron *cron,
              GTimeZone    *tz,
              gint64        after_realtime_usec)
{
  gint64 after = floor_div (after_realtime_usec, G_USEC_PER_SEC);
  gint64 o_min, o_max, best = G_MAXINT64, stop = G_MAXINT64;
  gint64 max_year;
  Civil c;

  g_return_val_if_fail (cron != NULL, 0);
  g_return_val_if_fail (tz != NULL, 0);

  if (after < MIN_SEC || after > MAX_SEC)
    return 0;
  max_year = civil_from_seconds (after + HORIZON_SEC + OFFSET_WINDOW).year;

  /* A local time maps to an instant after @after only if it is later than
   * @after plus the smallest offset in the hours that follow. */
  offset_range (tz, after, after + OFFSET_WINDOW, &o_min, &o_max);
  c = civil_from_seconds (after + o_min + 59);
  while (civil_next_match (cron, &c, max_year))
    {
      gint64 local = civil_to_seconds (&c);
      gint64 instants[4];
      guint n;

      if (local > stop)
        break;
      n = civil_instants (cron, tz, local, instants);
      for (guint i = 0; i < n; i++)
        if (instants[i] > after && instants[i] < best)
          {
            best = instants[i];
            /* a later local time is due before @best only with a larger
             * offset than any near @best */
            offset_range (tz, best - OFFSET_WINDOW, best, &o_min, &o_max);
            stop = best + o_max;
          }
      c.minute++;
    }
  if (best == G_MAXINT64 || best > after + HORIZON_SEC)
    return 0;
  return best * G_USEC_PER_SEC;
}

/**
 * hb_cron_prev:
 * @cron: an expression
 * @tz: the time zone its fields are read in
 * @before_realtime_usec: wall-clock time, µs since the epoch
 *
 * The latest due time of @cron at or before @before_realtime_usec: the
 * same due times as hb_cron_next() gives, so that
 * `hb_cron_prev (cron, tz, hb_cron_next (cron, tz, t))` is that next time
 * and `hb_cron_prev (cron, tz, hb_cron_next (cron, tz, t) - 1)` is at or
 * before @t.
 *
 * Returns: the due time, µs since the epoch, or 0 if there is none in
 *   the preceding %HB_CRON_HORIZON_USEC, or @before_realtime_usec is not
 *   within years 11 to 8990
 */
gint64
hb_cron_prev (const HbCron *cron,
              GTimeZone    *tz,
              gint64        before_realtime_usec)
{
  gint64 before = floor_div (before_realtime_usec, G_USEC_PER_SEC);
  gint64 o_min, o_max, best = G_MININT64, stop = G_MININT64;
  gint64 min_year;
  Civil c;

  g_return_val_if_fail (cron != NULL, 0);
  g_return_val_if_fail (tz != NULL, 0);

  if (before < MIN_SEC || before > MAX_SEC)
    return 0;
  min_year = civil_from_seconds (before - HORIZON_SEC - OFFSET_WINDOW).year;

  offset_range (tz, before - OFFSET_WINDOW, before, &o_min, &o_max);
  c = civil_from_seconds (before + o_max);
  while (civil_prev_match (cron, &c, min_year))
    {
      gint64 local = civil_to_seconds (&c);
      gint64 instants[4];
      guint n;

      if (local < stop)
        break;
      n = civil_instants (cron, tz, local, instants);
      for (guint i = 0; i < n; i++)
        if (instants[i] <= before && instants[i] > best)
          {
            best = instants[i];
            offset_range (tz, best, best + OFFSET_WINDOW, &o_min, &o_max);
            stop = best + o_min;
          }
      c.minute--;
    }
  if (best == G_MININT64 || best < before - HORIZON_SEC)
    return 0;
  return best * G_USEC_PER_SEC;
}
