"""The VTEX simulator: OMS orders and their cancel rules, logistics reservations and stock."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sandbox_helpers import Api

from connector.sandbox import Sandbox

ORDERS = "/api/oms/pvt/orders"
RESERVATIONS = "/api/logistics/pvt/inventory/reservations"


def _vtex_id(amazon_id: str) -> str:
    return f"AMZ-{amazon_id}-01"


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401),
    ({"X-VTEX-API-AppKey": "vtexappkey-sandbox-SANDBOX"}, 401),
    ({"X-VTEX-API-AppKey": "other", "X-VTEX-API-AppToken": "other"}, 403),
])
def test_credentials_are_required(sandbox: Sandbox, client: httpx.Client,
                                  headers: dict[str, str], status: int) -> None:
    url = sandbox.settings()["vtex"]["base_url"] + ORDERS + "/" + _vtex_id("111-0000001-0000001")
    response = client.get(url, headers=headers)
    assert response.status_code == status
    assert "error" in response.json()


def test_get_order_has_the_spec_shape(vtex: Api) -> None:
    response = vtex.get(f"{ORDERS}/{_vtex_id('111-0000001-0000002')}")
    order = response.json()
    assert response.status_code == 200
    assert order["marketplaceOrderId"] == "111-0000001-0000002"
    assert order["affiliateId"] == "AMZ" and order["origin"] == "Marketplace"
    assert order["status"] == "handling" and order["allowCancellation"] is True
    for key in ("sequence", "statusDescription", "clientProfileData", "creationDate",
                "lastChange", "shippingData", "paymentData", "totals", "packageAttachment"):
        assert key in order
    item = order["items"][0]
    assert {"id", "productId", "quantity", "price", "sellerSku", "lockId"} <= set(item)
    assert item["id"].startswith("SKU-")
    by_sequence = vtex.get(f"{ORDERS}/seq{order['sequence']}")
    assert by_sequence.json()["orderId"] == order["orderId"]
    assert vtex.get(f"{ORDERS}/AMZ-999-9999999-9999999-01").status_code == 404


@pytest.mark.parametrize(("amazon_id", "answers", "statuses"), [
    ("111-0000001-0000001", [200, 200], ["cancellation-requested", "canceled"]),
    ("111-0000001-0000002", [200, 200], ["cancellation-requested", "canceled"]),
    ("111-0000001-0000003", [200], ["canceled"]),
    ("111-0000001-0000004", [400], ["invoiced"]),
    ("111-0000001-0000005", [400], ["canceled"]),
])
def test_cancel_follows_the_state_rules(sandbox: Sandbox, vtex: Api, amazon_id: str,
                                        answers: list[int], statuses: list[str]) -> None:
    order_id = _vtex_id(amazon_id)
    for answer, status in zip(answers, statuses, strict=True):
        response = vtex.post(f"{ORDERS}/{order_id}/cancel", json={"reason": "Canceled on Amazon"})
        assert response.status_code == answer, response.text
        if answer == 200:
            assert set(response.json()) == {"date", "orderId", "receipt"}
        else:
            assert set(response.json()["error"]) == {"code", "message", "exception"}
        assert sandbox.vtex.orders[order_id]["status"] == status
    if statuses[-1] == "canceled" and answers[-1] == 200:
        order = sandbox.vtex.orders[order_id]
        assert order["cancellationData"]["Reason"] == "Canceled on Amazon"
        assert order["allowCancellation"] is False


def test_cancel_releases_the_order_reservation(sandbox: Sandbox, vtex: Api) -> None:
    order_id = _vtex_id("111-0000001-0000002")
    lock_id = sandbox.vtex.orders[order_id]["items"][0]["lockId"]
    sku = sandbox.vtex.orders[order_id]["items"][0]["id"]
    reserved = sandbox.vtex.inventory[sku]["balance"][0]["reservedQuantity"]
    assert sandbox.vtex.reservations[lock_id]["Status"] == 2
    for _ in range(2):
        vtex.post(f"{ORDERS}/{order_id}/cancel", json={"reason": "x"})
    assert sandbox.vtex.reservations[lock_id]["Status"] == 3
    assert sandbox.vtex.inventory[sku]["balance"][0]["reservedQuantity"] < reserved


def test_start_handling(sandbox: Sandbox, vtex: Api) -> None:
    order_id = _vtex_id("111-0000001-0000001")
    assert vtex.post(f"{ORDERS}/{order_id}/start-handling").status_code == 204
    assert sandbox.vtex.orders[order_id]["status"] == "handling"
    again = vtex.post(f"{ORDERS}/{order_id}/start-handling")
    assert again.status_code == 409 and again.json()["error"]["code"] == "OMS003"


def _invoice(order: dict[str, Any], kind: str = "Output") -> dict[str, Any]:
    return {"type": kind, "issuanceDate": "2026-01-02T10:00:00Z", "invoiceNumber": "NF-1",
            "invoiceValue": str(order["value"]), "courier": "UPS",
            "items": [{"id": i["id"], "price": i["price"], "quantity": i["quantity"]}
                      for i in order["items"]]}


def test_invoiced_orders_need_a_return_invoice_before_cancel(sandbox: Sandbox,
                                                             vtex: Api) -> None:
    order_id = _vtex_id("111-0000001-0000008")
    order = sandbox.vtex.orders[order_id]
    response = vtex.post(f"{ORDERS}/{order_id}/invoice", json=_invoice(order))
    assert response.status_code == 200 and set(response.json()) == {"date", "orderId", "receipt"}
    assert order["status"] == "invoiced" and order["invoicedDate"]
    assert vtex.post(f"{ORDERS}/{order_id}/cancel", json={}).status_code == 400
    assert vtex.post(f"{ORDERS}/{order_id}/invoice", json=_invoice(order, "Input")).status_code \
        == 200
    assert vtex.post(f"{ORDERS}/{order_id}/cancel", json={}).status_code == 200
    assert order["status"] == "canceled"


def test_a_partially_invoiced_order_cannot_be_canceled(sandbox: Sandbox, vtex: Api) -> None:
    order_id = _vtex_id("111-0000001-0000010")
    order = sandbox.vtex.orders[order_id]
    body = _invoice(order)
    body["items"][0]["quantity"] = 1
    assert order["items"][0]["quantity"] > 1 or len(order["items"]) > 1
    assert vtex.post(f"{ORDERS}/{order_id}/invoice", json=body).status_code == 200
    assert order["status"] == "handling"
    assert vtex.post(f"{ORDERS}/{order_id}/cancel", json={}).status_code == 400


def test_invoicing_declines_a_cancellation_request(sandbox: Sandbox, vtex: Api) -> None:
    order_id = _vtex_id("111-0000001-0000001")
    order = sandbox.vtex.orders[order_id]
    vtex.post(f"{ORDERS}/{order_id}/cancel", json={"reason": "x"})
    assert order["status"] == "cancellation-requested"
    assert vtex.post(f"{ORDERS}/{order_id}/invoice", json=_invoice(order)).status_code == 200
    assert order["status"] == "invoiced"


@pytest.mark.parametrize("change", [
    {"type": "Sale"}, {"invoiceValue": "12.50"}, {"items": []},
    {"items": [{"id": "SKU-404", "price": 1, "quantity": 1}]}, {"invoiceNumber": None},
])
def test_bad_invoices_are_refused(sandbox: Sandbox, vtex: Api, change: dict[str, Any]) -> None:
    order_id = _vtex_id("111-0000001-0000008")
    body = {**_invoice(sandbox.vtex.orders[order_id]), **change}
    body = {k: v for k, v in body.items() if v is not None}
    assert vtex.post(f"{ORDERS}/{order_id}/invoice", json=body).status_code == 400
    assert sandbox.vtex.orders[order_id]["status"] == "handling"


def test_lastchange_moves_on_every_write(sandbox: Sandbox, vtex: Api) -> None:
    order_id = _vtex_id("111-0000001-0000001")
    stamps = [sandbox.vtex.orders[order_id]["lastChange"]]
    for path in ("start-handling", "cancel", "cancel"):
        vtex.post(f"{ORDERS}/{order_id}/{path}", json={})
        stamps.append(sandbox.vtex.orders[order_id]["lastChange"])
    assert stamps == sorted(stamps) and len(set(stamps)) == 4


@pytest.mark.parametrize(("params", "expected"), [
    ({"f_status": "handling"}, {"111-0000001-0000002", "111-0000001-0000008",
                                "111-0000001-0000010", "111-0000001-0000011", "4000000000102", "4000000000106",
                                "4000000000108", "4000000000110"}),
    ({"f_status": "invoiced,canceled"}, {"111-0000001-0000004", "111-0000001-0000005",
                                         "111-0000001-0000009", "4000000000104",
                                         "4000000000105", "4000000000109"}),
    ({"q": "111-0000001-0000003"}, {"111-0000001-0000003"}),
    ({"f_creationDate": "creationDate:[2000-01-01T00:00:00.000Z TO 2001-01-01T00:00:00.000Z]"},
     set()),
])
def test_list_orders_filters(vtex: Api, params: dict[str, str], expected: set[str]) -> None:
    body = vtex.get(ORDERS, params=params).json()
    assert {entry["marketPlaceOrderId"] for entry in body["list"]} == expected
    assert body["paging"]["total"] == len(expected)
    assert all(entry["items"] is None for entry in body["list"])


def test_list_orders_pages(vtex: Api) -> None:
    first = vtex.get(ORDERS, params={"per_page": 3, "page": 1}).json()
    # 9 VTEX orders of Amazon scenarios, 9 of Walmart ones (docs/scenarios.md)
    assert first["paging"] == {"total": 18, "pages": 6, "currentPage": 1, "perPage": 3}
    dates = [entry["creationDate"] for entry in first["list"]]
    assert dates == sorted(dates, reverse=True)
    last = vtex.get(ORDERS, params={"per_page": 3, "page": 6}).json()
    assert len(last["list"]) == 3
    assert vtex.get(ORDERS, params={"page": 31}).status_code == 400
    assert vtex.get(ORDERS, params={"f_status": "cancellation-requested"}).status_code == 400


# -- reservations -----------------------------------------------------------------------
def _reservation(lock_id: str | None, sku: str = "SKU-1", quantity: int = 2) -> dict[str, Any]:
    return {"salesChannel": "1", "lockId": lock_id, "autorizationExpirationTTL": "10.00:00:00",
            "deliveryItemOptions": [{
                "item": {"id": sku, "quantity": quantity, "kitItem": [], "price": 24.99,
                         "additionalHandlingTime": "00:00:00",
                         "dimension": {"weight": 1, "height": 1, "width": 1, "length": 1}},
                "slaType": "Normal", "slaTypeName": "Normal", "listPrice": 0,
                "promotionalPrice": 0, "transitTime": "3.00:00:00", "dockTime": "00:00:00",
                "timeToDockPlusDockTime": "00:00:00", "aditionalTimeBlockedDays": "00:00:00",
                "totalTime": "3.00:00:00", "deliveryWindows": [], "wareHouseId": "1_1",
                "dockId": "1", "location": {"zipCode": "98109", "country": "USA",
                                            "inStore": {"IsCheckedIn": False,
                                                        "StoreId": None}}}]}


def _reserved(sandbox: Sandbox, sku: str = "SKU-1") -> int:
    return int(sandbox.vtex.inventory[sku]["balance"][0]["reservedQuantity"])


def test_reservation_create_get_cancel(sandbox: Sandbox, vtex: Api) -> None:
    before = _reserved(sandbox)
    created = vtex.post(RESERVATIONS, json=_reservation("AMZ-111-0000001-0000006"))
    assert created.status_code == 200, created.text
    reservation = created.json()
    assert reservation["LockId"] == "AMZ-111-0000001-0000006"
    assert reservation["Status"] == 1 and reservation["IsSucess"] is True
    assert reservation["SlaRequest"][0]["item"]["quantity"] == 2
    assert _reserved(sandbox) == before + 2
    path = f"{RESERVATIONS}/AMZ-111-0000001-0000006"
    assert vtex.get(path).json()["Status"] == 1
    assert vtex.post(path + "/acknowledge").status_code == 200
    cancel = vtex.post(path + "/cancel")
    assert cancel.status_code == 200 and cancel.content == b""
    assert vtex.get(path).json()["Status"] == 5
    assert _reserved(sandbox) == before
    assert vtex.post(path + "/cancel").status_code == 200  # idempotent
    assert _reserved(sandbox) == before
    assert vtex.post(path + "/confirm").status_code == 400


def test_reservation_confirm_and_generated_lock_id(sandbox: Sandbox, vtex: Api) -> None:
    reservation = vtex.post(RESERVATIONS, json=_reservation(None, "SKU-2", 1)).json()
    path = f"{RESERVATIONS}/{reservation['LockId']}"
    assert vtex.post(path + "/confirm").status_code == 200
    assert vtex.get(path).json()["Status"] == 2
    again = vtex.post(RESERVATIONS, json=_reservation(reservation["LockId"], "SKU-2", 1))
    assert again.json()["Status"] == 2  # same lockId: the existing reservation


def test_reservations_expire_unconfirmed(sandbox: Sandbox, vtex: Api) -> None:
    body = _reservation("short-lived")
    body["autorizationExpirationTTL"] = "00:10:00"
    before = _reserved(sandbox)
    vtex.post(RESERVATIONS, json=body)
    sandbox.advance(601)
    assert vtex.get(f"{RESERVATIONS}/short-lived").json()["Status"] == 4
    assert _reserved(sandbox) == before


@pytest.mark.parametrize("mutate", [
    lambda b: b.pop("autorizationExpirationTTL"),
    lambda b: b["deliveryItemOptions"][0].pop("wareHouseId"),
    lambda b: b["deliveryItemOptions"][0]["item"].pop("dimension"),
    lambda b: b["deliveryItemOptions"][0]["location"]["inStore"].pop("IsCheckedIn"),
    lambda b: b["deliveryItemOptions"][0]["item"].update(id="SKU-404"),
    lambda b: b["deliveryItemOptions"][0].update(wareHouseId="elsewhere"),
    lambda b: b["deliveryItemOptions"][0]["item"].update(quantity=0),
    lambda b: b.update(autorizationExpirationTTL="ten days"),
    lambda b: b.update(deliveryItemOptions=[]),
])
def test_bad_reservations_are_refused(sandbox: Sandbox, vtex: Api, mutate: Any) -> None:
    body = _reservation("bad")
    mutate(body)
    response = vtex.post(RESERVATIONS, json=body)
    assert response.status_code == 400, response.text
    assert "bad" not in sandbox.vtex.reservations


def test_unknown_reservation_and_sku(vtex: Api) -> None:
    assert vtex.get(f"{RESERVATIONS}/nope").status_code == 404
    assert vtex.post(f"{RESERVATIONS}/nope/cancel").status_code == 404
    stock = vtex.get("/api/logistics/pvt/inventory/skus/SKU-1").json()
    assert stock["skuId"] == "SKU-1" and stock["balance"][0]["warehouseId"] == "1_1"
    assert vtex.get("/api/logistics/pvt/inventory/skus/SKU-404").status_code == 404
