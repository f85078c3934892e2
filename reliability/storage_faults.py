"""Storage faults: the flight process (the power-cut campaign's busy mission, in its own process,
virtual time) flying on a storage that fails under it.

* ``disk_full``: the data directory is a small tmpfs, shrunk to what it holds 5 simulated
  minutes in (every write then fails with ENOSPC), given its space back 10 minutes later;
* ``fsync_error``: ``os.fsync`` fails with EIO in the flight process for those 10 minutes
  (fsync on; the storage layer has no seam of its own, so the child patches ``os.fsync``);
* ``corrupt_slots``: before the boot, the newest slot of the state and parameter stores and the
  middle of the oldest record-log segment are overwritten with garbage (a satellite that flew one
  life first).

Read-only remount is not run: a tmpfs (or any mount) refuses ``remount,ro`` while the flight
process holds files open for writing (EBUSY), so the kernel's ``errors=remount-ro`` cannot be
reproduced here; :func:`run` reports it as skipped with that reason.

For each case the child reports the run's figures as one JSON line: did it fly to the end
without a reset, how many ``exec.store_problem`` events and other reports it made, records written
after the fault ended, downlink frames after it. :func:`run` judges them.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reliability import power_cuts, tmpfs

REPO = Path(__file__).resolve().parents[1]
FAULT_AT_S = 300.0
FAULT_FOR_S = 600.0
CASES = ("disk_full", "fsync_error", "corrupt_slots")
READ_ONLY_SKIP = ("read-only remount: not run; remount,ro is refused (EBUSY) while the flight process holds "
                  "files open for writing, so a card the kernel turns read-only cannot be reproduced on tmpfs")


@dataclass
class CaseResult:
    case: str
    flew_to_end: bool = False
    resets: int = 0
    store_problems: int = 0
    first_report: str = ""
    records_after: int = 0  # records numbered after the fault ended (recording resumed)
    frames_after: int = 0  # downlink frames after the fault ended (beacons, telemetry)
    write_errors: int = 0
    service_crashes: int = 0  # exec.service_crashed events (a service that let a storage error through)
    error: str = ""
    verdict: str = ""

    def judge(self) -> None:
        problems = []
        if not self.flew_to_end or self.error:
            problems.append(f"did not fly to the end ({self.error or 'stopped'})")
        if self.resets:
            problems.append(f"{self.resets} resets")
        if self.service_crashes:
            problems.append(f"{self.service_crashes} service crashes")
        if not self.store_problems:
            problems.append("no exec.store_problem report")
        if not self.records_after:
            problems.append("no record after the fault")
        if not self.frames_after:
            problems.append("no downlink after the fault")
        self.verdict = "; ".join(problems) or "ok"


@dataclass
class StorageFaultResult:
    cases: list[CaseResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# -- the child ------------------------------------------------------------------------------------
def child(case: str, data: Path) -> None:
    import asyncio

    from flightsw.config import load as load_config
    from flightsw.core.records import RecordLog
    from flightsw.sim_runner.options import SimOptions
    from flightsw.sim_runner.runner import SimulationRun
    from sim.scenario import loads_scenario

    out = CaseResult(case)
    state: dict[str, Any] = {"fault_over": None, "frames_after": 0, "records_after": 0}
    append_numbered = RecordLog.append_numbered
    logs: list[RecordLog] = []

    def counting_append(self: RecordLog, kind: str, value: Any, met: float | None = None) -> int:
        if self not in logs:
            logs.append(self)
        n = append_numbered(self, kind, value, met)
        if state["fault_over"]:
            state["records_after"] += 1
        return n

    RecordLog.append_numbered = counting_append  # type: ignore[method-assign]
    real_fsync = os.fsync
    failing = {"on": False}

    def fsync(fd: Any) -> None:
        if failing["on"]:
            raise OSError(errno.EIO, "Input/output error (injected)")
        real_fsync(fd)

    os.fsync = fsync
    fly = SimulationRun._fly

    async def faulted_fly(self: SimulationRun, end: float) -> str:
        async def inject() -> None:
            await asyncio.sleep(FAULT_AT_S)
            if case == "disk_full":
                used_kb = (shutil.disk_usage(data).used + 4095) // 4096 * 4
                tmpfs.resize(data, max(used_kb, 4))
            elif case == "fsync_error":
                failing["on"] = True
            await asyncio.sleep(FAULT_FOR_S)
            if case == "disk_full":
                tmpfs.resize(data, 64 * 1024)
            failing["on"] = False
            state["fault_over"] = True

        task = asyncio.get_running_loop().create_task(inject())
        try:
            return await fly(self, end)
        finally:
            task.cancel()

    SimulationRun._fly = faulted_fly  # type: ignore[method-assign]
    on_frame = SimulationRun._on_downlink_frame

    def counted_frame(self: SimulationRun, at: float) -> None:
        if state["fault_over"]:
            state["frames_after"] += 1
        on_frame(self, at)

    SimulationRun._on_downlink_frame = counted_frame  # type: ignore[method-assign]
    attach = SimulationRun._attach
    boot_reports: list[str] = []

    def attach_counting(self: SimulationRun, sat: Any) -> None:
        attach(self, sat)  # the start-up's reports (a slot that did not load) came before the run's sink
        boot_reports.extend(f"{r.name}: {r.args}" for r in sat.events.recent
                            if r.name in ("exec.store_problem", "exec.records_recovered"))

    SimulationRun._attach = attach_counting  # type: ignore[method-assign]
    config = load_config(REPO / "deploy" / "sim.toml")
    scenario = loads_scenario(power_cuts.SCENARIO,
                              f"storage_faults/{case}")
    if case == "corrupt_slots":
        state["fault_over"] = True
    run = SimulationRun(config, scenario, SimOptions(data_dir=data, resume=True, fsync=True))
    try:
        result = run.run()
        out.flew_to_end = True
        out.resets = len(run.resets)
        problems = [text for _, _, text in result.events if text.startswith("exec.store_problem")]
        out.store_problems = len(problems) + len(boot_reports)
        out.first_report = (boot_reports + problems)[0][:160] if boot_reports or problems else ""
        out.service_crashes = sum(text.startswith("exec.service_crashed") for _, _, text in result.events)
    except Exception as exc:  # reported, judged by the parent
        import traceback

        traceback.print_exc()
        out.error = f"{type(exc).__name__}: {exc}"[:200]
    out.records_after = state["records_after"]
    out.frames_after = state["frames_after"]
    out.write_errors = sum(log.write_errors for log in logs)
    print("RESULT " + json.dumps(asdict(out)), flush=True)


def _corrupt(data: Path) -> None:
    """Garbage over the newest slot of each store and the middle of the oldest record segment."""
    for store in ("state", "params"):
        slots = sorted(data.glob(f"{store}.[ab]"), key=lambda p: p.stat().st_mtime)
        if slots:
            slots[-1].write_bytes(os.urandom(max(64, slots[-1].stat().st_size)))
    segments = sorted((data / "records").glob("records-*.log"))
    if segments:
        raw = bytearray(segments[0].read_bytes())
        mid = len(raw) // 2
        raw[mid:mid + 64] = os.urandom(min(64, len(raw) - mid))
        segments[0].write_bytes(bytes(raw))


def _child_run(case: str, data: Path, timeout: float = 300.0) -> CaseResult:
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONASYNCIODEBUG="")
    done = subprocess.run([sys.executable, "-m", "reliability.storage_faults", "--child", case, str(data)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return CaseResult(case, error=f"exit {done.returncode}: {tail}"[:200])
    return CaseResult(**json.loads(line[len("RESULT "):]))


def run(root: Path, cases: tuple[str, ...] = CASES, log: Callable[[str], None] = print) -> StorageFaultResult:
    began = time.perf_counter()
    result = StorageFaultResult(skipped=[READ_ONLY_SKIP])
    reason = tmpfs.why_not()
    for case in cases:
        data = root / case
        if case == "disk_full" and reason:
            result.skipped.append(f"disk_full: not run ({reason})")
            continue
        if case == "disk_full":
            with tmpfs.mounted(data, 64 * 1024):
                outcome = _child_run(case, data)
        else:
            data.mkdir(parents=True, exist_ok=True)
            if case == "corrupt_slots":
                power_cuts.run(root / "flown", kills=1, workers=1, max_life_s=1.0, log=lambda _: None)
                shutil.copytree(root / "flown" / "sat0", data, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("*.tty"))
                _corrupt(data)
            outcome = _child_run(case, data)
        outcome.judge()
        log(f"storage faults: {case}: {outcome.verdict}")
        result.cases.append(outcome)
    result.wall_s = round(time.perf_counter() - began, 1)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m reliability.storage_faults")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "DATA"), required=True)
    args = parser.parse_args()
    child(args.child[0], Path(args.child[1]))
