/* heartbeat-runs.c: a job's schedule and its run records
 *
 * The records are bounded twice: at most %HEARTBEAT_RUNS_MAX of them, and
 * none older than %HEARTBEAT_RUNS_MAX_AGE once a newer one exists; each
 * keeps at most %HEARTBEAT_RUN_OUTPUT_MAX bytes of output (the tail, cut at
 * a character boundary). The judgment (when a run is late, what a run's end
 * does to the agent) is the monitor's; this file only keeps the records
 * and converts them to and from `aa{sv}`, the form every front and the
 * store use.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "heartbeat-runs.h"

#include <string.h>

#include "heartbeat-agent.h"

static void
run_free (gpointer data)
{
  HeartbeatRun *run = data;

  g_free (run->output);
  g_free (run);
}

HeartbeatJob *
heartbeat_job_new (void)
{
  HeartbeatJob *job = g_new0 (HeartbeatJob, 1);

  job->grace = HEARTBEAT_GRACE_DEFAULT;
  job->runs = g_ptr_array_new_with_free_func (run_free);
  return job;
}

void
heartbeat_job_clear_schedule (HeartbeatJob *job)
{
  if (job->due_destroy)
    job->due_destroy (job->due_data);
  job->due_func = NULL;
  job->due_data = NULL;
  job->due_destroy = NULL;
  job->due = 0;
}

void
heartbeat_job_free (HeartbeatJob *job)
{
  if (job == NULL)
    return;
  heartbeat_job_clear_schedule (job);
  g_ptr_array_unref (job->runs);
  g_free (job);
}

/* The newest moment a record speaks for: its due time or its start. */
static gint64
run_answers (const HeartbeatRun *run)
{
  return MAX (run->due, run->started);
}

/* Drops what is over the bounds; the run in progress goes by count only. */
static void
trim (HeartbeatJob *job,
      gint64        now_realtime)
{
  while (job->runs->len > HEARTBEAT_RUNS_MAX)
    g_ptr_array_remove_index (job->runs, 0);
  while (job->runs->len > 1)
    {
      HeartbeatRun *oldest = g_ptr_array_index (job->runs, 0);
      gint64 at = oldest->ended ? oldest->ended : run_answers (oldest);

      if (oldest == job->current || now_realtime - at <= HEARTBEAT_RUNS_MAX_AGE)
        break;
      g_ptr_array_remove_index (job->runs, 0);
    }
}

/* A new record at the end, zeroed but for the exit status (none). */
HeartbeatRun *
heartbeat_job_add_run (HeartbeatJob *job,
                       gint64        now_realtime)
{
  HeartbeatRun *run = g_new0 (HeartbeatRun, 1);

  run->exit_status = -1;
  g_ptr_array_add (job->runs, run);
  /* the run in progress is never the oldest of more than RUNS_MAX: a new
   * record ends it first (see the monitor) */
  trim (job, now_realtime);
  return run;
}

/* Keeps the last HEARTBEAT_RUN_OUTPUT_MAX bytes of @output as valid UTF-8
 * (invalid bytes and NULs become U+FFFD); an empty output is none. */
void
heartbeat_run_set_output (HeartbeatRun *run,
                          const char   *output,
                          gssize        length)
{
  g_autofree char *valid = NULL;
  gsize len, from = 0;

  g_clear_pointer (&run->output, g_free);
  if (output == NULL)
    return;
  if (length < 0)
    length = (gssize) strlen (output);
  /* four times the bound in, at most: U+FFFD is 3 bytes for 1 */
  if ((gsize) length > 4 * HEARTBEAT_RUN_OUTPUT_MAX)
    {
      output += length - 4 * HEARTBEAT_RUN_OUTPUT_MAX;
      length = 4 * HEARTBEAT_RUN_OUTPUT_MAX;
    }
  if (length == 0)
    return;
  valid = g_utf8_make_valid (output, length);
  len = strlen (valid);
  if (len > HEARTBEAT_RUN_OUTPUT_MAX)
    {
      from = len - HEARTBEAT_RUN_OUTPUT_MAX;
      /* to the start of a character */
      while (from < len && (valid[from] & 0xC0) == 0x80)
        from++;
    }
  run->output = g_strdup (valid + from);
}

/* Up to when the job's due times are answered: the latest due time or
 * start its records answer for; without records, @now_realtime (a
 * schedule counts from when the monitor learns it). */
gint64
heartbeat_job_last_answered (const HeartbeatJob *job,
                             gint64              now_realtime)
{
  gint64 last = 0;

  for (guint i = 0; i < job->runs->len; i++)
    last = MAX (last, run_answers (g_ptr_array_index (job->runs, i)));
  return last ? last : now_realtime;
}

static const char *
result_nick (guint8 result)
{
  return heartbeat_run_result_to_string ((HeartbeatRunResult) result);
}

/* One record as `a{sv}`: `result` always; `due`, `started`, `ended`
 * (wall-clock µs, `x`), `duration` (µs, when it started and ended),
 * `exit-status` (`i`), `late` (`b`, only if true), `output` (`s`) when
 * known. */
GVariant *
heartbeat_run_to_variant (const HeartbeatRun *run)
{
  g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_variant_builder_add (&b, "{sv}", "result", g_variant_new_string (result_nick (run->result)));
  if (run->due)
    g_variant_builder_add (&b, "{sv}", "due-usec", g_variant_new_int64 (run->due));
  if (run->started)
    g_variant_builder_add (&b, "{sv}", "started-usec", g_variant_new_int64 (run->started));
  if (run->ended)
    g_variant_builder_add (&b, "{sv}", "ended-usec", g_variant_new_int64 (run->ended));
  if (run->started && run->ended)
    g_variant_builder_add (&b, "{sv}", "duration-usec", g_variant_new_int64 (MAX (0, run->ended - run->started)));
  if (run->exit_status >= 0)
    g_variant_builder_add (&b, "{sv}", "exit-status", g_variant_new_int32 (run->exit_status));
  if (run->late)
    g_variant_builder_add (&b, "{sv}", "late", g_variant_new_boolean (TRUE));
  if (run->output)
    g_variant_builder_add (&b, "{sv}", "output", g_variant_new_string (run->output));
  return g_variant_builder_end (&b);
}

