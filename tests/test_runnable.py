"""validate's runnable checks (connector/runnable.py), and `plan`/`apply` refusing what
validate calls an error: a flow that cannot list or look up, an auth the client cannot use."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.validate import findings_for

REPO = Path(__file__).resolve().parent.parent
VALID = Path(__file__).parent / "fixtures" / "valid"

TOKEN_REQUEST = "    token_request: {method: POST, path: /token, form: {grant_type: client_credentials}}\n"


def _mapping(auth: str) -> str:
    return ("system: fourth\nconnection:\n  base_url: https://x.example\n  auth:\n" + auth
            + "domains:\n  status: [open]\nnormalise:\n  id: id\n  status: status\n")


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        # complete: nothing to say
        ("    kind: oauth2_client_credentials\n    headers: {Authorization: 'Bearer {{ token }}'}\n"
         + TOKEN_REQUEST, []),
        ("    kind: headers\n    headers: {X-Key: '{{ settings.key }}'}\n", []),
        ("    kind: none\n", []),
        # incomplete
        ("    kind: oauth2_refresh_token\n    headers: {Authorization: 'Bearer {{ token }}'}\n",
         [("error", "declares no token_request")]),
        ("    kind: oauth2_client_credentials\n    headers: {X-Key: '{{ settings.key }}'}\n" + TOKEN_REQUEST,
         [("error", "that no header sends")]),
        ("    kind: bearer\n    headers: {Authorization: 'Bearer {{ token }}'}\n",
         [("error", "which only a token-exchanging kind")]),
        ("    kind: headers\n", [("error", "declares no headers")]),
        ("    kind: headers\n    headers: {X-Key: '{{ settings.key }}'}\n" + TOKEN_REQUEST,
         [("warning", "never sends its token_request")]),
    ],
    ids=["oauth2-complete", "headers", "none", "no-token-request", "token-not-sent",
         "token-without-exchange", "no-headers", "unused-token-request"],
)
def test_auth_declarations(tmp_path: Path, auth: str, expected: list[tuple[str, str]]) -> None:
    path = tmp_path / "fourth.yaml"
    text = _mapping(auth).replace("domains:", "settings:\n  key: {secret: true}\ndomains:", 1)
    path.write_text(text)
    findings, _ = findings_for(VALID, [path])
    got = [(f.severity.value, f.message) for f in findings if f.code == "auth-incomplete"]
    assert len(got) == len(expected), got
    for (severity, words), (got_severity, message) in zip(expected, got):
        assert got_severity == severity and words in message, got
    assert all(f.line == 5 and f.column == 11 for f in findings if f.code == "auth-incomplete")


def _project(tmp_path: Path) -> Path:
    """The shipped project with a copy of VTEX's mapping as a new marketplace (as a new user
    would start one): no listing, and no look-up for it in Commerce."""
    root = tmp_path / "project"
    shutil.copytree(REPO / "mappings", root / "mappings")
    shutil.copytree(REPO / "rules", root / "rules")
    mapping = (REPO / "mappings" / "vtex.yaml").read_text()
    (root / "mappings" / "shop.yaml").write_text(mapping.replace("system: vtex", "system: shop", 1))
    (root / "rules" / "shop-to-adobe-commerce.yaml").write_text(
        "source: shop\ntarget: adobe-commerce\nrules:\n  - id: cancelled\n    when: {status: canceled}\n"
        "    then:\n      - report: {message: cancelled}\n  - id: rest\n    when: {status: {exists: true}}\n"
        "    then: []\n")
    config = (REPO / "connector.yaml").read_text()
    config = config.replace("systems:\n", "systems:\n  shop:\n    mapping: mappings/shop.yaml\n", 1)
    config = config.replace(
        "flows:\n", "flows:\n  shop-to-adobe-commerce:\n    rules: rules/shop-to-adobe-commerce.yaml\n", 1)
    (root / "connector.yaml").write_text(config)
    return root


@pytest.mark.parametrize("command", [["validate"], ["plan", "--sandbox"], ["apply", "--sandbox"]])
def test_a_flow_that_cannot_run_is_refused_before_any_request(tmp_path: Path, command: list[str]) -> None:
    root = _project(tmp_path)
    result = CliRunner().invoke(main, [*command, "--project", str(root)])
    assert result.exit_code == (1 if command == ["validate"] else 2), result.output
    assert ("rules/shop-to-adobe-commerce.yaml:1:9: error: shop is this flow's source, but "
            "mappings/shop.yaml declares no orders.list") in result.output
    assert ("rules/shop-to-adobe-commerce.yaml:2:9: error: mappings/adobe-commerce.yaml declares no "
            "orders.lookup.shop") in result.output
    assert "nothing to do" not in result.output and "Traceback" not in result.output


def test_the_shipped_project_is_runnable() -> None:
    findings, _ = findings_for(REPO, [])
    assert [f for f in findings if f.code in ("flow-source-cannot-list", "flow-target-no-lookup",
                                              "auth-incomplete")] == []
