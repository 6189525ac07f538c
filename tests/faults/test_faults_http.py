"""Each fault of the issue, one test each, on the sandbox with the shipped configuration.

A test whose fault is transient ends by comparing the sandbox's effects with those of a
fault-free run on an identically seeded sandbox (`reference`): the fault may cost a run,
never an order, and never a duplicate effect. Stale plans (the counterpart changed between
the read and the write) must be skipped and the order evaluated again, not counted as
failures; real failures are recorded with their reason, retried with backoff and parked.
Retry delays are shortened (`Net`) except where a test checks them.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from faults_helpers import Net, load, mutations, one, reference, run, settle

from connector.transport.http import RetryPolicy
from connector.project import Config
from connector.sandbox import Sandbox
from connector.sandbox.effects import differences, effects
from connector.sandbox.server import Request
from connector.state.store import open_store

TO_VTEX, TO_COMMERCE, TO_AMAZON = "amazon-to-vtex", "amazon-to-adobe-commerce", \
    "adobe-commerce-to-amazon"
V1 = "AMZ-111-0000001-0000001-01"  # ready-for-handling: two cancels
V3 = "AMZ-111-0000001-0000003-01"  # payment-approved: one cancel
LISTING = r"^/orders/2026-01-01/orders$"


@pytest.fixture(scope="module")
def config() -> Config:
    """Settling in the run off: most tests here are about what the next run settles; the
    section "settling in the run" below runs the shipped default."""
    return load(settle_attempts=0)


@pytest.fixture(scope="module")
def settling() -> Config:
    return load()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as box:
        box.amazon.feeds_api.polls_before_done = 0
        yield box
    assert box.errors == []


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def net(monkeypatch: pytest.MonkeyPatch) -> Net:
    return Net().install(monkeypatch)


def same_as_reference(sandbox: Sandbox, flow: str) -> None:
    assert differences(effects(sandbox), reference([flow])) == []


def wait_for(check: Callable[[], object], seconds: float = 5.0) -> None:
    """Wait for a late server-side event (a delayed answer is logged when written)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for the sandbox"
        time.sleep(0.02)


def acted(sandbox: Sandbox, path: str) -> int:
    """Requests to `path` the simulator acted on: answered 2xx, or faults after acting."""
    after = {record for name, record in sandbox.faults.triggered
             if name in ("drop", "delay", "corrupt") and record.path.endswith(path)}
    return sum(1 for r in mutations(sandbox, path) if 200 <= r.status < 300 or r in after)


# --- 429 ---------------------------------------------------------------------------------


