"""One request's query parameters, parsed in one pass, looked up without an exception.

Starlette's ``QueryParams`` parses the query string and then copies its items twice (a
``str()`` of every key and value, into a new list and a new dict), and its ``get`` is
``Mapping.get``, which raises and catches ``KeyError`` for every absent name. A long poll is
admitted on every request and asks for several names that are usually absent (``epoch``,
``limit``, ``ticket``, the URL-token names): at 1000 polling clients the parsing and those
lookups were ~10 % of the server's CPU (py-spy).

:class:`QueryMap` *is* a ``QueryParams`` (auth hooks get the type they always got, with every
method), built the way ``QueryParams(query_string)`` builds it: ``parse_qsl`` of the
latin-1 decoded bytes, blank values kept; ``get`` and ``[]`` give the last value of a repeated
name, ``getlist`` all of them in order. It fills ``ImmutableMultiDict``'s ``_list`` and
``_dict`` itself (Starlette 1.10), which ``tests/test_querymap.py`` compares against
Starlette's own parse, so a change there fails a test instead of changing answers.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import QueryParams


class QueryMap(QueryParams):
    def __init__(self, query_string: bytes) -> None:  # no super(): one pass, same result
        items = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        self._list = items
        self._dict = dict(items)

    def get(self, key: Any, default: Any = None) -> Any:
        return self._dict.get(key, default)

    def __eq__(self, other: Any) -> bool:
        # Starlette's __eq__ wants ``other`` of this very class; Python asks the subclass
        # first, so without this a QueryMap never equals the QueryParams of the same query.
        if not isinstance(other, QueryParams):
            return False
        by_name = itemgetter(0)
        return sorted(self._list, key=by_name) == sorted(other.multi_items(), key=by_name)
