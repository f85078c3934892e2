"""`flightsw ground passes`: skyfield's passes agree with two independent computations (the
satellite's own SGP4 + GMST predictor, and the simulator's orbit and station geometry); bad
input gets one line and exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flightsw.cli import main
from flightsw.config import ContactStationSection
from flightsw.ground.passes import PassInputError, load_stations, predict, read_tle, resolve_station
from flightsw.link.passes import PassPredictor, Station
from sim.environment.contacts import ALMATY, GroundStation, contact_windows
from sim.environment.orbit import Orbit, sso_tle

TLE = sso_tle()
DAYS = 3.0


@pytest.fixture(scope="module")
def start() -> float:
    return PassPredictor(*TLE).epoch


def test_passes_match_the_satellites_own_sgp4_predictor(start: float) -> None:
    stations = [resolve_station("almaty=43.2,76.9,800,5", {}), resolve_station("north=60,20,0,10", {})]
    ours = predict(TLE, stations, start, DAYS)
    theirs = PassPredictor(*TLE).passes([Station(s.name, s.lat_deg, s.lon_deg, s.alt_m, s.min_elevation_deg)
                                         for s in stations], start, DAYS * 86400.0, step_s=10.0)
    assert len(ours) == len(theirs) >= 10
    for mine, other in zip(ours, theirs, strict=True):
        assert mine.station == other.station
        assert abs(mine.aos - other.aos) < 3.0 and abs(mine.los - other.los) < 3.0, (mine, other)
        # the onboard predictor keeps the highest 10 s sample: never above the true maximum
        assert other.max_elevation_deg - 0.05 <= mine.max_elevation_deg <= other.max_elevation_deg + 1.0
        assert mine.aos < mine.tca < mine.los


def test_passes_match_the_simulators_geometry(start: float) -> None:
    almaty = load_stations()["almaty"]  # the packaged station file: the simulator's ALMATY
    assert (almaty.lat_deg, almaty.lon_deg, almaty.alt_m, almaty.min_elevation_deg) == (
        ALMATY.lat_deg, ALMATY.lon_deg, ALMATY.alt_m, ALMATY.min_elevation_deg)
    ours = predict(TLE, [almaty], start, DAYS)
    windows = [w for w in contact_windows(Orbit.from_tle(*TLE), GroundStation("almaty", 43.2, 76.9, 800.0),
                                          start, start + DAYS * 86400.0) if w.aos > start]
    assert len(ours) == len(windows)
    for mine, window in zip(ours, windows, strict=True):
        assert abs(mine.aos - window.aos) < 3.0 and abs(mine.los - window.los) < 3.0
        assert abs(mine.tca - window.tca) < 5.0
        assert abs(mine.max_elevation_deg - window.max_elevation_deg) < 0.3


def test_a_pass_in_progress_at_the_start_starts_there(start: float) -> None:
    almaty = load_stations()["almaty"]
    first = predict(TLE, [almaty], start, 1.0)[1]
    middle = predict(TLE, [almaty], first.tca, 0.01)
    assert middle[0].aos == pytest.approx(first.tca) and middle[0].los == pytest.approx(first.los, abs=0.5)


def _tle_file(tmp_path: Path, lines: tuple[str, str], name: str = "FSW-1") -> Path:
    path = tmp_path / "sat.tle"
    path.write_text(f"{name}\n{lines[0]}\n{lines[1]}\n")
    return path


def test_the_command_prints_passes_per_station(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ground", "passes", "--tle", str(_tle_file(tmp_path, TLE)), "--station", "almaty",
                 "--station", "astana=51.13,71.43,350,10", "--days", "1", "--start", "2026-06-01T00:00:00Z"])
    out = capsys.readouterr().out
    assert code == 0
    assert "almaty (43.2000, 76.9000, 800 m, mask 0 deg): 5 passes in 1 days" in out
    assert "astana (51.1300, 71.4300, 350 m, mask 10 deg):" in out
    assert out.count("  AOS 2026-06-01T") >= 8 and " TCA " in out and " LOS " in out and " max " in out


@pytest.mark.parametrize("change, message", [
    (lambda args: args + ["--station", "nowhere"], "unknown station 'nowhere' (known: almaty"),
    (lambda args: args + ["--station", "x=91,0"], "station 'x=91,0': Expected `float` <= 90.0"),
    (lambda args: args + ["--station", "x=a,b"], "must be numbers"),
    (lambda args: args + ["--station", "almaty", "--days", "45"], "--days 45 outside (0, 30]"),
    (lambda args: args + ["--station", "almaty", "--start", "soon"], "--start 'soon' is not an ISO time"),
    (lambda args: args + ["--station", "almaty", "--stations", "/nonexistent.toml"], "station file /nonexistent.toml"),
])
def test_bad_input_gets_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], change, message: str) -> None:
    args = ["ground", "passes", "--tle", str(_tle_file(tmp_path, TLE))]
    assert main(change(args)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_bad_tles_and_station_files_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = (TLE[0][:-1] + str((int(TLE[0][-1]) + 1) % 10), TLE[1])
    assert main(["ground", "passes", "--tle", str(_tle_file(tmp_path, broken)), "--station", "almaty"]) == 2
    assert "line 1 checksum mismatch" in capsys.readouterr().err
    stations = tmp_path / "stations.toml"
    stations.write_text('[[stations]]\nname = "x"\nlat_deg = 1\nlon_deg = 2\nantenna = "yagi"\n')
    assert main(["ground", "passes", "--tle", str(_tle_file(tmp_path, TLE)), "--station", "x",
                 "--stations", str(stations)]) == 2
    assert "antenna" in capsys.readouterr().err
    with pytest.raises(PassInputError, match="found 1 element lines"):
        read_tle(TLE[0])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_any_station_text_is_a_station_or_a_one_line_error(spec: str) -> None:
    try:
        station = resolve_station(spec, {"almaty": load_stations()["almaty"]})
    except PassInputError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(station, ContactStationSection)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_tle_text_is_two_lines_or_a_one_line_error(text: str) -> None:
    try:
        lines = read_tle(text)
    except PassInputError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(len(line) == 69 for line in lines)
