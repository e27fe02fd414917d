/* hb-http-private.h: what the files of the HTTP front share
 *
 * The front is one HbHttp in several files, one per job:
 *
 *   hb-http.c           the object, set-up, listening, routing
 *   hb-http-response.c  JSON text, answers and errors, gzip, the budget of
 *                       large answers, request bodies, upsert()
 *   hb-http-auth.c      bearer tokens with scopes, what a request needs,
 *                       the rate limit of wrong tokens
 *   hb-http-guards.c    before a body is read (Host, tokens,
 *                       Content-Length), connection limits and timeouts
 *   hb-http-rest.c      /v1/agents…, /v1/history, /v1/host, /health, /
 *   hb-http-compat.c    the seeds' endpoints: /heartbeat, /event, /runs…,
 *                       /api/heartbeat/status
 *   hb-http-events.c    /v1/events (Server-Sent Events)
 *   hb-http-metrics.c   /metrics (Prometheus)
 *   hb-http-jobs.c      /v1/agents/{id}/runs, the ping URLs (/ping/…)
 *   hb-http-badge.c     /v1/agents/{id}/badge.svg, /v1/badge.svg (SVG badges)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "hb-http.h"

G_BEGIN_DECLS

#define STATUS_TOO_MANY_REQUESTS 429

/* The largest body of a ping (Healthchecks keeps 100 kB of one) */
#define HB_HTTP_PING_MAX_BODY 100000

typedef struct _Conn Conn;   /* hb-http-guards.c */
typedef struct _HbHttpTokens HbHttpTokens;   /* hb-http-auth.c */

/* What a token may do (hb-http-auth.c); write implies read and ping */
typedef enum {
  HB_HTTP_SCOPE_READ  = 1 << 0,
  HB_HTTP_SCOPE_WRITE = 1 << 1,
  HB_HTTP_SCOPE_PING  = 1 << 2,
} HbHttpScope;

/* Why a request's token is refused; the order of HbHttp.auth_failures */
typedef enum {
  HB_HTTP_AUTH_OK,
  HB_HTTP_AUTH_MISSING,
  HB_HTTP_AUTH_INVALID,
  HB_HTTP_AUTH_SCOPE,
  HB_HTTP_AUTH_RATE_LIMITED,
  HB_HTTP_AUTH_N_RESULTS
} HbHttpAuthResult;

/* Wrong tokens one address may send in a minute before its tokens are
 * not checked for the rest of it; hashes of unknown tokens everyone may
 * cost in a minute */
#define HB_HTTP_AUTH_MAX_FAILURES 10
#define HB_HTTP_AUTH_MAX_HASHING  60

struct _HbHttp {
  GObject           parent_instance;
  HeartbeatMonitor *monitor;
  HbUnits          *units;      /* or NULL */
  char             *version;
  SoupServer       *server;
  guint16           port;
  HbHttpTokens     *tokens;     /* or NULL: no tokens configured */
  gboolean          reads_need_token; /* serving an address other than loopback */
  guint64           auth_failures[HB_HTTP_AUTH_N_RESULTS]; /* refusals, for /metrics */
  GTlsCertificate  *tls_certificate;  /* or NULL: plain HTTP */
  GTlsDatabase     *tls_client_ca;    /* or NULL: no client certificate asked */
  gboolean          trusted_network;  /* plain HTTP off loopback allowed */
  gboolean          listening_tls;    /* what the listening socket speaks */
  char             *ping_key;   /* [http] ping-key-file=, or NULL (hb-http-jobs.c) */
  GList            *clients;    /* EventClient */
  guint             n_clients;
  guint64           sequence;
  guint             keepalive_id;
  char             *problem;    /* why the daemon is degraded, or NULL */
  guint             quota;      /* agents HB_HTTP_OWNER_UID may own; 0: no limit */

  /* listening */
  GInetAddress     *address;    /* what hb_http_listen() was given */
  guint16           wanted_port;
  gboolean          check_host; /* bound to loopback: refuse other Host headers */
  GStrv             host_names; /* what Host may say, written as usual (hb_http_set_host_names()) */
  guint             retry_id;
  char             *listen_problem;

  /* timeouts, in ms */
  guint             request_timeout;
  guint             idle_timeout;
  guint             retry_interval;
  GHashTable       *conns;      /* GSocket * → Conn: every open connection, weakly */
  guint64           quiet_turns; /* main loop turns with nothing of higher priority to do */
  guint             quiet_id;    /* the G_PRIORITY_LOW idle that counts the next one */

