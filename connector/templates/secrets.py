"""Secret settings are opaque in templates: rendered as they are where a request needs them,
never transformed into a spelling the masking does not know.

Masking (`render.Redactor`) recognises a secret by its value and a few encodings of it. A
template could print it in any other: `{{ settings.app_key | join('-') }}` gave
`S-E-C-R-E-T` in `explain`, `| reverse` and `| list` likewise. So a request's templates see
each secret setting as a `Secret`, which a template can only

* output as it is (`{{ settings.app_key }}`),
* join with text (`'Bearer ' ~ settings.token`: the result is a `Secret` too),
* encode for HTTP Basic (`(id ~ ':' ~ secret) | b64encode`: a `Secret` too),
* test (`{% if settings.token %}`, `==`);

any other use (a filter that reads it as text or as a sequence, a method, formatting) is
refused with the setting's name: `SecretRefused`, a sandbox error. The rendered value leaves
the template as plain text (`reveal`), in the request and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn

from jinja2.sandbox import SecurityError


class SecretRefused(SecurityError):
    """A template transformed a secret setting."""


class Secret:
    """A secret setting's value, as request templates see it."""

    __slots__ = ("_value", "_name")

    def __init__(self, value: str, name: str) -> None:
        self._value = value
        self._name = name

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise SecretRefused(
            f"{self._name} is a secret: a template may output it as it is, join it with "
            f"text (~) or b64encode it, nothing else (a transformed secret could not be "
            f"masked in output)")

    __str__ = __iter__ = __format__ = __getitem__ = __reversed__ = _refuse

    def __repr__(self) -> str:
        return f"<secret {self._name}>"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return self._value == other._value
        return self._value == other

    def __hash__(self) -> int:
        return hash(self._value)


def opaque(settings: Mapping[str, Any], secret: Iterable[str]) -> dict[str, Any]:
    """`settings` with the values of the `secret` names (when set) as `Secret`s."""
    wrapped = dict(settings)
    for name in secret:
        value = wrapped.get(name)
        if isinstance(value, str) and value:
            wrapped[name] = Secret(value, f"settings.{name}")
    return wrapped


def reveal(value: Any) -> Any:
    """A rendered value as plain data: each `Secret` in it as its text (the value itself,
    not a copy, when it holds none: found by one walk that builds nothing)."""
    kind = type(value)
    if kind is Secret:
        return value._value
    if kind in _PLAIN or not _holds_secret(value):
        return value
    return _revealed(value)


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _holds_secret(value: Any) -> bool:
    """Whether a `Secret` is in `value` or in its dicts and lists, walked without recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in _PLAIN:
            continue
        if kind is Secret:
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _revealed(value: Any) -> Any:
    if isinstance(value, Secret):
        return value._value
    if isinstance(value, dict):
        return {k: _revealed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_revealed(v) for v in value]
    return value


def joined(parts: list[Any], concat: Callable[[list[Any]], str]) -> Secret:
    """`a ~ b` with a secret among the parts: the joined text (by `concat`), a secret too."""
    name = next(p._name for p in parts if isinstance(p, Secret))
    return Secret(concat([p._value if isinstance(p, Secret) else p for p in parts]), name)


def encoded(secret: Secret, encode: Callable[[str], str]) -> Secret:
    """A secret encoded for a request (`b64encode`), a secret too."""
    return Secret(encode(secret._value), secret._name)
