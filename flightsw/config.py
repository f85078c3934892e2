"""Mission configuration: one schema for every section, validated in full when the file is loaded.

Why one schema: a typo in a flight config must not silently fall back to a default, and a
mistake must be found before the flight software counts a boot or writes anything. Every table
the software reads is declared here once as a msgspec ``Struct`` (``forbid_unknown_fields``), the
``[[devices]]`` entries by their ``kind``; a table that nothing reads is refused. Why msgspec: its
C decoder adds a few milliseconds of import on top of what the flight software already imports,
where pydantic's model building adds tens (measured; a Pi Zero starts the service on every boot).

The first problem found is reported as one line naming the key path, e.g.
``devices[2].address: expected an integer, got 'x40'``.
"""

from __future__ import annotations

import inspect
import math
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType, field

from flightsw.components.fdir import WatchPoint, WatchTable, validate_watch_table
from flightsw.core.enums import OPERATING_MODES


class ConfigError(ValueError):
    """An invalid configuration; the message names the file, the key and the problem."""


def _range(lo: float, hi: float) -> Meta:
    return Meta(ge=lo, le=hi)


class Section(Struct, forbid_unknown_fields=True, kw_only=True):
    """A config table: unknown keys are errors. ``__post_init__`` errors are ``"key: problem"``."""


# --- core sections --------------------------------------------------------------------------------


class MissionSection(Section):
    name: str = "FSW-1"
    spacecraft_id: Annotated[int, _range(0, 1023)] = 42


class StorageSection(Section):
    data_dir: str = "var/flightsw"
    records_max_bytes: Annotated[int, _range(64 * 1024, 1 << 34)] = 64 << 20
    records_segment_bytes: Annotated[int, _range(4096, 1 << 30)] = 1 << 20
    records_sync_seconds: Annotated[float, _range(0.1, 3600.0)] = 10.0
    fsync: bool = True

    def __post_init__(self) -> None:
        if self.records_segment_bytes > self.records_max_bytes:
            raise ValueError("records_segment_bytes: larger than records_max_bytes")


RATE_GROUPS = ("fast", "slow", "background")


class SchedulerSection(Section):
    rate_groups: dict[str, float] = field(default_factory=lambda: {"fast": 10.0, "slow": 1.0, "background": 0.1})

    def __post_init__(self) -> None:
        for name, hz in self.rate_groups.items():
            if not 0.0001 <= hz <= 100.0:
                raise ValueError(f"rate_groups.{name}: {hz} Hz outside [0.0001, 100]")
        for required in RATE_GROUPS:
            if required not in self.rate_groups:
                raise ValueError(f"rate_groups: missing the {required!r} group")


class WatchdogSection(Section):
    backend: Literal["none", "sim", "systemd", "device", "systemd+device"] = "none"
    device: str = "/dev/watchdog"
    check_period: Annotated[float, _range(0.1, 60.0)] = 1.0
    #: a critical service failed (or its health ping failing) this long stops the watchdog pets
    critical_grace_s: Annotated[float, _range(1.0, 3600.0)] = 30.0


class TimeSection(Section):
    """Spacecraft time (flightsw.core.clock, flightsw.core.timekeeping, the ``gps`` device)."""

    utc_source: Literal["ground", "system"] = "ground"
    #: seconds between two persisted time checkpoints (MET and UTC carried over a reset)
    checkpoint_s: Annotated[float, _range(1.0, 3600.0)] = 60.0
    #: a GPS fix steps UTC only when it differs from spacecraft UTC by more than this [s]
    gps_step_threshold_s: Annotated[float, _range(0.0, 3600.0)] = 0.5
    #: a GPS fix that jumps more than this from a confirmed UTC is refused (0: never refused)
    gps_max_step_s: Annotated[float, _range(0.0, 1e9)] = 0.0


NAME = r"[A-Za-z_][A-Za-z0-9_]*"


class PacketSection(Section):
    name: Annotated[str, Meta(pattern=f"^{NAME}$")]
    rate_hz: Annotated[float, _range(0.0001, 10.0)]
    channels: list[str] = []

    def __post_init__(self) -> None:
        for i, channel in enumerate(self.channels):
            if channel.count(".") != 1:
                raise ValueError(f"channels[{i}]: expected \"component.channel\", got {channel!r}")


class TelemetrySection(Section):
    packets: list[PacketSection] = []


# --- subsystem sections ---------------------------------------------------------------------------


class HousekeepingSection(Section):
    """I2C and GPIO access settings of the hardware layer (flightsw.components.hardware)."""

    gpio_chip: str = "/dev/gpiochip0"
    i2c_timeout_s: Annotated[float, _range(0.01, 10.0)] = 0.5
    i2c_retries: Annotated[int, _range(0, 10)] = 3
    #: bus number (as a string key) -> GPIO line of that bus's SCL, clocked to free a stuck bus
    scl_recovery_gpio: dict[str, Annotated[int, _range(0, 1023)]] = {}

    def __post_init__(self) -> None:
        for bus in self.scl_recovery_gpio:
            if not bus.isdigit():
                raise ValueError(f"scl_recovery_gpio.{bus}: expected an I2C bus number as the key")


class LinkSection(Section):
    """The radio link (flightsw.link.settings); callsigns are checked when a radio is configured."""

    callsign: str = ""
    ground_callsign: str = ""
    bit_rate: Annotated[float, _range(300, 1_000_000)] = 9600.0
    max_frame: Annotated[int, _range(64, 2048)] = 256
    #: largest frame carrying file PDUs only (0: max_frame); direwolf's KISS takes 2048, multimon-ng 510
    max_file_frame: Annotated[int, _range(0, 2048)] = 0
    #: airtime (s) of frames handed to the TNC at once, keyed up once (0: a key-up per frame)
    burst_s: Annotated[float, _range(0, 10)] = 0.0
    tx_delay: Annotated[float, _range(0, 2.55)] = 0.05
    persistence: Annotated[float, _range(0, 1)] = 0.25
    slot_time: Annotated[float, _range(0, 2.55)] = 0.1
    #: TNC TX tail (s) sent at every (re)open of the radio, or "tnc": leave the TNC's own value
    tx_tail: Annotated[float, _range(0, 2.55)] | Literal["tnc"] = "tnc"
    #: KISS full duplex sent to the TNC (true/false), or "tnc": leave the TNC's own setting
    full_duplex: bool | Literal["tnc"] = "tnc"
    key_file: str = "uplink.keys"
    generate_key: bool = False
    #: a cached verdict/completion is re-sent at most once per counter in this many seconds
    resend_interval: Annotated[float, _range(0, 3600)] = 10.0
    #: largest share of the airtime verdicts may take while other traffic waits
    response_share: Annotated[float, _range(0.05, 1)] = 0.5
    #: largest accepted jump of the uplink counter above the last accepted one
    counter_window: Annotated[int, _range(1, 2**31)] = 100_000
    #: compare the AX.25 source address with ground_callsign
    check_source: bool = True
    #: beacon field = "component.channel"
    beacon_channels: dict[str, str] = {}

    def __post_init__(self) -> None:
        from flightsw.link.beacon import FIELDS

        names = [f.name for f in FIELDS]
        for name, channel in self.beacon_channels.items():
            if name not in names:
                raise ValueError(f"beacon_channels.{name}: no such beacon field (fields: {', '.join(names)})")
            if channel.count(".") != 1:
                raise ValueError(f"beacon_channels.{name}: expected \"component.channel\", got {channel!r}")


