"""Quota figures as vendors report them, and the quota guard (DESIGN §5).

The guard exists because the monitor must never cause the outage it watches: every call it makes
is taken from the allowance the production sync lives on. Everything here is pure: parsers take
header values, the guard takes figures and counts, nothing reads a clock or the store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta

from syncwatch.events import QuotaFigure

READING_TRUSTED_FOR = timedelta(hours=1)
"""A daily figure's *remaining* count older than this says nothing about now. While the guard
skips probes nothing refreshes an account's figure; after this long the reserve no longer holds
probes back, so one probe may run (about three calls an hour) to learn whether the allowance
has recovered, and the ``quota_low`` check stops judging by it. The *limit* stays known: the
monitor's own share of it is counted from its own calls, which are never stale."""

_DIGITS = re.compile(r"[0-9]+")
_PARDOT_USAGE = re.compile(r"\s*([0-9]+)\s*(?:/\s*([0-9]+)\s*)?")
#: ``api-usage=25/5000`` and ``per-app-api-usage=17/250(appName=sample-connected-app)``.
_SFORCE_PAIR = re.compile(r"([A-Za-z][\w-]*)=(\d+)/(\d+)(?:\(appName=([^)]*)\))?")


def parse_sforce_limit_info(value: str | None) -> list[QuotaFigure]:
    """Every ``key=used/max`` pair of a ``Sforce-Limit-Info`` header.

    Salesforce documents ``api-usage`` (the org's rolling 24 h allowance) and
    ``per-app-api-usage`` (a connected app's share, tagged with its name); later releases may
    add pairs, so any pair is kept under its own key. Source:
    https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm
    """
    if not value:
        return []
    figures = []
    for key, used, limit, app in _SFORCE_PAIR.findall(value):
        window = f"{key}:{app}" if app else key
        figures.append(QuotaFigure(window, int(used), int(limit)))
    return figures


def parse_hubspot_headers(headers: Mapping[str, str]) -> list[QuotaFigure]:
    """The daily and the rolling-window figures of HubSpot's ``X-HubSpot-RateLimit-*`` headers.

    HubSpot sends remaining counts, not used ones: used = limit - remaining. The rolling window
    is named by its length (``10s``). Search responses carry none of these headers. Source:
    https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    figures = []
    daily = _pair(lowered, "x-hubspot-ratelimit-daily", "x-hubspot-ratelimit-daily-remaining")
    if daily is not None:
        figures.append(QuotaFigure("daily", daily[0] - daily[1], daily[0]))
    window = _pair(lowered, "x-hubspot-ratelimit-max", "x-hubspot-ratelimit-remaining")
    interval_ms = _integer(lowered.get("x-hubspot-ratelimit-interval-milliseconds"))
    if window is not None:
        name = f"{interval_ms / 1000:g}s" if interval_ms else "window"
        figures.append(QuotaFigure(name, window[0] - window[1], window[0]))
    return figures


def parse_pardot_usage(value: str | None, daily_limit: int) -> list[QuotaFigure]:
    """Account Engagement's opt-in ``x-api-usage`` header as the ``daily`` figure: ``USED/MAX``,
    or ``USED`` of the configured ``daily_limit``.

    The v5 overview describes it only as the calls made in the last day over the maximum the
    account can make (sent when the request carries ``X-Return-Api-Usage``). unconfirmed: its
    exact format; anything but those two shapes is no figure, never a guess.
    """
    match = _PARDOT_USAGE.fullmatch(value or "")
    if match is None:
        return []
    limit = int(match.group(2)) if match.group(2) else daily_limit
    return [QuotaFigure("daily", int(match.group(1)), limit)] if limit > 0 else []


def _pair(headers: Mapping[str, str], limit_key: str, remaining_key: str) -> tuple[int, int] | None:
    limit, remaining = _integer(headers.get(limit_key)), _integer(headers.get(remaining_key))
    if limit is None or remaining is None or limit <= 0:
        return None
    return limit, min(max(remaining, 0), limit)


def _integer(value: str | None) -> int | None:
    """ASCII digits only: ``str.isdigit`` also accepts "²", which ``int`` then refuses."""
    if value is None or not _DIGITS.fullmatch(value.strip()):
        return None
    return int(value.strip())


def guard_verdict(
    *,
    reserve: int,
    max_share: float,
    daily: QuotaFigure | None,
    own_calls_today: int,
    probe_cost: float,
    committed: float = 0.0,
    remaining_known: bool = True,
) -> str | None:
    """Why a probe must be skipped now, or None when it may run.

    ``daily`` is the account's latest daily figure (None before the first response told us);
    ``own_calls_today`` the monitor's own calls in the trailing 24 hours, which is never less
    than its calls since the vendor's reset, so the guard errs on the safe side; ``probe_cost``
    the calls one more probe is expected to spend on this account; ``committed`` the calls
    already bound to be made (polls and deletes of the probes in flight, housekeeping), which
    the share must leave room for. With ``remaining_known`` False (a stale figure) only the
    share is checked: its limit still holds.
    """
    if daily is None:
        return None
    if remaining_known and daily.remaining < reserve:
        return (
            f"{daily.remaining} calls left of {daily.limit} today, under the reserve of {reserve}"
        )
    budget = max_share * daily.limit
    if own_calls_today + committed + probe_cost > budget:
        held = (
            f", {committed:g} more held for probes in flight and housekeeping" if committed else ""
        )
        return (
            f"the monitor has spent {own_calls_today} of its {budget:g}-call share today "
            f"({max_share:.2%} of {daily.limit}){held}"
        )
    return None
