#!/usr/bin/python3
# test-client.py: libheartbeat-1 from Python, through the built typelib
# (GI_TYPELIB_PATH) and PyGObject, against the heartbeatd that
# test-client-script started (DBUS_SESSION_BUS_ADDRESS).
#
# Registers, beats, sees a stale signal, uses the keep-alive helper, kills
# the daemon (the runner starts another) and sees the helper register
# again. Exit status 0: passed; 77: skipped; anything else: failed.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import math
import os
import signal
import sys

import gi

try:
    gi.require_version("Heartbeat", "1")
except ValueError as e:
    print(f"skip: {e}", file=sys.stderr)
    sys.exit(77)
from gi.repository import GLib, Gio, Heartbeat  # noqa: E402

TIMEOUT_MS = 5000


def log(*args):
    print("test-client.py:", *args, file=sys.stderr, flush=True)


def wait_until(check, what, timeout_ms=TIMEOUT_MS):
    """Iterates the main context until check() is true; fails on timeout."""
    ctx = GLib.MainContext.default()
    timed_out = []
    source = GLib.timeout_add(timeout_ms, lambda: timed_out.append(True) or False)
    while not check() and not timed_out:
        ctx.iteration(True)
    if not timed_out:
        GLib.source_remove(source)
    if not check():
        raise AssertionError(f"timed out waiting for {what}")


def run_for(ms):
    done = []
    GLib.timeout_add(ms, lambda: done.append(True) or False)
    wait_until(lambda: done, f"{ms} ms", ms + 1000)


def call_async(start, finish):
    """Runs an _async/_finish pair to completion on the main context."""
    results = []
    start(lambda source, result: results.append(result))
    wait_until(lambda: results, "an async reply")
    return finish(results[0])


def daemon_pid(client):
    reply = client.get_connection().call_sync(
        "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
        "GetConnectionUnixProcessID", GLib.Variant("(s)", ("org.heartbeat.Monitor1",)),
        GLib.VariantType("(u)"), Gio.DBusCallFlags.NONE, -1, None)
    return reply.unpack()[0]


