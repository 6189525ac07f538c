"""Notifications as the trigger: ORDER_CHANGE messages from SQS → queued orders → runs.

SQS is moto's server mode (`ThreadedMotoServer`), started here on loopback; the systems are
the sandbox. The messages are the example of shared/specs/amazon/OrderChangeNotification.json
with the order id and marketplace id of the case.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from postgres_helpers import pg_url  # noqa: F401 - a fixture
from test_worker import sandbox_env, worker_command

from connector.engine import Summary, flow_key
from connector.notify import receive
from connector.notify.sqs import Message, SqsQueue, endpoint
from connector.project import Config, load_config, require
from connector.runner import run_flows
from connector.sandbox import Sandbox
from connector.state.store import open_store
from connector.worker import bare

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

REPO = Path(__file__).resolve().parent.parent
FLOW = "amazon-to-vtex"
US, MX = "ATVPDKIKX0DER", "A1AM78C64UM0Y8"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
# The example of OrderChangeNotification.json (shortened Summary), so that the test breaks if
# the mapping's paths do not fit Amazon's field names.
EXAMPLE: dict[str, Any] = {
    "NotificationVersion": "1.0", "NotificationType": "ORDER_CHANGE", "PayloadVersion": "1.0",
    "EventTime": "2020-01-11T00:09:53.109Z",
    "Payload": {"OrderChangeNotification": {
        "NotificationLevel": "OrderLevel", "SellerId": "A3TH9S8BH6GOGM",
        "AmazonOrderId": "903-8868176-2219830", "OrderChangeType": "BuyerRequestedChange",
        "OrderChangeTrigger": {"TimeOfOrderChange": "2022-11-29T19:42:04.284Z",
                               "ChangeReason": "Buyer Requested Cancel"},
        "Summary": {"MarketplaceId": "ATVPDKIKX0DER", "OrderStatus": "Unshipped"}}},
    "NotificationMetadata": {"ApplicationId": "app-id-1", "SubscriptionId": "subscription-id-1",
                             "PublishTime": "2020-07-13T19:42:04.284Z",
                             "NotificationId": "d0e9e693-c3ad-4373-979f-ed4ec98dd746"},
}


def notification(order_id: str, marketplace: str = US, kind: str = "ORDER_CHANGE") -> str:
    body = copy.deepcopy(EXAMPLE)
    body["NotificationType"] = kind
    change = body["Payload"]["OrderChangeNotification"]
    change["AmazonOrderId"] = order_id
    change["Summary"]["MarketplaceId"] = marketplace
    return json.dumps(body)


@pytest.fixture(scope="module")
def sqs_endpoint() -> Iterator[str]:
    saved = {name: os.environ.get(name) for name in AWS_ENV}
    os.environ.update(AWS_ENV)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def queue_url(sqs_endpoint: str) -> str:
    client = boto3.client("sqs", endpoint_url=sqs_endpoint, region_name="us-east-1")
    return str(client.create_queue(QueueName=f"orders-{uuid.uuid4().hex[:8]}")["QueueUrl"])


def send(queue_url: str, *bodies: str) -> None:
    client = boto3.client("sqs", endpoint_url=endpoint(queue_url, {})[0], region_name="us-east-1")
    for body in bodies:
        client.send_message(QueueUrl=queue_url, MessageBody=body)


def waiting(queue_url: str) -> int:
    client = boto3.client("sqs", endpoint_url=endpoint(queue_url, {})[0], region_name="us-east-1")
    attributes = client.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages",
                                            "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture(scope="module")
def config() -> Config:
    return require(load_config(REPO))


def source_for(config: Config, queue_url: str, marketplaces: str = US) -> receive.Source:
    env = {"CONNECTOR_AMAZON_NOTIFICATIONS_QUEUE_URL": queue_url,
           "CONNECTOR_AMAZON_MARKETPLACE_IDS": marketplaces}
    from connector.worker import partitions

    found = receive.sources(config, env, partitions(config, env))
    assert [s.system for s in found] == ["amazon"]
    return found[0]


def apply(config: Config, sandbox: Sandbox, state: str) -> Summary:
    summaries, _ = run_flows(config, [FLOW], state, sandbox.settings(), {}, poll_scale=0.0,
                             now=sandbox.clock.now)
    return summaries[0]


# --- without a queue ------------------------------------------------------------------------


def test_the_mapping_reads_the_specs_example(config: Config) -> None:
    """The shipped paths find the order and the marketplace in the spec's own example."""
    source = receive.Source("amazon", config.systems["amazon"].notifications,  # type: ignore[arg-type]
                            "http://q", {FLOW: frozenset({US}), "other": frozenset({""})})
    rows, problem = receive.route(source, json.dumps(EXAMPLE))
    assert problem == ""
    assert rows == [(FLOW, US, "903-8868176-2219830"), ("other", "", "903-8868176-2219830")]


