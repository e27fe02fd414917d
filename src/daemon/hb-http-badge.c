/* hb-http-badge.c: status badges for READMEs and wikis
 *
 *   GET /v1/agents/{id}/badge.svg   the agent's state
 *   GET /v1/badge.svg[?tag=T]       the most severe state among the agents
 *                                   with tag T (every agent without ?tag=),
 *                                   "no agents" when none matches
 *
 * Both take ?label=TEXT (1 to HB_HTTP_BADGE_LABEL_MAX bytes of UTF-8, no
 * control character; default "heartbeat") for the left half. The answer
 * is a small shields.io-style SVG, "LABEL | STATE", coloured by the
 * state's severity (heartbeat_agent_state_get_severity()), with every
 * text escaped, and `Cache-Control: no-cache` so that an image proxy (as
 * GitHub's camo) asks again instead of showing a state of yesterday.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-http-private.h"

#include <string.h>

#include "heartbeat-values.h"

/* The most bytes of ?label= */
#define HB_HTTP_BADGE_LABEL_MAX 64

#define DEFAULT_LABEL "heartbeat"
#define NO_AGENTS     "no agents"

/* shields.io's palette */
#define COLOR_GREEN   "#4c1"
#define COLOR_GREY    "#9f9f9f"
#define COLOR_YELLOW  "#dfb317"
#define COLOR_ORANGE  "#fe7d37"
#define COLOR_RED     "#e05d44"

static const char *
state_color (HeartbeatAgentState state)
{
  guint severity = heartbeat_agent_state_get_severity (state);

  if (state == HEARTBEAT_AGENT_STATE_HEALTHY)
    return COLOR_GREEN;
  if (state == HEARTBEAT_AGENT_STATE_PAUSED)
    return COLOR_GREY;
  if (severity <= heartbeat_agent_state_get_severity (HEARTBEAT_AGENT_STATE_NO_HEARTBEAT))
    return COLOR_YELLOW;
  if (severity <= heartbeat_agent_state_get_severity (HEARTBEAT_AGENT_STATE_STALE))
    return COLOR_ORANGE;
  return COLOR_RED;
}

/* About how wide @text is in 11 px Verdana: 7 px a character, 10 px of
 * padding. */
static guint
text_width (const char *text)
{
  return 10 + 7 * (guint) g_utf8_strlen (text, -1);
}

/* Sends the badge "@label | @value" in @color. */
static void
send_badge (SoupServerMessage *msg,
            const char        *label,
            const char        *value,
            const char        *color)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  g_autofree char *label_text = g_markup_escape_text (label, -1);
  g_autofree char *value_text = g_markup_escape_text (value, -1);
  guint left = text_width (label), right = text_width (value), width = left + right;
  GString *svg = g_string_new (NULL);
  gsize length;

  g_string_append_printf (svg,
    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" height=\"20\" role=\"img\" "
    "aria-label=\"%s: %s\">"
    "<title>%s: %s</title>"
    "<linearGradient id=\"s\" x2=\"0\" y2=\"100%%\">"
    "<stop offset=\"0\" stop-color=\"#bbb\" stop-opacity=\".1\"/>"
    "<stop offset=\"1\" stop-opacity=\".1\"/></linearGradient>"
    "<clipPath id=\"r\"><rect width=\"%u\" height=\"20\" rx=\"3\" fill=\"#fff\"/></clipPath>"
    "<g clip-path=\"url(#r)\">"
    "<rect width=\"%u\" height=\"20\" fill=\"#555\"/>"
    "<rect x=\"%u\" width=\"%u\" height=\"20\" fill=\"%s\"/>"
    "<rect width=\"%u\" height=\"20\" fill=\"url(#s)\"/></g>"
    "<g fill=\"#fff\" text-anchor=\"middle\" "
    "font-family=\"Verdana,Geneva,DejaVu Sans,sans-serif\" font-size=\"11\">"
    "<text x=\"%u\" y=\"15\" fill=\"#010101\" fill-opacity=\".3\">%s</text>"
    "<text x=\"%u\" y=\"14\">%s</text>"
    "<text x=\"%u\" y=\"15\" fill=\"#010101\" fill-opacity=\".3\">%s</text>"
    "<text x=\"%u\" y=\"14\">%s</text></g></svg>\n",
    width, label_text, value_text, label_text, value_text,
    width, left, left, right, color, width,
    left / 2, label_text, left / 2, label_text,
    left + right / 2, value_text, left + right / 2, value_text);

  soup_message_headers_replace (headers, "Cache-Control", "no-cache");
  length = svg->len;
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "image/svg+xml", SOUP_MEMORY_TAKE,
                                    g_string_free (svg, FALSE), length);
}

