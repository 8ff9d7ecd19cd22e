"""Config loading: shipped files load, rejected files fail with exact messages, secrets hide."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from syncwatch.config import (
    LITERAL_SECRET,
    Config,
    SecretRef,
    config_from_data,
    load_config,
    load_contract,
    load_template,
    summary,
    unresolved_secrets,
)
from syncwatch.config.errors import UNION_TAGS
from syncwatch.errors import ConfigError
from syncwatch.sandbox.scenario import Scenario, load_scenario

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "config"
LITERAL_TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
UNSET_ENV = "SYNCWATCH_TEST_VARIABLE_THAT_IS_NEVER_SET"


def _shipped(directory: str, pattern: str) -> list[Path]:
    return sorted((REPO / directory).glob(pattern))


@pytest.mark.parametrize("path", _shipped("config", "*.yaml"), ids=lambda p: p.name)
def test_shipped_config_loads(path: Path) -> None:
    """Every config file in config/ is valid as shipped."""
    config = load_config(path)
    assert summary(config).startswith(f"{path}: OK — ")


@pytest.mark.parametrize("path", _shipped("probes", "**/*.yaml"), ids=lambda p: p.name)
def test_shipped_probe_file_loads(path: Path) -> None:
    """Every file under probes/ is a valid probe template, or in scenarios/ a sandbox scenario."""
    if "scenarios" in path.relative_to(REPO / "probes").parts:
        load_scenario(path)
    else:
        assert load_template(path).name == path.stem


def test_demo_config_points_at_the_sandbox() -> None:
    """The demo config targets the sandbox's prefixes, default portal, form and probe domain."""
    config = load_config(REPO / "config" / "demo.yaml")
    hubspot, salesforce, marketo = config.accounts
    assert hubspot.base_url == "http://127.0.0.1:8900/hubspot"
    assert marketo.base_url == "http://127.0.0.1:8900/marketo"
    assert getattr(hubspot, "forms_url", None) == "http://127.0.0.1:8900/hsforms"
    assert getattr(hubspot, "portal_id", None) == "20112233"
    assert salesforce.base_url == "http://127.0.0.1:8900/salesforce"
    sandbox = Scenario()
    assert getattr(hubspot, "portal_id", None) == sandbox.hubspot.portal_id
    assert config.integrations[0].source.form_guid == sandbox.hubspot.forms[0].guid
    assert config.probe_domain == sandbox.probe_domain
    assert set(config.templates) == {"demo-request", "content-download", "marketo-demo-request"}
    assert [i.name for i in config.integrations] == [
        "hubspot-to-salesforce",
        "marketo-to-salesforce",
    ]


def test_templates_inherit_the_integration_schedule() -> None:
    """A template without its own every/latency_objective takes the integration's."""
    raw = yaml.safe_load((FIXTURES / "invalid-integration-every.yaml").read_text())
    raw["integrations"][0]["every"] = "2m"
    config = config_from_data(raw, FIXTURES / "inline.yaml")
    runs = config.integrations[0].templates
    assert [(r.template, r.every, r.latency_objective) for r in runs] == [
        ("demo-request", 120.0, 300.0),
        ("content-download", 120.0, 3600.0),
    ]


def test_salesforce_auth_url_defaults_to_the_my_domain_host() -> None:
    """Tokens are requested from base_url unless auth_url names another login host."""
    raw = yaml.safe_load((FIXTURES / "invalid-integration-every.yaml").read_text())
    raw["integrations"][0]["every"] = "2m"
    salesforce = raw["accounts"][1]
    assert config_from_data(raw, FIXTURES / "a.yaml").accounts[1].auth_url == salesforce["base_url"]
    salesforce["auth_url"] = "https://test.salesforce.com"
    config = config_from_data(raw, FIXTURES / "b.yaml")
    assert config.accounts[1].auth_url == "https://test.salesforce.com"


