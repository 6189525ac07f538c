"""Every check that runs before production (what `connector validate` prints), as a function.

`validate` prints these findings; `plan` and `apply` (through the runner) refuse to run a
configuration with an error among them, so that what validate rejects never reaches the
systems' APIs half-understood.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from connector import references
from connector.analysis import analyse_flow
from connector.diagnostics import Diagnostic, Severity
from connector.project import Config, load_config, settings_findings


def check(root: Path, paths: Sequence[Path] = ()) -> tuple[Config, list[Diagnostic]]:
    """The configuration and all its findings (sorted, each once)."""
    config, findings = load_config(root, paths)
    findings += settings_findings(config)
    findings += references.check(config)
    broken = {f.file for f in findings if f.severity is Severity.ERROR}
    for flow in config.flows.values():
        if flow.where.file in broken:
            continue  # analysis over a flow with broken references would only add noise
        if flow.source in config.systems and flow.target in config.systems:
            findings += analyse_flow(flow, config.systems)
    return config, sorted(set(findings))


def findings_for(root: Path, paths: Sequence[Path]) -> tuple[list[Diagnostic], int]:
    """All findings for the project or the given paths, and how many files were read."""
    config, findings = check(root, paths)
    # Files that failed to parse or to match their schema count too: they were read.
    files = set(config.docs) | {f.file for f in findings if f.file}
    return findings, len(files)
