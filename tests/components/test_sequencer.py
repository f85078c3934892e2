"""The sequencer inside a real satellite, on virtual time: stored commands run in order through
the dispatcher (its checks included), are bounded, listed and deleted by command, survive a
reboot with their late policies applied, and a clock step never re-runs or reorders them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from flightsw.components.schedule import LatePolicy
from flightsw.components.sequencer import SOURCE
from flightsw.core.commands import CommandResponse, Completion, Reason
from flightsw.core.component import Arg, Component, command
from flightsw.core.types import U16
from flightsw.testing import ResponseLog, make_satellite

EPOCH = 1_800_000_000.0
RUN_LATE, SKIP, SKIP_IF_LATER_THAN = (int(p) for p in LatePolicy)


class Recorder(Component):
    """A component whose command leaves a trace: which tag ran, at which onboard UTC."""

    def __init__(self) -> None:
        super().__init__("rec", 0x0F00)
        self.marks: list[tuple[int, float | None]] = []
        self.refusing: str | None = None

    @command(args=[Arg("tag", U16)])
    def mark(self, tag: int) -> None:
        self.marks.append((tag, self.ctx.clock.utc()))

    def check_command(self, name: str, args: list[Any]) -> str | None:
        return self.refusing if name == "MARK" else None

    @property
    def tags(self) -> list[int]:
        return [tag for tag, _ in self.marks]


class SteppableUtc:
    """Onboard UTC following the loop clock, with an offset a test can step."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.offset = EPOCH - self.loop.time()

    def __call__(self) -> float:
        return self.loop.time() + self.offset


def events_of(sat: Any) -> list[Any]:
    records: list[Any] = []
    sat.events.add_sink(records.append)
    return records


def texts(sat: Any, events: list[Any], name: str) -> list[str]:
    """The formatted messages of the events whose name starts with ``name``."""
    return [e.text(sat.dictionary.by_name[e.name].decl.format) for e in events if e.name.startswith(name)]


async def send(sat: Any, log: ResponseLog, name: str, *args: Any) -> CommandResponse:
    verdict = sat.commands.submit(sat.dictionary.command(name).id, list(args))
    assert verdict.accepted, f"{name} rejected: {verdict}"
    seq = max(r.seq for r in log.items if r.name == name)
    return await log.wait_completion(seq, 30.0)


@pytest.mark.virtual_time
async def test_stored_commands_run_in_order_through_the_dispatchers_checks(tmp_path: Path, sat_runner) -> None:
    utc = SteppableUtc()
    rec = Recorder()
    sat = make_satellite(tmp_path, [rec], utc_source=utc)
    events = events_of(sat)
    await sat_runner.start(sat)
    log = ResponseLog(sat)
    t0 = utc()

    assert (await send(sat, log, "seq.STORE_IN", 30, "rec.MARK", "[2]", RUN_LATE, 0)).completion == Completion.SUCCESS
    assert (await send(sat, log, "seq.STORE_AT", int(t0) + 10, "rec.MARK", "[1]", SKIP, 0)).completion == Completion.SUCCESS
    done = await send(sat, log, "seq.STORE_SEQUENCE", "sequence pair\n+20 rec.MARK [3]\n+20 rec.MARK [4]", 0)
    assert done.completion == Completion.SUCCESS, done.detail
    assert (await send(sat, log, "seq.STORE_IN", 40, "rec.MARK", "[5]", SKIP, 0)).completion == Completion.SUCCESS
    assert sat.sequencer.pending.value == 5

    await asyncio.sleep(35.0)
    assert rec.tags == [1, 3, 4, 2]  # due order; the pair stored together keeps its file order
    for (tag, when), due in zip(rec.marks, (10, 20, 20, 30), strict=True):
        assert due <= when - t0 <= due + 1.5, (tag, when - t0)
    rec.refusing = "busy calibrating"
    await asyncio.sleep(10.0)
    assert rec.tags == [1, 3, 4, 2]  # the owner's refusal applies to stored commands too
    stats = sat.sequencer.stats
    assert (stats["dispatched"], stats["succeeded"], stats["rejected"], stats["failed"]) == (5, 4, 1, 0)
    stored_verdicts = [r for r in log.items if r.source == SOURCE and r.completion is None]
    assert [r.reason for r in stored_verdicts] == [Reason.OK] * 4 + [Reason.NOT_ALLOWED]
    messages = texts(sat, events, "seq.")
    assert any("Stored #5 rec.MARK: NOT_ALLOWED busy calibrating" in m for m in messages), messages
    assert sum("SUCCESS" in m for m in messages) == 4
    assert sat.sequencer.pending.value == 0


