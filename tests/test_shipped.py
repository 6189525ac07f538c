"""The shipped set: clean under `validate --strict`, its rule tests pass, and each deliberately
broken copy fails at the line and column of the break."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.commands.validate import findings_for

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    for name in ("mappings", "rules"):
        shutil.copytree(REPO / name, tmp_path / name)
    shutil.copy(REPO / "connector.yaml", tmp_path / "connector.yaml")
    return tmp_path


def test_shipped_set_is_clean_under_strict() -> None:
    result = CliRunner().invoke(main, ["validate", "--strict", "--project", str(REPO)])
    assert result.exit_code == 0, result.output
    assert "0 error(s), 0 warning(s)" in result.output


def test_shipped_rule_tests_pass() -> None:
    result = CliRunner().invoke(main, ["test", "--project", str(REPO)])
    assert result.exit_code == 0, result.output
    assert " 0 failed" in result.output


def _break(root: Path, file: str, old: str, new: str) -> tuple[int, int]:
    """Replace the first `old` in `file`; return the 1-based line and column where it stood."""
    path = root / file
    text = path.read_text()
    index = text.index(old)
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    path.write_text(text[:index] + new + text[index + len(old):])
    return line, column


@pytest.mark.parametrize(
    ("file", "old", "new", "code", "offset"),
    [
        # a misspelt action in a rule: points at the name
        ("rules/amazon-to-vtex.yaml", "- vtex.cancel_order:", "- vtex.cancel_ordr:", "unknown-action", 2),
        # a misspelt status: 'CANCELED' is not Amazon's spelling
        ("rules/amazon-to-vtex.yaml", "status: CANCELLED", "status: CANCELED", "unknown-domain-value", 0),
        # a misspelt order path
        ("rules/amazon-to-vtex.yaml", "target.status: {in: [invoice, invoiced,",
         "target.stat: {in: [invoice, invoiced,", "unknown-path", 0),
        # a template reading a name the context lacks
        ("rules/amazon-to-vtex.yaml", '"Amazon order {{ id }} was cancelled on Amazon',
         '"Amazon order {{ idd }} was cancelled on Amazon', "template-unknown-variable", 0),
        # a broken JMESPath in a mapping
        ("mappings/amazon.yaml", "id: orderId", "id: orderId[", "jmespath-syntax", 4),
        # a misspelt key in a mapping
        ("mappings/vtex.yaml", "precondition:", "precondtion:", "schema-unknown-key", 0),
        # a duplicate key
        ("rules/adobe-commerce-to-amazon.yaml", "hit_policy: first", "hit_policy: first\nhit_policy: all",
         "yaml-duplicate-key", None),
    ],
)
def test_broken_copy_fails_at_the_break(copy: Path, file: str, old: str, new: str, code: str,
                                        offset: int | None) -> None:
    line, column = _break(copy, file, old, new)
    findings = [f for f in findings_for(copy, [])[0] if f.code == code]
    assert findings, f"no {code} finding"
    assert any(f.file == file for f in findings)
    if code == "yaml-duplicate-key":
        line, column = line + 1, 1
    if offset is None:
        assert any(f.line == line for f in findings), [(f.line, f.column) for f in findings]
    else:
        assert any((f.line, f.column) == (line, column + offset) for f in findings), \
            [(f.line, f.column, f.message) for f in findings]
    result = CliRunner().invoke(main, ["validate", "--strict", "--project", str(copy)])
    assert result.exit_code == 1


def test_narrowing_the_catch_all_rule_reports_the_gap(copy: Path) -> None:
    path = copy / "rules" / "amazon-to-vtex.yaml"
    text = path.read_text()
    start = text.index("  - id: nothing-to-cancel")
    old = "status: {in: [PENDING_AVAILABILITY, PENDING, UNSHIPPED, PARTIALLY_SHIPPED, SHIPPED, UNFULFILLABLE]}"
    index = text.index(old, start)
    path.write_text(text[:index] + old.replace(" UNSHIPPED,", "") + text[index + len(old):])
    gaps = [f for f in findings_for(copy, [])[0] if f.code == "rule-gap"]
    assert len(gaps) == 1 and "status=UNSHIPPED" in gaps[0].message, gaps


def test_a_rule_after_a_covering_rule_is_unreachable(copy: Path) -> None:
    path = copy / "rules" / "amazon-to-vtex.yaml"
    text = path.read_text()
    index = text.index("tests:")
    extra = ("  - id: never-fires\n    when: {status: SHIPPED}\n    then:\n"
             "      - report: {message: unreachable}\n\n")
    path.write_text(text[:index] + extra + text[index:])
    line = text.count("\n", 0, index) + 1
    found = [f for f in findings_for(copy, [])[0] if f.code == "rule-unreachable"]
    assert [(f.line, "nothing-to-cancel" in f.message) for f in found] == [(line, True)]


def test_every_shipped_action_declares_its_kind() -> None:
    """Conflict analysis reads `kind:`; the shipped mappings do not lean on the name guess
    (a `void_order` would escape it)."""
    from connector.project import load_config, require

    config = require(load_config(REPO))
    missing = [f"{s.name}.{a.name}" for s in config.systems.values() for a in s.actions.values() if not a.kind]
    assert missing == []
