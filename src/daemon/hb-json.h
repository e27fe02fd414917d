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

/**
 * HbJsonFlatKind:
 * @HB_JSON_FLAT_STRING: a string
 * @HB_JSON_FLAT_INTEGER: an integer (json-glib's %G_TYPE_INT64)
 * @HB_JSON_FLAT_DOUBLE: a number with a fraction (%G_TYPE_DOUBLE)
 * @HB_JSON_FLAT_BOOLEAN: true or false
 *
 * What a member read by hb_json_read_flat() holds.
 */
typedef enum {
  HB_JSON_FLAT_STRING,
  HB_JSON_FLAT_INTEGER,
  HB_JSON_FLAT_DOUBLE,
  HB_JSON_FLAT_BOOLEAN,
} HbJsonFlatKind;

/**
 * HbJsonFlatMember:
 * @name: the member's name, nul-terminated, inside the text read
 * @kind: what it holds
 * @string: %HB_JSON_FLAT_STRING: the string, nul-terminated, inside the text
 * @length: %HB_JSON_FLAT_STRING: its length in bytes
 * @integer: %HB_JSON_FLAT_INTEGER: the number; %HB_JSON_FLAT_BOOLEAN: 0 or 1
 * @number: %HB_JSON_FLAT_DOUBLE: the number
 *
 * A member of an object read by hb_json_read_flat().
 */
typedef struct {
  const char     *name;
  HbJsonFlatKind  kind;
  const char     *string;
  gsize           length;
  gint64          integer;
  double          number;
} HbJsonFlatMember;

/* The most hb_json_read_flat() reads: longer texts or more members are
 * left to json-glib (hb_json_parse()). */
#define HB_JSON_FLAT_MAX_TEXT    1024
#define HB_JSON_FLAT_MAX_MEMBERS 16

gint      hb_json_read_flat      (char                   *text,
                                  gsize                   length,
                                  HbJsonFlatMember       *members,
                                  guint                   max_members);
GVariant *hb_json_flat_to_vardict (const HbJsonFlatMember *members,
                                   guint                   n_members,
                                   const char *const      *skip);
gboolean  hb_json_flat_in_vardict (const HbJsonFlatMember *members,
                                   guint                   n_members,
                                   const char *const      *skip,
                                   GVariant               *dict);

G_END_DECLS
