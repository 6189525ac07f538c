"""Soak: `connector worker` processes on PostgreSQL over many orders with random faults.

    python benchmarks/soak.py [--orders 10000] [--workers 4] [--fault-rate 0.05]
                              [--postgres URL] [--seed 1]

(PostgreSQL: `--postgres`, else CONNECTOR_TEST_POSTGRES; `. .ci/postgres.sh` starts a
throwaway server and sets it.) Not a test: run on demand; it prints the figures.

The sandbox is served from this process with `Sandbox(orders=N)` split over two
marketplaces (so the three flows make five partitions for the workers to share), and injects
a seeded mix of 429s, 5xx, HTML pages, lost requests, dropped connections and cut or garbled
bodies into `--fault-rate` of all requests. Rounds of `--workers` × `connector worker --once`
run until a round ends clean. The end state is then compared, effect by effect, with
fault-free runs (in process) on an identically seeded sandbox: duplicates are effects seen
more often than in the reference, losses effects missing.

Two liberties, both printed: the mappings' client-side rate limits are dropped (they model
the real APIs' quotas, which the sandbox does not enforce; at SP-API getOrder's 0.5/s the
run would take hours), and the retry backoff is one second (a failed action is retried by
the next round instead of five minutes later). Commerce comments are spared the faults
unless `--fault-comments`: the shipped add_comment cannot be settled by reading the order,
so a lost answer duplicates the comment (a known mapping gap, reported apart).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connector.runner import run_flows  # noqa: E402
from connector.project import env_name, load_config, require  # noqa: E402
from connector.sandbox import Sandbox  # noqa: E402
from connector.sandbox.effects import effects, judge  # noqa: E402

MARKETPLACES = ("ATVPDKIKX0DER", "A2EUQ1WTGCTBG2")
KINDS = ("429", "503", "500", "html", "lost", "drop", "truncate", "cut", "500-after")
SUMMARY = re.compile(r"^(\S+): (\d+) order\(s\): (\d+) action\(s\) done, (\d+) already done, "
                     r"(\d+) skipped, (\d+) failed(?:, (\d+) unknown)?", re.MULTILINE)


def soak_project(folder: Path) -> Path:
    """The shipped project, without client-side rate limits, with a 1 s retry backoff,
    more concurrency per flow and a 26 h first look-back."""
    shutil.copytree(ROOT / "mappings", folder / "mappings")
    shutil.copytree(ROOT / "rules", folder / "rules")
    for mapping in (folder / "mappings").glob("*.yaml"):
        data = yaml.safe_load(mapping.read_text())
        data.get("connection", {}).pop("rate_limits", None)
        mapping.write_text(yaml.safe_dump(data, sort_keys=False))
    project = yaml.safe_load((ROOT / "connector.yaml").read_text())
    for flow in project["flows"].values():
        # lookback 26 h: the oldest generated orders are just under 24 h old, and the
        # fault-free reference's first runs take minutes; 24 h would drop them from one side
        flow.update(retry_backoff_seconds=1, max_attempts=20, concurrency=16,
                    lookback_hours=26)
    (folder / "connector.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    return folder


def two_marketplaces(sandbox: Sandbox) -> None:
    """Every other generated order sold on the second marketplace."""
    for index, order in enumerate(sorted(sandbox.amazon.orders)):
        if index % 2:
            sandbox.amazon.orders[order]["salesChannel"]["marketplaceId"] = MARKETPLACES[1]


@contextlib.contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """The state URL with its tables (ledger and job queue) in a new schema, then dropped."""
    import psycopg

    schema = f"soak_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"'.encode())
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE'.encode())


def ledger(url: str) -> Counter[str]:
    """Ledger entries by status (reports apart: they are not HTTP actions)."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(b"SELECT status, action = 'report', count(*) FROM ledger "
                            b"GROUP BY 1, 2").fetchall()
    return Counter({f"{status}{' (reports)' if report else ''}": count
                    for status, report, count in rows})


def reference(project: Path, orders: int, seed: int) -> tuple[dict[str, Any], int, float]:
    """Effects and actions done by fault-free runs, in process, on a sandbox seeded alike."""
    config = require(load_config(project))
    started = time.perf_counter()
    done = 0
    with Sandbox(orders=orders, seed=seed) as sandbox, tempfile.TemporaryDirectory() as tmp:
        two_marketplaces(sandbox)
        sandbox.amazon.feeds_api.polls_before_done = 0
        overrides = sandbox.settings()
        overrides["amazon"]["marketplace_ids"] = ",".join(MARKETPLACES)
        for _ in range(2):  # the second run sees what the first changed in its sources
            summaries, _ = run_flows(config, sorted(config.flows), f"sqlite:///{tmp}/ref.db",
                                     overrides, {}, poll_scale=0.0, now=sandbox.clock.now)
            done += sum(s.done for s in summaries)
            sandbox.advance(400)
        return effects(sandbox), done, time.perf_counter() - started


