"""Software updates with automatic rollback.

Why this module exists: a satellite cannot be visited, so a new software version must be
installed beside the running one and only kept once it has proved itself healthy. If it does
not report healthy within a time limit, or the board keeps failing to boot it, the previous
version comes back by itself.

This module uses the standard library only, on purpose: the unit's boot guard runs it with the
system interpreter (``python3 /opt/flightsw/updater/update.py boot-check``) so that a broken new
version cannot disable its own rollback.

Layout under the install root (default ``/opt/flightsw``, owned by root)::

    versions/<version>/            a virtual environment holding flightsw <version>
    versions/<version>/.flightsw-install.json   written last: the install is complete
    current -> versions/<version>  what the unit runs (ExecStart=/opt/flightsw/current/bin/flightsw)
    update-state.json              confirmed version, previous one, the version on trial
    wheelhouse/                    dependency wheels, so installs need no network

Under the data directory (default ``/var/lib/flightsw``, writable by the service)::

    update/healthy/<version>       written by the running service once it has been healthy
    update/request.json            an update the flight software asks the root helper to apply
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

DEFAULT_ROOT = Path("/opt/flightsw")
DEFAULT_DATA_DIR = Path("/var/lib/flightsw")
DEFAULT_RESTART_COMMAND = ("systemctl", "restart", "--no-block", "flightsw.service")
DISTRIBUTION = "flightsw"
STATE_FORMAT = 1
HISTORY_LIMIT = 50  # bounded: the state file must never grow without limit
INSTALL_MARKER = ".flightsw-install.json"
# A wheel file name: name-version(-build)?-python-abi-platform.whl (PEP 427).
_WHEEL_NAME = re.compile(
    r"^(?P<name>[A-Za-z0-9_.]+)-(?P<version>[A-Za-z0-9_.!+]+)"
    r"(-(?P<build>\d[^-]*))?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$"
)
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class UpdateError(Exception):
    """An update step failed; the message names what and why."""


def pip_python() -> str:
    """The interpreter that creates version environments and runs pip into them.

    The boot guard and the root helper run this file with the system python3, which has pip
    (python3-pip). ``flightsw update`` runs inside an installed version's environment, made
    without pip: its base interpreter (what the environment's python links to) is used instead.
    """
    if importlib.util.find_spec("pip") is not None:
        return sys.executable
    base = os.path.realpath(sys.executable)
    if base == sys.executable or not os.access(base, os.X_OK):
        base = getattr(sys, "_base_executable", sys.executable)
    return base


# --------------------------------------------------------------------------- files

# The same steps as flightsw.core.atomic (temporary file, write, flush, fsync, rename, fsync of the
# directory), copied on purpose: this file is installed alone as /opt/flightsw/updater/update.py and
# run by the system Python, where no flightsw package is importable. Keep the two in step.


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` so that a power cut leaves either the old or the new content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def switch_link(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` atomically (new symlink, then rename over the old one)."""
    tmp = link.with_name(f".{link.name}.new")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)
    _fsync_dir(link.parent)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks so a large package never sits in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- packages


@dataclasses.dataclass(frozen=True)
class PackageInfo:
    """A verified update package (a flightsw wheel)."""

    path: Path
    version: str
    sha256: str


def validate_version(version: str) -> str:
    """Refuse version strings that could escape the versions directory."""
    if not version or version in (".", "..") or not re.fullmatch(r"[A-Za-z0-9_.!+-]+", version):
        raise UpdateError(f"invalid version {version!r}")
    return version


