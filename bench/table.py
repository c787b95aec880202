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


def main():
    rows = load(sys.argv[1])
    rounds, secs = sys.argv[2], sys.argv[3]
    out = []
    out.append(f"Median of {rounds} interleaved rounds, {secs} s each (c1000 and SSE: one run).\n")
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
    for c in (1, 64):
        tag = f"proxy_ping_sse_c{c}"
        plain = med(rows, f"proxy_ping_c{c}", "rps")
        rps = med(rows, tag, "rps")
        cmp = f"{rps / plain:.2f}× the same without streams" if rps and plain else ""
        out.append(f"| 4 | proxy GET /v1/ping beside the idle SSE streams | {c} | {f(rps)} | "
                   f"{f(med(rows, tag, 'p50_us'))} µs | {f(med(rows, tag, 'p99_us'))} µs | "
                   f"{f(med(rows, tag, 'cpu_us_per_req'), '{:.1f}')} | {cmp} |")
    s = rows.get("sse", [{}])[0]
    if "opened" in s:
        per = float(s["rss_per_stream_b"])
        mx = float(s["fan_max_ms"])
        out.append(f"| 4 | SSE GET /v1/watch: idle streams open | {s['opened']} of {s['streams']} | "
                   f"| | | | RSS {per / 1024:.1f} KiB per stream "
                   f"({s['rss0_kb']} → {s['rss1_kb']} KiB), opened in {s['open_s']} s "
                   f"(proxy CPU {s.get('open_cpu_s', '?')} s) |")
        out.append(f"| 4 | SSE: one event → every stream ({s['events']} events) | {s['opened']} | | "
                   f"{float(s['fan_p50_ms']):.1f} ms | {float(s['fan_p99_ms']):.1f} ms | | "
                   f"max {mx:.1f} ms (mean of per-event max {float(s['fan_mean_max_ms']):.1f} ms), "
                   f"missed {s['missed']}; proxy CPU "
                   f"{float(s.get('proxy_cpu_ms_per_event', 0)):.0f} ms per event |")
        goals.append(("≤ 8 KiB RSS per idle SSE stream", f"{per / 1024:.1f} KiB", per <= 8192))
        s2 = rows.get("sse_small", [{}])[0]
        if "opened" in s2:
            per2 = float(s2["rss_per_stream_b"])
            out.append(f"| 4 | the same, connection_memory_bytes=4096 | {s2['opened']} of "
                       f"{s2['streams']} | | | | | RSS {per2 / 1024:.1f} KiB per stream, "
                       f"one event to all: max {float(s2['fan_max_ms']):.1f} ms |")
            goals.append(("≤ 8 KiB RSS per idle SSE stream (connection_memory_bytes=4096)",
                          f"{per2 / 1024:.1f} KiB", per2 <= 8192))
        goals.append((f"one event to {s['opened']} streams ≤ 100 ms (max)", f"{mx:.0f} ms",
                      mx <= 100 and s["opened"] == "10000"))
    else:
        out.append("| 4 | SSE | — | | | | | did not run (see the messages above) |")
    for name, val, ok in goals:
        verdict = "met" if ok else "NOT met"
        if "streams ≤ 100 ms" in name and "10000 streams" not in name:
            verdict = "not judged (the goal is for 10,000 streams)"
        out.append(f"| goal | {name} | | | | | | {val}: {verdict} |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
