"""Image products made from one capture: the full image, a preview and a thumbnail.

Why three: at 9600 bit/s a 640x480 JPEG costs over a minute of a ten-minute pass, so the ground
sees thumbnails (~2 KB) of everything first and asks for previews or full images of the good
ones. Encoding is CPU work: call ``make_products`` through ``workers.run_cpu``.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from hal.camera import Frame, encode_jpeg, jpeg_size

FULL_QUALITY_FROM_RAW = 92
THUMBNAIL_QUALITY = 70


@dataclass(frozen=True)
class ProductSet:
    """Encoded products of one capture, with the checksum the catalog keeps for the full image."""

    full: bytes
    preview: bytes
    thumbnail: bytes
    width: int
    height: int
    sha256: str

    @property
    def total_bytes(self) -> int:
        return len(self.full) + len(self.preview) + len(self.thumbnail)


def _resized_jpegs(full_jpeg: bytes, sizes: list[tuple[int, int]]) -> list[bytes]:
    """JPEGs of ``full_jpeg`` scaled to each (longest side, quality), decoded once.

    The decoder is asked for the smallest DCT scale (1/2, 1/4, 1/8) still at least as large as the
    biggest product (``Image.draft``): a 12 MP frame is decoded straight to ~500 x 380 instead of
    36 MB of full-resolution pixels, about a tenth of the CPU and of the memory, and the worker
    holds the interpreter (and so the flight loop) for that much less time.
    """
    from PIL import Image

    largest = max(side for side, _ in sizes)
    with Image.open(io.BytesIO(full_jpeg)) as decoded:
        decoded.draft("RGB", (largest, largest))
        rgb = decoded.convert("RGB")
    out = []
    for side, quality in sorted(sizes, key=lambda s: -s[0]):
        rgb.thumbnail((side, side), Image.Resampling.LANCZOS)  # each product from the one before
        buffer = io.BytesIO()
        rgb.save(buffer, format="JPEG", quality=quality, optimize=True)
        out.append((side, quality, buffer.getvalue()))
    return [next(data for s, q, data in out if (s, q) == wanted) for wanted in sizes]


def make_products(frame: Frame, preview_quality: int, preview_px: int = 320,
                  thumbnail_px: int = 96) -> ProductSet:
    """Validate ``frame`` (``CorruptFrame`` if broken) and encode its three products."""
    if not 1 <= preview_quality <= 100:
        raise ValueError(f"preview_quality={preview_quality} outside [1, 100]")
    if not 16 <= thumbnail_px <= preview_px:
        raise ValueError(f"thumbnail_px={thumbnail_px} must be in [16, preview_px={preview_px}]")
    frame.validate()
    if frame.output == "jpeg":
        assert frame.jpeg is not None
        full = frame.jpeg
    else:
        full = encode_jpeg(frame.rgb, FULL_QUALITY_FROM_RAW)
    width, height = jpeg_size(full)
    preview, thumbnail = _resized_jpegs(full, [(preview_px, preview_quality), (thumbnail_px, THUMBNAIL_QUALITY)])
    return ProductSet(
        full=full,
        preview=preview,
        thumbnail=thumbnail,
        width=width,
        height=height,
        sha256=hashlib.sha256(full).hexdigest(),
    )
