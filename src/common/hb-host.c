/* hb-host.c: a summary of this machine, for GET /v1/host and hbctl status
 *
 * One JSON object, the same wherever it is made (the daemon serves its
 * machine's, hbctl makes its own when it talks D-Bus):
 *
 *   { "hostname", "cpu-percent" (null if unknown), "cpus",
 *     "load-average" ([1, 5, 15 min], null if unknown),
 *     "memory-used-bytes", "memory-total-bytes",
 *     "disk-path", "disk-used-bytes", "disk-total-bytes", "time-usec" }
 *
 * CPU use is a difference of two samples of hb_host_read_cpu(); taking
 * them is the caller's (the daemon never waits for the second one).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-host.h"

#include <math.h>
#include <string.h>
#include <sys/statvfs.h>

/**
 * hb_host_read_cpu:
 * @busy: (out): jiffies of every CPU not idle (nor waiting for I/O)
 * @total: (out): jiffies of every CPU in all
 *
 * Returns: %TRUE if /proc/stat could be read
 */
gboolean
hb_host_read_cpu (guint64 *busy,
                  guint64 *total)
{
  g_autofree char *contents = NULL;
  guint64 v[8] = { 0 };
  const char *p;
  char *end;
  int n = 0;

  if (!g_file_get_contents ("/proc/stat", &contents, NULL, NULL) || !g_str_has_prefix (contents, "cpu "))
    return FALSE;
  for (p = contents + 4; n < 8; n++, p = end)
    {
      v[n] = g_ascii_strtoull (p, &end, 10);
      if (end == p)
        break;
    }
  if (n < 4)
    return FALSE;
  *total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
  *busy = *total - v[3] - v[4];   /* minus idle and iowait */
  return TRUE;
}

/**
 * hb_host_cpu_percent:
 *
 * Returns: the CPU use between two samples, in percent, or -1 if they do
 *   not tell (no time passed, or the counters went back)
 */
double
hb_host_cpu_percent (guint64 busy_before,
                     guint64 total_before,
                     guint64 busy_after,
                     guint64 total_after)
{
  if (total_after <= total_before || busy_after < busy_before)
    return -1;
  return MIN (100.0, 100.0 * (double) (busy_after - busy_before) / (double) (total_after - total_before));
}

static guint64
meminfo_kib (const char *contents,
             const char *key)
{
  const char *line = strstr (contents, key);

  return line ? g_ascii_strtoull (line + strlen (key), NULL, 10) : 0;
}

static void
add_int (JsonBuilder *b,
         const char  *name,
         gint64       value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, value);
}

/**
 * hb_host_to_json:
 * @cpu_percent: the CPU use measured by the caller, or a negative number if
 *   unknown
 * @disk_path: the file system whose use to give
 *
 * Returns: (transfer full): this machine's summary, as at the top of hb-host.c
 */
JsonNode *
hb_host_to_json (double      cpu_percent,
                 const char *disk_path)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree char *meminfo = NULL;
  g_autofree char *loadavg = NULL;
  guint64 mem_total = 0, mem_used = 0, disk_total = 0, disk_used = 0;
  struct statvfs fs;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "hostname");
  json_builder_add_string_value (b, g_get_host_name ());

  /* figures are rounded to what they mean (0.1 % of CPU, the load to
   * 1/100, as /proc/loadavg gives it), so that their text is short */
  json_builder_set_member_name (b, "cpu-percent");
  if (cpu_percent >= 0)
    json_builder_add_double_value (b, round (cpu_percent * 10) / 10);
  else
    json_builder_add_null_value (b);
  add_int (b, "cpus", g_get_num_processors ());

  /* "0.52 0.40 0.33 1/123 4567" */
  json_builder_set_member_name (b, "load-average");
  if (g_file_get_contents ("/proc/loadavg", &loadavg, NULL, NULL))
    {
      const char *p = loadavg;
      char *end;

      json_builder_begin_array (b);
      for (int i = 0; i < 3; i++, p = end)
        {
          double load = g_ascii_strtod (p, &end);

          json_builder_add_double_value (b, end != p && isfinite (load) ? round (load * 100) / 100 : 0);
        }
      json_builder_end_array (b);
    }
  else
    json_builder_add_null_value (b);

  if (g_file_get_contents ("/proc/meminfo", &meminfo, NULL, NULL))
    {
      mem_total = meminfo_kib (meminfo, "MemTotal:") * 1024;
      mem_used = mem_total - MIN (mem_total, meminfo_kib (meminfo, "MemAvailable:") * 1024);
    }
  add_int (b, "memory-used-bytes", (gint64) mem_used);
  add_int (b, "memory-total-bytes", (gint64) mem_total);

  if (statvfs (disk_path, &fs) == 0)
    {
      disk_total = (guint64) fs.f_blocks * fs.f_frsize;
      disk_used = (guint64) (fs.f_blocks - fs.f_bfree) * fs.f_frsize;
    }
  json_builder_set_member_name (b, "disk-path");
  json_builder_add_string_value (b, disk_path);
  add_int (b, "disk-used-bytes", (gint64) disk_used);
  add_int (b, "disk-total-bytes", (gint64) disk_total);
  add_int (b, "time-usec", g_get_real_time ());
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

/**
 * hb_host_process_started_at:
 *
 * When this process started, as every front reports it (GetStatus and
 * /health `started-at-usec`): the wall-clock time of the first call, which
 * heartbeatd makes first thing in main().
 *
 * Returns: wall-clock µs
 */
gint64
hb_host_process_started_at (void)
{
  static gsize started;

  if (g_once_init_enter (&started))
    g_once_init_leave (&started, (gsize) g_get_real_time ());
  return (gint64) started;
}
