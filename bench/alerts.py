#!/usr/bin/python3
"""bench/alerts.py: heartbeatd's alerts under the receivers and programs of
issue 25, measured. Run by bench/alerts.sh (which writes the configuration,
starts the bus and the daemon, and stops them by PID).

Each scenario registers agents that go stale 200 ms later, which fires the
alert sections bench/alerts.sh configured, then watches for a fixed time:
a probe calls GetStatus every 20 ms on its own connection and the daemon's
RSS and open fds are read from /proc. Printed per scenario: GetStatus
p50/p99/max, the peak RSS, fds before and after, and what arrived.
"""
import http.server
import os
import socketserver
import sys
import threading
import time

from probe import IFACE, NAME, PATH, Gio, GLib, Probe, connect, figures, status_kib

ADDRESS, PORT, PID, DIR = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
received = {"ok": 0, "moved": 0, "elsewhere": [], "endless-bytes": 0, "endless-requests": 0}


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/elsewhere":
            received["elsewhere"].append("GET")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        if self.path == "/ok":
            received["ok"] += 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/moved":
            received["moved"] += 1
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{PORT}/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/elsewhere":
            received["elsewhere"].append("POST")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/endless":
            received["endless-requests"] += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"%x\r\n%s\r\n" % (65536, b"z" * 65536)
            deadline = time.monotonic() + 30
            try:
                while time.monotonic() < deadline:
                    self.wfile.write(chunk)
                    received["endless-bytes"] += 65536
            except OSError:
                pass
            self.close_connection = True


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def fds():
    return len(os.listdir(f"/proc/{PID}/fd"))


def register(bus, ident):
    bus.call_sync(NAME, PATH, IFACE, "Register",
                  GLib.Variant("(sa{sv})", (ident, {"stale-after-usec": GLib.Variant("t", 200000)})),
                  None, Gio.DBusCallFlags.NONE, 10000, None)


def scenario(name, prefix, count, seconds, report):
    bus = connect(ADDRESS)
    fds_before, rss_before = fds(), status_kib(PID)
    probe = Probe(ADDRESS, PID, interval=0.02).start()
    t0 = time.monotonic()
    for i in range(count):
        register(bus, f"{prefix}-{i:03d}")
    time.sleep(seconds)
    probe.finish()
    print(f"{name}: {count} agent(s) stale after 200 ms, watched {time.monotonic() - t0:.1f} s")
    print(f"  GetStatus {figures(probe.dbus)}; failures {probe.failures}")
    print(f"  RSS {rss_before / 1024:.1f} -> peak {probe.peak_rss / 1024:.1f} MiB; fds {fds_before} -> {fds()}")
    report()
    sys.stdout.flush()


def alive_children():
    try:
        with open(os.path.join(DIR, "children")) as f:
            pids = [int(line) for line in f if line.strip()]
    except OSError:
        return 0, 0
    alive = sum(1 for p in pids if os.path.exists(f"/proc/{p}") and
                open(f"/proc/{p}/stat").read().split(")")[-1].split()[0] != "Z")
    return len(pids), alive


def main():
    server = Server(("127.0.0.1", PORT), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"heartbeatd pid {PID}, RSS {status_kib(PID) / 1024:.1f} MiB, {fds()} fds")
    scenario("forking exec= (sleep 900 & exit 0), timeout 2s, and a webhook beside", "fork", 30, 6,
             lambda: print("  background children started %d, still running %d; webhooks arrived %d of 30"
                           % (*alive_children(), received["ok"])))
    scenario("spewing exec= (exec yes), timeout 2s", "spew", 1, 5,
             lambda: print(f"  VmHWM {status_kib(PID, 'VmHWM') / 1024:.1f} MiB"))
    scenario("webhook whose 200 reply never ends, timeout 10s", "endless", 1, 14,
             lambda: print("  receiver wrote %.1f MiB in %d request(s); VmHWM %.1f MiB"
                           % (received["endless-bytes"] / 2**20, received["endless-requests"],
                              status_kib(PID, "VmHWM") / 1024)))
    scenario("webhook answered 302 to another path", "moved", 1, 3,
             lambda: print(f"  POSTs to /moved {received['moved']}; requests to /elsewhere "
                           f"{received['elsewhere'] or 'none'}"))
    server.shutdown()


main()
