"""engine: a flow run over a mock Amazon listing and a mock VTEX OMS, end to end."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from mock_systems import NOW, World, amazon_order, harness, vtex_order

from connector.engine import FlowRun, RunOptions, Summary
from connector.errors import HTTPError
from connector.state.store import StateStore, open_store

FLOW = "amazon-to-vtex"


def vtex_id(amazon_id: str) -> str:
    return f"AMZ-{amazon_id}-01"


def run(world: World, db: Path, *, now: datetime = NOW, **options: Any) -> Summary:
    with harness(world, db, now=lambda: now) as h:
        return FlowRun(
            h.runtime,
            h.clients,
            h.store,
            RunOptions(now=lambda: now, sleep=lambda s: None, **options),
        ).run()


def inspect(db: Path) -> StateStore:
    """The run's state store, opened again to look at what it recorded."""
    return open_store("sqlite:///" + str(db))


def cancels(world: World) -> list[httpx.Request]:
    return world.calls("POST", "/cancel")


def add(
    world: World,
    amazon_id: str,
    vtex_status: str | None,
    *,
    status: str = "CANCELLED",
    cancelled_by: str | None = "MERCHANT",
    updated: str = "2026-03-02T10:00:00Z",
) -> None:
    world.amazon[amazon_id] = amazon_order(
        amazon_id, status, cancelled_by=cancelled_by, updated=updated
    )
    if vtex_status is not None:
        world.vtex[vtex_id(amazon_id)] = vtex_order(vtex_id(amazon_id), vtex_status)


def test_cancels_the_vtex_order(tmp_path: Path) -> None:
    world = World()
    add(world, "902-1", "payment-approved", cancelled_by="AMAZON")
    summary = run(world, tmp_path / "s.db")
    assert (summary.orders, summary.done, summary.failed, summary.errors) == (1, 1, 0, [])
    assert world.vtex[vtex_id("902-1")]["status"] == "canceled"
    (call,) = cancels(world)
    assert json.loads(call.content) == {"reason": "Cancelled on Amazon by amazon"}
    # the listing, one look-up per evaluation round, the cancel: nothing else
    assert [(r.method, r.url.path) for r in world.requests if r.url.host != "api.amazon.com"] == [
        ("GET", "/orders/2026-01-01/orders"),
        ("GET", "/api/oms/pvt/orders/AMZ-902-1-01"),
        ("POST", "/api/oms/pvt/orders/AMZ-902-1-01/cancel"),
        ("GET", "/api/oms/pvt/orders/AMZ-902-1-01"),
    ]


def test_two_step_vtex_cancel_finishes_in_one_run(tmp_path: Path) -> None:
    world = World()
    add(world, "902-1", "handling")
    summary = run(world, tmp_path / "s.db")
    assert world.vtex[vtex_id("902-1")]["status"] == "canceled"
    assert len(cancels(world)) == 2
    assert (summary.done, summary.failed, summary.watched) == (2, 0, 0)
    with inspect(tmp_path / "s.db") as store:
        done = store.entries(FLOW, "done")
        assert [e.action for e in done] == ["vtex.cancel_order"] * 2
        assert len({e.key for e in done}) == 2  # handling and cancellation-requested: two keys


def test_second_run_sends_no_mutating_request(tmp_path: Path) -> None:
    world = World()
    add(world, "902-1", "handling")
    add(world, "902-2", "ready-for-handling", cancelled_by="BUYER")
    add(world, "902-3", "payment-approved", updated="2026-03-02T10:30:00Z")
    add(world, "902-4", "invoiced")
    add(world, "902-5", None, status="UNSHIPPED", cancelled_by=None)
    first = run(world, tmp_path / "s.db")
    assert first.done == 5 and first.failed == 0
    before = len(world.mutating())
    # the same orders come back (the listing ignores the window): nothing is sent again
    second = run(world, tmp_path / "s.db", now=NOW + timedelta(minutes=10))
    assert len(world.mutating()) == before
    assert (second.orders, second.done, second.failed, second.attention) == (5, 0, 0, [])


def test_rerun_on_an_unchanged_target_is_already_done(tmp_path: Path) -> None:
    world = World()
    add(world, "902-1", "payment-approved")
    run(world, tmp_path / "s.db")
    world.vtex[vtex_id("902-1")]["status"] = "payment-approved"  # as if the cancel were lost
    second = run(world, tmp_path / "s.db", now=NOW + timedelta(minutes=10))
    assert (second.done, second.already) == (0, 1)
    assert len(cancels(world)) == 1


