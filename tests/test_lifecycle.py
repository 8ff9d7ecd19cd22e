"""The pure rules of a probe's life (DESIGN §4), as tables of hand-checked cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from syncwatch.lifecycle import (
    APPROXIMATE,
    CREATED_CORRECTED,
    CREATED_UNCORRECTED,
    DETECTION_BOUND,
    measure_latency,
    next_look,
    outcome_for,
    owner_matches,
    typical_latency,
)
from syncwatch.lifecycle import field_differences as differences
from syncwatch.vendors.base import Record

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
EMAIL = "syncwatch+abc@probe.syncwatch.example"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def record(
    created_s: float | None = None,
    *,
    offset: float | None = 0.0,
    resolution: float = 0.0,
    fields: dict[str, Any] | None = None,
    owner: str | None = None,
) -> Record:
    return Record(
        record_id="00Q000000000001EAA",
        email=EMAIL,
        created_at=None if created_s is None else at(created_s),
        fields=fields or {},
        owner=owner,
        clock_offset_s=offset,
        created_resolution_s=resolution,
    )


# accepted at T0; (created on the vendor's clock, offset, resolution, detected) → (latency, method)
LATENCY_CASES = [
    pytest.param(60.0, 0.0, 0.0, 90.0, 60.0, CREATED_CORRECTED, id="exact"),
    pytest.param(62.0, 2.0, 0.0, 90.0, 60.0, CREATED_CORRECTED, id="vendor-ahead-by-2s"),
    pytest.param(58.0, -2.0, 0.0, 90.0, 60.0, CREATED_CORRECTED, id="vendor-behind-by-2s"),
    pytest.param(60.0, 0.0, 1.0, 90.0, 60.5, CREATED_CORRECTED, id="mid-second"),
    pytest.param(61.0, 0.25, 1.0, 90.0, 61.25, CREATED_CORRECTED, id="mid-second-and-offset"),
    pytest.param(60.0, None, 1.0, 90.0, 60.5, CREATED_UNCORRECTED, id="no-offset-yet"),
    pytest.param(100.0, 0.0, 0.0, 90.0, 90.0, DETECTION_BOUND, id="created-after-detection"),
    pytest.param(90.0, 0.0, 1.0, 90.0, 90.0, DETECTION_BOUND, id="mid-second-past-bound"),
    pytest.param(95.0, 10.0, 0.0, 90.0, 85.0, CREATED_CORRECTED, id="offset-brings-it-back"),
    pytest.param(-5.0, 0.0, 0.0, 90.0, 0.0, CREATED_CORRECTED, id="negative-is-zero"),
    pytest.param(5.0, 8.0, 0.0, 90.0, 0.0, CREATED_CORRECTED, id="negative-after-offset"),
    pytest.param(None, 0.0, 1.0, 75.0, 75.0, APPROXIMATE, id="no-created-at"),
    pytest.param(None, None, 0.0, -3.0, 0.0, APPROXIMATE, id="no-created-at-clock-step"),
]


@pytest.mark.parametrize(
    ("created_s", "offset", "resolution", "detected_s", "seconds", "method"), LATENCY_CASES
)
def test_measure_latency(
    created_s: float | None,
    offset: float | None,
    resolution: float,
    detected_s: float,
    seconds: float,
    method: str,
) -> None:
    """Latency is creation (on our clock, mid-second) minus acceptance, within [0, detection]."""
    found = record(created_s, offset=offset, resolution=resolution)
    latency = measure_latency(T0, at(detected_s), found)
    assert latency.seconds == pytest.approx(seconds)
    assert latency.method == method


EXPECTED = {"Email": EMAIL, "LastName": "Probe abc", "Phone": "+1 555 0100"}

FIELD_CASES = [
    pytest.param({"Email": EMAIL, "LastName": "Probe abc", "Phone": "+1 555 0100"}, [], id="exact"),
    pytest.param(
        {"Email": EMAIL.upper(), "LastName": "Probe abc", "Phone": "+1 555 0100"},
        [],
        id="email-case-insensitive",
    ),
    pytest.param(
        {"email": EMAIL, "lastname": "Probe abc", "PHONE": "+1 555 0100"},
        [],
        id="field-names-case-insensitive",
    ),
    pytest.param(
        {"Email": EMAIL, "LastName": "PROBE ABC", "Phone": "+1 555 0100"},
        ["LastName: want 'Probe abc', got 'PROBE ABC'"],
        id="other-fields-case-sensitive",
    ),
    pytest.param(
        {"Email": EMAIL, "LastName": "Probe abc", "Phone": None},
        ["Phone: want '+1 555 0100', got ''"],
        id="null-arrives",
    ),
    pytest.param(
        {"Email": "someone@else.example", "LastName": "Probe abc"},
        [
            f"Email: want {EMAIL!r}, got 'someone@else.example'",
            "Phone: want '+1 555 0100', got ''",
        ],
        id="wrong-email-and-missing-field",
    ),
]


@pytest.mark.parametrize(("fields", "problems"), FIELD_CASES)
def test_field_differences(fields: dict[str, Any], problems: list[str]) -> None:
    """Each expected field that arrived different is named with what was wanted and got."""
    assert differences(EXPECTED, record(fields=fields)) == problems


@pytest.mark.parametrize(
    ("expected", "fields", "problems"),
    [
        pytest.param({"Title": ""}, {"Title": None}, [], id="empty-vs-null"),
        pytest.param({"Title": ""}, {}, [], id="empty-vs-absent"),
        pytest.param(
            {"Title": ""}, {"Title": "CEO"}, ["Title: want '', got 'CEO'"], id="want-empty"
        ),
        pytest.param({"NumberOfEmployees": "5"}, {"NumberOfEmployees": 5}, [], id="number-as-text"),
    ],
)
def test_field_differences_edges(
    expected: dict[str, str], fields: dict[str, Any], problems: list[str]
) -> None:
    """Null, absent and '' are the same empty value; non-text values compare as their text."""
    assert differences(expected, record(fields=fields)) == problems


OWNER_18 = "0055e000001AbCdAAK"
OWNER_15 = "0055e000001AbCd"
GUID = "7d9f2c1a-4b3e-4f5a-9c8d-1e2f3a4b5c6d"


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        pytest.param(None, None, True, id="no-routing-check"),
        pytest.param(None, OWNER_18, True, id="no-routing-check-any-owner"),
        pytest.param(OWNER_18, OWNER_18, True, id="18-vs-18"),
        pytest.param(OWNER_15, OWNER_18, True, id="15-expected-18-found"),
        pytest.param(OWNER_18, OWNER_15, True, id="18-expected-15-found"),
        pytest.param(OWNER_18, "0055e000009ZzZzAAQ", False, id="someone-else"),
        pytest.param(OWNER_15, "0055e000001abcd", False, id="15-char-ids-are-case-sensitive"),
        pytest.param(OWNER_18, None, False, id="no-owner"),
        pytest.param(GUID, GUID.upper(), True, id="dataverse-guid-any-case"),
        pytest.param(GUID, GUID[:15] + "0" * 21, False, id="dataverse-guid-whole-not-prefix"),
        pytest.param("51234567", "51234567", True, id="hubspot-owner-id"),
        pytest.param("51234567", "512345678", False, id="hubspot-other-owner"),
    ],
)
def test_owner_matches(expected: str | None, actual: str | None, matches: bool) -> None:
    """Salesforce ids compare on the first 15 characters, case-sensitively; other CRMs' ids
    (Dataverse GUIDs, HubSpot owner ids) whole and in any case; no check matches anyone."""
    assert owner_matches(expected, record(owner=actual)) is matches


@pytest.mark.parametrize(
    ("latency", "differences_", "owner_ok", "outcome"),
    [
        pytest.param(10.0, [], True, "ok", id="fast"),
        pytest.param(300.0, [], True, "ok", id="at-objective-is-ok"),
        pytest.param(300.001, [], True, "slow", id="just-over"),
        pytest.param(10.0, [], False, "misrouted", id="misrouted"),
        pytest.param(900.0, [], False, "misrouted", id="routing-before-time"),
        pytest.param(10.0, ["Phone: x"], True, "mismatch", id="mismatch"),
        pytest.param(900.0, ["Phone: x"], False, "mismatch", id="fields-before-all"),
    ],
)
def test_outcome_for(latency: float, differences_: list[str], owner_ok: bool, outcome: str) -> None:
    """Fields decide first, then routing, then the latency objective (inclusive)."""
    assert outcome_for(latency, 300.0, differences_, owner_ok) == outcome


@pytest.mark.parametrize(
    ("recent", "expected"),
    [
        pytest.param([], 45.0, id="nothing-known"),
        pytest.param([300.0, 300.0, 300.0, 300.0], 45.0, id="four-is-too-few"),
        pytest.param([10.0, 20.0, 30.0, 40.0, 50.0], 45.0, id="p75-under-floor"),
        pytest.param([50.0, 60.0, 70.0, 80.0, 90.0], 80.0, id="five-rank-4"),
        pytest.param([90.0, 50.0, 80.0, 60.0, 70.0], 80.0, id="unsorted"),
        pytest.param([float(s) for s in range(50, 130, 10)], 100.0, id="eight-rank-6"),
        pytest.param([100.0, 200.0, 300.0, 5000.0, 9000.0], 3600.0, id="clamped-to-ceiling"),
    ],
)
def test_typical_latency(recent: list[float], expected: float) -> None:
    """The first look is the nearest-rank p75 of five or more samples, within floor and ceiling."""
    assert typical_latency(recent, 45.0, 3600.0) == expected


@pytest.mark.parametrize(
    ("last_look_s", "due_s"),
    [
        pytest.param(None, 45.0, id="first-look"),
        pytest.param(5.0, 45.0, id="early-look-keeps-first"),
        pytest.param(45.0, 75.0, id="then-every"),
        pytest.param(100.0, 130.0, id="cadence-from-last"),
    ],
)
def test_next_look(last_look_s: float | None, due_s: float) -> None:
    """A probe is first due at acceptance + first_after, then every ``every`` after a look."""
    last = None if last_look_s is None else at(last_look_s)
    assert next_look(T0, 45.0, last, 30.0) == at(due_s)
