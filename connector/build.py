"""Stage 2b: schema-valid data → frozen model objects, defaults applied in one place.

Only called on documents that passed the JSON Schema, so shapes are trusted here; semantic
checks (references, templates, rule analysis) run later over the model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from connector import conditions
from connector.load import Loaded, PathKey
from connector.model import (
    Action,
    Batch,
    Settle,
    BatchErrors,
    ActionCall,
    Auth,
    Condition,
    Pages,
    Domains,
    Flow,
    Listing,
    Lookup,
    Notifications,
    Normalise,
    Pagination,
    Param,
    Poll,
    RateLimit,
    Request,
    ResponseFormat,
    Rule,
    RuleTest,
    Setting,
    Step,
    System,
    Where,
)


def _where(doc: Loaded, path: PathKey, key: bool = False) -> Where:
    line, col = doc.position(path, key=key)
    return Where(doc.file, line, col)


def _position(doc: Loaded) -> Callable[[PathKey, bool], tuple[int, int]]:
    return lambda path, key: doc.position(path, key=key)


def settings(data: Mapping[str, Any] | None) -> dict[str, Setting]:
    result = {}
    for name, spec in (data or {}).items():
        spec = spec or {}
        result[name] = Setting(
            name=name,
            default=spec.get("default"),
            required=bool(spec.get("required", False)),
            secret=bool(spec.get("secret", False)),
            kind=spec.get("type", "list" if isinstance(spec.get("default"), list) else "string"),
            enum=tuple(spec.get("enum", ())),
            description=spec.get("description", ""),
        )
    return result


def request(doc: Loaded, data: Mapping[str, Any], path: PathKey) -> Request:
    return Request(
        method=data["method"],
        path=data.get("path", ""),
        url_from=data.get("url_from", ""),
        query=dict(data.get("query") or {}),
        headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
        json=data.get("json"),
        form={str(k): str(v) for k, v in (data.get("form") or {}).items()},
        content=data.get("content"),
        content_type=data.get("content_type", ""),
        operation=data.get("operation", ""),
        where=_where(doc, path),
    )


def _lookup(doc: Loaded, data: Mapping[str, Any], path: PathKey) -> Lookup:
    return Lookup(
        request=request(doc, data["request"], path + ("request",)),
        found=data["found"],
        not_found_status=tuple(data.get("not_found_status", (404,))),
        where=_where(doc, path, key=True),
    )


def _field(spec: Any) -> tuple[str, dict[str, Any] | None]:
    if isinstance(spec, str):
        return spec, None
    return spec["path"], spec


def system(doc: Loaded) -> System:
    data = doc.data
    name = data["system"]
    conn = data["connection"]
    auth_data = conn.get("auth") or {"kind": "none"}
    auth = Auth(
        kind=auth_data["kind"],
        headers={**(conn.get("headers") or {}), **(auth_data.get("headers") or {})},
        token_request=(
            request(doc, auth_data["token_request"], ("connection", "auth", "token_request"))
            if "token_request" in auth_data
            else None
        ),
        token_field=auth_data.get("token_field", "access_token"),
        expires_field=auth_data.get("expires_field", "expires_in"),
    )
    domains_data = data["domains"]
    domains = Domains(
        status=tuple(domains_data.get("status", ())),
        actor=tuple(domains_data.get("actor", ())),
        fulfilment=tuple(domains_data.get("fulfilment", ())),
        terminal=tuple(domains_data.get("terminal", ())),
    )
    norm = data["normalise"]
    fields: dict[str, str] = {}
    maps: dict[str, dict[str, Any]] = {}
    for key, spec in norm.items():
        if key in ("items", "attributes"):
            continue
        expr, extra = _field(spec)
        fields[key] = expr
        if extra is not None:
            maps[key] = {"map": dict(extra.get("map") or {}), "default": extra.get("default")}
    attributes: dict[str, str] = {}
    for key, spec in (norm.get("attributes") or {}).items():
        expr, extra = _field(spec)
        attributes[key] = expr
        if extra is not None:
            maps[f"attributes.{key}"] = {"map": dict(extra.get("map") or {}), "default": extra.get("default")}
    items = norm.get("items") or {"path": "`[]`", "fields": {}}
    normalise = Normalise(
        fields=fields, maps=maps, items=dict(items["fields"]), items_path=items["path"],
        attributes=attributes,
    )
    orders = data.get("orders") or {}
    listings = [_listing(doc, ld, at) for at, ld in listings_at(orders)]
    get_order = _lookup(doc, orders["get"], ("orders", "get")) if "get" in orders else None
    lookups = {
        other: _lookup(doc, spec, ("orders", "lookup", other))
        for other, spec in (orders.get("lookup") or {}).items()
    }
    actions = {
        aname: _action(doc, name, aname, spec) for aname, spec in (data.get("actions") or {}).items()
    }
    return System(
        name=name,
        title=data.get("title", name),
        settings=settings(data.get("settings")),
        base_url=conn["base_url"],
        auth=auth,
        rate_limits={
            op: RateLimit(rate=float(v["rate"]), burst=int(v["burst"]))
            for op, v in (conn.get("rate_limits") or {}).items()
        },
        rate_limits_account=str(conn.get("rate_limits_account", "")),
        rate_limit_headers=tuple(str(h) for h in conn.get("rate_limit_headers", ())),
        error_messages=_strings(conn.get("error_message")),
        secret_query_params=tuple(str(n) for n in conn.get("secret_query_params", ())),
        partition_by=str(data.get("partition_by", "")),
        variant_by=str(data.get("variant_by", "")),
        domains=domains,
        normalise=normalise,
        listing=listings[0] if listings else None,
        more_listings=tuple(listings[1:]),
        get_order=get_order,
        lookups=lookups,
        actions=actions,
        where=_where(doc, ()),
        notifications=_notifications(doc, data.get("notifications")),
    )


def listings_at(orders: Mapping[str, Any]) -> list[tuple[PathKey, Any]]:
    """`orders.list` (one listing, or a list of them) as (where it is, the listing): build
    and validate walk the listings alike, and point at the same place."""
    value = orders.get("list")
    if isinstance(value, list):
        return [(("orders", "list", i), listing) for i, listing in enumerate(value)]
    return [(("orders", "list"), value)] if value else []


def _listing(doc: Loaded, ld: Mapping[str, Any], path: PathKey) -> Listing:
    pg = ld["pagination"]
    return Listing(
        request=request(doc, ld["request"], path + ("request",)),
        pagination=Pagination(
            items=pg["items"], next_token=pg.get("next_token", ""),
            token_param=pg.get("token_param", ""), page_param=pg.get("page_param", ""),
            total_pages=pg.get("total_pages", ""), next_query=pg.get("next_query", ""),
            offset_param=pg.get("offset_param", ""), total=pg.get("total", ""),
        ),
        fan_out=str(ld.get("fan_out", "")),
        min_age_seconds=int(ld.get("min_age_seconds", 0)),
        where=_where(doc, path, key=True),
    )


def _strings(value: str | list[str] | None) -> tuple[str, ...]:
    """A key that takes one string or a list of them, as a tuple."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(str(v) for v in value)


