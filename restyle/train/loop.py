"""The training loop: a compact perceptual-loss trainer in the spirit of pytorch/examples' fast_neural_style.

Same code path for one CPU, one GPU, or many GPUs under ``torchrun``: the
sampler is always a (resumable) DistributedSampler, DDP wraps the network
only when the world is larger than one, and only rank 0 writes anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from restyle import __version__
from restyle.atomic import atomic_path
from restyle.errors import InputNotFound, UserError
from restyle.imaging import decode_image, save_image
from restyle.models.serialization import load_model, save_model
from restyle.models.transformer import StyleNet, build_network
from restyle.models.vgg import VGGFeatures
from restyle.train import distributed as D
from restyle.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from restyle.train.config import TrainConfig, warm_start_steps
from restyle.train.data import PhotoFolder, ResumableSampler
from restyle.train.distill import DISTILL_LAYERS, distill_losses, load_teacher, scaled
from restyle.train.ground import position_weights, weighted_pixels
from restyle.train.losses import (
    LossTerms,
    content_loss,
    gram_matrix,
    palette_loss,
    palette_pixels,
    palette_targets,
    style_loss,
    tone_loss,
    total_variation,
)
from restyle.train.temporal import temporal_loss


class TrainingInterrupted(UserError):
    exit_code = 130


class _StopRequested(Exception):
    """``Hooks.stop`` was set: leave the loop the way Ctrl-C does (checkpoint, then ``TrainingInterrupted``)."""


@dataclass
class Hooks:
    """How a caller other than a terminal (a job worker) follows and stops a run; all optional.

    ``stop``: once set, the run checkpoints after the current step and raises
    ``TrainingInterrupted``, exactly as on Ctrl-C or SIGTERM, so a later run
    resumes from there. ``progress(step, steps)``: at the start (a resumed
    run's step) and after every step. ``sample(path)``: each sample grid, once written.
    For single-process runs: under DDP a stop seen by one rank only would stall the others.
    """

    stop: threading.Event | None = None
    progress: Callable[[int, int], None] | None = None
    sample: Callable[[Path], None] | None = None


def _image_tensor(path: Path, short_side: int | None = None) -> Tensor:
    if not Path(path).is_file():
        raise InputNotFound(f"style image not found: {path}")
    x = torch.from_numpy(decode_image(path)).permute(2, 0, 1)[None]
    if short_side:
        h, w = x.shape[2:]
        f = short_side / min(h, w)
        x = F.interpolate(x, size=(max(1, round(h * f)), max(1, round(w * f))), mode="bilinear", antialias=True)
    return x.clamp(0, 1)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 convolutions natively (AVX512-BF16 or AMX), where autocast pays.

    On this project's 2-core AMD EPYC (AVX512-BF16) VGG's forward and backward
    at 4 x 128 x 128 take 270 ms in bf16 against 500 ms in fp32, and the style
    gradient they give points the same way (cosine 0.997). Without native
    bf16, PyTorch emulates it and the step gets slower, so autocast stays off.
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def training_network(cfg: TrainConfig, fresh: bool) -> tuple[StyleNet, tuple[StyleNet, list[str]] | None]:
    """The network a run trains, and the base it starts from when it adds a style (else None).

    Three kinds: a plain multi-style network (``cfg.arch``, one style per style image); a new style on a
    trained base (``cfg.base``: its norms train, and with ``decoder_lr`` the decoder, with ``body_lr`` the rest);
    either started from ``cfg.init``'s weights. ``--init`` and ``--base`` only matter for a ``fresh`` start: a resumed run
    restores every weight from its checkpoint, so it must not need those files any more (they may live on
    another machine by then).
    """
    base: tuple[StyleNet, list[str]] | None = None
    if cfg.base is not None and fresh:
        from restyle.train.add_style import load_base, new_style_network

        base = load_base(cfg.base)
        if base[0].arch != cfg.arch:
            raise UserError(f"base {cfg.base} is a {base[0].arch} network; this run was configured for {cfg.arch}")
        net = new_style_network(base[0], train_decoder=cfg.decoder_lr > 0, train_body=cfg.body_lr > 0)
    elif cfg.base is not None:
        from restyle.train.add_style import freeze_for_new_style

        net = freeze_for_new_style(build_network(cfg.arch, 1), cfg.decoder_lr > 0, cfg.body_lr > 0)
    else:
        net = build_network(cfg.arch, len(cfg.style_images))
    if cfg.init is not None and fresh:
        start, _ = load_model(cfg.init)
        if (start.arch, start.num_styles) != (net.arch, net.num_styles):
            raise UserError(
                f"--init {cfg.init} is a {start.arch} network with {start.num_styles} style(s); "
                f"this run trains {net.arch} with {net.num_styles}"
            )
        net.load_state_dict(start.state_dict())
    if cfg.tune_styles is not None:  # fresh or resumed: the gradient masks are hooks, not saved state
        from restyle.train.tune_styles import freeze_except_styles

        freeze_except_styles(net, cfg.tuned_indices() or [])
    return net, base


class _LogWindow:
    """Loss sums since the last log line, and when that window started (for the images-per-second rate)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.steps = 0
        self.started = time.perf_counter()

    def add(self, floats: dict[str, float]) -> None:
        for k, v in floats.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.steps += 1

    def close(self) -> tuple[dict[str, float], int, float]:
        """(mean losses, steps, seconds) of the window, and start the next one."""
        now = time.perf_counter()
        out = ({k: v / max(self.steps, 1) for k, v in self.sums.items()}, self.steps, now - self.started)
        self.sums, self.steps, self.started = {}, 0, now
        return out


class Trainer:
    """One training run: set up in ``__init__`` (data, teacher or VGG targets, network, optimiser), driven by ``run``.

    The same object serves a fresh run, a resumed one (``resume``: a checkpoint's state), a distillation
    (``cfg.teacher``) and a new style on a trained base (``cfg.base``); each of these differs only in the
    setup steps named below, never inside the loop.
    """

    def __init__(self, cfg: TrainConfig, resume: dict[str, Any] | None = None, hooks: Hooks | None = None):
        self.cfg = cfg
        self.hooks = hooks or Hooks()
        for p in cfg.style_images:
            if not Path(p).is_file():
                raise InputNotFound(f"style image not found: {p}")
        self._setup_device()
        torch.manual_seed(cfg.seed)
        self._setup_data()
        self.teacher: StyleNet | None = (
            load_teacher(cfg.teacher, cfg.style_names()).to(self.device) if cfg.teacher is not None else None
        )
        # a distillation's trunk is cut after relu2_1: no deeper layer is used
        layers = list(DISTILL_LAYERS) if self.teacher is not None else [*cfg.style_layers, cfg.content_layer]
        self.vgg = VGGFeatures(list(dict.fromkeys(layers)), weights=cfg.vgg_weights).to(self.device)
        base = self._setup_network(fresh=resume is None)
        self._setup_optimisation()
        self.style_grams = self._style_targets()
        self.palette_dirs, self.palettes = self._palette_targets()
        self.layer_weights = cfg.layer_weights()
        # the weight the style term trains at, and (style_pull_max) how the painting's pull set it
        self.style_weight, self.style_weight_note = self._style_weight()
        self.started_from: str | None = None  # a new style's start (restyle.train.add_style.start_label)
        if cfg.base is not None:
            from restyle.train.add_style import MEAN_START

            self.started_from = MEAN_START
        self.step = 0  # before the nearest start: its losses sample the palette's pixels by step, as step 0 does
        if base is not None and cfg.start_from == "nearest":
            self._start_from_nearest(*base)
        self.elapsed = 0.0
        self.bad_indices: set[int] = set()
        self.last_losses: dict[str, float] = {}
        self.style_log: list[float] = []  # style loss per log interval, for stop_when_flat
        self.stop_reason: str | None = None  # why a run stopped before cfg.steps: "flat", "time" (None: it did not)
        if resume is not None:
            self._restore(resume)
        self._setup_output()
        self.val_images = self._validation_images()

    # -- setup ---------------------------------------------------------------------------------------------------
    def _setup_device(self) -> None:
        cfg = self.cfg
        self.dist = D.init_distributed(
            "cuda" if cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available()) else "cpu"
        )
        self.device = D.resolve_device(cfg.device, self.dist)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            torch.backends.cudnn.benchmark = True  # fixed training shapes: the search pays off

    def _setup_data(self) -> None:
        cfg = self.cfg
        self.dataset = PhotoFolder(cfg.data, cfg.image_size)
        self.sampler = ResumableSampler(self.dataset, self.dist.world_size, self.dist.rank, cfg.seed, cfg.batch_size)
        self.loader = DataLoader(
            self.dataset,
            batch_size=cfg.batch_size,
            sampler=self.sampler,
            num_workers=cfg.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=cfg.num_workers > 0,
        )

    def _setup_network(self, fresh: bool) -> tuple[StyleNet, list[str]] | None:
        net, base = training_network(self.cfg, fresh)
        self.net: StyleNet = net.to(self.device)
        return base

    def _setup_optimisation(self) -> None:
        """Memory layout and mixed precision (CUDA; VGG alone on a bf16 CPU), the optimiser, and the DDP wrapper when the world is > 1."""
        self.channels_last = self.device.type == "cuda"
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
            self.vgg = self.vgg.to(memory_format=torch.channels_last)
        self.amp_dtype = None
        self.vgg_amp_dtype = None
        if self.device.type == "cuda" and self.cfg.amp:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            self.vgg_amp_dtype = self.amp_dtype
        elif self.device.type == "cpu" and self.cfg.amp and cpu_has_native_bf16():
            self.vgg_amp_dtype = torch.bfloat16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.optimizer = torch.optim.Adam(self._parameter_groups(), lr=self.cfg.lr)
        self.model = (
            DistributedDataParallel(self.net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            if self.dist.enabled
            else self.net
        )

    def _setup_output(self) -> None:
        """The run folder, its config.json and (when installed) TensorBoard: main process only."""
        self.out = Path(self.cfg.out)
        self.writer = None
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(self.cfg.model_dump_json(indent=2))
            with contextlib.suppress(Exception):
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.out / "tensorboard"))

    def _style_targets(self) -> dict[str, Tensor]:
        """Per layer, the Gram targets of every style stacked as (S, C, C): indexing picks one per sample."""
        if self.teacher is not None:  # distillation has no Gram targets
            return {}
        per_style = []
        with torch.no_grad():
            sizes = list(dict.fromkeys([self.cfg.style_size, *self.cfg.style_sizes]))
            for path in self.cfg.style_images:
                grams: dict[str, Tensor] = {}
                for i, size in enumerate(sizes):
                    img = _image_tensor(path, size).to(self.device)
                    weights = self._ground_weights(path, img, report=i == 0)
                    for k, v in self.vgg(img, self.cfg.style_layers).items():
                        grams[k] = grams.get(k, 0) + gram_matrix(v, weights)[0] / len(sizes)
                per_style.append(grams)
        return {k: torch.stack([t[k] for t in per_style]) for k in self.cfg.style_layers}

    def _ground_weights(self, path: Path, img: Tensor, report: bool = True) -> Tensor | None:
        """Per-pixel weights capping the painting's bare ground at ``cfg.ground_cap`` (None: not capped)."""
        if self.cfg.ground_cap >= 1.0:
            return None
        weights, share = position_weights(img, self.cfg.ground_cap)
        if report and weights is not None and self.dist.is_main:
            print(
                f"{Path(path).name}: bare ground {share:.0%} of the painting, counted as {self.cfg.ground_cap:.0%} "
                "of its style targets",
                flush=True,
            )
        return weights

    def _palette_targets(self, directions: int = 32) -> tuple[Tensor, Tensor]:
        """Fixed random colour directions (K, 3) and each style's sorted pixel projections (S, K, M).

        Fixed (seeded) directions keep the loss a deterministic function of
        the step; 32 of them in RGB leave no colour axis unmeasured.
        """
        g = torch.Generator().manual_seed(self.cfg.seed + 4242)
        dirs = torch.randn(directions, 3, generator=g)
        dirs = (dirs / dirs.norm(dim=1, keepdim=True)).to(self.device)
        if self.cfg.palette_weight <= 0:
            return dirs, torch.zeros(0, directions, 1, device=self.device)
        per_style = []
        for path in self.cfg.style_images:
            img = _image_tensor(path, min(self.cfg.style_size, 256)).to(self.device)
            pixels = weighted_pixels(img, self._ground_weights(path, img, report=False))
            per_style.append(palette_targets(pixels, dirs))
        m = min(t.shape[1] for t in per_style)
        pick = [torch.linspace(0, t.shape[1] - 1, m, device=self.device).round().long() for t in per_style]
        return dirs, torch.stack([t[:, i] for t, i in zip(per_style, pick)])

    def _validation_images(self, count: int = 4) -> Tensor:
        """Fixed centre crops of the first photos: the same pictures in every sample grid."""
        imgs = []
        size = min(self.cfg.image_size, 256)
        for path in self.dataset.files[: count * 3]:
            try:
                x = _image_tensor(path, size)
            except UserError:
                continue
            h, w = x.shape[2:]
            top, left = (h - size) // 2, (w - size) // 2
            imgs.append(x[:, :, top : top + size, left : left + size])
            if len(imgs) == count:
                break
        return torch.cat(imgs) if imgs else torch.rand(1, 3, size, size)

    def _restore(self, state: dict[str, Any]) -> None:
        try:
            self.net.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0][:160]
            raise UserError(
                f"the checkpoint in {self.cfg.out} does not match a {self.cfg.arch} network with "
                f"{len(self.cfg.style_images)} style(s) ({first})"
            ) from None
        self.scaler.load_state_dict(state["scaler"])
        self.step = state["step"]
        self.elapsed = state.get("elapsed", 0.0)
        self.bad_indices = set(state.get("bad_indices", []))
        self.last_losses = state.get("losses", {})
        self.style_log = list(state.get("style_log", []))
        self.started_from = state.get("started_from", self.started_from)
        set_rng_state(state["rng"])

    # -- one step ------------------------------------------------------------------------------------------------
    def style_indices(self, step: int, n: int) -> Tensor:
        """Which style each sample of this step trains: a deterministic function of seed, rank and step.

        Mixing styles inside a batch (rather than one style per step) gives
        the shared convolutions a gradient from several styles at once, so a
        multi-style network does not oscillate towards whichever style the
        last steps drew.
        """
        choice = torch.tensor(self.cfg.tuned_indices() or range(self.net.num_styles))
        if len(choice) == 1:
            return choice.repeat(n)
        g = torch.Generator().manual_seed((self.cfg.seed * 7919 + step) * 131 + self.dist.rank)
        return choice[torch.randperm(len(choice), generator=g)[torch.arange(n) % len(choice)]]

    def _parameter_groups(self) -> list[dict[str, Any]]:
        """What the optimiser trains: everything, or for a new style on a base only its norms (at ``lr``) and, with
        ``decoder_lr``, the decoder's convolutions (at ``decoder_lr``, on the same schedule through ``lr_scale``) and,
        with ``body_lr``, every other convolution (at ``body_lr``)."""
        if self.cfg.tune_styles is not None:
            return [{"params": [p for p in self.net.parameters() if p.requires_grad], "lr_scale": 1.0}]
        if self.cfg.base is None:
            return [{"params": list(self.net.parameters()), "lr_scale": 1.0}]
        from restyle.train.add_style import DECODER_LAYERS, is_norm_parameter

        trained = [(n, p) for n, p in self.net.named_parameters() if p.requires_grad]
        groups = [{"params": [p for n, p in trained if is_norm_parameter(n)], "lr_scale": 1.0}]
        rest = [(n, p) for n, p in trained if not is_norm_parameter(n)]
        for params, rate in (
            ([p for n, p in rest if n.startswith(DECODER_LAYERS)], self.cfg.decoder_lr),
            ([p for n, p in rest if not n.startswith(DECODER_LAYERS)], self.cfg.body_lr),
        ):
            if params:
                groups.append({"params": params, "lr_scale": rate / self.cfg.lr})
        return groups

    def _fixed_batch(self, photos: int = 8) -> Tensor:
        """Training crops of ``photos`` photos spread over the data, the same every run (a fixed seed)."""
        picks = torch.linspace(0, len(self.dataset) - 1, min(photos, len(self.dataset))).long().tolist()
        return torch.stack([self.dataset[(j, self.cfg.seed + 777)][0] for j in picks]).to(self.device)

    @torch.no_grad()
    def style_pull(self) -> float:
        """The style loss of untouched photos (fixed crops of the bundled reference photos, restyle.train.pull)
        against the (first) painting: how hard the style term pulls at the start, which the painting's own Gram
        statistics set (``TrainConfig.style_pull_max``)."""
        from restyle.train.pull import reference_batch

        x = reference_batch(self.cfg.image_size).to(self.device)
        feats = self.vgg(x, self.cfg.style_layers)
        targets = {k: g[:1] for k, g in self.style_grams.items()}
        return float(style_loss(feats, targets, self.layer_weights))

    def _style_weight(self) -> tuple[float, str | None]:
        """``cfg.style_weight``, lowered so that weight x :meth:`style_pull` stays within ``cfg.style_pull_max``, and
        a line saying so (None without a limit)."""
        cfg = self.cfg
        if cfg.style_pull_max <= 0:
            return cfg.style_weight, None
        pull = self.style_pull()
        weight = min(cfg.style_weight, cfg.style_pull_max / max(pull, 1e-8))
        note = (
            f"style weight {cfg.style_weight:g} x pull {pull:.1f} = {cfg.style_weight * pull:.1f}, "
            + (f"over the limit {cfg.style_pull_max:g}: weight {weight:.3g}" if weight < cfg.style_weight else
               f"within the limit {cfg.style_pull_max:g}")
        )  # fmt: skip
        if self.dist.is_main:
            print(f"{Path(cfg.style_images[0]).name}: {note}", flush=True)
        return weight, note

    @torch.no_grad()
    def _start_from_nearest(self, base: StyleNet, names: list[str], photos: int = 8) -> None:
        """Start the new style from the base style (or their mean) with the lowest style + palette loss.

        Scored on a fixed batch of training photos (the same every run), with
        the run's own losses: about one forward pass per base style.
        """
        from restyle.train.add_style import start_label, start_state

        cfg = self.cfg
        x = self._fixed_batch(photos)
        zeros = torch.zeros(x.shape[0], dtype=torch.long)
        best: tuple[float, int | None] | None = None
        for start in [None, *range(base.num_styles)]:
            self.net.load_state_dict(start_state(base, start))
            terms = self.losses(x, zeros)
            score = self.style_weight * float(terms.style) + cfg.palette_weight * float(terms.palette or 0.0)
            if best is None or score < best[0]:
                best = (score, start)
        assert best is not None
        self.net.load_state_dict(start_state(base, best[1]))
        self.started_from = start_label(names, best[1])
        if self.dist.is_main:
            print(f"new style starts from the {self.started_from} (nearest of {base.num_styles + 1})", flush=True)

    def losses(self, x: Tensor, styles: Tensor) -> LossTerms:
        cfg = self.cfg
        weights = F.one_hot(styles, self.net.num_styles).float().to(x.device)
        if self.teacher is not None:
            with torch.no_grad():
                target = self.teacher(x, weights)
            return distill_losses(self.model(x, weights), target, self.vgg)
        autocast = (
            torch.autocast("cuda", dtype=self.amp_dtype) if self.amp_dtype is not None else contextlib.nullcontext()
        )
        vgg_autocast = (
            torch.autocast(x.device.type, dtype=self.vgg_amp_dtype)
            if self.vgg_amp_dtype is not None
            else contextlib.nullcontext()
        )
        with autocast:
            y = self.model(x, weights)
            with vgg_autocast:
                feats_y = self.vgg(y)
                with torch.no_grad():
                    feats_x = self.vgg(x, [cfg.content_layer])
            temporal = (
                temporal_loss(self.model, x, y, weights, seed=cfg.seed * 31 + self.step)
                if cfg.temporal_weight > 0
                else torch.zeros((), device=x.device)
            )
        c = content_loss(feats_y[cfg.content_layer], feats_x[cfg.content_layer])
        idx = styles.to(x.device)
        targets = {k: g[idx] for k, g in self.style_grams.items()}
        s = style_loss({k: feats_y[k] for k in cfg.style_layers}, targets, self.layer_weights)
        tv = total_variation(y.float())
        total = cfg.content_weight * c + self.style_weight * s + cfg.tv_weight * tv + cfg.temporal_weight * temporal
        palette = tone = None
        if cfg.palette_weight > 0:
            pixels = (
                palette_pixels(y.shape[2], y.shape[3], cfg.palette_samples, cfg.seed * 7919 + self.step, y.device)
                if cfg.palette_samples
                else None
            )
            palette = palette_loss(y, x, self.palettes[idx], self.palette_dirs, pixels)
            total = total + cfg.palette_weight * palette
        if cfg.tone_weight > 0:
            tone = tone_loss(y, x)
            total = total + cfg.tone_weight * tone
        return LossTerms(content=c, style=s, tv=tv, temporal=temporal.float(), total=total, palette=palette, tone=tone)

    def identity_warm_start(self) -> None:
        """Teach the network to reproduce its input (pixel L1, no VGG) before the perceptual steps.

        An untrained network emits grey mush whose relu2_2 features are
        unrelated to the photo (relative content error about 1), so the first
        hundreds of perceptual steps learn only texture and the photo
        vanishes. Starting from an identity map (about 0.05 s a step on a CPU,
        against about 1.5 s for a perceptual step) the style is painted onto a
        picture that is already there. Deterministic (seeded), and repeated
        from scratch if a run is interrupted before its first checkpoint.
        """
        steps = warm_start_steps(self.cfg.model_dump())
        if steps <= 0 or self.step > 0:
            return
        gen = torch.Generator().manual_seed(self.cfg.seed + 12345)
        files = len(self.dataset)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.cfg.lr)
        self.net.train()
        for i in tqdm(range(steps), desc="identity warm start", disable=not self.dist.is_main, dynamic_ncols=True):
            idx = torch.randint(0, files, (self.cfg.batch_size,), generator=gen).tolist()
            seeds = torch.randint(0, 2**31 - 1, (self.cfg.batch_size,), generator=gen).tolist()
            x = torch.stack([self.dataset[(j, s)][0] for j, s in zip(idx, seeds)]).to(self.device)
            styles = self.style_indices(-1 - i, x.shape[0])
            y = self.model(x, F.one_hot(styles, self.net.num_styles).float().to(self.device))
            loss = (y.float() - x).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        self.last_losses = {"identity_l1": float(loss.detach())}
        if self.dist.is_main:
            print(f"identity warm start: {steps} steps, L1 {self.last_losses['identity_l1']:.4f}")

    def train_step(self, x: Tensor) -> LossTerms:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.optimizer.zero_grad(set_to_none=True)
        for group in self.optimizer.param_groups:
            group["lr"] = self.cfg.lr_at(self.step) * group.get("lr_scale", 1.0)
        if self.teacher is not None:
            x = scaled(x, self.cfg.distill_scales, self.cfg.seed, self.step, self.net.stride)
        terms = self.losses(x, self.style_indices(self.step, x.shape[0]))
        self.scaler.scale(terms.total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return terms

    # -- outputs ------------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "elapsed": self.elapsed,
            "bad_indices": sorted(self.bad_indices),
            "losses": self.last_losses,
            "style_log": self.style_log,
            "started_from": self.started_from,
            "rng": rng_state(),
            "config": self.cfg.model_dump(mode="json"),
        }

    def checkpoint(self) -> None:
        if self.dist.is_main:
            save_checkpoint(self.out, self.state())
        D.barrier(self.dist)

    @torch.no_grad()
    def sample_grid(self) -> Path | None:
        if not self.dist.is_main:
            return None
        from torchvision.utils import make_grid

        self.net.eval()
        x = self.val_images.to(self.device)
        rows = [x]
        for s in range(self.net.num_styles):
            rows.append(self.net(x, s).float())
        self.net.train()
        grid = make_grid(torch.cat(rows).cpu(), nrow=x.shape[0], padding=2, pad_value=1.0)
        path = self.out / "samples" / f"step_{self.step:06d}.png"
        save_image(grid.permute(1, 2, 0).numpy(), path)
        if self.hooks.sample is not None:
            self.hooks.sample(path)
        return path

    def log(self, terms: dict[str, float], images: int, rate: float) -> None:
        """One line of ``metrics.jsonl``: ``images`` trained on since the last line (every rank's), and per second."""
        if not self.dist.is_main:
            return
        record = {
            "step": self.step,
            **terms,
            "images": images,
            "images_per_s": rate,
            "lr": self.cfg.lr_at(self.step),
            "elapsed_s": self.elapsed,
        }
        with open(self.out / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for k, v in terms.items():
                self.writer.add_scalar(f"loss/{k}", v, self.step)

    def precision(self) -> str:
        """How the step computed: ``fp32``, ``VGG in bf16`` (a bf16 CPU) or ``bf16``/``fp16`` autocast (CUDA)."""
        if self.amp_dtype is not None:
            return f"{'bf16' if self.amp_dtype == torch.bfloat16 else 'fp16'} autocast"
        return "VGG in bf16" if self.vgg_amp_dtype is not None else "fp32"

    def write_final_model(self) -> Path | None:
        """Save ``final.pt`` and ``summary.json`` (main process only; others return None)."""
        if not self.dist.is_main:
            return None
        cfg = self.cfg
        metadata = {
            "restyle_version": __version__,
            "arch": cfg.arch,
            "style_images": [{"name": p.stem, "file": p.name, "sha256": sha256(p)} for p in cfg.style_images],
            "steps": self.step,
            "stopped_early": self.stopped_early,
            "stop_reason": self.stop_reason,
            "started_from": self.started_from,
            "style_weight": self.style_weight,  # cfg.style_weight, or lower by the painting's pull (style_pull_max)
            "style_weight_note": self.style_weight_note,
            "final_losses": self.last_losses,
            "train_seconds": round(self.elapsed, 1),
            "hardware": describe_device(self.device) + (f" x{self.dist.world_size}" if self.dist.enabled else ""),
            "precision": self.precision(),
            "skipped_files": len(self.bad_indices) + len(self.dataset.skipped_on_scan),
            "settings": cfg.model_dump(mode="json"),
        }
        path = save_model(self.net, self.out / "final.pt", cfg.style_names(), metadata)
        with atomic_path(self.out / "summary.json") as tmp:
            tmp.write_text(json.dumps({k: v for k, v in metadata.items() if k != "settings"}, indent=2))
        return path

    def _flat(self) -> bool:
        """``stop_when_flat``: the style loss's log-interval means stopped improving (same answer on every rank)."""
        from restyle.train.add_style import flattened

        window = self.cfg.stop_when_flat // self.cfg.log_every
        return self.cfg.stop_when_flat > 0 and flattened(self.style_log, max(1, window))

    # -- the loop -----------------------------------------------------------------------------------------------
    def run(self) -> Path | None:
        """Train to ``cfg.steps`` (or until the style loss is flat), then write ``final.pt``.

        Ctrl-C, SIGTERM and ``Hooks.stop`` all end the same way: a checkpoint at the current step, then
        ``TrainingInterrupted`` naming the command that continues the run.
        """
        cfg, hooks = self.cfg, self.hooks
        self.identity_warm_start()
        self.net.train()
        # a caller with a progress hook (a job) reports progress itself: no bar in its log
        quiet = not self.dist.is_main or hooks.progress is not None
        bar = tqdm(total=cfg.steps, initial=self.step, disable=quiet, unit="step", dynamic_ncols=True)
        if hooks.progress is not None:
            hooks.progress(self.step, cfg.steps)
        window = _LogWindow()
        previous_term = _sigterm_as_interrupt()
        try:
            if self.step < cfg.steps and not self.stopped_early:
                for batch, bad in self._batches():
                    if hooks.stop is not None and hooks.stop.is_set():
                        raise _StopRequested
                    if self._step(batch, bad, window, bar):
                        break
        except (KeyboardInterrupt, _StopRequested):
            bar.close()
            self.checkpoint()
            raise TrainingInterrupted(
                f"interrupted at step {self.step}; checkpoint saved, continue with: restyle train --resume {self.out}"
            ) from None
        finally:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGTERM, previous_term)
        bar.close()
        final = self.write_final_model()
        # the other ranks wait for rank 0's final write, so no rank tears the process group down under another
        D.barrier(self.dist)
        self._report_skipped()
        return final

    def _batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        """Batches from the resumed position on, epoch after epoch (the caller stops at the last step)."""
        epoch, self.sampler.start_batch = divmod(self.step, self.sampler.batches_per_epoch())
        while True:
            self.sampler.set_epoch(epoch)
            yield from self.loader
            epoch += 1
            self.sampler.start_batch = 0

    def _step(self, batch: Tensor, bad: Tensor, window: _LogWindow, bar: tqdm) -> bool:
        """One optimiser step and what follows it on schedule (log, sample grid, checkpoint, progress hook).

        The photos the loader could not read are remembered for the summary. True after the last step.
        """
        cfg = self.cfg
        t0 = time.perf_counter()
        self.bad_indices.update(int(b) for b in bad if int(b) >= 0)
        floats = self.train_step(batch).as_floats()
        self.step += 1
        self.elapsed += time.perf_counter() - t0
        window.add(floats)
        bar.update(1)
        bar.set_postfix({k: f"{v:.3g}" for k, v in floats.items() if k != "temporal" or cfg.temporal_weight})
        if cfg.max_minutes > 0 and self.step < cfg.steps and not self.stopped_early and self._out_of_time():
            self.stop_reason = "time"
            if self.dist.is_main:
                tqdm.write(f"training clock passed {cfg.max_minutes:g} min at step {self.step}: stopping")
        # a run stopped by the clock between log steps still logs its last losses
        if self.step % cfg.log_every == 0 or self.step >= cfg.steps or self.stopped_early:
            self._close_log_window(window)
        last = self.step >= cfg.steps or self.stopped_early
        if self.step % cfg.sample_every == 0 or last:
            self.sample_grid()
        if self.step % cfg.checkpoint_every == 0 or last:
            self.checkpoint()
        if self.hooks.progress is not None:
            self.hooks.progress(self.step, self.step if last else self.planned_steps())
        return last

    @property
    def stopped_early(self) -> bool:
        return self.stop_reason is not None

    def _out_of_time(self) -> bool:
        """``max_minutes`` reached, by the ranks' mean clock so that every rank stops at the same step."""
        elapsed = float(D.all_reduce_mean(torch.tensor(self.elapsed), self.dist)) if self.dist.enabled else self.elapsed
        return elapsed >= self.cfg.max_minutes * 60

    def planned_steps(self) -> int:
        """The steps this run will take: ``cfg.steps``, or with ``max_minutes`` fewer, estimated from the pace so far
        (what a job's progress is measured against)."""
        cfg = self.cfg
        if cfg.max_minutes <= 0 or self.step == 0 or self.elapsed <= 0:
            return cfg.steps
        return max(self.step, min(cfg.steps, round(self.step * cfg.max_minutes * 60 / self.elapsed)))

    def _close_log_window(self, window: _LogWindow) -> None:
        """Log the window's mean losses (averaged over ranks), and stop early once the style loss is flat."""
        means, steps, seconds = window.close()
        means = {k: float(D.all_reduce_mean(torch.tensor(v), self.dist)) for k, v in means.items()}
        self.last_losses = means
        images = steps * self.cfg.batch_size * self.dist.world_size
        self.log(means, images, images / max(seconds, 1e-9))
        self.style_log.append(means["style"])
        if not self.stopped_early and self._flat():
            self.stop_reason = "flat"
            if self.dist.is_main:
                tqdm.write(f"style loss flat over the last {self.cfg.stop_when_flat} steps: stopping early")

    def _report_skipped(self) -> None:
        skipped = len(self.bad_indices) + len(self.dataset.skipped_on_scan)
        if self.dist.is_main and skipped:
            print(
                f"skipped {skipped} unreadable, truncated or tiny photo(s) of {len(self.dataset.files) + len(self.dataset.skipped_on_scan)}"
            )


