/* hb-alerts.c: the alert front
 *
 * Each [alert:NAME] section picks events (stale, timed-out, recovered,
 * gone, error) of agents matching a glob, and one action:
 *
 *   webhook=URL        POST a JSON event; `retries` attempts (default 3),
 *                      `retry-interval` apart (5 s, doubling with
 *                      backoff=exponential), `timeout` each (10 s): the
 *                      numbers of 003_31ee32263f03983b.txt. Its members:
 *                      alert, event, agent, state, status, reason, task-id,
 *                      host, time, idle-usec or running-usec where they
 *                      apply, and output where the agent has one (below)
 *   alertmanager=URL [URL...]
 *                      keep each Alertmanager (URL/api/v2/alerts) told, as
 *                      its client contract asks (every one of a cluster,
 *                      each on its own: an AmEntry per URL and agent, with
 *                      its own post, retries and log; the same alert, the
 *                      same startsAt, at each): one alert per agent in an
 *                      alerting state (stale, timed-out, gone, error; as
 *                      `events` chooses), labelled exactly as the shipped
 *                      Prometheus rules label it, sent again every
 *                      HB_ALERTMANAGER_RESEND_USEC with an endsAt ahead,
 *                      and resolved (endsAt now) when the agent leaves the
 *                      state; see "Alertmanager" below
 *   exec=PROGRAM       run it with HB_ALERT, HB_AGENT, HB_EVENT, HB_STATE,
 *                      HB_STATUS, HB_REASON, HB_TASK, HB_HOST (and
 *                      HB_OUTPUT where the agent has an output) in its
 *                      environment, stdin /dev/null, in a process group
 *                      of its own; see "Programs" below
 *   restart-unit=UNIT  org.freedesktop.systemd1.Manager.RestartUnit on the
 *                      daemon's bus, at most once per `cooldown` (5 min)
 *                      for each unit, whichever alert restarted it last.
 *                      An empty value (restart-unit=) means the unit of
 *                      the agent that raised the event, its [agent:NAME]
 *                      unit= (hb_units_get_unit_name()); for an agent
 *                      without one it warns and does nothing, and a unit
 *                      stopped cleanly (inactive, deactivating: as by
 *                      systemctl stop) is left stopped
 *
 * Every payload carries the agent's reason, the record's (the one rule,
 * hb_agent_record_reason_full()): the webhook's member "reason",
 * $HB_REASON, and the Alertmanager annotation "reason", also at the end
 * of its description.
 *
 * A paused agent (heartbeat_monitor_pause()) raises nothing: the monitor
 * gives it no stale or timed-out signal, and no event of an agent that is
 * paused when it comes runs an action, restart-unit= included. Pausing
 * resolves the alert an Alertmanager holds for it (a state change, which
 * am_sync_agent() follows: paused is no alerting state).
 *
 * Everything is asynchronous on the main loop; at most
 * HB_ALERTS_MAX_PENDING deliveries (webhook posts and programs) wait,
 * newer ones are dropped. The first drop is logged ("N deliveries already
 * waiting; dropping this one"); the ones after it are counted and summed
 * up at most once per HB_ALERTS_DROP_SUMMARY_USEC ("dropped N more
 * deliveries in the last 10 s"), the last summary within 10 s of the last
 * drop; after a quiet interval the next drop is logged again. Failures are
 * logged with their reason; nothing blocks the monitor.
 *
 * An agent's output: the string its metadata holds under "output" (as
 * `hbctl run` sets it when a command fails), cut to its last
 * HB_ALERTS_OUTPUT_TAIL bytes at a character boundary (made valid UTF-8),
 * is the member "output" of a webhook's JSON and $HB_OUTPUT of a program.
 * Without one there is no member and no variable.
 *
 * https (webhook=, alertmanager=): the server is verified against the
 * section's ca-file= (the GTlsDatabase hb-config.c read; one SoupSession
 * per database, see session_for()), or the system trust store without it;
 * a certificate refused is a failed attempt, logged with the section, the
 * URL and why (the GTlsCertificateFlags of accept-certificate), and
 * retried as any. token-file='s token goes as Authorization: Bearer.
 *
 * Replies (webhook=, alertmanager=): judged by their status alone. 2xx is
 * delivered, and nothing of its body is read: the stream is closed, which
 * drops the connection whatever the receiver still sends (an endless or
 * huge body costs nothing). Of any other reply at most HB_ALERTS_REPLY_MAX
 * bytes are read, within the timeout, for the log. Redirects are not
 * followed (libsoup would turn a POST answered 301, 302 or 303 into a GET
 * without its body): a 3xx is a failed attempt, logged with its status and
 * Location, and retried as other failures are.
 *
 * Programs (exec=): each runs in a new process group (setpgid), its stdout
 * and stderr on one pipe, read in chunks at G_PRIORITY_LOW (D-Bus calls
 * are served first) of which only the last HB_ALERTS_OUTPUT_TAIL bytes are
 * kept. The delivery ends when the program exits: what is readable then is
 * read, the whole group is sent SIGKILL (whatever it left behind in it,
 * such as `sleep 900 &`, which would otherwise hold the pipe), and the pipe
 * is closed. At `timeout` the whole group is sent SIGKILL, and the exit
 * ends the delivery the same way. A process that made a group or session of
 * its own (setsid, daemon(3)) escapes, but never holds the delivery: the
 * pipe is closed all the same. The tail is logged once at the end
 * (MESSAGE, AGENT_ID), saying how many bytes came before it, and a failure
 * (exit status, signal, timeout) is a warning carrying the tail's last
 * line.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-alerts.h"
#include "hb-agent-record.h"
#include "hb-units.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct _HbAlerts {
  GObject           parent_instance;
  HeartbeatMonitor *monitor;
  GDBusConnection  *connection;
  HbUnits          *units;         /* for restart-unit= without a unit; nullable */
  SoupSession      *session;       /* verifies against the system trust store */
  GHashTable       *sessions;      /* GTlsDatabase (a ca-file=) → the SoupSession verifying against it */
  GPtrArray        *alerts;        /* HbConfigAlert, from the configuration */
  GHashTable       *am;            /* "url\nagent" → AmEntry, for Alertmanager */
  guint             n_am_sections; /* alertmanager= sections configured */
  gint64            resend_usec;   /* HB_ALERTMANAGER_RESEND_USEC, or from the environment */
  GHashTable       *last_restart;  /* unit → gint64 monotonic: when it was last restarted */
  char             *host;
  guint             pending;
  guint             max_pending;   /* HB_ALERTS_MAX_PENDING, or lower from the environment */
  guint             drop_summary_id; /* while drops are summed up rather than logged */
  guint             drop_summary_ms; /* HB_ALERTS_DROP_SUMMARY_USEC, or shorter from the environment */
  guint             n_dropped;     /* since the last summary */
  GCancellable     *cancellable;
};

G_DEFINE_FINAL_TYPE (HbAlerts, hb_alerts, G_TYPE_OBJECT)

typedef struct _AmEntry AmEntry;

/* What happened, as an action sees it. */
typedef struct {
  const char *event;     /* stale, timed-out, recovered, gone, error, unregistered */
  const char *agent;
  const char *state;
  const char *status;
  char       *reason;    /* hb_agent_record_reason_full() */
  const char *task;
  const char *usec_key;  /* idle-usec, running-usec, or NULL */
  gint64      usec;
  char       *output;    /* the agent's output tail, or NULL: see event_read_output() */
  gint64      due;       /* a late job: the due time of the run it missed, wall-clock µs; else 0 */
  gint        exit_status; /* a job in error: its last run's exit status; else -1 */
  HeartbeatAgent *source; /* whose event it is */
  gboolean    output_read;
} Event;

/* ------------------------------------------------------------------ */
/* Small things                                                        */

static gboolean
on_drop_summary (gpointer user_data)
{
  HbAlerts *self = user_data;

  if (self->n_dropped == 0)
    {
      /* quiet for an interval: the next drop is logged again */
      self->drop_summary_id = 0;
      return G_SOURCE_REMOVE;
    }
  g_warning ("dropped %u more deliveries in the last %g s; %u waiting", self->n_dropped,
             self->drop_summary_ms / 1000.0, self->pending);
  self->n_dropped = 0;
  return G_SOURCE_CONTINUE;
}

/* Whether a delivery of @alert may start; if not, counts it dropped. */
static gboolean
may_deliver (HbAlerts *self, const HbConfigAlert *alert)
{
  if (self->pending < self->max_pending)
    return TRUE;
  if (self->drop_summary_id == 0)
    {
      g_warning ("[alert:%s] %u deliveries already waiting; dropping this one (further drops are summed up "
                 "every %g s)", alert->name, self->pending, self->drop_summary_ms / 1000.0);
      self->n_dropped = 0;
      self->drop_summary_id = g_timeout_add (self->drop_summary_ms, on_drop_summary, self);
    }
  else
    {
      self->n_dropped++;
    }
  return FALSE;
}

