#!/usr/bin/env python3
"""bench/table.py: turns bench/run's raw key=value lines into its one table
(markdown). Per cell, the median over the interleaved rounds of each figure
taken separately. It only formats: it measures nothing and judges nothing
beyond printing each goal next to its figure."""
import statistics
import sys


def load(path):
    rows = {}
    for line in open(path):
        kv = dict(p.split("=", 1) for p in line.split() if "=" in p)
        rows.setdefault(kv["tag"], []).append(kv)
    return rows


def med(rows, tag, key):
    vals = [float(r[key]) for r in rows.get(tag, []) if key in r and "failed" not in r]
    return statistics.median(vals) if vals else None


def f(v, fmt="{:.0f}"):
    return "—" if v is None else fmt.format(v)


def one(rows, tag):
    r = rows.get(tag, [{}])[0]
    return r if "opened" in r and "failed=1" not in r else None


def med_of(rows, tag, fn):
    """Median over the rounds of a figure derived from each row."""
    vals = []
    for r in rows.get(tag, []):
        try:
            vals.append(fn(r))
        except (KeyError, ValueError, ZeroDivisionError):
            pass
    return statistics.median(vals) if vals else None


def cpu_per_stream(r):
    return float(r["proxy_cpu_ms_per_event"]) * 1000 / int(r["opened"])


def sse_pair(out, goals, rows, ptag, ftag, limit, want_n):
    """One event to N streams: proxy and floor side by side, as ratios of
    the medians over the rounds."""
    n = int(one(rows, ptag)["opened"])
    rounds = len(rows.get(ptag, []))
    pcpu, fcpu = med_of(rows, ptag, cpu_per_stream), med_of(rows, ftag, cpu_per_stream)
    pmax = med_of(rows, ptag, lambda r: float(r["fan_mean_max_ms"]))
    fmax = med_of(rows, ftag, lambda r: float(r["fan_mean_max_ms"]))
    p50 = med_of(rows, ptag, lambda r: float(r["fan_p50_ms"]))
    p99 = med_of(rows, ptag, lambda r: float(r["fan_p99_ms"]))
    missed = sum(int(r.get("missed", 0)) for r in rows.get(ptag, []))
    out.append(f"| 4 | one event → {n} streams: CPU per stream ({rounds} rounds) | {n} | | | | "
               f"{pcpu:.1f} | floor {fcpu:.1f} µs: **{pcpu / fcpu:.2f}×** the floor |")
    out.append(f"| 4 | one event → {n} streams: until the last has it | {n} | | "
               f"{p50:.1f} ms | {p99:.1f} ms | | per-event max {pmax:.1f} ms, floor {fmax:.1f} ms: "
               f"**{pmax / fmax:.2f}×** the floor; missed {missed} |")
    judged = n >= want_n
    tail = "" if judged else f" (at {n} streams, not the {want_n} the goal names)"
    goals.append((f"fan-out CPU per stream ≤ {limit}× the floor ({want_n} streams)",
                  f"{pcpu / fcpu:.2f}×{tail}", pcpu / fcpu <= limit and judged))
    goals.append((f"fan-out time to the last stream ≤ {limit}× the floor ({want_n} streams)",
                  f"{pmax / fmax:.2f}×{tail}", pmax / fmax <= limit and judged))


