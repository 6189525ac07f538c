"""stopping: once a worker is stopping, no wait of its runs outlasts the deadline."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connector import stopping


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    stopping.reset()
    yield
    stopping.reset()


def test_a_wait_past_the_deadline_stops_before_the_next_request() -> None:
    stopping.request(0.0)
    assert stopping.requested()
    with pytest.raises(stopping.WorkerStopping, match="stops before its next request"):
        stopping.sleep(3600.0)  # a rate limit's wait: cut at once, not an hour later


def test_a_wait_without_a_stop_is_a_sleep() -> None:
    stopping.sleep(0.0)
    assert not stopping.requested()
