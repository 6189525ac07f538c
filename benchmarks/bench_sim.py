"""Simulated-clock run of the sandbox at the APIs' published rate limits (issue 9's benchmark).

    python benchmarks/bench_sim.py [--orders 10000 100000] [--workers 1 4] [--flow NAME ...]
                                   [--detail] [--baseline REV]

Per flow, a fresh sandbox is seeded with N orders of a realistic mix (2 % cancelled by the
seller, 3 % cancelled by Amazon or the buyer, the rest shipped), spread round-robin over four
marketplaces of one seller (US, CA, MX, BR: one SP-API account, so one set of buckets). The
flow is run once by 1 worker (the four marketplace partitions one after the other, as one
worker takes partition jobs) or by 4 workers (one partition each, at once), each worker with
its own transport and state-store connection on one SQLite file, so their buckets are the
fleet's shared ones, as with `connector worker`. A partition with a batch still waiting runs
again when the batch is due. Printed per flow and size:

- simulated wall time against the bound the token buckets set: for each operation,
  max(0, (requests needed - burst) / rate) at the server's limits, the flow's bound being
  the largest (its bottleneck operation is named); goal <= 1.05x;
- requests per order against the minimum: list pages (ceil(orders / 100) per partition) +
  one counterpart look-up per order + the requests each order's actions need (table
  `NEEDED`: a VTEX cancel from ready-for-handling or handling is cancel, read, cancel) +
  each feed's six requests once per marketplace (create document, upload, createFeed, one
  getFeed, getFeedDocument, report download) + one LWA token per worker process; <= 1.05x;
- 429s received (goal 0 with 4 workers);
- peak memory: the run's peak resident memory above the seeded sandbox's (each run is a
  forked process of its own; VmHWM reset before the run, after the simulators' search
  caches and indexes are built, `prepare_search`, so that what the sandbox keeps per
  stored order is not counted as the connector's), flat from 10,000 to 100,000 orders if
  pages are streamed; and the CPU seconds the run took. The sandbox shares the process:
  benchmarks/mem_sim.py tells its allocations apart from the connector's (tracemalloc).

adobe-commerce-to-amazon lists Commerce, which has one partition: with 4 workers one of them
runs it (the `w` column says how many were busy).

Figures of 2026-12-07 (2 shared CPUs, load about 6; "w" 4/1: one partition, so one busy
worker), before and after the scale9 changes (the sandbox's Commerce searches indexed; the
listing's ids remembered a window at a time, not every id of the run; one LWA token per
process and account; the simulators' caches built before the memory baseline):

    flow                      orders    w  sim time   bound  ratio  req/o  min/o ratio 429s peak MB   cpu s
    before
    amazon-to-vtex             10000    1    3.97h    3.97h 1.000x  1.130  1.130 1.000x  0    15.0    19.9
    amazon-to-vtex             10000    4    3.97h    3.97h 1.000x  1.130  1.130 1.000x  0    33.9    19.9
    amazon-to-vtex             50000    1   23.81h   23.81h 1.000x  1.130  1.130 1.000x  0    30.7   153.1
    amazon-to-adobe-commerce   10000    1    3.97h    3.97h 1.000x  1.110  1.110 1.000x  0    14.4    67.6
    amazon-to-adobe-commerce   10000    4    3.97h    3.97h 1.000x  1.110  1.110 1.000x  0    33.2    66.4
    adobe-commerce-to-amazon   10000    1    5.54h    5.54h 1.000x  2.913  2.913 1.000x  0    35.9   285.8
    (Commerce flows at 100,000: quadratic in the sandbox's Commerce search, not run)
    Commerce searches indexed
    amazon-to-adobe-commerce   10000    1    3.97h    3.97h 1.000x  1.110  1.110 1.000x  0    25.4    21.3
    adobe-commerce-to-amazon   10000    1    5.54h    5.54h 1.000x  2.913  2.913 1.000x  0    46.6    51.5
    amazon-to-adobe-commerce  100000    1   48.61h   48.61h 1.000x  1.110  1.110 1.000x  0   170.7   419.7
    adobe-commerce-to-amazon  100000    1   55.54h   55.54h 1.000x  2.910  2.910 1.000x  0   385.8   553.4
    after all
    amazon-to-vtex             10000    1    3.97h    3.97h 1.000x  1.130  1.130 1.000x  0    12.4    20.8
    amazon-to-vtex             10000    4    3.97h    3.97h 1.000x  1.130  1.130 1.000x  0    31.3    22.0
    amazon-to-vtex             50000    1   23.81h   23.81h 1.000x  1.130  1.130 1.000x  0    17.2   138.0
    amazon-to-adobe-commerce   10000    1    3.97h    3.97h 1.000x  1.110  1.110 1.000x  0    11.6    23.1
    amazon-to-adobe-commerce   10000    4    3.97h    3.97h 1.000x  1.110  1.110 1.000x  0    30.5    23.0
    adobe-commerce-to-amazon   10000    1    5.54h    5.54h 1.000x  2.913  2.913 1.000x  0    36.8    47.4
    amazon-to-adobe-commerce   50000    1   23.81h   23.81h 1.000x  1.110  1.110 1.000x  0    16.3   141.3
    adobe-commerce-to-amazon   50000    1   27.76h   27.76h 1.000x  2.911  2.910 1.000x  0   134.2   250.3
    amazon-to-vtex            100000    1   48.61h   48.61h 1.000x  1.130  1.130 1.000x  0    23.3   369.3
    amazon-to-vtex            100000    4   48.61h   48.61h 1.000x  1.130  1.130 1.000x  0    48.8   339.1
    amazon-to-adobe-commerce  100000    1   48.61h   48.61h 1.000x  1.110  1.110 1.000x  0    20.7   372.6
    (earlier figures of the same day, before: amazon-to-vtex 100000 1: 292.9 MB, 598 s;
    4: 1057.0 MB, 600 s;
    not all sizes were run again after: two shared CPUs and the time there was)
    2026-12-08, --baseline edb6720 (before: a new jmespath interpreter per search), one run:
    adobe-commerce-to-amazon   10000    1    5.54h    5.54h 1.000x  2.913  2.913 1.000x  0    37.0    92.2  @edb6720
    adobe-commerce-to-amazon   30000    1   16.65h   16.65h 1.000x  2.911  2.911 1.000x  0    83.0   261.9  @edb6720
    adobe-commerce-to-amazon   10000    1    5.54h    5.54h 1.000x  2.913  2.913 1.000x  0    35.5    67.3
    adobe-commerce-to-amazon   30000    1   16.65h   16.65h 1.000x  2.911  2.911 1.000x  0    83.8   218.5
    amazon-to-adobe-commerce  100000    4   48.61h   48.61h 1.000x  1.110  1.110 1.000x  0    47.1   563.8  (edb6720)
(The Commerce indexes built during the run count in the middle rows' peak; after all they
are built before the baseline. 1 worker fetched 4 LWA tokens before, 1 after: one per
process and account; the requests-per-order ratio rounds to 1.000 either way.)

Bottlenecks: searchOrders (1 per 180 s past a burst of 20: 100 pages per 10,000 orders) for
the Amazon-sourced flows, getOrder (0.5/s) for adobe-commerce-to-amazon. Peak memory: the
Amazon-sourced flows' is flat in the order count once the listing's ids are kept a window
at a time (fetch.Recent); adobe-commerce-to-amazon's still grows (one partition, one run
of every order). What grows there, found 2026-12-08: mem_sim's "decoded response bodies
and context managers kept alive" were cyclic garbage not yet collected (jmespath's
interpreter per search, httpx's exchanges): after a full collection the connector's traced
memory grows 0.4 KB an order from 1,000 to 3,000 orders, the sandbox's 0.7 KB (the
shipments the simulated Amazon stores). RSS at 9,000 orders: +28 MB over the baseline
before the batch flush, +5 MB during it; the batch's members (2 % of orders, 33 KB each)
are about 0.5 KB an order of it; packing them (branch h9-batch-pack) left the peak as it
was (83.8 MB at 30,000 orders), and the rest of the growth is not yet attributed.

What is modelled. Time is one simulated timeline (`simclock.Sim`): real threads, but only one
runs at a time and the clock jumps to the next simulated wake-up when all wait, so 100,000
orders cost CPU time only. Every request takes 50 ms (25 ms there, 25 ms back; the sandbox
handles it, and takes its token, in between), in-process (the sandbox's dispatcher is called
directly: no sockets). The engine's thread pool (`concurrency`, 8) and the workers are real
participants interleaved on that timeline (`SimPool` replaces the engine's
ThreadPoolExecutor), so 8 requests of a run are in flight at once as in production. The
connector's rate-limit waits and Retry-After/backoff waits, its store's and engine's clocks,
and the sandbox's clock and token buckets all read the simulated clock. Server-side limits:
SP-API's published rate and burst per operation (connector/sandbox/amazon.py
PUBLISHED_LIMITS, research/amazon-sp-api.md section 7); VTEX's account limit of 6,000
requests per minute on GetOrder (research/vtex-oms.md; no burst is published: 100 is
assumed, one second's worth; CancelOrder has no published limit), applied here in front of
the sandbox; Adobe Commerce none. The sandbox grants a token refilled to within 1e-6 (float
rounding). The client's buckets are the mappings' `rate_limits`, shared by the workers
through the state store.

What is not. CPU time (the engine's own work costs no simulated time); the LWA token's
latency (it is fetched under a lock, and the other threads then wait on a real lock, which the
simulation cannot see: its 50 ms once an hour are left out), and its hourly refresh (the
sandbox's tokens live 100 days here: the client's token cache reads the real monotonic clock);
feed processing time (the sandbox answers DONE on the first getFeed); network variance;
PostgreSQL (SQLite here; the bucket model is the same SQL).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import threading
import tempfile
import time
import multiprocessing
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from connector import engine, runner
from connector.transport.http import HttpRequest, HttpResponse, new_client
from connector.plan import prepare
from connector.project import Config, load_config, require
from connector.sandbox import Sandbox
from connector.sandbox.amazon import PUBLISHED_LIMITS
from connector.sandbox.ratelimit import TokenBuckets
from connector.sandbox.seed import install
from connector.state.store import open_store

from sim_world import (
    FEED_STEPS, FLOWS, LISTING, LOOKUP, MARKETPLACES, NEEDED, PAGE, REPO, SINCE, START,
    VTEX_ACCOUNT, InProcess, seed,
)
from simclock import Sim, pool_for

@dataclass
class Result:
    flow: str
    orders: int
    workers: str  # "4", or "4/1" when only one was busy
    seconds: float = 0.0
    counts: Counter[tuple[str, int]] = field(default_factory=Counter)
    minimum: Counter[str] = field(default_factory=Counter)
    peak: int = 0
    cpu: float = 0.0
    summaries: list[Any] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.counts.values())

    @property
    def throttled(self) -> int:
        return sum(n for (_, status), n in self.counts.items() if status == 429)

    def bound(self) -> tuple[float, str]:
        """The slowest operation's bucket time for the minimum requests: (seconds, op)."""
        worst = (0.0, "-")
        for op, needed in self.minimum.items():
            system, _, name = op.partition("/")
            limit = PUBLISHED_LIMITS.get(name) if system == "amazon" else (
                VTEX_ACCOUNT if op == "vtex/GetOrder" else None)
            if limit is not None:
                worst = max(worst, (max(0.0, (needed - limit[1]) / limit[0]), op))
        return worst


