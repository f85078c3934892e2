"""Issue 22 defect 5: a ground that lost its file-PDU counter (a fresh downloads folder, a new
computer) still completes a download.

The satellite drops every uplinked PDU whose counter is not above the last it accepted. The
counter used to live in ``<downloads>/.cfdp``: a new folder started again at 1 and every ACK, NAK
and Finished of the new ground was dropped as a replay, so the download stalled.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flightsw.link.file_link import STATE_FILE_COUNTER
from flightsw.testing import wait_until

from .harness import Ground, files_of, ground_pass


async def _download(sat, ground: Ground, name: str, size: int = 6_000) -> bytes:  # type: ignore[no-untyped-def]
    data = os.urandom(size)
    source = ground.data_dir.parent / f"onboard-{name}"
    source.write_bytes(data)
    files = files_of(sat)
    delivered = files.entity.stats.files_sent
    await files.put(source, name)
    download = await ground.files.wait_download(name, 60.0)
    assert download is not None, f"{name} did not arrive"
    assert download.path.read_bytes() == data
    # complete on board too: the ground's Finished (an uplinked PDU) was accepted
    await wait_until(lambda: files.entity.stats.files_sent > delivered, limit=60.0)
    return data


@pytest.mark.parametrize("fresh_archive", [False, True], ids=["fresh-downloads", "fresh-archive-too"])
async def test_a_ground_started_afresh_completes_a_download(tmp_path: Path, fresh_archive: bool) -> None:
    async with ground_pass(tmp_path) as (sat, ground):
        files = files_of(sat)
        files.ctx.state.set(STATE_FILE_COUNTER, 300)  # other grounds have uplinked before
        await _download(sat, ground, "first.bin")  # this ground learns where the counter is
        used = int(files.ctx.state.get(STATE_FILE_COUNTER, 0))
        assert used > 300
        rejected_before = files.stats["pdus_rejected"]
        await ground.stop()
        # same station database or a new one, but an empty downloads folder either way
        fresh_dir = tmp_path / ("ground-new" if fresh_archive else "ground")
        fresh_dir.mkdir(exist_ok=True)
        fresh = Ground(sat, fresh_dir, ground.port, downloads="downloads-new")
        await fresh.start()
        try:
            assert not (fresh_dir / "downloads-new").exists()
            await _download(sat, fresh, "second.bin")
            assert int(files.ctx.state.get(STATE_FILE_COUNTER, 0)) > used
            rejected = files.stats["pdus_rejected"] - rejected_before
            if fresh_archive:  # it learnt the satellite's counter from the first rejection
                assert 1 <= rejected <= 10, rejected
            else:  # the archive holds the counter: nothing was ever rejected
                assert rejected == 0
        finally:
            await fresh.stop()
