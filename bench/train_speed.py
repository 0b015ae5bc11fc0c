"""Training throughput: images/s per architecture and recipe at 256 px, batch 4, on this machine's CPU and any GPU.

One full optimisation step on random images, after a warm-up step, so the
number is what ``restyle train`` sustains when data loading keeps up:

* ``perceptual``: transformer forward, VGG19 to relu4_1, Gram and content
  losses, backward, Adam (one style image);
* ``distill``: the bundled ``classics`` network's forward (the teacher, no
  gradient), the student's forward, VGG19 to relu2_1 on both outputs, pixel
  and feature losses, backward, Adam (its six styles, bundled thumbnails).

``precision``: on a CPU with native bf16 (``restyle.train.loop.cpu_has_native_bf16``)
each perceptual run is timed twice, with VGG in bf16 (the default) and all in fp32
(``--no-amp``), in the same run; on CUDA the whole step runs in bf16/fp16.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from restyle.train.config import TrainConfig
from restyle.train.loop import Trainer, cpu_has_native_bf16

SECTION = "Training speed"


RUNS = (("johnson", "perceptual"), ("fast", "perceptual"), ("lite", "perceptual"), ("lite", "distill"))


def measure(
    arch: str, recipe: str, device: str, size: int, batch: int, steps: int, photos: Path, style: Path, amp: bool = True
) -> float:
    styles: dict = {"style_images": [style]}
    if recipe == "distill":
        from restyle.runtime.registry import BUNDLED_DIR, Registry

        names = Registry().info("classics").style_names
        styles = {"style_images": [BUNDLED_DIR / f"{n}.jpg" for n in names], "teacher": "classics"}
    cfg = TrainConfig(
        **styles, data=photos, out=Path("/tmp/restyle-bench-train"), arch=arch, device=device,
        image_size=size, style_size=size, batch_size=batch, amp=amp,
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
        if device == "cuda":
            precisions = [("mixed (bf16/fp16)", True)]
        elif cpu_has_native_bf16():
            precisions = [("VGG in bf16", True), ("fp32 (--no-amp)", False)]
        else:
            precisions = [("fp32 (no native bf16)", True)]
        for arch, recipe in RUNS:
            if arch not in args.archs.split(","):
                continue
            # distillation's VGG stays fp32 on a CPU (restyle.train.distill)
            cpu_distill = device == "cpu" and recipe == "distill"
            for label, amp in [("fp32", True)] if cpu_distill else precisions:
                rate = measure(arch, recipe, device, args.size, args.batch, steps, photos, style, amp)
                rows.append(
                    [
                        arch,
                        recipe,
                        name,
                        label,
                        f"{args.size}",
                        f"{args.batch}",
                        f"{rate:.2f}",
                        f"{args.batch / rate:.2f}",
                    ]
                )
    return ["arch", "recipe", "device", "precision", "size", "batch", "images/s", "s/step"], rows


def main(argv: list[str] | None = None) -> None:
    from bench.common import report

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--archs", default="johnson,fast,lite")
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
