/* hb-bus-filter.h: a message bus connection that never hands GDBus a
 * message it cannot decode
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

GDBusConnection *hb_bus_filter_connect_sync (const char    *address,
                                             GCancellable  *cancellable,
                                             GError       **error);

gboolean         hb_bus_filter_decodes      (const guint8  *blob,
                                             gsize          len);

/**
 * HbBusClaimFunc:
 * @message: one whole message as the bus sent it, one GDBus decodes
 * @size: its size
 * @user_data: what hb_bus_filter_set_claim() was given
 *
 * Sees each message in GDBus's worker thread when GDBus is about to read
 * it, after GDBus has handled every message before it.
 *
 * Returns: %TRUE if it took @message: GDBus never sees it
 */
typedef gboolean (*HbBusClaimFunc) (const guint8 *message,
                                    gsize         size,
                                    gpointer      user_data);

gboolean         hb_bus_filter_set_claim    (GDBusConnection *connection,
                                             HbBusClaimFunc   func,
                                             gpointer         user_data,
                                             GDestroyNotify   destroy);

/**
 * HbBusReader:
 * @data: the bytes
 * @len: how many
 * @pos: where the next value is read (may be past @len after an alignment)
 * @big_endian: the message's byte order
 *
 * A cursor over a message's bytes, for the few values a caller reads
 * itself; every read is bounded by @len.
 */
typedef struct {
  const guint8 *data;
  gsize         len;
  gsize         pos;
  gboolean      big_endian;
} HbBusReader;

void             hb_bus_reader_align        (HbBusReader   *reader,
                                             gsize          alignment);
gboolean         hb_bus_reader_u32          (HbBusReader   *reader,
                                             guint32       *value);
const char      *hb_bus_reader_text         (HbBusReader   *reader,
                                             char           type);

/**
 * HbBusHeader:
 * @type: the message type (#GDBusMessageType)
 * @flags: its flags (#GDBusMessageFlags)
 * @serial: its serial
 * @path: (nullable): the PATH field
 * @interface: (nullable): the INTERFACE field
 * @member: (nullable): the MEMBER field
 * @sender: (nullable): the SENDER field
 * @destination: (nullable): the DESTINATION field
 * @signature: (nullable): the SIGNATURE field
 * @n_unix_fds: the UNIX_FDS field, 0 without one
 * @body: a reader at the body's first byte
 *
 * What hb_bus_header_read() found; the strings point into the message.
 */
typedef struct {
  guint8       type;
  guint8       flags;
  guint32      serial;
  const char  *path;
  const char  *interface;
  const char  *member;
  const char  *sender;
  const char  *destination;
  const char  *signature;
  guint32      n_unix_fds;
  HbBusReader  body;
} HbBusHeader;

gboolean         hb_bus_header_read         (const guint8  *blob,
                                             gsize          len,
                                             HbBusHeader   *header);

G_END_DECLS
