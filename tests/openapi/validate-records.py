#!/usr/bin/python3
"""Check heartbeatd's HTTP answers against its OpenAPI document.

    validate-records.py --document data/openapi/heartbeatd.yaml RECORDS...
    validate-records.py --document data/openapi/heartbeatd.yaml --check-document [--source src/daemon/hb-http.c]

RECORDS are JSON-lines files written by the HTTP tests (hb_http_record_answer()
and hb_http_record_event() in tests/integration/hb-harness.c):

    {"kind": "http", "method", "path", "status", "content_type", "body",
     "request_content_type", "request_body"}
    {"kind": "event", "event", "data"}

For every answer: the path and method name an operation of the document (or,
for a path or method that is none, the status is one of the document's
`x-unmatched-responses`); the status is one the operation documents; the
content type is one the response documents; a JSON body is valid against its
schema (an error body's code is the HTTP status); a response documented
with a JSON body has one unless the method was HEAD. For a 2xx answer, the
JSON request body that led to it is valid against the operation's request
schema. Every event of a /v1/events stream is valid against the schema of
its name (`x-events`).

--coverage lists the documented statuses and events no record has (run the
HTTP tests with $HB_HTTP_RECORDS_DIR set to keep their records there).

--check-document checks the document alone: every schema is valid JSON
Schema 2020-12, every $ref resolves, every GET has a HEAD, and the paths
and methods are exactly those src/daemon/hb-http.c routes.

Needs python3-jsonschema and python3-yaml (Debian). Exit status: 0 all
good, 1 something does not match, 2 usage or a missing module.
"""

import argparse
import json
import re
import sys

try:
    import yaml
    import jsonschema
    from jsonschema import Draft202012Validator
except ImportError as e:  # pragma: no cover
    print(f"validate-records.py: {e}: install the Debian packages python3-jsonschema and python3-yaml",
          file=sys.stderr)
    sys.exit(2)

METHODS = ("get", "head", "put", "post", "delete", "options", "patch", "trace")

# The endpoints hb-http.c routes by hand (after its fixed routes[] table).
DYNAMIC_ROUTES = {
    "/runs/{id}": {"get"},
    "/v1/agents/{id}": {"get", "put", "delete"},
    "/v1/agents/{id}/beat": {"post"},
    "/v1/agents/{id}/idle": {"post"},
    "/v1/agents/{id}/pause": {"post"},
    "/v1/agents/{id}/resume": {"post"},
    "/v1/agents/{id}/badge.svg": {"get"},
    "/v1/agents/{id}/history": {"get"},
    "/v1/agents/{id}/runs": {"get"},
    "/ping/{id}": {"get", "post"},
    "/ping/{first}/{second}": {"get", "post"},
    "/ping/{ping_key}/{slug}/{signal}": {"get", "post"},
}


class Document:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        self.resolver = jsonschema.RefResolver.from_schema(self.doc)
        self.validators = {}
        self.templates = []
        for template in self.doc.get("paths", {}):
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
            # literal paths before templates: /v1/agents before /v1/agents/{id}
            self.templates.append(("{" in template, template, re.compile(pattern)))
        self.templates.sort(key=lambda t: t[0])

    def resolve(self, node):
        while isinstance(node, dict) and "$ref" in node:
            _, node = self.resolver.resolve(node["$ref"])
        return node

    def validator(self, schema):
        key = json.dumps(schema, sort_keys=True)
        v = self.validators.get(key)
        if v is None:
            v = Draft202012Validator(schema, resolver=self.resolver)
            self.validators[key] = v
        return v

    def match(self, path):
        for _, template, pattern in self.templates:
            if pattern.match(path):
                return template
        return None


def errors_of(document, schema, value):
    v = document.validator(schema)
    return sorted(v.iter_errors(value), key=lambda e: list(e.absolute_path))


def describe(error):
    where = "/".join(str(p) for p in error.absolute_path) or "(the body)"
    return f"at {where}: {error.message}"


def excerpt(text, n=300):
    if text is None:
        return "(not read)"
    return text if len(text) <= n else text[:n] + "..."


