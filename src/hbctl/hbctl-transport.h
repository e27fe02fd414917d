/* hbctl-transport.h: the one seam between hbctl's verbs and heartbeatd
 * (private)
 *
 * A verb asks a transport, never D-Bus or HTTP itself: heartbeatd's
 * D-Bus API through HeartbeatClient (hbctl-dbus.c), or its HTTP API at
 * --url (hbctl-http.c). Both answer the same calls with the same types,
 * the D-Bus ones: agents as aa{sv}, one agent as a{sv}, the daemon's
 * GetStatus as a{sv}, a history as a(ts), a beat's details as a{sv},
 * run records as aa{sv} and a run's end as a{sv}.
 * What differs is only what each says when it fails, in its own words
 * (and the exit status that goes with it); a call that fails has said
 * so on stderr, unless it hands the words back.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "heartbeat-client.h"

G_BEGIN_DECLS

typedef struct _HbctlTransport HbctlTransport;

/* What `status` may ask for beside the agents */
typedef enum {
  HBCTL_OVERVIEW_STATUS = 1 << 0,   /* the daemon's GetStatus */
  HBCTL_OVERVIEW_HOST   = 1 << 1,   /* the machine it runs on */
  HBCTL_OVERVIEW_DAEMON = 1 << 2,   /* its version and start, for the line under the summary */
} HbctlOverviewFlags;

/* What `status` shows */
typedef struct {
  GVariant *agents;       /* aa{sv}, in the daemon's order */
  GVariant *status;       /* a{sv}, GetStatus; NULL when not asked for and not had anyway */
  JsonNode *host;         /* the machine, as GET /v1/host's object; NULL if not asked for or unknown */
  guint64   started_at;   /* when the daemon started (µs, real time); 0: not known */
  char     *version;      /* its version; NULL or "": not known */
} HbctlOverview;

void hbctl_overview_clear (HbctlOverview *overview);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (HbctlOverview, hbctl_overview_clear)

struct _HbctlTransport {
  /* The agents and what @flags asks for; FALSE with *exit_status set. */
  gboolean  (*overview)     (HbctlTransport     *self,
                             HbctlOverviewFlags  flags,
                             HbctlOverview      *overview,
                             int                *exit_status);
  /* The agents (aa{sv}); NULL with *exit_status set. */
  GVariant *(*list_agents)  (HbctlTransport     *self,
                             int                *exit_status);
  /* One agent (a{sv}); NULL with *exit_status set. */
  GVariant *(*get_agent)    (HbctlTransport     *self,
                             const char         *id,
                             int                *exit_status);
  /* Its changes of state (a(ts)), after get_agent(); NULL if there are
   * none to be had (a daemon that keeps no history). */
  GVariant *(*get_history)  (HbctlTransport     *self,
                             const char         *id);
  /* A beat with @details (a{sv}: status, progress, metadata); returns
   * the exit status. */
  int       (*beat)         (HbctlTransport     *self,
                             const char         *id,
                             GVariant           *details);
  /* Its run records (aa{sv}, oldest first), after get_agent(); NULL if
   * there are none to be had (a daemon that keeps no runs: nothing said;
   * anything else that went wrong is said). */
  GVariant *(*get_runs)     (HbctlTransport     *self,
                             const char         *id);
  /* A run of the job @id starts (StartRun); returns the exit status. */
  int       (*start_run)    (HbctlTransport     *self,
                             const char         *id);
  /* The job's run ended (FinishRun) with @end (a{sv}: success,
   * exit-status, output); returns the exit status. */
  int       (*finish_run)   (HbctlTransport     *self,
                             const char         *id,
                             GVariant           *end);
  /* One agent for `check`; NULL with the words of what went wrong in
   * *problem, nothing printed. */
  GVariant *(*check_agent)  (HbctlTransport     *self,
                             const char         *id,
                             char              **problem);
  /* Pause the agent (@reason: NULL for none); returns the exit status,
   * a failure said. */
  int       (*pause)        (HbctlTransport     *self,
                             const char         *id,
                             const char         *reason);
  /* Resume it; returns the exit status, a failure said. */
  int       (*resume)       (HbctlTransport     *self,
                             const char         *id);
  void      (*free)         (HbctlTransport     *self);
};

HbctlTransport *hbctl_transport_new      (void);
void            hbctl_transport_free     (HbctlTransport *transport);

HbctlTransport *hbctl_dbus_transport_new (void);
/* The D-Bus transport over @client (a reference is taken): its calls go
 * on @client's connection, in order with @client's own. */
HbctlTransport *hbctl_dbus_transport_new_for_client (HeartbeatClient *client);
HbctlTransport *hbctl_http_transport_new (void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (HbctlTransport, hbctl_transport_free)

G_END_DECLS
