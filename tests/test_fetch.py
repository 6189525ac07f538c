"""fetch: the changed-orders window, listing across pages (token and page number), get_order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from mock_systems import NOW, World, amazon_order, harness

from connector.transport.client import SystemClient
from connector.errors import ConnectorError, HTTPError
from connector.fetch import Window, get_order, list_changed, window
from connector.transport.http import Transport, new_client
from connector.project import load_config, require
from connector.render import Redactor

# --- window ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cursor", "since", "lookback", "min_age", "expected"),
    [
        # nothing stored: the lookback; Amazon's two-minute rule bounds the upper end
        (None, None, 24, 120, Window("2026-03-01T12:00:00Z", "2026-03-02T11:58:00Z")),
        (None, None, 6, 0, Window("2026-03-02T06:00:00Z", "2026-03-02T12:00:00Z")),
        # the stored cursor wins over the lookback
        (
            "2026-03-02T09:30:00Z",
            None,
            24,
            120,
            Window("2026-03-02T09:30:00Z", "2026-03-02T11:58:00Z"),
        ),
        # an explicit --since wins over the cursor (any offset, given in UTC)
        (
            "2026-03-02T09:30:00Z",
            "2026-03-01T08:00:00+02:00",
            24,
            120,
            Window("2026-03-01T06:00:00Z", "2026-03-02T11:58:00Z"),
        ),
        # a naive --since is UTC
        (
            None,
            "2026-03-01T08:00:00",
            24,
            0,
            Window("2026-03-01T08:00:00Z", "2026-03-02T12:00:00Z"),
        ),
        # a cursor younger than the minimum age: the window is empty, never inverted
        (
            "2026-03-02T11:59:30Z",
            None,
            24,
            120,
            Window("2026-03-02T11:58:00Z", "2026-03-02T11:58:00Z"),
        ),
    ],
)
def test_window(
    cursor: str | None, since: str | None, lookback: float, min_age: int, expected: Window
) -> None:
    assert window(cursor, since, NOW, lookback, min_age) == expected


def test_window_upper_bound_is_never_younger_than_min_age() -> None:
    span = window(None, None, NOW, 24, 120)
    before = datetime.fromisoformat(span.before.replace("Z", "+00:00"))
    assert NOW - before >= timedelta(seconds=120)


def test_window_refuses_a_bad_since() -> None:
    with pytest.raises(ConnectorError, match="not an ISO-8601"):
        window(None, "yesterday", NOW, 24, 0)


# --- token pagination (SP-API searchOrders) ---------------------------------------------------

SPAN = Window("2026-03-01T12:00:00Z", "2026-03-02T11:58:00Z")


@pytest.fixture
def amazon_world() -> World:
    world = World(page_size=2)
    for n in range(1, 6):
        world.amazon[f"902-{n}"] = amazon_order(f"902-{n}", updated=f"2026-03-02T10:0{n}:00Z")
    return world


def test_token_pagination_repeats_every_other_parameter(
    amazon_world: World, tmp_path: Path
) -> None:
    with harness(amazon_world, tmp_path / "s.db") as h:
        ids = [r["orderId"] for r in list_changed(h.clients["amazon"], SPAN)]
    assert ids == [f"902-{n}" for n in range(1, 6)]
    pages = amazon_world.listings()
    assert len(pages) == 3
    first = dict(pages[0].url.params)
    assert first == {
        "lastUpdatedAfter": SPAN.after,
        "lastUpdatedBefore": SPAN.before,
        "marketplaceIds": "ATVPDKIKX0DER",
        "includedData": "CANCELLATION,FULFILLMENT",
        "maxResultsPerPage": "2",
    }
    assert "paginationToken" not in pages[0].url.params
    for page, token in zip(pages[1:], ("token-1", "token-2")):
        params = dict(page.url.params)
        assert params.pop("paginationToken") == token
        assert params == first


def test_token_pagination_stops_without_next_token(amazon_world: World, tmp_path: Path) -> None:
    amazon_world.page_size = 10
    with harness(amazon_world, tmp_path / "s.db") as h:
        assert len(list(list_changed(h.clients["amazon"], SPAN))) == 5
    assert len(amazon_world.listings()) == 1


@pytest.mark.parametrize(("limit", "requests"), [(1, 1), (2, 1), (3, 2), (5, 3), (50, 3)])
def test_limit(amazon_world: World, tmp_path: Path, limit: int, requests: int) -> None:
    with harness(amazon_world, tmp_path / "s.db") as h:
        records = list(list_changed(h.clients["amazon"], SPAN, limit=limit))
    assert len(records) == min(limit, 5)
    assert len(amazon_world.listings()) == requests


def test_listing_error_raises_with_the_systems_message(tmp_path: Path) -> None:
    world = World()
    with harness(world, tmp_path / "s.db") as h:
        # an empty bound is left out of the query: SP-API answers 400 InvalidInput
        world.amazon["1"] = amazon_order("1")
        with pytest.raises(HTTPError) as caught:
            list(list_changed(h.clients["amazon"], Window("", "")))
    message = str(caught.value)
    assert "listing orders" in message
    assert "amazon answered 400" in message
    assert (
        "InvalidInput: Invalid Input (one of createdAfter or lastUpdatedAfter is required)"
        in message
    )


def test_listing_refused_token_is_an_error_not_a_retry_loop(
    amazon_world: World, tmp_path: Path
) -> None:
    with harness(amazon_world, tmp_path / "s.db") as h:
        records = list_changed(h.clients["amazon"], SPAN)
        next(records)
        next(records)
        amazon_world.expire_page_tokens()  # a token lives 24 hours
        with pytest.raises(HTTPError, match="Invalid paginationToken"):
            next(records)


def test_get_order(amazon_world: World, tmp_path: Path) -> None:
    with harness(amazon_world, tmp_path / "s.db") as h:
        found = get_order(h.clients["amazon"], "902-3")
        missing = get_order(h.clients["amazon"], "404-0")
    assert found is not None and found["orderId"] == "902-3"
    assert missing is None
    assert [r.url.path for r in amazon_world.calls("GET")] == [
        "/orders/2026-01-01/orders/902-3",
        "/orders/2026-01-01/orders/404-0",
    ]


# --- page-number pagination (Magento searchCriteria, VTEX paging) -----------------------------

PAGED = """\
system: shop
settings:
  token: {secret: true, default: shop-token-SECRET}
