"""What the operations endpoints need of the server context (:class:`OpsContext`).

:class:`~transports.server.ServerContext` satisfies it; the endpoints name this protocol
instead, so the server can mount them without them importing the server back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

    from transports.auth import Principal
    from transports.config import ServerConfig
    from transports.errors import TransportError
    from transports.feed import Feed
    from transports.hub import Hub
    from transports.ops.hooks import Operations
    from transports.stats import TransportStats


class OpsContext(Protocol):
    """The server's shared state as the health, admin, metrics and engine endpoints see it."""

    @property
    def admin_token(self) -> str: ...
    @property
    def config(self) -> ServerConfig: ...
    @property
    def feed(self) -> Feed: ...
    @property
    def hub(self) -> Hub: ...
    @property
    def ops(self) -> Operations: ...
    @property
    def stats(self) -> Mapping[str, TransportStats]: ...
    @property
    def transports(self) -> Mapping[str, object]: ...

    async def require_admin(self, conn: HTTPConnection) -> Principal: ...
    def reject(self, transport: str, conn: HTTPConnection, error: TransportError) -> None: ...
