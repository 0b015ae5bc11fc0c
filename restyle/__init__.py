"""restyle: real-time neural style transfer.

Data flow: photo -> ``restyle.imaging`` (decode, normalise) -> network
(``restyle.models`` in PyTorch, ``restyle.runtime`` through ONNX Runtime) ->
``restyle.imaging`` (encode) -> file or HTTP response.
"""

__version__ = "0.1.0"
