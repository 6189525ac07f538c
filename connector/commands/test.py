"""`connector test`: run the rule files' test cases and print a readable diff per failure.

With `--cassette FILE` it replays recorded runs instead (`connector.replay`): each recorded flow
is one case, failed by a request the rules now make that the run did not, or the reverse.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from connector.project import Config
from connector.validate import checked
from connector.testing import run_all


def run(root: Path, paths: Sequence[Path], flow: str | None, out: TextIO, verbose: bool = False,
        cassettes: Sequence[Path] = ()) -> int:
    config = checked(root, paths)
    if cassettes:
        return _replay(config, cassettes, flow, out, verbose)
    flows = [flow] if flow else sorted(config.flows)
    for name in flows:
        if name not in config.flows:
            from connector.diagnostics import did_you_mean
            from connector.errors import UsageError

            raise UsageError(f"no flow {name!r}{did_you_mean(name, config.flows)}")
    results = run_all(config, flows, os.environ)
    failed = [r for r in results if not r.passed]
    for result in results:
        if verbose or not result.passed:
            mark = "PASS" if result.passed else "FAIL"
            print(f"{mark} {result.case.where}: {result.flow}: {result.case.name}", file=out)
            for line in result.diff:
                print(f"    {line}", file=out)
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed", file=out)
    if not results:
        print("no test cases found (add tests: to a rule file)", file=out)
        return 1
    return 1 if failed else 0


def _replay(config: Config, cassettes: Sequence[Path], flow: str | None, out: TextIO,
            verbose: bool) -> int:
    """One case per recorded flow of each cassette, printed like the rule test cases."""
    from connector.replay import replay

    passed = failed = 0
    for cassette in cassettes:
        for case in replay(config, cassette, flow, os.environ):
            for note in case.notes:
                print(f"note: {cassette}: {note}", file=out)
            if verbose or not case.passed:
                mark = "PASS" if case.passed else "FAIL"
                print(f"{mark} {cassette}: {case.flow}: replay of the recorded run "
                      f"({len(case.played)} recorded exchange(s) answered)", file=out)
                for line in case.lines:
                    print(f"    {line}", file=out)
            passed, failed = passed + case.passed, failed + (not case.passed)
    print(f"{passed} passed, {failed} failed", file=out)
    return 1 if failed else 0
