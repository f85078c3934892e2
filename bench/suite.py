"""The suite: which benchmark modules run, how often, and what each figure is held to.

Each repeat of a benchmark is a fresh ``python -m bench.<module>`` process; its figures are
reduced to the median and the worst repeat. A figure with a baseline is also reported as the
ratio to that baseline, taken per repeat (both measured in the same process or the same window,
so a noisy machine moves both).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import SCHEMA, median, worst

REPO = Path(__file__).resolve().parents[1]

# A Raspberry Pi Zero 2 W (4x Cortex-A53 at 1 GHz, in-order) against one core of this class of
# x86 machine, for single-threaded CPython: an assumption, not a measurement (see PI_HOW).
PI_CPU_FACTOR = 10.0
PI_HOW = (
    "No Pi was measured. CPU-bound figures (CPU share, start-up, import, compute times, "
    f"simulation speed) are scaled by an assumed {PI_CPU_FACTOR:g}x: a Cortex-A53 at 1 GHz "
    "(in-order, dual-issue) against one core of a ~3 GHz out-of-order x86 core is about 3x in clock "
    "and about 3x in work per clock for the CPython interpreter loop. Lateness is scaled only in "
    "the part the flight software adds over the bare loop (the bare loop's own lateness is the "
    "kernel's timer and wake-up path). Bytes on the air, goodput in airtime, memory (64-bit "
    "Raspberry Pi OS, same CPython) and disk size are machine-independent to first order and "
    "carried over unchanged. The calibration figure (machine section) is a fixed pure-Python "
    "workload: running `make bench` on a Pi gives the real factor as the ratio of the two.")


@dataclass(frozen=True)
class Figure:
    """One figure of the budget: how a benchmark's value is read and judged."""

    key: str  # the benchmark's figure key
    label: str
    unit: str
    target: float | None = None  # None: reported, not judged
    lower_is_better: bool = True
    target_text: str = ""
    baseline: str | None = None  # key of the same-run baseline figure
    baseline_label: str = ""
    ratio_max: float | None = None  # the value must also stay within this ratio to the baseline
    pi: str = "same"  # "cpu": x factor; "inverse": / factor; "added": baseline + factor x excess; "same"
    decimals: int = 2

    def meets(self, value: float, ratio: float | None) -> bool | None:
        if self.target is None and self.ratio_max is None:
            return None
        ok = True
        if self.target is not None:
            ok = value <= self.target if self.lower_is_better else value >= self.target
        if self.ratio_max is not None and ratio is not None:
            ok = ok and ratio <= self.ratio_max
        return ok

    def pi_estimate(self, value: float, baseline: float | None) -> float | None:
        if self.pi == "cpu":
            return value * PI_CPU_FACTOR
        if self.pi == "inverse":
            return value / PI_CPU_FACTOR
        if self.pi == "added" and baseline is not None:
            return baseline + PI_CPU_FACTOR * max(0.0, value - baseline)
        if self.pi == "same":
            return value
        return None


@dataclass(frozen=True)
class Benchmark:
    module: str  # bench.<module>
    title: str
    what: str  # one paragraph for the page: what is measured and how
    figures: list[Figure]
    repeats: int = 3
    quick_repeats: int = 2
    timeout_s: float = 300.0
    args: list[str] = field(default_factory=list)
    plots: Callable[[list[dict[str, Any]]], list[str]] | None = None  # markdown lines


def lateness_histograms(runs: list[dict[str, Any]]) -> list[str]:
    from bench.report import text_histogram

    lines: list[str] = []
    for key, label in (("10hz", "10 Hz group"), ("1hz", "1 Hz group")):
        ours = [v for run in runs for v in run["samples"]["lateness_us"][key]]
        bare = [v for run in runs for v in run["samples"]["bare_lateness_us"][key]]
        lines += [f"Wake-up lateness, {label}, all repeats (µs; `#` flight software, `.` bare loop):", "",
                  *text_histogram({"flight": ours, "bare": bare}, unit="µs"), ""]
    return lines


