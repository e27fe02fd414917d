#!/usr/bin/python3
# test-dashboard.py: the dashboard in a real headless Chromium.
#
# Starts a private dbus-daemon and the built heartbeatd with HTTP on a free
# port, opens http://127.0.0.1:PORT/ in Debian's chromium, driven over the
# DevTools protocol (python3-websocket, no npm), registers an agent over
# D-Bus, and waits (bounded, polling the DOM) for its row to appear and
# then to turn stale; saves a screenshot. Then the history strips: an agent
# goes healthy -> stale -> healthy, and the pixels of a screenshot (PNG
# decoded here with zlib) must show its strip healthy, stale, healthy from
# left to right in the page's state colours; and the detail view
# (#agent=ID) lists its states, data and counters.
#
# On call (issue 24): 200 agents registered over one kept-alive HTTP
# connection, two of them unhealthy and last by id: both are among the
# first rows of a 1400x900 screen (their bounding boxes), the title counts
# them, healthy rows are not tinted, the heads stay in view; the error's
# reason is in its row; the search, "problems only", the state and tag
# filters and the sortable heads; a paused agent (a daemon with pause);
# the WCAG contrast of every visible text over its effective background,
# light and dark (Emulation.setEmulatedMedia), with a row in each state; no
# width from 1400 to 400 px scrolls sideways and at 400 px every id shows
# in full; heartbeatd killed (SIGKILL): within 10 s the banner, no agent
# shown healthy, the clocks stopped, the gap in the strips; restarted on
# the same port and state: the page recovers by itself; stopped (SIGSTOP):
# the silent stream is noticed; the strips' shapes without hue. Every
# process is stopped by PID; no wait is a sleep.
#
# Usage: test-dashboard.py HEARTBEATD SCREENSHOT.png
#    or: test-dashboard.py --url http://HOST:PORT --check-agent ID
#          [--expect-states S1,S2,...] [--expect-main-pid PID] [--short SECONDS]
#          [--screenshot PNG]
#
# With --url it starts nothing but Chromium and checks a daemon that already
# runs (the system tier's, in a container): ID's row strips show the states
# of GET /v1/agents/ID/history in the page's colours, in order and where each
# entry falls (the upper strip's span is the history's, unless --short), the
# detail view (#agent=ID) lists them, and with --expect-main-pid its Unit
# section shows that main PID. One TAP line per check; exit status 1 if any
# failed, 77 without chromium or python3-websocket.
#
# With HB_DASHBOARD_README_PNG=PATH it also saves the README's picture
# of the dashboard (agents in every state, one agent's detail open) there.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import sys
sys.dont_write_bytecode = True   # no __pycache__ next to the test

import base64
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
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


def decode_png(data):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB or RGBA PNG."""
    import struct
    import zlib
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw, stride, rows, previous = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        previous = line
    return width, height, [[tuple(r[x * bpp:x * bpp + 3]) for x in range(width)] for r in rows]


def css_rgb(text):
    """(r, g, b) of a CSS colour as getComputedStyle gives it: #rrggbb or rgb(r, g, b)."""
    text = text.strip()
    if text.startswith("#") and len(text) == 7:
        return tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))
    assert text.startswith("rgb"), text
    return tuple(int(float(v)) for v in text[text.index("(") + 1:text.index(")")].replace(",", " ").split()[:3])


def strip_runs(pixels, box, palette, tolerance=24):
    """The colours along a line at 80 % of the height of @box (CSS px; x, y,
    width, height, dpr) in a screenshot, where every state's bar shows (they
    stand on the strip's bottom, each at its height, paused the lowest at
    40 %), as [name, length] runs from left to right; a pixel near no colour
    of @palette is "?". A palette name "NAME:x" is NAME (two colours of one
    thing, as the two of the not-monitored hatching)."""
    x, y, width, height, dpr = box[:5]
    row = pixels[int((y + height * 0.8) * dpr)]
    runs = []
    for px in range(math.ceil(x * dpr), math.floor((x + width) * dpr)):
        r, g, b = row[px]
        name = "?"
        for candidate, (cr, cg, cb) in palette.items():
            if abs(r - cr) <= tolerance and abs(g - cg) <= tolerance and abs(b - cb) <= tolerance:
                name = candidate.split(":")[0]
                break
        if runs and runs[-1][0] == name:
            runs[-1][1] += 1
        else:
            runs.append([name, 1])
    return runs


def states_in(runs, least=2):
    """The sequence of colours of @runs, without runs shorter than @least
    pixels and single pixels of no known colour (the edges may blend)."""
    names = []
    for name, length in runs:
        if length >= least and not (name == "?" and length == 1) and (not names or names[-1] != name):
            names.append(name)
    return names


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

    def evaluate_quietly(self, expression):
        """evaluate(), or None while the page is navigating."""
        try:
            return self.evaluate(expression)
        except AssertionError:
            return None

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


def find_tools():
    """Chromium's path, once python3-websocket is there too; else None, with
    the TAP line that skips."""
    chromium = shutil.which("chromium")
    if chromium is None:
        print("1..0 # SKIP chromium is not installed")
        return None
    try:
        import websocket  # noqa: F401
    except ImportError:
        print("1..0 # SKIP python3-websocket is not installed")
        return None
    return chromium


