"""Link settings from the mission config: the ``[link]`` section and the radio device entry.

Why: callsigns, bit rate and frame size are mission facts (licence, transceiver model), so they
live in the config, validated once at start-up with errors that name the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from flightsw.config import RADIO_KIND, ConfigError, MissionConfig, RadioOptions
from flightsw.link import ax25

__all__ = ["RADIO_KIND", "LinkSettings", "RadioDevice", "find_radio", "load_link_settings"]


@dataclass(frozen=True)
class RadioDevice:
    """The transceiver entry of ``[[devices]]`` (kind ``uhf_radio``)."""

    name: str
    backend: str
    device: str
    baud: int
    kiss_port: int
    options: RadioOptions  # the entry's options from the schema, defaults filled in (the sim channel's too)


@dataclass(frozen=True)
class LinkSettings:
    callsign: ax25.Address
    ground: ax25.Address
    bit_rate: float = 9600.0
    max_frame: int = 256
    max_file_frame: int = 0  # 0: max_frame
    burst_s: float = 0.0  # airtime handed to the TNC per key-up (0: one frame)
    tx_delay: float = 0.05
    persistence: float = 0.25
    slot_time: float = 0.1
    tx_tail: float | None = None  # None: leave the TNC's own value
    full_duplex: bool | None = None
    key_file: Path = Path("uplink.keys")
    generate_key: bool = False
    beacon_channels: dict[str, str] = field(default_factory=dict)
    resend_interval: float = 10.0  # s between two re-sends of one command's cached responses
    response_share: float = 0.5  # most of the downlink airtime verdicts take while others wait
    counter_window: int = 100_000  # largest accepted jump of the uplink counter
    check_source: bool = True  # uplink frames must come from ground_callsign (callsign and SSID)

    @property
    def max_info(self) -> int:
        return self.max_frame - ax25.HEADER_LEN

    @property
    def largest_frame(self) -> int:
        """The largest frame either way: file frames may exceed ``max_frame``."""
        return max(self.max_frame, self.max_file_frame)

    @property
    def max_file_info(self) -> int:
        """Information field of a frame carrying file PDUs only."""
        return self.largest_frame - ax25.HEADER_LEN


def load_link_settings(config: MissionConfig) -> LinkSettings:
    """The ``[link]`` table (validated with the config, callsigns included when a radio exists)."""
    raw = config.link
    try:
        callsign = ax25.Address.parse(raw.callsign)
        ground = ax25.Address.parse(raw.ground_callsign)
    except ax25.Ax25Error as exc:
        raise ConfigError(f"link.callsign/ground_callsign: {exc}") from None
    key_path = Path(raw.key_file)
    if not key_path.is_absolute() and key_path.parent == Path("."):
        key_path = config.data_dir / key_path  # a bare name lives in the data directory
    return LinkSettings(
        callsign=callsign,
        ground=ground,
        bit_rate=raw.bit_rate,
        max_frame=raw.max_frame,
        max_file_frame=raw.max_file_frame,
        burst_s=raw.burst_s,
        tx_delay=raw.tx_delay,
        persistence=raw.persistence,
        slot_time=raw.slot_time,
        tx_tail=None if raw.tx_tail == "tnc" else float(raw.tx_tail),
        full_duplex=None if raw.full_duplex == "tnc" else bool(raw.full_duplex),
        key_file=key_path,
        generate_key=raw.generate_key,
        beacon_channels=dict(raw.beacon_channels),
        resend_interval=raw.resend_interval,
        response_share=raw.response_share,
        counter_window=raw.counter_window,
        check_source=raw.check_source,
    )


def find_radio(config: MissionConfig) -> RadioDevice | None:
    """The first ``uhf_radio`` device (its options validated with the config), or None."""
    for dev in config.devices_of(RADIO_KIND):
        opts = dev.settings()
        assert isinstance(opts, RadioOptions)
        device = opts.device if isinstance(opts.device, str) else "radio.tty"
        if dev.backend == "sim" and not Path(device).is_absolute():
            device = str(config.data_dir / device)
        return RadioDevice(dev.name, dev.backend, device, opts.baud, opts.kiss_port, opts)
    return None
