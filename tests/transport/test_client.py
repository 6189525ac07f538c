"""client: base URL, authentication (LWA token cached, refreshed once on 401/403), redaction."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
from mock_systems import (
    APP_KEY,
    APP_TOKEN,
    CLIENT_SECRET,
    LWA,
    REFRESH_TOKEN,
    World,
    amazon_order,
    harness,
)

from connector.transport.client import SystemClient
from connector.errors import HTTPError
from connector.fetch import get_order
from connector.transport.http import HttpResponse, Transport, new_client
from connector.model import Request
from connector.project import load_config, require
from connector.render import MASK, Redactor

GET_ORDER = Request(method="GET", path="/orders/2026-01-01/orders/{{ id }}", operation="getOrder")


@pytest.fixture
def world() -> World:
    return World(amazon={"902-1": amazon_order("902-1")})


def _token_calls(world: World) -> list[httpx.Request]:
    return [r for r in world.requests if r.url.host == LWA]


def test_lwa_token_fetched_once_and_cached(world: World, tmp_path: Path) -> None:
    with harness(world, tmp_path / "s.db") as h:
        client = h.clients["amazon"]
        for _ in range(3):
            assert client.send(GET_ORDER, {"id": "902-1"}).status == 200
    (token_call,) = _token_calls(world)
    assert token_call.method == "POST"
    assert str(token_call.url) == "https://api.amazon.com/auth/o2/token"
    assert token_call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "x-amz-access-token" not in token_call.headers
    assert dict(parse_qsl(token_call.content.decode())) == {
        "grant_type": "refresh_token",
        "refresh_token": REFRESH_TOKEN,
        "client_id": "amzn1.application-oa2-client.test",
        "client_secret": CLIENT_SECRET,
    }
    reads = world.calls("GET")
    assert len(reads) == 3
    assert {r.headers["x-amz-access-token"] for r in reads} == {"Atza|IwEBaccess-1"}
    assert all(
        str(r.url).startswith("https://sellingpartnerapi-na.amazon.com/orders/") for r in reads
    )
    assert all(r.headers["Accept"] == "application/json" for r in reads)


@pytest.mark.parametrize("refusal", [401, 403])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_expired_token_is_refreshed_once_and_the_call_repeated(
    world: World, tmp_path: Path, method: str, refusal: int
) -> None:
    world.refusal_status = refusal
    request = Request(
        method=method,
        path="/feeds/2021-06-30/documents"
        if method == "POST"
        else "/orders/2026-01-01/orders/902-1",
        json={"contentType": "text/xml"} if method == "POST" else None,
    )
    with harness(world, tmp_path / "s.db") as h:
        client = h.clients["amazon"]
        assert client.send(request, {}).status in (200, 201)
        world.expire_tokens()  # SP-API now refuses the cached token
        assert client.send(request, {}).status in (200, 201)
        assert client.send(request, {}).status in (200, 201)
    first, second = _token_calls(world)
    assert first.content == second.content  # the same refresh-token grant
    calls = [r for r in world.requests if r.url.host != LWA]
    assert len(calls) == 4  # the refused call was repeated once
    assert [r.headers["x-amz-access-token"] for r in calls] == [
        "Atza|IwEBaccess-1",
        "Atza|IwEBaccess-1",
        "Atza|IwEBaccess-2",
        "Atza|IwEBaccess-2",
    ]


def test_a_second_refusal_is_returned_not_looped(world: World, tmp_path: Path) -> None:
    world.accept_tokens = False  # every token is refused (e.g. a revoked application)
    with harness(world, tmp_path / "s.db") as h:
        client = h.clients["amazon"]
        response = client.send(GET_ORDER, {"id": "902-1"})
        assert response.status == 403
        assert "Access to requested resource is denied" in client.describe_error(response)
    assert len(_token_calls(world)) == 2
    assert len(world.calls("GET")) == 2


def test_token_request_failure_is_clear_and_secret_free(tmp_path: Path) -> None:
    # an LWA error that (unusually) echoes what it was sent
    refusal = httpx.Response(
        400,
        json={
            "error": "invalid_client",
            "error_description": f"Client authentication failed for {CLIENT_SECRET} / {REFRESH_TOKEN}",
        },
    )
    world = World(intercept=lambda request: refusal if request.url.host == LWA else None)
    with harness(world, tmp_path / "s.db") as h, pytest.raises(HTTPError) as caught:
        get_order(h.clients["amazon"], "902-1")
    message = str(caught.value)
    assert message.startswith(
        "amazon: token request failed: invalid_client: Client authentication failed"
    )
    assert CLIENT_SECRET not in message and REFRESH_TOKEN not in message
    assert MASK in message
    assert world.calls("GET") == []  # nothing sent without a token


def test_token_response_without_a_token(tmp_path: Path) -> None:
    no_token = httpx.Response(200, json={"token_type": "bearer"})
    world = World(intercept=lambda request: no_token if request.url.host == LWA else None)
    with (
        harness(world, tmp_path / "s.db") as h,
        pytest.raises(HTTPError, match="token response has no access_token"),
    ):
        h.clients["amazon"].send(GET_ORDER, {"id": "902-1"})


def test_token_request_5xx_is_retried(world: World, tmp_path: Path) -> None:
    answers = [httpx.Response(503, text="busy")]
    world.intercept = lambda request: answers.pop() if answers and request.url.host == LWA else None
    with harness(world, tmp_path / "s.db") as h:
        assert h.clients["amazon"].send(GET_ORDER, {"id": "902-1"}).status == 200
    assert len(_token_calls(world)) == 2


def test_errors_never_show_secrets_or_tokens(world: World, tmp_path: Path) -> None:
    with harness(world, tmp_path / "s.db") as h:
        amazon, vtex = h.clients["amazon"], h.clients["vtex"]
        amazon.send(GET_ORDER, {"id": "902-1"})  # fetches the access token
        token = world.tokens_issued[0]
        echo = httpx.Response(
            400,
            json={
                "errors": [
                    {
                        "code": "InvalidInput",
                        "message": f"bad header {token}",
                        "details": REFRESH_TOKEN,
                    }
                ]
            },
        )
        response = HttpResponse(400, {"content-type": "application/json"}, echo.content)
        message = amazon.describe_error(response)
        assert token not in message and REFRESH_TOKEN not in message
        assert message == f"amazon answered 400: InvalidInput: bad header {MASK} ({MASK})"
        vtex_echo = HttpResponse(
            403,
            {},
            f'{{"error": {{"code": "1", "message": "key {APP_KEY} token {APP_TOKEN}"}}}}'.encode(),
        )
        assert vtex.describe_error(vtex_echo) == f"vtex answered 403: 1: key {MASK} token {MASK}"


def test_vtex_headers_auth(world: World, tmp_path: Path) -> None:
    with harness(world, tmp_path / "s.db") as h:
        request = Request(method="GET", path="/api/oms/pvt/orders/{{ id }}")
        assert h.clients["vtex"].send(request, {"id": "nope"}).status == 404
    (call,) = world.requests
    assert str(call.url) == "https://shop.vtexcommercestable.com.br/api/oms/pvt/orders/nope"
    assert call.headers["X-VTEX-API-AppKey"] == APP_KEY
    assert call.headers["X-VTEX-API-AppToken"] == APP_TOKEN
    assert _token_calls(world) == []


BEARER = """\
system: shop
settings:
  base_url: {default: "https://shop.example.com/rest/"}
  token: {secret: true}
