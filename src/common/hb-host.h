/* hb-host.h: a summary of this machine, for GET /v1/host and hbctl status
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

gboolean  hb_host_read_cpu (guint64    *busy,
                            guint64    *total);
double    hb_host_cpu_percent (guint64  busy_before,
                               guint64  total_before,
                               guint64  busy_after,
                               guint64  total_after);
JsonNode *hb_host_to_json  (double      cpu_percent,
                            const char *disk_path);
gint64    hb_host_process_started_at (void);

G_END_DECLS
