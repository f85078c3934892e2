"""The closed sets of names the satellite reports: modes, reset reasons, device status.

Why enums: these names cross process and link boundaries (the state store, the beacon, the
dictionary export, the ground). As bare strings a new value could be added in one place and be
missing from another (a reset reason went down as "unknown" because the beacon's table lacked
it). Declared here once; the beacon's codes and the dictionary export are generated from these,
and a test fails when a value has no beacon code. They are ``StrEnum``s, so values stored as
strings by earlier versions still compare equal.
"""

from __future__ import annotations

import enum


class Mode(enum.StrEnum):
    """Operating mode (the mode manager's, persisted as ``state["mode"]``)."""

    BOOT = "BOOT"  # before the mode manager decided this boot's mode
    SAFE = "SAFE"
    NOMINAL = "NOMINAL"
    DETUMBLE = "DETUMBLE"

    @classmethod
    def parse(cls, value: object) -> Mode | None:
        """The mode a stored or configured value names (any case), or None."""
        try:
            return cls(str(value).upper())
        except ValueError:
            return None


#: the modes the satellite can be commanded to or configured to boot in
OPERATING_MODES: tuple[Mode, ...] = (Mode.SAFE, Mode.NOMINAL, Mode.DETUMBLE)


class ResetReason(enum.StrEnum):
    """Why the previous run ended, as this boot sees it (``state["reset_reason"]``).

    A clean stop records its reason before it exits; a boot that finds none recorded reads
    UNEXPECTED (power cut, watchdog reset, kill). WATCHDOG is the reason the simulated board
    gives its own run when the simulated watchdog bites; like the real one it records nothing,
    so the next boot reads UNEXPECTED.
    """

    FIRST_BOOT = "FIRST_BOOT"
    UNEXPECTED = "UNEXPECTED"
    STATE_LOST = "STATE_LOST"  # the state store was unreadable: counted from zero again
    COMMANDED = "COMMANDED"  # exec.SHUTDOWN (or a software update's restart)
    SIGTERM = "SIGTERM"
    SIGINT = "SIGINT"
    DURATION = "DURATION"  # --duration elapsed
    SOFTWARE_ERROR = "SOFTWARE_ERROR"  # the framework itself failed and stopped
    WATCHDOG = "WATCHDOG"
    #: the health monitor stopped the watchdog pets: a critical service failed or stopped answering
    #: its health ping for the grace time (recorded before the pets stop; the process is then
    #: killed by systemd or the board reset by the hardware watchdog)
    CRITICAL_SERVICE = "CRITICAL_SERVICE"
    FDIR = "FDIR"  # a watch-point's REBOOT response (an orderly stop; the service manager restarts)
    LOSS_OF_CONTACT = "LOSS_OF_CONTACT"  # the loss-of-contact ladder rebooted the computer

    @classmethod
    def parse(cls, value: object) -> ResetReason | None:
        try:
            return cls(str(value))
        except ValueError:
            return None


#: reset reasons after which the previous mode is not trusted
UNCLEAN_RESETS = frozenset({ResetReason.UNEXPECTED, ResetReason.STATE_LOST, ResetReason.SOFTWARE_ERROR})
#: runs that ended on a fault: they do not prove a boot good (boot-loop protection counts them),
#: though the mode after the last two is trusted (the fault and its cause were recorded)
FAILED_RUNS = UNCLEAN_RESETS | {ResetReason.CRITICAL_SERVICE, ResetReason.FDIR}


class TimeQuality(enum.StrEnum):
    """How far spacecraft UTC can be trusted (telemetry ``exec.time_quality``, state ``time``).

    UNKNOWN: never set. DEGRADED: carried across a reset from the last persisted UTC plus this
    boot's uptime (the time the computer was off is not counted, so it runs late). SYSTEM: the
    operating system's clock (``time.utc_source = "system"``, or the simulator's). GROUND_SET: set
    by ``exec.SET_TIME`` during this boot. GPS: from a GPS fix during this boot.
    """

    UNKNOWN = "UNKNOWN"
    DEGRADED = "DEGRADED"
    SYSTEM = "SYSTEM"
    GROUND_SET = "GROUND_SET"
    GPS = "GPS"

    @property
    def code(self) -> int:
        """Wire code (telemetry, beacon): the order of the members."""
        return list(TimeQuality).index(self)

    @property
    def confirmed(self) -> bool:
        """Set by an authority (ground or GPS) during this boot."""
        return self in (TimeQuality.GROUND_SET, TimeQuality.GPS)