def read_expected_sha256(package: Path, sha256: str | None) -> str:
    """The digest to check against: given explicitly, or from a ``<package>.sha256`` file."""
    if sha256 is None:
        sidecar = package.with_name(package.name + ".sha256")
        if not sidecar.is_file():
            raise UpdateError(
                f"no SHA-256 given for {package.name} and no {sidecar.name} beside it; "
                "refusing to install an unverified package"
            )
        words = sidecar.read_text(encoding="ascii", errors="replace").split()
        sha256 = words[0] if words else ""  # "<hex>  <file name>" as sha256sum writes it
    sha256 = sha256.strip().lower()
    if not _SHA256_HEX.match(sha256):
        raise UpdateError(f"expected SHA-256 {sha256!r} is not 64 hex digits")
    return sha256


def verify_package(package: Path, sha256: str | None) -> PackageInfo:
    """Check the digest, the wheel name and its metadata before anything is installed."""
    package = Path(package)
    if not package.is_file():
        raise UpdateError(f"package {package} does not exist")
    match = _WHEEL_NAME.match(package.name)
    if match is None:
        raise UpdateError(f"package {package.name} is not a wheel file name (name-version-py-abi-plat.whl)")
    name = match["name"].replace("_", "-").replace(".", "-").lower()
    if name != DISTRIBUTION:
        raise UpdateError(f"package {package.name} is distribution {name!r}, not {DISTRIBUTION!r}")
    version = validate_version(match["version"])
    expected = read_expected_sha256(package, sha256)
    actual = sha256_file(package)
    if actual != expected:
        raise UpdateError(f"SHA-256 mismatch for {package.name}: expected {expected}, got {actual}")
    try:
        with zipfile.ZipFile(package) as wheel:
            bad = wheel.testzip()
            if bad is not None:
                raise UpdateError(f"package {package.name} is corrupt (member {bad})")
            metadata_name = f"{match['name']}-{version}.dist-info/METADATA"
            try:
                metadata = HeaderParser().parsestr(wheel.read(metadata_name).decode("utf-8"))
            except KeyError:
                raise UpdateError(f"package {package.name} has no {metadata_name}") from None
    except zipfile.BadZipFile as exc:
        raise UpdateError(f"package {package.name} is not a zip archive: {exc}") from None
    if metadata.get("Version") != version:
        raise UpdateError(
            f"package {package.name}: metadata version {metadata.get('Version')!r} "
            f"differs from file name version {version!r}"
        )
    return PackageInfo(path=package, version=version, sha256=actual)


# --------------------------------------------------------------------------- state


@dataclasses.dataclass
class Trial:
    """A version switched to but not yet proven healthy."""

    version: str
    fallback: str | None
    boots: int = 0
    started_utc: str = ""


