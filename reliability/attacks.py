"""The uplink attack campaign: a running simulated satellite (`flightsw sim`, its own process, the
reference mission's config) attacked over its real KISS TCP port, observed as an operator sees it.

The legitimate ground (``GroundStation`` and its CFDP side, on one KISS connection) commands the
satellite and uploads a file; every frame it transmits is captured. An attacker on a second KISS
connection then sends replays of the captured commands and file PDUs, every single-bit flip of a
fresh authenticated command frame, commands under wrong, inactive and unknown keys, genuine
commands with old, overflowing, reserved and far-jumping counters, oversized and truncated
frames, KISS escape abuse, and a flood. What the satellite did is read from its own downlink: a
housekeeping packet of the link's and dispatcher's counters added to the config, the verdicts
it sends for every command its dispatcher receives, and the files in its upload quarantine.

The figure that must be 0: commands or file PDUs accepted without a valid key and a fresh
counter. Also: a legitimate command during and after the flood executes; the satellite process's
resident memory before and after.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import re
import shutil
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
from spacepackets.ccsds.spacepacket import PacketType

from flightsw.link import ax25
from flightsw.link.auth import MAX_COUNTER, KeyRing, mac
from flightsw.link.packets import CRC_LEN, PRIMARY_HEADER_LEN, Apid, build, crc16, split_packets
from hal import kiss

REPO = Path(__file__).resolve().parents[1]
BIT_RATE = 9600.0  # the reference mission's uplink
UPLINK_CHANNELS = [
    "link.frames_received", "link.commands_executed", "link.auth_failures", "link.replays", "link.duplicates",
    "link.crc_failures", "link.malformed", "link.counter_refusals", "link.frames_foreign",
    "link.frames_wrong_source", "link.frames_wrong_control", "link.frames_wrong_pid", "link.kiss_oversize",
    "link.kiss_wrong_port", "link.uplink_counter",
    "cmd.received", "cmd.accepted_total", "files.pdus_up", "files.pdus_rejected", "files.files_received",
]
UPLINK_PACKET = f"""
# added by the reliability campaign: the uplink's counters, twice a second
[[telemetry.packets]]
name = "hk_uplink"
rate_hz = 2.0
channels = {UPLINK_CHANNELS!r}
""".replace("'", '"')


@dataclass
class Attack:
    name: str
    what: str
    frames: int = 0  #: frames (or KISS byte streams) the attacker sent
    delivered: int = 0  #: frames the satellite's link received meanwhile (its counter)
    executed: int = 0  #: commands + file PDUs the satellite accepted meanwhile (must be 0)
    counters: dict[str, int] = field(default_factory=dict)  #: the satellite's counter changes: how it refused

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class CampaignResult:
    quick: bool
    attacks: list[Attack] = field(default_factory=list)
    legit_commands: int = 0  #: legitimate commands sent (each must complete)
    legit_completed: int = 0
    legit_file_pdus: int = 0  #: file PDUs of the legitimate upload
    upload_ok: bool = False
    accepted_without_key: int = 0  #: THE figure: commands/PDUs accepted that no legit ground sent
    unexplained_verdicts: int = 0  #: verdicts downlinked for counters the ground never used
    files_in_quarantine: int = 0  #: files received on board (the legitimate upload only)
    flood_frames: int = 0
    flood_command_during_s: float | None = None  #: seconds for a legit command sent into the flood
    flood_command_after_s: float | None = None
    rss_before_kb: int = 0
    rss_after_kb: int = 0
    rss_peak_kb: int = 0  #: the process's high-water mark (VmHWM) at the end
    counters: dict[str, Any] = field(default_factory=dict)  #: the satellite's counters at the end
    wall_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["attacks"] = [a.to_json() for a in self.attacks]
        return out


# --- the satellite process ----------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def campaign_config(data_dir: Path, port: int, target: Path) -> Path:
    """deploy/sim.toml on a private data directory and KISS port, plus the uplink counters packet."""
    text = (REPO / "deploy" / "sim.toml").read_text()
    text, storage = re.subn(r'(\[storage\]\s*\ndata_dir\s*=\s*)"[^"]*"', rf'\1"{data_dir}"', text)
    text, kiss_port = re.subn(r"kiss_tcp_port\s*=\s*\d+", f"kiss_tcp_port = {port}", text)
    if storage != 1 or kiss_port != 1:
        raise RuntimeError("deploy/sim.toml layout changed: update reliability/attacks.py")
    target.write_text(text + UPLINK_PACKET)
    return target


def rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in kB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def flightsw_command() -> list[str]:
    script = Path(sys.executable).with_name("flightsw")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from flightsw.cli import main; sys.exit(main())"]


async def wait_until_serving(proc: asyncio.subprocess.Process, data_dir: Path, port: int, log: Path,
                             limit_s: float = 60.0) -> None:
    """Until a started `flightsw sim` has written its uplink keys and accepts KISS connections
    (a process that exits first is an error naming its log)."""
    async with asyncio.timeout(limit_s):
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"flightsw sim exited {proc.returncode}: see {log}")
            if (data_dir / "uplink.keys").exists():
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    pass
                else:
                    writer.close()
                    return
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def satellite_process(scratch: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, Path, int]]:
    """`flightsw sim` with the campaign's config, until the context ends (then SIGTERM)."""
    data_dir = scratch / "sat"
    port = _free_port()
    config = await asyncio.to_thread(campaign_config, data_dir, port, scratch / "mission.toml")
    log = await asyncio.to_thread(open, scratch / "sat.log", "wb")  # closed below, after the process
    proc = await asyncio.create_subprocess_exec(*flightsw_command(), "sim", "--config", str(config),
                                                stdout=log, stderr=subprocess_stdout(), cwd=scratch)
    try:
        await wait_until_serving(proc, data_dir, port, scratch / "sat.log")
        yield proc, config, port
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(20):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


