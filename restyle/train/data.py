"""Training photos: any folder tree, decoded robustly, sampled reproducibly.

Reproducibility and exact resume come from the sampler, not from global RNG
state: every sample carries its own augmentation seed derived from
``(seed, epoch, position)``, and the sampler can start mid-epoch. A resumed
run therefore sees exactly the crops the uninterrupted run would have seen,
with any number of data-loader workers or DDP ranks.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset, DistributedSampler

from restyle.errors import InputNotFound, UserError
from restyle.imaging import DECODERS, IMAGE_SUFFIXES, open_image, to_rgb_array

MIN_SIDE = 32  # smaller photos are "tiny" and skipped


def find_photos(root: Path) -> list[Path]:
    if not root.exists():
        raise InputNotFound(f"data folder not found: {root}")
    if not root.is_dir():
        raise UserError(f"--data must be a folder of photos: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise UserError(f"no photos (jpg, png, webp, ...) found under {root}")
    return files


def _header_ok(path: Path) -> bool:
    """Cheap check from the header only; full decoding errors are caught later."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path, formats=DECODERS) as img:
                w, h = img.size
        return min(w, h) >= MIN_SIDE
    except Exception:
        return False


class PhotoFolder(Dataset):
    """Random resized crops with horizontal flips of every readable photo under ``root``.

    Items are ``(index, aug_seed)`` pairs from :class:`ResumableSampler`; an
    item returns ``(image, bad_index)`` where ``bad_index`` is -1 or the index
    of a photo that failed to decode (it is replaced by the next good one and
    counted by the training loop).
    """

    def __init__(
        self, root: Path | list[Path], image_size: int, cache: bool = True, scale: tuple[float, float] = (0.25, 1.0)
    ):
        # a folder tree, or a fixed list of photos (the style pull's reference photos: restyle.train.pull)
        all_files = list(root) if isinstance(root, list) else find_photos(Path(root))
        self.files = [p for p in all_files if _header_ok(p)]
        self.skipped_on_scan = [p for p in all_files if p not in set(self.files)]
        if not self.files:
            raise UserError(
                f"none of the {len(all_files)} files under {root} is a readable photo of at least {MIN_SIDE} px"
            )
        self.image_size = image_size
        self.scale = scale
        self.cache_enabled = cache
        self._cache: dict[int, Tensor] = {}
        self.bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, index: int) -> Tensor:
        if index in self._cache:
            return self._cache[index]
        arr = to_rgb_array(open_image(self.files[index]))
        img = torch.from_numpy(arr).permute(2, 0, 1).contiguous()
        if min(img.shape[1:]) < MIN_SIDE:
            raise UserError("tiny")
        # Keep at most ~2x the crop size: crops never need more detail and the cache stays small.
        short = min(img.shape[1:])
        limit = 2 * self.image_size
        if short > limit:
            f = limit / short
            img = F.interpolate(img[None], scale_factor=f, mode="area")[0]
        img = (img * 255).round().to(torch.uint8)
        if self.cache_enabled:
            self._cache[index] = img
        return img

    def crop(self, img: Tensor, gen: torch.Generator) -> Tensor:
        _, h, w = img.shape
        area = h * w
        for _ in range(10):
            target = area * (self.scale[0] + (self.scale[1] - self.scale[0]) * torch.rand((), generator=gen).item())
            logr = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * torch.rand((), generator=gen).item()
            ratio = math.exp(logr)
            cw = int(round(math.sqrt(target * ratio)))
            ch = int(round(math.sqrt(target / ratio)))
            if 0 < cw <= w and 0 < ch <= h:
                break
        else:
            ch = cw = min(h, w)
        top = int(torch.randint(0, h - ch + 1, (), generator=gen))
        left = int(torch.randint(0, w - cw + 1, (), generator=gen))
        patch = img[:, top : top + ch, left : left + cw].float()[None] / 255.0
        out = F.interpolate(
            patch, size=(self.image_size, self.image_size), mode="bilinear", antialias=True, align_corners=False
        )[0].clamp(0, 1)
        if torch.rand((), generator=gen).item() < 0.5:
            out = out.flip(2)
        return out

    def __getitem__(self, item: tuple[int, int]) -> tuple[Tensor, int]:
        index, seed = item
        gen = torch.Generator().manual_seed(seed)
        bad = -1
        for attempt in range(len(self.files)):
            i = (index + attempt) % len(self.files)
            if i in self.bad:
                continue
            try:
                return self.crop(self._load(i), gen), bad
            except Exception:
                self.bad.add(i)
                bad = i
        raise UserError("no photo in the data folder could be decoded")


class ResumableSampler(DistributedSampler):
    """DistributedSampler that yields ``(index, aug_seed)`` and can start mid-epoch.

    Works for a single process too (``num_replicas=1``), so there is one code
    path with and without DDP.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int, batch_size: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.batch_size = batch_size
        self.start_batch = 0

    def batches_per_epoch(self) -> int:
        return max(1, self.num_samples // self.batch_size)

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        indices = list(super().__iter__())
        # Repeat small datasets so an epoch has at least one full batch.
        while len(indices) < self.batch_size:
            indices += indices
        usable = (len(indices) // self.batch_size) * self.batch_size
        start = self.start_batch * self.batch_size
        for pos in range(start, usable):
            seed = (self.seed * 1_000_003 + self.epoch * 100_003 + pos * self.num_replicas + self.rank) % (2**63)
            yield indices[pos], seed

    def __len__(self) -> int:
        return (self.batches_per_epoch() - self.start_batch) * self.batch_size
