"""The benchmark suite cannot rot unnoticed: one benchmark in quick mode through the whole chain
(fresh process per repeat, aggregation, page and JSON), its output checked against the schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_quick_core_benchmark_writes_the_page_and_its_json(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "core", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[core] repeat 1/1" in done.stderr  # progress is printed

    run = json.loads((tmp_path / "performance.json").read_text())
    assert run["quick"] is True and run["failed"] == []
    assert {"cpu", "cores", "python", "calibration_ms"} <= run["machine"].keys()
    (bench,) = run["benchmarks"]
    assert bench["module"] == "core" and bench["repeats"] == 1
    figures = {f["key"]: f for f in bench["figures"]}
    assert set(figures) == {"record_append_us", "atomic_save_us", "command_us"}
    for fig in figures.values():
        assert fig["median"] > 0 and fig["worst"] >= fig["median"]
        assert fig["baseline_median"] > 0 and fig["ratio_median"] == fig["median"] / fig["baseline_median"]
        assert len(fig["values"]) == len(fig["baseline_values"]) == 1

    page = (tmp_path / "performance.md").read_text()
    assert page.startswith("# Performance budget\n") and "make bench" in page
    assert "| command submit → completion (NO_OP) |" in page


def test_an_unknown_benchmark_name_is_one_line_naming_it(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "--only", "nosuch", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "unknown benchmark(s) nosuch" in done.stderr
    assert not (tmp_path / "performance.md").exists()
