"""Log output: ``--log-format text`` (the default) or ``json`` (one object per line).

JSON lines are written by ``python-json-logger``; every record carries ``ts``, ``level``,
``logger`` and ``message``, plus the structured fields the server attaches with ``extra=``
(``event``, ``transport``, ``client``, ``principal``, ``reason``, ... — see
``docs/operations.md``). Both formats pass the finished line through :func:`redact`, so a
token in a query string, an ``Authorization`` header or a traceback never reaches the log.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

# `token=...` / `access_token=...` / `password=...` in query strings and URL fragments,
# `"authorization": "Bearer ..."` in dumped headers, bare `Bearer ...` credentials
# (RFC 6750 §2.1), and the WebSocket subprotocol `bearer.<token>` (jwtauth.py).
_SECRET_PARAM = re.compile(
    r"(?i)\b((?:access_|admin_|id_)?token|password|secret|api_key|apikey)=([^&#\s\"'\\]+)"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_BEARER_PROTOCOL = re.compile(r"(?i)\bbearer\.[A-Za-z0-9._~+/=-]+")
_AUTH_HEADER = re.compile(
    r"(?i)([\"']?(?:authorization|cookie)[\"']?\s*[:=]\s*)"
    r"(\"[^\"]*\"|'[^']*'|(?:[A-Za-z]+\s+)?[^\s,;}]+)"
)
REDACTED = "[REDACTED]"


def _header(m: re.Match[str]) -> str:
    value = m.group(2)
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{m.group(1)}{quote}{REDACTED}{quote}"


def redact(text: str) -> str:
    """Replace credentials in ``text`` by ``[REDACTED]``."""
    text = _AUTH_HEADER.sub(_header, text)
    text = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    text = _BEARER_PROTOCOL.sub(f"bearer.{REDACTED}", text)
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


# Control characters but tab: a client-chosen string in a message (a percent-decoded query
# parameter name, say) could otherwise end the line and forge the next one (CWE-117), or
# carry terminal escapes.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _escape(m: re.Match[str]) -> str:
    return repr(m.group())[1:-1]  # "\n", "\x1b", ...


class RedactingText(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        # One record, one line: the message's control characters are escaped; a traceback
        # (added after this, by format) keeps its lines.
        record.message = _CONTROL.sub(_escape, record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class RedactingJson(JsonFormatter):
    # Redacted field by field before serialising: rewriting the finished JSON text could
    # cut through an escape sequence.
    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {k: _redact_value(v) for k, v in log_data.items()}


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def formatter(kind: str) -> logging.Formatter:
    if kind == "json":
        return RedactingJson(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
            json_ensure_ascii=False,
            # uvicorn adds an ANSI-coloured copy of its message for terminals.
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
        )
    if kind == "text":
        return RedactingText(TEXT_FORMAT)
    raise ValueError(f"unknown log format {kind!r}; choose json or text")


def setup(kind: str = "text", level: str = "INFO", stream: Any = None) -> None:
    """Configure the root logger for ``serve`` (replaces existing handlers)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(kind))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Everything a library logs goes through the same formatter (e.g. uvicorn's errors).
    logging.captureWarnings(True)
