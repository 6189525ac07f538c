"""`connector worker`: partitions, the queue on PostgreSQL, exclusion across workers, crashes.

The PostgreSQL cases need CONNECTOR_TEST_POSTGRES (see postgres_helpers.py); each gets a
schema of its own, holding both the state tables and procrastinate's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from postgres_helpers import pg_url, sql  # noqa: F401 (pg_url: a fixture)

from connector.errors import UsageError
from connector.project import env_name, load_config, require
from connector.state.store import open_store

REPO = Path(__file__).resolve().parent.parent
MARKETPLACES = "ATVPDKIKX0DER,A2EUQ1WTGCTBG2"
PARTITIONS = [
    ("adobe-commerce-to-amazon", ""), ("adobe-commerce-to-walmart", ""),
    ("amazon-to-adobe-commerce", "ATVPDKIKX0DER"), ("amazon-to-adobe-commerce", "A2EUQ1WTGCTBG2"),
    ("amazon-to-vtex", "ATVPDKIKX0DER"), ("amazon-to-vtex", "A2EUQ1WTGCTBG2"),
    ("walmart-to-adobe-commerce", ""), ("walmart-to-vtex", ""),
]


def settings_env() -> dict[str, str]:
    """Every required setting, pointing at nothing (for tests that never reach a system)."""
    return {"CONNECTOR_AMAZON_CLIENT_ID": "id", "CONNECTOR_AMAZON_CLIENT_SECRET": "secret-1",
            "CONNECTOR_AMAZON_REFRESH_TOKEN": "refresh-1", "CONNECTOR_VTEX_ACCOUNT": "acme",
            "CONNECTOR_VTEX_APP_KEY": "key", "CONNECTOR_VTEX_APP_TOKEN": "token-1",
            "CONNECTOR_ADOBE_COMMERCE_BASE_URL": "http://127.0.0.1:1/rest/default",
            "CONNECTOR_ADOBE_COMMERCE_TOKEN": "token-2",
            "CONNECTOR_AMAZON_MARKETPLACE_IDS": MARKETPLACES,
            "CONNECTOR_AMAZON_BASE_URL": "http://127.0.0.1:1/amazon",
            "CONNECTOR_AMAZON_TOKEN_URL": "http://127.0.0.1:1/token",
            "CONNECTOR_VTEX_BASE_URL": "http://127.0.0.1:1/vtex",
            "CONNECTOR_WALMART_CLIENT_ID": "wid", "CONNECTOR_WALMART_CLIENT_SECRET": "secret-2",
            "CONNECTOR_WALMART_BASE_URL": "http://127.0.0.1:1/walmart"}


# --- without PostgreSQL ---------------------------------------------------------------------


def test_partitions_are_flow_by_marketplace() -> None:
    from connector.worker import partitions

    config = require(load_config(REPO))
    assert partitions(config, {"CONNECTOR_AMAZON_MARKETPLACE_IDS": MARKETPLACES}) == PARTITIONS
    # connector.yaml's own list: one marketplace
    assert ("amazon-to-vtex", "ATVPDKIKX0DER") in partitions(config, {})


@pytest.mark.parametrize(("seconds", "cron"), [
    (1, "* * * * * */1"), (15, "* * * * * */15"), (60, "*/1 * * * *"), (300, "*/5 * * * *"),
    (3600, "0 */1 * * *"), (21600, "0 */6 * * *"),
])
def test_every_becomes_a_cron_step(seconds: int, cron: str) -> None:
    from connector.worker import every_cron

    assert every_cron(seconds) == cron


@pytest.mark.parametrize("seconds", [7, 45, 90, 7200 + 60])
def test_every_that_does_not_divide_evenly_is_refused(seconds: int) -> None:
    from connector.worker import every_cron

    with pytest.raises(UsageError, match="divides a minute, an hour or a day"):
        every_cron(seconds)


def test_worker_refuses_sqlite(tmp_path: Path) -> None:
    from connector import worker

    env = {**settings_env(), "CONNECTOR_STATE": f"sqlite:///{tmp_path}/state.db"}
    with pytest.raises(UsageError, match="needs a PostgreSQL state store"):
        worker.run(REPO, 1, 60, True, StringIO(), environ=env)


def test_a_busy_partition_is_skipped_and_narrowed(tmp_path: Path) -> None:
    """A partition whose flow another process runs (an `apply`) is skipped, not failed; its
    run sees only its own marketplace."""
    from connector.worker import Fleet

    url = f"sqlite:///{tmp_path}/state.db"
    config = require(load_config(REPO))
    out = StringIO()
    with open_store(url) as store, open_store(url) as other:
        fleet = Fleet(config, settings_env(), store, out)
        try:
            runtime = fleet._runtime("amazon-to-vtex", "A2EUQ1WTGCTBG2")
            assert runtime.system_settings["amazon"]["marketplace_ids"] == ["A2EUQ1WTGCTBG2"]
            with other.lock("amazon-to-vtex"):
                line = fleet.run_partition("amazon-to-vtex", "A2EUQ1WTGCTBG2")
        finally:
            fleet.close()
    assert line.startswith("amazon-to-vtex@A2EUQ1WTGCTBG2: skipped: flow amazon-to-vtex is "
                           "already running in another process (pid ")
    assert fleet.failures == 0


# --- with PostgreSQL ------------------------------------------------------------------------


def sandbox_env(sandbox: Any) -> dict[str, str]:
    """The settings that point every system at the sandbox, as environment variables."""
    return {env_name(system, name): str(value)
            for system, values in sandbox.settings().items() for name, value in values.items()}


def worker_command(url: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    return subprocess.run(
        [sys.executable, "-m", "connector", "worker", "--project", str(REPO), *args],
        env={**base, **env, "CONNECTOR_STATE": url}, capture_output=True, text=True,
        timeout=180, check=False)


def test_once_runs_every_partition_once_against_the_sandbox(pg_url: str) -> None:
    from connector.sandbox import Sandbox

    with Sandbox() as sandbox:
        sandbox.amazon.feeds_api.polls_before_done = 0  # no 30 s poll interval in a test
        env = sandbox_env(sandbox)
        env["CONNECTOR_AMAZON_MARKETPLACE_IDS"] = MARKETPLACES
        first = worker_command(pg_url, env, "--once", "--concurrency", "3")
        again = worker_command(pg_url, env, "--once")
    assert first.returncode == 0, first.stdout + first.stderr
    from connector.worker import PREFIX, bare

    assert all(PREFIX.match(line) for line in first.stdout.splitlines())  # time and identity
    lines = bare(first.stdout).splitlines()
    assert lines[0] == "worker: 8 partition(s), concurrency 3, until the queue is empty"
    ran = sorted(line.split(":")[0] for line in lines[1:] if not line.startswith("  "))
    assert ran == sorted(f"{f}@{p}" if p else f for f, p in PARTITIONS)
    acted = re.search(r"^amazon-to-vtex@ATVPDKIKX0DER: \d+ order\(s\)( \([^)]*\))?: (\d+) "
                      r"action\(s\) done",
                      bare(first.stdout), re.MULTILINE)
    assert acted and int(acted.group(2)) > 0  # the seeded scenarios call for some
    with open_store(pg_url) as store:
        for flow, partition in PARTITIONS:
            assert store.get_cursor(f"{flow}@{partition}" if partition else flow) is not None
        assert store.pending_entries("amazon-to-vtex") == []
    assert again.returncode == 0, again.stdout + again.stderr
    assert " 0 action(s) done" in again.stdout and " 1 action(s) done" not in again.stdout
    assert sql(pg_url, "SELECT status, count(*) FROM procrastinate_jobs GROUP BY status "
                       "HAVING status IN ('todo', 'doing')") == []


def test_once_exits_1_when_a_partition_fails_without_showing_secrets(pg_url: str) -> None:
    from connector.sandbox import Sandbox

    # the sandbox refuses these secrets at once (401), where an unreachable host would be
    # retried with backoff for seconds per partition
    secrets = {name: value for name, value in settings_env().items()
               if value.startswith(("secret-", "refresh-", "token-"))}
    with Sandbox() as sandbox:
        env = {**sandbox_env(sandbox), **secrets, "CONNECTOR_AMAZON_MARKETPLACE_IDS": MARKETPLACES}
        result = worker_command(pg_url, env, "--once", "--concurrency", "5")
    assert result.returncode == 1, result.stdout + result.stderr
    from connector.worker import bare

    errors = [line for line in bare(result.stdout).splitlines() if ": error: " in line]
    assert {line.split(":")[0] for line in errors} >= {"amazon-to-vtex@ATVPDKIKX0DER",
                                                      "amazon-to-vtex@A2EUQ1WTGCTBG2"}
    for secret in ("secret-1", "secret-2", "refresh-1", "token-1", "token-2"):
        assert secret not in result.stdout + result.stderr


# A worker process with a runner that records each run's start and end in a table instead of
# running a flow: what the queue guarantees, measured from outside.
RECORDING_WORKER = textwrap.dedent("""
    import asyncio, os, sys, time
    import psycopg
    from connector.worker import build_app, drain, ensure_queue_schema

    url, rounds, hold, parts = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
    parts = [(p, "") for p in parts]

    def runner(flow, partition):
        start = time.time()
        if flow == "forever":
            print("running", flush=True)
        time.sleep(hold)
        with psycopg.connect(url) as conn:
            conn.execute("INSERT INTO runs VALUES (%s, %s, %s, %s)",
                         (flow, os.getpid(), start, time.time()))
        return "ok"

    async def main():
        app = build_app(url, runner, lambda: parts)
        async with app.open_async():
            for _ in range(rounds):
                await drain(app, parts, concurrency=2, pause=0.05)

    ensure_queue_schema(url)
    asyncio.run(main())
