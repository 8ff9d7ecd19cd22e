"""Crash safety (issue #8, part 2): `syncwatch run` killed with SIGKILL, over and over.

`syncwatch run` and `syncwatch sandbox` are real processes on loopback. The daemon is started,
killed with SIGKILL and started again ``KILLS`` times; each kill aims at one phase of a probe's
life in turn (injecting, in flight, detected and waiting for its owner, mid-clean-up) and lands a
seeded random moment after the store shows that phase under way. The sandbox makes every call
slow enough to be caught in the middle, corrupts some leads so incidents open and resolve, and
delays the notification receivers so deliveries are cut off too. A last, unhurried run and a
sweep follow. Then, for every kill and at the end:

- the database passes ``PRAGMA integrity_check``;
- every probe that reached a marketing platform is in the store with a terminal outcome, found
  or given up on by a later run that resumed it; none was submitted twice;
- the sandbox holds no synthetic lead on any side;
- every incident has all its notifications queued, and each was delivered at least once.

``SYNCWATCH_CRASH_KILLS`` and ``SYNCWATCH_CRASH_SEED`` change the number of kills (default 20)
and the seed, e.g. ``SYNCWATCH_CRASH_KILLS=100 pytest tests/test_crash_safety.py``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from daemon_support import demo_raw
from process_support import background, free_port, syncwatch, wait_for

from syncwatch.config import load_config
from syncwatch.incident_store import RESOLVE, TRIGGER, IncidentStore, OutboxMessage
from syncwatch.notify import render_pagerduty, render_slack, render_webhook
from syncwatch.store import Store

pytestmark = pytest.mark.slow

KILLS = int(os.environ.get("SYNCWATCH_CRASH_KILLS", "20"))
SEED = int(os.environ.get("SYNCWATCH_CRASH_SEED", "8"))
PHASES = ("inject", "poll", "verify", "cleanup")
SECRETS = {
    "hubspot-token": "crash-hubspot-token-1f2e3d",
    "salesforce-secret": "crash-salesforce-secret-4c5b6a",
}
OWNER_NOBODY_ASSIGNS = "0055e000009ZzZzAAK"
RECEIVERS = ("webhook", "slack", "pagerduty")
TARGETS = {"webhook": "hook", "slack": "chat", "pagerduty": "pager"}
"""The config's notification target for each sandbox receiver."""
PAGERDUTY_KEY = "0123456789abcdef0123456789abcdef"
DOMAIN = "@probe.syncwatch.example"
SCENARIO = {
    "seed": 8,
    "sync": {"latency": {"median": "1s", "p95": "2s"}},
    "marketo": {"sync_latency": {"median": "1s", "p95": "2s"}},
    "faults": [
        # Every call is under way long enough for a kill to land inside it.
        {"kind": "slow", "vendor": "hubspot", "delay": "0.6s"},
        {"kind": "slow", "vendor": "marketo", "delay": "0.6s"},
        {"kind": "slow", "vendor": "salesforce", "delay": "0.3s"},
        *({"kind": "slow", "vendor": kind, "delay": "0.4s"} for kind in RECEIVERS),
        # Some leads arrive damaged: mismatches open incidents, good probes resolve them.
        {"kind": "corrupt", "field": "Title", "value": "Intern", "rate": 0.4},
    ],
}


# -- set-up ---------------------------------------------------------------------------------------


def write_templates(directory: Path) -> Path:
    """The shipped templates, plus one expecting an owner nobody assigns: its probes wait in
    `detected` for their routing window, so a kill can land while one is being verified."""
    probes = directory / "probes"
    probes.mkdir()
    shipped = Path(__file__).resolve().parent.parent / "probes"
    for template in shipped.glob("*.yaml"):
        (probes / template.name).write_text(template.read_text())
    routed = yaml.safe_load((shipped / "demo-request.yaml").read_text())
    routed.update(name="routed-request", owner=OWNER_NOBODY_ASSIGNS)
    routed["expect"] = {"Email": "{email}", "LastName": "Probe {probe_id}"}  # not the corrupted
    routed["description"] = "A demo request whose owner is checked (and never right)."
    (probes / "routed-request.yaml").write_text(yaml.safe_dump(routed))
    return probes