connection:
  base_url: "{{ settings.base_url }}"
  auth: {kind: bearer, headers: {Authorization: "Bearer {{ settings.token }}"}}
domains: {status: [new]}
normalise: {id: entity_id, status: state}
"""


def test_bearer_auth_is_not_refreshed(tmp_path: Path) -> None:
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "shop.yaml").write_text(BEARER)
    system = require(load_config(tmp_path)).systems["shop"]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401, json={"message": "The consumer isn't authorized."})

    with Transport(
        new_client(transport=httpx.MockTransport(handler)), sleep=lambda s: None
    ) as transport:
        client = SystemClient(
            system,
            {"base_url": "https://shop.example.com/rest/", "token": "tok-SECRET"},
            transport,
            Redactor(("tok-SECRET",)),
        )
        response = client.send(Request(method="GET", path="/V1/orders/{{ id }}"), {"id": 5})
    assert response.status == 401
    (call,) = seen
    assert str(call.url) == "https://shop.example.com/rest/V1/orders/5"  # base URL joined once
    assert call.headers["Authorization"] == "Bearer tok-SECRET"


def test_one_token_per_transport_and_account(world: World, tmp_path: Path) -> None:
    """Two flows (or partitions) on one seller build a client each over the process's one
    transport: one token is fetched, used by both, and masked by both redactors; other
    credentials at the same endpoint are another account with a token of their own."""
    with harness(world, tmp_path / "s.db") as h:
        system, settings = h.runtime.systems["amazon"], h.runtime.system_settings["amazon"]
        first = h.clients["amazon"]
        second = SystemClient(system, settings, h.transport, h.runtime.redact)
        other = SystemClient(system, {**settings, "refresh_token": "Atzr|another-seller"},
                             h.transport, h.runtime.redact)
        assert first.send(GET_ORDER, {"id": "902-1"}).status == 200
        assert second.send(GET_ORDER, {"id": "902-1"}).status == 200
        assert len(_token_calls(world)) == 1
        token = world.tokens_issued[0]
        assert {r.headers["x-amz-access-token"] for r in world.calls("GET")} == {token}
        assert token not in second.redact(f"echoed {token}")
        with pytest.raises(HTTPError, match="invalid_grant"):  # its own grant, refused here
            other.send(GET_ORDER, {"id": "902-1"})
        assert len(_token_calls(world)) == 2
