#!/usr/bin/env python3
"""Side-by-side benchmark: the Python reference SDK (`pip install routeweiler`) and the Swift client, in one run,
against the same built-in L402 paywall and fake LND (`routeweiler-bench serve`).

    python3 -m venv benchmarks/.venv && benchmarks/.venv/bin/pip install -r benchmarks/requirements.txt
    swift build -c release --product routeweiler-bench
    benchmarks/.venv/bin/python benchmarks/python_reference.py --count 500

It starts `routeweiler-bench serve` (paywall + fake LND over TLS gRPC, cert and macaroon written to files), then
1. plain httpx free calls (the Python floor), Python SDK free calls;
2. Python SDK sequential paid calls (SQLite trace + budget envelope, static FMV; the SDK pays every call);
3. Python SDK concurrent paid calls at --concurrency levels;
4. the Swift bench against the same paywall and node (`routeweiler-bench run --url ... --lnd-host ...`, reuse off
   for the concurrent runs, so both sides pay every call);
and prints one table (text, or JSON with --json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def summary(samples_ns: list[int]) -> dict[str, float]:
    xs = sorted(s / 1e6 for s in samples_ns)
    if not xs:
        return {"count": 0, "mean": 0, "p50": 0, "p95": 0, "p99": 0, "max": 0}

    def pct(p: float) -> float:
        return xs[min(len(xs) - 1, max(0, round(p * (len(xs) - 1))))]

    return {"count": len(xs), "mean": statistics.fmean(xs), "p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99),
            "max": xs[-1]}


class StaticBtc:
    """FMV: 60 000 USD/BTC, as the Swift bench's StaticFmvProvider (10 sats = 0.6 cents, reserved as 1 cent)."""

    async def fetch_btc_to(self, currency: str) -> Decimal:
        return Decimal(60000)

    async def aclose(self) -> None:
        return None


class StaticEcb:
    async def fetch_rate(self, src: str, dst: str) -> Decimal:
        return Decimal(1)

    async def aclose(self) -> None:
        return None


