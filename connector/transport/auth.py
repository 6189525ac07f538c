"""Cached bearer tokens (Amazon LWA access tokens, any `token_request` auth).

An LWA access token lives an hour, and fetching one is itself a rate-limited request, so
the token is fetched once and shared by every worker thread. It is refreshed a margin
before it expires, so that a request never starts with a token that dies in flight. When
a server still answers 401/403 because the token expired early (revoked, clock skew), the
caller invalidates the token it used and retries the request once.

One token per process and account: every client of one transport (a process has one:
`apply`'s for all its flows, a worker's for all its jobs) that exchanges the same
credentials at the same token endpoint shares one `TokenCache` (`shared`), so two flows
on one seller, or four partitions of one flow, fetch one token, not one each. The account
is told by a digest of the rendered token request, kept in memory only; each client still
fetches with its own transport and redactor when the shared token needs refreshing.
"""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
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

    def get(self, fetch: Callable[[], tuple[str, float]] | None = None) -> str:
        """A token with at least `margin` seconds of validity left (fetched if needed, by
        `fetch` when given: the asking client's own, for a shared cache)."""
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._token, self._refresh_at = self._refresh(fetch or self._fetch)
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

    def _refresh(self, fetch: Callable[[], tuple[str, float]]) -> tuple[str, float]:
        """Fetch a token; return it with the clock time at which to refresh it."""
        started = self._clock()
        token, expires_in = fetch()
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


_SHARED: weakref.WeakKeyDictionary[object, dict[str, TokenCache]] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def account_digest(*parts: object) -> str:
    """A digest that tells accounts apart by their rendered token request (secrets
    included), without keeping the secrets themselves anywhere."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def shared(owner: object, account: str, fetch: Callable[[], tuple[str, float]]) -> TokenCache:
    """The token cache of `account` among the clients of `owner` (their transport), made
    with `fetch` by the first to ask; one of its own when `owner` cannot be weakly held."""
    with _SHARED_LOCK:
        try:
            caches = _SHARED.setdefault(owner, {})
        except TypeError:
            return TokenCache(fetch)
        if account not in caches:
            caches[account] = TokenCache(fetch)
        return caches[account]
