"""The runner: builds a run from configuration and options, for every command that runs flows.

`apply`, `plan`, `status`, `retry`, `connector worker` and `connector test --cassette` (replay)
all need the same pieces: the flows' runtimes with their settings checked, one redactor over
every secret, one HTTP transport whose rate limiters hold across the flows, the systems'
clients, the engine's options from each flow's `connector.yaml` options (retry across runs
included), the state store, and optionally the sandbox and a recording. Building them here,
once, keeps the commands thin and keeps a setting from being honoured by one command and
forgotten by another (as replay once forgot the flow's retry settings).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from connector import observe, templates
from connector.transport.client import SystemClient
from connector.diagnostics import did_you_mean
from connector.engine import FlowRun, RunOptions, Summary
from connector.errors import ConnectorError, UsageError
from connector.execute import RetryAcrossRuns
from connector.transport.http import RateLimiter, Transport, new_client
from connector.observe import logs
from connector.plan import FlowRuntime, prepare
from connector.project import Config, env_name
from connector.transport.ratelimit import TokenStore, account_key
from connector.render import Redactor
from connector.state.store import Busy, StateStore, open_store

#: The sandbox's own state file: wiped before every sandbox run, as the simulator starts fresh.
SANDBOX_STATE = ".connector/sandbox.db"

Progress = Callable[[str, int, int], None]


class SteppedClock:
    """A clock fixed at `start` that only the run's own waits move on (and that really
    waits when `real`): a recorded run and its replay see the same times."""

    def __init__(self, start: datetime, *, real: bool) -> None:
        self._now, self._real = start, real

    def now(self) -> datetime:
        return self._now

    def sleep(self, seconds: float) -> None:
        if self._real and seconds > 0:
            time.sleep(seconds)
        self._now += timedelta(seconds=max(0.0, seconds))


@dataclass(frozen=True)
class RunSettings:
    """What a command asks of a run, on top of each flow's own options in connector.yaml.

    None means "the flow's option, else the engine's default"."""

    since: str | None = None
    limit: int | None = None
    dry_run: bool = False
    poll_scale: float = 1.0
    partition: str = ""
    orders: tuple[str, ...] = ()  # --order: these orders now, the retry backoff lifted
    concurrency: int | None = None
    now: Callable[[], datetime] | None = None
    sleep: Callable[[float], None] | None = None
    progress: Progress | None = None


# --- flows and their settings -----------------------------------------------------------------


def select_flows(config: Config, flow: str | None) -> list[str]:
    """`--flow NAME` (checked, with a suggestion) or every flow of connector.yaml, sorted."""
    if flow is None:
        return sorted(config.flows)
    if flow not in config.flows:
        raise UsageError(f"no flow {flow!r}{did_you_mean(flow, config.flows)}")
    return [flow]


def missing_settings(runtime: FlowRuntime) -> list[str]:
    """The environment names of the flow's required settings that have no value."""
    return [
        env_name(name, setting)
        for name, system in runtime.systems.items()
        for setting, spec in system.settings.items()
        if spec.required and runtime.system_settings[name].get(setting) in (None, "", [])
    ]


def check_settings(runtimes: Sequence[FlowRuntime]) -> None:
    """Refuse to run while any flow lacks a required setting, naming every flow's at once
    (one run per missing flow is how a newcomer loses an afternoon)."""
    lines = [f"flow {runtime.flow.name}: missing settings: {', '.join(missing)}"
             for runtime in runtimes if (missing := missing_settings(runtime))]
    if lines:
        raise ConnectorError("\n".join(lines)
                             + "\n(set them in the environment or connector.yaml)")


def prepare_flows(config: Config, names: Sequence[str], environ: Mapping[str, str],
                  overrides: Mapping[str, Mapping[str, Any]] | None = None) -> list[FlowRuntime]:
    """The flows' runtimes, every required setting present (else one error naming all)."""
    runtimes = [prepare(config, name, environ, system_overrides=overrides or {})
                for name in names]
    check_settings(runtimes)
    return runtimes


def redactor(runtimes: Sequence[FlowRuntime]) -> Redactor:
    """One redactor over every flow's secrets (a transport is shared by the flows)."""
    redact = Redactor()
    for runtime in runtimes:
        redact = redact.extended(runtime.redact.secrets).with_headers(
            runtime.redact.headers).with_query_params(runtime.redact.query_params)
    logs.add_secrets(redact.secrets)  # the JSON log lines are masked with them too
    return redact


# --- the pieces of a run ----------------------------------------------------------------------


def new_transport(config: Config | None, redact: Callable[[str], str], *,
                  client: httpx.Client | None = None,
                  sleep: Callable[[float], None] | None = None,
                  store: TokenStore | None = None,
                  runtimes: Sequence[FlowRuntime] = (),
                  wall_clock: Callable[[], float] | None = None) -> Transport:
    """The HTTP transport of a run: the mappings' rate limits (none without a `config`),
    one limiter for all flows, secrets redacted from its errors. With the run's state
    `store`, the buckets are kept there and shared by every process using that store, per
    account (each system's `rate_limits_account`, rendered with the `runtimes`' settings)."""
    limits = ({name: dict(system.rate_limits) for name, system in config.systems.items()}
              if config is not None else {})
    waits: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
    shared: dict[str, Any] = {} if store is None else {
        "shared": store, "accounts": rate_accounts(runtimes)}
    if wall_clock is not None:
        shared["wall_clock"] = wall_clock
    return Transport(client if client is not None else new_client(),
                     limiter=RateLimiter(limits, **waits, **shared), redact=redact, **waits)


def rate_accounts(runtimes: Sequence[FlowRuntime]) -> dict[str, str]:
    """Each system's rate-limit account key: `<system>-<digest>` of its rendered
    `rate_limits_account` (the system's name alone when the mapping declares none)."""
    accounts: dict[str, str] = {}
    for runtime in runtimes:
        for name, system in runtime.systems.items():
            if system.rate_limits_account and name not in accounts:
                identity = templates.render(system.rate_limits_account,
                                            {"settings": runtime.system_settings[name]})
                accounts[name] = f"{name}-{account_key(name, identity)}"
    return accounts


def clients(runtime: FlowRuntime, transport: Transport) -> dict[str, SystemClient]:
    """The flow's systems' clients over the shared transport."""
    return {name: SystemClient(system, runtime.system_settings[name], transport, runtime.redact)
            for name, system in runtime.systems.items()}


def run_options(runtime: FlowRuntime, settings: RunSettings) -> RunOptions:
    """The engine's options for one flow: the command's settings over the flow's options."""
    options = runtime.options
    values: dict[str, Any] = {
        "since": settings.since, "limit": settings.limit, "dry_run": settings.dry_run,
        "partition": settings.partition, "poll_scale": settings.poll_scale,
        "concurrency": settings.concurrency or int(options.get("concurrency", 8)),
        "max_reevaluations": int(options.get("max_reevaluations", 3)),
        "settle_attempts": int(options.get("settle_attempts", 2)),
        "settle_seconds": float(options.get("settle_seconds", 2.0)),
        "lookback_hours": float(options.get("lookback_hours", 24)),
        "watch_hours": float(options.get("watch_hours", 48)),
        "retry": RetryAcrossRuns.from_options(options),
        "orders": settings.orders,
    }
    if settings.orders:
        # asked for by a person, now: a failed action is tried at once, not after its backoff
        values["retry"] = dataclasses.replace(values["retry"], backoff_seconds=0.0)
    for name in ("now", "sleep", "progress"):
        if getattr(settings, name) is not None:
            values[name] = getattr(settings, name)
    return RunOptions(**values)


def run_flow(runtime: FlowRuntime, transport: Transport, store: StateStore | None,
             settings: RunSettings) -> Summary:
    """Run one flow (partition) once. Raises `Busy` when another process runs it."""
    return FlowRun(runtime, clients(runtime, transport), store,
                   run_options(runtime, settings)).run()


def state_url(root: Path, config: Config, environ: Mapping[str, str], *,
              sandbox: bool = False) -> str:
    """The state store's URL: the sandbox's own file, else `CONNECTOR_STATE` or
    connector.yaml's `state` (a relative SQLite path is relative to the project)."""
    if sandbox:
        return f"sqlite:///{root / SANDBOX_STATE}"
    url = environ.get("CONNECTOR_STATE") or config.state
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        url = f"sqlite:///{root / url[len('sqlite:///'):]}"
    return url


