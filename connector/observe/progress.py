"""Waits said on a terminal: a poll, a rate-limit wait or a retry's backoff of a second or
more prints what it waits for, how long and until when, instead of 30 (or 180) silent
seconds. A sink like the others (`observe.subscribe`), turned on by `apply`/`plan` when
stderr is a terminal and the JSON logs are off (they carry the same events)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, TextIO

from connector import observe

#: Shorter waits pass unsaid: a terminal full of 0.2 s waits says nothing useful.
MIN_SECONDS = 1.0


def describe(event: str, fields: Mapping[str, Any], now: datetime) -> str | None:
    """The line for a wait event, None for any other event or a short wait."""
    seconds = float(fields.get("seconds") or 0.0)
    if seconds < MIN_SECONDS:
        return None
    where = " ".join(str(part) for part in (fields.get("system"), fields.get("operation")) if part)
    order = f", order {fields['order']}" if fields.get("order") else ""
    if event == "step.poll_wait":
        what = (f"{where} to finish (step {fields.get('step')}, poll {fields.get('attempt')} "
                f"of {fields.get('attempts')}{order})")
    elif event == "ratelimit.waiting":
        what = f"a rate-limit token for {where}{order}"
    elif event == "http.retry_wait":
        what = f"retrying {where} after {fields.get('reason') or fields.get('status')}{order}"
    else:
        return None
    until = (now + timedelta(seconds=seconds)).astimezone().strftime("%H:%M:%S")
    return f"waiting {seconds:.0f} s for {what}, until {until}"


def sink(out: TextIO, now: Callable[[], datetime] | None = None) -> observe.Sink:
    clock = now or (lambda: datetime.now(timezone.utc))

    def write(event: str, fields: Mapping[str, Any]) -> None:
        line = describe(event, fields, clock())
        if line is not None:
            out.write(f"\r\x1b[K{line}\n")  # over a progress bar's line; the bar redraws
            out.flush()

    return write


def start(out: TextIO | None = None) -> Callable[[], None]:
    """Say waits on `out` (stderr) until the returned function is called."""
    return observe.subscribe(sink(out or sys.stderr))