async def python_side(info: dict, count: int, warmup: int, levels: list[int], conc_calls: int) -> dict:
    import routeweiler
    from routeweiler import BudgetEnvelope, LightningFundingSource, Routeweiler
    from routeweiler.funding.lightning import LndClient
    from routeweiler.trace.sink_sqlite import TraceSink

    host, port = info["lnd_host"].rsplit(":", 1)
    lnd = LndClient(grpc_host=host, grpc_port=int(port), macaroon_path=info["macaroon"], tls_cert_path=info["tls_cert"])
    source = await LightningFundingSource.create(lnd, "bitcoin-regtest")
    out: dict = {"sdk_version": routeweiler.__version__, "python": sys.version.split()[0]}

    def client(tmp: str) -> Routeweiler:
        return Routeweiler(
            funding=[source],
            trace_sink=TraceSink.sqlite(os.path.join(tmp, "rw.db")),
            budget_envelope=BudgetEnvelope(id="bench", cap_minor_units=10**15, cap_currency="usd",
                                           allowed_rails=["l402"], ttl_seconds=86_400),
            keystore_root=Path(tmp) / "keys",
            agent_id="routeweiler-bench-python",
            fmv_provider=StaticBtc(),
            ecb_provider=StaticEcb(),
        )

    # Free calls: plain httpx (the floor) and the SDK, interleaved.
    with tempfile.TemporaryDirectory() as tmp:
        async with httpx.AsyncClient() as plain, client(tmp) as rw:
            a, b = [], []
            for i in range(warmup + count):
                s = time.perf_counter_ns()
                r = await plain.get(info["free_url"])
                t = time.perf_counter_ns()
                assert r.status_code == 200
                r = await rw.get(info["free_url"])
                u = time.perf_counter_ns()
                assert r.status_code == 200
                if i >= warmup:
                    a.append(t - s)
                    b.append(u - t)
    out["free_httpx_ms"] = summary(a)
    out["free_sdk_ms"] = summary(b)
    print(f"python: free calls done ({count})", file=sys.stderr)

    # Sequential paid calls.
    with tempfile.TemporaryDirectory() as tmp:
        async with client(tmp) as rw:
            lat = []
            for i in range(warmup + count):
                s = time.perf_counter_ns()
                r = await rw.get(info["paid_url"])
                e = time.perf_counter_ns()
                if r.status_code != 200:
                    raise SystemExit(f"python paid call {i}: HTTP {r.status_code} {r.text}")
                if i >= warmup:
                    lat.append(e - s)
    out["sequential_paid_ms"] = summary(lat)
    print(f"python: sequential paid calls done ({count})", file=sys.stderr)

    # Concurrent paid calls.
    out["concurrent"] = []
    for level in levels:
        calls = max(conc_calls, level)
        with tempfile.TemporaryDirectory() as tmp:
            async with client(tmp) as rw:
                lat: list[int] = []
                failures = 0

                async def worker(n: int) -> None:
                    nonlocal failures
                    for _ in range(n):
                        s = time.perf_counter_ns()
                        r = await rw.get(info["paid_url"])
                        lat.append(time.perf_counter_ns() - s)
                        if r.status_code != 200:
                            failures += 1

                base, extra = divmod(calls, level)
                t0 = time.perf_counter()
                await asyncio.gather(*(worker(base + (1 if w < extra else 0)) for w in range(level)))
                secs = time.perf_counter() - t0
        out["concurrent"].append({"in_flight": level, "calls": calls, "seconds": secs, "calls_per_second": calls / secs,
                                  "latency_ms": summary(lat), "failures": failures})
        print(f"python: concurrent {level} done: {calls / secs:.0f} calls/s", file=sys.stderr)
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def swift_side(bench: str, info: dict, count: int, warmup: int, levels: list[int], conc_calls: int) -> dict:
    cmd = [bench, "run", "--url", info["paid_url"], "--free-url", info["free_url"], "--lnd-host", info["lnd_host"],
           "--tls-cert", info["tls_cert"], "--macaroon", info["macaroon"], "--network", "bitcoin-regtest",
           "--count", str(count), "--warmup", str(warmup), "--concurrency", ",".join(map(str, levels)),
           "--concurrent-calls", str(conc_calls), "--scenarios", "paid,free,concurrent", "--no-reuse", "--json"]
    print("swift: " + " ".join(cmd), file=sys.stderr)
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(res.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=str(REPO / ".build" / "release" / "routeweiler-bench"))
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--concurrent-calls", type=int, default=300)
    ap.add_argument("--skip-swift", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]

    serve = subprocess.Popen([args.bench, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(serve.stdout.readline())
        print(f"serving: paywall {info['paid_url']}, fake LND {info['lnd_host']}", file=sys.stderr)
        load_start = os.getloadavg()
        py = asyncio.run(python_side(info, args.count, args.warmup, levels, args.concurrent_calls))
        sw = None if args.skip_swift else swift_side(args.bench, info, args.count, args.warmup, levels,
                                                     args.concurrent_calls)
        load_end = os.getloadavg()
    finally:
        serve.stdin.close()
        serve.wait(timeout=30)

    result = {"python": py, "swift": sw, "load_average_start": load_start, "load_average_end": load_end,
              "cores": os.cpu_count()}
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
        return
    print(f"Same paywall and fake LND, {args.count} calls each; load average {load_start[0]:.2f} → {load_end[0]:.2f}")
    print(f"{'':34}{'Python ' + py['sdk_version']:>22}{'Swift':>22}")

    def line(name: str, p: dict | None, s: dict | None) -> None:
        def f(x: dict | None) -> str:
            return "-" if not x else f"{x['p50']:.2f} / {x['p95']:.2f}"
        print(f"{name:34}{f(p):>22}{f(s):>22}")

    print(f"{'(ms, p50 / p95)':34}")
    line("free call, plain HTTP client", py["free_httpx_ms"], sw and sw["free"]["plainAsyncHTTPClientMs"])
    line("free call, Routeweiler + trace", py["free_sdk_ms"], sw and sw["free"]["routeweilerTracedMs"])
    line("sequential paid call", py["sequential_paid_ms"], sw and sw["sequentialPaid"]["totalMs"])
    for c in py["concurrent"]:
        swc = next((x for x in (sw or {}).get("concurrent", []) if x["inFlight"] == c["in_flight"]), None)
        pf = f"{c['calls_per_second']:.0f}/s, p50 {c['latency_ms']['p50']:.1f}"
        sf = "-" if not swc else f"{swc['callsPerSecond']:.0f}/s, p50 {swc['latencyMs']['p50']:.1f}"
        print(f"{'paid, ' + str(c['in_flight']) + ' in flight (every call pays)':34}{pf:>22}{sf:>22}")
    print(f"{'peak RSS (MiB)':34}{py['peak_rss_mib']:>22.1f}{(sw or {}).get('peakRSSMiB', 0):>22.1f}")


if __name__ == "__main__":
    main()
