"""Channels keep the time they were written; packets carry values in dictionary order."""

import asyncio
import json

import msgpack
import pytest

from flightsw.core.component import Channel, Component
from flightsw.core.types import F32, F64, U8
from flightsw.testing import ground_decoder


class Probe(Component):
    a = Channel(F32, unit="V")
    b = Channel(U8)
    count = Channel(U8, update="on_change")
    wide = Channel(F64)


@pytest.mark.virtual_time
async def test_stamp_is_the_write_time_not_the_read_time(new_satellite) -> None:
    probe = Probe("probe", 0x30)
    sat = new_satellite([probe], utc_source=lambda: 1_800_000_000.0 + asyncio.get_running_loop().time())
    sat.finalize()
    await asyncio.sleep(1000.0)  # the loop's clock is not the time since boot

    sat.clock.restart_epoch()
    await asyncio.sleep(5.0)
    probe.a.set(3.3)
    await asyncio.sleep(60.0)
    sample, now = sat.telemetry.latest(probe.a.id), sat.clock.seconds_since_boot()
    assert sample.value == 3.3 and now == 65.0
    assert sample.stamp.seconds == 5.0 and sample.stamp.boot == 1
    assert sample.stamp.utc == 1_800_000_000.0 + 1005.0


@pytest.mark.virtual_time
async def test_on_change_channel_keeps_the_time_its_value_last_changed(new_satellite) -> None:
    probe = Probe("probe", 0x30)
    sat = new_satellite([probe])
    sat.finalize()

    sat.clock.restart_epoch()
    probe.count.set(1)
    probe.a.set(1.0)
    await asyncio.sleep(10.0)
    probe.count.set(1)  # unchanged: dropped, stamp stays at 0 s
    probe.a.set(1.0)  # an "always" channel is re-stamped
    unchanged, always = sat.telemetry.latest(probe.count.id), sat.telemetry.latest(probe.a.id)
    await asyncio.sleep(10.0)
    probe.count.set(2)
    changed = sat.telemetry.latest(probe.count.id)
    assert unchanged.value == 1 and unchanged.stamp.seconds == 0.0
    assert always.stamp.seconds == 10.0
    assert changed.value == 2 and changed.stamp.seconds == 20.0
    exported = {c["name"]: c for c in json.loads(sat.dictionary.to_json())["channels"]}
    assert exported["probe.count"]["update"] == "on_change" and exported["probe.a"]["update"] == "always"


def test_channel_update_policy_is_checked() -> None:
    with pytest.raises(ValueError, match="update must be one of"):
        Channel(U8, update="sometimes")


def test_packet_values_follow_the_declared_order(new_satellite) -> None:
    probe = Probe("probe", 0x30)
    sat = new_satellite([probe], extra_toml="""
[[telemetry.packets]]
name = "hk_probe"
rate_hz = 1.0
channels = ["probe.b", "probe.a"]
""")
    sat.finalize()
    pdef = sat.packets[0]
    ground = ground_decoder(sat)
    empty = ground.housekeeping(sat.telemetry.build_packet(pdef)).values
    assert empty == {"probe.b": None, "probe.a": None}  # never written: sent as nil, not 0
    probe.a.set(1.5)
    probe.b.set(7)
    assert ground.housekeeping(sat.telemetry.build_packet(pdef)).values == {"probe.b": 7, "probe.a": 1.5}


def test_f32_channels_go_as_msgpack_float32_and_f64_as_float64(new_satellite) -> None:
    probe = Probe("probe", 0x30)
    sat = new_satellite([probe], extra_toml="""
[[telemetry.packets]]
name = "hk_probe"
rate_hz = 1.0
channels = ["probe.a", "probe.wide", "probe.b"]
""")
    sat.finalize()
    pdef = sat.packets[0]
    assert pdef.single_floats == (True, False, False)
    probe.a.set(3.3)
    probe.wide.set(1_800_000_000.123)
    probe.b.set(7)
    body = sat.telemetry.build_packet(pdef)
    raw = msgpack.unpackb(body)
    assert raw[4] == [pytest.approx(3.3, rel=1e-7), 1_800_000_000.123, 7]  # F64 keeps every digit
    assert body.endswith(b"\x93\xca" + msgpack.packb(3.3, use_single_float=True)[1:]
                         + msgpack.packb(1_800_000_000.123) + b"\x07")
    decoded = ground_decoder(sat).housekeeping(body).values
    assert decoded["probe.a"] == pytest.approx(3.3, rel=1e-7) and decoded["probe.wide"] == 1_800_000_000.123
    probe.a.set(1e39)  # beyond float32: still sent, as a float64
    assert msgpack.unpackb(sat.telemetry.build_packet(pdef))[4][0] == 1e39


def test_a_kept_channel_handle_follows_its_component_to_a_new_satellite(tmp_path, new_satellite) -> None:
    probe = Probe("probe", 0x30)
    first = new_satellite([probe], data_dir=tmp_path / "one")
    first.finalize()
    kept = probe.b  # e.g. held in a table by another object
    kept.set(1)
    second = new_satellite([probe], data_dir=tmp_path / "two")  # the same component, attached again
    second.finalize()
    kept.set(2)
    assert first.telemetry.latest(kept.id).value == 1
    assert second.telemetry.latest(kept.id).value == 2
