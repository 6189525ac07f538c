"""Soak: `connector worker` processes on PostgreSQL over many orders with random faults.

    python benchmarks/soak.py [--orders 10000] [--workers 4] [--fault-rate 0.05]
                              [--postgres URL] [--seed 1] [--chaos-rounds 2]
                              [--takeover [--apply-per-flow]] [--latency S]
                              [--baseline REV] [--logs DIR]

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

`--takeover` makes the chaos rounds issue 12's own reproduction instead: 0.5 s after the
first run lock is held, the sessions holding run locks are terminated and `connector apply`
is started beside the fleet (`--apply-per-flow`: one `apply --flow F` per flow, together),
so that a run that lost its lock and the process that took it over act at once; `--latency`
(seconds added to every sandbox response) makes the runs last long enough to overlap.
`--baseline REV` first runs the same soak (same seed, a fresh sandbox and schema) with REV's
`connector` (a temporary git worktree; the reference is this tree's) and prints both side
by side, e.g. `--baseline 212902a^` for the tree before fencing (with REV's own shipped
project: reads may differ, mutating requests are compared with this tree's reference).

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
from connector.worker import bare  # noqa: E402

MARKETPLACES = ("ATVPDKIKX0DER", "A2EUQ1WTGCTBG2")
KINDS = ("429", "503", "500", "html", "lost", "drop", "truncate", "cut", "500-after")
SUMMARY = re.compile(r"^(\S+): (\d+) order\(s\)(?: \([^)]*\))?: (\d+) action\(s\) done, "
                     r"(\d+) already done, (\d+) skipped, (\d+) failed(?:, (\d+) unknown)?",
                     re.MULTILINE)


def soak_project(folder: Path, root: Path = ROOT) -> Path:
    """The project shipped in `root`, without client-side rate limits, with a 1 s retry
    backoff, more concurrency per flow and a 26 h first look-back."""
    shutil.copytree(root / "mappings", folder / "mappings")
    shutil.copytree(root / "rules", folder / "rules")
    for mapping in (folder / "mappings").glob("*.yaml"):
        data = yaml.safe_load(mapping.read_text())
        data.get("connection", {}).pop("rate_limits", None)
        mapping.write_text(yaml.safe_dump(data, sort_keys=False))
    project = yaml.safe_load((root / "connector.yaml").read_text())
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
        self.launch: Callable[..., None] = lambda *command: None

    def settled(self) -> bool:
        """Whether the round may end once its processes have (Chaos: whenever they have)."""
        return True

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


class Takeover(Chaos):
    """The issue's reproduction: 0.5 s after the first run lock is taken, the sessions
    holding run locks are terminated (as a failover would) and `connector apply` is started
    beside the fleet, which takes the flows whose locks are free: one `apply --flow F` per
    flow of `flows` at once (so that each overlaps the fleet's runs of it), else one
    `apply` of every flow."""

    def __init__(self, url: str, procs: list[subprocess.Popen[str]], rng: random.Random,
                 events: Counter[str]) -> None:
        super().__init__(url, procs, rng, events)
        self.fired = threading.Event()
        self.flows: list[str] = []

    def settled(self) -> bool:
        return self.fired.is_set()

    def run(self) -> None:
        try:
            deadline = time.monotonic() + 120
            while not lock_sessions(self.url):
                if time.monotonic() > deadline or self.done.wait(0.02) or \
                        all(proc.poll() is not None for proc in self.procs):
                    return
            if self.done.wait(0.5):
                return
            self.events["lock sessions ended (sessions)"] += end_lock_sessions(self.url)
            self.events["lock sessions ended"] += 1
            for flow in self.flows or [""]:
                self.launch("apply", *(("--flow", flow) if flow else ()))
                self.events["apply started"] += 1
        finally:
            self.fired.set()


def lock_sessions(url: str) -> int:
    """How many sessions of this database hold a run lock."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            b"SELECT count(DISTINCT l.pid) FROM pg_locks l JOIN pg_database d ON "
            b"d.oid = l.database WHERE l.locktype = 'advisory' AND l.classid = %s::int4::oid "
            b"AND d.datname = current_database() AND l.granted", (0x636F6E6E,)).fetchone()
    return int(row[0]) if row else 0


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
                 chaos: Callable[[list[subprocess.Popen[str]]], Chaos | Takeover] | None = None,
                 tree: Path | None = None) -> tuple[list[int], str]:
    """`workers` × `connector worker --once`, together (of `tree`'s code when given);
    (exit codes, their output).

    Their output goes to files, not pipes: a worker blocked on a full pipe (thousands of
    "failed:" lines) while holding a partition would stall the others until it is read."""
    if tree is not None:
        env = {**env, "PYTHONPATH": str(tree)}
    with tempfile.TemporaryDirectory() as tmp:
        logs: list[Path] = []
        procs: list[subprocess.Popen[str]] = []

        def launch(*command: str) -> None:
            logs.append(Path(tmp) / f"{command[0]}-{len(logs)}.log")
            with logs[-1].open("w") as out:
                out.write(f"== {' '.join(command)}\n")
                out.flush()
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "connector", *command, "--project", str(project)],
                    env=env, text=True, stdout=out, stderr=subprocess.STDOUT,
                    cwd=str(tree) if tree is not None else None))

        def start() -> None:
            """One more worker (a killed one is replaced, as its supervisor would)."""
            launch("worker", "--once", "--concurrency", str(concurrency))

        for _ in range(workers):
            start()
        agent = chaos(procs) if chaos is not None else None
        if agent is not None:
            agent.replace = start
            agent.launch = launch
            agent.start()
        while any(proc.poll() is None for proc in list(procs)) or \
                (agent is not None and agent.is_alive() and not agent.settled()):
            time.sleep(0.2)
        if agent is not None:
            agent.done.set()
            agent.join()
        codes = [proc.wait() for proc in procs]
        return codes, "\n".join(bare(log.read_text()) for log in logs)