class ContactStationSection(Section):
    """A ground station the satellite predicts its passes over."""

    name: Annotated[str, Meta(pattern=f"^{NAME}$")]
    lat_deg: Annotated[float, _range(-90.0, 90.0)]
    lon_deg: Annotated[float, _range(-180.0, 180.0)]
    alt_m: Annotated[float, _range(-500.0, 9000.0)] = 0.0
    min_elevation_deg: Annotated[float, _range(0.0, 60.0)] = 5.0


class ContactSection(Section):
    """Contact-aware downlink (flightsw.link.contact, docs/store-and-forward.md): onboard pass
    prediction from the uplinked TLE (contact.SET_TLE); needs the ``payload`` extra (sgp4)."""

    stations: list[ContactStationSection] = []
    #: out of a predicted pass: "beacon" (beacons at link.beacon_period only) or "silent"
    out_of_contact: Literal["beacon", "silent"] = "beacon"
    #: housekeeping packets are emitted (and recorded) every Nth cycle out of a pass
    housekeeping_divisor: Annotated[int, _range(1, 3600)] = 12
    #: a pass is taken to start this long before the predicted AOS and end this long after LOS
    margin_s: Annotated[float, _range(0.0, 1800.0)] = 30.0
    #: passes are predicted this far ahead ...
    horizon_h: Annotated[float, _range(1.0, 168.0)] = 24.0
    #: ... and again this often (in an executor, never per cycle)
    replan_h: Annotated[float, _range(0.1, 168.0)] = 6.0
    #: each pass starts a playback of everything recorded since the last one
    auto_playback: bool = True
    #: the transmitter's draw above receive, for the energy-saved figure
    tx_extra_power_w: Annotated[float, _range(0.0, 100.0)] = 2.95
    #: a TLE loaded before launch (the launch provider's); an uplinked one replaces it
    tle: list[str] = []

    def __post_init__(self) -> None:
        if self.tle and len(self.tle) != 2:
            raise ValueError(f"tle: expected the two TLE lines, got {len(self.tle)} strings")
        names = [s.name for s in self.stations]
        if len(set(names)) != len(names):
            raise ValueError(f"stations: duplicate station names in {names}")
        if self.replan_h > self.horizon_h:
            raise ValueError("replan_h: must not exceed horizon_h (passes would run out between plans)")


class FileTransferSection(Section):
    """CFDP entity settings (flightsw.filetransfer); unset keys take EntityConfig's defaults."""

    local_id: Annotated[int, Meta(ge=0)]
    remote_id: Annotated[int, Meta(ge=0)]
    work_dir: str = "cfdp"
    #: width of the entity ids (1, 2 or 4 octets) in the PDUs this entity originates
    entity_id_bytes: int | UnsetType = UNSET
    #: width of its transaction sequence numbers (1, 2 or 4 octets)
    seq_num_bytes: int | UnsetType = UNSET
    #: file checksum of what the satellite sends: modular (default), crc32, crc32c, null
    send_checksum: str | UnsetType = UNSET
    #: file checksum the project's ground uses for uplinks (the satellite verifies whatever the
    #: sender's Metadata names)
    remote_send_checksum: str | UnsetType = UNSET
    max_pdu_len: int | UnsetType = UNSET
    ack_interval_s: float | UnsetType = UNSET
    ack_limit: int | UnsetType = UNSET
    nak_interval_s: float | UnsetType = UNSET
    nak_limit: int | UnsetType = UNSET
    inactivity_s: float | UnsetType = UNSET
    retry_backoff_s: float | UnsetType = UNSET
    tick_s: float | UnsetType = UNSET
    idle_tick_s: float | UnsetType = UNSET
    burst: int | UnsetType = UNSET
    max_incoming: int | UnsetType = UNSET
    inbound_queue: int | UnsetType = UNSET
    journal_flush_bytes: int | UnsetType = UNSET
    max_partial: int | UnsetType = UNSET

    def protocol_options(self) -> dict[str, Any]:
        """The keys set in the file, for EntityConfig (which owns the defaults)."""
        return {f: getattr(self, f) for f in self.__struct_fields__
                if f not in ("local_id", "remote_id", "work_dir") and getattr(self, f) is not UNSET}

    def __post_init__(self) -> None:
        from flightsw.filetransfer.entity_config import EntityConfig

        try:  # the protocol's own consistency rules, checked with the file
            EntityConfig(local_id=self.local_id, remote_id=self.remote_id, work_dir=Path(self.work_dir),
                         **self.protocol_options())
        except ValueError as exc:
            raise ValueError(f"{_leading_key(str(exc), self.__struct_fields__)}: {exc}") from None


class FilesSection(Section):
    """File management by command (flightsw.components.file_manager): roots by name, relative to data_dir."""

    base_id: Annotated[int, _range(1, 0xFFFF)] = 0x00A0
    #: root name -> directory (relative to storage.data_dir); "quarantine" is added with [filetransfer]
    roots: dict[str, str] = field(default_factory=lambda: {
        "configs": "uploads/configs", "sequences": "uploads/sequences", "tables": "uploads/tables",
        "software": "uploads/software", "images": "images", "records": "records"})
    #: the roots MOVE may put a verified upload in
    destinations: list[str] = field(default_factory=lambda: ["configs", "sequences", "tables", "software"])
    #: entries a listing reports (sorted by name; the total is always reported)
    max_listing: Annotated[int, _range(1, 1000)] = 64
    #: entries a listing sends as events (the rest: LIST with to_file)
    listing_events: Annotated[int, _range(1, 64)] = 16
    max_downlink_mb: Annotated[float, _range(0.001, 4096)] = 16.0

    def __post_init__(self) -> None:
        from flightsw.components.file_policy import ROOT_NAME_RE

        for name in self.roots:
            if not ROOT_NAME_RE.match(name):
                raise ValueError(f"roots.{name}: a root name must match {ROOT_NAME_RE.pattern}")
            if name == "quarantine":
                raise ValueError("roots.quarantine: reserved for the CFDP quarantine (added with [filetransfer])")
        for i, name in enumerate(self.destinations):
            if name not in self.roots:
                raise ValueError(f"destinations[{i}]: {name!r} is not a root (roots: {', '.join(sorted(self.roots))})")


DEFAULT_FOV_DEG = (6.5, 4.9)  # a 60 km x 45 km footprint from 530 km


