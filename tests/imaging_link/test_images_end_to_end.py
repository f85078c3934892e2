"""Acceptance: images come down, files go up, over the simulated radio (real pty + real TCP)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from flightsw.core.commands import Completion
from flightsw.testing import wait_until

from .harness import files_of, ground_pass


async def test_thumbnail_arrives_automatically_and_full_image_on_request(tmp_path: Path) -> None:
    async with ground_pass(tmp_path) as (sat, ground):
        response = await ground.station.command("imaging.CAPTURE_NOW", {}, timeout=20.0, retries=1)
        assert response is not None and response.completion == Completion.SUCCESS, response
        thumb = await ground.files.wait_download("img000001_thumbnail.jpg", 30.0)
        assert thumb is not None, "thumbnail did not arrive by itself"
        store = sat.component("imaging")._store
        assert thumb.path.read_bytes() == store.path(1, "thumbnail").read_bytes()
        assert thumb.png is not None and thumb.png.read_bytes().startswith(b"\x89PNG")
        assert "▀" in thumb.halfblock and thumb.ascii_art.strip()
        assert any("latest thumbnail" in line for line in ground.files.render_lines())
        response = await ground.station.command("imaging.DOWNLINK_IMAGE", {"image_id": "1", "product": "2"},
                                                timeout=10.0, retries=1)
        assert response is not None and response.completion == Completion.SUCCESS, response
        full = await ground.files.wait_download("img000001_full.jpg", 40.0)
        assert full is not None, "full image did not arrive"
        onboard = store.path(1, "full").read_bytes()
        assert full.path.read_bytes() == onboard
        assert full.sha256 == hashlib.sha256(onboard).hexdigest()
        progress = [p for p in ground.files.incoming.values() if p.name.endswith("_full.jpg")]
        assert progress and progress[0].done and progress[0].received == len(onboard)


async def test_upload_lands_in_quarantine_verified_and_never_over_a_live_file(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 40 + b"tail"
    source = tmp_path / "new.cfg"
    source.write_bytes(payload)

    async with ground_pass(tmp_path) as (sat, ground):
        files = files_of(sat)
        quarantine = files.entity_config.quarantine_dir
        quarantine.mkdir(parents=True, exist_ok=True)
        live = quarantine / "mission.cfg"
        live.write_bytes(b"the file in use")
        transfer = await ground.files.upload(source, "../../etc/mission.cfg")
        outcome = await ground.files.wait_upload(transfer, 30.0)
        assert outcome is not None and outcome.success, outcome
        assert live.read_bytes() == b"the file in use"  # never replaced
        assert files.received, "no file reported received on board"
        got = files.received[-1]
        assert got.path.parent == quarantine and got.path != live
        assert got.path.read_bytes() == payload
        assert got.sha256 == hashlib.sha256(payload).hexdigest()
        assert files.stats["pdus_up"] > 0 and files.stats["pdus_rejected"] == 0


async def test_unauthenticated_or_replayed_file_pdus_never_create_a_file(tmp_path: Path) -> None:
    from flightsw.link import ax25
    from flightsw.link.auth import build_command
    from flightsw.link.packets import Apid

    payload = b"x" * 900
    source = tmp_path / "seq.txt"
    source.write_bytes(payload)

    async with ground_pass(tmp_path) as (sat, ground):
        files = files_of(sat)
        station = ground.files.station
        captured: list[bytes] = []
        real_transmit = station._transmit

        async def capture(frame: bytes, note: str) -> None:
            captured.append(frame)
            await real_transmit(frame, note)

        station._transmit = capture  # type: ignore[method-assign]
        transfer = await ground.files.upload(source, "seq.txt")
        assert (await ground.files.wait_upload(transfer, 30.0)).success  # type: ignore[union-attr]
        received_before = len(files.received)
        link = sat.component("link")
        # 1. The same PDUs signed with a key the satellite does not have: all dropped.
        forged_key = b"k" * 32
        for n, frame in enumerate(captured):
            pdu = ax25.decode(frame).info[6 + 5:-2 - 16]
            forged = build_command(forged_key, 0, 10_000 + n, pdu, apid=Apid.FILE)
            await link.handle_frame(ax25.UiFrame(link.settings.callsign, ax25.Address.parse("UN0GND"),
                                                 forged).encode())
        # 2. The genuine frames replayed: old counters, all dropped.
        for frame in captured:
            await link.handle_frame(frame)
        # each is refused at the link, before the file entity could see it
        await wait_until(lambda: files.stats["pdus_rejected"] >= 2 * len(captured))
        assert files.stats["pdus_rejected"] == 2 * len(captured)
        assert len(files.received) == received_before
        assert [p.name for p in files.entity_config.quarantine_dir.glob("seq*.txt")] == ["seq.txt"]
