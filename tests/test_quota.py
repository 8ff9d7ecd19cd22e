"""Quota figures read from vendor headers, and the guard that keeps the monitor off the quota."""

from __future__ import annotations

import pytest

from syncwatch.events import QuotaFigure
from syncwatch.quota import guard_verdict, parse_hubspot_headers, parse_sforce_limit_info

# Examples below are Salesforce's own, from the Limit Info header page:
# https://developer.salesforce.com/docs/atlas.en-us.200.0.api_rest.meta/api_rest/headers_api_usage.htm
# (``api-usage=18/5000`` in its response example, ``api-usage=25/5000;
# per-app-api-usage=17/250(appName=sample-connected-app)`` for the pilot per-app quota) and
# https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm
# (``api-usage=10018/100000; api-bursts=1/750``, a pair older releases did not send).


@pytest.mark.parametrize(
    ("header", "figures"),
    [
        ("api-usage=18/5000", [QuotaFigure("api-usage", 18, 5000)]),
        ("api-usage=25/5000", [QuotaFigure("api-usage", 25, 5000)]),
        (
            "api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)",
            [
                QuotaFigure("api-usage", 25, 5000),
                QuotaFigure("per-app-api-usage:sample-connected-app", 17, 250),
            ],
        ),
        (
            "api-usage=10018/100000; api-bursts=1/750",
            [QuotaFigure("api-usage", 10018, 100000), QuotaFigure("api-bursts", 1, 750)],
        ),
        (
            "api-usage=7/15000;some-future-limit=3/40",
            [QuotaFigure("api-usage", 7, 15000), QuotaFigure("some-future-limit", 3, 40)],
        ),
        ("api-usage=0/5000", [QuotaFigure("api-usage", 0, 5000)]),
        (None, []),
        ("", []),
        ("garbage", []),
        ("api-usage=", []),
        ("api-usage=abc/5000", []),
        ("api-usage=25", []),
        ("api-usage=-1/5000", []),
    ],
)
def test_parse_sforce_limit_info(header: str | None, figures: list[QuotaFigure]) -> None:
    """Every documented ``key=used/max`` pair becomes a figure; anything else is ignored."""
    assert parse_sforce_limit_info(header) == figures


def test_sforce_daily_figure_remaining() -> None:
    """The org-wide ``api-usage`` pair yields the remaining count the guard reasons on."""
    [daily] = parse_sforce_limit_info("api-usage=25/5000")
    assert daily.remaining == 4975


HUBSPOT_FULL = {
    "X-HubSpot-RateLimit-Daily": "250000",
    "X-HubSpot-RateLimit-Daily-Remaining": "249900",
    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    "X-HubSpot-RateLimit-Max": "100",
    "X-HubSpot-RateLimit-Remaining": "97",
}


