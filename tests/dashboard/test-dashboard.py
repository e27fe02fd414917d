#!/usr/bin/python3
# test-dashboard.py: the dashboard in a real headless Chromium.
#
# Starts a private dbus-daemon and the built heartbeatd with HTTP on a free
# port, opens http://127.0.0.1:PORT/ in Debian's chromium, driven over the
# DevTools protocol (python3-websocket, no npm), registers an agent over
# D-Bus, and waits (bounded, polling the DOM) for its row to appear and
# then to turn stale; saves a screenshot. Every process is stopped by PID.
#
# Usage: test-dashboard.py HEARTBEATD SCREENSHOT.png
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

WAIT = 15.0  # seconds any single wait may take before the test fails


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, check, timeout=WAIT):
    """Polls check() until it returns a true value; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


class DevTools:
    """The smallest DevTools protocol client: call, and nothing else."""

    def __init__(self, url):
        import websocket  # python3-websocket
        self.ws = websocket.create_connection(url, timeout=WAIT, suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise AssertionError("%s: %s" % (method, message["error"]))
                return message["result"]

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


def main():
    heartbeatd, screenshot = sys.argv[1], sys.argv[2]
    chromium = shutil.which("chromium")
    if chromium is None:
        print("1..0 # SKIP chromium is not installed")
        return 77
    try:
        import websocket  # noqa: F401
    except ImportError:
        print("1..0 # SKIP python3-websocket is not installed")
        return 77

    tmp = tempfile.mkdtemp(prefix="hb-dashboard-")
    children = []
    try:
        bus = os.path.join(tmp, "bus")
        with open(os.path.join(tmp, "bus.conf"), "w") as conf:
            conf.write("""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
  </policy>
