/* hb-dbus-service.c: the D-Bus front, org.heartbeat.Monitor1
 *
 * Translates between the message bus and the monitor: method calls on
 * /org/heartbeat/Monitor1 become monitor calls, monitor signals become
 * D-Bus signals and PropertiesChanged. The interface is the one in
 * dbus/org.heartbeat.Monitor1.xml, loaded from the daemon's GResource.
 *
 * Monitor calls: heartbeat_monitor_register(), _beat(), _mark_idle(),
 * _unregister(), _pause(), _resume(), _start_run(), _finish_run(),
 * _lookup(), _list_agents(), _get_n_agents(), _count_owned_by(),
 * _get_status(), _get_time(), _to_realtime() and the threshold getters.
 * Monitor signals: agent-registered, agent-unregistered, agent-stale,
 * agent-timed-out, agent-recovered, agent-state-changed, and notify:: of
 * the thresholds.
 *
 * Who the caller is comes from the bus (HbCallers: GetConnectionUnixUser,
 * cached per unique name until the name leaves); whether it may change an
 * agent is asked of HbAuthority; processes and peers the agents are bound
 * to are watched by HbLiveness. Certain Beats are answered in GDBus's
 * worker thread by the fast Beat path (hb-dbus-fast-beat.c), which keeps
 * the only agent state of the front, a mirror of id → owner uid.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "hb-agent-record.h"
#include "hb-authority.h"
#include "hb-callers.h"
#include "hb-dbus-fast-beat.h"
#include "hb-dbus-service.h"
#include "hb-host.h"
#include "hb-liveness.h"
#include "hb-resources.h"
#include "hb-units.h"
#include "heartbeat-values.h"

#define INTERFACE_RESOURCE "/org/heartbeat/Monitor1/org.heartbeat.Monitor1.xml"

/* ------------------------------------------------------------------ */
/* The object                                                          */

typedef enum {
  CHANGED_AGENT_COUNT            = 1 << 0,
  CHANGED_STALE_THRESHOLD        = 1 << 1,
  CHANGED_TIMEOUT_THRESHOLD      = 1 << 2,
  CHANGED_CHECK_INTERVAL         = 1 << 3,
  CHANGED_STALE_WARNING_ONLY_ONCE = 1 << 4,
} ChangedProperties;

struct _HbDBusService {
  GObject             parent_instance;

  HeartbeatMonitor   *monitor;
  GDBusConnection    *connection;
  char               *version;
  char               *problem;   /* why the daemon is degraded, or NULL */
  guint               quota;
  gsize               reply_max_bytes;  /* HB_DBUS_REPLY_MAX_BYTES */
  gsize               page_max_bytes;   /* HB_DBUS_PAGE_MAX_BYTES */

  HbAuthority        *authority;
  HbCallers          *callers;
  HbLiveness         *liveness;
  HbUnits            *units;       /* or NULL */

  GDBusNodeInfo      *node_info;
  GDBusInterfaceInfo *interface_info;  /* in node_info */
  guint               registration_id;
  GArray             *monitor_handlers; /* gulong */

  /* Who the callers are; what the bus thread may know */
  HbFastBeat         *fast_beat;

  /* PropertiesChanged, coalesced */
  guint               changed_properties; /* ChangedProperties */
  guint               changed_idle_id;
  guint               announced_agent_count;
};

G_DEFINE_FINAL_TYPE (HbDBusService, hb_dbus_service, G_TYPE_OBJECT)

static void
return_error (GDBusMethodInvocation *invocation,
              const GError          *error)
{
  HbDBusError code = HB_DBUS_ERROR_INVALID_ARGUMENT;

  if (error->domain == HB_DBUS_ERROR)
    code = error->code;
  else if (g_error_matches (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_NOT_FOUND))
    code = HB_DBUS_ERROR_NOT_FOUND;
  else if (g_error_matches (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_INVALID_ARGUMENT))
    code = HB_DBUS_ERROR_INVALID_ARGUMENT;
  else if (g_error_matches (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_QUOTA_EXCEEDED))
    code = HB_DBUS_ERROR_QUOTA_EXCEEDED;
  else if (g_error_matches (error, HEARTBEAT_ERROR, HEARTBEAT_ERROR_NOT_SAVED))
    code = HB_DBUS_ERROR_NOT_SAVED;
  else
    {
      /* not ours (a bus error on the way): say what it was, generically */
      g_dbus_method_invocation_return_error (invocation, G_DBUS_ERROR, G_DBUS_ERROR_FAILED,
                                             "%s", error->message);
      return;
    }

  g_debug ("%s.%s from %s failed: %s", g_dbus_method_invocation_get_interface_name (invocation),
           g_dbus_method_invocation_get_method_name (invocation),
           g_dbus_method_invocation_get_sender (invocation), error->message);
  g_dbus_method_invocation_return_error_literal (invocation, HB_DBUS_ERROR, code, error->message);
}

/* ------------------------------------------------------------------ */
/* Reply sizes                                                         */

/*
 * A bus disconnects a peer that sends a message larger than its
 * max_message_size (32 MiB on the system bus by default), and a daemon
 * that is disconnected loses its name. So no reply may be larger than
 * reply_max_bytes (HB_DBUS_REPLY_MAX_BYTES), and ListAgentsPage fills a
 * page up to page_max_bytes only. Sizes are counted as the D-Bus
 * marshalling lays the values out (with its alignment padding), which is
 * not GVariant's serialization: an a{sv} of small values takes about
 * twice as many bytes on the bus.
 */

/* What a reply's header may take besides its body: the fixed 16 bytes
 * and the reply-serial, destination and sender (unique names, at most
 * 255 bytes each) and signature fields, with their padding. */
#define REPLY_HEADER_ALLOWANCE 1024

static gsize
wire_align (gsize offset,
            gsize alignment)
{
  return (offset + alignment - 1) & ~(alignment - 1);
}

/* The alignment of a value of @type in a D-Bus message. */
static gsize
wire_alignment (const GVariantType *type)
{
  switch (g_variant_type_peek_string (type)[0])
    {
    case 'y': case 'g': case 'v':
      return 1;
    case 'n': case 'q':
      return 2;
    case 'x': case 't': case 'd': case '(': case '{':
      return 8;
    default:  /* b i u h s o a, and m, which D-Bus has not */
      return 4;
    }
}

/* The size of one element of a fixed-size basic @type, or 0. */
static gsize
wire_fixed_size (const GVariantType *type)
{
  switch (g_variant_type_peek_string (type)[0])
    {
    case 'y':
      return 1;
    case 'n': case 'q':
      return 2;
    case 'b': case 'i': case 'u': case 'h':
      return 4;
    case 'x': case 't': case 'd':
      return 8;
    default:
      return 0;
    }
}

/* Where @value ends in a message body when it is laid out from byte
 * @offset of the body (the body starts 8-aligned). */
static gsize
wire_end (GVariant *value,
          gsize     offset)
{
  const GVariantType *type = g_variant_get_type (value);
  gsize fixed = wire_fixed_size (type);

  if (fixed != 0)
    return wire_align (offset, fixed) + fixed;

  switch (g_variant_classify (value))
    {
    case G_VARIANT_CLASS_STRING:
    case G_VARIANT_CLASS_OBJECT_PATH:
      {
        gsize length = 0;

        g_variant_get_string (value, &length);
        return wire_align (offset, 4) + 4 + length + 1;
      }
    case G_VARIANT_CLASS_SIGNATURE:
      {
        gsize length = 0;

        g_variant_get_string (value, &length);
        return offset + 1 + length + 1;
      }
    case G_VARIANT_CLASS_VARIANT:
      {
        g_autoptr(GVariant) child = g_variant_get_variant (value);

        offset += 1 + strlen (g_variant_get_type_string (child)) + 1;
        return wire_end (child, offset);
      }
    case G_VARIANT_CLASS_ARRAY:
    case G_VARIANT_CLASS_MAYBE:
      {
        const GVariantType *element = g_variant_type_element (type);
        gsize n = g_variant_n_children (value);
        gsize element_size = wire_fixed_size (element);

        offset = wire_align (offset, 4) + 4;
        offset = wire_align (offset, wire_alignment (element));
        if (element_size != 0)
          return offset + n * element_size;
        for (gsize i = 0; i < n; i++)
          {
            g_autoptr(GVariant) child = g_variant_get_child_value (value, i);

            offset = wire_end (child, offset);
          }
        return offset;
      }
    case G_VARIANT_CLASS_TUPLE:
    case G_VARIANT_CLASS_DICT_ENTRY:
      {
        gsize n = g_variant_n_children (value);

        offset = wire_align (offset, 8);
        for (gsize i = 0; i < n; i++)
          {
            g_autoptr(GVariant) child = g_variant_get_child_value (value, i);

            offset = wire_end (child, offset);
          }
        return offset;
      }
    default:
      g_assert_not_reached ();
    }
  return offset;
}

