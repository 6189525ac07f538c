"""Issue 8, "Item-level cancellations": an item a marketplace cancelled is not imported or
reserved, and an item cancelled after the order reached the target is reported as a partial
cancellation (the items and quantities named), never followed as a whole-order cancel.

Amazon's example order 123-4567890-1234567 (orders_2026-01-01.json, getOrder) carries a
seller cancellation (`cancellationExecution`, cancelledBy MERCHANT) on its first item,
ECHO-DOT-4-CHARCOAL × 2 (proceeds 99.98 + tax 0.02); the live item is FIRE-TV-4K-2021 × 1
(49.99). Amazon's grandTotal, 154.99, still counts the cancelled item: the live order is
49.99 + the 5.00 delivery tip = 54.99 (docs/shipped.md, "Item-level cancellations").
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from connector.normalise import normalise
from connector.plan import FlowRuntime, plan_order, prepare
from connector.project import Config, load_config, require
from connector.templates import render_value

REPO = Path(__file__).resolve().parents[1]
ORDERS = REPO / "tests" / "fixtures" / "orders"
EXAMPLE = json.loads((ORDERS / "amazon-spec-orders.json").read_text())["orders"][0]
WALMART = json.loads((ORDERS / "walmart-spec-orders.json").read_text())["orders"]
NOW = "2026-01-01T00:00:00Z"
CANCELLED_SKU, LIVE_SKU = "ECHO-DOT-4-CHARCOAL", "FIRE-TV-4K-2021"


@pytest.fixture(scope="module")
def config() -> Config:
    return require(load_config(REPO))


def amazon_order(status: str, *, cancelled: bool = True) -> dict[str, Any]:
    """The example order in `status` (nothing shipped unless SHIPPED), its first item
    cancelled by the seller or (`cancelled=False`) not yet."""
    order = copy.deepcopy(EXAMPLE)
    order["fulfillment"]["fulfillmentStatus"] = status
    for item in order["orderItems"]:
        shipped = item["quantityOrdered"] if status == "SHIPPED" else 0
        item["fulfillment"].update(quantityFulfilled=shipped,
                                   quantityUnfulfilled=item["quantityOrdered"] - shipped)
        if not cancelled:
            item.pop("cancellation", None)
    if status != "SHIPPED":
        order.pop("packages", None)
    return order


def render(config: Config, flow: str, system: str, action: str, raw: Mapping[str, Any],
           step: str | None = None) -> Any:
    """The JSON body of `action`'s step (the first unless named) for the source record `raw`
    (as explain renders it, absent values left out); the record is the subject of its own
    system's actions."""
    runtime: FlowRuntime = prepare(config, flow, {})
    order = normalise(runtime.systems[runtime.flow.source], raw)
    spec = runtime.systems[system].actions[action]
    context = {
        "order": order if system == runtime.flow.source else None, "source": order, "target": None, "steps": {}, "now": NOW, "outputs": {},
        "args": {n: p.default for n, p in spec.params.items()},
        "settings": runtime.system_settings[system],
    }
    chosen = next(s for s in spec.steps if step in (None, s.name))
    return render_value(chosen.request.json, context, omit_none=True)


def test_commerce_import_has_only_the_live_item(config: Config) -> None:
    entity = render(config, "amazon-to-adobe-commerce", "adobe-commerce", "create_order",
                    EXAMPLE, "create")["entity"]
    assert [(i["sku"], i["qty_ordered"], i["ext_order_item_id"]) for i in entity["items"]] == [
        (LIVE_SKU, 1, "12345678901235")]
    assert (entity["total_qty_ordered"], entity["total_item_count"]) == (1, 1)
    # The live parts; the identity holds (tests/test_totals.py checks it for every example).
    assert (entity["subtotal"], entity["tax_amount"], entity["shipping_amount"]) == (49.99, 0, 0)
    fee, = entity["extension_attributes"]["custom_fees"]
    assert (fee["custom_fee_code"], fee["custom_fee_amount"]) == ("delivery_tip", 5.0)
    assert entity["grand_total"] == entity["base_grand_total"] == 54.99


def test_vtex_reservation_holds_only_the_live_item(config: Config) -> None:
    body = render(config, "amazon-to-vtex", "vtex", "reserve_stock", amazon_order("PENDING"))
    assert [(o["item"]["id"], o["item"]["quantity"]) for o in body["deliveryItemOptions"]] == [
        (LIVE_SKU, 1)]


def test_confirm_shipment_leaves_the_cancelled_item_out(config: Config) -> None:
    body = render(config, "amazon-to-vtex", "amazon", "confirm_shipment",
                  amazon_order("UNSHIPPED"))
    assert body["packageDetail"]["orderItems"] == [{"orderItemId": "12345678901235", "quantity": 1}]


