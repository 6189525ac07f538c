"""Operating a project: `connector status`, `connector retry ID` and `apply --order ID`,
over the mock Amazon and VTEX of the engine tests, on a real SQLite state file; and
`status --sandbox` after an `apply --sandbox` of the shipped project."""

from __future__ import annotations

import io
import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from mock_systems import ENGINE, NOW, World, amazon_order, harness, vtex_order

from connector.cli import main
from connector.commands import retry, status
from connector.engine import FlowRun, RunOptions, Summary
from connector.errors import UsageError
from connector.execute import RetryAcrossRuns
from connector.state.store import open_store

REPO = Path(__file__).resolve().parent.parent
FLOW = "amazon-to-vtex"
REFUSAL = (400, {"error": {"code": "1", "message": "Order cannot be cancelled now",
                           "exception": None}})


def vtex_id(amazon_id: str) -> str:
    return f"AMZ-{amazon_id}-01"


def add(world: World, amazon_id: str, vtex_status: str, updated: str) -> None:
    world.amazon[amazon_id] = amazon_order(amazon_id, "CANCELLED", updated=updated)
    world.vtex[vtex_id(amazon_id)] = vtex_order(vtex_id(amazon_id), vtex_status)


def run(world: World, db: Path, now: datetime, **options: Any) -> Summary:
    with harness(world, db, now=lambda: now) as h:
        return FlowRun(h.runtime, h.clients, h.store,
                       RunOptions(now=lambda: now, sleep=lambda s: None, **options)).run()


def show(db: Path, now: datetime, fmt: str = "text") -> tuple[int, str]:
    out = io.StringIO()
    code = status.run(ENGINE, FLOW, fmt, out, environ={"CONNECTOR_STATE": f"sqlite:///{db}"},
                      now=now)
    return code, out.getvalue()


def retried(db: Path, *ids: str) -> str:
    out = io.StringIO()
    assert retry.run(ENGINE, list(ids), FLOW, out,
                     environ={"CONNECTOR_STATE": f"sqlite:///{db}"}) == 0
    return out.getvalue()


@pytest.fixture
def parked(tmp_path: Path) -> tuple[World, Path]:
    """902-3's cancel refused twice with one attempt allowed: parked by the second run;
    902-1 cancelled; 902-5 waits for its VTEX order (watched)."""
    world = World()
    add(world, "902-1", "payment-approved", "2026-03-02T10:01:00Z")
    add(world, "902-3", "payment-approved", "2026-03-02T10:03:00Z")
    world.amazon["902-5"] = amazon_order("902-5", "CANCELLED", updated="2026-03-02T10:05:00Z")
    world.cancel_answers[vtex_id("902-3")] = REFUSAL
    db = tmp_path / "state.db"
    once = RetryAcrossRuns(max_attempts=1, backoff_seconds=60)
    first = run(world, db, NOW, retry=once)
    assert (first.done, first.failed) == (1, 1)
    world.filter_window = True  # later runs list only what changed: the watch list brings 902-3
    second = run(world, db, NOW + timedelta(minutes=5), retry=once)
    assert second.parked == 1
    return world, db


def test_status_lists_cursor_last_run_watched_and_parked_and_exits_1(
        parked: tuple[World, Path]) -> None:
    _world, db = parked
    code, text = show(db, NOW + timedelta(minutes=6))
    assert code == 1, text
    assert "cursor: 2026-03-02T12:03:00Z (saved 2026-03-02T12:05:00Z)" in text
    assert "last run: 2026-03-02T12:05:00Z" in text and ": 2 orders: " in text
    assert "watching 2 orders:" in text
    assert "902-5: until 2026-03-03T00:00:00Z (waiting for the counterpart)" in text
    assert "parked: 1 action" in text
    assert "902-3: vtex.cancel_order [cancel-in-vtex]: failed 1 times, parked" in text
    assert "once the cause is fixed: connector retry 902-3" in text

    code, document = show(db, NOW + timedelta(minutes=6), fmt="json")
    assert code == 1
    data = json.loads(document)
    (flow,) = data["flows"]
    assert data["parked"] == 1 and [a["order"] for a in flow["parked"]] == ["902-3"]
    (partition,) = flow["partitions"]
    assert partition["last_run"]["counts"]["parked"] == 1
    assert partition["last_run"]["outcome"] == "ok"
    assert {w["order"]: w["reason"] for w in partition["watched"]} == {
        "902-3": "failed", "902-5": "waiting for the counterpart"}


