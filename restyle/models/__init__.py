"""Network definitions shared by training, export, runtime and the reference suite."""

from restyle.models.complexity import Complexity, complexity
from restyle.models.transformer import ARCHITECTURES, FastStyleNet, StyleNet, TransformerNet, build_network

__all__ = [
    "ARCHITECTURES",
    "Complexity",
    "FastStyleNet",
    "StyleNet",
    "TransformerNet",
    "build_network",
    "complexity",
]
