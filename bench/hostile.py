#!/usr/bin/python3
"""bench/hostile.py: heartbeatd under the attacks of issue 20, measured.

Run by bench/hostile.sh, which starts a private bus and the built daemon
and stops both by PID. With the HTTP quota filled (1024 agents with 16 KiB
of metadata each) it runs one attack at a time, each bounded in count and
time and aimed only at 127.0.0.0/8:

  slow-readers   N connections ask GET /v1/agents and never read
  trickle        N connections send headers, then a body byte a second
  sse            64 event streams from 127.0.0.1 .. 127.0.0.8
  dbus-garbage   a stream of messages GDBus cannot decode, one every
                 3 ms (HB_GARBAGE_SENDER names the program that sends
                 them: PROGRAM ADDRESS COUNT INTERVAL_MS; bench/hostile.sh
                 gives the test-faults binary's sender)

During each attack a probe calls GetStatus on D-Bus and GET /health over
HTTP every 50 ms (each on its own connection, as another client would),
and the daemon's RSS is read from /proc. It prints, per attack: the
latency p50/p99/max of both probes, failures, the peak RSS, and whether
the daemon kept its bus name. Nothing here asserts: the figures are the
result (README, "Hostile input").
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time

from probe import Gio, GLib, Probe, connect as bus_connect, figures, http as http_to, status_kib

ADDRESS, PORT, PID = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
SECONDS = float(os.environ.get("HB_ATTACK_SECONDS", "20"))


def rss_kib():
    return status_kib(PID)


def connect():
    return bus_connect(ADDRESS)


def http(method, path, body=None, timeout=10.0):
    return http_to(PORT, method, path, body, timeout)


def owner(bus):
    reply = bus.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                          "GetNameOwner", GLib.Variant("(s)", ("org.heartbeat.Monitor1",)),
                          None, Gio.DBusCallFlags.NONE, 5000, None)
    return reply.unpack()[0]


def attack(name, start, stop):
    bus = connect()
    before = owner(bus)
    probe = Probe(ADDRESS, PID, port=PORT, timeout_ms=10000).start()
    state = start()
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.2)
    stop(state)
    probe.finish()
    try:
        after = owner(bus)
    except GLib.Error as e:
        after = f"none ({e.message})"
    alive = os.path.exists(f"/proc/{PID}")
    print(f"{name}:")
    print(f"  GetStatus    {figures(probe.dbus)}")
    print(f"  GET /health  {figures(probe.health)}")
    print(f"  failures {probe.failures}; peak RSS {probe.peak_rss / 1024:.1f} MiB; "
          f"daemon {'running' if alive else 'EXITED'}; name owner {before} -> {after}")
    sys.stdout.flush()


def fill():
    meta = "x" * (16 * 1024 - 200)
    ok = 0
    for i in range(1024):
        code = http("POST", "/heartbeat", json.dumps({"run_id": f"fill-{i:04d}", "padding": meta}))
        ok += code == 200
    print(f"filled: {ok} agents over HTTP with ~16 KiB of metadata each; RSS {rss_kib() / 1024:.1f} MiB")


def open_many(n, request, src=None):
    socks = []
    for i in range(n):
        try:
            s = socket.socket()
            if src:
                s.bind((src(i), 0))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(5)
            s.connect(("127.0.0.1", PORT))
            s.sendall(request)
            socks.append(s)
        except OSError:
            pass
    return socks


def close_all(socks):
    for s in socks:
        s.close()


def slow_readers():
    req = b"GET /v1/agents HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    return open_many(int(os.environ.get("HB_ATTACK_CONNECTIONS", "200")), req)


def trickle():
    req = b"POST /heartbeat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 20000\r\n\r\n{"
    socks = open_many(int(os.environ.get("HB_ATTACK_CONNECTIONS", "300")), req)
    stop = threading.Event()

    def drip():
        while not stop.wait(1.0):
            for s in socks:
                try:
                    s.send(b" ")
                except OSError:
                    pass
    t = threading.Thread(target=drip)
    t.start()
    return socks, stop, t


def trickle_stop(state):
    socks, stop, t = state
    stop.set()
    t.join()
    open_fds = len(os.listdir(f"/proc/{PID}/fd"))
    print(f"  (daemon fds at the end of trickle: {open_fds})")
    close_all(socks)


def sse():
    req = b"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    return open_many(64, req, src=lambda i: f"127.0.0.{1 + i % 8}")


def garbage():
    program = os.environ.get("HB_GARBAGE_SENDER")
    if not program:
        return None
    return subprocess.Popen([program, ADDRESS, "5000", "3"])


def garbage_stop(p):
    if p:
        p.kill()
        p.wait()


def main():
    print(f"heartbeatd pid {PID}, RSS {rss_kib() / 1024:.1f} MiB; each attack {SECONDS:.0f} s")
    attack("quiet (reference)", lambda: None, lambda s: None)
    fill()
    attack("quiet, quota full", lambda: None, lambda s: None)
    attack("slow-readers", slow_readers, close_all)
    attack("trickle", trickle, trickle_stop)
    attack("sse", sse, close_all)
    if os.environ.get("HB_GARBAGE_SENDER"):
        attack("dbus-garbage", garbage, garbage_stop)
    else:
        print("dbus-garbage: skipped (set HB_GARBAGE_SENDER)")


main()
