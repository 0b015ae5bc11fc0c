"""Parity between the PyTorch network and its ONNX export, on a real photo at two sizes.

Run on every export (not only in tests) because an exporter regression or an
unsupported op variant is silent otherwise: the graph loads, runs and gives
subtly wrong colours. fp32 must agree within ``FP32_TOLERANCE`` (5e-4, 0.13 of one 8-bit level:
trained networks amplify float32 accumulation-order differences between oneDNN and ONNX Runtime's MLAS
convolutions to ~2.6e-4 at the output; PyTorch's own two CPU backends differ by ~5e-5); fp16 within
``FP16_TOLERANCE``, about 5/255 on the [0, 1] output, i.e. below what an 8-bit
image shows as banding; the measured error for our networks is ~5e-3.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import torch

from restyle.contract import INPUT_IMAGE, INPUT_STYLE
from restyle.errors import UserError
from restyle.imaging import decode_image, resize
from restyle.models.transformer import StyleNet

FP32_TOLERANCE = 5e-4
FP16_TOLERANCE = 2e-2
SAMPLE_PHOTO = Path(__file__).resolve().parent.parent / "assets" / "sample.jpg"
# (height, width): one small and odd-shaped, one at the Kodak photo's native 512x768.
PARITY_SIZES: tuple[tuple[int, int], ...] = ((200, 296), (512, 768))


@dataclass(frozen=True)
class ParityReport:
    tolerance: float
    errors: dict[str, float]  # "HxW" -> max abs error

    @property
    def max_error(self) -> float:
        return max(self.errors.values())

    @property
    def ok(self) -> bool:
        return self.max_error <= self.tolerance

    def as_dict(self) -> dict[str, Any]:
        return {"tolerance": self.tolerance, "max_abs_error": self.errors}

    def lines(self) -> list[str]:
        out = [f"parity {size}: max abs error {err:.2e}" for size, err in self.errors.items()]
        out.append(f"parity {'OK' if self.ok else 'FAILED'} (tolerance {self.tolerance:.0e})")
        return out


def _photo_at(photo: np.ndarray, size: tuple[int, int], stride: int) -> np.ndarray:
    h, w = (max(stride, s // stride * stride) for s in size)
    return resize(photo, h, w, interpolation=cv2.INTER_AREA)  # the parity photos every export has recorded


def check_parity(
    net: StyleNet, proto: onnx.ModelProto, *, fp16: bool, photo: str | os.PathLike | None = None
) -> ParityReport:
    """Compare the fp32 PyTorch network with ONNX Runtime (CPU); raise a UserError on failure."""
    image = decode_image(photo or SAMPLE_PHOTO)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    s = net.num_styles
    errors: dict[str, float] = {}
    for i, size in enumerate(PARITY_SIZES):
        x = _photo_at(image, size, net.stride).transpose(2, 0, 1)[None].copy()
        # The second size blends all styles, so the ``style`` input is exercised beyond one-hot.
        weights = np.zeros((1, s), np.float32)
        if i == 0 or s == 1:
            weights[0, 0] = 1.0
        else:
            weights[:] = 1.0 / s
        with torch.no_grad():
            ref = net(torch.from_numpy(x), torch.from_numpy(weights)).numpy()
        got = session.run(None, {INPUT_IMAGE: x, INPUT_STYLE: weights})[0]
        if got.shape != ref.shape:
            raise UserError(f"ONNX output shape {got.shape} differs from PyTorch {ref.shape}")
        errors[f"{x.shape[2]}x{x.shape[3]}"] = float(np.abs(got.astype(np.float32) - ref).max())
    report = ParityReport(FP16_TOLERANCE if fp16 else FP32_TOLERANCE, errors)
    if not report.ok:
        raise UserError("; ".join(report.lines()) + ": the export does not match PyTorch, nothing written")
    return report
