"""Crash safety: `connector apply` killed with SIGKILL at exact points, then run again.

The child process runs the real CLI against the sandbox served by this process; a sandbox
hook kills it at the chosen request: after the simulator acted but before the answer was
written (intent recorded, outcome not), before a request was served (and the request lost),
mid-pagination, mid-feed. The next run (in process, on the same state file: the start-up
of a second child would only cost time) must settle every pending action by reading the
counterpart, and reach the very effects of an uninterrupted run on an identically seeded
sandbox: same VTEX statuses and reservations, same Commerce orders and documents, same
Amazon statuses, no duplicate effect. The killed run must not have moved the cursor; the
final run must have moved it to its window's end.

Both runs use real time: the sandbox clock is never advanced here.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from faults_helpers import CONNECTOR, REPO, child_env, load, one, reference

from connector.runner import run_flows
from connector.sandbox import Sandbox
from connector.sandbox.effects import differences, effects
from connector.sandbox.server import Request
from connector.state.store import open_store

TO_VTEX, TO_COMMERCE, TO_AMAZON = "amazon-to-vtex", "amazon-to-adobe-commerce", \
    "adobe-commerce-to-amazon"
MUTATING = ("POST", "PUT", "PATCH", "DELETE")


class Child:
    """A `connector apply` subprocess that a sandbox hook can kill."""

    def __init__(self, sandbox: Sandbox, state: Path, flow: str,
                 env: Mapping[str, str] | None = None) -> None:
        self.sandbox, self.state, self.flow = sandbox, state, flow
        self.env = dict(env or {})
        self.proc: subprocess.Popen[str] | None = None
        self.killed = threading.Event()
        self._started = threading.Event()

    def kill(self, request: Request | None = None) -> None:
        """Hook: SIGKILL the child now (from the server thread serving its request)."""
        self._started.wait(10)
        if self.proc is not None and not self.killed.is_set():
            self.killed.set()
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)  # dead before the server writes a byte more

    def run(self, timeout: float = 60.0) -> tuple[int, str]:
        """Run to the end (or the kill); (exit code, stdout + stderr)."""
        self.proc = subprocess.Popen(
            [*CONNECTOR, "apply", "--flow", self.flow], cwd=REPO, text=True,
            env=child_env(self.sandbox, self.state, **self.env), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        self._started.set()
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
            raise
        return self.proc.returncode, out


def nth(count: int, action: Callable[[Request], None],
        match: Callable[[Request], bool] = lambda r: True) -> Callable[[Request], None]:
    """A hook that calls `action` on the `count`-th request it sees that `match`es."""
    seen = [0]
    lock = threading.Lock()

    def hook(request: Request) -> None:
        if not match(request):
            return
        with lock:
            seen[0] += 1
            due = seen[0] == count
        if due:
            action(request)

    return hook


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


def crash_and_recover(sandbox: Sandbox, state: Path, flow: str, arm: Callable[[Child], None],
                      orders: str | int, seed: int = 0, *,
                      env: Mapping[str, str] | None = None) -> int:
    """Run the child with the kill armed, check it died there, run it again until clean,
    and compare the effects with an uninterrupted run, all with the environment `env` (flow
    settings). Returns how many ledger entries the killed run left pending (intents whose
    outcome it never recorded)."""
    child = Child(sandbox, state, flow, env)
    arm(child)
    code, out = child.run()
    assert child.killed.is_set() and code == -signal.SIGKILL, f"not killed ({code}):\n{out}"
    quiet(sandbox)  # requests the child sent before it died are served (or dropped) first
    sandbox.faults.clear()
    with open_store(f"sqlite:///{state}") as store:
        assert store.get_cursor(flow) is None  # the killed run did not move the cursor
        pending = store.entries(flow, "pending")
    # The next run, in process (same code, real time, no start-up cost), until clean.
    config = load()
    for _ in range(3):
        summary = one(run_flows(config, [flow], f"sqlite:///{state}", sandbox.settings(),
                                dict(env or {}), poll_scale=0.0)[0])
        if not (summary.failed or summary.unknown or summary.errors):
            break
    assert not (summary.failed or summary.unknown or summary.errors), summary.errors[:5]
    # exact, comments too: a comment in flight when the child died is found in the order's
    # history by add_comment's precondition, not added again
    got = effects(sandbox)
    assert differences(got, reference([flow], orders, seed, env)) == []
    with open_store(f"sqlite:///{state}") as store:
        assert summary.window is not None
        assert store.get_cursor(flow) == summary.window.before
    assert sandbox.errors == []
    return len(pending)


def quiet(sandbox: Sandbox, idle: float = 0.3, limit: float = 10.0) -> None:
    """Wait until the sandbox has logged no request for `idle` seconds."""
    deadline = time.monotonic() + limit
    seen = -1
    while len(sandbox.requests) != seen and time.monotonic() < deadline:
        seen = len(sandbox.requests)
        time.sleep(idle)


def is_mutation(request: Request) -> bool:
    return request.method in MUTATING and not request.path.endswith("/o2/token")


# --- amazon-to-vtex on generated orders --------------------------------------------------------


@pytest.fixture
def vtex_box() -> Iterator[Sandbox]:
    with Sandbox(orders=60, seed=1) as box:
        yield box


@pytest.mark.parametrize("count", [1, 7])
def test_killed_after_vtex_acted_before_it_answered(vtex_box: Sandbox, state: Path,
                                                    count: int) -> None:
    """Between intent and outcome: the cancel (or reservation) is done in VTEX, the
    ledger says pending. The next run reads VTEX and sends only what is still wanted."""
    def arm(child: Child) -> None:
        vtex_box.faults.on_next("vtex", "POST", ".", nth(count, child.kill), count=None,
                                after=True)

    assert crash_and_recover(vtex_box, state, TO_VTEX, arm, 60, 1) >= 1


def test_killed_before_a_request_was_served(vtex_box: Sandbox, state: Path) -> None:
    """Intent recorded, request lost with the process: the next run sends it."""
    lost: list[str] = []

    def arm(child: Child) -> None:
        def kill_and_lose(request: Request) -> None:
            lost.append(request.path)  # this request never reaches the simulator
            vtex_box.faults.drop_next("vtex", "POST", re.escape(request.path) + "$",
                                      act=False)
            child.kill()

        vtex_box.faults.on_next("vtex", "POST", "/cancel$", nth(3, kill_and_lose), count=None)

    assert crash_and_recover(vtex_box, state, TO_VTEX, arm, 60, 1) >= 1
    assert len(lost) == 1
    assert 0 in [r.status for r in vtex_box.requests if r.path == lost[0]]


def test_killed_mid_pagination(state: Path) -> None:
    with Sandbox(orders=110, seed=2) as sandbox:  # two pages of searchOrders
        def arm(child: Child) -> None:
            sandbox.faults.on_next("amazon", "GET", r"^/orders/2026-01-01/orders$",
                                   nth(1, child.kill, lambda r: bool(r.arg("paginationToken"))),
                                   count=None)

        crash_and_recover(sandbox, state, TO_VTEX, arm, 110, 2)
        listings = [r for r in sandbox.requests if r.path == "/orders/2026-01-01/orders"]
        assert len(listings) >= 4  # two pages killed at the second, two pages again


# --- amazon-to-adobe-commerce on generated orders ---------------------------------------------


@pytest.fixture
def commerce_box() -> Iterator[Sandbox]:
    with Sandbox(orders=60, seed=3) as box:
        yield box


@pytest.mark.parametrize("count", [1, 4])
def test_killed_after_commerce_created_an_order(commerce_box: Sandbox, state: Path,
                                                count: int) -> None:
    """The order exists in Commerce, the ledger says pending: the next run's look-up finds
    it, so it is never created twice (increment_id is unique there anyway)."""
    def arm(child: Child) -> None:
        commerce_box.faults.on_next("adobe-commerce", "POST", r"^/V1/orders$",
                                    nth(count, child.kill), count=None, after=True)

    assert crash_and_recover(commerce_box, state, TO_COMMERCE, arm, 60, 3) >= 1
    creates = [r for r in commerce_box.requests if r.path == "/V1/orders" and r.method == "POST"]
    assert all(r.status in (0, 200) for r in creates), creates  # none refused as a duplicate


def test_killed_after_a_commerce_invoice(commerce_box: Sandbox, state: Path) -> None:
    """complete_order is two steps (invoice, ship): killed after the invoice, the next run
    reads the order invoiced and only ships it."""
    def arm(child: Child) -> None:
        commerce_box.faults.on_next("adobe-commerce", "POST", r"/invoice$", nth(1, child.kill),
                                    count=None, after=True)

    crash_and_recover(commerce_box, state, TO_COMMERCE, arm, 60, 3)


def test_killed_after_a_commerce_comment(commerce_box: Sandbox, state: Path) -> None:
    """Magento takes no idempotency key: add_comment's precondition reads the order's
    history, so a comment whose answer the crash lost is not posted again."""
    def arm(child: Child) -> None:
        commerce_box.faults.on_next("adobe-commerce", "POST", r"/comments$",
                                    nth(1, child.kill), count=None, after=True)

    crash_and_recover(commerce_box, state, TO_COMMERCE, arm, 60, 3)


# --- adobe-commerce-to-amazon: the feed and the shipment confirmation --------------------------


@pytest.fixture
def amazon_box() -> Iterator[Sandbox]:
    with Sandbox() as box:
        box.amazon.feeds_api.polls_before_done = 0  # the child polls every 30 s otherwise
        yield box


FEED = {"CONNECTOR_FLOW_ADOBE_COMMERCE_TO_AMAZON_SHIPMENT_CONFIRMATION": "feed"}


def _fulfillment_step(sandbox: Sandbox, method: str) -> Callable[[Request], bool]:
    """Which request is the fulfillment feed's own (the run also sends the cancellation
    feed): its upload and createFeed by their content, its polls by the feed's type, its
    createFeedDocument as the one sent once the cancellation feed exists and no fulfillment
    feed does (batches are sent in the order of their action names: amazon.cancel_order
    first; were it otherwise, no request would match and the child would not be killed)."""
    def ours(request: Request) -> bool:
        if method == "PUT":
            return b"<MessageType>OrderFulfillment</MessageType>" in request.body
        if request.path.endswith("/feeds"):
            return b'"POST_ORDER_FULFILLMENT_DATA"' in request.body
        if method == "GET":
            feed = sandbox.amazon.feeds.get(request.path.rsplit("/", 1)[-1], {})
            return feed.get("feedType") == "POST_ORDER_FULFILLMENT_DATA"
        types = {feed["feedType"] for feed in sandbox.amazon.feeds.values()}
        return types == {"POST_ORDER_ACKNOWLEDGEMENT_DATA"}
    return ours


_STEPS = [
    ("POST", r"/feeds/2021-06-30/documents$", True),  # document created, not uploaded
    ("PUT", r"^/amazon-uploads/", True),  # uploaded, no feed
    ("POST", r"/feeds/2021-06-30/feeds$", True),  # feed created: Amazon will process it
    ("GET", r"/feeds/2021-06-30/feeds/\d+$", False),  # while polling
]


@pytest.mark.parametrize(("mode", "method", "path", "after"), [
    *(("call", *step) for step in _STEPS),  # the cancellation feed's steps
    ("call", "POST", r"/shipmentConfirmation$", True),  # shipment confirmed, answer lost
    *(("feed", *step) for step in _STEPS),  # the fulfillment feed's steps
], ids=["document", "upload", "feed", "poll", "confirm", "fulfillment-document",
        "fulfillment-upload", "fulfillment-feed", "fulfillment-poll"])
def test_killed_mid_feed_or_confirmation(amazon_box: Sandbox, state: Path, mode: str,
                                         method: str, path: str, after: bool) -> None:
    env = FEED if mode == "feed" else {}

    def arm(child: Child) -> None:
        match = _fulfillment_step(amazon_box, method) if mode == "feed" else (lambda r: True)
        amazon_box.faults.on_next("amazon", method, path, nth(1, child.kill, match),
                                  count=None, after=after)

    assert crash_and_recover(amazon_box, state, TO_AMAZON, arm, "scenarios", env=env) >= 1
    feeds = amazon_box.amazon.feeds
    assert [f["processingStatus"] for f in feeds.values()].count("DONE") >= 1
    assert amazon_box.amazon.acknowledgements["113-0000003-0000002"] == ["Failure"]  # once
    # The shipment: confirmed once, by the route the setting picks.
    assert len(amazon_box.amazon.orders["113-0000003-0000001"]["packages"]) == 1
    assert len(amazon_box.amazon.fulfillments.get("113-0000003-0000001", [])) == \
        (1 if mode == "feed" else 0)
