"""Teacher mode's one endpoint: ``GET /demos/api/invite?demo=NAME`` (admin) → the demo page's
URL with a writer invite, as attendees should open it, and its QR code (SVG, by ``segno``).

The URL is built from the address the teacher's browser reached the server at (the request's
``Host``), so a teacher who opened the dashboard at ``http://192.168.1.20:8000/?teacher=1``
hands out that address. Opened at a loopback address, the URL would be useless to anyone else:
the answer then says so (``"loopback": true``) and lists this machine's other addresses, which
need ``--host 0.0.0.0`` to be reachable (see workshop/README.md for the bind-address and TLS
notes). The invite is a writer token for the name ``class``; attendees mint their own names.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

import segno
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from transports.demo.tokens import Signer
from transports.errors import TransportError
from transports.httpio import refused

LOOPBACK = ("127.", "localhost", "[::1]", "::1")


def lan_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses (best effort: from its host name)."""
    try:
        _, _, addresses = socket.gethostbyname_ex(socket.gethostname())
    except OSError:
        return []
    return sorted(a for a in addresses if not a.startswith("127."))


async def invite(signer: Signer, names: Sequence[str], request: Request) -> Response:
    """The invite for one of ``names`` (the demos served), signed by ``signer``."""
    try:
        await request.app.state.ctx.require_admin(request)
        name = request.query_params.get("demo", "chat")
        if name not in names:
            raise TransportError("bad_param", f"demo must be one of {', '.join(names)}")
    except TransportError as error:
        return refused(request, error)
    host = request.headers.get("host", "127.0.0.1")
    url = f"{request.url.scheme}://{host}/demos/{name}/#token={signer.mint('class', 'writer')}"
    svg = segno.make(url, error="m").svg_inline(scale=5, dark="#222", light="#fff")
    return JSONResponse(
        {
            "demo": name,
            "url": url,
            "svg": svg,
            "loopback": host.startswith(LOOPBACK),
            "addresses": lan_addresses(),
        }
    )
