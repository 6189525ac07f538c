"""The environments and rendering: `render`, `evaluate`, `render_value` (the package's
docstring says why there are three environments and how each finalises a value)."""

from __future__ import annotations

import functools
import gc
import base64
import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import jinja2
from jinja2.environment import TemplateExpression
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

from connector.errors import TemplateError
from connector.templates import filters
from connector.templates import codegen, limits, methods
from connector.templates.secrets import Secret, encoded, joined, opaque, reveal
from connector.timestamps import parse_iso

#: Longest rendered template; guards against `'x' * 10**9` style expansion.
MAX_RENDERED = limits.MAX_VALUE

__all__ = ["Secret", "opaque", "render", "evaluate", "render_value", "TEXT", "PATH", "XML"]


class _Env(ImmutableSandboxedEnvironment):
    """No mutation of context objects, no underscore attributes, bounded values and time
    (`limits`: operators, filters, `~`, loops, calls, the output).

    On a mapping, `x.name` reads the key before any attribute, so `order.items` is the
    order's items, not the dict method of that name.
    """

    intercepted_binops = limits.INTERCEPTED
    code_generator_class = codegen.BoundedCodeGenerator
    concat = staticmethod(limits.bounded_join)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        args = methods.check_call(__obj, args, kwargs)
        budget = limits.current()
        if budget is None:
            return super().call(__context, __obj, *args, **kwargs)
        budget.enter()
        try:
            # what a call builds (`s.split()`, `s.encode()`) is measured once it is built
            return limits.collected("a call's value", super().call(__context, __obj, *args,
                                                                    **kwargs))
        finally:
            budget.depth -= 1

    def wrap_str_format(self, value: Any) -> Any:
        """`'...'.format(...)`: the sandbox's, its widths and arguments measured first."""
        wrapped = super().wrap_str_format(value)
        return None if wrapped is None else methods.bounded_format(value.__self__, wrapped)

    def _generate(self, source: Any, name: Any, filename: Any, defer_init: bool = False) -> Any:
        return super()._generate(codegen.counted_loops(source), name, filename, defer_init)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        return limits.binop(operator, left, right)

    @staticmethod
    def compared(value: Any) -> Any:
        """A comparison's right operand, as it is; a sized one ticks the clock by its length
        (`codegen.visit_Operand`)."""
        if type(value) in _SIZED:
            budget = limits.current()
            if budget is not None:
                budget.tick(len(value))
        return value

    @staticmethod
    def bounded_concat(parts: Any) -> Any:
        """`a ~ b`: measured; with a secret among the parts, a secret (`secrets`)."""
        parts = list(parts)
        if any(isinstance(part, Secret) for part in parts):
            return joined(parts, limits.concat)
        return limits.concat(parts)


#: What a comparison goes through item by item (or character by character).
_SIZED = frozenset({list, tuple, dict, str, set, frozenset, bytes})


def _finalize_none(value: Any) -> Any:
    if type(value) is str:
        budget = limits.current()
        if budget is not None:
            budget.charge(len(value))
        return value
    if value is None:
        return ""
    if isinstance(value, Secret):
        return reveal(value)  # output as it is: the one use of a secret a request needs
    return limits.as_text("an output", value)


def _to_json(value: Any) -> str:
    limits.allow("tojson", limits.text_size(value) * 2)
    return json.dumps(value, ensure_ascii=False, default=str)


def _jmespath(value: Any, expression: str) -> Any:
    """`{{ source['items'] | jmespath('[].{sku: sku, qty: quantity}') }}`: reshape data.
    As the mappings' expressions are: compiled once, depth-bounded, one shared interpreter
    (`jmespath.search` made a new one per call, about six times the cost of a short visit)."""
    import jmespath.exceptions

    from connector import normalise

    try:
        return normalise.visit(str(expression), value)
    except jmespath.exceptions.JMESPathError as exc:
        raise TemplateError(f"jmespath {expression!r}: {exc}") from exc


def _moment(value: Any, name: str) -> datetime:
    """An ISO 8601 date-time (a space instead of `T`, as Magento writes them, is fine; no
    offset means UTC), for the date filters."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise TemplateError(f"{name}: not a date-time: {value!r}")
    try:
        return parse_iso(value)
    except ValueError:
        raise TemplateError(f"{name}: not an ISO 8601 date-time: {value!r}") from None


def _epoch_ms(value: Any) -> int:
    """`{{ now | epoch_ms }}`: a date-time as integer milliseconds since the epoch (numbers
    pass through), the timestamp shape some APIs want in JSON bodies."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    return int(_moment(value, "epoch_ms").timestamp() * 1000)


