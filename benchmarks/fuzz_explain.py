"""`explain` on random hostile orders and templates, before and after, side by side.

    python benchmarks/fuzz_explain.py [--cases 500] [--seed 11] [--baseline REV]

The cases of tests/test_explain_fuzz.py (tests/hostile.py: order records mutated from the
shipped example, projects whose VTEX cancel step carries a hostile template), many more of
them. Each tree runs in a child process of its own (`--baseline REV` is exported with `git
archive`; the other is this checkout) under a 2 GB address-space limit and a 20 s alarm per
case, so that a template that would take gigabytes or run for minutes in the old tree is
counted, not suffered. Printed per tree: the exits (0 verdict, 2 refused, 3 traceback),
cases stopped by the alarm or out of memory, outputs that held the secret, and the time.
Then the worst template, `validate` of a rule whose argument is `{{ 'x' * 10**N }}`: its
time and the child's peak memory (ru_maxrss), for N = 8 in both trees (10**9 needs 3.7 GB in
the old one) and 9 in this one. What the bounds cost an ordinary render is
benchmarks/bench_render.py's to measure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import hostile  # noqa: E402

LIMIT_BYTES = 2 * 1024**3
ALARM_SECONDS = 20
ENV = {"CONNECTOR_VTEX_APP_KEY": hostile.SECRET, "CONNECTOR_VTEX_APP_TOKEN": "tok-" + hostile.SECRET,
       "CONNECTOR_VTEX_ACCOUNT": "shop"}


class _Alarm(Exception):
    pass


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Alarm()


def child_fuzz(cases: int, seed: int) -> dict[str, Any]:
    """The loop, in this process (whose `connector` is the tree being measured)."""
    from click.testing import CliRunner

    from connector.cli import main
    from connector.commands import explain

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, hard))
    signal.signal(signal.SIGALRM, _on_alarm)
    explain.checked = hostile.cached(explain.checked)  # type: ignore[attr-defined]
    rng = random.Random(seed)
    counts = {"0": 0, "2": 0, "3": 0, "other": 0, "alarm": 0, "memory": 0, "leak": 0}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        projects = [hostile.project_with(root / f"project-{n}", hostile.template(rng))
                    for n in range(max(6, cases // 10))]
        projects += [hostile.project_with(root / f"secret-{n}", text) for n, text in enumerate(
            ("{{ settings.app_key | join('-') }}", "{{ settings.app_key | reverse | join }}"))]
        base = json.loads(hostile.ORDER.read_text())
        for n in range(cases):
            signal.alarm(ALARM_SECONDS)
            try:
                record = hostile.order(rng, base if rng.random() < 0.6 else hostile.canonical(rng))
                path = hostile.write_order(root / "order.json", record)
                result = CliRunner().invoke(
                    main, ["explain", "--project", str(projects[n % len(projects)]), str(path),
                           "--flow", hostile.FLOW, "--target", str(hostile.TARGET)], env=ENV)
                signal.alarm(0)
            except _Alarm:
                counts["alarm"] += 1
                continue
            except MemoryError:
                signal.alarm(0)
                counts["memory"] += 1
                _release()
                continue
            if isinstance(result.exception, (_Alarm, MemoryError)):
                counts["alarm" if isinstance(result.exception, _Alarm) else "memory"] += 1
                _release()
                continue
            code = str(result.exit_code)
            counts[code if code in counts else "other"] += 1
            counts["leak"] += any(leak in result.output for leak in hostile.LEAKS)
            if code == "3" and "MemoryError" in result.output:
                _release()
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))  # the clean-up needs memory too
    counts["seconds"] = round(time.perf_counter() - start, 1)  # type: ignore[assignment]
    return counts


def _release() -> None:
    """After a case ran out of memory: drop what the tree's caches keep of it (compiled
    templates holding the constants Jinja folded), so that the next case has the memory."""
    import gc

    for name, module in list(sys.modules.items()):
        if name.startswith("connector"):
            for value in list(vars(module).values()):
                if callable(getattr(value, "cache_clear", None)):
                    value.cache_clear()
    gc.collect()


def child_validate(power: int) -> dict[str, Any]:
    """`validate` of the shipped project with one rule argument `{{ 'x' * 10**power }}`."""
    from connector.commands.validate import findings_for

    with tempfile.TemporaryDirectory() as tmp:
        project = hostile.project_with(Path(tmp), "ok")
        rules = project / "rules" / "amazon-to-vtex.yaml"
        text = rules.read_text()
        marker = "reason: "
        at = text.index(marker)
        end = text.index("\n", at)
        rules.write_text(text[:at] + marker + json.dumps("{{ 'x' * 10**%d }}" % power) + text[end:])
        start = time.perf_counter()
        findings, _ = findings_for(project, [])
        seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2),
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "findings": sorted({f.code for f in findings})}


def _run_child(tree: Path, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, __file__, "--child", *args], env=env, check=True,
                         capture_output=True, text=True, cwd=tree).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def _export(rev: str, directory: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "connector"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--baseline", help="git revision to run beside this checkout")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, value = args.child[0], int(args.child[1])
        children = {"fuzz": lambda: child_fuzz(value, args.seed),
                    "validate": lambda: child_validate(value)}
        result = children[kind]()
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        trees = [("this checkout", REPO)]
        if args.baseline:
            trees.insert(0, (args.baseline, _export(args.baseline, Path(tmp))))
        print(f"explain on {args.cases} hostile cases (seed {args.seed}), "
              f"{LIMIT_BYTES // 1024**3} GB and {ALARM_SECONDS} s per case at most")
        print(f"{'tree':<16} {'exit 0':>7} {'exit 2':>7} {'exit 3':>7} {'alarm':>6} "
              f"{'no mem':>6} {'leaks':>6} {'seconds':>8}")
        for name, tree in trees:
            r = _run_child(tree, "fuzz", str(args.cases))
            print(f"{name:<16} {r['0']:>7} {r['2']:>7} {r['3']:>7} {r['alarm']:>6} "
                  f"{r['memory']:>6} {r['leak']:>6} {r['seconds']:>8}")
        print("validate, a rule argument \"{{ 'x' * 10**N }}\":")
        for name, tree in trees:
            for power in (8,) if tree is not REPO else (8, 9):
                r = _run_child(tree, "validate", str(power))
                print(f"{name:<16} N={power}: {r['seconds']:>6} s, peak {r['peak_mb']:>7} MB, "
                      f"findings {', '.join(r['findings']) or 'none'}")


if __name__ == "__main__":
    main()
