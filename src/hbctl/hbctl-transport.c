/* hbctl-transport.c: which transport hbctl uses
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "hbctl.h"
#include "hbctl-transport.h"

/* The one place that looks at --url: heartbeatd's HTTP API there, else
 * its D-Bus API on the bus of --system or --session. */
HbctlTransport *
hbctl_transport_new (void)
{
  return opt.url ? hbctl_http_transport_new () : hbctl_dbus_transport_new ();
}

void
hbctl_transport_free (HbctlTransport *transport)
{
  transport->free (transport);
}

void
hbctl_overview_clear (HbctlOverview *overview)
{
  g_clear_pointer (&overview->agents, g_variant_unref);
  g_clear_pointer (&overview->status, g_variant_unref);
  g_clear_pointer (&overview->host, json_node_unref);
  g_clear_pointer (&overview->version, g_free);
}
