"""Atomic stores, the state store's boot bookkeeping and the bounded record log."""

from pathlib import Path

import pytest

from flightsw.core.atomic_store import AtomicStore
from flightsw.core.records import RecordLog
from flightsw.core.state import StateStore


def test_atomic_store_alternates_slots_and_newest_valid_wins(tmp_path: Path) -> None:
    store = AtomicStore(tmp_path / "s")
    store.save({"v": 1})
    store.save({"v": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.a", "s.b"]
    again = AtomicStore(tmp_path / "s")
    assert again.load().value == {"v": 2}
    again.save({"v": 3})  # goes over the older slot (v=1)
    assert AtomicStore(tmp_path / "s").load().value == {"v": 3}


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "garbage"])
def test_corrupt_newest_slot_falls_back_to_last_good_copy(tmp_path: Path, damage: str) -> None:
    store = AtomicStore(tmp_path / "s")
    store.save({"v": 1})
    store.save({"v": 2})
    newest = tmp_path / "s.b"
    blob = bytearray(newest.read_bytes())
    if damage == "flip":
        blob[-1] ^= 0x40
    elif damage == "truncate":
        blob = blob[:-3]
    elif damage == "empty":
        blob = bytearray()
    else:
        blob = bytearray(b"\x00garbage" * 5)
    newest.write_bytes(bytes(blob))
    result = AtomicStore(tmp_path / "s").load()
    assert result.value == {"v": 1}
    assert result.problems and "s.b" in result.problems[0]


def test_schema_version_mismatch_is_not_trusted(tmp_path: Path) -> None:
    AtomicStore(tmp_path / "s", version=1).save({"v": 1})
    result = AtomicStore(tmp_path / "s", version=2).load()
    assert result.value is None and "schema version" in result.problems[0]


def test_boot_count_and_reset_reason(tmp_path: Path) -> None:
    s = StateStore(tmp_path / "state")
    s.load()
    s.boot()
    assert (s.boot_count, s.get("reset_reason")) == (1, "FIRST_BOOT")
    # no clean shutdown recorded: the next boot is UNEXPECTED (watchdog, power cut)
    s = StateStore(tmp_path / "state")
    s.load()
    s.boot()
    assert (s.boot_count, s.get("reset_reason")) == (2, "UNEXPECTED")
    s.set("shutdown_reason", "SIGTERM")
    s.save_blocking()
    s = StateStore(tmp_path / "state")
    s.load()
    s.boot()
    assert (s.boot_count, s.get("reset_reason")) == (3, "SIGTERM")


def test_state_lost_is_distinguished_from_first_boot(tmp_path: Path) -> None:
    (tmp_path / "state.a").write_bytes(b"rubbish")
    s = StateStore(tmp_path / "state")
    s.load()
    s.boot()
    assert s.get("reset_reason") == "STATE_LOST" and s.load_problems


def test_record_log_drops_torn_tail_and_keeps_the_rest(tmp_path: Path) -> None:
    log = RecordLog(tmp_path, segment_bytes=1 << 20, max_bytes=1 << 22)
    log.open()
    for i in range(10):
        log.append({"i": i})
    log.close()
    seg = log.segments()[-1]
    with open(seg, "ab") as fh:
        fh.write(b"\xf5\x5a\x00\x00\x00\x40partial")  # a record cut by a power loss
    log2 = RecordLog(tmp_path, segment_bytes=1 << 20, max_bytes=1 << 22)
    report = log2.open()
    assert report.truncated_bytes == 13 and report.records == 10
    log2.append({"i": 10})
    log2.close()
    assert [r["i"] for r in log2.read_all()] == list(range(11))


def test_record_log_corrupt_record_loses_only_itself(tmp_path: Path) -> None:
    log = RecordLog(tmp_path)
    log.open()
    for i in range(5):
        log.append({"i": i})
    log.close()
    seg = log.segments()[-1]
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0xFF
    seg.write_bytes(bytes(data))
    kept = [r["i"] for r in RecordLog(tmp_path).read_all()]
    assert len(kept) == 4 and kept == sorted(kept) and {0, 4} <= set(kept)  # readers resync past it