def _label(req: HttpRequest) -> str:
    if req.operation:
        return f"{req.system}/{req.operation}"
    if req.url.endswith("/auth/o2/token") or "/token" in req.url:
        return f"{req.system}/token"
    return f"{req.system}/{'upload' if req.method == 'PUT' else 'download'}"


def _worker(config: Config, box: Sandbox, sim: Sim, flow: str, partitions: list[str],
            state: str, counts: Counter[tuple[str, int]], summaries: list[Any]) -> None:
    """One worker process: its own store connection and transport; partitions in turn."""
    current = threading.local()
    store = open_store(state, now=sim.now_dt)
    client = new_client(transport=InProcess(box, sim, counts, current))
    overrides = box.settings()
    source = config.flows[flow].source
    runtimes = [prepare(config, flow, {}, system_overrides={
        **overrides, source: {**overrides[source],
                              **({"marketplace_ids": [p]} if p else {})}}) for p in partitions]
    transport = runner.new_transport(config, runner.redactor(runtimes), client=client,
                                     sleep=sim.sleep, store=store, runtimes=runtimes,
                                     wall_clock=sim.epoch)
    send = transport.send

    def counted(req: HttpRequest, *, idempotent: bool) -> HttpResponse:
        current.op = _label(req)
        return send(req, idempotent=idempotent)

    transport.send = counted  # type: ignore[method-assign]
    try:
        for partition, runtime in zip(partitions, runtimes):
            # --since the seed's first order: a partition run hours later (100,000 orders
            # take two simulated days to list) must not lose the oldest to the look-back
            settings = runner.RunSettings(partition=partition, now=sim.now_dt, sleep=sim.sleep,
                                          since=SINCE)
            for _ in range(10):  # again while a batch waits, when it is due
                summary = runner.run_flow(runtime, transport, store, settings)
                summaries.append(summary)
                if not summary.waiting:
                    break
                due = [b.check_after for b in store.live_batches(engine.flow_key(flow, partition))]
                if due:
                    moment = min(datetime.fromisoformat(d.replace("Z", "+00:00")) for d in due)
                    sim.sleep(max(0.0, (moment - sim.now_dt()).total_seconds()))
    finally:
        transport.close()
        store.close()


