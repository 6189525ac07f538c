"""connector.worker.stop: a real worker subprocess told to stop mid-run stops at a safe point, within
its --stop-timeout, without a traceback; told twice, it stops at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from postgres_helpers import pg_url, sql  # noqa: F401 (pg_url: a fixture)

from connector.project import env_name
from connector.worker import bare

REPO = Path(__file__).resolve().parent.parent


def one_flow_project(root: Path, flow: str) -> Path:
    """The shipped project with `flow` alone: the worker runs that flow's partitions at once
    instead of reaching them after the other flows' minutes of work."""
    import shutil

    import yaml

    config = yaml.safe_load((REPO / "connector.yaml").read_text(encoding="utf-8"))
    config["flows"] = {flow: config["flows"][flow]}
    for folder in ("mappings", "rules"):
        shutil.copytree(REPO / folder, root / folder)
    (root / "connector.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return root


@contextmanager
def busy_worker(url: str, *args: str, latency: float = 0.2, project: Path = REPO,
                ready: str = "SELECT count(*) > 0 FROM leases WHERE released = 0",
                ) -> Iterator[tuple[subprocess.Popen[str], Any]]:
    """A worker on a slow sandbox with many orders, once `ready` (by default: once a
    partition runs): stopping it now interrupts runs that would go on for minutes."""
    from connector.sandbox import Sandbox

    with Sandbox(latency=latency, orders=400) as sandbox:
        sandbox.amazon.feeds_api.polls_before_done = 0
        env = {env_name(system, name): str(value)
               for system, values in sandbox.settings().items() for name, value in values.items()}
        base = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "connector", "worker", "--project", str(project), *args],
            env={**base, **env, "CONNECTOR_STATE": url}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(600):
                if proc.poll() is not None:
                    break
                if _table(url) and sql(url, ready) == [(True,)]:
                    break
                time.sleep(0.1)
            assert proc.poll() is None, proc.communicate()
            yield proc, sandbox
        finally:
            proc.kill()
            proc.wait()


def _table(url: str) -> bool:
    return sql(url, "SELECT to_regclass('leases') IS NOT NULL") == [(True,)]


def test_sigterm_stops_running_partitions_at_their_next_order(pg_url: str, tmp_path: Path
                                                              ) -> None:
    # amazon-to-vtex has begun acting on its 400 orders: minutes of work are left
    project = one_flow_project(tmp_path, "amazon-to-vtex")
    with busy_worker(pg_url, "--every", "60", "--stop-timeout", "20", project=project,
                     ready="SELECT count(*) > 0 FROM ledger WHERE flow = 'amazon-to-vtex'"
                     ) as (proc, _):
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in out + err, err
    assert "worker: SIGTERM: stopping; running partitions" in out
    # every run ended by itself (its lease released), none was failed by a lost heartbeat
    assert sql(pg_url, "SELECT count(*) FROM leases WHERE released = 0") == [(0,)]
    assert sql(pg_url, "SELECT count(*) FROM procrastinate_jobs WHERE status IN "
                       "('failed', 'doing')") == [(0,)]
    # stopped between orders: nothing pending, and the cursor did not move past the orders
    # it left (this first run had none: the next run lists them all again)
    assert sql(pg_url, "SELECT order_id, action FROM ledger WHERE status = 'pending' AND "
                       "flow = 'amazon-to-vtex'") == [], out
    assert sql(pg_url, "SELECT count(*) FROM cursors WHERE flow = 'amazon-to-vtex@ATVPDKIKX0DER'"
               ) == [(0,)]
    assert any(line.startswith("amazon-to-vtex@ATVPDKIKX0DER: ") for line in bare(out).splitlines())


def test_a_second_signal_stops_at_once(pg_url: str) -> None:
    # each request takes 3 s: the runs are far from their next order when told twice
    with busy_worker(pg_url, "--every", "60", "--stop-timeout", "600", latency=3.0) as (proc, _):
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT, out + err
    assert "Traceback" not in out + err, err
    assert "worker: SIGINT again: stopping at once" in out
