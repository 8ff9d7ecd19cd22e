"""Salesforce emulation: OAuth token endpoint and the REST API pieces syncwatch uses.

Placeholder: routes are filled in by the Salesforce emulation work.
"""

from __future__ import annotations

from starlette.routing import Route

from syncwatch.sandbox.world import World


def routes(world: World) -> list[Route]:
    return []
