"""The admin view: ``/admin`` (a page of its own) backed by ``/api/admin/*``, and the gate
every operations endpoint that needs the admin role goes through (:func:`require_admin`).

Endpoints (all need ``Authorization: Bearer <admin token>``; POST bodies must be
``application/json``, so a cross-site form cannot post them — Fetch standard §4.1's
"simple requests" carry only form/text content types):

- ``GET /api/admin/connections`` → per-transport counts, the open connections (newest
  ``MAX_LISTED``) and the newest disconnects with their reasons;
- ``POST /api/admin/disconnect`` ``{"conn": "<id>"}`` → closes that connection's stream with
  reason ``admin_disconnect`` (retryable: the client reconnects and resumes from its cursor).
  Streams only (WebSocket, SSE, WebRTC): a long poll is one request, and MQTT clients are
  the broker's (``400 bad_param``).
- ``GET /metrics`` (see :mod:`.metrics`), unless it is served on ``--metrics-port``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from transports.errors import TransportError
from transports.httpio import admin_json
from transports.ops.health import health_endpoints
from transports.ops.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from transports.ops.context import OpsContext

STATIC = Path(__file__).parent.parent / "web" / "static"
MAX_LISTED = 500


def admin_token(ctx: OpsContext) -> str:
    """The bearer token that grants the admin role."""
    return ctx.admin_token


async def require_admin(ctx: OpsContext, conn: HTTPConnection) -> None:
    """The one admin check of the operations endpoints (``unauthorized``/``forbidden``)."""
    await ctx.require_admin(conn)


def _error(ctx: OpsContext, request: Request, error: TransportError) -> Response:
    ctx.reject("admin", request, error)
    return JSONResponse(error.body(), status_code=error.kind.status)


def ops_routes(ctx: Callable[[], OpsContext], metrics_here: bool = True) -> list[BaseRoute]:
    """Health, admin and (unless on its own port) metrics routes."""

    async def connections(request: Request) -> Response:
        c = ctx()
        try:
            await require_admin(c, request)
        except TransportError as error:
            return _error(c, request, error)
        now = time.time()
        conns = sorted(c.ops.connections.values(), key=lambda x: x.admitted_at, reverse=True)
        return JSONResponse(
            {
                "epoch": c.feed.epoch,
                "last_seq": c.feed.last_seq,
                "transports": {
                    name: {
                        "open": s.active,
                        "accepted": s.accepted,
                        "rejected": s.rejected,
                        "closed": dict(s.closed),
                    }
                    for name, s in c.stats.items()
                },
                "connections": [x.view(now) for x in conns[:MAX_LISTED]],
                "disconnects": list(c.ops.disconnects)[:50],
            }
        )

    async def disconnect(request: Request) -> Response:
        c = ctx()
        try:
            obj = await admin_json(c, request)
            if not isinstance(obj, dict) or not isinstance(conn_id := obj.get("conn"), str):
                raise TransportError("bad_param", 'body must be {"conn": "<connection id>"}')
            conn = c.ops.disconnect(conn_id)
        except TransportError as error:
            return _error(c, request, error)
        return JSONResponse({"disconnected": conn.view(time.time())})

    async def metrics(request: Request) -> Response:
        c = ctx()
        try:
            await require_admin(c, request)
        except TransportError as error:
            return _error(c, request, error)
        return Response(c.ops.metrics.exposition(), media_type=CONTENT_TYPE)

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "admin.html", headers={"Cache-Control": "no-store"})

    async def script(request: Request) -> Response:
        return FileResponse(STATIC / "admin.js", headers={"Cache-Control": "no-store"})

    healthz, readyz = health_endpoints(ctx)
    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/admin", page),
        Route("/admin.js", script),
        Route("/api/admin/connections", connections),
        Route("/api/admin/disconnect", disconnect, methods=["POST"]),
    ]
    if metrics_here:
        routes.append(Route("/metrics", metrics))
    return routes
