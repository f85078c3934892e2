"""Async I2C bus over smbus2 with one worker thread per bus.

Why: an I2C transaction is a blocking ioctl that can hang for the kernel driver's timeout when a
part misbehaves. Running every transaction of one bus on that bus's own thread keeps the event
loop free and serialises access (the adapter does one transfer at a time anyway). Transient bus
errors (NACK, EREMOTEIO, timeouts, lost arbitration) are retried with exponential back-off and
counted per device so that the ground sees a part degrading before it dies; repeated bus-level
failures trigger a recovery step (close/reopen the adapter, clock out SCL) for a stuck bus.

The object under the bus is anything with the smbus2 `SMBus` methods below, so the simulator's
`SimI2CBus` slots in underneath and the driver code tested on a laptop is the code that flies.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: errno values meaning "the device did not answer" (NACK) -> retry, count against the device.
DEVICE_ERRNOS = frozenset({errno.EREMOTEIO, errno.ENXIO, errno.EIO})
#: errno values meaning "the bus itself is in trouble" -> retry, and recover after a streak.
BUS_ERRNOS = frozenset({errno.ETIMEDOUT, errno.EAGAIN, errno.EBUSY})


class SMBusLike(Protocol):
    """The subset of smbus2.SMBus the drivers use (the simulator implements the same)."""

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int: ...

    def write_byte_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None: ...

    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: bool | None = None
    ) -> list[int]: ...

    def write_i2c_block_data(
        self, i2c_addr: int, register: int, data: Sequence[int], force: bool | None = None
    ) -> None: ...

    def close(self) -> None: ...


class I2CError(OSError):
    """A transaction that still failed after every retry."""

    def __init__(self, bus: str, address: int, operation: str, reason: str, code: int | None):
        super().__init__(code or errno.EIO, f"{bus} addr {address:#04x} {operation}: {reason}")
        self.bus = bus
        self.address = address
        self.operation = operation
        self.reason = reason


@dataclass
class DeviceStats:
    """Per-device counters, published as telemetry by the component that owns the device."""

    transactions: int = 0
    errors: int = 0  # failed attempts, including ones a retry later fixed
    retries: int = 0
    failures: int = 0  # transactions that failed after every retry
    timeouts: int = 0
    last_error: str = ""


@dataclass
class BusStats:
    recoveries: int = 0
    consecutive_bus_errors: int = 0


class I2CBus:
    """One physical (or simulated) I2C adapter; all its transactions run on one thread."""

    def __init__(
        self,
        name: str,
        open_smbus: Callable[[], SMBusLike],
        *,
        timeout: float = 0.5,
        retries: int = 3,
        backoff: float = 0.002,
        recover_after: int = 3,
        recovery_hook: Callable[[], None] | None = None,
    ) -> None:
        if retries < 0 or timeout <= 0 or backoff < 0 or recover_after < 1:
            raise ValueError(
                f"I2C bus {name}: bad settings retries={retries} timeout={timeout} "
                f"backoff={backoff} recover_after={recover_after}"
            )
        self.name = name
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.recover_after = recover_after
        self._open_smbus = open_smbus
        self._recovery_hook = recovery_hook
        self._smbus: SMBusLike | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"i2c-{name}")
        # Start the worker thread now (normally at build time, before the loop runs), so the
        # first transaction does not pay for a thread start inside a loop callback.
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._executor.submit(int).result()
        self._devices: dict[int, DeviceStats] = {}
        self.bus_stats = BusStats()
        self._closed = False

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The bus's own worker (a virtual-time simulation may run a simulated bus's calls inline)."""
        return self._executor

    # -- counters --------------------------------------------------------------------------
    def stats(self, address: int) -> DeviceStats:
        stats = self._devices.get(address)
        if stats is None:
            stats = self._devices[address] = DeviceStats()
        return stats

    # -- public transactions ---------------------------------------------------------------
    async def read_byte_data(self, address: int, register: int) -> int:
        return await self._transact(address, "read_byte_data", register)

    async def write_byte_data(self, address: int, register: int, value: int) -> None:
        if not 0 <= value <= 0xFF:
            raise ValueError(f"byte value {value} out of range for register {register:#04x}")
        await self._transact(address, "write_byte_data", register, value)

    async def read_block(self, address: int, register: int, length: int) -> bytes:
        if not 1 <= length <= 32:
            raise ValueError(f"block length {length} must be 1..32 (SMBus limit)")
        data = await self._transact(address, "read_i2c_block_data", register, length)
        if len(data) != length:
            raise I2CError(self.name, address, "read", f"short read {len(data)}/{length}", errno.EIO)
        return bytes(data)

    async def write_block(self, address: int, register: int, data: bytes | Sequence[int]) -> None:
        payload = list(bytes(data))
        if not 1 <= len(payload) <= 32:
            raise ValueError(f"block length {len(payload)} must be 1..32 (SMBus limit)")
        await self._transact(address, "write_i2c_block_data", register, payload)

    async def recover(self) -> None:
        """Recovery for a stuck bus: close the adapter, run the hook (SCL pulses), reopen."""
        self.bus_stats.recoveries += 1
        log.warning("I2C bus %s: running bus recovery #%d", self.name, self.bus_stats.recoveries)
        await asyncio.get_running_loop().run_in_executor(self._executor, self._recover_on_worker)
        self.bus_stats.consecutive_bus_errors = 0

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close_on_worker)
        self._executor.shutdown(wait=False)

    # -- internals ---------------------------------------------------------------------------
    async def _transact(self, address: int, method: str, *args: Any) -> Any:
        if self._closed:
            raise I2CError(self.name, address, _label(method, args), "bus closed", errno.EBADF)
        if not 0x03 <= address <= 0x77:
            raise ValueError(f"I2C address {address:#x} outside the 7-bit range 0x03..0x77")
        loop = asyncio.get_running_loop()
        stats = self.stats(address)
        stats.transactions += 1
        last_reason = ""
        last_code: int | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                stats.retries += 1
                await asyncio.sleep(self.backoff * (2 ** (attempt - 1)))
            # run_in_executor (not executor.submit) so a virtual-time loop sees the work in flight
            future = loop.run_in_executor(self._executor, self._call_on_worker, method, address, *args)
            try:
                # a call that already completed (a virtual-time simulation runs simulated buses
                # inline) needs no timeout timer and no extra loop iteration
                if future.done():
                    result = future.result()
                else:
                    # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                    # that arrives as the transaction completes (a service would then never stop).
                    async with asyncio.timeout(self.timeout):
                        result = await future
            except TimeoutError as exc:  # ours (errno None) or the adapter's ETIMEDOUT
                stats.errors += 1
                stats.timeouts += 1
                last_reason = (f"ETIMEDOUT ({exc.strerror})" if exc.errno is not None
                               else f"timeout after {self.timeout:.3f} s (transaction hung)")
                last_code = errno.ETIMEDOUT
                await self._note_bus_error()
            except OSError as exc:
                stats.errors += 1
                last_reason = f"{errno.errorcode.get(exc.errno or 0, 'EIO')} ({exc.strerror or exc})"
                last_code = exc.errno
                if exc.errno in BUS_ERRNOS:
                    await self._note_bus_error()
            else:
                self.bus_stats.consecutive_bus_errors = 0
                return result
            stats.last_error = last_reason
        stats.failures += 1
        raise I2CError(self.name, address, _label(method, args), last_reason, last_code)

    async def _note_bus_error(self) -> None:
        self.bus_stats.consecutive_bus_errors += 1
        if self.bus_stats.consecutive_bus_errors >= self.recover_after:
            await self.recover()

    def _call_on_worker(self, method: str, address: int, *args: Any) -> Any:
        if self._smbus is None:
            self._smbus = self._open_smbus()
        return getattr(self._smbus, method)(address, *args)

    def _recover_on_worker(self) -> None:
        self._close_on_worker()
        if self._recovery_hook is not None:
            try:
                self._recovery_hook()
            except Exception:  # recovery is best effort; the next transaction reports the outcome
                log.exception("I2C bus %s: recovery hook failed", self.name)

    def _close_on_worker(self) -> None:
        if self._smbus is not None:
            try:
                self._smbus.close()
            finally:
                self._smbus = None


