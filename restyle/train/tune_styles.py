"""Fine-tune some styles of a trained multi-style network and leave every other style bit-identical.

    restyle train --init final.pt --tune-styles starry_night --style-weight 3 ...

A conditional instance-norm network keeps each style in its own row of every
``StyleNorm``'s gamma/beta; the convolutions are shared. Training only the
chosen rows (the others' gradients are masked to zero, so Adam never moves
them, and every convolution is frozen) lets one style take a recipe of its own
(a stronger style weight, say) without retraining, re-judging or changing the
other five: their outputs stay the same to the last bit, which
``tests/train/test_tune_styles.py`` checks.

Why this exists (issue 23): on the held-out photos the bundled styles met
every target but ``starry_night``'s VGG style distance, which the peer won on
most photos while its content distance had 10 % of headroom. One shared style
weight is a compromise between six paintings; this gives that one style more.
"""

from __future__ import annotations

import torch

from restyle.models.transformer import StyleNet
from restyle.train.add_style import is_norm_parameter


def freeze_except_styles(net: StyleNet, styles: list[int]) -> StyleNet:
    """Only the rows ``styles`` of the norms' gamma/beta keep a gradient; everything else is frozen."""
    if not styles or any(not 0 <= s < net.num_styles for s in styles):
        raise ValueError(f"styles {styles} are not all in 0..{net.num_styles - 1}")
    for name, p in net.named_parameters():
        if not is_norm_parameter(name):
            p.requires_grad_(False)
            continue
        mask = torch.zeros(p.shape[0], *([1] * (p.dim() - 1)), dtype=p.dtype)
        mask[styles] = 1
        p.register_hook(lambda grad, m=mask: grad * m.to(grad.device, grad.dtype))
    return net
