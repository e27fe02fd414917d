#!/usr/bin/python3
# tests/fleet/run-fleet-test.py: the fleet test (issues 14 and 23), prints TAP.
#
# Three test hosts serving HTTPS with scoped tokens, two real Prometheus
# replicas, a real Alertmanager cluster of two, and the alert contract of
# README "Monitoring many machines":
#
#   network   A bridge hbfl<PID>br in the root namespace with 10.204.S.1/24,
#             and per host a network namespace hb-fleet-<PID>-{a,b,c} joined
#             to it by a veth pair (hbfl<PID>{a,b,c} on the bridge, eth0
#             inside) with 10.204.S.1{1,2,3}/24. S is the first /24 of
#             10.204.0.0/16 that overlaps no address or route of this
#             machine (picked under a lock, so two runs do not collide).
#             The hosts' addresses exist only inside their namespaces; the
#             only address added to the root namespace is the bridge's, on
#             an interface the test creates and deletes, so Prometheus in
#             the root namespace reaches the hosts and the hosts reach
#             Alertmanager. No route to any other network is added. (A
#             bridge rather than three routed veth pairs: one subnet, the
#             hosts see each other as machines on one LAN do, and deleting
#             it and the namespaces removes every address and route.)
#   hosts     Each host: its own dbus-daemon (a private session bus,
#             unix:path= socket in its directory), and heartbeatd in the
#             namespace under its own UTS namespace with hostname fleet-X
#             (heartbeat_build_info's hostname= and the direct alerts'
#             hostname= label are g_get_host_name()), its own state dir,
#             NOTIFY_SOCKET (the test waits for READY=1), HTTPS only on
#             10.204.S.1N:8765 (tls-certificate= and tls-key= from
#             tests/tls/make-test-ca.sh, the certificate naming the three
#             addresses) with a tokens file of crypt(3) hashes (openssl
#             passwd -6): a read token (scope read, Prometheus's) and a
#             write token (read,write); and two alertmanager= actions: one
#             to both Alertmanagers of the cluster (alertmanager=URL1 URL2;
#             Prometheus also feeds them: the deduplication is checked
#             there) and one to Alertmanager "direct" (fed by heartbeatd
#             alone, so the direct path is checked on its own).
#   monitor   Two Prometheus replicas p1 and p2 (APIs on 127.0.0.1:free
#             ports) running the shipped data/prometheus/prometheus.yml
#             (its intervals, files, targets and replica name replaced):
#             the same but for external_labels replica=, which
#             alert_relabel_configs drops; scraping the
#             three hosts every 1 s over https (tls_config ca_file: the
#             test CA; authorization credentials_file: the read token; job
#             "heartbeat"), and the same hosts over plain http (job
#             plain-http, which must fail), evaluation interval 1 s,
#             --rules.alert.resend-delay=10m (see below) and a copy of
#             data/prometheus/heartbeat-rules.yml whose for: durations sed
#             rewrites to 1s. Both send to both Alertmanagers am1 and am2,
#             a cluster (--cluster.peer of each other on 127.0.0.1,
#             --cluster.peer-timeout=2s, gossip every 100 ms; the test
#             waits for both to list two peers and report "ready"), which
#             run the shipped data/prometheus/alertmanager.yml with its
#             webhook URL pointed at the test's receiver (a thread that
#             records every notification) and group_wait 1.5 s,
#             group_interval 4s; and to a fourth Alertmanager "prom-only"
#             (the Prometheus path on its own, for its checks and delays).
#             Each Alertmanager has its API on 127.0.0.1:free port; am1,
#             am2 and "direct" also on the same port of 10.204.S.1, where
#             heartbeatd in the namespaces reaches them (127.0.0.1 there
#             is the namespace's own). "direct" and "prom-only" have
#             resolve_timeout 5 s, so an alert that is posted without
#             endsAt and not re-sent expires during the test's 8 s hold.
#             Ports 9090, 9093 and 9094 are never used.
#
# Agents (hbctl and gdbus against each host's private bus, run inside the
# host's namespace): stale (beat once, 3 s), timed-out (4 s), gone (--pid
# of a sleep in the namespace, then killed), gone by bind-to-caller (a
# gdbus Register that exits), the same agent id stale on two hosts, and on
# fleet-b one stale and one healthy agent before its heartbeatd is
# stopped for a while and started again. Then p1 and am1 are stopped (by
# PID) and, with one of each left, a new agent goes stale and recovers
# and fleet-c's heartbeatd stops and starts again (HeartbeatHostDown, an
# alert only Prometheus raises). Tokens are tried from fleet-b's
# namespace against fleet-a (none, a wrong one, read for a write, write)
# and the refusals counted in fleet-a's /metrics. Everything is bounded
# polling (a poller thread reads Prometheus /api/v1/query and
# /api/v1/alerts and the Alertmanagers' /api/v2/alerts every 0.1 s and
# keeps every answer with its time); checks and delays are computed from
# that history and from the notifications received. The
# only waits are "until a condition, at most N s" and "observe for N s"
# (polling all the while), never a sleep to a fixed deadline.
#
# Teardown by PID: every process started is recorded with its start time
# in WORK/state.json, with the namespaces and links; teardown stops the
# recorded processes (heartbeatd first, SIGTERM, then SIGKILL), deletes the
# namespaces and links and removes WORK. It runs at exit (also after an
# exception and SIGTERM/SIGINT/SIGHUP) and, should the runner be SIGKILLed
# (meson does a moment after SIGTERM on a timeout), from a guard process
# in its own session that waits for the runner to die. Every child also
# gets PR_SET_PDEATHSIG=SIGKILL (setpriv --pdeathsig).
#
# Usage: run-fleet-test.py [HEARTBEATD HBCTL]; meson passes $HEARTBEATD,
# $HBCTL and $HB_SOURCE_ROOT. Needs root, ip netns, unshare, dbus-daemon,
# gdbus, openssl, prometheus and (prometheus-)alertmanager; prints
# "1..0 # SKIP why" without them. run-fleet-test.py --teardown WORK undoes a run by hand.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import datetime
import fcntl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import copy
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

SELF = os.path.abspath(__file__)
PY = "/usr/bin/python3"
STATES = ("healthy", "stale", "timed-out", "error", "gone", "no-heartbeat", "paused")
AGENT_ALERT_LABELS = {"alertname", "agent", "hostname", "severity"}
FORBIDDEN_PORTS = {9090, 9093, 9094}
HOLD = 8.0          # how long a firing alert is observed before recovery
FIRE_WAIT = 25.0    # bound: deadline -> alert everywhere
RESOLVE_WAIT = 30.0  # bound: recovery -> resolved everywhere
HOSTDOWN_WAIT = 30.0
HTTP_PORT = 8765
# The Alertmanager cluster: the second instance (position 1) waits
# PEER_TIMEOUT before it looks in the notification log for what the first
# sent (gossip on loopback takes milliseconds: a wide margin). Every sender
# posts each alert to both at once, so their groups flush at about the same
# times, and GROUP_INTERVAL is longer than PEER_TIMEOUT: the second never
# decides on a state older than the first's last notification (it would
# send a stale "firing" after the first's "resolved").
PEER_TIMEOUT = 2.0
GROUP_INTERVAL = 4.0
T_START = time.time()


if len(sys.argv) >= 2 and sys.argv[1] == "--request":
    # --request METHOD URL CAFILE TOKENFILE|- [BODY]: one HTTPS request from
    # wherever this runs (ip netns exec HOST), the server verified against
    # CAFILE; prints {"status", "www" (WWW-Authenticate), "body", "error"}
    method, url, cafile, tokfile = sys.argv[2:6]
    body = sys.argv[6].encode() if len(sys.argv) > 6 else None
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if tokfile != "-":
        with open(tokfile) as f:
            headers["Authorization"] = "Bearer " + f.read().strip()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=cafile)))
    res = {"status": None, "www": None, "body": "", "error": None}
    try:
        with opener.open(urllib.request.Request(url, data=body, headers=headers, method=method), timeout=10) as r:
            res["status"], res["body"] = r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        res["status"], res["www"] = e.code, e.headers.get("WWW-Authenticate")
        res["body"] = e.read(4096).decode(errors="replace")
    except Exception as e:
        res["error"] = f"{type(e).__name__}: {e}"
    print(json.dumps(res))
    sys.exit(0)


# ------------------------------------------------------------------ teardown

