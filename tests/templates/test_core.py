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


def test_a_kept_refusal_does_not_keep_what_the_render_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run keeps a failed action's error; through its cause's frames it kept the lists the
    render had built (a hundred megabytes per error at the render bounds)."""
    import gc

    from connector.templates import limits

    monkeypatch.setattr(limits, "MAX_WORK", 1_000_000)
    template = "".join(f"{{% set a{n} = range(99999) | list %}}" for n in range(10))
    with pytest.raises(TemplateError, match="characters built in one render") as caught:
        templates.render(template, {})
    kept = caught.value  # noqa: F841 (held, as a run's record holds it)
    # kept means reachable: what only waits for the cycle collector is not (on Python 3.10
    # the collection the refusal runs leaves some to a later one)
    gc.collect()
    assert not [o for o in gc.get_objects() if type(o) is list and len(o) == 99_999]


@pytest.mark.parametrize(("expression", "result", "refusal"), [
    ("[].{sku: sku, qty: quantity}", "[{'sku': 'A', 'qty': 2}]", ""),
    ("[?quantity > `1`].sku | [0]", "A", ""),
    ("[].sku[", "", "jmespath '\\[\\].sku\\['"),
    # the mappings' depth bound, worded as theirs (it was 'nested too deeply (a macro
    # calling itself?)', from the parser's RecursionError)
    ("[" * 70 + "]" * 70, "", "nesting deeper than 64 levels"),
])
def test_the_jmespath_filter(expression: str, result: str, refusal: str) -> None:
    context = {"items": [{"sku": "A", "quantity": 2}], "e": expression}
    if not refusal:
        assert templates.render("{{ items | jmespath(e) }}", context) == result
        return
    with pytest.raises(TemplateError, match=refusal):
        templates.render("{{ items | jmespath(e) }}", context)
