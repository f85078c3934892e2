"""Acceptance: images come down, files go up, over the simulated radio (real pty + real TCP)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from flightsw.core.commands import Completion

from .harness import Ground, files_of, run_pass


def test_thumbnail_arrives_automatically_and_full_image_on_request(tmp_path: Path) -> None:
    async def body(sat, ground: Ground) -> None:  # type: ignore[no-untyped-def]
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

    asyncio.run(run_pass(tmp_path, body))
