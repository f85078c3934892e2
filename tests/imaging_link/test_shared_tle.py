"""One TLE upload serves both onboard propagations: imaging.SET_TLE feeds the contact-aware
downlink's pass prediction through the ORBIT_TLE port, and survives a reboot."""

from __future__ import annotations

import asyncio
from pathlib import Path

from flightsw.app import Satellite
from flightsw.core.commands import Completion
from flightsw.imaging.subsystem import build_imaging
from flightsw.link.contact import ContactManager
from flightsw.link.subsystem import build_link
from flightsw.testing import ResponseLog, mission_config
from sim.environment.orbit import sso_tle

from .harness import BIT_RATE, TOML

CONTACT = """
[contact]
[[contact.stations]]
name = "almaty"
lat_deg = 43.2
lon_deg = 76.9
"""


def _build(data_dir: Path) -> Satellite:
    config = mission_config(data_dir, TOML.format(loss=0.0, bit_rate=BIT_RATE) + CONTACT)
    return Satellite(config, subsystems=[build_link, build_imaging])


async def test_imaging_tle_upload_feeds_pass_prediction_and_survives_a_reboot(tmp_path: Path) -> None:
    line1, line2 = sso_tle()
    sat = await asyncio.to_thread(_build, tmp_path)
    runner = asyncio.create_task(sat.run())
    try:
        await sat.started.wait()
        contact = sat.component("contact")
        assert isinstance(contact, ContactManager) and contact.predictor is None
        await asyncio.wait_for(sat.component("imaging")._ready.wait(), 10)  # type: ignore[attr-defined]
        log = ResponseLog(sat)
        assert sat.dictionary is not None
        opcode = sat.dictionary.command("imaging.SET_TLE").id
        sat.commands.submit(opcode, [line1, line2], seq=1)
        assert (await log.wait_completion(1)).completion is Completion.SUCCESS
        assert contact.predictor is not None and contact.predictor.lines == (line1, line2)
    finally:
        sat.stop_event.set()
        await runner
    again = await asyncio.to_thread(_build, tmp_path)
    again.finalize()
    contact = again.component("contact")
    assert isinstance(contact, ContactManager)
    assert contact.predictor is not None and contact.predictor.lines == (line1, line2)