/* ------------------------------------------------------------------ */
/* One HTTP POST, as the top of the file says: no redirect followed, the
 * status decides, at most HB_ALERTS_REPLY_MAX bytes of a failure's body
 * read */

typedef void (*PostDone) (gboolean    delivered,
                          const char *why,
                          gpointer    user_data);

/* How a post is made: whom an https server must be vouched for by, and
 * the token it carries (an [alert:NAME]'s ca-file= and token-file=). */
typedef struct {
  GTlsDatabase *tls_database;  /* NULL: the system trust store */
  const char   *ca_file;       /* its file, for messages */
  const char   *token;         /* Authorization: Bearer, or NULL */
} HttpAuth;

typedef struct {
  SoupSession  *session;
  SoupMessage  *msg;
  GCancellable *cancellable;
  GInputStream *stream;
  char         *reply;      /* HB_ALERTS_REPLY_MAX bytes, for a failure */
  char         *ca_file;    /* HttpAuth's, or NULL */
  GTlsCertificateFlags tls_errors; /* why the server's certificate was refused, if it was */
  gboolean      tls_refused; /* by on_http_network_event(), which cancelled the post */
  PostDone      done;
  gpointer      user_data;
} HttpPost;

/* @text as one valid UTF-8 line of at most @max bytes (NULL: "") */
static char *
printable (const char *text, gsize length, gsize max)
{
  g_autofree char *valid = NULL;

  if (text == NULL)
    return g_strdup ("");
  valid = g_utf8_make_valid (text, (gssize) MIN (length, max));
  /* a sequence cut at @max became U+FFFD: harmless */
  g_strdelimit (valid, "\r\n\t", ' ');
  return g_strstrip (g_steal_pointer (&valid));
}

static void
http_post_finish (HttpPost *p, gboolean delivered, const char *why)
{
  if (p->stream)
    {
      /* libsoup does not read the rest of the body here: the connection,
       * no longer reusable, is closed */
      g_input_stream_close (p->stream, NULL, NULL);
      g_clear_object (&p->stream);
    }
  g_signal_handlers_disconnect_by_data (p->msg, p);
  p->done (delivered, why, p->user_data);
  g_object_unref (p->msg);
  g_object_unref (p->session);
  g_clear_object (&p->cancellable);
  g_free (p->reply);
  g_free (p->ca_file);
  g_free (p);
}

/* Why a server's certificate was refused, for the log: "the certificate
 * of HOST is not signed by a trusted CA (…)". */
static char *
describe_tls_errors (HttpPost *p, const char *error_message)
{
  static const struct { GTlsCertificateFlags flag; const char *text; } texts[] = {
    { G_TLS_CERTIFICATE_UNKNOWN_CA, "is not signed by a trusted CA" },
    { G_TLS_CERTIFICATE_BAD_IDENTITY, "does not match the host name" },
    { G_TLS_CERTIFICATE_NOT_ACTIVATED, "is not valid yet" },
    { G_TLS_CERTIFICATE_EXPIRED, "has expired" },
    { G_TLS_CERTIFICATE_REVOKED, "is revoked" },
    { G_TLS_CERTIFICATE_INSECURE, "uses an insecure algorithm" },
    { G_TLS_CERTIFICATE_GENERIC_ERROR, "is not valid" },
  };
  GUri *uri = soup_message_get_uri (p->msg);
  GString *why = g_string_new (NULL);
  guint n = 0;

  g_string_append_printf (why, "the TLS certificate of %s ", g_uri_get_host (uri));
  for (gsize i = 0; i < G_N_ELEMENTS (texts); i++)
    if (p->tls_errors & texts[i].flag)
      g_string_append_printf (why, "%s%s", n++ ? " and " : "", texts[i].text);
  if (n == 0)
    g_string_append (why, "is not accepted");
  if (p->ca_file)
    g_string_append_printf (why, " (verified against ca-file=%s)", p->ca_file);
  else
    g_string_append (why, " (verified against the system trust store; ca-file= names another CA)");
  g_string_append_printf (why, ": %s", error_message);
  return g_string_free (why, FALSE);
}

/* glib-networking resumes a TLS session from a ticket it cached for the
 * server's address, name and port, whichever session (whichever CA bundle)
 * verified the certificate then: the process has one cache, and a resumed
 * session's certificate is not verified again. One section's server would
 * be trusted on another section's word. So each new connection's
 * certificate is verified here, against the session's own trust, before
 * anything is sent on it; one that does not verify cancels the post. */
static void
on_http_network_event (SoupMessage        *msg,
                       GSocketClientEvent  event,
                       GIOStream          *connection,
                       gpointer            user_data)
{
  HttpPost *p = user_data;
  GTlsDatabase *database;
  GTlsCertificate *peer;
  GSocketConnectable *identity;

  if (event != G_SOCKET_CLIENT_TLS_HANDSHAKED || !G_IS_TLS_CLIENT_CONNECTION (connection))
    return;
  database = soup_session_get_tls_database (p->session);
  peer = g_tls_connection_get_peer_certificate (G_TLS_CONNECTION (connection));
  identity = g_tls_client_connection_get_server_identity (G_TLS_CLIENT_CONNECTION (connection));
  if (database == NULL || peer == NULL)
    p->tls_errors = G_TLS_CERTIFICATE_GENERIC_ERROR;
  else
    p->tls_errors = g_tls_database_verify_chain (database, peer, G_TLS_DATABASE_PURPOSE_AUTHENTICATE_SERVER,
                                                 identity, NULL, G_TLS_DATABASE_VERIFY_NONE, NULL, NULL);
  if (p->tls_errors != 0)
    {
      p->tls_refused = TRUE;
      g_cancellable_cancel (p->cancellable);
    }
}

/* The server's certificate did not verify: remembered for the log, and
 * refused. */
static gboolean
on_http_accept_certificate (SoupMessage          *msg,
                            GTlsCertificate      *certificate,
                            GTlsCertificateFlags  errors,
                            gpointer              user_data)
{
  HttpPost *p = user_data;

  p->tls_errors = errors;
  return FALSE;
}

static void
on_http_reply_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  HttpPost *p = user_data;
  guint status = soup_message_get_status (p->msg);
  const char *location = soup_message_headers_get_one (soup_message_get_response_headers (p->msg), "Location");
  const char *reason = soup_message_get_reason_phrase (p->msg);
  g_autofree char *reply = NULL, *where = NULL, *phrase = NULL, *why = NULL;
  gsize n = 0;

  /* an error (the timeout, a reset) after the status: what came is enough */
  g_input_stream_read_all_finish (G_INPUT_STREAM (source), result, &n, NULL);
  reply = printable (p->reply, n, HB_ALERTS_REPLY_MAX);
  phrase = printable (reason, reason ? strlen (reason) : 0, 128);
  if (SOUP_STATUS_IS_REDIRECTION (status))
    {
      where = printable (location, location ? strlen (location) : 0, 1024);
      why = g_strdup_printf ("HTTP %u %s, Location: %s (redirects are not followed)%s%s", status, phrase,
                             *where ? where : "(none)", *reply ? ": " : "", reply);
    }
  else
    {
      why = g_strdup_printf ("HTTP %u %s%s%s", status, phrase, *reply ? ": " : "", reply);
    }
  http_post_finish (p, FALSE, why);
}

static void
on_http_sent (GObject *source, GAsyncResult *result, gpointer user_data)
{
  HttpPost *p = user_data;
  g_autoptr(GError) error = NULL;

  p->stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (p->stream == NULL)
    {
      g_autofree char *why = NULL;

      if (p->tls_errors != 0 && (p->tls_refused || !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)))
        why = describe_tls_errors (p, p->tls_refused ? "refused before sending" : error->message);
      http_post_finish (p, FALSE, why ? why : error->message);
      return;
    }
  if (SOUP_STATUS_IS_SUCCESSFUL (soup_message_get_status (p->msg)))
    {
      http_post_finish (p, TRUE, NULL);   /* the body is not read */
      return;
    }
  p->reply = g_malloc (HB_ALERTS_REPLY_MAX);
  g_input_stream_read_all_async (p->stream, p->reply, HB_ALERTS_REPLY_MAX, G_PRIORITY_DEFAULT, p->cancellable,
                                 on_http_reply_read, p);
}

/* The session that verifies https servers against @database (NULL: the
 * system trust store); one per CA bundle, so connections are kept alive
 * per alert as before. */
static SoupSession *
session_for (HbAlerts     *self,
             GTlsDatabase *database)
{
  SoupSession *session;

  if (database == NULL)
    return self->session;
  session = g_hash_table_lookup (self->sessions, database);
  if (session == NULL)
    {
      session = soup_session_new_with_options ("user-agent", "heartbeatd", "tls-database", database, NULL);
      g_hash_table_insert (self->sessions, g_object_ref (database), session);
    }
  return session;
}

