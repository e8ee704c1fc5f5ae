"""TLS for the lab: a local CA and a server certificate, and the clients' verifying context.

``transport-lab certs DIR`` writes ``ca.pem`` (a local certificate authority, to trust in the
browser and the Python clients), ``cert.pem`` and ``key.pem`` (the server's certificate for
the given names and addresses, signed by that CA). ``serve --tls DIR`` (or ``--certfile`` /
``--keyfile``) then serves https and wss on the same port: every HTTP transport, the
dashboard and the ``/mqtt`` bridge. WebRTC's media path is DTLS by design (RFC 8827) whatever
the signalling runs over.

Certificates are made with ``cryptography`` (already needed by aiortc for DTLS). The CA key
never leaves DIR and is not needed to serve.

Clients verify certificates by default (:func:`client_context`: the system's trust store,
or ``cafile``); ``TRANSPORT_LAB_CAFILE`` or ``follow --cafile`` names a CA to trust instead.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import os
import ssl
from collections.abc import Sequence
from pathlib import Path

CAFILE_ENV = "TRANSPORT_LAB_CAFILE"
DAYS = 30  # a lab certificate: short-lived on purpose


def make_certs(directory: Path, names: Sequence[str] = ("localhost", "127.0.0.1", "::1")) -> None:
    """Write ``ca.pem``, ``ca-key.pem``, ``cert.pem`` and ``key.pem`` into ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Transport Lab local CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=DAYS))
        # RFC 6125 / CA/B: browsers match names only against subjectAltName.
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    private = serialization.PrivateFormat.PKCS8
    none = serialization.NoEncryption()
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "cert.pem").write_bytes(cert.public_bytes(pem))
    for path, k in ((directory / "ca-key.pem", ca_key), (directory / "key.pem", key)):
        path.write_bytes(k.private_bytes(pem, private, none))
        path.chmod(0o600)


def default_cafile() -> str | None:
    return os.environ.get(CAFILE_ENV) or None


@functools.cache
def _context(cafile: str | None) -> ssl.SSLContext:
    # Building a verifying context (loading a CA bundle) takes ~50 ms, more than a whole
    # WebRTC setup on loopback: one per CA file per process.
    return ssl.create_default_context(cafile=cafile)


def client_context(cafile: str | None = None) -> ssl.SSLContext:
    """A certificate- and hostname-verifying client context: the system's trust store, or
    ``cafile`` (default: ``$TRANSPORT_LAB_CAFILE``)."""
    return _context(cafile or default_cafile())