@pytest.mark.parametrize(("body", "problem"), [
    ("{not json", "not JSON"),
    (notification("111-1", kind="FEED_PROCESSING_FINISHED"), "not accepted"),
    (json.dumps({"NotificationType": "ORDER_CHANGE", "Payload": {}}), "no order id at "),
    (notification("111-1", marketplace=MX), f"order 111-1: partition '{MX}'"),
])
def test_a_message_that_asks_for_nothing_says_why(config: Config, body: str,
                                                  problem: str) -> None:
    source = receive.Source("amazon", config.systems["amazon"].notifications,  # type: ignore[arg-type]
                            "http://q", {FLOW: frozenset({US})})
    rows, found = receive.route(source, body)
    assert rows == [] and found.startswith(problem)


def test_the_queue_url_names_endpoint_and_region() -> None:
    assert endpoint("https://sqs.eu-west-1.amazonaws.com/123/q", {}) == (
        "https://sqs.eu-west-1.amazonaws.com", "eu-west-1")
    assert endpoint("http://127.0.0.1:5000/123/q", {"AWS_REGION": "us-west-2"}) == (
        "http://127.0.0.1:5000", "us-west-2")
    with pytest.raises(Exception, match="not an SQS queue URL"):
        endpoint("sqs://nowhere", {})


def test_notifications_are_off_without_a_queue_url(config: Config) -> None:
    from connector.worker import partitions

    assert receive.sources(config, {}, partitions(config, {})) == []


# --- over SQS (moto's server) ---------------------------------------------------------------


def test_messages_queue_their_orders_and_a_run_applies_them(
        config: Config, queue_url: str, tmp_path: Path) -> None:
    """An order changed after the last run's window is not listed yet; its notification
    makes the next run read it by id and act, once."""
    state = f"sqlite:///{tmp_path / 'state.db'}"
    order_id = "115-0000005-0000001"
    with Sandbox() as sandbox:
        sandbox.add_amazon_order(order_id, "UNSHIPPED", at=sandbox.clock.now())
        sandbox.add_vtex_order(order_id, "payment-approved")
        sandbox.advance(300)
        apply(config, sandbox, state)  # the catch-up listing: cursor set, nothing to do
        sandbox.amazon.cancel(order_id, by="AMAZON")  # younger than the window's end
        apply(config, sandbox, state)  # the listing does not see it yet:
        assert sandbox.vtex.orders[f"AMZ-{order_id}-01"]["status"] == "payment-approved"
        send(queue_url, notification(order_id), notification("999-0000000-0000404"))
        reports: list[str] = []
        with open_store(state) as store:
            source = source_for(config, queue_url)
            assert receive.drain([(SqsQueue(queue_url, {}), source)], store,
                                 reports.append) == 2
            assert {(q.flow, q.partition, q.order_id) for q in store.queued(FLOW)} == {
                (FLOW, US, order_id), (FLOW, US, "999-0000000-0000404")}
        assert waiting(queue_url) == 0 and reports == []
        summary = apply(config, sandbox, state)
        again = apply(config, sandbox, state)
        assert sandbox.vtex.orders[f"AMZ-{order_id}-01"]["status"] == "canceled"
        with open_store(state) as store:
            assert store.queued(FLOW) == []
    assert summary.notified == 2 and summary.done >= 1, summary
    # an order the source does not know: reported, not a crash, and dropped
    assert any("999-0000000-0000404: notified, but amazon does not know" in item
               for item in summary.attention), summary.attention
    assert again.notified == 0 and again.done == 0


