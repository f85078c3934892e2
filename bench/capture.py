"""`python -m bench.capture`: a 12 MP capture to thumbnail and preview, and the loop meanwhile.

The frame is what the camera hands over on the board: a 4056 x 3040 JPEG (the HQ camera's full
resolution; the simulator's rendered scene with sensor noise, encoded once before timing). The
products are made as imaging makes them, by ``flightsw.imaging.products.make_products`` on the
CPU executor (``Workers.run_cpu``), eight captures back to back (median time), while a 100 Hz
probe task on the loop sleeps to absolute deadlines; its wake-up lateness p99 during the work is
compared with a quiet window of the same length after it.
Imaging has no triage score, so none is timed.
"""

from __future__ import annotations

import asyncio
import statistics
import sys

import numpy as np

from bench.bareloop import ticker
from bench.harness import child_parser, percentile, progress, write_result
from flightsw.core.eventloop import flight_loop
from flightsw.core.workers import Workers
from flightsw.imaging.products import make_products
from hal.camera import Frame, encode_jpeg
from sim.camera import render_radiance

WIDTH, HEIGHT = 4056, 3040
PREVIEW_QUALITY = 60
CAPTURES = 8  # back to back
PROBE_S = 0.01  # the loop's probe task: 100 wake-ups a second, enough for a p99 of a few seconds


def twelve_megapixel_jpeg() -> bytes:
    radiance = render_radiance(43.2, 76.9, 45.0, WIDTH, HEIGHT, seed=7)
    # sensor noise (sigma 2 DN): a noiseless rendered scene compresses far better than a real frame
    noise = np.random.default_rng(7).normal(0.0, 2.0, radiance.shape)
    rgb = np.clip(radiance / max(float(radiance.max()), 1e-9) * 235.0 + 10.0 + noise, 0, 255).astype(np.uint8)
    return encode_jpeg(rgb, 92)


async def run(frame: Frame) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    workers = Workers()
    try:
        # the products once, untimed: imports and first-use costs are not the steady state
        await workers.run_cpu(make_products, frame, PREVIEW_QUALITY)
        busy: list[float] = []
        watch = asyncio.create_task(ticker(PROBE_S, float("inf"), busy))
        times = []
        for _ in range(CAPTURES):
            t0 = loop.time()
            products = await workers.run_cpu(make_products, frame, PREVIEW_QUALITY)
            times.append(loop.time() - t0)
        watch.cancel()
        quiet: list[float] = []
        await ticker(PROBE_S, loop.time() + max(sum(times), 1.0), quiet)
        seconds = statistics.median(times)
    finally:
        workers.shutdown()
    progress(f"12 MP JPEG ({len(frame.jpeg or b'') / 1e6:.1f} MB) -> preview {len(products.preview)} B + "
             f"thumbnail {len(products.thumbnail)} B in {seconds:.3f} s")
    figures = {"products_s": seconds, "products_worst_s": max(times), "quiet_lateness_p99_ms": 1e3 * percentile(quiet, 99)}
    if busy:
        figures["busy_lateness_p99_ms"] = 1e3 * percentile(busy, 99)
        figures["capture_lateness_rise_ms"] = figures["busy_lateness_p99_ms"] - figures["quiet_lateness_p99_ms"]
    return figures


def main(argv: list[str] | None = None) -> int:
    args = child_parser(__doc__.splitlines()[0]).parse_args(argv)
    jpeg = twelve_megapixel_jpeg()
    frame = Frame("jpeg", WIDTH, HEIGHT, jpeg=jpeg)
    with asyncio.Runner(loop_factory=flight_loop) as runner:
        figures = runner.run(run(frame))
    write_result(args.json, figures, {}, [f"{WIDTH}x{HEIGHT} JPEG of {len(jpeg) / 1e6:.1f} MB"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
