"""Walmart seed data: the Walmart scenarios of docs/scenarios.md, and generated sets.

Records are `GetOrderResponseRecord`s shaped after the getAllOrders example of
`us-mp-orders.json` (orderLines.orderLine[] as `OrderLineType`, which every example uses).
Counterparts: the VTEX order `{walmart_affiliate_id}-{purchaseOrderId}-01` (affiliate `WLM`)
and the Commerce order with `ext_order_id` = the purchase order id. Walmart US splits orders
into lines of one unit; `ItemPrice` is read as the unit price (the spec does not say).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from connector.sandbox.records import Buyer, Line
from connector.sandbox.seed import SKUS, SeedData, add_commerce, add_vtex
from connector.sandbox.walmart import Walmart, epoch_ms

__all__ = ["WALMART_SCENARIOS", "AFFILIATE", "WalmartKind", "add_walmart_scenarios",
           "generated_walmart", "install_walmart", "walmart_order"]

AFFILIATE = "WLM"
_NAMES = (("Kathryn", "Cole"), ("Steffen", "Matt"), ("Dorothy", "Kelly"), ("Jane", "Doe"))


@dataclass(frozen=True)
class WalmartKind:
    """One scenario: the Walmart order (one status per line) and its counterpart.

    `reason` is the cancellationReason of the Cancelled lines (None: none given, Walmart's
    own cancellation); `intent` marks every open line with the customer's `intentToCancel`;
    `vtex` and `commerce` as in `seed.Kind`.
    """

    flow: str
    lines: tuple[str, ...]
    reason: str | None = None
    ship_node: str = "SellerFulfilled"
    intent: bool = False
    vtex: str | None = None
    commerce: str | None = None
    email: str | None = None


_V, _C, _A = "walmart-to-vtex", "walmart-to-adobe-commerce", "adobe-commerce-to-walmart"
#: Scenarios left out of `generated_walmart`, so that its sets stay the orders they were.
NOT_GENERATED = frozenset({"4000000000208"})
_SELLER, _CUSTOMER = "SELLER_CANCEL_OUT_OF_STOCK", "CUSTOMER_REQUESTED_SELLER_TO_CANCEL"
_WFS = "WFSFulfilled"
WALMART_SCENARIOS: dict[str, WalmartKind] = {
    "4000000000101": WalmartKind(_V, ("Cancelled", "Cancelled"), _SELLER,
                                 vtex="ready-for-handling"),
    "4000000000102": WalmartKind(_V, ("Cancelled",), None, vtex="handling"),
    "4000000000103": WalmartKind(_V, ("Cancelled",), _CUSTOMER, vtex="payment-approved"),
    "4000000000104": WalmartKind(_V, ("Cancelled",), _SELLER, vtex="invoiced"),
    "4000000000105": WalmartKind(_V, ("Cancelled",), None, vtex="canceled"),
    "4000000000106": WalmartKind(_V, ("Cancelled", "Acknowledged"), _SELLER, vtex="handling"),
    "4000000000107": WalmartKind(_V, ("Cancelled",), _CUSTOMER),
    "4000000000108": WalmartKind(_V, ("Acknowledged",), intent=True, vtex="handling"),
    "4000000000109": WalmartKind(_V, ("Shipped",), vtex="invoiced"),
    "4000000000110": WalmartKind(_V, ("Acknowledged",), ship_node=_WFS, vtex="handling"),
    "4000000000201": WalmartKind(_C, ("Created", "Created"), email="buyer201@example.com"),
    "4000000000202": WalmartKind(_C, ("Shipped",), ship_node=_WFS),
    "4000000000203": WalmartKind(_C, ("Acknowledged",), ship_node=_WFS),
    "4000000000204": WalmartKind(_C, ("Cancelled",), _SELLER, commerce="processing"),
    "4000000000205": WalmartKind(_C, ("Cancelled",), None, commerce="processing+invoiced"),
    "4000000000206": WalmartKind(_C, ("Acknowledged",), commerce="processing"),
    "4000000000207": WalmartKind(_C, ("Shipped",), commerce="processing"),
    "4000000000208": WalmartKind(_C, ("Cancelled", "Created"), _SELLER),
    "4000000000301": WalmartKind(_A, ("Acknowledged", "Acknowledged"),
                                 commerce="complete+invoiced+shipped"),
    "4000000000302": WalmartKind(_A, ("Acknowledged",), commerce="canceled"),
    "4000000000303": WalmartKind(_A, ("Shipped",), commerce="canceled"),
    "4000000000304": WalmartKind(_A, ("Acknowledged",), commerce="processing+invoiced"),
}


def _entry(status: str, line: Line, reason: str | None, shipped_at: datetime,
           number: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"status": status, "statusQuantity": {
        "unitOfMeasurement": "EACH", "amount": str(line.quantity)}}
    if status == "Cancelled" and reason is not None:
        entry["cancellationReason"] = reason
    if status in ("Shipped", "Delivered"):
        entry["trackingInfo"] = {
            "shipDateTime": epoch_ms(shipped_at), "carrierName": {"carrier": "UPS"},
            "methodCode": "Standard", "trackingNumber": f"1Z999AA1{number[-7:]}",
            "trackingURL": f"https://www.ups.com/track?tracknum=1Z999AA1{number[-7:]}"}
    return entry


def walmart_order(purchase_order_id: str, *, statuses: tuple[str, ...], created: datetime,
                  lines: list[Line], buyer: Buyer, reason: str | None = None,
                  ship_node: str = "SellerFulfilled", intent: bool = False) -> dict[str, Any]:
    """A GetOrderResponseRecord; `statuses` gives each line's status (all its units)."""
    stamp, updated = epoch_ms(created), created + timedelta(minutes=30)
    order_lines = []
    for line, status in zip(lines, statuses, strict=True):
        record: dict[str, Any] = {
            "lineNumber": line.order_item_id,
            "item": {"productName": line.title, "sku": line.sku},
            "charges": {"charge": [{
                "chargeType": "PRODUCT", "chargeName": "ItemPrice",
                "chargeAmount": {"currency": "USD", "amount": float(line.price)},
                "tax": {"taxName": "Tax1", "taxAmount": {"currency": "USD", "amount": 0}}}]},
            "orderLineQuantity": {"unitOfMeasurement": "EACH", "amount": str(line.quantity)},
            "statusDate": epoch_ms(updated),
            "orderLineStatuses": {"orderLineStatus": [
                _entry(status, line, reason, updated, purchase_order_id)]},
            "fulfillment": {"fulfillmentOption": "S2H", "shipMethod": "STANDARD",
                            "pickUpDateTime": epoch_ms(created + timedelta(days=2))},
        }
        if intent and status in ("Created", "Acknowledged"):
            record["intentToCancel"] = "Y"
        order_lines.append(record)
    total = sum((line.price * line.quantity for line in lines), Decimal(0))
    return {
        "purchaseOrderId": purchase_order_id,
        "customerOrderId": "5" + purchase_order_id[1:],
        "customerEmailId": buyer.email, "orderType": "REGULAR", "orderDate": stamp,
        "shippingInfo": {
            "phone": buyer.phone.replace("+1 ", "").replace("-", ""),
            "estimatedDeliveryDate": epoch_ms(created + timedelta(days=5)),
            "estimatedShipDate": epoch_ms(created + timedelta(days=2)), "methodCode": "Standard",
            "postalAddress": {"name": buyer.name, "address1": buyer.street, "city": buyer.city,
                              "state": buyer.region, "postalCode": buyer.postcode,
                              "country": "USA", "addressType": "RESIDENTIAL"}},
        "orderLines": {"orderLine": order_lines},
        "orderSummary": {"totalAmount": {"currencyAmount": float(total), "currencyUnit": "USD"}},
        "shipNode": {"type": ship_node, "name": "Sandbox DC" if ship_node != "WFSFulfilled"
                     else "Walmart Fulfillment Services", "id": "10001"},
    }


