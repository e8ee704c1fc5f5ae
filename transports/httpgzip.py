"""gzip for HTTP responses: whole long-poll bodies above a size, SSE streams event by event.

Starlette's ``GZipMiddleware`` buffers a streaming body until it has enough to compress and
does not compress ``text/event-stream`` at all, so an event would wait for the next ones.
:class:`GzipStream` instead compresses each body chunk the inner response sends and ends it
with a zlib *sync flush* (``Z_SYNC_FLUSH``): the bytes of every event are complete deflate
blocks on the wire at once, decodable by the browser without waiting for more. The LZ77
window is shared across the stream, so repeated keys of later events cost a few bytes.

HTTP gives no per-event choice: ``Content-Encoding`` applies to the whole response (RFC 9110
§8.4), so an SSE stream is compressed entirely or not at all; the size threshold applies to
long-poll responses, each its own body.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Mapping

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

ENCODING_HEADERS = [(b"content-encoding", b"gzip"), (b"vary", b"accept-encoding")]
# A stream keeps its compressor for its whole life: zlib's defaults (32 KB window, memLevel 8)
# hold ~260 KB per stream; uvicorn's permessage-deflate settings (4 KB window, memLevel 5)
# hold ~33 KB and compress feed events about as well (notebooks/05-compression).
STREAM_WINDOW_BITS = 12
STREAM_MEM_LEVEL = 5


def accepts_gzip(headers: Mapping[str, str]) -> bool:
    """True when ``Accept-Encoding`` lists gzip with a non-zero q (RFC 9110 §12.5.3)."""
    for item in headers.get("accept-encoding", "").lower().split(","):
        name, _, params = item.strip().partition(";")
        if name.strip() in ("gzip", "x-gzip", "*"):
            q = params.strip()
            return not (q.startswith("q=") and float(q[2:] or 0) == 0)
    return False


def gzip_body(body: bytes, level: int) -> bytes:
    return gzip.compress(body, compresslevel=level, mtime=0)


class GzipStream(Response):
    """Wrap a streaming response (e.g. sse-starlette's) so its body goes out gzip-encoded."""

    def __init__(self, inner: Response, level: int = 6) -> None:
        self.inner = inner
        self.level = level
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # wbits 16 + N: a gzip header and trailer around a deflate stream (zlib manual).
        compressor = zlib.compressobj(
            self.level, zlib.DEFLATED, 16 + STREAM_WINDOW_BITS, STREAM_MEM_LEVEL
        )

        async def gzip_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"content-length"
                ]
                message = {**message, "headers": [*headers, *ENCODING_HEADERS]}
            elif message["type"] == "http.response.body":
                body = compressor.compress(message.get("body", b""))
                more = message.get("more_body", False)
                body += compressor.flush(zlib.Z_SYNC_FLUSH if more else zlib.Z_FINISH)
                message = {**message, "body": body}
            await send(message)

        await self.inner(scope, receive, gzip_send)