def test_an_order_without_cancelled_items_is_unchanged(config: Config) -> None:
    entity = render(config, "amazon-to-adobe-commerce", "adobe-commerce", "create_order",
                    amazon_order("UNSHIPPED", cancelled=False), "create")["entity"]
    assert [(i["sku"], i["qty_ordered"]) for i in entity["items"]] == [(CANCELLED_SKU, 2), (LIVE_SKU, 1)]
    assert (entity["subtotal"], entity["tax_amount"], entity["grand_total"]) == (149.97, 0.02, 154.99)


def commerce_order(*, holds_cancelled: bool, state: str = "processing",
                   qty_canceled: int = 0) -> dict[str, Any]:
    """The Commerce order imported before the cancellation (both items), or after it (only
    the live one); with `qty_canceled` 2 a person has cancelled the item in Commerce."""
    items = [{"item_id": 2, "sku": LIVE_SKU, "qty_ordered": 1, "ext_order_item_id": "12345678901235"}]
    if holds_cancelled:
        items.insert(0, {"item_id": 1, "sku": CANCELLED_SKU, "qty_ordered": 2,
                         "qty_canceled": qty_canceled, "ext_order_item_id": "12345678901234"})
    return {"entity_id": 7, "increment_id": "123-4567890-1234567", "state": state,
            "status": state, "ext_order_id": "123-4567890-1234567", "items": items}


def vtex_order(skus: list[str], status: str = "handling") -> dict[str, Any]:
    return {"orderId": "AMZ-123-4567890-1234567-01", "status": status,
            "items": [{"id": sku, "quantity": 1} for sku in skus]}


def decide(config: Config, flow: str, raw: Mapping[str, Any],
           target_raw: Mapping[str, Any] | None) -> tuple[list[str], list[Any]]:
    runtime = prepare(config, flow, {})
    order = normalise(runtime.source, raw)
    target = None if target_raw is None else normalise(runtime.target, target_raw)
    planned, decision = plan_order(runtime, order, target, {}, NOW)
    return [r.id for r in decision.matched], [p for p in planned if p.runnable]


@pytest.mark.parametrize(("flow", "status", "target"), [
    ("amazon-to-adobe-commerce", "UNSHIPPED", commerce_order(holds_cancelled=True)),
    ("amazon-to-adobe-commerce", "SHIPPED", commerce_order(holds_cancelled=True)),
    ("amazon-to-adobe-commerce", "SHIPPED", commerce_order(holds_cancelled=True, state="complete")),
    ("amazon-to-vtex", "UNSHIPPED", vtex_order([CANCELLED_SKU, LIVE_SKU])),
    ("amazon-to-vtex", "SHIPPED", vtex_order([CANCELLED_SKU, LIVE_SKU], "invoiced")),
])
def test_a_later_item_cancellation_is_reported(config: Config, flow: str, status: str,
                                               target: dict[str, Any]) -> None:
    """The target got both items; then Amazon cancelled one: an attention item naming it and
    its quantity, and nothing sent (no cancel, no completion of the cancelled item)."""
    _, actions = decide(config, flow, amazon_order(status), target)
    assert [a.name for a in actions] == ["report"]
    report = actions[0].args
    assert report["level"] == "attention"
    assert f"{CANCELLED_SKU} × 2" in report["message"], report["message"]
    assert LIVE_SKU not in report["message"]


@pytest.mark.parametrize(("flow", "status", "target", "expected"), [
    # Imported after the cancellation (only the live item): a shipped order is completed.
    ("amazon-to-adobe-commerce", "SHIPPED", commerce_order(holds_cancelled=False),
     ["adobe-commerce.complete_order"]),
    ("amazon-to-adobe-commerce", "UNSHIPPED", commerce_order(holds_cancelled=False), []),
    # Imported before, and the item cancelled in Commerce by hand since: dealt with.
    ("amazon-to-adobe-commerce", "SHIPPED", commerce_order(holds_cancelled=True, qty_canceled=2),
     ["adobe-commerce.complete_order"]),
    ("amazon-to-vtex", "UNSHIPPED", vtex_order([LIVE_SKU]), []),
    # Not in the target yet: imported with its live item only (above), nothing reported.
    ("amazon-to-adobe-commerce", "UNSHIPPED", None, ["adobe-commerce.create_order"]),
    ("amazon-to-vtex", "PENDING", None, ["vtex.reserve_stock"]),
])
def test_a_target_without_the_cancelled_item_hears_nothing_of_it(
        config: Config, flow: str, status: str, target: dict[str, Any] | None,
        expected: list[str]) -> None:
    _, actions = decide(config, flow, amazon_order(status), target)
    assert [a.name for a in actions] == expected


# --- Walmart: the same at line level ------------------------------------------------------