/* POSTs @msg as @auth says; @done is called once, at the end (@cancellable
 * cancelled: failed, with its error). */
static void
http_post (HbAlerts       *self,
           SoupMessage    *msg,
           const HttpAuth *auth,
           GCancellable   *cancellable,
           PostDone        done,
           gpointer        user_data)
{
  HttpPost *p = g_new0 (HttpPost, 1);

  p->session = g_object_ref (session_for (self, auth->tls_database));
  p->msg = g_object_ref (msg);
  p->cancellable = cancellable ? g_object_ref (cancellable) : g_cancellable_new ();
  p->ca_file = g_strdup (auth->ca_file);
  p->done = done;
  p->user_data = user_data;
  soup_message_add_flags (msg, SOUP_MESSAGE_NO_REDIRECT);
  if (auth->token)
    {
      g_autofree char *value = g_strconcat ("Bearer ", auth->token, NULL);

      soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", value);
      memset (value, 0, strlen (value));
    }
  g_signal_connect (msg, "accept-certificate", G_CALLBACK (on_http_accept_certificate), p);
  g_signal_connect (msg, "network-event", G_CALLBACK (on_http_network_event), p);
  soup_session_send_async (p->session, msg, G_PRIORITY_DEFAULT, p->cancellable, on_http_sent, p);
}

/* ------------------------------------------------------------------ */
/* HTTP deliveries (webhook, Alertmanager)                             */

typedef struct {
  HbAlerts            *self;      /* a reference */
  const HbConfigAlert *alert;     /* kept alive by self->alerts' reference */
  GPtrArray           *alerts;    /* that reference */
  char                *url;
  GBytes              *body;
  guint                attempt;
  GCancellable        *cancellable;
  guint                timeout_id;
} Delivery;

static void delivery_send (Delivery *d);

static void
delivery_free (Delivery *d)
{
  d->self->pending--;
  g_clear_handle_id (&d->timeout_id, g_source_remove);
  g_clear_object (&d->cancellable);
  g_ptr_array_unref (d->alerts);
  g_bytes_unref (d->body);
  g_free (d->url);
  g_object_unref (d->self);
  g_free (d);
}

static gboolean
on_delivery_retry (gpointer user_data)
{
  delivery_send (user_data);
  return G_SOURCE_REMOVE;
}

static gboolean
on_delivery_timeout (gpointer user_data)
{
  Delivery *d = user_data;

  d->timeout_id = 0;
  g_cancellable_cancel (d->cancellable);
  return G_SOURCE_REMOVE;
}

static void
on_delivered (gboolean    delivered,
              const char *why,
              gpointer    user_data)
{
  Delivery *d = user_data;

  g_clear_handle_id (&d->timeout_id, g_source_remove);
  if (delivered)
    {
      g_debug ("[alert:%s] delivered to %s (attempt %u)", d->alert->name, d->url, d->attempt);
      delivery_free (d);
      return;
    }
  if (g_cancellable_is_cancelled (d->self->cancellable))
    {
      delivery_free (d);
      return;
    }

  if (d->attempt < d->alert->retries)
    {
      gint64 delay = d->alert->retry_interval_usec;

      if (d->alert->exponential)
        delay <<= MIN (d->attempt - 1, 20u);
      g_message ("[alert:%s] %s failed (%s), attempt %u of %u; again in %.1f s", d->alert->name,
                 d->url, why, d->attempt, d->alert->retries, (double) delay / G_USEC_PER_SEC);
      g_timeout_add ((guint) MAX (delay / 1000, 1), on_delivery_retry, d);
      return;
    }
  g_warning ("[alert:%s] giving up on %s after %u attempts: %s", d->alert->name, d->url, d->attempt, why);
  delivery_free (d);
}

static void
delivery_send (Delivery *d)
{
  g_autoptr(SoupMessage) msg = soup_message_new ("POST", d->url);

  if (msg == NULL)
    {
      /* the configuration checked it is a URL; should it not parse here */
      g_warning ("[alert:%s] cannot post to %s", d->alert->name, d->url);
      delivery_free (d);
      return;
    }
  d->attempt++;
  g_clear_object (&d->cancellable);
  d->cancellable = g_cancellable_new ();
  g_signal_connect_object (d->self->cancellable, "cancelled", G_CALLBACK (g_cancellable_cancel),
                           d->cancellable, G_CONNECT_SWAPPED);
  soup_message_set_request_body_from_bytes (msg, "application/json", d->body);
  d->timeout_id = g_timeout_add ((guint) MAX (d->alert->timeout_usec / 1000, 1), on_delivery_timeout, d);
  http_post (d->self, msg,
             &(HttpAuth) { d->alert->tls_database, d->alert->ca_file, d->alert->token },
             d->cancellable, on_delivered, d);
}

static void
deliver (HbAlerts            *self,
         const HbConfigAlert *alert,
         const char          *url,
         JsonNode            *body)
{
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  Delivery *d;
  gsize length;
  char *text;

  if (!may_deliver (self, alert))
    return;
  json_generator_set_root (generator, body);
  text = json_generator_to_data (generator, &length);

  d = g_new0 (Delivery, 1);
  d->self = g_object_ref (self);
  d->alerts = g_ptr_array_ref (self->alerts);
  d->alert = alert;
  d->url = g_strdup (url);
  d->body = g_bytes_new_take (text, length);
  self->pending++;
  delivery_send (d);
}

static char *
now_iso8601 (void)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();

  return g_date_time_format (now, "%Y-%m-%dT%H:%M:%S.%fZ");
}

/* Wall-clock µs as ISO 8601 in UTC, to the second. */
static char *
usec_iso8601 (gint64 usec)
{
  g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc (usec / G_USEC_PER_SEC);

  return t ? g_date_time_format (t, "%Y-%m-%dT%H:%M:%SZ") : g_strdup ("");
}

/* What an event says of a job: the run it missed, or how its last run
 * ended (see Event). */
static void
event_read_job (Event *e)
{
  g_autoptr(GVariant) last_run = NULL;
  gint32 status;

  e->exit_status = -1;
  e->due = heartbeat_agent_get_late_due (e->source);
  if (heartbeat_agent_get_state (e->source) != HEARTBEAT_AGENT_STATE_ERROR)
    return;
  last_run = heartbeat_agent_get_last_run (e->source);
  if (last_run != NULL)
    {
      g_variant_ref_sink (last_run);
      if (g_variant_lookup (last_run, "exit-status", "i", &status))
        e->exit_status = status;
    }
}

static void
add_string (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, value ? value : "");
}

static void
run_webhook (HbAlerts *self, const HbConfigAlert *alert, const Event *e)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *time = now_iso8601 ();

  json_builder_begin_object (b);
  add_string (b, "alert", alert->name);
  add_string (b, "event", e->event);
  add_string (b, "agent", e->agent);
  add_string (b, "state", e->state);
  add_string (b, "status", e->status);
  add_string (b, "reason", e->reason);
  add_string (b, "task-id", e->task);
  add_string (b, "host", self->host);
  add_string (b, "time", time);
  if (e->usec_key)
    {
      json_builder_set_member_name (b, e->usec_key);
      json_builder_add_int_value (b, e->usec);
    }
  if (e->output)
    add_string (b, "output", e->output);
  if (e->due)
    {
      g_autofree char *due = usec_iso8601 (e->due);

      add_string (b, "due", due);
    }
  if (e->exit_status >= 0)
    {
      json_builder_set_member_name (b, "exit-status");
      json_builder_add_int_value (b, e->exit_status);
    }
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  deliver (self, alert, alert->urls[0], root);
}

/* ------------------------------------------------------------------ */
/* Alertmanager                                                        */
/*
 * Alertmanager's client contract (https://prometheus.io/docs/alerting/
 * latest/clients/): a client sends an alert again and again while it is
 * active, each time with an endsAt in the future, and ends it by sending
 * it once more with endsAt set to when it ended. Labels identify an alert;
 * ours are exactly those of the shipped Prometheus rules
 * (data/prometheus/heartbeat-rules.yml) — alertname, agent, hostname,
 * severity — so that Alertmanager deduplicates the two paths.
 *
 * The action follows the agents' states, not their events: for each
 * Alertmanager URL and agent there is one AmEntry, holding at most one
 * firing alert (that of the agent's current alerting state, if an
 * [alert:NAME] section with this URL chose its event) and the alerts that
 * ended and are still to be told. An entry has at most one post in flight
 * (or waiting for its retry); whatever changes meanwhile goes into the next
 * post, which is built from the entry as it is then: the latest state
 * wins, and a resolve never overtakes the firing post it ends.
 *
 * no-heartbeat (a declared agent that never beat) raises nothing here:
 * HeartbeatAgentNeverBeat needs the rule's `for: 15m`, which only
 * Prometheus applies.
 */

