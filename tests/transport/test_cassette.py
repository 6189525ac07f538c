"""record: `--record` cassettes hold no secret and replay offline (vcrpy record mode none)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest
import vcr
import yaml
from mock_systems import (
    APP_KEY,
    APP_TOKEN,
    CLIENT_SECRET,
    NOW,
    REFRESH_TOKEN,
    World,
    amazon_order,
    harness,
    vtex_order,
)
from mock_systems import runtime as mock_runtime

from connector.transport.client import SystemClient
from connector.engine import FlowRun, RunOptions
from connector.transport.http import HttpRequest, Transport, new_client
from connector.transport.cassette import recorder, scrub_request, scrub_text
from connector.render import MASK, Redactor
from connector.state.store import open_store

ACCESS_TOKEN = "Atza|IwEBaccess-token-SECRET5"
BEARER = "commerce-integration-token-SECRET6"
SIGNATURE = "d0c5e1a9f00dfeedsignatureSECRET7"
CREDENTIAL = "AKIAEXAMPLESECRET8/20260302/us-east-1/s3/aws4_request"
SETTING_SECRET = "pa$$|word+SECRET9/with=odd&chars"
SECRETS = [
    REFRESH_TOKEN,
    CLIENT_SECRET,
    APP_KEY,
    APP_TOKEN,
    ACCESS_TOKEN,
    BEARER,
    SIGNATURE,
    CREDENTIAL.split("/")[0],
    SETTING_SECRET,
]
# The secret headers by name are what the engine fixtures' mappings' auth sections render
# from a token or secret (x-amz-access-token, x-vtex-api-appkey/-apptoken), as a run's are.
REDACT = Redactor().extended(
    [REFRESH_TOKEN, CLIENT_SECRET, APP_KEY, APP_TOKEN, BEARER, SETTING_SECRET]
).with_headers(mock_runtime().redact.headers).with_query_params(
    mock_runtime().redact.query_params)


def handler(request: httpx.Request) -> httpx.Response:
    """Answers that echo secrets back, as real systems sometimes do."""
    host, path = request.url.host, request.url.path
    if host == "api.amazon.com":
        return httpx.Response(
            200,
            json={
                "access_token": ACCESS_TOKEN,
                "refresh_token": REFRESH_TOKEN,
                "token_type": "bearer",
                "expires_in": 3600,
            },
        )
    if host.endswith("vtexcommercestable.com.br"):
        return httpx.Response(
            401,
            json={
                "error": {
                    "code": "1",
                    "message": f"app key {APP_KEY} is not enabled",
                    "exception": None,
                }
            },
            headers={"X-VTEX-API-AppToken": APP_TOKEN},
        )
    if path == "/oauth/token":
        return httpx.Response(
            200,
            text=f"access_token={BEARER}&client_secret={CLIENT_SECRET}&expires_in=3600",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Set-Cookie": f"session={BEARER}",
            },
        )
    if host.endswith("amazonaws.com"):
        return httpx.Response(200, headers={"Location": str(request.url)})
    return httpx.Response(200, json={"orders": [], "echo": dict(request.headers)})


def exchanges() -> list[HttpRequest]:
    return [
        HttpRequest(
            "POST",
            "https://api.amazon.com/auth/o2/token",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            content=(
                "grant_type=refresh_token&refresh_token="
                + quote_plus(REFRESH_TOKEN)
                + "&client_id=amzn1.application-oa2-client.test&client_secret="
                + quote_plus(CLIENT_SECRET)
            ).encode(),
        ),
        HttpRequest(
            "GET",
            "https://sellingpartnerapi-na.amazon.com/orders/2026-01-01/orders",
            params=(("marketplaceIds", "ATVPDKIKX0DER"),),
            headers={"x-amz-access-token": ACCESS_TOKEN, "Accept": "application/json"},
        ),
        HttpRequest(
            "GET",
            "https://shop.vtexcommercestable.com.br/api/oms/pvt/orders/AMZ-1-01",
            headers={"X-VTEX-API-AppKey": APP_KEY, "X-VTEX-API-AppToken": APP_TOKEN},
        ),
        HttpRequest(
            "PUT",
            "https://tortuga-prod-na.s3-external-1.amazonaws.com/doc-1"
            "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
            + quote(CREDENTIAL, safe="")
            + "&X-Amz-Signature="
            + SIGNATURE,
            headers={"Content-Type": "text/xml"},
            content=b"<AmazonEnvelope/>",
        ),
        HttpRequest(
            "POST",
            "https://commerce.example.com/oauth/token",
            json={
                "client_id": "integration",
                "client_secret": CLIENT_SECRET,
                "refresh_token": REFRESH_TOKEN,
                "grant_type": "refresh_token",
            },
        ),
        HttpRequest(
            "POST",
            "https://commerce.example.com/rest/V1/orders",
            headers={"Authorization": f"Bearer {BEARER}"},
            json={"entity": {"note": f"password {SETTING_SECRET}"}},
        ),
        HttpRequest(
            "POST",
            "https://commerce.example.com/rest/V1/login",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            content=("username=shop&password=" + quote_plus(SETTING_SECRET)).encode(),
        ),
    ]


def replay_transport() -> Transport:
    def offline(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"replay reached the transport: {request.method} {request.url}")

    return Transport(new_client(transport=httpx.MockTransport(offline)), sleep=lambda s: None)


@pytest.fixture
def cassette(tmp_path: Path) -> Path:
    path = tmp_path / "cassettes" / "run.yaml"
    with (
        Transport(
            new_client(transport=httpx.MockTransport(handler)), sleep=lambda s: None
        ) as transport,
        recorder(path, REDACT),
    ):
        for request in exchanges():
            transport.send(request, idempotent=True)
    return path


def _variants(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


def test_no_secret_reaches_the_cassette(cassette: Path) -> None:
    text = cassette.read_text()
    for secret in SECRETS:
        for form in _variants(secret):
            assert form not in text, f"{secret!r} recorded as {form!r}"
    assert MASK in text


def test_the_runs_secret_headers_come_from_the_mappings() -> None:
    assert REDACT.headers == ("x-amz-access-token", "x-vtex-api-appkey", "x-vtex-api-apptoken")


def test_what_is_masked(cassette: Path) -> None:
    data = yaml.safe_load(cassette.read_text())
    interactions = data["interactions"]
    assert len(interactions) == len(exchanges())
    token, listing, vtex, upload, oauth_json, order, login = (i["request"] for i in interactions)
    assert f"refresh_token={MASK}" in token["body"] and f"client_secret={MASK}" in token["body"]
    assert "grant_type=refresh_token" in token["body"]  # a value named like a field is kept
    assert listing["headers"]["x-amz-access-token"] == [MASK]
    assert listing["headers"]["accept"] == ["application/json"]  # other headers kept
    assert vtex["headers"]["x-vtex-api-appkey"] == [MASK] and vtex["headers"][
        "x-vtex-api-apptoken"
    ] == [MASK]
    assert (
        f"X-Amz-Signature={MASK}" in upload["uri"] and f"X-Amz-Credential={MASK}" in upload["uri"]
    )
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in upload["uri"]
    body = json.loads(oauth_json["body"])
    assert body == {
        "client_id": MASK,
        "client_secret": MASK,
        "refresh_token": MASK,
        "grant_type": "refresh_token",
    }
    assert order["headers"]["authorization"] == [MASK]
    assert json.loads(order["body"]) == {"entity": {"note": f"password {MASK}"}}
    assert login["body"] == f"username=shop&password={MASK}"
    responses = [i["response"] for i in interactions]
    lwa = json.loads(responses[0]["body"]["string"])
    assert (
        lwa["access_token"] == MASK and lwa["refresh_token"] == MASK and lwa["expires_in"] == 3600
    )
    assert responses[2]["headers"]["x-vtex-api-apptoken"] == [MASK]
    assert responses[3]["headers"]["location"][0].endswith(f"X-Amz-Signature={MASK}")


def test_cassette_replays_offline(cassette: Path) -> None:
    replay = vcr.VCR(
        record_mode="none", before_record_request=lambda request: scrub_request(request, REDACT)
    )
    with replay_transport() as transport, replay.use_cassette(str(cassette)) as played:
        statuses = [transport.send(request, idempotent=True).status for request in exchanges()]
        assert played.all_played
    assert statuses == [200, 200, 401, 200, 200, 200, 200]


def test_plain_vcr_replays_a_recorded_flow_run(tmp_path: Path) -> None:
    world = World()
    world.amazon["902-1"] = amazon_order("902-1", "CANCELLED", cancelled_by="AMAZON")
    world.vtex["AMZ-902-1-01"] = vtex_order("AMZ-902-1-01", "handling")
    path = tmp_path / "run.yaml"
    with harness(world, tmp_path / "record.db") as h, recorder(path, h.runtime.redact):
        recorded = FlowRun(
            h.runtime,
            h.clients,
            h.store,
            RunOptions(now=lambda: NOW, sleep=lambda s: None, concurrency=1),
        ).run()
    assert recorded.done == 2
    text = path.read_text()
    for secret in (REFRESH_TOKEN, CLIENT_SECRET, APP_KEY, APP_TOKEN, *world.tokens_issued):
        for form in _variants(secret):
            assert form not in text

    # Offline, with a fresh state: the same run, every answer from the cassette.
    runtime = mock_runtime()
    with (
        replay_transport() as transport,
        open_store("sqlite:///" + str(tmp_path / "replay.db")) as store,
        vcr.VCR(record_mode="none").use_cassette(str(path)) as played,
    ):
        clients = {
            name: SystemClient(system, runtime.system_settings[name], transport, runtime.redact)
            for name, system in runtime.systems.items()
        }
        replayed = FlowRun(
            runtime,
            clients,
            store,
            RunOptions(now=lambda: NOW, sleep=lambda s: None, concurrency=1),
        ).run()
        assert played.all_played
    assert (replayed.done, replayed.failed, replayed.errors) == (2, 0, [])


def test_recording_overwrites_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("old: cassette\n")
    with (
        Transport(
            new_client(transport=httpx.MockTransport(handler)), sleep=lambda s: None
        ) as transport,
        recorder(path, REDACT),
    ):
        transport.send(exchanges()[1], idempotent=True)
    assert len(yaml.safe_load(path.read_text())["interactions"]) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"access_token": "abc", "other": "x"}', f'{{"access_token": "{MASK}", "other": "x"}}'),
        ('{"token":"abc"}', f'{{"token":"{MASK}"}}'),
        (
            "refresh_token=abc&grant_type=refresh_token",
            f"refresh_token={MASK}&grant_type=refresh_token",
        ),
        ("a=1&client_secret=abc", f"a=1&client_secret={MASK}"),
        (
            "https://x/y?X-Amz-Security-Token=abc&b=2",
            f"https://x/y?X-Amz-Security-Token={MASK}&b=2",
        ),
        ("https://x/y?access_token=abc&b=2", f"https://x/y?access_token={MASK}&b=2"),
        ("https://x/y?b=2&token=abc", f"https://x/y?b=2&token={MASK}"),
        ("mytoken=abc", "mytoken=abc"),
        ("nothing secret", "nothing secret"),
    ],
)
def test_scrub_text(text: str, expected: str) -> None:
    # X-Amz-Security-Token as a mapping declares it (connection.secret_query_params).
    assert scrub_text(text, Redactor().with_query_params(["X-Amz-Security-Token"])) == expected


def test_query_parameters_are_masked_by_name_only_when_declared() -> None:
    url = "https://x/y?X-Signature=abc&b=2"
    assert scrub_text(url, Redactor()) == url
    assert scrub_text(url, Redactor().with_query_params(["X-Signature"])) == \
        f"https://x/y?X-Signature={MASK}&b=2"
    assert mock_runtime().redact.query_params == (
        "X-Amz-Credential", "X-Amz-Security-Token", "X-Amz-Signature")
