"""bench/probe.py: what the benchmarks that watch heartbeatd under load share.

A Probe is a thread that, every `interval` seconds until stopped, calls
GetStatus on a D-Bus connection of its own and, when given an HTTP port,
GET /health on a new TCP connection (as another client would), and reads
the daemon's RSS from /proc. figures() prints latencies as p50/p99/max.
Imported by bench/hostile.py, bench/history.py and bench/alerts.py (run
from bench/, which Python puts first on sys.path).
"""
import socket
import threading
import time

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

NAME, PATH, IFACE = "org.heartbeat.Monitor1", "/org/heartbeat/Monitor1", "org.heartbeat.Monitor1"


def connect(address):
    """A new connection to the bus at @address."""
    return Gio.DBusConnection.new_for_address_sync(
        address,
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None, None)


def status_kib(pid, key="VmRSS"):
    """A size from /proc/PID/status (VmRSS, VmHWM), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def http(port, method, path, body=None, timeout=10.0):
    """One request on a new connection to 127.0.0.1:@port, read whole;
    its status (0 if the server closed without an answer)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    data = body.encode() if body else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    s.sendall(head.encode() + b"\r\n" + data)
    reply = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        reply += chunk
    s.close()
    return int(reply.split(b" ", 2)[1]) if reply else 0


class Probe:
    """GetStatus (and GET /health if @port) every @interval s, in a thread:
    probe.start(), then probe.finish(); latencies in seconds in .dbus and
    .health, failed calls in .failures, the highest RSS seen in .peak_rss
    (KiB)."""

    def __init__(self, address, pid, port=None, interval=0.05, timeout_ms=30000):
        self.address, self.pid, self.port = address, pid, port
        self.interval, self.timeout_ms = interval, timeout_ms
        self.dbus, self.health, self.failures, self.peak_rss = [], [], 0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def start(self):
        self.thread.start()
        return self

    def finish(self):
        self.stop.set()
        self.thread.join()

    def run(self):
        bus = connect(self.address)
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                bus.call_sync(NAME, PATH, IFACE, "GetStatus", None, None, Gio.DBusCallFlags.NONE,
                              self.timeout_ms, None)
                self.dbus.append(time.monotonic() - t)
            except GLib.Error:
                self.failures += 1
                try:
                    bus = connect(self.address)
                except GLib.Error:
                    pass
            if self.port:
                t = time.monotonic()
                try:
                    if http(self.port, "GET", "/health", timeout=self.timeout_ms / 1000) in (200, 503):
                        self.health.append(time.monotonic() - t)
                    else:
                        self.failures += 1
                except OSError:
                    self.failures += 1
            try:
                self.peak_rss = max(self.peak_rss, status_kib(self.pid))
            except OSError:
                pass
            time.sleep(self.interval)


def figures(values, unit=1e3, suffix="ms"):
    """p50, p99 and max of @values (seconds), in @suffix."""
    if not values:
        return "no answers"
    v = sorted(values)
    return "p50 %7.1f %s  p99 %7.1f %s  max %7.1f %s  (n=%d)" % (
        v[len(v) // 2] * unit, suffix, v[min(len(v) - 1, len(v) * 99 // 100)] * unit, suffix,
        v[-1] * unit, suffix, len(v))
