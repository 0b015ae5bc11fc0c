"""A new style on a trained multi-style base: its norms (and decoder) train, and it ships as its own model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from restyle.cli import main
from restyle.models.serialization import load_model, read_model_record, save_model
from restyle.models.transformer import build_network
from restyle.recipes import ADD_STYLE_DEFAULTS
from restyle.train.add_style import (
    DECODER_LAYERS,
    flattened,
    is_norm_parameter,
    load_base,
    new_style_network,
    start_state,
)
from tests.networks import distinct_styles

# one 32 px crop a step; no training-clock limit, so that a loaded machine cannot end a run before its steps
SMALL = ["--batch-size", "1", "--image-size", "32", "--style-size", "32", "--log-every", "1", "--max-minutes", "0"]


@pytest.fixture(scope="module")
def base_pt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A three-style ``fast`` base with distinct gamma/beta per style."""
    net = distinct_styles("fast", 3)
    return save_model(net, tmp_path_factory.mktemp("base") / "final.pt", ["a", "b", "c"], {"note": "test base"})


@pytest.fixture(scope="module")
def base_onnx(base_pt: Path) -> Path:
    from restyle.export.onnx_export import export_onnx

    out = base_pt.parent / "trio.onnx"
    export_onnx(base_pt, out, exporter="torchscript")
    return out


def test_new_style_network_trains_only_norms_starting_from_their_mean(base_pt: Path) -> None:
    base, _ = load_model(base_pt)
    net = new_style_network(base)
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert trainable and all(".norm." in n for n in trainable)
    assert sum(p.numel() for n, p in net.named_parameters() if n in trainable) < 0.05 * sum(
        p.numel() for p in net.parameters()
    )
    base_state = base.state_dict()
    for name, value in net.state_dict().items():
        expected = base_state[name].mean(0, keepdim=True) if name in trainable else base_state[name]
        assert torch.allclose(value, expected), name


def test_new_style_network_with_its_decoder_starting_from_one_base_style(base_pt: Path) -> None:
    base, _ = load_model(base_pt)
    net = new_style_network(base, start=2, train_decoder=True)
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    decoder = {"up.0.unit.conv.weight", "up.0.unit.conv.bias", "out.unit.conv.weight", "out.unit.conv.bias"}
    assert {n for n in trainable if ".norm." not in n} == decoder
    base_state = base.state_dict()
    for name, value in net.state_dict().items():
        expected = base_state[name][2:3] if ".norm." in name else base_state[name]
        assert torch.equal(value, expected), name
    assert torch.equal(start_state(base, None)["down.0.norm.weight"], base_state["down.0.norm.weight"].mean(0, True))


def test_a_base_is_rebuilt_exactly_from_its_onnx_file(base_pt: Path, base_onnx: Path) -> None:
    original, _ = load_model(base_pt)
    rebuilt, names = load_base(base_onnx)
    assert rebuilt.num_styles == 3 and names == ["a", "b", "c"]
    for name, value in original.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[name], value), name


def test_a_single_style_base_is_refused(tmp_path: Path) -> None:
    one = save_model(build_network("fast", 1), tmp_path / "one.pt", ["solo"], {})
    with pytest.raises(Exception, match="needs a multi-style base"):
        load_base(one)


def test_flattened_needs_two_windows_and_a_stall() -> None:
    assert not flattened([5, 4, 3, 2, 1, 0.5], 3)  # still falling fast
    assert flattened([1.0, 1.0, 1.0, 0.995, 1.0, 0.99], 3)  # < 2 % better
    assert not flattened([1.0, 1.0, 1.0], 3)  # one window only: too early to tell


