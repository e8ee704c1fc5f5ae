"""Server-side counters per transport, exposed at ``GET /api/stats`` and used by the dashboard.

``bytes_out`` counts the encoded frames the server handed to the transport (application
payload incl. our JSON, excluding protocol framing); wire-level bytes are measured by the lab's
counting proxy, not here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class TransportStats:
    active: int = 0
    accepted: int = 0
    rejected: int = 0
    frames_out: int = 0
    bytes_out: int = 0
    closed: dict[str, int] = field(default_factory=dict)

    def opened(self) -> None:
        self.active += 1
        self.accepted += 1

    def ended(self, reason: str) -> None:
        self.active -= 1
        self.closed[reason] = self.closed.get(reason, 0) + 1

    def sent(self, nbytes: int, frames: int = 1) -> None:
        self.frames_out += frames
        self.bytes_out += nbytes

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
