"""Log forging (CWE-117): a client-chosen string with a line break in it must not start a
line of its own in the text log of a real ``serve``."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.serve_process import serve

FORGED = "2026-01-01 00:00:00,000 CRITICAL transports.server: forged"


def test_a_query_parameter_name_cannot_forge_a_log_line(tmp_path: Path) -> None:
    # An unknown parameter's (percent-decoded) name is named in the refusal's log line; a
    # %0A in it ended that line, and the rest read as a record of its own.
    with serve(tmp_path, "--rate", "0", "--transports", "poll") as served:
        for raw in ("%0A", "%0D%0A", "%0D"):
            name = f"x{raw}{FORGED.replace(' ', '%20')}"
            r = httpx.get(f"{served.url}/poll?{name}=1&timeout=0", timeout=10)
            assert r.status_code == 400, r.text
        r = httpx.get(f"{served.url}/poll?x%1B%5B2J=1&timeout=0", timeout=10)  # ESC [2J
        assert r.status_code == 400
        text = served.output()
    lines = text.splitlines()
    assert not [line for line in lines if line.startswith(FORGED[:24])], text[-2000:]
    assert any("unknown query parameter" in line for line in lines), text[-2000:]
    assert "\x1b" not in text
