"""Decoding with ``max_size`` shrinks every image mode before a full-size float array exists.

A 1-bit PNG of 5000 x 5000 pixels compresses to a few KB; decoded for a 256 px result it used to become
three full-size arrays (RGB bytes, then float32 twice: ~670 MB) before the shrink. The peak memory of a
decode is measured in a fresh process (its high-water mark, reset just before the decode); a memory
bound, not a timing. The shrunk decodes are also compared with a full decode shrunk afterwards: EXIF
orientation, alpha on white, 16-bit and high-depth normalisation stay what they were.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from restyle.imaging import decode_image, fit_max_size

REPO = Path(__file__).resolve().parents[1]
SIDE = 5000
MB = 1 << 20

# Peak memory of one decode in a fresh process: the high-water mark above the resident size just before it.
# Linux resets the high-water mark on "5" > /proc/self/clear_refs; elsewhere ru_maxrss after the imports.
_MEASURE = """
import re, resource, sys
from restyle.imaging import decode_image

data = open(sys.argv[1], "rb").read()
try:
    open("/proc/self/clear_refs", "w").write("5")
    status = lambda key: int(re.search(key + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1))
    before = status("VmRSS")
    peak = lambda: status("VmHWM")
except OSError:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
image = decode_image(data, max_size=int(sys.argv[2]))
print(image.shape[0], image.shape[1], (peak() - before) * 1024)
"""


def _drawn(mode: str, background: object, ink: object, side: int = SIDE) -> Image.Image:
    """A mostly empty picture with a few shapes: tiny as a PNG, ``side`` x ``side`` pixels once decoded."""
    img = Image.new(mode, (side, side), background)  # type: ignore[arg-type]
    draw = ImageDraw.Draw(img)
    for i in range(0, side, side // 10):
        draw.line((i, 0, side - i, side), fill=ink, width=5)  # type: ignore[arg-type]
    draw.ellipse((side // 4, side // 4, 3 * side // 4, 3 * side // 4), outline=ink, width=9)  # type: ignore[arg-type]
    return img


def _palette(img: Image.Image) -> Image.Image:
    img.putpalette([255, 255, 255, 20, 40, 200] + [0] * (256 * 3 - 6))
    return img


# name -> (how to make it, file format, save options, bytes per pixel Pillow keeps once decoded)
CASES = {
    "1": (lambda: _drawn("1", 1, 0), "PNG", {}, 1),
    "L": (lambda: _drawn("L", 220, 10), "PNG", {}, 1),
    "P": (lambda: _palette(_drawn("P", 0, 1)), "PNG", {}, 1),
    "P+transparency": (lambda: _palette(_drawn("P", 0, 1)), "PNG", {"transparency": 0}, 1),
    "LA": (lambda: _drawn("LA", (220, 100), (10, 255)), "PNG", {}, 4),
    "RGBA": (lambda: _drawn("RGBA", (220, 120, 40, 100), (10, 20, 30, 255)), "PNG", {}, 4),
    "I;16": (lambda: _drawn("I;16", 40000, 1000), "PNG", {}, 2),
    "I": (lambda: _drawn("I", 3000, 10), "TIFF", {"compression": "tiff_deflate"}, 4),
    "F": (lambda: _drawn("F", 200.0, 10.0), "TIFF", {"compression": "tiff_deflate"}, 4),
}


def _encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def _decode_peak(path: Path, max_size: int) -> tuple[tuple[int, int], float]:
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), str(max_size)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    h, w, extra = out.stdout.split()
    return (int(h), int(w)), int(extra) / MB


def test_a_tiny_1_bit_png_of_25_megapixels_decodes_at_256_px_in_under_100_mb(tmp_path: Path) -> None:
    """The issue's case: the shrink used to come after ~670 MB of float32."""
    path = tmp_path / "one-bit.png"
    path.write_bytes(_encode(Image.new("1", (SIDE, SIDE), 1), "PNG", optimize=True))
    assert path.stat().st_size < 50_000
    shape, extra = _decode_peak(path, 256)
    assert shape == (256, 256)
    assert extra <= 100, f"decoding took {extra:.0f} MB above the resident size"


