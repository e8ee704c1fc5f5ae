"""The fault lab of a running server, over HTTP (used by the dashboard and ``transport-lab fault``).

``transport-lab serve --faults`` starts one :class:`~transports.netem.proxy.FaultProxy` per
transport in front of the server's own port (the HTTP transports and WebRTC signalling), one
in front of the MQTT broker's TCP port, and a :class:`~transports.netem.udp_relay.UdpRelay`
for WebRTC's UDP path. A client that connects through ``url`` of its transport is subject to
that transport's faults only. The interface is documented in ``docs/faults.md``:

- ``GET /api/faults`` → ``{"transports": {name: {"url", "active": [...], ...}}}``
- ``POST /api/faults/{transport}`` with ``{"action": "cut"|"blackhole"|"latency"|"restore",
  "latency_ms": N, "jitter_ms": N, "loss_pct": N}`` (``loss_pct``: WebRTC only), or
  ``{"action": "add", "fault": {"kind": ..., ...}}`` / ``{"action": "remove", "name": ...}``
  for any Toxiproxy-style fault; bad input is ``400 bad_param``.
- ``POST /api/faults/webrtc/offer``: WebRTC signalling whose answer candidates point at the
  UDP relay (see ``udp_relay.py``), for clients that want their UDP path faulted too.
- ``POST /api/faults/server/restart``: restart the feed server, when the process running it
  supports that (``serve --faults``, see ``supervisor.py``); ``GET /api/faults`` then has a
  ``"server"`` entry.

With ``serve --tls`` the proxies carry TLS through untouched (they relay TCP bytes and
never terminate it), so their URLs are ``https://`` / ``mqtts://`` and a client verifies the
server's own certificate through them (it names ``127.0.0.1``/``localhost``, whatever the
port). Only the relayed offer is a request of our own: it goes to the server over https,
verified against the local CA (``ca.pem`` beside the certificate).

The ``POST`` actions and the restart change the server for everyone: they need the admin
token (``Authorization: Bearer``) and a JSON body, like every write endpoint (``401``/``403``,
``415 bad_media_type``). Reading the state and the relayed offer (a subscriber's signalling)
stay open.
"""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from transports.config import ServerConfig
from transports.errors import TransportError
from transports.netem.faults import from_dict
from transports.netem.path import FaultPath
from transports.netem.proxy import FaultProxy
from transports.netem.udp_relay import UdpRelay
from transports.netem.webrtc_relay import blind_candidates, rewrite_candidates
from transports.netutil import free_port
from transports.server import admin_json, error_response, read_body, refused
from transports.tls import client_context

log = logging.getLogger("transports.netem.faults")
ACTIONS = ("cut", "blackhole", "latency", "restore", "add", "remove")


