"""What rendering costs, this checkout beside a baseline revision, in one run.

    python benchmarks/bench_render.py [--baseline e0755b8 [--baseline REV]] [--count 2000] [--rounds 7]

Issue 11 bounded every render (steps, characters built, call depth, time) and made secrets
opaque; an ordinary request's rendering went from 188 to 339 us. This measures it: each tree
runs in a child process of its own (`--baseline REV` is exported with `git archive`; the
other is this checkout), and the parent asks the children in turn, round after round, so both
trees are timed on the same loaded machine within milliseconds of each other. Printed per row:
the best round's time per call in each tree, and this checkout's ratio to each baseline.

Rows: the VTEX cancel request of fuzz_explain's row (a loop and a list in the JSON body,
secret headers), and the template shapes one is made of: a single expression (`evaluate`,
which keeps its type), a text template, a loop, and the shipped mapping's base URL.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

ORDER = {"id": "202-1234567-8901234", "actor": "seller", "status": "Canceled",
         "items": [{"sku": f"S{i}", "quantity": i} for i in range(5)]}


def _rows() -> dict[str, Callable[[], Any]]:
    """name -> one call, built in the child (whose `connector` is the tree being measured)."""
    from connector import templates
    from connector.model import Request
    from connector.project import load_config, require
    from connector.render import render_request

    vtex = require(load_config(REPO)).systems["vtex"]
    settings = {"account": "shop", "base_url": "", "app_key": "k3y", "app_token": "t0k",
                "affiliate_id": "AMZ"}
    request = Request(method="POST", path="/api/oms/pvt/orders/{{ order.id }}/cancel",
                      headers={"X-K": "{{ settings.app_key }}", "X-T": "{{ settings.app_token }}"},
                      json={"reason": "Amazon order {{ order.id }} was cancelled by {{ order.actor }}",
                            "items": "{{ order.items }}",
                            "skus": "{% for i in order.items %}{{ i.sku }},{% endfor %}"})
    context = {"order": ORDER}
    text = "Amazon order {{ order.id }} was cancelled by {{ order.actor }}"
    loop = "{% for i in order.items %}{{ i.sku }}:{{ i.quantity }},{% endfor %}"
    return {
        "request (VTEX cancel)": lambda: render_request(vtex, request, context, settings),
        "expression {{ order.items }}": lambda: templates.render_value("{{ order.items }}", context),
        "text, two outputs": lambda: templates.render(text, context),
        "loop over 5 items": lambda: templates.render(loop, context),
        "path {{ order.id }}": lambda: templates.render("/orders/{{ order.id }}/cancel", context,
                                                        kind="path"),
    }


def child(count: int) -> None:
    """Answer each line on stdin with one round: every row timed over `count` calls."""
    rows = _rows()
    for call in rows.values():  # warm: compile caches, imports
        call()
    for _ in sys.stdin:
        result = {}
        for name, call in rows.items():
            start = time.perf_counter()
            for _ in range(count):
                call()
            result[name] = (time.perf_counter() - start) / count * 1e6
        print(json.dumps(result), flush=True)


def _export(rev: str, directory: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "connector"], check=True,
                             capture_output=True).stdout
    directory.mkdir()
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)
    return directory


def _start(tree: Path, count: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.Popen([sys.executable, __file__, "--child", str(count)], env=env,
                            cwd=tree, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _round(proc: subprocess.Popen[str]) -> dict[str, float]:
    assert proc.stdin is not None and proc.stdout is not None  # noqa: S101 (pipes asked for)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    return dict(json.loads(proc.stdout.readline()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", action="append", default=[],
                        help="git revision to run beside this checkout (again for more)")
    parser.add_argument("--count", type=int, default=2000, help="calls per row per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        trees = [(rev, _export(rev, Path(tmp) / str(n))) for n, rev in enumerate(args.baseline)]
        trees.append(("this checkout", REPO))
        procs = [(name, _start(tree, args.count)) for name, tree in trees]
        best: dict[str, dict[str, float]] = {name: {} for name, _ in procs}
        for _ in range(args.rounds):
            for name, proc in procs:
                for row, us in _round(proc).items():
                    best[name][row] = min(us, best[name].get(row, float("inf")))
        for _, proc in procs:
            proc.communicate("")
    names = [name for name, _ in procs]
    print(f"best of {args.rounds} rounds of {args.count} calls, us per call")
    ratios = [f"/{n}" for n in names[:-1]]
    print(f"{'row':<30}" + "".join(f"{n:>16}" for n in names) + "".join(f"{r:>18}" for r in ratios))
    for row in best[names[0]]:
        cells = [best[n][row] for n in names]
        print(f"{row:<30}" + "".join(f"{c:>16.1f}" for c in cells)
              + "".join(f"{cells[-1] / c:>17.2f}x" for c in cells[:-1]))


if __name__ == "__main__":
    main()
