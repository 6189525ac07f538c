"""`connector validate` over fixture files: each invalid fixture raises its declared finding."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.commands.validate import findings_for

FIXTURES = Path(__file__).parent / "fixtures"
VALID = FIXTURES / "valid"
INVALID = sorted((FIXTURES / "invalid").rglob("*.yaml"))
EXPECT = re.compile(r"#\s*expect:\s*(?P<code>[a-z-]+)\s+(?P<line>\d+):(?P<col>\d+)")


def _expectation(path: Path) -> tuple[str, int, int]:
    match = EXPECT.search(path.read_text(errors="replace").splitlines()[0] if path.read_text(errors="replace") else "")
    if match is None:
        pytest.fail(f"{path} has no '# expect: <code> <line>:<col>' first line")
    return match["code"], int(match["line"]), int(match["col"])


@pytest.mark.parametrize("path", INVALID, ids=lambda p: str(p.relative_to(FIXTURES / "invalid")))
def test_invalid_fixture_raises_its_finding(path: Path) -> None:
    code, line, col = _expectation(path)
    findings, _ = findings_for(VALID, [path])
    found = {(f.code, f.line, f.column) for f in findings}
    assert (code, line, col) in found, f"got {sorted(found)}"


def test_valid_fixtures_are_clean_under_strict() -> None:
    findings, files = findings_for(VALID, [])
    assert files >= 3
    assert findings == []


@pytest.mark.parametrize("path", sorted((VALID / "alone").glob("*.yaml")), ids=lambda p: p.name)
def test_valid_fixture_checked_alone_is_clean_under_strict(path: Path) -> None:
    """valid/alone/: files outside the project's rules/ and mappings/, each validated with it."""
    result = CliRunner().invoke(main, ["validate", "--strict", "--project", str(VALID), str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "0 error(s), 0 warning(s) in 3 file(s)"


def test_all_codes_are_documented() -> None:
    docs = (Path(__file__).parent.parent / "docs" / "diagnostics.md").read_text()
    codes = {_expectation(p)[0] for p in INVALID}
    missing = sorted(c for c in codes if f"## {c}" not in docs)
    assert not missing, f"undocumented codes: {missing}"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ([str(VALID / "rules")], 0),
        ([str(FIXTURES / "invalid" / "rules" / "unknown-action.yaml")], 1),
        (["--format", "nope"], 2),
    ],
)
def test_exit_codes(args: list[str], code: int) -> None:
    result = CliRunner().invoke(main, ["validate", "--project", str(VALID), *args])
    assert result.exit_code == code, result.output


def test_text_format_and_did_you_mean() -> None:
    path = FIXTURES / "invalid" / "rules" / "unknown-action.yaml"
    result = CliRunner().invoke(main, ["validate", "--project", str(VALID), str(path)])
    assert re.search(r"unknown-action\.yaml:7:12: error: unknown action 'cancel_ordr' "
                     r"\(did you mean 'cancel_order'\?\) \[unknown-action\]", result.output)


@pytest.mark.parametrize("fmt", ["json", "github"])
def test_machine_formats(fmt: str) -> None:
    path = FIXTURES / "invalid" / "rules" / "unknown-action.yaml"
    result = CliRunner().invoke(main, ["validate", "--format", fmt, "--project", str(VALID), str(path)])
    assert result.exit_code == 1
    if fmt == "json":
        data = json.loads(result.output)
        assert any(d["code"] == "unknown-action" and d["line"] == 7 and d["column"] == 12 for d in data)
    else:
        assert "::error file=" in result.output and "line=7,col=12,title=unknown-action::" in result.output


def test_strict_turns_warnings_into_failure(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "amazon-to-vtex.yaml").write_text(
        "source: amazon\ntarget: vtex\nrules:\n  - id: only\n    when: {status: CANCELLED}\n    then: []\n"
    )
    (tmp_path / "mappings").symlink_to(VALID / "mappings")
    lenient = CliRunner().invoke(main, ["validate", "--project", str(tmp_path)])
    strict = CliRunner().invoke(main, ["validate", "--strict", "--project", str(tmp_path)])
    assert lenient.exit_code == 0, lenient.output
    assert strict.exit_code == 1 and "rule-gap" in strict.output


def test_unknown_settings_in_connector_yaml(tmp_path: Path) -> None:
    (tmp_path / "mappings").symlink_to(VALID / "mappings")
    (tmp_path / "rules").symlink_to(VALID / "rules")
    (tmp_path / "connector.yaml").write_text(
        "systems:\n  vtex:\n    mapping: mappings/vtex.yaml\n    settings:\n      acount: shop\n"
        "  amazon:\n    mapping: mappings/amazon.yaml\n"
        "flows:\n  amazon-to-vtex:\n    rules: rules/amazon-to-vtex.yaml\n"
        "    settings: {buyer_cancelation: accept}\n"
    )
    findings, _ = findings_for(tmp_path, [])
    found = [(f.code, f.line, f.column, f.message) for f in findings if f.code == "unknown-setting"]
    assert [(c, line, col) for c, line, col, _ in found] == [("unknown-setting", 5, 7), ("unknown-setting", 11, 16)]
    assert "did you mean 'account'" in found[0][3] and "did you mean 'buyer_cancellation'" in found[1][3]


