"""Child process for the kill test: writes state, a parameter and records in a loop and reports
each completed write on stdout ("S k", "P k", "R k") so the parent knows what must survive."""

import asyncio
import sys
from pathlib import Path

from flightsw.core.component import Component, Parameter
from flightsw.core.dictionary import Dictionary
from flightsw.core.params import ParameterStore
from flightsw.core.records import RecordLog
from flightsw.core.state import StateStore
from flightsw.core.types import U32


class Counter(Component):
    value = Parameter(U32, default=0)


async def main(data: Path) -> None:
    state = StateStore(data / "state")
    state.load()
    start = int(state.get("counter", 0))
    comp = Counter("ctr", 0x10)
    d = Dictionary.build([comp])
    params = ParameterStore(data / "params")
    params.declare(d.parameters)
    params.load()
    pid = next(iter(d.parameters))
    records = RecordLog(data / "records", segment_bytes=4096, max_bytes=64 * 1024)
    report = records.open()
    last = max((r["k"] for r in records.read_all()), default=0)
    print(f"OPEN {report.truncated_bytes}", flush=True)
    k = start
    rk = last
    while True:
        k += 1
        rk += 1
        state.set("counter", k)
        state.set("blob", "x" * (k % 500))  # varying size: torn writes would show
        state.save_blocking()
        print(f"S {k}", flush=True)
        await params.set(pid, k)
        print(f"P {k}", flush=True)
        records.append({"k": rk, "pad": "y" * (rk % 300)})
        print(f"R {rk}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
