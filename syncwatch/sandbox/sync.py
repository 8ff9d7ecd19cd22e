"""The pretend connectors to Salesforce: HubSpot's, Marketo's native sync, Account Engagement's.

A HubSpot contact, a Marketo lead or a prospect queued here becomes a Salesforce record after a
log-normal latency drawn from the scenario (seeded; each connector has its own), with that
connector's field mapping. Work happens lazily: every request to the sandbox first delivers what
has fallen due on the clock, so virtual time needs no background task and a record's true
creation time is exactly its due time, not when somebody happened to look.

Each connector writes to the CRM the scenario selects for it (``sync.destination`` for HubSpot's,
``marketo.sync_to`` for Marketo's, ``pardot.sync_to`` for Account Engagement's; Salesforce by
default); Dynamics 365 rows are made by ``dynamics_sync``, HubSpot contacts by ``hubspot_sync``.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from syncwatch.sandbox import dynamics_sync, hubspot_sync
from syncwatch.sandbox.scenario import LatencySpec
from syncwatch.sandbox.world import (
    Contact,
    EloquaContact,
    MarketoLead,
    PardotProspect,
    World,
)

_Z95 = 1.6448536269514722  # standard normal quantile at 0.95


@dataclass(order=True)
class PendingSync:
    due_at: datetime
    seq: int
    contact_id: str = field(compare=False)
    enqueued_at: datetime = field(compare=False)
    source: str = field(default="hubspot", compare=False)
    """Where the record waits: ``hubspot`` (``contact_id`` is a contact), ``marketo`` (a lead),
    ``pardot`` (a prospect) or ``eloqua`` (an Eloqua contact)."""


@dataclass
class SyncEngine:
    world: World
    queue: list[PendingSync] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    delivered: int = 0
    dropped: int = 0
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def draw_latency(self, spec: LatencySpec | None = None) -> float:
        """Seconds of connector latency: log-normal through the median and p95 of ``spec`` (by
        default the HubSpot connector's)."""
        spec = spec or self.world.scenario.sync.latency
        mu = math.log(spec.median)
        sigma = (math.log(spec.p95) - mu) / _Z95
        return self.world.rng.lognormvariate(mu, sigma)

    def enqueue(self, contact: Contact) -> PendingSync:
        now = self.world.clock.now()
        due = now + timedelta(seconds=self.draw_latency())
        item = PendingSync(due, next(self._seq), contact.id, now)
        heapq.heappush(self.queue, item)
        return item

    def enqueue_marketo(self, lead: MarketoLead) -> PendingSync:
        """A new Marketo person, sent on by the instance's "Sync Person to SFDC" trigger."""
        now = self.world.clock.now()
        due = now + timedelta(seconds=self.draw_latency(self.world.scenario.marketo.sync_latency))
        item = PendingSync(due, next(self._seq), str(lead.id), now, "marketo")
        heapq.heappush(self.queue, item)
        return item

    def enqueue_pardot(self, prospect: PardotProspect) -> PendingSync:
        """A new, assigned prospect: Account Engagement's connector creates its Lead."""
        now = self.world.clock.now()
        due = now + timedelta(seconds=self.draw_latency(self.world.scenario.pardot.sync_latency))
        item = PendingSync(due, next(self._seq), str(prospect.id), now, "pardot")
        heapq.heappush(self.queue, item)
        return item

    def enqueue_eloqua(self, contact: EloquaContact) -> PendingSync:
        """A new Eloqua contact, sent on by a program's "Create Lead" step action."""
        now = self.world.clock.now()
        due = now + timedelta(seconds=self.draw_latency(self.world.scenario.eloqua.sync_latency))
        item = PendingSync(due, next(self._seq), str(contact.id), now, "eloqua")
        heapq.heappush(self.queue, item)
        return item

    def pending(self) -> int:
        return len(self.queue)

    def run_due(self) -> None:
        """Deliver every queued contact whose (pause-adjusted) due time has passed."""
        now = self.world.clock.now()
        held: list[PendingSync] = []
        while self.queue and self.queue[0].due_at <= now:
            item = heapq.heappop(self.queue)
            effective = self._after_pauses(item.due_at)
            if effective > now:
                held.append(replace(item, due_at=effective))
                continue
            self._deliver(item, effective)
        for item in held:
            heapq.heappush(self.queue, item)

    def _after_pauses(self, moment: datetime) -> datetime:
        """A record due inside a sync pause goes out when the pause ends (backlog flush)."""
        for fault in self.world.faults.active("sync_pause", None, moment):
            if fault.end is None:
                return datetime.max.replace(tzinfo=moment.tzinfo)
            return max(moment, fault.end)
        return moment

    def destination_of(self, item: PendingSync) -> str:
        """The CRM this record's connector writes to, as the scenario selects it."""
        scenario = self.world.scenario
        chosen = {
            "hubspot": scenario.sync.destination,
            "marketo": scenario.marketo.sync_to,
            "pardot": scenario.pardot.sync_to,
        }
        return chosen.get(item.source, "salesforce")

    def _deliver(self, item: PendingSync, at: datetime) -> None:
        destination = self.destination_of(item)
        if destination == "dynamics":
            dynamics_sync.deliver(self, item, at)
            return
        if destination == "hubspot":
            hubspot_sync.deliver(self, item, at)
            return
        source = self._source_record(item)
        if source is None:
            return  # deleted at the source before it synced: the connector has nothing to send
        fields, sobject = source
        faults = self.world.faults
        if faults.fire("drop", "salesforce", at):
            self.dropped += 1
            return
        if (corrupt := faults.fire("corrupt", "salesforce", at)) and corrupt.spec.field:
            fields[corrupt.spec.field] = corrupt.spec.value or None
        if problem := self._rejection(fields, sobject, at):
            entry = {"contact_id": item.contact_id, "source": item.source, "at": at.isoformat()}
            self.errors.append({**entry, **problem})
            return
        copies = 2 if faults.fire("duplicate", "salesforce", at) else 1
        for _ in range(copies):
            self.world.new_crm_record(sobject, fields, at, item.contact_id)
        self.delivered += 1

    def _source_record(self, item: PendingSync) -> tuple[dict[str, Any], str] | None:
        """The mapped fields and target object of a queued record that still exists."""
        if item.source == "eloqua":
            eloqua = self.world.eloqua_contacts.get(int(item.contact_id))
            return (self.map_eloqua(eloqua), "Lead") if eloqua is not None else None
        if item.source == "pardot":
            prospect = self.world.pardot_prospects.get(int(item.contact_id))
            live = prospect is not None and prospect.deleted_at is None
            return (self.map_pardot(prospect), "Lead") if prospect and live else None
        if item.source == "marketo":
            lead = self.world.marketo_leads.get(int(item.contact_id))
            return (self.map_marketo(lead), "Lead") if lead is not None else None
        contact = self.world.contacts.get(item.contact_id)
        if contact is None or contact.archived_at is not None:
            return None
        return self.map_fields(contact), self.world.scenario.sync.sobject

    def map_fields(self, contact: Contact) -> dict[str, Any]:
        sync = self.world.scenario.sync
        fields: dict[str, Any] = {
            target: contact.properties[source]
            for source, target in sync.mapping.items()
            if contact.properties.get(source) not in (None, "")
        }
        fields["OwnerId"] = self.world.scenario.salesforce.default_owner_id
        if sync.sobject == "Lead":
            fields.setdefault("LeadSource", sync.lead_source)
            fields.setdefault("Status", "Open - Not Contacted")
        return fields

    def map_marketo(self, lead: MarketoLead) -> dict[str, Any]:
        """Marketo's sync creates a Lead (owner from the scenario; no default LeadSource)."""
        fields: dict[str, Any] = {
            target: lead.fields[source]
            for source, target in self.world.scenario.marketo.mapping.items()
            if lead.fields.get(source) not in (None, "")
        }
        fields["OwnerId"] = self.world.scenario.salesforce.default_owner_id
        fields.setdefault("Status", "Open - Not Contacted")
        return fields

    def map_pardot(self, prospect: PardotProspect) -> dict[str, Any]:
        """The connector's Lead: mapped fields, the assigned user as owner (the scenario's)."""
        fields: dict[str, Any] = {
            target: prospect.fields[source]
            for source, target in self.world.scenario.pardot.mapping.items()
            if prospect.fields.get(source) not in (None, "")
        }
        fields["OwnerId"] = self.world.scenario.salesforce.default_owner_id
        fields.setdefault("Status", "Open - Not Contacted")
        return fields

    def map_eloqua(self, contact: EloquaContact) -> dict[str, Any]:
        """The "Create Lead" action's Lead: mapped fields, the connection's default owner."""
        fields: dict[str, Any] = {
            target: contact.fields[source]
            for source, target in self.world.scenario.eloqua.mapping.items()
            if contact.fields.get(source) not in (None, "")
        }
        fields["OwnerId"] = self.world.scenario.salesforce.default_owner_id
        fields.setdefault("Status", "Open - Not Contacted")
        return fields

    def _rejection(
        self, fields: dict[str, Any], sobject: str, at: datetime
    ) -> dict[str, Any] | None:
        """Salesforce's own checks on the connector's insert, as its sync-error log shows them."""
        required = ["LastName", "Company"] if sobject == "Lead" else []
        missing = [name for name in required if not fields.get(name)]
        if missing:
            return {
                "errorCode": "REQUIRED_FIELD_MISSING",
                "message": f"Required fields are missing: [{', '.join(missing)}]",
                "fields": missing,
            }
        rule = self.world.faults.fire("validation", "salesforce", at)
        if rule and (rule.spec.field is None or not fields.get(rule.spec.field)):
            return {
                "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "message": "Lead rejected by validation rule syncwatch_sandbox_rule",
                "fields": [rule.spec.field] if rule.spec.field else [],
            }
        return None
