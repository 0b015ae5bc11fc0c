"""restyle.export: ``final.pt`` to a self-describing ONNX file (see ``onnx_export``).

Kept free of heavy imports: ``restyle.export.metadata`` is read by the runtime.
"""
