"""Power-cut safety: SIGKILL a process that is writing state, parameters and records at 200 random
instants; after every kill all stores load, holding the old or the new value, and the record log
loses at most the record being written."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flightsw.core.atomic_store import AtomicStore
from flightsw.core.records import RecordLog
from flightsw.core.state import SCHEMA_VERSION, StateStore

WRITER = Path(__file__).with_name("crash_writer.py")
ROOT = Path(__file__).resolve().parents[2]


def completed(lines: list[str], tag: str) -> int:
    done = [int(line.split()[1]) for line in lines if line.startswith(tag + " ")]
    return max(done, default=0)


@pytest.mark.slow
@pytest.mark.timeout(180)  # 200 real processes
def test_stores_survive_200_kills(tmp_path: Path) -> None:
    rng = random.Random(20261121)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    kills = 0
    truncations = 0
    prev_state = prev_records = 0
    while kills < 200:
        proc = subprocess.Popen([sys.executable, str(WRITER), str(tmp_path)], stdout=subprocess.PIPE,
                                text=True, env=env)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("OPEN"), first
        truncations += int(first.split()[1]) > 0
        time.sleep(rng.uniform(0.0, 0.03))
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read().splitlines()
        proc.wait()
        kills += 1

        state = StateStore(tmp_path / "state")
        result = state.load()
        assert result.value is not None, result.problems
        s_done = completed(rest, "S")
        counter = state.get("counter", 0)
        # the last completed write or the one in flight, never older, never garbage
        assert counter in (max(s_done, prev_state), max(s_done, prev_state) + 1), (counter, s_done)
        assert state.get("blob") == "x" * (counter % 500)
        prev_state = counter

        p_done = completed(rest, "P")
        pstore = AtomicStore(tmp_path / "params", SCHEMA_VERSION)
        pvalue = (pstore.load().value or {}).get("ctr.value", 0)
        assert p_done <= pvalue <= counter, (pvalue, p_done)

        log = RecordLog(tmp_path / "records", segment_bytes=4096, max_bytes=64 * 1024)
        ks = [r["k"] for r in log.read_all()]
        r_done = max(completed(rest, "R"), prev_records)
        if not ks:
            assert r_done == 0
            continue
        assert ks == list(range(ks[0], ks[-1] + 1))  # contiguous, in order
        assert ks[-1] in (r_done, r_done + 1)  # lost at most the record being written
        assert all(r["pad"] == "y" * (r["k"] % 300) for r in log.read_all())
        assert log.total_bytes() <= 64 * 1024
        prev_records = ks[-1]
    assert prev_state > 200  # the writer made real progress across the kills
