"""Where bench_sim's memory grows with the order count: tracemalloc snapshots diffed.

    python benchmarks/mem_sim.py [--flow amazon-to-vtex] [--orders 2000 10000] [--workers 1]

Each size runs in a forked process of its own (as bench_sim does) with tracemalloc on from
the start of the run (the seeded sandbox is not traced: what the run adds is); a
snapshot is taken at the end of every partition run (`BatchedMembers.flush`, while the run's own
structures are still alive), after a full garbage collection, and the largest kept (without
the collection, the reference cycles each jmespath search and each httpx exchange leave, not
yet collected, read as memory the run keeps). Printed: the connector's and the sandbox's
traced memory at that moment (the sandbox shares the process: its files are under
connector/sandbox/), then the allocation sites whose size grew most from the first size to the
last, so growth per order can be told apart from a fixed cost. tracemalloc slows the run
several times: use sizes a few times smaller than bench_sim's.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import tracemalloc
from typing import Any

from connector.execute.batch_outcomes import BatchedMembers
from connector.project import load_config, require

import bench_sim
import simclock
from sim_world import FLOWS, REPO

SANDBOX = "/connector/sandbox/"


def _child(conn: Any, flow: str, n: int, workers: int, depth: int) -> None:
    config = require(load_config(REPO))
    best: list[tracemalloc.Snapshot | None] = [None]
    sizes = [0]
    flush = BatchedMembers.flush

    def snapped(self: BatchedMembers) -> None:
        gc.collect()  # what is kept, not cyclic garbage the collector has not reached yet
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)])
        total = sum(s.size for s in snapshot.statistics("filename"))
        if total > sizes[0]:
            best[0], sizes[0] = snapshot, total
        flush(self)

    BatchedMembers.flush = snapped  # type: ignore[method-assign]
    run = simclock.Sim.run

    def traced(self: simclock.Sim, fn: Any) -> Any:  # after the seed: only the run's memory
        tracemalloc.start(depth)
        return run(self, fn)

    simclock.Sim.run = traced  # type: ignore[method-assign]
    bench_sim.measure(config, flow, n, workers)
    tracemalloc.stop()
    snapshot = best[0]
    assert snapshot is not None
    lines = {" <- ".join(f"{f.filename.split('/site-packages/')[-1].split(str(REPO) + '/')[-1]}"
                         f":{f.lineno}" for f in reversed(s.traceback)): s.size
             for s in snapshot.statistics("traceback" if depth > 1 else "lineno")}
    conn.send(lines)
    conn.close()


def _traced(flow: str, n: int, workers: int, depth: int) -> dict[str, int]:
    context = multiprocessing.get_context("fork")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(child, flow, n, workers, depth))
    process.start()
    lines: dict[str, int] = parent.recv()
    process.join()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flow", default=FLOWS[0], choices=FLOWS)
    parser.add_argument("--orders", type=int, nargs=2, default=[2000, 10000])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--depth", type=int, default=1,
                        help="frames per allocation site (more: where a growing site is called)")
    args = parser.parse_args()
    small, large = (_traced(args.flow, n, args.workers, args.depth) for n in args.orders)
    for name, lines in zip(args.orders, (small, large)):
        box = sum(v for site, v in lines.items() if SANDBOX in "/" + site.split(":")[0])
        rest = sum(v for site, v in lines.items() if SANDBOX not in "/" + site.split(":")[0])
        print(f"{name:7} orders: sandbox {box / 2**20:7.1f} MB, the rest (connector, "
              f"libraries, the benchmark) {rest / 2**20:7.1f} MB")
    grown = sorted(((large.get(k, 0) - small.get(k, 0), k) for k in set(small) | set(large)),
                   reverse=True)
    print(f"growth from {args.orders[0]} to {args.orders[1]} orders, by allocation site:")
    for delta, site in grown[:args.top]:
        print(f"  {delta / 2**10:9.1f} KB  {site}")


if __name__ == "__main__":
    main()
