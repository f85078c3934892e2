"""`flightsw ground send` and `flightsw ground export` against `flightsw sim` in real processes."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from flightsw.core.atomic_store import AtomicStore
from flightsw.core.state import StateStore

ROOT = Path(__file__).resolve().parents[2]
FLIGHTSW = [sys.executable, "-m", "flightsw.cli"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(tmp_path: Path, port: int) -> Path:
    text = (ROOT / "deploy" / "sim.toml").read_text()
    text = text.replace('data_dir = "var/sim"', f'data_dir = "{tmp_path / "sat"}"')
    text = text.replace("kiss_tcp_port = 8001", f"kiss_tcp_port = {port}")
    text = text.replace("fsync = true", "fsync = false")
    path = tmp_path / "sim.toml"
    path.write_text(text)
    return path


@contextlib.asynccontextmanager
async def running_sim(tmp_path: Path, config: Path, port: int, duration: float) -> AsyncIterator[None]:
    """`flightsw sim` in its own process, once its simulated transceiver's KISS port listens;
    terminated on the way out (its log is in sim.log)."""
    log_path = tmp_path / "sim.log"
    with open(log_path, "wb") as log:
        sat = await asyncio.create_subprocess_exec(
            *FLIGHTSW, "sim", "--config", str(config), "--duration", str(duration),
            cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL, stderr=log)
    try:
        async with asyncio.timeout(30):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    assert sat.returncode is None, f"sim died: {log_path.read_text()[-2000:]}"
                    await asyncio.sleep(0.1)
                    continue
                writer.close()
                await writer.wait_closed()
                break
        yield
    finally:
        if sat.returncode is None:
            sat.terminate()
        async with asyncio.timeout(20):
            await sat.wait()


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


async def run_cli(*args: str, cwd: Path, limit: float = 60.0) -> Result:
    proc = await asyncio.create_subprocess_exec(*FLIGHTSW, *args, cwd=cwd, env=ENV,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        async with asyncio.timeout(limit):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def test_send_by_name_and_export_csv(tmp_path: Path) -> None:
    port = _free_port()
    config = _config(tmp_path, port)
    async with running_sim(tmp_path, config, port, duration=40):
        common = ["ground", "--config", str(config), "--kiss", f"127.0.0.1:{port}", "--db", str(tmp_path / "g.sqlite3")]
        bad = await run_cli(*common, "send", "link.SET_BEACON_PERIOD", "value=2", cwd=tmp_path)
        assert bad.returncode == 2 and "outside" in bad.stderr
        ok = await run_cli(*common, "send", "link.SET_BEACON_PERIOD", "value=45", "--timeout", "5", cwd=tmp_path)
        assert ok.returncode == 0, ok.stderr
        assert "link.SET_BEACON_PERIOD #1: SUCCESS" in ok.stdout
        # The beacon queued by this command goes down before the command's completion.
        beacon = await run_cli(*common, "send", "link.SEND_BEACON_NOW", "--timeout", "5", cwd=tmp_path)
        assert beacon.returncode == 0 and "#2: SUCCESS" in beacon.stdout, beacon.stderr
        export = await run_cli(*common, "export", "--since", "600", "--csv", cwd=tmp_path)
        assert export.returncode == 0, export.stderr
        rows = list(csv.DictReader(io.StringIO(export.stdout)))
        assert any(r["name"] == "beacon.callsign" and r["value"] == "UN0SAT" for r in rows)


async def test_a_sequence_is_checked_on_the_ground_and_runs_on_board(tmp_path: Path) -> None:
    port = _free_port()
    config = _config(tmp_path, port)
    common = ["ground", "--config", str(config), "--kiss", f"127.0.0.1:{port}", "--db", str(tmp_path / "g.sqlite3")]
    bad = tmp_path / "bad.seq"
    bad.write_text("sequence beacon\n+1 link.SET_BEACON_PERIOD [45]\n+2 link.SET_BEACON_PERIOD [2]\n")
    refused = await run_cli(*common, "sequence", str(bad), "--check", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().endswith("line 3: link.SET_BEACON_PERIOD: value=2 outside [5, 600]"), refused.stderr
    good = tmp_path / "good.seq"
    good.write_text("# a beacon period change, then a no-op\nsequence beacon\n"
                    "+1 link.SET_BEACON_PERIOD [45]\n+2 seq.NO_OP\n")
    checked = await run_cli(*common, "sequence", str(good), "--check", cwd=tmp_path)
    assert checked.returncode == 0 and checked.stdout.strip() == "beacon: 2 step(s) OK", checked.stderr
    async with running_sim(tmp_path, config, port, duration=40):
        sent = await run_cli(*common, "sequence", str(good), "--inline", cwd=tmp_path)
        assert sent.returncode == 0 and "sequence beacon stored on board" in sent.stdout, sent.stderr
        await asyncio.sleep(5.0)  # both steps run on board (1 s and 2 s after it stored them)
    # what the satellite persisted: both steps taken from the store, the first one's effect saved
    state = StateStore(tmp_path / "sat" / "state")
    state.load()
    assert state.get("sequencer.schedule") == {"next_id": 3, "items": []}
    params = AtomicStore(tmp_path / "sat" / "params", 1).load().value
    assert params["link.beacon_period"] == 45, params


def _seed_archive(path: Path, seqs: list[int], head: int) -> None:
    """An archive that holds some numbered records (as if played back earlier) and knows the head."""
    import msgpack

    from flightsw.ground.archive import Archive

    archive = Archive(path)
    rows = [(n, 1, 0xFFFF, 99, float(n), None, msgpack.packb([0xFFFF, 99, float(n), None, []]), False, "playback")
            for n in seqs]
    archive.call_blocking(archive.store_records, rows, 0.0, head)
    archive.close()


async def test_gaps_are_shown_and_requested_and_the_playback_fills_them(tmp_path: Path) -> None:
    port = _free_port()
    config = _config(tmp_path, port)
    db = tmp_path / "g.sqlite3"
    _seed_archive(db, [0, 1, 2, 3, 4, 8, 9], head=12)
    common = ["ground", "--config", str(config), "--kiss", f"127.0.0.1:{port}", "--db", str(db)]
    shown = await run_cli(*common, "gaps", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "missing: 5 records in 2 gaps" in shown.stdout
    assert "#5-#7 (3)" in shown.stdout and "#10-#11 (2)" in shown.stdout
    async with running_sim(tmp_path, config, port, duration=60):
        await asyncio.sleep(8.0)  # the satellite records its first dozen records
        asked = await run_cli(*common, "gaps", "--request", "--wait", "20", cwd=tmp_path)
        assert asked.returncode == 0, asked.stdout + asked.stderr
        assert "playback.REQUEST_RANGES 5-7,10-11: SUCCESS" in asked.stdout
        assert "after playback: 0 of the records asked for still missing" in asked.stdout
    after = await run_cli(*common, "gaps", cwd=tmp_path)
    assert "#5-#7" not in after.stdout and "#10-#11" not in after.stdout
    missing = await run_cli("ground", "--db", str(tmp_path / "none.sqlite3"), "gaps", cwd=tmp_path)
    assert missing.returncode == 2 and "no archive" in missing.stderr


def test_record_table_is_bounded_like_the_frames(tmp_path: Path) -> None:
    import msgpack

    from flightsw.ground.archive import Archive

    archive = Archive(tmp_path / "a.sqlite3", max_frames=500)
    try:
        for batch in range(1000):  # pruning runs every 1000 stores
            rows = [(batch, 1, 1, 1, float(batch), None, msgpack.packb([1, 1, float(batch), None, []]), False,
                     "playback")]
            archive.call_blocking(archive.store_records, rows, 0.0, batch + 1)
        count, low = archive.call_blocking(lambda: archive.db.execute(
            "SELECT COUNT(*), MIN(seq) FROM records").fetchone())
        assert count == 500 and low == 500
        assert archive.call_blocking(archive.record_gaps, 0) == [(0, 499)]  # pruned: a gap again
        assert archive.call_blocking(archive.record_gaps, 500) == []
    finally:
        archive.close()


def test_the_command_line_parser_leaves_the_ground_stack_unimported() -> None:
    """`flightsw run` builds the whole parser: the ground commands import their station, archive
    and CFDP modules only when they run (issue 15: the run path's import time), and the export
    table names the parser offers are the exporter's."""
    from flightsw.ground.cli import EXPORT_TABLES
    from flightsw.ground.export import TABLES

    assert EXPORT_TABLES == TABLES
    heavy = ("flightsw.ground.station", "flightsw.ground.archive", "flightsw.ground.files", "flightsw.filetransfer",
             "cfdppy", "sqlite3")
    code = ("import sys; from flightsw.cli import build_parser; build_parser(); "
            f"print(sorted(set(sys.modules) & {set(heavy)!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True)
    assert done.stdout.strip() == "[]"
