"""HubSpot emulation: forms v3 submissions (api.hsforms.com) and CRM v3 contacts (api.hubapi.com).

Placeholder: routes are filled in by the HubSpot emulation work.
"""

from __future__ import annotations

from starlette.routing import Route

from syncwatch.sandbox.sync import SyncEngine
from syncwatch.sandbox.world import World


def crm_routes(world: World, sync: SyncEngine) -> list[Route]:
    return []


def forms_routes(world: World, sync: SyncEngine) -> list[Route]:
    return []
