"""Receiving notifications: messages → queued orders, committed before the message goes.

See `connector.notify` for the design. Here: which flow partitions a source's notifications
feed (`sources`), what one message asks for (`route`), one receive round (`receive_once`),
emptying a queue for `worker --once` (`drain`) and the worker's background receiver.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from connector import observe, templates
from connector.errors import ConnectorError
from connector.model import Notifications
from connector.normalise import search
from connector.notify.sqs import Message, SqsQueue
from connector.project import Config, resolve_settings
from connector.state.store import StateStore

Report = Callable[[str], object]
Partition = tuple[str, str]  # (flow, partition), as the worker's
# Seconds a receive waits for its first message (SQS's longest long poll).
LONG_POLL = 20


class Queue(Protocol):
    """A notification queue's transport (SqsQueue; a test's stand-in)."""

    url: str

    def receive(self, wait_seconds: int, *, max_messages: int = 10,
                visibility_timeout: int | None = None) -> list[Message]: ...
    def delete(self, message: Message) -> None: ...


@dataclass(frozen=True)
class Source:
    """One source system's notifications: its queue and the flow partitions they feed."""

    system: str
    spec: Notifications
    queue_url: str
    flows: Mapping[str, frozenset[str]]  # flow → its partitions ("" = the whole flow)


def sources(config: Config, environ: Mapping[str, str],
            parts: Sequence[Partition]) -> list[Source]:
    """The sources with notifications on (a declared section, a non-empty queue URL), each
    with the partitions of `parts` whose flow reads from it."""
    found = []
    for name, system in sorted(config.systems.items()):
        spec = system.notifications
        if spec is None:
            continue
        settings = resolve_settings(system.settings, config.system_settings.get(name, {}),
                                    name, environ)
        url = templates.render(spec.queue_url, {"settings": settings}).strip()
        flows: dict[str, set[str]] = {}
        for flow, partition in parts:
            if config.flows[flow].source == name:
                flows.setdefault(flow, set()).add(partition)
        if url and flows:
            found.append(Source(name, spec, url, {f: frozenset(p) for f, p in flows.items()}))
    return found