@pytest.mark.slow
def test_add_style_cli_with_norms_only_trains_the_norms_and_exports_a_single_style_model(
    capsys, base_onnx: Path, base_pt: Path, style_image: Path, photo_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    code = main(["train", "--add-style", str(style_image), "--base", str(base_onnx), "--name", "my-stripes",
                 "--data", str(photo_dir), "--out", str(out), "--steps", "3", "--decoder-lr", "0", "--body-lr", "0",
                 "--start-from", "mean", *SMALL])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    record = read_model_record(out / "final.pt")
    assert record["style_names"] == ["my-stripes"] and record["metadata"]["settings"]["base"] == str(base_onnx)
    trained, _ = load_model(out / "final.pt")
    base, _ = load_model(base_pt)
    changed = [n for n, v in trained.state_dict().items() if n.endswith((".weight", ".bias"))
               and not torch.allclose(v, base.state_dict()[n].mean(0, keepdim=True) if is_norm_parameter(n)
                                      else base.state_dict()[n])]  # fmt: skip
    assert changed and all(is_norm_parameter(n) for n in changed)  # the norms moved, the convolutions did not
    from restyle.runtime.stylizer import Stylizer

    model = out / "my-stripes.onnx"
    assert Stylizer(model).style_names == ["my-stripes"]
    card = (out / "my-stripes.md").read_text()
    assert str(base_onnx) in card and "3 × 1 at 32 px" in card
    # the recipe's further sizes of the painting (restyle.recipes) join --style-size in the Gram targets
    sizes = " + ".join(str(v) for v in dict.fromkeys([32, *ADD_STYLE_DEFAULTS["style_sizes"]]))
    assert f"(Gram targets at {sizes} px)" in card and " + " in sizes
    # the palette term's pixel sample and the step's precision, as trained
    assert f"palette 2 (on at most {ADD_STYLE_DEFAULTS['palette_samples']} random pixels a step)" in card
    assert record["metadata"]["precision"] in ("fp32", "VGG in bf16") and record["metadata"]["precision"] in card
    assert f"new style: {model}" in captured.out


def test_add_style_takes_the_architecture_of_its_base(style_image: Path, photo_dir: Path, tmp_path: Path) -> None:
    """A ``lite`` base (the bundled network's architecture) needs no --arch: the new style is a lite network."""
    torch.manual_seed(0)
    base = save_model(build_network("lite", 2), tmp_path / "base" / "final.pt", ["a", "b"], {})
    out = tmp_path / "run"
    code = main(["train", "--add-style", str(style_image), "--base", str(base), "--data", str(photo_dir),
                 "--out", str(out), "--steps", "1", *SMALL])  # fmt: skip
    assert code == 0
    assert read_model_record(out / "final.pt")["arch"] == "lite"
    from restyle.contract import read_metadata

    assert read_metadata(out / "stripes.onnx").arch == "lite"


def test_add_style_with_a_body_rate_trains_every_convolution_at_its_own_rate(
    capsys, base_pt: Path, style_image: Path, photo_dir: Path, tmp_path: Path
) -> None:
    """--body-lr also trains the encoder and the residual body, in their own optimiser group at that rate; the
    model card says the whole network trained."""
    from restyle.train.config import TrainConfig
    from restyle.train.loop import Trainer

    out = tmp_path / "run"
    code = main(["train", "--add-style", str(style_image), "--base", str(base_pt), "--data", str(photo_dir),
                 "--out", str(out), "--steps", "2", "--decoder-lr", "0.002", "--body-lr", "0.0005",
                 "--lr", "0.01", *SMALL])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    trained, _ = load_model(out / "final.pt")
    base, _ = load_model(base_pt)
    body = [n for n in base.state_dict() if n.endswith(".conv.weight") and not n.startswith(DECODER_LAYERS)]
    assert body and all(not torch.equal(trained.state_dict()[n], base.state_dict()[n]) for n in body)
    assert "every parameter" in next(out.glob("*.md")).read_text()
    cfg = TrainConfig(**{**read_model_record(out / "final.pt")["metadata"]["settings"], "out": tmp_path / "probe"})
    groups = Trainer(cfg).optimizer.param_groups
    assert [g["lr_scale"] for g in groups] == pytest.approx([1.0, 0.2, 0.05])
    assert sum(len(g["params"]) for g in groups) == len(list(trained.parameters()))


@pytest.mark.slow
def test_add_style_from_the_nearest_base_style_trains_the_decoder_alone_without_a_body_rate(
    capsys, base_pt: Path, style_image: Path, photo_dir: Path, tmp_path: Path
) -> None:
    """--start-from nearest starts from the base style with the lowest style + palette loss; with --body-lr 0 the
    decoder (upsampling and output convolutions, trained by default) is the only convolution that moves."""
    from restyle.train.config import TrainConfig
    from restyle.train.loop import Trainer

    out = tmp_path / "run"
    code = main(["train", "--add-style", str(style_image), "--base", str(base_pt), "--data", str(photo_dir),
                 "--out", str(out), "--steps", "2", "--start-from", "nearest", "--body-lr", "0", *SMALL])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    meta = read_model_record(out / "final.pt")["metadata"]
    trained, _ = load_model(out / "final.pt")
    base, _ = load_model(base_pt)
    # the start it reports is the one with the lowest loss among the base's styles and their mean
    cfg = TrainConfig(**{**meta["settings"], "out": tmp_path / "probe"})
    probe = Trainer(cfg)
    scores = {}
    for label, start in (("mean of the base's styles", None), *((f"base style '{n}'", i) for i, n in enumerate("abc"))):
        probe.net.load_state_dict(start_state(base, start))
        with torch.no_grad():
            picks = torch.linspace(0, len(probe.dataset) - 1, min(8, len(probe.dataset))).long().tolist()
            x = torch.stack([probe.dataset[(j, cfg.seed + 777)][0] for j in picks])
            t = probe.losses(x, torch.zeros(len(picks), dtype=torch.long))
        scores[label] = cfg.style_weight * float(t.style) + cfg.palette_weight * float(t.palette)
    assert meta["started_from"] == min(scores, key=scores.get)
    # the same base with its styles in another order: the same style is picked, by name, not by position
    order = [2, 0, 1] if meta["started_from"] == "base style 'a'" else [1, 2, 0]
    shuffled = build_network("fast", 3)
    shuffled.load_state_dict({n: v[order] if ".norm." in n else v for n, v in base.state_dict().items()})
    shuffled_pt = save_model(shuffled, tmp_path / "shuffled" / "final.pt", [["a", "b", "c"][i] for i in order], {})
    code = main(["train", "--add-style", str(style_image), "--base", str(shuffled_pt), "--data", str(photo_dir),
                 "--out", str(tmp_path / "again"), "--steps", "1", "--start-from", "nearest", *SMALL])  # fmt: skip
    assert code == 0
    assert read_model_record(tmp_path / "again" / "final.pt")["metadata"]["started_from"] == meta["started_from"]
    assert f"starts from the {meta['started_from']}" in captured.out
    assert meta["started_from"] in (out / f"{meta['style_images'][0]['name']}.md").read_text()
    moved = {n for n, v in trained.state_dict().items() if not n.endswith(".norm.weight") and not n.endswith(".norm.bias")
             and not torch.equal(v, base.state_dict()[n])}  # fmt: skip
    assert moved == {"up.0.unit.conv.weight", "up.0.unit.conv.bias", "out.unit.conv.weight", "out.unit.conv.bias"}


@pytest.mark.slow
def test_add_style_stops_once_the_style_loss_is_flat(
    capsys, base_pt: Path, style_image: Path, photo_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    code = main(["train", "--add-style", str(style_image), "--base", str(base_pt), "--data", str(photo_dir),
                 "--out", str(out), "--steps", "60", "--lr", "1e-12", "--stop-when-flat", "2", *SMALL])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    meta = read_model_record(out / "final.pt")["metadata"]
    assert meta["stopped_early"] and meta["steps"] < 60
    assert meta["started_from"] == "mean of the base's styles"  # the default start


class TickingClock:
    """``time`` for the training loop: every ``perf_counter()`` call is one second later, so a step takes a second
    of training clock on any machine (a limit in minutes becomes a count of steps)."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now


def test_add_style_stops_at_the_training_clock_limit_and_reports_progress_against_it(
    monkeypatch, base_pt: Path, style_image: Path, photo_dir: Path, tmp_path: Path
) -> None:
    """--max-minutes ends the run at the step where the training clock passes the limit, well before its steps;
    the run is finished like any other (final model, card), and a job's progress ends at done == total."""
    import restyle.train.loop as loop
    from restyle.train.config import TrainConfig
    from restyle.train.loop import Hooks, Trainer

    monkeypatch.setattr(loop, "time", TickingClock())
    cfg = TrainConfig(style_images=[style_image], data=photo_dir, out=tmp_path / "run", base=str(base_pt),
                      steps=60, max_minutes=0.1, batch_size=1, image_size=32, style_size=32, log_every=4)  # fmt: skip
    seen: list[tuple[int, int]] = []
    trainer = Trainer(cfg, hooks=Hooks(progress=lambda done, total: seen.append((done, total))))
    trainer.run()
    meta = read_model_record(tmp_path / "run" / "final.pt")["metadata"]
    assert meta["steps"] == 6 and meta["stop_reason"] == "time" and meta["stopped_early"]
    assert seen[0] == (0, 60) and seen[-1] == (6, 6)
    assert seen[1] == (1, 6)  # one step took 1 s of the 6: six steps planned, not sixty
    # stopped between log steps (every 4th): the last two steps' losses are still logged, and are the card's
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [4, 6] and meta["final_losses"]["style"] == logged[-1]["style"]
    from restyle.train.add_style import export_new_style

    card = export_new_style(tmp_path / "run" / "final.pt", exporter="torchscript").with_suffix(".md").read_text()
    assert "stopped at the 0.1-minute limit; 60 planned" in card


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--base", "x.onnx"], "--base and --name go with --add-style"),
        (["--add-style", "s.png", "--style-image", "s.png"], "drop --style-image"),
        (["--add-style", "s.png", "--name", "Bad Name"], "lowercase"),
        (["--style-image", "s.png", "--decoder-lr", "0.01"], "only apply when adding a style"),
    ],
)
def test_add_style_argument_errors_are_one_line(capsys, extra: list[str], message: str, tmp_path: Path) -> None:
    code = main(["train", *extra, "--data", str(tmp_path), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
