/* hbctl-output.h: how hbctl says things (private)
 *
 * Errors as sentences on stderr, JSON for programs, and the small words of
 * the tables and pages: a state's colour and symbol, "3s ago", "never",
 * sizes as systemctl prints them, a point in time; and reading the
 * values of an agent's dictionary whichever transport made it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "heartbeat-client.h"

G_BEGIN_DECLS

void         hbctl_print_error       (const char         *format,
                                      ...) G_GNUC_PRINTF (1, 2);
void         hbctl_print_json        (JsonNode           *node);

const char  *hbctl_dict_string       (GVariant           *dict,
                                      const char         *key);
guint64      hbctl_dict_uint64       (GVariant           *dict,
                                      const char         *key);
guint32      hbctl_dict_uint32       (GVariant           *dict,
                                      const char         *key);
double       hbctl_json_double       (JsonObject         *object,
                                      const char         *name,
                                      double              fallback);

const char *const *hbctl_known_states (void);
guint        hbctl_state_severity    (const char         *state);
guint        hbctl_agent_severity    (GVariant           *agent);
double       hbctl_dict_double       (GVariant           *dict,
                                      const char         *key,
                                      double              fallback);
char        *hbctl_colored           (const char         *state,
                                      const char         *text);
char        *hbctl_printable_line    (const char         *text);
char        *hbctl_agent_reason      (GVariant           *agent);
char        *hbctl_format_value      (GVariant           *value);
const char  *hbctl_state_color       (const char         *state);
const char  *hbctl_state_symbol      (const char         *state);
char        *hbctl_ago               (guint64             then_usec);
gboolean     hbctl_never_beat        (GVariant           *agent);
gboolean     hbctl_agent_is_job      (GVariant           *agent);
gboolean     hbctl_agent_waiting     (GVariant           *agent);
char        *hbctl_agent_running     (GVariant           *agent);
char        *hbctl_last_seen         (GVariant           *agent);
char        *hbctl_format_time       (guint64             realtime_usec);
char        *hbctl_format_bytes      (guint64             bytes);
char        *hbctl_unit_cpu_text     (HeartbeatAgentInfo *info);
char        *hbctl_unit_memory_text  (HeartbeatAgentInfo *info);
char        *hbctl_user_name         (guint32             uid);

G_END_DECLS
