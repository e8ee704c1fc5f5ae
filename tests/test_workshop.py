"""The workshop's exercises run as written: every command in an exercise's **Measure** step of
``workshop/README.md`` is run (``./dev X`` as ``python -m transports X``, ``.venv/bin/python``
as this interpreter), against the demo server the set-up section starts, and its output must
show what the exercise talks about."""

from __future__ import annotations

import csv
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import UNIT, require_executable
from transports.netutil import free_port
from transports.processes import stop

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "workshop" / "README.md"
SECTION = re.compile(r"^### Exercise (\d+) — (.+)$", re.M)
BLOCK = re.compile(r"```sh\n(.*?)```", re.S)


def exercises() -> dict[int, tuple[str, list[str]]]:
    """Exercise number → (title, the command lines of its Measure step)."""
    text = GUIDE.read_text()
    heads = list(SECTION.finditer(text))
    out = {}
    for head, nxt in zip(heads, [*heads[1:], None], strict=True):
        body = text[head.end() : nxt.start() if nxt else len(text)]
        measure = body.split("**Measure.**", 1)[1].split("**Explain.**", 1)[0]
        lines = [ln for b in BLOCK.findall(measure) for ln in b.splitlines() if ln.strip()]
        out[int(head.group(1))] = (head.group(2), lines)
    return out


def setup_command() -> str:
    """The `./dev demo ...` line of the set-up section."""
    return next(ln for ln in GUIDE.read_text().splitlines() if ln.startswith("./dev demo "))


def translate(line: str, url: str, out: Path) -> str:
    py = shlex.quote(sys.executable)
    line = re.sub(r"(^|\s)\.venv/bin/python\b", lambda m: m.group(1) + py, line)
    line = re.sub(r"^\./dev ", f"{py} -m transports ", line)
    return line.replace("http://127.0.0.1:8000", url).replace("lab-results/", f"{out}/")


class Workshop:
    def __init__(self, url: str, env: dict[str, str], tmp: Path) -> None:
        self.url, self.env, self.tmp = url, env, tmp

    def run(self, number: int, timeout: float = 120) -> str:
        """Run every command of exercise ``number``; their combined output."""
        _, lines = exercises()[number]
        assert lines, f"exercise {number} has no command"
        outputs = []
        for line in lines:
            cmd = translate(line, self.url, self.tmp)
            done = subprocess.run(
                ["bash", "-c", cmd],
                capture_output=True,
                text=True,
                env=self.env,
                timeout=timeout * UNIT,
                cwd=ROOT,
            )
            outputs.append(f"$ {line}\n{done.stdout}{done.stderr}")
        text = "\n".join(outputs)
        print(text)
        return text


@pytest.fixture(scope="module")
def workshop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workshop]:
    require_executable("mosquitto")
    tmp = tmp_path_factory.mktemp("workshop")
    port = free_port()
    token = "workshop-admin-token"
    env = {**os.environ, "TRANSPORT_LAB_ADMIN_TOKEN": token, "PYTHONPATH": str(ROOT)}
    env["COLUMNS"] = "200"  # rich tables as wide as on a laptop terminal, not cut at 80
    args = shlex.split(setup_command())[1:]  # drop ./dev
    log = (tmp / "demo.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "transports", *args, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/api/info", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp / "demo.log").read_text()
            time.sleep(0.1)
        printed = (tmp / "demo.log").read_text()
        writer = re.search(r"writer invite\): \S+#token=(\S+)", printed)
        observer = re.search(r"observer\): \S+#token=(\S+)", printed)
        assert writer, printed
        assert observer, printed
        env.update(WRITER=writer.group(1), OBSERVER=observer.group(1))
        yield Workshop(url, env, tmp)
    finally:
        stop(proc, grace=15)
        log.close()


def summary(path: Path) -> dict[str, dict[str, str]]:
    with path.open() as f:
        return {row["transport"]: row for row in csv.DictReader(f)}


def test_the_guide_has_at_least_eight_exercises_each_with_a_command() -> None:
    found = exercises()
    assert len(found) >= 8
    assert sorted(found) == list(range(1, len(found) + 1))
    text = GUIDE.read_text()
    for number, (title, lines) in found.items():
        assert lines, (number, title)
    for word in ("**Predict.**", "**Measure.**", "**Explain.**", "**Fix.**", "Instructor notes"):
        assert text.count(word) >= len(found), word
    assert "workshop/README.md" in (ROOT / "README.md").read_text()


