"""`python -m bench.core`: costs of the runtime core, each as a ratio to a baseline timed in the same run.

Why ratios: these machines are shared and noisy; the ratio of our code to the plain operation it
wraps (a raw write, a dict store, a bare task switch) is what stays comparable between runs.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgpack

from flightsw.core.atomic_store import AtomicStore
from flightsw.core.records import RecordLog
from flightsw.testing import ResponseLog, make_satellite, with_running


def per_op(fn: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def bench_records(tmp: Path, n: int = 20000) -> tuple[float, float]:
    record = {"k": "tlm", "v": b"x" * 60}
    payload = msgpack.packb(record)
    with open(tmp / "raw.bin", "ab") as fh:
        def raw() -> None:
            fh.write(payload)
            fh.flush()

        baseline = per_op(raw, n)
    log = RecordLog(tmp / "records", segment_bytes=1 << 20, max_bytes=8 << 20)
    log.open()
    ours = per_op(lambda: log.append(record), n)
    log.close()
    return ours, baseline


def bench_atomic_store(tmp: Path, n: int = 200) -> tuple[float, float]:
    value = {"boot_count": 12, "flags": {"silence_served": True}, "counters": {"uplink": 4711}}
    blob = msgpack.packb(value)

    def raw() -> None:
        with open(tmp / "plain", "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())

    baseline = per_op(raw, n)
    store = AtomicStore(tmp / "state")
    ours = per_op(lambda: store.save(value), n)
    return ours, baseline


def bench_commands(tmp: Path, n: int = 2000) -> tuple[float, float]:
    sat = make_satellite(tmp / "sat")

    async def body(sat) -> float:  # type: ignore[no-untyped-def]
        log = ResponseLog(sat)
        op = sat.dictionary.command("exec.NO_OP").id
        t0 = time.perf_counter()
        for seq in range(1, n + 1):
            sat.commands.submit(op, [], seq=seq)
            await log.wait_completion(seq)
        return (time.perf_counter() - t0) / n

    async def baseline() -> float:
        queue: asyncio.Queue[int] = asyncio.Queue()

        async def worker() -> None:
            while True:
                await queue.get()
                queue.task_done()

        task = asyncio.create_task(worker())
        t0 = time.perf_counter()
        for i in range(n):
            queue.put_nowait(i)
            await queue.join()
        task.cancel()
        return (time.perf_counter() - t0) / n

    ours = asyncio.run(with_running(sat, body))
    return ours, asyncio.run(baseline())


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows = [
            ("record log append (flushed to the OS)", "raw write+flush", *bench_records(tmp)),
            ("atomic state save (2 fsyncs + rename)", "plain write+fsync", *bench_atomic_store(tmp)),
            ("command submit -> completion (NO_OP)", "asyncio queue round trip", *bench_commands(tmp)),
        ]
    for name, base_name, ours, base in rows:
        print(f"{name:42s} {ours * 1e6:9.1f} us  = {ours / base:5.1f}x  {base_name} ({base * 1e6:.1f} us)")


if __name__ == "__main__":
    main()