def worker_round(project: Path, env: dict[str, str], workers: int,
                 concurrency: int) -> tuple[list[int], str]:
    """`workers` × `connector worker --once`, together; (exit codes, their output).

    Their output goes to files, not pipes: a worker blocked on a full pipe (thousands of
    "failed:" lines) while holding a partition would stall the others until it is read."""
    with tempfile.TemporaryDirectory() as tmp:
        logs = [Path(tmp) / f"worker-{n}.log" for n in range(workers)]
        procs = []
        for log in logs:
            with log.open("w") as out:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "connector", "worker", "--once", "--project",
                     str(project), "--concurrency", str(concurrency)], env=env, text=True,
                    stdout=out, stderr=subprocess.STDOUT))
        codes = [proc.wait() for proc in procs]
        return codes, "\n".join(log.read_text() for log in logs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=2, help="partitions per worker")
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10, help="most worker rounds")
    parser.add_argument("--postgres", default=os.environ.get("CONNECTOR_TEST_POSTGRES", ""))
    parser.add_argument("--fault-comments", action="store_true",
                        help="inject faults into Commerce comments too")
    args = parser.parse_args()
    if not args.postgres:
        parser.error("give --postgres URL or set CONNECTOR_TEST_POSTGRES "
                     "(`. .ci/postgres.sh` starts a throwaway server)")
    with tempfile.TemporaryDirectory() as tmp, fresh_schema(args.postgres) as url:
        project = soak_project(Path(tmp))
        print(f"soak: {args.orders} orders, {args.workers} workers × concurrency "
              f"{args.concurrency}, faults in {args.fault_rate:.0%} of requests (seed "
              f"{args.seed}), PostgreSQL; client-side rate limits off, retry backoff 1 s"
              + ("" if args.fault_comments else ", Commerce comments spared"), flush=True)
        want, expected, ref_wall = reference(project, args.orders, args.seed)
        print(f"reference (fault-free, in process): {expected} actions in {ref_wall:.1f} s",
              flush=True)
        with Sandbox(orders=args.orders, seed=args.seed) as sandbox:
            two_marketplaces(sandbox)
            sandbox.amazon.feeds_api.polls_before_done = 0  # no 30 s poll interval
            sandbox.faults.randomly(args.fault_rate, seed=args.seed, kinds=KINDS,
                                    exclude=None if args.fault_comments else r"/comments$")
            env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
            for system, values in sandbox.settings().items():
                for name, value in values.items():
                    env[env_name(system, name)] = value
            env[env_name("amazon", "marketplace_ids")] = ",".join(MARKETPLACES)
            env["CONNECTOR_STATE"] = url
            started = time.perf_counter()
            rounds: list[str] = []
            for number in range(1, args.rounds + 1):
                codes, output = worker_round(project, env, args.workers, args.concurrency)
                rounds.append(output)
                runs = SUMMARY.findall(output)
                failed = sum(int(r[5]) + int(r[6] or 0) for r in runs)
                print(f"round {number}: {len(runs)} partition run(s), exit codes {codes}, "
                      f"{sum(int(r[2]) for r in runs)} action(s) done, {failed} failed or "
                      f"unknown ({time.perf_counter() - started:.1f} s)", flush=True)
                if all(code == 0 for code in codes) and number > 1:
                    break
                time.sleep(1.1)  # past the retry backoff
            wall = time.perf_counter() - started
            got = effects(sandbox)
            injected = Counter(name for name, _ in sandbox.faults.triggered)
            served = len(sandbox.requests)
            sandbox.faults.clear()
            simulator_errors = len(sandbox.errors)
        verdict = judge(got, want)
        entries = ledger(url)
        done = entries.get("done", 0)
    print(json.dumps({
        "orders": args.orders,
        "workers": args.workers,
        "rounds": len(rounds),
        "requests served": served,
        "faults injected": sum(injected.values()),
        "faults by kind": dict(sorted(injected.items())),
        "actions expected": expected,
        "actions done": done,
        # an answer lost, then the next read showed the effect: settled, not sent again
        "left pending, settled by reading": entries.get("pending", 0),
        "ledger": dict(sorted(entries.items())),
        "duplicates": len(verdict.duplicates),
        "losses": len(verdict.losses),
        "other mismatches": len(verdict.mismatches),
        "simulator errors": simulator_errors,
        "wall time (s)": round(wall, 1),
    }, indent=2))
    for title, lines in (("duplicate", verdict.duplicates), ("loss", verdict.losses),
                         ("mismatch", verdict.mismatches)):
        for line in lines[:10]:
            print(f"  {title}: {line}")
    return 0 if verdict.clean else 1


if __name__ == "__main__":
    sys.exit(main())
