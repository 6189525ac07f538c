"""The SP-API simulator's POST_ORDER_FULFILLMENT_DATA feed: shipment confirmations in bulk.

Each OrderFulfillment message ships one package as confirmShipment does (the order's items
fulfilled, its status SHIPPED or PARTIALLY_SHIPPED, the package with its carrier and
tracking number in getOrder's `packages`); a message the sandbox cannot apply is an Error of
its own MessageID in the processing report and changes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from sandbox_helpers import Api, envelope, feed_report, poll_feed, submit_feed

from connector.sandbox import Sandbox

FULFILLMENT = "POST_ORDER_FULFILLMENT_DATA"
SHIP = "113-0000003-0000001"  # UNSHIPPED, merchant-fulfilled, one item of 2 units
SECOND = "113-0000003-0000002"  # UNSHIPPED, merchant-fulfilled, two items of 1 unit
SHIPPED = "113-0000003-0000003"
CANCELLED = "111-0000001-0000001"
FBA = "111-0000001-0000010"


def _message(order_id: str, items: list[tuple[str, int | None]], *,
             carrier: str = "<CarrierCode>UPS</CarrierCode>",
             tracking: str = "1Z999AA10123456784",
             date: str = "2026-03-02T11:00:00Z") -> str:
    lines = "".join(f"<Item><AmazonOrderItemCode>{code}</AmazonOrderItemCode>"
                    + (f"<Quantity>{quantity}</Quantity>" if quantity is not None else "")
                    + "</Item>" for code, quantity in items)
    return (f"<OrderFulfillment><AmazonOrderID>{order_id}</AmazonOrderID>"
            f"<FulfillmentDate>{date}</FulfillmentDate><FulfillmentData>{carrier}"
            f"<ShippingMethod>Ground</ShippingMethod>"
            f"<ShipperTrackingNumber>{tracking}</ShipperTrackingNumber></FulfillmentData>"
            f"{lines}</OrderFulfillment>")


def _all(sandbox: Sandbox, order_id: str) -> list[tuple[str, int | None]]:
    return [(item["orderItemId"], None) for item in sandbox.amazon.orders[order_id]["orderItems"]]


def _errors(amazon: Api, feed: dict[str, Any]) -> dict[str, str]:
    report = feed_report(amazon, feed["resultFeedDocumentId"])
    return {r.findtext("MessageID") or "": r.findtext("ResultDescription") or ""
            for r in report.findall("Message/ProcessingReport/Result")
            if r.findtext("ResultCode") == "Error"}


def test_one_feed_ships_several_orders_as_confirm_shipment_does(sandbox: Sandbox,
                                                                amazon: Api) -> None:
    content = envelope("OrderFulfillment", [
        _message(SHIP, _all(sandbox, SHIP)),
        _message(SECOND, _all(sandbox, SECOND), carrier="<CarrierName>Acme Post</CarrierName>",
                 tracking="ACME-1")])
    statuses, feed = poll_feed(amazon, submit_feed(amazon, content, FULFILLMENT))
    assert statuses == ["IN_QUEUE", "IN_PROGRESS", "DONE"] and _errors(amazon, feed) == {}
    got = amazon.get(f"/orders/2026-01-01/orders/{SHIP}",
                     params={"includedData": "FULFILLMENT,PACKAGES"}).json()["order"]
    assert got["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    [package] = got["packages"]
    assert (package["carrier"], package["trackingNumber"], package["shippingService"],
            package["shipTime"]) == ("UPS", "1Z999AA10123456784", "Ground",
                                     "2026-03-02T11:00:00Z")
    assert package["packageItems"] == [{"orderItemId": "00003000000101", "quantity": 2}]
    assert got["orderItems"][0]["fulfillment"]["quantityUnfulfilled"] == 0
    second = sandbox.amazon.orders[SECOND]
    assert second["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert second["packages"][0]["carrier"] == "Acme Post"
    assert sandbox.amazon.fulfillments == {SHIP: ["1Z999AA10123456784"], SECOND: ["ACME-1"]}


@pytest.mark.parametrize(("order_id", "items", "carrier", "date", "said"), [
    (CANCELLED, None, None, None, "CANCELLED: a cancelled order cannot be shipped"),
    (SHIPPED, None, None, None, "already SHIPPED"),
    (FBA, None, None, None, "fulfilled by Amazon"),
    ("999-0000000-0000000", [("1", None)], None, None, "was not found"),
    (SHIP, [("00003000000999", None)], None, None, "'00003000000999' is not an item"),
    (SHIP, [("00003000000101", 3)], None, None, "exceeds the unshipped quantity 2"),
    (SHIP, [("00003000000101", 0)], None, None, "is not a positive integer"),
    (SHIP, [], None, None, "lists no Item"),
    (SHIP, None, "", None, "needs a CarrierCode or a CarrierName"),
    (SHIP, None, None, "2026-03-02", "is not an ISO 8601 date-time"),
], ids=["cancelled", "shipped", "fba", "unknown-order", "unknown-item", "too-many",
        "zero", "no-item", "no-carrier", "date-only"])
def test_a_message_it_cannot_ship_is_an_error_of_its_own(
        sandbox: Sandbox, amazon: Api, order_id: str, items: list[tuple[str, int | None]] | None,
        carrier: str | None, date: str | None, said: str) -> None:
    before = {oid: (o["fulfillment"]["fulfillmentStatus"], len(o.get("packages") or []))
              for oid, o in sandbox.amazon.orders.items()}
    extra = {k: v for k, v in (("carrier", carrier), ("date", date)) if v is not None}
    refused = _message(order_id, _all(sandbox, order_id) if items is None else items, **extra)
    content = envelope("OrderFulfillment", [_message(SECOND, _all(sandbox, SECOND)), refused])
    _, feed = poll_feed(amazon, submit_feed(amazon, content, FULFILLMENT))
    assert feed["processingStatus"] == "DONE"
    errors = _errors(amazon, feed)
    assert list(errors) == ["2"] and said in errors["2"]
    after = {oid: (o["fulfillment"]["fulfillmentStatus"], len(o.get("packages") or []))
             for oid, o in sandbox.amazon.orders.items()}
    assert after == {**before, SECOND: ("SHIPPED", 1)}  # only the good message shipped


def test_partial_packages_then_the_rest_and_a_resent_feed_ships_nothing(sandbox: Sandbox,
                                                                        amazon: Api) -> None:
    order = sandbox.amazon.orders[SHIP]
    first = envelope("OrderFulfillment", [_message(SHIP, [("00003000000101", 1)])])
    poll_feed(amazon, submit_feed(amazon, first, FULFILLMENT))
    assert order["fulfillment"]["fulfillmentStatus"] == "PARTIALLY_SHIPPED"
    rest = envelope("OrderFulfillment", [_message(SHIP, [("00003000000101", None)])])
    poll_feed(amazon, submit_feed(amazon, rest, FULFILLMENT))
    assert order["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert [p["packageItems"][0]["quantity"] for p in order["packages"]] == [1, 1]
    stamp = order["lastUpdatedTime"]
    _, feed = poll_feed(amazon, submit_feed(amazon, rest, FULFILLMENT))  # resent: refused
    assert "already SHIPPED" in _errors(amazon, feed)["1"]
    assert len(order["packages"]) == 2 and order["lastUpdatedTime"] == stamp


def test_a_fulfillment_feed_of_another_message_type_is_fatal(sandbox: Sandbox,
                                                             amazon: Api) -> None:
    content = envelope("OrderAcknowledgement", ["<OrderAcknowledgement/>"])
    _, feed = poll_feed(amazon, submit_feed(amazon, content, FULFILLMENT))
    assert feed["processingStatus"] == "FATAL"
    assert "MessageType OrderFulfillment" in _errors(amazon, feed)["0"]
    assert sandbox.amazon.fulfillments == {}