/* A byte limit from the environment (for tests), or @fallback. */
static gsize
limit_from_environment (const char *variable,
                        gsize       fallback)
{
  const char *text = g_getenv (variable);
  guint64 value = 0;
  g_autoptr(GError) error = NULL;

  if (text == NULL)
    return fallback;
  if (!g_ascii_string_to_unsigned (text, 10, 1024, G_MAXUINT32, &value, &error))
    {
      g_warning ("Ignoring $%s: %s", variable, error->message);
      return fallback;
    }
  return (gsize) value;
}

/* ------------------------------------------------------------------ */
/* Agents as dictionaries                                              */

static guint64
nonnegative (gint64 value)
{
  return value < 0 ? 0 : (guint64) value;
}

/* The monitor's status with its x durations as the interface's t, plus the
 * version, with @ids as its `agents` (or the monitor's list if NULL).
 * Keys the monitor adds later pass through. */
static GVariant *
build_status (HbDBusService *self,
              GVariant      *status,
              GVariant      *ids,
              gboolean       truncated)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  GVariantIter iter;
  const char *key;
  GVariant *value;

  g_variant_iter_init (&iter, status);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_autoptr(GVariant) owned G_GNUC_UNUSED = value;

      if (ids && strcmp (key, "agents") == 0)
        g_variant_builder_add (&builder, "{sv}", key, ids);
      else if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT64))
        g_variant_builder_add (&builder, "{sv}", key,
                               g_variant_new_uint64 (nonnegative (g_variant_get_int64 (value))));
      else
        g_variant_builder_add (&builder, "{sv}", key, value);
    }
  if (truncated)
    g_variant_builder_add (&builder, "{sv}", "agents-truncated", g_variant_new_boolean (TRUE));
  g_variant_builder_add (&builder, "{sv}", "version", g_variant_new_string (self->version));
  g_variant_builder_add (&builder, "{sv}", "started-at-usec", g_variant_new_uint64 (nonnegative (hb_host_process_started_at ())));
  g_variant_builder_add (&builder, "{sv}", "problem", g_variant_new_string (self->problem ? self->problem : ""));
  return g_variant_builder_end (&builder);
}

/* The status as GetStatus replies it: when the ids of every agent would
 * take the reply past reply_max_bytes, `agents` lists the first ones that
 * fit and `agents-truncated` (only then present) is true. */
static GVariant *
describe_status (HbDBusService *self)
{
  g_autoptr(GVariant) status = g_variant_ref_sink (heartbeat_monitor_get_status (self->monitor));
  g_autoptr(GVariant) ids = g_variant_lookup_value (status, "agents", G_VARIANT_TYPE_STRING_ARRAY);
  g_autoptr(GVariant) without_ids = NULL;
  g_auto(GVariantBuilder) fitting = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_STRING_ARRAY);
  gsize rest, offset;
  gsize n;

  if (ids == NULL)
    return build_status (self, status, NULL, FALSE);

  /* the reply as a tuple, without the ids (an empty `as` in their place) */
  without_ids = g_variant_ref_sink (g_variant_new_tuple ((GVariant *[]) {
    build_status (self, status, g_variant_new_strv (NULL, 0), FALSE) }, 1));
  rest = REPLY_HEADER_ALLOWANCE + wire_end (without_ids, 0);
  if (rest + wire_end (ids, 0) <= self->reply_max_bytes)
    return build_status (self, status, NULL, FALSE);

  /* the ids sit 8-aligned at worst; count them from there */
  offset = 4;
  n = g_variant_n_children (ids);
  for (gsize i = 0; i < n; i++)
    {
      const char *id = NULL;
      gsize end;

      g_variant_get_child (ids, i, "&s", &id);
      end = wire_align (offset, 4) + 4 + strlen (id) + 1;
      if (rest + 8 + end > self->reply_max_bytes)
        break;
      g_variant_builder_add (&fitting, "s", id);
      offset = end;
    }
  return build_status (self, status, g_variant_builder_end (&fitting), TRUE);
}

/* ------------------------------------------------------------------ */
/* Arguments                                                           */

typedef struct {
  const char *key;
  const char *type;
} Field;

static const Field register_options[] = {
  { "task-id",            "s" },
  { "stale-after-usec",   "t" },
  { "timeout-after-usec", "t" },
  { "pid",                "u" },
  { "bind-to-caller",     "b" },
  { "metadata",           "a{sv}" },
  { "tags",               "as" },
};

static const Field pause_options[] = {
  { "reason", "s" },
};

static const Field beat_details[] = {
  { "status",   "s" },
  { "progress", "d" },
  { "metadata", "a{sv}" },
};

static const Field run_end_keys[] = {
  { "success",     "b" },
  { "exit-status", "i" },
  { "output",      "s" },
};

/* The most output a FinishRun may carry; the record keeps its last
 * HEARTBEAT_RUN_OUTPUT_MAX bytes. */
#define RUN_OUTPUT_MAX_BYTES (64 * 1024)

/* Checks one dictionary entry against a list of fields: unknown keys and
 * wrong types are errors that name the key, never silently ignored. */
static gboolean
check_field (const Field *fields,
             guint        n_fields,
             const char  *what,
             const char  *key,
             GVariant    *value,
             GError     **error)
{
  for (guint i = 0; i < n_fields; i++)
    {
      if (strcmp (fields[i].key, key) != 0)
        continue;
      if (g_variant_is_of_type (value, G_VARIANT_TYPE (fields[i].type)))
        return TRUE;
      g_set_error (error, HB_DBUS_ERROR, HB_DBUS_ERROR_INVALID_ARGUMENT,
                   "The %s “%s” must be of type %s, not %s", what, key,
                   fields[i].type, g_variant_get_type_string (value));
      return FALSE;
    }

  {
    g_autoptr(GString) known = g_string_new (NULL);

    for (guint i = 0; i < n_fields; i++)
      g_string_append_printf (known, "%s%s", i ? ", " : "", fields[i].key);
    g_set_error (error, HB_DBUS_ERROR, HB_DBUS_ERROR_INVALID_ARGUMENT,
                 "Unknown %s “%s” (known: %s)", what, key, known->str);
  }
  return FALSE;
}

static gboolean
check_threshold (const char *key,
                 guint64     usec,
                 GError    **error)
{
  if (usec <= (guint64) HEARTBEAT_THRESHOLD_MAX)
    return TRUE;
  g_set_error (error, HB_DBUS_ERROR, HB_DBUS_ERROR_INVALID_ARGUMENT,
               "The option “%s” must be at most %" G_GINT64_FORMAT " µs (about 100 years)",
               key, (gint64) HEARTBEAT_THRESHOLD_MAX);
  return FALSE;
}

typedef enum {
  METHOD_REGISTER,
  METHOD_BEAT,
  METHOD_MARK_IDLE,
  METHOD_UNREGISTER,
  METHOD_START_RUN,
  METHOD_FINISH_RUN,
  METHOD_PAUSE,
  METHOD_RESUME,
} Method;

/* A state-changing call on its way: parsed, then waiting for the caller's
 * uid and its authorization. */
typedef struct {
  HbDBusService         *self;
  GDBusMethodInvocation *invocation;
  Method                 method;
  char                  *id;
  guint32                caller_uid;
  guint32                checked_owner_uid;
  gboolean               counted;  /* by the fast Beat path; hb_fast_beat_call_end() when done */

  /* Register */
  char                  *task_id;
  guint64                stale_after_usec;
  guint64                timeout_after_usec;
  guint32                pid;
  gboolean               bind_to_caller;
  char                 **tags;
  /* Register and Beat */
  GVariant              *metadata;
  /* Beat */
  char                  *status;
  gboolean               has_progress;
  double                 progress;
  /* FinishRun */
  gboolean               has_success;
  gboolean               success;
  gint                   exit_status;   /* -1: not given */
  char                  *output;
  /* Pause */
  char                  *reason;
} Call;

static void
call_free (Call *call)
{
  if (call == NULL)
    return;
  if (call->counted && call->self->fast_beat)
    hb_fast_beat_call_end (call->self->fast_beat, call->invocation);
  g_object_unref (call->self);
  g_object_unref (call->invocation);
  g_free (call->id);
  g_free (call->task_id);
  g_clear_pointer (&call->metadata, g_variant_unref);
  g_free (call->status);
  g_free (call->output);
  g_strfreev (call->tags);
  g_free (call->reason);
  g_free (call);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Call, call_free)

