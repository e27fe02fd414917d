#!/usr/bin/python3
"""bench/history.py: GET /v1/history at 2,000 agents x 128 state changes.

Run by bench/history.sh, which starts a private bus and a heartbeatd and
stops both by PID. It registers HB_HISTORY_AGENTS agents (2000) on D-Bus
and beats each HB_HISTORY_ENTRIES - 1 times (127), the status alternating
between "error" and none, so that every agent's history holds
HB_HISTORY_ENTRIES state changes (heartbeat-agent.h:
HEARTBEAT_HISTORY_MAX_ENTRIES), checked on one agent. Then, for
HB_HISTORY_SECONDS (20) each:

  quiet     nothing but the probe
  walks     4 processes (HB_HISTORY_WALKERS) each reading the whole of
            GET /v1/history in a loop, following Link rel="next" to the
            end (the daemon before pages: one answer, no Link)
  walks-gz  the same with Accept-Encoding: gzip

The probe calls GetStatus on D-Bus and GET /health over HTTP every 20 ms
(each on its own connection, as another client would) and reads the
daemon's RSS. Printed: the latency p50/p99/max of both probes, failures,
the walks done, the time of one walk, the bytes and pages of one, the
largest page, and the daemon's peak RSS. The walkers are processes, not
threads, so that their reading does not hold up the probe (the GIL).
Nothing here asserts: the figures are the result.
"""
import http.client
import json
import os
import re
import subprocess
import sys
import time

LINK = re.compile(r'<(/v1/history\?[^>]*)>;\s*rel="next"')


def walk(port, seconds, gzip):
    """Child process: whole walks of /v1/history until @seconds pass;
    prints one JSON line of what it saw."""
    deadline = time.monotonic() + seconds
    walks, times, sizes, pages, largest, failures = 0, [], [], [], 0, 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    while time.monotonic() < deadline:
        t, url, size, n = time.monotonic(), "/v1/history", 0, 0
        try:
            while url:
                conn.request("GET", url, headers=headers)
                response = conn.getresponse()
                body = response.read()
                if response.status != 200:
                    failures += 1
                    break
                size += len(body)
                largest = max(largest, len(body))
                n += 1
                match = LINK.search(response.getheader("Link") or "")
                url = match.group(1) if match else None
            else:
                walks += 1
                times.append(time.monotonic() - t)
                sizes.append(size)
                pages.append(n)
        except (OSError, http.client.HTTPException):
            failures += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    print(json.dumps({"walks": walks, "times": times, "sizes": sizes, "pages": pages,
                      "largest": largest, "failures": failures}))


if len(sys.argv) == 5 and sys.argv[1] == "walk":
    walk(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "gzip")
    sys.exit(0)

from probe import IFACE, NAME, PATH, Gio, GLib, Probe, connect as bus_connect, figures, http  # noqa: E402
from probe import status_kib as pid_status_kib  # noqa: E402

ADDRESS, PORT, PID = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
AGENTS = int(os.environ.get("HB_HISTORY_AGENTS", "2000"))
ENTRIES = int(os.environ.get("HB_HISTORY_ENTRIES", "128"))
SECONDS = float(os.environ.get("HB_HISTORY_SECONDS", "20"))
WALKERS = int(os.environ.get("HB_HISTORY_WALKERS", "4"))


def status_kib(key):
    return pid_status_kib(PID, key)


def connect():
    return bus_connect(ADDRESS)


def http_status(path, timeout=30.0):
    return http(PORT, "GET", path, timeout=timeout)


def fill(bus):
    """AGENTS agents with ENTRIES state changes each, at most 64 calls
    in flight."""
    loop = GLib.MainLoop()
    state = {"pending": 0, "errors": 0, "calls": 0}
    calls = [("Register", GLib.Variant("(sa{sv})", (f"hist-{i:05d}", {})))
             for i in range(AGENTS)]
    for r in range(1, ENTRIES):
        options = {"status": GLib.Variant("s", "error")} if r % 2 else {}
        calls += [("Beat", GLib.Variant("(sa{sv})", (f"hist-{i:05d}", options)))
                  for i in range(AGENTS)]
    it = iter(calls)

    def done(source, result, _):
        try:
            bus.call_finish(result)
        except GLib.Error as e:
            state["errors"] += 1
            if state["errors"] <= 3:
                print("fill: " + e.message, file=sys.stderr)
        state["pending"] -= 1
        send()

    def send():
        for method, args in it:
            bus.call(NAME, PATH, IFACE, method, args, None, Gio.DBusCallFlags.NONE, 60000, None, done, None)
            state["pending"] += 1
            state["calls"] += 1
            if state["pending"] >= 64:
                return
        if state["pending"] == 0:
            loop.quit()

    t = time.monotonic()
    send()
    loop.run()
    reply = bus.call_sync(NAME, PATH, IFACE, "GetHistory", GLib.Variant("(s)", ("hist-00000",)),
                          None, Gio.DBusCallFlags.NONE, 30000, None)
    print(f"filled: {AGENTS} agents x {len(reply.unpack()[0])} history entries "
          f"({state['calls']} calls, {state['errors']} errors) in {time.monotonic() - t:.1f} s; "
          f"RSS {status_kib('VmRSS') / 1024:.1f} MiB")
    sys.stdout.flush()


def phase(name, walkers, gzip=False):
    probe = Probe(ADDRESS, PID, port=PORT, interval=0.02).start()
    children = [subprocess.Popen([sys.executable, __file__, "walk", str(PORT), str(SECONDS),
                                  "gzip" if gzip else "plain"], stdout=subprocess.PIPE)
                for _ in range(walkers)]
    if not children:
        time.sleep(SECONDS)
    results = [json.loads(c.communicate()[0] or b"{}") for c in children]
    probe.finish()
    print(f"{name}:")
    print(f"  GetStatus    {figures(probe.dbus)}")
    print(f"  GET /health  {figures(probe.health)}")
    if results:
        times = sum((r.get("times", []) for r in results), [])
        sizes = sum((r.get("sizes", []) for r in results), [])
        pages = sum((r.get("pages", []) for r in results), [])
        print(f"  walks        {sum(r.get('walks', 0) for r in results)} whole walks by {walkers} clients, "
              f"{sum(r.get('failures', 0) for r in results)} failed; one walk: {figures(times)}")
        if sizes:
            print(f"  one walk     {max(sizes) / 1e6:.2f} MB in {max(pages)} pages; "
                  f"largest answer {max(r.get('largest', 0) for r in results) / 1024:.0f} KiB")
    print(f"  probe failures {probe.failures}; peak RSS {probe.peak_rss / 1024:.1f} MiB "
          f"(VmHWM so far {status_kib('VmHWM') / 1024:.1f} MiB)")
    sys.stdout.flush()


bus = connect()
print(f"daemon RSS at start {status_kib('VmRSS') / 1024:.1f} MiB")
fill(bus)
phase("quiet", 0)
phase(f"walks ({WALKERS} at once, plain)", WALKERS)
phase(f"walks ({WALKERS} at once, Accept-Encoding: gzip)", WALKERS, gzip=True)
if http_status("/health") != 200:
    print("the daemon did not answer /health at the end")
