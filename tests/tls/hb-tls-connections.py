#!/usr/bin/python3
# hb-tls-connections.py PORT CAFILE N: N connections to heartbeatd's HTTPS
# port on 127.0.0.1, one after the other, each one kept-alive request
# (GET /health) and then ended by the client: every other one with a TLS
# close_notify first (as curl and Go do), the others by closing the socket
# (as Python's ssl does without unwrap()). Exits 1 if an answer is not 200.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
import socket
import ssl
import sys

port, cafile, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
context = ssl.create_default_context(cafile=cafile)
request = ("GET /health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port).encode()
for i in range(n):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        # no 40 ms of Nagle and delayed ACK between the handshake and the request
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
        tls.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = tls.recv(4096)
            if not chunk:
                break
            answer += chunk
        if not answer.startswith(b"HTTP/1.1 200"):
            sys.exit("connection %d: %r" % (i, answer[:80]))
        if i % 2 == 0:
            try:
                tls.unwrap()
            except (OSError, ssl.SSLError):
                pass
        tls.close()
