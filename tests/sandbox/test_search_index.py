"""search_index: an indexed look-up and a cached listing answer as the full scan does."""

from __future__ import annotations

from typing import Any

import pytest

from connector.sandbox.search_criteria import SearchCriteria
from connector.sandbox.search_index import ListingCache, TableIndex


def _table() -> dict[int, dict[str, Any]]:
    values: list[Any] = ["A-1", "a-1", "B-2", 7, 7.0, "7", None, True, "2026-12-01 10:00:00",
                         "2026-12-01T10:00:00Z", "x"]
    return {100 - n: {"ext": value, "at": f"2026-12-0{1 + n % 3} 0{n % 10}:00:00", "n": n}
            for n, value in enumerate(values)}


def _eq(value: str, *extra: list[dict[str, str]], size: int | None = None) -> SearchCriteria:
    return SearchCriteria([[{"field": "ext", "value": value, "condition_type": "eq"}], *extra],
                          [], size, None)


@pytest.mark.parametrize("wanted", ["a-1", "A-1", "7", "7.0", "true", "1", "x", "nothing",
                                    "2026-12-01 10:00:00", "2026-12-01T10:00:00+00:00"])
def test_indexed_eq_lookup_answers_as_the_scan(wanted: str) -> None:
    table = _table()
    index = TableIndex(table, ("ext",))
    criteria = _eq(wanted)
    assert criteria.apply(table.values(), index) == criteria.apply(table.values())


def test_index_follows_added_and_reindexed_records() -> None:
    table = _table()
    index = TableIndex(table, ("ext",))
    assert _eq("new").apply(table.values(), index)[1] == 0
    table[1] = {"ext": "new"}  # put in directly, as the seed does: found by length
    table[2] = {"ext": "new"}
    index.add(2)
    assert [r["ext"] for r in _eq("NEW").apply(table.values(), index)[0]] == ["new", "new"]
    table[2]["ext"] = "renamed"
    index.reindex(2)
    criteria = _eq("renamed")
    assert criteria.apply(table.values(), index) == criteria.apply(table.values())
    assert criteria.apply(table.values(), index)[1] == 1


def test_cached_listing_pages_follow_changes() -> None:
    table = _table()
    cache = ListingCache()
    criteria = SearchCriteria([[{"field": "at", "value": "2026-12-02", "condition_type": "gteq"}]],
                              [{"field": "at", "direction": "ASC"}], 2, 1)
    first = criteria.apply(table.values(), cache=cache)
    assert first == criteria.apply(table.values())
    table[100]["at"] = "2026-12-09 00:00:00"  # a write between pages moves an order
    table[5] = {"ext": "late", "at": "2026-12-02 00:00:00"}
    for page in (1, 2, 3, 4):
        criteria.current_page = page
        assert criteria.apply(table.values(), cache=cache) == criteria.apply(table.values())