def measure(config: Config, flow: str, n: int, workers: int) -> Result:
    result = Result(flow, n, str(workers))
    data, kinds, feeds = seed(flow, n)
    sim = Sim(START)
    box = Sandbox(orders="empty", now=sim.now_dt, token_ttl=1e7)
    install(data, box.amazon, box.vtex, box.commerce)
    for index, record in enumerate(data.amazon_orders):
        record["salesChannel"]["marketplaceId"] = MARKETPLACES[index % len(MARKETPLACES)]
    del data
    box.amazon.limiter = TokenBuckets(PUBLISHED_LIMITS, monotonic=sim.now)
    box.amazon.feeds_api.polls_before_done = 0
    source = config.flows[flow].source
    parts = list(MARKETPLACES) if source == "amazon" else [""]
    busy = min(workers, len(parts))
    if busy < workers:
        result.workers = f"{workers}/{busy}"
    _minimum(result, flow, n, kinds, parts, feeds)
    # the simulators' search caches and indexes now, before the memory baseline: they are
    # the sandbox's memory (growing with the orders it stores), not the connector's
    box.amazon.prepare_search()
    box.commerce.prepare_search()
    box.start()
    engine.ThreadPoolExecutor = pool_for(sim)  # type: ignore[assignment,misc]
    with tempfile.TemporaryDirectory() as tmp:
        state = f"sqlite:///{tmp}/state.db"
        open_store(state).close()  # migrations once, before the workers
        started_cpu = time.process_time()
        base = _rss(reset=True)

        def worker(group: list[str]) -> Callable[[], None]:
            return lambda: _worker(config, box, sim, flow, group, state, result.counts,
                                   result.summaries)

        def fleet() -> None:
            groups = [parts] if workers == 1 else [parts[i::workers] for i in range(workers)]
            sim.join([sim.spawn(worker(group)) for group in groups if group])

        sim.run(fleet)
        result.peak = _rss(peak=True) - base
        result.cpu = time.process_time() - started_cpu
        result.seconds = sim.now()
    box.stop()
    return result


