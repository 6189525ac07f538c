"""The world of bench_sim: its constants, the seeded mix, the minimum requests per kind,
and the in-process transport to the sandbox with simulated latency (see bench_sim)."""

from __future__ import annotations

import email.message
import itertools
import math
import threading
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import httpx

from connector.sandbox import Sandbox
from connector.sandbox.ratelimit import TokenBuckets
from connector.sandbox.seed import SKUS, STOCK, Kind, SeedData, _add

from simclock import Sim

REPO = Path(__file__).resolve().parent.parent
FLOWS = ("amazon-to-vtex", "amazon-to-adobe-commerce", "adobe-commerce-to-amazon")
MARKETPLACES = ("ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1AM78C64UM0Y8", "A2Q3Y263D00KWC")
LATENCY = 0.05
PAGE = 100
VTEX_ACCOUNT = (100.0, 100.0)  # 6,000 a minute; burst assumed
START = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
SINCE = "2026-11-30T11:00:00Z"  # before the seed's first change (START - 24 h)

# The mix, per flow: (share, kind, requests its actions need beyond the look-up).
_V, _C, _A = FLOWS
MIX: dict[str, list[tuple[str, float, Kind]]] = {
    _V: [("seller", 0.02, Kind(_V, "CANCELLED", cancelled_by="MERCHANT", vtex="ready-for-handling")),
         ("amazon", 0.015, Kind(_V, "CANCELLED", cancelled_by="AMAZON", vtex="handling")),
         ("buyer", 0.015, Kind(_V, "CANCELLED", cancelled_by="BUYER", vtex="payment-approved")),
         ("shipped", 0.95, Kind(_V, "SHIPPED", vtex="invoiced"))],
    _C: [("seller", 0.02, Kind(_C, "CANCELLED", cancelled_by="MERCHANT", commerce="processing")),
         ("amazon", 0.015, Kind(_C, "CANCELLED", cancelled_by="AMAZON", commerce="processing")),
         ("buyer", 0.015, Kind(_C, "CANCELLED", cancelled_by="BUYER", commerce="processing")),
         ("shipped", 0.95, Kind(_C, "SHIPPED", commerce="complete+invoiced+shipped"))],
    _A: [("seller", 0.02, Kind(_A, "UNSHIPPED", commerce="canceled")),
         ("amazon", 0.015, Kind(_A, "CANCELLED", cancelled_by="AMAZON", commerce="canceled")),
         ("buyer", 0.015, Kind(_A, "CANCELLED", cancelled_by="BUYER", commerce="canceled")),
         ("shipped", 0.95, Kind(_A, "UNSHIPPED", commerce="complete+invoiced+shipped"))],
}


def seed(flow: str, n: int) -> tuple[SeedData, Counter[str], int]:
    """`n` orders of the flow's mix, deterministic: the data, the count of each kind, and
    how many marketplaces have seller-cancelled orders (one feed each)."""
    data = SeedData(stock={sku: STOCK + 3 * n for sku in SKUS})
    kinds = Counter({name: int(share * n) for name, share, _ in MIX[flow]})
    kinds["shipped"] += n - sum(kinds.values())
    order = [(name, kind) for name, _, kind in MIX[flow]]
    plan: list[tuple[str, Kind]] = []
    for name, kind in order:
        plan += [(name, kind)] * kinds[name]
    # spread deterministically over the day: index * step mod n visits every slot once
    step = next(s for s in itertools.count(7919) if math.gcd(s, n) == 1)
    slots: list[tuple[str, Kind] | None] = [None] * n
    for index, item in enumerate(plan):
        slots[(index * step) % n] = item
    span = 23 * 3600.0
    digit = {_V: 1, _C: 2, _A: 3}[flow]
    for index, slot in enumerate(slots):
        assert slot is not None
        item = slot
        created = START.timestamp() - 24 * 3600 + span * index / n
        moment = datetime.fromtimestamp(created, timezone.utc)
        _add(data, f"21{digit}-9000000-{index:07d}", item[1], index, moment,
             datetime.fromtimestamp(created + 600, timezone.utc))
    markets = {index % len(MARKETPLACES) for index, item in enumerate(slots)
               if item is not None and item[0] == "seller"}
    return data, kinds, len(markets)


# Requests an order's actions need, per flow and kind, by operation (beyond the look-up);
# "batch" marks a member of the run's feed, whose steps are counted once per batch.
NEEDED: dict[str, dict[str, dict[str, int]]] = {
    # ready-for-handling and handling: cancel, cancellation-requested, read again, cancel
    # (VTEX's cancel answers no status); payment-approved: cancelled at once
    _V: {"seller": {"vtex/CancelOrder": 2, "vtex/GetOrder": 1},
         "amazon": {"vtex/CancelOrder": 2, "vtex/GetOrder": 1},
         "buyer": {"vtex/CancelOrder": 1}, "shipped": {}},
    # cancel, and the order comment that says who cancelled
    _C: {kind: {"adobe-commerce/PostV1OrdersIdCancel": 1, "adobe-commerce/PostV1OrdersIdComments": 1}
         for kind in ("seller", "amazon", "buyer")} | {"shipped": {}},
    # the shipment's tracking (the Commerce order has none), then the confirmation
    _A: {"seller": {"batch": 1}, "amazon": {}, "buyer": {},
         "shipped": {"adobe-commerce/GetV1Shipments": 1, "amazon/confirmShipment": 1}},
}
LISTING = {_V: "amazon/searchOrders", _C: "amazon/searchOrders", _A: "adobe-commerce/GetV1Orders"}
LOOKUP = {_V: "vtex/GetOrder", _C: "adobe-commerce/GetV1Orders", _A: "amazon/getOrder"}
FEED_STEPS = ("amazon/createFeedDocument", "amazon/upload", "amazon/createFeed",
              "amazon/getFeed", "amazon/getFeedDocument", "amazon/download")


class InProcess(httpx.BaseTransport):
    """The sandbox's dispatcher called in the requesting thread, with simulated latency and
    VTEX's account limit on GetOrder; counts every attempt by (system/operation, status)."""

    def __init__(self, box: Sandbox, sim: Sim, counts: Counter[tuple[str, int]],
                 current: threading.local) -> None:
        self.box, self.sim, self.counts, self.current = box, sim, counts, current
        self.vtex = TokenBuckets({"GetOrder": VTEX_ACCOUNT}, monotonic=sim.now)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        target = request.url.raw_path.decode("ascii")
        path = request.url.path
        token = path.endswith("/auth/o2/token")
        if not token:
            self.sim.sleep(LATENCY / 2)
        headers = email.message.Message()
        for name, value in request.headers.items():
            headers[name] = value
        if (request.method == "GET" and path.startswith("/vtex/api/oms/pvt/orders/")
                and path.count("/") == 5 and not self.vtex.take("GetOrder")):
            status, body, answer = 429, b"", {}
        else:
            response = self.box._server.handle(request.method, target, headers, request.read())
            if response is None:
                raise httpx.RemoteProtocolError("dropped", request=request)
            status, body, answer = response.status, response.body, response.headers
        del self.box.requests[:]  # counted here; the log would grow with the run
        if not token:
            self.sim.sleep(LATENCY / 2)
        self.counts[(getattr(self.current, "op", "?"), status)] += 1
        return httpx.Response(status, headers=answer, content=body)
