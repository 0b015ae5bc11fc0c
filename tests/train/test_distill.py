"""Distillation: a student learns a teacher's pictures, at the sizes it is given, and refuses a mismatched teacher."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from restyle.errors import UserError
from restyle.export.onnx_export import untrained_network
from restyle.models.serialization import save_model
from restyle.train.config import TrainConfig
from restyle.train.distill import scaled
from restyle.train.loop import train

TINY = {"image_size": 48, "batch_size": 2, "log_every": 1, "sample_every": 1000, "identity_steps": 0}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-style fast network whose styles differ (seeded, untrained: a fixed function the student can learn)."""
    path = tmp_path_factory.mktemp("teacher") / "final.pt"
    return save_model(untrained_network("fast", 2, seed=4), path, ["stripes", "stripes2"], {})


@pytest.fixture(scope="module")
def two_styles(style_image: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    second = tmp_path_factory.mktemp("styles") / "stripes2.png"
    second.write_bytes(style_image.read_bytes())
    return [style_image, second]


def test_student_moves_towards_the_teacher(photo_dir: Path, two_styles: list[Path], teacher: Path, tmp_path: Path):
    run = tmp_path / "run"
    cfg = TrainConfig(
        style_images=two_styles, data=photo_dir, out=run, arch="lite", teacher=str(teacher), steps=40, lr=5e-3,
        distill_scales=[0.5, 1.0], checkpoint_every=40, seed=2, **TINY,
    )  # fmt: skip
    train(cfg)
    m = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    first = sum(r["pixel"] for r in m[:5]) / 5
    last = sum(r["pixel"] for r in m[-5:]) / 5
    assert last < 0.85 * first, (first, last)  # measured: 0.085 -> 0.064 over 40 steps
    assert all(r["style"] == 0 for r in m)  # no Gram term in a distillation run


def test_teacher_with_other_styles_is_refused(photo_dir: Path, style_image: Path, teacher: Path, tmp_path: Path):
    cfg = TrainConfig(
        style_images=[style_image],
        data=photo_dir,
        out=tmp_path / "r",
        arch="lite",
        teacher=str(teacher),
        steps=1,
        **TINY,
    )
    with pytest.raises(UserError, match="teacher .* holds the styles stripes, stripes2"):
        train(cfg)


def test_scaled_batches_are_seeded_and_keep_the_stride() -> None:
    x = torch.rand(2, 3, 48, 48)
    sizes = {scaled(x, [0.5, 0.75, 1.0], seed=1, step=s, stride=4).shape[2] for s in range(30)}
    assert sizes == {24, 36, 48}
    assert all(
        scaled(x, [0.5, 0.75, 1.0], 1, s, 4).shape == scaled(x, [0.5, 0.75, 1.0], 1, s, 4).shape for s in range(10)
    )
    assert scaled(x, [1.0], 1, 0, 4) is x


def test_distill_settings_are_validated(photo_dir: Path, style_image: Path, tmp_path: Path) -> None:
    base = {"style_images": [style_image], "data": photo_dir, "out": tmp_path}
    with pytest.raises(ValueError, match="distill scales"):
        TrainConfig(**base, teacher="classics", distill_scales=[2.0])
    with pytest.raises(ValueError, match="cannot be combined"):
        TrainConfig(**base, teacher="classics", temporal_weight=1.0)
