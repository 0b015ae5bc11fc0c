"""Matplotlib helpers: every viz method returns a :class:`~matplotlib.figure.Figure` drawn with these.

Figures are built with the object API on the Agg canvas (no pyplot global
state, no display needed), so the toolkit runs in tests, servers and CI, and
they are written atomically like every other output of the product.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import Tensor  # noqa: E402

from restyle.atomic import atomic_path  # noqa: E402

DPI = 100


def to_hwc(image: Tensor | np.ndarray) -> np.ndarray:
    """1x3xHxW / 3xHxW tensor or HxWx3 array -> HxWx3 float array clipped to [0, 1]."""
    if isinstance(image, Tensor):
        t = image.detach().float().cpu()
        if t.ndim == 4:
            t = t[0]
        if t.ndim == 3 and t.shape[0] in (1, 3):
            t = t.permute(1, 2, 0)
        image = t.numpy()
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return np.clip(arr, 0.0, 1.0)


def new_figure(width: float, height: float, title: str | None = None) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    if title:
        fig.suptitle(title, fontsize=13, fontweight="bold")
    return fig


def show(ax: Axes, image: Tensor | np.ndarray, title: str | None = None, **kwargs) -> None:
    """Draw an image without ticks; 2-D arrays use ``cmap`` (default viridis)."""
    arr = to_hwc(image) if not (isinstance(image, np.ndarray) and image.ndim == 2) else image
    if arr.ndim == 2:
        kwargs.setdefault("cmap", "viridis")
    ax.imshow(arr, **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def grid_axes(fig: Figure | object, n: int, ncols: int) -> list[Axes]:
    """``n`` axes in rows of ``ncols`` on a figure or subfigure; spare cells are hidden."""
    nrows = max(1, math.ceil(n / ncols))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.axis("off")
    return list(axes[:n])


def overlay(ax: Axes, image: Tensor | np.ndarray, heat: np.ndarray, title: str | None = None, alpha: float = 0.55):
    """A heat map over a dimmed photo, with a colour bar: how attribution figures are read."""
    show(ax, to_hwc(image) * 0.6 + 0.2, title)
    return ax.imshow(heat, cmap="inferno", alpha=alpha, extent=(-0.5, heat.shape[1] - 0.5, heat.shape[0] - 0.5, -0.5))


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = DPI) -> Path:
    """Write the figure as PNG atomically (a crash never leaves half a file behind)."""
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path


__all__ = ["grid_axes", "new_figure", "overlay", "save_figure", "show", "to_hwc"]