def _notifications(doc: Loaded, data: Mapping[str, Any] | None) -> Notifications | None:
    if not data:
        return None
    return Notifications(
        transport=str(data["transport"]), queue_url=str(data["queue_url"]),
        order_id=str(data["order_id"]), partition=str(data.get("partition", "")),
        accept=str(data.get("accept", "")), where=_where(doc, ("notifications",), key=True))


def _action(doc: Loaded, system_name: str, name: str, data: Mapping[str, Any]) -> Action:
    path: PathKey = ("actions", name)
    params = {
        pname: Param(
            name=pname,
            default=(spec or {}).get("default"),
            required=bool((spec or {}).get("required", False)),
            enum=tuple((spec or {}).get("enum", ())),
            description=(spec or {}).get("description", ""),
        )
        for pname, spec in (data.get("params") or {}).items()
    }
    precondition = None
    if "precondition" in data:
        precondition = conditions.parse(data["precondition"], doc.file, path + ("precondition",), _position(doc))
    steps = [_step(doc, sd, path + ("steps", i)) for i, sd in enumerate(data["steps"])]
    follow_up: Condition | bool = True
    if isinstance(data.get("follow_up"), bool):
        follow_up = bool(data["follow_up"])
    elif "follow_up" in data:
        follow_up = conditions.parse(data["follow_up"], doc.file, path + ("follow_up",), _position(doc))
    return Action(
        system=system_name,
        name=name,
        description=data.get("description", ""),
        params=params,
        precondition=precondition,
        steps=tuple(steps),
        mutating=bool(data.get("mutating", True)),
        kind=str(data.get("kind", "")),
        where=_where(doc, path, key=True),
        follow_up=follow_up,
        batch=_batch(doc, data.get("batch"), steps, path),
        settle=Settle(_step(doc, {"name": "settle", **data["settle"]}, path + ("settle",)),
                      tuple(data["settle"].get("absent", (404,))))
        if data.get("settle") else None,
    )


