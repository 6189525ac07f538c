"""The built-in sandbox: a local simulator of Amazon SP-API, Walmart, VTEX and Adobe Commerce.

It serves the endpoints the shipped mappings use, with the request and response shapes of the
official specs (`shared/specs/`), seeded orders (docs/scenarios.md) and the systems' state
rules, on loopback. `connector apply --sandbox`, `connector sandbox`, the end-to-end tests,
cassette recording and benchmarks all run against it.

    with Sandbox() as sandbox:
        settings = sandbox.settings()          # point the connector at it
        ...                                    # run flows
        assert sandbox.vtex.orders["AMZ-111-0000001-0000001-01"]["status"] == "canceled"

Inspect or change state through `sandbox.amazon`, `sandbox.walmart`, `sandbox.vtex` and
`sandbox.commerce`;
`sandbox.requests` logs every request as `(system, method, path, status)`, where `path` is
relative to the system's `base_url` (the token and presigned upload URLs, which are not under
it, are logged with their full path) and status 0 means a dropped connection;
`sandbox.errors` keeps any exception raised inside a simulator (answered as 500).

Faults: `sandbox.faults` makes matching requests fail the ways networks and servers do,
before or after the simulator acts (429, 5xx, HTML pages, lost requests, dropped
connections, late answers, cut or garbled JSON, hooks for a third party's change or a
client's death, a seeded random mix; see `faults.py`); `sandbox.expire_tokens()` expires
the LWA and Walmart tokens and `sandbox.amazon.feeds_api.fatal_next()` fails the next feed.
`connector.sandbox.effects` snapshots what a run changed, to compare with a fault-free run.

Time: like SP-API, searchOrders serves no change younger than two minutes, so a change made
during a run (by the connector or by a test helper) shows up in a later run only after
`sandbox.advance(180)` (or with `sandbox.amazon.freshness_lag = timedelta(0)`).
"""

from __future__ import annotations

import os
import shlex
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self is Python 3.11+; only the type checker reads it

from connector.sandbox.amazon import Amazon
from connector.sandbox.clock import Clock
from connector.sandbox.commerce import Commerce
from connector.sandbox.records import Buyer, Line, amazon_order
from connector.sandbox.seed import (
    SeedData,
    commerce_counterpart,
    generated,
    install,
    scenarios,
    vtex_counterpart,
)
from connector.sandbox.server import Faults, RequestRecord, SandboxServer
from connector.sandbox.vtex import Vtex
from connector.sandbox.walmart import Walmart
from connector.sandbox.walmart_mx_seed import add_mx_scenarios, generated_mx, install_mx
from connector.sandbox.walmart_seed import (
    AFFILIATE,
    add_walmart_scenarios,
    generated_walmart,
    install_walmart,
)

__all__ = ["Faults", "RequestRecord", "Sandbox", "environment", "serve"]