/* The badge's query (?label=, and ?tag= when @tag is not NULL): FALSE
 * with a 400 sent if a value is wrong or another parameter is given. */
static gboolean
read_badge_query (SoupServerMessage *msg,
                  GHashTable        *params,
                  const char       **label,
                  const char       **tag)
{
  g_autoptr(GError) error = NULL;
  GHashTableIter iter;
  gpointer key;

  *label = DEFAULT_LABEL;
  if (tag)
    *tag = NULL;
  if (params == NULL)
    return TRUE;

  g_hash_table_iter_init (&iter, params);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (strcmp (key, "label") != 0 && (tag == NULL || strcmp (key, "tag") != 0))
      {
        send_error (msg, SOUP_STATUS_BAD_REQUEST, "Unknown parameter “%s” (known: label%s)",
                    (const char *) key, tag ? ", tag" : "");
        return FALSE;
      }

  if (g_hash_table_contains (params, "label"))
    {
      *label = g_hash_table_lookup (params, "label");
      if (!heartbeat_text_is_valid (*label, HB_HTTP_BADGE_LABEL_MAX, "“label”", &error))
        {
          send_error (msg, SOUP_STATUS_BAD_REQUEST, "%s", error->message);
          return FALSE;
        }
    }
  if (tag && g_hash_table_contains (params, "tag"))
    {
      const char *tags[] = { g_hash_table_lookup (params, "tag"), NULL };

      if (!heartbeat_tags_validate (tags, &error))
        {
          send_error (msg, SOUP_STATUS_BAD_REQUEST, "“tag”: %s", error->message);
          return FALSE;
        }
      *tag = tags[0];
    }
  return TRUE;
}

static GHashTable *
decode_query (SoupServerMessage *msg)
{
  const char *query = g_uri_get_query (soup_server_message_get_uri (msg));

  return query ? soup_form_decode (query) : NULL;
}

/* GET /v1/agents/{id}/badge.svg */
void
handle_agent_badge (HbHttp            *self,
                    SoupServerMessage *msg,
                    const char        *id)
{
  g_autoptr(GHashTable) params = decode_query (msg);
  g_autoptr(GError) error = NULL;
  HeartbeatAgent *agent;
  HeartbeatAgentState state;
  const char *label;

  if (!heartbeat_id_is_valid (id, &error))
    {
      send_error (msg, SOUP_STATUS_BAD_REQUEST, "%s", error->message);
      return;
    }
  if (!read_badge_query (msg, params, &label, NULL))
    return;
  agent = heartbeat_monitor_lookup (self->monitor, id);
  if (agent == NULL)
    {
      send_error (msg, SOUP_STATUS_NOT_FOUND, "No agent with id “%s”", id);
      return;
    }
  state = heartbeat_agent_get_state (agent);
  send_badge (msg, label, heartbeat_agent_state_to_string (state), state_color (state));
}

/* GET /v1/badge.svg[?tag=T] */
void
handle_badge (HbHttp            *self,
              SoupServerMessage *msg,
              gboolean           privileged)
{
  g_autoptr(GHashTable) params = decode_query (msg);
  g_autoptr(GPtrArray) agents = NULL;
  const char *label, *tag;
  gboolean any = FALSE;
  HeartbeatAgentState worst = HEARTBEAT_AGENT_STATE_HEALTHY;

  if (!read_badge_query (msg, params, &label, &tag))
    return;

  agents = heartbeat_monitor_list_agents (self->monitor);
  for (guint i = 0; i < agents->len; i++)
    {
      HeartbeatAgent *agent = g_ptr_array_index (agents, i);
      HeartbeatAgentState state = heartbeat_agent_get_state (agent);

      if (tag && !g_strv_contains (heartbeat_agent_get_tags (agent), tag))
        continue;
      if (!any || heartbeat_agent_state_get_severity (state) > heartbeat_agent_state_get_severity (worst))
        worst = state;
      any = TRUE;
    }
  if (!any)
    send_badge (msg, label, NO_AGENTS, COLOR_GREY);
  else
    send_badge (msg, label, heartbeat_agent_state_to_string (worst), state_color (worst));
}
