/* hb-files.h: the heartbeat-file front (agents that write a JSON file)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "heartbeat-monitor.h"

G_BEGIN_DECLS

/* The most a heartbeat file may hold; a bigger one is not a heartbeat. */
#define HB_HEARTBEAT_FILE_MAX_SIZE (64 * 1024)

/* One heartbeat file, as its writers write it:
 *   {"process_key": "my_server", "pid": 12345,
 *    "timestamp": "2026-02-05T06:17:29.601049+00:00",
 *    "status": "running", "iteration": 42} */
typedef struct {
  char   *process_key;
  gint32  pid;
  gint64  timestamp_usec;   /* wall clock */
  char   *status;
  gint64  iteration;
} HbHeartbeatFile;

gboolean hb_heartbeat_file_parse (const char      *data,
                                  gsize            length,
                                  HbHeartbeatFile *file,
                                  GError         **error);
void     hb_heartbeat_file_clear (HbHeartbeatFile *file);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (HbHeartbeatFile, hb_heartbeat_file_clear)

#define HB_TYPE_FILES (hb_files_get_type ())
G_DECLARE_FINAL_TYPE (HbFiles, hb_files, HB, FILES, GObject)

HbFiles  *hb_files_new   (HeartbeatMonitor *monitor);
gboolean  hb_files_watch (HbFiles          *files,
                          const char       *agent_id,
                          const char       *path,
                          GError          **error);
void      hb_files_clear (HbFiles          *files);
guint     hb_files_get_n_watched (HbFiles  *files);

G_END_DECLS
