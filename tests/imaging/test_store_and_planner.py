"""Products, the SQLite catalog, the quota store and the SGP4 overflight planner."""

from __future__ import annotations

from pathlib import Path

import pytest

from flightsw.imaging.catalog import ImageCatalog, ImageRecord
from flightsw.imaging.planner import OrbitPredictor, Target
from flightsw.imaging.products import make_products
from flightsw.imaging.storage import ImageStore, StorageFull
from hal.camera import CaptureSettings, CorruptFrame, jpeg_size
from sim.camera import FixedScene, SimCamera
from sim.environment.orbit import Orbit, default_tle


@pytest.fixture(scope="module")
def products():
    camera = SimCamera(FixedScene(43.2, 76.9, 45.0), seed=2)
    camera.open()
    return make_products(camera.capture(CaptureSettings(width=320, height=240)), 60)


def _record(products, image_id: int = 0) -> ImageRecord:
    return ImageRecord(id=image_id, boot=1, since_boot=10.0, utc=None, lat=None, lon=None,
                       exposure_us=2000, analogue_gain=1.0, width=products.width,
                       height=products.height, sha256=products.sha256,
                       full_bytes=len(products.full), preview_bytes=len(products.preview),
                       thumbnail_bytes=len(products.thumbnail), temperatures={"sensor": 21.5})


def test_products_are_smaller_views_of_the_full_image(products) -> None:
    assert jpeg_size(products.full) == (320, 240)
    assert max(jpeg_size(products.thumbnail)) == 96
    assert max(jpeg_size(products.preview)) == 320
    assert len(products.thumbnail) < len(products.preview) <= len(products.full) * 1.5


def test_preview_quality_changes_its_size() -> None:
    camera = SimCamera(FixedScene(10.0, 20.0, 60.0), seed=3)
    camera.open()
    frame = camera.capture(CaptureSettings(output="rgb", width=640, height=480))
    low = make_products(frame, 10)
    high = make_products(frame, 90)
    assert len(low.preview) < len(high.preview)


def test_corrupt_frames_are_refused() -> None:
    camera = SimCamera(FixedScene(0.0, 0.0, 30.0))
    camera.open()
    camera.fail_next("corrupt")
    with pytest.raises(CorruptFrame):
        make_products(camera.capture(CaptureSettings(width=160, height=120)), 60)


def test_catalog_survives_reopen(tmp_path: Path, products) -> None:
    catalog = ImageCatalog(tmp_path / "catalog.sqlite")
    record = _record(products, catalog.next_id())
    catalog.add(record)
    catalog.set_pinned(record.id, True)
    catalog.close()
    reopened = ImageCatalog(tmp_path / "catalog.sqlite")
    again = reopened.get(record.id)
    assert again is not None and again.pinned and again.temperatures == {"sensor": 21.5}
    assert again.sha256 == products.sha256
    assert reopened.next_id() == record.id + 1


def test_quota_holds_under_a_burst_and_pinned_images_are_never_evicted(tmp_path: Path,
                                                                       products) -> None:
    catalog = ImageCatalog(tmp_path / "catalog.sqlite", synchronous=False)
    quota = products.total_bytes * 5 + 100
    store = ImageStore(tmp_path / "products", quota, fsync=False)
    pinned = []
    for n in range(40):
        store.make_room(catalog, products.total_bytes)
        record = _record(products, catalog.next_id())
        store.store(catalog, record, products)
        if n in (0, 3):
            catalog.set_pinned(record.id, True)
            pinned.append(record.id)
        assert catalog.total_bytes() <= quota
        on_disk = sum(f.stat().st_size for f in store.root.rglob("*") if f.is_file())
        assert on_disk <= quota
    remaining = catalog.ids()
    assert set(pinned) <= remaining
    assert len(remaining) == 5
    assert max(remaining) == 40  # newest kept, oldest unpinned gone


def test_storage_full_when_only_pinned_images_remain(tmp_path: Path, products) -> None:
    catalog = ImageCatalog(tmp_path / "catalog.sqlite", synchronous=False)
    store = ImageStore(tmp_path / "products", products.total_bytes * 2 + 10, fsync=False)
    for _ in range(2):
        record = _record(products, catalog.next_id())
        store.store(catalog, record, products)
        catalog.set_pinned(record.id, True)
    with pytest.raises(StorageFull, match="pinned"):
        store.make_room(catalog, products.total_bytes)


def test_reconcile_drops_what_a_power_cut_left_half_done(tmp_path: Path, products) -> None:
    catalog = ImageCatalog(tmp_path / "catalog.sqlite", synchronous=False)
    store = ImageStore(tmp_path / "products", 10_000_000, fsync=False)
    good = _record(products, 1)
    store.store(catalog, good, products)
    store.write(2, products)  # files written, crash before the catalog row
    broken = _record(products, 3)
    store.store(catalog, broken, products)
    store.path(3, "full").unlink()  # row present, file lost
    orphans, dangling = store.reconcile(catalog)
    assert orphans == [2] and dangling == [3]
    assert catalog.ids() == {1}
    assert not store.directory(2).exists()


def test_planner_matches_the_simulated_orbit_and_finds_a_target() -> None:
    line1, line2 = default_tle()
    predictor = OrbitPredictor(line1, line2)
    orbit = Orbit.from_tle(line1, line2)
    start = orbit.epoch_seconds + 3600.0
    truth = orbit.state(start)
    sub = predictor.subpoint(start)
    assert abs(sub.lat_deg - truth.lat_deg) < 0.01 and abs(sub.lon_deg - truth.lon_deg) < 0.01
    ahead = predictor.subpoint(start + 5000.0)
    target = Target(ahead.lat_deg + 0.2, ahead.lon_deg, 50.0)
    overflight = predictor.next_overflight(target, start)
    assert overflight is not None
    assert abs(overflight.utc - (start + 5000.0)) < 30.0
    assert overflight.distance_km < 25.0
    at_capture = orbit.state(overflight.utc)
    assert abs(at_capture.lat_deg - overflight.subpoint.lat_deg) < 0.01


def test_planner_reports_no_pass_when_the_target_is_never_overflown() -> None:
    predictor = OrbitPredictor(*default_tle())
    start = Orbit.from_tle(*default_tle()).epoch_seconds
    assert predictor.next_overflight(Target(43.2, 76.9, 20.0), start, horizon_s=6 * 3600) is None


@pytest.mark.parametrize("mutate, message", [
    (lambda l1, l2: (l1[:-1] + str((int(l1[-1]) + 1) % 10), l2), "checksum"),
    (lambda l1, l2: (l1[:40], l2), "69"),
    (lambda l1, l2: (l2, l1), "must start"),
])
def test_invalid_tles_are_refused_with_the_reason(mutate, message) -> None:
    with pytest.raises(ValueError, match=message):
        OrbitPredictor(*mutate(*default_tle()))


def test_target_validation() -> None:
    with pytest.raises(ValueError, match="latitude"):
        Target(95.0, 0.0, 10.0)
    with pytest.raises(ValueError, match="radius"):
        Target(0.0, 0.0, 0.0)