typedef struct {
  char       *alertname;
  const char *severity;
  char       *summary;
  char       *description;
  char       *reason;      /* the agent's, when the alert began */
  gint64      starts_at;   /* wall clock, µs */
  gint64      ends_at;     /* wall clock, µs: when it ended; 0 while firing */
  gint64      sent_until;  /* the latest endsAt a post of it carried; 0: never posted */
} AmAlert;

struct _AmEntry {
  HbAlerts     *self;        /* not a reference: self->am owns the entry */
  char         *key;         /* "url\nagent", its key in self->am */
  char         *url;         /* the Alertmanager, as configured (no trailing /) */
  char         *agent;
  /* delivery settings, from the [alert:NAME] section that last wanted it */
  char         *name;
  guint         retries;
  gint64        retry_interval_usec;
  gboolean      exponential;
  gint64        timeout_usec;
  GTlsDatabase *tls_database; /* ca-file=, or NULL */
  char         *ca_file;
  char         *token;        /* token-file='s, or NULL */

  AmAlert      *firing;      /* or NULL */
  GPtrArray    *resolved;    /* AmAlert: ended, not yet delivered; oldest first */

  gboolean      in_flight;
  guint         n_resolved_in_flight; /* the first ones of resolved */
  gboolean      dirty;       /* changed since the post in flight was built */
  guint         attempt;
  guint         retry_id;
  guint         resend_id;
  guint         timeout_id;
  GCancellable *cancellable;
};

static void am_post (AmEntry *e);

static void
am_alert_free (AmAlert *a)
{
  g_free (a->alertname);
  g_free (a->summary);
  g_free (a->description);
  g_free (a->reason);
  g_free (a);
}

static void
am_entry_free (AmEntry *e)
{
  g_clear_handle_id (&e->retry_id, g_source_remove);
  g_clear_handle_id (&e->resend_id, g_source_remove);
  g_clear_handle_id (&e->timeout_id, g_source_remove);
  g_clear_object (&e->cancellable);
  g_clear_pointer (&e->firing, am_alert_free);
  g_ptr_array_unref (e->resolved);
  g_free (e->key);
  g_free (e->url);
  g_free (e->agent);
  g_free (e->name);
  g_clear_object (&e->tls_database);
  g_free (e->ca_file);
  if (e->token)
    memset (e->token, 0, strlen (e->token));
  g_free (e->token);
  g_free (e);
}

/* Forgets @e once it has nothing left to tell. */
static void
am_entry_release (AmEntry *e)
{
  if (e->firing == NULL && e->resolved->len == 0 && !e->in_flight && e->retry_id == 0)
    g_hash_table_remove (e->self->am, e->key);
}

static char *
format_realtime (gint64 usec)
{
  g_autoptr(GDateTime) seconds = g_date_time_new_from_unix_utc (usec / G_USEC_PER_SEC);
  g_autoptr(GDateTime) time = g_date_time_add (seconds, usec % G_USEC_PER_SEC);

  return g_date_time_format (time, "%Y-%m-%dT%H:%M:%S.%fZ");
}

static void
am_add_alert (JsonBuilder *b, HbAlerts *self, const AmEntry *e, const AmAlert *a, gint64 ends_at)
{
  g_autofree char *starts = format_realtime (a->starts_at);
  g_autofree char *ends = format_realtime (ends_at);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "labels");
  json_builder_begin_object (b);
  add_string (b, "alertname", a->alertname);
  add_string (b, "agent", e->agent);
  add_string (b, "hostname", self->host);
  add_string (b, "severity", a->severity);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "annotations");
  json_builder_begin_object (b);
  add_string (b, "summary", a->summary);
  add_string (b, "description", a->description);
  add_string (b, "reason", a->reason);
  json_builder_end_object (b);
  add_string (b, "startsAt", starts);
  add_string (b, "endsAt", ends);
  json_builder_end_object (b);
}

static gboolean
am_on_retry (gpointer user_data)
{
  AmEntry *e = user_data;

  e->retry_id = 0;
  am_post (e);
  return G_SOURCE_REMOVE;
}

static gboolean
am_on_resend (gpointer user_data)
{
  AmEntry *e = user_data;

  e->resend_id = 0;
  e->attempt = 0;
  am_post (e);
  return G_SOURCE_REMOVE;
}

static gboolean
am_on_timeout (gpointer user_data)
{
  AmEntry *e = user_data;

  e->timeout_id = 0;
  g_cancellable_cancel (e->cancellable);
  return G_SOURCE_REMOVE;
}

static void
am_on_posted (gboolean    delivered,
              const char *why,
              gpointer    user_data)
{
  AmEntry *e = user_data;
  HbAlerts *self = e->self;

  g_clear_handle_id (&e->timeout_id, g_source_remove);
  e->in_flight = FALSE;
  if (g_cancellable_is_cancelled (self->cancellable))
    {
      g_object_unref (self);   /* may free @e with self->am */
      return;
    }

  if (delivered)
    {
      g_debug ("[alert:%s] %s told about %s (attempt %u)", e->name, e->url, e->agent, e->attempt);
      g_ptr_array_remove_range (e->resolved, 0, e->n_resolved_in_flight);
      e->attempt = 0;
    }
  else
    {
      if (e->attempt < MAX (e->retries, 1u))
        {
          gint64 delay = e->retry_interval_usec;

          if (e->exponential)
            delay <<= MIN (e->attempt - 1, 20u);
          g_message ("[alert:%s] %s failed for %s (%s), attempt %u of %u; again in %.1f s", e->name,
                     e->url, e->agent, why, e->attempt, e->retries, (double) delay / G_USEC_PER_SEC);
          e->n_resolved_in_flight = 0;
          e->retry_id = g_timeout_add ((guint) MAX (delay / 1000, 1), am_on_retry, e);
          g_object_unref (self);
          return;
        }
      g_warning ("[alert:%s] giving up on %s for %s after %u attempts: %s; again in %.0f s", e->name,
                 e->url, e->agent, e->attempt, why, (double) self->resend_usec / G_USEC_PER_SEC);
      e->attempt = 0;
    }
  e->n_resolved_in_flight = 0;

  if (e->dirty)
    am_post (e);                /* what changed meanwhile, at once */
  else if (e->firing || e->resolved->len > 0)
    e->resend_id = g_timeout_add ((guint) MAX (self->resend_usec / 1000, 1), am_on_resend, e);
  else
    am_entry_release (e);
  g_object_unref (self);
}

/* Posts what @e has to tell (nothing may be in flight): the resolves not
 * yet delivered, oldest first, then the firing alert, valid for
 * HB_ALERTMANAGER_VALIDITY resend intervals. */
static void
am_post (AmEntry *e)
{
  HbAlerts *self = e->self;
  g_autoptr(JsonBuilder) b = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(JsonGenerator) generator = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autofree char *url = NULL;
  gint64 now = g_get_real_time ();
  gsize length;
  char *text;

  g_assert (!e->in_flight && e->retry_id == 0);
  g_clear_handle_id (&e->resend_id, g_source_remove);
  e->dirty = FALSE;

  /* an alert whose last endsAt has passed is already over in Alertmanager */
  for (guint i = 0; i < e->resolved->len;)
    {
      AmAlert *a = g_ptr_array_index (e->resolved, i);

      if (a->sent_until <= now)
        g_ptr_array_remove_index (e->resolved, i);
      else
        i++;
    }
  if (e->firing == NULL && e->resolved->len == 0)
    {
      e->attempt = 0;
      am_entry_release (e);
      return;
    }

  b = json_builder_new ();
  json_builder_begin_array (b);
  for (guint i = 0; i < e->resolved->len; i++)
    {
      AmAlert *a = g_ptr_array_index (e->resolved, i);

      am_add_alert (b, self, e, a, a->ends_at);
    }
  if (e->firing)
    {
      e->firing->sent_until = now + HB_ALERTMANAGER_VALIDITY * self->resend_usec;
      am_add_alert (b, self, e, e->firing, e->firing->sent_until);
    }
  json_builder_end_array (b);
  root = json_builder_get_root (b);
  generator = json_generator_new ();
  json_generator_set_root (generator, root);
  text = json_generator_to_data (generator, &length);
  body = g_bytes_new_take (text, length);

  e->n_resolved_in_flight = e->resolved->len;
  e->in_flight = TRUE;
  e->attempt++;
  g_clear_object (&e->cancellable);
  e->cancellable = g_cancellable_new ();
  g_signal_connect_object (self->cancellable, "cancelled", G_CALLBACK (g_cancellable_cancel),
                           e->cancellable, G_CONNECT_SWAPPED);
  url = g_strconcat (e->url, "/api/v2/alerts", NULL);
  msg = soup_message_new ("POST", url);
  if (msg == NULL)
    {
      /* the configuration checked it is a URL; should it not parse here */
      g_warning ("[alert:%s] cannot post to %s", e->name, url);
      e->in_flight = FALSE;
      e->n_resolved_in_flight = 0;
      e->attempt = 0;
      g_clear_pointer (&e->firing, am_alert_free);
      g_ptr_array_set_size (e->resolved, 0);
      am_entry_release (e);
      return;
    }
  soup_message_set_request_body_from_bytes (msg, "application/json", body);
  e->timeout_id = g_timeout_add ((guint) MAX (e->timeout_usec / 1000, 1), am_on_timeout, e);
  g_object_ref (self);
  http_post (self, msg, &(HttpAuth) { e->tls_database, e->ca_file, e->token }, e->cancellable, am_on_posted, e);
}