def write_config(
    directory: Path, origin: str, *, every: str, routing_timeout: str, name: str
) -> Path:
    """config/demo.yaml on the sandbox at ``origin``: three integrations, quick polls, a 2 s
    clean-up cadence, incidents on the first bad probe, and the sandbox's three receivers."""
    raw = demo_raw(directory, origin, SECRETS, marketo=True)
    fast = {"timeout": "1m", "poll": {"first_after": "1s", "every": "5s"}}
    hubspot, marketo = raw["integrations"]
    hubspot.update(
        templates=[
            {"template": "demo-request", "every": every, "latency_objective": "30s"},
            {"template": "content-download", "every": every, "latency_objective": "30s"},
        ],
        **fast,
    )
    marketo.update(
        templates=[
            {"template": "marketo-demo-request", "every": every, "latency_objective": "30s"}
        ],
        **fast,
    )
    routed = {
        **hubspot,
        "name": "hubspot-routing",
        "templates": [{"template": "routed-request", "every": every, "latency_objective": "30s"}],
        "routing_timeout": routing_timeout,
    }
    raw["integrations"].append(routed)
    raw["probe_templates"] = str(directory / "probes")
    raw["listen"] = f"127.0.0.1:{free_port()}"
    raw["cleanup"] = {"flush_every": "2s"}
    raw["incidents"] = {"confirm": 1, "recover": 1}
    for secret, value in {
        "webhook-url": f"{origin}/webhook/crash",
        "slack-url": f"{origin}/slack/services/T0CRASH00/B0CRASH00/crash",
        "pagerduty-key": PAGERDUTY_KEY,
    }.items():
        (directory / secret).write_text(value)
    raw["notifications"] = [
        {
            "name": TARGETS["webhook"],
            "kind": "webhook",
            "url": {"file": str(directory / "webhook-url")},
        },
        {
            "name": TARGETS["slack"],
            "kind": "slack",
            "webhook_url": {"file": str(directory / "slack-url")},
        },
        {
            "name": TARGETS["pagerduty"],
            "kind": "pagerduty",
            "routing_key": {"file": str(directory / "pagerduty-key")},
            "events_url": f"{origin}/pagerduty/v2/enqueue",
        },
    ]
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# -- looking on -----------------------------------------------------------------------------------


