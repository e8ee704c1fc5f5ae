"""The demo server: the normal server (every transport, the dashboard, the fault lab when
asked) plus the demo pages under ``/demos/``, their namespaces and hooks, a token endpoint,
the collaborative documents' snapshots and the server-side publishers (``docs/demos.md``).

Endpoints it adds:

- ``POST /demos/api/token`` ``{"user": NAME, "role": "writer"|"observer"}`` with
  ``Authorization: Bearer <demo or admin token>`` → ``{"token", "user", "role"}``. A writer
  (or the admin) mints either role; an observer only observers; anonymous → ``401``.
- ``GET /demos/api/doc/{channel}`` (a ``doc:`` channel; a reader token) →
  ``{"update": base64, "epoch", "seq"}``: the whole document, and the cursor to follow from.
- ``GET /demos/api/mqtt`` (writer) → ``{"username", "password"}``: the shared broker user
  demo writers publish as (their own token goes in the data, see ``tokens.py``).
- ``GET /demos/api/invite?demo=NAME`` (admin) → the page URL with a writer invite and its
  QR code, for the dashboard's teacher mode (``teacher.py``).
- ``GET /demos/api/settings``, ``POST`` (writer) ``{"ticker_rate": 0..1000, "book_every":
  0..100}``: the ticker's rate (the "high rate" switch) and how often a message is big.
- the pages: ``/demos/`` (an index), ``/demos/NAME/`` for each demo, static files only
  (``.html .js .mjs .css .png .svg``; the Python clients beside them are not served).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from transports.app import build_app
from transports.config import ServerConfig
from transports.demo import scripts, teacher
from transports.demo.collab import Docs
from transports.demo.rules import hooks, namespace_of, namespaces
from transports.demo.tokens import MQTT_USER, Signer, can_read, can_write
from transports.errors import TransportError
from transports.httpio import error_response, read_body, refused
from transports.server import ServerContext
from transports.strictjson import loads as strict_loads

DEMOS_DIR = Path(__file__).resolve().parents[2] / "demos"
NAMES = ("ticker", "chat", "scores", "collab", "cursors")
SERVED = frozenset({".html", ".js", ".mjs", ".css", ".png", ".svg"})


class PageFiles(StaticFiles):
    """Static files limited to what a page needs (no ``.py``/``.md`` from the folders)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        suffix = Path(path).suffix
        if suffix and suffix not in SERVED:
            return error_response(TransportError("bad_param", "not a page file"))
        return await super().get_response(path, scope)


