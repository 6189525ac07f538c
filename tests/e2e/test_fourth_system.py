"""A fictional fourth system, YAML only, through every stage against a generic HTTP stub.

tests/fixtures/fourth/ holds a marketplace (`bazaar`) and a platform (`depot`) that exist
nowhere else: their mappings, a flow with its test cases, and the stub's routes. The project
is validated, its cases run, and `connector apply` goes through load, validate, fetch (token,
page-number listing), normalise, look-up, evaluate, plan, execute and record against the stub.
If any stage needed Python for a new system, one of these fails.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from http_stub import Stub, serve

from connector.cli import main

FOURTH = Path(__file__).resolve().parent.parent / "fixtures" / "fourth"
SECRETS = {"CONNECTOR_BAZAAR_CLIENT_SECRET": "bz-client-SECRET-1", "CONNECTOR_DEPOT_API_KEY": "depot-key-SECRET-2"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "fourth"
    shutil.copytree(FOURTH, root, ignore=shutil.ignore_patterns("stub.yaml"))
    return root


@pytest.fixture
def stub() -> Iterator[Stub]:
    with serve(FOURTH / "stub.yaml") as server:
        yield server


def _env(stub: Stub) -> dict[str, str]:
    return {"CONNECTOR_BAZAAR_BASE_URL": stub.base_url, "CONNECTOR_BAZAAR_CLIENT_ID": "bz-client",
            "CONNECTOR_DEPOT_BASE_URL": stub.base_url, **SECRETS}


def _apply(project: Path, stub: Stub, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["apply", "--project", str(project), *extra], env=_env(stub))
    return result.exit_code, result.output


def _mutating(stub: Stub) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in stub.received if r.method == "POST" and not r.path.endswith("/token")]


@pytest.mark.parametrize("command", [["validate", "--strict"], ["test"]])
def test_the_project_is_yaml_that_validates_and_passes_its_cases(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--project", str(FOURTH)])
    assert result.exit_code == 0, result.output


def test_apply_runs_every_stage_against_the_stub(project: Path, stub: Stub) -> None:
    code, output = _apply(project, stub, "--verbose")
    assert code == 1, output  # B-500's accept is refused: that order failed
    assert [r for r in stub.received if r.route is None] == [], "requests no route declares"
    # fetch: one token, both listing pages, the bearer token on each; look-ups by query
    assert len(stub.requests("POST", "/bazaar/oauth/token")) == 1
    token = stub.requests("POST", "/bazaar/oauth/token")[0]
    assert "client_secret=bz-client-SECRET-1" in token.body.decode()
    assert [r.query["page"] for r in stub.requests("GET", "/bazaar/v2/orders")] == ["1", "2"]
    # (B-500 twice: after a refusal both sides are read again, to tell a stale plan from a refusal)
    assert sorted(r.query["external_ref"] for r in stub.requests("GET", "/depot/api/orders")) == [
        "B-100", "B-200", "B-300", "B-400", "B-500", "B-500"]
    assert [r.path for r in stub.requests("GET") if r.path.startswith("/bazaar/v2/orders/")] == [
        "/bazaar/v2/orders/B-500"]
    # execute: what each order called for, once (orders run side by side: compared sorted),
    # and within an order in the rule's order: created in Depot before accepted on Bazaar
    assert sorted(_mutating(stub)) == sorted([
        ("POST", "/depot/api/orders/D-1/cancel"),
        ("POST", "/depot/api/orders"), ("POST", "/bazaar/v2/orders/B-200/accept"),
        ("POST", "/depot/api/orders"), ("POST", "/bazaar/v2/orders/B-500/accept"),
    ])
    posts = [r for r in stub.requests("POST") if not r.path.endswith("/token")]
    for ref in ("B-200", "B-500"):
        steps = [r.path for r in posts if (r.body and r.json().get("external_ref") == ref) or ref in r.path]
        assert steps == ["/depot/api/orders", f"/bazaar/v2/orders/{ref}/accept"], steps
    cancel = stub.requests("POST", "/depot/api/orders/D-1/cancel")[0]
    assert cancel.json() == {"reason": "Bazaar order B-100 was cancelled by buyer"}
    created = sorted((r.json() for r in stub.requests("POST", "/depot/api/orders")),
                     key=lambda body: body["external_ref"])
    assert created[0] == {"external_ref": "B-200", "customer": {"name": "Bo New", "email": "bo@example.com"},
                          "lines": [{"sku": "SKU-2", "quantity": 2, "unit_price": 5.5}],
                          "total": 11.0, "currency": "EUR"}
    # untrusted text arrives as the same string, JSON-escaped, not as markup or structure
    assert created[1]["customer"]["name"] == "Ed O'Brien \"&\" <Sons>"
    # record: the summary names each outcome; the remote side's words for the refusal
    text = output
    assert "Order B-500 is locked by a buyer dispute" in text
    assert "Bazaar order B-300 was cancelled after Depot shipped D-3" in text
    assert not any(secret in output for secret in SECRETS.values())


def test_a_second_run_sends_nothing_already_done(project: Path, stub: Stub) -> None:
    _apply(project, stub)
    stub.received.clear()
    code, output = _apply(project, stub)
    assert _mutating(stub) == [], output  # done stays done; the refused accept waits its backoff
    assert "2 already done" in output
    # --order lifts the backoff: only the refused accept goes again (once), nothing done repeats
    stub.received.clear()
    code, output = _apply(project, stub, "--order", "B-500")
    assert _mutating(stub) == [("POST", "/bazaar/v2/orders/B-500/accept")], output
