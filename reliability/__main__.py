"""`python -m reliability` (`make reliability`): the fuzzing, uplink attack and least privilege
campaigns, then docs/reliability.md and docs/reliability.json rewritten with their figures.

Exit status 1 when a figure misses its target (a finding, a command or file accepted without a
valid key and fresh counter, a legitimate command that did not execute, a key in an output, a
key file not 0600, a root service), 0 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from reliability import attacks, fuzz, privilege
from reliability.targets import TARGETS, cleanup

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__.splitlines()[0])
    parser.add_argument("--fuzz-seconds", type=float, default=60.0, help="per target and engine (default 60)")
    parser.add_argument("--targets", default=",".join(TARGETS), help="fuzz targets, comma separated")
    parser.add_argument("--no-atheris", action="store_true", help="hypothesis only")
    parser.add_argument("--quick-attacks", action="store_true", help="the smoke version of the attack campaign")
    parser.add_argument("--output", default=str(REPO / "docs" / "reliability.md"))
    parser.add_argument("--render", action="store_true",
                        help="only rewrite the page from the JSON beside it (no campaign is run)")
    args = parser.parse_args(argv)
    out = Path(args.output)
    if args.render:
        out.write_text(markdown(json.loads(out.with_suffix(".json").read_text())))
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    began = time.perf_counter()
    targets = [t for t in args.targets.split(",") if t]
    fuzz_results = fuzz.run(targets, args.fuzz_seconds, 0.0 if args.no_atheris else args.fuzz_seconds)
    cleanup()
    scratch = Path(tempfile.mkdtemp(prefix="flightsw-attacks-"))
    try:
        attack = asyncio.run(attacks.run(scratch, quick=args.quick_attacks))
        rights = privilege.run(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "wall_s": round(time.perf_counter() - began, 1),
        "atheris": "used" if fuzz.atheris_available() and not args.no_atheris else
                   ("not installed (pip install atheris failed or was skipped): hypothesis only"
                    if not fuzz.atheris_available() else "skipped (--no-atheris)"),
        "fuzz": [r.to_json() for r in fuzz_results],
        "attacks": attack.to_json(),
        "privilege": rights.to_json(),
    }
    failures = verdicts(report)
    report["failures"] = failures
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    out.write_text(markdown(report))
    print(f"wrote {out} and {out.with_suffix('.json')} in {report['wall_s']} s")
    for line in failures:
        print(f"FAIL {line}")
    return 1 if failures else 0


def verdicts(report: dict[str, Any]) -> list[str]:
    """Every figure that misses its target, one line each."""
    out = [f"fuzz {f['target']} ({f['engine']}): {f['kind']} {f['error']}" for r in report["fuzz"] for f in r["findings"]]
    a = report["attacks"]
    if a["accepted_without_key"] or a["unexplained_verdicts"]:
        out.append(f"attacks: {a['accepted_without_key']} accepted without a valid key and fresh counter")
    out += [f"attack {x['name']}: {x['executed']} executed" for x in a["attacks"] if x["executed"]]
    if a["legit_completed"] != a["legit_commands"] or not a["upload_ok"]:
        out.append(f"attacks: {a['legit_completed']} of {a['legit_commands']} legitimate commands completed, "
                   f"upload ok {a['upload_ok']}")
    if a["files_in_quarantine"] != 1:
        out.append(f"attacks: {a['files_in_quarantine']} files in the quarantine, 1 uploaded")
    p = report["privilege"]
    out += [f"privilege: key in {leak}" for leak in p["leaks"]]
    if not p["key_files_ok"]:
        out.append(f"privilege: key file modes {p['key_files']}")
    if not p["service_user_non_root"]:
        out.append(f"privilege: the service runs as {p['service_user']}")
    return out


def _n(x: float) -> str:
    return f"{x:,.0f}".replace(",", " ")


def markdown(r: dict[str, Any]) -> str:
    a, p = r["attacks"], r["privilege"]
    lines = [
        "# Reliability and security campaigns",
        "",
        "Written by `make reliability` (`python -m reliability`; figures also in "
        "[reliability.json](reliability.json)); do not edit by hand. The campaigns are in `reliability/`, "
        "their short smoke versions run in `make test` (`tests/campaigns/`), and every finding is fixed "
        "with a regression test in `make test`.",
        "",
        f"Run {r['date']} on {r['machine']}, {r['wall_s']:.0f} s in all. Atheris: {r['atheris']}.",
        "",
        "## Fuzzing",
        "",
        "Every parser of bytes from outside, under hypothesis (structured strategies: the seeds, mutated "
        "seeds, raw bytes and inputs built field by field) and atheris (libFuzzer, coverage-guided over "
        "`flightsw` and `hal`, from the same seeds). The contract of every target: only its documented error "
        "types escape, each input returns within its time limit, and the state it guards is not corrupted "
        "(the contracts in full: `reliability/targets.py`).",
        "",
        "| target | what | may raise | hypothesis inputs | atheris inputs (edges) | slowest input | findings |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for t in r["fuzz"]:
        finds = "; ".join(f"{f['engine']}: {f['kind']} {f['error'][:80]}" for f in t["findings"]) or "0"
        lines.append(f"| `{t['target']}` | {t['what']} | {', '.join(t['errors'])} | {_n(t['hypothesis_inputs'])} | "
                     f"{_n(t['atheris_inputs'])} ({t['atheris_coverage']}) | {t['slowest_input_s'] * 1000:.0f} ms | {finds} |")
    total = sum(t["hypothesis_inputs"] + t["atheris_inputs"] for t in r["fuzz"])
    lines += [
        "",
        f"{_n(total)} inputs in all. Findings of the campaign while it was built, each fixed with its "
        "regression test:",
        "",
        "| target | finding | fix | regression test |",
        "|---|---|---|---|",
        *FOUND,
        "",
        "## Uplink attacks",
        "",
        "`flightsw sim` (the reference mission's config on a scratch directory, plus a housekeeping packet of "
        "the uplink counters) in its own process, attacked over its real KISS TCP port by a second client "
        "while the legitimate ground (GroundStation and its CFDP side) commands it and uploads a file. What the "
        "satellite did is read from its downlink (counters, verdicts) and its upload quarantine."
        + (" **Smoke version** (a sample of each attack)." if a["quick"] else ""),
        "",
        "| attack | what | frames sent | received by the link | executed | how the satellite counted them |",
        "|---|---|---:|---:|---:|---|",
    ]
    for x in a["attacks"]:
        how = ", ".join(f"{k} {v:+d}" for k, v in sorted(x["counters"].items()))
        lines.append(f"| {x['name']} | {x['what']} | {_n(x['frames'])} | {_n(x['delivered'])} | {x['executed']} | {how} |")
    lines += [
        "",
        f"- **Commands or file PDUs accepted without a valid key and a fresh counter: {a['accepted_without_key']}** "
        f"(verdicts downlinked for counters the ground never used: {a['unexplained_verdicts']}; files in the "
        f"upload quarantine: {a['files_in_quarantine']}, the one legitimate upload).",
        f"- Legitimate commands: {a['legit_completed']} of {a['legit_commands']} completed; the file upload "
        f"({a['legit_file_pdus']} PDUs) {'succeeded' if a['upload_ok'] else 'FAILED'}.",
        f"- Flood ({_n(a['flood_frames'])} forged frames at twice the air rate, so the 9600 bit/s channel never idles; "
        "the simulated radio, like a real one, carries what the air rate allows and drops the rest): a legitimate "
        f"command sent into it completed in {a['flood_command_during_s']} s (with the ground's re-sends), one after "
        f"it in {a['flood_command_after_s']} s.",
        f"- Resident memory of the satellite process: {_n(a['rss_before_kb'])} kB before the attacks, "
        f"{_n(a['rss_after_kb'])} kB after (high-water mark {_n(a['rss_peak_kb'])} kB).",
        f"- Campaign time: {a['wall_s']:.0f} s.",
        "",
        "## Least privilege",
        "",
        f"- Key files: {', '.join(f'{k}: {v}' for k, v in p['key_files'].items())}. The staged install of "
        "`deploy/install.sh` (0600, owner flightsw) is checked by `tests/deploy/test_install_script.py`.",
        f"- The uplink keys were searched (raw, hex, HEX, base64, bytes repr, any 8-byte slice) in "
        f"{p['scanned_files']} outputs ({_n(p['scanned_bytes'])} bytes): {'; '.join(p['scanned'])}. "
        f"**Found: {len(p['leaks'])}**{(' (' + '; '.join(p['leaks']) + ')') if p['leaks'] else ''}.",
        f"- `deploy/flightsw.service` runs as `User={p['service_user']}` "
        f"({'not root' if p['service_user_non_root'] else 'ROOT'}).",
        "- `systemd-analyze security --offline=true` (" + p["systemd_analyze"] + "): "
        + (", ".join(f"`{k}` {v}" for k, v in p["exposure"].items()) or "no score")
        + " (0 = fully confined, 10 = fully exposed; the updater runs as root by design: it installs into "
        "/opt, read-only to the service).",
        "",
    ]
    if r.get("failures"):
        lines += ["## Figures that missed their target", "", *[f"- {f}" for f in r["failures"]], ""]
    return "\n".join(lines)


#: What the campaigns found while they were built (fixed; the table of docs/reliability.md).
FOUND = [
    "| `sequence_file` | an offset of 400 digits parsed as `inf`, `+999999999999999999999h` as 3.6e24 s: on board the "
    "sequence was stored, then the command failed with `OverflowError` formatting its time | offsets at most 366 days, "
    "absolute times 1970..9999, both named errors | `tests/campaigns/test_findings.py` |",
    "| `sequence_file` | arguments nested 5000 deep: `RecursionError` instead of `SequenceError` (a traceback from "
    "`flightsw ground sequence --check`) | \"arguments nested too deeply\" | `tests/campaigns/test_findings.py` |",
    "| `cfdp` | File Data at an offset far beyond the Metadata's file size was written: a sparse staging file of "
    "430 GB apparent size | refused before it is written, counted as `FileSizeError` | "
    "`tests/campaigns/test_findings.py` |",
    "| `config` | two I2C sensors at one bus address loaded, then building the satellite raised the simulated bus's "
    "`ValueError` (a traceback from `flightsw run`) | a `ConfigError` naming the key at load | "
    "`tests/campaigns/test_findings.py` |",
    "| `ground_decoder` | `re.match` with `$` accepted a callsign ending in a newline: a two-line \"foreign\" error, and "
    "the flight side's source check took it as well formed | callsigns must match fully | "
    "`tests/campaigns/test_findings.py` |",
    "| `config` | `key_file = \"\"` names the data directory: `KeyRing.load` let `IsADirectoryError` through (a traceback "
    "from `flightsw run`; a key file the service's user cannot read, `PermissionError`, took the same path) | a "
    "`KeyFileError`, reported as a `ConfigError` naming `link.key_file` | `tests/campaigns/test_findings.py` |",
    "| uplink attacks | frames longer than `link.max_frame`, dropped by the radio's KISS decoder, were counted in no "
    "telemetry: an attacker's oversized frames left no trace | new channel `link.kiss_oversize` | "
    "`tests/campaigns/test_findings.py` |",
]


if __name__ == "__main__":
    sys.exit(main())
