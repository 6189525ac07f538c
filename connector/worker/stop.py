"""How a worker stops on SIGTERM or SIGINT: bounded, clean, and at once when told twice.

The first signal asks the worker's runs to stop at their next safe point (between orders,
`connector.stopping`) while the worker keeps its heartbeat, so the fleet does not take its
partitions while they run; once none runs, the job queue's worker is stopped (it then has
nothing to wait for) and the process exits. No wait of a run lasts past a deadline a few
seconds before `timeout`, and at `timeout` the process exits whatever still runs (a request
that hangs): its pending entries are settled by reading by the run that takes over (see
`connector.fence`), exactly as after a crash. A second signal exits at once, the same way.
Never a traceback: each case says in one line what happened.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable

from connector import stopping


class Stopper:
    """The signal handling of one worker process; `running` counts its running partitions."""

    def __init__(self, running: Callable[[], int], say: Callable[[str], object],
                 timeout: float) -> None:
        self.running = running
        self.say = say
        self.timeout = timeout
        self.stopping = False

    def install(self, loop: asyncio.AbstractEventLoop, main: asyncio.Task[object]) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, self._signal, signum, loop, main)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread, or no signals here: the caller stops us

    def _signal(self, signum: int, loop: asyncio.AbstractEventLoop,
                main: asyncio.Task[object]) -> None:
        name = signal.Signals(signum).name
        if self.stopping:
            self._exit(f"worker: {name} again: stopping at once; what its runs left pending "
                       "is settled by reading by the runs that take their partitions over",
                       128 + signum)
        self.stopping = True
        # Waits end a little before the timeout, so that the runs have time to end.
        stopping.request(max(0.5, self.timeout - min(5.0, self.timeout / 3)))
        self.say(f"worker: {name}: stopping; running partitions ({self.running()}) stop at "
                 f"their next order, within {self.timeout:g} s; a second signal stops at once")
        overdue = threading.Timer(self.timeout, self._exit, (
            f"worker: still running {self.timeout:g} s after {name} (--stop-timeout): exiting "
            "now; the runs that take its partitions over settle what it left by reading", 1))
        overdue.daemon = True
        overdue.start()
        loop.create_task(self._when_idle(main))

    async def _when_idle(self, main: asyncio.Task[object]) -> None:
        """Stop the job queue's worker once no partition runs (its heartbeat went on)."""
        while self.running() > 0:
            await asyncio.sleep(0.1)
        main.cancel()

    def _exit(self, message: str, code: int) -> None:
        try:
            self.say(message)
        finally:
            os._exit(code)
