"""`connector explain ORDER.json`: each rule's verdict for one order and why, offline.

The order may be the source system's raw record as its API returns it (normalised with the
mapping) or a canonical order. The chosen actions are shown with their rendered HTTP requests,
secrets masked; later steps that need earlier responses show placeholders.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from connector import conditions
from connector.diagnostics import did_you_mean
from connector.errors import ConnectorError, UsageError
from connector.evaluate import rule_context
from connector.normalise import canonical, looks_canonical, normalise
from connector.plan import FlowRuntime, Planned, plan_call, prepare
from connector.project import load_config, require
from connector.render import render_request, show


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
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object (one order)")
    return data


def _order(runtime: FlowRuntime, data: Mapping[str, Any], system: str) -> dict[str, Any]:
    sys = runtime.systems[system]
    for wrapper in ("order", "payload"):  # getOrder responses wrap the record
        inner = data.get(wrapper)
        if isinstance(inner, dict) and len(data) <= 2:
            data = inner
    return canonical(data, sys) if looks_canonical(data) else normalise(sys, data)


def _placeholders(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (f"<{k}>" if v is None else v) for k, v in values.items()}


def describe_steps(runtime: FlowRuntime, planned: Planned) -> list[str]:
    """Rendered requests of an action's steps; run-time values shown as placeholders."""
    if planned.action is None:
        return []
    system = runtime.systems[planned.system]
    settings = _placeholders(runtime.system_settings[planned.system])
    context = {**planned.context, "steps": _Later("steps"), "token": "<access token>"}
    lines = []
    for step in planned.action.steps:
        if step.when is not None and not conditions.compile_condition(step.when)(context):
            lines.append(f"step {step.name}: skipped ({conditions.describe(step.when)} is false)")
            continue
        try:
            request = render_request(system, step.request, context, settings, system.auth.headers)
            text = show(request, runtime.redact)
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
    config = require(load_config(root))
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
    flow = runtime.flow
    order = _order(runtime, read_json(order_file), flow.source)
    target = _order(runtime, read_json(target_file), flow.target) if target_file else None
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    context = rule_context(order, target, runtime.settings, runtime.public_settings, {}, now)
    print(f"order {order['id']} ({flow.source}): status={order['status']} actor={order['actor']} "
          f"fulfilment={order['fulfilment']}", file=out)
    print(f"target ({flow.target}): " + (f"{target['id']} status={target['status']}" if target else "none"),
          file=out)
    print(f"flow {flow.name} (hit policy {flow.hit_policy})", file=out)
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
        print(f"  {mark} {rule.id} ({rule.where})", file=out)
        if not verdict.considered:
            print("        not evaluated: an earlier rule matched (hit policy first)", file=out)
            continue
        for reason in verdict.reasons:
            print(f"        {'because' if verdict.matched else 'failed:'} {runtime.redact(reason)}", file=out)
    if not chosen:
        print("no rule matched: nothing would be done", file=out)
        return 0
    print("actions:", file=out)
    for rule in chosen:
        for call in rule.then:
            planned = plan_call(runtime, rule, call, context, order, target, {}, now)
            state = "would run" if planned.runnable else "skipped: precondition " + "; ".join(planned.reasons)
            print(f"  {planned.name} {json.dumps(planned.args, default=str)} [{rule.id}] {state}",
                  file=out)
            for line in describe_steps(runtime, planned):
                print(f"      {line}", file=out)
    return 0
