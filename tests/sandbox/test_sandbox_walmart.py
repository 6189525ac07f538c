"""The Walmart simulator: token, headers, cursor pages, line state rules, error bodies."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from sandbox_helpers import Api, walmart_headers, walmart_token

from connector.sandbox import Sandbox

ORDERS = "/v3/orders"


def _cancel(line: str = "1", reason: str = "SELLER_CANCEL_OUT_OF_STOCK",
            amount: str = "1") -> dict[str, Any]:
    return {"orderCancellation": {"orderLines": {"orderLine": [{
        "lineNumber": line, "orderLineStatuses": {"orderLineStatus": [{
            "status": "Cancelled", "cancellationReason": reason,
            "statusQuantity": {"unitOfMeasurement": "EACH", "amount": amount}}]}}]}}}


def _ship(line: str = "1", carrier: dict[str, str] | None = None, url: str | None = None,
          override: bool | None = None, mode: str | None = None) -> dict[str, Any]:
    tracking: dict[str, Any] = {"shipDateTime": 1580821866000,
                                "carrierName": carrier or {"carrier": "UPS"},
                                "methodCode": "Standard", "trackingNumber": "1Z999AA10123456784"}
    if url:
        tracking["trackingURL"] = url
    entry: dict[str, Any] = {"lineNumber": line, "sellerOrderId": "100000123",
                             "orderLineStatuses": {"orderLineStatus": [{
                                 "status": "Shipped", "trackingInfo": tracking,
                                 "statusQuantity": {"unitOfMeasurement": "EACH", "amount": "1"}}]}}
    if override is not None:
        entry["intentToCancelOverride"] = override
    shipment: dict[str, Any] = {"orderLines": {"orderLine": [entry]}}
    if mode:
        shipment["processMode"] = mode
    return {"orderShipment": shipment}


def _code(response: httpx.Response) -> str:
    body = response.json()
    items = body["error"] if "error" in body else body["errors"]["error"]
    return str(items[0]["code"])


# -- token and headers ------------------------------------------------------------------------
@pytest.mark.parametrize(("credentials", "form", "status", "code"), [
    ("right", {"grant_type": "client_credentials"}, 200, None),
    ("wrong", {"grant_type": "client_credentials"}, 401, "UNAUTHORIZED.GMP_GATEWAY_API"),
    ("none", {"grant_type": "client_credentials"}, 401, "UNAUTHORIZED.GMP_GATEWAY_API"),
    ("right", {"grant_type": "refresh_token"}, 400, "INVALID_REQUEST_PARAM.GMP_GATEWAY_API"),
])
def test_token_needs_basic_client_credentials(sandbox: Sandbox, client: httpx.Client,
                                              credentials: str, form: dict[str, str],
                                              status: int, code: str | None) -> None:
    settings = sandbox.settings()["walmart"]
    secret = settings["client_secret"] if credentials == "right" else "nope"
    headers = walmart_headers()
    if credentials != "none":
        pair = base64.b64encode(f"{settings['client_id']}:{secret}".encode()).decode()
        headers["Authorization"] = f"Basic {pair}"
    response = client.post(settings["base_url"] + "/v3/token", data=form, headers=headers)
    assert response.status_code == status
    if code is None:
        body = response.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 900
        assert body["access_token"] in sandbox.walmart.tokens
    else:
        assert _code(response) == code and "error" in response.json()


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"WM_SVC.NAME": ""}, 400, "MISSING_REQUEST_HEADER.GMP_GATEWAY_API"),
    ({"WM_QOS.CORRELATION_ID": ""}, 400, "MISSING_REQUEST_HEADER.GMP_GATEWAY_API"),
    ({"WM_SEC.ACCESS_TOKEN": "stale"}, 401, "UNAUTHORIZED.GMP_GATEWAY_API"),
    ({"Accept": "text/xml"}, 406, "INVALID_ACCEPT_TYPE.GMP_ORDER_API"),
    ({"WM_MARKET": "ca"}, 400, "INVALID_REQUEST_HEADER.GMP_GATEWAY_API"),
    ({"WM_MARKET": "mx"}, 200, None),  # México: the MX listing (walmart_mx)
    ({"WM_MARKET": "us"}, 200, None),
])
def test_business_calls_check_their_headers(walmart: Api, change: dict[str, str], status: int,
                                            code: str | None) -> None:
    response = walmart.client.get(walmart.base + ORDERS, headers={**walmart.headers, **change})
    assert response.status_code == status
    if code is not None:
        assert _code(response) == code


def test_expired_tokens_are_refused(sandbox: Sandbox, walmart: Api) -> None:
    assert walmart.get(ORDERS).status_code == 200
    sandbox.expire_tokens()
    response = walmart.get(ORDERS)
    assert response.status_code == 401 and "error" in response.json()


# -- listing ----------------------------------------------------------------------------------
def test_cursor_pages_cover_every_order_once_newest_first(sandbox: Sandbox, walmart: Api) -> None:
    seen: list[dict[str, Any]] = []
    response = walmart.get(ORDERS, params={"lastModifiedStartDate": "2020-01-01", "limit": "4"})
    while True:
        page = response.json()["list"]
        seen += page["elements"]["order"]
        cursor = page["meta"].get("nextCursor")
        if not cursor:
            break
        assert cursor.startswith("?limit=4&hasMoreElements=true&")
        assert "lastModifiedStartDate=2020-01-01" in cursor and "lastModifiedEndDate=" in cursor
        # A change made while paging moves no order between pages.
        sandbox.walmart.set_status(seen[-1]["purchaseOrderId"], "Delivered")
        response = walmart.get(ORDERS + cursor)
    seller = {i for i, o in sandbox.walmart.orders.items()
              if o["shipNode"]["type"] == "SellerFulfilled"}
    ids = [o["purchaseOrderId"] for o in seen]
    assert len(ids) == len(set(ids)) and set(ids) == seller
    dates = [o["orderDate"] for o in seen]
    assert dates == sorted(dates, reverse=True)


@pytest.mark.parametrize(("params", "expected"), [
    ({"shipNodeType": "WFSFulfilled"}, {"4000000000110", "4000000000202", "4000000000203"}),
    ({"status": "Created"}, {"4000000000201", "4000000000208"}),
    ({"purchaseOrderId": "4000000000104"}, {"4000000000104"}),
    ({"sku": "NO-SUCH-SKU"}, set()),
    ({"lastModifiedStartDate": "2999-01-01"}, set()),
])
def test_listing_filters(walmart: Api, params: dict[str, str], expected: set[str]) -> None:
    response = walmart.get(ORDERS, params=params)
    assert response.status_code == 200
    body = response.json()["list"]
    assert {o["purchaseOrderId"] for o in body["elements"]["order"]} == expected
    assert body["meta"]["totalCount"] == len(expected) and "nextCursor" not in body["meta"]


@pytest.mark.parametrize("params", [{"limit": "201"}, {"limit": "x"},
                                    {"shipNodeType": "Amazon"}, {"status": "Pending"},
                                    {"lastModifiedStartDate": "yesterday"},
                                    {"hasMoreElements": "true", "poIndex": "10"}])
def test_listing_refuses_bad_parameters(walmart: Api, params: dict[str, str]) -> None:
    response = walmart.get(ORDERS, params=params)
    assert response.status_code == 400
    assert _code(response) in ("INVALID_REQUEST_PARAM.GMP_ORDER_API",)


def test_released_orders_have_created_lines(walmart: Api) -> None:
    orders = walmart.get(ORDERS + "/released").json()["list"]["elements"]["order"]
    assert [o["purchaseOrderId"] for o in orders] == ["4000000000208", "4000000000201"]


def test_get_an_order_and_unknown_ids(walmart: Api) -> None:
    order = walmart.get(ORDERS + "/4000000000101").json()["order"]
    assert order["purchaseOrderId"] == "4000000000101"
    assert {e["cancellationReason"] for line in order["orderLines"]["orderLine"]
            for e in line["orderLineStatuses"]["orderLineStatus"]} == {"SELLER_CANCEL_OUT_OF_STOCK"}
    missing = walmart.get(ORDERS + "/999")
    assert missing.status_code == 404
    assert _code(missing) == "CONTENT_NOT_FOUND.GMP_ORDER_API"


# -- line state rules -------------------------------------------------------------------------
@pytest.mark.parametrize(("order_id", "status", "after"), [
    ("4000000000201", 200, ["Acknowledged", "Acknowledged"]),   # Created → Acknowledged
    ("4000000000206", 200, ["Acknowledged"]),                   # again: no change
    ("4000000000203", 400, ["Acknowledged"]),                   # WFS: Walmart's
    ("4000000000104", 400, ["Cancelled"]),                      # nothing open
])
def test_acknowledge(sandbox: Sandbox, walmart: Api, order_id: str, status: int,
                     after: list[str]) -> None:
    response = walmart.post(f"{ORDERS}/{order_id}/acknowledge")
    assert response.status_code == status
    assert sandbox.walmart.line_statuses(order_id) == after
    if status == 200:
        assert response.json()["order"]["purchaseOrderId"] == order_id


@pytest.mark.parametrize(("order_id", "body", "intent", "status", "after"), [
    ("4000000000302", _cancel(), False, 200, ["Cancelled"]),
    ("4000000000201", _cancel("2"), False, 200, ["Created", "Cancelled"]),
    ("4000000000303", _cancel(), False, 400, ["Shipped"]),
    ("4000000000302", _cancel(reason="CUSTOMER_REQUESTED_SELLER_TO_CANCEL"), False, 400,
     ["Acknowledged"]),
    ("4000000000302", _cancel(reason="CUSTOMER_REQUESTED_SELLER_TO_CANCEL"), True, 200,
     ["Cancelled"]),
    ("4000000000302", _cancel(reason="NoInventory"), False, 400, ["Acknowledged"]),
    ("4000000000302", _cancel(amount="2"), False, 400, ["Acknowledged"]),
    ("4000000000302", _cancel(line="9"), False, 400, ["Acknowledged"]),
    ("4000000000302", {"orderCancellation": {}}, False, 400, ["Acknowledged"]),
    ("4000000000110", _cancel(), False, 400, ["Acknowledged"]),
])
def test_cancel_lines(sandbox: Sandbox, walmart: Api, order_id: str, body: dict[str, Any],
                      intent: bool, status: int, after: list[str]) -> None:
    if intent:
        sandbox.walmart.request_cancellation(order_id)
    response = walmart.post(f"{ORDERS}/{order_id}/cancel", json=body)
    assert response.status_code == status, response.text
    assert sandbox.walmart.line_statuses(order_id) == after
    if status == 400:
        assert _code(response) == "INVALID_REQUEST_CONTENT.GMP_ORDER_API"


def test_cancel_keeps_the_reason_and_splits_quantities(sandbox: Sandbox, walmart: Api) -> None:
    line = sandbox.walmart.orders["4000000000302"]["orderLines"]["orderLine"][0]
    line["orderLineQuantity"]["amount"] = "3"
    line["orderLineStatuses"]["orderLineStatus"][0]["statusQuantity"]["amount"] = "3"
    order = walmart.post(f"{ORDERS}/4000000000302/cancel", json=_cancel(amount="2")).json()
    statuses = order["order"]["orderLines"]["orderLine"][0]["orderLineStatuses"]["orderLineStatus"]
    assert [(s["status"], s["statusQuantity"]["amount"], s.get("cancellationReason"))
            for s in statuses] == [("Acknowledged", "1", None),
                                   ("Cancelled", "2", "SELLER_CANCEL_OUT_OF_STOCK")]


@pytest.mark.parametrize(("order_id", "body", "intent", "status", "after"), [
    ("4000000000301", _ship(), False, 200, ["Shipped", "Acknowledged"]),
    ("4000000000201", _ship(), False, 400, ["Created", "Created"]),      # not acknowledged
    ("4000000000301", _ship(), True, 400, ["Acknowledged", "Acknowledged"]),
    ("4000000000301", _ship(override=True), True, 200, ["Shipped", "Acknowledged"]),
    ("4000000000301", _ship(carrier={"carrier": "Pony Express"}), False, 400,
     ["Acknowledged", "Acknowledged"]),
    ("4000000000301", _ship(carrier={"otherCarrier": "Pony Express"}), False, 400,
     ["Acknowledged", "Acknowledged"]),
    ("4000000000301", _ship(carrier={"otherCarrier": "Pony Express"}, url="https://p.example/1"),
     False, 200, ["Shipped", "Acknowledged"]),
    ("4000000000301", _ship(mode="PARTIAL_UPDATE"), False, 400, ["Acknowledged", "Acknowledged"]),
    ("4000000000303", _ship(mode="PARTIAL_UPDATE"), False, 200, ["Shipped"]),
    ("4000000000302", {"orderShipment": {"orderLines": {"orderLine": [{"lineNumber": "1"}]}}},
     False, 400, ["Acknowledged"]),
])
def test_ship_lines(sandbox: Sandbox, walmart: Api, order_id: str, body: dict[str, Any],
                    intent: bool, status: int, after: list[str]) -> None:
    if intent:
        sandbox.walmart.request_cancellation(order_id)
    response = walmart.post(f"{ORDERS}/{order_id}/shipping", json=body)
    assert response.status_code == status, response.text
    assert sandbox.walmart.line_statuses(order_id) == after
    if order_id == "4000000000201":
        assert "acknowledge the order first" in response.text


def test_shipping_records_tracking(sandbox: Sandbox, walmart: Api) -> None:
    walmart.post(f"{ORDERS}/4000000000301/shipping", json=_ship())
    line = sandbox.walmart.orders["4000000000301"]["orderLines"]["orderLine"][0]
    entry = line["orderLineStatuses"]["orderLineStatus"][0]
    assert entry["trackingInfo"]["trackingNumber"] == "1Z999AA10123456784"
    assert entry["trackingInfo"]["carrierName"] == {"carrier": "UPS"}
    assert line["sellerOrderId"] == "100000123"


def test_writes_move_the_modification_time(sandbox: Sandbox, walmart: Api) -> None:
    before = sandbox.walmart.modified["4000000000201"]
    sandbox.advance(60)
    walmart.post(f"{ORDERS}/4000000000201/acknowledge")
    after = sandbox.walmart.modified["4000000000201"]
    assert after > before
    since = after.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    orders = walmart.get(ORDERS, params={"lastModifiedStartDate": since}).json()
    assert [o["purchaseOrderId"] for o in orders["list"]["elements"]["order"]] == ["4000000000201"]


def test_a_write_is_listed_by_a_listing_in_the_same_millisecond(client: httpx.Client) -> None:
    # Walmart's dates carry milliseconds: a change stamped finer than that would fall after
    # a listing's default end date (now, in milliseconds) taken in the same millisecond.
    frozen = datetime(2026, 3, 1, 12, 0, 0, 500_400, tzinfo=timezone.utc)
    box = Sandbox(now=lambda: frozen)
    box.start()
    try:
        api = Api(client, box.settings()["walmart"]["base_url"],
                  {**walmart_headers(), "Accept": "application/json",
                   "WM_SEC.ACCESS_TOKEN": walmart_token(box, client)})
        api.post(f"{ORDERS}/4000000000201/acknowledge")
        listed = api.get(ORDERS, params={"lastModifiedStartDate": "2026-03-01T12:00:00.000Z"})
        ids = [o["purchaseOrderId"] for o in listed.json()["list"]["elements"]["order"]]
        assert ids == ["4000000000201"]
    finally:
        box.stop()
    assert box.errors == []