def test_429_with_retry_after_is_honoured(config: Config, sandbox: Sandbox, db: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    net = Net(retry=RetryPolicy()).install(monkeypatch)
    sandbox.faults.fail_next("vtex", "POST", f"{V3}/cancel$", 429,
                             headers={"Retry-After": "1"})
    summary = one(run(config, sandbox, db, [TO_VTEX]))
    assert 1.0 in net.sleeps
    assert not summary.failed and not summary.unknown
    assert [r.status for r in mutations(sandbox, f"{V3}/cancel")] == [429, 200]
    same_as_reference(sandbox, TO_VTEX)


def test_429_without_retry_after_backs_off(config: Config, sandbox: Sandbox, db: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    net = Net(retry=RetryPolicy()).install(monkeypatch)
    sandbox.faults.fail_next("vtex", "POST", f"{V3}/cancel$", 429, count=2)
    summary = one(run(config, sandbox, db, [TO_VTEX]))
    assert len(net.sleeps) == 2 and all(0 <= s <= 1.0 for s in net.sleeps)  # jittered backoff
    assert not summary.failed
    assert [r.status for r in mutations(sandbox, f"{V3}/cancel")] == [429, 429, 200]
    same_as_reference(sandbox, TO_VTEX)


# --- 5xx ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_on_a_read_is_retried(config: Config, sandbox: Sandbox, db: Path, net: Net,
                                  status: int) -> None:
    sandbox.faults.fail_next("vtex", "GET", f"/orders/{V1}$", status, count=2)
    sandbox.faults.fail_next("amazon", "GET", LISTING, status)
    summary = one(run(config, sandbox, db, [TO_VTEX]))
    assert not summary.failed and not summary.errors
    same_as_reference(sandbox, TO_VTEX)


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_on_a_write_is_not_resent_blindly(config: Config, sandbox: Sandbox, db: Path,
                                              net: Net, status: int) -> None:
    sandbox.faults.fail_next("vtex", "POST", f"{V3}/cancel$", status)
    first = one(run(config, sandbox, db, [TO_VTEX]))
    assert first.unknown == 1 and len(mutations(sandbox, f"{V3}/cancel")) == 1  # not resent
    assert sandbox.vtex.orders[V3]["status"] == "payment-approved"
    settle(config, sandbox, db, [TO_VTEX])  # the fresh read: still not cancelled, so sent
    assert acted(sandbox, f"{V3}/cancel") == 1
    same_as_reference(sandbox, TO_VTEX)


def test_500_after_the_write_took_effect_is_settled_by_reading(
        config: Config, sandbox: Sandbox, db: Path, net: Net) -> None:
    sandbox.faults.fail_next("vtex", "POST", f"{V3}/cancel$", 500, act=True)
    assert one(run(config, sandbox, db, [TO_VTEX])).unknown == 1
    settle(config, sandbox, db, [TO_VTEX])
    assert len(mutations(sandbox, f"{V3}/cancel")) == 1  # the read showed it cancelled
    same_as_reference(sandbox, TO_VTEX)


# --- connect and read timeouts ---------------------------------------------------------------


class ConnectTimeouts(httpx.BaseTransport):
    """The client side of a connect timeout (a server that accepts cannot produce one)."""

    def __init__(self, inner: httpx.BaseTransport, path: str, count: int) -> None:
        self.inner, self.path, self.count = inner, path, count

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.count > 0 and request.url.path.endswith(self.path):
            self.count -= 1
            raise httpx.ConnectTimeout("timed out connecting", request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_connect_timeout_is_retried_even_for_a_write(config: Config, sandbox: Sandbox,
                                                     db: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    Net(wrap=lambda inner: ConnectTimeouts(inner, f"{V3}/cancel", 2)).install(monkeypatch)
    summary = one(run(config, sandbox, db, [TO_VTEX]))
    assert not summary.failed and not summary.unknown
    assert [r.status for r in mutations(sandbox, f"{V3}/cancel")] == [200]
    same_as_reference(sandbox, TO_VTEX)


def test_unreachable_system_fails_orders_not_the_run(config: Config, sandbox: Sandbox,
                                                     db: Path, net: Net) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = sandbox.settings()
    settings["vtex"] = {**settings["vtex"], "base_url": f"http://127.0.0.1:{port}/vtex"}
    summary = one(run(config, sandbox, db, [TO_VTEX], settings=settings))
    assert summary.orders > 0 and len(summary.errors) == summary.orders
    assert all("could not connect" in e for e in summary.errors)
    settle(config, sandbox, db, [TO_VTEX])  # VTEX is back: the watched orders are done
    same_as_reference(sandbox, TO_VTEX)


def test_read_timeout_on_a_read_is_retried(config: Config, sandbox: Sandbox, db: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    net = Net(read_timeout=0.3).install(monkeypatch)
    sandbox.faults.delay_next("amazon", "GET", LISTING, 0.8)
    summary = one(run(config, sandbox, db, [TO_VTEX]))
    assert not summary.errors and net.sleeps  # retried after the timeout
    wait_for(lambda: len([r for r in sandbox.requests if r.path.endswith("01/orders")]) == 2)
    same_as_reference(sandbox, TO_VTEX)


def test_read_timeout_after_the_write_took_effect(config: Config, sandbox: Sandbox,
                                                  db: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    Net(read_timeout=0.3).install(monkeypatch)
    sandbox.faults.delay_next("vtex", "POST", f"{V3}/cancel$", 0.8)
    assert one(run(config, sandbox, db, [TO_VTEX])).unknown == 1
    settle(config, sandbox, db, [TO_VTEX])
    wait_for(lambda: mutations(sandbox, f"{V3}/cancel"))  # logged once answered, late
    assert len(mutations(sandbox, f"{V3}/cancel")) == 1
    same_as_reference(sandbox, TO_VTEX)


def test_read_timeout_before_the_write_took_effect(config: Config, sandbox: Sandbox,
                                                   db: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The server acts after the client gave up. Whether the next run reads before or
    after that, the order ends cancelled once: resent only while the read shows it open,
    and a resend that meets the late cancel is refused by VTEX and seen to be stale."""
    Net(read_timeout=0.2).install(monkeypatch)
    sandbox.faults.delay_next("vtex", "POST", f"{V3}/cancel$", 0.6, act=False)
    assert one(run(config, sandbox, db, [TO_VTEX])).unknown == 1
    runs = settle(config, sandbox, db, [TO_VTEX])
    assert not any(s.failed for summaries in runs for s in summaries)
    wait_for(lambda: len(mutations(sandbox, f"{V3}/cancel")) >= 2 or
             sandbox.vtex.orders[V3].get("cancellationData") is not None)
    same_as_reference(sandbox, TO_VTEX)


# --- dropped connections -----------------------------------------------------------------


def test_dropped_after_the_first_of_two_cancels(config: Config, sandbox: Sandbox, db: Path,
                                                net: Net) -> None:
    sandbox.faults.drop_next("vtex", "POST", f"{V1}/cancel$")
    assert one(run(config, sandbox, db, [TO_VTEX])).unknown == 1
    assert sandbox.vtex.orders[V1]["status"] == "cancellation-requested"
    settle(config, sandbox, db, [TO_VTEX])  # the read shows step one done: step two only
    assert len(mutations(sandbox, f"{V1}/cancel")) == 2
    same_as_reference(sandbox, TO_VTEX)


def test_dropped_after_commerce_created_the_order(config: Config, sandbox: Sandbox,
                                                  db: Path, net: Net) -> None:
    sandbox.faults.drop_next("adobe-commerce", "POST", r"^/V1/orders$")
    assert one(run(config, sandbox, db, [TO_COMMERCE])).unknown == 1
    settle(config, sandbox, db, [TO_COMMERCE])
    creates = [r.status for r in mutations(sandbox, "/V1/orders") if r.path == "/V1/orders"]
    assert creates.count(0) == 1 and set(creates) == {0, 200}  # never refused as a duplicate
    same_as_reference(sandbox, TO_COMMERCE)  # one Commerce order per Amazon order


def test_lost_request_is_sent_on_the_next_run(config: Config, sandbox: Sandbox, db: Path,
                                              net: Net) -> None:
    sandbox.faults.drop_next("vtex", "POST", f"{V3}/cancel$", act=False)
    assert one(run(config, sandbox, db, [TO_VTEX])).unknown == 1
    settle(config, sandbox, db, [TO_VTEX])
    assert [r.status for r in mutations(sandbox, f"{V3}/cancel")] == [0, 200]
    same_as_reference(sandbox, TO_VTEX)


@pytest.mark.parametrize("in_run", [False, True])
@pytest.mark.parametrize("fault", ["drop", "truncate", "cut"])
def test_unanswered_reservation_keeps_its_outputs(config: Config, settling: Config,
                                                  sandbox: Sandbox, db: Path, net: Net,
                                                  fault: str, in_run: bool) -> None:
    """The reservation is made but its answer lost: a read of the order cannot show it, so
    the action's `settle` read (ReservationById) settles it, in the run or the next one,
    without a second create, and records the id, so that the cancellation later releases it."""
    path = r"/inventory/reservations$"
    seeded = set(sandbox.vtex.reservations)
    if fault == "drop":
        sandbox.faults.drop_next("vtex", "POST", path)
    else:
        sandbox.faults.truncate_next("vtex", "POST", path, wire=fault == "cut")
    chosen = settling if in_run else config
    assert one(run(chosen, sandbox, db, [TO_VTEX])).unknown == (0 if in_run else 1)
    settle(chosen, sandbox, db, [TO_VTEX])
    sandbox.amazon.cancel("111-0000001-0000006", by="AMAZON")
    settle(chosen, sandbox, db, [TO_VTEX])
    reservation = sandbox.vtex.reservations["AMZ-111-0000001-0000006"]
    assert reservation["Status"] == 5  # released: its id was recorded
    assert set(sandbox.vtex.reservations) - seeded == {  # both PENDING orders, once each
        "AMZ-111-0000001-0000006", "AMZ-112-0000002-0000001"}
    creates = [r for r in mutations(sandbox, "/reservations") if r.path.endswith("/reservations")]
    assert len(creates) == 2  # one each: the unanswered one was read, not sent again


# --- malformed bodies ------------------------------------------------------------------------


@pytest.mark.parametrize("wire", [False, True])
def test_truncated_json_on_a_read_is_retried(config: Config, sandbox: Sandbox, db: Path,
                                             net: Net, wire: bool) -> None:
    sandbox.faults.truncate_next("amazon", "GET", LISTING, wire=wire)
    sandbox.faults.truncate_next("vtex", "GET", f"/orders/{V1}$", wire=wire)
    summary = one(run(config, sandbox, db, [TO_VTEX]))
    assert not summary.errors and len(sandbox.faults.triggered) == 2
    same_as_reference(sandbox, TO_VTEX)


def test_malformed_json_answer_to_a_write_is_settled(config: Config, sandbox: Sandbox,
                                                     db: Path, net: Net) -> None:
    sandbox.faults.malformed_next("vtex", "POST", f"{V3}/cancel$", body=b'{"receipt": ')
    summary = one(run(config, sandbox, db, [TO_VTEX]))
    assert summary.unknown == 1 and "unreadable body" in summary.errors[0]
    settle(config, sandbox, db, [TO_VTEX])
    assert len(mutations(sandbox, f"{V3}/cancel")) == 1
    same_as_reference(sandbox, TO_VTEX)


def test_html_error_page_on_a_read_is_retried(config: Config, sandbox: Sandbox, db: Path,
                                              net: Net) -> None:
    sandbox.faults.html_next("amazon", "GET", LISTING, 502)
    summary = one(run(config, sandbox, db, [TO_VTEX]))
    assert not summary.errors
    same_as_reference(sandbox, TO_VTEX)


def test_html_error_page_on_a_write_is_ambiguous(config: Config, sandbox: Sandbox, db: Path,
                                                 net: Net) -> None:
    sandbox.faults.html_next("vtex", "POST", f"{V3}/cancel$", 502)
    summary = one(run(config, sandbox, db, [TO_VTEX]))
    assert summary.unknown == 1 and "HTML error page" in summary.errors[0]
    assert "<html" not in " ".join(summary.errors)
    settle(config, sandbox, db, [TO_VTEX])
    same_as_reference(sandbox, TO_VTEX)


def test_html_200_on_a_lookup_is_not_taken_for_absent(config: Config, sandbox: Sandbox,
                                                      db: Path, net: Net) -> None:
    """A proxy page answered 200 to the Commerce look-up: "no such order" would create the
    existing ones again; it is an error for those orders, retried next run."""
    sandbox.faults.html_next("adobe-commerce", "GET", r"^/V1/orders$", 200, count=None)
    summary = one(run(config, sandbox, db, [TO_COMMERCE]))
    assert summary.done == 0 and len(summary.errors) == summary.orders
    assert mutations(sandbox, "/V1/orders") == []
    sandbox.faults.clear()
    settle(config, sandbox, db, [TO_COMMERCE])
    assert all(r.status == 200 for r in mutations(sandbox, "/V1/orders"))
    same_as_reference(sandbox, TO_COMMERCE)


# --- tokens, feeds ---------------------------------------------------------------------------


def test_token_expired_mid_run_is_refreshed(config: Config, sandbox: Sandbox, db: Path,
                                            net: Net) -> None:
    def expire(request: Request) -> None:
        sandbox.expire_tokens()

    sandbox.faults.on_next("amazon", "POST", r"/shipmentConfirmation$", expire)
    summary = one(run(config, sandbox, db, [TO_AMAZON]))
    assert not summary.failed and not summary.errors
    confirms = [r.status for r in sandbox.requests if r.path.endswith("/shipmentConfirmation")]
    assert confirms == [403, 204]
    assert len([r for r in sandbox.requests if r.path.endswith("/o2/token")]) >= 2
    same_as_reference(sandbox, TO_AMAZON)


def test_feed_ending_fatal_fails_and_is_retried_after_backoff(
        config: Config, sandbox: Sandbox, db: Path, net: Net) -> None:
    amazon_id = "113-0000003-0000002"
    sandbox.amazon.feeds_api.fatal_next()
    first = one(run(config, sandbox, db, [TO_AMAZON]))
    assert first.failed == 1 and "FATAL" in first.errors[0]
    assert sandbox.amazon.orders[amazon_id]["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    with open_store(f"sqlite:///{db}") as store:
        entry = store.entries(TO_AMAZON, "failed")
    assert len(entry) == 1 and "FATAL" in (entry[0].error or "")
    again = one(run(config, sandbox, db, [TO_AMAZON]))  # too soon: backoff
    assert again.deferred == 1 and len(sandbox.amazon.feeds) == 1
    settle(config, sandbox, db, [TO_AMAZON])
    assert len(sandbox.amazon.feeds) == 2
    same_as_reference(sandbox, TO_AMAZON)


# --- stale plans -------------------------------------------------------------------------------


def test_target_invoiced_between_read_and_write_is_stale(config: Config, sandbox: Sandbox,
                                                         db: Path, net: Net) -> None:
    def invoice(request: Request) -> None:  # a person invoices it in VTEX meanwhile
        sandbox.add_vtex_order("111-0000001-0000003", "invoiced")

    sandbox.faults.on_next("vtex", "POST", f"{V3}/cancel$", invoice)
    summary = one(run(config, sandbox, db, [TO_VTEX]))
    assert not summary.failed and not summary.errors and summary.skipped >= 1
    assert any(V3 in item and "return invoice" in item for item in summary.attention)
    assert sandbox.vtex.orders[V3]["status"] == "invoiced"
    assert [r.status for r in mutations(sandbox, f"{V3}/cancel")] == [400]


def test_target_cancelled_between_read_and_write_is_stale(config: Config, sandbox: Sandbox,
                                                          db: Path, net: Net) -> None:
    def cancel(request: Request) -> None:
        sandbox.vtex.set_status(V3, "canceled")

    sandbox.faults.on_next("vtex", "POST", f"{V3}/cancel$", cancel)
    summary = one(run(config, sandbox, db, [TO_VTEX]))
    assert not summary.failed and not summary.errors
    assert not any(V3 in item for item in summary.attention)
    settle(config, sandbox, db, [TO_VTEX])
    assert [r.status for r in mutations(sandbox, f"{V3}/cancel")] == [400]


def test_commerce_order_held_between_read_and_cancel_is_stale(config: Config, sandbox: Sandbox,
                                                               db: Path, net: Net) -> None:
    """Magento answers `false` (canCancel) for an order a person put on hold meanwhile: not
    a failure, the fresh read calls for the on-hold report instead."""
    amazon_id = "112-0000002-0000004"

    def hold(request: Request) -> None:
        with sandbox._lock:
            order = sandbox.commerce.order_by_increment_id(amazon_id)
            assert order is not None
            order.update(hold_before_state=order["state"], hold_before_status=order["status"],
                         state="holded", status="holded")

    sandbox.faults.on_next("adobe-commerce", "POST", r"/cancel$", hold)
    summary = one(run(config, sandbox, db, [TO_COMMERCE]))
    assert not summary.failed and not summary.errors and summary.skipped >= 1
    assert any(amazon_id in item and "release it" in item for item in summary.attention)
    order = sandbox.commerce.order_by_increment_id(amazon_id)
    assert order is not None and order["state"] == "holded"


# --- failures across runs ------------------------------------------------------------------------


def test_failing_action_is_retried_with_backoff_then_parked(sandbox: Sandbox, db: Path,
                                                            net: Net) -> None:
    config = load(max_attempts=3, retry_backoff_seconds=60)
    refusal = {"error": {"code": "OMS999", "message": "refused for the test"}}
    sandbox.faults.fail_next("vtex", "POST", f"{V3}/cancel$", 400, count=None, body=refusal)
    runs = [one(run(config, sandbox, db, [TO_VTEX]))]
    for wait in (0, 61, 121, 241, 481):
        sandbox.advance(wait)
        runs.append(one(run(config, sandbox, db, [TO_VTEX])))
    assert [(s.failed, s.deferred, s.parked) for s in runs] == [
        (1, 0, 0), (0, 1, 0), (1, 0, 0), (1, 0, 0), (0, 0, 1), (0, 0, 1)]
    assert len(mutations(sandbox, f"{V3}/cancel")) == 3
    assert "refused for the test" in runs[0].errors[0]
    parked = [item for item in runs[4].attention if "parked" in item]
    assert len(parked) == 1 and "failed 3 times" in parked[0] and "OMS999" in parked[0]
    assert not any("parked" in item for item in runs[5].attention)  # said once
    with open_store(f"sqlite:///{db}") as store:
        entry = store.entries(TO_VTEX, "parked")
    assert len(entry) == 1 and "refused for the test" in (entry[0].error or "")


def test_one_order_failing_never_stops_the_others(config: Config, sandbox: Sandbox, db: Path,
                                                  net: Net) -> None:
    sandbox.faults.fail_next("vtex", "POST", f"{V3}/cancel$", 400)
    sandbox.faults.fail_next("vtex", "POST", f"{V1}/cancel$", 500)
    sandbox.faults.drop_next("vtex", "POST", r"/inventory/reservations$")
    sandbox.faults.fail_next("vtex", "GET", "AMZ-111-0000001-0000002-01$", 404)
    summary = one(run(config, sandbox, db, [TO_VTEX]))
    assert (summary.failed, summary.unknown) == (1, 2)
    statuses = {oid: o["status"] for oid, o in sandbox.vtex.orders.items()}
    assert statuses["AMZ-111-0000001-0000002-01"] == "handling"  # looked up as absent: waits
    settle(config, sandbox, db, [TO_VTEX])
    same_as_reference(sandbox, TO_VTEX)


def test_order_still_acting_when_rounds_run_out_is_read_again(sandbox: Sandbox, db: Path,
                                                               net: Net) -> None:
    """With no re-evaluation round left after the first cancel of a two-step order (or
    after a stale refusal), the order is watched, so the next run finishes it instead of
    the cursor leaving it behind."""
    config = load(max_reevaluations=0, settle_attempts=0)
    first = one(run(config, sandbox, db, [TO_VTEX]))
    assert sandbox.vtex.orders[V1]["status"] == "cancellation-requested"
    assert first.watched >= 1
    settle(config, sandbox, db, [TO_VTEX])
    assert sandbox.vtex.orders[V1]["status"] == "canceled"
    same_as_reference(sandbox, TO_VTEX)


# --- settling in the run ---------------------------------------------------------------------


def test_two_503s_on_a_cancel_are_settled_in_the_run(settling: Config, sandbox: Sandbox,
                                                     db: Path, net: Net) -> None:
    """Each 503 left the order uncancelled: the read after it shows the cancel still called
    for, so it is sent again (same key) and the run ends clean, the cancel done once."""
    sandbox.faults.fail_next("vtex", "POST", f"{V3}/cancel$", 503, count=2)
    summary = one(run(settling, sandbox, db, [TO_VTEX]))
    assert (summary.unknown, summary.failed, summary.settled) == (0, 0, 2), summary.errors
    assert len(mutations(sandbox, f"{V3}/cancel")) == 3 and acted(sandbox, f"{V3}/cancel") == 1
    assert sandbox.vtex.orders[V3]["status"] == "canceled"
    same_as_reference(sandbox, TO_VTEX)
    assert not any(one(later).done for later in settle(settling, sandbox, db, [TO_VTEX]))


def test_500_after_the_write_took_effect_is_settled_in_the_run(
        settling: Config, sandbox: Sandbox, db: Path, net: Net) -> None:
    sandbox.faults.fail_next("vtex", "POST", f"{V3}/cancel$", 500, act=True)
    summary = one(run(settling, sandbox, db, [TO_VTEX]))
    assert (summary.unknown, summary.settled) == (0, 1)
    assert len(mutations(sandbox, f"{V3}/cancel")) == 1  # the read showed it cancelled
    with open_store(f"sqlite:///{db}") as store:
        (entry,) = store.entries(TO_VTEX, "settled")
        assert store.pending_entries(TO_VTEX) == []
    assert entry.order_id == "111-0000001-0000003" and "settled by reading" in (entry.error or "")
    same_as_reference(sandbox, TO_VTEX)


def test_unknown_past_the_settle_budget_is_left_for_the_next_run(
        settling: Config, sandbox: Sandbox, db: Path, net: Net) -> None:
    sandbox.faults.fail_next("vtex", "POST", f"{V3}/cancel$", 503, count=3)
    summary = one(run(settling, sandbox, db, [TO_VTEX]))
    assert summary.unknown == 1 and len(mutations(sandbox, f"{V3}/cancel")) == 3
    assert sandbox.vtex.orders[V3]["status"] == "payment-approved"
    settle(settling, sandbox, db, [TO_VTEX])
    assert acted(sandbox, f"{V3}/cancel") == 1
    same_as_reference(sandbox, TO_VTEX)
