"""Adobe Commerce (Magento 2.4) admin REST simulator: orders, comments, hold.

Shapes follow `admin-schema-2.4.8.yaml` (sales-data-order-interface, search results,
customer-data-customer-interface, error-response). Invoices, shipments and credit memos are in
`commerce_documents`, customers in `commerce_customers`; the state rules in `commerce_rules`. `POST /V1/orders` is the raw
repository save the research notes describe: it assigns ids and defaults, enforces
UNIQUE(increment_id, store_id), and updates an existing order when `entity_id` is given.
"""

from __future__ import annotations

import copy
import itertools
import threading
from typing import Any

from connector.sandbox.clock import Clock, later, magento_time
from connector.sandbox.commerce_customers import CommerceCustomers
from connector.sandbox.commerce_documents import CommerceDocuments
from connector.sandbox.commerce_rules import (
    DEFAULT_STATUS,
    can_cancel,
    can_hold,
    number,
    qty,
    qty_to_cancel,
    qty_to_refund,
    qty_to_ship,
    set_state,
)
from connector.sandbox.errors import magento_error, magento_required
from connector.sandbox.search_criteria import parse_search_criteria
from connector.sandbox.search_index import ListingCache, TableIndex
from connector.sandbox.server import HttpError, Mount, Request, Response, route

__all__ = ["TOKEN", "Commerce", "not_found"]

TOKEN = "sandbox-adobe-commerce-integration-token"
REQUIRED_ORDER = ("base_grand_total", "customer_email", "grand_total", "items")


def not_found() -> HttpError:
    """Magento's NoSuchEntityException for an unknown id."""
    return HttpError(magento_error(404, "The entity that was requested doesn't exist. Verify "
                                   "the entity and try again."))


def _error(status: int, message: str) -> Response:
    if status == 404:
        return magento_error(404, "Request does not match any route.")
    return magento_error(status, message)


