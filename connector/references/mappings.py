"""References in mappings: the settings, step outputs, arguments and order paths that a
system's connection, listings, look-ups, notifications and actions read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from connector.build import listings_at
from connector.diagnostics import did_you_mean
from connector.load import Loaded, PathKey, walk
from connector.model import System
from connector.references.checker import Checker

STEP_NAMES = ("order", "source", "target", "args", "settings", "steps", "outputs", "now")
REQUEST_FIELDS = ("path", "query", "headers", "json", "form", "content")


class MappingChecker(Checker):
    """The checks of one mapping file (a system)."""

    def mapping(self, system: System, doc: Loaded) -> None:
        data = doc.data

        def setting_path(ref: str) -> str | None:
            parts = ref.split(".")
            if parts[0] == "settings" and len(parts) > 1 and parts[1] not in system.settings:
                return f"'{parts[1]}' is not a setting of {system.name}{did_you_mean(parts[1], system.settings)}"
            return None

        def strings(base: PathKey, names: Iterable[str], kind_for: Any = None, check: Any = setting_path) -> None:
            node = data
            for p in base:
                node = node[p]
            for sub, value in walk(node, base):
                if isinstance(value, str):
                    self.template(doc, sub, value, names, check,
                                  kind=kind_for(sub) if kind_for else "text")

        def request_kind(p: PathKey) -> str:
            return "path" if "path" in p else "xml" if "content" in p else "text"

        conn = data["connection"]
        strings(("connection", "base_url"), ("settings",))
        if "rate_limits_account" in conn:
            strings(("connection", "rate_limits_account"), ("settings",))
        for key in ("headers",):
            if key in conn:
                strings(("connection", key), ("settings", "token"))
        auth = conn.get("auth") or {}
        if "headers" in auth:
            strings(("connection", "auth", "headers"), ("settings", "token"))
        if "token_request" in auth:
            strings(("connection", "auth", "token_request"), ("settings",), request_kind)
        orders = data.get("orders") or {}
        for at, listing in listings_at(orders):
            strings(at + ("request",), ("settings", "window"), request_kind)
            for key, expr in listing["pagination"].items():
                if key in ("items", "next_token", "total_pages", "next_query", "total"):
                    self.jmespath(doc, at + ("pagination", key), expr)
            self.listing(doc, listing, at)
        if "get" in orders:
            strings(("orders", "get", "request"), ("settings", "id"), request_kind)
            self.jmespath(doc, ("orders", "get", "found"), orders["get"]["found"])
        for other, spec in (orders.get("lookup") or {}).items():
            strings(("orders", "lookup", other, "request"), ("settings", "order"), request_kind)
            self.jmespath(doc, ("orders", "lookup", other, "found"), spec["found"])
        notes = data.get("notifications") or {}
        if notes:
            strings(("notifications", "queue_url"), ("settings",))
            for key in ("order_id", "partition", "accept"):
                if key in notes:
                    self.jmespath(doc, ("notifications", key), notes[key])
            if "get" not in orders:
                self.add(doc, ("notifications",), "notifications-without-get",
                         "notifications need orders.get: each notified order is read again "
                         "by its id", key=True)
        for sub, value in walk(data["normalise"], ("normalise",)):
            if isinstance(value, str) and (len(sub) == 2 or sub[-1] == "path" or sub[1] in ("attributes",) and len(sub) == 3
                                           or (sub[1] == "items" and len(sub) == 4)):
                self.jmespath(doc, sub, value)
        for name, action in system.actions.items():
            self.action(system, name, action, doc, strings, request_kind)

    def listing(self, doc: Loaded, listing: Mapping[str, Any], at: PathKey = ("orders", "list")) -> None:
        """A pagination or fan-out declaration the fetch stage could not follow."""
        pagination = listing["pagination"]
        kinds = [k for k in ("next_token", "next_query", "page_param", "offset_param") if k in pagination]
        if len(kinds) > 1:
            self.add(doc, at + ("pagination",), "pagination-incomplete",
                     f"pagination declares {' and '.join(kinds)}: one kind per listing",
                     "next_token + token_param, next_query, page_param (+ total_pages), or "
                     "offset_param (+ total)", key=True)
        if "next_token" in pagination and "token_param" not in pagination:
            self.add(doc, at + ("pagination", "next_token"), "pagination-incomplete",
                     "next_token without token_param: the token is read but never sent back",
                     "token_param: the query parameter that carries the token", key=True)
        fan_out = listing.get("fan_out")
        if fan_out is not None and fan_out not in (listing["request"].get("query") or {}):
            self.add(doc, at + ("fan_out",), "unknown-fan-out",
                     f"fan_out names {fan_out!r}, which is not a query parameter of the "
                     "listing request", "declare it under request.query (a list template)")

    def action(self, system: System, name: str, action: Any, doc: Loaded, strings: Any, request_kind: Any) -> None:
        base: PathKey = ("actions", name)
        earlier: dict[str, set[str]] = {}

        def step_path(ref: str) -> str | None:
            parts = ref.split(".")
            head = parts[0]
            if head == "args" and len(parts) > 1 and parts[1] not in action.params:
                return f"action '{name}' has no parameter '{parts[1]}'{did_you_mean(parts[1], action.params)}"
            if head == "settings" and len(parts) > 1 and parts[1] not in system.settings:
                return f"'{parts[1]}' is not a setting of {system.name}{did_you_mean(parts[1], system.settings)}"
            if head == "steps" and len(parts) > 1:
                if parts[1] not in earlier:
                    return (f"no earlier step '{parts[1]}' in action '{name}'"
                            f"{did_you_mean(parts[1], earlier)}")
                if len(parts) > 2 and parts[2] not in earlier[parts[1]]:
                    return (f"step '{parts[1]}' has no output '{parts[2]}'"
                            f"{did_you_mean(parts[2], earlier[parts[1]])}")
            if head in ("order", "source", "target") and len(parts) > 1:
                return self.order_path(None, parts[1:])
            return None

        names = (*STEP_NAMES, "batch") if action.batch is not None and action.batch.declared \
            else STEP_NAMES
        if action.precondition is not None:
            self.condition(doc, base + ("precondition",), action.precondition, step_path, STEP_NAMES)
        if action.settle is not None:  # a read of the effect: before any step ran
            for key in REQUEST_FIELDS:
                if key in doc.data["actions"][name]["settle"]:
                    strings(base + ("settle", key), STEP_NAMES, request_kind, step_path)
            for out, expr in action.settle.step.outputs.items():
                self.jmespath(doc, base + ("settle", "outputs", out), expr)
        for i, step in enumerate(action.steps):
            spath = base + ("steps", i)
            if step.when is not None:
                self.condition(doc, spath + ("when",), step.when, step_path, STEP_NAMES)
            for key in REQUEST_FIELDS:
                if key in doc.data["actions"][name]["steps"][i]:
                    strings(spath + (key,), names, request_kind, step_path)
            if step.request.url_from:
                self.jmespath(doc, spath + ("url_from",), step.request.url_from)
                head = step.request.url_from.split(".")
                if head[0] != "steps" or len(head) < 2 or head[1] not in earlier:
                    self.add(doc, spath + ("url_from",), "unknown-path",
                             f"url_from must name an earlier step's output (steps.<step>.<output>), "
                             f"not {step.request.url_from!r}")
            for out, expr in step.outputs.items():
                self.jmespath(doc, spath + ("outputs", out), expr)
            if step.fail_if:
                self.jmespath(doc, spath + ("fail_if",), step.fail_if)
            if step.fail_message:
                self.jmespath(doc, spath + ("fail_message",), step.fail_message)
            if step.response is not None and step.response.compression_from:
                where = spath + ("response", "compression_from")
                self.jmespath(doc, where, step.response.compression_from)
                problem = step_path(step.response.compression_from)
                if problem:
                    self.add(doc, where, "unknown-path", problem)
            if step.poll is not None:
                self.jmespath(doc, spath + ("poll", "until"), step.poll.until)
                if step.poll.fail_if:
                    self.jmespath(doc, spath + ("poll", "fail_if"), step.poll.fail_if)
            earlier[step.name] = set(step.outputs)
        if action.batch is not None and action.batch.declared:
            self.batch(doc, base + ("batch",), action.batch, [s.name for s in action.steps],
                       lambda key: strings(base + ("batch", *key), names, request_kind, step_path))

    def batch(self, doc: Loaded, path: PathKey, batch: Any, steps: list[str], strings: Any) -> None:
        """A batch's effect names a step, its templates read what a batch has, its JMESPaths parse."""
        data = doc.data
        for p in path:
            data = data[p]
        if batch.effect and batch.effect not in steps:
            self.add(doc, path + ("effect",), "unknown-path",
                     f"effect names no step of the action{did_you_mean(batch.effect, steps)}",
                     f"steps: {', '.join(steps)}")
        if batch.group_by:
            strings(("group_by",))
        if batch.errors is not None:
            self.jmespath(doc, path + ("errors", "from"), batch.errors.source)
        if batch.recover is not None:
            for key in REQUEST_FIELDS:
                if key in data["recover"]:
                    strings(("recover", key))
            if batch.recover.poll is not None:
                self.jmespath(doc, path + ("recover", "poll", "until"), batch.recover.poll.until)
            if batch.recover_pages is not None:
                self.jmespath(doc, path + ("recover", "pages", "next_token"),
                              batch.recover_pages.next_token)
