"""HTTP endpoints of the channels: publish for clients without a socket, and channel state.

- ``POST /api/channels/{channel}/messages`` with ``Content-Type: application/json`` and the
  body ``{"data": …, "id": "client message id"}`` (``id`` optional, 1-64 characters) →
  ``200`` and the ack ``{"type":"ack","channel","epoch","seq","id"}``, or the documented error
  (``bad_channel``, ``bad_message``, ``too_large``, ``unauthorized``, ``forbidden``,
  ``too_many_channels``; ``bad_media_type`` for another Content-Type). This is how SSE and
  long-polling clients publish; a JSON-only body means a cross-site HTML form cannot post
  here without a CORS preflight.
- ``GET /api/channels/{channel}`` → ``{"channel","epoch","last_seq","first_seq",
  "subscribers","presence", "members": [{"client","user"}]}`` (members only where the
  namespace has presence on and the caller holds the ``presence`` right, see rights.py). A
  channel that does not exist yet is not created by a GET.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from transports import rights
from transports.auth import Principal
from transports.channels import parse_channel
from transports.errors import TransportError
from transports.hub import Hub
from transports.strictjson import loads as strict_loads


class Context(Protocol):
    """What these routes use of ``server.ServerContext`` (a protocol: that module mounts
    these routes, so this one does not import it)."""

    @property
    def config(self) -> Any: ...
    @property
    def hub(self) -> Hub: ...
    async def admit(self, transport: str, conn: Any) -> Principal: ...


ReadBody = Callable[[Request, int], Awaitable[bytes]]

log = logging.getLogger("transports.channels")


def _error(error: TransportError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.kind.status)


def channel_routes(ctx: Callable[[], Context], read_body: ReadBody) -> list[BaseRoute]:
    """The routes; ``read_body(request, limit)`` reads a bounded body (``too_large``)."""

    async def publish(request: Request) -> Response:
        c = ctx()
        client = f"{request.client.host}:{request.client.port}" if request.client else "?"
        try:
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/json":
                raise TransportError("bad_media_type", f"Content-Type {kind[:60]!r}")
            obj = strict_loads(await read_body(request, c.config.max_frame_bytes))
            if not isinstance(obj, dict) or "data" not in obj or set(obj) - {"data", "id"}:
                raise TransportError("bad_message", 'body must be {"data": ..., "id": ...}')
            principal = await c.admit("http", request)
            ack = await c.hub.publish(
                principal, request.path_params["channel"], obj["data"], obj.get("id")
            )
        except TransportError as error:
            log.warning("publish from %s refused %s: %s", client, error.reason, error.detail)
            return _error(error)
        return JSONResponse(ack)

    async def describe(request: Request) -> Response:
        try:
            name, _ = parse_channel(request.path_params["channel"])
            principal = await ctx().admit("http", request)
        except TransportError as error:
            return _error(error)
        channel = ctx().hub.find(name)
        if channel is None:
            return JSONResponse({"channel": name, "exists": False, "subscribers": 0})
        out = {**channel.describe(), "exists": True}
        # Who is here is the ``presence`` right's to see (rights.py), not every subscriber's.
        if not rights.allowed(principal, "presence", name, channel.options):
            out.pop("members", None)
        return JSONResponse(out)

    return [
        Route("/api/channels/{channel}/messages", publish, methods=["POST"]),
        Route("/api/channels/{channel}", describe),
    ]
