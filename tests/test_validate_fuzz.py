"""`validate` on randomly broken copies of the shipped project never ends in a traceback
(exit 3): lines deleted, duplicated or re-indented, scalars replaced by another type, tags,
anchors and merge keys (some recursive), nesting hundreds deep, control characters, files
replaced by FIFOs, /dev/zero, symlink loops (tests/hostile_yaml.py).

A seeded loop, the same cases every run. On the tree before issue 11's loading fixes these
cases ended in tracebacks (ReaderError, RecursionError, ConstructorError, RuntimeError from
Path.resolve) or hung on a FIFO.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

import hostile_yaml
from connector.cli import main

CASES = 30
SEED = 7


def _validate(project: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["validate", "--project", str(project)])
    return result.exit_code, result.output


def test_validate_never_ends_in_a_traceback(tmp_path: Path) -> None:
    results = hostile_yaml.cases(SEED, CASES, tmp_path, _validate)
    for what, code, output in results:
        shown = f"{what}\n{output[-2000:]}"
        assert code in (0, 1, 2), shown
        assert "Traceback" not in output, shown
    # the loop reached broken projects, not only harmless edits
    assert sum(code != 0 for _, code, _ in results) >= CASES // 3
