// test-client.js: libheartbeat-1 from GJS, through the built typelib
// (GI_TYPELIB_PATH), against the heartbeatd that test-client-script
// started (DBUS_SESSION_BUS_ADDRESS).
//
// Registers, beats, sees a stale signal, uses the keep-alive helper, kills
// the daemon (the runner starts another) and sees the helper register
// again. Exit status 0: passed; 77: skipped; anything else: failed.
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import System from 'system';

let Heartbeat;
try {
    Heartbeat = (await import('gi://Heartbeat?version=1')).default;
} catch (e) {
    printerr(`skip: ${e}`);
    System.exit(77);
}

const TIMEOUT_MS = 5000;

function log(...args) {
    printerr('test-client.js:', ...args);
}

function assert(cond, what) {
    if (!cond)
        throw new Error(`assertion failed: ${what}`);
}

function waitUntil(check, what, timeoutMs = TIMEOUT_MS) {
    const ctx = GLib.MainContext.default();
    let timedOut = false;
    const id = GLib.timeout_add(GLib.PRIORITY_DEFAULT, timeoutMs, () => {
        timedOut = true;
        return GLib.SOURCE_REMOVE;
    });
    while (!check() && !timedOut)
        ctx.iteration(true);
    if (!timedOut)
        GLib.source_remove(id);
    if (!check())
        throw new Error(`timed out waiting for ${what}`);
}

function runFor(ms) {
    let done = false;
    GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
        done = true;
        return GLib.SOURCE_REMOVE;
    });
    waitUntil(() => done, `${ms} ms`, ms + 1000);
}

function callAsync(start, finish) {
    let result = null;
    start((source, res) => {
        result = res;
    });
    waitUntil(() => result !== null, 'an async reply');
    return finish(result);
}

const has = (events, ...want) => events.some(e => e.length === want.length && e.every((x, i) => x === want[i]));

function daemonPid(client) {
    const reply = client.get_connection().call_sync(
        'org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus',
        'GetConnectionUnixProcessID', new GLib.Variant('(s)', ['org.heartbeat.Monitor1']),
        new GLib.VariantType('(u)'), Gio.DBusCallFlags.NONE, -1, null);
    return reply.deepUnpack()[0];
}

function main() {
    const client = callAsync(
        cb => Heartbeat.Client.new(Gio.BusType.SESSION, null, cb),
        res => Heartbeat.Client.new_finish(res));
    assert(client.daemon_running, 'daemon-running');

    const events = [];
    client.connect('agent-registered', (c, id, task) => events.push(['registered', id, task]));
    client.connect('agent-stale', (c, id, idle, agent) =>
        events.push(['stale', id, agent.state]));
    client.connect('agent-state-changed', (c, id, a, b) => events.push(['state', id, a, b]));
    client.connect('agent-recovered', (c, id) => events.push(['recovered', id]));
    client.connect('agent-unregistered', (c, id, r) => events.push(['unregistered', id, r]));
    client.connect('daemon-vanished', () => events.push(['vanished']));
    client.connect('daemon-appeared', () => events.push(['appeared']));

    // register with every option given as arguments, beat, get
    const metadata = new GLib.Variant('a{sv}', {host: new GLib.Variant('s', 'js1')});
    const options = Heartbeat.register_options_new('js-task', 400000, 0, 0, false, metadata);
    callAsync(cb => client.register_async('js-agent', options, null, cb),
        res => client.register_finish(res));
    waitUntil(() => has(events, 'registered', 'js-agent', 'js-task'), 'AgentRegistered');
    assert(client.beat_full('js-agent', 'working', 0.25, null, null), 'beat');
    let info = callAsync(cb => client.get_agent_info_async('js-agent', null, cb),
        res => client.get_agent_info_finish(res));
    assert(info.id === 'js-agent', `id ${info.id}`);
    assert(info.task_id === 'js-task', 'task-id');
    assert(info.status === 'working', 'status');
    assert(info.beats === 1, `beats ${info.beats}`);
    assert(info.stale_after === 400000, 'stale-after');
    const md = info.get_metadata().deepUnpack();
    assert(md.progress.deepUnpack() === 0.25, 'progress');
    assert(md.host.deepUnpack() === 'js1', 'metadata');
    assert(client.beat('js-agent', Heartbeat.beat_details_new(null, NaN, null)), 'beat with a dictionary');

    // stale, then recovered
    waitUntil(() => has(events, 'stale', 'js-agent', 'stale'), 'AgentStale');
    assert(has(events, 'state', 'js-agent', 'healthy', 'stale'), 'AgentStateChanged to stale');
    client.mark_idle('js-agent');
    waitUntil(() => has(events, 'recovered', 'js-agent'), 'AgentRecovered');
    log('saw stale and recovered');

    const infos = client.list_agent_infos(null);
    assert(infos.length === 1 && infos[0].get_id() === 'js-agent', 'list');
    const status = callAsync(cb => client.get_status_async(null, cb), res => client.get_status_finish(res));
    assert(status.deepUnpack()['agent-count'].deepUnpack() === 1, 'agent-count');

    try {
        client.get_agent_info('no-such-agent', null);
        throw new Error('GetAgent of an unknown id succeeded');
    } catch (e) {
        assert(e.matches(Heartbeat.ClientError.quark(), Heartbeat.ClientError.NOT_FOUND), `${e}`);
    }
    client.unregister('js-agent');
    waitUntil(() => has(events, 'unregistered', 'js-agent', 'unregistered'), 'AgentUnregistered');

    // the keep-alive helper
    let ka = Heartbeat.KeepAlive.new(client, 'js-ka',
        Heartbeat.register_options_new('serving', 600000, 0, 0, false, null), null);
    const registrations = [];
    ka.connect('registered', k => registrations.push(k.registrations));
    assert(ka.interval_usec === 200000, `interval ${ka.interval_usec}`);
    runFor(1500);
    assert(!has(events, 'stale', 'js-ka', 'stale'), 'keep-alive never stale');
    info = client.get_agent_info('js-ka', null);
    assert(info.beats >= 5, `beats ${info.beats}`);
    ka.set_status('error');
    waitUntil(() => has(events, 'state', 'js-ka', 'healthy', 'error'), 'state error');
    ka.set_status('running');
    waitUntil(() => has(events, 'state', 'js-ka', 'error', 'healthy'), 'state healthy');
    log('keep-alive beats; interval', ka.interval_usec);

    // kill the daemon: the runner starts another; the helper registers again
    const [ok] = GLib.spawn_command_line_sync(`kill -KILL ${daemonPid(client)}`);
    assert(ok, 'kill');
    waitUntil(() => has(events, 'vanished'), 'daemon-vanished');
    waitUntil(() => has(events, 'appeared'), 'daemon-appeared', 10000);
    waitUntil(() => registrations.length === 1 && registrations[0] === 2, 'the keep-alive registering again');
    waitUntil(() => has(events, 'registered', 'js-ka', 'serving'), 'AgentRegistered after restart');
    runFor(1000);
    info = client.get_agent_info('js-ka', null);
    assert(info.state === 'healthy', `state ${info.state}`);
    assert(info.beats >= 2, `beats ${info.beats}`);
    log('keep-alive registered again after the restart');

    // disposing it unregisters
    ka.run_dispose();
    ka = null;
    waitUntil(() => has(events, 'unregistered', 'js-ka', 'unregistered'), 'unregistered on dispose');
    log('ok');
}

try {
    main();
} catch (e) {
    printerr(`test-client.js: FAILED: ${e}\n${e.stack}`);
    System.exit(1);
}
