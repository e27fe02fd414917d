/* heartbeat-values-private.h: the metadata gate, with what it measured
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "heartbeat-values.h"

G_BEGIN_DECLS

/* The length of a `progress` entry in a metadata dictionary as JSON text,
 * as heartbeat_metadata_check() counts it, or more. */
#define HEARTBEAT_PROGRESS_TEXT 64

gboolean heartbeat_metadata_check (GVariant  *metadata,
                                   gsize     *text,
                                   GError   **error);

G_END_DECLS