class ImagingSection(Section):
    """Images and capture planning (docs/imaging.md): FOV is fov_deg or sensor_mm + focal_length_mm (default 6.5 x 4.9 deg).

    ``fov_deg``: full angles across and along track; ``sensor_mm``: width across, height along track."""

    quota_mb: Annotated[float, _range(0.1, 1_000_000)] = 64.0
    base_id: Annotated[int, _range(1, 0xFFFF)] = 0x0500
    fov_deg: tuple[Annotated[float, Meta(gt=0, lt=120)], Annotated[float, Meta(gt=0, lt=120)]] | None = None
    sensor_mm: tuple[Annotated[float, Meta(gt=0, le=100)], Annotated[float, Meta(gt=0, le=100)]] | None = None
    focal_length_mm: Annotated[float, Meta(gt=0, le=10_000)] | None = None
    horizon_days: Annotated[float, _range(0.05, 7.0)] = 1.0  # how far ahead a target is searched
    max_tle_age_days: Annotated[float, _range(0.5, 60.0)] = 7.0  # no capture planned with an older TLE
    footprint_margin_km: Annotated[float, _range(0.0, 50.0)] = 2.0  # target this far inside the frame edge
    # with an ADCS device only (docs/imaging.md, "Pointing"):
    max_off_nadir_deg: Annotated[float, _range(0.0, 60.0)] = 30.0  # how far the camera may be pointed
    slew_lead_s: Annotated[float, _range(0.0, 600.0)] = 120.0  # slew commanded this long before the capture
    settle_timeout_s: Annotated[float, _range(1.0, 600.0)] = 110.0  # no settled attitude by then: refused

    def __post_init__(self) -> None:
        if self.fov_deg is not None and (self.sensor_mm is not None or self.focal_length_mm is not None):
            raise ValueError("fov_deg: give either fov_deg or sensor_mm with focal_length_mm, not both")
        if (self.sensor_mm is None) != (self.focal_length_mm is None):
            raise ValueError("focal_length_mm: sensor_mm and focal_length_mm go together")
        if self.sensor_mm is not None and self.focal_length_mm is not None:
            for size in self.sensor_mm:
                if 2 * math.degrees(math.atan(size / 2 / self.focal_length_mm)) >= 120.0:
                    raise ValueError("sensor_mm: field of view of 120 deg or more")

    def fov(self) -> tuple[float, float]:
        """Full field of view (across, along track) in degrees."""
        if self.sensor_mm is not None and self.focal_length_mm is not None:
            return (2 * math.degrees(math.atan(self.sensor_mm[0] / 2 / self.focal_length_mm)),
                    2 * math.degrees(math.atan(self.sensor_mm[1] / 2 / self.focal_length_mm)))
        return self.fov_deg if self.fov_deg is not None else DEFAULT_FOV_DEG


class UpdateSection(Section):
    enabled: bool | None = None  # default: on in a versioned install (deploy/install.sh)
    confirm_after: Annotated[float, _range(1, 3600)] = 60.0


class SequencerSection(Section):
    """Stored commands and sequences (flightsw.components.sequencer); always built."""

    base_id: Annotated[int, _range(1, 0xFFFF)] = 0x0010
    #: stored commands kept at most (all sequences together); more are refused, none dropped
    max_items: Annotated[int, _range(1, 10_000)] = 256
    #: a command dispatched at most this late is on time (its late policy is not consulted)
    late_grace_s: Annotated[float, _range(0.0, 3600.0)] = 5.0
    #: how long the sequencer waits for a dispatched command's completion before the next one
    completion_timeout_s: Annotated[float, _range(1.0, 3600.0)] = 600.0
    #: largest sequence file accepted by LOAD_SEQUENCE
    max_file_bytes: Annotated[int, _range(256, 1 << 20)] = 64 * 1024


MODE_NAMES = tuple(m.value for m in OPERATING_MODES)


class TransmitterSection(Section):
    """Transmitter control (flightsw.link.tx_control): the inhibits besides silence and TX_OFF."""

    base_id: Annotated[int, _range(1, 0xFFFF)] = 0x00D8
    #: operating modes in which the transmitter stays off
    silent_modes: list[str] = []
    #: battery channel of the low-power inhibit ("" = no low-power inhibit)
    battery_channel: str = ""
    #: transmitter off below this battery voltage ...
    off_below_v: Annotated[float, _range(0.0, 60.0)] = 0.0
    #: ... and on again only above this one (hysteresis)
    on_above_v: Annotated[float, _range(0.0, 60.0)] = 0.0

    def __post_init__(self) -> None:
        for i, mode in enumerate(self.silent_modes):
            if mode.upper() not in MODE_NAMES:
                raise ValueError(f"silent_modes[{i}]: expected one of {', '.join(MODE_NAMES)}, got {mode!r}")
        self.silent_modes = [m.upper() for m in self.silent_modes]
        if self.battery_channel and self.battery_channel.count(".") != 1:
            raise ValueError(f"battery_channel: expected \"component.channel\" or \"\", got {self.battery_channel!r}")
        if self.battery_channel and not 0.0 < self.off_below_v < self.on_above_v:
            raise ValueError(f"off_below_v: {self.off_below_v} V must be above 0 and below on_above_v "
                             f"({self.on_above_v} V) when battery_channel is set")


class DeploymentSection(Section):
    """Deployment sequence (flightsw.components.deployment): RF silence, then antenna burn wires."""

    base_id: Annotated[int, _range(1, 0xFFFF)] = 0x00D0
    #: the state the first boot (no persisted record) assumes: "stowed" after separation from the
    #: deployer (silence, then deployment), "deployed" on a bench or laptop (no silence, no burns)
    first_boot: Literal["stowed", "deployed"] = "stowed"
    #: RF silence after first separation, on the powered-on clock that survives reboots (CDS: 45 min)
    silence_s: Annotated[float, _range(0.0, 86400.0)] = 2700.0
    #: burn-wire gpio_outputs, primary circuit first, then backup(s)
    burn_outputs: list[str] = []
    #: deployment-switch gpio_inputs; logical true = released (active_low hides inverted wiring)
    switch_inputs: list[str] = []
    #: battery channel checked before a burn ("" = no check)
    battery_channel: str = "eps_battery.bus_voltage"
    min_battery_v: Annotated[float, _range(0.0, 60.0)] = 7.4
    max_reading_age_s: Annotated[float, _range(1.0, 600.0)] = 10.0
    #: an attempt is forced after waiting this long for the battery
    max_wait_s: Annotated[float, _range(0.0, 7 * 86400.0)] = 43200.0
    #: longest a burn wire stays powered (stops early when a switch reads released)
    burn_s: Annotated[float, _range(0.5, 120.0)] = 8.0
    cooldown_s: Annotated[float, _range(0.0, 3600.0)] = 60.0
    attempts_per_circuit: Annotated[int, _range(1, 20)] = 3
    #: how often the time served is persisted (and at every clean stop)
    persist_period_s: Annotated[float, _range(1.0, 600.0)] = 10.0

    def __post_init__(self) -> None:
        if self.battery_channel and self.battery_channel.count(".") != 1:
            raise ValueError(f"battery_channel: expected \"component.channel\" or \"\", got {self.battery_channel!r}")
        for key in ("burn_outputs", "switch_inputs"):
            names = getattr(self, key)
            if len(set(names)) != len(names):
                raise ValueError(f"{key}: duplicate names in {names!r}")


