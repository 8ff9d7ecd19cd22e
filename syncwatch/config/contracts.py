"""Contracts: a vendor's SLA as the customer signed it (DESIGN §7, issue #4's schema).

The same shape serves ``contracts:`` entries in the config and standalone contract files for
``syncwatch sla evaluate``. Percentages, rates and money are ``Decimal`` so ``sla.py`` can compare
them exactly (99.9 exactly earns no credit; floats would get that wrong). Only the shape and
obvious nonsense are checked here; the arithmetic lives in ``sla.py``.
"""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import (
    AfterValidator,
    AwareDatetime,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from syncwatch.config.accounts import VENDORS
from syncwatch.config.base import Money, Name, Strict, TimeOfDay, matches
from syncwatch.config.errors import validate_model
from syncwatch.yamlfile import read_yaml

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Percent = Annotated[Decimal, Field(gt=0, le=100)]


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError("must be an IANA time zone name, e.g. America/New_York or UTC") from None
    return name


def _vendor(name: str) -> str:
    if name not in VENDORS:
        raise ValueError(f"unknown vendor; expected one of {', '.join(VENDORS)}")
    return name


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute


def _span(start: time, end: time) -> tuple[int, int]:
    """Minutes of the day covered by start to end; an end of 00:00/24:00 means end of day."""
    return _minutes(start), _minutes(end) or 24 * 60


def _end_after_start(end: time, info: ValidationInfo, reason: str = "must be after start") -> time:
    """Same-day local windows: the end must come after the start (00:00 as end is midnight)."""
    start = info.data.get("start")
    if start is not None and _span(start, end)[1] <= _minutes(start):
        raise ValueError(reason)
    return end


class DowntimeRule(Strict):
    error_rate_above: Decimal = Field(default=Decimal("0.10"), ge=0, lt=1)
    min_calls: int = Field(default=1, ge=1)
    lost_probe: bool = True
    latency_above_s: float | None = Field(default=None, gt=0)
    min_consecutive_minutes: int | None = Field(default=None, ge=1)


class Holidays(Strict):
    """Public holidays from the ``holidays`` package, which knows the country and region."""

    country: Annotated[str, AfterValidator(matches(r"[A-Z]{2}", "US (ISO 3166 alpha-2)"))]
    subdivision: str | None = None

    @field_validator("country")
    @classmethod
    def _known_country(cls, country: str) -> str:
        if country not in holidays.list_supported_countries():
            raise ValueError("no holiday calendar is known for this country")
        return country

    @model_validator(mode="after")
    def _known_subdivision(self) -> Holidays:
        known = holidays.list_supported_countries().get(self.country, [])
        if self.subdivision is not None and self.subdivision not in known:
            sample = ", ".join(known[:6]) or "none"
            raise ValueError(
                f"subdivision {self.subdivision!r} is not one of {self.country}'s ({sample}, …)"
            )
        return self


class Calendar(Strict):
    """Business hours: when present, only these local minutes count towards uptime."""

    days: list[Weekday] = Field(min_length=1)
    start: TimeOfDay
    end: TimeOfDay
    holidays: Holidays | None = None

    @field_validator("days")
    @classmethod
    def _unique(cls, days: list[Weekday]) -> list[Weekday]:
        if len(set(days)) != len(days):
            raise ValueError("lists a day twice")
        return days

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: time, info: ValidationInfo) -> time:
        return _end_after_start(end, info)


class OneOffWindow(Strict):
    start: AwareDatetime
    end: AwareDatetime

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise ValueError("must be after start")
        return end


class WeeklyWindow(Strict):
    weekly: Weekday
    start: TimeOfDay
    end: TimeOfDay

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: time, info: ValidationInfo) -> time:
        reason = "must be after start (a window cannot cross midnight; split it)"
        return _end_after_start(end, info, reason)


def _window_kind(value: Any) -> str:
    weekly = isinstance(value, WeeklyWindow) or (isinstance(value, dict) and "weekly" in value)
    return "weekly" if weekly else "one_off"


MaintenanceWindow = Annotated[
    Annotated[OneOffWindow, Tag("one_off")] | Annotated[WeeklyWindow, Tag("weekly")],
    Discriminator(_window_kind),
]


class CreditTier(Strict):
    below: Percent
    credit: Percent


class LatencyObjective(Strict):
    percentile: float = Field(gt=0, le=100)
    threshold_s: float = Field(gt=0)


class Contract(Strict):
    name: Name
    vendor: Annotated[str, AfterValidator(_vendor)]
    integrations: list[Name] = Field(default_factory=list)
    timezone: Annotated[str, AfterValidator(_zone)]
    objective_percent: Percent
    interval_minutes: int = Field(default=5, ge=1, le=60)
    downtime: DowntimeRule = DowntimeRule()
    unknown: Literal["exclude", "up", "down"] = "exclude"
    calendar: Calendar | None = None
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    credits: list[CreditTier] = Field(default_factory=list)
    credit_cap_percent: Decimal = Field(default=Decimal(100), ge=0, le=100)
    min_credit_amount: Money = Field(default=Decimal(0), ge=0)
    monthly_fee: Money = Field(ge=0)
    currency: Annotated[str, AfterValidator(matches(r"[A-Z]{3}", "USD (ISO 4217)"))] = "USD"
    claim_window_days: int | None = Field(default=None, ge=0, le=366)
    claim_deadline: Literal["end_of_next_month"] | None = None
    termination_after: int | None = Field(default=None, ge=1)
    latency_objective: LatencyObjective | None = None

    @field_validator("maintenance")
    @classmethod
    def _weekly_overlap(cls, windows: list[OneOffWindow | WeeklyWindow]) -> list[Any]:
        weekly = [(i, w) for i, w in enumerate(windows) if isinstance(w, WeeklyWindow)]
        for n, (i, first) in enumerate(weekly):
            for j, second in weekly[n + 1 :]:
                a, b = _span(first.start, first.end), _span(second.start, second.end)
                if first.weekly == second.weekly and a[0] < b[1] and b[0] < a[1]:
                    raise ValueError(f"weekly windows [{i}] and [{j}] overlap on {first.weekly}")
        return windows

    @field_validator("credits")
    @classmethod
    def _tiers_descend(cls, tiers: list[CreditTier]) -> list[CreditTier]:
        for i in range(1, len(tiers)):
            if tiers[i].below >= tiers[i - 1].below:
                raise ValueError("tiers must be listed with `below` strictly descending")
            if tiers[i].credit <= tiers[i - 1].credit:
                raise ValueError("a lower tier must give a larger credit than the one above it")
        return tiers

    @field_validator("claim_deadline")
    @classmethod
    def _one_deadline(cls, deadline: str | None, info: ValidationInfo) -> str | None:
        if deadline is not None and info.data.get("claim_window_days") is not None:
            raise ValueError("set either claim_window_days or claim_deadline, not both")
        return deadline

    @model_validator(mode="after")
    def _default_window(self) -> Contract:
        if self.claim_deadline is None and self.claim_window_days is None:
            self.claim_window_days = 30
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def load_contract(path: Path) -> Contract:
    """A standalone contract file (``sla evaluate --contract``); problems name file and key."""
    return validate_model(Contract, read_yaml(path), path)
