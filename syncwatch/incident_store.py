"""Incidents, incident tracks and the notification outbox in the store (schema v3).

Kept apart from ``store.py`` so each stays readable; it shares the ``Store``'s connection, and
the tables are created by the store's migrations. ``apply`` writes everything one observation
produced in one transaction: after a crash the database holds either the old track state or
the new one with its incident and queued notifications, never half of it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from syncwatch.incidents import Incident, Step, Track
from syncwatch.store import Store, from_db_time, to_db_time

TRIGGER = "trigger"
RESOLVE = "resolve"


@dataclass(frozen=True)
class OutboxMessage:
    """One notification to one target. ``payload`` is target-neutral and secret-free: the
    target's URL or routing key is added only when it is sent (``notify.py``)."""

    id: int
    target: str
    incident: str
    event: str
    payload: Mapping[str, Any]
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None


def incident_json(incident: Incident) -> dict[str, Any]:
    """An incident as JSON: the outbox payload, ``/api/v1/incidents`` and reports use this."""
    duration = incident.duration
    return {
        "key": incident.key,
        "integration": incident.integration,
        "track": incident.track,
        "cause": incident.cause,
        "attribution": incident.attribution,
        "runbook_url": incident.runbook_url,
        "started_at": _iso(incident.started_at),
        "opened_at": _iso(incident.opened_at),
        "recovered_at": _iso(incident.recovered_at),
        "resolved_at": _iso(incident.resolved_at),
        "duration_s": None if duration is None else duration.total_seconds(),
        "bad_observations": incident.bad,
        "good_observations": incident.good,
        "causes": dict(sorted(incident.causes.items())),
        "status": "open" if incident.is_open else "resolved",
    }


