"""The job queue of a worker fleet (procrastinate on the state store's PostgreSQL): the
tasks, queueing every partition (one job each at most waiting), freeing the jobs of dead
workers, and `--once`'s drain. See `connector.worker` for how a fleet shares the work."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from connector.engine import flow_key
from connector.errors import ConnectorError, UsageError
from connector.state.store import _hide_password

if TYPE_CHECKING:
    import procrastinate

QUEUE = "connector"
RUN_TASK = "connector.run_partition"
SCHEDULE_TASK = "connector.schedule"
# A worker whose heartbeat (every 10 s) is older than this is dead: its jobs are freed.
STALLED_AFTER = 30.0
KEEP_FAILED_HOURS = 24 * 7

Partition = tuple[str, str]  # (flow, partition); "" is the whole flow
Runner = Callable[[str, str], str]


def _procrastinate() -> Any:
    try:
        import procrastinate
    except ImportError:
        raise ConnectorError("connector worker needs procrastinate and psycopg: "
                             "pip install 'connector[postgres]'") from None
    return procrastinate


def every_cron(seconds: int) -> str:
    """`--every` as a cron line (seconds in croniter's optional sixth field)."""
    if seconds < 60 and 60 % seconds == 0:
        return f"* * * * * */{seconds}"
    if seconds % 60 == 0 and seconds < 3600 and 3600 % seconds == 0:
        return f"*/{seconds // 60} * * * *"
    if seconds % 3600 == 0 and 86400 % seconds == 0:
        return f"0 */{seconds // 3600} * * *"
    raise UsageError(f"--every {seconds}: use a number of seconds that divides a minute, an "
                     "hour or a day evenly (e.g. 10, 30, 60, 300, 900, 3600)")


def build_app(url: str, runner: Runner, parts: Callable[[], Sequence[Partition]], *,
              every: int | None = None, stalled_after: float = STALLED_AFTER,
              pool_size: int = 4) -> procrastinate.App:
    """The procrastinate app on `url`: `run_partition` runs `runner(flow, partition)`; the
    scheduling task queues every partition of `parts()` (periodic when `every` is given).
    The scheduling task is registered even without `every`, so that a `--once` worker that
    fetches one queued by the fleet runs it rather than failing it as unknown."""
    pc = _procrastinate()
    app = pc.App(connector=pc.PsycopgConnector(conninfo=url, min_size=1,
                                               max_size=max(2, pool_size)))

    @app.task(name=RUN_TASK, queue=QUEUE)
    def run_partition(flow: str, partition: str) -> str:
        return runner(flow, partition)

    async def schedule(timestamp: int) -> int:
        del timestamp  # the tick this job is for: procrastinate's key against double defers
        await reap_stalled(app, stalled_after)
        # Successful jobs are deleted when they end; failed ones are kept a week to look at.
        await app.job_manager.delete_old_jobs(nb_hours=KEEP_FAILED_HOURS, queue=QUEUE,
                                              include_failed=True, include_aborted=True)
        return await defer_all(app, parts())

    task = app.task(name=SCHEDULE_TASK, queue=QUEUE, queueing_lock=SCHEDULE_TASK)(schedule)
    if every is not None:
        app.periodic(cron=every_cron(every), periodic_id="partitions")(task)
    return app


async def defer_all(app: procrastinate.App, parts: Sequence[Partition]) -> int:
    """Queue one job per partition, unless one is already waiting; how many were queued."""
    pc = _procrastinate()
    queued = 0
    for flow, partition in parts:
        lock = f"connector:{flow_key(flow, partition)}"
        try:
            await app.configure_task(RUN_TASK, lock=lock, queueing_lock=lock).defer_async(
                flow=flow, partition=partition)
            queued += 1
        except pc.exceptions.AlreadyEnqueued:
            pass  # one is waiting already: it will see everything this one would
    return queued


async def reap_stalled(app: procrastinate.App, stalled_after: float = STALLED_AFTER) -> int:
    """Mark failed the running jobs of workers that stopped sending heartbeats (killed,
    machine lost), which frees their partitions' locks; the next job runs them again."""
    from procrastinate.jobs import Status

    stalled = list(await app.job_manager.get_stalled_jobs(
        queue=QUEUE, seconds_since_heartbeat=stalled_after))
    for job in stalled:
        await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
    return len(stalled)


async def drain(app: procrastinate.App, parts: Sequence[Partition], *, concurrency: int,
                stalled_after: float = STALLED_AFTER, pause: float = 0.5) -> None:
    """`--once`: queue every partition, process jobs until none of ours waits, return.

    A worker told not to wait stops as soon as no job can be fetched, which includes a job
    whose partition another worker is running: so go round until none is left waiting."""
    await reap_stalled(app, stalled_after)
    await defer_all(app, parts)
    while True:
        await app.run_worker_async(queues=[QUEUE], concurrency=concurrency, wait=False,
                                   listen_notify=False, install_signal_handlers=False,
                                   delete_jobs="successful")
        if not list(await app.job_manager.list_jobs_async(queue=QUEUE, task=RUN_TASK,
                                                          status="todo")):
            return
        await asyncio.sleep(pause)
        await reap_stalled(app, stalled_after)


def ensure_queue_schema(url: str) -> None:
    """Install procrastinate's tables unless present, under an advisory lock so that workers
    starting together do not race (its own `apply_schema` is not idempotent)."""
    import psycopg
    from procrastinate.schema import SchemaManager

    try:
        with psycopg.connect(url, connect_timeout=15) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('connector:queue-schema'))")
            row = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
            if row is None or row[0] is None:
                conn.execute(SchemaManager.get_schema().encode())
    except psycopg.Error as exc:
        lines = str(exc).strip().splitlines()
        raise ConnectorError(f"cannot prepare the job queue in {_hide_password(url)}: "
                             f"{lines[0] if lines else type(exc).__name__}") from exc
