"""Write a feed message to a WebSocket as one ready-made frame, below the ASGI layers.

The fan-out writes the same text to every caught-up ``/ws`` connection. Through ASGI each
write is Starlette's exception-handler wrapper, uvicorn's ``send`` coroutine (state checks,
``await writable.wait()``), and the ``websockets`` sans-I/O protocol building a ``Frame``,
running it through the extension list and serialising it, joined into bytes — per client.
Without an extension (no permessage-deflate) a server's text frame is the same bytes for
every client: RFC 6455 §5.2 — FIN + opcode 0x1, the payload length in 7, 7+16 or 7+64 bits,
no mask (§5.1: a server must not mask). So the frame is built once per message and written
with one ``transport.write`` per connection, which is what the raw ``websockets`` broadcast
costs. No library offers a frame shared across connections (``websockets.broadcast`` frames
per connection), hence these few lines.

Only the happy path goes this way (:meth:`DirectFrames.send_text_now` returns False
otherwise and the caller uses the ASGI send, which waits or raises as before): the
connection open, its close not sent, its writes not paused (``asyncio.Protocol
.pause_writing`` — a slow reader still makes the sender wait, queue and be dropped). With an
extension negotiated, the ``websockets`` protocol still frames (and compresses, per its
threshold) each message, but the write is direct too.

Written against uvicorn 0.54's ``WebSocketsSansIOProtocol`` attributes (``conn``,
``transport``, ``writable``, ``close_sent``, ``disconnected``, ``handshake_complete``) and
``websockets`` 15's ``ServerProtocol``; ``tests/test_ws_frames.py`` fails if they change.
"""

from __future__ import annotations

import struct
from typing import Any

from websockets.protocol import State

# The protocol object reaches the application through the ASGI scope's extensions (ASGI
# spec: servers may add their own keys there); the app looks it up once per connection.
SCOPE_KEY = "transport_lab.frames"

_last: tuple[object, bytes] = (None, b"")  # (text, its frame): one message's fan-out


def text_frame(text: str) -> bytes:
    """An unmasked, final text frame carrying ``text`` (RFC 6455 §5.2)."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def shared_frame(text: str) -> bytes:
    """``text_frame(text)``, built once for a run of calls with the same string object.

    One publish calls this for every subscriber with the message's one encoded string; a
    tuple read and compared by identity is safe across the threads of several servers in one
    process (each sees either the old pair or the new one, never half of each).
    """
    global _last
    last = _last
    if last[0] is text:
        return last[1]
    frame = text_frame(text)
    _last = (text, frame)
    return frame


def direct_frames(scope: Any) -> DirectFrames | None:
    """The connection's protocol if it writes frames directly (ours), else None."""
    frames: DirectFrames | None = scope.get("extensions", {}).get(SCOPE_KEY)
    return frames


class DirectFrames:
    """Mixin for uvicorn's sans-I/O WebSocket protocol: publishes itself in the ASGI scope
    and writes text frames without a coroutine."""

    conn: Any
    transport: Any
    writable: Any
    close_sent: bool
    disconnected: bool
    handshake_complete: bool
    scope: Any

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)  # type: ignore[misc]
        # A handshake websockets refuses (400: bad version or key) is answered there and
        # gets no scope (uvicorn 0.54): reading it raised AttributeError, a traceback per try.
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][SCOPE_KEY] = self

    def send_text_now(self, text: str) -> bool:
        """Write ``text`` as one frame now; False (nothing written) if it has to wait or fail."""
        if (
            self.close_sent
            or self.disconnected
            or not self.handshake_complete
            or not self.writable.is_set()
        ):
            return False
        conn, transport = self.conn, self.transport
        if conn.state is not State.OPEN or transport.is_closing():
            return False
        if conn.extensions:
            conn.send_text(text.encode())
            transport.write(b"".join(conn.data_to_send()))
        else:
            transport.write(shared_frame(text))
        return True
