/* fuzz-heartbeat-file.c: libFuzzer target for the heartbeat-file parser
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-files.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_auto(HbHeartbeatFile) file = { 0 };

  if (hb_heartbeat_file_parse ((const char *) data, size, &file, NULL))
    {
      g_assert_nonnull (file.process_key);
      g_assert_cmpint (file.pid, >, 0);
      g_assert_nonnull (file.status);
    }
  return 0;
}
