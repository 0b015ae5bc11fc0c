"""``restyle stylize``/``styles`` end to end, registry rules and every input mode."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from restyle.cli import main
from restyle.errors import UnknownStyle
from restyle.imaging import decode_image, to_uint8
from restyle.runtime import Registry, StylizeOptions
from restyle.runtime import registry as registry_module
from restyle.runtime.cli import cli_registry
from tests.conftest import SAMPLE_PHOTO
from tests.export.models import exported


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    shutil.copy(exported(), root / "mosaic.onnx")
    return root


def _stylize(models: Path, *args: str) -> int:
    return main(["stylize", "--models", str(models), "--style", "mosaic", "--device", "cpu", *args])


def _inputs(tmp: Path) -> dict[str, Path]:
    """One file per awkward input mode, all made from the bundled photo (wider than tall)."""
    base = Image.open(SAMPLE_PHOTO).convert("RGB").resize((96, 64))
    tmp.mkdir(parents=True, exist_ok=True)
    files = {}
    rgba = base.convert("RGBA")
    rgba.putalpha(128)
    for name, img in {"rgba": rgba, "p": base.convert("P"), "l": base.convert("L")}.items():
        files[name] = tmp / f"{name}.png"
        img.save(files[name])
    files["cmyk"] = tmp / "cmyk.jpg"
    base.convert("CMYK").save(files["cmyk"])
    files["i16"] = tmp / "i16.png"
    Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 257).save(files["i16"])
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees: the decoded photo is taller than wide
    files["exif"] = tmp / "exif.jpg"
    base.save(files["exif"], exif=exif.tobytes())
    return files


def test_every_input_mode(tmp_path: Path, models: Path) -> None:
    files = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    assert _stylize(models, *map(str, files.values()), "-o", str(out), "--format", "png") == 0
    for name in files:
        result = decode_image(out / f"{name}_mosaic.png")
        expected = (96, 64) if name == "exif" else (64, 96)
        assert result.shape == (*expected, 3), name


def test_batch_with_a_corrupt_file_and_a_missing_one(tmp_path: Path, models: Path, capsys) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.open(SAMPLE_PHOTO).resize((64, 48)).save(src / "good.jpg")
    Image.open(SAMPLE_PHOTO).resize((48, 64)).save(src / "sub" / "nested.png")
    (src / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "out"
    code = _stylize(models, str(src), str(tmp_path / "missing.jpg"), "-o", str(out), "--recursive")
    err = capsys.readouterr().err
    assert code == 1
    assert (out / "good_mosaic.jpg").is_file() and (out / "sub" / "nested_mosaic.jpg").is_file()
    assert "broken.jpg" in err and "missing.jpg" in err and "stylized 2" in err and "failed 2" in err
    assert "Traceback" not in err
    # Existing outputs are kept unless --overwrite.
    before = (out / "good_mosaic.jpg").stat().st_mtime_ns
    assert _stylize(models, str(src / "good.jpg"), "-o", str(out)) == 0
    assert (out / "good_mosaic.jpg").stat().st_mtime_ns == before
    assert _stylize(models, str(src / "good.jpg"), "-o", str(out), "--overwrite") == 0
    assert (out / "good_mosaic.jpg").stat().st_mtime_ns != before


def test_unknown_style_and_unwritable_output(tmp_path: Path, models: Path, capsys) -> None:
    photo = tmp_path / "p.jpg"
    Image.open(SAMPLE_PHOTO).resize((64, 48)).save(photo)
    assert main(["stylize", "--models", str(models), "--style", "nope", str(photo), "-o", str(tmp_path)]) == 2
    assert "unknown style 'nope'" in capsys.readouterr().err
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert _stylize(models, str(photo), "-o", str(blocker / "out")) == 2
    assert "cannot create output folder" in capsys.readouterr().err
    # An output that would be the input itself is refused.
    assert _stylize(models, str(photo), "-o", str(photo)) == 2


def test_single_file_to_named_output(tmp_path: Path, models: Path) -> None:
    photo = tmp_path / "p.jpg"
    Image.open(SAMPLE_PHOTO).resize((64, 48)).save(photo)
    target = tmp_path / "result.webp"
    args = ("--strength", "0.5", "--preserve-color", "--style-scale", "2", "--style-weights", "stripes=1,dots=1")
    assert _stylize(models, str(photo), "-o", str(target), *args) == 0
    assert Image.open(target).format == "WEBP"
    assert not list(tmp_path.glob(".*.tmp*"))  # atomic writes leave no temporary files
    # Every one of the four options reaches the runtime: the lossless output is exactly the
    # runtime's result with all four, and differs from the result with any one of them left out.
    lossless = tmp_path / "result.png"
    assert _stylize(models, str(photo), "-o", str(lossless), *args) == 0
    got = np.asarray(Image.open(lossless).convert("RGB"))
    stylizer = Registry(user_dir=models).get("mosaic", provider="cpu")
    image = decode_image(photo)
    given = {"strength": 0.5, "preserve_color": True, "style_scale": 2, "style_weights": {"stripes": 1, "dots": 1}}
    assert np.array_equal(got, to_uint8(stylizer.stylize(image, StylizeOptions(**given))))
    for name in given:
        without = {k: v for k, v in given.items() if k != name}
        other = to_uint8(stylizer.stylize(image, StylizeOptions(**without)))
        assert np.abs(other.astype(int) - got).max() > 2, f"--{name.replace('_', '-')} made no difference"


def test_registry_names_are_validated(models: Path, tmp_path: Path, monkeypatch) -> None:
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    shutil.copy(exported(), bundled / "candy.onnx")
    shutil.copy(exported(), bundled / "Bad Name.onnx")  # not a valid name: not listed
    reg = Registry(user_dir=models, bundled_dir=bundled)
    assert reg.names() == ["candy", "mosaic"]
    # First bundled model when DEFAULT_STYLE is unset; candy holds two styles, so its first style.
    assert reg.default_name() == "stripes" and reg.lookup("stripes") == ("candy", "stripes")
    monkeypatch.setattr(registry_module, "DEFAULT_STYLE", "mosaic")
    assert reg.default_name() == "mosaic"
    for bad in ("../mosaic", "/etc/passwd", "a/b", "mosaic.onnx", "MOSAIC", "", "..", "~root"):
        with pytest.raises(UnknownStyle):
            reg.get(bad)
    info = reg.info("mosaic")
    assert (info.arch, info.style_names, info.source) == ("fast", ["stripes", "dots"], "user")
    assert info.size_bytes == (models / "mosaic.onnx").stat().st_size and info.summary["epochs"] == 2
    assert reg.get("mosaic", provider="cpu") is reg.get("mosaic", provider="cpu")  # one session per model
    monkeypatch.setenv("RESTYLE_MODELS", str(models))
    assert "mosaic" not in Registry(bundled_dir=bundled).names()  # the runtime reads no environment...
    assert "mosaic" in cli_registry(None).names()  # ...the command line takes it from the settings object
    assert Registry(user_dir=models, bundled=False).names() == ["mosaic"]  # an explicit flag, no sentinel path


def test_styles_listing(models: Path, capsys) -> None:
    assert main(["styles", "--models", str(models)]) == 0
    out = capsys.readouterr().out
    assert "mosaic" in out and "fast" in out and "epochs=2" in out


def test_a_non_restyle_onnx_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "x.onnx"
    bogus.write_bytes(io.BytesIO(b"garbage").getvalue())
    photo = tmp_path / "p.jpg"
    Image.open(SAMPLE_PHOTO).resize((32, 32)).save(photo)
    assert main(["stylize", str(photo), "--style", str(bogus), "-o", str(tmp_path / "o")]) == 2


def test_styles_inside_a_multi_style_model_are_named_on_their_own(tmp_path: Path, models: Path, capsys) -> None:
    reg = Registry(user_dir=models, bundled_dir=tmp_path / "none")
    assert reg.style_names() == ["dots", "stripes"]  # mosaic.onnx holds two styles
    assert reg.lookup("dots") == ("mosaic", "dots") and reg.lookup("mosaic") == ("mosaic", None)
    assert reg.default_name() == "stripes"  # a multi-style model stands for its first style
    assert reg.info("dots").name == "mosaic"
    with pytest.raises(UnknownStyle, match="available: dots, mosaic, stripes"):
        reg.lookup("nope")
    photo = tmp_path / "p.png"
    Image.open(SAMPLE_PHOTO).convert("RGB").resize((64, 48)).save(photo)
    by_name = tmp_path / "by_name.png"
    by_weights = tmp_path / "by_weights.png"
    args = ["--models", str(models), "--device", "cpu", str(photo)]
    assert main(["stylize", *args, "--style", "dots", "-o", str(by_name)]) == 0
    assert main(["stylize", *args, "--style", "mosaic", "--style-weights", "dots=1", "-o", str(by_weights)]) == 0
    first = tmp_path / "first.png"
    assert main(["stylize", *args, "--style", "mosaic", "-o", str(first)]) == 0
    assert np.array_equal(decode_image(by_name), decode_image(by_weights))
    assert not np.array_equal(decode_image(by_name), decode_image(first))
    assert main(["styles", "--models", str(models)]) == 0
    out = capsys.readouterr().out
    assert "dots" in out and "stripes" in out


def test_a_model_file_shadows_a_style_of_the_same_name(tmp_path: Path, models: Path) -> None:
    user = tmp_path / "user"
    user.mkdir()
    shutil.copy(models / "mosaic.onnx", user / "mosaic.onnx")
    shutil.copy(models / "mosaic.onnx", user / "dots.onnx")
    reg = Registry(user_dir=user, bundled_dir=tmp_path / "none")
    assert reg.lookup("dots") == ("dots", None)
    assert reg.lookup("stripes") == ("dots", "stripes")  # first model (by name) that holds it


def test_an_output_folder_inside_the_input_folder_is_not_stylized_again(tmp_path: Path, models: Path) -> None:
    src = tmp_path / "photos"
    src.mkdir()
    Image.open(SAMPLE_PHOTO).resize((64, 48)).save(src / "a.jpg")
    out = src / "out"
    for _ in range(2):  # the second run must not pick up out/a_mosaic.jpg
        assert _stylize(models, str(src), "-o", str(out), "--recursive", "--overwrite") == 0
    assert sorted(p.name for p in out.rglob("*.jpg")) == ["a_mosaic.jpg"]


def test_a_replaced_model_file_gets_a_new_session(tmp_path: Path, models: Path) -> None:
    import os

    user = tmp_path / "user"
    user.mkdir()
    shutil.copy(models / "mosaic.onnx", user / "art.onnx")
    reg = Registry(user_dir=user, bundled_dir=tmp_path / "none")
    first = reg.get("art", provider="cpu")
    assert reg.get("art", provider="cpu") is first  # unchanged file: the same shared session
    tmp = user / ".art.onnx.new"
    shutil.copy(models / "mosaic.onnx", tmp)
    os.replace(tmp, user / "art.onnx")  # a redeploy: same name, new file
    st = (user / "art.onnx").stat()
    os.utime(user / "art.onnx", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert reg.get("art", provider="cpu") is not first
