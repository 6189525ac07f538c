"""End to end on the built-in sandbox: every seed behaviour of docs/scenarios.md, once.

Each test starts a fresh sandbox on loopback, runs the shipped configuration against it with a
state file of its own, and checks the end state inside the simulated systems.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_helpers import apply, check_customer_creation, commerce_by_ext, mutations

from connector.project import Config
from connector.sandbox import Sandbox


# --- amazon-to-vtex --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amazon_id", "end_status", "cancels"),
    [
        ("111-0000001-0000001", "canceled", 2),  # seller cancelled; ready-for-handling: two steps
        ("111-0000001-0000002", "canceled", 2),  # Amazon cancelled; handling: two steps
        ("111-0000001-0000003", "canceled", 1),  # customer cancelled; payment-approved: one
        ("111-0000001-0000004", "invoiced", 0),  # invoiced: reported, nothing sent
        ("111-0000001-0000005", "canceled", 0),  # already canceled: final
        ("111-0000001-0000009", "invoiced", 0),  # shipped: nothing
    ],
)
def test_amazon_cancellations_reach_vtex(config: Config, sandbox: Sandbox, tmp_path: Path,
                                         amazon_id: str, end_status: str, cancels: int) -> None:
    summary = apply(config, sandbox, tmp_path, "amazon-to-vtex")
    vtex_id = f"AMZ-{amazon_id}-01"
    assert sandbox.vtex.orders[vtex_id]["status"] == end_status
    sent = [r for r in mutations(sandbox) if r.path.endswith(f"/orders/{vtex_id}/cancel")]
    assert len(sent) == cancels
    assert not summary.failed and not summary.errors


def test_invoiced_vtex_order_is_an_attention_item(config: Config, sandbox: Sandbox, tmp_path: Path) -> None:
    summary = apply(config, sandbox, tmp_path, "amazon-to-vtex")
    assert any("AMZ-111-0000001-0000004-01" in item and "return invoice" in item for item in summary.attention)


def test_pending_order_reserves_stock_and_cancellation_releases_it(
        config: Config, sandbox: Sandbox, tmp_path: Path) -> None:
    apply(config, sandbox, tmp_path, "amazon-to-vtex")
    reservations = [r for r in sandbox.vtex.reservations.values() if "111-0000001-0000006" in str(r)]
    assert len(reservations) == 1
    sandbox.amazon.cancel("111-0000001-0000006", by="AMAZON")
    sandbox.advance(300)
    apply(config, sandbox, tmp_path, "amazon-to-vtex")
    released = [r for r in sandbox.vtex.reservations.values() if "111-0000001-0000006" in str(r)]
    assert len(released) == 1 and released[0].get("Status", released[0].get("status")) in (3, 5)


def test_cancelled_order_not_in_vtex_is_watched_then_cancelled_when_it_appears(
        config: Config, sandbox: Sandbox, tmp_path: Path) -> None:
    summary = apply(config, sandbox, tmp_path, "amazon-to-vtex")
    assert summary.watched >= 1
    assert "AMZ-111-0000001-0000007-01" not in sandbox.vtex.orders
    sandbox.add_vtex_order("111-0000001-0000007", "payment-approved")
    sandbox.advance(600)
    apply(config, sandbox, tmp_path, "amazon-to-vtex")
    assert sandbox.vtex.orders["AMZ-111-0000001-0000007-01"]["status"] == "canceled"


@pytest.mark.parametrize(("setting", "amazon_status", "vtex_status"),
                         [("leave", "UNSHIPPED", "handling"), ("accept", "CANCELLED", "canceled")])
def test_buyer_cancellation_request_follows_the_setting(
        config: Config, sandbox: Sandbox, tmp_path: Path, setting: str, amazon_status: str,
        vtex_status: str) -> None:
    env = {"CONNECTOR_FLOW_AMAZON_TO_VTEX_BUYER_CANCELLATION": setting}
    summary = apply(config, sandbox, tmp_path, "amazon-to-vtex", env)
    order = sandbox.amazon.orders["111-0000001-0000008"]
    assert order["fulfillment"]["fulfillmentStatus"] == amazon_status
    assert sandbox.vtex.orders["AMZ-111-0000001-0000008-01"]["status"] == vtex_status
    if setting == "leave":
        assert any("111-0000001-0000008" in item for item in summary.attention)
    else:
        reasons = [i.get("cancellation", {}).get("cancellationExecution", {}).get("cancelReason")
                   for i in order["orderItems"]]
        assert "BuyerCanceled" in reasons


# --- amazon-to-adobe-commerce ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amazon_id", "expected"),
    [
        ("112-0000002-0000001", None),  # MFN PENDING: tracked, nothing created
        ("112-0000002-0000002", "processing"),  # MFN UNSHIPPED: created
        ("112-0000002-0000003", "complete"),  # FBA SHIPPED: created Complete
        ("112-0000002-0000004", "canceled"),  # cancelled on Amazon
        ("112-0000002-0000005", None),  # FBA UNSHIPPED: not imported yet
        ("112-0000002-0000006", "processing"),  # exists: nothing
        ("112-0000002-0000007", "closed"),  # invoiced, cancelled on Amazon: refunded offline
    ],
)
def test_amazon_orders_reach_commerce(config: Config, sandbox: Sandbox, tmp_path: Path,
                                      amazon_id: str, expected: str | None) -> None:
    summary = apply(config, sandbox, tmp_path, "amazon-to-adobe-commerce")
    found = commerce_by_ext(sandbox, amazon_id)
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and found[0]["state"] == expected
        assert found[0]["increment_id"] == amazon_id or found[0]["ext_order_id"] == amazon_id
    assert not summary.failed and not summary.errors


def test_an_order_with_a_cancelled_item_is_imported_with_its_live_item(
        config: Config, sandbox: Sandbox, tmp_path: Path) -> None:
    """112-0000002-0000008: the buyer's first item is cancelled, SKU-3 × 1 is alive."""
    summary = apply(config, sandbox, tmp_path, "amazon-to-adobe-commerce")
    order, = commerce_by_ext(sandbox, "112-0000002-0000008")
    assert [(i["sku"], i["qty_ordered"]) for i in order["items"]] == [("SKU-3", 1)]
    assert order["grand_total"] == order["subtotal"] == order["items"][0]["row_total"]
    assert not any("112-0000002-0000008" in item for item in summary.attention)