def proc_start(pid):
    """The start time of PID (field 22 of /proc/PID/stat), None if it is
    gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if rest[0] in ("Z", "X"):
        return None
    return rest[19]


def load_state(work):
    try:
        with open(os.path.join(work, "state.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def teardown(work):
    """Undoes what WORK/state.json lists; returns what could not be undone."""
    st = load_state(work)
    left = []
    procs = [(p, s, n) for p, s, n in st.get("pids", []) if s is not None and proc_start(p) == s]
    # heartbeatd first (it saves its state on SIGTERM), then the rest
    for group in ([x for x in procs if x[2].startswith("heartbeatd")],
                  [x for x in procs if not x[2].startswith("heartbeatd")]):
        for pid, start, name in group:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        end = time.time() + 3
        while time.time() < end:
            for pid, _, _ in group:
                reap(pid)
            if all(proc_start(p) != s for p, s, _ in group):
                break
            time.sleep(0.05)
        for pid, start, name in group:
            if proc_start(pid) == start:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    end = time.time() + 3
    while time.time() < end and any(proc_start(p) == s for p, s, _ in procs):
        for pid, _, _ in procs:
            reap(pid)
        time.sleep(0.05)
    left += [f"process {n} (pid {p})" for p, s, n in procs if proc_start(p) == s]
    for ns in st.get("netns", []):
        if os.path.exists(f"/run/netns/{ns}"):
            r = subprocess.run(["ip", "netns", "del", ns], capture_output=True, text=True)
            if r.returncode != 0:
                left.append(f"netns {ns}: {r.stderr.strip()}")
    for link in st.get("links", []):
        if os.path.exists(f"/sys/class/net/{link}"):
            r = subprocess.run(["ip", "link", "del", link], capture_output=True, text=True)
            if r.returncode != 0 and os.path.exists(f"/sys/class/net/{link}"):
                left.append(f"link {link}: {r.stderr.strip()}")
    if os.path.basename(work).startswith("hb-fleet.") and os.path.isdir(work):
        shutil.rmtree(work, ignore_errors=True)
        if os.path.exists(work):
            left.append(f"directory {work}")
    return left


if len(sys.argv) >= 2 and sys.argv[1] == "--guard":
    # --guard RUNNER_PID RUNNER_START WORK: wait for the runner to die
    for s in (signal.SIGINT, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    runner, runner_start, work = int(sys.argv[2]), sys.argv[3], sys.argv[4]
    while proc_start(runner) == runner_start:
        time.sleep(0.2)
    teardown(work)
    sys.exit(0)

if len(sys.argv) >= 2 and sys.argv[1] == "--teardown":
    left = teardown(os.path.abspath(sys.argv[2]))
    print("\n".join(left) if left else "nothing left")
    sys.exit(1 if left else 0)


# ----------------------------------------------------------------------- TAP

N = 0
FAILED = 0


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def diag(text):
    for line in str(text).splitlines() or [""]:
        out("# " + line)


def ok(desc):
    global N
    N += 1
    out(f"ok {N} - {desc}")


def not_ok(desc, *details):
    global N, FAILED
    N += 1
    FAILED += 1
    out(f"not ok {N} - {desc}")
    for d in details:
        for line in str(d).splitlines():
            out("#   " + line)


def check(cond, desc, *details):
    if cond:
        ok(desc)
    else:
        not_ok(desc, *details)
    return cond


def skip_all(why):
    out(f"1..0 # SKIP {why}")
    sys.exit(0)


def bail(why):
    out(f"Bail out! {why}")
    sys.exit(1)


# ------------------------------------------------------------------- skips

HEARTBEATD = os.environ.get("HEARTBEATD") or (sys.argv[1] if len(sys.argv) > 1 else "")
HBCTL = os.environ.get("HBCTL") or (sys.argv[2] if len(sys.argv) > 2 else "")
SOURCE_ROOT = os.environ.get("HB_SOURCE_ROOT") or os.path.normpath(os.path.join(os.path.dirname(SELF), "..", ".."))
RULES = os.path.join(SOURCE_ROOT, "data", "prometheus", "heartbeat-rules.yml")
AM_EXAMPLE = os.path.join(SOURCE_ROOT, "data", "prometheus", "alertmanager.yml")
PROM_EXAMPLE = os.path.join(SOURCE_ROOT, "data", "prometheus", "prometheus.yml")
MAKE_CA = os.path.join(SOURCE_ROOT, "tests", "tls", "make-test-ca.sh")

if os.geteuid() != 0:
    skip_all("needs root (creates network namespaces, a bridge and veth pairs)")
PROMETHEUS = shutil.which("prometheus") or ("/usr/bin/prometheus" if os.access("/usr/bin/prometheus", os.X_OK) else None)
if not PROMETHEUS:
    skip_all("prometheus is not installed (Debian package prometheus)")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
if not ALERTMANAGER:
    skip_all("alertmanager is not installed (Debian package prometheus-alertmanager)")
PROMTOOL = shutil.which("promtool")
try:
    import yaml
except ImportError:
    skip_all("python3-yaml is missing (Debian package python3-yaml)")
for tool, pkg in (("ip", "iproute2"), ("unshare", "util-linux"), ("setpriv", "util-linux"),
                  ("dbus-daemon", "dbus-daemon"), ("gdbus", "libglib2.0-bin"), ("hostname", "hostname"),
                  ("sed", "sed"), ("sleep", "coreutils"), ("openssl", "openssl"), ("sh", "dash")):
    if not shutil.which(tool):
        skip_all(f"{tool} is missing (Debian package {pkg})")
_probe = f"hb-fleet-probe-{os.getpid()}"
_r = subprocess.run(["ip", "netns", "add", _probe], capture_output=True, text=True)
if _r.returncode != 0:
    skip_all(f"ip netns does not work here: {_r.stderr.strip()}")
subprocess.run(["ip", "netns", "del", _probe], capture_output=True)
if not (HEARTBEATD and os.access(HEARTBEATD, os.X_OK)):
    bail(f"no heartbeatd binary (HEARTBEATD={HEARTBEATD!r}); run through meson test or pass HEARTBEATD HBCTL")
if not (HBCTL and os.access(HBCTL, os.X_OK)):
    bail(f"no hbctl binary (HBCTL={HBCTL!r})")
for _f in (RULES, AM_EXAMPLE, PROM_EXAMPLE, MAKE_CA):
    if not os.path.isfile(_f):
        bail(f"no {_f}")


# --------------------------------------------------------------- the runner

import tempfile  # noqa: E402

WORK = tempfile.mkdtemp(prefix="hb-fleet.", dir="/tmp")
os.chmod(WORK, 0o755)
STATE = {"pids": [], "netns": [], "links": []}
GUARD = None


def save_state():
    tmp = os.path.join(WORK, "state.json.tmp")
    with open(tmp, "w") as f:
        json.dump(STATE, f)
    os.rename(tmp, os.path.join(WORK, "state.json"))


def record(kind, value):
    STATE[kind].append(value)
    save_state()


save_state()
GUARD = subprocess.Popen([PY, SELF, "--guard", str(os.getpid()), proc_start(os.getpid()), WORK],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
TORN_DOWN = False


def final_teardown():
    global TORN_DOWN
    if TORN_DOWN:
        return []
    TORN_DOWN = True
    left = teardown(WORK)
    if GUARD and GUARD.poll() is None:
        GUARD.terminate()
        try:
            GUARD.wait(5)
        except subprocess.TimeoutExpired:
            GUARD.kill()
    return left


def on_signal(signum, frame):
    raise SystemExit(128 + signum)


for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_s, on_signal)

CLEAN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def spawn(name, argv, log, env=None, pass_fds=()):
    f = open(log, "ab")
    p = subprocess.Popen(["setpriv", "--pdeathsig", "KILL", "--"] + argv, stdin=subprocess.DEVNULL,
                         stdout=f, stderr=subprocess.STDOUT, env=env or CLEAN_ENV, pass_fds=pass_fds)
    f.close()
    record("pids", [p.pid, proc_start(p.pid), name])
    return p


def stop(p, timeout=10):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    return p.returncode


def tail(path, n=12):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:]).rstrip()
    except OSError as e:
        return str(e)


def free_port():
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in FORBIDDEN_PORTS:
            return port


OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
TLS_OPENER = None   # verifies the hosts against the test CA (set up in main)


def http(url, data=None, headers=None, timeout=2.0, method=None):
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    with (TLS_OPENER if url.startswith("https:") else OPENER).open(req, timeout=timeout) as r:
        return r.status, r.read()


def http_json(url, timeout=2.0):
    return json.loads(http(url, timeout=timeout)[1])


def wait_until(pred, timeout, interval=0.1):
    end = time.time() + timeout
    while True:
        try:
            v = pred()
        except Exception:
            v = None
        if v:
            return v
        if time.time() >= end:
            return v
        time.sleep(interval)


def parse_time(text):
    """RFC 3339 (Alertmanager's, nanoseconds allowed) to seconds since the epoch."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text or "")
    if not m:
        return None
    base = datetime.datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3)))
    return base.timestamp() + float("0." + (m.group(2) or "0"))


def fmt_labels(labels):
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"


