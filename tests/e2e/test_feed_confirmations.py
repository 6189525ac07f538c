"""Shipment confirmations through the order-fulfillment feed (issue 9).

adobe-commerce-to-amazon confirms Commerce shipments on Amazon with confirmShipment per order
(`shipment_confirmation: call`, the default) or, with `shipment_confirmation: feed`, with one
POST_ORDER_FULFILLMENT_DATA feed per run and marketplace, one OrderFulfillment message per
order (amazon.confirm_shipment_feed), each order's outcome its message's result in the
processing report. Both routes must leave Amazon alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_helpers import mutations

from connector.engine import Summary
from connector.project import Config
from connector.runner import run_flows
from connector.sandbox import Sandbox
from connector.sandbox.server import Request
from connector.state.store import open_store

FLOW = "adobe-commerce-to-amazon"
FEED = {"CONNECTOR_FLOW_ADOBE_COMMERCE_TO_AMAZON_SHIPMENT_CONFIRMATION": "feed"}
FULFILLMENT = "POST_ORDER_FULFILLMENT_DATA"


def apply(config: Config, sandbox: Sandbox, db: Path, env: dict[str, str]) -> Summary:
    summaries, _ = run_flows(config, [FLOW], f"sqlite:///{db}", sandbox.settings(), env,
                             poll_scale=0.0, now=sandbox.clock.now)
    return summaries[0]


def shipped(sandbox: Sandbox) -> dict[str, int]:
    """The generated orders of this flow that Amazon shipped, with their package counts."""
    return {oid: len(order.get("packages") or []) for oid, order in sandbox.amazon.orders.items()
            if oid.startswith("213-") and order["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
            and order["fulfillment"]["fulfilledBy"] == "MERCHANT"}


def fulfillment_feeds(sandbox: Sandbox) -> list[str]:
    return [f["processingStatus"] for f in sandbox.amazon.feeds.values()
            if f["feedType"] == FULFILLMENT]


def confirm_calls(sandbox: Sandbox) -> int:
    return len(mutations(sandbox, ending="/shipmentConfirmation"))


@pytest.fixture
def generated() -> Iterator[Sandbox]:
    with Sandbox(orders=60, seed=1) as box:
        yield box


@pytest.fixture(scope="module")
def by_call(config: Config, tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """What confirmShipment per order ships on this sandbox: the feed must ship the same."""
    with Sandbox(orders=60, seed=1) as box:
        already = shipped(box)
        apply(config, box, tmp_path_factory.mktemp("call") / "state.db", {})
        assert confirm_calls(box) == len(shipped(box)) - len(already) > 0
        assert fulfillment_feeds(box) == []
        return shipped(box)


def test_one_run_confirms_its_shipments_in_one_feed_once(config: Config, generated: Sandbox,
                                                         tmp_path: Path,
                                                         by_call: dict[str, int]) -> None:
    db = tmp_path / "state.db"
    first = apply(config, generated, db, FEED)
    confirmed = generated.amazon.fulfillments
    assert len(confirmed) >= 3, "the generated sandbox should need several confirmations"
    assert all(len(tracks) == 1 for tracks in confirmed.values())  # each order once
    assert fulfillment_feeds(generated) == ["DONE"] and confirm_calls(generated) == 0
    assert len(mutations(generated, ending="/feeds/2021-06-30/feeds")) == 2  # + the cancels'
    assert shipped(generated) == by_call  # the same orders, one package each
    assert not first.failed and not first.errors and not first.waiting
    with open_store(f"sqlite:///{db}") as store:
        done = {e.order_id for e in store.entries(FLOW, "done")
                if e.action == "amazon.confirm_shipment_feed"}
    assert len(done) == len(confirmed)
    before = len(generated.requests)
    again = apply(config, generated, db, FEED)
    assert mutations(generated, since=before) == []  # a second run sends nothing
    assert generated.amazon.fulfillments == confirmed and len(fulfillment_feeds(generated)) == 1
    assert not again.failed and not again.errors


def _cancel_on_amazon(sandbox: Sandbox, order_id: str) -> None:
    """Amazon cancels the order between the run's read and the feed's processing."""
    def hook(request: Request) -> None:
        if b'"POST_ORDER_FULFILLMENT_DATA"' in request.body:
            order = sandbox.amazon.orders[order_id]
            order["fulfillment"]["fulfillmentStatus"] = "CANCELLED"
    sandbox.faults.on_next("amazon", "POST", r"^/feeds/2021-06-30/feeds$", hook, count=None)


@pytest.mark.parametrize(("how", "said", "kind"), [
    # Amazon refuses the message for a reason of its own: that order's action fails.
    ("rejected", "Locked by another process (sandbox fault)", "failed"),
    # The order was cancelled on Amazon after the run read it: the refusal is the engine's
    # stale plan (the order read again no longer calls for it), skipped, with Amazon's words.
    ("cancelled", "is CANCELLED: a cancelled order cannot be shipped", "skipped"),
])
def test_a_refused_message_fails_only_its_own_order(config: Config, generated: Sandbox,
                                                    tmp_path: Path, by_call: dict[str, int],
                                                    how: str, said: str, kind: str) -> None:
    victim = sorted(oid for oid in by_call if not generated.amazon.orders[oid].get("packages"))[0]
    if how == "rejected":
        generated.amazon.feeds_api.reject_next(victim, said)
    else:
        _cancel_on_amazon(generated, victim)
    db = tmp_path / "state.db"
    summary = apply(config, generated, db, FEED)
    [line] = [str(item) for item in summary.listed if item.kind == kind]
    assert "amazon.confirm_shipment_feed" in line and said in line
    assert summary.failed == (kind == "failed") and len(summary.errors) == summary.failed
    assert victim not in generated.amazon.fulfillments
    assert shipped(generated) == {oid: n for oid, n in by_call.items() if oid != victim}
    assert len(fulfillment_feeds(generated)) == 1
    with open_store(f"sqlite:///{db}") as store:
        done = [e for e in store.entries(FLOW, "done")
                if e.action == "amazon.confirm_shipment_feed"]
        failed = [e.action for e in store.entries(FLOW, "failed")]
    assert len(done) == len(generated.amazon.fulfillments)
    assert failed == ["amazon.confirm_shipment_feed"]  # the ledger keeps the refusal


def test_a_carrier_amazon_has_no_code_for_goes_as_its_name(config: Config, sandbox: Sandbox,
                                                           tmp_path: Path) -> None:
    """FulfillmentData holds a CarrierCode or a CarrierName: a Magento carrier with no Amazon
    code is sent by its title, XML-escaped like every value of the feed."""
    [track] = [t for d in sandbox.commerce.shipments.values() for t in d["tracks"]
               if sandbox.commerce.orders[d["order_id"]]["ext_order_id"] == "113-0000003-0000001"]
    track.update(carrier_code="custom", title="Fast & Sure <Post>", track_number="FS-1&2")
    summary = apply(config, sandbox, tmp_path / "state.db", FEED)
    assert not summary.failed and not summary.errors
    [package] = sandbox.amazon.orders["113-0000003-0000001"]["packages"]
    assert (package["carrier"], package["trackingNumber"]) == ("Fast & Sure <Post>", "FS-1&2")
    [content] = [d["content"] for d in sandbox.amazon.documents.values()
                 if b"<MessageType>OrderFulfillment" in (d.get("content") or b"")]
    assert b"<CarrierName>Fast &amp; Sure &lt;Post&gt;</CarrierName>" in content
    assert b"<CarrierCode>" not in content
