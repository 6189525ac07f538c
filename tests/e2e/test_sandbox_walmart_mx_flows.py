"""End to end on the built-in sandbox: the Walmart México scenarios of docs/scenarios.md.

The same three Walmart flows run with `market: mx` (CONNECTOR_WALMART_MARKET=mx), which
selects the mapping's `mx` variant: the MX Order API's listing, bodies and paths, against the
sandbox's México seller (WM_MARKET: mx). The US tests are test_sandbox_walmart_flows.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_helpers import apply, commerce_by_ext, mutations

from connector.engine import Summary
from connector.project import Config
from connector.sandbox import Sandbox

MX = {"CONNECTOR_WALMART_MARKET": "mx"}


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(walmart_mx=True) as box:
        yield box


def run(config: Config, sandbox: Sandbox, tmp_path: Path, flow: str) -> Summary:
    summary = apply(config, sandbox, tmp_path, flow, MX)
    assert not summary.failed and not summary.errors
    return summary


def test_mx_calls_send_wm_market_and_use_the_mx_listing(config: Config, sandbox: Sandbox,
                                                        tmp_path: Path) -> None:
    run(config, sandbox, tmp_path, "walmart-to-vtex")
    assert set(sandbox.walmart.markets_seen) == {"mx"}
    listed = [r for r in sandbox.requests if r.system == "walmart" and r.method == "GET"]
    # One cursor listing per statusCodeFilter (Created, Acknowledged, Cancelled), then the WFS
    # orders' offset listing; no getAnOrder.
    assert [r.path for r in listed] == ["/v3/orders/cursor"] * 3 + ["/v3/orders/wfsorders"]


@pytest.mark.parametrize(("po", "end_status", "cancels"), [
    ("P4000000601", "canceled", 2),  # seller cancelled; ready-for-handling: two steps
    ("P4000000602", "canceled", 1),  # customer cancelled; payment-approved: one
    ("P4000000603", "handling", 0),  # partly cancelled: reported, not cancelled
])
def test_mx_cancellations_reach_vtex(config: Config, sandbox: Sandbox, tmp_path: Path,
                                     po: str, end_status: str, cancels: int) -> None:
    summary = run(config, sandbox, tmp_path, "walmart-to-vtex")
    vtex_id = f"WLM-{po}-01"
    assert sandbox.vtex.orders[vtex_id]["status"] == end_status
    assert len(mutations(sandbox, ending=f"/orders/{vtex_id}/cancel")) == cancels
    if not cancels:
        assert any(po in item and "partly cancelled" in item for item in summary.attention)


def test_mx_order_is_imported_into_commerce_then_acknowledged(config: Config, sandbox: Sandbox,
                                                              tmp_path: Path) -> None:
    run(config, sandbox, tmp_path, "walmart-to-adobe-commerce")
    orders = commerce_by_ext(sandbox, "P4000000701")
    assert len(orders) == 1 and orders[0]["state"] == "processing"
    assert orders[0]["order_currency_code"] == "MXN"
    assert [i["sku"] for i in orders[0]["items"]] == [
        line["item"]["sku"] for line in sandbox.walmart.mx.orders["P4000000701"]["orderLines"]]
    assert sandbox.walmart.mx.line_statuses("P4000000701") == ["Acknowledged", "Acknowledged"]
    assert len(mutations(sandbox, ending="/v3/orders/P4000000701/acknowledge")) == 1


def test_shipped_wfs_order_is_imported_complete(config: Config, sandbox: Sandbox,
                                                tmp_path: Path) -> None:
    """#/WFSOrder has no purchaseOrderId: the order is named by its customerOrderId."""
    run(config, sandbox, tmp_path, "walmart-to-adobe-commerce")
    shipped = sandbox.walmart.mx.orders["P4000000703"]
    (order,) = commerce_by_ext(sandbox, shipped["customerOrderId"])
    assert order["state"] == "complete"
    not_shipped = sandbox.walmart.mx.orders["P4000000704"]  # WFS, Created: not yet
    assert commerce_by_ext(sandbox, not_shipped["customerOrderId"]) == []
    assert mutations(sandbox, ending="/acknowledge")[0].path.endswith("/P4000000701/acknowledge")


def test_mx_cancellation_closes_the_commerce_order(config: Config, sandbox: Sandbox,
                                                   tmp_path: Path) -> None:
    run(config, sandbox, tmp_path, "walmart-to-adobe-commerce")
    assert commerce_by_ext(sandbox, "P4000000702")[0]["state"] == "canceled"


def test_commerce_shipment_ships_the_mx_lines_with_an_mx_carrier(config: Config, sandbox: Sandbox,
                                                                  tmp_path: Path) -> None:
    run(config, sandbox, tmp_path, "adobe-commerce-to-walmart")
    order = sandbox.walmart.mx.orders["P4000000801"]
    assert sandbox.walmart.mx.line_statuses("P4000000801") == ["Shipped", "Shipped"]
    (shipment,) = order["shipments"]
    assert shipment["carrier"] == "MX-FEDX"  # Commerce carrier code fedex
    assert shipment["trackingNumber"] == "794612345678"
    assert [line["primeLineNo"] for line in shipment["shipmentLines"]] == ["1", "2"]
    assert len(mutations(sandbox, ending="/v3/orders/P4000000801/ship")) == 1


def test_merchant_cancellation_cancels_the_open_mx_lines(config: Config, sandbox: Sandbox,
                                                         tmp_path: Path) -> None:
    summary = run(config, sandbox, tmp_path, "adobe-commerce-to-walmart")
    line = sandbox.walmart.mx.orders["P4000000802"]["orderLines"][0]
    assert [(e["status"], e.get("cancellationReason")) for e in line["orderLineStatus"]] == [
        ("Cancelled", "SELLER_CANCEL_OUT_OF_STOCK")]
    # Shipped: reported, nothing sent.
    assert any("P4000000803" in item and "Seller Center" in item for item in summary.attention)
    assert mutations(sandbox, ending="/v3/orders/P4000000803/cancel") == []


def test_mx_refusal_is_reported_in_walmarts_words(config: Config, sandbox: Sandbox,
                                                   tmp_path: Path) -> None:
    """A carrier outside México's list is sent as Other, which needs a trackingURL the
    Commerce shipment lacks: the 400's {"error": Error} description is the failure's words."""
    for shipment in sandbox.commerce.shipments.values():
        for track in shipment["tracks"]:
            track["carrier_code"], track["title"] = "paquetexpress", "Paquetexpress"
    summary = apply(config, sandbox, tmp_path, "adobe-commerce-to-walmart", MX)
    assert summary.failed == 1
    assert "trackingURL is required with carrier Other" in json.dumps(summary.errors)
    assert sandbox.walmart.mx.line_statuses("P4000000801") == ["Acknowledged", "Acknowledged"]