def flight_plots(runs: list[dict[str, Any]]) -> list[str]:
    lines = lateness_histograms(runs)
    shares: dict[str, list[float]] = {}
    for run in runs:
        for name, seconds in run["samples"]["thread_cpu_s"].items():
            shares.setdefault(name, []).append(100.0 * seconds / run["samples"]["nominal_s"])
    rows = sorted(((name, sum(v) / len(runs)) for name, v in shares.items()), key=lambda r: -r[1])
    lines += ["CPU by thread over the nominal window, mean of the repeats (% of one core; `MainThread` "
              "is the event loop, `i2c-sim-…` the simulated I2C bus's worker thread, which on the board "
              "would be the real bus's; /proc clock ticks of 10 ms, so small shares are coarse):", "",
              "| thread | CPU |", "|---|---|", *[f"| {name} | {share:.2f} % |" for name, share in rows if share > 0], ""]
    return lines


def goodput_plots(runs: list[dict[str, Any]]) -> list[str]:
    """Goodput against frame loss, flight settings and the alternative, as text bars."""
    from bench.goodput import BIT_RATE, LOSSES

    rate = BIT_RATE / 8.0
    lines = ["Goodput against downlink frame loss, mean of the repeats (`#` flight settings, `+` the settings "
             "flown before: 256-byte frames, a key-up per frame; `|` the target 0.85 × (1 − loss) × link rate; "
             "full bar = link rate 1200 B/s):", "", "```"]
    width = 50
    for loss in LOSSES:
        pct = round(100 * loss)
        target = 0.85 * (1.0 - loss) * rate
        for prefix, mark in (("", "#"), ("alt_", "+")):
            values = [run["figures"].get(f"{prefix}goodput_{pct}_Bps") for run in runs]
            got = [v for v in values if v is not None]
            if not got:
                continue
            value = sum(got) / len(got)
            bar = list(mark * round(width * value / rate) + " " * width)[:width + 1]
            bar[round(width * target / rate)] = "|"
            lines.append(f"{pct:3d} % {''.join(bar)} {value:6.0f} B/s ({value / target:.2f} of target)")
    return [*lines, "```", ""]