def test_summary_counts_sections() -> None:
    """summary() is the one line check-config prints on success."""
    path = REPO / "config" / "demo.yaml"
    assert summary(load_config(path)) == (
        f"{path}: OK — 3 accounts, 2 integrations (3 templates), 2 contracts, "
        "3 notification targets"
    )


LITERAL = f"accounts[0].token: {LITERAL_SECRET}"
REJECTED: list[tuple[str, list[str]]] = [
    ("invalid-literal-token", [LITERAL]),
    ("invalid-unknown-key", ["acounts: unknown key"]),
    (
        "invalid-bad-duration",
        [
            "integrations[0].timeout: '2hours' is not a duration; "
            "use a number with a unit: 30s, 5m, 1h, 2d",
            "cleanup.flush_every: must be at least 1s",
        ],
    ),
    ("invalid-every-below-10s", ["integrations[0].templates[0].every: must be at least 10s"]),
    ("invalid-integration-every", ["integrations[0].every: must be at least 10s"]),
    ("invalid-unknown-account", ["integrations[0].source.account: no account named 'hubspot-prd'"]),
    (
        "invalid-pardot-account",
        [
            "accounts[0].auth_url: required key is missing",
            "accounts[0].business_unit_id: must look like 0Uv5e0000000SWAAA2 (18 characters)",
            "accounts[0].daily_limit: must be greater than 0",
        ],
    ),
    (
        "invalid-pardot-source",
        [
            "integrations[0].source.form_handler_url: required with method form_handler",
            "integrations[1].source.form_handler_url: only used with method form_handler",
            "integrations[2].source.method: must be one of api, form_handler for a pardot account",
        ],
    ),
    (
        "invalid-eloqua-account",
        [
            "accounts[0].company: must look like AcmeCorp (no \\ or :)",
            "accounts[0].username: must look like api.user (no \\ or :)",
            "accounts[0].password: "
            "literal secrets are not allowed; use {env: NAME} or {file: PATH}",
            "accounts[0].login_url: must be an http:// or https:// URL",
        ],
    ),
    (
        "invalid-wrong-vendor-role",
        [
            "integrations[0].source.account: a salesforce account cannot be a source",
            "integrations[0].destination.account: a marketo account cannot be a destination",
        ],
    ),
    (
        "invalid-hubspot-destination",
        [
            "integrations[1].destination.object: must be one of contacts for a hubspot account",
            "accounts[0].portal_id: required by integration 'hs-form-loop' (source method form)",
        ],
    ),
    (
        "invalid-unknown-template",
        [
            "integrations[0].templates[0].template: no probe template named 'demo-requests'; "
            "found 3 templates (content-download, demo-request, marketo-demo-request)"
        ],
    ),
    (
        "invalid-bad-timezone",
        ["contracts[0].timezone: must be an IANA time zone name, e.g. America/New_York or UTC"],
    ),
    (
        "invalid-secret-env-and-file",
        ["accounts[0].token: a secret reference needs exactly one of env or file"],
    ),
    (
        "invalid-yaml-syntax",
        [
            "line 6, column 4: not valid YAML: "
            "expected <block end>, but found '<block mapping start>'"
        ],
    ),
    (
        "invalid-multiple-problems",
        [
            "listen: must be HOST:PORT, e.g. 127.0.0.1:9851",
            "accounts[0].quota.maxshare: unknown key",
            LITERAL,
            "accounts[1].vendor: unknown value 'mailchimp'; "
            "expected one of dynamics, eloqua, hubspot, marketo, pardot, salesforce",
            "integrations[0].templates[0].every: must be at least 10s",
            "integrations[0].templates[0].latency_objective: '5 minutes' is not a duration; "
            "use a number with a unit: 30s, 5m, 1h, 2d",
        ],
    ),
    (
        "invalid-integration-shape",
        [
            "accounts[1].auth.flow: unknown value 'password'; "
            "expected one of client_credentials, jwt_bearer",
            "accounts[2].base_url: must be an http:// or https:// URL",
            "accounts[2].api_version: must look like v62.0",
            "accounts[2].auth.client_secret.env: must be an environment variable name, "
            "e.g. HUBSPOT_TOKEN",
            "integrations[0].timeout: must be longer than every latency_objective (1h), "
            "or a slow probe would be called lost",
        ],
    ),
    (
        "invalid-references",
        [
            "accounts[1].name: 'hubspot-prod' is already used by accounts[0]",
            "integrations[0].source.form_guid: required with method form",
            "integrations[0].destination.account: no account named 'salesforce-prod'",
            "contracts[0].integrations[0]: 'hs-sf' uses no salesforce account",
            "contracts[0].integrations[1]: no integration named 'sf-hs'",
        ],
    ),
    (
        "invalid-contract-tiers",
        [
            "contracts[0].maintenance[2].start: "
            "must include a UTC offset, e.g. 2026-10-10T02:00:00Z",
            "contracts[0].credits: tiers must be listed with `below` strictly descending",
            "contracts[0].credit_cap_percent: must be less than or equal to 100",
            'contracts[0].monthly_fee: write money as a quoted decimal string, e.g. "3600.00"',
            "contracts[0].claim_deadline: set either claim_window_days or claim_deadline, not both",
        ],
    ),
]
TEMPLATES = FIXTURES / "probes-invalid"
REJECTED_TEMPLATES = [
    f"{TEMPLATES / 'bad-values.yaml'}: fields.lastname: unknown placeholder {{probeid}}; "
    "use {probe_id}, {email}, {probe_domain}",
    f"{TEMPLATES / 'bad-values.yaml'}: fields.country: must be a string; "
    "quote it (YAML reads NO, yes, 012 or 1:30 as other types)",
    f"{TEMPLATES / 'bad-values.yaml'}: expect.LastName: unbalanced {{ or }}; "
    "write {{ and }} for literal braces",
    f"{TEMPLATES / 'email-field.yaml'}: fields: "
    "email is set by syncwatch (syncwatch+<probe_id>@<probe_domain>); remove it",
    f"{TEMPLATES / 'owner-twice.yaml'}: expect: "
    "the expected owner is given twice: keep owner or expect.owner",
    f"{TEMPLATES / 'owner-twice.yaml'}: colour: unknown key",
    f"{TEMPLATES / 'twin-b.yaml'}: name: 'twin' is also defined in {TEMPLATES / 'twin-a.yaml'}",
]