def test_retry_unparks_queues_and_the_next_run_sends_it_once(
        parked: tuple[World, Path]) -> None:
    world, db = parked
    del world.cancel_answers[vtex_id("902-3")]  # the cause is fixed
    said = retried(db, "902-3")
    assert "902-3: vtex.cancel_order (amazon-to-vtex): un-parked" in said
    assert "--order 902-3" in said
    with open_store(f"sqlite:///{db}") as store:
        (entry,) = [e for e in store.order_entries("902-3") if e.action == "vtex.cancel_order"]
        assert (entry.status, entry.attempts) == ("failed", 0)
        assert [q.order_id for q in store.queued(FLOW)] == ["902-3"]
    # ten minutes later, 902-3 unchanged on Amazon: the queue brings it, no backoff applies
    later = run(world, db, NOW + timedelta(minutes=10))
    assert (later.done, later.failed, later.parked) == (1, 0, 0)
    assert world.vtex[vtex_id("902-3")]["status"] == "canceled"
    assert len([r for r in world.calls("POST", "/cancel") if "902-3" in r.url.path]) == 2  # refused, then sent
    assert show(db, NOW + timedelta(minutes=11))[0] == 0
    # nothing parked any more: a second retry is refused and says what the ledger holds
    with pytest.raises(UsageError, match=r"902-3: nothing parked \(.*cancel_order: done"):
        retried(db, "902-3")


@pytest.mark.parametrize("ids, said", [
    (["nope"], "nope: nothing parked (the ledger knows no order or idempotency key"),
    (["902-3", "902-1"], "902-1: nothing parked (vtex.cancel_order: done)"),
])
def test_retry_refuses_an_id_with_nothing_parked_and_unparks_none(
        parked: tuple[World, Path], ids: list[str], said: str) -> None:
    _world, db = parked
    with pytest.raises(UsageError) as raised:
        retried(db, *ids)
    assert str(raised.value).startswith(said)
    with open_store(f"sqlite:///{db}") as store:
        assert [e.order_id for e in store.entries(FLOW, "parked")] == ["902-3"]
        assert store.queued(FLOW) == []


def test_order_runs_one_order_now_past_the_backoff_and_leaves_the_cursor(tmp_path: Path) -> None:
    world = World()
    add(world, "902-3", "payment-approved", "2026-03-02T10:03:00Z")
    world.cancel_answers[vtex_id("902-3")] = REFUSAL
    db = tmp_path / "state.db"
    assert run(world, db, NOW).failed == 1
    del world.cancel_answers[vtex_id("902-3")]
    # one minute later a scheduled run would defer it (backoff 300 s); --order sends it now
    deferred = run(world, db, NOW + timedelta(minutes=1))
    assert (deferred.deferred, deferred.done) == (1, 0)
    listings = len(world.listings())
    summary = run(world, db, NOW + timedelta(minutes=2), orders=("902-3", "902-404"),
                  retry=RetryAcrossRuns(backoff_seconds=0.0))
    assert (summary.orders, summary.done, summary.skipped) == (1, 1, 1)
    assert [str(item) for item in summary.of("skipped")] == [
        "902-404: amazon does not know the order"]
    assert len(world.listings()) == listings  # read by id, no listing
    assert world.vtex[vtex_id("902-3")]["status"] == "canceled"
    with open_store(f"sqlite:///{db}") as store:
        assert store.get_cursor(FLOW) == "2026-03-02T11:59:00Z"  # the scheduled run's, unmoved
        assert store.watched(FLOW, (NOW + timedelta(minutes=3)).isoformat()) == []
        (last,) = store.runs(FLOW)
        assert last.started_at.startswith("2026-03-02T12:01:00")  # an --order run is not one


def test_status_of_a_project_that_never_ran(tmp_path: Path) -> None:
    code, text = show(tmp_path / "none.db", NOW)
    assert code == 0 and text.startswith("nothing has run yet")
    assert not (tmp_path / "none.db").exists()


