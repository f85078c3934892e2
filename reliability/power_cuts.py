"""Power cuts: the flight process SIGKILLed at random instants during a busy accelerated mission.

Each *life* is a real ``python -m reliability.power_cuts --child DATA`` process: a
:class:`SimulationRun` of :data:`SCENARIO` (the reference mission's config, every device simulated,
virtual time as fast as possible, flight stores with fsync on) resuming the satellite's storage in
DATA. The child reports on stdout what it committed (``R n``: record number n returned from the
record log, flushed to the OS; ``I id``: image id whose catalog row was added after its files).
The parent kills it with SIGKILL after a random delay, then checks DATA with read-only readers:

* the state and parameter stores load (old or new value, never garbage);
* every record-log segment is valid up to its end, except a torn tail on the newest segment
  (the record being written); the numbers are contiguous and the last committed one is there;
* the image catalog passes SQLite's ``integrity_check``; every catalogued image committed before
  the kill has its three product files, and the full product matches the row's sha256;
* the stored-command schedule and the deployment record parse; the deployment never goes back
  (deployed stays deployed);
* boot-loop protection: boots that did not prove themselves counted in ``boot_count -
  modes.last_good_boot``; from ``boot_loop_count`` of them the persisted mode is SAFE.

Several satellites (one data directory each) are killed in parallel workers; each one's lives are
strictly sequential, so every kill is a kill of the only process writing that storage.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgpack

REPO = Path(__file__).resolve().parents[1]

#: The busy mission of every life: separation (stowed, 60 s of RF silence, then the burn wires), a
#: pass over Almaty from the start, captures and stored-command edits commanded from the ground.
SCENARIO = """
[scenario]
name = "power-cuts"
description = "busy mission for the power-cut campaign"
start = 2026-06-01T04:32:00Z
duration = "40m"
seed = 7

[orbit]
epoch = 2026-06-01T04:00:20Z  # the pass over Almaty starts about 40 s into every life
altitude_km = 530.0
ltdn_hours = 10.5

[[stations]]
name = "almaty"
lat_deg = 43.2
lon_deg = 76.9
alt_m = 800
min_elevation_deg = 0.0

[battery]
initial_soc = 0.9

[launch]
stowed = true
silence = "60s"
failed_burns = { burn_primary = 1 }