@pytest.mark.virtual_time
async def test_bad_stores_are_refused_with_the_reason_and_nothing_is_stored(tmp_path: Path, sat_runner) -> None:
    rec = Recorder()
    sat = make_satellite(tmp_path, [rec], "[sequencer]\nmax_items = 3\n", utc_source=SteppableUtc())
    await sat_runner.start(sat)
    log = ResponseLog(sat)
    cases = [
        (("rec.NOPE", "[]"), "rec.NOPE: no command 'rec.NOPE'"),
        (("rec.MARK", "[1, 2]"), "rec.MARK: 2 argument(s), expected 1 (tag)"),
        (("rec.MARK", "[70000]"), "rec.MARK: tag: 70000 does not fit U16"),
        (("rec.MARK", "[1"), "arguments are not a JSON array"),
    ]
    for (name, args), why in cases:
        done = await send(sat, log, "seq.STORE_IN", 60, name, args, SKIP, 0)
        assert done.completion == Completion.FAILURE and done.detail.startswith(why), done.detail
    done = await send(sat, log, "seq.STORE_SEQUENCE", "+0 rec.MARK [1]\n+1 rec.MARK [1]\n+2 rec.MARK\n", 0)
    assert done.completion == Completion.FAILURE
    assert done.detail.startswith("inline: line 3: rec.MARK: 0 argument(s), expected 1"), done.detail
    for tag in (1, 2):
        await send(sat, log, "seq.STORE_IN", 60, "rec.MARK", f"[{tag}]", SKIP, 0)
    done = await send(sat, log, "seq.STORE_SEQUENCE", "+0 rec.MARK [3]\n+1 rec.MARK [4]", 0)
    assert done.completion == Completion.FAILURE
    assert "2 more stored command(s) would exceed the maximum of 3 (2 stored)" in done.detail
    assert len(sat.sequencer.schedule) == 2  # the refused sequence left nothing behind
    assert sat.sequencer.stats["refused"] == 6


async def test_without_onboard_time_nothing_is_stored(tmp_path: Path, sat_runner) -> None:
    sat = await sat_runner.start(make_satellite(tmp_path, [Recorder()]))
    log = ResponseLog(sat)
    done = await send(sat, log, "seq.STORE_IN", 60, "rec.MARK", "[1]", SKIP, 0)
    assert done.completion == Completion.FAILURE and "onboard time unknown" in done.detail
    assert len(sat.sequencer.schedule) == 0


