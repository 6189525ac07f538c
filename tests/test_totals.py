"""Issue 8, "Totals add up": every amount of a marketplace order reaches a field of the Adobe
Commerce order that create_order sends (POST /V1/orders), and the fields add up:

    subtotal + shipping_amount + tax_amount + adjustments + discount_amount = grand_total

where discount_amount is negative (Commerce stores the order's discount so, shipping discount
included; shipping_discount_amount is the part of it on shipping) and the adjustments are the
amounts Commerce has no order total for: gift wrapping (extension_attributes.gw_items_price)
and the custom fees (extension_attributes.custom_fees[].custom_fee_amount). docs/shipped.md,
"Order totals", gives the mapping of each breakdown type. An item the marketplace cancelled
counts nowhere: the totals are the live items' and grand_total is Amazon's grandTotal less the
cancelled items' proceedsTotal ("Item-level cancellations"; the issue's example order has one).

The orders are every example of the specs: tests/fixtures/orders/amazon-spec-orders.json holds
the orders of orders_2026-01-01.json's searchOrders and getOrder 200 answers (`examples` and
`x-amzn-api-sandbox` static responses, unchanged), walmart-spec-orders.json those of
us-mp-orders.json's getAnOrder examples. One constructed order adds what no example has
(GIFT_WRAP, COD_FEE, OTHER, DISCOUNT with a shipping part, a shipping tax).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from connector.transport.cassette import read_metadata
from connector.normalise import normalise
from connector.plan import FlowRuntime, prepare
from connector.project import Config, load_config, require
from connector.templates import render_value

REPO = Path(__file__).resolve().parents[1]
ORDERS = REPO / "tests" / "fixtures" / "orders"
AMAZON = json.loads((ORDERS / "amazon-spec-orders.json").read_text())["orders"]
WALMART = json.loads((ORDERS / "walmart-spec-orders.json").read_text())["orders"]
CENT = 0.005
# PostV1Orders' body fields and required ones, from the admin schema (cassettes/README.md).
SPEC_COMMERCE = read_metadata(REPO / "cassettes" / "spec-adobe-commerce.yaml")
POST_ORDERS = next(op["body"] for op in SPEC_COMMERCE["operations"]
                   if op["operation"] == "PostV1Orders")


def _money(amount: str) -> dict[str, str]:
    return {"amount": amount, "currencyCode": "USD"}


def _every_breakdown() -> dict[str, Any]:
    """The issue's example order with every other breakdown type, per item and per order
    (DISCOUNT negative, as proceeds lower the seller's total; grandTotal their sum)."""
    order = copy.deepcopy(AMAZON[0])
    order["orderId"] = "123-4567890-0000008"
    first, second = order["orderItems"]
    del first["cancellation"]  # every amount counts (item cancellations: test_item_cancellations)
    first["proceeds"]["breakdowns"] += [
        {"type": "SHIPPING", "subtotal": _money("7.00")},
        {"type": "GIFT_WRAP", "subtotal": _money("3.50")},
        {"type": "COD_FEE", "subtotal": _money("2.00")},
        {"type": "DISCOUNT", "subtotal": _money("-10.00"), "detailedBreakdowns": [
            {"subtype": "ITEM", "value": _money("-6.00")},
            {"subtype": "SHIPPING", "value": _money("-4.00")}]},
    ]
    second["proceeds"]["breakdowns"] += [
        {"type": "OTHER", "subtotal": _money("1.25")},
        {"type": "TAX", "subtotal": _money("0.70"), "detailedBreakdowns": [
            {"subtype": "SHIPPING", "value": _money("0.70")}]},
    ]
    # Order level, only the tip: the other types are the items' sums. ITEM 149.97 +
    # SHIPPING 7 + GIFT_WRAP 3.5 + COD_FEE 2 + OTHER 1.25 + TAX 0.72 + DELIVERY_TIP 5 - 10.
    order["proceeds"] = {"grandTotal": _money("159.44"), "breakdowns": [
        {"type": "DELIVERY_TIP", "status": "PENDING", "subtotal": _money("5.00")}]}
    return order


AMAZON_CASES = [*AMAZON, _every_breakdown()]

# Where each Amazon breakdown type lands (docs/shipped.md, "Order totals"), as a function of
# the rendered body giving the amount (a DISCOUNT as the positive amount Amazon took off).
FEES = {"COD_FEE": "cod_fee", "DELIVERY_TIP": "delivery_tip", "OTHER": "other"}


def _fee(body: Mapping[str, Any], *, code: str) -> float:
    fees = body.get("extension_attributes", {}).get("custom_fees") or []
    return sum(f["custom_fee_amount"] for f in fees if f["custom_fee_code"] == code)


def _gift_wrap(body: Mapping[str, Any]) -> float:
    return float(body.get("extension_attributes", {}).get("gw_items_price") or 0)


LANDS: dict[str, Callable[[Mapping[str, Any]], float]] = {
    "ITEM": lambda b: float(b["subtotal"]),
    "SHIPPING": lambda b: float(b["shipping_amount"]),
    "TAX": lambda b: float(b["tax_amount"]),
    "DISCOUNT": lambda b: -float(b["discount_amount"]),
    "GIFT_WRAP": _gift_wrap,
    **{kind: functools.partial(_fee, code=code) for kind, code in FEES.items()},
}


@pytest.fixture(scope="module")
def config() -> Config:
    return require(load_config(REPO))


def create_body(config: Config, flow: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The POST /V1/orders body create_order sends for `raw` (as explain renders it)."""
    runtime: FlowRuntime = prepare(config, flow, {})
    order = normalise(runtime.systems[runtime.flow.source], raw)
    action = runtime.systems["adobe-commerce"].actions["create_order"]
    step = next(s for s in action.steps if s.name == "create")
    context = {
        "order": None, "source": order, "target": None, "steps": {}, "now": "2026-01-01T00:00:00Z",
        "args": {n: p.default for n, p in action.params.items()},
        "settings": runtime.system_settings["adobe-commerce"],
    }
    body = render_value(step.request.json, context, omit_none=True)
    assert isinstance(body, dict)
    return dict(body["entity"])


# admin-ui-sdk-custom-fees-data-custom-fees-interface's `required` (admin-schema-2.4.9.yaml).
FEE_REQUIRED = {
    "order_id", "custom_fee_code", "custom_fee_label", "custom_fee_amount",
    "base_custom_fee_amount", "custom_fee_amount_invoiced", "base_custom_fee_amount_invoiced",
    "custom_fee_amount_refunded", "base_custom_fee_amount_refunded",
    "apply_fee_on_last_invoice", "apply_fee_on_last_creditmemo",
}


def _paths(value: Any, prefix: str) -> set[str]:
    if isinstance(value, dict):
        return {p for key, sub in value.items()
                for p in {f"{prefix}.{key}"} | _paths(sub, f"{prefix}.{key}")}
    if isinstance(value, list):
        return {p for item in value for p in _paths(item, prefix + "[]")}
    return set()


def assert_in_the_spec(body: Mapping[str, Any]) -> None:
    """Every field sent is one the schema defines; a custom fee carries every required one."""
    sent = _paths(dict(body), "entity")
    assert sent <= set(POST_ORDERS["fields"]), sent - set(POST_ORDERS["fields"])
    for fee in body.get("extension_attributes", {}).get("custom_fees") or []:
        assert FEE_REQUIRED <= set(fee)


def adjustments(body: Mapping[str, Any]) -> float:
    extension = body.get("extension_attributes", {})
    fees = extension.get("custom_fees") or []
    return float(extension.get("gw_items_price") or 0) + sum(f["custom_fee_amount"] for f in fees)


def assert_adds_up(body: Mapping[str, Any]) -> None:
    total = (body["subtotal"] + body["shipping_amount"] + body["tax_amount"] + adjustments(body)
             + body["discount_amount"])
    assert body["discount_amount"] <= 0
    assert abs(total - body["grand_total"]) < CENT, body
    for name in ("subtotal", "shipping_amount", "tax_amount", "discount_amount", "grand_total",
                 "shipping_discount_amount", "shipping_tax_amount"):
        assert body["base_" + name] == body[name]
    for fee in body.get("extension_attributes", {}).get("custom_fees") or []:
        assert fee["base_custom_fee_amount"] == fee["custom_fee_amount"]


def _cancelled(item: Mapping[str, Any]) -> bool:
    return bool((item.get("cancellation") or {}).get("cancellationExecution"))


def breakdown_totals(raw: Mapping[str, Any]) -> dict[str, float]:
    """Each breakdown type's amount: the order-level breakdown, else the items' sum; less
    the cancelled items' (Amazon's order-level breakdowns still count them)."""
    totals: dict[str, float] = {}
    cancelled: dict[str, float] = {}
    for item in raw.get("orderItems") or []:
        for entry in (item.get("proceeds") or {}).get("breakdowns") or []:
            amount = float(entry["subtotal"]["amount"])
            totals[entry["type"]] = totals.get(entry["type"], 0.0) + amount
            if _cancelled(item):
                cancelled[entry["type"]] = cancelled.get(entry["type"], 0.0) + amount
    for entry in (raw.get("proceeds") or {}).get("breakdowns") or []:
        totals[entry["type"]] = float(entry["subtotal"]["amount"])
    return {kind: amount - cancelled.get(kind, 0.0) for kind, amount in totals.items()}


def live_grand_total(raw: Mapping[str, Any]) -> float:
    """Amazon's grandTotal less the cancelled items' proceedsTotal."""
    return float(raw["proceeds"]["grandTotal"]["amount"]) - sum(
        float(item["proceeds"]["proceedsTotal"]["amount"])
        for item in raw.get("orderItems") or [] if _cancelled(item))


def detailed(raw: Mapping[str, Any], kind: str, subtype: str) -> float:
    return sum(float(d["value"]["amount"]) for item in raw.get("orderItems") or []
               for entry in (item.get("proceeds") or {}).get("breakdowns") or []
               if entry["type"] == kind and not _cancelled(item)
               for d in entry.get("detailedBreakdowns") or []
               if d["subtype"] == subtype)


@pytest.mark.parametrize("raw", AMAZON_CASES, ids=[o["orderId"] for o in AMAZON_CASES])
def test_amazon_order_totals_add_up(config: Config, raw: dict[str, Any]) -> None:
    body = create_body(config, "amazon-to-adobe-commerce", raw)
    assert abs(body["grand_total"] - live_grand_total(raw)) < CENT
    assert_adds_up(body)
    assert_in_the_spec(body)
    for kind, amount in breakdown_totals(raw).items():
        assert abs(LANDS[kind](body) - abs(amount)) < CENT, (kind, amount)
    assert abs(body["shipping_discount_amount"] - abs(detailed(raw, "DISCOUNT", "SHIPPING"))) < CENT
    assert abs(body["shipping_tax_amount"] - detailed(raw, "TAX", "SHIPPING")) < CENT


def test_the_issues_example_order(config: Config) -> None:
    """123-4567890-1234567: the 5.00 DELIVERY_TIP is a custom fee; the seller cancelled the
    first item (99.98 + 0.02 tax), so 49.99 + 5 = 54.99 of Amazon's 154.99."""
    body = create_body(config, "amazon-to-adobe-commerce", AMAZON[0])
    assert (body["subtotal"], body["shipping_amount"], body["tax_amount"], body["grand_total"]) == (
        49.99, 0, 0, 54.99)
    fee, = body["extension_attributes"]["custom_fees"]
    assert (fee["custom_fee_code"], fee["custom_fee_amount"]) == ("delivery_tip", 5.0)


def test_every_breakdown_type_is_documented_and_checked() -> None:
    """OrderProceedsBreakdown's types (its description's "Possible values") are the rows of
    docs/shipped.md's "Order totals" table, and this file checks where each lands."""
    possible = "ITEM, SHIPPING, GIFT_WRAP, COD_FEE, TAX, DISCOUNT, DELIVERY_TIP, OTHER"
    text = (REPO / "docs" / "shipped.md").read_text()
    rows = set(re.findall(r"^\| `([A-Z_]+)` \| ", text, flags=re.MULTILINE))
    assert set(possible.split(", ")) == set(LANDS) == rows


def _walmart_amounts(raw: Mapping[str, Any]) -> dict[str, float]:
    charges = [c for line in raw["orderLines"]["orderLine"] for c in line["charges"]["charge"]]
    discount = [c for c in charges if "Discount" in c["chargeName"]]
    return {
        "subtotal": sum(c["chargeAmount"]["amount"] for c in charges
                        if c["chargeType"] == "PRODUCT" and c not in discount),
        "shipping_amount": sum(c["chargeAmount"]["amount"] for c in charges
                               if c["chargeType"] == "SHIPPING"),
        "tax_amount": sum((c.get("tax") or {}).get("taxAmount", {}).get("amount", 0)
                          for c in charges),
        "discount_amount": -abs(sum(c["chargeAmount"]["amount"] for c in discount)),
    }


def _subscription_discount() -> dict[str, Any]:
    """The first Walmart example with a SubscriptionDiscount charge (ChargeType's description),
    a shipping charge and an orderSummary (5 + 2 + 0.34 + 0.1 - 0.5)."""
    order = copy.deepcopy(WALMART[0])
    order["purchaseOrderId"] = "1815367950008"
    order["orderSummary"] = {"totalAmount": {"currencyAmount": 6.94, "currencyUnit": "USD"}}
    order["orderLines"]["orderLine"][0]["charges"]["charge"] += [
        {"chargeType": "PRODUCT", "chargeName": "SubscriptionDiscount",
         "chargeAmount": {"currency": "USD", "amount": -0.5}},
        {"chargeType": "SHIPPING", "chargeName": "Shipping",
         "chargeAmount": {"currency": "USD", "amount": 2.0},
         "tax": {"taxName": "Tax1", "taxAmount": {"currency": "USD", "amount": 0.1}}},
    ]
    return order


WALMART_CASES = [*WALMART, _subscription_discount()]


@pytest.mark.parametrize("raw", WALMART_CASES, ids=[o["purchaseOrderId"] for o in WALMART_CASES])
def test_walmart_order_totals_add_up(config: Config, raw: dict[str, Any]) -> None:
    body = create_body(config, "walmart-to-adobe-commerce", raw)
    assert_adds_up(body)
    assert_in_the_spec(body)
    for name, amount in _walmart_amounts(raw).items():
        assert abs(body[name] - amount) < CENT, (name, amount)
    assert body["order_currency_code"] == "USD"