@pytest.mark.parametrize(
    ("headers", "figures"),
    [
        (
            HUBSPOT_FULL,
            [QuotaFigure("daily", 100, 250000), QuotaFigure("10s", 3, 100)],
        ),
        (
            {key.lower(): value for key, value in HUBSPOT_FULL.items()},
            [QuotaFigure("daily", 100, 250000), QuotaFigure("10s", 3, 100)],
        ),
        (
            {key.upper(): value for key, value in HUBSPOT_FULL.items()},
            [QuotaFigure("daily", 100, 250000), QuotaFigure("10s", 3, 100)],
        ),
        # OAuth-authorised requests carry no Daily headers, only the rolling window.
        (
            {
                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                "X-HubSpot-RateLimit-Max": "190",
                "X-HubSpot-RateLimit-Remaining": "190",
            },
            [QuotaFigure("10s", 0, 190)],
        ),
        (
            {"X-HubSpot-RateLimit-Daily": "500000", "X-HubSpot-RateLimit-Daily-Remaining": "0"},
            [QuotaFigure("daily", 500000, 500000)],
        ),
        # The window without its length is still kept, under a generic name.
        (
            {"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "40"},
            [QuotaFigure("window", 60, 100)],
        ),
        (
            {
                "X-HubSpot-RateLimit-Interval-Milliseconds": "1500",
                "X-HubSpot-RateLimit-Max": "10",
                "X-HubSpot-RateLimit-Remaining": "9",
            },
            [QuotaFigure("1.5s", 1, 10)],
        ),
        # Search responses carry no rate-limit headers at all.
        ({"X-HubSpot-Correlation-Id": "4e1c0a4e-0000-0000-0000-000000000000"}, []),
        ({}, []),
        # A half pair, garbage or a zero limit says nothing usable.
        ({"X-HubSpot-RateLimit-Daily": "250000"}, []),
        ({"X-HubSpot-RateLimit-Daily-Remaining": "100"}, []),
        (
            {"X-HubSpot-RateLimit-Daily": "lots", "X-HubSpot-RateLimit-Daily-Remaining": "100"},
            [],
        ),
        (
            {"X-HubSpot-RateLimit-Daily": "250000", "X-HubSpot-RateLimit-Daily-Remaining": "-5"},
            [],
        ),
        (
            {"X-HubSpot-RateLimit-Daily": "1e5", "X-HubSpot-RateLimit-Daily-Remaining": "10"},
            [],
        ),
        ({"X-HubSpot-RateLimit-Daily": "0", "X-HubSpot-RateLimit-Daily-Remaining": "0"}, []),
        ({"X-HubSpot-RateLimit-Max": "", "X-HubSpot-RateLimit-Remaining": "3"}, []),
        (
            {
                "X-HubSpot-RateLimit-Interval-Milliseconds": "soon",
                "X-HubSpot-RateLimit-Max": "100",
                "X-HubSpot-RateLimit-Remaining": "99",
            },
            [QuotaFigure("window", 1, 100)],
        ),
        # Padding around a number is tolerated.
        (
            {"X-HubSpot-RateLimit-Daily": " 1000 ", "X-HubSpot-RateLimit-Daily-Remaining": "10 "},
            [QuotaFigure("daily", 990, 1000)],
        ),
        # More remaining than allowed is clamped: used is never negative.
        (
            {"X-HubSpot-RateLimit-Daily": "1000", "X-HubSpot-RateLimit-Daily-Remaining": "1200"},
            [QuotaFigure("daily", 0, 1000)],
        ),
        (
            {"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "101"},
            [QuotaFigure("window", 0, 100)],
        ),
        # httpx decodes a non-UTF-8 header as latin-1: b"\xb2" arrives as "²", which
        # str.isdigit() accepts and int() refuses.
        pytest.param(
            {"X-HubSpot-RateLimit-Daily": "²", "X-HubSpot-RateLimit-Daily-Remaining": "1"},
            [],
            id="superscript-digit",
        ),
    ],
)
def test_parse_hubspot_headers(headers: dict[str, str], figures: list[QuotaFigure]) -> None:
    """Daily and rolling-window figures come from the documented headers in any letter case."""
    assert parse_hubspot_headers(headers) == figures


def test_parse_hubspot_headers_never_reports_negative_usage() -> None:
    """A clamped figure has used within 0..limit, so remaining never exceeds the limit."""
    [daily] = parse_hubspot_headers(
        {"X-HubSpot-RateLimit-Daily": "10", "X-HubSpot-RateLimit-Daily-Remaining": "99"}
    )
    assert 0 <= daily.used <= daily.limit
    assert daily.remaining == daily.limit


DAY = QuotaFigure("api-usage", 1000, 5000)  # 4000 remaining; 1% share = 50 calls


@pytest.mark.parametrize(
    ("reserve", "max_share", "daily", "own", "cost", "reason"),
    [
        # Before any response has told us the figure, nothing is known to protect.
        (100, 0.01, None, 10_000, 5, None),
        # Plenty left, little spent: run.
        (100, 0.01, DAY, 0, 1, None),
        (100, 0.01, DAY, 10, 3, None),
        # The reserve: strictly below it skips, exactly at it runs.
        (100, 0.01, QuotaFigure("api-usage", 4901, 5000), 0, 1, "reserve of 100"),
        (100, 0.01, QuotaFigure("api-usage", 4900, 5000), 0, 1, None),
        (100, 0.01, QuotaFigure("api-usage", 5000, 5000), 0, 1, "0 calls left of 5000"),
        (100, 0.01, QuotaFigure("api-usage", 6000, 5000), 0, 1, "under the reserve"),
        # The share: own calls plus this probe's cost may reach the budget, not pass it.
        (100, 0.01, DAY, 48, 2, None),
        (100, 0.01, DAY, 49, 2, "share"),
        (100, 0.01, DAY, 49, 1.5, "share"),
        (100, 0.01, DAY, 50, 0, None),
        (100, 0.01, DAY, 51, 0, "spent 51 of its 50-call share"),
        (100, 0.02, DAY, 99, 1, None),
        (100, 0.02, DAY, 99, 2, "2.00% of 5000"),
        # A zero share forbids any probe with a cost.
        (0, 0.0, DAY, 0, 1, "share"),
        # With both rules broken, the reserve is the reason given.
        (100, 0.01, QuotaFigure("api-usage", 4990, 5000), 500, 1, "reserve"),
        # A reserve of zero leaves only the share rule.
        (0, 0.01, QuotaFigure("api-usage", 5000, 5000), 0, 1, None),
    ],
)
def test_guard_verdict(
    reserve: int,
    max_share: float,
    daily: QuotaFigure | None,
    own: int,
    cost: float,
    reason: str | None,
) -> None:
    """The guard skips under the reserve or over the share and says which, else lets it run."""
    verdict = guard_verdict(
        reserve=reserve, max_share=max_share, daily=daily, own_calls_today=own, probe_cost=cost
    )
    if reason is None:
        assert verdict is None
    else:
        assert verdict is not None
        assert reason in verdict


def test_guard_reserve_reason_names_the_figures() -> None:
    """A reserve skip tells the operator what is left, of what, and the reserve it broke."""
    verdict = guard_verdict(
        reserve=500,
        max_share=0.01,
        daily=QuotaFigure("daily", 249_800, 250_000),
        own_calls_today=0,
        probe_cost=1,
    )
    assert verdict == "200 calls left of 250000 today, under the reserve of 500"
