/* heartbeat-deadlines.h: a binary min-heap of agents by deadline
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "heartbeat-agent-private.h"

G_BEGIN_DECLS

/*
 * The heap stores agent pointers and keeps each agent's position in
 * agent->heap_index, so an agent can be moved or removed in O(log n)
 * without searching. The heap holds no references: the monitor's table
 * does, and the monitor removes an agent from the heap before it drops it.
 */
typedef struct {
  HeartbeatAgent **items;
  guint32          len;
  guint32          capacity;
} HeartbeatDeadlines;

void            heartbeat_deadlines_init    (HeartbeatDeadlines *heap);
void            heartbeat_deadlines_clear   (HeartbeatDeadlines *heap);
void            heartbeat_deadlines_push    (HeartbeatDeadlines *heap,
                                             HeartbeatAgent     *agent);
void            heartbeat_deadlines_remove  (HeartbeatDeadlines *heap,
                                             HeartbeatAgent     *agent);
void            heartbeat_deadlines_update  (HeartbeatDeadlines *heap,
                                             HeartbeatAgent     *agent);
void            heartbeat_deadlines_heapify (HeartbeatDeadlines *heap);

static inline HeartbeatAgent *
heartbeat_deadlines_peek (const HeartbeatDeadlines *heap)
{
  return heap->len > 0 ? heap->items[0] : NULL;
}

G_END_DECLS
