"""`connector validate`: every check that can run before production, printed as findings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from connector import references
from connector.analysis import analyse_flow
from connector.diagnostics import Diagnostic, Severity, render
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
    return sorted(set(findings)), len(config.docs)


def run(root: Path, paths: Sequence[Path], fmt: str, strict: bool, out: TextIO) -> int:
    findings, files = findings_for(root, paths)
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
