/* hb-dbus-fast-beat.h: certain Beat calls answered in GDBus's worker thread
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "heartbeat-monitor.h"
#include "hb-callers.h"

G_BEGIN_DECLS

typedef struct _HbFastBeat HbFastBeat;

HbFastBeat *hb_fast_beat_new           (HeartbeatMonitor      *monitor,
                                        HbCallers             *callers);
void        hb_fast_beat_free          (HbFastBeat            *fast);

void        hb_fast_beat_start         (HbFastBeat            *fast,
                                        GDBusConnection       *connection,
                                        const char            *object_path,
                                        GDBusInterfaceInfo    *interface,
                                        const char * const    *changing);
void        hb_fast_beat_stop          (HbFastBeat            *fast);
void        hb_fast_beat_set_enabled   (HbFastBeat            *fast,
                                        gboolean               enabled);
void        hb_fast_beat_mirror_owners (HbFastBeat            *fast);
void        hb_fast_beat_drain         (HbFastBeat            *fast);

/**
 * HbFastBeatCall:
 * @sender: the caller's unique name
 * @id: the agent's id
 * @status: (nullable): the status detail
 * @serial: the call's serial
 * @no_reply: the caller expects no reply
 *
 * A Beat hb_fast_beat_read_call() found; the strings point into the
 * message.
 */
typedef struct {
  const char *sender;
  const char *id;
  const char *status;
  guint32     serial;
  gboolean    no_reply;
} HbFastBeatCall;

gboolean    hb_fast_beat_read_call     (const guint8          *message,
                                        gsize                  size,
                                        const char            *object_path,
                                        const char            *interface,
                                        HbFastBeatCall        *call);

gboolean    hb_fast_beat_call_begin    (HbFastBeat            *fast,
                                        GDBusMethodInvocation *invocation);
void        hb_fast_beat_call_end      (HbFastBeat            *fast,
                                        GDBusMethodInvocation *invocation);

G_END_DECLS
