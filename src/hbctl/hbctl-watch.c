/* hbctl-watch.c: hbctl watch, every event as it happens
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "hb-duration.h"
#include "hbctl.h"
#include "hbctl-output.h"

typedef struct {
  GMainLoop *loop;
  gboolean   json;
  int        status;
} Watch;

static void
emit_event (Watch      *w,
            const char *event,
            const char *id,
            const char *detail,
            JsonBuilder *extra)   /* an open object builder, or NULL */
{
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *stamp = g_date_time_format (now, "%Y-%m-%dT%H:%M:%S.%fZ");

  /* %f is µs; keep milliseconds */
  if (strlen (stamp) > 24)
    {
      stamp[23] = 'Z';
      stamp[24] = '\0';
    }

  if (w->json)
    {
      g_autoptr(JsonBuilder) b = extra ? g_object_ref (extra) : json_builder_new ();
      g_autoptr(JsonGenerator) generator = json_generator_new ();
      g_autoptr(JsonNode) root = NULL;
      g_autofree char *text = NULL;

      if (extra == NULL)
        json_builder_begin_object (b);
      json_builder_set_member_name (b, "time");
      json_builder_add_string_value (b, stamp);
      json_builder_set_member_name (b, "event");
      json_builder_add_string_value (b, event);
      json_builder_set_member_name (b, "id");
      json_builder_add_string_value (b, id);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      json_generator_set_root (generator, root);
      text = json_generator_to_data (generator, NULL);
      g_print ("%s\n", text);
    }
  else
    g_print ("%s  %-12s  %s  %s\n", stamp, event, id, detail);
  fflush (stdout);
}

/* An event with one extra string member. */
static void
emit_text_event (Watch      *w,
                 const char *event,
                 const char *id,
                 const char *key,
                 const char *value,
                 const char *detail)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, key);
  json_builder_add_string_value (b, value);
  emit_event (w, event, id, detail, b);
}

/* An event with one extra duration member; @label is translated text
 * with one %s for the duration. */
static void
emit_duration_event (Watch      *w,
                     const char *event,
                     const char *id,
                     const char *key,
                     gint64      usec,
                     const char *label)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree char *d = hb_duration_format (usec);
  g_autofree char *detail = g_strdup_printf (label, d);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, key);
  json_builder_add_int_value (b, usec);
  emit_event (w, event, id, detail, b);
}

static void
on_registered (HeartbeatClient *client, const char *id, const char *task, Watch *w)
{
  g_autofree char *detail = *task ? g_strdup_printf (_("task %s"), task) : g_strdup ("");

  emit_text_event (w, "registered", id, "task-id", task, detail);
}

static void
on_unregistered (HeartbeatClient *client, const char *id, const char *reason, Watch *w)
{
  g_autofree char *detail = g_strdup_printf (_("reason %s"), reason);

  emit_text_event (w, "unregistered", id, "reason", reason, detail);
}

static void
on_stale (HeartbeatClient *client, const char *id, gint64 idle, HeartbeatAgentInfo *agent, Watch *w)
{
  /* TRANSLATORS: %s is a duration */
  emit_duration_event (w, "stale", id, "idle-usec", idle, _("idle %s"));
}

static void
on_timed_out (HeartbeatClient *client, const char *id, gint64 running, HeartbeatAgentInfo *agent, Watch *w)
{
  /* TRANSLATORS: %s is a duration */
  emit_duration_event (w, "timed-out", id, "running-usec", running, _("running %s"));
}

static void
on_recovered (HeartbeatClient *client, const char *id, Watch *w)
{
  emit_event (w, "recovered", id, "", NULL);
}

static void
on_state_changed (HeartbeatClient *client, const char *id, const char *old_state,
                  const char *new_state, Watch *w)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree char *detail = g_strdup_printf ("%s -> %s", old_state, new_state);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "old-state");
  json_builder_add_string_value (b, old_state);
  json_builder_set_member_name (b, "new-state");
  json_builder_add_string_value (b, new_state);
  emit_event (w, "state", id, detail, b);
}

static void
on_vanished (HeartbeatClient *client, Watch *w)
{
  hbctl_print_error (_("heartbeatd left the %s"), hbctl_bus_name ());
  w->status = EXIT_NO_DAEMON;
  g_main_loop_quit (w->loop);
}

static gboolean
on_quit_signal (gpointer user_data)
{
  Watch *w = user_data;

  g_main_loop_quit (w->loop);
  return G_SOURCE_CONTINUE;
}

int
hbctl_watch (int argc, char **argv)
{
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, N_("Print one JSON object per event"), NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(HeartbeatClient) client = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  Watch w = { NULL, FALSE, EXIT_OK };
  int status = EXIT_OK;
  guint sigint, sigterm;

  g_option_context_set_summary (context, _("Print every event as it happens, until interrupted."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!hbctl_parse_command (context, &argc, &argv, &status) || !hbctl_want_args (argc, 0, NULL, &status))
    return status;
  client = hbctl_connect_client (&status);
  if (client == NULL)
    return status;

  loop = g_main_loop_new (NULL, FALSE);
  w.loop = loop;
  w.json = json;
  g_signal_connect (client, "agent-registered", G_CALLBACK (on_registered), &w);
  g_signal_connect (client, "agent-unregistered", G_CALLBACK (on_unregistered), &w);
  g_signal_connect (client, "agent-stale", G_CALLBACK (on_stale), &w);
  g_signal_connect (client, "agent-timed-out", G_CALLBACK (on_timed_out), &w);
  g_signal_connect (client, "agent-recovered", G_CALLBACK (on_recovered), &w);
  g_signal_connect (client, "agent-state-changed", G_CALLBACK (on_state_changed), &w);
  g_signal_connect (client, "daemon-vanished", G_CALLBACK (on_vanished), &w);
  sigint = g_unix_signal_add (SIGINT, on_quit_signal, &w);
  sigterm = g_unix_signal_add (SIGTERM, on_quit_signal, &w);
  g_main_loop_run (loop);
  g_source_remove (sigint);
  g_source_remove (sigterm);
  g_signal_handlers_disconnect_by_data (client, &w);
  return w.status;
}
