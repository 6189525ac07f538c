"""The one ISO 8601 parser reads what each system writes, identically on Python 3.10 and 3.11+."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from connector.timestamps import parse_iso

UTC = timezone.utc


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-01-05T10:00:00Z", datetime(2026, 1, 5, 10, tzinfo=UTC)),                 # Amazon
    ("2026-01-05T10:00:00.123Z", datetime(2026, 1, 5, 10, 0, 0, 123000, tzinfo=UTC)),
    ("2026-01-05 10:00:00", datetime(2026, 1, 5, 10, tzinfo=UTC)),                  # Magento
    ("2026-01-05T10:00:00.1234567+00:00",                                            # VTEX
     datetime(2026, 1, 5, 10, 0, 0, 123456, tzinfo=UTC)),
    ("2026-01-05T10:00:00-03:00",
     datetime(2026, 1, 5, 10, tzinfo=timezone(timedelta(hours=-3)))),
    ("2026-01-05", datetime(2026, 1, 5, tzinfo=UTC)),
    ("  2026-01-05T10:00:00z ", datetime(2026, 1, 5, 10, tzinfo=UTC)),
])
def test_each_systems_spelling_is_read(text: str, expected: datetime) -> None:
    moment = parse_iso(text)
    assert moment == expected
    assert moment.tzinfo is not None


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01T00:00:00Z", "2026-01-05T25:00"])
def test_what_is_not_a_date_time_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_iso(text)