def sse_table(rows, out, goals):
    for c in (1, 64):
        tag, base = f"proxy_ping_sse_c{c}", f"proxy_ping_nosse_c{c}"
        rps, plain = med(rows, tag, "rps"), med(rows, base, "rps")
        cpu, pcpu = med(rows, tag, "cpu_us_per_req"), med(rows, base, "cpu_us_per_req")
        out.append(f"| 4 | proxy GET /v1/ping, a second proxy with no stream | {c} | {f(plain)} | "
                   f"{f(med(rows, base, 'p50_us'))} µs | {f(med(rows, base, 'p99_us'))} µs | "
                   f"{f(pcpu, '{:.1f}')} | |")
        cmp = ""
        if rps and plain and cpu and pcpu:
            cmp = f"req/s {rps / plain:.2f}×, CPU {cpu / pcpu:.2f}× the same without streams"
            if c == 64:
                goals.append(("REST beside 10,000 idle streams: CPU per ping ≤ 1.1×",
                              f"{cpu / pcpu:.2f}×", cpu / pcpu <= 1.1))
                goals.append(("REST beside 10,000 idle streams: req/s ≥ 0.9×",
                              f"{rps / plain:.2f}×", rps / plain >= 0.9))
        out.append(f"| 4 | proxy GET /v1/ping beside the idle SSE streams | {c} | {f(rps)} | "
                   f"{f(med(rows, tag, 'p50_us'))} µs | {f(med(rows, tag, 'p99_us'))} µs | "
                   f"{f(cpu, '{:.1f}')} | {cmp} |")
        q = f"proxy_ping_quiet_c{c}"
        qrps, qcpu = med(rows, q, "rps"), med(rows, q, "cpu_us_per_req")
        qcmp = (f"req/s {qrps / plain:.2f}×, CPU {qcpu / pcpu:.2f}× the same without streams"
                if qrps and plain and qcpu and pcpu else "")
        out.append(f"| 4 | the same, heartbeats out of the window (sse_heartbeat_ms=600000) | {c} | "
                   f"{f(qrps)} | {f(med(rows, q, 'p50_us'))} µs | {f(med(rows, q, 'p99_us'))} µs | "
                   f"{f(qcpu, '{:.1f}')} | {qcmp} |")
    s, fl = one(rows, "sse"), one(rows, "floor")
    if s is None:
        out.append("| 4 | SSE | — | | | | | did not run (see the messages above) |")
        return
    n = int(s["opened"])
    per = float(s["rss_per_stream_b"])
    lin = med_of(rows, "sse", lambda r: float(r["open_cpu_h2_s"]) / float(r["open_cpu_h1_s"]))
    open_us = med_of(rows, "sse", lambda r: float(r["open_cpu_s"]) * 1e6 / int(r["opened"]))
    out.append(f"| 4 | SSE GET /v1/watch: idle streams open | {n} of {s['streams']} | | | | "
               f"{open_us:.0f} per open | RSS {per:.0f} B per stream "
               f"({s['rss0_kb']} → {s['rss1_kb']} KiB, a fresh process); opened in {s['open_s']} s; "
               f"second half {lin:.2f}× the first (medians) |")
    goals.append((f"opening {n} streams ≤ 100 µs proxy CPU each", f"{open_us:.0f} µs",
                  open_us <= 100))
    goals.append(("opening is linear: second half ≤ 1.2× the first", f"{lin:.2f}×", lin <= 1.2))
    if fl is not None:
        sse_pair(out, goals, rows, "sse", "floor", 1.3, 10000)
    b, fb = one(rows, "sse_big"), one(rows, "floor_big")
    if b is not None:
        nb = int(b["opened"])
        perb = float(b["rss_per_stream_b"])
        out.append(f"| 4 | SSE: idle streams open (4 source addresses) | {nb} of {b['streams']} | | "
                   f"| | | RSS {perb:.0f} B per stream ({b['rss0_kb']} → {b['rss1_kb']} KiB) |")
        out.append(f"| 4 | kernel TCP memory with them (/proc/net/sockstat) | {nb} | | | | | "
                   f"{b['tcp_inuse']} TCP sockets in use, {b['tcp_mem_kb']} KiB "
                   f"(before: {b['tcp_mem0_kb']} KiB) |")
        tail = "" if nb >= 100000 else f" (at {nb} streams: the descriptor limit)"
        goals.append(("≤ 2 KiB proxy RSS per stream (100,000 streams)", f"{perb:.0f} B{tail}",
                      perb <= 2048 and nb >= 100000))
        if fb is not None:
            sse_pair(out, goals, rows, "sse_big", "floor_big", 1.5, 100000)
    else:
        goals.append(("≤ 2 KiB proxy RSS per stream (100,000 streams)", f"{per:.0f} B at {n}",
                      False))


