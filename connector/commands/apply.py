"""`connector apply` and `connector plan`: the whole pipeline against the systems' APIs.

`plan` reads only (nothing is sent that changes anything, nothing is recorded); `apply` runs
the actions through the ledger. `--sandbox` starts the built-in simulator on loopback and
points every system at it, with a state file of its own (the simulator starts fresh each
time, so must the state that describes it). The run itself is built by `connector.runner`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from connector import report, runner
from connector.observe import logs, progress
from connector.errors import UsageError

from connector.project import Config
from connector.validate import checked


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
    verbose: bool = False,
    orders: Sequence[str] = (),
) -> int:
    if orders and (since is not None or limit is not None):
        raise UsageError("--order reads the orders it names: it takes no --since or --limit")
    env = runner.environment(environ)
    config = checked(root)
    names = runner.select_flows(config, flow)
    state_url = runner.state_url(root, config, env, sandbox=sandbox)
    if sandbox:
        # plan too: an earlier sandbox run's state would describe a simulator that is gone
        runner.fresh_sandbox_state(root)
    on_terminal = sys.stderr.isatty() and not logs.enabled()
    stop_saying_waits = progress.start() if on_terminal else (lambda: None)
    try:
        with runner.sandbox(sandbox) as overrides:
            if sandbox:
                names = _served(config, names, overrides, out)
            summaries, redact = runner.run_flows(
                config, names, state_url, overrides, env, since=since, limit=limit,
                dry_run=dry_run, record=record, poll_scale=0.01 if sandbox else 1.0,
                progress=_progress if on_terminal and not orders else None, orders=orders)
    finally:
        stop_saying_waits()
    if dry_run:
        report.print_plan(summaries, fmt, out, redact, verbose)
    else:
        report.print_summary(summaries, out, verbose)
    return 1 if any(s.failed or s.unknown or s.errors for s in summaries) else 0


def _served(config: Config, names: list[str], served: Mapping[str, object],
            out: TextIO) -> list[str]:
    """The flows whose two systems the sandbox simulates; each other flow is named as
    skipped (a project's own system has no simulator), and the run goes on without it."""
    kept = []
    for name in names:
        flow = config.flows[name]
        missing = [system for system in (flow.source, flow.target) if system not in served]
        if missing:
            print(f"{name}: skipped: the sandbox does not simulate {', '.join(missing)}", file=out)
        else:
            kept.append(name)
    if not kept:
        raise UsageError("the sandbox simulates none of the flows' systems (it simulates "
                         f"{', '.join(sorted(served))})")
    return kept


def _progress(flow: str, done: int, total: int) -> None:
    """A one-line progress counter on a terminal (stderr, so piped output stays clean)."""
    width = 30
    filled = width * done // max(total, 1)
    end = "\n" if done >= total else ""
    sys.stderr.write(f"\r{flow}: [{'#' * filled}{'.' * (width - filled)}] {done}/{total} orders{end}")
    sys.stderr.flush()
