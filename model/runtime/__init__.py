"""What the builder and the service both run, torch-free: the bundle contract and its runtimes.

- ``model.runtime.bundle_format``: the bundle (files, manifest, verification); its pieces are ``bundle_layout``,
  ``bundle_manifest`` and ``bundle_verification``. numpy and pydantic only: FAISS and ONNX Runtime are imported by the
  functions that load the index and the graphs.
- ``model.runtime.onnx_sessions``: ``session_options`` and ``cpu_session``, ONNX Runtime's settings (onnxruntime).
- ``model.runtime.blazepose``: the BlazePose person detector (ai-edge-litert); ``blazepose_anchors`` its numpy
  post-processing.
- ``model.runtime.motion_sources``: the clips' compressed source motion files.
- ``model.runtime.labels``: clip label fields and how labels compare.

Nothing is imported here, so importing a submodule loads only what that submodule needs.
"""
