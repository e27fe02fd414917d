/* heartbeat.h: libheartbeat-1, the client library of heartbeatd
 *
 * pkg-config heartbeat-1; GObject Introspection namespace Heartbeat-1.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "heartbeat-agent-info.h"
#include "heartbeat-client.h"
#include "heartbeat-keep-alive.h"
#include "heartbeat-client-enums.h"
