/* hb-token.h: what a bearer token may be, for whoever sends one
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The longest token a client sends (hbctl, an alert's token-file=) */
#define HB_TOKEN_MAX_BYTES 4096

gboolean hb_token_is_valid (const char *token);

G_END_DECLS
