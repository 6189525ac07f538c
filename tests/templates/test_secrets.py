"""templates.secrets: a rendered value leaves the template with its secrets as plain text.
(How templates may use a secret is tested through requests, in tests/test_render.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from connector.templates.secrets import Secret, reveal

KEY = Secret("k3y", "settings.app_key")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (KEY, "k3y"),
        ([{"a": [KEY, 1]}, "b"], [{"a": ["k3y", 1]}, "b"]),
        ({"k": {"n": KEY}}, {"k": {"n": "k3y"}}),
    ],
)
def test_reveal_replaces_every_secret(value: Any, expected: Any) -> None:
    assert reveal(value) == expected


@pytest.mark.parametrize("value", [[{"a": [1, "x"]}, None], {"k": {"n": (1, 2)}}, "text", 3])
def test_reveal_gives_a_value_without_secrets_back_as_it_is(value: Any) -> None:
    """Not a copy: a body of the order's items is not rebuilt for every request."""
    assert reveal(value) is value
