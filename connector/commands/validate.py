"""`connector validate`: every check that can run before production, printed as findings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from connector import references
from connector.analysis import analyse_flow
from connector.diagnostics import Diagnostic, Severity, render
from connector.errors import ConfigError
from connector.project import load_config, settings_findings


def findings_for(root: Path, paths: Sequence[Path]) -> tuple[list[Diagnostic], int]:
    """All findings for the project or the given paths, and how many files were read."""
    config, findings = load_config(root, paths)
    findings += settings_findings(config)
    findings += references.check(config)
    broken = {f.file for f in findings if f.severity is Severity.ERROR}
    for flow in config.flows.values():
        if flow.where.file in broken:
            continue  # analysis over a flow with broken references would only add noise
        if flow.source in config.systems and flow.target in config.systems:
            findings += analyse_flow(flow, config.systems)
    # Files that failed to parse or to match their schema count too: they were read.
    files = set(config.docs) | {f.file for f in findings if f.file}
    return sorted(set(findings)), len(files)


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