/* Something changed in @e: post now, or after the post in flight. */
static void
am_kick (AmEntry *e)
{
  e->dirty = TRUE;
  if (!e->in_flight && e->retry_id == 0)
    {
      e->attempt = 0;
      am_post (e);
    }
}

/* The alert an agent's state raises, with the labels and annotations of
 * the shipped rule of that name (Alertmanager keeps the annotations it
 * received last, so both paths say the same); FALSE for the states that
 * raise none. */
typedef struct {
  const char *event;       /* the event that [alert:NAME] events= names */
  const char *alertname;
  const char *severity;
  const char *summary;     /* printf: agent, hostname */
  const char *description; /* printf: hostname, agent */
} AmKind;

static const AmKind am_kinds[] = {
  { "stale", "HeartbeatAgentStale", "warning", "Agent %s on %s has gone quiet",
    "heartbeatd on %s reports %s stale: no activity for longer than its stale threshold." },
  { "timed-out", "HeartbeatAgentTimedOut", "critical", "Agent %s on %s timed out",
    "heartbeatd on %s reports %s timed out: its run lasted longer than its timeout threshold." },
  { "gone", "HeartbeatAgentGone", "critical", "Agent %s on %s is gone",
    "heartbeatd on %s reports %s gone: its process or bus connection ended without unregistering." },
  { "error", "HeartbeatAgentError", "critical", "Agent %s on %s reports an error",
    "heartbeatd on %s reports %s in state error." },
  /* a job: the shipped rules say these instead of stale and error */
  { "stale", "HeartbeatJobLate", "warning", "Job %s on %s did not run",
    "heartbeatd on %s reports %s late: a run that was due did not start within its grace." },
  { "error", "HeartbeatJobFailed", "critical", "Job %s on %s failed",
    "heartbeatd on %s reports the last run of %s failed." },
};

static const AmKind *
am_kind_for_state (HeartbeatAgentState state)
{
  switch (state)
    {
    case HEARTBEAT_AGENT_STATE_STALE:
      return &am_kinds[0];
    case HEARTBEAT_AGENT_STATE_TIMED_OUT:
      return &am_kinds[1];
    case HEARTBEAT_AGENT_STATE_GONE:
      return &am_kinds[2];
    case HEARTBEAT_AGENT_STATE_ERROR:
      return &am_kinds[3];
    case HEARTBEAT_AGENT_STATE_HEALTHY:
    case HEARTBEAT_AGENT_STATE_NO_HEARTBEAT:
    case HEARTBEAT_AGENT_STATE_PAUSED:
    default:
      return NULL;
    }
}

/* The alert @agent raises, as the shipped rules judge it: a late job's
 * HeartbeatJobLate, a job whose last run failed HeartbeatJobFailed, else
 * that of its state. */
static const AmKind *
am_kind_for_agent (HeartbeatAgent *agent)
{
  g_autoptr(GVariant) last_run = NULL;
  const char *result = NULL;

  /* paused: nothing, whatever its runs say (resolves what was firing) */
  if (heartbeat_agent_get_state (agent) == HEARTBEAT_AGENT_STATE_PAUSED)
    return NULL;
  if (heartbeat_agent_get_late_due (agent) != 0)
    return &am_kinds[4];
  last_run = heartbeat_agent_get_last_run (agent);
  if (last_run != NULL && g_variant_lookup (g_variant_ref_sink (last_run), "result", "&s", &result) &&
      g_strcmp0 (result, "failure") == 0)
    return &am_kinds[5];
  return am_kind_for_state (heartbeat_agent_get_state (agent));
}

/* The rule's description, and for a job what the rule cannot know: the
 * run it missed, or how its last run ended; then the agent's reason
 * (@reason, nullable) as "Reason: …". */
static char *
am_description (HbAlerts     *self,
                const AmKind *kind,
                const char   *id,
                const char   *reason)
{
  GString *text = g_string_new (NULL);
  HeartbeatAgent *agent = heartbeat_monitor_lookup (self->monitor, id);

  g_string_append_printf (text, kind->description, self->host, id);
  if (agent != NULL)
    {
      Event e = { .source = agent };

      event_read_job (&e);
      if (e.due)
        {
          g_autofree char *due = usec_iso8601 (e.due);

          g_string_append_printf (text, " Its run due at %s did not start.", due);
        }
      if (e.exit_status >= 0)
        g_string_append_printf (text, " Its last run exited with status %d.", e.exit_status);
    }
  if (reason && *reason)
    g_string_append_printf (text, " Reason: %s", reason);
  return g_string_free (text, FALSE);
}

static char *
am_base_url (const char *target)
{
  gsize n = strlen (target);

  while (n > 0 && target[n - 1] == '/')
    n--;
  return g_strndup (target, n);
}

/* Makes the entry of @url and @id hold the alert of @kind firing (NULL:
 * none), telling Alertmanager what ended and what began, at @now (wall
 * clock, µs: the same for every Alertmanager told of one change). @section,
 * if not NULL, is the [alert:NAME] that wants it, for the delivery
 * settings. */
static void
am_apply (HbAlerts            *self,
          const char          *url,
          const char          *id,
          const HbConfigAlert *section,
          const AmKind        *kind,
          gint64               now)
{
  const char *alertname = kind ? kind->alertname : NULL;
  HeartbeatAgent *agent = heartbeat_monitor_lookup (self->monitor, id);
  g_autofree char *key = g_strconcat (url, "\n", id, NULL);
  AmEntry *e = g_hash_table_lookup (self->am, key);
  gboolean changed = FALSE;

  if (e == NULL)
    {
      if (alertname == NULL)
        return;
      e = g_new0 (AmEntry, 1);
      e->self = self;
      e->key = g_steal_pointer (&key);
      e->url = g_strdup (url);
      e->agent = g_strdup (id);
      e->resolved = g_ptr_array_new_with_free_func ((GDestroyNotify) am_alert_free);
      g_hash_table_insert (self->am, e->key, e);
    }
  if (section)
    {
      g_free (e->name);
      e->name = g_strdup (section->name);
      e->retries = section->retries;
      e->retry_interval_usec = section->retry_interval_usec;
      e->exponential = section->exponential;
      e->timeout_usec = section->timeout_usec;
      g_set_object (&e->tls_database, section->tls_database);
      g_free (e->ca_file);
      e->ca_file = g_strdup (section->ca_file);
      if (e->token)
        memset (e->token, 0, strlen (e->token));
      g_free (e->token);
      e->token = g_strdup (section->token);
    }

  if (e->firing && g_strcmp0 (e->firing->alertname, alertname) != 0)
    {
      AmAlert *a = g_steal_pointer (&e->firing);

      if (a->sent_until != 0)
        {
          a->ends_at = MAX (now, a->starts_at);
          g_ptr_array_add (e->resolved, a);
          changed = TRUE;
        }
      else
        {
          am_alert_free (a);   /* never told: nothing to take back */
        }
    }
  if (alertname && e->firing == NULL)
    {
      AmAlert *a = g_new0 (AmAlert, 1);

      a->alertname = g_strdup (alertname);
      a->severity = kind->severity;
      a->starts_at = now;
      a->summary = g_strdup_printf (kind->summary, id, self->host);
      a->reason = agent ? hb_agent_record_reason_full (agent, self->units) : g_strdup ("");
      a->description = am_description (self, kind, id, a->reason);
      e->firing = a;
      changed = TRUE;
    }

  if (changed)
    am_kick (e);
  else
    am_entry_release (e);
}

/* Brings every Alertmanager's view of agent @id in line with @agent's
 * state (@agent NULL: it is no longer listed). */
static void
am_sync_agent (HbAlerts       *self,
               const char     *id,
               HeartbeatAgent *agent)
{
  const AmKind *kind;
  g_autoptr(GHashTable) urls = NULL;    /* base URL → the section that wants the alert, or NULL */
  GHashTableIter iter;
  gpointer url, section;
  gint64 now = g_get_real_time ();

  if (self->n_am_sections == 0 && g_hash_table_size (self->am) == 0)
    return;
  kind = agent ? am_kind_for_agent (agent) : NULL;
  urls = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; self->alerts && i < self->alerts->len; i++)
    {
      const HbConfigAlert *alert = g_ptr_array_index (self->alerts, i);
      gboolean wanted;

      if (alert->action != HB_ALERT_ALERTMANAGER)
        continue;
      wanted = kind && g_strv_contains ((const char *const *) alert->events, kind->event) &&
               g_pattern_match_simple (alert->agents, id);
      /* every Alertmanager of the section on its own: one down delays
       * and loses nothing of the others */
      for (gsize u = 0; alert->urls[u]; u++)
        {
          char *base = am_base_url (alert->urls[u]);

          if (g_hash_table_lookup (urls, base))
            g_free (base);      /* an earlier section wants it already */
          else
            g_hash_table_insert (urls, base, wanted ? (gpointer) alert : NULL);
        }
    }

  g_hash_table_iter_init (&iter, urls);
  while (g_hash_table_iter_next (&iter, &url, &section))
    am_apply (self, url, id, section, section ? kind : NULL, now);
}

