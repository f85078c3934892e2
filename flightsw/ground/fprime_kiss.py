"""A communication plugin for fprime-gds: an amateur TNC over KISS TCP, one AX.25 UI frame per GDS write.

Why: an F Prime team with an amateur-band satellite and a software or hardware TNC (direwolf's
KISS port, a serial TNC behind a KISS TCP bridge) can run the stock GDS straight on the radio.
It is an fprime-gds plugin (entry point group ``fprime_gds`` of this package, the ``gds`` extra):
``fprime-gds --communication-selection kiss-tcp --kiss-address 127.0.0.1 --kiss-port 8001
--kiss-source N0CALL --kiss-destination N0SAT``. The framing plugin chosen with it
(``--framing-selection``) still frames F Prime's packets; this adapter only carries those bytes:
each write is one UI frame from ``--kiss-source`` to ``--kiss-destination`` (the callsign
identifies the station, as amateur rules require); what arrives is the information field of the
UI frames from ``--kiss-destination`` (frames from other stations are ignored).

fprime-gds calls adapters from its own threads with blocking reads and writes, so this one uses a
plain blocking socket; it reconnects when the TNC drops the connection.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
from typing import Any

from fprime_gds.common.communication.adapters.base import BaseAdapter
from fprime_gds.plugin.definitions import gds_plugin_implementation

from flightsw.link import ax25
from hal import kiss

log = logging.getLogger("flightsw.ground.fprime_kiss")

MAX_INFO = 2048  # direwolf's KISS input limit for one frame; longer writes are refused


class KissTcpAdapter(BaseAdapter):  # type: ignore[misc]
    """fprime-gds adapter: F Prime's framed bytes in AX.25 UI frames over a KISS TCP TNC."""

    # Keyword names are the argparse destinations, unique across every fprime-gds plugin (one namespace).
    def __init__(self, kiss_address: str, kiss_tcp_port: int, kiss_source: str, kiss_destination: str,
                 kiss_channel: int = 0) -> None:
        self.address, self.port = kiss_address, kiss_tcp_port
        self.source = ax25.Address.parse(kiss_source)
        self.destination = ax25.Address.parse(kiss_destination)
        self.kiss_port = kiss_channel
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()  # the GDS reads and writes from different threads
        self._decoder = kiss.KissDecoder(max_frame=MAX_INFO + 64)
        self.frames_ignored = 0

    def open(self) -> bool:
        with self._lock:
            return self._connect()

    def _connect(self) -> bool:
        if self._sock is not None:
            return True
        try:
            self._sock = socket.create_connection((self.address, self.port), timeout=2.0)
        except OSError as exc:
            log.warning("KISS TNC %s:%d: %s", self.address, self.port, exc)
            return False
        self._decoder = kiss.KissDecoder(max_frame=MAX_INFO + 64)
        return True

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        with self._lock:
            self._drop()

    def read(self, timeout: float = 0.500) -> bytes:
        """The information fields of the satellite's UI frames received within ``timeout``."""
        with self._lock:
            if not self._connect():
                return b""
            sock = self._sock
        assert sock is not None
        try:
            ready, _, _ = select.select([sock], [], [], timeout)
            if not ready:
                return b""
            chunk = sock.recv(4096)
        except (OSError, ValueError):
            chunk = b""
        if not chunk:
            with self._lock:
                if self._sock is sock:
                    self._drop()
            return b""
        out = bytearray()
        for frame in self._decoder.feed(chunk):
            if frame.command != kiss.KissCommand.DATA or frame.port != self.kiss_port:
                continue
            try:
                ui = ax25.decode(frame.payload)
            except ax25.Ax25Error:
                self.frames_ignored += 1
                continue
            if ui.source != self.destination:
                self.frames_ignored += 1
                continue
            out += ui.info
        return bytes(out)

    def write(self, frame: bytes) -> bool:
        """One UI frame to the satellite carrying ``frame``; False if too long or no TNC."""
        if len(frame) > MAX_INFO:
            log.warning("frame of %d bytes does not fit one AX.25 UI frame (at most %d)", len(frame), MAX_INFO)
            return False
        data = kiss.encode(ax25.UiFrame(self.destination, self.source, bytes(frame)).encode(), port=self.kiss_port)
        with self._lock:
            if not self._connect():
                return False
            sock = self._sock
            assert sock is not None
            try:
                sock.sendall(data)
            except OSError:
                self._drop()
                return False
        return True

    @classmethod
    def get_name(cls) -> str:
        return "kiss-tcp"

    @classmethod
    def get_arguments(cls) -> dict[tuple[str, ...], dict[str, Any]]:
        return {
            ("--kiss-address",): {"dest": "kiss_address", "type": str, "default": "127.0.0.1",
                                  "help": "KISS TCP TNC address (direwolf's KISSPORT host)"},
            ("--kiss-port",): {"dest": "kiss_tcp_port", "type": int, "default": 8001, "help": "KISS TCP TNC port"},
            ("--kiss-source",): {"dest": "kiss_source", "type": str, "default": "N0CALL",
                                 "help": "this station's callsign (AX.25 source of uplink frames)"},
            ("--kiss-destination",): {"dest": "kiss_destination", "type": str, "default": "N0SAT",
                                      "help": "the satellite's callsign: uplink destination, the only downlink source taken"},
            ("--kiss-channel",): {"dest": "kiss_channel", "type": int, "default": 0, "help": "KISS port (channel) 0-15"},
        }

    @classmethod
    def check_arguments(cls, kiss_address: str, kiss_tcp_port: int, kiss_source: str, kiss_destination: str,
                        kiss_channel: int = 0) -> None:
        """ValueError naming the bad argument (the GDS prints it and stops)."""
        if not 0 < kiss_tcp_port < 65536:
            raise ValueError(f"--kiss-port {kiss_tcp_port} is not a TCP port")
        if not 0 <= kiss_channel <= 15:
            raise ValueError(f"--kiss-channel {kiss_channel} is not a KISS port (0-15)")
        for flag, text in (("--kiss-source", kiss_source), ("--kiss-destination", kiss_destination)):
            try:
                ax25.Address.parse(text)
            except ValueError as exc:
                raise ValueError(f"{flag} {text!r}: {exc}") from None

    @classmethod
    @gds_plugin_implementation  # type: ignore[misc]
    def register_communication_plugin(cls) -> type[KissTcpAdapter]:
        return cls
