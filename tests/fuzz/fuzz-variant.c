/* fuzz-variant.c: libFuzzer target for a{sv} dictionaries from bytes
 *
 * What a D-Bus peer can put in Register's options, Beat's details or an
 * event: any serialized a{sv}. The monitor must validate it (size, types)
 * and either take it or refuse it with an error, never crash; and what it
 * took must survive D-Bus and JSON unchanged (fuzz-invariant.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "fuzz-invariant.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_autoptr(HeartbeatMonitor) monitor = heartbeat_monitor_new ();
  g_autoptr(GBytes) bytes = g_bytes_new (data, size);
  g_autoptr(GVariant) dict = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE_VARDICT, bytes, FALSE));
  g_autoptr(GVariant) normal = g_variant_get_normal_form (dict);
  HeartbeatAgentOptions options = { .metadata = normal };
  HeartbeatBeatDetails details = { .metadata = normal };
  const char *status = NULL;
  double progress;

  if (heartbeat_monitor_register (monitor, "fuzz", &options, NULL) == NULL)
    g_assert_nonnull (heartbeat_monitor_register (monitor, "fuzz", NULL, NULL));
  /* as Beat's details: status and progress come from the dictionary */
  if (g_variant_lookup (normal, "status", "&s", &status))
    details.status = status;
  if (g_variant_lookup (normal, "progress", "d", &progress))
    {
      details.has_progress = TRUE;
      details.progress = progress;
    }
  hb_fuzz_assert_monitor_round_trips (monitor);
  heartbeat_monitor_beat (monitor, "fuzz", &details, NULL);
  hb_fuzz_assert_monitor_round_trips (monitor);
  if (heartbeat_monitor_post_event (monitor, "fuzz", g_variant_ref (normal), NULL))
    hb_fuzz_assert_round_trips ("event", normal);
  g_assert_nonnull (heartbeat_monitor_lookup (monitor, "fuzz"));
  return 0;
}
