"""The gallery's figures: one renderer per figure, ``render_KEY(run, out) -> Caption``.

A renderer runs its method at the run's budget profile, writes the PNG to
``out`` and returns the caption's words, with the budget and the measured
numbers filled in. The figures themselves are drawn by ``restyle.reference.viz``
(what ``restyle viz`` draws) or here, for the figures that combine several
runs. Inputs ship with the repository (``restyle/assets``, ``restyle/styles``)
or with scikit-image, so the gallery rebuilds from a fresh clone.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from restyle.imaging import decode_image, save_image, to_float
from restyle.models.classifier import class_index, load_classifier
from restyle.reference import budget as bd
from restyle.reference import figures as fg
from restyle.reference import gatys, viz
from restyle.reference.featurevis import ClassVisResult, ClassVisualization
from restyle.reference.gallery.record import Caption
from restyle.reference.inversion import FeatureInversion
from restyle.reference.losses import psnr

ASSETS = Path(__file__).resolve().parents[2] / "assets"
STYLES = Path(__file__).resolve().parents[2] / "styles"
SAMPLE = ASSETS / "sample.jpg"  # Kodak kodim23 (parrots)
GATYS_PHOTO = ASSETS / "kodim08.jpg"  # Kodak kodim08: half-timbered houses, as in Gatys et al.'s Tuebingen figure
STARRY_NIGHT = ASSETS / "starry_night_512.jpg"  # The Starry Night at 512 px (the style thumbnail is 256)
# The CLI's default style weight (100) keeps almost nothing of the houses (relative content error 1.11 at 192 px,
# measured; 0.79 with 25, 0.55 with 10, where the gables start to show): 5 keeps more of the facades.
GATYS_STYLE_WEIGHT = 5.0
# Total-variation weight per inverted layer: deeper layers constrain the image less, so the prior must do more.
INVERSION_TV = {"relu1_1": 0.01, "relu2_1": 0.02, "relu3_1": 0.05, "relu4_1": 0.5, "relu5_1": 2.0}
VGG, EFFICIENTNET = "VGG19 (Caffe weights)", "EfficientNet-Lite0 (ImageNet)"
PHOTOS = (
    "chelsea",
    "coffee",
    "astronaut",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "colorwheel",
    "retina",
)


@functools.cache
def photo(name: str) -> np.ndarray:
    """One of scikit-image's sample photos as HxWx3 float (decoded once per process: it decodes on every call)."""
    import skimage.data

    return to_float(getattr(skimage.data, name)().astype(np.uint8, copy=False))


