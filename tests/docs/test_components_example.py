"""docs/components.md's "whole path" example, run as written.

The Python block becomes a module of a package on a scratch directory and its pyproject entry
point becomes that package's installed metadata (a ``.dist-info`` on ``sys.path``, what pip would
write), so ``flightsw.app.load_subsystems`` finds it the way it finds a mission's package. The
satellite then runs on virtual time: the example hears the boot's mode and a commanded change.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flightsw.app import Satellite, load_subsystems
from flightsw.core.ports import PortError
from flightsw.testing import ResponseLog, SatelliteRunner, mission_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "components.md"
SECTION = "## Adding your own subsystem: the whole path"


def example_blocks() -> tuple[str, str]:
    text = DOC.read_text()
    section = text[text.index(SECTION):]
    section = section[:section.index("\n## ", len(SECTION))]
    (python,) = re.findall(r"```python\n(.*?)```", section, re.S)
    (toml,) = re.findall(r"```toml\n(.*?)```", section, re.S)
    return python, toml


@pytest.fixture
def mission_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    python, toml = example_blocks()
    site = tmp_path / "site"
    (site / "mission_ext").mkdir(parents=True)
    (site / "mission_ext" / "__init__.py").write_text("")
    (site / "mission_ext" / "mode_log.py").write_text(python)
    entry_points = tomllib.loads(toml)["project"]["entry-points"]
    dist_info = site / "mission_ext-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: mission-ext\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in eps.items())
        for group, eps in entry_points.items()))
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield site
    sys.modules.pop("mission_ext.mode_log", None)
    sys.modules.pop("mission_ext", None)


@pytest.fixture
def example_satellite(mission_package: Path, new_satellite: Callable[..., Satellite], tmp_path: Path) -> Satellite:
    """The mission with the example's subsystem, found through its entry point (built off the loop)."""
    subsystems = load_subsystems()
    names = [s.name for s in subsystems]
    assert names[-2:] == ["modes", "mode_log"], names  # built after the mode manager it listens to
    return new_satellite(config=mission_config(tmp_path / "data"), subsystems=list(subsystems))


@pytest.mark.virtual_time
async def test_the_example_subsystem_is_found_and_hears_every_mode_change(example_satellite: Satellite,
                                                                          sat_runner: SatelliteRunner) -> None:
    sat = await sat_runner.start(example_satellite)
    log = ResponseLog(sat)
    await asyncio.sleep(2.0)  # the mode manager announces the boot's mode on its first cycle
    assert sat.dictionary is not None
    sat.commands.submit(sat.dictionary.command("modes.FORCE_MODE").id, ["NOMINAL"], seq=1)
    assert (await log.wait_completion(1)).completion is not None
    mode_log = sat.component("mode_log")
    changes, last = mode_log.changes.value, mode_log.last_change.value  # type: ignore[attr-defined]
    assert (changes, last) == (2, "SAFE -> NOMINAL")  # BOOT -> SAFE (first boot), then the command


def test_without_a_mode_manager_the_example_names_the_missing_port(mission_package: Path, tmp_path: Path,
                                                                   new_satellite: Callable[..., Satellite]) -> None:
    example = [s for s in load_subsystems() if s.name == "mode_log"]
    sat = new_satellite(config=mission_config(tmp_path / "data"), subsystems=example)
    with pytest.raises(PortError, match=r"unwired port\(s\): modes \(needed by mode_log\)"):
        sat.finalize()