def test_record_log_is_bounded(tmp_path: Path) -> None:
    log = RecordLog(tmp_path, segment_bytes=4096, max_bytes=32 * 1024)
    log.open()
    for i in range(5000):
        log.append({"i": i, "pad": "z" * 50})
        assert log.total_bytes() <= 32 * 1024
    log.close()
    kept = [r["i"] for r in log.read_all()]
    assert kept[-1] == 4999 and kept == list(range(kept[0], 5000))
    assert log.segments_deleted > 0


def test_record_log_refuses_bad_limits(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        RecordLog(tmp_path, segment_bytes=10_000, max_bytes=5_000)


def test_record_log_size_figure_matches_the_disk(tmp_path: Path) -> None:
    log = RecordLog(tmp_path, segment_bytes=4096, max_bytes=32 * 1024)
    log.open()
    for i in range(3000):
        log.append({"i": i, "pad": "q" * (i % 70)})
        if i % 250 == 0:
            assert log.total_bytes() == sum(p.stat().st_size for p in log.segments())
    log.close()
    reopened = RecordLog(tmp_path, segment_bytes=4096, max_bytes=32 * 1024)
    assert reopened.total_bytes() == log.total_bytes()  # unopened: read from the directory
    reopened.open()  # may delete the oldest segment to restore the margin for the next one
    assert reopened.total_bytes() == sum(p.stat().st_size for p in reopened.segments())
    reopened.close()


def test_record_log_sync_on_a_worker_while_the_loop_appends_and_rotates(tmp_path: Path) -> None:
    """The flight appends on the loop thread and syncs on the storage worker: a rotation must not
    close the segment under a running sync, and nothing appended may be lost or torn."""
    import threading

    log = RecordLog(tmp_path, segment_bytes=600, max_bytes=10 << 20)
    log.open()
    errors: list[BaseException] = []
    stop = threading.Event()

    def syncer() -> None:
        while not stop.is_set():
            try:
                log.sync()
            except BaseException as exc:  # noqa: BLE001 - the test reports any failure
                errors.append(exc)
                return

    worker = threading.Thread(target=syncer)
    worker.start()
    try:
        for i in range(3000):
            log.append({"i": i, "pad": "x" * 40})
    finally:
        stop.set()
        worker.join()
    log.close()
    assert errors == []
    assert [r["i"] for r in log.read_all()] == list(range(3000))
    assert len(log.segments()) > 100  # it really rotated, many times, under the syncing thread


def test_record_log_without_syncs_keeps_few_descriptors_and_closes_them_all(tmp_path: Path) -> None:
    import os

    fds_before = len(os.listdir("/proc/self/fd"))
    log = RecordLog(tmp_path, segment_bytes=600, max_bytes=10 << 20)
    log.open()
    for i in range(2000):  # ~200 rotations and not one sync
        log.append({"i": i, "pad": "x" * 40})
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 1 + 8
    log.close()
    assert len(os.listdir("/proc/self/fd")) == fds_before
    assert sum(1 for _ in log.read_all()) == 2000


def test_saves_from_two_threads_at_once_never_fail_and_the_newest_value_loads(tmp_path: Path) -> None:
    """A shutdown's blocking save on the loop thread can meet a save still running on the storage
    worker (seen once as a FileNotFoundError from the rename at shutdown): writes to one store are
    serialised, every save succeeds, and loading gives the value with the highest sequence."""
    import threading

    store = AtomicStore(tmp_path / "s", fsync=False)
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(tag: int) -> None:
        start.wait()
        try:
            for i in range(300):
                store.save({"writer": tag, "i": i})
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    loaded = AtomicStore(tmp_path / "s").load()
    assert loaded.sequence == 600 and loaded.value["i"] == 299
    assert not list(tmp_path.glob("*.tmp"))