def check_answer(document, r, seen=None):
    """Problems with one HTTP answer, as strings."""
    problems = []
    method = r["method"].lower()
    path = r["path"].split("?", 1)[0]
    status = str(r["status"])
    template = document.match(path)
    item = document.resolve(document.doc["paths"][template]) if template else None
    operation = item.get(method) if item else None
    if seen is not None and operation is not None:
        seen.add((method, template, status))

    if operation is not None:
        responses = operation.get("responses", {})
        where = f"{method.upper()} {template}"
    else:
        responses = document.doc.get("x-unmatched-responses", {})
        where = f"{method.upper()} {path} (no such operation)"
    if status not in responses:
        return [f"{where}: status {status} is not documented (documented: {', '.join(sorted(responses))})"]
    response = document.resolve(responses[status])
    content = response.get("content") or {}
    body = r.get("body")
    media = (r.get("content_type") or "").split(";", 1)[0].strip().lower()

    if body is None or body == "":
        # HEAD, 204, or a stream whose body was not read
        if body == "" and method != "head" and "application/json" in content:
            problems.append(f"{where} -> {status}: the document says a JSON body, and there is none")
        if media and content and media not in content and method != "head":
            problems.append(f"{where} -> {status}: content type {media} is not documented ({', '.join(content)})")
        return problems
    if not content:
        return [f"{where} -> {status}: a body ({media or 'no content type'}) where the document has none: "
                f"{excerpt(body)}"]
    if media not in content:
        return [f"{where} -> {status}: content type {media or '(none)'} is not documented ({', '.join(content)})"]
    if media != "application/json":
        return problems
    try:
        value = json.loads(body)
    except ValueError as e:
        return [f"{where} -> {status}: the body is not JSON ({e}): {excerpt(body)}"]
    schema = content[media].get("schema", {})
    for e in errors_of(document, schema, value):
        problems.append(f"{where} -> {status}: {describe(e)}; body: {excerpt(body)}")
    if isinstance(value, dict) and isinstance(value.get("error"), dict) and \
            value["error"].get("code") != r["status"]:
        problems.append(f"{where} -> {status}: the error's code is {value['error'].get('code')}")

    # the request body of an answer that took it
    request = r.get("request_body")
    if operation is not None and status.startswith("2") and request:
        request_media = (r.get("request_content_type") or "").split(";", 1)[0].strip().lower()
        body_doc = document.resolve(operation.get("requestBody", {}))
        request_content = body_doc.get("content", {})
        if not request_content:
            pass   # a body the operation ignores (POST .../idle)
        elif request_media not in request_content:
            problems.append(f"{where} -> {status}: accepted a request body of type {request_media}, "
                            f"not documented ({', '.join(request_content)})")
        elif request_media != "application/json":
            pass   # text (a ping's output): any
        else:
            try:
                value = json.loads(request)
            except ValueError:
                problems.append(f"{where} -> {status}: accepted a request body that is not JSON: {excerpt(request)}")
            else:
                for e in errors_of(document, request_content[request_media].get("schema", {}), value):
                    problems.append(f"{where} -> {status}: the accepted request body is not valid "
                                    f"against the document: {describe(e)}; request: {excerpt(request)}")
    return problems


def documented_events(document):
    stream = document.resolve(document.doc["paths"]["/v1/events"])["get"]["responses"]["200"]
    return document.resolve(stream)["content"]["text/event-stream"].get("x-events", {})


def check_event(document, r, seen=None):
    events = documented_events(document)
    name = r.get("event")
    if seen is not None:
        seen.add(("event", name))
    if name not in events:
        return [f"/v1/events: event '{name}' is not documented (documented: {', '.join(events)})"]
    try:
        value = json.loads(r.get("data") or "")
    except ValueError as e:
        return [f"/v1/events: the data of '{name}' is not JSON ({e}): {excerpt(r.get('data'))}"]
    return [f"/v1/events event '{name}': {describe(e)}; data: {excerpt(r.get('data'))}"
            for e in errors_of(document, events[name], value)]