def subprocess_stdout() -> int:
    return asyncio.subprocess.STDOUT


# --- the legitimate ground and the attacker -------------------------------------------------------

class RecordingKiss:
    """The ground's KISS-over-TCP transport, keeping every AX.25 frame it transmits."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sent: list[bytes] = []
        self._decoder = kiss.KissDecoder(4096)

    async def connect(self) -> None:
        await self.inner.connect()

    async def read(self) -> bytes:
        data: bytes = await self.inner.read()
        return data

    async def write(self, data: bytes) -> None:
        self.sent.extend(f.payload for f in self._decoder.feed(data))
        await self.inner.write(data)

    async def close(self) -> None:
        await self.inner.close()


def airtime(frame: bytes) -> float:
    """The simulated channel's airtime of one frame at the uplink bit rate."""
    return (len(frame) + 4) * 8 / BIT_RATE


class Attacker:
    """A second KISS client on the satellite's port; paces frames to the air rate so every one
    reaches the satellite (``burst`` writes without pacing, for the flood)."""

    def __init__(self, port: int, header: bytes, keys: KeyRing, active_key: int) -> None:
        self.port = port
        self.header = header
        self.keys = keys
        self.active_key = active_key
        self.rng = random.Random(16)
        self.writer: asyncio.StreamWriter | None = None
        self.sent = 0

    async def connect(self) -> None:
        reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._drain_task = asyncio.create_task(self._discard(reader))  # the downlink it also gets

    @staticmethod
    async def _discard(reader: asyncio.StreamReader) -> None:
        while await reader.read(65536):
            pass

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()
        self._drain_task.cancel()

    async def raw(self, data: bytes, pace_s: float) -> None:
        assert self.writer is not None
        self.writer.write(data)
        await self.writer.drain()
        self.sent += 1
        await asyncio.sleep(pace_s)

    async def frame(self, frame: bytes, port: int = 0) -> None:
        await self.raw(kiss.encode(frame, port=port), airtime(frame) * 1.1 + 0.005)

    def signed(self, body: bytes, counter: int, *, key: bytes | None = None, key_id: int | None = None,
               apid: int = Apid.COMMAND) -> bytes:
        """A telecommand packet signed like the ground does, for any counter 0..2^32-1."""
        key_id = self.active_key if key_id is None else key_id
        key = self.keys.key(key_id) if key is None else key
        secondary = struct.pack(">BI", key_id, counter & 0xFFFFFFFF)
        draft = build(PacketType.TC, apid, counter & 0x3FFF, secondary, body + bytes(16))
        signed = draft[: PRIMARY_HEADER_LEN + len(secondary) + len(body)]
        return build(PacketType.TC, apid, counter & 0x3FFF, secondary, body + mac(key, signed))

    def ui(self, info: bytes) -> bytes:
        return self.header + info