def fresh_sandbox_state(root: Path) -> None:
    """Delete the sandbox's state file: each sandbox run starts fresh, like the simulator."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            (root / (SANDBOX_STATE + suffix)).unlink()


def open_run_store(url: str, read_only: bool,
                   now: Callable[[], datetime] | None = None) -> StateStore | None:
    """The run's store; None for a read-only run on a project that has none yet."""
    if read_only and url.startswith("sqlite:///"):
        location = url[len("sqlite:///"):]
        if location != ":memory:" and not Path(location).exists():
            return None  # plan on a fresh project: no cursor, nothing recorded yet
    # The store keeps the run's time (the sandbox's clock in tests), so retry backoff and
    # watch deadlines are measured on one clock.
    return open_store(url, now=now) if now is not None else open_store(url)


@contextlib.contextmanager
def sandbox(enabled: bool, latency: float = 0.0) -> Iterator[dict[str, dict[str, Any]]]:
    """The built-in simulator on loopback while the block runs: its systems' settings."""
    if not enabled:
        yield {}
        return
    from connector.sandbox import Sandbox

    with Sandbox(latency=latency) as simulator:
        yield simulator.settings()


@contextlib.contextmanager
def recording(path: Path | None, redact: Any, started_at: datetime,
              meta: Mapping[str, Any]) -> Iterator[None]:
    """`--record FILE`: the block's HTTP exchanges saved as a cassette (nothing without)."""
    if path is None:
        yield
        return
    from connector.transport.cassette import recorder

    with recorder(path, redact, started_at=started_at, meta=meta):
        yield


# --- a whole run ------------------------------------------------------------------------------


def run_flows(
    config: Config,
    names: Sequence[str],
    state: str,
    overrides: Mapping[str, Mapping[str, Any]],
    environ: Mapping[str, str],
    *,
    since: str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    record: Path | None = None,
    poll_scale: float = 1.0,
    now: Callable[[], datetime] | None = None,
    progress: Progress | None = None,
    orders: Sequence[str] = (),
) -> tuple[list[Summary], Redactor]:
    """Run flows in order against the configured systems (or `overrides`), on the store at
    `state`; the testable core of `apply` and `plan`."""
    runtimes = prepare_flows(config, names, environ, overrides)
    redact = redactor(runtimes)
    store = open_run_store(state, dry_run, now)
    transport = new_transport(config, redact, store=store, runtimes=runtimes)
    summaries: list[Summary] = []
    try:
        started = (now or (lambda: datetime.now(timezone.utc)))()
        sleep: Callable[[float], None] | None = None
        if record is not None and now is None:
            # One time for the whole recorded run, saved in the cassette, moved on only by
            # the run's own waits, so that its replay reproduces the windows, the polls of a
            # batch and any time rendered into a request.
            clock = SteppedClock(started, real=True)
            now, sleep = clock.now, clock.sleep
        settings = RunSettings(since=since, limit=limit, dry_run=dry_run,
                               poll_scale=poll_scale, now=now, progress=progress,
                               orders=tuple(orders), sleep=sleep)
        meta = {"flows": list(names), "mode": "plan" if dry_run else "apply", "since": since,
                "limit": limit, "poll_scale": poll_scale,
                **({"orders": list(orders)} if orders else {})}
        with recording(record, redact, started, meta), observe.bound(run=uuid.uuid4().hex[:12]):
            for runtime in runtimes:
                try:
                    summaries.append(run_flow(runtime, transport, store, settings))
                except Busy as exc:
                    # Another process runs this flow: it does the work; the other flows go on.
                    busy = Summary(runtime.flow.name)
                    busy.errors.append(str(exc))
                    summaries.append(busy)
    finally:
        transport.close()
        if store is not None:
            store.close()
    return summaries, redact


def environment(environ: Mapping[str, str] | None) -> dict[str, str]:
    """The settings' environment: the process's unless a caller (a test) gives one."""
    return dict(os.environ if environ is None else environ)
