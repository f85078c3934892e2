"""deploy/install.sh against a staged root: --dry-run changes nothing, a real run is idempotent."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

import pytest
from deploy_support import REPO, make_wheel, run, staged_root

INSTALL = REPO / "deploy" / "install.sh"
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a real run into a staged root needs root (chown, useradd --root)")


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        digest.update(f"{path.relative_to(root)} {info.st_mode} {info.st_uid}".encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def setup(tmp_path: Path):
    root = staged_root(tmp_path)
    wheel = make_wheel(tmp_path / "dist", "0.9.0")
    key = tmp_path / "uplink.keys"
    key.write_text("1 " + "ab" * 32 + "\n")
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    config = tmp_path / "mission.toml"
    config.write_text((REPO / "deploy" / "flight.toml").read_text()
                      + '\n[[devices]]\nname = "camera"\nkind = "camera"\nbackend = "real"\n')
    common = ["--root", str(root), "--wheel", str(wheel), "--key", str(key), "--config", str(config),
              "--wheelhouse", str(wheelhouse), "--radio-usb", "0403:6001:A10K1234"]
    return root, common


def test_dry_run_prints_every_change_and_changes_nothing(setup) -> None:
    root, common = setup
    before = tree_digest(root)
    result = run(["bash", str(INSTALL), *common, "--dry-run"])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert tree_digest(root) == before
    for expected in (
        "would: install Debian packages python3 python3-venv python3-pip i2c-tools python3-libgpiod python3-picamera2",
        "would: create system user flightsw",
        "would: add user flightsw to group i2c",
        "would: add user flightsw to group dialout",
        "would: add user flightsw to group gpio",
        "would: create directory /var/lib/flightsw (0750 flightsw:flightsw)",
        "would: install /var/lib/flightsw/uplink.keys (0600 flightsw:flightsw)",
        "would: install /etc/systemd/system/flightsw.service",
        "would: install /etc/udev/rules.d/99-flightsw-radio.rules",
        "would: install flightsw 0.9.0 into /opt/flightsw/versions/0.9.0",
        "would: point /opt/flightsw/current at versions/0.9.0 (first install)",
        "would: set dtparam=i2c_arm=on in /boot/firmware/config.txt (was dtparam=i2c_arm=off)",
        "would: add enable_uart=1 to /boot/firmware/config.txt",
        "would: remove the serial console from /boot/firmware/cmdline.txt",
        "would: mask serial-getty@ttyAMA0",
        "would: enable flightsw.service",
    ):
        assert expected in out, f"missing {expected!r} in:\n{out}"
    assert "change:" not in out
    assert out.rstrip().endswith("change(s) would be made")


def test_real_run_into_staged_root_then_second_run_changes_nothing(setup) -> None:
    root, common = setup
    first = run(["bash", str(INSTALL), *common, "--no-apt"])
    assert first.returncode == 0, first.stdout + first.stderr
    assert (root / "opt/flightsw/current").resolve() == (root / "opt/flightsw/versions/0.9.0").resolve()
    assert (root / "opt/flightsw/current/bin/flightsw").exists()
    key = (root / "var/lib/flightsw/uplink.keys").stat()
    assert stat.S_IMODE(key.st_mode) == 0o600
    passwd = (root / "etc/passwd").read_text()
    uid = next(line.split(":")[2] for line in passwd.splitlines() if line.startswith("flightsw:"))
    assert key.st_uid == int(uid)
    groups = {line.split(":")[0]: line.split(":")[3] for line in (root / "etc/group").read_text().splitlines()}
    for group in ("i2c", "dialout", "gpio", "video"):
        assert "flightsw" in groups[group].split(","), group
    boot = (root / "boot/firmware/config.txt").read_text().splitlines()
    assert "dtparam=i2c_arm=on" in boot and "dtparam=i2c_arm=off" not in boot
    assert "enable_uart=1" in boot and "dtoverlay=disable-bt" in boot
    assert "console=serial0" not in (root / "boot/firmware/cmdline.txt").read_text()
    rules = (root / "etc/udev/rules.d/99-flightsw-radio.rules").read_text()
    assert 'ATTRS{idVendor}=="0403", ATTRS{idProduct}=="6001", ATTRS{serial}=="A10K1234"' in rules
    assert os.readlink(root / "etc/systemd/system/serial-getty@ttyAMA0.service") == "/dev/null"
    assert (root / "etc/systemd/system/multi-user.target.wants/flightsw.service").is_symlink()
    assert (root / "opt/flightsw/updater/update.py").read_bytes() == (REPO / "flightsw/update.py").read_bytes()

    second = run(["bash", str(INSTALL), *common, "--no-apt"])
    assert second.returncode == 0, second.stderr
    assert "== 0 change(s)" in second.stdout, second.stdout

    # A drifted file is put back, and only that.
    (root / "var/lib/flightsw/uplink.keys").chmod(0o644)
    third = run(["bash", str(INSTALL), *common, "--no-apt"])
    assert "change: set mode 0600 on /var/lib/flightsw/uplink.keys (was 644)" in third.stdout
    assert "== 1 change(s)" in third.stdout


def test_bad_arguments_are_named(setup, tmp_path: Path) -> None:
    _, common = setup
    missing = run(["bash", str(INSTALL), "--dry-run", "--wheel", str(tmp_path / "nope.whl")])
    assert missing.returncode == 2 and "nope.whl does not exist" in missing.stderr
    bad_usb = run(["bash", str(INSTALL), *common, "--dry-run", "--radio-usb", "ftdi"])
    assert bad_usb.returncode == 2 and "--radio-usb must be VID:PID" in bad_usb.stderr
    unknown = run(["bash", str(INSTALL), "--frobnicate"])
    assert unknown.returncode == 2 and "unknown option --frobnicate" in unknown.stderr


def test_camera_package_only_when_a_real_camera_is_configured(setup, tmp_path: Path) -> None:
    _, common = setup
    config = tmp_path / "simcam.toml"
    shutil.copy(REPO / "deploy" / "bench.toml", config)  # its camera is simulated
    result = run(["bash", str(INSTALL), *common, "--config", str(config), "--dry-run"])
    assert result.returncode == 0, result.stderr
    assert "python3-picamera2" not in result.stdout
    flight = run(["bash", str(INSTALL), *common, "--config", str(REPO / "deploy" / "flight.toml"), "--dry-run"])
    assert flight.returncode == 0, flight.stderr
    assert "python3-picamera2" in flight.stdout  # the reference mission flies the Pi camera
