/* hb-name.h: the one rule for the names people give agents and tags
 *
 * An agent id (heartbeat_id_is_valid()) and a tag
 * (heartbeat_tags_validate(), hbctl status --tag=) are 1 to so many
 * characters of `[A-Za-z0-9._:@-]`, other than `.` and `..` (path
 * segments in URLs and file names): safe in file names, D-Bus strings,
 * URLs and Prometheus label values without escaping.
 *
 * Header only, so that libheartbeat, which links nothing of src/common,
 * and hbctl, which links nothing of libheartbeat, read the same rule.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <string.h>

#include <glib.h>

G_BEGIN_DECLS

/* The longest agent id and the longest tag, in bytes */
#define HB_NAME_ID_MAX_LENGTH  128
#define HB_NAME_TAG_MAX_LENGTH 64

typedef enum {
  HB_NAME_OK,
  HB_NAME_EMPTY,
  HB_NAME_DOTS,           /* "." or ".." */
  HB_NAME_TOO_LONG,
  HB_NAME_BAD_CHARACTER,
} HbNameProblem;

/* What is wrong with @name as an id or tag of at most @max_length bytes;
 * for HB_NAME_BAD_CHARACTER, where (@offset, may be NULL). */
static inline HbNameProblem
hb_name_check (const char *name,
               gsize       max_length,
               gsize      *offset)
{
  gsize length = 0;

  if (name == NULL || *name == '\0')
    return HB_NAME_EMPTY;
  if (strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
    return HB_NAME_DOTS;
  for (const char *p = name; *p != '\0'; p++, length++)
    {
      if (length >= max_length)
        return HB_NAME_TOO_LONG;
      if (!g_ascii_isalnum (*p) && strchr ("._:@-", *p) == NULL)
        {
          if (offset)
            *offset = length;
          return HB_NAME_BAD_CHARACTER;
        }
    }
  return HB_NAME_OK;
}

G_END_DECLS
