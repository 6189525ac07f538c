"""fence: a run whose PostgreSQL lock session ends while it lives on never acts twice.

Each case runs a flow (run A) whose lock sessions are terminated at one stage (as a failover,
`idle_session_timeout` or an administrator's `pg_terminate_backend` would), and at once a
second run (B) takes the partition over and runs to its end while A is still at that stage;
then A goes on, and a later run (C, past the take-over's fence time) settles what is left.
Every effect must have received exactly one mutating request: before fencing, B resent the
key A had left `pending` (as if A had crashed) and A sent its own request too.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from mock_systems import ENGINE, NOW, SECRETS, World, amazon_order, vtex_order
from postgres_helpers import POSTGRES, fresh_postgres, needs_postgres, store_url  # noqa: F401

from connector.engine import FlowRun, RunOptions
from connector.errors import Busy, LeaseLost
from connector.fence import Fence
from connector.plan import prepare
from connector.project import load_config, require
from connector.record import Recorder
from connector.state.postgres import LOCK_SPACE
from connector.state.store import open_store
from connector.transport.client import SystemClient
from connector.transport.http import Transport, new_client

pytestmark = needs_postgres

FLOW = "amazon-to-vtex"
FEEDS = "/feeds/2021-06-30/feeds"
DOCUMENTS = "/feeds/2021-06-30/documents"


def end_lock_sessions() -> None:
    """Terminate every session of this database holding one of our run locks, and wait
    until the server has freed them."""
    import psycopg

    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        query = ("SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                 "WHERE l.locktype = 'advisory' AND l.classid = %s::int4::oid "
                 "AND d.datname = current_database() AND l.pid <> pg_backend_pid()")
        for (pid,) in conn.execute(query.encode(), (LOCK_SPACE,)).fetchall():
            conn.execute(b"SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(100):
            if not conn.execute(query.encode(), (LOCK_SPACE,)).fetchall():
                return
            time.sleep(0.05)
    raise AssertionError("the lock sessions did not end")


def project(tmp_path: Path) -> Path:
    """The engine fixture, plus a rule that cancels an unshipped Amazon order whose VTEX
    order is cancelled: Amazon's cancel_order is three mutating steps (feed document,
    upload, feed), so a lock can be lost between two of them."""
    root = tmp_path / "project"
    shutil.copytree(ENGINE, root)
    rules = root / "rules" / f"{FLOW}.yaml"
    text = rules.read_text(encoding="utf-8")
    rules.write_text(text.replace("rules:\n", "rules:\n  - id: cancel-on-amazon\n"
                                  "    when: {status: UNSHIPPED, target.status: canceled}\n"
                                  "    then:\n      - amazon.cancel_order: {}\n", 1),
                     encoding="utf-8")
    return root


@contextmanager
def store_at(url: str, now: datetime) -> Iterator[Any]:
    store = open_store(url, now=lambda: now)
    try:
        yield store
    finally:
        store.close()


def run_once(root: Path, world: World, url: str, *, now: datetime = NOW,
             hook: Callable[[httpx.Request, httpx.Response | None], None] | None = None) -> Any:
    """One run of the flow on the PostgreSQL store at `url`; `hook` sees each request as it
    arrives (response None) and once answered, before the run has the answer. Returns the
    summary, or the `Busy` it stopped on."""
    rt = prepare(require(load_config(root)), FLOW, environ={}, system_overrides=SECRETS)

    def answer(request: httpx.Request) -> httpx.Response:
        if hook is not None:
            hook(request, None)
        response = world(request)
        if hook is not None:
            hook(request, response)
        return response

    transport = Transport(new_client(transport=httpx.MockTransport(answer)), sleep=lambda s: None)
    clients = {name: SystemClient(system, rt.system_settings[name], transport, rt.redact)
               for name, system in rt.systems.items()}
    try:
        with store_at(url, now) as store:
            try:
                return FlowRun(rt, clients, store, RunOptions(
                    now=lambda: now, sleep=lambda s: None, concurrency=1, poll_scale=0.0)).run()
            except Busy as exc:
                return exc
    finally:
        transport.close()


class TakeOver:
    """At the chosen moment of run A: its lock sessions end, and run B runs to its end."""

    def __init__(self, root: Path, world: World, url: str) -> None:
        self.root, self.world, self.url = root, world, url
        self.fired = threading.Event()
        self.second: Any = None

    def __call__(self) -> None:
        if self.fired.is_set():
            return
        self.fired.set()
        end_lock_sessions()
        # B is another process: its own thread, with none of A's context.
        second = threading.Thread(target=self._second)
        second.start()
        second.join(60)

    def _second(self) -> None:
        self.second = run_once(self.root, self.world, self.url)


def seed(world: World) -> None:
    world.amazon["902-1"] = amazon_order("902-1", "CANCELLED", cancelled_by="BUYER")
    world.vtex["AMZ-902-1-01"] = vtex_order("AMZ-902-1-01", "payment-approved")
    world.amazon["902-2"] = amazon_order("902-2", "UNSHIPPED", cancelled_by=None)
    world.vtex["AMZ-902-2-01"] = vtex_order("AMZ-902-2-01", "canceled")
    world.amazon["902-3"] = amazon_order("902-3", "CANCELLED", cancelled_by="BUYER")
    world.vtex["AMZ-902-3-01"] = vtex_order("AMZ-902-3-01", "payment-approved")


def effects(world: World) -> dict[str, int]:
    """Mutating requests per effect: each VTEX cancel, each Amazon cancellation feed."""
    counts = {"vtex cancel 902-1": 0, "vtex cancel 902-3": 0, "amazon feed 902-2": 0}
    for request in world.mutating():
        if request.url.path.endswith("/cancel"):
            counts[f"vtex cancel {request.url.path.split('/')[-2][4:-3]}"] += 1
        elif request.url.path == FEEDS:
            counts["amazon feed 902-2"] += 1
    return counts


def is_vtex_cancel(order: str) -> Callable[[httpx.Request], bool]:
    return lambda r: r.method == "POST" and r.url.path == f"/api/oms/pvt/orders/AMZ-{order}-01/cancel"


def is_feed_document(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path == DOCUMENTS


@pytest.fixture
def url() -> Iterator[str]:
    with fresh_postgres() as found:
        yield found


@pytest.mark.parametrize("stage", ["before-request", "after-request", "between-steps"])
def test_a_run_that_lost_its_lock_never_acts_twice(
        stage: str, tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path)
    world = World()
    seed(world)
    take_over = TakeOver(root, world, url)
    hook = None
    if stage == "before-request":
        # The intent of 902-1's cancel is recorded; its request not sent yet.
        intent = Recorder.intent

        def recorded(self: Recorder, planned: Any) -> Any:
            entry = intent(self, planned)
            if planned.context["source"]["id"] == "902-1":
                take_over()
            return entry

        monkeypatch.setattr(Recorder, "intent", recorded)
    elif stage == "after-request":
        def hook(request: httpx.Request, response: httpx.Response | None) -> None:  # noqa: F811
            if response is None and is_vtex_cancel("902-1")(request):
                take_over()  # sent, and slow: VTEX acts only after B has read the order
    else:
        def hook(request: httpx.Request, response: httpx.Response | None) -> None:  # noqa: F811
            if response is not None and is_feed_document(request):
                take_over()  # the first of cancel_order's three mutating steps is done

    first = run_once(root, world, url, hook=hook)
    assert take_over.fired.is_set()
    monkeypatch.undo()
    assert not isinstance(take_over.second, Busy), take_over.second
    # Run A was told, in words, that it lost its partition; it did not send more after it.
    assert isinstance(first, LeaseLost), first
    assert "taken over by another process" in str(first)
    # A later run, past the fence time, settles what A left in flight by reading.
    last = run_once(root, world, url, now=NOW + timedelta(minutes=5))
    assert not isinstance(last, Busy), last
    assert effects(world) == {"vtex cancel 902-1": 1, "vtex cancel 902-3": 1,
                              "amazon feed 902-2": 1}
    assert world.vtex["AMZ-902-1-01"]["status"] == "canceled"


def test_a_pending_entry_of_a_live_lease_is_neither_sent_nor_settled(url: str) -> None:
    """The writer holds its lease: another run's view says `live` (it waits); once the
    writer is fenced off by a take-over, `live` until the fence time, then `recent`."""
    with store_at(url, NOW) as plain:
        writer = plain.fenced(Fence())
        writer.take_lease("f@x", "writer")
        entry = writer.begin("k1", flow="f", order_id="o", action="a", summary="{}")
        assert (entry.lease_key, entry.lease_epoch, entry.owner) == ("f@x", 1, "writer")
        other = plain.fenced(Fence())
        other.take_lease("f@y", "other")
        assert other.pending_writer(entry) == "live"
        taker = plain.fenced(Fence())
        taker.take_lease("f@x", "taker")
        assert taker.pending_writer(entry) == "live"  # its request may still land
        with pytest.raises(LeaseLost, match="epoch 2, taker"):
            writer.complete("k1", {})
        assert plain.entry("k1").status == "pending"  # the write changed nothing
    with store_at(url, NOW + timedelta(seconds=plain.takeover_grace + 1)) as later:
        assert later.fenced(taker._fence).pending_writer(entry) == "recent"  # type: ignore[attr-defined]


# --- the take-over grace, a setting ---------------------------------------------------------


@pytest.mark.parametrize(("value", "grace"), [
    (None, 60.0), ("", 60.0), ("35", 35.0), (" 120.5 ", 120.5), ("86400", 86400.0),
    ("34.9", None), ("0", None), ("-60", None), ("nan", None), ("inf", None),
    ("1e9", None), ("60s", None), ("sixty", None),
])
def test_takeover_grace_setting_is_read_and_refused_when_unsafe(value: str | None,
                                                                 grace: float | None) -> None:
    """CONNECTOR_TAKEOVER_GRACE_SECONDS: a grace shorter than the transport's timeouts could
    settle an entry whose request still lands; nonsense is refused, naming the setting."""
    from connector.errors import UsageError
    from connector.state.leases import GRACE_SETTING, takeover_grace

    env = {} if value is None else {GRACE_SETTING: value}
    if grace is None:
        with pytest.raises(UsageError, match=f"^{GRACE_SETTING}=.*seconds from 35 to 86400"):
            takeover_grace(env, 60.0)
    else:
        assert takeover_grace(env, 60.0) == grace


@needs_postgres
def test_a_postgres_takeover_defers_for_the_configured_grace() -> None:
    from connector.state.leases import GRACE_SETTING
    from connector.state.postgres import PostgresStore

    with fresh_postgres() as url, PostgresStore(url, environ={GRACE_SETTING: "90"}) as store:
        lease = store.take_lease("amazon-to-vtex", "a")
        lease = store.take_lease("amazon-to-vtex", "b")  # a take-over: the first not released
    taken = datetime.fromisoformat(lease.taken_at.replace("Z", "+00:00"))
    fence = datetime.fromisoformat(lease.fence_until.replace("Z", "+00:00"))
    assert fence - taken == timedelta(seconds=90)


@pytest.mark.parametrize(("first", "second", "fenced"), [
    (f"{FLOW}@ATVPDKIKX0DER", FLOW, True),  # an apply of the whole flow after a worker's
    (FLOW, f"{FLOW}@ATVPDKIKX0DER", True),  # a worker's partition after an apply
    (f"{FLOW}@ATVPDKIKX0DER", f"{FLOW}@A2EUQ1WTGCTBG2", False),  # another partition
    (f"{FLOW}@ATVPDKIKX0DER", "amazon-to-vtex-2", False),  # another flow, a longer name
])
def test_a_whole_flow_run_and_a_partition_run_fence_each_other(
        store_url: str, first: str, second: str, fenced: bool) -> None:
    """The issue's case: a worker's partition run loses its lock session and `apply` takes
    the whole flow (or the reverse). Their leases had separate epochs, so the first run's
    checks passed and it went on acting beside the second."""
    with store_at(store_url, NOW) as store:
        fence = Fence()
        view = store.fenced(fence)
        view.take_lease(first, "run a")
        store.take_lease(second, "run b")
        if fenced:
            with pytest.raises(LeaseLost, match="taken over by another process"):
                fence.check(mutating=True)
            with pytest.raises(LeaseLost):
                view.set_cursor(first, "2026-03-02T10:00:00Z")
        else:
            fence.check(mutating=True)
            view.set_cursor(first, "2026-03-02T10:00:00Z")


def test_a_pending_entry_of_a_released_lease_is_not_in_flight(store_url: str) -> None:
    """A partition run that ended cleanly (its lease released) left an unknown outcome: an
    `apply` of the whole flow settles it by reading instead of deferring it as in flight."""
    with store_at(store_url, NOW) as store:
        view = store.fenced(Fence())
        lease = view.take_lease(f"{FLOW}@ATVPDKIKX0DER", "run a")
        entry = view.begin("k1", flow=FLOW, order_id="902-1", action="vtex.cancel_order",
                           summary="{}", partition="ATVPDKIKX0DER")
        assert entry.lease_key == lease.key
        view.release_lease(lease)
        whole = store.fenced(Fence())
        whole.take_lease(FLOW, "run b")
        assert whole.pending_writer(entry) == "gone"
