"""The full demo application: the feed server plus the browser dashboard at ``/``.

When the dashboard connects through the fault lab's proxies, each proxy is on its own port,
so to the browser it is another origin (RFC 6454 §4: scheme, host and port). WebSocket
upgrades carry no CORS, the server checks their ``Origin`` against
``ServerConfig.allowed_origins`` (``serve --allow-origin``); ``fetch`` (long polling, WebRTC
signalling) and ``EventSource`` are CORS requests, so the same list is given to Starlette's
``CORSMiddleware`` (Fetch standard §3.2), which also answers the preflight of the JSON POST.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from transports.auth import Authenticator, allow_anonymous
from transports.config import ServerConfig
from transports.server import create_app
from transports.web import dashboard_routes


async def fault_lab_off(request: Request) -> Response:
    """``GET /api/faults`` of a server without the fault lab (``serve --faults`` mounts the
    real one in front of this): the page asks once at start and should not log a 404."""
    return JSONResponse({"enabled": False, "transports": {}})


def build_app(
    transports: Sequence[str], config: ServerConfig, auth: Authenticator = allow_anonymous
) -> Starlette:
    """The feed over ``transports`` plus the dashboard, with CORS for the allowed origins."""
    app = create_app(
        transports=transports,
        config=config,
        auth=auth,
        extra_routes=[Route("/api/faults", fault_lab_off), *dashboard_routes()],
    )
    if config.allowed_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.allowed_origins),
            allow_methods=["GET", "POST"],
            # authorization: the dashboard's admin token on its POSTs. No credentials
            # (cookies) and no wildcard: only the listed origins may read or write.
            allow_headers=["content-type", "last-event-id", "authorization"],
            max_age=600,
        )
    return app
