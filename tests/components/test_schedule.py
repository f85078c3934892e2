"""Stored-command rules on their own: late policies, execution order, bounds, restore, and the
sequence file format. tests/components/test_sequencer.py checks them through a real satellite."""

from __future__ import annotations

from typing import Any

import pytest

from flightsw.components.schedule import (
    Disposition,
    LatePolicy,
    Schedule,
    ScheduleFull,
    StoredCommand,
    decide,
)
from flightsw.components.seqfile import SequenceError, parse_offset, parse_sequence

KNOWN = {"imaging.CAPTURE_NOW": 0, "imaging.SET_CAMERA": 5, "test.MARK": 1}


def check(command: str, args: list[Any]) -> None:
    """Stands in for the dictionary check (the satellite uses the dispatcher's)."""
    if command not in KNOWN:
        raise ValueError(f"no command {command!r}")
    if len(args) != KNOWN[command]:
        raise ValueError(f"{len(args)} argument(s), expected {KNOWN[command]}")


def item(due: float, policy: LatePolicy, late_s: float = 0.0, id: int = 1) -> StoredCommand:  # noqa: A002
    return StoredCommand(id, due, "test.MARK", (1,), policy, late_s)


@pytest.mark.parametrize(("policy", "late_s", "now", "expected"), [
    (LatePolicy.SKIP, 0.0, 99.0, Disposition.WAIT),
    (LatePolicy.SKIP, 0.0, 100.0, Disposition.RUN),
    (LatePolicy.SKIP, 0.0, 105.0, Disposition.RUN),  # within the 5 s grace: on time
    (LatePolicy.SKIP, 0.0, 105.5, Disposition.SKIP_LATE),
    (LatePolicy.RUN_LATE, 0.0, 100_000.0, Disposition.RUN_LATE),
    (LatePolicy.SKIP_IF_LATER_THAN, 60.0, 160.0, Disposition.RUN_LATE),
    (LatePolicy.SKIP_IF_LATER_THAN, 60.0, 160.5, Disposition.SKIP_LATE),
    (LatePolicy.RUN_LATE, 0.0, None, Disposition.WAIT),  # time unknown: never run blind
])
def test_late_policy_decides_what_was_due_while_off(policy: LatePolicy, late_s: float,
                                                    now: float | None, expected: Disposition) -> None:
    assert decide(item(100.0, policy, late_s), now, grace_s=5.0) is expected


def test_order_is_due_time_then_insertion_and_ids_are_never_reused() -> None:
    schedule = Schedule(max_items=10)
    a, b, c = schedule.add_all([item(200.0, LatePolicy.SKIP), item(100.0, LatePolicy.SKIP),
                                item(200.0, LatePolicy.SKIP)])
    assert [i.id for i in schedule] == [b.id, a.id, c.id]
    schedule.remove(c.id)
    (d,) = schedule.add_all([item(200.0, LatePolicy.SKIP)])
    assert d.id == 4  # insertion numbers only grow: a deleted id never comes back
    restored, problems = Schedule.from_state(schedule.to_state(), 10)
    assert problems == [] and [i.id for i in restored] == [b.id, a.id, d.id]
    (e,) = restored.add_all([item(50.0, LatePolicy.SKIP)])
    assert e.id == 5 and restored.first() == e


def test_storing_beyond_the_maximum_is_refused_whole() -> None:
    schedule = Schedule(max_items=3)
    schedule.add_all([item(1.0, LatePolicy.SKIP)])
    with pytest.raises(ScheduleFull, match="3 more stored command.*maximum of 3"):
        schedule.add_all([item(t, LatePolicy.SKIP) for t in (2.0, 3.0, 4.0)])
    assert len(schedule) == 1  # nothing of the refused batch was kept
    schedule.add_all([item(t, LatePolicy.SKIP) for t in (2.0, 3.0)])
    assert len(schedule) == 3


