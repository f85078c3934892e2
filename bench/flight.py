"""`python -m bench.flight`: the flight process in nominal operations and in SAFE, in real time.

The laptop mission (deploy/sim.toml: every device simulated, the radio on a pty with its KISS
server) runs as ``flightsw run`` runs it, in this process. Over the nominal window it records the
start lateness of every 10 Hz and 1 Hz rate-group cycle (the scheduler's ``on_cycle_start``), the
slips and overruns the scheduler counts, the process's CPU time and its resident memory; then it
commands SAFE (modes.SET_MODE) and measures the CPU again. A bare asyncio loop
(``bench.bareloop``) runs in its own process over the same window: the lateness baseline.

The CPU figure is the whole process, so it includes the simulated parts (register-level I2C
parts, the pty transceiver): an upper bound on the flight software's own share; the per-thread
split is kept in the samples.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from bench.configs import REPO, sim_config
from bench.harness import (
    child_parser,
    peak_rss_mb,
    percentile,
    progress,
    rss_mb,
    thread_cpu_seconds,
    write_result,
)
from bench.packing import analyse
from flightsw.app import Satellite
from flightsw.core.commands import Completion
from flightsw.core.eventloop import flight_loop
from flightsw.core.scheduler import RateGroup
from flightsw.link.subsystem import SIM_TRANSCEIVER
from flightsw.testing import ResponseLog, wait_until
from hal.kiss import KissDecoder

WARM_UP_S = 3.0  # start-up transients (first boot's mode change, first packets) left out


def group_at(sat: Satellite, hz: float) -> RateGroup:
    for group in sat.rate_groups.values():
        if group.rate_hz == hz:
            return group
    raise RuntimeError(f"the mission config has no {hz:g} Hz rate group")


async def listen(port: int, frames: list[bytes]) -> None:
    """The ground side of the simulated transceiver's KISS server: every downlinked frame."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    decoder = KissDecoder()
    try:
        while chunk := await reader.read(4096):
            frames.extend(f.payload for f in decoder.feed(chunk) if f.command == 0)
    finally:
        writer.close()


async def fly(data_dir: Path, nominal_s: float, safe_s: float, scratch: Path) -> tuple[dict[str, float], dict]:
    sat = Satellite(sim_config(data_dir))
    groups = {"10hz": group_at(sat, 10.0), "1hz": group_at(sat, 1.0)}
    late: dict[str, list[float]] = {key: [] for key in groups}
    recording = False

    def recorder(key: str):  # type: ignore[no-untyped-def]
        def record(group: RateGroup, lateness: float) -> None:
            if recording:
                late[key].append(lateness)
        return record

    for key, group in groups.items():
        group.on_cycle_start = recorder(key)
    runner = asyncio.create_task(sat.run())
    await sat.started.wait()
    responses = ResponseLog(sat)
    transceiver = sat.ports.require(SIM_TRANSCEIVER)
    await wait_until(lambda: transceiver.listening)
    frames: list[bytes] = []
    listener = asyncio.create_task(listen(transceiver.bound_port, frames))
    await asyncio.sleep(WARM_UP_S)

    bare = {selector: await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.bareloop", "--duration", str(nominal_s), "--selector", selector,
                "--json", str(scratch / f"bare-{selector}.json"), cwd=REPO)
            for selector in ("default", "select")}
    slips0 = {key: (g.stats.slips, g.stats.overruns) for key, g in groups.items()}
    threads0 = thread_cpu_seconds()
    recording = True
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(nominal_s)
    cpu1, wall1 = time.process_time(), time.perf_counter()
    recording = False
    threads1 = thread_cpu_seconds()
    rss_nominal = rss_mb()
    progress(f"nominal {nominal_s:g} s: CPU {100 * (cpu1 - cpu0) / (wall1 - wall0):.2f} %, RSS {rss_nominal:.1f} MB")

    op = sat.dictionary.command("modes.SET_MODE").id
    sat.commands.submit(op, ["SAFE"], seq=1)
    response = await responses.wait_completion(1)
    if response.completion is not Completion.SUCCESS:
        raise RuntimeError(f"modes.SET_MODE SAFE failed: {response.detail}")
    await asyncio.sleep(1.0)
    cpu2, wall2 = time.process_time(), time.perf_counter()
    await asyncio.sleep(safe_s)
    cpu3, wall3 = time.process_time(), time.perf_counter()
    progress(f"SAFE {safe_s:g} s: CPU {100 * (cpu3 - cpu2) / (wall3 - wall2):.2f} %")

    listener.cancel()
    sat.stop_event.set()
    await runner
    for selector, process in bare.items():
        if await asyncio.wait_for(process.wait(), nominal_s + 60) != 0:
            raise RuntimeError(f"the bare-loop baseline ({selector} selector) failed")
    base = json.loads((scratch / "bare-default.json").read_text())
    base_select = json.loads((scratch / "bare-select.json").read_text())

    figures: dict[str, float] = {}
    for key in groups:
        if not late[key] or not base[key] or not base_select[key]:
            raise RuntimeError(f"no {key} cycles recorded")
        figures[f"lateness_p99_{key}_ms"] = 1e3 * percentile(late[key], 99)
        # The baseline is a bare loop on the flight's own loop (select(2)); the default epoll loop beside it.
        figures[f"bare_lateness_p99_{key}_ms"] = 1e3 * percentile(base_select[key], 99)
        figures[f"lateness_max_{key}_ms"] = 1e3 * max(late[key])
        figures[f"bare_epoll_lateness_p99_{key}_ms"] = 1e3 * percentile(base[key], 99)
    figures["slips"] = float(sum(g.stats.slips - slips0[k][0] for k, g in groups.items()))
    figures["overruns"] = float(sum(g.stats.overruns - slips0[k][1] for k, g in groups.items()))
    figures["cpu_nominal_pct"] = 100.0 * (cpu1 - cpu0) / (wall1 - wall0)
    figures["cpu_safe_pct"] = 100.0 * (cpu3 - cpu2) / (wall3 - wall2)
    packing, per_packet = analyse(sat, frames)
    figures.update(packing)
    figures["rss_mb"] = rss_nominal
    figures["peak_rss_mb"] = peak_rss_mb()
    samples = {
        "lateness_us": {key: [round(v * 1e6) for v in late[key]] for key in groups},
        "bare_lateness_us": {key: [round(v * 1e6) for v in base_select[key]] for key in groups},
        "thread_cpu_s": {name: round(threads1.get(name, 0.0) - threads0.get(name, 0.0), 3)
                         for name in threads1},
        "cycles": {key: len(late[key]) for key in groups},
        "nominal_s": wall1 - wall0,
        "housekeeping": per_packet,
    }
    return figures, samples


def main(argv: list[str] | None = None) -> int:
    parser = child_parser(__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=None, help="nominal window, s (default 60, quick 5)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("flightsw").setLevel(logging.ERROR)  # no console lines inside the timed window
    nominal_s = args.duration or (5.0 if args.quick else 60.0)
    safe_s = 3.0 if args.quick else 20.0
    with tempfile.TemporaryDirectory() as scratch:
        with asyncio.Runner(loop_factory=flight_loop) as runner:
            figures, samples = runner.run(fly(Path(scratch) / "data", nominal_s, safe_s, Path(scratch)))
    write_result(args.json, figures, samples, [f"nominal window {nominal_s:g} s, SAFE window {safe_s:g} s"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
