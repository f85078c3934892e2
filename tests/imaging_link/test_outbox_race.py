"""A file queued before the CFDP entity's start-up outbox sweep (regression: the sweep removed the
new outbox link, which was not yet in the journal, and the transfer failed with FileNotFoundError)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from .harness import files_of, ground_pass


async def test_put_before_startup_sweep_keeps_its_link(tmp_path: Path) -> None:
    async with ground_pass(tmp_path) as (sat, ground):
        files = files_of(sat)
        source = files.outbox.parent / "early.bin"
        payload = os.urandom(3000)
        source.write_bytes(payload)
        original_put = files.entity.put

        async def put_after_sweep(path: Path, name: str, priority: int = 5) -> int:
            # The start-up sweep lands between put()'s hard link and the entity's journal entry.
            await files._startup_sweep()
            assert await asyncio.to_thread(path.exists), "the start-up sweep removed a link put() had just made"
            return await original_put(path, name, priority)

        files.entity.put = put_after_sweep  # type: ignore[method-assign]
        await files.put(source, "early.bin")
        files.entity.put = original_put  # type: ignore[method-assign]
        received = await ground.files.wait_download("early.bin", 30.0)
        assert received is not None, "the early file never reached the ground"
        assert received.path.read_bytes() == payload
