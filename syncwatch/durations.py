"""Human durations (``90s``, ``5m``, ``1h30m``, ``2d``) for config and scenario files.

Operators write schedules and timeouts by hand; a bare number is ambiguous (seconds? minutes?),
so only a number with a unit, or a plain number meaning seconds, is accepted.
"""

from __future__ import annotations

import math
import re

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(value: object) -> float:
    """Return seconds for ``value``; raise ``ValueError`` with a reason a person can act on.

    Any input is accepted and anything but a finite, non-negative duration is refused, so the
    config and scenario models can use this directly as a validator.
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 1h, got a boolean")
    if not isinstance(value, str | int | float):
        raise ValueError("expected a duration such as 30s, 5m or 1h")
    seconds = _parse_text(value) if isinstance(value, str) else float(value)
    if not math.isfinite(seconds):
        raise ValueError("expected a finite duration such as 30s, 5m or 1h")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def _parse_text(value: str) -> float:
    text = value.strip().replace(" ", "")
    if not text:
        raise ValueError("expected a duration such as 30s, 5m or 1h, got an empty string")
    position, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position == len(text):
        return total
    try:
        return float(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a duration; use a number with a unit: 30s, 5m, 1h, 2d"
        ) from None


def format_duration(seconds: float) -> str:
    """Render seconds the way a person writes them in a config file (``90`` → ``1m30s``)."""
    if seconds < 1 and seconds > 0:
        return f"{round(seconds * 1000)}ms"
    remaining = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
