"""Least privilege checks that need no board: key file modes, the key in no output, the unit.

- Every key file flightsw writes is 0600, whatever the umask (checked in a child process with
  umask 0), and so is the one the simulated satellite of the attack campaign generated.
- The uplink keys appear in none of the outputs of a run (the attack campaign's satellite log,
  its data directory, the ground archive and downloads), the dictionary exports (`flightsw
  dict`, JSON and Kaitai), nor the errors and tracebacks of a broken key file (`flightsw run`
  with a malformed key file, and the traceback of ``KeyRing.load``): searched as raw bytes, hex
  (both cases), base64 and Python's bytes repr, also for any 8-byte slice of a key.
- The service unit (deploy/flightsw.service) runs as its own non-root user; its exposure score
  from `systemd-analyze security --offline=true` is recorded when systemd-analyze exists.
"""

from __future__ import annotations

import base64
import configparser
import dataclasses
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flightsw.link.auth import KeyFileError, KeyRing

REPO = Path(__file__).resolve().parents[1]
UNITS = ("flightsw.service", "flightsw-update.service")


@dataclass
class PrivilegeResult:
    key_files: dict[str, str] = field(default_factory=dict)  #: what wrote it -> its mode (octal)
    key_files_ok: bool = False
    scanned_files: int = 0
    scanned_bytes: int = 0
    scanned: list[str] = field(default_factory=list)  #: the outputs searched, in words
    leaks: list[str] = field(default_factory=list)  #: "file: encoding" for every hit (must be empty)
    service_user: str = ""
    service_user_non_root: bool = False
    exposure: dict[str, float] = field(default_factory=dict)  #: unit -> systemd-analyze exposure
    systemd_analyze: str = ""  #: its version, or why there is no score

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _mode(path: Path) -> str:
    return f"{stat.S_IMODE(path.stat().st_mode):04o}"


def key_file_modes(attack_data_dir: Path | None) -> dict[str, str]:
    """Modes of the key files flightsw writes, under umask 0 (a child process)."""
    with tempfile.TemporaryDirectory(prefix="keys-") as scratch:
        code = ("import os, sys; os.umask(0)\n"
                "from flightsw.link.auth import KeyRing\n"
                "KeyRing.generate(sys.argv[1])\n"
                "KeyRing.write(sys.argv[2], 'scenario keys', ['0 ' + '11' * 32], fsync=False)\n")
        generated, written = Path(scratch) / "generated.keys", Path(scratch) / "written.keys"
        subprocess.run([sys.executable, "-c", code, str(generated), str(written)], check=True, timeout=60)
        modes = {"KeyRing.generate (flightsw sim, first run), umask 0": _mode(generated),
                 "KeyRing.write (scenario keys of flightsw sim --scenario), umask 0": _mode(written)}
    if attack_data_dir is not None and (attack_data_dir / "uplink.keys").exists():
        modes["uplink.keys of the attacked satellite"] = _mode(attack_data_dir / "uplink.keys")
    return modes


def needles(keys: list[bytes]) -> dict[str, list[bytes]]:
    """What a leaked key would look like in a file, per encoding."""
    out: dict[str, list[bytes]] = {"raw": [], "hex": [], "HEX": [], "base64": [], "repr": []}
    for key in keys:
        slices = [key[i : i + 8] for i in range(0, len(key) - 7)]
        out["raw"] += slices
        out["hex"] += [s.hex().encode() for s in slices]
        out["HEX"] += [s.hex().upper().encode() for s in slices]
        out["base64"] += [base64.b64encode(key).rstrip(b"="), base64.urlsafe_b64encode(key).rstrip(b"="),
                          base64.b64encode(key[:24])]
        out["repr"] += [repr(key)[2:18].encode()]
    return out


def scan_bytes(name: str, data: bytes, patterns: dict[str, list[bytes]], result: PrivilegeResult) -> None:
    result.scanned_files += 1
    result.scanned_bytes += len(data)
    for encoding, items in patterns.items():
        if any(item in data for item in items):
            result.leaks.append(f"{name}: {encoding}")


def scan_tree(root: Path, patterns: dict[str, list[bytes]], result: PrivilegeResult, skip: set[Path]) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file() and path not in skip and not path.is_symlink():
            scan_bytes(str(path.relative_to(root)), path.read_bytes(), patterns, result)


