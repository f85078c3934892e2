"""`flightsw ground gaps [--from N] [--request] [--max N] [--max-records N] [--kind K]`.

Shows which record numbers the archive still lacks (played-back records carry numbers; the
satellite's newest number comes with every played-back packet) and, with ``--request``, asks the
satellite to play them back (``playback.REQUEST_RANGES``, as many ranges per command as fit).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: `flightsw run` builds this parser without the ground stack
    from flightsw.ground.archive import Archive
    from flightsw.ground.station import GroundStation


def register(actions: argparse._SubParsersAction) -> None:
    gaps = actions.add_parser("gaps", help="record numbers missing from the archive; --request asks for them")
    gaps.add_argument("--from", dest="first", type=int, default=0, help="ignore records below this number")
    gaps.add_argument("--request", action="store_true", help="send playback.REQUEST for the gaps")
    gaps.add_argument("--max", type=int, default=8, help="at most this many requests (default 8)")
    gaps.add_argument("--kind", type=int, choices=(0, 1, 2), default=0, help="0 all, 1 telemetry, 2 events")
    gaps.add_argument("--max-records", type=int, default=None, help="ask for at most this many records")
    gaps.add_argument("--wait", type=float, default=60.0,
                      help="after --request, archive what comes down until the gaps asked for are filled "
                           "or this many seconds passed (default 60)")
    gaps.set_defaults(func=cmd_gaps)


def _report(archive: Archive, first: int) -> tuple[list[tuple[int, int]], str]:
    gaps = archive.record_gaps(first)
    head = archive.onboard_head()
    counts = archive.record_counts()
    missing = sum(b - a + 1 for a, b in gaps)
    lines = [f"archive: {', '.join(f'{k} {v}' for k, v in sorted(counts.items())) or 'no records'}",
             f"satellite's next record number: {head if head is not None else 'unknown (no playback yet)'}",
             f"missing: {missing} records in {len(gaps)} gaps"]
    lines += [f"  #{a}-#{b} ({b - a + 1})" for a, b in gaps[:50]]
    if len(gaps) > 50:
        lines.append(f"  ... {len(gaps) - 50} more")
    return gaps, "\n".join(lines)


async def _request(args: argparse.Namespace, gaps: list[tuple[int, int]]) -> int:
    from flightsw.ground.connect import close_station, open_station
    from flightsw.ground.records import REQUEST_COMMAND, gap_requests, request_assignments
    from flightsw.link import stored

    station: GroundStation = await open_station(args)
    receiver = asyncio.create_task(station.run())
    failures = 0
    asked: list[str] = []
    try:
        for ranges in gap_requests(gaps, args.max, args.max_records):
            asked.append(ranges)
            response = await station.command(REQUEST_COMMAND, request_assignments(ranges, args.kind),
                                             timeout=10.0, retries=2)
            outcome = "no response" if response is None else (
                response.reason.name if response.completion is None else response.completion.name)
            print(f"{REQUEST_COMMAND} {ranges}: {outcome}")
            failures += outcome != "SUCCESS"
        if asked and not failures:
            await _collect(station, stored.parse_ranges(",".join(asked)), args.wait)
    finally:
        await close_station(station, [receiver])
    return 1 if failures else 0


async def _collect(station: GroundStation, asked: list[tuple[int, int]], limit: float) -> None:
    """Receive until no gap the ground asked for is left (or ``limit`` seconds), then say what is."""
    archive = station.archive
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        left = [g for g in await archive.call(archive.record_gaps, 0)
                if any(a <= g[1] and g[0] <= b for a, b in asked)]
        if not left or loop.time() >= deadline:
            break
        await asyncio.sleep(1.0)
    missing = sum(min(b, g[1]) - max(a, g[0]) + 1 for g in left for a, b in asked if a <= g[1] and g[0] <= b)
    print(f"after playback: {missing} of the records asked for still missing")


def cmd_gaps(args: argparse.Namespace) -> int:
    from flightsw.ground.archive import Archive

    if not Path(args.db).exists():
        print(f"flightsw ground gaps: no archive {args.db}", file=sys.stderr)
        return 2
    archive = Archive(args.db)
    try:
        gaps, text = archive.call_blocking(_report, archive, args.first)
    finally:
        archive.close()
    print(text)
    if not args.request or not gaps:
        return 0
    return asyncio.run(_request(args, gaps))
