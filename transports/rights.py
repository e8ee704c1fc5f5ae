"""Per-channel rights: who may ``subscribe``, ``publish`` or see ``presence`` on a channel.

One function, :func:`require`, decides for every transport: the hub calls it before the
``on_subscribe`` / ``on_publish`` hooks (``hub.py``), the single-stream admission calls it
for the default channel (``admission.py``), and the MQTT broker's ACL is written from the same
grants (``mqtt/mosquitto.py``). So a right is enforced identically on all five transports.

Rules, in order:

1. a principal with the ``admin`` role may do everything;
2. a principal whose claims carry ``channels`` (a signed token, ``jwtauth.py``) has exactly
   those grants: ``{"chat:*": ["subscribe", "publish"], "news": ["subscribe"]}`` — a pattern
   is a channel name, ``ns:*`` (every channel of namespace ``ns``) or ``*`` (every channel);
3. otherwise (the anonymous principal, or one from a custom auth hook without grants) the
   namespace options decide: subscribing needs ``anonymous_subscribe`` for the anonymous
   principal, publishing is checked by the hub (``publish``, ``anonymous_publish``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transports.auth import Principal
from transports.channels import NamespaceOptions
from transports.errors import TransportError

RIGHTS = ("subscribe", "publish", "presence")


def matches(pattern: str, channel: str) -> bool:
    """``*`` matches every channel, ``ns:*`` every channel of namespace ``ns``."""
    if pattern == "*":
        return True
    if pattern.endswith(":*"):
        return channel.startswith(pattern[:-1])
    return pattern == channel


def grants_of(principal: Principal) -> Mapping[str, Any] | None:
    grants = principal.claims.get("channels")
    return grants if isinstance(grants, Mapping) else None


def check_grants(value: object) -> dict[str, list[str]]:
    """Validate a ``channels`` claim; raise ``unauthorized`` when it is malformed."""
    if not isinstance(value, Mapping) or len(value) > 100:
        raise TransportError("unauthorized", "claim 'channels' must map <=100 patterns to rights")
    out: dict[str, list[str]] = {}
    for pattern, rights in value.items():
        if (
            not isinstance(pattern, str)
            or not isinstance(rights, list)
            or any(r not in RIGHTS for r in rights)
        ):
            raise TransportError(
                "unauthorized", f"claim 'channels': bad grant {str(pattern)[:40]!r}"
            )
        out[pattern] = list(rights)
    return out


def allowed(principal: Principal, right: str, channel: str, options: NamespaceOptions) -> bool:
    if principal.is_admin:
        return True
    grants = grants_of(principal)
    if grants is not None:
        return any(matches(p, channel) and right in r for p, r in grants.items())
    if right == "subscribe":
        return options.anonymous_subscribe or not principal.anonymous
    return True  # publish / presence: the namespace options decide (hub.py)


def require(principal: Principal, right: str, channel: str, options: NamespaceOptions) -> None:
    """Raise ``unauthorized`` (anonymous) or ``forbidden`` (named) unless ``right`` is held."""
    if allowed(principal, right, channel, options):
        return
    if principal.anonymous:
        raise TransportError("unauthorized", f"{right} on {channel!r} needs a token")
    raise TransportError("forbidden", f"{principal.id!r} may not {right} on {channel!r}")
