"""Same scenario, same seed: the same run, frame by frame (issue 6).

Counts alone hid the differences: a frame the flight side wrote at the run's last instant was
counted or not depending on the kernel's pty timing, a file downlink put the flight's temporary
directory and process id (and the uplink a random key) into frames whose airtime depends on every
byte, and a record-log rotation raced a worker thread now and then. The run below goes through
the start of a pass with a command uplinked and an image downlinked by CFDP class 2.
"""

from __future__ import annotations

from flightsw.config import load
from flightsw.link.component import LinkComponent
from flightsw.sim_runner import SimulationRun, first_difference

from .conftest import SIM_CONFIG, pass_scenario

# A minute into a pass over Almaty: the capture goes up with the first beacon (t+0.25 s) and the
# thumbnail is down whole at t+15 s (Metadata, file data, EOF down; ACK and Finished up).
CAPTURE_NOW = """
[[commands]]
at = "0s"
command = "imaging.CAPTURE_NOW"
"""


def test_two_runs_with_the_same_seed_agree_on_every_frame_and_every_flight_frame_reaches_the_radio() -> None:
    config = load(SIM_CONFIG)
    scenario = pass_scenario(duration="40s", start="2026-06-01T05:17:30Z", extra=CAPTURE_NOW)
    runs = []
    for _ in range(2):
        run = SimulationRun(config, scenario)
        runs.append((run, run.run()))
    (_, first), (_, second) = runs
    assert first.frames_digest and first_difference(first, second) is None
    assert first.metrics["files_downlinked"] == 1 and first.metrics["frames_up"] >= 3  # the paths in play
    for run, _ in runs:
        # what the flight side's radio sent, the transceiver took in: up to the last instant
        assert run.sat is not None and run.transceiver is not None
        link = run.sat.component("link")
        assert isinstance(link, LinkComponent)
        assert link.radio.frames_sent == run.transceiver.downlink.stats.frames_in > 0
