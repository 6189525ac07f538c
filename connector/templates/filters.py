"""Jinja's filters with bounds: those that build values check the size first
(`limits`), so `'x' | center(10**9)` is refused before it is built.

The filters that take a width, a count or a replacement are checked on it (`center`, `indent`,
`replace`, `join`, `format`, `batch`, `slice`, `wordwrap`); those that turn their value into
text are measured on it first (`string`, `upper`, `pprint`, `list`, ...); `sum` adds numbers
only (a list `start` made it quadratic); `lipsum` is Jinja's with at most a hundred
paragraphs; `join` of an iterator measures its items as it takes them (`iteration.taken`).

Every filter call is a step of the render's budget, and each item a filter goes through is
a tick of its clock: a collection's length at once (`iteration.consumed`), an iterator's item by
item as a lazy filter (`map`, `select`, ...) takes it (`iteration.ticked`). Without them,
`range(100000) | map('int') | map('int') | ...` or a loop of `range(100000) | max` ran for
tens of seconds without reaching the clock (the 2 s bound).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jinja2.filters import make_attrgetter, pass_eval_context
from jinja2.nodes import EvalContext

from connector.templates.iteration import consumed, loop, taken, ticked
from connector.templates.limits import (
    LOOP_FILTER, TemplateLimit, allow, as_text, charge, check_percent, collected, step, text_size,
)
from connector.templates.methods import replace_size


def _passes(func: Callable[..., Any]) -> bool:
    return getattr(func, "jinja_pass_arg", None) is not None


def guarded(func: Callable[..., Any], check: Callable[..., None] | None,
            collects: bool = False, iterates: bool = False) -> Callable[..., Any]:
    """`func` (a filter), a step, with `check(value, *args, **kwargs)` first; what Jinja
    passes first (environment, context) is kept and passed on. With `collects`, the list it
    builds from an iterable (whose length no check could know first) is measured and charged
    after; with `iterates`, its value's items are ticks of the clock (`consumed`)."""
    skip = 1 if _passes(func) else 0

    if check is None and not collects and not iterates:
        def filter_(*args: Any, **kwargs: Any) -> Any:
            step()
            return func(*args, **kwargs)
    else:
        def filter_(*args: Any, **kwargs: Any) -> Any:
            step()
            if check is not None:
                check(*args[skip:], **kwargs)
            if iterates and len(args) > skip:
                consumed(args[skip])
            if collects:
                return collected("a filter's value", func(*args, **kwargs))
            return func(*args, **kwargs)

    return _like(filter_, func)


def lazy(func: Callable[..., Any]) -> Callable[..., Any]:
    """`func`, a filter giving an iterator over its value (`map`, `select`...), a step, with
    the value's items ticks of the clock (`ticked`: a collection's length at once, an
    iterator's one by one, as the filter takes them): a chain ticks at every level."""
    skip = 1 if _passes(func) else 0

    def filter_(*args: Any, **kwargs: Any) -> Any:
        step()
        if len(args) > skip:
            args = (*args[:skip], ticked(args[skip]), *args[skip + 1:])
        return func(*args, **kwargs)

    return _like(filter_, func)


def _like(filter_: Callable[..., Any], func: Callable[..., Any]) -> Callable[..., Any]:
    if _passes(func):
        filter_.jinja_pass_arg = func.jinja_pass_arg  # type: ignore[attr-defined]
    filter_.__name__ = getattr(func, "__name__", "filter")
    filter_.__doc__ = func.__doc__
    return filter_


def _measured(value: Any, *args: Any, **kwargs: Any) -> None:
    as_text("a filter's value", value) if not isinstance(value, str) else charge(len(value))


def _width(value: Any, width: Any = 80, *args: Any, **kwargs: Any) -> None:
    _measured(value)
    lines = value.count("\n") + 1 if isinstance(value, str) else 1
    size = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    allow("a width", size * lines + text_size(value))


def _replace(value: Any, old: Any = "", new: Any = "", count: Any = None) -> None:
    _measured(value)
    replace_size(value, old, new, -1 if count is None else count)


