"""HTTP endpoints served when an engine is configured, and the engine's readiness check.

- ``GET /readyz`` (``transports/ops/health.py``) adds the check ``engine`` from
  :func:`engine_check`: the fan-out subscription is live and Redis answers a PING within
  1 s. A load balancer uses it to take a node out while it cannot reach Redis
  (``docs/scale.md``).
- ``GET /api/engine`` (admin token) → the engine's URL without password, node id and
  counters (messages applied from fan-out, filled from the stream, epoch resets, fan-out
  reconnects, seqs skipped because the stream was trimmed past them).

"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from transports.errors import TransportError
from transports.httpio import refused

if TYPE_CHECKING:
    from transports.ops.context import OpsContext


async def engine_check(ctx: OpsContext) -> dict[str, Any] | None:
    """The engine's readiness (``{"ok": bool, ...}``), or None without an engine."""
    engine = ctx.hub.engine
    return None if engine is None else await engine.readiness()


def engine_routes(ctx: Callable[[], OpsContext]) -> list[BaseRoute]:
    async def info(request: Request) -> Response:
        c = ctx()
        try:
            await c.require_admin(request)
        except TransportError as error:
            return refused(request, error)
        engine = c.hub.engine
        if engine is None:
            return JSONResponse({"engine": None})
        return JSONResponse(
            {
                "engine": type(engine).__name__,
                "url": getattr(engine, "public_url", ""),
                "node": getattr(engine, "node", ""),
                "stats": getattr(engine, "stats", {}),
            }
        )

    return [Route("/api/engine", info)]
