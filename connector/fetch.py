"""Stage 3, fetch: the source system's orders changed in a time window, page by page.

Pagination is declared by the mapping: a next-page token (SP-API `pagination.nextToken` →
`paginationToken`, every other parameter repeated unchanged), a next-page query string
(Walmart's `list.meta.nextCursor`, which replaces the whole query), an offset (the records
read so far, up to a `total`), or page numbers
(Magento's `searchCriteria[currentPage]`, which answers the last page again past the end: a
page with no new ids ends the listing).

A listing is streamed: memory holds a page, not the listing. An order listed twice (the
last page answered again past the end, a page shifted by a change) is skipped while its id
is among the last `RECENT_IDS` listed; an order listed again further on than that (none of
the shipped mappings' listings does: a changed order leaves the window) would be yielded
again, and evaluated again (harmless: its outcome is recorded).
"""

from __future__ import annotations

import dataclasses
import json
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

from connector.transport.client import SystemClient
from connector.errors import ConnectorError, HTTPError
from connector import templates, timestamps
from connector.model import Pagination, Request
from connector.normalise import order_id, search

MAX_PAGES = 10_000
RECENT_IDS = 10_000  # a hundred pages of 100


class Recent:
    """The last `size` ids added, as a set: memory that does not grow with a listing."""

    def __init__(self, size: int = RECENT_IDS) -> None:
        self._ids: set[str] = set()
        self._order: deque[str] = deque()
        self._size = size

    def __contains__(self, ident: object) -> bool:
        return ident in self._ids

    def add(self, ident: str) -> None:
        if ident in self._ids:
            return
        self._ids.add(ident)
        self._order.append(ident)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> datetime:
    try:
        return timestamps.parse_iso(value)
    except (AttributeError, ValueError) as exc:
        raise ConnectorError(f"not an ISO-8601 date-time: {value!r}") from exc


@dataclass(frozen=True)
class Window:
    """The changed-orders window: `after` (inclusive) to `before` (the effective upper bound)."""

    after: str
    before: str


def window(cursor: str | None, since: str | None, now: datetime, lookback_hours: float,
           min_age_seconds: int) -> Window:
    """Where this run starts and ends. An explicit --since wins, then the stored cursor.

    The upper bound is at least `min_age_seconds` in the past (Amazon serves no change
    younger than two minutes); the next run starts where this one's bound ended.
    """
    before = now - timedelta(seconds=min_age_seconds)
    if since:
        after = parse_iso(since)
    elif cursor:
        after = parse_iso(cursor)
    else:
        after = now - timedelta(hours=lookback_hours)
    after = min(after, before)
    return Window(iso(after), iso(before))


def literal_query(values: Mapping[str, str]) -> dict[str, str]:
    """Query templates that render exactly `values`, read from the context's `literal`.

    A next-page token or query string is the remote side's data: put into a request as it
    is, it would be rendered as a template (and could read the settings); so the request
    names it and the context carries it, as for any untrusted value."""
    return {name: "{{ literal[%s] }}" % json.dumps(name) for name in values}


def list_changed(client: SystemClient, span: Window, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Raw order records changed in the window, across pages (at most `limit`).

    With `fan_out`, the listing runs once per value of that query parameter's list; the
    mapping's further listings (`more_listings`) follow, an order in two yielded once.
    """
    if client.system.listing is None:
        raise ConnectorError(f"{client.system.name}: the mapping has no orders.list")
    context: dict[str, Any] = {"window": {"after": span.after, "before": span.before}}
    seen = Recent()
    count = 0
    for listing in (client.system.listing, *client.system.more_listings):
        pagination = listing.pagination
        if pagination.next_token and not pagination.token_param:
            raise ConnectorError(f"{client.system.name}: orders.list.pagination has next_token "
                                 "but no token_param (the query parameter that sends it back)")
        variants: list[Any] = [None]
        if listing.fan_out:
            values = templates.render_value(listing.request.query.get(listing.fan_out, ""),
                                            {**context, "settings": client.settings})
            variants = list(values) if isinstance(values, (list, tuple)) else [values]
        for variant in variants:
            request = listing.request
            if listing.fan_out:
                query = {**request.query, listing.fan_out: "{{ fan_out }}"}
                request = dataclasses.replace(request, query=query)
            for record in _pages(client, pagination, request, {**context, "fan_out": variant},
                                 seen):
                yield record
                count += 1
                if limit is not None and count >= limit:
                    return


def _pages(client: SystemClient, pagination: Pagination, first: Request,
           context: Mapping[str, Any], seen: Recent) -> Iterator[dict[str, Any]]:
    """The records of one listing, page after page (ids already in `seen` skipped)."""
    token: Any = None
    cursor: Any = None
    page = 1
    offset = 0
    for _ in range(MAX_PAGES):
        query = dict(first.query)
        literal: dict[str, str] = {}
        if cursor is not None:  # the next-page query string replaces the whole query
            literal = dict(parse_qsl(str(cursor).lstrip("?"), keep_blank_values=True))
            query = {}
        if token is not None and pagination.token_param:
            literal[pagination.token_param] = str(token)
        query.update(literal_query(literal))
        if pagination.page_param:
            query[pagination.page_param] = str(page)
        if pagination.offset_param:
            query[pagination.offset_param] = str(offset)
        request = dataclasses.replace(first, query=query)
        response = client.send(request, {**context, "literal": literal}, idempotent=True)
        if response.status != 200:
            raise HTTPError(f"listing orders: {client.describe_error(response)}")
        body = response.json()
        if body is None:
            raise HTTPError(f"listing orders: {client.system.name} answered a non-JSON body "
                            f"({client.describe_error(response)})")
        records = search(pagination.items, body) or []
        fresh = 0
        for record in records:
            if not isinstance(record, dict):
                continue
            ident = str(order_id(client.system, record))
            if ident in seen:
                continue
            seen.add(ident)
            fresh += 1
            yield record
        if pagination.next_token:
            previous, token = token, search(pagination.next_token, body)
            if not token:
                return
            if token == previous:  # the same page again, forever
                raise HTTPError(f"listing orders: {client.system.name} answered the same "
                                "next-page token twice")
        elif pagination.next_query:
            previous, cursor = cursor, search(pagination.next_query, body)
            if not cursor:
                return
            if cursor == previous:
                raise HTTPError(f"listing orders: {client.system.name} answered the same "
                                "next-page query twice")
        elif pagination.offset_param:
            offset += len(records)
            total = search(pagination.total, body) if pagination.total else None
            if not records or fresh == 0 or (isinstance(total, int) and offset >= total):
                return
        elif pagination.page_param:
            total = search(pagination.total_pages, body) if pagination.total_pages else None
            if not records or fresh == 0 or (isinstance(total, int) and page >= total):
                return
            page += 1
        else:
            return
    raise HTTPError(f"listing orders: more than {MAX_PAGES} pages; narrow the window with --since")


def get_order(client: SystemClient, order_id: str) -> dict[str, Any] | None:
    """One raw order by id (watched orders are re-read this way), or None when gone."""
    spec = client.system.get_order
    if spec is None:
        raise ConnectorError(f"{client.system.name}: the mapping has no orders.get")
    response = client.send(spec.request, {"id": order_id}, idempotent=True)
    if response.status in spec.not_found_status:
        return None
    if response.status != 200 or response.malformed:  # garbled is not "gone"
        raise HTTPError(f"reading order {order_id}: {client.describe_error(response)}")
    found = search(spec.found, response.json())
    return found if isinstance(found, dict) else None
