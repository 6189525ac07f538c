"""Stage 2, validate: every check that can run before production, in one place.

`connector validate` prints these findings; every command that runs flows (`plan`, `apply`,
`retry`, `worker`, `test`, `explain`) refuses a configuration with an error among them (exit 2,
the findings printed), so a mistake validate can see never reaches a run half-way: a flow whose
target cannot look up its orders used to fail each order in turn and end in "nothing to do".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from connector import declarations, references, runnable
from connector.analysis.flow import analyse_flow
from connector.diagnostics import Diagnostic, Severity
from connector.errors import ConfigError
from connector.load import collector_paused
from connector.project import Config, load_config, settings_findings, with_variant

__all__ = ["checked", "findings_for"]


def _all_findings(config: Config, findings: list[Diagnostic]) -> list[Diagnostic]:
    found = set(_config_findings(config, findings + settings_findings(config)))
    # A mapping's variants (connector.variants) are checked as the system each would be.
    for name, system in config.systems.items():
        for value in system.variants:
            found.update(_config_findings(with_variant(config, name, value), []))
    return sorted(found)


def _config_findings(config: Config, findings: list[Diagnostic]) -> list[Diagnostic]:
    findings = findings + references.check(config) + declarations.check(config)
    broken = {f.file for f in findings if f.severity is Severity.ERROR}
    for flow in config.flows.values():
        if flow.where.file in broken:
            continue  # analysis over a flow with broken references would only add noise
        if flow.source in config.systems and flow.target in config.systems:
            findings += analyse_flow(flow, config.systems)
    # After the analysis: a flow that cannot run is still worth analysing.
    return sorted(set(findings + runnable.check(config)))


def findings_for(root: Path, paths: Sequence[Path]) -> tuple[list[Diagnostic], int]:
    """All findings for the project or the given paths, and how many files were read.

    With the cyclic collector paused (see `collector_paused`): building the flows, the
    reference checks and the analysis make many small acyclic objects too.
    """
    with collector_paused():
        config, findings = load_config(root, paths)
        findings = _all_findings(config, findings)
    # Files that failed to parse or to match their schema count too: they were read.
    files = set(config.docs) | {f.file for f in findings if f.file}
    return findings, len(files)


def checked(root: Path, paths: Sequence[Path] = ()) -> Config:
    """The configuration of a command that runs flows; a `ConfigError` (exit 2) carrying
    every error `validate` would print. Warnings do not stop a run (`--strict` is CI's)."""
    config, findings = load_config(root, paths)
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if errors:  # the files could not be read or built: the later checks would only add noise
        raise ConfigError(errors)
    errors = [f for f in _all_findings(config, findings) if f.severity is Severity.ERROR]
    if errors:
        raise ConfigError(errors)
    return config
