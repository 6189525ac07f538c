"""Peak memory of renders running at once in one process, this checkout beside a baseline.

    python benchmarks/peak_renders.py [--baseline REV] [--threads 1,3,8]

Issue 11: a process's peak memory is bounded whatever its concurrency. apply renders up to
RunOptions.concurrency (8) orders at once, and each render may build up to its own bound
(limits.MAX_WORK, about 120 MB of lists), so the peak grew with the concurrency. Here each
tree's child process renders the worst template (peak_memory.worst_template: lists held to the
end of the render, each 3.6 MB) in N threads at once, and prints its peak RSS (ru_maxrss), the
seconds and the refusals seen. Each row is a fresh process per tree, run one after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def child(threads: int, lines: int) -> None:
    import resource
    import threading
    import time

    from connector import templates

    held = "".join(f"{{% set a{n} = range(99999) | list %}}" for n in range(lines))
    template = held + "{{ 'x' * 999000 }}"
    seen: set[str] = set()

    def render() -> None:
        try:
            templates.render(template, {})
        except Exception as exc:  # noqa: BLE001: the refusal is what is counted
            seen.add(str(exc).rsplit(": ", 1)[-1][:70])

    workers = [threading.Thread(target=render) for _ in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak": peak, "seconds": time.perf_counter() - start,
                      "refusals": sorted(seen)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="git revision to run beside this checkout")
    parser.add_argument("--threads", default="1,3,8", help="renders at once, per row")
    parser.add_argument("--lines", type=int, default=300, help="held lists in the template")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.lines)
        return
    with tempfile.TemporaryDirectory() as tmp:
        trees = [("this checkout", REPO)]
        if args.baseline:
            base = Path(tmp) / "baseline"
            base.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", args.baseline],
                                     check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
            trees.insert(0, (args.baseline, base))
        print(f"{'threads':>7} {'tree':<14} {'peak MB':>8} {'seconds':>8}  refusals")
        for threads in (int(n) for n in args.threads.split(",")):
            for name, tree in trees:
                env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
                out = subprocess.run([sys.executable, __file__, "--child", str(threads),
                                      "--lines", str(args.lines)], env=env, cwd=tree,
                                     check=True, capture_output=True, text=True).stdout
                row = json.loads(out.strip().splitlines()[-1])
                print(f"{threads:>7} {name:<14} {row['peak']:>8.1f} {row['seconds']:>8.2f}  "
                      f"{'; '.join(row['refusals'])}")


if __name__ == "__main__":
    main()