SUITE: list[Benchmark] = [
    Benchmark(
        "flight", "Flight process: rate-group lateness, CPU, memory",
        "The laptop mission (`deploy/sim.toml`, every device simulated, radio on a pty with its KISS "
        "server) runs in real time in a fresh process, as `flightsw run` runs it (on its event loop, "
        "asyncio's selector loop on select(2), `flightsw.core.eventloop`). Over the nominal "
        "window every 10 Hz and 1 Hz cycle's start lateness is recorded (`RateGroup.on_cycle_start`), "
        "with the scheduler's slip and overrun counters; a bare asyncio loop with a 10 Hz and a 1 Hz "
        "task sleeping to absolute deadlines, on the same select(2) loop, runs in its own process over "
        "the same window (the baseline); a second one on asyncio's default epoll selector is reported "
        "beside it. CPU is the process's user+system time over wall time (one core = 100 %); it "
        "includes the simulated parts, so it bounds the flight software's share from above. Then "
        "`modes.SET_MODE SAFE` and the CPU again. RSS is VmRSS at the end of the nominal window. "
        "A KISS client on the transceiver's TCP port records every downlinked frame of the nominal "
        "window: housekeeping packing is the on-air size of the frames (as the downlink scheduler "
        "prices them: AX.25 header, FCS, bit stuffing, flags; shared among a frame's packets by "
        "length) over the values' raw size in their declared fixed-size types (F32 4 bytes, U16 "
        "2, ...), over every housekeeping packet of the window.",
        [
            Figure("lateness_p99_10hz_ms", "wake-up lateness p99, 10 Hz group", "ms", 1.0,
                   target_text="≤ 1 ms and ≤ 2× bare loop", baseline="bare_lateness_p99_10hz_ms",
                   baseline_label="bare loop on select(2) p99", ratio_max=2.0, pi="added", decimals=3),
            Figure("lateness_p99_1hz_ms", "wake-up lateness p99, 1 Hz group", "ms", 1.0,
                   target_text="≤ 1 ms and ≤ 2× bare loop", baseline="bare_lateness_p99_1hz_ms",
                   baseline_label="bare loop on select(2) p99", ratio_max=2.0, pi="added", decimals=3),
            Figure("bare_epoll_lateness_p99_10hz_ms", "bare loop on the default epoll selector, p99, 10 Hz", "ms",
                   None, pi="none", decimals=3),
            Figure("bare_epoll_lateness_p99_1hz_ms", "bare loop on the default epoll selector, p99, 1 Hz", "ms",
                   None, pi="none", decimals=3),
            Figure("slips", "cycle slips, 10 Hz + 1 Hz groups", "", 0.0, target_text="0", pi="none",
                   decimals=0),
            Figure("overruns", "cycle overruns, 10 Hz + 1 Hz groups", "", None, pi="none", decimals=0),
            Figure("cpu_nominal_pct", "CPU, nominal operations (simulated parts included)", "% of a core",
                   2.0, target_text="≤ 2 %", pi="cpu", decimals=2),
            Figure("cpu_safe_pct", "CPU, SAFE (simulated parts included)", "% of a core", 0.5,
                   target_text="≤ 0.5 %", pi="cpu", decimals=2),
            Figure("rss_mb", "resident memory, full install (sim parts in-process)", "MB", 60.0,
                   target_text="≤ 60 MB", pi="same", decimals=1),
            Figure("hk_packing_ratio", "housekeeping bytes on the air / raw binary size of the values", "×",
                   1.3, target_text="≤ 1.3×", pi="same"),
            Figure("hk_frame_per_raw", "… of which AX.25 frame (header, FCS, flags, stuffing)", "×", None),
            Figure("hk_space_packet_per_raw", "… of which space packet headers and CRC", "×", None),
            Figure("hk_body_header_per_raw", "… of which packet body header (msgpack id, boot, seconds, utc)",
                   "×", None),
            Figure("hk_values_per_raw", "… of which the values (msgpack)", "×", None),
            Figure("hk_raw_bytes_per_packet", "housekeeping raw values per packet (mean)", "bytes", None,
                   decimals=1),
            Figure("hk_overhead_bytes_per_packet", "housekeeping overhead per packet (mean, all but values)",
                   "bytes", None, decimals=1),
            Figure("beacon_frame_bytes", "beacon AX.25 frame (header, information field, FCS)", "bytes", 128.0,
                   target_text="≤ 128 bytes", pi="same", decimals=0),
            Figure("beacon_on_air_bytes", "beacon on the air (with flags and bit stuffing)", "bytes", None,
                   pi="same", decimals=1),
        ],
        repeats=3, quick_repeats=2, timeout_s=400.0, plots=flight_plots),
    Benchmark(
        "startup", "Start-up, imports, memory and size of the installs",
        "Two installs: the full one (the development venv, every extra) and the minimal flight "
        "install (a fresh venv with the project and its base dependencies only, built as "
        "`tests/deploy` builds it, compiled to .pyc as on the board, cached under `build/bench/` until "
        "the sources change). Each runs the flight config (`deploy/flight.toml`, every device on its "
        "simulated backend; the minimal one without the payload) as flightsw.service runs it: "
        "`flightsw run --config`, with a NOTIFY_SOCKET bound by the benchmark and WATCHDOG_USEC. "
        "Start-up is exec to the READY=1 datagram; the baseline is the same venv's interpreter "
        "doing nothing (`python -c pass`, exec to exit). RSS is the service's VmRSS 3 s after "
        "READY=1. Import times are measured inside fresh interpreters (median of 5): `import "
        "flightsw`, and everything `flightsw run` imports before it builds the satellite (the "
        "command line's modules and every registered subsystem). Size is the minimal venv's "
        "allocated disk blocks (interpreter symlinks, site-packages, .pyc).",
        [
            Figure("startup_minimal_s", "start-up exec → READY=1, minimal flight install", "s", 1.0,
                   target_text="≤ 1 s", baseline="interpreter_minimal_s",
                   baseline_label="`python -c pass`", pi="cpu", decimals=3),
            Figure("startup_full_s", "start-up exec → READY=1, full install", "s", 1.0,
                   target_text="≤ 1 s", baseline="interpreter_full_s",
                   baseline_label="`python -c pass`", pi="cpu", decimals=3),
            Figure("rss_minimal_mb", "resident memory, minimal flight install (flight config)", "MB", 60.0,
                   target_text="≤ 60 MB", pi="same", decimals=1),
            Figure("rss_full_mb", "resident memory, full install (flight config + payload)", "MB", 60.0,
                   target_text="≤ 60 MB", pi="same", decimals=1),
            Figure("minimal_install_mb", "minimal flight install, size on disk", "MB", 25.0,
                   target_text="≤ 25 MB", pi="same", decimals=1),
            Figure("import_flightsw_minimal_ms", "`import flightsw`, minimal install", "ms", 150.0,
                   target_text="≤ 150 ms", pi="cpu", decimals=2),
            Figure("import_run_path_minimal_ms", "imports of `flightsw run` (CLI + subsystems), minimal install",
                   "ms", 150.0, target_text="≤ 150 ms", pi="cpu", decimals=0),
            Figure("import_run_path_full_ms", "imports of `flightsw run` (CLI + subsystems), full install",
                   "ms", 150.0, target_text="≤ 150 ms", pi="cpu", decimals=0),
        ],
        repeats=3, quick_repeats=1, timeout_s=300.0),
    Benchmark(
        "flood", "Uplink flood of garbage frames",
        "The laptop mission in real time, as in the flight benchmark. After a quiet window (20 s), a "
        "client on the simulated transceiver's KISS TCP port sends 200 frames/s for 60 s: in turn "
        "random bytes, AX.25 UI frames to the satellite with random information fields, and frames "
        "to the satellite carrying a well-formed space packet on the command APID with a random body "
        "and MAC. The transceiver passes what its 9600 bit/s uplink carries (its queue is bounded "
        "and drops the rest, as a radio's would), so the flight software sees the link's worth of "
        "garbage. Lateness is the 10 Hz group's p99 in the quiet window and during the flood; RSS "
        "is read before the flood and 2 s after it. Quick mode: 5 s windows.",
        [
            Figure("commands_executed", "commands executed from the flood", "", 0.0, target_text="0",
                   pi="none", decimals=0),
            Figure("commands_received", "commands reaching the dispatcher from the flood", "", 0.0,
                   target_text="0", pi="none", decimals=0),
            Figure("frames_offered", "garbage frames offered on the KISS port", "", None, pi="none",
                   decimals=0),
            Figure("frames_reaching_flight", "… of which carried by the 9600 bit/s uplink to the flight software",
                   "", None, pi="none", decimals=0),
            Figure("flood_lateness_rise_ms", "10 Hz lateness p99, flood minus quiet", "ms", 1.0,
                   target_text="< 1 ms", pi="none", decimals=3),
            Figure("flood_lateness_p99_ms", "10 Hz lateness p99 during the flood", "ms", None,
                   baseline="quiet_lateness_p99_ms", baseline_label="quiet window p99", pi="none", decimals=3),
            Figure("flood_rss_growth_mb", "RSS after the flood minus before", "MB", 1.0,
                   target_text="no growth (< 1 MB)", pi="same", decimals=2),
        ],
        repeats=2, quick_repeats=1, timeout_s=200.0),
    Benchmark(
        "capture", "12 MP capture to thumbnail and preview",
        "A 4056 × 3040 JPEG (the HQ camera's full resolution; the simulator's rendered scene with "
        "2 DN of sensor noise, encoded at quality 92 before timing) is turned into the preview and "
        "the thumbnail by imaging's own `make_products` on the CPU executor (`Workers.run_cpu`), as "
        "the imaging component does it; eight captures back to back after one untimed, median and "
        "worst time. A 100 Hz probe task on the loop sleeps to absolute deadlines meanwhile; its lateness "
        "p99 during the work is compared with a quiet window of the same length after it. Imaging "
        "computes no triage score, so none is timed.",
        [
            Figure("products_s", "12 MP JPEG → preview + thumbnail (median of 8)", "s", 1.5,
                   target_text="≤ 1.5 s", pi="cpu", decimals=3),
            Figure("products_worst_s", "12 MP JPEG → preview + thumbnail (slowest of 8)", "s", 1.5,
                   target_text="≤ 1.5 s", pi="cpu", decimals=3),
            Figure("capture_lateness_rise_ms", "loop lateness p99 (100 Hz probe), during the work minus quiet", "ms", 1.0,
                   target_text="within 1 ms", pi="none", decimals=3),
            Figure("busy_lateness_p99_ms", "loop lateness p99 (100 Hz probe) during the work", "ms", None,
                   baseline="quiet_lateness_p99_ms", baseline_label="quiet window p99", pi="none",
                   decimals=3),
        ],
        repeats=3, quick_repeats=1, timeout_s=120.0),
    Benchmark(
        "goodput", "File downlink goodput at 9600 bit/s",
        "A satellite with the link and CFDP class 2 (the flight config's link and file-transfer "
        "settings: 256-byte frames for everything but file data, 1024-byte frames of file PDUs only "
        "(`link.max_file_frame`, 979-byte PDUs), 50 ms TX delay paid once per burst of up to 6 s of "
        "airtime (`link.burst_s`), default ACK/NAK timers) downlinks a 1 MB file of random bytes to a "
        "ground station with its CFDP entity, through the simulated transceiver (pty on the flight "
        "side, KISS over TCP to the ground), on the virtual-time loop: the transceiver serialises each "
        "frame at the bit rate and keys up once per transmission (TX delay, then the frames handed to "
        "it together, as direwolf bundles the frames in its queue), so virtual seconds are airtime, "
        "and drops frames at random in both directions at 0, 5, 10 and 20 %. Goodput is the file's "
        "size, checked byte-identical at the ground, over the time from the request to the ground's "
        "Finished (housekeeping, beacon and events share the link as in flight); the baseline is the "
        "raw link rate (1200 B/s). The same transfers are repeated with the settings flown before "
        "(256-byte frames, 200-byte PDUs, a key-up per frame). Quick mode sends 100 kB.",
        [
            *[Figure(f"goodput_{round(100 * loss)}_Bps", f"goodput, {round(100 * loss)} % frame loss, flight settings",
                     "B/s", 0.85 * (1.0 - loss) * 1200.0, lower_is_better=False,
                     target_text=f"≥ {0.85 * (1.0 - loss) * 1200.0:.0f} B/s (0.85 × (1 − loss) × link rate)",
                     baseline="link_rate_Bps", baseline_label="raw link rate", pi="same", decimals=0)
              for loss in (0.0, 0.05, 0.10, 0.20)],
            *[Figure(f"alt_goodput_{round(100 * loss)}_Bps",
                     f"… {round(100 * loss)} % loss, settings flown before (256-byte frames, a key-up per frame)",
                     "B/s", None, baseline="link_rate_Bps", baseline_label="raw link rate", pi="same", decimals=0)
              for loss in (0.0, 0.05, 0.10, 0.20)],
        ],
        repeats=2, quick_repeats=1, timeout_s=300.0, plots=goodput_plots),
    Benchmark(
        "core", "Runtime core operations",
        "Costs of the runtime's hot paths, each timed against the plain operation it wraps in the "
        "same process: a record append against a raw write+flush, an atomic state save against a "
        "plain write+fsync, a command's submit-to-completion against an asyncio queue round trip.",
        [
            Figure("record_append_us", "record log append (flushed to the OS)", "µs", None,
                   baseline="raw_write_us", baseline_label="raw write+flush", pi="cpu"),
            Figure("atomic_save_us", "atomic state save (2 fsyncs + rename)", "µs", None,
                   baseline="plain_fsync_us", baseline_label="plain write+fsync", pi="none", decimals=0),
            Figure("command_us", "command submit → completion (NO_OP)", "µs", None,
                   baseline="queue_round_trip_us", baseline_label="asyncio queue round trip", pi="cpu",
                   decimals=1),
        ],
        repeats=3, quick_repeats=1, timeout_s=120.0),
    Benchmark(
        "day", "Accelerated reference day",
        "The reference scenario (`nominal_day`: 24 h, every contact over Almaty, the ground "
        "station's no-ops) flown by `run_scenario` on the virtual-time loop as fast as possible, "
        "against the bare World (orbit, power, thermal models) stepping through the same day in "
        "the same process. RSS is sampled every second of wall time; the growth is from the end "
        "of the first simulated hour to the end, for the whole process (flight software, simulated "
        "World and its recorded series), so it bounds the flight software's growth from above. "
        "Quick mode flies 2 h.",
        [
            Figure("speedup", "simulated day, speed-up over real time", "×", 720.0, lower_is_better=False,
                   target_text="≥ 720× (24 h in ≤ 120 s)", baseline="world_speedup",
                   baseline_label="bare World speed-up", pi="inverse", decimals=0),
            Figure("rss_growth_mb", "RSS growth over the simulated day (whole process)", "MB", 1.0,
                   target_text="< 1 MB", pi="same", decimals=2),
            Figure("world_recording_growth_mb", "… the simulator's recorded World series after the first hour "
                   "(Python objects)", "MB", None, pi="none", decimals=2),
        ],
        repeats=1, quick_repeats=1, timeout_s=400.0),
]


