"""File management by command on a running satellite: uploads arrive by CFDP in quarantine, are
moved where they belong, listed, downlinked and deleted; traversal, symlinks and device files are
refused with their reason."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from flightsw.app import Satellite
from flightsw.components.file_manager import SUBSYSTEM, FileManager
from flightsw.core.commands import Completion
from flightsw.core.ports import FILE_DOWNLINK, Ports
from flightsw.testing import ResponseLog, mission_config

from .ft_helpers import GROUND_ID, Pair, fast_config, start_station, wait_for

FILES_TOML = """
[filetransfer]
local_id = 2
remote_id = 1
[files]
roots = { sequences = "uploads/sequences", configs = "uploads/configs", images = "images" }
destinations = ["sequences", "configs"]
max_listing = 3
"""


class Rig:
    def __init__(self, sat: Satellite, pair: Pair, log: ResponseLog) -> None:
        self.sat, self.pair, self.log = sat, pair, log
        self.seq = 0
        self.fm = sat.component("fm")
        assert isinstance(self.fm, FileManager)

    async def run(self, name: str, *args: Any) -> tuple[Completion | None, str]:
        self.seq += 1
        verdict = self.sat.commands.submit(self.sat.dictionary.command(f"fm.{name}").id, list(args), seq=self.seq)
        assert verdict.accepted, verdict
        done = await self.log.wait_completion(self.seq, limit=20.0)
        return done.completion, done.detail

    def events(self, name: str) -> list[dict[str, Any]]:
        eid = self.sat.dictionary.lookup(f"fm.{name}", type(FileManager.refused)).id
        return [r.args for r in self.sat.events.recent if r.id == eid]

    async def upload(self, local: Path, dest_name: str) -> Path:
        before = len(self.pair.flight.received)
        await self.pair.ground.entity.put(local, dest_name)
        await wait_for(lambda: len(self.pair.flight.received) > before)
        return self.pair.flight.received[-1].path


class OutboxDownlink:
    """The FileDownlink contract as the link's FileLink keeps it: the source is hard-linked first,
    so the caller may remove it at once."""

    def __init__(self, entity: Any, outbox: Path) -> None:
        self.entity, self.outbox, self.n = entity, outbox, 0

    async def put(self, source: Path, dest_name: str, priority: int = 5) -> int:
        self.outbox.mkdir(parents=True, exist_ok=True)
        self.n += 1
        link = self.outbox / f"{self.n}-{dest_name}"
        os.link(source, link)
        transfer_id: int = await self.entity.put(link, dest_name, priority)
        return transfer_id


@pytest.fixture
async def rig(tmp_path: Path, new_satellite: Any, sat_runner: Any) -> Any:
    """A satellite with the file manager; its CFDP quarantine fed by a real ground entity."""
    from flightsw.filetransfer.memory_link import MemoryLink

    data = tmp_path / "sat"
    config = mission_config(data, FILES_TOML)
    link = MemoryLink()
    flight = start_station(fast_config(2, GROUND_ID, data / "cfdp"), link.a)
    ground = start_station(fast_config(GROUND_ID, 2, tmp_path / "ground"), link.b)
    pair = Pair(link, flight, ground, tmp_path)
    pair.attach()
    ports = Ports()
    ports.provide(FILE_DOWNLINK, OutboxDownlink(flight.entity, tmp_path / "outbox"), by="test")
    sat = new_satellite(config=config, subsystems=[SUBSYSTEM], ports=ports)
    log = ResponseLog(sat)
    await sat_runner.start(sat)
    await wait_for(lambda: (data / "uploads" / "sequences").is_dir())
    try:
        yield Rig(sat, pair, log)
    finally:
        await flight.stop()
        await ground.stop()


async def test_an_uploaded_sequence_is_moved_out_of_quarantine_to_where_it_belongs(rig: Rig, tmp_path: Path) -> None:
    local = tmp_path / "pass1.seq"
    local.write_text("imaging.CAPTURE_NOW\n")
    quarantined = await rig.upload(local, "pass1.seq")
    assert quarantined.parent.name == "quarantine"

    completion, detail = await rig.run("MOVE", "quarantine/pass1.seq", "sequences", False)

    assert completion is Completion.SUCCESS, detail
    placed = rig.fm.roots["sequences"] / "pass1.seq"
    assert placed.read_text() == "imaging.CAPTURE_NOW\n"
    assert not quarantined.exists() and not quarantined.with_name(quarantined.name + ".meta.json").exists()
    moved = rig.events("moved")[-1]
    assert moved["dest"] == "sequences/pass1.seq"
    assert moved["sha256"] == hashlib.sha256(local.read_bytes()).hexdigest()[:16]
    assert rig.fm.stats["moves"] == 1


async def test_a_move_never_replaces_unless_asked_and_then_atomically(rig: Rig, tmp_path: Path) -> None:
    for text in ("v1", "v2"):
        local = tmp_path / "mission.toml"
        local.write_text(text)
        await rig.upload(local, "mission.toml")
    (rig.fm.roots["configs"] / "mission.toml").write_text("v0")
    names = sorted(p.name for p in (rig.fm.roots["quarantine"]).iterdir() if not p.name.endswith(".json"))
    assert len(names) == 2  # the second arrival got its transaction id added

    completion, detail = await rig.run("MOVE", "quarantine/mission.toml", "configs", False)
    assert completion is Completion.FAILURE and detail.startswith("exists:")
    assert (rig.fm.roots["configs"] / "mission.toml").read_text() == "v0"

    completion, detail = await rig.run("MOVE", "quarantine/mission.toml", "configs/mission.toml", True)
    assert completion is Completion.SUCCESS, detail
    assert (rig.fm.roots["configs"] / "mission.toml").read_text() == "v1"
    assert not any(p.name.startswith(".") for p in rig.fm.roots["configs"].iterdir())


async def test_a_quarantined_file_changed_after_arrival_is_not_moved(rig: Rig, tmp_path: Path) -> None:
    local = tmp_path / "s.seq"
    local.write_text("original")
    quarantined = await rig.upload(local, "s.seq")
    quarantined.write_text("tampered")

    completion, detail = await rig.run("MOVE", "quarantine/s.seq", "sequences", False)

    assert completion is Completion.FAILURE and detail.startswith("not_verified:")
    assert not (rig.fm.roots["sequences"] / "s.seq").exists() and quarantined.exists()


async def test_a_path_traversal_file_name_is_refused(rig: Rig, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("keep")
    for action, args in (("DELETE", ("sequences/../../../secret.txt",)),
                         ("DOWNLINK_FILE", (str(secret), 5)),
                         ("MOVE", ("quarantine/../x", "sequences", False)),
                         ("LIST", ("sequences/../..", False))):
        completion, detail = await rig.run(action, *args)
        assert completion is Completion.FAILURE and detail.startswith("outside_roots:"), (action, detail)
    assert secret.read_text() == "keep"
    refusals = rig.events("refused")
    assert [r["reason"] for r in refusals] == ["outside_roots"] * 4
    assert rig.fm.stats["refusals"] == 4


async def test_symlinks_anywhere_on_the_path_are_refused(rig: Rig, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("keep")
    seqs = rig.fm.roots["sequences"]
    os.symlink(outside, seqs / "linkdir")                      # a directory link inside a root
    os.symlink(outside / "victim.txt", seqs / "victim.txt")    # a file link inside a root

    for action, args in (("DELETE", ("sequences/linkdir/victim.txt",)),
                         ("DELETE", ("sequences/victim.txt",)),
                         ("DOWNLINK_FILE", ("sequences/victim.txt", 5)),
                         ("LIST", ("sequences/linkdir", False))):
        completion, detail = await rig.run(action, *args)
        assert completion is Completion.FAILURE and detail.startswith("symlink:"), (action, detail)
    assert (outside / "victim.txt").read_text() == "keep"
    assert (seqs / "victim.txt").is_symlink()


async def test_device_files_and_fifos_are_refused(rig: Rig) -> None:
    os.mkfifo(rig.fm.roots["sequences"] / "pipe")
    completion, detail = await rig.run("DOWNLINK_FILE", "sequences/pipe", 5)
    assert completion is Completion.FAILURE and detail.startswith("not_regular_file:")
    completion, detail = await rig.run("DELETE", "sequences/pipe")
    assert completion is Completion.FAILURE and detail.startswith("not_regular_file:")


async def test_listing_is_sorted_capped_and_links_are_shown_not_followed(rig: Rig, tmp_path: Path) -> None:
    seqs = rig.fm.roots["sequences"]
    for name in ("d.seq", "b.seq", "a.seq", "c.seq"):
        (seqs / name).write_text(name)
    completion, detail = await rig.run("LIST", "sequences", False)
    assert completion is Completion.SUCCESS, detail
    assert [e["name"] for e in rig.events("entry")] == ["a.seq", "b.seq", "c.seq"]
    assert rig.events("listed")[-1] == {"path": "sequences", "shown": 3, "total": 4, "via": ""}

    completion, detail = await rig.run("LIST", "sequences", True)
    assert completion is Completion.SUCCESS, detail
    await wait_for(lambda: any(f.name == "listing_sequences.json" for f in rig.pair.ground.received))
    got = next(f for f in rig.pair.ground.received if f.name == "listing_sequences.json")
    listing = json.loads(got.path.read_text())
    assert listing["total"] == 4 and [e["name"] for e in listing["entries"]] == ["a.seq", "b.seq", "c.seq"]


async def test_any_file_under_the_roots_can_be_downlinked_and_deleted(rig: Rig) -> None:
    image = rig.fm.roots["images"] / "products" / "img_7.jpg"
    image.parent.mkdir(parents=True)
    image.write_bytes(os.urandom(5000))

    completion, detail = await rig.run("DOWNLINK_FILE", "images/products/img_7.jpg", 3)
    assert completion is Completion.SUCCESS, detail
    await wait_for(lambda: any(f.name == "img_7.jpg" for f in rig.pair.ground.received))
    got = next(f for f in rig.pair.ground.received if f.name == "img_7.jpg")
    assert got.path.read_bytes() == image.read_bytes()
    assert not any(rig.fm.spool.iterdir())  # the spool link is gone once queued

    completion, detail = await rig.run("DELETE", "images/products/img_7.jpg")
    assert completion is Completion.SUCCESS, detail
    assert not image.exists()
    assert rig.events("deleted")[-1] == {"path": "images/products/img_7.jpg", "size": 5000}
    completion, detail = await rig.run("DELETE", "images/products/img_7.jpg")
    assert completion is Completion.FAILURE and detail.startswith("missing:")


async def test_move_only_from_quarantine_and_only_to_destinations(rig: Rig) -> None:
    (rig.fm.roots["images"] / "x.jpg").write_bytes(b"x")
    completion, detail = await rig.run("MOVE", "images/x.jpg", "sequences", False)
    assert completion is Completion.FAILURE and detail.startswith("not_destination:")
    completion, detail = await rig.run("MOVE", "quarantine/x.jpg", "images", False)
    assert completion is Completion.FAILURE and detail.startswith("not_destination:")