def _sigterm_as_interrupt():
    """Treat SIGTERM (schedulers, ``kill``, containers stopping) like Ctrl-C: checkpoint, then exit."""

    def handler(_signum, _frame):
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. training started from a worker thread)
        return signal.getsignal(signal.SIGTERM)


def train(cfg: TrainConfig, hooks: Hooks | None = None, state: dict[str, Any] | None = None) -> Path | None:
    """Run ``cfg``; with ``state`` (a checkpoint of this run, see ``checkpoint.load_checkpoint``), continue it.

    ``resume`` below takes the configuration from the checkpoint; passing it
    here instead lets a caller whose paths differ from the first run's (a job
    retried on another machine, where the storage root is mounted elsewhere)
    continue with its own.
    """
    trainer = Trainer(cfg, resume=state, hooks=hooks)
    try:
        return trainer.run()
    finally:
        D.shutdown(trainer.dist)


def resume(run_dir: Path, steps: int | None = None) -> Path | None:
    state = load_checkpoint(run_dir)
    data = dict(state["config"])
    data["out"] = str(run_dir)
    if steps is not None:
        data["steps"] = steps
    cfg = TrainConfig.model_validate(data)
    trainer = Trainer(cfg, resume=state)
    try:
        return trainer.run()
    finally:
        D.shutdown(trainer.dist)