# a killed process boots in SAFE (reset UNEXPECTED): the ground puts it back to work
[[commands]]
at = "5s"
command = "modes.SET_MODE"
args = ["NOMINAL"]
""" + "".join(
    f'\n[[commands]]\nat = "{t}s"\ncommand = "imaging.CAPTURE_NOW"\n' for t in range(20, 2400, 45)) + "".join(
    f'\n[[commands]]\nat = "{t}s"\ncommand = "seq.STORE_IN"\nargs = [{600 + t}, "imaging.CAPTURE_NOW", "", 1, 60]\n'
    for t in range(35, 2400, 70))

LIVES_PER_SATELLITE = 25  # then a fresh satellite: deployment and first boots are cut again
BOOT_LOOP_COUNT = 4  # deploy/sim.toml's [modes] boot_loop_count (the documented default)


@dataclass
class PowerCutResult:
    kills: int = 0
    satellites: int = 0  # data directories (a worker starts a fresh one every LIVES_PER_SATELLITE kills)
    wall_s: float = 0.0
    life_s: tuple[float, float] = (0.0, 0.0)
    records_committed: int = 0  # highest committed record number, summed over satellites
    images_committed: int = 0
    boots: int = 0
    torn_tails: int = 0  # kills that left a partial record at the log's end (allowed, then truncated)
    corrupt_files: list[str] = field(default_factory=list)
    lost_committed: list[str] = field(default_factory=list)
    boot_loop_checks: int = 0  # kills after which unproven boots >= boot_loop_count (mode must be SAFE)
    boot_loop_violations: list[str] = field(default_factory=list)
    deployed_satellites: int = 0
    stored_commands_max: int = 0
    child_errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# -- the child (one life) ------------------------------------------------------------------------
def child(data: Path) -> None:
    """One life of the flight software on DATA, reporting what it commits; runs until killed."""
    from flightsw.config import load as load_config
    from flightsw.core.records import RecordLog
    from flightsw.imaging.catalog import ImageCatalog
    from flightsw.sim_runner.options import SimOptions
    from flightsw.sim_runner.runner import SimulationRun
    from sim.scenario import loads_scenario

    out = sys.stdout
    append_numbered = RecordLog.append_numbered
    add = ImageCatalog.add

    def reported_append(self: RecordLog, kind: str, value: Any, met: float | None = None) -> int:
        n = append_numbered(self, kind, value, met)
        out.write(f"R {n}\n")
        args = value[-1] if kind == "evt" and isinstance(value, list) and value else None
        if isinstance(args, dict) and "mode" in args and "reset" in args:  # modes.boot_mode
            out.write(f"B {args['mode']}\n")
        elif isinstance(args, dict) and "boots" in args and "window_s" in args:  # modes.boot_loop
            out.write("L\n")
        out.flush()
        return n

    def reported_add(self: ImageCatalog, record: Any) -> Any:
        result = add(self, record)
        out.write(f"I {record.id} {record.since_boot:.0f}\n")
        out.flush()
        return result

    RecordLog.append_numbered = reported_append  # type: ignore[method-assign]
    ImageCatalog.add = reported_add  # type: ignore[method-assign]
    # The campaign's ground starts each life from the last counters the satellite accepted (a real
    # ground keeps its own; a fresh one at 0 would be refused as a replay after the first life).
    saved = _atomic(data / "state") or {}
    counters = {int(k): int(v) for k, v in (saved.get("link.key_counters") or {}).items()}
    counters[int(saved.get("link.key_id", 0) or 0)] = int(saved.get("link.uplink_counter", 0) or 0)
    ground_monitor = SimulationRun._ground_monitor

    def resumed_ground(self: SimulationRun, sat: Any) -> Any:
        ground = ground_monitor(self, sat)
        ground._counters.update(counters)
        ground._file_counter = int(saved.get("link.file_counter", 0) or 0)
        return ground

    SimulationRun._ground_monitor = resumed_ground  # type: ignore[method-assign]
    config = load_config(REPO / "deploy" / "sim.toml")
    scenario = loads_scenario(SCENARIO, "power_cuts")
    out.write("START\n")
    out.flush()
    SimulationRun(config, scenario, SimOptions(data_dir=data, resume=True, fsync=True)).run()
    out.write("END\n")
    out.flush()


# -- the checks after a kill ---------------------------------------------------------------------
@dataclass
class Satellite:
    data: Path
    committed_record: int = 0
    committed_images: set[int] = field(default_factory=set)
    deployed: bool = False
    boot_count: int = 0


def _atomic(path: Path) -> dict[str, Any] | None:
    from flightsw.core.atomic_store import AtomicStore
    from flightsw.core.state import SCHEMA_VERSION

    value = AtomicStore(path, SCHEMA_VERSION).load().value
    return value if isinstance(value, dict) else None


def check(sat: Satellite, result: PowerCutResult) -> None:
    """Every store of SAT's data directory after a kill (read-only)."""
    from flightsw.components.deployment_rules import DeploymentState, DeployRecord
    from flightsw.components.schedule import Schedule
    from flightsw.core.records import scan

    where = f"{sat.data.name} kill {result.kills}"
    state = _atomic(sat.data / "state")
    if state is None:
        if any(sat.data.glob("state.*")):
            result.corrupt_files.append(f"{where}: state store does not load")
        return  # killed before the first save
    if _atomic(sat.data / "params") is None and any(sat.data.glob("params.*")):
        result.corrupt_files.append(f"{where}: parameter store does not load")
    boots = int(state.get("boot_count", 0))
    if boots < sat.boot_count:
        result.lost_committed.append(f"{where}: boot_count went back {sat.boot_count} -> {boots}")
    sat.boot_count = boots
    # the record log
    segments = sorted((sat.data / "records").glob("records-*.log"))
    numbers: list[int] = []
    for i, seg in enumerate(segments):
        data = seg.read_bytes()
        good, end = scan(data)
        if end != len(data):
            if i == len(segments) - 1:
                result.torn_tails += 1
            else:
                result.corrupt_files.append(f"{where}: {seg.name} invalid from byte {end} of {len(data)}")
        for payload in good:
            rec = msgpack.unpackb(payload, raw=False, strict_map_key=False)
            if isinstance(rec, dict) and isinstance(rec.get("n"), int):
                numbers.append(rec["n"])
    if numbers and numbers != list(range(numbers[0], numbers[-1] + 1)):
        result.corrupt_files.append(f"{where}: record numbers not contiguous")
    last = numbers[-1] if numbers else 0
    if last < sat.committed_record:
        result.lost_committed.append(f"{where}: committed record {sat.committed_record}, log ends at {last}")
    sat.committed_record = max(sat.committed_record, last)
    # images
    catalog = sat.data / "images" / "catalog.sqlite"
    if catalog.exists():
        db = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
        try:
            if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                result.corrupt_files.append(f"{where}: image catalog integrity_check failed")
            rows = dict(db.execute("SELECT id, sha256 FROM images").fetchall())
        finally:
            db.close()
        folders = {int(p.name): p for p in (sat.data / "images" / "products").iterdir() if p.name.isdigit()}
        for image_id in sorted(sat.committed_images):
            if image_id not in rows:
                continue  # evicted by the quota, or dropped by reconcile: not a loss of the catalog
            full = folders[image_id] / "full.jpg" if image_id in folders else None
            if full is None or not full.is_file():
                result.lost_committed.append(f"{where}: image {image_id} catalogued, no full product")
            elif hashlib.sha256(full.read_bytes()).hexdigest() != rows[image_id]:
                result.corrupt_files.append(f"{where}: image {image_id} full product does not match its sha256")
    # stored commands and deployment
    schedule, problems = Schedule.from_state(state.get("sequencer.schedule"), 10_000)
    if problems:
        result.corrupt_files.append(f"{where}: stored commands: {'; '.join(problems)}")
    result.stored_commands_max = max(result.stored_commands_max, len(schedule))
    record = DeployRecord.from_state(state.get("deployment"))
    if state.get("deployment") is not None and record is None:
        result.corrupt_files.append(f"{where}: deployment record does not parse")
    if record is not None and record.state == DeploymentState.DEPLOYED:
        sat.deployed = True
    elif sat.deployed:
        result.lost_committed.append(f"{where}: deployment went back from deployed to {record}")


