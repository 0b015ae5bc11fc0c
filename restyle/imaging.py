"""The one pixel module: decoding, encoding, float<->uint8 and resizing, for every front end.

``decode_image`` turns whatever a user hands us (any path or bytes Pillow
reads, with EXIF rotation, palette, alpha, grayscale, CMYK or 16-bit
samples) into one canonical form: an ``HxWx3`` float32 RGB array in [0, 1].
``encode_image``/``save_image`` go back to bytes or an atomically written
file. ``to_float``/``to_uint8`` are the only float<->uint8 conversions,
``long_side_size`` the only "longest side to N" arithmetic and ``resize`` /
``fit_max_size`` the only image resize. The CLI, the API, the video path, the
reference suite and the benchmarks all call these, so a rounding or
resampling choice is made once.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from restyle.atomic import atomic_path
from restyle.errors import BadImage, ImageTooLarge, InputNotFound, UserError

DEFAULT_MAX_PIXELS = 120_000_000  # about 11k x 11k; beyond it we refuse to decode
FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}

# Only these decoders are ever tried (the formats IMAGE_SUFFIXES promise; the
# JPEG decoder also opens the multi-picture JPEGs many phones write). Pillow
# would otherwise try every plugin it has, EPS among them, which runs
# Ghostscript when it is installed.
DECODERS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
# Pillow's own bomb guard (Image.MAX_IMAGE_PIXELS) stays on for the whole
# process: open_image checks its own, lower limit from the header first and
# reports both the same way.


# Modes that Pillow resamples directly in 8 bits; others (palette, 1-bit, 16-bit) shrink later, as floats.
_SHRINKABLE_MODES = ("RGB", "RGBA", "L", "LA", "CMYK", "YCbCr")


def open_image(
    source: str | os.PathLike | bytes | io.BytesIO, max_pixels: int = DEFAULT_MAX_PIXELS, max_size: int | None = None
) -> Image.Image:
    """Open and fully decode an image, refusing bombs from the header alone.

    With ``max_size`` the image is shrunk while still 8-bit so that its longer
    side is at most ``max_size``: JPEGs decode straight at 1/2, 1/4 or 1/8
    scale (``draft``, DCT scaling in libjpeg), then a Lanczos resize finishes
    the job. The full-resolution float32 array (12 bytes a pixel, 290 MB for
    a 24 MP photo) is never built for a photo that will be shrunk anyway.
    """
    name = "image"
    try:
        if isinstance(source, (bytes, bytearray)):
            fh: io.BytesIO | str = io.BytesIO(source)
        elif isinstance(source, io.BytesIO):
            fh = source
        else:
            name = str(source)
            if not Path(source).is_file():
                raise InputNotFound(f"no such file: {source}")
            fh = str(source)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is checked below
            Image.init()  # registers every plugin once (cheap after the first call), so each name in DECODERS exists
            img = Image.open(fh, formats=DECODERS)
        w, h = img.size
        if w * h > max_pixels:
            raise ImageTooLarge(
                f"{name} has {w}x{h} = {w * h / 1e6:.1f} MP, over the limit of {max_pixels / 1e6:.1f} MP"
            )
        if w < 1 or h < 1:
            raise BadImage(f"{name} has no pixels")
        if max_size is not None and img.format == "JPEG" and max(w, h) > max_size:
            img.draft(img.mode if img.mode in ("RGB", "L") else None, (max_size, max_size))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
        if max_size is not None and max(img.size) > max_size and img.mode in _SHRINKABLE_MODES:
            img = _shrink(img, max_size)
        return img
    except UserError:
        raise
    except UnidentifiedImageError:
        raise BadImage(f"{name} is not a recognised image ({', '.join(DECODERS)})") from None
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"{name} is too large to decode safely ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadImage(f"{name} could not be decoded (truncated or corrupt: {exc})") from None


def _shrink(img: Image.Image, max_size: int) -> Image.Image:
    """Longer side to ``max_size`` in 8 bits, keeping the EXIF orientation tag for ``to_rgb_array``."""
    h, w = long_side_size(img.height, img.width, max_size)
    size = (w, h)
    exif = img.getexif()
    out = img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if exif:
        out.info["exif"] = exif.tobytes()
    return out


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """Canonical form: ``HxWx3`` float32 RGB in [0, 1], EXIF orientation applied.

    Transparent pixels are composited over white (what a viewer shows);
    16-bit samples keep their precision instead of being truncated to 8 bits.
    """
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / peak, 0.0, 1.0)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        arr = np.asarray(rgba, dtype=np.float32) / 255.0
        alpha = arr[:, :, 3:4]
        return arr[:, :, :3] * alpha + (1.0 - alpha)
    if img.mode != "RGB":
        img = img.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB...
    return np.asarray(img, dtype=np.float32) / 255.0


def decode_image(
    source: str | os.PathLike | bytes, max_pixels: int = DEFAULT_MAX_PIXELS, max_size: int | None = None
) -> np.ndarray:
    """Any supported image -> ``HxWx3`` float32 RGB [0, 1]; with ``max_size``, longer side at most that."""
    return to_rgb_array(open_image(source, max_pixels, max_size))


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """Float [0, 1] -> uint8, clipped and rounded (not truncated: truncation darkens by half a level)."""
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def to_float(arr: np.ndarray) -> np.ndarray:
    """uint8 -> float32 [0, 1]; float input is returned as float32 without a copy when it already is."""
    return arr.astype(np.float32) * (1 / 255.0) if arr.dtype == np.uint8 else arr.astype(np.float32, copy=False)


def long_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """``(height, width)`` scaled so that the longer side is ``size`` (aspect kept, sides at least 1).

    This enlarges as well as shrinks; ``fit_max_size`` is the never-enlarging use.
    """
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(image: np.ndarray, height: int, width: int, interpolation: int | None = None) -> np.ndarray:
    """Resize an ``HxW[xC]`` array; the same array comes back when the size already matches.

    By default area averaging shrinks (no aliasing) and bicubic enlarges; the
    bicubic overshoot is clipped back to [0, 1] for float images. A caller
    resampling something that is not a [0, 1] image (an optical-flow field)
    passes its own OpenCV ``interpolation`` and gets no clipping.
    """
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    if interpolation is not None:
        return cv2.resize(image, (width, height), interpolation=interpolation)
    shrinking = height * width < h * w
    out = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    if shrinking or out.dtype == np.uint8:  # uint8 bicubic saturates by itself
        return out
    return np.clip(out, 0.0, 1.0, out=out)


def fit_max_size(image: np.ndarray, max_size: int | None) -> np.ndarray:
    """Shrink so that the longest side is at most ``max_size`` (never enlarges; ``None`` keeps the size)."""
    if max_size is None or max(image.shape[:2]) <= max_size:
        return image
    return resize(image, *long_side_size(*image.shape[:2], max_size))


def normalize_format(fmt: str) -> str:
    try:
        return FORMATS[fmt.lower().lstrip(".")]
    except KeyError:
        raise UserError(f"unsupported output format {fmt!r}; choose jpg, png or webp") from None


def encode_image(arr: np.ndarray, fmt: str = "jpeg", quality: int = 92) -> bytes:
    """Encode an RGB float [0,1] (or uint8) array. ``quality`` applies to JPEG/WebP."""
    pil_fmt = normalize_format(fmt)
    if not 1 <= quality <= 100:
        raise UserError(f"quality must be between 1 and 100, not {quality}")
    img = Image.fromarray(arr if arr.dtype == np.uint8 else to_uint8(arr), "RGB")
    buf = io.BytesIO()
    kwargs: dict = {}
    if pil_fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = quality
    if pil_fmt == "JPEG":
        kwargs["subsampling"] = 0 if quality >= 90 else 2
    img.save(buf, pil_fmt, **kwargs)
    return buf.getvalue()


def format_from_path(path: str | os.PathLike) -> str:
    return normalize_format(Path(path).suffix or ".png")


def save_image(arr: np.ndarray, path: str | os.PathLike, quality: int = 92, fmt: str | None = None) -> Path:
    """Encode then write atomically: a crash never leaves half an image at ``path``."""
    path = Path(path)
    data = encode_image(arr, fmt or format_from_path(path), quality)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path
