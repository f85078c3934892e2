"""Acceptance: an uploaded sequence file is moved out of quarantine by a ground command, a path
traversal name is refused, and files are listed and fetched, all over the simulated radio."""

from __future__ import annotations

import json
from pathlib import Path

from flightsw.core.commands import Completion

from .harness import ground_pass


async def test_upload_move_out_of_quarantine_list_and_fetch_over_the_radio(tmp_path: Path) -> None:
    sequence = tmp_path / "pass_0512.seq"
    sequence.write_text("imaging.CAPTURE_NOW\nlink.SEND_BEACON_NOW\n")

    async with ground_pass(tmp_path, file_manager=True) as (sat, ground):
        station = ground.station
        transfer = await ground.files.upload(sequence, "pass_0512.seq")
        outcome = await ground.files.wait_upload(transfer, 30.0)
        assert outcome is not None and outcome.success, outcome

        response = await station.command("fm.MOVE", {"source": "quarantine/pass_0512.seq", "dest": "sequences",
                                                      "replace": "false"}, timeout=10.0, retries=1)
        assert response is not None and response.completion is Completion.SUCCESS, response
        fm = sat.component("fm")
        placed = fm.roots["sequences"] / "pass_0512.seq"
        assert placed.read_text() == sequence.read_text()
        assert not (fm.roots["quarantine"] / "pass_0512.seq").exists()

        # a path traversal name is refused, and says why
        response = await station.command("fm.DOWNLINK_FILE", {"path": "sequences/../../../uplink.keys",
                                                              "priority": "3"}, timeout=10.0, retries=1)
        assert response is not None and response.completion is Completion.FAILURE
        assert response.detail.startswith("outside_roots:")
        assert await station.wait_until(lambda: any(
            name == "fm.refused" and "outside_roots" in text for _t, _s, name, text in station.recent_events), 10.0)

        response = await station.command("fm.LIST", {"path": "sequences", "to_file": "true"}, timeout=10.0)
        assert response is not None and response.completion is Completion.SUCCESS, response
        listing = await ground.files.wait_download("listing_sequences.json", 30.0)
        assert listing is not None
        assert [e["name"] for e in json.loads(listing.path.read_text())["entries"]] == ["pass_0512.seq"]

        response = await station.command("fm.DOWNLINK_FILE", {"path": "sequences/pass_0512.seq", "priority": "3"},
                                         timeout=10.0)
        assert response is not None and response.completion is Completion.SUCCESS, response
        fetched = await ground.files.wait_download("pass_0512.seq", 30.0)
        assert fetched is not None and fetched.path.read_text() == sequence.read_text()