  /* what clients may hold (hb-http.h) */
  guint             max_connections;
  guint             max_connections_per_peer;
  gsize             response_budget;
  gsize             responses_pending; /* bytes of large answers not written yet */
  gsize             page_bytes;
  gint64            cap_warned_at;     /* monotonic µs: the last warning of a cap */

  /* GET /v1/history: pages waiting to be built, one per main loop
   * iteration, below the priority of D-Bus calls (handle_history()) */
  GQueue            history_pages;     /* HistoryPage */
  guint             history_source;

  /* GET /v1/host */
  char             *state_directory; /* NULL: found from the open state database */
  GList            *host_waiters;    /* HostWaiter: paused until the CPU sample */
  guint             host_sample_id;
  gboolean          host_cpu_known;
  guint64           host_busy, host_total;  /* the first CPU sample */
};

/* hb-http-response.c: JSON text */
void        append_double       (GString           *out,
                                 double             value);
void        append_string       (GString           *out,
                                 const char        *value);
void        json_append         (GString           *out,
                                 JsonNode          *node);
char       *json_to_data        (JsonNode          *node,
                                 gsize             *length);

/* hb-http-response.c: answers */
void        warn_cap            (HbHttp            *self,
                                 const char        *what);
void        send_json           (SoupServerMessage *msg,
                                 guint              status,
                                 JsonNode          *node);
void        send_json_text      (SoupServerMessage *msg,
                                 guint              status,
                                 GString           *out);
char       *error_text          (guint              status,
                                 const char        *message,
                                 gsize             *length);
void        send_error          (SoupServerMessage *msg,
                                 guint              status,
                                 const char        *format,
                                 ...) G_GNUC_PRINTF (3, 4);
void        send_monitor_error  (SoupServerMessage *msg,
                                 const GError      *error);
GQuark      caller_change_quark (void);
GQuark      stream_quark        (void);
void        mark_caller_change  (SoupServerMessage *msg);
void        add_member_string   (JsonBuilder       *b,
                                 const char        *name,
                                 const char        *value);
void        add_member_int      (JsonBuilder       *b,
                                 const char        *name,
                                 gint64             value);
JsonNode   *agent_to_json       (HbHttp            *self,
                                 HeartbeatAgent    *agent);
JsonNode   *agent_to_json_at    (HbHttp            *self,
                                 HeartbeatAgent    *agent,
                                 gint64             now,
                                 gint64             realtime_offset);
void        append_history      (GString           *out,
                                 HeartbeatAgent    *agent);
void        respond_compressible (SoupServerMessage *msg,
                                 const char        *content_type,
                                 GString           *out);
gboolean    budget_spent        (HbHttp            *self,
                                 const char        *path);
void        refuse_answer       (HbHttp            *self,
                                 SoupServerMessage *msg);
void        account_answer      (HbHttp            *self,
                                 SoupServerMessage *msg);

/* hb-http-response.c: request bodies */
JsonNode   *read_object         (SoupServerMessage *msg,
                                 gboolean           empty_ok);
GVariant   *read_metadata       (SoupServerMessage *msg,
                                 JsonObject        *object,
                                 const char *const *skip,
                                 const char        *what);
gboolean    get_optional_string (SoupServerMessage *msg,
                                 JsonObject        *object,
                                 const char        *name,
                                 const char       **value);
gboolean    get_optional_usec   (SoupServerMessage *msg,
                                 JsonObject        *object,
                                 const char        *name,
                                 gint64            *value);

/* A beat read from a request body, every part of it checked. */
typedef struct {
  HeartbeatBeatDetails details;
  GVariant            *metadata;
} Beat;

void        beat_clear          (Beat              *beat);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Beat, beat_clear)
gboolean    read_beat           (SoupServerMessage *msg,
                                 JsonObject        *object,
                                 const char *const *metadata_skip,
                                 gboolean           whole_object_is_metadata,
                                 Beat              *beat);

/* hb-http-auth.c */
HbHttpTokens *hb_http_tokens_parse (const char *contents,
                                 gsize              length,
                                 GError           **error);
HbHttpTokens *hb_http_tokens_load (const char      *path,
                                 GError           **error);
void        hb_http_tokens_free (HbHttpTokens      *tokens);
guint       hb_http_tokens_scopes (HbHttpTokens    *tokens,
                                 const char        *presented);
gboolean    hb_http_scopes_parse (const char       *text,
                                 guint             *scopes,
                                 GError           **error);
guint       hb_http_needed_scope (HbHttp           *self,
                                 const char        *method,
                                 const char        *path);
