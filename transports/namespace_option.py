"""``serve --namespace SPEC``: declare a channel namespace on the command line.

``SPEC`` is ``NAME[:OPTION,...]`` where an option is a flag — ``publish``, ``presence``,
``anonymous_publish``, ``durable`` — or ``history=N`` / ``max_message_bytes=N``; unnamed
options keep :class:`~transports.channels.NamespaceOptions`' secure defaults (no client
publishing, no presence). Examples: ``load:publish`` (named principals publish, no
presence: what ``transport-lab load`` uses), ``room:publish,presence,history=200``.
Presence sends every subscriber a ``join``/``leave`` frame per subscriber, so its cost grows
with the square of the channel's subscribers: leave it off for big fan-out channels.
"""

from __future__ import annotations

import re

from transports.channels import NamespaceOptions

_NS = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
FLAGS = ("publish", "presence", "anonymous_publish", "durable")
NUMBERS = {"history": (1, 1_000_000), "max_message_bytes": (1, 1024 * 1024)}


def parse_namespace(spec: str) -> tuple[str, NamespaceOptions]:
    """``"load:publish,history=1000"`` → ``("load", NamespaceOptions(publish=True, ...))``."""
    name, _, rest = spec.partition(":")
    if not _NS.fullmatch(name):
        raise ValueError(f"namespace {name[:40]!r} must be 1-32 of a-z 0-9 _ - (docs/channels.md)")
    values: dict[str, int | bool] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if key in FLAGS and not eq:
            values[key] = True
        elif key in NUMBERS and eq and value.isdigit():
            low, high = NUMBERS[key]
            if not low <= int(value) <= high:
                raise ValueError(f"{key} must be {low}..{high}")
            values[key] = int(value)
        else:
            raise ValueError(f"unknown namespace option {part[:40]!r}")
    return name, NamespaceOptions(**values)  # type: ignore[arg-type]
