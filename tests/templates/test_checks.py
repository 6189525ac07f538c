"""templates.checks: what every render would refuse, found by validate without rendering."""

from __future__ import annotations

import pytest

from connector import templates


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
        ("{{ range(100000) | map('string') | join('x' * 999999) }}",
         "join would build more than 1,000,000 characters"),
    ],
)
def test_check_limits_finds_what_every_render_refuses(template: str, problem: str) -> None:
    found = templates.check_limits(template)
    assert [line for line, _ in found] == [1] and problem in found[0][1]


@pytest.mark.parametrize("template", ["{{ order.id * 10**9 }}", "{{ 'x' * 10 }}",
                                      "{% for i in order.items %}{% for j in range(9) %}{% endfor %}{% endfor %}"])
def test_check_limits_leaves_what_depends_on_the_order(template: str) -> None:
    assert templates.check_limits(template) == []
