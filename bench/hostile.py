"""Hostile input: 300+ malformed and adversarial files through the CLI and the API, and a 64-client overload.

Three measurements, each against a target from the reliability issue:

1. ``restyle stylize DIR -o OUT --max-size 256`` over the whole corpus:
   tracebacks in its output (target 0) and the process's peak RSS
   (``wait4`` rusage; target <= 800 MB).
2. The same files posted one by one to a real ``restyle serve``: statuses,
   5xx count (target 0), error bodies that are not the JSON error shape
   (target 0), and the server's peak RSS (``VmHWM``).
3. 64 closed-loop clients for ``--overload-seconds`` (60 by default) that
   ignore ``Retry-After`` (a hostile client would): only 200, 429 and 503
   (target), the server's peak RSS, and whether a normal request succeeds
   right afterwards (recovery).

The corpus is generated here, deterministically (``make_corpus``): empty and
random files, every supported format truncated at several points, corrupted
headers and checksums, decompression bombs (PNG, GIF, JPEG and TIFF headers
declaring up to 4 gigapixels), legitimately huge photos (36 MP) that must be
shrunk while decoding, extreme aspect ratios, 16-bit/CMYK/palette/1-bit
modes, EXIF orientations on big images, animated and multi-page files,
formats that are not allowed (EPS, SVG, PSD, ICO...) and files whose
extension lies. ``tests/faults`` runs a small slice of the same corpus.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import random
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import report
from restyle.imaging import to_uint8

SECTION = "Hostile input"
REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "restyle" / "assets" / "sample.jpg"


# -- the corpus ----------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int, height: int, rows: int = 64) -> bytes:
    """A valid PNG header declaring width x height, with a few real zero rows (the rest missing)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    raw = zlib.compress(b"\x00" * ((width + 1) * min(rows, height)), 9)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", raw) + _png_chunk(b"IEND", b"")


def png_zlib_bomb(side: int) -> bytes:
    """A complete, valid grey PNG of side x side zeros: a few MB on disk, side**2 bytes decoded."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    comp = zlib.compressobj(9)
    row = b"\x00" * (side + 1)
    data = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


def gif_bomb(width: int, height: int) -> bytes:
    """A GIF whose logical screen and one frame declare width x height, with almost no data."""
    head = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return head + frame + b"\x3b"


def jpeg_header_bomb(width: int, height: int) -> bytes:
    """A real JPEG's bytes with the SOF0 frame size patched to width x height."""
    data = bytearray(_encode(np.zeros((16, 16, 3), np.uint8), "JPEG"))
    i = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, i + 5, height, width)
    return bytes(data)


def _encode(array: np.ndarray, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **kw)
    return buf.getvalue()


def _photo(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth gradients plus noise: compresses like a photo, unlike pure noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / max(w, 1), yy / max(h, 1), (xx + yy) / max(w + h, 1)], axis=2) * (200 / 255)
    return to_uint8(base + rng.normal(0, 20 / 255, (h, w, 3)))


