"""``--tune-styles``: one style of a multi-style network fine-tunes, every other style stays bit-identical."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from restyle.cli import main
from restyle.models.serialization import load_model, save_model
from restyle.models.transformer import build_network
from restyle.train.add_style import is_norm_parameter
from restyle.train.config import TrainConfig
from restyle.train.loop import Hooks, Trainer, TrainingInterrupted, resume
from restyle.train.tune_styles import freeze_except_styles
from tests.networks import distinct_styles

TINY = {"image_size": 32, "style_size": 32, "batch_size": 2, "log_every": 1, "sample_every": 1000}


@pytest.fixture(scope="module")
def styles(tmp_path_factory: pytest.TempPathFactory, style_image: Path) -> list[Path]:
    """Three style images: the stripes, the stripes rolled, and flat noise (names a, b, c)."""
    root = tmp_path_factory.mktemp("styles")
    stripes = np.asarray(Image.open(style_image).convert("RGB"))
    rng = np.random.default_rng(1)
    images = {"a": stripes, "b": np.roll(stripes, 17, axis=1)[:, ::-1], "c": rng.integers(0, 255, stripes.shape)}
    out = []
    for name, pixels in images.items():
        Image.fromarray(pixels.astype(np.uint8)).save(root / f"{name}.png")
        out.append(root / f"{name}.png")
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, styles: list[Path]) -> Path:
    """A three-style ``lite`` network with distinct norms per style, saved as a run's final.pt would be."""
    net = distinct_styles("lite", 3, scale=0.1)
    return save_model(net, tmp_path_factory.mktemp("init") / "final.pt", ["a", "b", "c"], {})


def _cfg(photo_dir: Path, styles: list[Path], init: Path, out: Path, **kw) -> TrainConfig:
    return TrainConfig(
        style_images=styles, data=photo_dir, out=out, arch="lite", init=init, tune_styles=["b"], **{**TINY, **kw}
    )


def test_only_the_tuned_styles_rows_of_the_norms_keep_a_gradient() -> None:
    net = freeze_except_styles(build_network("lite", 3), [1])
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert trainable and all(is_norm_parameter(n) for n in trainable)
    x = torch.rand(3, 3, 32, 32)
    net(x, torch.eye(3)).square().mean().backward()  # every style in the batch: all rows would get a gradient
    for name, p in net.named_parameters():
        if p.requires_grad:
            assert p.grad[1].abs().sum() > 0, name
            assert not p.grad[[0, 2]].any(), name


def test_tuning_one_style_leaves_the_others_bit_identical(
    photo_dir: Path, styles: list[Path], trained: Path, tmp_path: Path
) -> None:
    trainer = Trainer(_cfg(photo_dir, styles, trained, tmp_path / "run", steps=3, lr=5e-2, style_weight=5))
    assert all((trainer.style_indices(step, 2) == 1).all() for step in range(5))
    trainer.run()
    before, _ = load_model(trained)
    after, record = load_model(tmp_path / "run" / "final.pt")
    assert record["style_names"] == ["a", "b", "c"]
    x = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        for s in (0, 2):
            assert torch.equal(before(x, s), after(x, s)), f"style {s} changed"
        assert not torch.allclose(before(x, 1), after(x, 1)), "the tuned style did not move"
    changed = {n for n, v in after.state_dict().items() if not torch.equal(v, before.state_dict()[n])}
    assert changed and all(is_norm_parameter(n) for n in changed)


def test_a_resumed_tuning_keeps_its_masks(photo_dir: Path, styles: list[Path], trained: Path, tmp_path: Path) -> None:
    """The freezing and the masks live in the network's setup, not in the checkpoint: a resumed run puts them back."""
    stop = threading.Event()
    hooks = Hooks(stop=stop, progress=lambda step, steps: stop.set() if step == 2 else None)
    cfg = _cfg(photo_dir, styles, trained, tmp_path / "run", steps=4, lr=5e-2, style_weight=5)
    with pytest.raises(TrainingInterrupted):
        Trainer(cfg, hooks=hooks).run()
    resume(tmp_path / "run")
    before, _ = load_model(trained)
    after, _ = load_model(tmp_path / "run" / "final.pt")
    x = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        assert torch.equal(before(x, 0), after(x, 0)) and torch.equal(before(x, 2), after(x, 2))
        assert not torch.allclose(before(x, 1), after(x, 1))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tune-styles", "zebra"], "--tune-styles zebra: not among this run's styles (a, b, c)"),
        (["--tune-styles", "b", "--no-init"], "--tune-styles fine-tunes a trained network"),
    ],
)
def test_bad_tune_styles_are_one_line_errors(
    photo_dir: Path, styles: list[Path], trained: Path, tmp_path: Path, capsys, extra: list[str], message: str
) -> None:
    args = ["train", "--arch", "lite", "--data", str(photo_dir), "--out", str(tmp_path / "r"), "--steps", "1"]
    for s in styles:
        args += ["--style-image", str(s)]
    if "--no-init" in extra:
        extra = [e for e in extra if e != "--no-init"]
    else:
        args += ["--init", str(trained)]
    assert main(args + extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1