GVariant *
heartbeat_job_runs_to_variant (const HeartbeatJob *job)
{
  g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("aa{sv}"));

  if (job)
    for (guint i = 0; i < job->runs->len; i++)
      g_variant_builder_add_value (&b, heartbeat_run_to_variant (g_ptr_array_index (job->runs, i)));
  return g_variant_builder_end (&b);
}

static gboolean
lookup_time (GVariantDict *dict,
             const char   *key,
             gint64       *out,
             GError      **error)
{
  g_autoptr(GVariant) v = g_variant_dict_lookup_value (dict, key, NULL);

  *out = 0;
  if (v == NULL)
    return TRUE;
  if (!g_variant_is_of_type (v, G_VARIANT_TYPE_INT64) || g_variant_get_int64 (v) <= 0)
    {
      g_set_error (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                   "A run's “%s” must be a positive int64 (µs since the epoch)", key);
      return FALSE;
    }
  *out = g_variant_get_int64 (v);
  return TRUE;
}

/* Reads one record of heartbeat_run_to_variant()'s form; keys it does not
 * know are ignored (a newer daemon's store), wrong types refused. */
static HeartbeatRun *
run_from_variant (GVariant *v,
                  GError  **error)
{
  g_autoptr(GVariantDict) dict = g_variant_dict_new (v);
  g_autofree HeartbeatRun *run = g_new0 (HeartbeatRun, 1);
  g_autoptr(GVariant) result = g_variant_dict_lookup_value (dict, "result", G_VARIANT_TYPE_STRING);
  g_autoptr(GVariant) exit_status = g_variant_dict_lookup_value (dict, "exit-status", NULL);
  g_autoptr(GVariant) late = g_variant_dict_lookup_value (dict, "late", NULL);
  g_autoptr(GVariant) output = g_variant_dict_lookup_value (dict, "output", NULL);
  HeartbeatRunResult r;

  if (result == NULL || !heartbeat_run_result_from_string (g_variant_get_string (result, NULL), &r))
    {
      g_set_error_literal (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                           "A run needs a known “result”");
      return NULL;
    }
  run->result = r;
  if (!lookup_time (dict, "due-usec", &run->due, error) ||
      !lookup_time (dict, "started-usec", &run->started, error) ||
      !lookup_time (dict, "ended-usec", &run->ended, error))
    return NULL;
  if (run->ended && run->started > run->ended)
    {
      g_set_error_literal (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                           "A run cannot end before it started");
      return NULL;
    }
  run->exit_status = -1;
  if (exit_status != NULL)
    {
      if (!g_variant_is_of_type (exit_status, G_VARIANT_TYPE_INT32) || g_variant_get_int32 (exit_status) < 0 ||
          g_variant_get_int32 (exit_status) > 255)
        {
          g_set_error_literal (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                               "A run's “exit-status” must be an int32 from 0 to 255");
          return NULL;
        }
      run->exit_status = g_variant_get_int32 (exit_status);
    }
  if (late != NULL && g_variant_is_of_type (late, G_VARIANT_TYPE_BOOLEAN))
    run->late = g_variant_get_boolean (late);
  if (output != NULL)
    {
      gsize len;
      const char *text;

      if (!g_variant_is_of_type (output, G_VARIANT_TYPE_STRING))
        {
          g_set_error_literal (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                               "A run's “output” must be a string");
          return NULL;
        }
      text = g_variant_get_string (output, &len);
      heartbeat_run_set_output (run, text, (gssize) len);
    }
  return g_steal_pointer (&run);
}

/* Replaces the records with @runs (`aa{sv}`, oldest first, as
 * heartbeat_job_runs_to_variant() gives them), bounded as always. A
 * record still running is the run in progress only if it is the last. On
 * error nothing changed. */
gboolean
heartbeat_job_set_runs (HeartbeatJob *job,
                        GVariant     *runs,
                        gint64        now_realtime,
                        GError      **error)
{
  g_autoptr(GPtrArray) read = g_ptr_array_new_with_free_func (run_free);
  gsize n, first;

  if (!g_variant_is_of_type (runs, G_VARIANT_TYPE ("aa{sv}")))
    {
      g_set_error_literal (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT,
                           "Runs must be an aa{sv}");
      return FALSE;
    }
  n = g_variant_n_children (runs);
  first = n > HEARTBEAT_RUNS_MAX ? n - HEARTBEAT_RUNS_MAX : 0;
  for (gsize i = first; i < n; i++)
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (runs, i);
      HeartbeatRun *run = run_from_variant (child, error);

      if (run == NULL)
        return FALSE;
      g_ptr_array_add (read, run);
    }

  g_ptr_array_unref (job->runs);
  job->runs = g_steal_pointer (&read);
  job->current = NULL;
  if (job->runs->len > 0)
    {
      HeartbeatRun *last = g_ptr_array_index (job->runs, job->runs->len - 1);

      if (last->started && !last->ended &&
          (last->result == HEARTBEAT_RUN_RESULT_RUNNING || last->result == HEARTBEAT_RUN_RESULT_TIMED_OUT))
        job->current = last;
    }
  trim (job, now_realtime);
  return TRUE;
}