static gboolean
parse_register_options (Call     *call,
                        GVariant *options,
                        GError  **error)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  g_variant_iter_init (&iter, options);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_autoptr(GVariant) owned G_GNUC_UNUSED = value;

      if (!check_field (register_options, G_N_ELEMENTS (register_options), "option",
                        key, value, error))
        return FALSE;

      if (strcmp (key, "task-id") == 0)
        {
          const char *task_id = g_variant_get_string (value, NULL);

          g_clear_pointer (&call->task_id, g_free);
          call->task_id = *task_id ? g_strdup (task_id) : NULL; /* empty: none */
        }
      else if (strcmp (key, "stale-after-usec") == 0)
        {
          call->stale_after_usec = g_variant_get_uint64 (value);
          if (!check_threshold (key, call->stale_after_usec, error))
            return FALSE;
        }
      else if (strcmp (key, "timeout-after-usec") == 0)
        {
          call->timeout_after_usec = g_variant_get_uint64 (value);
          if (!check_threshold (key, call->timeout_after_usec, error))
            return FALSE;
        }
      else if (strcmp (key, "pid") == 0)
        {
          call->pid = g_variant_get_uint32 (value);
          if (call->pid == 0 || call->pid > G_MAXINT32)
            {
              g_set_error (error, HB_DBUS_ERROR, HB_DBUS_ERROR_INVALID_ARGUMENT,
                           "The option “pid” must be a process id, not %u", call->pid);
              return FALSE;
            }
        }
      else if (strcmp (key, "bind-to-caller") == 0)
        {
          call->bind_to_caller = g_variant_get_boolean (value);
        }
      else if (strcmp (key, "metadata") == 0)
        {
          g_clear_pointer (&call->metadata, g_variant_unref);
          call->metadata = g_variant_ref (value);
        }
      else if (strcmp (key, "tags") == 0)
        {
          g_strfreev (call->tags);
          call->tags = g_variant_dup_strv (value, NULL);
          if (!heartbeat_tags_validate ((const char *const *) call->tags, error))
            {
              g_prefix_error (error, "Invalid option “tags”: ");
              return FALSE;
            }
        }
    }
  return TRUE;
}

/* Pause's options: reason, "" (none) or valid text of at most
 * HEARTBEAT_PAUSE_REASON_MAX_LENGTH bytes. */
static gboolean
parse_pause_options (Call     *call,
                     GVariant *options,
                     GError  **error)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  g_variant_iter_init (&iter, options);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_autoptr(GVariant) owned G_GNUC_UNUSED = value;

      if (!check_field (pause_options, G_N_ELEMENTS (pause_options), "option", key, value, error))
        return FALSE;
      if (strcmp (key, "reason") == 0)
        {
          const char *reason = g_variant_get_string (value, NULL);

          g_clear_pointer (&call->reason, g_free);
          if (!heartbeat_text_is_valid (*reason ? reason : NULL, HEARTBEAT_PAUSE_REASON_MAX_LENGTH,
                                        "The option “reason”", error))
            return FALSE;
          call->reason = *reason ? g_strdup (reason) : NULL; /* empty: none */
        }
    }
  return TRUE;
}

static gboolean
parse_beat_details (Call     *call,
                    GVariant *details,
                    GError  **error)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  g_variant_iter_init (&iter, details);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_autoptr(GVariant) owned G_GNUC_UNUSED = value;

      if (!check_field (beat_details, G_N_ELEMENTS (beat_details), "detail",
                        key, value, error))
        return FALSE;

      if (strcmp (key, "status") == 0)
        {
          g_free (call->status);
          call->status = g_variant_dup_string (value, NULL);
        }
      else if (strcmp (key, "progress") == 0)
        {
          call->has_progress = TRUE;
          call->progress = g_variant_get_double (value);
        }
      else if (strcmp (key, "metadata") == 0)
        {
          g_clear_pointer (&call->metadata, g_variant_unref);
          call->metadata = g_variant_ref (value);
        }
    }
  return TRUE;
}

/* FinishRun's end: success (default: the exit status is 0, or true when
 * none is given), exit-status 0–255, output of at most
 * RUN_OUTPUT_MAX_BYTES. */
static gboolean
parse_run_end (Call     *call,
               GVariant *end,
               GError  **error)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  call->exit_status = -1;
  g_variant_iter_init (&iter, end);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_autoptr(GVariant) owned G_GNUC_UNUSED = value;

      if (!check_field (run_end_keys, G_N_ELEMENTS (run_end_keys), "key", key, value, error))
        return FALSE;

      if (strcmp (key, "success") == 0)
        {
          call->has_success = TRUE;
          call->success = g_variant_get_boolean (value);
        }
      else if (strcmp (key, "exit-status") == 0)
        {
          gint32 exit_status = g_variant_get_int32 (value);

          if (exit_status < 0 || exit_status > 255)
            {
              g_set_error (error, HB_DBUS_ERROR, HB_DBUS_ERROR_INVALID_ARGUMENT,
                           "The key “exit-status” must be from 0 to 255, not %d", exit_status);
              return FALSE;
            }
          call->exit_status = exit_status;
        }
      else if (strcmp (key, "output") == 0)
        {
          gsize length = 0;
          const char *output = g_variant_get_string (value, &length);

          if (length > RUN_OUTPUT_MAX_BYTES)
            {
              g_set_error (error, HB_DBUS_ERROR, HB_DBUS_ERROR_INVALID_ARGUMENT,
                           "The key “output” may hold at most %u bytes, not %" G_GSIZE_FORMAT
                           " (send the tail; the record keeps its last %u bytes)",
                           (guint) RUN_OUTPUT_MAX_BYTES, length, (guint) HEARTBEAT_RUN_OUTPUT_MAX);
              return FALSE;
            }
          g_free (call->output);
          call->output = g_strndup (output, length);
        }
    }
  if (!call->has_success)
    call->success = call->exit_status <= 0;
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* State-changing methods                                              */

/* Success, with no value, to @invocation (taken): what
 * g_dbus_method_invocation_return_value (invocation, NULL) sends, without
 * checking "()" against the introspection data (every caller here answers
 * a method without out arguments) or building an empty tuple: the reply
 * has no body, as the fast Beat path's (hb-dbus-fast-beat.c). About 15k
 * instructions less per call. */
static void
return_empty (GDBusMethodInvocation *invocation)
{
  GDBusMessage *message = g_dbus_method_invocation_get_message (invocation);

  if (!(g_dbus_message_get_flags (message) & G_DBUS_MESSAGE_FLAGS_NO_REPLY_EXPECTED))
    {
      g_autoptr(GDBusMessage) reply = g_dbus_message_new_method_reply (message);

      g_dbus_connection_send_message (g_dbus_method_invocation_get_connection (invocation), reply,
                                      G_DBUS_SEND_MESSAGE_FLAGS_NONE, NULL, NULL);
    }
  g_object_unref (invocation);
}

/* A reply held until what the monitor changed so far is durable. */
typedef struct {
  GDBusMethodInvocation *invocation;
  GError                *error;        /* the call failed: this, at its turn */
  gboolean               revertable;   /* a change the store takes back */
} HeldReply;

static void
on_durable (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  HeldReply *held = user_data;
  g_autoptr(GError) error = NULL;

  if (held->error)
    return_error (held->invocation, held->error);
  else if (!heartbeat_monitor_sync_finish (HEARTBEAT_MONITOR (source), result, &error) && held->revertable)
    return_error (held->invocation, error);
  else
    return_empty (held->invocation);
  g_object_unref (held->invocation);
  g_clear_error (&held->error);
  g_free (held);
}

/* Answers @invocation once every change made so far is saved, so that an
 * acknowledged registration, unregistration or idle mark survives a crash
 * and replies keep the order of the calls: with @error (taken) if the call
 * failed; else with success, or NotSaved if the store could not save it
 * and took it back (@revertable). A plain beat is answered whatever the
 * store says: beats are saved lazily, and kept in memory while it cannot. */
static void
reply_when_saved (HbDBusService         *self,
                  GDBusMethodInvocation *invocation,
                  GError                *error,
                  gboolean               revertable)
{
  HeldReply *held;

  /* nothing to wait for: at once (every earlier answer went out already) */
  if (heartbeat_monitor_is_saved (self->monitor))
    {
      if (error)
        return_error (invocation, error);
      else
        return_empty (invocation);
      g_clear_error (&error);
      return;
    }
  held = g_new0 (HeldReply, 1);
  held->invocation = g_object_ref (invocation);
  held->error = error;
  held->revertable = revertable;
  heartbeat_monitor_sync_async (self->monitor, NULL, on_durable, held);
}

static void call_resolve_uid (Call *call);
static void call_authorize (Call *call, guint32 owner_uid);

