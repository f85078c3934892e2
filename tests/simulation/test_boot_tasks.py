"""The reset bookkeeping finds the tasks a stopped boot left behind, whoever created them."""

from __future__ import annotations

import asyncio

from flightsw.sim_runner.reboots import BootTasks, coroutine_name


async def _forever(spawn: bool) -> None:
    if spawn:  # a task created by a task of the boot belongs to the boot too
        asyncio.get_running_loop().create_task(_forever(False), name="grandchild")
    await asyncio.Event().wait()


async def test_tasks_created_during_a_boot_are_found_after_it() -> None:
    tracker = BootTasks()
    loop = asyncio.get_running_loop()
    loop.set_task_factory(tracker.task_factory)
    try:
        with tracker.running(1):
            loop.create_task(_forever(True), name="child")
        outside = loop.create_task(_forever(False), name="outside")
        await asyncio.sleep(0)  # the child runs and creates the grandchild
        left = tracker.left_behind(1)
        names = sorted(t.get_name() for t in left)
        coros = sorted(coroutine_name(t) for t in left)
        other = [t.get_name() for t in tracker.left_behind(2)]
        for task in [*left, outside]:
            task.cancel()
        await asyncio.wait([*left, outside])
    finally:
        loop.set_task_factory(None)
    assert names == ["child", "grandchild"]  # not "outside": created outside the boot
    assert coros == ["_forever", "_forever"]
    assert other == []