def walmart_order(*, cancelled: bool = True, first: str = "Acknowledged") -> dict[str, Any]:
    """The spec's getAnOrder example (line 4, test1, 10.00 + 0.80 tax), its line in status
    `first`, with a second line 5, test2 (20.00 + 1.60), cancelled by the seller (or not)."""
    order = copy.deepcopy(WALMART[1])
    order["purchaseOrderId"] = "1796277083099"
    first_line = order["orderLines"]["orderLine"][0]
    first_line["orderLineStatuses"]["orderLineStatus"][0]["status"] = first
    second = copy.deepcopy(first_line)
    second.update(lineNumber="5", item={"productName": "Second", "sku": "test2"})
    charge = second["charges"]["charge"][0]
    charge["chargeAmount"]["amount"], charge["tax"]["taxAmount"]["amount"] = 20, 1.6
    status = second["orderLineStatuses"]["orderLineStatus"][0]
    status.update(status="Cancelled" if cancelled else first,
                  cancellationReason="SELLER_CANCEL_OUT_OF_STOCK")
    order["orderLines"]["orderLine"].append(second)
    return order


@pytest.mark.parametrize(("cancelled", "items", "totals"), [
    (True, [("test1", 1, "4")], (10, 0.8, 10.8)),
    (False, [("test1", 1, "4"), ("test2", 1, "5")], (30, 2.4, 32.4)),
])
def test_walmart_import_has_only_the_live_lines(
        config: Config, cancelled: bool, items: list[tuple[str, int, str]],
        totals: tuple[float, float, float]) -> None:
    entity = render(config, "walmart-to-adobe-commerce", "adobe-commerce", "create_order",
                    walmart_order(cancelled=cancelled), "create")["entity"]
    assert [(i["sku"], i["qty_ordered"], i["ext_order_item_id"]) for i in entity["items"]] == items
    assert (entity["subtotal"], entity["tax_amount"], entity["grand_total"]) == totals


def test_a_walmart_line_cancelled_in_part_keeps_its_live_units(config: Config) -> None:
    order = walmart_order(cancelled=False)
    line = order["orderLines"]["orderLine"][1]
    line["orderLineQuantity"]["amount"] = "3"
    line["orderLineStatuses"]["orderLineStatus"] = [
        {"status": "Cancelled", "statusQuantity": {"unitOfMeasurement": "EACH", "amount": "2"},
         "cancellationReason": "CUSTOMER_REQUESTED_SELLER_TO_CANCEL"},
        {"status": "Acknowledged", "statusQuantity": {"unitOfMeasurement": "EACH", "amount": "1"}}]
    runtime = prepare(config, "walmart-to-vtex", {})
    canonical = normalise(runtime.source, order)
    assert [(i["sku"], i["quantity"]) for i in canonical["items"]] == [("test1", 1), ("test2", 1)]
    assert canonical["attributes"]["cancelled_items"] == [
        {"id": "5", "sku": "test2", "quantity": 2, "cancelled_by": "customer"}]
    assert (canonical["status"], canonical["attributes"]["live_status"]) == (
        "PartlyCancelled", "Acknowledged")


def walmart_commerce_order(refs: list[str]) -> dict[str, Any]:
    items = [{"item_id": n, "sku": f"test{int(ref) - 3}", "qty_ordered": 1,
              "ext_order_item_id": ref} for n, ref in enumerate(refs, start=1)]
    return {"entity_id": 8, "increment_id": "1796277083099", "state": "processing",
            "status": "processing", "ext_order_id": "1796277083099", "items": items}


@pytest.mark.parametrize(("flow", "target", "reported"), [
    ("walmart-to-adobe-commerce", walmart_commerce_order(["4", "5"]), True),
    ("walmart-to-adobe-commerce", walmart_commerce_order(["4"]), False),
    ("walmart-to-vtex", vtex_order(["test1", "test2"]), True),
    ("walmart-to-vtex", vtex_order(["test1"]), False),
])
def test_a_later_walmart_line_cancellation_is_reported(
        config: Config, flow: str, target: dict[str, Any], reported: bool) -> None:
    _, actions = decide(config, flow, walmart_order(), target)
    names = [a.name for a in actions]
    if not reported:
        assert "report" not in names and not any("cancel" in n for n in names), names
        return
    assert names == ["report"]
    assert "line 5 test2 × 1 (by seller)" in actions[0].args["message"]


def test_created_lines_are_acknowledged_before_the_report(config: Config) -> None:
    """Walmart still has Created lines: acknowledging the live ones comes first (the seller
    fulfils them); acknowledged, the order is listed again and the partial cancellation is
    reported on that evaluation (the case above)."""
    rules, actions = decide(config, "walmart-to-adobe-commerce", walmart_order(first="Created"),
                            walmart_commerce_order(["4", "5"]))
    assert (rules, [a.name for a in actions]) == (
        ["acknowledge-imported-order"], ["walmart.acknowledge_order"])
