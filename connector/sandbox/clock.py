"""The sandbox's notion of time, and the timestamp formats of the three systems.

All three simulators read one `Clock`, so a test can move time forward for all of them at once
(`Sandbox.advance`): Amazon hides changes younger than two minutes and expires access tokens,
and a test must be able to get past both without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from connector.timestamps import parse_iso

__all__ = [
    "Clock",
    "amazon_time",
    "later",
    "magento_time",
    "parse_time",
    "vtex_time",
]


class Clock:
    """Wall-clock time (or an injected clock) plus an offset that tests can advance."""

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self._now = now
        self._offset = timedelta(0)

    def now(self) -> datetime:
        """The current sandbox time, always timezone-aware UTC."""
        base = self._now() if self._now is not None else datetime.now(timezone.utc)
        if base.tzinfo is None:
            base = base.replace(tzinfo=timezone.utc)
        return base.astimezone(timezone.utc) + self._offset

    def advance(self, delta: float | timedelta) -> None:
        """Move sandbox time forward by `delta` (seconds or a timedelta)."""
        self._offset += delta if isinstance(delta, timedelta) else timedelta(seconds=delta)


def amazon_time(moment: datetime) -> str:
    """SP-API style: ISO 8601 in UTC with a `Z`, second precision (as in the spec examples)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def vtex_time(moment: datetime) -> str:
    """VTEX OMS style: ISO 8601 with microseconds and an explicit `+00:00` offset."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def magento_time(moment: datetime) -> str:
    """Magento style: `YYYY-MM-DD HH:MM:SS` in UTC (the database's DATETIME rendering)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def parse_time(text: str) -> datetime | None:
    """Parse the timestamp spellings the three systems and their clients use; None if not one.

    Accepts `Z` or numeric offsets, a space instead of `T` (Magento), fractions of any length
    (VTEX sends seven digits), and bare dates. Naive values are taken as UTC.
    """
    try:
        return parse_iso(text).astimezone(timezone.utc)
    except ValueError:
        return None


def later(previous: str | None, moment: datetime, fmt: Callable[[datetime], str]) -> str:
    """`moment` formatted, but strictly after `previous` (same format), bumping if needed.

    Records change faster than the formats' precision (a second for Amazon and Magento); the
    connector uses the update time as the record's version, so two writes in one second
    must still produce two versions.
    """
    candidate = fmt(moment)
    before = parse_time(previous) if previous else None
    stamped = parse_time(candidate)
    if before is not None and stamped is not None and stamped <= before:
        step = timedelta(microseconds=1) if fmt is vtex_time else timedelta(seconds=1)
        candidate = fmt(before + step)
    return candidate
