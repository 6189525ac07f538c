"""templates.syntax: what validate asks of a template without rendering it."""

from __future__ import annotations

import pytest

from connector import templates


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


def test_deeply_nested_template_is_a_syntax_error_not_a_crash() -> None:
    assert templates.check_syntax("{{ " + "(" * 2000 + "1" + ")" * 2000 + " }}") is not None