connection:
  base_url: https://shop.example.com
  auth: {kind: headers, headers: {Authorization: "Bearer {{ settings.token }}"}}
  # the shop's error bodies are {message, parameters} with placeholders
  error_message: "placeholders(message, parameters)"
domains: {status: [new, closed]}
orders:
  list:
    request:
      method: GET
      path: /rest/V1/orders
      query:
        "searchCriteria[filter_groups][0][filters][0][field]": updated_at
        "searchCriteria[filter_groups][0][filters][0][value]": "{{ window.after }}"
        "searchCriteria[filter_groups][0][filters][0][condition_type]": gteq
        "searchCriteria[pageSize]": "2"
    pagination: {items: items, page_param: "searchCriteria[currentPage]"%s}
normalise:
  id: entity_id
  status: state
"""

PAGE_PARAM = "searchCriteria[currentPage]"


def _paged_client(
    tmp_path: Path,
    handler: Callable[[httpx.Request], httpx.Response],
    total_pages: str = "",
    pagination: str = "",
) -> tuple[SystemClient, Transport]:
    extra = f", total_pages: {total_pages}" if total_pages else ""
    text = PAGED % extra
    if pagination:
        text = text.replace(text.split("pagination: ")[1].split("\n")[0], pagination)
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "shop.yaml").write_text(text)
    config = require(load_config(tmp_path))
    transport = Transport(new_client(transport=httpx.MockTransport(handler)), sleep=lambda s: None)
    return SystemClient(
        config.systems["shop"], {"token": "shop-token-SECRET"}, transport, Redactor()
    ), transport


class Pages:
    """Answers page n (1-based) from a list; past the end, `beyond` decides."""

    def __init__(
        self, pages: list[list[int]], beyond: str = "empty", pages_field: int | None = None
    ) -> None:
        self.pages = pages
        self.beyond = beyond
        self.pages_field = pages_field
        self.asked: list[int] = []
        self.params: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer shop-token-SECRET"
        page = int(request.url.params[PAGE_PARAM])
        self.asked.append(page)
        self.params.append({k: v for k, v in request.url.params.items() if k != PAGE_PARAM})
        if page <= len(self.pages):
            ids = self.pages[page - 1]
        elif self.beyond == "repeat":  # Magento answers the last page again
            ids = self.pages[-1]
        else:
            ids = []
        body: dict[str, Any] = {
            "items": [{"entity_id": i, "state": "new"} for i in ids],
            "total_count": sum(len(p) for p in self.pages),
        }
        if self.pages_field is not None:
            body["paging"] = {"pages": self.pages_field}
        return httpx.Response(200, json=body)


@pytest.mark.parametrize(
    ("pages", "beyond", "total", "pages_field", "expected_ids", "asked"),
    [
        # an empty page ends the listing
        ([[1, 2], [3, 4], [5]], "empty", "", None, [1, 2, 3, 4, 5], [1, 2, 3, 4]),
        # Magento repeats the last page past the end: a page with no new id ends it
        ([[1, 2], [3, 4], [5]], "repeat", "", None, [1, 2, 3, 4, 5], [1, 2, 3, 4]),
        ([[1, 2], [3, 4]], "repeat", "", None, [1, 2, 3, 4], [1, 2, 3]),
        # total_pages: no request past the last page
        ([[1, 2], [3, 4], [5]], "repeat", "paging.pages", 3, [1, 2, 3, 4, 5], [1, 2, 3]),
        ([[1, 2], [3, 4], [5]], "empty", "paging.pages", 2, [1, 2, 3, 4], [1, 2]),
        # a single empty page
        ([[]], "empty", "", None, [], [1]),
    ],
)
def test_page_number_pagination(
    tmp_path: Path,
    pages: list[list[int]],
    beyond: str,
    total: str,
    pages_field: int | None,
    expected_ids: list[int],
    asked: list[int],
) -> None:
    handler = Pages(pages, beyond, pages_field)
    client, transport = _paged_client(tmp_path, handler, total)
    with transport:
        ids = [r["entity_id"] for r in list_changed(client, SPAN)]
    assert ids == expected_ids
    assert handler.asked == asked
    assert all(p == handler.params[0] for p in handler.params)  # only the page number changes


def test_page_number_pagination_limit(tmp_path: Path) -> None:
    handler = Pages([[1, 2], [3, 4], [5]])
    client, transport = _paged_client(tmp_path, handler)
    with transport:
        assert [r["entity_id"] for r in list_changed(client, SPAN, limit=3)] == [1, 2, 3]
    assert handler.asked == [1, 2]


def test_listing_retries_a_5xx_read(tmp_path: Path) -> None:
    answers = iter(
        [
            httpx.Response(503, text="busy"),
            httpx.Response(200, json={"items": [{"entity_id": 7, "state": "new"}]}),
            httpx.Response(200, json={"items": []}),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers)

    client, transport = _paged_client(tmp_path, handler)
    with transport:
        assert [r["entity_id"] for r in list_changed(client, SPAN)] == [7]


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (
            httpx.Response(
                401,
                json={
                    "message": "The consumer isn't authorized to access %resources.",
                    "parameters": {"resources": "Magento_Sales::actions_view"},
                },
            ),
            "shop answered 401: The consumer isn't authorized to access Magento_Sales::actions_view.",
        ),
        (
            httpx.Response(200, text="<html><title>Maintenance</title></html>"),
            "shop answered a non-JSON body",
        ),
    ],
)
def test_listing_failures(tmp_path: Path, response: httpx.Response, expected: str) -> None:
    client, transport = _paged_client(tmp_path, lambda request: response)
    with transport, pytest.raises(HTTPError) as caught:
        list(list_changed(client, SPAN))
    assert expected in str(caught.value)
    assert "shop-token-SECRET" not in str(caught.value)


def test_no_listing_is_a_configuration_error(tmp_path: Path) -> None:
    world = World()
    with (
        harness(world, tmp_path / "s.db") as h,
        pytest.raises(ConnectorError, match="no orders.list"),
    ):
        list(list_changed(h.clients["vtex"], SPAN))


def test_iso_timestamps_are_utc() -> None:
    moment = datetime(2026, 3, 2, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert window(None, None, moment, 1, 0) == Window(
        "2026-03-02T11:00:00Z", "2026-03-02T12:00:00Z"
    )


def test_a_repeated_next_token_is_an_error_not_a_loop(tmp_path: Path) -> None:
    asked: list[httpx.Request] = []

    def same_token(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        n = len(asked)
        return httpx.Response(200, json={"items": [{"entity_id": n}], "next": "same"})

    client, transport = _paged_client(
        tmp_path, same_token, pagination="{items: items, next_token: next, token_param: after}"
    )
    with transport, pytest.raises(HTTPError, match="same next-page token twice"):
        list(list_changed(client, SPAN))
    assert len(asked) == 2
    assert "after" not in asked[0].url.params and asked[1].url.params["after"] == "same"


@pytest.mark.parametrize("token", ["{{ settings }}", "{% if true %}x{% endif %}", "a&b=c {{"])
def test_a_next_token_is_sent_back_as_it_came_never_rendered(tmp_path: Path, token: str) -> None:
    """The token is the remote side's data: sent back verbatim, not read as a template."""
    asked: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        if len(asked) == 1:
            return httpx.Response(200, json={"items": [{"entity_id": 1}], "next": token})
        return httpx.Response(200, json={"items": [{"entity_id": 2}]})

    client, transport = _paged_client(
        tmp_path, handler, pagination="{items: items, next_token: next, token_param: after}"
    )
    with transport:
        assert [r["entity_id"] for r in list_changed(client, SPAN)] == [1, 2]
    assert asked[1].url.params["after"] == token


