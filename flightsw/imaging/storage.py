"""Image files on disk under a byte quota, with the catalog as the single source of truth.

Why a quota: an SD card that fills up takes the state store, the recorder and the next boot
with it. Captures make room by evicting the oldest unpinned images; if only pinned images are
left the capture is refused. Files are written atomically (temporary file, fsync, rename) before
the catalog row is added, and ``reconcile`` at start-up removes whatever a power cut left
half-done, so catalog and disk always agree. All methods block: run them on the imaging worker.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from flightsw.core.atomic import atomic_write
from flightsw.imaging.catalog import ImageCatalog, ImageRecord
from flightsw.imaging.products import ProductSet

PRODUCT_FILES = {"full": "full.jpg", "preview": "preview.jpg", "thumbnail": "thumb.jpg"}


class StorageFull(Exception):
    """No room for a new capture even after evicting every unpinned image."""


@dataclass(frozen=True)
class QuotaReport:
    """Outcome of making room for a capture."""

    evicted: list[int]
    used_bytes: int
    quota_bytes: int

    @property
    def free_fraction(self) -> float:
        return max(0.0, 1.0 - self.used_bytes / self.quota_bytes)


class ImageStore:
    """Product files per image id, under ``root``, within ``quota_bytes``."""

    def __init__(self, root: Path, quota_bytes: int, fsync: bool = True) -> None:
        if quota_bytes < 16 * 1024:
            raise ValueError(f"image quota {quota_bytes} B is too small (at least 16 KiB)")
        self.root = root
        self.quota_bytes = quota_bytes
        self.fsync = fsync
        root.mkdir(parents=True, exist_ok=True)

    def directory(self, image_id: int) -> Path:
        return self.root / f"{image_id:08d}"

    def path(self, image_id: int, product: str) -> Path:
        try:
            return self.directory(image_id) / PRODUCT_FILES[product]
        except KeyError:
            raise ValueError(
                f"unknown product {product!r}; use one of {', '.join(PRODUCT_FILES)}") from None

    def write(self, image_id: int, products: ProductSet) -> None:
        folder = self.directory(image_id)
        folder.mkdir(parents=True, exist_ok=True)
        for product, data in (("full", products.full), ("preview", products.preview),
                              ("thumbnail", products.thumbnail)):
            atomic_write(self.path(image_id, product), data, fsync=self.fsync)

    def remove(self, image_id: int) -> None:
        shutil.rmtree(self.directory(image_id), ignore_errors=True)

    def make_room(self, catalog: ImageCatalog, incoming_bytes: int) -> QuotaReport:
        """Evict oldest unpinned images until ``incoming_bytes`` fits; ``StorageFull`` if not."""
        if incoming_bytes > self.quota_bytes:
            raise StorageFull(f"a {incoming_bytes} B capture exceeds the {self.quota_bytes} B quota")
        evicted: list[int] = []
        used = catalog.total_bytes()
        while used + incoming_bytes > self.quota_bytes:
            victim = catalog.oldest_unpinned()
            if victim is None:
                raise StorageFull(
                    f"{used} B of {self.quota_bytes} B used by pinned images; unpin or delete some")
            catalog.delete(victim.id)
            self.remove(victim.id)
            evicted.append(victim.id)
            used -= victim.total_bytes
        return QuotaReport(evicted, used, self.quota_bytes)

    def store(self, catalog: ImageCatalog, record: ImageRecord, products: ProductSet) -> None:
        """Files first, catalog row last: a crash in between leaves an orphan ``reconcile`` drops."""
        self.write(record.id, products)
        catalog.add(record)

    def reconcile(self, catalog: ImageCatalog) -> tuple[list[int], list[int]]:
        """Drop orphan folders and rows whose files are gone; returns (orphans, dangling rows)."""
        known = catalog.ids()
        orphans: list[int] = []
        for folder in self.root.iterdir():
            if not folder.is_dir() or not folder.name.isdigit():
                continue
            image_id = int(folder.name)
            if image_id not in known:
                shutil.rmtree(folder, ignore_errors=True)
                orphans.append(image_id)
        dangling = [
            image_id for image_id in sorted(known)
            if not all(self.path(image_id, p).is_file() for p in PRODUCT_FILES)
        ]
        for image_id in dangling:
            catalog.delete(image_id)
            self.remove(image_id)
        return orphans, dangling
