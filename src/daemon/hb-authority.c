/* hb-authority.c: who may change an agent
 *
 * Translates between heartbeatd's ownership rule and polkit, over D-Bus
 * (org.freedesktop.PolicyKit1.Authority.CheckAuthorization on the daemon's
 * own bus connection). An agent belongs to the uid that registered it; its
 * owner and root may always change it, anyone else needs polkit's yes for
 * HB_AUTHORITY_ACTION_MANAGE. Uses no monitor call or signal: the D-Bus
 * front asks it before every state-changing method (Beat, MarkIdle,
 * Unregister), so the rule lives in one place.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hb-authority.h"
#include "hb-dbus-errors.h"

#define POLKIT_NAME      "org.freedesktop.PolicyKit1"
#define POLKIT_PATH      "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_INTERFACE "org.freedesktop.PolicyKit1.Authority"

/* CheckAuthorization flags */
#define POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION 1u

struct _HbAuthority {
  GObject          parent_instance;
  GDBusConnection *connection;
};

G_DEFINE_FINAL_TYPE (HbAuthority, hb_authority, G_TYPE_OBJECT)

typedef struct {
  guint32 caller_uid;
  guint32 owner_uid;
} CheckData;

static void
hb_authority_dispose (GObject *object)
{
  HbAuthority *self = HB_AUTHORITY (object);

  g_clear_object (&self->connection);
  G_OBJECT_CLASS (hb_authority_parent_class)->dispose (object);
}

static void
hb_authority_class_init (HbAuthorityClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = hb_authority_dispose;
}

static void
hb_authority_init (HbAuthority *self)
{
}

/**
 * hb_authority_new:
 * @connection: the bus connection polkit is reached on (the one the
 *   callers are on, so their unique names mean something to polkit)
 *
 * Returns: (transfer full): a new #HbAuthority
 */
HbAuthority *
hb_authority_new (GDBusConnection *connection)
{
  HbAuthority *self;

  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), NULL);

  self = g_object_new (HB_TYPE_AUTHORITY, NULL);
  self->connection = g_object_ref (connection);
  return self;
}

/**
 * hb_authority_allows_without_asking:
 * @caller_uid: the uid of the caller
 * @owner_uid: the uid the agent belongs to
 *
 * The part of the rule that needs no round trip: an agent's owner and root
 * may always change it. Callers use it to keep the common case (an agent
 * beating itself) synchronous; hb_authority_check_async() applies it too.
 *
 * Returns: %TRUE if the caller may change the agent without asking polkit
 */
gboolean
hb_authority_allows_without_asking (guint32 caller_uid,
                                    guint32 owner_uid)
{
  return caller_uid == owner_uid || caller_uid == 0;
}

static void
on_check_authorization (GObject      *source,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  CheckData *data = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  gboolean authorized = FALSE, challenge = FALSE;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    {
      g_autofree char *remote = g_dbus_error_get_remote_error (error);

      g_dbus_error_strip_remote_error (error);
      g_debug ("polkit CheckAuthorization failed: %s (%s)", error->message,
               remote ? remote : "local error");
      /* polkit missing is one thing; polkit refusing to answer (e.g. to a
       * daemon that is not the action's owner) is another: say which */
      if (g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
          g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER))
        g_task_return_new_error (task, HB_DBUS_ERROR, HB_DBUS_ERROR_ACCESS_DENIED,
                                 "it belongs to uid %u, and uid %u may only change it as root "
                                 "or with polkit authorization for %s, but polkit is not "
                                 "available (%s)",
                                 data->owner_uid, data->caller_uid,
                                 HB_AUTHORITY_ACTION_MANAGE, error->message);
      else
        g_task_return_new_error (task, HB_DBUS_ERROR, HB_DBUS_ERROR_ACCESS_DENIED,
                                 "it belongs to uid %u, and uid %u may only change it as root "
                                 "or with polkit authorization for %s, but polkit did not "
                                 "answer heartbeatd's question: %s%s%s%s",
                                 data->owner_uid, data->caller_uid, HB_AUTHORITY_ACTION_MANAGE,
                                 error->message, remote ? " (" : "", remote ? remote : "", remote ? ")" : "");
      return;
    }

  g_variant_get (reply, "((bb@a{ss}))", &authorized, &challenge, NULL);
  g_debug ("polkit says uid %u %s authorized for %s%s", data->caller_uid,
           authorized ? "is" : "is not", HB_AUTHORITY_ACTION_MANAGE,
           challenge ? " (authentication would be needed)" : "");
  if (authorized)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  if (challenge)
    g_task_return_new_error (task, HB_DBUS_ERROR, HB_DBUS_ERROR_ACCESS_DENIED,
                             "it belongs to uid %u, and uid %u needs to authenticate for "
                             "polkit action %s; call again allowing interactive "
                             "authorization",
                             data->owner_uid, data->caller_uid, HB_AUTHORITY_ACTION_MANAGE);
  else
    g_task_return_new_error (task, HB_DBUS_ERROR, HB_DBUS_ERROR_ACCESS_DENIED,
                             "it belongs to uid %u, and uid %u is not authorized by "
                             "polkit for %s",
                             data->owner_uid, data->caller_uid, HB_AUTHORITY_ACTION_MANAGE);
}