def test_one_failure_does_not_stop_the_others(tmp_path: Path) -> None:
    world = World()
    for n in range(1, 6):
        add(world, f"902-{n}", "payment-approved", updated=f"2026-03-02T10:0{n}:00Z")
    world.cancel_answers[vtex_id("902-3")] = (
        400,
        {
            "error": {
                "code": "1",
                "message": "Order cannot be cancelled: status window-to-cancel expired",
                "exception": None,
            }
        },
    )
    summary = run(world, tmp_path / "s.db", concurrency=3)
    assert (summary.orders, summary.done, summary.failed, summary.watched) == (5, 4, 1, 1)
    assert summary.errors == [
        (
            "902-3: vtex.cancel_order [cancel-in-vtex]: step cancel: vtex answered 400: 1: "
            "Order cannot be cancelled: status window-to-cancel expired"
        )
    ]
    for n in (1, 2, 4, 5):
        assert world.vtex[vtex_id(f"902-{n}")]["status"] == "canceled"
    assert world.vtex[vtex_id("902-3")]["status"] == "payment-approved"
    with inspect(tmp_path / "s.db") as store:
        (watched,) = store.watched(FLOW, "2026-03-02T12:00:00Z")
        assert watched[0] == "902-3" and json.loads(watched[1]) == {"reason": "failed"}
        (failed,) = store.failed_entries(FLOW)
        assert failed.order_id == "902-3"
        assert store.get_cursor(FLOW) == "2026-03-02T11:58:00Z"

    # the next run retries it (the window has moved on: the watch list brings it back)
    world.filter_window = True
    del world.cancel_answers[vtex_id("902-3")]
    later = run(world, tmp_path / "s.db", now=NOW + timedelta(hours=1))
    assert (later.orders, later.done, later.failed) == (1, 1, 0)
    assert world.vtex[vtex_id("902-3")]["status"] == "canceled"
    assert world.calls("GET", "/orders/2026-01-01/orders/902-3")
    with inspect(tmp_path / "s.db") as store:
        assert store.watched(FLOW, "2026-03-02T13:00:00Z") == []
        assert store.failed_entries(FLOW) == []


def test_ambiguous_cancel_is_watched_and_not_resent_in_the_run(tmp_path: Path) -> None:
    world = World()
    add(world, "902-1", "handling")
    world.cancel_answers[vtex_id("902-1")] = (
        503,
        {"error": {"code": "1", "message": "busy", "exception": None}},
    )
    summary = run(world, tmp_path / "s.db", settle_attempts=0)  # the next run settles it
    assert (summary.unknown, summary.done, summary.watched) == (1, 0, 1)
    assert len(cancels(world)) == 1
    assert "may have taken effect" in summary.errors[0]
    with inspect(tmp_path / "s.db") as store:
        assert [e.status for e in store.pending_entries(FLOW)] == ["pending"]


def test_report_is_recorded_once(tmp_path: Path) -> None:
    world = World()
    add(world, "902-4", "invoiced")
    first = run(world, tmp_path / "s.db")
    assert first.attention == ["VTEX order AMZ-902-4-01 is invoiced: it needs a return invoice"]
    assert world.mutating() == []
    second = run(world, tmp_path / "s.db", now=NOW + timedelta(minutes=10))
    assert second.attention == []
    with inspect(tmp_path / "s.db") as store:
        (entry,) = store.entries(FLOW, "done")
        assert entry.action == "report" and entry.order_id == "902-4"


def test_watch_then_cancel_once_the_vtex_order_appears(tmp_path: Path) -> None:
    world = World(filter_window=True)
    add(world, "902-7", None, updated="2026-03-02T11:00:00Z")
    first = run(world, tmp_path / "s.db")
    assert (first.orders, first.done, first.watched) == (1, 0, 1)
    with inspect(tmp_path / "s.db") as store:
        (watched,) = store.watched(FLOW, "2026-03-02T12:00:00Z")
        assert watched[0] == "902-7"
        # the rule's `watch: {hours: 12}`: still watched after 11 hours, not after 12
        assert store.watched(FLOW, "2026-03-02T23:00:00Z") != []
    assert world.mutating() == []

    # an hour later: not in the listing window any more, VTEX has integrated it meanwhile
    world.vtex[vtex_id("902-7")] = vtex_order(vtex_id("902-7"), "handling")
    later = run(world, tmp_path / "s.db", now=NOW + timedelta(hours=1))
    listing = world.listings()[-1]
    assert listing.url.params["lastUpdatedAfter"] == "2026-03-02T11:58:00Z"
    assert [r.url.path for r in world.calls("GET", "/orders/2026-01-01/orders/")] == [
        "/orders/2026-01-01/orders/902-7"
    ]
    assert (later.orders, later.done) == (1, 2)
    assert world.vtex[vtex_id("902-7")]["status"] == "canceled"
    with inspect(tmp_path / "s.db") as store:
        assert store.watched(FLOW, "2026-03-02T13:00:00Z") == []


