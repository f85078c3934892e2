"""The flight side of updates: the running satellite reports its version healthy, and ground
commands become requests for the root helper."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from deploy_support import REPO

from flightsw import update
from flightsw.app import Satellite
from flightsw.components.software_update import SoftwareUpdate, running_version
from flightsw.config import ConfigError, loads


def sim_config(data_dir: Path, update_section: str):  # type: ignore[no-untyped-def]
    text = (REPO / "deploy" / "sim.toml").read_text()
    text = re.sub(r'(\[storage\]\s*\ndata_dir\s*=\s*)"[^"]*"', rf'\1"{data_dir}"', text)
    text = re.sub(r"kiss_tcp_port\s*=\s*\d+", "kiss_tcp_port = 0", text)
    return loads(text + "\n" + update_section, source="test")


@pytest.fixture
def update_enabled(tmp_path: Path, new_satellite) -> Satellite:  # type: ignore[no-untyped-def]
    """The simulated satellite with updates enabled, built before the test's loop runs (the first
    build imports every subsystem: that is start-up work, not something for the loop to wait on)."""
    return new_satellite(config=sim_config(tmp_path, "[update]\nenabled = true\nconfirm_after = 1.0\n"))


@pytest.mark.virtual_time
async def test_satellite_reports_its_version_healthy_after_an_unbroken_stretch(tmp_path: Path,
                                                                              update_enabled: Satellite) -> None:
    sat = update_enabled
    component = next(c for c in sat.components if isinstance(c, SoftwareUpdate))
    assert not update.health_marker(tmp_path, running_version()).exists()
    await sat.run(duration=4.0)  # simulated seconds
    assert update.health_marker(tmp_path, running_version()).is_file()
    assert component._done


def test_not_enabled_outside_a_versioned_install(tmp_path: Path, new_satellite) -> None:
    sat = new_satellite(config=sim_config(tmp_path, ""))  # the source tree's venv is not versions/<v>
    assert not any(isinstance(c, SoftwareUpdate) for c in sat.components)


def test_bad_update_section_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="update.confirm_after"):
        Satellite(sim_config(tmp_path, "[update]\nconfirm_after = 0\n"))
    with pytest.raises(ConfigError, match="update.retries: unknown key"):
        Satellite(sim_config(tmp_path, "[update]\nretries = 2\n"))


def test_rollback_request_is_processed_by_the_root_helper(tmp_path: Path) -> None:
    """What the ROLLBACK command writes, flightsw-update.service turns into a rollback."""
    from deploy_support import make_wheel

    store = update.VersionStore(tmp_path / "opt", tmp_path / "data", restart_command=(), log=lambda m: None)
    for version in ("1.0.0", "1.1.0"):
        store.install(make_wheel(tmp_path / "wheels", version), None)
        store.activate(version)
        update.report_healthy(store.data_dir, version)
        store.confirm(version)
    update.write_rollback_request(store.data_dir)
    assert json.loads(update.request_path(store.data_dir).read_text()) == {"action": "rollback"}
    outcome = store.process_request()
    assert outcome is not None and outcome.running == "1.0.0"
    assert store.current_version() == "1.0.0"
    assert store.process_request() is None  # consumed