def test_ambiguous_action_needs_the_system_name(tmp_path: Path) -> None:
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    (mappings / "vtex.yaml").write_text((VALID / "mappings" / "vtex.yaml").read_text())
    amazon = (VALID / "mappings" / "amazon.yaml").read_text().replace("  confirm_shipment:", "  cancel_order:")
    (mappings / "amazon.yaml").write_text(amazon)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "amazon-to-vtex.yaml").write_text(
        "source: amazon\ntarget: vtex\nrules:\n  - id: a\n    when: {status: CANCELLED}\n"
        "    then: [cancel_order]\n"
    )
    findings, _ = findings_for(tmp_path, [])
    found = [(f.line, f.column, f.hint) for f in findings if f.code == "ambiguous-action"]
    assert found == [(6, 12, "write amazon.cancel_order or vtex.cancel_order")]


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("rules/empty-condition.yaml", "rules.1.when: empty condition: it tests nothing "
                                       "[empty-condition]\n  hint: an empty condition is not read "
                                       "as 'always'; for a rule that takes every order say so: "
                                       "`when: {status: {exists: true}}`"),
        ("mappings/empty-condition-step.yaml", "hint: an empty condition is not read as 'always': "
                                               "to always run, leave `when` out"),
        ("rules/duplicate-rule-id.yaml", "rule id 'a' is already used by the rule at line 5"),
        ("rules/schema-invalid.yaml", "hint: this key takes a mapping ('key: value' lines or {...}), "
                                      "not a list; `connector schema rules` prints the full shape"),
        ("yaml/syntax.yaml", "hint: a '[' or '{' is not closed where expected"),
    ],
)
def test_findings_say_what_to_do(fixture: str, expected: str) -> None:
    path = FIXTURES / "invalid" / fixture
    result = CliRunner().invoke(main, ["validate", "--project", str(VALID), str(path)])
    assert result.exit_code == 1 and expected in result.output, result.output


_RULE = "source: amazon\ntarget: vtex\nrules:\n  - id: a\n    when: {when}\n    then: []\n"
_ACTION = ("system: vtex\nconnection: {{base_url: 'https://x.example'}}\ndomains: {{status: [canceled]}}\n"
           "normalise: {{id: orderId, status: status}}\nactions:\n  cancel_order:\n{action}"
           "    steps: [{{name: a, method: POST, path: /a}}]\n")


@pytest.mark.parametrize(
    ("name", "text", "where", "line_col", "hint"),
    [
        ("rules.yaml", _RULE.format(when="{}"), "rules.0.when", (5, 11), "`when: {status: {exists: true}}`"),
        ("rules.yaml", _RULE.format(when="{not: {}}"), "rules.0.when.not", (5, 17), "remove it"),
        ("rules.yaml", _RULE.format(when="{all: []}"), "rules.0.when.all", (5, 17), "remove it"),
        ("rules.yaml", _RULE.format(when="{any: [{status: CANCELLED}, {}]}"), "rules.0.when.any.1",
         (5, 39), "remove it"),
        ("mapping.yaml", _ACTION.format(action="    precondition: {}\n"),
         "actions.cancel_order.precondition", (7, 19), "to always run, leave `precondition` out"),
        ("mapping.yaml", _ACTION.format(action="    follow_up: {}\n"),
         "actions.cancel_order.follow_up", (7, 16), "`follow_up: true` is the default"),
    ],
    ids=["when", "not", "all", "any-item", "precondition", "follow_up"],
)
def test_an_empty_condition_is_refused_wherever_a_condition_goes(
        tmp_path: Path, name: str, text: str, where: str, line_col: tuple[int, int],
        hint: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    findings, _ = findings_for(VALID, [path])
    (found,) = [f for f in findings if f.code == "empty-condition"]
    assert (found.line, found.column) == line_col
    assert found.message == f"{where}: empty condition: it tests nothing"
    assert "an empty condition is not read as 'always'" in found.hint and hint in found.hint


def test_summary_counts_the_file_that_failed_to_parse(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "broken.yaml").write_text("source: amazon\nrules: [\n")
    result = CliRunner().invoke(main, ["validate", "--project", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "1 error(s), 0 warning(s) in 1 file(s)"


def test_validate_does_not_tell_the_user_to_run_validate(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["validate", "--project", str(tmp_path)])
    assert result.exit_code == 2
    assert "[project-not-found]" in result.output
    assert "run 'connector validate'" not in result.output + (result.stderr or "")
