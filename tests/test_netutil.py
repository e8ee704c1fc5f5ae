"""free_port: a port outside the range outgoing connections draw from, never handed out twice."""

from __future__ import annotations

import socket

from transports.netutil import _ephemeral_range, free_port


def test_free_ports_are_bindable_distinct_and_below_the_ephemeral_range() -> None:
    low, _ = _ephemeral_range()
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    for port in ports:
        assert port < low  # an outgoing connect() can never be given it as its local port
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