@pass_eval_context
def join(eval_ctx: EvalContext, value: Any, d: Any = "", attribute: Any = None) -> str:
    """Jinja's `join`, measured first: a list or tuple at once, anything else (an iterator,
    a `map`) item by item as it is taken (`taken`), then joined as a list."""
    from jinja2.filters import sync_do_join

    step()
    if attribute is not None:
        value = map(make_attrgetter(eval_ctx.environment, attribute), value)
    if isinstance(value, (list, tuple)):
        allow("join", text_size(value) + len(str(d)) * len(value))
    elif not isinstance(value, str):
        value = taken("join", value, len(str(d)))
    else:
        allow("join", len(value) * (len(d) + 1))
    return sync_do_join(eval_ctx, value, d)


def _format(value: Any, *args: Any, **kwargs: Any) -> None:
    if isinstance(value, str):
        check_percent(value, args or kwargs)


def _count(value: Any, count: Any = 0, *args: Any, **kwargs: Any) -> None:
    if isinstance(count, int):
        allow("a batch or slice count", count)


def _wordwrap(value: Any, width: Any = 79, break_long_words: Any = True,
              wrapstring: Any = None, *args: Any, **kwargs: Any) -> None:
    _measured(value)
    per = len(wrapstring) if isinstance(wrapstring, str) else 1
    size = len(value) if isinstance(value, str) else 0
    if isinstance(width, int) and width > 0:
        allow("wordwrap", size + (size // width + 1) * per)


def _sum(value: Any, *args: Any, **kwargs: Any) -> None:
    start = kwargs.get("start", args[1] if len(args) > 1 else 0)
    if not isinstance(start, (int, float)):
        raise TemplateLimit("sum adds numbers only (start=... must be a number)")


_CHECKS: dict[str, Callable[..., None]] = {
    "center": _width, "indent": _width, "replace": _replace, "format": _format,
    "batch": _count, "slice": _count, "wordwrap": _wordwrap, "sum": _sum,
    **{name: _measured for name in (
        "sort", "dictsort", "groupby", "unique", "string", "upper", "lower", "title",
        "capitalize", "trim", "truncate", "striptags", "urlize", "escape", "e", "forceescape", "urlencode", "pprint", "list", "reverse",
        "wordcount", "xmlattr", "safe")},
}


#: Filters that build a list from an iterable (`range(99999) | list`): each of those lists was
#: charged one item, so a template holding many of them took gigabytes (peak_memory.py).
_COLLECTING = frozenset({"list", "sort", "dictsort", "groupby", "reverse", "unique"})
#: Filters that go through their value's items (ticks of the clock, `consumed`).
_ITERATING = frozenset({"sum", "max", "min", "list", "sort", "dictsort", "groupby", "unique",
                        "batch", "slice", "items", "merge_each", "tojson", "jmespath"})
#: Filters that give an iterator over their value: its items are ticked as they are taken.
_LAZY = frozenset({"map", "select", "reject", "selectattr", "rejectattr"})


def bounded_filters(filters: Mapping[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """`filters` (Jinja's and the project's), each a step of the budget, with the checks
    above in front of those that build values and their items counted where they go
    through them."""
    bounded: dict[str, Callable[..., Any]] = {}
    for name, func in filters.items():
        if name in _LAZY:
            bounded[name] = lazy(func)
        else:
            bounded[name] = guarded(func, _CHECKS.get(name), name in _COLLECTING,
                                    name in _ITERATING)
    bounded["join"] = join
    bounded[LOOP_FILTER] = loop
    return bounded


def lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """Jinja's `lipsum`, at most a hundred paragraphs of at most a hundred words."""
    from jinja2.utils import generate_lorem_ipsum

    if not all(isinstance(v, int) for v in (n, min, max)) or n > 100 or max > 100:
        raise TemplateLimit("lipsum: at most 100 paragraphs of at most 100 words")
    allow("lipsum", n * max * 12)
    return str(generate_lorem_ipsum(n, html, min, max))
