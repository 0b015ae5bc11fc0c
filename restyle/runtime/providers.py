"""Choosing ONNX Runtime execution providers, strictly.

``auto`` picks CUDA when a GPU is really usable and the CPU otherwise. A
provider asked for by name (``cpu``, ``cuda``, ``tensorrt``) must be the one
that runs the model: ONNX Runtime itself silently falls back to the CPU when
CUDA cannot start, which turns a misconfigured GPU server into a slow one
nobody notices, so we check the session's providers and raise instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
from pathlib import Path
from typing import Any

import onnxruntime as ort

from restyle.errors import UserError

PROVIDERS = ("auto", "cpu", "cuda", "tensorrt")
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "restyle"  # when the caller's settings name none
ORT_NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}

# Photos come in every size. The default EXHAUSTIVE search benchmarks every
# cuDNN algorithm for each new input shape (hundreds of ms to seconds per
# shape); HEURISTIC asks cuDNN for its best guess instead, so a never-seen
# size costs one ordinary forward pass.
CUDA_OPTIONS: dict[str, str] = {
    "cudnn_conv_algo_search": "HEURISTIC",
    "cudnn_conv_use_max_workspace": "1",
    "arena_extend_strategy": "kSameAsRequested",
    "do_copy_in_default_stream": "1",
}


class ProviderUnavailable(UserError):
    """The named execution provider cannot run here (no GPU, missing libraries)."""

    exit_code = 3
    http_status = 503


@functools.cache
def gpu_present() -> bool:
    """True when the CUDA driver loads and reports at least one device (cheap; no CUDA libraries needed)."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
        count = ctypes.c_int(0)
        return cuda.cuInit(0) == 0 and cuda.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
    except OSError:
        return False


@functools.cache
def _preload_cuda_libraries() -> None:
    """Load the pip-installed CUDA/cuDNN libraries (those torch ships) without importing torch."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        # Best effort: if it fails, the session check in ``verify`` reports the real problem.
        with contextlib.suppress(Exception):
            preload()


def _trt_options(precision: str, num_styles: int, cache_dir: Path | None) -> dict[str, Any]:
    cache = (cache_dir or DEFAULT_CACHE_DIR) / "tensorrt"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        cached = os.access(cache, os.W_OK | os.X_OK)
    except OSError:
        cached = False  # a read-only or full cache folder: build the engine at every start, never fail for it
    return {
        "trt_fp16_enable": "1" if precision == "fp16" else "0",
        "trt_engine_cache_enable": "1" if cached else "0",
        **({"trt_engine_cache_path": str(cache)} if cached else {}),
        "trt_timing_cache_enable": "1" if cached else "0",
        # One profile covering everything from thumbnails to 2048-pixel tiles, so that
        # new photo sizes do not rebuild the engine (a build takes minutes).
        "trt_profile_min_shapes": f"image:1x3x16x16,style:1x{num_styles}",
        "trt_profile_opt_shapes": f"image:1x3x1024x1024,style:1x{num_styles}",
        "trt_profile_max_shapes": f"image:4x3x2048x2048,style:4x{num_styles}",
    }


def provider_list(
    provider: str, precision: str = "fp32", num_styles: int = 1, cache_dir: Path | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """The provider chain to request for ``provider`` (``auto`` resolved to cuda or cpu).

    ``cache_dir``: where TensorRT keeps its engines (``RuntimeSettings.cache``; None = ``DEFAULT_CACHE_DIR``).
    """
    provider = provider.lower()
    if provider not in PROVIDERS:
        raise UserError(f"unknown provider {provider!r}; choose one of: {', '.join(PROVIDERS)}")
    if provider == "auto":
        provider = "cuda" if gpu_present() and ORT_NAMES["cuda"] in ort.get_available_providers() else "cpu"
    cpu = ("CPUExecutionProvider", {})
    if provider == "cpu":
        return [cpu]
    if ORT_NAMES[provider] not in ort.get_available_providers():
        raise ProviderUnavailable(f"provider {provider!r} is not in this onnxruntime build")
    if not gpu_present():
        raise ProviderUnavailable(
            f"provider {provider!r} needs an NVIDIA GPU and none is usable here; use --device cpu"
        )
    _preload_cuda_libraries()
    chain: list[tuple[str, dict[str, Any]]] = [(ORT_NAMES["cuda"], dict(CUDA_OPTIONS)), cpu]
    if provider == "tensorrt":
        chain.insert(0, (ORT_NAMES["tensorrt"], _trt_options(precision, num_styles, cache_dir)))
    return chain


def verify(session: ort.InferenceSession, chain: list[tuple[str, dict[str, Any]]]) -> None:
    """Refuse a session that did not get the first provider asked for (ORT's silent fallback)."""
    wanted = chain[0][0]
    if wanted not in session.get_providers():
        raise ProviderUnavailable(
            f"{wanted} failed to start (got {', '.join(session.get_providers())}); check the CUDA/cuDNN installation"
        )