def _rss(*, reset: bool = False, peak: bool = False) -> int:
    """This process's resident memory in bytes (Linux): now, or its peak since the last
    reset (`clear_refs` 5 resets VmHWM)."""
    if reset:
        Path("/proc/self/clear_refs").write_text("5")
    key = "VmHWM:" if peak else "VmRSS:"
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    return 0


def _child(conn: Any, config: Config, flow: str, n: int, workers: int) -> None:
    result = measure(config, flow, n, workers)
    result.summaries = [(s.orders, s.done, s.failed, s.watched, s.waiting, s.errors[:2])
                        for s in result.summaries]
    conn.send(result)
    conn.close()


def isolated(config: Config, flow: str, n: int, workers: int) -> Result:
    """`measure` in a forked process of its own, so that its peak memory is its own."""
    context = multiprocessing.get_context("fork")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(child, config, flow, n, workers))
    process.start()
    result: Result = parent.recv()
    process.join()
    return result


def _minimum(result: Result, flow: str, n: int, kinds: Counter[str], parts: list[str],
             feeds: int) -> None:
    """The fewest requests the run can make, by operation (module docstring)."""
    minimum = result.minimum
    sizes = [len(range(i, n, len(parts))) for i in range(len(parts))]
    minimum[LISTING[flow]] += sum(max(1, math.ceil(size / PAGE)) for size in sizes)
    minimum[LOOKUP[flow]] += n
    batched = 0
    for kind, count in kinds.items():
        for op, per in NEEDED[flow][kind].items():
            if op == "batch":
                batched += count
            else:
                minimum[op] += per * count
    for op in FEED_STEPS:  # one feed per marketplace (createFeed takes one) and run
        minimum[op] += feeds if batched else 0
    minimum["amazon/token"] += int(result.workers.split("/")[-1])


