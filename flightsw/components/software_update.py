"""The flight side of software updates: report this version healthy, and let the ground ask for
an update or a rollback.

Why: the updater (flightsw.update, run as root by flightsw-update.service and by the unit's boot
guard) keeps a new version only once the running service says it is healthy. This component says
so after the health monitor has petted the watchdog without a miss for ``confirm_after`` seconds.
The service cannot write /opt (ProtectSystem=strict), so ground commands become a request file in
the data directory that flightsw-update.path hands to the root helper.

Config (optional)::

    [update]
    enabled = true          # default: only when running from /opt/flightsw/versions/<version>
    confirm_after = 60.0    # seconds of uninterrupted health before reporting healthy
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from flightsw import update
from flightsw.app import Subsystem
from flightsw.core.component import Arg, Channel, CommandFailure, Component, Event, command
from flightsw.core.events import Severity
from flightsw.core.types import BOOL, STRING, U16

if TYPE_CHECKING:
    from flightsw.app import Satellite

IO_RESOURCE = "update-files"
UPDATE_BASE_ID = 0x0070


def running_version() -> str:
    """The installed flightsw version of this interpreter's environment."""
    return importlib.metadata.version("flightsw")


def is_versioned_install(prefix: str = sys.prefix) -> bool:
    """True when this environment is ``.../versions/<version>`` as laid out by the updater."""
    return Path(prefix).resolve().parent.name == "versions"


class SoftwareUpdate(Component):
    """Reports the running version healthy to the updater and forwards update requests."""

    healthy_reported = Channel(BOOL, doc="this version has been reported healthy to the updater")
    reported = Event(Severity.INFO, "Version {version} reported healthy after {seconds} s", throttle=None)
    requested = Event(Severity.WARNING, "Update to {file} requested (health limit {timeout} s)", throttle=None)
    rollback_requested = Event(Severity.WARNING, "Rollback requested from version {version}", throttle=None)

    def __init__(self, name: str, data_dir: Path, version: str, confirm_after: float,
                 base_id: int = UPDATE_BASE_ID) -> None:
        super().__init__(name, base_id)
        self.data_dir = data_dir
        self.version = version
        self.confirm_after = confirm_after
        self._healthy_since: float | None = None
        self._withheld_seen = 0
        self._done = False

    def setup(self) -> None:
        self.healthy_reported.set(False)
        self.ctx.rate_group("slow").add(f"{self.name}.poll", self.poll)

    async def poll(self) -> None:
        """Report once, after an unbroken stretch of watchdog pets."""
        if self._done:
            return
        health = self.ctx.health
        now = self.ctx.clock.monotonic()
        if health.withheld != self._withheld_seen or health.pets == 0:
            self._withheld_seen = health.withheld
            self._healthy_since = None  # a withheld pet restarts the stretch
            return
        if self._healthy_since is None:
            self._healthy_since = now
        if now - self._healthy_since < self.confirm_after:
            return
        await self.ctx.workers.run_io(IO_RESOURCE, update.report_healthy, self.data_dir, self.version)
        self._done = True
        self.healthy_reported.set(True)
        self.reported.emit(version=self.version, seconds=round(now - self._healthy_since))

    @command(args=[Arg("file", STRING(80), doc="uploaded wheel, relative to the data directory"),
                   Arg("sha256", STRING(64), doc="expected SHA-256, 64 hex digits"),
                   Arg("health_timeout", U16, range=(30, 3600), doc="seconds the new version has")],
             doc="Ask the updater to verify, install and switch to an uploaded version (kept only if healthy).")
    async def apply(self, file: str, sha256: str, health_timeout: int) -> None:
        package = (self.data_dir / file).resolve()
        if self.data_dir.resolve() not in package.parents:
            raise CommandFailure(f"{file} is outside the data directory")
        if not package.is_file():
            raise CommandFailure(f"{file} does not exist")
        try:
            await self.ctx.workers.run_io(IO_RESOURCE, update.write_request, self.data_dir, package, sha256,
                                          float(health_timeout))
        except update.UpdateError as exc:
            raise CommandFailure(str(exc)) from None
        self.requested.emit(file=file, timeout=health_timeout)

    @command(doc="Ask the updater to go back to the previous version.")
    async def rollback(self) -> None:
        await self.ctx.workers.run_io(IO_RESOURCE, update.write_rollback_request, self.data_dir)
        self.rollback_requested.emit(version=self.version)


def build_update(sat: Satellite) -> None:
    """Subsystem builder (the ``update`` entry point)."""
    section = sat.config.update  # validated with the config
    enabled = is_versioned_install() if section.enabled is None else section.enabled
    confirm_after = section.confirm_after
    if enabled:
        sat.add(SoftwareUpdate("update", sat.config.data_dir, running_version(), float(confirm_after)))


SUBSYSTEM = Subsystem("update", build_update, order=30)
