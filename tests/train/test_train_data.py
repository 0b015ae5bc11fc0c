from pathlib import Path

import pytest
import torch
from PIL import Image

from restyle.errors import UserError
from restyle.train.data import PhotoFolder, ResumableSampler


def test_folder_tree_formats_and_crops(photo_dir: Path) -> None:
    ds = PhotoFolder(photo_dir, image_size=40)
    assert len(ds) == 4
    img, bad = ds[(0, 123)]
    assert img.shape == (3, 40, 40) and bad == -1
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0
    again, _ = ds[(0, 123)]
    assert torch.equal(img, again)  # the augmentation is a function of the item's seed


def test_unreadable_truncated_and_tiny_files_are_skipped_and_counted(photo_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    root.mkdir()
    for p in photo_dir.rglob("*.jpg"):
        (root / p.name).write_bytes(p.read_bytes())
    (root / "garbage.jpg").write_bytes(b"this is not a jpeg")
    good = (root / "astronaut.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(good[: len(good) // 3])
    Image.new("RGB", (8, 8)).save(root / "tiny.png")
    ds = PhotoFolder(root, image_size=32)
    assert {p.name for p in ds.skipped_on_scan} == {"garbage.jpg", "tiny.png"}
    # The truncated file passes the header check; decoding it fails and the next photo replaces it.
    idx = [p.name for p in ds.files].index("truncated.jpg")
    img, bad = ds[(idx, 1)]
    assert img.shape == (3, 32, 32) and bad == idx


def test_empty_and_missing_folders_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        PhotoFolder(tmp_path / "nope", 32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no photos"):
        PhotoFolder(tmp_path / "empty", 32)


def test_sampler_resumes_mid_epoch(photo_dir: Path) -> None:
    ds = PhotoFolder(photo_dir, image_size=32)
    full = ResumableSampler(ds, 1, 0, seed=7, batch_size=2)
    full.set_epoch(3)
    items = list(full)
    part = ResumableSampler(ds, 1, 0, seed=7, batch_size=2)
    part.set_epoch(3)
    part.start_batch = 1
    assert list(part) == items[2:]
    assert len(part) == 2
