"""Prometheus metrics of runs, from the same events as the JSON logs (`connector.observe`).

`connector worker --metrics-port N` subscribes a `Metrics` to the events and serves its
registry with prometheus-client on loopback (`--metrics-address` to listen elsewhere). The
registry is the worker's own, not the library's global one, so nothing else that imports
prometheus-client adds to it or is added to.

Labels are bounded: flow, partition (a marketplace id), action name, outcome, system,
operation and HTTP status. Never an order id, a key or a URL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from connector import observe
from connector.errors import ConnectorError

#: Seconds: a partition's run takes from a second (nothing changed) to many minutes
#: (a backlog, SP-API's feed polls and rate limits).
RUN_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


def _label(value: Any) -> str:
    return "" if value is None else str(value)


class Metrics:
    """The registry and its metrics; call it with an event (it is an `observe` sink)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        run = ["flow", "partition"]
        self.orders = Counter("connector_orders_evaluated", "Orders evaluated by the rules "
                              "(once per order and run, re-evaluations not counted).", run,
                              registry=r)
        self.actions = Counter("connector_actions", "Actions by outcome (done, already-done, "
                               "skipped, failed, unknown, parked, deferred, and the built-in "
                               "watch and report).", ["flow", "action", "outcome"], registry=r)
        self.http = Counter("connector_http_requests", "HTTP requests sent, by system, "
                            "operation and status (an error name when there was no answer).",
                            ["system", "operation", "status"], registry=r)
        self.throttled = Counter("connector_http_throttled", "HTTP 429 answers (too many "
                                 "requests).", ["system", "operation"], registry=r)
        self.waits = Counter("connector_rate_limit_waits", "Waits for a rate-limit token "
                             "before sending.", ["system", "operation"], registry=r)
        self.wait_seconds = Counter("connector_rate_limit_wait_seconds", "Seconds waited for "
                                    "rate-limit tokens.", ["system", "operation"], registry=r)
        self.retry_seconds = Counter("connector_http_retry_wait_seconds", "Seconds waited "
                                     "before resending (Retry-After, backoff after a 429 or "
                                     "5xx).", ["system", "operation"], registry=r)
        self.runs = Counter("connector_runs", "Partition runs by outcome (ok, failed: an "
                            "action failed or an order could not be read, error: the run "
                            "stopped).", [*run, "outcome"], registry=r)
        self.duration = Histogram("connector_run_duration_seconds", "How long a partition's "
                                  "run took.", run, buckets=RUN_BUCKETS, registry=r)
        self.last_run = Gauge("connector_last_run_timestamp_seconds", "When a partition's "
                              "last run ended (Unix time).", run, registry=r)
        self.watched = Gauge("connector_orders_watched", "Orders on the partition's watch "
                             "list after its last run.", run, registry=r)
        self.parked = Gauge("connector_actions_parked", "The flow's actions parked for a "
                            "person after its last run.", ["flow"], registry=r)
        self._lock = threading.Lock()

    def __call__(self, event: str, fields: Mapping[str, Any]) -> None:
        handler = self._handlers.get(event)
        if handler is not None:
            handler(self, fields)

    def _order(self, f: Mapping[str, Any]) -> None:
        if f.get("round", 0) == 0:
            self.orders.labels(_label(f.get("flow")), _label(f.get("partition"))).inc()

    def _action(self, f: Mapping[str, Any]) -> None:
        self.actions.labels(_label(f.get("flow")), _label(f.get("action")),
                            _label(f.get("outcome"))).inc()

    def _http(self, f: Mapping[str, Any]) -> None:
        system, operation = _label(f.get("system")), _label(f.get("operation"))
        status = f.get("status")
        self.http.labels(system, operation, _label(status or f.get("error"))).inc()
        if status == 429:
            self.throttled.labels(system, operation).inc()

    def _wait(self, f: Mapping[str, Any]) -> None:
        labels = (_label(f.get("system")), _label(f.get("operation")))
        self.waits.labels(*labels).inc()
        self.wait_seconds.labels(*labels).inc(float(f.get("seconds") or 0.0))

    def _retry(self, f: Mapping[str, Any]) -> None:
        self.retry_seconds.labels(_label(f.get("system")), _label(f.get("operation"))).inc(
            float(f.get("seconds") or 0.0))

    def _run(self, f: Mapping[str, Any]) -> None:
        labels = (_label(f.get("flow")), _label(f.get("partition")))
        self.runs.labels(*labels, _label(f.get("outcome"))).inc()
        self.duration.labels(*labels).observe(float(f.get("duration_seconds") or 0.0))
        self.last_run.labels(*labels).set(time.time())
        if f.get("watching_now") is not None:
            self.watched.labels(*labels).set(int(f["watching_now"]))
        if f.get("parked_now") is not None:
            self.parked.labels(labels[0]).set(int(f["parked_now"]))

    _handlers: Mapping[str, Callable[[Metrics, Mapping[str, Any]], None]] = {
        "order.evaluated": _order, "action.end": _action, "http.request": _http,
        "ratelimit.wait": _wait, "http.retry_wait": _retry, "flow.end": _run,
    }


@contextmanager
def serving(port: int, address: str = "127.0.0.1") -> Iterator[tuple[Metrics, int]]:
    """Metrics of the events emitted in the block, served on `address:port` (0: a free
    port): (the metrics, the port)."""
    metrics = Metrics()
    try:
        server, thread = start_http_server(port, addr=address, registry=metrics.registry)
    except OSError as exc:
        raise ConnectorError(f"cannot serve metrics on {address}:{port}: {exc.strerror or exc}"
                             ) from None
    stop = observe.subscribe(metrics)
    try:
        yield metrics, int(server.server_port)
    finally:
        stop()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