@pytest.mark.parametrize(("name", "expected"), REJECTED, ids=[name for name, _ in REJECTED])
def test_rejected_config_reports_exact_problems(name: str, expected: list[str]) -> None:
    """Each invalid fixture fails with exactly its listed `file: key: reason` lines, all at once."""
    path = FIXTURES / f"{name}.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [f"{path}: {line}" for line in expected]


def test_every_invalid_fixture_has_expectations() -> None:
    """No invalid-*.yaml fixture sits in the directory without its expected messages."""
    expected = {name for name, _ in REJECTED} | {"invalid-template-files"}
    assert {path.stem for path in FIXTURES.glob("invalid-*.yaml")} == expected


def test_broken_template_files_are_named() -> None:
    """Problems in probe template files name the template file, not the config file."""
    with pytest.raises(ConfigError) as caught:
        load_config(FIXTURES / "invalid-template-files.yaml")
    assert caught.value.problems == REJECTED_TEMPLATES


def test_literal_secret_is_never_echoed() -> None:
    """A refused literal token appears in neither the problems nor the chained pydantic error."""
    with pytest.raises(ConfigError) as caught:
        load_config(FIXTURES / "invalid-literal-token.yaml")
    assert LITERAL_TOKEN not in str(caught.value)
    assert LITERAL_TOKEN not in str(caught.value.__cause__)
    assert LITERAL_TOKEN not in repr(caught.value.__cause__)


def test_relative_paths_follow_the_config_file() -> None:
    """database, probe_templates and {file: ...} secrets are relative to the config file."""
    config = load_config(REPO / "config" / "syncwatch.example.yaml")
    jwt_key = config.accounts[2].auth.private_key
    assert jwt_key.file == REPO / "config" / "secrets" / "salesforce-uat.pem"
    assert config.probe_templates == REPO / "config" / ".." / "probes"
    assert config.database == Path("/var/lib/syncwatch/syncwatch.db")


