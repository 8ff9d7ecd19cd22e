"""The sandbox's in-memory world: every vendor's records, the connector queue, faults, dice.

Vendor modules own HTTP shapes; this module owns the facts they render, so the sync engine and
the introspection endpoints see one truth.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from syncwatch.clock import Clock
from syncwatch.sandbox.faults import FaultBook
from syncwatch.sandbox.scenario import Scenario

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def salesforce_id(key_prefix: str, number: int) -> str:
    """An 18-character Salesforce record id: 3-char key prefix, 12-char counter, checksum."""
    digits = ""
    for _ in range(12):
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
    return with_checksum(key_prefix + digits)


def with_checksum(short_id: str) -> str:
    """Salesforce's 15 → 18 character id: each 5-char chunk's upper-case positions as a letter.

    This is what makes 18-character ids safe to compare case-insensitively.
    """
    suffix = ""
    for chunk in (short_id[0:5], short_id[5:10], short_id[10:15]):
        bits = sum(1 << i for i, char in enumerate(chunk) if "A" <= char <= "Z")
        suffix += _CHECKSUM[bits]
    return short_id + suffix


@dataclass
class Contact:
    """A HubSpot contact."""

    id: str
    properties: dict[str, str]
    created_at: datetime
    updated_at: datetime
    origin: str  # "form", "api", or a connector's source record ("marketo:318581")
    archived_at: datetime | None = None

    @property
    def email(self) -> str:
        return self.properties.get("email", "")


@dataclass
class MarketoLead:
    """A Marketo person ("lead"): REST field names as sent, timestamps to the second as shown."""

    id: int
    fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    origin: str  # "leads" (Sync Leads) or "push" (Push Lead)

    @property
    def email(self) -> str:
        return str(self.fields.get("email") or "")


@dataclass
class PardotProspect:
    """An Account Engagement prospect: v5 field names as sent; deleting moves it to the recycle
    bin (``deleted_at``), as the v5 ``DELETE`` does."""

    id: int
    fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    origin: str  # "api" (upsertLatestByEmail) or "form_handler"
    deleted_at: datetime | None = None

    @property
    def email(self) -> str:
        return str(self.fields.get("email") or "")


@dataclass
class EloquaContact:
    """An Eloqua contact: REST 1.0 property names as sent; deleting removes it outright."""

    id: int
    fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @property
    def email(self) -> str:
        return str(self.fields.get("emailAddress") or "")


@dataclass
class CrmRecord:
    """A Salesforce Lead or Contact; ``created_at`` is the true instant, to the microsecond."""

    id: str
    sobject: str
    fields: dict[str, Any]
    created_at: datetime
    origin_contact_id: str | None = None

    @property
    def email(self) -> str:
        return str(self.fields.get("Email") or "")


@dataclass
class DataverseRecord:
    """A Dynamics 365 lead or contact: logical column names; ``created_at`` the true instant."""

    id: str
    entity: str  # "lead" or "contact"
    fields: dict[str, Any]
    created_at: datetime
    origin: str  # "api", or the connector's source record ("hubspot:101", "marketo:318581")

    @property
    def email(self) -> str:
        return str(self.fields.get("emailaddress1") or "")


@dataclass
class World:
    """Everything the sandbox remembers, on one clock and one seeded random source."""

    scenario: Scenario
    clock: Clock
    rng: random.Random
    started_at: datetime
    faults: FaultBook
    contacts: dict[str, Contact] = field(default_factory=dict)
    #: Marketo people by lead id; Delete Leads removes them outright (no archive).
    marketo_leads: dict[int, MarketoLead] = field(default_factory=dict)
    #: Account Engagement prospects by id, recycled ones included (``deleted_at`` set).
    pardot_prospects: dict[int, PardotProspect] = field(default_factory=dict)
    #: Eloqua contacts by id; a delete removes them.
    eloqua_contacts: dict[int, EloquaContact] = field(default_factory=dict)
    crm: dict[str, CrmRecord] = field(default_factory=dict)
    #: Deleted CRM records, kept so ground truth (true creation instants) outlives clean-up.
    deleted_crm: dict[str, CrmRecord] = field(default_factory=dict)
    #: Dynamics 365 leads and contacts by id; deleted ones move to ``deleted_dataverse``.
    dataverse: dict[str, DataverseRecord] = field(default_factory=dict)
    deleted_dataverse: dict[str, DataverseRecord] = field(default_factory=dict)
    #: Per-vendor emulation state (e.g. quota counters), keyed by vendor, so every route group of
    #: one vendor (HubSpot's two hosts) shares one account; vendor modules own what is inside.
    vendor_state: dict[str, Any] = field(default_factory=dict)
    #: Each person a marketing platform was asked to take in (form submission, create, upsert),
    #: per lower-cased email, whatever it then did: a repeat may be merged into the first, so
    #: this, not the record count, is the ground truth for "no probe injected twice".
    submissions: Counter[str] = field(default_factory=Counter)
    _live_by_email: dict[str, str] = field(default_factory=dict)
    _live_contacts: dict[str, Contact] = field(default_factory=dict)
    """Contacts not archived, by id in creation order: searches look at these, not at every
    contact ever archived (clean-up archives each probe's; a simulated month keeps ~50,000)."""
    _contact_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(101))
    _lead_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(318581))
    _prospect_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(43108001))
    _eloqua_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1401))
    _crm_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _dataverse_ids: itertools.count[int] = field(
        default_factory=lambda: itertools.count(0x70BF4D48)
    )

    @classmethod
    def create(cls, scenario: Scenario, clock: Clock, seed: int | None = None) -> World:
        rng = random.Random(scenario.seed if seed is None else seed)
        started_at = clock.now()
        world = cls(scenario, clock, rng, started_at, FaultBook(rng))
        for spec in scenario.faults:
            world.faults.schedule(spec, started_at)
        return world

    def note_submission(self, email: str) -> None:
        self.submissions[email.lower()] += 1

    def is_synthetic(self, email: str) -> bool:
        return email.lower().endswith("@" + self.scenario.probe_domain.lower())

    def live_contacts(self) -> list[Contact]:
        """Every contact not archived, oldest first."""
        return list(self._live_contacts.values())

    def contact_by_email(self, email: str) -> Contact | None:
        contact_id = self._live_by_email.get(email.lower())
        return self.contacts[contact_id] if contact_id else None

    def archive_contact(self, contact_id: str) -> bool:
        """Archive (soft-delete) a contact; False when there is no live contact by that id."""
        contact = self.contacts.get(contact_id)
        if contact is None or contact.archived_at is not None:
            return False
        contact.archived_at = self.clock.now()
        self._live_by_email.pop(contact.email.lower(), None)
        self._live_contacts.pop(contact.id, None)
        return True

    def new_contact(
        self, properties: dict[str, str], origin: str, created_at: datetime | None = None
    ) -> Contact:
        """A live contact, created now (or at ``created_at``: a connector's due time)."""
        now = created_at or self.clock.now()
        contact = Contact(str(next(self._contact_ids)), dict(properties), now, now, origin)
        self.contacts[contact.id] = contact
        self._live_contacts[contact.id] = contact
        if contact.email:
            self._live_by_email[contact.email.lower()] = contact.id
        return contact

    def marketo_leads_by_email(self, email: str) -> list[MarketoLead]:
        """Every person with this email (Marketo allows duplicates), oldest first."""
        wanted = email.lower()
        return [lead for lead in self.marketo_leads.values() if lead.email.lower() == wanted]

    def new_marketo_lead(self, fields: dict[str, Any], origin: str) -> MarketoLead:
        now = self.clock.now()
        lead = MarketoLead(next(self._lead_ids), dict(fields), now, now, origin)
        self.marketo_leads[lead.id] = lead
        return lead

    def pardot_prospects_by_email(self, email: str) -> list[PardotProspect]:
        """Live (not recycled) prospects with this email, most recently updated first."""
        wanted = email.lower()
        live = [
            p
            for p in self.pardot_prospects.values()
            if p.deleted_at is None and p.email.lower() == wanted
        ]
        return sorted(live, key=lambda p: (p.updated_at, p.id), reverse=True)

    def new_pardot_prospect(self, fields: dict[str, Any], origin: str) -> PardotProspect:
        now = self.clock.now()
        prospect = PardotProspect(next(self._prospect_ids), dict(fields), now, now, origin)
        self.pardot_prospects[prospect.id] = prospect
        return prospect

    def eloqua_contact_by_email(self, email: str) -> EloquaContact | None:
        """The contact with this email (Eloqua keeps email addresses unique), if any."""
        wanted = email.lower()
        return next((c for c in self.eloqua_contacts.values() if c.email.lower() == wanted), None)

    def new_eloqua_contact(self, fields: dict[str, Any]) -> EloquaContact:
        now = self.clock.now()
        contact = EloquaContact(next(self._eloqua_ids), dict(fields), now, now)
        self.eloqua_contacts[contact.id] = contact
        return contact

    def new_crm_record(
        self,
        sobject: str,
        fields: dict[str, Any],
        created_at: datetime,
        origin_contact_id: str | None = None,
    ) -> CrmRecord:
        prefix = "00Q" if sobject == "Lead" else "003"
        record = CrmRecord(
            salesforce_id(prefix, next(self._crm_ids)),
            sobject,
            dict(fields),
            created_at,
            origin_contact_id,
        )
        self.crm[record.id] = record
        return record

    def new_dataverse_record(
        self, entity: str, fields: dict[str, Any], created_at: datetime, origin: str
    ) -> DataverseRecord:
        """A row with a GUID shaped like the docs' (``70bf4d48-34cb-ed11-b596-0022481d68cd``):
        sequential first group, so ids sort by creation as Dataverse's mostly do."""
        record_id = f"{next(self._dataverse_ids):08x}-34cb-ed11-b596-0022481d68cd"
        record = DataverseRecord(record_id, entity, dict(fields), created_at, origin)
        self.dataverse[record.id] = record
        return record
