"""The sandbox's fault switches themselves, seen from a plain HTTP client.

Each switch must fail the way its real counterpart does, and act (or not) as it says: the
engine tests rely on "the server acted, the client never heard" being exactly that.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connector.sandbox import Sandbox
from connector.sandbox.server import Request

CANCEL = "/api/oms/pvt/orders/AMZ-111-0000001-0000003-01/cancel"  # payment-approved: one step
ORDER = "AMZ-111-0000001-0000003-01"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as box:
        yield box
    assert box.errors == []


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def vtex_post(sandbox: Sandbox, http: httpx.Client, path: str = CANCEL,
              timeout: float = 5.0) -> httpx.Response:
    settings = sandbox.settings()["vtex"]
    return http.post(settings["base_url"] + path, json={"reason": "test"}, timeout=timeout,
                     headers={"X-VTEX-API-AppKey": settings["app_key"],
                              "X-VTEX-API-AppToken": settings["app_token"]})


def vtex_status(sandbox: Sandbox) -> str:
    return str(sandbox.vtex.orders[ORDER]["status"])


def amazon_get(sandbox: Sandbox, http: httpx.Client, path: str) -> httpx.Response:
    settings = sandbox.settings()["amazon"]
    token = http.post(settings["token_url"], data={
        "grant_type": "refresh_token", "refresh_token": settings["refresh_token"],
        "client_id": settings["client_id"], "client_secret": settings["client_secret"]}
    ).json()["access_token"]
    return http.get(settings["base_url"] + path, headers={"x-amz-access-token": token})


def wait_for(check: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for the sandbox"
        time.sleep(0.02)


def test_delay_after_acting_times_the_client_out_with_the_effect_there(
        sandbox: Sandbox, http: httpx.Client) -> None:
    sandbox.faults.delay_next("vtex", "POST", r"/cancel$", 0.6)
    with pytest.raises(httpx.ReadTimeout):
        vtex_post(sandbox, http, timeout=0.2)
    assert vtex_status(sandbox) == "canceled"


def test_delay_before_acting_brings_the_effect_late(sandbox: Sandbox,
                                                     http: httpx.Client) -> None:
    sandbox.faults.delay_next("vtex", "POST", r"/cancel$", 0.5, act=False)
    with pytest.raises(httpx.ReadTimeout):
        vtex_post(sandbox, http, timeout=0.2)
    assert vtex_status(sandbox) == "payment-approved"
    wait_for(lambda: vtex_status(sandbox) == "canceled")


def test_drop_without_acting_loses_the_request(sandbox: Sandbox, http: httpx.Client) -> None:
    sandbox.faults.drop_next("vtex", "POST", r"/cancel$", act=False)
    with pytest.raises(httpx.RemoteProtocolError):
        vtex_post(sandbox, http)
    assert vtex_status(sandbox) == "payment-approved"
    assert sandbox.faults.triggered[-1][0] == "drop"


def test_truncated_json_after_acting(sandbox: Sandbox, http: httpx.Client) -> None:
    sandbox.faults.truncate_next("vtex", "POST", r"/cancel$")
    response = vtex_post(sandbox, http)
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "application/json")
    with pytest.raises(ValueError):
        response.json()
    assert vtex_status(sandbox) == "canceled"


def test_truncated_on_the_wire_is_an_incomplete_read(sandbox: Sandbox,
                                                     http: httpx.Client) -> None:
    sandbox.faults.truncate_next("vtex", "POST", r"/cancel$", wire=True)
    with pytest.raises(httpx.RemoteProtocolError):
        vtex_post(sandbox, http)
    assert vtex_status(sandbox) == "canceled"


def test_malformed_body_keeps_the_status(sandbox: Sandbox, http: httpx.Client) -> None:
    sandbox.faults.malformed_next("amazon", "GET", r"^/orders/2026-01-01/orders$")
    response = amazon_get(sandbox, http, "/orders/2026-01-01/orders/111-0000001-0000001")
    assert response.status_code == 200  # not the listing: untouched
    sandbox.faults.clear()
    sandbox.faults.malformed_next("amazon", "GET", r"^/orders/2026-01-01/orders/", body=b"{oops")
    response = amazon_get(sandbox, http, "/orders/2026-01-01/orders/111-0000001-0000001")
    assert (response.status_code, response.content) == (200, b"{oops")


def test_html_error_page_does_not_act(sandbox: Sandbox, http: httpx.Client) -> None:
    sandbox.faults.html_next("vtex", "POST", r"/cancel$", 503)
    response = vtex_post(sandbox, http)
    assert response.status_code == 503
    assert response.headers["content-type"] == "text/html"
    assert b"<html>" in response.content and b"503" in response.content
    assert vtex_status(sandbox) == "payment-approved"


def test_hooks_run_before_and_after_the_simulator(sandbox: Sandbox,
                                                  http: httpx.Client) -> None:
    seen: list[tuple[str, str]] = []

    def before(request: Request) -> None:
        seen.append(("before", vtex_status(sandbox)))
        sandbox.add_vtex_order("111-0000001-0000003", "invoiced")  # invoiced meanwhile

    def after(request: Request) -> None:
        seen.append(("after", request.path))

    sandbox.faults.on_next("vtex", "POST", r"/cancel$", before)
    sandbox.faults.on_next("vtex", "POST", r"/cancel$", after, after=True)
    response = vtex_post(sandbox, http)
    assert response.status_code == 400 and "OrderNotCancelable" in response.text
    assert seen == [("before", "payment-approved"), ("after", CANCEL)]
    assert vtex_status(sandbox) == "invoiced"


def test_expire_tokens_refuses_the_next_call(sandbox: Sandbox, http: httpx.Client) -> None:
    settings = sandbox.settings()["amazon"]
    token = http.post(settings["token_url"], data={
        "grant_type": "refresh_token", "refresh_token": settings["refresh_token"],
        "client_id": settings["client_id"], "client_secret": settings["client_secret"]}
    ).json()["access_token"]
    url = settings["base_url"] + "/orders/2026-01-01/orders/111-0000001-0000001"
    assert http.get(url, headers={"x-amz-access-token": token}).status_code == 200
    sandbox.expire_tokens()
    refused = http.get(url, headers={"x-amz-access-token": token})
    assert refused.status_code == 403 and "expired" in refused.text


def test_feed_fatal_switch_applies_nothing(sandbox: Sandbox) -> None:
    feeds = sandbox.amazon.feeds_api
    feeds.fatal_next()
    document = feeds.documents.setdefault("doc-1", {"contentType": "text/xml"})
    document["content"] = (
        b"<AmazonEnvelope><MessageType>OrderAcknowledgement</MessageType><Message>"
        b"<MessageID>1</MessageID><OrderAcknowledgement><AmazonOrderID>113-0000003-0000002"
        b"</AmazonOrderID><StatusCode>Failure</StatusCode></OrderAcknowledgement></Message>"
        b"</AmazonEnvelope>")
    for feed_id in ("f1", "f2"):
        feeds.feeds[feed_id] = {"feedId": feed_id, "feedType": "POST_ORDER_ACKNOWLEDGEMENT_DATA",
                                "processingStatus": "IN_QUEUE"}
        feeds._inputs[feed_id], feeds._polls[feed_id] = "doc-1", 0
        feeds._pending.append(feed_id)
        feeds.process_pending()
    assert [feeds.feeds[f]["processingStatus"] for f in ("f1", "f2")] == ["FATAL", "DONE"]
    assert sandbox.amazon.acknowledgements["113-0000003-0000002"] == ["Failure"]


def test_random_faults_are_seeded(sandbox: Sandbox, http: httpx.Client) -> None:
    def draw(seed: int) -> list[str]:
        sandbox.faults.triggered.clear()
        sandbox.faults.randomly(0.5, seed=seed, kinds=("429", "503", "html"))
        for _ in range(40):
            vtex_post(sandbox, http, "/api/oms/pvt/orders/AMZ-none-01/cancel")
        sandbox.faults.clear()
        return [name for name, _ in sandbox.faults.triggered]

    first = draw(7)
    assert first == draw(7) and first != draw(8)
    assert 5 < len(first) < 35 and set(first) <= {"random:429", "random:503", "random:html"}
    with pytest.raises(ValueError):
        sandbox.faults.randomly(0.1, kinds=("meteor",))
    sandbox.faults.randomly(1.0, systems=("amazon",))  # other systems untouched
    assert vtex_post(sandbox, http, "/api/oms/pvt/orders/AMZ-none-01/cancel").status_code == 404