@dataclass
class GalleryRun:
    """What the figures of one gallery run share: the budget, a scratch folder and the results two figures show.

    The fooling figure's bottom row is the class visualization; computing it
    once per run (and not in a module-level cache) keeps separate runs, and
    tests, independent.
    """

    budget: bd.GalleryBudget
    workdir: Path  # a scratch folder that lives as long as the run
    _folder: Path | None = field(default=None, init=False)
    _class_images: ClassVisResult | None = field(default=None, init=False)

    def folder(self) -> Path:
        """A small image folder, made on first use: each photo, its mirror and a crop (near-duplicates make
        neighbours meaningful), and the Kodak parrots."""
        if self._folder is None:
            out = self.workdir / "folder"
            out.mkdir()
            for name in PHOTOS:
                a = photo(name)
                h, w = a.shape[:2]
                save_image(a, out / f"{name}.png")
                save_image(a[:, ::-1], out / f"{name}_flip.png")
                save_image(a[: h * 2 // 3, : w * 2 // 3], out / f"{name}_crop1.png")
            if SAMPLE.is_file():
                save_image(decode_image(SAMPLE), out / "sample.png")
            self._folder = out
        return self._folder

    def class_images(self) -> ClassVisResult:
        """The class visualization at this budget, computed once per run (the fooling figure shows it again)."""
        if self._class_images is None:
            b = self.budget
            method = ClassVisualization(load_classifier(), b.classvis)
            self._class_images = method.generate(target=[class_index(c) for c in b.classes])
        return self._class_images


# --- the optimization figures: several runs per figure, drawn here ------------------------------------------


def render_gatys(run: GalleryRun, out: Path) -> Caption:
    b = run.budget
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


def render_texture(run: GalleryRun, out: Path) -> Caption:
    b = run.budget
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


def render_inversion(run: GalleryRun, out: Path) -> Caption:
    b = run.budget
    parrots = gatys.resize_long(viz.load(SAMPLE, None), b.inversion_size)
    results = {
        layer: FeatureInversion(layer, b.inversion_steps, tv_weight=INVERSION_TV.get(layer, 0.05)).generate(parrots)
        for layer in b.inversion_layers
    }
    n = len(results) + 1
    h, w = parrots.shape[-2:]
    fig = fg.new_figure(2.6 * n, 2.6 * h / w + 0.8, "Mahendran & Vedaldi 2015: what a VGG19 layer keeps of a photo")
    axes = fig.subplots(1, n)
    fg.show(axes[0], parrots, "photo (Kodak kodim23)")
    for ax, (layer, r) in zip(axes[1:], results.items()):
        fg.show(
            ax, r.image, f"from {layer}\nTV {INVERSION_TV.get(layer, 0.05):g}, PSNR {psnr(r.image, parrots):.1f} dB"
        )
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


def render_class_visualization(run: GalleryRun, out: Path) -> Caption:
    b = run.budget
    cfg = b.classvis
    r = run.class_images()
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


def render_fooling(run: GalleryRun, out: Path) -> Caption:
    """Run the fooling experiment at the budget, draw it with the class visualization as its last row, write it."""
    b = run.budget
    r = viz.fooling_images([class_index(c) for c in b.classes], b.fooling_steps)
    fg.save_figure(viz.fooling_figure(r, run.class_images()), out)
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


# --- one method, one figure: drawn by restyle.reference.viz, as `restyle viz` draws it -----------------------


def render_deepdream(run: GalleryRun, out: Path) -> Caption:
    b = run.budget
    viz.deepdream(photo("astronaut"), "relu4_1", steps=b.deepdream_steps, size=b.deepdream_size, out=out)
    return Caption(
        "Gradient ascent on the squared activations of a layer, 3 octaves (x1.4) with jitter",
        "Mordvintsev, Olah & Tyka 2015, *Inceptionism* (Google Research blog)",
        f"{VGG}, relu4_1",
        f"3 octaves x {b.deepdream_steps} steps, {b.deepdream_size} px long side",
        f"`restyle viz deepdream astronaut.jpg --layer relu4_1 --steps {b.deepdream_steps} "
        f"--size {b.deepdream_size} -o dream.png`",
    )


def render_filters(run: GalleryRun, out: Path) -> Caption:
    viz.filters(out=out)
    return Caption(
        "The first convolution's kernels drawn as colour images",
        "Krizhevsky et al. 2012 (Fig. 3); Zeiler & Fergus 2014",
        f"{VGG} conv1_1; {EFFICIENTNET} stem",
        "none (weights only)",
        "`restyle viz filters -o filters.png`",
    )


def render_activations(run: GalleryRun, out: Path) -> Caption:
    viz.activations(photo("chelsea"), "relu2_1", out=out)
    return Caption(
        "The most active channels of one layer for one photo",
        "Zeiler & Fergus 2014, *Visualizing and Understanding Convolutional Networks*",
        f"{VGG}, relu2_1",
        "one forward pass at 224 px",
        "`restyle viz activations cat.jpg --layer relu2_1 -o act.png`",
    )


def render_patches(run: GalleryRun, out: Path) -> Caption:
    viz.patches(run.folder(), "relu3_1", out=out)
    return Caption(
        "The receptive-field crops that most excite a channel, over a folder of images",
        "Zeiler & Fergus 2014; Girshick et al. 2014",
        f"{VGG}, relu3_1",
        "one forward pass per image at 224 px (25 images)",
        "`restyle viz patches FOLDER --layer relu3_1 -o patches.png`",
    )


def render_occlusion(run: GalleryRun, out: Path) -> Caption:
    stride = run.budget.occlusion_stride
    viz.occlusion(photo("chelsea"), stride=stride, out=out)
    return Caption(
        "Class probability while a grey square covers each part of the image",
        "Zeiler & Fergus 2014",
        f"{EFFICIENTNET}, output probability",
        f"64 px window, stride {stride} at 224 px",
        f"`restyle viz occlusion cat.jpg --stride {stride} -o occ.png`",
    )


def render_saliency(run: GalleryRun, out: Path) -> Caption:
    viz.attribution(photo("chelsea"), "saliency", out=out)
    return Caption(
        "Gradient of the class score with respect to the pixels (Captum `Saliency`)",
        "Simonyan, Vedaldi & Zisserman 2014, *Deep Inside Convolutional Networks*",
        f"{EFFICIENTNET}, class logit",
        "one backward pass",
        "`restyle viz saliency cat.jpg -o sal.png`",
    )


def render_guided_backprop(run: GalleryRun, out: Path) -> Caption:
    viz.attribution(photo("chelsea"), "guided-backprop", out=out)
    return Caption(
        "Backprop that passes only positive gradients through ReLUs (Captum `GuidedBackprop`)",
        "Springenberg et al. 2015, *Striving for Simplicity*",
        f"{EFFICIENTNET}, class logit",
        "one backward pass",
        "`restyle viz guided-backprop cat.jpg -o gbp.png`",
    )


def render_integrated_gradients(run: GalleryRun, out: Path) -> Caption:
    viz.attribution(photo("coffee"), "integrated-gradients", out=out)
    return Caption(
        "Gradients averaged along the path from a black image (Captum `IntegratedGradients`)",
        "Sundararajan, Taly & Yan 2017, *Axiomatic Attribution for Deep Networks*",
        f"{EFFICIENTNET}, class logit",
        "32 path steps",
        "`restyle viz integrated-gradients coffee.jpg -o ig.png`",
    )


def render_adversarial(run: GalleryRun, out: Path) -> Caption:
    viz.adversarial(photo("chelsea"), "goldfish", out=out)
    return Caption(
        "Iterative targeted attack (PGD) within an L-infinity ball of 4/255",
        "Kurakin, Goodfellow & Bengio 2017; Madry et al. 2018",
        f"{EFFICIENTNET}, target log-probability",
        "at most 60 steps of 0.5/255",
        "`restyle viz adversarial cat.jpg --target goldfish -o adv.png`",
    )


def render_embedding(run: GalleryRun, out: Path) -> Caption:
    viz.embedding(run.folder(), "tsne", out=out)
    return Caption(
        "Nearest neighbours and a t-SNE map of penultimate features",
        "van der Maaten & Hinton 2008; Krizhevsky et al. 2012 (Fig. 4)",
        f"{EFFICIENTNET}, pooled pre-logit features (1280-d)",
        "one forward pass per image",
        "`restyle viz embedding FOLDER --projection tsne -o emb.png`",
    )
