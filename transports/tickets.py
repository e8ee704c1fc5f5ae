"""Short-lived single-use tickets, for clients that cannot send a header (EventSource).

``POST /api/tickets`` (authenticated by ``Authorization: Bearer`` or the cookie, JSON or
empty body, same-origin only) answers ``{"ticket": T, "expires_in": 30}``; the client then
opens ``/sse?ticket=T`` (or ``/ws``, ``/poll``). The ticket stands for the principal that
asked for it, works once, and expires after ``ttl`` seconds, so a URL that ends up in a log
is worthless by the time anyone reads it (the OWASP concern with tokens in URLs). Anonymous
callers get no ticket (``unauthorized``): they need none. At most ``limit`` tickets are
outstanding (``rate_limited`` beyond).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict

from transports.auth import Authenticator, ConnectionRequest, Principal
from transports.errors import TransportError

TTL = 30.0
LIMIT = 10_000


class TicketBook:
    def __init__(self, ttl: float = TTL, limit: int = LIMIT) -> None:
        self.ttl, self.limit = ttl, limit
        self._open: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def _expire(self) -> None:
        now = time.monotonic()
        while self._open:
            oldest = next(iter(self._open))
            if self._open[oldest][1] > now:
                break
            del self._open[oldest]

    def issue(self, principal: Principal) -> str:
        if principal.anonymous:
            raise TransportError("unauthorized", "a ticket needs a token")
        self._expire()
        if len(self._open) >= self.limit:
            raise TransportError("rate_limited", f"{self.limit} tickets outstanding")
        ticket = secrets.token_urlsafe(24)
        self._open[ticket] = (principal, time.monotonic() + self.ttl)
        return ticket

    def redeem(self, ticket: str) -> Principal:
        """The ticket's principal; it is gone afterwards (single use)."""
        self._expire()
        entry = self._open.pop(ticket, None)
        if entry is None:
            raise TransportError("unauthorized", "unknown, used or expired ticket")
        return entry[0]


def with_tickets(book: TicketBook, inner: Authenticator) -> Authenticator:
    """``inner``, except that a ``ticket`` query parameter is redeemed instead."""

    async def authenticate(request: ConnectionRequest) -> Principal:
        ticket = request.query.get("ticket")
        if ticket is not None:
            return book.redeem(ticket)
        return await inner(request)

    return authenticate