def main():
    # async constructor
    client = call_async(
        lambda cb: Heartbeat.Client.new(Gio.BusType.SESSION, None, cb),
        Heartbeat.Client.new_finish)
    assert client.get_daemon_running()
    assert client.props.daemon_running

    events = []
    client.connect("agent-registered", lambda c, i, t: events.append(("registered", i, t)))
    client.connect("agent-stale",
                   lambda c, i, idle, agent: events.append(("stale", i, agent.props.state)))
    client.connect("agent-state-changed", lambda c, i, a, b: events.append(("state", i, a, b)))
    client.connect("agent-recovered", lambda c, i: events.append(("recovered", i)))
    client.connect("agent-unregistered", lambda c, i, r: events.append(("unregistered", i, r)))
    client.connect("daemon-vanished", lambda c: events.append(("vanished",)))
    client.connect("daemon-appeared", lambda c: events.append(("appeared",)))

    # register (every option, as arguments), beat, get
    metadata = GLib.Variant("a{sv}", {"host": GLib.Variant("s", "py1")})
    options = Heartbeat.register_options_new("py-task", 400000, 0, os.getpid(), False, metadata)
    call_async(lambda cb: client.register_async("py-agent", options, None, cb),
               lambda r: client.register_finish(r))
    wait_until(lambda: ("registered", "py-agent", "py-task") in events, "AgentRegistered")
    assert client.beat_full("py-agent", "working", 0.25, None, None)
    info = call_async(lambda cb: client.get_agent_info_async("py-agent", None, cb),
                      lambda r: client.get_agent_info_finish(r))
    assert info.props.id == "py-agent", info.props.id
    assert info.props.task_id == "py-task"
    assert info.props.status == "working"
    assert info.props.beats == 1
    assert info.props.pid == os.getpid()
    assert info.props.stale_after == 400000
    assert info.get_metadata().unpack()["progress"] == 0.25
    assert info.get_metadata().unpack()["host"] == "py1"
    log("registered and beat:", info.props.state, info.props.status)

    # the same with a GVariant dictionary and the sync call
    assert client.beat("py-agent", Heartbeat.beat_details_new(None, math.nan, None))

    # stale, then recovered
    wait_until(lambda: ("stale", "py-agent", "stale") in events, "AgentStale")
    assert ("state", "py-agent", "healthy", "stale") in events
    client.mark_idle("py-agent")
    wait_until(lambda: ("recovered", "py-agent") in events, "AgentRecovered")
    log("saw stale and recovered")

    # its history, sync and async: registered healthy, stale, healthy again
    history = client.get_history("py-agent", None).unpack()
    assert [state for _, state in history] == ["healthy", "stale", "healthy"], history
    assert history == sorted(history), history
    history = call_async(lambda cb: client.get_history_async("py-agent", None, cb),
                         lambda r: client.get_history_finish(r))
    assert len(history.unpack()) == 3, history
    # no unit behind it: the unit getters read as empty
    info = client.get_agent_info("py-agent", None)
    assert not info.has_unit()
    assert info.props.unit_name == ""
    assert info.get_unit_cpu_usec() == (False, 0), info.get_unit_cpu_usec()
    unit_info = Heartbeat.AgentInfo.new(GLib.Variant("a{sv}", {
        "id": GLib.Variant("s", "u"),
        "unit": GLib.Variant("a{sv}", {"name": GLib.Variant("s", "u.service"),
                                       "memory-bytes": GLib.Variant("t", 4096)})}))
    assert unit_info.has_unit() and unit_info.props.unit_name == "u.service"
    assert unit_info.get_unit_memory_bytes() == (True, 4096)
    log("history and unit getters")

    # list and status
    infos = client.list_agent_infos(None)
    assert [i.get_id() for i in infos] == ["py-agent"], [i.get_id() for i in infos]
    status = call_async(
        lambda cb: client.get_status_async(None, cb), lambda r: client.get_status_finish(r))
    assert status.unpack()["agent-count"] == 1

    # errors in HEARTBEAT_CLIENT_ERROR
    try:
        client.get_agent_info("no-such-agent", None)
        raise AssertionError("GetAgent of an unknown id succeeded")
    except GLib.Error as e:
        assert e.matches(Heartbeat.ClientError.quark(), Heartbeat.ClientError.NOT_FOUND), e
    client.unregister("py-agent")
    wait_until(lambda: ("unregistered", "py-agent", "unregistered") in events, "AgentUnregistered")

    # the keep-alive helper: three lines
    ka = Heartbeat.KeepAlive.new(client, "py-ka",
                                 Heartbeat.register_options_new("serving", 600000, 0, 0, False, None), None)
    registrations = []
    ka.connect("registered", lambda k: registrations.append(k.props.registrations))
    assert ka.props.interval_usec == 200000, ka.props.interval_usec
    run_for(1500)
    assert ("stale", "py-ka", "stale") not in events
    info = client.get_agent_info("py-ka", None)
    assert info.props.beats >= 5, info.props.beats
    assert info.props.bound_to == client.get_connection().get_unique_name()
    ka.set_status("error")
    wait_until(lambda: ("state", "py-ka", "healthy", "error") in events, "state error")
    ka.set_status("running")
    wait_until(lambda: ("state", "py-ka", "error", "healthy") in events, "state healthy")
    log("keep-alive beats; interval", ka.props.interval_usec)

    # kill the daemon: the runner starts another; the helper registers again
    os.kill(daemon_pid(client), signal.SIGKILL)
    wait_until(lambda: ("vanished",) in events, "daemon-vanished")
    wait_until(lambda: ("appeared",) in events, "daemon-appeared", 10000)
    wait_until(lambda: registrations == [2], "the keep-alive registering again")
    wait_until(lambda: ("registered", "py-ka", "serving") in events, "AgentRegistered after restart")
    run_for(1000)
    info = client.get_agent_info("py-ka", None)
    assert info.props.state == "healthy", info.props.state
    assert info.props.beats >= 2, info.props.beats
    assert ("stale", "py-ka", "stale") not in events
    log("keep-alive registered again after the restart")

    # dropping it unregisters
    del ka
    wait_until(lambda: ("unregistered", "py-ka", "unregistered") in events, "unregistered on dispose")
    log("ok")


if __name__ == "__main__":
    main()