class Sandbox:
    """The four simulated systems behind one loopback HTTP server.

    `orders` is "scenarios" (docs/scenarios.md), "empty", or a number of generated Amazon
    orders (`walmart_orders` adds that many generated Walmart orders; `walmart_mx` the
    Walmart México scenarios, by default when CONNECTOR_WALMART_MARKET is mx, and
    `walmart_mx_orders` that many generated México orders);
    `rate_limits` is False (off), True (SP-API's published limits) or a mapping of operation
    name to (rate per second, burst) overriding them; `token_ttl` is the LWA token lifetime in
    seconds; `now` replaces the wall clock (the sandbox adds `advance()`'s offset to it).
    """

    def __init__(self, *, latency: float = 0.0,
                 rate_limits: bool | Mapping[str, tuple[float, float]] = False,
                 orders: str | int = "scenarios", token_ttl: float = 3600.0,
                 now: Callable[[], datetime] | None = None, host: str = "127.0.0.1",
                 port: int = 0, seed: int = 0, walmart_orders: int = 0,
                 walmart_mx: bool | None = None, walmart_mx_orders: int = 0) -> None:
        self.clock = Clock(now)
        self._lock = threading.RLock()
        self.faults = Faults()
        self.amazon = Amazon(self.clock, self._lock, lambda: self.base_url, token_ttl,
                             rate_limits)
        self.vtex = Vtex(self.clock, self._lock)
        self.commerce = Commerce(self.clock, self._lock)
        self.walmart = Walmart(self.clock, self._lock)
        self._server = SandboxServer(
            [*self.amazon.mounts(), *self.walmart.mounts(), *self.vtex.mounts(),
             *self.commerce.mounts()],
            self._lock, self.faults, host, port)
        self._server.latency = latency
        data = self._seed(orders, seed)
        # The México scenarios (and their VTEX and Commerce counterparts) with the scenarios,
        # when asked or when the connector's Walmart market is mx (`apply --sandbox`).
        if walmart_mx is None:
            walmart_mx = os.environ.get("CONNECTOR_WALMART_MARKET", "").strip().lower() == "mx"
        if walmart_mx and orders == "scenarios":
            add_mx_scenarios(data, self.clock.now())
        if walmart_mx_orders:
            generated_mx(data, walmart_mx_orders, self.clock.now(), seed)
        if walmart_orders:
            generated_walmart(data, walmart_orders, self.clock.now(), seed)
        install(data, self.amazon, self.vtex, self.commerce)
        install_walmart(data, self.walmart)
        install_mx(data, self.walmart.mx)

    def _seed(self, orders: str | int, seed: int) -> SeedData:
        now = self.clock.now()
        if isinstance(orders, int) and not isinstance(orders, bool):
            return generated(orders, now, seed)
        if orders == "scenarios":
            return add_walmart_scenarios(scenarios(now), now)
        if orders == "empty":
            return SeedData()
        raise ValueError(f"orders must be 'scenarios', 'empty' or a number, not {orders!r}")

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Start serving on loopback (port 0 picks a free port); idempotent."""
        self._server.start()

    def stop(self) -> None:
        """Stop serving, close open connections and join the server threads."""
        self._server.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    # -- configuration ------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT` while running."""
        return self._server.base_url

    @property
    def latency(self) -> float:
        """Seconds added before every response (switchable while running)."""
        return self._server.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        """Switch the added latency on or off while running."""
        self._server.latency = seconds

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request served, in order: (system, method, path, status)."""
        return self._server.requests

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised inside the simulators (answered as 500); empty when healthy."""
        return self._server.errors

    def expire_tokens(self) -> None:
        """Expire every Amazon and Walmart access token now: the next SP-API call with one
        gets 403, the next Walmart call 401, and the client must fetch a new one (VTEX keys
        and the Commerce token do not expire)."""
        self.amazon.expire_tokens()
        self.walmart.expire_tokens()

    def advance(self, delta: float | timedelta) -> None:
        """Move sandbox time forward (token expiry, Amazon's two-minute lag, stamps)."""
        self.clock.advance(delta)

    # -- building extra records (test set-up) --------------------------------------------
    def add_amazon_order(self, order_id: str, status: str = "UNSHIPPED", *,
                         fulfilled_by: str = "MERCHANT",
                         items: Sequence[tuple[str, int]] = (("SKU-1", 1),),
                         cancelled_by: str | None = None, buyer_request: bool = False,
                         email: str | None = None, at: datetime | None = None
                         ) -> dict[str, Any]:
        """Add an Amazon order placed `at` (default: now, so served two minutes later)."""
        moment = at or self.clock.now()
        base = f"{int(order_id.replace('-', '')) % 10**12:012d}"
        lines = [Line(sku, quantity, f"{base}{n:02d}") for n, (sku, quantity) in
                 enumerate(items, 1)]
        buyer = Buyer("Sandbox", "Buyer", email or f"{base}@marketplace.amazon.com")
        return self.amazon.add_order(amazon_order(
            order_id, status=status, fulfilled_by=fulfilled_by, created=moment,
            updated=moment, lines=lines, buyer=buyer, cancelled_by=cancelled_by,
            buyer_request=buyer_request))

    def add_vtex_order(self, amazon_order_id: str, status: str = "ready-for-handling"
                       ) -> dict[str, Any]:
        """Add the VTEX order (`AMZ-{id}-01`) for an Amazon order of the sandbox."""
        record = vtex_counterpart(self.amazon.orders[amazon_order_id], status,
                                  600000 + len(self.vtex.orders), self.clock.now())
        return self.vtex.add_order(record)

    def add_commerce_order(self, amazon_order_id: str, state: str = "processing", *,
                           invoiced: bool = False, shipped: bool = False) -> dict[str, Any]:
        """Add the Commerce order imported for an Amazon order (ext/increment id = its id)."""
        with self._lock:
            return commerce_counterpart(self.amazon.orders[amazon_order_id], self.commerce,
                                        state, self.clock.now(), invoiced=invoiced,
                                        shipped=shipped)

    def settings(self) -> dict[str, dict[str, str]]:
        """The connector settings of each system that point it at this sandbox."""
        base = self.base_url
        return {
            "amazon": {"base_url": f"{base}/amazon",
                       "token_url": f"{base}/amazon-auth/auth/o2/token",
                       "client_id": self.amazon.credentials["client_id"],
                       "client_secret": self.amazon.credentials["client_secret"],
                       "refresh_token": self.amazon.credentials["refresh_token"],
                       "marketplace_ids": "ATVPDKIKX0DER"},
            "walmart": {"base_url": f"{base}/walmart",
                        "client_id": self.walmart.credentials["client_id"],
                        "client_secret": self.walmart.credentials["client_secret"]},
            "vtex": {"base_url": f"{base}/vtex", "account": "sandbox",
                     "app_key": self.vtex.credentials["app_key"],
                     "app_token": self.vtex.credentials["app_token"], "affiliate_id": "AMZ",
                     "walmart_affiliate_id": AFFILIATE},
            "adobe-commerce": {"base_url": f"{base}/adobe-commerce/rest/default",
                               "token": self.commerce.token, "website_id": "1",
                               "store_id": "1"},
        }


