"""``/_sandbox``: introspection and live faults, for tests, the demo and benchmarks.

Not a vendor API: these routes exist so a test can prove that nothing synthetic was left behind
and that measured latency matches the true creation time.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syncwatch.sandbox.json_response import JSONResponse
from syncwatch.sandbox.notifications import inbox_for
from syncwatch.sandbox.scenario import FaultSpec
from syncwatch.sandbox.sync import SyncEngine
from syncwatch.sandbox.world import CrmRecord, DataverseRecord, World
from syncwatch.yamlfile import describe_errors


def routes(world: World, sync: SyncEngine) -> list[Route]:
    async def state(request: Request) -> Response:
        return JSONResponse(describe_state(world, sync))

    async def records(request: Request) -> Response:
        only_synthetic = request.query_params.get("synthetic") in ("1", "true")
        return JSONResponse(describe_records(world, sync, only_synthetic))

    async def submissions(request: Request) -> Response:
        """How many times each email was submitted to a marketing platform, ever."""
        return JSONResponse({"submissions": dict(world.submissions)})

    async def received_notifications(request: Request) -> Response:
        return JSONResponse({"notifications": inbox_for(world).received})

    async def list_faults(request: Request) -> Response:
        return JSONResponse({"faults": [fault.as_json() for fault in world.faults.all()]})

    async def add_fault(request: Request) -> Response:
        try:
            payload: Any = await request.json()
        except ValueError:
            return JSONResponse({"errors": ["body: not valid JSON"]}, status_code=400)
        try:
            spec = FaultSpec.model_validate(payload)
        except ValidationError as exc:
            errors = describe_errors("body", exc.errors())
            return JSONResponse({"errors": errors}, status_code=422)
        fault = world.faults.schedule(spec, world.clock.now())
        return JSONResponse(fault.as_json(), status_code=201)

    async def clear_faults(request: Request) -> Response:
        fault_id = request.path_params.get("fault_id")
        removed = world.faults.clear(int(fault_id) if fault_id is not None else None)
        if fault_id is not None and not removed:
            return JSONResponse({"errors": [f"no fault with id {fault_id}"]}, status_code=404)
        return JSONResponse({"removed": removed})

    return [
        Route("/state", state, methods=["GET"]),
        Route("/records", records, methods=["GET"]),
        Route("/submissions", submissions, methods=["GET"]),
        Route("/notifications", received_notifications, methods=["GET"]),
        Route("/faults", list_faults, methods=["GET"]),
        Route("/faults", add_fault, methods=["POST"]),
        Route("/faults", clear_faults, methods=["DELETE"]),
        Route("/faults/{fault_id:int}", clear_faults, methods=["DELETE"]),
    ]


def describe_state(world: World, sync: SyncEngine) -> dict[str, Any]:
    """Record counts per side, synthetic and other, the connector's queue, and the incident
    notifications each receiver accepted and rejected."""
    live_contacts = [c for c in world.contacts.values() if c.archived_at is None]
    return {
        "now": world.clock.now().isoformat(),
        "probe_domain": world.scenario.probe_domain,
        "hubspot": {
            "records": len(live_contacts),
            "synthetic": sum(world.is_synthetic(c.email) for c in live_contacts),
            "archived": len(world.contacts) - len(live_contacts),
        },
        "marketo": {
            "records": len(world.marketo_leads),
            "synthetic": sum(world.is_synthetic(m.email) for m in world.marketo_leads.values()),
        },
        "pardot": _pardot_state(world),
        "eloqua": {
            "records": len(world.eloqua_contacts),
            "synthetic": sum(world.is_synthetic(c.email) for c in world.eloqua_contacts.values()),
        },
        "salesforce": {
            "records": len(world.crm),
            "synthetic": sum(world.is_synthetic(r.email) for r in world.crm.values()),
        },
        "dynamics": {
            "records": len(world.dataverse),
            "synthetic": sum(world.is_synthetic(r.email) for r in world.dataverse.values()),
        },
        "sync": {
            "pending": sync.pending(),
            "delivered": sync.delivered,
            "dropped": sync.dropped,
            "rejected": len(sync.errors),
        },
        "notifications": inbox_for(world).counts(),
        "faults": [fault.as_json() for fault in world.faults.all()],
    }


def _pardot_state(world: World) -> dict[str, int]:
    """Live prospects (all and synthetic) and those in the recycle bin."""
    live = [p for p in world.pardot_prospects.values() if p.deleted_at is None]
    return {
        "records": len(live),
        "synthetic": sum(world.is_synthetic(p.email) for p in live),
        "recycled": len(world.pardot_prospects) - len(live),
    }


def dataverse_record(r: DataverseRecord) -> dict[str, Any]:
    """A Dynamics row with its true creation instant (the API shows whole seconds)."""
    return {
        "id": r.id,
        "entity": r.entity,
        "email": r.email,
        "created_at": r.created_at.isoformat(),
        "origin": r.origin,
    }


def describe_records(world: World, sync: SyncEngine, only_synthetic: bool) -> dict[str, Any]:
    """Every record with its true creation instant, for accuracy checks against the vendor's."""

    def wanted(email: str) -> bool:
        return not only_synthetic or world.is_synthetic(email)

    def crm_record(r: CrmRecord) -> dict[str, Any]:
        return {
            "id": r.id,
            "sobject": r.sobject,
            "email": r.email,
            "created_at": r.created_at.isoformat(),
            "origin_contact_id": r.origin_contact_id,
        }

    return {
        "hubspot": [
            {
                "id": c.id,
                "email": c.email,
                "origin": c.origin,
                "created_at": c.created_at.isoformat(),
                "archived_at": c.archived_at.isoformat() if c.archived_at else None,
            }
            for c in world.contacts.values()
            if wanted(c.email)
        ],
        "marketo": [
            {
                "id": m.id,
                "email": m.email,
                "origin": m.origin,
                "created_at": m.created_at.isoformat(),
            }
            for m in world.marketo_leads.values()
            if wanted(m.email)
        ],
        "pardot": [
            {
                "id": p.id,
                "email": p.email,
                "origin": p.origin,
                "created_at": p.created_at.isoformat(),
                "deleted_at": p.deleted_at.isoformat() if p.deleted_at else None,
            }
            for p in world.pardot_prospects.values()
            if wanted(p.email)
        ],
        "eloqua": [
            {"id": e.id, "email": e.email, "created_at": e.created_at.isoformat()}
            for e in world.eloqua_contacts.values()
            if wanted(e.email)
        ],
        "salesforce": [crm_record(r) for r in world.crm.values() if wanted(r.email)],
        "salesforce_deleted": [
            crm_record(r) for r in world.deleted_crm.values() if wanted(r.email)
        ],
        "dynamics": [dataverse_record(r) for r in world.dataverse.values() if wanted(r.email)],
        "dynamics_deleted": [
            dataverse_record(r) for r in world.deleted_dataverse.values() if wanted(r.email)
        ],
        "sync_errors": list(sync.errors),
    }
