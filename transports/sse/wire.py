"""A sans-I/O parser for ``text/event-stream`` (WHATWG HTML §9.2.6 "Interpreting an event
stream").

Written by hand because the maintained parsers (httpx-sse, sseclient) drop comment lines,
and comments are SSE's heartbeat: the client's watchdog must see them to tell a quiet feed
from a dead connection. Feed it bytes in any chunking; it returns complete items.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


@dataclass(frozen=True, slots=True)
class Comment:
    text: str


class SSEParser:
    """Incremental parser. ``last_event_id`` follows the spec's last-event-ID buffer."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self.last_event_id = ""
        self.retry: int | None = None
        self._first = True

    def feed(self, chunk: bytes) -> list[Event | Comment]:
        self._buffer += chunk
        out: list[Event | Comment] = []
        while True:
            line, found = self._next_line()
            if not found:
                return out
            item = self._line(line)
            if item is not None:
                out.append(item)

    def _next_line(self) -> tuple[str, bool]:
        # Lines end in CRLF, LF or CR (§9.2.5). A CR at the very end of the buffer may be the
        # first half of CRLF, so wait for more input before deciding.
        buf = self._buffer
        for i, byte in enumerate(buf):
            if byte == 0x0A:
                line, self._buffer = buf[:i], buf[i + 1 :]
                break
            if byte == 0x0D:
                if i + 1 == len(buf):
                    return "", False
                skip = 2 if buf[i + 1] == 0x0A else 1
                line, self._buffer = buf[:i], buf[i + skip :]
                break
        else:
            return "", False
        text = line.decode("utf-8", errors="replace")
        if self._first:
            self._first = False
            text = text.removeprefix("\ufeff")  # §9.2.5: one leading BOM is ignored
        return text, True

    def _line(self, line: str) -> Event | Comment | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return Comment(line[1:].removeprefix(" "))
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\x00" not in value:
                self._id = value
                self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = self.retry = int(value)
        return None  # unknown field names are ignored (§9.2.6)

    def _dispatch(self) -> Event | None:
        if not self._data:
            self._event, self._id = "", None
            return None
        event = Event("\n".join(self._data), self._event or "message", self._id, self._retry)
        self._data, self._event, self._id, self._retry = [], "", None, None
        return event
