/* hbctl-table.c: text in terminal columns, and a table that fits them
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "hbctl-table.h"

static glong
char_width (gunichar c)
{
  if (g_unichar_iszerowidth (c))
    return 0;
  return g_unichar_iswide (c) ? 2 : 1;
}

/* Width in terminal columns of UTF-8 text. */
glong
hbctl_text_width (const char *text)
{
  glong w = 0;

  for (const char *p = text; *p; p = g_utf8_next_char (p))
    w += char_width (g_utf8_get_char (p));
  return w;
}

/* The longest start of @text at most @max columns wide, as a length in bytes */
static gsize
head_bytes (const char *text, glong max)
{
  const char *p = text;
  glong w = 0;

  for (; *p; p = g_utf8_next_char (p))
    {
      glong cw = char_width (g_utf8_get_char (p));
      if (w + cw > max)
        break;
      w += cw;
    }
  return (gsize) (p - text);
}

/* The longest end of @text at most @max columns wide */
static const char *
tail_of (const char *text, glong max)
{
  const char *p = text + strlen (text);
  glong w = 0;

  while (p > text)
    {
      const char *prev = g_utf8_prev_char (p);
      glong cw = char_width (g_utf8_get_char (prev));
      if (w + cw > max)
        break;
      w += cw;
      p = prev;
    }
  return p;
}

/* @text in at most @max columns: cut at the end with "…". */
char *
hbctl_cut (const char *text, glong max)
{
  if (hbctl_text_width (text) <= max)
    return g_strdup (text);
  {
    g_autofree char *start = g_strndup (text, head_bytes (text, MAX (max - 1, 0)));
    return g_strconcat (start, "…", NULL);
  }
}

/* @text in at most @max columns: its start and its end around "…", so that
 * ids that differ only at the end ("build-1234-a", "build-1234-b") stay
 * apart: "build-ab…xyz-12". */
char *
hbctl_cut_middle (const char *text, glong max)
{
  glong tail, head;

  if (hbctl_text_width (text) <= max)
    return g_strdup (text);
  tail = MAX (max - 1, 0) / 3;
  head = MAX (max - 1, 0) - tail;
  {
    g_autofree char *start = g_strndup (text, head_bytes (text, head));
    return g_strconcat (start, "…", tail_of (text, tail), NULL);
  }
}

/* How wide the table may be: $COLUMNS if set, else the terminal's width
 * if standard output is one, else 0: no limit (piped output keeps every
 * value whole, for scripts). */