def _label(method: str, args: tuple[Any, ...]) -> str:
    """What a failed transaction was, for its error message (formatted only on failure)."""
    register = args[0]
    verb = "read" if method.startswith("read") else "write"
    if method == "read_i2c_block_data":
        return f"read {args[1]}B @{register:#04x}"
    if method == "write_i2c_block_data":
        return f"write {len(args[1])}B @{register:#04x}"
    return f"{verb} {register:#04x}"


def open_linux_bus(bus_number: int) -> Callable[[], SMBusLike]:
    """Factory opening /dev/i2c-N through smbus2 (imported here so the sim needs no adapter)."""

    def _open() -> SMBusLike:
        import smbus2

        return smbus2.SMBus(bus_number)

    return _open


def pinctrl_scl_pulses(scl_gpio: int = 3, pulses: int = 9) -> Callable[[], None]:
    """Raspberry Pi recovery hook: clock SCL 9 times so a slave holding SDA low lets go.

    Uses Raspberry Pi OS's `pinctrl` to take the pin out of its I2C function, toggle it as an
    open-drain style output, then hand it back to ALT0 (I2C). Runs on the bus worker thread.
    """

    def _pulse() -> None:
        def run(*args: str) -> None:
            subprocess.run(["pinctrl", "set", str(scl_gpio), *args], check=True, timeout=2.0)

        try:
            for _ in range(pulses):
                run("op", "dl")
                time.sleep(5e-6)
                run("op", "dh")
                time.sleep(5e-6)
        finally:
            run("a0")

    return _pulse
