"""Seed data: the scenarios of docs/scenarios.md, and `generated(n)` for benchmarks.

Each scenario is one `Kind` (the Amazon order's state, and the counterpart's state in VTEX or
Adobe Commerce); the same kinds, repeated deterministically, make the generated data sets.
Timestamps are relative to the sandbox clock: all within the last 24 hours and older than
two minutes, so a first run with the default look-back sees every order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from connector.sandbox.amazon import Amazon
from connector.sandbox.clock import parse_time
from connector.sandbox.commerce import Commerce
from connector.sandbox.records import (
    Buyer,
    Line,
    amazon_order,
    commerce_document,
    commerce_order,
    vtex_order,
    vtex_reservation,
)
from connector.sandbox.vtex import Vtex

__all__ = ["SCENARIOS", "Kind", "SeedData", "add_commerce", "add_vtex", "generated", "install",
           "scenarios"]

SKUS = ("SKU-1", "SKU-2", "SKU-3")
STOCK = 100
UPS_TRACK = ("1Z999AA10123456784", "United Parcel Service", "ups")
_ACTIVE_VTEX = frozenset({"payment-pending", "payment-approved", "window-to-cancel",
                          "ready-for-handling", "handling", "cancellation-requested"})
_NAMES = (("Ana", "Silva"), ("Ben", "Okafor"), ("Chloe", "Martin"), ("Dev", "Patel"),
          ("Emma", "Johansson"), ("Farid", "Haddad"), ("Grace", "Kim"), ("Hugo", "Moreau"))


@dataclass(frozen=True)
class Kind:
    """One scenario: the Amazon order and its counterpart.

    `commerce` is None (no Commerce order) or a state, optionally with `+invoiced`,
    `+shipped` (with a UPS track); a canceled Commerce order has every item canceled.
    `cancelled_items` > 0: only that many items (of at least two) are cancelled, by
    `cancelled_by`, and the order keeps `status` (an item-level cancellation).
    """

    flow: str
    status: str
    fulfilled_by: str = "MERCHANT"
    cancelled_by: str | None = None
    buyer_request: bool = False
    vtex: str | None = None
    commerce: str | None = None
    email: str | None = None
    cancelled_items: int = 0


_V, _C, _A = "amazon-to-vtex", "amazon-to-adobe-commerce", "adobe-commerce-to-amazon"
SCENARIOS: dict[str, Kind] = {
    "111-0000001-0000001": Kind(_V, "CANCELLED", cancelled_by="MERCHANT",
                                vtex="ready-for-handling"),
    "111-0000001-0000002": Kind(_V, "CANCELLED", cancelled_by="AMAZON", vtex="handling"),
    "111-0000001-0000003": Kind(_V, "CANCELLED", cancelled_by="BUYER", vtex="payment-approved"),
    "111-0000001-0000004": Kind(_V, "CANCELLED", cancelled_by="MERCHANT", vtex="invoiced"),
    "111-0000001-0000005": Kind(_V, "CANCELLED", cancelled_by="AMAZON", vtex="canceled"),
    "111-0000001-0000006": Kind(_V, "PENDING"),
    "111-0000001-0000007": Kind(_V, "CANCELLED", cancelled_by="BUYER"),
    "111-0000001-0000008": Kind(_V, "UNSHIPPED", buyer_request=True, vtex="handling"),
    "111-0000001-0000009": Kind(_V, "SHIPPED", vtex="invoiced"),
    "111-0000001-0000010": Kind(_V, "UNSHIPPED", fulfilled_by="AMAZON", vtex="handling"),
    "112-0000002-0000001": Kind(_C, "PENDING"),
    "112-0000002-0000002": Kind(_C, "UNSHIPPED", email="buyer2@example.com"),
    "112-0000002-0000003": Kind(_C, "SHIPPED", fulfilled_by="AMAZON"),
    "112-0000002-0000004": Kind(_C, "CANCELLED", cancelled_by="MERCHANT", commerce="processing"),
    "112-0000002-0000005": Kind(_C, "UNSHIPPED", fulfilled_by="AMAZON"),
    "112-0000002-0000006": Kind(_C, "UNSHIPPED", commerce="processing+invoiced"),
    "112-0000002-0000007": Kind(_C, "CANCELLED", cancelled_by="AMAZON",
                                commerce="processing+invoiced"),
    # Invoiced on import (Amazon Sales Channel) and then shipped with a track: Magento has
    # made it complete, as its StateResolver does once nothing is left to invoice or ship.
    "113-0000003-0000001": Kind(_A, "UNSHIPPED", commerce="complete+invoiced+shipped"),
    "113-0000003-0000002": Kind(_A, "UNSHIPPED", commerce="canceled"),
    "113-0000003-0000003": Kind(_A, "SHIPPED", commerce="canceled"),
    "113-0000003-0000004": Kind(_A, "UNSHIPPED", commerce="processing+invoiced"),
    # Item-level cancellations (one item of two), after the other flows' seeds so that
    # their timing and lines stay as they were.
    "111-0000001-0000011": Kind(_V, "UNSHIPPED", cancelled_by="MERCHANT", cancelled_items=1,
                                vtex="handling"),
    "112-0000002-0000008": Kind(_C, "UNSHIPPED", cancelled_by="BUYER", cancelled_items=1),
}


@dataclass
class SeedData:
    """Records to install into the three simulators."""

    amazon_orders: list[dict[str, Any]] = field(default_factory=list)
    vtex_orders: list[dict[str, Any]] = field(default_factory=list)
    vtex_reservations: list[dict[str, Any]] = field(default_factory=list)
    stock: dict[str, int] = field(default_factory=dict)
    commerce_orders: list[dict[str, Any]] = field(default_factory=list)
    commerce_invoices: list[dict[str, Any]] = field(default_factory=list)
    commerce_shipments: list[dict[str, Any]] = field(default_factory=list)
    commerce_customers: list[dict[str, Any]] = field(default_factory=list)
    walmart_orders: list[dict[str, Any]] = field(default_factory=list)
    walmart_mx_orders: list[dict[str, Any]] = field(default_factory=list)


def _lines(order_id: str, index: int, *, two: bool = False) -> list[Line]:
    base = f"{int(order_id.replace('-', '')) % 10**12:012d}"
    lines = [Line(SKUS[index % 3], 1 + index % 2, base + "01")]
    if two or index % 3 == 0:
        lines.append(Line(SKUS[(index + 1) % 3], 1, base + "02"))
    return lines


def _buyer(order_id: str, index: int, kind: Kind) -> Buyer:
    first, last = _NAMES[index % len(_NAMES)]
    email = kind.email or f"{order_id.replace('-', '')}@marketplace.amazon.com"
    return Buyer(first, last, email)


def _add(data: SeedData, order_id: str, kind: Kind, index: int, created: datetime,
         updated: datetime) -> None:
    lines = _lines(order_id, index, two=kind.cancelled_items > 0)
    buyer = _buyer(order_id, index, kind)
    data.amazon_orders.append(amazon_order(
        order_id, status=kind.status, fulfilled_by=kind.fulfilled_by, created=created,
        updated=updated, lines=lines, buyer=buyer, cancelled_by=kind.cancelled_by,
        buyer_request=kind.buyer_request, cancelled_items=kind.cancelled_items))
    if kind.vtex is not None:
        add_vtex(data, order_id, kind.vtex, 500000 + index, created, updated, lines, buyer)
    if kind.commerce is not None:
        add_commerce(data, order_id, kind.commerce, created, updated, lines, buyer)


def add_vtex(data: SeedData, order_id: str, status: str, sequence: int, created: datetime,
             updated: datetime, lines: list[Line], buyer: Buyer, affiliate: str = "AMZ") -> None:
    """Seed the VTEX order `{affiliate}-{order_id}-01` (and its reservation while active)."""
    vtex = vtex_order(order_id, status=status, sequence=sequence, created=created,
                      updated=updated, lines=lines, buyer=buyer, affiliate=affiliate)
    data.vtex_orders.append(vtex)
    if status in _ACTIVE_VTEX:
        data.vtex_reservations.append(vtex_reservation(
            vtex["items"][0]["lockId"], created=created, lines=lines, buyer=buyer,
            status=2 if status in ("ready-for-handling", "handling") else 1))


def add_commerce(data: SeedData, order_id: str, spec: str, created: datetime,
                 updated: datetime, lines: list[Line], buyer: Buyer,
                 track: tuple[str, str, str] = UPS_TRACK) -> None:
    """Seed the Commerce order with `ext_order_id` = `order_id`; `spec` is a state with
    optional `+invoiced` / `+shipped` (see `Kind.commerce`; `track` the shipment's)."""
    state, *flags = spec.split("+")
    entity_id = len(data.commerce_orders) + 1
    order = commerce_order(order_id, entity_id=entity_id, first_item_id=entity_id * 10,
                           state=state, created=created, updated=updated, lines=lines,
                           buyer=buyer, invoiced="invoiced" in flags,
                           shipped="shipped" in flags, canceled=state == "canceled")
    data.commerce_orders.append(order)
    if "invoiced" in flags:
        data.commerce_invoices.append(commerce_document(
            "invoice", entity_id, order, first_item_id=entity_id * 10))
    if "shipped" in flags:
        data.commerce_shipments.append(commerce_document(
            "shipment", entity_id, order, first_item_id=entity_id * 10, track=track))


def scenarios(now: datetime) -> SeedData:
    """The seed of docs/scenarios.md, timed relative to `now`."""
    data = SeedData(stock={sku: STOCK for sku in SKUS})
    for index, (order_id, kind) in enumerate(SCENARIOS.items()):
        created = now - timedelta(hours=23) + timedelta(minutes=50 * index)
        _add(data, order_id, kind, index, created, created + timedelta(minutes=30))
    data.commerce_customers.append({
        "email": "returning.customer@example.com", "firstname": "Rita", "lastname": "Returning",
        "website_id": 1, "store_id": 1, "group_id": 1})
    return data


def generated(n: int, now: datetime, seed: int = 0) -> SeedData:
    """`n` Amazon orders with counterparts, mixing the scenario kinds deterministically.

    Ids are `21F-SSSSSSS-NNNNNNN` (F = 1, 2, 3 for the three flows, as in the scenarios' 11F
    prefixes; S from `seed`; N the index), so generated orders never collide with scenarios.
    """
    rng = random.Random(seed)
    # The item-level kinds are left out: the generated sets (benchmarks, the fault tests'
    # seeded runs) stay the orders they were.
    kinds = [kind for kind in SCENARIOS.values() if not kind.cancelled_items]
    data = SeedData(stock={sku: STOCK + 3 * n for sku in SKUS})
    span = timedelta(hours=23)
    for index in range(n):
        kind = rng.choice(kinds)
        flow_digit = {_V: 1, _C: 2, _A: 3}[kind.flow]
        order_id = f"21{flow_digit}-{seed % 10**7:07d}-{index:07d}"
        created = now - timedelta(hours=24) + span * (index / max(n, 1))
        updated = created + timedelta(minutes=rng.randint(1, 30))
        _add(data, order_id, kind, index, created, updated)
    return data


def install(data: SeedData, amazon: Amazon, vtex: Vtex, commerce: Commerce) -> None:
    """Put seed records into the simulators (reserved stock follows the reservations)."""
    for record in data.amazon_orders:
        amazon.orders[record["orderId"]] = record
    for record in data.vtex_orders:
        vtex.orders[record["orderId"]] = record
    for sku, quantity in data.stock.items():
        vtex.logistics.set_stock(sku, quantity)
    for reservation in data.vtex_reservations:
        vtex.logistics.reservations[reservation["LockId"]] = reservation
        for sla in reservation["SlaRequest"]:
            balance = vtex.inventory[sla["item"]["id"]]["balance"][0]
            balance["reservedQuantity"] += sla["item"]["quantity"]
    for order in data.commerce_orders:
        commerce.orders[order["entity_id"]] = order
        commerce.saw_id("order", order["entity_id"])
        for item in order["items"]:
            commerce.saw_id("order_item", item["item_id"])
    for table, documents in ((commerce.invoices, data.commerce_invoices),
                             (commerce.shipments, data.commerce_shipments)):
        for document in documents:
            table[document["entity_id"]] = document
            name = "invoice" if table is commerce.invoices else "shipment"
            commerce.saw_id(name, document["entity_id"])
            commerce.saw_id("document_item", max(line["entity_id"] for line in
                                                 document["items"]))
            for track in document.get("tracks", []):
                commerce.saw_id("shipment_track", track["entity_id"])
    for customer in data.commerce_customers:
        commerce.add_customer(customer)


# -- counterparts for tests: records built from an Amazon order already in the sandbox ------
def lines_of(amazon_record: dict[str, Any]) -> list[Line]:
    """The order's lines (sellerSku, quantityOrdered, orderItemId)."""
    return [Line(item["product"].get("sellerSku", ""), int(item["quantityOrdered"]),
                 item["orderItemId"]) for item in amazon_record["orderItems"]]


def buyer_of(amazon_record: dict[str, Any]) -> Buyer:
    """The buyer of an Amazon order, split into first and last name at the first space."""
    buyer = amazon_record.get("buyer") or {}
    first, _, last = str(buyer.get("buyerName") or "Amazon Customer").partition(" ")
    email = buyer.get("buyerEmail") or f"{amazon_record['orderId']}@marketplace.amazon.com"
    return Buyer(first, last or "-", email)


def vtex_counterpart(amazon_record: dict[str, Any], status: str, sequence: int,
                     now: datetime) -> dict[str, Any]:
    """The VTEX order the Amazon channel would have created for `amazon_record`."""
    created = parse_time(amazon_record["createdTime"]) or now
    return vtex_order(amazon_record["orderId"], status=status, sequence=sequence,
                      created=created, updated=now, lines=lines_of(amazon_record),
                      buyer=buyer_of(amazon_record))


def commerce_counterpart(amazon_record: dict[str, Any], commerce: Commerce, state: str,
                         now: datetime, *, invoiced: bool = False,
                         shipped: bool = False) -> dict[str, Any]:
    """Install the Commerce order (and its invoice/shipment) imported for `amazon_record`."""
    lines = lines_of(amazon_record)
    entity_id = commerce.next_id("order")
    first_item = commerce.next_id("order_item")
    commerce.saw_id("order_item", first_item + len(lines) - 1)
    order = commerce_order(amazon_record["orderId"], entity_id=entity_id,
                           first_item_id=first_item, state=state,
                           created=parse_time(amazon_record["createdTime"]) or now,
                           updated=now, lines=lines, buyer=buyer_of(amazon_record),
                           invoiced=invoiced, shipped=shipped, canceled=state == "canceled")
    stored = commerce.add_order(order)
    for kind, wanted, table in (("invoice", invoiced, commerce.invoices),
                                ("shipment", shipped, commerce.shipments)):
        if wanted:
            first_line = commerce.next_id("document_item")
            commerce.saw_id("document_item", first_line + len(lines) - 1)
            document_id = commerce.next_id(kind)
            table[document_id] = commerce_document(
                kind, document_id, stored, first_item_id=first_line,
                track=UPS_TRACK if kind == "shipment" else None)
            commerce.saw_id("shipment_track", document_id)
    return stored