def test_unresolved_secrets_are_reported_with_their_key(tmp_path: Path) -> None:
    """check-config's warnings list each reference that cannot be resolved now, never a value."""
    (tmp_path / "present").write_text("s3cr3t\n", encoding="utf-8")
    raw = yaml.safe_load((REPO / "config" / "demo.yaml").read_text(encoding="utf-8"))
    raw["probe_templates"] = str(REPO / "probes")
    raw["accounts"][0]["token"] = {"file": "present"}
    raw["accounts"][1]["auth"]["client_secret"] = {"env": UNSET_ENV}
    raw["accounts"][2]["client_secret"] = {"file": "present"}
    raw["notifications"] = []
    config = config_from_data(raw, tmp_path / "c.yaml")
    assert unresolved_secrets(config) == [
        f"{tmp_path / 'c.yaml'}: accounts[1].auth.client_secret: "
        f"environment variable {UNSET_ENV} is not set"
    ]


def test_secret_ref_resolves_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """{env: NAME} reads the variable at resolve time, not at load time."""
    ref = SecretRef(env="SYNCWATCH_TEST_TOKEN")
    monkeypatch.setenv("SYNCWATCH_TEST_TOKEN", "tok-123")
    assert ref.resolve() == "tok-123"
    monkeypatch.setenv("SYNCWATCH_TEST_TOKEN", "tok-456")
    assert ref.resolve() == "tok-456"


def test_secret_ref_missing_env_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unset variable fails with a ConfigError naming it and the key that refers to it."""
    monkeypatch.delenv("SYNCWATCH_TEST_TOKEN", raising=False)
    ref = SecretRef(env="SYNCWATCH_TEST_TOKEN")
    ref.locate("c.yaml: accounts[0].token: ", Path("."))
    with pytest.raises(ConfigError) as caught:
        ref.resolve()
    assert caught.value.problems == [
        "c.yaml: accounts[0].token: environment variable SYNCWATCH_TEST_TOKEN is not set"
    ]


def test_secret_ref_resolves_from_file(tmp_path: Path) -> None:
    """{file: PATH} reads the file, stripping the trailing newline editors add."""
    (tmp_path / "token").write_text("tok-789\n", encoding="utf-8")
    ref = SecretRef(file=Path("token"))
    ref.locate("", tmp_path)
    assert ref.resolve() == "tok-789"


def test_secret_ref_missing_file_names_the_file(tmp_path: Path) -> None:
    """A missing secret file fails with a ConfigError naming the path, not any content."""
    ref = SecretRef(file=tmp_path / "absent")
    with pytest.raises(ConfigError, match=f"cannot read secret file {tmp_path / 'absent'}"):
        ref.resolve()


def test_secret_ref_repr_shows_only_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """repr and str show where the secret lives, never its value."""
    monkeypatch.setenv("SYNCWATCH_TEST_TOKEN", "tok-visible")
    ref = SecretRef(env="SYNCWATCH_TEST_TOKEN")
    ref.resolve()
    assert repr(ref) == str(ref) == "SecretRef(env='SYNCWATCH_TEST_TOKEN')"
    assert "tok-visible" not in repr(ref.model_dump())


@pytest.mark.parametrize("raw", [{}, {"env": "A", "file": "b"}, {"env": "not a name"}, {"x": 1}])
def test_secret_ref_shape_is_exact(raw: dict[str, Any]) -> None:
    """A secret reference is exactly {env: NAME} or {file: PATH}."""
    with pytest.raises(ValidationError):
        SecretRef.model_validate(raw)


def test_contract_file_loads_standalone(tmp_path: Path) -> None:
    """A contract in its own file uses the config's contract shape and keeps money exact."""
    raw = yaml.safe_load((REPO / "config" / "syncwatch.example.yaml").read_text(encoding="utf-8"))
    path = tmp_path / "contract.yaml"
    path.write_text(yaml.safe_dump(raw["contracts"][0]), encoding="utf-8")
    contract = load_contract(path)
    assert str(contract.objective_percent) == "99.9"
    assert str(contract.monthly_fee) == "3600.00"
    assert [str(tier.below) for tier in contract.credits] == ["99.9", "99.0", "95.0"]


