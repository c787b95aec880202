#!/usr/bin/env python3
"""check_responses.py: every response the proxy's integration tests received,
validated against the OpenAPI document the proxy serves.

The tests (tests/integration/proxy/phelp.c) append each response to
RECORDS/<pid>.jsonl. For each one this checks, with a real JSON Schema
validator (python3-jsonschema, Draft 2020-12 as OpenAPI 3.1 uses):

- the route (method + path) is documented, or the answer is the proxy-wide
  404 / 405 / 401 problem for an unknown route or method;
- the status is declared for that operation (no "default" catch-all);
- the Content-Type is one the status declares, and the body validates against
  its schema: JSON results, problem+json (whose code must be in ErrorCode),
  and each event of a text/event-stream against SseEvent / SseError;
- every header the response declares as required is present and matches.

It also validates every example in the document against its schema, and
fails when a documented operation received no response at all (a route no
test exercises is a route whose document nobody checked).

    check_responses.py --proxy build/rstmdb-proxy --records DIR
"""
import argparse
import collections
import glob
import json
import os
import re
import subprocess
import sys

try:
    import jsonschema
except ImportError:  # pragma: no cover - scripts/deps installs it
    sys.exit("check_responses.py: python3-jsonschema is missing (scripts/deps installs it)")

DOC_URI = "urn:rstmdb-proxy:openapi"
LOCAL_ANSWERS = {401, 404, 405}  # any path: auth before routing, unknown route, wrong method


def pointer(*parts):
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class Validator:
    """Validates an instance against the schema at a JSON pointer of the doc,
    so that its internal $refs resolve within the document."""

    def __init__(self, doc):
        self.doc = doc
        cls = jsonschema.validators.Draft202012Validator
        try:
            import referencing
            import referencing.jsonschema

            res = referencing.Resource.from_contents(
                doc, default_specification=referencing.jsonschema.DRAFT202012
            )
            registry = referencing.Registry().with_resource(DOC_URI, res)
            self.make = lambda ptr: cls({"$ref": DOC_URI + ptr}, registry=registry)
        except ImportError:  # jsonschema < 4.18 (Debian 12 ships 4.10)
            resolver = jsonschema.RefResolver(DOC_URI, doc, store={DOC_URI: doc})
            self.make = lambda ptr: cls({"$ref": DOC_URI + ptr}, resolver=resolver)
        self.cache = {}

    def errors(self, ptr, instance):
        v = self.cache.get(ptr)
        if v is None:
            v = self.cache[ptr] = self.make(ptr)
        return [
            "%s at %s" % (e.message[:300], "/".join(str(p) for p in e.absolute_path) or "(root)")
            for e in v.iter_errors(instance)
        ]