DEFAULT_BATTERY_CHANNEL = "eps_battery.bus_voltage"


class ModesSection(Section):
    """Modes and battery FDIR (flightsw.components.modes); defaults suit the reference 2S pack."""

    base_id: Annotated[int, _range(1, 0xFFFF)] = 0x0020
    #: "" disables battery FDIR; unset: the default channel, used only when it exists
    battery_channel: str | UnsetType = UNSET
    safe_enter_v: Annotated[float, _range(0.5, 60.0)] = 7.2   # 3.60 V/cell, ~20 % SoC
    safe_exit_v: Annotated[float, _range(0.5, 60.0)] = 7.6    # 3.80 V/cell, ~45-55 % SoC
    dwell_s: Annotated[float, _range(1.0, 3600.0)] = 30.0
    recover_dwell_s: Annotated[float, _range(1.0, 86400.0)] = 600.0
    auto_recover: bool = False
    max_reading_age_s: Annotated[float, _range(1.0, 600.0)] = 10.0
    plausible_v: tuple[float, float] = (5.0, 9.0)
    detumble_timeout_s: Annotated[float, _range(60.0, 7 * 86400.0)] = 5400.0
    boot_loop_count: Annotated[int, _range(2, 100)] = 4
    boot_loop_window_s: Annotated[float, _range(60.0, 86400.0)] = 600.0
    safe_off_outputs: list[str] = []
    first_boot_mode: str = "SAFE"
    safe_without_battery_s: Annotated[float, _range(0.0, 86400.0)] = 600.0
    max_auto_recoveries: Annotated[int, _range(1, 100)] = 3
    recovery_window_s: Annotated[float, _range(600.0, 7 * 86400.0)] = 21600.0
    #: the default watch-point table (docs/operations.md); tbl.LOAD/ACTIVATE replace it in flight
    watchpoints: list[WatchPoint] = []
    #: mode -> {sensor: poll period (s)} in that mode (docs/modes.md); others poll at their rate group's
    poll_s: dict[str, dict[str, Annotated[float, _range(0.1, 3600.0)]]] = {}

    @property
    def battery_channel_name(self) -> str:
        """The channel battery FDIR reads: the configured one, the default when unset, "" for none."""
        return DEFAULT_BATTERY_CHANNEL if isinstance(self.battery_channel, UnsetType) else self.battery_channel

    @property
    def battery_channel_required(self) -> bool:
        """Named in the config, so its absence is a config error (the default channel may be absent)."""
        return not isinstance(self.battery_channel, UnsetType) and self.battery_channel != ""

    def __post_init__(self) -> None:
        validate_watch_table(WatchTable(watchpoints=list(self.watchpoints)))
        for mode in self.poll_s:
            if mode not in MODE_NAMES:
                raise ValueError(f"poll_s.{mode}: not a mode ({', '.join(MODE_NAMES)})")
        if isinstance(self.battery_channel, str) and self.battery_channel and self.battery_channel.count(".") != 1:
            raise ValueError(f"battery_channel: expected \"component.channel\" or \"\" (no battery FDIR), "
                             f"got {self.battery_channel!r}")
        low, high = self.plausible_v
        if not 0.0 <= low < high:
            raise ValueError(f"plausible_v: expected [low, high] volts with 0 <= low < high, got {list(self.plausible_v)!r}")
        if self.first_boot_mode.upper() not in MODE_NAMES:
            raise ValueError(f"first_boot_mode: expected one of {', '.join(MODE_NAMES)}, got {self.first_boot_mode!r}")
        self.first_boot_mode = self.first_boot_mode.upper()
        if self.safe_enter_v >= self.safe_exit_v:
            raise ValueError(f"safe_enter_v: {self.safe_enter_v} V must be below safe_exit_v "
                             f"({self.safe_exit_v} V): without hysteresis SAFE mode flaps")
        for key in ("safe_enter_v", "safe_exit_v"):
            if not low < getattr(self, key) < high:
                raise ValueError(f"{key}: {getattr(self, key)} V outside plausible_v [{low}, {high}]")
        if len(set(self.safe_off_outputs)) != len(self.safe_off_outputs):
            raise ValueError(f"safe_off_outputs: duplicate names in {self.safe_off_outputs!r}")


class LossOfContactSection(Section):
    """The loss-of-contact ladder (flightsw.components.loss_of_contact); absent: not built."""

    #: seconds without a valid authenticated command before the radio is power-cycled
    radio_reset_after_s: Annotated[float, _range(60.0, 30 * 86400.0)] = 16 * 3600.0
    #: seconds without one before the computer is rebooted (after the radio reset)
    reboot_after_s: Annotated[float, _range(60.0, 30 * 86400.0)] = 20 * 3600.0
    #: seconds without one before the link falls back to its safe defaults (after the reboot)
    safe_defaults_after_s: Annotated[float, _range(60.0, 30 * 86400.0)] = 24 * 3600.0
    #: the gpio_output that powers the radio ("" = no radio reset step, counted as skipped)
    radio_power_output: str = ""
    #: seconds the radio stays unpowered during a reset
    radio_off_s: Annotated[float, _range(0.1, 600.0)] = 5.0
    base_id: Annotated[int, _range(1, 0xFFFF)] = 0x0600

    def __post_init__(self) -> None:
        if not self.radio_reset_after_s < self.reboot_after_s < self.safe_defaults_after_s:
            raise ValueError("reboot_after_s: the ladder's times must increase: radio_reset_after_s "
                             f"({self.radio_reset_after_s:g}) < reboot_after_s ({self.reboot_after_s:g}) "
                             f"< safe_defaults_after_s ({self.safe_defaults_after_s:g})")


# --- devices --------------------------------------------------------------------------------------

BACKENDS = ("real", "sim")
GPIO_KINDS = ("gpio_output", "gpio_input")
RADIO_KIND = "uhf_radio"
GPS_KIND = "gps"
CAMERA_KIND = "camera"
ADCS_KIND = "adcs"
DEVICE_NAME = r"[a-z_][a-z0-9_]*"


class DeviceEntry(Section):
    """The keys every ``[[devices]]`` entry has; the rest are its kind's options."""

    name: Annotated[str, Meta(pattern=f"^{DEVICE_NAME}$")]
    kind: str
    backend: Literal["real", "sim"] = "sim"


class DeviceConfig(Struct, kw_only=True):
    """One hardware device: its name, kind, backend and its kind's options (validated)."""

    name: str
    kind: str
    backend: str = "sim"
    options: dict[str, Any] = {}

    def settings(self) -> Any:
        """The options as their kind's typed Struct, defaults filled in (validated at load)."""
        return msgspec.convert(self.options, device_options_schema(self.kind, self.backend))


class SimBurnWireOptions(Section):
    """What a simulated burn wire on a gpio_output releases (sim.burn_wire)."""

    switch: str  # the gpio_input (deployment switch) that reads released once the wire parts
    release_probability: Annotated[float, _range(0.0, 1.0)] = 1.0  # per attempt
    fail_first: Annotated[int, _range(0, 100)] = 0  # scripted: the first N attempts never release
    release_after_s: Annotated[float, _range(0.0, 120.0)] = 3.0  # heating time a release needs
    current_a: Annotated[float, _range(0.0, 10.0)] = 1.5  # drawn from the battery while powered
    seed: int = 0


