"""The Adobe Commerce simulator: searches, raw order save, canCancel, documents, customers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sandbox_helpers import Api

from connector.sandbox import Sandbox


def _criteria(*groups: list[tuple[str, str, str]], spelling: str = "snake",
              **extra: Any) -> dict[str, Any]:
    """searchCriteria query parameters: each group is a list of (field, value, condition)."""
    group_key, condition_key = (("filter_groups", "condition_type") if spelling == "snake"
                                else ("filterGroups", "conditionType"))
    params: dict[str, Any] = {}
    for g, group in enumerate(groups):
        for f, (field, value, condition) in enumerate(group):
            prefix = f"searchCriteria[{group_key}][{g}][filters][{f}]"
            params[f"{prefix}[field]"] = field
            params[f"{prefix}[value]"] = value
            params[f"{prefix}[{condition_key}]"] = condition
    for key, value in extra.items():
        params[f"searchCriteria[{key}]"] = value
    return params


def _order_id(sandbox: Sandbox, increment_id: str) -> int:
    order = sandbox.commerce.order_by_increment_id(increment_id)
    assert order is not None
    return int(order["entity_id"])


def _new_order(commerce: Api, increment_id: str, quantity: int = 2) -> dict[str, Any]:
    response = commerce.post("/V1/orders", json={"entity": {
        "increment_id": increment_id, "ext_order_id": increment_id,
        "customer_email": "someone@example.com", "base_grand_total": 20.0 * quantity,
        "grand_total": 20.0 * quantity,
        "items": [{"sku": "SKU-1", "name": "Cup", "qty_ordered": quantity, "price": 20.0}]}})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_bearer_token_is_required(sandbox: Sandbox, client: httpx.Client) -> None:
    base = sandbox.settings()["adobe-commerce"]["base_url"]
    response = client.get(base + "/V1/orders/1", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json() == {"message": "The consumer isn't authorized to access %resources.",
                               "parameters": {"resources": "Magento_Sales::actions_view"}}


@pytest.mark.parametrize(("groups", "expected"), [
    ([[("ext_order_id", "112-0000002-0000004", "eq")]], {"112-0000002-0000004"}),
    ([[("increment_id", "113-0000003-0000001,113-0000003-0000002", "in")]],
     {"113-0000003-0000001", "113-0000003-0000002"}),
    ([[("state", "canceled", "eq")]], {"113-0000003-0000002", "113-0000003-0000003",
                                       "4000000000302", "4000000000303"}),
    ([[("status", "processing", "eq")], [("ext_order_id", "112%", "like")]],
     {"112-0000002-0000004", "112-0000002-0000006", "112-0000002-0000007"}),
    ([[("state", "canceled", "eq"), ("ext_order_id", "112-0000002-0000004", "eq")]],
     {"113-0000003-0000002", "113-0000003-0000003", "112-0000002-0000004", "4000000000302",
      "4000000000303"}),
    ([[("ext_order_id", "999-9999999-9999999", "eq")]], set()),
])
@pytest.mark.parametrize("spelling", ["snake", "camel"])
def test_search_orders(commerce: Api, groups: list[list[tuple[str, str, str]]],
                       expected: set[str], spelling: str) -> None:
    response = commerce.get("/V1/orders", params=_criteria(*groups, spelling=spelling))
    body = response.json()
    assert response.status_code == 200, response.text
    assert {o["ext_order_id"] for o in body["items"]} == expected
    assert body["total_count"] == len(expected)
    assert body["search_criteria"]["filter_groups"][0]["filters"][0]["condition_type"]


def test_search_by_updated_at_window(sandbox: Sandbox, commerce: Api) -> None:
    stamps = sorted(o["updated_at"] for o in sandbox.commerce.orders.values())
    params = _criteria([("updated_at", stamps[2], "gteq")], [("updated_at", stamps[4], "lteq")])
    body = commerce.get("/V1/orders", params=params).json()
    assert sorted(o["updated_at"] for o in body["items"]) == stamps[2:5]
    iso = stamps[4].replace(" ", "T") + "Z"  # ISO spellings compare as times too
    later = commerce.get("/V1/orders", params=_criteria([("updated_at", iso, "gt")])).json()
    assert sorted(o["updated_at"] for o in later["items"]) == stamps[5:]


def test_search_pages_and_sorts(commerce: Api) -> None:
    params = _criteria(pageSize=3, currentPage=1, **{"sortOrders][0][field": "entity_id",
                                                      "sortOrders][0][direction": "DESC"})
    first = commerce.get("/V1/orders", params=params).json()
    # 7 Commerce orders of Amazon scenarios, 8 of Walmart ones (docs/scenarios.md)
    assert first["total_count"] == 15 and len(first["items"]) == 3
    assert [o["entity_id"] for o in first["items"]] == [15, 14, 13]
    params["searchCriteria[currentPage]"] = 9  # past the end: Magento repeats the last page
    assert [o["entity_id"] for o in commerce.get("/V1/orders", params=params).json()[
        "items"]] == [3, 2, 1]


def test_search_needs_search_criteria(commerce: Api) -> None:
    response = commerce.get("/V1/orders")
    assert response.status_code == 400
    assert response.json()["parameters"] == {"fieldName": "searchCriteria"}
    everything = commerce.get("/V1/orders", params={"searchCriteria": ""}).json()
    assert everything["total_count"] == 15


def test_get_order_and_unknown_ids(sandbox: Sandbox, commerce: Api) -> None:
    entity_id = _order_id(sandbox, "113-0000003-0000001")
    order = commerce.get(f"/V1/orders/{entity_id}").json()
    assert order["ext_order_id"] == "113-0000003-0000001" and order["state"] == "complete"
    missing = commerce.get("/V1/orders/999")
    assert missing.status_code == 404 and "doesn't exist" in missing.json()["message"]
    assert commerce.get("/V1/nothing").status_code == 404


def test_create_order_assigns_ids_and_refuses_duplicates(sandbox: Sandbox,
                                                         commerce: Api) -> None:
    seeded = len(sandbox.commerce.orders)
    order = _new_order(commerce, "114-0000004-0000001")
    assert order["entity_id"] == seeded + 1
    assert order["state"] == "new" and order["status"] == "pending"
    assert order["items"][0]["item_id"] and order["created_at"] and order["updated_at"]
    assert sandbox.commerce.orders[order["entity_id"]]["ext_order_id"] == "114-0000004-0000001"
    duplicate = commerce.post("/V1/orders", json={"entity": {
        "increment_id": "114-0000004-0000001", "customer_email": "x@example.com",
        "base_grand_total": 1, "grand_total": 1, "items": [{"sku": "SKU-1"}]}})
    assert duplicate.status_code == 400
    assert duplicate.json()["message"] == "Unique constraint violation found"
    assert len(sandbox.commerce.orders) == seeded + 1


def test_create_order_keeps_totals_and_custom_fees(sandbox: Sandbox, commerce: Api) -> None:
    """Discounts, gift wrapping and custom fees are stored as sent; each custom fee gets an id
    and the order's entity id as order_id (strings, as the spec types them)."""
    fee = {"order_id": "114-0000004-0000002", "custom_fee_code": "delivery_tip",
           "custom_fee_label": "Tip", "custom_fee_amount": 5.0, "base_custom_fee_amount": 5.0,
           "custom_fee_amount_invoiced": 0, "base_custom_fee_amount_invoiced": 0,
           "custom_fee_amount_refunded": 0, "base_custom_fee_amount_refunded": 0,
           "apply_fee_on_last_invoice": False, "apply_fee_on_last_creditmemo": False}
    response = commerce.post("/V1/orders", json={"entity": {
        "increment_id": "114-0000004-0000002", "customer_email": "x@example.com",
        "subtotal": 20.0, "discount_amount": -2.0, "shipping_discount_amount": 1.0,
        "base_grand_total": 26.5, "grand_total": 26.5, "items": [{"sku": "SKU-1"}],
        "extension_attributes": {"gw_items_price": "3.5", "custom_fees": [fee]}}})
    assert response.status_code == 200, response.text
    order = sandbox.commerce.orders[response.json()["entity_id"]]
    assert (order["discount_amount"], order["shipping_discount_amount"]) == (-2.0, 1.0)
    stored, = order["extension_attributes"]["custom_fees"]
    assert stored["order_id"] == str(order["entity_id"]) and stored["id"]
    assert stored["custom_fee_amount"] == 5.0
    assert order["extension_attributes"]["gw_items_price"] == "3.5"