static void
do_register (Call *call)
{
  HbDBusService *self = call->self;
  g_autoptr(GError) error = NULL;
  HeartbeatAgentOptions options = { 0 };
  HeartbeatAgent *existing;

  existing = heartbeat_monitor_lookup (self->monitor, call->id);
  if (existing && heartbeat_agent_get_owner_uid (existing) != call->caller_uid)
    {
      g_set_error (&error, HB_DBUS_ERROR, HB_DBUS_ERROR_EXISTS,
                   "Agent “%s” is already registered by uid %u; its owner, root or a "
                   "caller authorized by polkit must unregister it first",
                   call->id, heartbeat_agent_get_owner_uid (existing));
      return_error (call->invocation, error);
      return;
    }
  if (existing == NULL && call->caller_uid != 0 && self->quota != 0 &&
      heartbeat_monitor_count_owned_by (self->monitor, call->caller_uid) >= self->quota)
    {
      g_set_error (&error, HB_DBUS_ERROR, HB_DBUS_ERROR_QUOTA_EXCEEDED,
                   "uid %u already owns %u agents, the most one uid may "
                   "(agents-per-uid); unregister some first",
                   call->caller_uid, heartbeat_monitor_count_owned_by (self->monitor, call->caller_uid));
      return_error (call->invocation, error);
      return;
    }
  if (call->pid != 0 && !hb_liveness_check_pid (call->pid, &error))
    {
      g_prefix_error (&error, "Invalid option “pid”: ");
      return_error (call->invocation, error);
      return;
    }

  options.task_id = call->task_id;
  options.stale_after_usec = (gint64) call->stale_after_usec;
  options.timeout_after_usec = (gint64) call->timeout_after_usec;
  options.owner_uid = call->caller_uid;
  options.pid = (gint32) call->pid;
  options.metadata = call->metadata;
  options.bound_to = call->bind_to_caller ? g_dbus_method_invocation_get_sender (call->invocation) : NULL;
  options.tags = (const char *const *) call->tags;

  if (heartbeat_monitor_register (self->monitor, call->id, &options, &error) == NULL)
    {
      reply_when_saved (self, call->invocation, g_steal_pointer (&error), FALSE);
      return;
    }

  g_debug ("uid %u (%s) %s agent “%s”", call->caller_uid,
           g_dbus_method_invocation_get_sender (call->invocation),
           existing ? "restarted" : "registered", call->id);
  reply_when_saved (self, call->invocation, NULL, TRUE);
}

static void
do_change (Call *call)
{
  HbDBusService *self = call->self;
  g_autoptr(GError) error = NULL;
  gboolean ok = FALSE;

  switch (call->method)
    {
    case METHOD_BEAT:
      {
        HeartbeatBeatDetails details = {
          .status = call->status,
          .has_progress = call->has_progress,
          .progress = call->progress,
          .metadata = call->metadata,
        };
        ok = heartbeat_monitor_beat (self->monitor, call->id, &details, &error);
      }
      break;
    case METHOD_MARK_IDLE:
      ok = heartbeat_monitor_mark_idle (self->monitor, call->id, &error);
      break;
    case METHOD_UNREGISTER:
      ok = heartbeat_monitor_unregister (self->monitor, call->id, &error);
      break;
    case METHOD_PAUSE:
      ok = heartbeat_monitor_pause (self->monitor, call->id, call->reason, call->caller_uid, &error);
      if (ok)
        g_debug ("uid %u (%s) paused agent “%s”", call->caller_uid,
                 g_dbus_method_invocation_get_sender (call->invocation), call->id);
      break;
    case METHOD_RESUME:
      ok = heartbeat_monitor_resume (self->monitor, call->id, &error);
      if (ok)
        g_debug ("uid %u (%s) resumed agent “%s”", call->caller_uid,
                 g_dbus_method_invocation_get_sender (call->invocation), call->id);
      break;
    case METHOD_START_RUN:
      ok = heartbeat_monitor_start_run (self->monitor, call->id, 0, &error);
      break;
    case METHOD_FINISH_RUN:
      {
        HeartbeatRunEnd end = {
          .success = call->success,
          .exit_status = call->exit_status,
          .output = call->output,
          .output_length = -1,
        };
        ok = heartbeat_monitor_finish_run (self->monitor, call->id, &end, &error);
      }
      break;
    case METHOD_REGISTER:
    default:
      g_assert_not_reached ();
    }

  reply_when_saved (self, call->invocation, ok ? NULL : g_steal_pointer (&error),
                    call->method != METHOD_BEAT);
}

static void
on_authorized (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(Call) call = user_data;
  g_autoptr(GError) error = NULL;
  HeartbeatAgent *agent;

  if (!hb_authority_check_finish (HB_AUTHORITY (source), result, &error))
    {
      g_prefix_error (&error, "Cannot change agent “%s”: ", call->id);
      return_error (call->invocation, error);
      return;
    }

  /* The agent may have changed hands while polkit thought about it. */
  agent = heartbeat_monitor_lookup (call->self->monitor, call->id);
  if (agent == NULL)
    {
      g_set_error (&error, HB_DBUS_ERROR, HB_DBUS_ERROR_NOT_FOUND,
                   "No agent with id “%s”", call->id);
      return_error (call->invocation, error);
      return;
    }
  if (heartbeat_agent_get_owner_uid (agent) != call->checked_owner_uid)
    {
      call_authorize (g_steal_pointer (&call), heartbeat_agent_get_owner_uid (agent));
      return;
    }
  do_change (call);
}

/* A Register of a unit's declared agent by a process of that unit (or
 * root): the program in the unit says it is there, which is its beat; the
 * configuration keeps the thresholds and the declaration. */
static void
do_unit_register (Call *call)
{
  HbDBusService *self = call->self;
  g_autoptr(GError) error = NULL;
  HeartbeatBeatDetails details = { .metadata = call->metadata };
  gboolean ok;

  ok = heartbeat_monitor_beat (self->monitor, call->id, &details, &error);
  g_debug ("uid %u (%s) registered unit agent “%s”: %s", call->caller_uid,
           g_dbus_method_invocation_get_sender (call->invocation), call->id,
           ok ? "a beat" : error->message);
  reply_when_saved (self, call->invocation, ok ? NULL : g_steal_pointer (&error), TRUE);
}

static void call_authorize_polkit (Call *call, guint32 owner_uid);

static void
on_unit_caller_checked (GObject      *source,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  g_autoptr(Call) call = user_data;
  g_autoptr(GError) error = NULL;
  HeartbeatAgent *agent;

  if (!hb_units_check_caller_finish (HB_UNITS (source), result, &error))
    {
      if (error)
        g_debug ("Caller %s of unit agent “%s”: %s",
                 g_dbus_method_invocation_get_sender (call->invocation), call->id, error->message);
      if (call->method == METHOD_REGISTER)
        do_register (call);
      else if ((agent = heartbeat_monitor_lookup (call->self->monitor, call->id)) != NULL)
        {
          call_authorize_polkit (g_steal_pointer (&call), heartbeat_agent_get_owner_uid (agent));
          return;
        }
      else
        {
          g_autoptr(GError) missing = g_error_new (HB_DBUS_ERROR, HB_DBUS_ERROR_NOT_FOUND,
                                                   "No agent with id “%s”", call->id);
          return_error (call->invocation, missing);
        }
      return;
    }

  /* the agent may have gone meanwhile: the monitor says so */
  if (call->method == METHOD_REGISTER)
    do_unit_register (call);
  else
    do_change (call);
}

/* Whether @call is about a unit's agent, whose processes may change it
 * (beat, idle, runs; not unregister, pause or resume it: those are the
 * owner's, root's or polkit's). */
static gboolean
call_is_for_unit (Call *call)
{
  HeartbeatAgent *agent;

  if (call->self->units == NULL || call->method == METHOD_UNREGISTER ||
      call->method == METHOD_PAUSE || call->method == METHOD_RESUME ||
      hb_units_get_unit_name (call->self->units, call->id) == NULL)
    return FALSE;
  agent = heartbeat_monitor_lookup (call->self->monitor, call->id);
  return agent != NULL && heartbeat_agent_is_declared (agent);
}

/* Takes @call. */
static void
call_authorize (Call   *call,
                guint32 owner_uid)
{
  if (hb_authority_allows_without_asking (call->caller_uid, owner_uid))
    {
      do_change (call);
      call_free (call);
      return;
    }
  if (call_is_for_unit (call))
    {
      hb_units_check_caller_async (call->self->units, call->id,
                                   g_dbus_method_invocation_get_sender (call->invocation),
                                   NULL, on_unit_caller_checked, call);
      return;
    }
  call_authorize_polkit (call, owner_uid);
}

/* Takes @call. */
static void
call_authorize_polkit (Call   *call,
                       guint32 owner_uid)
{
  GDBusMessage *message = g_dbus_method_invocation_get_message (call->invocation);
  gboolean interactive =
    (g_dbus_message_get_flags (message) & G_DBUS_MESSAGE_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION) != 0;

  call->checked_owner_uid = owner_uid;
  hb_authority_check_async (call->self->authority,
                            g_dbus_method_invocation_get_sender (call->invocation),
                            interactive, call->caller_uid, owner_uid, NULL,
                            on_authorized, call);
}

