"""`connector apply` and `connector plan`: the whole pipeline against the systems' APIs.

`plan` reads only (nothing is sent that changes anything, nothing is recorded); `apply` runs
the actions through the ledger. `--sandbox` starts the built-in simulator on loopback and
points every system at it, with a state file of its own (the simulator starts fresh each
time, so must the state that describes it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from connector.client import SystemClient
from connector.diagnostics import did_you_mean
from connector.engine import FlowRun, RunOptions, Summary
from connector.errors import ConnectorError, UsageError
from connector.execute import RetryAcrossRuns
from connector.http import RateLimiter, Transport, new_client
from connector.plan import FlowRuntime, prepare
from connector.project import Config, env_name, load_config, require
from connector.render import Redactor
from connector.state import Busy, StateStore, open_store

SANDBOX_STATE = ".connector/sandbox.db"


def _flows(config: Config, flow: str | None) -> list[str]:
    if flow is None:
        return sorted(config.flows)
    if flow not in config.flows:
        raise UsageError(f"no flow {flow!r}{did_you_mean(flow, config.flows)}")
    return [flow]


def _check_settings(runtime: FlowRuntime) -> None:
    missing = [
        env_name(name, setting)
        for name, system in runtime.systems.items()
        for setting, spec in system.settings.items()
        if spec.required and runtime.system_settings[name].get(setting) in (None, "", [])
    ]
    if missing:
        raise ConnectorError(f"flow {runtime.flow.name}: missing settings: {', '.join(missing)} "
                             "(set them in the environment or connector.yaml)")


@contextlib.contextmanager
def _sandbox(enabled: bool, latency: float = 0.0) -> Iterator[dict[str, dict[str, Any]]]:
    if not enabled:
        yield {}
        return
    from connector.sandbox import Sandbox

    with Sandbox(latency=latency) as sandbox:
        yield sandbox.settings()


@contextlib.contextmanager
def _recording(path: Path | None, redact: Any, started_at: datetime,
               meta: Mapping[str, Any]) -> Iterator[None]:
    if path is None:
        yield
        return
    from connector.record import recorder

    with recorder(path, redact, started_at=started_at, meta=meta):
        yield


def _store(url: str, read_only: bool, now: Callable[[], datetime] | None = None) -> StateStore | None:
    if read_only and url.startswith("sqlite:///"):
        location = url[len("sqlite:///"):]
        if location != ":memory:" and not Path(location).exists():
            return None  # plan on a fresh project: no cursor, nothing recorded yet
    # The store keeps the run's time (the sandbox's clock in tests), so retry backoff and
    # watch deadlines are measured on one clock.
    return open_store(url, now=now) if now is not None else open_store(url)


def run(
    root: Path,
    flow: str | None,
    since: str | None,
    limit: int | None,
    sandbox: bool,
    dry_run: bool,
    fmt: str,
    record: Path | None,
    out: TextIO,
    environ: Mapping[str, str] | None = None,
) -> int:
    env = dict(os.environ if environ is None else environ)
    config = require(load_config(root))
    names = _flows(config, flow)
    if sandbox:
        state_url = f"sqlite:///{root / SANDBOX_STATE}"
        if not dry_run:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    (root / (SANDBOX_STATE + suffix)).unlink()
    else:
        state_url = env.get("CONNECTOR_STATE") or config.state
        if state_url.startswith("sqlite:///") and not state_url.startswith("sqlite:////"):
            state_url = f"sqlite:///{root / state_url[len('sqlite:///'):]}"
    with _sandbox(sandbox) as overrides:
        summaries, redact = run_flows(config, names, state_url, overrides, env, since=since,
                                      limit=limit, dry_run=dry_run, record=record,
                                      poll_scale=0.01 if sandbox else 1.0)
    if dry_run:
        _print_plan(summaries, fmt, out, redact)
    else:
        _print_summary(summaries, out)
    return 1 if any(s.failed or s.unknown or s.errors for s in summaries) else 0


def run_flows(
    config: Config,
    names: Sequence[str],
    state_url: str,
    overrides: Mapping[str, Mapping[str, Any]],
    environ: Mapping[str, str],
    *,
    since: str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    record: Path | None = None,
    poll_scale: float = 1.0,
    now: Callable[[], datetime] | None = None,
) -> tuple[list[Summary], Redactor]:
    """Run flows in order against the configured systems (or `overrides`); the testable core."""
    runtimes = [prepare(config, name, environ, system_overrides=overrides) for name in names]
    for runtime in runtimes:
        _check_settings(runtime)
    redact = Redactor()
    for runtime in runtimes:
        redact = redact.extended(runtime.redact.secrets)
    limits = {name: dict(system.rate_limits) for name, system in config.systems.items()}
    store = _store(state_url, dry_run, now)
    transport = Transport(new_client(), limiter=RateLimiter(limits), redact=redact)
    summaries: list[Summary] = []
    try:
        started = (now or (lambda: datetime.now(timezone.utc)))()
        if record is not None and now is None:
            # One time for the whole recorded run, saved in the cassette, so that its replay
            # reproduces the windows and any time rendered into a request.
            now = lambda: started  # noqa: E731
        meta = {"flows": list(names), "mode": "plan" if dry_run else "apply", "since": since,
                "limit": limit}
        with _recording(record, redact, started, meta):
            for runtime in runtimes:
                try:
                    summaries.append(_run_flow(runtime, transport, store, since, limit, dry_run,
                                               poll_scale, now))
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


def _run_flow(runtime: FlowRuntime, transport: Transport, store: StateStore | None,
              since: str | None, limit: int | None, dry_run: bool, poll_scale: float,
              now: Callable[[], datetime] | None = None) -> Summary:
    clients = {
        name: SystemClient(system, runtime.system_settings[name], transport, runtime.redact)
        for name, system in runtime.systems.items()
    }
    options = runtime.options
    run_options = RunOptions(
        progress=_progress if sys.stderr.isatty() else RunOptions.progress,
        since=since, limit=limit, dry_run=dry_run,
        concurrency=int(options.get("concurrency", 8)),
        max_reevaluations=int(options.get("max_reevaluations", 3)),
        lookback_hours=float(options.get("lookback_hours", 24)),
        watch_hours=float(options.get("watch_hours", 48)),
        poll_scale=poll_scale,
        retry=RetryAcrossRuns.from_options(options),
    )
    if now is not None:
        run_options = dataclasses.replace(run_options, now=now)
    return FlowRun(runtime, clients, store, run_options).run()


def _progress(flow: str, done: int, total: int) -> None:
    """A one-line progress counter on a terminal (stderr, so piped output stays clean)."""
    width = 30
    filled = width * done // max(total, 1)
    end = "\n" if done >= total else ""
    sys.stderr.write(f"\r{flow}: [{'#' * filled}{'.' * (width - filled)}] {done}/{total} orders{end}")
    sys.stderr.flush()


def _print_summary(summaries: Sequence[Summary], out: TextIO) -> None:
    for s in summaries:
        span = f" ({s.window.after} → {s.window.before})" if s.window else ""
        print(f"{s.flow}: {s.orders} order(s){span}: {s.done} action(s) done, "
              f"{s.already} already done, {s.skipped} skipped, {s.failed} failed"
              + (f", {s.unknown} unknown outcome(s)" if s.unknown else "")
              + (f", {s.watched} order(s) watched" if s.watched else ""), file=out)
        for item in s.attention:
            print(f"  attention: {item}", file=out)
        for item in s.errors:
            print(f"  failed: {item}", file=out)


def _print_plan(summaries: Sequence[Summary], fmt: str, out: TextIO, redact: Any) -> None:
    rows: list[dict[str, Any]] = []
    for s in summaries:
        for order_id, item in s.planned:
            rows.append({
                "flow": s.flow, "order": order_id, "rule": item.rule.id, "action": item.name,
                "args": item.args, "runs": item.runnable,
                "skipped_because": list(item.reasons), "key": item.key,
            })
    if fmt == "json":
        print(redact(json.dumps(rows, indent=2, default=str)), file=out)
        return
    for s in summaries:
        print(f"{s.flow}: {s.orders} order(s)", file=out)
    for row in rows:
        reasons = row["skipped_because"]
        state = "would run" if row["runs"] else "skip: " + "; ".join(str(r) for r in reasons)
        print(redact(f"  {row['flow']} {row['order']}: {row['action']} "
                     f"{json.dumps(row['args'], default=str)} [{row['rule']}] {state}"), file=out)
    if not rows:
        print("nothing to do", file=out)
