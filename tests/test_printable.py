"""`printable`: order data printed as data, every other character as it is."""

from __future__ import annotations

import pytest

from connector.printable import printable


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("113-\x1b[2J", "113-\\x1b[2J"),  # an escape sequence: clear the screen
        ("ok\rMATCH", "ok\\rMATCH"),  # a carriage return rewriting the line
        ("a\nb", "a\\nb"),  # a forged line
        ("\ud800", "\\ud800"),  # a lone surrogate: print cannot encode it
        ("\x9b31m", "\\x9b31m"),  # C1 control sequence introducer
        ("\u202egnp.exe", "\\u202egnp.exe"),  # right-to-left override
        ("Müller 東京\ttab", "Müller 東京\ttab"),  # letters and tabs are left alone
    ],
)
def test_controls_are_escaped_and_text_is_not(text: str, shown: str) -> None:
    assert printable(text) == shown
    printable(text).encode("utf-8")  # always encodable


def test_lines_keeps_line_breaks_only() -> None:
    assert printable("a\n\x1bb\r", lines=True) == "a\n\\x1bb\\r"