class GpioOutputOptions(Section):
    line: Annotated[int, _range(0, 1023)]
    active_low: bool = False
    initial: bool = False
    #: simulation only: the line powers a burn wire that releases a deployment switch
    burn_wire: SimBurnWireOptions | None = None


class GpioInputOptions(Section):
    line: Annotated[int, _range(0, 1023)]
    active_low: bool = False
    pull: Literal["none", "up", "down"] = "none"


class RadioOptions(Section):
    device: str | UnsetType = UNSET  # required for a real radio; sim: a pty in the data directory
    baud: Annotated[int, _range(1200, 4_000_000)] = 115200
    kiss_port: Annotated[int, _range(0, 15)] = 0
    # simulated transceiver and channel only
    kiss_tcp_port: Annotated[int, _range(0, 65535)] | UnsetType = UNSET
    frame_loss: Annotated[float, _range(0.0, 1.0)] = 0.0
    bit_error_rate: Annotated[float, _range(0.0, 1.0)] = 0.0
    propagation_delay: Annotated[float, _range(0.0, 10.0)] = 0.005
    seed: int | None = None
    queue_frames: Annotated[int, _range(1, 10_000)] = 8  # simulated radio's queue per direction


class GpsOptions(Section):
    """A GPS receiver's NMEA serial port (RMC and ZDA sentences are read for time)."""

    device: str | UnsetType = UNSET  # required for a real receiver; sim: a pty in the data directory
    baud: Annotated[int, _range(1200, 921_600)] = 9600
    # simulated receiver only
    period_s: Annotated[float, _range(0.1, 60.0)] = 1.0  # seconds between two fixes
    offset_s: float = 0.0  # the simulated receiver's UTC error (tests of a wrong fix)


class RealCameraOptions(Section):
    camera_num: Annotated[int, _range(0, 15)] = 0


class SimCameraOptions(Section):
    seed: int = 1
    scene: tuple[float, float, float] = (43.2, 76.9, 45.0)  # lat, lon, sun elevation (deg)
    swath_km: Annotated[float, Meta(gt=0)] = 60.0  # a scene without a position (with the orbit: [imaging] fov_deg)


class AdcsOptions(Section):
    """The ADCS unit on I2C (hal.drivers.adcs); the sim-only keys are accepted on a real unit."""

    bus: Annotated[int, _range(0, 255)] = 1
    address: Annotated[int, _range(0x2A, 0x2B)] = 0x2A
    base_id: Annotated[int, _range(1, 0xFFFF)] = 0x0700
    # simulated unit only (sim.parts.adcs)
    slew_rate_deg_s: Annotated[float, Meta(gt=0, le=30)] = 2.0
    settle_s: Annotated[float, _range(0.0, 600.0)] = 5.0
    settle_error_deg: Annotated[float, Meta(gt=0, le=10)] = 0.5
    jammed: bool = False  # the actuators do not move: the unit reports a slew fault


class SensorCommonOptions(Section):
    """Keys of every I2C sensor besides its driver's and simulated part's own."""

    bus: Annotated[int, _range(0, 255)] = 1
    address: Annotated[int, _range(0x03, 0x77)] | None = None
    rate: str = "slow"
    power_switch: str | None = None
    #: channel -> [red_low, yellow_low, yellow_high, red_high]
    limits: dict[str, list[float]] = {}
    faults: dict[str, Any] = {}  # simulated part faults (sim.faults.PartFaults)
    max_failures: Annotated[int, _range(1, 1000)] = 3
    base_id: Annotated[int, _range(1, 0xFFFF)] | None = None

    def __post_init__(self) -> None:
        for channel, bounds in self.limits.items():
            if len(bounds) != 4:
                raise ValueError(f"limits.{channel}: expected [red_low, yellow_low, yellow_high, red_high]")


def _signature_fields(fn: Any, skip: set[str]) -> list[tuple[str, Any, Any]]:
    hints = typing.get_type_hints(fn)
    out = []
    for name, param in inspect.signature(fn).parameters.items():
        if name in skip or param.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        out.append((name, hints.get(name, Any) | UnsetType, UNSET))
    return out


def signature_keys(fn: Any, skip: set[str]) -> set[str]:
    """The keyword options a driver or simulated part's constructor takes."""
    return {name for name, _, _ in _signature_fields(fn, skip)}


_SENSOR_SCHEMAS: dict[str, type[Struct]] = {}


def sensor_options_schema(kind: str) -> type[Struct]:
    """The options of an I2C sensor kind: common keys, its driver's and its simulated part's.

    Sim-only keys are accepted on a real device too, so a bench flips a device between real and
    simulated by changing one word. Built from the constructors' signatures (declared once there).
    """
    schema = _SENSOR_SCHEMAS.get(kind)
    if schema is None:
        from hal.drivers import DRIVERS
        from sim.parts import SIM_PARTS

        fields_ = {name: (name, tp, default) for name, tp, default in
                   _signature_fields(DRIVERS[kind].__init__, {"self", "bus", "address"})}
        for name, tp, default in _signature_fields(SIM_PARTS[kind].__init__,
                                                   {"self", "address", "env", "clock", "faults"}):
            fields_.setdefault(name, (name, tp, default))
        schema = msgspec.defstruct(f"{kind}_options", list(fields_.values()), bases=(SensorCommonOptions,),
                                   kw_only=True, forbid_unknown_fields=True)
        _SENSOR_SCHEMAS[kind] = schema
    return schema


def device_kinds() -> list[str]:
    """Every ``kind`` a ``[[devices]]`` entry may have."""
    from hal.drivers import DRIVERS

    return sorted([*GPIO_KINDS, RADIO_KIND, GPS_KIND, CAMERA_KIND, ADCS_KIND, *DRIVERS])


def device_options_schema(kind: str, backend: str) -> type[Struct]:
    if kind == "gpio_output":
        return GpioOutputOptions
    if kind == "gpio_input":
        return GpioInputOptions
    if kind == RADIO_KIND:
        return RadioOptions
    if kind == GPS_KIND:
        return GpsOptions
    if kind == CAMERA_KIND:
        return RealCameraOptions if backend == "real" else SimCameraOptions
    if kind == ADCS_KIND:
        return AdcsOptions
    return sensor_options_schema(kind)


def _check_sensor(index: int, dev: DeviceConfig, options: Any) -> None:
    """What the driver and the simulated part check themselves, done now, with no bus opened."""
    from hal.drivers import DRIVERS
    from hal.drivers.base import ConfigError as DriverConfigError

    where = f"devices[{index}]"
    driver_cls = DRIVERS[dev.kind]
    driver_keys = signature_keys(driver_cls.__init__, {"self", "bus", "address"})
    kwargs = {k: v for k, v in dev.options.items() if k in driver_keys}
    address = driver_cls.regmap.addresses[0] if options.address is None else options.address
    try:
        driver = driver_cls(None, address, **kwargs)  # type: ignore[arg-type]  # no bus: never used here
    except (DriverConfigError, TypeError, ValueError) as exc:
        key = "address" if "address" in str(exc) else _leading_key(str(exc), kwargs)
        raise ConfigError(f"{where}.{key}: {exc}") from None
    for channel in options.limits:
        if channel not in driver.units:
            raise ConfigError(f"{where}.limits.{channel}: no such channel (have {sorted(driver.units)})")
    if options.faults:
        from sim.faults import PartFaults

        try:
            PartFaults.from_options(dict(options.faults))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}.faults: {exc}") from None


