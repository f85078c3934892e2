"""What the figures were measured on, and a fixed pure-Python workload to compare machines by."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("model name", "Model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_mb() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def calibration_ms() -> float:
    """Median of 5 runs of a fixed interpreter-bound workload (loops, dicts, method calls, bytes),
    in ms: the same code on a Pi gives the CPU factor the page otherwise assumes."""

    class Point:
        __slots__ = ("x", "y")

        def __init__(self, x: int, y: int) -> None:
            self.x, self.y = x, y

        def step(self, k: int) -> int:
            self.x = (self.x * 31 + k) & 0xFFFF
            self.y ^= self.x
            return self.y

    def work() -> int:
        table: dict[int, int] = {}
        p = Point(1, 2)
        acc = 0
        for i in range(200_000):
            acc += p.step(i)
            table[i & 1023] = acc & 0xFF
        return acc + len(bytes(table.values()))

    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        work()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def describe() -> dict[str, object]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_mb": memory_mb(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "load_average": list(os.getloadavg()),
        "calibration_ms": calibration_ms(),
    }
