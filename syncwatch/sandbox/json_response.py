"""The sandbox's JSON answers, rendered by orjson.

Every emulated vendor call ends in a ``JSONResponse``; Starlette's renders with ``json.dumps``,
a few per cent of a simulated probe's cost, and orjson writes the same compact UTF-8 JSON
several times faster. What orjson would render where the standard library refuses (a
``datetime``, a dataclass, a ``str`` or ``int`` subclass, an integer past 64 bits, a key that
is not a string) is handed to Starlette's rendering instead, so those still render, or fail,
as they did. (orjson writes ``NaN`` as ``null`` where Starlette refuses it; no sandbox answer
carries one.)
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse as StarletteJSONResponse

_AS_STARLETTE_DOES = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


class JSONResponse(StarletteJSONResponse):
    """Starlette's ``JSONResponse``, rendered by orjson where that gives the same JSON."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, option=_AS_STARLETTE_DOES)
        except TypeError:  # orjson.JSONEncodeError: a type it passes through, or refuses
            return super().render(content)
