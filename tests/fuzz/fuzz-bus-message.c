/* fuzz-bus-message.c: libFuzzer target for the bytes of a D-Bus message
 *
 * What the bus could forward to heartbeatd, as hb-bus-filter reads it
 * before GDBus does. Whatever bytes come (bus-invariant.h):
 *
 *  - a message hb_bus_filter_decodes() proves decodable, GDBus decodes;
 *  - where hb_bus_header_read() reads a message GDBus decodes, it reads
 *    the header GDBus reads;
 *  - a Beat hb_fast_beat_read_call() takes, GDBus decodes, and reading it
 *    from GDBus's GVariants takes the same call.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "../bus-invariant.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  if (size == 0)
    return 0;
  walker_decodes (data, size);
  header_agrees (data, size);
  fast_read_agrees (data, size);
  return 0;
}
