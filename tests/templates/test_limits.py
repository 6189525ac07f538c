"""templates.limits and templates.filters: every render is bounded, ordinary ones unchanged."""

from __future__ import annotations

import contextvars

import pytest

from connector import templates
from connector.templates import limits
from connector.errors import TemplateError


@pytest.mark.parametrize(
    ("template", "refusal"),
    [
        ("{{ 'x' * 10**9 }}", "repeating a value would build 1,000,000,000"),
        ("{{ [0] * 10**8 }}", "repeating a value would build 100,000,000"),
        ("{{ '%*s' % (10**9, 'x') }}", "'%*s' style formatting"),
        ("{{ '%1000000000s' % 'x' }}", "a format width would build"),
        ("{{ 'x' | center(10**9) }}", "a width would build"),
        ("{{ 'x' | indent(10**9, true) }}", "a width would build"),
        ("{{ 'x'.ljust(10**9) }}", "str.ljust would build"),
        ("{{ '{:>1000000000}'.format('x') }}", "str.format would build"),
        ("{{ '{:>{w}}'.format('x', w=10**9) }}", "a format width taken from an argument"),
        ("{{ ('x' * 100000) | replace('x', 'x' * 100000) }}", "replace would build"),
        ("{{ [1] | batch(10**9, 0) | list }}", "a batch or slice count would build"),
        ("{{ [[0] * 100000] * 1000 | sum(start=[]) }}", "sum adds numbers only"),
        ("{{ lipsum(10**5) }}", "lipsum: at most 100 paragraphs"),
        ("{{ 10 ** 100000 }}", "a power over 4096 bits"),
        ("{{ [[0] * 100000] * 100000 }}", "an output would build"),
        ("{{ range(1000) | map('center', 999999) | list | length }}", "characters built in one render"),
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
         "more than 200,000 loop iterations"),
        ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "calls nested deeper than 64"),
        ("{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}", "calls nested deeper than 64"),
        ("{% macro d(s, n) %}{{ d(s ~ s, n - 1) if n else s }}{% endmacro %}{{ d('x', 40) }}",
         "a '~' concatenation would build"),
        ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
         "{% endfor %}{{ ns.s }}", "a '~' concatenation would build"),
        ("{{ 'x' * 600000 ~ 'y' * 600000 }}", "a '~' concatenation would build"),
        # an iterator joined: Python's MemoryError (asking for 100 GB) said nothing
        ("{{ range(100000) | map('string') | join('x' * 999999) }}",
         "join would build more than 1,000,000 characters"),
        ("{{ ('x' * 999999).join(range(100000) | map('string')) }}",
         "str.join would build more than 1,000,000 characters"),
        ("{{ range(100000) | select | join('x' * 999999, attribute='real') }}",
         "join would build more than 1,000,000 characters"),
    ],
)
def test_renders_are_bounded(template: str, refusal: str) -> None:
    """Each of these built gigabytes or ran for minutes (or hit RecursionError) before."""
    with pytest.raises(TemplateError, match="refused by the template sandbox") as caught:
        templates.render(template, {})
    assert refusal in str(caught.value)


@pytest.mark.parametrize("expression", ["'x' * 10**9", "[0] * 10**8", "'x' | center(10**9)",
                                        "'%*s' % (10**9, 'x')"])
def test_expressions_are_bounded(expression: str) -> None:
    """`render_value`'s single expressions (JSON bodies, arguments) and `expr:` conditions."""
    with pytest.raises(TemplateError, match="refused by the template sandbox"):
        templates.evaluate(expression, {})


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ 'x' * 10 }}", "xxxxxxxxxx"),
        ("{{ '%05d' % 42 }}", "00042"),
        ("{{ '{:>5}'.format('x') }}", "    x"),
        ("{{ 'ab' | center(6) }}", "  ab  "),
        ("{{ [1, 2] + [3] }}", "[1, 2, 3]"),
        ("{{ 2 ** 10 }}", "1024"),
        ("{{ 'a' ~ 1 ~ none }}", "a1None"),
        ("{% for i in range(3) %}{% for j in range(2) %}{{ i }}{{ j }}{% endfor %}{% endfor %}",
         "000110112021"),
        ("{% macro m(n) %}{{ n }}{{ m(n - 1) if n else '' }}{% endmacro %}{{ m(3) }}", "3210"),
        ("{{ [1, 2] | sum }}", "3"),
        ("{{ 'a-b' | replace('-', '+') }}", "a+b"),
        ("{{ range(3) | map('string') | join('-') }}", "0-1-2"),
        ("{{ '-'.join(range(3) | map('string')) }}", "0-1-2"),
        ("{{ [{'n': 1}, {'n': 2}] | join(',', attribute='n') }}", "1,2"),
        ("{{ 'ab' | join('-') }}", "a-b"),
        ("{% for i in range(100) %}{% if loop.last %}{{ loop.length }}{% endif %}{% endfor %}",
         "100"),
    ],
)
def test_ordinary_templates_still_render(template: str, expected: str) -> None:
    assert templates.render(template, {}) == expected


