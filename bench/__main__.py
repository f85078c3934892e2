"""`python -m bench` (`make bench`): the performance budget, written to docs/performance.md.

Runs every benchmark of bench/suite.py, each repeat in a fresh process, and writes the page and
its raw JSON. ``--quick`` runs short versions (a smoke run, not comparable with the targets).
``--only a,b`` runs some benchmarks (the page then holds only those). ``--determinism`` runs a
scenario day twice with the same seed instead and compares everything exactly (too slow for the
test suite: two full days); it prints the first difference and exits 1 if there is one.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import explain
from bench.suite import REPO, SUITE, run_benchmark


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs of every benchmark (smoke)")
    parser.add_argument("--only", default=None, help="comma-separated benchmark names: "
                        + ", ".join(b.module for b in SUITE))
    parser.add_argument("--out", default=str(REPO / "docs"), help="directory for performance.md/.json")
    parser.add_argument("--determinism", action="store_true",
                        help="run the scenario twice with the same seed and compare everything exactly")
    parser.add_argument("--scenario", default="nominal_day", help="--determinism: shipped scenario name or file")
    parser.add_argument("--duration", type=float, default=None, help="--determinism: simulated seconds")
    parser.add_argument("--seed", type=int, default=None, help="--determinism: seed (default: the scenario's)")
    args = parser.parse_args(argv)
    if args.determinism:
        from bench.day import determinism

        return determinism(args.scenario, args.duration, args.seed)

    selected = SUITE
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(names) - {b.module for b in SUITE})
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(b.module for b in SUITE)}")
        selected = [b for b in SUITE if b.module in names]

    from bench.machine import describe

    began = time.perf_counter()
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    machine = describe()
    log(f"bench: {len(selected)} benchmark(s), {'quick' if args.quick else 'full'} mode, on {machine['cpu']}")
    benchmarks = []
    plots: dict[str, list[str]] = {}
    failed = []
    for bench in selected:
        t0 = time.perf_counter()
        try:
            result, lines = run_benchmark(bench, args.quick, log)
        except Exception as exc:  # one broken benchmark must not lose the others' figures
            log(f"[{bench.module}] FAILED: {exc}")
            failed.append(bench.module)
            continue
        benchmarks.append(result)
        plots[bench.module] = lines
        for fig in result["figures"]:
            verdict = {True: "meets", False: "MISSES", None: ""}[fig["meets"]]
            log(f"[{bench.module}] {fig['label']}: median {fig['median']:.{fig['decimals']}f} {fig['unit']}, "
                f"worst {fig['worst']:.{fig['decimals']}f} {verdict}")
        log(f"[{bench.module}] done in {time.perf_counter() - t0:.0f} s")
    run = {"started": started, "quick": args.quick, "machine": machine,
           "wall_s": time.perf_counter() - began, "benchmarks": benchmarks, "failed": failed}
    from bench.report import write

    page, raw = write(Path(args.out), run, plots, explain.missed(run))
    log(f"bench: wrote {page} and {raw} in {run['wall_s']:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
