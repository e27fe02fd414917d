/* fuzz-config.c: libFuzzer target for the configuration parser
 *
 * A configuration that parses must also apply to a monitor.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-config.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_autoptr(HbConfig) config = hb_config_load_from_data ((const char *) data, size, "fuzz", NULL);

  if (config != NULL)
    {
      g_autoptr(HeartbeatMonitor) monitor = heartbeat_monitor_new ();

      g_assert_cmpint (config->stale_threshold_usec, >, 0);
      hb_config_apply (config, monitor, 0);
      g_assert_cmpuint (heartbeat_monitor_get_n_agents (monitor), ==, config->agents->len);
    }
  return 0;
}
