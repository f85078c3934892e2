"""Imaging sequences as stored commands across a reboot (two boots of the simulated satellite on
virtual time): an uplinked sequence file and a CAPTURE_AT stored before the computer goes off run
at their times after it; what fell due while it was off follows each step's late policy."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from flightsw.core.commands import CommandResponse, Completion
from flightsw.imaging.component import ImagingComponent
from flightsw.imaging.planner import OrbitPredictor
from flightsw.imaging.subsystem import connect_imaging
from flightsw.testing import ResponseLog, make_satellite
from sim.camera import FixedScene, SimCamera
from sim.environment.orbit import Orbit, default_tle

FILETRANSFER = "[filetransfer]\nlocal_id = 2\nremote_id = 1\n"

# start = T0 + 200; the computer is off from T0 + 100 to T0 + 1000
SEQUENCE = """\
# imaging sequence uplinked as a file before the reboot
sequence pass_a
+0    imaging.CAPTURE_NOW late=SKIP                        # T0+200: missed, dropped
+100  imaging.SET_CAMERA [2000, 1.0, 160, 120, 85] late=RUN_LATE   # T0+300: run late at boot
+500  imaging.CAPTURE_NOW late=SKIP_IF_LATER_THAN:600      # T0+700: 300 s late, taken
+600  imaging.CAPTURE_NOW late=SKIP_IF_LATER_THAN:60       # T0+800: 200 s late, dropped
+1000 imaging.CAPTURE_NOW                                  # T0+1200: on time
+1000 imaging.SET_CAMERA [2000, 1.0, 320, 240, 85]         # T0+1200, after the capture above
+1100 imaging.CAPTURE_NOW                                  # T0+1300: on time, 320x240
"""


async def send(sat: Any, log: ResponseLog, name: str, *args: Any) -> CommandResponse:
    verdict = sat.commands.submit(sat.dictionary.command(name).id, list(args))
    assert verdict.accepted, f"{name} rejected: {verdict}"
    seq = max(r.seq for r in log.items if r.name == name)
    return await log.wait_completion(seq, 60.0)


def boot(tmp_path: Path, utc: Any) -> tuple[Any, ImagingComponent, list[Any]]:
    imaging = ImagingComponent("imaging", 0x0500, SimCamera(FixedScene(43.2, 76.9, 40.0), seed=3))
    sat = make_satellite(tmp_path / "sat", [imaging], FILETRANSFER, utc_source=utc)
    connect_imaging(sat.ports, imaging)
    events: list[Any] = []
    sat.events.add_sink(events.append)
    return sat, imaging, events


def texts(sat: Any, events: list[Any], name: str) -> list[str]:
    return [e.text(sat.dictionary.by_name[e.name].decl.format) for e in events if e.name == name]


@pytest.mark.virtual_time
async def test_an_imaging_sequence_uplinked_before_a_reboot_runs_after_it(tmp_path: Path, sat_runner) -> None:
    loop = asyncio.get_running_loop()
    t0 = 1_800_000_000.0
    offset = t0 - loop.time()

    def utc() -> float:
        return loop.time() + offset

    # boot 1: the sequence file arrives (as CFDP leaves it, in the quarantine) and is loaded;
    # a CAPTURE_AT is stored as well
    sat, imaging, _ = await asyncio.to_thread(boot, tmp_path, utc)  # building reads stores: off the loop
    quarantine = sat.config.data_dir / "cfdp" / "quarantine"
    await asyncio.to_thread(quarantine.mkdir, parents=True)
    await asyncio.to_thread((quarantine / "pass_a.seq").write_text, SEQUENCE)
    await sat_runner.start(sat)
    await asyncio.wait_for(imaging._ready.wait(), 10)
    log = ResponseLog(sat)
    done = await send(sat, log, "seq.LOAD_SEQUENCE", "pass_a.seq", int(t0) + 200)
    assert done.completion == Completion.SUCCESS, done.detail
    done = await send(sat, log, "imaging.CAPTURE_AT", int(t0) + 1500)
    assert done.completion == Completion.SUCCESS, done.detail
    assert [p["utc"] for p in imaging.planned()] == [t0 + 1500]
    assert imaging.captures_planned.value == 1
    await asyncio.sleep(t0 + 100 - utc())
    await sat_runner.stop(sat)
    assert imaging.captures.value in (None, 0)

    await asyncio.sleep(900.0)  # off until T0 + 1000

    # boot 2: nothing is re-sent; everything comes from the persisted store
    sat, imaging, events = await asyncio.to_thread(boot, tmp_path, utc)
    await sat_runner.start(sat)
    assert texts(sat, events, "seq.restored") == ["8 stored command(s) restored at boot, 4 due while off"]
    await asyncio.sleep(t0 + 1600 - utc())
    records = await imaging._db(imaging._catalog.list, 0, 100)
    taken = [(round(r.utc - t0), r.width, r.reason) for r in records]
    # T0+700 late by ~300 s at boot (160x120 from the late SET_CAMERA); T0+1200 and T0+1300
    # on time; the CAPTURE_AT at T0+1500 with its warm-up
    assert [(w, reason) for _, w, reason in taken] == [(160, "command"), (160, "command"),
                                                      (320, "command"), (320, "timed")]
    late, on_time, at_1300, timed = (when for when, _, _ in taken)
    assert 1000 <= late <= 1003
    assert 1200 <= on_time <= 1202 and 1300 <= at_1300 <= 1302
    assert 1500 <= timed <= 1501
    skipped = texts(sat, events, "seq.late_skipped")
    assert len(skipped) == 2
    assert "imaging.CAPTURE_NOW skipped, 800." in skipped[0] and "(SKIP)" in skipped[0]
    assert "imaging.CAPTURE_NOW skipped, 200." in skipped[1] and "(SKIP_IF_LATER_THAN)" in skipped[1]
    ran_late = texts(sat, events, "seq.late_run")
    assert [m.split(" run ")[0] for m in ran_late] == ["Stored #2 imaging.SET_CAMERA",
                                                      "Stored #3 imaging.CAPTURE_NOW"]
    stats = sat.sequencer.stats
    assert (stats["skipped_late"], stats["ran_late"], stats["succeeded"], stats["failed"]) == (2, 2, 6, 0)
    assert imaging.planned() == [] and imaging.captures_planned.value == 0
    assert len(sat.sequencer.schedule) == 0


@pytest.mark.virtual_time
async def test_commands_at_the_next_overflight_of_a_target(tmp_path: Path, sat_runner) -> None:
    line1, line2 = default_tle()
    epoch = Orbit.from_tle(line1, line2).epoch_seconds + 3600.0
    ahead = OrbitPredictor(line1, line2).subpoint(epoch + 3000.0)
    loop = asyncio.get_running_loop()
    offset = epoch - loop.time()
    sat, imaging, _ = await asyncio.to_thread(boot, tmp_path, lambda: loop.time() + offset)
    await sat_runner.start(sat)
    await asyncio.wait_for(imaging._ready.wait(), 10)
    log = ResponseLog(sat)
    target = (round(ahead.lat_deg, 3), round(ahead.lon_deg, 3), 40.0)
    done = await send(sat, log, "seq.STORE_AT_OVERFLIGHT", *target, -30, "imaging.NO_OP", "[]", 1, 0)
    assert done.completion == Completion.FAILURE and done.detail == "no TLE: uplink one with SET_TLE first"
    assert (await send(sat, log, "imaging.SET_TLE", line1, line2)).completion == Completion.SUCCESS
    done = await send(sat, log, "seq.STORE_AT_OVERFLIGHT", *target, -30, "imaging.NO_OP", "[]", 1, 0)
    assert done.completion == Completion.SUCCESS, done.detail
    (item,) = sat.sequencer.pending_items()
    assert abs(item.due - (epoch + 3000.0 - 30.0)) < 30.0  # the pass the planner predicts, 30 s early


@pytest.mark.virtual_time
async def test_captures_planned_by_an_earlier_version_become_stored_commands(tmp_path: Path, sat_runner) -> None:
    loop = asyncio.get_running_loop()
    offset = 1_800_000_000.0 - loop.time()
    sat, imaging, _ = await asyncio.to_thread(boot, tmp_path, lambda: loop.time() + offset)
    sat.state.set("imaging.plan", [{"utc": 1_800_000_600.0, "reason": "timed"}])
    await sat_runner.start(sat)
    await asyncio.wait_for(imaging._ready.wait(), 10)
    await asyncio.sleep(1.0)
    assert imaging.planned() == [{"utc": 1_800_000_600.0, "reason": "timed"}]
    assert sat.state.get("imaging.plan") is None
    (item,) = sat.sequencer.pending_items("imaging.CAPTURE_TIMED")
    assert item.due == 1_800_000_600.0 - imaging.power_up_lead_s.value