@dataclasses.dataclass
class UpdateState:
    """What the updater knows across restarts and reboots (persisted atomically)."""

    confirmed: str | None = None
    previous: str | None = None
    trial: Trial | None = None
    extras: list[str] = dataclasses.field(default_factory=list)
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def record(self, action: str, **details: Any) -> None:
        """Keep a short, bounded history of what the updater did, for the operator."""
        self.history.append({"utc": _utc_now(), "action": action, **details})
        del self.history[:-HISTORY_LIMIT]

    def to_json(self) -> bytes:
        body = dataclasses.asdict(self)
        payload = json.dumps(body, sort_keys=True)
        check = hashlib.sha256(payload.encode()).hexdigest()
        return json.dumps({"format": STATE_FORMAT, "sha256": check, "state": body}, indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> UpdateState:
        outer = json.loads(raw)
        if outer.get("format") != STATE_FORMAT:
            raise UpdateError(f"update state format {outer.get('format')!r} is not {STATE_FORMAT}")
        body = outer["state"]
        if hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest() != outer.get("sha256"):
            raise UpdateError("update state checksum mismatch")
        trial = Trial(**body["trial"]) if body.get("trial") else None
        return cls(
            confirmed=body.get("confirmed"),
            previous=body.get("previous"),
            trial=trial,
            extras=list(body.get("extras", [])),
            history=list(body.get("history", [])),
        )


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(frozen=True)
class VersionInfo:
    """One installed version, as the operator sees it in ``flightsw update list``."""

    version: str
    installed_utc: str
    sha256: str
    current: bool
    confirmed: bool
    on_trial: bool


@dataclasses.dataclass(frozen=True)
class UpdateOutcome:
    """How an update attempt ended."""

    version: str
    kept: bool
    running: str | None
    reason: str


# --------------------------------------------------------------------------- health markers


def health_marker(data_dir: Path, version: str) -> Path:
    return Path(data_dir) / "update" / "healthy" / validate_version(version)


def report_healthy(data_dir: Path, version: str) -> None:
    """Called by the running service once it has run healthy long enough to be kept."""
    write_atomic(health_marker(data_dir, version), f"{_utc_now()}\n".encode())


def request_path(data_dir: Path) -> Path:
    return Path(data_dir) / "update" / "request.json"


def write_request(data_dir: Path, package: Path, sha256: str, health_timeout: float) -> None:
    """Ask the root update helper (flightsw-update.path) to apply a package; used by the service."""
    read_expected_sha256(Path(package), sha256)  # validate the digest format early
    body = {"package": str(package), "sha256": sha256.lower(), "health_timeout": health_timeout}
    write_atomic(request_path(data_dir), json.dumps(body).encode())


def write_rollback_request(data_dir: Path) -> None:
    """Ask the root update helper to roll back to the previous version; used by the service."""
    write_atomic(request_path(data_dir), json.dumps({"action": "rollback"}).encode())


# --------------------------------------------------------------------------- manager


class VersionStore:
    """Installed versions, the ``current`` link and the trial/rollback state machine."""

    def __init__(
        self,
        root: Path = DEFAULT_ROOT,
        data_dir: Path = DEFAULT_DATA_DIR,
        restart_command: Sequence[str] = DEFAULT_RESTART_COMMAND,
        keep: int = 3,
        python: str | None = None,
        log: Any = None,
    ) -> None:
        if keep < 2:
            raise UpdateError(f"keep={keep}: at least 2 versions must be kept to roll back")
        self.root = Path(root)
        self.data_dir = Path(data_dir)
        self.restart_command = list(restart_command)
        self.keep = keep
        self.python = python or pip_python()
        self._log = log or (lambda message: print(message, file=sys.stderr))

    # paths --------------------------------------------------------------
    @property
    def versions_dir(self) -> Path:
        return self.root / "versions"

    @property
    def current_link(self) -> Path:
        return self.root / "current"

    @property
    def state_path(self) -> Path:
        return self.root / "update-state.json"

    @property
    def wheelhouse(self) -> Path:
        return self.root / "wheelhouse"

    def version_dir(self, version: str) -> Path:
        return self.versions_dir / validate_version(version)

    # state --------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One updater at a time (the boot guard, an operator and the helper may race)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".update.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def load_state(self) -> UpdateState:
        try:
            return UpdateState.from_json(self.state_path.read_bytes())
        except FileNotFoundError:
            return UpdateState(confirmed=self.current_version())
        except (UpdateError, ValueError, KeyError, TypeError) as exc:
            # A damaged state file must not stop the satellite from booting: trust the link.
            self._log(f"update state unreadable ({exc}); rebuilding from the current link")
            return UpdateState(confirmed=self.current_version())

    def save_state(self, state: UpdateState) -> None:
        write_atomic(self.state_path, state.to_json())

    def current_version(self) -> str | None:
        try:
            target = os.readlink(self.current_link)
        except FileNotFoundError:
            return None
        return Path(target).name

    def is_installed(self, version: str) -> bool:
        return (self.version_dir(version) / INSTALL_MARKER).is_file()

    def versions(self) -> list[VersionInfo]:
        """Installed versions, oldest install first."""
        state = self.load_state()
        current = self.current_version()
        found: list[VersionInfo] = []
        if not self.versions_dir.is_dir():
            return found
        for entry in self.versions_dir.iterdir():
            marker = entry / INSTALL_MARKER
            if not marker.is_file():
                continue
            info = json.loads(marker.read_text())
            found.append(
                VersionInfo(
                    version=entry.name,
                    installed_utc=info.get("installed_utc", ""),
                    sha256=info.get("sha256", ""),
                    current=entry.name == current,
                    confirmed=entry.name == state.confirmed,
                    on_trial=state.trial is not None and state.trial.version == entry.name,
                )
            )
        found.sort(key=lambda item: (item.installed_utc, item.version))
        return found

    # install ------------------------------------------------------------
    def install(self, package: Path, sha256: str | None, find_links: Sequence[Path] = ()) -> str:
        """Verify and install a package into its own environment; the running one is untouched."""
        info = verify_package(package, sha256)
        with self.locked():
            target = self.version_dir(info.version)
            if self.is_installed(info.version):
                marker = json.loads((target / INSTALL_MARKER).read_text())
                if marker.get("sha256") != info.sha256:
                    raise UpdateError(
                        f"version {info.version} is already installed from a different package "
                        f"(sha256 {marker.get('sha256')}); remove it first"
                    )
                self._log(f"version {info.version} already installed")
                return info.version
            if info.version == self.current_version():
                raise UpdateError(f"version {info.version} is running but its install is incomplete")
            if target.exists():
                self._log(f"removing incomplete install of {info.version}")
                shutil.rmtree(target)
            self.versions_dir.mkdir(parents=True, exist_ok=True)
            state = self.load_state()
            try:
                self._create_environment(target, info, state.extras, find_links)
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
            marker_body = {"version": info.version, "sha256": info.sha256, "installed_utc": _utc_now()}
            write_atomic(target / INSTALL_MARKER, json.dumps(marker_body).encode())
            state.record("installed", version=info.version, sha256=info.sha256)
            self.save_state(state)
            self._log(f"installed {info.version} into {target}")
            return info.version

    def _create_environment(
        self, target: Path, info: PackageInfo, extras: Sequence[str], find_links: Sequence[Path]
    ) -> None:
        # The venv is created at its final path (scripts embed it); completeness is the marker.
        # It sees the system's site packages: picamera2, libgpiod's bindings and their numpy
        # exist on Raspberry Pi OS only as Debian packages (docs/imaging.md, docs/deploy.md).
        # pip still installs into the venv whatever those do not satisfy.
        self._run([self.python, "-m", "venv", "--without-pip", "--system-site-packages", str(target)],
                  "create venv")
        spec = str(info.path.resolve())
        if extras:
            spec += "[" + ",".join(extras) + "]"
        links = [info.path.resolve().parent, *(Path(p) for p in find_links)]
        if self.wheelhouse.is_dir():
            links.append(self.wheelhouse)
        command = [self.python, "-m", "pip", "--python", str(target / "bin" / "python")]
        # Offline and wheels only: the wheelhouse holds every dependency built as a wheel, and an
        # sdist there would need a build backend that --no-index cannot fetch.
        command += ["install", "--quiet", "--no-index", "--only-binary=:all:", "--disable-pip-version-check"]
        for link in links:
            command += ["--find-links", str(link)]
        self._run([*command, spec], f"pip install {info.path.name}")

    def _run(self, command: Sequence[str], what: str) -> None:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
            raise UpdateError(f"{what} failed (exit {result.returncode}): " + " | ".join(tail))

    # activation and rollback -------------------------------------------
    def activate(self, version: str) -> None:
        """Switch to an installed version on trial and restart the service."""
        with self.locked():
            if not self.is_installed(version):
                raise UpdateError(f"version {version} is not installed")
            state = self.load_state()
            current = self.current_version()
            if state.trial is not None:
                raise UpdateError(f"version {state.trial.version} is still on trial; confirm or roll back first")
            if version == current:
                raise UpdateError(f"version {version} is already running")
            with contextlib.suppress(FileNotFoundError):
                health_marker(self.data_dir, version).unlink()  # only a fresh report counts
            state.trial = Trial(version=version, fallback=current, started_utc=_utc_now())
            state.record("activated", version=version, fallback=current)
            self.save_state(state)  # state first: a power cut after the switch still knows the fallback
            switch_link(self.current_link, f"versions/{version}")
        self._log(f"switched to {version} on trial (fallback {current})")
        self.restart()

    def adopt(self, version: str) -> None:
        """First install: make an installed version current and confirmed (nothing to fall back to)."""
        with self.locked():
            if not self.is_installed(version):
                raise UpdateError(f"version {version} is not installed")
            current = self.current_version()
            if current is not None and current != version:
                raise UpdateError(f"version {current} is current; use activate to switch with a trial")
            state = self.load_state()
            state.confirmed, state.trial = version, None
            state.record("adopted", version=version)
            self.save_state(state)
            switch_link(self.current_link, f"versions/{version}")

    def restart(self) -> None:
        if not self.restart_command:
            return
        self._run(self.restart_command, "restart the service")

    def is_healthy(self, version: str) -> bool:
        return health_marker(self.data_dir, version).is_file()

    def wait_healthy(self, version: str, timeout: float, poll: float = 0.5) -> bool:
        """Wait (monotonic clock) for the service to report the version healthy."""
        deadline = time.monotonic() + timeout
        while True:
            if self.is_healthy(version):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)

    def confirm(self, version: str | None = None) -> str:
        """Keep the version on trial (it proved healthy) and prune old versions."""
        with self.locked():
            state = self.load_state()
            if state.trial is None:
                raise UpdateError("no version is on trial")
            if version is not None and version != state.trial.version:
                raise UpdateError(f"version {version} is not on trial ({state.trial.version} is)")
            kept = state.trial.version
            state.previous = state.trial.fallback
            state.confirmed = kept
            state.trial = None
            state.record("confirmed", version=kept)
            self.save_state(state)
            self._prune(state)
        self._log(f"confirmed {kept}")
        return kept

    def rollback(self, reason: str, to: str | None = None, restart: bool = True) -> str:
        """Go back to the fallback (or a named) version; used automatically and by the operator."""
        with self.locked():
            state = self.load_state()
            current = self.current_version()
            if to is None:
                if state.trial is not None and state.trial.fallback:
                    to = state.trial.fallback
                elif state.previous and state.previous != current:
                    to = state.previous
                else:
                    raise UpdateError("no previous version to roll back to")
            if not self.is_installed(to):
                raise UpdateError(f"cannot roll back to {to}: not installed")
            if to == current and state.trial is None:
                raise UpdateError(f"version {to} is already running")
            abandoned = state.trial.version if state.trial is not None else current
            state.trial = None
            state.previous = abandoned if abandoned != to else state.previous
            state.confirmed = to
            state.record("rolled_back", version=abandoned, to=to, reason=reason)
            self.save_state(state)
            switch_link(self.current_link, f"versions/{to}")
        self._log(f"rolled back from {abandoned} to {to}: {reason}")
        if restart:
            self.restart()
        return to

    def boot_check(self, max_boots: int = 3) -> str:
        """Run before every service start (ExecStartPre): count boots of a version on trial.

        A version on trial that was started ``max_boots`` times without reporting healthy is
        rolled back here, before the service starts again.
        """
        state = self.load_state()
        trial = state.trial
        if trial is None or trial.version != self.current_version():
            return "no version on trial"
        if self.is_healthy(trial.version):
            self.confirm(trial.version)
            return f"confirmed {trial.version} (it reported healthy)"
        if trial.boots >= max_boots:
            to = self.rollback(f"{trial.boots} starts without reporting healthy", restart=False)
            return f"rolled back to {to}"
        with self.locked():
            state = self.load_state()
            if state.trial is None:
                return "no version on trial"
            state.trial.boots += 1
            self.save_state(state)
            return f"trial of {state.trial.version}: start {state.trial.boots} of {max_boots}"

    def update(
        self, package: Path, sha256: str | None, health_timeout: float, find_links: Sequence[Path] = ()
    ) -> UpdateOutcome:
        """The whole sequence: verify, install beside, switch, restart, keep or roll back."""
        version = self.install(package, sha256, find_links)
        self.activate(version)
        if self.wait_healthy(version, health_timeout):
            self.confirm(version)
            return UpdateOutcome(version, kept=True, running=version, reason="reported healthy")
        state = self.load_state()
        if state.trial is None or state.trial.version != version:
            # Someone else (the boot guard or an operator) already decided.
            return UpdateOutcome(version, kept=state.confirmed == version, running=self.current_version(),
                                 reason="decided elsewhere")
        reason = f"not healthy within {health_timeout:g} s"
        running = self.rollback(reason)
        return UpdateOutcome(version, kept=False, running=running, reason=reason)

    def process_request(self, find_links: Sequence[Path] = ()) -> UpdateOutcome | None:
        """Apply an update requested by the flight software (run by flightsw-update.service)."""
        path = request_path(self.data_dir)
        try:
            body = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            path.unlink()
            raise UpdateError(f"update request is not valid JSON: {exc}") from None
        path.unlink()  # consumed whatever happens next: a bad request must not loop
        if body.get("action") == "rollback":
            running = self.rollback("requested by the flight software")
            return UpdateOutcome(running, kept=True, running=running, reason="rolled back on request")
        package = Path(body.get("package", ""))
        data_root = self.data_dir.resolve()
        if data_root not in package.resolve().parents:
            raise UpdateError(f"requested package {package} is outside the data directory {data_root}")
        return self.update(package, body.get("sha256"), float(body.get("health_timeout", 120.0)), find_links)

    def _prune(self, state: UpdateState) -> None:
        protected = {state.confirmed, state.previous, self.current_version()}
        if state.trial is not None:
            protected |= {state.trial.version, state.trial.fallback}
        installed = self.versions()
        excess = len(installed) - self.keep
        for info in installed:
            if excess <= 0:
                break
            if info.version in protected:
                continue
            shutil.rmtree(self.version_dir(info.version))
            with contextlib.suppress(FileNotFoundError):
                health_marker(self.data_dir, info.version).unlink()
            state.record("removed", version=info.version)
            excess -= 1
        self.save_state(state)


