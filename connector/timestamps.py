"""ISO 8601 date-times as the systems write them, parsed the same way on every Python.

One parser for the whole project: `datetime.fromisoformat` accepts `Z`, a space for `T` and
any number of fraction digits only from Python 3.11, and the systems send all three (Amazon
`Z`, Magento a space, VTEX seven fraction digits). Normalising first keeps 3.10 and 3.11+
reading the same values the same way.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

_DATE_SPACE_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d)")
_FRACTION = re.compile(r"\.(\d+)")


def parse_iso(text: str) -> datetime:
    """An aware UTC-comparable datetime; a naive value is taken as UTC.

    Raises ValueError (with the text) when `text` is not an ISO 8601 date or date-time.
    """
    value = text.strip()
    value = _DATE_SPACE_TIME.sub(r"\1T\2", value, count=1)
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    value = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], value, count=1)
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