def resolve(doc, node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = doc
        for p in ref[2:].split("/"):
            node = node[p.replace("~1", "/").replace("~0", "~")]
    return node


def parse_headers(raw):
    """The last header block (curl may report several) as {lowercase: value}."""
    blocks = [b for b in re.split(r"\r?\n\r?\n", raw) if b.strip()]
    out = {}
    if not blocks:
        return out
    for line in blocks[-1].splitlines()[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip().lower()] = v.strip()
    return out


def sse_events(text):
    """Complete events of an SSE body: (event type, data, id)."""
    events = []
    for block in re.split(r"\r\n\r\n|\n\n|\r\r", text)[:-1]:  # the last is incomplete
        etype, data, eid = "message", [], None
        for line in re.split(r"\r\n|\n|\r", block):
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                etype = value
            elif field == "data":
                data.append(value)
            elif field == "id":
                eid = value
        if data:
            events.append((etype, "\n".join(data), eid))
    return events


class Checker:
    def __init__(self, doc):
        self.doc = doc
        self.v = Validator(doc)
        self.failures = []
        self.seen = collections.Counter()
        self.templates = []
        for path in doc["paths"]:
            segs = path.strip("/").split("/")
            rx = "^/" + "/".join("[^/]+" if s.startswith("{") else re.escape(s) for s in segs) + "$"
            literal = sum(not s.startswith("{") for s in segs)
            self.templates.append((re.compile(rx), literal, path))
        self.templates.sort(key=lambda t: -t[1])
        codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
        self.codes = set(codes)

    def fail(self, rec, why):
        self.failures.append("%s %s -> %s: %s" % (rec["method"], rec["path"], rec["status"], why))

    def find_op(self, method, path):
        for rx, _, tpl in self.templates:
            if rx.match(path):
                item = self.doc["paths"][tpl]
                m = "get" if method == "HEAD" else method.lower()
                return tpl, m, item.get(m)
        return None, None, None

    def check_problem(self, rec, body, ptr):
        try:
            j = json.loads(body)
        except ValueError as e:
            return self.fail(rec, "problem body is not JSON: %s: %r" % (e, body[:200]))
        for e in self.v.errors(ptr, j):
            self.fail(rec, "problem: " + e)
        if isinstance(j, dict):
            if j.get("code") not in self.codes:
                self.fail(rec, "problem code %r is not in ErrorCode" % j.get("code"))
            if j.get("status") != rec["status"]:
                self.fail(rec, "problem status %r differs from the HTTP status" % j.get("status"))

    def check(self, rec):
        method, status = rec["method"], rec["status"]
        path = rec["path"].split("?", 1)[0]
        hdrs = parse_headers(rec.get("headers", ""))
        body = rec.get("body", "")
        if method == "OPTIONS":
            if status == 204:
                return
            if status not in LOCAL_ANSWERS:
                return self.fail(rec, "OPTIONS answered %d" % status)
        tpl, m, op = self.find_op(method, path)
        if op is None or method == "OPTIONS":
            if status not in LOCAL_ANSWERS:
                return self.fail(rec, "route not in the document (%s)" % (tpl or "no path"))
            if status == 405 and "allow" not in hdrs:
                self.fail(rec, "405 without Allow")
            self.seen["(undocumented route) %d" % status] += 1
            if method != "HEAD":
                self.check_problem(rec, body, pointer("components", "schemas", "Problem"))
            return
        self.seen["%s %s %d" % (m, tpl, status)] += 1
        resp = op["responses"].get(str(status))
        if resp is None:
            return self.fail(rec, "status %d not declared for %s %s" % (status, m, tpl))
        resp = resolve(self.doc, resp)
        for name, h in (resp.get("headers") or {}).items():
            h = resolve(self.doc, h)
            value = hdrs.get(name.lower())
            if value is None:
                if h.get("required"):
                    self.fail(rec, "required header %s missing" % name)
                continue
            pat = (h.get("schema") or {}).get("pattern")
            if pat and not re.search(pat, value):
                self.fail(rec, "header %s: %r does not match %s" % (name, value, pat))
        content = resp.get("content") or {}
        if method == "HEAD" or not content:
            return
        ctype = hdrs.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype not in content:
            return self.fail(rec, "Content-Type %r, declared: %s" % (ctype, ", ".join(content)))
        if ctype == "application/problem+json":
            ref = content[ctype]["schema"]["$ref"]
            return self.check_problem(rec, body, "#" + ref[1:])
        if ctype == "application/json":
            try:
                j = json.loads(body)
            except ValueError as e:
                return self.fail(rec, "body is not JSON: %s: %r" % (e, body[:200]))
            ptr = pointer("paths", tpl, m, "responses", status, "content", ctype, "schema")
            if "$ref" in op["responses"][str(status)]:
                ptr = op["responses"][str(status)]["$ref"] + "/content/" + ctype.replace("/", "~1") + "/schema"
            for e in self.v.errors(ptr, j):
                self.fail(rec, e)
        elif ctype == "text/event-stream":
            if not body.startswith("retry: "):
                self.fail(rec, "stream does not open with retry:")
            kinds = content[ctype].get("x-sse-events", {})
            for etype, data, eid in sse_events(body):
                sch = kinds.get(etype)
                if sch is None:
                    self.fail(rec, "event type %r is not declared" % etype)
                    continue
                try:
                    j = json.loads(data)
                except ValueError as e:
                    self.fail(rec, "event data is not JSON: %s" % e)
                    continue
                self.seen["  %s events" % etype] += 1
                for e in self.v.errors("#" + sch["$ref"][1:], j):
                    self.fail(rec, "event %s: %s" % (etype, e))
                if etype == "error" and isinstance(j, dict) and j.get("code") not in self.codes:
                    self.fail(rec, "event error code %r is not in ErrorCode" % j.get("code"))
                if etype == "message" and (eid is None or str(j.get("wal_offset")) != eid):
                    self.fail(rec, "event id %r is not its wal_offset" % eid)

    def check_examples(self):
        """Examples in the document validate against their schemas."""
        n = 0
        for tpl, item in self.doc["paths"].items():
            for m, op in item.items():
                where = [("requestBody",), ] + [("responses", s) for s in op.get("responses", {})]
                for w in where:
                    node = op
                    for k in w:
                        node = node.get(k, {})
                    node = resolve(self.doc, node)
                    for ctype, media in (node.get("content") or {}).items():
                        if "example" not in media:
                            continue
                        n += 1
                        ptr = pointer("paths", tpl, m, *w, "content", ctype, "schema")
                        for e in self.v.errors(ptr, media["example"]):
                            self.failures.append("example of %s %s %s: %s" % (m, tpl, "/".join(w), e))
        return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proxy", required=True, help="rstmdb-proxy binary (prints the document with --openapi)")
    ap.add_argument("--records", required=True, help="directory of <pid>.jsonl files")
    a = ap.parse_args()
    doc = json.loads(subprocess.run([a.proxy, "--openapi"], check=True, capture_output=True).stdout)
    c = Checker(doc)
    nex = c.check_examples()
    files = sorted(glob.glob(os.path.join(a.records, "*.jsonl")))
    n = 0
    for f in files:
        with open(f, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.strip():
                    c.check(json.loads(line))
                    n += 1
    if n == 0:
        c.failures.append("no recorded responses in %s: did the proxy tests run with RSTMDB_OPENAPI_RECORD?" % a.records)
    ops = {"%s %s" % (m, tpl) for tpl, item in doc["paths"].items() for m in item}
    hit = {k.rsplit(" ", 1)[0] for k in c.seen if not k.startswith(("(", " "))}
    for missing in sorted(ops - hit):
        c.failures.append("no test received any response of %s" % missing)
    print("check_responses: %d responses from %d files, %d examples, against %d operations" % (n, len(files), nex, len(ops)))
    for k in sorted(c.seen):
        print("  %6d  %s" % (c.seen[k], k))
    if c.failures:
        print("\n%d FAILURES:" % len(c.failures))
        for f in c.failures[:200]:
            print("  " + f)
        return 1
    print("all responses match the document")
    return 0


if __name__ == "__main__":
    sys.exit(main())