@pytest.mark.parametrize("name", list(CASES))
def test_every_mode_is_shrunk_before_it_becomes_floats(name: str, tmp_path: Path) -> None:
    """Peak memory is the decoded picture in Pillow's own mode plus a few MB, never full-size floats
    (12 bytes a pixel, twice: 600 MB here)."""
    make, fmt, options, bytes_per_pixel = CASES[name]
    path = tmp_path / f"big.{fmt.lower()}"
    path.write_bytes(_encode(make(), fmt, **options))
    shape, extra = _decode_peak(path, 256)
    assert shape == (256, 256)
    decoded = SIDE * SIDE * bytes_per_pixel / MB
    assert extra <= decoded + 50, f"{name}: {extra:.0f} MB for a {decoded:.0f} MB decoded image"


def _gradients(h: int = 450, w: int = 600) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx / w, yy / h, 1 - xx / w], -1)


def _small_cases() -> dict[str, bytes]:
    rgb = (_gradients() * 255).astype(np.uint8)
    alpha = ((np.mgrid[0:450, 0:600][1] * 3) % 256).astype(np.uint8)  # a sawtooth of transparency
    photo = Image.fromarray(rgb)
    grad = _gradients()[..., 0]
    spiky = (grad * 200).astype(np.int32)
    spiky[7, 9] = 300  # one sample over 255: the whole image is read on the 16-bit scale, shrunk or not
    palette = photo.convert("P", palette=Image.Palette.ADAPTIVE)
    return {
        "1": _encode(photo.convert("L").convert("1"), "PNG"),
        "P": _encode(palette, "PNG"),
        "P+transparency": _encode(palette, "PNG", transparency=0),
        "GIF": _encode(photo, "GIF"),
        "LA": _encode(Image.merge("LA", [photo.convert("L"), Image.fromarray(alpha)]), "PNG"),
        "RGBA": _encode(Image.fromarray(np.dstack([rgb, alpha])), "PNG"),
        "I;16": _encode(Image.fromarray((grad * 65535).astype(np.uint16)), "PNG"),
        "I under 256": _encode(Image.fromarray((grad * 255).astype(np.int32), "I"), "TIFF"),
        "I with one spike": _encode(Image.fromarray(spiky, "I"), "TIFF"),
        "F": _encode(Image.fromarray((grad * 255).astype(np.float32), "F"), "TIFF"),
        "CMYK": _encode(photo.convert("CMYK"), "TIFF"),
        "RGB": _encode(photo, "PNG"),
    }


@pytest.mark.parametrize("name", list(_small_cases()))
def test_a_shrunk_decode_matches_a_full_decode_shrunk_afterwards(name: str) -> None:
    data = _small_cases()[name]
    full = fit_max_size(decode_image(data), 150)
    small = decode_image(data, max_size=150)
    assert small.shape == full.shape == (112, 150, 3)
    assert small.dtype == np.float32 and small.min() >= 0.0 and small.max() <= 1.0
    diff = np.abs(small - full)
    # Box-reduce + Lanczos against area averaging: the same picture up to resampling (a dithered 1-bit
    # image, all noise at this scale, and a sawtooth of alpha differ most).
    tolerance = 0.05 if name == "1" else 0.02
    assert diff.mean() < tolerance and diff.max() < 0.15, (name, float(diff.mean()), float(diff.max()))
    assert abs(float(small.mean()) - float(full.mean())) < 0.01, name  # same scale: alpha on white, 16-bit


def test_a_shrunk_image_with_alpha_keeps_its_exif_orientation() -> None:
    base = Image.new("RGBA", (120, 60), (200, 30, 30, 128))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees: the decoded picture is taller than wide
    data = _encode(base, "PNG", exif=exif.tobytes())
    shrunk = decode_image(data, max_size=40)
    assert shrunk.shape == (40, 20, 3)
    assert decode_image(data).shape == (120, 60, 3)
    # Half-transparent red on white: (200 * 0.5 + 255 * 0.5) / 255 for red, about 0.56 for green and blue.
    np.testing.assert_allclose(shrunk[20, 10], [0.89, 0.56, 0.56], atol=0.02)


def test_a_16_bit_grey_png_keeps_its_precision_when_shrunk() -> None:
    ramp = np.linspace(0, 65535, 400 * 300).reshape(300, 400).astype(np.uint16)
    small = decode_image(_encode(Image.fromarray(ramp), "PNG"), max_size=100)
    levels = np.unique(small[..., 0])
    assert len(levels) > 256  # finer than 8 bits: the shrink ran on the 16-bit samples, not on bytes
