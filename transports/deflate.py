"""permessage-deflate (RFC 7692) with its parameters exposed and a per-message size threshold.

uvicorn offers the extension with fixed settings (window 12 bits, memLevel 5, level 6,
context takeover on both sides) and compresses every message. RFC 7692 §6 makes compression
a per-message choice — the RSV1 bit marks *this* message as compressed — so a message too
small to gain anything can go out plain on a connection that negotiated the extension.
:class:`ThresholdDeflate` does exactly that on top of the ``websockets`` implementation uvicorn
already uses: below ``min_bytes`` the frame passes unchanged (RSV1 clear); at or above, it is
compressed as usual. With context takeover, skipping a message leaves the shared LZ77 window
untouched (§7.2.3), so later messages still compress against earlier ones.

:func:`protocol_class` builds a uvicorn WebSocket protocol that negotiates this extension
(pass it as ``uvicorn.Config(ws=...)``). The memory cost per connection is the zlib state:
about ``(1 << (window_bits + 2)) + (1 << (mem_level + 9))`` bytes for the compressor (zlib's
zconf.h), kept for the connection's lifetime with context takeover, per message without.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import OP_BINARY, OP_TEXT, Frame
from websockets.server import ServerProtocol


@dataclass(frozen=True, slots=True)
class DeflateSettings:
    """What the server negotiates and how it compresses; defaults in docs/server.md."""

    window_bits: int = 12  # server_max_window_bits (9..15): LZ77 window of our compressor
    client_window_bits: int = 12  # client_max_window_bits we ask for (clients' memory)
    client_no_context_takeover: bool = False  # ask clients to reset their window per message
    server_no_context_takeover: bool = False  # reset ours per message (less memory, worse ratio)
    level: int = 6  # zlib level 1..9
    mem_level: int = 5  # zlib memLevel 1..9 (hash table size)
    min_bytes: int = 0  # messages shorter than this go out uncompressed (RSV1 clear)


class ThresholdDeflate(PerMessageDeflate):
    """``PerMessageDeflate`` that leaves whole messages under ``min_bytes`` uncompressed."""

    def __init__(self, *args: Any, min_bytes: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.min_bytes = min_bytes

    def encode(self, frame: Frame) -> Frame:
        # Only a whole (fin) text/binary message may skip compression: a compressed
        # message's continuation frames must all go through the compressor.
        if frame.fin and frame.opcode in (OP_TEXT, OP_BINARY) and len(frame.data) < self.min_bytes:
            return frame
        return super().encode(frame)


class ThresholdDeflateFactory(ServerPerMessageDeflateFactory):
    def __init__(self, settings: DeflateSettings) -> None:
        super().__init__(
            server_no_context_takeover=settings.server_no_context_takeover,
            client_no_context_takeover=settings.client_no_context_takeover,
            server_max_window_bits=settings.window_bits,
            client_max_window_bits=settings.client_window_bits,
            compress_settings={"level": settings.level, "memLevel": settings.mem_level},
        )
        self.min_bytes = settings.min_bytes

    def process_request_params(
        self, params: Sequence[tuple[str, str | None]], accepted_extensions: Sequence[Extension]
    ) -> tuple[list[tuple[str, str | None]], PerMessageDeflate]:
        response, ext = super().process_request_params(params, accepted_extensions)
        return response, ThresholdDeflate(
            ext.remote_no_context_takeover,
            ext.local_no_context_takeover,
            ext.remote_max_window_bits,
            ext.local_max_window_bits,
            self.compress_settings,
            min_bytes=self.min_bytes,
        )


def protocol_class(
    settings: DeflateSettings, base: type[WebSocketsSansIOProtocol] = WebSocketsSansIOProtocol
) -> type[WebSocketsSansIOProtocol]:
    """``base`` (uvicorn's sans-I/O WebSocket protocol or a subclass, e.g. the bounded one of
    ``transports.protocols``), negotiating :class:`ThresholdDeflate`."""

    class DeflateProtocol(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.conn = ServerProtocol(
                extensions=[ThresholdDeflateFactory(settings)],
                max_size=self.config.ws_max_size,
                logger=logging.getLogger("uvicorn.error"),
            )

    return DeflateProtocol
