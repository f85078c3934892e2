"""Smoke version of the power-cut campaign (`make reliability` runs 1000 kills): the flight
process SIGKILLed ten times during its busy mission, then every store checked; and the checks
themselves do find a corrupt record log, a lost committed record and a damaged image."""

from __future__ import annotations

from pathlib import Path

import pytest

from reliability import power_cuts


@pytest.mark.timeout(120)
def test_ten_kills_leave_every_store_loadable_and_nothing_committed_lost(tmp_path: Path) -> None:
    result = power_cuts.run(tmp_path, kills=10, workers=2, log=lambda _: None)
    assert result.kills == 10 and result.child_errors == []
    assert result.corrupt_files == [] and result.lost_committed == [] and result.boot_loop_violations == []
    assert result.records_committed > 100  # the lives did real work before their kills
    assert result.boots >= 8


@pytest.fixture(scope="module")
def flown(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A satellite's storage after two killed lives (records, images, state)."""
    sat = power_cuts.Satellite(tmp_path_factory.mktemp("flown") / "sat0")
    sat.data.mkdir()
    for _ in range(4):  # lives long enough to capture (a loaded machine runs the mission slower)
        lines, error = power_cuts._life(sat, 2.5)
        assert error == ""
        if any(line.startswith("I ") for line in lines):
            return sat.data
    raise AssertionError("four lives of 2.5 s captured no image")


def _fresh_check(data: Path) -> power_cuts.PowerCutResult:
    result = power_cuts.PowerCutResult()
    power_cuts.check(power_cuts.Satellite(data), result)
    return result


def test_the_checks_pass_on_a_flown_satellite(flown: Path) -> None:
    result = _fresh_check(flown)
    assert result.corrupt_files == [] and result.lost_committed == []


def test_the_checks_find_a_corrupt_record_log(flown: Path, tmp_path: Path) -> None:
    import shutil

    data = tmp_path / "sat"
    shutil.copytree(flown, data, ignore=shutil.ignore_patterns("*.tty"))
    intact = power_cuts.Satellite(data)
    power_cuts.check(intact, power_cuts.PowerCutResult())
    segments = sorted((data / "records").glob("records-*.log"))
    raw = bytearray(segments[0].read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    segments[0].write_bytes(bytes(raw))
    result = power_cuts.PowerCutResult()
    power_cuts.check(power_cuts.Satellite(data, committed_record=intact.committed_record), result)
    if len(segments) > 1:  # an older segment invalid before its end is corrupt
        assert any("invalid from byte" in x for x in result.corrupt_files), result.corrupt_files
    # the records after the flipped byte are gone: committed data lost
    assert any("committed record" in x for x in result.lost_committed), result.lost_committed


def test_the_checks_find_a_damaged_image(flown: Path, tmp_path: Path) -> None:
    import shutil
    import sqlite3

    data = tmp_path / "sat"
    shutil.copytree(flown, data, ignore=shutil.ignore_patterns("*.tty"))
    db = sqlite3.connect(data / "images" / "catalog.sqlite")
    image_id = db.execute("SELECT max(id) FROM images").fetchone()[0]
    db.close()
    full = next(p for p in (data / "images" / "products").glob("*/full.jpg") if int(p.parent.name) == image_id)
    full.write_bytes(full.read_bytes()[:-10])
    sat = power_cuts.Satellite(data, committed_images={image_id})
    result = power_cuts.PowerCutResult()
    power_cuts.check(sat, result)
    assert any(f"image {image_id}" in x for x in result.corrupt_files), result.corrupt_files


def test_a_scenario_refuses_a_used_data_directory_unless_resumed(tmp_path: Path) -> None:
    from flightsw.config import load
    from flightsw.sim_runner.options import SimOptions, SimulationError
    from flightsw.sim_runner.runner import SimulationRun
    from sim.scenario import loads_scenario

    (tmp_path / "state.a").write_bytes(b"x")
    config = load(power_cuts.REPO / "deploy" / "sim.toml")
    scenario = loads_scenario(power_cuts.SCENARIO, "power_cuts")
    with pytest.raises(SimulationError, match="is not empty"):
        SimulationRun(config, scenario, SimOptions(data_dir=tmp_path))._prepare_config()
    run = SimulationRun(config, scenario, SimOptions(data_dir=tmp_path, resume=True))
    run._prepare_config()
    assert run.config.storage.data_dir == str(tmp_path)
