"""Fault switches: make the next matching requests fail, to test retries and recovery.

Rules match on the system name, the method (or `*`) and a regex searched in the logged path
(relative to the system's base URL). Each rule is used `count` times, then forgotten.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connector.sandbox.server import RequestRecord

__all__ = ["Fault", "Faults"]


@dataclass
class Fault:
    """One pending fault: what it matches, how often, and what it answers."""

    kind: str
    system: str
    method: str
    pattern: re.Pattern[str]
    remaining: int
    status: int = 0
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class Faults:
    """Switches that make the next matching requests fail, to test retries and recovery.

    `fail_next` answers instead of the simulator (nothing changes on the server); `drop_next`
    lets the simulator act and then closes the connection without answering, which is how a
    timeout after a successful write looks to a client.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        self.triggered: list[tuple[str, RequestRecord]] = []

    def fail_next(self, system: str, method: str, path_regex: str, status: int, count: int = 1,
                  body: Any = None, headers: Mapping[str, str] | None = None) -> None:
        """Answer the next `count` matching requests with `status` (and `body`, `headers`).

        `method` may be `*`; `path_regex` is searched in the logged path. `body` may be bytes,
        str, or anything JSON-serialisable; None gives the system's own error shape.
        """
        with self._lock:
            self._rules.append(Fault("fail", system, method.upper(), re.compile(path_regex),
                                      count, status, body, dict(headers or {})))

    def drop_next(self, system: str, method: str, path_regex: str, count: int = 1) -> None:
        """Act on the next `count` matching requests, then close the connection unanswered."""
        with self._lock:
            self._rules.append(Fault("drop", system, method.upper(), re.compile(path_regex),
                                      count))

    def clear(self) -> None:
        """Forget all pending faults."""
        with self._lock:
            self._rules.clear()

    def take(self, kind: str, system: str, method: str, path: str) -> Fault | None:
        """Consume one use of the first pending fault of `kind` matching the request."""
        with self._lock:
            for rule in self._rules:
                if (rule.kind == kind and rule.system == system
                        and rule.method in ("*", method) and rule.pattern.search(path)):
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                    return rule
        return None