/* After a reload: every agent, and what was told to Alertmanagers no
 * longer configured is resolved. */
static void
am_reconcile (HbAlerts *self)
{
  g_autoptr(GPtrArray) agents = heartbeat_monitor_list_agents (self->monitor);
  g_autoptr(GHashTable) configured = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GPtrArray) stray = g_ptr_array_new_with_free_func (g_free);   /* "url", "agent" pairs */
  GHashTableIter iter;
  AmEntry *e;

  self->n_am_sections = 0;
  for (guint i = 0; self->alerts && i < self->alerts->len; i++)
    {
      const HbConfigAlert *alert = g_ptr_array_index (self->alerts, i);

      if (alert->action == HB_ALERT_ALERTMANAGER)
        {
          self->n_am_sections++;
          for (gsize u = 0; alert->urls[u]; u++)
            g_hash_table_add (configured, am_base_url (alert->urls[u]));
        }
    }

  g_hash_table_iter_init (&iter, self->am);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &e))
    if (!g_hash_table_contains (configured, e->url) ||
        heartbeat_monitor_lookup (self->monitor, e->agent) == NULL)
      {
        g_ptr_array_add (stray, g_strdup (e->url));
        g_ptr_array_add (stray, g_strdup (e->agent));
      }
  for (guint i = 0; i < stray->len; i += 2)
    am_apply (self, g_ptr_array_index (stray, i), g_ptr_array_index (stray, i + 1), NULL, NULL, g_get_real_time ());

  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);

      am_sync_agent (self, heartbeat_agent_get_id (agent), agent);
    }
}
/* ------------------------------------------------------------------ */
/* exec: see "Programs" at the top                                     */

/* read at once */
#define RUN_CHUNK 16384
/* read after the program's exit, at most: what it left behind may write
 * on, and is not waited for */
#define RUN_DRAIN_MAX (16 * RUN_CHUNK)
/* of the tail's last line, in the warning of a failure */
#define RUN_LAST_LINE_MAX 256

typedef struct {
  HbAlerts   *self;
  char       *name;
  char       *agent;
  GPid        pid;          /* and its process group */
  int         fd;           /* the pipe's read end; -1 once closed */
  guint       read_id;      /* 0 once the pipe said EOF */
  guint       watch_id;
  guint       kill_id;
  gint64      timeout_usec;
  gboolean    timed_out;
  HbTail     *tail;         /* the last HB_ALERTS_OUTPUT_TAIL bytes read */
} Run;

static void
run_free (Run *run)
{
  g_clear_handle_id (&run->kill_id, g_source_remove);
  g_clear_handle_id (&run->read_id, g_source_remove);
  g_clear_handle_id (&run->watch_id, g_source_remove);
  if (run->fd >= 0)
    g_close (run->fd, NULL);
  hb_tail_free (run->tail);
  run->self->pending--;
  g_object_unref (run->self);
  g_free (run->name);
  g_free (run->agent);
  g_free (run);
}

/* SIGKILL to the program's process group: the program, and what it
 * started that stayed in its group. Called before the program is reaped
 * (timeout) or at once after (exit). The kernel does not hand out a pid
 * while a group of that id has members, so the id still names this group;
 * with no member left, it fails with ESRCH (unless the pid was handed out
 * again, to a new group leader, in between: not a practical worry). */
static void
run_kill_group (Run *run)
{
  if (kill (-run->pid, SIGKILL) < 0 && errno != ESRCH)
    g_debug ("[alert:%s] cannot kill process group %d: %s", run->name, (int) run->pid, g_strerror (errno));
}

typedef enum {
  RUN_READ,
  RUN_NOTHING_NOW,
  RUN_END,        /* EOF, or an error */
} RunRead;

static RunRead
run_read_chunk (Run *run)
{
  guint8 buffer[RUN_CHUNK];
  gssize n;

  do
    n = read (run->fd, buffer, sizeof buffer);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return errno == EAGAIN ? RUN_NOTHING_NOW : RUN_END;
  if (n == 0)
    return RUN_END;
  hb_tail_append (run->tail, buffer, (gsize) n);
  return RUN_READ;
}

/* One chunk per turn of the loop, at G_PRIORITY_LOW: a program writing
 * without end never keeps D-Bus calls waiting. */
static gboolean
on_run_output (int fd, GIOCondition condition, gpointer user_data)
{
  Run *run = user_data;

  if (run_read_chunk (run) != RUN_END)
    return G_SOURCE_CONTINUE;
  run->read_id = 0;    /* its exit ends the run */
  return G_SOURCE_REMOVE;
}

static gboolean
on_run_too_long (gpointer user_data)
{
  Run *run = user_data;

  run->kill_id = 0;
  run->timed_out = TRUE;
  run_kill_group (run);    /* its exit ends the run */
  return G_SOURCE_REMOVE;
}

/* Logs the output's tail once, and a warning for a failure with the
 * tail's last line. */
static void
run_log (Run *run, int wait_status)
{
  g_autofree char *output = NULL;
  g_autofree char *last = NULL;
  g_autofree char *why = NULL;

  output = g_strchomp (hb_tail_get_text (run->tail));
  if (*output)
    {
      g_autofree char *message = NULL;
      const char *nl = strrchr (output, '\n');
      guint64 before = hb_tail_get_dropped (run->tail);

      if (before > 0)
        message = g_strdup_printf ("[alert:%s] (%" G_GUINT64_FORMAT " bytes of output before this) %s",
                                   run->name, before, output);
      else
        message = g_strdup_printf ("[alert:%s] %s", run->name, output);
      g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "MESSAGE", "%s", message,
                        "AGENT_ID", run->agent, NULL);
      last = g_strstrip (hb_utf8_tail (nl ? nl + 1 : output, RUN_LAST_LINE_MAX));
    }

  if (run->timed_out)
    why = g_strdup_printf ("the program ran too long (timeout %.1f s); killed it and its process group",
                           (double) run->timeout_usec / G_USEC_PER_SEC);
  else if (WIFEXITED (wait_status) && WEXITSTATUS (wait_status) != 0)
    why = g_strdup_printf ("the program exited with status %d", WEXITSTATUS (wait_status));
  else if (WIFSIGNALED (wait_status))
    why = g_strdup_printf ("the program was killed by signal %d (%s)", WTERMSIG (wait_status),
                           g_strsignal (WTERMSIG (wait_status)));
  if (why)
    g_warning ("[alert:%s] %s%s%s", run->name, why, last && *last ? ": " : "", last && *last ? last : "");
}

static void
on_run_exited (GPid pid, int wait_status, gpointer user_data)
{
  Run *run = user_data;
  guint n = 0;

  run->watch_id = 0;
  /* what it wrote before it ended, as far as it is there now */
  while (run->read_id != 0 && n++ < RUN_DRAIN_MAX / RUN_CHUNK && run_read_chunk (run) == RUN_READ)
    ;
  /* what it left behind in its group ends with it; the pipe is closed
   * whoever else may hold it */
  run_kill_group (run);
  g_spawn_close_pid (pid);
  run_log (run, wait_status);
  run_free (run);
}

static void
run_child_setup (gpointer user_data)
{
  /* a group of its own, which the daemon ends (async-signal-safe) */
  setpgid (0, 0);
}

