"""Walmart México seed data: the México scenarios of docs/scenarios.md (purchase orders P4…).

Records are `#/Order`s of `mx-mp-orders.json`, shaped after its getAllOrdersUsingCursor
example: `orderLines` a plain array of lines with `primeLineNumber`, `orderLineStatus[]`,
`item.unitPrice` (tax included) and `item.unitPriceWithoutTax`, `seller.shipNodeType`
(`PangaeaMarketplace`: the seller ships). Counterparts as for the US: the VTEX order
`WLM-{purchaseOrderId}-01` and the Commerce order with `ext_order_id` = the purchase order id.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from connector.sandbox.records import Buyer, Line
from connector.sandbox.seed import SKUS, SeedData, add_commerce, add_vtex
from connector.sandbox.walmart_mx import WFS_NODE, WalmartMx, mx_time

__all__ = ["FEDEX_TRACK", "MX_SCENARIOS", "MxKind", "add_mx_scenarios", "generated_mx", "install_mx",
           "mx_order"]

AFFILIATE = "WLM"
FEDEX_TRACK = ("794612345678", "Federal Express", "fedex")
_V, _C, _A = "walmart-to-vtex", "walmart-to-adobe-commerce", "adobe-commerce-to-walmart"
_SELLER, _CUSTOMER = "SELLER_CANCEL_OUT_OF_STOCK", "CUSTOMER_REQUESTED_SELLER_TO_CANCEL"
_CODES = {"Created": "3300", "Acknowledged": "3350.10", "Shipped": "3700", "Delivered": "3700.7",
          "Cancelled": "9000"}


@dataclass(frozen=True)
class MxKind:
    """One México scenario: each line's status, the Cancelled lines' reason, the
    counterparts (as `walmart_seed.WalmartKind`)."""

    flow: str
    lines: tuple[str, ...]
    reason: str | None = None
    ship_node: str = "PangaeaMarketplace"
    vtex: str | None = None
    commerce: str | None = None
    email: str | None = None


MX_SCENARIOS: dict[str, MxKind] = {
    "P4000000601": MxKind(_V, ("Cancelled", "Cancelled"), _SELLER, vtex="ready-for-handling"),
    "P4000000602": MxKind(_V, ("Cancelled",), _CUSTOMER, vtex="payment-approved"),
    "P4000000603": MxKind(_V, ("Cancelled", "Acknowledged"), _SELLER, vtex="handling"),
    "P4000000701": MxKind(_C, ("Created", "Created"), email="comprador701@example.com"),
    "P4000000702": MxKind(_C, ("Cancelled",), _SELLER, commerce="processing"),
    "P4000000703": MxKind(_C, ("Shipped",), ship_node=WFS_NODE),
    "P4000000704": MxKind(_C, ("Created",), ship_node=WFS_NODE),
    "P4000000801": MxKind(_A, ("Acknowledged", "Acknowledged"),
                          commerce="complete+invoiced+shipped"),
    "P4000000802": MxKind(_A, ("Acknowledged",), commerce="canceled"),
    "P4000000803": MxKind(_A, ("Shipped",), commerce="canceled"),
}


def _charges(line: Line, tax: Decimal) -> list[dict[str, Any]]:
    mxn = {"currency": "MXN"}
    return [
        {"chargeType": "SHIPPING", "chargeName": "SHIPPING_CH",
         "chargeAmount": {**mxn, "amount": "0"},
         "tax": [{"taxName": "SHIP_IVA_TAX", "taxAmount": {**mxn, "amount": "0"}}]},
        {"chargeType": "DISCOUNT", "chargeName": "COUPON_DISC",
         "chargeAmount": {**mxn, "amount": "0"}},
        {"chargeType": "PRODUCT", "chargeName": "ItemPrice",
         "tax": [{"taxName": "IVA_TAX", "taxAmount": {**mxn, "amount": str(tax)}}]}]


def mx_order(purchase_order_id: str, *, statuses: tuple[str, ...], created: datetime,
             lines: list[Line], buyer: Buyer, reason: str | None = None,
             ship_node: str = "PangaeaMarketplace") -> dict[str, Any]:
    """A `#/Order`; `statuses` gives each line's status (all its units)."""
    updated = mx_time(created + timedelta(minutes=30))
    order_lines: list[dict[str, Any]] = []
    for number, (line, status) in enumerate(zip(lines, statuses, strict=True), start=1):
        net = line.price
        tax = (net * Decimal("0.16")).quantize(Decimal("0.01"))
        entry: dict[str, Any] = {"status": status, "statusCode": _CODES[status],
                                 "statusDate": updated, "statusQuantity": {
                                     "unitOfMeasurement": "EACH", "amount": str(line.quantity)}}
        if status == "Cancelled" and reason is not None:
            entry["cancellationReason"] = reason
        order_lines.append({
            "primeLineNumber": str(number), "coLineNumber": str(number),
            "item": {"productName": line.title, "sku": line.sku, "condition": "New",
                     "unitPrice": {"currency": "MXN", "amount": str(net + tax)},
                     "unitPriceWithoutTax": {"currency": "MXN", "amount": str(net)}},
            "charges": _charges(line, tax),
            "orderLineQuantity": {"unitOfMeasurement": "EACH", "amount": str(line.quantity)},
            "orderLineStatus": [entry], "shippingMethod": "STANDARD",
            "soPrimeLineSubLineNo": f"{purchase_order_id[1:]}-{number}-1", "isMSIEnabled": "N",
            "seller": {"id": "10900032894", "name": "Sandbox Seller MX",
                       "shipNodeType": ship_node}})
    total = sum((line.price * line.quantity for line in lines), Decimal(0))
    shipped = [{"primeLineNo": line["primeLineNumber"], "shipmentLineNo": line["primeLineNumber"],
                "quantity": dict(line["orderLineQuantity"])}
               for line in order_lines if line["orderLineStatus"][0]["status"] == "Shipped"]
    shipments = [{"shipmentLines": shipped, "shipmentNo": "1", "status": "Shipped",
                  "shipDateTime": updated, "carrier": "MX-FEDX", "methodCode": "STANDARD",
                  "trackingNumber": f"7946{purchase_order_id[-8:]}",
                  "trackingUrl": f"https://www.fedex.com/fedextrack/?trknbr=7946{purchase_order_id[-8:]}"}
                 ] if shipped else []
    return {
        "purchaseOrderId": purchase_order_id, "customerOrderId": "1" + purchase_order_id[2:],
        "customerEmailId": buyer.email, "orderDate": mx_time(created),
        "shippingInfo": {"phone": "5554556566",
                         "estimatedDeliveryDate": mx_time(created + timedelta(days=5)),
                         "postalAddress": {"name": buyer.name, "address1": "Av. Reforma 222",
                                           "address3": "JUAREZ", "address4": "CUAUHTEMOC",
                                           "city": "CIUDAD DE MEXICO", "state": "CIUDAD DE MEXICO",
                                           "postalCode": "06600", "country": "MX"}},
        "totalLines": str(len(lines)),
        "totalQuantity": str(sum(line.quantity for line in lines)),
        "orderLines": order_lines, "shipments": shipments,
        "orderTotal": {"currency": "MXN", "amount": str(total)},
        "paymentMethod": "CREDITCARD"}