@pytest.mark.parametrize(("body", "field"), [
    ({}, "entity"),
    ({"entity": {"grand_total": 1, "base_grand_total": 1, "items": [{"sku": "a"}]}},
     "customer_email"),
    ({"entity": {"grand_total": 1, "base_grand_total": 1, "customer_email": "a@b.c",
                 "items": [{"name": "no sku"}]}}, "sku"),
])
def test_create_order_requires_fields(commerce: Api, body: dict[str, Any], field: str) -> None:
    response = commerce.post("/V1/orders", json=body)
    assert response.status_code == 400
    assert response.json() == {"message": '"%fieldName" is required. Enter and try again.',
                               "parameters": {"fieldName": field}}


def test_save_with_entity_id_updates(sandbox: Sandbox, commerce: Api) -> None:
    entity_id = _order_id(sandbox, "113-0000003-0000001")
    before = sandbox.commerce.orders[entity_id]["updated_at"]
    response = commerce.post("/V1/orders", json={"entity": {"entity_id": entity_id,
                                                            "state": "complete",
                                                            "status": "complete"}})
    assert response.status_code == 200
    assert sandbox.commerce.orders[entity_id]["state"] == "complete"
    assert sandbox.commerce.orders[entity_id]["updated_at"] > before


@pytest.mark.parametrize(("increment_id", "answer", "state"), [
    ("112-0000002-0000004", True, "canceled"),     # processing, not invoiced
    ("112-0000002-0000006", False, "processing"),  # fully invoiced: refund instead
    ("113-0000003-0000002", False, "canceled"),    # already canceled
    ("113-0000003-0000001", False, "complete"),  # invoiced and shipped: complete
])
def test_cancel_follows_can_cancel(sandbox: Sandbox, commerce: Api, increment_id: str,
                                   answer: bool, state: str) -> None:
    entity_id = _order_id(sandbox, increment_id)
    response = commerce.post(f"/V1/orders/{entity_id}/cancel")
    assert response.status_code == 200 and response.json() is answer
    assert sandbox.commerce.orders[entity_id]["state"] == state


