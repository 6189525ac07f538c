"""`connector validate` time on large rule tables, before and after, side by side (on demand).

    python benchmarks/bench_validate.py [--baseline REV] [--repeat 3]

Generates the 1,000-rule first-hit table of bench_evaluate.py and an 8,000-rule one (about
1.9 MB), then times `python -m connector validate` as a whole process (what an integrator's
CI pays, imports included) with this tree's code and with the code of git revision REV
(default: the last commit before the validate speed work), alternating runs and keeping the
fastest of each, in wall-clock and in CPU seconds (the ratio is of CPU seconds, which other
processes on a shared machine disturb less). Also prints where the time goes in this tree (load, schema, references,
analysis) and the time per megabyte, which should stay about flat from 0.24 to 1.9 MB.

Each size is timed twice: with the package's bytecode cached (as after `pip install`, which
compiles it; here in a temporary PYTHONPYCACHEPREFIX, after one warm-up run), and compiled from
source on every run (PYTHONDONTWRITEBYTECODE=1, as on the development machines, which costs
about 45 ms of compiling the `connector` modules each time).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_evaluate import generated_flow  # noqa: E402

#: main just before libyaml, single template parse and the analysis fixes.
DEFAULT_BASELINE = "c363161"


def export(rev: str, into: Path) -> Path:
    """The `connector` package of revision `rev`, unpacked under `into`."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "connector"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def environment(code: Path, pycache: Path | None) -> dict[str, str]:
    """The environment of a timed process: the package under `code`, its bytecode cached
    under `pycache`, or (None) compiled from source on every run."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    env["PYTHONPATH"] = str(code)
    if pycache is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def whole_process(code: Path, project: Path, pycache: Path | None = None) -> tuple[float, float, str]:
    """Seconds (wall clock, and CPU: user + system) for one `validate --format json` process
    with the package under `code`. The CPU figure is the one to read on a shared machine:
    the wall clock also counts the time other processes had the CPU."""
    env = environment(code, pycache)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # Run from the project directory: `-m` puts the working directory first on sys.path, so
    # from this tree's root both sides would import this tree's package, whatever PYTHONPATH.
    done = subprocess.run([sys.executable, "-m", "connector", "validate", "--format", "json",
                           "--project", str(project)], env=env, capture_output=True, text=True,
                          cwd=project)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout or done.stderr


def imported_from(code: Path, project: Path) -> str:
    """Where the package `whole_process` runs with comes from (to check it is `code`'s)."""
    done = subprocess.run([sys.executable, "-c", "import connector; print(connector.__file__)"],
                          env={**os.environ, "PYTHONPATH": str(code)}, capture_output=True,
                          text=True, cwd=project, check=True)
    return done.stdout.strip()


def stages(project: Path) -> str:
    """Where the time goes in this tree, in process (imports excluded; CPU seconds)."""
    from connector import references, schema
    from connector.analysis.flow import analyse_flow
    from connector.load import load_file
    from connector.project import load_config

    rules = project / "rules" / "amazon-to-vtex.yaml"
    start = time.process_time()
    doc, _ = load_file(rules)
    loaded = time.process_time()
    assert doc is not None
    schema.check(doc, "rules")
    checked = time.process_time()
    config, _ = load_config(project)
    configured = time.process_time()
    references.check(config)
    referenced = time.process_time()
    for flow in config.flows.values():
        analyse_flow(flow, config.systems)
    analysed = time.process_time()
    return (f"load {loaded - start:.3f} s, schema {checked - loaded:.3f} s, "
            f"references {referenced - configured:.3f} s, analysis {analysed - referenced:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git revision to compare with")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="1000,8000", help="rule counts to generate")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base_dir = Path(tmp) / "baseline"
        base_dir.mkdir()
        base = export(args.baseline, base_dir)
        print(f"{'rules':>6} {'size':>8} {'bytecode':>9} {'before':>15} {'after':>15} {'ratio':>6}"
              "  after per MB   (wall clock / CPU, fastest of each; goal < 0.4 s at 1,000 rules)")
        for count in (int(n) for n in args.sizes.split(",")):
            project = Path(tmp) / f"r{count}"
            project.mkdir()
            generated_flow(project, count, random.Random(7))
            for code in (base, ROOT):
                assert imported_from(code, project).startswith(str(code)), "wrong package timed"
            size = (project / "rules" / "amazon-to-vtex.yaml").stat().st_size / 1e6
            for mode in ("cached", "source"):
                caches = ((Path(tmp) / "pyc-before", Path(tmp) / "pyc-after") if mode == "cached"
                          else (None, None))
                if mode == "cached":
                    whole_process(base, project, caches[0])  # warm-up: writes the bytecode
                    whole_process(ROOT, project, caches[1])
                before: list[tuple[float, float]] = []
                after: list[tuple[float, float]] = []
                outputs = set()
                for _ in range(args.repeat):
                    wall, cpu, output = whole_process(base, project, caches[0])
                    before.append((wall, cpu))
                    wall, cpu, output_now = whole_process(ROOT, project, caches[1])
                    after.append((wall, cpu))
                    outputs.add((output, output_now))
                bw, bc = min(w for w, _ in before), min(c for _, c in before)
                aw, ac = min(w for w, _ in after), min(c for _, c in after)
                same = all(old == new for old, new in outputs)
                print(f"{count:>6} {size:>6.2f}MB {mode:>9} {bw:>6.2f}s/{bc:.2f}s {aw:>6.2f}s/{ac:.2f}s "
                      f"{bc / ac:>5.1f}x  {aw / size:.2f}/{ac / size:.2f} s/MB"
                      f"  ({'same findings' if same else 'DIFFERENT findings'}, "
                      f"{output_now.count(chr(10) + '  {')} findings)")
            print(f"{'':>6} after, in process: {stages(project)}")


if __name__ == "__main__":
    main()
