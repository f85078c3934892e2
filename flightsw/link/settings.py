"""Link settings from the mission config: the ``[link]`` section and the radio device entry.

Why: callsigns, bit rate and frame size are mission facts (licence, transceiver model), so they
live in the config, validated once at start-up with errors that name the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flightsw.config import ConfigError, MissionConfig, section_number
from flightsw.link import ax25
from flightsw.link.packets import PRIMARY_HEADER_LEN

RADIO_KIND = "uhf_radio"


@dataclass(frozen=True)
class RadioDevice:
    """The transceiver entry of ``[[devices]]`` (kind ``uhf_radio``)."""

    name: str
    backend: str
    device: str
    baud: int
    kiss_port: int
    sim: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LinkSettings:
    callsign: ax25.Address
    ground: ax25.Address
    bit_rate: float = 9600.0
    max_frame: int = 256
    tx_delay: float = 0.05
    persistence: float = 0.25
    slot_time: float = 0.1
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


_LINK_KEYS = {"callsign", "ground_callsign", "bit_rate", "max_frame", "tx_delay", "persistence",
              "slot_time", "key_file", "generate_key", "beacon_channels", "resend_interval",
              "response_share", "counter_window", "check_source"}
_RADIO_KEYS = {"device", "baud", "kiss_port", "kiss_tcp_port", "frame_loss", "bit_error_rate",
               "propagation_delay", "seed", "queue_frames"}


def _number(raw: dict[str, Any], key: str, default: float, lo: float, hi: float, where: str) -> float:
    return float(section_number(raw, key, default, lo, hi, where))


def load_link_settings(config: MissionConfig) -> LinkSettings:
    raw = config.section("link")
    unknown = set(raw) - _LINK_KEYS
    if unknown:
        raise ConfigError(f"link.{sorted(unknown)[0]}: unknown key (allowed: {', '.join(sorted(_LINK_KEYS))})")
    try:
        callsign = ax25.Address.parse(str(raw.get("callsign", "")))
        ground = ax25.Address.parse(str(raw.get("ground_callsign", "")))
    except ax25.Ax25Error as exc:
        raise ConfigError(f"link.callsign/ground_callsign: {exc}") from None
    max_frame = int(_number(raw, "max_frame", 256, 64, 2048, "link"))
    if max_frame - ax25.HEADER_LEN < PRIMARY_HEADER_LEN + 64:
        raise ConfigError("link.max_frame: too small to carry a beacon")
    channels = raw.get("beacon_channels", {})
    if not isinstance(channels, dict) or not all(isinstance(v, str) for v in channels.values()):
        raise ConfigError("link.beacon_channels: expected a table of field = \"component.channel\"")
    key_file = raw.get("key_file", "uplink.keys")
    if not isinstance(key_file, str):
        raise ConfigError("link.key_file: expected a path string")
    key_path = Path(key_file)
    if not key_path.is_absolute() and key_path.parent == Path("."):
        key_path = config.data_dir / key_path  # a bare name lives in the data directory
    generate = raw.get("generate_key", False)
    if not isinstance(generate, bool):
        raise ConfigError("link.generate_key: expected true or false")
    check_source = raw.get("check_source", True)
    if not isinstance(check_source, bool):
        raise ConfigError("link.check_source: expected true or false")
    return LinkSettings(
        callsign=callsign,
        ground=ground,
        bit_rate=_number(raw, "bit_rate", 9600, 300, 1_000_000, "link"),
        max_frame=max_frame,
        tx_delay=_number(raw, "tx_delay", 0.05, 0, 2.55, "link"),
        persistence=_number(raw, "persistence", 0.25, 0, 1, "link"),
        slot_time=_number(raw, "slot_time", 0.1, 0, 2.55, "link"),
        key_file=key_path,
        generate_key=generate,
        beacon_channels=dict(channels),
        resend_interval=_number(raw, "resend_interval", 10.0, 0, 3600, "link"),
        response_share=_number(raw, "response_share", 0.5, 0.05, 1, "link"),
        counter_window=int(section_number(raw, "counter_window", 100_000, 1, 2**31, "link", integer=True)),
        check_source=check_source,
    )


def find_radio(config: MissionConfig) -> RadioDevice | None:
    for index, dev in enumerate(config.devices):
        if dev.kind != RADIO_KIND:
            continue
        where = f"devices[{index}]"
        unknown = set(dev.options) - _RADIO_KEYS
        if unknown:
            raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown key for {RADIO_KIND}")
        device = dev.options.get("device", "radio.tty" if dev.backend == "sim" else "")
        if not isinstance(device, str) or not device:
            raise ConfigError(f"{where}.device: the serial device path is required for a real radio")
        if dev.backend == "sim" and not Path(device).is_absolute():
            device = str(config.data_dir / device)
        baud = int(_number(dev.options, "baud", 115200, 1200, 4_000_000, where))
        kiss_port = int(_number(dev.options, "kiss_port", 0, 0, 15, where))
        sim: dict[str, Any] = {k: dev.options[k] for k in ("kiss_tcp_port", "frame_loss", "bit_error_rate",
                                            "propagation_delay", "seed", "queue_frames") if k in dev.options}
        return RadioDevice(dev.name, dev.backend, device, baud, kiss_port, sim)
    return None
