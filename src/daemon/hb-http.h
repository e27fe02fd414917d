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

/* A request, its headers and its body, must arrive within this (from the
 * connection, or from its first byte on a connection kept alive), else
 * the connection is closed; $HB_HTTP_REQUEST_TIMEOUT_MS overrides it, for
 * tests. */
#define HB_HTTP_REQUEST_TIMEOUT_MS 10000
/* A connection kept alive is closed after this long without a request,
 * and one whose client stops reading (or sending) for this long is closed
 * with what it held: it is the sockets' timeout, in whole seconds
 * ($HB_HTTP_IDLE_TIMEOUT_MS, for tests). */
#define HB_HTTP_IDLE_TIMEOUT_MS    30000

/* What clients may hold, whatever they do (the bound is computed in
 * heartbeatd(8), HTTP):
 *
 * Open connections, event streams included; one more is closed at once
 * (a 503 if it takes it) ($HB_HTTP_MAX_CONNECTIONS, for tests). */
#define HB_HTTP_MAX_CONNECTIONS    256
/* Of those, one peer may hold this many: a local user (told by the uid
 * that owns the client's socket) or a remote address, so that one user's
 * connections cannot lock another's dashboard out
 * ($HB_HTTP_MAX_CONNECTIONS_PER_PEER, for tests). */
#define HB_HTTP_MAX_CONNECTIONS_PER_PEER 64
/* Answers up to this size are always sent (bounded by the connections);
 * larger ones wait in memory until their clients read them, all of them
 * together within HB_HTTP_RESPONSE_BUDGET (one is always allowed): past
 * it, 503 with Retry-After ($HB_HTTP_RESPONSE_BUDGET, for tests). */
#define HB_HTTP_SMALL_RESPONSE     (64 * 1024)
#define HB_HTTP_RESPONSE_BUDGET    (32 * 1024 * 1024)
/* GET /v1/agents gives a page: ?limit= agents (this many by default, at
 * most HB_HTTP_AGENTS_PAGE_MAX), fewer once it holds HB_HTTP_PAGE_BYTES of
 * JSON; a Link header (rel="next") says where the next page starts. */
#define HB_HTTP_AGENTS_PAGE_DEFAULT 500
#define HB_HTTP_AGENTS_PAGE_MAX    1000
#define HB_HTTP_PAGE_BYTES         (1024 * 1024)   /* $HB_HTTP_PAGE_BYTES, for tests */
/* GET /v1/history gives a page the same way (?limit=, ?after=, Link), of
 * at most HB_HTTP_HISTORY_PAGE_BYTES of JSON (or $HB_HTTP_PAGE_BYTES if
 * smaller, for tests), unless one agent's history alone is larger: a page
 * is then that history. An agent keeps at most
 * HEARTBEAT_HISTORY_MAX_ENTRIES state changes (about 6 KB of JSON), so a
 * page holds about 40 full histories and is built in a few ms. */
#define HB_HTTP_HISTORY_PAGE_BYTES (256 * 1024)
/* Event streams (GET /v1/events): in all, and per peer (a local uid over
 * loopback, else a remote address); what one stream may have waiting. */
#define HB_HTTP_MAX_EVENT_STREAMS  64
#define HB_HTTP_MAX_EVENT_STREAMS_PER_PEER 8
#define HB_HTTP_EVENT_BACKLOG      (1024 * 1024)
/* How often a port in use is tried again ($HB_HTTP_LISTEN_RETRY_MS). */
#define HB_HTTP_LISTEN_RETRY_MS    5000
/* GET /v1/host samples the CPU over this long (as hbctl status did). */
#define HB_HTTP_CPU_SAMPLE_MS      100

#define HB_TYPE_HTTP (hb_http_get_type ())
G_DECLARE_FINAL_TYPE (HbHttp, hb_http, HB, HTTP, GObject)

HbHttp   *hb_http_new           (HeartbeatMonitor *monitor,
                                 const char       *version);
gboolean  hb_http_set_tls       (HbHttp         *http,
                                 const char     *certificate,
                                 const char     *key,
                                 const char     *client_ca,
                                 GError        **error);
gboolean  hb_http_check_files   (const char     *tokens_file,
                                 const char     *certificate,
                                 const char     *key,
                                 const char     *client_ca,
                                 GError        **error);
void      hb_http_set_trusted_network (HbHttp   *http,
                                 gboolean        trusted);
const char *hb_http_get_scheme  (HbHttp         *http);
gboolean  hb_http_set_tokens_file (HbHttp         *http,
                                 const char       *path,
                                 GError          **error);
gboolean  hb_http_set_ping_key_file (HbHttp       *http,
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
