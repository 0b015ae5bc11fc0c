"""The image-space optimization loop shared by Gatys, texture synthesis, inversion and the viz methods.

One loop, two optimizers: L-BFGS (Gatys' choice: it converges in a few
hundred evaluations on these smooth losses) and Adam (cheaper per step,
robust to clamping). Pixels stay in [0, 1] by clamping after every step, and a
tqdm bar shows the loss terms so a long CPU run is never silent.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm

from restyle.errors import UserError
from restyle.reference.method import Result

LossFn = Callable[[Tensor], dict[str, Tensor]]
OPTIMIZERS = ("lbfgs", "adam")


def optimize_image(
    init: Tensor,
    loss_fn: LossFn,
    steps: int,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    desc: str = "optimizing",
    callback: Callable[[int, Tensor], None] | None = None,
    progress: bool = True,
) -> Result:
    """Minimize ``loss_fn(x)['total']`` over the pixels of ``x`` starting from ``init``.

    ``loss_fn`` returns named scalar terms (``total`` plus its parts, for the
    progress bar and the history; step 0 is the initial image). ``callback(step, image)`` runs after
    each step; the methods built on this loop add their stage (scale) to it.
    """
    if optimizer not in OPTIMIZERS:
        raise UserError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {optimizer!r}")
    if steps < 1:
        raise UserError(f"steps must be at least 1, not {steps}")
    x = init.detach().clone(memory_format=torch.contiguous_format).clamp_(0, 1).requires_grad_(True)
    if optimizer == "lbfgs":
        # max_iter=1: one evaluation per step, so a step means the same thing for both optimizers.
        opt: torch.optim.Optimizer = torch.optim.LBFGS([x], lr=lr or 1.0, max_iter=1, history_size=50)
    else:
        opt = torch.optim.Adam([x], lr=lr or 0.02)

    history: list[dict[str, float]] = []
    last: dict[str, float] = {}

    def closure() -> Tensor:
        opt.zero_grad()
        terms = loss_fn(x)
        terms["total"].backward()
        last.clear()
        last.update({k: float(v.detach()) for k, v in terms.items()})
        return terms["total"]

    with torch.no_grad():
        history.append({k: float(v) for k, v in loss_fn(x).items()})
    bar = tqdm(range(1, steps + 1), desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    for step in bar:
        opt.step(closure)
        with torch.no_grad():
            x.clamp_(0, 1)
        history.append(dict(last))
        bar.set_postfix({k: f"{v:.3g}" for k, v in last.items()})
        if callback is not None:
            callback(step, x.detach())
    bar.close()
    with torch.no_grad():
        history[-1] = {k: float(v) for k, v in loss_fn(x).items()}  # the loss of the image we return
    return Result(x.detach(), history)
