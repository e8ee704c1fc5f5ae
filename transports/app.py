"""The full demo application: the feed server plus the browser dashboard at ``/``."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette

from transports.auth import Authenticator, allow_anonymous
from transports.config import ServerConfig
from transports.server import create_app
from transports.web import dashboard_routes


def build_app(
    transports: Sequence[str], config: ServerConfig, auth: Authenticator = allow_anonymous
) -> Starlette:
    return create_app(
        transports=transports, config=config, auth=auth, extra_routes=dashboard_routes()
    )
