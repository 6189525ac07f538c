"""Fault switches: make matching requests fail in the ways real networks and servers fail.

Rules match on the system name, the method (or `*`) and a regex searched in the logged path
(relative to the system's base URL). Each rule is used `count` times, then forgotten
(`count=None`: every matching request until `clear()`).

What matters to a client is whether the server acted before the failure, so every switch
says so. Before acting: `fail_next` (an error answer; `html_next` is an HTML error page),
`drop_next(act=False)` (the request is lost), `delay_next(act=False)` (a slow queue in front
of the server: the answer, and the effect, come late). After acting: `drop_next` (connection
closed, no answer), `delay_next` (answered too late for the client's read timeout),
`truncate_next` / `malformed_next` (the answer's JSON is cut or garbled). `on_next` calls a
hook before or after the simulator acts: a third party changing an order between the
client's read and its write, or a test killing the client mid-request. `randomly` injects a
seeded mix of all of these, for soak runs.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connector.sandbox.server import Request, RequestRecord, Response

__all__ = ["RANDOM_KINDS", "Fault", "Faults", "Hook", "corrupted", "fault_response"]

Hook = Callable[["Request"], None]

#: What `randomly` picks from. The first four answer without acting; `drop`, `truncate`,
#: `cut` and `500-after` act first (the outcome is ambiguous to the client); `lost` never
#: reaches the simulator.
RANDOM_KINDS: tuple[str, ...] = ("429", "503", "500", "html", "lost", "drop", "truncate",
                                 "cut", "500-after")

HTML_PAGE = (b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n<body>"
             b"<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>\n"
             b"</body></html>\n")


@dataclass
class Fault:
    """One pending fault: what it matches, how often, and what it does.

    `kind` is `fail` (answer `status`/`body`/`headers` instead of the simulator), `drop`
    (close the connection unanswered), `delay` (sleep `seconds`), `corrupt` (cut the real
    body in half, or replace it by `body`; `wire`: keep the full Content-Length and close
    early, so the client sees an incomplete read) or `hook` (call `hook`). `act` says
    whether the simulator acts before the fault happens.
    """

    kind: str
    system: str
    method: str
    pattern: re.Pattern[str]
    remaining: int | None
    status: int = 0
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    act: bool = False
    seconds: float = 0.0
    wire: bool = False
    hook: Hook | None = None

    def matches(self, system: str, method: str, path: str) -> bool:
        return (self.system == system and self.method in ("*", method)
                and self.pattern.search(path) is not None)


@dataclass
class _Random:
    probability: float
    rng: random.Random
    kinds: tuple[str, ...]
    systems: frozenset[str] | None
    exclude: re.Pattern[str] | None
    timeout: float


def _random_fault(kind: str, system: str, method: str, rng: random.Random,
                  timeout: float) -> Fault:
    """The one-off Fault for a randomly drawn kind (see RANDOM_KINDS)."""
    def make(fault_kind: str, **details: Any) -> Fault:
        return Fault(fault_kind, system, method, re.compile(""), 1, **details)

    retry_after = {"Retry-After": "0"} if rng.random() < 0.5 else {}
    if kind == "429":
        return make("fail", status=429, headers=retry_after)
    if kind in ("500", "503"):
        return make("fail", status=int(kind), headers=retry_after if kind == "503" else {})
    if kind == "html":
        return make("fail", status=502, body=HTML_PAGE, headers={"Content-Type": "text/html"})
    if kind == "500-after":
        return make("fail", status=500, act=True)
    if kind in ("lost", "drop"):
        return make("drop", act=kind == "drop")
    if kind in ("truncate", "cut"):
        return make("corrupt", act=True, wire=kind == "cut")
    if kind == "timeout":
        return make("delay", act=True, seconds=timeout)
    raise ValueError(f"unknown random fault kind {kind!r}; use {', '.join(RANDOM_KINDS)} "
                     "or timeout")


class Faults:
    """Switches that make matching requests fail (see the module docstring).

    `triggered` lists `(kind, RequestRecord)` for every fault that happened (random ones as
    `random:<kind>`), so a test can check that its fault was really exercised.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        self._random: _Random | None = None
        self.triggered: list[tuple[str, RequestRecord]] = []

    def _add(self, fault: Fault) -> None:
        with self._lock:
            self._rules.append(fault)

    @staticmethod
    def _rule(kind: str, system: str, method: str, path_regex: str, count: int | None,
              **details: Any) -> Fault:
        if count is not None and count < 1:
            raise ValueError("count must be at least 1 (or None: every matching request)")
        return Fault(kind, system, method.upper(), re.compile(path_regex), count, **details)

    # -- before the simulator acts -------------------------------------------------------
    def fail_next(self, system: str, method: str, path_regex: str, status: int,
                  count: int | None = 1, body: Any = None,
                  headers: Mapping[str, str] | None = None, *, act: bool = False) -> None:
        """Answer the next `count` matching requests with `status` (and `body`, `headers`).

        `body` may be bytes, str, or anything JSON-serialisable; None gives the system's own
        error shape. Nothing changes on the server, unless `act` (a 500 after a commit).
        """
        self._add(self._rule("fail", system, method, path_regex, count, status=status,
                             body=body, headers=dict(headers or {}), act=act))

    def html_next(self, system: str, method: str, path_regex: str, status: int = 502,
                  count: int | None = 1, *, act: bool = False) -> None:
        """Answer with a proxy's HTML error page (`status`, text/html) instead of JSON."""
        page = HTML_PAGE.replace(b"502 Bad Gateway", f"{status} Error".encode())
        self.fail_next(system, method, path_regex, status, count, page,
                       {"Content-Type": "text/html"}, act=act)

    # -- either side ---------------------------------------------------------------------
    def drop_next(self, system: str, method: str, path_regex: str, count: int | None = 1, *,
                  act: bool = True) -> None:
        """Close the connection without answering: after the simulator acted (`act`, how a
        timeout after a successful write looks to a client) or instead (a lost request)."""
        self._add(self._rule("drop", system, method, path_regex, count, act=act))

    def delay_next(self, system: str, method: str, path_regex: str, seconds: float,
                   count: int | None = 1, *, act: bool = True) -> None:
        """Hold the answer `seconds`: after acting (`act`: the effect is there, the answer
        comes after the client's read timeout), or before acting (the effect comes late)."""
        self._add(self._rule("delay", system, method, path_regex, count, seconds=seconds,
                             act=act))

    def on_next(self, system: str, method: str, path_regex: str, hook: Hook,
                count: int | None = 1, *, after: bool = False) -> None:
        """Call `hook(request)` before the simulator acts (or `after`, before the answer is
        written): a third party changing an order between a client's read and its write,
        or a test killing the client at an exact point. The hook runs in the server thread."""
        self._add(self._rule("hook", system, method, path_regex, count, hook=hook,
                             act=after))

    # -- after the simulator acted --------------------------------------------------------
    def truncate_next(self, system: str, method: str, path_regex: str,
                      count: int | None = 1, *, wire: bool = False) -> None:
        """Act, then answer only the first half of the body: as malformed JSON with a
        matching Content-Length, or (`wire`) with the full Content-Length and the
        connection closed half-way, which the client sees as an incomplete read."""
        self._add(self._rule("corrupt", system, method, path_regex, count, act=True,
                             wire=wire))

    def malformed_next(self, system: str, method: str, path_regex: str,
                       body: bytes = b'{"orders": [{"orderId": ', count: int | None = 1, *,
                       act: bool = True) -> None:
        """Answer the simulator's status with `body` (not JSON) instead of its body."""
        self._add(self._rule("corrupt", system, method, path_regex, count, body=body,
                             act=act))

    # -- random ----------------------------------------------------------------------------
    def randomly(self, probability: float, *, seed: int = 0,
                 kinds: Sequence[str] = RANDOM_KINDS, systems: Sequence[str] | None = None,
                 exclude: str | None = None, timeout: float = 0.0) -> None:
        """Inject a fault into each request with `probability`, drawn from `kinds` by a
        generator seeded with `seed` (the draw order follows the request order). `systems`
        limits them to some systems; `exclude` is a path regex spared; `timeout` is the
        delay of the `timeout` kind (act, then answer after it)."""
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        rng = random.Random(seed)
        for kind in kinds:
            _random_fault(kind, "", "", rng, timeout)  # refuse an unknown kind now
        with self._lock:
            self._random = _Random(probability, random.Random(seed), tuple(kinds),
                                   frozenset(systems) if systems is not None else None,
                                   re.compile(exclude) if exclude else None, timeout)

    def clear(self) -> None:
        """Forget all pending faults and stop random ones."""
        with self._lock:
            self._rules.clear()
            self._random = None

    # -- used by the server ----------------------------------------------------------------
    def _consume(self, rule: Fault) -> None:
        if rule.remaining is not None:
            rule.remaining -= 1
            if rule.remaining <= 0:
                self._rules.remove(rule)

    def take(self, kind: str, system: str, method: str, path: str) -> Fault | None:
        """Consume one use of the first pending fault of `kind` matching the request."""
        with self._lock:
            for rule in self._rules:
                if rule.kind == kind and rule.matches(system, method, path):
                    self._consume(rule)
                    return rule
        return None

    def hooks(self, system: str, method: str, path: str, *, after: bool) -> list[Hook]:
        """Consume one use of every matching hook of that side of the simulator's act."""
        found: list[Hook] = []
        with self._lock:
            for rule in list(self._rules):
                if rule.kind == "hook" and rule.act == after and rule.matches(system, method,
                                                                               path):
                    self._consume(rule)
                    assert rule.hook is not None
                    found.append(rule.hook)
        return found

    def pick(self, system: str, method: str, path: str) -> tuple[str, Fault] | None:
        """The fault for this request, decided before the simulator acts: the first
        matching rule (other than hooks), or a random one; `(name, fault)` or None."""
        with self._lock:
            for rule in self._rules:
                if rule.kind != "hook" and rule.matches(system, method, path):
                    self._consume(rule)
                    return rule.kind, rule
            chance = self._random
            if chance is None or (chance.systems is not None and system not in chance.systems) \
                    or (chance.exclude is not None and chance.exclude.search(path)):
                return None
            if chance.rng.random() >= chance.probability:
                return None
            kind = chance.rng.choice(chance.kinds)
            return f"random:{kind}", _random_fault(kind, system, method, chance.rng,
                                                   chance.timeout)


