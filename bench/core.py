"""`python -m bench.core`: costs of the runtime core, each against a baseline timed in the same process.

Why ratios: these machines are shared and noisy; the ratio of our code to the plain operation it
wraps (a raw write, a plain fsync, a bare task switch) is what stays comparable between runs.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

import msgpack

from bench.harness import child_parser, per_call, write_result
from flightsw.core.atomic_store import AtomicStore
from flightsw.core.records import RecordLog
from flightsw.testing import ResponseLog, make_satellite, with_running


def bench_records(tmp: Path, n: int) -> tuple[float, float]:
    record = {"k": "tlm", "v": b"x" * 60}
    payload = msgpack.packb(record)
    with open(tmp / "raw.bin", "ab") as fh:
        def raw() -> None:
            fh.write(payload)
            fh.flush()

        baseline = per_call(raw, n)
    log = RecordLog(tmp / "records", segment_bytes=1 << 20, max_bytes=8 << 20)
    log.open()
    ours = per_call(lambda: log.append(record), n)
    log.close()
    return ours, baseline


def bench_atomic_store(tmp: Path, n: int) -> tuple[float, float]:
    value = {"boot_count": 12, "flags": {"silence_served": True}, "counters": {"uplink": 4711}}
    blob = msgpack.packb(value)

    def raw() -> None:
        with open(tmp / "plain", "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())

    baseline = per_call(raw, n)
    store = AtomicStore(tmp / "state")
    ours = per_call(lambda: store.save(value), n)
    return ours, baseline


def bench_commands(tmp: Path, n: int) -> tuple[float, float]:
    sat = make_satellite(tmp / "sat")

    async def body(sat) -> float:  # type: ignore[no-untyped-def]
        log = ResponseLog(sat)
        op = sat.dictionary.command("exec.NO_OP").id
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for seq in range(1, n + 1):
            sat.commands.submit(op, [], seq=seq)
            await log.wait_completion(seq)
        return (loop.time() - t0) / n

    async def baseline() -> float:
        queue: asyncio.Queue[int] = asyncio.Queue()

        async def worker() -> None:
            while True:
                await queue.get()
                queue.task_done()

        task = asyncio.create_task(worker())
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i in range(n):
            queue.put_nowait(i)
            await queue.join()
        task.cancel()
        return (loop.time() - t0) / n

    ours = asyncio.run(with_running(sat, body))
    return ours, asyncio.run(baseline())


def main(argv: list[str] | None = None) -> int:
    args = child_parser(__doc__.splitlines()[0]).parse_args(argv)
    scale = 10 if args.quick else 1
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        record, raw = bench_records(tmp, 20000 // scale)
        save, fsync = bench_atomic_store(tmp, 200 // scale)
        command, queue = bench_commands(tmp, 2000 // scale)
    us = 1e6
    write_result(args.json, {
        "record_append_us": record * us, "raw_write_us": raw * us,
        "atomic_save_us": save * us, "plain_fsync_us": fsync * us,
        "command_us": command * us, "queue_round_trip_us": queue * us,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