BIG = "x" * 600_000
ITEMS = list(range(2000))


@pytest.mark.parametrize(
    ("template", "context", "refusal"),
    [
        # a look-up-only template renders without a budget: its output is still capped
        ("{{ big }}{{ big }}", {"big": BIG}, "renders to more than 1,000,000 characters"),
        # more pieces than one measured chunk of the output
        ("{% for i in items %}{{ small }}{% endfor %}", {"items": ITEMS, "small": "y" * 1000},
         "renders to more than 1,000,000 characters"),
        # a list's length is charged as its loop starts, an unsized iterable's item by item
        ("{% for i in items %}{% for j in items %}{% endfor %}{% endfor %}", {"items": ITEMS},
         "more than 200,000 loop iterations"),
        ("{% for i in items | reverse %}{% for j in items | reverse %}{% endfor %}"
         "{% endfor %}", {"items": ITEMS}, "more than 200,000 loop iterations"),
    ],
)
def test_bounds_hold_on_the_fast_paths(template: str, context: dict[str, object],
                                       refusal: str) -> None:
    with pytest.raises(TemplateError, match="refused by the template sandbox") as caught:
        templates.render(template, context)
    assert refusal in str(caught.value)


def test_an_expression_that_builds_its_value_is_measured() -> None:
    """A plain look-up (`order.id`) is the caller's own data and is not measured; a value
    the expression builds is, though each operator alone stays under the limit."""
    context = {"order": {"id": "x" * 10}}
    assert templates.evaluate("order.id", context) == "x" * 10
    with pytest.raises(TemplateError, match="the expression's value would build"):
        templates.evaluate("[[order.id] * 1000] * 1000", context)


@pytest.mark.parametrize(("count", "refused"), [(10, False), (2000, True)])
def test_the_clock_is_read_every_so_many_steps(monkeypatch: pytest.MonkeyPatch, count: int,
                                               refused: bool) -> None:
    """With the deadline already past, a render is stopped at the first reading of the clock,
    which a loop charged all at once reaches too; a short render never reads it."""
    monkeypatch.setattr(limits, "MAX_SECONDS", -1.0)
    template = "{% for i in items %}.{% endfor %}"
    if not refused:
        assert templates.render(template, {"items": list(range(count))}) == "." * count
        return
    with pytest.raises(TemplateError, match="rendering took longer than"):
        templates.render(template, {"items": list(range(count))})


@pytest.mark.parametrize(
    "template",
    [
        # filters each a step: an unguarded one (int) never counted
        "{{ x | int }}" * 1100,
        # the items a filter goes through tick the clock, lazy ones' level by level
        "{{ range(100000) | map('int') | list | length }}",
        "{{ range(100000) | select | select | list | length }}",
        "{{ range(100000) | reject('none') | list | length }}",
        "{{ range(100000) | max }}",
        "{{ range(100000) | select | join }}",
        # a long loop charged at once, whose body takes no step
        "{% for i in range(100) %}{{ i in [1] }}{% endfor %}",
        # characters built
        "{{ ('x' * 300000) | upper }}",
    ],
)
def test_every_bounded_step_reaches_the_clock(monkeypatch: pytest.MonkeyPatch,
                                              template: str) -> None:
    """With the deadline already past, each of these is stopped at a reading of the clock;
    none read it before (a chain of 100 `map('int')` over `range(100000)` ran 14 s, a loop of
    `range(100000) | max` 23 s, a loop of `x in big` 99 s, all past the 2 s bound)."""
    monkeypatch.setattr(limits, "MAX_SECONDS", -1.0)
    with pytest.raises(TemplateError, match="rendering took longer than"):
        templates.render(template, {"x": 1})


