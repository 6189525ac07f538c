"""Order data printed as data: the one escaping every reporter applies to what it prints.

An order's fields are written by a marketplace's buyers and sellers. Printed raw, an id or a
reason holding `\\x1b[2J`, `\\r` or a line break could clear or rewrite the operator's
terminal, forge a line of `explain`'s verdicts or of a run's summary, and a lone surrogate
(`"\\ud800"`, valid in JSON) cannot be encoded to UTF-8 at all: `print` fails on it. Every
reporter (`explain`, `plan`, the run summaries, the CLI's error line) passes its text through
`printable`, which writes such characters as Python escapes (`\\x1b`, `\\r`, `\\ud800`) and
leaves every other character, accented letters and CJK included, as it is.
"""

from __future__ import annotations

import re

#: C0 controls but tab, DEL and C1 controls, lone surrogates, the bidirectional overrides
#: and isolates (text that reads backwards on screen) and the Unicode line separators.
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff\u200e\u200f\u202a-\u202e"
                     "\u2028\u2029\u2066-\u2069]")
_UNSAFE_KEEPING_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u200e\u200f"
                                   "\u202a-\u202e\u2028\u2029\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code == 0x0A:
        return "\\n"
    if code == 0x0D:
        return "\\r"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str, *, lines: bool = False) -> str:
    """`text` with its control characters, escape sequences and unencodable characters
    escaped; with `lines`, line breaks are kept (a reporter's own multi-line text whose
    parts were made printable already)."""
    pattern = _UNSAFE_KEEPING_LINES if lines else _UNSAFE
    return pattern.sub(_escape, text)
