"""docs/bench.md's direwolf recipes, run: a satellite-side TNC (the flight software's serial radio
on a pty that socat bridges to direwolf's KISS port) and a ground-side direwolf, their 9600 bit/s
G3RUH modems joined by audio instead of radios (direwolf's UDP audio input; its output through
ALSA's file plugin into a FIFO that socat sends to the other one's UDP port).

Skipped where direwolf or socat is not installed (`apt install direwolf socat`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .test_ground_cli import ENV, FLIGHTSW, ROOT, run_cli

pytestmark = pytest.mark.skipif(not (shutil.which("direwolf") and shutil.which("socat")),
                                reason="direwolf and socat are not installed")

DIREWOLF_CONF = """ADEVICE UDP:{udp_in} {pcm}
ARATE 48000
CHANNEL 0
MYCALL {call}
MODEM 9600
KISSPORT {kiss}
AGWPORT 0
{extra}"""


def _free_port_below_49152(kind: socket.SocketKind) -> int:
    """A free port direwolf accepts: it takes KISSPORT only up to 49151 (above, it uses 8001)."""
    for port in random.sample(range(20_000, 49_152), 200):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port below 49152")


async def _listening(port: int, proc: asyncio.subprocess.Process, log: Path) -> None:
    async with asyncio.timeout(20):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                if proc.returncode is not None:
                    raise AssertionError((await asyncio.to_thread(log.read_text))[-2000:]) from None
                await asyncio.sleep(0.1)
                continue
            writer.close()
            await writer.wait_closed()
            return


@contextlib.asynccontextmanager
async def processes() -> AsyncIterator[list[asyncio.subprocess.Process]]:
    started: list[asyncio.subprocess.Process] = []
    try:
        yield started
    finally:
        for proc in reversed(started):
            if proc.returncode is None:
                proc.terminate()
        for proc in started:
            async with asyncio.timeout(20):
                await proc.wait()


async def _spawn(started: list[asyncio.subprocess.Process], log: Path, *argv: str, cwd: Path,
                 env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    with open(log, "wb") as out:
        proc = await asyncio.create_subprocess_exec(*argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                                    stdout=out, stderr=subprocess.STDOUT)
    started.append(proc)
    return proc


@pytest.mark.timeout(180)
async def test_flight_software_on_a_pty_bridged_to_direwolf_talks_to_the_ground_through_modems(
        tmp_path: Path) -> None:
    sat_kiss, ground_kiss = (_free_port_below_49152(socket.SOCK_STREAM) for _ in range(2))
    sat_udp, ground_udp = (_free_port_below_49152(socket.SOCK_DGRAM) for _ in range(2))
    home = tmp_path / "home"  # ALSA reads the two "audio cables" from ~/.asoundrc
    home.mkdir()
    (home / ".asoundrc").write_text(
        f'pcm.satout {{ type file; slave.pcm "null"; file "{tmp_path}/sat.fifo"; format "raw" }}\n'
        f'pcm.gndout {{ type file; slave.pcm "null"; file "{tmp_path}/gnd.fifo"; format "raw" }}\n')
    os.mkfifo(tmp_path / "sat.fifo")
    os.mkfifo(tmp_path / "gnd.fifo")
    (tmp_path / "sat.conf").write_text(DIREWOLF_CONF.format(udp_in=sat_udp, pcm="satout", call="UN0SAT-1",
                                                            kiss=sat_kiss, extra=""))
    # The audio loop never carries silence, so a receiver's DCD stays on after each burst: both
    # sides transmit full duplex here (the satellite's through [link] full_duplex).
    (tmp_path / "gnd.conf").write_text(DIREWOLF_CONF.format(udp_in=ground_udp, pcm="gndout", call="UN0GND",
                                                            kiss=ground_kiss, extra="FULLDUP ON\n"))
    config = tmp_path / "sat.toml"
    text = (ROOT / "deploy" / "sim.toml").read_text()
    radio = 'backend = "sim"\ndevice = "radio.tty"\nbaud = 115200\nkiss_tcp_port = 8001\n'
    assert radio in text
    text = text.replace(radio, f'backend = "real"\ndevice = "{tmp_path}/sat-radio"\nbaud = 9600\n')
    text = text.replace("[link]\n", "[link]\nfull_duplex = true\n")
    text = text.replace('data_dir = "var/sim"', f'data_dir = "{tmp_path / "sat"}"').replace("fsync = true", "fsync = false")
    config.write_text(text)
    dw_env = {**os.environ, "HOME": str(home)}
    async with processes() as started:
        for fifo, port in (("sat.fifo", ground_udp), ("gnd.fifo", sat_udp)):
            await _spawn(started, tmp_path / f"{fifo}.log", "socat", "-u", "-b", "1024", f"OPEN:{tmp_path / fifo}",
                         f"UDP-SENDTO:127.0.0.1:{port}", cwd=tmp_path)
        for name, port in (("sat", sat_kiss), ("gnd", ground_kiss)):
            proc = await _spawn(started, tmp_path / f"{name}.log", "direwolf", "-c", f"{name}.conf", "-t", "0",
                                cwd=tmp_path, env=dw_env)
            await _listening(port, proc, tmp_path / f"{name}.log")
        # the satellite-side TNC: a pty bridged to the satellite direwolf's KISS port
        await _spawn(started, tmp_path / "bridge.log", "socat", f"pty,link={tmp_path}/sat-radio,raw,echo=0",
                     f"tcp:127.0.0.1:{sat_kiss}", cwd=tmp_path)
        async with asyncio.timeout(10):
            while not (tmp_path / "sat-radio").exists():
                await asyncio.sleep(0.05)
        await _spawn(started, tmp_path / "sim.log", *FLIGHTSW, "sim", "--config", str(config), "--duration", "120",
                     cwd=tmp_path, env=ENV)
        async with asyncio.timeout(30):
            while not (tmp_path / "sat" / "uplink.keys").exists():
                await asyncio.sleep(0.1)
        # a ground computer: its own direwolf, the mission key given by --key-file
        station = ["--config", str(config), "--kiss", f"127.0.0.1:{ground_kiss}",
                   "--key-file", str(tmp_path / "sat" / "uplink.keys"), "--db", str(tmp_path / "g.sqlite3")]
        sent = await run_cli("ground", "send", "link.SEND_BEACON_NOW", *station, cwd=tmp_path)
        assert sent.returncode == 0 and "#1: SUCCESS" in sent.stdout, (sent.stderr, (tmp_path / "sim.log").read_text()[-1500:])
        catalog = await run_cli("ground", "catalog", "--downloads", "dl", "--timeout", "60", *station, cwd=tmp_path)
        assert catalog.returncode == 0, catalog.stderr
        upload = tmp_path / "plan.bin"
        upload.write_bytes(os.urandom(3000))
        up = await run_cli("ground", "upload", str(upload), "--timeout", "60", *station, cwd=tmp_path, limit=90)
        assert up.returncode == 0, up.stderr
    assert (tmp_path / "dl" / "catalog.json").is_file()
    assert (tmp_path / "sat" / "cfdp" / "quarantine" / "plan.bin").read_bytes() == upload.read_bytes()
    heard = (tmp_path / "sat.log").read_text(errors="replace")
    assert "UN0GND>UN0SAT-1" in heard  # the satellite's direwolf demodulated the ground's frames
