"""The config file's top level: integrations, notification targets, incident policy, ``Config``.

Checks that need one section only live on the models (bounds, formats, timeout vs objectives);
checks across sections (does that account exist, can it be a source) live in the loader, which
knows the probe templates too and reports every broken reference at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, Protocol, TypeVar

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from syncwatch.config.accounts import Account, AccountBase
from syncwatch.config.base import (
    DAY,
    HOUR,
    MINUTE,
    BaseUrl,
    Domain,
    HttpUrl,
    Name,
    Seconds,
    Strict,
    between,
    matches,
)
from syncwatch.config.contracts import Contract
from syncwatch.config.secrets import Secret
from syncwatch.config.templates import ProbeTemplate
from syncwatch.durations import format_duration

DEFAULT_PORT = 9851
"""Where ``/metrics``, ``/healthz``, ``/status`` and ``/api`` are served unless ``listen`` says.
unconfirmed: not registered on the Prometheus default-port-allocations wiki (range full)."""
DEFAULT_LISTEN = f"127.0.0.1:{DEFAULT_PORT}"
GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


class Source(Strict):
    """Where probes are injected: a MAP account and how (``form`` or ``contacts_api``)."""

    account: Name
    method: str
    form_guid: (
        Annotated[str, AfterValidator(matches(GUID, "5c1e8f2a-9b7d-4e3a-8c61-2f0d4b9a7e15"))] | None
    ) = None
    form_handler_url: HttpUrl | None = None
    """A Pardot form handler's endpoint URL (its "Endpoint URL"), for method ``form_handler``."""


class Destination(Strict):
    """Where probes are looked for: a CRM account and the object the connector creates."""

    account: Name
    object: str = "Lead"


Every = Annotated[Seconds, between(10, DAY)]
LatencyObjective = Annotated[Seconds, between(1, 7 * DAY)]


class TemplateRun(Strict):
    """One probe template on one schedule with its own objective (tiered lead SLAs)."""

    template: Name
    every: Every
    latency_objective: LatencyObjective


class Poll(Strict):
    """Adaptive polling: first look near the typical latency, then at a steady cadence."""

    first_after: Annotated[Seconds, between(1, DAY)] = 60.0
    every: Annotated[Seconds, between(5, HOUR)] = 30.0


_SCHEDULE_KEYS = {"every": TypeAdapter(Every), "latency_objective": TypeAdapter(LatencyObjective)}


def _inherit_schedule(raw: Any) -> Any:
    """Templates without their own ``every``/``latency_objective`` take the integration's.

    Most integrations run one template; this keeps their config one level flat while tiered
    ones still set each template's schedule. Done before validation so bounds and "missing"
    errors point at the key the operator wrote (or forgot). An invalid integration-level value
    is reported once, at the integration; its templates get a stand-in so the same mistake is
    not listed again under each of them (the config is refused either way).
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("templates"), list):
        return raw
    defaults = {}
    for key, adapter in _SCHEDULE_KEYS.items():
        if key in raw:
            try:
                defaults[key] = adapter.validate_python(raw[key])
            except ValidationError:
                defaults[key] = 60.0
    runs = [{**defaults, **run} if isinstance(run, dict) else run for run in raw["templates"]]
    return {**raw, "templates": runs}


class Integration(Strict):
    name: Name
    source: Source
    destination: Destination
    every: Every | None = None
    """Default schedule for templates that do not set their own."""
    latency_objective: LatencyObjective | None = None
    """Default objective for templates that do not set their own."""
    templates: list[TemplateRun] = Field(min_length=1)
    timeout: Annotated[Seconds, between(MINUTE, 7 * DAY)]
    routing_timeout: Annotated[Seconds, between(1, DAY)] = 600.0
    poll: Poll = Poll()
    success_objective_percent: float = Field(default=99.0, gt=0, lt=100)
    """The share of probes that should end ``ok``: the SLO the burn-rate alerts hold the
    integration to (config/prometheus). Not a vendor's promise; contracts carry those."""

    _defaults = model_validator(mode="before")(_inherit_schedule)

    @field_validator("templates")
    @classmethod
    def _unique(cls, runs: list[TemplateRun]) -> list[TemplateRun]:
        names = [run.template for run in runs]
        if len(set(names)) != len(names):
            raise ValueError("lists a template twice; give each template one schedule")
        return runs

    @field_validator("timeout")
    @classmethod
    def _after_objectives(cls, timeout: float, info: ValidationInfo) -> float:
        runs: list[TemplateRun] = info.data.get("templates") or []
        slowest = max((run.latency_objective for run in runs), default=0.0)
        if timeout <= slowest:
            raise ValueError(
                f"must be longer than every latency_objective ({format_duration(slowest)}), "
                "or a slow probe would be called lost"
            )
        return timeout

    @field_validator("poll")
    @classmethod
    def _within_timeout(cls, poll: Poll, info: ValidationInfo) -> Poll:
        timeout = info.data.get("timeout")
        if timeout is not None and max(poll.first_after, poll.every) >= timeout:
            raise ValueError("first_after and every must be shorter than the timeout")
        return poll


class WebhookTarget(Strict):
    name: Name
    kind: Literal["webhook"]
    url: Secret
    """The whole URL is the secret: receivers often carry a token in it."""


class SlackTarget(Strict):
    name: Name
    kind: Literal["slack"]
    webhook_url: Secret


class PagerDutyTarget(Strict):
    name: Name
    kind: Literal["pagerduty"]
    routing_key: Secret
    events_url: BaseUrl = "https://events.pagerduty.com/v2/enqueue"


