"""`connector test --cassette FILE`: a recorded run (`apply --record`) replayed as a test.

The recorded flows run again, in apply mode (plan mode for a `plan --record` cassette), against
the cassette alone: vcrpy record mode `none`, so every request must be answered from the file
and nothing reaches the network. The run gets a fresh temporary state store (the recorded run's
store is not in the cassette), the recorded run's time as `now` (the `started_at` that
`connector.transport.cassette.recorder` writes), `poll_scale` 0 and no sleeping, and one order at a time so
that requests identical across orders (createFeedDocument) meet their recorded answers in order.

Settings are the project's (connector.yaml, the cassette's recorded `environment` if any, the
process environment), except that every system's `base_url`
becomes `http://<system>.replay.invalid` and any other URL setting (the LWA `token_url`) keeps
only its path on that host, and that required settings which are not set get placeholders
(`replay-<system>-<setting>`, a list `[REPLAY]`): the secrets were scrubbed from the cassette.

A replayed request matches a recorded one when all of these hold:
* method: equal;
* path: equal, or the recorded path ends with the replayed one (which starts with `/`): the
  recorded base URL's path (`/amazon` for the sandbox, `/rest/default` for a Commerce store) is a
  prefix the replay does not know. Scheme, host and port are ignored (the sandbox's is random);
* query: for GET, the same parameter names with the same values, except that two values which
  are both date-times (ISO-8601, or Magento's `YYYY-MM-DD hh:mm:ss`) always match: a listing
  window depends on the clock and on the recorded store's cursor, which a replay from a fresh
  store cannot reproduce. For other methods, equal (a presigned URL comes from a recorded answer);
* body: equal after the recording's scrubbing (`connector.transport.cassette`) is applied to the replayed
  request too, so a masked secret matches whatever value the replay sends; JSON bodies compare
  as data (key order and spacing do not matter).
Headers are not compared. Each recorded exchange answers once; equal requests in recorded order
(a run recorded with several orders at once may have interleaved two orders' equal requests,
e.g. createFeedDocument, otherwise: record such runs with `concurrency: 1`).

Time: every flow replays at `started_at`. A run that did not fix its clock started each flow a
little later than that; only a `now` rendered into a changing request's body (confirm_shipment's
fallback ship date) can show it, as a difference in that flow.

The verdict, per recorded flow: a request the recording does not hold is a *new request* (the
rules now do something the recorded run did not); it is answered with a 400 so that the run goes
on and reports every difference. A recorded changing request (POST, PUT, PATCH, DELETE; OAuth
token exchanges excepted) that the replay never made is a *missing request* (the rules no longer
do something they did); it belongs to the flow that played the nearest earlier exchange (flows
run one after the other, so their exchanges are contiguous). Recorded reads that were not made
again are not differences: a changed rule may need fewer reads.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from connector import runner
from connector.diagnostics import did_you_mean
from connector.errors import ConnectorError, HTTPError, UsageError
from connector.fetch import parse_iso
from connector.transport.http import Transport, new_client
from connector.plan import FlowRuntime, prepare
from connector.project import Config, resolve_settings
from connector.transport.cassette import Scrubber, read_metadata, scrub_request, scrub_text
from connector.state.store import StateStore, open_store

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PLACEHOLDER_HOST = "replay.invalid"
#: The answer to a request the cassette does not hold: a client error, so not retried, and
#: not a 404 (which a look-up reads as "no counterpart" and would plan differently from).
NOT_RECORDED = 400
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")
_GRANT = re.compile(r'(^|&)grant_type=|"grant_type"\s*:')


@dataclass
class ReplayCase:
    """One recorded flow's replay: passed when `lines` (the differences) is empty."""

    cassette: Path
    flow: str
    lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    played: set[int] = field(default_factory=set)  # indices of the recorded exchanges answered

    @property
    def passed(self) -> bool:
        return not self.lines