def start_chromium(chromium, tmp, children):
    """Headless Chromium (added to @children) with its profile in @tmp; its
    page, over the DevTools protocol, with Page events enabled."""
    devtools_port = free_port()
    children.append(subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-dev-shm-usage", "--user-data-dir=" + os.path.join(tmp, "chromium"),
         "--window-size=1100,600", "--remote-debugging-port=%d" % devtools_port, "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def page_target():
        if children[-1].poll() is not None:
            raise AssertionError("chromium exited with status %d" % children[-1].returncode)
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/json" % devtools_port, timeout=2) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
                return pages[0]["webSocketDebuggerUrl"] if pages else None
        except OSError:
            return None
    page = DevTools(wait_until("Chromium's DevTools", page_target))
    page.call("Page.enable")
    return page


def readme_screenshot(page, base, dbus_call, api, path, children):
    """The README's picture: agents in every state over half a minute, with
    the strips spanning 30 s and 2 min so that it shows (the page's default
    is an hour and a day); problems first, each with its reason."""
    for agent_id in page.evaluate("[...document.querySelectorAll('#agents tr')].map(r => r.dataset.agentId)"):
        if api.request("DELETE", "/v1/agents/" + urllib.parse.quote(agent_id, safe=""))[0] != 204:
            dbus_call("Unregister", agent_id)
    page.call("Emulation.setDeviceMetricsOverride", width=1100, height=600, deviceScaleFactor=1, mobile=False)
    page.call("Page.navigate", url=base + "/?short=30&long=120")
    wait_until("the README page to connect", lambda: page.evaluate_quietly(
        "location.search === '?short=30&long=120' && document.getElementById('connection')?.textContent") == "live")
    sleeper = subprocess.Popen(["sleep", "600"])
    children.append(sleeper)
    dbus_call("Register", "backup@db-1", "{'task-id': <'nightly dump'>}")
    dbus_call("Register", "ingest-worker-3", "{'stale-after-usec': <uint64 1500000>, 'task-id': <'queue: events'>}")
    dbus_call("Register", "report-builder", "{'task-id': <'monthly report'>}")
    dbus_call("Register", "cache-warmer", "{'timeout-after-usec': <uint64 14000000>, 'stale-after-usec': <uint64 20000000>}")
    dbus_call("Register", "sync-daemon", "{'pid': <uint32 %d>, 'task-id': <'rsync mirror'>}" % sleeper.pid)
    dbus_call("Register", "mirror-fetch", "{'stale-after-usec': <uint64 2000000>}")
    dbus_call("Register", "billing-export", "{'task-id': <'invoices to S3'>}")
    dbus_call("Register", "db-replica", "{'task-id': <'replication'>}")
    expected = {"backup@db-1": "healthy", "ingest-worker-3": "healthy", "report-builder": "healthy",
                "cache-warmer": "timed-out", "sync-daemon": "gone", "mirror-fetch": "stale",
                "billing-export": "error", "db-replica": "paused"}
    begin = time.monotonic()
    while (elapsed := time.monotonic() - begin) < 26:
        dbus_call("Beat", "backup@db-1", "{'progress': <%f>}" % (elapsed / 30))
        if not (5 < elapsed < 8.5 or 16 < elapsed < 19):
            dbus_call("Beat", "ingest-worker-3", "{}")
        dbus_call("Beat", "report-builder", "{'status': <'%s'>}" % ("error" if 9 < elapsed < 15 else "running"))
        if elapsed < 12:
            dbus_call("Beat", "cache-warmer", "{}")
        if elapsed < 12:
            dbus_call("Beat", "mirror-fetch", "{}")
        if elapsed < 20:
            dbus_call("Beat", "billing-export", "{}")
        elif elapsed < 21:
            dbus_call("Beat", "billing-export", "{'status': <'error'>, 'metadata': <{'reason': <'upload refused: quota exceeded'>}>}")
        if elapsed < 14:
            dbus_call("Beat", "db-replica", "{}")
        elif expected["db-replica"] == "paused" and elapsed < 15:
            try:
                dbus_call("Pause", "db-replica", "{'reason': <'disk swap until 18:00'>}")
            except subprocess.CalledProcessError:
                expected["db-replica"] = "healthy"    # (a daemon without pause)
        if elapsed > 18 and sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()
        time.sleep(0.5)   # the agents' beat interval
    last_beat = [time.monotonic()]

    def still_beating():
        """ingest-worker-3 beats on while the page is read (it goes stale after 1.5 s)"""
        if time.monotonic() - last_beat[0] > 0.5:
            dbus_call("Beat", "ingest-worker-3", "{}")
            last_beat[0] = time.monotonic()
        return True

    states = "Object.fromEntries([...document.querySelectorAll('#agents tr')].map(r => [r.dataset.agentId, r.dataset.state]))"
    try:
        wait_until("the README agents' states", lambda: still_beating() and page.evaluate(states) == expected)
    except AssertionError:
        print("# README agents: %s" % page.evaluate(states))
        raise
    png = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
    with open(path, "wb") as f:
        f.write(png)
    print("# README screenshot saved to %s (%d bytes)" % (path, len(png)))
    page.evaluate("location.hash = 'agent=ingest-worker-3'")
    wait_until("the detail view", lambda: still_beating() and page.evaluate("document.querySelectorAll('#detail-events tbody tr').length") >= 5)
    page.call("Emulation.setDeviceMetricsOverride", width=1100, height=720, deviceScaleFactor=1, mobile=False)
    wait_until("the detail strips", lambda: still_beating() and page.evaluate(
        "document.querySelector('#detail canvas.strip')?.dataset.nowUsec"))
    png = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
    detail_path = path[:-4] + "-detail.png" if path.endswith(".png") else path + "-detail"
    with open(detail_path, "wb") as f:
        f.write(png)
    print("# README screenshot of the detail view saved to %s (%d bytes)" % (detail_path, len(png)))


# ------------------------------------------------------------------------
# --url: checks a daemon that already runs (the system tier's, in a real
# systemd container), without starting or changing anything: one agent's
# strips against the daemon's own history, and its detail view.

# The colour the page gives a state (its legend: healthy, paused, stale,
# gone and no heartbeat grey, not monitored hatched in two colours,
# everything else the error colour); names of PALETTE_VARS.
STATE_COLOURS = {"healthy": "healthy", "stale": "stale", "gone": "grey", "no-heartbeat": "grey",
                 "paused": "paused", "unmonitored": "unmonitored"}
PALETTE_VARS = {"healthy": "--healthy", "stale": "--stale", "bad": "--bad", "grey": "--grey", "none": "--line",
                "paused": "--paused", "unmonitored:a": "--hatch-a", "unmonitored:b": "--hatch-b"}


def colour_of(state):
    return STATE_COLOURS.get(state, "bad")


def read_palette(page):
    """The page's state colours, from its stylesheet, by PALETTE_VARS name."""
    values = page.evaluate("(() => { const s = getComputedStyle(document.documentElement); return %s.map(n => s.getPropertyValue(n)); })()"
                           % json.dumps(list(PALETTE_VARS.values())))
    return {name: css_rgb(value) for name, value in zip(PALETTE_VARS, values)}


def expected_strip(history, span_usec, now_usec):
    """[(colour, start pixel fraction)] a strip over @span_usec up to
    @now_usec must show for @history ([(state, at-usec)], oldest first):
    "none" where nothing is known yet, then each state's colour where it
    starts (consecutive equal colours are one)."""
    start = now_usec - span_usec
    out = []
    for i, (state, at) in enumerate(history):
        end = history[i + 1][1] if i + 1 < len(history) else now_usec
        if end <= start or at > now_usec:
            continue
        if not out and at > start:
            out.append(("none", 0.0))
        colour = colour_of(state)
        if not out or out[-1][0] != colour:
            out.append((colour, max(0.0, (at - start) / span_usec)))
    return out or [("none", 0.0)]


def strip_boundaries(runs, least):
    """[(colour, start pixel)] of the colours of @runs (strip_runs) left to
    right; runs shorter than @least pixels (blended edges, "?") are left
    out."""
    out, x = [], 0
    for name, length in runs:
        if length >= least and name != "?" and (not out or out[-1][0] != name):
            out.append((name, x))
        x += length
    return out


def capture_clip(page, canvas_js):
    """The pixels of one canvas (a screenshot clipped to it) as the rows of
    strip_runs' pixels, its box in them, and the time it was drawn for (the
    same before and after the shot)."""
    box_js = """(() => { const c = %s; if (!c || !c.dataset.nowUsec) return null; c.scrollIntoView({block: "center"});
        const r = c.getBoundingClientRect();
        return [r.x + scrollX, r.y + scrollY, r.width, r.height, devicePixelRatio, Number(c.dataset.nowUsec)]; })()"""
    for attempt in range(40):
        box = wait_until("a drawn canvas, " + canvas_js, lambda: page.evaluate(box_js % canvas_js))
        x, y, width, height, dpr, now = box
        clip = {"x": math.floor(x), "y": math.floor(y), "scale": 1,
                "width": math.ceil(x + width) - math.floor(x), "height": math.ceil(y + height) - math.floor(y)}
        png = base64.b64decode(page.call("Page.captureScreenshot", format="png", clip=clip)["data"])
        if page.evaluate(box_js % canvas_js) == box:
            return decode_png(png)[2], [x - clip["x"], y - clip["y"], width, height, dpr, now]
    raise AssertionError("the strip never stayed still for a screenshot")


class Http:
    """One kept-alive connection to the daemon: many requests, one socket
    (registering hundreds of agents takes a fraction of a second)."""

    def __init__(self, port):
        self.port, self.conn = port, None

    def request(self, method, path, body=None):
        """(status, body bytes); JSON in and out."""
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)
            try:
                data = json.dumps(body).encode() if body is not None else None
                self.conn.request(method, path, body=data,
                                  headers={"Content-Type": "application/json"} if data is not None else {})
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                self.close()      # the daemon closed a kept connection: once more, on a new one
                if attempt == 2:
                    raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# The WCAG contrast of every visible text of the page: each element with
# text of its own (or a ::before/::after with text, or a form control), its
# computed colour over its effective background (the backgrounds of it and
# its ancestors, composed up to the first opaque one).
CONTRAST_JS = r"""(() => {
  // rgb()/rgba() as 0-255, color(srgb …) (what color-mix() computes to) as 0-1; anything else is a failure
  const unread = new Set();
  const parse = text => {
    let m = /^rgba?\(([^)]*)\)$/.exec(text.trim()), scale = 1;
    if (!m) { m = /^color\(srgb ([^)]*)\)$/.exec(text.trim()); scale = 255; }
    if (!m) { unread.add(text); return [0, 0, 0, 0]; }
    const v = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return [v[0] * scale, v[1] * scale, v[2] * scale, v.length > 3 ? v[3] : 1];
  };
  const over = (top, under) => [0, 1, 2].map(i => top[i] * top[3] + under[i] * (1 - top[3])).concat(1);
  const lum = c => { const f = v => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  function background(element) {
    const layers = [];
    for (let e = element; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let bg = [255, 255, 255, 1];
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg;
  }
  const pseudoText = (e, which) => { const c = getComputedStyle(e, which).content;
    return c && c !== "none" && c !== "normal" && c !== '""' ? getComputedStyle(e, which).color : null; };
  let n = 0, least = Infinity, worst = null;
  const bad = [];
  for (const e of document.body.querySelectorAll("*")) {
    if (/^(SCRIPT|STYLE|CANVAS|OPTION|BR)$/.test(e.tagName) || e.matches("input[type=checkbox]")) continue;
    const own = [...e.childNodes].some(t => t.nodeType === 3 && t.textContent.trim());
    const colours = [];
    if (own || e.matches("input, select, button")) colours.push(getComputedStyle(e).color);
    for (const which of ["::before", "::after"]) { const c = pseudoText(e, which); if (c) colours.push(c); }
    if (!colours.length || !e.getClientRects().length || e.closest(".visually-hidden")) continue;
    if (getComputedStyle(e).visibility !== "visible") continue;
    const bg = background(e);
    for (const colour of colours) {
      const fg = parse(colour), r = ratio(over(fg, bg), bg);
      n++;
      const what = `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}${e.className && typeof e.className === "string" ? "." + e.className.split(" ").join(".") : ""} "${e.textContent.trim().slice(0, 30)}" ${colour} on rgb(${bg.slice(0, 3).map(Math.round)}) ${r.toFixed(2)}`;
      if (r < least) { least = r; worst = what; }
      if (r < 4.5 && bad.length < 20) bad.push(what);
    }
  }
  for (const text of unread) bad.push(`a colour this test does not read: ${text}`);
  return { n, least, worst, bad };
})()"""


