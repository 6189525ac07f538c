"""execute: an action's steps run exactly once through the ledger, outputs feed later steps,
polls, expected statuses, and ambiguous outcomes left pending."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mock_systems import APP_KEY, S3, Harness, World, amazon_order, harness, vtex_order

from connector.errors import ConnectorError
from connector.evaluate import rule_context
from connector import observe
from connector.execute import (
    ALREADY, DEFERRED, DONE, FAILED, PARKED, UNKNOWN, RetryAcrossRuns, execute,
)
from connector.model import ActionCall
from connector.normalise import canonical, normalise
from connector.plan import Planned, plan_call, plan_order
from connector.render import MASK

NOW = "2026-03-02T12:00:00Z"
VTEX_ID = "AMZ-902-1-01"


@pytest.fixture
def world() -> World:
    return World(
        amazon={"902-1": amazon_order("902-1", "UNSHIPPED", cancelled_by=None)},
        vtex={VTEX_ID: vtex_order(VTEX_ID, "payment-approved")},
    )


@pytest.fixture
def h(world: World, tmp_path: Path) -> Iterator[Harness]:
    with harness(world, tmp_path / "s.db") as h:
        yield h


def vtex_cancel(h: Harness, world: World) -> Planned:
    """The planned VTEX cancel of Amazon order 902-1 (cancelled by the seller)."""
    order = canonical(
        {
            "id": "902-1",
            "status": "CANCELLED",
            "actor": "seller",
            "fulfilment": "merchant",
            "updated_at": "2026-03-02T10:00:00Z",
        },
        "amazon",
    )
    target = normalise(h.runtime.target, world.vtex[VTEX_ID])
    (planned,), _ = plan_order(h.runtime, order, target, {}, NOW)
    assert planned.name == "vtex.cancel_order" and planned.runnable
    return planned


def amazon_cancel(h: Harness, world: World, **args: Any) -> Planned:
    """The feed-based Amazon cancel of order 902-1 (UNSHIPPED)."""
    order = normalise(h.runtime.source, world.amazon["902-1"])
    context = rule_context(order, None, h.runtime.settings, h.runtime.public_settings, {}, NOW)
    rule = h.runtime.flow.rules[0]
    planned = plan_call(
        h.runtime, rule, ActionCall("amazon.cancel_order", args), context, order, None, {}, NOW
    )
    assert planned.runnable
    return planned


def cancels(world: World) -> list[httpx.Request]:
    return world.calls("POST", "/cancel")


# --- exactly once ------------------------------------------------------------------------------


def test_done_key_is_never_sent_twice(h: Harness, world: World) -> None:
    planned = vtex_cancel(h, world)
    first = execute(h.clients["vtex"], planned, h.store)
    assert first.status == DONE
    assert first.outputs == {"receipt": f"receipt-{VTEX_ID}-canceled"}
    (call,) = cancels(world)
    assert call.url.path == f"/api/oms/pvt/orders/{VTEX_ID}/cancel"
    assert json.loads(call.content) == {"reason": "Cancelled on Amazon by seller"}
    entry = h.store.entry(planned.key)
    assert entry is not None and entry.status == "done" and entry.order_id == "902-1"
    assert entry.action == "vtex.cancel_order" and entry.outputs == first.outputs

    again = execute(h.clients["vtex"], planned, h.store)
    assert again.status == ALREADY
    assert again.outputs == first.outputs
    assert len(cancels(world)) == 1


def test_failed_then_retried_next_time(h: Harness, world: World) -> None:
    planned = vtex_cancel(h, world)
    world.cancel_answers[VTEX_ID] = (
        400,
        {
            "error": {
                "code": "1",
                "message": "Order with status payment-approved cannot be cancelled now",
                "exception": None,
            }
        },
    )
    failed = execute(h.clients["vtex"], planned, h.store)
    assert failed.status == FAILED
    assert failed.message == (
        "step cancel: vtex answered 400: 1: Order with status payment-approved "
        "cannot be cancelled now"
    )
    entry = h.store.entry(planned.key)
    assert entry is not None
    assert (entry.status, entry.attempts, entry.retryable, entry.error) == (
        "failed",
        1,
        False,
        failed.message,
    )

    del world.cancel_answers[VTEX_ID]
    sent = len(world.requests)
    too_soon = execute(h.clients["vtex"], planned, h.store)
    assert too_soon.status == DEFERRED and "next try after" in too_soon.message
    assert len(world.requests) == sent  # deferred: nothing sent
    retried = execute(h.clients["vtex"], planned, h.store,
                      now=datetime.now(timezone.utc) + timedelta(hours=1))
    assert retried.status == DONE
    entry = h.store.entry(planned.key)
    assert entry is not None and entry.status == "done" and entry.attempts == 1
    assert len(cancels(world)) == 2


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            403,
            {
                "error": {
                    "code": "OMS003",
                    "message": "Order status should be ready-for-handling to perform this action",
                    "exception": None,
                }
            },
            "vtex answered 403: OMS003: Order status should be ready-for-handling to perform this action",
        ),
        (
            404,
            {"error": {"code": "OMS004", "message": "Pedido não encontrado", "exception": None}},
            "vtex answered 404: OMS004: Pedido não encontrado",
        ),
        (
            400,
            {"error": {"code": "1", "message": f"bad key {APP_KEY}", "exception": None}},
            f"vtex answered 400: 1: bad key {MASK}",
        ),
        (204, None, "vtex answered 204: empty response (status 204 No Content)"),
    ],
)
def test_unexpected_status_fails_with_the_remote_message(
    h: Harness, world: World, status: int, body: Any, expected: str
) -> None:
    planned = vtex_cancel(h, world)
    world.cancel_answers[VTEX_ID] = (status, body)
    outcome = execute(h.clients["vtex"], planned, h.store)
    assert outcome.status == FAILED
    assert outcome.message == f"step cancel: {expected}"
    entry = h.store.entry(planned.key)
    assert entry is not None and entry.status == "failed" and entry.error == outcome.message
    assert APP_KEY not in (entry.error or "")
    assert len(cancels(world)) == 1  # a 4xx is not retried


def test_rate_limited_write_is_retried_then_done(h: Harness, world: World) -> None:
    planned = vtex_cancel(h, world)
    answers = [httpx.Response(429, headers={"Retry-After": "1"})]
    world.intercept = lambda request: (
        answers.pop() if answers and request.method == "POST" else None
    )
    assert execute(h.clients["vtex"], planned, h.store).status == DONE


def test_rate_limited_until_the_end_fails_retryably(h: Harness, world: World) -> None:
    planned = vtex_cancel(h, world)
    world.cancel_answers[VTEX_ID] = (429, {})
    outcome = execute(h.clients["vtex"], planned, h.store)
    assert outcome.status == FAILED
    assert "gave up after 5 attempts: 429 Too Many Requests" in outcome.message
    entry = h.store.entry(planned.key)
    assert entry is not None and entry.status == "failed" and entry.retryable


@pytest.mark.parametrize("status", [500, 502, 503])
def test_ambiguous_outcome_stays_pending(h: Harness, world: World, status: int) -> None:
    planned = vtex_cancel(h, world)
    world.cancel_answers[VTEX_ID] = (
        status,
        {"error": {"code": "1", "message": "Internal error", "exception": None}},
    )
    outcome = execute(h.clients["vtex"], planned, h.store)
    assert outcome.status == UNKNOWN
    assert "may have taken effect" in outcome.message
    assert len(cancels(world)) == 1  # a write answered 5xx is never resent
    entry = h.store.entry(planned.key)
    assert entry is not None and entry.status == "pending" and entry.attempts == 0
    assert h.store.pending_entries(planned.flow) == [entry]
    assert h.store.failed_entries(planned.flow) == []


def test_parked_action_is_not_sent(h: Harness, world: World) -> None:
    planned = vtex_cancel(h, world)
    h.store.begin(planned.key, flow=planned.flow, order_id="902-1", action=planned.name, summary="")
    h.store.park(planned.key, "a person decides")
    outcome = execute(h.clients["vtex"], planned, h.store)
    assert (outcome.status, outcome.message) == (PARKED, "a person decides")
    assert cancels(world) == []


def test_a_builtin_is_not_executed(h: Harness, world: World) -> None:
    target = normalise(h.runtime.target, vtex_order(VTEX_ID, "invoiced"))
    order = canonical({"id": "902-1", "status": "CANCELLED", "actor": "seller"}, "amazon")
    (report,), _ = plan_order(h.runtime, order, target, {}, NOW)
    with pytest.raises(ConnectorError, match="not an HTTP action"):
        execute(h.clients["vtex"], report, h.store)


# --- steps: outputs, url_from, polls ------------------------------------------------------------


def test_outputs_feed_later_steps_and_poll_until_done(h: Harness, world: World) -> None:
    sleeps: list[float] = []
    planned = amazon_cancel(h, world, reason="CustomerExchange")
    outcome = execute(h.clients["amazon"], planned, h.store, sleep=sleeps.append, poll_scale=0.5)
    assert outcome.status == DONE, outcome.message
    assert outcome.outputs == {
        "feedDocumentId": "amzn1.tortuga.4.na.doc-1",
        "url": f"https://{S3}/doc-1?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Signature=presigned-signature-1",
        "feedId": "feed-for-amzn1.tortuga.4.na.doc-1",
        "processingStatus": "DONE",
    }
    steps = [
        (r.method, r.url.host, r.url.path) for r in world.requests if r.url.host != "api.amazon.com"
    ]
    assert steps == [
        ("POST", "sellingpartnerapi-na.amazon.com", "/feeds/2021-06-30/documents"),
        ("PUT", S3, "/doc-1"),  # url_from: the presigned URL of the first step, query kept
        ("POST", "sellingpartnerapi-na.amazon.com", "/feeds/2021-06-30/feeds"),
        *[
            (
                "GET",
                "sellingpartnerapi-na.amazon.com",
                "/feeds/2021-06-30/feeds/feed-for-amzn1.tortuga.4.na.doc-1",
            )
        ]
        * 3,
    ]
    upload = world.requests[2]
    assert upload.url.params["X-Amz-Signature"] == "presigned-signature-1"
    assert upload.headers["Content-Type"] == "text/xml; charset=UTF-8"
    assert world.uploads["/doc-1"] == (
        b"<AmazonOrderID>902-1</AmazonOrderID><CancelReason>CustomerExchange</CancelReason>"
    )
    create_feed = json.loads(world.requests[3].content)
    assert create_feed == {
        "feedType": "POST_ORDER_ACKNOWLEDGEMENT_DATA",
        "inputFeedDocumentId": "amzn1.tortuga.4.na.doc-1",
    }
    assert sleeps == [15.0, 15.0]  # interval_seconds x poll_scale, between polls only


def test_a_poll_says_what_it_waits_for_before_it_sleeps(h: Harness, world: World) -> None:
    said: list[tuple[str, int]] = []
    stop = observe.subscribe(lambda event, f: said.append((f["step"], f["attempt"]))
                             if event == "step.poll_wait" else None)
    try:
        slept_after: list[int] = []
        execute(h.clients["amazon"], amazon_cancel(h, world, reason="CustomerExchange"), h.store,
                sleep=lambda seconds: slept_after.append(len(said)), poll_scale=0.5)
    finally:
        stop()
    assert slept_after == [1, 2]  # each sleep comes after its event
    assert [attempt for _, attempt in said] == [1, 2]


@pytest.mark.parametrize("final", ["FATAL", "CANCELLED"])
def test_poll_fail_if_fails_the_action(h: Harness, world: World, final: str) -> None:
    world.feed_statuses = ["IN_PROGRESS", final]
    planned = amazon_cancel(h, world)
    outcome = execute(h.clients["amazon"], planned, h.store, sleep=lambda s: None)
    assert outcome.status == FAILED
    assert outcome.message.startswith("step wait: ")
    assert f'"processingStatus": "{final}"' in outcome.message
    entry = h.store.entry(planned.key)
    assert entry is not None and entry.status == "failed" and not entry.retryable


def test_poll_that_never_finishes_fails_retryably(h: Harness, world: World) -> None:
    world.feed_statuses = ["IN_PROGRESS"]
    planned = amazon_cancel(h, world)
    outcome = execute(h.clients["amazon"], planned, h.store, sleep=lambda s: None)
    assert outcome.status == FAILED
    assert outcome.message == "step wait: still not finished after 5 polls"
    assert len(world.calls("GET", "/feeds/")) == 5
    entry = h.store.entry(planned.key)
    assert entry is not None and entry.retryable


def test_a_failed_step_stops_the_action(h: Harness, world: World) -> None:
    planned = amazon_cancel(h, world)
    refusal = httpx.Response(
        400, json={"errors": [{"code": "InvalidInput", "message": "Invalid feed document id"}]}
    )
    world.intercept = lambda request: (
        refusal if request.url.path == "/feeds/2021-06-30/feeds" else None
    )
    outcome = execute(h.clients["amazon"], planned, h.store, sleep=lambda s: None)
    assert outcome.status == FAILED
    assert (
        outcome.message
        == "step create_feed: amazon answered 400: InvalidInput: Invalid feed document id"
    )
    assert world.calls("GET", "/feeds/") == []


STEPS_MAPPING = """\
system: shop
settings:
  token: {secret: true}
