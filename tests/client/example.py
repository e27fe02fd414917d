#!/usr/bin/python3
# example.py: the same from Python, with the installed typelib.
# SPDX-License-Identifier: LGPL-2.1-or-later
import sys

import gi

gi.require_version("Heartbeat", "1")
from gi.repository import Gio, GLib, Heartbeat  # noqa: E402

client = Heartbeat.Client.new_sync(Gio.BusType.SESSION, None)
keep_alive = Heartbeat.KeepAlive.new(client, "example-py", None, None)

loop = GLib.MainLoop()
GLib.timeout_add(300, loop.quit)
loop.run()

info = client.get_agent_info("example-py", None)
print(f"example.py: {info.props.id} is {info.props.state}", file=sys.stderr)
sys.exit(0 if info.props.state == "healthy" else 1)
