"""The stored-telemetry wire layout and the playback selection rules (pure functions)."""

from __future__ import annotations

import msgpack
import pytest

from flightsw.link import stored
from flightsw.link.stored import KindFilter, RecordCode, Selection, SelectionError


def hk(pid: int, seconds: float, utc: float | None, values: list[float]) -> bytes:
    return msgpack.packb([pid, 1, seconds, utc, values], use_bin_type=True)


def event(seconds: float, utc: float | None) -> list[object]:
    return [0x10001, 2, 1, seconds, utc, 0, {"x": 1}]


def test_kind_range_and_time_select_records() -> None:
    sel = Selection(KindFilter.TELEMETRY, first=2, last=5, utc_from=1000.0, utc_to=2000.0)
    assert sel.pick(1, "tlm", hk(7, 1.0, 1500.0, [1.0])) is None  # before `first`
    assert sel.pick(2, "tlm", hk(7, 1.0, 1500.0, [1.0])) == (2, RecordCode.TELEMETRY, hk(7, 1.0, 1500.0, [1.0]))
    assert sel.pick(3, "tlm", hk(7, 2.0, 2500.0, [1.0])) is None  # after utc_to
    assert sel.pick(4, "tlm", hk(7, 3.0, None, [1.0])) is None  # no UTC: not selectable by time
    assert sel.pick(5, "evt", event(4.0, 1500.0)) is None  # telemetry only
    everything = Selection()
    assert everything.pick(9, "evt", event(4.0, None)) == (9, RecordCode.EVENT, event(4.0, None))
    assert everything.pick(10, "pad", b"") is None  # not a kind playback knows


def test_every_nth_counts_per_packet_and_a_channel_subset_keeps_named_channels() -> None:
    subset = stored.channel_subset("a.x, b.z", [(7, ["a.x", "a.y"]), (8, ["b.z"]), (9, ["c.w"])])
    assert subset == {7: [0], 8: [0]}
    sel = Selection(every_nth=3, channels=subset)
    picked = [sel.pick(n, "tlm", hk(7 if n % 2 else 8, float(n), None, [n, -n])) for n in range(12)]
    kept = [p for p in picked if p is not None]
    # packet 7 (odd n): samples 1, 7 kept; packet 8 (even n): samples 0, 6 kept
    assert [p[0] for p in kept] == [0, 1, 6, 7]
    assert kept[1] == (1, RecordCode.TELEMETRY_SUBSET, [7, 1, 1.0, None, 0b1, [1]])
    assert sel.pick(20, "tlm", hk(9, 20.0, None, [0])) is None  # none of its channels requested
    with pytest.raises(SelectionError, match="no housekeeping packet carries q.q"):
        stored.channel_subset("a.x,q.q", [(7, ["a.x"])])


def test_ranges_parse_merge_format_and_select() -> None:
    assert stored.parse_ranges("31-40, 10-20,25,21-22") == [(10, 22), (25, 25), (31, 40)]
    for bad in ("", "5-x", "9-3", "-4"):
        with pytest.raises(SelectionError):
            stored.parse_ranges(bad)
    parts = stored.format_ranges([(i * 10, i * 10 + 3) for i in range(100)], 40)
    assert all(len(p) <= 40 for p in parts)
    assert stored.parse_ranges(",".join(parts)) == [(i * 10, i * 10 + 3) for i in range(100)]
    sel = Selection(first=10, last=40, ranges=[(10, 22), (25, 25), (31, 40)])
    picked = [n for n in range(0, 50) if sel.pick(n, "evt", event(1.0, None)) is not None]
    assert picked == [*range(10, 23), 25, *range(31, 41)]


def test_packets_stay_within_the_frame_and_round_trip() -> None:
    records = [(n, int(RecordCode.TELEMETRY), hk(7, float(n), 1.0e9 + n, [n * 0.5] * 9)) for n in range(40)]
    packets = list(stored.pack(123, records, max_user=224))
    assert len(packets) > 1 and all(len(p) <= 224 for p in packets)
    back = [r for p in packets for r in stored.unpack(p)[1]]
    assert [(n, int(c), v) for n, c, v in back] == records
    assert {stored.unpack(p)[0] for p in packets} == {123}
    many = [(n, int(RecordCode.EVENT), [n]) for n in range(40)]  # more than 15 records in one packet
    assert [r[0] for p in stored.pack(1, many, 400) for r in stored.unpack(p)[1]] == list(range(40))
    with pytest.raises(ValueError, match="malformed"):
        stored.unpack(b"\x01\x02")
