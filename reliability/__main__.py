"""`python -m reliability` (`make reliability`): the fuzzing, uplink attack, least privilege,
power-cut, storage-fault, two-ground-process and soak campaigns, then docs/reliability.md and docs/reliability.json rewritten with their figures.
``--campaigns`` runs some of them and keeps the other sections' figures (and their dates) from the JSON.

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

from reliability import attacks, fuzz, power_cuts, privilege, soak, storage_faults, two_grounds
from reliability.targets import TARGETS, cleanup

REPO = Path(__file__).resolve().parents[1]
CAMPAIGNS = ("fuzz", "attacks", "privilege", "power_cuts", "storage_faults", "two_grounds", "soak")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", default=",".join(CAMPAIGNS),
                        help=f"comma separated, of {', '.join(CAMPAIGNS)} (default all)")
    parser.add_argument("--fuzz-seconds", type=float, default=45.0, help="per target and engine (default 45)")
    parser.add_argument("--power-cuts", type=int, default=1000, help="SIGKILLs of the flight process (default 1000)")
    parser.add_argument("--soak-days", type=float, default=7.0, help="simulated days of the soak (default 7)")
    parser.add_argument("--two-grounds-seconds", type=float, default=600.0,
                        help="duration of the two ground processes' traffic (default 600)")
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
    chosen = [c for c in args.campaigns.split(",") if c]
    unknown = sorted(set(chosen) - set(CAMPAIGNS))
    if unknown:
        parser.error(f"unknown campaigns {unknown}; choose from {', '.join(CAMPAIGNS)}")
    previous = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").exists() else {}
    if set(chosen) != set(CAMPAIGNS) and not previous:
        parser.error(f"no {out.with_suffix('.json')} to keep the other campaigns' figures from: run them all")
    report: dict[str, Any] = dict(previous)
    report.pop("failures", None)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    machine = f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}"
    # the soak flies in its own process on the second core while the single-process campaigns run
    soak_scratch = Path(tempfile.mkdtemp(prefix="flightsw-soak-")) if "soak" in chosen else None
    soaking = soak.start(soak_scratch, args.soak_days) if soak_scratch is not None else None
    try:
        _run_campaigns(args, chosen, report)
    except BaseException:
        if soaking is not None:
            soaking.proc.kill()
            soaking.proc.wait()
        raise
    finally:
        if soaking is None and soak_scratch is not None:
            shutil.rmtree(soak_scratch, ignore_errors=True)
    if soaking is not None and soak_scratch is not None:
        try:
            report["soak"] = soak.finish(soaking).to_json()
        finally:
            shutil.rmtree(soak_scratch, ignore_errors=True)
    dates = dict(report.get("dates") or {})
    for name in CAMPAIGNS:  # figures kept from a run before dates were kept per campaign
        if name not in dates and name in previous:
            dates[name] = f"{previous['date']} on {previous['machine']}"
    for name in chosen:
        dates[name] = f"{stamp} on {machine}"
    report.update(date=stamp, machine=machine, dates=dates)
    report["wall_s"] = round(time.perf_counter() - began, 1)
    failures = verdicts(report)
    report["failures"] = failures
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    out.write_text(markdown(report))
    print(f"wrote {out} and {out.with_suffix('.json')} in {report['wall_s']} s")
    for line in failures:
        print(f"FAIL {line}")
    return 1 if failures else 0


def _run_campaigns(args: argparse.Namespace, chosen: list[str], report: dict[str, Any]) -> None:
    """The campaigns that run in this process, one after the other."""
    if "fuzz" in chosen:
        targets = [t for t in args.targets.split(",") if t]
        report["fuzz"] = [r.to_json() for r in fuzz.run(targets, args.fuzz_seconds,
                                                         0.0 if args.no_atheris else args.fuzz_seconds)]
        report["atheris"] = ("used" if fuzz.atheris_available() and not args.no_atheris else
                             ("not installed (pip install atheris failed or was skipped): hypothesis only"
                              if not fuzz.atheris_available() else "skipped (--no-atheris)"))
        cleanup()
    if "attacks" in chosen or "privilege" in chosen:
        scratch = Path(tempfile.mkdtemp(prefix="flightsw-attacks-"))
        try:
            report["attacks"] = asyncio.run(attacks.run(scratch, quick=args.quick_attacks)).to_json()
            report["privilege"] = privilege.run(scratch).to_json()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    if "power_cuts" in chosen:
        scratch = Path(tempfile.mkdtemp(prefix="flightsw-power-cuts-"))
        try:
            report["power_cuts"] = power_cuts.run(scratch, args.power_cuts).to_json()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    if "storage_faults" in chosen:
        scratch = Path(tempfile.mkdtemp(prefix="flightsw-storage-faults-"))
        try:
            report["storage_faults"] = storage_faults.run(scratch).to_json()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    if "two_grounds" in chosen:
        scratch = Path(tempfile.mkdtemp(prefix="flightsw-two-grounds-"))
        try:
            report["two_grounds"] = asyncio.run(two_grounds.run(scratch, args.two_grounds_seconds)).to_json()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def verdicts(report: dict[str, Any]) -> list[str]:
    """Every figure that misses its target, one line each."""
    out_cuts: list[str] = []
    pc = report.get("power_cuts")
    if pc is not None:
        out_cuts += [f"power cuts: corrupt {x}" for x in pc["corrupt_files"]]
        out_cuts += [f"power cuts: lost {x}" for x in pc["lost_committed"]]
        out_cuts += [f"power cuts: boot loop {x}" for x in pc["boot_loop_violations"]]
        out_cuts += [f"power cuts: {x}" for x in pc["child_errors"]]
    sf = report.get("storage_faults")
    if sf is not None:
        out_cuts += [f"storage fault {c['case']}: {c['verdict']}" for c in sf["cases"] if c["verdict"] != "ok"]
    if report.get("soak") is not None:
        out_cuts += [f"soak: {x}" for x in report["soak"]["verdicts"]]
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
    tg = report.get("two_grounds")
    if tg is not None:
        out_cuts += two_grounds.TwoGroundsResult(**tg).failures()
    return out + out_cuts


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
        f"Last run {r['date']} on {r['machine']} ({r['wall_s']:.0f} s, the campaigns it ran). Atheris: {r['atheris']}. "
        "Each campaign's own run: " + "; ".join(f"{k} {v}" for k, v in (r.get("dates") or {}).items()) + ".",
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
    if r.get("power_cuts"):
        lines += power_cut_lines(r["power_cuts"])
    if r.get("storage_faults"):
        lines += storage_fault_lines(r["storage_faults"])
    if r.get("two_grounds"):
        lines += two_grounds.markdown(r["two_grounds"])
    if r.get("soak"):
        lines += soak_lines(r["soak"])
    if r.get("failures"):
        lines += ["## Figures that missed their target", "", *[f"- {f}" for f in r["failures"]], ""]
    return "\n".join(lines)


def power_cut_lines(pc: dict[str, Any]) -> list[str]:
    corrupt, lost = len(pc["corrupt_files"]), len(pc["lost_committed"])
    return [
        "## Power cuts",
        "",
        "The flight process (`python -m reliability.power_cuts --child`: a `SimulationRun` of the reference "
        "mission's config, every device simulated, virtual time as fast as it goes, stores with fsync on) "
        "SIGKILLed at a random instant of its life (uniform in "
        f"{pc['life_s'][0]:.1f}..{pc['life_s'][1]:.1f} s of wall time after it starts, a simulated pass over "
        "Almaty of about 10 minutes), then restarted on the same storage. Each life is busy: separation "
        "(stowed antennas, 60 s RF silence, the primary burn wire failing once), `modes.SET_MODE NOMINAL` "
        "(a killed process boots in SAFE), a capture commanded every 45 s and a stored command added every "
        "70 s, housekeeping and events recorded all along. A worker starts a fresh satellite every "
        f"{power_cuts.LIVES_PER_SATELLITE} kills, so first boots and deployment are cut again. After every kill "
        "the storage is checked read-only (the checks: `reliability/power_cuts.py`).",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| SIGKILLs | {_n(pc['kills'])} |",
        f"| satellites (data directories), boots counted | {pc['satellites']}, {_n(pc['boots'])} |",
        f"| records committed (flushed to the OS before the kill) | {_n(pc['records_committed'])} |",
        f"| images committed (catalog row after the files) | {_n(pc['images_committed'])} |",
        f"| satellites that reached DEPLOYED | {pc['deployed_satellites']} |",
        f"| most stored commands in a queue | {pc['stored_commands_max']} |",
        f"| kills that left a torn record at the log's end (allowed: the record in flight) | {pc['torn_tails']} |",
        f"| **corrupt files** (a store that does not load, a record log invalid before its end, an image "
        f"catalog failing `integrity_check`, an image whose full product misses its sha256, a stored-command "
        f"queue or deployment record that does not parse) | **{corrupt}** |",
        f"| **lost committed data** (a committed record missing from the log, a committed image still in the "
        f"catalog without its full product, the boot count or the deployment going back) | **{lost}** |",
        f"| boots with `boot_loop_count` (4) unproven boots before them | {pc['boot_loop_checks']} |",
        f"| of those not booting SAFE with `modes.boot_loop` (the documented protection) | "
        f"{len(pc['boot_loop_violations'])} |",
        f"| lives that ended other than by the kill | {len(pc['child_errors'])} |",
        "",
        f"Campaign time: {pc['wall_s']:.0f} s, two satellites killed in parallel (each one's lives strictly one "
        "after the other). A SIGKILL ends the process, not the machine: what was flushed to the OS survives it. "
        "Not covered here: the OS losing its page cache (a real power cut), file transfers both ways and "
        "parameter-table loads during the lives.",
        "",
    ]


def storage_fault_lines(sf: dict[str, Any]) -> list[str]:
    lines = [
        "## Storage faults",
        "",
        "The power-cut campaign's busy mission (40 simulated minutes, one process, virtual time) flying on a "
        f"storage that fails under it {storage_faults.FAULT_AT_S / 60:.0f} minutes in, for "
        f"{storage_faults.FAULT_FOR_S / 60:.0f} minutes: `disk_full`, the data directory a tmpfs shrunk to "
        "what it holds (every write ENOSPC), then given its space back; `fsync_error`, `os.fsync` failing "
        "with EIO in the flight process (fsync on; the storage layer has no seam of its own); "
        "`corrupt_slots`, before the boot garbage over the newest slot of the state and parameter stores and "
        "the middle of the oldest record segment of a satellite that flew one life. Judged: flew to the end "
        "with no reset and no service crash, reported the fault, recorded and sent frames down after it.",
        "",
        "| case | flew to the end | resets | service crashes | reports (`exec.store_problem`, "
        "`exec.records_recovered`) | first report | records refused | records after the fault | "
        "downlink frames after it | verdict |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for c in sf["cases"]:
        lines.append(f"| `{c['case']}` | {'yes' if c['flew_to_end'] else 'NO'} | {c['resets']} | "
                     f"{c['service_crashes']} | {c['store_problems']} | {c['first_report'].replace('|', '/')[:110]} | "
                     f"{_n(c['write_errors'])} | {_n(c['records_after'])} | {_n(c['frames_after'])} | "
                     f"{c['verdict']} |")
    lines += ["", *[f"- Skipped: {x}" for x in sf["skipped"]],
              f"- Campaign time: {sf['wall_s']:.0f} s.", ""]
    return lines


def soak_lines(sk: dict[str, Any]) -> list[str]:
    def secs(x: float | None) -> str:
        if x is None:
            return "-"
        return f"{x:.0f} s" if x < 600 else f"{x / 60:.0f} min" if x < 7200 else f"{x / 3600:.1f} h"

    rss = [kb for _, kb in sk["rss_kb"]]
    disk = [kb for _, kb in sk["disk_kb"]]
    half = len(rss) // 2
    lost_pct = 100.0 * sk["hk_lost"] / sk["hk_produced"] if sk["hk_produced"] else 0.0
    lines = [
        "## Soak",
        "",
        f"The reference mission (`deploy/sim.toml`) flown for {sk['days']:g} simulated days in the accelerated "
        "simulator (`reliability/soak.py`: one `SimulationRun` in its own process, with store and forward and the "
        "scripted ground) under random faults whose schedule is drawn from the seed "
        f"({sk['seed']}). Each fault is checked against its documented response (docs/operations.md, docs/modes.md); "
        "time to recover is simulated time from the end of the fault (its injection for an instantaneous one) until "
        "the satellite is healthy again: a boot running, no service FAILED, every sensor answering, and the fault's "
        "own condition (the crashed service running again, UTC right, NOMINAL after the battery SAFE, a ground "
        "command answered after the loss of contact, frames reaching the radio after the deaf UART), polled every "
        "10 s of simulated time (every second for a task crash; a clock step's correction is timed to the second). "
        "The operators clear a reset's SAFE with `modes.SET_MODE NOMINAL` in the next pass, as docs/modes.md "
        "asks of them.",
        "",
        "| fault | injected | recovered | documented response seen | time to recover, median / worst | "
        "what must happen |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for kind, x in sk["by_kind"].items():
        lines.append(f"| `{kind}` | {x['injected']} | {x['recovered']} | {x['response_ok']} | "
                     f"{secs(x['ttr_median_s'])} / {secs(x['ttr_worst_s'])} | {x['response']} |")
    injected = sum(x["injected"] for x in sk["by_kind"].values())
    recovered = sum(x["recovered"] for x in sk["by_kind"].values())
    after = sum(f["contacts_after"] for f in sk["faults"])
    dark = sum(f["contacts_after_without_beacon"] for f in sk["faults"])
    lines += [
        "",
        f"- **Faults injected {injected}, recovered {recovered}**; responses missing or wrong: "
        f"{sum(1 for f in sk['faults'] if f['problems'])}.",
        f"- Services FAILED at the end: {len(sk['services_failed_end'])}"
        + (f" ({', '.join(sk['services_failed_end'])})" if sk["services_failed_end"] else "")
        + f"; tasks that outlived their boot: {len(sk['leaked_tasks'])}; boots {len(sk['boots'])} "
        f"({sk['reboots']} resets and restarts: {'; '.join(sk['boots'][1:])}).",
        f"- **Resets no injected fault explains: {len(sk.get('unexpected_resets', []))}**"
        + (f" ({'; '.join(sk['unexpected_resets'])})" if sk.get("unexpected_resets") else "")
        + f"; the ground fell back to the default key {sk.get('ground_key_fallbacks', 0)} times"
        + (f" (and went back to the previous key {sk['ground_key_returns']} times)" if "ground_key_returns" in sk
           else " (measured before it could go back to the previous key)")
        + "; the operators "
        f"sent `modes.SET_MODE NOMINAL` {sk.get('operator_commands', 0)} times to clear a reset's SAFE.",
        f"- Beacons: {_n(sk['beacons'])} received; usable passes (peak >= 5 deg) {sk['usable_contacts']}, "
        f"{after} of them after a recovery and before the next fault, **{dark} of those without a beacon**; "
        f"usable passes without a beacon after the first recovery: {len(sk['usable_contacts_without_beacon'])}.",
        f"- **Data lost: {_n(sk['hk_lost'])} of {_n(sk['hk_produced'])} housekeeping records "
        f"({lost_pct:.2f} %)** produced and neither in the ground archive ({_n(sk['hk_in_archive'])}) nor in "
        f"the record log on board ({_n(sk['hk_on_board_only'])} not yet downlinked)"
        + (f"; {sk['hk_lost_detail']}" if sk["hk_lost_detail"] else "") + ".",
        f"- Resident memory of the process (flight software, simulator, scripted ground and its archive), sampled "
        f"every simulated hour: {_n(min(rss) if rss else 0)}.."
        f"{_n(max(rss) if rss else 0)} kB (highest in the first half {_n(max(rss[:half]) if half else 0)} kB, "
        f"in the second {_n(max(rss[half:]) if rss[half:] else 0)} kB). The growth is the simulator's: Python "
        "allocations traced once (tracemalloc, 3 h to 12 h of a fault-free soak) grew 1.6 MB, all of it the "
        "World's recorded series, the run's samples, the scripted ground's arrival lists and archive rows (linear "
        "in the run by design) and the record log's decoded-segment cache (one segment at most); nothing of the "
        "flight software grew.",
        f"- Data directory: at most {_n(max(disk) if disk else 0)} kB (the record log is bounded at "
        f"{_n(sk['records_max_kb'])} kB; at the end {_n(disk[-1] if disk else 0)} kB).",
        f"- Campaign time: {sk['wall_s']:.0f} s ({sk['days'] * 86400 / max(sk['sim_wall_s'], 1e-9):.0f}x real time).",
        "",
        *SOAK_FOUND,
        "Fault by fault (hours from the start; the response as the events, boots and modes showed it):",
        "",
        "| at | fault | target | until | recovered after | response seen | passes after, without beacon | problems |",
        "|---:|---|---|---:|---:|---|---:|---|",
    ]
    for f in sk["faults"]:
        seen = "; ".join(f["response"]).replace("|", "/")[:160]
        lines.append(f"| {f['at'] / 3600:.2f} | `{f['kind']}` | {f['target'] or '-'} | {f['until'] / 3600:.2f} | "
                     f"{secs(f['time_to_recover'])} | {seen} | {f['contacts_after']}, "
                     f"{f['contacts_after_without_beacon']} | {'; '.join(f['problems']) or '-'} |")
    if sk["error"]:
        lines += ["", f"The run stopped early: {sk['error']}"]
    lines.append("")
    return lines


#: What the soak found (the figures above show it where it is not fixed).
SOAK_FOUND = [
    "Findings of the soak:",
    "",
    "- **Fixed: the ground's loss-of-contact procedure misfired on a lossy link.** The procedure (operations "
    "guide, \"Loss of contact\"; the scripted ground of `flightsw/sim_runner/ground.py`) signed with the default "
    "key after three commands in a row without an answer while beacons come down. With 30 % frame loss a command "
    "or its verdict is lost about half the time, so three in a row went unanswered within a pass or two although "
    "the satellite accepted them: the ground switched to key 0 while the satellite still used key 1, every "
    "command after that was refused, and the ground was locked out until the satellite's own ladder fell back "
    "to its defaults 24 h after the last accepted command (on the way its radio is power-cycled and it "
    "reboots, `LOSS_OF_CONTACT`). Reproduced alone (30 % frame loss from 6 h, nothing else): the last verdict "
    "at 6.9 h, the ladder's reboot at 27.0 h, commands answered again at 39.8 h. In the week measured before "
    "the fix (seed 16, frame loss from 26.3 h to 62.5 h) it was the reset no fault explains (the ladder's "
    "reboot at 59.9 h, before the injected blackout, which then found the ladder already climbed: its radio "
    "reset and reboot fell outside the fault's window), and the SAFE of the watchdog reset at 49.5 h could not "
    "be cleared by the operators until 89.2 h. The satellite's side did what is documented. The fix is the "
    "ground's: a command counts as received when a later beacon's `uplink_counter` reached its counter (the "
    "satellite accepted it, only the verdict was lost), and a default key that gets no answer either sends the "
    "ground back to the key it fell back from (it alternates; `key_fallbacks` and `key_returns` count both "
    "ways). Tests: `tests/simulation/test_ground_keys.py`.",
    "- **Fixed: the record log lost a segment's records after a corrupt frame** (the table of the fuzzing "
    "section, `tests/core/test_record_resync.py`).",
    "",
]


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
    "| storage faults | after ENOSPC a refused record stayed in the file buffer and was written later behind a torn "
    "frame, its number repeated (4 records numbered 523): records after it unreadable to the scan | segments "
    "unbuffered, a failed write cut back to the last whole record; the record dropped, counted, reported by "
    "`exec.store_problem` | `tests/core/test_storage_faults.py` |",
    "| storage faults | a state or parameter save on a full or failing card raised into its caller: "
    "`time.checkpoint`, `link.rx` and `deploy.sequence` crashed until a critical one failed, the watchdog reset "
    "the board, and the next boot could not save its boot count (the flight software could not start) | saves "
    "counted and reported, the value kept in memory for the next save; a `records.sync` fsync error reported | "
    "`tests/core/test_storage_faults.py` |",
    "| storage faults | `exec.store_problem` for a store slot that did not load is emitted while the satellite is "
    "built, before the recorder attaches: it reached only the journal | the start-up's events are recorded "
    "once the recorder attaches | `tests/core/test_storage_faults.py` |",
    "| uplink attacks | frames longer than `link.max_frame`, dropped by the radio's KISS decoder, were counted in no "
    "telemetry: an attacker's oversized frames left no trace | new channel `link.kiss_oversize` | "
    "`tests/campaigns/test_findings.py` |",
    "| storage faults (`corrupt_slots`) | the record log's readers stopped a segment at its first bad frame, so the "
    "records after a corrupt frame in an older segment were unreadable to playback and the ground (the known gap: "
    "recovery read only the newest segment), and the boot's recovery cut the newest segment from a corrupt frame on, "
    "deleting the valid records after it | readers and recovery resync to the next valid frame (magic, length, CRC): "
    "a corrupt frame loses itself only; only the bytes after the newest segment's last valid frame are cut | "
    "`tests/core/test_record_resync.py` |",
]


if __name__ == "__main__":
    sys.exit(main())
