"""The command line: bad input gives one clear line and exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from restyle.cli import main


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str]:
    code = main(["train", *argv])
    err = capsys.readouterr().err
    return code, err


def test_missing_style_image(capsys, photo_dir: Path, tmp_path: Path) -> None:
    code, err = _run(
        capsys, "--style-image", str(tmp_path / "nope.jpg"), "--data", str(photo_dir), "--out", str(tmp_path / "r")
    )
    assert code == 2 and "style image not found" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_empty_data_folder(capsys, style_image: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, err = _run(
        capsys, "--style-image", str(style_image), "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r")
    )
    assert code == 2 and "no photos" in err


def test_unknown_arch_and_bad_values(capsys, style_image: Path, photo_dir: Path, tmp_path: Path) -> None:
    base = ["--style-image", str(style_image), "--data", str(photo_dir), "--out", str(tmp_path / "r")]
    code, err = _run(capsys, *base, "--arch", "vgg")
    assert code == 2 and "unknown architecture" in err
    code, err = _run(capsys, *base, "--steps", "0")
    assert code == 2 and "--steps" in err
    code, err = _run(capsys, *base, "--style-layers", "relu1_1,relu7_1")
    assert code == 2 and "relu7_1" in err


def test_bad_flag_exits_2(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--no-such-flag"])
    assert exc.value.code == 2


def test_resume_without_checkpoint(capsys, tmp_path: Path) -> None:
    code, err = _run(capsys, "--resume", str(tmp_path))
    assert code == 2 and "no checkpoint" in err


def test_corrupt_photos_are_counted_not_fatal(capsys, style_image: Path, photo_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for p in photo_dir.rglob("*.jpg"):
        (data / p.name).write_bytes(p.read_bytes())
    (data / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    code = main(
        [
            "train",
            "--style-image",
            str(style_image),
            "--data",
            str(data),
            "--out",
            str(tmp_path / "r"),
            "--steps",
            "1",
            "--image-size",
            "32",
            "--style-size",
            "32",
            "--batch-size",
            "1",
            "--identity-steps",
            "0",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "skipped 1 unreadable" in out
    assert (tmp_path / "r" / "final.pt").is_file()


def test_init_flag_reaches_the_config(capsys, style_image: Path, photo_dir: Path, tmp_path: Path) -> None:
    import json

    args = ["--style-image", str(style_image), "--data", str(photo_dir), "--steps", "1", "--image-size", "32",
            "--style-size", "32", "--batch-size", "1", "--identity-steps", "0"]  # fmt: skip
    assert main(["train", *args, "--out", str(tmp_path / "a")]) == 0
    first = tmp_path / "a" / "final.pt"
    assert main(["train", *args, "--out", str(tmp_path / "b"), "--init", str(first)]) == 0
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["init"] == str(first)


def test_every_config_field_has_a_flag_and_reaches_the_config(tmp_path: Path) -> None:
    from restyle.cli import build_parser
    from restyle.train.cli import DERIVED_FIELDS, config_values
    from restyle.train.config import TrainConfig

    parser = build_parser("train")
    base = ["train", "--style-image", "s.jpg", "--data", "d", "--out", "o"]
    defaults = config_values(parser.parse_args(base))  # raises for a field without a flag
    assert set(defaults) == {"style_images", "data", "out"}
    # Each field's own flag lands in that field (the list is the model's, not a copy of it).
    for name, field in TrainConfig.model_fields.items():
        if name in DERIVED_FIELDS or name in ("style_images", "data", "out"):
            continue
        flag = "--" + name.replace("_", "-")
        value = {int: "7", float: "0.5"}.get(field.annotation, "x")  # type: ignore[call-overload]
        value = {
            "lr_schedule": "constant",
            "start_from": "nearest",
            "distill_scales": "0.5,1",
            "style_sizes": "256,320",
        }.get(name, value)
        got = config_values(parser.parse_args([*base, flag, value]))
        assert name in got, f"{flag} did not reach TrainConfig.{name}"
    got = config_values(parser.parse_args([*base, "--style-layers", "relu1_1:2,relu2_1", "--no-amp"]))
    assert got["style_layers"] == ["relu1_1", "relu2_1"] and got["style_layer_weights"] == [2.0, 1.0]
    assert got["amp"] is False
    assert config_values(parser.parse_args([*base, "--style-sizes", "256,320"]))["style_sizes"] == [256, 320]
