"""Soak: `connector worker` processes on PostgreSQL over many orders with random faults.

    python benchmarks/soak.py [--orders 10000] [--workers 4] [--fault-rate 0.05]
                              [--postgres URL] [--seed 1] [--chaos-rounds 2]

(PostgreSQL: `--postgres`, else CONNECTOR_TEST_POSTGRES; `. .ci/postgres.sh` starts a
throwaway server and sets it.) Not a test: run on demand; it prints the figures.

The sandbox is served from this process with `Sandbox(orders=N)` split over two
marketplaces (so the three flows make five partitions for the workers to share), and injects
a seeded mix of 429s, 5xx, HTML pages, lost requests, dropped connections and cut or garbled
bodies into `--fault-rate` of all requests. Rounds of `--workers` × `connector worker --once`
run until a round ends clean. The end state is then compared, effect by effect, with
fault-free runs (in process) on an identically seeded sandbox: duplicates are effects seen
more often than in the reference, losses effects missing.

Duplicates are counted as requests too, since a target refuses or absorbs many of them (a
second create refused by its unique id, a cancel of a cancelled order, a repeated feed or
shipment confirmation): every mutating request that reaches a simulator (after the faults
that fail before it acts) is counted per effect (the order and operation it acts on: the
path, a Commerce create's ext_order_id, each order of an Amazon feed with its feed type)
and compared with the reference's count. During the first `--chaos-rounds` rounds, a seeded
chaos thread kills a random worker with SIGKILL or SIGTERM, or terminates the sessions
holding the run locks (pg_terminate_backend, as a failover would), every 2 to 6 seconds
(six times a round; a killed worker is replaced, as its supervisor would);
the rounds after wait for the fleet to notice (stale heartbeats, fence times) and run clean.

Two liberties, both printed: the mappings' client-side rate limits are dropped (they model
the real APIs' quotas, which the sandbox does not enforce; at SP-API getOrder's 0.5/s the
run would take hours), and the retry backoff is one second (a failed action is retried by
the next round instead of five minutes later). Commerce comments get faults too (counted as
requests like every effect) unless `--spare-comments`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
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
SUMMARY = re.compile(r"^(\S+): (\d+) order\(s\)(?: \([^)]*\))?: (\d+) action\(s\) done, "
                     r"(\d+) already done, (\d+) skipped, (\d+) failed(?:, (\d+) unknown)?",
                     re.MULTILINE)


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


class RequestCount:
    """Mutating requests that reached a simulator, per effect (see the module's doc)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.counts: Counter[str] = Counter()
        self._documents: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        for system in ("amazon", "vtex", "adobe-commerce", "walmart"):
            sandbox.faults.on_next(system, "*", ".*", self._seen, count=None, after=True)

    def _seen(self, request: Any) -> None:
        path = request.path
        if request.method in ("GET", "HEAD") or path.endswith(("/auth/o2/token", "/v3/token")) \
                or path == "/feeds/2021-06-30/documents":
            return  # a read, a token, a feed document's allocation: no effect
        body = bytes(request.body or b"")
        with self._lock:
            if request.method == "PUT" and "/feeds/" not in path:  # a feed document's upload
                self._documents[path.rsplit("/", 1)[-1]] = re.findall(
                    r"<AmazonOrderID>([^<]+)</AmazonOrderID>", body.decode(errors="replace"))
                return
            try:
                document = json.loads(body) if body else {}
            except ValueError:
                document = {}
            if path == "/feeds/2021-06-30/feeds" and isinstance(document, dict):
                feed = str(document.get("feedType"))
                for order in self._documents.get(str(document.get("inputFeedDocumentId")), []):
                    self.counts[f"amazon feed {feed} {order}"] += 1
                return
            entity = document.get("entity") if isinstance(document, dict) else None
            if path == "/V1/orders" and isinstance(entity, dict):
                self.counts[f"commerce create {entity.get('ext_order_id')}"] += 1
                return
            digest = "" if re.search(r"\d", path) else \
                " " + hashlib.sha1(body).hexdigest()[:10]  # no id in the path: the body's
            self.counts[f"{request.system} {request.method} {path}{digest}"] += 1


def duplicated(got: Counter[str], want: Counter[str]) -> tuple[int, int, list[str]]:
    """(effects sent more often than in the reference, extra requests, a few examples)."""
    extra = {key: got[key] - want[key] for key in got if key in want and got[key] > want[key]}
    examples = [f"{key}: {got[key]} request(s), reference {want[key]}"
                for key in sorted(extra)[:10]]
    return len(extra), sum(extra.values()), examples


class Chaos(threading.Thread):
    """Kills a random worker (SIGKILL or SIGTERM; a new one replaces it) or ends the run
    locks' sessions, seeded, every 2 to 6 s while `procs` run, six times at most."""

    def __init__(self, url: str, procs: list[subprocess.Popen[str]], rng: random.Random,
                 events: Counter[str]) -> None:
        super().__init__(daemon=True)
        self.url, self.procs, self.rng, self.events = url, procs, rng, events
        self.done = threading.Event()
        self.replace: Callable[[], None] = lambda: None

    def run(self) -> None:
        for _ in range(6):  # a few events a round, each killed worker replaced
            if self.done.wait(self.rng.uniform(2.0, 6.0)):
                return
            live = [proc for proc in self.procs if proc.poll() is None]
            if not live:
                return
            kind = self.rng.choice(["SIGKILL", "SIGTERM", "lock sessions ended"])
            if kind == "lock sessions ended":
                self.events["lock sessions ended (sessions)"] += end_lock_sessions(self.url)
            else:
                self.rng.choice(live).send_signal(getattr(signal, kind))
                self.replace()
            self.events[kind] += 1


def end_lock_sessions(url: str) -> int:
    """pg_terminate_backend on the sessions of this database holding a run lock."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            b"SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_database d ON "
            b"d.oid = l.database WHERE l.locktype = 'advisory' AND l.classid = %s::int4::oid "
            b"AND d.datname = current_database() AND l.pid <> pg_backend_pid()",
            (0x636F6E6E,)).fetchall()
    return len(rows)


def reference(project: Path, orders: int, seed: int
              ) -> tuple[dict[str, Any], int, float, Counter[str]]:
    """Effects, actions done and mutating requests per effect of fault-free runs, in
    process, on a sandbox seeded alike."""
    config = require(load_config(project))
    started = time.perf_counter()
    done = 0
    with Sandbox(orders=orders, seed=seed) as sandbox, tempfile.TemporaryDirectory() as tmp:
        two_marketplaces(sandbox)
        requests = RequestCount(sandbox)
        sandbox.amazon.feeds_api.polls_before_done = 0
        overrides = sandbox.settings()
        overrides["amazon"]["marketplace_ids"] = ",".join(MARKETPLACES)
        for _ in range(2):  # the second run sees what the first changed in its sources
            summaries, _ = run_flows(config, sorted(config.flows), f"sqlite:///{tmp}/ref.db",
                                     overrides, {}, poll_scale=0.0, now=sandbox.clock.now)
            done += sum(s.done for s in summaries)
            sandbox.advance(400)
        return effects(sandbox), done, time.perf_counter() - started, requests.counts


def worker_round(project: Path, env: dict[str, str], workers: int, concurrency: int,
                 chaos: Callable[[list[subprocess.Popen[str]]], Chaos] | None = None
                 ) -> tuple[list[int], str]:
    """`workers` × `connector worker --once`, together; (exit codes, their output).

    Their output goes to files, not pipes: a worker blocked on a full pipe (thousands of
    "failed:" lines) while holding a partition would stall the others until it is read."""
    with tempfile.TemporaryDirectory() as tmp:
        logs: list[Path] = []
        procs: list[subprocess.Popen[str]] = []

        def start() -> None:
            """One more worker (a killed one is replaced, as its supervisor would)."""
            logs.append(Path(tmp) / f"worker-{len(logs)}.log")
            with logs[-1].open("w") as out:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "connector", "worker", "--once", "--project",
                     str(project), "--concurrency", str(concurrency)], env=env, text=True,
                    stdout=out, stderr=subprocess.STDOUT))

        for _ in range(workers):
            start()
        agent = chaos(procs) if chaos is not None else None
        if agent is not None:
            agent.replace = start
            agent.start()
        while any(proc.poll() is None for proc in list(procs)):
            time.sleep(0.2)
        if agent is not None:
            agent.done.set()
            agent.join()
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
    parser.add_argument("--spare-comments", action="store_true",
                        help="inject no faults into Commerce comments")
    parser.add_argument("--chaos-rounds", type=int, default=2,
                        help="rounds whose workers are killed and lock sessions ended")
    args = parser.parse_args()
    if not args.postgres:
        parser.error("give --postgres URL or set CONNECTOR_TEST_POSTGRES "
                     "(`. .ci/postgres.sh` starts a throwaway server)")
    with tempfile.TemporaryDirectory() as tmp, fresh_schema(args.postgres) as url:
        project = soak_project(Path(tmp))
        print(f"soak: {args.orders} orders, {args.workers} workers × concurrency "
              f"{args.concurrency}, faults in {args.fault_rate:.0%} of requests (seed "
              f"{args.seed}), PostgreSQL; client-side rate limits off, retry backoff 1 s"
              + (", Commerce comments spared" if args.spare_comments else "")
              + f"; workers killed and lock sessions ended in {args.chaos_rounds} round(s)",
              flush=True)
        want, expected, ref_wall, ref_requests = reference(project, args.orders, args.seed)
        print(f"reference (fault-free, in process): {expected} actions in {ref_wall:.1f} s",
              flush=True)
        with Sandbox(orders=args.orders, seed=args.seed) as sandbox:
            two_marketplaces(sandbox)
            sandbox.amazon.feeds_api.polls_before_done = 0  # no 30 s poll interval
            sandbox.faults.randomly(args.fault_rate, seed=args.seed, kinds=KINDS,
                                    exclude=r"/comments$" if args.spare_comments else None)
            requests = RequestCount(sandbox)
            rng = random.Random(args.seed)
            events: Counter[str] = Counter()
            env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
            for system, values in sandbox.settings().items():
                for name, value in values.items():
                    env[env_name(system, name)] = value
            env[env_name("amazon", "marketplace_ids")] = ",".join(MARKETPLACES)
            env["CONNECTOR_STATE"] = url
            started = time.perf_counter()
            rounds: list[str] = []
            for number in range(1, args.rounds + 1):
                chaotic = number <= args.chaos_rounds
                codes, output = worker_round(
                    project, env, args.workers, args.concurrency,
                    (lambda procs: Chaos(url, procs, rng, events)) if chaotic else None)
                rounds.append(output)
                runs = SUMMARY.findall(output)
                failed = sum(int(r[5]) + int(r[6] or 0) for r in runs)
                print(f"round {number}: {len(runs)} partition run(s), exit codes {codes}, "
                      f"{sum(int(r[2]) for r in runs)} action(s) done, {failed} failed or "
                      f"unknown ({time.perf_counter() - started:.1f} s)", flush=True)
                if all(code == 0 for code in codes) and number > args.chaos_rounds + 1:
                    break
                if number == args.chaos_rounds:
                    # killed workers' heartbeats go stale (30 s), fence times pass (60 s)
                    time.sleep(61)
                time.sleep(1.1)  # past the retry backoff
            wall = time.perf_counter() - started
            got = effects(sandbox)
            injected = Counter(name for name, _ in sandbox.faults.triggered)
            served = len(sandbox.requests)
            sandbox.faults.clear()
            simulator_errors = len(sandbox.errors)
        verdict = judge(got, want)
        effects_duplicated, extra_requests, examples = duplicated(requests.counts, ref_requests)
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
        "chaos": dict(sorted(events.items())),
        "mutating requests": sum(requests.counts.values()),
        "mutating requests, reference": sum(ref_requests.values()),
        "effects sent more than once (requests)": effects_duplicated,
        "duplicate requests": extra_requests,
        "duplicates": len(verdict.duplicates),
        "losses": len(verdict.losses),
        "other mismatches": len(verdict.mismatches),
        "simulator errors": simulator_errors,
        "wall time (s)": round(wall, 1),
    }, indent=2))
    for title, lines in (("duplicate request", examples), ("duplicate", verdict.duplicates),
                         ("loss", verdict.losses), ("mismatch", verdict.mismatches)):
        for line in lines[:10]:
            print(f"  {title}: {line}")
    return 0 if verdict.clean and not extra_requests else 1


if __name__ == "__main__":
    sys.exit(main())
