"""Synthetic data is ours to clean: batched deletion on both sides, and the sweep.

Deleting each probe's records as soon as it concludes would cost three calls per probe (find the
source contact, archive it, delete the CRM lead). Batching them on a cadence costs three calls per
*flush* instead, which is most of why a probe costs under three calls in all. A failed deletion
stays queued for the next flush; one that keeps failing for a day is handed to the sweep, which
finds anything at the probe domain older than the integration's timeout on either side, whatever
crash or bug left it there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from syncwatch.clock import Clock, Wakeup
from syncwatch.config import Config, Integration
from syncwatch.config.model import CleanupPolicy
from syncwatch.errors import VendorError
from syncwatch.lifecycle import CLEANED
from syncwatch.store import Store, from_db_time
from syncwatch.vendors.base import Record, SourceRef
from syncwatch.vendors.registry import Adapters, destination_key

log = structlog.get_logger("syncwatch.cleanup")

FLUSH_EVERY_S: float = CleanupPolicy().flush_every
"""Deletions wait at most this long for companions before a flush, by default."""
FLUSH_AT = 100
"""...or until this many are queued (a HubSpot batch archive takes 100 ids)."""
GIVE_UP_AFTER = timedelta(days=1)


@dataclass
class Pending:
    """One concluded probe whose records still exist somewhere."""

    probe_id: str
    integration: str
    email: str
    queued_at: datetime
    source_ref: str | None
    destination_ref: str | None
    source_done: bool = False
    destination_done: bool = False


@dataclass
class SweepReport:
    source: int = 0
    destination: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class Cleaner:
    config: Config
    store: Store
    clock: Clock
    adapters: Adapters
    pending: dict[str, Pending] = field(default_factory=dict)
    retry_at: datetime | None = None
    """After a flush that failed somewhere, none is due before this: a vendor that is down or
    throttling is asked again once per ``cleanup.flush_every``, not on every clean-up check
    (DESIGN §5: the monitor must not add to the outage it watches)."""
    sooner: Wakeup = field(default_factory=Wakeup)
    """Raised when a queued probe brings ``due_at`` forward (the first into an empty queue, or
    the one that fills a batch): the clean-up loop waits on it until the flush is due."""

    def enqueue(self, probe_id: str, queued_at: datetime | None = None) -> None:
        """Queue a concluded probe's records for deletion.

        ``queued_at`` is when it concluded; without it (a resumed probe) the row's last stamp is
        the best guess. It matters: a probe lost after a timeout longer than ``GIVE_UP_AFTER``
        would otherwise be given up on at its first failed attempt.
        """
        row = self.store.get_probe(probe_id)
        if row is None or row["finished_at"] is not None:
            return
        stamp = row["verified_at"] or row["injecting_at"] or row["scheduled_at"]
        queued = queued_at or from_db_time(stamp)
        if len(self.pending) in (0, FLUSH_AT - 1):
            self.sooner.set()
        self.pending[probe_id] = Pending(
            probe_id,
            row["integration"],
            row["email"],
            queued,
            row["source_ref"],
            row["destination_ref"],
            destination_done=row["destination_ref"] is None,
        )

    def due(self) -> bool:
        """Is a flush worth its calls now?"""
        due_at = self.due_at()
        return due_at is not None and self.clock.now() >= due_at

    def due_at(self) -> datetime | None:
        """When a flush is next worth its calls: once the oldest queued probe has waited
        ``cleanup.flush_every``, or at once with a full batch; never before ``retry_at``.
        None while nothing is queued."""
        if not self.pending:
            return None
        if len(self.pending) >= FLUSH_AT:
            due = self.clock.now()
        else:
            oldest = min(item.queued_at for item in self.pending.values())
            due = oldest + timedelta(seconds=self.config.cleanup.flush_every)
        return due if self.retry_at is None else max(due, self.retry_at)

    async def flush(self) -> int:
        """Delete every queued probe's records in batches; returns how many probes finished."""
        items, failed = list(self.pending.values()), False
        for key, group in _group(items, self._destination_key, lambda p: not p.destination_done):
            records = [
                Record(record_id, p.email, None)
                for p in group
                for record_id in (p.destination_ref or "").split(",")  # duplicates too
                if record_id
            ]
            if await self._attempt(
                f"delete at {key}", self.adapters.destinations[key].delete(records)
            ):
                for item in group:
                    item.destination_done = True
            else:
                failed = True
        for name, group in _group(items, self._source_account, lambda p: not p.source_done):
            refs = [SourceRef(p.probe_id, p.email, p.source_ref) for p in group]
            source = self.adapters.sources[group[0].integration]
            if await self._attempt(f"delete at {name}", source.delete(refs)):
                for item in group:
                    item.source_done = True
            else:
                failed = True
        every = timedelta(seconds=self.config.cleanup.flush_every)
        self.retry_at = self.clock.now() + every if failed else None
        return self._finish(items)

    async def _attempt(self, what: str, call: Awaitable[None]) -> bool:
        try:
            await call
        except VendorError as exc:
            log.warning("clean-up failed; will retry", what=what, error_class=exc.error_class)
            return False
        return True

    def _finish(self, items: Iterable[Pending]) -> int:
        now, finished = self.clock.now(), 0
        for item in items:
            done = item.source_done and item.destination_done
            expired = now - item.queued_at > GIVE_UP_AFTER
            if not (done or expired):
                continue
            changes: dict[str, object] = {"finished_at": now}
            if done:
                changes.update(state=CLEANED, cleaned_at=now)
            else:
                changes["detail"] = "clean-up kept failing for a day; left for the sweep"
            self.store.update_probe(item.probe_id, **changes)
            del self.pending[item.probe_id]
            finished += 1
        return finished

    def _destination_key(self, item: Pending) -> str | None:
        integration = self.config.integration(item.integration)
        return destination_key(integration) if integration else None

    def _source_account(self, item: Pending) -> str | None:
        integration = self.config.integration(item.integration)
        return integration.source.account if integration else None

    # -- the sweep -----------------------------------------------------------------------------

    async def sweep(self, *, dry_run: bool = False) -> SweepReport:
        """Find and delete synthetic records older than their integration's timeout."""
        report, busy = SweepReport(), self._busy()
        domain = self.config.probe_domain
        for key, integrations in self._by(destination_key).items():
            older_than = self._cutoff(integrations)
            destination = self.adapters.destinations[key]
            try:
                found = [
                    r for r in await destination.sweep(domain, older_than) if r.probe_id not in busy
                ]
                if found and not dry_run:
                    await destination.delete(found)
                report.destination += len(found)
            except VendorError as exc:
                report.errors.append(f"{key}: {exc}")
        for account, integrations in self._by(lambda i: i.source.account).items():
            older_than = self._cutoff(integrations)
            source = self.adapters.sources[integrations[0].name]
            try:
                refs = [r for r in await source.sweep(domain, older_than) if r.probe_id not in busy]
                if refs and not dry_run:
                    await source.delete(refs)
                report.source += len(refs)
            except VendorError as exc:
                report.errors.append(f"{account}: {exc}")
        log.info(
            "sweep done", source=report.source, destination=report.destination, dry_run=dry_run
        )
        return report

    def _busy(self) -> set[str]:
        """Probes still being looked for: their records are not leftovers."""
        return {row["probe_id"] for row in self.store.unfinished_probes() if row["outcome"] is None}

    def _cutoff(self, integrations: list[Integration]) -> datetime:
        return self.clock.now() - timedelta(seconds=max(i.timeout for i in integrations))

    def _by(self, key: Callable[[Integration], str]) -> dict[str, list[Integration]]:
        grouped: dict[str, list[Integration]] = {}
        for integration in self.config.integrations:
            grouped.setdefault(key(integration), []).append(integration)
        return grouped


def _group(
    items: Iterable[Pending],
    key: Callable[[Pending], str | None],
    wanted: Callable[[Pending], bool],
) -> list[tuple[str, list[Pending]]]:
    grouped: dict[str, list[Pending]] = {}
    for item in items:
        name = key(item)
        if name is not None and wanted(item):
            grouped.setdefault(name, []).append(item)
    return list(grouped.items())
