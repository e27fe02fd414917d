#!/usr/bin/python3
# soak.py: heartbeatd under load and chaos, for a bounded time.
#
# 1,000 agents beat from four processes, two over D-Bus and two over HTTP,
# while the soak sends SIGHUP every 2 s, kills one D-Bus client with
# SIGKILL at 20 % of the time (its 250 agents must go stale, each exactly
# once), and kills the daemon itself with SIGKILL at 50 % and restarts it on
# the same state. Afterwards: all 1,000 registrations are there, exactly
# the killed client's agents got one AgentStale each and no other agent
# got any, no agent timed out, and the restarted daemon's RSS and open
# files did not grow between 70 % and the end. The clock starts once all
# 1,000 agents are registered and beating.
#
# Usage: soak.py HEARTBEATD [--duration SECONDS]   (TAP on stdout)
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import argparse
import collections
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from gi.repository import Gio, GLib

NAME, PATH, IFACE = "org.heartbeat.Monitor1", "/org/heartbeat/Monitor1", "org.heartbeat.Monitor1"
AGENTS_PER_WORKER = 250
STALE_USEC = 3_000_000
BEAT_EVERY = 0.5


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dbus_worker(address, worker, stop):
    bus = Gio.DBusConnection.new_for_address_sync(
        address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None, None)
    ids = ["dbus-%d-%d" % (worker, i) for i in range(AGENTS_PER_WORKER)]

    def call(method, args):
        try:
            bus.call_sync(NAME, PATH, IFACE, method, args, None, Gio.DBusCallFlags.NONE, 5000, None)
            return True
        except GLib.Error:
            return False  # the daemon is restarting: try again next round

    registered = set()
    while not stop.is_set():
        for agent in ids:
            if agent not in registered:
                if call("Register", GLib.Variant("(sa{sv})", (agent, {"stale-after-usec": GLib.Variant("t", STALE_USEC)}))):
                    registered.add(agent)
            else:
                call("Beat", GLib.Variant("(sa{sv})", (agent, {})))
        time.sleep(BEAT_EVERY)


def http_worker(base, worker, stop):
    # One kept-alive connection, as a busy client would use (and because
    # libsoup 3.2 leaks every connection a client closes: see README).
    import http.client
    host, port = base[len("http://"):].split(":")
    ids = ["http-%d-%d" % (worker, i) for i in range(AGENTS_PER_WORKER)]
    connection = None
    while not stop.is_set():
        for agent in ids:
            body = json.dumps({"run_id": agent, "worker": worker})
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(host, int(port), timeout=5)
                connection.request("POST", "/heartbeat", body, {"Content-Type": "application/json"})
                connection.getresponse().read()
            except (OSError, http.client.HTTPException):
                connection = None   # the daemon is restarting: reconnect next time
        time.sleep(BEAT_EVERY)


