"""Watchdog backends: systemd's service watchdog (sd_notify) and the kernel's /dev/watchdog.

Both are driven by the health monitor (``flightsw.core.health``), which pets only while every
critical task shows progress. ``ready()`` is sent once the satellite is up, ``stopping()`` on a clean
stop (for /dev/watchdog that is the magic close, so a clean stop does not reset the board).
"""

from __future__ import annotations

import logging
import os
import socket

from flightsw.core.health import (
    Watchdog as Watchdog,  # the interface health drives, declared in the core
)

log = logging.getLogger("hal.watchdog")




class NullWatchdog:
    """No watchdog (laptop runs without systemd)."""

    def ready(self) -> None:
        pass

    def pet(self) -> None:
        pass

    def status(self, text: str) -> None:
        pass

    def stopping(self) -> None:
        pass


def sd_notify(message: str, socket_path: str | None = None) -> bool:
    """Send one datagram to $NOTIFY_SOCKET (abstract names start with '@'); False if unset."""
    path = socket_path if socket_path is not None else os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
    return True


class SystemdWatchdog:
    """sd_notify protocol: READY=1, WATCHDOG=1, STATUS=..., STOPPING=1.

    The pet interval must be below systemd's WatchdogSec; :meth:`interval` reads WATCHDOG_USEC and
    returns half of it, the rule systemd documents.
    """

    def __init__(self, socket_path: str | None = None) -> None:
        self.socket_path = socket_path or os.environ.get("NOTIFY_SOCKET")
        if not self.socket_path:
            raise RuntimeError("systemd watchdog configured but NOTIFY_SOCKET is not set (not under systemd?)")
        self.errors = 0

    @staticmethod
    def interval(default: float = 5.0) -> float:
        usec = os.environ.get("WATCHDOG_USEC")
        return int(usec) / 2e6 if usec and usec.isdigit() and int(usec) > 0 else default

    def _send(self, message: str) -> None:
        try:
            sd_notify(message, self.socket_path)
        except OSError as exc:  # systemd restarting, socket gone: keep flying, count it
            self.errors += 1
            log.warning("sd_notify %r failed: %s", message, exc)

    def ready(self) -> None:
        self._send("READY=1")

    def pet(self) -> None:
        self._send("WATCHDOG=1")

    def status(self, text: str) -> None:
        self._send("STATUS=" + text.replace("\n", " ")[:200])

    def stopping(self) -> None:
        self._send("STOPPING=1")


class DevWatchdog:
    """The kernel watchdog device. Opening it arms it; only the magic 'V' close disarms it."""

    def __init__(self, path: str = "/dev/watchdog") -> None:
        self.path = path
        self._fd: int | None = None

    def ready(self) -> None:
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise RuntimeError(f"cannot open watchdog device {self.path}: {exc}") from exc

    def pet(self) -> None:
        if self._fd is not None:
            os.write(self._fd, b"\0")

    def status(self, text: str) -> None:
        pass

    def stopping(self) -> None:
        if self._fd is not None:
            os.write(self._fd, b"V")
            os.close(self._fd)
            self._fd = None


class CompositeWatchdog:
    """Pet several watchdogs from one health decision (systemd and the hardware device)."""

    def __init__(self, *dogs: Watchdog) -> None:
        self.dogs = dogs

    def ready(self) -> None:
        for d in self.dogs:
            d.ready()

    def pet(self) -> None:
        for d in self.dogs:
            d.pet()

    def status(self, text: str) -> None:
        for d in self.dogs:
            d.status(text)

    def stopping(self) -> None:
        for d in self.dogs:
            d.stopping()
