#!/usr/bin/env python3
"""diff_servers.py: differential check of two RCPX servers (e.g. the real rstmdb and rstmdb-testd).

Sends the same pseudo-random request stream (seeded) to both, one connection each, and prints
every response that differs after normalizing what may legitimately differ (UUIDs, timestamps,
snapshot checksums, read counters, LIST_INSTANCES order). Three watcher connections per server
(WATCH_ALL with different filters) must then have received the same events in the same order.
Start both servers empty. Usage: diff_servers.py HOST:PORT HOST:PORT [SEED] [COUNT] [mutate]
("mutate" adds malformed params and the session and watch ops, to compare error texts).
Read-only towards the project: a manual tool, not part of ctest (CI has no real server).
"""
import json, random, re, socket, struct, sys

def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c ^= x
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF

def frame(payload):
    return b"RCPX" + struct.pack(">HHHII", 1, 1, 0, len(payload), crc32c(payload)) + payload

def recv_frame(s):
    h = b""
    try:
        while len(h) < 18:
            d = s.recv(18 - len(h))
            if not d:
                return "CLOSED"
            h += d
        n = struct.unpack(">I", h[10:14])[0]
        p = b""
        while len(p) < n:
            d = s.recv(n - len(p))
            if not d:
                return "CLOSED"
            p += d
    except OSError as e:
        return "ERR %s" % e
    return p.decode()

def addr(a):
    h, p = a.rsplit(":", 1)
    return (h, int(p))

def norm(s):
    s = re.sub(r'[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}', 'UUID', s)
    s = re.sub(r'"(created_at|updated_at)": ?\d+', r'"\1":TS', s)
    s = re.sub(r'"checksum":"[0-9a-f]{8}","instance_id"', '"checksum":"CK","instance_id"', s)
    s = re.sub(r'"(bytes_read|reads)":\d+', r'"\1":N', s)
    return s