def main():
    pid = os.getpid()
    diag(f"heartbeatd: {HEARTBEATD}")
    diag(f"hbctl:      {HBCTL}")
    diag(f"rules:      {RULES}")
    diag(f"prometheus: {PROMETHEUS}, alertmanager: {ALERTMANAGER}")
    diag(f"work:       {WORK}")

    # ------------------------------------------------------------ network
    bridge = f"hbfl{pid}br"[:15]
    with open("/run/lock/hb-fleet.lock" if os.path.isdir("/run/lock") else "/tmp/hb-fleet.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        used = []
        for what in ("addr", "route"):
            r = subprocess.run(["ip", "-4", "-j", what], capture_output=True, text=True)
            for item in json.loads(r.stdout or "[]"):
                if what == "addr":
                    for a in item.get("addr_info", []):
                        used.append(ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False))
                elif item.get("dst") not in (None, "default"):
                    dst = item["dst"] if "/" in item["dst"] else item["dst"] + "/32"
                    used.append(ipaddress.ip_network(dst, strict=False))
        subnet = None
        for s in range(256):
            net = ipaddress.ip_network(f"10.204.{s}.0/24")
            if not any(net.overlaps(u) for u in used):
                subnet = s
                break
        if subnet is None:
            bail("no free /24 in 10.204.0.0/16")
        record("links", bridge)
        for cmd in (["ip", "link", "add", bridge, "type", "bridge"],
                    ["ip", "addr", "add", f"10.204.{subnet}.1/24", "dev", bridge],
                    ["ip", "link", "set", bridge, "up"]):
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                bail(f"{' '.join(cmd)}: {r.stderr.strip()}")
    gw = f"10.204.{subnet}.1"

    global TLS_OPENER
    hosts = []
    addrs = [f"10.204.{subnet}.{11 + i}" for i in range(3)]
    # the test CA: one server certificate naming the three hosts' addresses
    tls = os.path.join(WORK, "tls")
    r = subprocess.run(["sh", MAKE_CA, tls, *addrs], capture_output=True, text=True)
    if r.returncode != 0:
        bail(f"{MAKE_CA} failed: {(r.stdout + r.stderr).strip()}")
    CA = os.path.join(tls, "ca.pem")
    TLS_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=CA)))
    # the tokens: read (Prometheus's), write, and one no host knows; the
    # hosts' tokens file holds only their sha512-crypt hashes
    tok = {}
    for kind in ("read", "write", "wrong"):
        tok[kind] = os.path.join(WORK, f"{kind}-token")
        with open(tok[kind], "w") as f:
            f.write(f"hb-fleet-{kind}-" + os.urandom(16).hex() + "\n")
        os.chmod(tok[kind], 0o600)
    hashes = {}
    for kind in ("read", "write"):
        with open(tok[kind]) as f:
            r = subprocess.run(["openssl", "passwd", "-6", "-stdin"], stdin=f, capture_output=True, text=True)
        if r.returncode != 0 or not r.stdout.startswith("$6$"):
            bail(f"openssl passwd -6 -stdin: {r.stderr.strip() or r.stdout.strip()}")
        hashes[kind] = r.stdout.strip()
    with open(tok["read"]) as f:
        read_token = f.read().strip()

    # the test's webhook receiver: records every notification with its time
    # (bound before the other ports are picked, so that none is its port)
    notifs = []
    notif_lock = threading.Lock()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(min(n, 1 << 20))
            try:
                d = json.loads(raw)
            except ValueError:
                d = {"unparsable": raw[:200].decode(errors="replace")}
            with notif_lock:
                notifs.append((time.time(), d))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    while hook.server_address[1] in FORBIDDEN_PORTS:
        hook.server_close()
        hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    hook.daemon_threads = True
    hook_port = hook.server_address[1]
    threading.Thread(target=hook.serve_forever, daemon=True).start()

    ports = set()
    while len(ports) < 8:
        ports.add(free_port())
    am1_port, am2_port, direct_port, promam_port, prom1_port, prom2_port, gossip1, gossip2 = \
        sorted(ports, key=lambda _: os.urandom(1))

    class Host:
        pass

    setup_errors = []
    for i, letter in enumerate("abc"):
        h = Host()
        h.letter = letter
        h.name = f"fleet-{letter}"
        h.ns = f"hb-fleet-{pid}-{letter}"
        h.veth = f"hbfl{pid}{letter}"[:15]
        h.addr = addrs[i]
        h.inst = f"{h.addr}:{HTTP_PORT}"
        h.dir = os.path.join(WORK, h.name)
        os.makedirs(os.path.join(h.dir, "state"))
        os.chmod(h.dir, 0o755)
        h.bus_path = os.path.join(h.dir, "bus")
        h.bus_addr = f"unix:path={h.bus_path}"
        h.daemon = None
        h.log = os.path.join(h.dir, "heartbeatd.log")
        record("netns", h.ns)
        record("links", h.veth)
        for cmd in (["ip", "netns", "add", h.ns],
                    ["ip", "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.ns],
                    ["ip", "link", "set", h.veth, "master", bridge, "up"],
                    ["ip", "-n", h.ns, "addr", "add", f"{h.addr}/24", "dev", "eth0"],
                    ["ip", "-n", h.ns, "link", "set", "eth0", "up"],
                    ["ip", "-n", h.ns, "link", "set", "lo", "up"]):
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                bail(f"{' '.join(cmd)}: {r.stderr.strip()}")
        # the host's bus
        with open(os.path.join(h.dir, "bus.conf"), "w") as f:
            f.write('<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"\n'
                    ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n'
                    f'<busconfig>\n  <type>session</type>\n  <listen>unix:path={h.bus_path}</listen>\n'
                    '  <auth>EXTERNAL</auth>\n  <policy context="default">\n'
                    '    <allow send_destination="*" eavesdrop="true"/>\n    <allow eavesdrop="true"/>\n'
                    '    <allow own="*"/>\n    <allow user="*"/>\n  </policy>\n</busconfig>\n')
        h.bus = spawn(f"dbus-daemon-{h.name}", ["ip", "netns", "exec", h.ns, "dbus-daemon",
                                                 f"--config-file={h.dir}/bus.conf", "--nofork", "--nopidfile"],
                      os.path.join(h.dir, "dbus-daemon.log"))
        # the tokens file, the configuration
        h.tokens = os.path.join(h.dir, "http-tokens")
        with open(h.tokens, "w") as f:
            f.write(f"# bearer tokens of {h.name}: SCOPES SECRET (here crypt(3) hashes)\n"
                    f"read       {hashes['read']}\nread,write {hashes['write']}\n")
        os.chmod(h.tokens, 0o600)
        h.conf = os.path.join(h.dir, "heartbeatd.conf")
        with open(h.conf, "w") as f:
            f.write(f"""# heartbeatd.conf of test host {h.name}
[monitor]
check-interval=1s
stale-threshold=1h
timeout-threshold=1h

[state]
sync-interval=1s

[http]
enabled=true
address={h.addr}
port={HTTP_PORT}
tokens-file={h.tokens}
tls-certificate={tls}/server.pem
tls-key={tls}/server-key.pem

[alert:fleet-am]
events=stale,timed-out,gone,error
alertmanager=http://{gw}:{am1_port} http://{gw}:{am2_port}
retries=3
retry-interval=1s
timeout=2s

[alert:fleet-direct]
events=stale,timed-out,gone,error
alertmanager=http://{gw}:{direct_port}
retries=3
retry-interval=1s
timeout=2s
""")
        h.notify_path = os.path.join(h.dir, "notify")
        h.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        h.notify.bind(h.notify_path)
        hosts.append(h)
    A, B, C = hosts

    # the Alertmanagers: am1 and am2, a cluster, with the shipped
    # alertmanager.yml (its webhook URL the test's receiver, group_wait
    # 1.5 s, group_interval GROUP_INTERVAL); "direct" and "prom-only" alone,
    # with no receiver. A group's flushes are then half-way between two
    # Prometheus evaluations (1 s apart; a group starts with a post from
    # one), as the shipped 10s and 1m are with 15 s: a change that reaches
    # the two instances of the cluster between their flushes of the same
    # group (a few ms apart) makes the second re-notify an older state
    # (reported below), and changes posted at evaluation times would hit
    # that window often.
    with open(AM_EXAMPLE) as f:
        am_text = f.read()
    am_subs = []
    for key, value in (("url", f"http://127.0.0.1:{hook_port}/notify"), ("group_wait", "1500ms"),
                       ("group_interval", f"{GROUP_INTERVAL:g}s")):
        am_text, n = re.subn(rf"^(\s*(?:- )?{key}:\s*)\S+", rf"\g<1>{value}", am_text, flags=re.M)
        am_subs.append(f"{key}: {n}")
    check(am_subs == ["url: 1", "group_wait: 1", "group_interval: 1"],
          f"the shipped alertmanager.yml, its webhook URL set to the test's receiver (127.0.0.1:{hook_port}) "
          f"and group_wait 1500ms, group_interval {GROUP_INTERVAL:g}s, is the cluster's configuration",
          f"replaced: {', '.join(am_subs)} (want each once)")
    ams = {}
    cluster = {"am1": (am1_port, gossip1, gossip2), "am2": (am2_port, gossip2, gossip1)}
    for label, port in (("am1", am1_port), ("am2", am2_port), ("direct", direct_port), ("prom-only", promam_port)):
        d = os.path.join(WORK, f"alertmanager-{label}")
        os.makedirs(d)
        with open(os.path.join(d, "alertmanager.yml"), "w") as f:
            if label in cluster:
                f.write(am_text)
            else:
                f.write("global:\n  resolve_timeout: 5s\nroute:\n  receiver: blackhole\n  group_wait: 1s\n"
                        "  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: blackhole\n")
        if label in cluster:
            _, mine, peer = cluster[label]
            cl = [f"--cluster.listen-address=127.0.0.1:{mine}", f"--cluster.peer=127.0.0.1:{peer}",
                  f"--cluster.peer-timeout={PEER_TIMEOUT:g}s", "--cluster.gossip-interval=100ms",
                  f"--web.external-url=http://127.0.0.1:{port}"]
        else:
            cl = ["--cluster.listen-address="]
        ams[label] = spawn(f"alertmanager-{label}",
                           [ALERTMANAGER, f"--config.file={d}/alertmanager.yml", f"--storage.path={d}",
                            f"--web.listen-address=127.0.0.1:{port}"] +
                           ([f"--web.listen-address={gw}:{port}"] if label != "prom-only" else []) +
                           cl + ["--log.level=info"],
                           os.path.join(d, "alertmanager.log"))
    AM1 = f"http://127.0.0.1:{am1_port}"
    AM = f"http://127.0.0.1:{am2_port}"     # am2: the one that stays up
    SENDER = {AM1: "am1", AM: "am2"}
    DIRECT = f"http://127.0.0.1:{direct_port}"
    PROMAM = f"http://127.0.0.1:{promam_port}"
    PROM1 = f"http://127.0.0.1:{prom1_port}"
    PROM = f"http://127.0.0.1:{prom2_port}"  # p2: the one that stays up

    # the rules: a copy with short for:
    rules_copy = os.path.join(WORK, "heartbeat-rules.yml")
    with open(rules_copy, "w") as f:
        subprocess.run(["sed", "-E", r"s/^([[:space:]]*for:[[:space:]]*)[^#[:space:]]+/\11s/", RULES],
                       stdout=f, check=True)
    rules_ok = True
    if PROMTOOL:
        r = subprocess.run([PROMTOOL, "check", "rules", rules_copy], capture_output=True, text=True)
        rules_ok = r.returncode == 0
        promtool_out = (r.stdout + r.stderr).strip()
    else:
        promtool_out = "promtool is missing"
    with open(rules_copy) as f:
        rules_text = f.read()
    rule_names = re.findall(r"^\s*-\s*alert:\s*['\"]?([A-Za-z0-9_]+)", rules_text, re.M)
    want_rules = ["HeartbeatAgentStale", "HeartbeatAgentTimedOut", "HeartbeatAgentGone", "HeartbeatAgentError",
                  "HeartbeatAgentNeverBeat", "HeartbeatHostDown"]
    fors = sorted(set(re.findall(r"^\s*for:\s*(\S+)", rules_text, re.M)))
    check(rules_ok and all(n in rule_names for n in want_rules),
          f"the shipped rules (a copy with for: {', '.join(fors) or 'none'}) pass promtool check rules and "
          f"define {', '.join(want_rules)}",
          f"promtool: {promtool_out}", f"alerts in the file: {', '.join(rule_names)}")

    # two Prometheus replicas, the same configuration but for the replica
    # label (dropped from the alerts, so that both send the same alert);
    # both send to both Alertmanagers of the cluster and to "prom-only".
    # Job plain-http asks the same hosts' TLS port over http:// (and is
    # not heartbeat*, which the rules watch). resend-delay 10m: Prometheus
    # sends an alert when it fires and when it resolves, and re-sends no
    # firing alert during the test. (A re-send between heartbeatd's
    # direct resolve and Prometheus's own would make Alertmanager, which
    # takes the younger post, fire the alert again for a second or two.)
    prom_dirs = {}
    proms = {}
    # their configuration: the shipped prometheus.yml, its intervals,
    # files, targets and replica name replaced; the rest as shipped
    # (scheme, tls_config, authorization, external_labels, the
    # alert_relabel_configs that drop the replica label)
    try:
        with open(PROM_EXAMPLE) as f:
            example = yaml.safe_load(f)
        ex_job = [j for j in example["scrape_configs"] if j.get("job_name") == "heartbeat"][0]
        ex_ok = (example["global"]["external_labels"].get("replica") and ex_job.get("scheme") == "https"
                 and ex_job["tls_config"].get("ca_file") and ex_job["authorization"].get("credentials_file")
                 and len(example["alerting"]["alertmanagers"]) == 1 and example["alerting"].get("alert_relabel_configs"))
        ex_err = "" if ex_ok else "it lacks one of them"
    except Exception as e:
        ex_ok, ex_err = False, f"{type(e).__name__}: {e}"
    if not check(ex_ok, "the shipped prometheus.yml (its intervals, files, targets and replica name replaced) is the "
                 "replicas' configuration: it has external_labels replica, alert_relabel_configs, one alertmanagers "
                 "entry, and job heartbeat with scheme https, tls_config ca_file and authorization credentials_file",
                 ex_err):
        bail(f"{PROM_EXAMPLE} is not usable here")

    def prom_config(n):
        c = copy.deepcopy(example)
        c["global"].update(scrape_interval="1s", scrape_timeout="800ms", evaluation_interval="1s")
        c["global"]["external_labels"]["replica"] = f"prometheus-{n}"
        c["rule_files"] = [rules_copy] if rules_ok else []
        c["alerting"]["alertmanagers"][0]["static_configs"] = [
            {"targets": [f"127.0.0.1:{p}" for p in (am1_port, am2_port, promam_port)]}]
        job = [j for j in c["scrape_configs"] if j.get("job_name") == "heartbeat"][0]
        job["tls_config"]["ca_file"] = CA
        job["authorization"]["credentials_file"] = tok["read"]
        job["static_configs"] = [{"targets": [h.inst for h in hosts]}]
        plain = copy.deepcopy(job)
        plain.update(job_name="plain-http", scheme="http")
        del plain["tls_config"]
        c["scrape_configs"] = [job, plain]
        return c

    for n, port in ((1, prom1_port), (2, prom2_port)):
        prom_dir = prom_dirs[n] = os.path.join(WORK, f"prometheus-{n}")
        os.makedirs(prom_dir)
        with open(os.path.join(prom_dir, "prometheus.yml"), "w") as f:
            yaml.safe_dump(prom_config(n), f, sort_keys=False)
        proms[n] = spawn(f"prometheus-{n}", [PROMETHEUS, f"--config.file={prom_dir}/prometheus.yml",
                                             f"--storage.tsdb.path={prom_dir}/data",
                                             f"--web.listen-address=127.0.0.1:{port}",
                                             "--rules.alert.resend-delay=10m", "--log.level=info"],
                         os.path.join(prom_dir, "prometheus.log"))

    # the daemons
    def hbctl(h, *args, timeout=15):
        env = dict(CLEAN_ENV, DBUS_SESSION_BUS_ADDRESS=h.bus_addr, NO_COLOR="1")
        r = subprocess.run(["ip", "netns", "exec", h.ns, HBCTL, "--session", *args], capture_output=True,
                           text=True, env=env, timeout=timeout)
        return r.returncode, (r.stdout + r.stderr).strip()

    def show(h, agent):
        rc, o = hbctl(h, "show", agent, "--json")
        try:
            return json.loads(o) if rc == 0 else None
        except ValueError:
            return None

    def start_daemon(h):
        h.notify.setblocking(False)
        while True:
            try:
                h.notify.recv(4096)
            except BlockingIOError:
                break
        env = dict(CLEAN_ENV, DBUS_SESSION_BUS_ADDRESS=h.bus_addr, XDG_STATE_HOME=os.path.join(h.dir, "state"),
                   HOME=h.dir, NOTIFY_SOCKET=h.notify_path, GSETTINGS_BACKEND="memory", GIO_USE_VFS="local")
        h.daemon = spawn(f"heartbeatd-{h.name}",
                         ["ip", "netns", "exec", h.ns, "unshare", "--uts", "--", "sh", "-c",
                          'hostname "$1" && shift && exec "$@"', "sh", h.name,
                          HEARTBEATD, "--session", "--config", h.conf, "--state-dir", os.path.join(h.dir, "state")],
                         h.log, env=env)
        h.notify.settimeout(0.2)
        end = time.time() + 15
        ready = False
        while time.time() < end and h.daemon.poll() is None and not ready:
            try:
                msg = h.notify.recv(4096).decode(errors="replace")
                ready = "READY=1" in msg.split("\n")
            except socket.timeout:
                pass
        if not ready:
            return f"{h.name}: no READY=1 (heartbeatd {'exited ' + str(h.daemon.returncode) if h.daemon.poll() is not None else 'running'}): {tail(h.log)}"
        if not wait_until(lambda: http(f"https://{h.inst}/health")[0] == 200, 10):
            return f"{h.name}: GET https://{h.inst}/health does not answer 200: {tail(h.log)}"
        return None

    for h in hosts:
        if not wait_until(lambda: os.path.exists(h.bus_path), 10):
            bail(f"the bus of {h.name} did not come up: {tail(os.path.join(h.dir, 'dbus-daemon.log'))}")
        err = start_daemon(h)
        if err:
            setup_errors.append(err)
    hn = {}
    for h in hosts:
        r = subprocess.run(["nsenter", f"--uts=/proc/{h.daemon.pid}/ns/uts", "hostname"], capture_output=True, text=True)
        hn[h.name] = r.stdout.strip()
        addrs = subprocess.run(["ip", "-n", h.ns, "-4", "-br", "addr"], capture_output=True, text=True).stdout
        h.addrs = " ".join(addrs.split())
    if not check(not setup_errors and all(hn[h.name] == h.name for h in hosts),
                 f"three test hosts on bridge {bridge} ({gw}/24): " +
                 "; ".join(f"{h.ns} [{h.addrs}] hostname {hn[h.name]}" for h in hosts) +
                 f"; heartbeatd READY=1 and GET https://ADDR:{HTTP_PORT}/health 200 on each, the server "
                 f"verified against the test CA (tls-certificate=, tls-key=, a tokens file of crypt(3) hashes)",
                 *setup_errors, f"hostnames: {hn}"):
        bail("the test hosts did not come up")

    for label, url in (("am1", AM1), ("am2", AM), ("direct", DIRECT), ("prom-only", PROMAM),
                       ("prometheus-1", PROM1), ("prometheus-2", PROM)):
        if not wait_until(lambda: http(url + "/-/ready")[0] == 200, 30):
            log = (os.path.join(WORK, label, "prometheus.log") if label.startswith("prometheus")
                   else os.path.join(WORK, f"alertmanager-{label}", "alertmanager.log"))
            bail(f"{label} is not ready at {url}: {tail(log)}")

    def targets(url):
        d = http_json(url + "/api/v1/targets?state=active")["data"]["activeTargets"]
        return {(t["labels"].get("job"), t["labels"].get("instance")): t for t in d}

    def targets_ready(url):
        t = targets(url)
        want = {(j, h.inst) for j in ("heartbeat", "plain-http") for h in hosts}
        return (set(t) == want and all(t[("heartbeat", h.inst)]["health"] == "up" for h in hosts)
                and all(t[("plain-http", h.inst)]["health"] == "down" for h in hosts) and t)
    t0 = time.time()
    tg = {n: wait_until(lambda: targets_ready(u), 20) for n, u in (("prometheus-1", PROM1), ("prometheus-2", PROM))}
    tg_now = {}
    for n, u in (("prometheus-1", PROM1), ("prometheus-2", PROM)):
        try:
            tg_now[n] = targets(u)
        except Exception as e:
            tg_now[n] = {("error", str(e)): {}}
    https_ok = all(tg.values())
    check(https_ok, f"both Prometheus replicas ({PROM1}, {PROM}) scrape the three hosts over https (tls_config "
          f"ca_file the test CA, authorization credentials_file the read token) every 1 s: up == 1 for "
          f"{', '.join(h.inst for h in hosts)} (after {time.time() - t0:.1f} s)",
          *(f"{n} {j} {i}: {t.get('health')} {t.get('lastError', '')}" for n, d in tg_now.items()
            for (j, i), t in sorted(d.items())))
    plain_errors = sorted({re.sub(r"[0-9.]+:[0-9]+->", "", re.sub(r'"http://[^"]*"', "URL", t.get("lastError", "")))
                           for d in tg_now.values() for (j, i), t in d.items() if j == "plain-http"})
    try:
        http(f"http://{A.inst}/metrics", headers={"Authorization": f"Bearer {read_token}"})
        plain_get = "answered"
    except Exception as e:
        plain_get = f"{type(e).__name__}: {e}"
    plain_ok = all(d.get(("plain-http", h.inst), {}).get("health") == "down" for d in tg_now.values() for h in hosts)
    check(plain_ok and plain_get != "answered",
          f"a scrape over plain http:// of the TLS port fails: up == 0 for job plain-http (the same hosts and "
          f"token, scheme http) in both replicas ({'; '.join(plain_errors)}); a GET http://{A.inst}/metrics "
          f"with the read token gets no answer ({plain_get})",
          *(f"{n} {j} {i}: {t.get('health')} {t.get('lastError', '')}" for n, d in tg_now.items()
            for (j, i), t in sorted(d.items()) if j == "plain-http"))
    if not https_ok:
        bail("Prometheus cannot scrape the hosts")
    try:
        groups = http_json(PROM + "/api/v1/rules")["data"]["groups"]
        loaded = [r["name"] for g in groups for r in g["rules"] if r.get("type") == "alerting"]
    except Exception as e:
        loaded = [f"error: {e}"]
    diag(f"Prometheus loaded the alerting rules: {', '.join(loaded) or 'none'}")

    # the cluster: both members see two peers, gossip settled ("ready")
    def cluster_status(url):
        c = http_json(url + "/api/v2/status")["cluster"]
        return c.get("status"), sorted(p["address"] for p in c.get("peers") or [])

    def cluster_ready():
        st = [cluster_status(u) for u in (AM1, AM)]
        return all(x[0] == "ready" and len(x[1]) == 2 for x in st) and st
    t0 = time.time()
    cl_ready = wait_until(cluster_ready, 30)
    try:
        cl_now = [cluster_status(u) for u in (AM1, AM)]
    except Exception as e:
        cl_now = str(e)
    check(cl_ready, f"the Alertmanager cluster: am1 ({AM1}, gossip 127.0.0.1:{gossip1}) and am2 ({AM}, gossip "
          f"127.0.0.1:{gossip2}) each list both peers and have settled (status ready, after {time.time() - t0:.1f} s)",
          f"am1, am2: {cl_now}")
    diag(f"Alertmanagers am1 and am2 (the cluster: Prometheus p1 and p2 + heartbeatd's alertmanager=URL1 URL2, "
         f"notify the test's webhook receiver): {AM1}, {AM} and http://{gw}:PORT; direct (heartbeatd only): "
         f"{DIRECT} and http://{gw}:{direct_port}; prom-only (both Prometheus only): {PROMAM}")

    # ------------------------------------------------------------ poller
    snaps = []
    cond = threading.Condition()
    stop_poll = threading.Event()

    def poll_loop():
        q = urllib.parse.quote
        while not stop_poll.is_set():
            t_loop = time.time()
            s = {"t": {}, "d": {}}
            for src, fn in (
                ("states", lambda: {(r["metric"].get("instance"), r["metric"].get("agent")): r["metric"].get("state")
                                    for r in http_json(PROM + "/api/v1/query?query=" + q("heartbeat_agent_state == 1"), 1)["data"]["result"]}),
                ("up", lambda: {r["metric"].get("instance"): r["value"][1]
                                for r in http_json(PROM + "/api/v1/query?query=" + q('up{job="heartbeat"}'), 1)["data"]["result"]}),
                ("prom", lambda: [a["labels"] for a in http_json(PROM + "/api/v1/alerts", 1)["data"]["alerts"]
                                  if a.get("state") == "firing"]),
                ("prom1", lambda: [a["labels"] for a in http_json(PROM1 + "/api/v1/alerts", 1)["data"]["alerts"]
                                   if a.get("state") == "firing"]),
                ("am", lambda: [dict(a["labels"], __fp=a["fingerprint"], __ends=a.get("endsAt", ""))
                                for a in http_json(AM + "/api/v2/alerts", 1)]),
                ("am1", lambda: [dict(a["labels"], __fp=a["fingerprint"], __ends=a.get("endsAt", ""))
                                 for a in http_json(AM1 + "/api/v2/alerts", 1)]),
                ("direct", lambda: [dict(a["labels"], __fp=a["fingerprint"], __ends=a.get("endsAt", ""))
                                    for a in http_json(DIRECT + "/api/v2/alerts", 1)]),
                ("amprom", lambda: [dict(a["labels"], __fp=a["fingerprint"], __ends=a.get("endsAt", ""))
                                    for a in http_json(PROMAM + "/api/v2/alerts", 1)]),
            ):
                try:
                    s["d"][src] = fn()
                except Exception:
                    s["d"][src] = None
                s["t"][src] = time.time()
            with cond:
                snaps.append(s)
                cond.notify_all()
            stop_poll.wait(max(0.0, 0.1 - (time.time() - t_loop)))

    poller = threading.Thread(target=poll_loop, daemon=True)
    poller.start()

    def latest():
        with cond:
            return snaps[-1] if snaps else None

    def wait_snap(pred, timeout):
        """Waits (at most TIMEOUT s) for a snapshot taken from now on that
        satisfies PRED; returns it or None."""
        end = time.time() + timeout
        with cond:
            i = len(snaps)
        while time.time() < end:
            with cond:
                cond.wait(0.5)
                new = snaps[i:]
                i = len(snaps)
            for s in new:
                try:
                    if pred(s):
                        return s
                except Exception:
                    pass
        return None

    def observe(until):
        """Bounded polling: lets the poller record until the time UNTIL."""
        while time.time() < until:
            time.sleep(min(0.1, max(0.0, until - time.time())))

    def history(src, t1, t2=None):
        with cond:
            items = list(snaps)
        return [(s["t"][src], s["d"][src]) for s in items
                if s["d"].get(src) is not None and s["t"][src] >= t1 and (t2 is None or s["t"][src] <= t2)]

    def first(src, pred, t1, t2=None):
        for t, d in history(src, t1, t2):
            if pred(d):
                return t
        return None

    def gaps(src, pred, t1, t2):
        hist = history(src, t1, t2)
        return [t for t, d in hist if not pred(d)], len(hist)

    def of_host(labels, h):
        # an agent alert names its host by hostname= (the contract); an alert
        # with instance= or host= instead, or with none of them (a rule
        # whose join found no hostname), is matched too, so that the checks
        # can show what was sent instead
        if not {"hostname", "instance", "host"} & set(labels):
            return True
        return labels.get("hostname") == h.name or labels.get("instance") == h.inst or labels.get("host") == h.name

    def agent_alerts(alerts, h, agent, alertname=None):
        return [a for a in alerts if a.get("agent") == agent and of_host(a, h)
                and (alertname is None or a.get("alertname") == alertname)]

    def clean(labels):
        return {k: v for k, v in labels.items() if not k.startswith("__")}

    # ---------------------------------------------------------- agents
    class Scn:
        def __init__(self, host, agent, state, alertname, severity):
            self.host, self.agent, self.state, self.alertname, self.severity = host, agent, state, alertname, severity
            self.key = f"{agent}@{host.name}"
            self.deadline = None
            self.t_reg = None
            self.t_action = None
            self.action = ""
            self.expected = {"alertname": alertname, "agent": agent, "hostname": host.name, "severity": severity}
            self.errors = []

        def firing(self, src):
            return lambda d: bool(agent_alerts(d, self.host, self.agent, self.alertname))

        def resolved(self, src):
            return lambda d: not agent_alerts(d, self.host, self.agent)

    def set_deadline(scn, kind):
        info = show(scn.host, scn.agent)
        if info is None:
            scn.errors.append(f"hbctl show {scn.agent} failed")
            return
        if kind == "stale":
            scn.deadline = (info["last-activity-at-usec"] + info["stale-after-usec"]) / 1e6
        else:
            scn.deadline = (info["started-at-usec"] + info["timeout-after-usec"]) / 1e6

    def run(h, scn, *args):
        rc, o = hbctl(h, *args)
        if rc != 0:
            scn.errors.append(f"hbctl {' '.join(args)}: exit {rc}: {o}")
        return rc

    stale1 = Scn(A, "stale-1", "stale", "HeartbeatAgentStale", "warning")
    shared_a = Scn(A, "shared", "stale", "HeartbeatAgentStale", "warning")
    timeout1 = Scn(A, "timeout-1", "timed-out", "HeartbeatAgentTimedOut", "critical")
    gone_pid = Scn(C, "gone-pid", "gone", "HeartbeatAgentGone", "critical")
    gone_bound = Scn(C, "gone-bound", "gone", "HeartbeatAgentGone", "critical")
    shared_c = Scn(C, "shared", "stale", "HeartbeatAgentStale", "warning")
    b_stale = Scn(B, "b-stale", "stale", "HeartbeatAgentStale", "warning")
    scns = [stale1, shared_a, timeout1, gone_pid, gone_bound, shared_c, b_stale]
    T0 = time.time()
    for scn, args in ((stale1, ["--stale", "3s", "--timeout", "10min"]), (shared_a, ["--stale", "3s", "--timeout", "10min"]),
                      (shared_c, ["--stale", "3s", "--timeout", "10min"]), (b_stale, ["--stale", "3s", "--timeout", "10min"]),
                      (timeout1, ["--stale", "1h", "--timeout", "4s"])):
        scn.t_reg = time.time()
        run(scn.host, scn, "register", scn.agent, "--task", f"fleet test {scn.state}", *args)
    for scn in (stale1, shared_a, shared_c, b_stale):
        run(scn.host, scn, "beat", scn.agent, "--status", "working")
        set_deadline(scn, "stale")
    set_deadline(timeout1, "timeout")
    rc_ok, o_ok = hbctl(B, "register", "b-ok", "--stale", "1h", "--timeout", "1h")
    # gone: --pid of a process in the host's namespace, then killed
    sleeper = spawn("sleeper-fleet-c", ["ip", "netns", "exec", C.ns, "sleep", "600"], os.path.join(C.dir, "sleeper.log"))
    wait_until(lambda: open(f"/proc/{sleeper.pid}/comm").read().strip() == "sleep", 5, 0.01)
    gone_pid.t_reg = time.time()
    if run(C, gone_pid, "register", "gone-pid", "--pid", str(sleeper.pid), "--stale", "5s", "--timeout", "10min") == 0:
        gone_pid.deadline = time.time()
        sleeper.kill()
        sleeper.wait()
    # gone: bound to its caller's bus connection, which closes at once
    gone_bound.t_reg = time.time()
    r = subprocess.run(["ip", "netns", "exec", C.ns, "gdbus", "call", "--session", "--dest", "org.heartbeat.Monitor1",
                        "--object-path", "/org/heartbeat/Monitor1", "--method", "org.heartbeat.Monitor1.Register",
                        "gone-bound", "{'bind-to-caller': <true>, 'stale-after-usec': <uint64 5000000>}"],
                       capture_output=True, text=True, env=dict(CLEAN_ENV, DBUS_SESSION_BUS_ADDRESS=C.bus_addr), timeout=15)
    gone_bound.deadline = time.time()
    if r.returncode != 0:
        gone_bound.errors.append(f"gdbus Register bind-to-caller: {r.stderr.strip()}")
    diag(f"registered at +{T0 - T_START:.1f} s: " + ", ".join(s.key for s in scns) + f", b-ok@fleet-b (rc {rc_ok} {o_ok})")

    # the per-agent metrics of the contract, straight from a host
    try:
        text = http(f"https://{A.inst}/metrics", headers={"Authorization": f"Bearer {read_token}"})[1].decode()
    except Exception as e:
        text = f"error: {e}"
    series = []
    for line in text.splitlines():
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)', line)
        if m and not line.startswith("#"):
            labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            series.append((m.group(1), labels, float(m.group(3))))

    def values(name, **want):
        return [v for n, lab, v in series if n == name and all(lab.get(k) == w for k, w in want.items())]
    st = {lab.get("state"): v for n, lab, v in series if n == "heartbeat_agent_state" and lab.get("agent") == "stale-1"}
    problems = []
    if set(st) != set(STATES) or sorted(st.values()) != [0] * (len(STATES) - 1) + [1] or st.get("healthy") != 1:
        problems.append(f"heartbeat_agent_state{{agent=stale-1}}: {st} (want all seven states, healthy=1, others 0)")
    if values("heartbeat_agent_info", agent="stale-1", task="fleet test stale") != [1]:
        problems.append(f"heartbeat_agent_info{{agent=stale-1,task=\"fleet test stale\"}}: {values('heartbeat_agent_info', agent='stale-1')}")
    if values("heartbeat_agent_stale_threshold_seconds", agent="stale-1") != [3]:
        problems.append(f"heartbeat_agent_stale_threshold_seconds: {values('heartbeat_agent_stale_threshold_seconds', agent='stale-1')} (want [3])")
    if values("heartbeat_agent_timeout_threshold_seconds", agent="stale-1") != [600]:
        problems.append(f"heartbeat_agent_timeout_threshold_seconds: {values('heartbeat_agent_timeout_threshold_seconds', agent='stale-1')} (want [600])")
    if values("heartbeat_agent_idle", agent="stale-1") != [0]:
        problems.append(f"heartbeat_agent_idle: {values('heartbeat_agent_idle', agent='stale-1')} (want [0])")
    if values("heartbeat_agent_beats_total", agent="stale-1") != [1]:
        problems.append(f"heartbeat_agent_beats_total: {values('heartbeat_agent_beats_total', agent='stale-1')} (want [1])")
    for n in ("heartbeat_agent_stale_total", "heartbeat_agent_timeouts_total", "heartbeat_agent_last_activity_timestamp_seconds"):
        if len(values(n, agent="stale-1")) != 1:
            problems.append(f"{n}{{agent=stale-1}}: {values(n, agent='stale-1')} (want one series)")
    check(not problems, f"/metrics of {A.name} (GET over https with the read token): stale-1 has its seven heartbeat_agent_state "
          "series (healthy 1), info with its task, thresholds 3 s and 600 s, idle 0, beats_total 1, stale and "
          "timeouts counters, last activity", *problems)

    # tokens and scopes, asked from fleet-b's namespace (the peer address
    # is fleet-b's: Prometheus's address, the bridge's, is not the one
    # whose wrong tokens are counted for the rate limit)
    def request(method, path, token, body=None):
        argv = ["ip", "netns", "exec", B.ns, PY, SELF, "--request", method, f"https://{A.inst}{path}", CA,
                tok[token] if token else "-"] + ([body] if body is not None else [])
        try:
            r = subprocess.run(argv, capture_output=True, text=True, env=CLEAN_ENV, timeout=30)
            return json.loads(r.stdout)
        except (ValueError, subprocess.TimeoutExpired) as e:
            return {"status": None, "www": None, "body": "", "error": f"{e}"}

    def auth_failures():
        r = request("GET", "/metrics", "read")
        return {m.group(1): float(m.group(2)) for m in re.finditer(
            r'^heartbeat_http_auth_failures_total\{reason="([^"]+)"\}\s+(\S+)', r["body"], re.M)}, r

    def fmt(r):
        return f"{r['status'] or r['error']}" + (f" ({r['www']})" if r.get("www") else "")
    before, r_before = auth_failures()
    r_none = request("GET", "/v1/agents", None)
    r_wrong = request("GET", "/metrics", "wrong")
    r_scope = request("PUT", "/v1/agents/fleet-auth-probe", "read", "{}")
    r_write = request("PUT", "/v1/agents/fleet-auth-probe", "write", "{}")
    r_delete = request("DELETE", "/v1/agents/fleet-auth-probe", "write")
    after, r_after = auth_failures()
    www = 'Bearer realm="heartbeatd"'
    check(r_none["status"] == 401 and (r_none["www"] or "").startswith(www) and "error=" not in (r_none["www"] or "")
          and r_wrong["status"] == 401 and (r_wrong["www"] or "").startswith(www)
          and 'error="invalid_token"' in (r_wrong["www"] or ""),
          f"from {B.name} to {A.name} over https: GET /v1/agents without a token is refused ({fmt(r_none)}); "
          f"GET /metrics with a wrong token is refused ({fmt(r_wrong)})",
          f"no token: {r_none}", f"wrong token: {r_wrong}")
    check(r_before["status"] == 200 and r_scope["status"] == 403 and 'error="insufficient_scope"' in (r_scope["www"] or "")
          and r_write["status"] in (200, 201) and r_delete["status"] in (200, 204),
          f"the read token reads (GET /metrics {fmt(r_before)}) but cannot write: PUT /v1/agents/fleet-auth-probe "
          f"{fmt(r_scope)}; the write token (scopes read,write) can: PUT {fmt(r_write)}, DELETE {fmt(r_delete)}",
          f"read GET: {fmt(r_before)} {r_before['error'] or ''}", f"read PUT: {r_scope}", f"write PUT: {r_write}",
          f"write DELETE: {r_delete}")
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in ("missing", "invalid", "scope", "rate-limited")}
    check(set(before) >= {"missing", "invalid", "scope", "rate-limited"} and
          delta == {"missing": 1, "invalid": 1, "scope": 1, "rate-limited": 0},
          "the refusals are counted: heartbeat_http_auth_failures_total{reason} (read with the read token) went up "
          "by missing 1, invalid 1, scope 1, rate-limited 0",
          f"before: {before}", f"after: {after}", f"delta: {delta}")

    bi = {}
    for h in hosts:
        try:
            d = http_json(PROM + "/api/v1/query?query=" + urllib.parse.quote(f'heartbeat_build_info{{job="heartbeat",instance="{h.inst}"}}'))
            bi[h.name] = [r["metric"] for r in d["data"]["result"]]
        except Exception as e:
            bi[h.name] = str(e)
    check(all(isinstance(bi[h.name], list) and len(bi[h.name]) == 1 and bi[h.name][0].get("hostname") == h.name
              and bi[h.name][0].get("version") for h in hosts),
          "Prometheus has heartbeat_build_info{version, hostname} of each host, hostname = the host's own "
          "(fleet-a, fleet-b, fleet-c)", *(f"{k}: {v}" for k, v in bi.items()))

    # ------------------------------------------ phase 1: everything fires
    # the sources: Prometheus p2's alerts, Alertmanager "amprom" (fed by
    # both Prometheus only), "direct" (fed by heartbeatd only), "am" (am2,
    # fed by both Prometheus and heartbeatd), the ones that stay up; and
    # "prom1" (p1) and "am1", stopped in phase 4
    ALL = ("prom", "amprom", "direct", "am")
    def all_fired(s):
        return all(s["d"].get(src) is not None and agent_alerts(s["d"][src], x.host, x.agent, x.alertname)
                   for x in scns for src in ALL + ("prom1", "am1"))
    last_deadline = max([x.deadline for x in scns if x.deadline] or [time.time()])
    fired = wait_snap(all_fired, max(1.0, last_deadline + FIRE_WAIT - time.time()))
    t_fired = time.time()
    diag(f"all seven agent alerts in both Prometheus and the four Alertmanagers: "
         f"{'yes' if fired else 'NO (bounded wait over)'} at +{t_fired - T_START:.1f} s")

    # -------------------------------------------- phase 2: fleet-b goes down
    before_stop = wait_snap(lambda s: agent_alerts(s["d"]["am"], B, "b-stale", "HeartbeatAgentStale"), 5)
    t_stop = time.time()
    rc_stop = stop(B.daemon)
    diag(f"stopped heartbeatd of {B.name} (SIGTERM, exit {rc_stop}) at +{t_stop - T_START:.1f} s"
         f"{'' if before_stop else ' (b-stale was not firing in Alertmanager)'}")

    def hostdown(d, h):
        return [a for a in d if a.get("alertname") == "HeartbeatHostDown" and
                (a.get("instance") == h.inst or a.get("hostname") == h.name)]
    hd = wait_snap(lambda s: hostdown(s["d"]["prom"], B) and hostdown(s["d"]["am"], B), HOSTDOWN_WAIT)
    t_hd = time.time()
    observe(max(t_hd + HOLD, t_fired + HOLD) if hd else t_hd)

    # ---------------------------- phase 3: recovery on fleet-a and fleet-c
    def act(scn, desc, *args):
        scn.t_action = time.time()
        scn.action = desc
        return run(scn.host, scn, *args)

    # a recovered agent keeps beating (every 1 s, from this thread), as a
    # worker that resumed would
    beating = []
    beat_lock = threading.Lock()

    def beat_loop():
        while not stop_poll.wait(1.0):
            with beat_lock:
                todo = list(beating)
            for h, agent in todo:
                try:
                    hbctl(h, "beat", agent, timeout=5)
                except subprocess.TimeoutExpired:
                    pass

    beater = threading.Thread(target=beat_loop, daemon=True)
    beater.start()

    def recover(scn, desc):
        if act(scn, desc, "beat", scn.agent) == 0:
            with beat_lock:
                beating.append((scn.host, scn.agent))
    recover(stale1, "hbctl beat")
    recover(shared_a, "hbctl beat")
    act(timeout1, "hbctl unregister", "unregister", "timeout-1")
    act(gone_pid, "hbctl unregister", "unregister", "gone-pid")
    act(gone_bound, "hbctl register again", "register", "gone-bound", "--stale", "1h", "--timeout", "1h")
    t_restart = time.time()
    err = start_daemon(B)
    diag(f"started heartbeatd of {B.name} again at +{t_restart - T_START:.1f} s{': ' + err if err else ''}")
    phase3 = [stale1, shared_a, timeout1, gone_pid, gone_bound]

    def recovered3(s):
        return (all(s["d"].get(src) is not None and not agent_alerts(s["d"][src], x.host, x.agent)
                    for x in phase3 for src in ALL)
                and s["d"]["prom"] is not None and not hostdown(s["d"]["prom"], B)
                and s["d"]["am"] is not None and not hostdown(s["d"]["am"], B)
                and s["d"]["up"] is not None and s["d"]["up"].get(B.inst) == "1")
    wait_snap(recovered3, RESOLVE_WAIT)
    t_up_again = first("up", lambda d: d.get(B.inst) == "1", t_restart) or time.time()
    observe(max(t_up_again + 5, time.time() + 1))

    # -------- phase 4: one Prometheus and one Alertmanager stopped by PID
    def notified(match):
        """[(time, status, sender)] of each alert whose labels satisfy MATCH
        in the receiver's notifications, in the order they came."""
        with notif_lock:
            items = list(notifs)
        return [(t, a.get("status"), SENDER.get((d.get("externalURL") or "").rstrip("/"), d.get("externalURL")))
                for t, d in items for a in d.get("alerts") or [] if match(a.get("labels") or {})]

    def statuses(match):
        return [st for _, st, _ in notified(match)]

    def x_match(x):
        return lambda l: (l.get("alertname") == x.alertname and l.get("agent") == x.agent
                          and l.get("hostname") == x.host.name)

    def hd_match(h):
        return lambda l: l.get("alertname") == "HeartbeatHostDown" and l.get("instance") == h.inst

    # the cluster has told the receiver of phase 3's recoveries (bounded)
    wait_until(lambda: all(statuses(x_match(x))[-1:] == ["resolved"] for x in phase3)
               and statuses(hd_match(B))[-1:] == ["resolved"], RESOLVE_WAIT)
    t_ha = time.time()
    pid_p1, pid_am1 = proms[1].pid, ams["am1"].pid
    rc_p1 = stop(proms[1])
    rc_am1 = stop(ams["am1"])
    try:
        am2_peers = cluster_status(AM)[1]
    except Exception as e:
        am2_peers = str(e)
    diag(f"stopped Prometheus p1 (pid {pid_p1}, exit {rc_p1}) and Alertmanager am1 (pid {pid_am1}, exit {rc_am1}) "
         f"at +{t_ha - T_START:.1f} s; am2's peers now: {am2_peers}")
    ha = Scn(A, "ha-stale", "stale", "HeartbeatAgentStale", "warning")
    ha.t_reg = time.time()
    run(A, ha, "register", "ha-stale", "--task", "fleet test ha", "--stale", "3s", "--timeout", "10min")
    run(A, ha, "beat", "ha-stale", "--status", "working")
    set_deadline(ha, "stale")
    scns.append(ha)
    recover(b_stale, "hbctl beat after the restart")
    act(shared_c, "hbctl unregister", "unregister", "shared")
    phase4 = [b_stale, shared_c]
    # fleet-c stops once Prometheus has seen shared@fleet-c go (else its
    # alert would rightly fire on while its host is down)
    wait_snap(lambda s: s["d"]["prom"] is not None and not agent_alerts(s["d"]["prom"], C, shared_c.agent),
              RESOLVE_WAIT)
    t_stop_c = time.time()
    rc_stop_c = stop(C.daemon)

    def ha_fired(s):
        return (all(s["d"].get(src) is not None and agent_alerts(s["d"][src], A, ha.agent, ha.alertname) for src in ALL)
                and hostdown(s["d"]["prom"] or [], C) and hostdown(s["d"]["am"] or [], C))
    wait_snap(ha_fired, max(HOSTDOWN_WAIT, (ha.deadline or time.time()) + FIRE_WAIT - time.time()))
    # notified before it resolves (an alert that fires and resolves
    # between two notifications of its group is never notified)
    wait_until(lambda: "firing" in statuses(x_match(ha)) and "firing" in statuses(hd_match(C)), FIRE_WAIT)
    t_ha_fired = time.time()
    diag(f"stopped heartbeatd of {C.name} (exit {rc_stop_c}) at +{t_stop_c - T_START:.1f} s; ha-stale@{A.name} and "
         f"HeartbeatHostDown of {C.name} fired and notified by +{t_ha_fired - T_START:.1f} s")
    recover(ha, "hbctl beat")
    t_restart_c = time.time()
    err_c = start_daemon(C)
    diag(f"started heartbeatd of {C.name} again at +{t_restart_c - T_START:.1f} s{': ' + err_c if err_c else ''}")
    wait_snap(lambda s: all(s["d"].get(src) is not None and not agent_alerts(s["d"][src], x.host, x.agent)
                            for x in phase4 + [ha] for src in ALL)
              and s["d"]["prom"] is not None and not hostdown(s["d"]["prom"], C)
              and s["d"]["am"] is not None and not hostdown(s["d"]["am"], C), RESOLVE_WAIT)
    wait_until(lambda: all(statuses(x_match(x))[-1:] == ["resolved"] for x in scns)
               and all(statuses(hd_match(h))[-1:] == ["resolved"] for h in (B, C)), RESOLVE_WAIT)
    t_end = time.time()
    observe(t_end + 0.5)
    stop_poll.set()
    poller.join(5)
    beater.join(10)
    diag(f"{len(snaps)} snapshots of Prometheus and the Alertmanagers in {t_end - T0:.1f} s, "
         f"{len(notifs)} notifications")

    # ------------------------------------------------------------ checks
    rows = []
    for x in scns:
        h = x.host
        pre = [f"{e}" for e in x.errors]
        t_act = x.t_action or t_end
        t_from = x.t_reg or T0
        # fired with the contract's labels
        seen = {}
        for src in ALL:
            sets = []
            for t, d in history(src, t_from, t_act):
                for a in agent_alerts(d, h, x.agent):
                    c = clean(a)
                    if c not in sets:
                        sets.append(c)
            seen[src] = sets
        fp_am = {a["__fp"] for t, d in history("am", t_from, t_act) for a in agent_alerts(d, h, x.agent)}
        fp_direct = {a["__fp"] for t, d in history("direct", t_from, t_act) for a in agent_alerts(d, h, x.agent)}
        exp = fmt_labels(x.expected)
        check(seen["prom"] == [x.expected] and seen["amprom"] == [x.expected],
              f"{x.key} ({x.state}): Prometheus fires {exp}, and no other alert for it, and sends it to Alertmanager",
              *pre, f"Prometheus fired: {[fmt_labels(s) for s in seen['prom']] or 'nothing'}",
              f"the Alertmanager fed by Prometheus only had: {[fmt_labels(s) for s in seen['amprom']] or 'nothing'}",
              f"Prometheus saw the state: {first('states', lambda d: d.get((h.inst, x.agent)) == x.state, t_from) is not None}")
        check(seen["am"] == [x.expected],
              f"{x.key}: Alertmanager (fed by Prometheus and heartbeatd) holds one alert {exp}",
              f"Alertmanager had: {[fmt_labels(s) for s in seen['am']] or 'nothing'}")
        check(seen["direct"] == [x.expected] and fp_direct and fp_direct == fp_am,
              f"{x.key}: heartbeatd's direct alertmanager= action sends the same alert (same labels and "
              f"fingerprint{' ' + next(iter(fp_direct)) if len(fp_direct) == 1 else ''} as in Alertmanager)",
              f"the direct Alertmanager had: {[fmt_labels(s) for s in seen['direct']] or 'nothing'}",
              f"fingerprints: direct {sorted(fp_direct)}, Alertmanager {sorted(fp_am)}")
        # firing until the action (for b-stale: until it stopped, direct only)
        problems = []
        samples = 0
        for src in ALL:
            t1 = first(src, x.firing(src), t_from, t_act)
            if t1 is None:
                problems.append(f"{src}: never fired")
                continue
            t2 = t_stop if x is b_stale else t_act
            g, n = gaps(src, x.firing(src), t1, t2 - 0.05)
            samples += n
            if g:
                problems.append(f"{src}: fired at +{t1 - T_START:.1f} s but was missing at "
                                f"+{g[0] - T_START:.1f} s … (+{g[-1] - T_START:.1f} s), {len(g)} of {n} samples, "
                                f"before the {x.action or 'action'} at +{t_act - T_START:.1f} s")
        held = (t_act - max(first("am", x.firing("am"), t_from, t_act) or t_act, t_from))
        if x is not b_stale:
            check(not problems, f"{x.key}: stays firing in Prometheus and in the Alertmanagers fed by Prometheus, "
                  f"by heartbeatd and by both until the {x.action} ({held:.1f} s in Alertmanager, {samples} samples)",
                  *problems)
        else:
            check(not problems, f"{x.key}: stays firing in Prometheus and in the Alertmanagers fed by Prometheus, "
                  f"by heartbeatd and by both until its host stops ({samples} samples)", *problems)
        # resolved after the action
        res = {}
        for src in ALL:
            res[src] = first(src, x.resolved(src), t_act)
        t_state_clear = first("states", lambda d: d.get((h.inst, x.agent)) != x.state, t_act)
        late = [src for src in res if res[src] is None or res[src] - t_act > RESOLVE_WAIT]
        # Once resolved, it stays so. In Alertmanager "am" only once both
        # senders resolved it: the direct action's resolve comes first, and
        # Prometheus may re-send the still-firing alert (endsAt = now + 4 s)
        # until its next scrape and evaluation have seen the recovery; such
        # a re-appearance is reported below, not failed.
        relapse = []
        flap = []
        for src in res:
            if res[src] is None:
                continue
            since = max(res[src], res["amprom"] or res[src]) if src == "am" else res[src]
            g = gaps(src, x.resolved(src), since, t_end + 0.5)[0]
            if g:
                relapse.append(f"{src}: firing again at +{g[0] - T_START:.1f} s ({len(g)} samples) after it "
                               f"resolved at +{res[src] - T_START:.1f} s")
            if src == "am":
                flap = gaps(src, x.resolved(src), res[src], since)[0]
        check(x.t_action and not late and not relapse,
              f"{x.key}: resolved in Prometheus and in the three Alertmanagers after the {x.action}",
              *[f"{src}: still firing {RESOLVE_WAIT:.0f} s after the action" for src in late], *relapse)
        if flap:
            diag(f"{x.key}: in Alertmanager, resolved by the direct action at +{res['am'] - T_START:.1f} s and "
                 f"active again for {len(flap)} samples (Prometheus still sending it) until Prometheus resolved "
                 f"it at +{(res['amprom'] or res['prom'] or 0) - T_START:.1f} s")
        # delays
        t_state = first("states", lambda d: d.get((h.inst, x.agent)) == x.state, t_from)
        fire = [first(src, x.firing(src), t_from) for src in ALL]
        rows.append((x, t_state, fire, t_state_clear, [res[src] for src in ALL]))

    # how far ahead the direct action's endsAt reaches (it re-sends firing
    # alerts with endsAt, contract item 4); Alertmanager sets endsAt =
    # receipt + resolve_timeout (5 s) for an alert posted without one
    for x in (stale1, gone_pid, timeout1):
        ahead = []
        for t, d in history("direct", x.t_reg or T0, x.t_action or t_end):
            for a in agent_alerts(d, x.host, x.agent, x.alertname):
                e = parse_time(a["__ends"])
                if e:
                    ahead.append(e - t)
        if ahead:
            diag(f"{x.key} in the direct Alertmanager: endsAt {min(ahead):.1f} … {max(ahead):.1f} s ahead "
                 f"over {len(ahead)} samples while firing")

    # host down
    hd_prom = first("prom", lambda d: hostdown(d, B), t_stop)
    hd_am = first("am", lambda d: hostdown(d, B), t_stop)
    hd_amprom = first("amprom", lambda d: hostdown(d, B), t_stop)
    down_seen = first("up", lambda d: d.get(B.inst) == "0", t_stop)
    hd_labels = []
    for t, d in history("prom", t_stop):
        for a in hostdown(d, B):
            if a not in hd_labels:
                hd_labels.append(a)
    hd_good = (len(hd_labels) == 1 and hd_labels[0].get("instance") == B.inst and hd_labels[0].get("job") == "heartbeat"
               and hd_labels[0].get("severity") == "critical"
               and set(hd_labels[0]) <= {"alertname", "instance", "job", "hostname", "severity"})
    check(hd_prom is not None and hd_am is not None and hd_amprom is not None and hd_good,
          f"{B.name} stopped: HeartbeatHostDown{{instance={B.inst}, job=heartbeat, severity=critical"
          f"{', hostname=' + hd_labels[0]['hostname'] if hd_labels and 'hostname' in hd_labels[0] else ''}}} "
          f"fires in Prometheus and Alertmanager" +
          (f" ({hd_prom - t_stop:.1f} s and {hd_am - t_stop:.1f} s after the stop)" if hd_prom and hd_am else ""),
          f"Prometheus: {[fmt_labels(a) for a in hd_labels] or 'nothing'}; Alertmanager: "
          f"{'yes' if hd_am else 'nothing'} within {HOSTDOWN_WAIT:.0f} s",
          f"Prometheus saw up == 0: {'+%.1f s' % (down_seen - t_stop) if down_seen else 'never'}",
          f"alerts in Prometheus after the stop: {sorted({a.get('alertname') for t, d in history('prom', t_stop, t_restart) for a in d})}")
    problems = []
    for src in ("prom", "amprom", "am"):
        g, n = gaps(src, b_stale.firing(src), t_stop, t_restart)
        if g or not n:
            problems.append(f"{src}: missing at {len(g)} of {n} samples between the stop (+{t_stop - T_START:.1f} s) "
                            f"and the restart (+{t_restart - T_START:.1f} s), first at +{(g or [0])[0] - T_START:.1f} s")
    check(not problems, f"b-stale@{B.name}: stays firing in Prometheus and Alertmanager all the "
          f"{t_restart - t_stop:.1f} s its host is down", *problems)
    problems = []
    for src in ("prom", "amprom", "am"):
        g, n = gaps(src, b_stale.firing(src), t_restart, (b_stale.t_action or t_end) - 0.05)
        if g:
            problems.append(f"{src}: missing at {len(g)} of {n} samples, first at +{g[0] - T_START:.1f} s "
                            f"(restart at +{t_restart - T_START:.1f} s, up again at +{t_up_again - T_START:.1f} s)")
    check(not problems, f"b-stale@{B.name}: still firing after its heartbeatd started again, until the beat "
          f"({(b_stale.t_action or t_end) - t_restart:.1f} s)", *problems)
    hd_gone_prom = first("prom", lambda d: not hostdown(d, B), t_restart)
    hd_gone_am = first("am", lambda d: not hostdown(d, B), t_restart)
    check(hd_prom and hd_gone_prom and hd_gone_am and hd_gone_am - t_restart < RESOLVE_WAIT,
          f"{B.name} back: HeartbeatHostDown resolves in Prometheus and Alertmanager"
          + (f" ({hd_gone_prom - t_restart:.1f} s and {hd_gone_am - t_restart:.1f} s after the start)"
             if hd_gone_prom and hd_gone_am else ""),
          f"Prometheus: {'resolved' if hd_gone_prom else 'still firing'}, Alertmanager: {'resolved' if hd_gone_am else 'still active'}")
    wrong = []
    for src in ALL:
        for t, d in history(src, T0):
            for a in d:
                if (a.get("alertname") == "HeartbeatHostDown" and not of_host(a, B)
                        and not (of_host(a, C) and t >= t_stop_c)):
                    wrong.append(f"{src}: {fmt_labels(clean(a))} at +{t - T_START:.1f} s")
                if a.get("agent") == "b-ok":
                    wrong.append(f"{src}: {fmt_labels(clean(a))} at +{t - T_START:.1f} s")
    wrong = sorted(set(wrong))
    check(not wrong, "no false alerts: no host-down alert for fleet-a, none for fleet-c before it stopped, no "
          "alert for the healthy "
          "b-ok@fleet-b (also while its host was down)", *wrong[:10])
    # the same id on two hosts
    t_shared_a_gone = first("am", shared_a.resolved("am"), shared_a.t_action or t_end)
    shared_gaps = gaps("am", shared_c.firing("am"), t_shared_a_gone or t_end, (shared_c.t_action or t_end) - 0.05)[0]
    check(t_shared_a_gone and not shared_gaps and first("am", shared_c.firing("am"), T0),
          "the same agent id on two hosts: shared@fleet-a resolved in Alertmanager while shared@fleet-c, told "
          "apart by hostname, kept firing until its own unregistration",
          f"shared@fleet-a resolved in Alertmanager: "
          f"{'+%.1f s' % (t_shared_a_gone - T_START) if t_shared_a_gone else 'no'}; "
          f"shared@fleet-c fired there: {'yes' if first('am', shared_c.firing('am'), T0) else 'no'}; "
          f"then missing from +{(shared_gaps or [0])[0] - T_START:.1f} s ({len(shared_gaps)} samples) before its "
          f"unregistration at +{(shared_c.t_action or t_end) - T_START:.1f} s")
    # the replicas and the cluster, until phase 4 stopped p1 and am1
    problems = []
    for x in scns:
        if x is ha:
            continue
        for src, name in (("prom1", "Prometheus p1"), ("am1", "Alertmanager am1")):
            sets = []
            for t, d in history(src, x.t_reg or T0, min(x.t_action or t_ha, t_ha)):
                for a in agent_alerts(d, x.host, x.agent):
                    c = clean(a)
                    if c not in sets:
                        sets.append(c)
            if sets != [x.expected]:
                problems.append(f"{x.key}: {name} had {[fmt_labels(c) for c in sets] or 'nothing'}")
    check(not problems, "both replicas fire each of the seven agent alerts with the same labels (the replica label "
          "dropped by alert_relabel_configs), and both Alertmanagers of the cluster hold it", *problems)

    # heartbeatd's alertmanager=URL1 URL2 posts to both: an Alertmanager
    # that held an agent alert while neither Prometheus listed it as
    # firing yet (Prometheus lists an alert before it sends it) had it
    # from heartbeatd
    def before_prometheus(src, x):
        t = first(src, x.firing(src), x.t_reg or T0, min(x.t_action or t_ha, t_ha))
        if t is None:
            return False
        for p in ("prom", "prom1"):
            later = [u for u, d in history(p, t, min(x.t_action or t_ha, t_ha)) if not x.firing(p)(d)]
            if not later:
                return False
        return True
    direct_first = {src: [x.key for x in scns if x is not ha and before_prometheus(src, x)] for src in ("am1", "am")}
    check(direct_first["am1"] and direct_first["am"],
          f"heartbeatd's alertmanager= with two URLs posts to both: am1 held {len(direct_first['am1'])} and am2 "
          f"{len(direct_first['am'])} of the seven agent alerts before either Prometheus replica listed them as firing",
          f"am1: {direct_first['am1']}", f"am2: {direct_first['am']}")

    # one Prometheus and one Alertmanager down
    hd_c = [first(src, lambda d: hostdown(d, C), t_stop_c) for src in ("prom", "am")]
    hd_c_gone = [first(src, lambda d: not hostdown(d, C), t_restart_c) for src in ("prom", "am")]
    ha_fire = [first(src, ha.firing(src), ha.t_reg) for src in ALL]
    ha_res = [first(src, ha.resolved(src), ha.t_action or t_end) for src in ALL]
    n_ha, n_hdc = notified(x_match(ha)), notified(hd_match(C))
    check(rc_p1 is not None and rc_am1 is not None and None not in hd_c + hd_c_gone + ha_fire + ha_res
          and [(st, snd) for _, st, snd in n_ha] == [("firing", "am2"), ("resolved", "am2")]
          and [(st, snd) for _, st, snd in n_hdc] == [("firing", "am2"), ("resolved", "am2")],
          f"with Prometheus p1 (pid {pid_p1}) and Alertmanager am1 (pid {pid_am1}) stopped: ha-stale@{A.name} fires "
          f"and resolves in p2, prom-only, direct and am2, HeartbeatHostDown of {C.name} (stopped, started again) "
          f"in p2 and am2, and am2 notifies each, firing then resolved",
          f"exit codes: p1 {rc_p1}, am1 {rc_am1}",
          f"ha-stale fired (prom, amprom, direct, am): {['+%.1f' % (t - T_START) if t else 'no' for t in ha_fire]}, "
          f"resolved: {['+%.1f' % (t - T_START) if t else 'no' for t in ha_res]}",
          f"HeartbeatHostDown {C.name} fired (prom, am): {['+%.1f' % (t - T_START) if t else 'no' for t in hd_c]}, "
          f"resolved: {['+%.1f' % (t - T_START) if t else 'no' for t in hd_c_gone]}",
          f"notifications: ha-stale {[(st, snd) for _, st, snd in n_ha]}, host down {[(st, snd) for _, st, snd in n_hdc]}")

    # the notifications: one per change of each alert, whoever sent it
    with notif_lock:
        items = list(notifs)
    bad = []
    for t, d in items:
        alerts = d.get("alerts") or []
        labels = [a.get("labels") or {} for a in alerts]
        if (len(alerts) != 1 or d.get("status") not in ("firing", "resolved")
                or any("replica" in l for l in labels) or SENDER.get((d.get("externalURL") or "").rstrip("/")) is None):
            bad.append(f"+{t - T_START:.1f} s from {d.get('externalURL')}: {d.get('status')} "
                       f"{[fmt_labels(l) for l in labels]} (group {d.get('groupKey')})")
    by_sender = {}
    for t, d in items:
        k = SENDER.get((d.get("externalURL") or "").rstrip("/"), d.get("externalURL"))
        by_sender[k] = by_sender.get(k, 0) + 1
    check(items and not bad, f"{len(items)} notifications ({', '.join(f'{k}: {v}' for k, v in sorted(by_sender.items(), key=str))}) "
          "each carry one alert (its group: alertname, hostname, agent), without a replica label: the replicas' "
          "alerts and heartbeatd's are one alert in Alertmanager", *bad[:10])
    expected = [(x.key + " " + x.alertname, x_match(x)) for x in scns] + \
               [(f"HeartbeatHostDown {h.name}", hd_match(h)) for h in (B, C)]
    def spans(src, match):
        """When SRC held an alert that MATCH takes (+s), for the details."""
        res, since, labels = [], None, None
        for t, d in history(src, T0):
            hit = [clean(a) for a in d if match(a)]
            if hit and since is None:
                since, labels = t, hit
            elif not hit and since is not None:
                res.append(f"{since - T_START:.1f}…{t - T_START:.1f} {[fmt_labels(x) for x in labels]}")
                since = None
        if since is not None:
            res.append(f"{since - T_START:.1f}… {[fmt_labels(x) for x in labels]}")
        return "; ".join(res) or "never"

    wrong = []
    summary = []
    restated = []
    for key, match in expected:
        n = notified(match)
        seq = [st for _, st, _ in n]
        summary.append(f"{key}: {' '.join(f'{st[0].upper()}({snd})' for _, st, snd in n)}")
        twice = [i for i in range(1, len(seq)) if seq[i] == seq[i - 1]]
        if not seq or seq[0] != "firing" or seq[-1] != "resolved" or twice:
            wrong.append(f"{key}: {[(round(t - T_START, 1), st, snd) for t, st, snd in n] or 'never notified'}")
            wrong += [f"  {src} held it: {spans(src, match)}" for src in ("prom1", "prom", "am1", "am")]
        elif len(seq) > 2:
            restated.append(f"{key}: {[(round(t - T_START, 1), st, snd) for t, st, snd in n]}")
    others = []
    for t, d in items:
        for a in d.get("alerts") or []:
            if not any(m(a.get("labels") or {}) for _, m in expected):
                others.append(f"+{t - T_START:.1f} s {a.get('status')} {fmt_labels(a.get('labels') or {})}")
    last_pre = max([t for t, d in items if t < t_ha] or [t_ha])
    check(not wrong and not others,
          f"each alert is notified once per change: {len(expected)} alerts (the eight agent alerts, two hosts "
          f"down), each notified firing, then resolved, never the same status twice in a row (as one "
          f"notification per Prometheus replica or per Alertmanager would be); "
          f"{len(expected) - len(restated)} of them exactly once firing and once resolved (the last "
          f"notification before am1 stopped came {t_end - last_pre:.1f} s before the end; the peer timeout is "
          f"{PEER_TIMEOUT:g} s)", *wrong, *others[:10])
    if restated:
        diag("notified firing again after resolved, then resolved again (the second Alertmanager took its "
             "group's state just before a change that the first then notified: after its peer timeout it "
             "notifies that older state, which differs from the first's last notification, and the current "
             f"state one group_interval later): {'; '.join(restated)}")
    diag("notifications (F firing, R resolved, by which Alertmanager): " + "; ".join(summary))

    # in the end, nothing
    last = latest()
    leftovers = [f"{src}: {fmt_labels(clean(a))}" for src in ALL
                 for a in ((last or {"d": {}})["d"].get(src) or []) if a.get("alertname", "").startswith("Heartbeat")]
    check(last and not leftovers, "in the end no Heartbeat alert is left in Prometheus or any Alertmanager",
          *leftovers)

    # ------------------------------------------------------------ delays
    def d(a, b):
        return f"{b - a:6.2f}" if a is not None and b is not None else "     —"
    diag("")
    diag("delays in seconds. Firing: from the deadline (last activity + stale threshold, start + timeout")
    diag("threshold, the kill of the --pid process, the exit of the bind-to-caller client) to: state = the")
    diag("state in Prometheus (heartbeat_agent_state == 1); prom = the alert firing in Prometheus; am/p = in")
    diag("the Alertmanager fed by Prometheus only; am/d = in the one fed by heartbeatd's alertmanager= action")
    diag("only; am = in the one fed by both. Resolving: from the recovery action (beat, unregister, register")
    diag("again) to the state leaving Prometheus and the alert leaving each. Polled every 0.1 s.")
    diag(f"{'agent':22} {'action':18} | {'state':>6} {'prom':>6} {'am/p':>6} {'am/d':>6} {'am':>6} |"
         f" {'state':>6} {'prom':>6} {'am/p':>6} {'am/d':>6} {'am':>6}")
    med = {}
    for x, t_state, fire, t_clear, res in rows:
        diag(f"{x.key + ' ' + x.state:22.22} {x.action.replace('hbctl ', ''):18.18} | {d(x.deadline, t_state)} "
             + " ".join(d(x.deadline, f) for f in fire) + f" | {d(x.t_action, t_clear)} "
             + " ".join(d(x.t_action, r) for r in res))
        for k, a, b in (("deadline → Prometheus state", x.deadline, t_state),
                        ("deadline → Prometheus alert firing", x.deadline, fire[0]),
                        ("deadline → Alertmanager (via Prometheus)", x.deadline, fire[1]),
                        ("deadline → Alertmanager (direct action)", x.deadline, fire[2]),
                        ("deadline → Alertmanager (both)", x.deadline, fire[3]),
                        ("recovery → Prometheus state", x.t_action, t_clear),
                        ("recovery → Prometheus alert resolved", x.t_action, res[0]),
                        ("recovery → Alertmanager resolved (via Prometheus)", x.t_action, res[1]),
                        ("recovery → Alertmanager resolved (direct action)", x.t_action, res[2]),
                        ("recovery → Alertmanager resolved (both)", x.t_action, res[3])):
            if a is not None and b is not None:
                med.setdefault(k, []).append(b - a)
    diag(f"{'fleet-b stopped → HeartbeatHostDown':41} | up==0 {d(t_stop, down_seen)} prom {d(t_stop, hd_prom)} "
         f"am/p {d(t_stop, hd_amprom)} am {d(t_stop, hd_am)}")
    diag(f"{'fleet-b started → resolved':41} | up==1 {d(t_restart, t_up_again)} prom {d(t_restart, hd_gone_prom)} "
         f"am/p {d(t_restart, first('amprom', lambda d: not hostdown(d, B), t_restart))} am {d(t_restart, hd_gone_am)}")
    for k, v in med.items():
        diag(f"median {k}: {statistics.median(v):.2f} s (n={len(v)}, min {min(v):.2f}, max {max(v):.2f})")
    diag("")
    if FAILED:
        for h in hosts:
            diag(f"--- {h.log} (tail)")
            diag(tail(h.log, 15))
        for n in (1, 2):
            diag(f"--- prometheus-{n}.log (tail)\n{tail(os.path.join(prom_dirs[n], 'prometheus.log'), 8)}")
        for label in ("am1", "am2"):
            diag(f"--- alertmanager {label} (tail)\n"
                 f"{tail(os.path.join(WORK, f'alertmanager-{label}', 'alertmanager.log'), 5)}")
    for h in hosts:
        h.notify.close()
    hook.shutdown()
    hook.server_close()

    # ----------------------------------------------------------- teardown
    st = load_state(WORK)
    nslist = list(st.get("netns", []))
    links = list(st.get("links", []))
    pids = list(st.get("pids", []))
    left = final_teardown()
    left += [f"netns {ns}" for ns in nslist if os.path.exists(f"/run/netns/{ns}")]
    left += [f"link {l}" for l in links if os.path.exists(f"/sys/class/net/{l}")]
    left += [f"pid {p} ({n})" for p, s, n in pids if proc_start(p) == s]
    left += [WORK] if os.path.exists(WORK) else []
    check(not left, f"teardown by PID: {len(pids)} processes stopped, {len(nslist)} namespaces and the bridge "
          f"and veth pairs deleted, {WORK} removed", *sorted(set(left)))


try:
    main()
except SystemExit as e:
    if isinstance(e.code, int) and e.code >= 128:
        out(f"# interrupted (signal {e.code - 128})")
    raise
except BaseException:
    import traceback
    out("Bail out! the fleet test crashed")
    diag(traceback.format_exc())
    FAILED += 1
finally:
    left = final_teardown()
    if left:
        diag("teardown left: " + "; ".join(left))
if N:
    out(f"1..{N}")
    diag(f"run time {time.time() - T_START:.1f} s, {FAILED} of {N} checks failed")
sys.exit(1 if FAILED else 0)
