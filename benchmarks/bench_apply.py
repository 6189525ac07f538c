"""`apply` on the sandbox with per-request latency (run on demand, not a test).

    python benchmarks/bench_apply.py [--orders 2000] [--latency 0.05] [--flow amazon-to-vtex]

Prints the wall time against the bound the declared rate limits set (for each operation,
(requests - burst) / rate; the run can be no faster than the slowest bucket), and the
requests per order against the minimum (list pages + one look-up per order + one request
per action step actually needed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connector.runner import run_flows  # noqa: E402
from connector.project import load_config, require  # noqa: E402
from connector.sandbox import Sandbox  # noqa: E402

MUTATING = ("POST", "PUT", "PATCH", "DELETE")


def operation_of(config, system: str, method: str, path: str) -> str:  # type: ignore[no-untyped-def]
    """The mapping's rate-limit bucket a recorded request fell into (by path shape)."""
    import re

    spec = config.systems.get(system)
    if spec is None:
        return ""
    requests = []
    if spec.listing:
        requests.append(spec.listing.request)
    if spec.get_order:
        requests.append(spec.get_order.request)
    requests += [lk.request for lk in spec.lookups.values()]
    requests += [s.request for a in spec.actions.values() for s in a.steps]
    for request in requests:
        if request.method != method or not request.path or not request.operation:
            continue
        pattern = re.sub(r"\{\{.*?\}\}", "[^/]+", request.path.split("?")[0])
        if re.fullmatch(pattern, path):
            return request.operation
    return ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--flow", default="amazon-to-vtex")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    config = require(load_config(ROOT))
    options = dict(config.flow_options.get(args.flow, {}))
    options["concurrency"] = args.concurrency
    config.flow_options[args.flow] = options
    with Sandbox(latency=args.latency, rate_limits=True, orders=args.orders) as sandbox, \
            tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summaries, _ = run_flows(config, [args.flow], f"sqlite:///{tmp}/state.db", sandbox.settings(), {},
                                 poll_scale=0.0, now=sandbox.clock.now)
        wall = time.perf_counter() - start
        summary = summaries[0]
        requests = [r for r in sandbox.requests if "/auth/o2/token" not in r.path]
        by_op: Counter[tuple[str, str]] = Counter()
        for r in requests:
            by_op[(r.system, operation_of(config, r.system, r.method, r.path))] += 1
    bound = 0.0
    slowest = ""
    for (system, op), count in by_op.items():
        limit = config.systems[system].rate_limits.get(op) if system in config.systems else None
        if limit is None:
            continue
        seconds = max(0.0, (count - limit.burst) / limit.rate)
        if seconds > bound:
            bound, slowest = seconds, f"{system}.{op}: {count} requests at {limit.rate}/s, burst {limit.burst}"
    source = config.flows[args.flow].source
    pages = sum(c for (s, op), c in by_op.items() if s == source and op in ("searchOrders",))
    mutating = sum(1 for r in requests if r.method in MUTATING)
    orders = summary.orders
    minimum = pages + orders + mutating
    print(f"flow {args.flow}: {orders} orders, {args.latency * 1000:.0f} ms latency per request, "
          f"concurrency {args.concurrency}")
    print(f"wall time: {wall:.1f} s; rate-limit bound: {bound:.1f} s ({slowest or 'no bucket binds'}); "
          f"latency-only serial time would be {len(requests) * args.latency:.0f} s")
    print(f"requests: {len(requests)} ({len(requests) / max(orders, 1):.2f} per order); minimum "
          f"{minimum} ({minimum / max(orders, 1):.2f} per order: {pages} pages + {orders} look-ups "
          f"+ {mutating} action steps)")
    print(f"actions: {summary.done} done, {summary.skipped} skipped, {summary.failed} failed, "
          f"{summary.watched} watched, {len(summary.errors)} errors")
    for (system, op), count in sorted(by_op.items(), key=lambda kv: -kv[1]):
        print(f"  {system:15} {op or '(other)':22} {count}")


if __name__ == "__main__":
    main()
