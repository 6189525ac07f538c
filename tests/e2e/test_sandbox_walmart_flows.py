"""End to end on the built-in sandbox: the Walmart seed behaviours of docs/scenarios.md.

The three Walmart flows are YAML alone (mappings/walmart.yaml and three rule files); these
tests run them against the sandbox's Walmart, VTEX and Commerce and check the end state in
the simulated systems, and the requests each effect received.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_helpers import apply, commerce_by_ext, mutations

from connector.project import Config
from connector.sandbox import Sandbox



# --- walmart-to-vtex ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("po", "end_status", "cancels"),
    [
        ("4000000000101", "canceled", 2),  # seller cancelled; ready-for-handling: two steps
        ("4000000000102", "canceled", 2),  # Walmart cancelled; handling: two steps
        ("4000000000103", "canceled", 1),  # customer cancelled; payment-approved: one
        ("4000000000104", "invoiced", 0),  # invoiced: reported, nothing sent
        ("4000000000105", "canceled", 0),  # already canceled: final
        ("4000000000106", "handling", 0),  # partly cancelled: reported, not cancelled
        ("4000000000109", "invoiced", 0),  # shipped: nothing
        ("4000000000110", "handling", 0),  # WFS, acknowledged: nothing
    ],
)
def test_walmart_cancellations_reach_vtex(config: Config, sandbox: Sandbox, tmp_path: Path,
                                          po: str, end_status: str, cancels: int) -> None:
    summary = apply(config, sandbox, tmp_path, "walmart-to-vtex")
    vtex_id = f"WLM-{po}-01"
    assert sandbox.vtex.orders[vtex_id]["status"] == end_status
    assert len(mutations(sandbox, ending=f"/orders/{vtex_id}/cancel")) == cancels
    assert not summary.failed and not summary.errors


@pytest.mark.parametrize(("po", "words"), [("4000000000104", "return invoice"),
                                           ("4000000000106", "partly cancelled")])
def test_invoiced_and_partly_cancelled_orders_are_attention_items(
        config: Config, sandbox: Sandbox, tmp_path: Path, po: str, words: str) -> None:
    summary = apply(config, sandbox, tmp_path, "walmart-to-vtex")
    assert any(po in item and words in item for item in summary.attention)


def test_cancelled_order_not_in_vtex_is_watched(config: Config, sandbox: Sandbox, tmp_path: Path) -> None:
    summary = apply(config, sandbox, tmp_path, "walmart-to-vtex")
    assert summary.watched >= 1
    assert "WLM-4000000000107-01" not in sandbox.vtex.orders
    assert mutations(sandbox, ending="/orders/WLM-4000000000107-01/cancel") == []


@pytest.mark.parametrize(("setting", "lines", "vtex_status"),
                         [("leave", ["Acknowledged"], "handling"), ("accept", ["Cancelled"], "canceled")])
def test_customer_request_follows_the_setting(config: Config, sandbox: Sandbox, tmp_path: Path,
                                              setting: str, lines: list[str], vtex_status: str) -> None:
    env = {"CONNECTOR_FLOW_WALMART_TO_VTEX_BUYER_CANCELLATION": setting}
    summary = apply(config, sandbox, tmp_path, "walmart-to-vtex", env)
    assert sandbox.walmart.line_statuses("4000000000108") == lines
    assert sandbox.vtex.orders["WLM-4000000000108-01"]["status"] == vtex_status
    if setting == "leave":
        assert any("4000000000108" in item for item in summary.attention)
        assert mutations(sandbox, ending="/v3/orders/4000000000108/cancel") == []
    else:
        line = sandbox.walmart.orders["4000000000108"]["orderLines"]["orderLine"][0]
        reasons = [e.get("cancellationReason") for e in line["orderLineStatuses"]["orderLineStatus"]]
        assert reasons == ["CUSTOMER_REQUESTED_SELLER_TO_CANCEL"]


# --- walmart-to-adobe-commerce -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("po", "expected"),
    [
        ("4000000000201", "processing"),  # seller-fulfilled, Created: created, then acknowledged
        ("4000000000202", "complete"),  # WFS shipped: created complete
        ("4000000000203", None),  # WFS not shipped: not imported
        ("4000000000204", "canceled"),  # cancelled by the seller, not invoiced
        ("4000000000205", "closed"),  # cancelled by Walmart, invoiced: refunded offline
        ("4000000000206", "processing"),  # acknowledged, imported: nothing
        ("4000000000207", "complete"),  # shipped on Walmart: invoiced and shipped
    ],
)
def test_walmart_orders_reach_commerce(config: Config, sandbox: Sandbox, tmp_path: Path,
                                       po: str, expected: str | None) -> None:
    summary = apply(config, sandbox, tmp_path, "walmart-to-adobe-commerce")
    found = commerce_by_ext(sandbox, po)
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and found[0]["state"] == expected
    assert not summary.failed and not summary.errors


def test_partly_cancelled_order_is_imported_with_its_live_line(
        config: Config, sandbox: Sandbox, tmp_path: Path) -> None:
    """4000000000208: line 1 cancelled by the seller, line 2 Created: imported without line
    1, then acknowledged (its Created line)."""
    summary = apply(config, sandbox, tmp_path, "walmart-to-adobe-commerce")
    order, = commerce_by_ext(sandbox, "4000000000208")
    assert [i["ext_order_item_id"] for i in order["items"]] == ["2"]
    assert sandbox.walmart.line_statuses("4000000000208") == ["Cancelled", "Acknowledged"]
    assert not summary.failed and not summary.errors


def test_import_then_acknowledge(config: Config, sandbox: Sandbox, tmp_path: Path) -> None:
    apply(config, sandbox, tmp_path, "walmart-to-adobe-commerce")
    assert sandbox.walmart.line_statuses("4000000000201") == ["Acknowledged", "Acknowledged"]
    order = commerce_by_ext(sandbox, "4000000000201")[0]
    assert order["increment_id"] == "4000000000201" and order["customer_email"] == "buyer201@example.com"
    creates = [i for i, r in enumerate(sandbox.requests)
               if r.method == "POST" and r.path.endswith("/V1/orders")]
    acks = [i for i, r in enumerate(sandbox.requests)
            if r.path.endswith("/v3/orders/4000000000201/acknowledge")]
    # one acknowledgement, after the Commerce order was created
    assert len(acks) == 1 and creates and min(creates) < acks[0]


def test_shipped_order_is_completed_with_walmarts_tracking(config: Config, sandbox: Sandbox, tmp_path: Path) -> None:
    apply(config, sandbox, tmp_path, "walmart-to-adobe-commerce")
    order = commerce_by_ext(sandbox, "4000000000207")[0]
    tracks = [t for s in sandbox.commerce.shipments.values() if s.get("order_id") == order["entity_id"]
              for t in s.get("tracks", [])]
    assert [t["track_number"] for t in tracks] == ["1Z999AA10000207"]


# --- adobe-commerce-to-walmart -----------------------------------------------------------------


def test_commerce_shipment_ships_the_walmart_lines(config: Config, sandbox: Sandbox, tmp_path: Path) -> None:
    apply(config, sandbox, tmp_path, "adobe-commerce-to-walmart")
    assert sandbox.walmart.line_statuses("4000000000301") == ["Shipped", "Shipped"]
    sent = mutations(sandbox, ending="/v3/orders/4000000000301/shipping")
    assert len(sent) == 1
    lines = sandbox.walmart.orders["4000000000301"]["orderLines"]["orderLine"]
    info = [e["trackingInfo"] for line in lines for e in line["orderLineStatuses"]["orderLineStatus"]
            if e["status"] == "Shipped"]
    assert len(info) == 2
    assert {i["carrierName"].get("carrier") for i in info} == {"UPS"}
    assert all(i["trackingNumber"] and i["methodCode"] == "Standard" for i in info)


@pytest.mark.parametrize(("po", "lines", "reported"),
                         [("4000000000302", ["Cancelled"], False), ("4000000000303", ["Shipped"], True),
                          ("4000000000304", ["Acknowledged"], False)])
def test_commerce_cancellation_reaches_walmart_only_while_open(
        config: Config, sandbox: Sandbox, tmp_path: Path, po: str, lines: list[str],
        reported: bool) -> None:
    summary = apply(config, sandbox, tmp_path, "adobe-commerce-to-walmart")
    assert sandbox.walmart.line_statuses(po) == lines
    assert any(po in item and "Seller Center" in item for item in summary.attention) is reported
    if lines == ["Cancelled"]:
        line = sandbox.walmart.orders[po]["orderLines"]["orderLine"][0]
        assert line["orderLineStatuses"]["orderLineStatus"][0]["cancellationReason"] == \
            "SELLER_CANCEL_OUT_OF_STOCK"


def test_amazon_orders_in_commerce_are_left_alone(config: Config, sandbox: Sandbox, tmp_path: Path) -> None:
    """Each reverse flow leaves the other marketplace's orders alone (a 404 in the look-up)."""
    summary = apply(config, sandbox, tmp_path, "adobe-commerce-to-walmart")
    assert mutations(sandbox, ending="/shipmentConfirmation") == []
    assert not [r for r in mutations(sandbox) if "/amazon" in r.path]
    assert not summary.failed and not summary.errors
    other = apply(config, sandbox, tmp_path, "adobe-commerce-to-amazon")
    assert not [r for r in mutations(sandbox) if "/walmart/" in r.path and "/v3/token" not in r.path
                and "4000000000303" not in r.path and "4000000000302" not in r.path
                and "4000000000301" not in r.path]
    assert not other.failed and not other.errors