def read_only(database: Path) -> sqlite3.Connection:
    """The store as a bystander sees it: no write, no checkpoint, no recovery done for the
    daemon that starts next."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
    connection.row_factory = sqlite3.Row
    return connection


Phases = dict[str, set[str]]
"""Probe ids by the phase of their life the store shows them in."""


def phases_in_store(database: Path, origin: str) -> Phases:
    """Every unfinished probe by phase. `cleanup` means mid-flush: a concluded probe whose lead
    is already gone at some vendor while the store has not yet recorded its end."""
    with read_only(database) as db:
        rows = db.execute(
            "SELECT probe_id, email, state, outcome FROM probes WHERE finished_at IS NULL"
        ).fetchall()
    db.close()
    by_state = {"injecting": "inject", "in_flight": "poll", "detected": "verify"}
    phases: Phases = {phase: set() for phase in PHASES}
    for row in rows:
        if row["outcome"] is None and row["state"] in by_state:
            phases[by_state[row["state"]]].add(row["probe_id"])
    waiting = {row["email"].lower(): row["probe_id"] for row in rows if row["outcome"]}
    if waiting:
        gone = deleted_leads(origin)
        phases["cleanup"] = {probe_id for email, probe_id in waiting.items() if email in gone}
    return phases


def under_way(now: Phases, left: Phases) -> set[str]:
    """The phases this run has under way. A killed run leaves injections and flushes that stay
    so in the store until a later run settles them (``left``, as the run started): only one
    this run began counts. A probe left in flight or detected is polled or verified again by
    this run, so those count whoever began them."""
    fresh = {"inject", "cleanup"}
    return {phase for phase, ids in now.items() if ids - left[phase] if phase in fresh} | {
        phase for phase, ids in now.items() if ids and phase not in fresh
    }


def deleted_leads(origin: str) -> set[str]:
    records = httpx.get(f"{origin}/_sandbox/records", params={"synthetic": "true"}, timeout=5)
    body = records.json()
    gone = {r["email"].lower() for r in body["hubspot"] if r["archived_at"]}
    return gone | {r["email"].lower() for r in body.get("salesforce_deleted", [])}


def query(database: Path, sql: str) -> tuple[Any, ...]:
    """The one row ``sql`` answers, read as a bystander."""
    with read_only(database) as db:
        row = tuple(db.execute(sql).fetchone())
    db.close()
    return row


def integrity(database: Path) -> str:
    return str(query(database, "PRAGMA integrity_check")[0])


def wait_until(what: str, check: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"no {what} within {within:g}s")


def healthy(web: str) -> bool:
    return httpx.get(f"{web}/healthz", timeout=5).status_code == 200


def sandbox_get(origin: str, what: str) -> Any:
    return httpx.get(f"{origin}/_sandbox/{what}", timeout=5).json()


# -- the runs -------------------------------------------------------------------------------------


@dataclass
class Rig:
    directory: Path
    origin: str
    config: Path
    database: Path
    web: str

    @classmethod
    def make(cls, directory: Path) -> Rig:
        origin = f"http://127.0.0.1:{free_port()}"
        write_templates(directory)
        # A routing window outliving a run: a restarted daemon verifies the probes it left.
        config = write_config(directory, origin, every="10s", routing_timeout="20s", name="run")
        loaded = load_config(config)
        return cls(directory, origin, config, Path(loaded.database), f"http://{loaded.listen}")

    def phases(self) -> Phases:
        return phases_in_store(self.database, self.origin)


def kill_repeatedly(rig: Rig, rng: random.Random) -> list[set[str]]:
    """Start, wait for the aimed phase, wait a random moment more, SIGKILL; KILLS times. Returns
    the phases under way at each kill; checks the database after each."""
    # Injections first: a probe killed before its submission left is looked for until its
    # timeout (1 min) before it is given up on, and the kills after cover that wait.
    aims = sorted((PHASES[kill % len(PHASES)] for kill in range(KILLS)), key=PHASES.index)
    landed: list[set[str]] = []
    for kill, aim in enumerate(aims):
        began = time.monotonic()
        left = rig.phases() if kill else {phase: set() for phase in PHASES}
        with background(f"run-{kill}", rig.directory, "run", "--config", str(rig.config)) as run:
            wait_for("/healthz", lambda: healthy(rig.web), run, within=15)
            wait_until(
                f"{aim} under way (kill {kill})",
                lambda aim=aim, left=left: aim in under_way(rig.phases(), left),
                within=30,
            )
            time.sleep(rng.uniform(0.0, 0.3))
            run.process.send_signal(signal.SIGKILL)
            assert run.process.wait(timeout=10) == -signal.SIGKILL
            assert "Traceback" not in run.output()[1]
        landed.append(under_way(rig.phases(), left))
        print(f"kill {kill} aimed at {aim}: {sorted(landed[-1])}, {time.monotonic() - began:.1f}s")
        assert integrity(rig.database) == "ok", f"after kill {kill}"
    return landed


def last_run_and_sweep(rig: Rig) -> None:
    """Faults cleared, each schedule launching once: run until every probe has finished and
    every notification is delivered, stop as an operator would, and sweep."""
    httpx.delete(f"{rig.origin}/_sandbox/faults", timeout=5)
    final = write_config(rig.directory, rig.origin, every="1d", routing_timeout="3s", name="last")
    (before,) = query(rig.database, "SELECT count(*) FROM probes")

    def settled() -> bool:
        (count, unfinished) = query(
            rig.database, "SELECT count(*), count(*) FILTER (WHERE finished_at IS NULL) FROM probes"
        )
        (undelivered,) = query(
            rig.database, "SELECT count(*) FROM outbox WHERE delivered_at IS NULL"
        )
        return count >= before + 4 and unfinished == 0 and undelivered == 0

    with background("last", rig.directory, "run", "--config", str(final)) as run:
        began = time.monotonic()
        wait_until("every probe finished and every notification delivered", settled, 120)
        print(f"the last run settled in {time.monotonic() - began:.1f}s")
        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(timeout=20) == 0
        assert "Traceback" not in run.output()[1]
    swept = syncwatch("sweep", "--config", str(final))
    assert swept.returncode == 0, swept.stderr


# -- the test -------------------------------------------------------------------------------------


def test_sigkill_at_random_moments_loses_nothing_and_leaves_nothing(tmp_path: Path) -> None:
    rig = Rig.make(tmp_path)
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO))
    listen = rig.origin.removeprefix("http://")
    serve = ["sandbox", "--listen", listen, "--scenario", str(scenario)]
    with background("sandbox", tmp_path, *serve) as sandbox:
        wait_for("the sandbox", lambda: sandbox_get(rig.origin, "state") is not None, sandbox, 15)
        landed = kill_repeatedly(rig, random.Random(SEED))
        last_run_and_sweep(rig)
        submissions: dict[str, int] = sandbox_get(rig.origin, "submissions")["submissions"]
        state = sandbox_get(rig.origin, "state")
        received = sandbox_get(rig.origin, "notifications")["notifications"]

    hits = Counter(phase for phases in landed for phase in phases)
    assert all(hits[phase] >= KILLS // len(PHASES) for phase in PHASES), hits
    assert integrity(rig.database) == "ok"
    store = Store.open(rig.database)
    try:
        probes = {row["email"].lower(): row for row in store.db.query("SELECT * FROM probes")}
        messages = IncidentStore(store).outbox()
        incidents = list(store.db.query("SELECT key, resolved_at FROM incidents"))
    finally:
        store.close()

    # Every probe that reached a marketing platform: submitted once, ended, and cleaned.
    synthetic = {email: n for email, n in submissions.items() if email.endswith(DOMAIN)}
    assert len(synthetic) >= len(PHASES)
    assert {email: n for email, n in synthetic.items() if n != 1} == {}
    assert set(synthetic) <= set(probes), "a probe reached the MAP but not the store"
    for email in synthetic:
        row = probes[email]
        assert row["outcome"] is not None and row["finished_at"] is not None, row
        assert row["state"] != "scheduled", "a probe that was never injected reached the MAP"
    never_sent = {e for e, row in probes.items() if e not in synthetic}
    assert all(probes[e]["outcome"] == "skipped" for e in never_sent)
    sides = ("hubspot", "marketo", "salesforce")
    assert {side: state[side]["synthetic"] for side in sides} == dict.fromkeys(sides, 0)

    # Every incident's notifications queued, delivered, and received at least once.
    assert incidents, "the corrupt fault should have opened incidents"
    queued = Counter((m.incident, m.event) for m in messages)
    for incident in incidents:
        assert queued[(incident["key"], TRIGGER)] == len(RECEIVERS)
        assert queued[(incident["key"], RESOLVE)] == (
            len(RECEIVERS) if incident["resolved_at"] else 0
        )
    assert all(m.delivered_at is not None for m in messages)
    bodies = {(TARGETS[item["kind"]], canonical(item["body"])) for item in received}
    for message in messages:
        assert (message.target, canonical(rendered(message))) in bodies, (
            f"{message.target} never received the {message.event} of {message.incident}"
        )


def rendered(message: OutboxMessage) -> dict[str, Any]:
    """The body its receiver must have recorded."""
    if message.target == "pager":
        return render_pagerduty(message, PAGERDUTY_KEY)
    return (render_webhook if message.target == "hook" else render_slack)(message)


def canonical(body: Any) -> str:
    return json.dumps(body, sort_keys=True)