def test_held_orders_cannot_be_canceled(sandbox: Sandbox, commerce: Api) -> None:
    entity_id = _order_id(sandbox, "112-0000002-0000004")
    assert commerce.post(f"/V1/orders/{entity_id}/hold").json() is True
    assert commerce.post(f"/V1/orders/{entity_id}/cancel").json() is False
    assert commerce.post(f"/V1/orders/{entity_id}/hold").status_code == 400
    assert commerce.post(f"/V1/orders/{entity_id}/unhold").json() is True
    assert sandbox.commerce.orders[entity_id]["state"] == "processing"
    assert commerce.post(f"/V1/orders/{entity_id}/cancel").json() is True


def test_cancel_of_a_partially_invoiced_order_cancels_the_rest(sandbox: Sandbox,
                                                               commerce: Api) -> None:
    order = _new_order(commerce, "114-0000004-0000002", quantity=3)
    item_id = order["items"][0]["item_id"]
    invoice = commerce.post(f"/V1/order/{order['entity_id']}/invoice",
                            json={"items": [{"order_item_id": item_id, "qty": 1}]})
    assert invoice.status_code == 200 and isinstance(invoice.json(), int)
    assert commerce.post(f"/V1/orders/{order['entity_id']}/cancel").json() is True
    stored = sandbox.commerce.orders[order["entity_id"]]
    assert stored["state"] == "processing"
    assert stored["items"][0]["qty_canceled"] == 2 and stored["items"][0]["qty_invoiced"] == 1


def test_invoice_and_ship_complete_the_order(sandbox: Sandbox, commerce: Api) -> None:
    order = _new_order(commerce, "114-0000004-0000003")
    entity_id = order["entity_id"]
    invoice_id = commerce.post(f"/V1/order/{entity_id}/invoice", json={"capture": True}).json()
    stored = sandbox.commerce.orders[entity_id]
    assert stored["state"] == "processing" and stored["items"][0]["qty_invoiced"] == 2
    assert sandbox.commerce.invoices[invoice_id]["order_id"] == entity_id
    again = commerce.post(f"/V1/order/{entity_id}/invoice", json={})
    assert again.status_code == 400
    assert "The order does not allow an invoice to be created." in again.json()["message"]
    shipment_id = commerce.post(f"/V1/order/{entity_id}/ship", json={
        "notify": False, "tracks": [{"track_number": "1Z999AA10123456784",
                                     "title": "United Parcel Service", "carrier_code": "ups"}]})
    assert shipment_id.status_code == 200, shipment_id.text
    assert stored["state"] == "complete" and stored["status"] == "complete"
    assert stored["items"][0]["qty_shipped"] == 2
    found = commerce.get("/V1/shipments", params=_criteria([("order_id", str(entity_id),
                                                            "eq")])).json()
    assert found["total_count"] == 1
    assert found["items"][0]["tracks"][0]["track_number"] == "1Z999AA10123456784"
    assert found["items"][0]["entity_id"] == shipment_id.json()
    invoices = commerce.get("/V1/invoices", params=_criteria([("order_id", str(entity_id),
                                                              "eq")])).json()
    assert [i["entity_id"] for i in invoices["items"]] == [invoice_id]
    assert commerce.post(f"/V1/order/{entity_id}/ship", json={}).status_code == 400


