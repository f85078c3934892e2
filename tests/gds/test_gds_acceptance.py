"""Acceptance: the simulated satellite, the ground station bridged by `flightsw ground --gds`, and a
headless F Prime GDS (fprime-gds's own processes, no browser), each in its own process; the test
drives the GDS through its IntegrationTestAPI as an F Prime team's tests would.

fprime-gds defects wrapped here: IntegrationTestAPI copies ``<dictionary>/../../{bin,dict}`` into
its log path (a dictionary two levels below / copies /bin), so it gets no log path; a GDS log
directory that already exists makes the launcher fail, so each run gets a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from flightsw.core.clock import Stamp
from flightsw.ground.decoder import Beacon
from flightsw.ground.fprime_dict import FprimeDictionary
from flightsw.ground.gds import BridgeStats, Deframer, GdsEncoder, decode_command, frame
from flightsw.link import ax25
from hal import kiss

pytest.importorskip("fprime_gds")

ROOT = Path(__file__).resolve().parents[2]
FLIGHTSW = [sys.executable, "-m", "flightsw.cli"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _processes_naming(path: Path) -> dict[int, str]:
    """Live processes (not zombies) whose command line names ``path``: what a test started in its
    directory (the simulator, the GDS and its children, the bridge, Chromium and its helpers)."""
    found: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if str(path) in cmdline and state != "Z":
            found[int(proc.name)] = cmdline
    return found


@pytest.fixture(autouse=True)
def no_leftover_processes(tmp_path: Path) -> Iterator[None]:
    """Every process a test started is gone when it ends: leftovers are killed, and fail the test."""
    yield
    deadline = time.monotonic() + 10  # a process killed a moment ago may still be exiting (slow I/O)
    while (left := _processes_naming(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"processes outlived the test: {left}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(tmp_path: Path, port: int) -> Path:
    text = (ROOT / "deploy" / "sim.toml").read_text()
    text = text.replace('data_dir = "var/sim"', f'data_dir = "{tmp_path / "sat"}"')
    text = text.replace("kiss_tcp_port = 8001", f"kiss_tcp_port = {port}")
    text = text.replace("fsync = true", "fsync = false")
    path = tmp_path / "sim.toml"
    path.write_text(text)
    return path


async def _wait_for(predicate: Any, what: str, limit: float, procs: list[asyncio.subprocess.Process]) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` (or a process that died) after ``limit`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not await predicate():
        for proc in procs:
            assert proc.returncode is None, f"a process died while waiting for {what}"
        assert loop.time() < deadline, f"no {what} after {limit} s"
        await asyncio.sleep(0.1)


async def _port_open(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


@contextlib.asynccontextmanager
async def _process(*argv: str, log: Path, cwd: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """A process in its own process group (the GDS launcher starts children), killed with its group."""
    with open(log, "wb") as out:
        proc = await asyncio.create_subprocess_exec(*argv, cwd=cwd, env=ENV, stdout=out, stderr=subprocess.STDOUT,
                                                    stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # children the launcher left behind


@contextlib.contextmanager
def _test_api(dictionary: Path, zmq: list[str], logs: Path) -> Iterator[Any]:
    from fprime_gds.common.testing_fw.api import IntegrationTestAPI
    from fprime_gds.executables.cli import ConfigDrivenParser, StandardPipelineParser

    args, _, _ = ConfigDrivenParser.parse_known_args(
        [StandardPipelineParser], client=True,
        arguments=["--dictionary", str(dictionary), "--zmq-transport", *zmq, "-l", str(logs), "--log-directly",
                   "--file-storage-directory", str(logs / "files")])
    pipeline = StandardPipelineParser().pipeline_factory(args, None)
    api = IntegrationTestAPI(pipeline, None, None)
    try:
        api.setup()
        yield api
    finally:
        api.teardown()
        pipeline.disconnect()


def _fprime_dictionary(config: Path) -> str:
    """What `flightsw dict --format fprime` prints (blocking: run on a thread)."""
    from flightsw.cli import load_config_or_exit
    from flightsw.cli_run import dictionary_text

    return dictionary_text(load_config_or_exit(config, check=False), "fprime")


def _operate(dictionary: Path, zmq: list[str], tmp_path: Path) -> None:
    """What an operator's F Prime test does, through the GDS only (blocking API: run on a thread)."""
    with _test_api(dictionary, zmq, tmp_path / "api-logs") as api:
        # a battery voltage, downlinked in housekeeping, through bridge and GDS
        voltage = api.await_telemetry("eps_battery.bus_voltage", timeout=30)
        assert voltage is not None, (tmp_path / "bridge.log").read_text()[-2000:]
        assert 5.0 < voltage.get_val() < 9.0
        assert voltage.time.timeBase.val in ("TB_SC_TIME", "TB_PROC_TIME")
        # a no-op: the satellite's verdict and completion, and the event it raised on board
        no_op = api.get_event_pred("ground.command_completed", ["exec.NO_OP", None, "SUCCESS", None])
        assert api.send_and_await_event("exec.NO_OP", [], no_op, timeout=20) is not None
        assert api.await_event("ground.command_verdict", ["exec.NO_OP", None, "OK", None], start=0,
                               timeout=1) is not None
        assert api.await_event("cmd.executed", ["exec.NO_OP"], start=0, timeout=10) is not None
        # a parameter set, verdict and completion seen from the satellite
        param = api.get_event_pred("ground.command_completed", ["link.SET_BEACON_PERIOD", None, "SUCCESS", None])
        assert api.send_and_await_event("link.SET_BEACON_PERIOD", ["45"], param, timeout=20) is not None
        assert api.await_event("cmd.executed", ["link.SET_BEACON_PERIOD"], start=0, timeout=10) is not None
        # an argument out of range never leaves the ground: the station refuses it, the GDS hears why
        refused = api.get_event_pred("ground.command_refused", ["link.SET_BEACON_PERIOD", None])
        found = api.send_and_await_event("link.SET_BEACON_PERIOD", ["2"], refused, timeout=10)
        assert found is not None and "outside" in found.get_str()
        # a camera thumbnail: captured on board, downlinked by CFDP by itself, byte-identical in the GDS's
        # downlink files and in the station's downloads
        captured = api.get_event_pred("ground.command_completed", ["imaging.CAPTURE_NOW", None, "SUCCESS", None])
        assert api.send_and_await_event("imaging.CAPTURE_NOW", [], captured, timeout=20) is not None
        name = "img000001_thumbnail.jpg"
        arrived = tmp_path / "downloads" / name  # the station's verified copy
        gds_copy = tmp_path / "api-logs" / "files" / "fprime-downlink" / name
        on_board = [p for p in (tmp_path / "sat").rglob("00000001/thumb.jpg") if p.is_file()]  # the image store
        assert len(on_board) == 1, on_board
        thumbnail = on_board[0].read_bytes()
        assert thumbnail.startswith(b"\xff\xd8") and len(thumbnail) > 200  # a JPEG, not an empty file
        deadline = time.monotonic() + 30
        while not (arrived.exists() and gds_copy.exists() and gds_copy.stat().st_size == len(thumbnail)):
            assert time.monotonic() < deadline, "the thumbnail did not reach both the station and the GDS"
            time.sleep(0.1)
        assert gds_copy.read_bytes() == thumbnail
        assert arrived.read_bytes() == thumbnail
        # played-back records: the satellite's first housekeeping records come again, each with the time
        # tag it was recorded with: older than anything that came live (recorded before the bridge
        # connected) or the very (channel, time, value) the GDS already had live
        history = api.get_telemetry_test_history()
        live = history.retrieve()
        seen = {_sample(ch) for ch in live}
        first_live = min(ch.time.get_float() for ch in live)
        played = api.get_event_pred("ground.command_completed", ["playback.REQUEST", None, "SUCCESS", None])
        assert api.send_and_await_event("playback.REQUEST", ["1", "0", "20", "1", ""], played, timeout=20) is not None
        again = _Predicate("a played-back sample", lambda ch: _sample(ch) in seen or ch.time.get_float() < first_live)
        assert api.find_history_item(again, history, start=len(live), timeout=20) is not None
        # a file the GDS uplinks goes up by CFDP (the station's signed file PDUs) into the quarantine
        upload = tmp_path / "note.txt"
        upload.write_bytes(b"uplinked from the F Prime GDS\n" * 40)
        api.uplink_file(str(upload), "/flightsw/note.txt")  # (its *_and_await_completion waits for F Prime's FileUplink event)
        done = api.get_event_pred("ground.file_uplink_done", ["note.txt", None, "SUCCESS"])
        assert api.await_event(done, start=0, timeout=30) is not None
        on_board = [p for p in (tmp_path / "sat").rglob("note.txt") if p.is_file()]
        assert [p.read_bytes() for p in on_board] == [upload.read_bytes()], on_board


