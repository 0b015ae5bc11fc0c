"""Decoding refuses what it should, before any pixel is decoded, with one clear error."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from restyle.errors import BadImage, ImageTooLarge
from restyle.imaging import DECODERS, decode_image


def _encoded(fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PPM", "PCX", "TGA", "ICO", "EPS"])
def test_formats_outside_the_documented_list_are_never_decoded(fmt: str) -> None:
    try:
        data = _encoded(fmt)
    except (OSError, KeyError):  # EPS writing needs nothing, but be safe on minimal Pillow builds
        pytest.skip(f"Pillow cannot write {fmt} here")
    assert Image.open(io.BytesIO(data)).format  # Pillow itself would open it...
    with pytest.raises(BadImage, match="not a recognised image"):
        decode_image(data)  # ...restyle does not even try


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"])
def test_documented_formats_decode(fmt: str) -> None:
    assert decode_image(_encoded(fmt)).shape == (8, 8, 3)
    assert fmt in DECODERS


def test_pillows_bomb_guard_stays_on_for_the_whole_process() -> None:
    import restyle.imaging  # noqa: F401  (importing restyle must not switch it off)

    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS > 0


def test_a_header_claiming_a_huge_image_is_refused_before_decoding(tmp_path: Path) -> None:
    data = bytearray(_encoded("PNG"))
    # Patch the IHDR width/height to 30000 x 30000 (900 MP), with a valid CRC: the header alone must decide.
    data[16:24] = (30000).to_bytes(4, "big") + (30000).to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    with pytest.raises((ImageTooLarge, BadImage)) as info:
        decode_image(bytes(data))
    assert isinstance(info.value, ImageTooLarge), info.value
    with pytest.raises(ImageTooLarge):
        decode_image(bytes(data), max_pixels=10**12)  # past our limit, Pillow's guard still refuses it


def test_a_photo_is_shrunk_while_still_8_bit(tmp_path: Path) -> None:
    """A 24 MP JPEG decoded for a 512 px result never becomes a full-resolution float array."""
    import subprocess
    import sys

    big = tmp_path / "big.jpg"
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (60, 90, 3), np.uint8)
    Image.fromarray(small).resize((6000, 4000), Image.Resampling.BICUBIC).save(big, quality=85)
    code = (  # peak RSS of the decode alone: Linux resets the high-water mark on "5" > clear_refs
        "import sys, re; from restyle.imaging import decode_image; "
        "open('/proc/self/clear_refs', 'w').write('5'); "
        "a = decode_image(sys.argv[1], max_size=int(sys.argv[2])); "
        "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "
        "rss = re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "
        "print(a.shape, int(hwm) - int(rss) + a.nbytes // 1024)"
    )
    peaks = {}
    for size in ("512", "100000"):
        out = subprocess.run([sys.executable, "-c", code, str(big), size], capture_output=True, text=True, check=True)
        shape, extra = out.stdout.rsplit(" ", 1)
        peaks[size] = int(extra) / 1024  # MB above what is left afterwards, plus the result itself
        if size == "512":
            assert shape == "(341, 512, 3)"
    # The full-size decode costs ~290 MB of float32 alone; the shrunk one a few tens of MB.
    assert peaks["512"] < 120 and peaks["100000"] > 250, peaks


def test_shrunk_decode_keeps_the_exif_orientation() -> None:
    base = Image.new("RGB", (120, 60), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees: the decoded photo is taller than wide
    buf = io.BytesIO()
    base.save(buf, "JPEG", exif=exif.tobytes())
    assert decode_image(buf.getvalue(), max_size=40).shape == (40, 20, 3)
    assert decode_image(buf.getvalue()).shape == (120, 60, 3)
