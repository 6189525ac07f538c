"""Bounds on calling a string method (`limits` has the budget they are charged to): a width
(`'x'.ljust(n)`), a replacement, a join, a tab size or a format string is checked before the
value is built.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from connector.templates.iteration import taken
from connector.templates.limits import TemplateLimit, allow, text_size


_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


def check_call(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Refuse a string method call that would build a value over the limit; the arguments to
    call it with (an iterator given to `str.join` is taken into a list, measured)."""
    owner = getattr(obj, "__self__", None)
    if not isinstance(owner, (str, bytes)):
        return args
    name = getattr(obj, "__name__", "")
    if name in _WIDTH_METHODS and args and isinstance(args[0], int):
        allow(f"str.{name}", args[0])
    elif name == "replace" and len(args) >= 2:
        replace_size(owner, args[0], args[1], args[2] if len(args) > 2 else -1)
    elif name == "join" and args:
        items = args[0] if isinstance(args[0], (list, tuple)) else None
        if items is None:  # an iterator: measured as it is taken, then joined as a list
            return (taken("str.join", args[0], len(owner)), *args[1:])
        allow("str.join", len(owner) * len(items) + sum(text_size(i) for i in items))
    elif name == "expandtabs":
        size = args[0] if args and isinstance(args[0], int) else 8
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        allow("str.expandtabs", len(owner) + tabs * size)
    elif name == "translate":
        raise TemplateLimit("str.translate is not available in templates")
    return args


def bounded_format(fmt: str, wrapped: Callable[..., str]) -> Callable[..., str]:
    """The sandbox's `fmt.format` (`wrapped`), refusing a width from an argument or over
    the limit when the method is read, and a result over the limit when it is called."""
    widths = _format_widths(fmt)
    allow("str.format", len(fmt) + widths)

    def format_(*args: Any, **kwargs: Any) -> str:
        allow("str.format", len(fmt) + widths + text_size((args, kwargs)))
        return wrapped(*args, **kwargs)

    return format_


def _format_widths(fmt: Any) -> int:
    """The widths a `str.format` string asks for; a width from an argument is refused."""
    import string

    total = 0
    try:
        parsed = list(string.Formatter().parse(fmt)) if isinstance(fmt, str) else []
    except ValueError:
        return 0  # str.format reports it
    for _, _, spec, _ in parsed:
        if spec and "{" in spec:
            raise TemplateLimit("a format width taken from an argument ('{:{w}}')")
        total += sum(int(n) for n in re.findall(r"\d+", spec or ""))
    return total


def replace_size(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    allow("replace", len(text) + found * max(len(new) - len(old), 0))
