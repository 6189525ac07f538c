"""What `connector sandbox` says while it serves: its state and, on request, each request.

A newcomer running the sandbox in a terminal beside `connector apply` sees what it holds (its
orders per system, VTEX reservations) when it starts and stops, and with `--log` every request
it answers as it answers it (system, method, path, status; 0: the connection was dropped).
Lines begin with `#`, so the output can still be saved and sourced for its `export` lines.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connector.sandbox import Sandbox


def state(sandbox: Sandbox) -> str:
    """The sandbox's holdings, in one line."""
    return (f"{len(sandbox.amazon.orders)} Amazon, {len(sandbox.walmart.orders)} Walmart, "
            f"{len(sandbox.vtex.orders)} VTEX and {len(sandbox.commerce.orders)} Adobe "
            f"Commerce order(s), {len(sandbox.vtex.reservations)} VTEX reservation(s)")


def served(sandbox: Sandbox) -> str:
    """The requests answered so far, by system."""
    counts = Counter(record.system for record in list(sandbox.requests))
    by_system = ", ".join(f"{system} {count}" for system, count in sorted(counts.items()))
    return f"{sum(counts.values())} request(s){': ' + by_system if by_system else ''}"


class RequestLog(threading.Thread):
    """Prints each request the sandbox logs, a few times a second, until `stop()`."""

    def __init__(self, sandbox: Sandbox, print_line: Callable[[str], None],
                 interval: float = 0.2) -> None:
        super().__init__(daemon=True, name="sandbox-request-log")
        self.sandbox, self.print_line, self.interval = sandbox, print_line, interval
        self._done = threading.Event()
        self._seen = 0

    def run(self) -> None:
        while not self._done.wait(self.interval):
            self.flush()
        self.flush()

    def flush(self) -> None:
        records = list(self.sandbox.requests)
        for record in records[self._seen:]:
            self.print_line(f"# {time.strftime('%H:%M:%S')} {record.system} {record.method} "
                            f"{record.path} {record.status or 'dropped'}")
        self._seen = len(records)

    def stop(self) -> None:
        self._done.set()
        self.join(5)
