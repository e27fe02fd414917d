// example.js: keep an application alive with heartbeatd (gjs -m example.js).
// SPDX-License-Identifier: LGPL-2.1-or-later
import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Heartbeat from 'gi://Heartbeat?version=1';
import System from 'system';

const client = Heartbeat.Client.new_sync(Gio.BusType.SESSION, null);
const keepAlive = Heartbeat.KeepAlive.new(client, 'example-js', null, null);

// the application's work; the keep-alive beats from the main loop
const loop = new GLib.MainLoop(null, false);
GLib.timeout_add(GLib.PRIORITY_DEFAULT, 300, () => loop.quit());
loop.run();

const info = client.get_agent_info('example-js', null);
System.exit(info.state === 'healthy' ? 0 : 1);
