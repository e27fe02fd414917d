/* hb-json-text.h: JSON from outside, checked as text and parsed within bounds
 *
 * Shared by heartbeatd (HTTP bodies, heartbeat files) and hbctl (the
 * answers of a server given with --url, which it does not trust either).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/**
 * HB_JSON_MAX_DEPTH:
 *
 * How deeply a JSON text from outside may nest arrays and objects. It is
 * checked on the text, before a parser builds anything.
 */
#define HB_JSON_MAX_DEPTH 32

gboolean  hb_json_check          (const char *data,
                                  gsize       length,
                                  guint       max_depth,
                                  GError    **error);
JsonNode *hb_json_parse          (const char *data,
                                  gsize       length,
                                  GError    **error);
gboolean  hb_json_invalid        (GError    **error,
                                  const char *format,
                                  ...) G_GNUC_PRINTF (2, 3);

G_END_DECLS
