"""One request's headers as a dict, looked up by name without a scan or an exception.

Starlette's ``Headers`` scans the raw header list on every lookup and, through
``Mapping.get``, raises and catches ``KeyError`` for each header that is absent — which on
admission is the common case (``Origin`` from non-browser clients, ``Authorization`` for
anonymous ones). A long poll is admitted on every request, so admission builds this map once
and every check and the auth hook look names up in it (profiles: repeated header lookups
were ~9 % of the poll path's CPU).

Names are lower case (ASGI gives them so; HTTP field names are case-insensitive, RFC 9110
§5.1). As with ``Headers.get``, a repeated field gives its first value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any


class HeaderMap(Mapping[str, str]):
    __slots__ = ("_fields",)

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        fields: dict[str, str] = {}
        for name, value in raw:
            fields.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        self._fields = fields

    def __getitem__(self, key: str) -> str:
        return self._fields[key.lower()]

    def get(self, key: str, default: Any = None) -> Any:
        return self._fields.get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"HeaderMap({self._fields!r})"
