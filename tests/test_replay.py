"""`connector test --cassette`: a recorded run replayed offline as a regression test.

The committed sandbox cassettes (cassettes/sandbox-*.yaml, cassettes/record_sandbox.py) replay
cleanly with the shipped rules; a copy of the project with a rule changed fails with a readable
"missing request" or "new request" line; and the matching rules of connector/replay.py hold.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest
import vcr
from click.testing import CliRunner, Result

from connector.cli import main
from connector.runner import run_flows
from connector.transport.http import HttpRequest, Transport, new_client
from connector.plan import prepare
from connector.project import load_config, require
from connector.transport.cassette import Scrubber, read_metadata, recorder, scrub_text, write_metadata
from connector.render import MASK, Redactor
from connector.replay import (
    body_difference,
    is_datetime,
    path_matches,
    query_difference,
    replay_settings,
)
from connector.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[1]
CASSETTES = REPO / "cassettes"
FLOWS = ("amazon-to-vtex", "amazon-to-adobe-commerce", "adobe-commerce-to-amazon")
MX_FLOWS = ("walmart-to-vtex", "walmart-to-adobe-commerce", "adobe-commerce-to-walmart")


@pytest.fixture(autouse=True)
def _no_connector_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A developer's CONNECTOR_* settings would change what the rules do."""
    for name in list(os.environ):
        if name.startswith("CONNECTOR_"):
            monkeypatch.delenv(name)
    yield


