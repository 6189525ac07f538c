"""Magento `searchCriteria` query parameters: parsing, filtering, sorting and paging.

Syntax from the web API docs (performing-searches.md): filters inside one filter group are
ORed, groups are ANDed; both spellings (`filter_groups`/`filterGroups`, `condition_type`/
`conditionType`, `page_size`/`pageSize`, …) are accepted as Magento does. Comparisons follow
MySQL's defaults: case-insensitive strings, numbers as numbers, NULL matching nothing.
A `currentPage` past the last page returns the last page again, as Magento collections do
(magento/magento2#3787): clients must stop on `total_count`, not on an empty page.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from connector.sandbox.clock import parse_time
from connector.sandbox.errors import magento_error
from connector.sandbox.search_index import ListingCache, TableIndex
from connector.sandbox.server import HttpError, Request

__all__ = ["SearchCriteria", "parse_search_criteria"]

_SNAKE = {"filterGroups": "filter_groups", "conditionType": "condition_type",
          "sortOrders": "sort_orders", "pageSize": "page_size", "currentPage": "current_page"}
_CONDITIONS = {"eq", "neq", "like", "nlike", "in", "nin", "gt", "gteq", "lt", "lteq", "moreq",
               "from", "to", "null", "notnull", "finset"}


def _required(name: str) -> HttpError:
    return HttpError(magento_error(400, '"%fieldName" is required. Enter and try again.',
                                   {"fieldName": name}))


class SearchCriteria:
    """A parsed searchCriteria: filter groups, sort orders, page size and current page."""

    def __init__(self, groups: list[list[dict[str, str]]], sorts: list[dict[str, str]],
                 page_size: int | None, current_page: int | None) -> None:
        self.groups = groups
        self.sorts = sorts
        self.page_size = page_size
        self.current_page = current_page

    def echo(self) -> dict[str, Any]:
        """The `search_criteria` object of a search result (snake_case, as Magento answers)."""
        echo: dict[str, Any] = {"filter_groups": [{"filters": group} for group in self.groups]}
        if self.sorts:
            echo["sort_orders"] = self.sorts
        if self.page_size is not None:
            echo["page_size"] = self.page_size
        if self.current_page is not None:
            echo["current_page"] = self.current_page
        return echo

    def apply(self, records: Iterable[dict[str, Any]], index: TableIndex | None = None,
              cache: ListingCache | None = None) -> tuple[list[dict[str, Any]], int]:
        """(the requested page of matching records, total matching). `index` narrows an
        `eq` look-up on an identity field to its candidates; `cache` keeps a listing for
        its next pages (search_index: neither changes the answer)."""
        narrowed = None
        for group in self.groups:
            if index is not None and len(group) == 1 and group[0]["condition_type"] == "eq":
                narrowed = index.candidates(group[0]["field"], group[0]["value"])
                if narrowed is not None:
                    break
        candidates = list(records) if narrowed is None else narrowed
        if cache is None or narrowed is not None:
            found = self._filtered(candidates)
        else:
            fields = tuple(sorted({f["field"] for group in self.groups for f in group}
                                  | {s["field"] for s in self.sorts}))
            key = (repr(self.groups), repr(self.sorts))
            found = cache.get(key, candidates, fields, lambda: self._filtered(candidates))
        total = len(found)
        if self.page_size:
            last = max(1, math.ceil(total / self.page_size))
            page = min(max(self.current_page or 1, 1), last)
            found = found[(page - 1) * self.page_size: page * self.page_size]
        return found, total

    def _filtered(self, candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The matching records, sorted (a new list)."""
        for group in self.groups:
            # A look-up by one id (ext_order_id eq …) over thousands of orders: a cheap
            # pass drops the plain strings that differ before the full match (soak runs).
            if len(group) == 1 and group[0]["condition_type"] == "eq":
                field, low = group[0]["field"], group[0]["value"].lower()
                candidates = [r for r in candidates
                              if not isinstance(v := r.get(field), str) or _DATE.match(v)
                              or v.lower() == low]
        found = [r for r in candidates
                 if all(any(_matches(r, f) for f in group) for group in self.groups if group)]
        for sort in reversed(self.sorts):
            field = sort["field"]
            found.sort(key=lambda r: _sort_key(r.get(field)),
                       reverse=str(sort.get("direction", "ASC")).upper() == "DESC")
        return found

    def search(self, records: Iterable[dict[str, Any]], index: TableIndex | None = None,
               cache: ListingCache | None = None) -> dict[str, Any]:
        """A `{items, search_criteria, total_count}` search result (`apply`)."""
        items, total = self.apply(records, index, cache)
        return {"items": items, "search_criteria": self.echo(), "total_count": total}


