"""The runner builds every command's run the same way: options, settings, transport, store."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from connector import runner
from connector.engine import RunOptions
from connector.errors import ConnectorError, UsageError
from connector.execute import RetryAcrossRuns
from connector.plan import prepare
from connector.project import Config, load_config, require
from connector.replay import replay

REPO = Path(__file__).resolve().parents[1]
CASSETTES = REPO / "cassettes"


def shipped(**flow_options: Any) -> Config:
    config = require(load_config(REPO))
    if flow_options:
        options = {name: {**config.flow_options.get(name, {}), **flow_options}
                   for name in config.flows}
        config = dataclasses.replace(config, flow_options=options)
    return config


@pytest.mark.parametrize(("flow_options", "settings", "expected"), [
    ({}, runner.RunSettings(), {"concurrency": 8, "watch_hours": 48.0,
                                "retry": RetryAcrossRuns()}),
    ({"max_attempts": 2, "retry_backoff_seconds": 10, "concurrency": 3},
     runner.RunSettings(since="2026-01-01T00:00:00Z", dry_run=True),
     {"concurrency": 3, "since": "2026-01-01T00:00:00Z", "dry_run": True,
      "retry": RetryAcrossRuns(max_attempts=2, backoff_seconds=10.0)}),
    ({"concurrency": 3, "watch_hours": 5}, runner.RunSettings(concurrency=1, partition="X"),
     {"concurrency": 1, "partition": "X", "watch_hours": 5.0}),
])
def test_run_options_are_the_command_settings_over_the_flow_options(
        flow_options: dict[str, Any], settings: runner.RunSettings,
        expected: dict[str, Any]) -> None:
    runtime = prepare(shipped(**flow_options), "amazon-to-vtex", {})
    options = runner.run_options(runtime, settings)
    assert {name: getattr(options, name) for name in expected} == expected


def test_replay_runs_with_the_flows_retry_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replay once built its own engine options and dropped `max_attempts` and
    `retry_backoff_seconds`; it goes through the runner now, like apply and the worker."""
    seen: list[RunOptions] = []
    real = runner.FlowRun

    def capture(runtime: Any, clients: Any, store: Any, options: RunOptions) -> Any:
        seen.append(options)
        return real(runtime, clients, store, options)

    monkeypatch.setattr(runner, "FlowRun", capture)
    config = shipped(max_attempts=2, retry_backoff_seconds=7)
    cases = replay(config, CASSETTES / "sandbox-amazon-to-vtex.yaml", None, {})
    assert [case.passed for case in cases] == [True]
    assert [options.retry for options in seen] == [RetryAcrossRuns(max_attempts=2,
                                                                   backoff_seconds=7.0)]
    assert seen[0].concurrency == 1 and seen[0].poll_scale == 0.0


def test_missing_settings_are_reported_for_every_flow_at_once() -> None:
    config = shipped()
    with pytest.raises(ConnectorError) as caught:
        runner.prepare_flows(config, sorted(config.flows), {})
    lines = str(caught.value).splitlines()
    flows = [line.split(":")[0] for line in lines if line.startswith("flow ")]
    assert flows == [f"flow {name}" for name in sorted(config.flows)]
    assert "CONNECTOR_AMAZON_REFRESH_TOKEN" in str(caught.value)


def test_an_unknown_flow_is_a_usage_error_with_a_suggestion() -> None:
    with pytest.raises(UsageError, match="did you mean 'amazon-to-vtex'"):
        runner.select_flows(shipped(), "amazon-to-vtx")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("module", sorted(
    str(p.relative_to(REPO)) for p in (REPO / "connector").rglob("*.py")
    if p.name != "cli.py"))
def test_no_module_imports_a_command_module(module: str) -> None:
    """Commands are thin shells over the runner: nothing but the CLI builds on a command."""
    path = REPO / module
    own = "connector." + ".".join(path.relative_to(REPO / "connector").with_suffix("").parts)
    commands = {name for name in _imports(path)
                if name.startswith("connector.commands.") and name != own}
    assert commands == set()


def test_apply_runs_draw_rate_limits_from_the_state_store(tmp_path: Path) -> None:
    """A run's buckets are rows of its state store, named by account digest, so another
    process on the store draws from the same tokens; no credential is stored."""
    import sqlite3

    from connector.sandbox import Sandbox

    state = tmp_path / "state.db"
    with Sandbox() as box:
        settings = box.settings()
        runner.run_flows(shipped(), ["amazon-to-vtex"], f"sqlite:///{state}", settings, {},
                         poll_scale=0.0, now=box.clock.now)
    with sqlite3.connect(state) as conn:
        buckets = [name for (name,) in conn.execute("SELECT bucket FROM rate_buckets")]
    conn.close()
    amazon = runner.rate_accounts([prepare(shipped(), "amazon-to-vtex", {},
                                           system_overrides=settings)])["amazon"]
    assert f"{amazon}/amazon/searchOrders" in buckets
    assert any(name.startswith("vtex-") and name.endswith("/vtex/GetOrder") for name in buckets)
    secrets = [str(settings["amazon"][key]) for key in ("client_secret", "refresh_token")]
    assert not any(secret in name for secret in secrets for name in buckets)


def test_rate_limit_accounts_follow_the_credentials() -> None:
    def account(refresh_token: str) -> str:
        runtime = prepare(shipped(), "amazon-to-vtex", {
            "CONNECTOR_AMAZON_CLIENT_ID": "app", "CONNECTOR_AMAZON_REFRESH_TOKEN": refresh_token})
        return runner.rate_accounts([runtime])["amazon"]

    assert account("Atzr|seller-1") == account("Atzr|seller-1")
    assert account("Atzr|seller-1") != account("Atzr|seller-2")  # another seller's buckets
    assert "seller" not in account("Atzr|seller-1")