def test_a_message_for_another_marketplace_is_reported_and_deleted(
        config: Config, queue_url: str, tmp_path: Path) -> None:
    send(queue_url, notification("115-0000005-0000002", marketplace=MX), "{not json")
    reports: list[str] = []
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        source = source_for(config, queue_url)
        receive.drain([(SqsQueue(queue_url, {}), source)], store, reports.append)
        assert store.queued(FLOW) == []
    assert len(reports) == 2 and waiting(queue_url) == 0
    assert any(f"partition '{MX}'" in line and "dropped" in line for line in reports)
    assert any("not JSON" in line for line in reports)


class Crash(BaseException):
    """A process dying between the queue row's commit and the message's deletion."""


class CrashingQueue:
    """SqsQueue whose first delete dies (the row is committed already)."""

    def __init__(self, queue: SqsQueue) -> None:
        self.queue, self.url, self.crashed = queue, queue.url, False

    def receive(self, wait_seconds: int, *, max_messages: int = 10,
                visibility_timeout: int | None = None) -> list[Message]:
        return self.queue.receive(wait_seconds, max_messages=max_messages,
                                  visibility_timeout=visibility_timeout)

    def delete(self, message: Message) -> None:
        if not self.crashed:
            self.crashed = True
            raise Crash
        self.queue.delete(message)


def test_a_crash_between_queueing_and_deleting_redelivers_and_acts_once(
        config: Config, queue_url: str, tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path / 'state.db'}"
    order_id = "115-0000005-0000003"
    with Sandbox() as sandbox:
        sandbox.add_amazon_order(order_id, "UNSHIPPED", at=sandbox.clock.now())
        sandbox.add_vtex_order(order_id, "payment-approved")
        sandbox.advance(300)
        apply(config, sandbox, state)
        sandbox.amazon.cancel(order_id, by="AMAZON")
        send(queue_url, notification(order_id))
        source = source_for(config, queue_url)
        crashing = CrashingQueue(SqsQueue(queue_url, {}))
        with open_store(state) as store, pytest.raises(Crash):
            # visible again at once, as after its visibility timeout
            receive.receive_once(crashing, source, store, print, wait_seconds=1,
                                 visibility_timeout=0)
        assert waiting(queue_url) == 1  # not deleted: SQS delivers it again
        first = apply(config, sandbox, state)  # the committed row is worked on already
        with open_store(state) as store:
            assert receive.drain([(crashing, source)], store, print) == 1  # redelivered
            assert [q.order_id for q in store.queued(FLOW)] == [order_id]
        assert waiting(queue_url) == 0
        second = apply(config, sandbox, state)
        cancels = [r for r in sandbox.requests
                   if r.method == "POST" and r.path.endswith(f"AMZ-{order_id}-01/cancel")]
    assert first.notified == 1 and first.done == 1, first
    assert second.notified == 1 and second.done == 0, second  # read again, nothing to do
    assert len(cancels) == 1
    assert flow_key(FLOW, US) == f"{FLOW}@{US}"


# --- connector worker on PostgreSQL ---------------------------------------------------------