def check_records(document, paths, coverage=False):
    n = {"http": 0, "event": 0}
    problems = []
    seen = set()
    for path in paths:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                except ValueError as e:
                    problems.append(f"{path}:{number}: not a record ({e}); not UTF-8?")
                    continue
                kind = r.get("kind")
                n[kind] = n.get(kind, 0) + 1
                found = check_answer(document, r, seen) if kind == "http" else check_event(document, r, seen)
                problems.extend(f"{path}:{number}: {p}" for p in found)
    for p in problems:
        print(p)
    if coverage:
        untested = []
        for template, item in document.doc.get("paths", {}).items():
            item = document.resolve(item)
            for method in METHODS:
                for status in item.get(method, {}).get("responses", {}) if method in item else ():
                    if (method, template, str(status)) not in seen:
                        untested.append(f"{method.upper()} {template} {status}")
        untested += [f"/v1/events event {name}" for name in documented_events(document) if ("event", name) not in seen]
        print(f"coverage: {len(untested)} documented answers never received:")
        for u in untested:
            print(f"  {u}")
    print(f"validate-records: {n['http']} answers and {n['event']} events checked against the OpenAPI "
          f"document; {len(problems)} problems")
    return 1 if problems else 0


def walk_refs(node, found):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.append(node["$ref"])
        for v in node.values():
            walk_refs(v, found)
    elif isinstance(node, list):
        for v in node:
            walk_refs(v, found)


def check_document(document, source):
    problems = []
    doc = document.doc
    if not str(doc.get("openapi", "")).startswith("3.1"):
        problems.append("the document is not OpenAPI 3.1 (its schemas are JSON Schema 2020-12)")
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            problems.append(f"components/schemas/{name}: {e.message}")
    stream = document.resolve(doc.get("paths", {}).get("/v1/events", {}).get("get", {}).get("responses", {}).get("200", {}))
    for name, schema in stream.get("content", {}).get("text/event-stream", {}).get("x-events", {}).items():
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            problems.append(f"/v1/events x-events/{name}: {e.message}")
    refs = []
    walk_refs(doc, refs)
    for ref in sorted(set(refs)):
        try:
            document.resolver.resolve(ref)
        except jsonschema.RefResolutionError as e:
            problems.append(f"$ref {ref} does not resolve: {e}")
    for template, item in doc.get("paths", {}).items():
        if "get" in item and "head" not in item:
            problems.append(f"{template}: GET without HEAD (HEAD is allowed wherever GET is)")

    if source:
        with open(source, encoding="utf-8") as f:
            text = f.read()
        table = re.search(r"routes\[\]\s*=\s*\{(.*?)\n\};", text, re.S)
        if table is None:
            problems.append(f"{source}: no routes[] table found")
        else:
            expected = {k: set(v) for k, v in DYNAMIC_ROUTES.items()}
            for path, method in re.findall(r'\{\s*"(/[^"]*)",\s*"([A-Z]+)"', table.group(1)):
                expected.setdefault(path, set()).add(method.lower())
            for path in expected:
                if "get" in expected[path]:
                    expected[path].add("head")
            documented = {p: {m for m in item if m in METHODS} for p, item in doc.get("paths", {}).items()}
            for path in sorted(set(expected) | set(documented)):
                want, have = expected.get(path, set()), documented.get(path, set())
                for m in sorted(want - have):
                    problems.append(f"{m.upper()} {path} is served by hb-http.c and not documented")
                for m in sorted(have - want):
                    problems.append(f"{m.upper()} {path} is documented and not served by hb-http.c")
    for p in problems:
        print(p)
    print(f"check-document: {len(doc.get('paths', {}))} paths, "
          f"{len(doc.get('components', {}).get('schemas', {}))} schemas; {len(problems)} problems")
    return 1 if problems else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--document", required=True)
    parser.add_argument("--check-document", action="store_true")
    parser.add_argument("--source", help="src/daemon/hb-http.c, to compare its routes with the document")
    parser.add_argument("--coverage", action="store_true",
                        help="list the documented answers and events that no record has")
    parser.add_argument("records", nargs="*")
    args = parser.parse_args()
    document = Document(args.document)
    status = 0
    if args.check_document:
        status |= check_document(document, args.source)
    if args.records:
        status |= check_records(document, args.records, args.coverage)
    elif not args.check_document:
        parser.error("nothing to check")
    return status


if __name__ == "__main__":
    sys.exit(main())
