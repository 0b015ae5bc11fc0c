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
