"""The flight process's event loop: select(2), which takes microsecond timeouts, with the
process's descriptors far below select's limit."""

from __future__ import annotations

import asyncio
import selectors
import time

from flightsw.core.eventloop import FD_SETSIZE, check_descriptors, flight_loop, highest_descriptor


def test_flight_loop_is_on_select_and_wakes_within_a_millisecond() -> None:
    async def lateness() -> float:
        loop = asyncio.get_running_loop()
        assert isinstance(loop._selector, selectors.SelectSelector)  # type: ignore[attr-defined]
        worst = []
        for _ in range(20):
            due = time.perf_counter() + 0.0023
            await asyncio.sleep(0.0023)
            worst.append(time.perf_counter() - due)
        return sorted(worst)[len(worst) // 2]

    with asyncio.Runner(loop_factory=flight_loop) as runner:
        median = runner.run(lateness())
    # epoll would round each 2.3 ms timeout up to 3 ms: ~0.7 ms late every time.
    assert median < 0.0006, f"median wake-up lateness {median * 1e3:.3f} ms"


def test_laptop_mission_holds_few_descriptors(tmp_path) -> None:
    from bench.configs import sim_config
    from flightsw.app import Satellite

    async def fly() -> int:
        sat = await asyncio.to_thread(lambda: Satellite(sim_config(tmp_path / "data")))
        runner = asyncio.create_task(sat.run())
        await sat.started.wait()

        await asyncio.sleep(2.0)
        highest = highest_descriptor()
        check_descriptors()
        sat.stop_event.set()
        await runner
        return highest

    with asyncio.Runner(loop_factory=flight_loop) as runner:
        highest = runner.run(fly())
    assert 0 < highest < FD_SETSIZE // 4