def test_ex1_bytes_per_update(workshop: Workshop) -> None:
    out = workshop.run(1)
    assert "B/msg down" in out
    rows = summary(workshop.tmp / "ex1" / "summary.csv")
    down = {t: float(rows[t]["per_msg_down"]) for t in ("ws", "sse", "poll")}
    assert down["ws"] < down["sse"] < down["poll"], down
    assert float(rows["poll"]["per_msg_up"]) > 0, rows  # a request per answer
    assert float(rows["ws"]["per_msg_up"]) == 0, rows


def test_ex2_heartbeat_cost(workshop: Workshop) -> None:
    out = workshop.run(2)
    rows = re.findall(r"│ ws\s+│\s+([\d.]+) │\s+([\d.]+) │.*?│\s+([\d.]+) │", out)
    assert [r[0] for r in rows] == ["0.5", "2"], out
    (_, fast, fast_cost), (_, slow, slow_cost) = rows
    assert float(fast) < float(slow)
    assert float(fast_cost) > float(slow_cost)


def test_ex3_dead_network_detection(workshop: Workshop) -> None:
    out = workshop.run(3)
    assert "detect s" in out
    for name in ("ws", "poll"):
        row = re.search(
            rf"│ {name}\s+│ blackhol… │\s+([\d.]+) │\s+([\d.]+) │\s+\d+ │\s+(\d+) │\s+(\d+) │", out
        )
        assert row, (name, out)
        assert (row.group(3), row.group(4)) == ("0", "0"), row.group(0)  # lost, dup


def test_ex4_history_on_join(workshop: Workshop) -> None:
    out = workshop.run(4)
    assert out.count("#1 py: hello from exercise 4") == 2, out


def test_ex5_idempotent_publish(workshop: Workshop) -> None:
    out = workshop.run(5)
    seqs = re.findall(r'"seq": (\d+)', out)
    assert len(seqs) == 2, out
    assert seqs[0] == seqs[1]


def test_ex6_gap_when_history_no_longer_reaches_back(workshop: Workshop) -> None:
    out = workshop.run(6)
    back = re.search(r"back: (\d+) missed update\(s\) replayed, (\d+) beyond history", out)
    assert back, out
    assert int(back.group(2)) > 0


def test_ex7_compression_threshold(workshop: Workshop) -> None:
    out = workshop.run(7)
    assert "order book" in out
    saved = re.search(r"\((\d+) % saved\)", out)
    assert saved, out
    assert int(saved.group(1)) > 10


def test_ex8_cursor_baseline(workshop: Workshop) -> None:
    """The browser half (10 % loss) is tests/test_demos_browser.py's cursors test."""
    out = workshop.run(8)
    rates = re.findall(r"(\w+): (\d+) bot updates in 3 s \((\d+)/s\)", out)
    assert [r[0] for r in rates] == ["ws", "webrtc"], out
    assert all(int(r[2]) >= 15 for r in rates), rates


def test_ex9_reconnect_storm(workshop: Workshop) -> None:
    out = workshop.run(9, timeout=180)
    peaks = dict(re.findall(r"│ (exponential|full_jitter)\s+│\s+(\d+) │", out))
    assert set(peaks) == {"exponential", "full_jitter"}, out
    assert int(peaks["full_jitter"]) < int(peaks["exponential"]), peaks


def test_ex10_authorization(workshop: Workshop) -> None:
    out = workshop.run(10)
    blocks = out.split("\n$ ")
    reasons = [re.search(r"unauthorized|forbidden|bad_message", b) for b in blocks]
    got = [r.group(0) if r else None for r in reasons]
    assert got == ["unauthorized", "forbidden", "forbidden", "bad_message", "unauthorized"], out
    assert '"seq"' not in out  # nothing was stored


def test_ex11_server_cpu(workshop: Workshop) -> None:
    out = workshop.run(11)
    assert "CPU ms /1k" in out
    rows = summary(workshop.tmp / "ex11" / "summary.csv")
    assert float(rows["poll"]["cpu_ms_per_1000"]) > 0
    assert float(rows["ws"]["cpu_ms_per_1000"]) > 0
