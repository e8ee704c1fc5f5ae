"""``transport-lab certs DIR``: a local CA and a server certificate for ``serve --tls DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()


def certs(
    directory: Annotated[Path, typer.Argument(help="Where to write the files.")] = Path("certs"),
    name: Annotated[
        list[str] | None,
        typer.Option(help="Host name or IP the certificate is for (repeatable)."),
    ] = None,
) -> None:
    """Make a local CA (ca.pem) and a server certificate (cert.pem, key.pem) signed by it."""
    from transports.tls import DAYS, make_certs

    names = list(name or ["localhost", "127.0.0.1", "::1"])
    make_certs(directory, names)
    console.print(
        f"wrote {directory}/ca.pem (trust this), cert.pem and key.pem for {', '.join(names)}; "
        f"valid {DAYS} days.\n"
        f"  serve:  transport-lab serve --tls {directory}\n"
        f"  follow: transport-lab follow ws https://127.0.0.1:8000 --cafile {directory}/ca.pem",
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.command()(certs)
