"""UniHPR's model: what the builder and the service share, in four layers (each imports only those above it).

- ``model.pose``: pose geometry in numpy: the skeleton, every keypoint layout, the joint formulas and conventions,
  cameras and camera set-ups, perspective crops, the encoders' input features, metrics, units.
- ``model.retrieval``: retrieval algorithms in numpy (and FAISS for exact search): geometric re-ranking, sequence
  alignment and motion search.
- ``model.runtime``: what runs a bundle without torch: the bundle format (the builder-to-service contract),
  ONNX Runtime sessions, BlazePose on LiteRT, clip sources.
- ``model.nn``: the torch layer: networks, losses, the Martinez baseline, the checkpoint format, ONNX export.
  The builder only; the service never imports it (``tests/test_service_imports.py``).

Importing ``model`` imports none of them.
"""
