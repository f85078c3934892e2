"""`python -m bench.flood`: an uplink flood of garbage frames over the KISS TCP port.

The laptop mission runs in real time as in bench.flight. After a quiet window, a client on the
simulated transceiver's KISS port sends 200 frames a second for the flood window: a third random
bytes, a third AX.25 UI frames addressed to the satellite with random information fields, a third
addressed to it carrying a well-formed space packet on the command APID with a random body and
MAC. The transceiver passes what fits its 9600 bit/s uplink (its queue is bounded and drops the
rest, as a radio would). Measured: the commands the dispatcher received and executed (must stay
0), the 10 Hz group's wake-up lateness p99 in the quiet window and during the flood, and the
process's RSS before and after.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

from bench.configs import sim_config
from bench.flight import group_at
from bench.harness import child_parser, percentile, progress, rss_mb, write_result
from flightsw.app import Satellite
from flightsw.core.eventloop import flight_loop
from flightsw.core.scheduler import RateGroup
from flightsw.link import ax25
from flightsw.link.component import LinkComponent
from flightsw.link.packets import Apid, PacketType, build
from flightsw.link.subsystem import SIM_TRANSCEIVER
from flightsw.testing import wait_until
from hal import kiss

RATE_HZ = 200.0


def garbage_frames(rng: random.Random, satellite: ax25.Address, ground: ax25.Address):  # type: ignore[no-untyped-def]
    """An endless cycle of the three kinds of garbage, KISS-encoded."""
    while True:
        yield kiss.encode(rng.randbytes(rng.randrange(1, 200)))
        yield kiss.encode(ax25.UiFrame(satellite, ground, rng.randbytes(rng.randrange(1, 200))).encode())
        packet = build(PacketType.TC, Apid.COMMAND, rng.randrange(16384), b"", rng.randbytes(rng.randrange(20, 120)))
        yield kiss.encode(ax25.UiFrame(satellite, ground, packet).encode())


async def flood(port: int, seconds: float, satellite: ax25.Address, ground: ax25.Address) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    drain = asyncio.create_task(_discard(reader))
    loop = asyncio.get_running_loop()
    frames = garbage_frames(random.Random(15), satellite, ground)
    start = loop.time()
    sent = 0
    try:
        while loop.time() - start < seconds:
            sent += 1
            writer.write(next(frames))
            await writer.drain()
            await asyncio.sleep(max(0.0, start + sent / RATE_HZ - loop.time()))
    finally:
        drain.cancel()
        writer.close()
    return sent


async def _discard(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


async def run(data_dir: Path, quiet_s: float, flood_s: float) -> dict[str, float]:
    sat = Satellite(sim_config(data_dir))
    fast = group_at(sat, 10.0)
    late: list[float] = []

    def record(group: RateGroup, lateness: float) -> None:
        late.append(lateness)

    fast.on_cycle_start = record
    runner = asyncio.create_task(sat.run())
    await sat.started.wait()
    transceiver = sat.ports.require(SIM_TRANSCEIVER)
    await wait_until(lambda: transceiver.listening)
    link = sat.component("link")
    assert isinstance(link, LinkComponent)
    await asyncio.sleep(3.0)

    received0 = sat.commands.stats["received"]
    executed0 = link.stats["commands_executed"]
    frames0 = link.stats["frames_received"]
    late.clear()
    await asyncio.sleep(quiet_s)
    quiet = list(late)
    rss_before = rss_mb()
    late.clear()
    began = time.perf_counter()
    sent = await flood(transceiver.bound_port, flood_s, link.settings.callsign, link.settings.ground)
    flood_wall = time.perf_counter() - began
    during = list(late)
    await asyncio.sleep(2.0)  # what the transceiver still had queued arrives
    rss_after = rss_mb()
    figures = {
        "frames_offered": float(sent),
        "offered_per_s": sent / flood_wall,
        "frames_reaching_flight": float(link.stats["frames_received"] - frames0),
        "commands_received": float(sat.commands.stats["received"] - received0),
        "commands_executed": float(link.stats["commands_executed"] - executed0),
        "quiet_lateness_p99_ms": 1e3 * percentile(quiet, 99),
        "flood_lateness_p99_ms": 1e3 * percentile(during, 99),
        "flood_lateness_rise_ms": 1e3 * (percentile(during, 99) - percentile(quiet, 99)),
        "rss_before_mb": rss_before,
        "rss_after_mb": rss_after,
        "flood_rss_growth_mb": rss_after - rss_before,
    }
    sat.stop_event.set()
    await runner
    progress(f"{sent} garbage frames offered, {figures['frames_reaching_flight']:.0f} reached the flight "
             f"software, {figures['commands_executed']:.0f} commands executed; p99 "
             f"{figures['quiet_lateness_p99_ms']:.3f} -> {figures['flood_lateness_p99_ms']:.3f} ms")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = child_parser(__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=None, help="flood window, s (default 60, quick 5)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("flightsw").setLevel(logging.ERROR)
    flood_s = args.duration or (5.0 if args.quick else 60.0)
    quiet_s = 5.0 if args.quick else 20.0
    with tempfile.TemporaryDirectory() as d:
        with asyncio.Runner(loop_factory=flight_loop) as runner:
            figures = runner.run(run(Path(d) / "data", quiet_s, flood_s))
    write_result(args.json, figures, {}, [f"quiet window {quiet_s:g} s, flood {flood_s:g} s at "
                                          f"{RATE_HZ:g} frames/s"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
