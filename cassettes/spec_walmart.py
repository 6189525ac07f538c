"""The Walmart spec cassette (`cassettes/spec-walmart.yaml`), built by `build_from_specs.py`.

Every exchange is an example of `us-mp-auth.json` or `us-mp-orders.json`, unchanged: the
client-credentials token exchange, getAllOrders (its example page, with its `nextCursor`),
getAnOrder (example ORDER), acknowledgeOrders, cancelOrderLines and shippingUpdates (the
request examples and their answers). Two exceptions, labelled as such: the spec has a single
listing page, so the page its `nextCursor` points at is that example again without
`nextCursor` (the last page); and its listing has no request example, so the first page is
asked with filters the operation declares.

The spec points `orderLines` of the cancel and shipping bodies at `RefundLinesType`, while
every example (and the research notes, §4 and §7) uses `CancelLineType` and `ShippingLineType`:
the operations' body fields are described from those, so that the examples themselves pass.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from build_from_specs import Spec, cassette, interaction

WALMART = "https://sandbox.walmartapis.com"  # the spec's sandbox server
ORDERS, ONE = "/v3/orders", "/v3/orders/{purchaseOrderId}"
ACK, CANCEL, SHIP = ONE + "/acknowledge", ONE + "/cancel", ONE + "/shipping"
_LINES = {"orderLines": {"type": "object", "required": ["orderLine"], "properties": {
    "orderLine": {"type": "array", "items": {"$ref": "#/components/schemas/{}"}}}}}


def _body(wrapper: str, line_type: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    lines = json.loads(json.dumps(_LINES).replace("{}", line_type))
    return {"type": "object", "required": [wrapper], "properties": {wrapper: {
        "type": "object", "required": ["orderLines"], "properties": {**lines, **(extra or {})}}}}


def _json(op: dict[str, Any], status: str = "200", name: str | None = None) -> Any:
    content = op["responses"][status]["content"]["application/json"]
    return content["examples"][name]["value"] if name else content["example"]


def _request(op: dict[str, Any]) -> Any:
    return op["requestBody"]["content"]["application/json"]["example"]


def _token(auth: Spec) -> tuple[dict[str, Any], dict[str, Any]]:
    op = auth.operation("/v3/token", "post")
    form = op["requestBody"]["content"]["application/x-www-form-urlencoded"]["examples"]
    # The example's token is a truncated placeholder, masked all the same as every recorded one.
    answer = {**_json(op, name="clientCredentialsRes"), "access_token": "****"}
    exchange = interaction("POST", WALMART + "/v3/token", None, 200, answer)
    exchange["request"]["headers"]["Content-Type"] = ["application/x-www-form-urlencoded"]
    exchange["request"]["body"] = urlencode(form["clientCredentialsReq"]["value"])
    described = {"operation": "tokenAPI", "method": "POST", "path": "/v3/token", "query": {},
                 "body": None, "form": sorted(auth.fields(
                     {"$ref": "#/components/schemas/IAMTokenDTO"})[0])}
    return described, exchange


def walmart(specs: Path) -> dict[str, dict[str, Any]]:
    """{file name: cassette} for Walmart."""
    orders = Spec(specs / "walmart" / "us-mp-orders.json", "us-mp-orders.json")
    auth = Spec(specs / "walmart" / "us-mp-auth.json", "us-mp-auth.json")
    token_op, token = _token(auth)
    listing = orders.operation(ORDERS, "get")
    page = _json(listing)
    last = json.loads(json.dumps(page))
    del last["list"]["meta"]["nextCursor"]
    first_query = urlencode({"lastModifiedStartDate": "2019-09-14T00:00:00Z",
                             "lastModifiedEndDate": "2019-09-17T18:47:03Z", "limit": "10"})
    one = _json(orders.operation(ONE, "get"), name="ORDER")
    ack, cancel, ship = (orders.operation(p, "post") for p in (ACK, CANCEL, SHIP))

    def at(path: str, answer: dict[str, Any]) -> str:
        return WALMART + path.replace("{purchaseOrderId}", answer["order"]["purchaseOrderId"])

    exchanges = [
        ("us-mp-auth.json tokenAPI 200 clientCredentialsReq/clientCredentialsRes "
         "(access_token masked)", token),
        ("us-mp-orders.json getAllOrders 200 example (first page: filters of the operation)",
         interaction("GET", f"{WALMART}{ORDERS}?{first_query}", None, 200, page)),
        ("us-mp-orders.json getAllOrders: the example's nextCursor, answered by the example "
         "again without nextCursor (the spec has one page)",
         interaction("GET", WALMART + ORDERS + page["list"]["meta"]["nextCursor"], None, 200,
                     last)),
        ("us-mp-orders.json getAnOrder 200 example ORDER",
         interaction("GET", at(ONE, one), None, 200, one)),
        ("us-mp-orders.json acknowledgeOrders 200 example",
         interaction("POST", at(ACK, _json(ack)), None, 200, _json(ack))),
        ("us-mp-orders.json cancelOrderLines request example, 200 example",
         interaction("POST", at(CANCEL, _json(cancel)), _request(cancel), 200, _json(cancel))),
        ("us-mp-orders.json shippingUpdates request example, 200 example",
         interaction("POST", at(SHIP, _json(ship)), _request(ship), 200, _json(ship))),
    ]
    described = [orders.describe(ORDERS, "get"), orders.describe(ONE, "get"),
                 orders.describe(ACK, "post")]
    for path, wrapper, line_type, extra in (
            (CANCEL, "orderCancellation", "CancelLineType", None),
            (SHIP, "orderShipment", "ShippingLineType", {"processMode": {"type": "string"}})):
        operation = orders.describe(path, "post")
        fields, required = orders.fields(_body(wrapper, line_type, extra))
        operation["body"] = {"fields": sorted(fields), "required": sorted(required),
                             "note": f"orderLines read as {line_type} (the spec says "
                                     "RefundLinesType; every example disagrees)"}
        described.append(operation)
    return {"spec-walmart.yaml": cassette(["walmart/us-mp-auth.json", "walmart/us-mp-orders.json"],
                                          WALMART, [token_op, *described], exchanges)}
