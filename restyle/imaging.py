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


# Modes that Pillow resamples as they are, with no full-size copy; every other mode is converted to a
# compact working mode band by band while it is reduced (``_shrink``).
_NATIVE_MODES = ("RGB", "L", "CMYK", "YCbCr")
_HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_BAND_BYTES = 1 << 20  # one band of the working image while shrinking: about a MB whatever the photo's size
_REDUCING_GAP = 3.0  # box-reduce by an integer factor to within 3x of the target, then Lanczos (as Pillow does)
_PEAK = "restyle.peak"  # info key: the full-scale value of a shrunk high-depth image, decided at full size


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
        if max_size is not None and max(img.size) > max_size:
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
    """Longer side to ``max_size`` before any float array exists, keeping the EXIF orientation tag.

    RGB, L, CMYK and YCbCr are resampled as they are. Every other mode is first converted, one band of
    rows at a time, to the compact mode ``to_rgb_array`` would reduce it to anyway, and box-reduced by an
    integer factor band by band, so no full-size copy is made: 1-bit becomes L, a palette RGB (or, with
    transparency, RGB composited on white, as ``to_rgb_array`` does), LA/RGBA/PA are composited on white,
    16-bit and other high-depth samples become 32-bit floats (with their full-scale value decided on the
    whole image, so the shrunk image is normalised as the full one would be). A 12 KB 1-bit PNG of
    5000 x 5000 pixels used to become 600 MB of float32 before the shrink; now it costs the decoded
    image (one byte a pixel) and a few MB.
    """
    h, w = long_side_size(img.height, img.width, max_size)
    exif = img.getexif()
    if img.mode in _NATIVE_MODES:
        out = img.resize((w, h), Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)
    else:
        convert, info = _working_mode(img)
        fx = max(1, int(img.width / w / _REDUCING_GAP))
        fy = max(1, int(img.height / h / _REDUCING_GAP))
        reduced = _reduce_in_bands(img, convert, (fx, fy))
        box = (0.0, 0.0, img.width / fx, img.height / fy)  # the whole image, in reduced coordinates
        out = reduced.resize((w, h), Image.Resampling.LANCZOS, box=box)
        out.info.update(info)
    if exif:
        out.info["exif"] = exif.tobytes()
    return out


def _working_mode(img: Image.Image):  # -> (band -> compact band, info for the result)
    """How to convert a band of ``img`` to the compact mode it is shrunk in, and what the result must carry."""
    mode = img.mode
    if mode in _HIGH_DEPTH_MODES:
        # ``to_rgb_array``'s test, made on the whole image (a shrunk one may no longer reach 255)
        wide = mode.startswith("I;16") or float(img.getextrema()[1]) > 255  # type: ignore[index]
        peak = 65535.0 if wide else 255.0
        return (lambda band: band.convert("F")), {_PEAK: peak}
    if mode == "1":
        return (lambda band: band.convert("L")), {}
    if mode in ("LA", "La", "PA", "RGBA", "RGBa") or (mode == "P" and "transparency" in img.info):
        return _on_white, {}
    return (lambda band: band.convert("RGB")), {}  # P, LAB, HSV, RGBX, ...


def _on_white(band: Image.Image) -> Image.Image:
    """Composite on white, as ``to_rgb_array`` does: averaging the composite is averaging premultiplied colour."""
    rgba = band.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _reduce_in_bands(img: Image.Image, convert, factor: tuple[int, int]) -> Image.Image:
    """``convert(img).reduce(factor)`` made from bands of rows (whole multiples of the factor): the result is
    the same, and no more than one band is ever converted at once."""
    fx, fy = factor
    width, height = img.size
    first = convert(img.crop((0, 0, width, min(height, fy))))
    bytes_per_row = max(1, width * len(first.getbands()) * (4 if first.mode in ("F", "I") else 1))
    rows = fy * max(1, _BAND_BYTES // (bytes_per_row * fy))
    out = Image.new(first.mode, (-(-width // fx), -(-height // fy)))
    for top in range(0, height, rows):
        band = convert(img.crop((0, top, width, min(height, top + rows))))
        out.paste(band.reduce(factor) if factor != (1, 1) else band, (0, top // fy))
    return out


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """Canonical form: ``HxWx3`` float32 RGB in [0, 1], EXIF orientation applied.

    Transparent pixels are composited over white (what a viewer shows);
    16-bit samples keep their precision instead of being truncated to 8 bits.
    """
    peak = img.info.get(_PEAK)  # set by ``_shrink``: decided on the full-size image
    img = ImageOps.exif_transpose(img)
    if img.mode in _HIGH_DEPTH_MODES:
        arr = np.asarray(img, dtype=np.float32)
        if peak is None:
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
    """Float [0, 1] -> uint8, clipped and rounded (not truncated: truncation darkens by half a level).

    One float temporary, changed in place, instead of three: 0.8 ms against 1.1 ms for a 683x1024 picture.
    """
    scaled = np.multiply(arr, np.float32(255.0), dtype=np.float32)
    np.add(scaled, np.float32(0.5), out=scaled)
    np.clip(scaled, 0.0, 255.5, out=scaled)
    return scaled.astype(np.uint8)


def to_float(arr: np.ndarray) -> np.ndarray:
    """uint8 -> float32 [0, 1]; float input is returned as float32 without a copy when it already is."""
    if arr.dtype == np.uint8:  # one pass, no uint8 -> float32 copy first
        return np.multiply(arr, np.float32(1 / 255.0), dtype=np.float32)
    return arr.astype(np.float32, copy=False)


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