def _lines(index: int, count: int) -> list[Line]:
    return [Line(SKUS[(index + n) % 3], 1, str(n + 1)) for n in range(count)]


def _add(data: SeedData, purchase_order_id: str, kind: WalmartKind, index: int,
         created: datetime) -> None:
    first, last = _NAMES[index % len(_NAMES)]
    buyer = Buyer(first, last, kind.email or f"{purchase_order_id}@relay.walmart.com")
    lines = _lines(index, len(kind.lines))
    data.walmart_orders.append(walmart_order(
        purchase_order_id, statuses=kind.lines, created=created, lines=lines, buyer=buyer,
        reason=kind.reason, ship_node=kind.ship_node, intent=kind.intent))
    updated = created + timedelta(minutes=30)
    if kind.vtex is not None:
        add_vtex(data, purchase_order_id, kind.vtex, 700000 + index, created, updated, lines,
                 buyer, AFFILIATE)
    if kind.commerce is not None:
        add_commerce(data, purchase_order_id, kind.commerce, created, updated, lines, buyer)


def add_walmart_scenarios(data: SeedData, now: datetime) -> SeedData:
    """Add the Walmart scenarios of docs/scenarios.md to `data`, timed relative to `now`."""
    for index, (purchase_order_id, kind) in enumerate(WALMART_SCENARIOS.items()):
        _add(data, purchase_order_id, kind, index,
             now - timedelta(hours=22) + timedelta(minutes=40 * index))
    return data


def generated_walmart(data: SeedData, n: int, now: datetime, seed: int = 0) -> SeedData:
    """Add `n` Walmart orders mixing the scenario kinds deterministically.

    Ids are `5FSSSSNNNNNNN` (F = 1, 2, 3 for the three flows; S from `seed`; N the index).
    """
    rng = random.Random(seed + 1_000_003)
    # As seed.generated: the partly cancelled import (added last) stays out of the mix.
    kinds = [kind for number, kind in WALMART_SCENARIOS.items() if number not in NOT_GENERATED]
    span = timedelta(hours=23)
    for index in range(n):
        kind = rng.choice(kinds)
        flow_digit = {_V: 1, _C: 2, _A: 3}[kind.flow]
        purchase_order_id = f"5{flow_digit}{seed % 10**4:04d}{index:07d}"
        _add(data, purchase_order_id, kind, index,
             now - timedelta(hours=24) + span * (index / max(n, 1)))
    for sku in SKUS:
        data.stock[sku] = data.stock.get(sku, 0) + 3 * n
    return data


def install_walmart(data: SeedData, walmart: Walmart) -> None:
    """Put the seeded Walmart orders into the simulator (modified 30 minutes after placing)."""
    for record in data.walmart_orders:
        created = datetime.fromtimestamp(record["orderDate"] / 1000, timezone.utc)
        walmart.add_order(record, modified=created + timedelta(minutes=30))
