from __future__ import annotations

import threading
from typing import Any

import pytest

from connector.transport.auth import TokenCache
from connector.errors import ConnectorError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Fetcher:
    """Hands out tok1, tok2, … each valid for `expires_in` seconds."""

    def __init__(self, expires_in: Any = 3600.0) -> None:
        self.calls = 0
        self.expires_in = expires_in

    def __call__(self) -> tuple[str, float]:
        self.calls += 1
        return f"tok{self.calls}", self.expires_in


@pytest.mark.parametrize(("expires_in", "margin", "elapsed", "expected"), [
    (3600, 60, 0, "tok1"),
    (3600, 60, 3539, "tok1"),  # 61 s left: still good
    (3600, 60, 3540, "tok2"),  # 60 s left: refreshed
    (3600, 0, 3599, "tok1"),
    (3600, 0, 3600, "tok2"),
    (60, 60, 29, "tok1"),  # short-lived token: kept for half its life, not refetched each call
    (60, 60, 30, "tok2"),
    (0, 60, 0, "tok2"),  # already expired: every get refetches
])
def test_refresh_before_expiry(expires_in: float, margin: float, elapsed: float,
                               expected: str) -> None:
    clock, fetch = Clock(), Fetcher(expires_in)
    cache = TokenCache(fetch, clock=clock, margin=margin)
    assert cache.get() == "tok1"
    clock.now += elapsed
    assert cache.get() == expected


def test_cached_between_calls() -> None:
    fetch = Fetcher()
    cache = TokenCache(fetch, clock=Clock())
    assert [cache.get() for _ in range(5)] == ["tok1"] * 5
    assert fetch.calls == 1


@pytest.mark.parametrize(("refused", "expected"), [
    (None, "tok2"),
    ("tok1", "tok2"),
    ("tok0", "tok1"),  # another thread already replaced the refused token
])
def test_invalidate(refused: str | None, expected: str) -> None:
    cache = TokenCache(Fetcher(), clock=Clock())
    cache.get()
    cache.invalidate(refused)
    assert cache.get() == expected


def test_fetch_failure_is_not_cached() -> None:
    outcomes: list[Any] = [ConnectorError("token endpoint down"), ("good", 3600.0)]

    def fetch() -> tuple[str, float]:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome  # type: ignore[no-any-return]

    cache = TokenCache(fetch, clock=Clock())
    with pytest.raises(ConnectorError, match="down"):
        cache.get()
    assert cache.get() == "good"


@pytest.mark.parametrize(("result", "message"), [
    (("", 3600), "empty token"),
    ((None, 3600), "empty token"),
    (("tok", "soon"), "non-numeric expiry"),
    (("tok", None), "non-numeric expiry"),
])
def test_bad_token_responses(result: Any, message: str) -> None:
    cache = TokenCache(lambda: result, clock=Clock())
    with pytest.raises(ConnectorError, match=message):
        cache.get()


def test_negative_margin_refused() -> None:
    with pytest.raises(ConnectorError, match="margin"):
        TokenCache(Fetcher(), margin=-1)


def test_one_fetch_for_concurrent_callers() -> None:
    calls = 0
    fetching, release = threading.Event(), threading.Event()

    def slow_fetch() -> tuple[str, float]:
        nonlocal calls
        calls += 1
        fetching.set()
        release.wait(timeout=5)  # hold the lock while the other threads queue up behind it
        return "shared", 3600.0

    cache = TokenCache(slow_fetch)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get())) for _ in range(8)]
    for t in threads:
        t.start()
    fetching.wait(timeout=5)
    release.set()
    for t in threads:
        t.join()
    assert results == ["shared"] * 8 and calls == 1
