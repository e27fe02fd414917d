/* fuzz-history.c: libFuzzer target for a saved history (agents.history)
 *
 * What the state database hands back as an agent's history: any bytes,
 * read as a(ts). Restoring an agent with it never fails because of the
 * history, and what the agent then holds is a history the monitor could
 * have made itself: at most HEARTBEAT_HISTORY_MAX_ENTRIES entries of
 * known states, in time order, no state twice in a row, ending in the
 * agent's state; and it saves and restores to itself.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "fuzz-invariant.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static void
assert_well_formed (HeartbeatAgent *agent)
{
  g_autoptr(GVariant) history = g_variant_ref_sink (heartbeat_agent_get_history (agent));
  gsize n = g_variant_n_children (history);
  guint64 last_at = 0;
  const char *last_state = NULL;
  HeartbeatAgentState state;

  g_assert_cmpuint (n, >=, 1);
  g_assert_cmpuint (n, <=, HEARTBEAT_HISTORY_MAX_ENTRIES);
  for (gsize i = 0; i < n; i++)
    {
      guint64 at;
      const char *nick;

      g_variant_get_child (history, i, "(t&s)", &at, &nick);
      g_assert_true (heartbeat_agent_state_from_string (nick, &state));
      g_assert_cmpuint (at, <=, G_MAXINT64);
      g_assert_cmpuint (at, >=, last_at);
      g_assert_cmpstr (nick, !=, last_state);
      last_at = at;
      last_state = nick;
    }
  g_assert_cmpstr (last_state, ==, heartbeat_agent_state_to_string (heartbeat_agent_get_state (agent)));
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_autoptr(HeartbeatMonitor) monitor = heartbeat_monitor_new ();
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GVariant) saved = NULL;
  g_autoptr(GVariant) first = NULL;
  g_autoptr(GVariant) second = NULL;
  HeartbeatAgentSnapshot snapshot = { 0 };
  HeartbeatAgent *agent;
  gint64 now = g_get_real_time ();

  if (size < 1)
    return 0;
  /* the first byte picks the state the agent is restored in */
  snapshot.state = data[0] % HEARTBEAT_AGENT_N_STATES;
  snapshot.declared = (data[0] / HEARTBEAT_AGENT_N_STATES) % 2;
  snapshot.started_at_realtime = now;
  snapshot.last_activity_at_realtime = now;
  bytes = g_bytes_new (data + 1, size - 1);
  saved = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE ("a(ts)"), bytes, FALSE));
  /* the store refuses what is not in normal form; the monitor must cope
   * with what is */
  if (!g_variant_is_normal_form (saved))
    return 0;
  snapshot.history = saved;

  agent = heartbeat_monitor_restore (monitor, "fuzz", NULL, &snapshot, NULL);
  g_assert_nonnull (agent);
  assert_well_formed (agent);
  hb_fuzz_assert_monitor_round_trips (monitor);

  /* saved and restored, it is the same */
  first = g_variant_ref_sink (heartbeat_agent_get_history (agent));
  snapshot.state = heartbeat_agent_get_state (agent);
  snapshot.history = first;
  agent = heartbeat_monitor_restore (monitor, "fuzz", NULL, &snapshot, NULL);
  g_assert_nonnull (agent);
  second = g_variant_ref_sink (heartbeat_agent_get_history (agent));
  g_assert_true (g_variant_equal (first, second));

  /* and it still takes a change */
  heartbeat_monitor_mark_gone (monitor, "fuzz", NULL);
  assert_well_formed (agent);
  return 0;
}
