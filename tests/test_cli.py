"""The CLI shells: exit codes, messages instead of tracebacks, and each command's output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
VALID = FIXTURES / "valid"
ORDERS = FIXTURES / "orders"


@pytest.mark.parametrize("kind", ["rules", "mapping", "project"])
def test_schema_prints_a_json_schema(kind: str) -> None:
    result = CliRunner().invoke(main, ["schema", kind])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["$id"].endswith(f"{kind}.schema.json")


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "yaml-empty"),
        (b"\x00\x01\x02binary", "yaml-binary"),
        (b"a: &a [x, x]\nb: [*a, *a]\n" + b"c: {{\n", "yaml-syntax"),
        (b"rules: !!python/object/apply:os.system [ls]\n", "yaml-tag"),
    ],
)
def test_bad_files_give_findings_not_tracebacks(tmp_path: Path, content: bytes, code: str) -> None:
    bad = tmp_path / "rules" / "bad.yaml"
    bad.parent.mkdir()
    bad.write_bytes(content)
    result = CliRunner().invoke(main, ["validate", "--project", str(VALID), str(bad)])
    assert result.exit_code == 1
    assert f"[{code}]" in result.output
    assert "Traceback" not in result.output


def test_explain_shows_verdicts_and_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_VTEX_APP_KEY", "app-key-value-1234")
    monkeypatch.setenv("CONNECTOR_VTEX_APP_TOKEN", "app-token-value-5678")
    result = CliRunner().invoke(main, [
        "explain", str(ORDERS / "amazon-cancelled.json"), "--project", str(VALID),
        "--target", str(ORDERS / "vtex-handling.json"),
    ])
    assert result.exit_code == 0, result.output
    assert "MATCH cancel-in-vtex" in result.output
    assert "POST https://shop.vtexcommercestable.com.br/api/oms/pvt/orders/AMZ-902-3064534-0000001-01/cancel" in result.output
    assert "app-key-value-1234" not in result.output and "app-token-value-5678" not in result.output
    assert "X-VTEX-API-AppKey: ****" in result.output


def test_explain_says_why_rules_failed(tmp_path: Path) -> None:
    order = tmp_path / "o.json"
    order.write_text(json.dumps({"id": "1", "status": "SHIPPED", "actor": None, "fulfilment": "merchant"}))
    result = CliRunner().invoke(main, ["explain", str(order), "--project", str(VALID)])
    assert result.exit_code == 0, result.output
    assert "failed: status == 'CANCELLED' (is 'SHIPPED')" in result.output
    assert "MATCH everything-else" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "invalid JSON"), ("[1, 2]", "expected a JSON object")],
)
def test_explain_bad_input_is_a_usage_error(tmp_path: Path, content: str, message: str) -> None:
    order = tmp_path / "o.json"
    order.write_text(content)
    result = CliRunner().invoke(main, ["explain", str(order), "--project", str(VALID)])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_test_command_reports_failures_with_a_diff(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (tmp_path / "mappings").symlink_to(VALID / "mappings")
    (rules / "amazon-to-vtex.yaml").write_text(
        "source: amazon\ntarget: vtex\nrules:\n  - id: a\n    when: {status: CANCELLED}\n"
        "    then: [cancel_order]\ntests:\n  - name: wrong expectation\n"
        "    order: {status: CANCELLED}\n    target: {id: T, status: handling}\n    expect: [report]\n"
    )
    result = CliRunner().invoke(main, ["test", "--project", str(tmp_path)])
    assert result.exit_code == 1
    assert "FAIL rules/amazon-to-vtex.yaml:8:5: amazon-to-vtex: wrong expectation" in result.output
    assert "expected actions: ['report']" in result.output
    assert "actual actions: ['vtex.cancel_order']" in result.output
    assert "0 passed, 1 failed" in result.output


def test_fixture_tests_pass() -> None:
    result = CliRunner().invoke(main, ["test", "--project", str(VALID)])
    assert result.exit_code == 0, result.output
    assert "4 passed, 0 failed" in result.output


def test_a_bug_exits_3_with_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from connector.commands import schema as command

    def boom(kind: str, out: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(command, "run", boom)
    result = CliRunner().invoke(main, ["schema", "rules"])
    assert result.exit_code == 3
    assert "internal error" in result.output


def test_unknown_flow_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["test", "--project", str(VALID), "--flow", "amazon-to-vtx"])
    assert result.exit_code == 2
    assert "did you mean 'amazon-to-vtex'" in result.output
