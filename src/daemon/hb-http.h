/* hb-http.h: the HTTP front (seed-compatible endpoints, REST, SSE, metrics)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "heartbeat-monitor.h"

G_BEGIN_DECLS

/* The owner of agents created over HTTP: not a real uid (65534 is nobody,
 * 4294967295 is (uid_t) -1). */
#define HB_HTTP_OWNER_UID G_GUINT64_CONSTANT (4294967294)

/* Request bodies are never larger than this. */
#define HB_HTTP_MAX_BODY (64 * 1024)

#define HB_TYPE_HTTP (hb_http_get_type ())
G_DECLARE_FINAL_TYPE (HbHttp, hb_http, HB, HTTP, GObject)

HbHttp   *hb_http_new           (HeartbeatMonitor *monitor,
                                 const char       *version);
gboolean  hb_http_set_tokens_file (HbHttp         *http,
                                 const char       *path,
                                 GError          **error);
gboolean  hb_http_listen        (HbHttp           *http,
                                 const char       *address,
                                 guint16           port,
                                 GError          **error);
guint16   hb_http_get_port      (HbHttp           *http);
void      hb_http_set_problem   (HbHttp           *http,
                                 const char       *problem);
guint     hb_http_get_n_event_clients (HbHttp     *http);

G_END_DECLS
