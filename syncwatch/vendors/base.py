"""The contract every vendor module fulfils (DESIGN §3), and the values that cross it.

A MAP module implements ``Source``, a CRM module ``Destination``; ``registry.py`` maps a vendor
name to the module's ``build`` function, the only place a vendor is registered. Adapters receive
an ``AccountHttp`` (the seam tests fake through), return plain values, and raise only
``VendorError`` subclasses, already classified per DESIGN §6.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import httpx

from syncwatch import __version__
from syncwatch.clock import Clock
from syncwatch.http import (
    DEFAULT_CALL_TIMEOUT_S,
    AccountHttp,
    CallContext,
    CallSink,
    Classifier,
    NetworkHealth,
    QuotaParser,
    Rate,
)

USER_AGENT = f"syncwatch/{__version__}"
PROBE_LOCAL_PART = "syncwatch+"
"""Every synthetic lead's email starts with this; the probe id follows (DESIGN §2)."""


def probe_email(probe_id: str, probe_domain: str) -> str:
    return f"{PROBE_LOCAL_PART}{probe_id}@{probe_domain}"


def probe_id_of(email: str) -> str | None:
    """The probe id in a synthetic lead's email, or None for anyone else's address."""
    local, _, _domain = email.lower().partition("@")
    if not local.startswith(PROBE_LOCAL_PART):
        return None
    return local[len(PROBE_LOCAL_PART) :] or None


@dataclass(frozen=True)
class Probe:
    """One synthetic lead as the adapters see it: who it is and what to send."""

    probe_id: str
    email: str
    integration: str
    fields: Mapping[str, str] = field(default_factory=dict)
    """Source-side fields rendered from the template (the email is added by the adapter)."""


@dataclass(frozen=True)
class Injection:
    """What the source told us when it accepted a probe."""

    accepted_at: datetime
    """Our clock, the middle of the accepting call: the start of the sync's latency."""
    source_ref: str | None = None
    """The source's record id when its API returns one (contacts API); None for a form."""


@dataclass(frozen=True)
class SourceRef:
    """How to find a probe's source record for deletion: its id if known, else its email."""

    probe_id: str
    email: str
    record_id: str | None = None


@dataclass(frozen=True)
class Record:
    """A probe's record found on one side, as the vendor returned it."""

    record_id: str
    email: str
    created_at: datetime | None
    """The vendor's own creation timestamp, on the vendor's clock (None if it gives none)."""
    fields: Mapping[str, Any] = field(default_factory=dict)
    owner: str | None = None
    observed_at: datetime | None = None
    """Our clock when the response that carried this record arrived."""
    clock_offset_s: float | None = None
    """Vendor clock minus ours, as estimated when this record was read."""
    created_resolution_s: float = 0.0
    """How coarse ``created_at`` is: 1.0 when the vendor truncates to whole seconds."""
    duplicate_ids: tuple[str, ...] = ()
    """Later records for the same probe (a connector that delivered twice): ours to delete."""

    @property
    def probe_id(self) -> str | None:
        return probe_id_of(self.email)


@runtime_checkable
class Source(Protocol):
    """A MAP: where probes are injected and, after verification, deleted."""

    async def inject(self, probe: Probe) -> Injection: ...

    async def delete(self, refs: Sequence[SourceRef]) -> None: ...

    async def sweep(self, probe_domain: str, older_than: datetime) -> list[SourceRef]: ...


@runtime_checkable
class Destination(Protocol):
    """A CRM: where probes are looked for, one batched query per account per tick."""

    async def find(self, probes: Sequence[Probe]) -> dict[str, Record]: ...

    async def delete(self, records: Sequence[Record]) -> None: ...

    async def sweep(self, probe_domain: str, older_than: datetime) -> list[Record]: ...


@dataclass(frozen=True)
class Wiring:
    """What the daemon hands every account's HTTP client: the seams tests replace.

    ``transport`` is None in production (real sockets); tests pass
    ``httpx.ASGITransport(sandbox_app)`` or let respx patch the default transport.
    """

    clock: Clock
    sink: CallSink
    network: NetworkHealth = field(default_factory=NetworkHealth)
    transport: httpx.AsyncBaseTransport | None = None
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S

    def account_http(
        self,
        vendor: str,
        account: str,
        base_url: str,
        *,
        classify: Classifier,
        quota: QuotaParser,
        daily_window: str,
        rates: Mapping[str, Rate],
        max_concurrent: int | None = None,
    ) -> AccountHttp:
        """One account's client, with what only its vendor module knows filled in."""
        return AccountHttp(
            vendor=vendor,
            account=account,
            client=self.client(base_url),
            clock=self.clock,
            sink=self.sink,
            classify=classify,
            quota=quota,
            daily_window=daily_window,
            rates=rates,
            call_timeout_s=self.call_timeout_s,
            network=self.network,
            max_concurrent=max_concurrent,
        )

    def client(self, base_url: str) -> httpx.AsyncClient:
        """A client with explicit timeouts (httpx's own, a little beyond our clock's)."""
        return httpx.AsyncClient(
            base_url=base_url,
            transport=self.transport,
            timeout=httpx.Timeout(self.call_timeout_s + 5.0, connect=10.0),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        )


# -- helpers every adapter shares --------------------------------------------------------------


def find_context(probes: Sequence[Probe]) -> CallContext:
    """A destination query is an integration's (and a probe's) only when it covers just one."""
    integrations = {probe.integration for probe in probes}
    return CallContext(
        integration=integrations.pop() if len(integrations) == 1 else None,
        probe_id=probes[0].probe_id if len(probes) == 1 else None,
    )


def cleanup_context(refs: Sequence[SourceRef]) -> CallContext:
    """A clean-up call is one probe's when it covers one probe; batches belong to none."""
    return CallContext(probe_id=refs[0].probe_id) if len(refs) == 1 else CallContext()


def earliest(current: Record | None, candidate: Record) -> Record:
    """Of two records for one probe, the first created is the probe's; the other is a
    connector duplicate, kept in ``duplicate_ids`` so clean-up deletes it too."""
    if current is None:
        return candidate
    never = datetime.max.replace(tzinfo=UTC)
    first, second = sorted((current, candidate), key=lambda r: (r.created_at or never, r.record_id))
    others = (*first.duplicate_ids, *second.duplicate_ids, second.record_id)
    return replace(first, duplicate_ids=tuple(dict.fromkeys(others)))
