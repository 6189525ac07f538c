"""Waits on a terminal say what they wait for, how long and until when."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest

from connector import observe
from connector.model import RateLimit
from connector.observe import progress
from connector.transport.ratelimit import RateLimiter

NOW = datetime(2026, 1, 5, 10, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("event", "fields", "says"), [
    ("step.poll_wait", {"system": "amazon", "operation": "getFeed", "step": "wait", "attempt": 2,
                        "attempts": 40, "seconds": 30.0, "order": "111-1"},
     "waiting 30 s for amazon getFeed to finish (step wait, poll 2 of 40, order 111-1), until "),
    ("ratelimit.waiting", {"system": "amazon", "operation": "searchOrders", "seconds": 180.0},
     "waiting 180 s for a rate-limit token for amazon searchOrders, until "),
    ("http.retry_wait", {"system": "vtex", "operation": "cancel", "reason": "429 Too Many Requests",
                         "seconds": 4.0},
     "waiting 4 s for retrying vtex cancel after 429 Too Many Requests, until "),
])
def test_a_wait_of_a_second_or_more_is_said(event: str, fields: dict, says: str) -> None:  # type: ignore[type-arg]
    line = progress.describe(event, fields, NOW)
    assert line is not None and line.startswith(says)
    until = NOW + timedelta(seconds=fields["seconds"])
    assert line.endswith(until.astimezone().strftime("%H:%M:%S"))


@pytest.mark.parametrize(("event", "seconds"), [("step.poll_wait", 0.3), ("action.end", 30.0)])
def test_short_waits_and_other_events_pass_unsaid(event: str, seconds: float) -> None:
    assert progress.describe(event, {"seconds": seconds}, NOW) is None


def test_the_rate_limiter_says_its_wait_before_sleeping() -> None:
    out = io.StringIO()
    slept: list[str] = []
    limiter = RateLimiter({"amazon": {"getOrder": RateLimit(rate=0.5, burst=1)}},
                          sleep=lambda seconds: slept.append(
                              f"{seconds:.0f} s, " + ("said first" if out.getvalue() else "unsaid")),
                          clock=lambda: 0.0)
    stop = observe.subscribe(progress.sink(out, now=lambda: NOW))
    try:
        limiter.acquire("amazon", "getOrder")          # the burst: no wait
        assert out.getvalue() == "" and slept == []
        limiter.acquire("amazon", "getOrder")          # the next token: 2 s away
    finally:
        stop()
    assert slept == ["2 s, said first"]
    assert "waiting 2 s for a rate-limit token for amazon getOrder, until " in out.getvalue()
