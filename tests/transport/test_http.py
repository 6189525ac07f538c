from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from connector.transport.error_bodies import fill_placeholders
from connector.errors import ConnectorError, HTTPError
from connector.transport.http import (
    AmbiguousOutcome,
    HttpRequest,
    HttpResponse,
    RateLimiter,
    ResponseTooLarge,
    RetriesExhausted,
    RetryPolicy,
    TokenBucket,
    Transport,
    error_message,
    new_client,
    parse_retry_after,
)
from connector.model import RateLimit


class FakeClock:
    """Monotonic clock whose sleep only advances time, recording each wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Script:
    """A MockTransport handler answering with the given responses/exceptions in order."""

    def __init__(self, *steps: httpx.Response | Exception) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


@contextmanager
def transport(script: Script, clock: FakeClock | None = None,
              **kwargs: Any) -> Iterator[Transport]:
    clock = clock or FakeClock()
    kwargs.setdefault("random", lambda: 0.5)
    client = new_client(transport=httpx.MockTransport(script))
    with Transport(client, sleep=clock.sleep, clock=clock, **kwargs) as t:
        yield t


GET = HttpRequest("GET", "https://api.example.com/orders/1", system="vtex", operation="get")
# The words of an error body are where the mapping says (mappings/vtex.yaml error_message).
POST = HttpRequest("POST", "https://api.example.com/orders/1/cancel", json={"reason": "x"},
                   system="vtex", operation="cancel",
                   error_messages=("join(': ', [error.code, error.message][?@])",))
OK = httpx.Response(200, json={"ok": True})


@pytest.mark.parametrize(("headers", "expected_sleep"), [
    ({}, 0.25),  # full jitter: base 0.5 * random 0.5
    ({"Retry-After": "3"}, 3.0),
    ({"Retry-After": "1000"}, 120.0),  # capped at max_delay * 4
    ({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT",
      "Date": "Wed, 21 Oct 2015 07:28:00 GMT"}, 10.0),  # relative to the server's Date
    ({"Retry-After": "soon"}, 0.25),  # unparseable: backoff
])
@pytest.mark.parametrize("req", [GET, POST])
def test_429_is_retried_for_any_method(headers: dict[str, str], expected_sleep: float,
                                       req: HttpRequest) -> None:
    clock = FakeClock()
    script = Script(httpx.Response(429, headers=headers), OK)
    with transport(script, clock) as t:
        resp = t.send(req, idempotent=req.method == "GET")
    assert resp.status == 200 and resp.json() == {"ok": True}
    assert len(script.requests) == 2
    assert clock.sleeps == [pytest.approx(expected_sleep)]


@pytest.mark.parametrize(("req", "idempotent", "outcome"), [
    (GET, True, 200),
    (POST, False, AmbiguousOutcome),
])
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_retried_only_when_idempotent(req: HttpRequest, idempotent: bool, outcome: Any,
                                          status: int) -> None:
    script = Script(httpx.Response(status, json={"error": {"code": "X", "message": "down"}}), OK)
    with transport(script) as t:
        if outcome == 200:
            assert t.send(req, idempotent=idempotent).status == 200
            assert len(script.requests) == 2
        else:
            with pytest.raises(AmbiguousOutcome) as info:
                t.send(req, idempotent=idempotent)
            assert len(script.requests) == 1
            assert info.value.status == status
            assert info.value.response is not None
            assert "X: down" in str(info.value)
            assert isinstance(info.value, HTTPError)


CONNECT = [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"),
           httpx.PoolTimeout("pool")]
AFTER_SEND = [httpx.ReadTimeout("read"), httpx.ReadError("reset"), httpx.WriteError("pipe"),
              httpx.WriteTimeout("w"), httpx.RemoteProtocolError("Server disconnected")]


@pytest.mark.parametrize("exc", CONNECT)
def test_connect_errors_are_retried_even_for_post(exc: Exception) -> None:
    script = Script(exc, httpx.Response(201))
    with transport(script) as t:
        assert t.send(POST, idempotent=False).status == 201
    assert len(script.requests) == 2


@pytest.mark.parametrize("exc", AFTER_SEND)
def test_errors_after_sending_are_ambiguous_for_post(exc: Exception) -> None:
    script = Script(exc, OK)
    with transport(script) as t, pytest.raises(AmbiguousOutcome) as info:
        t.send(POST, idempotent=False)
    assert len(script.requests) == 1
    assert info.value.status is None
    assert "may have taken effect" in str(info.value)


@pytest.mark.parametrize("exc", AFTER_SEND)
def test_errors_after_sending_are_retried_for_get(exc: Exception) -> None:
    script = Script(exc, OK)
    with transport(script) as t:
        assert t.send(GET, idempotent=True).status == 200
    assert len(script.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_4xx_returned_without_retry(status: int) -> None:
    clock = FakeClock()
    script = Script(httpx.Response(status, json={"message": "no"}))
    with transport(script, clock) as t:
        assert t.send(POST, idempotent=False).status == status
    assert len(script.requests) == 1 and clock.sleeps == []


@pytest.mark.parametrize(("steps", "req", "status"), [
    ([httpx.Response(429)] * 3, POST, 429),
    ([httpx.Response(503)] * 3, GET, 503),
    ([httpx.ConnectError("refused")] * 3, POST, None),
])
def test_retries_exhausted(steps: list[Any], req: HttpRequest, status: int | None) -> None:
    clock = FakeClock()
    script = Script(*steps)
    policy = RetryPolicy(max_attempts=3, jitter=False)
    with transport(script, clock, retry=policy) as t, pytest.raises(RetriesExhausted) as info:
        t.send(req, idempotent=req.method == "GET")
    assert info.value.status == status
    assert "gave up after 3 attempts" in str(info.value)
    assert clock.sleeps == [0.5, 1.0]  # exponential, no sleep after the last attempt


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(jitter=False, max_delay=30)
    assert [policy.delay(n) for n in (1, 2, 3, 7, 100)] == [0.5, 1.0, 2.0, 30.0, 30.0]


@pytest.mark.parametrize(("value", "expected"), [
    ("5", 5.0), (" 0 ", 0.0), ("-3", 0.0), ("nan", None), ("later", None),
    ("Thu, 01 Jan 1970 00:01:40 GMT", 40.0),
    ("Thu, 01 Jan 1970 00:01:40 -0000", 40.0),  # "no zone information": still UTC
])
def test_parse_retry_after(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, now=60.0) == expected


@pytest.mark.parametrize("idempotent", [True, False])
@pytest.mark.parametrize("content", [lambda: b"x" * 11, lambda: iter([b"x" * 6, b"x" * 6])],
                         ids=["content-length", "streamed"])
def test_oversized_body_is_refused(idempotent: bool, content: Callable[[], Any]) -> None:
    script = Script(httpx.Response(200, content=content()))
    expected = ResponseTooLarge if idempotent else AmbiguousOutcome
    with transport(script, max_body=10) as t, pytest.raises(expected, match="larger than 10"):
        t.send(GET if idempotent else POST, idempotent=idempotent)


def test_body_at_the_bound_is_accepted() -> None:
    with transport(Script(httpx.Response(200, content=b"x" * 10)), max_body=10) as t:
        assert t.send(GET, idempotent=True).body == b"x" * 10


def test_request_shape_and_timeouts() -> None:
    script = Script(OK, OK)
    req = HttpRequest("GET", "https://api.example.com/o", params=[("ids", "a,b"), ("x", "1")],
                      headers={"x-amz-access-token": "tok"})
    with transport(script, connect_timeout=2.0, read_timeout=9.0) as t:
        t.send(req, idempotent=True)
        t.send(HttpRequest("PUT", "https://api.example.com/o", json=None), idempotent=False)
    sent, null = script.requests
    assert str(sent.url) == "https://api.example.com/o?ids=a%2Cb&x=1"
    assert sent.headers["x-amz-access-token"] == "tok"
    assert sent.extensions["timeout"] == {"connect": 2.0, "read": 9.0, "write": 9.0,
                                          "pool": 9.0}
    assert null.content == b"null" and null.headers["content-type"] == "application/json"


@pytest.mark.parametrize(("params", "query"), [
    ((), "X-Amz-Signature=a%2Fb"),
    ([("part", "1")], "X-Amz-Signature=a%2Fb&part=1"),
])
def test_url_query_is_kept(params: list[tuple[str, str]], query: str) -> None:
    script = Script(OK)
    with transport(script) as t:
        t.send(HttpRequest("GET", "https://s3.example.com/doc?X-Amz-Signature=a%2Fb",
                           params=params), idempotent=True)
    assert script.requests[0].url.query.decode() == query


@pytest.mark.parametrize("body", [{"x": object()}, {"x": float("nan")}])
def test_unencodable_body(body: Any) -> None:
    script = Script(OK)
    with transport(script) as t, pytest.raises(HTTPError, match="cannot build request"):
        t.send(HttpRequest("POST", "https://api.example.com/x", json=body), idempotent=False)
    assert script.requests == []


def test_json_and_content_are_exclusive() -> None:
    with pytest.raises(ConnectorError, match="not both"):
        HttpRequest("POST", "https://x", json={}, content=b"<xml/>")


@pytest.mark.parametrize("url", ["ftp://example.com/x", "https://[::1/x"])
def test_unsendable_request_is_an_http_error(url: str) -> None:
    # a real (unmocked) client: the scheme is refused before any connection is made
    with Transport(new_client()) as t, pytest.raises(HTTPError, match="cannot send"):
        t.send(HttpRequest("GET", url), idempotent=True)


def test_messages_and_logs_are_redacted_and_skip_queries(
        caplog: pytest.LogCaptureFixture) -> None:
    script = Script(httpx.ReadTimeout("read"))
    req = HttpRequest("POST", "https://user:pw@api.example.com/s3cr3t/x?token=qq")
    def redact(text: str) -> str:
        return text.replace("s3cr3t", "***")

    with (caplog.at_level(logging.DEBUG, logger="connector.transport.http"),
          transport(script, redact=redact) as t, pytest.raises(AmbiguousOutcome) as info):
        t.send(req, idempotent=False)
    text = str(info.value) + caplog.text
    assert "https://api.example.com/***/x" in str(info.value)
    assert "/***/x -> ReadTimeout" in caplog.text
    for secret in ("s3cr3t", "token", "qq", "pw"):
        assert secret not in text


# --- rate limiting -------------------------------------------------------------------------


def test_token_bucket_waits_the_right_time() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=0.5, burst=2, clock=clock)
    assert [bucket.reserve() for _ in range(4)] == [0.0, 0.0, 2.0, 4.0]
    clock.now += 3.0  # 1.5 tokens of the 2-token debt repaid
    assert bucket.reserve() == pytest.approx(3.0)


def test_rate_limiter_sleeps_per_operation() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"amazon": {"getOrder": RateLimit(rate=0.5, burst=1)}},
                          sleep=clock.sleep, clock=clock)
    for _ in range(3):
        limiter.acquire("amazon", "getOrder")
        limiter.acquire("amazon", "other")  # undeclared: not throttled
        limiter.acquire("vtex", "getOrder")
    assert clock.sleeps == [2.0, 2.0]


@pytest.mark.parametrize("value", [None, "", "abc", "0", "-1", "inf", "nan"])
def test_unusable_rate_headers_are_ignored(value: str | None) -> None:
    limiter = RateLimiter({"amazon": {"getOrder": RateLimit(0.5, 30)}})
    limiter.update_from_header("amazon", "getOrder", value)
    assert limiter.rate("amazon", "getOrder") == 0.5


def test_rate_limit_header_updates_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"amazon": {"getOrder": RateLimit(0.5, 1)}},
                          sleep=clock.sleep, clock=clock)
    script = Script(httpx.Response(200, headers={"x-amzn-RateLimit-Limit": "2.0"}),
                    httpx.Response(200, headers={"x-amzn-RateLimit-Limit": "0.0167"}))
    rate = ("x-amzn-RateLimit-Limit",)  # the Amazon mapping's rate_limit_headers
    req = HttpRequest("GET", "https://sp.example.com/orders", system="amazon",
                      operation="getOrder", rate_headers=rate)
    other = HttpRequest("GET", "https://sp.example.com/x", system="amazon", operation="getX",
                        rate_headers=rate)
    with transport(script, clock, limiter=limiter) as t:
        t.send(req, idempotent=True)
        t.send(other, idempotent=True)
    assert limiter.rate("amazon", "getOrder") == 2.0
    assert limiter.rate("amazon", "getX") == 0.0167  # learned from the header
    limiter.acquire("amazon", "getOrder")
    assert clock.sleeps == [0.5]


@pytest.mark.parametrize(("declared", "headers", "learned"), [
    ((), {"X-Acme-Rate": "2"}, None),  # a header the mapping does not declare is not read
    (("X-Acme-Rate",), {"X-Acme-Rate": "2"}, 2.0),
    (("x-acme-rate",), {"X-ACME-RATE": "2"}, 2.0),  # names match case-insensitively
    (("X-Acme-Rate", "X-Acme-Fallback"), {"X-Acme-Fallback": "3"}, 3.0),  # tried in order
    (("X-Acme-Rate", "X-Acme-Fallback"), {"X-Acme-Rate": "4", "X-Acme-Fallback": "3"}, 4.0),
    (("X-Acme-Rate",), {"x-amzn-RateLimit-Limit": "2"}, None),  # no vendor header built in
])
def test_rate_is_learned_from_the_declared_headers(
        declared: tuple[str, ...], headers: dict[str, str], learned: float | None) -> None:
    limiter = RateLimiter()
    req = HttpRequest("GET", "https://acme.example.com/x", system="acme", operation="op",
                      rate_headers=declared)
    with transport(Script(httpx.Response(200, headers=headers)), limiter=limiter) as t:
        t.send(req, idempotent=True)
    assert limiter.rate("acme", "op") == learned


def test_429_drains_the_bucket() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"amazon": {"op": RateLimit(0.5, 10)}}, sleep=clock.sleep, clock=clock)
    req = HttpRequest("GET", "https://sp.example.com/x", system="amazon", operation="op")
    with transport(Script(httpx.Response(429), OK), clock, limiter=limiter,
                   retry=RetryPolicy(jitter=False)) as t:
        t.send(req, idempotent=True)
    assert clock.sleeps == [0.5, 1.5]  # backoff, then the rest of one token's refill


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_invalid_bucket(rate: float, burst: int) -> None:
    with pytest.raises(ConnectorError, match="invalid rate limit"):
        TokenBucket(rate, burst)


# --- error messages ------------------------------------------------------------------------


def _resp(status: int, body: Any, ctype: str = "application/json") -> HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(status=status, headers={"content-type": ctype}, body=raw)


@pytest.mark.parametrize(("response", "expected"), [
    # What holds for any server (each mapping's own error bodies: tests/test_declarations.py).
    (_resp(400, {"message": "Invalid product data: %1", "parameters": ["sku missing"]}),
     '{"message": "Invalid product data: %1", "parameters": ["sku missing"]}'),  # undeclared
    (_resp(500, {"unexpected": [1, 2]}), '{"unexpected": [1, 2]}'),
    (_resp(502, b"<!DOCTYPE html><html><head><title>502 Bad\n Gateway &amp; co</title>"
                b"</head><body>nginx</body></html>", "text/html"),
     "HTML error page (status 502): 502 Bad Gateway & co"),
    (_resp(500, b"<html><body>oops</body></html>", "application/octet-stream"),
     "HTML error page (status 500)"),
    (_resp(500, b'{"error": {"code": "X", "mess'), "malformed JSON response (status 500)"),
    (_resp(500, b"not json", "application/json"), "malformed JSON response (status 500)"),
    (_resp(423, b"Unable to acquire lock for key: acc_item_logistics_1_w\n", "text/plain"),
     "Unable to acquire lock for key: acc_item_logistics_1_w"),
    (_resp(404, b""), "empty response (status 404 Not Found)"),
    (_resp(599, b" "), "empty response (status 599)"),
])
def test_error_message(response: HttpResponse, expected: str) -> None:
    assert error_message(response) == expected


@pytest.mark.parametrize(("declared", "body", "expected"), [
    (("code",), {"code": "E1"}, "E1"),
    (("missing", "code"), {"code": "E1"}, "E1"),  # tried in order: the first with words
    (("errors[].text",), {"errors": [{"text": "a"}, {"text": ""}, {"text": "b"}]}, "a; b"),
    (("[top, nested[].text][]",), {"top": "t", "nested": [{"text": "n"}]}, "t; n"),
    (("abs(code)", "code"), {"code": "E1"}, "E1"),  # a type error is no words, not a failure
    (("count",), {"count": 3}, "3"),
    (("ok",), {"ok": True}, '{"ok": true}'),  # not words: the body itself
    (("placeholders(message, parameters)",),
     {"message": "%1 of %n", "parameters": {"0": "a", "n": 2}}, "a of 2"),
])
def test_declared_error_message(declared: tuple[str, ...], body: Any, expected: str) -> None:
    assert error_message(_resp(400, body), declared) == expected


def test_error_message_is_clipped() -> None:
    msg = error_message(_resp(400, {"message": "x" * 1000}), limit=50)
    assert len(msg) == 50 and msg.endswith("…")


@pytest.mark.parametrize(("message", "parameters", "expected"), [
    ("%1 and %2", ["a", "b"], "a and b"),
    ("%1 and %2", {"0": "a", "1": "b"}, "a and b"),  # PHP arrays with int keys
    ("%1 stays", [], "%1 stays"),
    ("100% sure", None, "100% sure"),
    ("%missing", {"other": 1}, "%missing"),
])
def test_fill_placeholders(message: str, parameters: Any, expected: str) -> None:
    assert fill_placeholders(message, parameters) == expected


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"a": 1}', {"a": 1}), (b"", None), (b"<html>", None), (b"true", True),
])
def test_response_json(body: bytes, expected: Any) -> None:
    assert HttpResponse(200, {}, body).json() == expected
