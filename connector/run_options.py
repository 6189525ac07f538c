"""What a command asks of one flow run (`RunOptions`), apart from the engine that runs it,
so that the options, their defaults and the reasons for them read in one place."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from connector.execute import RetryAcrossRuns

__all__ = ["RunOptions"]


@dataclass(frozen=True)
class RunOptions:
    since: str | None = None
    limit: int | None = None
    dry_run: bool = False  # plan: read only, nothing sent or recorded
    concurrency: int = 8
    max_reevaluations: int = 3
    #: A write whose outcome is unknown (5xx, timeout, dropped connection) is settled in the
    #: run: after `settle_seconds` (× poll_scale) the order is read again and re-planned, at
    #: most `settle_attempts` times per order; the rest is left for the next run.
    settle_attempts: int = 2
    settle_seconds: float = 2.0
    lookback_hours: float = 24.0
    watch_hours: float = 48.0
    poll_scale: float = 1.0
    partition: str = ""  # e.g. a marketplace id: its own cursor and watch list
    #: `--order ID`: read and evaluate these orders now instead of listing changes; the
    #: cursor, the watch list's other orders and the queue are left for the scheduled runs.
    orders: tuple[str, ...] = ()
    retry: RetryAcrossRuns = RetryAcrossRuns()
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    sleep: Callable[[float], None] = time.sleep
    progress: Callable[[str, int, int], None] = lambda flow, done, total: None
