"""A new style on top of a trained multi-style network: its norms first, and every convolution at a lower rate.

In a conditional instance-norm network a style *is* its per-layer gamma/beta
vectors (Dumoulin et al. 2017); the convolutions are shared by every style.
So a new style starts from the base: gamma/beta from the mean of the base's
styles, every convolution as the base has it, and trains with the usual
balanced losses, the norms at a high rate (``lr``) and the convolutions at
lower ones (``decoder_lr``, ``body_lr``; 0 keeps them frozen). It converges in
minutes on a CPU because it starts from a network that already paints.

What trains was measured twice.

On the previous ``fast`` base (``python -m bench new_style --full-run``: a
synthetic painting the base never saw, scored against a whole network trained
on it for 130 minutes, the first section of "Your own style" in
``docs/quality.md``; 260 steps each, style / palette distance, lower is better,
full run 0.470 / 0.242):

* the norms alone: 0.556 / 0.296 (1.18x / 1.22x the full run). The shared
  decoder maps features to RGB for the base's six paintings, and gamma/beta
  cannot make a colour or stroke edge the decoder does not produce;
* with the output convolution (651 parameters): 0.514 / 0.280;
* with the decoder (the upsampling and output convolutions, ``decoder_lr``):
  0.506 / 0.272 at rate 1e-3 and 0.501 / 0.267 at 3e-3, the default;
* and with the palette term at weight 2 instead of the bundled recipe's 1:
  0.501 / 0.253 (1.07x / 1.05x the full run).

On the bundled ``lite`` base, by the new-style protocol (``python -m bench
new_style --protocol``, 13 paintings, recipes chosen on five of them; every
recipe tried: ``--protocol --recipes``): with the encoder and residual body
also trained (``body_lr`` 5e-4, the default) the five tuning paintings beat
the peer already at 1 minute (3 of 5 with them frozen) and the mean style
distance over the peer's at 2 minutes fell from 0.88 to 0.86; at 1e-3 one of
the five lost again. The network is about 2 % of a step's arithmetic (the
VGG losses are the rest), so training all of it costs no time.

The start is **the mean of the base's styles**, as in the paper. The
alternative, ``start_from="nearest"`` (of the base's styles and their mean,
the one whose output on a fixed batch of training photos has the lowest
style + palette loss against the new image), picked another start for two of
the protocol's five tuning paintings (the_scream: better, a Hokusai print:
worse) and beat the peer on as many, so it is an option, not the default.

The result is a **single-style** network exported as its own ONNX file,
rather than the base with one more style appended: with its own convolutions
it could not be appended anyway, the base file stays untouched (bundled
models are read-only, and two users adding styles at once never rewrite one
shared file), a user style can be deleted by deleting its file, and it costs
one more file of the base's size (0.4 MB for ``lite``). What is given up is
blending a user style with the bundled ones.
"""

from __future__ import annotations

from pathlib import Path

import torch

from restyle.errors import InputNotFound, UserError
from restyle.models.transformer import StyleNet, build_network


def is_norm_parameter(name: str) -> bool:
    """The per-style parameters of a conditional instance-norm network (``StyleNorm.weight/bias``)."""
    return ".norm." in f".{name}" and name.rsplit(".", 1)[-1] in {"weight", "bias"}


def _from_onnx(path: Path) -> StyleNet:
    """Rebuild the PyTorch network from an exported restyle ONNX file: its initializers carry every weight."""
    import onnx
    from onnx import numpy_helper

    from restyle.contract import read_metadata

    meta = read_metadata(path)
    if meta.precision != "fp32":
        raise UserError(f"base {path.name} is a {meta.precision} model; use the fp32 model as a base")
    net = build_network(meta.arch, meta.num_styles)
    weights = {
        init.name.removeprefix("net."): torch.from_numpy(numpy_helper.to_array(init).copy())
        for init in onnx.load(str(path)).graph.initializer
    }
    state = net.state_dict()
    missing = [k for k in state if k not in weights or weights[k].shape != state[k].shape]
    if missing:
        raise UserError(f"base {path.name} does not carry the network's weights (missing {missing[0]})")
    net.load_state_dict({k: weights[k] for k in state})
    return net


