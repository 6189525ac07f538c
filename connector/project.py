"""Finding, loading and assembling the configuration: connector.yaml, mappings, rule files.

`load_config` runs the load stage and the schema half of validate over every file involved
and builds the model. It never raises for a user mistake: it returns the findings, so that
`validate` can print all of them at once and other commands can refuse to run.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector import build, schema
from connector.diagnostics import Diagnostic, Severity, did_you_mean, error
from connector.errors import ConfigError
from connector.load import Loaded, files, load_file
from connector.model import Flow, Setting, System
from connector.variants import merged, variant_findings, variant_keys

PROJECT_FILE = "connector.yaml"
DEFAULT_STATE = "sqlite:///.connector/state.db"


@dataclass(frozen=True)
class Config:
    """Everything loaded for one command: the model plus the documents it came from."""

    root: Path
    systems: dict[str, System]
    flows: dict[str, Flow]
    docs: dict[str, tuple[str, Loaded]]  # file -> (kind, document)
    system_settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # from connector.yaml
    flow_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    flow_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    state: str = DEFAULT_STATE
    project_file: str | None = None
    # The merged document of each mapping variant, by (system, value): validate checks it.
    variant_docs: dict[tuple[str, str], Loaded] = field(default_factory=dict)


display = files.display


def kind_of(doc: Loaded) -> str:
    """Which kind of file a document is, from its top-level keys."""
    data = doc.data
    if isinstance(data, dict):
        if "system" in data:
            return "mapping"
        if "flows" in data or "systems" in data:
            return "project"
        if "rules" in data or "source" in data:
            return "rules"
    parent = Path(doc.file).parent.name
    return {"mappings": "mapping", "rules": "rules"}.get(parent, "unknown")


def _expand(paths: Sequence[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(files.yaml_files(path))
        else:
            found.append(path)
    return found


def load_config(root: Path, paths: Sequence[Path] = ()) -> tuple[Config, list[Diagnostic]]:
    """Load the project under `root` (or just `paths`), returning the model and the findings."""
    findings: list[Diagnostic] = []
    docs: dict[str, tuple[str, Loaded]] = {}
    refused: set[str] = set()  # paths named in connector.yaml whose problem is reported there

    def read(path: Path, expected: str | None) -> Loaded | None:
        name = display(path, root)
        if name in docs:
            return docs[name][1]
        if name in refused or not files.exists(path):
            return None
        doc, found = load_file(path, name)
        findings.extend(found)
        if doc is None:
            return None
        kind = expected or kind_of(doc)
        if kind == "unknown":
            findings.append(error(name, 1, 1, "file-kind-unknown",
                                  "cannot tell what this file is",
                                  "a mapping has 'system:', a rule file 'source:' and 'rules:', "
                                  "connector.yaml 'systems:' and 'flows:'"))
            return None
        schema_findings = schema.check(doc, kind)
        findings.extend(schema_findings)
        if schema_findings:
            return None
        docs[name] = (kind, doc)
        return doc

    project_doc: Loaded | None = None
    project_path = root / PROJECT_FILE
    explicit = _expand(paths)
    if not explicit or any(p.name == PROJECT_FILE for p in explicit):
        if files.exists(project_path):
            project_doc = read(project_path, "project")
    mapping_paths: dict[str, Path] = {}
    flow_paths: dict[str, Path] = {}
    system_settings: dict[str, dict[str, Any]] = {}
    flow_settings: dict[str, dict[str, Any]] = {}
    flow_options: dict[str, dict[str, Any]] = {}
    state = DEFAULT_STATE
    if project_doc is not None:
        pdata = project_doc.data
        state = pdata.get("state", DEFAULT_STATE)
        for name, spec in pdata["systems"].items():
            mapping_paths[name] = root / spec.get("mapping", f"mappings/{name}.yaml")
            system_settings[name] = dict(spec.get("settings") or {})
        for name, spec in pdata["flows"].items():
            flow_paths[name] = root / spec["rules"]
            flow_settings[name] = dict(spec.get("settings") or {})
            flow_options[name] = {k: v for k, v in spec.items() if k not in ("rules", "settings")}
        for name, path in [*mapping_paths.items(), *flow_paths.items()]:
            key = "systems" if name in mapping_paths and path is mapping_paths[name] else "flows"
            sub = "mapping" if key == "systems" else "rules"
            line, col = project_doc.position((key, name, sub))
            shown = display(path, root)
            trouble = files.problem(path, shown, (project_doc.file, line, col))
            if trouble is not None and trouble.code != "file-not-regular":  # that one: on the file
                findings.append(trouble)
                refused.add(shown)
    elif not explicit:
        for path in sorted((root / "mappings").glob("*.y*ml")):
            mapping_paths[path.stem] = path
        for path in sorted((root / "rules").glob("*.y*ml")):
            flow_paths[path.stem] = path
        if not mapping_paths and not flow_paths:
            raise ConfigError([error(display(project_path, root), 0, 0, "project-not-found",
                                     f"no {PROJECT_FILE}, mappings/ or rules/ in {root}",
                                     "run in the project directory or pass --project DIR")])

    for path in explicit:
        if path.name == PROJECT_FILE:
            continue
        doc = read(path, None)
        if doc is None:
            if not files.exists(path):
                findings.append(error(display(path, root), 0, 0, "file-not-found", "file does not exist"))
            continue
        kind = docs[doc.file][0]
        if kind == "mapping":
            mapping_paths[doc.data["system"]] = path
        elif kind == "rules":
            flow_paths[path.stem] = path

    flows: dict[str, Flow] = {}
    for name, path in flow_paths.items():
        doc = read(path, "rules")
        if doc is not None:
            flows[name] = build.flow(doc, name)

    # Systems: those named, plus those the flows refer to (found beside the rule files).
    wanted = set(mapping_paths)
    for flow in flows.values():
        wanted.update((flow.source, flow.target))
    systems: dict[str, System] = {}
    variant_docs: dict[tuple[str, str], Loaded] = {}
    for name in sorted(wanted):
        found: Path | None = mapping_paths.get(name)
        if found is None:
            candidates = [root / "mappings" / f"{name}.yaml"]
            candidates += [Path(f.where.file).parent.parent / "mappings" / f"{name}.yaml"
                           for f in flows.values() if name in (f.source, f.target)]
            candidates += [root / Path(f.where.file).parent.parent / "mappings" / f"{name}.yaml"
                           for f in flows.values() if name in (f.source, f.target)]
            found = next((c for c in candidates if files.exists(c)), None)
        if found is None:
            continue  # reported as unknown-system by the reference checks
        doc = read(found, "mapping")
        if doc is None:
            continue
        system = _with_variants(doc, build.system(doc), findings, variant_docs)
        if system.name != name and name in mapping_paths:
            line, col = doc.position(("system",))
            findings.append(error(doc.file, line, col, "system-name-mismatch",
                                  f"mapping declares system '{system.name}' but is used as '{name}'"))
        systems[system.name] = system

    config = Config(
        root=root, systems=systems, flows=flows, docs=docs,
        system_settings=system_settings, flow_settings=flow_settings, flow_options=flow_options,
        state=state, project_file=project_doc.file if project_doc else None,
        variant_docs=variant_docs,
    )
    return config, findings


def _with_variants(doc: Loaded, system: System, findings: list[Diagnostic],
                   docs: dict[tuple[str, str], Loaded]) -> System:
    """The system with its variants built (each overlay merged and schema-checked; the
    merged documents go to `docs`)."""
    found = variant_findings(doc)
    findings.extend(found)
    if found or not system.variant_by:
        return system
    variants: dict[str, System] = {}
    for value in variant_keys(doc):
        variant_doc = merged(doc, value)
        schema_findings = schema.check(variant_doc, "mapping")
        findings.extend(schema_findings)
        if not schema_findings:
            variants[value] = build.system(variant_doc)
            docs[(system.name, value)] = variant_doc
    return dataclasses.replace(system, variants=variants)


def with_variant(config: Config, name: str, value: str) -> Config:
    """The configuration with system `name` as its variant `value` (validate checks each)."""
    variant = config.systems[name].variants[value]
    docs = dict(config.docs)
    merged_doc = config.variant_docs.get((name, value))
    if merged_doc is not None:
        docs[merged_doc.file] = ("mapping", merged_doc)
    return dataclasses.replace(config, systems={**config.systems, name: variant}, docs=docs)


def require(config_and_findings: tuple[Config, list[Diagnostic]]) -> Config:
    """The config, or a `ConfigError` carrying the errors (for commands other than validate)."""
    config, findings = config_and_findings
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if errors:
        raise ConfigError(errors)
    return config


# --- settings ------------------------------------------------------------------------


def env_name(scope: str, setting: str) -> str:
    """`CONNECTOR_<SCOPE>_<SETTING>`, upper case, '-' → '_' (the settings contract)."""
    return "CONNECTOR_" + f"{scope}_{setting}".upper().replace("-", "_")


def _coerce(value: str, setting: Setting) -> Any:
    if setting.kind == "list":
        return [v.strip() for v in value.split(",") if v.strip()]
    if setting.kind == "integer":
        return int(value)
    if setting.kind == "number":
        return float(value)
    if setting.kind == "boolean":
        return value.strip().lower() in ("1", "true", "yes", "on")
    return value


def resolve_settings(
    declared: Mapping[str, Setting],
    configured: Mapping[str, Any],
    scope: str,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Defaults ← connector.yaml ← environment (which wins), per the settings contract."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {name: s.default for name, s in declared.items()}
    values.update(configured)
    for name, setting in declared.items():
        key = env_name(scope, name)
        if key in env:
            values[name] = _coerce(env[key], setting)
    return values


def settings_findings(config: Config) -> list[Diagnostic]:
    """Unknown setting names in connector.yaml (with a suggestion)."""
    if config.project_file is None:
        return []
    doc = config.docs[config.project_file][1]
    declared: list[tuple[str, str, Mapping[str, Any], Mapping[str, Setting] | None]] = [
        ("systems", name, values, s.settings if (s := config.systems.get(name)) else None)
        for name, values in config.system_settings.items()
    ] + [
        ("flows", name, values, f.settings if (f := config.flows.get(name)) else None)
        for name, values in config.flow_settings.items()
    ]
    findings: list[Diagnostic] = []
    for section, name, values, known in declared:
        if known is None:
            continue  # an unknown system or flow is reported on its own
        owner = name if section == "systems" else f"flow {name}"
        for key in values:
            if key not in known:
                line, col = doc.position((section, name, "settings", key), key=True)
                findings.append(error(doc.file, line, col, "unknown-setting",
                                      f"unknown setting '{key}' for {owner}{did_you_mean(key, known)}",
                                      f"settings of {owner}: {', '.join(known) or 'none'}"))
    return findings