@dataclass
class Demo:
    """Everything the demo app shares between restarts of the server behind the fault lab."""

    signer: Signer
    docs: Docs
    settings: scripts.Settings

    @classmethod
    def configure(
        cls, config: ServerConfig, settings: scripts.Settings | None = None
    ) -> tuple[Demo, ServerConfig]:
        """The demo, and ``config`` with the demos' namespaces and hooks (admin token set)."""
        if config.admin_token is None:
            raise ValueError("the demo server needs config.admin_token set up front")
        signer = Signer.from_admin_token(config.admin_token)
        demo = cls(signer, Docs(), settings or scripts.Settings())
        on_subscribe, on_publish = hooks(demo.signer, demo.docs)
        config = config.replace(
            namespaces=namespaces(),
            on_subscribe=on_subscribe,
            on_publish=on_publish,
            mqtt_users=(*config.mqtt_users, (MQTT_USER, signer.mqtt_password())),
        )
        return demo, config

    def build(self, names: Sequence[str], config: ServerConfig) -> Starlette:
        """The app (``Supervisor``'s ``build(names, config)`` signature)."""
        app = build_app(names, config, auth=self.signer.authenticator())
        app.router.routes[:0] = self.routes()
        inner = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def lifespan(a: Starlette) -> AsyncIterator[Any]:
            async with inner(a) as state:
                scripts.start(a.state.ctx, self.settings)  # cancelled by the app's shutdown
                yield state

        app.router.lifespan_context = lifespan
        return app

    def factory(self) -> Callable[..., Starlette]:
        """For ``LiveServer(app_factory=...)`` (its ``auth`` is the demo's own)."""

        def make(transports: Sequence[str], config: ServerConfig, **_: Any) -> Starlette:
            return self.build(transports, config)

        return make

    # ---- endpoints ------------------------------------------------------------------------
    async def _caller(self, request: Request) -> Any:
        ctx: ServerContext = request.app.state.ctx
        return self.signer.principal_of(await ctx.admit("http", request))

    async def _json(self, request: Request) -> Any:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise TransportError("bad_media_type", f"Content-Type {media[:60]!r}")
        return strict_loads(await read_body(request, 4096))

    async def token(self, request: Request) -> Response:
        try:
            who = await self._caller(request)
            body = await self._json(request)
            if not isinstance(body, dict) or set(body) - {"user", "role"}:
                raise TransportError("bad_param", 'body must be {"user": ..., "role": ...}')
            role = body.get("role", "writer")
            if not can_read(who):
                raise TransportError("unauthorized", "minting a token needs a demo token")
            if role == "writer" and not can_write(who):
                raise TransportError("forbidden", "an observer mints observer tokens only")
            user = body.get("user")
            token = self.signer.mint(str(user) if isinstance(user, str) else "", str(role))
        except TransportError as error:
            return refused(request, error)
        return JSONResponse({"token": token, "user": user, "role": role})

    async def doc(self, request: Request) -> Response:
        try:
            name = request.path_params["channel"]
            if namespace_of(name) != "doc":
                raise TransportError("bad_channel", "not a doc: channel")
            who = await self._caller(request)
            if not can_read(who):
                raise TransportError("unauthorized", "reading a document needs a demo token")
            ctx: ServerContext = request.app.state.ctx
            channel = await ctx.hub.admit(who, name)
            return JSONResponse(
                {
                    "channel": name,
                    "update": self.docs.snapshot(name),
                    "epoch": channel.feed.epoch,
                    "seq": channel.feed.last_seq,
                }
            )
        except TransportError as error:
            return refused(request, error)

    async def settings_endpoint(self, request: Request) -> Response:
        s = self.settings
        if request.method == "POST":
            try:
                if not can_write(await self._caller(request)):
                    raise TransportError("unauthorized", "changing settings needs a writer token")
                body = await self._json(request)
                if not isinstance(body, dict) or set(body) - {"ticker_rate", "book_every"}:
                    raise TransportError("bad_param", "ticker_rate and/or book_every")
                rate = body.get("ticker_rate", s.ticker_rate)
                every = body.get("book_every", s.book_every)
                ok_rate = isinstance(rate, int | float) and 0 <= rate <= scripts.MAX_RATE
                if not ok_rate or not isinstance(every, int) or not 0 <= every <= 100:
                    raise TransportError("bad_param", "ticker_rate 0..1000, book_every 0..100")
                s.ticker_rate, s.book_every = float(rate), every
            except TransportError as error:
                return refused(request, error)
        return JSONResponse(s.describe())

    async def mqtt(self, request: Request) -> Response:
        try:
            if not can_write(await self._caller(request)):
                raise TransportError("unauthorized", "MQTT write credentials need a writer token")
        except TransportError as error:
            return refused(request, error)
        return JSONResponse({"username": MQTT_USER, "password": self.signer.mqtt_password()})

    async def invite(self, request: Request) -> Response:
        return await teacher.invite(self.signer, NAMES, request)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/demos/api/mqtt", self.mqtt),
            Route("/demos/api/invite", self.invite),
            Route("/demos/api/token", self.token, methods=["POST"]),
            Route("/demos/api/doc/{channel}", self.doc),
            Route("/demos/api/settings", self.settings_endpoint, methods=["GET", "POST"]),
            Mount("/demos", PageFiles(directory=DEMOS_DIR, html=True), name="demos"),
        ]