# --------------------------------------------------------------------------- command line


def build_parser(prog: str = "flightsw update") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Install, switch and roll back flightsw versions.")
    configure_parser(parser)
    return parser


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """The options and actions, shared by ``flightsw update`` and the stand-alone script."""
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("FLIGHTSW_ROOT", DEFAULT_ROOT)),
                        help="install root holding versions/ and the current link (default %(default)s)")
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("FLIGHTSW_DATA_DIR", DEFAULT_DATA_DIR)),
                        help="service data directory holding health reports (default %(default)s)")
    parser.add_argument("--restart-command", default=os.environ.get("FLIGHTSW_RESTART_COMMAND"),
                        help="command that restarts the service (default: systemctl restart --no-block flightsw.service)")
    parser.add_argument("--keep", type=int, default=3, help="installed versions to keep (default %(default)s)")
    parser.add_argument("--find-links", type=Path, action="append", default=[],
                        help="extra directory of dependency wheels (repeatable)")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="list installed versions")
    sub.add_parser("status", help="show the update state as JSON")
    p = sub.add_parser("install", help="verify and install a package beside the running one")
    p.add_argument("package", type=Path)
    p.add_argument("--sha256", help="expected SHA-256 (default: read <package>.sha256)")
    p = sub.add_parser("apply", help="install, switch, restart; keep if healthy, else roll back")
    p.add_argument("package", type=Path)
    p.add_argument("--sha256")
    p.add_argument("--health-timeout", type=float, default=120.0,
                   help="seconds the new version has to report healthy (default %(default)s)")
    p = sub.add_parser("activate", help="switch to an installed version on trial and restart")
    p.add_argument("version")
    p = sub.add_parser("adopt", help="first install: make an installed version current")
    p.add_argument("version")
    p = sub.add_parser("confirm", help="keep the version on trial")
    p.add_argument("version", nargs="?")
    p = sub.add_parser("rollback", help="go back to the previous (or a named) version")
    p.add_argument("--to", dest="to_version")
    p = sub.add_parser("boot-check", help="run before each service start: count trial boots")
    p.add_argument("--max-boots", type=int, default=3)
    p = sub.add_parser("report-healthy", help="mark a version healthy (normally done by the service)")
    p.add_argument("version")
    sub.add_parser("process-request", help="apply an update requested by the flight software")
    p = sub.add_parser("set-extras", help="extras installed with every version (e.g. payload)")
    p.add_argument("extras", nargs="*")


