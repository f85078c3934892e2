"""Config validation: one clear message naming the key and the problem."""

from pathlib import Path

import pytest

from flightsw.config import ConfigError, load, loads

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[storage]\ndata_dir = 3\n", "storage.data_dir: expected a string, got 3"),
        ("[storage]\nfsnyc = true\n", "storage.fsnyc: unknown key"),
        ("[storag]\nfsync = true\n", "storag: unknown section"),
        ("[watchdog]\nbackend = \"dog\"\n", "watchdog.backend: expected one of"),
        ("[scheduler]\nrate_groups = { fast = 500.0, slow = 1.0, background = 0.1 }\n", "rate_groups.fast: 500.0 Hz"),
        ("[scheduler]\nrate_groups = { fast = 10.0 }\n", "missing the 'slow' group"),
        ("[storage]\nrecords_max_bytes = 10\n", "storage.records_max_bytes: 10 outside"),
        ("[[devices]]\nname = \"a\"\nkind = \"x\"\n[[devices]]\nname = \"a\"\nkind = \"y\"\n",
         "devices[1].name: duplicate device name 'a'"),
        ("[[devices]]\nname = \"Bad Name\"\nkind = \"x\"\n", "devices[0].name: 'Bad Name' does not match"),
        ("[[devices]]\nkind = \"x\"\n", "devices[0].name: required key missing"),
        ("[[devices]]\nname = \"a\"\nkind = \"x\"\nbackend = \"fake\"\n", "devices[0].backend: expected one of"),
        ("[mission\n", "not valid TOML"),
    ],
)
def test_invalid_configs_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        loads(text, "mission.toml")
    assert message in str(err.value)
    assert str(err.value).startswith("mission.toml")


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