def route(source: Source, body: str) -> tuple[list[tuple[str, str, str]], str]:
    """The (flow, partition, order id) rows one message body asks for, or a problem."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return [], "not JSON"
    spec = source.spec
    try:
        if spec.accept and not search(spec.accept, data):
            return [], f"not accepted ({spec.accept})"
        order = search(spec.order_id, data)
        key = search(spec.partition, data) if spec.partition else ""
    except ConnectorError as exc:
        return [], str(exc)
    if not isinstance(order, (str, int)) or isinstance(order, bool) or not str(order).strip():
        return [], f"no order id at {spec.order_id}"
    order_id, key = str(order).strip(), "" if key is None else str(key)
    rows = [(flow, partition, order_id) for flow, partitions in sorted(source.flows.items())
            for partition in sorted(partitions) if partition in ("", key)]
    if not rows:
        known = sorted({p for partitions in source.flows.values() for p in partitions})
        return [], (f"order {order_id}: partition {key!r} ({spec.partition}) is not one this "
                    f"connector runs ({', '.join(known)})")
    return rows, ""


def receive_once(queue: Queue, source: Source, store: StateStore, report: Report, *,
                 wait_seconds: int = LONG_POLL, visibility_timeout: int | None = None,
                 queued: Callable[[list[Partition]], object] | None = None) -> int:
    """One receive: queue each message's orders (committed), then delete the message. A
    message that asks for nothing is reported and deleted. `queued` is told the partitions
    that got orders. How many messages came."""
    messages = queue.receive(wait_seconds, visibility_timeout=visibility_timeout)
    touched: dict[Partition, None] = {}
    for message in messages:
        rows, problem = route(source, message.body)
        if rows:
            store.enqueue(rows)  # committed: only now may the message go
            touched.update(((flow, part), None) for flow, part, _ in rows)
            observe.emit("notification.queued", message=message.id, order=rows[0][2],
                         partitions=[flow + "@" + part if part else flow
                                     for flow, part, _ in rows])
        else:
            report(f"notifications {source.system}: message {message.id}: {problem}; "
                   "dropped (polling lists the order if it is one of ours)")
            observe.emit("notification.dropped", logging.WARNING, message=message.id,
                         problem=problem)
        queue.delete(message)
    if touched and queued is not None:
        queued(list(touched))
    return len(messages)


def drain(queues: Sequence[tuple[Queue, Source]], store: StateStore, report: Report, *,
          wait_seconds: int = 1) -> int:
    """Receive until every queue answers empty (`worker --once`); messages received."""
    total = 0
    for queue, source in queues:
        while count := receive_once(queue, source, store, report, wait_seconds=wait_seconds):
            total += count
    return total


class Trigger:
    """Starts the runs of the partitions that got orders, from the receiver's thread, on the
    worker's event loop (`attach`), so a notified order is worked on within seconds rather
    than at the next scheduling tick. Before `attach` and after the loop ends it does
    nothing: the queued rows wait for the next run either way."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start: Callable[[list[Partition]], Coroutine[Any, Any, object]] | None = None

    def attach(self, loop: asyncio.AbstractEventLoop,
               start: Callable[[list[Partition]], Coroutine[Any, Any, object]]) -> None:
        self._loop, self._start = loop, start

    def __call__(self, parts: list[Partition]) -> None:
        loop, start = self._loop, self._start
        if loop is None or start is None or loop.is_closed():
            return
        try:
            future = asyncio.run_coroutine_threadsafe(start(parts), loop)
        except RuntimeError:  # the loop stopped meanwhile
            return
        future.add_done_callback(self._done)

    def _done(self, future: concurrent.futures.Future[object]) -> None:
        if not future.cancelled() and future.exception() is not None:
            self.report(f"notifications: starting the notified partitions' runs failed: "
                        f"{future.exception()}; the next scheduling round runs them")


class Receiver(threading.Thread):
    """The worker's receiver: long-polls each queue in turn until stopped. A failing
    receive (network, credentials) is reported and retried after `pause` seconds; it never
    stops the worker, whose polling carries on. A daemon thread: a worker stopped mid-round
    has at most left messages undeleted, which the queue delivers again."""

    def __init__(self, queues: Sequence[tuple[Queue, Source]], store: StateStore,
                 report: Report, *, wait_seconds: int = LONG_POLL, pause: float = 5.0,
                 trigger: Trigger | None = None) -> None:
        super().__init__(name="connector-notifications", daemon=True)
        self.queues, self.store, self.report = list(queues), store, report
        self.wait_seconds, self.pause, self.trigger = wait_seconds, pause, trigger
        self.stopping = threading.Event()
        self.received = 0

    def run(self) -> None:
        while not self.stopping.is_set():
            for queue, source in self.queues:
                try:
                    self.received += receive_once(queue, source, self.store, self.report,
                                                  wait_seconds=self.wait_seconds,
                                                  queued=self.trigger)
                except ConnectorError as exc:
                    self.report(f"notifications {source.system}: {exc}; trying again in "
                                f"{self.pause:g} s")
                    self.stopping.wait(self.pause)

    def stop(self, timeout: float = 1.0) -> None:
        self.stopping.set()
        self.join(timeout)


def open_queues(found: Sequence[Source], environ: Mapping[str, str]) -> list[tuple[Queue, Source]]:
    """Each source's queue over its transport."""
    queues: list[tuple[Queue, Source]] = []
    for source in found:
        if source.spec.transport != "sqs":
            raise ConnectorError(f"{source.system}: notifications transport "
                                 f"{source.spec.transport!r} is not known (sqs)")
        queues.append((SqsQueue(source.queue_url, environ), source))
    return queues
