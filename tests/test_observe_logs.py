"""`--log-format json`: one JSON object per event of a run, on stderr, secrets masked."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connector import observe
from connector.cli import main
from connector.observe import logs
from connector.project import env_name

REPO = Path(__file__).resolve().parent.parent
# Credentials of the sandbox for this test: sent in every request, never in a line.
SECRETS = {"amazon": {"client_secret": "obs-lwa-secret-5b1e", "refresh_token": "Atzr|obs-refresh-77"},
           "vtex": {"app_token": "OBSAPPTOKEN0123456789"},
           "adobe-commerce": {"token": "obs-commerce-token-42"}}


@pytest.fixture(autouse=True)
def _no_logs_after() -> Iterator[None]:
    yield
    logs.reset()


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def sandbox_apply(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[dict[str, Any]]]:
    """`connector --log-format json apply` on the shipped flows against the sandbox, with
    credentials of this test's own."""
    from connector.sandbox import Sandbox

    state = tmp_path_factory.mktemp("obs") / "state.db"
    with Sandbox() as box:
        box.amazon.feeds_api.polls_before_done = 0
        box.amazon.credentials.update(SECRETS["amazon"])
        box.vtex.credentials.update(SECRETS["vtex"])
        box.commerce.token = SECRETS["adobe-commerce"]["token"]
        env = {env_name(system, name): str(value)
               for system, values in box.settings().items() for name, value in values.items()}
        env["CONNECTOR_STATE"] = f"sqlite:///{state}"
        result = CliRunner().invoke(main, ["--log-format", "json", "apply", "--project", str(REPO)],
                                    env=env)
    logs.reset()
    assert result.exit_code == 0, result.output + result.stderr
    return result, lines(result.stderr)


def test_every_line_is_a_json_event_of_the_run(sandbox_apply: Any) -> None:
    result, events = sandbox_apply
    assert len(events) == len(result.stderr.splitlines())  # nothing but JSON on stderr
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"]) for e in events)
    assert len({e["run"] for e in events if "run" in e}) == 1  # one run id for the apply
    kinds = Counter(e["event"] for e in events)
    flows = {e["flow"] for e in events if e["event"] == "flow.end"}
    assert kinds["flow.start"] == kinds["flow.end"] == len(flows) >= 3
    for kind in ("order.evaluated", "action.end", "action.step", "http.request"):
        assert kinds[kind] > 0, kind


def test_events_carry_the_order_rule_action_key_status_and_timing(sandbox_apply: Any) -> None:
    _result, events = sandbox_apply
    done = [e for e in events if e["event"] == "action.end" and e["outcome"] == "done"]
    assert done
    for event in done:
        assert event["flow"] and event["order"] and event["rule"] and event["action"]
        assert re.fullmatch(r"[0-9a-f]{32}", event["key"])
        assert event["duration_seconds"] >= 0
    # an action's HTTP requests know the order, rule, action and step they were made for
    sent = [e for e in events if e["event"] == "http.request" and "key" in e]
    assert sent and all(e["step"] and e["order"] and isinstance(e["status"], int) for e in sent)
    assert {e["method"] for e in sent} >= {"POST"}
    evaluated = [e for e in events if e["event"] == "order.evaluated"]
    assert all(isinstance(e["rules"], list) and e["order"] for e in evaluated)


def test_action_events_add_up_to_the_summary(sandbox_apply: Any) -> None:
    result, events = sandbox_apply
    for end in (e for e in events if e["event"] == "flow.end"):
        outcomes = Counter(e["outcome"] for e in events
                           if e["event"] == "action.end" and e["flow"] == end["flow"])
        assert outcomes["done"] == end["done"]
        assert outcomes["skipped"] == end["skipped"]
        assert outcomes["failed"] == end["failed"]
        evaluated = {e["order"] for e in events
                     if e["event"] == "order.evaluated" and e["flow"] == end["flow"]}
        assert len(evaluated) == end["orders"]
        assert re.search(rf"^{end['flow']}: {end['orders']} order\(s\).*: {end['done']} action",
                         result.stdout, re.MULTILINE)  # the text summary is still the output


def test_no_line_holds_a_secret(sandbox_apply: Any) -> None:
    result, _events = sandbox_apply
    for values in SECRETS.values():
        for secret in values.values():
            assert secret not in result.stderr and secret not in result.stdout


def test_the_formatter_masks_secrets_in_values_and_fields_named_secret() -> None:
    stream = io.StringIO()
    logs.configure("json", stream, environ={"CONNECTOR_VTEX_APP_TOKEN": "env-token-9f8e",
                                            "CONNECTOR_STATE": "postgresql://u:pg-pass-31@h/db"})
    logs.add_secrets(["flow-secret-abc"])
    with observe.bound(run="r1", order="o1"):
        observe.emit("order.error", error="refused flow-secret-abc and env-token-9f8e, "
                     "json-escaped too: \"flow-secret-abc\"", client_secret="plain-but-named",
                     nested={"Authorization": "Bearer zzz", "ok": "shown"}, url="pg-pass-31")
    [event] = lines(stream.getvalue())
    text = stream.getvalue()
    for secret in ("flow-secret-abc", "env-token-9f8e", "plain-but-named", "Bearer zzz",
                   "pg-pass-31"):
        assert secret not in text
    assert event["run"] == "r1" and event["order"] == "o1" and event["nested"]["ok"] == "shown"
    assert event["client_secret"] == "****" and event["nested"]["Authorization"] == "****"


def test_text_stays_the_default_and_the_setting_chooses_json(tmp_path: Path) -> None:
    args = ["plan", "--project", str(REPO), "--flow", "amazon-to-vtex"]
    env = {"CONNECTOR_STATE": f"sqlite:///{tmp_path / 'none.db'}"}
    text = CliRunner().invoke(main, args, env=env)
    assert "{" not in text.stderr
    assert logs.choose(None, {"CONNECTOR_LOG_FORMAT": "JSON"}) == "json"
    assert logs.choose("text", {"CONNECTOR_LOG_FORMAT": "json"}) == "text"  # the option wins
    bad = CliRunner().invoke(main, args, env={**env, "CONNECTOR_LOG_FORMAT": "xml"})
    assert bad.exit_code == 2 and "CONNECTOR_LOG_FORMAT='xml'" in bad.stderr
