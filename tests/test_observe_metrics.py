"""`connector worker --metrics-port`: Prometheus metrics scraped from a worker running the
shipped flows against the sandbox, compared with what its runs said and the sandbox saw."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from postgres_helpers import sql
from test_worker import REPO, pg_url, sandbox_env  # noqa: F401 (pg_url: a fixture)

from connector.observe.metrics import Metrics
from connector.project import load_config, require

SUMMARY = re.compile(r"^(?P<name>[^\s:]+): (?P<orders>\d+) order\(s\)(?: \([^)]*\))?: (?P<done>\d+) "
                     r"action\(s\) done, (?P<already>\d+) already done, (?P<skipped>\d+) "
                     r"skipped, (?P<failed>\d+) failed(?:, \d+ unknown outcome\(s\))?"
                     r"(?:, (?P<watched>\d+) order\(s\) watched)?$")


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    samples: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(httpx.get(url, timeout=10).text):
        for sample in family.samples:
            samples[sample.name].append((sample.labels, sample.value))
    return samples


def total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str,
          **labels: str) -> float:
    return sum(value for have, value in samples.get(name, [])
               if all(have.get(k) == v for k, v in labels.items()))


def summaries(stdout: Any, url: str, partitions: int) -> dict[str, list[dict[str, Any]]]:
    """Each partition's run summaries, read until every partition has run and the queue has
    stayed empty (no job to do or doing) for half a second: then the worker is idle, and its
    metrics count exactly the runs read."""
    from connector.worker import bare

    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            busy = sql(url, "SELECT count(*) FROM procrastinate_jobs WHERE status IN "
                            "('todo', 'doing')")
            if len(runs) == partitions and busy == [(0,)] and lines.empty():
                return runs
            continue
        line = bare(line)
        if not line.startswith(" "):
            match = SUMMARY.match(line.rstrip("\n"))
            assert match, line
            runs[match["name"]].append(match.groupdict())
    raise AssertionError(f"the worker did not finish its runs: {dict(runs)}")


def defer_partitions(url: str, env: dict[str, str]) -> list[tuple[str, str]]:
    """Queue one job per partition, as the fleet's scheduler would, before the worker starts
    (whose own schedule is daily; but started within 10 minutes after midnight UTC, the
    worker's scheduler catches up on that tick, as procrastinate's do, and queues them all
    once more: the test counts every run)."""
    from connector.worker import build_app, defer_all, ensure_queue_schema, partitions

    parts = partitions(require(load_config(REPO)), env)
    ensure_queue_schema(url)
    app = build_app(url, lambda flow, partition: "", lambda: parts)

    async def defer() -> None:
        async with app.open_async():
            await defer_all(app, parts)

    asyncio.run(defer())
    return parts


def test_worker_metrics_match_its_runs_and_the_sandbox(pg_url: str) -> None:  # noqa: F811
    from connector.sandbox import Sandbox

    with Sandbox() as box:
        box.amazon.feeds_api.polls_before_done = 0
        # One 429 on a confirmShipment (adobe-commerce-to-amazon): resent after a backoff,
        # and the emptied bucket (2/s) makes the resend wait for a token.
        box.faults.fail_next("amazon", "POST", r"/shipmentConfirmation$", 429)
        env = sandbox_env(box)
        parts = defer_partitions(pg_url, env)
        base = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "connector", "worker", "--project", str(REPO),
             "--every", "86400", "--metrics-port", "0"],
            env={**base, **env, "CONNECTOR_STATE": pg_url}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            from connector.worker import bare

            assert bare(proc.stdout.readline()).startswith(f"worker: {len(parts)} partition(s)")
            served = bare(proc.stdout.readline()).strip()
            found = re.fullmatch(r"worker: metrics on (http://127\.0\.0\.1:\d+/metrics)", served)
            assert found, served
            runs = summaries(proc.stdout, pg_url, len(parts))
            samples = scrape(found[1])
            requests = list(box.requests)
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    for flow, partition in parts:
        ran = runs[f"{flow}@{partition}" if partition else flow]
        labels = {"flow": flow, "partition": partition}
        assert total(samples, "connector_orders_evaluated_total", **labels) == \
            sum(int(run["orders"]) for run in ran)
        for outcome in ("done", "skipped", "failed"):
            assert total(samples, "connector_actions_total", flow=flow, outcome=outcome) == \
                sum(int(run[outcome]) for run in ran), (flow, outcome)
        # a gauge: the orders the partition's runs left watched (all within watch_hours)
        key = f"{flow}@{partition}" if partition else flow
        assert total(samples, "connector_orders_watched", **labels) == \
            sql(pg_url, f"SELECT count(*) FROM watch WHERE flow = '{key}'")[0][0]
        assert int(ran[0]["watched"] or 0) <= sql(
            pg_url, f"SELECT count(*) FROM watch WHERE flow = '{key}'")[0][0]
        assert total(samples, "connector_runs_total", **labels, outcome="ok") == len(ran)
        assert total(samples, "connector_run_duration_seconds_count", **labels) == len(ran)
        assert total(samples, "connector_actions_parked", flow=flow) == 0
    assert sum(int(run["done"]) for ran in runs.values() for run in ran) > 0  # scenarios act
    # every request the sandbox answered, by system and status
    assert total(samples, "connector_http_requests_total") == len(requests)
    for system in {r.system for r in requests}:
        assert total(samples, "connector_http_requests_total", system=system) == \
            sum(1 for r in requests if r.system == system), system
    assert [r.status for r in requests].count(429) == 1
    assert total(samples, "connector_http_requests_total", status="429") == 1
    assert total(samples, "connector_http_throttled_total", system="amazon",
                 operation="confirmShipment") == 1
    assert total(samples, "connector_http_retry_wait_seconds_total", system="amazon") > 0
    waits = total(samples, "connector_rate_limit_waits_total", system="amazon",
                  operation="confirmShipment")
    waited = total(samples, "connector_rate_limit_wait_seconds_total", system="amazon",
                   operation="confirmShipment")
    # 2/s: 0.5 s for the first token after the 429, 0.5 s more for each request queued
    assert waits >= 1 and 0 < waited <= 0.5 * waits * (waits + 1) + 0.5


def test_metrics_count_what_the_events_say() -> None:
    metrics = Metrics()
    for event, fields in [
        ("order.evaluated", {"flow": "f", "partition": "p", "round": 0}),
        ("order.evaluated", {"flow": "f", "partition": "p", "round": 1}),  # re-evaluation
        ("action.end", {"flow": "f", "action": "vtex.cancel", "outcome": "done"}),
        ("http.request", {"system": "vtex", "operation": "Cancel", "status": 429}),
        ("http.request", {"system": "vtex", "operation": None, "status": None,
                          "error": "ConnectError"}),
        ("flow.end", {"flow": "f", "partition": "p", "outcome": "ok", "duration_seconds": 2,
                      "watching_now": 3, "parked_now": 1}),
    ]:
        metrics(event, fields)
    get = metrics.registry.get_sample_value
    assert get("connector_orders_evaluated_total", {"flow": "f", "partition": "p"}) == 1
    assert get("connector_http_requests_total",
               {"system": "vtex", "operation": "", "status": "ConnectError"}) == 1
    assert get("connector_http_throttled_total", {"system": "vtex", "operation": "Cancel"}) == 1
    assert get("connector_orders_watched", {"flow": "f", "partition": "p"}) == 3
    assert get("connector_actions_parked", {"flow": "f"}) == 1


def test_a_port_in_use_is_a_clear_error() -> None:
    import socket

    from connector.errors import ConnectorError
    from connector.observe.metrics import serving

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ConnectorError, match="cannot serve metrics on 127.0.0.1:"), \
                serving(taken.getsockname()[1]):
            pass
