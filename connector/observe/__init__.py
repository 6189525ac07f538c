"""Observing runs: the events the stages report, and the sinks a command turns on.

The stages that already report (the engine per flow, order and action, `execute` per step,
the HTTP transport per request and wait) call `emit(event, **fields)`. The event carries the
fields bound around it (`bound(run=…, flow=…, order=…)`, kept per thread and task in a
context variable), so an HTTP request knows the order and action it was made for.

Two kinds of sink take events, each turned on by its command option:
- JSON logs (`observe.logs`, `--log-format json`): every event goes to the standard
  library's `logging` under `connector.events`, formatted one JSON object a line;
- Prometheus metrics (`observe.metrics`, `connector worker --metrics-port`): counters and
  gauges updated from the same events.

With neither on, `emit` returns at once: a run pays for nothing it does not show.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

#: The logger the events are written to (as records whose `connector_fields` hold the fields).
EVENTS = logging.getLogger("connector.events")

Sink = Callable[[str, Mapping[str, Any]], None]

_context: ContextVar[Mapping[str, Any]] = ContextVar("connector_observe", default={})
_sinks: list[Sink] = []
_lock = threading.Lock()


def subscribe(sink: Sink) -> Callable[[], None]:
    """Send every event to `sink(event, fields)`; returns the function that stops it."""
    with _lock:
        _sinks.append(sink)

    def unsubscribe() -> None:
        with _lock:
            if sink in _sinks:
                _sinks.remove(sink)

    return unsubscribe


def active(level: int = logging.INFO) -> bool:
    """Whether an event would go anywhere (to skip work done only to report it)."""
    return bool(_sinks) or EVENTS.isEnabledFor(level)


def emit(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Report `event` with `fields` over the bound context. Never raises into the run: a
    sink's failure is a bug of the sink, logged, not a reason to stop sending orders."""
    sinks = _sinks
    logs = EVENTS.isEnabledFor(level)
    if not sinks and not logs:
        return
    merged = {**_context.get(), **fields}
    for sink in list(sinks):
        try:
            sink(event, merged)
        except Exception:  # noqa: BLE001 - observing must not break the run
            logging.getLogger("connector.observe").exception("event sink failed on %s", event)
    if logs:
        EVENTS.log(level, event, extra={"connector_fields": merged})


def context() -> Mapping[str, Any]:
    """The fields bound here (this thread or task)."""
    return _context.get()


@contextlib.contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add `fields` to every event emitted in the block (in this thread or task)."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)
