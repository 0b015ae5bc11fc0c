"""Fixtures shared by the fault-injection tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with one seeded random ``fast`` style, ``mosaic``: faults do not care what it paints."""
    from restyle.export.onnx_export import export_untrained

    root = tmp_path_factory.mktemp("fault-models")
    export_untrained("fast", root / "mosaic.onnx", ["mosaic"])
    return root


@pytest.fixture(scope="session")
def job_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mosaic`` plus ``duo`` (two styles: ink, fire), a multi-style base that ``POST /v1/styles`` can build on,
    so a style upload is decoded and checked as a real one would be."""
    from restyle.export.onnx_export import export_untrained

    root = tmp_path_factory.mktemp("fault-job-models")
    work = tmp_path_factory.mktemp("fault-job-train")  # the checkpoints stay out of the models folder
    for name, styles, seed in (("duo", ["ink", "fire"], 0), ("mosaic", ["mosaic"], 1)):
        export_untrained("fast", work / f"{name}.onnx", styles, seed=seed).rename(root / f"{name}.onnx")
    return root
