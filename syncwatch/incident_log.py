"""Incidents as the daemon sees them: observe, persist, count, and queue notifications.

``incidents.py`` decides; this module does the I/O around each decision. Every finished probe
is one observation of the integration's ``probes`` track and, when its accounts have a fresh
daily quota figure, one of its ``quota`` track. The step that comes back is written with its
notifications in one transaction (``IncidentStore.apply``), so a restart resumes every track
where it was: an open incident is neither opened again nor forgotten, and a notification is
either queued with its incident or not at all.

If the store cannot be written, the observation is dropped (logged, and ``/readyz`` says why)
rather than acted on in memory: an incident the database never saw would page without a
record, and be opened a second time after a restart.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Callable
from datetime import datetime

import structlog

from syncwatch.config import Config, Integration
from syncwatch.errors import StoreError
from syncwatch.incident_store import RESOLVE, TRIGGER, IncidentStore, incident_json
from syncwatch.incidents import (
    PROBES,
    QUOTA,
    Incident,
    Observation,
    Policy,
    Step,
    Track,
    observe,
    probe_observation,
    quota_observation,
    runbook_url,
)
from syncwatch.metrics import Metrics
from syncwatch.quota import READING_TRUSTED_FOR
from syncwatch.store import Store

log = structlog.get_logger("syncwatch.incidents")


def own_runbook_base(config: Config) -> str:
    """The daemon's own ``/runbooks/`` URL; a wildcard listen host becomes this host's name,
    since ``0.0.0.0`` in a link reaches nobody."""
    if config.runbook_base_url is not None:
        return str(config.runbook_base_url)
    host = config.listen.host
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{config.listen.port}/runbooks/"


class IncidentLog:
    """The incident tracks of every integration, kept in the store."""

    def __init__(
        self,
        config: Config,
        store: Store,
        metrics: Metrics,
        daily_windows: dict[str, str],
        on_queued: Callable[[], None] = lambda: None,
        on_store_error: Callable[[str, Exception], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.incidents = IncidentStore(store)
        self.metrics = metrics
        self.daily_windows = daily_windows
        self.on_queued = on_queued
        """Called after notifications are queued: the notifier wakes up."""
        self.on_store_error = on_store_error
        """Told of a write that failed (the daemon logs a store outage once, and /readyz
        fails); None logs each failure here."""
        self.policy = Policy(config.incidents.confirm, config.incidents.recover)
        self.runbook_base = own_runbook_base(config)
        self.targets = [target.name for target in config.notifications]
        self.tracks: dict[tuple[str, str], Track] = {}
        self._quota_watch: dict[str, list[tuple[str, str, int]]] = {}

    def resume(self) -> list[Incident]:
        """Load every track as the last run left it; returns the incidents still open."""
        self.tracks = {(t.integration, t.track): t for t in self.incidents.tracks()}
        still_open = [track.open for track in self.tracks.values() if track.open is not None]
        for incident in still_open:
            self.metrics.incidents_open.labels(incident.integration, incident.cause).inc()
        return still_open

    def probe_finished(
        self, integration: Integration, outcome: str, error_class: str | None, at: datetime
    ) -> None:
        """One finished probe: an observation of its ``probes`` and ``quota`` tracks.

        Most probes are good ones on clean tracks, which change nothing: those are known
        without building the observation (``Track.is_clean``, as ``observe`` checks it)."""
        name = integration.name
        if outcome != "ok" or not self._clean(name, PROBES):
            self.observe(probe_observation(name, outcome, error_class, at))
        levels = self._quota_levels(integration, at)
        if levels and (self._low(levels) or not self._clean(name, QUOTA)):
            quota = quota_observation(name, levels, at)
            assert quota is not None  # there are levels to judge by
            self.observe(quota)

    def _clean(self, integration: str, track: str) -> bool:
        known = self.tracks.get((integration, track))
        return known is None or known.is_clean

    @staticmethod
    def _low(levels: list[tuple[int, int]]) -> bool:
        return any(remaining < warning for remaining, warning in levels)

    def observe(self, observation: Observation) -> Step | None:
        """Advance one track, persist the step with its notifications; None if nothing was saved
        (a healthy track that stays healthy, or a store that refused the write)."""
        key = (observation.integration, observation.track)
        known = self.tracks.get(key)
        if observation.cause is None and (known is None or known.is_clean):
            return None  # healthy and staying so, the common case: nothing to judge or write
        track = known or Track(observation.integration, observation.track)
        step = observe(track, observation, self.policy, self._runbook)
        messages = self._messages(step)
        try:
            self.incidents.apply(step, messages)
        except (StoreError, OSError, sqlite3.Error) as exc:
            if self.on_store_error is not None:
                self.on_store_error("record an incident observation", exc)
            else:
                log.error("cannot record an incident observation", error=str(exc), **_context(step))
            return None
        self.tracks[key] = step.track
        self._count(step)
        if messages:
            self.on_queued()
        return step

    def _messages(self, step: Step) -> list[tuple[str, str, dict[str, object]]]:
        if step.incident is None or not (step.opened or step.resolved):
            return []
        event = TRIGGER if step.opened else RESOLVE
        payload: dict[str, object] = {"event": event, "incident": incident_json(step.incident)}
        return [(target, event, payload) for target in self.targets]

    def _count(self, step: Step) -> None:
        incident = step.incident
        if incident is None:
            return
        gauge = self.metrics.incidents_open.labels(incident.integration, incident.cause)
        if step.opened:
            gauge.inc()
            log.warning("incident opened", **_context(step))
        elif step.resolved:
            gauge.dec()
            log.info("incident resolved", **_context(step))

    def _runbook(self, cause: str) -> str:
        return runbook_url(cause, self.runbook_base)

    def _quota_levels(self, integration: Integration, now: datetime) -> list[tuple[int, int]]:
        """(remaining, warning level) of each account with a fresh daily figure and a level."""
        levels = []
        for name, window, warning in self._quota_accounts(integration):
            reading = self.store.quota_reading(name, window)
            if reading is None or now - reading.observed_at > READING_TRUSTED_FOR:
                continue
            levels.append((reading.as_figure().remaining, warning))
        return levels

    def _quota_accounts(self, integration: Integration) -> list[tuple[str, str, int]]:
        """(account, daily window, warning level) of the integration's accounts that have
        both: fixed by the config, so found once per integration, not once per probe."""
        found = self._quota_watch.get(integration.name)
        if found is None:
            found = []
            for name in sorted({integration.source.account, integration.destination.account}):
                account = self.config.account(name)
                window = self.daily_windows.get(name)
                if account is not None and window is not None and account.quota.warning_level > 0:
                    found.append((name, window, account.quota.warning_level))
            self._quota_watch[integration.name] = found
        return found


def _context(step: Step) -> dict[str, object]:
    incident = step.incident
    if incident is None:
        return {"integration": step.track.integration, "track": step.track.track}
    return {
        "integration": incident.integration,
        "incident": incident.key,
        "cause": incident.cause,
        "attribution": incident.attribution,
        "runbook_url": incident.runbook_url,
    }
