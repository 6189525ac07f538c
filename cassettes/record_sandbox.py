"""Record the sandbox cassettes: one shipped flow's run against the built-in sandbox each.

    python cassettes/record_sandbox.py                 # every flow
    python cassettes/record_sandbox.py amazon-to-vtex  # one (mx-walmart-to-vtex: México's)

Each cassette is what `connector apply --sandbox --flow X --record FILE` writes, made
reproducible so that re-recording after an intended change gives a reviewable diff:
* a fixed clock (`FIXED`) for the sandbox and the engine, saved as the run's `started_at`;
* one order at a time (concurrency 1), so the exchanges are in a stable order;
* the sandbox's random ids (uuid4: request ids, receipts, feed documents) drawn from a seeded
  generator, the servers' `Date` headers set to the fixed clock, and the sandbox's random port
  written as `connector sandbox`'s default, 8765 (the replay ignores hosts and ports).
The access tokens and presigned-URL signatures the sandbox makes up are random too, but the
recorder masks them. `connector test --cassette cassettes/sandbox-<flow>.yaml` replays one.
"""

from __future__ import annotations

import contextlib
import random
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from unittest import mock

from vcr.serializers import yamlserializer

from connector.runner import run_flows
from connector.engine import Summary
from connector.plan import prepare
from connector.project import load_config, require
from connector.transport.cassette import recorder
from connector.render import Redactor
from connector.sandbox import Sandbox

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIXED = datetime(2026, 3, 2, 12, 0, 0, tzinfo=timezone.utc)
STABLE_NETLOC = "127.0.0.1:8765"
FLOWS = ("amazon-to-vtex", "amazon-to-adobe-commerce", "adobe-commerce-to-amazon",
         "walmart-to-vtex", "walmart-to-adobe-commerce", "adobe-commerce-to-walmart")


#: Walmart México: the Walmart flows again with market mx (the mapping's mx variant) on the
#: sandbox's México seeds, recorded as sandbox-mx-<flow>.yaml; replayed with
#: CONNECTOR_WALMART_MARKET=mx.
MX_FLOWS = ("walmart-to-vtex", "walmart-to-adobe-commerce", "adobe-commerce-to-walmart")
MX = {"CONNECTOR_WALMART_MARKET": "mx"}


def cassette_path(flow: str, market: str = "") -> Path:
    return HERE / f"sandbox-{market + '-' if market else ''}{flow}.yaml"


@contextlib.contextmanager
def _seeded_uuids(seed: int = 0) -> Iterator[None]:
    """uuid4 from a seeded generator: the same ids on every recording."""
    rng = random.Random(seed)
    with mock.patch.object(uuid, "uuid4", lambda: uuid.UUID(int=rng.getrandbits(128), version=4)):
        yield


def _stabilise(path: Path, netloc: str) -> None:
    """Response `Date` headers come from the server's wall clock: set them to `FIXED`; the
    sandbox's port is random: write it as 8765."""
    data = yamlserializer.deserialize(path.read_text().replace(netloc, STABLE_NETLOC))
    stamp = format_datetime(FIXED, usegmt=True)
    for interaction in data["interactions"]:
        headers = interaction["response"]["headers"]
        for name in headers:
            if name.lower() == "date":
                headers[name] = [stamp]
    path.write_text(yamlserializer.serialize(data))


def record(flow: str, path: Path, root: Path = REPO, environ: dict[str, str] | None = None
           ) -> Summary:
    """Run `flow` of the project at `root` on a fresh sandbox, recording into `path`
    (`environ`: the settings' environment, e.g. MX)."""
    environ = environ or {}
    config = require(load_config(root))
    config.flow_options[flow] = {**config.flow_options.get(flow, {}), "concurrency": 1}
    mexico = environ.get("CONNECTOR_WALMART_MARKET") == "mx"
    with _seeded_uuids(), Sandbox(now=lambda: FIXED, walmart_mx=mexico) as sandbox, \
            tempfile.TemporaryDirectory(prefix="connector-record-") as tmp:
        settings = sandbox.settings()
        runtime = prepare(config, flow, environ, system_overrides=settings)
        redact = runtime.redact  # its secrets, and the mappings' secret headers by name
        with recorder(path, redact, started_at=FIXED,
                      meta={"flows": [flow], "mode": "apply", **({"environment": environ}
                                                                  if environ else {}),
                            "recorded_with": "cassettes/record_sandbox.py: the built-in sandbox, "
                                             "fixed clock, concurrency 1"}):
            summaries, _ = run_flows(config, [flow], f"sqlite:///{Path(tmp) / 'state.db'}",
                                     settings, environ, poll_scale=0.0, now=sandbox.clock.now)
        netloc = sandbox.base_url.split("://", 1)[1]
        if sandbox.errors:
            raise RuntimeError(f"the sandbox failed while recording {flow}: {sandbox.errors!r}")
    _stabilise(path, netloc)
    return summaries[0]


def main(argv: Sequence[str]) -> int:
    runs = [(flow, "") for flow in argv or FLOWS if not flow.startswith("mx-")] + [
        (flow, "mx") for flow in MX_FLOWS if not argv or f"mx-{flow}" in argv]
    for flow, market in runs:
        path = cassette_path(flow, market)
        summary = record(flow, path, environ=MX if market else None)
        print(f"{path.relative_to(REPO)}: {summary.orders} order(s), "
              f"{summary.done} action(s) done, {summary.failed} failed")
        if summary.failed or summary.errors:
            print("\n".join(f"  failed: {e}" for e in summary.errors))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
