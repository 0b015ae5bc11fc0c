"""Inference speed: PyTorch eager vs ONNX Runtime per image, images/s over a folder, peak RSS for 24 MP.

Networks are seeded random ones of each architecture (speed does not depend
on the weights), exported with the same code as ``restyle export``. Latency
is the median of timed runs after one warm-up, batch 1, this machine's CPU
(and CUDA when present) with all cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SECTION = "Stylization speed"
SIZES = [(256, 256), (512, 512), (1024, 1024), (1080, 1920)]  # (height, width)


def build_models(root: Path) -> dict[str, Path]:
    from restyle.export.onnx_export import export_untrained

    out = {}
    for arch in ("fast", "johnson"):
        out[arch] = export_untrained(arch, root / f"{arch}.onnx")
    return out


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up: allocator, ORT shape-specific kernels
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def latency_rows(models: dict[str, Path], sizes: list[tuple[int, int]], repeats: int) -> list[list[str]]:
    import torch

    from restyle.models.serialization import load_model
    from restyle.runtime import Stylizer

    rows = []
    for arch, path in models.items():
        net, _ = load_model(path.with_suffix(".final.pt"))
        stylizer = Stylizer(path, provider="cpu")
        for h, w in sizes:
            x = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
            xt = torch.from_numpy(x)
            reps = repeats if h * w <= 512 * 512 else max(1, repeats // 2)

            def eager(xt=xt, net=net) -> None:
                with torch.inference_mode():
                    net(xt)

            t_torch = _median_time(eager, reps)
            t_ort = _median_time(lambda x=x, s=stylizer: s.run(x), reps)
            rows.append([arch, f"{w}x{h}", f"{t_torch * 1000:.0f}", f"{t_ort * 1000:.0f}", f"{t_torch / t_ort:.2f}x"])
            print("  ", rows[-1], flush=True)
    return rows


def folder_rate(model: Path, photos: Path, limit: int) -> tuple[int, float]:
    """Decode + stylize (max 1024 px) + encode JPEG, the whole CLI path, sequentially."""
    from restyle.imaging import IMAGE_SUFFIXES, decode_image, encode_image
    from restyle.runtime import StylizeOptions, Stylizer

    stylizer = Stylizer(model, provider="cpu")
    files = sorted(p for p in photos.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    options = StylizeOptions(max_size=1024)
    stylizer.stylize(decode_image(files[0]), options)
    t0 = time.perf_counter()
    for f in files:
        encode_image(stylizer.stylize(decode_image(f), options), "jpg")
    return len(files), len(files) / (time.perf_counter() - t0)


def _vm_hwm_mb() -> float:
    """Peak RSS of this process. VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork/exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_child(model: Path, megapixels: float) -> None:
    """Runs in a fresh process: stylize a synthetic photo of ``megapixels``, print time and peak RSS."""
    from restyle.imaging import decode_image, resize
    from restyle.runtime import StylizeOptions, Stylizer

    stylizer = Stylizer(model, provider="cpu")
    base_rss = _vm_hwm_mb()
    w = int((megapixels * 1e6 * 3 / 2) ** 0.5)
    h = int(w * 2 / 3)
    sample = Path(__file__).resolve().parent.parent / "restyle" / "assets" / "sample.jpg"
    photo = resize(decode_image(sample), h, w)
    t0 = time.perf_counter()
    out = stylizer.stylize(photo, StylizeOptions())
    elapsed = time.perf_counter() - t0
    peak = _vm_hwm_mb()
    print(f"RESULT {w}x{h} {elapsed:.1f} {base_rss:.0f} {peak:.0f} {out.shape[0]}")


def peak_rss(model: Path, megapixels: float) -> list[str]:
    cmd = [sys.executable, "-m", "bench.stylize_speed", "--child", str(model), str(megapixels)]
    root = Path(__file__).resolve().parent.parent
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=root, check=True)
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("RESULT"))
    _, size, elapsed, base, peak, _ = line.split()
    return [size, f"{elapsed}", f"{base}", f"{peak}"]


def main(argv: list[str] | None = None) -> None:
    from bench.common import report, sample_inputs

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--write", type=Path, help="merge the tables into this markdown file")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="small sizes only (a smoke test)")
    p.add_argument("--photos", type=int, default=20, help="photos timed for images/s")
    p.add_argument("--megapixels", type=float, default=24.0)
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args, _ = p.parse_known_args(argv)
    if args.child:
        _peak_child(Path(args.child[0]), float(args.child[1]))
        return
    import torch

    cpu = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.get_num_threads()} threads"
    )
    with tempfile.TemporaryDirectory() as tmp:
        models = build_models(Path(tmp))
        sizes = SIZES[:2] if args.quick else SIZES
        rows = latency_rows(models, sizes, 1 if args.quick else args.repeats)
        photos, _ = sample_inputs()
        count, rate = folder_rate(models["fast"], photos, 3 if args.quick else args.photos)
        mp = 2.0 if args.quick else args.megapixels
        rss = {arch: peak_rss(models[arch], mp) for arch in models}
    extra = (
        f"Folder throughput (fast, decode + stylize at max 1024 px + JPEG encode, {count} photos): "
        f"**{rate:.2f} images/s**.\n\n"
        f"Peak resident memory stylizing a {mp:g} MP photo (automatic tiling, 1024 px tiles, thumbnail instance norm):\n\n"
        + "\n".join(
            f"- {arch}: {r[0]} in {r[1]} s, RSS after loading {r[2]} MB, peak {r[3]} MB" for arch, r in rss.items()
        )
    )
    note = f"`python -m bench.stylize_speed`, CPU only ({cpu}); ms per image, batch 1, median after warm-up."
    report(SECTION, ["arch", "size", "PyTorch eager ms", "ONNX Runtime ms", "speed-up"], rows, args.write, note, extra)


if __name__ == "__main__":
    main()
