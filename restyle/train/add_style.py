"""A new style on top of a trained multi-style network, by training only its normalisation parameters.

In a conditional instance-norm network a style *is* its per-layer gamma/beta
vectors (Dumoulin et al. 2017); the convolutions are shared by every style.
So a new style needs no new convolutions: freeze them, start gamma/beta from
the mean of the base's styles, and train those alone with the usual balanced
losses. For the bundled ``fast`` network that is 360 parameters instead of
about 98,000, which is why it converges in minutes on a CPU.

The result is a **single-style** network (the base's convolutions plus the new
gamma/beta), exported as its own ONNX file, rather than the base with one more
style appended: the base file stays untouched (bundled models are read-only,
and two users adding styles at once never rewrite one shared file), a user
style can be deleted by deleting its file, and it costs one more 0.8 MB file.
What is given up is blending a user style with the bundled ones.
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


def load_base(spec: str | Path) -> StyleNet:
    """The trained network named by ``spec``: an installed model or style name, an ``.onnx`` file or a ``final.pt``."""
    path = Path(spec).expanduser()
    if not path.is_file():
        from restyle.runtime.cli import cli_registry

        registry = cli_registry(None)  # bundled models plus the user's models folder, as `restyle stylize` sees them
        model, _ = registry.lookup(str(spec))
        path = registry.info(model).path
    if not path.is_file():
        raise InputNotFound(f"base model not found: {spec}")
    if path.suffix == ".onnx":
        net = _from_onnx(path)
    else:
        from restyle.models.serialization import load_model

        net, _ = load_model(path)
    if net.num_styles < 2:
        raise UserError(
            f"base {path.name} holds one style; a new style needs a multi-style base whose shared "
            "convolutions learned from several styles (e.g. the bundled 'classics')"
        )
    return net


def new_style_network(base: StyleNet) -> StyleNet:
    """A one-style network: the base's convolutions (frozen), gamma/beta the mean of the base's styles (trained)."""
    net = build_network(base.arch, 1)
    state = {}
    for name, value in base.state_dict().items():
        state[name] = value.mean(dim=0, keepdim=True) if is_norm_parameter(name) else value
    net.load_state_dict(state)
    return freeze_all_but_norms(net)


def freeze_all_but_norms(net: StyleNet) -> StyleNet:
    """Only the norm parameters train; the convolutions keep the base's weights."""
    for name, p in net.named_parameters():
        p.requires_grad_(is_norm_parameter(name))
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
    card = f"""# {name}

A new style added to the multi-style base `{s["base"]}` by training only its normalisation parameters
(the base's convolutions are frozen; see `restyle.train.add_style`). Single-style model: `{out.name}`.

| | |
|---|---|
| style image | `{image["file"]}` (sha256 `{image["sha256"][:12]}…`) |
| base | `{s["base"]}` ({record["arch"]}) |
| steps × batch | {meta["steps"]} × {s["batch_size"]} at {s["image_size"]} px {
        f"(stopped early: the style loss had flattened; {s['steps']} planned)" if meta.get("stopped_early") else ""
    } |
| losses | content {s["content_weight"]:g} at `{s["content_layer"]}`, style {s["style_weight"]:g} over \
{", ".join(s["style_layers"])}, TV {s["tv_weight"]:g}; final style {losses.get("style", 0):.4g}, \
content {losses.get("content", 0):.4g} |
| learning rate | {s["lr"]:g} ({s["lr_schedule"]}) |
| hardware | {meta["hardware"]} |
| training time | {meta["train_seconds"]:.0f} s |
"""
    atomic_write_bytes(out.with_suffix(".md"), card.encode())
    return out