/* Takes @call: the caller's uid is known. */
static void
call_continue (Call *call)
{
  g_autoptr(Call) owned = call;
  HeartbeatAgent *agent;

  if (call->method == METHOD_REGISTER)
    {
      if (call_is_for_unit (call))
        {
          if (call->caller_uid == 0)
            do_unit_register (call);
          else
            hb_units_check_caller_async (call->self->units, call->id,
                                         g_dbus_method_invocation_get_sender (call->invocation),
                                         NULL, on_unit_caller_checked, g_steal_pointer (&owned));
          return;
        }
      do_register (call);
      return;
    }

  agent = heartbeat_monitor_lookup (call->self->monitor, call->id);
  if (agent == NULL)
    {
      g_autoptr(GError) error = g_error_new (HB_DBUS_ERROR, HB_DBUS_ERROR_NOT_FOUND,
                                             "No agent with id “%s”", call->id);
      return_error (call->invocation, error);
      return;
    }
  call_authorize (g_steal_pointer (&owned), heartbeat_agent_get_owner_uid (agent));
}

/* HbCallersUidFunc: the caller's uid, or why the bus cannot tell. Takes
 * the Call. */
static void
on_caller_uid (const char   *sender,
               guint32       uid,
               const GError *error,
               gpointer      user_data)
{
  Call *call = user_data;

  if (error)
    {
      g_autoptr(Call) failed = call;
      g_autoptr(GError) denied =
        g_error_new (HB_DBUS_ERROR, HB_DBUS_ERROR_ACCESS_DENIED,
                     "Cannot tell which user the caller %s is: %s", sender, error->message);
      return_error (failed->invocation, denied);
      return;
    }
  call->caller_uid = uid;
  call_continue (call);
}

/* Takes @call. */
static void
call_resolve_uid (Call *call)
{
  const char *sender = g_dbus_method_invocation_get_sender (call->invocation);

  if (sender == NULL)
    {
      g_autoptr(Call) owned G_GNUC_UNUSED = call;
      g_autoptr(GError) error = g_error_new_literal (HB_DBUS_ERROR, HB_DBUS_ERROR_ACCESS_DENIED,
                                                     "Cannot tell which user a caller without a bus name is");
      return_error (call->invocation, error);
      return;
    }
  hb_callers_resolve_uid (call->self->callers, sender, on_caller_uid, call);
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */

static void
handle_change (HbDBusService         *self,
               GDBusMethodInvocation *invocation,
               Method                 method,
               GVariant              *parameters)
{
  g_autoptr(Call) call = g_new0 (Call, 1);
  g_autoptr(GError) error = NULL;
  GVariant *dict = NULL;

  call->self = g_object_ref (self);
  call->invocation = g_object_ref (invocation);
  call->method = method;
  call->counted = hb_fast_beat_call_begin (self->fast_beat, invocation);

  /* every change takes (s…) or (sa{sv}); by child, not by format string,
   * whose parsing costs more than the rest of this */
  {
    g_autoptr(GVariant) id = g_variant_get_child_value (parameters, 0);

    call->id = g_variant_dup_string (id, NULL);
  }
  if (method == METHOD_REGISTER || method == METHOD_BEAT || method == METHOD_FINISH_RUN ||
      method == METHOD_PAUSE)
    dict = g_variant_get_child_value (parameters, 1);

  if (!heartbeat_id_is_valid (call->id, &error) ||
      (method == METHOD_REGISTER && !parse_register_options (call, dict, &error)) ||
      (method == METHOD_PAUSE && !parse_pause_options (call, dict, &error)) ||
      (method == METHOD_BEAT && !parse_beat_details (call, dict, &error)) ||
      (method == METHOD_FINISH_RUN && !parse_run_end (call, dict, &error)))
    {
      g_clear_pointer (&dict, g_variant_unref);
      return_error (invocation, error);
      return;
    }
  g_clear_pointer (&dict, g_variant_unref);

  call_resolve_uid (g_steal_pointer (&call));
}

/* The agent a GetAgent or GetHistory call names, or NULL with the error
 * returned. */
static HeartbeatAgent *
lookup_for_call (HbDBusService         *self,
                 GDBusMethodInvocation *invocation,
                 GVariant              *parameters)
{
  g_autoptr(GError) error = NULL;
  const char *id;
  HeartbeatAgent *agent;

  g_variant_get (parameters, "(&s)", &id);
  if (!heartbeat_id_is_valid (id, &error))
    {
      return_error (invocation, error);
      return NULL;
    }
  agent = heartbeat_monitor_lookup (self->monitor, id);
  if (agent == NULL)
    {
      g_set_error (&error, HB_DBUS_ERROR, HB_DBUS_ERROR_NOT_FOUND, "No agent with id “%s”", id);
      return_error (invocation, error);
    }
  return agent;
}

static void
handle_get_agent (HbDBusService         *self,
                  GDBusMethodInvocation *invocation,
                  GVariant              *parameters)
{
  HeartbeatAgent *agent = lookup_for_call (self, invocation, parameters);

  if (agent)
    g_dbus_method_invocation_return_value (invocation,
                                           g_variant_new ("(@a{sv})",
                                                          hb_agent_record (self->monitor, self->units, agent)));
}

/* GetRuns: the agent's run records, oldest first, as the monitor keeps
 * them (at most HEARTBEAT_RUNS_MAX, each output at most
 * HEARTBEAT_RUN_OUTPUT_MAX bytes: about 85 KiB at most, far below
 * reply_max_bytes). */
static void
handle_get_runs (HbDBusService         *self,
                 GDBusMethodInvocation *invocation,
                 GVariant              *parameters)
{
  HeartbeatAgent *agent = lookup_for_call (self, invocation, parameters);

  if (agent)
    g_dbus_method_invocation_return_value (invocation,
                                           g_variant_new ("(@aa{sv})", heartbeat_agent_get_runs (agent)));
}

static void
handle_get_history (HbDBusService         *self,
                    GDBusMethodInvocation *invocation,
                    GVariant              *parameters)
{
  HeartbeatAgent *agent = lookup_for_call (self, invocation, parameters);

  if (agent)
    g_dbus_method_invocation_return_value (invocation,
                                           g_variant_new ("(@a(ts))", heartbeat_agent_get_history (agent)));
}

/* ListAgents: every agent in one reply, unless that reply would be larger
 * than reply_max_bytes, when it fails with LimitsExceeded: a bus drops a
 * peer that sends more than it carries, so the list is measured as it is
 * built, never sent too large. */
static void
handle_list_agents (HbDBusService         *self,
                    GDBusMethodInvocation *invocation,
                    GVariant              *parameters)
{
  g_autoptr(GPtrArray) agents = heartbeat_monitor_list_agents (self->monitor);
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("aa{sv}"));
  gint64 now = heartbeat_monitor_get_time (self->monitor);
  gint64 realtime_offset = heartbeat_monitor_to_realtime (self->monitor, 0);
  gsize offset = 4;  /* the array's length; its a{sv} elements are 4-aligned */

  for (guint i = 0; i < agents->len; i++)
    {
      g_autoptr(GVariant) agent = g_variant_ref_sink (hb_agent_record_at (agents->pdata[i], self->units, now, realtime_offset));

      offset = wire_end (agent, offset);
      if (REPLY_HEADER_ALLOWANCE + offset > self->reply_max_bytes)
        {
          g_autoptr(GError) error =
            g_error_new (HB_DBUS_ERROR, HB_DBUS_ERROR_LIMITS_EXCEEDED,
                         "The %u agents do not fit in one reply of at most %" G_GSIZE_FORMAT
                         " bytes; list them with ListAgentsPage",
                         agents->len, self->reply_max_bytes);

          return_error (invocation, error);
          return;
        }
      g_variant_builder_add_value (&builder, agent);
    }
  g_dbus_method_invocation_return_value (invocation,
                                         g_variant_new ("(@aa{sv})", g_variant_builder_end (&builder)));
}

static const Field list_page_options[] = {
  { "after", "s" },
  { "limit", "u" },
};

/* ListAgentsPage: the agents after `after` in id order, at most `limit`
 * of them, stopping before the one that would take the reply past
 * page_max_bytes (the first always goes), and the id to continue after,
 * or "" at the end of the list. */