def request_path_table(rows, out, goals):
    """Issue #12: the proxy's CPU per request against bare libmicrohttpd's,
    the serial limit at c=1, allocations and instructions per request."""
    bare_cpu = med(rows, "bare_ping_c64", "cpu_us_per_req")
    bare_rps = med(rows, "bare_ping_c64", "rps")
    for op, name, limit in (("ping", "GET /v1/ping", 1.4), ("event", "POST …/events", 1.6)):
        cpu, rps = med(rows, f"proxy_{op}_c64", "cpu_us_per_req"), med(rows, f"proxy_{op}_c64", "rps")
        if None in (cpu, rps, bare_cpu, bare_rps):
            continue
        out.append(f"| 6 | proxy {name} against bare MHD (c=64) | 64 | {rps:.0f} | | | {cpu:.1f} | "
                   f"CPU **{cpu / bare_cpu:.2f}×** bare ({bare_cpu:.1f} µs), req/s "
                   f"**{rps / bare_rps:.2f}×** |")
        goals.append((f"c=64 proxy CPU per {op} ≤ {limit}× bare MHD", f"{cpu / bare_cpu:.2f}×",
                      cpu / bare_cpu <= limit))
        if op == "ping":
            goals.append(("c=64 proxied ping req/s ≥ 0.7× bare MHD", f"{rps / bare_rps:.2f}×",
                          rps / bare_rps >= 0.7))
    b1 = med(rows, "bare_ping_c1", "rps")
    for op, name in (("ping", "PING"), ("event", "APPLY_EVENT")):
        d1, p1 = med(rows, f"direct_{op}_c1", "rps"), med(rows, f"proxy_{op}_c1", "rps")
        if None in (b1, d1, p1):
            continue
        lim = 1 / (1 / b1 + 1 / d1)
        out.append(f"| 6 | proxy {name} at c=1 against the serial limit | 1 | {p1:.0f} | | | | "
                   f"limit 1/(1/{b1:.0f} + 1/{d1:.0f}) = {lim:.0f} req/s: **{p1 / lim:.2f}×** |")
        goals.append((f"c=1 {name} throughput within 10% of the serial limit", f"{p1 / lim:.2f}×",
                       p1 / lim >= 0.9))
    for op, limit in (("ping", 6), ("event", 8)):
        r = rows.get(f"allocs_{op}", [None])[0]
        if r is None:
            continue
        per = int(r["allocs"]) / int(r["requests"])
        out.append(f"| 6 | allocations per {op} (malloc_count.so, c=8, {r['requests']} requests) "
                   f"| 8 | | | | | {per:.1f} per request |")
        goals.append((f"allocations per {op} ≤ {limit}", f"{per:.1f}", per <= limit))
    cb, cp = med(rows, "callgrind_bare", "ir_per_req"), med(rows, "callgrind_proxy", "ir_per_req")
    if cb and cp:
        out.append(f"| 6 | callgrind instructions per ping (c=8, 2000 requests) | 8 | | | | | "
                   f"bare {cb:.0f}, proxy {cp:.0f}: **{cp - cb:.0f}** beyond bare |")
        goals.append(("callgrind instructions per ping beyond bare ≤ 15k", f"{cp - cb:.0f}",
                      cp - cb <= 15000))