class Commerce:
    """State and handlers of the simulated store (one website, one store view)."""

    def __init__(self, clock: Clock, lock: threading.RLock) -> None:
        self.clock = clock
        self.lock = lock
        self.token = TOKEN
        self.orders: dict[int, dict[str, Any]] = {}
        self._counters: dict[str, itertools.count[int]] = {}
        self._highest: dict[str, int] = {}
        self.documents = CommerceDocuments(self)
        self.people = CommerceCustomers(self)
        # searches by id and page-by-page listings without a scan per request (search_index)
        self.order_index = TableIndex(self.orders, ("ext_order_id", "increment_id"))
        self.order_listings = ListingCache()

    # -- inspection ---------------------------------------------------------------------
    @property
    def invoices(self) -> dict[int, dict[str, Any]]:
        """Invoices by entity_id (sales-data-invoice-interface)."""
        return self.documents.invoices

    @property
    def shipments(self) -> dict[int, dict[str, Any]]:
        """Shipments by entity_id, with their tracks (sales-data-shipment-interface)."""
        return self.documents.shipments

    @property
    def creditmemos(self) -> dict[int, dict[str, Any]]:
        """Credit memos by entity_id (sales-data-creditmemo-interface)."""
        return self.documents.creditmemos

    @property
    def customers(self) -> dict[int, dict[str, Any]]:
        """Customers by id (customer-data-customer-interface)."""
        return self.people.customers

    def add_customer(self, data: dict[str, Any]) -> dict[str, Any]:
        """Store a customer as `POST /V1/customers` would (the seed's way in)."""
        return self.people.add(data)

    def order_by_increment_id(self, increment_id: str) -> dict[str, Any] | None:
        """The order with this increment_id (any store), for tests."""
        return next((o for o in self.order_index.candidates("increment_id", increment_id) or []
                     if o.get("increment_id") == increment_id), None)

    def prepare_search(self) -> None:
        """Index the stored orders and documents now, as the first search would (a
        benchmark's memory baseline is taken after this: the simulator's indexes are not
        the client's memory)."""
        self.order_index.candidates("ext_order_id", "")
        self.people.index.candidates("email", "")
        for index in self.documents.indexes.values():
            index.candidates("order_id", "")

    # -- plumbing -----------------------------------------------------------------------
    def mounts(self) -> list[Mount]:
        """The admin REST API under /adobe-commerce/rest/default, behind the bearer token."""
        routes = [
            route("GET", "/V1/orders", self.search_orders),
            route("POST", "/V1/orders", self.save_order),
            route("GET", "/V1/orders/{id}", self.get_order),
            route("POST", "/V1/orders/{id}/cancel", self.cancel),
            route("POST", "/V1/orders/{id}/hold", self.hold),
            route("POST", "/V1/orders/{id}/unhold", self.unhold),
            route("POST", "/V1/orders/{id}/comments", self.add_comment),
            route("GET", "/V1/orders/{id}/comments", self.comments),
            route("GET", "/V1/orders/{id}/statuses", self.status),
            *self.people.routes(),
            *self.documents.routes(),
        ]
        return [Mount("/adobe-commerce/rest/default", "adobe-commerce", routes, _error,
                      self.authenticate)]

    def authenticate(self, request: Request) -> Response | None:
        """401 unless `Authorization: Bearer <token>` carries the integration token."""
        if request.header("Authorization") == f"Bearer {self.token}":
            return None
        resource = ("Magento_Customer::manage" if request.path.startswith("/V1/customers")
                    else "Magento_Sales::actions_view")
        return magento_error(401, "The consumer isn't authorized to access %resources.",
                             {"resources": resource})

    def next_id(self, table: str) -> int:
        """The next auto-increment id of `table`, past any id stored explicitly."""
        counter = self._counters.setdefault(table, itertools.count(1))
        value = next(counter)
        while value <= self._highest.get(table, 0):
            value = next(counter)
        self._highest[table] = value
        return value

    def saw_id(self, table: str, value: int) -> None:
        """Record an explicit id so that auto-increment continues after it."""
        self._highest[table] = max(self._highest.get(table, 0), int(value))

    def now(self) -> str:
        """The current time in Magento's format."""
        return magento_time(self.clock.now())

    def touch(self, record: dict[str, Any]) -> None:
        """updated_at moves strictly forward on every write."""
        record["updated_at"] = later(record.get("updated_at"), self.clock.now(), magento_time)

    def body(self, request: Request, optional: bool = False) -> dict[str, Any]:
        """The JSON object body; 400 "Decoding error" like Magento when it is not JSON."""
        if optional and not request.body.strip():
            return {}
        try:
            body = request.json()
        except ValueError:
            raise HttpError(magento_error(400, "Decoding error.")) from None
        if not isinstance(body, dict):
            raise HttpError(magento_error(400, "Decoding error."))
        return body

    def order(self, request: Request, name: str = "id") -> dict[str, Any]:
        """The order whose entity_id is the path parameter `name`, or 404."""
        try:
            order = self.orders.get(int(request.params[name]))
        except ValueError:
            order = None
        if order is None:
            raise not_found()
        return order

    # -- orders -------------------------------------------------------------------------
    def search_orders(self, request: Request) -> Response:
        """GET /V1/orders?searchCriteria…"""
        criteria = parse_search_criteria(request)
        return Response.json(200, criteria.search(self.orders.values(), self.order_index,
                                                  self.order_listings))

    def get_order(self, request: Request) -> Response:
        """GET /V1/orders/{id}"""
        return Response.json(200, self.order(request))

    def save_order(self, request: Request) -> Response:
        """POST /V1/orders {"entity": OrderInterface}: raw create, or update by entity_id."""
        entity = self.body(request).get("entity")
        if not isinstance(entity, dict):
            raise magento_required("entity")
        existing = self.orders.get(int(entity["entity_id"])) if str(
            entity.get("entity_id", "")).isdigit() else None
        if existing is not None:
            return Response.json(200, self._update(existing, entity))
        for name in REQUIRED_ORDER:
            if entity.get(name) is None:
                raise magento_required(name)
        if not isinstance(entity["items"], list) or not entity["items"]:
            raise magento_required("items")
        for item in entity["items"]:
            if not isinstance(item, dict) or not item.get("sku"):
                raise magento_required("sku")
        return Response.json(200, self.add_order(entity))

    def add_order(self, entity: dict[str, Any]) -> dict[str, Any]:
        """Store a new order as the raw save does (ids, defaults, uniqueness); return it."""
        with self.lock:
            order = copy.deepcopy(entity)
            entity_id = int(order.get("entity_id") or self.next_id("order"))
            self.saw_id("order", entity_id)
            order["entity_id"] = entity_id
            order.setdefault("store_id", 1)
            order.setdefault("increment_id", f"{entity_id:09d}")
            same = self.order_index.candidates("increment_id", str(order["increment_id"]))
            if any(o.get("increment_id") == order["increment_id"]
                   and o.get("store_id") == order["store_id"] for o in same or []):
                raise HttpError(magento_error(400, "Unique constraint violation found"))
            state = order.setdefault("state", "new")
            order.setdefault("status", DEFAULT_STATUS.get(state, state))
            order.setdefault("created_at", self.now())
            order["updated_at"] = order.get("updated_at") or order["created_at"]
            order.setdefault("customer_is_guest", 0 if order.get("customer_id") else 1)
            order.setdefault("status_histories", [])
            for item in order["items"]:
                self._prepare_item(order, item)
            self._prepare_fees(order)
            order["total_qty_ordered"] = number(sum(qty(i, "qty_ordered")
                                                    for i in order["items"]))
            order["total_item_count"] = len(order["items"])
            for key in ("billing_address", "payment"):
                if isinstance(order.get(key), dict):
                    order[key].setdefault("entity_id", self.next_id(key))
                    order[key]["parent_id"] = entity_id
            if isinstance(order.get("billing_address"), dict):
                order["billing_address"].setdefault("address_type", "billing")
                order["billing_address_id"] = order["billing_address"]["entity_id"]
            self.orders[entity_id] = order
            self.order_index.add(entity_id)
            return order

    def _prepare_item(self, order: dict[str, Any], item: dict[str, Any]) -> None:
        item["item_id"] = int(item.get("item_id") or self.next_id("order_item"))
        self.saw_id("order_item", item["item_id"])
        item["order_id"] = order["entity_id"]
        item.setdefault("store_id", order["store_id"])
        item.setdefault("product_type", "simple")
        for name in ("qty_ordered", "qty_invoiced", "qty_shipped", "qty_refunded",
                     "qty_canceled", "price", "base_price", "row_total", "base_row_total"):
            item.setdefault(name, 0)
        item.setdefault("created_at", order["created_at"])
        item.setdefault("updated_at", order["updated_at"])

    def _prepare_fees(self, order: dict[str, Any]) -> None:
        """Custom fees (extension_attributes.custom_fees) saved with the order: each gets an
        id and the order's entity id as order_id (strings, as the spec types them)."""
        extension = order.get("extension_attributes")
        fees = extension.get("custom_fees") if isinstance(extension, dict) else None
        for fee in fees if isinstance(fees, list) else []:
            if isinstance(fee, dict):
                fee["id"] = str(fee.get("id") or self.next_id("custom_fee"))
                fee["order_id"] = str(order["entity_id"])

    def _update(self, order: dict[str, Any], entity: dict[str, Any]) -> dict[str, Any]:
        for key, value in entity.items():
            if key in ("entity_id", "items", "created_at", "updated_at"):
                continue
            order[key] = copy.deepcopy(value)
        for item in entity.get("items") or []:
            if not isinstance(item, dict):
                continue
            match = next((i for i in order["items"] if i["item_id"] == item.get("item_id")),
                         None)
            if match is not None:
                match.update(copy.deepcopy(item))
            else:
                added = copy.deepcopy(item)
                self._prepare_item(order, added)
                order["items"].append(added)
        self.touch(order)
        self.order_index.reindex(order["entity_id"])
        return order

    def cancel(self, request: Request) -> Response:
        """POST /V1/orders/{id}/cancel → true when canCancel, else false (order unchanged).

        A partially invoiced order cancels only what is neither invoiced nor shipped and
        ends processing (something left to ship) or complete, as Magento does.
        """
        order = self.order(request)
        if not can_cancel(order):
            return Response.json(200, False)
        state = "canceled"
        for item in order["items"]:
            if state != "processing" and qty_to_refund(item) > 0:
                state = "processing" if qty_to_ship(item) > qty_to_cancel(item) else "complete"
            item["qty_canceled"] = number(qty(item, "qty_canceled") + qty_to_cancel(item))
            self.touch(item)
        set_state(order, state)
        self.touch(order)
        return Response.json(200, True)

    def hold(self, request: Request) -> Response:
        """POST /V1/orders/{id}/hold"""
        order = self.order(request)
        if not can_hold(order):
            raise HttpError(magento_error(400, "A hold action is not available."))
        order["hold_before_state"], order["hold_before_status"] = order["state"], order["status"]
        set_state(order, "holded")
        self.touch(order)
        return Response.json(200, True)

    def unhold(self, request: Request) -> Response:
        """POST /V1/orders/{id}/unhold"""
        order = self.order(request)
        if order.get("state") != "holded":
            raise HttpError(magento_error(400, "You cannot remove the hold."))
        order["state"] = order.pop("hold_before_state", None) or "processing"
        order["status"] = order.pop("hold_before_status", None) or DEFAULT_STATUS[order["state"]]
        self.touch(order)
        return Response.json(200, True)

    def add_comment(self, request: Request) -> Response:
        """POST /V1/orders/{id}/comments {"statusHistory": {...}} → true."""
        order = self.order(request)
        history = self.body(request).get("statusHistory")
        if not isinstance(history, dict):
            raise magento_required("statusHistory")
        for name in ("comment", "is_customer_notified", "is_visible_on_front", "parent_id"):
            if name not in history:
                raise magento_required(name)
        if history.get("status"):
            order["status"] = history["status"]
        entry = {"comment": history["comment"], "created_at": self.now(),
                 "entity_id": self.next_id("status_history"), "entity_name": "order",
                 "is_customer_notified": history["is_customer_notified"],
                 "is_visible_on_front": history["is_visible_on_front"],
                 "parent_id": order["entity_id"], "status": order["status"]}
        order.setdefault("status_histories", []).insert(0, entry)
        self.touch(order)
        return Response.json(200, True)

    def comments(self, request: Request) -> Response:
        """GET /V1/orders/{id}/comments"""
        histories = self.order(request).get("status_histories") or []
        return Response.json(200, {"items": histories, "search_criteria": {"filter_groups": []},
                                   "total_count": len(histories)})

    def status(self, request: Request) -> Response:
        """GET /V1/orders/{id}/statuses → the status code."""
        return Response.json(200, self.order(request)["status"])
