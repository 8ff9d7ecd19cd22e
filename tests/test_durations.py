"""Durations as operators write them."""

from __future__ import annotations

import pytest

from syncwatch.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("2d", 172_800.0),
        ("250ms", 0.25),
        ("1.5h", 5400.0),
        ("45", 45.0),
        (" 10 s ", 10.0),
        (12, 12.0),
        (0.5, 0.5),
    ],
)
def test_valid_durations(text: str | float, seconds: float) -> None:
    """Units s, m, h, d, ms combine; a bare number means seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("5 minutes", "is not a duration"),
        ("m5", "is not a duration"),
        ("", "empty string"),
        ("-5", "negative"),
        (-1, "negative"),
        (True, "boolean"),
        ([1], "expected a duration"),
        (None, "expected a duration"),
        ("inf", "finite"),
        (float("nan"), "finite"),
    ],
)
def test_invalid_durations_say_why(text: object, reason: str) -> None:
    """Each rejection names what is wrong."""
    with pytest.raises(ValueError, match=reason):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(90, "1m30s"), (0, "0s"), (0.25, "250ms"), (86_400, "1d")]
)
def test_format_duration(seconds: float, text: str) -> None:
    """Formatting is the inverse a person expects."""
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds
