/* hb-process-watch.c: tells once when a process exits (a pidfd in the main loop)
 *
 * The one place heartbeatd watches processes: an agent's registered pid
 * (hb-liveness), the writer of a heartbeat file (hb-files) and the main
 * process of a unit (hb-units) all end here. A watch opens a pidfd
 * (pidfd_open(2), Linux ≥ 5.3) and adds it to the main loop; the kernel
 * makes it readable when the process exits, zombie or not, so the exit is
 * seen at once and nothing polls. The watch calls back exactly once,
 * always from the main loop (never from inside hb_process_watch_new(), so
 * whoever starts a watch finishes first), and never after
 * hb_process_watch_free().
 *
 * The fallback, where pidfd_open() fails for any reason but ESRCH (an
 * older kernel, a seccomp filter, no file descriptor left): the process
 * is polled every HB_PROCESS_WATCH_POLL_SECONDS (1 s) with kill(pid, 0)
 * and, because kill() still finds a zombie, its state in /proc/PID/stat.
 * A warning says so once per daemon. This is the fallback hb-liveness
 * had; hb-files (which checked the pid only at the next write) and
 * hb-units (which waited for the unit's state to change) had weaker
 * ones. Polling is the only fallback that still tells every user of the
 * watch that the process exited, so a heartbeat file whose writer dies
 * while nothing is written makes its agent gone within a second rather
 * than never; its cost, one wake-up a second per watched process, is paid
 * only where pidfds are missing.
 *
 * A pid is only a name: if the process exits and its pid is reused before
 * the watch begins, the new process is watched. A pidfd closes that window
 * once open; the poll cannot.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-process-watch.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <glib-unix.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

struct _HbProcessWatch {
  gint32            pid;
  int               pidfd;      /* -1 when polling, or once ended */
  GSource          *source;     /* the pidfd source, the poll, or an idle "not found"; NULL once ended */
  HbProcessExitFunc func;
  gpointer          user_data;
};

static gboolean force_poll;

/**
 * hb_process_exists:
 * @pid: a process id
 *
 * Whether a process with @pid exists now, as kill(@pid, 0) tells: a
 * process that is not ours to signal exists, and so does a zombie (a
 * watch of it ends at once).
 *
 * Returns: %FALSE if @pid is not positive or no such process exists
 */
gboolean
hb_process_exists (gint32 pid)
{
  if (pid <= 0)
    return FALSE;
  /* EPERM: it exists, it is only not ours to signal */
  return kill ((pid_t) pid, 0) == 0 || errno != ESRCH;
}

/* For the poll: a zombie has exited even though kill() still finds it. */
static gboolean
pid_is_running (gint32 pid)
{
  g_autofree char *path = NULL;
  g_autofree char *stat = NULL;
  const char *end;

  if (!hb_process_exists (pid))
    return FALSE;

  path = g_strdup_printf ("/proc/%d/stat", pid);
  if (!g_file_get_contents (path, &stat, NULL, NULL))
    return TRUE; /* hidden from us (hidepid): assume it runs */
  end = strrchr (stat, ')'); /* "pid (comm) S ...": comm may hold anything */
  return end == NULL || (end[1] != '\0' && end[2] != 'Z' && end[2] != 'X');
}

/* Drops what the watch holds; the callback will not be called. */
static void
watch_stop (HbProcessWatch *watch)
{
  if (watch->source)
    {
      g_source_destroy (watch->source);
      g_clear_pointer (&watch->source, g_source_unref);
    }
  if (watch->pidfd >= 0)
    {
      close (watch->pidfd);
      watch->pidfd = -1;
    }
}

/* Ends the watch, then calls back last: the callback may free it. */
static void
watch_end (HbProcessWatch *watch,
           HbProcessEnd    end)
{
  watch_stop (watch);
  watch->func (watch->pid, end, watch->user_data);
}

static gboolean
on_pidfd_readable (int          fd,
                   GIOCondition condition,
                   gpointer     user_data)
{
  watch_end (user_data, HB_PROCESS_END_EXITED);
  return G_SOURCE_REMOVE;
}

