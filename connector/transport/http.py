"""The execute stage's transport: rate limits, timeouts, retries, and at-most-once sending.

One rule shapes this module. A request that changes remote state may only be sent again
when the server certainly did not act on it: a 429 (the server refused before doing
anything) or a connection that never opened. A 5xx, a read timeout or a connection dropped
after sending leave the outcome unknown, and resending could cancel or invoice twice (VTEX
turns a repeated cancel into a confirmed one; Magento has no idempotency keys). So for
non-idempotent requests those raise `AmbiguousOutcome`, and the engine settles the action
by reading the target's state, never by resending blindly. Reads (`idempotent=True`) are
retried freely, also when a 2xx says it is JSON and does not parse (a cut or garbled body);
such an answer to a write is the caller's to judge (`HttpResponse.malformed`).

TLS certificates are always verified (httpx's default; `new_client` sets `verify=True`
explicitly and nothing here turns it off), because every request carries a bearer token
or app key. Every message this module builds, logged or raised, goes through the
`redact` callable and never contains request headers or query strings.
"""

from __future__ import annotations

import email.utils
import json as jsonlib
import logging
import math
import random as _random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timezone
from functools import cached_property
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

import httpx

from connector import fence, observe
from connector.transport.error_bodies import error_message  # noqa: F401 (re-exported)
from connector.errors import AmbiguousOutcome, ConnectorError, HTTPError, ResponseTooLarge, RetriesExhausted
from connector.transport.ratelimit import RateLimiter, TokenBucket  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self is Python 3.11+; only the type checker reads it

logger = logging.getLogger("connector.transport.http")

#: Largest response body accepted (bytes, after content decoding).
MAX_BODY: Final = 20 * 1024 * 1024


class _NoJson:
    """Type of `NO_JSON`: a body-less request must be distinguishable from JSON `null`."""

    def __repr__(self) -> str:
        return "NO_JSON"


NO_JSON: Final = _NoJson()


@dataclass(frozen=True)
class HttpRequest:
    """A fully rendered request. `params` are (name, value) strings, already joined the way
    the API wants (some APIs take comma-separated arrays); `operation` names the rate-limit
    bucket of `system`. `rate_headers` are the response headers that report that bucket's
    rate (the mapping's `connection.rate_limit_headers`) and `error_messages` the JMESPaths
    to an error body's words (`connection.error_message`): the transport knows HTTP, the
    mapping knows what its server sends."""

    method: str
    url: str
    params: Sequence[tuple[str, str]] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = NO_JSON
    content: bytes | None = None
    operation: str = ""
    system: str = ""
    rate_headers: tuple[str, ...] = ()
    error_messages: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.json is not NO_JSON and self.content is not None:
            raise ConnectorError("an HTTP request has a JSON body or raw content, not both")


@dataclass(frozen=True)
class HttpResponse:
    """A fully read response; header names are lower case."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed: float = 0.0

    @cached_property
    def _parsed(self) -> tuple[Any, bool]:
        """(the parsed body, whether a non-empty body failed to parse)."""
        if not self.body.strip():
            return None, False
        try:
            return jsonlib.loads(self.body), False
        except ValueError:
            return None, True

    def json(self) -> Any:
        """The parsed body, or None when it is empty or not JSON (parsed once)."""
        return self._parsed[0]

    @property
    def malformed(self) -> bool:
        """The body is not empty and not JSON (cut short, garbled, an HTML page)."""
        return self._parsed[1]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def reason(self) -> str:
        try:
            return HTTPStatus(self.status).phrase
        except ValueError:
            return ""


# --- retries --------------------------------------------------------------------------------


def _http_date(value: str) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` of delay-seconds or an HTTP-date (`now` is the
    epoch time the date is relative to); None when unparseable."""
    try:
        seconds: float | None = float(value.strip())
    except ValueError:
        when = _http_date(value)
        seconds = None if when is None else when - now
    if seconds is None or math.isnan(seconds):
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; a server's `Retry-After` wins, within a cap
    (`max_delay * 4`) so that one answer cannot stall a run for hours."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: bool = True
    honour_retry_after: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay < 0 or self.max_delay < 0:
            raise ConnectorError(f"invalid retry policy: {self}")

    def delay(self, attempt: int, retry_after: str | None = None, *, now: float = 0.0,
              random: Callable[[], float] = _random.random) -> float:
        """Seconds to sleep after failed attempt number `attempt` (1-based)."""
        if retry_after is not None and self.honour_retry_after:
            seconds = parse_retry_after(retry_after, now)
            if seconds is not None:
                return min(seconds, self.max_delay * 4)
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(attempt - 1, 60))
        return ceiling * random() if self.jitter else ceiling