# --- matching ---------------------------------------------------------------------------------


def _text(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, bytes):
        return body.decode("utf-8", errors="replace")
    return str(body)


def _data(text: str) -> Any:
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _short(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _first_difference(new: Any, recorded: Any, where: str = "") -> str:
    """Where two bodies first differ, as `packageDetail.shipDate: "a" recorded, "b" now`."""
    if isinstance(new, dict) and isinstance(recorded, dict):
        for key in sorted(set(new) | set(recorded), key=str):
            if key not in new:
                return f"{where}{key}: recorded, not sent now"
            if key not in recorded:
                return f"{where}{key}: sent now, not recorded"
            if new[key] != recorded[key]:
                return _first_difference(new[key], recorded[key], f"{where}{key}.")
    if isinstance(new, list) and isinstance(recorded, list) and len(new) == len(recorded):
        for index, (one, other) in enumerate(zip(new, recorded)):
            if one != other:
                return _first_difference(one, other, f"{where}{index}.")
    return f"{where.rstrip('.') or 'body'}: {_short(recorded)} recorded, {_short(new)} now"


def body_difference(new: Any, recorded: Any, scrub: Callable[[str], str]) -> str | None:
    """None when the bodies match after scrubbing, else where they first differ."""
    one, other = _data(scrub(_text(new))), _data(scrub(_text(recorded)))
    return None if one == other else _first_difference(one, other)


def is_datetime(value: str) -> bool:
    return _DATETIME.fullmatch(value) is not None


def query_difference(method: str, new: Sequence[tuple[str, str]],
                     recorded: Sequence[tuple[str, str]]) -> str | None:
    """None when the queries match (the date-time rule for GET), else how they differ."""
    if method.upper() != "GET":
        return None if sorted(new) == sorted(recorded) else (
            f"query: {_short(sorted(recorded))} recorded, {_short(sorted(new))} now")
    mine: dict[str, list[str]] = {}
    theirs: dict[str, list[str]] = {}
    for name, value in new:
        mine.setdefault(name, []).append(value)
    for name, value in recorded:
        theirs.setdefault(name, []).append(value)
    if set(mine) != set(theirs):
        return f"query parameters: {sorted(theirs)} recorded, {sorted(mine)} now"
    for name in sorted(mine):
        values, wanted = sorted(mine[name]), sorted(theirs[name])
        same = len(values) == len(wanted) and all(
            a == b or (is_datetime(a) and is_datetime(b)) for a, b in zip(values, wanted))
        if not same:
            return f"query {name}: {_short(wanted)} recorded, {_short(values)} now"
    return None


def path_matches(new: str, recorded: str) -> bool:
    return recorded == new or (new.startswith("/") and new != "/" and recorded.endswith(new))


def matchers(scrub: Callable[[str], str]) -> dict[str, Callable[[Any, Any], None]]:
    """vcrpy matchers (incoming request, recorded request) raising AssertionError with the
    difference, so that vcrpy's closest-match report says what changed."""

    def replay_path(new: Any, recorded: Any) -> None:
        if not path_matches(new.path, recorded.path):
            raise AssertionError(f"path: {recorded.path} recorded, {new.path} now")

    def replay_query(new: Any, recorded: Any) -> None:
        difference = query_difference(new.method, new.query, recorded.query)
        if difference:
            raise AssertionError(difference)

    def replay_body(new: Any, recorded: Any) -> None:
        difference = body_difference(new.body, recorded.body, scrub)
        if difference:
            raise AssertionError(difference)

    return {"replay_path": replay_path, "replay_query": replay_query, "replay_body": replay_body}


# --- the run ----------------------------------------------------------------------------------


class _ReplayTransport(httpx.HTTPTransport):
    """Answers a request that the cassette does not hold with a 400 and reports it, instead of
    letting vcrpy's exception end the whole run at the first difference."""

    def __init__(self, report: Callable[[str], None], scrub: Callable[[str], str]) -> None:
        super().__init__()
        self._report = report
        self._scrub = scrub

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        from vcr.errors import CannotOverwriteExistingCassetteException

        try:
            return super().handle_request(request)  # vcrpy's player, patched on the class
        except CannotOverwriteExistingCassetteException as exc:
            self._report(self._describe(request, exc))
            return httpx.Response(NOT_RECORDED, request=request, json={"errors": [{
                "code": "NotInCassette", "message": "connector replay: not in the cassette"}]})

    def _describe(self, request: httpx.Request, exc: Exception) -> str:
        line = f"new request: {request.method} {self._scrub(request.url.path)}"
        # Asked of the cassette rather than read from the exception's newer attributes
        # (`reason`, `similar_requests`), which vcrpy releases for Python 3.10 lack.
        cassette, failed_request = getattr(exc, "cassette", None), getattr(exc, "failed_request", None)
        similar = (cassette.find_requests_with_most_matches(failed_request)
                   if cassette is not None and failed_request is not None else [])
        if similar and not similar[0][2]:
            return line + " (made more often than recorded)"
        if similar:
            _recorded, _ok, failed = similar[0]
            if len(failed) == 1 and failed[0][0] in ("replay_body", "replay_query"):
                return line + f" (a recorded one differs in {self._scrub(str(failed[0][1]))})"
        return line


def replay_settings(config: Config, names: Sequence[str],
                    environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Per system, the settings that point it at the placeholder host and fill what is
    required but unset (see the module docstring)."""
    systems = sorted({s for n in names for s in (config.flows[n].source, config.flows[n].target)
                      if s in config.systems})
    result: dict[str, dict[str, Any]] = {}
    for name in systems:
        system = config.systems[name]
        values = resolve_settings(system.settings, config.system_settings.get(name, {}), name,
                                  environ)
        host = f"http://{name}.{PLACEHOLDER_HOST}"
        overrides: dict[str, Any] = {}
        for key, spec in system.settings.items():
            value = values.get(key)
            if key == "base_url":
                overrides[key] = host
            elif isinstance(value, str) and value.startswith(("http://", "https://")):
                overrides[key] = host + urlsplit(value).path
            elif spec.required and value in (None, "", []):
                overrides[key] = ["REPLAY"] if spec.kind == "list" else f"replay-{name}-{key}"
        result[name] = overrides
    return result


def replay_run_settings(meta: Mapping[str, Any], now: datetime) -> runner.RunSettings:
    """The recorded run's command options, one order at a time (exchanges in a stable
    order) and without waiting; the flow's own options (retries included) come from the
    project, as in any run."""
    limit = meta.get("limit")
    clock = runner.SteppedClock(now, real=False)  # waits move it on, without waiting
    return runner.RunSettings(
        since=meta.get("since"), limit=int(limit) if limit else None,
        dry_run=meta.get("mode") == "plan", concurrency=1,
        poll_scale=float(meta.get("poll_scale") or 0.0),
        orders=tuple(str(order) for order in meta.get("orders") or ()),
        now=clock.now, sleep=clock.sleep)


def _run_flow(runtime: FlowRuntime, transport: Transport, store: StateStore,
              meta: Mapping[str, Any], now: datetime) -> None:
    runner.run_flow(runtime, transport, store, replay_run_settings(meta, now))


def _is_token_exchange(request: Any) -> bool:
    return _GRANT.search(_text(request.body)) is not None


def _flows(config: Config, cassette: Path, meta: Mapping[str, Any], flow: str | None) -> list[str]:
    recorded = [str(name) for name in meta.get("flows") or []]
    names = recorded or ([flow] if flow else sorted(config.flows))
    if flow is not None and flow not in names:
        raise UsageError(f"{cassette}: the recorded run has no flow {flow!r} (it ran "
                         f"{', '.join(names)}){did_you_mean(flow, names)}")
    return names


def replay(config: Config, cassette: Path, flow: str | None,
           environ: Mapping[str, str]) -> list[ReplayCase]:
    """Replay `cassette` and compare; one case per recorded flow (only `flow`'s when given,
    though every recorded flow runs, so that missing requests are told apart)."""
    import vcr

    if not cassette.is_file():
        raise UsageError(f"no cassette {cassette}")
    if flow is not None and flow not in config.flows:
        raise UsageError(f"no flow {flow!r}{did_you_mean(flow, config.flows)}")
    try:
        meta = read_metadata(cassette)
    except (ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise UsageError(f"{cassette} is not a vcrpy cassette: {exc}") from exc
    names = _flows(config, cassette, meta, flow)
    cases = {name: ReplayCase(cassette, name) for name in names}
    if meta.get("started_at"):
        now = parse_iso(str(meta["started_at"]))
    else:
        now = datetime.now(timezone.utc)
        cases[names[0]].notes.append("the cassette has no recorded start time (metadata "
                                     "started_at): replayed at the current time")
    runnable = [name for name in names if name in config.flows]
    for name in names:
        if name not in config.flows:
            cases[name].lines.append(f"flow {name!r} is not in the project any more"
                                     f"{did_you_mean(name, config.flows)}")
    # The recorded run's settings environment (metadata `environment`, e.g. a market), under
    # the process's own.
    recorded = meta.get("environment")
    if isinstance(recorded, dict):
        environ = {**{str(k): str(v) for k, v in recorded.items()}, **environ}
    overrides = replay_settings(config, runnable, environ)
    runtimes = [prepare(config, name, environ, system_overrides=overrides) for name in runnable]
    redact = runner.redactor(runtimes)
    scrubber = Scrubber(redact)
    player = vcr.VCR(record_mode="none",
                     before_record_request=lambda request: scrub_request(request, scrubber))
    for name, matcher in matchers(lambda text: scrub_text(text, scrubber)).items():
        player.register_matcher(name, matcher)
    current: list[ReplayCase] = []
    # No rate limits (None: the cassette answers at once) and no waits.
    transport = runner.new_transport(
        None, redact, sleep=lambda seconds: None,
        client=new_client(transport=_ReplayTransport(lambda line: current[-1].lines.append(line),
                                                     lambda text: scrub_text(text, scrubber))))
    with tempfile.TemporaryDirectory(prefix="connector-replay-") as tmp, \
            player.use_cassette(str(cassette), match_on=(
                "method", "replay_path", "replay_query", "replay_body")) as tape:
        store = open_store(f"sqlite:///{Path(tmp) / 'replay.db'}")
        try:
            for runtime in runtimes:
                case = cases[runtime.flow.name]
                current.append(case)
                before = Counter(tape.play_counts)
                try:
                    _run_flow(runtime, transport, store, meta, now)
                except (HTTPError, ConnectorError) as exc:
                    case.lines.append(f"error: {redact(str(exc))}")
                case.played = {i for i, n in tape.play_counts.items() if n > before[i]}
        finally:
            transport.close()
            store.close()
        _missing(tape.data, tape.play_counts, [cases[r.flow.name] for r in runtimes])
    return [cases[flow]] if flow is not None else list(cases.values())


def _missing(data: Sequence[tuple[Any, Any]], play_counts: Mapping[int, int],
             ran: Sequence[ReplayCase]) -> None:
    """Report each recorded changing request that was not replayed under its flow."""
    if not ran:
        return
    starts = sorted((min(case.played), index, case) for index, case in enumerate(ran)
                    if case.played)
    for index, (request, _response) in enumerate(data):
        if play_counts.get(index, 0) or request.method.upper() not in MUTATING \
                or _is_token_exchange(request):
            continue
        owner = ran[0]
        for start, _order, case in starts:
            if start <= index:
                owner = case
        owner.lines.append(f"missing request: {request.method} {request.path}")
