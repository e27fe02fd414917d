/* test-faults.c: heartbeatd under faults it must survive
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>

#include "hb-harness.h"

typedef struct {
  HbHarness *h;
  char      *mount_point;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->h = hb_harness_new ();
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_pointer (&f->h, hb_harness_free);   /* the daemon first */
  if (f->mount_point)
    umount2 (f->mount_point, MNT_DETACH);
  g_free (f->mount_point);
}


static JsonObject *
health (SoupSession *session, guint16 port, JsonParser *parser)
{
  g_autofree char *uri = g_strdup_printf ("http://127.0.0.1:%u/health", port);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", uri);
  g_autoptr(GBytes) body = soup_session_send_and_read (session, msg, NULL, NULL);
  g_autoptr(GError) error = NULL;

  g_assert_nonnull (body);
  json_parser_load_from_data (parser, g_bytes_get_data (body, NULL), (gssize) g_bytes_get_size (body), &error);
  g_assert_no_error (error);
  return json_node_get_object (json_parser_get_root (parser));
}

static const char *
status_problem (HbHarness *h, GVariant **holder)
{
  *holder = hb_call_ok (h, NULL, "GetStatus", NULL, "(a{sv})");
  {
    g_autoptr(GVariant) dict = g_variant_get_child_value (*holder, 0);
    return hb_dict_string (dict, "problem");
  }
}

/* Waits for a STATUS= whose text contains (or, with @absent, lacks) @part. */
static void
wait_status_line (HbHarness *h, guint *cursor, const char *part, gboolean absent)
{
  for (;;)
    {
      const HbNotifyMessage *message = hb_wait_notify (h, cursor, "STATUS=");
      g_autofree char *value = NULL;

      hb_notify_message_get (message, "STATUS=", &value);
      if ((strstr (value, part) != NULL) != absent)
        return;
    }
}

/* The state directory fills up: the daemon keeps serving, says so in
 * /health, GetStatus and STATUS=, and writes again once it can. */
static void
test_state_disk_full (Fixture *f, gconstpointer data)
{
  g_autoptr(SoupSession) session = soup_session_new_with_options ("timeout", 5, NULL);
  g_autofree char *filler = NULL;
  g_autofree char *state_file = NULL;
  g_autofree char *saved = NULL;
  g_autofree char *block = g_malloc0 (4096);
  g_autoptr(GVariant) holder = NULL;
  g_autoptr(GVariant) reply = NULL;
  JsonObject *o;
  guint cursor;
  FILE *fill;

  if (!hb_harness_start_bus (f->h, HB_BUS_SESSION))
    return;
  f->mount_point = g_build_filename (f->h->tmpdir, "tiny", NULL);
  g_assert_cmpint (g_mkdir (f->mount_point, 0700), ==, 0);
  if (mount ("hb-test", f->mount_point, "tmpfs", 0, "size=256k,mode=0700") != 0)
    {
      g_test_skip_printf ("cannot mount a tmpfs (%s): not root?", g_strerror (errno));
      g_clear_pointer (&f->mount_point, g_free);
      return;
    }
  g_free (f->h->state_dir);
  f->h->state_dir = g_build_filename (f->mount_point, "state", NULL);
  state_file = g_build_filename (f->h->state_dir, "agents.db", NULL);
  hb_harness_write_config (f->h, hb_default_config);
  f->h->http_port = hb_free_port ();
  hb_harness_start_daemon (f->h, 0);

  reply = hb_call_ok (f->h, NULL, "Register", g_variant_new_parsed ("('before', @a{sv} {})"), "()");
  g_clear_pointer (&reply, g_variant_unref);
  g_assert_true (g_file_test (state_file, G_FILE_TEST_EXISTS));

  /* fill the disk */
  filler = g_build_filename (f->mount_point, "filler", NULL);
  fill = g_fopen (filler, "w");
  g_assert_nonnull (fill);
  while (fwrite (block, 1, 4096, fill) == 4096 && fflush (fill) == 0)
    ;
  fclose (fill);

  /* a registration cannot be saved, so it is refused and not kept (an
   * acknowledged one would be lost at the next kill -9); an
   * unregistration likewise; the problem is reported everywhere */
  cursor = hb_harness_notify_cursor (f->h);
  hb_call_error (f->h, NULL, "Register", g_variant_new_parsed ("('during', {'task-id': <%s>})",
                                                               "a task long enough to need a few more bytes on disk"),
                 "NotSaved");
  hb_call_error (f->h, NULL, "GetAgent", g_variant_new ("(s)", "during"), "NotFound");
  hb_call_error (f->h, NULL, "Unregister", g_variant_new ("(s)", "before"), "NotSaved");
  hb_call_error (f->h, NULL, "MarkIdle", g_variant_new ("(s)", "before"), "NotSaved");
  wait_status_line (f->h, &cursor, "Cannot save", FALSE);
  g_assert_nonnull (strstr (status_problem (f->h, &holder), "Cannot save the agents"));
  g_clear_pointer (&holder, g_variant_unref);
  {
    g_autoptr(JsonParser) parser = json_parser_new ();
    o = health (session, f->h->http_port, parser);
    g_assert_cmpstr (json_object_get_string_member (o, "status"), ==, "degraded");
    g_assert_nonnull (strstr (json_object_get_string_member (o, "problem"), "Cannot save"));
  }
  /* and it keeps serving */
  reply = hb_call_ok (f->h, NULL, "GetAgent", g_variant_new ("(s)", "before"), "(a{sv})");
  g_clear_pointer (&reply, g_variant_unref);
  reply = hb_call_ok (f->h, NULL, "Beat", g_variant_new_parsed ("('before', @a{sv} {})"), "()");
  g_clear_pointer (&reply, g_variant_unref);

  /* room again: the next write succeeds and the problem is gone */
  g_assert_cmpint (g_unlink (filler), ==, 0);
  reply = hb_call_ok (f->h, NULL, "Register", g_variant_new_parsed ("('after', @a{sv} {})"), "()");
  g_clear_pointer (&reply, g_variant_unref);
  wait_status_line (f->h, &cursor, "Cannot save", TRUE);
  g_assert_cmpstr (status_problem (f->h, &holder), ==, "");
  {
    g_autoptr(JsonParser) parser = json_parser_new ();
    o = health (session, f->h->http_port, parser);
    g_assert_cmpstr (json_object_get_string_member (o, "status"), ==, "ok");
  }
  saved = hb_harness_saved_agents (f->h);
  g_assert_cmpstr (saved, ==, "after before");

  /* killed at once: everything acknowledged is back, nothing else */
  hb_harness_signal_daemon (f->h, SIGKILL);
  hb_harness_wait_exit (f->h, f->h->daemon, HB_WAIT_MS);
  hb_harness_start_daemon (f->h, 0);
  reply = hb_call_ok (f->h, NULL, "GetAgent", g_variant_new ("(s)", "before"), "(a{sv})");
  g_clear_pointer (&reply, g_variant_unref);
  reply = hb_call_ok (f->h, NULL, "GetAgent", g_variant_new ("(s)", "after"), "(a{sv})");
  g_clear_pointer (&reply, g_variant_unref);
  hb_call_error (f->h, NULL, "GetAgent", g_variant_new ("(s)", "during"), "NotFound");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/faults/state-disk-full", Fixture, NULL, fixture_setup, test_state_disk_full, fixture_teardown);
  return g_test_run ();
}