/**
 * hb_authority_check_async:
 * @authority: a #HbAuthority
 * @sender: (nullable): the caller's unique bus name, as polkit's subject
 * @interactive: whether the caller allowed interactive authorization
 *   (%G_DBUS_MESSAGE_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION on its call), so
 *   polkit may show an authentication dialog
 * @caller_uid: the caller's uid, as the bus reports it
 * @owner_uid: the uid the agent belongs to
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the answer is known
 * @user_data: data for @callback
 *
 * Decides whether the caller may change an agent of @owner_uid: yes for the
 * owner and root, otherwise whatever polkit says about
 * %HB_AUTHORITY_ACTION_MANAGE for @sender. Every failure, including polkit
 * not running, is a denial; the error message says whose agent it is.
 */
void
hb_authority_check_async (HbAuthority        *authority,
                          const char         *sender,
                          gboolean            interactive,
                          guint32             caller_uid,
                          guint32             owner_uid,
                          GCancellable       *cancellable,
                          GAsyncReadyCallback callback,
                          gpointer            user_data)
{
  g_autoptr(GTask) task = NULL;
  g_auto(GVariantBuilder) subject_details = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  CheckData *data;
  guint32 flags = 0;

  g_return_if_fail (HB_IS_AUTHORITY (authority));

  task = g_task_new (authority, cancellable, callback, user_data);
  g_task_set_name (task, "[heartbeatd] polkit check");
  data = g_new0 (CheckData, 1);
  data->caller_uid = caller_uid;
  data->owner_uid = owner_uid;
  g_task_set_task_data (task, data, g_free);

  if (hb_authority_allows_without_asking (caller_uid, owner_uid))
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  if (sender == NULL)
    {
      g_task_return_new_error (task, HB_DBUS_ERROR, HB_DBUS_ERROR_ACCESS_DENIED,
                               "it belongs to uid %u, and a caller without a bus name "
                               "cannot be authorized by polkit", owner_uid);
      return;
    }

  if (interactive)
    flags |= POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION;
  g_variant_builder_add (&subject_details, "{sv}", "name", g_variant_new_string (sender));
  g_dbus_connection_call (authority->connection, POLKIT_NAME, POLKIT_PATH, POLKIT_INTERFACE,
                          "CheckAuthorization",
                          g_variant_new ("((sa{sv})sa{ss}us)",
                                         "system-bus-name", &subject_details,
                                         HB_AUTHORITY_ACTION_MANAGE, NULL, flags, ""),
                          G_VARIANT_TYPE ("((bba{ss}))"),
                          G_DBUS_CALL_FLAGS_NONE, /* polkitd is bus-activated */
                          /* an authentication dialog waits for a human */
                          interactive ? G_MAXINT : -1,
                          cancellable, on_check_authorization, g_steal_pointer (&task));
}

/**
 * hb_authority_check_finish:
 * @authority: a #HbAuthority
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE if the caller may change the agent, %FALSE with @error set
 *   (%HB_DBUS_ERROR_ACCESS_DENIED, or %G_IO_ERROR_CANCELLED) if not
 */
gboolean
hb_authority_check_finish (HbAuthority  *authority,
                           GAsyncResult *result,
                           GError      **error)
{
  g_return_val_if_fail (g_task_is_valid (result, authority), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}