def test_worker_once_receives_then_runs_the_notified_orders(queue_url: str, pg_url: str) -> None:
    """`worker --once` empties the queue into the state store, then every partition's run
    reads its notified orders: the cancellation is younger than any listing window."""
    order_id = "115-0000005-0000004"
    with Sandbox() as sandbox:
        sandbox.amazon.feeds_api.polls_before_done = 0
        sandbox.add_amazon_order(order_id, "UNSHIPPED")
        sandbox.add_vtex_order(order_id, "payment-approved")
        sandbox.advance(600)  # ahead of the worker's clock: no listing window reaches it
        sandbox.amazon.cancel(order_id, by="AMAZON")
        send(queue_url, notification(order_id), notification(order_id, marketplace=MX))
        env = {**sandbox_env(sandbox), "CONNECTOR_AMAZON_NOTIFICATIONS_QUEUE_URL": queue_url}
        result = worker_command(pg_url, env, "--once")
        status = sandbox.vtex.orders[f"AMZ-{order_id}-01"]["status"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"worker: notifications of amazon from {queue_url}" in result.stdout
    assert "worker: 2 notification(s) received" in result.stdout
    assert f"partition '{MX}'" in result.stdout  # reported, dropped, no crash
    line = next(x for x in bare(result.stdout).splitlines() if x.startswith(f"{FLOW}@{US}:"))
    assert "1 notified" in line, result.stdout
    assert status == "canceled"
    assert waiting(queue_url) == 0
    with open_store(pg_url) as store:
        assert store.queued(FLOW) == [] and store.queued("amazon-to-adobe-commerce") == []


def test_a_running_worker_runs_a_notified_partition_at_once(queue_url: str, pg_url: str) -> None:
    """No scheduling tick for hours: the notification itself starts the partition's run."""
    import queue as lines_queue
    import signal
    import subprocess
    import sys
    import threading
    import time

    order_id = "115-0000005-0000005"
    with Sandbox() as sandbox:
        sandbox.amazon.feeds_api.polls_before_done = 0
        sandbox.add_amazon_order(order_id, "UNSHIPPED")
        sandbox.add_vtex_order(order_id, "payment-approved")
        sandbox.advance(600)
        sandbox.amazon.cancel(order_id, by="AMAZON")
        env = {**sandbox_env(sandbox), "CONNECTOR_AMAZON_NOTIFICATIONS_QUEUE_URL": queue_url,
               "CONNECTOR_STATE": pg_url}
        base = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "connector", "worker", "--project", str(REPO),
             "--every", "21600"], env={**base, **env}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        lines: lines_queue.Queue[str] = lines_queue.Queue()
        assert proc.stdout is not None
        stdout_reader = threading.Thread(
            target=lambda: [lines.put(bare(x)) for x in proc.stdout],  # type: ignore[union-attr]
            daemon=True)
        stdout_reader.start()
        # stderr read as it comes, too: a full pipe would stop the worker mid-run
        errors: list[str] = []
        stderr_reader = threading.Thread(
            target=lambda: errors.extend(proc.stderr),  # type: ignore[arg-type]
            daemon=True)
        stderr_reader.start()
        seen: list[str] = []
        try:
            # each wait bounded on its own: a loaded machine may spend much of one on start-up
            deadline = time.monotonic() + 90
            while not any(x.startswith("worker: notifications of amazon") for x in seen):
                seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
            send(queue_url, notification(order_id))
            deadline = time.monotonic() + 90
            while not any(x.startswith(f"{FLOW}@{US}:") for x in seen):
                seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
            status = sandbox.vtex.orders[f"AMZ-{order_id}-01"]["status"]
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            stderr_reader.join(timeout=10)
            err = "".join(errors)
        finally:
            proc.kill()
            proc.wait()
            stdout_reader.join(timeout=10)
            stderr_reader.join(timeout=10)
            for pipe in (proc.stdout, proc.stderr):
                pipe.close()
    line = next(x for x in seen if x.startswith(f"{FLOW}@{US}:"))
    assert "1 notified" in line, seen
    assert status == "canceled"
    assert proc.returncode == 0, err
