"""The radio entry of [[devices]] reaches the link with the schema's types and defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from flightsw.config import RadioOptions
from flightsw.link.settings import find_radio
from flightsw.testing import mission_config
from sim.transceiver import ChannelModel

RADIO = """
[[devices]]
name = "radio"
kind = "uhf_radio"
backend = "sim"
frame_loss = 0.25
seed = 7

[link]
callsign = "UN0SAT-1"
ground_callsign = "UN0GND"
"""


def test_the_sim_radio_options_come_typed_from_the_schema(tmp_path: Path) -> None:
    radio = find_radio(mission_config(tmp_path, RADIO))
    assert radio is not None and radio.device == str(tmp_path / "radio.tty")
    opts = radio.options
    assert isinstance(opts, RadioOptions) and (opts.frame_loss, opts.seed) == (0.25, 7)
    # keys left out take the schema's defaults, which are the simulated channel's own
    channel = {f.name: f.default for f in dataclasses.fields(ChannelModel)}
    for key in ("propagation_delay", "bit_error_rate", "queue_frames"):
        assert getattr(opts, key) == channel[key], key