def base_path(spec: str | Path) -> Path:
    """The file of the base named by ``spec``: an installed model or style name, an ``.onnx`` file or a ``final.pt``."""
    path = Path(spec).expanduser()
    if not path.is_file():
        from restyle.runtime.cli import cli_registry

        registry = cli_registry(None)  # bundled models plus the user's models folder, as `restyle stylize` sees them
        model, _ = registry.lookup(str(spec))
        path = registry.info(model).path
    if not path.is_file():
        raise InputNotFound(f"base model not found: {spec}")
    return path


def base_arch(spec: str | Path) -> str:
    """The base's architecture, read from its metadata without building it: a new style takes its base's network."""
    path = base_path(spec)
    if path.suffix == ".onnx":
        from restyle.contract import read_metadata

        return read_metadata(path).arch
    from restyle.models.serialization import read_model_record

    return str(read_model_record(path)["arch"])


def load_base(spec: str | Path) -> tuple[StyleNet, list[str]]:
    """The trained network named by ``spec`` (see ``base_path``) and its style names."""
    path = base_path(spec)
    if path.suffix == ".onnx":
        from restyle.contract import read_metadata

        net, names = _from_onnx(path), list(read_metadata(path).style_names)
    else:
        from restyle.models.serialization import load_model

        net, record = load_model(path)
        names = list(record["style_names"])
    if net.num_styles < 2:
        raise UserError(
            f"base {path.name} holds one style; a new style needs a multi-style base whose shared "
            "convolutions learned from several styles (e.g. the bundled 'classics')"
        )
    return net, names


DECODER_LAYERS = ("up.", "out.")  # parameter-name prefixes of the upsampling and output convolutions (both archs)


def is_new_style_parameter(name: str, train_decoder: bool, train_body: bool = False) -> bool:
    """What trains when a style is added: the norms; the decoder's convolutions when ``train_decoder``; every other
    convolution (the encoder and the residual body) when ``train_body``."""
    if is_norm_parameter(name):
        return True
    return train_decoder if name.startswith(DECODER_LAYERS) else train_body


def new_style_network(
    base: StyleNet, start: int | None = None, train_decoder: bool = False, train_body: bool = False
) -> StyleNet:
    """A one-style network with the base's convolutions and, as the new style's start, gamma/beta of base style
    ``start`` (None: the mean of the base's styles). Only :func:`is_new_style_parameter` parameters train."""
    net = build_network(base.arch, 1)
    net.load_state_dict(start_state(base, start))
    return freeze_for_new_style(net, train_decoder, train_body)


MEAN_START = "mean of the base's styles"


def start_label(names: list[str], start: int | None) -> str:
    """How ``final.pt`` and the model card name a start: base style ``start``, or None for the mean."""
    return MEAN_START if start is None else f"base style '{names[start]}'"


def start_state(base: StyleNet, start: int | None) -> dict[str, torch.Tensor]:
    """The one-style state dict that starts from base style ``start`` (None: the mean of every style)."""
    state = {}
    for name, value in base.state_dict().items():
        if is_norm_parameter(name):
            value = value.mean(dim=0, keepdim=True) if start is None else value[start : start + 1].clone()
        state[name] = value
    return state


def freeze_for_new_style(net: StyleNet, train_decoder: bool = False, train_body: bool = False) -> StyleNet:
    """Only :func:`is_new_style_parameter` parameters train; the rest keeps the base's."""
    for name, p in net.named_parameters():
        p.requires_grad_(is_new_style_parameter(name, train_decoder, train_body))
    return net


def flattened(values: list[float], window: int, tolerance: float = 0.02) -> bool:
    """True when the mean of the last ``window`` values improved on the window before by less than ``tolerance``.

    Used to stop a new style once its style loss flattens: the losses of
    single batches are noisy, window means are not.
    """
    if window <= 0 or len(values) < 2 * window:
        return False
    recent = sum(values[-window:]) / window
    before = sum(values[-2 * window : -window]) / window
    return recent > before * (1 - tolerance)


