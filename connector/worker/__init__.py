"""`connector worker`: one worker of a fleet sharing a PostgreSQL state store and job queue.

Work is split into partitions, flow × value of the setting the flow or its source mapping
names in `partition_by` (a list of marketplaces, say; one partition each; a source without
one is one partition, ""), and spread over the
workers by procrastinate, a PostgreSQL job queue: the same database holds the state and the
queue, so a fleet needs nothing but PostgreSQL. Why an existing engine rather than hand-made
leases: job locks, crash detection through worker heartbeats, periodic scheduling that many
workers can run at once without deferring a tick twice, and LISTEN/NOTIFY wake-ups are
exactly the hard parts of a lease scheme, and procrastinate has them tested and kept.

- A periodic job (`--every` seconds) queues one `run_partition` job per partition. Every
  worker runs the deferrer; the database keeps one job per tick.
- `run_partition` jobs carry `lock` = `queueing_lock` = the partition: one never runs twice at
  once across the fleet, and at most one more waits in the queue.
- The run itself also holds the state store's lock (`FlowRun.run`), which additionally keeps a
  `connector apply` on the same flow out, and dies with its holder.
- A worker that dies mid-job stops its heartbeat; the jobs it held are marked failed by the
  next scheduling round (or worker start), which frees their partition for the next job.
  The pending ledger entries it left are settled by that run, as after any crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from connector import runner, stopping
from connector.engine import flow_key
from connector.errors import ConnectorError, LeaseLost, PartitionFailed, UsageError
from connector.printable import printable
from connector.plan import FlowRuntime, prepare
from connector.project import Config, resolve_settings
from connector.validate import checked
from connector.worker.queue import (  # noqa: F401 - the fleet's queue, re-exported
    KEEP_FAILED_HOURS, QUEUE, RUN_TASK, SCHEDULE_TASK, STALLED_AFTER, Partition, Runner,
    _procrastinate, build_app, defer_all, drain, ensure_queue_schema, every_cron,
    reap_stalled,
)
from connector.worker.stop import Stopper
from connector.report import describe
from connector.state.store import Busy, StateStore

if TYPE_CHECKING:
    import procrastinate

#: Seconds a worker takes at most to stop after SIGTERM or SIGINT (`--stop-timeout`).
STOP_TIMEOUT = 30.0


def identity() -> str:
    """This worker among the fleet's, in its output: its machine and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


#: `line_prefix()` as it begins a line, for tools that read a worker's output.
PREFIX = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \S+:\d+ ", re.MULTILINE)


def bare(text: str) -> str:
    """A worker's output without the time and identity that begin its lines."""
    return PREFIX.sub("", text)


def line_prefix() -> str:
    """What every output line of a worker begins with, so that the lines of a fleet's
    workers can be merged and read: the time (UTC, to the second) and `identity()`."""
    return f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {identity()} "


class _Log(logging.Formatter):
    """procrastinate's warnings and errors, on stderr: a partition's failure without a
    traceback (its message is already on stdout), anything else in full (a bug)."""

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        if ei and ei[0] is not None and issubclass(ei[0], PartitionFailed):
            return ""
        return super().formatException(ei)


def _log_to_stderr() -> None:
    logger = logging.getLogger("procrastinate")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        formatter = _Log(f"%(asctime)s {identity()} %(levelname)s %(name)s: %(message)s",
                         "%Y-%m-%dT%H:%M:%SZ")
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
        logger.propagate = False


def state_url(config: Config, environ: Mapping[str, str]) -> str:
    """The state URL (`CONNECTOR_STATE` wins over connector.yaml), which must be PostgreSQL."""
    url = environ.get("CONNECTOR_STATE") or config.state
    scheme = url.partition("://")[0].lower()
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        return "postgresql" + url[len(scheme):]
    raise UsageError("connector worker needs a PostgreSQL state store shared by the workers "
                     "(it holds the job queue too): set CONNECTOR_STATE=postgresql://user:"
                     "password@host/database; an SQLite file serves one machine only (use "
                     "connector apply there)")


