"""Critical services: a failed or unresponsive one stops the watchdog pets after the grace time,
the reset reason CRITICAL_SERVICE is recorded first, and the next boot reads it; a service that
recovers within the grace time (or is restarted) costs nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flightsw.core.component import Component
from flightsw.core.health import HealthMonitor
from flightsw.core.supervisor import ServiceState, Supervisor
from flightsw.testing import make_satellite
from sim.watchdog import SimWatchdog

pytestmark = pytest.mark.virtual_time



class Radio(Component):
    """A receiver whose serial device may be missing (``present``): its service crashes then."""

    def __init__(self, present: bool) -> None:
        super().__init__("radio", 0x0700)
        self.present = present
        self.opened = 0

    def setup(self) -> None:
        self.ctx.supervisor.add_service("radio.rx", self.rx, critical=True, max_failures=3)

    async def rx(self) -> None:
        if not self.present:
            raise OSError("cannot open /dev/serial0")
        self.opened += 1
        await asyncio.Event().wait()


async def test_a_failed_critical_service_resets_the_board_and_the_next_boot_says_why(tmp_path: Path) -> None:
    sat = make_satellite(tmp_path, [Radio(present=False)])
    sat.health.grace = 20.0
    reason = await asyncio.wait_for(sat.run(), 120.0)  # the simulated watchdog bites: a reset, no clean stop
    assert reason == "WATCHDOG"
    (alarm,) = [e.args for e in sat.events.recent if e.name == "exec.critical_service"]
    assert alarm["detail"].startswith("radio.rx: failed: OSError: cannot open /dev/serial0")
    # recorded before the pets stopped: what the next boot reads although nothing was flushed
    assert sat.state.store.load().value["shutdown_reason"] == "CRITICAL_SERVICE"

    nxt = make_satellite(tmp_path, [Radio(present=True)])
    assert nxt.state.get("reset_reason") == "CRITICAL_SERVICE"

    async def up() -> None:
        await nxt.started.wait()
        await asyncio.sleep(60.0)
        nxt.stop_event.set()

    stopper = asyncio.create_task(up())
    assert await nxt.run() == "COMMANDED"
    await stopper
    (previous,) = [e.args for e in nxt.events.recent if e.name == "exec.previous_critical"]
    assert "radio.rx" in previous["detail"]
    assert not [e for e in nxt.events.recent if e.name == "exec.critical_service"]
    assert nxt.health.withheld == 0


async def test_the_ping_waits_for_the_grace_time_and_a_restart_clears_it() -> None:
    dog = SimWatchdog()
    loop = asyncio.get_running_loop()
    sup = Supervisor()
    present = {"device": False}

    async def rx() -> None:
        if not present["device"]:
            raise OSError("no device")
        await asyncio.Event().wait()

    svc = sup.add_service("link.rx", rx, max_failures=2, backoff_initial=1.0)
    sup.add_service("housekeeping", asyncio.Event().wait)  # the rest of the satellite runs on
    calls: list[list[str]] = []

    async def on_critical(pings: list) -> None:
        calls.append([p.name for p in pings])

    health = HealthMonitor(dog, loop.time, 1.0, on_critical=on_critical, grace=30.0)
    health.add_ping("link.rx", lambda: "failed" if svc.state is ServiceState.FAILED else None)
    async with asyncio.TaskGroup() as group:
        runner = group.create_task(sup.run())
        monitor = group.create_task(health.run())
        await asyncio.sleep(20.0)
        assert svc.state is ServiceState.FAILED and health.withheld == 0  # within the grace time
        await asyncio.sleep(15.0)
        assert health.withheld > 0 and calls == [["link.rx"]]
        present["device"] = True
        assert sup.restart("link.rx") is ServiceState.FAILED  # FDIR's RESTART_SERVICE response
        await asyncio.sleep(3.0)
        assert svc.state is ServiceState.RUNNING and calls == [["link.rx"], []]
        withheld = health.withheld
        await asyncio.sleep(5.0)
        assert health.withheld == withheld  # petting again
        runner.cancel()
        monitor.cancel()