def environment(settings: Mapping[str, Mapping[str, str]]) -> list[str]:
    """`CONNECTOR_<SYSTEM>_<SETTING>=value` lines (upper case, `-` → `_`).

    Values are shell-quoted when needed (the LWA refresh token contains `|`), so the lines
    can be pasted into a shell or saved as a file to source.
    """
    return [f"CONNECTOR_{system.upper().replace('-', '_')}_{name.upper().replace('-', '_')}"
            f"={shlex.quote(value)}" for system, values in settings.items()
            for name, value in values.items()]


def _print(line: str) -> None:
    print(line, flush=True)  # flushed: the output is often piped while the server runs


def serve(host: str = "127.0.0.1", port: int = 8765, *, latency: float = 0.0,
          rate_limits: bool = False, orders: str | int = "scenarios", log: bool = False,
          print_line: Callable[[str], None] = _print,
          stop: threading.Event | None = None) -> None:
    """Serve the sandbox until interrupted (or `stop` is set), printing its settings and what
    it holds first, each request with `log`, and what it served and holds at the end."""
    from connector.sandbox import console

    sandbox = Sandbox(latency=latency, rate_limits=rate_limits, orders=orders, host=host,
                      port=port)
    with sandbox:
        print_line(f"# connector sandbox serving on {sandbox.base_url} (Ctrl-C to stop); "
                   "paste these lines into a shell, or save them to a file and source it")
        for line in environment(sandbox.settings()):
            print_line(f"export {line}")  # a plain VAR=value would not reach `connector`
        print_line(f"# holds {console.state(sandbox)}")
        requests = console.RequestLog(sandbox, print_line) if log else None
        if requests is not None:
            requests.start()
        try:
            (stop or threading.Event()).wait()
        except KeyboardInterrupt:
            pass
        finally:
            if requests is not None:
                requests.stop()
            print_line(f"# served {console.served(sandbox)}; holds {console.state(sandbox)}")
