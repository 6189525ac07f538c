from __future__ import annotations

import time

import pytest

from connector import templates
from connector.errors import TemplateError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("../../admin", "..%2F..%2Fadmin"),
        ("a?b=c#d", "a%3Fb%3Dc%23d"),
        ("x%2Fy", "x%252Fy"),
        ("https://evil.example/", "https%3A%2F%2Fevil.example%2F"),
        ("902-1 2", "902-1%202"),
    ],
)
def test_path_values_are_one_escaped_segment(value: str, expected: str) -> None:
    assert templates.render("/orders/{{ id }}/cancel", {"id": value}, kind="path") == f"/orders/{expected}/cancel"


def test_xml_values_are_escaped() -> None:
    out = templates.render("<Id>{{ id }}</Id>", {"id": "</Id><StatusCode>Failure"}, kind="xml")
    assert out == "<Id>&lt;/Id&gt;&lt;StatusCode&gt;Failure</Id>"


def test_render_value_keeps_types_and_structure() -> None:
    ctx = {"order": {"items": [{"sku": "A"}], "n": 3, "id": '","x":"'}}
    body = {"items": "{{ order['items'] }}", "n": "{{ order.n }}", "note": "id {{ order.id }}", "k": 1}
    assert templates.render_value(body, ctx) == {
        "items": [{"sku": "A"}], "n": 3, "note": 'id ","x":"', "k": 1,
    }


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ order.__class__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ order.update({'a': 1}) }}",
        "{% for i in range(10**9) %}{% endfor %}",
    ],
)
def test_sandbox_refuses_escapes(template: str) -> None:
    start = time.monotonic()
    with pytest.raises(TemplateError):
        templates.render(template, {"order": {}})
    assert time.monotonic() - start < 2


def test_undefined_is_an_error_naming_the_template() -> None:
    with pytest.raises(TemplateError, match="missing"):
        templates.render("{{ order.missing }}", {"order": {}})


@pytest.mark.parametrize(
    ("source", "names", "refs"),
    [
        ("{{ order.id }}-{{ args.reason }}", {"order", "args"}, {"order.id", "args.reason"}),
        ("{{ steps.doc['url'] }}", {"steps"}, {"steps.doc.url"}),
        ("{% for i in order['items'] %}{{ i.sku }}{% endfor %}", {"order"}, {"order.items"}),
    ],
)
def test_variables_and_references(source: str, names: set[str], refs: set[str]) -> None:
    assert templates.variables(source) == names
    assert refs <= templates.dotted_references(source)


def test_syntax_error_reported_with_line() -> None:
    assert templates.check_syntax("a\n{{ x }") is not None
    assert templates.check_syntax("{{ x }}") is None


@pytest.mark.parametrize(("value", "expected"), [
    ("2020-02-04T13:11:06Z", 1580821866000),
    ("2020-02-04T13:11:06.5+00:00", 1580821866500),
    ("2020-02-04 13:11:06", 1580821866000),       # Magento's spelling, UTC
    ("2020-02-04T15:11:06+02:00", 1580821866000),
    (1580821866000, 1580821866000),
])
def test_epoch_ms_filter(value: object, expected: int) -> None:
    assert templates.render_value("{{ value | epoch_ms }}", {"value": value}) == expected


@pytest.mark.parametrize(("name", "template"), [("epoch_ms", "{{ value | epoch_ms }}"),
                                              ("add_days", "{{ value | add_days(1) }}")])
@pytest.mark.parametrize("value", ["yesterday", None, True])
def test_date_filters_refuse_what_is_not_a_time(name: str, template: str, value: object) -> None:
    with pytest.raises(TemplateError, match=name):
        templates.render_value(template, {"value": value})


@pytest.mark.parametrize(("value", "days", "expected"), [
    ("2026-12-06T04:00:00Z", -180, "2026-06-09T04:00:00Z"),
    ("2026-12-06 04:00:00", 1.5, "2026-12-07T16:00:00Z"),
    ("2026-12-06T04:00:00+02:00", 0, "2026-12-06T02:00:00Z"),
])
def test_add_days_filter(value: str, days: float, expected: str) -> None:
    assert templates.render("{{ value | add_days(days) }}", {"value": value, "days": days}) \
        == expected


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
    ],
)
def test_ordinary_templates_still_render(template: str, expected: str) -> None:
    assert templates.render(template, {}) == expected


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{{ 'x' * 10**9 }}", "repeating a value would build"),
        ("{{ 'x' | center(10**9) }}", "a width would build"),
        ("{{ lipsum(10**5) }}", "lipsum"),
        ("{% for i in range(100000) %}{% for j in range(100000) %}.{% endfor %}{% endfor %}",
         "loops inside loops run 10,000,000,000 times"),
        ("{% for i in range(10**9) %}{% endfor %}", "Range too big"),
        ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "macro 'm' calls itself"),
    ],
)
def test_check_limits_finds_what_every_render_refuses(template: str, problem: str) -> None:
    found = templates.check_limits(template)
    assert [line for line, _ in found] == [1] and problem in found[0][1]


@pytest.mark.parametrize("template", ["{{ order.id * 10**9 }}", "{{ 'x' * 10 }}",
                                      "{% for i in order.items %}{% for j in range(9) %}{% endfor %}{% endfor %}"])
def test_check_limits_leaves_what_depends_on_the_order(template: str) -> None:
    assert templates.check_limits(template) == []


def test_deeply_nested_template_is_a_syntax_error_not_a_crash() -> None:
    assert templates.check_syntax("{{ " + "(" * 2000 + "1" + ")" * 2000 + " }}") is not None