def test_watch_keeps_its_first_deadline_and_expires(tmp_path: Path) -> None:
    world = World(filter_window=True)
    add(world, "902-7", None, updated="2026-03-02T11:00:00Z")
    run(world, tmp_path / "s.db")
    # re-read after 6 hours, still not in VTEX: still watched, the deadline is not pushed back
    middle = run(world, tmp_path / "s.db", now=NOW + timedelta(hours=6))
    assert (middle.orders, middle.watched) == (1, 0)
    assert len(world.calls("GET", "/orders/2026-01-01/orders/902-7")) == 1
    # the rule's `watch: {hours: 12}` from the first run, not the flow's default 48
    later = run(world, tmp_path / "s.db", now=NOW + timedelta(hours=12, minutes=1))
    assert later.orders == 0
    assert len(world.calls("GET", "/orders/2026-01-01/orders/902-7")) == 1


def test_dry_run_sends_no_write_and_records_nothing(tmp_path: Path) -> None:
    world = World()
    add(world, "902-1", "handling")
    add(world, "902-4", "invoiced")
    add(world, "902-7", None)
    summary = run(world, tmp_path / "s.db", dry_run=True)
    assert world.mutating() == []
    assert sorted((order, item.name) for order, item in summary.planned) == [
        ("902-1", "vtex.cancel_order"),
        ("902-4", "report"),
        ("902-7", "watch"),
    ]
    assert (summary.done, summary.watched, summary.attention) == (0, 0, [])
    with inspect(tmp_path / "s.db") as store:
        assert store.get_cursor(FLOW) is None
        assert all(store.entries(FLOW, s) == [] for s in ("pending", "done", "failed", "parked"))
        assert store.watched(FLOW, "2026-03-02T12:00:00Z") == []


def test_dry_run_without_a_store(tmp_path: Path) -> None:
    world = World()
    add(world, "902-1", "handling")
    with harness(world, tmp_path / "s.db") as h:
        summary = FlowRun(
            h.runtime, h.clients, None, RunOptions(now=lambda: NOW, dry_run=True)
        ).run()
    assert [item.name for _, item in summary.planned] == ["vtex.cancel_order"]
    assert world.mutating() == []


@pytest.mark.parametrize(
    ("since", "cursor_after"),
    [(None, "2026-03-02T11:58:00Z"), ("2026-03-01T00:00:00Z", None)],
)
def test_cursor_is_the_windows_upper_bound(
    tmp_path: Path, since: str | None, cursor_after: str | None
) -> None:
    world = World()
    summary = run(world, tmp_path / "s.db", since=since)
    assert summary.window is not None and summary.window.before == "2026-03-02T11:58:00Z"
    with inspect(tmp_path / "s.db") as store:
        assert store.get_cursor(FLOW) == cursor_after  # an explicit --since leaves the cursor alone
    if since is None:
        run(world, tmp_path / "s.db", now=NOW + timedelta(minutes=30))
        listing = world.listings()[-1]
        assert listing.url.params["lastUpdatedAfter"] == "2026-03-02T11:58:00Z"
        assert listing.url.params["lastUpdatedBefore"] == "2026-03-02T12:28:00Z"
        with inspect(tmp_path / "s.db") as store:
            assert store.get_cursor(FLOW) == "2026-03-02T12:28:00Z"


def test_listing_failure_leaves_the_cursor(tmp_path: Path) -> None:
    world = World()
    with harness(world, tmp_path / "s.db") as h:
        h.store.set_cursor(FLOW, "2026-03-02T08:00:00Z")
    refusal = httpx.Response(
        400, json={"errors": [{"code": "InvalidInput", "message": "Invalid Input"}]}
    )
    world.intercept = lambda request: (
        refusal if request.url.path == "/orders/2026-01-01/orders" else None
    )
    with pytest.raises(HTTPError, match="InvalidInput"):
        run(world, tmp_path / "s.db")
    with inspect(tmp_path / "s.db") as store:
        assert store.get_cursor(FLOW) == "2026-03-02T08:00:00Z"


def test_lookup_error_is_reported_and_the_order_watched(tmp_path: Path) -> None:
    world = World()
    add(world, "902-1", "handling")
    add(world, "902-2", "payment-approved")
    outage = httpx.Response(500, text="<html><title>Internal Server Error</title></html>")
    world.intercept = lambda request: outage if "AMZ-902-1-01" in request.url.path else None
    summary = run(world, tmp_path / "s.db")
    assert summary.done == 1
    assert len(summary.errors) == 1 and summary.errors[0].startswith("902-1: ")
    assert "gave up after 5 attempts" in summary.errors[0]
    with inspect(tmp_path / "s.db") as store:
        assert [w[0] for w in store.watched(FLOW, "2026-03-02T12:00:00Z")] == ["902-1"]


