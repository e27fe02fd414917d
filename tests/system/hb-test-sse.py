#!/usr/bin/python3
# tests/system/hb-test-sse.py N HOLD PORT: opens N event streams
# (GET /v1/events) to 127.0.0.1:PORT for the system tier, prints the HTTP
# status of each on one line ("200 200 ... 503"), then holds them open for
# HOLD seconds (or until killed) and exits. No proxies, 5 s timeout each.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
import socket
import sys
import time

n, hold, port = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
streams, codes = [], []
for _ in range(n):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        head = s.recv(64)
        codes.append(head.split(b" ")[1].decode() if head.startswith(b"HTTP/1.1 ") else "000")
        streams.append(s)
    except OSError:
        codes.append("000")
print(" ".join(codes), flush=True)
time.sleep(hold)