def contrast(page, scheme):
    """Measures CONTRAST_JS in @scheme (light, dark); fails below 4.5:1.
    Returns its figures, for the TAP line."""
    page.call("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": scheme}])
    wait_until("the %s scheme" % scheme, lambda: page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
               == (scheme == "dark"))
    result = page.evaluate(CONTRAST_JS)
    assert result["n"] > 0, result
    assert not result["bad"], "%s: below 4.5:1:\n%s" % (scheme, "\n".join(result["bad"]))
    return "%s: %d texts, the least %.2f:1" % (scheme, result["n"], result["least"])


class Tap:
    """TAP lines, one per check; a check is a function that returns what
    to add to its line or raises (its message goes below as comments)."""

    def __init__(self):
        self.n = self.failed = 0

    def check(self, description, check):
        self.n += 1
        try:
            detail = check()
        except Exception as e:  # noqa: BLE001 (every failure is a "not ok")
            self.failed += 1
            print("not ok %d - %s" % (self.n, description))
            for line in (str(e) or repr(e)).splitlines():
                print("#   " + line)
            ok = False
        else:
            print("ok %d - %s%s" % (self.n, description, ": " + detail if detail else ""))
            ok = True
        sys.stdout.flush()
        return ok


def check_running(argv):
    import argparse
    parser = argparse.ArgumentParser(
        prog="test-dashboard.py --url",
        description="Checks one agent on the dashboard of a heartbeatd that already runs: its row's "
                    "strips against GET /v1/agents/ID/history, and its detail view. Prints TAP.")
    parser.add_argument("--url", required=True, help="the daemon's HTTP base, e.g. http://127.0.0.1:8765")
    parser.add_argument("--check-agent", required=True, metavar="ID")
    parser.add_argument("--expect-states", metavar="S1,S2,...",
                        help="states the history must have in this order (others may sit between)")
    parser.add_argument("--expect-main-pid", type=int, metavar="PID",
                        help="the agent is unit-backed: its detail view's Unit section shows this main PID")
    parser.add_argument("--short", type=int, metavar="SECONDS",
                        help="the upper strip's span (default: the history's, and a quarter more)")
    parser.add_argument("--screenshot", metavar="PNG", help="save a screenshot of the page there")
    args = parser.parse_args(argv)
    base, agent_id = args.url.rstrip("/"), args.check_agent
    quoted = urllib.parse.quote(agent_id, safe="")
    chromium = find_tools()
    if chromium is None:
        return 77

    def http_json(path):
        with urllib.request.urlopen(base + path, timeout=5) as response:
            return json.load(response)

    def history():
        return [(e["state"], e["at-usec"]) for e in http_json("/v1/agents/%s/history" % quoted)["history"]]

    row_js = "[...document.querySelectorAll('#agents tr')].find(r => r.dataset.agentId === %s)" % json.dumps(agent_id)
    tap = Tap()
    tmp = tempfile.mkdtemp(prefix="hb-dashboard-")
    children = []
    state = {}
    try:
        def load():
            h = history()
            assert h, "GET /v1/agents/%s/history is empty" % agent_id
            span = args.short or max(10, math.ceil((time.time() * 1e6 - h[0][1]) / 1e6 * 1.25) + 3)
            state.update(history=h, short=span, long=span * 10)
            page = state["page"] = start_chromium(chromium, tmp, children)
            # wide, so that the row's strips have their widest (220 px), at
            # 2 pixels a CSS pixel; tall, so that every row shows
            page.call("Emulation.setDeviceMetricsOverride", width=2400, height=1000, deviceScaleFactor=2, mobile=False)
            page.call("Page.navigate", url="%s/?short=%d&long=%d" % (base, span, span * 10))
            wait_until("the page to follow /v1/events", lambda: page.evaluate_quietly(
                "location.search === '?short=%d&long=%d' && document.getElementById('connection')?.textContent" % (span, span * 10)) == "live")
            row_state = wait_until("%s's row" % agent_id, lambda: page.evaluate(row_js + "?.dataset.state"))
            if args.screenshot:
                with open(args.screenshot, "wb") as f:
                    f.write(base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"]))
            return "%s/?short=%d&long=%d is live, the row of %s is %s; history: %s" % (
                base, span, span * 10, agent_id, row_state, " ".join(s for s, _ in h))
        if not tap.check("dashboard: the page loads and shows %s" % agent_id, load):
            print("1..%d" % tap.n)
            return 1
        page, palette = state["page"], read_palette(state["page"])
        print("# palette: %s" % json.dumps(palette))

        def essentials():
            if not args.expect_states:
                return "(none asked for)"
            want, states, i = args.expect_states.split(","), [s for s, _ in state["history"]], 0
            for s in states:
                if i < len(want) and s == want[i]:
                    i += 1
            assert i == len(want), "the history %s lacks %s in this order" % (states, want)
            return " ".join(states)
        tap.check("dashboard: GET /v1/agents/%s/history has %s in this order" % (agent_id, args.expect_states or "-"),
                  essentials)

        def strip_check(canvas_js, span_s):
            """The strip @canvas_js (over @span_s) against the history: the
            same colours in the same order, each starting where its entry
            falls (or up to the page's two minimum widths earlier)."""
            for attempt in range(5):
                before = history()
                pixels, box = capture_clip(page, canvas_js)
                if history() == before:
                    break
            else:
                raise AssertionError("the history kept changing")
            x, _, width, _, dpr, drawn_for = box
            runs = strip_runs(pixels, box, palette)
            least = max(2, round(2 * dpr))
            shown = strip_boundaries(runs, 2)
            want = expected_strip(before, span_s * 1e6, drawn_for)
            pixels_wide = sum(length for _, length in runs)
            problems = []
            if [c for c, _ in shown] != [c for c, _ in want]:
                problems.append("colours: shown %s, history says %s" % ([c for c, _ in shown], [c for c, _ in want]))
            else:
                for (colour, at), (_, fraction) in zip(shown, want):
                    p0 = math.floor(fraction * pixels_wide)
                    if not p0 - 2 * least - 2 <= at <= p0 + 2:
                        problems.append("%s starts at pixel %d, its entry at %d" % (colour, at, p0))
            detail = "%s (%d px over %d s)" % (" ".join(c for c, _ in shown), pixels_wide, span_s)
            assert not problems, "\n".join(problems + ["runs: %s" % runs, "history: %s" % before,
                                                       "drawn for %d, box %s" % (drawn_for, box)])
            return detail

        tap.check("dashboard: the row's upper strip (?short=%d) shows the states of /v1/agents/%s/history in their colours, in order, in place"
                  % (state["short"], agent_id),
                  lambda: strip_check(row_js + "?.querySelector('canvas.strip[data-span=\"short\"]')", state["short"]))

        def long_strip():
            pixels, box = capture_clip(page, row_js + "?.querySelector('canvas.strip[data-span=\"long\"]')")
            shown = states_in(strip_runs(pixels, box, palette), 2)
            now_colour = colour_of(history()[-1][0])
            assert shown[0] == "none" and shown[-1] == now_colour and "?" not in shown, \
                "shown %s; want none first, %s last" % (shown, now_colour)
            return " ".join(shown)
        tap.check("dashboard: the row's lower strip (?long=%d): no data, then the history, up to the current state"
                  % state["long"], long_strip)

        # The detail view, as its address opens it
        page.evaluate("location.hash = %s" % json.dumps("agent=" + agent_id))
        events_js = """[...document.querySelectorAll("#detail-events tbody tr")].map(r => r.dataset.state)"""

        def detail_states():
            wait_until("the detail view", lambda: page.evaluate("!document.getElementById('detail').hidden"))
            h = history()
            want = [s for i, (s, _) in enumerate(h) if i == 0 or h[i - 1][0] != s][::-1]
            try:
                shown = wait_until("the detail view's states", lambda: (lambda e: e if e == want else None)(page.evaluate(events_js)))
            except AssertionError:
                raise AssertionError("the detail view lists %s, the history (newest first) %s" % (page.evaluate(events_js), want))
            return "%d states, newest first: %s" % (len(shown), " ".join(shown))
        tap.check("dashboard: #agent=%s opens the detail view, listing the states of the history" % agent_id, detail_states)

        def unit_section():
            agent = http_json("/v1/agents/%s" % quoted)
            agent = agent.get("agent", agent)
            unit = agent.get("unit") or {}
            facts_js = """Object.fromEntries([...document.querySelectorAll("#detail-unit dt")]
                .map(dt => [dt.textContent, dt.nextElementSibling.textContent]))"""
            want_pid = str(args.expect_main_pid)
            try:
                facts = wait_until("the Unit section with main PID %s" % want_pid,
                                   lambda: (lambda f: f if f and f.get("Main PID") == want_pid else None)(page.evaluate(facts_js)))
            except AssertionError:
                raise AssertionError("Unit section: %s; want Main PID %s; GET /v1/agents/%s: unit %s"
                                     % (page.evaluate(facts_js), want_pid, agent_id, json.dumps(unit)))
            active = unit.get("active-state", "") + (" (%s)" % unit["sub-state"] if unit.get("sub-state") else "")
            assert facts.get("Unit") == unit.get("name") and facts.get("Active") == active, (facts, unit)
            # CPU and memory where the daemon has them (a container without
            # memory accounting has no memory-bytes)
            for shown, field in (("CPU", "cpu-usec"), ("Memory", "memory-bytes")):
                assert (shown in facts) == (field in unit), (shown, facts, field, unit)
            return "; ".join("%s %s" % kv for kv in facts.items())
        if args.expect_main_pid is not None:
            tap.check("dashboard: the detail view's Unit section shows main PID %d (systemctl's) and the unit's name and state"
                      % args.expect_main_pid, unit_section)

        tap.check("dashboard: the detail view's upper strip shows the same colours in order, in place",
                  lambda: strip_check("document.querySelector('#detail canvas.strip[data-span=\"short\"]')", state["short"]))
        print("1..%d" % tap.n)
        return 1 if tap.failed else 0
    finally:
        for child in reversed(children):
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    heartbeatd, screenshot = sys.argv[1], sys.argv[2]
    chromium = find_tools()
    if chromium is None:
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

        page = start_chromium(chromium, tmp, children)
        page.call("Page.navigate", url=base + "/")
        wait_until("the event stream to connect",
                   lambda: page.evaluate("document.getElementById('connection').textContent") == "live")
        print("ok 1 the dashboard loads and follows /v1/events")

        dbus_call("Register", "dash-agent",
                  "{'stale-after-usec': <uint64 1500000>, 'task-id': <'screenshot'>}")
        row = "document.querySelector('tr[data-agent-id=\"dash-agent\"]')"
        state = wait_until("the agent's row", lambda: page.evaluate(row + "?.dataset.state"))
        assert state == "healthy", state
        # never beaten: no running clock, no time since a beat; the reason says so
        never = page.evaluate("[...%s.querySelectorAll('td.running, td.ago, td.reason')].map(c => c.textContent)" % row)
        assert never == ["waiting for its first beat", "-", "never"], never
        dbus_call("Beat", "dash-agent", "{}")
        wait_until("the beat to show", lambda: page.evaluate(row + "?.querySelector('td.ago').textContent").endswith(" ago"))
        print("ok 2 the registered agent's row appears, healthy, waiting for its first beat until it beats")

        wait_until("the row to turn stale", lambda: page.evaluate(row + "?.dataset.state") == "stale")
        text = page.evaluate(row + ".textContent")
        assert "stale" in text and "screenshot" in text, text
        # the summary, the order and the title follow on the next frame
        summary_js = "[document.getElementById('summary').textContent, document.title]"
        try:
            wait_until("the summary and the title", lambda: (lambda t: t[0].startswith("1 agent: 0 healthy, 1 stale")
                                                             and t[1] == "(1) heartbeatd")(page.evaluate(summary_js)))
        except AssertionError:
            raise AssertionError("summary and title: %s" % page.evaluate(summary_js))
        reason = page.evaluate(row + ".querySelector('td.reason').textContent")
        assert reason.startswith("no activity for more than 1"), reason     # 1.5 s (the daemon's words, or the page's)
        print("ok 3 the row turns stale")

        shot = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
        with open(screenshot, "wb") as f:
            f.write(shot)
        assert shot.startswith(b"\x89PNG\r\n\x1a\n") and len(shot) > 1000, len(shot)
        print("ok 4 screenshot saved to %s (%d bytes)" % (screenshot, len(shot)))

        last_beat = row + ".querySelector('td.ago').textContent"
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
                     lastBeat: row.querySelector("td.ago").getBoundingClientRect().right };
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

        # History strips. Short spans (?short=, ?long=), so that seconds show:
        # the upper strip is the last 10 s, the lower the last 10 min.
        short, long_ = 10, 600
        page.call("Page.navigate", url=base + "/?short=%d&long=%d" % (short, long_))
        wait_until("the page with short spans to connect", lambda: page.evaluate_quietly(
            "location.search === '?short=%d&long=%d' && document.getElementById('connection')?.textContent"
            % (short, long_)) == "live")

        def http_json(path):
            with urllib.request.urlopen(base + path, timeout=5) as response:
                return json.load(response)

        def history(agent_id):
            return [(e["state"], e["at-usec"]) for e in http_json("/v1/agents/%s/history" % agent_id)["history"]]

        strip_row = "document.querySelector('tr[data-agent-id=\"strip-agent\"]')"
        dbus_call("Register", "strip-agent",
                  "{'stale-after-usec': <uint64 1000000>, 'task-id': <'strips'>, "
                  "'metadata': <{'owner': <'ci'>, 'shard': <int32 7>}>}")
        wait_until("strip-agent's row, healthy", lambda: page.evaluate(strip_row + "?.dataset.state") == "healthy")
        wait_until("strip-agent's row to turn stale", lambda: page.evaluate(strip_row + "?.dataset.state") == "stale")
        stale_colour = css_rgb(page.evaluate("getComputedStyle(%s.querySelector('td.state')).color" % strip_row))
        # let the stale episode last a second (by the daemon's clock), so
        # that it is about 10 pixels wide on the 10 s strip
        stale_at = wait_until("the stale entry in /v1/agents/strip-agent/history",
                              lambda: dict(history("strip-agent")).get("stale"))
        wait_until("a second of staleness", lambda: time.time() * 1e6 - stale_at >= 1e6)
        # idle: healthy, and no deadline, so it stays healthy from now on
        dbus_call("Beat", "strip-agent", "{'progress': <0.5>, 'status': <'idle'>}")
        wait_until("strip-agent's row to recover", lambda: page.evaluate(strip_row + "?.dataset.state") == "healthy")
        healthy_colour = css_rgb(page.evaluate("getComputedStyle(%s.querySelector('td.state')).color" % strip_row))
        entries = wait_until("three entries in the agent's history",
                             lambda: (lambda h: h if len(h) == 3 else None)(history("strip-agent")))
        assert [state for state, _ in entries] == ["healthy", "stale", "healthy"], entries
        everyone = http_json("/v1/history")["agents"]
        assert [e["state"] for e in everyone["strip-agent"]] == ["healthy", "stale", "healthy"], everyone
        recovered_at = entries[2][1]
        # until the strips show a second of health again (by the time they were drawn for)
        short_strip = strip_row + "?.querySelector('canvas.strip[data-span=\"short\"]')"
        wait_until("the strips to show a second of health again",
                   lambda: float(page.evaluate(short_strip + "?.dataset.nowUsec") or 0) - recovered_at >= 1e6)

        # The state colours, as the page gives its state cells; the strips
        # must use the same.
        root_colours = page.evaluate("""(() => { const s = getComputedStyle(document.documentElement);
            return ["--healthy", "--stale", "--bad", "--grey", "--line"].map(n => s.getPropertyValue(n)); })()""")
        assert css_rgb(root_colours[0]) == healthy_colour and css_rgb(root_colours[1]) == stale_colour, \
            (root_colours, healthy_colour, stale_colour)
        palette = {"healthy": healthy_colour, "stale": stale_colour, "bad": css_rgb(root_colours[2]),
                   "grey": css_rgb(root_colours[3]), "none": css_rgb(root_colours[4])}
        box_js = """(() => { const c = %s; if (!c) return null; c.scrollIntoView({block: "center"});
            const r = c.getBoundingClientRect();
            return [r.x, r.y, r.width, r.height, devicePixelRatio, Number(c.dataset.nowUsec)]; })()"""

        def capture(*canvases):
            """A screenshot's pixels and the boxes of @canvases in it, and the
            time they were drawn for (the same before and after the shot)."""
            for attempt in range(20):
                boxes = [page.evaluate(box_js % c) for c in canvases]
                assert all(boxes), boxes
                png = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
                if [page.evaluate(box_js % c) for c in canvases] == boxes:
                    return decode_png(png)[2], boxes
            raise AssertionError("the strips never stayed still for a screenshot")

        pixels, boxes = capture(*(strip_row + "?.querySelector('canvas.strip[data-span=\"%s\"]')" % which
                                  for which in ("short", "long")))
        runs = [strip_runs(pixels, box, palette) for box in boxes]
        print("# short strip %s: %s" % (boxes[0], runs[0]))
        print("# long strip %s: %s" % (boxes[1], runs[1]))
        # the upper strip: nothing before registration, then healthy, stale, healthy
        assert states_in(runs[0]) == ["none", "healthy", "stale", "healthy"], runs[0]
        # at the right place: the stale run starts where the stale entry falls
        x, _, w, _, dpr, drawn_for = boxes[0]
        px_per_usec = w * dpr / (short * 1e6)
        stale_start = sum(length for _, length in runs[0][:[n for n, _ in runs[0]].index("stale")])
        expected = (stale_at - (drawn_for - short * 1e6)) * px_per_usec
        assert abs(stale_start - expected) <= 3, (stale_start, expected)
        stale_length = [length for n, length in runs[0] if n == "stale"][0]
        assert abs(stale_length - (recovered_at - stale_at) * px_per_usec) <= 4, (stale_length, entries)
        # the lower strip: seconds in 10 minutes; still stale then healthy at its right end
        assert states_in(runs[1], 1)[-2:] == ["stale", "healthy"], runs[1]
        assert runs[1][0][0] == "none" and runs[1][0][1] > 0.9 * sum(length for _, length in runs[1]) - 8, runs[1]
        print("ok 9 the agent's history strips show healthy, stale, healthy from left to right")

        # The detail view: a click on the row.
        centre = page.evaluate("""(() => { const r = %s.querySelector("th").getBoundingClientRect();
            return [r.x + r.width / 2, r.y + r.height / 2]; })()""" % strip_row)
        for kind in ("mousePressed", "mouseReleased"):
            page.call("Input.dispatchMouseEvent", type=kind, x=centre[0], y=centre[1], button="left", clickCount=1)
        wait_until("the address #agent=strip-agent", lambda: page.evaluate("location.hash") == "#agent=strip-agent")
        events_js = """[...document.querySelectorAll("#detail-events tbody tr")].map(
            r => [r.dataset.state, r.children[0].textContent, r.children[1].textContent, r.children[2].textContent])"""
        shown = wait_until("the detail view's states",
                           lambda: (lambda e: e if e and len(e) == 3 else None)(page.evaluate(events_js)))
        print("# %s" % json.dumps(shown))
        assert not page.evaluate("document.getElementById('detail').hidden")
        assert [e[0] for e in shown] == ["healthy", "stale", "healthy"], shown     # newest first
        assert [e[2] for e in shown] == ["healthy", "stale", "healthy"], shown
        assert all(len(e[1]) >= 8 and e[1][2] == ":" for e in shown), shown           # HH:MM:SS
        assert shown[0][3].endswith("(now)") and shown[1][3] in ("1s", "2s"), shown
        facts = page.evaluate("""Object.fromEntries([...document.querySelectorAll("#detail-agent dt, #detail-metadata dt")]
            .map(dt => [dt.textContent, dt.nextElementSibling.textContent]))""")
        print("# %s" % json.dumps(facts))
        agent = http_json("/v1/agents/strip-agent")
        assert facts["Progress"] == "0.5" and facts["Task"] == "strips" and facts["Status"] == "idle", facts
        assert facts["Beats"] == str(agent["beats"]), (facts, agent)
        assert facts["Stale episodes"] == "1" and facts["Timeouts"] == "0", facts
        assert facts["owner"] == "ci" and facts["shard"] == "7", facts
        assert page.evaluate("document.getElementById('detail-unit')") is None
        assert page.evaluate("document.getElementById('detail-state').textContent").startswith("healthy for ")
        # its strips, wider: the same colours in the same order
        detail_strip = "document.querySelector('#detail canvas.strip[data-span=\"short\"]')"
        wait_until("the detail view's strips to be drawn", lambda: page.evaluate(detail_strip + "?.dataset.nowUsec"))
        pixels, (detail_box,) = capture(detail_strip)
        detail_runs = strip_runs(pixels, detail_box, palette)
        print("# detail strip %s: %s" % (detail_box, detail_runs))
        assert states_in(detail_runs) == ["none", "healthy", "stale", "healthy"], detail_runs
        print("ok 10 the detail view shows the agent's states, times, durations, data and counters")

        # A unit-backed agent's unit section (the dictionary of the contract).
        unit_text = page.evaluate("""(() => {
            detailAgent = Object.assign({}, detailAgent, { unit: { "name": "foo.service", "active-state": "active",
              "sub-state": "running", "main-pid": 4242, "active-since-usec": serverNow() - 90e6, "cpu-usec": 1500000,
              "memory-bytes": 3 * 1048576, "result": "success", "exit-status": 3, "n-restarts": 2,
              "heartbeatd-restarts": 1 } });
            renderDetail();
            return Object.fromEntries([...document.querySelectorAll("#detail-unit dt")]
              .map(dt => [dt.textContent, dt.nextElementSibling.textContent])); })()""")
        print("# %s" % json.dumps(unit_text))
        assert unit_text["Unit"] == "foo.service" and unit_text["Active"] == "active (running)", unit_text
        assert unit_text["Main PID"] == "4242" and unit_text["CPU"] == "1.50s", unit_text
        assert unit_text["Memory"] == "3.0 MiB" and unit_text["Restarts"] == "3 (1 by heartbeatd)", unit_text
        assert unit_text["Exit status"] == "3" and unit_text["Result"] == "success", unit_text
        assert "(1m30s ago)" in unit_text["Active since"], unit_text
        page.call("Input.dispatchKeyEvent", type="keyDown", key="Escape", code="Escape", windowsVirtualKeyCode=27)
        wait_until("Escape to close the detail view",
                   lambda: page.evaluate("document.getElementById('detail').hidden && location.hash === ''"))
        print("ok 11 the detail view shows a unit's state; Escape closes it")

        # A job's runs (here through the ping URLs): a bar on its strips,
        # and the detail view's Runs table, newest first, with the exit status.
        def ping(path, body=None):
            request = urllib.request.Request(base + "/ping/" + path, data=body, method="POST" if body else "GET")
            with urllib.request.urlopen(request, timeout=WAIT) as response:
                assert response.status == 200, response.status
        job = urllib.request.Request(base + "/heartbeat", method="POST", data=json.dumps({"run_id": "dash-job"}).encode(),
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(job, timeout=WAIT).close()
        ping("dash-job/start")
        ping("dash-job/4", b"disk full")
        job_row = "document.querySelector('tr[data-agent-id=\"dash-job\"]')"
        wait_until("the job's row in error", lambda: page.evaluate(job_row + "?.dataset.state") == "error")
        wait_until("the job's run on its strip",
                   lambda: page.evaluate(job_row + "?.querySelector('canvas.strip').dataset.runs") == "1")
        page.evaluate("location.hash = '#agent=dash-job'")
        runs_js = """[...document.querySelectorAll("#detail-runs tbody tr")].map(
            r => [r.dataset.result, ...[...r.children].map(c => c.textContent)])"""
        shown = wait_until("the detail view's runs", lambda: page.evaluate(runs_js) or None)
        print("# %s" % json.dumps(shown))
        # due, started, took, result, exit status
        assert len(shown) == 1 and shown[0][0] == "failure" and shown[0][4] == "failure" and shown[0][5] == "4", shown
        # the reason next to the state, and the last run's exit status and output in the detail view
        # (the run's output may come in an event after the state's)
        reason_js = job_row + ".querySelector('td.reason').textContent"
        try:
            reason = wait_until("the job's reason", lambda: (lambda r: r if r == "exit status 4: disk full" else None)(
                page.evaluate(reason_js)))
        except AssertionError:
            raise AssertionError("the job's reason: %s" % page.evaluate(reason_js))
        last = wait_until("the last run in the detail view", lambda: page.evaluate(
            """document.getElementById('detail-last-run') && [document.getElementById('detail-last-run').textContent,
               document.getElementById('detail-output')?.textContent, document.getElementById('detail-reason')?.textContent]"""))
        assert "failure" in last[0] and "Exit status4" in last[0] and last[1] == "disk full" and last[2] == reason, last
        # the strips are drawn on the next animation frame
        wait_until("the run on the detail view's strip",
                   lambda: page.evaluate("document.querySelector('#detail canvas.strip')?.dataset.runs") == "1")
        page.evaluate("location.hash = ''")
        print("ok 12 a job's failed run shows on its strip and in its detail view with its exit status")

        # ---- On call. 200 agents, of which two are unhealthy and sort last
        # by id; registered over one kept-alive connection.
        api = Http(http_port)
        for agent_id in page.evaluate("[...document.querySelectorAll('#agents tr')].map(r => r.dataset.agentId)"):
            status, answer = api.request("DELETE", "/v1/agents/" + urllib.parse.quote(agent_id, safe=""))
            if status != 204:
                dbus_call("Unregister", agent_id)
        tags = api.request("PUT", "/v1/agents/agent-000", {"task-id": "batch 0", "tags": ["db", "eu-1"]})[0] in (200, 201)
        if not tags:
            print("# this heartbeatd takes no tags in PUT /v1/agents/ID: the tag filter is not checked")
        for i in range(198):
            body = {"task-id": "batch %d" % (i % 7)}
            if tags and i % 10 == 0:
                body["tags"] = ["db"]
            status, answer = api.request("PUT", "/v1/agents/agent-%03d" % i, body)
            assert status in (200, 201), (status, answer)
        for agent_id, body in (("zz-error", {"task-id": "nightly backup", **({"tags": ["db"]} if tags else {})}),
                               ("zz-stale", {"stale-after-usec": 1000000})):
            status, answer = api.request("PUT", "/v1/agents/" + agent_id, body)
            assert status in (200, 201), (status, answer)
        for agent_id, body in (("zz-error", {"status": "error", "metadata": {"reason": "disk full on /var"}}),
                               ("zz-stale", {})):
            status, answer = api.request("POST", "/v1/agents/%s/beat" % agent_id, body)
            assert status == 200, (status, answer)
        page.call("Emulation.setDeviceMetricsOverride", width=1400, height=900, deviceScaleFactor=1, mobile=False)
        page.call("Page.navigate", url=base + "/")
        wait_until("the page to connect", lambda: page.evaluate_quietly(
            "location.search === '' && document.getElementById('connection')?.textContent") == "live")
        states_js = "Object.fromEntries([...document.querySelectorAll('#agents tr')].map(r => [r.dataset.agentId, r.dataset.state]))"

        def two_unhealthy():
            states = page.evaluate_quietly(states_js) or {}
            return (len(states) == 200 and states.get("zz-error") == "error" and states.get("zz-stale") == "stale"
                    and sum(s == "healthy" for s in states.values()) == 198)
        wait_until("200 rows, zz-error in error and zz-stale stale", two_unhealthy)
        # (the order and the title follow on the next frame)
        order_js = "[...document.querySelectorAll('#agents tr')].slice(0, 3).map(r => r.dataset.agentId).concat(document.title)"
        try:
            wait_until("the problems first", lambda: page.evaluate(order_js) == ["zz-error", "zz-stale", "agent-000", "(2) heartbeatd"])
        except AssertionError:
            raise AssertionError("first rows and title: %s" % page.evaluate(order_js))
        screen = page.evaluate("""(() => { const box = id => { const r = document.querySelector(`tr[data-agent-id="${id}"]`)
                .getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
            return { scrollY, width: innerWidth, height: innerHeight, error: box("zz-error"), stale: box("zz-stale"),
                     first: [...document.querySelectorAll("#agents tr")].slice(0, 3).map(r => r.dataset.agentId),
                     title: document.title }; })()""")
        print("# %s" % json.dumps(screen))
        assert screen["scrollY"] == 0 and screen["width"] == 1400 and screen["height"] == 900, screen
        for which in ("error", "stale"):
            left, top, right, bottom = screen[which]
            assert 0 <= left < right <= 1400 and 0 <= top < bottom <= 900, (which, screen)
        assert screen["first"] == ["zz-error", "zz-stale", "agent-000"], screen   # severity, then id
        assert screen["title"] == "(2) heartbeatd", screen
        # only problems stand out: healthy rows are not tinted, problem rows are
        tints = page.evaluate("""Object.fromEntries(["zz-error", "zz-stale", "agent-000"].map(id => [id,
            getComputedStyle(document.querySelector(`tr[data-agent-id="${id}"]`)).backgroundColor]))""")
        assert tints["agent-000"] == "rgba(0, 0, 0, 0)" and "rgba(0, 0, 0, 0)" not in (tints["zz-error"], tints["zz-stale"]), tints
        # the column heads stay in view when the rows scroll
        heads = page.evaluate("""(() => { scrollTo(0, 3000); const r = document.querySelector("thead th").getBoundingClientRect();
            const y = scrollY; scrollTo(0, 0); return [y, r.top, r.bottom]; })()""")
        assert heads[0] > 1000 and abs(heads[1]) <= 1 and heads[2] > 10, heads
        print("ok 13 200 agents: the two unhealthy ones (last by id) are the first rows, in the first 1400x900 screen; "
              "the title says (2)")

        error_row = "document.querySelector('tr[data-agent-id=\"zz-error\"]')"
        reason = page.evaluate(error_row + ".querySelector('td.reason').textContent")
        assert reason == "disk full on /var", reason
        print("ok 14 the error agent's reason is in its row: %s" % reason)

        # Honest states: a gone agent says since when and why, with no
        # running clock, its pid as exited
        sleeper = subprocess.Popen(["sleep", "600"])
        children.append(sleeper)
        dbus_call("Register", "zz-gone", "{'pid': <uint32 %d>}" % sleeper.pid)
        dbus_call("Beat", "zz-gone", "{}")
        gone_row = "document.querySelector('tr[data-agent-id=\"zz-gone\"]')"
        wait_until("zz-gone's row", lambda: page.evaluate(gone_row + "?.dataset.state") == "healthy")
        sleeper.kill()
        sleeper.wait()
        wait_until("zz-gone gone", lambda: page.evaluate(gone_row + "?.dataset.state") == "gone")
        gone = page.evaluate("""(r => Object.fromEntries([...r.children].slice(1, 8).map(c => [c.className, c.textContent])))(%s)""" % gone_row)
        print("# %s" % json.dumps(gone))
        assert re.fullmatch(r"gone since \d\d:\d\d:\d\d", gone["state"]), gone
        assert gone["reason"] == "pid %d exited" % sleeper.pid, gone
        assert gone["mid num pid"] == "%d (exited)" % sleeper.pid and gone["narrow num running"] == "-", gone
        assert re.fullmatch(r"at \d\d:\d\d:\d\d", gone["num ago"]), gone
        wait_until("zz-gone first (severity 5)",
                   lambda: page.evaluate("document.querySelectorAll('#agents tr')[0].dataset.agentId") == "zz-gone")
        dbus_call("Unregister", "zz-gone")
        wait_until("zz-gone's row to go", lambda: page.evaluate(gone_row + " === null"))
        print("ok 15 a gone agent: \"%s\" (%s), no running clock, its last beat at a time, first of the problems"
              % (gone["state"], gone["reason"]))

        visible_js = "[...document.querySelectorAll('#agents tr')].filter(r => !r.hidden).map(r => r.dataset.agentId)"

        def shown_after(what, action, want):
            page.evaluate(action)
            try:
                return wait_until(what, lambda: page.evaluate(visible_js) == want)
            except AssertionError:
                raise AssertionError("%s: shown %s, want %s" % (what, page.evaluate(visible_js), want))
        set_js = "(e => { e.%s = %s; e.dispatchEvent(new Event('input', { bubbles: true })); })(document.getElementById('%s'))"
        page.evaluate("document.getElementById('search').focus()")
        page.call("Input.insertText", text="disk full")     # typed, as a user would
        wait_until("the search to find the reason", lambda: page.evaluate(visible_js) == ["zz-error"])
        shown_after("the search for an id", set_js % ("value", "'agent-19'", "search"), ["agent-%03d" % i for i in range(190, 198)])
        shown_after("the search for a task", set_js % ("value", "'NIGHTLY'", "search"), ["zz-error"])
        shown_after("no search", set_js % ("value", "''", "search"), page.evaluate(
            "[...document.querySelectorAll('#agents tr')].map(r => r.dataset.agentId)"))
        page.evaluate("document.getElementById('problems-only').click()")
        wait_until("problems only", lambda: page.evaluate(visible_js) == ["zz-error", "zz-stale"])
        counted = page.evaluate("document.getElementById('shown').textContent")
        assert counted == "showing 2 of 200", counted
        page.evaluate("document.getElementById('problems-only').click()")
        shown_after("the state filter", set_js % ("value", "'stale'", "state-filter"), ["zz-stale"])
        shown_after("no state filter", set_js % ("value", "''", "state-filter"), page.evaluate(
            "[...document.querySelectorAll('#agents tr')].map(r => r.dataset.agentId)"))
        detail = ""
        if tags:
            shown_after("the tag filter", set_js % ("value", "'db'", "tag-filter"),
                        ["zz-error"] + ["agent-%03d" % i for i in range(0, 198, 10)])
            page.evaluate(set_js % ("value", "''", "tag-filter"))
            detail = "; the tag filter"
        # a click on a column head sorts by it, again the other way
        page.evaluate("document.querySelector('thead th[data-sort=\"id\"] button').click()")
        wait_until("rows by id", lambda: page.evaluate(visible_js)[:1] == ["agent-000"] and page.evaluate(visible_js)[-1] == "zz-stale")
        page.evaluate("document.querySelector('thead th[data-sort=\"id\"] button').click()")
        wait_until("rows by id, down", lambda: page.evaluate(visible_js)[:2] == ["zz-stale", "zz-error"])
        page.evaluate("document.querySelector('thead th[data-sort=\"state\"] button').click()")
        wait_until("problems first again", lambda: page.evaluate(visible_js)[:3] == ["zz-error", "zz-stale", "agent-000"])
        print("ok 16 the search (reason, id, task), problems only, the state filter%s and the sortable heads" % detail)

        # Paused (a daemon with POST /v1/agents/ID/pause): its own symbol,
        # word and colour, the pause's reason, after the problems and before
        # the healthy; the detail view says since when, by whom and why, with
        # the agent's tags and uptime
        status, answer = api.request("POST", "/v1/agents/agent-010/pause", {"reason": "disk swap"})
        if status != 200:
            print("ok 17 # SKIP this heartbeatd pauses no agent (POST /v1/agents/ID/pause: %d)" % status)
        else:
            paused_row = "document.querySelector('tr[data-agent-id=\"agent-010\"]')"
            wait_until("agent-010 paused", lambda: page.evaluate(paused_row + ".dataset.state") == "paused")
            shown = page.evaluate("""(r => [r.querySelector("td.state").textContent, r.querySelector("td.reason").textContent,
                getComputedStyle(r.querySelector("td.state"), "::before").content, getComputedStyle(r.querySelector("td.state")).color,
                document.title, r.querySelector("td.running").textContent])(%s)""" % paused_row)
            colours = page.evaluate("""(s => ["--paused", "--healthy", "--bad", "--stale", "--grey"].map(v => s.getPropertyValue(v)))(
                getComputedStyle(document.documentElement))""")
            assert shown[:3] == ["paused", "disk swap", '"‖"'] and shown[4] == "(2) heartbeatd", shown
            assert shown[5] == "-", shown    # nothing of a paused agent runs: no running clock
            assert css_rgb(shown[3]) == css_rgb(colours[0]) and len({css_rgb(c) for c in colours}) == 5, (shown, colours)
            wait_until("the paused agent after the problems", lambda: page.evaluate(visible_js)[:4]
                       == ["zz-error", "zz-stale", "agent-010", "agent-000"])
            page.evaluate("location.hash = 'agent=agent-010'")
            facts_js = """Object.fromEntries([...document.querySelectorAll("#detail-agent dt")]
                .map(dt => [dt.textContent, dt.nextElementSibling.textContent]))"""
            facts = wait_until("agent-010's detail view", lambda: (lambda f: f if f.get("Paused", "").endswith(": disk swap")
                                                                   else None)(page.evaluate(facts_js)))
            print("# %s" % json.dumps(facts))
            assert facts["Paused"].startswith("since ") and " by uid " in facts["Paused"], facts
            assert facts.get("Tags") == ("db" if tags else "none"), facts
            assert facts.get("Uptime (24 h)") == "100 %", facts
            page.evaluate("location.hash = ''")
            status, answer = api.request("POST", "/v1/agents/agent-010/resume", {})
            assert status == 200, (status, answer)
            wait_until("agent-010 resumed", lambda: page.evaluate(paused_row + ".dataset.state") == "healthy")
            wait_until("it back in its place", lambda: page.evaluate(visible_js)[:4]
                       == ["zz-error", "zz-stale", "agent-000", "agent-001"])
            print("ok 17 a paused agent: \"‖ paused\" in its own colour with its reason, after the problems; "
                  "its detail view says since when, by whom and why, its tags and uptime; resumed, healthy")

        # Contrast: every visible text, in both schemes, with the error
        # agent's detail view open
        page.evaluate("location.hash = 'agent=zz-error'")
        wait_until("zz-error's detail view", lambda: page.evaluate("document.getElementById('detail-reason')?.textContent")
                   == "disk full on /var")
        # a row in every state besides (the page's own put(), as an event
        # would bring them; removed after)
        page.evaluate("""STATES.forEach(s => put({ id: "~contrast-" + s, state: s, status: "running", "task-id": "a task",
            beats: 1, "running-usec": 0, "idle-usec": 0, metadata: {}, reason: "a reason",
            "last-activity-at-usec": serverNow(), "state-since-usec": serverNow() }))""")
        wait_until("a row in every state", lambda: page.evaluate(
            "[...document.querySelectorAll('#agents tr')].filter(r => r.dataset.agentId.startsWith('~contrast-')).length") == 7)
        figures = []
        for scheme in ("light", "dark"):
            figures.append(contrast(page, scheme))
        page.call("Emulation.setEmulatedMedia", features=[])
        page.evaluate("STATES.forEach(s => remove('~contrast-' + s))")
        page.evaluate("location.hash = ''")
        print("ok 18 WCAG AA: every visible text is at least 4.5:1 on its background, rows in all seven states (%s)"
              % "; ".join(figures))

        # No width scrolls sideways (the detail view of the error agent open)
        page.evaluate("location.hash = 'agent=zz-error'")
        for width in (1400, 1100, 800, 600, 400):
            page.call("Emulation.setDeviceMetricsOverride", width=width, height=800, deviceScaleFactor=1, mobile=False)
            fits = wait_until("the layout at %d px" % width, lambda: page.evaluate(
                "innerWidth === %d && [document.documentElement.scrollWidth, document.documentElement.clientWidth]" % width))
            assert fits[0] <= fits[1], "at %d px the page is %d px wide, its view %d" % (width, fits[0], fits[1])
        page.evaluate("location.hash = ''")
        # 400 px wide: every id in full, the history on screen
        page.call("Emulation.setDeviceMetricsOverride", width=400, height=800, deviceScaleFactor=1, mobile=False)
        narrow = wait_until("the narrow layout", lambda: page.evaluate("""(() => {
            if (innerWidth !== 400) return null;
            const ids = [...document.querySelectorAll("#agents tr:not([hidden]) > th")];
            const cut = ids.filter(th => [th, ...th.querySelectorAll("*")].some(e => e.scrollWidth > e.clientWidth)
                                         || th.textContent !== th.parentElement.dataset.agentId).map(th => th.textContent);
            const strips = [...document.querySelectorAll("#agents tr")].slice(0, 5).map(r => {
                const c = r.querySelector("canvas.strip").getBoundingClientRect(); return [c.left, c.right, c.width]; });
            return { ids: ids.length, cut, strips, page: document.documentElement.scrollWidth,
                     viewport: document.documentElement.clientWidth }; })()"""))
        print("# %s" % json.dumps(narrow))
        assert narrow["ids"] == 200 and narrow["cut"] == [], narrow
        assert narrow["page"] <= narrow["viewport"] <= 400, narrow    # no horizontal scrolling
        assert all(0 <= left and right <= 400 and width >= 200 for left, right, width in narrow["strips"]), narrow
        # a filter hides the cards too
        page.evaluate("document.getElementById('problems-only').click()")
        shown_cards = "[...document.querySelectorAll('#agents tr')].filter(r => r.getClientRects().length).map(r => r.dataset.agentId)"
        wait_until("problems only, as cards", lambda: page.evaluate(shown_cards) == ["zz-error", "zz-stale"])
        page.evaluate("document.getElementById('problems-only').click()")
        wait_until("every card again", lambda: len(page.evaluate(shown_cards)) == 200)
        # and the longest id there is, wrapped, not cut
        long_id = "build-" + "a" * 116 + "xyz-12"
        api.request("PUT", "/v1/agents/" + long_id, {})
        long_row = "document.querySelector('tr[data-agent-id=\"%s\"]')" % long_id
        wait_until("the long id's row", lambda: page.evaluate(long_row + "?.dataset.state") == "healthy")
        long_fit = page.evaluate("""(() => { const th = %s.querySelector("th");
            return [th.textContent === %s, th.scrollWidth, th.clientWidth, th.getBoundingClientRect().right,
                    [...th.querySelectorAll("*")].every(e => e.scrollWidth <= e.clientWidth)]; })()""" % (long_row, json.dumps(long_id)))
        assert long_fit[0] and long_fit[1] <= long_fit[2] and long_fit[3] <= 400 and long_fit[4], long_fit
        status, answer = api.request("DELETE", "/v1/agents/" + long_id)
        assert status == 204, (status, answer)
        wait_until("the long id's row to go", lambda: page.evaluate(long_row + " === null"))
        page.call("Emulation.setDeviceMetricsOverride", width=1400, height=900, deviceScaleFactor=1, mobile=False)
        print("ok 19 no width from 1400 to 400 px scrolls sideways; at 400 px every id shows in full (a 128-character one wraps) and the strips are on screen")

        # heartbeatd killed: within 10 s the page says so and shows no agent
        # healthy; its clocks stop
        stale_seen = http_json("/v1/agents/zz-stale")["last-activity-at-usec"]
        api.close()
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=WAIT)
        killed = time.monotonic()
        dead_js = """(() => { const banner = document.getElementById("banner"), rows = [...document.querySelectorAll("#agents tr")];
            return { banner: banner.hidden ? null : banner.textContent, title: document.title, rows: rows.length,
                     states: [...new Set(rows.map(r => r.dataset.state))],
                     healthyText: rows.filter(r => /healthy/.test(r.querySelector("td.state").textContent.replace(/\\(was healthy\\)/, ""))).length,
                     colours: [...new Set(rows.map(r => getComputedStyle(r.querySelector("td.state")).color))],
                     since: feed.since, ago: document.querySelector('tr[data-agent-id="zz-stale"] td.ago').textContent }; })()"""
        dead = wait_until("the page to say heartbeatd is unreachable", lambda: (lambda d: d if d["banner"] else None)(
            page.evaluate(dead_js)), timeout=10)
        took = time.monotonic() - killed
        print("# %.1f s after SIGKILL: %s" % (took, json.dumps(dead)))
        assert dead["banner"].startswith("heartbeatd is unreachable (since ") and dead["rows"] == 200, dead
        assert dead["states"] == ["unknown"] and dead["healthyText"] == 0, dead
        healthy_css = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--healthy')")
        assert css_rgb(healthy_css) not in [css_rgb(c) for c in dead["colours"]], (healthy_css, dead)
        assert dead["title"] == "(?) heartbeatd unreachable", dead
        # the clock stopped where the page lost heartbeatd (it would be a few seconds on)
        ago = dead["ago"]
        assert ago.endswith("s ago") and int(ago[:-5]) <= (dead["since"] - stale_seen) / 1e6 + 1, (ago, dead, stale_seen)
        # the strips: not monitored from then on
        wait_until("the strips to show the gap", lambda: page.evaluate(
            error_row + ".querySelector('canvas.strip').dataset.drawn").endswith("error unmonitored"))
        # the detail view says so too: unknown, the last known state, the gap as its newest entry
        page.evaluate("location.hash = 'agent=zz-error'")
        said = wait_until("the detail view, unreachable", lambda: page.evaluate("""(() => {
            const state = document.getElementById("detail-state"), first = document.querySelector("#detail-events tbody tr");
            return state && first && [state.dataset.state, state.textContent, first.children[1].textContent]; })()"""))
        assert said == ["unknown", "unknown: heartbeatd is unreachable (last known: error)", "not monitored"], said
        figures = [contrast(page, scheme) for scheme in ("light", "dark")]
        page.call("Emulation.setEmulatedMedia", features=[])
        page.evaluate("location.hash = ''")
        print("ok 20 heartbeatd killed: after %.1f s the banner says \"%s\", no agent shows healthy, its clocks "
              "stop, its strips and detail view show the gap; contrast %s" % (took, dead["banner"], "; ".join(figures)))

        daemon = start_daemon()
        api = Http(http_port)
        back = wait_until("the page to recover by itself", lambda: (lambda d: d if d["banner"] is None and d["states"]
                          and "unknown" not in d["states"] else None)(page.evaluate(dead_js)))
        print("# %s" % json.dumps(back))
        wait_until("the rows live again", lambda: two_unhealthy() and page.evaluate("document.title") == "(2) heartbeatd")
        drawn_js = error_row + "?.querySelector('canvas.strip').dataset.drawn"
        try:
            drawn = wait_until("the gap in zz-error's strip", lambda: (lambda d: d if d and "unmonitored error" in d else None)(
                page.evaluate(drawn_js)))
        except AssertionError:
            raise AssertionError("zz-error's strip: %s" % page.evaluate(drawn_js))
        status, _ = api.request("POST", "/v1/agents/zz-stale/beat", {})
        assert status == 200, status
        wait_until("a beat after the restart to show", lambda: page.evaluate(
            "document.querySelector('tr[data-agent-id=\"zz-stale\"]').dataset.state") == "healthy")
        print("ok 21 heartbeatd back on its port and state: the banner goes, the rows are live again "
              "(the gap stays not monitored in the strips: %s)" % drawn)

        # heartbeatd stopped (SIGSTOP): its connections stay open and the
        # stream just falls silent (its keep-alive comments do not reach
        # the page's code); the page asks GET /health, which does not
        # answer, and says so; SIGCONT, and it recovers by itself
        api.close()
        daemon.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            silent = wait_until("the page to notice the silence", lambda: (lambda d: d if d["banner"] else None)(
                page.evaluate(dead_js)), timeout=20)
        finally:
            took = time.monotonic() - stopped
            daemon.send_signal(signal.SIGCONT)
        print("# %.1f s after SIGSTOP: %s" % (took, json.dumps(silent)))
        assert silent["states"] == ["unknown"] and silent["healthyText"] == 0, silent
        assert silent["title"] == "(?) heartbeatd unreachable", silent
        wait_until("the page to recover after SIGCONT", lambda: (lambda d: d["banner"] is None and d["states"]
                   and "unknown" not in d["states"])(page.evaluate(dead_js)))
        wait_until("the rows live again", lambda: two_unhealthy() and page.evaluate("document.title") == "(2) heartbeatd")
        print("ok 22 heartbeatd stopped (SIGSTOP): the silent stream is noticed after %.1f s (GET /health unanswered), "
              "and after SIGCONT the page recovers by itself" % took)

        # More agents than one page of /v1/agents (500): the page follows
        # the Link header to the last page and shows every row.
        rows = "document.querySelectorAll('#agents tr').length"
        want = page.evaluate(rows) + 819
        for i in range(819):   # (HTTP may create 1024: [limits] agents-per-uid; 200 are there)
            status, answer = api.request("POST", "/heartbeat", {"run_id": "page-%04d" % i})
            assert status == 200, (status, answer)
        page.call("Page.reload")
        try:
            wait_until("the rows of 819 more agents",
                       lambda: page.evaluate_quietly(rows) == want and
                       page.evaluate_quietly("document.getElementById('summary').textContent").startswith("%d agents" % want))
        finally:
            print("# %s rows (want %d); %s" % (page.evaluate_quietly(rows), want,
                                               page.evaluate_quietly("document.getElementById('summary').textContent")))
        pages = page.evaluate("performance.getEntriesByType('resource').filter(e => e.name.includes('/v1/agents?')).length")
        assert pages >= 2, pages
        # and the pages of /v1/history (500 agents each): the last agent's
        # history is the daemon's, times included (without its page, the
        # page would start one of its own, at the time it saw the agent)
        history_pages = page.evaluate(
            "performance.getEntriesByType('resource').filter(e => e.name.includes('/v1/history?after=')).length")
        assert history_pages >= 2, history_pages
        wait_until("page-0818's history as the daemon has it", lambda: json.loads(page.evaluate_quietly(
            "JSON.stringify((histories.get('page-0818') || []).map(e => [e.s, e.t]))") or "null")
            == [[state, at] for state, at in history("page-0818")])
        print("ok 23 %d agents, in pages of /v1/agents (%d requests after the first) and of /v1/history (%d): "
              "every row shows, with its history" % (want, pages, history_pages))

        # The strips without hue: each state at its own height (paused the
        # lowest, then healthy, then stale and no-heartbeat, the failures
        # full), and the daemon's `unmonitored` entries hatched in two
        # colours, as drawStrip() draws a history with them all.
        bars = page.evaluate("""(() => {
            const canvas = document.createElement("canvas"), states = ["paused", "healthy", "no-heartbeat", "stale",
                "error", "timed-out", "gone", "unmonitored"];
            canvas.style.cssText = "width: 320px; height: 20px; position: absolute; top: 0; left: 0";
            document.body.append(canvas);
            const now = serverNow(), span = 80e6;
            drawStrip(canvas, states.map((s, i) => ({ t: now - span + i * 10e6, s })), span, now);
            const g = canvas.getContext("2d"), w = canvas.width, h = canvas.height, out = {};
            const at = (x, y) => [...g.getImageData(x, y, 1, 1).data].join(",");
            states.forEach((s, i) => {
                const x = Math.round((i + .5) * w / states.length);
                let tall = 0;      // the bar's height: up from the bottom, to the first clear pixel of its widest column
                for (let dx = -8; dx <= 8; dx++) {
                    let t = 0;
                    while (t < h && g.getImageData(x + dx, h - 1 - t, 1, 1).data[3] > 0) t++;
                    tall = Math.max(tall, t);
                }
                const row = new Set(), top = new Set();
                let holes = 0;
                for (let dx = -8; dx <= 8; dx++) {
                    row.add(at(x + dx, Math.floor(h * .8)));
                    const p = at(x + dx, h - tall + 1);
                    top.add(p);
                    if (p.endsWith(",0")) holes++;
                }
                out[s] = { height: tall / h, colours: row.size, holes: Math.round(holes / 17 * 4), colour: at(x, h - 1) };
            });
            out.drawn = canvas.dataset.drawn;
            canvas.remove();
            return out; })()""")
        print("# %s" % json.dumps(bars))
        heights = [bars[s]["height"] for s in ("paused", "healthy", "stale", "error")]
        assert all(bars[s]["colours"] == 1 for s in bars if s not in ("drawn", "unmonitored")), bars
        assert heights == sorted(set(heights)) and heights[-1] == 1, heights
        assert bars["no-heartbeat"]["height"] == bars["stale"]["height"], bars
        assert bars["timed-out"]["height"] == bars["gone"]["height"] == 1, bars
        assert bars["unmonitored"]["height"] == 1 and bars["unmonitored"]["colours"] == 2, bars
        hatch = {tuple(css_rgb(page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('%s')" % v)))
                 for v in ("--hatch-a", "--hatch-b")}
        state_colours = {tuple(int(v) for v in bars[s]["colour"].split(",")[:3]) for s in bars if s not in ("drawn", "unmonitored")}
        assert not hatch & state_colours, (hatch, state_colours)
        assert bars["drawn"] == "paused healthy no-heartbeat stale error timed-out gone unmonitored", bars
        # and with no hue at all: height, the comb of its bar's upper part, and one or two colours (hatched)
        shapes = {s: (bars[s]["height"], bars[s]["holes"], bars[s]["colours"]) for s in bars if s != "drawn"}
        assert len(set(shapes.values())) == len(shapes), shapes
        print("ok 24 the strips tell the states apart without hue (heights %s; no-heartbeat, timed-out and gone combed) "
              "and hatch the daemon's unmonitored entries"
              % " < ".join("%s %d%%" % (s, bars[s]["height"] * 100) for s in ("paused", "healthy", "stale", "error")))

        readme = os.environ.get("HB_DASHBOARD_README_PNG")
        if readme:
            readme_screenshot(page, base, dbus_call, api, readme, children)
        print("1..24")
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
    sys.exit(check_running(sys.argv[1:]) if len(sys.argv) > 1 and sys.argv[1].startswith("--") else main())
