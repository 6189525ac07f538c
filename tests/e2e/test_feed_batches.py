"""Batched feed actions and polls that do not hold the run (issue 9).

adobe-commerce-to-amazon cancels Amazon orders whose Commerce order was cancelled, through
the order-acknowledgement feed. The cancellations of one run go out as one feed per
marketplace, one message per order; each order's outcome is its message's result in the
processing report; a feed not yet processed waits in the state store, not in the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.engine import Summary
from connector.project import Config
from connector.runner import run_flows
from connector.sandbox import Sandbox
from connector.state.store import open_store

FLOW = "adobe-commerce-to-amazon"
ORDER = "113-0000003-0000002"  # the scenario order this flow cancels on Amazon


def apply(config: Config, sandbox: Sandbox, db: Path, poll_scale: float = 0.0) -> Summary:
    summaries, _ = run_flows(config, [FLOW], f"sqlite:///{db}", sandbox.settings(), {},
                             poll_scale=poll_scale, now=sandbox.clock.now)
    return summaries[0]


def cancelled(sandbox: Sandbox) -> list[str]:
    """The orders Amazon cancelled through a feed message, each as often as it did."""
    return sorted(order for order, codes in sandbox.amazon.acknowledgements.items()
                  for code in codes if code == "Failure")


def requests(sandbox: Sandbox, method: str, pattern: str) -> int:
    import re
    return sum(1 for r in sandbox.requests if r.method == method and re.search(pattern, r.path))


@pytest.fixture
def generated() -> Iterator[Sandbox]:
    with Sandbox(orders=60, seed=1) as box:
        yield box


def test_one_run_sends_one_feed_for_all_its_cancellations(config: Config, generated: Sandbox,
                                                          tmp_path: Path) -> None:
    first = apply(config, generated, tmp_path / "state.db")
    orders = cancelled(generated)
    assert len(orders) >= 2, "the generated sandbox should need several cancellations"
    assert len(set(orders)) == len(orders)  # each once
    assert [f["processingStatus"] for f in generated.amazon.feeds.values()] == ["DONE"]
    assert requests(generated, "POST", r"/feeds/2021-06-30/feeds$") == 1
    assert first.done >= len(orders) and not first.failed and not first.errors
    again = apply(config, generated, tmp_path / "state.db")
    assert cancelled(generated) == orders and len(generated.amazon.feeds) == 1
    assert not again.failed and not again.errors


def test_a_refused_message_fails_only_its_own_order(config: Config, generated: Sandbox,
                                                    tmp_path: Path) -> None:
    reference = Sandbox(orders=60, seed=1)
    with reference:
        apply(config, reference, tmp_path / "reference.db")
        expected = cancelled(reference)
    victim = expected[0]
    generated.amazon.feeds_api.reject_next(victim, "Locked by another process (sandbox fault)")
    db = tmp_path / "state.db"
    summary = apply(config, generated, db)
    assert cancelled(generated) == expected[1:]
    assert summary.failed == 1
    [error] = summary.errors  # listed under the Commerce order, with Amazon's words
    assert "amazon.cancel_order" in error and "Locked by another" in error
    with open_store(f"sqlite:///{db}") as store:
        failed = [e.order_id for e in store.entries(FLOW, "failed")]
        done = [e for e in store.entries(FLOW, "done") if e.action == "amazon.cancel_order"]
    assert len(failed) == 1 and len(done) == len(expected) - 1


def test_a_feed_not_yet_processed_waits_in_the_store_not_in_the_run(
        config: Config, sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.amazon.feeds_api.polls_before_done = 3
    db = tmp_path / "state.db"
    first = apply(config, sandbox, db, poll_scale=1.0)  # getFeed every 30 s (sandbox clock)
    assert requests(sandbox, "GET", r"/feeds/2021-06-30/feeds/\d+$") == 1  # polled once
    assert first.waiting == 1 and not first.failed and not first.unknown
    [waiting] = [str(item) for item in first.listed if item.kind == "waiting"]
    assert "amazon.cancel_order" in waiting and "waits for the remote side until" in waiting
    with open_store(f"sqlite:///{db}") as store:
        [entry] = [e for e in store.entries(FLOW, "pending") if e.action == "amazon.cancel_order"]
        assert store.batch_of(entry.key) is not None
    runs = 1
    while sandbox.amazon.orders[ORDER]["fulfillment"]["fulfillmentStatus"] != "CANCELLED":
        sandbox.advance(31)
        apply(config, sandbox, db, poll_scale=1.0)
        runs += 1
        assert runs < 8
    assert cancelled(sandbox) == [ORDER] and len(sandbox.amazon.feeds) == 1
    last = apply(config, sandbox, db, poll_scale=1.0)
    assert not last.waiting and not last.failed
    with open_store(f"sqlite:///{db}") as store:
        assert store.batch_of(entry.key) is None
        assert store.entry(entry.key).status == "done"  # type: ignore[union-attr]


def test_a_lost_create_feed_answer_is_recovered_not_sent_again(
        config: Config, sandbox: Sandbox, tmp_path: Path) -> None:
    """createFeed acts, and its answer is a 500: the feeds created since the batch opened
    are listed until none is in flight; then the order is read again, and Amazon has
    cancelled it: no second feed."""
    sandbox.faults.fail_next("amazon", "POST", r"^/feeds/2021-06-30/feeds$", 500, act=True)
    db = tmp_path / "state.db"
    first = apply(config, sandbox, db)
    assert first.unknown == 1
    assert requests(sandbox, "GET", r"/feeds/2021-06-30/feeds$") >= 1  # getFeeds: recover
    for _ in range(3):
        summary = apply(config, sandbox, db)
        if not (summary.failed or summary.unknown or summary.errors):
            break
    assert not (summary.failed or summary.unknown or summary.errors), summary.errors
    assert cancelled(sandbox) == [ORDER]
    assert len(sandbox.amazon.feeds) == 1 and requests(sandbox, "POST",
                                                       r"/feeds/2021-06-30/feeds$") == 1


def test_a_lost_create_feed_found_in_flight_on_a_later_page_is_not_sent_again(
        config: Config, sandbox: Sandbox, tmp_path: Path) -> None:
    """The feed whose createFeed answer was lost is still in queue, and 100 newer feeds of
    its type and marketplace (done) fill getFeeds' first page: the recover step follows
    nextToken (sent alone) and finds it on the second, so the order is not re-planned and
    cancelled by a second feed while the first is in flight (it was, reading page one only)."""
    import copy

    from connector.sandbox.clock import amazon_time

    feeds = sandbox.amazon.feeds_api
    feeds.hold = True
    sandbox.faults.fail_next("amazon", "POST", r"^/feeds/2021-06-30/feeds$", 500, act=True)
    db = tmp_path / "state.db"
    assert apply(config, sandbox, db, poll_scale=1.0).unknown == 1  # recover: in flight
    [lost] = sandbox.amazon.feeds.values()
    assert lost["processingStatus"] == "IN_QUEUE"
    for n in range(100):  # newer feeds of the same type and marketplace, all done
        sandbox.advance(0.5)
        done = copy.deepcopy(lost)
        done.update(feedId=str(60000000000 + n), processingStatus="DONE",
                    createdTime=amazon_time(sandbox.clock.now()))
        sandbox.amazon.feeds[done["feedId"]] = done
    sandbox.advance(61)  # the recover step's next check is due
    mark = len(sandbox.requests)
    second = apply(config, sandbox, db, poll_scale=1.0)
    assert second.unknown == 1, second.errors
    assert requests(sandbox, "POST", r"/feeds/2021-06-30/feeds$") == 1
    assert [r.path for r in sandbox.requests[mark:]
            if r.method == "GET" and "/feeds/" in r.path] == ["/feeds/2021-06-30/feeds"] * 2
    feeds.hold = False
    for _ in range(4):
        sandbox.advance(61)
        summary = apply(config, sandbox, db, poll_scale=1.0)
        if not (summary.failed or summary.unknown or summary.errors or summary.waiting):
            break
    assert not (summary.failed or summary.unknown or summary.errors), summary.errors
    assert cancelled(sandbox) == [ORDER]
    assert requests(sandbox, "POST", r"/feeds/2021-06-30/feeds$") == 1


def test_a_lost_create_feed_is_found_when_the_connectors_clock_is_ahead_of_amazons(
        config: Config, sandbox: Sandbox, tmp_path: Path) -> None:
    """The connector's clock runs two minutes ahead of Amazon's: the lost feed's createdTime
    is before the batch's opening as the connector stamped it. The recover step still lists
    it (its createdSince leaves a margin), sees it in flight, and sends no second feed."""
    from datetime import timedelta

    def ahead() -> Any:
        return sandbox.clock.now() + timedelta(minutes=2)

    def run() -> Summary:
        summaries, _ = run_flows(config, [FLOW], f"sqlite:///{db}", sandbox.settings(), {},
                                 poll_scale=1.0, now=ahead)
        return summaries[0]

    sandbox.amazon.feeds_api.hold = True
    sandbox.faults.fail_next("amazon", "POST", r"^/feeds/2021-06-30/feeds$", 500, act=True)
    db = tmp_path / "state.db"
    run()
    sandbox.advance(61)  # the recover step's next check is due
    run()  # the lost feed still in flight: waited for, not sent again
    assert requests(sandbox, "POST", r"/feeds/2021-06-30/feeds$") == 1
    sandbox.amazon.feeds_api.hold = False
    for _ in range(4):
        sandbox.advance(61)
        summary = run()
        if not (summary.failed or summary.unknown or summary.errors or summary.waiting):
            break
    assert not (summary.failed or summary.unknown or summary.errors), summary.errors
    assert cancelled(sandbox) == [ORDER]
    assert requests(sandbox, "POST", r"/feeds/2021-06-30/feeds$") == 1


def test_a_refused_message_sent_again_and_accepted_leaves_the_watch_list(
        config: Config, generated: Sandbox, tmp_path: Path) -> None:
    """The failed member is watched; once a later run's batch carries it through, nothing
    of it is left on the watch list (it used to stay there as `failed`, read again forever)."""
    import json

    apply(config, generated, tmp_path / "state.db")
    expected = cancelled(generated)
    with Sandbox(orders=60, seed=1) as box:
        victim = expected[0]
        box.amazon.feeds_api.reject_next(victim, "Locked by another process (sandbox fault)")
        db = tmp_path / "refused.db"
        assert apply(config, box, db).failed == 1
        box.advance(1800)  # past the retry backoff
        again = apply(config, box, db)
        assert not again.failed and not again.errors
        assert cancelled(box) == expected
        with open_store(f"sqlite:///{db}") as store:
            reasons = {json.loads(payload)["reason"] for _, payload in store.watched(FLOW, "2000-01-01T00:00:00Z")}
            assert store.entries(FLOW, "failed") == []
    assert reasons <= {"waiting for the counterpart"}, reasons
