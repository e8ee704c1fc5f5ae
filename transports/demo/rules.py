"""The demos' namespaces and what each lets a client read and publish (``docs/demos.md``).

| namespace | history | presence | who reads | who publishes | data a client sends |
|---|---|---|---|---|---|
| ``ticker`` | 2000 | no | anyone | the server only | — |
| ``scores`` | 30 | no | anyone | the server only | — |
| ``chat`` | 200 | yes | observer, writer | writer | ``{"text": ≤ 500 chars}`` |
| ``typing`` | 8 | no | observer, writer | writer | ``{"typing": bool}`` |
| ``doc`` | 2000 | yes | observer, writer | writer | ``{"update": base64 Yjs update}`` |
| ``cursors`` | 64 | yes | observer, writer | writer | ``{"x": 0..1, "y": 0..1}`` |

Every accepted publish is stamped with ``"from"``: the token's name (a client cannot speak
for someone else). Refusals are the channel layer's documented errors: ``unauthorized``
(401) without a token, ``forbidden`` (403) for an observer, ``bad_message`` (400) for data
of the wrong shape.
"""

from __future__ import annotations

import math
from typing import Any

from transports.auth import Principal
from transports.channels import NamespaceOptions, default_namespaces
from transports.config import PublishHook, SubscribeHook
from transports.demo.collab import Docs
from transports.demo.tokens import Signer, can_read, can_write
from transports.errors import TransportError

PUBLIC = frozenset({"", "ticker", "scores"})
MAX_TEXT = 500
MAX_UPDATE = 30_000  # base64 characters; below the doc namespace's message size


def namespaces() -> dict[str, NamespaceOptions]:
    out = default_namespaces()
    out.update(
        ticker=NamespaceOptions(history=2000),
        scores=NamespaceOptions(history=30),
        chat=NamespaceOptions(history=200, presence=True, publish=True, max_message_bytes=4096),
        typing=NamespaceOptions(history=8, publish=True, max_message_bytes=256),
        doc=NamespaceOptions(history=2000, presence=True, publish=True, max_message_bytes=32768),
        cursors=NamespaceOptions(history=64, presence=True, publish=True, max_message_bytes=256),
    )
    return out


def namespace_of(channel: str) -> str:
    return channel.partition(":")[0] if ":" in channel else ""


def _shape(data: Any, fields: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
    if not isinstance(data, dict) or set(data) - set(fields) or set(fields) - set(data):
        raise TransportError("bad_message", f"data must be an object with {', '.join(fields)}")
    for key, kind in fields.items():
        value = data[key]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise TransportError("bad_message", f"{key!r} has the wrong type")
    return dict(data)


def _unit(value: float) -> float:
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise TransportError("bad_message", "x and y must be in 0..1")
    return round(float(value), 4)


def hooks(signer: Signer, docs: Docs) -> tuple[SubscribeHook, PublishHook]:
    async def on_subscribe(principal: Principal, channel: str) -> None:
        if namespace_of(channel) in PUBLIC:
            return
        if not can_read(signer.principal_of(principal)):
            raise TransportError("unauthorized", "this demo channel needs a demo token")

    async def on_publish(principal: Principal, channel: str, data: Any) -> Any:
        who = signer.principal_of(principal, data)
        if isinstance(data, dict) and who is not principal:
            data = {k: v for k, v in data.items() if k != "token"}  # MQTT: checked, dropped
        if not can_write(who):
            reason = "forbidden" if can_read(who) else "unauthorized"
            raise TransportError(reason, "publishing here needs a writer token")
        namespace = namespace_of(channel)
        if namespace == "chat":
            out = _shape(data, {"text": str})
            if not 0 < len(out["text"]) <= MAX_TEXT:
                raise TransportError("bad_message", f"text must be 1-{MAX_TEXT} characters")
        elif namespace == "typing":
            out = _shape(data, {"typing": bool})
        elif namespace == "doc":
            out = _shape(data, {"update": str})
            if len(out["update"]) > MAX_UPDATE:  # checked before the doc takes it
                raise TransportError("too_large", f"update above {MAX_UPDATE} characters")
            docs.apply(channel, out["update"])
        elif namespace == "cursors":
            out = _shape(data, {"x": (int, float), "y": (int, float)})
            out = {"x": _unit(out["x"]), "y": _unit(out["y"])}
        else:
            raise TransportError("forbidden", f"namespace {namespace!r} is server-published")
        out["from"] = who.id
        return out

    return on_subscribe, on_publish