def _add_days(value: Any, days: float) -> str:
    """`{{ window.before | add_days(-180) }}`: a date-time moved by `days`, in UTC with `Z`."""
    if isinstance(days, bool) or not isinstance(days, (int, float)):
        raise TemplateError(f"add_days: the number of days must be a number, not {days!r}")
    moment = _moment(value, "add_days") + timedelta(days=days)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64encode(value: Any) -> Any:
    """Base64 of the value's UTF-8 text (HTTP Basic credentials: `id ~ ':' ~ secret`); of a
    secret, a secret."""
    if isinstance(value, Secret):
        return encoded(value, lambda text: base64.b64encode(text.encode("utf-8")).decode("ascii"))
    text = limits.as_text("b64encode", value)
    limits.allow("b64encode", len(text) * 4 // 3 + 4)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _merge_each(value: Any, extra: Any) -> Any:
    """`{{ lines | merge_each({'reason': args.reason}) }}`: every mapping of the list with the
    keys of `extra` added (so that a `jmespath` reshape can read them per element)."""
    if not isinstance(extra, Mapping):
        raise TemplateError(f"merge_each: the argument must be a mapping, not {extra!r}")
    if not isinstance(value, (list, tuple)):
        return value
    return [{**item, **extra} if isinstance(item, Mapping) else item for item in value]


def _make(finalize: Any) -> _Env:
    env = _Env(undefined=jinja2.StrictUndefined, autoescape=False, finalize=finalize)
    env.globals["lipsum"] = filters.lipsum
    env.filters["tojson"] = _to_json
    env.filters["jmespath"] = _jmespath
    env.filters["epoch_ms"] = _epoch_ms
    env.filters["add_days"] = _add_days
    env.filters["b64encode"] = _b64encode
    env.filters["merge_each"] = _merge_each
    env.filters = filters.bounded_filters(env.filters)
    env.policies["json.dumps_function"] = _to_json
    return env


def _path_segment(value: Any) -> str:
    return quote(_finalize_none(value), safe="")


def _xml(value: Any) -> str:
    """XML-escaped text (what `xml.sax.saxutils.escape` gives with quotes as entities, written
    out: that module imports urllib.request, and with it http and email, a third of the
    import time of `validate`)."""
    text = _finalize_none(value)
    return (text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")
            .replace('"', "&quot;").replace("'", "&apos;"))


TEXT = _make(_finalize_none)
PATH = _make(_path_segment)
XML = _make(_xml)


@functools.lru_cache(maxsize=4096)
def _compile(kind: str, source: str) -> tuple[jinja2.Template, bool]:
    """The compiled template, and whether a render of it needs a budget (`codegen.unbounded`:
    not when it only outputs what it looks up, the bulk of a request's templates)."""
    env = {"text": TEXT, "path": PATH, "xml": XML}[kind]
    tree = env.parse(source)
    budgeted = not codegen.unbounded(tree)
    return _flat_globals(env.from_string(tree)), budgeted


def _flat_globals(template: jinja2.Template) -> jinja2.Template:
    """`template` with its globals (range, lipsum, ...) in a dict of their own instead of
    Jinja's ChainMap over the environment's: a render copies them into its context, and a
    ChainMap is copied key by key in Python, a tenth of an ordinary render. The environments'
    globals are set once, when this module is imported, so nothing is lost."""
    template.globals = dict(template.globals)
    return template


@functools.lru_cache(maxsize=4096)
def _compile_expression(source: str) -> tuple[TemplateExpression, bool]:
    """Jinja's `compile_expression`, and whether the expression is a plain look-up (`order.id`,
    `order['items']`), whose value is the context's own: no budget, nothing to measure."""
    compiled = TEXT.compile_expression(source, undefined_to_none=False)
    _flat_globals(compiled._template)
    return compiled, codegen.lookup(Parser(TEXT, source, state="variable").parse_expression())


def render(source: str, context: Mapping[str, Any], kind: str = "text") -> str:
    """Render a template string; errors become `TemplateError` with the template shown."""
    if "{" not in source:
        return source
    token = None
    try:
        template, budgeted = _compile(kind, source)
        if not budgeted:
            return template.render(context)
        token = limits.begin()
        return template.render(context)
    except jinja2.TemplateError as exc:
        raise _refused(exc, f"template {_shown(source)}: {_describe(exc)}") from exc
    except RecursionError as exc:
        raise _refused(exc, f"template {_shown(source)}: nested too deeply (a macro "
                                 "calling itself?)") from None
    except (TypeError, ValueError, ArithmeticError, OverflowError, MemoryError) as exc:
        raise _refused(exc, f"template {_shown(source)}: {_python_error(exc)}") from exc
    finally:
        # after `_refused` has freed what a refused render built: what it drew from the
        # process's pool is given back once the memory is
        limits.end(token)


def _refused(exc: BaseException, message: str) -> TemplateError:
    """The TemplateError for `exc`, whose chain is left without its frames.

    A render's frames hold what it built (up to its bounds: a hundred megabytes or so), and
    the error is kept long after the render (a failed action's record, a run's summary): each
    kept error held them all (peak_memory.py: apply --sandbox, three orders failing on one
    template, 520 MB). Jinja's rewritten traceback also leaves them in reference cycles, which
    only the cyclic collector frees: after a bound is hit, it runs at once (the time it takes
    is mostly freeing what the render built)."""
    seen: set[int] = set()
    chained: BaseException | None = exc
    while chained is not None and id(chained) not in seen:
        seen.add(id(chained))
        chained.with_traceback(None)
        chained = chained.__cause__ or chained.__context__
    if isinstance(exc, (limits.TemplateLimit, MemoryError, RecursionError)):
        gc.collect(1)
    return TemplateError(message)


def _python_error(exc: BaseException) -> str:
    """What Python said, or for a MemoryError (which says nothing) what it means: a bound
    the template found a way past (`limits` refuses every value it knows to be too large)."""
    if isinstance(exc, MemoryError) and not str(exc):
        return ("the template asked for more memory than there is: it builds a value far over "
                f"the limit of {limits.MAX_VALUE:,} characters or items")
    return str(exc)


def _shown(source: str) -> str:
    """A template in a message: its first 200 characters."""
    return repr(source) if len(source) <= 200 else repr(source[:200]) + "..."


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """Evaluate a bare Jinja expression (the `expr:` escape hatch) to a Python value."""
    token = None
    try:
        compiled, lookup = _compile_expression(expression)
        if lookup:
            value = compiled(**context)
        else:
            token = limits.begin()
            value = compiled(**context)
            if type(value) not in _PLAIN and not isinstance(value, _UNMEASURED):
                limits.allow("the expression's value", limits.text_size(value))
    except jinja2.TemplateError as exc:
        raise _refused(exc, f"expression {_shown(expression)}: {_describe(exc)}") from exc
    except RecursionError as exc:
        raise _refused(exc, f"expression {_shown(expression)}: nested too deeply") from None
    except (TypeError, ValueError, ArithmeticError, OverflowError, MemoryError) as exc:
        raise _refused(exc, f"expression {_shown(expression)}: {_python_error(exc)}") from exc
    finally:
        limits.end(token)  # after `_refused`, as in `render`
    if isinstance(value, jinja2.Undefined):
        raise TemplateError(f"expression {_shown(expression)}: undefined value")
    return reveal(value)


_SINGLE = "{{"
_PLAIN = frozenset({str, int, float, bool, type(None)})
_UNMEASURED = (str, int, float, bool, type(None), Secret, jinja2.Undefined)


def render_value(value: Any, context: Mapping[str, Any], *, omit_none: bool = False) -> Any:
    """Render a data structure whose string leaves are templates (JSON bodies, arguments).

    A leaf that is exactly one `{{ expression }}` keeps the expression's type, so a list of
    items stays a list and a number stays a number; anything else renders to a string.
    With `omit_none` (JSON bodies), a key whose template gives no value (None) is left out,
    so an absent order field is not sent as `null` to a schema that types it string or
    integer; a YAML `null` written in the body is a chosen value and is kept.
    """
    if isinstance(value, str):
        stripped = value.strip()
        if (
            stripped.startswith(_SINGLE)
            and stripped.endswith("}}")
            and stripped.count(_SINGLE) == 1
            and "{%" not in stripped
        ):
            return evaluate(stripped[2:-2].strip(), context)
        return render(value, context)
    if isinstance(value, Mapping):
        body: dict[str, Any] = {}
        for key, leaf in value.items():
            rendered = render_value(leaf, context, omit_none=omit_none)
            if omit_none and rendered is None and isinstance(leaf, str):
                continue
            body[str(key)] = rendered
        return body
    if isinstance(value, list):
        return [render_value(v, context, omit_none=omit_none) for v in value]
    return value


def _describe(exc: jinja2.TemplateError) -> str:
    if isinstance(exc, jinja2.UndefinedError):
        return f"{exc.message} (the value is not in the order or context)"
    if isinstance(exc, jinja2.sandbox.SecurityError):
        return f"refused by the template sandbox: {exc}"
    return str(exc.message or exc)