def error_outputs(config: Path, key_file: Path, scratch: Path) -> dict[str, bytes]:
    """What a broken key file makes flightsw print: `flightsw run` stderr, and a traceback."""
    from reliability.attacks import flightsw_command

    lines = key_file.read_text().splitlines()
    key_lines = [line for line in lines if line and not line.startswith("#")]
    broken = scratch / "broken.keys"
    broken.write_text("\n".join([*lines, key_lines[0].split()[1][:40] + " zz"]) + "\n")  # a bad last line
    short = scratch / "short.keys"
    short.write_text("0 " + key_lines[0].split()[1][:16] + "\n")  # 8 bytes of the real key: too short
    outputs: dict[str, bytes] = {}
    text = config.read_text()
    for name, path in (("malformed", broken), ("too short", short)):
        bad = scratch / f"run-{name.replace(' ', '-')}.toml"
        bad.write_text(re.sub(r"key_file\s*=\s*\"[^\"]*\"", f'key_file = "{path}"',
                              text.replace("generate_key = true", "generate_key = false")))
        proc = subprocess.run([*flightsw_command(), "run", "--config", str(bad)], capture_output=True,
                              timeout=120, cwd=scratch)
        outputs[f"flightsw run with a {name} key file (exit {proc.returncode})"] = proc.stdout + proc.stderr
        try:
            KeyRing.load(path)
        except KeyFileError:
            outputs[f"traceback of KeyRing.load, {name} key file"] = traceback.format_exc().encode()
    return outputs


def dictionary_outputs(config: Path) -> dict[str, bytes]:
    from reliability.attacks import flightsw_command

    out = {}
    for fmt in ("json", "ksy"):
        proc = subprocess.run([*flightsw_command(), "dict", "--config", str(config), "--format", fmt],
                              capture_output=True, timeout=300, check=True)
        out[f"flightsw dict --format {fmt}"] = proc.stdout + proc.stderr
    return out


def unit_checks(result: PrivilegeResult) -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((REPO / "deploy" / "flightsw.service").read_text())
    user = unit.get("Service", "User", fallback="")
    result.service_user = user or "(none: root)"
    result.service_user_non_root = bool(user) and user not in ("root", "0")
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        result.systemd_analyze = "systemd-analyze not installed: no exposure score"
        return
    version = subprocess.run([analyze, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    result.systemd_analyze = version.strip()
    for name in UNITS:
        proc = subprocess.run([analyze, "security", "--offline=true", "--no-pager", str(REPO / "deploy" / name)],
                              capture_output=True, text=True, timeout=120)
        found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout + proc.stderr)
        if found:
            result.exposure[name] = float(found[1])


def run(attack_scratch: Path | None, log: Any = print) -> PrivilegeResult:
    """The checks; ``attack_scratch`` is the attack campaign's scratch directory (its satellite's
    log and data, the ground's archive) when there is one to scan."""
    result = PrivilegeResult()
    data_dir = attack_scratch / "sat" if attack_scratch is not None else None
    result.key_files = key_file_modes(data_dir)
    result.key_files_ok = all(mode == "0600" for mode in result.key_files.values())
    unit_checks(result)
    with tempfile.TemporaryDirectory(prefix="privilege-") as tmp:
        scratch = Path(tmp)
        if attack_scratch is not None and data_dir is not None:
            key_file, config = data_dir / "uplink.keys", attack_scratch / "mission.toml"
        else:
            from reliability.attacks import campaign_config

            key_file, config = scratch / "uplink.keys", campaign_config(scratch / "sat", 0, scratch / "mission.toml")
            KeyRing.generate(key_file)
        keys = KeyRing.load(key_file)
        patterns = needles([keys.key(i) for i in keys.ids])
        if attack_scratch is not None:
            scan_tree(attack_scratch, patterns, result, skip={key_file, config})
            result.scanned.append("the attack campaign's satellite log, data directory (records, state, "
                                  "parameters, file transfer), ground archive and downloads")
        for name, data in {**dictionary_outputs(config), **error_outputs(config, key_file, scratch)}.items():
            scan_bytes(name, data, patterns, result)
            result.scanned.append(name)
    log(f"privilege: key files {result.key_files}, {result.scanned_files} outputs scanned "
        f"({result.scanned_bytes} bytes), {len(result.leaks)} leak(s), User={result.service_user}, "
        f"exposure {result.exposure or result.systemd_analyze}")
    return result


__all__ = ["PrivilegeResult", "run"]
