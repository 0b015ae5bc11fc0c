"""``restyle gatys`` and ``restyle viz METHOD``: the reference suite's command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from restyle.errors import UserError


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def register(subparsers: argparse._SubParsersAction) -> None:
    g = subparsers.add_parser("gatys", help="optimization-based style transfer, texture synthesis, feature inversion")
    g.add_argument("--content", help="content photo (not needed with --texture)")
    g.add_argument("--style-image", action="append", default=[], help="style image; repeat to blend several")
    g.add_argument("--style-weights", type=_floats, help="blend weights, e.g. 0.7,0.3 (default: equal)")
    g.add_argument("-o", "--output", required=True, help="output image (.png/.jpg)")
    g.add_argument("--size", type=_positive, default=512, help="long side in pixels (default 512)")
    g.add_argument("--steps", type=_positive, default=300, help="optimizer steps per scale (default 300)")
    g.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs")
    g.add_argument("--init", choices=("content", "noise"), default="content")
    g.add_argument("--content-weight", type=float, default=1.0)
    g.add_argument("--style-weight", type=float, default=100.0)
    g.add_argument("--tv-weight", type=float, help="total-variation weight (default 1 for style, 0.05 for --invert)")
    g.add_argument("--preserve-color", action="store_true", help="keep the content's colours (luminance transfer)")
    g.add_argument("--scales", type=_positive, default=1, help="coarse-to-fine scales (each halves the size)")
    g.add_argument(
        "--scale-steps",
        type=_ints,
        metavar="N1,N2,...",
        help="steps per scale, coarse to fine, e.g. 300,200,100 (sets --scales; --steps is then unused)",
    )
    g.add_argument("--save-every", type=int, default=0, metavar="K", help="also write OUT_sS_stepN.png every K steps")
    g.add_argument("--texture", metavar="HxW", help="synthesize a texture of this size from the style image alone")
    g.add_argument("--invert", metavar="LAYER", help="reconstruct --content from this VGG19 layer's features")
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=run_gatys)

    v = subparsers.add_parser("viz", help="CNN visualization toolkit (figures as PNG)")
    methods = v.add_subparsers(dest="method", metavar="METHOD")
    methods.required = True

    def method(name: str, help_: str, *, image: bool = False, target: bool = False) -> argparse.ArgumentParser:
        p = methods.add_parser(name, help=help_)
        if image:
            p.add_argument("image", help="input image")
        if target:
            p.add_argument("--target", help="ImageNet class name or index (default: the predicted class)")
        p.add_argument("-o", "--output", required=True, help="output PNG figure")
        p.set_defaults(func=run_viz)
        return p

    method("filters", "first-layer filters of VGG19 and EfficientNet-Lite0")
    method("activations", "feature maps of a VGG19 layer", image=True).add_argument("--layer", default="relu2_1")
    p = method("patches", "top-9 receptive-field patches per channel over a folder")
    p.add_argument("folder")
    p.add_argument("--layer", default="relu3_1")
    p.add_argument("--channels", type=_ints, help="e.g. 3,17,42 (default: the 4 strongest)")
    p = method("occlusion", "class probability under a sliding grey patch", image=True, target=True)
    p.add_argument("--window", type=_positive, default=64)
    p.add_argument("--stride", type=_positive, default=16)
    for name in ("saliency", "guided-backprop", "integrated-gradients"):
        method(name, f"{name} attribution via Captum", image=True, target=True)
    p = method("class-visualization", "images that maximize class scores, under feature-visualization priors")
    p.add_argument("--target", required=True, help="ImageNet class(es), comma-separated for several")
    p.add_argument("--steps", type=_positive, default=384)
    p = method("adversarial", "targeted imperceptible attack", image=True)
    p.add_argument("--target", required=True)
    p.add_argument("--eps", type=float, default=4.0, help="L-infinity budget in 1/255 units (default 4)")
    p = method("fooling", "noise the classifier calls --target")
    p.add_argument("--target", required=True, help="ImageNet class(es), comma-separated for several")
    p.add_argument("--steps", type=_positive, default=100)
    p = method("deepdream", "DeepDream on a VGG19 layer", image=True)
    p.add_argument("--layer", default="relu4_1")
    p.add_argument("--octaves", type=_positive, default=3)
    p.add_argument("--steps", type=_positive, default=10)
    p.add_argument("--size", type=_positive, default=320)
    p = method("embedding", "nearest neighbours and a t-SNE/PCA map of a folder")
    p.add_argument("folder")
    p.add_argument("--projection", choices=("tsne", "pca"), default="tsne")


def run_viz(args: argparse.Namespace) -> int:
    from restyle.reference import viz

    m, out = args.method, args.output
    if not str(out).lower().endswith(".png"):
        raise UserError(f"figures are PNG; give an output path ending in .png, not {out}")
    if m == "filters":
        viz.filters(out=out)
    elif m == "activations":
        viz.activations(args.image, args.layer, out=out)
    elif m == "patches":
        viz.patches(args.folder, args.layer, args.channels, out=out)
    elif m == "occlusion":
        viz.occlusion(args.image, args.target, args.window, args.stride, out=out)
    elif m in ("saliency", "guided-backprop", "integrated-gradients"):
        viz.attribution(args.image, m, args.target, out=out)
    elif m == "class-visualization":
        viz.class_visualization(args.target, args.steps, out=out)
    elif m == "adversarial":
        if not 0 < args.eps <= 255:
            raise UserError(f"--eps must be in (0, 255], not {args.eps}")
        viz.adversarial(args.image, args.target, args.eps / 255, out=out)
    elif m == "fooling":
        viz.fooling(args.target, args.steps, out=out)
    elif m == "deepdream":
        viz.deepdream(args.image, args.layer, args.octaves, args.steps, args.size, out=out)
    elif m == "embedding":
        viz.embedding(args.folder, args.projection, out=out)
    print(out)
    return 0


def _parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--texture takes HxW, e.g. 256x256, not {text!r}") from None
    return h, w


def run_gatys(args: argparse.Namespace) -> int:
    import torch

    from restyle.imaging import save_image
    from restyle.reference import gatys
    from restyle.reference.figures import to_hwc
    from restyle.reference.losses import psnr
    from restyle.reference.viz import load

    torch.manual_seed(args.seed)
    out = Path(args.output)
    if args.save_every < 0:
        raise UserError("--save-every must be 0 (off) or positive")

    def snapshot(name: str, step: int, img: torch.Tensor) -> None:
        if args.save_every and step % args.save_every == 0:
            save_image(to_hwc(img), out.with_name(f"{out.stem}_{name}step{step:04d}{out.suffix or '.png'}"))

    if args.invert:
        from restyle.reference.inversion import FeatureInversion

        if not args.content:
            raise UserError("--invert needs --content")
        photo = gatys.resize_long(load(args.content, None), args.size)
        tv = 0.05 if args.tv_weight is None else args.tv_weight
        inversion = FeatureInversion(args.invert, args.steps, tv_weight=tv, optimizer=args.optimizer)
        r = inversion.generate(photo, seed=args.seed)
        print(f"PSNR {psnr(r.image, photo):.2f} dB", end="; ")
    elif args.texture:
        if len(args.style_image) != 1:
            raise UserError("--texture takes exactly one --style-image")
        texture = gatys.TextureConfig(
            size=_parse_size(args.texture),
            scale_steps=tuple(args.scale_steps or [args.steps]),
            optimizer=args.optimizer,
            style_size=args.size,
        )
        r = gatys.TextureSynthesis(texture).generate(
            target=load(args.style_image[0], None),
            seed=args.seed,
            callback=lambda _scale, s, im: snapshot("", s, im),
        )
    else:
        if not args.content or not args.style_image:
            raise UserError("gatys needs --content and at least one --style-image (or --texture / --invert)")
        cfg = gatys.GatysConfig(
            size=args.size,
            steps=args.steps,
            optimizer=args.optimizer,
            init=args.init,
            content_weight=args.content_weight,
            style_weight=args.style_weight,
            tv_weight=1.0 if args.tv_weight is None else args.tv_weight,
            preserve_color=args.preserve_color,
            scales=args.scales,
            scale_steps=tuple(args.scale_steps) if args.scale_steps else None,
            style_blend=tuple(args.style_weights) if args.style_weights else None,
        )
        styles = [load(p, None) for p in args.style_image]
        r = gatys.StyleTransfer(cfg).generate(
            load(args.content, None),
            styles,
            seed=args.seed,
            callback=lambda i, s, im: snapshot(f"s{i}_", s, im),
        )
    save_image(to_hwc(r.image), out)
    print(
        f"loss {r.history[0]['total']:.4g} -> {r.history[-1]['total']:.4g} ({100 * r.reduction():.1f}% lower); wrote {out}"
    )
    return 0
