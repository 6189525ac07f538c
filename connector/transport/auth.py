"""Cached bearer tokens (Amazon LWA access tokens, any `token_request` auth).

An LWA access token lives an hour, and fetching one is itself a rate-limited request, so
the token is fetched once and shared by every worker thread. It is refreshed a margin
before it expires, so that a request never starts with a token that dies in flight. When
a server still answers 401/403 because the token expired early (revoked, clock skew), the
caller invalidates the token it used and retries the request once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from connector.errors import ConnectorError


class TokenCache:
    """One bearer token, fetched lazily and refreshed before it expires.

    `fetch` returns `(token, expires_in_seconds)`; its exceptions propagate unchanged and
    nothing is cached, so the next `get()` tries again. A lock is held while fetching, so
    threads that need a token at the same moment cause one fetch, not one each.
    """

    def __init__(self, fetch: Callable[[], tuple[str, float]], *,
                 clock: Callable[[], float] = time.monotonic, margin: float = 60.0) -> None:
        if margin < 0:
            raise ConnectorError(f"token refresh margin must not be negative, got {margin}")
        self._fetch = fetch
        self._clock = clock
        self._margin = margin
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0

    def get(self) -> str:
        """A token with at least `margin` seconds of validity left (fetched if needed)."""
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._token, self._refresh_at = self._refresh()
            return self._token

    def invalidate(self, token: str | None = None) -> None:
        """Force the next `get()` to fetch a new token.

        Pass the token that was refused: when several threads see the same 401, only the
        first invalidation counts, and the others reuse the token it fetched instead of
        each fetching their own.
        """
        with self._lock:
            if token is None or token == self._token:
                self._token = None

    def _refresh(self) -> tuple[str, float]:
        """Fetch a token; return it with the clock time at which to refresh it."""
        started = self._clock()
        token, expires_in = self._fetch()
        if not isinstance(token, str) or not token:
            raise ConnectorError("token endpoint returned an empty token")
        try:
            lifetime = float(expires_in)
        except (TypeError, ValueError):
            raise ConnectorError(
                f"token endpoint returned a non-numeric expiry: {expires_in!r}") from None
        # A token shorter-lived than twice the margin would be refreshed on every call:
        # keep it for half its life instead.
        margin = min(self._margin, max(lifetime, 0.0) / 2)
        return token, started + lifetime - margin
