"""The dispatcher: verdicts with reason codes, completions, counters, parameters by command."""

import asyncio

import msgpack

from flightsw.core.commands import Completion, Reason
from flightsw.core.component import Arg, Channel, CommandFailure, Component, Parameter, command
from flightsw.core.types import F32, I16, STRING, U8
from flightsw.testing import ResponseLog


class Camera(Component):
    """Test component with every kind of command outcome."""

    shots = Channel(U8)
    gain = Parameter(F32, default=1.0, range=(0.5, 8.0))
    allowed = True

    @command(args=[Arg("count", U8, range=(1, 10)), Arg("label", STRING(8))])
    def capture(self, count: int, label: str) -> None:
        self.shots.set(count)

    @command()
    def explode(self) -> None:
        raise CommandFailure("lens cap on")

    @command()
    def crash(self) -> None:
        raise ZeroDivisionError("bug")

    @command(timeout=0.2)
    async def hang(self) -> None:
        await asyncio.sleep(10)

    @command(args=[Arg("x", I16)])
    def signed(self, x: int) -> None:
        pass

    def check_command(self, name: str, args: list) -> str | None:
        return None if self.allowed or name != "CAPTURE" else "payload power off"

    def on_parameter(self, name: str, value: object) -> None:
        if name == "gain" and value == 3.0:
            raise ValueError("3.0 is a cursed gain")


def opcode(sat, name: str) -> int:
    return next(i.id for i in sat.dictionary.commands.values() if i.name == name)


async def test_verdicts_and_completions(new_satellite, sat_runner) -> None:
    cam = Camera("cam", 0x40)
    sat = await sat_runner.start(new_satellite([cam]))
    log = ResponseLog(sat)
    v = sat.commands.submit(opcode(sat, "cam.CAPTURE"), [3, "earth"], seq=1)
    assert v.accepted
    assert (await log.wait_completion(1)).completion is Completion.SUCCESS
    assert cam.shots.value == 3

    cases = [
        (0xDEAD, [], Reason.UNKNOWN_OPCODE),
        (opcode(sat, "cam.CAPTURE"), [3], Reason.BAD_ARG_COUNT),
        (opcode(sat, "cam.CAPTURE"), ["3", "x"], Reason.BAD_ARG_TYPE),
        (opcode(sat, "cam.CAPTURE"), [True, "x"], Reason.BAD_ARG_TYPE),
        (opcode(sat, "cam.CAPTURE"), [11, "x"], Reason.ARG_OUT_OF_RANGE),
        (opcode(sat, "cam.CAPTURE"), [1, "far too long"], Reason.BAD_ARG_TYPE),
        (opcode(sat, "cam.SIGNED"), [40000], Reason.ARG_OUT_OF_RANGE),
    ]
    for op, args, reason in cases:
        v = sat.commands.submit(op, args)
        assert not v.accepted and v.reason is reason, (args, v)

    cam.allowed = False
    v = sat.commands.submit(opcode(sat, "cam.CAPTURE"), [1, "x"])
    assert v.reason is Reason.NOT_ALLOWED and "power" in v.detail

    sat.commands.submit(opcode(sat, "cam.EXPLODE"), [], seq=10)
    sat.commands.submit(opcode(sat, "cam.CRASH"), [], seq=11)
    sat.commands.submit(opcode(sat, "cam.HANG"), [], seq=12)
    r10, r11, r12 = [await log.wait_completion(s) for s in (10, 11, 12)]
    assert (r10.completion, r10.detail) == (Completion.FAILURE, "lens cap on")
    assert r11.completion is Completion.FAILURE and "ZeroDivisionError" in r11.detail
    assert r12.completion is Completion.TIMEOUT

    # every submit produced a verdict, every accepted one a completion
    verdicts = [r for r in log.items if r.completion is None]
    assert len(verdicts) == 1 + len(cases) + 1 + 3
    assert cam.counters["cmds_accepted"] == 4 and cam.counters["cmds_rejected"] == len(cases) - 1 + 1
    assert cam.counters["cmd_errors"] == 3
    assert sat.commands.stats["failed"] == 3 and sat.commands.stats["succeeded"] == 1

    sat.commands.submit(opcode(sat, "cam.RESET_COUNTERS"), [], seq=20)
    await log.wait_completion(20)
    assert cam.counters["cmds_accepted"] == 0 and cam.cmds_accepted.value == 0


async def test_malformed_packets_are_counted_and_never_raise(new_satellite, sat_runner) -> None:
    sat = await sat_runner.start(new_satellite())
    for junk in (b"", b"\xc1", b"\x93\x01\x02\x03", msgpack.packb(["x", []]), msgpack.packb([1, "notalist"]),
                 msgpack.packb({"a": 1}), bytes(range(256))):
        v = sat.commands.submit_packed(junk)
        assert not v.accepted and v.reason is Reason.MALFORMED
    ok = sat.commands.submit_packed(msgpack.packb([opcode(sat, "exec.NO_OP"), []]))
    assert ok.accepted
    assert sat.commands.stats["malformed"] == 7
    names = [e.name for e in sat.events.recent]
    assert "cmd.malformed_evt" in names


async def test_parameter_set_is_validated_activated_and_survives_restart(new_satellite, sat_runner) -> None:
    sat = await sat_runner.start(new_satellite([Camera("cam", 0x40)]))
    log = ResponseLog(sat)
    op = opcode(sat, "cam.SET_GAIN")
    assert sat.commands.submit(op, [9.0]).reason is Reason.ARG_OUT_OF_RANGE
    sat.commands.submit(op, [3.0], seq=1)
    assert (await log.wait_completion(1)).completion is Completion.FAILURE  # refused on activation
    sat.commands.submit(op, [2.5], seq=2)
    assert (await log.wait_completion(2)).completion is Completion.SUCCESS
    assert sat.component("cam").gain.value == 2.5
    await sat_runner.stop(sat)

    cam2 = Camera("cam", 0x40)
    sat2 = new_satellite([cam2])
    sat2.finalize()
    assert cam2.gain.value == 2.5
