/* hb-token.c: what a bearer token may be, for whoever sends one
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-token.h"

#include <string.h>

/**
 * hb_token_is_valid:
 * @token: a bearer token, as read from a file, the environment or argv
 *
 * Whether @token can go in an `Authorization: Bearer` header as it is:
 * 1 to %HB_TOKEN_MAX_BYTES printable ASCII characters, no space (RFC
 * 6750's b64token is narrower; heartbeatd's tokens file separates its
 * fields by white space), so that no CR or LF slips a header in.
 *
 * Returns: %TRUE if it can
 */
gboolean
hb_token_is_valid (const char *token)
{
  gsize length = strlen (token);

  if (length == 0 || length > HB_TOKEN_MAX_BYTES)
    return FALSE;
  for (gsize i = 0; i < length; i++)
    if (token[i] <= ' ' || token[i] > '~')
      return FALSE;
  return TRUE;
}