def partitions(config: Config, environ: Mapping[str, str]) -> list[Partition]:
    """Every (flow, partition) of connector.yaml, in a stable order."""
    found: list[Partition] = []
    for name in sorted(config.flows):
        source = config.flows[name].source
        system = config.systems.get(source)
        values: list[str] = []
        setting = config.flows[name].partition_setting(system)
        if system is not None and setting in system.settings:
            settings = resolve_settings(system.settings, config.system_settings.get(source, {}),
                                        source, environ)
            value = settings.get(setting) or []
            items = value.split(",") if isinstance(value, str) else list(value)
            values = [str(v).strip() for v in items if str(v).strip()]
        found.extend((name, value) for value in dict.fromkeys(values or [""]))
    return found


class Fleet:
    """What one worker process's jobs share: configuration, the state store and one HTTP
    transport (so its rate limits hold across the partitions this process runs)."""

    def __init__(self, config: Config, environ: Mapping[str, str], store: StateStore,
                 out: TextIO) -> None:
        self.config = config
        self.env = dict(environ)
        self.store = store
        self.out = out
        self.failures = 0
        self._lock = threading.Lock()
        self._runtimes: dict[Partition, FlowRuntime] = {}
        # Fail now, naming every flow's missing settings, not in every job.
        runtimes = [self._runtime(flow, partition) for flow, partition in partitions(config, self.env)]
        runner.check_settings(runtimes)
        self.redact = runner.redactor(runtimes)  # also masks the JSON log lines
        # The store keeps the rate-limit buckets: every worker (and apply) shares them.
        # Its waits end at a stop's deadline (connector.stopping).
        self.transport = runner.new_transport(config, self.redact, store=store,
                                              runtimes=runtimes, sleep=stopping.sleep)
        self.running = 0  # partitions running now: a stop waits for none

    def _runtime(self, flow: str, partition: str) -> FlowRuntime:
        key = (flow, partition)
        with self._lock:
            if key not in self._runtimes:
                if flow not in self.config.flows:
                    raise ConnectorError(f"no flow {flow!r} in this worker's connector.yaml")
                source = self.config.flows[flow].source
                system = self.config.systems.get(source)
                setting = self.config.flows[flow].partition_setting(system)
                narrowed = ({setting: [partition]} if partition and system is not None
                            and setting in system.settings else {})
                self._runtimes[key] = prepare(self.config, flow, self.env,
                                              system_overrides={source: narrowed})
            return self._runtimes[key]

    def run_partition(self, flow: str, partition: str) -> str:
        """Run one partition once; the job's result line. Busy (another process has it) is
        not a failure: the holder does the work."""
        name = flow_key(flow, partition)
        if stopping.requested():  # fetched while stopping: the next tick queues it again
            return f"{name}: not started: the worker is stopping"  # the job's result only
        with self._lock:
            self.running += 1
        try:
            runtime = self._runtime(flow, partition)
            summary = runner.run_flow(runtime, self.transport, self.store,
                                      runner.RunSettings(partition=partition,
                                                         sleep=stopping.sleep))
        except LeaseLost as exc:  # taken over, or the stop's deadline: the next run goes on
            return self._say(f"{name}: stopped: {exc}")
        except Busy as exc:
            return self._say(f"{name}: skipped: {exc}")
        except ConnectorError as exc:
            with self._lock:
                self.failures += 1
            message = self.redact(str(exc))
            self._say(f"{name}: error: {message}")
            raise PartitionFailed(f"{name}: {message}") from None
        finally:
            with self._lock:
                self.running -= 1
        if summary.failed or summary.unknown or summary.errors:
            with self._lock:
                self.failures += 1
        return self._say(describe(name, summary))

    def _say(self, text: str) -> str:
        """Print `text`, each line stamped (`line_prefix`); the first line, bare, is the
        job's result."""
        lines = printable(text, lines=True).splitlines() or [""]
        prefix = line_prefix()
        with self._lock:
            print("\n".join(prefix + line for line in lines), file=self.out, flush=True)
        return text.splitlines()[0]

    def close(self) -> None:
        self.transport.close()