static void
handle_list_agents_page (HbDBusService         *self,
                         GDBusMethodInvocation *invocation,
                         GVariant              *parameters)
{
  g_autoptr(GVariant) options = NULL;
  g_autoptr(GPtrArray) agents = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("aa{sv}"));
  const char *after = "";
  guint32 limit = G_MAXUINT32;
  gint64 now, realtime_offset;
  GVariantIter iter;
  const char *key;
  GVariant *value;
  gsize offset = 4;
  guint lo, hi, i, n = 0;

  g_variant_get (parameters, "(@a{sv})", &options);
  g_variant_iter_init (&iter, options);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_autoptr(GVariant) owned G_GNUC_UNUSED = value;

      if (!check_field (list_page_options, G_N_ELEMENTS (list_page_options), "option", key, value, &error))
        break;
      if (strcmp (key, "after") == 0)
        {
          after = g_variant_get_string (value, NULL);
          if (after[0] != '\0' && !heartbeat_id_is_valid (after, &error))
            break;
        }
      else if (strcmp (key, "limit") == 0)
        {
          limit = g_variant_get_uint32 (value);
          if (limit == 0)
            {
              g_set_error_literal (&error, HB_DBUS_ERROR, HB_DBUS_ERROR_INVALID_ARGUMENT,
                                   "The option “limit” must be at least 1");
              break;
            }
        }
    }
  if (error)
    {
      return_error (invocation, error);
      return;
    }

  agents = heartbeat_monitor_list_agents (self->monitor);
  now = heartbeat_monitor_get_time (self->monitor);
  realtime_offset = heartbeat_monitor_to_realtime (self->monitor, 0);

  /* the first agent whose id sorts after `after` (the list is sorted) */
  lo = 0;
  hi = agents->len;
  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;

      if (strcmp (heartbeat_agent_get_id (agents->pdata[mid]), after) <= 0)
        lo = mid + 1;
      else
        hi = mid;
    }

  for (i = lo; i < agents->len && n < limit; i++)
    {
      g_autoptr(GVariant) agent = g_variant_ref_sink (hb_agent_record_at (agents->pdata[i], self->units, now, realtime_offset));
      gsize end = wire_end (agent, offset);

      /* room for `next`, an id of at most HEARTBEAT_ID_MAX_LENGTH bytes */
      if (n > 0 &&
          REPLY_HEADER_ALLOWANCE + wire_align (end, 4) + 4 + HEARTBEAT_ID_MAX_LENGTH + 1 > self->page_max_bytes)
        break;
      g_variant_builder_add_value (&builder, agent);
      offset = end;
      n++;
    }
  g_dbus_method_invocation_return_value (invocation,
                                         g_variant_new ("(@aa{sv}s)", g_variant_builder_end (&builder),
                                                        i < agents->len
                                                          ? heartbeat_agent_get_id (agents->pdata[i - 1])
                                                          : ""));
}

static void
handle_register (HbDBusService         *self,
                 GDBusMethodInvocation *invocation,
                 GVariant              *parameters)
{
  handle_change (self, invocation, METHOD_REGISTER, parameters);
}

static void
handle_beat (HbDBusService         *self,
             GDBusMethodInvocation *invocation,
             GVariant              *parameters)
{
  handle_change (self, invocation, METHOD_BEAT, parameters);
}

static void
handle_mark_idle (HbDBusService         *self,
                  GDBusMethodInvocation *invocation,
                  GVariant              *parameters)
{
  handle_change (self, invocation, METHOD_MARK_IDLE, parameters);
}

static void
handle_unregister (HbDBusService         *self,
                   GDBusMethodInvocation *invocation,
                   GVariant              *parameters)
{
  handle_change (self, invocation, METHOD_UNREGISTER, parameters);
}

static void
handle_start_run (HbDBusService         *self,
                  GDBusMethodInvocation *invocation,
                  GVariant              *parameters)
{
  handle_change (self, invocation, METHOD_START_RUN, parameters);
}

static void
handle_finish_run (HbDBusService         *self,
                   GDBusMethodInvocation *invocation,
                   GVariant              *parameters)
{
  handle_change (self, invocation, METHOD_FINISH_RUN, parameters);
}

static void
handle_pause (HbDBusService         *self,
              GDBusMethodInvocation *invocation,
              GVariant              *parameters)
{
  handle_change (self, invocation, METHOD_PAUSE, parameters);
}

static void
handle_resume (HbDBusService         *self,
               GDBusMethodInvocation *invocation,
               GVariant              *parameters)
{
  handle_change (self, invocation, METHOD_RESUME, parameters);
}

static void
handle_get_status (HbDBusService         *self,
                   GDBusMethodInvocation *invocation,
                   GVariant              *parameters)
{
  g_dbus_method_invocation_return_value (invocation, g_variant_new ("(@a{sv})", describe_status (self)));
}

/* The methods of the interface. Those that change an agent are ordered
 * against the Beats the fast path answers (hb_fast_beat_start()). */
static const struct {
  const char *name;
  void      (*handle) (HbDBusService *self, GDBusMethodInvocation *invocation, GVariant *parameters);
  gboolean    changes;
} methods[] = {
  { "Beat",           handle_beat,             TRUE },
  { "Register",       handle_register,         TRUE },
  { "MarkIdle",       handle_mark_idle,        TRUE },
  { "Unregister",     handle_unregister,       TRUE },
  { "StartRun",       handle_start_run,        TRUE },
  { "FinishRun",      handle_finish_run,       TRUE },
  { "Pause",          handle_pause,            TRUE },
  { "Resume",         handle_resume,           TRUE },
  { "GetAgent",       handle_get_agent,        FALSE },
  { "ListAgents",     handle_list_agents,      FALSE },
  { "ListAgentsPage", handle_list_agents_page, FALSE },
  { "GetHistory",     handle_get_history,      FALSE },
  { "GetRuns",        handle_get_runs,         FALSE },
  { "GetStatus",      handle_get_status,       FALSE },
};

static void
method_call (GDBusConnection       *connection,
             const char            *sender,
             const char            *object_path,
             const char            *interface_name,
             const char            *method_name,
             GVariant              *parameters,
             GDBusMethodInvocation *invocation,
             gpointer               user_data)
{
  HbDBusService *self = user_data;

  /* beats acknowledged before this call arrived take effect first */
  hb_fast_beat_drain (self->fast_beat);

  for (guint i = 0; i < G_N_ELEMENTS (methods); i++)
    if (strcmp (method_name, methods[i].name) == 0)
      {
        methods[i].handle (self, invocation, parameters);
        return;
      }
  g_dbus_method_invocation_return_error (invocation, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD,
                                         "No method %s in %s", method_name, HB_DBUS_INTERFACE);
}

static GVariant *
property_value (HbDBusService *self,
                const char    *name)
{
  if (strcmp (name, "Version") == 0)
    return g_variant_new_string (self->version);
  if (strcmp (name, "AgentCount") == 0)
    return g_variant_new_uint32 (heartbeat_monitor_get_n_agents (self->monitor));
  if (strcmp (name, "StaleThresholdUSec") == 0)
    return g_variant_new_uint64 (nonnegative (heartbeat_monitor_get_stale_threshold (self->monitor)));
  if (strcmp (name, "TimeoutThresholdUSec") == 0)
    return g_variant_new_uint64 (nonnegative (heartbeat_monitor_get_timeout_threshold (self->monitor)));
  if (strcmp (name, "CheckIntervalUSec") == 0)
    return g_variant_new_uint64 (nonnegative (heartbeat_monitor_get_check_interval (self->monitor)));
  if (strcmp (name, "StaleWarningOnlyOnce") == 0)
    return g_variant_new_boolean (heartbeat_monitor_get_stale_warning_only_once (self->monitor));
  return NULL;
}

static GVariant *
get_property (GDBusConnection *connection,
              const char      *sender,
              const char      *object_path,
              const char      *interface_name,
              const char      *property_name,
              GError         **error,
              gpointer         user_data)
{
  HbDBusService *self = user_data;
  GVariant *value;

  hb_fast_beat_drain (self->fast_beat);
  value = property_value (self, property_name);

  if (value == NULL)
    g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY,
                 "No property %s in %s", property_name, HB_DBUS_INTERFACE);
  return value;
}

static const GDBusInterfaceVTable interface_vtable = {
  .method_call = method_call,
  .get_property = get_property,
  .set_property = NULL,
};

/* ------------------------------------------------------------------ */
/* Outward: signals and PropertiesChanged                              */

static void
emit (HbDBusService *self,
      const char    *name,
      GVariant      *parameters)
{
  g_autoptr(GError) error = NULL;

  if (!g_dbus_connection_emit_signal (self->connection, NULL, HB_DBUS_PATH, HB_DBUS_INTERFACE,
                                      name, parameters, &error))
    g_debug ("Could not emit %s: %s", name, error->message);
}

