"""TLS with a certificate from ``transport-lab certs``: every transport followed over
https/wss with certificate verification on; without the CA the clients refuse the server."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.conftest import UNIT, require_executable
from tests.helpers import collect, publish
from transports.cli import app
from transports.clients import server_info, subscriber
from transports.config import ServerConfig
from transports.live import LiveServer
from transports.tls import CAFILE_ENV, make_certs

MakeServer = Callable[..., LiveServer]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("certs")
    make_certs(directory, ["localhost", "127.0.0.1"])
    return directory


def tls_config(certs: Path, **kwargs: object) -> ServerConfig:
    return ServerConfig(
        tls_certfile=str(certs / "cert.pem"), tls_keyfile=str(certs / "key.pem"), **kwargs
    )


@pytest.mark.parametrize("transport", ["ws", "sse", "poll", "webrtc", "mqtt"])
async def test_every_transport_over_tls_with_verification(
    make_server: MakeServer, certs: Path, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if transport == "mqtt":
        require_executable("mosquitto")
    server = make_server((transport,), config=tls_config(certs))
    assert server.url.startswith("https://")
    monkeypatch.setenv(CAFILE_ENV, str(certs / "ca.pem"))
    info = await server_info(server.url)
    url = info["transports"][transport].get("url", "")
    if transport in ("ws",):
        assert url.startswith("wss://")
    elif transport == "mqtt":
        assert url.startswith("mqtts://")  # the managed Mosquitto's TLS listener
    else:
        assert url.startswith("https://")
    await publish(server, 5)
    got = await collect(await subscriber(transport, server.url), 5, timeout=30 * UNIT)
    assert got.seqs == [1, 2, 3, 4, 5]
    assert got.stats.gaps == 0


async def test_clients_refuse_an_unknown_ca(
    make_server: MakeServer, certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server(("ws", "sse"), config=tls_config(certs))
    monkeypatch.delenv(CAFILE_ENV, raising=False)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        await server_info(server.url)
    # Trusting the CA but asking for a name the certificate does not carry fails too.
    context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"),
    ):
        context.wrap_socket(raw, server_hostname="other.example")
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_certs_command_and_follow_cafile(
    make_server: MakeServer, tmp_path: Path, certs: Path
) -> None:
    made = CliRunner().invoke(app, ["certs", str(tmp_path / "c")])
    assert made.exit_code == 0, made.output
    assert {p.name for p in (tmp_path / "c").iterdir()} == {
        "ca.pem",
        "ca-key.pem",
        "cert.pem",
        "key.pem",
    }
    assert oct((tmp_path / "c" / "key.pem").stat().st_mode & 0o777) == "0o600"
    server = make_server(("ws",), config=tls_config(certs))
    for i in range(3):
        server.publish({"i": i})
    env = {k: v for k, v in os.environ.items() if k != CAFILE_ENV}
    cmd = [sys.executable, "-m", "transports", "follow", "ws", server.url, "--after", "0"]
    ok = subprocess.run(
        [*cmd, "--count", "3", "--cafile", str(certs / "ca.pem")],
        capture_output=True, text=True, timeout=60 * UNIT, env=env, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "delivered=3 duplicates=0 gaps=0" in ok.stdout
    refused = subprocess.run(
        [*cmd, "--count", "3"], capture_output=True, text=True, timeout=60 * UNIT, env=env,
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stdout + refused.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "transports", "serve", "--tls", str(tmp_path / "nowhere")],
        capture_output=True, text=True, timeout=60 * UNIT, check=False,
    )  # fmt: skip
    assert missing.returncode == 2
    assert "transport-lab certs" in missing.stderr


async def test_mqtt_over_wss_and_mqtts_with_verification(
    make_server: MakeServer, certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both broker paths a client can take under ``--tls``: the managed Mosquitto's mqtts
    listener and the server's ``/mqtt`` bridge over wss; each delivers a feed message to a
    plain paho client that verifies the certificate against the CA."""
    import asyncio
    import threading

    from transports.mqtt.pahoutil import new_client, stop_loop, target

    require_executable("mosquitto")
    monkeypatch.setenv(CAFILE_ENV, str(certs / "ca.pem"))
    server = make_server(("mqtt",), config=tls_config(certs, broker="mosquitto"))
    info = await server_info(server.url)
    mqtt_info = info["transports"]["mqtt"]
    assert mqtt_info["bridge_url"].startswith("wss://")
    for kind in ("mqtts", "wss"):
        got = threading.Event()
        client = new_client(
            f"tls-{kind}",
            mqtt5=True,
            clean=True,
            reconnect=False,
            transport="websockets" if kind == "wss" else "tcp",
        )
        client.on_connect = lambda c, u, f, rc, p=None: c.subscribe("transport-lab/#", qos=1)
        client.on_message = lambda c, u, m, got=got: got.set()
        if kind == "wss":
            client.ws_set_options(path="/mqtt")
            host, port = target(client, f"mqtts://127.0.0.1:{server.port}")
        else:
            host, port = target(client, mqtt_info["url"])
        client.connect(host, port)
        client.loop_start()
        try:
            # The retained hello arrives as soon as the subscription is in place.
            assert await asyncio.to_thread(got.wait, 15 * UNIT), kind
        finally:
            client.disconnect()
            stop_loop(client)
    ctx = ssl.create_default_context()  # no CA: the broker's certificate is not trusted
    port = int(mqtt_info["url"].rsplit(":", 1)[1])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ctx.wrap_socket(raw, server_hostname="127.0.0.1")
