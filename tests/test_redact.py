"""Redaction: registered secrets, credentials and secret-named keys never reach a log line."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from structlog.testing import CapturingLogger, LogCapture

from syncwatch.redact import MASK, Redactor

TOKEN = "pat-na1-1f2e3d4c-5b6a-7980-a1b2-c3d4e5f60718"
SECRET = "3MVG9l2zHsylwlpQ-client-secret"


@pytest.fixture
def redactor() -> Redactor:
    """A fresh redactor, so no test depends on what another registered globally."""
    redactor = Redactor()
    redactor.add(TOKEN)
    redactor.add(SECRET)
    return redactor


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"token {TOKEN} rejected", f"token {MASK} rejected"),
        (f"{TOKEN}{SECRET}", f"{MASK}{MASK}"),
        (f"a={TOKEN}&b={SECRET}&a={TOKEN}", f"a={MASK}&b={MASK}&a={MASK}"),
        (f"Authorization: Bearer {TOKEN}", f"Authorization: Bearer {MASK}"),
        ("Authorization: Bearer eyJhbGciOi.J9-x_y~z+/=", f"Authorization: Bearer {MASK}"),
        ("authorization: bearer abc.def", f"authorization: bearer {MASK}"),
        ("Authorization: Basic c2l0ZVx1c2VyOnBhc3N3b3Jk", f"Authorization: Basic {MASK}"),
        ("BASIC dXNlcjpwYXNz and more", f"BASIC {MASK} and more"),
        ("lead 00Q5e00000AbCdE created in 812 ms", "lead 00Q5e00000AbCdE created in 812 ms"),
        ("connection refused", "connection refused"),
        ("", ""),
    ],
)
def test_text_masks_secrets_and_credentials(redactor: Redactor, text: str, expected: str) -> None:
    """Registered values and Bearer/Basic credentials are masked; other text is untouched."""
    assert redactor.text(text) == expected


def test_longest_secret_is_masked_first() -> None:
    """A secret containing a shorter secret is masked whole, not left with a visible tail."""
    redactor = Redactor()
    redactor.add("abcd")
    redactor.add("abcd-efgh-ijkl")
    assert redactor.text("x abcd-efgh-ijkl y abcd z") == f"x {MASK} y {MASK} z"


def test_overlapping_secrets_are_never_left_whole() -> None:
    """When two secrets overlap in a text, neither survives intact, in whichever order."""
    redactor = Redactor()
    redactor.add("aaaa-bbbb")
    redactor.add("bbbb-cccc")
    masked = redactor.text("key=aaaa-bbbb-cccc; key=bbbb-cccc-aaaa-bbbb")
    assert "aaaa-bbbb" not in masked
    assert "bbbb-cccc" not in masked
    assert MASK in masked


@pytest.mark.parametrize("short", ["", "a", "ab", "abc"])
def test_short_secrets_are_ignored(short: str) -> None:
    """Values under 4 characters are not registered: masking them would mangle every line."""
    redactor = Redactor()
    assert redactor.add(short) == short
    assert redactor.text("a cab abc abcd") == "a cab abc abcd"


def test_add_returns_the_secret_and_four_characters_count() -> None:
    """``add`` passes the value through, and a 4-character secret is masked."""
    redactor = Redactor()
    assert redactor.add("wxyz") == "wxyz"
    assert redactor.text("pin wxyz") == f"pin {MASK}"


@pytest.mark.parametrize(
    "key",
    [
        "authorization",
        "Authorization",
        "token",
        "access_token",
        "refresh_token",
        "client_secret",
        "secret",
        "password",
        "api_key",
        "api-key",
        "apikey",
        "X-Api-Key",
        "routing_key",
        "routing-key",
        "assertion",
        "private_key",
        "privatekey",
    ],
)
def test_secret_named_keys_are_masked_whatever_their_value(redactor: Redactor, key: str) -> None:
    """A key naming a secret hides its value even when the value was never registered."""
    assert redactor.value(key, "unregistered-value-123") == MASK
    assert redactor.value(key, 42) == MASK
    assert redactor.value(key, {"nested": "dict"}) == MASK


@pytest.mark.parametrize("empty", [None, ""])
def test_empty_secret_keys_stay_empty(redactor: Redactor, empty: str | None) -> None:
    """An absent secret shows as absent, so a missing token is still diagnosable."""
    assert redactor.value("client_secret", empty) == empty


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("event", "probe injected"),
        ("integration", "hubspot-to-salesforce"),
        ("probe_id", "k3x9q2"),
        ("status", 503),
        ("duration_s", 0.25),
        ("ok", True),
        ("missing", None),
        ("email", "syncwatch+k3x9q2@probes.example.com"),
        ("author", "ops"),
        ("fields", ["email", "company"]),
    ],
)
def test_ordinary_values_are_left_alone(redactor: Redactor, key: str, value: object) -> None:
    """Values under ordinary keys that hold no secret come back equal."""
    assert redactor.value(key, value) == value


def test_nested_dicts_and_lists_are_redacted_all_the_way_down(redactor: Redactor) -> None:
    """Secret keys and registered values are found inside nested dicts, lists and tuples."""
    event = {
        "account": {
            "name": "sf-prod",
            "client_secret": "plain-but-named",
            "auth": {"headers": {"Authorization": "Bearer whatever"}, "scopes": ["api"]},
        },
        "attempts": [
            {"status": 401, "message": f"invalid token {TOKEN}"},
            {"status": 200, "routing_key": "R0UTINGKEY0000000000000000000000"},
        ],
        "notes": ("fine", f"leaked {SECRET}"),
    }
    assert redactor.value("context", event) == {
        "account": {
            "name": "sf-prod",
            "client_secret": MASK,
            "auth": {"headers": {"Authorization": MASK}, "scopes": ["api"]},
        },
        "attempts": [
            {"status": 401, "message": f"invalid token {MASK}"},
            {"status": 200, "routing_key": MASK},
        ],
        "notes": ["fine", f"leaked {MASK}"],
    }


def test_redaction_does_not_modify_the_input(redactor: Redactor) -> None:
    """Nested values are copied, so the caller's own config objects keep their secrets."""
    config = {"client_secret": "keep-me-here", "name": "x"}
    redactor.value("config", config)
    assert config == {"client_secret": "keep-me-here", "name": "x"}


