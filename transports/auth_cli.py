"""``transport-lab token``: mint a signed token (JWT) for testing ``serve --auth jwt``."""

from __future__ import annotations

from typing import Annotated

import typer

from transports.cli_errors import fail


def _grant(text: str) -> tuple[str, list[str]]:
    pattern, sep, rights = text.partition("=")
    if not sep or not pattern:
        raise ValueError(f"--channel {text!r}: use PATTERN=RIGHT[,RIGHT] (e.g. 'chat:*=publish')")
    return pattern, [r for r in rights.split(",") if r]


def token(
    sub: Annotated[str, typer.Argument(help="Who the token is for (the sub claim).")],
    key: Annotated[
        str,
        typer.Option(
            envvar="TRANSPORT_LAB_JWT_KEY",
            help="HS256 secret (>= 32 bytes), or @FILE with a PEM private key (RS256/ES256).",
        ),
    ],
    algorithm: Annotated[str, typer.Option(help="HS256 | RS256 | ES256")] = "HS256",
    channel: Annotated[
        list[str] | None,
        typer.Option(help="PATTERN=RIGHTS, e.g. 'chat:*=subscribe,publish' (repeatable)."),
    ] = None,
    role: Annotated[list[str] | None, typer.Option(help="Role, e.g. admin (repeatable).")] = None,
    ttl: Annotated[
        float, typer.Option(help="Seconds until it expires.", min=1, max=86400 * 30)
    ] = 3600,
    audience: Annotated[str | None, typer.Option(help="aud claim.")] = None,
) -> None:
    """Print a signed token granting SUB the given channel rights and roles."""
    from transports import rights
    from transports.errors import TransportError
    from transports.jwtauth import ALGORITHMS, mint, read_key

    if algorithm not in ALGORITHMS:
        fail(f"--algorithm must be one of {', '.join(ALGORITHMS)}")
    try:
        grants = dict(_grant(c) for c in channel) if channel else None
        if grants is not None:
            rights.check_grants(grants)
        text = mint(
            read_key(key),
            sub,
            ttl=ttl,
            algorithm=algorithm,
            channels=grants,
            roles=tuple(role or ()),
            audience=audience,
        )
    except (ValueError, TransportError, OSError) as exc:
        fail(str(getattr(exc, "detail", None) or exc))
    except Exception as exc:  # PyJWT/cryptography: a key that does not fit the algorithm
        fail(f"cannot sign with this key: {exc}"[:300])
    typer.echo(text)


def register(app: typer.Typer) -> None:
    app.command()(token)
