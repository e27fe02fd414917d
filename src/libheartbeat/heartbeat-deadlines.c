/* heartbeat-deadlines.c: a binary min-heap of agents by deadline
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "heartbeat-deadlines.h"

void
heartbeat_deadlines_init (HeartbeatDeadlines *heap)
{
  heap->items = NULL;
  heap->len = 0;
  heap->capacity = 0;
}

void
heartbeat_deadlines_clear (HeartbeatDeadlines *heap)
{
  for (guint32 i = 0; i < heap->len; i++)
    heap->items[i]->heap_index = HEARTBEAT_HEAP_NONE;
  g_clear_pointer (&heap->items, g_free);
  heap->len = 0;
  heap->capacity = 0;
}

static inline void
place (HeartbeatDeadlines *heap,
       guint32             i,
       HeartbeatAgent     *agent)
{
  heap->items[i] = agent;
  agent->heap_index = i;
}

static void
sift_up (HeartbeatDeadlines *heap,
         guint32             i)
{
  HeartbeatAgent *agent = heap->items[i];

  while (i > 0)
    {
      guint32 parent = (i - 1) / 2;

      if (heap->items[parent]->deadline <= agent->deadline)
        break;
      place (heap, i, heap->items[parent]);
      i = parent;
    }
  place (heap, i, agent);
}

static void
sift_down (HeartbeatDeadlines *heap,
           guint32             i)
{
  HeartbeatAgent *agent = heap->items[i];

  for (;;)
    {
      guint32 child = 2 * i + 1;

      if (child >= heap->len)
        break;
      if (child + 1 < heap->len &&
          heap->items[child + 1]->deadline < heap->items[child]->deadline)
        child++;
      if (agent->deadline <= heap->items[child]->deadline)
        break;
      place (heap, i, heap->items[child]);
      i = child;
    }
  place (heap, i, agent);
}

void
heartbeat_deadlines_push (HeartbeatDeadlines *heap,
                          HeartbeatAgent     *agent)
{
  g_assert (agent->heap_index == HEARTBEAT_HEAP_NONE);

  if (heap->len == heap->capacity)
    {
      heap->capacity = MAX (16, heap->capacity * 2);
      heap->items = g_renew (HeartbeatAgent *, heap->items, heap->capacity);
    }
  place (heap, heap->len++, agent);
  sift_up (heap, agent->heap_index);
}

void
heartbeat_deadlines_remove (HeartbeatDeadlines *heap,
                            HeartbeatAgent     *agent)
{
  guint32 i = agent->heap_index;
  HeartbeatAgent *last;

  if (i == HEARTBEAT_HEAP_NONE)
    return;

  g_assert (i < heap->len && heap->items[i] == agent);
  agent->heap_index = HEARTBEAT_HEAP_NONE;
  last = heap->items[--heap->len];
  if (last == agent)
    return;

  place (heap, i, last);
  heartbeat_deadlines_update (heap, last);
}

/* Restores the heap order after agent->deadline changed. */
void
heartbeat_deadlines_update (HeartbeatDeadlines *heap,
                            HeartbeatAgent     *agent)
{
  guint32 i = agent->heap_index;

  g_assert (i < heap->len);
  if (i > 0 && heap->items[(i - 1) / 2]->deadline > agent->deadline)
    sift_up (heap, i);
  else
    sift_down (heap, i);
}

/* Restores the heap order after many deadlines changed at once, in O(n). */
void
heartbeat_deadlines_heapify (HeartbeatDeadlines *heap)
{
  for (guint32 i = heap->len / 2; i-- > 0;)
    sift_down (heap, i);
}