class FaultLab:
    """Proxies in front of one server at ``host:port``; listen ports are chosen up front so
    the dashboard's origins can be allowed before the app is built."""

    def __init__(
        self,
        host: str,
        port: int,
        transports: tuple[str, ...] | list[str],
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """``tls``: the server speaks TLS; the context verifies it (for the relayed offer)."""
        self.host, self.port = host, port
        self.tls = tls
        self.scheme = "https" if tls is not None else "http"
        self.broker_scheme = "mqtt"
        self.names = [t for t in transports]
        self.proxies = {name: FaultProxy(host, port, host, free_port(host)) for name in self.names}
        self.broker: FaultProxy | None = None
        self.relay = UdpRelay(host) if "webrtc" in self.names else None
        # Set by a supervisor that can restart the server: restart() asks for one and answers
        # at once; server_state() describes the server for GET /api/faults.
        self.restart: Callable[[], dict[str, Any]] | None = None
        self.server_state: Callable[[], dict[str, Any]] | None = None

    def origins(self) -> list[str]:
        return [f"{self.scheme}://{self.host}:{p.port}" for p in self.proxies.values()]

    async def start(self, ctx: Any = None, broker_url: str | None = None) -> None:
        """Start the proxies; the broker's comes from ``broker_url`` or the running app's
        MQTT transport (``ctx``)."""
        for proxy in self.proxies.values():
            await proxy.start()
        mqtt = getattr(ctx, "transports", {}).get("mqtt") if ctx is not None else None
        if broker_url is None and mqtt is not None:
            broker_url = mqtt.info("").get("url")
        if broker_url:
            parts = urlsplit(broker_url)
            self.broker_scheme = parts.scheme or "mqtt"  # mqtts: the broker's TLS listener
            self.broker = FaultProxy(parts.hostname or self.host, parts.port or 1883, self.host)
            await self.broker.start()
        log.info("fault proxies: %s", {n: p.port for n, p in self.proxies.items()})

    async def stop(self) -> None:
        for proxy in [*self.proxies.values(), *([self.broker] if self.broker else [])]:
            await proxy.stop()
        if self.relay is not None:
            self.relay.close()

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, proxy in self.proxies.items():
            entry: dict[str, Any] = {
                "url": f"{self.scheme}://{self.host}:{proxy.port}",
                "active": proxy.describe(),
                "bytes": proxy.counters.as_dict(),
            }
            if name == "mqtt" and self.broker is not None:
                entry["broker_url"] = f"{self.broker_scheme}://{self.host}:{self.broker.port}"
                entry["active"] = self.broker.describe()
                entry["bytes"] = self.broker.counters.as_dict()
            if name == "webrtc" and self.relay is not None:
                offer = f"{self.scheme}://{self.host}:{self.port}/api/faults/webrtc/offer"
                entry["offer_url"] = offer
                entry["active"] = entry["active"] + self.relay.describe()
                entry["udp"] = self.relay.counters.as_dict()
            out[name] = entry
        if self.server_state is not None:
            return {"transports": out, "server": self.server_state()}
        return {"transports": out}

    def apply(self, name: str, body: Any) -> None:
        """Apply one action to transport ``name``; raise ``ValueError`` for bad input."""
        if name not in self.proxies:
            raise ValueError(f"no fault proxy for {name!r}; have {', '.join(self.proxies)}")
        if not isinstance(body, dict) or body.get("action") not in ACTIONS:
            raise ValueError(f"body must be {{'action': one of {', '.join(ACTIONS)}}}")
        action = body["action"]
        # MQTT's feed path is the broker connection; its HTTP proxy only carries /api calls
        # and the server's /mqtt bridge, which browsers use: the four dashboard actions apply
        # to both.
        proxy = self.broker if name == "mqtt" and self.broker is not None else self.proxies[name]
        hops = [proxy] if proxy is self.proxies[name] else [proxy, self.proxies[name]]
        path = FaultPath(hops, self.relay if name == "webrtc" else None)
        if action == "cut":
            path.cut()
        elif action == "blackhole":
            path.blackhole()
        elif action == "latency":
            loss = _number(body, "loss_pct", 0)
            if loss > 100:
                raise ValueError("loss_pct must be <= 100")
            if loss and path.relay is None:
                raise ValueError("loss_pct applies to the WebRTC (UDP) path only")
            path.latency(
                _number(body, "latency_ms", 100), _number(body, "jitter_ms", 0), loss / 100
            )
        elif action == "restore":
            path.restore()
        elif action == "add":
            fault = body.get("fault")
            if not isinstance(fault, dict):
                raise ValueError('"add" needs "fault": {"kind": ..., ...}')
            proxy.add(from_dict(fault))
        else:
            try:
                proxy.remove(str(body.get("name")))
            except KeyError:
                raise ValueError(f"no active fault named {body.get('name')!r}") from None
        log.info("fault %s on %s: %s", action, name, body)

    async def relayed_offer(self, body: bytes, headers: dict[str, str]) -> Response:
        """Forward an offer to the server's own endpoint; rewrite the answer to the relay.

        The offer's candidates are pointed at the relay's sink, so the server cannot pair with
        the client directly and bypass the relay (:func:`blind_candidates`).
        """
        assert self.relay is not None
        body = await _blinded(body, self.relay)
        try:
            async with httpx.AsyncClient(timeout=15, verify=self.tls or True) as http:
                r = await http.post(
                    f"{self.scheme}://{self.host}:{self.port}/webrtc/offer",
                    content=body,
                    # The client's credentials go with its offer: the peer's principal
                    # is decided by the server's auth hook from the signalling request.
                    headers={"content-type": "application/json"}
                    | {k: v for k, v in headers.items() if k == "authorization"},
                )
        except httpx.TransportError as exc:
            # The server is restarting (this request came on a connection the old one is
            # still closing): the documented retryable answer, not a 500.
            log.warning("relayed offer: server unreachable: %r", exc)
            return error_response(TransportError("shutting_down", "server is restarting"))
        if r.status_code != 200:
            return Response(r.content, r.status_code, media_type="application/json")
        answer = r.json()
        answer["sdp"] = await rewrite_candidates(answer["sdp"], self.relay)
        return JSONResponse(answer)


async def _blinded(body: bytes, relay: UdpRelay) -> bytes:
    try:
        offer = json.loads(body)
    except ValueError:
        return body  # forwarded as it came: the server answers it with its documented error
    if not isinstance(offer, dict) or not isinstance(offer.get("sdp"), str):
        return body
    offer["sdp"] = await blind_candidates(offer["sdp"], relay)
    return json.dumps(offer).encode()


def _number(body: dict[str, Any], key: str, default: float) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{key} must be a non-negative number")
    return float(value)


def routes(lab: FaultLab) -> list[BaseRoute]:
    async def list_faults(request: Request) -> Response:
        return JSONResponse(lab.describe())

    async def control(request: Request) -> Response:
        name = request.path_params["transport"]
        try:
            try:
                body = await admin_json(request.app.state.ctx, request)
                lab.apply(name, body)
            except TransportError as error:
                if error.reason != "bad_message":
                    raise
                # The fault lab documents every bad body as bad_param.
                raise TransportError("bad_param", error.detail) from None
            except ValueError as exc:
                raise TransportError("bad_param", str(exc)[:300]) from None
        except TransportError as error:
            return refused(request, error)
        return JSONResponse(lab.describe()["transports"][name])

    async def offer(request: Request) -> Response:
        if lab.relay is None:
            return error_response(TransportError("bad_param", "webrtc is not served"))
        try:
            body = await read_body(request, request.app.state.ctx.config.max_frame_bytes)
        except TransportError as error:
            return refused(request, error)
        return await lab.relayed_offer(body, dict(request.headers))

    async def restart(request: Request) -> Response:
        try:
            await admin_json(request.app.state.ctx, request)
        except TransportError as error:
            return refused(request, error)
        if lab.restart is None:
            detail = "this server cannot restart itself: run it with `transport-lab serve --faults`"
            log.warning("restart request rejected: %s", detail)
            return error_response(TransportError("bad_param", detail))
        # 202: the restart begins after this answer; the page watches its panels reconnect.
        return JSONResponse(lab.restart(), status_code=202)

    return [
        Route("/api/faults", list_faults),
        Route("/api/faults/server/restart", restart, methods=["POST"]),
        Route("/api/faults/webrtc/offer", offer, methods=["POST"]),
        Route("/api/faults/{transport}", control, methods=["POST"]),
    ]


def lab_for(
    host: str, port: int, names: list[str], cfg: ServerConfig
) -> tuple[FaultLab, ServerConfig]:
    """A fault lab for ``serve`` and the config to serve with: the page's and the proxies'
    origins become allowed origins (through a proxy the browser's Origin differs from the
    Host the server sees)."""
    lab = FaultLab(host, port, names, tls=server_context(cfg))
    own = f"{lab.scheme}://{host}:{port}"
    extra = [o for o in [own, *lab.origins()] if o not in cfg.allowed_origins]
    return lab, cfg.replace(allowed_origins=(*cfg.allowed_origins, *extra))


def server_context(cfg: ServerConfig) -> ssl.SSLContext | None:
    """For a TLS server: a context that verifies it (``ca.pem`` beside its certificate, as
    ``transport-lab certs`` writes it; else the usual trust store), or None."""
    if cfg.tls_certfile is None:
        return None
    ca = Path(cfg.tls_certfile).with_name("ca.pem")
    return client_context(str(ca) if ca.exists() else None)


def install(app: Starlette, lab: FaultLab) -> Starlette:
    """Mount the routes on ``app`` and run the lab for the app's lifetime (after its own
    startup, so the MQTT broker's port is known)."""
    app.router.routes[:0] = routes(lab)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as state:
            await lab.start(getattr(a.state, "ctx", None))
            try:
                yield state
            finally:
                await lab.stop()

    app.router.lifespan_context = lifespan
    return app
