/* hb-process-watch.h: tells once when a process exits (a pidfd in the main loop)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * HbProcessEnd:
 * @HB_PROCESS_END_EXITED: the process exited while it was watched
 * @HB_PROCESS_END_NOT_FOUND: there was no such process when the watch began
 *
 * How a watched process came to an end.
 */
typedef enum {
  HB_PROCESS_END_EXITED,
  HB_PROCESS_END_NOT_FOUND,
} HbProcessEnd;

/**
 * HbProcessExitFunc:
 * @pid: the watched process
 * @end: how it ended
 * @user_data: the data given to hb_process_watch_new()
 *
 * Called once, from the main loop, when @pid has ended. The watch stays
 * the caller's: free it (here or later) with hb_process_watch_free().
 */
typedef void (*HbProcessExitFunc) (gint32       pid,
                                   HbProcessEnd end,
                                   gpointer     user_data);

typedef struct _HbProcessWatch HbProcessWatch;

HbProcessWatch *hb_process_watch_new      (gint32            pid,
                                           const char       *source_name,
                                           HbProcessExitFunc func,
                                           gpointer          user_data);
void            hb_process_watch_free     (HbProcessWatch   *watch);
gint32          hb_process_watch_get_pid  (HbProcessWatch   *watch);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (HbProcessWatch, hb_process_watch_free)

gboolean        hb_process_exists         (gint32            pid);

/* for tests: watch every new process by polling, as without pidfd_open() */
void            hb_process_watch_set_force_poll (gboolean    enable);

#define HB_PROCESS_WATCH_POLL_SECONDS 1

G_END_DECLS