def test_ship_validates_tracks_and_quantities(sandbox: Sandbox, commerce: Api) -> None:
    order = _new_order(commerce, "114-0000004-0000004")
    path = f"/V1/order/{order['entity_id']}/ship"
    missing = commerce.post(path, json={"tracks": [{"track_number": "1", "title": "UPS"}]})
    assert missing.status_code == 400
    assert missing.json()["parameters"] == {"fieldName": "carrier_code"}
    too_many = commerce.post(path, json={"items": [{"order_item_id": order["items"][0][
        "item_id"], "qty": 3}]})
    assert too_many.status_code == 400
    assert sandbox.commerce.orders[order["entity_id"]]["items"][0]["qty_shipped"] == 0
    shipped = commerce.post(path, json={"items": [{"order_item_id": order["items"][0][
        "item_id"], "qty": 2}]})
    assert shipped.status_code == 200
    assert sandbox.commerce.orders[order["entity_id"]]["state"] == "processing"  # not invoiced


def test_refund_closes_an_invoiced_unshipped_order(sandbox: Sandbox, commerce: Api) -> None:
    entity_id = _order_id(sandbox, "112-0000002-0000007")
    response = commerce.post(f"/V1/order/{entity_id}/refund", json={
        "notify": False, "arguments": {"shipping_amount": 0}})
    assert response.status_code == 200, response.text
    stored = sandbox.commerce.orders[entity_id]
    assert stored["state"] == "closed" and stored["status"] == "closed"
    assert all(i["qty_refunded"] == i["qty_ordered"] for i in stored["items"])
    assert stored["total_refunded"] == stored["grand_total"]
    assert sandbox.commerce.creditmemos[response.json()]["order_id"] == entity_id
    assert commerce.post(f"/V1/order/{entity_id}/refund", json={}).status_code == 400


def test_refund_needs_something_invoiced(sandbox: Sandbox, commerce: Api) -> None:
    entity_id = _order_id(sandbox, "112-0000002-0000004")
    response = commerce.post(f"/V1/order/{entity_id}/refund", json={})
    assert response.status_code == 400
    assert "creditmemo" in response.json()["message"]


def test_comments_and_updated_at(sandbox: Sandbox, commerce: Api) -> None:
    entity_id = _order_id(sandbox, "113-0000003-0000004")
    stamps = [sandbox.commerce.orders[entity_id]["updated_at"]]
    for text in ("Synced to Amazon", "Again"):
        response = commerce.post(f"/V1/orders/{entity_id}/comments", json={"statusHistory": {
            "comment": text, "is_customer_notified": 0, "is_visible_on_front": 0,
            "parent_id": entity_id}})
        assert response.status_code == 200 and response.json() is True
        stamps.append(sandbox.commerce.orders[entity_id]["updated_at"])
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    history = commerce.get(f"/V1/orders/{entity_id}/comments").json()
    assert [h["comment"] for h in history["items"]] == ["Again", "Synced to Amazon"]
    bad = commerce.post(f"/V1/orders/{entity_id}/comments", json={"statusHistory": {
        "comment": "x"}})
    assert bad.status_code == 400


def test_customers_search_create_and_duplicates(commerce: Api) -> None:
    search = _criteria([("email", "buyer2@example.com", "eq")], [("website_id", "1", "eq")])
    assert commerce.get("/V1/customers/search", params=search).json()["total_count"] == 0
    body = {"customer": {"email": "buyer2@example.com", "firstname": "Ben",
                         "lastname": "Okafor", "website_id": 1, "store_id": 1, "group_id": 1}}
    created = commerce.post("/V1/customers", json=body)
    assert created.status_code == 200, created.text
    customer = created.json()
    assert customer["id"] and customer["email"] == "buyer2@example.com"
    found = commerce.get("/V1/customers/search", params=search).json()
    assert [c["id"] for c in found["items"]] == [customer["id"]]
    duplicate = commerce.post("/V1/customers", json=body)
    assert duplicate.status_code == 400
    assert duplicate.json()["message"] == ("A customer with the same email address already "
                                           "exists in an associated website.")
    assert commerce.get(f"/V1/customers/{customer['id']}").json()["email"] == "buyer2@example.com"
    assert commerce.get("/V1/customers/999").status_code == 404
    missing = commerce.post("/V1/customers", json={"customer": {"email": "a@b.c"}})
    assert missing.status_code == 400
