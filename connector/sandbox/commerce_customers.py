"""Adobe Commerce customers: search, read and create (customer-data-customer-interface).

A customer's email is unique per website, as Magento's repository enforces; the guest or
customer choice of the flows lands here.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from connector.sandbox.errors import magento_error, magento_required
from connector.sandbox.search_criteria import parse_search_criteria
from connector.sandbox.search_index import TableIndex
from connector.sandbox.server import HttpError, Request, Response, Route, route

if TYPE_CHECKING:
    from connector.sandbox.commerce import Commerce

__all__ = ["CommerceCustomers"]


class CommerceCustomers:
    """The simulated store's customers, indexed by email."""

    def __init__(self, commerce: Commerce) -> None:
        self.commerce = commerce
        self.customers: dict[int, dict[str, Any]] = {}
        self.index = TableIndex(self.customers, ("email",))

    def routes(self) -> list[Route]:
        """`/V1/customers`: search, read one, create."""
        return [
            route("GET", "/V1/customers/search", self.search_customers),
            route("GET", "/V1/customers/{customerId}", self.get_customer),
            route("POST", "/V1/customers", self.create_customer),
        ]

    def search_customers(self, request: Request) -> Response:
        """GET /V1/customers/search?searchCriteria… (e.g. email and website_id)."""
        criteria = parse_search_criteria(request)
        return Response.json(200, criteria.search(self.customers.values(), self.index))

    def get_customer(self, request: Request) -> Response:
        """GET /V1/customers/{customerId}"""
        customer_id = request.params["customerId"]
        customer = self.customers.get(int(customer_id)) if customer_id.isdigit() else None
        if customer is None:
            raise HttpError(magento_error(404, 'No such entity with %fieldName = %fieldValue',
                                          {"fieldName": "customerId",
                                           "fieldValue": customer_id}))
        return Response.json(200, customer)

    def create_customer(self, request: Request) -> Response:
        """POST /V1/customers {"customer": {...}}: unique email per website."""
        customer = self.commerce.body(request).get("customer")
        if not isinstance(customer, dict):
            raise magento_required("customer")
        for name in ("email", "firstname", "lastname"):
            if not customer.get(name):
                raise magento_required(name)
        return Response.json(200, self.add(customer))

    def add(self, data: dict[str, Any]) -> dict[str, Any]:
        """Store a customer (400 on a duplicate email in the same website) and return it."""
        with self.commerce.lock:
            customer = copy.deepcopy(data)
            customer.setdefault("website_id", 1)
            if any(c["email"].lower() == str(customer["email"]).lower()
                   and int(c["website_id"]) == int(customer["website_id"])
                   for c in self.customers.values()):
                raise HttpError(magento_error(400, "A customer with the same email address "
                                              "already exists in an associated website."))
            customer_id = int(customer.get("id") or self.commerce.next_id("customer"))
            self.commerce.saw_id("customer", customer_id)
            now = self.commerce.now()
            customer.update(id=customer_id, created_at=customer.get("created_at", now),
                            updated_at=now)
            for key, value in (("group_id", 1), ("store_id", 1),
                               ("created_in", "Default Store View"), ("addresses", []),
                               ("disable_auto_group_change", 0),
                               ("extension_attributes", {"is_subscribed": False})):
                customer.setdefault(key, value)
            for address in customer["addresses"]:
                address.setdefault("id", self.commerce.next_id("customer_address"))
                address["customer_id"] = customer_id
            self.customers[customer_id] = customer
            self.index.add(customer_id)
            return customer
