/* hb-journal.h: the logging front (structured journal entries per event)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "heartbeat-monitor.h"

G_BEGIN_DECLS

void hb_journal_attach (HeartbeatMonitor *monitor);

G_END_DECLS
