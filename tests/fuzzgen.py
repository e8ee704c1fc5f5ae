"""Seeded generators of hostile bodies: JSON with NaN/Infinity/overflow/lone surrogates/deep
nesting/huge integers, random bytes, and line-level mutations of a real SDP offer."""

from __future__ import annotations

import json
import random

ATOMS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e999",
    '"\\ud800"',
    '"\\udfff x"',
    "1" * 5000,
    "null",
    "true",
    "0",
    "-0.0",
    '"x"',
    '""',
    "12345678901234567890123",
    '"\\u0000"',
]


def value(rng: random.Random, depth: int = 0) -> str:
    r = rng.random()
    if depth > 3 or r < 0.4:
        return rng.choice(ATOMS)
    if r < 0.55:
        d = rng.randint(30, 3000) if rng.random() < 0.3 else rng.randint(1, 5)
        return "[" * d + value(rng, depth + 1) + "]" * d
    if r < 0.75:
        return "[" + ",".join(value(rng, depth + 1) for _ in range(rng.randint(0, 4))) + "]"
    keys = [
        rng.choice(['"data"', '"topic"', '"\\ud800"', '"a"', '"sdp"', '"type"'])
        for _ in range(rng.randint(0, 4))
    ]
    return "{" + ",".join(f"{k}:{value(rng, depth + 1)}" for k in keys) + "}"


def sdp_mutation(rng: random.Random, sdp: str) -> str:
    lines = sdp.split("\r\n")
    for _ in range(rng.randint(1, 6)):
        i = rng.randrange(len(lines))
        op = rng.random()
        if op < 0.25:
            del lines[i]
        elif op < 0.45:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif op < 0.7:
            parts = lines[i].split(" ")
            j = rng.randrange(len(parts))
            parts[j] = rng.choice(
                ["", "-1", "99999999999999999999", "x", "0", "a=b", ":", "\u00e9", "1e9"]
            )
            lines[i] = " ".join(parts)
        elif op < 0.85:
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
        else:
            lines.insert(
                i,
                rng.choice(
                    [
                        "a=candidate:1 1 udp 1 127.0.0.1 1 typ host",
                        "m=application 9 x",
                        "a=fingerprint:sha-256 zz",
                        "a=sctp-port:abc",
                        "a=max-message-size:-5",
                        "c=IN IP4",
                        "a=setup:bogus",
                        "a=ice-ufrag:",
                        "a=mid:",
                    ]
                ),
            )
    return "\r\n".join(lines)


def publish_body(rng: random.Random) -> bytes:
    r = rng.random()
    if r < 0.5:
        return (
            "{"
            + f'"data":{value(rng)}'
            + (f',"topic":{value(rng)}' if rng.random() < 0.3 else "")
            + "}"
        ).encode()
    if r < 0.8:
        return value(rng).encode()
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))


def offer_body(rng: random.Random, sdp: str) -> bytes:
    r = rng.random()
    if r < 0.6:
        return json.dumps({"sdp": sdp_mutation(rng, sdp), "type": "offer"}).encode()
    if r < 0.8:
        return ('{"sdp":' + value(rng) + ',"type":"offer"}').encode()
    return value(rng).encode()