async def _wait_fresh(station: Any, since: float, limit: float = 10.0) -> dict[str, Any]:
    """The uplink counters from a housekeeping packet received after ``since`` (wall clock)."""
    def fresh() -> bool:
        value = station.latest.get("link.frames_received")
        return value is not None and value.rx_time > since

    if not await station.wait_until(fresh, limit):
        raise RuntimeError("no housekeeping from the satellite: is it running?")
    return {name: station.latest[name].value for name in UPLINK_CHANNELS if name in station.latest}


async def counters_now(station: Any) -> dict[str, Any]:
    """Counters that include everything sent so far (the last frame's airtime and the link's
    processing are well under 0.8 s): a packet received more than 0.8 s after now."""
    return await _wait_fresh(station, time.time() + 0.8)


def _delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    return {k.split(".", 1)[1]: int(after[k]) - int(before.get(k, 0)) for k in after
            if k != "link.uplink_counter" and int(after[k]) != int(before.get(k, 0))}


# --- the campaign --------------------------------------------------------------------------------

async def run(scratch: Path, quick: bool = False, log: Any = print) -> CampaignResult:
    """The whole campaign (``quick``: a few frames of each attack, for the test suite)."""
    from flightsw.config import load
    from flightsw.config_check import offline_dictionary
    from flightsw.filetransfer.settings import entity_config_from
    from flightsw.ground.archive import Archive
    from flightsw.ground.dictionary import GroundDictionary
    from flightsw.ground.files import GroundFiles
    from flightsw.ground.station import GroundStation, TcpKiss
    from flightsw.link.settings import load_link_settings

    began = time.perf_counter()
    result = CampaignResult(quick=quick)
    await asyncio.to_thread(scratch.mkdir, parents=True, exist_ok=True)
    async with satellite_process(scratch) as (proc, config_path, port):
        config = await asyncio.to_thread(load, config_path)

        def export() -> str:
            with offline_dictionary(config) as d:
                return d.to_json()

        dictionary = GroundDictionary.from_json(await asyncio.to_thread(export))
        settings = load_link_settings(config)
        keys = await asyncio.to_thread(KeyRing.load, settings.key_file)
        archive = await asyncio.to_thread(Archive, scratch / "ground.sqlite3")
        transport = RecordingKiss(TcpKiss("127.0.0.1", port))
        await transport.connect()
        station = GroundStation(dictionary, keys, 0, ground=settings.ground, satellite=settings.callsign,
                                archive=archive, transport=transport)
        flight_entity = entity_config_from(config)
        assert flight_entity is not None
        files = GroundFiles(station, flight_entity, scratch / "downloads", bit_rate=settings.bit_rate,
                            tx_delay=settings.tx_delay)
        tasks = [asyncio.create_task(station.run()), asyncio.create_task(files.run())]
        attacker = Attacker(port, ax25.header(settings.callsign, settings.ground), keys, 0)
        await attacker.connect()
        quarantine = flight_entity.quarantine_dir
        try:
            await _campaign(result, station, files, attacker, proc.pid, quick, log, dictionary, scratch)
            result.files_in_quarantine = await asyncio.to_thread(_count_files, quarantine)
        finally:
            await attacker.close()
            files.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await transport.close()
            await asyncio.to_thread(archive.close)
    result.wall_s = round(time.perf_counter() - began, 1)
    return result


