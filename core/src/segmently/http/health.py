"""Liveness and database reachability."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar import Request, Response, get

from segmently import __version__


class Health(msgspec.Struct, kw_only=True):
    """What ``GET /health`` reports."""

    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
    version: str


@get("/health", operation_id="health", tags=["meta"], opt={"exclude_from_metrics": True, "access": "public"})
async def health(request: Request[Any, Any, Any]) -> Response[Health]:
    """Whether the server is up and its database answers (503 if it does not)."""
    ok = await request.app.state.kernel.db.ping()
    body = Health(
        status="ok" if ok else "degraded", database="ok" if ok else "unreachable", version=__version__
    )
    return Response(body, status_code=200 if ok else 503)
