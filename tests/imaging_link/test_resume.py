"""A full image cut mid-way (radio blackout, then a ground restart) resumes without re-sending
what already arrived."""

from __future__ import annotations

import asyncio
from pathlib import Path

from flightsw.core.commands import Completion
from flightsw.link.subsystem import SIM_TRANSCEIVER

from .harness import Ground, ground_pass, link_of


async def _capture_and_request(ground: Ground) -> None:
    response = await ground.station.command("imaging.CAPTURE_NOW", {}, timeout=20.0, retries=1)
    assert response is not None and response.completion == Completion.SUCCESS, response
    assert await ground.files.wait_download("img000001_thumbnail.jpg", 30.0) is not None
    response = await ground.station.command("imaging.DOWNLINK_IMAGE", {"image_id": "1", "product": "2"},
                                            timeout=10.0, retries=1)
    assert response is not None and response.completion == Completion.SUCCESS, response


def _full(ground: Ground):  # type: ignore[no-untyped-def]
    return next((p for p in ground.files.incoming.values() if p.name.endswith("_full.jpg")), None)


async def _wait_fraction(ground: Ground, fraction: float) -> None:
    def reached() -> bool:
        p = _full(ground)
        return p is not None and p.size is not None and p.received >= fraction * p.size

    assert await ground.files.wait_for(reached, 30.0), "full image transfer did not start"


async def test_blackout_mid_transfer_resumes_without_resending(tmp_path: Path) -> None:
    async with ground_pass(tmp_path) as (sat, ground):
        await _capture_and_request(ground)
        await _wait_fraction(ground, 0.3)
        channel = sat.ports.require(SIM_TRANSCEIVER).downlink.channel
        channel.contact = lambda: False  # blackout, both directions
        await asyncio.sleep(6.0)  # the outage lasts longer than the ground's inactivity timeout and the sender's ACK limit
        lost = sat.ports.require(SIM_TRANSCEIVER).downlink.stats.frames_out_of_contact
        assert lost > 0
        channel.contact = lambda: True
        full = await ground.files.wait_download("img000001_full.jpg", 60.0)
        assert full is not None, "transfer did not resume after the blackout"
        onboard = sat.component("imaging")._store.path(1, "full").read_bytes()
        assert full.path.read_bytes() == onboard
        progress = _full(ground)
        repeated = progress.data_bytes - len(onboard)
        print(f"full image {len(onboard)} B, repeated after blackout {repeated} B")
        assert repeated <= 0.2 * len(onboard), f"{repeated} of {len(onboard)} bytes arrived twice"
        assert link_of(sat).scheduler.transmit_allowed and link_of(sat).scheduler.frames_withheld == 0


async def test_ground_restart_mid_transfer_resumes_without_resending(tmp_path: Path) -> None:
    async with ground_pass(tmp_path) as (sat, ground):
        await _capture_and_request(ground)
        await _wait_fraction(ground, 0.4)
        first = _full(ground)
        await ground.stop()
        arrived_first = first.received
        await asyncio.sleep(4.0)  # the ground station is down for a while
        second = Ground(sat, ground.data_dir, ground.port)
        await second.start()
        try:
            full = await second.files.wait_download("img000001_full.jpg", 60.0)
            assert full is not None, "transfer did not resume after the ground restart"
            onboard = sat.component("imaging")._store.path(1, "full").read_bytes()
            assert full.path.read_bytes() == onboard
            resent = _full(second).data_bytes
            print(f"full image {len(onboard)} B; before restart {arrived_first} B, after {resent} B")
            # What arrived before the restart (minus the last unflushed journal block) is not sent again.
            assert resent <= len(onboard) - arrived_first + 0.2 * len(onboard)
        finally:
            await second.stop()
