#!/usr/bin/python3
# tests/system/hb-test-tls-keepalive.py HOST PORT CAFILE TOKEN GOFILE: one
# HTTPS keep-alive connection (verified against CAFILE) for tls-checks.sh.
# GET /metrics with the bearer TOKEN, prints "first CODE FINGERPRINT
# LOCALPORT"; then waits (at most 20 s) until GOFILE exists and sends the
# same request on the same connection: "second CODE FINGERPRINT
# LOCALPORT". FINGERPRINT is the SHA-256 of the server's certificate as
# openssl prints it (AA:BB:...). Exits 1 with the reason on stderr if a
# request fails or GOFILE never comes.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
import hashlib
import http.client
import os
import ssl
import sys
import time

host, port, cafile, token, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
context = ssl.create_default_context(cafile=cafile)
conn = http.client.HTTPSConnection(host, port, context=context, timeout=5)


def get(label):
    conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + token})
    response = conn.getresponse()
    response.read()
    digest = hashlib.sha256(conn.sock.getpeercert(binary_form=True)).hexdigest().upper()
    fingerprint = ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
    print(label, response.status, fingerprint, conn.sock.getsockname()[1], flush=True)


try:
    get("first")
    deadline = time.monotonic() + 20
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            sys.exit("hb-test-tls-keepalive: no %s within 20 s" % go)
        time.sleep(0.05)
    get("second")
except (OSError, http.client.HTTPException) as e:
    sys.exit("hb-test-tls-keepalive: %r" % e)
