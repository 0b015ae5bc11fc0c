"""restyle.runtime: ONNX Runtime inference shared by the CLI, the API, video and the benchmarks.

>>> from restyle.runtime import Registry, StylizeOptions
>>> stylizer = Registry().get("starry_night")                       # doctest: +SKIP
>>> out = stylizer.stylize(photo, StylizeOptions(strength=0.8))  # doctest: +SKIP
"""

from restyle.runtime.model_info import ModelInfo
from restyle.runtime.options import StylizeOptions
from restyle.runtime.providers import ProviderUnavailable
from restyle.runtime.registry import DEFAULT_STYLE, Registry
from restyle.runtime.stylizer import Stylizer

__all__ = ["DEFAULT_STYLE", "ModelInfo", "ProviderUnavailable", "Registry", "StylizeOptions", "Stylizer"]