def add_mx_scenarios(data: SeedData, now: datetime) -> SeedData:
    """Add the México scenarios of docs/scenarios.md to `data`, timed relative to `now`."""
    for index, (purchase_order_id, kind) in enumerate(MX_SCENARIOS.items()):
        _add(data, purchase_order_id, kind, index,
             now - timedelta(hours=20) + timedelta(minutes=40 * index))
    return data


def generated_mx(data: SeedData, n: int, now: datetime, seed: int = 0) -> SeedData:
    """Add `n` México orders mixing the scenario kinds deterministically (ids `P6FSSSSNNNNNNN`:
    F = 1, 2, 3 for the three flows, S from `seed`, N the index)."""
    rng = random.Random(seed + 2_000_003)
    kinds = list(MX_SCENARIOS.values())
    for index in range(n):
        kind = rng.choice(kinds)
        flow_digit = {_V: 1, _C: 2, _A: 3}[kind.flow]
        _add(data, f"P6{flow_digit}{seed % 10**4:04d}{index:07d}", kind, index,
             now - timedelta(hours=24) + timedelta(hours=23) * (index / max(n, 1)), 8_000_000)
    for sku in SKUS:
        data.stock[sku] = data.stock.get(sku, 0) + 3 * n
    return data


def _add(data: SeedData, purchase_order_id: str, kind: MxKind, index: int,
         created: datetime, sequence: int = 800000) -> None:
    buyer = Buyer("Lucía", "Hernández",
                  kind.email or f"{purchase_order_id.lower()}@relay.walmart.com.mx")
    lines = [Line(SKUS[(index + n) % 3], 1, str(n + 1)) for n in range(len(kind.lines))]
    data.walmart_mx_orders.append(mx_order(purchase_order_id, statuses=kind.lines,
                                           created=created, lines=lines, buyer=buyer,
                                           reason=kind.reason, ship_node=kind.ship_node))
    updated = created + timedelta(minutes=30)
    if kind.vtex is not None:
        add_vtex(data, purchase_order_id, kind.vtex, sequence + index, created, updated,
                 lines, buyer, AFFILIATE)
    if kind.commerce is not None:
        add_commerce(data, purchase_order_id, kind.commerce, created, updated, lines,
                     buyer, track=FEDEX_TRACK)


def install_mx(data: SeedData, walmart_mx: WalmartMx) -> None:
    """Put the seeded México orders into the simulator."""
    for record in data.walmart_mx_orders:
        walmart_mx.add_order(record)
