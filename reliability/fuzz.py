"""The fuzzing campaign: every target of ``reliability.targets`` under hypothesis, then atheris.

Hypothesis runs each target's structured strategy (seeds, mutated seeds, raw bytes, and inputs
built field by field) in batches until the time budget is spent, shrinking any failure to a
minimal input. Atheris (libFuzzer, coverage-guided) runs where it is installed, in a child
process per target (it ends its process when done), starting from the same seeds.

Every input runs under a per-input time limit (an interval timer in the fuzzing thread): an
input that takes longer is reported as a hang even if the code under test swallowed the alarm.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import HypothesisException

from reliability.targets import TARGETS, Target

REPO = Path(__file__).resolve().parents[1]


class Hang(Exception):
    """An input that ran longer than its target's time limit."""


@dataclass
class Finding:
    target: str
    engine: str
    kind: str  #: "crash" (undocumented exception), "contract" (violation), "hang"
    error: str  #: exception type and message, one line
    input: str  #: the (minimal) input, repr, truncated

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class TargetResult:
    target: str
    what: str
    errors: tuple[str, ...]
    hypothesis_inputs: int = 0
    hypothesis_s: float = 0.0
    atheris_inputs: int = 0
    atheris_s: float = 0.0
    atheris_coverage: int = 0  #: libFuzzer's "cov:" (edges seen) at the end
    slowest_input_s: float = 0.0
    findings: list[Finding] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["findings"] = [f.to_json() for f in self.findings]
        return out


class _Timed:
    """Runs one input of a target under its time limit and counts inputs."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.count = 0
        self.slowest = 0.0
        self.fired = False
        self.last_input = b""

    def _alarm(self, signum: int, frame: Any) -> None:
        self.fired = True
        raise Hang(f"input ran longer than {self.target.time_limit_s} s")

    def __call__(self, data: bytes) -> None:
        self.count += 1
        self.fired = False
        self.last_input = data
        # An interval timer already armed is someone else's (pytest-timeout's in the smoke tests):
        # then it bounds a hang, and only the elapsed time is checked here.
        own_timer = signal.getitimer(signal.ITIMER_REAL)[0] == 0.0
        if own_timer:
            previous = signal.signal(signal.SIGALRM, self._alarm)
            signal.setitimer(signal.ITIMER_REAL, self.target.time_limit_s)
        began = time.perf_counter()
        try:
            self.target.run(data)
        finally:
            if own_timer:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
            elapsed = time.perf_counter() - began
            self.slowest = max(self.slowest, elapsed)
        if self.fired or elapsed > self.target.time_limit_s:
            raise Hang(f"input ran {elapsed:.1f} s (limit {self.target.time_limit_s} s)")


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text[:240]


def _kind(exc: BaseException) -> str:
    from reliability.targets import ContractViolation

    if isinstance(exc, Hang):
        return "hang"
    return "contract" if isinstance(exc, ContractViolation) else "crash"


def hypothesis_campaign(target: Target, seconds: float, batch: int = 200, seed: int = 0) -> TargetResult:
    """Run ``target`` under hypothesis for about ``seconds``; stops at its first finding."""
    result = TargetResult(target.name, target.what, target.errors)
    timed = _Timed(target)
    strategy = target.strategy()
    began = time.perf_counter()
    rounds = 0
    while time.perf_counter() - began < seconds:
        rounds += 1

        @settings(max_examples=batch, deadline=None, database=None, derandomize=False,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink],
                  report_multiple_bugs=False)
        @given(strategy)
        def prop(data: bytes) -> None:
            timed(data)

        try:
            prop()
        except HypothesisException as exc:  # a strategy problem, not a finding of the target
            result.findings.append(Finding(target.name, "hypothesis", "campaign", _one_line(exc), ""))
            break
        except Exception as exc:
            # hypothesis re-raises the shrunk failure last: timed.last_input is the minimal input
            result.findings.append(Finding(target.name, "hypothesis", _kind(exc), _one_line(exc),
                                           repr(timed.last_input)[:300]))
            break
    result.hypothesis_inputs = timed.count
    result.hypothesis_s = round(time.perf_counter() - began, 1)
    result.slowest_input_s = round(timed.slowest, 3)
    return result


def atheris_available() -> bool:
    return importlib.util.find_spec("atheris") is not None


_DONE = re.compile(r"Done (\d+) runs in (\d+) second")
_STAT = re.compile(r"#(\d+)\s+\w+\s+cov: (\d+)")


def atheris_campaign(target: Target, seconds: float, result: TargetResult) -> None:
    """Run ``target`` under atheris in a child process for ``seconds``; fills ``result``."""
    with tempfile.TemporaryDirectory(prefix=f"atheris-{target.name}-") as scratch:
        corpus = Path(scratch) / "corpus"
        corpus.mkdir()
        for i, seed in enumerate(target.seeds()):
            (corpus / f"seed{i}").write_bytes(seed)
        command = [sys.executable, "-m", "reliability.atheris_runner", target.name, str(corpus),
                   f"-max_total_time={int(seconds)}", f"-timeout={int(max(1, target.time_limit_s))}",
                   f"-artifact_prefix={scratch}/", "-print_final_stats=1", "-max_len=4096", "-rss_limit_mb=2048"]
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        began = time.perf_counter()
        proc = subprocess.run(command, cwd=scratch, env=env, capture_output=True, text=True,
                              timeout=seconds + 300)
        result.atheris_s = round(time.perf_counter() - began, 1)
        log = proc.stderr + proc.stdout
        runs = [int(m[1]) for m in _STAT.finditer(log)]
        done = _DONE.search(log)
        result.atheris_inputs = int(done[1]) if done else (max(runs) if runs else 0)
        covs = [int(m[2]) for m in _STAT.finditer(log)]
        result.atheris_coverage = max(covs) if covs else 0
        if proc.returncode != 0:
            artifacts = sorted(p for p in Path(scratch).iterdir() if p.name.startswith(("crash-", "timeout-", "oom-")))
            data = artifacts[0].read_bytes() if artifacts else b""
            kind = "hang" if artifacts and artifacts[0].name.startswith("timeout-") else "crash"
            if "ContractViolation" in log:
                kind = "contract"
            error = next((line.strip() for line in reversed(log.splitlines())
                          if re.match(r"^\s*\w*(Error|Violation|Exception|Hang)\b", line.strip())), f"exit {proc.returncode}")
            result.findings.append(Finding(target.name, "atheris", kind, error[:240], repr(data)[:300]))


def run(targets: list[str] | None = None, hypothesis_s: float = 30.0, atheris_s: float = 30.0,
        log: Any = print) -> list[TargetResult]:
    """The whole fuzzing campaign over ``targets`` (default: all)."""
    results = []
    use_atheris = atheris_s > 0 and atheris_available()
    for name in targets or list(TARGETS):
        target = TARGETS[name]
        result = hypothesis_campaign(target, hypothesis_s)
        log(f"fuzz {name}: hypothesis {result.hypothesis_inputs} inputs in {result.hypothesis_s} s, "
            f"{len(result.findings)} finding(s)")
        if use_atheris:
            atheris_campaign(target, atheris_s, result)
            log(f"fuzz {name}: atheris {result.atheris_inputs} inputs in {result.atheris_s} s "
                f"(cov {result.atheris_coverage}), {len(result.findings)} finding(s) in all")
        results.append(result)
    return results