async def _serve(app: procrastinate.App, parts: Sequence[Partition], *, concurrency: int,
                 once: bool, trigger: Any = None, stopper: Stopper | None = None) -> None:
    """Run until done (`once`) or until SIGINT/SIGTERM (`stopper`: running partitions stop
    at their next order, within its timeout; without one, a signal cancels at once)."""
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if main is not None and stopper is not None:
        stopper.install(loop, main)
    elif main is not None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, main.cancel)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread, or no signals here: the caller stops us
    try:
        async with app.open_async():
            if trigger is not None:  # notified partitions run now, not at the next tick
                trigger.attach(loop, lambda notified: defer_all(app, notified))
            if once:
                await drain(app, parts, concurrency=concurrency)
            else:
                await reap_stalled(app)
                await app.run_worker_async(queues=[QUEUE], concurrency=concurrency,
                                           install_signal_handlers=False,
                                           delete_jobs="successful")
    except asyncio.CancelledError:
        pass  # asked to stop: running jobs were let finish


def run(root: Path, concurrency: int, every: int, once: bool, out: TextIO,
        environ: Mapping[str, str] | None = None, *, metrics_port: int | None = None,
        metrics_address: str = "127.0.0.1", stop_timeout: float = STOP_TIMEOUT) -> int:
    """`connector worker`. Exit 0 when every partition run succeeded, 1 when one failed
    (its failed actions are recorded and retried by later runs), 2 on a configuration error.
    With `metrics_port`, Prometheus metrics of the runs are served there while it works;
    after SIGTERM or SIGINT it exits within `stop_timeout` seconds (`connector.worker.stop`)."""
    env = dict(os.environ if environ is None else environ)
    config = checked(root)
    url = state_url(config, env)
    every_cron(every)  # refuse a bad --every before connecting
    _procrastinate()
    _log_to_stderr()
    with contextlib.ExitStack() as stack:
        served = ""
        if metrics_port is not None:
            from connector.observe import metrics

            _, port = stack.enter_context(metrics.serving(metrics_port, metrics_address))
            served = f"worker: metrics on http://{metrics_address}:{port}/metrics"
        return _work(url, config, env, concurrency, every, once, out, served, stop_timeout)


def _work(url: str, config: Config, env: Mapping[str, str], concurrency: int, every: int,
          once: bool, out: TextIO, served: str, stop_timeout: float = STOP_TIMEOUT) -> int:
    from connector.state.postgres import PostgresStore

    with PostgresStore(url, pool_size=max(4, 4 * concurrency)) as store:
        ensure_queue_schema(url)
        fleet = Fleet(config, env, store, out)
        try:
            parts = partitions(config, env)
            app = build_app(url, fleet.run_partition, lambda: partitions(config, env),
                            every=None if once else every, pool_size=concurrency + 2)
            fleet._say(f"worker: {len(parts)} partition(s), concurrency {concurrency}"
                       + (", until the queue is empty" if once
                          else f", scheduling every {every} s"))
            if served:
                fleet._say(served)
            with _notifications(config, env, store, parts, fleet, once) as trigger:
                stopper = Stopper(lambda: fleet.running, fleet._say, stop_timeout)
                asyncio.run(_serve(app, parts, concurrency=concurrency, once=once,
                                   trigger=trigger, stopper=stopper))
        finally:
            fleet.close()
    return 1 if once and fleet.failures else 0


@contextlib.contextmanager
def _notifications(config: Config, env: Mapping[str, str], store: StateStore,
                   parts: Sequence[Partition], fleet: Fleet,
                   once: bool) -> Iterator[Any]:
    """Sources with notifications on (`connector.notify`): their messages are turned into
    queued orders, which each partition's run reads beside its listing. `--once` empties
    the queues first; otherwise a background receiver long-polls them while the worker runs
    and starts the notified partitions' runs through the trigger it yields."""
    from connector.notify import receive

    found = receive.sources(config, env, parts)
    if not found:
        yield None
        return
    queues = receive.open_queues(found, env)
    for source in found:
        fleet._say(f"worker: notifications of {source.system} from {source.queue_url}")
    if once:
        received = receive.drain(queues, store, fleet._say)
        fleet._say(f"worker: {received} notification(s) received")
        yield None
        return
    trigger = receive.Trigger(fleet._say)
    receiver = receive.Receiver(queues, store, fleet._say, trigger=trigger)
    receiver.start()
    try:
        yield trigger
    finally:
        receiver.stop()
