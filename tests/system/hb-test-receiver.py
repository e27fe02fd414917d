#!/usr/bin/python3
# tests/system/hb-test-receiver.py ADDRESS PORT FILE: a webhook receiver for
# the system tier. Appends the JSON body of every POST to FILE (one line
# each, exactly as received) and answers 200; GET / answers 200 "ready".
# Runs in the "testhost" network namespace of the container, as a transient
# unit the test stops.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
import http.server
import sys

ADDRESS, PORT, FILE = sys.argv[1], int(sys.argv[2]), sys.argv[3]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        with open(FILE, "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"ready")

    def log_message(self, fmt, *args):
        sys.stderr.write("hb-test-receiver: " + (fmt % args) + "\n")


http.server.HTTPServer((ADDRESS, PORT), Handler).serve_forever()
