"""Issue 14: uplink counters with several ground processes and computers, in real processes.

The satellite drops a command or file PDU whose counter is not above the last it accepted. Two
ground processes (the live view and a CLI ``catalog``) used to keep separate counters, so one side's
PDUs were dropped as replays and a transfer never finished; a second computer (its own archive and
downloads folder) started again at 1.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from .test_ground_cli import Result, _config, _free_port, run_cli, running_sim

REFUSALS = ("link.counter_refused", "files.pdu_rejected", "link.uplink_rejected")
BIT_RATE = 38_400  # the same code as at 9600, a quicker test


def _fast_config(tmp_path: Path, port: int) -> Path:
    path = _config(tmp_path, port)
    path.write_text(path.read_text().replace("bit_rate = 9600", f"bit_rate = {BIT_RATE}"))
    return path


def _events(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return [(str(n), str(t)) for n, t in conn.execute("SELECT name, text FROM events ORDER BY id")]


def _ok(result: Result, what: str) -> None:
    assert result.returncode == 0, f"{what}: {result.stdout[-800:]} {result.stderr[-1500:]}"


async def test_two_ground_processes_share_counters_without_a_replay_rejection(tmp_path: Path) -> None:
    port = _free_port()
    config = _fast_config(tmp_path, port)
    db = tmp_path / "station.sqlite3"
    common = ["ground", "--config", str(config), "--kiss", f"127.0.0.1:{port}", "--db", str(db)]
    upload = tmp_path / "plan.bin"
    upload.write_bytes(bytes(range(256)) * 12)  # 3 KB: a few dozen signed file PDUs

    async def uploader() -> None:  # commands and uplinked file data
        for round_ in range(3):
            _ok(await run_cli(*common, "send", "exec.NO_OP", cwd=tmp_path), "send")
            _ok(await run_cli(*common, "upload", str(upload), "--dest", f"plan{round_}.bin",
                              "--timeout", "60", cwd=tmp_path, limit=90), "upload")

    async def cataloguer() -> None:  # commands and uplinked ACK/NAK/Finished PDUs of downloads
        for round_ in range(3):
            _ok(await run_cli(*common, "catalog", "--downloads", f"dl{round_}", "--timeout", "60",
                              cwd=tmp_path, limit=90), "catalog")  # a fresh downloads folder each time
            _ok(await run_cli(*common, "send", "link.NO_OP", cwd=tmp_path), "send")

    async with running_sim(tmp_path, config, port, duration=300):
        await asyncio.gather(uploader(), cataloguer())
    events = _events(db)
    assert [e for e in events if e[0] in REFUSALS] == []
    # both processes hear every frame; the archive keeps one copy (the other is a reception)
    received = {text.split()[1] for name, text in events if name == "files.file_received"}
    assert received == {f"plan{round_}.bin" for round_ in range(3)}, received
    for round_ in range(3):
        assert (tmp_path / f"dl{round_}" / "catalog.json").is_file()


async def test_a_second_computer_learns_the_counters_from_the_satellite(tmp_path: Path) -> None:
    port = _free_port()
    config = _fast_config(tmp_path, port)
    first = ["ground", "--config", str(config), "--kiss", f"127.0.0.1:{port}", "--db", str(tmp_path / "a.sqlite3")]
    second = ["ground", "--config", str(config), "--kiss", f"127.0.0.1:{port}", "--db", str(tmp_path / "b.sqlite3")]
    async with running_sim(tmp_path, config, port, duration=200):
        for _ in range(3):
            _ok(await run_cli(*first, "send", "exec.NO_OP", cwd=tmp_path), "first send")
        _ok(await run_cli(*first, "catalog", "--downloads", "dl-a", "--timeout", "60", cwd=tmp_path), "first catalog")
        # the second computer: empty archive, empty downloads folder, counters at 0
        sent = await run_cli(*second, "send", "exec.NO_OP", cwd=tmp_path)
        _ok(sent, "second send")
        # counter 1 refused (the first used 1-4: three no-ops and the catalog command): signed again as 5
        assert "exec.NO_OP #5: SUCCESS" in sent.stdout, sent.stdout
        _ok(await run_cli(*second, "catalog", "--downloads", "dl-b", "--timeout", "60", cwd=tmp_path),
            "second catalog")
        # and the first goes on above what the second used
        _ok(await run_cli(*first, "send", "exec.NO_OP", cwd=tmp_path), "first send again")
    assert (tmp_path / "dl-b" / "catalog.json").is_file()
