"""Shared helpers of the fault-injection suite: runs on the sandbox and effect snapshots.

The suite judges the connector by what happened in the simulated systems (effects), never
by the requests it sent: a request may be answered 429, be lost, or act and get no answer,
and what matters is that each expected change happened exactly once and no order was left
behind.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

import connector.runner as runner_module
from connector.runner import run_flows
from connector.engine import Summary
from connector.transport.http import RetryPolicy, Transport, new_client
from connector.project import Config, env_name, load_config, require
from connector.sandbox import Sandbox
from connector.sandbox.effects import effects

REPO = Path(__file__).resolve().parents[2]
FLOWS = ("adobe-commerce-to-amazon", "amazon-to-adobe-commerce", "amazon-to-vtex")
MUTATING = ("POST", "PUT", "PATCH", "DELETE")
FAST_RETRY = RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.05)


def load(*, limits: bool = True, **flow_options: Any) -> Config:
    """The shipped configuration. `limits=False` drops the mappings' rate limits (the
    sandbox does not enforce them unless asked): SP-API's getOrder at 0.5/s or VTEX's 10
    cancels a second would make a few hundred generated orders take minutes. `flow_options`
    are set on every flow."""
    config = require(load_config(REPO))
    if not limits:
        systems = {name: dataclasses.replace(system, rate_limits={})
                   for name, system in config.systems.items()}
        config = dataclasses.replace(config, systems=systems)
    if flow_options:
        options = {name: {**config.flow_options.get(name, {}), **flow_options}
                   for name in config.flows}
        config = dataclasses.replace(config, flow_options=options)
    return config


@dataclasses.dataclass
class Net:
    """The client side of a test run: timeouts, retry policy, recorded sleeps, and an
    optional wrapper around the real HTTP transport (faults a server cannot produce, such as
    a connect timeout)."""

    read_timeout: float = 30.0
    connect_timeout: float = 5.0
    retry: RetryPolicy = FAST_RETRY
    wrap: Callable[[httpx.BaseTransport], httpx.BaseTransport] | None = None
    sleeps: list[float] = dataclasses.field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        time.sleep(seconds)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> Net:
        """Make `run_flows` build its transport from these settings."""
        net = self

        def transport(client: httpx.Client, **kwargs: Any) -> Transport:
            return Transport(client, read_timeout=net.read_timeout,
                             connect_timeout=net.connect_timeout, retry=net.retry,
                             sleep=net.sleep, **kwargs)

        def client() -> httpx.Client:
            return new_client(transport=net.wrap(httpx.HTTPTransport()) if net.wrap else None)

        monkeypatch.setattr(runner_module, "Transport", transport)
        monkeypatch.setattr(runner_module, "new_client", client)
        return self


def run(config: Config, sandbox: Sandbox, db: Path, flows: Sequence[str] = FLOWS,
        env: Mapping[str, str] | None = None,
        settings: Mapping[str, Mapping[str, Any]] | None = None) -> list[Summary]:
    """One `connector apply` in process, on the sandbox's clock (`settings` replace the
    sandbox's own, e.g. to point a system elsewhere)."""
    summaries, _ = run_flows(config, list(flows), f"sqlite:///{db}",
                             settings or sandbox.settings(), dict(env or {}), poll_scale=0.0,
                             now=sandbox.clock.now)
    return summaries


def one(summaries: list[Summary]) -> Summary:
    assert len(summaries) == 1
    return summaries[0]


def mutations(sandbox: Sandbox, pattern: str = "", since: int = 0) -> list[Any]:
    """Mutating requests the simulators saw (token requests excluded)."""
    return [r for r in sandbox.requests[since:]
            if r.method in MUTATING and "/auth/o2/token" not in r.path and pattern in r.path]


def child_env(sandbox: Sandbox, state: Path, **extra: str) -> dict[str, str]:
    """The environment of a `connector` subprocess pointed at the sandbox."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    for system, values in sandbox.settings().items():
        for name, value in values.items():
            env[env_name(system, name)] = value
    env["CONNECTOR_STATE"] = f"sqlite:///{state}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


CONNECTOR = [sys.executable, "-m", "connector"]


def settle(config: Config, sandbox: Sandbox, db: Path, flows: Sequence[str] = FLOWS, *,
           runs: int = 4, step: float = 400.0) -> list[list[Summary]]:
    """Later runs, each after `step` sandbox seconds (past Amazon's two-minute lag and the
    first retry backoff), until one ends clean (no failure, unknown outcome or error)."""
    done: list[list[Summary]] = []
    for _ in range(runs):
        sandbox.advance(step)
        summaries = run(config, sandbox, db, flows)
        done.append(summaries)
        if not any(s.failed or s.unknown or s.errors or s.deferred for s in summaries):
            break
    return done


_REFERENCES: dict[tuple[tuple[str, ...], str | int, int, tuple[tuple[str, str], ...]],
                  dict[str, Any]] = {}


def reference(flows: Sequence[str] = FLOWS, orders: str | int = "scenarios",
              seed: int = 0, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The effects of fault-free runs (two, so that changes one flow makes to another's
    source are seen) on a fresh sandbox seeded alike, with the environment `env` (flow
    settings); computed once per session."""
    key = (tuple(flows), orders, seed, tuple(sorted((env or {}).items())))
    if key not in _REFERENCES:
        import tempfile

        config = load(limits=False)
        patched = runner_module.Transport, runner_module.new_client
        # mypy: the module attributes are reassigned on purpose (a test's Net may be on)
        runner_module.Transport, runner_module.new_client = Transport, new_client
        try:
            with Sandbox(orders=orders, seed=seed) as sandbox, \
                    tempfile.TemporaryDirectory() as tmp:
                sandbox.amazon.feeds_api.polls_before_done = 0
                run(config, sandbox, Path(tmp) / "state.db", flows, env)
                sandbox.advance(400)
                run(config, sandbox, Path(tmp) / "state.db", flows, env)
                assert sandbox.errors == []
                _REFERENCES[key] = effects(sandbox)
        finally:
            runner_module.Transport, runner_module.new_client = patched
    return _REFERENCES[key]
