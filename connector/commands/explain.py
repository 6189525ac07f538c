"""`connector explain ORDER.json`: each rule's verdict for one order and why, offline.

The order may be the source system's raw record as its API returns it (normalised with the
mapping) or a canonical order. The chosen actions are shown with their rendered HTTP requests,
secrets masked; later steps that need earlier responses show placeholders.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from connector import conditions, templates
from connector.diagnostics import did_you_mean
from connector.errors import ConnectorError, UsageError
from connector.evaluate import rule_context
from connector.execute.batch import batch_context
from connector.normalise import canonical, looks_canonical, normalise
from connector.model import Action, System
from connector.printable import printable
from connector.plan import FlowRuntime, Planned, plan_call, prepare
from connector.validate import checked
from connector.render import RenderedRequest, render_request, show


class _Later(dict[str, Any]):
    """Stands for a value only known at run time (an earlier step's response)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def __missing__(self, key: str) -> _Later:
        return _Later(f"{self.name}.{key}")

    def __str__(self) -> str:
        return f"<{self.name}>"


def read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
    except RecursionError:  # the decoder recurses per level: a thousand levels exhaust it
        raise UsageError(f"{path}: JSON nested deeper than {MAX_DEPTH} levels, which no order "
                         "record is (save one order record as its API returns it)") from None
    # depth first: a decoder that does not recurse per level (Python 3.13's) hands back
    # what older ones refused, and the deep list is then the finding, not its type
    where = too_deep(data)
    if where is not None:
        raise UsageError(f"{path}: JSON nested deeper than {MAX_DEPTH} levels at {where}, which "
                         "no order record is (save one order record as its API returns it)")
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object (one order)")
    return data


#: Deepest nesting of an order file: marketplaces' records are under ten levels; templates
#: and conditions walking a record thousands deep would exhaust the interpreter's stack.
MAX_DEPTH = 64


def too_deep(data: Any) -> str | None:
    """Where `data` (decoded JSON) nests deeper than `MAX_DEPTH`, as a path, or None.
    Iterative, so that the check itself cannot exhaust the stack."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            return where or "the top level"
        if isinstance(value, dict):
            stack.extend((v, f"{where}.{k}" if where else str(k), depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))
    return None


def _order(runtime: FlowRuntime, data: Mapping[str, Any], system: str, path: Path) -> dict[str, Any]:
    sys = runtime.systems[system]
    for wrapper in ("order", "payload"):  # getOrder responses wrap the record
        inner = data.get(wrapper)
        if isinstance(inner, dict) and len(data) <= 2:
            data = inner
    try:
        order = canonical(data, sys) if looks_canonical(data) else normalise(sys, data)
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}") from None
    _readable(order, data, sys, path)
    return order


def _readable(order: Mapping[str, Any], data: Mapping[str, Any], system: System, path: Path) -> None:
    """Refuse a record explain cannot read, naming what is missing, rather than explain `None`.

    An order of another API version, or a whole list response, normalises to an order with
    no id and no status: every rule would fail and the output would look like a verdict.
    """
    raw = order.get("raw") or {}
    fields = system.normalise.fields
    if order.get("id") is None:
        where = f"the mapping reads it from '{fields.get('id', 'id')}'" if raw else "no 'id' key"
        raise UsageError(f"{path}: explain cannot read this as one {system.name} order: no order "
                         f"id ({where}){_shape(data)}")
    status = order.get("status")
    declared = system.domains.status
    if status is None or (declared and status not in declared):
        where = (f"read from '{fields.get('status', 'status')}'" if raw else "the 'status' key")
        got = "no status" if status is None else f"status {status!r}"
        raise UsageError(f"{path}: order {order['id']}: {got} ({where}) is not one the "
                         f"{system.name} mapping declares: {', '.join(declared)}{_shape(data)}")


def _shape(data: Mapping[str, Any]) -> str:
    """What the record looks like instead: a list response, or its top-level keys."""
    for key, value in data.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            count = f"{len(value)} record{'s' if len(value) != 1 else ''}"
            return (f"; this looks like a list response ('{key}' holds {count}): "
                    f"save one of them to a file and explain that")
        if isinstance(value, dict):
            inner = _shape(value)
            if "list response" in inner:
                return inner.replace("('", f"('{key}.", 1)
    keys = ", ".join(sorted(map(str, data))[:8]) or "none"
    return f"; the record's top-level keys are: {keys}"


def _placeholders(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (f"<{k}>" if v is None else v) for k, v in values.items()}


def _run_time_steps(action: Action) -> _Later:
    """Every step's declared outputs as placeholders (`<steps.create_feed.feedId>`)."""
    steps = _Later("steps")
    for step in action.steps:
        outputs = _Later(f"steps.{step.name}")
        outputs.update({name: f"<steps.{step.name}.{name}>" for name in step.outputs})
        steps[step.name] = outputs
    return steps


def _finish(value: Any) -> Any:
    """Run-time values left in a rendered body shown as their placeholder, not as `{}`."""
    if isinstance(value, _Later):
        return str(value)
    if isinstance(value, dict):
        return {k: _finish(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finish(v) for v in value]
    return value


def _shown_request(rendered: RenderedRequest, url_from: str) -> RenderedRequest:
    url = f"<{url_from}>" if url_from else rendered.url
    for placeholder in ("%3C", "%3E"):  # a placeholder in a path segment, shown as written
        url = url.replace(placeholder, {"%3C": "<", "%3E": ">"}[placeholder])
    return dataclasses.replace(rendered, url=url, json=_finish(rendered.json))


def describe_steps(runtime: FlowRuntime, planned: Planned) -> list[str]:
    """Rendered requests of an action's steps; run-time values shown as placeholders.

    A step that depends on earlier responses (the feed XML uploaded to a presigned URL, a
    createFeed naming the uploaded document) is rendered too, the values only known at run
    time written `<steps.NAME.OUTPUT>`.
    """
    if planned.action is None:
        return []
    system = runtime.systems[planned.system]
    settings = _placeholders(runtime.system_settings[planned.system])
    context = {**planned.context, "steps": _run_time_steps(planned.action), "token": "<access token>"}
    batch = planned.action.batch
    if batch is not None and batch.declared:  # shown as a batch of this one order
        group = templates.render_value(batch.group_by, planned.context) if batch.group_by else ""
        context.update(batch_context([planned], str(group), "<batch.id>", "<batch.opened_at>"))
    lines = []
    for step in planned.action.steps:
        if step.when is not None and not conditions.compile_condition(step.when)(context):
            lines.append(f"step {step.name}: skipped ({conditions.describe(step.when)} is false)")
            continue
        request, auth = step.request, system.auth.headers
        if request.url_from:  # a presigned URL from an earlier response: no auth headers sent
            request, auth = dataclasses.replace(request, url_from="", path="/"), {}
        try:
            rendered = render_request(system, request, context, settings, auth)
            text = show(_shown_request(rendered, step.request.url_from), runtime.redact)
        except ConnectorError as exc:
            text = f"(rendered at run time: {runtime.redact(str(exc))})"
        lines.append(f"step {step.name}:")
        lines.extend("  " + line for line in text.splitlines())
    return lines


def run(
    root: Path,
    order_file: Path,
    flow_name: str | None,
    target_file: Path | None,
    overrides: Sequence[str],
    out: TextIO,
) -> int:
    config = checked(root)
    if flow_name is None:
        if len(config.flows) != 1:
            raise UsageError(f"several flows: choose one with --flow ({', '.join(sorted(config.flows))})")
        flow_name = next(iter(config.flows))
    if flow_name not in config.flows:
        raise UsageError(f"no flow {flow_name!r}{did_you_mean(flow_name, config.flows)}")
    settings: dict[str, Any] = {}
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--set {item!r}: expected NAME=VALUE")
        settings[name] = value
    runtime = prepare(config, flow_name, os.environ, settings)

    def say(text: str) -> None:
        print(printable(text), file=out)  # order data printed as data

    flow = runtime.flow
    order = _order(runtime, read_json(order_file), flow.source, order_file)
    target = _order(runtime, read_json(target_file), flow.target, target_file) if target_file else None
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    context = rule_context(order, target, runtime.settings, runtime.public_settings, {}, now)
    say(f"order {order['id']} ({flow.source}): status={order['status']} actor={order['actor']} "
        f"fulfilment={order['fulfilment']}")
    say(f"target ({flow.target}): " + (f"{target['id']} status={target['status']}" if target else "none"))
    say(f"flow {flow.name} (hit policy {flow.hit_policy})")
    chosen = []
    for verdict in runtime.compiled.explain(context):
        rule = verdict.rule
        if verdict.matched:
            mark = "MATCH"
            chosen.append(rule)
        elif not verdict.considered:
            mark = "skip "
        else:
            mark = "no   "
        say(f"  {mark} {rule.id} ({rule.where})")
        if not verdict.considered:
            say("        not evaluated: an earlier rule matched (hit policy first)")
            continue
        for reason in verdict.reasons:
            say(f"        {'because' if verdict.matched else 'failed:'} {runtime.redact(reason)}")
    if not chosen:
        say("no rule matched: nothing would be done")
        return 0
    say("actions:")
    for rule in chosen:
        for call in rule.then:
            planned = plan_call(runtime, rule, call, context, order, target, {}, now)
            state = "would run" if planned.runnable else "skipped: precondition " + "; ".join(planned.reasons)
            say(f"  {planned.name} {json.dumps(planned.args, default=str)} [{rule.id}] {state}")
            for line in describe_steps(runtime, planned):
                say(f"      {line}")
    return 0