def test_an_item_cancelled_while_in_vtex_is_reported_not_cancelled(
        config: Config, sandbox: Sandbox, tmp_path: Path) -> None:
    """111-0000001-0000011: the seller cancelled SKU-1 × 2 of an order VTEX is handling."""
    summary = apply(config, sandbox, tmp_path, "amazon-to-vtex")
    vtex_id = "AMZ-111-0000001-0000011-01"
    assert sandbox.vtex.orders[vtex_id]["status"] == "handling"
    assert [r for r in mutations(sandbox) if vtex_id in r.path] == []
    assert any("111-0000001-0000011" in item and "SKU-1 × 2" in item for item in summary.attention)


@pytest.mark.parametrize(("flow", "order_id", "email"), [
    ("amazon-to-adobe-commerce", "112-0000002-0000002", "buyer2@example.com"),
    ("walmart-to-adobe-commerce", "4000000000201", "buyer201@example.com"),
])
@pytest.mark.parametrize(("mode", "guest"), [("guest", True), ("create", False)])
def test_customer_creation_setting(config: Config, sandbox: Sandbox, tmp_path: Path, flow: str,
                                   order_id: str, email: str, mode: str, guest: bool) -> None:
    apply(config, sandbox, tmp_path, flow, {"CONNECTOR_ADOBE_COMMERCE_CUSTOMER_CREATION": mode})
    check_customer_creation(sandbox, order_id, email, guest)


# --- adobe-commerce-to-amazon ------------------------------------------------------------------


