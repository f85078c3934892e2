"""`python -m bench.bareloop`: the lateness baseline, a bare asyncio loop with a 10 Hz and a 1 Hz
task sleeping to absolute deadlines (``start + k * period``, as the rate groups do) and nothing
else. The flight benchmark runs it beside the satellite over the same window, so both see the
same machine load."""

from __future__ import annotations

import asyncio
import json
import selectors
import sys

from bench.harness import child_parser


async def ticker(period: float, until: float, late: list[float]) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    k = 1
    while True:
        deadline = start + k * period
        if deadline > until:
            return
        await asyncio.sleep(deadline - loop.time())
        late.append(loop.time() - deadline)
        k += 1


async def measure(duration: float) -> dict[str, list[float]]:
    loop = asyncio.get_running_loop()
    until = loop.time() + duration
    fast: list[float] = []
    slow: list[float] = []
    await asyncio.gather(ticker(0.1, until, fast), ticker(1.0, until, slow))
    return {"10hz": fast, "1hz": slow}


def main(argv: list[str] | None = None) -> int:
    parser = child_parser(__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--selector", choices=["default", "select"], default="default",
                        help="select: the loop on select(2), which takes microsecond timeouts "
                             "(the default epoll selector waits in whole milliseconds, rounded up)")
    args = parser.parse_args(argv)
    if args.selector == "select":
        with asyncio.Runner(loop_factory=lambda: asyncio.SelectorEventLoop(selectors.SelectSelector())) as runner:
            result = runner.run(measure(args.duration))
    else:
        result = asyncio.run(measure(args.duration))
    text = json.dumps(result)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