@pytest.mark.parametrize(
    ("holidays", "problem"),
    [
        (
            {"country": "XX"},
            "calendar.holidays.country: no holiday calendar is known for this country",
        ),
        (
            {"country": "US", "subdivision": "ZZ"},
            "calendar.holidays: subdivision 'ZZ' is not one of US's (AK, AL, AR, AS, AZ, CA, …)",
        ),
    ],
)
def test_holiday_calendars_must_exist(
    tmp_path: Path, holidays: dict[str, str], problem: str
) -> None:
    """A holiday country or region the holidays package does not know is refused on load,
    not discovered by a traceback at the month's end."""
    raw = yaml.safe_load((REPO / "config" / "syncwatch.example.yaml").read_text(encoding="utf-8"))
    contract = raw["contracts"][0]
    contract["calendar"] = {"days": ["mon"], "start": "08:00", "end": "18:00", "holidays": holidays}
    path = tmp_path / "contract.yaml"
    path.write_text(yaml.safe_dump(contract), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_contract(path)
    assert raised.value.problems == [f"{path}: {problem}"]


def test_union_tags_are_known_to_the_error_formatter() -> None:
    """Every tag of a tagged union is stripped from key paths, so the set must stay complete."""
    schema = str(Config.model_json_schema())
    tags = {"hubspot", "marketo", "salesforce", "client_credentials", "jwt_bearer"}
    tags |= {"webhook", "slack", "pagerduty", "one_off", "weekly"}
    tags |= {"dynamics"}
    tags |= {"pardot"}
    tags |= {"eloqua"}
    assert tags == UNION_TAGS
    assert all(f"'{tag}'" in schema for tag in tags - {"one_off"})


YAMLISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=10) | st.integers(), children, max_size=4)
    ),
    max_leaves=20,
)
TOP_KEYS = list(Config.model_fields)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(TOP_KEYS) | st.text(max_size=8), YAMLISH, max_size=6))
def test_arbitrary_documents_fail_only_with_config_error(raw: dict[Any, Any]) -> None:
    """Whatever a YAML file holds, loading either succeeds or raises ConfigError."""
    try:
        config_from_data(raw, REPO / "config" / "fuzz.yaml")
    except ConfigError as exc:
        assert exc.problems


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*at, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*at, i))
    return found


EXAMPLE = yaml.safe_load((REPO / "config" / "syncwatch.example.yaml").read_text(encoding="utf-8"))
EXAMPLE_PATHS = _paths(EXAMPLE)[1:]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(EXAMPLE_PATHS), YAMLISH), min_size=1, max_size=3))
def test_mutated_example_fails_only_with_config_error(
    edits: list[tuple[tuple[Any, ...], Any]],
) -> None:
    """Replacing any values deep inside a valid config never raises anything but ConfigError."""
    raw = copy.deepcopy(EXAMPLE)
    for path, value in edits:
        node = raw
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        config_from_data(raw, REPO / "config" / "fuzz.yaml")
    except ConfigError as exc:
        assert exc.problems


def test_lookups_by_name_follow_the_integrations_of_each_copy() -> None:
    """``integration`` and ``account`` go through an index (the clean-up looks up every queued
    probe); a copy with other integrations, or its original, never answers from the other's."""
    config = load_config(REPO / "config" / "demo.yaml")
    first, second = config.integrations
    assert config.integration(second.name) is second
    only_first = config.model_copy(update={"integrations": [first]})
    assert only_first.integration(second.name) is None
    assert config.integration(second.name) is second
    assert only_first.integration(first.name) is first
    assert config.account("marketo-demo") is config.accounts[2]
    assert config.account("nobody") is None
