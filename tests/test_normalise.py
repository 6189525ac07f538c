from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connector.errors import ConnectorError
from connector.normalise import canonical, looks_canonical, normalise, search
from connector.project import load_config, require

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def amazon():  # type: ignore[no-untyped-def]
    return require(load_config(FIXTURES / "valid")).systems["amazon"]


def test_amazon_record_normalises(amazon) -> None:  # type: ignore[no-untyped-def]
    raw = json.loads((FIXTURES / "orders" / "amazon-cancelled.json").read_text())["order"]
    order = normalise(amazon, raw)
    assert order["id"] == "902-3064534-0000001"
    assert (order["status"], order["actor"], order["fulfilment"]) == ("CANCELLED", "seller", "merchant")
    assert order["items"][0]["sku"] == "SKU-1" and order["items"][0]["quantity"] == 1
    assert order["items"][0]["quantity_shipped"] is None
    assert order["attributes"] == {"cancellation_requested": False}
    assert order["system"] == "amazon" and order["raw"] == raw


@pytest.mark.parametrize(
    ("cancelled_by", "actor"), [("BUYER", "customer"), ("MERCHANT", "seller"), ("AMAZON", "amazon"), (None, None)]
)
def test_actor_map(amazon, cancelled_by, actor) -> None:  # type: ignore[no-untyped-def]
    item = {"orderItemId": "1", "quantityOrdered": 1}
    if cancelled_by:
        item["cancellation"] = {"cancellationExecution": {"cancelledBy": cancelled_by}}
    raw = {"orderId": "1", "fulfillment": {"fulfillmentStatus": "CANCELLED"}, "orderItems": [item]}
    assert normalise(amazon, raw)["actor"] == actor


def test_missing_blocks_give_nulls_not_errors(amazon) -> None:  # type: ignore[no-untyped-def]
    order = normalise(amazon, {"orderId": 5})
    assert order["id"] == "5" and order["status"] is None and order["items"] == [] and order["buyer"] == {
        "name": None, "email": None}


def test_canonical_fills_defaults() -> None:
    order = canonical({"id": 7, "status": "X", "items": [{"sku": "A"}]}, "vtex")
    assert order["id"] == "7" and order["system"] == "vtex" and order["actor"] is None
    assert order["items"][0]["quantity"] is None
    assert looks_canonical({"id": 1, "status": "X"}) and not looks_canonical({"orderId": 1})


@pytest.mark.parametrize(
    ("expression", "column"),
    [
        ("(" * 500 + "a" + ")" * 500, 64),
        ("a" + "[?b" * 500 + "]" * 500, 1 + 3 * 64),
        ("{a: " * 500 + "b" + "}" * 500, 4 * 64),
        ("a" + "[*].b" * 400, 0),  # no brackets open: the parser's own recursion
    ],
)
def test_deep_jmespath_is_a_syntax_error_not_a_recursion_error(expression: str,
                                                              column: int) -> None:
    from connector.normalise import syntax_error

    problem = syntax_error(expression)
    assert problem is not None and problem.startswith("nesting deeper than 64 levels")
    assert f"column {column}," in problem
    with pytest.raises(ConnectorError, match="nesting deeper than 64"):
        search(expression, {})


SEARCHES = [
    ("items[0].sku", {"items": [{"sku": "A"}]}),
    ("items[].quantity | sum(@)", {"items": [{"quantity": 2}, {"quantity": 3}]}),
    ("sort_by(items, &quantity)[].sku", {"items": [{"sku": "B", "quantity": 2}, {"sku": "A", "quantity": 1}]}),
    ("max_by(items, &quantity).sku", {"items": [{"sku": "B", "quantity": 2}, {"sku": "A", "quantity": 1}]}),
    ("items[?quantity > `1`].sku", {"items": [{"sku": "B", "quantity": 2}, {"sku": "A", "quantity": 1}]}),
    ("{id: id, n: length(items)}", {"id": 1, "items": [1, 2]}),
    ("status || 'none'", {}),
    ("items[*].sku[]", {"items": [{"sku": ["A", "B"]}, {"sku": ["C"]}]}),
]


@pytest.mark.parametrize(("expression", "data"), SEARCHES)
def test_search_answers_what_jmespath_answers_from_any_thread(expression: str, data: Any) -> None:
    """`search` visits with one shared interpreter instead of a new one per call: the
    answers are jmespath's own, also from threads searching at once."""
    import concurrent.futures

    import jmespath

    expected = jmespath.search(expression, data)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        found = list(pool.map(lambda _: search(expression, data), range(200)))
    assert found == [expected] * 200


def test_a_type_error_at_search_time_is_null() -> None:
    assert search("sum(items)", {"items": ["a", "b"]}) is None
