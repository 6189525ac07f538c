"""Adobe Commerce sales documents: invoice, ship (with tracks), offline refund, and searches.

`POST /V1/order/{orderId}/invoice|ship|refund` return the new document's id and move the
order's quantities and state (`commerce_rules.resolve_state`). Refusals use Magento's
"… Document Validation Error(s):" messages with the validators' text, answered as 400.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from connector.sandbox.commerce_rules import (
    can_creditmemo,
    can_invoice,
    can_ship,
    number,
    qty,
    qty_to_invoice,
    qty_to_refund,
    qty_to_ship,
    resolve_state,
)
from connector.sandbox.errors import magento_error
from connector.sandbox.search_criteria import parse_search_criteria
from connector.sandbox.search_index import TableIndex
from connector.sandbox.server import HttpError, Request, Response, Route, route

if TYPE_CHECKING:
    from connector.sandbox.commerce import Commerce

__all__ = ["CommerceDocuments"]

_STATUS_REFUSAL = frozenset({"holded", "payment_review", "canceled", "closed"})


def _refused(document: str, message: str) -> HttpError:
    return HttpError(magento_error(400, f"{document} Document Validation Error(s):\n{message}"))


class CommerceDocuments:
    """Invoices, shipments and credit memos of the simulated store."""

    def __init__(self, commerce: Commerce) -> None:
        self.commerce = commerce
        self.invoices: dict[int, dict[str, Any]] = {}
        self.shipments: dict[int, dict[str, Any]] = {}
        self.creditmemos: dict[int, dict[str, Any]] = {}
        # a document's order_id is set when it is made: look-ups by order without a scan
        self.indexes = {id(t): TableIndex(t, ("order_id",))
                        for t in (self.invoices, self.shipments, self.creditmemos)}

    def routes(self) -> list[Route]:
        """Document creation per order, and their searchCriteria listings."""
        return [
            route("POST", "/V1/order/{orderId}/invoice", self.invoice),
            route("POST", "/V1/order/{orderId}/ship", self.ship),
            route("POST", "/V1/order/{orderId}/refund", self.refund),
            route("GET", "/V1/invoices", self._lister(self.invoices)),
            route("GET", "/V1/shipments", self._lister(self.shipments)),
            route("GET", "/V1/creditmemos", self._lister(self.creditmemos)),
        ]

    def _lister(self, table: dict[int, dict[str, Any]]) -> Callable[[Request], Response]:
        index = self.indexes[id(table)]

        def search(request: Request) -> Response:
            """GET /V1/<documents>?searchCriteria… (e.g. order_id)."""
            return Response.json(200, parse_search_criteria(request).search(table.values(),
                                                                            index))
        return search

    def _quantities(self, order: dict[str, Any], body: dict[str, Any], left: Callable[
            [dict[str, Any]], float], document: str, noun: str,
                    done: str) -> dict[int, float]:
        """Requested quantity per order item id: `items` if given, else everything left."""
        items = {int(i["item_id"]): i for i in order["items"]}
        if body.get("items") is None:
            return {item_id: left(item) for item_id, item in items.items() if left(item) > 0}
        wanted: dict[int, float] = {}
        for line in body["items"]:
            if not isinstance(line, dict) or "order_item_id" not in line or "qty" not in line:
                raise HttpError(magento_error(400, '"%fieldName" is required. Enter and try '
                                              'again.', {"fieldName": "order_item_id"}))
            item = items.get(int(line["order_item_id"]))
            if item is None:
                raise _refused(document, f"The {noun} contains an item that is not in the "
                               "order.")
            amount = float(line["qty"])
            if amount > left(item):
                raise _refused(document, f'The quantity to {noun} must not be greater than '
                               f'the un{done} quantity for product SKU "{item["sku"]}".')
            if amount > 0:
                wanted[int(item["item_id"])] = wanted.get(int(item["item_id"]), 0.0) + amount
        return wanted

    def _lines(self, order: dict[str, Any], wanted: dict[int, float],
               parent_id: int) -> list[dict[str, Any]]:
        items = {int(i["item_id"]): i for i in order["items"]}
        return [{"entity_id": self.commerce.next_id("document_item"), "parent_id": parent_id,
                 "order_item_id": item_id, "sku": items[item_id]["sku"],
                 "name": items[item_id].get("name"), "product_id": items[item_id].get(
                     "product_id"), "qty": number(amount),
                 "price": items[item_id].get("price", 0),
                 "row_total": number(float(items[item_id].get("price") or 0) * amount)}
                for item_id, amount in wanted.items()]

    def _header(self, table: str, order: dict[str, Any], lines: list[dict[str, Any]],
                entity_id: int) -> dict[str, Any]:
        now = self.commerce.now()
        return {"entity_id": entity_id, "increment_id": f"{entity_id:09d}",
                "order_id": order["entity_id"], "store_id": order.get("store_id", 1),
                "total_qty": number(sum(float(line["qty"]) for line in lines)),
                "created_at": now, "updated_at": now, "items": lines, "comments": []}

    def _comment(self, body: dict[str, Any], parent_id: int) -> list[dict[str, Any]]:
        comment = body.get("comment")
        if not isinstance(comment, dict) or not comment.get("comment"):
            return []
        return [{"comment": comment["comment"], "created_at": self.commerce.now(),
                 "entity_id": self.commerce.next_id("document_comment"), "parent_id": parent_id,
                 "is_customer_notified": 1 if body.get("notify") else 0,
                 "is_visible_on_front": comment.get("is_visible_on_front", 0)}]

    def _apply(self, order: dict[str, Any], wanted: dict[int, float], field: str) -> None:
        for item in order["items"]:
            amount = wanted.get(int(item["item_id"]))
            if amount:
                item[field] = number(qty(item, field) + amount)
                self.commerce.touch(item)
        resolve_state(order)
        self.commerce.touch(order)

    def invoice(self, request: Request) -> Response:
        """POST /V1/order/{orderId}/invoice → invoice id; order → processing (or complete)."""
        order = self.commerce.order(request, "orderId")
        body = self.commerce.body(request, optional=True)
        if order.get("state") in _STATUS_REFUSAL | {"complete"}:
            raise _refused("Invoice", "An invoice cannot be created when an order has a status "
                           f"of {order.get('status')}")
        if not can_invoice(order):
            raise _refused("Invoice", "The order does not allow an invoice to be created.")
        wanted = self._quantities(order, body, qty_to_invoice, "Invoice", "invoice", "invoiced")
        if not wanted:
            raise _refused("Invoice", "The invoice can't be created without products. Add "
                           "products and try again.")
        entity_id = self.commerce.next_id("invoice")
        lines = self._lines(order, wanted, entity_id)
        subtotal = sum(float(line["row_total"]) for line in lines)
        first = not self.invoices_of(order)
        shipping = float(order.get("shipping_amount") or 0) if first else 0.0
        invoice = self._header("invoice", order, lines, entity_id)
        invoice.update(state=2, subtotal=number(subtotal), grand_total=number(subtotal + shipping),
                       base_grand_total=number(subtotal + shipping),
                       shipping_amount=number(shipping),
                       order_currency_code=order.get("order_currency_code"),
                       base_currency_code=order.get("base_currency_code"),
                       comments=self._comment(body, entity_id))
        self.invoices[entity_id] = invoice
        self.indexes[id(self.invoices)].add(entity_id)
        for key in ("total_invoiced", "base_total_invoiced", "total_paid", "base_total_paid"):
            order[key] = number(float(order.get(key) or 0) + subtotal + shipping)
        order["total_due"] = number(max(float(order.get("grand_total") or 0)
                                        - float(order["total_paid"]), 0.0))
        self._apply(order, wanted, "qty_invoiced")
        return Response.json(200, entity_id)

    def invoices_of(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        """The invoices of one order."""
        same = self.indexes[id(self.invoices)].candidates("order_id", str(order["entity_id"]))
        return [i for i in same or [] if i["order_id"] == order["entity_id"]]

    def ship(self, request: Request) -> Response:
        """POST /V1/order/{orderId}/ship {items?, notify, tracks[]} → shipment id."""
        order = self.commerce.order(request, "orderId")
        body = self.commerce.body(request, optional=True)
        tracks = body.get("tracks") or []
        if not isinstance(tracks, list):
            raise _refused("Shipment", "tracks must be a list")
        for track in tracks:
            for name in ("track_number", "title", "carrier_code"):
                if not isinstance(track, dict) or not track.get(name):
                    raise HttpError(magento_error(400, '"%fieldName" is required. Enter and '
                                                  'try again.', {"fieldName": name}))
        if order.get("state") in _STATUS_REFUSAL | {"complete"}:
            raise _refused("Shipment", "A shipment cannot be created when an order has a "
                           f"status of {order.get('status')}")
        if not can_ship(order):
            raise _refused("Shipment", "The order does not allow a shipment to be created.")
        wanted = self._quantities(order, body, qty_to_ship, "Shipment", "ship", "shipped")
        if not wanted:
            raise _refused("Shipment", "You can't create a shipment without products.")
        entity_id = self.commerce.next_id("shipment")
        shipment = self._header("shipment", order, self._lines(order, wanted, entity_id),
                                entity_id)
        now = self.commerce.now()
        shipment.update(
            customer_id=order.get("customer_id"), email_sent=1 if body.get("notify") else 0,
            billing_address_id=order.get("billing_address_id"), packages=[],
            comments=self._comment(body, entity_id),
            tracks=[{"entity_id": self.commerce.next_id("shipment_track"),
                     "order_id": order["entity_id"], "parent_id": entity_id,
                     "track_number": t["track_number"], "title": t["title"],
                     "carrier_code": t["carrier_code"], "created_at": now, "updated_at": now,
                     "weight": None, "qty": None, "description": None} for t in tracks])
        self.shipments[entity_id] = shipment
        self.indexes[id(self.shipments)].add(entity_id)
        self._apply(order, wanted, "qty_shipped")
        return Response.json(200, entity_id)

    def refund(self, request: Request) -> Response:
        """POST /V1/order/{orderId}/refund: offline credit memo → credit memo id."""
        order = self.commerce.order(request, "orderId")
        body = self.commerce.body(request, optional=True)
        if order.get("state") in _STATUS_REFUSAL:
            raise _refused("Creditmemo", "A creditmemo can not be created when an order has a "
                           f"status of {order.get('status')}")
        if not can_creditmemo(order):
            raise _refused("Creditmemo", "The order does not allow a creditmemo to be created.")
        wanted = self._quantities(order, body, qty_to_refund, "Creditmemo", "refund", "refunded")
        arguments = body.get("arguments")
        arguments = arguments if isinstance(arguments, dict) else {}
        shipping = float(arguments.get("shipping_amount") or 0)
        if not wanted and not shipping:
            raise _refused("Creditmemo", "You can't create a creditmemo without products.")
        entity_id = self.commerce.next_id("creditmemo")
        lines = self._lines(order, wanted, entity_id)
        total = sum(float(line["row_total"]) for line in lines) + shipping
        memo = self._header("creditmemo", order, lines, entity_id)
        memo.update(state=2, grand_total=number(total), base_grand_total=number(total),
                    shipping_amount=number(shipping), comments=self._comment(body, entity_id))
        self.creditmemos[entity_id] = memo
        self.indexes[id(self.creditmemos)].add(entity_id)
        for key in ("total_refunded", "base_total_refunded", "total_offline_refunded",
                    "base_total_offline_refunded"):
            order[key] = number(float(order.get(key) or 0) + total)
        self._apply(order, wanted, "qty_refunded")
        return Response.json(200, entity_id)