def _leading_key(message: str, keys: Any) -> str:
    """The first of ``keys`` a library's message mentions (to name the key), else the first key."""
    for key in keys:
        if re.search(rf"\b{re.escape(key)}\b", message):
            return str(key)
    return next(iter(keys), "?")


def parse_device(index: int, raw: Any) -> DeviceConfig:
    """One ``[[devices]]`` entry, its kind known and its options valid for that kind."""
    where = f"devices[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table, got {type(raw).__name__}")
    base_keys = set(DeviceEntry.__struct_fields__)
    entry = _convert({k: v for k, v in raw.items() if k in base_keys}, DeviceEntry, raw, where)
    kinds = device_kinds()
    if entry.kind not in kinds:
        raise ConfigError(f"{where}.kind: unknown device kind {entry.kind!r} (known: {', '.join(kinds)})")
    dev = DeviceConfig(name=entry.name, kind=entry.kind, backend=entry.backend,
                       options={k: v for k, v in raw.items() if k not in base_keys})
    options = _convert(dev.options, device_options_schema(dev.kind, dev.backend), dev.options, where,
                       what=f"{dev.backend} {dev.kind}" if dev.kind == CAMERA_KIND else f"kind {dev.kind}")
    if dev.kind in (RADIO_KIND, GPS_KIND) and dev.backend == "real" and not options.device:
        what = "radio" if dev.kind == RADIO_KIND else "GPS receiver"
        raise ConfigError(f"{where}.device: the serial device path is required for a real {what}")
    if isinstance(options, SensorCommonOptions):
        _check_sensor(index, dev, options)
    return dev


# --- the whole file -------------------------------------------------------------------------------


class MissionConfig(Section):
    """Every table of a mission config. Subsystem tables are None when absent from the file."""

    mission: MissionSection = field(default_factory=MissionSection)
    storage: StorageSection = field(default_factory=StorageSection)
    scheduler: SchedulerSection = field(default_factory=SchedulerSection)
    watchdog: WatchdogSection = field(default_factory=WatchdogSection)
    time: TimeSection = field(default_factory=TimeSection)
    telemetry: TelemetrySection = field(default_factory=TelemetrySection)
    devices: list[DeviceConfig] = []
    housekeeping: HousekeepingSection = field(default_factory=HousekeepingSection)
    link: LinkSection = field(default_factory=LinkSection)
    filetransfer: FileTransferSection | None = None
    files: FilesSection | None = None
    contact: ContactSection | None = None
    imaging: ImagingSection = field(default_factory=ImagingSection)
    update: UpdateSection = field(default_factory=UpdateSection)
    modes: ModesSection = field(default_factory=ModesSection)
    transmitter: TransmitterSection = field(default_factory=TransmitterSection)
    deployment: DeploymentSection | None = None
    sequencer: SequencerSection = field(default_factory=SequencerSection)
    loss_of_contact: LossOfContactSection | None = None

    #: the file it came from, for messages (set by load/loads; not a key of the file)
    source: str = "<defaults>"

    @property
    def data_dir(self) -> Path:
        """Where state, parameters and records live (a relative path is relative to the CWD)."""
        return Path(self.storage.data_dir)

    def devices_of(self, kind: str) -> list[DeviceConfig]:
        """The ``[[devices]]`` entries of one kind, in file order."""
        return [d for d in self.devices if d.kind == kind]


def _cross_check(cfg: MissionConfig) -> None:
    """Rules that relate sections to each other (devices, switches, rate groups, link)."""
    seen: set[str] = set()
    for i, dev in enumerate(cfg.devices):
        if dev.name in seen:
            raise ConfigError(f"devices[{i}].name: duplicate device name {dev.name!r}")
        seen.add(dev.name)
    outputs = {d.name for d in cfg.devices if d.kind == "gpio_output"}
    lines: dict[tuple[str, int], str] = {}
    addresses: dict[tuple[str, int, int], str] = {}
    for i, dev in enumerate(cfg.devices):
        if dev.kind in GPIO_KINDS:
            line = (dev.backend, int(dev.options["line"]))
            if line in lines:
                raise ConfigError(f"devices[{i}].line: line {line[1]} already used by {lines[line]}")
            lines[line] = dev.name
        elif dev.kind not in (RADIO_KIND, GPS_KIND, CAMERA_KIND, ADCS_KIND):  # an I2C sensor
            from hal.drivers import DRIVERS

            address = dev.options.get("address")
            address = DRIVERS[dev.kind].regmap.addresses[0] if address is None else int(address)
            where = (dev.backend, int(dev.options.get("bus", 1)), address)
            if where in addresses:
                raise ConfigError(f"devices[{i}].address: {address:#04x} on bus {where[1]} already used by "
                                  f"{addresses[where]}")
            addresses[where] = dev.name
            rate = dev.options.get("rate", "slow")
            if rate not in cfg.scheduler.rate_groups:
                raise ConfigError(f"devices[{i}].rate: no rate group {rate!r} "
                                  f"(have {sorted(cfg.scheduler.rate_groups)})")
            switch = dev.options.get("power_switch")
            if switch is not None and switch not in outputs:
                raise ConfigError(f"devices[{i}].power_switch: no gpio_output named {switch!r}")
    cameras = cfg.devices_of(CAMERA_KIND)
    if len(cameras) > 1:
        raise ConfigError(f"devices: only one camera is supported, found {[d.name for d in cameras]}")
    if cfg.devices_of(RADIO_KIND):
        from flightsw.link import ax25
        from flightsw.link.packets import PRIMARY_HEADER_LEN

        for key in ("callsign", "ground_callsign"):
            try:
                ax25.Address.parse(getattr(cfg.link, key))
            except ax25.Ax25Error as exc:
                raise ConfigError(f"link.{key}: {exc}") from None
        if cfg.link.max_frame - ax25.HEADER_LEN < PRIMARY_HEADER_LEN + 64:
            raise ConfigError("link.max_frame: too small to carry a beacon")
    inputs = {d.name for d in cfg.devices if d.kind == "gpio_input"}
    for dev in cfg.devices:
        wire = dev.options.get("burn_wire") if dev.kind == "gpio_output" else None
        if isinstance(wire, dict) and wire.get("switch") not in inputs:
            raise ConfigError(f"devices.{dev.name}.burn_wire.switch: no gpio_input named {wire.get('switch')!r}")
    if cfg.deployment is not None:
        for key, names, have in (("burn_outputs", cfg.deployment.burn_outputs, outputs),
                                 ("switch_inputs", cfg.deployment.switch_inputs, inputs)):
            for i, name in enumerate(names):
                if name not in have:
                    raise ConfigError(f"deployment.{key}[{i}]: no {'gpio_output' if have is outputs else 'gpio_input'} "
                                      f"device named {name!r} (have: {sorted(have)})")
        if cfg.deployment.first_boot == "stowed" and not cfg.deployment.burn_outputs:
            raise ConfigError("deployment.burn_outputs: a stowed satellite needs at least one burn-wire output")
    for i, wp in enumerate(cfg.modes.watchpoints):
        if wp.output and wp.output not in outputs:
            raise ConfigError(f"modes.watchpoints[{i}].output: no gpio_output device named {wp.output!r} "
                              f"(have: {sorted(outputs)})")
    if len(cfg.devices_of(ADCS_KIND)) > 1:
        raise ConfigError(f"devices: only one adcs is supported, found {[d.name for d in cfg.devices_of(ADCS_KIND)]}")
    if len(cfg.devices_of(GPS_KIND)) > 1:
        raise ConfigError(f"devices: only one gps is supported, found {[d.name for d in cfg.devices_of(GPS_KIND)]}")
    loc = cfg.loss_of_contact
    if loc is not None and loc.radio_power_output and loc.radio_power_output not in outputs:
        raise ConfigError(f"loss_of_contact.radio_power_output: no gpio_output device named "
                          f"{loc.radio_power_output!r} (have: {sorted(outputs)})")
    for i, name in enumerate(cfg.modes.safe_off_outputs):
        if name not in outputs:
            raise ConfigError(f"modes.safe_off_outputs[{i}]: no gpio_output device named {name!r} "
                              f"(have: {sorted(outputs)})")
        fed = sorted(d.name for d in cfg.devices if d.options.get("power_switch") == name)
        if fed:
            raise ConfigError(f"modes.safe_off_outputs[{i}]: {name!r} powers {fed}; housekeeping switches "
                              "it back on to recover them, so it cannot be a SAFE-off output")


