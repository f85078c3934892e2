"""The link's measurements of a scenario run: passes with what the ground received in each, and
the radio figures of the report.

Why apart: they are computed from the World's events and the transceiver's and ground client's
counters after the run, and do not depend on how the flight software was composed or rebooted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgpack

from flightsw.core.records import RecordLog
from flightsw.ground.archive import Archive
from flightsw.ground.records import KIND_EVT, KIND_TLM
from flightsw.link.packets import Apid
from flightsw.sim_runner.ground import GroundMonitor
from flightsw.sim_runner.results import ContactTally, contact_windows
from sim.environment.contacts import StationGeometry
from sim.environment.world import World


def measure_contacts(world: World, ground: GroundMonitor | None) -> list[ContactTally]:
    """Passes from the World's AOS/LOS events, with their peak elevation and the beacons and
    frames the ground received in each."""
    tallies = list(contact_windows(world))
    geometry = {s.name: StationGeometry(s) for s in world.config.stations}
    orbit = world.config.orbit
    for tally in tallies:
        samples = max(2, int((tally.los - tally.aos) / 10.0) + 1)
        step = (tally.los - tally.aos) / (samples - 1)
        tally.max_elevation_deg = max(
            geometry[tally.station].view(orbit.state(tally.aos + i * step).r_ecef_km).elevation_deg
            for i in range(samples))
    if ground is not None:
        for tally in tallies:
            # a beacon stamped by the ground a fraction of a tick after LOS still belongs to the pass
            end = tally.los + world.config.tick_s
            tally.beacons = sum(1 for t in ground.beacon_times if tally.aos <= t <= end)
            tally.frames = sum(1 for t in ground.frame_times if tally.aos <= t <= end)
    return tallies


def link_metrics(transceiver: Any, ground: GroundMonitor, contacts: Sequence[ContactTally],
                 bytes_up: int) -> dict[str, float]:
    """The report's radio figures, in the report's order; `bytes_up` counts every boot's link."""
    m: dict[str, float] = {}
    down, up = transceiver.downlink.stats, transceiver.uplink.stats
    # lost: dropped by the channel's loss process (the `frame_loss` fault); corrupted: hit
    # by bit errors and dropped by the receiving TNC's FCS check (range and elevation)
    lost = down.frames_lost + up.frames_lost
    corrupted = down.frames_corrupted + up.frames_corrupted
    in_contact = (down.frames_in - down.frames_out_of_contact) + (up.frames_in - up.frames_out_of_contact)
    m["beacons_received"] = float(len(ground.beacon_times))
    m["contacts_without_beacon"] = float(sum(1 for c in contacts if c.beacons == 0))
    m["usable_contacts"] = float(sum(1 for c in contacts if c.usable))
    m["usable_contacts_without_beacon"] = float(sum(1 for c in contacts if c.usable and c.beacons == 0))
    m["frames_down"] = float(ground.frames)
    m["frames_up"] = float(up.frames_delivered)
    m["frames_lost"] = float(lost)
    m["frame_loss_ratio"] = lost / in_contact if in_contact else 0.0
    m["bytes_down"] = float(ground.bytes_down)
    m["bytes_up"] = float(bytes_up)
    m["frames_out_of_contact"] = float(down.frames_out_of_contact + up.frames_out_of_contact)
    m["frames_corrupted"] = float(corrupted)
    m["frame_error_ratio"] = (lost + corrupted) / in_contact if in_contact else 0.0
    m["ground_commands_sent"] = float(ground.commands_sent)
    m["ground_verdicts_received"] = float(ground.verdicts)
    if ground.files is not None:
        m["files_downlinked"] = float(len(ground.files.files))
        m["images_downlinked"] = float(len(ground.files.images))
    return m


def store_and_forward_metrics(records: RecordLog, archive: Archive, ground: GroundMonitor,
                              contacts: Sequence[ContactTally], until_utc: float | None) -> dict[str, float]:
    """The data budget of a run with the scripted ground's archive (after the run: blocking).

    Completeness compares the housekeeping the satellite recorded (its record log, read back from
    the data directory) up to ``until_utc`` with what reached the ground archive, live or played
    back, by (packet id, boot, spacecraft seconds); the backlog is what the satellite holds that
    the ground does not."""
    m: dict[str, float] = {}
    flight = records.read_numbered(0, records.next_seq, limit=records.next_seq + 1)
    have = {KIND_TLM: archive.call_blocking(archive.record_keys, KIND_TLM),
            KIND_EVT: archive.call_blocking(archive.record_keys, KIND_EVT)}
    total = found = backlog = backlog_bytes = 0
    for _n, kind, value in flight:
        if kind == "tlm":
            pid, boot, seconds, utc, _values = msgpack.unpackb(value, raw=False)
            key, code, size = (int(pid), int(boot), float(seconds)), KIND_TLM, len(value)
            if until_utc is None or (utc is not None and utc < until_utc):
                total += 1
                found += key in have[KIND_TLM]
        elif kind == "evt":
            key, code = (int(value[0]), int(value[2]), float(value[3])), KIND_EVT
            size = len(msgpack.packb(value, use_bin_type=True))
        else:
            continue
        if key not in have[code]:
            backlog += 1
            backlog_bytes += size
    m["records_recorded"] = float(records.next_seq)
    m["hk_archive_completeness"] = 100.0 * found / total if total else 0.0
    numbered, distinct = archive.call_blocking(lambda: archive.db.execute(
        "SELECT COUNT(*), COUNT(DISTINCT seq) FROM records WHERE seq IS NOT NULL").fetchone())
    m["archive_duplicates"] = float(numbered - distinct)
    gaps = archive.call_blocking(archive.record_gaps, 0)
    m["archive_gaps"] = float(len(gaps))
    m["archive_missing_records"] = float(sum(b - a + 1 for a, b in gaps))
    m["backlog_records_end"] = float(backlog)
    m["backlog_bytes_end"] = float(backlog_bytes)
    by_apid = ground.bytes_by_apid
    for name, apid in (("stored", Apid.STORED), ("housekeeping", Apid.HOUSEKEEPING), ("events", Apid.EVENT),
                       ("beacon", Apid.BEACON), ("verdict", Apid.VERDICT), ("file", Apid.FILE)):
        m[f"bytes_down_{name}"] = float(by_apid[apid])
    usable = [c for c in contacts if c.usable]
    seconds = sum(c.los - c.aos for c in usable)
    stored = sum(n for t, n in ground.stored_arrivals if any(c.aos <= t <= c.los + 1.0 for c in usable))
    m["goodput_mean_bps"] = 8.0 * stored / seconds if seconds else 0.0
    m["playback_requests_sent"] = float(ground.playback_requests_sent)
    return m
