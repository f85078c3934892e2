"""Preview and thumbnail of a large frame: decoded once at a reduced DCT scale, still the sizes asked."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from flightsw.imaging.products import make_products
from hal.camera import Frame, encode_jpeg


def test_products_of_a_large_frame_have_the_asked_sizes() -> None:
    rng = np.random.default_rng(3)
    rgb = np.clip(rng.normal(120, 30, (1500, 2000, 3)), 0, 255).astype(np.uint8)
    frame = Frame("jpeg", 2000, 1500, jpeg=encode_jpeg(rgb, 90))
    products = make_products(frame, 60)
    with Image.open(io.BytesIO(products.preview)) as preview:
        assert preview.size == (320, 240)
    with Image.open(io.BytesIO(products.thumbnail)) as thumbnail:
        assert thumbnail.size == (96, 72)
    assert (products.width, products.height) == (2000, 1500) and products.full == frame.jpeg