def _sample(ch: Any) -> tuple[str, str, int, int, str]:
    """A telemetry update as (channel, time base, seconds, microseconds, value)."""
    t = ch.time
    return ch.template.get_full_name(), str(t.timeBase.val), t.seconds, t.useconds, str(ch.get_val())


class _Predicate:
    """An fprime-gds test-API predicate (a callable with a description) for a whole history item."""

    def __init__(self, text: str, test: Any) -> None:
        self.text, self.test = text, test

    def __call__(self, item: Any) -> bool:
        return bool(self.test(item))

    def __str__(self) -> str:
        return self.text


@pytest.mark.timeout(90)
async def test_gds_sees_telemetry_commands_and_events_of_the_simulated_satellite(tmp_path: Path) -> None:
    kiss_port, gds_port = _free_port(), _free_port()
    config = _config(tmp_path, kiss_port)
    dictionary = tmp_path / "gds" / "flightsw.json"
    dictionary.parent.mkdir()
    text = await asyncio.to_thread(_fprime_dictionary, config)
    dictionary.write_text(text)
    assert json.loads(text)["metadata"]["deploymentName"] == "flightsw"
    zmq = [f"ipc://{tmp_path}/gds-in", f"ipc://{tmp_path}/gds-out"]
    gds_log = tmp_path / "gds.log"

    async def gds_running() -> bool:
        return "F prime is now running" in gds_log.read_text(errors="replace")

    async with (
        _process(*FLIGHTSW, "sim", "--config", str(config), "--duration", "80", log=tmp_path / "sim.log",
                 cwd=tmp_path) as sat,
        _process(sys.executable, "-m", "fprime_gds.executables.run_deployment", "--no-app", "-g", "none",
                 "--dictionary", str(dictionary), "--communication-selection", "ip", "--ip-address", "127.0.0.1",
                 "--ip-port", str(gds_port), "--framing-selection", "fprime", "--zmq-transport", *zmq,
                 "-l", str(tmp_path / "gds-logs"), "--log-directly",
                 "--file-storage-directory", str(tmp_path / "gds-files"), log=gds_log, cwd=tmp_path) as gds,
    ):
        await _wait_for(lambda: _port_open(kiss_port), "simulated transceiver KISS port", 30, [sat])
        await _wait_for(gds_running, "running GDS", 30, [gds])
        async with _process(*FLIGHTSW, "ground", "--config", str(config), "--kiss", f"127.0.0.1:{kiss_port}",
                            "--db", str(tmp_path / "ground.sqlite3"), "--gds", f"127.0.0.1:{gds_port}",
                            log=tmp_path / "bridge.log", cwd=tmp_path) as bridge:
            await asyncio.to_thread(_operate, dictionary, zmq, tmp_path)
            for proc in (sat, gds, bridge):
                assert proc.returncode is None


