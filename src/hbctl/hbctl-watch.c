/* hbctl-watch.c: hbctl watch, every event as it happens
 *
 * A change of state is printed with why (the agent record's reason, asked
 * for when the change arrives): "stale -> error (exit status 3: disk
 * full)". "recovered" is printed only when the agent became healthy (a
 * daemon that says more is not believed: stale -> error is no recovery).
 * The state words are coloured on a terminal.
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
  GMainLoop  *loop;
  gboolean    json;
  int         status;
  GHashTable *states;   /* id -> the state its last change said */
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
    {
      /* the event word in the colour of the state it tells of */
      const char *state = strcmp (event, "stale") == 0 || strcmp (event, "timed-out") == 0 ? event
                          : strcmp (event, "recovered") == 0 ? "healthy" : NULL;
      g_autofree char *padded = g_strdup_printf ("%-12s", event);
      g_autofree char *shown = state ? hbctl_colored (state, padded) : g_strdup (padded);

      g_print ("%s  %s  %s  %s\n", stamp, shown, id, detail);
    }
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

  g_hash_table_remove (w->states, id);
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

/* AgentRecovered comes after the AgentStateChanged of the same change:
 * a recovery is a change to healthy, nothing else. */
static void
on_recovered (HeartbeatClient *client, const char *id, Watch *w)
{
  const char *state = g_hash_table_lookup (w->states, id);

  if (state && strcmp (state, "healthy") != 0)
    return;
  emit_event (w, "recovered", id, "", NULL);
}

/* Why @id is in its state now: its record's reason, one line; "" if it
 * has none or cannot be had (gone already). */
static char *
current_reason (HeartbeatClient *client,
                const char      *id)
{
  g_autoptr(GVariant) agent = heartbeat_client_get_agent (client, id, NULL);

  return agent ? hbctl_agent_reason (agent) : g_strdup ("");
}

static void
on_state_changed (HeartbeatClient *client, const char *id, const char *old_state,
                  const char *new_state, Watch *w)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree char *reason = current_reason (client, id);
  g_autofree char *old_shown = hbctl_colored (old_state, old_state);
  g_autofree char *new_shown = hbctl_colored (new_state, new_state);
  g_autofree char *detail = NULL;

  g_hash_table_replace (w->states, g_strdup (id), g_strdup (new_state));
  if (*reason && strcmp (reason, new_state) != 0)
    detail = g_strdup_printf ("%s -> %s (%s)", old_shown, new_shown, reason);
  else
    detail = g_strdup_printf ("%s -> %s", old_shown, new_shown);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "old-state");
  json_builder_add_string_value (b, old_state);
  json_builder_set_member_name (b, "new-state");
  json_builder_add_string_value (b, new_state);
  json_builder_set_member_name (b, "reason");
  json_builder_add_string_value (b, reason);
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
  Watch w = { NULL, FALSE, EXIT_OK, NULL };
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
  w.states = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
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
  g_hash_table_unref (w.states);
  return w.status;
}
