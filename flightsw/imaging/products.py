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


def _resized_jpeg(full_jpeg: bytes, longest_side: int, quality: int) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(full_jpeg)) as decoded:
        rgb = decoded.convert("RGB")
    rgb.thumbnail((longest_side, longest_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


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
    return ProductSet(
        full=full,
        preview=_resized_jpeg(full, preview_px, preview_quality),
        thumbnail=_resized_jpeg(full, thumbnail_px, THUMBNAIL_QUALITY),
        width=width,
        height=height,
        sha256=hashlib.sha256(full).hexdigest(),
    )