class IncidentStore:
    """Typed access to the incident tables of one ``Store``."""

    def __init__(self, store: Store) -> None:
        self.db = store.db

    # -- tracks and incidents ---------------------------------------------------------------

    def tracks(self) -> list[Track]:
        """Every track's saved state, open incidents attached: what a restart resumes."""
        tracks = []
        for row in self.db.query("SELECT * FROM incident_tracks ORDER BY integration, track"):
            state = json.loads(row["state"])
            key = state.get("open")
            tracks.append(
                Track(
                    row["integration"],
                    row["track"],
                    bad_streak=state["bad_streak"],
                    good_streak=state["good_streak"],
                    streak_started_at=_time(state["streak_started_at"]),
                    pending=state["pending"],
                    open=self.incident(key) if key else None,
                )
            )
        return tracks

    def apply(self, step: Step, messages: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
        """Save one step and queue its notifications, ``(target, event, payload)``, atomically."""
        track = step.track
        state = {
            "bad_streak": track.bad_streak,
            "good_streak": track.good_streak,
            "streak_started_at": _db_time(track.streak_started_at),
            "pending": dict(track.pending),
            "open": track.open.key if track.open else None,
        }
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO incident_tracks (integration, track, state) VALUES (?, ?, ?) "
                "ON CONFLICT (integration, track) DO UPDATE SET state = excluded.state",
                [track.integration, track.track, json.dumps(state, sort_keys=True)],
            )
            if step.incident is not None:
                self._save(step.incident)
            for target, event, payload in messages:
                self._enqueue(target, step.incident, event, payload)

    def incident(self, key: str) -> Incident | None:
        rows = list(self.db.query("SELECT * FROM incidents WHERE key = ?", [key]))
        return _incident(rows[0]) if rows else None

    def open_incidents(self) -> list[Incident]:
        rows = self.db.query(
            "SELECT * FROM incidents WHERE resolved_at IS NULL ORDER BY opened_at, key"
        )
        return [_incident(row) for row in rows]

    def incidents_between(self, since: datetime, until: datetime) -> list[Incident]:
        """Incidents whose breach overlaps ``[since, until)``, open ones included."""
        rows = self.db.query(
            "SELECT * FROM incidents WHERE started_at < ? "
            "AND (recovered_at IS NULL OR recovered_at >= ?) ORDER BY started_at, key",
            [to_db_time(until), to_db_time(since)],
        )
        return [_incident(row) for row in rows]

    def recent_incidents(self, limit: int) -> list[Incident]:
        rows = self.db.query(
            "SELECT * FROM incidents ORDER BY opened_at DESC, key DESC LIMIT ?", [limit]
        )
        return [_incident(row) for row in rows]

    def _save(self, incident: Incident) -> None:
        row = {
            "key": incident.key,
            "integration": incident.integration,
            "track": incident.track,
            "cause": incident.cause,
            "attribution": incident.attribution,
            "runbook_url": incident.runbook_url,
            "started_at": _db_time(incident.started_at),
            "opened_at": _db_time(incident.opened_at),
            "recovered_at": _db_time(incident.recovered_at),
            "resolved_at": _db_time(incident.resolved_at),
            "bad": incident.bad,
            "good": incident.good,
            "causes": json.dumps(dict(incident.causes), sort_keys=True),
        }
        columns = ", ".join(row)
        updates = ", ".join(f"{column} = excluded.{column}" for column in row if column != "key")
        self.db.execute(
            f"INSERT INTO incidents ({columns}) VALUES ({', '.join('?' for _ in row)}) "
            f"ON CONFLICT (key) DO UPDATE SET {updates}",
            list(row.values()),
        )

    # -- outbox -----------------------------------------------------------------------------

    def _enqueue(
        self, target: str, incident: Incident | None, event: str, payload: Mapping[str, Any]
    ) -> None:
        assert incident is not None, "a notification is always about an incident"
        at = _db_time(incident.resolved_at or incident.opened_at)
        self.db.execute(
            "INSERT INTO outbox (target, incident, event, payload, created_at, next_attempt_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [target, incident.key, event, json.dumps(payload, sort_keys=True), at, at],
        )

    def outbox_heads(self, targets: Iterable[str]) -> list[OutboxMessage]:
        """Each target's oldest undelivered message: targets are delivered in order, so a
        resolve never overtakes the trigger it resolves."""
        heads: list[OutboxMessage] = []
        for target in targets:
            rows = list(
                self.db.query(
                    "SELECT * FROM outbox WHERE target = ? AND delivered_at IS NULL "
                    "ORDER BY id LIMIT 1",
                    [target],
                )
            )
            heads.extend(_message(row) for row in rows)
        return heads

    def outbox_delivered(self, message_id: int, at: datetime) -> None:
        with self.db.atomic():
            self.db.execute(
                "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, last_error = NULL "
                "WHERE id = ?",
                [to_db_time(at), message_id],
            )

    def outbox_failed(self, message_id: int, error: str, retry_at: datetime) -> None:
        """Count a failed attempt; ``error`` must already be redacted."""
        with self.db.atomic():
            self.db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
                "WHERE id = ?",
                [error, to_db_time(retry_at), message_id],
            )

    def outbox_has_pending(self) -> bool:
        """Whether any message is undelivered: the notifier's idle look, one index probe."""
        row = self.db.execute(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE delivered_at IS NULL)"
        ).fetchone()
        return bool(row[0])

    def outbox_pending(self) -> dict[str, int]:
        """Undelivered messages per target."""
        rows = self.db.execute(
            "SELECT target, count(*) FROM outbox WHERE delivered_at IS NULL GROUP BY target"
        ).fetchall()
        return {target: int(count) for target, count in rows}

    def outbox(self, incident: str | None = None) -> list[OutboxMessage]:
        """Every message (of one incident), oldest first: for tests, the API and audits."""
        where, params = ("WHERE incident = ?", [incident]) if incident else ("", [])
        rows = self.db.query(f"SELECT * FROM outbox {where} ORDER BY id", params)
        return [_message(row) for row in rows]


def _incident(row: Mapping[str, Any]) -> Incident:
    return Incident(
        key=row["key"],
        integration=row["integration"],
        track=row["track"],
        cause=row["cause"],
        attribution=row["attribution"],
        runbook_url=row["runbook_url"],
        started_at=from_db_time(row["started_at"]),
        opened_at=from_db_time(row["opened_at"]),
        recovered_at=_time(row["recovered_at"]),
        resolved_at=_time(row["resolved_at"]),
        bad=row["bad"],
        good=row["good"],
        causes=json.loads(row["causes"]),
    )


def _message(row: Mapping[str, Any]) -> OutboxMessage:
    return OutboxMessage(
        id=row["id"],
        target=row["target"],
        incident=row["incident"],
        event=row["event"],
        payload=json.loads(row["payload"]),
        created_at=from_db_time(row["created_at"]),
        attempts=row["attempts"],
        next_attempt_at=from_db_time(row["next_attempt_at"]),
        delivered_at=_time(row["delivered_at"]),
        last_error=row["last_error"],
    )


def _db_time(moment: datetime | None) -> str | None:
    return None if moment is None else to_db_time(moment)


def _time(text: str | None) -> datetime | None:
    return None if text is None else from_db_time(text)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")
