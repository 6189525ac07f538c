"""`connector init [--from FLOW]`: start a project from one of the shipped flows.

A new project starts from a working example rather than an empty file: the shipped flow's
rule file, the mappings of its two systems and a `connector.yaml` naming only them, each
with a `yaml-language-server` modeline pointing at the JSON Schemas written beside them
(`.connector/schemas/`), so an editor completes and checks keys from the first keystroke,
and the flow's recorded sandbox run (`cassettes/sandbox-<flow>.yaml`) when one is shipped, so
`connector test --cassette` guards the requests from the first edit.
`connector validate --strict`, `connector test` and the cassette's replay are clean on the result.

The flows offered are the shipped `connector.yaml`'s (Amazon's and Walmart's alike): no list is
kept here, so a flow shipped there can be started from at once. Without `--from`, the first
flow it lists (so the default is data too, not a name kept in Python).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, TextIO

import yaml

from connector import schema as schemas
from connector.diagnostics import did_you_mean
from connector.errors import UsageError
from connector.load import load_file
from connector.project import PROJECT_FILE

#: The shipped project (rules/, mappings/, connector.yaml) beside the package in a checkout.
SHIPPED = Path(__file__).resolve().parent.parent.parent
SCHEMA_DIR = ".connector/schemas"
_MODELINE = re.compile(r"^# yaml-language-server: \$schema=\S+\n")


def _shipped_project() -> dict[str, Any]:
    doc, findings = load_file(SHIPPED / PROJECT_FILE)
    if doc is None or findings:
        raise UsageError(f"the shipped examples are not beside this installation ({SHIPPED}): "
                         "run init from a source checkout of connector")
    data: dict[str, Any] = doc.data
    return data


def _with_modeline(text: str, kind: str, rel: str) -> str:
    """`text` with its first line a modeline pointing at the schema, relative to file `rel`."""
    depth = len(Path(rel).parts) - 1
    line = f"# yaml-language-server: $schema={'../' * depth}{SCHEMA_DIR}/{kind}.schema.json\n"
    return line + _MODELINE.sub("", text, count=1)


def _shipped_with_modeline(rel: str, kind: str) -> str:
    return _with_modeline((SHIPPED / rel).read_text(encoding="utf-8"), kind, rel)


def project_files(flow: str | None) -> dict[str, str]:
    """The files of a new project for the shipped `flow` (None: the first the shipped
    connector.yaml lists): relative path to text."""
    shipped = _shipped_project()
    flows = shipped["flows"]
    if flow is None:
        flow = next(iter(flows))
    if flow not in flows:
        raise UsageError(f"no shipped flow {flow!r}{did_you_mean(flow, flows)}; "
                         f"shipped: {', '.join(sorted(flows))}")
    spec = flows[flow]
    rules_rel = spec["rules"]
    rules_doc, _ = load_file(SHIPPED / rules_rel)
    if rules_doc is None:
        raise UsageError(f"cannot read the shipped {rules_rel}")
    systems = {name: shipped["systems"][name]
               for name in (rules_doc.data["source"], rules_doc.data["target"])}
    files = {rules_rel: _shipped_with_modeline(rules_rel, "rules")}
    for name, system in systems.items():
        mapping = system.get("mapping", f"mappings/{name}.yaml")
        files[mapping] = _shipped_with_modeline(mapping, "mapping")
    project = {"state": shipped.get("state", "sqlite:///.connector/state.db"),
               "systems": systems, "flows": {flow: spec}}
    files[PROJECT_FILE] = _with_modeline(
        f"# Started with `connector init --from {flow}`. No secrets here: they come from the\n"
        "# environment, CONNECTOR_<SYSTEM>_<SETTING> (docs/format.md).\n"
        + yaml.safe_dump(project, sort_keys=False), "project", PROJECT_FILE)
    cassette = f"cassettes/sandbox-{flow}.yaml"  # the flow's run on the sandbox, a regression test
    if (SHIPPED / cassette).is_file():
        files[cassette] = (SHIPPED / cassette).read_text(encoding="utf-8")
    for kind in schemas.KINDS:
        files[f"{SCHEMA_DIR}/{kind}.schema.json"] = json.dumps(schemas.schema(kind), indent=2) + "\n"
    return files


def scaffold(directory: Path, flow: str | None, force: bool = False) -> list[Path]:
    """Write the project files for `flow` under `directory`, none unless all can be; the paths."""
    files = project_files(flow)
    existing = sorted(name for name in files if (directory / name).exists())
    if existing and not force:
        raise UsageError(f"{directory}: would overwrite {', '.join(existing)} (use --force)")
    written = []
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def run(directory: Path, flow: str | None, force: bool, out: TextIO) -> int:
    """Scaffold, list what was written and the commands that prove the result works."""
    written = scaffold(directory, flow, force)
    for path in written:
        print(f"wrote {path}", file=out)
    replay = [p for p in written if p.parent.name == "cassettes"]
    checks = ["connector validate --strict", "connector test",
              *(f"connector test --cassette {p.relative_to(directory)}" for p in replay),
              "connector apply --sandbox"]
    print(f"next: cd {directory} && " + " && ".join(checks), file=out)
    return 0