def _step(doc: Loaded, sd: Mapping[str, Any], spath: PathKey) -> Step:
    poll = None
    if "poll" in sd:
        p = sd["poll"]
        poll = Poll(
            until=p["until"], fail_if=p.get("fail_if", ""),
            interval_seconds=float(p.get("interval_seconds", 5.0)),
            max_attempts=int(p.get("max_attempts", 60)),
        )
    when = None
    if "when" in sd:
        when = conditions.parse(sd["when"], doc.file, spath + ("when",), _position(doc))
    return Step(
        name=sd["name"],
        request=request(doc, sd, spath),
        expect=tuple(sd.get("expect", (200,))),
        outputs=dict(sd.get("outputs") or {}),
        poll=poll,
        when=when,
        fail_if=sd.get("fail_if", ""),
        fail_message=sd.get("fail_message", ""),
        response=_response(sd.get("response")),
        where=_where(doc, spath),
    )


def _batch(doc: Loaded, data: Mapping[str, Any] | None, steps: list[Step],
           path: PathKey) -> Batch | None:
    """The action's `batch:`; an undeclared one of a single order for an action that polls,
    so that no action waits for the remote side inside the run."""
    if not data:
        waits = any(step.poll and step.poll.max_attempts > 1 and step.request.method in ("GET", "HEAD")
                    for step in steps)  # a write's poll of one attempt is only a check of its answer
        return Batch() if waits else None
    errors = data.get("errors")
    recover = data.get("recover")
    return Batch(
        max_orders=int(data.get("max_orders", 1)),
        group_by=str(data.get("group_by", "")),
        effect=str(data.get("effect", "")),
        errors=BatchErrors(source=str(errors["from"]), member=str(errors["member"]),
                           message=str(errors.get("message", ""))) if errors else None,
        recover=_step(doc, {"name": "recover", **recover}, path + ("batch", "recover"))
        if recover else None,
        recover_pages=Pages(next_token=str(pages["next_token"]),
                            token_param=str(pages["token_param"]),
                            token_alone=bool(pages.get("token_alone", False)))
        if (pages := (recover or {}).get("pages")) else None,
        declared=True,
    )


def _response(data: Mapping[str, Any] | None) -> ResponseFormat | None:
    if not data:
        return None
    return ResponseFormat(format=data.get("format", "json"), lists=tuple(data.get("lists", ())),
                          compression_from=data.get("compression_from", ""))


def action_calls(doc: Loaded, items: list[Any], path: PathKey) -> tuple[ActionCall, ...]:
    """`then`/`expect` items: a bare name or a one-key mapping of name → arguments."""
    calls = []
    for i, item in enumerate(items):
        ipath = path + (i,)
        if isinstance(item, str):
            calls.append(ActionCall(item, {}, _where(doc, ipath)))
        else:
            (name, args), = item.items()
            calls.append(ActionCall(name, dict(args or {}), _where(doc, ipath + (name,), key=True)))
    return tuple(calls)


def flow(doc: Loaded, name: str) -> Flow:
    data = doc.data
    rules = []
    for i, rd in enumerate(data["rules"]):
        rpath: PathKey = ("rules", i)
        rules.append(
            Rule(
                id=rd["id"],
                description=rd.get("description", ""),
                when=conditions.parse(rd["when"], doc.file, rpath + ("when",), _position(doc)),
                then=action_calls(doc, rd["then"], rpath + ("then",)),
                where=_where(doc, rpath),
            )
        )
    tests = []
    for i, td in enumerate(data.get("tests") or []):
        tpath: PathKey = ("tests", i)
        raw = "order_raw" in td
        tests.append(
            RuleTest(
                name=td["name"],
                order=td.get("order_raw") if raw else td.get("order"),
                target=td.get("target_raw", td.get("target")),
                settings=dict(td.get("settings") or {}),
                expect=action_calls(doc, td["expect"], tpath + ("expect",)),
                expect_rules=tuple(td["rules"]) if "rules" in td else None,
                raw=raw,
                target_raw="target_raw" in td,
                systems={k: dict(v) for k, v in (td.get("systems") or {}).items()},
                outputs={k: dict(v) for k, v in (td.get("outputs") or {}).items()},
                where=_where(doc, tpath),
            )
        )
    return Flow(
        name=name,
        source=data["source"],
        target=data["target"],
        hit_policy=data.get("hit_policy", "first"),
        description=data.get("description", ""),
        settings=settings(data.get("settings")),
        rules=tuple(rules),
        tests=tuple(tests),
        where=_where(doc, ()),
        partition_by=str(data.get("partition_by", "")),
    )
