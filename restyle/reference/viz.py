"""The visualization toolkit end to end: one function per method, image in, titled PNG figure out.

Each function takes paths or arrays, runs its method class (see
``attribution``, ``features``, ``featurevis``, ``generate``, ``embedding``), draws a labelled
figure and, given ``out``, writes it. ``restyle viz`` and the gallery call
these, so what the CLI draws is what Python users get.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.offsetbox import AnnotationBbox, OffsetImage
from torch import Tensor

from restyle.errors import InputNotFound, UserError
from restyle.imaging import IMAGE_SUFFIXES, decode_image, to_float
from restyle.models.classifier import class_index, load_classifier, to_input
from restyle.reference import figures as fg
from restyle.reference.attribution import GRADIENT_METHODS, Occlusion, predicted
from restyle.reference.embedding import Embedding
from restyle.reference.features import Activations, MaxPatches, normalize_filters, vgg_first_filters
from restyle.reference.featurevis import ClassVisResult, ClassVisualization, FeatureVisConfig
from restyle.reference.gatys import resize_long
from restyle.reference.generate import AttackResult, DeepDream, FoolingImage, TargetedAttack

ImageLike = str | os.PathLike | np.ndarray
Out = str | os.PathLike | None


def load(image: ImageLike, size: int | None = 224) -> Tensor:
    """Path or HxWx3 array -> 1x3xSxS tensor in [0, 1] (``size=None`` keeps the original size)."""
    arr = decode_image(image) if not isinstance(image, np.ndarray) else to_float(image)
    return to_input(arr, size)


def folder_images(folder: str | os.PathLike, limit: int = 200) -> list[Path]:
    path = Path(folder)
    if not path.is_dir():
        raise InputNotFound(f"no such folder: {folder}")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise UserError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return files


def _resolve(target: str | int | None, x: Tensor) -> int:
    return predicted(load_classifier(), x) if target is None else class_index(target)


def _done(fig: Figure, out: Out) -> Figure:
    if out is not None:
        fg.save_figure(fig, out)
    return fig


def filters(out: Out = None) -> Figure:
    """First-layer kernels of VGG19 (64 of 3x3) and EfficientNet-Lite0 (32 of 3x3) as colour grids."""
    fig = fg.new_figure(10, 5.6, "First-layer filters (RGB, each scaled around grey)")
    left, right = fig.subfigures(1, 2, width_ratios=[1, 1])
    for sub, w, title, cols in (
        (left, vgg_first_filters(), "VGG19 conv1_1 (64 filters)", 8),
        (right, load_classifier().stem.weight.detach(), "EfficientNet-Lite0 stem (32 filters)", 8),
    ):
        sub.suptitle(title, fontsize=10)
        for i, ax in enumerate(fg.grid_axes(sub, len(w), cols)):
            fg.show(ax, normalize_filters(w)[i], interpolation="nearest")
            ax.set_xlabel(f"#{i}", fontsize=6, labelpad=1)
    return _done(fig, out)


def activations(image: ImageLike, layer: str = "relu2_1", n: int = 15, out: Out = None) -> Figure:
    """The ``n`` most active feature maps of a VGG19 layer, beside the input."""
    x = load(image)
    maps = Activations(layer).compute(x)
    order = maps.mean((1, 2)).argsort(descending=True)[:n].tolist()
    fig = fg.new_figure(10, 6.4, f"VGG19 {layer} feature maps ({maps.shape[0]} channels, {n} most active shown)")
    axes = fg.grid_axes(fig, n + 1, 8)
    fg.show(axes[0], x, "input")
    for ax, c in zip(axes[1:], order):
        fg.show(ax, maps[c].numpy(), f"channel {c}")
    return _done(fig, out)


def patches(
    folder: str | os.PathLike | Sequence[ImageLike],
    layer: str = "relu3_1",
    channels: Sequence[int] | None = None,
    size: int = 224,
    out: Out = None,
) -> Figure:
    """The 9 receptive-field crops that most excite each channel, over a folder (or list) of images."""
    items = folder_images(folder) if isinstance(folder, (str, os.PathLike)) else list(folder)
    images = [load(p, None) for p in items]
    images = [resize_long(x, size) for x in images]
    finder = MaxPatches(layer)
    if not channels:
        with torch.no_grad():  # default: the channels with the strongest single response
            peak = torch.stack([finder.net(x)[layer][0].amax((1, 2)) for x in images]).amax(0)
        channels = peak.topk(4).indices.tolist()
    found = finder.find(images, channels)
    fig = fg.new_figure(
        2.2 * len(channels) + 0.4,
        2.6,
        f"Top-9 patches of VGG19 {layer} over {len(images)} images (receptive field {finder.size}px)",
    )
    subs = np.atleast_1d(fig.subfigures(1, len(channels)))
    for sub, c in zip(subs, channels):
        sub.suptitle(f"channel {c}", fontsize=9)
        for ax, p in zip(fg.grid_axes(sub, 9, 3), found[c]):
            fg.show(ax, p.crop.permute(1, 2, 0).numpy())
            ax.set_xlabel(f"{p.value:.0f}", fontsize=6, labelpad=1)
    return _done(fig, out)


def occlusion(
    image: ImageLike, target: str | int | None = None, window: int = 64, stride: int = 16, out: Out = None
) -> Figure:
    """Class probability while a grey square covers each part of the image (Zeiler & Fergus 2014)."""
    model, x = load_classifier(), load(image)
    t = _resolve(target, x)
    p0 = float(model.probabilities(x)[0, t])
    heat = Occlusion(model, window, stride).attribute(x, t).numpy()
    fig = fg.new_figure(9, 4.4, f"Occlusion sensitivity for '{model.name(t)}' (p={p0:.2f} unoccluded)")
    a, b = fig.subplots(1, 2)
    fg.show(a, x, f"input, {window}px grey patch, stride {stride}")
    im = b.imshow(heat, cmap="inferno", vmin=0, vmax=max(p0, float(heat.max())))
    b.set_title(f"p('{model.name(t)}') with the patch centred here", fontsize=9)
    b.set_xticks([])
    b.set_yticks([])
    fig.colorbar(im, ax=b, label="probability")
    return _done(fig, out)


def attribution(image: ImageLike, method: str = "saliency", target: str | int | None = None, out: Out = None) -> Figure:
    """Saliency, guided backprop or integrated gradients (Captum) on EfficientNet-Lite0."""
    if method not in GRADIENT_METHODS:
        raise UserError(f"method must be one of {', '.join(GRADIENT_METHODS)}, not {method!r}")
    model, x = load_classifier(), load(image)
    t = _resolve(target, x)
    heat = GRADIENT_METHODS[method](model).attribute(x, t).numpy()
    heat = heat / max(float(np.percentile(heat, 99.5)), 1e-12)
    p = float(model.probabilities(x)[0, t])
    fig = fg.new_figure(9, 4.4, f"{method.replace('-', ' ').capitalize()} for '{model.name(t)}' (p={p:.2f})")
    a, b = fig.subplots(1, 2)
    fg.show(a, x, "input")
    im = fg.overlay(b, x, np.clip(heat, 0, 1), "attribution (|.|, 99.5th pct = 1)")
    fig.colorbar(im, ax=b, label="relative importance")
    return _done(fig, out)


def _targets(target: str | int | Sequence[str | int]) -> list[int]:
    """One class or several (a list, or names separated by commas) -> class indices."""
    if isinstance(target, str):
        target = [t for t in target.split(",") if t.strip()]
    elif isinstance(target, int):
        target = [target]
    return [class_index(t) for t in target]


def class_visualization_figure(result: ClassVisResult, config: FeatureVisConfig) -> Figure:
    """One panel per class, titled with the class and the classifier's probability for it."""
    import textwrap

    model = load_classifier()
    n = len(result.targets)
    cols = n if n <= 4 else 3
    rows = -(-n // cols)
    fig = fg.new_figure(3.6 * cols, 3.75 * rows + 0.8, "Class visualization: EfficientNet-Lite0, ascent on one logit")
    for ax, img, t, p in zip(fg.grid_axes(fig, n, cols), result.images, result.targets, result.probabilities):
        fg.show(ax, img, f"{model.name(t)}: p = {p:.3f}")
        ax.title.set_fontsize(11)
    priors = "; ".join(config.regularizers) or "no prior"
    fig.supxlabel(textwrap.fill(f"{config.steps} Adam steps; {priors}", 30 * cols), fontsize=8)
    return fig


def class_visualization(
    target: str | int | Sequence[str | int],
    steps: int | None = None,
    out: Out = None,
    progress: bool = True,
    config: FeatureVisConfig | None = None,
) -> Figure:
    """Images that maximize class logits, with Olah et al.'s and Yosinski et al.'s priors (see ``featurevis``)."""
    cfg = config or FeatureVisConfig()
    if steps is not None:
        cfg = replace(cfg, steps=steps)
    result = ClassVisualization(load_classifier(), cfg).generate(target=_targets(target), progress=progress)
    return _done(class_visualization_figure(result, cfg), out)


def _attack_figure(title: str, x: Tensor, r, model, magnify: float) -> Figure:
    fig = fg.new_figure(11, 4.3, title)
    a, b, c = fig.subplots(1, 3)
    fmt = lambda d: "\n".join(f"{k}: {v:.2f}" for k, v in list(d.items())[:2])  # noqa: E731
    fg.show(a, x, f"before\n{fmt(r.before)}")
    delta = (r.image - x)[0].permute(1, 2, 0).numpy()
    fg.show(b, np.clip(0.5 + delta * magnify, 0, 1), f"change x{magnify:g}\nL-inf = {r.linf * 255:.1f}/255")
    fg.show(c, r.image, f"after ({r.steps} steps)\n{fmt(r.after)}")
    return fig


def adversarial(
    image: ImageLike, target: str | int, eps: float = 4 / 255, out: Out = None, progress: bool = True
) -> Figure:
    """Targeted iterative attack within an L-infinity ball of ``eps``."""
    model, x = load_classifier(), load(image)
    t = class_index(target)
    r = TargetedAttack(model, eps=eps).generate(x, t, progress=progress)
    verdict = "succeeded" if r.success else "failed"
    title = f"Targeted attack -> '{model.name(t)}' {verdict}: p {r.target_prob_before:.3f} -> {r.target_prob_after:.3f}"
    return _done(_attack_figure(title, x, r, model, 0.5 / max(r.linf, 1e-6)), out)


@dataclass
class FoolingResult:
    targets: list[int]
    direct: list[AttackResult]  # pixel-space ascent from uniform noise (Nguyen et al.'s direct encoding)
    prior: ClassVisResult  # the same ascent through the Fourier/decorrelated parametrization only


def fooling_images(targets: Sequence[int], steps: int = 100, size: int = 224, progress: bool = True) -> FoolingResult:
    """Per class: an unrecognisable image the classifier is sure of, and one made under a parametrization prior.

    Two methods side by side (``FoolingImage`` and a ``ClassVisualization``
    with only the parametrization prior), so an experiment, not one generator.
    """
    model = load_classifier()
    fooling = FoolingImage(model, size=size, steps=steps)
    direct = [fooling.generate(target=t, progress=progress) for t in targets]
    prior_cfg = FeatureVisConfig(
        steps=steps, octaves=(size,), pad=0, jitter=0, scales=(1.0,), angles=(0.0,), blur_every=0, clip_every=0
    )
    prior = ClassVisualization(model, prior_cfg).generate(target=list(targets), progress=progress)
    return FoolingResult(list(targets), direct, prior)


def fooling_figure(result: FoolingResult, full: ClassVisResult | None = None) -> Figure:
    """Draw a fooling result: one column per class; no prior, the parametrization only and, given ``full``, every prior.

    Only draws (the gallery's ``render_fooling`` runs the experiment at its budget and writes the captioned file).
    """
    model = load_classifier()
    n = len(result.targets)
    rows = [
        (
            "pixels from noise,\nno prior",
            [r.image for r in result.direct],
            [r.target_prob_after for r in result.direct],
        ),
        ("Fourier + decorrelated\ncolour, no transforms", list(result.prior.images), result.prior.probabilities),
    ]
    if full is not None:
        rows.append(("all priors (class\nvisualization)", list(full.images), full.probabilities))
    fig = fg.new_figure(
        2.9 * n + 0.6, 3.1 * len(rows) + 0.5, "Fooling images: EfficientNet-Lite0 is equally sure of all"
    )
    axes = fig.subplots(len(rows), n, squeeze=False)
    for i, (label, images, probs) in enumerate(rows):
        for j, t in enumerate(result.targets):
            name = model.name(t)
            fg.show(axes[i, j], images[j], f"{name}: p = {probs[j]:.3f}")
        axes[i, 0].set_ylabel(label, fontsize=9)
    return fig


def fooling(
    target: str | int | Sequence[str | int], steps: int = 100, out: Out = None, progress: bool = True
) -> Figure:
    """Images the classifier labels ``target`` with high confidence (Nguyen et al. 2015), with and without a prior."""
    return _done(fooling_figure(fooling_images(_targets(target), steps, progress=progress)), out)


def deepdream(
    image: ImageLike,
    layer: str = "relu4_1",
    octaves: int = 3,
    steps: int = 10,
    size: int = 320,
    out: Out = None,
    progress: bool = True,
) -> Figure:
    """DeepDream on a VGG19 layer with octaves and jitter."""
    x = load(image, None)
    x = resize_long(x, size)
    dd = DeepDream(layer, octaves=octaves, steps=steps)
    y = dd.generate(x, progress=progress).image
    with torch.no_grad():
        a, b = float(dd.objective(x)), float(dd.objective(y))
    fig = fg.new_figure(10, 4.6, f"DeepDream on VGG19 {layer}: {octaves} octaves x {steps} steps")
    p, q = fig.subplots(1, 2)
    fg.show(p, x, f"input (mean activation^2 {a:.3g})")
    fg.show(q, y, f"dream (mean activation^2 {b:.3g}, x{b / max(a, 1e-12):.1f})")
    return _done(fig, out)


def embedding(
    folder: str | os.PathLike | Sequence[ImageLike],
    projection: str = "tsne",
    k: int = 4,
    queries: int = 4,
    out: Out = None,
) -> Figure:
    """Thumbnails at their t-SNE/PCA coordinates, and each query's nearest neighbours (L2, penultimate features)."""
    items = folder_images(folder) if isinstance(folder, (str, os.PathLike)) else list(folder)
    images = [load(p) for p in items]
    emb = Embedding(load_classifier())
    feats = emb.embed(images)
    xy = emb.project(feats, projection)
    nn_idx = emb.neighbours(feats, k)
    fig = fg.new_figure(13, 6.6, f"EfficientNet-Lite0 penultimate features of {len(images)} images")
    left, right = fig.subfigures(1, 2, width_ratios=[1.1, 1])
    ax = left.subplots()
    ax.set_title(f"{projection.upper()} map", fontsize=10)
    ax.scatter(xy[:, 0], xy[:, 1], s=2, alpha=0)
    for (px, py), img in zip(xy, images):
        thumb = torch.nn.functional.interpolate(img, size=(40, 40), mode="bilinear", antialias=True)
        ax.add_artist(AnnotationBbox(OffsetImage(fg.to_hwc(thumb), zoom=1.0), (px, py), frameon=False))
    ax.set_xlabel(f"{projection} 1")
    ax.set_ylabel(f"{projection} 2")
    ax.margins(0.12)
    right.suptitle(f"query | {nn_idx.shape[1]} nearest neighbours (L2)", fontsize=10)
    q = min(queries, len(images))
    axes = np.array(fg.grid_axes(right, q * (1 + nn_idx.shape[1]), 1 + nn_idx.shape[1])).reshape(q, -1)
    d = torch.cdist(feats, feats)
    for r in range(q):
        fg.show(axes[r, 0], images[r], "query")
        for j, n in enumerate(nn_idx[r].tolist()):
            fg.show(axes[r, j + 1], images[n], f"d={float(d[r, n]):.1f}")
    return _done(fig, out)