class CommandStatus(enum.IntEnum):
    """The last command's fate as the beacon reports it (the values are the wire codes)."""

    NONE = 0
    ACCEPTED = 1
    REJECTED = 2
    COMPLETED = 3
    FAILED = 4


class DeviceStatus(enum.StrEnum):
    """What probing a configured device found (``flightsw check-hardware``)."""

    FOUND = "FOUND"
    READING_INVALID = "FOUND, reading invalid"
    SELF_TEST_PASSED = "FOUND, self-test passed"
    SELF_TEST_FAILED = "SELF-TEST FAILED"
    NOT_FOUND = "NOT FOUND"
    TIMEOUT = "TIMEOUT"
    ERROR = "ERROR"

    @property
    def ok(self) -> bool:
        return self in (DeviceStatus.FOUND, DeviceStatus.SELF_TEST_PASSED)


class DeploymentState(enum.StrEnum):
    """Where the deployment sequence stands (``state["deployment"]["state"]``, persisted).

    SILENCE until the RF-silence time has been served; ARMED while an attempt is due (waiting
    for the battery or the forced-attempt time); BURNING while a burn wire is powered; COOLDOWN
    between attempts; then one of the final states DEPLOYED, FAILED (every attempt on every
    circuit without the switch confirming) or SKIPPED (the operators stopped the sequence).
    """

    SILENCE = "SILENCE"
    ARMED = "ARMED"
    BURNING = "BURNING"
    COOLDOWN = "COOLDOWN"
    DEPLOYED = "DEPLOYED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"

    @property
    def final(self) -> bool:
        return self in (DeploymentState.DEPLOYED, DeploymentState.FAILED, DeploymentState.SKIPPED)


class TxInhibit(enum.StrEnum):
    """Why the transmitter may not key up now (the transmitter-control owner's reasons)."""

    SILENCE = "silence"  # the deployment sequence's RF silence after separation
    COMMANDED_OFF = "commanded_off"  # the ground's persisted transmitter-off (cessation of emissions)
    LOW_POWER = "low_power"  # battery below the transmitter's limit
    MODE = "mode"  # an operating mode in which the transmitter stays off
    OUT_OF_CONTACT = "out_of_contact"  # no predicted pass and [contact] out_of_contact = "silent"


class LatePolicy(enum.IntEnum):
    """What a stored command found due after its time (the computer was off) does; the code is
    the ``late`` argument of the sequencer's store commands."""

    RUN_LATE = 0  #: run it anyway, as soon as possible
    SKIP = 1  #: drop it (reported)
    SKIP_IF_LATER_THAN = 2  #: run it if at most ``late_s`` late, else drop it


class AdcsMode(enum.IntEnum):
    """What the attitude control unit holds (the ADCS port; the code is the unit's MODE field)."""

    DETUMBLE = 0  # damp the body rates; no attitude held
    SUN_POINTING = 1  # panels to the Sun (the default between captures)
    NADIR = 2  # camera boresight along the local vertical
    TARGET_TRACKING = 3  # boresight held on a ground point (lat, lon) as the satellite passes


class SlewStatus(enum.IntEnum):
    """Whether the commanded attitude is reached (the unit's STATUS.SLEW field)."""

    SETTLED = 0  # attitude error below the unit's threshold for its settle time
    SLEWING = 1
    FAULT = 2  # the unit cannot reach the attitude (actuator fault, saturated wheels)


class PointingFault(enum.StrEnum):
    """Why a capture that needed pointing was not taken (the reason of its CAPTURE_REFUSED event)."""

    ADCS_ABSENT = "adcs_absent"  # the capture needs a slew and no ADCS is wired (or it fails on the bus)
    NOT_SETTLED = "adcs_not_settled"  # the attitude did not settle within the timeout
    ADCS_FAULT = "adcs_fault"  # the unit reported a slew fault
