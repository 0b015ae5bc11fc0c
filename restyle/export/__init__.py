"""restyle.export: ``final.pt`` to a self-describing ONNX file (see ``onnx_export``).

Kept free of heavy imports. The metadata contract the exporter writes lives in ``restyle.contract``,
which the runtime reads without the training stack.
"""
