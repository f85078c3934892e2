"""Playback end to end: recorded housekeeping and events come down on the stored APID through
the real link (pty, TCP, ground station), merge with what came live, and gaps are seen."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flightsw.core.commands import Completion
from flightsw.ground.records import KIND_EVT, KIND_TLM, RecordIngest, gap_requests
from flightsw.link import playback as playback_module
from flightsw.link.scheduler import Priority

from .harness import ground_pass, link_of


async def _recorded(sat, count: int) -> int:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(20.0):
        while sat.records.next_seq < count:
            await asyncio.sleep(0.05)
    return int(sat.records.next_seq)


async def test_playback_merges_with_live_records_without_duplicates(tmp_path: Path) -> None:
    async with ground_pass(tmp_path) as (sat, _probe, station):
        ingest = RecordIngest(station.archive, station.wall_clock).attach(station)
        head = await _recorded(sat, 30)
        response = await station.command("playback.REQUEST", {"kind": "0", "first": "0", "last": str(head - 1),
                                                              "every_nth": "1", "channels": ""}, timeout=5.0)
        assert response is not None and response.completion == Completion.SUCCESS, response
        assert await station.wait_until(lambda: ingest.stats.played_back >= head, 20.0), ingest.stats
        archive = station.archive
        await archive.call(lambda: None)  # every queued store has run
        numbered = await archive.call(lambda: archive.db.execute(
            "SELECT COUNT(DISTINCT seq) FROM records WHERE seq < ?", (head,)).fetchone()[0])
        assert numbered == head  # every record 0..head-1 is archived with its number
        assert await archive.call(archive.record_gaps, 0) == [] or \
            (await archive.call(archive.record_gaps, 0))[0][0] >= head  # only records newer than the request
        rows = await archive.call(lambda: archive.db.execute(
            "SELECT kind, ident, boot, seconds, COUNT(*) FROM records GROUP BY 1, 2, 3, 4 HAVING COUNT(*) > 1").fetchall())
        assert rows == []  # merged by spacecraft time: nothing stored twice
        assert ingest.stats.live > 0 and ingest.stats.duplicates > 0  # live ones came again, merged
        counts = await archive.call(archive.record_counts)
        # all of them came live first: the played-back copies only gave them their numbers
        assert counts["numbered"] >= head and counts.get("tlm_live", 0) > 0 and counts.get("evt_live", 0) > 0
        timeline = await archive.call(archive.timeline, None)
        assert [(b, s) for b, s, *_ in timeline] == sorted((b, s) for b, s, *_ in timeline)
        assert {k for _b, _s, _u, k, *_ in timeline} == {KIND_TLM, KIND_EVT}


async def test_decimated_playback_and_gaps_are_requested_again(tmp_path: Path) -> None:
    async with ground_pass(tmp_path) as (sat, _probe, station):
        head = await _recorded(sat, 40)
        await asyncio.sleep(0.5)  # what went live so far is not archived: as if out of contact
        RecordIngest(station.archive, station.wall_clock).attach(station)
        # telemetry only, every 2nd sample, one channel: a thinned look at the recorded period
        response = await station.command("playback.REQUEST", {
            "kind": "1", "first": "0", "last": str(head - 1), "every_nth": "2",
            "channels": "probe.executions"}, timeout=5.0)
        assert response is not None and response.completion == Completion.SUCCESS, response
        playback = sat.component("playback")
        assert await station.wait_until(lambda: playback.stats["requests_done"] >= 1
                                        and link_of(sat).scheduler.depth(Priority.STORED) == 0, 20.0)
        await asyncio.sleep(1.0)  # the last frames on the air
        archive = station.archive
        partial = await archive.call(lambda: archive.db.execute(
            "SELECT COUNT(*) FROM records WHERE partial AND seq IS NOT NULL").fetchone()[0])
        assert partial > 0  # channel subsets are archived as such
        gaps = await archive.call(archive.record_gaps, 0)
        assert gaps, "events and every other sample were left out: the ground must see gaps"
        # the ground asks for what it lacks: afterwards no gap below the old head remains
        requests = gap_requests([(a, min(b, head - 1)) for a, b in gaps if a < head], limit=16)
        assert requests and all(len(r) <= 160 for r in requests)
        for ranges in requests:  # as many ranges per command as fit
            reply = await station.command("playback.REQUEST_RANGES", {"kind": "0", "ranges": ranges}, timeout=5.0)
            assert reply is not None and reply.completion == Completion.SUCCESS, reply

        async def filled() -> bool:
            remaining = await archive.call(archive.record_gaps, 0)
            return not [g for g in remaining if g[0] < head]

        async with asyncio.timeout(30.0):
            while not await filled():
                await asyncio.sleep(0.2)
        whole = await archive.call(lambda: archive.db.execute(
            "SELECT COUNT(*) FROM records WHERE partial AND seq < ?", (head,)).fetchone()[0])
        assert whole < partial  # played back whole, subset rows gave way to the full packets


async def test_bad_requests_are_refused_with_a_reason(tmp_path: Path) -> None:
    async with ground_pass(tmp_path) as (_sat, _probe, station):
        reply = await station.command("playback.REQUEST", {"kind": "0", "first": "9", "last": "3",
                                      "every_nth": "1", "channels": ""}, timeout=5.0)
        assert reply is not None and reply.completion == Completion.FAILURE
        assert "after last" in reply.detail
        reply = await station.command("playback.REQUEST", {"kind": "0", "first": "0", "last": "3",
                                      "every_nth": "1", "channels": "probe.nonsense"}, timeout=5.0)
        assert reply is not None and reply.completion == Completion.FAILURE
        assert "probe.nonsense" in reply.detail
        reply = await station.command("playback.REQUEST_RANGES", {"kind": "0", "ranges": "5-9,x"}, timeout=5.0)
        assert reply is not None and reply.completion == Completion.FAILURE
        assert "'x' is not a record number" in reply.detail


async def test_time_range_needs_utc_on_board_and_cancel_stops_a_playback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(playback_module, "QUEUE_TARGET", 2)  # a playback longer than what it keeps queued
    async with ground_pass(tmp_path) as (sat, _probe, station):
        reply = await station.command("playback.REQUEST_TIME", {"kind": "0", "utc_from": "2000", "utc_to": "1000",
                                      "every_nth": "1", "channels": ""}, timeout=5.0)
        assert reply is not None and reply.completion == Completion.FAILURE
        assert "utc_from is after utc_to" in reply.detail
        await _recorded(sat, 10)
        playback = sat.component("playback")
        # this satellite has no UTC (time.utc_source = "ground", never set): nothing is selectable by time
        reply = await station.command("playback.REQUEST_TIME", {"kind": "0", "utc_from": "0", "utc_to": "4e9",
                                      "every_nth": "1", "channels": ""}, timeout=5.0)
        assert reply is not None and reply.completion == Completion.SUCCESS
        async with asyncio.timeout(10.0):
            while playback.stats["requests_done"] < 1:
                await asyncio.sleep(0.05)
        assert playback.stats["records_sent"] == 0
        await _recorded(sat, 20)
        link_of(sat).set_contact(False)  # out of contact: stored packets are held, the request stays running
        for _ in range(3):
            reply = await station.command("playback.REQUEST", {"kind": "0", "first": "0", "last": "100000",
                                          "every_nth": "1", "channels": ""}, timeout=5.0)
            assert reply is not None and reply.completion == Completion.SUCCESS
        reply = await station.command("playback.CANCEL", {}, timeout=5.0)
        assert reply is not None and reply.completion == Completion.SUCCESS
        async with asyncio.timeout(10.0):
            while playback._running is not None or playback._requests:
                link_of(sat).send_beacon()  # a frame going out lets the waiting request see the cancel
                await asyncio.sleep(0.2)
        assert playback.stats["requests_done"] == 1  # only the time-range one: the others were cancelled
        assert link_of(sat).scheduler.depth(Priority.STORED) > 0  # what was queued waits for the pass