static gboolean
emit_properties_changed (gpointer user_data)
{
  HbDBusService *self = user_data;
  g_auto(GVariantBuilder) changed = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  guint flags = self->changed_properties;
  gboolean any = FALSE;
  static const struct {
    ChangedProperties flag;
    const char *name;
  } properties[] = {
    { CHANGED_AGENT_COUNT, "AgentCount" },
    { CHANGED_STALE_THRESHOLD, "StaleThresholdUSec" },
    { CHANGED_TIMEOUT_THRESHOLD, "TimeoutThresholdUSec" },
    { CHANGED_CHECK_INTERVAL, "CheckIntervalUSec" },
    { CHANGED_STALE_WARNING_ONLY_ONCE, "StaleWarningOnlyOnce" },
  };

  self->changed_idle_id = 0;
  self->changed_properties = 0;

  if (flags & CHANGED_AGENT_COUNT)
    {
      guint count = heartbeat_monitor_get_n_agents (self->monitor);

      /* a burst that added and removed as many is no change */
      if (count == self->announced_agent_count)
        flags &= ~CHANGED_AGENT_COUNT;
      self->announced_agent_count = count;
    }

  for (guint i = 0; i < G_N_ELEMENTS (properties); i++)
    {
      if (!(flags & properties[i].flag))
        continue;
      g_variant_builder_add (&changed, "{sv}", properties[i].name,
                             property_value (self, properties[i].name));
      any = TRUE;
    }
  if (any)
    {
      g_autoptr(GError) error = NULL;

      if (!g_dbus_connection_emit_signal (self->connection, NULL, HB_DBUS_PATH,
                                          "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                          g_variant_new ("(s@a{sv}@as)", HB_DBUS_INTERFACE,
                                                         g_variant_builder_end (&changed),
                                                         g_variant_new_strv (NULL, 0)),
                                          &error))
        g_debug ("Could not emit PropertiesChanged: %s", error->message);
    }
  return G_SOURCE_REMOVE;
}

static void
properties_changed (HbDBusService    *self,
                    ChangedProperties which)
{
  self->changed_properties |= which;
  if (self->changed_idle_id == 0)
    {
      /* default priority, not idle: under a steady stream of calls an idle
       * source would never run */
      self->changed_idle_id = g_idle_add_full (G_PRIORITY_DEFAULT, emit_properties_changed,
                                               self, NULL);
      g_source_set_static_name (g_main_context_find_source_by_id (NULL, self->changed_idle_id),
                                "[heartbeatd] PropertiesChanged");
    }
}

static void
on_agent_registered (HeartbeatMonitor *monitor,
                     HeartbeatAgent   *agent,
                     HbDBusService    *self)
{
  const char *task_id = heartbeat_agent_get_task_id (agent);

  emit (self, "AgentRegistered",
        g_variant_new ("(ss)", heartbeat_agent_get_id (agent), task_id ? task_id : ""));
  properties_changed (self, CHANGED_AGENT_COUNT);
}

static void
on_agent_unregistered (HeartbeatMonitor         *monitor,
                       HeartbeatAgent           *agent,
                       HeartbeatUnregisterReason reason,
                       HbDBusService            *self)
{
  emit (self, "AgentUnregistered",
        g_variant_new ("(ss)", heartbeat_agent_get_id (agent),
                       heartbeat_unregister_reason_to_string (reason)));
  properties_changed (self, CHANGED_AGENT_COUNT);
}

static void
on_agent_stale (HeartbeatMonitor *monitor,
                HeartbeatAgent   *agent,
                gint64            idle_usec,
                HbDBusService    *self)
{
  emit (self, "AgentStale",
        g_variant_new ("(st@a{sv})", heartbeat_agent_get_id (agent), nonnegative (idle_usec),
                       hb_agent_record (self->monitor, self->units, agent)));
}

static void
on_agent_timed_out (HeartbeatMonitor *monitor,
                    HeartbeatAgent   *agent,
                    gint64            running_usec,
                    HbDBusService    *self)
{
  emit (self, "AgentTimedOut",
        g_variant_new ("(st@a{sv})", heartbeat_agent_get_id (agent), nonnegative (running_usec),
                       hb_agent_record (self->monitor, self->units, agent)));
}

static void
on_agent_recovered (HeartbeatMonitor *monitor,
                    HeartbeatAgent   *agent,
                    HbDBusService    *self)
{
  emit (self, "AgentRecovered", g_variant_new ("(s)", heartbeat_agent_get_id (agent)));
}

static void
on_agent_state_changed (HeartbeatMonitor   *monitor,
                        HeartbeatAgent     *agent,
                        HeartbeatAgentState old_state,
                        HeartbeatAgentState new_state,
                        HbDBusService      *self)
{
  emit (self, "AgentStateChanged",
        g_variant_new ("(sss)", heartbeat_agent_get_id (agent),
                       heartbeat_agent_state_to_string (old_state),
                       heartbeat_agent_state_to_string (new_state)));
}

static void
on_monitor_notify (HeartbeatMonitor *monitor,
                   GParamSpec       *pspec,
                   HbDBusService    *self)
{
  const char *name = g_param_spec_get_name (pspec);

  if (strcmp (name, "stale-threshold") == 0)
    properties_changed (self, CHANGED_STALE_THRESHOLD);
  else if (strcmp (name, "timeout-threshold") == 0)
    properties_changed (self, CHANGED_TIMEOUT_THRESHOLD);
  else if (strcmp (name, "check-interval") == 0)
    properties_changed (self, CHANGED_CHECK_INTERVAL);
  else if (strcmp (name, "stale-warning-only-once") == 0)
    properties_changed (self, CHANGED_STALE_WARNING_ONLY_ONCE);
}

static void
connect_monitor (HbDBusService *self,
                 const char    *signal,
                 GCallback      handler)
{
  gulong id = g_signal_connect (self->monitor, signal, handler, self);

  g_array_append_val (self->monitor_handlers, id);
}

/* Before an agent is marked gone, apply the beats acknowledged before its
 * peer left: applied after, they would bring it back. */
static void
on_liveness_gone (HbLiveness    *liveness,
                  const char    *id,
                  const char    *why,
                  HbDBusService *self)
{
  if (self->fast_beat)  /* NULL once disposed */
    hb_fast_beat_drain (self->fast_beat);
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */

/**
 * hb_dbus_service_export:
 * @service: a #HbDBusService
 * @error: return location for a #GError
 *
 * Registers the object /org/heartbeat/Monitor1 with the interface
 * described by the embedded org.heartbeat.Monitor1.xml, and starts
 * translating monitor signals into D-Bus signals. Owning the bus name is
 * the caller's business.
 *
 * Returns: %TRUE, or %FALSE with @error set if the object could not be
 *   registered (another object is there, or the embedded XML is broken)
 */
gboolean
hb_dbus_service_export (HbDBusService *service,
                        GError       **error)
{
  g_autoptr(GBytes) xml = NULL;

  g_return_val_if_fail (HB_IS_DBUS_SERVICE (service), FALSE);
  g_return_val_if_fail (service->registration_id == 0, FALSE);

  if (service->node_info == NULL)
    {
      xml = g_resource_lookup_data (hb_get_resource (), INTERFACE_RESOURCE,
                                    G_RESOURCE_LOOKUP_FLAGS_NONE, error);
      if (xml == NULL)
        return FALSE;
      service->node_info = g_dbus_node_info_new_for_xml (g_bytes_get_data (xml, NULL), error);
      if (service->node_info == NULL)
        return FALSE;
      service->interface_info = g_dbus_node_info_lookup_interface (service->node_info,
                                                                   HB_DBUS_INTERFACE);
      if (service->interface_info == NULL)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                       "The embedded interface description has no %s", HB_DBUS_INTERFACE);
          g_clear_pointer (&service->node_info, g_dbus_node_info_unref);
          return FALSE;
        }
      g_dbus_interface_info_cache_build (service->interface_info);
    }

  service->registration_id =
    g_dbus_connection_register_object (service->connection, HB_DBUS_PATH,
                                       service->interface_info, &interface_vtable,
                                       service, NULL, error);
  if (service->registration_id == 0)
    return FALSE;

  service->announced_agent_count = heartbeat_monitor_get_n_agents (service->monitor);
  {
    const char *changing[G_N_ELEMENTS (methods) + 1];
    guint n = 0;

    for (guint i = 0; i < G_N_ELEMENTS (methods); i++)
      if (methods[i].changes)
        changing[n++] = methods[i].name;
    changing[n] = NULL;
    hb_fast_beat_start (service->fast_beat, service->connection, HB_DBUS_PATH,
                        service->interface_info, changing);
  }
  connect_monitor (service, "agent-registered", G_CALLBACK (on_agent_registered));
  connect_monitor (service, "agent-unregistered", G_CALLBACK (on_agent_unregistered));
  connect_monitor (service, "agent-stale", G_CALLBACK (on_agent_stale));
  connect_monitor (service, "agent-timed-out", G_CALLBACK (on_agent_timed_out));
  connect_monitor (service, "agent-recovered", G_CALLBACK (on_agent_recovered));
  connect_monitor (service, "agent-state-changed", G_CALLBACK (on_agent_state_changed));
  connect_monitor (service, "notify", G_CALLBACK (on_monitor_notify));

  g_debug ("Exported %s at %s", HB_DBUS_INTERFACE, HB_DBUS_PATH);
  return TRUE;
}

/**
 * hb_dbus_service_unexport:
 * @service: a #HbDBusService
 *
 * Removes the object from the bus and stops translating monitor signals.
 * Calls already under way still get their answer.
 */
