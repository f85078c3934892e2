"""Same scenario, same seed: the same run, frame by frame (issue 6).

Counts alone hid the differences: a frame the flight side wrote at the run's last instant was
counted or not depending on the kernel's pty timing, and a file downlink put the flight's
temporary directory (and the uplink a random key) into frames whose airtime depends on every
byte. The runs below go through a pass with a command uplinked and an image downlinked by CFDP.
"""

from __future__ import annotations

from flightsw.config import load
from flightsw.link.component import LinkComponent
from flightsw.sim_runner import SimulationRun, first_difference

from .conftest import SIM_CONFIG, pass_scenario

# A capture at once, then the pass: the thumbnail comes down by CFDP class 2 (Metadata, file
# data, EOF; the ground's ACK and Finished go up) within the first four minutes.
CAPTURE = """
[[commands]]
at = "0s"
command = "modes.SET_MODE"
args = ["NOMINAL"]

[[commands]]
at = "0s"
command = "imaging.CAPTURE_NOW"
"""


def test_two_runs_with_the_same_seed_agree_on_every_frame_and_every_flight_frame_reaches_the_radio() -> None:
    runs = []
    for _ in range(2):
        run = SimulationRun(load(SIM_CONFIG), pass_scenario(duration="4m", extra=CAPTURE))
        runs.append((run, run.run()))
    (first_run, first), (second_run, second) = runs
    assert first.metrics["files_downlinked"] == 1 and first.metrics["frames_up"] >= 2  # the paths in play
    assert first.frames_digest and first_difference(first, second) is None
    for run in (first_run, second_run):
        # what the flight side's radio sent, the transceiver took in: up to the last instant
        assert run.sat is not None and run.transceiver is not None
        link = run.sat.component("link")
        assert isinstance(link, LinkComponent)
        assert link.radio.frames_sent == run.transceiver.downlink.stats.frames_in > 0
