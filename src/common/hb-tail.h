/* hb-tail.h: the last bytes of a program's output, bounded
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* How much of a program's output an alert or a run keeps: its last 4 KiB. */
#define HB_TAIL_BYTES 4096

typedef struct _HbTail HbTail;

HbTail     *hb_tail_new          (gsize         max);
void        hb_tail_free         (HbTail       *tail);
void        hb_tail_append       (HbTail       *tail,
                                  const void   *data,
                                  gsize         length);
guint64     hb_tail_get_total    (const HbTail *tail);
guint64     hb_tail_get_dropped  (const HbTail *tail);
char       *hb_tail_get_text     (const HbTail *tail);
char       *hb_utf8_tail         (const char   *text,
                                  gsize         max);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (HbTail, hb_tail_free)

G_END_DECLS