void
hb_dbus_service_unexport (HbDBusService *service)
{
  g_return_if_fail (HB_IS_DBUS_SERVICE (service));

  hb_fast_beat_stop (service->fast_beat);
  if (service->registration_id)
    {
      g_dbus_connection_unregister_object (service->connection, service->registration_id);
      service->registration_id = 0;
    }
  for (guint i = 0; i < service->monitor_handlers->len; i++)
    g_signal_handler_disconnect (service->monitor, g_array_index (service->monitor_handlers, gulong, i));
  g_array_set_size (service->monitor_handlers, 0);
  g_clear_handle_id (&service->changed_idle_id, g_source_remove);
  service->changed_properties = 0;
}

/**
 * hb_dbus_service_set_quota:
 * @service: a #HbDBusService
 * @agents_per_uid: how many agents one uid may own, or 0 for no limit
 *
 * Sets the per-uid quota Register enforces for new agents (a restart of an
 * agent the caller owns is not a new agent). Root is exempt. Lowering it
 * removes no agent; it only refuses new ones.
 */
void
hb_dbus_service_set_quota (HbDBusService *service,
                           guint          agents_per_uid)
{
  g_return_if_fail (HB_IS_DBUS_SERVICE (service));
  service->quota = agents_per_uid;
}

/**
 * hb_dbus_service_get_quota:
 * @service: a #HbDBusService
 *
 * Returns: how many agents one uid may own, or 0 for no limit
 */
guint
hb_dbus_service_get_quota (HbDBusService *service)
{
  g_return_val_if_fail (HB_IS_DBUS_SERVICE (service), 0);
  return service->quota;
}

/**
 * hb_dbus_service_rebind:
 * @service: a #HbDBusService
 *
 * Watches again the processes and bus peers of agents that came back
 * without a registration (from the state file after a restart): an agent
 * whose process exited or whose peer left the bus meanwhile is marked
 * gone at once. Registrations made afterwards are watched automatically.
 */
void
hb_dbus_service_rebind (HbDBusService *service)
{
  g_return_if_fail (HB_IS_DBUS_SERVICE (service));
  hb_liveness_rebind (service->liveness);
  hb_fast_beat_mirror_owners (service->fast_beat);
}

/**
 * hb_dbus_service_set_fast_beat:
 * @service: a #HbDBusService
 * @enabled: whether certain Beat calls are answered from the bus thread
 *
 * Turns the fast Beat path on (the default) or off. With it, a Beat whose
 * outcome is certain (the caller owns the agent or is root, its uid is
 * known, no detail but a valid status, no earlier change of the caller
 * still pending) is answered by GDBus's worker thread and applied on the
 * main loop right after, in batches (see hb-dbus-fast-beat.c); everything
 * else, and everything with it off, is handled on the main loop. For tests
 * and benchmarks that compare the two; the environment variable
 * `HB_DBUS_FAST_BEAT=0`, read by hb_dbus_service_new(), turns it off too
 * (the integration suite runs both ways).
 */
void
hb_dbus_service_set_fast_beat (HbDBusService *service,
                               gboolean       enabled)
{
  g_return_if_fail (HB_IS_DBUS_SERVICE (service));
  hb_fast_beat_set_enabled (service->fast_beat, enabled);
}

static void
hb_dbus_service_dispose (GObject *object)
{
  HbDBusService *self = HB_DBUS_SERVICE (object);

  if (self->connection)
    hb_dbus_service_unexport (self);
  /* beats acknowledged but not applied yet are applied now */
  g_clear_pointer (&self->fast_beat, hb_fast_beat_free);
  g_clear_object (&self->units);
  g_clear_object (&self->liveness);
  g_clear_object (&self->callers);
  g_clear_object (&self->authority);
  g_clear_object (&self->monitor);
  g_clear_object (&self->connection);

  G_OBJECT_CLASS (hb_dbus_service_parent_class)->dispose (object);
}

static void
hb_dbus_service_finalize (GObject *object)
{
  HbDBusService *self = HB_DBUS_SERVICE (object);

  /* GDBus keeps the method cache in a global table keyed by the
   * interface's address: left behind, the next service (after the bus
   * dropped us) may be allocated there and find freed method names */
  if (self->interface_info)
    g_dbus_interface_info_cache_release (self->interface_info);
  g_clear_pointer (&self->node_info, g_dbus_node_info_unref);
  g_array_unref (self->monitor_handlers);
  g_free (self->version);
  g_free (self->problem);

  G_OBJECT_CLASS (hb_dbus_service_parent_class)->finalize (object);
}

static void
hb_dbus_service_class_init (HbDBusServiceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = hb_dbus_service_dispose;
  object_class->finalize = hb_dbus_service_finalize;

  /* register the error names before any error is returned or parsed */
  (void) HB_DBUS_ERROR;
}

static void
hb_dbus_service_init (HbDBusService *self)
{
  self->quota = HB_DBUS_DEFAULT_QUOTA;
  self->monitor_handlers = g_array_new (FALSE, FALSE, sizeof (gulong));
}

/**
 * hb_dbus_service_new:
 * @monitor: the monitor to serve
 * @connection: the bus connection to serve it on
 * @version: the daemon's version, for the Version property
 *
 * Creates the D-Bus front. It already follows the bus (who callers are,
 * which peers leave) and the monitor's registrations (liveness), but
 * serves nothing until hb_dbus_service_export().
 *
 * Returns: (transfer full): a new #HbDBusService
 */
HbDBusService *
hb_dbus_service_new (HeartbeatMonitor *monitor,
                     GDBusConnection  *connection,
                     const char       *version)
{
  HbDBusService *self;

  g_return_val_if_fail (HEARTBEAT_IS_MONITOR (monitor), NULL);
  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), NULL);
  g_return_val_if_fail (version != NULL, NULL);

  self = g_object_new (HB_TYPE_DBUS_SERVICE, NULL);
  self->monitor = g_object_ref (monitor);
  self->connection = g_object_ref (connection);
  self->version = g_strdup (version);
  self->reply_max_bytes = limit_from_environment ("HB_DBUS_REPLY_MAX_BYTES", HB_DBUS_REPLY_MAX_BYTES);
  self->page_max_bytes = limit_from_environment ("HB_DBUS_PAGE_MAX_BYTES", HB_DBUS_PAGE_MAX_BYTES);
  self->callers = hb_callers_new (connection);
  self->fast_beat = hb_fast_beat_new (monitor, self->callers);
  if (g_strcmp0 (g_getenv ("HB_DBUS_FAST_BEAT"), "0") == 0)
    hb_fast_beat_set_enabled (self->fast_beat, FALSE);
  self->authority = hb_authority_new (connection);
  self->liveness = hb_liveness_new (monitor, connection, self->callers);
  g_signal_connect_object (self->liveness, "gone", G_CALLBACK (on_liveness_gone), self,
                           G_CONNECT_DEFAULT);
  return self;
}

/**
 * hb_dbus_service_set_units:
 * @service: a #HbDBusService
 * @units: (nullable): the systemd units behind declared agents, or %NULL
 *
 * Lets agent dictionaries carry their `unit`, and the processes of a
 * unit beat, mark idle and register the agent declared with that unit.
 */
void
hb_dbus_service_set_units (HbDBusService *service,
                           HbUnits       *units)
{
  g_return_if_fail (HB_IS_DBUS_SERVICE (service));
  g_return_if_fail (units == NULL || HB_IS_UNITS (units));
  g_set_object (&service->units, units);
}

/**
 * hb_dbus_service_get_liveness:
 * @service: a #HbDBusService
 *
 * Returns: (transfer none): what watches the agents' processes and peers
 */
HbLiveness *
hb_dbus_service_get_liveness (HbDBusService *service)
{
  g_return_val_if_fail (HB_IS_DBUS_SERVICE (service), NULL);
  return service->liveness;
}

/**
 * hb_dbus_service_get_callers:
 * @service: a #HbDBusService
 *
 * The callers of the service's connection: their uids, and
 * #HbCallers::peer-vanished when one leaves the bus (the connection's one
 * NameOwnerChanged subscription).
 *
 * Returns: (transfer none): the #HbCallers of the service's connection
 */
HbCallers *
hb_dbus_service_get_callers (HbDBusService *service)
{
  g_return_val_if_fail (HB_IS_DBUS_SERVICE (service), NULL);
  return service->callers;
}

/**
 * hb_dbus_service_set_problem:
 * @service: a #HbDBusService
 * @problem: (nullable): why the daemon is degraded (its state cannot be
 *   saved, say), or %NULL when it is not
 *
 * Reported by GetStatus under `problem` ("" when none).
 */
void
hb_dbus_service_set_problem (HbDBusService *service,
                             const char    *problem)
{
  g_return_if_fail (HB_IS_DBUS_SERVICE (service));
  g_free (service->problem);
  service->problem = g_strdup (problem);
}
