"""``GET /healthz`` (the process answers) and ``GET /readyz`` (it can serve the feed).

``/readyz`` checks, each reported under ``checks`` with ``ok`` and details:

- ``feed``: accepting subscriptions (not draining for shutdown);
- ``history``: the store answers a read of its newest message (SQLite runs a query);
- ``engine`` (with ``--engine``): the Redis fan-out subscription is live and Redis answers
  a PING within 1 s (``docs/scale.md``);
- ``broker`` (when MQTT is served): the bridge holds a connection to the broker *and* a
  fresh TCP connection to the broker's listener succeeds within ``PROBE_TIMEOUT``.

Ready is ``200 {"status": "ready", ...}``; not ready is ``503 {"status": "not_ready",
"error": "not_ready", "failed": [...], ...}``. Both endpoints are anonymous (orchestrators
probe without credentials) and reveal nothing beyond up/down and the epoch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from transports.engine.routes import engine_check

if TYPE_CHECKING:
    from transports.ops.context import OpsContext

PROBE_TIMEOUT = 1.0
STARTED = time.time()


def health_endpoints(ctx: Callable[[], OpsContext]) -> tuple[Any, Any]:
    async def healthz(request: Request) -> Response:
        c = ctx()
        return JSONResponse(
            {"status": "ok", "epoch": c.feed.epoch, "uptime_s": round(time.time() - STARTED, 1)}
        )

    async def readyz(request: Request) -> Response:
        checks = await readiness(ctx())
        failed = [name for name, check in checks.items() if not check["ok"]]
        body: dict[str, Any] = {"status": "not_ready" if failed else "ready", "checks": checks}
        if failed:
            body.update(error="not_ready", failed=failed)
        return JSONResponse(body, status_code=503 if failed else 200)

    return healthz, readyz


async def readiness(ctx: OpsContext) -> dict[str, dict[str, Any]]:
    feed = ctx.feed
    checks: dict[str, dict[str, Any]] = {
        "feed": {"ok": not feed.draining, "epoch": feed.epoch, "last_seq": feed.last_seq}
    }
    history: dict[str, Any] = {"ok": True, "kind": type(feed.history).__name__}
    try:
        feed.history.since(max(0, feed.last_seq - 1), 1)
    except Exception as exc:  # any failure of the store means not ready
        history.update(ok=False, error=f"{type(exc).__name__}: {exc}"[:200])
    checks["history"] = history
    mqtt = ctx.transports.get("mqtt")
    if mqtt is not None:
        checks["broker"] = await _broker(mqtt)
    engine = await engine_check(ctx)
    if engine is not None:  # serve --engine redis://...: Redis answers, fan-out subscribed
        checks["engine"] = engine
    return checks


async def _broker(transport: Any) -> dict[str, Any]:
    broker, bridge = getattr(transport, "broker", None), getattr(transport, "bridge", None)
    if broker is None:
        return {"ok": False, "error": "no broker"}
    result: dict[str, Any] = {
        "url": broker.url,
        "bridge_connected": bool(bridge and bridge.connected),
    }
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            _, writer = await asyncio.open_connection(broker.host, broker.port)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        result["reachable"] = True
    except (OSError, TimeoutError) as exc:
        result.update(reachable=False, error=type(exc).__name__)
    result["ok"] = result["reachable"] and result["bridge_connected"]
    return result
