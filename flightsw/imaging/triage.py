"""Onboard image triage: a cloud-cover and an exposure score per capture, cheap enough for a Pi Zero.

Why on board: at 9600 bit/s the ground cannot look at everything; with a score per image the
catalog can be sorted and the clearest, best exposed images sent first, and the cloudy or
badly exposed ones left for later or deleted. Both scores are plain numpy statistics of the
320-px preview in grey levels (a few ms; the component still runs them in the CPU executor):

* **cloud** (0 clear .. 1 overcast): the share of 4x4-pixel blocks that are bright and smooth.
  Clouds are the brightest thing in a daylight Earth scene and, at this resolution, have little
  texture; bright land (desert, snow) usually has more. "Bright" is judged against the signal a
  cloud gives with the exposure actually used (``exposure_us`` x ``gain``) and, when known, the
  sun elevation, so a long exposure of dark sea is not taken for cloud; a saturated block counts
  as cloud (its texture is gone either way: the exposure score says why). In an image too dark
  to tell (under-exposed) nothing counts as cloud: the exposure score is what flags it.
* **exposure** (0 unusable .. 1 good): penalises clipped pixels at either end and a histogram
  squeezed into the dark end (the 99th percentile far below full scale).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np

BLOCK = 4
#: grey level (0..1) of a cloud at the reference exposure (2 ms, gain 1, sun 45 deg) is ~0.7
REFERENCE_EXPOSURE = 2000.0
CLOUD_BRIGHT_AT_REFERENCE = 0.30
REFERENCE_SUN_SIN = math.sin(math.radians(45.0))
#: below this grey level nothing is called cloud, whatever the exposure (too dark to tell)
CLOUD_BRIGHT_FLOOR = 0.12
CLOUD_MAX_TEXTURE = 0.05
CLIP_HIGH = 250 / 255
CLIP_LOW = 6 / 255
#: a well-exposed daylight scene puts its 99th percentile at least this high
GOOD_P99 = 0.12


@dataclass(frozen=True)
class TriageScores:
    cloud: float      # 0 clear .. 1 overcast
    exposure: float   # 0 unusable .. 1 good
    mean: float       # mean grey level 0..1
    clipped_high: float  # share of pixels at full scale
    clipped_low: float   # share of pixels at black

    def to_json(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in vars(self).items()}


def grey(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an H x W x 3 uint8 array, as float 0..1."""
    return (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114) / 255.0


def score_grey(image: np.ndarray, exposure_us: float = REFERENCE_EXPOSURE, gain: float = 1.0,
               sun_elevation_deg: float | None = None) -> TriageScores:
    """Scores of a grey image (float 0..1, at least 8 x 8 pixels); ``sun_elevation_deg`` at the
    imaged point when known (a TLE and UTC on board), else the reference 45 degrees."""
    if image.ndim != 2 or min(image.shape) < 2 * BLOCK:
        raise ValueError(f"expected a grey image of at least {2 * BLOCK}x{2 * BLOCK} pixels, got {image.shape}")
    h, w = (image.shape[0] // BLOCK) * BLOCK, (image.shape[1] // BLOCK) * BLOCK
    blocks = image[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).swapaxes(1, 2).reshape(-1, BLOCK * BLOCK)
    block_mean = blocks.mean(axis=1)
    block_std = blocks.std(axis=1)
    scale = exposure_us * gain / REFERENCE_EXPOSURE
    if sun_elevation_deg is not None:
        scale *= max(math.sin(math.radians(sun_elevation_deg)), 0.0) / REFERENCE_SUN_SIN
    bright = min(max(CLOUD_BRIGHT_AT_REFERENCE * scale, CLOUD_BRIGHT_FLOOR), 0.9)
    saturated = block_mean >= CLIP_HIGH
    cloudy = ((block_mean >= bright) & (block_std <= CLOUD_MAX_TEXTURE)) | saturated
    clipped_high = float(np.mean(image >= CLIP_HIGH))
    clipped_low = float(np.mean(image <= CLIP_LOW))
    p99 = float(np.percentile(image, 99))
    exposure = (min(1.0, p99 / GOOD_P99)
                * max(0.0, 1.0 - 3.0 * clipped_high)
                * max(0.0, 1.0 - 2.0 * clipped_low))
    return TriageScores(cloud=float(np.mean(cloudy)), exposure=exposure, mean=float(image.mean()),
                        clipped_high=clipped_high, clipped_low=clipped_low)


def score_jpeg(jpeg: bytes, exposure_us: float = REFERENCE_EXPOSURE, gain: float = 1.0,
               sun_elevation_deg: float | None = None) -> TriageScores:
    """Scores of a JPEG (the preview: decoded in grey, a few ms). CPU work: run it in an executor."""
    from PIL import Image

    with Image.open(io.BytesIO(jpeg)) as decoded:
        decoded.draft("L", (decoded.width // 2, decoded.height // 2))  # DCT scaling: cheaper decode
        image = np.asarray(decoded.convert("L"), dtype=np.float64) / 255.0
    return score_grey(image, exposure_us, gain, sun_elevation_deg)


__all__ = ["TriageScores", "grey", "score_grey", "score_jpeg"]