def main(argv: Sequence[str] | None = None, prog: str = "flightsw update") -> int:
    """Command-line entry: ``python3 update.py ...`` (the boot guard and the root helper)."""
    return execute(build_parser(prog).parse_args(argv))


def execute(args: argparse.Namespace) -> int:
    """Carry out one parsed ``update`` action; errors are printed, exit code 2."""
    restart = DEFAULT_RESTART_COMMAND if args.restart_command is None else tuple(args.restart_command.split())
    store = VersionStore(args.root, args.data_dir, restart_command=restart, keep=args.keep)
    try:
        if args.action == "list":
            for info in store.versions():
                flags = ",".join(
                    name for name, on in (("current", info.current), ("confirmed", info.confirmed),
                                          ("trial", info.on_trial)) if on
                )
                print(f"{info.version:<16} {info.installed_utc:<21} {info.sha256[:12]:<12} {flags}")
        elif args.action == "status":
            state = store.load_state()
            print(json.dumps({"current": store.current_version(), **dataclasses.asdict(state)}, indent=1))
        elif args.action == "install":
            print(store.install(args.package, args.sha256, args.find_links))
        elif args.action == "apply":
            outcome = store.update(args.package, args.sha256, args.health_timeout, args.find_links)
            print(f"{outcome.version}: {'kept' if outcome.kept else 'rolled back'} ({outcome.reason}); "
                  f"running {outcome.running}")
            return 0 if outcome.kept else 3
        elif args.action == "activate":
            store.activate(args.version)
        elif args.action == "adopt":
            store.adopt(args.version)
        elif args.action == "confirm":
            print(store.confirm(args.version))
        elif args.action == "rollback":
            print(store.rollback("operator command", to=args.to_version))
        elif args.action == "boot-check":
            print(store.boot_check(args.max_boots))
        elif args.action == "report-healthy":
            report_healthy(args.data_dir, args.version)
        elif args.action == "process-request":
            requested = store.process_request(args.find_links)
            print("no request" if requested is None else
                  f"{requested.version}: kept={requested.kept} ({requested.reason})")
        elif args.action == "set-extras":
            with store.locked():
                state = store.load_state()
                for extra in args.extras:
                    if not re.fullmatch(r"[A-Za-z0-9_-]+", extra):
                        raise UpdateError(f"invalid extra name {extra!r}")
                state.extras = list(args.extras)
                store.save_state(state)
    except UpdateError as exc:
        print(f"update: {exc}", file=sys.stderr)
        return 2
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """``flightsw update ...``: the same commands as running this file directly."""
    parser = sub.add_parser("update", help="install, list, switch and roll back software versions",
                            description="Install, switch and roll back flightsw versions.")
    configure_parser(parser)
    parser.set_defaults(func=execute)


if __name__ == "__main__":
    sys.exit(main(prog=Path(sys.argv[0]).name))
