"""Indexes that make the simulated store's searchCriteria searches cheap at 100,000 orders.

A benchmark looks one Commerce order up by `ext_order_id` per Amazon order, and lists every
order page by page sorted by `updated_at`: scanning (and, for the listing, parsing and sorting)
the whole table per request made both quadratic. Neither index changes an answer:

- `TableIndex` maps an identity field's value (ext_order_id, increment_id, a document's
  order_id) to the keys of the records holding it, a superset of the `eq` matches; the full
  match still runs on those candidates, in the table's order. Identity fields are set when a
  record is created; the one handler that changes them in place (the raw order save)
  calls `reindex`. Records put into the table directly (the seed) are picked up on the next
  look-up, by the table's length.
- `ListingCache` keeps the last few filtered and sorted listings with a snapshot of what
  decides them (each record's identity and the filtered and sorted fields' values, in table
  order, hashed). A request for another page of the same listing compares a fresh snapshot
  (cheap: no parsing, no sorting) and reuses the listing only if nothing that decides it
  changed.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["ListingCache", "TableIndex"]

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_ANY = ("any",)  # date-like values: compared as times, so a candidate of every look-up


def _keys(value: Any) -> list[Hashable]:
    """The index keys under which a stored value can equal a wanted string (see
    search_criteria._comparable: numbers as numbers, dates as times, else lowercase)."""
    if value is None:
        return []  # NULL matches nothing
    if isinstance(value, str):
        return [_ANY] if _DATE.match(value) else [("s", value.lower())]
    keys: list[Hashable] = [("s", str(value).lower())]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        keys.append(("n", float(value)))
    return keys


def _wanted(text: str) -> list[Hashable]:
    keys: list[Hashable] = [("s", text.lower()), _ANY]
    try:
        keys.append(("n", float(text)))
    except ValueError:
        pass
    return keys


class TableIndex:
    """Keys of a table's records by the values of some identity fields (module docstring)."""

    def __init__(self, table: dict[Any, dict[str, Any]], fields: tuple[str, ...]) -> None:
        self.table = table
        self.fields = fields
        self._by: dict[str, dict[Hashable, dict[Any, None]]] = {f: {} for f in fields}
        self._held: dict[Any, list[tuple[str, Hashable]]] = {}  # key -> its index entries
        self._position: dict[Any, int] = {}

    def _catch_up(self) -> None:
        """Index records put into the table directly (by length: tables only grow, else
        the index is rebuilt)."""
        if len(self.table) == len(self._position):
            return
        if len(self.table) < len(self._position) or any(k not in self.table
                                                         for k in self._position):
            self._by = {f: {} for f in self.fields}
            self._held, self._position = {}, {}
        for key in self.table:
            if key not in self._position:
                self.add(key)

    def add(self, key: Any) -> None:
        """Index a record just stored under `key` (without a scan of the table)."""
        if key not in self._position:
            self._position[key] = len(self._position)
        self.reindex(key)

    def reindex(self, key: Any) -> None:
        """(Re)index the record stored under `key` after its identity fields changed."""
        for field, entry in self._held.pop(key, []):
            self._by[field].get(entry, {}).pop(key, None)
        record = self.table.get(key)
        if record is None:
            return
        held = self._held[key] = []
        for field in self.fields:
            for entry in _keys(record.get(field)):
                self._by[field].setdefault(entry, {})[key] = None
                held.append((field, entry))

    def candidates(self, field: str, wanted: str) -> list[dict[str, Any]] | None:
        """Records that may have `field` eq `wanted`, in table order; None if not indexed."""
        if field not in self._by:
            return None
        self._catch_up()
        found: dict[Any, None] = {}
        for entry in _wanted(wanted):
            found.update(self._by[field].get(entry, {}))
        keys = sorted(found, key=self._position.__getitem__) if len(found) > 1 else list(found)
        return [self.table[k] for k in keys]


class ListingCache:
    """The last few listings of a table, reused while their snapshot holds (module docstring).

    The snapshot is kept as the number of records and a running hash over each one's
    identity and the deciding fields' values (memory for neither grows with the table; a
    change goes unseen only if the 64-bit hashes collide)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[tuple[int, int], list[dict[str, Any]]]] = \
            OrderedDict()

    def get(self, key: Hashable, records: list[dict[str, Any]], fields: tuple[str, ...],
            build: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """The listing for `key` over `records`, built by `build` unless a cached one holds."""
        digest = 0
        for record in records:
            digest = hash((digest, id(record), *map(record.get, fields)))
        snapshot = (len(records), digest)
        cached = self._entries.get(key)
        if cached is not None and cached[0] == snapshot:
            self._entries.move_to_end(key)
            return cached[1]
        listing = build()
        self._entries[key] = (snapshot, listing)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return listing