def test_limit_cut_short_keeps_the_cursor(tmp_path: Path) -> None:
    world = World(filter_window=True)
    for n in range(1, 6):
        add(world, f"902-{n}", "payment-approved", updated=f"2026-03-02T10:0{n}:00Z")
    summary = run(world, tmp_path / "s.db", limit=3)
    assert (summary.orders, summary.done) == (3, 3)
    with inspect(tmp_path / "s.db") as store:
        assert store.get_cursor(FLOW) is None  # orders 4 and 5 were never looked at
    rest = run(world, tmp_path / "s.db", now=NOW + timedelta(minutes=5), limit=10)
    assert (rest.orders, rest.done, rest.already) == (5, 2, 0)
    assert all(o["status"] == "canceled" for o in world.vtex.values())
    with inspect(tmp_path / "s.db") as store:
        assert store.get_cursor(FLOW) == "2026-03-02T12:03:00Z"


def test_the_listing_is_evaluated_as_it_streams_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Orders are evaluated a chunk at a time while the pages come in: memory holds a chunk,
    not the listing (bench_sim: 36 MB at 10,000 orders grew to 293 MB at 100,000)."""
    import connector.engine as engine

    world = World()
    for i in range(12):
        add(world, f"902-{i:07d}-0000001", "handling")
    listed = engine.list_changed
    looked_up_when: list[int] = []

    def watched_listing(client: Any, span: Any, limit: Any = None) -> Any:
        for n, raw in enumerate(listed(client, span, limit)):
            looked_up_when.append(len(world.calls("GET", "/api/oms/pvt/orders/")))
            yield raw
            if n == 3:
                yield raw  # listed twice (it changed while the pages were read): evaluated once

    monkeypatch.setattr(engine, "CHUNK", 4)
    monkeypatch.setattr(engine, "list_changed", watched_listing)
    summary = run(world, tmp_path / "s.db")
    assert summary.orders == 12 and summary.done == 24 and len(cancels(world)) == 24  # two each (handling)
    assert looked_up_when[:4] == [0, 0, 0, 0]
    per_order = len(world.calls("GET", "/api/oms/pvt/orders/")) // 12  # look-up and re-reads
    # the first chunk was evaluated before the 5th order was read, the second before the 9th
    assert looked_up_when[4] == 4 * per_order
    assert looked_up_when[-1] == 8 * per_order


def test_each_listed_order_is_normalised_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A source order is normalised once per run, even when listed twice (the listing used
    to be normalised whole to find the ids, then each order again to evaluate it)."""
    import connector.engine as engine

    world = World()
    for i in range(5):
        add(world, f"902-{i:07d}-0000001", "handling")
    listed, real = engine.list_changed, engine.normalise
    normalised: list[str] = []

    def twice(client: Any, span: Any, limit: Any = None) -> Any:
        for raw in listed(client, span, limit):
            yield raw
            yield raw

    def counted(system: Any, raw: Any) -> Any:
        order = real(system, raw)
        normalised.append(order["id"])
        return order

    monkeypatch.setattr(engine, "list_changed", twice)
    monkeypatch.setattr(engine, "normalise", counted)
    summary = run(world, tmp_path / "s.db")
    assert summary.orders == 5
    assert sorted(normalised) == sorted(set(normalised)) and len(normalised) == 5


def test_a_pending_entry_no_plan_produces_is_settled_when_its_order_is_read(tmp_path: Path) -> None:
    """A cancel's answer was lost, then the order changed (a person cancelled it in VTEX):
    no plan produces that key again. The next run that reads the order settles the entry by
    that read instead of leaving it pending for ever."""
    world = World()
    add(world, "904-1", "handling")
    world.cancel_answers[vtex_id("904-1")] = (
        503, {"error": {"code": "1", "message": "busy", "exception": None}})
    assert run(world, tmp_path / "s.db", settle_attempts=0).unknown == 1
    world.vtex[vtex_id("904-1")] = vtex_order(vtex_id("904-1"), "canceled")
    add(world, "904-1", None, updated="2026-03-02T11:00:00Z")  # a new version: new keys
    summary = run(world, tmp_path / "s.db", now=NOW + timedelta(minutes=10), settle_attempts=0)
    assert (summary.unknown, summary.failed) == (0, 0)
    assert len(cancels(world)) == 1  # not sent again
    with inspect(tmp_path / "s.db") as store:
        assert store.pending_entries(FLOW) == []
        (entry,) = store.order_entries("904-1")
        assert entry.status == "settled" and "no longer calls for it" in (entry.error or "")
