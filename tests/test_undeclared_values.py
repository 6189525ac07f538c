"""Issue 8, "nothing silently wrong": a status, actor or fulfilment outside the mapping's
declared domain (a VTEX status added since, an Amazon `cancelledBy` the map does not know)
matched no rule, so the order passed with nothing sent and nothing said. It now fails, with
the value, the field and the mapping file where to declare it, and is watched (re-read on
later runs, so that declaring the value is enough to get it handled).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from mock_systems import ENGINE, NOW, World, amazon_order, harness, runtime, vtex_order

from connector.engine import FlowRun, RunOptions, Summary
from connector.errors import UndeclaredValue
from connector.normalise import canonical, declared_check, normalise, undeclared
from connector.plan import plan_order
from connector.state.store import open_store

FLOW = "amazon-to-vtex"


def run(world: World, db: Path) -> Summary:
    with harness(world, db, now=lambda: NOW) as h:
        return FlowRun(h.runtime, h.clients, h.store,
                       RunOptions(now=lambda: NOW, sleep=lambda s: None)).run()


def seed(world: World, status: str | None, vtex_status: str, cancelled_by: str | None,
         fulfilled_by: str = "MERCHANT") -> None:
    world.amazon["902-1"] = amazon_order("902-1", status, cancelled_by=cancelled_by,
                                         fulfilled_by=fulfilled_by)
    world.vtex["AMZ-902-1-01"] = vtex_order("AMZ-902-1-01", vtex_status)


# (Amazon status, cancelledBy, fulfilledBy, VTEX status) → what the finding names.
UNDECLARED = [
    pytest.param("CANCELLED", "MERCHANT", "MERCHANT", "ready-for-shipping",
                 ("vtex order AMZ-902-1-01: status 'ready-for-shipping', read from 'status'",
                  "mappings/vtex.yaml (domains.status:"), id="target-status"),
    pytest.param("ON_HOLD", None, "MERCHANT", "handling",
                 ("amazon order 902-1: status 'ON_HOLD', read from 'fulfillment.fulfillmentStatus'",
                  "mappings/amazon.yaml (domains.status:"), id="source-status"),
    pytest.param("CANCELLED", "SYSTEM", "MERCHANT", "handling",
                 ("amazon order 902-1: actor 'SYSTEM', computed by normalise.actor and its map",
                  "mappings/amazon.yaml (domains.actor: seller, amazon, customer)"), id="actor"),
    pytest.param(None, None, "MERCHANT", "handling",
                 ("amazon order 902-1: no status, read from 'fulfillment.fulfillmentStatus', "
                  "and null is not declared in mappings/amazon.yaml",), id="no-status"),
    pytest.param("UNSHIPPED", None, "PARTNER", "handling",
                 ("fulfilment 'PARTNER', read from 'fulfillment.fulfilledBy' and its map",
                  "mappings/amazon.yaml (domains.fulfilment: merchant, marketplace)"),
                 id="fulfilment"),
]


@pytest.mark.parametrize(("status", "cancelled_by", "fulfilled_by", "vtex_status", "names"),
                         UNDECLARED)
def test_an_undeclared_value_fails_the_order_naming_it(
        tmp_path: Path, status: str | None, cancelled_by: str | None, fulfilled_by: str,
        vtex_status: str, names: tuple[str, ...]) -> None:
    world = World()
    seed(world, status, vtex_status, cancelled_by, fulfilled_by)
    summary = run(world, tmp_path / "s.db")
    assert (summary.orders, summary.failed, summary.done) == (1, 1, 0)
    error, = summary.errors
    for part in names:
        assert part in error, error
    assert "declare it there" in error
    assert world.calls("POST", "/cancel") == []
    with open_store("sqlite:///" + str(tmp_path / "s.db")) as store:
        assert [w[0] for w in store.watched(FLOW, "2026-03-02T12:00:00Z")] == ["902-1"]


def test_once_declared_the_order_is_handled(tmp_path: Path) -> None:
    """The same order with declared values goes through (the control row)."""
    world = World()
    seed(world, "CANCELLED", "payment-approved", "MERCHANT")
    summary = run(world, tmp_path / "s.db")
    assert (summary.failed, summary.done, summary.errors) == (0, 1, [])
    call, = world.calls("POST", "/cancel")
    assert json.loads(call.content) == {"reason": "Cancelled on Amazon by seller"}


@pytest.mark.parametrize(("order", "found"), [
    ({"id": "1", "status": "CANCELLED", "actor": None, "fulfilment": "merchant"}, []),
    ({"id": "1", "status": "CANCELLED", "actor": "robot", "fulfilment": None},
     ["amazon order 1: actor 'robot' is not declared in mappings/amazon.yaml"]),
])
def test_null_is_no_value_and_a_canonical_order_names_no_path(
        order: dict[str, Any], found: list[str]) -> None:
    rt = runtime(ENGINE)
    got = undeclared(rt.source, canonical(order, rt.source))
    assert [g.split(" (domains.")[0] for g in got] == found


def test_plan_refuses_what_no_rule_was_written_for() -> None:
    """`plan`, `explain` and `connector test` plan through the same call as `apply`."""
    rt = runtime(ENGINE)
    order = normalise(rt.source, amazon_order("902-1", "CANCELLED"))
    target = normalise(rt.target, vtex_order("AMZ-902-1-01", "ready-for-shipping"))
    with pytest.raises(UndeclaredValue, match="status 'ready-for-shipping'"):
        plan_order(rt, order, target, {}, "2026-03-02T12:00:00Z")


# (the order's fields, whether the actor domain is left empty) → as `undeclared` decides
DECLARED = [
    pytest.param({"status": "CANCELLED", "actor": "seller", "fulfilment": "merchant"}, False, id="all-declared"),
    pytest.param({"status": "CANCELLED", "actor": None, "fulfilment": None}, False, id="nulls"),
    pytest.param({"status": None}, False, id="no-status-canonical"),
    pytest.param({"status": None, "raw": {"id": "1"}}, False, id="no-status-raw"),
    pytest.param({"status": "ON_HOLD"}, False, id="status"),
    pytest.param({"status": "CANCELLED", "actor": "robot"}, False, id="actor"),
    pytest.param({"status": "CANCELLED", "actor": "robot"}, True, id="actor-undeclared-domain"),
    pytest.param({"status": "CANCELLED", "fulfilment": "partner"}, False, id="fulfilment"),
    pytest.param({"status": ["CANCELLED"]}, False, id="unhashable-status"),
    pytest.param({"status": "CANCELLED", "actor": {"who": "seller"}}, False, id="unhashable-actor"),
]


@pytest.mark.parametrize(("fields", "open_actor"), DECLARED)
def test_the_planning_check_agrees_with_undeclared(fields: dict[str, Any], open_actor: bool) -> None:
    """`declared_check` spares planning `undeclared` on every order: it must pass exactly the
    orders in which `undeclared` finds nothing (a raw record without a status is refused, a
    null actor is not; an empty domain checks nothing)."""
    system = runtime(ENGINE).source
    if open_actor:
        system = dataclasses.replace(system, domains=dataclasses.replace(system.domains, actor=()))
    order = {**canonical({"id": "1"}, system), **fields}
    control = canonical({"id": "2", "status": "CANCELLED"}, system)
    assert declared_check(system, system)(order, None) is (not undeclared(system, order))
    assert declared_check(system, system)(order, control) is (not undeclared(system, order))
    assert declared_check(system, system)(control, order) is (not undeclared(system, order))