def _await_voltage_then_command(dictionary: Path, zmq: list[str], logs: Path) -> float:
    """Through the GDS: a battery voltage that came in over KISS, then a command that goes out by it."""
    with _test_api(dictionary, zmq, logs) as api:
        voltage = api.await_telemetry("beacon.battery_voltage", timeout=20)
        assert voltage is not None
        api.send_command("link.SET_BEACON_PERIOD", ["45"])
        return float(voltage.get_val())


@pytest.mark.timeout(60)
async def test_kiss_plugin_runs_the_gds_over_a_kiss_tcp_peer(tmp_path: Path) -> None:
    """fprime-gds with ``--communication-selection kiss-tcp`` (this package's plugin) against a KISS TCP
    peer standing in for the TNC: telemetry in UI frames from the satellite reaches the test API, a
    command from it leaves as one UI frame to the satellite."""
    sat, gnd = ax25.Address("UN0SAT", 1), ax25.Address("UN0GND")
    dictionary = tmp_path / "gds" / "flightsw.json"
    dictionary.parent.mkdir()
    text = await asyncio.to_thread(_fprime_dictionary, ROOT / "deploy" / "sim.toml")
    dictionary.write_text(text)
    flight = await asyncio.to_thread(_flight_dictionary)
    fdict = FprimeDictionary(flight)
    encoder = GdsEncoder(fdict, BridgeStats())
    uplinked: asyncio.Queue[bytes] = asyncio.Queue()
    writers: list[asyncio.StreamWriter] = []

    async def tnc(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        decoder, deframer = kiss.KissDecoder(), Deframer()
        while data := await reader.read(4096):
            for kframe in decoder.feed(data):
                ui = ax25.decode(kframe.payload)
                assert (ui.destination, ui.source) == (sat, gnd)
                for packet in deframer.feed(ui.info):
                    uplinked.put_nowait(packet)

    server = await asyncio.start_server(tnc, "127.0.0.1", 0)
    tnc_port = server.sockets[0].getsockname()[1]
    zmq = [f"ipc://{tmp_path}/gds-in", f"ipc://{tmp_path}/gds-out"]
    gds_log = tmp_path / "gds.log"

    async def gds_running() -> bool:
        return "F prime is now running" in gds_log.read_text(errors="replace") and bool(writers)

    try:
        async with _process(sys.executable, "-m", "fprime_gds.executables.run_deployment", "--no-app", "-g", "none",
                            "--dictionary", str(dictionary), "--communication-selection", "kiss-tcp",
                            "--kiss-address", "127.0.0.1", "--kiss-port", str(tnc_port), "--kiss-source", "UN0GND",
                            "--kiss-destination", "UN0SAT-1", "--framing-selection", "fprime", "--zmq-transport", *zmq,
                            "-l", str(tmp_path / "gds-logs"), "--log-directly",
                            "--file-storage-directory", str(tmp_path / "gds-files"), log=gds_log, cwd=tmp_path) as gds:
            await _wait_for(gds_running, "GDS connected to the KISS peer", 30, [gds])
            operator = asyncio.create_task(asyncio.to_thread(
                _await_voltage_then_command, dictionary, zmq, tmp_path / "api-logs"))
            seconds = 0.0
            while not operator.done():  # the satellite's beacon, over and over, as a TNC hears it
                (packet,) = encoder.packets(Beacon(Stamp(1, seconds), {"battery_voltage": 7.25}))
                ui = ax25.UiFrame(gnd, sat, frame(packet)).encode()
                writers[-1].write(kiss.encode(ax25.UiFrame(ax25.Address("OTHER"), gnd, b"x").encode()) + kiss.encode(ui))
                await asyncio.wait([operator], timeout=0.2)
                seconds += 0.2
            assert await operator == pytest.approx(7.25)
            async with asyncio.timeout(10):
                packet = await uplinked.get()
            command, texts = decode_command(fdict, packet)
            assert (command.name, texts) == ("link.SET_BEACON_PERIOD", {"value": "45"})
    finally:
        server.close()
        for writer in writers:
            writer.close()


def _flight_dictionary() -> dict[str, Any]:
    from flightsw.cli import default_sim_config, load_config_or_exit
    from flightsw.cli_run import dictionary_text

    return json.loads(dictionary_text(load_config_or_exit(default_sim_config(), check=False), "json"))


BROWSER_TEST = os.environ.get("FLIGHTSW_BROWSER_TEST") == "1"


def _browser() -> tuple[str, str]:
    """The Chromium and chromedriver on PATH (Debian: chromium, chromium-driver; some distributions
    name the browser chromium-browser)."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    assert binary and driver, "Chromium or chromedriver missing: make gds-browser-test installs them"
    return binary, driver


def _browser_sees_channel(url: str, screenshot: Path) -> str:
    """Headless Chromium (Debian's chromium and chromium-driver, through Selenium) opens the web UI's
    Channels tab and waits for a battery voltage; returns the row's text (blocking: run on a thread).
    chromedriver runs in a process group of its own, killed with the browser in it whatever happens."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    binary, driver_path = _browser()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                 f"--user-data-dir={screenshot.parent / 'chromium-profile'}"):
        options.add_argument(flag)
    service = Service(driver_path, log_output=str(screenshot.parent / "chromedriver.log"),
                      popen_kw={"start_new_session": True})
    try:
        driver = webdriver.Chrome(options=options, service=service)
    except BaseException:
        _kill_group(service)
        raise
    try:
        try:
            driver.get(url)
            tab = WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "Channels"))  # the tab's label
            tab.click()

            def voltage_row(d: Any) -> str | None:
                for row in d.find_elements(By.XPATH, "//tr[td[contains(., 'eps_battery.bus_voltage')]]"):
                    text = str(row.text)
                    if row.is_displayed() and any(ch.isdigit() for ch in text.split("eps_battery.bus_voltage")[-1]):
                        d.execute_script("arguments[0].scrollIntoView({block: 'center'})", row)  # in the screenshot
                        return text
                return None

            try:
                row = WebDriverWait(driver, 30).until(voltage_row)
            finally:
                driver.save_screenshot(str(screenshot))
                screenshot.with_suffix(".html").write_text(driver.page_source)
            return str(row)
        finally:
            driver.quit()
    finally:
        _kill_group(service)


