"""Config validation: one clear message naming the key and the problem."""

from pathlib import Path

import msgspec
import pytest

from flightsw.config import ConfigError, MissionConfig, load, loads

ROOT = Path(__file__).resolve().parents[2]


# The sections the schema declares, as the error lists them (sorted)
SECTIONS = ", ".join(sorted(f.encode_name for f in msgspec.structs.fields(MissionConfig) if f.name != "source"))
INA = '[[devices]]\nname = "eps"\nkind = "ina219"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[storage]\ndata_dir = 3\n", "storage.data_dir: expected a string, got 3"),
        ("[storage]\nfsnyc = true\n", "storage.fsnyc: unknown key (allowed: data_dir, fsync, records_max_bytes, "
                                        "records_segment_bytes, records_sync_seconds)"),
        ("[storag]\nfsync = true\n", f"storag: unknown section (allowed: {SECTIONS})"),
        ("[fdir]\nenabled = true\n", f"fdir: unknown section (allowed: {SECTIONS})"),
        ("[watchdog]\nbackend = \"dog\"\n",
         "watchdog.backend: expected one of 'none', 'sim', 'systemd', 'device', 'systemd+device', got 'dog'"),
        ("[scheduler]\nrate_groups = { fast = 500.0, slow = 1.0, background = 0.1 }\n",
         "scheduler.rate_groups.fast: 500.0 Hz outside [0.0001, 100]"),
        ("[scheduler]\nrate_groups = { fast = 10.0 }\n", "scheduler.rate_groups: missing the 'slow' group"),
        ("[storage]\nrecords_max_bytes = 10\n", "storage.records_max_bytes: 10 outside [65536, 17179869184]"),
        ("[storage]\nrecords_segment_bytes = 1073741824\nrecords_max_bytes = 65536\n",
         "storage.records_segment_bytes: larger than records_max_bytes"),
        (INA + INA, "devices[1].name: duplicate device name 'eps'"),
        ('[[devices]]\nname = "Bad Name"\nkind = "ina219"\n',
         "devices[0].name: 'Bad Name' does not match '^[a-z_][a-z0-9_]*$'"),
        ('[[devices]]\nkind = "ina219"\n', "devices[0].name: required key missing"),
        (INA + 'backend = "fake"\n', "devices[0].backend: expected one of 'real', 'sim', got 'fake'"),
        ('[[devices]]\nname = "eps"\nkind = "ina291"\n',
         "devices[0].kind: unknown device kind 'ina291' (known: adcs, ads1115, camera, gpio_input, gpio_output, gps, ina219, "
         "lis2mdl, lsm6dsox, mcp9808, uhf_radio)"),
        (INA + "shunt_ohm = 0.1\n", "devices[0].shunt_ohm: unknown key for kind ina219 (allowed: address, base_id, "
                                    "bus, bus_range_v, faults, limits, max_current_a, max_failures, power_switch, "
                                    "rail, rate, shunt_ohms)"),
        (INA + "address = \"x40\"\n", "devices[0].address: expected an integer, got 'x40'"),
        (INA + "address = 0x20\n", "devices[0].address: INA219: address 0x20 is not one of 0x40, 0x41, 0x42, "
                                   "0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f"),
        (INA + "bus_range_v = 20\n", "devices[0].bus_range_v: bus_range_v must be 16 or 32, got 20"),
        (INA + 'rate = "slowest"\n', "devices[0].rate: no rate group 'slowest' (have ['background', 'fast', 'slow'])"),
        (INA + 'power_switch = "nope"\n', "devices[0].power_switch: no gpio_output named 'nope'"),
        (INA + "limits = { bus_voltage = [1.0, 2.0] }\n",
         "devices[0].limits.bus_voltage: expected [red_low, yellow_low, yellow_high, red_high]"),
        (INA + "limits = { humidity = [1, 2, 3, 4] }\n",
         "devices[0].limits.humidity: no such channel (have ['bus_voltage', 'current', 'power', 'shunt_voltage'])"),
        ('[[devices]]\nname = "out"\nkind = "gpio_output"\n', "devices[0].line: required key missing"),
        ('[[devices]]\nname = "a"\nkind = "gpio_output"\nline = 4\n[[devices]]\nname = "b"\nkind = "gpio_input"\n'
         'line = 4\n', "devices[1].line: line 4 already used by a"),
        ('[[devices]]\nname = "radio"\nkind = "uhf_radio"\nbackend = "real"\n',
         "devices[0].device: the serial device path is required for a real radio"),
        ('[[devices]]\nname = "radio"\nkind = "uhf_radio"\n[link]\ncallsign = "UN0SAT-1"\n',
         "link.ground_callsign: bad station address '': callsign '' must be 1-6 upper-case letters or digits"),
        ('[[devices]]\nname = "cam"\nkind = "camera"\nsede = 4\n',
         "devices[0].sede: unknown key for sim camera (allowed: scene, seed, swath_km)"),
        ("[housekeeping]\ni2c_retrys = 3\n",
         "housekeeping.i2c_retrys: unknown key (allowed: gpio_chip, i2c_retries, i2c_timeout_s, scl_recovery_gpio)"),
        ("[housekeeping]\ni2c_timeout_s = \"fast\"\n", "housekeeping.i2c_timeout_s: expected a number, got 'fast'"),
        ("[link]\nbeacon_channels = { battery = \"eps.bus_voltage\" }\n",
         "link.beacon_channels.battery: no such beacon field (fields: version, mode, boot_count, reset_reason, "
         "uptime, battery_voltage, battery_current, battery_temperature, rail_3v3_current, rail_5v_current, "
         "board_temperature, radio_temperature, last_command_opcode, last_command_status, uplink_counter, "
         "commands_executed, commands_rejected, auth_failures, frames_received, frames_sent, dictionary_hash, met, time_quality)"),
        ("[filetransfer]\nlocal_id = 2\n", "filetransfer.remote_id: required key missing"),
        ("[filetransfer]\nlocal_id = 2\nremote_id = 2\n", "filetransfer.local_id: local_id and remote_id must differ"),
        ("[imaging]\nquota = 2\n", "imaging.quota: unknown key (allowed: base_id, focal_length_mm, footprint_margin_km, fov_deg, horizon_days, max_off_nadir_deg, max_tle_age_days, quota_mb, sensor_mm, settle_timeout_s, slew_lead_s)"),
        ("[update]\nconfirm_after = 0\n", "update.confirm_after: 0 outside [1, 3600]"),
        ("[modes]\nsafe_enter_v = 8.0\n",
         "modes.safe_enter_v: 8.0 V must be below safe_exit_v (7.6 V): without hysteresis SAFE mode flaps"),
        ("[[telemetry.packets]]\nname = \"hk\"\nrate_hz = \"1\"\n",
         "telemetry.packets[0].rate_hz: expected a number, got '1'"),
        ("[[telemetry.packets]]\nname = \"hk\"\nrate_hz = 1\nchannels = [\"uptime\"]\n",
         "telemetry.packets[0].channels[0]: expected \"component.channel\", got 'uptime'"),
        ("devices = 3\n", "devices: expected a list of tables ([[devices]]), got int"),
    ],
)
def test_invalid_configs_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        loads(text, "mission.toml")
    assert str(err.value) == f"mission.toml: {message}"