def fleet(args: argparse.Namespace, project: Path, want: dict[str, Any],
          ref_requests: Counter[str], tree: Path | None, label: str
          ) -> tuple[dict[str, Any], list[str]]:
    """The fleet's rounds on a fresh sandbox and schema, the workers (and `apply`) running
    `tree`'s code (this tree's when None); (figures, example lines)."""
    with fresh_schema(args.postgres) as url, \
            Sandbox(orders=args.orders, seed=args.seed, latency=args.latency) as sandbox:
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
        flows = sorted(yaml.safe_load((project / "connector.yaml").read_text())["flows"])

        def agent(procs: list[subprocess.Popen[str]]) -> Chaos:
            if not args.takeover:
                return Chaos(url, procs, rng, events)
            takeover = Takeover(url, procs, rng, events)
            takeover.flows = flows if args.apply_per_flow else []
            return takeover

        started = time.perf_counter()
        rounds: list[str] = []
        for number in range(1, args.rounds + 1):
            chaotic = number <= args.chaos_rounds
            codes, output = worker_round(
                project, env, args.workers, args.concurrency,
                agent if chaotic else None, tree)
            rounds.append(output)
            if args.logs:
                Path(args.logs).mkdir(parents=True, exist_ok=True)
                (Path(args.logs) / f"{label.replace(' ', '-')}-round-{number}.log").write_text(output)
            runs = SUMMARY.findall(output)
            failed = sum(int(r[5]) + int(r[6] or 0) for r in runs)
            print(f"{label} round {number}: {len(runs)} run(s), exit codes {codes}, "
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
        entries = ledger(url)
    verdict = judge(got, want)
    effects_duplicated, extra_requests, examples = duplicated(requests.counts, ref_requests)
    figures = {
        "rounds": len(rounds),
        "requests served": served,
        "faults injected": sum(injected.values()),
        "faults by kind": dict(sorted(injected.items())),
        "actions done": entries.get("done", 0),
        # an answer lost, then the next read showed the effect: settled, not sent again
        "left pending, settled by reading": entries.get("pending", 0),
        "ledger": dict(sorted(entries.items())),
        "chaos": dict(sorted(events.items())),
        "mutating requests": sum(requests.counts.values()),
        "mutating requests, reference": sum(ref_requests.values()),
        "effects sent more than once (requests)": effects_duplicated,
        "duplicate requests": extra_requests,
        "duplicate requests by kind": dict(sorted(kinds(requests.counts, ref_requests).items())),
        "duplicates": len(verdict.duplicates),
        "losses": len(verdict.losses),
        "other mismatches": len(verdict.mismatches),
        "simulator errors": simulator_errors,
        "wall time (s)": round(wall, 1),
    }
    lines = [f"{title}: {line}" for title, found in (
        ("duplicate request", examples), ("duplicate", verdict.duplicates),
        ("loss", verdict.losses), ("mismatch", verdict.mismatches)) for line in found[:10]]
    figures["clean"] = verdict.clean and not extra_requests
    return figures, lines


def kinds(got: Counter[str], want: Counter[str]) -> Counter[str]:
    """Extra requests by kind of effect (the effect's name without its order or id)."""
    found: Counter[str] = Counter()
    for key in got:
        if got[key] > want[key] and key in want:
            kind = re.sub(r"/(?=[^/ ]*\d)[^/ ]{5,}", "/{id}", key)  # not /v0
            kind = re.sub(r" (?=[^ ]*\d)[^ ]+$", " {order}", kind)
            found[kind] += got[key] - want[key]
    return found


@contextlib.contextmanager
def baseline_tree(rev: str) -> Iterator[Path]:
    """`rev`'s tree in a temporary git worktree (its `connector` runs the fleet)."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q",
                        str(tree), rev], check=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(tree)], check=False)


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
    parser.add_argument("--takeover", action="store_true",
                        help="the chaos rounds are issue 12's reproduction instead: the lock "
                             "sessions ended 0.5 s into the round, `connector apply` started "
                             "beside the fleet")
    parser.add_argument("--apply-per-flow", action="store_true",
                        help="with --takeover: one `apply --flow F` per flow, together")
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds the sandbox adds to every response (the fleet's, not "
                             "the reference's): runs long enough for a take-over to overlap")
    parser.add_argument("--logs", metavar="DIR", help="keep each round's output there")
    parser.add_argument("--baseline", metavar="REV",
                        help="run the same soak first with REV's connector (a temporary git "
                             "worktree), and print both side by side")
    args = parser.parse_args()
    if not args.postgres:
        parser.error("give --postgres URL or set CONNECTOR_TEST_POSTGRES "
                     "(`. .ci/postgres.sh` starts a throwaway server)")
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        project = soak_project(Path(tmp))
        chaos = ("lock sessions ended 0.5 s in and `connector apply` started beside the fleet"
                 if args.takeover else "workers killed and lock sessions ended")
        print(f"soak: {args.orders} orders, {args.workers} workers × concurrency "
              f"{args.concurrency}, faults in {args.fault_rate:.0%} of requests (seed "
              f"{args.seed}), PostgreSQL; client-side rate limits off, retry backoff 1 s"
              + (", Commerce comments spared" if args.spare_comments else "")
              + f"; {chaos} in {args.chaos_rounds} round(s)"
              + (f"; {args.latency:g} s added to each response" if args.latency else ""),
              flush=True)
        want, expected, ref_wall, ref_requests = reference(project, args.orders, args.seed)
        print(f"reference (fault-free, in process): {expected} actions in {ref_wall:.1f} s",
              flush=True)
        trees: list[tuple[str, Path | None]] = []
        if args.baseline:
            trees.append((args.baseline, stack.enter_context(baseline_tree(args.baseline))))
        trees.append(("this tree", None))
        results = []
        for label, tree in trees:
            # a baseline runs its own shipped project (its connector may not read this one's)
            own = project if tree is None else soak_project(Path(tmp) / "baseline", tree)
            figures, lines = fleet(args, own, want, ref_requests, tree, label)
            results.append((label, figures, lines))
    print(json.dumps({"orders": args.orders, "workers": args.workers,
                      "actions expected": expected,
                      **{label: figures for label, figures, _ in results}}, indent=2))
    for label, _, lines in results:
        for line in lines:
            print(f"  {label}: {line}")
    if len(results) > 1:
        rows = ("mutating requests", "duplicate requests", "effects sent more than once "
                "(requests)", "duplicates", "losses", "wall time (s)")
        print(f"\n| | {' | '.join(label for label, _, _ in results)} |")
        print(f"|---|{'---|' * len(results)}")
        for row in rows:
            print(f"| {row} | {' | '.join(str(f[row]) for _, f, _ in results)} |")
        for kind in sorted({k for _, f, _ in results for k in f["duplicate requests by kind"]}):
            print(f"| {kind} | "
                  + " | ".join(str(f["duplicate requests by kind"].get(kind, 0))
                               for _, f, _ in results) + " |")
    return 0 if results[-1][1]["clean"] else 1


if __name__ == "__main__":
    sys.exit(main())