connection:
  base_url: https://shop.example.com
  auth: {kind: bearer, headers: {Authorization: "Bearer {{ settings.token }}"}}
domains: {status: [new, closed]}
normalise: {id: entity_id, status: state}
actions:
  close:
    params:
      notify: {default: false}
    steps:
      - name: invoice
        method: POST
        path: "/V1/order/{{ order.id }}/invoice"
        json: {capture: true}
        outputs: {invoice_id: "@"}
      - name: notify
        when: {args.notify: true}
        method: POST
        path: "/V1/invoices/{{ steps.invoice.invoice_id }}/emails"
      - name: comment
        method: POST
        path: "/V1/orders/{{ order.id }}/comments"
        json:
          statusHistory:
            comment: "Invoice {{ steps.invoice.invoice_id }}"
            is_customer_notified: "{{ args.notify }}"
        expect: [200, 201]
"""

STEPS_RULES = """\
source: shop
target: other
rules:
  - id: close
    when: {status: new}
    then: [shop.close]
"""

OTHER_MAPPING = """\
system: other
connection: {base_url: https://other.example.com}
domains: {status: [x]}
normalise: {id: id, status: status}
"""


@pytest.mark.parametrize(
    ("notify", "paths"),
    [
        (False, ["/V1/order/5/invoice", "/V1/orders/5/comments"]),
        (True, ["/V1/order/5/invoice", "/V1/invoices/42/emails", "/V1/orders/5/comments"]),
    ],
)
def test_step_when_and_step_outputs(tmp_path: Path, notify: bool, paths: list[str]) -> None:
    from connector.transport.client import SystemClient
    from connector.transport.http import Transport, new_client
    from connector.plan import prepare
    from connector.project import load_config, require
    from connector.state.store import open_store

    (tmp_path / "mappings").mkdir()
    (tmp_path / "rules").mkdir()
    (tmp_path / "mappings" / "shop.yaml").write_text(STEPS_MAPPING)
    (tmp_path / "mappings" / "other.yaml").write_text(OTHER_MAPPING)
    (tmp_path / "rules" / "shop-to-other.yaml").write_text(STEPS_RULES)
    runtime = prepare(
        require(load_config(tmp_path)),
        "shop-to-other",
        environ={},
        system_overrides={"shop": {"token": "tok-SECRET"}},
    )
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=42 if request.url.path.endswith("/invoice") else True)

    order = canonical({"id": 5, "status": "new"}, "shop")
    context = rule_context(order, None, {}, {}, {}, NOW)
    planned = plan_call(
        runtime,
        runtime.flow.rules[0],
        ActionCall("shop.close", {"notify": notify}),
        context,
        order,
        None,
        {},
        NOW,
    )
    with (
        Transport(
            new_client(transport=httpx.MockTransport(handler)), sleep=lambda s: None
        ) as transport,
        open_store("sqlite:///" + str(tmp_path / "s.db")) as store,
    ):
        client = SystemClient(
            runtime.systems["shop"], runtime.system_settings["shop"], transport, runtime.redact
        )
        outcome = execute(client, planned, store)
    assert outcome.status == DONE, outcome.message
    assert [r.url.path for r in seen] == paths
    assert json.loads(seen[-1].content) == {
        "statusHistory": {"comment": "Invoice 42", "is_customer_notified": notify}
    }
    assert outcome.outputs == {"invoice_id": 42}


def test_an_action_that_keeps_failing_is_parked_once(h: Harness, world: World) -> None:
    planned = vtex_cancel(h, world)
    world.cancel_answers[VTEX_ID] = (400, {"error": {"code": "1", "message": "refused", "exception": None}})
    policy = RetryAcrossRuns(max_attempts=3, backoff_seconds=60)
    moment = datetime.now(timezone.utc)
    statuses = []
    for hour in range(6):
        outcome = execute(h.clients["vtex"], planned, h.store, retry=policy,
                          now=moment + timedelta(hours=hour))
        statuses.append((outcome.status, outcome.fresh))
    assert statuses == [(FAILED, False)] * 3 + [(PARKED, True), (PARKED, False), (PARKED, False)]
    entry = h.store.entry(planned.key)
    assert entry is not None and entry.status == "parked" and "failed 3 times" in (entry.error or "")
    assert len(cancels(world)) == 3
