/* heartbeat-values.h: the one gate for values from outside
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "hb-name.h"

G_BEGIN_DECLS

/**
 * HEARTBEAT_METADATA_MAX_SIZE:
 *
 * The largest metadata dictionary an agent may carry, in bytes, after a
 * beat's metadata is merged into it. It bounds both the serialized
 * #GVariant and the dictionary written out as JSON text (where a control
 * character costs six bytes), so no front ever stores or sends more.
 */
#define HEARTBEAT_METADATA_MAX_SIZE 16384

/**
 * HEARTBEAT_METADATA_MAX_DEPTH:
 *
 * How deeply a metadata dictionary may nest, counting every container
 * (array, dictionary entry, tuple, variant) and the dictionary itself.
 * A JSON object inside metadata costs three levels (`a{sv}`: array,
 * entry, variant), a JSON array two (`av`). D-Bus refuses a message
 * nested more than 64 levels (and some peers 32); replies wrap metadata
 * in at most six more, so every value accepted here can be sent.
 */
#define HEARTBEAT_METADATA_MAX_DEPTH 16

/**
 * HEARTBEAT_TAGS_MAX:
 *
 * The most tags an agent may carry.
 */
#define HEARTBEAT_TAGS_MAX 16

/**
 * HEARTBEAT_TAG_MAX_LENGTH:
 *
 * The longest tag, in bytes. A tag is 1 to this many characters of
 * `[A-Za-z0-9._:@-]`, as an id is.
 */
#define HEARTBEAT_TAG_MAX_LENGTH HB_NAME_TAG_MAX_LENGTH

/**
 * HEARTBEAT_PAUSE_REASON_MAX_LENGTH:
 *
 * The longest reason a pause may give, in bytes.
 */
#define HEARTBEAT_PAUSE_REASON_MAX_LENGTH 256

/**
 * HeartbeatTextProblem:
 * @HEARTBEAT_TEXT_OK: the text may be kept
 * @HEARTBEAT_TEXT_BAD_LENGTH: it is empty or longer than allowed
 * @HEARTBEAT_TEXT_BAD_UTF8: it is not valid UTF-8
 * @HEARTBEAT_TEXT_CONTROL: it contains a C0 or C1 control character
 *
 * What heartbeat_text_check() found wrong with a text, so that a front can
 * answer in its own words (a D-Bus error, a 400 with a JSON message, a
 * configuration problem) while the rule itself exists once.
 */
typedef enum {
  HEARTBEAT_TEXT_OK,
  HEARTBEAT_TEXT_BAD_LENGTH,
  HEARTBEAT_TEXT_BAD_UTF8,
  HEARTBEAT_TEXT_CONTROL,
} HeartbeatTextProblem;

gboolean             heartbeat_metadata_is_valid (GVariant   *metadata,
                                                  GError    **error);
HeartbeatTextProblem heartbeat_text_check        (const char *text,
                                                  gsize       length,
                                                  gsize       max_length);
gboolean             heartbeat_text_is_valid     (const char *text,
                                                  gsize       max_length,
                                                  const char *what,
                                                  GError    **error);
gboolean             heartbeat_tags_validate     (const char *const *tags,
                                                  GError    **error);

G_END_DECLS