NotificationTarget = Annotated[
    WebhookTarget | SlackTarget | PagerDutyTarget, Field(discriminator="kind")
]


class IncidentPolicy(Strict):
    """No flapping pages for one blip: confirm before opening, recover before closing."""

    confirm: int = Field(default=2, ge=1, le=100)
    recover: int = Field(default=2, ge=1, le=100)


class CleanupPolicy(Strict):
    """How soon synthetic records are deleted. Deletions are batched: a flush costs a few calls
    whatever it deletes, so waiting for companions keeps clean-up cheap (DESIGN §5)."""

    flush_every: Annotated[Seconds, between(1, DAY)] = 600.0
    """A concluded probe's records wait at most this long before a flush (100 queued flush at
    once). Shorter removes synthetic leads sooner, for more of the API quota."""


class Retention(Strict):
    """How long raw events are kept, and what is kept of them after (docs/storage.md)."""

    raw_days: int = Field(default=45, ge=32, le=3660)
    """Raw probes and calls: the evidence file a claim attaches. 45 days covers a month and
    the usual 30-day claim window after it. At least 32: the month-to-date gauges, the status
    page and the quota guard read the current month's raw events."""
    rollup_days: int = Field(default=400, ge=1, le=3660)
    """Folded contract months and hourly rollups: 13 months of claims and history."""

    @model_validator(mode="after")
    def _rollups_outlive_raw(self) -> Retention:
        if self.rollup_days < self.raw_days:
            raise ValueError("rollup_days must be at least raw_days")
        return self


class Listen(Strict):
    host: str
    port: int = Field(ge=1, le=65535)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _host_port(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"must be HOST:PORT, e.g. {DEFAULT_LISTEN}")
    host, sep, port = value.rpartition(":")
    if not sep or not host.strip("[]") or not port.isdigit():
        raise ValueError(f"must be HOST:PORT, e.g. {DEFAULT_LISTEN}")
    return {"host": host.strip("[]"), "port": int(port)}


class Config(Strict):
    """A whole syncwatch config file, with its probe templates attached by the loader."""

    probe_domain: Domain
    database: Path = Path("syncwatch.db")
    listen: Annotated[Listen, BeforeValidator(_host_port)] = Listen(
        host="127.0.0.1", port=DEFAULT_PORT
    )
    self_check_url: HttpUrl | None = None
    runbook_base_url: HttpUrl | None = None
    """Incident links go to ``runbook_base_url + <cause>`` (your wiki); unset, to the daemon's
    own ``/runbooks/<cause>``, which then serves the pages from ``runbooks_dir``."""
    runbooks_dir: Path | None = None
    """Your own copy of the runbooks (with your escalation contacts); unset, the shipped ones."""
    probe_templates: Path = Path("probes")
    accounts: list[Account] = Field(default_factory=list)
    integrations: list[Integration] = Field(default_factory=list)
    contracts: list[Contract] = Field(default_factory=list)
    notifications: list[NotificationTarget] = Field(default_factory=list)
    incidents: IncidentPolicy = IncidentPolicy()
    cleanup: CleanupPolicy = CleanupPolicy()
    retention: Retention = Retention()

    _source: Path = PrivateAttr(default=Path("<memory>"))
    _accounts_by_name: _ByName[AccountBase] = PrivateAttr(default_factory=lambda: _ByName())
    _integrations_by_name: _ByName[Integration] = PrivateAttr(default_factory=lambda: _ByName())
    _templates: dict[str, ProbeTemplate] = PrivateAttr(default_factory=dict)

    @property
    def source(self) -> Path:
        """The file this config was loaded from."""
        return self._source

    # The three below are asked several times a probe. They read pydantic's store of private
    # attributes, ``__pydantic_private__``, directly: ``self._templates`` goes through the
    # model's ``__getattr__``, about 1.4 us, thirty times what a dict lookup costs.

    @property
    def templates(self) -> dict[str, ProbeTemplate]:
        """The probe templates found in ``probe_templates``, by name."""
        templates: dict[str, ProbeTemplate] = self._private()["_templates"]
        return templates

    def account(self, name: str) -> AccountBase | None:
        index: _ByName[AccountBase] = self._private()["_accounts_by_name"]
        return index.get(self.accounts, name)

    def integration(self, name: str) -> Integration | None:
        """Looked up for every queued clean-up and every probe: through an index, since a scan
        of 10,000 integrations per queued probe stalled the event loop for seconds."""
        index: _ByName[Integration] = self._private()["_integrations_by_name"]
        return index.get(self.integrations, name)

    def _private(self) -> dict[str, Any]:
        private = self.__pydantic_private__
        assert private is not None  # a model that declares private attributes always has them
        return private


class _Named(Protocol):
    @property
    def name(self) -> str: ...


NamedT = TypeVar("NamedT", bound=_Named)


class _ByName(Generic[NamedT]):
    """One of the config's lists by name, built once. It is rebuilt when asked about another
    list (a ``model_copy`` with other integrations shares this object, not the list) or one
    whose length changed. The first of a name wins, as a scan would find it (validation looks
    names up before it reports them used twice)."""

    def __init__(self) -> None:
        self._items: Sequence[NamedT] | None = None
        self._size = 0
        self._index: dict[str, NamedT] = {}

    def get(self, items: Sequence[NamedT], name: str) -> NamedT | None:
        if self._items is not items or self._size != len(items):
            self._items, self._size, self._index = items, len(items), {}
            for item in items:
                self._index.setdefault(item.name, item)
        return self._index.get(name)