# -- answers (server.py builds Responses; imported here lazily: it imports this module) ------
def fault_response(fault: Fault, error: Callable[[int, str], Response]) -> Response:
    """A `fail` fault's answer: its body (bytes, str, JSON) or the system's error shape."""
    from connector.sandbox.server import Response

    if fault.body is None:
        response = error(fault.status, "Injected fault")
    elif isinstance(fault.body, bytes):
        response = Response(fault.status, fault.body, {})
    elif isinstance(fault.body, str):
        response = Response(fault.status, fault.body.encode(), {"Content-Type": "text/plain"})
    else:
        response = Response.json(fault.status, fault.body)
    response.headers.update(fault.headers)
    return response


def corrupted(fault: Fault, response: Response | None) -> Response:
    """A `corrupt` fault's answer: the real status and headers (200 JSON when the simulator
    did not act), the body replaced by the fault's or cut in half (on the wire: `cut_at`)."""
    from connector.sandbox.server import Response

    status = response.status if response is not None else 200
    headers = dict(response.headers) if response is not None else {
        "Content-Type": "application/json; charset=utf-8"}
    if fault.body is not None:
        body = fault.body if isinstance(fault.body, bytes) else str(fault.body).encode()
        return Response(status, body, headers)
    real = response.body if response is not None else b'{"truncated": true}'
    if fault.wire:
        return Response(status, real, headers, cut_at=len(real) // 2)
    return Response(status, real[: len(real) // 2], headers)
