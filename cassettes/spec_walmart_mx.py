"""The Walmart México spec cassette (`cassettes/spec-walmart-mx.yaml`), built by
`build_from_specs.py`.

Every exchange is an example of `mx-mp-auth.json` or `mx-mp-orders.json`, unchanged: the
client-credentials token exchange; getAllOrdersUsingCursor (its example page with its
`nextCursorMark`); getAllOrders (its example, asked by the first order's `purchaseOrderId`,
as the México variant reads one order); getAllWFSOrders (its example); acknowledgeOrders,
cancelOrderLines and shippingUpdates (`/ship`: the request examples and their 202 string).
Labelled exceptions: the spec has one cursor page, so the page its `nextCursorMark` points at
is that example again without the mark (the last page); listings have no request example, so
they are asked with parameters the operations declare; a 202 example string is written
where the spec gives the type only.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from build_from_specs import Spec, cassette, interaction
from spec_walmart import WALMART, _json, _request, _token

ORDERS, CURSOR, WFS = "/v3/orders", "/v3/orders/cursor", "/v3/orders/wfsorders"
ONE = "/v3/orders/{purchaseOrderId}"
ACK, CANCEL, SHIP = ONE + "/acknowledge", ONE + "/cancel", ONE + "/ship"
ACCEPTED = "Request accepted"  # 202: {"type": "string"} without an example


def walmart_mx(specs: Path) -> dict[str, dict[str, Any]]:
    """{file name: cassette} for Walmart México."""
    orders = Spec(specs / "walmart" / "mx-mp-orders.json", "mx-mp-orders.json")
    auth = Spec(specs / "walmart" / "mx-mp-auth.json", "mx-mp-auth.json")
    token_op, token = _token(auth)
    page = _json(orders.operation(CURSOR, "get"))
    last = copy.deepcopy(page)
    del last["meta"]["nextCursorMark"]
    first = urlencode({"statusCodeFilter": "Created", "createdStartDate": "2022-01-01T00:00:00.000Z",
                       "createdEndDate": "2022-03-31T00:00:00.000Z", "limit": "100",
                       "cursorMark": "*"})
    following = first.replace("cursorMark=%2A", "cursorMark=" + page["meta"]["nextCursorMark"])
    one = _json(orders.operation(ORDERS, "get"))
    number = one["order"][0]["purchaseOrderId"]
    wfs = _json(orders.operation(WFS, "get"))
    ack, cancel, ship = (orders.operation(p, "post") for p in (ACK, CANCEL, SHIP))

    def at(path: str) -> str:
        return WALMART + path.replace("{purchaseOrderId}", number)

    exchanges = [
        ("mx-mp-auth.json tokenAPI 200 clientCredentialsReq/clientCredentialsRes "
         "(access_token masked)", token),
        ("mx-mp-orders.json getAllOrdersUsingCursor 200 example (first page: parameters of "
         "the operation)", interaction("GET", f"{WALMART}{CURSOR}?{first}", None, 200, page)),
        ("mx-mp-orders.json getAllOrdersUsingCursor: the example's nextCursorMark, answered "
         "by the example again without it (the spec has one page)",
         interaction("GET", f"{WALMART}{CURSOR}?{following}", None, 200, last)),
        ("mx-mp-orders.json getAllOrders 200 example, asked by its first purchaseOrderId",
         interaction("GET", f"{WALMART}{ORDERS}?purchaseOrderId={number}", None, 200, one)),
        ("mx-mp-orders.json getAllWFSOrders 200 example (parameters of the operation)",
         interaction("GET", f"{WALMART}{WFS}?limit=200&offset=0", None, 200, wfs)),
        ("mx-mp-orders.json acknowledgeOrders request example, 202 (string)",
         interaction("POST", at(ACK), _request(ack), 202, f'"{ACCEPTED}"')),
        ("mx-mp-orders.json cancelOrderLines request example, 202 (string)",
         interaction("POST", at(CANCEL), _request(cancel), 202, f'"{ACCEPTED}"')),
        ("mx-mp-orders.json shippingUpdates (/ship) request example, 202 (string)",
         interaction("POST", at(SHIP), _request(ship), 202, f'"{ACCEPTED}"')),
    ]
    described = [orders.describe(CURSOR, "get"), orders.describe(ORDERS, "get"),
                 orders.describe(WFS, "get"), orders.describe(ACK, "post"),
                 orders.describe(CANCEL, "post"), orders.describe(SHIP, "post")]
    return {"spec-walmart-mx.yaml": cassette(
        ["walmart/mx-mp-auth.json", "walmart/mx-mp-orders.json"], WALMART,
        [token_op, *described], exchanges)}
