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

import hmac
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from transports.errors import TransportError
from transports.ops.health import health_endpoints
from transports.ops.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from transports.server import ServerContext

STATIC = Path(__file__).parent.parent / "web" / "static"
MAX_LISTED = 500
MAX_BODY = 4096


def admin_token(ctx: ServerContext) -> str:
    """The token the admin role is granted for (the server's, else one made for this run)."""
    token = getattr(ctx, "admin_token", None) or getattr(ctx.config, "admin_token", None)
    if token:
        return str(token)
    if ctx.ops.admin_token is None:
        ctx.ops.admin_token = secrets.token_urlsafe(24)
    return ctx.ops.admin_token


async def require_admin(ctx: ServerContext, conn: HTTPConnection) -> None:
    """Raise ``unauthorized`` (no bearer token) or ``forbidden`` (wrong token).

    The one admin check of the operations endpoints: the server-wide
    ``ServerContext.require_admin`` takes over here when the server has one.
    """
    check = getattr(ctx, "require_admin", None)
    if check is not None:
        await check(conn)
        return
    scheme, _, value = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value:
        raise TransportError("unauthorized", "admin endpoints need Authorization: Bearer <token>")
    if not hmac.compare_digest(value.strip().encode(), admin_token(ctx).encode()):
        raise TransportError("forbidden", "not the admin token")


async def _json_body(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise TransportError("bad_param", "Content-Type must be application/json")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise TransportError("too_large", f"{len(body)} bytes > {MAX_BODY}")
    try:
        obj = json.loads(body)
    except ValueError:
        raise TransportError("bad_param", "body is not JSON") from None
    if not isinstance(obj, dict):
        raise TransportError("bad_param", "body must be a JSON object")
    return obj


def _error(ctx: ServerContext, request: Request, error: TransportError) -> Response:
    ctx.reject("admin", request, error)
    return JSONResponse(error.body(), status_code=error.kind.status)


def ops_routes(ctx: Callable[[], ServerContext], metrics_here: bool = True) -> list[BaseRoute]:
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
            await require_admin(c, request)
            obj = await _json_body(request)
            conn_id = obj.get("conn")
            if not isinstance(conn_id, str):
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
