"""Building blocks shared by every config model: the strict base, durations, names, URLs, times.

Each type validates on parse and fails with a reason an operator can act on; the loader adds the
file and the key path. Bounds live with the field that needs them, not in a later pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import time
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from syncwatch.durations import format_duration, parse_duration


class Strict(BaseModel):
    """Unknown keys are errors, and inputs never appear in error text (they may be secrets)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, allow_inf_nan=False)


Seconds = Annotated[float, BeforeValidator(parse_duration)]
"""A duration written ``30s``, ``5m``, ``1h30m`` or as plain seconds; float seconds once parsed."""

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0


def between(at_least: float, at_most: float) -> AfterValidator:
    """Bounds for a ``Seconds`` field, reported the way the operator writes durations."""

    def check(seconds: float) -> float:
        if seconds < at_least:
            raise ValueError(f"must be at least {format_duration(at_least)}")
        if seconds > at_most:
            raise ValueError(f"must be at most {format_duration(at_most)}")
        return seconds

    return AfterValidator(check)


def matches(pattern: str, example: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"must look like {example}")
        return value

    return check


def _string(value: Any) -> Any:
    """Refuse YAML's surprise types: unquoted ``NO`` is false, ``012`` a number, ``1:30`` 90."""
    if isinstance(value, bool | int | float):
        raise ValueError(
            "must be a string; quote it (YAML reads NO, yes, 012 or 1:30 as other types)"
        )
    return value


Text = Annotated[str, BeforeValidator(_string)]
NonEmpty = Annotated[Text, AfterValidator(matches(r"(?s).*\S.*", "a non-empty string"))]
Name = Annotated[
    str,
    AfterValidator(
        matches(r"[a-z0-9][a-z0-9._-]{0,62}", "hubspot-prod (lowercase letters, digits, . _ -)")
    ),
]

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"


def _domain(value: str) -> str:
    if len(value) > 253 or not re.fullmatch(rf"{_LABEL}(\.{_LABEL})+", value):
        raise ValueError("must be a lowercase domain name you own, e.g. probe.example.com")
    return value


Domain = Annotated[str, AfterValidator(_domain)]


def _http_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError("must be an http:// or https:// URL") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() for c in value)
    ):
        raise ValueError("must be an http:// or https:// URL")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]
"""An http(s) URL kept exactly as written (``runbook_base_url`` is concatenated, not joined)."""

BaseUrl = Annotated[HttpUrl, AfterValidator(lambda url: url.rstrip("/"))]
"""A vendor host or prefix; a trailing slash is dropped so adapters can append paths."""


def _time_of_day(value: Any) -> time:
    if not isinstance(value, str):
        raise ValueError('must be a quoted time of day like "08:00"')
    match = re.fullmatch(r"([01]\d|2[0-3]|24):([0-5]\d)", value)
    if not match or (match.group(1) == "24" and match.group(2) != "00"):
        raise ValueError('must be a quoted time of day like "08:00" (00:00 to 24:00)')
    return time(0) if value == "24:00" else time(int(match.group(1)), int(match.group(2)))


TimeOfDay = Annotated[time, BeforeValidator(_time_of_day)]
"""``"HH:MM"`` local time; ``"24:00"`` is read as ``00:00``, which as an end means end of day."""


def _money(value: Any) -> Any:
    if isinstance(value, bool | float):
        raise ValueError('write money as a quoted decimal string, e.g. "3600.00"')
    if isinstance(value, str):
        try:
            Decimal(value)
        except InvalidOperation:
            raise ValueError('must be a decimal amount, e.g. "3600.00"') from None
    return value


Money = Annotated[Decimal, BeforeValidator(_money)]


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 contract``, ``2 contracts``."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"