glong
hbctl_output_columns (void)
{
  const char *columns = g_getenv ("COLUMNS");
  struct winsize size;
  guint64 n;

  if (columns && g_ascii_string_to_unsigned (columns, 10, 1, 100000, &n, NULL))
    return (glong) n;
  if (isatty (STDOUT_FILENO) && ioctl (STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0)
    return size.ws_col;
  return 0;
}

struct _HbctlTable {
  guint      n_columns;
  char     **headers;
  glong     *widths;
  glong     *minimum;    /* what a free-text column shrinks to at most */
  gboolean  *visible;
};

/* A table of @n_columns with these headers, each column as wide as its
 * header (and no narrower ever), every column shown. */
HbctlTable *
hbctl_table_new (const char *const *headers,
                 guint              n_columns)
{
  HbctlTable *table = g_new0 (HbctlTable, 1);

  table->n_columns = n_columns;
  table->headers = g_new0 (char *, n_columns + 1);
  table->widths = g_new0 (glong, n_columns);
  table->minimum = g_new0 (glong, n_columns);
  table->visible = g_new0 (gboolean, n_columns);
  for (guint c = 0; c < n_columns; c++)
    {
      table->headers[c] = g_strdup (headers[c]);
      table->widths[c] = table->minimum[c] = hbctl_text_width (headers[c]);
      table->visible[c] = TRUE;
    }
  return table;
}

void
hbctl_table_free (HbctlTable *table)
{
  g_strfreev (table->headers);
  g_free (table->widths);
  g_free (table->minimum);
  g_free (table->visible);
  g_free (table);
}

/* @column never shrinks below @minimum columns (nor its header's width) */
void
hbctl_table_set_minimum (HbctlTable *table,
                         guint       column,
                         glong       minimum)
{
  table->minimum[column] = MAX (table->minimum[column], minimum);
}

/* Leaves @column out (before hbctl_table_fit(): it takes no room) */
void
hbctl_table_hide_column (HbctlTable *table,
                         guint       column)
{
  table->visible[column] = FALSE;
}

/* Widens the columns to the cells of a row (@cells: one per column) */
void
hbctl_table_widen (HbctlTable  *table,
                   char *const *cells)
{
  for (guint c = 0; c < table->n_columns; c++)
    table->widths[c] = MAX (table->widths[c], hbctl_text_width (cells[c]));
}

glong
hbctl_table_get_width (HbctlTable *table,
                       guint       column)
{
  return table->widths[column];
}

static glong
table_width (HbctlTable *table)
{
  glong total = 0;
  int shown = 0;

  for (guint c = 0; c < table->n_columns; c++)
    if (table->visible[c])
      {
        total += table->widths[c];
        shown++;
      }
  return total + MAX (shown - 1, 0) * HBCTL_TABLE_GAP;
}

/* Narrows the free-text columns, widest first, down to @floor_width (at
 * least their minimum), until the table fits @columns. */
static glong
shrink_widths (HbctlTable          *table,
               const HbctlTableFit *fit,
               glong                floor_width,
               glong                columns)
{
  glong *widths = table->widths;
  const glong *minimum = table->minimum;
  glong total = table_width (table);

  while (total > columns)
    {
      int widest = -1;

      for (gsize i = 0; i < fit->n_shrinkable; i++)
        {
          int c = (int) fit->shrinkable[i];
          if (table->visible[c] && widths[c] > MAX (minimum[c], floor_width) &&
              (widest < 0 || widths[c] > widths[widest]))
            widest = c;
        }
      if (widest < 0)
        break;
      widths[widest]--;
      total--;
    }
  return total;
}

/* Fits the table into @columns as @fit says (see HbctlTableFit); room
 * that leaving columns out freed goes back to the free text, the last
 * listed first (up to its natural width). */
void
hbctl_table_fit (HbctlTable          *table,
                 const HbctlTableFit *fit,
                 glong                columns)
{
  g_autofree glong *natural = g_memdup2 (table->widths, sizeof (glong) * table->n_columns);
  glong total = shrink_widths (table, fit, fit->floor_width, columns);

  for (gsize i = 0; i < fit->n_drop_first && total > columns; i++)
    {
      table->visible[fit->drop_first[i]] = FALSE;
      total = shrink_widths (table, fit, fit->floor_width, columns);
    }
  total = shrink_widths (table, fit, 0, columns);
  for (gsize i = 0; i < fit->n_drop_last && total > columns; i++)
    {
      table->visible[fit->drop_last[i]] = FALSE;
      total = table_width (table);
    }
  for (gsize i = fit->n_shrinkable; i > 0 && total < columns; i--)
    {
      guint c = fit->shrinkable[i - 1];
      glong grow = table->visible[c] ? MIN (natural[c] - table->widths[c], columns - total) : 0;

      if (grow > 0)
        {
          table->widths[c] += grow;
          total += grow;
        }
    }
}

/* One row: the cells of the visible columns, padded to their widths
 * (but the last); the cell of @colour_column in @colour (an escape
 * sequence) if that is not NULL. */
void
hbctl_table_print_row (HbctlTable  *table,
                       char *const *cells,
                       guint        colour_column,
                       const char  *colour)
{
  GString *line = g_string_new (NULL);
  guint last = table->n_columns - 1;

  while (last > 0 && !table->visible[last])
    last--;
  for (guint c = 0; c <= last; c++)
    {
      glong pad = table->widths[c] - hbctl_text_width (cells[c]);

      if (!table->visible[c])
        continue;
      if (c == colour_column && colour)
        g_string_append_printf (line, "%s%s\033[0m", colour, cells[c]);
      else
        g_string_append (line, cells[c]);
      if (c < last)
        for (glong i = 0; i < pad + HBCTL_TABLE_GAP; i++)
          g_string_append_c (line, ' ');
    }
  g_print ("%s\n", line->str);
  g_string_free (line, TRUE);
}

void
hbctl_table_print_header (HbctlTable *table)
{
  hbctl_table_print_row (table, table->headers, 0, NULL);
}