""")


def recording_worker(url: str, rounds: int, hold: float, parts: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", RECORDING_WORKER, url, str(rounds), str(hold),
                             *parts], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def runs(url: str) -> list[tuple[Any, ...]]:
    return sql(url, "SELECT flow, pid, started, ended FROM runs ORDER BY started")


def test_two_workers_never_run_one_partition_at_once(pg_url: str) -> None:
    from connector.worker import ensure_queue_schema

    sql(pg_url, "CREATE TABLE runs (flow TEXT, pid INTEGER, started FLOAT8, ended FLOAT8)")
    ensure_queue_schema(pg_url)
    parts = [f"p{i}" for i in range(6)]  # more than one worker's concurrency (2)
    workers = [recording_worker(pg_url, 3, 0.3, parts) for _ in range(2)]
    for proc in workers:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    recorded = runs(pg_url)
    assert {flow for flow, *_ in recorded} == set(parts)
    assert {pid for _, pid, *_ in recorded} == {proc.pid for proc in workers}  # both worked
    for part in parts:
        spans = [(start, end) for flow, _, start, end in recorded if flow == part]
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert end <= start, f"{part} ran twice at once: {spans}"


def test_a_killed_workers_partition_runs_again(pg_url: str) -> None:
    """SIGKILL a worker in the middle of a partition: its job stays `doing` and holds the
    partition's lock until the worker's heartbeat is found stale; then the job is failed and
    the next job of that partition runs."""
    import asyncio

    from connector.worker import build_app, defer_all, drain, ensure_queue_schema, reap_stalled

    sql(pg_url, "CREATE TABLE runs (flow TEXT, pid INTEGER, started FLOAT8, ended FLOAT8)")
    ensure_queue_schema(pg_url)
    doomed = recording_worker(pg_url, 1, 120, ["forever"])
    try:
        assert doomed.stdout is not None and doomed.stdout.readline() == "running\n"
    finally:
        doomed.kill()
        doomed.communicate()
    done: list[str] = []
    app = build_app(pg_url, lambda flow, partition: done.append(flow) or "ok",
                    lambda: [("forever", "")])

    async def pick_up() -> tuple[int, int]:
        async with app.open_async():
            blocked = await defer_all(app, [("forever", "")])  # queued behind the dead job
            await app.run_worker_async(queues=["connector"], wait=False,
                                       install_signal_handlers=False, listen_notify=False)
            still_blocked = list(done)
            await asyncio.sleep(1.0)  # the dead worker's last heartbeat is now over 0.5 s old
            reaped = await reap_stalled(app, stalled_after=0.5)
            await drain(app, [("forever", "")], concurrency=1)
            return blocked + len(still_blocked), reaped

    blocked, reaped = asyncio.run(pick_up())
    assert blocked == 1  # queued, but not run while the dead worker's job held the lock
    assert reaped == 1 and done == ["forever"]
    assert sql(pg_url, "SELECT status FROM procrastinate_jobs WHERE status = 'failed'") == [
        ("failed",)]


def test_periodic_scheduling_queues_every_partition_each_tick(pg_url: str) -> None:
    import asyncio
    import contextlib
    import threading

    from connector.worker import build_app, ensure_queue_schema

    ensure_queue_schema(pg_url)
    done: list[str] = []
    lock = threading.Lock()

    def runner(flow: str, partition: str) -> str:
        with lock:
            done.append(flow)
        return "ok"

    app = build_app(pg_url, runner, lambda: [("a", ""), ("b", "")], every=1)

    async def serve_a_while() -> None:
        async with app.open_async():
            worker = asyncio.create_task(app.run_worker_async(
                queues=["connector"], concurrency=2, install_signal_handlers=False,
                delete_jobs="successful"))
            # until two ticks have run both partitions (about 2-3 s), bounded: a loaded
            # machine may be slow to tick, and that is not what this test is about
            deadline = asyncio.get_running_loop().time() + 20.0
            while asyncio.get_running_loop().time() < deadline:
                with lock:
                    if done.count("a") >= 2 and done.count("b") >= 2:
                        break
                await asyncio.sleep(0.1)
            worker.cancel()  # a graceful stop: running jobs finish
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    asyncio.run(serve_a_while())
    assert done.count("a") >= 2 and done.count("b") >= 2
    assert sql(pg_url, "SELECT count(*) FROM procrastinate_jobs WHERE status IN "
                       "('todo', 'doing') AND task_name = 'connector.run_partition'") in (
        [(0,)], [(1,)], [(2,)])  # at most the last tick's, queued as the worker stopped


def test_sigterm_stops_a_worker_after_its_running_partitions(pg_url: str) -> None:
    import signal

    from connector.sandbox import Sandbox

    with Sandbox() as sandbox:
        sandbox.amazon.feeds_api.polls_before_done = 0
        env = sandbox_env(sandbox)
        base = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "connector", "worker", "--project", str(REPO), "--every", "1"],
            env={**base, **env, "CONNECTOR_STATE": pg_url}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            from connector.worker import bare

            assert bare(proc.stdout.readline()).startswith("worker: 6 partition(s), concurrency 2, "
                                                     "scheduling every 1 s")
            seen: set[str] = set()
            while len(seen) < 6:  # a run's summary line (attention lines are indented)
                line = proc.stdout.readline()
                assert line, "the worker stopped early"
                if not bare(line).startswith(" "):
                    seen.add(bare(line).split(":")[0])
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert seen == {"adobe-commerce-to-amazon", "amazon-to-adobe-commerce@ATVPDKIKX0DER",
                    "amazon-to-vtex@ATVPDKIKX0DER", "adobe-commerce-to-walmart",
                    "walmart-to-adobe-commerce", "walmart-to-vtex"}


def test_every_line_a_worker_prints_carries_the_time_and_the_worker(tmp_path: Path) -> None:
    """The lines of a fleet's workers, merged in one log, still say when and which worker:
    each line (a summary's indented ones too) begins with the UTC time and host:pid."""
    import socket

    from connector.worker import PREFIX, Fleet, bare

    url = f"sqlite:///{tmp_path}/state.db"
    out = StringIO()
    with open_store(url) as store:
        fleet = Fleet(require(load_config(REPO)), settings_env(), store, out)
        try:
            result = fleet._say("amazon-to-vtex: 3 order(s)\n  attention: one\n  attention: two")
        finally:
            fleet.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and all(PREFIX.match(line) for line in lines), lines
    assert all(f" {socket.gethostname()}:{os.getpid()} " in line for line in lines)
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", lines[0])
    assert bare(out.getvalue()).splitlines()[1] == "  attention: one"
    assert result == "amazon-to-vtex: 3 order(s)"  # the job's result: bare