SHIPPED_FLOWS = sorted(yaml.safe_load((REPO / "connector.yaml").read_text())["flows"])


@pytest.fixture(scope="module")
def sandbox_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped project after one `apply --sandbox` of every flow."""
    root = tmp_path_factory.mktemp("sandbox-run")
    for name in ("mappings", "rules"):
        shutil.copytree(REPO / name, root / name)
    shutil.copy(REPO / "connector.yaml", root / "connector.yaml")
    before = CliRunner().invoke(main, ["status", "--sandbox", "--project", str(root)])
    assert before.exit_code == 0 and before.output.startswith("no sandbox run yet"), before.output
    assert "`connector apply --sandbox` writes it" in before.output
    applied = CliRunner().invoke(main, ["apply", "--sandbox", "--project", str(root)],
                                 env={"CONNECTOR_STATE": None})
    assert applied.exit_code == 0, applied.output
    return root


def _status(root: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["status", "--project", str(root), *args],
                                env={"CONNECTOR_STATE": None})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("flow", SHIPPED_FLOWS)
def test_status_sandbox_shows_each_flows_last_sandbox_run(sandbox_run: Path, flow: str) -> None:
    text = _status(sandbox_run, "--sandbox")
    assert text.startswith("the last sandbox run (apply --sandbox), from ")
    assert text.splitlines()[0].endswith(".connector/sandbox.db")
    block = text.split(f"\n{flow} (", 1)[1].split("\n", 1)[1]
    shown = block.split("\n  no action failed, parked or pending", 1)[0]
    assert "  last run: " in shown and ", ok: " in shown, text

    (only,) = json.loads(_status(sandbox_run, "--sandbox", "--flow", flow, "--format", "json"))[
        "flows"]
    assert only["flow"] == flow and only["failed"] == only["parked"] == only["pending"] == []
    (partition,) = only["partitions"]
    assert partition["cursor"] is not None
    assert partition["last_run"]["outcome"] == "ok"
    assert partition["last_run"]["counts"]["orders"] > 0
    assert partition["last_run"]["counts"]["done"] > 0


@pytest.mark.parametrize(("args", "said"), [
    ([], "nothing has run yet: the state store does not exist ("),
    (["--format", "json"], '"flows": []'),
])
def test_status_without_sandbox_does_not_read_the_sandbox_run(
        sandbox_run: Path, args: list[str], said: str) -> None:
    shown = _status(sandbox_run, *args)
    assert said in shown and "sandbox.db" not in shown
    assert not (sandbox_run / ".connector" / "state.db").exists()


@pytest.mark.parametrize(("watched", "cursor_after", "settles"), [
    (True, True, "watched"),
    (False, False, "listed"),
    (False, True, "needs a person"),
])
def test_status_says_who_settles_a_pending_entry(tmp_path: Path, watched: bool,
                                                 cursor_after: bool, settles: str) -> None:
    """A pending entry of a run that ended is settled by reading its order: by the next run
    when it watches or lists the order, else (the cursor moved past it) only if a person
    has its order read, which status says how."""
    db = tmp_path / "s.db"
    clock = [NOW]
    with open_store(f"sqlite:///{db}", now=lambda: clock[0]) as store:
        store.begin("k1", flow=FLOW, order_id="905-1", action="vtex.cancel_order",
                    summary='{"rule": "cancel-in-vtex"}')
        clock[0] = NOW + timedelta(minutes=1 if cursor_after else -1)
        store.set_cursor(FLOW, "2026-03-02T12:00:00Z")
        if watched:
            store.watch(FLOW, "905-1", "2026-03-03T00:00:00Z", '{"reason": "unknown"}')
    code, text = show(db, NOW + timedelta(minutes=5))
    assert code == 0, text
    assert "pending, outcome unknown: 1 action" in text
    hint = f"`connector apply --flow {FLOW} --order 905-1` settles them by reading"
    assert (hint in text) == (settles == "needs a person"), text
    (flow,) = json.loads(show(db, NOW + timedelta(minutes=5), fmt="json")[1])["flows"]
    assert [a["settles"] for a in flow["pending"]] == [settles]