static void
run_exec (HbAlerts *self, const HbConfigAlert *alert, const Event *e)
{
  g_auto(GStrv) envp = g_get_environ ();
  g_autoptr(GError) error = NULL;
  const char *argv[] = { alert->target, NULL };
  int fds[2];
  GPid pid;
  gboolean spawned;
  Run *run;

  if (!may_deliver (self, alert))
    return;
  envp = g_environ_setenv (envp, "HB_ALERT", alert->name, TRUE);
  envp = g_environ_setenv (envp, "HB_AGENT", e->agent, TRUE);
  envp = g_environ_setenv (envp, "HB_EVENT", e->event, TRUE);
  envp = g_environ_setenv (envp, "HB_STATE", e->state ? e->state : "", TRUE);
  envp = g_environ_setenv (envp, "HB_STATUS", e->status ? e->status : "", TRUE);
  envp = g_environ_setenv (envp, "HB_REASON", e->reason ? e->reason : "", TRUE);
  envp = g_environ_setenv (envp, "HB_TASK", e->task ? e->task : "", TRUE);
  envp = g_environ_setenv (envp, "HB_HOST", self->host, TRUE);
  if (e->output)
    envp = g_environ_setenv (envp, "HB_OUTPUT", e->output, TRUE);
  else
    envp = g_environ_unsetenv (envp, "HB_OUTPUT");
  envp = g_environ_unsetenv (envp, "HB_DUE");
  envp = g_environ_unsetenv (envp, "HB_EXIT_STATUS");
  if (e->due)
    {
      g_autofree char *due = usec_iso8601 (e->due);

      envp = g_environ_setenv (envp, "HB_DUE", due, TRUE);
    }
  if (e->exit_status >= 0)
    {
      g_autofree char *status = g_strdup_printf ("%d", e->exit_status);

      envp = g_environ_setenv (envp, "HB_EXIT_STATUS", status, TRUE);
    }
  /* the service manager's socket is the daemon's to speak on (systemd
   * would log each message from another pid as refused) */
  envp = g_environ_unsetenv (envp, "NOTIFY_SOCKET");

  /* stdout and stderr on one pipe; the child's other fds are closed */
  if (!g_unix_open_pipe (fds, FD_CLOEXEC, &error))
    {
      g_warning ("[alert:%s] cannot run %s: %s", alert->name, alert->target, error->message);
      return;
    }
  spawned = g_spawn_async_with_pipes_and_fds (NULL, argv, (const char *const *) envp,
                                              G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH,
                                              run_child_setup, NULL, -1, fds[1], fds[1], NULL, NULL, 0,
                                              &pid, NULL, NULL, NULL, &error);
  g_close (fds[1], NULL);
  if (!spawned)
    {
      g_warning ("[alert:%s] cannot run %s: %s", alert->name, alert->target, error->message);
      g_close (fds[0], NULL);
      return;
    }
  /* as the child does: whichever runs first, the group exists before a
   * kill could name it (EACCES once it ran exec: it did it then) */
  setpgid (pid, pid);
  g_unix_set_fd_nonblocking (fds[0], TRUE, NULL);

  run = g_new0 (Run, 1);
  run->self = g_object_ref (self);
  run->name = g_strdup (alert->name);
  run->agent = g_strdup (e->agent);
  run->pid = pid;
  run->fd = fds[0];
  run->timeout_usec = alert->timeout_usec;
  run->tail = hb_tail_new (HB_ALERTS_OUTPUT_TAIL);
  self->pending++;
  run->read_id = g_unix_fd_add_full (G_PRIORITY_LOW, run->fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_run_output, run, NULL);
  run->watch_id = g_child_watch_add (pid, on_run_exited, run);
  run->kill_id = g_timeout_add ((guint) MAX (alert->timeout_usec / 1000, 1), on_run_too_long, run);
}

/* ------------------------------------------------------------------ */
/* restart-unit                                                        */

typedef struct {
  HbUnits *units;   /* nullable */
  char    *unit;
  char    *what;
} Restart;

static void
restart_free (Restart *restart)
{
  g_clear_object (&restart->units);
  g_free (restart->unit);
  g_free (restart->what);
  g_free (restart);
}

static void
on_restarted (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Restart *restart = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);

  if (reply == NULL)
    g_warning ("%s failed: %s", restart->what, error->message);
  else
    {
      g_message ("%s: done", restart->what);
      if (restart->units)
        hb_units_note_restarted (restart->units, restart->unit);
    }
  restart_free (restart);
}

static void
run_restart (HbAlerts *self, const HbConfigAlert *alert, const Event *e)
{
  const char *unit = alert->target;
  gint64 now = g_get_monotonic_time ();
  gpointer last;
  Restart *restart;

  /* restart-unit= (empty): the agent's own unit */
  if (*unit == '\0')
    {
      unit = self->units ? hb_units_get_unit_name (self->units, e->agent) : NULL;
      if (unit == NULL)
        {
          g_warning ("[alert:%s] cannot restart the unit of agent %s: it has no unit=",
                     alert->name, e->agent);
          return;
        }
      /* stopped on purpose (systemctl stop): the agent is gone, but
       * restarting would undo the stop; a failed unit is restarted */
      {
        g_autoptr(GVariant) info = g_variant_ref_sink (hb_units_describe (self->units, e->agent));
        const char *state = NULL;

        if (g_variant_lookup (info, "active-state", "&s", &state) &&
            (strcmp (state, "inactive") == 0 || strcmp (state, "deactivating") == 0))
          {
            g_message ("[alert:%s] not restarting %s for agent %s: it was stopped (%s)",
                       alert->name, unit, e->agent, state);
            return;
          }
      }
    }
  if (self->connection == NULL)
    return;
  /* the cooldown is the unit's, whichever alert restarted it: agents or
   * alerts sharing a unit (stale, then gone while it restarts) restart it
   * once */
  if (g_hash_table_lookup_extended (self->last_restart, unit, NULL, &last) &&
      now - *(gint64 *) last < alert->cooldown_usec)
    {
      g_message ("[alert:%s] not restarting %s again within its cooldown", alert->name, unit);
      return;
    }
  g_hash_table_replace (self->last_restart, g_strdup (unit), g_memdup2 (&now, sizeof now));
  restart = g_new0 (Restart, 1);
  restart->units = self->units ? g_object_ref (self->units) : NULL;
  restart->unit = g_strdup (unit);
  restart->what = g_strdup_printf ("[alert:%s] restarting %s for agent %s", alert->name, unit, e->agent);
  g_dbus_connection_call (self->connection, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                          "org.freedesktop.systemd1.Manager", "RestartUnit",
                          g_variant_new ("(ss)", unit, "replace"), G_VARIANT_TYPE ("(o)"),
                          G_DBUS_CALL_FLAGS_NONE, (int) MAX (alert->timeout_usec / 1000, 1), NULL,
                          on_restarted, restart);
}

/* ------------------------------------------------------------------ */
/* From the monitor                                                    */

/* Sets e->output to the agent's output (see the top), or NULL; read once,
 * and only for an event a webhook or a program takes. */
static void
event_read_output (Event *e)
{
  GVariant *metadata = heartbeat_agent_get_metadata (e->source);
  const char *text;

  if (e->output_read)
    return;
  e->output_read = TRUE;
  if (metadata != NULL && g_variant_is_of_type (metadata, G_VARIANT_TYPE_VARDICT) &&
      g_variant_lookup (metadata, "output", "&s", &text))
    {
      e->output = hb_utf8_tail (text, HB_ALERTS_OUTPUT_TAIL);
      return;
    }
  /* a job's: the output its last run recorded */
  {
    g_autoptr(GVariant) last_run = heartbeat_agent_get_last_run (e->source);

    if (last_run != NULL && g_variant_lookup (g_variant_ref_sink (last_run), "output", "&s", &text))
      e->output = hb_utf8_tail (text, HB_ALERTS_OUTPUT_TAIL);
  }
}

static void
dispatch (HbAlerts *self, Event *e)
{
  for (guint i = 0; self->alerts && i < self->alerts->len; i++)
    {
      const HbConfigAlert *alert = g_ptr_array_index (self->alerts, i);
      gboolean wanted = g_strv_contains ((const char *const *) alert->events, e->event);

      /* Alertmanager follows states, not events: see am_sync_agent() */
      if (alert->action == HB_ALERT_ALERTMANAGER)
        continue;
      if (!wanted || !g_pattern_match_simple (alert->agents, e->agent))
        continue;

      switch (alert->action)
        {
        case HB_ALERT_WEBHOOK:
          event_read_output (e);
          run_webhook (self, alert, e);
          break;
        case HB_ALERT_ALERTMANAGER:
          break;
        case HB_ALERT_EXEC:
          event_read_output (e);
          run_exec (self, alert, e);
          break;
        case HB_ALERT_RESTART_UNIT:
        default:
          run_restart (self, alert, e);
          break;
        }
    }
}

static void
dispatch_agent (HbAlerts *self, const char *event, HeartbeatAgent *agent,
                const char *usec_key, gint64 usec)
{
  Event e;

  /* paused for maintenance: no action at all, restarts included */
  if (heartbeat_agent_get_state (agent) == HEARTBEAT_AGENT_STATE_PAUSED)
    {
      g_debug ("Agent “%s” is paused: no action for its %s event", heartbeat_agent_get_id (agent), event);
      return;
    }
  e = (Event) {
    .event = event,
    .agent = heartbeat_agent_get_id (agent),
    .state = heartbeat_agent_state_to_string (heartbeat_agent_get_state (agent)),
    .status = heartbeat_agent_get_status (agent),
    .task = heartbeat_agent_get_task_id (agent),
    .usec_key = usec_key,
    .usec = usec,
    .source = agent,
    .reason = hb_agent_record_reason_full (agent, self->units),
  };

  event_read_job (&e);
  dispatch (self, &e);
  g_free (e.output);
  g_free (e.reason);
}

