"""Mission configs the benchmarks fly: the laptop mission (deploy/sim.toml), every device simulated,
on a scratch data directory, with its ground-side KISS port where the benchmark wants it."""

from __future__ import annotations

import re
from pathlib import Path

from flightsw.config import MissionConfig, loads

REPO = Path(__file__).resolve().parents[1]
SIM_TOML = REPO / "deploy" / "sim.toml"


def sim_toml(data_dir: Path, kiss_port: int = 0) -> str:
    """deploy/sim.toml on ``data_dir``; its simulated transceiver's pty inside it, its KISS TCP
    server on ``kiss_port`` (0: any free port)."""
    text = SIM_TOML.read_text()
    text, storage = re.subn(r'(\[storage\]\s*\ndata_dir\s*=\s*)"[^"]*"', rf'\1"{data_dir}"', text)
    text, radio = re.subn(r'device = "radio.tty"', f'device = "{data_dir / "radio.tty"}"', text)
    text, port = re.subn(r"kiss_tcp_port = \d+", f"kiss_tcp_port = {kiss_port}", text)
    if (storage, radio, port) != (1, 1, 1):
        raise RuntimeError("deploy/sim.toml layout changed: update bench/configs.py")
    return text


def sim_config(data_dir: Path, kiss_port: int = 0) -> MissionConfig:
    data_dir.mkdir(parents=True, exist_ok=True)
    return loads(sim_toml(data_dir, kiss_port))
