"""Fault behaviour every emulated vendor shares: slow responses and garbage bodies.

Vendor modules decide the order of checks and render their own error bodies; what a broken
proxy or a cut connection looks like is the same whoever is behind it.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import HTMLResponse, Response

from syncwatch.sandbox.world import World

_HTML_ERROR_PAGE = """<!DOCTYPE html>
<html><head><title>502 Bad Gateway</title></head>
<body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>
"""


async def delay_if_slow(world: World, vendor: str) -> None:
    """Hold the response for the fault's ``delay`` on the sandbox clock."""
    fault = world.faults.fire("slow", vendor, world.clock.now())
    if fault is not None:
        await world.clock.sleep(fault.spec.delay)


def malformed_in_force(world: World, vendor: str) -> bool:
    """Whether a ``malformed`` fault could fire for ``vendor`` now (no dice rolled).

    A gate that garbles an already rendered answer needs its payload decoded only then: every
    other answer goes out as rendered, without decoding JSON the sandbox has just encoded.
    """
    return bool(world.faults.active("malformed", vendor, world.clock.now()))


def garbage_if_malformed(world: World, vendor: str, payload: Any) -> Response | None:
    """A 200 whose body is not the documented shape: an HTML error page or truncated JSON."""
    fault = world.faults.fire("malformed", vendor, world.clock.now())
    if fault is None:
        return None
    if fault.spec.body == "html":
        return HTMLResponse(_HTML_ERROR_PAGE, status_code=200)
    text = json.dumps(payload)
    return Response(text[: max(1, len(text) // 2)], media_type="application/json")
