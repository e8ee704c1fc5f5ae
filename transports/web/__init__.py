"""The browser dashboard: static files served at ``/`` (no build step, no CDN)."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def dashboard_routes() -> list[BaseRoute]:
    return [Mount("/", StaticFiles(directory=STATIC, html=True), name="dashboard")]
