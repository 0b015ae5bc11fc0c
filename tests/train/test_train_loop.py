"""Training behaviour on tiny images: loss goes down, resume is exact, checkpoints are atomic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from restyle.models.layers import StyleNorm
from restyle.models.serialization import load_model
from restyle.train import checkpoint as ckpt
from restyle.train.config import TrainConfig
from restyle.train.loop import Trainer, TrainingInterrupted, resume, train

TINY = {"image_size": 48, "style_size": 64, "batch_size": 2, "log_every": 1, "sample_every": 1000, "identity_steps": 0}


def _cfg(photo_dir: Path, style_image: Path, out: Path, **kw) -> TrainConfig:
    return TrainConfig(style_images=[style_image], data=photo_dir, out=out, **{**TINY, **kw})


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_thirty_steps_lower_the_total_loss(photo_dir: Path, style_image: Path, tmp_path: Path) -> None:
    cfg = _cfg(photo_dir, style_image, tmp_path / "run", steps=30, lr=1e-2, checkpoint_every=30, seed=3)
    final = train(cfg)
    m = _metrics(tmp_path / "run")
    first = {k: sum(r[k] for r in m[:5]) / 5 for k in ("total", "style")}
    last = {k: sum(r[k] for r in m[-5:]) / 5 for k in ("total", "style")}
    # Balanced (relative) losses start near 1 per term; 30 tiny steps visibly lower the style term and the total.
    assert last["style"] < 0.95 * first["style"] and last["total"] < 0.9 * first["total"], (first, last)
    net, record = load_model(final)
    assert record["style_names"] == ["stripes"]
    meta = record["metadata"]
    assert meta["steps"] == 30 and meta["arch"] == "fast"
    assert len(meta["style_images"][0]["sha256"]) == 64
    assert set(meta["final_losses"]) >= {"content", "style", "tv", "total"}
    assert (tmp_path / "run" / "samples" / "step_000030.png").is_file()


def test_resume_reproduces_the_uninterrupted_run(photo_dir: Path, style_image: Path, tmp_path: Path) -> None:
    # with the palette term on a fresh random sample of pixels each step: the resumed steps sample the same ones
    straight = _cfg(
        photo_dir,
        style_image,
        tmp_path / "a",
        steps=6,
        checkpoint_every=3,
        seed=5,
        identity_steps=3,
        palette_weight=1.0,
        palette_samples=500,
    )
    train(straight)
    interrupted = Trainer(straight.model_copy(update={"out": tmp_path / "b"}))
    real_step = interrupted.train_step

    def ctrl_c_after_three(x):
        if interrupted.step == 3:
            raise KeyboardInterrupt
        return real_step(x)

    interrupted.train_step = ctrl_c_after_three
    with pytest.raises(TrainingInterrupted, match="resume"):
        interrupted.run()
    resume(tmp_path / "b")  # same learning-rate curve, same crops, same styles, no second warm start
    a = [r["total"] for r in _metrics(tmp_path / "a")]
    b = [r["total"] for r in _metrics(tmp_path / "b")]
    assert len(a) == len(b) == 6
    assert a == pytest.approx(b, rel=1e-5)
    wa = torch.load(tmp_path / "a" / "final.pt", weights_only=True)["state_dict"]
    wb = torch.load(tmp_path / "b" / "final.pt", weights_only=True)["state_dict"]
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


def test_interrupted_checkpoint_write_keeps_the_last_good_one(
    photo_dir: Path, style_image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    trainer = Trainer(_cfg(photo_dir, style_image, run, steps=2, seed=1))
    trainer.step = 1
    trainer.checkpoint()
    good = (run / ckpt.CHECKPOINT_NAME).read_bytes()

    real_save = torch.save

    def crash_mid_write(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        with open(f, "r+b") as fh:  # half the file written, then the process dies
            fh.truncate(100)
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", crash_mid_write)
    trainer.step = 2
    with pytest.raises(OSError):
        trainer.checkpoint()
    assert (run / ckpt.CHECKPOINT_NAME).read_bytes() == good
    assert [p.name for p in run.iterdir() if p.name.endswith(".tmp.pt")] == []
    assert ckpt.load_checkpoint(run)["step"] == 1


def test_multi_style_network_trains_every_style(photo_dir: Path, style_image: Path, tmp_path: Path) -> None:
    from restyle.imaging import save_image

    second = tmp_path / "flat.png"
    save_image(torch.full((32, 32, 3), 0.2).numpy(), second)
    cfg = TrainConfig(
        style_images=[style_image, second],
        data=photo_dir,
        out=tmp_path / "run",
        steps=4,
        checkpoint_every=4,
        seed=0,
        **{k: v for k, v in TINY.items()},
    )
    trainer = Trainer(cfg)
    # Every batch of two holds both styles (styles are mixed inside a batch, deterministically per step).
    for step in range(10):
        assert sorted(trainer.style_indices(step, 2).tolist()) == [0, 1]
    assert torch.equal(trainer.style_indices(3, 2), trainer.style_indices(3, 2))
    final = trainer.run()
    net, record = load_model(final)
    assert net.num_styles == 2 and record["style_names"] == ["stripes", "flat"]
    # Each style's own instance-norm parameters moved from their initial (1, 0): every style was trained.
    norms = [m for m in net.modules() if isinstance(m, StyleNorm)]
    assert norms
    for s in range(2):
        moved = max(
            float((m.weight[s] - 1).abs().max().detach()) + float(m.bias[s].abs().max().detach()) for m in norms
        )
        assert moved > 1e-4, f"style {s} ({record['style_names'][s]}) was never trained"


def test_temporal_loss_is_reported_when_enabled(photo_dir: Path, style_image: Path, tmp_path: Path) -> None:
    cfg = _cfg(photo_dir, style_image, tmp_path / "run", steps=2, temporal_weight=10.0, checkpoint_every=2)
    train(cfg)
    assert all(r["temporal"] > 0 for r in _metrics(tmp_path / "run"))


def test_init_from_a_trained_model_and_mismatch(photo_dir: Path, style_image: Path, tmp_path: Path) -> None:
    from restyle.errors import UserError

    first = train(_cfg(photo_dir, style_image, tmp_path / "a", steps=1, checkpoint_every=1))
    tuned = Trainer(_cfg(photo_dir, style_image, tmp_path / "b", steps=1, init=first))
    base, _ = load_model(first)
    assert all(torch.equal(a, b) for a, b in zip(base.state_dict().values(), tuned.net.state_dict().values()))
    with pytest.raises(UserError, match="--init"):
        Trainer(_cfg(photo_dir, style_image, tmp_path / "c", steps=1, init=first, arch="johnson"))


def test_identity_warm_start_teaches_the_network_to_copy_its_input(
    photo_dir: Path, style_image: Path, tmp_path: Path
) -> None:
    trainer = Trainer(_cfg(photo_dir, style_image, tmp_path / "run", steps=1, identity_steps=40, lr=3e-3, seed=2))
    x = torch.stack([trainer.dataset[(i, 7)][0] for i in range(len(trainer.dataset))])

    def error() -> float:
        with torch.no_grad():
            return float((trainer.net(x) - x).abs().mean())

    before = error()
    trainer.identity_warm_start()
    assert error() < 0.8 * before
    # A resumed run (step > 0) never repeats it.
    trainer.step = 5
    snapshot = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    trainer.identity_warm_start()
    assert all(torch.equal(v, trainer.net.state_dict()[k]) for k, v in snapshot.items())


def test_vgg_in_bf16_on_a_bf16_cpu_gives_the_fp32_training_signal(
    photo_dir: Path, style_image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import restyle.train.loop as loop

    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: True)  # emulated where the CPU lacks it: same numbers
    mixed = Trainer(_cfg(photo_dir, style_image, tmp_path / "bf16", image_size=64, device="cpu"))
    plain = Trainer(_cfg(photo_dir, style_image, tmp_path / "fp32", image_size=64, device="cpu", amp=False))
    assert mixed.vgg_amp_dtype == torch.bfloat16 and plain.vgg_amp_dtype is None
    plain.net.load_state_dict(mixed.net.state_dict())
    x = torch.stack([mixed.dataset[(i, i)][0] for i in range(2)])
    styles = torch.zeros(2, dtype=torch.long)
    grads = []
    for trainer in (mixed, plain):
        trainer.net.zero_grad()
        terms = trainer.losses(x, styles)
        terms.total.backward()
        grads.append(torch.cat([p.grad.flatten() for p in trainer.net.parameters() if p.grad is not None]))
        assert terms.style.dtype == torch.float32  # the Gram matrices and losses stay in fp32
    assert not torch.equal(grads[0], grads[1])  # VGG did run in bf16
    assert torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0) > 0.98
    assert float(grads[0].norm() / grads[1].norm()) == pytest.approx(1.0, abs=0.05)
