"""The pretend HubSpot → Salesforce connector.

A contact queued here becomes a Salesforce record after a log-normal latency drawn from the
scenario (seeded), with the connector's field mapping. Work happens lazily: every request to the
sandbox first delivers what has fallen due on the clock, so virtual time needs no background task
and a record's true creation time is exactly its due time, not when somebody happened to look.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from syncwatch.sandbox.world import Contact, World

_Z95 = 1.6448536269514722  # standard normal quantile at 0.95


@dataclass(order=True)
class PendingSync:
    due_at: datetime
    seq: int
    contact_id: str = field(compare=False)
    enqueued_at: datetime = field(compare=False)


@dataclass
class SyncEngine:
    world: World
    queue: list[PendingSync] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    delivered: int = 0
    dropped: int = 0
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def draw_latency(self) -> float:
        """Seconds of connector latency: log-normal through the scenario's median and p95."""
        spec = self.world.scenario.sync.latency
        mu = math.log(spec.median)
        sigma = (math.log(spec.p95) - mu) / _Z95
        return self.world.rng.lognormvariate(mu, sigma)

    def enqueue(self, contact: Contact) -> PendingSync:
        now = self.world.clock.now()
        due = now + timedelta(seconds=self.draw_latency())
        item = PendingSync(due, next(self._seq), contact.id, now)
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
                held.append(PendingSync(effective, item.seq, item.contact_id, item.enqueued_at))
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

    def _deliver(self, item: PendingSync, at: datetime) -> None:
        contact = self.world.contacts.get(item.contact_id)
        if contact is None or contact.archived_at is not None:
            return  # deleted in HubSpot before it synced: the connector has nothing to send
        faults = self.world.faults
        if faults.fire("drop", "salesforce", at):
            self.dropped += 1
            return
        fields = self.map_fields(contact)
        if (corrupt := faults.fire("corrupt", "salesforce", at)) and corrupt.spec.field:
            fields[corrupt.spec.field] = corrupt.spec.value or None
        if problem := self._rejection(fields, at):
            self.errors.append({"contact_id": contact.id, "at": at.isoformat(), **problem})
            return
        copies = 2 if faults.fire("duplicate", "salesforce", at) else 1
        for _ in range(copies):
            self.world.new_crm_record(self.world.scenario.sync.sobject, fields, at, contact.id)
        self.delivered += 1

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

    def _rejection(self, fields: dict[str, Any], at: datetime) -> dict[str, Any] | None:
        """Salesforce's own checks on the connector's insert, as its sync-error log shows them."""
        required = ["LastName", "Company"] if self.world.scenario.sync.sobject == "Lead" else []
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