def connector(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def project_copy(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "connector.yaml", root)
    shutil.copytree(REPO / "mappings", root / "mappings")
    shutil.copytree(REPO / "rules", root / "rules")
    return root


def edit(root: Path, flow: str, old: str, new: str) -> None:
    path = root / "rules" / f"{flow}.yaml"
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not found once in {path.name}"
    path.write_text(text.replace(old, new))


def then_of(root: Path, flow: str, rule: str) -> str:
    """The `then:` block of a rule, as text (up to the next rule)."""
    text = (root / "rules" / f"{flow}.yaml").read_text()
    start = text.index(f"  - id: {rule}\n")
    end = text.index("\n  - id: ", start + 1)
    block = text[start:end]
    return block[block.index("    then:"):]


def drop_cancel_in_vtex(root: Path) -> None:
    """The rule that cancels VTEX orders no longer does anything."""
    block = then_of(root, "amazon-to-vtex", "cancel-in-vtex")
    edit(root, "amazon-to-vtex", block, "    then: []\n")


# --- the committed sandbox cassettes -----------------------------------------------------------


@pytest.mark.parametrize("flow", [*FLOWS, *(f"mx-{flow}" for flow in MX_FLOWS)])
def test_sandbox_cassette_replays_with_the_shipped_rules(flow: str) -> None:
    """The mx- cassettes (Walmart México) carry their settings environment (the market), which
    the replay applies: the mapping's mx variant answers them."""
    cassette = CASSETTES / f"sandbox-{flow}.yaml"
    flow = flow.removeprefix("mx-")
    assert read_metadata(cassette)["flows"] == [flow]
    result = connector("test", "--project", str(REPO), "--cassette", str(cassette), "-v")
    assert result.exit_code == 0, result.output
    assert f"PASS {cassette}: {flow}: replay" in result.output
    assert result.output.rstrip().endswith("1 passed, 0 failed")


def test_a_removed_action_is_a_missing_request(tmp_path: Path) -> None:
    root = project_copy(tmp_path)
    drop_cancel_in_vtex(root)
    result = connector("test", "--project", str(root), "--cassette",
                       str(CASSETTES / "sandbox-amazon-to-vtex.yaml"))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("FAIL ") and "amazon-to-vtex" in lines[0]
    missing = [line.strip() for line in lines if "missing request" in line]
    # two cancels each while ready-for-handling / handling (…0001, …0002), one for …0003
    assert sorted(missing) == [
        f"missing request: POST /vtex/api/oms/pvt/orders/AMZ-111-0000001-000000{n}-01/cancel"
        for n in (1, 1, 2, 2, 3)]
    assert not any("new request" in line for line in lines)
    assert lines[-1] == "0 passed, 1 failed"


def test_a_changed_argument_is_a_new_request_saying_what_differs(tmp_path: Path) -> None:
    root = project_copy(tmp_path)
    edit(root, "amazon-to-vtex", "was cancelled on Amazon by {{", "was cancelled by {{")
    result = connector("test", "--project", str(root), "--cassette",
                       str(CASSETTES / "sandbox-amazon-to-vtex.yaml"))
    assert result.exit_code == 1
    assert ("    new request: POST /api/oms/pvt/orders/AMZ-111-0000001-0000003-01/cancel (a "
            "recorded one differs in reason: \"Amazon order 111-0000001-0000003 was cancelled on "
            "Amazon by the customer\" recorded, \"Amazon order 111-0000001-0000003 was cancelled "
            "by the customer\" now)") in result.output.splitlines()
    assert "missing request: POST /vtex/api/oms/pvt/orders/AMZ-111-0000001-0000003-01/cancel" \
        in result.output


def test_an_added_action_is_a_new_request(tmp_path: Path) -> None:
    root = project_copy(tmp_path)
    block = then_of(root, "adobe-commerce-to-amazon", "cancel-in-seller-central")
    edit(root, "adobe-commerce-to-amazon", block,
         block.replace("    then:\n", "    then:\n      - adobe-commerce.add_comment: "
                       "{comment: also noted here}\n", 1))
    result = connector("test", "--project", str(root), "--cassette",
                       str(CASSETTES / "sandbox-adobe-commerce-to-amazon.yaml"))
    assert result.exit_code == 1
    new = [line.strip() for line in result.output.splitlines() if "new request" in line]
    assert new[0].startswith("new request: POST /V1/orders/") and new[0].endswith("/comments")
    # the failed action (answered 400: not recorded) makes the engine read the order again
    assert all(line.startswith("new request: GET ") for line in new[1:])
    assert "missing request" not in result.output


def test_flow_option_and_unknown_flow() -> None:
    cassette = str(CASSETTES / "sandbox-amazon-to-vtex.yaml")
    chosen = connector("test", "--project", str(REPO), "--cassette", cassette,
                       "--flow", "amazon-to-vtex")
    assert chosen.exit_code == 0 and chosen.output.strip() == "1 passed, 0 failed"
    other = CliRunner().invoke(main, ["test", "--project", str(REPO), "--cassette", cassette,
                                      "--flow", "amazon-to-adobe-commerce"])
    assert other.exit_code == 2
    assert "the recorded run has no flow 'amazon-to-adobe-commerce'" in other.output


def test_a_wall_clock_apply_record_replays_and_blames_the_right_flow(tmp_path: Path) -> None:
    """`connector apply --sandbox --record` (every flow, concurrently, at the current time)
    replays; a changed rule fails its own flow only."""
    root = project_copy(tmp_path)
    cassette = tmp_path / "run.yaml"
    recorded = connector("apply", "--project", str(root), "--sandbox", "--record", str(cassette))
    assert recorded.exit_code == 0, recorded.output
    assert read_metadata(cassette)["started_at"]
    replayed = connector("test", "--project", str(root), "--cassette", str(cassette))
    assert replayed.exit_code == 0, replayed.output
    assert replayed.output.strip() == "6 passed, 0 failed"
    drop_cancel_in_vtex(root)
    changed = connector("test", "--project", str(root), "--cassette", str(cassette))
    assert changed.exit_code == 1
    fails = [line for line in changed.output.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 1 and ": amazon-to-vtex: " in fails[0]
    assert changed.output.rstrip().endswith("5 passed, 1 failed")


def test_a_plan_recording_replays_in_plan_mode(tmp_path: Path) -> None:
    """`plan --record` sends no change: its cassette replays read-only (metadata mode: plan);
    replayed in apply mode, every action the plan showed would be a new request."""
    config = require(load_config(REPO))
    cassette = tmp_path / "plan.yaml"
    with Sandbox() as sandbox:
        settings = sandbox.settings()
        redact = prepare(config, "amazon-to-vtex", {}, system_overrides=settings).redact
        with recorder(cassette, redact, started_at=sandbox.clock.now(),
                      meta={"flows": ["amazon-to-vtex"], "mode": "plan"}):
            run_flows(config, ["amazon-to-vtex"], "sqlite:///:memory:", settings, {},
                      dry_run=True, now=sandbox.clock.now)
    result = connector("test", "--project", str(REPO), "--cassette", str(cassette))
    assert (result.exit_code, result.output.strip()) == (0, "1 passed, 0 failed")
    write_metadata(cassette, {"mode": "apply"})
    as_apply = connector("test", "--project", str(REPO), "--cassette", str(cassette))
    assert as_apply.exit_code == 1
    assert "new request: POST /api/oms/pvt/orders/AMZ-111-0000001-0000001-01/cancel" \
        in as_apply.output


# --- no secret in any committed cassette ---------------------------------------------------------

_CREDENTIAL_FIELDS = re.compile(
    r"""(?<![\w-])(access_token|refresh_token|client_secret|client_id|token)"""
    r"""(["']?[ \t]*[:=][ \t]*["']?)"""
    r"""([^"'&\s,}]*)""")


def _spellings(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


@pytest.mark.parametrize("cassette", sorted(p.name for p in CASSETTES.glob("*.yaml")))
def test_no_secret_in_a_committed_cassette(cassette: str) -> None:
    text = (CASSETTES / cassette).read_text()
    with Sandbox(orders="empty") as sandbox:
        secrets = [value for system in sandbox.settings().values()
                   for name, value in system.items()
                   if name in ("client_id", "client_secret", "refresh_token", "app_key",
                               "app_token", "token")]
    assert len(secrets) == 8  # Amazon 3, Walmart 2, VTEX 2, Commerce 1
    for secret in secrets:
        for spelling in _spellings(secret):
            assert spelling not in text, f"{cassette} holds a sandbox credential"
    assert "Atza|" not in text and "Atzr|" not in text  # LWA access and refresh tokens
    assert "eyJraWQiOiJzYW5kYm94In0." not in text  # the Walmart sandbox's access tokens
    for field, _sep, value in _CREDENTIAL_FIELDS.findall(text):
        assert value in ("", MASK, "refresh_token"), f"{cassette}: {field} = {value!r}"
    for value in re.findall(r"X-Amz-(?:Signature|Credential|Security-Token)=([^&\s\"']*)", text):
        assert value == MASK, f"{cassette}: a presigned URL's signature is not masked"
    for header in ("x-amz-access-token", "authorization", "x-vtex-api-appkey",
                   "x-vtex-api-apptoken", r"wm_sec\.access_token"):
        for value in re.findall(rf"(?im)^\s*{header}:\s*\n\s*- (.*)$", text):
            assert value.strip("'\"") in (MASK, ""), f"{cassette}: header {header} = {value}"


# --- metadata ----------------------------------------------------------------------------------


def test_recorder_saves_the_run_time_and_vcrpy_still_replays(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    started = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
    answer = httpx.MockTransport(lambda request: httpx.Response(200, json={"ok": True}))
    request = HttpRequest("GET", "https://shop.example.com/api/x")
    with Transport(new_client(transport=answer), sleep=lambda s: None) as transport, \
            recorder(path, Redactor(), started_at=started, meta={"flows": ["a"], "mode": "apply"}):
        transport.send(request, idempotent=True)
    assert read_metadata(path) == {"started_at": "2026-03-02T12:00:00+00:00", "flows": ["a"],
                                   "mode": "apply"}
    with Transport(new_client(), sleep=lambda s: None) as transport, \
            vcr.VCR(record_mode="none").use_cassette(str(path)) as tape:
        assert transport.send(request, idempotent=True).json() == {"ok": True}
        assert tape.all_played


# --- matching ----------------------------------------------------------------------------------


def test_get_query_values_that_are_date_times_always_match() -> None:
    recorded = [("lastUpdatedAfter", "2026-03-01T12:00:00Z"), ("marketplaceIds", "ATVPDKIKX0DER"),
                ("searchCriteria[filterGroups][0][filters][0][value]", "2026-03-01 12:00:00")]
    now = [("lastUpdatedAfter", "2026-11-22T15:44:48Z"), ("marketplaceIds", "ATVPDKIKX0DER"),
           ("searchCriteria[filterGroups][0][filters][0][value]", "2026-11-22 15:44:48")]
    assert query_difference("GET", now, recorded) is None
    assert "marketplaceIds" in str(query_difference(
        "GET", [*now[:1], ("marketplaceIds", "A1F83G8C2ARO7P"), now[2]], recorded))
    assert "parameters" in str(query_difference("GET", now[:2], recorded))
    assert query_difference("PUT", now, recorded) is not None  # only reads have windows
    assert query_difference("PUT", recorded, list(reversed(recorded))) is None


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-03-01T12:00:00Z", True), ("2026-03-01T12:00:00.123+00:00", True),
    ("2026-03-01 12:00:00", True), ("2026-03-01T12:00", True),
    ("2026-03-01", False), ("ATVPDKIKX0DER", False), ("112-0000002-0000001", False),
])
def test_is_datetime(value: str, expected: bool) -> None:
    assert is_datetime(value) is expected


def test_paths_match_below_the_recorded_base_path() -> None:
    assert path_matches("/V1/orders/5", "/adobe-commerce/rest/default/V1/orders/5")
    assert path_matches("/api/oms/pvt/orders/X-01", "/api/oms/pvt/orders/X-01")
    assert not path_matches("/orders/5", "/V1/xorders/5")
    assert not path_matches("/V1/orders/5", "/V1/orders/5/cancel")
    assert not path_matches("/", "/anything")


def test_bodies_match_as_json_after_the_recording_scrubbing() -> None:
    scrub = Scrubber(Redactor().extended(["replay-amazon-client_secret"]))
    recorded = json.dumps({"b": 1, "a": {"note": f"secret {MASK}"}})
    sent = '{"a": {"note": "secret replay-amazon-client_secret"}, "b": 1}'
    assert body_difference(sent.encode(), recorded, lambda t: scrub_text(t, scrub)) is None
    form = "grant_type=refresh_token&refresh_token=real-or-placeholder&client_id=x"
    assert body_difference(form, f"grant_type=refresh_token&refresh_token={MASK}&client_id={MASK}",
                           lambda t: scrub_text(t, scrub)) is None
    assert body_difference('{"a": {"x": 1}}', '{"a": {"x": 2}}', str) == "a.x: 2 recorded, 1 now"
    assert body_difference('{"a": 1}', '{"a": 1, "b": 2}', str) == "b: recorded, not sent now"


def test_replay_settings_point_every_system_at_a_placeholder_host() -> None:
    config = require(load_config(REPO))
    settings = replay_settings(config, ["amazon-to-vtex"], {})
    assert set(settings) == {"amazon", "vtex"}
    assert settings["amazon"]["base_url"] == "http://amazon.replay.invalid"
    assert settings["amazon"]["token_url"] == "http://amazon.replay.invalid/auth/o2/token"
    assert settings["amazon"]["refresh_token"] == "replay-amazon-refresh_token"
    assert "marketplace_ids" not in settings["amazon"]  # set in connector.yaml: kept
    assert settings["vtex"]["base_url"] == "http://vtex.replay.invalid"
    assert settings["vtex"]["account"] == "replay-vtex-account"
