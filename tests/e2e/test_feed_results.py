"""A DONE feed is not a done cancellation: the processing report decides (issue 8).

On the sandbox, adobe-commerce-to-amazon cancels Amazon order 113-0000003-0000002 (the
Commerce order was cancelled, Amazon's is UNSHIPPED) through the order-acknowledgement feed.
Amazon's processing report can refuse that message; the action then fails with Amazon's own
words, is retried by a later run like any failure, and never counts as done.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.runner import run_flows
from connector.engine import Summary
from connector.project import Config
from connector.sandbox import Sandbox
from connector.sandbox.server import Request
from connector.state.store import open_store

REPO = Path(__file__).resolve().parents[2]
FLOW = "adobe-commerce-to-amazon"
ORDER = "113-0000003-0000002"
REFUSAL = "The order is locked by another process (sandbox fault)"


def apply(config: Config, sandbox: Sandbox, db: Path) -> Summary:
    summaries, _ = run_flows(config, [FLOW], f"sqlite:///{db}", sandbox.settings(), {},
                             poll_scale=0.0, now=sandbox.clock.now)
    return summaries[0]


def status(sandbox: Sandbox) -> str:
    return str(sandbox.amazon.orders[ORDER]["fulfillment"]["fulfillmentStatus"])


def cancel_entries(db: Path) -> list[tuple[str, str | None]]:
    with open_store(f"sqlite:///{db}") as store:
        return [(e.status, e.error) for status in ("done", "failed", "pending")
                for e in store.entries(FLOW, status)  # type: ignore[arg-type]
                if e.action == "amazon.cancel_order"]


@pytest.mark.parametrize("compressed", [True, False])
def test_a_refused_message_fails_the_action_with_amazons_words(
        config: Config, sandbox: Sandbox, tmp_path: Path, compressed: bool) -> None:
    sandbox.amazon.feeds_api.compress_reports = compressed
    sandbox.amazon.feeds_api.reject_next(ORDER, REFUSAL)
    db = tmp_path / "state.db"
    first = apply(config, sandbox, db)
    feeds = list(sandbox.amazon.feeds.values())
    assert [f["processingStatus"] for f in feeds] == ["DONE"]  # DONE, and yet refused
    assert status(sandbox) == "UNSHIPPED"
    assert first.failed == 1
    assert any("amazon.cancel_order" in e and REFUSAL in e for e in first.errors), first.errors
    [(state, error)] = cancel_entries(db)
    assert state == "failed" and REFUSAL in str(error)
    # Retried like any failure once its backoff has passed: this time Amazon accepts.
    sandbox.advance(3600)
    second = apply(config, sandbox, db)
    assert status(sandbox) == "CANCELLED"
    assert not second.failed and not second.errors
    assert [s for s, _ in cancel_entries(db)] == ["done"]


def test_an_order_shipped_before_the_feed_ran_is_not_cancelled(
        config: Config, sandbox: Sandbox, tmp_path: Path) -> None:
    """The order ships after createFeed, before Amazon processes the feed: the report
    refuses the cancellation; the ledger keeps Amazon's reason, and the order, re-read, is
    evaluated again from its shipped state instead of being counted cancelled."""
    def ship(request: Request) -> None:
        sandbox.amazon.set_status(ORDER, "SHIPPED")

    sandbox.faults.on_next("amazon", "POST", r"^/feeds/2021-06-30/feeds$", ship, after=True)
    db = tmp_path / "state.db"
    summary = apply(config, sandbox, db)
    assert status(sandbox) == "SHIPPED"
    assert sandbox.amazon.acknowledgements.get(ORDER) is None
    [(state, error)] = cancel_entries(db)
    assert state == "failed"
    assert f"Order {ORDER} is SHIPPED" in str(error)
    assert not any("cancel_order" in e for e in summary.errors)  # stale, not a failure
