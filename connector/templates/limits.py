"""Bounds on one render: no template, whatever it says, takes more than a bounded time and
memory, neither when `validate` compiles it nor when a run renders it.

Jinja's sandbox stops a template from reaching outside it but not from building a large
value: `'x' * 10**9`, `'%*s' % (10**9, 'x')`, `'x' | center(10**9)`, `[0] * 10**8`, loops in
loops over `range`, `lipsum(10**5)`, a macro calling itself. And Jinja evaluates constant
expressions while compiling, so `validate` alone spent seconds and gigabytes on
`"{{ 'x' * 10**9 }}"`. Here:

* the operators that build values (`*`, `**`, `%`, `+`) are intercepted (the sandbox's
  `intercepted_binops`, which Jinja never folds at compile time) and refuse a result over
  `MAX_VALUE` before building it; so do the filters and string methods with a width, a count
  or a replacement (`center`, `indent`, `format`, `replace`, `join`, `batch`, ...);
* anything turned into text (an output, a `~`, a string filter) is measured first, a
  bounded walk, so a list repeated into itself a million times is never printed;
* one render has a budget (`Budget`): loop iterations and calls, characters built, calls
  nested, and a wall-clock deadline, so loops in loops and recursive macros end;
* the output is joined with its length checked (`bounded_join`).

A refusal is a `TemplateLimit`, a sandbox error, which `templates.render` reports with the
template as any other sandbox refusal.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jinja2
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import SecurityError

#: Longest value (characters, or items of a list) one operation may build; also the
#: longest output of one template.
MAX_VALUE = 1_000_000
#: Characters and items built or measured in one render, all operations together.
MAX_WORK = 10_000_000
#: Loop iterations and calls in one render.
MAX_STEPS = 200_000
#: Calls (macros, `loop()` of a recursive loop) nested in one render.
MAX_DEPTH = 64
#: Wall-clock time of one render, a last resort behind the counts above.
MAX_SECONDS = 2.0
#: Largest integer an operator may build (bits): far past any id, amount or timestamp.
MAX_INT_BITS = 4096
#: The filter `For` loops' iterables are passed through (see `BoundedCodeGenerator`).
LOOP_FILTER = "_bounded_loop"


class TemplateLimit(SecurityError):
    """A template went over one of the bounds of a render."""


class Budget:
    """What one render has left (not shared between threads: one per render)."""

    __slots__ = ("steps", "work", "depth", "deadline")

    def __init__(self) -> None:
        self.steps = MAX_STEPS
        self.work = MAX_WORK
        self.depth = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def step(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise TemplateLimit(f"more than {MAX_STEPS:,} loop iterations and calls in one "
                                "render (loops inside loops?)")
        if not self.steps & 1023 and time.monotonic() > self.deadline:
            raise TemplateLimit(f"rendering took longer than {MAX_SECONDS:g} s")

    def charge(self, size: int) -> None:
        self.work -= size
        if self.work < 0:
            raise TemplateLimit(f"more than {MAX_WORK:,} characters built in one render")


_CURRENT: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("budget", default=None)


@contextlib.contextmanager
def budget() -> Iterator[Budget]:
    """The budget of one render (an enclosing render's, when there is one)."""
    current = _CURRENT.get()
    if current is not None:
        yield current
        return
    fresh = Budget()
    token = _CURRENT.set(fresh)
    try:
        yield fresh
    finally:
        _CURRENT.reset(token)


@contextlib.contextmanager
def nested() -> Iterator[None]:
    """One call (a macro, a function, a recursive loop's `loop()`): a step, one level deeper."""
    current = _CURRENT.get()
    if current is None:
        yield
        return
    current.step()
    current.depth += 1
    try:
        if current.depth > MAX_DEPTH:
            raise TemplateLimit(f"calls nested deeper than {MAX_DEPTH} (a macro calling itself?)")
        yield
    finally:
        current.depth -= 1


def step() -> None:
    current = _CURRENT.get()
    if current is not None:
        current.step()


def charge(size: int) -> None:
    current = _CURRENT.get()
    if current is not None:
        current.charge(size)


def _over(what: str, size: float) -> TemplateLimit:
    return TemplateLimit(f"{what} would build {size:,.0f} characters or items, over the limit "
                         f"of {MAX_VALUE:,} (a template builds no value that large)")


def allow(what: str, size: float) -> None:
    """Refuse building a value of `size` (characters or items); charge it otherwise."""
    if size > MAX_VALUE:
        raise _over(what, size)
    charge(int(size))


def text_size(value: Any, limit: int = MAX_VALUE) -> int:
    """About how long `value` is as text (at least), walked without recursion and given up
    past `limit`; the walk is charged to the render (it is work too)."""
    if type(value) is str:
        return len(value)
    total, seen, stack = 0, 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        seen += 1
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, Mapping):
            total += 4 * len(item) + 2
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 * len(item) + 2  # the separators; a small number's digits are not counted
            if total <= limit:
                stack.extend(i for i in item if not isinstance(i, _SCALARS)
                             or type(i) is int and i.bit_length() > 64)
                seen += len(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            total += max(1, item.bit_length() * 3 // 10)
        else:
            total += 8
    charge(seen)
    return total


_SCALARS = (int, float, type(None))


def as_text(what: str, value: Any) -> str:
    """`str(value)`, refused when it would be over `MAX_VALUE`."""
    if type(value) is str:
        return value
    allow(what, text_size(value))
    return str(value)


# --- operators -----------------------------------------------------------------------------

INTERCEPTED = frozenset({"*", "**", "%", "+"})
_PERCENT = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")


def _length(value: Any) -> int | None:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else None


def check_percent(fmt: str, args: Any) -> None:
    """`fmt % args`: no width or precision from the arguments (`%*s`), none past the limit."""
    for match in _PERCENT.finditer(fmt):
        for spec in match.groups():
            if spec == "*":
                raise TemplateLimit("'%*s' style formatting takes its width from the arguments "
                                    "(write the width in the format)")
            if spec is not None and int(spec) > MAX_VALUE:
                raise _over("a format width", int(spec))
    allow("the formatted text", len(fmt) + text_size(args))


def binop(operator: str, left: Any, right: Any) -> Any:
    """`left operator right` for the intercepted operators, its size checked first."""
    step()
    if operator == "*":
        for seq, count in ((left, right), (right, left)):
            size = _length(seq)
            if size is not None and isinstance(count, int):
                allow("repeating a value", size * max(count, 0))
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise TemplateLimit(f"a product over {MAX_INT_BITS} bits")
        return left * right
    if operator == "**":
        if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
            if right * math.log2(abs(left)) > MAX_INT_BITS:
                raise TemplateLimit(f"a power over {MAX_INT_BITS} bits ({left} ** {right})")
        return left**right
    if operator == "%":
        if isinstance(left, str):
            check_percent(left, right)
        return left % right
    if operator == "+":
        sizes = _length(left), _length(right)
        if sizes[0] is not None and sizes[1] is not None:
            allow("joining two values", sizes[0] + sizes[1])
        return left + right
    raise TemplateLimit(f"operator {operator!r} is not intercepted")  # pragma: no cover


def concat(parts: Iterable[Any]) -> str:
    """`a ~ b ~ c`, each part measured before it is made text, the sum checked."""
    step()
    texts = [as_text("a '~' concatenation", part) for part in parts]
    allow("a '~' concatenation", sum(map(len, texts)))
    return "".join(texts)


def bounded_join(pieces: Iterable[str]) -> str:
    """A template's output (Jinja's `Environment.concat`), refused past `MAX_VALUE`."""
    out, total = [], 0
    for piece in pieces:
        total += len(piece)
        if total > MAX_VALUE:
            raise TemplateLimit(f"the template renders to more than {MAX_VALUE:,} characters")
        out.append(piece)
    return "".join(out)


def loop(iterable: Any) -> Iterator[Any]:
    """A `{% for %}`'s iterable: each iteration is a step of the render's budget."""
    current = _CURRENT.get()
    for item in iterable:
        if current is not None:
            current.step()
        yield item


# --- calls and string methods ----------------------------------------------------------------

_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


def check_call(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse a string method call that would build a value over the limit."""
    owner = getattr(obj, "__self__", None)
    if not isinstance(owner, (str, bytes)):
        return
    name = getattr(obj, "__name__", "")
    if name in _WIDTH_METHODS and args and isinstance(args[0], int):
        allow(f"str.{name}", args[0])
    elif name == "replace" and len(args) >= 2:
        replace_size(owner, args[0], args[1], args[2] if len(args) > 2 else -1)
    elif name == "join" and args:
        items = args[0] if isinstance(args[0], (list, tuple)) else None
        if items is not None:
            allow("str.join", len(owner) * len(items) + sum(text_size(i) for i in items))
    elif name == "expandtabs":
        size = args[0] if args and isinstance(args[0], int) else 8
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        allow("str.expandtabs", len(owner) + tabs * size)
    elif name == "translate":
        raise TemplateLimit("str.translate is not available in templates")


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


# --- compiling -----------------------------------------------------------------------------


class BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator with `~` measured (`concat`), which the sandbox has no
    hook for (`counted_loops` does the same for loops)."""

    def visit_Concat(self, node: jinja2.nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")



def counted_loops(tree: Any) -> Any:
    """`tree` (a template about to be compiled) with each `{% for %}`'s iterable passed
    through `loop`, which counts the iterations (done before code generation, which
    collects the filters a template uses first)."""
    if isinstance(tree, jinja2.nodes.Node):
        for node in tree.find_all(jinja2.nodes.For):
            if not (isinstance(node.iter, jinja2.nodes.Filter) and node.iter.name == LOOP_FILTER):
                node.iter = jinja2.nodes.Filter(node.iter, LOOP_FILTER, [], [], None, None,
                                                lineno=node.iter.lineno)
    return tree
