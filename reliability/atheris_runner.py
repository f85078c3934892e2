"""`python -m reliability.atheris_runner TARGET CORPUS [libFuzzer options]`: one target of
``reliability.targets`` under atheris (libFuzzer), coverage-guided over the flight code.

Run by ``reliability.fuzz`` in a child process per target, because libFuzzer ends the process
when it is done. An exception escaping the target (undocumented error or ContractViolation) is
a crash: libFuzzer saves the input as ``crash-*`` beside the artifact prefix and exits non-zero.
"""

from __future__ import annotations

import sys

import atheris


def main() -> None:
    name = sys.argv[1]
    # Only modules first imported inside this block are instrumented: the targets import the
    # flight code lazily, so running each seed once here imports what the target reaches.
    with atheris.instrument_imports(include=["flightsw", "hal"]):
        from reliability.targets import TARGETS

        target = TARGETS[name]
        for seed in target.seeds():
            target.run(seed)

    def one(data: bytes) -> None:
        target.run(bytes(data))

    atheris.Setup([sys.argv[0], *sys.argv[2:]], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
