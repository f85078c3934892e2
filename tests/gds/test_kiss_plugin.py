"""The fprime-gds KISS TCP plugin (flightsw.ground.fprime_kiss) on its own, against a stand-in TNC:
one AX.25 UI frame per write, only the satellite's UI frames read back; found by fprime-gds's
plugin system through this package's entry point. Its run inside a GDS is in test_gds_acceptance."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from importlib.metadata import entry_points

import pytest

from flightsw.link import ax25
from hal import kiss

pytest.importorskip("fprime_gds")

from flightsw.ground.fprime_kiss import KissTcpAdapter  # noqa: E402

SAT = ax25.Address("UN0SAT", 1)
GND = ax25.Address("UN0GND")


@pytest.fixture
def tnc() -> Iterator[tuple[socket.socket, int]]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)
    try:
        yield server, server.getsockname()[1]
    finally:
        server.close()


def test_adapter_carries_frames_in_ui_frames_both_ways(tnc: tuple[socket.socket, int]) -> None:
    server, port = tnc
    adapter = KissTcpAdapter("127.0.0.1", port, "UN0GND", "UN0SAT-1")
    assert adapter.open()
    peer, _ = server.accept()
    peer.settimeout(5)
    try:
        assert adapter.write(b"\xde\xad\xbe\xefcommand")
        (frame,) = kiss.KissDecoder().feed(peer.recv(4096))
        ui = ax25.decode(frame.payload)
        assert (ui.destination, ui.source, ui.info) == (SAT, GND, b"\xde\xad\xbe\xefcommand")
        peer.sendall(kiss.encode(ax25.UiFrame(GND, SAT, b"telemetry-1").encode())
                     + kiss.encode(ax25.UiFrame(GND, ax25.Address("OTHER"), b"not ours").encode())
                     + kiss.encode(b"\x01\x02 not ax25")
                     + kiss.encode(ax25.UiFrame(GND, SAT, b"telemetry-2").encode()))
        received = b""
        for _ in range(20):
            received += adapter.read(timeout=0.2)
            if received.endswith(b"telemetry-2"):
                break
        assert received == b"telemetry-1telemetry-2"
        assert adapter.frames_ignored == 2
        assert not adapter.write(bytes(4096))  # longer than one UI frame takes
    finally:
        peer.close()
        adapter.close()


def test_adapter_reconnects_after_the_tnc_drops_it(tnc: tuple[socket.socket, int]) -> None:
    server, port = tnc
    adapter = KissTcpAdapter("127.0.0.1", port, "UN0GND", "UN0SAT-1")
    assert adapter.open()
    first, _ = server.accept()
    first.close()
    assert adapter.read(timeout=1.0) == b""  # sees the close, drops the socket
    assert adapter.write(b"again")
    second, _ = server.accept()
    second.settimeout(5)
    try:
        (frame,) = kiss.KissDecoder().feed(second.recv(4096))
        assert ax25.decode(frame.payload).info == b"again"
    finally:
        second.close()
        adapter.close()


def test_bad_arguments_are_one_line_and_the_plugin_is_registered() -> None:
    with pytest.raises(ValueError, match="--kiss-channel 16"):
        KissTcpAdapter.check_arguments("127.0.0.1", 8001, "UN0GND", "UN0SAT", 16)
    with pytest.raises(ValueError, match="--kiss-destination"):
        KissTcpAdapter.check_arguments("127.0.0.1", 8001, "UN0GND", "TOOLONGCALL", 0)
    with pytest.raises(ValueError, match="--kiss-port 0"):
        KissTcpAdapter.check_arguments("127.0.0.1", 0, "UN0GND", "UN0SAT", 0)
    (entry,) = [e for e in entry_points(group="fprime_gds") if e.name == "flightsw_kiss_tcp"]
    assert entry.load() is KissTcpAdapter
    from fprime_gds.plugin.system import Plugins

    names = [plugin.get_name() for plugin in Plugins.system().get_plugins("communication")]
    assert "kiss-tcp" in names
