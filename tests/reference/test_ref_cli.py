import numpy as np
import pytest
import skimage.data

from restyle.cli import main
from restyle.imaging import decode_image, save_image


@pytest.fixture
def images(tmp_path):
    save_image(skimage.data.chelsea()[::4, ::4] / 255.0, tmp_path / "c.png")
    save_image(skimage.data.coffee()[::4, ::4] / 255.0, tmp_path / "s.png")
    return tmp_path


def test_gatys_cli_writes_image_and_snapshots(images):
    out = images / "out.png"
    rc = main(
        [
            "gatys",
            "--content",
            str(images / "c.png"),
            "--style-image",
            str(images / "s.png"),
            "-o",
            str(out),
            "--size",
            "32",
            "--steps",
            "4",
            "--save-every",
            "2",
        ]
    )
    assert rc == 0 and decode_image(out).shape[1] == 32
    assert (images / "out_s0_step0002.png").is_file()


def test_viz_cli_writes_png(images):
    out = images / "fig.png"
    assert main(["viz", "activations", str(images / "c.png"), "--layer", "relu1_1", "-o", str(out)]) == 0
    assert decode_image(out).shape[0] > 100


@pytest.mark.parametrize(
    "argv",
    [
        ["gatys", "--content", "missing.jpg", "--style-image", "missing.jpg", "-o", "x.png"],
        ["viz", "activations", "IMG", "--layer", "relu9_1", "-o", "x.png"],
        ["viz", "adversarial", "IMG", "--target", "no such class", "-o", "x.png"],
        ["viz", "patches", "/no/such/folder", "-o", "x.png"],
    ],
)
def test_user_errors_are_one_line(argv, images, capsys):
    argv = [str(images / "c.png") if a == "IMG" else a for a in argv]
    argv = [str(images / a) if a == "x.png" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0]
    assert np.all([not (images / "x.png").exists()])