async def _legit(station: Any, result: CampaignResult, name: str = "exec.NO_OP") -> float | None:
    """One legitimate command with the ground's usual re-sends; seconds to its completion or None."""
    began = time.perf_counter()
    result.legit_commands += 1
    response = await station.command(name, {}, timeout=2.0, retries=8)
    if response is None or response.completion is None or response.completion.name != "SUCCESS":
        return None
    result.legit_completed += 1
    return round(time.perf_counter() - began, 2)


async def _campaign(result: CampaignResult, station: Any, files: Any, attacker: Attacker, pid: int, quick: bool,
                    log: Any, dictionary: Any, scratch: Path) -> None:
    rng = random.Random(16)
    start = await _wait_fresh(station, 0.0, limit=30.0)
    result.rss_before_kb = rss_kb(pid)[0]
    # -- the legitimate ground: commands and one file upload, every frame captured -----------------
    for _ in range(2 if quick else 5):
        if await _legit(station, result) is None:
            raise RuntimeError("a legitimate command did not complete before any attack")
    captured_commands = [f for f in station.transport.sent if _apid(f) == Apid.COMMAND]
    upload = scratch / "hello.seq"
    await asyncio.to_thread(upload.write_text, "+0 exec.NO_OP\n+10 exec.NO_OP\n")
    sent_before = len(station.transport.sent)
    transfer = await files.upload(upload, "hello.seq")
    outcome = await files.wait_upload(transfer, 60.0)
    result.upload_ok = outcome is not None and outcome.success
    captured_pdus = [f for f in station.transport.sent[sent_before:] if _apid(f) == Apid.FILE]
    result.legit_file_pdus = len(captured_pdus)
    opcode = dictionary.commands["exec.NO_OP"].opcode
    body = msgpack.packb([opcode, []], use_bin_type=True)
    base = station._last_counter  # the satellite's last accepted command counter
    fresh = iter(range(base + 1, base + 90_000))  # genuine fresh counters for frames made to fail
    forged_key = bytes(rng.randrange(256) for _ in range(32))

    async def attack(name: str, what: str, frames: list[bytes] | None = None, raw: list[bytes] | None = None) -> None:
        # the smoke version reads the counters once at the end, not around each attack
        before = {} if quick else result.counters or await counters_now(station)
        a = Attack(name, what)
        for frame in frames or []:
            await attacker.frame(frame)
            a.frames += 1
        for data in raw or []:
            await attacker.raw(data, airtime(data) * 1.1 + 0.005)
            a.frames += 1
        result.attacks.append(a)
        if quick:
            log(f"attack {name}: {a.frames} sent")
            return
        after = await counters_now(station)
        delta = _delta(before, after)
        a.delivered = delta.get("frames_received", 0)
        a.executed = delta.get("commands_executed", 0) + delta.get("pdus_up", 0)
        a.counters = {k: v for k, v in delta.items() if k not in ("frames_received",)}
        result.counters = after
        log(f"attack {name}: {a.frames} sent, {a.delivered} received by the satellite, {a.executed} executed")

    copies = 1 if quick else 10
    await attack("replay_commands", f"each captured command frame again, {copies}x",
                 [f for f in captured_commands for _ in range(copies)])
    await attack("replay_file_pdus", f"each captured file-PDU frame of the finished upload again, {copies}x",
                 [f for f in captured_pdus for _ in range(copies)])
    template = attacker.ui(attacker.signed(body, base + 1))
    bits = list(range(len(template) * 8))
    if quick:
        bits = bits[:: max(1, len(bits) // 24)]
    flips = []
    for bit in bits:
        frame = bytearray(attacker.ui(attacker.signed(body, next(fresh))))
        frame[bit // 8] ^= 1 << (bit % 8)
        flips.append(bytes(frame))
    await attack("bit_flips", f"{'a sample of' if quick else 'every'} single-bit flip of a fresh authenticated "
                 f"command frame ({len(template)} bytes), each on its own fresh counter", flips)
    fixed = []  # the attacker recomputes the CRC: only the MAC stands between the flip and execution
    packet_bits = range(ax25.HEADER_LEN * 8, (len(template) - CRC_LEN) * 8)
    for bit in (packet_bits if not quick else packet_bits[:: max(1, len(packet_bits) // 16)]):
        frame = bytearray(attacker.ui(attacker.signed(body, next(fresh))))
        frame[bit // 8] ^= 1 << (bit % 8)
        frame[-CRC_LEN:] = struct.pack(">H", crc16(bytes(frame[ax25.HEADER_LEN : -CRC_LEN])))
        fixed.append(bytes(frame))
    await attack("bit_flips_crc_fixed", f"{'a sample of' if quick else 'every'} single-bit flip of the packet "
                 "(CRC excluded), each with its CRC recomputed by the attacker, on fresh counters", fixed)
    wrong = [attacker.ui(attacker.signed(body, next(fresh), key=forged_key)),  # the attacker's key, active id
             attacker.ui(attacker.signed(body, next(fresh), key=bytes(32))),
             attacker.ui(attacker.signed(body, next(fresh), key=_flip(attacker.keys.key(0))))]
    wrong += [attacker.ui(attacker.signed(body, next(fresh), key_id=k)) for k in attacker.keys.ids if k != 0]
    wrong += [attacker.ui(attacker.signed(body, next(fresh), key=forged_key, key_id=k)) for k in (9, 200, 255)]
    await attack("wrong_keys", "random, zero and one-bit-off keys under the active id; the ring's inactive "
                 "keys; unknown key ids", wrong)
    old = [attacker.ui(attacker.signed(body, c)) for c in (0, 1, base - 1, base)]
    await attack("old_counters", "genuine key, counters 0, 1 and the last two used", old)
    overflow = [attacker.ui(attacker.signed(body, c)) for c in
                (MAX_COUNTER, MAX_COUNTER - 1, MAX_COUNTER - 5, base + 100_001, 2**31, MAX_COUNTER + 1 + base)]
    await attack("counter_overflow", "genuine key: counters 2^32-1, in the SELECT_KEY reserve, beyond the window, "
                 "2^32 + last (wraps to the last used)", overflow)
    forged = attacker.ui(attacker.signed(body, next(fresh), key=forged_key))
    big = [forged + bytes(rng.randrange(256) for _ in range(n)) for n in ((241, 1000) if quick else (241, 1000, 1900, 2100, 5000))]
    big += [attacker.ui(attacker.signed(bytes(220), next(fresh), key=forged_key))]
    await attack("oversized", "frames beyond the link's 256-byte maximum, the radio's and the TNC's buffers", big)
    genuine = attacker.ui(attacker.signed(body, next(fresh)))
    cuts = range(len(genuine)) if not quick else range(0, len(genuine), 6)
    truncated = [attacker.ui(attacker.signed(body, next(fresh)))[:n] for n in cuts]
    await attack("truncated", f"a fresh authenticated command frame cut at {'every' if not quick else 'some'} length", truncated)
    await attack("kiss_escapes", "FESC before FEND, FESC + other bytes, FEND runs, escaped type bytes, other "
                 "ports and commands, a frame one byte per write", raw=_kiss_abuse(forged, attacker, fresh, body))
    # -- the flood: forged frames at twice the air rate, the channel never idle ----------------------
    before = result.counters if not quick else await counters_now(station)
    flood_s = 5.0 if quick else 60.0
    forged_frame = kiss.encode(attacker.ui(attacker.signed(body, next(fresh), key=forged_key)))

    async def flood() -> None:
        assert attacker.writer is not None
        end_at = time.perf_counter() + flood_s
        while time.perf_counter() < end_at:
            attacker.writer.write(forged_frame)
            await attacker.writer.drain()
            result.flood_frames += 1
            await asyncio.sleep(airtime(forged_frame) / 2)

    flooding = asyncio.create_task(flood())
    await asyncio.sleep(min(2.0, flood_s / 4))  # the channel is full of forged frames by now
    result.flood_command_during_s = await _legit(station, result)
    peak_during = rss_kb(pid)[0]
    await flooding
    after_flood = await counters_now(station)
    result.flood_command_after_s = await _legit(station, result)
    delta = _delta(before, after_flood)
    result.attacks.append(Attack("flood", f"forged frames at twice the air rate for {flood_s:.0f} s on a second "
                                 "KISS connection, a legitimate command sent into it",
                                 result.flood_frames, delta.get("frames_received", 0),
                                 delta.get("commands_executed", 0) + delta.get("pdus_up", 0)
                                 - (result.flood_command_during_s is not None),
                                 {k: v for k, v in delta.items() if k != "frames_received"}))
    log(f"attack flood: {result.flood_frames} sent, legit command during {result.flood_command_during_s} s, "
        f"after {result.flood_command_after_s} s, RSS during {peak_during} kB")
    end = await counters_now(station)
    result.counters = end
    rss, peak = rss_kb(pid)
    result.rss_after_kb, result.rss_peak_kb = rss, peak
    # -- the figure -----------------------------------------------------------------------------
    legit_executed = result.legit_completed
    executed = int(end["link.commands_executed"]) - int(start["link.commands_executed"])
    pdus = int(end["files.pdus_up"]) - int(start["files.pdus_up"])
    received = int(end["cmd.received"]) - int(start["cmd.received"])
    legit_counters = {c for c in station.responses if c <= station._last_counter}
    result.unexplained_verdicts = sum(1 for seq in station.responses if seq not in legit_counters)
    result.accepted_without_key = max(0, executed - legit_executed) + max(0, pdus - result.legit_file_pdus) \
        + max(0, received - legit_executed)


def _count_files(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if not p.name.endswith(".meta.json")) if folder.exists() else 0


def _flip(key: bytes) -> bytes:
    return bytes([key[0] ^ 1]) + key[1:]


def _apid(frame: bytes) -> int | None:
    packets, _ = split_packets(frame[ax25.HEADER_LEN :])
    return packets[0].apid if packets else None


def _kiss_abuse(forged: bytes, attacker: Attacker, fresh: Any, body: bytes) -> list[bytes]:
    FEND, FESC, TFEND, TFESC = kiss.FEND, kiss.FESC, kiss.TFEND, kiss.TFESC  # noqa: N806
    inner = kiss.escape(forged)
    streams = [
        bytes([FEND, 0x00]) + inner + bytes([FESC, FEND]),  # FESC right before the closing FEND
        bytes([FEND, 0x00]) + inner.replace(bytes([FESC, TFEND]), bytes([FESC, 0x41])) + bytes([FEND]),
        bytes([FEND]) * 2000,
        bytes([FEND, FESC, TFEND]) + inner + bytes([FEND]),  # escaped type byte (port 12 data)
        bytes([FEND, FESC]) + inner + bytes([FEND]),
        bytes([FEND, 0x00]) + bytes([FESC, TFESC]) * 300 + bytes([FEND]),
        bytes([0x00]) + inner + bytes([FEND]),  # no opening FEND: joins whatever came before
        bytes([FEND, 0xFF, FEND]),  # KISS "return": leave KISS mode
    ]
    # a genuine fresh command on another TNC port and as a TNC parameter frame: not for the radio
    streams += [kiss.encode(attacker.ui(attacker.signed(body, next(fresh))), port=p) for p in (1, 15)]
    streams += [kiss.encode(attacker.ui(attacker.signed(body, next(fresh))), command=kiss.KissCommand.TX_DELAY)]
    return streams


async def run_with_scratch(scratch: Path | None, quick: bool, log: Any = print) -> CampaignResult:
    """``run`` in a fresh scratch directory (removed afterwards unless given)."""
    if scratch is not None:
        return await run(scratch, quick, log)
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="flightsw-attacks-"))
    try:
        return await run(directory, quick, log)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


__all__ = ["Attack", "CampaignResult", "run", "run_with_scratch", "rss_kb"]
