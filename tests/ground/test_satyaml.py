"""What the team publishes for SatNOGS and gr-satellites: the SatYAML file agrees with the mission
config, and the beacon .ksy it points to decodes beacons that came through the simulated radio."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flightsw.cli import main
from flightsw.config import load
from flightsw.ground import satyaml
from flightsw.link import ax25, beacon
from flightsw.link.packets import PacketBuilder, TimeStamp
from flightsw.link.settings import load_link_settings
from hal import kiss
from sim.transceiver import ChannelModel, SimTransceiver

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "docs" / "satnogs" / "FSW-1.yml"
KSC_MODULES = ROOT / ".venv" / "ksc" / "node_modules"


def test_the_published_satyaml_is_the_generators_and_matches_the_flight_config() -> None:
    config = load(ROOT / "deploy" / "flight.toml")
    text = PUBLISHED.read_text()
    assert text == satyaml.satyaml(config)  # regenerate: flightsw ground satyaml --config deploy/flight.toml
    doc = yaml.safe_load(text)
    assert doc["name"] == config.mission.name and doc["norad"] == satyaml.PLACEHOLDER_NORAD
    (label, transmitter), = doc["transmitters"].items()
    assert label == "9k6 FSK downlink"
    assert transmitter["baudrate"] == config.link.bit_rate == 9600
    assert (transmitter["modulation"], transmitter["framing"]) == ("FSK", "AX.25 G3RUH")
    assert transmitter["frequency"] == pytest.approx(437.0e6)
    # gr-satellites names the data by the anchored key: the transmitter's *tlm is "Telemetry"
    assert transmitter["data"] == ["Telemetry"] and doc["data"] == {"Telemetry": {"telemetry": "ax25"}}
    assert str(load_link_settings(config).callsign) in text and "docs/beacon.ksy" in text


def test_assigned_values_and_a_1200_baud_link(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_path = tmp_path / "m.toml"
    config_path.write_text((ROOT / "deploy" / "sim.toml").read_text().replace("bit_rate = 9600", "bit_rate = 1200"))
    assert main(["ground", "satyaml", "--config", str(config_path), "--norad", "61234", "--frequency", "436.525e6"]) == 0
    out = capsys.readouterr().out
    doc = yaml.safe_load(out)
    assert doc["norad"] == 61234 and "placeholder" not in out
    transmitter = doc["transmitters"]["1k2 AFSK downlink"]
    assert transmitter["frequency"] == pytest.approx(436.525e6)
    assert (transmitter["modulation"], transmitter["baudrate"], transmitter["framing"]) == ("AFSK", 1200, "AX.25")
    assert main(["ground", "satyaml", "--config", str(config_path), "--frequency", "437"]) == 2
    assert "437 Hz is not a radio frequency" in capsys.readouterr().err


async def _through_the_simulated_radio(frame: bytes) -> bytes:
    """The frame as a ground client of the simulated transceiver receives it."""
    radio = SimTransceiver(ChannelModel(bit_rate=1_000_000, propagation_delay=0.0), port=0)
    await radio.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", radio.bound_port)
    try:
        assert radio._slave is not None
        os.write(radio._slave, kiss.encode(frame))
        decoder = kiss.KissDecoder()
        async with asyncio.timeout(10):
            while True:
                for received in decoder.feed(await reader.read(4096)):
                    return received.payload
    finally:
        writer.close()
        await radio.stop()


@pytest.mark.skipif(shutil.which("node") is None or not (KSC_MODULES / "kaitai-struct-compiler").exists(),
                    reason="node or the Kaitai compiler is not installed (run `make ksc`)")
async def test_the_published_ksy_decodes_a_beacon_received_from_the_simulated_radio(tmp_path: Path) -> None:
    config = load(ROOT / "deploy" / "flight.toml")
    link = load_link_settings(config)
    values = {"battery_voltage": 7.62, "mode": 2, "uplink_counter": 41, "frames_sent": 77, "met": 3600.0}
    packet = beacon.build_packet(PacketBuilder(240), link.callsign.callsign, TimeStamp(3, 99.0), values)
    received = await _through_the_simulated_radio(ax25.UiFrame(link.ground, link.callsign, packet).encode())
    ksy = tmp_path / "flightsw_beacon.ksy"
    shutil.copy(ROOT / "docs" / "beacon.ksy", ksy)  # the file the SatYAML names
    result = await asyncio.to_thread(
        subprocess.run, ["node", str(ROOT / "flightsw" / "link" / "ksc_compile.js"), str(KSC_MODULES), str(ksy),
                         "python", str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    spec = importlib.util.spec_from_file_location("flightsw_beacon_satnogs", tmp_path / "out" / "flightsw_beacon.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["flightsw_beacon_satnogs"] = module
    spec.loader.exec_module(module)
    parsed = module.FlightswBeacon.from_bytes(received)
    assert parsed.src_callsign_raw.callsign.rstrip() == link.callsign.callsign
    assert parsed.src_ssid == link.callsign.ssid
    assert parsed.packet.battery_voltage == pytest.approx(7.62, abs=1e-3)
    assert parsed.packet.uplink_counter == 41 and parsed.packet.frames_sent == 77
    assert parsed.packet.mode == module.FlightswBeacon.Mode.nominal
    assert parsed.packet.version == beacon.BEACON_VERSION
