/* hb-config.h: heartbeatd's configuration (GKeyFile with drop-ins)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "heartbeat-monitor.h"

G_BEGIN_DECLS

/* One [agent:NAME] section: an agent expected to exist. */
typedef struct {
  char   *id;
  char   *task_id;           /* task= , or NULL */
  gint64  stale_after_usec;  /* stale-threshold= , or 0 for the default */
  gint64  timeout_after_usec;/* timeout-threshold= , or 0 */
  char   *heartbeat_file;    /* heartbeat-file= , or NULL (see hb-files.c) */
  gint64  file_timeout_usec; /* timeout-seconds= , or 0 */
  char   *unit;              /* unit= , the systemd unit that runs it, or NULL (see hb-units.c) */
  char   *schedule;          /* schedule= , a cron expression, or NULL (see hb-schedules.c) */
  char   *tz;                /* tz= , the schedule's time zone, or NULL for the machine's */
  gint64  grace_usec;        /* grace= , how late a scheduled run may start, or 0 for the default */
  char  **tags;              /* tags= , split at commas and spaces (checked by
                              * heartbeat_tags_validate()), or NULL */
} HbConfigAgent;

/* One [alert:NAME] section: which events of which agents, and one action. */
typedef enum {
  HB_ALERT_WEBHOOK,
  HB_ALERT_ALERTMANAGER,
  HB_ALERT_EXEC,
  HB_ALERT_RESTART_UNIT,
} HbAlertAction;

typedef struct {
  char          *name;
  char         **events;            /* of stale, timed-out, recovered, gone, error */
  char          *agents;            /* a glob, default "*" */
  HbAlertAction  action;
  char          *target;            /* the value: URL(s), program or unit; restart-unit= may
                                     * be "": the unit= of the agent that raised the event */
  char         **urls;              /* webhook=: its URL; alertmanager=: each of its URLs
                                     * (whitespace or comma separated), in order; else NULL */
  char          *ca_file;           /* ca-file=, the path (credential:NAME resolved), or NULL:
                                     * the system trust store */
  GTlsDatabase  *tls_database;      /* read from ca_file at load, or NULL */
  char          *token_file;        /* token-file=, the path (credential:NAME resolved), or NULL */
  char          *token;             /* read from token_file at load: Authorization: Bearer */
  guint          retries;           /* attempts in all, default 3 */
  gint64         retry_interval_usec; /* default 5 s */
  gboolean       exponential;       /* backoff=exponential */
  gint64         timeout_usec;      /* per attempt / per program run, default 10 s */
  gint64         cooldown_usec;     /* restart-unit, default 5 min */
} HbConfigAlert;

typedef struct {
  /* [monitor] */
  gint64     check_interval_usec;
  gint64     stale_threshold_usec;
  gint64     timeout_threshold_usec;
  gboolean   stale_warning_only_once;
  gint64     retention_usec;   /* timed-out and gone agents stay listed this long */
  /* [limits] */
  guint      agents_per_uid;
  guint      max_agents;       /* [limits] max-agents; 0: no limit */
  /* [state] */
  gint64     sync_interval_usec; /* beats saved this often; at least 1 s */
  /* [agent:NAME] sections, in file order */
  GPtrArray *agents;          /* HbConfigAgent */
  /* [http] (read by the HTTP front) */
  gboolean   http_enabled;
  char      *http_address;    /* default "127.0.0.1" */
  guint16    http_port;       /* default 8765 */
  char      *http_tokens_file; /* or NULL: no tokens */
  char      *http_ping_key_file; /* [http] ping-key-file=, or NULL: no ping key */
  char      *http_tls_certificate; /* PEM, or NULL: plain HTTP */
  char      *http_tls_key;         /* PEM; set with the certificate */
  char      *http_tls_client_ca;   /* PEM, or NULL: no client certificate asked */
  gboolean   http_trusted_network; /* plain HTTP off loopback is allowed */
  /* [alert:NAME] sections, in file order */
  GPtrArray *alerts;          /* HbConfigAlert */
  /* [log] */
  char      *events_file;     /* or NULL */
  guint      events_retention; /* old files kept, default 7 */
  /* every file read, for messages */
  GPtrArray *files;           /* char * */
} HbConfig;

/* What hb_config_load_full() checks beyond the files' own contents. */
typedef enum {
  HB_CONFIG_LOAD_NONE           = 0,
  HB_CONFIG_LOAD_MAIN_OPTIONAL  = 1 << 0,  /* a missing main file: the built-in defaults */
  HB_CONFIG_LOAD_SYSTEM         = 1 << 1,  /* the system service's rules (events-file= not in /tmp, …) */
  HB_CONFIG_LOAD_CHECK_WRITABLE = 1 << 2,  /* events-file= writable by this process */
  HB_CONFIG_LOAD_CHECK_ONLY     = 1 << 3,  /* --check-config: a credential it may not read is left out */
} HbConfigLoadFlags;

/* What messages call the built-in defaults, in place of a file name. */
#define HB_CONFIG_BUILTIN_NAME "(built-in defaults)"

HbConfig *hb_config_new_default (void);
HbConfig *hb_config_load_full   (const char        *path,
                                 HbConfigLoadFlags  flags,
                                 GPtrArray         *problems,
                                 GError           **error);
gboolean  hb_config_is_hidden_credential (const char *path);
gboolean  hb_config_check_file  (const char *path,
                                 const char *secret,
                                 goffset     max,
                                 GError    **error);
char     *hb_config_resolve_file (const char *value,
                                 GError    **error);
gboolean  hb_config_check_events_file (const char        *path,
                                       HbConfigLoadFlags  flags,
                                       GError           **error);
HbConfig *hb_config_load_from_data (const char *data,
                                    gsize       length,
                                    const char *name,
                                    GError    **error);
HbConfig *hb_config_load        (const char     *path,
                                 GError        **error);
void      hb_config_free        (HbConfig       *config);
void      hb_config_apply       (const HbConfig *config,
                                 HeartbeatMonitor *monitor,
                                 guint32         owner_uid);
gboolean  hb_config_check_unit_name (const char *name,
                                     GError    **error);


G_DEFINE_AUTOPTR_CLEANUP_FUNC (HbConfig, hb_config_free)

G_END_DECLS
