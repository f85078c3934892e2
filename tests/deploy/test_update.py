"""Updates with rollback, on real virtual environments, real pip and real processes."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest
from deploy_support import UPDATE_SOURCE, ServiceBench, make_wheel, run

from flightsw import update
from flightsw.update import UpdateError, VersionStore


def store_for(bench: ServiceBench, restart: bool = True) -> VersionStore:
    return VersionStore(bench.root, bench.data_dir, bench.restart_command if restart else (),
                        log=lambda message: None)


def first_install(bench: ServiceBench, version: str = "1.0.0") -> VersionStore:
    """Bring up the first version the way install.sh does: install, activate, confirm when healthy."""
    store = store_for(bench)
    store.install(make_wheel(bench.wheels, version), None)
    store.activate(version)
    assert store.wait_healthy(version, timeout=30)
    store.confirm(version)
    bench.wait_running(version)
    return store


def quiet_first_install(bench: ServiceBench, version: str = "1.0.0") -> VersionStore:
    """First install without a running service, for tests of the state machine alone."""
    store = store_for(bench, restart=False)
    store.install(make_wheel(bench.wheels, version), None)
    store.adopt(version)
    return store


# ------------------------------------------------------------------ verification


def test_package_with_wrong_digest_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "1.0.0", write_sidecar=False)
    with pytest.raises(UpdateError, match="SHA-256 mismatch"):
        update.verify_package(wheel, "0" * 64)


def test_package_without_digest_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "1.0.0", write_sidecar=False)
    with pytest.raises(UpdateError, match="unverified"):
        update.verify_package(wheel, None)


def test_digest_sidecar_is_used_and_malformed_digest_named(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "1.0.0")
    info = update.verify_package(wheel, None)
    assert info.version == "1.0.0"
    assert info.sha256 == hashlib.sha256(wheel.read_bytes()).hexdigest()
    with pytest.raises(UpdateError, match="not 64 hex digits"):
        update.verify_package(wheel, "xyz")


def test_wrong_distribution_and_metadata_mismatch_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other-1.0-py3-none-any.whl"
    other.write_bytes(b"x")
    with pytest.raises(UpdateError, match="not 'flightsw'"):
        update.verify_package(other, hashlib.sha256(b"x").hexdigest())
    wheel = make_wheel(tmp_path / "a", "1.0.0", write_sidecar=False)
    renamed = tmp_path / "flightsw-2.0.0-py3-none-any.whl"
    wheel.rename(renamed)
    with pytest.raises(UpdateError, match="no flightsw-2.0.0.dist-info/METADATA"):
        update.verify_package(renamed, hashlib.sha256(renamed.read_bytes()).hexdigest())


def test_truncated_package_is_refused(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "1.0.0", write_sidecar=False)
    wheel.write_bytes(wheel.read_bytes()[:200])
    with pytest.raises(UpdateError, match="not a zip archive"):
        update.verify_package(wheel, hashlib.sha256(wheel.read_bytes()).hexdigest())


def test_path_like_version_is_refused() -> None:
    with pytest.raises(UpdateError, match="invalid version"):
        update.validate_version("..")
    with pytest.raises(UpdateError, match="invalid version"):
        update.validate_version("1.0/../../etc")


# ------------------------------------------------------------------ install, keep, roll back


def test_install_is_beside_the_running_version_and_idempotent(bench: ServiceBench) -> None:
    store = quiet_first_install(bench)
    wheel = make_wheel(bench.wheels, "1.1.0")
    assert store.install(wheel, None) == "1.1.0"
    assert store.install(wheel, None) == "1.1.0"  # second time: nothing to do
    assert store.current_version() == "1.0.0"
    assert (bench.root / "versions" / "1.1.0" / "bin" / "flightsw").exists()
    assert [v.version for v in store.versions()] == ["1.0.0", "1.1.0"]


def test_good_version_stays(bench: ServiceBench) -> None:
    store = first_install(bench)
    outcome = store.update(make_wheel(bench.wheels, "1.1.0"), None, health_timeout=30)
    assert outcome.kept and outcome.running == "1.1.0"
    assert store.current_version() == "1.1.0"
    bench.wait_running("1.1.0")
    state = store.load_state()
    assert state.confirmed == "1.1.0" and state.previous == "1.0.0" and state.trial is None


def test_version_that_never_becomes_healthy_is_rolled_back(bench: ServiceBench) -> None:
    store = first_install(bench)
    first_pid = bench.wait_running("1.0.0")
    outcome = store.update(make_wheel(bench.wheels, "2.0.0", behaviour="bad"), None, health_timeout=2)
    assert not outcome.kept
    assert outcome.running == "1.0.0"
    assert "not healthy within 2 s" in outcome.reason
    assert store.current_version() == "1.0.0"
    assert bench.wait_running("1.0.0") != first_pid  # restarted on the old version
    state = store.load_state()
    assert state.trial is None and state.confirmed == "1.0.0"
    assert state.history[-1]["action"] == "rolled_back" and state.history[-1]["version"] == "2.0.0"
    # The rejected version stays installed for diagnosis, but is not current.
    listed = {v.version: v for v in store.versions()}
    assert not listed["2.0.0"].current and listed["1.0.0"].current


def test_repeated_failed_starts_roll_back_in_the_boot_guard(bench: ServiceBench) -> None:
    quiet_first_install(bench)
    quiet = store_for(bench, restart=False)  # the test plays systemd's restarts itself
    quiet.install(make_wheel(bench.wheels, "3.0.0", behaviour="crash"), None)
    quiet.activate("3.0.0")
    messages = [quiet.boot_check(max_boots=3) for _ in range(3)]
    assert messages[-1] == "trial of 3.0.0: start 3 of 3"
    assert quiet.current_version() == "3.0.0"
    assert quiet.boot_check(max_boots=3) == "rolled back to 1.0.0"
    assert quiet.current_version() == "1.0.0"
    assert quiet.boot_check(max_boots=3) == "no version on trial"


def test_boot_guard_confirms_a_version_that_reported_healthy_before_a_reboot(bench: ServiceBench) -> None:
    store = quiet_first_install(bench)
    quiet = store_for(bench, restart=False)
    quiet.install(make_wheel(bench.wheels, "1.2.0"), None)
    quiet.activate("1.2.0")
    update.report_healthy(bench.data_dir, "1.2.0")
    assert quiet.boot_check() == "confirmed 1.2.0 (it reported healthy)"
    assert store.load_state().confirmed == "1.2.0"


def test_operator_rollback_and_cli_listing(bench: ServiceBench) -> None:
    store = first_install(bench)
    store.update(make_wheel(bench.wheels, "1.1.0"), None, health_timeout=30)
    common = ["--root", str(bench.root), "--data-dir", str(bench.data_dir),
              "--restart-command", " ".join(bench.restart_command)]
    listing = run([sys.executable, str(UPDATE_SOURCE), *common, "list"])
    assert listing.returncode == 0, listing.stderr
    lines = {line.split()[0]: line for line in listing.stdout.splitlines()}
    assert "current" in lines["1.1.0"] and "current" not in lines["1.0.0"]
    back = run([sys.executable, str(UPDATE_SOURCE), *common, "rollback"])
    assert back.returncode == 0, back.stderr
    assert back.stdout.strip() == "1.0.0"
    bench.wait_running("1.0.0")
    assert store.current_version() == "1.0.0"
    again = run([sys.executable, str(UPDATE_SOURCE), *common, "rollback", "--to", "9.9.9"])
    assert again.returncode == 2 and "9.9.9: not installed" in again.stderr


def test_old_versions_are_pruned_to_the_limit(bench: ServiceBench) -> None:
    quiet = store_for(bench, restart=False)  # pruning needs no running process
    for version in ("1.0.0", "1.1.0", "1.2.0", "1.3.0"):
        quiet.install(make_wheel(bench.wheels, version), None)
        quiet.activate(version)
        update.report_healthy(bench.data_dir, version)
        quiet.confirm(version)
    remaining = [v.version for v in quiet.versions()]
    assert len(remaining) == quiet.keep == 3
    assert remaining == ["1.1.0", "1.2.0", "1.3.0"]  # oldest went; current and previous survive
    assert not update.health_marker(bench.data_dir, "1.0.0").exists()
    assert quiet.load_state().history[-1] == {**quiet.load_state().history[-1], "action": "removed",
                                              "version": "1.0.0"}


def test_damaged_state_file_falls_back_to_the_link(bench: ServiceBench) -> None:
    store = quiet_first_install(bench)
    store.state_path.write_bytes(b'{"format": 1, "sha256": "00", "state": {}}')
    assert store.load_state().confirmed == "1.0.0"


def test_interrupted_install_is_redone(bench: ServiceBench) -> None:
    store = quiet_first_install(bench)
    half = bench.root / "versions" / "1.5.0"
    (half / "bin").mkdir(parents=True)  # a power cut mid-install: no completion marker
    assert not store.is_installed("1.5.0")
    store.install(make_wheel(bench.wheels, "1.5.0"), None)
    assert store.is_installed("1.5.0")
    marker = json.loads((half / update.INSTALL_MARKER).read_text())
    assert marker["version"] == "1.5.0"


def test_request_from_the_service_outside_data_dir_is_refused(bench: ServiceBench, tmp_path: Path) -> None:
    store = store_for(bench, restart=False)
    wheel = make_wheel(tmp_path / "elsewhere", "1.0.0")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    update.write_request(bench.data_dir, wheel, digest, health_timeout=5)
    with pytest.raises(UpdateError, match="outside the data directory"):
        store.process_request()
    assert not update.request_path(bench.data_dir).exists()  # consumed, so it cannot loop


def test_atomic_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    update.write_atomic(target, b"one")
    update.write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(os.listdir(tmp_path)) == ["state.json"]
