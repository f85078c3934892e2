"""Report: the plots and the page are written, show what happened, and say pass or fail."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from sim.report import ReportData, build_report
from sim.scenario import loads_scenario

SCENARIO = """
[scenario]
name = "report-test"
start = 2026-06-01T00:00:00Z
duration = "8h"
tick_s = 10.0
[[expect]]
metric = "eclipses"
min = 4
[[expect]]
metric = "battery_soc_min"
min = 0.99
"""


def test_report_files_content_and_verdict(tmp_path: Path) -> None:
    scenario = loads_scenario(SCENARIO)
    world = scenario.build_world()
    world.step(scenario.end_epoch)
    results = scenario.evaluate(world.metrics())
    assert [r.passed for r in results] == [True, False]
    t0 = scenario.start_epoch
    data = ReportData.from_world(
        scenario.name, world, expectations=results,
        modes=[(t0, "safe"), (t0 + 3600, "nominal")],
        events=[(t0 + 100.0, "WARNING", "mag <frozen>"), (t0 + 200.0, "INFO", "boot")],
        data_volume=[(t0 + k * 600.0, k * 2048.0, k * 64.0) for k in range(49)],
    )
    page = build_report(tmp_path / "report", data)
    out = page.parent
    text = page.read_text()
    pngs = ["battery_soc.png", "battery_voltage.png", "temperatures.png", "contacts.png", "modes.png",
            "data_volume.png", "events.png"]
    for name in pngs:
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.size[0] == 1000
        assert f"src='{name}'" in text
    assert "FAILED" in text and "battery_soc_min" in text
    assert "mag &lt;frozen&gt;" in text  # event text is escaped
    summary = json.loads((out / "report.json").read_text())
    assert summary["passed"] is False
    assert summary["metrics"]["eclipses"] == world.metrics()["eclipses"]
    assert len(summary["contacts"]) == world.metrics()["contacts"] + (1 if world.recording.columns["elevation_almaty"][0] >= 0 else 0)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_eclipses_are_shaded_on_the_battery_plot(tmp_path: Path) -> None:
    scenario = loads_scenario(SCENARIO)
    world = scenario.build_world()
    world.step(scenario.end_epoch)
    page = build_report(tmp_path, ReportData.from_world(scenario.name, world))
    events = [e for e in world.events if e.kind.startswith("eclipse")]
    entry = next(e for e in events if e.kind == "eclipse_entry")
    exit_ = next(e for e in events if e.kind == "eclipse_exit" and e.t > entry.t)
    middle_h = ((entry.t + exit_.t) / 2 - world.start) / 3600.0
    sunlit_h = (exit_.t + 600.0 - world.start) / 3600.0
    with Image.open(page.parent / "battery_soc.png") as image:
        rgb = image.convert("RGB")
        left, right = 70, 1000 - 150
        span_h = (world.time - world.start) / 3600.0

        def pixel(hours: float) -> tuple[int, int, int]:
            return rgb.getpixel((round(left + hours / span_h * (right - left)), 250))  # below the SoC trace  # type: ignore[return-value]

        assert pixel(middle_h) == (0xE8, 0xE8, 0xF4)
        assert pixel(sunlit_h) == (255, 255, 255)