def test_commerce_shipment_confirms_amazon_shipment(config: Config, sandbox: Sandbox, tmp_path: Path) -> None:
    apply(config, sandbox, tmp_path, "adobe-commerce-to-amazon")
    order = sandbox.amazon.orders["113-0000003-0000001"]
    assert order["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    confirms = [r for r in mutations(sandbox) if r.path.endswith("/113-0000003-0000001/shipmentConfirmation")]
    assert len(confirms) == 1
    assert commerce_by_ext(sandbox, "113-0000003-0000001")[0]["state"] == "complete"
    # find_shipment reads Commerce, which leaves the Amazon order as first read: one getOrder
    # (getOrder is this flow's bottleneck at 0.5/s), then the shipments, then the confirmation
    order_reads = [r for r in sandbox.requests if r.system == "amazon" and r.method == "GET"
                   and r.path.endswith("/orders/113-0000003-0000001")]
    shipment_reads = [r for r in sandbox.requests if r.path.endswith("/V1/shipments")]
    assert len(order_reads) == 1
    assert len(shipment_reads) == 1


@pytest.mark.parametrize(("amazon_id", "end_status", "reported"),
                         [("113-0000003-0000002", "CANCELLED", False), ("113-0000003-0000003", "SHIPPED", True),
                          ("113-0000003-0000004", "UNSHIPPED", False)])
def test_commerce_cancellation_reaches_amazon_only_while_unshipped(
        config: Config, sandbox: Sandbox, tmp_path: Path, amazon_id: str, end_status: str,
        reported: bool) -> None:
    summary = apply(config, sandbox, tmp_path, "adobe-commerce-to-amazon")
    assert sandbox.amazon.orders[amazon_id]["fulfillment"]["fulfillmentStatus"] == end_status
    assert any(amazon_id in item and "Seller Central" in item for item in summary.attention) is reported


# --- every flow: exactly once ------------------------------------------------------------------


@pytest.mark.parametrize("flow", ["amazon-to-vtex", "amazon-to-adobe-commerce", "adobe-commerce-to-amazon",
                                  "walmart-to-vtex", "walmart-to-adobe-commerce",
                                  "adobe-commerce-to-walmart"])
def test_second_apply_sends_no_mutating_request(config: Config, sandbox: Sandbox, tmp_path: Path, flow: str) -> None:
    first = apply(config, sandbox, tmp_path, flow)
    assert first.done > 0
    before = len(sandbox.requests)
    sandbox.advance(300)
    second = apply(config, sandbox, tmp_path, flow)
    assert mutations(sandbox, before) == []
    assert second.done == 0 and not second.attention


def test_one_failing_order_does_not_stop_the_others(config: Config, sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.faults.fail_next("vtex", "POST", r"/orders/AMZ-111-0000001-0000003-01/cancel$", 400,
                             count=1, body={"error": {"code": "OMS999", "message": "refused for the test"}})
    summary = apply(config, sandbox, tmp_path, "amazon-to-vtex")
    assert summary.failed == 1
    assert any("refused for the test" in e for e in summary.errors)
    assert sandbox.vtex.orders["AMZ-111-0000001-0000003-01"]["status"] == "payment-approved"
    assert sandbox.vtex.orders["AMZ-111-0000001-0000001-01"]["status"] == "canceled"
    sandbox.advance(300)
    again = apply(config, sandbox, tmp_path, "amazon-to-vtex")
    assert sandbox.vtex.orders["AMZ-111-0000001-0000003-01"]["status"] == "canceled"
    assert again.failed == 0


# --- re-reads only where a follow-up step is possible ------------------------------------------


@pytest.mark.parametrize(
    ("amazon_id", "reads"),
    [
        ("111-0000001-0000001", 2),  # ready-for-handling: cancellation-requested, read again
        ("111-0000001-0000003", 1),  # payment-approved: one cancel, canceled, nothing follows
    ],
)
def test_counterpart_is_read_again_only_after_a_transitional_action(
        config: Config, sandbox: Sandbox, tmp_path: Path, amazon_id: str, reads: int) -> None:
    apply(config, sandbox, tmp_path, "amazon-to-vtex")
    vtex_id = f"AMZ-{amazon_id}-01"
    got = [r for r in sandbox.requests if r.method == "GET" and r.path.endswith(f"/orders/{vtex_id}")]
    assert len(got) == reads
    assert sandbox.vtex.orders[vtex_id]["status"] == "canceled"