def main():
    rows = load(sys.argv[1])
    rounds, secs = sys.argv[2], sys.argv[3]
    out = []
    out.append(f"Median of {rounds} interleaved rounds, {secs} s each (c1000 and SSE fan-out: "
               "one run).\n")
    out.append("| # | measurement | conc | req/s | p50 | p99 | server CPU µs/req | compared |")
    out.append("|---|---|---|---|---|---|---|---|")
    goals = []
    for c in (1, 64):
        bare = med(rows, f"bare_ping_c{c}", "rps")
        for tag, name, sec in (
            (f"bare_ping_c{c}", "bare MHD, fixed JSON", "1"),
            (f"proxy_ping_c{c}", "proxy GET /v1/ping", "1"),
            (f"proxy_event_c{c}", "proxy POST …/events", "1"),
        ):
            rps = med(rows, tag, "rps")
            cmp = ""
            if tag.startswith("proxy") and bare and rps:
                cmp = f"{rps / bare:.2f}× bare"
                if tag == "proxy_ping_c1" or tag == "proxy_ping_c64":
                    goals.append((f"proxied ping ≥ 0.8× bare req/s (c={c})", f"{rps / bare:.2f}×",
                                  rps / bare >= 0.8))
            out.append(f"| {sec} | {name} | {c} | {f(rps)} | {f(med(rows, tag, 'p50_us'))} µs | "
                       f"{f(med(rows, tag, 'p99_us'))} µs | "
                       f"{f(med(rows, tag, 'cpu_us_per_req'), '{:.1f}')} | {cmp} |")
    for op, path in (("ping", "PING"), ("event", "APPLY_EVENT")):
        for c in (1, 64):
            d, p = f"direct_{op}_c{c}", f"proxy_{op}_c{c}"
            drps, prps = med(rows, d, "rps"), med(rows, p, "rps")
            d50, p50 = med(rows, d, "p50_us"), med(rows, p, "p50_us")
            d99, p99 = med(rows, d, "p99_us"), med(rows, p, "p99_us")
            cmp = "—"
            if None not in (drps, prps, d50, p50, d99, p99):
                cmp = (f"proxy adds {p50 - d50:+.0f} µs p50, {p99 - d99:+.0f} µs p99; "
                       f"throughput {prps / drps:.2f}×")
                if c == 1:
                    goals.append((f"added latency c=1 {path}: ≤ 50 µs p50", f"{p50 - d50:+.0f} µs",
                                  p50 - d50 <= 50))
                    goals.append((f"added latency c=1 {path}: ≤ 150 µs p99", f"{p99 - d99:+.0f} µs",
                                  p99 - d99 <= 150))
            mode = "blocking" if c == 1 else "pipelined"
            out.append(f"| 2 | direct librstmdb {path} ({mode}) | {c} | {f(drps)} | {f(d50)} µs | "
                       f"{f(d99)} µs | | {cmp} |")
    for op, path in (("ping", "PING"), ("event", "APPLY_EVENT")):
        d, p = f"direct_{op}_conns_c64", f"proxy_{op}_c64"
        drps, prps = med(rows, d, "rps"), med(rows, p, "rps")
        d50, p50 = med(rows, d, "p50_us"), med(rows, p, "p50_us")
        d99, p99 = med(rows, d, "p99_us"), med(rows, p, "p99_us")
        cmp = "—"
        if None not in (drps, prps, d50, p50, d99, p99):
            cmp = (f"proxy adds {p50 - d50:+.0f} µs p50, {p99 - d99:+.0f} µs p99; "
                   f"throughput {prps / drps:.2f}×")
        out.append(f"| 2 | direct librstmdb {path}, 64 connections × 1 in flight | 64 | {f(drps)} | "
                   f"{f(d50)} µs | {f(d99)} µs | | {cmp} |")
    for tag, name in (("proxy_ping_c1000", "proxy GET /v1/ping, pool_size 2"),
                      ("proxy_event_c1000", "proxy POST …/events, pool_size 2")):
        out.append(f"| 5 | {name} | 1000 | {f(med(rows, tag, 'rps'))} | "
                   f"{f(med(rows, tag, 'p50_us'))} µs | {f(med(rows, tag, 'p99_us'))} µs | "
                   f"{f(med(rows, tag, 'cpu_us_per_req'), '{:.1f}')} | "
                   f"errors {f(med(rows, tag, 'errors'))}, non-2xx {f(med(rows, tag, 'non2xx'))} |")
    request_path_table(rows, out, goals)
    if "sse" in rows or "proxy_ping_sse_c1" in rows:
        sse_table(rows, out, goals)
    for name, val, ok in goals:
        verdict = "met" if ok else "NOT met"
        out.append(f"| goal | {name} | | | | | | {val}: {verdict} |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