def report(result: Result) -> str:
    bound, op = result.bound()
    needed = sum(result.minimum.values())
    ratio = f"{result.seconds / bound:6.3f}x" if bound else "     -"
    return (f"{result.flow:26} {result.orders:7} {result.workers:>4} "
            f"{result.seconds / 3600:8.2f}h {bound / 3600:7.2f}h {ratio:>7} {op:22} "
            f"{result.requests / result.orders:6.3f} {needed / result.orders:6.3f} "
            f"{result.requests / needed:6.3f}x {result.throttled:5} "
            f"{result.peak / 2**20:7.1f} {result.cpu:7.1f}")


HEADER = (f"{'flow':26} {'orders':>7} {'w':>4} {'sim time':>9} {'bound':>8} {'ratio':>7} "
          f"{'bottleneck':22} {'req/o':>6} {'min/o':>6} {'ratio':>7} {'429s':>5} "
          f"{'peak MB':>7} {'cpu s':>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--flow", nargs="+", default=list(FLOWS), choices=FLOWS)
    parser.add_argument("--detail", action="store_true",
                        help="also print each run's requests by operation against the minimum")
    parser.add_argument("--baseline", metavar="REV",
                        help="first the same runs as git revision REV makes them (its tree's "
                             "own bench_sim, connector and mappings), for before/after rows")
    args = parser.parse_args()
    config = require(load_config(REPO))
    print(HEADER, flush=True)
    if args.baseline:
        baseline(args.baseline, args)
    for flow in args.flow:
        single = config.flows[flow].source != "amazon"  # one partition: one busy worker
        for n in args.orders:
            first: Result | None = None
            for workers in args.workers:
                if single and first is not None:
                    # the same run: one partition, so one worker does it all
                    result = dataclasses.replace(first, workers=f"{workers}/1")
                else:
                    result = first = isolated(config, flow, n, workers)
                print(report(result), flush=True)
                if args.detail:
                    ops = Counter[str]()
                    for (op, status), count in result.counts.items():
                        ops[op] += count
                    for op in sorted(set(ops) | set(result.minimum)):
                        codes = {s: c for (o, s), c in result.counts.items() if o == op}
                        print(f"    {op:40} {ops[op]:7} min {result.minimum[op]:7}  {codes}")
                    for orders, done, failed, watched, waiting, errors in result.summaries:
                        print(f"    run: orders {orders} done {done} failed {failed} "
                              f"watched {watched} waiting {waiting} errors {errors}")


def baseline(rev: str, args: argparse.Namespace) -> None:
    """The same runs by revision `rev` (`git archive`: its connector, mappings and
    benchmarks), in a child process, each row marked `@rev`."""
    import os
    import shutil
    import subprocess
    import sys

    from plan_baseline import export

    tree = export(rev)
    try:
        command = [sys.executable, str(tree / "benchmarks" / "bench_sim.py"),
                   "--orders", *map(str, args.orders), "--workers", *map(str, args.workers),
                   "--flow", *args.flow]
        env = {**os.environ, "PYTHONPATH": str(tree)}
        with subprocess.Popen(command, cwd=tree, env=env, stdout=subprocess.PIPE,
                              text=True) as child:
            assert child.stdout is not None
            next(child.stdout, None)  # its header is ours
            for line in child.stdout:  # each row as it comes
                print(f"{line.rstrip()}  @{rev}", flush=True)
        if child.returncode:
            raise SystemExit(f"the {rev} runs failed (exit {child.returncode})")
    finally:
        shutil.rmtree(tree)


if __name__ == "__main__":
    main()
