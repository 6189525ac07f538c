"""`connector validate` on randomly broken copies of the shipped project, before and after,
side by side.

    python benchmarks/fuzz_validate.py [--cases 100] [--seed 7] [--baseline REV ...] [--timeout 20]

The cases of tests/test_validate_fuzz.py (tests/hostile_yaml.py: the shipped files with lines
deleted, duplicated or re-indented, scalars and tags swapped in, anchors and recursive merge
keys, deep nesting, control characters, FIFOs, /dev/zero, symlink loops), many more of them.
Each case is one broken project, given to every tree in turn: `connector validate` as a
process of its own (`python -m connector`, the tree on PYTHONPATH; each `--baseline REV` is
checked out with `git worktree add --detach` into a temporary directory), under a 2 GB address-space
limit and a `--timeout` (a FIFO hung the tree before issue 11). Its own rusage (wait4) gives
the peak RSS of that process alone.

Printed per tree: the exits (0 clean, 1 findings, 2 usage, 3 traceback), processes killed at
the timeout, wall time (median, max: issue 11's goal is under a second for every case), peak
RSS (median, max), the finding codes most often reported, and the slowest cases.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import hostile_yaml  # noqa: E402

LIMIT_BYTES = 2 * 1024**3
_CODE = re.compile(r": (?:error|warning): .*\[([a-z][a-z0-9-]*)\]\s*$")


@dataclass(frozen=True)
class Run:
    """One `validate` process: how it ended and what it cost."""

    what: str
    exit: int  # -1: killed at the timeout
    seconds: float
    peak_mb: float
    traceback: bool
    codes: tuple[str, ...]
    last: str  # the output's last line (a traceback's exception)


@dataclass
class Tree:
    name: str
    path: Path
    runs: list[Run] = field(default_factory=list)


def _limit() -> None:  # pragma: no cover (runs in the child before exec)
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, LIMIT_BYTES))


def run_process(tree: Path, argv: list[str], timeout: float, scratch: Path,
                env: dict[str, str] | None = None) -> tuple[int, float, float, str]:
    """`python -m connector ARGV` from `tree` (exit code, -1 when killed at `timeout`;
    seconds; peak RSS in MB of that process alone, from wait4; its output)."""
    out = scratch / "out.txt"
    full = {**os.environ, **(env or {}), "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    with out.open("wb") as sink:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "connector", *argv], cwd=tree, env=full,
                                stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                preexec_fn=_limit)
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen
    text = out.read_text(encoding="utf-8", errors="replace")
    return -1 if killed.is_set() else proc.returncode, seconds, usage.ru_maxrss / 1024, text


def validate(tree: Path, project: Path, what: str, timeout: float, scratch: Path) -> Run:
    """`connector validate --project PROJECT` from `tree`."""
    code, seconds, peak, text = run_process(tree, ["validate", "--project", str(project)],
                                            timeout, scratch)
    codes = tuple(m.group(1) for line in text.splitlines() if (m := _CODE.search(line)))
    last = next((line for line in reversed(text.splitlines()) if line.strip()), "")
    return Run(what, code, seconds, peak, "Traceback" in text, codes, last[:160])


def checkout(rev: str, directory: Path) -> Path:
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet",
                    str(directory), rev], check=True)
    return directory


def _report(tree: Tree) -> None:
    runs = tree.runs
    exits = Counter(r.exit for r in runs)
    seconds = [r.seconds for r in runs]
    peaks = [r.peak_mb for r in runs]
    print(f"{tree.name:<14} {exits[0]:>5} {exits[1]:>5} {exits[2]:>5} {exits[3]:>5} "
          f"{exits[-1]:>8} {sum(r.traceback for r in runs):>10} "
          f"{statistics.median(seconds):>8.2f} {max(seconds):>6.2f} "
          f"{sum(s >= 1 for s in seconds):>6} {statistics.median(peaks):>8.1f} {max(peaks):>7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--baseline", action="append", default=[],
                        help="git revision to run beside this checkout (again for more)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per process")
    parser.add_argument("--slowest", type=int, default=5, help="slowest cases listed per tree")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        trees = [Tree(rev, checkout(rev, root / f"baseline-{n}"))
                 for n, rev in enumerate(args.baseline)]
        trees.append(Tree("this checkout", REPO))
        try:
            rng = random.Random(args.seed)
            for _ in range(args.cases):
                project, what = hostile_yaml.broken_project(rng, root / "case")
                for tree in trees:
                    tree.runs.append(validate(tree.path, project, what, args.timeout, root))
        finally:
            for tree in trees[:-1]:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                                str(tree.path)], check=False)
    print(f"validate on {args.cases} broken copies of the shipped project (seed {args.seed}), "
          f"{LIMIT_BYTES // 1024**3} GB and {args.timeout:g} s per process at most")
    print(f"{'tree':<14} {'exit0':>5} {'exit1':>5} {'exit2':>5} {'exit3':>5} {'timeout':>8} "
          f"{'traceback':>10} {'median s':>8} {'max s':>6} {'>= 1 s':>6} {'median MB':>8} "
          f"{'max MB':>7}")
    for tree in trees:
        _report(tree)
    for tree in trees:
        codes = Counter(code for run in tree.runs for code in set(run.codes))
        print(f"{tree.name}: cases with each finding: "
              + ", ".join(f"{code} {n}" for code, n in codes.most_common(12)))
        for run in tree.runs:
            if run.exit == 3 or run.traceback:
                print(f"{tree.name}: exit {run.exit}: {run.what}: {run.last}")
        print(f"{tree.name}: slowest:")
        for run in sorted(tree.runs, key=lambda r: -r.seconds)[: args.slowest]:
            print(f"  {run.seconds:6.2f} s {run.peak_mb:7.1f} MB exit {run.exit:>2}  {run.what}")


if __name__ == "__main__":
    main()
