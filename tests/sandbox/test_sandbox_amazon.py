"""The SP-API simulator: LWA tokens, searchOrders/getOrder, confirmShipment, the ack feed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sandbox_helpers import Api, amazon_token, envelope, feed_report, poll_feed, submit_feed

from connector.sandbox import Sandbox
from connector.sandbox.clock import amazon_time
from connector.sandbox.ratelimit import TokenBuckets

SEARCH = "/orders/2026-01-01/orders"
EVERYTHING = {"lastUpdatedAfter": "2000-01-01T00:00:00Z"}


def _search(amazon: Api, **params: Any) -> httpx.Response:
    return amazon.get(SEARCH, params={**EVERYTHING, **params})


def _codes(response: httpx.Response) -> list[str]:
    return [error["code"] for error in response.json()["errors"]]


# -- LWA tokens and auth ----------------------------------------------------------------
def test_token_exchange_returns_a_bearer_token(sandbox: Sandbox, client: httpx.Client) -> None:
    settings = sandbox.settings()["amazon"]
    response = client.post(settings["token_url"], data={
        "grant_type": "refresh_token", "refresh_token": settings["refresh_token"],
        "client_id": settings["client_id"], "client_secret": settings["client_secret"]})
    body = response.json()
    assert response.status_code == 200
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["refresh_token"] == settings["refresh_token"]
    assert body["access_token"].startswith("Atza|")


@pytest.mark.parametrize(("change", "status", "error"), [
    ({"client_secret": "wrong"}, 401, "invalid_client"),
    ({"client_id": "wrong"}, 401, "invalid_client"),
    ({"refresh_token": "Atzr|other"}, 400, "invalid_grant"),
    ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
])
def test_token_exchange_checks_the_credentials(sandbox: Sandbox, client: httpx.Client,
                                               change: dict[str, str], status: int,
                                               error: str) -> None:
    settings = sandbox.settings()["amazon"]
    form = {"grant_type": "refresh_token", "refresh_token": settings["refresh_token"],
            "client_id": settings["client_id"], "client_secret": settings["client_secret"],
            **change}
    response = client.post(settings["token_url"], data=form)
    assert response.status_code == status
    assert response.json()["error"] == error


@pytest.mark.parametrize("headers", [{}, {"x-amz-access-token": "Atza|not-issued"}])
def test_requests_without_a_valid_token_are_forbidden(sandbox: Sandbox, client: httpx.Client,
                                                      headers: dict[str, str]) -> None:
    url = sandbox.settings()["amazon"]["base_url"] + SEARCH
    response = client.get(url, params=EVERYTHING, headers=headers)
    assert response.status_code == 403
    assert _codes(response) == ["Unauthorized"]
    assert "x-amzn-RequestId" in response.headers


def test_tokens_expire(client: httpx.Client) -> None:
    with Sandbox(token_ttl=60) as sandbox:
        amazon = Api(client, sandbox.settings()["amazon"]["base_url"],
                     {"x-amz-access-token": amazon_token(sandbox, client)})
        assert _search(amazon).status_code == 200
        sandbox.advance(61)
        expired = _search(amazon)
        assert expired.status_code == 403
        assert "expired" in expired.json()["errors"][0]["details"]


# -- searchOrders -----------------------------------------------------------------------
def test_search_pages_through_every_order(sandbox: Sandbox, amazon: Api) -> None:
    seen: list[str] = []
    bounds = set()
    params: dict[str, Any] = {"maxResultsPerPage": 5}
    pages = 0
    while True:
        response = _search(amazon, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        seen += [order["orderId"] for order in body["orders"]]
        bounds.add(body["lastUpdatedBefore"])
        token = body.get("pagination", {}).get("nextToken")
        if not token:
            break
        params["paginationToken"] = token
    assert pages == 5
    assert sorted(seen) == sorted(sandbox.amazon.orders) and len(seen) == 23
    assert len(bounds) == 1


def test_a_pagination_token_needs_the_same_parameters(amazon: Api) -> None:
    token = _search(amazon, maxResultsPerPage=2).json()["pagination"]["nextToken"]
    same = _search(amazon, maxResultsPerPage=3, paginationToken=token, includedData="BUYER")
    assert same.status_code == 200
    changed = _search(amazon, paginationToken=token, fulfillmentStatuses="SHIPPED")
    assert changed.status_code == 400 and _codes(changed) == ["InvalidInput"]
    garbage = _search(amazon, paginationToken="not-a-token")
    assert garbage.status_code == 400


def test_last_updated_before_must_be_two_minutes_old(sandbox: Sandbox, amazon: Api) -> None:
    now = sandbox.clock.now()
    young = _search(amazon, lastUpdatedBefore=amazon_time(now - timedelta(minutes=1)))
    assert young.status_code == 400 and _codes(young) == ["InvalidInput"]
    old_enough = amazon_time(now - timedelta(minutes=3))
    response = _search(amazon, lastUpdatedBefore=old_enough)
    assert response.status_code == 200
    assert response.json()["lastUpdatedBefore"] == old_enough


@pytest.mark.parametrize("params", [
    {},
    {"createdAfter": "2000-01-01T00:00:00Z", "lastUpdatedAfter": "2000-01-01T00:00:00Z"},
    {"createdAfter": "2000-01-01T00:00:00Z", "lastUpdatedBefore": "2001-01-01T00:00:00Z"},
    {"lastUpdatedAfter": "yesterday"},
    {"lastUpdatedAfter": "2000-01-01T00:00:00Z", "maxResultsPerPage": "101"},
    {"lastUpdatedAfter": "2000-01-01T00:00:00Z", "includedData": "buyer"},
    {"lastUpdatedAfter": "2000-01-01T00:00:00Z", "fulfillmentStatuses": "CANCELED"},
])
def test_invalid_searches_are_refused(amazon: Api, params: dict[str, str]) -> None:
    response = amazon.get(SEARCH, params=params)
    assert response.status_code == 400
    assert _codes(response) == ["InvalidInput"]


@pytest.mark.parametrize(("params", "count"), [
    ({"fulfillmentStatuses": "CANCELLED"}, 8),
    ({"fulfillmentStatuses": "PENDING,UNSHIPPED"}, 12),
    ({"fulfilledBy": "AMAZON"}, 3),
    ({"marketplaceIds": "ATVPDKIKX0DER"}, 23),
    ({"marketplaceIds": "A2EUQ1WTGCTBG2"}, 0),
])
def test_search_filters(amazon: Api, params: dict[str, str], count: int) -> None:
    assert len(_search(amazon, **params).json()["orders"]) == count


def test_search_by_creation_time_reports_created_before(amazon: Api) -> None:
    body = amazon.get(SEARCH, params={"createdAfter": "2000-01-01T00:00:00Z"}).json()
    assert len(body["orders"]) == 23 and "createdBefore" in body


def test_included_data_governs_the_optional_blocks(amazon: Api) -> None:
    bare = _search(amazon, fulfillmentStatuses="CANCELLED").json()["orders"][0]
    assert {"buyer", "recipient", "fulfillment", "proceeds"}.isdisjoint(bare)
    assert "cancellation" not in bare["orderItems"][0]
    assert bare["orderItems"][0]["product"]["sellerSku"].startswith("SKU-")
    full = _search(amazon, fulfillmentStatuses="CANCELLED",
                   includedData="BUYER,FULFILLMENT,CANCELLATION").json()["orders"][0]
    assert {"buyer", "fulfillment"} <= set(full) and "recipient" not in full
    assert full["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    assert full["orderItems"][0]["cancellation"]["cancellationExecution"]["cancelledBy"]


def test_changes_are_served_only_after_two_minutes(sandbox: Sandbox, amazon: Api) -> None:
    first = _search(amazon).json()
    sandbox.amazon.cancel("111-0000001-0000006", by="AMAZON")
    later = _search(amazon, lastUpdatedAfter=first["lastUpdatedBefore"]).json()
    assert later["orders"] == []
    sandbox.advance(timedelta(minutes=3))
    after = _search(amazon, lastUpdatedAfter=first["lastUpdatedBefore"],
                    includedData="FULFILLMENT,CANCELLATION").json()
    assert [o["orderId"] for o in after["orders"]] == ["111-0000001-0000006"]
    item = after["orders"][0]["orderItems"][0]
    assert item["cancellation"]["cancellationExecution"]["cancelledBy"] == "AMAZON"


# -- getOrder ---------------------------------------------------------------------------
def test_get_order(amazon: Api) -> None:
    response = amazon.get("/orders/2026-01-01/orders/112-0000002-0000002",
                          params={"includedData": "BUYER,FULFILLMENT"})
    order = response.json()["order"]
    assert response.status_code == 200
    assert order["buyer"]["buyerEmail"] == "buyer2@example.com"
    assert order["fulfillment"] == {**order["fulfillment"], "fulfillmentStatus": "UNSHIPPED",
                                    "fulfilledBy": "MERCHANT"}
    missing = amazon.get("/orders/2026-01-01/orders/999-9999999-9999999")
    assert missing.status_code == 404 and _codes(missing) == ["NotFound"]


# -- confirmShipment --------------------------------------------------------------------
def _confirmation(order: dict[str, Any], **changes: Any) -> dict[str, Any]:
    detail = {"packageReferenceId": "1", "carrierCode": "UPS", "carrierName": "UPS",
              "shippingMethod": "UPS Ground", "trackingNumber": "1Z999AA10123456784",
              "shipDate": "2026-01-02T10:00:00Z",
              "orderItems": [{"orderItemId": i["orderItemId"], "quantity": i["quantityOrdered"]}
                             for i in order["orderItems"]]}
    detail.update(changes)
    return {"marketplaceId": "ATVPDKIKX0DER", "packageDetail": detail}


def _confirm(amazon: Api, order_id: str, body: Any) -> httpx.Response:
    return amazon.post(f"/orders/v0/orders/{order_id}/shipmentConfirmation", json=body)


def test_confirm_shipment_ships_the_order(sandbox: Sandbox, amazon: Api) -> None:
    order_id = "113-0000003-0000001"
    order = sandbox.amazon.orders[order_id]
    response = _confirm(amazon, order_id, _confirmation(order))
    assert response.status_code == 204 and response.content == b""
    assert order["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert order["packages"][0]["trackingNumber"] == "1Z999AA10123456784"
    assert all(i["fulfillment"]["quantityUnfulfilled"] == 0 for i in order["orderItems"])
    edit = _confirm(amazon, order_id, _confirmation(order, trackingNumber="1Z999AA10000000000"))
    assert edit.status_code == 204
    assert [p["trackingNumber"] for p in order["packages"]] == ["1Z999AA10000000000"]
    other = _confirm(amazon, order_id, _confirmation(order, packageReferenceId="2"))
    assert other.status_code == 400 and "PackageToUpdateNotFound" in other.text


def test_partial_shipment_is_partially_shipped(sandbox: Sandbox, amazon: Api) -> None:
    order = sandbox.amazon.orders["113-0000003-0000002"]
    first, second = order["orderItems"]
    body = _confirmation(order, orderItems=[{"orderItemId": first["orderItemId"],
                                             "quantity": first["quantityOrdered"]}])
    assert _confirm(amazon, order["orderId"], body).status_code == 204
    assert order["fulfillment"]["fulfillmentStatus"] == "PARTIALLY_SHIPPED"
    assert second["fulfillment"]["quantityUnfulfilled"] == second["quantityOrdered"]
    body = _confirmation(order, packageReferenceId="2", orderItems=[
        {"orderItemId": second["orderItemId"], "quantity": second["quantityOrdered"]}])
    assert _confirm(amazon, order["orderId"], body).status_code == 204
    assert order["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert len(order["packages"]) == 2


@pytest.mark.parametrize(("order_id", "changes"), [
    ("113-0000003-0000004", {"packageReferenceId": 1}),
    ("113-0000003-0000004", {"packageReferenceId": "PKG-1"}),
    ("113-0000003-0000004", {"carrierCode": None}),
    ("113-0000003-0000004", {"carrierCode": "Other", "carrierName": None}),
    ("113-0000003-0000004", {"shipDate": "02/21/2022"}),
    ("113-0000003-0000004", {"orderItems": []}),
    ("113-0000003-0000004", {"orderItems": [{"orderItemId": "0", "quantity": 1}]}),
    ("113-0000003-0000004", {"orderItems": "all"}),
    ("112-0000002-0000005", {}),  # fulfilled by Amazon
    ("111-0000001-0000001", {}),  # cancelled
    ("111-0000001-0000006", {}),  # pending
])
def test_bad_confirmations_are_refused(sandbox: Sandbox, amazon: Api, order_id: str,
                                       changes: dict[str, Any]) -> None:
    order = sandbox.amazon.orders[order_id]
    before = order["fulfillment"]["fulfillmentStatus"]
    body = _confirmation(order, **changes)
    body["packageDetail"] = {k: v for k, v in body["packageDetail"].items() if v is not None}
    response = _confirm(amazon, order_id, body)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["code"] == "Invalid Input"
    assert order["fulfillment"]["fulfillmentStatus"] == before


def test_confirmation_for_another_marketplace_or_too_many_units(sandbox: Sandbox,
                                                                amazon: Api) -> None:
    order = sandbox.amazon.orders["113-0000003-0000004"]
    body = _confirmation(order)
    body["marketplaceId"] = "A1F83G8C2ARO7P"
    assert _confirm(amazon, order["orderId"], body).status_code == 400
    body = _confirmation(order)
    body["packageDetail"]["orderItems"][0]["quantity"] += 1
    assert _confirm(amazon, order["orderId"], body).status_code == 400


# -- the order acknowledgement feed -----------------------------------------------------
def _ack_feed(*acks: tuple[str, str, str | None], items: dict[str, list[str]]) -> bytes:
    messages = []
    for order_id, code, reason in acks:
        lines = "".join(
            f"<Item><AmazonOrderItemCode>{item}</AmazonOrderItemCode>"
            + (f"<CancelReason>{reason}</CancelReason>" if reason else "") + "</Item>"
            for item in items[order_id])
        messages.append(f"<OrderAcknowledgement><AmazonOrderID>{order_id}</AmazonOrderID>"
                        f"<StatusCode>{code}</StatusCode>{lines}</OrderAcknowledgement>")
    return envelope("OrderAcknowledgement", messages)


def test_feed_cancels_an_unshipped_order_and_refuses_a_shipped_one(sandbox: Sandbox,
                                                                    amazon: Api) -> None:
    orders = sandbox.amazon.orders
    items = {oid: [i["orderItemId"] for i in orders[oid]["orderItems"]]
             for oid in ("113-0000003-0000002", "113-0000003-0000003")}
    feed_id = submit_feed(amazon, _ack_feed(("113-0000003-0000002", "Failure", "NoInventory"),
                                        ("113-0000003-0000003", "Failure", "NoInventory"),
                                        items=items))
    statuses, feed = poll_feed(amazon, feed_id)
    assert statuses == ["IN_QUEUE", "IN_PROGRESS", "DONE"]
    report = feed_report(amazon, feed["resultFeedDocumentId"])
    summary = report.find("Message/ProcessingReport/ProcessingSummary")
    assert summary is not None
    assert [summary.findtext(n) for n in ("MessagesProcessed", "MessagesSuccessful",
                                          "MessagesWithError")] == ["2", "1", "1"]
    results = report.findall("Message/ProcessingReport/Result")
    assert [(r.findtext("MessageID"), r.findtext("ResultCode")) for r in results] == [
        ("2", "Error")]
    cancelled = orders["113-0000003-0000002"]
    assert cancelled["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    assert {i["cancellation"]["cancellationExecution"]["cancelledBy"]
            for i in cancelled["orderItems"]} == {"MERCHANT"}
    assert {i["cancellation"]["cancellationExecution"]["cancelReason"]
            for i in cancelled["orderItems"]} == {"NoInventory"}
    assert orders["113-0000003-0000003"]["fulfillment"]["fulfillmentStatus"] == "SHIPPED"


def test_feed_that_does_not_parse_is_fatal(sandbox: Sandbox, amazon: Api) -> None:
    statuses, feed = poll_feed(amazon, submit_feed(amazon, b"<AmazonEnvelope><Message>"))
    assert statuses[-1] == "FATAL"
    report = feed_report(amazon, feed["resultFeedDocumentId"])
    assert report.findtext("Message/ProcessingReport/Result/ResultCode") == "Error"


def test_feeds_are_processed_without_polling(sandbox: Sandbox, amazon: Api) -> None:
    order_id = "111-0000001-0000008"
    items = {order_id: [i["orderItemId"] for i in sandbox.amazon.orders[order_id]["orderItems"]]}
    submit_feed(amazon, _ack_feed((order_id, "Failure", "BuyerCanceled"), items=items))
    got = amazon.get(f"/orders/2026-01-01/orders/{order_id}",
                     params={"includedData": "FULFILLMENT,CANCELLATION"}).json()["order"]
    assert got["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    item = got["orderItems"][0]["cancellation"]
    assert item["cancellationRequest"]["requester"] == "BUYER"
    assert item["cancellationExecution"] == {"cancelledBy": "MERCHANT",
                                             "cancelReason": "BuyerCanceled"}


def test_a_feed_sent_twice_cancels_once_and_reports_each_message(sandbox: Sandbox,
                                                                amazon: Api) -> None:
    """What a batch's recovery relies on: one feed holds many orders' messages, the report
    speaks per MessageID, and a cancellation sent again (a createFeed answer lost, the feed
    resent) is refused for that message, changing nothing."""
    orders = sandbox.amazon.orders
    ids = ("113-0000003-0000002", "111-0000001-0000008")
    items = {oid: [i["orderItemId"] for i in orders[oid]["orderItems"]] for oid in ids}
    content = _ack_feed(*((oid, "Failure", "NoInventory") for oid in ids), items=items)
    poll_feed(amazon, submit_feed(amazon, content))
    stamps = {oid: orders[oid]["lastUpdatedTime"] for oid in ids}
    statuses, feed = poll_feed(amazon, submit_feed(amazon, content))
    assert statuses[-1] == "DONE"
    report = feed_report(amazon, feed["resultFeedDocumentId"])
    results = report.findall("Message/ProcessingReport/Result")
    assert [(r.findtext("MessageID"), r.findtext("ResultCode"),
             r.findtext("AdditionalInfo/AmazonOrderID")) for r in results] == [
        ("1", "Error", ids[0]), ("2", "Error", ids[1])]
    assert all("CANCELLED" in (r.findtext("ResultDescription") or "") for r in results)
    assert {oid: orders[oid]["lastUpdatedTime"] for oid in ids} == stamps
    assert sandbox.amazon.acknowledgements == {oid: ["Failure"] for oid in ids}


def test_upload_urls_are_checked(amazon: Api) -> None:
    document = amazon.post("/feeds/2021-06-30/documents",
                           json={"contentType": "text/xml; charset=UTF-8"}).json()
    wrong_type = amazon.client.put(document["url"], content=b"<x/>",
                                   headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 403 and b"SignatureDoesNotMatch" in wrong_type.content
    tampered = amazon.client.put(document["url"][:-4] + "0000", content=b"<x/>",
                                 headers={"Content-Type": "text/xml; charset=UTF-8"})
    assert tampered.status_code == 403
    assert amazon.client.get(document["url"]).status_code == 403  # signed for PUT only


@pytest.mark.parametrize("body", [
    {"feedType": "POST_PRODUCT_DATA", "marketplaceIds": ["ATVPDKIKX0DER"],
     "inputFeedDocumentId": "x"},
    {"feedType": "POST_ORDER_ACKNOWLEDGEMENT_DATA", "marketplaceIds": [],
     "inputFeedDocumentId": "x"},
    {"feedType": "POST_ORDER_ACKNOWLEDGEMENT_DATA", "marketplaceIds": ["ATVPDKIKX0DER"],
     "inputFeedDocumentId": "unknown"},
])
def test_bad_feeds_are_refused(amazon: Api, body: dict[str, Any]) -> None:
    assert amazon.post("/feeds/2021-06-30/feeds", json=body).status_code == 400


def test_get_feeds_pages_with_a_next_token_sent_alone(sandbox: Sandbox, amazon: Api) -> None:
    """getFeeds answers at most pageSize feeds, newest first, and a nextToken when more
    match; the token is then the only parameter (with any other: 400), as the spec says."""
    for n in range(5):
        sandbox.amazon.feeds[str(n)] = {
            "feedId": str(n), "feedType": "POST_ORDER_ACKNOWLEDGEMENT_DATA",
            "marketplaceIds": ["ATVPDKIKX0DER"], "processingStatus": "DONE",
            "createdTime": f"2026-12-01T10:00:0{n}Z"}
    params = {"feedTypes": "POST_ORDER_ACKNOWLEDGEMENT_DATA", "pageSize": "2"}
    seen, page = [], amazon.get("/feeds/2021-06-30/feeds", params=params).json()
    while True:
        seen += [feed["feedId"] for feed in page["feeds"]]
        if "nextToken" not in page:
            break
        refused = amazon.get("/feeds/2021-06-30/feeds",
                             params={**params, "nextToken": page["nextToken"]})
        assert refused.status_code == 400
        page = amazon.get("/feeds/2021-06-30/feeds",
                          params={"nextToken": page["nextToken"]}).json()
    assert seen == ["4", "3", "2", "1", "0"]
    assert amazon.get("/feeds/2021-06-30/feeds",
                      params={"nextToken": "garbage"}).status_code == 400


def test_unknown_feed_and_document_are_not_found(amazon: Api) -> None:
    assert amazon.get("/feeds/2021-06-30/feeds/1").status_code == 404
    assert amazon.get("/feeds/2021-06-30/documents/1").status_code == 404


# -- rate limits ------------------------------------------------------------------------
def test_rate_limits_answer_quota_exceeded(client: httpx.Client) -> None:
    with Sandbox(rate_limits={"getOrder": (0.0, 2)}) as sandbox:
        amazon = Api(client, sandbox.settings()["amazon"]["base_url"],
                     {"x-amz-access-token": amazon_token(sandbox, client)})
        path = "/orders/2026-01-01/orders/111-0000001-0000001"
        first, second, third = (amazon.get(path) for _ in range(3))
        assert first.status_code == second.status_code == 200
        assert first.headers["x-amzn-RateLimit-Limit"] == "0"
        assert third.status_code == 429
        assert third.json() == {"errors": [{
            "code": "QuotaExceeded",
            "message": "You exceeded your quota for the requested resource."}]}
        assert "Retry-After" not in third.headers
        assert "x-amzn-RateLimit-Limit" not in third.headers
        assert _search(amazon).headers["x-amzn-RateLimit-Limit"] == "0.0056"


@pytest.mark.parametrize(("last", "granted"), [
    (0.75 + 0.025, True),  # 0.4 + 0.3 s at 2/s: one token, though the floats give 0.999...
    (0.7495 + 0.025, False),  # 0.999 of a token
])
def test_a_token_refilled_exactly_is_granted(last: float, granted: bool) -> None:
    now = [0.0]  # times as a simulated clock sums them (a client waits exactly the refill)
    buckets = TokenBuckets({"confirmShipment": (2.0, 10)}, monotonic=lambda: now[0])
    now[0] = 0.25 + 0.025
    assert all(buckets.take("confirmShipment") for _ in range(8))  # 2 left
    now[0] = 0.45 + 0.025
    assert all(buckets.take("confirmShipment") for _ in range(2))  # 2.4 - 2 = 0.4 left
    now[0] = last
    assert buckets.take("confirmShipment") is granted


def test_rate_limits_are_off_by_default(amazon: Api) -> None:
    responses = [amazon.get("/orders/2026-01-01/orders/111-0000001-0000001")
                 for _ in range(40)]
    assert {r.status_code for r in responses} == {200}
    assert "x-amzn-RateLimit-Limit" not in responses[0].headers


def test_feed_reports_each_bad_message(sandbox: Sandbox, amazon: Api) -> None:
    orders = sandbox.amazon.orders
    items = {oid: [i["orderItemId"] for i in orders[oid]["orderItems"]]
             for oid in ("113-0000003-0000004", "112-0000002-0000002")}
    items["999-9999999-9999999"] = ["1"]
    feed_id = submit_feed(amazon, _ack_feed(("113-0000003-0000004", "Success", None),
                                        ("112-0000002-0000002", "Failure", "NotAReason"),
                                        ("999-9999999-9999999", "Failure", None),
                                        items=items))
    sandbox.amazon.feeds_api.polls_before_done = 0
    statuses, feed = poll_feed(amazon, feed_id)
    assert statuses == ["DONE"]
    report = feed_report(amazon, feed["resultFeedDocumentId"])
    summary = report.find("Message/ProcessingReport/ProcessingSummary")
    assert summary is not None and summary.findtext("MessagesWithError") == "2"
    errors = {r.findtext("MessageID"): r.findtext("AdditionalInfo/AmazonOrderID")
              for r in report.findall("Message/ProcessingReport/Result")}
    assert errors == {"2": "112-0000002-0000002", "3": "999-9999999-9999999"}
    assert sandbox.amazon.acknowledgements == {"113-0000003-0000004": ["Success"]}
    assert orders["112-0000002-0000002"]["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