@pytest.mark.parametrize(("template", "refused"), [
    ("{{ -1 in big }}", True),
    ("{% if -1 not in big %}.{% endif %}", True),
    ("{{ big == big }}", True),
    ("{{ 'z' in text }}", True),
    ("{{ 1 in small }}{{ small == [1, 2] }}", False),
])
def test_a_comparison_goes_through_its_operand_on_the_clock(
        monkeypatch: pytest.MonkeyPatch, template: str, refused: bool) -> None:
    """`in` and `==` go through a list or a string at C speed with no hook: a template of
    thousands of `{{ -1 in big }}` (no loop, no filter: it had no budget) ran unbounded. Its
    right operand now ticks the clock by its length (past deadline: refused at once); a short
    one never reaches a reading."""
    monkeypatch.setattr(limits, "MAX_SECONDS", -1.0)
    context = {"big": list(range(100_000)), "text": "x" * 100_000, "small": [1, 2]}
    if not refused:
        assert templates.render(template, context) == "TrueTrue"
        return
    with pytest.raises(TemplateError, match="rendering took longer than"):
        templates.render(template, context)


def test_a_memory_error_says_what_it_means() -> None:
    """Past every bound (Python asked for more memory than there is), the refusal still
    says why; it said nothing (`str(MemoryError())` is empty)."""
    def boom() -> None:
        raise MemoryError

    with pytest.raises(TemplateError, match="asked for more memory than there is"):
        templates.render("{{ f() }}", {"f": boom})


@pytest.mark.parametrize(
    "line",
    ["{% set a = range(99999) | list %}", "{% set a = range(99999) | reverse | list %}",
     "{% set a = ('x ' * 49999).split() %}"],
)
def test_what_a_filter_or_call_collects_is_charged(monkeypatch: pytest.MonkeyPatch,
                                                   line: str) -> None:
    """Each of these lists was charged one item: a template of such lines held gigabytes
    (200 lines of `range(100000) | list`: 789 MB). Now each is charged as it would print
    (with a budget of a tenth, ten lines are enough to tell)."""
    monkeypatch.setattr(limits, "MAX_WORK", limits.MAX_WORK // 10)
    template = "\n".join(line.replace(" a ", f" a{n} ") for n in range(10))
    with pytest.raises(TemplateError, match="characters built in one render"):
        templates.render(template, {})


HELD = "{% set a = range(99999) | list %}{% set b = range(99999) | list %}."


def test_renders_at_once_share_one_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each of apply's concurrent orders built up to a render's bound (120 MB at eight, on
    top of the project). Now what they build together is drawn from one pool: with another
    render (a context of its own, as another thread's order is) holding most of it, a render
    building past its free part is refused; once the other has ended, it renders."""
    monkeypatch.setattr(limits, "POOL", limits.Pool(limits.MAX_WORK))
    other = contextvars.copy_context()
    token = other.run(limits.begin)
    other.run(limits.charge, limits.MAX_WORK - 100_000)
    with pytest.raises(TemplateError, match="the renders running at once in this process "
                                            "built more than 10,000,000 characters"):
        templates.render(HELD, {})
    other.run(limits.end, token)
    assert limits.POOL.left == limits.MAX_WORK
    assert templates.render(HELD, {}) == "."
    assert limits.POOL.left == limits.MAX_WORK


@pytest.mark.parametrize(
    ("template", "refusal"),
    [(HELD, None), ("{% for i in range(99) %}{% set a = range(99999) | list %}{% endfor %}",
                    "characters built in one render")],
)
def test_a_render_gives_back_what_it_drew(template: str, refusal: str | None) -> None:
    """Rendered or refused, a render's draw returns to the pool as it ends."""
    before = limits.POOL.left
    if refusal is None:
        templates.render(template, {})
    else:
        with pytest.raises(TemplateError, match=refusal):
            templates.render(template, {})
    assert limits.POOL.left == before == limits.POOL.size


def test_an_ordinary_render_draws_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its first characters are free of the pool: an ordinary render never takes its lock."""
    monkeypatch.setattr(limits, "POOL", limits.Pool(0))
    items = [{"sku": f"S{i}"} for i in range(50)]
    assert templates.render("{% for i in items %}{{ i.sku | upper }},{% endfor %}",
                            {"items": items}).count(",") == 50