HbHttpAuthResult hb_http_authenticate (HbHttp      *self,
                                 SoupServerMessage *msg,
                                 guint              needed);
guint       hb_http_granted     (SoupServerMessage *msg);
char       *hb_http_auth_refusal (HbHttp           *self,
                                 SoupServerMessage *msg,
                                 HbHttpAuthResult   result,
                                 guint              needed,
                                 guint             *status,
                                 const char       **header,
                                 char             **value);

/* hb-http-response.c: who may write */
gboolean    may_write           (HbHttp            *self,
                                 SoupServerMessage *msg,
                                 gboolean          *privileged);
gboolean    may_change          (SoupServerMessage *msg,
                                 HeartbeatAgent    *agent,
                                 gboolean           privileged);
HeartbeatAgent *upsert          (HbHttp                      *self,
                                 SoupServerMessage           *msg,
                                 const char                  *id,
                                 const HeartbeatAgentOptions *options,
                                 gboolean                     privileged,
                                 gboolean                     re_register,
                                 gboolean                    *created);

/* The endpoints: routed by hb-http.c */
typedef void (*RouteFunc) (HbHttp *self, SoupServerMessage *msg, gboolean privileged);

/* hb-http-rest.c */
void        handle_dashboard    (HbHttp *self, SoupServerMessage *msg, gboolean privileged);
void        handle_health       (HbHttp *self, SoupServerMessage *msg, gboolean privileged);
void        handle_agents       (HbHttp *self, SoupServerMessage *msg, gboolean privileged);
void        handle_history      (HbHttp *self, SoupServerMessage *msg, gboolean privileged);
void        handle_host         (HbHttp *self, SoupServerMessage *msg, gboolean privileged);
void        handle_get_agent    (HbHttp *self, SoupServerMessage *msg, const char *id);
void        handle_put_agent    (HbHttp *self, SoupServerMessage *msg, const char *id, gboolean privileged);
void        handle_agent_change (HbHttp *self, SoupServerMessage *msg, const char *id, const char *action,
                                 gboolean privileged);
void        handle_agent_history (HbHttp *self, SoupServerMessage *msg, const char *id);
void        hb_http_rest_dispose (HbHttp *self);

/* hb-http-compat.c */
void        handle_heartbeat    (HbHttp *self, SoupServerMessage *msg, gboolean privileged);
void        handle_event        (HbHttp *self, SoupServerMessage *msg, gboolean privileged);
void        handle_runs         (HbHttp *self, SoupServerMessage *msg, gboolean privileged);
void        handle_run          (HbHttp *self, SoupServerMessage *msg, const char *id);
void        handle_gateway_status (HbHttp *self, SoupServerMessage *msg, gboolean privileged);

/* hb-http-metrics.c */
void        handle_metrics      (HbHttp *self, SoupServerMessage *msg, gboolean privileged);

/* hb-http-jobs.c */
void        handle_agent_runs   (HbHttp *self, SoupServerMessage *msg, const char *id);
void        handle_ping         (HbHttp *self, SoupServerMessage *msg, const char *path);
gboolean    hb_http_is_ping_path (const char *path);
gboolean    hb_http_ping_has_key (HbHttp *self, const char *path);

/* hb-http-badge.c */
void        handle_badge        (HbHttp *self, SoupServerMessage *msg, gboolean privileged);
void        handle_agent_badge  (HbHttp *self, SoupServerMessage *msg, const char *id);

/* hb-http-events.c */
void        handle_events       (HbHttp *self, SoupServerMessage *msg, gboolean privileged);
void        hb_http_events_dispose (HbHttp *self);

/* hb-http-guards.c */
void        hb_http_guards_init (HbHttp *self);
void        hb_http_guards_dispose (HbHttp *self);
void        hb_http_set_host_names (HbHttp *self);
void        on_request_headers  (SoupServer        *server,
                                 SoupServerMessage *msg,
                                 const char        *path,
                                 GHashTable        *query,
                                 gpointer           user_data);
void        on_request_started  (SoupServer        *server,
                                 SoupServerMessage *msg,
                                 HbHttp            *self);
void        hb_http_request_read (HbHttp           *self,
                                 SoupServerMessage *msg);
void        on_request_done     (SoupServer        *server,
                                 SoupServerMessage *msg,
                                 HbHttp            *self);
char       *socket_peer         (GSocket           *socket);
const char *hb_http_conn_peer   (HbHttp            *self,
                                 GSocket           *socket);

G_END_DECLS
