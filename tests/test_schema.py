"""The schema step: jsonschema-rs only decides that a document is valid, jsonschema words
every finding, so the findings are the same with and without jsonschema-rs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connector import schema
from connector.load import load_file, load_text
from connector.project import kind_of

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted([*(ROOT / "tests" / "fixtures").rglob("*.yaml"),
                *(ROOT / "mappings").glob("*.yaml"), *(ROOT / "rules").glob("*.yaml"),
                ROOT / "connector.yaml"])

#: Documents on the edges where the two implementations could part: a trailing newline that
#: Python's `$` accepts, data jsonschema-rs cannot take (bytes, NaN, infinity), wrong values.
RULE = "source: amazon\ntarget: vtex\nrules:\n  - id: {id}\n    when: {when}\n    then: []\n"
EDGES = [
    ("rules", RULE.format(id='"a\\n"', when="{status: X}")),
    ("rules", RULE.format(id="a", when="{status: .nan}")),
    ("rules", RULE.format(id="a", when="{status: !!binary aGk=}")),
    ("rules", RULE.format(id="a", when="{totals.amount: {gt: .inf}}")),
    ("rules", RULE.format(id="a", when='{"x\\n": 1}')),
    ("rules", "source: amazon\ntarget: vtex\nhit_policy: 1\nrules: []\n"),
    ("project", "systems: {amazon: {mapping: 3}}\nflows: {}\n"),
    ("mapping", 'system: "vtex\\n"\n'),
]


def _kind(path: Path) -> tuple[Any, str] | None:
    doc, _ = load_file(path, str(path))
    if doc is None:
        return None
    kind = kind_of(doc)
    return (doc, kind) if kind in schema.KINDS else None


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_fast_verdict_never_hides_a_finding(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = _kind(path)
    if loaded is None:
        pytest.skip("not a document of a schema kind")
    doc, kind = loaded
    errors = list(schema._validator(kind).iter_errors(doc.data))
    assert schema.valid(doc.data, kind) == (not errors)
    found = schema.check(doc, kind)
    monkeypatch.setattr(schema, "_fast", lambda kind: None)
    assert schema.check(doc, kind) == found


@pytest.mark.parametrize(("kind", "text"), EDGES)
def test_edges_keep_jsonschemas_findings(kind: str, text: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    doc, _ = load_text(text, "edge.yaml")
    assert doc is not None
    if schema.valid(doc.data, kind):
        assert not list(schema._validator(kind).iter_errors(doc.data))
    found = schema.check(doc, kind)
    monkeypatch.setattr(schema, "_fast", lambda kind: None)
    assert schema.check(doc, kind) == found


def test_jsonschema_rs_is_used() -> None:
    """The project installs it (pyproject); without it validate is correct but slow."""
    assert schema._fast("rules") is not None