def _kill_group(service: Any) -> None:
    """SIGKILL chromedriver's process group: the browser and its helpers if ``quit`` left any."""
    process = getattr(service, "process", None)
    if process is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.mark.skipif(not BROWSER_TEST, reason="headless browser test: make gds-browser-test")
@pytest.mark.timeout(120)
async def test_web_ui_in_headless_chromium_shows_a_live_channel(tmp_path: Path) -> None:
    """The GDS web UI on 127.0.0.1, fed by the simulated satellite through `flightsw ground --gds`,
    shows a live battery voltage in headless Chromium; the screenshot is kept in the test's directory."""
    kiss_port, gds_port, gui_port = _free_port(), _free_port(), _free_port()
    config = _config(tmp_path, kiss_port)
    dictionary = tmp_path / "gds" / "flightsw.json"
    dictionary.parent.mkdir()
    dictionary.write_text(await asyncio.to_thread(_fprime_dictionary, config))
    gds_log = tmp_path / "gds.log"

    async def gds_running() -> bool:
        return "F prime is now running" in gds_log.read_text(errors="replace") and await _port_open(gui_port)

    async with (
        _process(*FLIGHTSW, "sim", "--config", str(config), "--duration", "110", log=tmp_path / "sim.log",
                 cwd=tmp_path) as sat,
        _process(sys.executable, "-m", "fprime_gds.executables.run_deployment", "--no-app", "-g", "html",
                 "--gui-addr", "127.0.0.1", "--gui-port", str(gui_port), "--dictionary", str(dictionary),
                 "--communication-selection", "ip", "--ip-address", "127.0.0.1", "--ip-port", str(gds_port),
                 "--framing-selection", "fprime", "--zmq-transport", f"ipc://{tmp_path}/in", f"ipc://{tmp_path}/out",
                 "-l", str(tmp_path / "gds-logs"), "--log-directly",
                 "--file-storage-directory", str(tmp_path / "gds-files"), log=gds_log, cwd=tmp_path) as gds,
    ):
        await _wait_for(lambda: _port_open(kiss_port), "simulated transceiver KISS port", 30, [sat])
        await _wait_for(gds_running, "GDS web UI", 30, [gds])
        async with _process(*FLIGHTSW, "ground", "--config", str(config), "--kiss", f"127.0.0.1:{kiss_port}",
                            "--db", str(tmp_path / "ground.sqlite3"), "--gds", f"127.0.0.1:{gds_port}",
                            log=tmp_path / "bridge.log", cwd=tmp_path):
            screenshot = tmp_path / "gds-channels.png"
            row = await asyncio.to_thread(_browser_sees_channel, f"http://127.0.0.1:{gui_port}/", screenshot)
    assert "eps_battery.bus_voltage" in row
    assert screenshot.stat().st_size > 1000
    print(f"screenshot: {screenshot}")