static gboolean
on_poll (gpointer user_data)
{
  HbProcessWatch *watch = user_data;

  if (pid_is_running (watch->pid))
    return G_SOURCE_CONTINUE;
  watch_end (watch, HB_PROCESS_END_EXITED);
  return G_SOURCE_REMOVE;
}

static gboolean
on_not_found (gpointer user_data)
{
  watch_end (user_data, HB_PROCESS_END_NOT_FOUND);
  return G_SOURCE_REMOVE;
}

static void
watch_attach (HbProcessWatch *watch,
              GSource        *source,
              GSourceFunc     func,
              const char     *source_name)
{
  g_source_set_callback (source, func, watch, NULL);
  g_source_set_static_name (source, source_name);
  g_source_attach (source, NULL);
  watch->source = source;
}

/**
 * hb_process_watch_new:
 * @pid: the process to watch, positive
 * @source_name: (nullable): a static name for the main-loop source, such
 *   as "[heartbeatd] liveness pid"
 * @func: called once when @pid has ended
 * @user_data: for @func
 *
 * Starts watching @pid in the thread-default main context. @func is
 * called once, from the main loop: with %HB_PROCESS_END_EXITED when the
 * process exits (or is a zombie already), with %HB_PROCESS_END_NOT_FOUND
 * right after this call if no process @pid exists. Free the watch with
 * hb_process_watch_free() to stop it before that, and after.
 *
 * Returns: (transfer full): a new watch
 */
HbProcessWatch *
hb_process_watch_new (gint32            pid,
                      const char       *source_name,
                      HbProcessExitFunc func,
                      gpointer          user_data)
{
  static gboolean warned;
  HbProcessWatch *watch;
  gboolean exists;
  int fd, saved_errno;

  g_return_val_if_fail (pid > 0, NULL);
  g_return_val_if_fail (func != NULL, NULL);

  if (source_name == NULL)
    source_name = "[heartbeatd] process watch";
  watch = g_new0 (HbProcessWatch, 1);
  watch->pid = pid;
  watch->pidfd = -1;
  watch->func = func;
  watch->user_data = user_data;

  if (force_poll)
    exists = hb_process_exists (pid);
  else
    {
      fd = (int) syscall (SYS_pidfd_open, (pid_t) pid, 0);
      if (fd >= 0)
        {
          watch->pidfd = fd;
          watch_attach (watch, g_unix_fd_source_new (fd, G_IO_IN),
                        (GSourceFunc) (void (*) (void)) on_pidfd_readable, source_name);
          return watch;
        }
      saved_errno = errno;
      if (saved_errno != ESRCH && !warned)
        {
          /* No pidfd_open (Linux < 5.3, or a seccomp filter): poll instead. */
          g_warning ("pidfd_open() is not available (%s); watching agent processes by "
                     "polling every %d s instead", g_strerror (saved_errno),
                     HB_PROCESS_WATCH_POLL_SECONDS);
          warned = TRUE;
        }
      exists = saved_errno != ESRCH && hb_process_exists (pid);
    }

  if (!exists)
    {
      watch_attach (watch, g_idle_source_new (), on_not_found, source_name);
      return watch;
    }
  watch_attach (watch, g_timeout_source_new_seconds (HB_PROCESS_WATCH_POLL_SECONDS),
                on_poll, source_name);
  return watch;
}

/**
 * hb_process_watch_free:
 * @watch: (nullable): a watch
 *
 * Stops @watch, if it has not ended, and frees it: its callback is not
 * called any more. May be called from the callback.
 */
void
hb_process_watch_free (HbProcessWatch *watch)
{
  if (watch == NULL)
    return;
  watch_stop (watch);
  g_free (watch);
}

/**
 * hb_process_watch_get_pid:
 * @watch: a watch
 *
 * Returns: the process @watch watches
 */
gint32
hb_process_watch_get_pid (HbProcessWatch *watch)
{
  g_return_val_if_fail (watch != NULL, 0);
  return watch->pid;
}

/**
 * hb_process_watch_set_force_poll:
 * @enable: whether new watches poll instead of opening a pidfd
 *
 * For tests of the fallback on a kernel that has pidfd_open().
 */
void
hb_process_watch_set_force_poll (gboolean enable)
{
  force_poll = enable;
}