def test_a_damaged_entry_is_dropped_and_named_the_rest_restored() -> None:
    schedule = Schedule(max_items=5)
    schedule.add_all([item(1.0, LatePolicy.SKIP), item(2.0, LatePolicy.RUN_LATE)])
    state = schedule.to_state()
    state["items"][0]["policy"] = "SOMETIMES"
    restored, problems = Schedule.from_state(state, 5)
    assert [i.due for i in restored] == [2.0]
    assert problems == ["stored command [0] dropped: missing or unknown 'SOMETIMES'"]
    assert restored.next_id == 3
    assert Schedule.from_state("garbage", 5)[1] == ["stored commands: unreadable, started empty"]


SEQUENCE = """
# a pass over Almaty
sequence almaty_1
late SKIP_IF_LATER_THAN:90
+0      imaging.SET_CAMERA [2000, 1.0, 160, 120, 85]
+10m    imaging.CAPTURE_NOW late=RUN_LATE   # the one that matters
+10m30s imaging.CAPTURE_NOW
2026-12-06T05:12:30Z imaging.CAPTURE_NOW late=SKIP
"""


def test_a_sequence_file_parses_into_ordered_drafts() -> None:
    sequence = parse_sequence(SEQUENCE, "file", check)
    assert sequence.name == "almaty_1"
    drafts = sequence.drafts(start=1000.0, source="almaty_1.seq")
    assert [(d.due, d.command, d.policy, d.late_s) for d in drafts] == [
        (1000.0, "imaging.SET_CAMERA", LatePolicy.SKIP_IF_LATER_THAN, 90.0),
        (1600.0, "imaging.CAPTURE_NOW", LatePolicy.RUN_LATE, 0.0),
        (1630.0, "imaging.CAPTURE_NOW", LatePolicy.SKIP_IF_LATER_THAN, 90.0),
        (1796533950.0, "imaging.CAPTURE_NOW", LatePolicy.SKIP, 0.0),  # absolute: start ignored
    ]
    assert drafts[0].args == (2000, 1.0, 160, 120, 85) and drafts[0].sequence == "almaty_1"
    assert parse_offset("+1h2m3.5s") == 3723.5 and parse_offset("+90") == 90.0


@pytest.mark.parametrize(("text", "error"), [
    ("+0 imaging.MELT", "line 1: imaging.MELT: no command 'imaging.MELT'"),
    ("+0 imaging.CAPTURE_NOW\n+1 imaging.SET_CAMERA [1]", "line 2: imaging.SET_CAMERA: 1 argument(s), expected 5"),
    ("+0 imaging.CAPTURE_NOW\nsoon imaging.CAPTURE_NOW", "line 2: bad time 'soon'"),
    ("+5x imaging.CAPTURE_NOW", "line 1: bad offset '+5x'"),
    ("+0 imaging.SET_CAMERA [2000, 1.0", "line 1: arguments are not a JSON array"),
    ("+0 imaging.SET_CAMERA {\"a\": 1}", "line 1: arguments must be a JSON array"),
    ("\n\n+0 imaging.CAPTURE_NOW late=SOMETIMES", "line 3: unknown late policy 'SOMETIMES'"),
    ("+0 imaging.CAPTURE_NOW late=SKIP_IF_LATER_THAN", "line 1: SKIP_IF_LATER_THAN needs a limit"),
    ("+0 imaging.CAPTURE_NOW\nsequence late_name", "line 2: 'sequence' must come before the steps"),
    ("sequence ../etc\n+0 imaging.CAPTURE_NOW", "line 1: sequence name '../etc'"),
    ("# only a comment\n", "no steps"),
    ("+0", "line 1: missing command after the time"),
])
def test_a_bad_line_refuses_the_whole_file_naming_the_line(text: str, error: str) -> None:
    with pytest.raises(SequenceError) as caught:
        parse_sequence(text, "file", check)
    assert str(caught.value).startswith(error)
    assert "\n" not in str(caught.value)


def test_relative_steps_need_a_start() -> None:
    sequence = parse_sequence("+0 test.MARK [1]", "s", check)
    with pytest.raises(SequenceError, match="relative steps need a start time"):
        sequence.drafts(None, "s")
    absolute = parse_sequence("2026-01-01T00:00:00Z test.MARK [1]", "s", check)
    assert absolute.drafts(None, "s")[0].due == 1767225600.0