def trained_part(settings: dict) -> str:
    """What a new style's run trained, in words, from its settings (the model card's opening sentence)."""
    if settings.get("body_lr") and settings.get("decoder_lr"):
        return "every parameter, starting from the base's (the base's convolutions are only the start"
    if settings.get("body_lr"):
        return "its normalisation parameters, encoder and residual body (the decoder stays the base's"
    if settings.get("decoder_lr"):
        return (
            "its normalisation parameters and its decoder, the upsampling and output convolutions (the encoder and "
            "the residual body stay the base's"
        )
    return "only its normalisation parameters (every convolution stays the base's"


def style_sizes(settings: dict) -> str:
    """The painting's sizes its Gram targets were averaged over: ``384`` or ``384 + 256``."""
    sizes = dict.fromkeys([settings["style_size"], *settings.get("style_sizes", [])])
    return " + ".join(str(v) for v in sizes)


def palette_note(settings: dict) -> str:
    """`` (on at most 4096 random pixels a step)`` when the palette term was sampled (``palette_samples``), else empty."""
    n = settings.get("palette_samples", 0)
    return f" (on at most {n} random pixels a step)" if n and settings.get("palette_weight", 0) else ""


def pull_row(meta: dict) -> str:
    """The card's row on how the painting's style pull set the style weight (``style_pull_max``), when it did."""
    note = meta.get("style_weight_note")
    return f"\n| style pull | {note} (`restyle/recipes.py`) |" if note else ""


def stop_note(meta: dict, settings: dict) -> str:
    """Why a run ended before its planned steps, in words ("" when it ran them all)."""
    if not meta.get("stopped_early"):
        return ""
    if meta.get("stop_reason") == "time":
        return f"(stopped at the {settings['max_minutes']:g}-minute limit; {settings['steps']} planned)"
    return f"(stopped early: the style loss had flattened; {settings['steps']} planned)"


def export_new_style(final: Path, exporter: str = "dynamo") -> Path:
    """Export a new style's ``final.pt`` as ``NAME.onnx`` beside it (parity-checked), with a short model card.

    ``exporter``: see ``restyle.export.onnx_export`` (``torchscript`` is ~6x faster, same graph after ORT's folding).
    """
    from restyle.atomic import atomic_write_bytes
    from restyle.export.onnx_export import export_onnx
    from restyle.models.serialization import read_model_record

    record = read_model_record(final)
    meta = record["metadata"]
    name = record["style_names"][0]
    out = Path(final).parent / f"{name}.onnx"
    export_onnx(final, out, exporter=exporter)
    s = meta["settings"]
    image = meta["style_images"][0]
    losses = meta.get("final_losses", {})
    weight = meta.get("style_weight", s["style_weight"])  # as trained: lowered by the painting's pull, or as given
    card = f"""# {name}

A new style added to the multi-style base `{s["base"]}` by training {trained_part(s)}; see
`restyle.train.add_style`). Single-style model: `{out.name}`.

| | |
|---|---|
| style image | `{image["file"]}` (sha256 `{image["sha256"][:12]}…`) |
| base | `{s["base"]}` ({record["arch"]}); started from the {meta.get("started_from") or MEAN_START} |
| steps × batch | {meta["steps"]} × {s["batch_size"]} at {s["image_size"]} px {stop_note(meta, s)} |
| losses | content {s["content_weight"]:g} at `{s["content_layer"]}`, style {weight:.3g} over \
{", ".join(s["style_layers"])} (Gram targets at {style_sizes(s)} px), TV {s["tv_weight"]:g}, palette {
        s.get("palette_weight", 0):g}{palette_note(s)}; final style \
{losses.get("style", 0):.4g}, content {losses.get("content", 0):.4g} |{pull_row(meta)}
| learning rate | {s["lr"]:g} ({s["lr_schedule"]}){f"; decoder {s['decoder_lr']:g}" if s.get("decoder_lr") else ""}{
        f"; encoder and body {s['body_lr']:g}" if s.get("body_lr") else ""
    } |
| hardware | {meta["hardware"]}{f", {meta['precision']}" if meta.get("precision") else ""} |
| training time | {meta["train_seconds"]:.0f} s |
"""
    atomic_write_bytes(out.with_suffix(".md"), card.encode())
    return out