def proc_stats(pid):
    with open("/proc/%d/status" % pid) as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return rss, len(os.listdir("/proc/%d/fd" % pid))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("heartbeatd")
    parser.add_argument("--duration", type=float, default=20.0)
    args = parser.parse_args()
    duration = args.duration

    tmp = tempfile.mkdtemp(prefix="hb-soak-")
    children = []
    # fresh interpreters: a forked child would inherit GDBus's state
    # without its worker thread
    mp = multiprocessing.get_context("spawn")
    stop = mp.Event()
    try:
        bus_path = os.path.join(tmp, "bus")
        with open(os.path.join(tmp, "bus.conf"), "w") as conf:
            conf.write("""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=%s</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*"/><allow receive_sender="*"/><allow own="*"/></policy>
</busconfig>""" % bus_path)
        with open(os.path.join(tmp, "heartbeatd.conf"), "w") as conf:
            # HTTP agents follow the monitor's threshold: the same 3 s
            conf.write("[monitor]\nstale-threshold=3s\ntimeout-threshold=1h\n[limits]\nagents-per-uid=0\n")
        children.append(subprocess.Popen(["dbus-daemon", "--config-file=" + os.path.join(tmp, "bus.conf"),
                                          "--nofork", "--nopidfile"], stderr=subprocess.DEVNULL))
        while not os.path.exists(bus_path):
            time.sleep(0.02)
        address = "unix:path=" + bus_path
        port = free_port()
        base = "http://127.0.0.1:%d" % port

        def start_daemon():
            daemon = subprocess.Popen([args.heartbeatd, "--session", "--config", os.path.join(tmp, "heartbeatd.conf"),
                                       "--state-dir", os.path.join(tmp, "state"), "--http-port", str(port)],
                                      env=dict(os.environ, DBUS_SESSION_BUS_ADDRESS=address),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(base + "/health", timeout=1).read()
                    return daemon
                except OSError:
                    time.sleep(0.05)
            raise AssertionError("heartbeatd did not start")

        daemon = start_daemon()

        # Every signal, counted, on a connection of our own.
        watcher = Gio.DBusConnection.new_for_address_sync(
            address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
            None, None)
        counts = collections.Counter()

        def on_signal(connection, sender, path, iface, member, params):
            if member in ("AgentStale", "AgentTimedOut"):
                counts[(member, params[0])] += 1
        watcher.signal_subscribe(None, IFACE, None, PATH, None, Gio.DBusSignalFlags.NONE, on_signal)
        context = GLib.MainContext.default()

        workers = []
        for w in range(2):
            workers.append(mp.Process(target=dbus_worker, args=(address, w, stop)))
            workers.append(mp.Process(target=http_worker, args=(base, w, stop)))
        for w in workers:
            w.start()
        victim = workers[0]   # dbus worker 0

        # Registering is slow (each one is on disk before it returns), and
        # agents registered early go stale while the rest register: the
        # soak starts once all are in and beating.
        def registered():
            reply = watcher.call_sync(NAME, PATH, IFACE, "GetStatus", None, GLib.VariantType("(a{sv})"),
                                      Gio.DBusCallFlags.NONE, 10000, None)
            return reply.unpack()[0]["agent-count"]
        deadline = time.monotonic() + 120
        while registered() < 4 * AGENTS_PER_WORKER:
            assert time.monotonic() < deadline, "the agents did not all register"
            while context.pending():
                context.iteration(False)
            time.sleep(0.1)
        time.sleep(STALE_USEC / 1e6 + 1)   # every agent has beaten since
        while context.pending():
            context.iteration(False)
        counts.clear()

        start = time.monotonic()
        next_hup = start + 2
        killed_client = killed_daemon = False
        sample_early = None
        while time.monotonic() - start < duration:
            while context.pending():
                context.iteration(False)
            now = time.monotonic() - start
            if now > 0.2 * duration and not killed_client:
                os.kill(victim.pid, signal.SIGKILL)
                killed_client = True
            if now > 0.5 * duration and not killed_daemon:
                daemon.kill()
                daemon.wait()
                daemon = start_daemon()
                killed_daemon = True
            if now > 0.7 * duration and sample_early is None:
                sample_early = proc_stats(daemon.pid)
            if time.monotonic() > next_hup:
                daemon.send_signal(signal.SIGHUP)
                next_hup += 2
            time.sleep(0.02)
        sample_late = proc_stats(daemon.pid)
        stop.set()
        for w in workers:
            w.join(10)
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            context.iteration(False)
            time.sleep(0.01)

        reply = watcher.call_sync(NAME, PATH, IFACE, "ListAgents", None, GLib.VariantType("(aa{sv})"),
                                  Gio.DBusCallFlags.NONE, 10000, None)
        ids = {a["id"] for a in reply.unpack()[0]}
        expected = {"%s-%d-%d" % (kind, w, i) for kind in ("dbus", "http") for w in range(2)
                    for i in range(AGENTS_PER_WORKER)}
        ok = True

        def check(n, good, text):
            nonlocal ok
            ok &= good
            print("%s %d %s" % ("ok" if good else "not ok", n, text))

        print("1..5")
        missing = expected - ids
        check(1, not missing, "all %d registrations survived (missing: %d)" % (len(expected), len(missing)))
        victims = {"dbus-0-%d" % i for i in range(AGENTS_PER_WORKER)}
        stale = {agent: n for (member, agent), n in counts.items() if member == "AgentStale"}
        check(2, all(stale.get(a) == 1 for a in victims),
              "each of the killed client's %d agents went stale exactly once (%d did)"
              % (len(victims), sum(1 for a in victims if stale.get(a) == 1)))
        others = {a: n for a, n in stale.items() if a not in victims}
        check(3, not others, "no other agent went stale (%d did)" % len(others))
        timed_out = sum(n for (member, _), n in counts.items() if member == "AgentTimedOut")
        check(4, timed_out == 0, "no agent timed out (%d did)" % timed_out)
        rss_growth = (sample_late[0] - sample_early[0]) / sample_early[0]
        check(5, rss_growth < 0.10 and sample_late[1] <= sample_early[1] + 2,
              "RSS %d → %d KiB (%+.1f %%), open files %d → %d"
              % (sample_early[0], sample_late[0], 100 * rss_growth, sample_early[1], sample_late[1]))
        return 0 if ok else 1
    finally:
        stop.set()
        for child in children:
            child.send_signal(signal.SIGTERM)
        try:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(10)
        except Exception:
            pass
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