# --- msgspec errors as one line naming the key ------------------------------------------------------

_AT = re.compile(r"^(?P<msg>.*) - at `\$(?P<path>.*)`$", re.S)
_KINDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
          "object": "a table", "array": "a list", "null": "nothing"}


def _split_path(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for name, index in re.findall(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]", path):
        parts.append(name if name else (int(index) if index.isdigit() else "..."))
    return parts


def _join(parts: list[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def _value_at(raw: Any, parts: list[str | int]) -> Any:
    for p in parts:
        if isinstance(p, int) and isinstance(raw, list) and p < len(raw):
            raw = raw[p]
        elif isinstance(p, str) and isinstance(raw, dict) and p in raw:
            raw = raw[p]
        else:
            return UNSET
    return raw


def _strip(tp: Any) -> tuple[Any, list[Meta]]:
    """The type without Annotated/Optional/Unset wrappers, and its constraints."""
    metas: list[Meta] = []
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp, *extra = typing.get_args(tp)
            metas += [m for m in extra if isinstance(m, Meta)]
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(tp) if a not in (type(None), UnsetType)]
            if len(options) != 1:  # e.g. a number or "tnc": the number's constraints still apply
                for option in options:
                    if typing.get_origin(option) is Annotated:
                        metas += [m for m in typing.get_args(option)[1:] if isinstance(m, Meta)]
                return tp, metas
            tp = options[0]
        else:
            return tp, metas


def _type_at(root: Any, parts: list[str | int]) -> Any:
    tp: Any = root
    for p in parts:
        tp, _ = _strip(tp)
        if isinstance(tp, type) and issubclass(tp, Struct) and isinstance(p, str):
            hints = typing.get_type_hints(tp, include_extras=True)
            if p not in hints:
                return None
            tp = hints[p]
        elif typing.get_origin(tp) in (list, tuple, dict):
            args = typing.get_args(tp)
            tp = args[-1] if typing.get_origin(tp) is not tuple else args[p if isinstance(p, int) and p < len(args) else 0]
        else:
            return None
    return tp


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _allowed(tp: Any) -> str:
    tp, _ = _strip(tp)
    if isinstance(tp, type) and issubclass(tp, Struct):
        return ", ".join(sorted(set(tp.__struct_fields__) - {"source"} if tp is MissionConfig else tp.__struct_fields__))
    return "?"


def _describe(err: msgspec.ValidationError, root: Any, raw: Any, prefix: str, what: str = "") -> str:
    """One line, key path first, from a msgspec validation error."""
    m = _AT.match(str(err))
    msg, parts = (m["msg"], _split_path(m["path"])) if m else (str(err), [])
    path = _join(parts)
    here = f"{prefix}.{path}" if prefix and path else (prefix or path)
    value = _value_at(raw, parts)
    if unknown := re.fullmatch(r"Object contains unknown field `(.*)`", msg):
        key = unknown[1]
        if not here:
            return f"{key}: unknown section (allowed: {_allowed(root)})"
        return f"{here}.{key}: unknown key{f' for {what}' if what else ''} (allowed: {_allowed(_type_at(root, parts))})"
    if missing := re.fullmatch(r"Object missing required field `(.*)`", msg):
        return f"{here + '.' if here else ''}{missing[1]}: required key missing"
    tp, metas = _strip(_type_at(root, parts))
    if typing.get_origin(tp) is Literal or msg.startswith("Invalid enum value"):
        choices = [a for opt in (typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType)
                                 else (tp,)) if typing.get_origin(opt) is Literal for a in typing.get_args(opt)]
        others = [_type_text(opt) for opt in typing.get_args(tp) if typing.get_origin(opt) is not Literal
                  and opt not in (type(None), UnsetType)] if typing.get_origin(tp) in (typing.Union, types.UnionType) else []
        allowed = ", ".join([*map(repr, choices), *others]) or "?"
        return f"{here}: expected one of {allowed}, got {value!r}"
    if re.fullmatch(r"Expected `\w+` (>=|<=|>|<) .*", msg) and metas:
        lo = next((m.ge if m.ge is not None else m.gt for m in metas if m.ge is not None or m.gt is not None), None)
        hi = next((m.le if m.le is not None else m.lt for m in metas if m.le is not None or m.lt is not None), None)
        if lo is not None and hi is not None:
            return f"{here}: {value} outside [{_num(lo)}, {_num(hi)}]"
        return f"{here}: {value} must be {msg.split('` ', 1)[1]}"
    if kind := re.fullmatch(r"Expected `([\w| ]+)`(?:, got `\w+`)?", msg):
        names = [_KINDS.get(k, k) for k in kind[1].split(" | ") if k != "null"]
        return f"{here}: expected {' or '.join(names)}, got {value!r}"
    if length := re.fullmatch(r"Expected `array` of length (.*), got \d+", msg):
        return f"{here}: expected a list of {length[1]} values, got {value!r}"
    if msg.startswith("Expected `str` matching regex"):
        return f"{here}: {value!r} does not match {msg.split('regex ', 1)[1].strip('`')}"
    if not msg.startswith(("Expected", "Object", "Invalid")):
        return f"{here + '.' if here else ''}{msg}"  # a __post_init__ rule: "key: problem"
    return f"{here or 'config'}: {msg[0].lower() + msg[1:]}"


def _convert(raw: Any, cls: type[Any], shown: Any, prefix: str, what: str = "") -> Any:
    try:
        return msgspec.convert(raw, cls)
    except msgspec.ValidationError as exc:
        raise ConfigError(_describe(exc, cls, shown, prefix, what)) from None


def from_table(raw: dict[str, Any]) -> MissionConfig:
    """Validate a parsed TOML table into a MissionConfig (ConfigError naming the key otherwise)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config: expected a table, got {type(raw).__name__}")
    devices = raw.get("devices", [])
    if not isinstance(devices, list):
        raise ConfigError(f"devices: expected a list of tables ([[devices]]), got {type(devices).__name__}")
    if "source" in raw:
        raise ConfigError(f"source: unknown section (allowed: {_allowed(MissionConfig)})")
    cfg: MissionConfig = _convert({k: v for k, v in raw.items() if k != "devices"}, MissionConfig, raw, "")
    cfg.devices = [parse_device(i, dev) for i, dev in enumerate(devices)]
    _cross_check(cfg)
    return cfg


def loads(text: str, source: str = "<string>") -> MissionConfig:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        cfg = from_table(raw)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    cfg.source = source
    return cfg


def load(path: str | Path) -> MissionConfig:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not valid TOML: not UTF-8 text") from None
    return loads(text, str(p))



# --- reference (docs/config.md is generated from the schema) -----------------------------------------


def _type_text(tp: Any) -> str:
    base, metas = _strip(tp)
    origin = typing.get_origin(base)
    if origin is Literal:
        text = " \\| ".join(f'"{a}"' for a in typing.get_args(base))
    elif origin in (list, tuple):
        args = [a for a in typing.get_args(base) if a is not Ellipsis]
        text = f"[{', '.join(_type_text(a) for a in args)}]" if origin is tuple else f"list of {_type_text(args[0])}"
    elif origin is dict:
        text = f"table of {_type_text(typing.get_args(base)[1])}"
    elif base is Any:
        text = "any"
    elif origin in (typing.Union, types.UnionType):
        text = " or ".join(_type_text(a) for a in typing.get_args(base) if a not in (type(None), UnsetType))
        metas = []  # each option shows its own constraints
    elif isinstance(base, type):
        text = {"int": "integer", "float": "number", "str": "string", "bool": "bool"}.get(base.__name__, base.__name__)
    else:
        text = str(base)
    for m in metas:
        lo = m.ge if m.ge is not None else m.gt
        hi = m.le if m.le is not None else m.lt
        if lo is not None and hi is not None:
            text += f" in [{_num(lo)}, {_num(hi)}]"
        elif lo is not None:
            text += f" >= {_num(lo)}" if m.ge is not None else f" > {_num(lo)}"
        if m.pattern:
            text += f" matching `{m.pattern}`"
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp):
        text += " or unset"
    return text


def _default_text(info: Any) -> str:
    if info.required:
        return "**required**"
    default = info.default if info.default is not msgspec.NODEFAULT else info.default_factory()
    if default is UNSET or default is None:
        return "(unset)"
    if isinstance(default, Struct):
        return ""
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, int) and default > 4096:
        return f"{default:_}"
    return f"`{default!r}`" if not isinstance(default, str) else f'`"{default}"`'


def _table(cls: type[Struct], title: str) -> list[str]:
    hints = typing.get_type_hints(cls, include_extras=True)
    lines = [f"### {title}", ""]
    doc = (cls.__doc__ or "").strip().split("\n")[0]
    if doc and not doc.startswith(("A config table", "The keys every")):
        lines += [doc, ""]
    lines += ["| key | type | default |", "|---|---|---|"]
    for info in msgspec.structs.fields(cls):
        if info.name == "source" or isinstance(_strip(hints[info.name])[0], type) and issubclass(
                _strip(hints[info.name])[0], Struct):
            continue
        lines.append(f"| `{info.name}` | {_type_text(hints[info.name])} | {_default_text(info)} |")
    return lines + [""]


def reference_markdown() -> str:
    """docs/config.md: every section, key, type, range and default, from the schema above."""
    from hal.drivers import DRIVERS

    out = ["<!-- Generated by `python -m flightsw.config` from flightsw/config.py. Do not edit. -->",
           "# Mission config reference", "",
           "The mission config is one TOML file (`deploy/sim.toml`, `deploy/flight.toml`, `deploy/bench.toml`).",
           "It is validated in full when it is loaded, before anything is written or a boot counted:",
           "unknown sections and keys, wrong types, out-of-range values, unknown device kinds and",
           "references that lead nowhere are refused with one line naming the key path, exit code 2:", "",
           "```", "flightsw: invalid configuration: mission.toml: devices[3].kind: unknown device kind 'ina291' (known: ...)",
           "flightsw: invalid configuration: mission.toml: housekeeping.i2c_retrys: unknown key (allowed: ...)",
           "```", "",
           "What only the built satellite knows (the channel names in `[[telemetry.packets]]`,",
           "`link.beacon_channels`, `modes.battery_channel`) is checked by building it offline in a scratch",
           "directory first (`flightsw.config_check`). A table the software does not read is refused.", "",
           "## Sections", ""]
    hints = typing.get_type_hints(MissionConfig, include_extras=True)
    for name in MissionConfig.__struct_fields__:
        if name in ("source", "devices"):
            continue
        cls = _strip(hints[name])[0]
        out += _table(cls, f"`[{name}]`")
        if cls is TelemetrySection:
            out += _table(PacketSection, "`[[telemetry.packets]]`")
    out += ["## Devices (`[[devices]]`)", "",
            "Every entry has `name` (matching `" + DEVICE_NAME + "`, unique), `kind` and `backend`",
            '(`"real"` or `"sim"`, default `"sim"`); the other keys are the kind\'s options below.', ""]
    for kind, cls in (("gpio_output", GpioOutputOptions), ("gpio_input", GpioInputOptions),
                      (RADIO_KIND, RadioOptions), (GPS_KIND, GpsOptions)):
        out += _table(cls, f"kind `{kind}`")
        if cls is GpioOutputOptions:
            out += _table(SimBurnWireOptions, "`burn_wire` table of a `gpio_output` (simulation only)")
    out += _table(RealCameraOptions, 'kind `camera`, backend `"real"`')
    out += _table(SimCameraOptions, 'kind `camera`, backend `"sim"`')
    out += _table(AdcsOptions, "kind `adcs`")
    out += _table(SensorCommonOptions, "every I2C sensor kind")
    out += ["The sensor kinds and their own options (from the driver's and the simulated part's",
            "constructors; a sim-only option is accepted on a real device, so a bench flips one word):", "",
            "| kind | options |", "|---|---|"]
    for kind in sorted(DRIVERS):
        schema = sensor_options_schema(kind)
        own = [f for f in schema.__struct_fields__ if f not in SensorCommonOptions.__struct_fields__]
        out.append(f"| `{kind}` | {', '.join(f'`{f}`' for f in own)} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
