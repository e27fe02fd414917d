/* hb-json.h: JSON from outside, parsed within bounds, and metadata as JSON
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
GVariant *hb_json_to_variant     (JsonNode   *node,
                                  GError    **error);
GVariant *hb_json_object_to_vardict (JsonObject        *object,
                                     const char *const *skip,
                                     GError           **error);
JsonNode *hb_json_from_variant   (GVariant   *value);

G_END_DECLS
