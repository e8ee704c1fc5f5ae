"""Frames a client sends on a bidirectional connection (WebSocket, WebRTC data channel).

On a single-stream connection a client may only ``ping`` (:func:`answer_client_frame` in
``server.py``). On a multi-channel connection it may also, at any time:

- ``{"type":"subscribe","channel":C,"after":N|null,"epoch":E|null}`` → ``hello`` (and
  ``gap``/``reset``) for C, then C's frames; ``{"type":"unsubscribe","channel":C}`` →
  ``{"type":"unsubscribed","channel":C}``;
- ``{"type":"publish","channel":C,"data":…,"id":ID}`` → ``{"type":"ack","channel","epoch",
  "seq","id"}`` (the same ack again for an ``id`` seen within the idempotency window);
- ``{"type":"auth","token":T}`` → ``{"type":"authed","user","exp"}``: an in-band token
  refresh (``admission.refresh``), so the connection outlives its first token's ``exp``.

A request that is refused is answered with ``{"type":"error","reason","detail",…}`` echoing
its ``id``/``channel``, and the connection stays open: one bad publish costs that publish,
not the client's subscriptions. A frame that is not strict JSON or not one of these types
ends the connection (``bad_param``/``bad_message``), and one above ``max_frame_bytes``
(``too_large``), as on the single stream.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from transports.admission import refresh
from transports.errors import TransportError
from transports.message import Control, Cursor
from transports.streams import MultiSubscription
from transports.strictjson import loads as strict_loads

if TYPE_CHECKING:
    from transports.server import ServerContext

log = logging.getLogger("transports.inbound")


def parse_cursor(obj: dict[str, Any]) -> Cursor | None:
    after, epoch = obj.get("after"), obj.get("epoch")
    if after is None:
        return None
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after < 10**18:
        raise TransportError("bad_cursor", f"after={str(after)[:40]!r} is not a non-negative int")
    if epoch is not None and (not isinstance(epoch, str) or not epoch.isalnum()):
        raise TransportError("bad_param", "epoch must be letters and digits")
    return Cursor(epoch, after)


async def handle(ctx: ServerContext, stream: MultiSubscription, raw: str | bytes) -> str | None:
    """Act on one client frame; replies go into ``stream``. Returns a reason to close, or None."""
    try:
        obj = strict_loads(raw, max_bytes=ctx.config.max_frame_bytes)
    except TransportError as error:
        return error.reason
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        return "bad_param"
    kind = obj["type"]
    if kind == "ping":
        stream.push(Control("pong", {"id": obj.get("id")}))
        return None
    if kind not in ("subscribe", "unsubscribe", "publish", "auth"):
        return "bad_param"
    echo = {k: obj[k] for k in ("id", "channel") if isinstance(obj.get(k), str)}
    try:
        if kind == "auth":
            principal = await refresh(ctx, stream, obj.get("token"))
            stream.push(Control("authed", {"user": principal.id, "exp": principal.claims["exp"]}))
        elif kind == "publish":
            if "data" not in obj:
                raise TransportError("bad_message", 'publish needs "data"')
            principal, channel = stream.principal, obj.get("channel")
            ack = await ctx.hub.publish(principal, channel, obj["data"], obj.get("id"))
            stream.push(Control("ack", {k: v for k, v in ack.items() if k != "type"}))
        elif kind == "subscribe":
            cursor = parse_cursor(obj)
            channel = await ctx.hub.admit(stream.principal, obj.get("channel"))
            stream.add(channel, cursor)
        elif not stream.remove(str(obj.get("channel"))):
            raise TransportError("bad_channel", "not subscribed to that channel")
        else:
            stream.push(Control("unsubscribed", echo))
    except TransportError as error:
        log.warning("%s refused for %s: %s", kind, stream.principal.id, error)
        stream.push(Control("error", {**echo, "reason": error.reason, "detail": error.detail}))
    return None