def test_invalid_toml_is_one_line() -> None:
    with pytest.raises(ConfigError) as err:
        loads("[mission\n", "mission.toml")
    assert str(err.value).startswith("mission.toml: not valid TOML: ") and "\n" not in str(err.value)


def test_device_options_are_kept_for_their_driver() -> None:
    cfg = loads('[[devices]]\nname = "eps"\nkind = "ina219"\nbackend = "real"\nbus = 1\naddress = 0x40\n')
    dev = cfg.devices[0]
    assert (dev.name, dev.kind, dev.backend, dev.options) == ("eps", "ina219", "real", {"bus": 1, "address": 64})


def test_shipped_configs_are_valid() -> None:
    for name in ("sim.toml", "flight.toml"):
        cfg = load(ROOT / "deploy" / name)
        assert cfg.scheduler.rate_groups["fast"] == 10.0
    assert load(ROOT / "deploy" / "flight.toml").data_dir == Path("/var/lib/flightsw")


def test_missing_file_is_reported() -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load("/nonexistent/mission.toml")


def test_config_reference_matches_the_schema() -> None:
    """docs/config.md is generated from the schema (`python -m flightsw.config > docs/config.md`)."""
    from flightsw.config import reference_markdown

    assert (ROOT / "docs" / "config.md").read_text() == reference_markdown()
