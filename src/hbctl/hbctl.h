/* hbctl.h: what the files of hbctl share (private)
 *
 * hbctl.c parses the global options into `opt` and calls one verb; each
 * verb, hbctl_VERB(), parses its own options with hbctl_parse_command(),
 * talks to heartbeatd through an HbctlTransport (hbctl-transport.h) or,
 * for the verbs only D-Bus offers, through HeartbeatClient and the words
 * of hbctl-dbus.c, and prints with hbctl-output.h and hbctl-table.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <glib/gi18n.h>

#include "hbctl-build-config.h"
#include "heartbeat-client.h"

G_BEGIN_DECLS

/* The exit statuses of every verb but check and run (see usage_text()) */
enum {
  EXIT_OK = 0,
  EXIT_REFUSED = 1,
  EXIT_USAGE = 2,
  EXIT_NO_DAEMON = 3,
};

typedef struct {
  GBusType  bus_type;
  gboolean  legend;
  gboolean  color;
  char     *url;         /* --url: talk to heartbeatd's HTTP API instead */
  char     *token;       /* --token: its bearer token (shows in ps) */
  char     *token_file;  /* --token-file: the token's first line */
  char     *cacert;      /* --cacert: the only CAs that verify an https --url */
  char     *cert;        /* --cert: a client certificate (PEM) */
  char     *key;         /* --key: its private key (PEM) */
} HbctlOptions;

/* The global options (hbctl.c) */
extern HbctlOptions opt;

/* The verbs: each takes its own argv (argv[0] is the verb) and returns
 * hbctl's exit status. */
int hbctl_status     (int argc, char **argv);
int hbctl_list       (int argc, char **argv);
int hbctl_show       (int argc, char **argv);
int hbctl_register   (int argc, char **argv);
int hbctl_beat       (int argc, char **argv);
int hbctl_idle       (int argc, char **argv);
int hbctl_unregister (int argc, char **argv);
int hbctl_watch      (int argc, char **argv);
int hbctl_run        (int argc, char **argv);
int hbctl_check      (int argc, char **argv);
int hbctl_pause      (int argc, char **argv);
int hbctl_resume     (int argc, char **argv);

/* hbctl-args.c: a verb's options and arguments */
gboolean  hbctl_parse_command        (GOptionContext *context,
                                      int            *argc,
                                      char         ***argv,
                                      int            *status);
gboolean  hbctl_want_args            (int             argc,
                                      int             wanted,
                                      const char     *what,
                                      int            *status);
void      hbctl_args_clear           (void);
gboolean  hbctl_parse_duration_arg   (const char     *option,
                                      const char     *value,
                                      gint64         *usec);
GVariant *hbctl_parse_set            (char          **pairs,
                                      GError        **error);
gboolean  hbctl_parse_progress_arg   (const char     *value,
                                      gboolean       *has_progress,
                                      double         *progress);
gboolean  hbctl_parse_pid_arg        (const char     *value,
                                      int            *pid);

/* hbctl-http.c: before the first call over --url, the token (--token,
 * --token-file, $HBCTL_TOKEN: the first found) and the TLS settings
 * (--cacert, --cert, --key) read and checked; FALSE with the words of
 * what is wrong in *problem (a usage error: nothing was sent). */
gboolean  hbctl_http_prepare         (char          **problem);

/* hbctl-dbus.c: heartbeatd on the bus, and the words for what went wrong */
const char      *hbctl_bus_name        (void);
HeartbeatClient *hbctl_connect_client  (int              *status);
char            *hbctl_bus_problem     (const GError     *error,
                                        int              *exit_status);
char            *hbctl_connect_problem (const GError     *error,
                                        int              *exit_status);
int              hbctl_report          (HeartbeatClient  *client,
                                        const char       *id,
                                        const GError     *error);

G_END_DECLS