# --- transport --------------------------------------------------------------------------------

#: The request never reached the server: safe to resend whatever it was.
_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)
#: Raised after (part of) the request was sent: the server may have acted.
_AFTER_SEND_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError,
                      httpx.DecodingError)


class _TooLarge(Exception):
    """Internal signal of the body read, not a ConnectorError: caught in this module and
    turned into AmbiguousOutcome or ResponseTooLarge, depending on the request."""

    def __init__(self, status: int) -> None:
        self.status = status


def _garbled(resp: HttpResponse) -> bool:
    """A 2xx that says it is JSON and is not (an empty body is not garbled)."""
    return (200 <= resp.status < 300 and "json" in resp.headers.get("content-type", "").lower()
            and resp.malformed)


def _rate_header(resp: HttpResponse, names: Sequence[str]) -> str | None:
    """The first of the declared rate headers the response carries (names are matched
    case-insensitively, as HTTP does); None when it carries none."""
    for name in names:
        value = resp.headers.get(name.lower())
        if value:
            return value
    return None


def _public_url(url: str, *, path_only: bool = False) -> str:
    """The URL without user info, query or fragment: those can hold secrets."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(invalid URL)"
    if path_only:
        return parts.path or "/"
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def new_client(*, user_agent: str = "connector/0.1",
               transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """An httpx client with TLS verification on and redirects not followed (a 3xx is
    returned to the caller rather than silently re-sending a POST elsewhere)."""
    return httpx.Client(verify=True, follow_redirects=False, transport=transport,
                        headers={"User-Agent": user_agent})


class Transport:
    """Sends `HttpRequest`s with rate limiting, timeouts, a body bound and retries.

    Owns the injected client: `close()` (or leaving the `with` block) closes it.
    Thread-safe when the client is (httpx's is).
    """

    def __init__(self, client: httpx.Client, *, limiter: RateLimiter | None = None,
                 retry: RetryPolicy | None = None, connect_timeout: float = 5.0,
                 read_timeout: float = 30.0, max_body: int = MAX_BODY,
                 redact: Callable[[str], str] = lambda s: s,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time,
                 random: Callable[[], float] = _random.random) -> None:
        self._client = client
        self._limiter = limiter if limiter is not None else RateLimiter(sleep=sleep, clock=clock)
        self._retry = retry if retry is not None else RetryPolicy()
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._max_body = max_body
        self._redact = redact
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._random = random

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, req: HttpRequest, *, idempotent: bool) -> HttpResponse:
        """Send `req`; return the first response that is neither a 429 nor (for reads) a 5xx.

        Raises `AmbiguousOutcome` (non-idempotent request, outcome unknown),
        `RetriesExhausted`, `ResponseTooLarge`, or `HTTPError` for a request that could
        not be built or sent at all (bad URL, unsupported scheme).
        """
        where = f"{req.method} {_public_url(req.url)}"
        status: int | None = None
        reason = ""
        for attempt in range(1, self._retry.max_attempts + 1):
            waited = self._limiter.acquire(req.system, req.operation)
            if waited > 0:
                observe.emit("ratelimit.wait", system=req.system, operation=req.operation,
                             seconds=round(waited, 3))
            # After any wait, right before the wire: a run whose lease is gone stops here.
            fence.before_request(mutating=req.method not in ("GET", "HEAD"))
            started = self._clock()
            retry_after: str | None = None
            now = self._wall_clock()
            try:
                resp = self._once(req, started)
            except _CONNECT_ERRORS as exc:
                status, reason = None, f"could not connect ({type(exc).__name__}: {exc})"
                self._log(req, attempt, type(exc).__name__, started)
            except _AFTER_SEND_ERRORS as exc:
                status, reason = None, f"no complete response ({type(exc).__name__}: {exc})"
                self._log(req, attempt, type(exc).__name__, started)
                if not idempotent:
                    raise AmbiguousOutcome(self._redact(
                        f"{where}: {reason}; the request may have taken effect")) from exc
            except _TooLarge as exc:
                msg = f"{where}: response body larger than {self._max_body} bytes, refused"
                if not idempotent:
                    raise AmbiguousOutcome(self._redact(msg), status=exc.status) from None
                raise ResponseTooLarge(self._redact(msg)) from None
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise HTTPError(self._redact(f"{where}: cannot send: {exc}")) from exc
            else:
                self._log(req, attempt, str(resp.status), started)
                self._limiter.update_from_header(
                    req.system, req.operation, _rate_header(resp, req.rate_headers))
                if resp.status < 500 and resp.status != 429:
                    if not (idempotent and _garbled(resp)):
                        return resp
                    # A read answered with JSON cut short or garbled (a proxy, a dropped
                    # stream): as transient as a 503, and harmless to repeat.
                    status, reason = resp.status, "a malformed JSON body"
                    if attempt < self._retry.max_attempts:
                        self._sleep(self._retry.delay(attempt, None, random=self._random))
                    continue
                status, reason = resp.status, f"{resp.status} {resp.reason}".strip()
                if resp.status >= 500 and not idempotent:
                    raise AmbiguousOutcome(self._redact(
                        f"{where}: {reason}: {error_message(resp, req.error_messages)}; the "
                        "request may have taken effect"), status=resp.status, response=resp)
                if resp.status == 429:
                    self._limiter.drain(req.system, req.operation)
                retry_after = resp.headers.get("retry-after")
                # an HTTP-date Retry-After is relative to the server's clock
                now = _http_date(resp.headers.get("date", "")) or now
            if attempt < self._retry.max_attempts:
                delay = self._retry.delay(attempt, retry_after, now=now, random=self._random)
                observe.emit("http.retry_wait", system=req.system, operation=req.operation,
                             status=status, reason=reason, seconds=round(delay, 3))
                self._sleep(delay)
        raise RetriesExhausted(self._redact(
            f"{where}: gave up after {self._retry.max_attempts} attempts: {reason}"),
            status=status, reason=reason)

    def _once(self, req: HttpRequest, started: float) -> HttpResponse:
        headers = dict(req.headers)
        content, json_body = req.content, None
        if req.json is None:  # the JSON literal null, which httpx would read as "no body"
            content = b"null"
            headers.setdefault("Content-Type", "application/json")
        elif req.json is not NO_JSON:
            json_body = req.json
        url = httpx.URL(req.url)
        if req.params:  # merged: httpx would replace a presigned URL's own query
            url = url.copy_merge_params(list(req.params))
        try:
            request = self._client.build_request(
                req.method, url, headers=headers,
                json=json_body, content=content, timeout=self._timeout)
        except (TypeError, ValueError) as exc:  # e.g. a body that JSON cannot encode
            raise HTTPError(self._redact(
                f"{req.method} {_public_url(req.url)}: cannot build request: {exc}")) from exc
        response = self._client.send(request, stream=True)
        try:
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > self._max_body:
                raise _TooLarge(response.status_code)
            chunks, total = [], 0
            for chunk in response.iter_bytes():
                total += len(chunk)
                if total > self._max_body:
                    raise _TooLarge(response.status_code)
                chunks.append(chunk)
        finally:
            response.close()
        return HttpResponse(
            status=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
            body=b"".join(chunks), elapsed=self._clock() - started)

    def _log(self, req: HttpRequest, attempt: int, outcome: str, started: float) -> None:
        if observe.active():
            status = int(outcome) if outcome.isdigit() else None
            quiet = status is not None and status < 500 and status != 429
            observe.emit("http.request", logging.INFO if quiet else logging.WARNING,
                         system=req.system,
                         operation=req.operation or None, method=req.method,
                         path=_public_url(req.url, path_only=True), status=status,
                         error=None if status else outcome, attempt=attempt,
                         duration_seconds=round(self._clock() - started, 3))
        if logger.isEnabledFor(logging.DEBUG):
            path = _public_url(req.url, path_only=True)
            logger.debug(self._redact(
                f"{req.system}/{req.operation or '-'} {req.method} {path} -> {outcome} "
                f"in {self._clock() - started:.3f}s (attempt {attempt})"))
