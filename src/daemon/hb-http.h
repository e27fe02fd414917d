/* hb-http.h: the HTTP front (seed-compatible endpoints, REST, SSE, metrics)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "heartbeat-monitor.h"
#include "hb-units.h"

G_BEGIN_DECLS

/* The owner of agents created over HTTP: not a real uid (65534 is nobody,
 * 4294967295 is (uid_t) -1). */
#define HB_HTTP_OWNER_UID G_GUINT64_CONSTANT (4294967294)

/* Request bodies are never larger than this. */
#define HB_HTTP_MAX_BODY (64 * 1024)

/* The agents HTTP may create until hb_http_set_quota() says otherwise. */
#define HB_HTTP_DEFAULT_QUOTA 1024

/* A request's headers must arrive within this (from the connection, or
 * from its first byte on a connection kept alive; a body is bounded by
 * HB_HTTP_MAX_BODY);
 * $HB_HTTP_REQUEST_TIMEOUT_MS overrides it, for tests. */
#define HB_HTTP_REQUEST_TIMEOUT_MS 10000
/* A connection kept alive is closed after this long without a request
 * ($HB_HTTP_IDLE_TIMEOUT_MS, for tests). */
#define HB_HTTP_IDLE_TIMEOUT_MS    60000
/* How often a port in use is tried again ($HB_HTTP_LISTEN_RETRY_MS). */
#define HB_HTTP_LISTEN_RETRY_MS    5000
/* GET /v1/host samples the CPU over this long (as hbctl status did). */
#define HB_HTTP_CPU_SAMPLE_MS      100

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
const char *hb_http_get_listen_problem (HbHttp     *http);
void      hb_http_set_quota     (HbHttp           *http,
                                 guint             agents_per_uid);
void      hb_http_set_units     (HbHttp           *http,
                                 HbUnits          *units);
void      hb_http_set_problem   (HbHttp           *http,
                                 const char       *problem);
void      hb_http_set_state_directory (HbHttp     *http,
                                 const char       *directory);
guint     hb_http_get_n_event_clients (HbHttp     *http);

G_END_DECLS