def make_corpus(root: Path, scale: str = "full") -> list[Path]:
    """Write the hostile corpus to ``root``; ``scale="small"`` is the quick slice the fault tests use.

    Returns the files written. Deterministic: the same files every run.
    """
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rand = random.Random(0)
    small = scale == "small"
    files: dict[str, bytes] = {}
    photo = _photo(96, 128, rng)
    formats = {"jpg": ("JPEG", {}), "png": ("PNG", {}), "webp": ("WEBP", {}), "gif": ("GIF", {}),
               "tiff": ("TIFF", {}), "bmp": ("BMP", {})}  # fmt: skip
    encoded = {ext: _encode(photo, fmt, **kw) for ext, (fmt, kw) in formats.items()}

    # empty, tiny and random files under image names
    files["empty.jpg"] = b""
    files["one_byte.png"] = b"\x89"
    for i in range(4 if small else 30):
        ext = rand.choice(list(formats))
        files[f"random_{i:02d}.{ext}"] = rng.bytes(int(rng.integers(1, 200_000)))
    # every format truncated at several points, and with corrupted bytes
    cuts = (0.1, 0.5, 0.9) if small else (0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
    for ext, data in encoded.items():
        for cut in cuts:
            files[f"truncated_{int(cut * 100):02d}.{ext}"] = data[: max(1, int(len(data) * cut))]
        for i in range(1 if small else 6):
            bad = bytearray(data)
            for _ in range(8):
                pos = rand.randrange(min(len(bad), 64), len(bad))
                bad[pos] = rand.randrange(256)
            files[f"corrupted_{i}.{ext}"] = bytes(bad)
        bad = bytearray(data)
        bad[: min(8, len(bad))] = b"\x00" * min(8, len(bad))
        files[f"no_magic.{ext}"] = bytes(bad)
    # decompression bombs: headers that declare far more pixels than they hold
    sides = [(20_000, 20_000), (65_535, 65_535)] if small else [
        (10_000, 10_000), (20_000, 20_000), (40_000, 40_000), (65_535, 65_535), (1, 2_000_000_000 // 1),
        (100_000, 1), (1, 100_000), (30_000, 30_000), (50_000, 2_000), (2_000, 50_000)]  # fmt: skip
    for w, h in sides:
        files[f"bomb_png_{w}x{h}.png"] = png_bomb(min(w, 2**31 - 1), min(h, 2**31 - 1))
        files[f"bomb_gif_{min(w, 65535)}x{min(h, 65535)}.gif"] = gif_bomb(min(w, 65535), min(h, 65535))
        files[f"bomb_jpeg_{min(w, 65535)}x{min(h, 65535)}.jpg"] = jpeg_header_bomb(min(w, 65535), min(h, 65535))
    files["bomb_zlib_8000.png"] = png_zlib_bomb(2000 if small else 8000)  # 64 MP of zeros in ~70 KB
    tiff = bytearray(encoded["tiff"])
    for i in range(0, len(tiff) - 12):  # patch ImageWidth/ImageLength tags (256/257) to 60000
        tag = struct.unpack_from("<H", tiff, i)[0]
        if tag in (256, 257) and struct.unpack_from("<H", tiff, i + 2)[0] in (3, 4):
            struct.pack_into("<I" if tiff[i + 2] == 4 else "<H", tiff, i + 8, 60_000)
    files["bomb_tiff_60000.tiff"] = bytes(tiff)
    # legitimately big photos: must be shrunk while decoding, not after
    big = [(3000, 4000)] if small else [(6000, 6000), (4000, 9000), (7000, 5000), (6500, 6000)]
    for h, w in big:
        arr = _photo(h, w, rng)
        files[f"big_{w}x{h}.jpg"] = _encode(arr, "JPEG", quality=85)
        if not small:
            files[f"big_{w}x{h}.png"] = _encode(arr[: h // 2, : w // 2], "PNG", compress_level=1)
            files[f"big_{w}x{h}.webp"] = _encode(arr[: h // 2, : w // 2], "WEBP", quality=60)
    over = _photo(7000, 7000, rng) if not small else None  # 49 MP: over the 40 MP API limit
    if over is not None:
        files["over_limit_7000x7000.jpg"] = _encode(over, "JPEG", quality=70)
        del over
    # EXIF orientations on a big image (rotation must happen after the shrink)
    exif_base = _photo(2000 if small else 5000, 3000 if small else 6000, rng)
    for orientation in (3, 6, 8) if small else range(1, 9):
        img = Image.fromarray(exif_base)
        exif = img.getexif()
        exif[0x0112] = orientation
        buf = io.BytesIO()
        img.save(buf, format="JPEG", exif=exif.tobytes(), quality=80)
        files[f"exif_orientation_{orientation}.jpg"] = buf.getvalue()
    del exif_base
    exif_bad = bytearray(encoded["jpg"])
    exif_bad[2:2] = b"\xff\xe1\x00\x20Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\xff\xff" + b"\x00" * 12
    files["exif_garbage.jpg"] = bytes(exif_bad)
    # extreme aspect ratios and degenerate sizes
    for h, w in [(1, 1), (1, 5000), (5000, 1), (2, 3), (3, 20000), (20000, 3)][: 3 if small else None]:
        files[f"aspect_{w}x{h}.png"] = _encode(np.full((h, w, 3), 128, np.uint8), "PNG")
    # unusual but legal modes
    modes = {
        "grey16.png": Image.fromarray((rng.random((300, 400)) * 65535).astype(np.uint16)),
        "cmyk.jpg": Image.fromarray(photo).convert("CMYK"),
        "palette_transparent.png": Image.fromarray(photo).convert("P"),
        "one_bit.png": Image.fromarray(photo).convert("1"),
        "la.png": Image.fromarray(photo).convert("LA"),
        "rgba.webp": Image.fromarray(photo).convert("RGBA"),
        "float32.tiff": Image.fromarray(rng.random((100, 120)).astype(np.float32)),
        "int32.tiff": Image.fromarray((rng.random((100, 120)) * 1e6).astype(np.int32)),
    }
    for name, img in modes.items():
        buf = io.BytesIO()
        if name == "palette_transparent.png":
            img.info["transparency"] = 0
        img.save(buf, format=name.rsplit(".", 1)[1].replace("jpg", "JPEG").upper())
        files[name] = buf.getvalue()
    # animated and multi-page
    frames = [Image.fromarray(_photo(200, 200, rng)) for _ in range(3 if small else 40)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=20, loop=0)
    files["animated_many_frames.gif"] = buf.getvalue()
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:])
    files["multipage.tiff"] = buf.getvalue()
    # formats that must not be decoded, and extensions that lie
    files["postscript.eps"] = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n"
    files["postscript_named.jpg"] = files["postscript.eps"]
    files["vector.svg"] = b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"/>'
    files["html_named.png"] = b"<html><script>alert(1)</script></html>"
    files["json_named.jpg"] = json.dumps({"image": "no"}).encode()
    files["zip_named.png"] = b"PK\x03\x04" + rng.bytes(500)
    files["elf_named.jpg"] = b"\x7fELF" + rng.bytes(500)
    for ext, fmt in [("ico", "ICO"), ("pcx", "PCX"), ("tga", "TGA"), ("ppm", "PPM"), ("im", "IM"), ("psd", None)]:
        if fmt is None:
            files[f"photoshop.{ext}"] = b"8BPS\x00\x01" + b"\x00" * 6 + struct.pack(">HIIHH", 3, 30000, 30000, 8, 3)
            continue
        buf = io.BytesIO()
        Image.fromarray(photo).save(buf, format=fmt)
        files[f"other_format.{ext}"] = buf.getvalue()
        files[f"other_format_named.jpg.{ext}"] = buf.getvalue()
    files["png_named.jpg"] = encoded["png"]
    files["jpeg_named.png"] = encoded["jpg"]
    files["webp_named.gif"] = encoded["webp"]
    # a polyglot: a JPEG followed by a ZIP archive, and a PNG with an absurd chunk length
    files["polyglot.jpg"] = encoded["jpg"] + b"PK\x03\x04" + rng.bytes(2000)
    bad_len = bytearray(encoded["png"])
    struct.pack_into(">I", bad_len, 33, 0x7FFFFFF0)
    files["png_huge_chunk.png"] = bytes(bad_len)
    # many copies of near-valid files with random single-byte damage (the fuzzing tail)
    n = 10 if small else max(0, 305 - len(files))
    for i in range(n):
        ext = rand.choice(["jpg", "png", "webp", "gif"])
        bad = bytearray(encoded[ext])
        for _ in range(rand.randint(1, 4)):
            bad[rand.randrange(len(bad))] = rand.randrange(256)
        files[f"fuzz_{i:03d}.{ext}"] = bytes(bad)

    written = []
    for name, data in files.items():
        path = root / name
        path.write_bytes(data)
        written.append(path)
    return written


def build_corpus(root: Path, scale: str) -> list[Path]:
    """``make_corpus`` in a child process, so that this one stays small.

    Linux carries a process's peak RSS across fork+exec into the child's
    ``ru_maxrss``: had the ~800 MB of generated pixels lived in this process,
    every child measured by ``run_cli`` would report at least that much.
    """
    code = (
        f"from pathlib import Path; from bench.hostile import make_corpus; make_corpus(Path({str(root)!r}), {scale!r})"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    return sorted(root.iterdir())


# -- measurements --------------------------------------------------------------------------------


def run_cli(corpus: Path, out: Path, max_size: int) -> dict[str, object]:
    """``restyle stylize CORPUS -o OUT --max-size N`` as a child: exit code, tracebacks, peak RSS from wait4."""
    cmd = [sys.executable, "-m", "restyle", "stylize", str(corpus), "-o", str(out), "--max-size", str(max_size)]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        log.seek(0)
        text = log.read().decode(errors="replace")
    return {
        "exit": os.waitstatus_to_exitcode(status),
        "tracebacks": text.count("Traceback"),
        "peak_mb": usage.ru_maxrss / 1024,
        "seconds": time.perf_counter() - t0,
        "outputs": len(list(out.glob("*"))) if out.exists() else 0,
        "tail": text.strip().splitlines()[-1] if text.strip() else "",
    }


def vm_mb(pid: int, field: str) -> float:
    """A memory field of ``/proc/PID/status`` in MB (``VmRSS`` now, ``VmHWM`` the peak); NaN if absent."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_api(url: str, files: list[Path]) -> dict[str, object]:
    """Post every file raw to ``/v1/stylize`` (content type from the extension, as a browser would)."""
    import httpx

    mime = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif", "tiff": "image/tiff",
            "bmp": "image/bmp"}  # fmt: skip
    statuses: Counter[int] = Counter()
    not_json = server_errors = 0
    with httpx.Client(base_url=url, timeout=120) as client:
        for path in files:
            ctype = mime.get(path.suffix.lstrip("."), "application/octet-stream")
            r = client.post("/v1/stylize", params={"max_size": 256}, content=path.read_bytes(),
                            headers={"content-type": ctype})  # fmt: skip
            statuses[r.status_code] += 1
            server_errors += r.status_code >= 500
            if r.status_code != 200:
                try:
                    body = r.json()
                    not_json += not {"error", "message", "status", "request_id"} <= set(body)
                except ValueError:
                    not_json += 1
    return {"statuses": statuses, "5xx": server_errors, "not_json": not_json}


async def _overload(url: str, body: bytes, clients: int, seconds: float) -> Counter[int]:
    import httpx

    statuses: Counter[int] = Counter()
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def hammer() -> None:
            while time.monotonic() < stop:
                try:
                    r = await client.post("/v1/stylize", params={"max_size": 512}, content=body,
                                          headers={"content-type": "image/jpeg"})  # fmt: skip
                    statuses[r.status_code] += 1
                except httpx.HTTPError:
                    statuses[-1] += 1  # connection-level failure: counted against the target

        await asyncio.gather(*(hammer() for _ in range(clients)))
    return statuses


def run_overload(url: str, pid: int, clients: int, seconds: float) -> dict[str, object]:
    import httpx

    before = vm_mb(pid, "VmRSS")
    statuses = asyncio.run(_overload(url, SAMPLE.read_bytes(), clients, seconds))
    t0 = time.monotonic()
    recovered = None
    with httpx.Client(base_url=url, timeout=30) as client:
        while time.monotonic() - t0 < 30:
            r = client.post("/v1/stylize", content=SAMPLE.read_bytes(), headers={"content-type": "image/jpeg"})
            if r.status_code == 200:
                recovered = time.monotonic() - t0
                break
            time.sleep(0.2)
    return {"statuses": statuses, "rss_before": before, "peak_mb": vm_mb(pid, "VmHWM"), "recovered_s": recovered}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.hostile", description=__doc__.split("\n\n")[0])
    p.add_argument("--max-size", type=int, default=256, help="--max-size of the CLI run and the API requests")
    p.add_argument("--overload-seconds", type=float, default=60.0)
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--quick", action="store_true", help="the small corpus and a 10 s overload (smoke run)")
    p.add_argument("--write", type=Path, help="merge the table into this markdown file (## Hostile input)")
    args, _ = p.parse_known_args(argv)
    from bench.api_load import Server, build_model

    with tempfile.TemporaryDirectory(prefix="restyle-hostile-") as tmp:
        root = Path(tmp)
        files = build_corpus(root / "corpus", "small" if args.quick else "full")
        size_mb = sum(f.stat().st_size for f in files) / 1e6
        print(f"corpus: {len(files)} files, {size_mb:.0f} MB on disk", flush=True)
        cli = run_cli(root / "corpus", root / "out", args.max_size)
        print(f"cli: {cli}", flush=True)
        server = Server(build_model(root), {"RESTYLE_BODY_TIMEOUT": "30"})
        try:
            api = run_api(server.url, files)
            print(f"api: {api}", flush=True)
            api_peak = vm_mb(server.proc.pid, "VmHWM")
            seconds = 10.0 if args.quick else args.overload_seconds
            over = run_overload(server.url, server.proc.pid, args.clients, seconds)
            print(f"overload: {over}", flush=True)
        finally:
            server.stop()

    def fmt(counter: Counter[int]) -> str:
        return ", ".join(f"{k}: {v}" for k, v in sorted(counter.items()))

    over_ok = set(over["statuses"]) <= {200, 429, 503}  # type: ignore[arg-type]
    rows = [
        [f"`restyle stylize` over the corpus, --max-size {args.max_size}", "tracebacks", str(cli["tracebacks"]), "0",
         "met" if cli["tracebacks"] == 0 else "MISSED"],
        ["", "peak RSS", f"{cli['peak_mb']:.0f} MB", "<= 800 MB", "met" if cli["peak_mb"] <= 800 else "MISSED"],  # type: ignore[operator]
        ["", "exit code / outputs", f"{cli['exit']} / {cli['outputs']} of {len(files)}", "1 (some inputs failed)", ""],
        ["API, each file posted once", "statuses", fmt(api["statuses"]), "", ""],  # type: ignore[arg-type]
        ["", "5xx", str(api["5xx"]), "0", "met" if api["5xx"] == 0 else "MISSED"],
        ["", "errors not in the JSON shape", str(api["not_json"]), "0", "met" if api["not_json"] == 0 else "MISSED"],
        ["", "server peak RSS", f"{api_peak:.0f} MB", "bounded", ""],
        [f"{args.clients} clients ignoring Retry-After, {seconds:.0f} s", "statuses", fmt(over["statuses"]),  # type: ignore[arg-type]
         "only 200, 429, 503", "met" if over_ok else "MISSED"],
        ["", "server RSS before / peak", f"{over['rss_before']:.0f} / {over['peak_mb']:.0f} MB", "bounded", ""],
        ["", "a normal request afterwards", "200 after {:.1f} s".format(over["recovered_s"]) if over["recovered_s"]
         is not None else "no 200 within 30 s", "recovers", "met" if over["recovered_s"] is not None else "MISSED"],
    ]  # fmt: skip
    note = (
        f"`python -m bench hostile` on {platform.machine()} ({os.cpu_count()} cores), {len(files)} generated files "
        f"({size_mb:.0f} MB: truncated/corrupted files of every format, decompression bombs up to 4 gigapixels, "
        "36 MP photos, EXIF rotations, odd modes, forbidden formats, lying extensions; see `bench/hostile.py`). "
        "The API server is `restyle serve` with default limits and one random `fast` model; the CLI and the "
        "server run on the same cores as the clients."
    )
    report(SECTION, ["run", "what", "measured", "target", ""], rows, args.write, note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
