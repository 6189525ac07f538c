"""`plan_order` as an older git revision plans, timed alongside this tree's (bench_evaluate.py
--baseline REV): before/after figures for planning measured in one run.

A revision's `connector` package cannot share a process with this tree's, so it runs in a
child process, started once per table with that revision's tree (`git archive REV`), the
generated rule file, and the very orders the parent plans (as JSON). The parent asks it to
plan them all once per interleaved round (`PlanBaseline.run`) and it answers with the CPU
seconds that took, on the same clock as the parent's figures (`time.process_time`, or the
wall clock with --wall); the parent's ratios to ZEN then cover both trees.

The child plans with the revision's own loader, mappings (the revision's
tests/fixtures/valid/mappings) and `plan_order`; a revision too old to have
`plan.prepare(config, flow, environ)` and `plan.plan_order(runtime, order, target, outputs,
now)` cannot be timed this way.

    python benchmarks/plan_baseline.py TREE RULES_FILE ORDERS_JSON [--wall]   (the child)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FLOW = "amazon-to-vtex"
NOW = "2026-11-01T00:00:00Z"


def export(rev: str) -> Path:
    """Revision `rev`'s tree in a new temporary directory (the caller removes it)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True,
                             capture_output=True).stdout
    tree = Path(tempfile.mkdtemp(prefix=f"plan-baseline-{rev}-"))
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        # the "data" filter where this Python has it (3.10.12+, 3.11.4+): our own tree, but
        # extracting without it warns from 3.12 on
        tar.extractall(tree, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return tree


class PlanBaseline:
    """A child process planning `orders` with the tree at `tree` (see the module's doc)."""

    def __init__(self, tree: Path, rules_file: Path, orders: list[tuple[Any, Any]],
                 wall: bool = False) -> None:
        self._dir = tempfile.TemporaryDirectory()
        data = Path(self._dir.name) / "orders.json"
        data.write_text(json.dumps(orders))
        command = [sys.executable, __file__, str(tree), str(rules_file), str(data)]
        self._child = subprocess.Popen(command + (["--wall"] if wall else []), text=True,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.ready = self._answer()  # the module the child planned with

    def _answer(self) -> str:
        assert self._child.stdout is not None
        line = self._child.stdout.readline()
        if not line:
            raise RuntimeError("the baseline's planning process ended (its error is above)")
        return line.strip()

    def run(self) -> float:
        """Seconds the child took to plan every order once."""
        assert self._child.stdin is not None
        self._child.stdin.write("run\n")
        self._child.stdin.flush()
        return float(self._answer())

    def close(self) -> None:
        if self._child.stdin is not None:
            self._child.stdin.close()
        self._child.wait()
        self._dir.cleanup()


def _child(tree: Path, rules_file: Path, data: Path, wall: bool) -> None:
    sys.path.insert(0, str(tree))  # before anything imports this tree's connector
    from connector import plan
    from connector.project import load_config, require
    if not Path(plan.__file__).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"planned with {plan.__file__}, not the tree at {tree}")
    clock = time.perf_counter if wall else time.process_time
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "rules").mkdir()
        (project / "rules" / f"{FLOW}.yaml").write_text(rules_file.read_text())
        (project / "mappings").symlink_to(tree / "tests" / "fixtures" / "valid" / "mappings")
        runtime = plan.prepare(require(load_config(project)), FLOW, {})
    orders = [tuple(pair) for pair in json.loads(data.read_text())]
    plan_order = plan.plan_order
    print(plan.__file__, flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        begin = clock()
        for order, target in orders:
            plan_order(runtime, order, target, {}, NOW)
        print(clock() - begin, flush=True)


if __name__ == "__main__":
    _child(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), "--wall" in sys.argv[4:])
