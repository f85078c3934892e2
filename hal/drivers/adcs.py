"""A three-axis ADCS unit on I2C: mode and ground target in, slew status and attitude error out.

Why a register interface: CubeSat ADCS boards are driven by their flight computer as a bus
slave (I2C, or UART carrying the same register frames); the flight computer only says what to
hold (detumble, Sun, nadir, a ground point) and reads whether it is there. The register map is
declared once below; ``sim.parts.adcs`` implements the same map with a slew-rate model.

Registers (angles in 0.01 deg, signed 16-bit big-endian where signed):

* ``CONTROL.MODE`` (write applies it): 0 detumble, 1 Sun pointing, 2 nadir, 3 target tracking of
  ``TARGET_LAT``/``TARGET_LON`` (write those first);
* ``STATUS``: ``SLEW`` 0 settled, 1 slewing, 2 fault; ``MODE`` the mode being held;
* ``ATT_ERROR``: angle between held and commanded attitude; ``OFF_NADIR``: boresight to vertical.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from flightsw.core.enums import AdcsMode, SlewStatus
from hal.drivers.base import DeviceNotFound, RegisterDevice
from hal.i2c import I2CBus
from hal.regmap import Field, Register, RegisterMap

WHO_AM_I = 0xAD
CENTIDEG = 100.0

REGMAP = RegisterMap(
    part="ADCS",
    addresses=(0x2A, 0x2B),
    auto_increment=False,
    registers=(
        Register("WHO_AM_I", 0x00, 1, access="r", reset=WHO_AM_I),
        Register("CONTROL", 0x01, 1, reset=int(AdcsMode.SUN_POINTING),
                 fields=(Field("MODE", 0, 3),), doc="writing it applies the mode"),
        Register("TARGET_LAT", 0x02, 2, signed=True, doc="0.01 deg"),
        Register("TARGET_LON", 0x04, 2, signed=True, doc="0.01 deg"),
        Register("STATUS", 0x06, 1, access="r", reset=int(SlewStatus.SLEWING),
                 fields=(Field("SLEW", 0, 2), Field("MODE", 2, 3))),
        Register("ATT_ERROR", 0x07, 2, access="r", doc="0.01 deg"),
        Register("OFF_NADIR", 0x09, 2, access="r", doc="0.01 deg"),
    ),
)


def to_centideg(value: float) -> int:
    """Degrees -> signed 0.01 deg count as the unsigned register value."""
    return max(-32768, min(32767, round(value * CENTIDEG))) & 0xFFFF


@dataclass(frozen=True)
class AdcsStatus:
    """One reading of the unit (satisfies ``flightsw.core.ports.AttitudeState``)."""

    mode: AdcsMode
    slew: SlewStatus
    error_deg: float
    off_nadir_deg: float
    target: tuple[float, float] = (0.0, 0.0)  # TARGET_LAT, TARGET_LON as the unit holds them


class AdcsUnit:
    """Driver of the ADCS unit; every call is bus I/O on the bus's worker thread."""

    regmap = REGMAP

    def __init__(self, bus: I2CBus, address: int | None = None) -> None:
        self.dev = RegisterDevice(bus, REGMAP.addresses[0] if address is None else address, REGMAP)

    async def probe(self) -> str:
        found = await self.dev.read("WHO_AM_I")
        if found != WHO_AM_I:
            raise DeviceNotFound(f"adcs at {self.dev.address:#04x}: WHO_AM_I {found:#04x}, "
                                 f"expected {WHO_AM_I:#04x}")
        return f"adcs who_am_i={found:#04x}"

    async def set_mode(self, mode: AdcsMode, lat_deg: float = 0.0, lon_deg: float = 0.0) -> None:
        """Command a mode; the target registers are written first, so the unit latches both."""
        if mode is AdcsMode.TARGET_TRACKING:
            if not (-90.0 <= lat_deg <= 90.0 and -180.0 <= lon_deg <= 180.0):
                raise ValueError(f"target ({lat_deg}, {lon_deg}) outside [-90, 90] x [-180, 180]")
            await self.dev.write("TARGET_LAT", to_centideg(lat_deg))
            await self.dev.write("TARGET_LON", to_centideg(lon_deg))
        await self.dev.write("CONTROL", REGMAP["CONTROL"].field("MODE").put(0, int(mode)))

    async def status(self) -> AdcsStatus:
        reg = REGMAP["STATUS"]
        raw = await self.dev.read("STATUS")
        slew = reg.field("SLEW").get(raw)
        error = await self.dev.read("ATT_ERROR")
        off_nadir = await self.dev.read("OFF_NADIR")
        target = (await self.dev.read_signed("TARGET_LAT") / CENTIDEG,
                  await self.dev.read_signed("TARGET_LON") / CENTIDEG)
        mode = reg.field("MODE").get(raw)
        if mode not in AdcsMode._value2member_map_:  # a corrupted read: as the bus reports them
            raise OSError(errno.EIO, f"adcs at {self.dev.address:#04x}: STATUS.MODE {mode} is no mode")
        return AdcsStatus(AdcsMode(mode),
                          SlewStatus(slew) if slew in SlewStatus._value2member_map_ else SlewStatus.FAULT,
                          error / CENTIDEG, off_nadir / CENTIDEG, target)