static void
on_stale (HeartbeatMonitor *m, HeartbeatAgent *agent, gint64 idle, HbAlerts *self)
{
  dispatch_agent (self, "stale", agent, "idle-usec", idle);
}

static void
on_timed_out (HeartbeatMonitor *m, HeartbeatAgent *agent, gint64 running, HbAlerts *self)
{
  dispatch_agent (self, "timed-out", agent, "running-usec", running);
}

static void
on_recovered (HeartbeatMonitor *m, HeartbeatAgent *agent, HbAlerts *self)
{
  dispatch_agent (self, "recovered", agent, NULL, 0);
}

static void
on_registered (HeartbeatMonitor *m, HeartbeatAgent *agent, HbAlerts *self)
{
  am_sync_agent (self, heartbeat_agent_get_id (agent), agent);
}

static void
on_state_changed (HeartbeatMonitor *m, HeartbeatAgent *agent, HeartbeatAgentState old_state,
                  HeartbeatAgentState new_state, HbAlerts *self)
{
  am_sync_agent (self, heartbeat_agent_get_id (agent), agent);
  if (new_state == HEARTBEAT_AGENT_STATE_GONE)
    dispatch_agent (self, "gone", agent, NULL, 0);
  else if (new_state == HEARTBEAT_AGENT_STATE_ERROR)
    dispatch_agent (self, "error", agent, NULL, 0);
  else if (new_state == HEARTBEAT_AGENT_STATE_HEALTHY &&
           (old_state == HEARTBEAT_AGENT_STATE_ERROR || old_state == HEARTBEAT_AGENT_STATE_GONE))
    dispatch_agent (self, "recovered", agent, NULL, 0);
}

static void
on_unregistered (HeartbeatMonitor *m, HeartbeatAgent *agent, HeartbeatUnregisterReason reason, HbAlerts *self)
{
  dispatch_agent (self, "unregistered", agent, NULL, 0);
  am_sync_agent (self, heartbeat_agent_get_id (agent), NULL);
}

/* ------------------------------------------------------------------ */

/**
 * hb_alerts_configure:
 * @alerts: a #HbAlerts
 * @config_alerts: (element-type HbConfigAlert): the configuration's alerts
 *
 * Uses these alerts from now on (a reload); deliveries under way finish
 * with the alerts they started with. Alertmanagers are told at once about
 * the agents already in an alerting state (at start: those restored), and
 * what was told to an Alertmanager no longer configured is resolved.
 */
void
hb_alerts_configure (HbAlerts  *alerts,
                     GPtrArray *config_alerts)
{
  g_return_if_fail (HB_IS_ALERTS (alerts));

  g_clear_pointer (&alerts->alerts, g_ptr_array_unref);
  alerts->alerts = g_ptr_array_ref (config_alerts);
  /* a CA bundle read again is a new session (posts under way keep theirs) */
  g_hash_table_remove_all (alerts->sessions);
  am_reconcile (alerts);
}

/**
 * hb_alerts_get_n_pending:
 * @alerts: a #HbAlerts
 *
 * Returns: the deliveries and programs under way or waiting for a retry,
 *   counting one per agent and Alertmanager with a post under way or
 *   waiting for its retry
 */
guint
hb_alerts_get_n_pending (HbAlerts *alerts)
{
  GHashTableIter iter;
  AmEntry *e;
  guint n;

  g_return_val_if_fail (HB_IS_ALERTS (alerts), 0);
  n = alerts->pending;
  g_hash_table_iter_init (&iter, alerts->am);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &e))
    if (e->in_flight || e->retry_id != 0)
      n++;
  return n;
}

/**
 * hb_alerts_new:
 * @monitor: the monitor whose events raise alerts
 * @connection: (nullable): the bus to ask systemd on, for restart-unit
 *
 * Returns: (transfer full): a new #HbAlerts with no alerts configured
 */
HbAlerts *
hb_alerts_new (HeartbeatMonitor *monitor,
               GDBusConnection  *connection)
{
  HbAlerts *self = g_object_new (HB_TYPE_ALERTS, NULL);

  self->monitor = g_object_ref (monitor);
  self->connection = connection ? g_object_ref (connection) : NULL;
  g_signal_connect_object (monitor, "agent-registered", G_CALLBACK (on_registered), self, 0);
  g_signal_connect_object (monitor, "agent-stale", G_CALLBACK (on_stale), self, 0);
  g_signal_connect_object (monitor, "agent-timed-out", G_CALLBACK (on_timed_out), self, 0);
  g_signal_connect_object (monitor, "agent-recovered", G_CALLBACK (on_recovered), self, 0);
  g_signal_connect_object (monitor, "agent-state-changed", G_CALLBACK (on_state_changed), self, 0);
  g_signal_connect_object (monitor, "agent-unregistered", G_CALLBACK (on_unregistered), self, 0);
  return self;
}

/**
 * hb_alerts_set_connection:
 * @alerts: a #HbAlerts
 * @connection: (nullable): the bus to ask systemd on, for restart-unit
 *
 * Changes the bus restart-unit uses, as after a reconnection.
 */
void
hb_alerts_set_connection (HbAlerts        *alerts,
                          GDBusConnection *connection)
{
  g_return_if_fail (HB_IS_ALERTS (alerts));
  g_set_object (&alerts->connection, connection);
}

/**
 * hb_alerts_set_units:
 * @alerts: a #HbAlerts
 * @units: (nullable): the unit-backed agents
 *
 * Where restart-unit= with an empty value finds the unit of the agent
 * that raised the event.
 */
void
hb_alerts_set_units (HbAlerts *alerts,
                     HbUnits  *units)
{
  g_return_if_fail (HB_IS_ALERTS (alerts));
  g_return_if_fail (units == NULL || HB_IS_UNITS (units));
  g_set_object (&alerts->units, units);
}

static void
hb_alerts_dispose (GObject *object)
{
  HbAlerts *self = HB_ALERTS (object);
  GHashTableIter iter;
  AmEntry *e;

  g_cancellable_cancel (self->cancellable);
  g_clear_handle_id (&self->drop_summary_id, g_source_remove);
  /* posts under way hold a reference and end with the cancellation; the
   * timers hold none */
  g_hash_table_iter_init (&iter, self->am);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &e))
    {
      g_clear_handle_id (&e->retry_id, g_source_remove);
      g_clear_handle_id (&e->resend_id, g_source_remove);
    }
  if (self->monitor)
    g_signal_handlers_disconnect_by_data (self->monitor, self);
  g_clear_object (&self->monitor);
  g_clear_object (&self->connection);
  g_clear_object (&self->units);
  G_OBJECT_CLASS (hb_alerts_parent_class)->dispose (object);
}

static void
hb_alerts_finalize (GObject *object)
{
  HbAlerts *self = HB_ALERTS (object);

  g_clear_object (&self->session);
  g_hash_table_unref (self->sessions);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->alerts, g_ptr_array_unref);
  g_hash_table_unref (self->am);
  g_hash_table_unref (self->last_restart);
  g_free (self->host);
  G_OBJECT_CLASS (hb_alerts_parent_class)->finalize (object);
}

static void
hb_alerts_class_init (HbAlertsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = hb_alerts_dispose;
  object_class->finalize = hb_alerts_finalize;
}

static void
hb_alerts_init (HbAlerts *self)
{
  self->session = soup_session_new_with_options ("user-agent", "heartbeatd", NULL);
  self->sessions = g_hash_table_new_full (g_direct_hash, g_direct_equal, g_object_unref, g_object_unref);
  self->cancellable = g_cancellable_new ();
  self->am = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) am_entry_free);
  self->last_restart = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->host = g_strdup (g_get_host_name ());
  self->resend_usec = HB_ALERTMANAGER_RESEND_USEC;
  self->max_pending = HB_ALERTS_MAX_PENDING;
  self->drop_summary_ms = HB_ALERTS_DROP_SUMMARY_USEC / 1000;
  {
    /* shorter for tests */
    const char *text = g_getenv ("HB_ALERTS_DROP_SUMMARY_MS");
    guint64 ms;

    if (text && g_ascii_string_to_unsigned (text, 10, 1, HB_ALERTS_DROP_SUMMARY_USEC / 1000, &ms, NULL))
      self->drop_summary_ms = (guint) ms;
  }
  {
    /* lower for tests */
    const char *text = g_getenv ("HB_ALERTS_MAX_PENDING");
    guint64 n;

    if (text && g_ascii_string_to_unsigned (text, 10, 1, HB_ALERTS_MAX_PENDING, &n, NULL))
      self->max_pending = (guint) n;
  }
  {
    /* shorter for tests */
    const char *text = g_getenv ("HB_ALERTMANAGER_RESEND_MS");
    guint64 ms;

    if (text && g_ascii_string_to_unsigned (text, 10, 1, G_MAXUINT32, &ms, NULL))
      self->resend_usec = (gint64) ms * 1000;
  }
}