def parse_search_criteria(request: Request) -> SearchCriteria:
    """Read `searchCriteria[...]` query parameters; 400 when there are none at all."""
    tree: dict[str, Any] = {}
    seen = False
    for key, values in request.query.items():
        if not key.startswith("searchCriteria"):
            continue
        seen = True
        parts = [_SNAKE.get(p, p) for p in re.findall(r"\[([^\]]*)\]", key)]
        if not parts:
            continue
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = values[-1]
    if not seen:
        raise _required("searchCriteria")
    groups: list[list[dict[str, str]]] = []
    for _, group in sorted(_indexed(tree.get("filter_groups"))):
        filters = []
        for _, raw in sorted(_indexed(group.get("filters") if isinstance(group, dict) else None)):
            if not isinstance(raw, dict) or "field" not in raw:
                raise _required("field")
            condition = str(raw.get("condition_type") or "eq").lower()
            if condition not in _CONDITIONS:
                raise HttpError(magento_error(400, 'Invalid condition type "%1".', [condition]))
            filters.append({"field": str(raw["field"]), "value": str(raw.get("value", "")),
                            "condition_type": condition})
        groups.append(filters)
    sorts = [{"field": str(raw.get("field")), "direction": str(raw.get("direction") or "ASC")}
             for _, raw in sorted(_indexed(tree.get("sort_orders"))) if isinstance(raw, dict)]
    return SearchCriteria(groups, sorts, _int(tree.get("page_size")),
                          _int(tree.get("current_page")))


def _indexed(node: Any) -> list[tuple[int, Any]]:
    if not isinstance(node, dict):
        return []
    return [(int(k), v) for k, v in node.items() if str(k).isdigit()]


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise HttpError(magento_error(400, 'The "%1" value\'s type is invalid. The "%2" type '
                                      'was expected. Verify and try again.',
                                      [str(value), "int"])) from None


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _comparable(actual: Any, wanted: str) -> tuple[Any, Any] | None:
    """Both sides as numbers, times or lowercase strings; None when actual is NULL."""
    if actual is None:
        return None
    if isinstance(actual, (int, float)) and not isinstance(actual, bool):
        try:
            return float(actual), float(wanted)
        except ValueError:
            return str(actual).lower(), wanted.lower()
    text = str(actual)
    if _DATE.match(text):
        left, right = parse_time(text), parse_time(wanted)
        if left is not None and right is not None:
            return left, right
    return text.lower(), wanted.lower()


def _matches(record: dict[str, Any], condition: dict[str, str]) -> bool:
    actual = record.get(condition["field"])
    kind, wanted = condition["condition_type"], condition["value"]
    if kind == "null":
        return actual is None
    if kind == "notnull":
        return actual is not None
    if kind in ("in", "nin"):
        options = [v.strip() for v in wanted.split(",")]
        inside = any(_equal(actual, v) for v in options)
        return inside if kind == "in" else not inside
    if kind in ("like", "nlike"):
        pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c)
                          for c in wanted)
        flags = re.IGNORECASE | re.DOTALL
        hit = actual is not None and re.fullmatch(pattern, str(actual), flags) is not None
        return hit if kind == "like" else not hit
    if kind == "finset":
        return actual is not None and wanted in str(actual).split(",")
    if kind == "neq":
        return actual is not None and not _equal(actual, wanted)
    if kind == "eq":
        return _equal(actual, wanted)
    pair = _comparable(actual, wanted)
    if pair is None:
        return False
    left, right = pair
    try:
        if kind == "gt":
            return bool(left > right)
        if kind in ("gteq", "moreq", "from"):
            return bool(left >= right)
        if kind == "lt":
            return bool(left < right)
        return bool(left <= right)  # lteq, to
    except TypeError:
        return False


def _equal(actual: Any, wanted: str) -> bool:
    pair = _comparable(actual, wanted)
    return pair is not None and pair[0] == pair[1]


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, float(value))
    parsed = parse_time(str(value)) if re.match(r"^\d{4}-\d{2}-\d{2}", str(value)) else None
    if isinstance(parsed, datetime):
        return (2, parsed.timestamp())
    return (3, str(value).lower())
