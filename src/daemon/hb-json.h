/* hb-json.h: JSON from outside, parsed within bounds, and metadata as JSON
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

/* hb_json_check(), hb_json_parse() and HB_JSON_MAX_DEPTH, shared with hbctl */
#include "hb-json-text.h"

G_BEGIN_DECLS

GVariant *hb_json_to_variant     (JsonNode   *node,
                                  GError    **error);
GVariant *hb_json_object_to_vardict (JsonObject        *object,
                                     const char *const *skip,
                                     GError           **error);
JsonNode *hb_json_from_variant   (GVariant   *value);

G_END_DECLS
