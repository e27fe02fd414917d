#!/usr/bin/python3
# tests/system/hb-test-http.py METHOD URL [-H 'Name: value']... [-d BODY]:
# one HTTP request for the system tier (no curl needed). Prints the
# response body, then a last line "CODE CONTENT-TYPE" (CODE 000 if there
# was no answer, with the reason on stderr). Exits 0 if there was an
# answer, whatever its code; 1 if not. No proxies, 5 s timeout.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
import sys
import urllib.error
import urllib.request

args = sys.argv[1:]
if len(args) < 2:
    sys.exit("usage: hb-test-http.py METHOD URL [-H 'Name: value']... [-d BODY]")
method, url, rest = args[0], args[1], args[2:]
headers, data = {}, None
while rest:
    opt, value, rest = rest[0], rest[1], rest[2:]
    if opt == "-H":
        name, _, v = value.partition(":")
        headers[name.strip()] = v.strip()
    elif opt == "-d":
        data = value.encode()
    else:
        sys.exit("unknown option " + opt)

opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
request = urllib.request.Request(url, data=data, headers=headers, method=method)
try:
    response = opener.open(request, timeout=5)
except urllib.error.HTTPError as e:
    response = e
except Exception as e:  # refused, unreachable, timed out
    print("hb-test-http: %s %s: %s" % (method, url, e), file=sys.stderr)
    print("000 -")
    sys.exit(1)
body = response.read()
sys.stdout.write(body.decode("utf-8", "replace"))
print("\n%d %s" % (response.status, response.headers.get("Content-Type", "-")))
