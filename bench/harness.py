"""The contract between the suite and one benchmark module, and the helpers both sides share.

A benchmark module (``bench/<name>.py``) measures once per process: ``python -m bench.<name>
--json OUT [--quick]`` writes ``{"figures": {id: value}, "samples": {...}, "notes": [...]}`` to
OUT. The suite (``bench/suite.py``) runs it in a fresh subprocess per repeat, so no repeat
inherits another's caches, heap or threads, and reduces the repeats to median and worst.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

SCHEMA = 1  # bumped when the JSON layout changes (tests/bench checks it)


def child_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", default=None, help="write the result here (default: print it)")
    parser.add_argument("--quick", action="store_true", help="short durations (smoke runs)")
    return parser


def write_result(path: str | None, figures: dict[str, float], samples: dict[str, Any] | None = None,
                 notes: Sequence[str] = ()) -> None:
    """One repeat's result; values must be finite numbers (a benchmark that cannot measure a
    figure leaves it out rather than writing a guess)."""
    for key, value in figures.items():
        if not isinstance(value, int | float) or value != value:
            raise ValueError(f"figure {key}: not a number: {value!r}")
    result = {"schema": SCHEMA, "figures": figures, "samples": samples or {}, "notes": list(notes)}
    text = json.dumps(result)
    if path is None:
        print(text)
    else:
        Path(path).write_text(text)


def progress(message: str) -> None:
    print(f"    {message}", file=sys.stderr, flush=True)


# --- process measurements (Linux /proc) ----------------------------------------------------------

def rss_mb(pid: int | str = "self") -> float:
    """Resident set size (VmRSS) of a process in MiB."""
    return _status_kb(pid, "VmRSS") / 1024.0


def peak_rss_mb(pid: int | str = "self") -> float:
    """Peak resident set size (VmHWM) in MiB."""
    return _status_kb(pid, "VmHWM") / 1024.0


def _status_kb(pid: int | str, key: str) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return float(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time of a whole process (all threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds() -> dict[str, float]:
    """CPU seconds of each live thread of this process, by Python thread name."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        name = names.get(int(tid), f"thread-{tid}")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


class RssSampler:
    """VmRSS of a process sampled on a thread every ``period`` s of wall time."""

    def __init__(self, period: float = 1.0, pid: int | str = "self") -> None:
        self.period = period
        self.pid = pid
        self.samples: list[tuple[float, float]] = []  # (wall s since start, MiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)
        self._t0 = time.perf_counter()

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._take()

    def _take(self) -> None:
        try:
            self.samples.append((time.perf_counter() - self._t0, rss_mb(self.pid)))
        except (FileNotFoundError, ProcessLookupError):
            pass

    def _run(self) -> None:
        while not self._stop.is_set():
            self._take()
            self._stop.wait(self.period)


# --- statistics ---------------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank: a value that actually occurred."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def worst(values: Sequence[float], lower_is_better: bool) -> float:
    return max(values) if lower_is_better else min(values)


def per_call(fn: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n
