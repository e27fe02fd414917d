/* hbctl-table.h: text in terminal columns, and a table that fits them
 * (private)
 *
 * A table has columns with a header each; rows widen them to their
 * widest cell, and hbctl_table_fit() narrows them to a terminal's width
 * by the rules it is given (which free-text columns shrink, which
 * columns may be left out and in what order), the way systemd's
 * format-table does for systemctl. The cells are cut by the caller to
 * the widths that came out (hbctl_cut(), hbctl_cut_middle()).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Columns between two cells of a row */
#define HBCTL_TABLE_GAP 2

glong        hbctl_text_width        (const char  *text);
char        *hbctl_cut               (const char  *text,
                                      glong        max);
char        *hbctl_cut_middle        (const char  *text,
                                      glong        max);
glong        hbctl_output_columns    (void);

typedef struct _HbctlTable HbctlTable;

/* How a table gives up width, the least telling first: its free-text
 * columns (@shrinkable, ties to the first listed) shrink down to
 * @floor_width; then the @drop_first columns are left out one after the
 * other; then the free text shrinks down to its minimum; then the
 * @drop_last columns are left out. The other columns always stay. */
typedef struct {
  const guint *shrinkable;
  gsize        n_shrinkable;
  glong        floor_width;
  const guint *drop_first;
  gsize        n_drop_first;
  const guint *drop_last;
  gsize        n_drop_last;
} HbctlTableFit;

HbctlTable  *hbctl_table_new         (const char *const   *headers,
                                      guint                n_columns);
void         hbctl_table_free        (HbctlTable          *table);
void         hbctl_table_set_minimum (HbctlTable          *table,
                                      guint                column,
                                      glong                minimum);
void         hbctl_table_hide_column (HbctlTable          *table,
                                      guint                column);
void         hbctl_table_widen       (HbctlTable          *table,
                                      char *const         *cells);
void         hbctl_table_fit         (HbctlTable          *table,
                                      const HbctlTableFit *fit,
                                      glong                columns);
glong        hbctl_table_get_width   (HbctlTable          *table,
                                      guint                column);
void         hbctl_table_print_header (HbctlTable         *table);
void         hbctl_table_print_row   (HbctlTable          *table,
                                      char *const         *cells,
                                      guint                colour_column,
                                      const char          *colour);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (HbctlTable, hbctl_table_free)

G_END_DECLS
