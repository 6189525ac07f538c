"""`connector validate`: every check that can run before production, printed as findings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from connector.diagnostics import Diagnostic, Severity, render
from connector.errors import ConfigError
from connector.validate import findings_for

__all__ = ["findings_for", "run"]  # findings_for: re-exported for the benchmarks and tests


def run(root: Path, paths: Sequence[Path], fmt: str, strict: bool, out: TextIO) -> int:
    try:
        findings, files = findings_for(root, paths)
    except ConfigError as exc:
        # Printed here in the chosen format: the CLI's "run 'connector validate'" advice
        # for other commands would be circular.
        findings, files = sorted(exc.diagnostics), 0
        _report(findings, files, fmt, out)
        return exc.exit_code
    return _report(findings, files, fmt, out, strict)


def _report(findings: list[Diagnostic], files: int, fmt: str, out: TextIO,
            strict: bool = False) -> int:
    errors = sum(1 for f in findings if f.severity is Severity.ERROR)
    warnings = sum(1 for f in findings if f.severity is Severity.WARNING)
    text = render(findings, fmt)
    if text:
        print(text, file=out)
    if fmt == "text":
        print(f"{errors} error(s), {warnings} warning(s) in {files} file(s)", file=out)
    if errors or (strict and warnings):
        return 1
    return 0
