"""Still camera access: one interface, a Raspberry Pi backend on picamera2, a simulator elsewhere.

Why a blocking interface: a still capture takes from milliseconds to the exposure time plus a
frame period and picamera2 is itself blocking. The imaging component runs ``capture`` on the
camera's own worker thread (``workers.run_io("camera", ...)``), never on the event loop.

picamera2 is installed from Raspberry Pi OS packages, not PyPI, so it is imported only when the
"real" backend is opened. Its format named "BGR888" delivers pixels in R, G, B byte order (the
name follows the DRM little-endian convention), which is exactly the RGB order Pillow expects: no
channel swap is needed, and doing one would make the sea look orange.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

OutputFormat = Literal["jpeg", "rgb"]

MIN_EXPOSURE_US = 10
MAX_EXPOSURE_US = 1_000_000
MIN_GAIN = 1.0
MAX_GAIN = 16.0
MAX_WIDTH = 4056
MAX_HEIGHT = 3040


class CameraError(RuntimeError):
    """The camera could not deliver a usable frame."""


class CameraTimeout(CameraError):
    """No frame arrived within the capture timeout (sensor hung, cable, power)."""


class CorruptFrame(CameraError):
    """A frame arrived but its data is not a valid image of the requested size."""


@dataclass(frozen=True)
class CaptureSettings:
    """What one still capture should use; validated so a bad uplink is refused, not attempted."""

    exposure_us: int = 2000
    analogue_gain: float = 1.0
    width: int = 640
    height: int = 480
    output: OutputFormat = "jpeg"
    jpeg_quality: int = 90
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not MIN_EXPOSURE_US <= self.exposure_us <= MAX_EXPOSURE_US:
            raise ValueError(
                f"exposure_us={self.exposure_us} outside [{MIN_EXPOSURE_US}, {MAX_EXPOSURE_US}]")
        if not MIN_GAIN <= self.analogue_gain <= MAX_GAIN:
            raise ValueError(f"analogue_gain={self.analogue_gain} outside [{MIN_GAIN}, {MAX_GAIN}]")
        if not (16 <= self.width <= MAX_WIDTH and 16 <= self.height <= MAX_HEIGHT):
            raise ValueError(
                f"resolution {self.width}x{self.height} outside 16x16..{MAX_WIDTH}x{MAX_HEIGHT}")
        if self.output not in ("jpeg", "rgb"):
            raise ValueError(f"output must be 'jpeg' or 'rgb', not {self.output!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality={self.jpeg_quality} outside [1, 100]")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, not {self.timeout_s}")


@dataclass(frozen=True)
class Frame:
    """One captured still: JPEG bytes or an H x W x 3 uint8 RGB array, plus capture metadata.

    ``metadata`` uses picamera2's key names (``ExposureTime`` in us, ``AnalogueGain``,
    ``SensorTemperature`` in C when the sensor reports it, ...) whatever the backend.
    """

    output: OutputFormat
    width: int
    height: int
    jpeg: bytes | None = None
    rgb: Any = None  # numpy.ndarray, kept Any so hal does not need numpy to import
    metadata: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise ``CorruptFrame`` if the data is not an image of the announced size."""
        if self.output == "jpeg":
            if not self.jpeg:
                raise CorruptFrame("empty JPEG frame")
            size = jpeg_size(self.jpeg)
            if size != (self.width, self.height):
                raise CorruptFrame(f"JPEG is {size[0]}x{size[1]}, expected {self.width}x{self.height}")
            return
        shape = getattr(self.rgb, "shape", None)
        if shape != (self.height, self.width, 3) or str(getattr(self.rgb, "dtype", "")) != "uint8":
            raise CorruptFrame(
                f"raw frame has shape {shape}, expected ({self.height}, {self.width}, 3) uint8")


def jpeg_size(data: bytes) -> tuple[int, int]:
    """Fully decode a JPEG (so truncation and garbage are caught) and return (width, height)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG":
                raise CorruptFrame(f"frame is {image.format}, not JPEG")
            image.load()
            return image.size
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise CorruptFrame(f"undecodable JPEG: {exc}") from exc


def encode_jpeg(rgb: Any, quality: int) -> bytes:
    """Encode an RGB uint8 array as baseline JPEG (both backends use this, so output matches)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


class Camera(Protocol):
    """A still camera. All methods block; call them on the camera's worker thread."""

    def open(self) -> None:
        """Power up / acquire the sensor (the planner allows a lead time for this)."""

    def capture(self, settings: CaptureSettings) -> Frame:
        """Take one still; raise ``CameraTimeout`` or ``CameraError`` when that fails."""

    def close(self) -> None:
        """Release the sensor so the payload can be powered down."""


class Picamera2Camera:
    """The Raspberry Pi camera through picamera2 (libcamera), in manual exposure."""

    def __init__(self, camera_num: int = 0, settle_frames: int = 2) -> None:
        self.camera_num = camera_num
        self.settle_frames = settle_frames
        self._cam: Any = None
        self._configured: tuple[int, int] | None = None

    def open(self) -> None:
        if self._cam is not None:
            return
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found]
        except ImportError as exc:
            raise CameraError(
                "picamera2 is not installed: on Raspberry Pi OS run "
                "'apt install python3-picamera2' and create the venv with "
                "--system-site-packages, or use backend = \"sim\"") from exc
        try:
            self._cam = Picamera2(self.camera_num)
        except (IndexError, RuntimeError) as exc:
            raise CameraError(f"camera {self.camera_num} not found: {exc}") from exc
        self._configured = None

    def _configure(self, width: int, height: int) -> None:
        if self._configured == (width, height):
            return
        cam = self._cam
        if self._configured is not None:
            cam.stop()
        config = cam.create_still_configuration(main={"size": (width, height), "format": "BGR888"})
        cam.configure(config)
        cam.start()
        self._configured = (width, height)

    def capture(self, settings: CaptureSettings) -> Frame:
        if self._cam is None:
            raise CameraError("camera not open")
        self._configure(settings.width, settings.height)
        cam = self._cam
        cam.set_controls({
            "AeEnable": False,
            "AwbEnable": False,
            "ExposureTime": settings.exposure_us,
            "AnalogueGain": settings.analogue_gain,
        })
        request = None
        try:
            for _ in range(self.settle_frames + 1):  # frames in flight carry the old controls
                if request is not None:
                    request.release()
                job = cam.capture_request(wait=False)
                try:
                    request = cam.wait(job, timeout=settings.timeout_s)
                except TimeoutError as exc:
                    raise CameraTimeout(
                        f"no frame within {settings.timeout_s} s from camera {self.camera_num}"
                    ) from exc
            assert request is not None
            rgb = request.make_array("main")  # "BGR888" == R, G, B bytes per pixel
            metadata = dict(request.get_metadata())
        finally:
            if request is not None:
                request.release()
        frame_rgb = rgb[: settings.height, : settings.width, :3]
        if settings.output == "rgb":
            frame = Frame("rgb", settings.width, settings.height, rgb=frame_rgb, metadata=metadata)
        else:
            frame = Frame("jpeg", settings.width, settings.height,
                          jpeg=encode_jpeg(frame_rgb, settings.jpeg_quality), metadata=metadata)
        frame.validate()
        return frame

    def close(self) -> None:
        cam, self._cam = self._cam, None
        self._configured = None
        if cam is not None:
            try:
                cam.stop()
            finally:
                cam.close()
