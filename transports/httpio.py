"""What every HTTP endpoint outside a transport shares: reading a bounded request body, the
strict-JSON body of an admin request, and the documented answer to a refused request.

These sit below :mod:`transports.server` so that the endpoints the server mounts (operations,
engine, channels, demos, fault lab) can use them without importing the server back.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import JSONResponse

from transports import strictjson
from transports.auth import Principal
from transports.config import ServerConfig
from transports.errors import TransportError

# The server's logger: these lines were always logged as the server's.
log = logging.getLogger("transports.server")


class AdminGate(Protocol):
    """What :func:`admin_json` needs of the server context."""

    @property
    def config(self) -> ServerConfig: ...

    async def require_admin(self, conn: HTTPConnection) -> Principal: ...


def error_response(error: TransportError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.kind.status)


def refused(conn: HTTPConnection, error: TransportError) -> JSONResponse:
    """One log line and the documented answer, for a refused request outside a transport."""
    client = f"{conn.client.host}:{conn.client.port}" if conn.client else "?"
    log.warning("%s %s rejected %s: %s", conn.url.path, client, error.reason, error.detail)
    return error_response(error)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused as ``too_large`` as soon as it passes ``limit`` bytes (not
    buffered whole first). A client that aborts its body is ``bad_message`` (one log line,
    no ``ClientDisconnect`` traceback; nobody is left to read the answer)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TransportError("too_large", f"{declared} bytes > {limit}")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TransportError("too_large", f"more than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise TransportError("bad_message", "the client aborted the request body") from None
    return b"".join(chunks)


async def admin_json(ctx: AdminGate, request: Request) -> Any:
    """The strict-JSON body of a write/admin request, after ``ctx.require_admin``.

    Only ``application/json`` is accepted: a cross-site page can send ``text/plain`` or a
    form without a CORS preflight (Fetch standard §4.1, "CORS-safelisted request-header"),
    never JSON. An empty body is ``None``.
    """
    await ctx.require_admin(request)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise TransportError("bad_media_type", f"Content-Type {media[:60]!r}")
    body = await read_body(request, ctx.config.max_frame_bytes)
    return strictjson.loads(body) if body.strip() else None
