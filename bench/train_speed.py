"""Training throughput: images/s for both architectures at 256 px, batch 4, on this machine's CPU and any GPU.

One full optimisation step (transformer forward, VGG19 to relu4_1, losses,
backward, Adam) on random images, after a warm-up step, so the number is what
``restyle train`` sustains when data loading keeps up.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from restyle.train.config import TrainConfig
from restyle.train.loop import Trainer

SECTION = "Training speed"


def measure(arch: str, device: str, size: int, batch: int, steps: int, photos: Path, style: Path) -> float:
    cfg = TrainConfig(
        style_images=[style], data=photos, out=Path("/tmp/restyle-bench-train"), arch=arch, device=device,
        image_size=size, style_size=size, batch_size=batch, amp=True,
    )  # fmt: skip
    trainer = Trainer(cfg)
    x = torch.rand(batch, 3, size, size)
    trainer.train_step(x)  # warm-up: allocator, cudnn autotune
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(x)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def run(args: argparse.Namespace) -> tuple[list[str], list[list[str]]]:
    from bench.common import sample_inputs

    photos, style = sample_inputs()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        name = (
            torch.cuda.get_device_name()
            if device == "cuda"
            else f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)"
        )
        steps = args.steps if device == "cpu" else args.steps * 10
        for arch in ("johnson", "fast"):
            rate = measure(arch, device, args.size, args.batch, steps, photos, style)
            rows.append([arch, name, f"{args.size}", f"{args.batch}", f"{rate:.2f}", f"{args.batch / rate:.2f}"])
    return ["arch", "device", "size", "batch", "images/s", "s/step"], rows


def main(argv: list[str] | None = None) -> None:
    from bench.common import report

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--write", type=Path, help="merge the table into this markdown file")
    args, _ = p.parse_known_args(argv)  # `python -m bench` passes every flag to every benchmark
    header, rows = run(args)
    report(
        SECTION,
        header,
        rows,
        args.write,
        note=f"`python -m bench.train_speed --steps {args.steps}`: {__doc__.splitlines()[0]}",
    )


if __name__ == "__main__":
    main()
