"""Logs journald can filter: `<N>` priority prefixes and FLIGHTSW_* event fields under systemd,
and no line per telemetry packet above DEBUG."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flightsw.logs import JournalFormatter, priority, stream_is_journal
from flightsw.testing import MINIMAL_TOML


def test_levels_map_to_syslog_priorities() -> None:
    assert [priority(lv) for lv in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO,
                                    logging.DEBUG, logging.INFO + 5)] == [2, 3, 4, 6, 7, 6]


def test_every_line_of_a_traceback_keeps_the_prefix_and_fields_follow_the_message() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("flightsw.x", logging.ERROR, __file__, 1, "failed %s", ("here",),
                                   sys.exc_info())
    record.FLIGHTSW_EVENT = "exec.service_failed"
    lines = JournalFormatter().format(record).split("\n")
    assert lines[0] == "<3>flightsw.x: failed here FLIGHTSW_EVENT=exec.service_failed"
    assert len(lines) > 3 and all(line.startswith("<3>") for line in lines)


def test_only_the_stream_systemd_names_is_taken_for_the_journal(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with open(tmp_path / "a", "w") as a, open(tmp_path / "b", "w") as b:
        st = os.fstat(a.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert stream_is_journal(a) and not stream_is_journal(b)
        monkeypatch.delenv("JOURNAL_STREAM")
        assert not stream_is_journal(a)


def run_flightsw(tmp_path: Path, journal: bool, *args: str) -> str:
    config = tmp_path / "mission.toml"
    config.write_text(MINIMAL_TOML.format(data_dir=tmp_path / "data")
                      + '[[telemetry.packets]]\nname = "hk"\nrate_hz = 10.0\nchannels = ["exec.uptime"]\n')
    log_path = tmp_path / "stderr.log"
    with open(log_path, "w") as err:
        env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
        if journal:
            st = os.fstat(err.fileno())
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        result = subprocess.run([sys.executable, "-m", "flightsw.cli", *args, "run", "--config", str(config),
                                 "--duration", "1.5"], stderr=err, stdout=subprocess.DEVNULL, env=env,
                                cwd=tmp_path, timeout=120, check=False)
    text = log_path.read_text()
    assert result.returncode == 0, text
    return text


def test_under_systemd_every_line_has_a_priority_and_events_carry_fields(tmp_path: Path) -> None:
    text = run_flightsw(tmp_path, True)
    lines = text.splitlines()
    assert lines and all(re.match(r"<[0-7]>", line) for line in lines), text
    booted = [line for line in lines if "FLIGHTSW_EVENT=exec.booted" in line]
    assert len(booted) == 1 and booted[0].startswith("<6>flightsw.events: "), text
    assert re.search(r"FLIGHTSW_EVENT_ID=0x[0-9a-f]{8} FLIGHTSW_SEVERITY=INFO FLIGHTSW_BOOT=1$", booted[0])
    # the mode manager has no battery channel in this config: a warning, at warning priority
    assert any(line.startswith("<4>flightsw.modes: no channel") for line in lines), text
    # 15 housekeeping packets went out at 10 Hz; none of them is a log line
    assert "housekeeping packet" not in text


def test_a_terminal_gets_plain_lines_and_packets_only_with_verbose(tmp_path: Path) -> None:
    text = run_flightsw(tmp_path, False)
    assert not re.search(r"^<\d>", text, re.M) and " INFO    flightsw.events: " in text
    assert "housekeeping packet" not in text
    (tmp_path / "verbose").mkdir()
    verbose = run_flightsw(tmp_path / "verbose", False, "-v")
    assert "DEBUG   flightsw.cli: housekeeping packet hk" in verbose
