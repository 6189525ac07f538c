"""Peak memory of each command on the largest legal project, before and after, side by side.

    python benchmarks/peak_memory.py [--baseline REV] [--lines 300] [--timeout 300]

Issue 11: every command's peak memory is bounded for any input within the file-size limits.
The project: the shipped one with every rule file filled to the size limit (load.MAX_FILE_BYTES)
with rules of their own (each reached by one order id, so the analysis keeps them all), every
mapping and connector.yaml filled to it with comment lines, and the VTEX cancel request
carrying the worst template there is within the render bounds: `--lines` lines of
`{% set aN = range(99999) | list %}`, each a list of 99,999 integers held to the end of the
render (3.6 MB each; before this benchmark each was charged one item of the render's budget,
so 300 lines held a gigabyte), and an output of 999,000 characters.

Each command runs as a process of its own (`python -m connector`, the tree on PYTHONPATH;
`--baseline REV` is checked out with `git worktree add --detach` into a temporary directory)
under a 2 GB address-space limit: validate, explain of the shipped cancelled Amazon order
(the one the template is rendered for), plan --sandbox and apply --sandbox. Printed per tree
and command: exit code, seconds, and the peak RSS of that process (wait4).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

import hostile  # noqa: E402
from fuzz_validate import LIMIT_BYTES, checkout, run_process  # noqa: E402

#: load.MAX_FILE_BYTES, written here: the baseline tree may differ, the project is the same.
FILE_LIMIT = 2 * 1024 * 1024
_RULE = """  - id: padding-{n}
    description: >-
      {text}
    when:
      id: "padding-order-{n}"
    then: []
"""
_TEXT = "A rule only the order of this id reaches, filling the file to the size limit. " * 12


def worst_template(lines: int) -> str:
    """Lists held to the end of the render, then the longest output a render may give."""
    held = "".join(f"{{% set a{n} = range(99999) | list %}}" for n in range(lines))
    return held + "{{ 'x' * 999000 }}"


def _fill_rules(path: Path) -> None:
    """Rules of their own at the head of the file's `rules:` list, up to the size limit."""
    text = path.read_text(encoding="utf-8")
    at = text.index("\nrules:\n") + len("\nrules:\n")
    room = FILE_LIMIT - len(text.encode("utf-8")) - 256
    rules, n = [], 0
    while room > 0:
        rule = _RULE.format(n=n, text=_TEXT)
        room -= len(rule)
        if room > 0:
            rules.append(rule)
        n += 1
    path.write_text(text[:at] + "".join(rules) + text[at:], encoding="utf-8")
    _fill_comments(path)


def _fill_comments(path: Path) -> None:
    """Comment lines at the end, up to the size limit exactly."""
    line = "# " + "padding to the file-size limit " * 3 + "\n"
    room = FILE_LIMIT - path.stat().st_size - 2  # the newline before, the last one
    tail = "\n" + line * (room // len(line))
    tail += "#" * (room - len(tail) + 1) + "\n"
    with path.open("a", encoding="utf-8") as out:
        out.write(tail)


def largest_project(directory: Path, template: str) -> Path:
    project = hostile.project_with(directory, template)
    for path in sorted((project / "rules").glob("*.yaml")):
        _fill_rules(path)
    for path in [project / "connector.yaml", *sorted((project / "mappings").glob("*.yaml"))]:
        _fill_comments(path)
    return project


def _commands(project: Path) -> dict[str, list[str]]:
    examples = REPO / "docs" / "examples"
    return {
        "validate": ["validate", "--project", str(project)],
        "explain": ["explain", "--project", str(project), "--flow", hostile.FLOW,
                    "--target", str(examples / "vtex-order-handling.json"),
                    str(examples / "amazon-order-cancelled.json")],
        "plan --sandbox": ["plan", "--project", str(project), "--sandbox"],
        "apply --sandbox": ["apply", "--project", str(project), "--sandbox"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="git revision to run beside this checkout")
    parser.add_argument("--lines", type=int, default=300, help="held lists in the template")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per command")
    args = parser.parse_args()
    rows: list[tuple[str, str, int, float, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        trees = [("this checkout", REPO)]
        if args.baseline:
            trees.insert(0, (args.baseline, checkout(args.baseline, root / "baseline")))
        try:
            for name, tree in trees:
                project = largest_project(root / "project", worst_template(args.lines))
                sizes = sorted(p.stat().st_size for p in project.rglob("*.yaml"))
                for command, argv in _commands(project).items():
                    code, seconds, peak, text = run_process(tree, argv, args.timeout, root,
                                                            env=hostile_env())
                    last = next((line for line in reversed(text.splitlines()) if line.strip()), "")
                    rows.append((name, command, code, seconds, peak, last[:90]))
                shutil.rmtree(project)
        finally:
            if args.baseline:
                import subprocess

                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                                str(root / "baseline")], check=False)
    print(f"the largest legal project: {len(sizes)} YAML files of {min(sizes):,} to "
          f"{max(sizes):,} bytes (limit {FILE_LIMIT:,}); the VTEX cancel's template holds "
          f"{args.lines} lists of 99,999 integers; {LIMIT_BYTES // 1024**3} GB per process")
    print(f"{'tree':<14} {'command':<16} {'exit':>4} {'seconds':>8} {'peak MB':>8}  last line")
    for name, command, code, seconds, peak, last in rows:
        print(f"{name:<14} {command:<16} {code:>4} {seconds:>8.2f} {peak:>8.1f}  {last}")


def hostile_env() -> dict[str, str]:
    """The VTEX credentials explain renders the request with (hostile.SECRET, as the fuzz
    benchmarks set it)."""
    return {"CONNECTOR_VTEX_APP_KEY": hostile.SECRET, "CONNECTOR_VTEX_APP_TOKEN": "tok",
            "CONNECTOR_VTEX_ACCOUNT": "shop"}


if __name__ == "__main__":
    main()