# -- the parent ----------------------------------------------------------------------------------
def _life(sat: Satellite, delay: float, timeout: float = 60.0) -> tuple[list[str], str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONASYNCIODEBUG="")
    proc = subprocess.Popen([sys.executable, "-m", "reliability.power_cuts", "--child", str(sat.data)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            lines.append(line)
            if line == "START":
                started.set()
        started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not started.wait(timeout):
        proc.kill()
        proc.wait()
        return lines, "no START within the timeout"
    time.sleep(delay)  # the random instant of the cut, from the flight software's start
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader.join(timeout)
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode != -signal.SIGKILL:
        return lines, f"exit {proc.returncode} before the kill: {err.strip().splitlines()[-1:] or ''}"
    return lines, ""


def _satellite(sat: Satellite, kills: int, rng: random.Random, result: PowerCutResult, lock: threading.Lock,
               max_life_s: float, log: Callable[[str], None]) -> None:
    for life in range(kills):
        if life and life % LIVES_PER_SATELLITE == 0:  # a new satellite on fresh storage: separation again
            with lock:
                _tally(sat, result)
            shutil.rmtree(sat.data)
            sat.data.mkdir()
            sat.committed_record, sat.committed_images, sat.deployed, sat.boot_count = 0, set(), False, 0
        before = _atomic(sat.data / "state") or {}
        unproven = int(before.get("boot_count", 0)) + 1 - int(before.get("modes.last_good_boot", 0))
        lines, error = _life(sat, rng.uniform(0.0, max_life_s))
        with lock:
            boot_mode = next((line[2:] for line in lines if line.startswith("B ")), None)
            if before and unproven >= BOOT_LOOP_COUNT and boot_mode is not None:
                # the documented protection: this boot comes up SAFE, latched, with modes.boot_loop
                result.boot_loop_checks += 1
                after = lines[lines.index(f"B {boot_mode}") + 1:]
                # modes.boot_loop is the record right after modes.boot_mode ("R n" then "L" on stdout):
                # a kill before the record after it leaves no L, and is not a violation
                if boot_mode != "SAFE" or ("L" not in after and sum(x.startswith("R ") for x in after) >= 2):
                    result.boot_loop_violations.append(f"{sat.data.name} kill {result.kills + 1}: {unproven} "
                                                       f"unproven boots, booted {boot_mode}, boot_loop event "
                                                       f"{'L' in lines}")
            if error:
                result.child_errors.append(f"{sat.data.name}: {error}")
            for line in lines:
                tag, _, value = line.partition(" ")
                if tag == "R":
                    sat.committed_record = max(sat.committed_record, int(value))
                elif tag == "I":
                    sat.committed_images.add(int(value.split()[0]))
            result.kills += 1
            check(sat, result)
            if result.kills % 100 == 0:
                log(f"power cuts: {result.kills} kills")


def _tally(sat: Satellite, result: PowerCutResult) -> None:
    result.satellites += 1
    result.records_committed += sat.committed_record
    result.images_committed += len(sat.committed_images)
    result.boots += sat.boot_count
    result.deployed_satellites += sat.deployed


def run(root: Path, kills: int, workers: int = 2, max_life_s: float = 1.5, seed: int = 16,
        log: Callable[[str], None] = print) -> PowerCutResult:
    """KILLS SIGKILLs spread over WORKERS satellites (data directories under ROOT)."""
    began = time.perf_counter()
    result = PowerCutResult(life_s=(0.0, max_life_s))
    lock = threading.Lock()
    sats = [Satellite(root / f"sat{i}") for i in range(workers)]
    for sat in sats:
        sat.data.mkdir(parents=True, exist_ok=True)
    share = [kills // workers + (i < kills % workers) for i in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(_satellite, sat, n, random.Random(seed + i), result, lock, max_life_s, log)
                   for i, (sat, n) in enumerate(zip(sats, share, strict=True))]
        for f in futures:
            f.result()
    for sat in sats:
        _tally(sat, result)
    result.wall_s = round(time.perf_counter() - began, 1)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m reliability.power_cuts")
    parser.add_argument("--child", type=Path, required=True, help="one life of the flight software on this data dir")
    child(parser.parse_args().child)
