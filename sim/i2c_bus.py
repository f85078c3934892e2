"""SimI2CBus: an smbus2.SMBus look-alike that routes transactions to simulated parts.

Why: `hal.i2c.I2CBus` takes anything with the SMBus methods; putting this underneath it means the
flight bus code (worker thread, retries, counters, recovery) and the flight drivers are what run
in simulation. Errors are raised the way Linux raises them: OSError(EREMOTEIO) for a NACK,
OSError(ETIMEDOUT) for a bus held low.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Sequence

from sim.faults import BusFaults, FaultDice
from sim.parts.base import SimPart


def _oserror(code: int) -> OSError:
    return OSError(code, os.strerror(code))


class SimI2CBus:
    def __init__(self, bus_number: int = 1, *, faults: BusFaults | None = None,
                 seed: int | None = None) -> None:
        self.bus_number = bus_number
        self.faults = faults or BusFaults()
        self.dice = FaultDice(seed)
        self.parts: dict[int, SimPart] = {}
        self.transactions = 0
        self.scl_pulses = 0
        self.opened = True
        self._lock = threading.Lock()  # one transfer at a time, like a real adapter

    def attach(self, part: SimPart) -> SimPart:
        if part.address in self.parts:
            raise ValueError(f"sim i2c-{self.bus_number}: address {part.address:#04x} already used "
                             f"by {self.parts[part.address].regmap.part}")
        self.parts[part.address] = part
        return part

    def pulse_scl(self, count: int = 9) -> None:
        """Bus recovery: nine SCL clocks let a slave finish its byte and release SDA."""
        self.scl_pulses += count
        if count >= 9:
            self.faults.stuck = False

    # -- smbus2.SMBus interface -----------------------------------------------------------------
    def open(self, bus: int | str) -> None:
        self.opened = True

    def close(self) -> None:
        self.opened = False

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        return self._read(i2c_addr, register, 1)[0]

    def write_byte_data(self, i2c_addr: int, register: int, value: int,
                        force: bool | None = None) -> None:
        self._write(i2c_addr, register, bytes([value]))

    def read_word_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        data = self._read(i2c_addr, register, 2)
        return data[0] | (data[1] << 8)  # SMBus words are little-endian

    def write_word_data(self, i2c_addr: int, register: int, value: int,
                        force: bool | None = None) -> None:
        self._write(i2c_addr, register, bytes([value & 0xFF, value >> 8]))

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int,
                            force: bool | None = None) -> list[int]:
        if not 1 <= length <= 32:
            raise ValueError(f"block length {length} outside 1..32")
        return list(self._read(i2c_addr, register, length))

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Sequence[int],
                             force: bool | None = None) -> None:
        self._write(i2c_addr, register, bytes(data))

    # -- internals -------------------------------------------------------------------------------
    def _route(self, address: int) -> SimPart:
        # Faults are checked before each roll of the dice: a healthy bus (the common case, a
        # few hundred thousand transactions per simulated day) pays for attribute reads only.
        self.transactions += 1
        faults = self.faults
        if faults.latency_s:
            time.sleep(faults.latency_s)
        if faults.stuck:
            raise _oserror(errno.ETIMEDOUT)
        if faults.nack_probability and self.dice.chance(faults.nack_probability):
            raise _oserror(errno.EREMOTEIO)
        part = self.parts.get(address)
        if part is None or not part.powered:
            raise _oserror(errno.EREMOTEIO)
        part_faults = part.faults
        if part_faults.absent or part_faults.hung:
            raise _oserror(errno.EREMOTEIO)
        if part_faults.latency_s:
            time.sleep(part_faults.latency_s)
        if part_faults.nack_probability and self.dice.chance(part_faults.nack_probability):
            raise _oserror(errno.EREMOTEIO)
        return part

    def _read(self, address: int, register: int, length: int) -> bytes:
        with self._lock:
            part = self._route(address)
            data = part.read(register, length)
            flips = part.faults.bit_flip_probability
            if flips and self.dice.chance(flips):
                flipped = bytearray(data)
                bit = self.dice.randrange(8 * len(flipped))
                flipped[bit // 8] ^= 1 << (bit % 8)
                return bytes(flipped)
            return data

    def _write(self, address: int, register: int, data: bytes) -> None:
        with self._lock:
            self._route(address).write(register, data)