def test_processor_redacts_an_event_dict_in_place(redactor: Redactor) -> None:
    """Called as a structlog processor, it masks every key of the event and returns it."""
    event: dict[str, Any] = {
        "event": f"token refresh failed for {TOKEN}",
        "token": "whatever",
        "integration": "hubspot-to-salesforce",
    }
    result = redactor(None, "warning", event)
    assert result is event
    assert event == {
        "event": f"token refresh failed for {MASK}",
        "token": MASK,
        "integration": "hubspot-to-salesforce",
    }


def test_processor_in_a_structlog_chain_masks_bound_context(redactor: Redactor) -> None:
    """Wired before the last processor, it masks bound context and event keys alike."""
    capture = LogCapture()
    log = structlog.wrap_logger(
        CapturingLogger(), processors=[redactor, capture], context_class=dict
    )
    log = log.bind(integration="hubspot-to-salesforce", probe_id="k3x9q2", api_key="k-123456")
    log.error("create failed", error=f"401 for Bearer {TOKEN}", headers={"authorization": "x"})
    assert capture.entries == [
        {
            "event": "create failed",
            "integration": "hubspot-to-salesforce",
            "probe_id": "k3x9q2",
            "api_key": MASK,
            "error": f"401 for Bearer {MASK}",
            "headers": {"authorization": MASK},
            "log_level": "error",
        }
    ]


def test_rendered_log_line_holds_no_secret(redactor: Redactor) -> None:
    """Before a real renderer, the rendered line carries neither secret nor credential."""
    sink = CapturingLogger()
    log = structlog.wrap_logger(
        sink,
        processors=[redactor, structlog.processors.JSONRenderer(sort_keys=True)],
        context_class=dict,
    )
    log.info("refreshed", client_secret=SECRET, note=f"sent {TOKEN}", scope="api")
    [call] = sink.calls
    line = call.args[0]
    assert TOKEN not in line
    assert SECRET not in line
    assert '"scope": "api"' in line


def test_an_exception_logged_as_a_value_is_redacted_when_rendered(redactor: Redactor) -> None:
    """An exception object in an event renders without the registered secret it mentions."""
    sink = CapturingLogger()
    log = structlog.wrap_logger(
        sink,
        processors=[redactor, structlog.processors.KeyValueRenderer()],
        context_class=dict,
    )
    log.error("refresh failed", error=ValueError(f"bad refresh token {TOKEN}"))
    [call] = sink.calls
    assert TOKEN not in call.args[0]


def test_renewed_credentials_keep_the_current_and_previous_masked_and_no_more() -> None:
    """A month of token renewals neither grows the redactor nor unmasks a live token, and each
    account keeps its own: another account's renewals never push a live token out."""
    from syncwatch.redact import Redactor

    redactor = Redactor()
    tokens = [f"token-{n:04d}-abcdef" for n in range(400)]
    for token in tokens:
        redactor.rotate("salesforce-prod", token)
        redactor.rotate("marketo-prod", token.replace("token", "mkto"))
    line = f"sent {tokens[-1]} after {tokens[-2]}; old {tokens[-3]}"
    assert redactor.text(line) == "sent [redacted] after [redacted]; old " + tokens[-3]
    assert len(redactor._secrets) <= 2 * 2 * 4
    redactor.rotate("marketo-prod", "mkto-new-token-1")
    redactor.rotate("marketo-prod", "mkto-new-token-2")
    assert tokens[-1] not in redactor.text(tokens[-1])  # salesforce's slot untouched