def run_repeat(bench: Benchmark, quick: bool, scratch: Path, index: int) -> dict[str, Any]:
    out = scratch / f"{bench.module}-{index}.json"
    command = [sys.executable, "-m", f"bench.{bench.module}", "--json", str(out), *bench.args]
    if quick:
        command.append("--quick")
    began = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, timeout=bench.timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench.{bench.module} repeat {index + 1} exited {done.returncode}")
    result = json.loads(out.read_text())
    if result.get("schema") != SCHEMA:
        raise RuntimeError(f"bench.{bench.module}: result schema {result.get('schema')} != {SCHEMA}")
    result["wall_s"] = time.perf_counter() - began
    return result


def aggregate(bench: Benchmark, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and worst of every figure over the repeats, with its baseline and ratio."""
    figures = []
    for fig in bench.figures:
        values = [run["figures"][fig.key] for run in runs if fig.key in run["figures"]]
        if not values:
            continue  # not measured: left out, never guessed
        entry: dict[str, Any] = {
            "key": fig.key, "label": fig.label, "unit": fig.unit, "target": fig.target,
            "target_text": fig.target_text, "lower_is_better": fig.lower_is_better,
            "values": values, "median": median(values), "worst": worst(values, fig.lower_is_better),
        }
        base_median = None
        if fig.baseline is not None:
            pairs = [(run["figures"][fig.key], run["figures"][fig.baseline]) for run in runs
                     if fig.key in run["figures"] and fig.baseline in run["figures"]]
            bases = [b for _, b in pairs]
            ratios = [v / b for v, b in pairs if b > 0]
            base_median = median(bases)
            entry.update(baseline_label=fig.baseline_label, baseline_values=bases, baseline_median=base_median,
                         ratios=ratios, ratio_median=median(ratios) if ratios else None,
                         ratio_worst=worst(ratios, fig.lower_is_better) if ratios else None,
                         ratio_max=fig.ratio_max)
        ratio_worst = entry.get("ratio_worst")
        entry["meets"] = fig.meets(entry["worst"], ratio_worst)
        entry["pi_estimate"] = fig.pi_estimate(entry["median"], base_median)
        entry["pi_rule"] = fig.pi
        entry["decimals"] = fig.decimals
        figures.append(entry)
    return {"module": bench.module, "title": bench.title, "what": bench.what, "repeats": len(runs),
            "wall_s": sum(run["wall_s"] for run in runs), "figures": figures,
            "notes": sorted({note for run in runs for note in run.get("notes", [])}),
            "samples": [run["samples"] for run in runs]}


def run_benchmark(bench: Benchmark, quick: bool, log: Callable[[str], None]) -> tuple[dict[str, Any], list[str]]:
    repeats = bench.quick_repeats if quick else bench.repeats
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        for index in range(repeats):
            log(f"[{bench.module}] repeat {index + 1}/{repeats}")
            runs.append(run_repeat(bench, quick, Path(scratch), index))
    plots = bench.plots(runs) if bench.plots is not None else []
    return aggregate(bench, runs), plots