def test_next_token_without_token_param_is_refused(tmp_path: Path) -> None:
    asked: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(200, json={"items": [], "next": "t"})

    client, transport = _paged_client(
        tmp_path, handler, pagination="{items: items, next_token: next}"
    )
    with transport, pytest.raises(ConnectorError, match="next_token but no token_param"):
        list(list_changed(client, SPAN))
    assert asked == []


# --- offset pagination and several listings -----------------------------------------------------

TWO_LISTINGS = """\
system: shop
connection:
  base_url: https://shop.example.com
domains: {status: [new]}
orders:
  list:
    - request: {method: GET, path: /own, query: {limit: "2"}}
      pagination: {items: order, offset_param: offset%s}
    - request: {method: GET, path: /fulfilled, query: {limit: "2"}}
      pagination: {items: order, offset_param: offset}
normalise:
  id: id
  status: status
"""


@pytest.mark.parametrize(("total", "own_offsets"), [
    ("", ["0", "2", "4", "5"]),  # an empty page ends it
    (", total: meta.totalCount", ["0", "2", "4"]),  # no request past the total
])
def test_offset_pagination_across_listings(tmp_path: Path, total: str,
                                           own_offsets: list[str]) -> None:
    records = {"/own": [1, 2, 3, 4, 5], "/fulfilled": [5, 6]}  # 5 in both: read once
    asked: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        offset = request.url.params["offset"]
        asked.append((request.url.path, offset))
        ids = records[request.url.path][int(offset):int(offset) + 2]
        return httpx.Response(200, json={"meta": {"totalCount": len(records[request.url.path])},
                                         "order": [{"id": i, "status": "new"} for i in ids]})

    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "shop.yaml").write_text(TWO_LISTINGS % total)
    config = require(load_config(tmp_path))
    transport = Transport(new_client(transport=httpx.MockTransport(handler)), sleep=lambda s: None)
    client = SystemClient(config.systems["shop"], {}, transport, Redactor())
    with transport:
        ids = [r["id"] for r in list_changed(client, SPAN)]
    assert ids == [1, 2, 3, 4, 5, 6]
    assert [o for path, o in asked if path == "/own"] == own_offsets
    assert ("/fulfilled", "0") in asked


def test_recent_ids_are_bounded() -> None:
    """A listing's ids are remembered a window at a time (memory flat in the listing's
    length): an id seen among the last `size` is known, an older one forgotten."""
    from connector.fetch import Recent

    recent = Recent(size=3)
    for ident in ("a", "b", "c", "a", "d"):  # "a" again is no new entry
        recent.add(ident)
    assert ["a" in recent, "b" in recent, "c" in recent, "d" in recent] == [False, True, True, True]
    assert len(recent._ids) == 3
