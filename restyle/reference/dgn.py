"""What DGN-AM's learned prior would cost on this machine: time a decoder training step that inverts VGG19 relu4_1.

DGN-AM (Nguyen et al. 2016) needs a generator trained to invert a network's
features. The smallest such generator this project could train is the
mirror-image decoder of VGG19 up to relu4_1 (Huang & Belongie 2017's AdaIN
decoder), trained with a pixel loss plus a relu4_1 feature loss. This module
builds that decoder and times real training steps, so ``docs/reference.md``
can say from a measurement, not a guess, whether it fits in a CPU budget::

    python -m restyle.reference.dgn --size 128 --batch 1 --steps 3

It trains nothing beyond the timed steps.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restyle.reference.features import vgg_to
from restyle.reference.losses import content_loss

LAYER = "relu4_1"
# Huang & Belongie 2017 train this decoder for 160k iterations of batch 8 at 256 px (MS-COCO).
REFERENCE_ITERATIONS, REFERENCE_BATCH, REFERENCE_SIZE = 160_000, 8, 256


def decoder() -> nn.Sequential:
    """VGG19 relu4_1 (512 channels, 1/8 size) -> RGB: the AdaIN decoder (nearest upsampling, reflection padding)."""

    def conv(cin: int, cout: int, relu: bool = True) -> list[nn.Module]:
        return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3), *([nn.ReLU()] if relu else [])]

    up = nn.Upsample(scale_factor=2, mode="nearest")
    return nn.Sequential(
        *conv(512, 256),
        up,
        *conv(256, 256),
        *conv(256, 256),
        *conv(256, 256),
        *conv(256, 128),
        nn.Upsample(scale_factor=2, mode="nearest"),
        *conv(128, 128),
        *conv(128, 64),
        nn.Upsample(scale_factor=2, mode="nearest"),
        *conv(64, 64),
        *conv(64, 3, relu=False),
    )


def training_step(dec: nn.Module, opt: torch.optim.Optimizer, photos: Tensor) -> float:
    """One step: encode (frozen VGG19), decode, pixel + relu4_1 feature loss, Adam update; returns the loss."""
    enc = vgg_to(LAYER)
    with torch.no_grad():
        target = enc(photos)[LAYER]
    out = dec(target)
    loss = F.mse_loss(out, photos) + content_loss(enc(out)[LAYER], target)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.detach())


def time_steps(size: int = 128, batch: int = 1, steps: int = 3, seed: int = 0) -> dict[str, float]:
    """Seconds (wall and CPU) per training step after one warm-up step, on random photos-shaped input."""
    torch.manual_seed(seed)
    dec = decoder()
    opt = torch.optim.Adam(dec.parameters(), lr=1e-4)
    x = torch.rand(batch, 3, size, size)
    training_step(dec, opt, x)  # warm-up: allocations, VGG dequantization

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    t0, c0 = time.perf_counter(), cpu()
    for _ in range(steps):
        training_step(dec, opt, x)
    wall, cpus = (time.perf_counter() - t0) / steps, (cpu() - c0) / steps
    scale = (REFERENCE_BATCH * REFERENCE_SIZE**2) / (batch * size**2)
    return {
        "size": size,
        "batch": batch,
        "threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in dec.parameters()),
        "wall_s_per_step": wall,
        "cpu_s_per_step": cpus,
        "reference_cpu_s_per_step": cpus * scale,
        "reference_hours": cpus * scale * REFERENCE_ITERATIONS / 3600,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m restyle.reference.dgn", description=__doc__)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args(argv)
    r = time_steps(args.size, args.batch, args.steps)
    print(
        f"decoder ({r['parameters'] / 1e6:.2f} M parameters), batch {r['batch']} at {r['size']} px, "
        f"{r['threads']} thread(s): {r['wall_s_per_step']:.2f} s wall, {r['cpu_s_per_step']:.2f} s CPU per step; "
        f"scaled by pixels to batch {REFERENCE_BATCH} at {REFERENCE_SIZE} px: {r['reference_cpu_s_per_step']:.1f} s "
        f"CPU per step, {r['reference_hours']:.0f} h for {REFERENCE_ITERATIONS} iterations"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