</busconfig>
""" % bus)
        children.append(subprocess.Popen(
            ["dbus-daemon", "--config-file=" + os.path.join(tmp, "bus.conf"), "--nofork", "--nopidfile"],
            stderr=subprocess.DEVNULL))
        wait_until("the bus", lambda: os.path.exists(bus))
        address = "unix:path=" + bus

        http_port = free_port()
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=address)
        base = "http://127.0.0.1:%d" % http_port

        def start_daemon():
            daemon = subprocess.Popen(
                [heartbeatd, "--session", "--state-dir", os.path.join(tmp, "state"),
                 "--http-port", str(http_port)], env=env)
            children.append(daemon)

            def up():
                if daemon.poll() is not None:
                    raise AssertionError("heartbeatd exited with status %d" % daemon.returncode)
                return http_ok(base + "/health")
            wait_until("heartbeatd's HTTP", up)
            return daemon

        def dbus_call(method, *args):
            subprocess.run(["gdbus", "call", "--address", address, "--dest", "org.heartbeat.Monitor1",
                            "--object-path", "/org/heartbeat/Monitor1",
                            "--method", "org.heartbeat.Monitor1." + method, *args],
                           check=True, stdout=subprocess.DEVNULL, timeout=WAIT)

        daemon = start_daemon()

        devtools_port = free_port()
        children.append(subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-dev-shm-usage", "--user-data-dir=" + os.path.join(tmp, "chromium"),
             "--window-size=1100,600", "--remote-debugging-port=%d" % devtools_port, "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        def page_target():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/json" % devtools_port, timeout=2) as r:
                    pages = [t for t in json.load(r) if t.get("type") == "page"]
                    return pages[0]["webSocketDebuggerUrl"] if pages else None
            except OSError:
                return None
        page = DevTools(wait_until("Chromium's DevTools", page_target))
        page.call("Page.enable")
        page.call("Page.navigate", url=base + "/")
        wait_until("the event stream to connect",
                   lambda: page.evaluate("document.getElementById('connection').textContent") == "live")
        print("ok 1 the dashboard loads and follows /v1/events")

        dbus_call("Register", "dash-agent",
                  "{'stale-after-usec': <uint64 1500000>, 'task-id': <'screenshot'>}")
        row = "document.querySelector('tr[data-agent-id=\"dash-agent\"]')"
        state = wait_until("the agent's row", lambda: page.evaluate(row + "?.dataset.state"))
        assert state == "healthy", state
        print("ok 2 the registered agent's row appears, healthy")

        wait_until("the row to turn stale", lambda: page.evaluate(row + "?.dataset.state") == "stale")
        text = page.evaluate(row + ".textContent")
        assert "stale" in text and "screenshot" in text, text
        summary = page.evaluate("document.getElementById('summary').textContent")
        assert summary.startswith("1 agent: 0 healthy, 1 stale"), summary
        print("ok 3 the row turns stale")

        import base64
        shot = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
        with open(screenshot, "wb") as f:
            f.write(shot)
        assert shot.startswith(b"\x89PNG\r\n\x1a\n") and len(shot) > 1000, len(shot)
        print("ok 4 screenshot saved to %s (%d bytes)" % (screenshot, len(shot)))

        last_beat = row + ".children[6].textContent"
        before = page.evaluate(last_beat)
        wait_until("the time since the last beat to tick",
                   lambda: page.evaluate(last_beat) not in (None, before))
        print("ok 5 the time since the last beat ticks (%s, then %s)" % (before, page.evaluate(last_beat)))

        # The stream drops when the daemon restarts; the page reconnects and
        # reads /v1/agents again.
        fetches = "performance.getEntriesByName(location.origin + '/v1/agents').length"
        fetched = page.evaluate(fetches)
        assert fetched >= 1, fetched
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=WAIT)
        wait_until("the page to see the stream drop",
                   lambda: page.evaluate("document.getElementById('connection').textContent") == "reconnecting")
        daemon = start_daemon()
        wait_until("the page to reconnect",
                   lambda: page.evaluate("document.getElementById('connection').textContent") == "live")
        wait_until("/v1/agents to be read again", lambda: page.evaluate(fetches) > fetched)
        print("ok 6 after a reconnect the page reads /v1/agents again")

        dbus_call("Register", "dash-other", "{}")
        wait_until("the second agent's row",
                   lambda: page.evaluate("document.querySelector('tr[data-agent-id=\"dash-other\"]')?.dataset.state")
                   == "healthy")
        dbus_call("Unregister", "dash-agent")
        wait_until("the unregistered agent's row to go", lambda: page.evaluate(row + " === null"))
        print("ok 7 register adds a row and unregister removes it, live")

        # The longest id there is: the table still fits the window, and the
        # state column shows. Without the clipping, the id alone is wider
        # than the window and pushes the other columns off screen.
        long_id = "build-" + "a" * 116 + "xyz-12"
        assert len(long_id) == 128
        dbus_call("Register", long_id, "{'task-id': <'%s'>}" % ("a long task " * 12))
        dbus_call("Beat", long_id, "{'status': <'%s'>}" % ("copying-" * 8))
        long_row = "document.querySelector('tr[data-agent-id=\"%s\"]')" % long_id
        wait_until("the long id's row", lambda: page.evaluate(long_row + "?.dataset.state") == "healthy")
        fit = page.evaluate("""(() => {
            const row = %s, table = row.closest("table"), state = row.querySelector("td.state");
            const r = state.getBoundingClientRect(), id = row.querySelector("th .clip");
            const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
            return { viewport: document.documentElement.clientWidth,
                     table: table.scrollWidth, page: document.documentElement.scrollWidth,
                     main: document.querySelector("main").scrollWidth,
                     stateLeft: r.left, stateRight: r.right, stateText: state.textContent,
                     stateVisible: state.contains(hit),
                     title: row.querySelector("th").title, text: row.querySelector("th").textContent,
                     idClipped: !!id && id.firstChild.scrollWidth > id.firstChild.clientWidth,
                     lastShown: id ? id.lastChild.textContent : null,
                     lastBeat: row.children[6].getBoundingClientRect().right };
        })()""" % long_row)
        print("# %s" % json.dumps(fit))
        assert fit["table"] <= fit["viewport"], fit
        assert fit["main"] <= fit["viewport"], fit
        assert fit["page"] <= fit["viewport"], fit
        assert 0 <= fit["stateLeft"] < fit["stateRight"] <= fit["viewport"], fit
        assert fit["stateVisible"] and fit["stateText"] == "healthy", fit
        assert fit["lastBeat"] <= fit["viewport"], fit
        assert fit["title"] == long_id and fit["text"] == long_id, fit
        assert fit["idClipped"] and fit["lastShown"] == "xyz-12", fit
        print("ok 8 a 128-character id is cut with an ellipsis; the table fits the window")
        print("1..8")
        return 0
    finally:
        for child in reversed(children):
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