def main():
    A, B = addr(sys.argv[1]), addr(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 500
    mutate = len(sys.argv) > 5 and sys.argv[5] == "mutate"
    rnd = random.Random(seed)
    conns = [socket.create_connection(A, timeout=5), socket.create_connection(B, timeout=5)]

    side_events = ([], [])  # events pushed on the request connections (WATCH_INSTANCE there)

    def call(js):
        out = []
        for i, s in enumerate(conns):
            s.sendall(frame(js.encode()))
            r = recv_frame(s)
            while r.startswith('{"type":"event"'):
                side_events[i].append(norm(r))
                r = recv_frame(s)
            out.append(r)
        for i, r in enumerate(out):
            if r == "CLOSED" or r.startswith("ERR"):
                conns[i] = socket.create_connection((A, B)[i], timeout=5)
        return out

    watches = ['{}', '{"include_ctx":false,"machines":["m1",""],"events":["GO","SET"]}',
               '{"from_states":["a"],"to_states":["b","c"]}']
    watchers = []
    for q in watches:
        pair = []
        for a in (A, B):
            w = socket.create_connection(a, timeout=5)
            w.sendall(frame(('{"type":"request","id":"w","op":"WATCH_ALL","params":%s}' % q).encode()))
            recv_frame(w)
            pair.append(w)
        watchers.append(pair)

    S = ["a", "b", "c"]
    M = ["m1", "m2", ""]
    E = ["GO", "BACK", "SET", "X", "go"]
    G = ["ctx.n > 1", "ctx.ok", "!ctx.ok", 'ctx.s == "x"', "ctx.n >= 2 && ctx.ok", "ctx.a.b", "ctx.n != null"]
    V = [0, 1, -1, 1.5, 1e300, "x", "", None, True, False, [], [1, 2], {}, {"b": 1, "a": {"d": 1, "c": 2}},
         12345678901234567890, -0.0, 0.1]
    D = {"states": S, "initial": "a", "transitions": [
        {"from": S, "event": "GO", "to": "b"}, {"from": ["b"], "event": "SET", "to": "c"},
        {"from": ["c", "a"], "event": "BACK", "to": "a", "guard": "ctx.n != 5"},
        {"from": "b", "event": "X", "to": "a", "guard": "ctx.ok || ctx.n > 1"}]}
    ids = []
    for m in M:
        call(json.dumps({"type": "request", "id": "p", "op": "PUT_MACHINE",
                         "params": {"machine": m, "version": 1, "definition": D}}))
        for i in ["i1", "i2", "i3", ""]:
            ids.append(i + m)
            call(json.dumps({"type": "request", "id": "c", "op": "CREATE_INSTANCE",
                             "params": {"instance_id": i + m, "machine": m, "version": 1, "initial_ctx": {"n": 1}}}))

    def val():
        return rnd.choice(V)

    def obj():
        return {rnd.choice(["n", "ok", "s", "a", "z", "\u00e9"]): val() for _ in range(rnd.randint(0, 3))}

    def definition():
        tr = []
        for _ in range(rnd.randint(0, 4)):
            t = {"from": rnd.choice([rnd.choice(S), [rnd.choice(S)], []]), "event": rnd.choice(E), "to": rnd.choice(S)}
            if rnd.random() < 0.4:
                t["guard"] = rnd.choice(G)
            tr.append(t)
        d = {"states": rnd.sample(S, rnd.randint(1, 3)), "initial": rnd.choice(S), "transitions": tr}
        if rnd.random() < 0.3:
            d["meta"] = obj()
        return d

    def params(op):
        r = rnd.random
        if op == "PUT_MACHINE":
            return {"machine": rnd.choice(M + ["m3"]), "version": rnd.choice([0, 2]), "definition": definition()}
        if op == "GET_MACHINE":
            return {"machine": rnd.choice(M), "version": rnd.choice([0, 1, 2])}
        if op == "CREATE_INSTANCE":
            p = {"instance_id": rnd.choice(ids + ["n1", "n2"]), "machine": rnd.choice(M), "version": rnd.choice([0, 1, 2])}
            if r() < 0.7:
                p["initial_ctx"] = rnd.choice([obj(), val()])
            return p
        if op == "APPLY_EVENT":
            p = {"instance_id": rnd.choice(ids), "event": rnd.choice(E)}
            if r() < 0.6:
                p["payload"] = rnd.choice([obj(), val()])
            if r() < 0.2:
                p["expected_state"] = rnd.choice(S)
            if r() < 0.2:
                p["idempotency_key"] = rnd.choice(["k1", "k2"])
            if r() < 0.2:
                p["event_id"] = rnd.choice(["e1", "e2"])
            return p
        if op in ("GET_INSTANCE", "DELETE_INSTANCE", "SNAPSHOT_INSTANCE"):
            return {"instance_id": rnd.choice(ids + ["nope"])}
        if op == "LIST_INSTANCES":
            p = {}
            if r() < 0.5:
                p["machine"] = rnd.choice(M)
            if r() < 0.3:
                p["state"] = rnd.choice(S)
            return p
        if op == "WAL_READ":
            return {"from_offset": rnd.choice([0, 1099511627776, 1099511628000]), "limit": rnd.choice([0, 1, 3])}
        if op == "HELLO":
            return {"protocol_version": 1, "wire_modes": ["binary_json"], "features": ["batch"]}
        if op == "AUTH":
            return {"method": "bearer", "token": "t"}
        if op == "WATCH_INSTANCE":
            return {"instance_id": rnd.choice(ids), "include_ctx": False, "from_offset": 0}
        if op == "WATCH_ALL":
            return {"machines": ["nothing-matches"]}
        if op == "UNWATCH":
            return {"subscription_id": "sub-x"}
        if op == "COMPACT":
            return {"force_snapshot": rnd.choice([True, False])}
        if op == "BATCH":
            pool = ["CREATE_INSTANCE", "APPLY_EVENT", "GET_INSTANCE", "DELETE_INSTANCE", "PING"]
            if mutate:
                pool += ["HELLO", "AUTH", "WATCH_INSTANCE", "UNWATCH", "GET_MACHINE", "WAL_READ", "LIST_INSTANCES"]
            inner = rnd.choices(pool, k=rnd.randint(0, 3))
            items = []
            for o in inner:
                ip = params(o)
                if mutate and rnd.random() < 0.3:
                    ip = mutated(ip)
                items.append({"op": o, "params": ip})
            return {"mode": rnd.choice(["atomic", "best_effort"]), "ops": items}
        return None

    def mutated(p):
        """Malformed params: a key dropped, a value of another type, positional, or a scalar."""
        k = rnd.random()
        if isinstance(p, dict) and p and k < 0.4:
            q = dict(p)
            key = rnd.choice(sorted(q))
            if rnd.random() < 0.5:
                del q[key]
            else:
                q[key] = val()
            return q
        if isinstance(p, dict) and k < 0.6:
            return list(p.values())
        return val()

    ops = ["PUT_MACHINE", "GET_MACHINE", "CREATE_INSTANCE"] + ["APPLY_EVENT"] * 5 + [
        "GET_INSTANCE", "LIST_INSTANCES", "DELETE_INSTANCE", "WAL_READ", "WAL_STATS", "LIST_MACHINES", "BATCH",
        "SNAPSHOT_INSTANCE"]
    if mutate:
        ops += ["HELLO", "AUTH", "WATCH_INSTANCE", "WATCH_ALL", "UNWATCH", "COMPACT", "PING", "INFO"]
    diffs = 0
    for n in range(count):
        op = rnd.choice(ops)
        req = {"type": "request", "id": str(n), "op": op}
        p = params(op)
        if mutate and rnd.random() < 0.3:
            p = mutated(p)
        if p is not None or (mutate and rnd.random() < 0.5):
            req["params"] = p
        js = json.dumps(req, separators=(",", ":"), ensure_ascii=False)
        ra, rb = call(js)
        if op == "LIST_INSTANCES":  # order unspecified
            try:
                ja, jb = json.loads(ra), json.loads(rb)
                for j in (ja, jb):
                    j["result"]["instances"].sort(key=lambda x: (norm(x["id"]), x["last_wal_offset"]))
                ra, rb = json.dumps(ja), json.dumps(jb)
            except (ValueError, KeyError):
                pass
        if norm(ra) != norm(rb):
            diffs += 1
            print("DIFF", js[:300])
            print("  A:", norm(ra)[:500])
            print("  B:", norm(rb)[:500])
    for wa, wb in watchers:
        ev = []
        for w in (wa, wb):
            w.settimeout(1.5)
            got = []
            while True:
                r = recv_frame(w)
                if r == "CLOSED" or r.startswith("ERR"):
                    break
                got.append(norm(r))
            ev.append(got)
        if ev[0] != ev[1]:
            diffs += 1
            print("EVENTS DIFFER: %d vs %d" % (len(ev[0]), len(ev[1])))
            for x, y in zip(ev[0], ev[1]):
                if x != y:
                    print("  A:", x[:500])
                    print("  B:", y[:500])
                    break
        else:
            print("events: %d identical" % len(ev[0]))
    for i, c in enumerate(conns):  # events still in flight
        c.settimeout(1.5)
        while True:
            r = recv_frame(c)
            if not r.startswith('{"type":"event"'):
                break
            side_events[i].append(norm(r))
    # Several subscriptions on one connection: their interleaving is unspecified.
    if sorted(side_events[0]) != sorted(side_events[1]):
        diffs += 1
        print("EVENTS ON THE REQUEST CONNECTION DIFFER: %d vs %d" % (len(side_events[0]), len(side_events[1])))
        from collections import Counter
        ca, cb = Counter(side_events[0]), Counter(side_events[1])
        for x in list((ca - cb).keys())[:2]:
            print("  more in A (%d vs %d): %s" % (ca[x], cb[x], x[:400]))
        for y in list((cb - ca).keys())[:2]:
            print("  more in B (%d vs %d): %s" % (cb[y], ca[y], y[:400]))
    elif side_events[0]:
        print("events on the request connection: %d identical" % len(side_events[0]))
    print("requests %d, differences %d" % (count, diffs))
    return 1 if diffs else 0

if __name__ == "__main__":
    sys.exit(main())
