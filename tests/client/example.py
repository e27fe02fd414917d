#!/usr/bin/python3
# example.py: keep an application alive with heartbeatd.
# SPDX-License-Identifier: LGPL-2.1-or-later
import sys

import gi

gi.require_version("Heartbeat", "1")
from gi.repository import Gio, GLib, Heartbeat  # noqa: E402

client = Heartbeat.Client.new_sync(Gio.BusType.SESSION, None)
keep_alive = Heartbeat.KeepAlive.new(client, "example-py", None, None)

# the application's work; the keep-alive beats from the main loop
loop = GLib.MainLoop()
GLib.timeout_add(300, loop.quit)
loop.run()

info = client.get_agent_info("example-py", None)
sys.exit(0 if info.props.state == "healthy" else 1)