@pytest.mark.virtual_time
async def test_list_and_delete_by_id_sequence_and_all(tmp_path: Path, sat_runner) -> None:
    sat = make_satellite(tmp_path, [Recorder()], utc_source=SteppableUtc())
    events = events_of(sat)
    await sat_runner.start(sat)
    log = ResponseLog(sat)
    await send(sat, log, "seq.STORE_IN", 600, "rec.MARK", "[1]", SKIP_IF_LATER_THAN, 30)
    await send(sat, log, "seq.STORE_SEQUENCE", "sequence one\n+700 rec.MARK [2]\n+800 rec.MARK [3]", 0)
    await send(sat, log, "seq.STORE_SEQUENCE", "sequence two\n+900 rec.MARK [4]", 0)
    await send(sat, log, "seq.LIST")
    listed = texts(sat, events, "seq.item_info")
    assert len(listed) == 4
    assert listed[0].startswith("#1 due ") and "rec.MARK [1] late SKIP_IF_LATER_THAN:30 seq -" in listed[0]
    assert listed[1].endswith("seq one") and listed[3].endswith("seq two")
    assert texts(sat, events, "seq.listing")[0].startswith("4 stored command(s), next due 2027-")

    assert (await send(sat, log, "seq.DELETE", 2)).completion == Completion.SUCCESS
    done = await send(sat, log, "seq.DELETE", 2)
    assert done.completion == Completion.FAILURE and done.detail == "no stored command #2"
    assert (await send(sat, log, "seq.DELETE_SEQUENCE", "two")).completion == Completion.SUCCESS
    assert [i.id for i in sat.sequencer.schedule] == [1, 3]
    assert (await send(sat, log, "seq.DELETE_ALL")).completion == Completion.SUCCESS
    assert len(sat.sequencer.schedule) == 0 and sat.sequencer.stats["deleted"] == 4
    assert sat.state.get("sequencer.schedule")["items"] == []  # the deletion is persisted


@pytest.mark.virtual_time
async def test_a_clock_step_backwards_neither_reruns_nor_reorders(tmp_path: Path, sat_runner) -> None:
    utc = SteppableUtc()
    rec = Recorder()
    sat = make_satellite(tmp_path, [rec], utc_source=utc)
    await sat_runner.start(sat)
    log = ResponseLog(sat)
    await send(sat, log, "seq.STORE_SEQUENCE", "+10 rec.MARK [1]\n+20 rec.MARK [2]\n+20 rec.MARK [3]", 0)
    await asyncio.sleep(12.0)
    assert rec.tags == [1]
    utc.offset -= 15.0  # the ground corrects the clock: 15 s back, tag 1's time comes round again
    await asyncio.sleep(40.0)
    assert rec.tags == [1, 2, 3]  # 1 not run again; 2 before 3 as stored
    utc.offset += 3600.0  # and a step forwards runs nothing twice either
    await asyncio.sleep(5.0)
    assert rec.tags == [1, 2, 3] and len(sat.sequencer.schedule) == 0


@pytest.mark.virtual_time
async def test_sequence_files_are_read_from_the_quarantine_only_and_bounded(tmp_path: Path, sat_runner) -> None:
    extra = "[filetransfer]\nlocal_id = 2\nremote_id = 1\n[sequencer]\nmax_file_bytes = 256\n"
    sat = make_satellite(tmp_path, [Recorder()], extra, utc_source=SteppableUtc())
    quarantine = sat.config.data_dir / "cfdp" / "quarantine"
    await asyncio.to_thread(quarantine.mkdir, parents=True)
    await asyncio.to_thread((quarantine / "big.seq").write_text, "+1 rec.MARK [1]\n" * 20)
    await asyncio.to_thread((quarantine / "ok.seq").write_text, "+1 rec.MARK [1]\n+1 rec.MARK [2]\n")
    await asyncio.to_thread((tmp_path / "outside.seq").write_text, "+1 rec.MARK [1]\n")
    await sat_runner.start(sat)
    log = ResponseLog(sat)
    for name, why in (("../../outside.seq", "bad sequence file name '../../outside.seq'"),
                      ("missing.seq", "missing.seq: FileNotFoundError"),
                      ("big.seq", "big.seq: ValueError: larger than sequencer.max_file_bytes (256)")):
        done = await send(sat, log, "seq.LOAD_SEQUENCE", name, 0)
        assert done.completion == Completion.FAILURE and done.detail.startswith(why), done.detail
    done = await send(sat, log, "seq.LOAD_SEQUENCE", "ok.seq", 0)
    assert done.completion == Completion.SUCCESS, done.detail
    assert [(i.sequence, i.source, i.args) for i in sat.sequencer.schedule] == [("ok", "ok.seq", (1,)), ("ok", "ok.seq", (2,))]
    done = await send(sat, log, "seq.LOAD_SEQUENCE", "ok.seq", 0)
    assert done.completion == Completion.FAILURE and "sequence ok is already stored" in done.detail
